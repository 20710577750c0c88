//! Scripted multi-thread schedules, run on both backends with the same
//! expectations: who gets which message, and the exact `Result` of every call.
//!
//! Each scenario is a generic `fn scenario<B: Backend>(b: &B)`, instantiated
//! for the twin (everywhere) and the kernel (Linux, feature `posix`) by
//! `instantiate!` at the bottom, like the contract suite.
//!
//! # Schedules
//!
//! Threads that must block are started one at a time with [`Scene::blocked`],
//! which returns only once that thread (and every one started before it) is
//! *settled*: queued as a waiter in the send or receive, or already finished.
//! So the order of the waiter lists is the order of the `blocked` calls, and
//! the rest of the scenario runs in the test thread, one call at a time.
//! "Finished" counts as settled so that a timed waiter whose deadline passes
//! early (a loaded machine) cannot stall a later wait: its result is
//! `TimedOut` either way, and that is what the scenario asserts.
//!
//! # Settle strategy
//!
//! - **Twin**: deterministic. `Twin::blocked()` counts the callers currently
//!   in a waiter list (a waiter is counted under the queue lock when it
//!   enqueues itself and uncounted by whoever serves it, or by itself when
//!   its deadline passes). A scene is settled at `n` when `blocked() +
//!   finished >= n`; `Twin::wait_blocked_timeout` does the waiting.
//! - **Kernel**: each tracked thread records its tid. A thread is blocked
//!   when `/proc/self/task/<tid>/syscall` names `mq_timedsend` or
//!   `mq_timedreceive` (the file names a syscall only for a thread that is
//!   not running) *and* `/proc/self/task/<tid>/stat` shows state `S`. Why
//!   that is not a guess: on the send and receive paths the only
//!   interruptible sleep is `wq_sleep`, and `wq_sleep` links the task into
//!   the queue's waiter list (`wq_add`, under `info->lock`) *before* it sets
//!   `TASK_INTERRUPTIBLE` and drops the lock. Other sleeps on those paths
//!   (page faults while copying the message, memory allocation) are
//!   uninterruptible (`D`), and a runnable or preempted thread is `R`. A
//!   served waiter is set running by `wake_up_q` before the serving call
//!   returns, so after a `send`/`receive` of the test thread returns it no
//!   longer counts as blocked. The count is confirmed by a second read 2 ms
//!   later (cheap insurance against an interruptible sleep elsewhere on the
//!   path in some future kernel). No scenario depends on a sleep being long
//!   enough: the only real-time waits are the deadlines of the timed waiters
//!   the scenarios *expect* to time out, and those are joined before
//!   anything else happens.
//!
//! Calls that the scenario expects to block forever are `receive`/`send`
//! without a deadline. If an assertion fails while such a thread is
//! blocked, a [`Rescue`] guard feeds and drains the queue so the scope can
//! join and the failure is reported instead of hanging.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant, SystemTime};

use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// Maximum message length of every queue here.
const LEN: usize = 32;
/// Timeout of waiters the scenarios expect to time out.
const SHORT: Duration = Duration::from_millis(100);
/// Timeout of timed waiters the scenarios expect to be served: never reached.
const GUARD: Duration = Duration::from_secs(10);
/// Longest a settle may take before the scenario fails.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

type Got = Result<(String, u32), Error>;

fn msg(m: &str, priority: u32) -> Got {
    Ok((m.to_string(), priority))
}

// ---------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------

static NAMES: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        "/mqtwin-scn-{}-{}-{tag}",
        std::process::id(),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

/// One thread a scene waits for.
struct Slot {
    /// Kernel thread id, once the thread has started (0 before).
    tid: AtomicUsize,
    /// The thread's call has returned.
    done: AtomicBool,
}

/// The threads of one scene.
#[derive(Default)]
struct Tracker {
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl Tracker {
    fn add(&self) -> (usize, Arc<Slot>) {
        let slot = Arc::new(Slot {
            tid: AtomicUsize::new(0),
            done: AtomicBool::new(false),
        });
        let mut slots = self.slots.lock().unwrap();
        slots.push(Arc::clone(&slot));
        (slots.len(), slot)
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        self.slots.lock().unwrap().clone()
    }

    fn finished(&self) -> usize {
        self.slots()
            .iter()
            .filter(|s| s.done.load(Ordering::SeqCst))
            .count()
    }
}

/// A backend as the scenarios see it.
trait Backend: Sync + Sized {
    type Ns: Namespace<Queue = Self::Q> + Sync;
    type Q: MessageQueue + Debug + Send + Sync + 'static;

