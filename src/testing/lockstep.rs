//! [`Lockstep`]: one scenario on the twin and on the kernel, compared after
//! every step.

use std::fmt;
use std::time::Duration;

use crate::twin::Credentials;

use super::driver::NamePool;
use super::op::{Op, Scenario};
use super::sandbox::Sandbox;
use super::Group;

/// The first difference between the twin and the kernel in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the op after which the backends differ.
    pub step: usize,
    /// That op.
    pub op: Op,
    /// What differs: `"outcome"` or `"state of user <n>"`.
    pub what: String,
    /// The twin's side.
    pub twin: String,
    /// The kernel's side.
    pub kernel: String,
    /// The steps before, one line each: op and (common) outcome.
    pub history: Vec<String>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "twin and kernel differ after step {}:", self.step)?;
        for h in &self.history {
            writeln!(f, "    {h}")?;
        }
        writeln!(f, "  > #{} {:?}", self.step, self.op)?;
        writeln!(f, "  {}:", self.what)?;
        writeln!(f, "    twin:   {}", self.twin)?;
        write!(f, "    kernel: {}", self.kernel)
    }
}

/// Runs scenarios on the twin and, in a [`Sandbox`], on the kernel, and
/// compares every step: the [`Outcome`](super::Outcome) and then the state
/// of every open handle of every user. One `Lockstep` serves many
/// scenarios; each starts from a fresh twin and a cleaned kernel namespace.
///
/// ```no_run
/// use mqtwin::testing::{Lockstep, Scenario, Sandbox};
/// use mqtwin::twin::Credentials;
/// let users = [Credentials::user(Sandbox::fresh_uid(0), 4242)];
/// let mut ls = Lockstep::new(&users, std::time::Duration::from_millis(1)).expect("needs root");
/// if let Err(d) = ls.run(&Scenario::default()) {
///     panic!("{d}");
/// }
/// ```
#[derive(Debug)]
pub struct Lockstep {
    kernel: Sandbox,
    names: NamePool,
    horizon: Duration,
}

impl Lockstep {
    /// Starts the kernel sandbox with one process per entry of `users`
    /// (see [`Sandbox::spawn`]); the twin gets the identities the kernel
    /// processes really have.
    ///
    /// # Errors
    ///
    /// When the sandbox cannot start (it needs root: `CAP_SYS_ADMIN`,
    /// `CAP_SETUID`, `CAP_SETGID`).
    pub fn new(users: &[Credentials], horizon: Duration) -> Result<Lockstep, String> {
        // The namespace is private, but a unique prefix keeps error texts
        // (which contain names) meaningful and costs nothing.
        let names = NamePool::unique(3);
        let kernel = Sandbox::spawn(users, &names, horizon)?;
        Ok(Lockstep {
            kernel,
            names,
            horizon,
        })
    }

    /// The identities both sides act as.
    pub fn users(&self) -> &[Credentials] {
        self.kernel.users()
    }

    /// Runs `scenario` on both backends.
    ///
    /// # Errors
    ///
    /// The first [`Divergence`]; a kernel sandbox failure is reported as a
    /// divergence at step 0 with `what` = `"sandbox"`.
    pub fn run(&mut self, scenario: &Scenario) -> Result<(), Box<Divergence>> {
        let limits = scenario.sysctls.limits();
        let setup_failure = |twin: String, kernel: String| {
            Box::new(Divergence {
                step: 0,
                op: scenario
                    .ops
                    .first()
                    .cloned()
                    .unwrap_or(Op::Attributes { who: 0, handle: 0 }),
                what: "sandbox".into(),
                twin,
                kernel,
                history: Vec::new(),
            })
        };
        let records = self
            .kernel
            .run(&scenario.sysctls, &scenario.ops)
            .map_err(|e| setup_failure(String::new(), e))?;
        if records.len() != scenario.ops.len() {
            return Err(setup_failure(
                format!("{} steps", scenario.ops.len()),
                format!("{} steps", records.len()),
            ));
        }
        let (_twin, mut group) =
            Group::twin(self.kernel.users(), limits, &self.names, self.horizon)
                .map_err(|e| setup_failure(format!("{e:?}"), String::new()))?;
        let mut history = Vec::new();
        for (step, (op, rec)) in scenario.ops.iter().zip(&records).enumerate() {
            let outcome = format!("{:?}", group.apply(op));
            let diverge = |what: String, twin: String, kernel: String, history: &Vec<String>| {
                Box::new(Divergence {
                    step,
                    op: op.clone(),
                    what,
                    twin,
                    kernel,
                    history: history.clone(),
                })
            };
            if outcome != rec.outcome {
                return Err(diverge(
                    "outcome".into(),
                    outcome,
                    rec.outcome.clone(),
                    &history,
                ));
            }
            for (user, (state, kernel)) in group.snapshot().iter().zip(&rec.states).enumerate() {
                let state = format!("{state:?}");
                if state != *kernel {
                    return Err(diverge(
                        format!("state of user {user} (outcome {outcome})"),
                        state,
                        kernel.clone(),
                        &history,
                    ));
                }
            }
            history.push(format!("#{step} {op:?} => {outcome}"));
        }
        Ok(())
    }
}
