//! Stress on both backends: several producers and consumers on one small
//! queue, random priorities, a random mix of blocking, timed and
//! non-blocking calls (retried on `WouldBlock` / `TimedOut`), through
//! handles of every kind (own blocking and non-blocking descriptions, dups
//! of a shared handle, read-write handles). Each backend runs three shapes
//! ([`CONFIGS`]): balanced, many producers on a one-message queue, many
//! consumers on a ten-message queue.
//!
//! Checked afterwards, on both backends:
//! - every message is received exactly once (no loss, no duplicate) with
//!   the priority it was sent with, and the queue ends empty;
//! - FIFO per producer within a priority. Consumers run concurrently, so the
//!   global dequeue order is not observable; instead every receive is
//!   bracketed by two tickets of one global counter (taken just before the
//!   call and just after it returns). If message `j` of a producer was sent
//!   after message `i` at the same priority, `j`'s receive must not have
//!   *returned* before `i`'s receive *started*. That is sound (a violation
//!   proves an out-of-order dequeue) and catches every reordering whose
//!   receives do not overlap in time;
//! - the mix really met full and empty queues: timed calls timed out and
//!   try calls got `WouldBlock`, in both directions (counts are printed).
//!
//! On the twin a monitor thread also checks the queue invariants while the
//! run goes on (semantics reference §9: receive waiters ⇒ the queue is
//! empty; send waiters ⇒ the queue is full):
//! - continuously, from single observations: `Queue::waiters()` is read
//!   under the queue lock, so blocked receivers *and* blocked senders at
//!   once is a violation by itself (it would need `current == 0` and
//!   `current == capacity`);
//! - at frozen points, the full invariants. The public API cannot read the
//!   waiter lists and `current_messages` in one observation (`waiters()` and
//!   `attributes()` take the queue lock separately; anything may happen in
//!   between), so the monitor freezes the workers: it raises a pause flag
//!   that every worker checks before each call, and waits until every
//!   worker is either parked at that check or blocked in the twin
//!   (`parked + Twin::blocked() == workers`, with the park count read under
//!   the pause lock that also keeps parked workers parked). From then on no
//!   caller can change `current_messages` (a blocked caller can only leave
//!   by timing out, which changes nothing but the waiter lists, which can
//!   then only shrink), so `attributes()` then `waiters()` describe one
//!   state, and `blocked()` read before and after bound the waiter count.
//!   This assumes `Twin::blocked()` counts exactly the callers queued as
//!   waiters (a served caller is uncounted by whoever serves it). The
//!   frozen states are real between-operation states, but only those in
//!   which no worker is mid-call; a per-queue snapshot taken under the queue
//!   lock would let the monitor check every state without stopping anyone.
//!
//! On the kernel the waiter lists are not observable; a monitor only counts
//! how often workers were seen asleep in `mq_timedsend` / `mq_timedreceive`.
//!
//! Size: `MQTWIN_STRESS_MESSAGES` messages per shape (default 100,000, so
//! 300,000 per backend) and `MQTWIN_STRESS_SEED` (default fixed; the seed
//! is printed with `--nocapture`). A run that stops making progress for a
//! minute aborts the test binary rather than hang.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// The shapes each backend is run in, each with the full message count:
/// balanced, many producers on a one-message queue (every receive moves a
/// blocked sender in), many consumers on the largest queue unprivileged
/// callers may create.
const CONFIGS: [Config; 3] = [
    Config {
        producers: 4,
        consumers: 4,
        capacity: 5,
    },
    Config {
        producers: 6,
        consumers: 2,
        capacity: 1,
    },
    Config {
        producers: 2,
        consumers: 6,
        capacity: 10,
    },
];

#[derive(Debug, Clone, Copy)]
struct Config {
    producers: usize,
    consumers: usize,
    /// Small, so the queue is often full and often empty.
    capacity: usize,
}

impl Config {
    fn workers(&self) -> usize {
        self.producers + self.consumers
    }
}
/// producer id (u32) + sequence number (u64) + priority (u32).
const LEN: usize = 16;
/// The producer id of the end-of-run messages.
const STOP: u32 = u32::MAX;
/// Fail (abort) when no message is received for this long.
const STALL: Duration = Duration::from_secs(60);

