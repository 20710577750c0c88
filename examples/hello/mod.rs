//! The "Hello, World" sender and receiver, written once for any backend.
//!
//! Not an example of its own: `sender.rs`, `receiver.rs` and `twin_demo.rs`
//! include it with `#[path = "hello/mod.rs"] mod hello;` and hand it either
//! the kernel (`mqtwin::posix::Kernel`) or a twin (`mqtwin::twin::Twin`).
//! Nothing here knows which one it talks to: that is the point of the crate.
//!
//! The protocol, from the Go library these examples descend from:
//!
//! - the sender sends `count` messages `"Hello, World : N"` (N = 1..=count),
//!   `interval` apart;
//! - the receiver receives `count` messages and prints each with its priority;
//! - both open the queue with `create`, so either may start first; the
//!   messages wait in the queue (up to its capacity of 10) until the receiver
//!   comes;
//! - **the receiver unlinks the queue** when it is done (also when it fails
//!   or gives up), because only the receiver knows when the last message has
//!   been consumed. The sender never unlinks: if it did so right after its
//!   last send, a receiver that had not opened the queue yet would find
//!   nothing. So when both finish, no queue is left behind.

// Each example uses only part of this module (the receiver example never
// sends), so unused items are expected here.
#![allow(dead_code)]

use std::fmt;
use std::time::{Duration, SystemTime};

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// Capacity (in messages) of the queue when this code creates it. 10 is the
/// most an unprivileged process may ask for under the default `msg_max`.
pub const CAPACITY: usize = 10;

/// Maximum message length (in bytes) of the queue when this code creates it.
pub const MAX_MSG_LEN: usize = 128;

/// The command-line options shared by the sender, the receiver and the demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Queue name, `--queue NAME` (default `/mqtwin-hello`).
    pub queue: String,
    /// Number of messages to send / receive, `--count N` (default 10).
    pub count: u32,
    /// Pause between two sends, `--interval-ms MS` (default 1000).
    pub interval: Duration,
    /// Priority of the messages sent, `--priority P` (default 0).
    pub priority: u32,
    /// Give up (with [`Error::TimedOut`]) when a send or receive would still
    /// have to wait this long after the start, `--timeout-ms MS` (default
    /// 60000; `0` waits forever).
    pub timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            queue: "/mqtwin-hello".to_owned(),
            count: 10,
            interval: Duration::from_millis(1000),
            priority: 0,
            timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// What went wrong on the command line (or that help was asked for).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `--help` or `-h`: print the usage and exit successfully.
    Help,
    /// A bad flag or value; the message says which.
    Invalid(String),
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Help => f.write_str("help requested"),
            ArgsError::Invalid(msg) => f.write_str(msg),
        }
    }
}

/// The flags every hello example understands.
pub const USAGE: &str = "\
options:
  --queue NAME        queue name, starting with '/'   (default /mqtwin-hello)
  --count N           messages to send / receive      (default 10)
  --interval-ms MS    pause between two sends         (default 1000; twin_demo: 100)
  --priority P        priority of the messages sent   (default 0, at most 32767)
  --timeout-ms MS     give up after MS milliseconds   (default 60000; 0 = never)
  -h, --help          print this help";

