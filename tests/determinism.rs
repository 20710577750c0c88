//! Issue 9: same seed + same input ⇒ the same output and trace, bit for bit,
//! for every example that runs on the twin and every scenario of
//! `tests/scenarios.rs`.
//!
//! [`cases`] is a table of `(name, fn(seed) -> String)`: each case builds a
//! deterministic twin seeded with `seed`, runs its threads as participants,
//! and returns what it prints followed by the twin's `trace_dump()`. Every
//! case runs twice for each of several seeds (`MQTWIN_SEED=<n>` runs that
//! seed alone), and the two strings must be equal; a mismatch names the
//! case, the seed and the first differing line. The multi-participant cases
//! must also give different traces for different seeds, proof that the
//! interleavings really vary (and that the comparison can fail).
//!
//! Adding a case is one line in [`cases`] (with a `#[path]` include of an
//! example that exposes `run(seed)`). The included `examples/unit_test.rs`
//! brings its own five `#[test]`s along; they run here too.
//!
//! Not covered, and why:
//!
//! - `examples/async_sidecar.rs`: its receiver is a tokio task and its
//!   idle timer runs on tokio's clock. Tokio tasks are not participants of
//!   the simulation (a runtime parks its thread outside the twin, which
//!   would stall the run) and tokio's clock is not the twin's, so its
//!   interleaving and its idle ticks cannot be replayed from a seed.
//! - `examples/sender.rs` and `examples/receiver.rs`: two processes on the
//!   kernel's queues; the kernel and the OS scheduler are not simulated.
//!   Their shared code (`examples/hello/mod.rs`) is covered by `twin_demo`.
//! - The kernel instantiations of the scenarios, for the same reason; their
//!   deterministic instantiation is what runs here.

use std::time::Instant;

use mqtwin::twin::seeds;

#[path = "../examples/fault_injection.rs"]
mod fault_injection;
#[path = "../examples/notify.rs"]
mod notify;
#[path = "../examples/protocol_server.rs"]
mod protocol_server;
#[path = "../examples/twin_demo.rs"]
mod twin_demo;
#[path = "../examples/unit_test.rs"]
mod unit_test;
#[path = "../examples/virtual_time.rs"]
mod virtual_time;

#[macro_use]
#[path = "scenarios"]
mod scenarios {
    #[macro_use]
    pub mod harness;
    #[macro_use]
    pub mod cases;
}

/// A case: its name, and one run for a seed (what it prints, then the
/// twin's trace).
type Case = (&'static str, fn(u64) -> String);

/// Every case: the examples, then the scenarios.
fn cases() -> Vec<Case> {
    let mut cases: Vec<Case> = vec![
        ("example fault_injection", |seed| {
            let (summary, trace) = fault_injection::run(seed).unwrap();
            format!("{summary}\n{trace}")
        }),
        ("example twin_demo", |seed| {
            let demo = twin_demo::run(seed, &twin_demo::defaults());
            assert!(demo.ok, "{}", demo.output);
            format!("{}\n{}", demo.output, demo.trace)
        }),
        ("example virtual_time", |seed| {
            let (out, trace) = virtual_time::run(seed).unwrap();
            format!("{out}\n{trace}")
        }),
        ("example notify", |seed| {
            let (out, trace) = notify::run(seed).unwrap();
            format!("{out}\n{trace}")
        }),
        ("example unit_test", |seed| {
            let (out, traces, all) = unit_test::run(seed);
            assert!(all, "{out}");
            format!("{out}\n{traces}")
        }),
        ("example protocol_server", |seed| {
            let (log, result, trace) = protocol_server::run(seed);
            assert_eq!(result, Ok(()), "{log}");
            format!("{log}\n{trace}")
        }),
    ];
    macro_rules! scenario_cases {
        ($($name:ident),* $(,)?) => {
            $(cases.push((
                concat!("scenario ", stringify!($name)),
                |seed| scenarios::harness::run_deterministic(seed, scenarios::cases::$name),
            ));)*
        };
    }
    for_each_scenario!(scenario_cases);
    cases
}

/// Cases with several participants whose traces must differ between seeds.
const VARYING: &[&str] = &[
    "example fault_injection",
    "example twin_demo",
    "example protocol_server",
    "scenario timeouts_expire_among_receivers",
    "scenario send_racing_try_receive_while_receiver_blocked",
];

/// The seeds every case runs under (or `MQTWIN_SEED` alone).
fn the_seeds() -> Vec<u64> {
    seeds([0, 1, 2, 3, 7, 42, 2024, 0xdead_beef]).collect()
}

/// Where `a` and `b` first differ, as a message.
fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    for n in 1.. {
        match (la.next(), lb.next()) {
            (Some(x), Some(y)) if x == y => continue,
            (None, None) => break,
            (x, y) => {
                return format!(
                    "line {n}:\n  first run:  {}\n  second run: {}",
                    x.unwrap_or("<end>"),
                    y.unwrap_or("<end>")
                )
            }
        }
    }
    "only in line endings".to_owned()
}

#[test]
fn every_example_and_scenario_is_deterministic() {
    let seeds = the_seeds();
    let mut varied = Vec::new();
    for (name, case) in cases() {
        let started = Instant::now();
        let mut traces = Vec::new();
        for &seed in &seeds {
            let first = case(seed);
            assert!(
                first.lines().any(|l| l.starts_with("#0 ")),
                "{name}, seed {seed}: no trace in its output:\n{first}"
            );
            let second = case(seed);
            assert!(
                first == second,
                "{name}, seed {seed}: two runs differ at {}\n  replay: MQTWIN_SEED={seed} cargo test --test determinism",
                first_difference(&first, &second)
            );
            traces.push(first);
        }
        traces.sort();
        traces.dedup();
        if traces.len() > 1 {
            varied.push(name);
        }
        eprintln!(
            "{name}: {} seed(s) x 2 runs identical, {} distinct, {:?}",
            seeds.len(),
            traces.len(),
            started.elapsed()
        );
    }
    if seeds.len() > 1 {
        for name in VARYING {
            assert!(
                varied.contains(name),
                "{name}: every seed gave the same trace; the interleavings do not vary"
            );
        }
    }
}

#[test]
fn a_difference_is_reported_with_its_line() {
    let report = first_difference("a\nb\nc", "a\nx\nc");
    assert!(report.starts_with("line 2:"), "{report}");
    assert!(report.contains("b") && report.contains("x"), "{report}");
    assert!(first_difference("a", "a\nb").contains("<end>"));
}

#[test]
fn every_case_is_named_once() {
    let mut names: Vec<_> = cases().into_iter().map(|c| c.0).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n);
    let scenarios = names.iter().filter(|n| n.starts_with("scenario ")).count();
    assert_eq!(scenarios, 10, "every scenario of tests/scenarios.rs");
    assert!(n - scenarios >= 5, "the five twin examples, at least");
}