fn messages() -> u64 {
    std::env::var("MQTWIN_STRESS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn seed() -> u64 {
    std::env::var("MQTWIN_STRESS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6d71_7477_696e)
}

/// SplitMix64: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Self {
        Rng(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Mostly a few priorities (long FIFO chains), sometimes any.
    fn priority(&mut self) -> u32 {
        match self.below(16) {
            0 => 32767,
            1 => self.below(32768) as u32,
            _ => self.below(4) as u32,
        }
    }
}

/// How one attempt of a send or receive is made.
#[derive(Debug, Clone, Copy)]
enum Call {
    /// `send` / `receive`: waits unless the handle is non-blocking.
    Blocking,
    /// `*_timeout` with this timeout (0: a deadline already passed).
    Timed(Duration),
    /// `try_send` / `try_receive`.
    Try,
}

impl Call {
    fn pick(rng: &mut Rng) -> Call {
        match rng.below(8) {
            0..=3 => Call::Blocking,
            // Half of them with a deadline that has passed already: a
            // timed call on a full / empty queue then times out at once.
            4 => Call::Timed(Duration::ZERO),
            5 => Call::Timed(Duration::from_micros(1 + rng.below(300))),
            _ => Call::Try,
        }
    }
}

fn encode(producer: u32, seq: u64, priority: u32) -> [u8; LEN] {
    let mut m = [0u8; LEN];
    m[..4].copy_from_slice(&producer.to_le_bytes());
    m[4..12].copy_from_slice(&seq.to_le_bytes());
    m[12..].copy_from_slice(&priority.to_le_bytes());
    m
}

fn decode(m: &[u8]) -> (u32, u64, u32) {
    assert_eq!(m.len(), LEN, "message length");
    (
        u32::from_le_bytes(m[..4].try_into().unwrap()),
        u64::from_le_bytes(m[4..12].try_into().unwrap()),
        u32::from_le_bytes(m[12..].try_into().unwrap()),
    )
}

/// Outcome counts of one kind of attempt, for the report (and to show the
/// mix really hit full and empty queues).
#[derive(Debug, Default)]
struct Outcomes {
    ok: AtomicU64,
    would_block: AtomicU64,
    timed_out: AtomicU64,
}

/// Per direction and call kind: [send, receive] × [blocking, timed, try].
#[derive(Debug, Default)]
struct Tally([[Outcomes; 3]; 2]);

impl Tally {
    fn count(&self, dir: usize, call: Call, r: Result<(), &Error>) {
        let kind = match call {
            Call::Blocking => 0,
            Call::Timed(_) => 1,
            Call::Try => 2,
        };
        let o = &self.0[dir][kind];
        match r {
            Ok(()) => &o.ok,
            Err(Error::WouldBlock) => &o.would_block,
            Err(_) => &o.timed_out,
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    fn summary(&self) -> String {
        let mut out = String::new();
        for (d, dir) in ["send", "receive"].iter().enumerate() {
            for (k, kind) in ["blocking", "timed", "try"].iter().enumerate() {
                let o = &self.0[d][k];
                out += &format!(
                    " {dir}/{kind}: {} ok, {} WouldBlock, {} TimedOut;",
                    o.ok.load(Ordering::Relaxed),
                    o.would_block.load(Ordering::Relaxed),
                    o.timed_out.load(Ordering::Relaxed)
                );
            }
        }
        out
    }

    fn counts(&self) -> Counts {
        self.0.each_ref().map(|dir| {
            dir.each_ref()
                .map(|o| [&o.ok, &o.would_block, &o.timed_out].map(|a| a.load(Ordering::Relaxed)))
        })
    }
}

/// What every worker shares.
struct Ctx {
    pause: Pause,
    /// The global ticket counter receives are bracketed with.
    tick: AtomicU64,
    tally: Tally,
    /// Kernel thread ids of the workers (for the kernel's monitor).
    tids: Mutex<Vec<usize>>,
}

/// Sends `msg`, retrying until it is in.
fn send_one<Q: MessageQueue>(q: &Q, msg: &[u8], priority: u32, rng: &mut Rng, ctx: &Ctx) {
    loop {
        ctx.pause.checkpoint();
        let call = Call::pick(rng);
        let r = match call {
            Call::Blocking => q.send(msg, priority),
            Call::Timed(t) => q.send_timeout(msg, priority, t),
            Call::Try => q.try_send(msg, priority),
        };
        ctx.tally.count(0, call, r.as_ref().map(|_| ()));
        match r {
            Ok(()) => return,
            Err(Error::WouldBlock) | Err(Error::TimedOut) => std::thread::yield_now(),
            Err(e) => panic!("send ({call:?}) failed: {e:?}"),
        }
    }
}

/// One received message and the ticket interval of its receive.
#[derive(Debug, Clone, Copy)]
struct Rec {
    producer: u32,
    seq: u64,
    priority: u32,
    start: u64,
    end: u64,
}

/// Receives one message, retrying until there is one.
fn receive_one<Q: MessageQueue>(q: &Q, rng: &mut Rng, ctx: &Ctx) -> Rec {
    let mut buf = [0u8; LEN];
    loop {
        ctx.pause.checkpoint();
        let call = Call::pick(rng);
        let start = ctx.tick.fetch_add(1, Ordering::SeqCst);
        let r = match call {
            Call::Blocking => q.receive(&mut buf),
            Call::Timed(t) => q.receive_timeout(&mut buf, t),
            Call::Try => q.try_receive(&mut buf),
        };
        let end = ctx.tick.fetch_add(1, Ordering::SeqCst);
        ctx.tally.count(1, call, r.as_ref().map(|_| ()));
        match r {
            Ok(got) => {
                let (producer, seq, priority) = decode(&buf[..got.len]);
                assert_eq!(
                    got.priority, priority,
                    "received priority differs from the one sent"
                );
                return Rec {
                    producer,
                    seq,
                    priority,
                    start,
                    end,
                };
            }
            Err(Error::WouldBlock) | Err(Error::TimedOut) => std::thread::yield_now(),
            Err(e) => panic!("receive ({call:?}) failed: {e:?}"),
        }
    }
}

/// Lets the monitor stop every worker between two calls.
#[derive(Default)]
struct Pause {
    requested: AtomicBool,
    /// Workers parked at the checkpoint, plus workers that finished.
    parked: Mutex<usize>,
    released: Condvar,
}

impl Pause {
    /// Called by a worker before each call.
    fn checkpoint(&self) {
        if !self.requested.load(Ordering::SeqCst) {
            return;
        }
        let mut parked = self.parked.lock().unwrap();
        *parked += 1;
        while self.requested.load(Ordering::SeqCst) {
            parked = self.released.wait(parked).unwrap();
        }
        *parked -= 1;
    }

    /// A worker that makes no more calls.
    fn retire(&self) {
        *self.parked.lock().unwrap() += 1;
    }

    /// Stops the workers; once `quiescent(parked)` holds (checked with the
    /// park count locked, so parked workers stay parked), runs `f` still
    /// holding it. Returns `None` when the workers did not settle within
    /// `limit`.
    fn freeze<R>(
        &self,
        limit: Duration,
        quiescent: impl Fn(usize) -> bool,
        f: impl FnOnce() -> R,
    ) -> Option<R> {
        self.requested.store(true, Ordering::SeqCst);
        let start = Instant::now();
        let out = loop {
            let parked = self.parked.lock().unwrap();
            if quiescent(*parked) {
                let r = f();
                drop(parked);
                break Some(r);
            }
            drop(parked);
            if start.elapsed() > limit {
                break None;
            }
            std::thread::yield_now();
        };
        self.requested.store(false, Ordering::SeqCst);
        let _guard = self.parked.lock().unwrap();
        self.released.notify_all();
        out
    }
}

/// What a monitor saw.
#[derive(Debug, Default)]
struct MonitorStats {
    /// Single observations (twin: `waiters()`; kernel: worker states).
    samples: u64,
    /// Twin: frozen observations; kernel: samples with a worker blocked.
    checked: u64,
    /// ... of which with blocked receivers.
    with_receivers: u64,
    /// ... of which with blocked senders.
    with_senders: u64,
    /// Twin: freezes that did not settle in time (none expected).
    missed: u64,
}

impl MonitorStats {
    fn add(&mut self, o: &MonitorStats) {
        self.samples += o.samples;
        self.checked += o.checked;
        self.with_receivers += o.with_receivers;
        self.with_senders += o.with_senders;
        self.missed += o.missed;
    }
}

/// Everything a run needs from a backend.
struct Setup<'a, N: Namespace> {
    ns: &'a N,
    name: String,
    dup: fn(&N::Queue) -> Result<N::Queue, Error>,
    label: &'static str,
}

/// Runs producers and consumers to completion and verifies the result.
/// `monitor` runs alongside until the producers are done.
fn run<N, M>(setup: &Setup<'_, N>, cfg: Config, seed: u64, monitor: M) -> (MonitorStats, Counts)
where
    N: Namespace + Sync,
    N::Queue: Send + Sync,
    M: FnOnce(&Ctx, &AtomicBool) -> MonitorStats + Send,
{
    let total = messages();
    let Setup {
        ns,
        ref name,
        dup,
        label,
    } = *setup;
    let started = Instant::now();
    let open = |opts: OpenOptions| ns.open(name, &opts).unwrap();
    let creator = open(
        OpenOptions::read_write()
            .create_new()
            .capacity(cfg.capacity)
            .max_msg_len(LEN),
    );
    let shared_tx = open(OpenOptions::write_only());
    let shared_rx = open(OpenOptions::read_only());
    // Producer i and consumer i use handle kind i % 4.
    let producer_handles: Vec<N::Queue> = (0..cfg.producers)
        .map(|i| match i % 4 {
            0 => open(OpenOptions::write_only()),
            1 => open(OpenOptions::read_write()),
            2 => open(OpenOptions::write_only().nonblocking()),
            _ => dup(&shared_tx).unwrap(),
        })
        .collect();
    let consumer_handles: Vec<N::Queue> = (0..cfg.consumers)
        .map(|i| match i % 4 {
            0 => open(OpenOptions::read_only()),
            1 => open(OpenOptions::read_write()),
            2 => open(OpenOptions::read_only().nonblocking()),
            _ => dup(&shared_rx).unwrap(),
        })
        .collect();
    let np = cfg.producers as u64;
    let per_producer: Vec<u64> = (0..np)
        .map(|i| total / np + u64::from(i < total % np))
        .collect();

    let ctx = Ctx {
        pause: Pause::default(),
        tick: AtomicU64::new(0),
        tally: Tally::default(),
        tids: Mutex::new(Vec::new()),
    };
    let received = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    // The monitor's panic message, once it failed.
    let monitor_failed: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let monitor_stop = AtomicBool::new(false);

    // Watchdog: a hang (a lost wake-up, or a waiter the monitor saw
    // stranded) aborts the run with a message instead of hanging CI.
    {
        let (received, finished, failed) = (
            Arc::clone(&received),
            Arc::clone(&finished),
            Arc::clone(&monitor_failed),
        );
        std::thread::spawn(move || {
            let mut last = (0, Instant::now());
            while !finished.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let now = received.load(Ordering::SeqCst);
                let failure = failed.lock().unwrap().clone();
                let limit = if failure.is_some() {
                    Duration::from_secs(2)
                } else {
                    STALL
                };
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > limit {
                    // Straight to stderr: the test harness's output
                    // capture is lost when the process aborts.
                    let _ = writeln!(
                        std::io::stderr(),
                        "stress[{label}]: no message received for {limit:?} after {now}; \
                         aborting. Monitor failure: {failure:?}"
                    );
                    std::process::abort();
                }
            }
        });
    }

    let (records, stats) = std::thread::scope(|s| {
        let ctx = &ctx;
        let consumers: Vec<_> = consumer_handles
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let received = &received;
                s.spawn(move || {
                    ctx.tids.lock().unwrap().push(tid());
                    let mut rng = Rng::new(seed, 1000 + i as u64);
                    let mut recs = Vec::with_capacity(total as usize / cfg.consumers * 2);
                    loop {
                        let rec = receive_one(q, &mut rng, ctx);
                        if rec.producer == STOP {
                            break;
                        }
                        recs.push(rec);
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    ctx.pause.retire();
                    recs
                })
            })
            .collect();
        let producers: Vec<_> = producer_handles
            .iter()
            .zip(&per_producer)
            .enumerate()
            .map(|(i, (q, &count))| {
                s.spawn(move || {
                    ctx.tids.lock().unwrap().push(tid());
                    let mut rng = Rng::new(seed, i as u64);
                    for seq in 0..count {
                        let priority = rng.priority();
                        let msg = encode(i as u32, seq, priority);
                        send_one(q, &msg, priority, &mut rng, ctx);
                    }
                    ctx.pause.retire();
                })
            })
            .collect();
        let monitor = s.spawn(|| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                monitor(ctx, &monitor_stop)
            }));
            r.unwrap_or_else(|e| {
                let text = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                *monitor_failed.lock().unwrap() = Some(text);
                std::panic::resume_unwind(e)
            })
        });
        for p in producers {
            p.join().unwrap();
        }
        monitor_stop.store(true, Ordering::SeqCst);
        // A failed monitor is reported once the consumers are stopped.
        let stats = monitor.join();
        // All data is queued or received: the stops, at priority 0, come
        // after all of it; one per consumer.
        for _ in 0..cfg.consumers {
            creator.send(&encode(STOP, 0, 0), 0).unwrap();
        }
        let records: Vec<Vec<Rec>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
        (records, stats.unwrap())
    });
    finished.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();

    verify(&records, &per_producer);
    assert_eq!(creator.attributes().unwrap().current_messages, 0);
    let mut buf = [0u8; LEN];
    assert_eq!(creator.try_receive(&mut buf), Err(Error::WouldBlock));
    drop(creator);
    ns.unlink(name).unwrap();
    let t = &ctx.tally;
    eprintln!(
        "stress[{label}] {cfg:?}: {total} messages, seed {seed}: {elapsed:.2?}\n  monitor: {stats:?}\n \
         {}",
        t.summary()
    );
    (stats, t.counts())
}

