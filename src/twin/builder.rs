//! [`TwinBuilder`]: a twin with virtual time, fault injection or tracing.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::clock::{Clock, VirtualClock};
use super::fault::FaultPlan;
use super::identity::Credentials;
use super::sim::{Schedule, SimCore, Strategy};
use super::Twin;

/// Builds a [`Twin`]; start with [`Twin::builder`].
#[derive(Debug, Default, Clone)]
pub struct TwinBuilder {
    credentials: Credentials,
    start: Option<SystemTime>,
    faults: Option<FaultPlan>,
    trace: bool,
    wait_limit: Option<Duration>,
    stall_limit: Option<Duration>,
    /// Deterministic mode: the seed and the strategy.
    deterministic: Option<(u64, Strategy)>,
    replay: Option<Schedule>,
}

/// `wait_blocked`'s limit when neither the builder nor the environment sets one.
const DEFAULT_WAIT_LIMIT: Duration = Duration::from_secs(60);
const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(60);

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

    /// Deterministic mode: how long one participant may run (in real time)
    /// without reaching a twin call before the run is given up as *stalled*
    /// — the participant is almost certainly blocked outside the twin (a
    /// channel, a lock another participant holds, a real sleep), where the
    /// scheduler cannot see it — instead of hanging. The run then fails with
    /// a [`SimError`](super::SimError) naming the participant; the stuck
    /// thread is left behind (it unwinds if it ever calls the twin again).
    /// Default: the `MQTWIN_STALL_SECS` environment variable if set (whole
    /// seconds), else 60 seconds. Raise it for participants that compute
    /// for long between twin calls.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mqtwin::twin::Twin;
    /// let ns = Twin::builder().deterministic(1).stall_limit(Duration::from_millis(50)).build();
    /// let sim = ns.sim().expect("deterministic");
    /// let (tx, rx) = std::sync::mpsc::channel::<()>();
    /// let stuck = sim.spawn(move || rx.recv()); // blocks outside the twin
    /// let e = stuck.join().unwrap_err();
    /// assert!(e.is_stalled(), "{e}");
    /// drop(tx); // lets the stuck thread go
    /// ```
    pub fn stall_limit(mut self, limit: Duration) -> Self {
        self.stall_limit = Some(limit);
        self
    }

    /// Deterministic simulation (see [`Sim`](super::Sim)): participants
    /// started with [`Sim::spawn`](super::Sim::spawn) run one at a time, in
    /// an order drawn from `seed` at every twin call and blocking point; time
    /// is virtual (as [`virtual_time`](Self::virtual_time), unless a start
    /// was set) and jumps to the next deadline when every participant is
    /// blocked. The `MQTWIN_SEED` environment variable, when set, replaces
    /// `seed` (to replay a failing run).
    ///
    /// ```
    /// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let ns = Twin::builder().deterministic(1).build();
    /// let q = ns.open("/q", &OpenOptions::read_write().create())?;
    /// let sim = ns.sim().expect("deterministic");
    /// let rx = q.try_clone()?;
    /// let got = sim.spawn(move || rx.receive(&mut [0; 8192]).map(|m| m.priority));
    /// sim.spawn(move || q.send(b"x", 4));
    /// assert_eq!(got.join().unwrap(), Ok(4));
    /// # Ok::<(), mqtwin::Error>(())
    /// ```
    pub fn deterministic(mut self, seed: u64) -> Self {
        let strategy = self.deterministic.map_or(Strategy::Random, |d| d.1);
        self.deterministic = Some((seed, strategy));
        self
    }

    /// The scheduling strategy of a deterministic twin (default
    /// [`Strategy::Random`]); implies [`deterministic`](Self::deterministic)
    /// with seed 0 if no seed was given.
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        let seed = self.deterministic.map_or(0, |d| d.0);
        self.deterministic = Some((seed, strategy));
        self
    }

    /// Replays `schedule` (saved by [`Sim::save_schedule`](super::Sim::save_schedule)
    /// or written when a run failed): its seed, strategy and decisions.
    /// Implies [`deterministic`](Self::deterministic). The
    /// `MQTWIN_SCHEDULE` environment variable (a file path), when set,
    /// replaces it — in this and every twin that asked for determinism
    /// ([`deterministic`](Self::deterministic), [`strategy`](Self::strategy)
    /// or `replay`); a twin that did not ignores it, as it ignores
    /// `MQTWIN_SEED`.
    pub fn replay(mut self, schedule: Schedule) -> Self {
        self.replay = Some(schedule);
        self
    }

    /// The twin: a fresh namespace with the Linux default limits.
    pub fn build(self) -> Twin {
        // Only a twin that asked for determinism (a seed, a strategy or a
        // schedule) takes a schedule from the environment: a plain
        // `Twin::new()` in the same test binary stays free-running.
        let asked = self.deterministic.is_some() || self.replay.is_some();
        let env_schedule = std::env::var_os("MQTWIN_SCHEDULE").filter(|_| asked);
        let replay = match env_schedule {
            Some(path) => match Schedule::load(&path) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!("mqtwin: MQTWIN_SCHEDULE={path:?} ignored: {e}");
                    self.replay.clone()
                }
            },
            None => self.replay.clone(),
        };
        let deterministic = match (&replay, self.deterministic) {
            (Some(s), _) => Some((s.seed, s.strategy)),
            (None, Some((seed, strategy))) => {
                Some((super::seeds::env_seed().unwrap_or(seed), strategy))
            }
            (None, None) => None,
        };
        let start = match (self.start, deterministic) {
            (None, Some(_)) => Some(UNIX_EPOCH + Duration::from_secs(1_000_000_000)),
            (start, _) => start,
        };
        let clock = match start {
            Some(start) => Clock::Virtual(VirtualClock::new(start)),
            None => Clock::Real,
        };
        let stall_limit = self.stall_limit.unwrap_or_else(|| {
            std::env::var("MQTWIN_STALL_SECS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map_or(DEFAULT_STALL_LIMIT, Duration::from_secs)
        });
        let sim = match (&clock, deterministic) {
            (Clock::Virtual(v), Some((seed, strategy))) => {
                let replay = replay.map(|s| s.decisions);
                let core = SimCore::new(v.clone(), seed, strategy, replay, stall_limit);
                Some(crate::sync::Arc::new(core))
            }
            _ => None,
        };
        let wait_limit = self.wait_limit.unwrap_or_else(|| {
            std::env::var("MQTWIN_WAIT_BLOCKED_SECS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map_or(DEFAULT_WAIT_LIMIT, Duration::from_secs)
        });
        Twin::from_parts(
            clock,
            self.faults,
            self.trace,
            self.credentials,
            wait_limit,
            sim,
        )
    }
}
