//! The run token of a deterministic twin: which participant runs, who may
//! run next, virtual time that jumps when everyone is blocked, deadlocks.
//!
//! Exactly one participant holds the token (`current`) at a time; how the
//! others wait for it is the executor's business (`super::exec`: stackful
//! coroutines on one pooled thread, or one OS thread per participant under
//! loom and Miri). Every decision — who is runnable, who runs next, when
//! time jumps — is taken by the token holder, so it depends on the seed and
//! on the calls made, never on OS timing.

use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant, SystemTime};

use crate::sync::{Arc, AtomicBool, AtomicUsize, Condvar, Mutex, MutexGuard, Ordering};

use super::exec;
use super::strategy::{Picker, Strategy};
use crate::twin::clock::VirtualClock;

/// Tells a blocked participant whether it can go on (its slot was filled,
/// its queue became ready, its deadline passed). Evaluated by the token
/// holder, which holds no queue lock at the time.
pub(crate) type Check = Arc<dyn Fn() -> bool + Send + Sync>;

enum Status {
    Runnable,
    Blocked {
        check: Check,
        deadline: Option<SystemTime>,
    },
    Done,
}

/// What a participant runs.
pub(super) type Body = Box<dyn FnOnce() + Send>;

/// The twin call a participant is in, for reports (deadlock, stall,
/// overrun): kept unformatted, since a scheduling point happens at every
/// twin call and a report is rare.
#[derive(Debug, Clone)]
pub(crate) enum Call {
    /// A fixed description.
    Fixed(&'static str),
    /// A call on a queue handle: `what("/name")`.
    Queue(&'static str, Arc<str>),
    /// Anything else, formatted at the call.
    Text(String),
}

impl std::fmt::Display for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Call::Fixed(s) => f.write_str(s),
            Call::Queue(what, name) => write!(f, "{what}({:?})", &**name),
            Call::Text(s) => f.write_str(s),
        }
    }
}

struct Part {
    /// How the executor tells it that it got the token.
    wake: exec::Wake,
    /// What it runs, until the executor starts it.
    body: Option<Body>,
    /// The twin call it is in (or made last).
    call: Call,
    status: Status,
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Everyone blocked, no deadline pending: `(participant, call)`.
    Deadlock(Vec<(usize, String)>),
    /// A participant panicked.
    Panicked { participant: usize, message: String },
    /// The token holder made no twin call for a while: it is blocked
    /// outside the twin (or computing for that long).
    Stalled(Box<Stall>),
    /// The run went past a [`Limit`] set with [`SimCore::limit`].
    Overrun(Box<Overrun>),
}

/// How a run went past its limit (boxed in [`Failure`]: keeps `SimError`
/// small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Overrun {
    /// What was exceeded ("3600s of virtual time", "100000 scheduling steps").
    pub(crate) exceeded: String,
    /// The unfinished participants, with their calls.
    pub(crate) running: Vec<(usize, String)>,
}

/// A bound on the rest of a run, in virtual time and scheduling steps
/// (both deterministic): set by the fuzz kit when it asks the handler to
/// stop.
#[derive(Debug, Clone, Copy)]
struct Limit {
    /// Virtual time may reach this, not pass it.
    until: SystemTime,
    /// `State::steps` may reach this, not pass it.
    steps: u64,
    /// The budgets it was set with (for the report).
    time: Duration,
    step_budget: u64,
}

/// Who stalled a run (boxed in [`Failure`]: keeps `SimError` small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stall {
    /// The token holder, if any.
    pub(crate) participant: Option<usize>,
    /// Its last twin call.
    pub(crate) call: String,
    /// How long it held the token without a twin call.
    pub(crate) after: Duration,
}

struct State {
    parts: Vec<Part>,
    /// The token holder; `None` when no participant runs.
    current: Option<usize>,
    /// A `run` is in progress.
    running: bool,
    /// The run in progress has ended (every participant done).
    ended: bool,
    /// A failure is being unwound: participants get the token one by one
    /// and leave by unwinding.
    aborting: bool,
    failure: Option<Failure>,
    picker: Picker,
    /// Hand-overs of the token so far: the driver's measure of progress.
    steps: u64,
    /// The run was given up as stalled: the stuck participant may still
    /// hold the token, so no new run may start.
    stalled: bool,
    /// A bound on the rest of the run, if one was set.
    limit: Option<Limit>,
    /// `pass`'s vectors, kept between passes (no allocation per hand-over).
    scratch_checks: Vec<(usize, Check)>,
    scratch_runnable: Vec<usize>,
}

