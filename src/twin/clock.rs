//! The twin's clock: every deadline and timeout in the twin is measured here,
//! on the real wall clock or on a [`VirtualClock`] a test drives.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Something blocked until a virtual deadline: woken by [`VirtualClock`]
/// when time reaches it. `wake` must take the lock the sleeper waits under
/// before notifying it, so the wake-up cannot be lost.
pub(crate) trait Sleeper: Send + Sync {
    fn wake(&self);
    /// Whether it still waits: a caller that was served (a message handed
    /// over) keeps its registration until it runs, but no longer waits for
    /// its deadline.
    fn is_pending(&self) -> bool;
}

struct Registered {
    deadline: SystemTime,
    id: u64,
    sleeper: Arc<dyn Sleeper>,
}

struct VirtualState {
    now: SystemTime,
    sleepers: Vec<Registered>,
    next_id: u64,
}

/// Simulated wall-clock time for a [`Twin`](super::Twin).
///
/// Time stands still until the test moves it. Callers blocked with a
/// deadline wake with [`Error::TimedOut`](crate::Error::TimedOut) when the
/// clock reaches it, exactly as with real time; a message handed over before
/// the clock moves wins. `now()` is a `SystemTime`, so deadlines computed
/// from it work unchanged, and relative timeouts (`receive_timeout`) are
/// measured from it.
///
/// ```
/// use std::time::Duration;
/// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::Twin};
///
/// let ns = Twin::builder().virtual_time().build();
/// let clock = ns.virtual_clock().expect("built with virtual time");
/// let q = ns.open("/q", &OpenOptions::read_write().create())?;
/// std::thread::scope(|s| {
///     let rx = s.spawn(|| { let mut b = [0; 8192]; q.receive_timeout(&mut b, Duration::from_secs(3600)) });
///     ns.wait_blocked(1);
///     clock.advance_to_next_deadline(); // an hour passes, instantly
///     assert_eq!(rx.join().unwrap(), Err(Error::TimedOut));
/// });
/// # Ok::<(), mqtwin::Error>(())
/// ```
#[derive(Clone)]
pub struct VirtualClock {
    state: Arc<Mutex<VirtualState>>,
}

impl VirtualClock {
    /// A clock reading `start`.
    pub(crate) fn new(start: SystemTime) -> Self {
        VirtualClock {
            state: Arc::new(Mutex::new(VirtualState {
                now: start,
                sleepers: Vec::new(),
                next_id: 0,
            })),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> SystemTime {
        self.state.lock().now
    }

    /// Moves time forward by `by`, waking every caller whose deadline is
    /// reached. Returns the new time. Saturates at
    /// [`deadline::latest`](crate::deadline::latest): `advance(Duration::MAX)`
    /// moves the clock to the end of time and times out every waiter.
    pub fn advance(&self, by: Duration) -> SystemTime {
        let mut st = self.state.lock();
        st.now = crate::deadline::saturating_add(st.now, by);
        self.wake_due(st)
    }

    /// Moves time forward to `t` (never backwards), waking every caller whose
    /// deadline is reached. Returns the new time.
    pub fn advance_to(&self, t: SystemTime) -> SystemTime {
        let mut st = self.state.lock();
        st.now = st.now.max(t);
        self.wake_due(st)
    }

    /// Moves time to the earliest deadline a blocked caller waits for, waking
    /// it (and any other caller with the same deadline). Returns the new
    /// time, or `None` (time unchanged) when nobody waits with a deadline.
    pub fn advance_to_next_deadline(&self) -> Option<SystemTime> {
        let mut st = self.state.lock();
        let next = st
            .sleepers
            .iter()
            .filter(|s| s.sleeper.is_pending())
            .map(|s| s.deadline)
            .min()?;
        st.now = st.now.max(next);
        Some(self.wake_due(st))
    }

    /// The deadlines blocked callers wait for, earliest first.
    pub fn pending_deadlines(&self) -> Vec<SystemTime> {
        let mut d: Vec<_> = self
            .state
            .lock()
            .sleepers
            .iter()
            .filter(|s| s.sleeper.is_pending())
            .map(|s| s.deadline)
            .collect();
        d.sort();
        d
    }

    /// Wakes (outside the clock lock) every sleeper whose deadline is due.
    fn wake_due(&self, st: MutexGuard<'_, VirtualState>) -> SystemTime {
        let now = st.now;
        let due: Vec<Arc<dyn Sleeper>> = st
            .sleepers
            .iter()
            .filter(|s| s.deadline <= now)
            .map(|s| Arc::clone(&s.sleeper))
            .collect();
        drop(st);
        for s in due {
            s.wake();
        }
        now
    }

    fn register(&self, deadline: SystemTime, sleeper: Arc<dyn Sleeper>) -> u64 {
        let mut st = self.state.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.sleepers.push(Registered {
            deadline,
            id,
            sleeper,
        });
        id
    }

    fn deregister(&self, id: u64) {
        self.state.lock().sleepers.retain(|s| s.id != id);
    }
}

impl fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("VirtualClock")
            .field("now", &st.now)
            .field("sleepers", &st.sleepers.len())
            .finish()
    }
}

/// The time source of a twin namespace.
#[derive(Debug, Clone, Default)]
pub(crate) enum Clock {
    /// The real wall clock (`CLOCK_REALTIME`), as the kernel uses.
    #[default]
    Real,
    /// Simulated time.
    Virtual(VirtualClock),
}

/// A sleeper's registration with the clock; dropping it deregisters.
pub(crate) struct Registration<'a> {
    clock: &'a Clock,
    id: Option<u64>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        if let (Clock::Virtual(v), Some(id)) = (self.clock, self.id) {
            v.deregister(id);
        }
    }
}

impl Clock {
    /// The current time.
    pub(crate) fn now(&self) -> SystemTime {
        match self {
            Clock::Real => SystemTime::now(),
            Clock::Virtual(v) => v.now(),
        }
    }

    /// Whether `deadline` has already passed (a call would time out at once).
    pub(crate) fn expired(&self, deadline: Option<SystemTime>) -> bool {
        deadline.is_some_and(|d| d <= self.now())
    }

    /// Registers a sleeper to be woken when virtual time reaches `deadline`
    /// (nothing to do on the real clock, where sleeps time out by themselves).
    pub(crate) fn register(
        &self,
        deadline: Option<SystemTime>,
        sleeper: impl FnOnce() -> Arc<dyn Sleeper>,
    ) -> Registration<'_> {
        let id = match (self, deadline) {
            (Clock::Virtual(v), Some(d)) => Some(v.register(d, sleeper())),
            _ => None,
        };
        Registration { clock: self, id }
    }

    /// Sleeps on `cv` until notified or, on the real clock, until `deadline`.
    /// May return early; callers re-check their condition. Under virtual time
    /// the clock notifies `cv` (through the registered sleeper) instead.
    pub(crate) fn sleep<'a, T>(
        &self,
        cv: &Condvar,
        guard: MutexGuard<'a, T>,
        deadline: Option<SystemTime>,
    ) -> MutexGuard<'a, T> {
        match (self, deadline) {
            (Clock::Real, Some(d)) => {
                let remaining = d
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO);
                cv.wait_timeout(guard, remaining)
            }
            _ => cv.wait(guard),
        }
    }
}
