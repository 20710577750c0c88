//! The twin's simulation features: virtual time, fault injection and the
//! call trace. These have no kernel counterpart to compare against (the
//! kernel cannot fake time or fail on demand); what they must keep is the
//! kernel's semantics, which the assertions spell out.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mqtwin::twin::{FaultPlan, Twin};
use mqtwin::{Error, Interest, MessageQueue, Namespace, OpenOptions, Received};

fn virtual_twin() -> Twin {
    Twin::builder().virtual_time().build()
}

fn open(ns: &Twin, name: &str) -> mqtwin::twin::Queue {
    ns.open(
        name,
        &OpenOptions::read_write()
            .create()
            .capacity(2)
            .max_msg_len(16),
    )
    .unwrap()
}

#[test]
fn an_hour_long_timeout_takes_no_wall_time() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    let start_virtual = clock.now();
    let wall = Instant::now();
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            let mut buf = [0; 16];
            q.receive_timeout(&mut buf, Duration::from_secs(3600))
        });
        assert!(ns.wait_blocked_timeout(1, Duration::from_secs(10)));
        assert_eq!(
            clock.pending_deadlines(),
            vec![start_virtual + Duration::from_secs(3600)]
        );
        assert_eq!(
            clock.advance_to_next_deadline(),
            Some(start_virtual + Duration::from_secs(3600))
        );
        assert_eq!(rx.join().unwrap(), Err(Error::TimedOut));
    });
    let took = wall.elapsed();
    eprintln!("1-hour virtual timeout took {took:?} of wall time");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(clock.pending_deadlines().is_empty());
}

#[test]
fn time_stands_still_until_advanced() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    let t0 = clock.now();
    assert_eq!(t0, UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    assert_eq!(
        q.now(),
        t0,
        "relative timeouts are measured on the virtual clock"
    );
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            let mut buf = [0; 16];
            q.receive_timeout(&mut buf, Duration::from_secs(30))
        });
        assert!(ns.wait_blocked_timeout(1, Duration::from_secs(10)));
        clock.advance(Duration::from_secs(29));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(ns.blocked(), 1, "29 s in: still waiting");
        clock.advance(Duration::from_secs(1));
        assert_eq!(rx.join().unwrap(), Err(Error::TimedOut));
    });
    assert_eq!(clock.now(), t0 + Duration::from_secs(30));
}

#[test]
fn a_handoff_before_the_advance_wins() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    std::thread::scope(|s| {
        let rx = s.spawn(|| {
            let mut buf = [0; 16];
            q.receive_timeout(&mut buf, Duration::from_secs(5))
        });
        assert!(ns.wait_blocked_timeout(1, Duration::from_secs(10)));
        q.send(b"in time", 3).unwrap();
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            rx.join().unwrap(),
            Ok(Received {
                len: 7,
                priority: 3
            })
        );
    });
}

#[test]
fn waiters_time_out_in_deadline_order_and_others_are_undisturbed() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (i, secs) in [(0, Some(10)), (1, None), (2, Some(5))] {
            let q = &q;
            handles.push(s.spawn(move || {
                let mut buf = [0; 16];
                let r = match secs {
                    Some(t) => q.receive_timeout(&mut buf, Duration::from_secs(t)),
                    None => q.receive(&mut buf),
                };
                (i, r.map(|_| buf[0]))
            }));
            assert!(ns.wait_blocked_timeout(i + 1, Duration::from_secs(10)));
        }
        let t0 = clock.now();
        assert_eq!(
            clock.advance_to_next_deadline(),
            Some(t0 + Duration::from_secs(5))
        );
        let settled = Instant::now();
        while ns.blocked() != 2 && settled.elapsed() < Duration::from_secs(10) {
            std::thread::yield_now();
        }
        // Two remain; the first in line (10 s) gets the next message, and its
        // deadline stops counting as pending at once.
        q.send(b"A", 0).unwrap();
        let no_deadlines_left = clock.advance_to_next_deadline();
        q.send(b"B", 0).unwrap();
        assert_eq!(no_deadlines_left, None);
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results,
            vec![(0, Ok(b'A')), (1, Ok(b'B')), (2, Err(Error::TimedOut))]
        );
    });
}