    fn ns(&self) -> &Self::Ns;
    /// A unique valid name, unlinked when the backend is dropped.
    fn name(&self, tag: &str) -> String;
    /// `dup` of a handle.
    fn dup(q: &Self::Q) -> Result<Self::Q, Error>;
    fn tracker(&self) -> &Tracker;
    /// Waits until `n` tracked threads are settled (blocked or finished).
    fn settle(&self, n: usize);
}

struct TwinBackend {
    twin: Twin,
    tracker: Tracker,
}

impl TwinBackend {
    fn new() -> Self {
        TwinBackend {
            twin: Twin::new(),
            tracker: Tracker::default(),
        }
    }
}

impl Backend for TwinBackend {
    type Ns = Twin;
    type Q = mqtwin::twin::Queue;

    fn ns(&self) -> &Twin {
        &self.twin
    }

    fn name(&self, tag: &str) -> String {
        unique(tag)
    }

    fn dup(q: &Self::Q) -> Result<Self::Q, Error> {
        q.try_clone()
    }

    fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    fn settle(&self, n: usize) {
        let start = Instant::now();
        loop {
            let finished = self.tracker.finished();
            if self.twin.blocked() + finished >= n {
                return;
            }
            assert!(
                start.elapsed() < SETTLE_LIMIT,
                "twin: timed out waiting for {n} settled threads ({} blocked, {finished} finished)",
                self.twin.blocked()
            );
            // Wakes as soon as enough callers block; the short timeout
            // notices threads that finish instead.
            self.twin
                .wait_blocked_timeout(n - finished, Duration::from_millis(1));
        }
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel_backend {
    use super::*;
    use mqtwin::posix::Kernel;

    pub struct KernelBackend {
        names: Mutex<Vec<String>>,
        tracker: Tracker,
    }

    impl KernelBackend {
        pub fn new() -> Self {
            KernelBackend {
                names: Mutex::new(Vec::new()),
                tracker: Tracker::default(),
            }
        }
    }

    impl Drop for KernelBackend {
        fn drop(&mut self) {
            let names = self.names.get_mut().unwrap_or_else(|p| p.into_inner());
            for n in names.drain(..) {
                let _ = Kernel.unlink(&n);
            }
        }
    }

    /// Whether thread `tid` of this process sleeps in `wq_sleep` of
    /// mq_timedsend / mq_timedreceive (see the file's top comment).
    fn blocked_in_mq(tid: usize) -> bool {
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

    impl KernelBackend {
        fn settled(&self) -> usize {
            self.tracker
                .slots()
                .iter()
                .filter(|s| {
                    s.done.load(Ordering::SeqCst) || {
                        let tid = s.tid.load(Ordering::SeqCst);
                        tid != 0 && blocked_in_mq(tid)
                    }
                })
                .count()
        }
    }

    impl Backend for KernelBackend {
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

        fn dup(q: &Self::Q) -> Result<Self::Q, Error> {
            q.try_clone()
        }

        fn tracker(&self) -> &Tracker {
            &self.tracker
        }

        fn settle(&self, n: usize) {
            let start = Instant::now();
            loop {
                if self.settled() >= n {
                    std::thread::sleep(Duration::from_millis(2));
                    if self.settled() >= n {
                        return;
                    }
                }
                assert!(
                    start.elapsed() < SETTLE_LIMIT,
                    "kernel: timed out waiting for {n} settled threads ({} settled)",
                    self.settled()
                );
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// Sets its slot's `done` flag when the tracked call has returned (also
/// when it panicked).
struct Done(Arc<Slot>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.done.store(true, Ordering::SeqCst);
    }
}

fn current_tid() -> usize {
    #[cfg(target_os = "linux")]
    {
        nix::unistd::gettid().as_raw() as usize
    }
    #[cfg(not(target_os = "linux"))]
    {
        1
    }
}

/// A scenario's helpers, bound to one backend.
struct Scene<'b, B: Backend> {
    b: &'b B,
}

impl<'b, B: Backend> Scene<'b, B> {
    fn new(b: &'b B) -> Self {
        Scene { b }
    }

    fn ns(&self) -> &'b B::Ns {
        self.b.ns()
    }

    /// Creates a fresh queue; returns its name and a blocking read-write handle.
    fn create(&self, tag: &str, capacity: usize) -> (String, B::Q) {
        let name = self.b.name(tag);
        let q = self
            .ns()
            .open(
                &name,
                &OpenOptions::read_write()
                    .create_new()
                    .capacity(capacity)
                    .max_msg_len(LEN),
            )
            .unwrap();
        (name, q)
    }

    fn open(&self, name: &str, opts: OpenOptions) -> B::Q {
        self.ns().open(name, &opts).unwrap()
    }

    /// Runs `f` in a new thread and returns once that thread is settled:
    /// queued as a waiter, or finished.
    fn blocked<'scope, T, F>(
        &self,
        s: &'scope Scope<'scope, '_>,
        f: F,
    ) -> ScopedJoinHandle<'scope, T>
    where
        T: Send + 'scope,
        F: FnOnce() -> T + Send + 'scope,
    {
        let (n, slot) = self.b.tracker().add();
        let h = s.spawn(move || {
            slot.tid.store(current_tid(), Ordering::SeqCst);
            let _done = Done(slot);
            f()
        });
        self.b.settle(n);
        h
    }
}

/// Receives one message into a `String`.
fn recv_with<Q: MessageQueue>(
    q: &Q,
    call: impl FnOnce(&Q, &mut [u8]) -> Result<mqtwin::Received, Error>,
) -> Got {
    let mut buf = [0u8; LEN];
    let r = call(q, &mut buf)?;
    Ok((
        String::from_utf8(buf[..r.len].to_vec()).unwrap(),
        r.priority,
    ))
}

/// Receive, waiting without a deadline.
fn recv<Q: MessageQueue>(q: &Q) -> Got {
    recv_with(q, |q, b| q.receive(b))
}

/// Receive, never waiting.
fn take<Q: MessageQueue>(q: &Q) -> Got {
    recv_with(q, |q, b| q.try_receive(b))
}

/// Receive with a relative timeout; also returns when the call started.
fn recv_timeout<Q: MessageQueue>(q: &Q, t: Duration) -> (Got, SystemTime) {
    let start = SystemTime::now();
    (recv_with(q, |q, b| q.receive_timeout(b, t)), start)
}

fn send_timeout<Q: MessageQueue>(
    q: &Q,
    m: &str,
    p: u32,
    t: Duration,
) -> (Result<(), Error>, SystemTime) {
    let start = SystemTime::now();
    (q.send_timeout(m.as_bytes(), p, t), start)
}

fn current<Q: MessageQueue>(q: &Q) -> usize {
    q.attributes().unwrap().current_messages
}

fn nonblocking<Q: MessageQueue>(q: &Q) -> bool {
    q.attributes().unwrap().nonblocking
}

/// Asserts a timed-out call did wait until its deadline (wall clock, as the
/// deadline is).
fn waited_short((r, start): (Got, SystemTime)) -> Got {
    let waited = SystemTime::now().duration_since(start).unwrap_or_default();
    assert!(waited >= SHORT, "timed out after only {waited:?}");
    r
}

fn waited_short_send((r, start): (Result<(), Error>, SystemTime)) -> Result<(), Error> {
    let waited = SystemTime::now().duration_since(start).unwrap_or_default();
    assert!(waited >= SHORT, "timed out after only {waited:?}");
    r
}

/// Unblocks every waiter of the given queues when a scenario panics inside
/// a scope, so the scope can join its threads and report the failure.
/// Declare it first in the scope closure: it is then dropped last.
struct Rescue<'a, Q: MessageQueue>(Vec<&'a Q>);

impl<Q: MessageQueue> Drop for Rescue<'_, Q> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut buf = vec![0u8; 1 << 16];
        for _ in 0..250 {
            for q in &self.0 {
                let _ = q.try_send(b"", 0);
                let _ = q.try_receive(&mut buf);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// A read-write handle the rescue uses (its own open description, so the
/// scenario's flags do not affect it).
fn rescuer<B: Backend>(sc: &Scene<'_, B>, name: &str) -> B::Q {
    sc.open(name, OpenOptions::read_write())
}

// ---------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------

/// Four receivers block in order R1..R4 on one handle. Sends at priorities
/// 3, 32767, 0 go to R1, R2, R3 in send order (priority plays no part in a
/// handoff) and are never queued. With R4 still waiting the queue is empty.
/// Then d(1) goes to R4 and e(9), f(5) are queued and come out by priority.
fn several_receivers_then_sends_at_different_priorities<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("recv-prio", 4);
    let tx = sc.open(&name, OpenOptions::write_only());
    let rq = rescuer(&sc, &name);
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r1 = sc.blocked(s, || recv(&q));
        let r2 = sc.blocked(s, || recv(&q));
        let r3 = sc.blocked(s, || recv(&q));
        let r4 = sc.blocked(s, || recv(&q));
        for (m, p) in [("a", 3), ("b", 32767), ("c", 0)] {
            assert_eq!(tx.send(m.as_bytes(), p), Ok(()));
            assert_eq!(current(&q), 0, "{m} was handed over, not queued");
        }
        assert_eq!(r1.join().unwrap(), msg("a", 3));
        assert_eq!(r2.join().unwrap(), msg("b", 32767));
        assert_eq!(r3.join().unwrap(), msg("c", 0));
        // R4 still waits: nothing is queued for anyone else.
        assert_eq!(take(&q), Err(Error::WouldBlock));
        assert_eq!(tx.send(b"d", 1), Ok(()));
        assert_eq!(current(&q), 0);
        assert_eq!(tx.send(b"e", 9), Ok(()));
        assert_eq!(tx.send(b"f", 5), Ok(()));
        assert_eq!(current(&q), 2);
        assert_eq!(r4.join().unwrap(), msg("d", 1));
    });
    assert_eq!(take(&q), msg("e", 9));
    assert_eq!(take(&q), msg("f", 5));
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

/// A full queue (capacity 2: a(1), b(1)) with senders S1 c(0), S2 d(9),
/// S3 e(5), S4 f(9) blocked in that order. Each receive takes the head and
/// moves the *first* blocked sender's message in, so the queue stays full
/// and a try_send gets WouldBlock until the senders are gone:
/// a → {b1,c0}; b → {d9,c0}; d → {e5,c0}; e → {f9,c0}; f → {c0}.
fn full_queue_several_blocked_senders_then_receives<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("send-fifo", 2);
    let rx = sc.open(&name, OpenOptions::read_only());
    let rq = rescuer(&sc, &name);
    assert_eq!(q.send(b"a", 1), Ok(()));
    assert_eq!(q.send(b"b", 1), Ok(()));
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let s1 = sc.blocked(s, || q.send(b"c", 0));
        let s2 = sc.blocked(s, || q.send(b"d", 9));
        let s3 = sc.blocked(s, || q.send(b"e", 5));
        let s4 = sc.blocked(s, || q.send(b"f", 9));
        assert_eq!(q.try_send(b"x", 32767), Err(Error::WouldBlock));
        for (expected, sender) in [
            (msg("a", 1), s1),
            (msg("b", 1), s2),
            (msg("d", 9), s3),
            (msg("e", 5), s4),
        ] {
            assert_eq!(take(&rx), expected);
            assert_eq!(current(&q), 2, "the receive moved a sender in");
            assert_eq!(q.try_send(b"x", 32767), Err(Error::WouldBlock));
            assert_eq!(sender.join().unwrap(), Ok(()));
        }
    });
    assert_eq!(take(&rx), msg("f", 9));
    assert_eq!(current(&q), 1);
    assert_eq!(q.try_send(b"g", 0), Ok(()));
    assert_eq!(take(&rx), msg("c", 0));
    assert_eq!(take(&rx), msg("g", 0));
    assert_eq!(take(&rx), Err(Error::WouldBlock));
}

