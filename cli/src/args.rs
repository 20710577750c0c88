//! The command line: clap's definitions of the subcommands and their
//! arguments, and the parsers of the values clap cannot check alone.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::commands::{Create, Failure};
use crate::names::QueueName;
use crate::payload::{self, Format};

/// Inspect and drive POSIX message queues (Linux), or try the tool on a twin.
#[derive(Debug, Parser)]
#[command(
    name = "mqtwin",
    version,
    args_conflicts_with_subcommands = true,
    arg_required_else_help = true,
    after_help = "Queue names may be given with or without the leading '/'.\n\
                  Exit status: 0 ok, 1 the operation failed or its output could not be \
                  written, 2 bad arguments (a name the kernel would refuse included; or no \
                  kernel queues on this OS), 3 timed out / nothing to receive.\n\
                  Output: a closed standard output (>&-) is refused before any queue is \
                  touched; if a write fails later (a pipe whose reader left, a full device), \
                  a message that receive or watch took is put back on its queue (behind the \
                  others of its priority).\n\
                  Without a mounted mqueue filesystem `ls` cannot list queues; to mount it: \
                  mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue"
)]
pub struct Cli {
    /// Run a scripted demo (create, send, stat, receive, rm) against an
    /// in-memory twin instead of the kernel; works on any OS.
    #[arg(long)]
    pub twin: bool,
    /// The subcommand; none with `--twin`.
    #[command(subcommand)]
    pub command: Option<TopCommand>,
}

/// The kernel's subcommands, and the twin server's where it builds.
#[derive(Debug, Subcommand)]
pub enum TopCommand {
    /// Against the kernel's queues.
    #[command(flatten)]
    Kernel(Command),
    /// `serve` and `ctl`: the twin server (`cli/src/serve.rs`).
    #[cfg(all(unix, feature = "remote"))]
    #[command(flatten)]
    Remote(crate::serve::RemoteCommand),
}

/// The subcommands (all against the kernel's queues, Linux only).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the queues of this IPC namespace (needs the mqueue filesystem, /dev/mqueue);
    /// a queue this user cannot read shows ? for QSIZE and NOTIFY_PID
    Ls,
    /// Show a queue's attributes (mq_getattr) and, from /dev/mqueue, its queued
    /// bytes, notification registration, mode and owner
    Stat {
        /// Queue name, e.g. /jobs
        #[arg(value_parser = QueueName)]
        name: String,
    },
    /// Create an empty queue (an existing one is left as it is, unless --exclusive)
    Create(CreateArgs),
    /// Send one message
    Send(SendArgs),
    /// Take one message off a queue and print its priority and payload
    Receive(ReceiveArgs),
    /// Block and print every message as it arrives (they are consumed) until Ctrl-C
    Watch(WatchArgs),
    /// Remove a queue's name (mq_unlink); open handles keep it until they close
    Rm {
        /// Queue name
        #[arg(value_parser = QueueName)]
        name: String,
    },
}

/// The attributes of a queue to create (`create`, `send --create`).
#[derive(Debug, Args)]
pub struct QueueAttrs {
    /// Maximum number of messages of a new queue (default: fs.mqueue.msg_default)
    #[arg(long, value_name = "N")]
    pub capacity: Option<usize>,
    /// Maximum message length in bytes of a new queue (default: fs.mqueue.msgsize_default)
    #[arg(long, value_name = "BYTES")]
    pub max_msg_len: Option<usize>,
    /// Permission bits of a new queue in octal, before the umask (default 600)
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    pub mode: Option<u32>,
}

impl QueueAttrs {
    fn given(&self) -> bool {
        self.capacity.is_some() || self.max_msg_len.is_some() || self.mode.is_some()
    }

    fn create(&self) -> Create {
        Create {
            capacity: self.capacity,
            max_msg_len: self.max_msg_len,
            mode: self.mode,
        }
    }
}

/// `create`'s arguments.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Queue name
    #[arg(value_parser = QueueName)]
    pub name: String,
    #[command(flatten)]
    pub attrs: QueueAttrs,
    /// Fail if the queue already exists (O_EXCL)
    #[arg(long)]
    pub exclusive: bool,
}

impl CreateArgs {
    /// The attributes asked for.
    pub fn create_options(&self) -> Create {
        self.attrs.create()
    }
}

