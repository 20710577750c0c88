//! Seeded fault injection: errors the kernel can really return at a given
//! point, injected on demand so retry and recovery paths can be tested.

use std::fmt;

use crate::error::{errno, Error};

/// Where a fault can be injected, and what the kernel could return there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FaultSite {
    /// `mq_open`, each error where the kernel raises it: `EMFILE`
    /// (descriptor limit) and `ENOMEM` before the lookup; when creating,
    /// `ENOSPC` at the `queues_max` check (before attribute validation);
    /// `ENFILE` (system file table full) last, after every other check, so
    /// an open that creates a queue leaves the queue created, as in Linux.
    Open,
    /// `mq_timedsend`: `ENOMEM` (allocating the message copy), after the
    /// argument checks and before the message is queued.
    Send,
    /// A send or receive that is about to block: `EINTR`, as a signal handler
    /// installed without `SA_RESTART` causes. The caller does not join the
    /// waiter list (it loses its place) and nothing is sent or received.
    Interrupt,
    /// `mq_notify` with [`Notify::Thread`](crate::Notify::Thread):
    /// [`Error::ResourceLimit`] (`EMFILE`: no descriptor left for the
    /// notification socket) or [`Error::OutOfMemory`] (the kernel could not
    /// allocate the notification's buffer), after the signal-number check and
    /// before the busy check, where the kernel backend meets them. Nothing is
    /// registered, and the next registration may succeed.
    Notify,
}

const OPEN_CREATING: &[Error] = &[
    Error::TooManyQueues,
    Error::ResourceLimit,
    Error::OutOfMemory,
    Error::Os {
        errno: errno::ENFILE,
    },
];
const OPEN: &[Error] = &[
    Error::ResourceLimit,
    Error::OutOfMemory,
    Error::Os {
        errno: errno::ENFILE,
    },
];

impl FaultSite {
    /// The errors a [`FaultPlan`] injects here (`creating`: for an open that
    /// may create the queue, which adds `ENOSPC`), the only place they are
    /// listed: a test that must tell an injected failure from a bug can ask.
    ///
    /// ```
    /// use mqtwin::{twin::FaultSite, Error};
    /// assert_eq!(FaultSite::Send.errors(false), [Error::OutOfMemory]);
    /// assert!(FaultSite::Open.errors(true).contains(&Error::TooManyQueues));
    /// assert!(!FaultSite::Open.errors(false).contains(&Error::TooManyQueues));
    /// ```
    pub fn errors(self, creating: bool) -> &'static [Error] {
        match self {
            FaultSite::Send => &[Error::OutOfMemory],
            FaultSite::Interrupt => &[Error::Interrupted],
            FaultSite::Notify => &[Error::ResourceLimit, Error::OutOfMemory],
            FaultSite::Open if creating => OPEN_CREATING,
            FaultSite::Open => OPEN,
        }
    }
}

/// A reproducible plan of injected faults, off unless a twin is built with one.
///
/// Each site has a probability; a seeded generator decides, call by call,
/// whether the site fails. The same seed and the same sequence of calls give
/// the same faults (with several threads, the same interleaving is needed
/// too). When a thread panics while a twin with a plan is dropped (a failing
/// test), the seed is printed to stderr so the run can be replayed.
///
/// Probabilities outside `0.0..=1.0` are clamped; NaN counts as 0.
///
/// ```
/// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};
/// use mqtwin::twin::{FaultPlan, Twin};
///
/// let ns = Twin::builder().faults(FaultPlan::new(7).send(1.0)).build();
/// let q = ns.open("/q", &OpenOptions::read_write().create())?;
/// assert_eq!(q.send(b"x", 0), Err(Error::OutOfMemory));
/// # Ok::<(), Error>(())
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, PartialEq)]
pub struct FaultPlan {
    seed: u64,
    open: f64,
    send: f64,
    interrupt: f64,
    notify: f64,
}

