//! Send and receive argument checks and the order in which they win
//! (semantics reference §6, §7), the non-blocking rules, and what
//! `attributes()` reports (§10).

use std::time::Duration;

use mqtwin::{Attributes, Error, MessageQueue, Namespace, OpenOptions, Received};

use crate::harness::Harness;

/// Capacity of the queues these tests create.
const CAP: usize = 2;
/// Maximum message length of the queues these tests create.
const LEN: usize = 16;
/// Bound for calls that must return at once on a blocking handle: a broken
/// backend then fails with `TimedOut` instead of hanging.
const GUARD: Duration = Duration::from_secs(5);

fn create<H: Harness>(h: &H, tag: &str) -> (String, H::Q) {
    let name = h.name(tag);
    let q = h
        .ns()
        .open(
            &name,
            &OpenOptions::read_write()
                .create_new()
                .capacity(CAP)
                .max_msg_len(LEN),
        )
        .unwrap();
    (name, q)
}

fn reopen<H: Harness>(h: &H, name: &str, opts: OpenOptions) -> H::Q {
    h.ns().open(name, &opts).unwrap()
}

fn fill<Q: MessageQueue>(q: &Q) {
    for i in 0..CAP {
        assert_eq!(q.send(&[b'f', b'0' + i as u8], 1), Ok(()));
    }
}

fn current<Q: MessageQueue>(q: &Q) -> usize {
    q.attributes().unwrap().current_messages
}

fn invalid(priority: u32) -> Error {
    Error::InvalidPriority { priority }
}

fn too_long(len: usize) -> Error {
    Error::MessageTooLong { len, limit: LEN }
}

fn too_small(len: usize) -> Error {
    Error::BufferTooSmall { len, msg_size: LEN }
}

fn priority_range<H: Harness>(h: &H) {
    let (_, q) = create(h, "prio");
    assert_eq!(q.send(b"top", 32767), Ok(()));
    assert_eq!(q.send(b"x", 32768), Err(invalid(32768)));
    assert_eq!(q.send(b"x", u32::MAX), Err(invalid(u32::MAX)));
    assert_eq!(q.try_send(b"x", 32768), Err(invalid(32768)));
    assert_eq!(q.send_timeout(b"x", 40000, GUARD), Err(invalid(40000)));
    assert_eq!(current(&q), 1, "rejected sends queue nothing");
    let mut buf = [0u8; LEN];
    assert_eq!(
        q.receive(&mut buf),
        Ok(Received {
            len: 3,
            priority: 32767
        })
    );
    assert_eq!(&buf[..3], b"top");
}

fn invalid_priority_beats_not_writable<H: Harness>(h: &H) {
    let (name, _q) = create(h, "prio-ro");
    let ro = reopen(h, &name, OpenOptions::read_only());
    assert_eq!(ro.send(b"x", 32768), Err(invalid(32768)));
    assert_eq!(ro.send(b"x", u32::MAX), Err(invalid(u32::MAX)));
    assert_eq!(ro.try_send(b"x", 32768), Err(invalid(32768)));
    // With every other error at once: read-only, too long.
    assert_eq!(ro.send(&[0; LEN + 1], 32768), Err(invalid(32768)));
    assert_eq!(ro.send(b"x", 32767), Err(Error::NotWritable));
}

fn invalid_priority_beats_message_too_long<H: Harness>(h: &H) {
    let (_, q) = create(h, "prio-long");
    assert_eq!(q.send(&[0; LEN + 1], 32768), Err(invalid(32768)));
    assert_eq!(q.send(&[0; 10_000], u32::MAX), Err(invalid(u32::MAX)));
    assert_eq!(q.send(&[0; LEN + 1], 32767), Err(too_long(LEN + 1)));
    assert_eq!(current(&q), 0);
}

fn invalid_priority_beats_would_block<H: Harness>(h: &H) {
    let (name, q) = create(h, "prio-full");
    fill(&q);
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    assert_eq!(nb.send(b"x", 32768), Err(invalid(32768)));
    assert_eq!(q.try_send(b"x", 32768), Err(invalid(32768)));
    // A full blocking queue rejects the priority without waiting.
    assert_eq!(q.send_timeout(b"x", 32768, GUARD), Err(invalid(32768)));
    // Full, non-blocking and too long at once.
    assert_eq!(nb.send(&[0; LEN + 1], 32768), Err(invalid(32768)));
    assert_eq!(nb.send(b"x", 0), Err(Error::WouldBlock));
    assert_eq!(current(&q), CAP);
}

fn not_writable_beats_message_too_long_and_would_block<H: Harness>(h: &H) {
    let (name, q) = create(h, "ro-long");
    let ro = reopen(h, &name, OpenOptions::read_only());
    assert_eq!(ro.send(&[0; LEN + 1], 0), Err(Error::NotWritable));
    assert_eq!(ro.send(&[0; LEN], 0), Err(Error::NotWritable));
    assert_eq!(ro.send(b"", 0), Err(Error::NotWritable));
    fill(&q);
    let ro_nb = reopen(h, &name, OpenOptions::read_only().nonblocking());
    assert_eq!(ro_nb.send(b"x", 0), Err(Error::NotWritable));
    assert_eq!(ro.try_send(b"x", 0), Err(Error::NotWritable));
    assert_eq!(ro.send_timeout(b"x", 0, GUARD), Err(Error::NotWritable));
    assert_eq!(current(&q), CAP);
}

