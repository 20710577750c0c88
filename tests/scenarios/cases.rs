//! The scenarios, generic over the [`Backend`]: see `tests/scenarios.rs`
//! for how they are scheduled. Also included by `tests/determinism.rs`,
//! which runs each one as a participant of a deterministic twin.

use std::sync::Arc;
use std::time::Duration;

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

use super::harness::*;

/// Four receivers block in order R1..R4 on one handle. Sends at priorities
/// 3, 32767, 0 go to R1, R2, R3 in send order (priority plays no part in a
/// handoff) and are never queued. With R4 still waiting the queue is empty.
/// Then d(1) goes to R4 and e(9), f(5) are queued and come out by priority.
pub fn several_receivers_then_sends_at_different_priorities<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("recv-prio", 4);
    let tx = sc.open(&name, OpenOptions::write_only());
    {
        let r1 = sc.blocked(share!(q => recv(&q)));
        let r2 = sc.blocked(share!(q => recv(&q)));
        let r3 = sc.blocked(share!(q => recv(&q)));
        let r4 = sc.blocked(share!(q => recv(&q)));
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
    }
    assert_eq!(take(&q), msg("e", 9));
    assert_eq!(take(&q), msg("f", 5));
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

/// A full queue (capacity 2: a(1), b(1)) with senders S1 c(0), S2 d(9),
/// S3 e(5), S4 f(9) blocked in that order. Each receive takes the head and
/// moves the *first* blocked sender's message in, so the queue stays full
/// and a try_send gets WouldBlock until the senders are gone:
/// a → {b1,c0}; b → {d9,c0}; d → {e5,c0}; e → {f9,c0}; f → {c0}.
pub fn full_queue_several_blocked_senders_then_receives<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("send-fifo", 2);
    let rx = sc.open(&name, OpenOptions::read_only());
    assert_eq!(q.send(b"a", 1), Ok(()));
    assert_eq!(q.send(b"b", 1), Ok(()));
    {
        let s1 = sc.blocked(share!(q => q.send(b"c", 0)));
        let s2 = sc.blocked(share!(q => q.send(b"d", 9)));
        let s3 = sc.blocked(share!(q => q.send(b"e", 5)));
        let s4 = sc.blocked(share!(q => q.send(b"f", 9)));
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
    }
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
pub fn timeouts_expire_among_receivers<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (_, q) = sc.create("recv-timeouts", 4);
    {
        let r1 = sc.blocked(share!(q => recv(&q)));
        let r2 = sc.blocked(share!(q => recv_timeout(&q, SHORT)));
        let r3 = sc.blocked(share!(q => recv(&q)));
        let r4 = sc.blocked(share!(q => recv_timeout(&q, SHORT)));
        let r5 = sc.blocked(share!(q => recv_timeout(&q, GUARD)));
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
    }
    // A zero timeout on a non-empty queue succeeds; on an empty one it
    // times out at once.
    assert_eq!(recv_timeout(&q, Duration::ZERO).0, msg("m4", 2));
    assert_eq!(recv_timeout(&q, Duration::ZERO).0, Err(Error::TimedOut));
}

/// A full queue (capacity 1: q0) with senders S1 x1(9, 100 ms), S2 x2(1, no
/// deadline), S3 x3(32767, 100 ms), S4 x4(3, 10 s) blocked in that order.
/// S1 and S3 time out and their messages are never queued; the receives
/// then move in S2's and S4's messages, in block order.
pub fn timeouts_expire_among_senders<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (_, q) = sc.create("send-timeouts", 1);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    {
        let s1 = sc.blocked(share!(q => send_timeout(&q, "x1", 9, SHORT)));
        let s2 = sc.blocked(share!(q => q.send(b"x2", 1)));
        let s3 = sc.blocked(share!(q => send_timeout(&q, "x3", 32767, SHORT)));
        let s4 = sc.blocked(share!(q => send_timeout(&q, "x4", 3, GUARD)));
        assert_eq!(waited_short(s1.join().unwrap()), Err(Error::TimedOut));
        assert_eq!(waited_short(s3.join().unwrap()), Err(Error::TimedOut));
        assert_eq!(current(&q), 1);
        assert_eq!(take(&q), msg("q0", 0));
        assert_eq!(current(&q), 1, "x2 moved in");
        assert_eq!(s2.join().unwrap(), Ok(()));
        assert_eq!(take(&q), msg("x2", 1));
        assert_eq!(current(&q), 1, "x4 moved in");
        assert_eq!(s4.join().unwrap().0, Ok(()));
    }
    assert_eq!(take(&q), msg("x4", 3));
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

