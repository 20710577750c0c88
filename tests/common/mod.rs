//! Helpers shared by the kernel test binaries: unique names, unlinking, and
//! the settle strategy that tells when threads are queued as waiters of a
//! kernel queue (the contract suite, the scenarios and the async contract
//! use it).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use mqtwin::posix::Kernel;
use mqtwin::Namespace;

/// A queue name no other test (of this or another concurrent run) uses:
/// `/mqtwin-<pid>-<tag>-<n>`.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/mqtwin-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unlinks the kernel queue `name` when dropped: when the test ends, also
/// when it fails.
pub struct Unlink(pub String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Kernel.unlink(&self.0);
    }
}

/// Whether thread `tid` of this process is queued as a waiter of a kernel
/// queue: `/proc/self/task/<tid>/syscall` names `mq_timedsend` or
/// `mq_timedreceive` (the file names a syscall only for a thread that is
/// not running) and `/proc/self/task/<tid>/stat` shows state `S`. On those
/// paths the only interruptible sleep is `wq_sleep`, which links the task
/// into the waiter list (`wq_add`, under `info->lock`) before it sleeps.
pub fn blocked_in_mq(tid: i64) -> bool {
    let Ok(sc) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let nr = sc
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<i64>().ok());
    if nr != Some(libc::SYS_mq_timedsend) && nr != Some(libc::SYS_mq_timedreceive) {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state == Some('S')
}

/// Waits until `count()` reaches `n` on two reads 2 ms apart (cheap
/// insurance against an interruptible sleep elsewhere on the path in some
/// future kernel), polling every 200 µs; fails the test after 10 s.
pub fn settle(n: usize, count: impl Fn() -> usize) {
    let start = std::time::Instant::now();
    loop {
        if count() >= n {
            std::thread::sleep(std::time::Duration::from_millis(2));
            if count() >= n {
                return;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "kernel: timed out waiting for {n} blocked threads ({} blocked)",
            count()
        );
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}
