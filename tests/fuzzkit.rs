//! `mqtwin::fuzzkit` (feature `fuzzkit`) on the echo service of
//! `examples/echo/mod.rs`: many generated inputs pass on the correct
//! handler; the planted bug (a reply lost when an injected fault hits) is
//! found within a bounded number of inputs and replays, from its bytes, with
//! the identical violation.
//!
//! The client model is the one of `fuzz/fuzz_targets/echo_kit.rs` (and of
//! the README), formatted.

#[path = "../examples/echo/mod.rs"]
mod echo;

#[path = "common/inputs.rs"]
mod inputs;
use inputs::input;

use std::time::{Duration, Instant};

use mqtwin::fuzzkit::{arbitrary::Unstructured, retry, Client, Event, Kit, Scenario};
use mqtwin::twin::{FaultPlan, Queue, Twin};
use mqtwin::{Error, MessageQueue, Namespace};

struct Peer {
    id: u8,
    seq: u8,
    req: Queue,
    reply: Queue,
}

impl Client for Peer {
    fn connect(ns: &Twin, id: usize) -> Result<Self, Error> {
        let req = ns.open(echo::REQUESTS, &echo::options())?;
        let reply = ns.open(&echo::reply_queue(id as u8), &echo::options())?;
        Ok(Peer {
            id: id as u8,
            seq: 0,
            req,
            reply,
        })
    }

    fn request(&mut self, u: &mut Unstructured<'_>) -> Result<(), String> {
        self.seq = self.seq.wrapping_add(1);
        let prio = u.int_in_range(0..=9).unwrap_or(0);
        let len = u.int_in_range(0..=62).unwrap_or(0);
        let payload = u.bytes(len.min(u.len())).unwrap_or_default();
        let msg = [&[self.id, self.seq][..], payload].concat();
        retry(|| self.req.send(&msg, prio)).map_err(|e| format!("send: {e}"))?;
        let (data, got_prio) =
            retry(|| self.reply.receive_vec()).map_err(|e| format!("receive: {e}"))?;
        if (&data, got_prio) == (&msg, prio) {
            Ok(())
        } else {
            Err(format!(
                "sent {msg:?} at {prio}, got {:?} at {}",
                data, got_prio
            ))
        }
    }
}

fn kit(planted_bug: bool) -> Kit<Peer> {
    Kit::<Peer>::new(
        move |ns| {
            echo::serve_with(ns, planted_bug)
                .map(drop)
                .map_err(|e| e.to_string())
        },
        |ns| echo::shutdown(ns).expect("shutdown"),
    )
    // The service's queues only: requests, and one reply queue per client.
    .check(|ns| match ns.queue_count() {
        0..=4 => Ok(()),
        n => Err(format!("{n} queues left")),
    })
}

#[test]
fn the_correct_handler_survives_many_inputs() {
    let kit = kit(false);
    let (mut requests, mut faults, mut restarts) = (0, 0, 0);
    for i in 0..300 {
        let report = kit
            .run(&input(i, 64 + (i as usize * 13) % 512))
            .unwrap_or_else(|v| panic!("input {i}: {v}"));
        requests += report.requests;
        faults += report.faults_injected;
        restarts += report
            .scenario
            .clients
            .iter()
            .flatten()
            .filter(|e| matches!(e, Event::Restart | Event::Stop))
            .count();
    }
    // The inputs exercised what the kit promises: requests, faults, restarts.
    assert!(requests > 1000, "{requests} requests");
    assert!(faults > 100, "{faults} faults");
    assert!(restarts > 50, "{restarts} restarts and stops");
}