/// `send`'s arguments.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Queue name
    #[arg(value_parser = QueueName)]
    pub name: String,
    /// The message: text (its UTF-8 bytes), or hex digits with --hex
    pub msg: String,
    /// Priority, 0..=32767 (higher is received first)
    #[arg(long, short, default_value_t = 0, allow_negative_numbers = true,
          value_parser = parse_priority)]
    pub priority: u32,
    /// Wait at most this many seconds for room (0: do not wait); default: wait forever
    #[arg(long, short, value_name = "SECS", allow_negative_numbers = true)]
    pub timeout: Option<Seconds>,
    /// MSG is hex, e.g. 00ff10 (spaces and a 0x prefix allowed)
    #[arg(long)]
    pub hex: bool,
    /// Create the queue if it does not exist, with --capacity, --max-msg-len and --mode
    #[arg(long)]
    pub create: bool,
    #[command(flatten)]
    pub attrs: QueueAttrs,
}

impl SendArgs {
    /// The payload's bytes.
    ///
    /// # Errors
    ///
    /// A usage error for bad hex.
    pub fn payload(&self) -> Result<Vec<u8>, Failure> {
        if self.hex {
            payload::parse_hex(&self.msg).map_err(Failure::Usage)
        } else {
            Ok(self.msg.as_bytes().to_vec())
        }
    }

    /// How to create the queue, if `--create` was given.
    ///
    /// # Errors
    ///
    /// A usage error for queue attributes without `--create`.
    pub fn create_options(&self) -> Result<Option<Create>, Failure> {
        match (self.create, self.attrs.given()) {
            (true, _) => Ok(Some(self.attrs.create())),
            (false, false) => Ok(None),
            (false, true) => Err(Failure::Usage(
                "--capacity, --max-msg-len and --mode only apply with --create".into(),
            )),
        }
    }
}

/// `receive`'s arguments.
#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Queue name
    #[arg(value_parser = QueueName)]
    pub name: String,
    /// Wait at most this many seconds for a message (0: do not wait); default: wait forever
    #[arg(long, short, value_name = "SECS", allow_negative_numbers = true)]
    pub timeout: Option<Seconds>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// `watch`'s arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Queue name
    #[arg(value_parser = QueueName)]
    pub name: String,
    /// Stop after this many messages
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub format: FormatArgs,
}

/// How payloads are printed.
#[derive(Debug, Args)]
pub struct FormatArgs {
    /// Print payloads as hex
    #[arg(long, conflicts_with = "text")]
    pub hex: bool,
    /// Print payloads as text (invalid UTF-8 replaced, control characters escaped);
    /// default: text if the payload is printable UTF-8, else hex
    #[arg(long)]
    pub text: bool,
}

impl FormatArgs {
    /// The format asked for.
    pub fn format(&self) -> Format {
        match (self.hex, self.text) {
            (true, _) => Format::Hex,
            (_, true) => Format::Text,
            _ => Format::Auto,
        }
    }
}

/// A non-negative number of seconds, fractions allowed.
#[derive(Debug, Clone, Copy)]
pub struct Seconds(pub Duration);

impl std::str::FromStr for Seconds {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let secs: f64 = s
            .parse()
            .map_err(|_| "not a number of seconds".to_owned())?;
        if secs < 0.0 {
            return Err(
                "a timeout cannot be negative (0: do not wait; leave --timeout out \
                        to wait forever)"
                    .into(),
            );
        }
        Duration::try_from_secs_f64(secs)
            .map(Seconds)
            .map_err(|_| "not a finite number of seconds".to_owned())
    }
}

/// A priority, `0..MQ_PRIO_MAX` (`0..=32767`).
fn parse_priority(s: &str) -> Result<u32, String> {
    let max = mqtwin::deadline::MQ_PRIO_MAX - 1;
    let out_of_range = || format!("priorities are 0..={max}");
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("not a whole number ({})", out_of_range()));
    }
    s.parse::<u32>()
        .ok()
        .filter(|&p| p <= max)
        .ok_or_else(out_of_range)
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err("not an octal mode of at most 7777".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_0_to_32767() {
        assert_eq!(parse_priority("0"), Ok(0));
        assert_eq!(parse_priority("32767"), Ok(32767));
        assert_eq!(
            parse_priority("32768").unwrap_err(),
            "priorities are 0..=32767"
        );
        assert_eq!(
            parse_priority("-1").unwrap_err(),
            "priorities are 0..=32767"
        );
        assert!(parse_priority("x")
            .unwrap_err()
            .starts_with("not a whole number"));
        assert!(parse_priority("99999999999999999999").is_err());
    }

    #[test]
    fn timeouts_are_non_negative_and_finite() {
        assert_eq!(
            "0.5".parse::<Seconds>().unwrap().0,
            Duration::from_millis(500)
        );
        assert!("-1"
            .parse::<Seconds>()
            .unwrap_err()
            .contains("cannot be negative"));
        assert!("inf".parse::<Seconds>().unwrap_err().contains("finite"));
        assert!("NaN".parse::<Seconds>().is_err());
        assert!("soon".parse::<Seconds>().is_err());
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