impl FaultPlan {
    /// A plan with every probability 0 (no faults yet).
    pub fn new(seed: u64) -> Self {
        FaultPlan {
            seed,
            open: 0.0,
            send: 0.0,
            interrupt: 0.0,
            notify: 0.0,
        }
    }

    /// Probability that an open fails ([`FaultSite::Open`]).
    pub fn open(mut self, p: f64) -> Self {
        self.open = clamp(p);
        self
    }

    /// Probability that a send fails with `ENOMEM` ([`FaultSite::Send`]).
    pub fn send(mut self, p: f64) -> Self {
        self.send = clamp(p);
        self
    }

    /// Probability that a call about to block is interrupted
    /// ([`FaultSite::Interrupt`]).
    pub fn interrupt(mut self, p: f64) -> Self {
        self.interrupt = clamp(p);
        self
    }

    /// Probability that a thread-notification registration fails
    /// ([`FaultSite::Notify`]).
    pub fn notify(mut self, p: f64) -> Self {
        self.notify = clamp(p);
        self
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn probability(&self, site: FaultSite) -> f64 {
        match site {
            FaultSite::Open => self.open,
            FaultSite::Send => self.send,
            FaultSite::Interrupt => self.interrupt,
            FaultSite::Notify => self.notify,
        }
    }
}

impl fmt::Debug for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FaultPlan::new({}).open({}).send({}).interrupt({}).notify({})",
            self.seed, self.open, self.send, self.interrupt, self.notify
        )
    }
}

fn clamp(p: f64) -> f64 {
    if p.is_nan() {
        0.0
    } else {
        p.clamp(0.0, 1.0)
    }
}

/// A plan in action: the plan and its generator state.
#[derive(Debug)]
pub(crate) struct Faults {
    plan: FaultPlan,
    state: u64,
    injected: u64,
}

impl Faults {
    pub(crate) fn new(plan: FaultPlan) -> Self {
        Faults {
            state: plan.seed,
            plan,
            injected: 0,
        }
    }

    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Faults injected so far.
    pub(crate) fn injected(&self) -> u64 {
        self.injected
    }

    /// splitmix64: small, fast, and the same on every platform.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Decides whether `site` fails now, and with which error. `creating`
    /// tells an open whether `ENOSPC` is possible.
    pub(crate) fn roll(&mut self, site: FaultSite, creating: bool) -> Option<Error> {
        let p = self.plan.probability(site);
        if p <= 0.0 {
            return None;
        }
        let draw = self.next();
        // 53 random bits as a float in [0, 1).
        if (draw >> 11) as f64 / (1u64 << 53) as f64 >= p {
            return None;
        }
        self.injected += 1;
        let choices = site.errors(creating);
        // A site with one error draws nothing more; the others draw which.
        Some(match choices {
            [only] => only.clone(),
            _ => choices[(self.next() % choices.len() as u64) as usize].clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let plan = FaultPlan::new(42).open(0.5).send(0.3).interrupt(0.2);
        let run = || {
            let mut f = Faults::new(plan.clone());
            (0..200)
                .map(|i| {
                    let site = [FaultSite::Open, FaultSite::Send, FaultSite::Interrupt][i % 3];
                    f.roll(site, i % 2 == 0)
                })
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|e| e.is_some()).count();
        assert!(hits > 30 && hits < 130, "{hits}");
    }

    #[test]
    fn probabilities_are_clamped() {
        let p = FaultPlan::new(1).open(f64::NAN).send(7.0).interrupt(-1.0);
        assert_eq!((p.open, p.send, p.interrupt), (0.0, 1.0, 0.0));
        let mut f = Faults::new(p);
        assert_eq!(f.roll(FaultSite::Send, false), Some(Error::OutOfMemory));
        assert_eq!(f.roll(FaultSite::Open, true), None);
    }

    #[test]
    fn enospc_only_when_creating() {
        let mut f = Faults::new(FaultPlan::new(3).open(1.0));
        for _ in 0..100 {
            assert_ne!(f.roll(FaultSite::Open, false), Some(Error::TooManyQueues));
        }
    }
}
