//! Deterministic simulation: [`Sim`], its participants and its failures.

mod core;
mod strategy;

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use crate::sync::{Arc, Mutex};

use self::core::Failure;
pub(crate) use self::core::{Check, SimCore};
pub use strategy::{Schedule, Strategy};

use super::world::World;

/// The scheduler of a deterministic twin: a twin that owns the schedule as
/// well as time. Get it with [`Twin::sim`](super::Twin::sim); clones share the run.
///
/// A twin built with [`TwinBuilder::deterministic`](super::TwinBuilder::deterministic)
/// runs its *participants* — threads started with [`Sim::spawn`] — one at a
/// time. Every twin call and every blocking point is a scheduling point
/// where a seeded scheduler picks who runs next; when every participant is
/// blocked, virtual time jumps to the next deadline; when every participant
/// is blocked with no deadline pending, the run fails with a deadlock report
/// instead of hanging. The same seed and the same participants give the same
/// run, trace and result, bit for bit.
///
/// ```
/// use std::time::Duration;
/// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::Twin};
///
/// let ns = Twin::builder().deterministic(7).trace().build();
/// let sim = ns.sim().expect("deterministic");
/// let q = ns.open("/q", &OpenOptions::read_write().create())?;
/// let rx = q.try_clone()?;
/// let late = sim.spawn(move || rx.receive_timeout(&mut [0; 8192], Duration::from_secs(3600)));
/// let tx = sim.spawn(move || q.send(b"hi", 1));
/// assert_eq!(tx.join().unwrap(), Ok(()));
/// assert_eq!(late.join().unwrap().map(|m| m.len), Ok(2)); // no real hour passes either way
/// # Ok::<(), Error>(())
/// ```
///
/// Rules (details in the semantics guide, "Deterministic simulation"):
///
/// - Participants run during [`run`](Sim::run) or a
///   [`join`](JoinHandle::join), called from a thread that is not a
///   participant (the test's). Before and after a run that thread may use
///   the twin freely, but not block in it (that panics: nothing could wake
///   it); during a run, a twin call from a thread that is not a participant
///   panics. `SIGEV_THREAD` notification callbacks run as participants.
///   A participant may spawn and [`join`](JoinHandle::join) others.
///   Participants of a simulation that is never run stay parked (their
///   threads wait) until the process ends.
/// - Determinism covers what goes through the twin. A participant that
///   blocks on anything else (a channel, a lock held by another
///   participant, `std::thread::sleep`: use [`Sim::sleep`]) stalls the
///   run, which fails as stalled after
///   [`TwinBuilder::stall_limit`](super::TwinBuilder::stall_limit) (60 s)
///   instead of hanging; reads of the real clock, other threads and I/O
///   outside the twin are not replayed.
/// - A failed run (a participant panicked, or a deadlock) prints the seed,
///   a replay recipe (`MQTWIN_SEED=…` or `MQTWIN_SCHEDULE=…`) and the last
///   calls when tracing; the other participants are unwound one by one.
#[derive(Clone)]
pub struct Sim {
    world: Arc<World>,
    core: Arc<SimCore>,
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.core, f)
    }
}

/// A participant's handle; [`join`](JoinHandle::join) runs the simulation
/// until it finishes and returns what it returned.
#[derive(Debug)]
pub struct JoinHandle<T> {
    sim: Sim,
    id: usize,
    value: Arc<Mutex<Option<T>>>,
    _not_sync: PhantomData<fn() -> T>,
}

impl<T> JoinHandle<T> {
    /// The participant's number (its index in a [`Schedule`]).
    pub fn id(&self) -> usize {
        self.id
    }

    /// From the test's thread: runs the simulation (if it is not finished)
    /// and returns the participant's result. From another participant: a
    /// blocking point, until this participant has finished.
    ///
    /// # Errors
    ///
    /// The run's [`SimError`] when the participant did not return: it
    /// panicked, another participant panicked first, or the run deadlocked
    /// or stalled.
    /// (A participant joining one that fails is unwound with the run.)
    ///
    /// # Panics
    ///
    /// From the test's thread, while another thread runs the simulation.
    pub fn join(self) -> Result<T, SimError> {
        let core = &self.sim.core;
        if core.is_participant() {
            let id = self.id;
            core.point(|| format!("join(participant {id})"));
            while !core.is_done(id) {
                let c = Arc::clone(core);
                core.block(Arc::new(move || c.is_done(id)), None);
            }
            return match self.value.lock().take() {
                Some(v) => Ok(v),
                None => Err(self.sim.error(
                    Failure::Panicked {
                        participant: id,
                        message: "participant left without a result".into(),
                    },
                    false,
                )),
            };
        }
        let failure = self.sim.run().err();
        let value = self.value.lock().take();
        match (value, failure) {
            (Some(v), _) => Ok(v),
            (None, Some(e)) => Err(e),
            // Done without a value and without a failure cannot happen; say so.
            (None, None) => Err(self.sim.error(
                Failure::Panicked {
                    participant: self.id,
                    message: "participant left without a result".into(),
                },
                true,
            )),
        }
    }

