//! What a contract test needs from a backend, implemented for the twin and
//! for the kernel, so one generic test function runs on both.
//!
//! Kernel tests use unique names (`/mqtwin-<pid>-<n>-<tag>`) that the harness
//! unlinks when it is dropped, also while a failing test unwinds. Tests that
//! need another identity or fresh limits run their body in a child: on the
//! kernel a forked process that drops to another uid and/or enters a new IPC
//! namespace; on the twin another simulated process or a fresh `Twin`.
//!
//! Who runs the suite must not change what it checks. The twin always acts
//! as CI's identity (root without `CAP_SYS_RESOURCE`, see [`twin_identity`]);
//! the kernel acts as the real process ([`Credentials::current`]). A kernel
//! test that needs a privilege the machine does not give (an ordinary user,
//! or a container's root without `CAP_SYS_ADMIN`/`CAP_SETUID`) finds out by
//! trying: the forked child attempts the `unshare`/`setresuid`/sysctl write
//! and reports "cannot" (`EPERM`/`EACCES`) apart from "failed"; the test is
//! then skipped with one line on stderr, e.g.
//! `skipped (kernel): contract::limits::kernel::queues_max_limits_creation:
//! needs root (CAP_SYS_ADMIN) to unshare an IPC namespace: ...`.

#![allow(dead_code, unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use mqtwin::twin::{Capabilities, Credentials, Twin};
use mqtwin::{Limits, MessageQueue, Namespace};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// How a child run differs from the test's own process.
#[derive(Debug, Clone, Default)]
pub struct Child {
    /// Drop to this uid and gid (and lose every capability).
    pub user: Option<(u32, u32)>,
    /// Umask of the child.
    pub umask: Option<u32>,
    /// `RLIMIT_MSGQUEUE` soft limit of the child.
    pub rlimit: Option<u64>,
    /// Run in a fresh IPC namespace with these limits.
    pub limits: Option<Limits>,
}

static UIDS: AtomicUsize = AtomicUsize::new(0);

/// A uid no other test of this run uses, for per-user accounting tests
/// (kernel charges are per uid across all IPC namespaces). 54000–61999:
/// 128 uids per process, chosen by pid so concurrent runs rarely meet.
pub fn fresh_uid() -> u32 {
    let n = UIDS.fetch_add(1, Ordering::Relaxed) as u32;
    assert!(n < 128, "fresh_uid: more than 128 uids in one run");
    54_000 + (std::process::id() % 62) * 128 + n
}

/// The payload of a skipped test: what the machine could not give it.
#[derive(Debug)]
pub struct Skip(pub String);

/// Ends the current test as skipped, without the panic hook's message.
/// [`skip_if_unprivileged`] turns it into one line on stderr.
pub fn skip(reason: String) -> ! {
    std::panic::resume_unwind(Box::new(Skip(reason)))
}

/// Runs a kernel test; if it called [`skip`], prints
/// `skipped (kernel): <test>: <reason>` to stderr (past the test harness's
/// output capture, like nix's `skip!`) and passes. Any other panic fails
/// the test as usual.
pub fn skip_if_unprivileged(test: &str, body: impl FnOnce()) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        match payload.downcast::<Skip>() {
            Ok(skip) => {
                use std::io::Write;
                let line = format!("skipped (kernel): {test}: {}\n", skip.0);
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
                count_skip();
            }
            Err(other) => std::panic::resume_unwind(other),
        }
    }
}

/// Kernel tests of this binary that [`skip_if_unprivileged`] skipped.
static SKIPPED: AtomicUsize = AtomicUsize::new(0);

/// Counts a skipped test; the first one arranges for [`print_skip_summary`]
/// to run when the binary exits, after libtest's own summary (which counts
/// a skipped test as passed).
fn count_skip() {
    static SUMMARY: std::sync::Once = std::sync::Once::new();
    SKIPPED.fetch_add(1, Ordering::Relaxed);
    SUMMARY.call_once(|| {
        // SAFETY: `print_skip_summary` is an `extern "C" fn()` that never
        // unwinds (it only formats and writes, ignoring errors) and touches
        // only a static, so running it during `exit` is sound.
        #[cfg(unix)]
        unsafe {
            libc_atexit(print_skip_summary)
        };
    });
}

