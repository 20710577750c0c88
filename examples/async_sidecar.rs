//! An async sidecar: a receiver loop on a tokio runtime that handles the
//! events an application sends over a message queue, does housekeeping when
//! the queue stays quiet, and stops on a "shutdown" message.
//!
//! ```text
//! cargo run --example async_sidecar --features tokio,tokio/rt
//! ```
//!
//! It runs on the twin, so it works anywhere (macOS too). To run it against
//! the real queues on Linux, pass `mqtwin::posix::Kernel` instead of the
//! twin to `run` (and `Kernel.unlink(QUEUE)` when done): nothing else changes.
//!
//! Unlike the other twin examples it is not deterministic, and cannot be made
//! so honestly: tokio tasks are not participants of a deterministic twin and
//! its idle timer runs on tokio's clock (see `docs/testing.md`).

use std::time::Duration;

use mqtwin::tokio::{AsyncBackend, AsyncQueue};
use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

const QUEUE: &str = "/sidecar-events";

/// What the sidecar did.
#[derive(Debug, Default)]
struct Report {
    events: Vec<(String, u32)>,
    idle_ticks: u32,
}

/// The receiver loop: one message at a time, housekeeping after `idle` of
/// silence (a timeout on tokio's clock, which takes nothing from the queue).
async fn sidecar<Q: AsyncBackend>(q: &AsyncQueue<Q>, idle: Duration) -> Result<Report, Error> {
    let mut report = Report::default();
    let mut buf = vec![0; q.get_ref().attributes()?.max_msg_len];
    loop {
        match q.receive_timeout(&mut buf, idle).await {
            Ok(r) if &buf[..r.len] == b"shutdown" => return Ok(report),
            Ok(r) => {
                let event = String::from_utf8_lossy(&buf[..r.len]).into_owned();
                println!("sidecar: {event:?} (priority {})", r.priority);
                report.events.push((event, r.priority));
            }
            Err(Error::TimedOut) => {
                // Flush logs, report health, ... here.
                report.idle_ticks += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The application (a plain thread with the blocking API) and the sidecar
/// (async, its own open description of the queue) on namespace `ns`.
fn run<N>(ns: N) -> Result<Report, Box<dyn std::error::Error>>
where
    N: Namespace,
    N::Queue: AsyncBackend,
{
    let opts = OpenOptions::read_write()
        .create()
        .capacity(8)
        .max_msg_len(128);
    let sidecar_end = ns.open(QUEUE, &opts)?;
    let app_end = ns.open(QUEUE, &OpenOptions::write_only())?;
    let app = std::thread::spawn(move || -> Result<(), Error> {
        for (i, event) in ["started", "request /a", "request /b"].iter().enumerate() {
            app_end.send(event.as_bytes(), 1)?;
            if i == 0 {
                // A quiet spell: the sidecar's idle timer fires.
                std::thread::sleep(Duration::from_millis(120));
            }
        }
        app_end.send(b"alert: disk 95% full", 10)?;
        app_end.send(b"shutdown", 0)
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        let q = AsyncQueue::new(sidecar_end)?;
        sidecar(&q, Duration::from_millis(50)).await
    })?;
    app.join().map_err(|_| "application thread panicked")??;
    Ok(report)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = std::time::Instant::now();
    let report = run(Twin::new())?;
    println!(
        "{} events, {} idle ticks, in {:?}",
        report.events.len(),
        report.idle_ticks,
        start.elapsed()
    );
    assert_eq!(report.events.len(), 4);
    assert!(report.idle_ticks >= 1);
    Ok(())
}
