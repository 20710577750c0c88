//! Kernel backend: thread notifications use a bounded set of sockets,
//! reader threads and callback workers, whatever the rate of registrations
//! (docs/semantics.md Y19).
//!
//! The long runs: each cycle registers a `Notify::Thread` callback, sends
//! one message (the notification fires) and receives it, so never more than
//! one registration is live. One variant waits for each callback before the
//! next cycle, the other never waits (a burst: the callbacks run while the
//! next cycles go on). After a warm-up the test samples the open descriptors
//! (`/proc/self/fd`), the threads (`Threads:` of `/proc/self/status`) and the
//! resident memory (`VmRSS:`) and fails if any of them grows by more than a
//! small absolute slack. Before the fix, every 64 callbacks the reader had
//! not yet caught up with added a socket and a reader thread for the life of
//! the process (100,000 cycles without waiting: 58 → 261 descriptors, 29,163
//! threads at the peak, 336 MB resident).
//!
//! The others pin the bounds themselves: at most [`POOL`] callbacks run at
//! once (the rest wait, none lost), added sockets, their readers and extra
//! workers go away once idle, and a forked child starts its own.
//!
//! Its own test binary, so no other test's threads or descriptors come and
//! go while it counts; its tests take turns (one lock).
//! `MQTWIN_NOTIFY_CYCLES` sets the number of measured cycles (default
//! 100,000).

#![cfg(all(target_os = "linux", feature = "posix"))]
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use mqtwin::posix::Kernel;
use mqtwin::{MessageQueue, Namespace, Notify, OpenOptions};

mod common;

use common::{unique_name, Unlink};

/// Cycles before the baseline is taken: the notification socket, its reader
/// and the callback pool exist by then, and the allocator has its arenas.
const WARM_UP: usize = 5_000;
/// Samples are taken every this many cycles.
const SAMPLE_EVERY: usize = 1_000;
/// Slack over the baseline. The crate may add a socket (and its reader) for
/// a moment if its readers fall behind, and grows its callback pool to at
/// most [`POOL`] workers; before the fix 100,000 cycles added hundreds of
/// sockets and readers.
const FD_SLACK: usize = 3;
const THREAD_SLACK: usize = POOL + 2;
const RSS_SLACK_KB: u64 = 4 * 1024;
/// How long one callback may take to arrive.
const PATIENCE: Duration = Duration::from_secs(20);

/// One test at a time: the counts are the process's.
static SERIAL: Mutex<()> = Mutex::new(());

/// Measured cycles: `MQTWIN_NOTIFY_CYCLES`, else `default`.
fn cycles(default: usize) -> usize {
    std::env::var("MQTWIN_NOTIFY_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The crate's notification threads of this process: (readers, workers),
/// by name (`/proc/self/task/*/comm`, cut to 15 bytes).
fn crate_threads() -> (usize, usize) {
    let (mut readers, mut workers) = (0, 0);
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        match comm.trim_end() {
            "mqtwin-notify-r" => readers += 1,
            "mqtwin-notify" => workers += 1,
            _ => {}
        }
    }
    (readers, workers)
}

#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    fds: usize,
    threads: usize,
    rss_kb: u64,
}

fn status_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn usage() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    Usage {
        // The directory's own descriptor is counted every time alike.
        fds: std::fs::read_dir("/proc/self/fd").unwrap().count(),
        threads: status_field(&status, "Threads:") as usize,
        rss_kb: status_field(&status, "VmRSS:"),
    }
}

fn max(a: Usage, b: Usage) -> Usage {
    Usage {
        fds: a.fds.max(b.fds),
        threads: a.threads.max(b.threads),
        rss_kb: a.rss_kb.max(b.rss_kb),
    }
}

