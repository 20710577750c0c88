//! The subcommands, generic over the backend: the kernel for real use, a
//! twin for `--twin`'s demo. Each writes what it reports to `out`.

use std::io::Write;
use std::time::Duration;

use mqtwin::{Attributes, Error, MessageQueue, Namespace, OpenOptions};

use crate::names::shown;
use crate::payload::{self, Format};
use crate::words::count;

/// Exit status: the operation failed (the library's error is printed).
pub const EXIT_FAILED: u8 = 1;
/// Exit status: bad arguments (clap uses it too), or no kernel queues on this OS.
pub const EXIT_USAGE: u8 = 2;
/// Exit status: `--timeout` passed (or, with `--timeout 0`, the queue was
/// full / empty) before a message could be sent or received.
pub const EXIT_TIMED_OUT: u8 = 3;

/// Why a command failed, and so its exit status.
#[derive(Debug)]
pub enum Failure {
    /// A queue operation failed: what was being done, and the library's error.
    Queue(String, Error),
    /// Anything else (I/O, the mqueue filesystem), already in words.
    Other(String),
    /// A bad argument the parser could not catch.
    Usage(String),
}

impl Failure {
    /// The process exit status for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Queue(_, Error::TimedOut | Error::WouldBlock) => EXIT_TIMED_OUT,
            Failure::Queue(..) | Failure::Other(_) => EXIT_FAILED,
            Failure::Usage(_) => EXIT_USAGE,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // `what` already says why (see `failed`).
            Failure::Queue(what, Error::WouldBlock) => f.write_str(what),
            Failure::Queue(what, e) => write!(f, "{what}: {e}"),
            Failure::Other(msg) | Failure::Usage(msg) => f.write_str(msg),
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(format!("cannot write the output: {e}"))
    }
}

/// How `create` and `send --create` create a missing queue.
#[derive(Debug, Clone, Copy, Default)]
pub struct Create {
    /// Maximum number of messages; the namespace default when `None`.
    pub capacity: Option<usize>,
    /// Maximum message length; the namespace default when `None`.
    pub max_msg_len: Option<usize>,
    /// Permission bits (before the umask); 0o600 when `None`.
    pub mode: Option<u32>,
}

/// A failed send or receive; `--timeout 0` on a full / empty queue is
/// explained in the tool's terms, not as a non-blocking handle.
fn failed(what: String, full_or_empty: &str, e: Error) -> Failure {
    match e {
        Error::WouldBlock => Failure::Queue(
            format!("{what}: the queue is {full_or_empty} and --timeout 0 does not wait"),
            e,
        ),
        e => Failure::Queue(what, e),
    }
}

/// Writes `line` and flushes, so that a failed output is reported by the
/// command whose action it reports (which has happened: the message is
/// sent, the queue created or removed).
///
/// # Errors
///
/// The output failed; the message says what was done all the same.
pub fn report(out: &mut dyn Write, line: &str) -> Result<(), Failure> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Other(format!("{line}, but cannot write that to the output: {e}")))
}

fn open<N: Namespace>(ns: &N, name: &str, options: &OpenOptions) -> Result<N::Queue, Failure> {
    ns.open(name, options).map_err(|e| cannot_open(name, e))
}

/// The failure of opening `name`.
pub fn cannot_open(name: &str, e: Error) -> Failure {
    Failure::Queue(format!("cannot open {}", shown(name)), e)
}

/// Opens `name` for reading, or for writing if reading is not permitted
/// (enough for `mq_getattr`).
///
/// # Errors
///
/// The library's error of the last open tried, as it is (so that the
/// caller can tell a permission problem from the others).
pub fn open_any<N: Namespace>(ns: &N, name: &str) -> Result<N::Queue, Error> {
    match ns.open(name, &OpenOptions::read_only()) {
        Err(Error::PermissionDenied { .. }) => ns.open(name, &OpenOptions::write_only()),
        other => other,
    }
}

/// The options that create a queue with `c`'s attributes.
fn with_attrs(mut options: OpenOptions, c: Create) -> OpenOptions {
    if let Some(n) = c.capacity {
        options = options.capacity(n);
    }
    if let Some(n) = c.max_msg_len {
        options = options.max_msg_len(n);
    }
    if let Some(m) = c.mode {
        options = options.mode(m);
    }
    options
}

/// The attributes of `q`, for messages about `name`.
fn attributes(q: &impl MessageQueue, name: &str) -> Result<Attributes, Failure> {
    q.attributes()
        .map_err(|e| Failure::Queue(format!("cannot read the attributes of {}", shown(name)), e))
}