/// Receivers R1 (no deadline), R2 (100 ms), R3 (no deadline), R4 (100 ms),
/// R5 (10 s) block in that order on an empty queue. R2 and R4 time out and
/// leave without disturbing the others; then m1(1), m2(9), m3(5), m4(2) go
/// to R1, R3, R5 (served long before its deadline) and m4 is queued.
fn timeouts_expire_among_receivers<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("recv-timeouts", 4);
    let rq = rescuer(&sc, &name);
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r1 = sc.blocked(s, || recv(&q));
        let r2 = sc.blocked(s, || recv_timeout(&q, SHORT));
        let r3 = sc.blocked(s, || recv(&q));
        let r4 = sc.blocked(s, || recv_timeout(&q, SHORT));
        let r5 = sc.blocked(s, || recv_timeout(&q, GUARD));
        assert_eq!(waited_short(r2.join().unwrap()), Err(Error::TimedOut));
        assert_eq!(waited_short(r4.join().unwrap()), Err(Error::TimedOut));
        assert_eq!(current(&q), 0);
        for (m, p) in [("m1", 1), ("m2", 9), ("m3", 5), ("m4", 2)] {
            assert_eq!(q.send(m.as_bytes(), p), Ok(()));
        }
        assert_eq!(current(&q), 1, "three handed over, one queued");
        assert_eq!(r1.join().unwrap(), msg("m1", 1));
        assert_eq!(r3.join().unwrap(), msg("m2", 9));
        assert_eq!(r5.join().unwrap().0, msg("m3", 5));
    });
    // A zero timeout on a non-empty queue succeeds; on an empty one it
    // times out at once.
    assert_eq!(recv_timeout(&q, Duration::ZERO).0, msg("m4", 2));
    assert_eq!(recv_timeout(&q, Duration::ZERO).0, Err(Error::TimedOut));
}