/// R1 blocks on handle `q`; then `q` is made non-blocking. R1 keeps waiting;
/// a receive through `q`'s dup (same description) fails at once with
/// WouldBlock, while a separately opened handle still blocks (R2). Sends go
/// to R1 then R2. After switching back, a receiver on the dup blocks again
/// (R3). The send side: S1 blocks on `q`, `q` turns non-blocking, S1 stays
/// queued, a send through `q` gets WouldBlock, and a receive moves S1 in.
pub fn set_nonblocking_while_another_thread_waits<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("nonblock", 2);
    let dq = sc.dup(&q);
    let p = sc.open(&name, OpenOptions::read_only());
    let tx = sc.open(&name, OpenOptions::write_only());
    {
        let r1 = sc.blocked(share!(q => recv(&q)));
        assert_eq!(q.set_nonblocking(true), Ok(false));
        assert!(nonblocking(&q));
        assert!(nonblocking(&dq), "a dup shares the description's flag");
        assert!(!nonblocking(&p), "another open has its own flag");
        let mut buf = [0u8; LEN];
        assert_eq!(dq.receive(&mut buf), Err(Error::WouldBlock));
        assert_eq!(dq.receive_timeout(&mut buf, GUARD), Err(Error::WouldBlock));
        let r2 = sc.blocked(share!(p => recv(&p)));
        assert_eq!(tx.send(b"m1", 1), Ok(()));
        assert_eq!(tx.send(b"m2", 2), Ok(()));
        assert_eq!(current(&q), 0);
        assert_eq!(r1.join().unwrap(), msg("m1", 1));
        assert_eq!(r2.join().unwrap(), msg("m2", 2));
        assert_eq!(dq.set_nonblocking(false), Ok(true));
        assert!(!nonblocking(&q));
        let r3 = sc.blocked(share!(dq => recv(&dq)));
        assert_eq!(tx.send(b"m3", 3), Ok(()));
        assert_eq!(r3.join().unwrap(), msg("m3", 3));
    }
    assert_eq!(tx.send(b"f1", 1), Ok(()));
    assert_eq!(tx.send(b"f2", 2), Ok(()));
    {
        let s1 = sc.blocked(share!(q => q.send(b"s1", 7)));
        assert_eq!(dq.set_nonblocking(true), Ok(false));
        assert_eq!(q.send(b"x", 0), Err(Error::WouldBlock));
        assert_eq!(q.send_timeout(b"x", 0, GUARD), Err(Error::WouldBlock));
        // A blocking handle still queues up behind S1.
        let s2 = sc.blocked(share!(tx => tx.send(b"s2", 9)));
        assert_eq!(take(&p), msg("f2", 2));
        assert_eq!(current(&q), 2);
        assert_eq!(s1.join().unwrap(), Ok(()));
        assert_eq!(take(&p), msg("s1", 7));
        assert_eq!(s2.join().unwrap(), Ok(()));
    }
    assert_eq!(take(&p), msg("s2", 9));
    assert_eq!(take(&p), msg("f1", 1));
    assert_eq!(take(&p), Err(Error::WouldBlock));
}

/// R1 blocks on a queue; the name is unlinked and re-created (capacity 1)
/// as an independent queue. A send to the new queue is queued there and
/// does not reach R1; a send through an old handle does. Then senders on the
/// unlinked queue: S1 blocks on the full old queue and a receive through an
/// old handle moves it in.
pub fn unlink_while_another_thread_waits<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("unlink", 2);
    let tx = sc.open(&name, OpenOptions::write_only());
    let fresh = {
        let r1 = sc.blocked(share!(q => recv(&q)));
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
    };
    assert_eq!(tx.send(b"a", 1), Ok(()));
    assert_eq!(tx.send(b"b", 2), Ok(()));
    {
        let s1 = sc.blocked(share!(tx => tx.send(b"s1", 5)));
        assert_eq!(take(&q), msg("b", 2));
        assert_eq!(current(&q), 2);
        assert_eq!(s1.join().unwrap(), Ok(()));
    }
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
pub fn dropping_a_dup_while_another_thread_waits<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("dup", 1);
    let tx = sc.open(&name, OpenOptions::write_only());
    let d = sc.dup(&q);
    {
        let r1 = sc.blocked(share!(q => recv(&q)));
        drop(d);
        assert_eq!(tx.send(b"one", 1), Ok(()));
        assert_eq!(r1.join().unwrap(), msg("one", 1));
    }
    let d2 = sc.dup(&q);
    {
        let r2 = sc.blocked(share!(d2 => recv(&d2)));
        assert_eq!(sc.ns().unlink(&name), Ok(()));
        drop(Arc::try_unwrap(q).expect("no thread holds q"));
        assert_eq!(current(&d2), 0);
        assert_eq!(tx.send(b"two", 2), Ok(()));
        assert_eq!(r2.join().unwrap(), msg("two", 2));
    }
    let txd = sc.dup(&tx);
    assert_eq!(txd.send(b"full", 0), Ok(()));
    {
        let s1 = sc.blocked(share!(tx => tx.send(b"three", 3)));
        drop(txd);
        assert_eq!(take(&d2), msg("full", 0));
        assert_eq!(current(&d2), 1);
        assert_eq!(s1.join().unwrap(), Ok(()));
    }
    assert_eq!(take(&d2), msg("three", 3));
    assert_eq!(take(&d2), Err(Error::WouldBlock));
}