/// A queue's size in words: `capacity 10 messages, max_msg_len 8192 bytes`.
fn sizes(a: &Attributes) -> String {
    format!(
        "capacity {}, max_msg_len {}",
        count(a.capacity as u64, "message"),
        count(a.max_msg_len as u64, "byte")
    )
}

/// `create`: creates an empty queue. An existing queue is left as it is
/// (and a requested attribute it does not have is warned about on stderr),
/// unless `exclusive`, which makes that an error.
///
/// # Errors
///
/// The create failed (the queue exists, with `exclusive`).
pub fn create<N: Namespace>(
    ns: &N,
    name: &str,
    attrs: Create,
    exclusive: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let shown_name = shown(name);
    match ns.open(
        name,
        &with_attrs(OpenOptions::read_only().create_new(), attrs),
    ) {
        Ok(q) => {
            let a = attributes(&q, name)?;
            return report(out, &format!("created {shown_name} ({})", sizes(&a)));
        }
        Err(Error::AlreadyExists { .. }) if !exclusive => {}
        Err(e) => return Err(Failure::Queue(format!("cannot create {shown_name}"), e)),
    }
    // It exists: say so, with its sizes if this user may open it.
    let q = match open_any(ns, name) {
        Ok(q) => q,
        Err(Error::PermissionDenied { .. }) => {
            return report(out, &format!("{shown_name} already exists; left as it is"));
        }
        // Unlinked meanwhile, say: the library's error as it is.
        Err(e) => return Err(cannot_open(name, e)),
    };
    let a = attributes(&q, name)?;
    let differ = [
        ("capacity", "--capacity", attrs.capacity, a.capacity),
        (
            "max_msg_len",
            "--max-msg-len",
            attrs.max_msg_len,
            a.max_msg_len,
        ),
    ];
    for (attr, flag, asked, has) in differ {
        if let Some(asked) = asked.filter(|&asked| asked != has) {
            eprintln!(
                "mqtwin: warning: {shown_name} already exists with {attr} {has}, so {flag} \
                 {asked} was not applied"
            );
        }
    }
    report(
        out,
        &format!("{shown_name} already exists ({}); left as it is", sizes(&a)),
    )
}

/// `send`: one message, blocking unless `timeout` is given (`0`: never wait).
///
/// # Errors
///
/// The open or the send failed (or timed out).
pub fn send<N: Namespace>(
    ns: &N,
    name: &str,
    msg: &[u8],
    priority: u32,
    timeout: Option<Duration>,
    create: Option<Create>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let options = match create {
        Some(c) => with_attrs(OpenOptions::write_only().create(), c),
        None => OpenOptions::write_only(),
    };
    let q = open(ns, name, &options)?;
    let sent = match timeout {
        None => q.send(msg, priority),
        Some(Duration::ZERO) => q.try_send(msg, priority),
        Some(t) => q.send_timeout(msg, priority, t),
    };
    sent.map_err(|e| failed(format!("cannot send to {}", shown(name)), "full", e))?;
    report(
        out,
        &format!(
            "sent {} to {} at priority {priority}",
            count(msg.len() as u64, "byte"),
            shown(name)
        ),
    )
}