#[test]
fn send_timeouts_and_readiness_waits_use_virtual_time() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    q.send(b"1", 0).unwrap();
    q.send(b"2", 0).unwrap();
    std::thread::scope(|s| {
        let tx = s.spawn(|| q.send_timeout(b"3", 0, Duration::from_secs(7)));
        let poll =
            s.spawn(|| q.wait_ready(Interest::Writable, Some(q.now() + Duration::from_secs(3))));
        assert!(ns.wait_blocked_timeout(2, Duration::from_secs(10)));
        clock.advance_to_next_deadline();
        assert_eq!(poll.join().unwrap(), Err(Error::TimedOut));
        clock.advance_to_next_deadline();
        assert_eq!(tx.join().unwrap(), Err(Error::TimedOut));
    });
    assert_eq!(q.attributes().unwrap().current_messages, 2);
}

#[test]
fn past_and_invalid_deadlines_keep_kernel_rules_under_virtual_time() {
    let ns = virtual_twin();
    let q = open(&ns, "/q");
    let mut buf = [0; 16];
    let past = ns.now() - Duration::from_secs(1);
    assert_eq!(
        q.receive_deadline(&mut buf, Some(past)),
        Err(Error::TimedOut)
    );
    assert_eq!(
        q.receive_deadline(&mut buf, Some(UNIX_EPOCH - Duration::from_nanos(1))),
        Err(Error::InvalidDeadline)
    );
    // The real clock is far past the virtual start: a deadline one hour after
    // virtual "now" still lies in the virtual future.
    assert!(SystemTime::now() > ns.now() + Duration::from_secs(3600));
}

#[test]
fn same_seed_same_faults() {
    let run = |seed| {
        let ns = Twin::builder()
            .faults(FaultPlan::new(seed).open(0.2).send(0.3))
            .build();
        let mut outcomes = Vec::new();
        for i in 0..50 {
            let name = format!("/q{}", i % 5);
            match ns.open(&name, &OpenOptions::read_write().create().nonblocking()) {
                Ok(q) => outcomes.push(format!("{:?}", q.send(b"x", 0))),
                Err(e) => outcomes.push(format!("open {e:?}")),
            }
        }
        (outcomes, ns.faults_injected())
    };
    let (a, injected) = run(99);
    assert_eq!((a.clone(), injected), run(99));
    assert!(injected > 5, "{injected}");
    assert_ne!(a, run(100).0);
    let allowed = [
        "Ok(())",
        "Err(OutOfMemory)",
        "Err(WouldBlock)",
        "open TooManyQueues",
        "open ResourceLimit",
        "open OutOfMemory",
        "open Os { errno: 23 }",
    ];
    assert!(a.iter().all(|o| allowed.contains(&o.as_str())), "{a:?}");
}

#[test]
fn an_interrupted_waiter_loses_its_place_and_queues_nothing() {
    let ns = Twin::builder()
        .faults(FaultPlan::new(1).interrupt(1.0))
        .build();
    let q = ns
        .open(
            "/q",
            &OpenOptions::read_write()
                .create()
                .capacity(1)
                .max_msg_len(8),
        )
        .unwrap();
    let mut buf = [0; 8];
    assert_eq!(
        q.receive(&mut buf),
        Err(Error::Interrupted),
        "would block: interrupted"
    );
    assert_eq!(q.send(b"a", 0), Ok(()), "does not block: no fault site");
    assert_eq!(q.send(b"b", 0), Err(Error::Interrupted));
    assert_eq!(
        q.attributes().unwrap().current_messages,
        1,
        "the interrupted send queued nothing"
    );
    assert_eq!(q.waiters(), (0, 0), "nobody is left in a waiter list");
    assert_eq!(
        q.try_send(b"c", 0),
        Err(Error::WouldBlock),
        "a non-blocking call is never interrupted"
    );
    assert_eq!(ns.faults_injected(), 2);
}