/// The payload a participant unwinds with when a failed run is torn down.
pub(super) struct Abort;

thread_local! {
    /// `(core address, participant id)` of the calling thread (of the
    /// running coroutine, with coroutines: the driver sets it).
    static ME: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

pub(crate) struct SimCore {
    clock: VirtualClock,
    /// How long the token may stay with one participant that makes no twin
    /// call before the run is given up as stalled.
    stall_limit: Duration,
    state: Mutex<State>,
    /// Notified when a run ends (the driver waits on it).
    ended_cv: Condvar,
    /// A copy of `current` (`NOBODY` for `None`): what a participant
    /// waiting for the token (or the coroutine driver) reads without the
    /// lock.
    turn: AtomicUsize,
    /// A copy of `State::aborting`, read without the lock.
    aborting: AtomicBool,
    /// The executor's own state (the participants' OS threads, if any).
    #[cfg_attr(any(mqtwin_loom, mqtwin_sim_threads), allow(dead_code))]
    pub(super) exec: exec::State,
}

pub(super) const NOBODY: usize = usize::MAX;

impl std::fmt::Debug for SimCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("SimCore")
            .field("seed", &st.picker.seed)
            .field("participants", &st.parts.len())
            .field("decisions", &st.picker.decisions.len())
            .finish()
    }
}

impl SimCore {
    pub(crate) fn new(
        clock: VirtualClock,
        seed: u64,
        strategy: Strategy,
        replay: Option<Vec<u32>>,
        stall_limit: Duration,
    ) -> Self {
        SimCore {
            clock,
            stall_limit,
            ended_cv: Condvar::new(),
            turn: AtomicUsize::new(NOBODY),
            aborting: AtomicBool::new(false),
            exec: exec::State::default(),
            state: Mutex::new(State {
                parts: Vec::new(),
                current: None,
                running: false,
                ended: false,
                aborting: false,
                failure: None,
                picker: Picker::new(seed, strategy, replay),
                steps: 0,
                stalled: false,
                limit: None,
                scratch_checks: Vec::new(),
                scratch_runnable: Vec::new(),
            }),
        }
    }

    fn key(&self) -> usize {
        self as *const SimCore as usize
    }

    /// The calling thread's participant id in this run, if it is one.
    fn me(&self) -> Option<usize> {
        ME.with(Cell::get)
            .filter(|(k, _)| *k == self.key())
            .map(|(_, id)| id)
    }

    /// Makes the calling thread participant `id` (`None`: nobody) for [`me`](Self::me).
    pub(super) fn set_me(&self, id: Option<usize>) {
        ME.with(|m| m.set(id.map(|id| (self.key(), id))));
    }

    /// The token holder, read without the lock (`NOBODY` for none).
    pub(super) fn turn(&self) -> usize {
        self.turn.load(Ordering::Acquire)
    }

    /// Takes participant `id`'s body, for the executor to start it.
    pub(super) fn take_body(&self, id: usize) -> Option<Body> {
        self.state.lock().parts[id].body.take()
    }

    /// The calling thread's participant number, if it is one.
    pub(crate) fn participant(&self) -> Option<usize> {
        self.me()
    }

    /// Whether the calling thread is a participant of this simulation.
    pub(crate) fn is_participant(&self) -> bool {
        self.me().is_some()
    }

    pub(crate) fn seed(&self) -> u64 {
        self.state.lock().picker.seed
    }

    pub(crate) fn strategy(&self) -> Strategy {
        self.state.lock().picker.strategy
    }

    pub(crate) fn decisions(&self) -> Vec<u32> {
        self.state.lock().picker.decisions.clone()
    }

    pub(crate) fn diverged(&self) -> bool {
        self.state.lock().picker.diverged
    }

    /// A non-participant may use the twin only while no run is in progress.
    fn outsider(&self, what: &str) {
        if self.state.lock().running {
            panic!(
                "mqtwin: a thread that is not a participant of this deterministic twin {what} \
                 while its run is in progress; start it with Sim::spawn (threads outside the \
                 simulation would make the run depend on OS timing)"
            );
        }
    }