/// Runs `warm_up + measured` cycles; returns the baseline (after the
/// warm-up) and the highest sample of each count after it.
fn run(tag: &str, wait_each: bool, measured: usize) -> (Usage, Usage) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let name = unique_name(tag);
    let _cleanup = Unlink(name.clone());
    let q = Kernel
        .open(
            &name,
            &OpenOptions::read_write()
                .create()
                .capacity(2)
                .max_msg_len(16),
        )
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<()>();
    let mut buf = [0u8; 16];
    let mut base = Usage::default();
    let mut peak = Usage::default();
    let total = WARM_UP + measured;
    let started = Instant::now();
    for cycle in 0..total {
        // Only the waiting variant reports on the channel: unread reports
        // would pile up in it and be counted as the crate's memory.
        let (ran, tx) = (Arc::clone(&ran), wait_each.then(|| tx.clone()));
        q.notify(Notify::thread(move || {
            ran.fetch_add(1, Ordering::Relaxed);
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }))
        .unwrap_or_else(|e| panic!("cycle {cycle}: notify: {e:?}"));
        q.send(b"x", 0).unwrap();
        q.receive(&mut buf).unwrap();
        if wait_each {
            rx.recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("cycle {cycle}: the callback did not run"));
        }
        if cycle + 1 == WARM_UP {
            base = usage();
            peak = base;
        } else if cycle >= WARM_UP && (cycle + 1 - WARM_UP) % SAMPLE_EVERY == 0 {
            peak = max(peak, usage());
        }
    }
    // Every callback runs, also in the variant that did not wait.
    let end = Instant::now() + PATIENCE;
    while ran.load(Ordering::Relaxed) < total && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ran.load(Ordering::Relaxed), total, "callbacks that ran");
    peak = max(peak, usage());
    eprintln!(
        "{tag}: {total} cycles in {:?}; after the warm-up {base:?}, highest {peak:?}",
        started.elapsed()
    );
    (base, peak)
}

fn assert_flat(what: &str, base: Usage, peak: Usage) {
    assert!(
        peak.fds <= base.fds + FD_SLACK,
        "{what}: open descriptors grew from {} to {}",
        base.fds,
        peak.fds
    );
    assert!(
        peak.threads <= base.threads + THREAD_SLACK,
        "{what}: threads grew from {} to {}",
        base.threads,
        peak.threads
    );
    assert!(
        peak.rss_kb <= base.rss_kb + RSS_SLACK_KB,
        "{what}: resident memory grew from {} kB to {} kB",
        base.rss_kb,
        peak.rss_kb
    );
}

#[test]
fn waiting_for_each_callback_keeps_descriptors_threads_and_memory_flat() {
    // Each cycle waits for a reader and a worker to wake up: ~20-80 µs
    // here, so fewer by default (100,000: 2-8 s in a debug build).
    let (base, peak) = run("grow-wait", true, cycles(20_000));
    assert_flat("waiting for each callback", base, peak);
}

#[test]
fn not_waiting_for_callbacks_keeps_descriptors_threads_and_memory_flat() {
    let (base, peak) = run("grow-nowait", false, cycles(100_000));
    assert_flat("not waiting for callbacks", base, peak);
}

/// The most callback workers the kernel backend starts (docs/semantics.md
/// Y19).
const POOL: usize = 8;

/// Polls `done` every millisecond for up to [`PATIENCE`]; returns its last
/// answer.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + PATIENCE;
    while !done() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// Holds callbacks until opened; opens when dropped, so a failing test does
/// not leave the crate's workers blocked for the next one.
struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

