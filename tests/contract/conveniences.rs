//! The conveniences built on the core calls: the backend's clock and
//! deadlines built from it, owned receives, the blocking and the draining
//! iterators.

use std::time::{Duration, SystemTime};

use mqtwin::deadline::latest;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

use crate::harness::Harness;

/// Maximum message length of the queues these tests create.
const LEN: usize = 16;
/// The short timeout of the timing tests.
const SHORT: Duration = Duration::from_millis(20);

fn small() -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(4)
        .max_msg_len(LEN)
}

/// On a real clock, the namespace's and the handle's `now` read the wall
/// clock, and `deadline_after` adds to it, saturating.
fn now_and_deadline_after_read_the_backend_clock<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("now"), &small()).unwrap();
    let before = SystemTime::now();
    let (ns_now, q_now) = (h.ns().now(), q.now());
    let ns_deadline = h.ns().deadline_after(Duration::from_secs(60));
    let q_deadline = q.deadline_after(Duration::from_secs(60));
    let after = SystemTime::now();
    for t in [ns_now, q_now] {
        assert!(
            before <= t && t <= after,
            "{t:?} not in [{before:?}, {after:?}]"
        );
    }
    for d in [ns_deadline, q_deadline] {
        let from = before + Duration::from_secs(60);
        let to = after + Duration::from_secs(60);
        assert!(from <= d && d <= to, "{d:?} not in [{from:?}, {to:?}]");
    }
    assert_eq!(h.ns().deadline_after(Duration::MAX), latest());
    assert_eq!(q.deadline_after(Duration::MAX), latest());
}

/// A deadline from `deadline_after` is honoured like any other.
fn a_deadline_after_times_out<H: Harness>(h: &H) {
    let q = h.ns().open(&h.name("after"), &small()).unwrap();
    let mut buf = [0u8; LEN];
    let d = h.ns().deadline_after(SHORT);
    assert_eq!(q.receive_deadline(&mut buf, Some(d)), Err(Error::TimedOut));
    assert!(SystemTime::now() >= d);
}

/// `receive_vec` and friends return the message's own bytes and priority,
/// with the same errors as the buffer calls.
fn receive_vec_returns_the_message_and_its_priority<H: Harness>(h: &H) {
    let name = h.name("vec");
    let q = h.ns().open(&name, &small()).unwrap();
    assert_eq!(q.send(b"low", 1), Ok(()));
    assert_eq!(q.send(b"", 7), Ok(()));
    assert_eq!(q.send(&[9u8; LEN], 3), Ok(()));
    assert_eq!(q.receive_vec(), Ok((Vec::new(), 7)));
    assert_eq!(q.try_receive_vec(), Ok((vec![9u8; LEN], 3)));
    assert_eq!(q.receive_vec_timeout(SHORT), Ok((b"low".to_vec(), 1)));
    assert_eq!(q.try_receive_vec(), Err(Error::WouldBlock));
    assert_eq!(q.receive_vec_timeout(SHORT), Err(Error::TimedOut));
    let deadline = Some(SystemTime::UNIX_EPOCH - Duration::from_secs(1));
    assert_eq!(
        q.receive_vec_deadline(deadline),
        Err(Error::InvalidDeadline)
    );
    let w = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    assert_eq!(w.try_receive_vec(), Err(Error::NotReadable));
    let nb = h
        .ns()
        .open(&name, &OpenOptions::read_only().nonblocking())
        .unwrap();
    assert_eq!(nb.receive_vec(), Err(Error::WouldBlock));
}