/// A full queue (capacity 1: q0) with senders S1 x1(9, 100 ms), S2 x2(1, no
/// deadline), S3 x3(32767, 100 ms), S4 x4(3, 10 s) blocked in that order.
/// S1 and S3 time out and their messages are never queued; the receives
/// then move in S2's and S4's messages, in block order.
fn timeouts_expire_among_senders<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("send-timeouts", 1);
    let rq = rescuer(&sc, &name);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let s1 = sc.blocked(s, || send_timeout(&q, "x1", 9, SHORT));
        let s2 = sc.blocked(s, || q.send(b"x2", 1));
        let s3 = sc.blocked(s, || send_timeout(&q, "x3", 32767, SHORT));
        let s4 = sc.blocked(s, || send_timeout(&q, "x4", 3, GUARD));
        assert_eq!(waited_short_send(s1.join().unwrap()), Err(Error::TimedOut));
        assert_eq!(waited_short_send(s3.join().unwrap()), Err(Error::TimedOut));
        assert_eq!(current(&q), 1);
        assert_eq!(take(&q), msg("q0", 0));
        assert_eq!(current(&q), 1, "x2 moved in");
        assert_eq!(s2.join().unwrap(), Ok(()));
        assert_eq!(take(&q), msg("x2", 1));
        assert_eq!(current(&q), 1, "x4 moved in");
        assert_eq!(s4.join().unwrap().0, Ok(()));
    });
    assert_eq!(take(&q), msg("x4", 3));
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

