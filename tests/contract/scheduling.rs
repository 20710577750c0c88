//! Who is served first, and signals: blocked callers by scheduling priority
//! (nice) then arrival, and a blocked caller interrupted with or without
//! `SA_RESTART` (semantics reference §8, B1, B8–B11).
//!
//! Each blocked thread sets its own nice value (raising it only, so the
//! tests run for ordinary users) and blocks before the next one starts, so
//! arrival order is known. Blocked calls carry a generous timeout that a
//! correct backend never reaches.

use std::sync::{mpsc, Barrier};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant, SystemTime};

use mqtwin::{Error, Interest, MessageQueue, Namespace, OpenOptions};

use crate::blocking::{msg, take, Msg, GUARD, LEN};
use crate::signals::{Sched, Target};

fn create<H: Sched>(h: &H, tag: &str, capacity: usize) -> H::Q {
    let opts = OpenOptions::read_write()
        .create_new()
        .capacity(capacity)
        .max_msg_len(LEN);
    h.ns().open(&h.name(tag), &opts).unwrap()
}

fn receive<Q: MessageQueue>(q: &Q) -> Msg {
    let mut buf = [0u8; LEN];
    let r = q.receive_timeout(&mut buf, GUARD)?;
    Ok((buf[..r.len].to_vec(), r.priority))
}

/// Runs `body` on a new thread at `nice` and waits until it is the `n`th
/// blocked caller of the test.
fn blocked<'s, 'e: 's, H: Sched, T: Send + 's>(
    s: &'s Scope<'s, 'e>,
    h: &'e H,
    n: usize,
    nice: i32,
    body: impl FnOnce() -> T + Send + 's,
) -> (ScopedJoinHandle<'s, T>, Target) {
    let (tx, rx) = mpsc::channel();
    let thread = s.spawn(move || {
        h.track();
        h.set_nice(nice);
        tx.send(Target::current()).unwrap();
        body()
    });
    let target = rx.recv().unwrap();
    h.wait_blocked(n);
    (thread, target)
}

fn receivers_are_served_by_nice_then_arrival<H: Sched>(h: &H) {
    let q = create(h, "nice-recv", 4);
    std::thread::scope(|s| {
        let (a, _) = blocked(s, h, 1, 10, || receive(&q));
        let (b, _) = blocked(s, h, 2, 0, || receive(&q));
        let (c, _) = blocked(s, h, 3, 5, || receive(&q));
        let (d, _) = blocked(s, h, 4, 0, || receive(&q));
        for (m, p) in [("m1", 1), ("m2", 2), ("m3", 3), ("m4", 4)] {
            assert_eq!(q.send(m.as_bytes(), p), Ok(()));
        }
        // Nice 0 first, in arrival order; then 5; then 10.
        assert_eq!(b.join().unwrap(), msg("m1", 1));
        assert_eq!(d.join().unwrap(), msg("m2", 2));
        assert_eq!(c.join().unwrap(), msg("m3", 3));
        assert_eq!(a.join().unwrap(), msg("m4", 4));
    });
}

fn senders_are_served_by_nice_then_arrival<H: Sched>(h: &H) {
    let q = create(h, "nice-send", 1);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    std::thread::scope(|s| {
        let send = |m: &'static str| {
            let q = &q;
            move || q.send_timeout(m.as_bytes(), 7, GUARD)
        };
        let (a, _) = blocked(s, h, 1, 10, send("a"));
        let (b, _) = blocked(s, h, 2, 0, send("b"));
        let (c, _) = blocked(s, h, 3, 5, send("c"));
        let (d, _) = blocked(s, h, 4, 0, send("d"));
        for m in ["q0", "b", "d", "c", "a"] {
            assert_eq!(take(&q), msg(m, if m == "q0" { 0 } else { 7 }));
        }
        for t in [a, b, c, d] {
            assert_eq!(t.join().unwrap(), Ok(()));
        }
    });
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

