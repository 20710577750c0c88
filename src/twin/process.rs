//! A simulated process: its pid, its credentials and its signal inbox.

use crate::notify::SignalInfo;
use crate::sync::{Condvar, Mutex};

use super::identity::Credentials;

/// One simulated process of a twin namespace.
#[derive(Debug)]
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) credentials: Credentials,
    signals: Mutex<Vec<SignalInfo>>,
    signalled: Condvar,
}

impl Process {
    pub(crate) fn new(pid: u32, credentials: Credentials) -> Self {
        Process {
            pid,
            credentials,
            signals: Mutex::new(Vec::new()),
            signalled: Condvar::new(),
        }
    }

    /// Queues a signal for this process (a notification fired).
    pub(crate) fn deliver(&self, info: SignalInfo) {
        self.signals.lock().push(info);
        self.signalled.notify_all();
    }

    /// Removes and returns the delivered signals, oldest first.
    pub(crate) fn take_signals(&self) -> Vec<SignalInfo> {
        std::mem::take(&mut *self.signals.lock())
    }
}
