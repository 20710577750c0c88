//! Readiness (`poll` on the descriptor, semantics reference §9): readable iff
//! a message is queued, writable iff below capacity, whatever the access mode.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mqtwin::{Error, Interest, MessageQueue, Namespace, OpenOptions, Readiness};

use crate::harness::Harness;

fn r(readable: bool, writable: bool) -> Readiness {
    Readiness { readable, writable }
}

fn readiness_follows_the_message_count<H: Harness>(h: &H) {
    let name = h.name("ready");
    let q = h
        .ns()
        .open(
            &name,
            &OpenOptions::read_write()
                .create_new()
                .capacity(2)
                .max_msg_len(16),
        )
        .unwrap();
    let wo = h.ns().open(&name, &OpenOptions::write_only()).unwrap();
    let ro = h.ns().open(&name, &OpenOptions::read_only()).unwrap();
    for handle in [&q, &wo, &ro] {
        assert_eq!(handle.readiness(), Ok(r(false, true)), "empty");
    }
    q.send(b"a", 0).unwrap();
    for handle in [&q, &wo, &ro] {
        assert_eq!(handle.readiness(), Ok(r(true, true)), "partial");
    }
    q.send(b"b", 0).unwrap();
    for handle in [&q, &wo, &ro] {
        assert_eq!(handle.readiness(), Ok(r(true, false)), "full");
    }
}

fn wait_ready_returns_at_once_when_ready<H: Harness>(h: &H) {
    let q = h
        .ns()
        .open(
            &h.name("now"),
            &OpenOptions::read_write()
                .create_new()
                .capacity(1)
                .max_msg_len(16),
        )
        .unwrap();
    let soon = Some(SystemTime::now() + Duration::from_secs(5));
    assert_eq!(q.wait_ready(Interest::Writable, soon), Ok(r(false, true)));
    assert_eq!(q.wait_ready(Interest::Either, soon), Ok(r(false, true)));
    q.send(b"x", 0).unwrap();
    assert_eq!(q.wait_ready(Interest::Readable, soon), Ok(r(true, false)));
    assert_eq!(q.wait_ready(Interest::Either, None), Ok(r(true, false)));
}

fn wait_ready_times_out<H: Harness>(h: &H) {
    let q = h
        .ns()
        .open(
            &h.name("wait"),
            &OpenOptions::read_write()
                .create_new()
                .capacity(1)
                .max_msg_len(16),
        )
        .unwrap();
    let start = std::time::Instant::now();
    let deadline = Some(SystemTime::now() + Duration::from_millis(30));
    assert_eq!(
        q.wait_ready(Interest::Readable, deadline),
        Err(Error::TimedOut)
    );
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert_eq!(
        q.wait_ready(Interest::Readable, Some(UNIX_EPOCH)),
        Err(Error::TimedOut)
    );
    assert_eq!(
        q.wait_ready(
            Interest::Readable,
            Some(UNIX_EPOCH - Duration::from_secs(1))
        ),
        Err(Error::InvalidDeadline)
    );
}

fn wait_ready_wakes_on_a_send<H: Harness>(h: &H) {
    let q = h
        .ns()
        .open(
            &h.name("wake"),
            &OpenOptions::read_write()
                .create_new()
                .capacity(1)
                .max_msg_len(16),
        )
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            q.wait_ready(
                Interest::Readable,
                Some(SystemTime::now() + Duration::from_secs(10)),
            )
        });
        std::thread::sleep(Duration::from_millis(20));
        q.send(b"x", 0).unwrap();
        assert_eq!(waiter.join().unwrap(), Ok(r(true, false)));
    });
}

crate::instantiate!(
    readiness_follows_the_message_count,
    wait_ready_returns_at_once_when_ready,
    wait_ready_times_out,
    wait_ready_wakes_on_a_send,
);