/// Receives one message from `q` with the `send` timeout rules.
fn receive_one(
    q: &impl MessageQueue,
    name: &str,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> Result<mqtwin::Received, Failure> {
    let got = match timeout {
        None => q.receive(buf),
        Some(Duration::ZERO) => q.try_receive(buf),
        Some(t) => q.receive_timeout(buf, t),
    };
    got.map_err(|e| failed(format!("cannot receive from {}", shown(name)), "empty", e))
}

fn buffer(q: &impl MessageQueue, name: &str) -> Result<Vec<u8>, Failure> {
    Ok(vec![0; attributes(q, name)?.max_msg_len])
}

/// `receive`: takes one message off the queue and prints it (or, if the
/// output fails, puts it back).
///
/// # Errors
///
/// The open or the receive failed (or timed out), or the output failed.
pub fn receive<N: Namespace>(
    ns: &N,
    name: &str,
    timeout: Option<Duration>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let q = open(ns, name, &OpenOptions::read_only())?;
    let mut buf = buffer(&q, name)?;
    let got = receive_one(&q, name, &mut buf, timeout)?;
    print_or_put_back(ns, name, &buf[..got.len], got.priority, format, out)
}

/// Prints a message taken from `name`. If the output fails (e.g. the
/// reader of a pipe left, as `| head -1` does), the message would be lost:
/// it is sent back to the queue (behind the others of its priority, without
/// waiting), and the error says whether that worked; if it did not, the
/// error shows the message, the last place it can still be seen.
///
/// # Errors
///
/// The output failed.
fn print_or_put_back<N: Namespace>(
    ns: &N,
    name: &str,
    msg: &[u8],
    priority: u32,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let described = payload::describe(priority, msg, format);
    let printed = writeln!(out, "{described}").and_then(|()| out.flush());
    let Err(e) = printed else {
        return Ok(());
    };
    let back = ns
        .open(name, &OpenOptions::write_only().nonblocking())
        .and_then(|q| q.send(msg, priority));
    let name = shown(name);
    Err(Failure::Other(match back {
        Ok(()) => format!(
            "cannot write the output: {e}; the message was put back on {name} \
             (behind the others of priority {priority})"
        ),
        Err(b) => format!(
            "cannot write the output: {e}; the message is lost (putting it back on \
             {name} failed: {b}); it was: {described}"
        ),
    }))
}

/// `watch`: prints every message as it arrives, until interrupted or after
/// `count` messages. A message whose printing fails goes back to the queue.
///
/// # Errors
///
/// The open, a receive or the output failed.
pub fn watch<N: Namespace>(
    ns: &N,
    name: &str,
    count: Option<u64>,
    format: Format,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let q = open(ns, name, &OpenOptions::read_only())?;
    let mut buf = buffer(&q, name)?;
    let mut seen = 0u64;
    while count.is_none_or(|c| seen < c) {
        let got = receive_one(&q, name, &mut buf, None)?;
        print_or_put_back(ns, name, &buf[..got.len], got.priority, format, out)?;
        seen += 1;
    }
    Ok(())
}

/// `rm`: unlinks the name (open handles keep the queue until they close).
///
/// # Errors
///
/// The unlink failed.
pub fn rm<N: Namespace>(ns: &N, name: &str, out: &mut dyn Write) -> Result<(), Failure> {
    ns.unlink(name)
        .map_err(|e| Failure::Queue(format!("cannot remove {}", shown(name)), e))?;
    report(out, &format!("removed {}", shown(name)))
}

/// Prints `stat`'s report: the name (in full: it is the subject, not a
/// message about it), the attributes, then `extra` lines (the mqueue
/// filesystem's view, or what the twin can tell).
pub fn print_stat(
    out: &mut dyn Write,
    name: &str,
    attrs: &Attributes,
    extra: &[(&str, String)],
) -> std::io::Result<()> {
    writeln!(out, "{name}")?;
    writeln!(
        out,
        "  capacity     {} (mq_maxmsg)",
        count(attrs.capacity as u64, "message")
    )?;
    writeln!(
        out,
        "  max_msg_len  {} (mq_msgsize)",
        count(attrs.max_msg_len as u64, "byte")
    )?;
    writeln!(
        out,
        "  messages     {} (mq_curmsgs)",
        attrs.current_messages
    )?;
    for (label, value) in extra {
        writeln!(out, "  {label:<12} {value}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mqtwin::twin::Twin;

    /// An output whose reader has gone.
    struct ClosedPipe;

    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_message_that_cannot_be_printed_goes_back_to_the_queue() {
        let ns = Twin::new();
        let q = ns
            .open("/w", &OpenOptions::read_write().create().capacity(4))
            .unwrap();
        q.send(b"first", 3).unwrap();
        q.send(b"second", 3).unwrap();
        let e = watch(&ns, "/w", None, Format::Text, &mut ClosedPipe).unwrap_err();
        assert!(e.to_string().contains("put back on /w"), "{e}");
        let e = receive(&ns, "/w", None, Format::Text, &mut ClosedPipe).unwrap_err();
        assert!(e.to_string().contains("put back on /w"), "{e}");
        // Nothing lost; each went behind the others of its priority.
        let mut buf = [0; 8192];
        let m = q.try_receive(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"first");
        let m = q.try_receive(&mut buf).unwrap();
        assert_eq!(&buf[..m.len], b"second");
        assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
    }

    #[test]
    fn a_full_queue_loses_the_message_and_says_so() {
        let ns = Twin::new();
        let q = ns
            .open("/f", &OpenOptions::read_write().create().capacity(1))
            .unwrap();
        q.send(b"only", 1).unwrap();
        // Refill behind the receive: the put-back finds the queue full.
        let (ns2, q2) = (ns.clone(), q.try_clone().unwrap());
        struct RefillThenFail(mqtwin::twin::Queue);
        impl Write for RefillThenFail {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                self.0.send(b"other", 1).unwrap();
                Err(std::io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let e = receive(&ns2, "/f", None, Format::Text, &mut RefillThenFail(q2)).unwrap_err();
        assert!(e.to_string().contains("the message is lost"), "{e}");
        // The last place it can be seen: the error.
        assert!(
            e.to_string()
                .ends_with("; it was: priority 1, 4 bytes, text: only"),
            "{e}"
        );
    }
}
