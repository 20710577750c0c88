//! The twin's only door to synchronisation primitives.
//!
//! Everything in the twin imports `Mutex`, `Condvar`, `Arc` and atomics from
//! here, never from `std::sync`, and starts threads through [`spawn_detached`],
//! so building with `--cfg mqtwin_loom` swaps the whole twin onto
//! [loom](https://docs.rs/loom) for model checking (`tests/loom.rs`). The
//! mutex wrapper ignores poisoning: a panic in a user's test thread must not
//! turn every later queue call into a second panic.
//!
//! Under loom:
//!
//! - `Mutex`, `Condvar` and the atomics are loom's, so every interleaving of
//!   the twin's critical sections and wake-ups is explored.
//! - `Arc` stays `std::sync::Arc`: loom's `Arc` can neither be a method
//!   receiver (`self: &Arc<Self>`) nor coerce to `Arc<dyn Trait>`, both of
//!   which the twin uses, and the twin never relies on reference counts for
//!   synchronisation (every shared field sits behind a modelled lock).
//! - loom has no time: `Condvar::wait_timeout` waits like `wait` and never
//!   times out, so a twin on the *real* clock never expires a deadline by
//!   itself. Model expiry with a virtual-time twin
//!   ([`TwinBuilder::virtual_time`](crate::twin::TwinBuilder::virtual_time)),
//!   where advancing the clock is an explicit event a loom thread performs.

#![allow(dead_code)]

#[cfg(not(mqtwin_loom))]
use std::sync as imp;

#[cfg(mqtwin_loom)]
use loom::sync as imp;

pub(crate) use imp::atomic::{AtomicBool, AtomicUsize, Ordering};
pub(crate) use imp::MutexGuard;
pub(crate) use std::sync::Arc;

/// Runs `f` on a new detached thread named `name` (a loom thread under
/// loom). Fails only if the OS cannot create a thread.
pub(crate) fn spawn_detached(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    #[cfg(not(mqtwin_loom))]
    {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map(drop)
    }
    #[cfg(mqtwin_loom)]
    {
        let _ = name;
        drop(loom::thread::spawn(f));
        Ok(())
    }
}

/// A mutex whose `lock` never fails: poisoning is ignored, because every
/// critical section in the twin leaves its state consistent before any call
/// that could panic.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(imp::Mutex<T>);

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(imp::Mutex::new(value))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A condition variable paired with [`Mutex`].
#[derive(Debug, Default)]
pub(crate) struct Condvar(imp::Condvar);

impl Condvar {
    pub(crate) fn new() -> Self {
        Condvar(imp::Condvar::new())
    }

    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        self.0.wait(guard).unwrap_or_else(|p| p.into_inner())
    }

    /// Waits at most `timeout`; may wake early (spuriously or when notified).
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
    ) -> MutexGuard<'a, T> {
        match self.0.wait_timeout(guard, timeout) {
            Ok((g, _)) => g,
            Err(p) => p.into_inner().0,
        }
    }

    pub(crate) fn notify_one(&self) {
        self.0.notify_one()
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all()
    }
}
