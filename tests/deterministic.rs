//! Deterministic simulation (`TwinBuilder::deterministic`): same seed, same
//! run, bit for bit; time that jumps when everyone is blocked; deadlocks
//! reported instead of hung; schedules replayed from a file; a planted bug
//! found by iterating seeds and replayed from its seed.
//!
//! Every scenario runs under [`guard`], so a regression that hangs fails
//! after 60 seconds instead of stalling the suite.

use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use mqtwin::twin::{seeds, FaultPlan, Schedule, Strategy, Twin, TwinBuilder};
use mqtwin::{Error, Interest, MessageQueue, Namespace, Notify, OpenOptions};

#[path = "../examples/fault_injection.rs"]
mod fault_injection;

/// Runs `f` on its own thread and fails the test if it takes over 60 s.
fn guard<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    // Named after the test, so a failure's replay recipe names it.
    let name = std::thread::current().name().map(str::to_owned);
    let mut worker = std::thread::Builder::new();
    if let Some(name) = name {
        worker = worker.name(name);
    }
    let worker = worker
        .spawn(move || {
            let _ = tx.send(f());
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(_) => match worker.join() {
            Err(p) => std::panic::resume_unwind(p),
            Ok(()) => panic!("the deterministic run did not finish within 60 s (a hang)"),
        },
    }
}

fn opts(capacity: usize) -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(capacity)
        .max_msg_len(64)
}

/// Three producers and two consumers on a small queue, with timeouts,
/// readiness waits, a notification thread and injected faults. Returns the
/// trace, the schedule and what the consumers got.
fn busy(builder: TwinBuilder) -> (String, Vec<u32>, Vec<Vec<String>>) {
    let ns = builder
        .faults(FaultPlan::new(3).send(0.1).interrupt(0.1))
        .trace()
        .build();
    let sim = ns.sim().expect("deterministic");
    let q = ns.open("/jobs", &opts(2)).unwrap();
    let note = ns.open("/note", &opts(4)).unwrap();
    let notifier = note.try_clone().unwrap();
    q.notify(Notify::thread(move || {
        let _ = notifier.try_send(b"non-empty", 9);
    }))
    .unwrap();
    for p in 0..3 {
        let q = q.try_clone().unwrap();
        sim.spawn(move || {
            for i in 0..6 {
                let msg = format!("p{p} m{i}");
                loop {
                    match q.send_timeout(msg.as_bytes(), p, Duration::from_millis(50)) {
                        Ok(()) => break,
                        Err(Error::Interrupted | Error::OutOfMemory | Error::TimedOut) => {}
                        Err(e) => panic!("send: {e}"),
                    }
                }
            }
        });
    }
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let q = q.try_clone().unwrap();
            sim.spawn(move || {
                let mut got = Vec::new();
                let mut buf = [0u8; 64];
                loop {
                    match q.wait_ready(Interest::Readable, Some(q.now() + Duration::from_secs(1))) {
                        Ok(_) | Err(Error::Interrupted) => {}
                        Err(Error::TimedOut) => return got,
                        Err(e) => panic!("wait_ready: {e}"),
                    }
                    match q.receive_timeout(&mut buf, Duration::from_millis(10)) {
                        Ok(m) => got.push(String::from_utf8_lossy(&buf[..m.len]).into_owned()),
                        Err(Error::Interrupted | Error::TimedOut) => {}
                        Err(e) => panic!("receive: {e}"),
                    }
                }
            })
        })
        .collect();
    let got: Vec<Vec<String>> = consumers.into_iter().map(|c| c.join().unwrap()).collect();
    assert_eq!(got.iter().map(Vec::len).sum::<usize>(), 18);
    (ns.trace_dump(), sim.schedule().decisions, got)
}

