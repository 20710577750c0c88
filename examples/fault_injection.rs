//! Fault injection: a retry loop proven against injected `EINTR` and `ENOMEM`.
//!
//! `send_with_retry` must survive what the kernel can throw at a send:
//! `EINTR` when a signal interrupts a blocked call, `ENOMEM` under memory
//! pressure. Neither can be provoked on demand against a real kernel; a twin
//! with a seeded `FaultPlan` injects them at the exact points the kernel would.
//!
//! The twin is *deterministic*: the producer and the consumer are
//! participants of a simulation that runs them one at a time in an order
//! drawn from the seed, so the faults land on the same calls every run and
//! the program prints the same line every time (try it). Another seed gives
//! another interleaving: `MQTWIN_SEED=7 cargo run --example fault_injection`.
//!
//! Run: `cargo run --example fault_injection`

use std::time::Duration;

use mqtwin::twin::{FaultPlan, Twin};
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// The code under test: retry transient errors, give up on anything else.
fn send_with_retry<Q: MessageQueue>(q: &Q, msg: &[u8], attempts: &mut u32) -> Result<(), Error> {
    loop {
        *attempts += 1;
        match q.send_timeout(msg, 0, Duration::from_secs(1)) {
            Err(Error::Interrupted | Error::OutOfMemory) => continue,
            other => return other,
        }
    }
}

/// One deterministic run: the summary line and the twin's trace.
pub fn run(seed: u64) -> Result<(String, String), Error> {
    // MQTWIN_SEED, when set, replaces the seed (for the faults as well).
    let seed = mqtwin::twin::seeds([seed]).next().unwrap_or(seed);
    // Half of all sends fail with ENOMEM; a third of the calls that would
    // block are interrupted.
    let plan = FaultPlan::new(seed).send(0.5).interrupt(0.3);
    let ns = Twin::builder()
        .deterministic(seed)
        .faults(plan)
        .trace()
        .build();
    let sim = ns.sim().expect("built deterministic");
    let opts = OpenOptions::read_write()
        .create()
        .capacity(3)
        .max_msg_len(32);
    let q = ns.open("/jobs", &opts)?;
    let rx = q.try_clone()?;

    let consumer = sim.spawn(move || {
        let mut buf = [0u8; 32];
        let mut got = Vec::new();
        while got.len() < 20 {
            match rx.receive_timeout(&mut buf, Duration::from_secs(5)) {
                Ok(m) => got.push(String::from_utf8_lossy(&buf[..m.len]).into_owned()),
                Err(Error::Interrupted) => continue, // retried as well
                Err(e) => return Err(e),
            }
        }
        Ok(got)
    });
    let producer = sim.spawn(move || {
        let mut attempts = 0;
        for i in 0..20 {
            send_with_retry(&q, format!("job {i}").as_bytes(), &mut attempts)?;
        }
        Ok::<u32, Error>(attempts)
    });
    let attempts = producer.join().expect("the run completes")?;
    let got = consumer.join().expect("the run completes")?;
    assert_eq!(got.len(), 20);
    let faults = ns.faults_injected();
    assert!(faults > 0);
    let summary = format!(
        "seed {}: 20 jobs delivered in {attempts} send attempts; {faults} faults injected \
         and survived; first received: {:?}, last: {:?}",
        sim.seed(),
        got[0],
        got[19]
    );
    Ok((summary, ns.trace_dump()))
}

#[allow(dead_code)] // tests/deterministic.rs includes this file as a module
fn main() -> Result<(), Error> {
    let (summary, trace) = run(2024)?;
    println!("{summary}");
    println!("({} calls traced)", trace.lines().count());
    Ok(())
}
