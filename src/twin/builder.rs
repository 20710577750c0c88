//! [`TwinBuilder`]: a twin with virtual time, fault injection or tracing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::clock::{Clock, VirtualClock};
use super::fault::FaultPlan;
use super::identity::Credentials;
use super::Twin;

/// Builds a [`Twin`]; start with [`Twin::builder`].
#[derive(Debug, Default, Clone)]
pub struct TwinBuilder {
    credentials: Credentials,
    start: Option<SystemTime>,
    faults: Option<FaultPlan>,
    trace: bool,
    wait_limit: Option<Duration>,
}

/// `wait_blocked`'s limit when neither the builder nor the environment sets one.
const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(60);

impl TwinBuilder {
    /// The identity of the twin's first process.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Runs the namespace on a [`VirtualClock`] starting at
    /// 2001-09-09T01:46:40Z (Unix time 1,000,000,000), so runs are
    /// reproducible.
    pub fn virtual_time(self) -> Self {
        self.virtual_time_at(UNIX_EPOCH + Duration::from_secs(1_000_000_000))
    }

    /// Runs the namespace on a [`VirtualClock`] starting at `start` (a start
    /// before the Unix epoch is moved to the epoch: the kernel's clock cannot
    /// read earlier, and `try_*` calls rely on the epoch being in the past).
    pub fn virtual_time_at(mut self, start: SystemTime) -> Self {
        self.start = Some(start.max(UNIX_EPOCH));
        self
    }

    /// Injects faults according to `plan`.
    pub fn faults(mut self, plan: FaultPlan) -> Self {
        self.faults = Some(plan);
        self
    }

    /// Records every call (see [`Twin::trace`]).
    pub fn trace(mut self) -> Self {
        self.trace = true;
        self
    }

    /// How long [`Twin::wait_blocked`] waits (in real time) before it
    /// panics with a diagnostic. Default: the `MQTWIN_WAIT_BLOCKED_SECS`
    /// environment variable if set (whole seconds), else 60 seconds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mqtwin::twin::Twin;
    /// let ns = Twin::builder().wait_blocked_limit(Duration::from_millis(10)).build();
    /// // Nobody blocks: the wait fails fast, with a message, instead of hanging.
    /// let r = std::panic::catch_unwind(|| ns.wait_blocked(1));
    /// assert!(r.is_err());
    /// ```
    pub fn wait_blocked_limit(mut self, limit: Duration) -> Self {
        self.wait_limit = Some(limit);
        self
    }

    /// The twin: a fresh namespace with the Linux default limits.
    pub fn build(self) -> Twin {
        let clock = match self.start {
            Some(start) => Clock::Virtual(VirtualClock::new(start)),
            None => Clock::Real,
        };
        let wait_limit = self.wait_limit.unwrap_or_else(|| {
            std::env::var("MQTWIN_WAIT_BLOCKED_SECS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map_or(DEFAULT_WAIT_LIMIT, Duration::from_secs)
        });
        Twin::from_parts(clock, self.faults, self.trace, self.credentials, wait_limit)
    }
}
