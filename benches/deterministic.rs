//! The cost of deterministic simulation (`TwinBuilder::deterministic`)
//! against the free-running twin, per call:
//!
//! - `det_pair`: one thread (one participant), non-blocking send + receive
//!   of a 64-byte message: every call is a scheduling point with a single
//!   runnable participant;
//! - `det_pingpong`: two threads (two participants), two queues, one round
//!   trip: every call may switch participants, every receive blocks;
//! - `det_timeout`: a receive with a one-hour timeout on an empty queue,
//!   which the deterministic twin ends by jumping virtual time (the
//!   free-running column uses `advance_to_next_deadline` from the test).
//!
//! See `docs/performance.md` for the figures.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace};

mod common;
use common::{MSG, MSG_LEN};

fn det() -> Twin {
    Twin::builder().deterministic(1).build()
}

/// Send + receive pairs, non-blocking, one thread.
fn det_pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("det_pair");
    let ns = Twin::new();
    let q = common::twin_queue(&ns);
    let mut buf = [0u8; MSG_LEN];
    g.bench_function("twin", |b| {
        b.iter(|| {
            q.try_send(black_box(&MSG), 1).unwrap();
            black_box(q.try_receive(&mut buf).unwrap());
        })
    });
    g.bench_function("deterministic", |b| {
        b.iter_custom(|iters| {
            let ns = det();
            let q = common::twin_queue(&ns);
            let sim = ns.sim().unwrap();
            sim.spawn(move || {
                let mut buf = [0u8; MSG_LEN];
                let start = Instant::now();
                for _ in 0..iters {
                    q.try_send(black_box(&MSG), 1).unwrap();
                    black_box(q.try_receive(&mut buf).unwrap());
                }
                start.elapsed()
            })
            .join()
            .unwrap()
        })
    });
    g.finish();
}

/// Round trips between two threads over two queues.
fn det_pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("det_pingpong");
    common::threaded(&mut g);
    let ns = Twin::new();
    let a = ns.open("/ping", &common::small_queue()).unwrap();
    let b = ns.open("/pong", &common::small_queue()).unwrap();
    g.bench_function("twin", |bench| {
        bench.iter_custom(|iters| {
            thread::scope(|s| {
                s.spawn(|| common::echo(&a, &b, iters));
                common::ping(&a, &b, iters)
            })
        })
    });
    g.bench_function("deterministic", |bench| {
        bench.iter_custom(|iters| {
            let ns = det();
            let sim = ns.sim().unwrap();
            let a = ns.open("/ping", &common::small_queue()).unwrap();
            let b = ns.open("/pong", &common::small_queue()).unwrap();
            let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
            sim.spawn(move || common::echo(&a2, &b2, iters));
            sim.spawn(move || common::ping(&a, &b, iters))
                .join()
                .unwrap()
        })
    });
    g.finish();
}

/// A one-hour timed receive that expires.
fn det_timeout(c: &mut Criterion) {
    let mut g = c.benchmark_group("det_timeout");
    common::threaded(&mut g);
    g.bench_function("virtual", |bench| {
        bench.iter_custom(|iters| {
            let ns = Twin::builder().virtual_time().build();
            let clock = ns.virtual_clock().unwrap();
            common::virtual_timeouts(&ns, &clock, &common::twin_queue(&ns), iters)
        })
    });
    g.bench_function("deterministic", |bench| {
        bench.iter_custom(|iters| {
            let ns = det();
            let q = common::twin_queue(&ns);
            ns.sim()
                .unwrap()
                .spawn(move || {
                    let mut buf = [0u8; MSG_LEN];
                    let start = Instant::now();
                    for _ in 0..iters {
                        let r = q.receive_timeout(&mut buf, Duration::from_secs(3600));
                        assert_eq!(r, Err(Error::TimedOut));
                    }
                    start.elapsed()
                })
                .join()
                .unwrap()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = det_pair, det_pingpong, det_timeout
}
criterion_main!(benches);