impl Config {
    /// Parses flags (without the program name) over `defaults`. Accepts
    /// `--flag value` and `--flag=value`.
    pub fn parse<I>(args: I, defaults: Config) -> Result<Config, ArgsError>
    where
        I: IntoIterator<Item = String>,
    {
        let mut config = defaults;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "-h" || arg == "--help" {
                return Err(ArgsError::Help);
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if arg.starts_with("--") => {
                    (flag.to_owned(), Some(value.to_owned()))
                }
                _ => (arg, None),
            };
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| ArgsError::Invalid(format!("{flag} needs a value")))
            };
            match flag.as_str() {
                "--queue" => config.queue = value()?,
                "--count" => config.count = number(&flag, &value()?)?,
                "--interval-ms" => {
                    config.interval = Duration::from_millis(number(&flag, &value()?)?)
                }
                "--priority" => config.priority = number(&flag, &value()?)?,
                "--timeout-ms" => {
                    config.timeout = match number(&flag, &value()?)? {
                        0 => None,
                        ms => Some(Duration::from_millis(ms)),
                    }
                }
                _ => return Err(ArgsError::Invalid(format!("unknown argument {flag:?}"))),
            }
        }
        Ok(config)
    }

    /// Parses the process's own arguments over `defaults`; on `--help` or a
    /// bad flag, prints the usage and exits (status 0 or 2).
    pub fn from_env_or_exit(program: &str, about: &str, defaults: Config) -> Config {
        match Config::parse(std::env::args().skip(1), defaults) {
            Ok(config) => config,
            Err(ArgsError::Help) => {
                println!("{about}\n\nusage: {program} [options]\n\n{USAGE}");
                std::process::exit(0);
            }
            Err(ArgsError::Invalid(msg)) => {
                eprintln!("error: {msg}\n\nusage: {program} [options]\n\n{USAGE}");
                std::process::exit(2);
            }
        }
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, ArgsError> {
    value
        .parse()
        .map_err(|_| ArgsError::Invalid(format!("{flag}: {value:?} is not a valid number")))
}

/// The `N`th message: `"Hello, World : N"`.
pub fn message(n: u32) -> String {
    format!("Hello, World : {n}")
}

/// How the queue is opened: created with [`CAPACITY`] and [`MAX_MSG_LEN`]
/// when missing (an existing queue keeps its own attributes).
fn options(base: OpenOptions) -> OpenOptions {
    base.create().capacity(CAPACITY).max_msg_len(MAX_MSG_LEN)
}

/// The absolute deadline for the whole run, read on the backend's clock.
fn deadline(q: &impl MessageQueue, config: &Config) -> Option<SystemTime> {
    config.timeout.map(|t| q.now() + t)
}

/// What a role does besides queue calls: pause between two sends, and
/// write its log lines. [`Env::real`] sleeps and prints (the kernel
/// examples); the twin demo pauses on the twin's virtual time and collects
/// the lines, so that a run can be compared with another.
pub struct Env {
    /// Waits this long (between two sends).
    pub pause: Box<dyn Fn(Duration) + Send + Sync>,
    /// Writes one log line.
    pub log: Box<dyn Fn(String) + Send + Sync>,
}

impl Env {
    /// `std::thread::sleep` and stdout.
    pub fn real() -> Env {
        Env {
            pause: Box::new(std::thread::sleep),
            log: Box::new(|line| println!("{line}")),
        }
    }
}

/// Writes one line of a role's log, with the time since it started on the
/// backend's clock.
fn log(env: &Env, role: &str, started: SystemTime, now: SystemTime, what: fmt::Arguments<'_>) {
    let since = now.duration_since(started).unwrap_or_default();
    (env.log)(format!("[{role:<8} +{:.2}s] {what}", since.as_secs_f64()));
}

/// Sends `config.count` hello messages to `config.queue` in `ns`, one every
/// `config.interval`, creating the queue if needed. Does not unlink it (the
/// receiver does).
///
/// # Errors
///
/// Any error from opening the queue or sending; [`Error::TimedOut`] when the
/// queue stayed full past `config.timeout` (nobody is receiving).
pub fn run_sender<N: Namespace>(ns: &N, config: &Config) -> Result<(), Error> {
    run_sender_in(ns, config, &Env::real())
}

/// [`run_sender`], pausing and logging through `env`.
///
/// # Errors
///
/// As [`run_sender`].
pub fn run_sender_in<N: Namespace>(ns: &N, config: &Config, env: &Env) -> Result<(), Error> {
    let started = ns.now();
    let q = ns.open(&config.queue, &options(OpenOptions::write_only()))?;
    let attrs = q.attributes()?;
    log(
        env,
        "sender",
        started,
        ns.now(),
        format_args!(
            "opened {} for writing (capacity {}, messages up to {} bytes)",
            config.queue, attrs.capacity, attrs.max_msg_len
        ),
    );
    let deadline = deadline(&q, config);
    for n in 1..=config.count {
        if n > 1 {
            (env.pause)(config.interval);
        }
        let msg = message(n);
        // Logged before the call, so the receiver's line never comes first.
        log(
            env,
            "sender",
            started,
            ns.now(),
            format_args!("sending  {msg:?} (priority {})", config.priority),
        );
        q.send_deadline(msg.as_bytes(), config.priority, deadline)?;
    }
    log(
        env,
        "sender",
        started,
        ns.now(),
        format_args!("done, {} messages sent", config.count),
    );
    Ok(())
}

/// Receives `config.count` messages from `config.queue` in `ns` (creating
/// the queue if needed, opening it read-only), printing each with its
/// priority, then unlinks the queue. Returns the messages and priorities.
///
/// The queue is unlinked even when receiving fails, so a receiver that gives
/// up leaves nothing behind.
///
/// # Errors
///
/// Any error from opening the queue or receiving; [`Error::TimedOut`] when
/// the messages had not all arrived `config.timeout` after the start.
pub fn run_receiver<N: Namespace>(ns: &N, config: &Config) -> Result<Vec<(String, u32)>, Error> {
    run_receiver_in(ns, config, &Env::real())
}

/// [`run_receiver`], logging through `env`.
///
/// # Errors
///
/// As [`run_receiver`].
pub fn run_receiver_in<N: Namespace>(
    ns: &N,
    config: &Config,
    env: &Env,
) -> Result<Vec<(String, u32)>, Error> {
    let started = ns.now();
    let q = ns.open(&config.queue, &options(OpenOptions::read_only()))?;
    let received = receive_all(&q, config, env, started);
    // Unlink whatever happened; the queue itself lives on until both sides
    // have closed their handles. `NotFound`: someone else already did it.
    let unlinked = match ns.unlink(&config.queue) {
        Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    };
    let received = received?;
    unlinked?;
    log(
        env,
        "receiver",
        started,
        ns.now(),
        format_args!(
            "done, {} messages received; unlinked {}",
            received.len(),
            config.queue
        ),
    );
    Ok(received)
}

fn receive_all(
    q: &impl MessageQueue,
    config: &Config,
    env: &Env,
    started: SystemTime,
) -> Result<Vec<(String, u32)>, Error> {
    let attrs = q.attributes()?;
    log(
        env,
        "receiver",
        started,
        q.now(),
        format_args!(
            "opened {} for reading, waiting for {} messages{}",
            config.queue,
            config.count,
            match config.timeout {
                Some(t) => format!(" (giving up after {:.1}s)", t.as_secs_f64()),
                None => String::new(),
            }
        ),
    );
    let deadline = deadline(q, config);
    // The buffer must hold the queue's largest message, whatever the next
    // one's length: size it from the queue, which may predate this program.
    let mut buf = vec![0u8; attrs.max_msg_len];
    let mut received = Vec::new();
    for _ in 0..config.count {
        let got = q.receive_deadline(&mut buf, deadline)?;
        let text = String::from_utf8_lossy(&buf[..got.len]).into_owned();
        log(
            env,
            "receiver",
            started,
            q.now(),
            format_args!("received {text:?} (priority {})", got.priority),
        );
        received.push((text, got.priority));
    }
    Ok(received)
}