#[test]
fn faults_come_after_the_argument_checks() {
    let ns = Twin::builder()
        .faults(FaultPlan::new(5).send(1.0).open(1.0))
        .build();
    assert!(matches!(
        ns.open("bad", &OpenOptions::read_write()),
        Err(Error::InvalidName { .. })
    ));
    assert_eq!(ns.faults_injected(), 0);
    let ns = Twin::builder().faults(FaultPlan::new(5).send(1.0)).build();
    let q = ns
        .open(
            "/q",
            &OpenOptions::read_write()
                .create()
                .capacity(1)
                .max_msg_len(4),
        )
        .unwrap();
    assert_eq!(
        q.send(b"x", 40_000),
        Err(Error::InvalidPriority { priority: 40_000 })
    );
    assert_eq!(
        q.send(b"12345", 0),
        Err(Error::MessageTooLong { len: 5, limit: 4 })
    );
    assert_eq!(q.send(b"1", 0), Err(Error::OutOfMemory));
    assert_eq!(q.attributes().unwrap().current_messages, 0);
}

#[test]
fn trace_records_calls_results_and_virtual_time() {
    let ns = Twin::builder().virtual_time().trace().build();
    let clock = ns.virtual_clock().unwrap();
    let q = ns
        .open(
            "/t",
            &OpenOptions::read_write()
                .create()
                .capacity(1)
                .max_msg_len(8),
        )
        .unwrap();
    q.send(b"hello", 2).unwrap();
    clock.advance(Duration::from_secs(2));
    let mut small = [0; 4];
    let _ = q.receive(&mut small);
    drop(q);
    let _ = ns.unlink("/t");
    let t = ns.trace();
    let calls: Vec<_> = t
        .iter()
        .map(|e| (e.call.as_str(), e.result.as_str()))
        .collect();
    assert_eq!(calls.len(), 5, "{}", ns.trace_dump());
    assert!(calls[0].0.starts_with("open(\"/t\""));
    assert_eq!(
        calls[1],
        ("send(\"/t\", 5 bytes, prio 2, deadline none)", "Ok(())")
    );
    assert_eq!(
        calls[2],
        (
            "receive(\"/t\", buffer 4 bytes, deadline none)",
            "Err(BufferTooSmall { len: 4, msg_size: 8 })"
        )
    );
    assert_eq!(calls[3], ("close(\"/t\")", "()"));
    assert_eq!(calls[4], ("unlink(\"/t\")", "Ok(())"));
    assert_eq!(
        t[2].time.duration_since(t[1].time).unwrap(),
        Duration::from_secs(2)
    );
    assert!(t.iter().all(|e| e.pid == ns.pid()));
    assert!(ns.trace_dump().lines().count() == 5);
    assert!(Twin::new().trace().is_empty(), "off by default");
}

#[test]
fn an_injected_enfile_strikes_last_and_leaves_a_new_queue_created() {
    // Find a seed whose first open fault is ENFILE.
    let enfile = Error::Os { errno: 23 };
    let seed = (0..1000)
        .find(|&seed| {
            let ns = Twin::builder()
                .faults(FaultPlan::new(seed).open(1.0))
                .build();
            ns.open("/probe", &OpenOptions::read_write().create()).err() == Some(enfile.clone())
        })
        .expect("some seed injects ENFILE first");
    let ns = Twin::builder()
        .faults(FaultPlan::new(seed).open(1.0))
        .build();
    let plain = ns.process(ns.credentials().clone());
    assert_eq!(
        ns.open("/q", &OpenOptions::read_write().create()).err(),
        Some(enfile)
    );
    assert_eq!(ns.queue_count(), 1, "created before the descriptor failed");
    assert_eq!(plain.unlink("/q"), Ok(()), "and it is a real, named queue");
    // ENFILE never replaces an error an earlier check gives: a missing queue
    // is NotFound whenever the injected fault is not an early one.
    let mut not_found = 0;
    for seed in 0..200 {
        let ns = Twin::builder()
            .faults(FaultPlan::new(seed).open(1.0))
            .build();
        match ns.open("/missing", &OpenOptions::read_write()) {
            Err(Error::NotFound { .. }) => not_found += 1,
            Err(Error::ResourceLimit | Error::OutOfMemory) => {}
            other => panic!("seed {seed}: {other:?}"),
        }
    }
    assert!(not_found > 20, "{not_found}");
}