fn message_too_long_beats_full_queue<H: Harness>(h: &H) {
    let (name, q) = create(h, "long-full");
    fill(&q);
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    assert_eq!(nb.send(&[0; LEN + 1], 0), Err(too_long(LEN + 1)));
    assert_eq!(q.try_send(&[0; LEN + 1], 0), Err(too_long(LEN + 1)));
    // A full blocking queue returns at once instead of waiting.
    assert_eq!(
        q.send_timeout(&[0; LEN + 1], 0, GUARD),
        Err(too_long(LEN + 1))
    );
    assert_eq!(current(&q), CAP);
}

fn message_length_limit<H: Harness>(h: &H) {
    let (_, q) = create(h, "len");
    assert_eq!(q.send(&[7; LEN + 1], 0), Err(too_long(LEN + 1)));
    assert_eq!(q.send(&[7; 100_000], 0), Err(too_long(100_000)));
    assert_eq!(q.send(&[7; LEN], 2), Ok(()));
    assert_eq!(q.send(b"", 1), Ok(()));
    assert_eq!(current(&q), 2);
    let mut buf = [0u8; LEN];
    assert_eq!(
        q.receive(&mut buf),
        Ok(Received {
            len: LEN,
            priority: 2
        })
    );
    assert_eq!(buf, [7; LEN]);
    assert_eq!(
        q.receive(&mut buf),
        Ok(Received {
            len: 0,
            priority: 1
        })
    );
}

fn buffer_must_hold_max_msg_len<H: Harness>(h: &H) {
    let (name, q) = create(h, "buf");
    assert_eq!(q.send(b"a", 3), Ok(()));
    // The next message has 1 byte, but the buffer is compared with the
    // queue's message size.
    assert_eq!(q.receive(&mut [0; LEN - 1]), Err(too_small(LEN - 1)));
    assert_eq!(q.receive(&mut [0; 1]), Err(too_small(1)));
    assert_eq!(q.receive(&mut []), Err(too_small(0)));
    assert_eq!(q.try_receive(&mut [0; LEN - 1]), Err(too_small(LEN - 1)));
    let nb = reopen(h, &name, OpenOptions::read_only().nonblocking());
    assert_eq!(nb.receive(&mut [0; 4]), Err(too_small(4)));
    assert_eq!(current(&q), 1, "nothing was dequeued");
    let mut buf = [0u8; LEN];
    assert_eq!(
        q.receive(&mut buf),
        Ok(Received {
            len: 1,
            priority: 3
        })
    );
    assert_eq!(buf[0], b'a');
}

fn buffer_checked_before_queue_state<H: Harness>(h: &H) {
    let (name, q) = create(h, "buf-empty");
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    // Empty non-blocking queue: the size error, not WouldBlock.
    assert_eq!(nb.receive(&mut [0; LEN - 1]), Err(too_small(LEN - 1)));
    assert_eq!(q.try_receive(&mut [0; LEN - 1]), Err(too_small(LEN - 1)));
    // Empty blocking queue: returns at once (a timeout here would mean it waited).
    assert_eq!(
        q.receive_timeout(&mut [0; LEN - 1], GUARD),
        Err(too_small(LEN - 1))
    );
    assert_eq!(nb.receive(&mut [0; LEN]), Err(Error::WouldBlock));
}

fn not_readable_beats_buffer_too_small<H: Harness>(h: &H) {
    let (name, q) = create(h, "wo-buf");
    let wo = reopen(h, &name, OpenOptions::write_only());
    let wo_nb = reopen(h, &name, OpenOptions::write_only().nonblocking());
    // Empty queue: NotReadable beats BufferTooSmall and WouldBlock.
    assert_eq!(wo.receive(&mut [0; LEN - 1]), Err(Error::NotReadable));
    assert_eq!(wo_nb.receive(&mut [0; LEN]), Err(Error::NotReadable));
    assert_eq!(wo.try_receive(&mut [0; LEN]), Err(Error::NotReadable));
    assert_eq!(
        wo.receive_timeout(&mut [0; LEN], GUARD),
        Err(Error::NotReadable)
    );
    // A waiting message does not change that, and is not consumed.
    assert_eq!(wo.send(b"m", 0), Ok(()));
    assert_eq!(wo.receive(&mut [0; 1]), Err(Error::NotReadable));
    assert_eq!(wo.receive(&mut [0; LEN]), Err(Error::NotReadable));
    assert_eq!(current(&q), 1);
}

