//! Model checking of the twin's synchronisation with [loom].
//!
//! Built only with `--cfg mqtwin_loom`, which switches `src/sync.rs` (the
//! twin's only door to `Mutex`, `Condvar`, atomics and thread spawning) onto
//! loom, so loom explores every interleaving of the twin's critical sections
//! and wake-ups up to a preemption bound:
//!
//! ```text
//! RUSTFLAGS="--cfg mqtwin_loom" CARGO_TARGET_DIR=target/loom \
//!     LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom -- --nocapture
//! ```
//!
//! Without `LOOM_MAX_PREEMPTIONS` the bound is 2 (`check` below); a deeper
//! run sets 3. Each model prints how many executions loom explored.
//!
//! Every model asserts:
//! - no deadlock (loom fails an execution in which every thread is blocked,
//!   so a lost wake-up shows up as a failure, not a hang);
//! - no lost and no duplicated message: what the threads received plus what
//!   is left in the queue is exactly what was sent successfully;
//! - the queue invariants, in a snapshot taken under the queue lock after
//!   every call: receivers wait only on an empty queue, senders only on a
//!   full one;
//! - the exact `Result` of every call, among the outcomes the interleaving
//!   allows.
//!
//! loom has no time, so expiry is an explicit event: the twins run on a
//! [`VirtualClock`](mqtwin::twin::VirtualClock) and one thread advances it
//! while the others send and receive.
//!
//! [loom]: https://docs.rs/loom
#![cfg(mqtwin_loom)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loom::thread;
use mqtwin::twin::{Queue, Twin};
use mqtwin::{Error, Interest, MessageQueue, Namespace, Notify, OpenOptions, Readiness};

/// Maximum message length of every queue here (and the receive buffer).
const LEN: usize = 8;

/// A timeout long enough never to pass unless the clock is advanced.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `model` under loom with the preemption bound from
/// `LOOM_MAX_PREEMPTIONS` (2 when unset) and reports how many executions
/// were explored and how long it took.
fn check(name: &str, model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let bound = builder.preemption_bound;
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executions);
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom: {name}: {} executions explored (preemption bound {bound:?}) in {:.2?}",
        executions.load(Ordering::Relaxed),
        start.elapsed()
    );
}

fn options(capacity: usize) -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(capacity)
        .max_msg_len(LEN)
}

/// Receives without blocking: `Some((first byte, priority))`, or `None`
/// when the queue is empty.
fn try_take(q: &Queue) -> Option<(u8, u32)> {
    let mut buf = [0u8; LEN];
    match q.try_receive(&mut buf) {
        Ok(r) => {
            assert_eq!(r.len, 1);
            Some((buf[0], r.priority))
        }
        Err(e) => {
            assert_eq!(e, Error::WouldBlock);
            None
        }
    }
}

/// A blocking receive's `Result`, as `(first byte, priority)`.
fn take(q: &Queue) -> Result<(u8, u32), Error> {
    let mut buf = [0u8; LEN];
    q.receive(&mut buf).map(|r| {
        assert_eq!(r.len, 1);
        (buf[0], r.priority)
    })
}

/// Everything left in the queue, in receive order.
fn drain(q: &Queue) -> Vec<(u8, u32)> {
    std::iter::from_fn(|| try_take(q)).collect()
}

/// The twin's invariants, read in one snapshot under the queue lock.
fn invariants(q: &Queue, capacity: usize) {
    let (messages, receivers, senders) = q.snapshot();
    assert!(
        messages <= capacity,
        "{messages} messages > capacity {capacity}"
    );
    assert!(
        receivers == 0 || messages == 0,
        "{receivers} receivers wait while {messages} messages are queued"
    );
    assert!(
        senders == 0 || messages == capacity,
        "{senders} senders wait on a queue with {messages}/{capacity} messages"
    );
}

/// After every thread has finished: nobody waits, the queue is empty, and
/// every message was seen exactly once.
fn settled(ns: &Twin, q: &Queue, mut seen: Vec<(u8, u32)>, mut sent: Vec<(u8, u32)>) {
    assert_eq!(q.snapshot(), (0, 0, 0));
    assert_eq!(ns.blocked(), 0);
    seen.sort_unstable();
    sent.sort_unstable();
    assert_eq!(seen, sent, "messages lost or duplicated");
}

