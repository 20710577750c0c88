//! The twin's call trace: every call with its arguments' shape, its result
//! and the (virtual) time, for a test to print when it fails.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEvent {
    /// Position in the trace, from 0.
    pub seq: u64,
    /// When the call returned, on the twin's clock.
    pub time: SystemTime,
    /// The simulated process that made it.
    pub pid: u32,
    /// The call and its arguments' shape, e.g. `send("/q", 5 bytes, prio 3, deadline none)`.
    pub call: String,
    /// `Ok(..)` or `Err(..)`, as `Debug` prints it.
    pub result: String,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.time.duration_since(UNIX_EPOCH).unwrap_or_default();
        write!(
            f,
            "#{:<4} {}.{:06} pid {:<5} {} -> {}",
            self.seq,
            t.as_secs(),
            t.subsec_micros(),
            self.pid,
            self.call,
            self.result
        )
    }
}

/// Describes a deadline relative to `now` for the trace: `none`,
/// `immediate (try)` for the epoch deadline of `try_*` calls, `before the
/// epoch`, or `now+…` / `now-…`.
pub(crate) fn deadline(d: Option<SystemTime>, now: SystemTime) -> String {
    match d {
        None => "none".into(),
        // The deadline of every `try_*` call (an explicit epoch deadline
        // acts the same: it never waits).
        Some(d) if d == crate::deadline::IMMEDIATE => "immediate (try)".into(),
        Some(d) if d < UNIX_EPOCH => "before the epoch".into(),
        Some(d) => match d.duration_since(now) {
            Ok(ahead) => format!("now+{ahead:?}"),
            Err(e) => format!("now-{:?}", e.duration()),
        },
    }
}

/// A blocked caller as a trace names it: by what the run gave it, never by
/// process history (a `ThreadId` is a process-wide counter, so the same
/// seed run twice in one process would print different traces).
#[derive(Debug, Clone)]
pub(crate) enum Who {
    /// A participant of a deterministic run, by its number.
    Participant(usize),
    /// Another thread, by its name when it has one.
    Thread(std::thread::Thread),
}

/// Whom a signal is delivered to ([`Twin::interrupt`](super::Twin::interrupt)):
/// a thread that is not a participant, by its id, or a participant of a
/// deterministic run, by its number (participants may share an OS thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Thread(std::thread::ThreadId),
    Participant(usize),
}

impl Target {
    /// Whether the blocked caller `(thread, who)` is this target.
    pub(crate) fn is(self, thread: Option<std::thread::ThreadId>, who: &Who) -> bool {
        match (self, who) {
            (Target::Participant(n), Who::Participant(m)) => n == *m,
            (Target::Thread(t), Who::Thread(_)) => thread == Some(t),
            _ => false,
        }
    }
}

impl Who {
    /// The caller in `world`: a participant (no thread id: participants
    /// share their thread), or a thread with its id.
    pub(crate) fn current(world: &super::world::World) -> (Option<std::thread::ThreadId>, Who) {
        match world.sim.as_ref().and_then(|s| s.participant()) {
            Some(n) => (None, Who::Participant(n)),
            None => {
                let thread = std::thread::current();
                (Some(thread.id()), Who::Thread(thread))
            }
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Participant(n) => write!(f, "participant {n}"),
            Who::Thread(t) => match t.name() {
                Some(name) => write!(f, "thread {name:?}"),
                None => write!(f, "an unnamed thread"),
            },
        }
    }
}
