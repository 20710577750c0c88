//! The harness of the scenarios (`tests/scenarios.rs`, whose top comment
//! explains the schedules and the settle strategies): the [`Backend`]s, the
//! thread tracker and the [`Scene`] helpers. Also included by
//! `tests/determinism.rs`, which uses only the deterministic backend.

// Each including test crate uses part of it.
#![allow(dead_code)]

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use mqtwin::twin::{Sim, Twin};
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// Maximum message length of every queue here.
pub const LEN: usize = 32;
/// Timeout of waiters the scenarios expect to time out.
pub const SHORT: Duration = Duration::from_millis(100);
/// Timeout of timed waiters the scenarios expect to be served: never reached.
pub const GUARD: Duration = Duration::from_secs(10);
/// Longest a settle may take before the scenario fails.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

pub type Got = Result<(String, u32), Error>;

pub fn msg(m: &str, priority: u32) -> Got {
    Ok((m.to_string(), priority))
}

/// `share!(a, b => expr)`: a `move` closure evaluating `expr` over clones of
/// the `Arc` handles `a`, `b` (threads of a scene own what they use, as a
/// participant of a deterministic twin must).
macro_rules! share {
    ($($h:ident),+ => $body:expr) => {{
        $(let $h = std::sync::Arc::clone(&$h);)+
        move || $body
    }};
}

static NAMES: AtomicUsize = AtomicUsize::new(0);

fn unique(tag: &str) -> String {
    format!(
        "/mqtwin-scn-{}-{}-{tag}",
        std::process::id(),
        NAMES.fetch_add(1, Ordering::Relaxed)
    )
}

/// One thread a scene waits for.
pub struct Slot {
    /// Kernel thread id, once the thread has started (0 before).
    tid: AtomicUsize,
    /// The thread's call has returned.
    done: AtomicBool,
}

/// The threads of one scene.
#[derive(Default)]
pub struct Tracker {
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

/// A thread started by a scene; [`join`](Joiner::join) waits for its result
/// (the panic message, or the failed run's report, when it has none).
pub struct Joiner<T>(Box<dyn FnOnce() -> Result<T, String> + Send>);

impl<T> Joiner<T> {
    pub fn join(self) -> Result<T, String> {
        (self.0)()
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    (p.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned())
}

/// A scene thread on a real OS thread (the free-running twin, the kernel).
fn os_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Joiner<T> {
    let h = std::thread::spawn(f);
    Joiner(Box::new(move || h.join().map_err(panic_text)))
}

/// A backend as the scenarios see it.
pub trait Backend: Sized {
    type Ns: Namespace<Queue = Self::Q>;
    type Q: MessageQueue + Debug + Send + Sync + 'static;

    fn ns(&self) -> &Self::Ns;
    /// A unique valid name, unlinked when the backend is dropped.
    fn name(&self, tag: &str) -> String;
    /// `dup` of a handle.
    fn dup(q: &Self::Q) -> Result<Self::Q, Error>;
    fn tracker(&self) -> &Tracker;
    /// Waits until `n` tracked threads are settled (blocked or finished).
    fn settle(&self, n: usize);
    /// Starts `f` on a thread of its own.
    fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Joiner<T>;
    /// Lets `n` threads start a race together: a barrier between real
    /// threads; `None` on the deterministic twin, whose scheduler
    /// interleaves them from the seed (a barrier would stall its run).
    fn start_line(&self, n: usize) -> Option<Arc<Barrier>>;
}

/// The free-running twin: real threads, real clock.
pub struct TwinBackend {
    twin: Twin,
    tracker: Tracker,
}

impl TwinBackend {
    pub fn new() -> Self {
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

    fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Joiner<T> {
        os_thread(f)
    }

    fn start_line(&self, n: usize) -> Option<Arc<Barrier>> {
        Some(Arc::new(Barrier::new(n)))
    }
}

/// A deterministic twin (`TwinBuilder::deterministic`, traced): the scenario
/// itself runs as a participant (see [`run_deterministic`]), and so does
/// every thread it starts. Names are numbered per backend, not per process,
/// so that two runs make the same calls.
pub struct DetBackend {
    twin: Twin,
    sim: Sim,
    tracker: Tracker,
    names: AtomicUsize,
}

impl DetBackend {
    pub fn new(seed: u64) -> Self {
        let twin = Twin::builder().deterministic(seed).trace().build();
        let sim = twin.sim().expect("built deterministic");
        DetBackend {
            twin,
            sim,
            tracker: Tracker::default(),
            names: AtomicUsize::new(0),
        }
    }
}

impl Backend for DetBackend {
    type Ns = Twin;
    type Q = mqtwin::twin::Queue;

    fn ns(&self) -> &Twin {
        &self.twin
    }

    fn name(&self, tag: &str) -> String {
        format!("/scn-{}-{tag}", self.names.fetch_add(1, Ordering::Relaxed))
    }

    fn dup(q: &Self::Q) -> Result<Self::Q, Error> {
        q.try_clone()
    }

    fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// A blocking point of the scenario's participant: the others run until
    /// enough are blocked. No thread finishes early here (time only moves
    /// when everyone waits), so a thread that finishes instead of blocking
    /// is a bug, and the run fails as a deadlock.
    fn settle(&self, n: usize) {
        let finished = self.tracker.finished();
        self.twin.wait_blocked(n.saturating_sub(finished));
    }

    fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Joiner<T> {
        let h = self.sim.spawn(f);
        Joiner(Box::new(move || h.join().map_err(|e| e.to_string())))
    }

    fn start_line(&self, _n: usize) -> Option<Arc<Barrier>> {
        None
    }
}

/// Runs `scenario` as a participant of a fresh [`DetBackend`] seeded with
/// `seed` (`MQTWIN_SEED` overrides it) and returns the twin's trace.
///
/// # Panics
///
/// When the scenario fails (an assertion, a deadlock), with the run's report.
pub fn run_deterministic(seed: u64, scenario: fn(&DetBackend)) -> String {
    let b = DetBackend::new(seed);
    let (sim, twin) = (b.sim.clone(), b.twin.clone());
    let main = sim.spawn(move || scenario(&b));
    if let Err(e) = main.join() {
        panic!("scenario failed on the deterministic twin:\n{e}");
    }
    twin.trace_dump()
}

#[cfg(all(target_os = "linux", feature = "posix"))]
#[path = "../common/mod.rs"]
mod common;

#[cfg(all(target_os = "linux", feature = "posix"))]
pub mod kernel_backend {
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

    impl KernelBackend {
        fn settled(&self) -> usize {
            self.tracker
                .slots()
                .iter()
                .filter(|s| {
                    s.done.load(Ordering::SeqCst) || {
                        let tid = s.tid.load(Ordering::SeqCst);
                        tid != 0 && common::blocked_in_mq(tid as i64)
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
            common::settle(n, || self.settled());
        }

        fn spawn<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Joiner<T> {
            os_thread(f)
        }

        fn start_line(&self, n: usize) -> Option<Arc<Barrier>> {
            Some(Arc::new(Barrier::new(n)))
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

/// A scenario's helpers, bound to one backend. Handles are `Arc`s, so the
/// scene's threads can share them.
pub struct Scene<'b, B: Backend> {
    b: &'b B,
}

impl<'b, B: Backend> Scene<'b, B> {
    pub fn new(b: &'b B) -> Self {
        Scene { b }
    }

    pub fn ns(&self) -> &'b B::Ns {
        self.b.ns()
    }

    /// Creates a fresh queue; returns its name and a blocking read-write handle.
    pub fn create(&self, tag: &str, capacity: usize) -> (String, Arc<B::Q>) {
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
        (name, Arc::new(q))
    }

    pub fn open(&self, name: &str, opts: OpenOptions) -> Arc<B::Q> {
        Arc::new(self.ns().open(name, &opts).unwrap())
    }

    /// `dup` of a handle, as a handle of its own.
    pub fn dup(&self, q: &B::Q) -> Arc<B::Q> {
        Arc::new(B::dup(q).unwrap())
    }

    /// Runs `f` in a new thread and returns once that thread is settled:
    /// queued as a waiter, or finished.
    pub fn blocked<T, F>(&self, f: F) -> Joiner<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (n, slot) = self.b.tracker().add();
        let h = self.b.spawn(move || {
            slot.tid.store(current_tid(), Ordering::SeqCst);
            let _done = Done(slot);
            f()
        });
        self.b.settle(n);
        h
    }

    /// Runs `f` in a new thread, without waiting for anything.
    pub fn spawn<T, F>(&self, f: F) -> Joiner<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.b.spawn(f)
    }

    /// See [`Backend::start_line`].
    pub fn start_line(&self, n: usize) -> Option<Arc<Barrier>> {
        self.b.start_line(n)
    }
}

/// Receives one message into a `String`.
pub fn recv_with<Q: MessageQueue>(
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
pub fn recv<Q: MessageQueue>(q: &Q) -> Got {
    recv_with(q, |q, b| q.receive(b))
}

/// Receive, never waiting.
pub fn take<Q: MessageQueue>(q: &Q) -> Got {
    recv_with(q, |q, b| q.try_receive(b))
}

/// Receive with a relative timeout; also returns how long the call took on
/// the backend's clock (virtual on the deterministic twin).
pub fn recv_timeout<Q: MessageQueue>(q: &Q, t: Duration) -> (Got, Duration) {
    let start = q.now();
    let r = recv_with(q, |q, b| q.receive_timeout(b, t));
    (r, q.now().duration_since(start).unwrap_or_default())
}

pub fn send_timeout<Q: MessageQueue>(
    q: &Q,
    m: &str,
    p: u32,
    t: Duration,
) -> (Result<(), Error>, Duration) {
    let start = q.now();
    let r = q.send_timeout(m.as_bytes(), p, t);
    (r, q.now().duration_since(start).unwrap_or_default())
}

pub fn current<Q: MessageQueue>(q: &Q) -> usize {
    q.attributes().unwrap().current_messages
}

pub fn nonblocking<Q: MessageQueue>(q: &Q) -> bool {
    q.attributes().unwrap().nonblocking
}

/// Asserts a timed-out call did wait until its deadline (on the backend's
/// clock, as the deadline is).
pub fn waited_short<T>((r, waited): (T, Duration)) -> T {
    assert!(waited >= SHORT, "timed out after only {waited:?}");
    r
}