/// R1 blocks on handle `q`; then `q` is made non-blocking. R1 keeps waiting;
/// a receive through `q`'s dup (same description) fails at once with
/// WouldBlock, while a separately opened handle still blocks (R2). Sends go
/// to R1 then R2. After switching back, a receiver on the dup blocks again
/// (R3). The send side: S1 blocks on `q`, `q` turns non-blocking, S1 stays
/// queued, a send through `q` gets WouldBlock, and a receive moves S1 in.
fn set_nonblocking_while_another_thread_waits<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("nonblock", 2);
    let dq = B::dup(&q).unwrap();
    let p = sc.open(&name, OpenOptions::read_only());
    let tx = sc.open(&name, OpenOptions::write_only());
    let rq = rescuer(&sc, &name);
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r1 = sc.blocked(s, || recv(&q));
        assert_eq!(q.set_nonblocking(true), Ok(false));
        assert!(nonblocking(&q));
        assert!(nonblocking(&dq), "a dup shares the description's flag");
        assert!(!nonblocking(&p), "another open has its own flag");
        let mut buf = [0u8; LEN];
        assert_eq!(dq.receive(&mut buf), Err(Error::WouldBlock));
        assert_eq!(dq.receive_timeout(&mut buf, GUARD), Err(Error::WouldBlock));
        let r2 = sc.blocked(s, || recv(&p));
        assert_eq!(tx.send(b"m1", 1), Ok(()));
        assert_eq!(tx.send(b"m2", 2), Ok(()));
        assert_eq!(current(&q), 0);
        assert_eq!(r1.join().unwrap(), msg("m1", 1));
        assert_eq!(r2.join().unwrap(), msg("m2", 2));
        assert_eq!(dq.set_nonblocking(false), Ok(true));
        assert!(!nonblocking(&q));
        let r3 = sc.blocked(s, || recv(&dq));
        assert_eq!(tx.send(b"m3", 3), Ok(()));
        assert_eq!(r3.join().unwrap(), msg("m3", 3));
    });
    assert_eq!(tx.send(b"f1", 1), Ok(()));
    assert_eq!(tx.send(b"f2", 2), Ok(()));
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let s1 = sc.blocked(s, || q.send(b"s1", 7));
        assert_eq!(dq.set_nonblocking(true), Ok(false));
        assert_eq!(q.send(b"x", 0), Err(Error::WouldBlock));
        assert_eq!(q.send_timeout(b"x", 0, GUARD), Err(Error::WouldBlock));
        // A blocking handle still queues up behind S1.
        let s2 = sc.blocked(s, || tx.send(b"s2", 9));
        assert_eq!(take(&p), msg("f2", 2));
        assert_eq!(current(&q), 2);
        assert_eq!(s1.join().unwrap(), Ok(()));
        assert_eq!(take(&p), msg("s1", 7));
        assert_eq!(s2.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&p), msg("s2", 9));
    assert_eq!(take(&p), msg("f1", 1));
    assert_eq!(take(&p), Err(Error::WouldBlock));
}

