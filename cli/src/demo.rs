//! `mqtwin --twin`: a scripted session against an in-memory twin, printed
//! as the commands and the output the real tool gives for them, so the tool
//! can be tried without Linux queues (on macOS too).

use std::io::Write;
use std::time::Duration;

use mqtwin::twin::Twin;
use mqtwin::MessageQueue;

use crate::commands::{self, Create, Failure};
use crate::payload::Format;
use crate::words::count;

/// Runs the demo, writing the session to `out`.
///
/// # Errors
///
/// A step that should succeed failed (a bug), or `out` failed.
pub fn run(out: &mut dyn Write) -> Result<(), Failure> {
    let ns = Twin::new();
    let name = "/demo".to_owned();
    writeln!(
        out,
        "# mqtwin --twin: a scripted session on an in-memory twin (no kernel queue is touched)"
    )?;

    step(
        out,
        "send demo 'hello, queue' --priority 1 --create --capacity 4 --max-msg-len 64",
    )?;
    let create = Create {
        capacity: Some(4),
        max_msg_len: Some(64),
        mode: Some(0o600),
    };
    commands::send(&ns, &name, b"hello, queue", 1, None, Some(create), out)?;

    step(out, "send /demo 00ff10 --hex --priority 7 --timeout 0")?;
    commands::send(
        &ns,
        &name,
        &[0x00, 0xff, 0x10],
        7,
        Some(Duration::ZERO),
        None,
        out,
    )?;

    step(out, "stat /demo")?;
    stat(&ns, &name, out)?;

    step(out, "receive /demo")?;
    commands::receive(&ns, &name, None, Format::Auto, out)?;
    step(out, "receive /demo")?;
    commands::receive(&ns, &name, None, Format::Auto, out)?;

    step(out, "receive /demo --timeout 0")?;
    let result = commands::receive(&ns, &name, Some(Duration::ZERO), Format::Auto, out);
    expect_failure(out, result)?;

    step(out, "rm /demo")?;
    commands::rm(&ns, &name, out)?;

    step(out, "stat /demo")?;
    let result = stat(&ns, &name, out);
    expect_failure(out, result)?;
    Ok(())
}

fn step(out: &mut dyn Write, command: &str) -> std::io::Result<()> {
    writeln!(out, "\n$ mqtwin {command}")
}

/// Prints a failure the way the tool does (on stdout here, so the session
/// reads in order), with its exit status.
fn expect_failure(out: &mut dyn Write, result: Result<(), Failure>) -> Result<(), Failure> {
    match result {
        Err(failure) => {
            writeln!(out, "mqtwin: {failure}")?;
            writeln!(out, "(exit status {})", failure.exit_code())?;
            Ok(())
        }
        Ok(()) => Err(Failure::Other("the demo expected this step to fail".into())),
    }
}

/// `stat` on the twin: the attributes, and the twin's counterparts of the
/// mqueue filesystem's fields.
fn stat(ns: &Twin, name: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let q = commands::open_any(ns, name).map_err(|e| commands::cannot_open(name, e))?;
    let attrs = q
        .attributes()
        .map_err(|e| Failure::Queue(format!("cannot read the attributes of {name}"), e))?;
    let notify = match q.notify_owner() {
        None => "none".to_owned(),
        Some(pid) => format!("registered by pid {pid}"),
    };
    let me = ns.credentials();
    let extra = [
        (
            "qsize",
            format!("{} queued (QSIZE)", count(q.queued_bytes() as u64, "byte")),
        ),
        ("notify", notify),
        ("owner", format!("uid {}, gid {}", me.uid, me.gid)),
    ];
    commands::print_stat(out, name, &attrs, &extra)?;
    Ok(())
}