/// A send, a blocking receive and a non-blocking receive race on an empty
/// queue. The blocked receiver must always be served (one of the two
/// messages is handed to it or queued for it), `try_receive` takes a message
/// or reports `WouldBlock`, and nothing is lost or duplicated.
#[test]
fn send_vs_blocked_receiver_vs_try_receive() {
    check("send vs blocked receiver vs try_receive", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(2)).unwrap();
        let rq = q.try_clone().unwrap();
        let receiver = thread::spawn(move || {
            let got = take(&rq);
            invariants(&rq, 2);
            got
        });
        let tq = q.try_clone().unwrap();
        let trier = thread::spawn(move || {
            let got = try_take(&tq);
            invariants(&tq, 2);
            got
        });
        q.send(b"a", 1).unwrap();
        invariants(&q, 2);
        q.send(b"b", 5).unwrap();
        invariants(&q, 2);

        let received = receiver
            .join()
            .unwrap()
            .expect("the blocking receive succeeds");
        let tried = trier.join().unwrap();
        let mut seen = vec![received];
        seen.extend(tried);
        let left = drain(&q);
        // Whatever is left comes out in priority order.
        if left.len() == 2 {
            assert_eq!(left, [(b'b', 5), (b'a', 1)]);
        }
        seen.extend(left);
        settled(&ns, &q, seen, vec![(b'a', 1), (b'b', 5)]);
    });
}

/// `set_nonblocking` through a dup races a receive on the same open
/// description: the receive either saw the flag (`WouldBlock`, the message
/// stays queued) or blocked before it and is then served by the send. The
/// flag never strands a receiver that is already waiting.
#[test]
fn set_nonblocking_races_a_receiver() {
    check("set_nonblocking races a receiver", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(1)).unwrap();
        let rq = q.try_clone().unwrap();
        let receiver = thread::spawn(move || take(&rq));
        q.set_nonblocking(true).unwrap();
        q.send(b"m", 3).unwrap();
        invariants(&q, 1);

        let got = receiver.join().unwrap();
        let mut seen = Vec::new();
        match got {
            Ok(m) => seen.push(m),
            Err(e) => assert_eq!(e, Error::WouldBlock),
        }
        seen.extend(drain(&q));
        settled(&ns, &q, seen, vec![(b'm', 3)]);
        assert!(q.attributes().unwrap().nonblocking);
    });
}

/// A full queue (capacity 1) with two senders that block, drained by three
/// blocking receives. The queued message always comes out first; each
/// receive moves the first blocked sender's message in, so both senders
/// succeed and every message arrives exactly once.
#[test]
fn full_queue_handoff_from_blocked_senders() {
    check("full-queue handoff from blocked senders", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(1)).unwrap();
        q.send(b"0", 0).unwrap();
        let senders: Vec<_> = [(b'1', 1), (b'2', 2)]
            .into_iter()
            .map(|(byte, priority)| {
                let sq = q.try_clone().unwrap();
                thread::spawn(move || {
                    let r = sq.send(&[byte], priority);
                    invariants(&sq, 1);
                    r
                })
            })
            .collect();
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(take(&q).unwrap());
            invariants(&q, 1);
        }
        for s in senders {
            assert_eq!(s.join().unwrap(), Ok(()));
        }
        assert_eq!(seen[0], (b'0', 0), "the queued message comes out first");
        settled(&ns, &q, seen, vec![(b'0', 0), (b'1', 1), (b'2', 2)]);
    });
}

