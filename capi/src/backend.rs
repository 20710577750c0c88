//! The seam between the C API and what holds the queues: [`Backend`].
//! Today one implementation, [`TwinBackend`] (an in-process twin); the
//! remote client (`MQTWIN_SOCKET`, the `mqtwin serve` server) plugs in here
//! as a second one. Also the process-wide state: chosen once from the
//! environment, poisoned in a child after `fork`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::thread::ThreadId;
use std::time::{Duration, SystemTime};

use mqtwin::remote::Remote;
use mqtwin::twin::{Credentials, Twin};
use mqtwin::{DynNamespace, MessageQueue, OpenOptions, SignalInfo};

use crate::config::{self, Backing};
use crate::fds::Table;
use crate::ffi::Errno;
use crate::proxy::Pool;

/// What the C API needs from a namespace beyond [`DynNamespace`].
pub(crate) trait Backend: Send + Sync {
    /// Opens (or creates) a queue.
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Box<dyn MessageQueue>, Errno>;
    /// Removes a queue's name.
    fn unlink(&self, name: &str) -> Result<(), Errno>;
    /// The backend's clock (virtual or real).
    fn now(&self) -> SystemTime;
    /// Ends `thread`'s blocked send or receive with `EINTR`, as a handled
    /// signal without `SA_RESTART` does; false when it is not blocked (not
    /// yet, or already served).
    fn interrupt(&self, thread: ThreadId) -> bool;
    /// Notification signals that fired for this process since the last
    /// call, to raise for real.
    fn take_signals(&self) -> Vec<SignalInfo>;
    /// Moves the virtual clock on by `by` (`EINVAL` on a real clock).
    fn advance(&self, by: Duration) -> Result<(), Errno>;
    /// Moves the virtual clock to the next pending deadline, if any
    /// (`EINVAL` on a real clock); whether there was one.
    fn advance_to_next_deadline(&self) -> Result<bool, Errno>;
    /// Callers blocked in a send or receive now.
    fn blocked(&self) -> usize;
}

/// An in-process twin: one namespace per process.
pub(crate) struct TwinBackend {
    twin: Twin,
    /// The same twin as a `DynNamespace`, as the remote backend will be.
    ns: Box<dyn DynNamespace>,
}

impl TwinBackend {
    pub(crate) fn new(limits: mqtwin::Limits, virtual_time: bool) -> Result<Self, String> {
        let mut builder = Twin::builder().credentials(current_credentials());
        if virtual_time {
            builder = builder.virtual_time_at(SystemTime::now());
        }
        let twin = builder.build();
        twin.set_limits(limits)
            .map_err(|e| format!("the MQTWIN_* limits are refused: {e}"))?;
        Ok(TwinBackend {
            ns: Box::new(twin.clone()),
            twin,
        })
    }
}

/// The real process's identity: uid, gid, groups, umask, capabilities and
/// `RLIMIT_MSGQUEUE` (Linux reads /proc/self); elsewhere uid and gid with
/// the default umask and rlimit.
fn current_credentials() -> Credentials {
    Credentials::current().unwrap_or_else(|_| {
        // SAFETY: geteuid and getegid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if uid == 0 {
            Credentials::root()
        } else {
            Credentials::user(uid, gid)
        }
    })
}

impl Backend for TwinBackend {
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Box<dyn MessageQueue>, Errno> {
        Ok(self.ns.open_boxed(name, options)?)
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        Ok(self.ns.unlink_dyn(name)?)
    }

    fn now(&self) -> SystemTime {
        self.ns.now_dyn()
    }

    fn interrupt(&self, thread: ThreadId) -> bool {
        self.twin.interrupt(thread, false)
    }

    fn take_signals(&self) -> Vec<SignalInfo> {
        // Every sender is this process: the twin's pid stands for getpid().
        let pid = std::process::id();
        let mut signals = self.twin.take_signals();
        for s in &mut signals {
            s.pid = pid;
        }
        signals
    }

    fn advance(&self, by: Duration) -> Result<(), Errno> {
        let clock = self.twin.virtual_clock().ok_or(Errno(libc::EINVAL))?;
        clock.advance(by);
        Ok(())
    }

    fn advance_to_next_deadline(&self) -> Result<bool, Errno> {
        let clock = self.twin.virtual_clock().ok_or(Errno(libc::EINVAL))?;
        Ok(clock.advance_to_next_deadline().is_some())
    }

    fn blocked(&self) -> usize {
        self.twin.blocked()
    }
}

/// The twin of a `mqtwin serve` server (`MQTWIN_SOCKET`): this process is
/// one process of the served twin, with its real identity.
pub(crate) struct RemoteBackend {
    remote: Remote,
}

