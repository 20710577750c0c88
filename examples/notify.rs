//! Notification: the three forms of `mq_notify`, on the twin.
//!
//! A registration fires once, when a message arrives in an *empty* queue and
//! no receiver is already waiting for it. The same code runs on the kernel
//! backend (`mqtwin::posix::Kernel`), where `Notify::Signal` queues a real
//! signal to the process; on the twin it lands in the simulated process's
//! signal inbox (`Twin::take_signals`).
//!
//! The twin is deterministic: the story runs as a participant of a seeded
//! simulation, and so does the `SIGEV_THREAD` callback, so every run prints
//! the same lines.
//!
//! Run: `cargo run --example notify`

use std::sync::mpsc;

use mqtwin::twin::{Credentials, Twin};
use mqtwin::{Error, MessageQueue, Namespace, Notify, OpenOptions};

/// The three forms, in one participant; returns the lines to print.
fn story(ns: &Twin, callback_ran: mpsc::Sender<String>) -> Result<Vec<String>, Error> {
    let mut out = Vec::new();
    // Mode 0o622: the producer (another user) may write.
    let consumer = ns.open(
        "/events",
        &OpenOptions::read_only()
            .create()
            .mode(0o622)
            .capacity(4)
            .max_msg_len(64),
    )?;
    let producer_process = ns.process(Credentials::user(2000, 2000));
    let producer = producer_process.open("/events", &OpenOptions::write_only())?;
    let mut buf = [0u8; 64];

    // 1. Notify::None: nothing is delivered, but the arrival consumes it.
    consumer.notify(Notify::None)?;
    assert_eq!(consumer.notify(Notify::None), Err(Error::Busy));
    producer.send(b"one", 0)?;
    consumer.receive(&mut buf)?;
    out.push(format!(
        "none:   registration consumed silently; registering again: {:?}",
        consumer.notify(Notify::None)
    ));
    consumer.cancel_notify()?;

    // 2. Notify::Signal: SIGUSR1 with a value; the kernel fills in the sender.
    consumer.notify(Notify::Signal {
        signal: 10,
        value: 0xfeed,
    })?;
    producer.send(b"two", 0)?;
    let sig = ns.take_signals().pop().expect("a signal was delivered");
    out.push(format!(
        "signal: signo {} code {} (SI_MESGQ) value {:#x} from pid {} uid {}",
        sig.signal, sig.code, sig.value, sig.pid, sig.uid
    ));
    assert_eq!((sig.pid, sig.uid), (producer_process.pid(), 2000));
    // Non-empty queue: a second send fires nothing (and it was one-shot anyway).
    producer.send(b"three", 0)?;
    assert!(ns.take_signals().is_empty());
    consumer.receive(&mut buf)?;
    consumer.receive(&mut buf)?;

    // 3. Notify::Thread: a callback on a new thread, like SIGEV_THREAD (on a
    // deterministic twin, a new participant).
    consumer.notify(Notify::thread(move || {
        let _ = callback_ran.send("the callback ran".to_owned());
    }))?;
    producer.send(b"four", 0)?;
    Ok(out)
}

/// One deterministic run (`MQTWIN_SEED` overrides `seed`): the lines the
/// example prints and the twin's trace.
pub fn run(seed: u64) -> Result<(String, String), Error> {
    // umask 0, so the 0o622 mode is kept as given.
    let ns = Twin::builder()
        .credentials(Credentials {
            umask: 0,
            ..Credentials::default()
        })
        .deterministic(seed)
        .trace()
        .build();
    let sim = ns.sim().expect("built deterministic");
    let (tx, rx) = mpsc::channel();
    let app = ns.clone();
    let mut out = sim
        .spawn(move || story(&app, tx))
        .join()
        .expect("the run completes")?;
    // The run ended when every participant had, the callback's included.
    let ran = rx.try_recv().expect("the callback ran");
    assert!(rx.try_recv().is_err(), "exactly once");
    out.push(format!("thread: {ran}, as a participant of the simulation"));
    out.push("all three forms fired exactly once".to_owned());
    Ok((out.join("\n"), ns.trace_dump()))
}

#[allow(dead_code)] // tests/determinism.rs includes this file as a module
fn main() -> Result<(), Error> {
    let (out, _trace) = run(2024)?;
    println!("{out}");
    Ok(())
}