/// A timed receive, a send and the clock reaching the receiver's deadline
/// race. Either the message is handed over first (the receive succeeds, even
/// if it notices its deadline only afterwards), or the deadline wins (the
/// receive times out and the message stays queued). Never both, never
/// neither, and never a time-out before the deadline.
#[test]
fn receive_timeout_expiry_races_handoff() {
    check("receive deadline expiry races a handoff", || {
        let ns = Twin::builder().virtual_time().build();
        let clock = ns.virtual_clock().unwrap();
        let t0 = clock.now();
        let q = ns.open("/q", &options(1)).unwrap();
        let rq = q.try_clone().unwrap();
        let receiver = thread::spawn(move || {
            let started = rq.now();
            let mut buf = [0u8; LEN];
            let r = rq
                .receive_timeout(&mut buf, TIMEOUT)
                .map(|r| (buf[0], r.priority));
            invariants(&rq, 1);
            (started, r)
        });
        let sq = q.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let r = sq.send(b"m", 7);
            invariants(&sq, 1);
            r
        });
        clock.advance(TIMEOUT);

        assert_eq!(sender.join().unwrap(), Ok(()));
        let (started, got) = receiver.join().unwrap();
        let mut seen = Vec::new();
        match got {
            Ok(m) => seen.push(m),
            Err(e) => {
                assert_eq!(e, Error::TimedOut);
                // Only a receive that started before the clock moved has a
                // deadline the clock reached.
                assert_eq!(started, t0, "timed out before its deadline");
                assert_eq!(q.snapshot(), (1, 0, 0), "the message stays queued");
            }
        }
        seen.extend(drain(&q));
        settled(&ns, &q, seen, vec![(b'm', 7)]);
    });
}

/// A timed send blocked on a full queue races a receive that makes room and
/// the clock reaching the sender's deadline. If the send succeeds its message
/// is received or left queued; if it times out the message never appears.
#[test]
fn send_timeout_expiry_races_handoff() {
    check("send deadline expiry races a handoff", || {
        let ns = Twin::builder().virtual_time().build();
        let clock = ns.virtual_clock().unwrap();
        let t0 = clock.now();
        let q = ns.open("/q", &options(1)).unwrap();
        q.send(b"p", 1).unwrap();
        let sq = q.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let started = sq.now();
            let r = sq.send_timeout(b"m", 2, TIMEOUT);
            invariants(&sq, 1);
            (started, r)
        });
        let rq = q.try_clone().unwrap();
        let receiver = thread::spawn(move || {
            let first = take(&rq);
            invariants(&rq, 1);
            let second = try_take(&rq);
            invariants(&rq, 1);
            (first, second)
        });
        clock.advance(TIMEOUT);

        let (started, sent) = sender.join().unwrap();
        let (first, second) = receiver.join().unwrap();
        assert_eq!(first, Ok((b'p', 1)), "the queued message comes out first");
        let mut seen = vec![(b'p', 1)];
        seen.extend(second);
        seen.extend(drain(&q));
        let mut expected = vec![(b'p', 1)];
        match sent {
            Ok(()) => expected.push((b'm', 2)),
            Err(e) => {
                assert_eq!(e, Error::TimedOut);
                assert_eq!(started, t0, "timed out before its deadline");
            }
        }
        settled(&ns, &q, seen, expected);
    });
}

/// Two receivers with the same absolute deadline and one send race the
/// clock reaching that deadline: the send serves at most one of them, the
/// other times out (at once if it starts after the deadline), and the
/// message is neither delivered twice nor lost.
#[test]
fn two_timed_receivers_one_message_and_expiry() {
    check("two timed receivers, one message, expiry", || {
        let ns = Twin::builder().virtual_time().build();
        let clock = ns.virtual_clock().unwrap();
        let deadline = clock.now() + TIMEOUT;
        let q = ns.open("/q", &options(1)).unwrap();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rq = q.try_clone().unwrap();
                thread::spawn(move || {
                    let mut buf = [0u8; LEN];
                    let r = rq
                        .receive_deadline(&mut buf, Some(deadline))
                        .map(|r| (buf[0], r.priority));
                    invariants(&rq, 1);
                    r
                })
            })
            .collect();
        q.send(b"m", 4).unwrap();
        invariants(&q, 1);
        clock.advance(TIMEOUT);

        let mut seen = Vec::new();
        for r in receivers {
            match r.join().unwrap() {
                Ok(m) => seen.push(m),
                Err(e) => assert_eq!(e, Error::TimedOut),
            }
        }
        assert!(seen.len() <= 1, "one message served two receivers");
        seen.extend(drain(&q));
        settled(&ns, &q, seen, vec![(b'm', 4)]);
    });
}