fn bigger_buffer_is_fine<H: Harness>(h: &H) {
    let (_, q) = create(h, "big-buf");
    assert_eq!(q.send(b"hello", 4), Ok(()));
    let mut buf = [0xAAu8; 3 * LEN];
    assert_eq!(
        q.receive(&mut buf),
        Ok(Received {
            len: 5,
            priority: 4
        })
    );
    assert_eq!(&buf[..5], b"hello");
    assert!(buf[5..].iter().all(|&b| b == 0xAA), "rest untouched");
}

fn try_calls_never_wait<H: Harness>(h: &H) {
    let (name, q) = create(h, "try");
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    let mut buf = [0u8; LEN];
    for handle in [&q, &nb] {
        assert_eq!(handle.try_receive(&mut buf), Err(Error::WouldBlock));
    }
    fill(&q);
    for handle in [&q, &nb] {
        assert_eq!(handle.try_send(b"x", 0), Err(Error::WouldBlock));
        assert_eq!(handle.try_send(b"x", 32767), Err(Error::WouldBlock));
    }
    assert_eq!(current(&q), CAP);
    // With room or a message they succeed, whatever the mode.
    assert_eq!(
        q.try_receive(&mut buf),
        Ok(Received {
            len: 2,
            priority: 1
        })
    );
    assert_eq!(nb.try_send(b"y", 5), Ok(()));
    assert_eq!(
        nb.try_receive(&mut buf),
        Ok(Received {
            len: 1,
            priority: 5
        })
    );
}

fn nonblocking_handle_full_and_empty<H: Harness>(h: &H) {
    let (name, q) = create(h, "nb");
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    let mut buf = [0u8; LEN];
    assert_eq!(nb.receive(&mut buf), Err(Error::WouldBlock));
    fill(&nb);
    assert_eq!(nb.send(b"x", 0), Err(Error::WouldBlock));
    assert_eq!(current(&q), CAP);
    // Switching the blocking handle gives it the same answers.
    assert_eq!(q.set_nonblocking(true), Ok(false));
    assert!(q.attributes().unwrap().nonblocking);
    assert_eq!(q.send(b"x", 0), Err(Error::WouldBlock));
    assert_eq!(q.receive(&mut buf).map(|r| r.len), Ok(2));
    assert_eq!(q.receive(&mut buf).map(|r| r.len), Ok(2));
    assert_eq!(q.receive(&mut buf), Err(Error::WouldBlock));
    // Switching back: a receive on the empty queue now waits (and times out).
    assert_eq!(nb.set_nonblocking(false), Ok(true));
    assert!(!nb.attributes().unwrap().nonblocking);
    assert_eq!(
        nb.receive_timeout(&mut buf, Duration::from_millis(1)),
        Err(Error::TimedOut)
    );
}

fn attributes_on_any_access<H: Harness>(h: &H) {
    let (name, q) = create(h, "attrs");
    assert_eq!(q.send(b"x", 0), Ok(()));
    let expected = |nonblocking| Attributes {
        capacity: CAP,
        max_msg_len: LEN,
        current_messages: 1,
        nonblocking,
    };
    for (opts, nonblocking) in [
        (OpenOptions::write_only(), false),
        (OpenOptions::read_only(), false),
        (OpenOptions::write_only().nonblocking(), true),
        (OpenOptions::read_only().nonblocking(), true),
    ] {
        let handle = reopen(h, &name, opts.clone());
        assert_eq!(handle.attributes(), Ok(expected(nonblocking)), "{opts:?}");
    }
    assert_eq!(q.attributes(), Ok(expected(false)));
}

fn current_messages_counts<H: Harness>(h: &H) {
    let name = h.name("count");
    let q = h
        .ns()
        .open(
            &name,
            &OpenOptions::read_write()
                .create_new()
                .capacity(5)
                .max_msg_len(LEN),
        )
        .unwrap();
    let other = reopen(h, &name, OpenOptions::read_only());
    assert_eq!(current(&q), 0);
    for (n, p) in [(1, 0), (2, 9), (3, 0)] {
        assert_eq!(q.send(b"m", p), Ok(()));
        assert_eq!((current(&q), current(&other)), (n, n));
    }
    let mut buf = [0u8; LEN];
    for n in [2, 1, 0] {
        assert!(other.receive(&mut buf).is_ok());
        assert_eq!((current(&q), current(&other)), (n, n));
    }
    // Failed calls change nothing.
    assert_eq!(other.try_receive(&mut buf), Err(Error::WouldBlock));
    assert_eq!(q.send(&[0; LEN + 1], 0), Err(too_long(LEN + 1)));
    assert_eq!(current(&q), 0);
}

crate::instantiate!(
    priority_range,
    invalid_priority_beats_not_writable,
    invalid_priority_beats_message_too_long,
    invalid_priority_beats_would_block,
    not_writable_beats_message_too_long_and_would_block,
    message_too_long_beats_full_queue,
    message_length_limit,
    buffer_must_hold_max_msg_len,
    buffer_checked_before_queue_state,
    not_readable_beats_buffer_too_small,
    bigger_buffer_is_fine,
    try_calls_never_wait,
    nonblocking_handle_full_and_empty,
    attributes_on_any_access,
    current_messages_counts,
);
