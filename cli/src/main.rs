//! `mqtwin`: a command-line tool for debugging POSIX message queues in a pod
//! or on a host, built on the `mqtwin` library (`Namespace`/`MessageQueue`
//! against `mqtwin::posix::Kernel`). `mqtwin --twin` runs a scripted demo
//! against an in-memory twin instead, on any OS.
//!
//! Exit status: 0 success; 1 the operation failed (the library's error is
//! printed), or the output could not be written; 2 bad arguments, or a
//! kernel subcommand on an OS without POSIX message queues; 3 `--timeout`
//! passed (with `--timeout 0`: the queue was full or empty) before a
//! message was sent or received.

// Off Linux the kernel subcommands are parsed but never run, so their
// arguments and helpers are unused there.
#![cfg_attr(not(all(target_os = "linux", feature = "posix")), allow(dead_code))]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

mod args;
mod commands;
mod demo;
#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel;
#[cfg(all(target_os = "linux", feature = "posix"))]
mod mqueue_fs;
mod names;
mod output;
mod payload;
#[cfg(all(unix, feature = "remote"))]
mod serve;
mod words;

use args::{Cli, Command, TopCommand};
use commands::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match output::Stdout::open().and_then(|mut out| run(cli.command, &mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("mqtwin: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// Runs the demo (no subcommand: clap lets that through only with `--twin`)
/// or one subcommand, then flushes what it printed.
fn run(command: Option<TopCommand>, out: &mut output::Stdout) -> Result<(), Failure> {
    match command {
        None => demo::run(out)?,
        Some(TopCommand::Kernel(command)) => run_kernel(command, out)?,
        #[cfg(all(unix, feature = "remote"))]
        Some(TopCommand::Remote(command)) => serve::run(command, out)?,
    }
    out.flush().map_err(Failure::from)
}

#[cfg(all(target_os = "linux", feature = "posix"))]
fn run_kernel(command: Command, out: &mut dyn Write) -> Result<(), Failure> {
    kernel::run(command, out)
}

#[cfg(not(all(target_os = "linux", feature = "posix")))]
fn run_kernel(command: Command, _out: &mut dyn Write) -> Result<(), Failure> {
    // The arguments are parsed (so help and errors are the same everywhere)
    // but there is no kernel backend to run them on.
    let _ = command;
    let why = if cfg!(target_os = "linux") {
        "this build has no kernel backend (mqtwin-cli built without its `posix` feature)".to_owned()
    } else {
        format!(
            "{} has no POSIX message queues (mq_open)",
            std::env::consts::OS
        )
    };
    Err(Failure::Usage(format!(
        "the kernel subcommands need Linux: {why}. Only `mqtwin --twin` (a scripted demo on an \
         in-memory twin) runs here."
    )))
}
