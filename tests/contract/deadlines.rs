//! Deadlines: which are valid, which check wins, and when a deadline turns
//! into `TimedOut` (semantics reference §6 step 1, §7 step 1, §9 "Timeout").

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, Received};

use crate::harness::Harness;

/// Capacity of the queues these tests create.
const CAP: usize = 2;
/// Maximum message length of the queues these tests create.
const LEN: usize = 16;
/// Bound for waits that a correct backend ends much sooner: a broken one
/// then fails instead of hanging.
const GUARD: Duration = Duration::from_secs(10);
/// The short timeout of the timing tests.
const SHORT: Duration = Duration::from_millis(50);
/// The timeout of a waiter that must give up while another keeps waiting;
/// long enough for the test to queue the second waiter behind it.
const GIVE_UP: Duration = Duration::from_millis(500);

/// Deadlines before the Unix epoch, which the kernel rejects (`tv_sec < 0`).
fn pre_epoch() -> [SystemTime; 3] {
    [
        UNIX_EPOCH - Duration::from_secs(1),
        UNIX_EPOCH - Duration::from_nanos(1),
        UNIX_EPOCH - Duration::new(1_000_000_000, 500_000_000),
    ]
}

/// Valid deadlines that have passed.
fn past() -> [SystemTime; 3] {
    [
        UNIX_EPOCH,
        UNIX_EPOCH + Duration::from_secs(1),
        SystemTime::now() - Duration::from_secs(1),
    ]
}

