//! Sends ten `"Hello, World : N"` messages over a real POSIX message queue,
//! one second apart: the sender half of the classic hello pair.
//!
//! The logic lives in `examples/hello/mod.rs`, generic over
//! [`mqtwin::Namespace`]; here it runs against the backend `MQTWIN` names
//! (by default the Linux kernel, `mqtwin::posix::Kernel`). `twin_demo` runs the very same code on the
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
//! The backend comes from `MQTWIN` ([`mqtwin::from_env`]): the kernel by
//! default on Linux; `MQTWIN=remote:PATH` runs the pair as two processes
//! over one `mqtwin serve --socket PATH` (on macOS too, which has no kernel
//! queues):
//!
//! ```text
//! mqtwin serve --socket /tmp/mq.sock &
//! MQTWIN=remote:/tmp/mq.sock cargo run --features remote --example receiver &
//! MQTWIN=remote:/tmp/mq.sock cargo run --features remote --example sender -- --interval-ms 200
//! ```

#[path = "hello/mod.rs"]
mod hello;

use std::process::ExitCode;

fn main() -> ExitCode {
    let config = hello::Config::from_env_or_exit(
        "sender",
        "Sends \"Hello, World : N\" messages over a POSIX message queue.",
        hello::Config::default(),
    );
    // The backend from MQTWIN: the kernel by default on Linux, a twin
    // elsewhere, or remote:PATH for a `mqtwin serve` shared with the other side.
    let ns = match mqtwin::from_env() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("sender: {e}");
            return ExitCode::FAILURE;
        }
    };
    match hello::run_sender(&ns, &config) {
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
