//! The deterministic twin against shuttle (a peer that also runs threads
//! one at a time under a seeded random scheduler, as stackful coroutines),
//! on the same two programs:
//!
//! - `sched_pingpong`: two threads, one round trip per iteration over two
//!   bounded channels (shuttle's `sync_channel(1)`, the twin's queues of
//!   capacity 1);
//! - `sched_contention`: `N` = 4 threads pass one token around a channel of
//!   capacity 1 (receive = take the token, send = give it back), each
//!   taking it `iters / N` times.
//!
//! Both run under a random scheduler; the figure is per iteration (one
//! round trip, one token pass). Each group also reports, on stderr, the
//! scheduling decisions each side took per iteration, counted by a wrapper
//! around shuttle's `RandomScheduler` and by the twin's `Sim::schedule`, so
//! that the cost per scheduling decision can be compared (docs/performance.md).

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mqtwin::twin::Twin;
use mqtwin::{MessageQueue, Namespace, OpenOptions};
use shuttle::scheduler::{RandomScheduler, Schedule, Scheduler, Task, TaskId};

mod common;

const THREADS: u64 = 4;

/// shuttle's random scheduler, counting its decisions.
#[derive(Debug)]
struct Counting {
    inner: RandomScheduler,
    decisions: Arc<AtomicU64>,
}

impl Scheduler for Counting {
    fn new_execution(&mut self) -> Option<Schedule> {
        self.inner.new_execution()
    }
    fn next_task(
        &mut self,
        runnable: &[&Task],
        current: Option<TaskId>,
        is_yielding: bool,
    ) -> Option<TaskId> {
        self.decisions.fetch_add(1, Ordering::Relaxed);
        self.inner.next_task(runnable, current, is_yielding)
    }
    fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }
}

/// Runs `f` once under shuttle; returns its time and shuttle's decisions.
fn shuttle_once(f: impl Fn() + Send + Sync + 'static) -> (Duration, u64) {
    let decisions = Arc::new(AtomicU64::new(0));
    let scheduler = Counting {
        inner: RandomScheduler::new(1),
        decisions: Arc::clone(&decisions),
    };
    let mut config = shuttle::Config::default();
    // Criterion asks for long runs: no step bound (the programs end).
    config.max_steps = shuttle::MaxSteps::None;
    let runner = shuttle::Runner::new(scheduler, config);
    let start = Instant::now();
    runner.run(f);
    (start.elapsed(), decisions.load(Ordering::Relaxed))
}

fn small(capacity: usize) -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(capacity)
        .max_msg_len(8)
}

fn shuttle_pingpong(iters: u64) {
    use shuttle::sync::mpsc::sync_channel;
    let (ping_tx, ping_rx) = sync_channel::<u64>(1);
    let (pong_tx, pong_rx) = sync_channel::<u64>(1);
    let echo = shuttle::thread::spawn(move || {
        for _ in 0..iters {
            let v = ping_rx.recv().unwrap();
            pong_tx.send(v).unwrap();
        }
    });
    for i in 0..iters {
        ping_tx.send(i).unwrap();
        assert_eq!(pong_rx.recv().unwrap(), i);
    }
    echo.join().unwrap();
}

/// The twin's ping-pong; returns its time and decisions.
fn twin_pingpong(iters: u64) -> (Duration, u64) {
    let ns = Twin::builder().deterministic(1).build();
    let sim = ns.sim().unwrap();
    let a = ns.open("/ping", &small(1)).unwrap();
    let b = ns.open("/pong", &small(1)).unwrap();
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    let start = Instant::now();
    sim.spawn(move || {
        let mut buf = [0u8; 8];
        for _ in 0..iters {
            let n = a2.receive(&mut buf).unwrap().len;
            b2.send(&buf[..n], 0).unwrap();
        }
    });
    sim.spawn(move || {
        let mut buf = [0u8; 8];
        for i in 0..iters {
            a.send(&i.to_le_bytes(), 0).unwrap();
            b.receive(&mut buf).unwrap();
            assert_eq!(u64::from_le_bytes(buf), i);
        }
    });
    sim.run().unwrap();
    (start.elapsed(), sim.schedule().decisions.len() as u64)
}

fn shuttle_contention(iters: u64) {
    use shuttle::sync::mpsc::sync_channel;
    let (tx, rx) = sync_channel::<u64>(1);
    let rx = Arc::new(shuttle::sync::Mutex::new(rx));
    tx.send(0).unwrap();
    let each = (iters / THREADS).max(1);
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (tx, rx) = (tx.clone(), Arc::clone(&rx));
            shuttle::thread::spawn(move || {
                for _ in 0..each {
                    let v = rx.lock().unwrap().recv().unwrap();
                    tx.send(v + 1).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(rx.lock().unwrap().recv().unwrap(), each * THREADS);
}

fn twin_contention(iters: u64) -> (Duration, u64) {
    let ns = Twin::builder().deterministic(1).build();
    let sim = ns.sim().unwrap();
    let q = ns.open("/token", &small(1)).unwrap();
    q.send(&0u64.to_le_bytes(), 0).unwrap();
    let each = (iters / THREADS).max(1);
    let start = Instant::now();
    for _ in 0..THREADS {
        let q = q.try_clone().unwrap();
        sim.spawn(move || {
            let mut buf = [0u8; 8];
            for _ in 0..each {
                q.receive(&mut buf).unwrap();
                let v = u64::from_le_bytes(buf) + 1;
                q.send(&v.to_le_bytes(), 0).unwrap();
            }
        });
    }
    sim.run().unwrap();
    let elapsed = start.elapsed();
    let mut buf = [0u8; 8];
    q.try_receive(&mut buf).unwrap();
    assert_eq!(u64::from_le_bytes(buf), each * THREADS);
    (elapsed, sim.schedule().decisions.len() as u64)
}

/// Prints decisions per iteration of each side, once per group.
fn report(group: &str, iters: u64, shuttle: u64, twin: u64) {
    let per = |d: u64| d as f64 / iters as f64;
    eprintln!(
        "{group}: scheduling decisions per iteration: shuttle {:.2}, deterministic twin {:.2}",
        per(shuttle),
        per(twin)
    );
}

fn sched_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("sched_pingpong");
    common::threaded(&mut g);
    let (_, s) = shuttle_once(|| shuttle_pingpong(1000));
    let (_, t) = twin_pingpong(1000);
    report("sched_pingpong", 1000, s, t);
    g.bench_function("shuttle", |b| {
        b.iter_custom(|iters| shuttle_once(move || shuttle_pingpong(iters)).0)
    });
    g.bench_function("deterministic", |b| {
        b.iter_custom(|iters| twin_pingpong(iters).0)
    });
    g.finish();
}

fn sched_contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("sched_contention");
    common::threaded(&mut g);
    let (_, s) = shuttle_once(|| shuttle_contention(1000));
    let (_, t) = twin_contention(1000);
    report("sched_contention", 1000, s, t);
    g.bench_function("shuttle", |b| {
        b.iter_custom(|iters| shuttle_once(move || shuttle_contention(iters)).0)
    });
    g.bench_function("deterministic", |b| {
        b.iter_custom(|iters| twin_contention(iters).0)
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = sched_pingpong, sched_contention
}
criterion_main!(benches);