/// While R waits, a send and a burst of try_receives (through another,
/// non-blocking handle) start together from a barrier (on the deterministic twin: in
/// an order drawn from the seed). The send hands its
/// message straight to R, so every try_receive gets WouldBlock whichever
/// comes first. Repeated to let the race go both ways.
pub fn send_racing_try_receive_while_receiver_blocked<B: Backend>(b: &B) {
    const ROUNDS: u32 = 40;
    const TRIES: usize = 50;
    let sc = Scene::new(b);
    let (name, q) = sc.create("race", 4);
    let tx = sc.open(&name, OpenOptions::write_only());
    let nb = sc.open(&name, OpenOptions::read_only().nonblocking());
    for round in 0..ROUNDS {
        let start = sc.start_line(2);
        let m = format!("m{round}");
        let r = sc.blocked(share!(q => recv(&q)));
        let sender = sc.spawn({
            let (start, tx, m) = (start.clone(), Arc::clone(&tx), m.clone());
            move || {
                start.map(|s| s.wait());
                tx.send(m.as_bytes(), round)
            }
        });
        let racer = sc.spawn({
            let (start, nb) = (start.clone(), Arc::clone(&nb));
            move || {
                start.map(|s| s.wait());
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
            }
        });
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(racer.join().unwrap(), vec![Err(Error::WouldBlock); TRIES]);
        assert_eq!(r.join().unwrap(), msg(&m, round));
        assert_eq!(current(&q), 0);
    }
}

/// Receivers on two descriptions of one queue with different access modes
/// (read-only and read-write) form one waiter list: R1 (ro), R2 (rw),
/// R3 (ro), R4 (rw) are served in block order by sends from a write-only
/// and the read-write handle. A write-only handle cannot receive and a
/// read-only one cannot send, waiters or not.
pub fn receivers_on_two_handles_with_different_access_modes<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, _creator) = sc.create("two-handles", 3);
    let ro = sc.open(&name, OpenOptions::read_only());
    let rw = sc.open(&name, OpenOptions::read_write());
    let wo = sc.open(&name, OpenOptions::write_only().nonblocking());
    {
        let r1 = sc.blocked(share!(ro => recv(&ro)));
        let r2 = sc.blocked(share!(rw => recv(&rw)));
        let r3 = sc.blocked(share!(ro => recv(&ro)));
        let r4 = sc.blocked(share!(rw => recv(&rw)));
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
    }
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
pub fn mixed_blocked_senders_and_move_in<B: Backend>(b: &B) {
    let sc = Scene::new(b);
    let (name, q) = sc.create("mixed-senders", 3);
    let wo = sc.open(&name, OpenOptions::write_only());
    let wod = sc.dup(&wo);
    let rx = sc.open(&name, OpenOptions::read_only());
    let nb = sc.open(&name, OpenOptions::read_write().nonblocking());
    for (m, p) in [("a", 2), ("b", 7), ("c", 2)] {
        assert_eq!(q.send(m.as_bytes(), p), Ok(()));
    }
    {
        let s1 = sc.blocked(share!(wo => send_timeout(&wo, "x", 1, GUARD)));
        let s2 = sc.blocked(share!(q => q.send(b"y", 30000)));
        let s3 = sc.blocked(share!(wod => wod.send(b"z", 7)));
        assert_eq!(nb.send(b"n", 32767), Err(Error::WouldBlock));
        assert_eq!(q.try_send(b"n", 32767), Err(Error::WouldBlock));
        assert_eq!(
            waited_short(send_timeout(&q, "t", 32767, SHORT)),
            Err(Error::TimedOut)
        );
        let past = q.now() - Duration::from_secs(1);
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
    }
    assert_eq!(take(&rx), msg("z", 7));
    assert_eq!(current(&q), 2);
    assert_eq!(nb.try_send(b"w", 0), Ok(()));
    for expected in [msg("c", 2), msg("x", 1), msg("w", 0)] {
        assert_eq!(take(&rx), expected);
    }
    assert_eq!(take(&rx), Err(Error::WouldBlock));
}

/// `$m!(scenario, ...)` with every scenario, so that a new one is added
/// once, here, and reaches every instantiation.
macro_rules! for_each_scenario {
    ($m:ident) => {
        $m!(
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
    };
}
