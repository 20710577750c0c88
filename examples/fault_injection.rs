//! Fault injection: a retry loop proven against injected `EINTR` and `ENOMEM`.
//!
//! `send_with_retry` must survive what the kernel can throw at a send:
//! `EINTR` when a signal interrupts a blocked call, `ENOMEM` under memory
//! pressure. Neither can be provoked on demand against a real kernel; a twin
//! with a seeded `FaultPlan` injects them at the exact points the kernel would,
//! reproducibly for a given seed.
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

fn main() -> Result<(), Error> {
    let seed = 2024;
    // Half of all sends fail with ENOMEM; a third of the calls that would
    // block are interrupted.
    let plan = FaultPlan::new(seed).send(0.5).interrupt(0.3);
    let ns = Twin::builder().faults(plan).build();
    let opts = OpenOptions::read_write()
        .create()
        .capacity(3)
        .max_msg_len(32);
    let q = ns.open("/jobs", &opts)?;

    let mut attempts = 0;
    let sent = std::thread::scope(|s| {
        let consumer = s.spawn(|| {
            let mut buf = [0u8; 32];
            let mut got = Vec::new();
            while got.len() < 20 {
                match q.receive_timeout(&mut buf, Duration::from_secs(5)) {
                    Ok(m) => got.push(String::from_utf8_lossy(&buf[..m.len]).into_owned()),
                    Err(Error::Interrupted) => continue, // retried as well
                    Err(e) => return Err(e),
                }
            }
            Ok(got)
        });
        for i in 0..20 {
            send_with_retry(&q, format!("job {i}").as_bytes(), &mut attempts)?;
        }
        consumer.join().expect("no panic")
    })?;

    assert_eq!(sent.len(), 20);
    println!(
        "seed {seed}: 20 jobs delivered in {attempts} send attempts; {} faults injected and survived",
        ns.faults_injected()
    );
    assert!(ns.faults_injected() > 0);
    Ok(())
}
