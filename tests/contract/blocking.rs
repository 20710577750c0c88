//! Blocked callers: wake-up order, direct handoff, blocked senders moved in
//! by receives, and what does not disturb a waiter (semantics reference §8,
//! §9, §4, §5).
//!
//! Threads are blocked one at a time (spawn, then `wait_blocked(n)`) so
//! their order in the waiter list is known. Blocked calls carry a generous
//! timeout that the rules never reach: a broken backend fails with
//! `TimedOut` instead of hanging.

use std::time::Duration;

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

use crate::harness::Harness;

/// Maximum message length of the queues these tests create.
pub(crate) const LEN: usize = 16;
/// Timeout of blocked calls: never reached by a correct backend.
pub(crate) const GUARD: Duration = Duration::from_secs(10);

pub(crate) type Msg = Result<(Vec<u8>, u32), Error>;

/// `dup` for the handle types of both backends (not part of the traits).
pub(crate) trait Dup: Sized {
    fn dup(&self) -> Result<Self, Error>;
}

impl Dup for mqtwin::twin::Queue {
    fn dup(&self) -> Result<Self, Error> {
        self.try_clone()
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
impl Dup for mqtwin::posix::Queue {
    fn dup(&self) -> Result<Self, Error> {
        self.try_clone()
    }
}

#[cfg(all(target_os = "linux", feature = "posix", feature = "remote"))]
impl Dup for mqtwin::remote::RemoteQueue {
    fn dup(&self) -> Result<Self, Error> {
        self.try_clone()
    }
}

fn create<H: Harness>(h: &H, tag: &str, capacity: usize) -> (String, H::Q) {
    let name = h.name(tag);
    let q = h
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

fn current<Q: MessageQueue>(q: &Q) -> usize {
    q.attributes().unwrap().current_messages
}

pub(crate) fn msg(m: &str, priority: u32) -> Msg {
    Ok((m.as_bytes().to_vec(), priority))
}

/// Takes one message without waiting.
pub(crate) fn take<Q: MessageQueue>(q: &Q) -> Msg {
    let mut buf = [0u8; LEN];
    let r = q.try_receive(&mut buf)?;
    Ok((buf[..r.len].to_vec(), r.priority))
}

/// Receives one message, waiting (at most `GUARD`): the body of a blocked
/// receiver thread.
fn wait_for<H: Harness>(h: &H, q: &H::Q) -> Msg {
    h.track();
    let mut buf = [0u8; LEN];
    let r = q.receive_timeout(&mut buf, GUARD)?;
    Ok((buf[..r.len].to_vec(), r.priority))
}

/// Sends one message, waiting (at most `GUARD`): the body of a blocked
/// sender thread.
fn push<H: Harness>(h: &H, q: &H::Q, m: &str, priority: u32) -> Result<(), Error> {
    h.track();
    q.send_timeout(m.as_bytes(), priority, GUARD)
}

fn blocked_receivers_served_in_send_order<H: Harness>(h: &H) {
    let (_, q) = create(h, "recv-fifo", 10);
    std::thread::scope(|s| {
        let r1 = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(1);
        let r2 = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(2);
        let r3 = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(3);
        // Priorities do not reorder direct handoffs.
        for (m, p) in [("m1", 1), ("m2", 9), ("m3", 5)] {
            assert_eq!(q.send(m.as_bytes(), p), Ok(()));
        }
        assert_eq!(r1.join().unwrap(), msg("m1", 1));
        assert_eq!(r2.join().unwrap(), msg("m2", 9));
        assert_eq!(r3.join().unwrap(), msg("m3", 5));
    });
    assert_eq!(current(&q), 0);
}

fn send_to_blocked_receiver_is_never_queued<H: Harness>(h: &H) {
    let (name, q) = create(h, "handoff", 10);
    let other = h
        .ns()
        .open(&name, &OpenOptions::read_write().nonblocking())
        .unwrap();
    std::thread::scope(|s| {
        let rx = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(1);
        assert_eq!(other.send(b"direct", 4), Ok(()));
        // Before the receiver even runs: the message is already its own.
        assert_eq!(current(&q), 0);
        assert_eq!(take(&other), Err(Error::WouldBlock));
        assert_eq!(take(&q), Err(Error::WouldBlock));
        let mut buf = [0u8; LEN];
        assert_eq!(other.receive(&mut buf), Err(Error::WouldBlock));
        assert_eq!(rx.join().unwrap(), msg("direct", 4));
    });
}

fn blocked_senders_served_in_block_order<H: Harness>(h: &H) {
    let (_, q) = create(h, "send-fifo", 1);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    std::thread::scope(|s| {
        let s1 = s.spawn(|| push(h, &q, "s1", 1));
        h.wait_blocked(1);
        let s2 = s.spawn(|| push(h, &q, "s2", 9));
        h.wait_blocked(2);
        let s3 = s.spawn(|| push(h, &q, "s3", 5));
        h.wait_blocked(3);
        for expected in [msg("q0", 0), msg("s1", 1), msg("s2", 9), msg("s3", 5)] {
            assert_eq!(take(&q), expected);
            if expected != msg("s3", 5) {
                // The receive moved the next blocked sender's message in:
                // the queue is full again at once, with no window.
                assert_eq!(current(&q), 1);
                assert_eq!(q.try_send(b"x", 32767), Err(Error::WouldBlock));
            }
        }
        assert_eq!(s1.join().unwrap(), Ok(()));
        assert_eq!(s2.join().unwrap(), Ok(()));
        assert_eq!(s3.join().unwrap(), Ok(()));
    });
    assert_eq!(current(&q), 0);
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

fn queue_stays_full_after_moving_a_sender_in<H: Harness>(h: &H) {
    let (name, q) = create(h, "no-window", 3);
    let nb = h
        .ns()
        .open(&name, &OpenOptions::read_write().nonblocking())
        .unwrap();
    for m in [&b"a"[..], b"b", b"c"] {
        assert_eq!(q.send(m, 1), Ok(()));
    }
    std::thread::scope(|s| {
        let tx = s.spawn(|| push(h, &q, "last", 0));
        h.wait_blocked(1);
        assert_eq!(take(&q), msg("a", 1));
        // Right after the receive, before the sender runs.
        assert_eq!(current(&q), 3);
        assert_eq!(nb.send(b"x", 0), Err(Error::WouldBlock));
        assert_eq!(q.try_send(b"x", 0), Err(Error::WouldBlock));
        assert_eq!(tx.join().unwrap(), Ok(()));
    });
    for expected in [msg("b", 1), msg("c", 1), msg("last", 0)] {
        assert_eq!(take(&q), expected);
    }
}

fn moved_in_message_takes_its_priority_place<H: Harness>(h: &H) {
    let (_, q) = create(h, "moved-in", 2);
    assert_eq!(q.send(b"a", 0), Ok(()));
    assert_eq!(q.send(b"b", 5), Ok(()));
    std::thread::scope(|s| {
        let tx = s.spawn(|| push(h, &q, "c", 9));
        h.wait_blocked(1);
        assert_eq!(take(&q), msg("b", 5));
        assert_eq!(current(&q), 2);
        assert_eq!(tx.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&q), msg("c", 9));
    assert_eq!(take(&q), msg("a", 0));
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

fn set_nonblocking_spares_a_blocked_caller<H: Harness>(h: &H) {
    let (name, q) = create(h, "flag", 4);
    let tx = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    std::thread::scope(|s| {
        let rx = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(1);
        assert_eq!(q.set_nonblocking(true), Ok(false));
        assert!(q.attributes().unwrap().nonblocking);
        // The waiter is not turned into a WouldBlock.
        let mut buf = [0u8; LEN];
        assert_eq!(q.receive(&mut buf), Err(Error::WouldBlock));
        assert_eq!(tx.send(b"still waiting", 2), Ok(()));
        assert_eq!(rx.join().unwrap(), msg("still waiting", 2));
    });
    assert_eq!(current(&q), 0);
}

fn unlink_spares_a_blocked_receiver<H: Harness>(h: &H) {
    let (name, q) = create(h, "unlink", 4);
    let tx = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    std::thread::scope(|s| {
        let rx = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(1);
        assert_eq!(h.ns().unlink(&name), Ok(()));
        assert_eq!(
            h.ns().open(&name, &OpenOptions::read_write()).err(),
            Some(Error::NotFound { name: name.clone() })
        );
        assert_eq!(tx.send(b"after unlink", 3), Ok(()));
        assert_eq!(rx.join().unwrap(), msg("after unlink", 3));
    });
}

fn dropping_a_clone_spares_a_blocked_receiver<H: Harness>(h: &H)
where
    H::Q: Dup,
{
    let (name, q) = create(h, "dup", 4);
    let tx = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    let clone = q.dup().unwrap();
    std::thread::scope(|s| {
        let rx = s.spawn(|| wait_for(h, &q));
        h.wait_blocked(1);
        drop(clone);
        assert_eq!(tx.send(b"one", 1), Ok(()));
        assert_eq!(rx.join().unwrap(), msg("one", 1));
    });
    // The other way round: the receiver waits on the clone and the original
    // is closed, after an unlink, so only the waiter's own handle and the
    // sender's remain.
    let clone = q.dup().unwrap();
    std::thread::scope(|s| {
        let rx = s.spawn(|| wait_for(h, &clone));
        h.wait_blocked(1);
        assert_eq!(h.ns().unlink(&name), Ok(()));
        drop(q);
        assert_eq!(tx.send(b"two", 2), Ok(()));
        assert_eq!(rx.join().unwrap(), msg("two", 2));
    });
}

crate::instantiate!(
    blocked_receivers_served_in_send_order,
    send_to_blocked_receiver_is_never_queued,
    blocked_senders_served_in_block_order,
    queue_stays_full_after_moving_a_sender_in,
    moved_in_message_takes_its_priority_place,
    set_nonblocking_spares_a_blocked_caller,
    unlink_spares_a_blocked_receiver,
    dropping_a_clone_spares_a_blocked_receiver,
);
