//! Control calls on the hosted twin: limits, virtual time, blocked
//! callers, the trace and the faults.

use std::time::{Duration, Instant};

use crate::error::{errno, Error};
use crate::twin::Twin;

use super::super::protocol::{broken, Answer, Control};

fn no_virtual_clock() -> Error {
    broken(
        errno::EINVAL,
        "the server's twin runs on the real clock (start it with virtual time)",
    )
}

/// How long a `WaitBlocked` waits between looks at its connection: a
/// client that goes away frees its worker within this.
const SLICE: Duration = Duration::from_millis(50);

/// What a control call needs from its connection.
pub(crate) struct Caller<'a> {
    /// Whether the connection has ended.
    pub(crate) closed: &'a dyn Fn() -> bool,
}

/// Runs one control call on `twin` for `caller`.
pub(crate) fn run(twin: &Twin, c: Control, caller: &Caller<'_>) -> Result<Answer, Error> {
    match c {
        Control::GetLimits => Ok(Answer::Limits(twin.limits())),
        Control::SetLimits(l) => twin.set_limits(l).map(|()| Answer::Done),
        Control::Advance(by) => {
            let clock = twin.virtual_clock().ok_or_else(no_virtual_clock)?;
            Ok(Answer::Time(clock.advance(by).into()))
        }
        Control::AdvanceToDeadline => {
            let clock = twin.virtual_clock().ok_or_else(no_virtual_clock)?;
            Ok(Answer::MaybeTime(
                clock.advance_to_next_deadline().map(Into::into),
            ))
        }
        Control::WaitBlocked { n, timeout } => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            let start = Instant::now();
            loop {
                let left = timeout.saturating_sub(start.elapsed());
                if twin.wait_blocked_timeout(n, left.min(SLICE)) {
                    return Ok(Answer::Flag(true));
                }
                if left <= SLICE || (caller.closed)() {
                    return Ok(Answer::Flag(false));
                }
            }
        }
        Control::Blocked => Ok(Answer::Count(twin.blocked() as u64)),
        Control::Trace => Ok(Answer::Text(twin.trace_dump())),
        Control::Faults => Ok(Answer::Text(match twin.fault_plan() {
            Some(plan) => format!("{plan:?}; injected {}", twin.faults_injected()),
            None => "no fault plan".into(),
        })),
        Control::SetFaults(plan) => {
            twin.set_fault_plan(plan);
            Ok(Answer::Done)
        }
        // The connection asks the server's owner to stop once this answer
        // is written (`Conn::serve_one`).
        Control::Stop => Ok(Answer::Done),
    }
}
