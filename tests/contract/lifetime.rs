//! When a queue and its name come and go (semantics.md §4, §5): unlink
//! removes the name at once but not the queue, a queue outlives its last
//! close unless unlinked, and an unlinked queue is destroyed at its last
//! close.

use mqtwin::{Attributes, Error, Limits, MessageQueue, Namespace, OpenOptions, Received};

use crate::harness::{fresh_uid, Child, Harness};

type Outcome = Result<(), Error>;

fn sized(capacity: usize, max_msg_len: usize) -> OpenOptions {
    OpenOptions::read_write()
        .create_new()
        .capacity(capacity)
        .max_msg_len(max_msg_len)
}

/// Receives one message without waiting, as `(text, priority)`.
fn take<Q: MessageQueue>(q: &Q) -> Result<(String, u32), Error> {
    let mut buf = vec![0u8; q.attributes()?.max_msg_len];
    let Received { len, priority } = q.try_receive(&mut buf)?;
    Ok((String::from_utf8_lossy(&buf[..len]).into_owned(), priority))
}

fn unlink_removes_the_name_at_once<H: Harness>(h: &H) {
    let name = h.name("gone");
    let _q = h.ns().open(&name, &sized(2, 16)).unwrap();
    assert_eq!(h.ns().unlink(&name), Ok(()));
    let not_found = Err(Error::NotFound { name: name.clone() });
    assert_eq!(
        h.ns().open(&name, &OpenOptions::read_write()).map(drop),
        not_found
    );
    assert_eq!(
        h.ns().open(&name, &OpenOptions::read_only()).map(drop),
        not_found
    );
}

fn handles_keep_working_after_unlink<H: Harness>(h: &H) {
    let name = h.name("orphan");
    let tx = h.ns().open(&name, &sized(2, 16)).unwrap();
    let rx = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    tx.send(b"before", 1).unwrap();
    assert_eq!(h.ns().unlink(&name), Ok(()));
    assert_eq!(tx.send(b"after", 2), Ok(()));
    assert_eq!(
        rx.attributes(),
        Ok(Attributes {
            capacity: 2,
            max_msg_len: 16,
            current_messages: 2,
            nonblocking: false,
        })
    );
    assert_eq!(take(&rx), Ok(("after".into(), 2)));
    assert_eq!(take(&rx), Ok(("before".into(), 1)));
    assert_eq!(take(&rx), Err(Error::WouldBlock));
}

fn an_unlinked_name_can_be_recreated_as_an_independent_queue<H: Harness>(h: &H) {
    let name = h.name("reborn");
    let old = h.ns().open(&name, &sized(2, 16)).unwrap();
    old.send(b"old", 5).unwrap();
    assert_eq!(h.ns().unlink(&name), Ok(()));

    let new = h.ns().open(&name, &sized(4, 32)).unwrap();
    assert_eq!(
        new.attributes(),
        Ok(Attributes {
            capacity: 4,
            max_msg_len: 32,
            current_messages: 0,
            nonblocking: false,
        })
    );
    new.send(b"new", 7).unwrap();
    // Each message is reachable only through handles of its own queue, and
    // opening the name now reaches the new queue.
    let by_name = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    assert_eq!(take(&by_name), Ok(("new".into(), 7)));
    assert_eq!(take(&new), Err(Error::WouldBlock));
    assert_eq!(take(&old), Ok(("old".into(), 5)));
    assert_eq!(take(&old), Err(Error::WouldBlock));
}

fn a_queue_outlives_its_last_close_until_unlinked<H: Harness>(h: &H) {
    let name = h.name("persist");
    {
        let q = h.ns().open(&name, &sized(2, 16)).unwrap();
        q.send(b"kept", 11).unwrap();
    }
    let q = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    assert_eq!(q.attributes().map(|a| a.current_messages), Ok(1));
    assert_eq!(take(&q), Ok(("kept".into(), 11)));
}

fn a_second_unlink_is_not_found<H: Harness>(h: &H) {
    let name = h.name("twice");
    let _q = h.ns().open(&name, &sized(1, 16)).unwrap();
    assert_eq!(h.ns().unlink(&name), Ok(()));
    assert_eq!(
        h.ns().unlink(&name),
        Err(Error::NotFound { name: name.clone() })
    );
}

fn an_unlinked_queue_is_destroyed_at_its_last_close<H: Harness>(h: &H) {
    // With room for one queue, creating another shows whether the first
    // still exists.
    let id = fresh_uid();
    let spec = Child {
        user: Some((id, id)),
        limits: Some(Limits {
            queues_max: 1,
            ..Limits::default()
        }),
        ..Child::default()
    };
    let (a, b) = (H::child_name("a"), H::child_name("b"));
    let out = h.in_child(&spec, |ns| {
        let first = ns.open(&a, &sized(1, 16));
        let second = ns.open(&a, &OpenOptions::read_only());
        let unlinked = ns.unlink(&a);
        let both_open = ns.open(&b, &sized(1, 16)).map(drop);
        drop(first);
        let one_open = ns.open(&b, &sized(1, 16)).map(drop);
        drop(second);
        let none_open = ns.open(&b, &sized(1, 16)).map(drop);
        let _ = ns.unlink(&b);
        format!("{:?}", (unlinked, both_open, one_open, none_open))
    });
    let expected: (Outcome, Outcome, Outcome, Outcome) = (
        Ok(()),
        Err(Error::TooManyQueues),
        Err(Error::TooManyQueues),
        Ok(()),
    );
    assert_eq!(out, format!("{expected:?}"));
}

crate::instantiate!(
    unlink_removes_the_name_at_once,
    handles_keep_working_after_unlink,
    an_unlinked_name_can_be_recreated_as_an_independent_queue,
    a_queue_outlives_its_last_close_until_unlinked,
    a_second_unlink_is_not_found,
    an_unlinked_queue_is_destroyed_at_its_last_close,
);