#[test]
fn a_virtual_start_before_the_epoch_is_moved_to_the_epoch() {
    let ns = Twin::builder()
        .virtual_time_at(UNIX_EPOCH - Duration::from_secs(5))
        .build();
    assert_eq!(ns.now(), UNIX_EPOCH);
    let q = open(&ns, "/q");
    assert_eq!(q.try_receive(&mut [0; 16]), Err(Error::WouldBlock));
}

/// `wait_ready` registers with the clock before its last deadline check: an
/// `advance` racing with the call can no longer be missed (it used to leave
/// the waiter asleep forever, a few times in 20,000 runs).
#[test]
fn wait_ready_never_misses_a_racing_advance() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = std::sync::Arc::new(open(&ns, "/q"));
    for round in 0..20_000u32 {
        let (tx, rx) = std::sync::mpsc::channel();
        let deadline = Some(clock.now() + Duration::from_secs(1));
        let waiter = std::sync::Arc::clone(&q);
        // Detached, so that a waiter that misses the advance fails the test
        // instead of hanging it.
        std::thread::spawn(move || {
            let _ = tx.send(waiter.wait_ready(Interest::Readable, deadline));
        });
        if round % 2 == 0 {
            std::thread::yield_now();
        }
        clock.advance(Duration::from_secs(1));
        let got = rx.recv_timeout(Duration::from_secs(10));
        assert_eq!(
            got,
            Ok(Err(Error::TimedOut)),
            "round {round}: the waiter missed the advance"
        );
    }
}

/// Clock and duration sums saturate: nothing panics, nothing is silently
/// ignored.
#[test]
fn clock_sums_saturate() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    // A timeout too large to add is the latest deadline, not "no deadline".
    std::thread::scope(|s| {
        let rx = s.spawn(|| q.receive_timeout(&mut [0; 16], Duration::new(u64::MAX, 999_999_999)));
        assert!(ns.wait_blocked_timeout(1, Duration::from_secs(10)));
        assert_eq!(clock.pending_deadlines(), vec![mqtwin::deadline::latest()]);
        // advance(MAX) moves to the end of time (it used to do nothing).
        assert_eq!(clock.advance(Duration::MAX), mqtwin::deadline::latest());
        assert_eq!(rx.join().unwrap(), Err(Error::TimedOut));
    });
    assert_eq!(clock.now(), mqtwin::deadline::latest());
    assert_eq!(
        clock.advance(Duration::from_secs(1)),
        mqtwin::deadline::latest()
    );
    // A real-time bound too large to add waits without limit (it used to panic).
    assert!(ns.wait_blocked_timeout(0, Duration::MAX));
}

/// `wait_blocked` for callers that never block fails with a diagnostic
/// instead of hanging the suite.
#[test]
fn wait_blocked_gives_up_with_a_diagnostic() {
    let ns = Twin::builder()
        .trace()
        .wait_blocked_limit(Duration::from_millis(20))
        .build();
    let q = open(&ns, "/q");
    assert_eq!(q.try_receive(&mut [0; 16]), Err(Error::WouldBlock));
    let panic = std::panic::catch_unwind(|| ns.wait_blocked(1)).unwrap_err();
    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("wait_blocked(1) gave up after 20ms: 0 caller(s) blocked"),
        "{msg}"
    );
    assert!(
        msg.contains("receive(\"/q\""),
        "the last calls are shown: {msg}"
    );
}