    /// A scheduling point at the start of a twin call: the scheduler may let
    /// another participant run first.
    pub(crate) fn point(&self, call: impl FnOnce() -> Call) {
        self.point_with(|c| *c = call());
    }

    /// [`point`](Self::point) that updates the participant's call in place
    /// (a call on the same queue as the last one keeps its name).
    pub(crate) fn point_with(&self, set: impl FnOnce(&mut Call)) {
        let Some(me) = self.me() else {
            return self.outsider("called the twin");
        };
        if std::thread::panicking() {
            return; // destructors of a panicking participant run on
        }
        let mut st = self.state.lock();
        if st.aborting {
            return; // destructors of an unwinding participant
        }
        set(&mut st.parts[me].call);
        self.pass_locked(st, Some(me));
        self.await_turn(me);
    }

    /// Panics unless the caller is a participant (see [`block`](Self::block)).
    pub(crate) fn may_block(&self) {
        if self.me().is_none() {
            panic!(
                "mqtwin: a thread that is not a participant of this deterministic twin would \
                 block in a twin call; only threads started with Sim::spawn may block"
            );
        }
    }

    /// Blocks the calling participant until `check` holds (re-evaluated by
    /// whoever holds the token) or virtual time reaches `deadline`. The
    /// caller re-checks its own condition afterwards.
    ///
    /// # Panics
    ///
    /// When the caller is not a participant: nothing could ever wake it.
    pub(crate) fn block(&self, check: Check, deadline: Option<SystemTime>) {
        let Some(me) = self.me() else {
            panic!(
                "mqtwin: a thread that is not a participant of this deterministic twin would \
                 block in a twin call; only threads started with Sim::spawn may block"
            );
        };
        {
            let mut st = self.state.lock();
            if st.aborting {
                self.aborting.store(true, Ordering::Release);
                drop(st);
                resume_unwind(Box::new(Abort));
            }
            st.parts[me].status = Status::Blocked { check, deadline };
        }
        self.pass(Some(me));
        self.await_turn(me);
    }

    /// Waits for the token; a torn-down run unwinds the participant.
    fn await_turn(&self, me: usize) {
        exec::wait_turn(self, me);
        if self.aborting.load(Ordering::Acquire) {
            resume_unwind(Box::new(Abort));
        }
    }

    /// The threaded executor's wait for the token: on `me`'s own condition
    /// variable, under the lock.
    #[cfg(any(mqtwin_loom, miri, mqtwin_sim_threads))]
    pub(super) fn wait_on_condvar(&self, me: usize) {
        let mut st = self.state.lock();
        let cv = Arc::clone(&st.parts[me].wake);
        while st.current != Some(me) {
            st = cv.wait(st);
        }
    }

    /// Sets the token holder.
    fn set_current(&self, st: &mut State, who: Option<usize>) {
        st.current = who;
        st.steps = st.steps.wrapping_add(1);
        self.turn.store(who.unwrap_or(NOBODY), Ordering::Release);
    }

    /// Bounds the rest of the run from now: virtual time may advance by at
    /// most `time`, and at most `steps` more scheduling steps (hand-overs
    /// of the token) may be taken; past either, the run fails with
    /// [`Failure::Overrun`] naming the unfinished participants. Both sums
    /// saturate. Called by the token holder (deterministic), or before a
    /// run. Replaces an earlier limit.
    #[cfg_attr(not(feature = "fuzzkit"), allow(dead_code))]
    pub(crate) fn limit(&self, time: Duration, steps: u64) {
        let until = crate::deadline::saturating_add(self.clock.now(), time);
        let mut st = self.state.lock();
        let at = st.steps.saturating_add(steps);
        st.limit = Some(Limit {
            until,
            steps: at,
            time,
            step_budget: steps,
        });
    }

    /// Fails the run as overrun (see [`limit`](Self::limit)).
    fn overrun(st: &mut State, exceeded: String) {
        let running = (st.parts.iter().enumerate())
            .filter(|(_, p)| !matches!(p.status, Status::Done))
            .map(|(i, p)| (i, p.call.to_string()))
            .collect();
        st.failure
            .get_or_insert(Failure::Overrun(Box::new(Overrun { exceeded, running })));
        st.aborting = true;
    }