/// Unlink and closes race a blocked receiver: the receiver's open
/// description keeps the unlinked queue alive, so the send still reaches
/// it; closing a dup of the receiver's handle changes nothing; once the last
/// handle is closed the queue is destroyed and its bytes uncharged.
#[test]
fn close_and_unlink_race_a_blocked_receiver() {
    check("close and unlink race a blocked receiver", || {
        let ns = Twin::new();
        let uid = ns.credentials().uid;
        let rx = ns.open("/q", &options(1)).unwrap();
        let tx = ns.open("/q", &OpenOptions::write_only()).unwrap();
        let dup = rx.try_clone().unwrap();
        let receiver = thread::spawn(move || {
            let got = take(&rx);
            invariants(&rx, 1);
            drop(rx);
            got
        });
        let uns = ns.clone();
        let unlinker = thread::spawn(move || {
            drop(dup);
            assert_eq!(uns.unlink("/q"), Ok(()));
            assert_eq!(
                uns.open("/q", &OpenOptions::read_only()).unwrap_err(),
                Error::NotFound { name: "/q".into() }
            );
        });
        assert_eq!(tx.send(b"m", 9), Ok(()));
        drop(tx);

        unlinker.join().unwrap();
        assert_eq!(receiver.join().unwrap(), Ok((b'm', 9)));
        assert_eq!(ns.blocked(), 0);
        assert_eq!(ns.queue_count(), 0, "unlinked and closed: destroyed");
        assert_eq!(ns.charged_bytes(uid), 0);
    });
}

/// Unlink and close race a sender blocked on a full queue: the receive that
/// makes room moves the blocked sender's message in, the unlinked queue
/// lives until its last handle closes, and a queue re-created under the same
/// name is a different, empty queue.
#[test]
fn close_and_unlink_race_a_blocked_sender() {
    check("close and unlink race a blocked sender", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(1)).unwrap();
        q.send(b"p", 1).unwrap();
        let tx = ns.open("/q", &OpenOptions::write_only()).unwrap();
        let sender = thread::spawn(move || {
            let r = tx.send(b"m", 2);
            drop(tx);
            r
        });
        let uns = ns.clone();
        let unlinker = thread::spawn(move || {
            assert_eq!(uns.unlink("/q"), Ok(()));
            let fresh = uns.open("/q", &options(1).create_new()).unwrap();
            assert_eq!(fresh.snapshot(), (0, 0, 0));
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(take(&q).unwrap());
            invariants(&q, 1);
        }
        assert_eq!(seen[0], (b'p', 1));
        assert_eq!(sender.join().unwrap(), Ok(()));
        unlinker.join().unwrap();
        settled(&ns, &q, seen, vec![(b'p', 1), (b'm', 2)]);
        // The re-created queue is linked; the unlinked one lives until `q`
        // closes.
        assert_eq!(ns.queue_count(), 2);
        drop(q);
        assert_eq!(ns.queue_count(), 1);
    });
}

/// `Twin::wait_blocked`, the hook deterministic tests synchronise on, races
/// two receivers blocking: it returns only once both are queued as waiters
/// (never misses the wake-up that the second one counts), and the sends
/// that follow are handed to them directly.
#[test]
fn wait_blocked_sees_every_blocked_caller() {
    check("wait_blocked sees every blocked caller", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(2)).unwrap();
        let receivers: Vec<_> = (0..2)
            .map(|_| {
                let rq = q.try_clone().unwrap();
                thread::spawn(move || take(&rq))
            })
            .collect();
        ns.wait_blocked(2);
        assert_eq!(q.snapshot(), (0, 2, 0));
        q.send(b"a", 1).unwrap();
        q.send(b"b", 2).unwrap();
        // Both were handed over: nothing was queued.
        assert_eq!(q.snapshot(), (0, 0, 0));
        let seen = receivers
            .into_iter()
            .map(|r| r.join().unwrap().unwrap())
            .collect();
        settled(&ns, &q, seen, vec![(b'a', 1), (b'b', 2)]);
    });
}

