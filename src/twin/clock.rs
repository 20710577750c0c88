//! The twin's clock: every deadline and timeout in the twin is measured here.

use std::time::{Duration, SystemTime};

use crate::sync::{Condvar, MutexGuard};

/// The time source of a twin namespace.
#[derive(Debug, Default)]
pub(crate) enum Clock {
    /// The real wall clock (`CLOCK_REALTIME`), as the kernel uses.
    #[default]
    Real,
}

impl Clock {
    /// The current time.
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            Clock::Real => SystemTime::now(),
        }
    }

    /// Whether `deadline` has already passed (a call would time out at once).
    pub(crate) fn expired(&self, deadline: Option<SystemTime>) -> bool {
        deadline.is_some_and(|d| d <= self.now())
    }

    /// Sleeps on `cv` for at most `remaining` (`None`: until notified).
    /// May return early; callers re-check their condition.
    pub(crate) fn wait<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        remaining: Option<Duration>,
    ) -> MutexGuard<'a, T> {
        match (self, remaining) {
            (_, None) => cv.wait(guard),
            (Clock::Real, Some(r)) => cv.wait_timeout(guard, r),
        }
    }
}
