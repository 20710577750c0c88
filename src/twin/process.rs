//! A simulated process: its pid, its credentials and its signal inbox.

use crate::notify::SignalInfo;
use crate::sync::{Condvar, Mutex};

use super::identity::Credentials;

/// Where a process's notification signals go instead of its inbox (the
/// remote server forwards them to the client process they belong to).
pub(crate) struct SignalSink(pub(crate) Box<dyn Fn(SignalInfo) + Send + Sync>);

// A `Twin` stays unwind safe with a sink in it: the sink only forwards a
// copied value, and a panic in it leaves no twin state half changed (it runs
// after the queue's lock is released).
impl std::panic::RefUnwindSafe for SignalSink {}
impl std::panic::UnwindSafe for SignalSink {}

/// One simulated process of a twin namespace.
pub(crate) struct Process {
    pub(crate) pid: u32,
    pub(crate) credentials: Credentials,
    signals: Mutex<Vec<SignalInfo>>,
    signalled: Condvar,
    sink: Option<SignalSink>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("pid", &self.pid)
            .field("credentials", &self.credentials)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Process {
    pub(crate) fn new(pid: u32, credentials: Credentials) -> Self {
        Process {
            pid,
            credentials,
            signals: Mutex::new(Vec::new()),
            signalled: Condvar::new(),
            sink: None,
        }
    }

    /// A process whose signals go to `sink` (never to its inbox).
    #[cfg_attr(not(all(unix, feature = "remote")), allow(dead_code))]
    pub(crate) fn with_sink(pid: u32, credentials: Credentials, sink: SignalSink) -> Self {
        Process {
            sink: Some(sink),
            ..Process::new(pid, credentials)
        }
    }

    /// Queues a signal for this process (a notification fired).
    pub(crate) fn deliver(&self, info: SignalInfo) {
        if let Some(sink) = &self.sink {
            return (sink.0)(info);
        }
        self.signals.lock().push(info);
        self.signalled.notify_all();
    }

    /// Removes and returns the delivered signals, oldest first.
    pub(crate) fn take_signals(&self) -> Vec<SignalInfo> {
        std::mem::take(&mut *self.signals.lock())
    }
}