/// `FaultSite::Notify` strikes thread registrations only, after the signal
/// check and before the busy check, and registers nothing.
#[test]
fn notify_faults_hit_thread_registrations_only() {
    use mqtwin::Notify;
    let ns = Twin::builder()
        .faults(FaultPlan::new(5).notify(1.0))
        .build();
    let q = open(&ns, "/q");
    let bad = Notify::Signal {
        signal: 99,
        value: 0,
    };
    assert_eq!(q.notify(bad), Err(Error::InvalidSignal { signal: 99 }));
    let got = q.notify(Notify::thread(|| {}));
    assert!(
        matches!(got, Err(Error::ResourceLimit | Error::OutOfMemory)),
        "{got:?}"
    );
    assert_eq!(q.notify_owner(), None, "nothing registered");
    assert_eq!(q.notify(Notify::None), Ok(()));
    // Before the busy check: the injected error wins over Busy.
    let got = q.notify(Notify::thread(|| {}));
    assert!(
        matches!(got, Err(Error::ResourceLimit | Error::OutOfMemory)),
        "{got:?}"
    );
    assert_eq!(ns.faults_injected(), 2);
}

/// `Twin::interrupt` acts only on a thread blocked in the namespace, and a
/// waiter without `SA_RESTART` is counted out before `interrupt` returns.
#[test]
fn interrupt_acts_only_on_a_blocked_thread() {
    let ns = Twin::builder().trace().build();
    let q = open(&ns, "/q");
    let other = Twin::new();
    std::thread::scope(|s| {
        let rx = s.spawn(|| q.receive(&mut [0; 16]).map(|m| m.len));
        ns.wait_blocked(1);
        let id = rx.thread().id();
        assert!(
            !ns.interrupt(std::thread::current().id(), false),
            "not blocked"
        );
        assert!(!other.interrupt(id, false), "blocked in another namespace");
        assert!(ns.interrupt(id, false));
        assert_eq!((ns.blocked(), q.waiters()), (0, (0, 0)));
        assert!(!ns.interrupt(id, true), "already interrupted");
        assert_eq!(rx.join().unwrap(), Err(Error::Interrupted));
    });
    std::thread::scope(|s| {
        let rx = s.spawn(|| q.receive(&mut [0; 16]).map(|m| m.len));
        ns.wait_blocked(1);
        assert_eq!(q.send(b"abc", 0), Ok(()));
        assert!(!ns.interrupt(rx.thread().id(), false), "already served");
        assert_eq!(rx.join().unwrap(), Ok(3));
    });
    assert!(
        ns.trace_dump()
            .contains("interrupt(an unnamed thread, restart: false) -> true")
            && ns.trace_dump().contains("restart: false) -> true")
    );
}

/// An interrupted timed waiter leaves the virtual clock; a restarted one
/// keeps its absolute deadline and never stops counting as blocked.
#[test]
fn interrupts_and_virtual_deadlines() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    let start = clock.now();
    let hour = Duration::from_secs(3600);
    std::thread::scope(|s| {
        let rx = s.spawn(|| q.receive_timeout(&mut [0; 16], hour).map(|m| m.len));
        ns.wait_blocked(1);
        assert!(ns.interrupt(rx.thread().id(), false));
        // At once, whether or not the waiter has run yet.
        assert_eq!(clock.advance_to_next_deadline(), None);
        assert_eq!(rx.join().unwrap(), Err(Error::Interrupted));
        assert_eq!(clock.pending_deadlines(), []);
    });
    std::thread::scope(|s| {
        let rx = s.spawn(|| q.receive_timeout(&mut [0; 16], hour).map(|m| m.len));
        ns.wait_blocked(1);
        assert!(clock.advance(Duration::from_secs(600)) > start);
        assert!(ns.interrupt(rx.thread().id(), true));
        assert_eq!(ns.blocked(), 1, "a restarted call stays blocked");
        assert_eq!(clock.pending_deadlines(), [start + hour]);
        assert_eq!(clock.advance_to_next_deadline(), Some(start + hour));
        assert_eq!(rx.join().unwrap(), Err(Error::TimedOut));
    });
}

