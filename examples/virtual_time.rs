//! Virtual time: a 30-second timeout path tested instantly.
//!
//! `wait_for_reply` gives up after 30 seconds and falls back to a default.
//! On the real clock a test of that fallback takes 30 seconds; on a
//! deterministic twin, time is virtual: it jumps to the next deadline when
//! every participant is waiting, so the test takes microseconds, and its
//! participants say exactly when things happen (`Sim::sleep`).
//!
//! Run: `cargo run --example virtual_time` (the wall time goes to stderr;
//! stdout is the same on every run).

use std::time::{Duration, Instant};

use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// The code under test: wait up to 30 s for a reply, else use a default.
fn wait_for_reply<Q: MessageQueue>(replies: &Q) -> Result<String, Error> {
    let mut buf = vec![0; replies.attributes()?.max_msg_len];
    match replies.receive_timeout(&mut buf, Duration::from_secs(30)) {
        Ok(m) => Ok(String::from_utf8_lossy(&buf[..m.len]).into_owned()),
        Err(Error::TimedOut) => Ok("default".to_string()),
        Err(e) => Err(e),
    }
}

/// One deterministic run (`MQTWIN_SEED` overrides `seed`): the lines the
/// example prints and the twin's trace.
pub fn run(seed: u64) -> Result<(String, String), Error> {
    let ns = Twin::builder().deterministic(seed).trace().build();
    let sim = ns.sim().expect("built deterministic");
    let replies = ns.open(
        "/replies",
        &OpenOptions::read_write()
            .create()
            .capacity(4)
            .max_msg_len(64),
    )?;
    let mut out = Vec::new();

    // 1. No reply: the fallback after exactly 30 virtual seconds.
    let started = ns.now();
    let q = replies.try_clone()?;
    let waiter = sim.spawn(move || (wait_for_reply(&q), q.now()));
    let (watcher_ns, s) = (ns.clone(), sim.clone());
    let watcher = sim.spawn(move || {
        watcher_ns.wait_blocked(1); // the caller is waiting...
        s.sleep(Duration::from_secs(29)); // ...29 s pass: still waiting
        watcher_ns.blocked()
    });
    let (outcome, at) = waiter.join().expect("the run completes");
    let outcome = outcome?;
    assert_eq!(watcher.join().expect("the run completes"), 1);
    let waited = at.duration_since(started).unwrap_or_default();
    out.push(format!(
        "no reply    -> {outcome:?} after {waited:?} of virtual time"
    ));
    assert_eq!(
        (outcome.as_str(), waited),
        ("default", Duration::from_secs(30))
    );

    // 2. A reply at 10 s wins, even if the clock then jumps far past the deadline.
    let q = replies.try_clone()?;
    let waiter = sim.spawn(move || wait_for_reply(&q));
    let (replier_ns, s) = (ns.clone(), sim.clone());
    let replier = sim.spawn(move || {
        replier_ns.wait_blocked(1);
        s.sleep(Duration::from_secs(10));
        replies.send(b"pong", 0)?;
        s.sleep(Duration::from_secs(3600));
        Ok::<(), Error>(())
    });
    let outcome = waiter.join().expect("the run completes")?;
    replier.join().expect("the run completes")?;
    out.push(format!("reply at 10s -> {outcome:?}"));
    assert_eq!(outcome, "pong");
    Ok((out.join("\n"), ns.trace_dump()))
}

#[allow(dead_code)] // tests/determinism.rs includes this file as a module
fn main() -> Result<(), Error> {
    let wall = Instant::now();
    let (out, _trace) = run(2024)?;
    println!("{out}");
    eprintln!(
        "both 30-second paths tested in {:?} of wall time",
        wall.elapsed()
    );
    Ok(())
}
