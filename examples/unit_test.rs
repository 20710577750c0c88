//! How to unit-test your own queue-using code with the twin.
//!
//! The function under test, [`forward_urgent`], is ordinary application code:
//! it drains an input queue and forwards the messages whose priority is at
//! least a threshold to an output queue. It is written against the
//! [`Namespace`] trait, so production passes it the kernel
//! (`mqtwin::posix::Kernel`, Linux) and tests pass it a fresh
//! [`Twin`]: no kernel queues, no unique names, no cleanup, any OS.
//! (`cargo run` runs its checks on deterministic twins, each check a
//! participant of a seeded simulation, so it prints the same every run.)
//!
//! ```text
//! cargo run --example unit_test     # runs a few checks and prints them
//! cargo test --example unit_test    # the same kind of checks as #[test]s
//! ```
//!
//! (`Cargo.toml` declares this example with `test = true`, so a plain
//! `cargo test` runs its tests too.)
//!
//! The tests at the bottom show the usual patterns: set up queues, call the
//! function, compare whole `Result`s with `assert_eq!`; a full output queue
//! ([`Error::WouldBlock`]); two simulated users and the permission check; a
//! downstream consumer blocked in `receive`, made deterministic with
//! [`Twin::wait_blocked`] instead of sleeps.

use std::process::ExitCode;

use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// What one [`forward_urgent`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Forwarded {
    /// Urgent messages sent on to the output queue.
    pub forwarded: usize,
    /// Messages below the threshold, consumed and dropped.
    pub skipped: usize,
    /// Urgent messages dropped because the output queue was full.
    pub overflowed: usize,
}

