//! The conveniences built on the core calls: the backend's clock and
//! deadlines built from it.

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

crate::instantiate!(
    now_and_deadline_after_read_the_backend_clock,
    a_deadline_after_times_out,
);
