//! Virtual time: a 30-second timeout path tested instantly.
//!
//! `wait_for_reply` gives up after 30 seconds and falls back to a default.
//! On the real clock a test of that fallback takes 30 seconds; on a twin with
//! a virtual clock it takes microseconds, and the test decides exactly when
//! the deadline passes.
//!
//! Run: `cargo run --example virtual_time`

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

fn main() -> Result<(), Error> {
    let ns = Twin::builder().virtual_time().build();
    let clock = ns.virtual_clock().expect("built with virtual time");
    let replies = ns.open(
        "/replies",
        &OpenOptions::read_write()
            .create()
            .capacity(4)
            .max_msg_len(64),
    )?;
    let wall = Instant::now();

    // 1. No reply: the fallback after exactly 30 virtual seconds.
    let started = clock.now();
    let outcome = std::thread::scope(|s| {
        let waiter = s.spawn(|| wait_for_reply(&replies));
        ns.wait_blocked(1); // the caller is waiting...
        clock.advance(Duration::from_secs(29)); // ...29 s pass: still waiting
        assert_eq!(ns.blocked(), 1);
        clock.advance(Duration::from_secs(1)); // the 30th second: timeout
        waiter.join().expect("no panic")
    })?;
    let waited = clock.now().duration_since(started).unwrap_or_default();
    println!("no reply    -> {outcome:?} after {waited:?} of virtual time");
    assert_eq!(outcome, "default");

    // 2. A reply at 10 s wins, even if the test then jumps far past the deadline.
    let outcome = std::thread::scope(|s| {
        let waiter = s.spawn(|| wait_for_reply(&replies));
        ns.wait_blocked(1);
        clock.advance(Duration::from_secs(10));
        replies.send(b"pong", 0)?;
        clock.advance(Duration::from_secs(3600));
        waiter.join().expect("no panic")
    })?;
    println!("reply at 10s -> {outcome:?}");
    assert_eq!(outcome, "pong");

    println!(
        "both 30-second paths tested in {:?} of wall time",
        wall.elapsed()
    );
    Ok(())
}
