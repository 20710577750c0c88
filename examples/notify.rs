//! Notification: the three forms of `mq_notify`, on the twin.
//!
//! A registration fires once, when a message arrives in an *empty* queue and
//! no receiver is already waiting for it. The same code runs on the kernel
//! backend (`mqtwin::posix::Kernel`), where `Notify::Signal` queues a real
//! signal to the process; on the twin it lands in the simulated process's
//! signal inbox (`Twin::take_signals`).
//!
//! Run: `cargo run --example notify`

use std::sync::mpsc;
use std::time::Duration;

use mqtwin::twin::{Credentials, Twin};
use mqtwin::{Error, MessageQueue, Namespace, Notify, OpenOptions};

fn main() -> Result<(), Error> {
    // umask 0, so the 0o622 mode below is kept as given.
    let ns = Twin::with_credentials(Credentials {
        umask: 0,
        ..Credentials::default()
    });
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
    println!(
        "none:   registration consumed silently; registering again: {:?}",
        consumer.notify(Notify::None)
    );
    consumer.cancel_notify()?;

    // 2. Notify::Signal: SIGUSR1 with a value; the kernel fills in the sender.
    consumer.notify(Notify::Signal {
        signal: 10,
        value: 0xfeed,
    })?;
    producer.send(b"two", 0)?;
    let sig = ns.take_signals().pop().expect("a signal was delivered");
    println!(
        "signal: signo {} code {} (SI_MESGQ) value {:#x} from pid {} uid {}",
        sig.signal, sig.code, sig.value, sig.pid, sig.uid
    );
    assert_eq!((sig.pid, sig.uid), (producer_process.pid(), 2000));
    // Non-empty queue: a second send fires nothing (and it was one-shot anyway).
    producer.send(b"three", 0)?;
    assert!(ns.take_signals().is_empty());
    consumer.receive(&mut buf)?;
    consumer.receive(&mut buf)?;

    // 3. Notify::Thread: a callback on a new thread, like SIGEV_THREAD.
    let (tx, rx) = mpsc::channel();
    consumer.notify(Notify::thread(move || {
        let _ = tx.send(std::thread::current().name().map(str::to_owned));
    }))?;
    producer.send(b"four", 0)?;
    let thread = rx
        .recv_timeout(Duration::from_secs(2))
        .expect("callback ran");
    println!("thread: callback ran on thread {thread:?}");
    println!("all three forms fired exactly once");
    Ok(())
}