#[test]
fn the_planted_bug_is_found_and_replayed_from_its_bytes() {
    let kit = kit(true);
    let start = Instant::now();
    let (i, bytes, violation) = (0..2000)
        .find_map(|i| {
            let bytes = input(i, 256);
            kit.run(&bytes).err().map(|v| (i, bytes, v))
        })
        .expect("the planted bug was not found in 2000 inputs");
    eprintln!(
        "found after {} inputs in {:?}:\n{violation}",
        i + 1,
        start.elapsed()
    );
    assert!(start.elapsed() < Duration::from_secs(60));
    // A lost reply leaves its client waiting forever: a deadlock.
    assert!(violation.message.starts_with("deadlock"), "{violation}");
    assert!(
        violation
            .message
            .contains("blocked in receive(\"/echo.reply."),
        "{violation}"
    );
    let text = violation.to_string();
    assert!(
        text.contains(&format!("scheduler seed {}", violation.scenario.seed)),
        "{text}"
    );
    assert!(text.contains("replay"), "{text}");
    // Replayed from the bytes (as from a saved crash file): the same violation.
    assert_eq!(kit.run(&bytes).unwrap_err(), violation);
    let path = std::env::temp_dir().join(format!("mqtwin-fuzzkit-{}", std::process::id()));
    std::fs::write(&path, &bytes).unwrap();
    let replayed = kit.replay_file(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(replayed.unwrap_err(), violation);
    // The correct handler passes the same input.
    assert!(self::kit(false).run(&bytes).is_ok());
}

#[test]
fn a_scenario_written_by_hand_runs_as_decoded() {
    // Every send fails once in a while; one client restarts and waits.
    let scenario = Scenario {
        seed: 5,
        faults: FaultPlan::new(9).send(0.2).interrupt(0.2),
        clients: vec![
            vec![
                Event::Request(vec![3, 10, 1, 2, 3]),
                Event::Restart,
                Event::Wait(Duration::from_secs(30)),
                Event::Request(vec![0]),
            ],
            vec![
                Event::Request(vec![9]),
                Event::Stop,
                Event::Request(vec![1]),
            ],
        ],
    };
    let report = kit(false).run_scenario(scenario.clone()).unwrap();
    assert_eq!(report.requests, 3);
    assert!(report.elapsed >= Duration::from_secs(30), "{report:?}");
    assert_eq!(report.scenario, scenario);
}

#[test]
fn a_model_error_a_panic_and_a_failing_handler_are_violations() {
    struct Liar;
    impl Client for Liar {
        fn connect(_: &Twin, id: usize) -> Result<Self, Error> {
            assert!(id < 1, "only one client expected");
            Ok(Liar)
        }
        fn request(&mut self, _: &mut Unstructured<'_>) -> Result<(), String> {
            Err("the reply was wrong".into())
        }
    }
    // 19 bytes of seeds and probabilities, then: one client, one request
    // event of 0 bytes.
    let one_request = [0u8; 19].into_iter().chain([0, 0, 0]).collect::<Vec<_>>();
    let ok_server = |ns: &Twin| echo::serve(ns).map(drop).map_err(|e| e.to_string());
    let stop = |ns: &Twin| echo::shutdown(ns).expect("shutdown");
    let v = Kit::<Liar>::new(ok_server, stop)
        .run(&one_request)
        .unwrap_err();
    assert_eq!(v.message, "client 0: the reply was wrong");
    // Two clients: the second one's connect panics.
    let two = [0u8; 19].into_iter().chain([1]).collect::<Vec<_>>();
    let v = Kit::<Liar>::new(ok_server, stop)
        .max_clients(2)
        .run(&two)
        .unwrap_err();
    assert!(v.message.contains("only one client expected"), "{v}");
    // A handler that fails.
    let v = Kit::<Liar>::new(|_| Err("no queue".into()), |_| {})
        .run(&[])
        .unwrap_err();
    assert_eq!(v.message, "the handler failed: no queue");
    // A handler that does not stop: a deadlock.
    let v = Kit::<Liar>::new(ok_server, |_| {}).run(&[]).unwrap_err();
    assert!(
        v.message
            .contains("the handler blocked in receive(\"/echo.req\")"),
        "{v}"
    );
}

/// The input libFuzzer saved when `cargo fuzz run echo_kit` (with
/// `MQTWIN_PLANT_BUG=1`) found the planted bug: it replays the violation on
/// stable, every time, and passes on the correct handler.
#[test]
fn the_kept_libfuzzer_crash_replays() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/regressions/echo_kit/planted-lost-reply"
    );
    let v = kit(true).replay_file(path).unwrap_err();
    assert!(v.message.contains("client 0 blocked in receive"), "{v}");
    assert_eq!(kit(true).replay_file(path).unwrap_err(), v);
    if let Err(v) = kit(false).replay_file(path) {
        panic!("{v}");
    }
}

/// A client that connects and makes no request (`request` is never called
/// by the scenarios of these tests: they have no events).
struct Idle;
impl Client for Idle {
    fn connect(_: &Twin, _: usize) -> Result<Self, Error> {
        Ok(Idle)
    }
    fn request(&mut self, _: &mut Unstructured<'_>) -> Result<(), String> {
        Ok(())
    }
}

/// A handler that ignores the shutdown message and keeps polling with a
/// timeout is never blocked without a deadline (no deadlock: virtual time
/// jumps a second at a time, forever). The kit's stop limit reports it, by
/// name, with the call it is in and the scenario.
#[test]
fn a_handler_that_ignores_shutdown_and_keeps_polling_is_reported() {
    let deaf = |ns: &Twin| -> Result<(), String> {
        let q = ns
            .open(echo::REQUESTS, &echo::options())
            .map_err(|e| e.to_string())?;
        let mut buf = [0; 64];
        loop {
            let _ = q.receive_timeout(&mut buf, Duration::from_secs(1));
        }
    };
    let stop = |ns: &Twin| echo::shutdown(ns).expect("shutdown");
    let kit = Kit::<Idle>::new(deaf, stop);
    let v = kit.run(&[]).unwrap_err();
    assert!(v.message.starts_with("did not stop"), "{v}");
    assert!(v.message.contains("3600s of virtual time"), "{v}");
    assert!(
        v.message.contains("the handler in receive(\"/echo.req\")"),
        "{v}"
    );
    assert_eq!(v.scenario, kit.scenario(&[]));
    assert!(v.to_string().contains("scenario: "), "{v}");
    // Deterministic: the same verdict every time.
    assert_eq!(kit.run(&[]).unwrap_err(), v);
    eprintln!("{v}");
    // A handler that spins on non-blocking calls takes no virtual time:
    // the step bound reports it.
    let spinning = |ns: &Twin| -> Result<(), String> {
        let q = ns
            .open(echo::REQUESTS, &echo::options().nonblocking())
            .map_err(|e| e.to_string())?;
        loop {
            let _ = q.try_receive(&mut [0; 64]);
        }
    };
    let v = Kit::<Idle>::new(spinning, stop).run(&[]).unwrap_err();
    assert!(
        v.message.starts_with(
            "did not stop: still running after 100000 scheduling steps since the kit \
             asked the handler to stop"
        ),
        "{v}"
    );
    assert!(
        v.message.contains("the handler in receive(\"/echo.req\")"),
        "{v}"
    );
}