/// Drains the queue `input` (without waiting) and forwards every message
/// with priority ≥ `threshold` to the queue `output` (created if missing),
/// keeping its priority. Returns what it did.
///
/// It never blocks: a message that finds the output queue full
/// ([`Error::WouldBlock`] from `try_send`) is dropped and counted in
/// [`Forwarded::overflowed`] — a lossy alert forwarder must not stall its
/// input.
///
/// # Errors
///
/// Errors opening either queue (e.g. [`Error::NotFound`] for a missing
/// input, [`Error::PermissionDenied`]), and any receive or send error other
/// than a full output queue.
pub fn forward_urgent<N: Namespace>(
    ns: &N,
    input: &str,
    output: &str,
    threshold: u32,
) -> Result<Forwarded, Error> {
    let rx = ns.open(input, &OpenOptions::read_only())?;
    let tx = ns.open(output, &OpenOptions::write_only().create())?;
    let mut buf = vec![0u8; rx.attributes()?.max_msg_len];
    let mut done = Forwarded::default();
    loop {
        let got = match rx.try_receive(&mut buf) {
            Ok(got) => got,
            Err(Error::WouldBlock) => return Ok(done), // drained
            Err(e) => return Err(e),
        };
        if got.priority < threshold {
            done.skipped += 1;
            continue;
        }
        match tx.try_send(&buf[..got.len], got.priority) {
            Ok(()) => done.forwarded += 1,
            Err(Error::WouldBlock) => done.overflowed += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Fills `name` (created if missing) with `(message, priority)` pairs.
fn fill<N: Namespace>(ns: &N, name: &str, msgs: &[(&str, u32)]) -> Result<(), Error> {
    let q = ns.open(name, &OpenOptions::write_only().create())?;
    for (msg, priority) in msgs {
        q.send(msg.as_bytes(), *priority)?;
    }
    Ok(())
}

/// Empties `name` without waiting, returning `(message, priority)` pairs in
/// the order they come out.
fn drain<N: Namespace>(ns: &N, name: &str) -> Result<Vec<(String, u32)>, Error> {
    let q = ns.open(name, &OpenOptions::read_only())?;
    let mut buf = vec![0u8; q.attributes()?.max_msg_len];
    let mut out = Vec::new();
    loop {
        match q.try_receive(&mut buf) {
            Ok(r) => out.push((
                String::from_utf8_lossy(&buf[..r.len]).into_owned(),
                r.priority,
            )),
            Err(Error::WouldBlock) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

/// A check's body: runs as a participant of a fresh deterministic twin,
/// writing what it sees to the lines; `Ok(true)` when all is as expected.
type Scenario = fn(&Twin, &mut Vec<String>) -> Result<bool, Error>;

/// Runs `scenario` on a fresh deterministic twin seeded with `seed`
/// (`MQTWIN_SEED` overrides it), writing its title, then ✓ or ✗, to `out`
/// and the twin's trace to `traces`.
fn check(
    seed: u64,
    title: &str,
    scenario: Scenario,
    out: &mut Vec<String>,
    traces: &mut String,
) -> bool {
    out.push(format!("• {title}"));
    let ns = Twin::builder().deterministic(seed).trace().build();
    let sim = ns.sim().expect("built deterministic");
    let twin = ns.clone();
    let (result, lines) = sim
        .spawn(move || {
            let mut lines = Vec::new();
            (scenario(&twin, &mut lines), lines)
        })
        .join()
        .unwrap_or_else(|e| panic!("{e}"));
    out.extend(lines);
    let pass = match result {
        Ok(pass) => pass,
        Err(e) => {
            out.push(format!("    unexpected error: {e}"));
            false
        }
    };
    out.push(format!(
        "  {}\n",
        if pass {
            "✓ as expected"
        } else {
            "✗ NOT as expected"
        }
    ));
    traces.push_str(&ns.trace_dump());
    pass
}

/// Runs a few checks, each on a fresh deterministic twin seeded with
/// `seed`: the lines the example prints, the twins' traces, and whether
/// every check passed.
pub fn run(seed: u64) -> (String, String, bool) {
    let mut out =
        vec!["Checking forward_urgent(ns, \"/in\", \"/out\", 5) on fresh twins:\n".to_owned()];
    let mut traces = String::new();
    let checks: [(&str, Scenario); 4] = [
        (
            "urgent messages are forwarded, highest priority first",
            |ns, out| {
                let input = [
                    ("disk 81%", 1),
                    ("disk full", 9),
                    ("fan slow", 5),
                    ("cpu 60%", 2),
                ];
                fill(ns, "/in", &input)?;
                out.push(format!("    /in:    {input:?}"));
                let report = forward_urgent(ns, "/in", "/out", 5)?;
                let got = drain(ns, "/out")?;
                out.push(format!("    report: {report:?}"));
                out.push(format!("    /out:   {got:?}"));
                let expected = [("disk full".to_owned(), 9), ("fan slow".to_owned(), 5)];
                Ok(report
                    == Forwarded {
                        forwarded: 2,
                        skipped: 2,
                        overflowed: 0,
                    }
                    && got == expected)
            },
        ),
        (
            "a full output queue (capacity 1) drops what does not fit",
            |ns, out| {
                ns.open(
                    "/out",
                    &OpenOptions::read_write()
                        .create()
                        .capacity(1)
                        .max_msg_len(64),
                )?;
                fill(ns, "/in", &[("a", 7), ("b", 7), ("c", 7)])?;
                let report = forward_urgent(ns, "/in", "/out", 5)?;
                out.push(format!("    report: {report:?}"));
                Ok(report
                    == Forwarded {
                        forwarded: 1,
                        skipped: 0,
                        overflowed: 2,
                    })
            },
        ),
        (
            "a missing input queue is an error, not an empty drain",
            |ns, out| {
                let result = forward_urgent(ns, "/in", "/out", 5);
                out.push(format!("    result: {result:?}"));
                Ok(result == Err(Error::NotFound { name: "/in".into() }))
            },
        ),
        (
            "a consumer blocked in receive gets the forwarded message",
            |ns, out| {
                // The consumer is another participant; the seed decides
                // who runs when, and wait_blocked (not a sleep) waits for it.
                fill(ns, "/in", &[("page the on-call", 9)])?;
                let q = ns.open("/out", &OpenOptions::read_only().create())?;
                let sim = ns.sim().expect("deterministic");
                let consumer = sim.spawn(move || {
                    let mut buf = vec![0u8; 8192];
                    q.receive(&mut buf).map(|r| {
                        (
                            String::from_utf8_lossy(&buf[..r.len]).into_owned(),
                            r.priority,
                        )
                    })
                });
                ns.wait_blocked(1);
                let report = forward_urgent(ns, "/in", "/out", 5)?;
                let got = consumer.join().expect("the run completes")?;
                out.push(format!("    report: {report:?}; the consumer got {got:?}"));
                Ok(report.forwarded == 1 && got == ("page the on-call".to_owned(), 9))
            },
        ),
    ];
    let mut all = true;
    for (title, scenario) in checks {
        all &= check(seed, title, scenario, &mut out, &mut traces);
    }
    (out.join("\n"), traces, all)
}

/// Runs the checks and prints what happened.
#[allow(dead_code)] // tests/determinism.rs includes this file as a module
fn main() -> ExitCode {
    let (out, _traces, all) = run(2024);
    println!("{out}");
    if all {
        println!("All checks passed. The same checks as #[test]s: cargo test --example unit_test");
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtwin::twin::Credentials;

    /// Owned `(message, priority)` pairs, for comparing with `drain`.
    fn msgs(pairs: &[(&str, u32)]) -> Vec<(String, u32)> {
        pairs.iter().map(|(m, p)| (m.to_string(), *p)).collect()
    }

    #[test]
    fn forwards_urgent_messages_in_priority_order() {
        let ns = Twin::new(); // a fresh namespace: no names shared with other tests
        fill(
            &ns,
            "/in",
            &[("low", 1), ("first", 9), ("mid", 5), ("second", 9)],
        )
        .unwrap();

        assert_eq!(
            forward_urgent(&ns, "/in", "/out", 5),
            Ok(Forwarded {
                forwarded: 3,
                skipped: 1,
                overflowed: 0
            })
        );
        // Highest priority first; equal priorities keep their send order.
        assert_eq!(
            drain(&ns, "/out"),
            Ok(msgs(&[("first", 9), ("second", 9), ("mid", 5)]))
        );
        assert_eq!(drain(&ns, "/in"), Ok(vec![]), "the input is drained");
    }

    #[test]
    fn full_output_queue_would_block_and_is_counted() {
        let ns = Twin::new();
        // The output exists already, with room for 2 messages.
        let out = ns
            .open(
                "/out",
                &OpenOptions::read_write()
                    .create()
                    .capacity(2)
                    .max_msg_len(64),
            )
            .unwrap();
        fill(&ns, "/in", &[("a", 8), ("b", 7), ("c", 6)]).unwrap();

        assert_eq!(
            forward_urgent(&ns, "/in", "/out", 5),
            Ok(Forwarded {
                forwarded: 2,
                skipped: 0,
                overflowed: 1
            })
        );
        // What forward_urgent ran into: the full queue refuses a non-waiting send.
        assert_eq!(out.try_send(b"d", 6), Err(Error::WouldBlock));
        assert_eq!(drain(&ns, "/out"), Ok(msgs(&[("a", 8), ("b", 7)])));
    }

    #[test]
    fn missing_input_queue_is_not_found() {
        let ns = Twin::new();
        assert_eq!(
            forward_urgent(&ns, "/in", "/out", 5),
            Err(Error::NotFound { name: "/in".into() })
        );
    }

    #[test]
    fn another_user_needs_read_permission_on_the_input() {
        // Two simulated users in one namespace: alice owns the input queue,
        // bob runs the forwarder.
        let alice = Twin::with_credentials(Credentials::user(1001, 1001));
        let bob = alice.process(Credentials::user(1002, 1002));

        // Mode 0o600: only alice may read.
        alice
            .open("/in", &OpenOptions::write_only().create().mode(0o600))
            .unwrap();
        assert_eq!(
            forward_urgent(&bob, "/in", "/out", 5),
            Err(Error::PermissionDenied { name: "/in".into() })
        );

        // Mode 0o604: others may read, so bob's forwarder works.
        alice
            .open("/in2", &OpenOptions::write_only().create().mode(0o604))
            .unwrap();
        fill(&alice, "/in2", &[("alert", 9)]).unwrap();
        assert_eq!(
            forward_urgent(&bob, "/in2", "/out", 5),
            Ok(Forwarded {
                forwarded: 1,
                skipped: 0,
                overflowed: 0
            })
        );
        // bob created /out (mode 0o600 minus umask), so alice cannot read it...
        assert_eq!(
            drain(&alice, "/out"),
            Err(Error::PermissionDenied {
                name: "/out".into()
            })
        );
        // ...but bob can.
        assert_eq!(drain(&bob, "/out"), Ok(msgs(&[("alert", 9)])));
    }

    #[test]
    fn a_waiting_consumer_gets_the_forwarded_message() {
        let ns = Twin::new();
        fill(&ns, "/in", &[("page the on-call", 9)]).unwrap();
        let out = ns.open("/out", &OpenOptions::read_only().create()).unwrap();

        std::thread::scope(|s| {
            let consumer = s.spawn(|| {
                let mut buf = vec![0u8; 8192];
                out.receive(&mut buf).map(|r| {
                    (
                        String::from_utf8_lossy(&buf[..r.len]).into_owned(),
                        r.priority,
                    )
                })
            });
            // No sleep: wait until the consumer is really blocked in receive.
            ns.wait_blocked(1);
            assert_eq!(
                forward_urgent(&ns, "/in", "/out", 5),
                Ok(Forwarded {
                    forwarded: 1,
                    skipped: 0,
                    overflowed: 0
                })
            );
            assert_eq!(
                consumer.join().unwrap(),
                Ok(("page the on-call".to_owned(), 9))
            );
        });
    }
}