    /// Whether the participant has finished.
    pub fn is_finished(&self) -> bool {
        self.sim.core.is_done(self.id)
    }
}

impl Sim {
    pub(crate) fn new(world: Arc<World>, core: Arc<SimCore>) -> Self {
        Sim { world, core }
    }

    /// Starts a participant running `f`. It runs when the scheduler picks
    /// it, during [`run`](Sim::run) (or a [`join`](JoinHandle::join)); a
    /// participant may spawn others (a scheduling point).
    ///
    /// # Panics
    ///
    /// When the OS cannot create a thread (as `std::thread::spawn`), or when
    /// called by a thread that is not a participant while a run is in
    /// progress.
    pub fn spawn<T, F>(&self, f: F) -> JoinHandle<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let value = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&value);
        let id = self
            .core
            .add(Box::new(move || {
                let v = f();
                *slot.lock() = Some(v);
            }))
            .expect("mqtwin: failed to spawn a participant thread");
        self.core.point(|| format!("spawn(participant {id})"));
        JoinHandle {
            sim: self.clone(),
            id,
            value,
            _not_sync: PhantomData,
        }
    }

    /// Runs every participant until all have finished (participants spawned
    /// later are run by the next `run`).
    ///
    /// # Errors
    ///
    /// [`SimError`] when a participant panicked, the participants
    /// deadlocked, or one stalled outside the twin; the message (also printed to stderr) has the seed, a
    /// replay recipe and the last calls. A failed simulation stays failed.
    ///
    /// # Panics
    ///
    /// When called from a participant, or while another thread runs it.
    pub fn run(&self) -> Result<(), SimError> {
        match self.core.run() {
            (None, _) => Ok(()),
            (Some(f), fresh) => Err(self.error(f, fresh)),
        }
    }

    /// From a participant: sleeps `duration` of the twin's virtual time, a
    /// blocking point (the others run meanwhile; when every participant
    /// waits, time jumps). What `std::thread::sleep` is to a real program:
    /// a real sleep in a participant would stall the run instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ns = mqtwin::twin::Twin::builder().deterministic(1).build();
    /// let sim = ns.sim().expect("deterministic");
    /// let (start, s, clock) = (ns.now(), sim.clone(), ns.clone());
    /// let slept = sim.spawn(move || { s.sleep(Duration::from_secs(90)); clock.now() });
    /// assert_eq!(slept.join().unwrap(), start + Duration::from_secs(90)); // at once
    /// ```
    ///
    /// # Panics
    ///
    /// When called by a thread that is not a participant (nothing could
    /// wake it).
    pub fn sleep(&self, duration: std::time::Duration) {
        self.core.may_block();
        let until = crate::deadline::saturating_add(self.world.clock.now(), duration);
        self.core.point(|| format!("sleep({duration:?})"));
        while self.world.clock.now() < until {
            let world = Arc::clone(&self.world);
            self.core
                .block(Arc::new(move || world.clock.now() >= until), Some(until));
        }
    }

    /// From a participant (or before a run): the rest of the run may take at
    /// most `time` more virtual time and `steps` more scheduling steps,
    /// counted from now; past either it fails, naming the participants
    /// still running ([`SimError::overrun`]). Deterministic: the same seed
    /// fails at the same step. The fuzz kit's bound on a handler asked to
    /// stop.
    #[cfg_attr(not(feature = "fuzzkit"), allow(dead_code))]
    pub(crate) fn limit(&self, time: std::time::Duration, steps: u64) {
        self.core.limit(time, steps);
    }

    /// The seed in use (`MQTWIN_SEED` overrides the builder's).
    pub fn seed(&self) -> u64 {
        self.core.seed()
    }

    /// The scheduling decisions made so far.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            seed: self.core.seed(),
            strategy: self.core.strategy(),
            decisions: self.core.decisions(),
        }
    }

    /// Writes [`schedule`](Sim::schedule) to `path`, for
    /// [`TwinBuilder::replay`](super::TwinBuilder::replay) or `MQTWIN_SCHEDULE`.
    ///
    /// # Errors
    ///
    /// Any I/O error from writing the file.
    pub fn save_schedule(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        self.schedule().save(path)
    }

    /// Whether a replayed schedule named a participant that was not
    /// runnable (the code or its input changed): the scheduler then fell back
    /// to its strategy.
    pub fn replay_diverged(&self) -> bool {
        self.core.diverged()
    }

    /// The error for `failure`; the run that failed (`fresh`) also writes
    /// its schedule to the temporary directory and prints the error.
    fn error(&self, failure: Failure, fresh: bool) -> SimError {
        let schedule = self.schedule();
        let path = std::env::temp_dir().join(format!(
            "mqtwin-schedule-{}-{}-{}.txt",
            schedule.seed,
            std::process::id(),
            schedule.decisions.len()
        ));
        let saved = if fresh {
            schedule.save(&path).ok().map(|()| path)
        } else {
            path.exists().then_some(path)
        };
        let trace = self.world.trace();
        let tail = trace.len().saturating_sub(20);
        let e = SimError {
            seed: schedule.seed,
            failure,
            schedule: saved,
            test: std::thread::current().name().map(str::to_owned),
            last_calls: trace[tail..].iter().map(|e| e.to_string()).collect(),
        };
        if fresh {
            eprintln!("{e}");
        }
        e
    }
}

