//! `mqtwin serve` (host one twin for every process that connects to a
//! Unix-domain socket) and `mqtwin ctl` (drive that twin: virtual time,
//! limits, blocked callers, its trace and faults).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use mqtwin::remote::{Remote, Server};
use mqtwin::twin::{FaultPlan, Twin};
use mqtwin::Limits;

use crate::commands::Failure;

/// The twin server's subcommands.
#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Host one twin namespace for every process that connects to SOCKET
    /// (mqtwin::remote::Remote, MQTWIN=remote:SOCKET, libmqtwin with
    /// MQTWIN_SOCKET); runs until `mqtwin ctl --socket SOCKET stop`
    Serve(ServeArgs),
    /// Drive a running `mqtwin serve`: virtual time, limits, blocked callers,
    /// trace, faults, stop
    Ctl(CtlArgs),
}

/// The `fs.mqueue.*` limits, each optional.
#[derive(Debug, Args, Default)]
pub struct LimitArgs {
    /// fs.mqueue.queues_max
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    queues_max: Option<i64>,
    /// fs.mqueue.msg_max
    #[arg(long, value_name = "N")]
    msg_max: Option<usize>,
    /// fs.mqueue.msgsize_max
    #[arg(long, value_name = "BYTES")]
    msgsize_max: Option<usize>,
    /// fs.mqueue.msg_default
    #[arg(long, value_name = "N")]
    msg_default: Option<usize>,
    /// fs.mqueue.msgsize_default
    #[arg(long, value_name = "BYTES")]
    msgsize_default: Option<usize>,
}

impl LimitArgs {
    fn any(&self) -> bool {
        self.queues_max.is_some()
            || self.msg_max.is_some()
            || self.msgsize_max.is_some()
            || self.msg_default.is_some()
            || self.msgsize_default.is_some()
    }

    fn apply(&self, l: Limits) -> Limits {
        Limits {
            queues_max: self.queues_max.unwrap_or(l.queues_max),
            msg_max: self.msg_max.unwrap_or(l.msg_max),
            msgsize_max: self.msgsize_max.unwrap_or(l.msgsize_max),
            msg_default: self.msg_default.unwrap_or(l.msg_default),
            msgsize_default: self.msgsize_default.unwrap_or(l.msgsize_default),
        }
    }
}

/// `serve`'s arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to create the socket (must not exist)
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    /// Run the twin on a virtual clock (starting in 2001) that only
    /// `mqtwin ctl advance` moves
    #[arg(long)]
    virtual_time: bool,
    /// Inject faults: seed=N,open=P,send=P,interrupt=P,notify=P (P a
    /// probability; every part optional), e.g. seed=7,send=0.1
    #[arg(long, value_name = "PLAN", value_parser = parse_faults)]
    faults: Option<FaultPlan>,
    /// Record every call; write the trace to FILE ('-': standard output)
    /// when the server stops
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
}

/// `ctl`'s arguments.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The server's socket
    #[arg(long, value_name = "PATH")]
    socket: PathBuf,
    #[command(subcommand)]
    what: CtlCommand,
}

/// What `ctl` does.
#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// Advance the virtual clock, e.g. `advance 5s` (units ns, us, ms, s, m, h;
    /// a bare number is seconds); prints the new time
    Advance {
        /// How far
        #[arg(value_parser = parse_duration)]
        by: Duration,
    },
    /// Advance the virtual clock to the earliest deadline a caller waits for;
    /// exit status 3 when nobody waits on one
    AdvanceToDeadline,
    /// Wait until N callers are blocked in the twin; exit status 3 when they
    /// are not within --timeout
    WaitBlocked {
        /// How many
        n: usize,
        /// Give up after this long
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// Print how many callers are blocked now
    Blocked,
    /// Print the limits, after setting those given
    Limits(LimitArgs),
    /// Print the trace (empty unless `serve --trace`)
    Trace,
    /// Print the fault plan and the faults injected so far, after
    /// replacing it with --set PLAN (as `serve --faults`) or removing it
    /// with --clear
    Faults {
        /// The new plan, e.g. seed=7,send=0.1
        #[arg(long, value_name = "PLAN", value_parser = parse_faults, conflicts_with = "clear")]
        set: Option<FaultPlan>,
        /// No more faults
        #[arg(long)]
        clear: bool,
    },
    /// Stop the server (it writes its trace first)
    Stop,
}

fn failed(what: &str) -> impl FnOnce(mqtwin::Error) -> Failure + '_ {
    move |e| Failure::Queue(what.to_owned(), e)
}

/// Runs `serve` or `ctl`.
///
/// # Errors
///
/// What the subcommand reports.
pub fn run(command: RemoteCommand, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        RemoteCommand::Serve(a) => serve(a, out),
        RemoteCommand::Ctl(a) => ctl(a, out),
    }
}