impl Gate {
    fn new() -> Self {
        Gate(Arc::new((Mutex::new(false), std::sync::Condvar::new())))
    }
    /// A callback body that counts itself in `started`, waits for the gate,
    /// then counts itself in `ran`.
    fn blocked(&self, started: &Arc<AtomicUsize>, ran: &Arc<AtomicUsize>) -> impl FnOnce() {
        let (gate, started, ran) = (Arc::clone(&self.0), Arc::clone(started), Arc::clone(ran));
        move || {
            started.fetch_add(1, Ordering::SeqCst);
            let (open, cv) = &*gate;
            let mut open = open.lock().unwrap_or_else(|p| p.into_inner());
            while !*open {
                open = cv.wait(open).unwrap_or_else(|p| p.into_inner());
            }
            drop(open);
            ran.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn open(&self) {
        *self.0 .0.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.0 .1.notify_all();
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// Queues of one test, unlinked at its end.
struct Queues {
    queues: Vec<mqtwin::posix::Queue>,
    _cleanup: Vec<Unlink>,
}

fn open_queues(tag: &str, n: usize) -> Queues {
    let mut queues = Vec::new();
    let mut cleanup = Vec::new();
    for _ in 0..n {
        let name = unique_name(tag);
        cleanup.push(Unlink(name.clone()));
        queues.push(
            Kernel
                .open(
                    &name,
                    &OpenOptions::read_write()
                        .create()
                        .capacity(1)
                        .max_msg_len(16),
                )
                .unwrap(),
        );
    }
    Queues {
        queues,
        _cleanup: cleanup,
    }
}

/// One notify → send → receive cycle that waits for its callback.
fn fire_and_wait(q: &mqtwin::posix::Queue) {
    let (tx, rx) = mpsc::channel();
    q.notify(Notify::thread(move || {
        let _ = tx.send(());
    }))
    .unwrap();
    q.send(b"x", 0).unwrap();
    q.receive(&mut [0u8; 16]).unwrap();
    rx.recv_timeout(PATIENCE).expect("the callback did not run");
}

/// Callbacks that block hold at most [`POOL`] threads: with one worker left
/// the others keep running, and once every worker is held the next
/// callbacks wait their turn, none lost. A cancel still releases its
/// closure at once (the cancelling thread drops it). Before the pool, every
/// callback had a thread of its own (24 blocked callbacks: 24 threads).
#[test]
fn blocked_callbacks_hold_at_most_the_pool_and_the_rest_wait_their_turn() {
    const BLOCKED: usize = 3 * POOL;
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let qs = open_queues("pool", BLOCKED + 2);
    let (free, cancelled) = (&qs.queues[BLOCKED], &qs.queues[BLOCKED + 1]);
    fire_and_wait(free); // the socket, its reader and the first worker
    let base = usage();

    let gate = Gate::new();
    let started = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let arm = |q: &mqtwin::posix::Queue| {
        q.notify(Notify::thread(gate.blocked(&started, &ran)))
            .unwrap();
        q.send(b"x", 0).unwrap();
    };
    // All workers but one blocked: callbacks still run.
    for q in &qs.queues[..POOL - 1] {
        arm(q);
    }
    assert!(
        eventually(|| started.load(Ordering::SeqCst) == POOL - 1),
        "{} of {} blocking callbacks started",
        started.load(Ordering::SeqCst),
        POOL - 1
    );
    for _ in 0..1_000 {
        fire_and_wait(free);
    }
    // Every worker blocked: the rest wait in the queue.
    for q in &qs.queues[POOL - 1..BLOCKED] {
        arm(q);
    }
    assert!(
        eventually(|| started.load(Ordering::SeqCst) >= POOL),
        "the last worker did not take a callback"
    );
    // Give a wrong implementation time to start more.
    std::thread::sleep(Duration::from_millis(200));
    let held = usage();
    assert_eq!(
        started.load(Ordering::SeqCst),
        POOL,
        "callbacks running at once"
    );
    assert!(
        crate_threads().1 <= POOL,
        "(readers, workers) {:?}",
        crate_threads()
    );
    assert!(
        held.threads <= base.threads + POOL,
        "threads grew from {} to {} with {BLOCKED} blocked callbacks",
        base.threads,
        held.threads
    );

    // A cancel does not wait for a worker to drop what it removed.
    let live = Arc::new(AtomicUsize::new(1));
    let owned = {
        let live = Arc::clone(&live);
        DropCounts(live)
    };
    cancelled
        .notify(Notify::thread(move || drop(owned)))
        .unwrap();
    cancelled.cancel_notify().unwrap();
    assert_eq!(
        live.load(Ordering::SeqCst),
        0,
        "the cancelled closure is alive"
    );

    gate.open();
    assert!(
        eventually(|| ran.load(Ordering::SeqCst) == BLOCKED),
        "{} of {BLOCKED} blocked callbacks ran after the release",
        ran.load(Ordering::SeqCst)
    );
    assert_eq!(started.load(Ordering::SeqCst), BLOCKED);
}

/// Decrements its counter when dropped.
struct DropCounts(Arc<AtomicUsize>);

impl Drop for DropCounts {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// More pending registrations than one socket serves add sockets (and
/// readers); once they have fired, the added sockets are closed and their
/// readers and the extra workers exit. Before, every added socket and
/// reader stayed for the life of the process.
#[test]
fn added_sockets_readers_and_workers_go_away_when_idle() {
    const PENDING: usize = 64 + 2; // two sockets
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let qs = open_queues("reclaim", PENDING);
    fire_and_wait(&qs.queues[0]); // the first socket, reader and worker
    let base = usage();

    let ran = Arc::new(AtomicUsize::new(0));
    for q in &qs.queues {
        let ran = Arc::clone(&ran);
        q.notify(Notify::thread(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
    }
    let busy = usage();
    // Nothing has fired: both sockets and readers are busy (a new thread
    // names itself once it runs).
    assert!(
        busy.fds > base.fds && eventually(|| crate_threads().0 >= 2),
        "{PENDING} pending registrations on {} sockets, (readers, workers) {:?}",
        busy.fds - base.fds + 1,
        crate_threads()
    );
    for q in &qs.queues {
        q.send(b"x", 0).unwrap();
    }
    assert!(
        eventually(|| ran.load(Ordering::SeqCst) == PENDING),
        "{} of {PENDING} callbacks ran",
        ran.load(Ordering::SeqCst)
    );
    // The added sockets close 1 s after their last cookie, extra workers
    // exit after 2 s without a job: one reader and one worker remain.
    assert!(
        eventually(|| usage().fds <= base.fds && crate_threads() == (1, 1)),
        "descriptors {} (before the burst: {}), (readers, workers) {:?}",
        usage().fds,
        base.fds,
        crate_threads()
    );
}

/// Registers a thread notification on the empty queue `q`, sends one
/// message and waits for the callback: whether all three happened.
fn a_thread_notification_fires(q: &mqtwin::posix::Queue) -> bool {
    let (tx, rx) = mpsc::channel();
    q.notify(Notify::thread(move || {
        let _ = tx.send(());
    }))
    .is_ok()
        && q.send(b"x", 0).is_ok()
        && rx.recv_timeout(PATIENCE).is_ok()
}

/// A forked child starts with no socket, reader or worker of its own (the
/// parent's threads do not exist in it) and its thread notifications work.
#[test]
fn a_forked_child_gets_its_own_socket_reader_and_worker() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let qs = open_queues("fork", 2);
    fire_and_wait(&qs.queues[0]); // the parent's table is in use
    let child_queue = &qs.queues[1];
    // SAFETY: the child only runs the crate's notification path (no lock of
    // the crate is held at the fork: nothing is being notified) and leaves
    // with `_exit`.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = a_thread_notification_fires(child_queue)
            // Its own: one reader, one worker (the parent's do not exist).
            && crate_threads() == (1, 1);
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: `pid` is our child; `status` is valid to write into.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the child's thread notification did not run (status {status:#x})"
    );
    // The parent's own still work.
    child_queue.receive(&mut [0u8; 16]).unwrap();
    fire_and_wait(&qs.queues[0]);
}

/// A fork while another thread holds the notification table's lock (it is
/// registering, cancelling or reading a cookie) must not leave the child
/// with a lock nobody will release: the child's first registration would
/// wait forever. One thread churns registrations while the test forks 200
/// times; every child must register, fire and run a thread notification
/// within its time (a hung child is killed and fails the test).
#[test]
fn a_fork_while_the_table_is_busy_leaves_the_child_a_usable_table() {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let qs = open_queues("forkbusy", 2);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (q, stop) = (qs.queues[0].try_clone().unwrap(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _ = q.notify(Notify::thread(|| {}));
                let _ = q.cancel_notify();
            }
        })
    };
    let child_queue = &qs.queues[1];
    let mut hung = 0;
    for _ in 0..200 {
        // SAFETY: the child only uses the crate's notification path and
        // leaves with `_exit`; that path is what this test checks.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = a_thread_notification_fires(child_queue)
                && child_queue.receive(&mut [0u8; 16]).is_ok();
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let end = Instant::now() + Duration::from_secs(10);
        let mut status = 0;
        loop {
            // SAFETY: `pid` is our child; `status` is valid to write into.
            let waited = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if waited == pid {
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "a child's thread notification failed (status {status:#x})"
                );
                break;
            }
            if Instant::now() >= end {
                // SAFETY: `pid` is our child, still running.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                    libc::waitpid(pid, &mut status, 0);
                }
                hung += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert_eq!(
        hung, 0,
        "{hung} of 200 forked children hung in their first registration"
    );
}