/// A failed deterministic run: a participant panicked, every participant
/// was blocked with no deadline pending (a deadlock), or one ran too long
/// without a twin call (stalled: blocked outside the twin). Its `Display` gives
/// the seed, a one-line replay recipe and the last calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimError {
    seed: u64,
    failure: Failure,
    schedule: Option<PathBuf>,
    test: Option<String>,
    last_calls: Vec<String>,
}

impl SimError {
    /// The seed of the failed run.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether the run deadlocked (rather than a participant panicking).
    pub fn is_deadlock(&self) -> bool {
        matches!(self.failure, Failure::Deadlock(_))
    }

    /// Whether the run was given up as stalled: a participant ran for
    /// [`TwinBuilder::stall_limit`](super::TwinBuilder::stall_limit) of real
    /// time without a twin call (blocked outside the twin).
    pub fn is_stalled(&self) -> bool {
        matches!(self.failure, Failure::Stalled(_))
    }

    /// The blocked participants and the calls they were blocked in, for a
    /// deadlock (empty otherwise).
    pub fn blocked(&self) -> Vec<(usize, String)> {
        match &self.failure {
            Failure::Deadlock(b) => b.clone(),
            Failure::Panicked { .. } | Failure::Stalled(_) | Failure::Overrun(_) => Vec::new(),
        }
    }

    /// The panic message, when a participant panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match &self.failure {
            Failure::Panicked { message, .. } => Some(message),
            Failure::Deadlock(_) | Failure::Stalled(_) | Failure::Overrun(_) => None,
        }
    }

    /// For a run that went past the limit set with [`Sim::limit`]: what it
    /// exceeded, and the unfinished participants with their calls.
    #[cfg_attr(not(feature = "fuzzkit"), allow(dead_code))]
    pub(crate) fn overrun(&self) -> Option<(&str, &[(usize, String)])> {
        match &self.failure {
            Failure::Overrun(o) => Some((&o.exceeded, &o.running)),
            _ => None,
        }
    }

    /// Where the failing run's schedule was written (in the temporary
    /// directory), if it could be.
    pub fn schedule_file(&self) -> Option<&std::path::Path> {
        self.schedule.as_deref()
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            Failure::Deadlock(blocked) => {
                writeln!(
                    f,
                    "mqtwin: deterministic run (seed {}) deadlocked: every participant is \
                     blocked and no deadline is pending",
                    self.seed
                )?;
                for (id, call) in blocked {
                    writeln!(f, "  participant {id} blocked in {call}")?;
                }
            }
            Failure::Panicked {
                participant,
                message,
            } => writeln!(
                f,
                "mqtwin: deterministic run (seed {}): participant {participant} panicked: {message}",
                self.seed
            )?,
            Failure::Overrun(o) => {
                let (exceeded, running) = (&o.exceeded, &o.running);
                writeln!(
                    f,
                    "mqtwin: deterministic run (seed {}) went past its limit of {exceeded}; \
                     still running:",
                    self.seed
                )?;
                for (id, call) in running {
                    writeln!(f, "  participant {id} in {call}")?;
                }
            }
            Failure::Stalled(stall) => {
                let (call, after) = (&stall.call, stall.after);
                let who = (stall.participant)
                    .map_or("no participant".into(), |p| format!("participant {p}"));
                writeln!(
                    f,
                    "mqtwin: deterministic run (seed {}) stalled: {who} ran for {after:?} of real \
                     time without a twin call (its last: {call}).\n  It is probably blocked \
                     outside the twin (a channel, a lock another participant holds, a real \
                     sleep, I/O), where the scheduler cannot see it: wait through the twin \
                     instead (its queues, Sim::sleep). The stuck thread is left behind. Limit: \
                     TwinBuilder::stall_limit or MQTWIN_STALL_SECS.",
                    self.seed
                )?;
            }
        }
        let test = self.test.as_deref().unwrap_or("<test name>");
        writeln!(
            f,
            "  replay: MQTWIN_SEED={} cargo test -- --exact {test}",
            self.seed
        )?;
        if let Some(p) = &self.schedule {
            writeln!(
                f,
                "  replay this schedule: MQTWIN_SCHEDULE={} cargo test -- --exact {test}",
                p.display()
            )?;
        }
        if !self.last_calls.is_empty() {
            writeln!(f, "  last calls:")?;
            for c in &self.last_calls {
                writeln!(f, "    {c}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SimError {}