fn serve(a: ServeArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let mut b = Twin::builder();
    if a.virtual_time {
        b = b.virtual_time();
    }
    if let Some(plan) = a.faults {
        b = b.faults(plan);
    }
    if a.trace.is_some() {
        b = b.trace();
    }
    let twin = b.build();
    if a.limits.any() {
        twin.set_limits(a.limits.apply(twin.limits()))
            .map_err(failed("cannot set the limits"))?;
    }
    let server = Server::bind(&a.socket, twin)
        .map_err(|e| Failure::Other(format!("cannot serve on {}: {e}", a.socket.display())))?;
    writeln!(out, "serving {}", a.socket.display())?;
    out.flush()?;
    while !server.wait_for_stop_request(Duration::from_secs(3600)) {}
    let trace = server.twin().trace_dump();
    server.shutdown();
    match a.trace {
        Some(p) if p.as_os_str() == "-" => out.write_all(trace.as_bytes())?,
        Some(p) => std::fs::write(&p, trace).map_err(|e| {
            Failure::Other(format!("cannot write the trace to {}: {e}", p.display()))
        })?,
        None => {}
    }
    Ok(())
}

fn show(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
        Err(e) => format!("-{:?}", e.duration()),
    }
}

fn ctl(a: CtlArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let ns = Remote::connect(&a.socket).map_err(failed("cannot reach the server"))?;
    match a.what {
        CtlCommand::Advance { by } => {
            let t = ns.advance(by).map_err(failed("advance"))?;
            writeln!(out, "now {}", show(t))?;
        }
        CtlCommand::AdvanceToDeadline => match ns
            .advance_to_deadline()
            .map_err(failed("advance-to-deadline"))?
        {
            Some(t) => writeln!(out, "now {}", show(t))?,
            None => {
                return Err(Failure::Queue(
                    "advance-to-deadline: no caller waits on a deadline".into(),
                    mqtwin::Error::WouldBlock,
                ))
            }
        },
        CtlCommand::WaitBlocked { n, timeout } => {
            if !ns
                .wait_blocked(n, timeout)
                .map_err(failed("wait-blocked"))?
            {
                return Err(Failure::Queue(
                    format!("wait-blocked: fewer than {n} callers blocked after {timeout:?}"),
                    mqtwin::Error::TimedOut,
                ));
            }
            writeln!(out, "{n} blocked")?;
        }
        CtlCommand::Blocked => writeln!(out, "{}", ns.blocked().map_err(failed("blocked"))?)?,
        CtlCommand::Limits(l) => {
            if l.any() {
                let now = ns.limits().map_err(failed("limits"))?;
                ns.set_limits(l.apply(now))
                    .map_err(failed("cannot set the limits"))?;
            }
            let l = ns.limits().map_err(failed("limits"))?;
            writeln!(
                out,
                "queues_max={} msg_max={} msgsize_max={} msg_default={} msgsize_default={}",
                l.queues_max, l.msg_max, l.msgsize_max, l.msg_default, l.msgsize_default
            )?;
        }
        CtlCommand::Trace => out.write_all(ns.trace().map_err(failed("trace"))?.as_bytes())?,
        CtlCommand::Faults { set, clear } => {
            if set.is_some() || clear {
                ns.set_fault_plan(set).map_err(failed("faults"))?;
            }
            writeln!(out, "{}", ns.faults().map_err(failed("faults"))?)?;
        }
        CtlCommand::Stop => {
            ns.request_stop().map_err(failed("stop"))?;
            writeln!(out, "stop requested")?;
        }
    }
    Ok(())
}

/// `5s`, `250ms`, `1.5` (seconds), `2m`, `1h`, `10us`, `7ns`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration (e.g. 5s, 250ms, 1.5, 2m)");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(n * scale).map_err(|_| bad())
}

/// `seed=7,open=0.1,send=0.2,interrupt=0.05,notify=0.5`.
fn parse_faults(s: &str) -> Result<FaultPlan, String> {
    let mut seed = 0u64;
    let mut p = [None::<f64>; 4];
    for part in s.split(',').map(str::trim).filter(|x| !x.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected key=value"))?;
        if k == "seed" {
            seed = v
                .parse()
                .map_err(|_| format!("{v:?} is not a seed (an integer)"))?;
            continue;
        }
        let i = ["open", "send", "interrupt", "notify"]
            .iter()
            .position(|x| *x == k)
            .ok_or_else(|| {
                format!("{k:?}: the fault sites are open, send, interrupt and notify")
            })?;
        let prob: f64 = v
            .parse()
            .map_err(|_| format!("{v:?} is not a probability"))?;
        if !(0.0..=1.0).contains(&prob) {
            return Err(format!("{k}={v}: a probability is between 0 and 1"));
        }
        p[i] = Some(prob);
    }
    let [open, send, interrupt, notify] = p.map(|x| x.unwrap_or(0.0));
    Ok(FaultPlan::new(seed)
        .open(open)
        .send(send)
        .interrupt(interrupt)
        .notify(notify))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_fault_plans_parse() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        let plan = parse_faults("seed=7,send=0.25").unwrap();
        assert_eq!(plan, FaultPlan::new(7).send(0.25));
        assert!(parse_faults("send=2").is_err());
        assert!(parse_faults("disk=0.1").is_err());
        assert!(parse_faults("seed").is_err());
    }
}