/// A negative nice value (privileged on Linux, so not in the contract
/// suite) is served before nice 0, and a restart re-sorts by nice.
#[test]
fn a_negative_nice_value_is_served_first() {
    let ns = Twin::new();
    let q = open(&ns, "/q");
    std::thread::scope(|s| {
        let plain = s.spawn(|| q.receive(&mut [0; 16]).map(|m| m.priority));
        ns.wait_blocked(1);
        let eager = s.spawn(|| {
            assert_eq!(mqtwin::twin::set_thread_nice(-5), -5);
            q.receive(&mut [0; 16]).map(|m| m.priority)
        });
        ns.wait_blocked(2);
        // A restart puts it behind every waiter of nice -5 or lower: first.
        assert!(ns.interrupt(eager.thread().id(), true));
        assert_eq!(q.send(b"1", 1), Ok(()));
        assert_eq!(eager.join().unwrap(), Ok(1));
        assert_eq!(q.send(b"2", 2), Ok(()));
        assert_eq!(plain.join().unwrap(), Ok(2));
    });
}

/// `wait_ready` is `poll`: interrupted even with `SA_RESTART`, and it
/// leaves the blocked count when it returns.
#[test]
fn an_interrupted_wait_ready_returns_interrupted() {
    let ns = virtual_twin();
    let q = open(&ns, "/q");
    std::thread::scope(|s| {
        let poller = s.spawn(|| q.wait_ready(Interest::Readable, None));
        ns.wait_blocked(1);
        let id = poller.thread().id();
        assert!(ns.interrupt(id, true));
        assert_eq!(poller.join().unwrap(), Err(Error::Interrupted));
        assert_eq!(ns.blocked(), 0);
        assert!(!ns.interrupt(id, true));
    });
}

/// On virtual time `Namespace::now` and `MessageQueue::now` read the virtual
/// clock, and a deadline from `deadline_after` passes when the clock is
/// advanced to it, while one built from `SystemTime::now()` would be decades
/// away (the pitfall the helper exists for).
#[test]
fn deadline_after_uses_the_virtual_clock() {
    let ns = virtual_twin();
    let clock = ns.virtual_clock().unwrap();
    let q = open(&ns, "/q");
    assert_eq!(Namespace::now(&ns), clock.now());
    assert_eq!(q.now(), clock.now());
    let d = Namespace::deadline_after(&ns, Duration::from_secs(5));
    assert_eq!(d, clock.now() + Duration::from_secs(5));
    assert_eq!(q.deadline_after(Duration::from_secs(5)), d);
    assert!(SystemTime::now() > d + Duration::from_secs(20 * 365 * 86_400));
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let mut buf = [0u8; 16];
            q.receive_deadline(&mut buf, Some(d))
        });
        ns.wait_blocked(1);
        assert_eq!(clock.pending_deadlines(), vec![d]);
        clock.advance(Duration::from_secs(5));
        assert_eq!(waiter.join().unwrap(), Err(Error::TimedOut));
    });
}

/// The trace shows `try_*` deadlines as `immediate (try)` (not as a huge
/// `now-…` back to the epoch), timeouts relative to the call's start, and
/// the open mode in octal.
#[test]
fn trace_shows_try_deadlines_and_modes_readably() {
    let ns = Twin::builder().virtual_time().trace().build();
    let q = open(&ns, "/t");
    assert_eq!(q.try_send(b"x", 1), Ok(()));
    let mut buf = [0u8; 16];
    assert_eq!(q.try_receive(&mut buf).map(|r| r.len), Ok(1));
    assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
    assert_eq!(q.send_timeout(b"y", 0, Duration::from_secs(3)), Ok(()));
    let calls: Vec<String> = ns.trace().iter().map(|e| e.call.clone()).collect();
    assert!(calls[0].contains("mode: 0o600"), "{}", calls[0]);
    assert_eq!(
        calls[1..],
        [
            "send(\"/t\", 1 bytes, prio 1, deadline immediate (try))",
            "receive(\"/t\", buffer 16 bytes, deadline immediate (try))",
            "receive(\"/t\", buffer 16 bytes, deadline immediate (try))",
            "send(\"/t\", 1 bytes, prio 0, deadline now+3s)",
        ]
    );
}