/// R1 blocks on a queue; the name is unlinked and re-created (capacity 1)
/// as an independent queue. A send to the new queue is queued there and
/// does not reach R1; a send through an old handle does. Then senders on the
/// unlinked queue: S1 blocks on the full old queue and a receive through an
/// old handle moves it in.
fn unlink_while_another_thread_waits<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("unlink", 2);
    let tx = sc.open(&name, OpenOptions::write_only());
    let rq = rescuer(&sc, &name);
    let fresh = std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r1 = sc.blocked(s, || recv(&q));
        assert_eq!(sc.ns().unlink(&name), Ok(()));
        assert_eq!(
            sc.ns().open(&name, &OpenOptions::read_write()).err(),
            Some(Error::NotFound { name: name.clone() })
        );
        let fresh = sc
            .ns()
            .open(
                &name,
                &OpenOptions::read_write()
                    .create_new()
                    .capacity(1)
                    .max_msg_len(LEN),
            )
            .unwrap();
        assert_eq!(fresh.send(b"new", 4), Ok(()));
        assert_eq!(current(&fresh), 1);
        assert_eq!(fresh.try_send(b"new2", 4), Err(Error::WouldBlock));
        assert_eq!(current(&q), 0);
        assert_eq!(q.attributes().unwrap().capacity, 2);
        assert_eq!(take(&q), Err(Error::WouldBlock), "R1 still waits");
        assert_eq!(tx.send(b"old", 3), Ok(()));
        assert_eq!(r1.join().unwrap(), msg("old", 3));
        fresh
    });
    assert_eq!(tx.send(b"a", 1), Ok(()));
    assert_eq!(tx.send(b"b", 2), Ok(()));
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let s1 = sc.blocked(s, || tx.send(b"s1", 5));
        assert_eq!(take(&q), msg("b", 2));
        assert_eq!(current(&q), 2);
        assert_eq!(s1.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&q), msg("s1", 5));
    assert_eq!(take(&q), msg("a", 1));
    assert_eq!(take(&q), Err(Error::WouldBlock));
    assert_eq!(take(&fresh), msg("new", 4));
    assert_eq!(sc.ns().unlink(&name), Ok(()));
    assert_eq!(
        sc.ns().unlink(&name),
        Err(Error::NotFound { name: name.clone() })
    );
}

