//! Notification (`mq_notify`) and readiness (`poll`): the types both
//! backends share.
//!
//! # Notification rules (Linux)
//!
//! - One registration per queue, owned by a *process*. Registering while any
//!   registration exists — even the caller's own — fails with
//!   [`Error::Busy`].
//! - It fires only when a send *inserts* a message into an *empty* queue; a
//!   message handed straight to a waiting receiver, or a blocked sender's
//!   message moved in by a receive, never fires it.
//! - It is one-shot whatever the form: firing removes it.
//! - It is removed by [`cancel_notify`](crate::MessageQueue::cancel_notify)
//!   from the owner process, and by the owner process closing *any* handle
//!   to the queue; a cancel from another process is a silent no-op, and
//!   unlinking the queue does not remove it.

use std::fmt;

use crate::error::Error;

/// `SI_MESGQ`: the `si_code` of a message-queue notification signal.
pub const SI_MESGQ: i32 = -3;

/// Highest signal number `mq_notify` accepts (`_NSIG` on Linux).
pub const MAX_SIGNAL: i32 = 64;

/// How to be told that a message arrived in an empty queue.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, Notify, OpenOptions, twin::Twin};
/// let ns = Twin::new();
/// let q = ns.open("/q", &OpenOptions::read_write().create())?;
/// q.notify(Notify::Signal { signal: 10, value: 42 })?;
/// q.send(b"wake up", 0)?;
/// let sig = ns.take_signals().pop().expect("delivered");
/// assert_eq!((sig.signal, sig.value, sig.code), (10, 42, mqtwin::notify::SI_MESGQ));
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub enum Notify {
    /// Register without being told (`SIGEV_NONE`): the registration is still
    /// consumed by the first arrival, and it still blocks other registrations.
    None,
    /// Send signal `signal` with `value` to the owner process
    /// (`SIGEV_SIGNAL`). Signal 0 is accepted and delivers nothing.
    Signal {
        /// The signal number, `0..=64`.
        signal: i32,
        /// The value delivered in `si_value`.
        value: usize,
    },
    /// Run the callback once on another thread (`SIGEV_THREAD`): a new thread
    /// on the twin, one of a pool of at most 8 on the kernel backend (Y19).
    Thread(Box<dyn FnOnce() + Send + 'static>),
}

impl Notify {
    /// A [`Notify::Thread`] from a closure.
    pub fn thread(f: impl FnOnce() + Send + 'static) -> Self {
        Notify::Thread(Box::new(f))
    }

    /// The kernel's first check on a `sigevent` (`do_mq_notify`), made before
    /// it looks at the descriptor.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSignal`] for a signal outside `0..=64`.
    pub fn validate(&self) -> Result<(), Error> {
        match self {
            Notify::Signal { signal, .. } if !(0..=MAX_SIGNAL).contains(signal) => {
                Err(Error::InvalidSignal { signal: *signal })
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notify::None => f.write_str("None"),
            Notify::Signal { signal, value } => f
                .debug_struct("Signal")
                .field("signal", signal)
                .field("value", value)
                .finish(),
            Notify::Thread(_) => f.write_str("Thread(..)"),
        }
    }
}

/// A delivered notification signal, with the fields the kernel fills in.
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalInfo {
    /// `si_signo`.
    pub signal: i32,
    /// `si_code`: always [`SI_MESGQ`].
    pub code: i32,
    /// `si_value`: the value given at registration.
    pub value: usize,
    /// `si_pid`: the process whose send fired the notification.
    pub pid: u32,
    /// `si_uid`: that process's real uid.
    pub uid: u32,
}

/// What a queue is ready for, by the kernel's `poll` rule: readable iff it
/// holds a message, writable iff it holds fewer than its capacity, whatever
/// the handle's access mode.
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Readiness {
    /// A receive would not wait (`POLLIN`).
    pub readable: bool,
    /// A send would not wait (`POLLOUT`).
    pub writable: bool,
}

/// What [`wait_ready`](crate::MessageQueue::wait_ready) waits for.
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interest {
    /// Wait until the queue is readable.
    Readable,
    /// Wait until the queue is writable.
    Writable,
    /// Wait until it is either.
    Either,
}

impl Interest {
    /// Whether `r` satisfies this interest.
    pub fn is_met(self, r: Readiness) -> bool {
        match self {
            Interest::Readable => r.readable,
            Interest::Writable => r.writable,
            Interest::Either => r.readable || r.writable,
        }
    }
}
