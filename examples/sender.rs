//! Sends ten `"Hello, World : N"` messages over a real POSIX message queue,
//! one second apart: the sender half of the classic hello pair.
//!
//! The logic lives in `examples/hello/mod.rs`, generic over
//! [`mqtwin::Namespace`]; here it runs against the Linux kernel
//! (`mqtwin::posix::Kernel`). `twin_demo` runs the very same code on the
//! in-memory twin.
//!
//! Start the receiver first (or not: the queue is created by whichever side
//! comes first, and holds up to 10 messages until the receiver arrives):
//!
//! ```text
//! cargo run --example receiver &
//! cargo run --example sender -- --interval-ms 200
//! ```
//!
//! The sender never unlinks the queue; the receiver does, once it has
//! received everything (a queue a sender filled for a receiver that never
//! came stays until a receiver runs, or until `mq_unlink`). Run with `--help` for the options (`--queue`,
//! `--count`, `--interval-ms`, `--priority`, `--timeout-ms`).
//!
//! Needs Linux (the `posix` feature, on by default). On other systems this
//! example still compiles, but only says so and exits with status 1: try
//! `cargo run --example twin_demo` instead.

#[path = "hello/mod.rs"]
mod hello;

use std::process::ExitCode;

#[cfg(all(target_os = "linux", feature = "posix"))]
fn main() -> ExitCode {
    let config = hello::Config::from_env_or_exit(
        "sender",
        "Sends \"Hello, World : N\" messages over a POSIX message queue.",
        hello::Config::default(),
    );
    match hello::run_sender(&mqtwin::posix::Kernel, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ mqtwin::Error::TimedOut) => {
            eprintln!("sender: {e} (the queue stayed full: is a receiver running?)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sender: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(not(all(target_os = "linux", feature = "posix")))]
fn main() -> ExitCode {
    eprintln!(
        "sender: the kernel backend (mqtwin::posix) needs Linux with the `posix` feature.\n\
         Try the same code on the in-memory twin: cargo run --example twin_demo"
    );
    ExitCode::FAILURE
}
