//! The operation model shared by the differential tests and the fuzzers
//! (feature `testing`).
//!
//! - [`Op`] is one call of the public API, by one simulated user, with every
//!   size, priority and deadline given symbolically ([`Len::MaxPlus1`],
//!   [`When::JustBeforeEpoch`], ...), so one sequence means the same thing on
//!   every backend. With the `arbitrary` feature it derives
//!   `arbitrary::Arbitrary`; [`Scenario`] adds the namespace limits.
//! - [`Driver`] applies ops to one [`Namespace`] as one
//!   user, owns the handles, never blocks past a short horizon, never panics,
//!   and reports an [`Outcome`] (the whole `Result`, received bytes and
//!   priority, attributes) that compares with `==` across backends.
//! - [`Group`] routes ops to one driver per user.
//! - On Linux with the `posix` feature, [`Lockstep`] runs a scenario on the
//!   twin and, in a forked sandbox (a private IPC namespace, one process per
//!   user with its own uid, groups, umask, capabilities and
//!   `RLIMIT_MSGQUEUE`), on the kernel, and compares the outcome and the
//!   state of every open handle after every step.
//! - [`model`] is an independent reference model of the single-threaded
//!   semantics, used by the twin-only fuzzer, and `fuzz` holds the fuzz
//!   entry points (feature `arbitrary`), so `cargo test` can replay fuzz
//!   inputs through the same code.
//!
//! ```
//! use mqtwin::testing::{Driver, NamePool, Op, Outcome, Len, Prio, Call, NameSel, AccessSel, Create, Mode, Size};
//! use mqtwin::twin::Twin;
//!
//! let mut d = Driver::new(Twin::new(), NamePool::new("/doc-", 2), mqtwin::Limits::default());
//! let open = Op::Open {
//!     who: 0, name: NameSel::Pool(0), access: AccessSel::ReadWrite, create: Create::CreateNew,
//!     nonblocking: false, mode: Mode::Default, capacity: Size::Value(1), max_msg_len: Size::Max,
//! };
//! assert!(matches!(d.apply(&open), Outcome::Opened(Ok(_))));
//! let send = Op::Send { who: 0, handle: 0, len: Len::MaxPlus1, fill: 0, priority: Prio::Value(1), call: Call::Blocking };
//! assert_eq!(d.apply(&send), Outcome::Sent(Err(mqtwin::Error::MessageTooLong { len: 8193, limit: 8192 })));
//! ```

mod driver;
pub mod model;
mod op;

#[cfg(feature = "arbitrary")]
#[cfg_attr(docsrs, doc(cfg(feature = "arbitrary")))]
pub mod fuzz;

#[cfg(all(target_os = "linux", feature = "posix"))]
mod lockstep;
#[cfg(all(target_os = "linux", feature = "posix"))]
mod sandbox;

pub use driver::{
    Driver, HandleState, Message, NamePool, Outcome, QueueFile, TestQueue, MAX_HANDLES,
};
pub use op::{
    AccessSel, BadName, BadSignal, Buf, Call, Create, InterestSel, Len, Mode, NameSel, NotifySel,
    Op, Prio, Scenario, Size, Sysctls, Wait, When,
};

#[cfg(all(target_os = "linux", feature = "posix"))]
#[cfg_attr(docsrs, doc(cfg(all(target_os = "linux", feature = "posix"))))]
pub use lockstep::{Divergence, Lockstep};
#[cfg(all(target_os = "linux", feature = "posix"))]
#[cfg_attr(docsrs, doc(cfg(all(target_os = "linux", feature = "posix"))))]
pub use sandbox::{Sandbox, StepRecord};

use crate::queue::Namespace;
use crate::twin::{Credentials, Twin};

/// Changes a namespace's limits.
type SetLimits = Box<dyn Fn(crate::Limits) -> Result<(), crate::Error>>;

/// One [`Driver`] per simulated user; an op goes to user `who % users`.
pub struct Group<N: Namespace>
where
    N::Queue: TestQueue,
{
    drivers: Vec<Driver<N>>,
    /// Applies [`Op::SetSysctls`] to the namespace (set by [`Group::twin`]).
    set_limits: Option<SetLimits>,
}

impl<N: Namespace> Group<N>
where
    N::Queue: TestQueue,
{
    /// A group of these drivers (at least one).
    pub fn new(drivers: Vec<Driver<N>>) -> Self {
        assert!(!drivers.is_empty(), "a group needs at least one driver");
        Group {
            drivers,
            set_limits: None,
        }
    }

    /// How [`Op::SetSysctls`] changes the namespace; without it, the op
    /// only tells the drivers the new limits and the caller changes the
    /// namespace (as the kernel sandbox's root process does).
    pub fn on_set_sysctls(
        mut self,
        f: impl Fn(crate::Limits) -> Result<(), crate::Error> + 'static,
    ) -> Self {
        self.set_limits = Some(Box::new(f));
        self
    }

    /// The drivers, by user.
    pub fn drivers(&self) -> &[Driver<N>] {
        &self.drivers
    }

    /// Which driver `op` goes to.
    pub fn user_of(&self, op: &Op) -> usize {
        usize::from(op.who()) % self.drivers.len()
    }

    /// Applies `op` as its user. [`Op::SetSysctls`] changes the namespace
    /// (see [`on_set_sysctls`](Group::on_set_sysctls)) and goes to every
    /// driver, as they resolve sizes against the limits.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        if let Op::SetSysctls { sysctls } = op {
            if let Some(set) = &self.set_limits {
                if let Err(e) = set(sysctls.limits()) {
                    return Outcome::Opened(Err(e));
                }
            }
            for d in &mut self.drivers {
                d.apply(op);
            }
        }
        let i = self.user_of(op);
        self.drivers[i].apply(op)
    }

    /// Every user's handle states.
    pub fn snapshot(&self) -> Vec<Vec<HandleState>> {
        self.drivers.iter().map(Driver::snapshot).collect()
    }
}

impl Group<Twin> {
    /// A fresh twin namespace with `limits`, one simulated process per
    /// entry of `users`, all using the names of `names`.
    ///
    /// # Errors
    ///
    /// When `limits` are not values the kernel accepts.
    pub fn twin(
        users: &[Credentials],
        limits: crate::Limits,
        names: &NamePool,
        horizon: std::time::Duration,
    ) -> Result<(Twin, Self), crate::Error> {
        let first = users.first().cloned().unwrap_or_default();
        Self::twin_in(Twin::with_credentials(first), users, limits, names, horizon)
    }

    /// As [`Group::twin`], in the namespace of `base` (for example one
    /// built with virtual time), whose limits are set to `limits`.
    ///
    /// # Errors
    ///
    /// When `limits` are not values the kernel accepts.
    pub fn twin_in(
        base: Twin,
        users: &[Credentials],
        limits: crate::Limits,
        names: &NamePool,
        horizon: std::time::Duration,
    ) -> Result<(Twin, Self), crate::Error> {
        base.set_limits(limits)?;
        let drivers = if users.is_empty() {
            vec![Driver::new(base.clone(), names.clone(), limits).horizon(horizon)]
        } else {
            users
                .iter()
                .map(|c| {
                    Driver::new(base.process(c.clone()), names.clone(), limits).horizon(horizon)
                })
                .collect()
        };
        let ns = base.clone();
        let group = Group::new(drivers).on_set_sysctls(move |l| ns.set_limits(l));
        Ok((base, group))
    }
}
