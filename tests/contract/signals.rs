//! Scheduling priority and signals for the contract suite: what a test
//! needs to give a thread a nice value and to interrupt one blocked thread,
//! on the twin (`twin::set_thread_nice`, `Twin::interrupt`) and on the
//! kernel (`setpriority`, and `pthread_sigqueue` of a signal with a no-op
//! handler installed with or without `SA_RESTART`).

#![allow(unsafe_code)]

use std::thread::ThreadId;

use crate::harness::{Harness, TwinHarness};

/// A thread a test may interrupt, as each backend names it.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    id: ThreadId,
    #[cfg(all(target_os = "linux", feature = "posix"))]
    kernel: kernel::Thread,
}

impl Target {
    /// The calling thread.
    pub fn current() -> Self {
        Target {
            id: std::thread::current().id(),
            #[cfg(all(target_os = "linux", feature = "posix"))]
            kernel: kernel::Thread::current(),
        }
    }
}

/// Nice values and signals, on top of [`Harness`].
pub trait Sched: Harness {
    /// Makes the calling thread `nice` steps less favoured than the test's
    /// own threads (0..=19: raising needs no privilege, so ordinary users
    /// can run this).
    fn set_nice(&self, nice: i32);

    /// Interrupts `target`, blocked in this backend, with a signal whose
    /// handler does nothing and was installed with `SA_RESTART`
    /// (`restart`) or without. Returns once the signal has been acted on.
    fn interrupt(&self, target: &Target, restart: bool);

    /// Waits until `target` is blocked in `wait_ready` (`poll`), the `n`th
    /// blocked caller of the test.
    fn wait_polling(&self, target: &Target, n: usize);
}

impl Sched for TwinHarness {
    fn set_nice(&self, nice: i32) {
        assert_eq!(mqtwin::twin::set_thread_nice(nice), nice);
    }

    fn interrupt(&self, target: &Target, restart: bool) {
        // Whether it found the call blocked is the twin's own business
        // (tests/simulation.rs): the kernel cannot tell.
        let _ = self.ns().interrupt(target.id, restart);
    }

    fn wait_polling(&self, _target: &Target, n: usize) {
        self.wait_blocked(n);
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel {
    use super::{Sched, Target};
    use crate::harness::KernelHarness;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Once;
    use std::time::{Duration, Instant};

    /// The kernel's names for a thread.
    #[derive(Debug, Clone, Copy)]
    pub struct Thread {
        pthread: libc::pthread_t,
        tid: libc::pid_t,
    }

    impl Thread {
        pub fn current() -> Self {
            // SAFETY: getters without preconditions.
            unsafe {
                Thread {
                    pthread: libc::pthread_self(),
                    tid: libc::gettid(),
                }
            }
        }
    }

    /// One signal per flavour, so that parallel tests never change a
    /// handler another test relies on; real-time signals nothing else uses.
    fn signal(restart: bool) -> libc::c_int {
        libc::SIGRTMIN() + if restart { 7 } else { 6 }
    }

    /// The handler: marks the flag whose address came with the signal.
    extern "C" fn on_signal(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid siginfo. Only signals this
        // process queued with `pthread_sigqueue` (SI_QUEUE) carry a value,
        // the address of a leaked, never-freed `AtomicBool`; an atomic store
        // is async-signal-safe.
        unsafe {
            // SAFETY: `std::process::id` is getpid, async-signal-safe.
            if (*info).si_code == libc::SI_QUEUE && (*info).si_pid() as u32 == std::process::id() {
                let flag = (*info).si_value().sival_ptr as *const AtomicBool;
                if !flag.is_null() {
                    (*flag).store(true, Ordering::SeqCst);
                }
            }
        }
    }

    fn install(restart: bool) {
        static PLAIN: Once = Once::new();
        static RESTART: Once = Once::new();
        let once = if restart { &RESTART } else { &PLAIN };
        once.call_once(|| {
            // SAFETY: a valid sigaction for a signal nothing else handles;
            // the handler only does an atomic store.
            unsafe {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
                sa.sa_flags = libc::SA_SIGINFO | if restart { libc::SA_RESTART } else { 0 };
                libc::sigemptyset(&mut sa.sa_mask);
                assert_eq!(
                    libc::sigaction(signal(restart), &sa, std::ptr::null_mut()),
                    0,
                    "sigaction: {}",
                    std::io::Error::last_os_error()
                );
            }
        });
    }

    /// The system calls `poll` may use.
    #[cfg(target_arch = "x86_64")]
    const POLLS: &[libc::c_long] = &[libc::SYS_poll, libc::SYS_ppoll];
    #[cfg(not(target_arch = "x86_64"))]
    const POLLS: &[libc::c_long] = &[libc::SYS_ppoll];

    /// Whether thread `tid` of this process sleeps in one of `syscalls`.
    fn sleeps_in(tid: libc::pid_t, syscalls: &[libc::c_long]) -> bool {
        let read = |f: &str| std::fs::read_to_string(format!("/proc/self/task/{tid}/{f}"));
        let (Ok(sc), Ok(stat)) = (read("syscall"), read("stat")) else {
            return false;
        };
        let nr = sc.split_whitespace().next().and_then(|n| n.parse().ok());
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        nr.is_some_and(|nr| syscalls.contains(&nr)) && state == Some('S')
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out: {what}"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    impl Sched for KernelHarness {
        fn set_nice(&self, nice: i32) {
            // SAFETY: get/setpriority of the calling thread (who = 0 is the
            // thread on Linux); errno is cleared to tell -1 from an error.
            unsafe {
                *libc::__errno_location() = 0;
                let base = libc::getpriority(libc::PRIO_PROCESS, 0);
                assert_eq!(*libc::__errno_location(), 0, "getpriority");
                assert!(
                    base + nice <= 19,
                    "the tests run at nice {base}: too high to add {nice}"
                );
                assert_eq!(
                    libc::setpriority(libc::PRIO_PROCESS, 0, base + nice),
                    0,
                    "setpriority({}): {}",
                    base + nice,
                    std::io::Error::last_os_error()
                );
            }
        }

        fn interrupt(&self, target: &Target, restart: bool) {
            install(restart);
            // Leaked: a late handler must never write to freed memory.
            let ran: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
            let value = libc::sigval {
                sival_ptr: (ran as *const AtomicBool).cast_mut().cast(),
            };
            // SAFETY: the target thread is alive (the test joins it only
            // later) and the signal has a handler in this process.
            let rc =
                unsafe { libc::pthread_sigqueue(target.kernel.pthread, signal(restart), value) };
            assert_eq!(rc, 0, "pthread_sigqueue: {rc}");
            wait_until("the signal handler to run", || ran.load(Ordering::SeqCst));
        }

        fn wait_polling(&self, target: &Target, _n: usize) {
            let tid = target.kernel.tid;
            // Twice, 2 ms apart, as the harness settles blocked threads.
            wait_until("the thread to block in poll", || {
                sleeps_in(tid, POLLS) && {
                    std::thread::sleep(Duration::from_millis(2));
                    sleeps_in(tid, POLLS)
                }
            });
        }
    }
}