/// Closing one copy of a handle never disturbs a thread waiting on the
/// other: R1 waits on `q` while its dup is dropped; R2 waits on a dup while
/// the original is dropped (after an unlink); S1 waits on the writer
/// handle while the writer's dup is dropped.
fn dropping_a_dup_while_another_thread_waits<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("dup", 1);
    let tx = sc.open(&name, OpenOptions::write_only());
    let rq = rescuer(&sc, &name);
    let d = B::dup(&q).unwrap();
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r1 = sc.blocked(s, || recv(&q));
        drop(d);
        assert_eq!(tx.send(b"one", 1), Ok(()));
        assert_eq!(r1.join().unwrap(), msg("one", 1));
    });
    let d2 = B::dup(&q).unwrap();
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r2 = sc.blocked(s, || recv(&d2));
        assert_eq!(sc.ns().unlink(&name), Ok(()));
        drop(q);
        assert_eq!(current(&d2), 0);
        assert_eq!(tx.send(b"two", 2), Ok(()));
        assert_eq!(r2.join().unwrap(), msg("two", 2));
    });
    let txd = B::dup(&tx).unwrap();
    assert_eq!(txd.send(b"full", 0), Ok(()));
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let s1 = sc.blocked(s, || tx.send(b"three", 3));
        drop(txd);
        assert_eq!(take(&d2), msg("full", 0));
        assert_eq!(current(&d2), 1);
        assert_eq!(s1.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&d2), msg("three", 3));
    assert_eq!(take(&d2), Err(Error::WouldBlock));
}

/// While R waits, a send and a burst of try_receives (through another,
/// non-blocking handle) start together from a barrier. The send hands its
/// message straight to R, so every try_receive gets WouldBlock whichever
/// comes first. Repeated to let the race go both ways.
fn send_racing_try_receive_while_receiver_blocked<B: Backend>(b: &B) {
    const ROUNDS: u32 = 40;
    const TRIES: usize = 50;
    let sc = Scene::new(b);
    let (name, q) = sc.create("race", 4);
    let tx = sc.open(&name, OpenOptions::write_only());
    let nb = sc.open(&name, OpenOptions::read_only().nonblocking());
    let rq = rescuer(&sc, &name);
    for round in 0..ROUNDS {
        let start = Barrier::new(2);
        let m = format!("m{round}");
        std::thread::scope(|s| {
            let _rescue = Rescue(vec![&rq]);
            let r = sc.blocked(s, || recv(&q));
            let sender = s.spawn(|| {
                start.wait();
                tx.send(m.as_bytes(), round)
            });
            let racer = s.spawn(|| {
                start.wait();
                let mut buf = [0u8; LEN];
                (0..TRIES)
                    .map(|i| {
                        if i % 2 == 0 {
                            nb.try_receive(&mut buf)
                        } else {
                            nb.receive(&mut buf)
                        }
                    })
                    .collect::<Vec<_>>()
            });
            assert_eq!(sender.join().unwrap(), Ok(()));
            assert_eq!(racer.join().unwrap(), vec![Err(Error::WouldBlock); TRIES]);
            assert_eq!(r.join().unwrap(), msg(&m, round));
            assert_eq!(current(&q), 0);
        });
    }
}

/// Receivers on two descriptions of one queue with different access modes
/// (read-only and read-write) form one waiter list: R1 (ro), R2 (rw),
/// R3 (ro), R4 (rw) are served in block order by sends from a write-only
/// and the read-write handle. A write-only handle cannot receive and a
/// read-only one cannot send, waiters or not.
fn receivers_on_two_handles_with_different_access_modes<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, _creator) = sc.create("two-handles", 3);
    let ro = sc.open(&name, OpenOptions::read_only());
    let rw = sc.open(&name, OpenOptions::read_write());
    let wo = sc.open(&name, OpenOptions::write_only().nonblocking());
    let rq = rescuer(&sc, &name);
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let r1 = sc.blocked(s, || recv(&ro));
        let r2 = sc.blocked(s, || recv(&rw));
        let r3 = sc.blocked(s, || recv(&ro));
        let r4 = sc.blocked(s, || recv(&rw));
        assert_eq!(take(&wo), Err(Error::NotReadable));
        assert_eq!(ro.try_send(b"no", 1), Err(Error::NotWritable));
        assert_eq!(wo.send(b"a", 5), Ok(()));
        assert_eq!(rw.send(b"b", 1), Ok(()));
        assert_eq!(wo.send(b"c", 9), Ok(()));
        assert_eq!(rw.try_send(b"d", 0), Ok(()));
        assert_eq!(current(&ro), 0);
        assert_eq!(r1.join().unwrap(), msg("a", 5));
        assert_eq!(r2.join().unwrap(), msg("b", 1));
        assert_eq!(r3.join().unwrap(), msg("c", 9));
        assert_eq!(r4.join().unwrap(), msg("d", 0));
    });
    assert_eq!(wo.send(b"e", 2), Ok(()));
    assert_eq!(current(&rw), 1);
    assert_eq!(take(&ro), msg("e", 2));
    assert_eq!(take(&rw), Err(Error::WouldBlock));
}

