//! The remote backend behind the harness: every test gets its own
//! [`Server`] (a fresh twin) on a temporary socket in this process, and
//! acts through a [`Remote`] client connected to it. Children are forked
//! processes that connect on their own, so the server sees their real
//! identity (`SO_PEERCRED`, `/proc/<pid>`); a child that needs fresh limits
//! connects to a second server whose twin has them.

#![allow(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mqtwin::remote::{Remote, RemoteQueue, Server};
use mqtwin::twin::{Credentials, Twin};

use crate::harness::{fork, skip, unique, Caller, Child, Harness, Need};

static SOCKETS: AtomicUsize = AtomicUsize::new(0);

/// A fresh server on a unique socket path.
pub fn server(twin: Twin) -> Server {
    let path = std::env::temp_dir().join(format!(
        "mqtwin-contract-{}-{}.sock",
        std::process::id(),
        SOCKETS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    Server::bind(&path, twin).expect("bind the test server")
}

/// An in-process server and a client of it.
pub struct RemoteHarness {
    // Dropped first: the client's connection closes before the server.
    ns: Remote,
    server: Server,
}

impl RemoteHarness {
    pub fn new() -> Self {
        let server = server(Twin::new());
        let ns = Remote::connect(server.path()).expect("connect to the test server");
        RemoteHarness { ns, server }
    }
}

impl Caller for Remote {
    fn self_pid(&self) -> u32 {
        // Notification signals carry the sender's real pid where the
        // server learns it from the socket (Linux), its twin pid elsewhere.
        if cfg!(target_os = "linux") {
            std::process::id()
        } else {
            self.pid()
        }
    }
    fn self_uid(&self) -> u32 {
        // SAFETY: no preconditions.
        unsafe { libc::getuid() }
    }
    fn prepare_signal(&self, signal: i32) {
        // SAFETY: this thread's mask with valid sets. The client's event
        // thread blocks every signal, so the process-directed notification
        // stays pending for this thread's sigtimedwait.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
    }
    fn wait_signal(&self, signal: i32, timeout: Duration) -> Option<mqtwin::SignalInfo> {
        // SAFETY: valid set, info and timespec pointers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let ts = libc::timespec {
                tv_sec: timeout.as_secs() as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            if libc::sigtimedwait(&set, &mut info, &ts) != signal {
                return None;
            }
            Some(mqtwin::SignalInfo {
                signal: info.si_signo,
                code: info.si_code,
                value: info.si_value().sival_ptr as usize,
                pid: info.si_pid() as u32,
                uid: info.si_uid(),
            })
        }
    }
    fn settle(&self, n: usize) {
        assert!(
            self.wait_blocked(n, Duration::from_secs(10))
                .expect("server"),
            "timed out waiting for {n} blocked threads"
        );
    }
}

impl Harness for RemoteHarness {
    type Ns = Remote;
    type Q = RemoteQueue;

    fn ns(&self) -> &Remote {
        &self.ns
    }

    fn name(&self, tag: &str) -> String {
        unique(tag)
    }

    fn track(&self) {}

    fn wait_blocked(&self, n: usize) {
        assert!(
            self.server
                .twin()
                .wait_blocked_timeout(n, Duration::from_secs(10)),
            "timed out waiting for {n} blocked threads"
        );
    }

    fn credentials(&self) -> Credentials {
        Credentials::current().expect("/proc/self/status and /proc/self/limits")
    }

    fn require(&self, need: Need) {
        let caps = self.credentials().capabilities;
        let (has, what) = match need {
            Need::DacOverride => (caps.dac_override, "CAP_DAC_OVERRIDE"),
            Need::Fowner => (caps.fowner, "CAP_FOWNER"),
        };
        if !has {
            skip(format!(
                "needs {what} in the test process (root usually has it)"
            ));
        }
    }

    fn dup(&self, q: &RemoteQueue) -> RemoteQueue {
        q.try_clone().expect("dup")
    }

    fn in_child<F: FnOnce(&Remote) -> String>(&self, spec: &Child, f: F) -> String {
        let fresh = spec.limits.map(|limits| {
            let s = server(Twin::new());
            s.twin().set_limits(limits).expect("valid limits");
            s
        });
        let path = fresh.as_ref().unwrap_or(&self.server).path().to_path_buf();
        // The child's own limits are the twin's: it must not unshare.
        let spec = Child {
            limits: None,
            ..spec.clone()
        };
        let r = fork::run(&spec, || {
            let ns = Remote::connect(&path).expect("connect from the child");
            f(&ns)
        });
        match r {
            Ok(out) => out,
            Err(cannot) => skip(cannot),
        }
    }
}