    /// Registers a participant running `f`; it starts when the scheduler
    /// picks it. Not a scheduling point by itself.
    pub(crate) fn add(self: &Arc<Self>, f: Body) -> std::io::Result<usize> {
        if self.me().is_none() {
            self.outsider("spawned a participant");
        }
        let id = {
            let mut st = self.state.lock();
            st.parts.push(Part {
                wake: Default::default(),
                body: Some(f),
                call: Call::Fixed("(not started)"),
                status: Status::Runnable,
            });
            st.picker.added();
            st.parts.len() - 1
        };
        if let Err(e) = exec::start(self, id) {
            let mut st = self.state.lock();
            st.parts[id].status = Status::Done;
            st.parts[id].body = None;
            return Err(e);
        }
        Ok(id)
    }

    /// Participant `id` could not be started by the executor (no stack):
    /// the run fails as if it had panicked with `message`. Called by the
    /// executor in place of the token holder.
    #[cfg_attr(any(mqtwin_loom, miri, mqtwin_sim_threads), allow(dead_code))]
    pub(super) fn start_failed(&self, id: usize, message: String) {
        {
            let mut st = self.state.lock();
            st.failure.get_or_insert(Failure::Panicked {
                participant: id,
                message,
            });
            st.aborting = true;
            st.parts[id].status = Status::Done;
            st.parts[id].call = Call::Fixed("(not started)");
        }
        self.pass(Some(id));
    }

    /// A participant (on its thread or coroutine): wait for the first
    /// turn, run, hand over.
    pub(super) fn body(&self, id: usize, f: Body) {
        self.set_me(Some(id));
        let out = catch_unwind(AssertUnwindSafe(|| {
            self.await_turn(id);
            f();
        }));
        if let Err(payload) = out {
            if !payload.is::<Abort>() {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(a non-string panic payload)".into());
                let mut st = self.state.lock();
                st.failure.get_or_insert(Failure::Panicked {
                    participant: id,
                    message,
                });
                st.aborting = true;
            }
        }
        {
            let mut st = self.state.lock();
            st.parts[id].status = Status::Done;
            st.parts[id].call = Call::Fixed("(finished)");
        }
        self.pass(Some(id));
        self.set_me(None);
    }

    /// Picks the next token holder; called by the token holder (`running`,
    /// or the driver starting a run with `None`), holding no queue lock.
    fn pass(&self, running: Option<usize>) {
        self.pass_locked(self.state.lock(), running);
    }

