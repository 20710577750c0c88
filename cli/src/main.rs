//! `mqtwin`: a command-line tool for debugging POSIX message queues in a pod
//! or on a host, built on the `mqtwin` library (`Namespace`/`MessageQueue`
//! against `mqtwin::posix::Kernel`). `mqtwin --twin` runs a scripted demo
//! against an in-memory twin instead, on any OS.
//!
//! Exit status: 0 success; 1 the operation failed (the library's error is
//! printed); 2 bad arguments, or a kernel subcommand on an OS without POSIX
//! message queues; 3 `--timeout` passed (with `--timeout 0`: the queue was
//! full or empty) before a message was sent or received.

// Off Linux the kernel subcommands are parsed but never run, so their
// arguments and helpers are unused there.
#![cfg_attr(not(all(target_os = "linux", feature = "posix")), allow(dead_code))]

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

mod commands;
mod demo;
#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel;
#[cfg(all(target_os = "linux", feature = "posix"))]
mod mqueue_fs;
mod payload;
#[cfg(all(unix, feature = "remote"))]
mod serve;

use commands::{Create, Failure};
use payload::Format;

/// Inspect and drive POSIX message queues (Linux), or try the tool on a twin.
#[derive(Debug, Parser)]
#[command(
    name = "mqtwin",
    version,
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true,
    after_help = "Queue names may be given with or without the leading '/'.\n\
                  Exit status: 0 ok, 1 the operation failed, 2 bad arguments (or no kernel queues \
                  on this OS), 3 timed out / nothing to receive.\n\
                  Without a mounted mqueue filesystem `ls` cannot list queues; to mount it: \
                  mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue"
)]
struct Cli {
    /// Run a scripted demo (create, send, stat, receive, rm) against an
    /// in-memory twin instead of the kernel; works on any OS.
    #[arg(long)]
    twin: bool,
    #[command(subcommand)]
    command: Option<TopCommand>,
}

/// The kernel's subcommands, and the twin server's where it builds.
#[derive(Debug, Subcommand)]
enum TopCommand {
    #[command(flatten)]
    Kernel(Command),
    #[cfg(all(unix, feature = "remote"))]
    #[command(flatten)]
    Remote(serve::RemoteCommand),
}

/// The subcommands (all against the kernel's queues, Linux only).
#[derive(Debug, Subcommand)]
enum Command {
    /// List the queues of this IPC namespace (needs the mqueue filesystem, /dev/mqueue)
    Ls,
    /// Show a queue's attributes (mq_getattr) and, from /dev/mqueue, its queued
    /// bytes, notification registration, mode and owner
    Stat {
        /// Queue name, e.g. /jobs
        name: String,
    },
    /// Send one message
    Send(SendArgs),
    /// Take one message off a queue and print its priority and payload
    Receive(ReceiveArgs),
    /// Block and print every message as it arrives (they are consumed) until Ctrl-C
    Watch {
        /// Queue name
        name: String,
        /// Stop after this many messages
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        #[command(flatten)]
        format: FormatArgs,
    },
    /// Remove a queue's name (mq_unlink); open handles keep it until they close
    Rm {
        /// Queue name
        name: String,
    },
}

/// `send`'s arguments.
#[derive(Debug, Args)]
struct SendArgs {
    /// Queue name
    name: String,
    /// The message: text (its UTF-8 bytes), or hex digits with --hex
    msg: String,
    /// Priority, 0..=32767 (higher is received first)
    #[arg(long, short, default_value_t = 0)]
    priority: u32,
    /// Wait at most this many seconds for room (0: do not wait); default: wait forever
    #[arg(long, short, value_name = "SECS")]
    timeout: Option<Seconds>,
    /// MSG is hex, e.g. 00ff10 (spaces and a 0x prefix allowed)
    #[arg(long)]
    hex: bool,
    /// Create the queue if it does not exist
    #[arg(long)]
    create: bool,
    /// With --create: maximum number of messages (default: fs.mqueue.msg_default)
    #[arg(long, requires = "create", value_name = "N")]
    capacity: Option<usize>,
    /// With --create: maximum message length in bytes (default: fs.mqueue.msgsize_default)
    #[arg(long, requires = "create", value_name = "BYTES")]
    max_msg_len: Option<usize>,
    /// With --create: permission bits in octal, before the umask (default 600)
    #[arg(long, requires = "create", value_name = "OCTAL", value_parser = parse_mode)]
    mode: Option<u32>,
}

impl SendArgs {
    fn payload(&self) -> Result<Vec<u8>, Failure> {
        if self.hex {
            payload::parse_hex(&self.msg).map_err(Failure::Usage)
        } else {
            Ok(self.msg.as_bytes().to_vec())
        }
    }

    fn create_options(&self) -> Option<Create> {
        self.create.then_some(Create {
            capacity: self.capacity,
            max_msg_len: self.max_msg_len,
            mode: self.mode,
        })
    }
}

/// `receive`'s arguments.
#[derive(Debug, Args)]
struct ReceiveArgs {
    /// Queue name
    name: String,
    /// Wait at most this many seconds for a message (0: do not wait); default: wait forever
    #[arg(long, short, value_name = "SECS")]
    timeout: Option<Seconds>,
    #[command(flatten)]
    format: FormatArgs,
}

/// How payloads are printed.
#[derive(Debug, Args)]
struct FormatArgs {
    /// Print payloads as hex
    #[arg(long, conflicts_with = "text")]
    hex: bool,
    /// Print payloads as text (invalid UTF-8 replaced, control characters escaped);
    /// default: text if the payload is printable UTF-8, else hex
    #[arg(long)]
    text: bool,
}

impl FormatArgs {
    fn format(&self) -> Format {
        match (self.hex, self.text) {
            (true, _) => Format::Hex,
            (_, true) => Format::Text,
            _ => Format::Auto,
        }
    }
}

/// A non-negative number of seconds, fractions allowed.
#[derive(Debug, Clone, Copy)]
struct Seconds(Duration);

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("{s:?} is not a number of seconds"))?;
        Duration::try_from_secs_f64(secs)
            .map(Seconds)
            .map_err(|_| format!("{s:?} is not a non-negative, finite number of seconds"))
    }
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("{s:?} is not an octal mode of at most 7777")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = match cli.command {
        // clap: --twin conflicts with every subcommand, and no arguments print the help.
        None => demo::run(&mut out),
        Some(TopCommand::Kernel(command)) => run_kernel(command, &mut out),
        #[cfg(all(unix, feature = "remote"))]
        Some(TopCommand::Remote(command)) => serve::run(command, &mut out),
    };
    let _ = out.flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("mqtwin: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
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