/// The latest deadline a kernel `timespec` can hold: `{LONG_MAX, 999999999}`.
fn far_future() -> SystemTime {
    UNIX_EPOCH + Duration::new(i64::MAX as u64, 999_999_999)
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

fn reopen<H: Harness>(h: &H, name: &str, opts: OpenOptions) -> H::Q {
    h.ns().open(name, &opts).unwrap()
}

fn current<Q: MessageQueue>(q: &Q) -> usize {
    q.attributes().unwrap().current_messages
}

/// Takes one message without waiting, as `(bytes, priority)`.
fn take<Q: MessageQueue>(q: &Q) -> Result<(Vec<u8>, u32), Error> {
    let mut buf = [0u8; LEN];
    let r = q.try_receive(&mut buf)?;
    Ok((buf[..r.len].to_vec(), r.priority))
}

fn msg(m: &str, priority: u32) -> Result<(Vec<u8>, u32), Error> {
    Ok((m.as_bytes().to_vec(), priority))
}

/// Whole-`SystemTime` elapsed since `start` (the clock deadlines use).
fn wall_elapsed(start: SystemTime) -> Duration {
    SystemTime::now().duration_since(start).unwrap_or_default()
}

fn pre_epoch_send_rejected_with_room<H: Harness>(h: &H) {
    let (_, q) = create(h, "pre-send", CAP);
    for d in pre_epoch() {
        assert_eq!(
            q.send_deadline(b"x", 0, Some(d)),
            Err(Error::InvalidDeadline),
            "{d:?}"
        );
    }
    assert_eq!(current(&q), 0, "nothing was queued");
}

fn pre_epoch_receive_rejected_with_message<H: Harness>(h: &H) {
    let (_, q) = create(h, "pre-recv", CAP);
    assert_eq!(q.send(b"kept", 3), Ok(()));
    let mut buf = [0u8; LEN];
    for d in pre_epoch() {
        assert_eq!(
            q.receive_deadline(&mut buf, Some(d)),
            Err(Error::InvalidDeadline),
            "{d:?}"
        );
    }
    assert_eq!(current(&q), 1, "nothing was consumed");
    assert_eq!(take(&q), msg("kept", 3));
}

fn pre_epoch_beats_every_send_error<H: Harness>(h: &H) {
    let (name, q) = create(h, "pre-send-order", CAP);
    let ro = reopen(h, &name, OpenOptions::read_only());
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    for d in pre_epoch() {
        let d = Some(d);
        assert_eq!(q.send_deadline(b"x", 32768, d), Err(Error::InvalidDeadline));
        assert_eq!(ro.send_deadline(b"x", 0, d), Err(Error::InvalidDeadline));
        assert_eq!(
            q.send_deadline(&[0; LEN + 1], 0, d),
            Err(Error::InvalidDeadline)
        );
        assert_eq!(
            ro.send_deadline(&[0; LEN + 1], u32::MAX, d),
            Err(Error::InvalidDeadline)
        );
    }
    for i in 0..CAP {
        assert_eq!(q.send(&[i as u8], 0), Ok(()));
    }
    for d in pre_epoch() {
        let d = Some(d);
        // Full: neither WouldBlock (non-blocking) nor a wait (blocking).
        assert_eq!(nb.send_deadline(b"x", 0, d), Err(Error::InvalidDeadline));
        assert_eq!(q.send_deadline(b"x", 0, d), Err(Error::InvalidDeadline));
        assert_eq!(
            nb.send_deadline(&[0; LEN + 1], 32768, d),
            Err(Error::InvalidDeadline)
        );
    }
    assert_eq!(current(&q), CAP);
}

fn pre_epoch_beats_every_receive_error<H: Harness>(h: &H) {
    let (name, q) = create(h, "pre-recv-order", CAP);
    let wo = reopen(h, &name, OpenOptions::write_only());
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    let mut big = [0u8; LEN];
    let mut small = [0u8; LEN - 1];
    for d in pre_epoch() {
        let d = Some(d);
        // Empty: neither WouldBlock (non-blocking) nor a wait (blocking).
        assert_eq!(
            nb.receive_deadline(&mut big, d),
            Err(Error::InvalidDeadline)
        );
        assert_eq!(q.receive_deadline(&mut big, d), Err(Error::InvalidDeadline));
        assert_eq!(
            q.receive_deadline(&mut small, d),
            Err(Error::InvalidDeadline)
        );
        assert_eq!(
            wo.receive_deadline(&mut big, d),
            Err(Error::InvalidDeadline)
        );
        assert_eq!(
            wo.receive_deadline(&mut small, d),
            Err(Error::InvalidDeadline)
        );
    }
    assert_eq!(q.send(b"m", 0), Ok(()));
    for d in pre_epoch() {
        let d = Some(d);
        assert_eq!(
            nb.receive_deadline(&mut small, d),
            Err(Error::InvalidDeadline)
        );
        assert_eq!(
            wo.receive_deadline(&mut big, d),
            Err(Error::InvalidDeadline)
        );
    }
    assert_eq!(current(&q), 1);
}

fn epoch_and_far_future_are_valid<H: Harness>(h: &H) {
    let (_, q) = create(h, "valid", CAP);
    let mut buf = [0u8; LEN];
    for d in [UNIX_EPOCH, far_future()] {
        assert_eq!(q.send_deadline(b"d", 4, Some(d)), Ok(()), "{d:?}");
        assert_eq!(
            q.receive_deadline(&mut buf, Some(d)),
            Ok(Received {
                len: 1,
                priority: 4
            }),
            "{d:?}"
        );
    }
    assert_eq!(
        q.receive_deadline(&mut buf, Some(UNIX_EPOCH)),
        Err(Error::TimedOut)
    );
}

fn past_deadline_times_out_only_when_blocking<H: Harness>(h: &H) {
    let (_, q) = create(h, "past", 1);
    let mut buf = [0u8; LEN];
    for d in past() {
        let d = Some(d);
        assert_eq!(q.receive_deadline(&mut buf, d), Err(Error::TimedOut));
        assert_eq!(q.send_deadline(b"a", 2, d), Ok(()));
        assert_eq!(q.send_deadline(b"b", 9, d), Err(Error::TimedOut));
        assert_eq!(current(&q), 1, "the timed-out send queued nothing");
        assert_eq!(
            q.receive_deadline(&mut buf, d),
            Ok(Received {
                len: 1,
                priority: 2
            })
        );
        assert_eq!(buf[0], b'a');
    }
}

fn past_deadline_on_nonblocking_handle_would_block<H: Harness>(h: &H) {
    let (name, q) = create(h, "past-nb", 1);
    let nb = reopen(h, &name, OpenOptions::read_write().nonblocking());
    let mut buf = [0u8; LEN];
    for d in past() {
        assert_eq!(
            nb.receive_deadline(&mut buf, Some(d)),
            Err(Error::WouldBlock)
        );
    }
    assert_eq!(nb.receive_timeout(&mut buf, GUARD), Err(Error::WouldBlock));
    assert_eq!(q.send(b"a", 0), Ok(()));
    for d in past() {
        assert_eq!(nb.send_deadline(b"b", 0, Some(d)), Err(Error::WouldBlock));
    }
    assert_eq!(nb.send_timeout(b"b", 0, GUARD), Err(Error::WouldBlock));
    assert_eq!(take(&q), msg("a", 0));
}

fn short_receive_timeout_times_out<H: Harness>(h: &H) {
    let (_, q) = create(h, "short-recv", CAP);
    let mut buf = [0u8; LEN];
    let (wall, mono) = (SystemTime::now(), Instant::now());
    assert_eq!(q.receive_timeout(&mut buf, SHORT), Err(Error::TimedOut));
    assert!(wall_elapsed(wall) >= SHORT, "{:?}", wall_elapsed(wall));
    assert!(
        mono.elapsed() < Duration::from_secs(5),
        "{:?}",
        mono.elapsed()
    );
    // The same through an absolute deadline.
    let start = SystemTime::now();
    assert_eq!(
        q.receive_deadline(&mut buf, Some(start + SHORT)),
        Err(Error::TimedOut)
    );
    assert!(wall_elapsed(start) >= SHORT);
}

fn short_send_timeout_times_out<H: Harness>(h: &H) {
    let (_, q) = create(h, "short-send", 1);
    assert_eq!(q.send(b"full", 1), Ok(()));
    let (wall, mono) = (SystemTime::now(), Instant::now());
    assert_eq!(q.send_timeout(b"late", 9, SHORT), Err(Error::TimedOut));
    assert!(wall_elapsed(wall) >= SHORT, "{:?}", wall_elapsed(wall));
    assert!(
        mono.elapsed() < Duration::from_secs(5),
        "{:?}",
        mono.elapsed()
    );
    assert_eq!(current(&q), 1);
    assert_eq!(take(&q), msg("full", 1));
    assert_eq!(
        take(&q),
        Err(Error::WouldBlock),
        "the late message was dropped"
    );
}

fn timeouts_succeed_without_waiting<H: Harness>(h: &H) {
    let (_, q) = create(h, "timeout-ok", CAP);
    let mut buf = [0u8; LEN];
    assert_eq!(q.send_timeout(b"one", 1, SHORT), Ok(()));
    assert_eq!(q.send_timeout(b"two", 2, Duration::ZERO), Ok(()));
    assert_eq!(
        q.receive_timeout(&mut buf, Duration::ZERO),
        Ok(Received {
            len: 3,
            priority: 2
        })
    );
    assert_eq!(
        q.receive_timeout(&mut buf, SHORT),
        Ok(Received {
            len: 3,
            priority: 1
        })
    );
    assert_eq!(
        q.receive_timeout(&mut buf, Duration::ZERO),
        Err(Error::TimedOut)
    );
}

fn timed_receive_served_before_deadline<H: Harness>(h: &H) {
    let (_, q) = create(h, "timed-recv", CAP);
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            h.track();
            let mut buf = [0u8; LEN];
            let r = q.receive_timeout(&mut buf, GUARD)?;
            Ok((buf[..r.len].to_vec(), r.priority))
        });
        h.wait_blocked(1);
        assert_eq!(q.send(b"in time", 6), Ok(()));
        assert_eq!(rx.join().unwrap(), msg("in time", 6));
    });
    assert_eq!(current(&q), 0);
}