/// `[send, receive][blocking, timed, try][ok, WouldBlock, TimedOut]`.
type Counts = [[[u64; 3]; 3]; 2];

/// Runs every configuration on one backend.
fn run_all<N, M>(setup: Setup<'_, N>, monitor: M) -> MonitorStats
where
    N: Namespace + Sync,
    N::Queue: Send + Sync,
    M: Fn(&Ctx, &AtomicBool, Config) -> MonitorStats + Sync,
{
    let seed = seed();
    let mut all = MonitorStats::default();
    let mut counts = Counts::default();
    for (i, cfg) in CONFIGS.into_iter().enumerate() {
        let (stats, c) = run(
            &setup,
            cfg,
            seed.wrapping_add(i as u64),
            |ctx: &Ctx, stop: &AtomicBool| monitor(ctx, stop, cfg),
        );
        all.add(&stats);
        for (d, dir) in c.iter().enumerate() {
            for (k, kind) in dir.iter().enumerate() {
                for (o, n) in kind.iter().enumerate() {
                    counts[d][k][o] += n;
                }
            }
        }
    }
    // The mix did meet full and empty queues in both directions.
    if messages() >= 10_000 {
        for (d, dir) in ["send", "receive"].iter().enumerate() {
            assert!(
                counts[d][1][2] > 0,
                "no timed {dir} ever timed out: {counts:?}"
            );
            assert!(
                counts[d][2][1] > 0,
                "no try {dir} ever got WouldBlock: {counts:?}"
            );
        }
    }
    all
}

fn tid() -> usize {
    #[cfg(target_os = "linux")]
    {
        nix::unistd::gettid().as_raw() as usize
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// No loss, no duplicate, FIFO per producer within a priority.
fn verify(records: &[Vec<Rec>], per_producer: &[u64]) {
    let mut seen: Vec<Vec<bool>> = per_producer
        .iter()
        .map(|&n| vec![false; n as usize])
        .collect();
    let mut chains: HashMap<(u32, u32), Vec<Rec>> = HashMap::new();
    for rec in records.iter().flatten() {
        let p = rec.producer as usize;
        assert!(p < per_producer.len(), "unknown producer in {rec:?}");
        let slot = seen[p]
            .get_mut(rec.seq as usize)
            .unwrap_or_else(|| panic!("sequence number out of range in {rec:?}"));
        assert!(!*slot, "duplicate message {rec:?}");
        *slot = true;
        chains
            .entry((rec.producer, rec.priority))
            .or_default()
            .push(*rec);
    }
    for (p, s) in seen.iter().enumerate() {
        let missing: Vec<usize> = s
            .iter()
            .enumerate()
            .filter(|(_, &b)| !b)
            .map(|(i, _)| i)
            .take(10)
            .collect();
        assert!(
            missing.is_empty(),
            "producer {p}: lost messages, first: {missing:?}"
        );
    }
    for ((producer, priority), mut chain) in chains {
        chain.sort_by_key(|r| r.seq);
        // Walking down the sequence numbers: no later message's receive may
        // have ended before this message's receive started.
        let mut min_end_later = u64::MAX;
        let mut later: Option<Rec> = None;
        for rec in chain.iter().rev() {
            assert!(
                min_end_later > rec.start,
                "FIFO violated for producer {producer} priority {priority}: {later:?} was \
                 received before the receive of the earlier {rec:?} started"
            );
            if rec.end < min_end_later {
                min_end_later = rec.end;
                later = Some(*rec);
            }
        }
    }
}

/// The twin's monitor: see the top comment.
fn twin_monitor(
    twin: &Twin,
    q: &mqtwin::twin::Queue,
    ctx: &Ctx,
    stop: &AtomicBool,
    cfg: Config,
) -> MonitorStats {
    let mut st = MonitorStats::default();
    while !stop.load(Ordering::SeqCst) {
        for _ in 0..16 {
            let (r, s) = q.waiters();
            assert!(
                r == 0 || s == 0,
                "{r} blocked receivers and {s} blocked senders at once"
            );
            st.samples += 1;
            std::thread::yield_now();
        }
        let seen = ctx.pause.freeze(
            Duration::from_secs(5),
            |parked| parked + twin.blocked() == cfg.workers(),
            || {
                let blocked_before = twin.blocked();
                let current = q.attributes().unwrap().current_messages;
                let (r, s) = q.waiters();
                let blocked_after = twin.blocked();
                (blocked_before, current, r, s, blocked_after)
            },
        );
        let Some((before, current, r, s, after)) = seen else {
            st.missed += 1;
            continue;
        };
        st.checked += 1;
        let cap = cfg.capacity;
        assert!(current <= cap, "{current} messages in a queue of {cap}");
        if r > 0 {
            st.with_receivers += 1;
            assert_eq!(
                current, 0,
                "{r} blocked receivers with {current} queued messages"
            );
        }
        if s > 0 {
            st.with_senders += 1;
            assert_eq!(
                current, cap,
                "{s} blocked senders with only {current} of {cap} messages queued"
            );
        }
        assert!(
            after <= r + s && r + s <= before,
            "waiter lists ({r} + {s}) disagree with Twin::blocked() ({before} then {after})"
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    st
}

#[test]
fn twin_many_producers_many_consumers() {
    let twin = Twin::new();
    let name = "/stress";
    let stats = run_all(
        Setup {
            ns: &twin,
            name: name.to_string(),
            dup: |q| q.try_clone(),
            label: "twin",
        },
        // `run` creates the queue before it starts the monitor.
        |ctx: &Ctx, stop: &AtomicBool, cfg: Config| {
            let q = twin.open(name, &OpenOptions::read_only()).unwrap();
            twin_monitor(&twin, &q, ctx, stop, cfg)
        },
    );
    eprintln!("stress[twin] monitor, all runs: {stats:?}");
    assert_eq!(stats.missed, 0, "freezes that never settled: {stats:?}");
    assert!(
        stats.checked > 0,
        "the monitor never froze the run: {stats:?}"
    );
    if messages() >= 50_000 {
        assert!(
            stats.with_receivers > 0 && stats.with_senders > 0,
            "the invariant checks never met a waiter: {stats:?}"
        );
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
#[test]
fn kernel_many_producers_many_consumers() {
    use mqtwin::posix::Kernel;

    /// Unlinks the name if a run fails half-way.
    struct Unlink(String);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = Kernel.unlink(&self.0);
        }
    }
    let name = format!("/mqtwin-stress-{}", std::process::id());
    let _cleanup = Unlink(name.clone());
    let stats = run_all(
        Setup {
            ns: &Kernel,
            name,
            dup: |q| q.try_clone(),
            label: "kernel",
        },
        |ctx: &Ctx, stop: &AtomicBool, _| kernel_monitor(ctx, stop),
    );
    eprintln!("stress[kernel] monitor, all runs: {stats:?}");
}

/// The kernel's waiter lists are not observable; this only samples the
/// workers' states (`/proc/self/task/<tid>/syscall`, see tests/scenarios.rs)
/// to report how often callers were really blocked in the kernel.
#[cfg(all(target_os = "linux", feature = "posix"))]
fn kernel_monitor(ctx: &Ctx, stop: &AtomicBool) -> MonitorStats {
    let mut st = MonitorStats::default();
    while !stop.load(Ordering::SeqCst) {
        let tids = ctx.tids.lock().unwrap().clone();
        let (mut senders, mut receivers) = (0, 0);
        for tid in tids {
            let Ok(sc) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
                continue;
            };
            match sc
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<i64>().ok())
            {
                Some(libc::SYS_mq_timedsend) => senders += 1,
                Some(libc::SYS_mq_timedreceive) => receivers += 1,
                _ => {}
            }
        }
        st.samples += 1;
        if senders + receivers > 0 {
            st.checked += 1;
        }
        st.with_receivers += u64::from(receivers > 0);
        st.with_senders += u64::from(senders > 0);
        std::thread::sleep(Duration::from_millis(1));
    }
    st
}

/// The checks of `verify` do fail on lost, duplicated and reordered
/// messages (synthetic records).
#[test]
fn verify_rejects_loss_duplicates_and_reordering() {
    let rec = |producer, seq, priority, start, end| Rec {
        producer,
        seq,
        priority,
        start,
        end,
    };
    let fails =
        |records: Vec<Vec<Rec>>| std::panic::catch_unwind(|| verify(&records, &[2, 1])).is_err();
    let good = vec![
        vec![rec(0, 0, 5, 0, 3), rec(1, 0, 5, 4, 5)],
        // Overlapping receives may complete in either order.
        vec![rec(0, 1, 5, 1, 2)],
    ];
    assert!(!fails(good));
    // Lost: producer 1's only message.
    assert!(fails(vec![vec![rec(0, 0, 5, 0, 1), rec(0, 1, 5, 2, 3)]]));
    // Duplicate.
    assert!(fails(vec![
        vec![rec(0, 0, 5, 0, 1), rec(0, 1, 5, 2, 3), rec(1, 0, 1, 4, 5)],
        vec![rec(1, 0, 1, 6, 7)],
    ]));
    // Seq 1 received (end 1) before seq 0's receive started (start 2).
    assert!(fails(vec![vec![
        rec(0, 1, 5, 0, 1),
        rec(0, 0, 5, 2, 3),
        rec(1, 0, 1, 4, 5)
    ]]));
    // Different priorities are not ordered against each other.
    assert!(!fails(vec![vec![
        rec(0, 1, 9, 0, 1),
        rec(0, 0, 5, 2, 3),
        rec(1, 0, 1, 4, 5)
    ]]));
}
