//! Receives `"Hello, World : N"` messages from a real POSIX message queue and
//! prints them: the receiver half of the classic hello pair.
//!
//! The logic lives in `examples/hello/mod.rs`, generic over
//! [`mqtwin::Namespace`]; here it runs against the backend `MQTWIN` names
//! (by default the Linux kernel, `mqtwin::posix::Kernel`). `twin_demo` runs the very same code on the
//! in-memory twin.
//!
//! ```text
//! cargo run --example receiver &
//! cargo run --example sender -- --interval-ms 200
//! ```
//!
//! The receiver opens the queue read-only (creating it if the sender has not
//! yet), waits for `--count` messages (default 10), printing each with its
//! priority, and then **unlinks the queue**, so nothing is left behind once
//! both have finished. It gives up with a timeout error after `--timeout-ms`
//! (default 60000; `0` waits forever), and unlinks the queue then too. Run
//! with `--help` for all options.
//!
//! The backend comes from `MQTWIN` ([`mqtwin::from_env`]): the kernel by
//! default on Linux; `MQTWIN=remote:PATH` shares one `mqtwin serve --socket
//! PATH` with the sender, on macOS too (see `sender.rs`).

#[path = "hello/mod.rs"]
mod hello;

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = hello::Config::from_env_or_exit(
        "receiver",
        "Receives \"Hello, World : N\" messages from a POSIX message queue, then unlinks it.",
        hello::Config::default(),
    );
    // The backend from MQTWIN: the kernel by default on Linux, a twin
    // elsewhere, or remote:PATH for a `mqtwin serve` shared with the other side.
    let ns = match mqtwin::from_env() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("receiver: {e}");
            return ExitCode::FAILURE;
        }
    };
    match hello::run_receiver(&ns, &config) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e @ mqtwin::Error::TimedOut) => {
            eprintln!("receiver: {e} (not all messages arrived in time: is the sender running?)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("receiver: {e}");
            ExitCode::FAILURE
        }
    }
}