/// `try_iter` drains in receive order and ends at the empty queue; a later
/// send is picked up by a new iterator; a handle that cannot read yields
/// its error once.
fn try_iter_drains_until_the_queue_is_empty<H: Harness>(h: &H) {
    let name = h.name("drain");
    let q = h.ns().open(&name, &small()).unwrap();
    for (m, p) in [(&b"a"[..], 1), (b"b", 5), (b"c", 1), (b"d", 0)] {
        assert_eq!(q.send(m, p), Ok(()));
    }
    let got: Result<Vec<_>, _> = q.try_iter().collect();
    let want = [("b", 5), ("a", 1), ("c", 1), ("d", 0)]
        .map(|(m, p)| (m.as_bytes().to_vec(), p))
        .to_vec();
    assert_eq!(got, Ok(want));
    assert_eq!(q.attributes().map(|a| a.current_messages), Ok(0));
    assert_eq!(q.try_iter().next(), None);
    assert_eq!(q.send(b"late", 2), Ok(()));
    let mut it = q.try_iter();
    assert_eq!(it.next(), Some(Ok((b"late".to_vec(), 2))));
    assert_eq!(it.next(), None);
    assert_eq!(q.send(b"after the end", 2), Ok(()));
    assert_eq!(it.next(), None, "the iterator is fused");
    assert_eq!(q.try_receive_vec(), Ok((b"after the end".to_vec(), 2)));
    let w = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    let mut it = w.try_iter();
    assert_eq!(it.next(), Some(Err(Error::NotReadable)));
    assert_eq!(it.next(), None);
    // Through a trait object, boxed or borrowed.
    assert_eq!(q.send(b"dyn", 4), Ok(()));
    let boxed: Box<dyn MessageQueue> = Box::new(q);
    assert_eq!(
        mqtwin::TryIter::new(&*boxed).collect::<Vec<_>>(),
        vec![Ok((b"dyn".to_vec(), 4))]
    );
    assert_eq!(boxed.send(b"box", 6), Ok(()));
    assert_eq!(
        boxed.try_iter().collect::<Vec<_>>(),
        vec![Ok((b"box".to_vec(), 6))]
    );
}

/// `iter` waits for each message, in priority order, yields an error once
/// and ends; on a non-blocking handle an empty queue ends it.
fn iter_waits_for_each_message<H: Harness>(h: &H) {
    let name = h.name("iter");
    let q = h.ns().open(&name, &small()).unwrap();
    for (m, p) in [(&b"a"[..], 1), (b"b", 5)] {
        assert_eq!(q.send(m, p), Ok(()));
    }
    let tx = h.dup(&q);
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            h.track();
            q.iter().take(3).collect::<Result<Vec<_>, _>>()
        });
        // The first two are there; the third arrives once the reader waits.
        h.wait_blocked(1);
        assert_eq!(tx.send(b"late", 0), Ok(()));
        let want = [("b", 5), ("a", 1), ("late", 0)]
            .map(|(m, p)| (m.as_bytes().to_vec(), p))
            .to_vec();
        assert_eq!(rx.join().unwrap(), Ok(want));
    });
    // A non-blocking handle: drains, then ends without an error.
    let nb = h
        .ns()
        .open(&name, &OpenOptions::read_only().nonblocking())
        .unwrap();
    assert_eq!(q.send(b"x", 2), Ok(()));
    let mut it = nb.iter();
    assert_eq!(it.next(), Some(Ok((b"x".to_vec(), 2))));
    assert_eq!(it.next(), None);
    assert_eq!(q.send(b"after the end", 2), Ok(()));
    assert_eq!(it.next(), None, "the iterator is fused");
    // An error is yielded once, then it ends.
    let w = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    let mut it = w.iter();
    assert_eq!(it.next(), Some(Err(Error::NotReadable)));
    assert_eq!(it.next(), None);
    // Through a trait object.
    let boxed: Box<dyn MessageQueue> = Box::new(nb);
    assert_eq!(
        mqtwin::Iter::new(&*boxed).collect::<Vec<_>>(),
        vec![Ok((b"after the end".to_vec(), 2))]
    );
}

crate::instantiate!(
    iter_waits_for_each_message,
    now_and_deadline_after_read_the_backend_clock,
    a_deadline_after_times_out,
    receive_vec_returns_the_message_and_its_priority,
    try_iter_drains_until_the_queue_is_empty,
);
