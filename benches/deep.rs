//! `deep`: the cost of one receive + one send on a queue holding N messages
//! (10, 1,000 and 65,536) spread over up to 32,768 priorities.
//!
//! The queue is filled with N 64-byte messages, message `i` at the `i mod P`-th
//! of P evenly spaced priorities (P = min(N, 32,768)). Each measured
//! iteration receives the highest-priority message and sends one at a
//! pseudo-random priority among the same P, so the depth stays N (the queue
//! is opened with capacity N) and inserts land all over the priority index.
//! Because receiving always takes the maximum, the priorities drift down
//! over time; the queue is therefore drained and refilled (not timed) after
//! every max(N, 1024) iterations.
//!
//! The twin runs as a caller with `CAP_SYS_RESOURCE` and no byte limit. The
//! kernel backend and raw `libc` run where the limits allow: this binary
//! moves into a fresh IPC namespace (needs `CAP_SYS_ADMIN`) to raise
//! `fs.mqueue.msg_max`, but `RLIMIT_MSGQUEUE` (819,200 bytes here, a hard
//! limit without `CAP_SYS_RESOURCE`) still bounds the queue's cost
//! `N*64 + 48*N + 48*min(N, 32768)`, so 65,536 messages (8,912,896 bytes) are
//! out of reach; the largest reachable N is printed.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mqtwin::deadline::MQ_PRIO_MAX;
use mqtwin::{MessageQueue, Namespace, OpenOptions};

mod common;
use common::{Lcg, MSG, MSG_LEN};

/// Queue depths measured.
const DEPTHS: [usize; 3] = [10, 1_000, 65_536];

/// The `k`-th of `p` evenly spaced priorities in `0..32768`.
fn spread(k: u32, p: u32) -> u32 {
    k * (MQ_PRIO_MAX / p)
}

/// Distinct priorities used at depth `n`.
fn priorities(n: usize) -> u32 {
    n.min(MQ_PRIO_MAX as usize) as u32
}

/// One backend's view of a queue, as the measured loop needs it.
trait Deep {
    fn put(&self, priority: u32);
    fn take(&self, buf: &mut [u8]);
}

impl<Q: MessageQueue> Deep for Q {
    fn put(&self, priority: u32) {
        self.try_send(&MSG, priority).unwrap();
    }
    fn take(&self, buf: &mut [u8]) {
        black_box(self.try_receive(buf).unwrap());
    }
}

fn fill(q: &impl Deep, n: usize) {
    let p = priorities(n);
    for i in 0..n {
        q.put(spread(i as u32 % p, p));
    }
}

/// `iters` measured receive + send pairs at depth `n` (the queue holds `n`
/// messages before and after).
fn run(q: &impl Deep, n: usize, iters: u64, rng: &mut Lcg) -> Duration {
    let p = priorities(n);
    let chunk_len = n.max(1024) as u64;
    let mut buf = [0u8; MSG_LEN];
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let chunk = left.min(chunk_len);
        let start = Instant::now();
        for _ in 0..chunk {
            q.take(&mut buf);
            q.put(spread(rng.next() % p, p));
        }
        total += start.elapsed();
        left -= chunk;
        for _ in 0..n {
            q.take(&mut buf);
        }
        fill(q, n);
    }
    total
}

fn deep(c: &mut Criterion) {
    // The kernel side first moves this (main, benchmarking) thread into a
    // fresh IPC namespace, where `msg_max` can be raised.
    #[cfg(all(target_os = "linux", feature = "posix"))]
    let kernel_max = kernel_reach();

    let mut g = c.benchmark_group("deep");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in DEPTHS {
        let opts = OpenOptions::read_write()
            .create_new()
            .capacity(n)
            .max_msg_len(MSG_LEN);

        let ns = common::privileged_twin();
        let q = ns.open("/deep", &opts).unwrap();
        fill(&q, n);
        let mut rng = Lcg(1);
        g.bench_with_input(BenchmarkId::new("twin", n), &n, |b, &n| {
            b.iter_custom(|iters| run(&q, n, iters, &mut rng))
        });

        #[cfg(all(target_os = "linux", feature = "posix"))]
        if n <= kernel_max {
            let q = common::kernel_queue("deep", &opts);
            fill(&q, n);
            let mut rng = Lcg(1);
            g.bench_with_input(BenchmarkId::new("kernel", n), &n, |b, &n| {
                b.iter_custom(|iters| run(&q, n, iters, &mut rng))
            });
            drop(q);
            let raw = Raw(common::RawMq::create("deep-raw", n, MSG_LEN));
            fill(&raw, n);
            let mut rng = Lcg(1);
            g.bench_with_input(BenchmarkId::new("libc", n), &n, |b, &n| {
                b.iter_custom(|iters| run(&raw, n, iters, &mut rng))
            });
        } else {
            eprintln!("deep: kernel and libc skipped at N = {n}: above the reachable {kernel_max}");
        }
    }
    g.finish();
}

#[cfg(all(target_os = "linux", feature = "posix"))]
struct Raw(common::RawMq);

#[cfg(all(target_os = "linux", feature = "posix"))]
impl Deep for Raw {
    fn put(&self, priority: u32) {
        self.0.send(&MSG, priority, &common::EPOCH);
    }
    fn take(&self, buf: &mut [u8]) {
        black_box(self.0.receive(buf, &common::EPOCH));
    }
}

/// Enters a fresh IPC namespace if possible and returns the largest depth
/// the kernel allows this process for 64-byte messages.
#[cfg(all(target_os = "linux", feature = "posix"))]
fn kernel_reach() -> usize {
    let rlimit = common::rlimit_msgqueue();
    // Largest N whose cost fits the byte limit (N <= 32768 here, so the
    // priority-tree term is 48*N).
    let by_rlimit = (1..=mqtwin::limits::HARD_MSGMAX)
        .take_while(|&m| mqtwin::limits::queue_cost(m, MSG_LEN) <= rlimit)
        .last()
        .unwrap_or(0);
    let reach = match common::enter_fresh_ipc_namespace(by_rlimit.max(1)) {
        Ok(()) => by_rlimit,
        Err(e) => {
            let msg_max = mqtwin::posix::Kernel::limits().map_or(0, |l| l.msg_max);
            eprintln!("deep: no fresh IPC namespace ({e}); kernel limited to msg_max = {msg_max}");
            msg_max.min(by_rlimit)
        }
    };
    eprintln!(
        "deep: RLIMIT_MSGQUEUE = {rlimit} bytes; the kernel can hold at most {reach} \
         64-byte messages in one queue here (65,536 would cost {} bytes)",
        mqtwin::limits::queue_cost(65_536, MSG_LEN)
    );
    reach
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = deep
}
criterion_main!(benches);