/// A readiness waiter with a deadline races a send and the clock reaching
/// its deadline: it reports the queue readable or times out, and in either
/// case leaves no waiter behind; the message stays queued.
#[test]
fn wait_ready_races_send_and_expiry() {
    check("wait_ready races a send and expiry", || {
        let ns = Twin::builder().virtual_time().build();
        let clock = ns.virtual_clock().unwrap();
        let deadline = clock.now() + TIMEOUT;
        let q = ns.open("/q", &options(1)).unwrap();
        let pq = q.try_clone().unwrap();
        let poller = thread::spawn(move || pq.wait_ready(Interest::Readable, Some(deadline)));
        let sq = q.try_clone().unwrap();
        let sender = thread::spawn(move || sq.send(b"m", 6));
        clock.advance(TIMEOUT);

        assert_eq!(sender.join().unwrap(), Ok(()));
        match poller.join().unwrap() {
            Ok(r) => assert_eq!(
                r,
                Readiness {
                    readable: true,
                    writable: false
                }
            ),
            Err(e) => assert_eq!(e, Error::TimedOut),
        }
        invariants(&q, 1);
        let seen = drain(&q);
        settled(&ns, &q, seen, vec![(b'm', 6)]);
    });
}

/// A `Notify::Thread` registration, a blocked receiver and two sends race.
/// A message handed to a waiting receiver never notifies; the first message
/// that lands in the empty queue does, once, on a new (loom) thread started
/// through the sync facade; the registration is consumed either way. The
/// callback reports by sending to a second queue.
#[test]
fn notification_races_a_blocked_receiver() {
    check("notification races a blocked receiver", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(2)).unwrap();
        let events = ns.open("/events", &options(2)).unwrap();
        let report = events.try_clone().unwrap();
        let fired = Arc::new(AtomicUsize::new(0));
        let f = Arc::clone(&fired);
        q.notify(Notify::thread(move || {
            assert_eq!(f.fetch_add(1, Ordering::SeqCst), 0, "notified twice");
            report.send(b"n", 0).unwrap();
        }))
        .unwrap();
        // The receiver hands its handle back instead of closing it: every
        // close by the owner process removes the registration (as
        // `mqueue_flush_file` does), which would make whether anything is
        // notified depend on when the receiver finishes.
        let rq = q.try_clone().unwrap();
        let receiver = thread::spawn(move || (take(&rq), rq));
        q.send(b"a", 1).unwrap();
        q.send(b"b", 2).unwrap();

        let (got, rq) = receiver.join().unwrap();
        let got = got.expect("the blocking receive succeeds");
        // Exactly one of the sends found the queue empty with no receiver
        // waiting; its notification thread runs on its own time.
        assert_eq!(take(&events), Ok((b'n', 0)));
        assert_eq!(q.notify_owner(), None, "the registration is consumed");
        let mut seen = vec![got];
        seen.extend(drain(&q));
        settled(&ns, &q, seen, vec![(b'a', 1), (b'b', 2)]);
        drop(rq);
    });
}

/// A callback that owns a handle to its own queue races a send that fires
/// it and the close of the registering handle: in every interleaving the
/// callback is either run (fired first) or dropped (removed first), exactly
/// once, and neither path deadlocks, although running or dropping the
/// callback closes a handle of the same queue (docs/semantics.md Y16–Y17).
#[test]
fn callback_owning_its_queue_races_send_and_close() {
    check("callback owning its queue races send and close", || {
        let ns = Twin::new();
        let q = ns.open("/q", &options(2)).unwrap();
        let owned = q.try_clone().unwrap();
        let outcome = Arc::new(AtomicUsize::new(0));
        // Counts 1 when run; 10 when dropped without running.
        struct Guard(Arc<AtomicUsize>, bool);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0
                    .fetch_add(if self.1 { 1 } else { 10 }, Ordering::SeqCst);
            }
        }
        let mut guard = Guard(Arc::clone(&outcome), false);
        q.notify(Notify::thread(move || {
            guard.1 = true;
            drop(owned);
            drop(guard);
        }))
        .unwrap();
        let sender = ns.open("/q", &options(2)).unwrap();
        let t = thread::spawn(move || {
            sender.send(b"x", 0).unwrap();
            sender
        });
        drop(q);
        let sender = t.join().unwrap();
        // The callback thread (if it fired) runs on its own time: wait for it.
        while outcome.load(Ordering::SeqCst) == 0 {
            thread::yield_now();
        }
        let got = outcome.load(Ordering::SeqCst);
        assert!(got == 1 || got == 10, "run or dropped exactly once: {got}");
        drop(sender);
    });
}