impl RemoteBackend {
    pub(crate) fn connect(path: &std::ffi::OsStr) -> Result<Self, Fatal> {
        let remote = Remote::connect(path).map_err(|e| Fatal {
            errno: Errno::from(e.clone()).0,
            message: format!(
                "MQTWIN_SOCKET={path:?}: cannot reach the twin server: {e}; every mq_* call \
                 fails"
            ),
        })?;
        Ok(RemoteBackend { remote })
    }
}

impl Backend for RemoteBackend {
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Box<dyn MessageQueue>, Errno> {
        Ok(self.remote.open_boxed(name, options)?)
    }

    fn unlink(&self, name: &str) -> Result<(), Errno> {
        Ok(self.remote.unlink_dyn(name)?)
    }

    fn now(&self) -> SystemTime {
        self.remote.now_dyn()
    }

    fn interrupt(&self, thread: ThreadId) -> bool {
        // A lost connection ends the call anyway (with its own error):
        // nothing is left to interrupt.
        self.remote.interrupt(thread, false).unwrap_or(true)
    }

    fn take_signals(&self) -> Vec<SignalInfo> {
        // The client raises notification signals itself, when the server
        // reports them (before the sending call returns, when this process
        // sent).
        Vec::new()
    }

    fn advance(&self, by: Duration) -> Result<(), Errno> {
        self.remote
            .advance(by)
            .map(drop)
            .map_err(|_| Errno(libc::EINVAL))
    }

    fn advance_to_next_deadline(&self) -> Result<bool, Errno> {
        (self.remote.advance_to_deadline())
            .map(|t| t.is_some())
            .map_err(|_| Errno(libc::EINVAL))
    }

    fn blocked(&self) -> usize {
        self.remote.blocked().unwrap_or(0)
    }
}

/// Everything the library keeps for the process.
pub(crate) struct State {
    pub(crate) backend: Box<dyn Backend>,
    pub(crate) table: Table,
    pub(crate) pool: Pool,
}

/// Why the library cannot work in this process: every call fails with
/// `errno` after one line on stderr.
pub(crate) struct Fatal {
    errno: i32,
    message: String,
}

static STATE: OnceLock<Result<State, Fatal>> = OnceLock::new();
static FORKED: AtomicBool = AtomicBool::new(false);
static TOLD_FATAL: Once = Once::new();
static TOLD_FORK: Once = Once::new();

extern "C" fn forked_child() {
    FORKED.store(true, Ordering::SeqCst);
}

fn init() -> Result<State, Fatal> {
    let backing = config::from_env(|k| std::env::var_os(k)).map_err(|e| Fatal {
        errno: libc::EINVAL,
        message: format!("{}; every mq_* call fails with EINVAL", e.0),
    })?;
    let backend: Box<dyn Backend> = match backing {
        Backing::InProcess {
            limits,
            virtual_time,
        } => Box::new(TwinBackend::new(limits, virtual_time).map_err(|m| Fatal {
            errno: libc::EINVAL,
            message: format!("{m}; every mq_* call fails with EINVAL"),
        })?),
        Backing::Remote(path) => Box::new(RemoteBackend::connect(&path)?),
    };
    // A child after fork() cannot share this process's twin: its threads
    // and locks did not come along. Its calls fail (see `state`).
    // SAFETY: registers a handler that only stores to an atomic, which is
    // async-signal-safe and valid in a forked child.
    let rc = unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    if rc != 0 {
        return Err(Fatal {
            errno: libc::ENOMEM,
            message: "pthread_atfork failed: fork safety cannot be ensured; every mq_* call \
                      fails with ENOMEM"
                .into(),
        });
    }
    Ok(State {
        backend,
        table: Table::default(),
        pool: Pool::default(),
    })
}

/// The process's state, made at the first call. Fails loudly (one line
/// on stderr, then the errno on every call) in a forked child, with a bad
/// environment, or when the backing is not available.
pub(crate) fn state() -> Result<&'static State, Errno> {
    if FORKED.load(Ordering::SeqCst) {
        TOLD_FORK.call_once(|| {
            eprintln!(
                "libmqtwin: this process is a fork() child of a process that used libmqtwin; \
                 its in-process twin cannot be shared with a child, so every mq_* call here \
                 fails with ENOTRECOVERABLE (exec a new program, or use the twin server)"
            )
        });
        return Err(Errno(libc::ENOTRECOVERABLE));
    }
    match STATE.get_or_init(init) {
        Ok(state) => Ok(state),
        Err(fatal) => {
            TOLD_FATAL.call_once(|| eprintln!("libmqtwin: {}", fatal.message));
            Err(Errno(fatal.errno))
        }
    }
}
