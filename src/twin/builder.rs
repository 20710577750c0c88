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
}

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

    /// The twin: a fresh namespace with the Linux default limits.
    pub fn build(self) -> Twin {
        let clock = match self.start {
            Some(start) => Clock::Virtual(VirtualClock::new(start)),
            None => Clock::Real,
        };
        Twin::from_parts(clock, self.faults, self.trace, self.credentials)
    }
}