fn timed_send_served_before_deadline<H: Harness>(h: &H) {
    let (_, q) = create(h, "timed-send", 1);
    assert_eq!(q.send(b"first", 0), Ok(()));
    std::thread::scope(|s| {
        let tx = s.spawn(|| {
            h.track();
            q.send_deadline(b"second", 7, Some(SystemTime::now() + GUARD))
        });
        h.wait_blocked(1);
        assert_eq!(take(&q), msg("first", 0));
        assert_eq!(tx.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&q), msg("second", 7));
}

/// A timeout too large to add to the clock saturates at the latest
/// representable deadline: the call waits (it is neither an error nor "no
/// wait"), and is served like any other waiter.
fn huge_timeouts_saturate_and_wait<H: Harness>(h: &H) {
    let (_, q) = create(h, "huge", 1);
    assert_eq!(q.send(b"first", 0), Ok(()));
    for huge in [
        Duration::MAX,
        Duration::new(u64::MAX, 999_999_999),
        Duration::from_secs(i64::MAX as u64),
    ] {
        std::thread::scope(|s| {
            let tx = s.spawn(|| {
                h.track();
                q.send_timeout(b"second", 7, huge)
            });
            h.wait_blocked(1);
            assert_eq!(take(&q), msg("first", 0));
            assert_eq!(tx.join().unwrap(), Ok(()));
            let rx = s.spawn(|| {
                h.track();
                let mut buf = [0u8; LEN];
                q.receive_timeout(&mut buf, huge).map(|r| r.priority)
            });
            // The queue holds "second": the receive takes it at once.
            assert_eq!(rx.join().unwrap(), Ok(7));
            assert_eq!(q.send(b"first", 0), Ok(()));
        });
    }
}

fn timed_out_receiver_leaves_others_alone<H: Harness>(h: &H) {
    let (_, q) = create(h, "recv-gives-up", CAP);
    std::thread::scope(|s| {
        let receive = |timeout| {
            h.track();
            let mut buf = [0u8; LEN];
            let start = SystemTime::now();
            let r = q.receive_timeout(&mut buf, timeout);
            (r.map(|r| (buf[..r.len].to_vec(), r.priority)), start)
        };
        let r1 = s.spawn(move || receive(GIVE_UP));
        h.wait_blocked(1);
        let r2 = s.spawn(move || receive(GUARD));
        h.wait_blocked(2);
        // R1 is first in line, but gives up.
        let (got1, start1) = r1.join().unwrap();
        assert_eq!(got1, Err(Error::TimedOut));
        assert!(wall_elapsed(start1) >= GIVE_UP);
        // The next send goes to R2, not to R1's stale place.
        assert_eq!(q.send(b"for r2", 5), Ok(()));
        assert_eq!(current(&q), 0, "handed over, not queued");
        assert_eq!(r2.join().unwrap().0, msg("for r2", 5));
    });
}

fn timed_out_sender_leaves_others_alone<H: Harness>(h: &H) {
    let (_, q) = create(h, "send-gives-up", 1);
    assert_eq!(q.send(b"q0", 0), Ok(()));
    std::thread::scope(|s| {
        let s1 = s.spawn(|| {
            h.track();
            q.send_timeout(b"s1", 9, GIVE_UP)
        });
        h.wait_blocked(1);
        let s2 = s.spawn(|| {
            h.track();
            q.send_timeout(b"s2", 1, GUARD)
        });
        h.wait_blocked(2);
        // S1 is first in line, but gives up; its message is never queued.
        assert_eq!(s1.join().unwrap(), Err(Error::TimedOut));
        assert_eq!(take(&q), msg("q0", 0));
        assert_eq!(s2.join().unwrap(), Ok(()));
    });
    assert_eq!(take(&q), msg("s2", 1));
    assert_eq!(take(&q), Err(Error::WouldBlock));
}

crate::instantiate!(
    pre_epoch_send_rejected_with_room,
    pre_epoch_receive_rejected_with_message,
    pre_epoch_beats_every_send_error,
    pre_epoch_beats_every_receive_error,
    epoch_and_far_future_are_valid,
    past_deadline_times_out_only_when_blocking,
    past_deadline_on_nonblocking_handle_would_block,
    short_receive_timeout_times_out,
    short_send_timeout_times_out,
    timeouts_succeed_without_waiting,
    timed_receive_served_before_deadline,
    timed_send_served_before_deadline,
    huge_timeouts_saturate_and_wait,
    timed_out_receiver_leaves_others_alone,
    timed_out_sender_leaves_others_alone,
);
