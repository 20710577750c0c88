//! Kernel backend: a long run of thread notifications leaves the process's
//! descriptors, threads and memory where they were (docs/semantics.md Y19).
//!
//! Each cycle registers a `Notify::Thread` callback, sends one message (the
//! notification fires) and receives it, so never more than one registration
//! is live. One variant waits for each callback before the next cycle, the
//! other never waits (a burst: the callbacks run while the next cycles go
//! on). After a warm-up the test samples the open descriptors
//! (`/proc/self/fd`), the threads (`Threads:` of `/proc/self/status`) and the
//! resident memory (`VmRSS:`) and fails if any of them grows by more than a
//! small absolute slack. Before the fix, every 64 callbacks the reader had not
//! yet caught up with added a socket and a reader thread for the life of the
//! process (5,000 cycles: +30 of each).
//!
//! Its own test binary, so no other test's threads or descriptors come and
//! go while it counts; its two tests take turns (one lock).
//! `MQTWIN_NOTIFY_CYCLES` sets the number of measured cycles (default
//! 100,000).

#![cfg(all(target_os = "linux", feature = "posix"))]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use mqtwin::posix::Kernel;
use mqtwin::{MessageQueue, Namespace, Notify, OpenOptions};

mod common;

use common::{unique_name, Unlink};

/// Cycles before the baseline is taken: the notification socket, its reader
/// and the callback pool exist by then, and the allocator has its arenas.
const WARM_UP: usize = 5_000;
/// Samples are taken every this many cycles.
const SAMPLE_EVERY: usize = 1_000;
/// Slack over the baseline. The crate may add an extra socket (and its
/// reader) for a moment and grows its callback pool to at most 4 workers;
/// before the fix 100,000 cycles added hundreds of each.
const FD_SLACK: usize = 3;
const THREAD_SLACK: usize = 8;
const RSS_SLACK_KB: u64 = 4 * 1024;
/// How long one callback may take to arrive.
const PATIENCE: Duration = Duration::from_secs(20);

/// One variant at a time: the counts are the process's.
static SERIAL: Mutex<()> = Mutex::new(());

fn cycles() -> usize {
    std::env::var("MQTWIN_NOTIFY_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

#[derive(Clone, Copy, Debug, Default)]
struct Usage {
    fds: usize,
    threads: usize,
    rss_kb: u64,
}

fn status_field(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn usage() -> Usage {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    Usage {
        // The directory's own descriptor is counted every time alike.
        fds: std::fs::read_dir("/proc/self/fd").unwrap().count(),
        threads: status_field(&status, "Threads:") as usize,
        rss_kb: status_field(&status, "VmRSS:"),
    }
}

fn max(a: Usage, b: Usage) -> Usage {
    Usage {
        fds: a.fds.max(b.fds),
        threads: a.threads.max(b.threads),
        rss_kb: a.rss_kb.max(b.rss_kb),
    }
}

/// Runs `warm_up + measured` cycles; returns the baseline (after the
/// warm-up) and the highest sample of each count after it.
fn run(tag: &str, wait_each: bool, measured: usize) -> (Usage, Usage) {
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let name = unique_name(tag);
    let _cleanup = Unlink(name.clone());
    let q = Kernel
        .open(
            &name,
            &OpenOptions::read_write()
                .create()
                .capacity(2)
                .max_msg_len(16),
        )
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<()>();
    let mut buf = [0u8; 16];
    let mut base = Usage::default();
    let mut peak = Usage::default();
    let total = WARM_UP + measured;
    let started = Instant::now();
    for cycle in 0..total {
        // Only the waiting variant reports on the channel: unread reports
        // would pile up in it and be counted as the crate's memory.
        let (ran, tx) = (Arc::clone(&ran), wait_each.then(|| tx.clone()));
        q.notify(Notify::thread(move || {
            ran.fetch_add(1, Ordering::Relaxed);
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }))
        .unwrap_or_else(|e| panic!("cycle {cycle}: notify: {e:?}"));
        q.send(b"x", 0).unwrap();
        q.receive(&mut buf).unwrap();
        if wait_each {
            rx.recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("cycle {cycle}: the callback did not run"));
        }
        if cycle + 1 == WARM_UP {
            base = usage();
            peak = base;
        } else if cycle >= WARM_UP && (cycle + 1 - WARM_UP) % SAMPLE_EVERY == 0 {
            peak = max(peak, usage());
        }
    }
    // Every callback runs, also in the variant that did not wait.
    let end = Instant::now() + PATIENCE;
    while ran.load(Ordering::Relaxed) < total && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ran.load(Ordering::Relaxed), total, "callbacks that ran");
    peak = max(peak, usage());
    eprintln!(
        "{tag}: {total} cycles in {:?}; after the warm-up {base:?}, highest {peak:?}",
        started.elapsed()
    );
    (base, peak)
}

fn assert_flat(what: &str, base: Usage, peak: Usage) {
    assert!(
        peak.fds <= base.fds + FD_SLACK,
        "{what}: open descriptors grew from {} to {}",
        base.fds,
        peak.fds
    );
    assert!(
        peak.threads <= base.threads + THREAD_SLACK,
        "{what}: threads grew from {} to {}",
        base.threads,
        peak.threads
    );
    assert!(
        peak.rss_kb <= base.rss_kb + RSS_SLACK_KB,
        "{what}: resident memory grew from {} kB to {} kB",
        base.rss_kb,
        peak.rss_kb
    );
}

#[test]
fn waiting_for_each_callback_keeps_descriptors_threads_and_memory_flat() {
    let (base, peak) = run("grow-wait", true, cycles());
    assert_flat("waiting for each callback", base, peak);
}

#[test]
fn not_waiting_for_callbacks_keeps_descriptors_threads_and_memory_flat() {
    let (base, peak) = run("grow-nowait", false, cycles());
    assert_flat("not waiting for callbacks", base, peak);
}