/// A full queue (capacity 3: a(2), b(7), c(2)) with three different blocked
/// senders: S1 x(1) timed (10 s) on a write-only handle, S2 y(30000) without
/// deadline on a read-write handle, S3 z(7) on a dup of the write-only one.
/// Non-blocking sends and a short timed send fail without joining the line.
/// Each receive takes the highest-priority head and moves the *first*
/// sender's message in, whatever its priority: the queue stays full and
/// try_send gets WouldBlock until the last sender is in.
fn mixed_blocked_senders_and_move_in<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("mixed-senders", 3);
    let wo = sc.open(&name, OpenOptions::write_only());
    let wod = B::dup(&wo).unwrap();
    let rx = sc.open(&name, OpenOptions::read_only());
    let nb = sc.open(&name, OpenOptions::read_write().nonblocking());
    let rq = rescuer(&sc, &name);
    for (m, p) in [("a", 2), ("b", 7), ("c", 2)] {
        assert_eq!(q.send(m.as_bytes(), p), Ok(()));
    }
    std::thread::scope(|s| {
        let _rescue = Rescue(vec![&rq]);
        let s1 = sc.blocked(s, || send_timeout(&wo, "x", 1, GUARD));
        let s2 = sc.blocked(s, || q.send(b"y", 30000));
        let s3 = sc.blocked(s, || wod.send(b"z", 7));
        assert_eq!(nb.send(b"n", 32767), Err(Error::WouldBlock));
        assert_eq!(q.try_send(b"n", 32767), Err(Error::WouldBlock));
        assert_eq!(
            waited_short_send(send_timeout(&q, "t", 32767, SHORT)),
            Err(Error::TimedOut)
        );
        let past = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(
            q.send_deadline(b"t", 32767, Some(past)),
            Err(Error::TimedOut)
        );
        assert_eq!(take(&rx), msg("b", 7));
        assert_eq!(current(&q), 3, "x moved in at once");
        assert_eq!(nb.try_send(b"n", 0), Err(Error::WouldBlock));
        assert_eq!(q.try_send(b"n", 0), Err(Error::WouldBlock));
        assert_eq!(s1.join().unwrap().0, Ok(()));
        assert_eq!(take(&rx), msg("a", 2));
        assert_eq!(current(&q), 3, "y moved in at once");
        assert_eq!(nb.try_send(b"n", 0), Err(Error::WouldBlock));
        assert_eq!(s2.join().unwrap(), Ok(()));
        assert_eq!(take(&rx), msg("y", 30000));
        assert_eq!(current(&q), 3, "z moved in at once");
        assert_eq!(wo.try_send(b"n", 0), Err(Error::WouldBlock));
        assert_eq!(s3.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&rx), msg("z", 7));
    assert_eq!(current(&q), 2);
    assert_eq!(nb.try_send(b"w", 0), Ok(()));
    for expected in [msg("c", 2), msg("x", 1), msg("w", 0)] {
        assert_eq!(take(&rx), expected);
    }
    assert_eq!(take(&rx), Err(Error::WouldBlock));
}

/// Creates `twin::<scenario>` and `kernel::<scenario>` tests.
macro_rules! instantiate {
    ($($test:ident),* $(,)?) => {
        mod twin {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::TwinBackend::new());
                }
            )*
        }
        #[cfg(all(target_os = "linux", feature = "posix"))]
        mod kernel {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::kernel_backend::KernelBackend::new());
                }
            )*
        }
    };
}

instantiate!(
    several_receivers_then_sends_at_different_priorities,
    full_queue_several_blocked_senders_then_receives,
    timeouts_expire_among_receivers,
    timeouts_expire_among_senders,
    set_nonblocking_while_another_thread_waits,
    unlink_while_another_thread_waits,
    dropping_a_dup_while_another_thread_waits,
    send_racing_try_receive_while_receiver_blocked,
    receivers_on_two_handles_with_different_access_modes,
    mixed_blocked_senders_and_move_in,
);
