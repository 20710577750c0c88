//! Replays the kept fuzz inputs on stable Rust, through the very functions
//! the fuzz targets call: every file under `tests/regressions/<target>/` is
//! fed to that target's entry point. A file that fails (panics, or hangs for
//! more than ten seconds) names itself; a target whose directory is missing
//! or holds no file fails too (a replay of nothing proves nothing), and so
//! does a fuzz target without a directory.
//!
//! ```text
//! cargo test --features arbitrary,fuzzkit --test fuzz_regressions
//! ```
//!
//! The entry points of `twin_ops` and `twin_vs_kernel` live in
//! `mqtwin::testing::fuzz` (feature `arbitrary`); the `protocol_kit` model
//! is included here as source and needs the `fuzzkit` feature; `echo_kit`'s
//! kept input is replayed by `tests/fuzzkit.rs`, `remote_frames`'s by
//! `tests/remote_hostile.rs` (feature `remote`). `.ci/run` passes both
//! features; without them this target is not built (`required-features` in
//! `Cargo.toml`), so `cargo test --test fuzz_regressions` alone is an
//! error, not a pass with nothing replayed.
//!
//! To keep a new input (a crash you fixed, or an interesting corpus entry),
//! copy it into the target's directory; see `docs/fuzzing.md`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

#[path = "../examples/protocol/mod.rs"]
mod protocol;
#[path = "../examples/protocol/kit.rs"]
mod protocol_kit;

/// How long one input may run before it counts as a hang (the fuzzer runs
/// with `-timeout=10` in `docs/fuzzing.md`).
const HANG: Duration = Duration::from_secs(10);

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files kept for `target`, in name order; names starting with `.` are
/// skipped.
///
/// # Panics
///
/// When the directory is missing, unreadable or holds no file: a replay
/// of nothing would pass and prove nothing.
fn regressions(target: &str) -> Vec<PathBuf> {
    let dir = manifest_dir().join("tests/regressions").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{target}: no kept inputs: cannot read {}: {e}",
            dir.display()
        )
    });
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
    assert!(
        !files.is_empty(),
        "{target}: no kept inputs: {} holds no file",
        dir.display()
    );
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
fn protocol_kit_regressions() {
    replay("protocol_kit", protocol_kit::fuzz);
}

/// The replay itself fails on a failing input: an entry point that panics
/// on every input is reported, not swallowed.
#[test]
#[should_panic(expected = "these inputs fail")]
fn replay_reports_failures() {
    replay("protocol_kit", |_| panic!("deliberate"));
}

/// A target without kept inputs fails the replay instead of passing it.
#[test]
#[should_panic(expected = "no kept inputs")]
fn a_missing_directory_fails() {
    replay("no-such-target", |_| {});
}

/// The fuzz targets, each with a directory of kept inputs.
const TARGETS: [&str; 5] = [
    "echo_kit",
    "protocol_kit",
    "remote_frames",
    "twin_ops",
    "twin_vs_kernel",
];

/// Names of the entries of `dir` ending in `suffix`, without it, sorted;
/// `None` when `dir` does not exist.
fn names(dir: &Path, suffix: &str) -> Option<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        entries => entries.unwrap_or_else(|e| panic!("{}: {e}", dir.display())),
    };
    let mut v: Vec<String> = entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().into_owned();
            Some(name.strip_suffix(suffix)?.to_owned())
        })
        .filter(|n| !n.starts_with('.'))
        .collect();
    v.sort();
    Some(v)
}

/// Every fuzz target has kept inputs (`echo_kit`'s are replayed by
/// `tests/fuzzkit.rs`, `remote_frames`'s by `tests/remote_hostile.rs`, the
/// others here), and every directory of kept inputs belongs to a target. In the repository the targets are the files of
/// `fuzz/fuzz_targets/`; the published package has no `fuzz/` (it is a
/// package of its own), so there [`TARGETS`] alone is checked.
#[test]
fn every_target_has_kept_inputs() {
    let kept =
        names(&manifest_dir().join("tests/regressions"), "").expect("tests/regressions/ exists");
    assert_eq!(kept, TARGETS);
    match names(&manifest_dir().join("fuzz/fuzz_targets"), ".rs") {
        Some(targets) => assert_eq!(targets, TARGETS, "fuzz/fuzz_targets/ vs TARGETS"),
        None => eprintln!("no fuzz/fuzz_targets/ (the published package): checked TARGETS only"),
    }
    for t in TARGETS {
        regressions(t);
    }
}

#[test]
fn twin_ops_regressions() {
    replay("twin_ops", mqtwin::testing::fuzz::twin_ops);
}

#[cfg(all(target_os = "linux", feature = "posix"))]
#[test]
fn twin_vs_kernel_regressions() {
    replay("twin_vs_kernel", mqtwin::testing::fuzz::twin_vs_kernel);
}