#[test]
fn same_seed_same_trace_bit_for_bit() {
    guard(|| {
        let mut distinct = std::collections::HashSet::new();
        for seed in 0..8 {
            let a = busy(Twin::builder().deterministic(seed));
            let b = busy(Twin::builder().deterministic(seed));
            assert_eq!(a, b, "seed {seed}: two runs differ");
            assert!(a.0.lines().count() > 40, "{}", a.0);
            distinct.insert(a.0);
        }
        // Different seeds interleave differently (8 of 8 here; ask for 4).
        assert!(distinct.len() >= 4, "{} distinct traces", distinct.len());
    });
}

#[test]
fn pct_is_deterministic_too() {
    guard(|| {
        let mut distinct = std::collections::HashSet::new();
        for seed in 0..6 {
            let pct = Strategy::Pct {
                depth: 3,
                steps: 200,
            };
            let a = busy(Twin::builder().deterministic(seed).strategy(pct));
            let b = busy(Twin::builder().deterministic(seed).strategy(pct));
            assert_eq!(a, b, "seed {seed}");
            distinct.insert(a.1);
        }
        assert!(distinct.len() >= 3, "{} distinct schedules", distinct.len());
    });
}

#[test]
fn time_jumps_when_everyone_is_blocked() {
    guard(|| {
        let ns = Twin::builder().deterministic(1).build();
        let sim = ns.sim().unwrap();
        let start = ns.now();
        let q = ns.open("/q", &opts(4)).unwrap();
        let real = Instant::now();
        let rx = sim.spawn(move || {
            let r = q.receive_timeout(&mut [0; 64], Duration::from_secs(3600));
            (r.map(|m| m.len), q.now())
        });
        let (r, at) = rx.join().unwrap();
        assert_eq!(r, Err(Error::TimedOut));
        assert_eq!(at, start + Duration::from_secs(3600));
        assert!(real.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn the_earliest_deadline_fires_first() {
    guard(|| {
        let ns = Twin::builder().deterministic(9).build();
        let sim = ns.sim().unwrap();
        let start = ns.now();
        let q = ns.open("/q", &opts(4)).unwrap();
        let handles: Vec<_> = [30u64, 10, 20]
            .into_iter()
            .map(|secs| {
                let q = q.try_clone().unwrap();
                sim.spawn(move || {
                    let r = q.receive_timeout(&mut [0; 64], Duration::from_secs(secs));
                    assert_eq!(r.map(drop), Err(Error::TimedOut));
                    q.now()
                })
            })
            .collect();
        let ends: Vec<SystemTime> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let secs = |t: SystemTime| t.duration_since(start).unwrap().as_secs();
        assert_eq!(ends.into_iter().map(secs).collect::<Vec<_>>(), [30, 10, 20]);
    });
}

#[test]
fn deadlock_is_reported_not_hung() {
    let err = guard(|| {
        let ns = Twin::builder().deterministic(4).trace().build();
        let sim = ns.sim().unwrap();
        let q = ns.open("/empty", &opts(4)).unwrap();
        let a = q.try_clone().unwrap();
        let first = sim.spawn(move || a.receive(&mut [0; 64]).map(drop));
        sim.spawn(move || q.receive(&mut [0; 64]).map(drop));
        let b = ns.open("/empty", &opts(4)).unwrap();
        sim.spawn(move || b.wait_ready(Interest::Readable, None).map(drop));
        let err = sim.run().unwrap_err();
        // Every handle reports the same failure; nothing hangs.
        assert_eq!(first.join().unwrap_err(), err);
        // The torn-down receivers left their lists: the queue still works
        // for the test (a left-over waiter would swallow this message).
        assert_eq!(ns.blocked(), 0);
        let q = ns.open("/empty", &opts(4)).unwrap();
        q.send(b"after", 1).unwrap();
        assert_eq!(q.receive(&mut [0; 64]).map(|m| m.len), Ok(5));
        err
    });
    assert!(err.is_deadlock());
    assert_eq!(err.seed(), 4);
    let blocked = err.blocked();
    assert_eq!(blocked.len(), 3, "{err}");
    assert_eq!(blocked[0], (0, r#"receive("/empty")"#.to_owned()));
    assert_eq!(blocked[1], (1, r#"receive("/empty")"#.to_owned()));
    assert_eq!(blocked[2], (2, r#"wait_ready("/empty")"#.to_owned()));
    let text = err.to_string();
    assert!(text.contains("MQTWIN_SEED=4"), "{text}");
    assert!(text.contains("open(\"/empty\""), "the last calls: {text}");
    let file = err.schedule_file().expect("schedule written");
    assert!(Schedule::load(file).is_ok());
    let _ = std::fs::remove_file(file);
}

/// A participant blocked outside the twin (here on a channel) is invisible
/// to the scheduler: after the stall limit the run fails naming it, instead
/// of hanging; the run stays failed; released, the stuck participant comes
/// back to the twin and the run is torn down (no thread left waiting).
#[test]
fn a_participant_blocked_outside_the_twin_is_a_stall_not_a_hang() {
    let (err, again, waiter, stuck, tx, start) = guard(|| {
        let ns = Twin::builder()
            .deterministic(3)
            .stall_limit(Duration::from_millis(100))
            .build();
        let sim = ns.sim().unwrap();
        let q = ns.open("/q", &opts(4)).unwrap();
        let rx_q = q.try_clone().unwrap();
        let (tx, rx) = mpsc::channel::<()>();
        // Participant 0 waits in the twin; participant 1 sends, then blocks
        // on a channel (outside the twin) while holding the token.
        let waiter =
            sim.spawn(move || rx_q.receive_timeout(&mut [0; 64], Duration::from_secs(3600)));
        let stuck = sim.spawn(move || {
            q.send(b"x", 1).unwrap();
            let _ = rx.recv();
            q.send(b"y", 1)
        });
        let start = Instant::now();
        let err = sim.run().unwrap_err();
        let again = sim.run().unwrap_err();
        (err, again, waiter, stuck, tx, start)
    });
    assert!(err.is_stalled(), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(30),
        "{:?}",
        start.elapsed()
    );
    let text = err.to_string();
    assert!(
        text.contains("stalled: participant 1 ran for 100ms"),
        "{text}"
    );
    assert!(text.contains("its last: send(\"/q\""), "{text}");
    assert!(text.contains("blocked outside the twin"), "{text}");
    assert_eq!(again, err, "a stalled run stays failed");
    assert!(!err.is_deadlock() && err.blocked().is_empty() && err.panic_message().is_none());
    // Released: participant 1 finishes, participant 0 is unwound.
    drop(tx);
    let t = Instant::now();
    while !(waiter.is_finished() && stuck.is_finished()) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the released run was not torn down"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(stuck.join(), Ok(Ok(())));
    assert!(waiter.join().unwrap_err().is_stalled());
}

#[test]
fn replay_from_a_schedule_file_reproduces_the_trace() {
    guard(|| {
        let ns_seed = 11;
        let path = std::env::temp_dir().join(format!("mqtwin-replay-{}.txt", std::process::id()));
        // Record: run, then save the schedule.
        let (trace, decisions, got) = {
            let (t, d, g) = busy(Twin::builder().deterministic(ns_seed));
            Schedule {
                seed: ns_seed,
                strategy: Strategy::Random,
                decisions: d.clone(),
            }
            .save(&path)
            .unwrap();
            (t, d, g)
        };
        let schedule = Schedule::load(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(schedule.decisions, decisions);
        // Replay with the loaded schedule: the builder's own seed is
        // replaced by the schedule's.
        let replayed = busy(Twin::builder().deterministic(999).replay(schedule.clone()));
        assert_eq!(replayed, (trace.clone(), decisions.clone(), got));
        // A schedule forced onto another seed's run still drives it: the
        // decisions are taken from the file, not from the generator.
        let other = busy(Twin::builder().replay(Schedule {
            seed: 12,
            ..schedule
        }));
        assert_eq!(other.1, decisions);
    });
}

#[test]
fn a_participant_panic_fails_the_run_with_the_seed() {
    let err = guard(|| {
        let ns = Twin::builder().deterministic(21).build();
        let sim = ns.sim().unwrap();
        let q = ns.open("/q", &opts(4)).unwrap();
        let waiting = q.try_clone().unwrap();
        // This one blocks forever; the panic tears it down.
        let blocked = sim.spawn(move || waiting.receive(&mut [0; 64]).map(drop));
        sim.spawn(move || -> () {
            q.attributes().unwrap();
            panic!("planted")
        });
        let err = sim.run().unwrap_err();
        assert_eq!(blocked.join().unwrap_err(), err);
        err
    });
    assert!(!err.is_deadlock());
    assert_eq!(err.panic_message(), Some("planted"));
    assert!(err.to_string().contains("MQTWIN_SEED=21"));
    if let Some(f) = err.schedule_file() {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn outsiders_may_not_block() {
    let ns = Twin::builder().deterministic(0).build();
    let q = ns.open("/q", &opts(4)).unwrap();
    // Outside a run the test's thread may call the twin...
    q.send(b"x", 1).unwrap();
    assert_eq!(q.receive(&mut [0; 64]).map(|m| m.len), Ok(1));
    // ...but not block: nothing could ever wake it.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q.receive(&mut [0; 64]).map(drop)
    }));
    let p = r.unwrap_err();
    let msg = (p.downcast_ref::<&str>().map(|s| s.to_string()))
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap();
    assert!(msg.contains("not a participant"), "{msg}");
    // It panicked before joining the waiter list: the queue is intact (a
    // left-over waiter would swallow this message).
    assert_eq!(ns.blocked(), 0);
    q.send(b"yz", 2).unwrap();
    assert_eq!(q.receive(&mut [0; 64]).map(|m| m.len), Ok(2));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        q.wait_ready(Interest::Readable, None).map(drop)
    }));
    assert!(r.is_err());
    assert_eq!(ns.blocked(), 0);
}

/// The planted bug: an echo server that drops a reply when the reply's send
/// fails with an injected `ENOMEM` (it should retry).
fn echo_run(seed: u64) -> Result<String, String> {
    let ns = Twin::builder()
        .deterministic(seed)
        .faults(FaultPlan::new(seed).send(0.05))
        .trace()
        .build();
    let sim = ns.sim().unwrap();
    let requests = ns.open("/req", &opts(4)).unwrap();
    let replies = ns.open("/rep", &opts(4)).unwrap();
    let (srv_rx, srv_tx) = (requests.try_clone().unwrap(), replies.try_clone().unwrap());
    sim.spawn(move || {
        let mut buf = [0u8; 64];
        while let Ok(m) = srv_rx.receive_timeout(&mut buf, Duration::from_secs(10)) {
            // BUG: an error on the reply is ignored, so the reply is lost.
            let _ = srv_tx.send(&buf[..m.len], 0);
        }
    });
    let client = sim.spawn(move || {
        let mut buf = [0u8; 64];
        for i in 0..10 {
            let req = format!("req {i}");
            while let Err(Error::OutOfMemory) = requests.send(req.as_bytes(), 0) {}
            match replies.receive_timeout(&mut buf, Duration::from_secs(1)) {
                Ok(m) => assert_eq!(&buf[..m.len], req.as_bytes()),
                Err(e) => panic!("no reply to {req:?}: {e}"),
            }
        }
    });
    match client.join() {
        Ok(()) => Ok(ns.trace_dump()),
        Err(e) => {
            if let Some(f) = e.schedule_file() {
                let _ = std::fs::remove_file(f);
            }
            Err(format!(
                "{} / {}",
                e.panic_message().unwrap_or(""),
                ns.trace_dump()
            ))
        }
    }
}

#[test]
fn a_planted_bug_is_found_by_seed_and_replayed() {
    guard(|| {
        // `seeds` is just `MQTWIN_SEED` when that is set: the printed
        // recipe replays the failing seed alone.
        let failing = seeds(0..200)
            .into_iter()
            .find(|&seed| echo_run(seed).is_err())
            .expect("some seed among 200 loses a reply");
        let first = echo_run(failing).unwrap_err();
        assert!(first.starts_with("no reply to"), "{first}");
        // Replayed from its seed: the same failure, the same trace.
        assert_eq!(echo_run(failing).unwrap_err(), first);
    });
}

#[test]
fn the_fault_injection_example_prints_the_same_every_run() {
    guard(|| {
        let first = fault_injection::run(2024).unwrap();
        for _ in 0..3 {
            assert_eq!(fault_injection::run(2024).unwrap(), first);
        }
        assert_ne!(fault_injection::run(2025).unwrap().1, first.1);
    });
}

#[test]
fn wait_blocked_in_a_participant_is_a_blocking_point() {
    guard(|| {
        let run = |seed| {
            let ns = Twin::builder().deterministic(seed).trace().build();
            let sim = ns.sim().unwrap();
            let q = ns.open("/q", &opts(4)).unwrap();
            let rx = q.try_clone().unwrap();
            let got = sim.spawn(move || rx.receive(&mut [0; 64]).map(|m| m.priority));
            let ns2 = ns.clone();
            sim.spawn(move || {
                ns2.wait_blocked(1); // the receiver is a waiter now...
                q.send(b"x", 5).unwrap(); // ...so this is a hand-over
            });
            assert_eq!(got.join().unwrap(), Ok(5));
            ns.trace_dump()
        };
        for seed in 0..5 {
            assert_eq!(run(seed), run(seed));
        }
        // A count never reached is a deadlock, not a hang.
        let ns = Twin::builder().deterministic(0).build();
        let sim = ns.sim().unwrap();
        let ns2 = ns.clone();
        sim.spawn(move || ns2.wait_blocked(3));
        let err = sim.run().unwrap_err();
        assert_eq!(err.blocked(), [(0, "wait_blocked(3)".to_owned())]);
        if let Some(f) = err.schedule_file() {
            let _ = std::fs::remove_file(f);
        }
    });
}

#[test]
fn a_participant_may_join_another() {
    guard(|| {
        let run = |seed| {
            let ns = Twin::builder().deterministic(seed).trace().build();
            let sim = ns.sim().unwrap();
            let q = ns.open("/q", &opts(1)).unwrap();
            let (tx, sim2) = (q.try_clone().unwrap(), sim.clone());
            let outer = sim.spawn(move || {
                let inner = sim2.spawn(move || {
                    (0..3u8).for_each(|i| tx.send(&[i], 0).unwrap());
                    "sent"
                });
                let mut got = Vec::new();
                for _ in 0..3 {
                    let mut buf = [0u8; 64];
                    let m = q.receive(&mut buf).unwrap();
                    got.push(buf[m.len - 1]);
                }
                (inner.join().unwrap(), got)
            });
            let r = outer.join().unwrap();
            (r, ns.trace_dump())
        };
        for seed in 0..4 {
            let a = run(seed);
            assert_eq!(a.0, ("sent", vec![0, 1, 2]));
            assert_eq!(a, run(seed));
        }
    });
}

#[test]
fn sim_sleep_is_virtual_time_and_a_blocking_point() {
    guard(|| {
        let run = |seed| {
            let ns = Twin::builder().deterministic(seed).trace().build();
            let sim = ns.sim().unwrap();
            let start = ns.now();
            let q = ns.open("/q", &opts(4)).unwrap();
            let real = Instant::now();
            // A sender that sleeps between sends, a receiver that times
            // out when a pause is longer than its patience.
            let (tx, s) = (q.try_clone().unwrap(), sim.clone());
            sim.spawn(move || {
                for secs in [5u64, 18] {
                    s.sleep(Duration::from_secs(secs));
                    tx.send(&[secs as u8], 0).unwrap();
                }
            });
            let rx = sim.spawn(move || {
                let mut got = Vec::new();
                for _ in 0..3 {
                    let mut buf = [0u8; 64];
                    let r = q.receive_timeout(&mut buf, Duration::from_secs(10));
                    got.push((r.map(|_| buf[0]), q.now()));
                }
                got
            });
            let got = rx.join().unwrap();
            assert!(real.elapsed() < Duration::from_secs(10), "no real sleep");
            let at = |s| start + Duration::from_secs(s);
            // 5: the first message; 15: a timeout (the sender sleeps until 23); 23: the second.
            assert_eq!(
                got,
                [
                    (Ok(5), at(5)),
                    (Err(Error::TimedOut), at(15)),
                    (Ok(18), at(23))
                ]
            );
            ns.trace_dump()
        };
        for seed in 0..3 {
            assert_eq!(run(seed), run(seed));
        }
        // Only a participant may sleep: nothing would wake the test's thread.
        let ns = Twin::builder().deterministic(0).build();
        let sim = ns.sim().unwrap();
        let r = std::panic::catch_unwind(|| sim.sleep(Duration::from_secs(1)));
        assert!(r.is_err());
    });
}

#[test]
fn any_pct_depth_and_steps_run_without_up_front_cost() {
    // Pct { depth: u32::MAX } used to allocate ~34 GB in build() and abort.
    guard(|| {
        for (depth, steps) in [(u32::MAX, u64::MAX), (u32::MAX, 0), (0, u64::MAX), (0, 0)] {
            let pct = Strategy::Pct { depth, steps };
            let a = busy(Twin::builder().deterministic(9).strategy(pct));
            let b = busy(Twin::builder().deterministic(9).strategy(pct));
            assert_eq!(a, b, "depth {depth} steps {steps}");
        }
    });
}

/// Run only by [`schedule_in_the_environment_leaves_plain_twins_alone`], in
/// a child process with `MQTWIN_SCHEDULE` set.
#[test]
#[ignore = "a child of schedule_in_the_environment_leaves_plain_twins_alone"]
fn child_under_a_schedule_in_the_environment() {
    let Some(path) = std::env::var_os("MQTWIN_SCHEDULE") else {
        panic!("run by schedule_in_the_environment_leaves_plain_twins_alone only");
    };
    let schedule = Schedule::load(path).unwrap();
    // A plain twin is free-running on the real clock: a thread that is no
    // participant blocks and is woken as usual.
    for ns in [Twin::new(), Twin::builder().build()] {
        assert!(ns.sim().is_none(), "a plain twin turned deterministic");
        let q = ns.open("/q", &opts(4)).unwrap();
        let tx = q.try_clone().unwrap();
        let t = std::thread::spawn(move || tx.send(b"x", 1));
        assert_eq!(q.receive(&mut [0; 64]).map(|m| m.priority), Ok(1));
        assert_eq!(t.join().unwrap(), Ok(()));
    }
    // A twin that asked for determinism takes the schedule's seed.
    let ns = Twin::builder().deterministic(999).build();
    assert_eq!(ns.sim().unwrap().seed(), schedule.seed);
}

#[test]
fn schedule_in_the_environment_leaves_plain_twins_alone() {
    // MQTWIN_SCHEDULE used to turn every Twin::new() deterministic, so an
    // ordinary threaded test panicked ("not a participant ... would block").
    let path = std::env::temp_dir().join(format!("mqtwin-env-schedule-{}.txt", std::process::id()));
    Schedule {
        seed: 4242,
        strategy: Strategy::Random,
        decisions: vec![0, 0, 1],
    }
    .save(&path)
    .unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_under_a_schedule_in_the_environment",
            "--ignored",
        ])
        .env("MQTWIN_SCHEDULE", &path)
        .env_remove("MQTWIN_SEED")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("1 passed"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two participants block on a queue; a third interrupts them (one with
/// `restart`). Returns the trace.
fn interrupts(seed: u64) -> String {
    let ns = Twin::builder().deterministic(seed).trace().build();
    let sim = ns.sim().expect("deterministic");
    let q = ns.open("/q", &opts(4)).unwrap();
    let ids = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for _ in 0..2 {
        let (q, ids, s) = (q.try_clone().unwrap(), ids.clone(), sim.clone());
        sim.spawn(move || {
            // Participants share an OS thread: they are named by number.
            ids.lock().unwrap().push(s.participant().unwrap());
            q.receive_timeout(&mut [0; 64], Duration::from_secs(5))
                .map(|m| m.len)
        });
    }
    let (ns2, s2) = (ns.clone(), sim.clone());
    sim.spawn(move || {
        while ids.lock().unwrap().len() < 2 {
            s2.sleep(Duration::from_millis(1));
        }
        let ids = ids.lock().unwrap().clone();
        for (i, id) in ids.into_iter().enumerate() {
            while !ns2.interrupt_participant(id, i == 0) {
                s2.sleep(Duration::from_millis(1));
            }
        }
        // Not blocked (the caller itself): traced without an id too. A
        // ThreadId names no participant.
        assert!(!ns2.interrupt(std::thread::current().id(), false));
        assert!(!ns2.interrupt_participant(s2.participant().unwrap(), false));
    });
    sim.run().unwrap();
    ns.trace_dump()
}

#[test]
fn an_interrupt_is_traced_by_who_was_interrupted_not_by_thread_id() {
    // The trace printed the ThreadId, a process-wide counter: the same seed
    // twice in one process gave different traces.
    guard(|| {
        for seed in 0..4 {
            let a = interrupts(seed);
            let b = interrupts(seed);
            assert_eq!(a, b, "seed {seed}: the same seed traced differently");
            assert!(!a.contains("ThreadId"), "{a}");
            assert!(a.contains("interrupt(participant "), "{a}");
            assert!(
                a.contains("interrupt(a thread not blocked here, restart: false) -> false"),
                "{a}"
            );
        }
    });
}

/// Run by `seed_sweeps_shard_through_the_environment` in a child process:
/// prints the seeds `twin::seeds(0..4)` chose there.
#[test]
#[ignore = "run in a child by seed_sweeps_shard_through_the_environment"]
fn child_prints_its_seeds() {
    let chosen: Vec<u64> = seeds(0..4).collect();
    println!("seeds: {chosen:?}");
}

/// `MQTWIN_SEEDS` and `MQTWIN_SEED_SHARD` reach `twin::seeds` from the
/// environment (a CI matrix sets them), and `MQTWIN_SEED` overrides both.
#[test]
fn seed_sweeps_shard_through_the_environment() {
    let child = |vars: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "child_prints_its_seeds",
            "--ignored",
            "--nocapture",
        ]);
        for v in ["MQTWIN_SEED", "MQTWIN_SEEDS", "MQTWIN_SEED_SHARD"] {
            cmd.env_remove(v);
        }
        cmd.envs(vars.iter().copied());
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{text}");
        let line = text
            .lines()
            .find(|l| l.starts_with("seeds: "))
            .unwrap_or("");
        line.trim_start_matches("seeds: ").to_owned()
    };
    assert_eq!(child(&[]), "[0, 1, 2, 3]");
    assert_eq!(
        child(&[("MQTWIN_SEEDS", "10..=15")]),
        "[10, 11, 12, 13, 14, 15]"
    );
    assert_eq!(
        child(&[("MQTWIN_SEEDS", "10..=15"), ("MQTWIN_SEED_SHARD", "2/3")]),
        "[11, 14]"
    );
    assert_eq!(child(&[("MQTWIN_SEED_SHARD", "1/2")]), "[0, 2]");
    assert_eq!(
        child(&[("MQTWIN_SEED", "99"), ("MQTWIN_SEED_SHARD", "2/2")]),
        "[99]"
    );
}