/// Every knob takes any value: 0, 1 and `usize::MAX` for the limits, on
/// empty, short and long inputs, without a panic; the decoded scenario
/// keeps within the documented maxima.
#[test]
fn every_knob_takes_extreme_values() {
    let long = input(11, 4096);
    let inputs: [&[u8]; 4] = [&[], &[0xff; 40], &long[..300], &long];
    for n in [0, 1, usize::MAX] {
        for m in [0, 1, usize::MAX] {
            for open_faults in [false, true] {
                // The echo kit without its final check (up to 3 clients).
                let kit = Kit::<Peer>::new(
                    |ns| echo::serve(ns).map(drop).map_err(|e| e.to_string()),
                    |ns| echo::shutdown(ns).expect("shutdown"),
                )
                .max_clients(n)
                .max_events(m)
                .open_faults(open_faults);
                for bytes in inputs {
                    let s = kit.scenario(bytes);
                    assert_eq!(s, Scenario::decode(bytes, n, m, open_faults));
                    assert!((1..=mqtwin::fuzzkit::MAX_CLIENTS).contains(&s.clients.len()));
                    let events = m.clamp(0, mqtwin::fuzzkit::MAX_EVENTS);
                    assert!(s.clients.iter().all(|c| c.len() <= events), "{s:?}");
                    // Runs (the echo handler gives up on a failing open:
                    // a violation, not a panic).
                    match kit.run(bytes) {
                        Err(v) if !open_faults => {
                            panic!("max_clients({n}), max_events({m}): {v}")
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    // A hand-written scenario with too many clients is refused, not run.
    let crowd = Scenario {
        seed: 0,
        faults: FaultPlan::new(0),
        clients: vec![Vec::new(); mqtwin::fuzzkit::MAX_CLIENTS + 1],
    };
    let v = kit(false).run_scenario(crowd).unwrap_err();
    assert!(v.message.contains("at most 64"), "{v}");
    // The stop limit, at its extremes: none at all fails a run that needs
    // a step after stop; the largest is no limit.
    for (time, steps) in [
        (Duration::ZERO, 0),
        (Duration::ZERO, 1),
        (Duration::MAX, u64::MAX),
    ] {
        let kit = kit(false).stop_limit(time, steps);
        let r = kit.run(&long[..300]);
        if steps == u64::MAX {
            assert!(r.is_ok(), "{r:?}");
        } else {
            let v = r.unwrap_err();
            assert!(v.message.starts_with("did not stop"), "{v}");
        }
    }
}

/// `fuzzkit::sleep` waits its whole duration in virtual time whatever the
/// twin does to queues: every open failing (an injected fault) or the
/// namespace out of queues (`queues_max`) cannot cut it short.
#[test]
fn sleep_always_waits_its_duration() {
    use mqtwin::fuzzkit::sleep;
    use mqtwin::{Limits, OpenOptions};
    let every_open_fails = Twin::builder()
        .deterministic(3)
        .faults(FaultPlan::new(4).open(1.0))
        .build();
    let no_queue_left = Twin::builder().deterministic(3).build();
    no_queue_left
        .set_limits(Limits {
            queues_max: 1,
            ..Limits::default()
        })
        .unwrap();
    let _only = no_queue_left
        .open("/only", &OpenOptions::read_write().create())
        .unwrap();
    for ns in [every_open_fails, no_queue_left] {
        let sim = ns.sim().unwrap();
        let (start, clock) = (ns.now(), ns.clone());
        let slept = sim.spawn(move || {
            sleep(&clock, Duration::from_secs(30));
            clock.now()
        });
        assert_eq!(slept.join().unwrap(), start + Duration::from_secs(30));
    }
    // An unlimited sleep saturates instead of overflowing the clock.
    let ns = Twin::builder().deterministic(5).build();
    let (sim, clock) = (ns.sim().unwrap(), ns.clone());
    let slept = sim.spawn(move || {
        sleep(&clock, Duration::MAX);
        clock.now()
    });
    assert_eq!(slept.join().unwrap(), mqtwin::deadline::latest());
}
