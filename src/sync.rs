//! The twin's only door to synchronisation primitives.
//!
//! Everything in the twin imports `Mutex`, `Condvar`, `Arc` and atomics from
//! here, never from `std::sync`, so building with `--cfg mqtwin_loom` swaps
//! the whole twin onto [loom](https://docs.rs/loom) for model checking. The
//! mutex wrapper ignores poisoning: a panic in a user's test thread must not
//! turn every later queue call into a second panic.

#![allow(dead_code)]

#[cfg(not(mqtwin_loom))]
use std::sync as imp;

#[cfg(mqtwin_loom)]
use loom::sync as imp;

pub(crate) use imp::atomic::{AtomicBool, Ordering};
pub(crate) use imp::Arc;
pub(crate) use imp::MutexGuard;

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