fn an_interrupted_receiver_gets_interrupted_and_others_keep_their_order<H: Sched>(h: &H) {
    let q = create(h, "eintr-recv", 4);
    std::thread::scope(|s| {
        let (r1, _) = blocked(s, h, 1, 0, || receive(&q));
        let (r2, t2) = blocked(s, h, 2, 0, || receive(&q));
        let (r3, _) = blocked(s, h, 3, 0, || receive(&q));
        h.interrupt(&t2, false);
        assert_eq!(r2.join().unwrap(), Err(Error::Interrupted));
        assert_eq!(q.send(b"m1", 1), Ok(()));
        assert_eq!(q.send(b"m2", 2), Ok(()));
        assert_eq!(r1.join().unwrap(), msg("m1", 1));
        assert_eq!(r3.join().unwrap(), msg("m2", 2));
    });
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

fn an_interrupted_sender_queues_nothing<H: Sched>(h: &H) {
    let q = create(h, "eintr-send", 1);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    std::thread::scope(|s| {
        let (s1, t1) = blocked(s, h, 1, 0, || q.send_timeout(b"s1", 1, GUARD));
        let (s2, _) = blocked(s, h, 2, 0, || q.send_timeout(b"s2", 2, GUARD));
        h.interrupt(&t1, false);
        assert_eq!(s1.join().unwrap(), Err(Error::Interrupted));
        assert_eq!(take(&q), msg("q0", 0));
        assert_eq!(take(&q), msg("s2", 2));
        assert_eq!(s2.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

fn a_restarted_receiver_goes_to_the_back_of_its_nice_class<H: Sched>(h: &H) {
    let q = create(h, "restart-recv", 4);
    std::thread::scope(|s| {
        let (r1, t1) = blocked(s, h, 1, 0, || receive(&q));
        let (r2, _) = blocked(s, h, 2, 0, || receive(&q));
        let (r3, _) = blocked(s, h, 3, 5, || receive(&q));
        h.interrupt(&t1, true);
        h.wait_blocked(3);
        for (m, p) in [("m1", 1), ("m2", 2), ("m3", 3)] {
            assert_eq!(q.send(m.as_bytes(), p), Ok(()));
        }
        assert_eq!(r2.join().unwrap(), msg("m1", 1));
        assert_eq!(r1.join().unwrap(), msg("m2", 2));
        assert_eq!(r3.join().unwrap(), msg("m3", 3));
    });
}

fn a_restarted_sender_goes_to_the_back_of_its_nice_class<H: Sched>(h: &H) {
    let q = create(h, "restart-send", 1);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    std::thread::scope(|s| {
        let (s1, t1) = blocked(s, h, 1, 0, || q.send_timeout(b"s1", 1, GUARD));
        let (s2, _) = blocked(s, h, 2, 0, || q.send_timeout(b"s2", 2, GUARD));
        let (s3, _) = blocked(s, h, 3, 5, || q.send_timeout(b"s3", 3, GUARD));
        h.interrupt(&t1, true);
        h.wait_blocked(3);
        for expected in [msg("q0", 0), msg("s2", 2), msg("s1", 1), msg("s3", 3)] {
            assert_eq!(take(&q), expected);
        }
        for t in [s1, s2, s3] {
            assert_eq!(t.join().unwrap(), Ok(()));
        }
    });
}

fn a_restart_keeps_the_absolute_deadline<H: Sched>(h: &H) {
    let q = create(h, "restart-deadline", 4);
    let start = Instant::now();
    let deadline = SystemTime::now() + Duration::from_millis(500);
    std::thread::scope(|s| {
        let (rx, t) = blocked(s, h, 1, 0, || {
            let mut buf = [0u8; LEN];
            q.receive_deadline(&mut buf, Some(deadline)).map(|r| r.len)
        });
        std::thread::sleep(Duration::from_millis(250).saturating_sub(start.elapsed()));
        h.interrupt(&t, true);
        assert_eq!(rx.join().unwrap(), Err(Error::TimedOut));
    });
    // A restart with a fresh 500 ms would end after 750 ms.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(740),
        "{took:?}"
    );
}

fn a_waiter_served_before_the_signal_keeps_its_result<H: Sched>(h: &H) {
    let q = create(h, "served", 1);
    // The threads stay alive after their call so that the signal finds them.
    let gate = Barrier::new(2);
    std::thread::scope(|s| {
        let (rx, t) = blocked(s, h, 1, 0, || {
            let got = receive(&q);
            gate.wait();
            got
        });
        assert_eq!(q.send(b"handed", 3), Ok(()));
        h.interrupt(&t, false);
        gate.wait();
        assert_eq!(rx.join().unwrap(), msg("handed", 3));

        assert_eq!(q.send(b"full", 0), Ok(()));
        let (tx, t) = blocked(s, h, 1, 0, || {
            let sent = q.send_timeout(b"moved", 5, GUARD);
            gate.wait();
            sent
        });
        assert_eq!(take(&q), msg("full", 0));
        h.interrupt(&t, false);
        gate.wait();
        assert_eq!(tx.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&q), msg("moved", 5));
}

fn wait_ready_is_interrupted_even_with_restart<H: Sched>(h: &H) {
    let q = create(h, "poll", 1);
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel();
        let q = &q;
        let poller = s.spawn(move || {
            tx.send(Target::current()).unwrap();
            q.wait_ready(Interest::Readable, Some(SystemTime::now() + GUARD))
        });
        let t = rx.recv().unwrap();
        h.wait_polling(&t, 1);
        h.interrupt(&t, true);
        assert_eq!(poller.join().unwrap(), Err(Error::Interrupted));
    });
}

// Not on the remote backend: a client thread's nice value and the signals
// sent to it stay in the client process, while its call waits on a server
// worker thread (README's differences table, docs/semantics.md R-rules).
crate::instantiate!(
    @local
    receivers_are_served_by_nice_then_arrival,
    senders_are_served_by_nice_then_arrival,
    an_interrupted_receiver_gets_interrupted_and_others_keep_their_order,
    an_interrupted_sender_queues_nothing,
    a_restarted_receiver_goes_to_the_back_of_its_nice_class,
    a_restarted_sender_goes_to_the_back_of_its_nice_class,
    a_restart_keeps_the_absolute_deadline,
    a_waiter_served_before_the_signal_keeps_its_result,
    wait_ready_is_interrupted_even_with_restart,
);
