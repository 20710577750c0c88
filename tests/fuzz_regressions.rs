//! Replays the kept fuzz inputs on stable Rust, through the very functions
//! the fuzz targets call: every file under `fuzz/regressions/<target>/` is
//! fed to that target's entry point. A file that fails (panics, or hangs for
//! more than ten seconds) names itself.
//!
//! ```text
//! cargo test --test fuzz_regressions                       # protocol_handler
//! cargo test --features arbitrary --test fuzz_regressions  # + twin_ops, twin_vs_kernel
//! ```
//!
//! The `protocol_handler` harness is included here as source, so it needs
//! nothing but the `arbitrary` dev-dependency. The entry points of
//! `twin_ops` and `twin_vs_kernel` live in `mqtwin::testing::fuzz`, which
//! exists only with the `arbitrary` feature (`.ci/run` passes it).
//!
//! To keep a new input (a crash you fixed, or an interesting corpus entry),
//! copy it into the target's directory; see `docs/fuzzing.md`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

#[path = "../examples/protocol/mod.rs"]
mod protocol;
#[path = "../fuzz/src_shared/protocol_handler.rs"]
mod protocol_harness;

/// How long one input may run before it counts as a hang (the fuzzer runs
/// with `-timeout=10` in `docs/fuzzing.md`).
const HANG: Duration = Duration::from_secs(10);

/// The files kept for `target`, in name order (none if the directory does
/// not exist). Names starting with `.` are skipped.
fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable directory").path())
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    files
}

/// Runs `entry` on every kept input of `target`, each on its own thread so
/// that a hang fails (after [`HANG`]) instead of blocking the test run.
/// Fails listing every input that panicked or hung; returns how many ran.
fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let files = regressions(target);
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let data = std::fs::read(path).expect("readable regression file");
            let (done, outcome) = mpsc::channel();
            std::thread::spawn(move || {
                let passed = std::panic::catch_unwind(|| entry(&data)).is_ok();
                let _ = done.send(passed);
            });
            match outcome.recv_timeout(HANG) {
                Ok(true) => None,
                Ok(false) | Err(RecvTimeoutError::Disconnected) => {
                    Some(format!("{} (panicked)", path.display()))
                }
                Err(RecvTimeoutError::Timeout) => {
                    Some(format!("{} (hung for {HANG:?})", path.display()))
                }
            }
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail: {failed:#?}"
    );
    files.len()
}

#[test]
fn protocol_handler_regressions() {
    let n = replay("protocol_handler", protocol_harness::run_bytes);
    assert!(n > 0, "no regression inputs kept for protocol_handler");
}

/// The harness really checks something: a hand-written input exercising
/// every path gives exactly these counters.
#[test]
fn protocol_handler_example_input() {
    let stats = protocol_harness::run(&protocol_harness::example_input());
    assert_eq!(
        stats,
        Some(protocol::Stats {
            // PING (urgent, first), BAD_REQUEST, PUT, GET, an unaddressable
            // frame, and after the TTL a GET answered NOT_FOUND.
            received: 6,
            urgent: 1,
            malformed: 2,
            unaddressable: 1,
            // PING, BAD_REQUEST, the late GET; the PUT's and the first GET's
            // replies found their (capacity 1) reply queues full.
            replies_sent: 3,
            dropped_full: 2,
            dropped_no_queue: 0,
            dropped_error: 0,
            retries: 0,
        })
    );
}

/// The replay itself fails on a failing input: a harness that panics on
/// every input is reported, not swallowed.
#[test]
#[should_panic(expected = "these inputs fail")]
fn replay_reports_failures() {
    replay("protocol_handler", |_| panic!("deliberate"));
}

#[cfg(feature = "arbitrary")]
#[test]
fn twin_ops_regressions() {
    replay("twin_ops", mqtwin::testing::fuzz::twin_ops);
}

#[cfg(all(feature = "arbitrary", target_os = "linux", feature = "posix"))]
#[test]
fn twin_vs_kernel_regressions() {
    replay("twin_vs_kernel", mqtwin::testing::fuzz::twin_vs_kernel);
}
