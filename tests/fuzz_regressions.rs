//! Replays the kept fuzz inputs on stable Rust, through the very functions
//! the fuzz targets call: every file under `fuzz/regressions/<target>/` is
//! fed to that target's entry point. A file that fails (panics, or hangs for
//! more than ten seconds) names itself.
//!
//! ```text
//! cargo test --features arbitrary,fuzzkit --test fuzz_regressions
//! ```
//!
//! The entry points of `twin_ops` and `twin_vs_kernel` live in
//! `mqtwin::testing::fuzz` (feature `arbitrary`); the `protocol_kit` model
//! is included here as source and needs the `fuzzkit` feature; `echo_kit`'s
//! kept input is replayed by `tests/fuzzkit.rs`. `.ci/run` passes both
//! features.
//!
//! To keep a new input (a crash you fixed, or an interesting corpus entry),
//! copy it into the target's directory; see `docs/fuzzing.md`.

// Without either feature there is nothing to replay here (the helpers stay).
#![cfg_attr(
    not(any(feature = "arbitrary", feature = "fuzzkit")),
    allow(dead_code, unused_imports)
)]

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

#[cfg(feature = "fuzzkit")]
#[path = "../examples/protocol/mod.rs"]
mod protocol;
#[cfg(feature = "fuzzkit")]
#[path = "../fuzz/src_shared/protocol_kit.rs"]
mod protocol_kit;

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

#[cfg(feature = "fuzzkit")]
#[test]
fn protocol_kit_regressions() {
    let n = replay("protocol_kit", protocol_kit::fuzz);
    assert!(n > 0, "no regression inputs kept for protocol_kit");
}

/// The replay itself fails on a failing input: an entry point that panics
/// on every input is reported, not swallowed.
#[cfg(feature = "fuzzkit")]
#[test]
#[should_panic(expected = "these inputs fail")]
fn replay_reports_failures() {
    replay("protocol_kit", |_| panic!("deliberate"));
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