#[cfg(unix)]
extern "C" {
    #[link_name = "atexit"]
    fn libc_atexit(f: extern "C" fn()) -> std::os::raw::c_int;
}

/// One line per test binary: how many kernel tests were skipped, e.g.
/// `kernel tests skipped in contract: 37 (each named above on its own
/// "skipped (kernel)" line; libtest counted them as passed)`. It must not
/// contain that line's prefix itself: CI counts the prefixes.
extern "C" fn print_skip_summary() {
    use std::io::Write;
    let n = SKIPPED.load(Ordering::Relaxed);
    let binary = std::env::args()
        .next()
        .and_then(|a| {
            let base = std::path::Path::new(&a)
                .file_name()?
                .to_string_lossy()
                .into_owned();
            // Cargo names test binaries `<target>-<hash>`.
            Some(match base.rsplit_once('-') {
                Some((target, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => {
                    target.to_owned()
                }
                _ => base,
            })
        })
        .unwrap_or_else(|| "this binary".to_owned());
    let line = format!(
        "kernel tests skipped in {binary}: {n} (each named above on its own \"skipped (kernel)\" line; libtest counted them as passed)\n"
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// A capability the test's own process (not a child) must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `CAP_DAC_OVERRIDE`: open a queue whatever its mode.
    DacOverride,
    /// `CAP_FOWNER`: unlink another user's queue.
    Fowner,
}

/// What notification tests need from "the calling process" beyond the
/// `Namespace` trait: its ids, signal reception and a settle point. On the
/// kernel these act on the real (forked, single-threaded) process.
pub trait Caller {
    /// The caller's pid.
    fn self_pid(&self) -> u32;
    /// The caller's real uid.
    fn self_uid(&self) -> u32;
    /// Makes `signal` waitable (blocks it, so it is queued, not delivered).
    fn prepare_signal(&self, signal: i32);
    /// Waits up to `timeout` for `signal`.
    fn wait_signal(&self, signal: i32, timeout: std::time::Duration) -> Option<mqtwin::SignalInfo>;
    /// Waits until `n` threads of this caller are blocked in a send or receive.
    fn settle(&self, n: usize);
}

impl Caller for Twin {
    fn self_pid(&self) -> u32 {
        self.pid()
    }
    fn self_uid(&self) -> u32 {
        self.credentials().uid
    }
    fn prepare_signal(&self, _signal: i32) {}
    fn wait_signal(
        &self,
        signal: i32,
        _timeout: std::time::Duration,
    ) -> Option<mqtwin::SignalInfo> {
        // The twin delivers synchronously, during the send that fires.
        let mut all = self.take_signals();
        let i = all.iter().position(|s| s.signal == signal)?;
        Some(all.remove(i))
    }
    fn settle(&self, n: usize) {
        assert!(
            self.wait_blocked_timeout(n, std::time::Duration::from_secs(10)),
            "timed out waiting for {n} blocked threads"
        );
    }
}

/// A backend as the contract suite sees it.
pub trait Harness: Sync + Sized {
    /// The namespace type.
    type Ns: Namespace<Queue = Self::Q> + Caller + Sync;
    /// The handle type.
    type Q: MessageQueue + std::fmt::Debug + Send + Sync + 'static;

    /// The namespace the test acts in.
    fn ns(&self) -> &Self::Ns;

    /// A unique, valid queue name that is cleaned up after the test.
    fn name(&self, tag: &str) -> String;

    /// Must be the first call of every thread the test may later wait for.
    fn track(&self);

    /// Waits until `n` tracked threads are blocked in a send or receive.
    fn wait_blocked(&self, n: usize);

    /// The identity the test's own calls have (mirrors the real process on
    /// Linux, so kernel and twin expect the same results).
    fn credentials(&self) -> Credentials;

    /// Skips the test (see [`skip`]) unless the test's own process has
    /// `need`. The twin always has it ([`twin_identity`]).
    fn require(&self, need: Need) {
        let _ = need;
    }

    /// `dup`: another handle to the same open description.
    fn dup(&self, q: &Self::Q) -> Self::Q;

    /// Runs `f` as a child process described by `spec` and returns its output.
    fn in_child<F: FnOnce(&Self::Ns) -> String>(&self, spec: &Child, f: F) -> String;

    /// A unique name (without cleanup) for use inside `in_child` bodies that
    /// run in a fresh namespace.
    fn child_name(tag: &str) -> String {
        unique(tag)
    }
}

pub(crate) fn unique(tag: &str) -> String {
    format!(
        "/mqtwin-{}-{}-{tag}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The identity the twin harness acts as, whoever runs the suite: root
/// without `CAP_SYS_RESOURCE` (what CI's root in a container has), umask
/// `0o022`, the default `RLIMIT_MSGQUEUE`. The kernel harness uses the real
/// process ([`Credentials::current`]) and skips what that process cannot do.
pub fn twin_identity() -> Credentials {
    Credentials {
        capabilities: Capabilities {
            sys_resource: false,
            ..Capabilities::ALL
        },
        ..Credentials::root()
    }
}

/// The twin, behind the harness.
pub struct TwinHarness {
    twin: Twin,
}

impl TwinHarness {
    pub fn new() -> Self {
        TwinHarness {
            twin: Twin::with_credentials(twin_identity()),
        }
    }
}

impl Harness for TwinHarness {
    type Ns = Twin;
    type Q = mqtwin::twin::Queue;

    fn ns(&self) -> &Twin {
        &self.twin
    }

    fn name(&self, tag: &str) -> String {
        unique(tag)
    }

    fn track(&self) {}

    fn wait_blocked(&self, n: usize) {
        assert!(
            self.twin
                .wait_blocked_timeout(n, std::time::Duration::from_secs(10)),
            "timed out waiting for {n} blocked threads"
        );
    }

    fn credentials(&self) -> Credentials {
        self.twin.credentials().clone()
    }

    fn dup(&self, q: &Self::Q) -> Self::Q {
        q.try_clone().expect("dup")
    }

    fn in_child<F: FnOnce(&Twin) -> String>(&self, spec: &Child, f: F) -> String {
        let mut creds = self.credentials();
        if let Some((uid, gid)) = spec.user {
            creds = Credentials {
                umask: creds.umask,
                rlimit_msgqueue: creds.rlimit_msgqueue,
                ..Credentials::user(uid, gid)
            };
        }
        if let Some(umask) = spec.umask {
            creds.umask = umask;
        }
        if let Some(rlimit) = spec.rlimit {
            creds.rlimit_msgqueue = rlimit;
        }
        let ns = match spec.limits {
            Some(limits) => {
                let fresh = Twin::with_credentials(creds);
                fresh.set_limits(limits).expect("valid limits");
                fresh
            }
            None => self.twin.process(creds),
        };
        f(&ns)
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
pub use linux::KernelHarness;

#[cfg(all(target_os = "linux", feature = "posix", feature = "remote"))]
pub use crate::remote_harness::RemoteHarness;

#[cfg(all(target_os = "linux", feature = "posix"))]
#[path = "../common/mod.rs"]
mod common;

#[cfg(all(target_os = "linux", feature = "posix"))]
mod linux {
    use super::*;

    #[cfg(feature = "posix")]
    pub use kernel::KernelHarness;

    #[cfg(feature = "posix")]
    mod kernel {
        use super::*;
        use mqtwin::posix::Kernel;
        use std::sync::Mutex;
        use std::time::{Duration, Instant};

        /// The real kernel behind the harness.
        pub struct KernelHarness {
            names: Mutex<Vec<String>>,
            tids: Mutex<Vec<libc::pid_t>>,
        }

        impl KernelHarness {
            pub fn new() -> Self {
                KernelHarness {
                    names: Mutex::new(Vec::new()),
                    tids: Mutex::new(Vec::new()),
                }
            }
        }

        impl Drop for KernelHarness {
            fn drop(&mut self) {
                let names = self.names.get_mut().unwrap_or_else(|p| p.into_inner());
                for n in names.drain(..) {
                    let _ = Kernel.unlink(&n);
                }
            }
        }

        impl Caller for Kernel {
            fn self_pid(&self) -> u32 {
                std::process::id()
            }
            fn self_uid(&self) -> u32 {
                // SAFETY: no preconditions.
                unsafe { libc::getuid() }
            }
            fn prepare_signal(&self, signal: i32) {
                // SAFETY: manipulating this thread's mask with valid sets; the
                // notification tests run in a single-threaded forked child.
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
                let start = Instant::now();
                let count = || {
                    std::fs::read_dir("/proc/self/task")
                        .map(|d| {
                            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                                .filter(|&t| common::blocked_in_mq(t))
                                .count()
                        })
                        .unwrap_or(0)
                };
                while count() < n {
                    assert!(
                        start.elapsed() < Duration::from_secs(10),
                        "timed out waiting for {n} blocked threads"
                    );
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        }

        impl Harness for KernelHarness {
            type Ns = Kernel;
            type Q = mqtwin::posix::Queue;

            fn ns(&self) -> &Kernel {
                &Kernel
            }

            fn name(&self, tag: &str) -> String {
                let n = unique(tag);
                self.names.lock().unwrap().push(n.clone());
                n
            }

            fn track(&self) {
                // SAFETY: gettid has no preconditions.
                let tid = unsafe { libc::gettid() };
                self.tids.lock().unwrap().push(tid);
            }

            /// Settle strategy: poll `/proc/self/task/<tid>/{syscall,stat}`
            /// of the tracked threads until `n` of them sleep in an mq
            /// syscall on two reads 2 ms apart. A thread there can only be
            /// asleep in `wq_sleep`, i.e. queued as a waiter. Gives up after
            /// 10 s, failing the test.
            fn wait_blocked(&self, n: usize) {
                common::settle(n, || {
                    let tids = self.tids.lock().unwrap().clone();
                    tids.into_iter()
                        .filter(|&t| common::blocked_in_mq(t.into()))
                        .count()
                });
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

            fn dup(&self, q: &Self::Q) -> Self::Q {
                q.try_clone().expect("dup")
            }

            fn in_child<F: FnOnce(&Kernel) -> String>(&self, spec: &Child, f: F) -> String {
                match super::fork::run(spec, || f(&Kernel)) {
                    Ok(out) => out,
                    Err(cannot) => skip(cannot),
                }
            }
        }
    }
}

/// `Credentials::current()` against the system calls it stands for (its
/// uid, gid, groups, umask and rlimit are checked against `nix` in the
/// crate's unit tests; the capabilities need `capget`, which is here).
#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn current_credentials_have_the_capget_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: libc::c_int,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut head = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget with a valid v3 header and two data structs.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut head as *mut Header,
            data.as_mut_ptr(),
        )
    };
    assert_eq!(r, 0, "capget: {}", std::io::Error::last_os_error());
    let effective = u64::from(data[0].effective) | (u64::from(data[1].effective) << 32);
    let has = |bit: u32| effective & (1 << bit) != 0;
    let me = Credentials::current().expect("/proc/self readable");
    assert_eq!(
        me.capabilities,
        Capabilities {
            dac_override: has(1),
            fowner: has(3),
            sys_resource: has(24),
        }
    );
    // SAFETY: plain getters without preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!((me.uid, me.gid), (uid, gid));
}

/// Forked children for kernel tests that need another identity or a fresh
/// IPC namespace.
#[cfg(all(target_os = "linux", feature = "posix"))]
pub(crate) mod fork {
    use super::Child;
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};

    /// Serialises forks: a fork while another test thread holds a lock the
    /// child needs (the allocator's are handled by glibc) could deadlock.
    static FORK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// Why a child's set-up did not happen.
    enum SetUp {
        /// The machine does not give this process the privilege (`EPERM`,
        /// `EACCES`): the test is skipped.
        Cannot(String),
        /// Anything else: the test fails.
        Failed(String),
    }

    /// Sorts the last OS error of `what` into [`SetUp`]; `need` says which
    /// privilege would have made it work.
    fn os_error(what: &str, need: &str) -> SetUp {
        let e = std::io::Error::last_os_error();
        sort(e, what, need)
    }

    fn sort(e: std::io::Error, what: &str, need: &str) -> SetUp {
        match e.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => {
                SetUp::Cannot(format!("needs {need} to {what}: {e}"))
            }
            _ => SetUp::Failed(format!("{what}: {e}")),
        }
    }

    fn write_sysctls(l: &mqtwin::Limits) -> Result<(), SetUp> {
        for (file, v) in [
            ("queues_max", l.queues_max),
            ("msg_max", l.msg_max as i64),
            ("msgsize_max", l.msgsize_max as i64),
            ("msg_default", l.msg_default as i64),
            ("msgsize_default", l.msgsize_default as i64),
        ] {
            std::fs::write(format!("/proc/sys/fs/mqueue/{file}"), v.to_string()).map_err(|e| {
                sort(
                    e,
                    &format!("write the fs.mqueue.{file} sysctl"),
                    "root (uid 0 or CAP_DAC_OVERRIDE)",
                )
            })?;
        }
        Ok(())
    }

    fn set_up(spec: &Child) -> Result<(), SetUp> {
        // SAFETY (all calls below): plain syscalls on values we own, in the
        // single-threaded child.
        unsafe {
            if let Some(limits) = &spec.limits {
                if libc::unshare(libc::CLONE_NEWIPC) != 0 {
                    return Err(os_error("unshare an IPC namespace", "root (CAP_SYS_ADMIN)"));
                }
                write_sysctls(limits)?;
            }
            if let Some(r) = spec.rlimit {
                let mut rl = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut rl);
                rl.rlim_cur = r.min(rl.rlim_max);
                if libc::setrlimit(libc::RLIMIT_MSGQUEUE, &rl) != 0 {
                    let e = std::io::Error::last_os_error();
                    return Err(SetUp::Failed(format!("setrlimit: {e}")));
                }
            }
            if let Some(m) = spec.umask {
                libc::umask(m as libc::mode_t);
            }
            if let Some((uid, gid)) = spec.user {
                let need = "root (CAP_SETUID, CAP_SETGID)";
                if libc::setgroups(0, std::ptr::null()) != 0 {
                    return Err(os_error("clear the supplementary groups", need));
                }
                if libc::setresgid(gid, gid, gid) != 0 {
                    return Err(os_error(&format!("setgid to {gid}"), need));
                }
                if libc::setresuid(uid, uid, uid) != 0 {
                    return Err(os_error(&format!("setuid to {uid}"), need));
                }
            }
        }
        Ok(())
    }

    /// Exit status of a child whose set-up the machine does not allow.
    const CANNOT: i32 = 4;

    /// Runs `body` in a forked child set up as `spec`; returns what it
    /// returned, `Err` with what was missing when the machine cannot set the
    /// child up (no privilege), or panics with the child's failure.
    pub fn run(spec: &Child, body: impl FnOnce() -> String) -> Result<String, String> {
        let _serial = FORK.lock().unwrap_or_else(|p| p.into_inner());
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid two-element array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: the child only runs `set_up`, `body` and raw writes, then
        // `_exit`s without unwinding into the parent's test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: closing our copy of the read end.
            unsafe { libc::close(fds[0]) };
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                set_up(spec).map(|()| body())
            }));
            let (text, code) = match out {
                Ok(Ok(s)) => (s, 0),
                Ok(Err(SetUp::Cannot(e))) => (e, CANNOT),
                Ok(Err(SetUp::Failed(e))) => (format!("child set-up failed: {e}"), 2),
                Err(_) => ("child panicked".to_string(), 3),
            };
            // SAFETY: writing our own buffer to our pipe, then exiting
            // without running the parent's atexit handlers or destructors.
            unsafe {
                libc::write(fds[1], text.as_ptr().cast(), text.len());
                libc::_exit(code);
            }
        }
        // SAFETY: the write end belongs to us in the parent; close it so the
        // read sees EOF when the child exits. The read end is ours to own.
        let mut reader = unsafe {
            libc::close(fds[1]);
            std::fs::File::from(OwnedFd::from_raw_fd(fds[0]))
        };
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let code = libc::WEXITSTATUS(status);
        if libc::WIFEXITED(status) && code == CANNOT {
            return Err(text);
        }
        assert!(
            libc::WIFEXITED(status) && code == 0,
            "child failed ({code}): {text}"
        );
        Ok(text)
    }
}