    /// [`pass`](Self::pass) with the state lock already taken.
    fn pass_locked<'a>(&'a self, mut st: MutexGuard<'a, State>, running: Option<usize>) {
        loop {
            if st.aborting {
                return self.abort_next(st);
            }
            // One look at every participant: the runnable ones, and the
            // checks of the blocked ones, evaluated without the lock (they
            // take queue locks). The vectors are kept for the next pass.
            let mut checks = std::mem::take(&mut st.scratch_checks);
            let mut runnable = std::mem::take(&mut st.scratch_runnable);
            runnable.clear();
            for (i, p) in st.parts.iter().enumerate() {
                match &p.status {
                    Status::Runnable => runnable.push(i),
                    Status::Blocked { check, .. } => checks.push((i, Arc::clone(check))),
                    Status::Done => {}
                }
            }
            if !checks.is_empty() {
                drop(st);
                checks.retain(|(_, c)| c());
                st = self.state.lock();
                // Only the token holder changes statuses: nobody else
                // became runnable meanwhile.
                if !checks.is_empty() {
                    for &(i, _) in &checks {
                        st.parts[i].status = Status::Runnable;
                        runnable.push(i);
                    }
                    runnable.sort_unstable();
                }
                checks.clear();
            }
            st.scratch_checks = checks;
            if !runnable.is_empty() {
                if let Some(l) = st.limit.filter(|l| st.steps >= l.steps) {
                    st.scratch_runnable = runnable;
                    let n = l.step_budget;
                    Self::overrun(&mut st, format!("{n} scheduling steps"));
                    continue;
                }
                let pick = st.picker.pick(&runnable, running);
                st.scratch_runnable = runnable;
                self.set_current(&mut st, Some(pick));
                if running != Some(pick) {
                    exec::wake(&st.parts[pick].wake);
                }
                return;
            }
            st.scratch_runnable = runnable;
            let mut any_blocked = false;
            let mut next: Option<SystemTime> = None;
            for p in &st.parts {
                if let Status::Blocked { deadline, .. } = &p.status {
                    any_blocked = true;
                    next = match (next, *deadline) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
            if !any_blocked {
                self.set_current(&mut st, None);
                st.ended = true;
                self.ended_cv.notify_all();
                return;
            }
            // Everyone is blocked: time jumps to the next deadline.
            if let Some(next) = next {
                if let Some(l) = st.limit.filter(|l| next > l.until) {
                    let t = l.time;
                    Self::overrun(&mut st, format!("{t:?} of virtual time"));
                    continue;
                }
                drop(st);
                self.clock.advance_to(next);
                st = self.state.lock();
                continue;
            }
            let blocked = (st.parts.iter().enumerate())
                .filter(|(_, p)| matches!(p.status, Status::Blocked { .. }))
                .map(|(i, p)| (i, p.call.to_string()))
                .collect();
            st.failure.get_or_insert(Failure::Deadlock(blocked));
            st.aborting = true;
        }
    }

    /// Tears a failed run down: the lowest unfinished participant gets the
    /// token and unwinds; when none is left the run ends.
    fn abort_next(&self, mut st: MutexGuard<'_, State>) {
        match st
            .parts
            .iter()
            .position(|p| !matches!(p.status, Status::Done))
        {
            Some(i) => {
                self.aborting.store(true, Ordering::Release);
                self.set_current(&mut st, Some(i));
                exec::wake(&st.parts[i].wake);
            }
            None => {
                self.set_current(&mut st, None);
                st.ended = true;
                self.ended_cv.notify_all();
            }
        }
    }

    /// Runs every participant to the end (see `Sim::run`); returns the
    /// failure, if the run (or an earlier one) failed, and whether a run
    /// took place (`false`: nothing was left to run).
    pub(crate) fn run(self: &Arc<Self>) -> (Option<Failure>, bool) {
        if self.me().is_some() {
            panic!("mqtwin: Sim::run called from a participant; call it from the test's thread");
        }
        {
            let mut st = self.state.lock();
            if st.stalled {
                return (st.failure.clone(), false);
            }
            if st.running {
                panic!("mqtwin: Sim::run called while another thread runs the simulation");
            }
            if st.parts.iter().all(|p| matches!(p.status, Status::Done)) {
                return (st.failure.clone(), false);
            }
            st.running = true;
            st.ended = false;
        }
        self.pass(None);
        if let Err(e) = exec::drive(self) {
            // No thread to run the participants on: nothing ran, and
            // nothing can; the simulation stays failed.
            let mut st = self.state.lock();
            let participant = st.current.unwrap_or(0);
            st.failure.get_or_insert(Failure::Panicked {
                participant,
                message: format!("mqtwin: no thread to run the simulation on: {e}"),
            });
            self.aborting.store(true, Ordering::Release);
            st.aborting = true;
            st.stalled = true;
            st.running = false;
            return (st.failure.clone(), true);
        }
        exec::await_end(self);
        let mut st = self.state.lock();
        // Progress is a hand-over of the token; a holder that keeps it for
        // `stall_limit` of real time without a twin call is stuck outside
        // the twin, and the run is given up instead of hanging.
        let poll = (self.stall_limit / 4).clamp(Duration::from_millis(1), Duration::from_secs(1));
        let (mut steps, mut since) = (st.steps, Instant::now());
        while !st.ended {
            st = self.ended_cv.wait_timeout(st, poll);
            if st.ended {
                break;
            }
            if st.steps != steps {
                (steps, since) = (st.steps, Instant::now());
            } else if since.elapsed() >= self.stall_limit {
                let participant = st.current;
                let call = participant.map_or_else(String::new, |i| st.parts[i].call.to_string());
                st.failure.get_or_insert(Failure::Stalled(Box::new(Stall {
                    participant,
                    call,
                    after: self.stall_limit,
                })));
                // The stuck participant tears the run down if it ever
                // comes back to the twin (its next block unwinds it).
                self.aborting.store(true, Ordering::Release);
                st.aborting = true;
                st.stalled = true;
                st.running = false;
                return (st.failure.clone(), true);
            }
        }
        st.running = false;
        let failure = st.failure.clone();
        drop(st);
        exec::after_run(self);
        (failure, true)
    }

    /// Whether participant `id` has finished.
    pub(crate) fn is_done(&self, id: usize) -> bool {
        matches!(self.state.lock().parts[id].status, Status::Done)
    }
}
