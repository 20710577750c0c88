//! The key-value service of `examples/protocol/mod.rs` under
//! `mqtwin::fuzzkit` (feature `fuzzkit`), through the `protocol_kit` fuzz
//! target's own model (`examples/protocol/kit.rs`): generated inputs
//! over every configuration pass and reach every path the model checks;
//! planted server bugs are found and replay from their bytes; hand-written
//! scenarios pin expiry and reconnection.

#[path = "../examples/protocol/mod.rs"]
mod protocol;
#[path = "../examples/protocol/kit.rs"]
mod protocol_kit;

#[path = "common/inputs.rs"]
mod inputs;
use inputs::input;

use std::sync::atomic::Ordering;
use std::time::Duration;

use mqtwin::fuzzkit::{Event, Scenario};
use mqtwin::twin::FaultPlan;
use protocol_kit::{kit, Bug, COVERAGE};

/// 256 inputs, one per configuration byte: no violation, and together they
/// reach every outcome the model tells apart.
#[test]
fn every_configuration_passes_and_every_path_is_reached() {
    let mut requests = 0;
    for setup in 0..=255u8 {
        let bytes = input(u64::from(setup) + 7, 48 + usize::from(setup) * 5 % 400);
        let report = kit(setup, None)
            .run(&bytes)
            .unwrap_or_else(|v| panic!("setup {setup:#04x}: {v}"));
        requests += report.requests;
    }
    assert!(requests > 1000, "{requests} requests");
    let c = &COVERAGE;
    for (what, n) in [
        ("replies read", &c.read),
        ("replies dropped: reply queue full", &c.full),
        ("replies dropped: no reply queue", &c.no_queue),
        ("replies dropped: open failed", &c.failed),
        ("BAD_REQUEST replies", &c.bad_request),
        ("unaddressable frames", &c.unaddressable),
        ("replies given up on", &c.given_up),
        ("failed connects", &c.connect_failed),
        ("full request queue at send", &c.request_queue_full),
    ] {
        let n = n.load(Ordering::Relaxed);
        assert!(n > 0, "no run reached: {what}");
        eprintln!("{what}: {n}");
    }
}

/// A planted bug is found within a few hundred inputs, names what broke,
/// replays identically from its bytes, and the same bytes pass on the real
/// server.
fn find(bug: Bug, expected: &str) {
    let found = (0..300u64).find_map(|i| {
        let bytes = input(1000 + i, 200);
        kit(bytes[0], Some(bug))
            .run(&bytes[1..])
            .err()
            .map(|v| (bytes, v))
    });
    let (bytes, v) = found.unwrap_or_else(|| panic!("{bug:?} not found in 300 inputs"));
    assert!(v.message.contains(expected), "{bug:?}: {v}");
    assert_eq!(kit(bytes[0], Some(bug)).run(&bytes[1..]).unwrap_err(), v);
    if let Err(v) = kit(bytes[0], None).run(&bytes[1..]) {
        panic!("the real server fails the input that found {bug:?}: {v}");
    }
}

#[test]
fn a_duplicated_reply_is_found() {
    find(Bug::DuplicateReply, "stray or duplicate");
}

#[test]
fn a_lost_request_is_found() {
    find(Bug::LoseRequest, "never served");
}

/// Request bytes of the model: kind, key, urgent, then the kind's own bytes.
fn put(key: u8, ttl_index: u8) -> Event {
    Event::Request(vec![2, key, 0, 0, ttl_index])
}
fn get(key: u8) -> Event {
    Event::Request(vec![4, key, 0])
}
fn del(key: u8) -> Event {
    Event::Request(vec![5, key, 0])
}

/// A key with a 100 ms TTL is there at once and gone after a second of
/// virtual time, for GET and DEL alike; its owner's restart keeps the model.
#[test]
fn expiry_and_restart() {
    let scenario = Scenario {
        seed: 1,
        faults: FaultPlan::new(2).send(0.1).interrupt(0.1),
        clients: vec![vec![
            put(0, 2),
            get(0),
            Event::Wait(Duration::from_secs(1)),
            get(0),
            put(0, 2),
            Event::Restart,
            Event::Wait(Duration::from_secs(1)),
            del(0),
            put(1, 0),
            Event::Restart,
            get(1),
        ]],
    };
    let report = kit(0x10, None).run_scenario(scenario).unwrap();
    assert_eq!(report.requests, 7);
    assert!(report.elapsed >= Duration::from_secs(2), "{report:?}");
}

/// The fuzz target's entry point takes any bytes, even none.
#[test]
fn the_fuzz_entry_point_takes_any_bytes() {
    protocol_kit::fuzz(&[]);
    protocol_kit::fuzz(&[0xff]);
    protocol_kit::fuzz(&input(3, 300));
}
