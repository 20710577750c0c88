//! The twin: an in-memory IPC namespace with the Linux message-queue
//! semantics, for tests that need no kernel.
//!
//! Each [`Twin::new`] is a fresh, isolated namespace with the Linux default
//! limits; nothing is global, so tests never collide on names. A `Twin` value
//! is also *a caller*: a simulated process with [`Credentials`] (uid, gid,
//! umask, capabilities, `RLIMIT_MSGQUEUE`). [`Twin::process`] gives another
//! caller in the same namespace, so permission, ownership and accounting
//! rules can be exercised from one test.
//!
//! ```
//! use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};
//! use mqtwin::twin::{Credentials, Twin};
//!
//! let alice = Twin::with_credentials(Credentials::user(1001, 1001));
//! let bob = alice.process(Credentials::user(1002, 1002));
//! alice.open("/inbox", &OpenOptions::read_only().create().mode(0o620))?;
//! // Bob is neither owner nor in the group: mode 0o620 gives him nothing.
//! assert_eq!(
//!     bob.open("/inbox", &OpenOptions::write_only()).unwrap_err(),
//!     Error::PermissionDenied { name: "/inbox".into() }
//! );
//! // And only the owner (or root, or CAP_FOWNER) may unlink.
//! assert!(bob.unlink("/inbox").is_err());
//! alice.unlink("/inbox")?;
//! # Ok::<(), mqtwin::Error>(())
//! ```

mod builder;
mod clock;
mod fault;
mod handle;
#[cfg(all(unix, feature = "remote"))]
pub(crate) mod hook;
mod identity;
mod process;
mod queue;
mod sched;
mod seeds;
mod shared;
mod sim;
mod trace;
mod world;

use std::fmt;

use crate::error::Error;
use crate::limits::Limits;
use crate::name;
use crate::notify::SignalInfo;
use crate::options::OpenOptions;
use crate::queue::Namespace;
use crate::sync::Arc;

pub use builder::TwinBuilder;
pub use clock::VirtualClock;
pub use fault::{FaultPlan, FaultSite};
pub use handle::Queue;
pub use identity::{Capabilities, Credentials};
pub use sched::{set_thread_nice, thread_nice, NICE_MAX, NICE_MIN};
pub use seeds::{seeds, Seeds};
pub use sim::{JoinHandle, Schedule, Sim, SimError, Strategy};
pub use trace::TraceEvent;

/// Runs `job` on a reused worker thread (the deterministic twin's pool);
/// `wait()` on the result waits until it has finished (its closure dropped).
#[cfg(all(feature = "arbitrary", not(any(mqtwin_loom, miri))))]
pub(crate) fn run_on_worker(job: Box<dyn FnOnce() + Send>) -> std::io::Result<impl WaitFinished> {
    sim::run_on_worker(job)
}

/// A job handed to a worker ([`run_on_worker`]).
#[cfg(all(feature = "arbitrary", not(any(mqtwin_loom, miri))))]
pub(crate) trait WaitFinished {
    /// Waits until the job has finished, closure dropped.
    fn wait(&self);
}

use clock::Clock;
use process::Process;
#[cfg(all(unix, feature = "remote"))]
pub(crate) use process::SignalSink;
use world::World;

/// A twin IPC namespace, seen by one simulated process.
///
/// Cloning gives another handle for the *same* process; use
/// [`process`](Twin::process) for a different caller.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
/// let a = Twin::new();
/// let b = Twin::new();
/// a.open("/same-name", &OpenOptions::read_write().create_new())?;
/// b.open("/same-name", &OpenOptions::read_write().create_new())?; // separate namespace
/// # Ok::<(), mqtwin::Error>(())
/// ```
#[derive(Clone)]
pub struct Twin {
    world: Arc<World>,
    process: Arc<Process>,
    /// How long `wait_blocked` waits before it panics.
    wait_limit: std::time::Duration,
}

impl Twin {
    /// A new namespace with the Linux default [`Limits`] on the real clock,
    /// seen by a process with the default [`Credentials`] (an ordinary user).
    pub fn new() -> Self {
        Twin::builder().build()
    }

    /// A new namespace seen by a process with `credentials`.
    pub fn with_credentials(credentials: Credentials) -> Self {
        Twin::builder().credentials(credentials).build()
    }

    /// A builder for a twin with virtual time, fault injection or tracing.
    ///
    /// ```
    /// use mqtwin::twin::{Credentials, FaultPlan, Twin};
    /// let ns = Twin::builder()
    ///     .credentials(Credentials::user(1001, 1001))
    ///     .virtual_time()
    ///     .faults(FaultPlan::new(42).interrupt(0.1))
    ///     .trace()
    ///     .build();
    /// assert!(ns.virtual_clock().is_some());
    /// ```
    pub fn builder() -> TwinBuilder {
        TwinBuilder::default()
    }

    fn from_parts(
        clock: Clock,
        faults: Option<FaultPlan>,
        trace: bool,
        credentials: Credentials,
        wait_limit: std::time::Duration,
        sim: Option<Arc<sim::SimCore>>,
    ) -> Self {
        let world = Arc::new(World::new(clock, faults, trace, sim));
        let process = Arc::new(Process::new(world.next_pid(), credentials));
        Twin {
            world,
            process,
            wait_limit,
        }
    }

    /// Another simulated process (with its own pid) in the same namespace.
    pub fn process(&self, credentials: Credentials) -> Twin {
        Twin {
            process: Arc::new(Process::new(self.world.next_pid(), credentials)),
            world: Arc::clone(&self.world),
            wait_limit: self.wait_limit,
        }
    }

    /// Another simulated process whose notification signals are handed to
    /// `sink` (called on the sending thread, with no twin lock held) instead
    /// of being kept for [`take_signals`](Twin::take_signals).
    #[cfg(all(unix, feature = "remote"))]
    pub(crate) fn process_with_sink(&self, credentials: Credentials, sink: SignalSink) -> Twin {
        Twin {
            process: Arc::new(Process::with_sink(self.world.next_pid(), credentials, sink)),
            world: Arc::clone(&self.world),
            wait_limit: self.wait_limit,
        }
    }

    /// The scheduler of a deterministic twin (built with
    /// [`TwinBuilder::deterministic`]); `None` for a free-running twin.
    pub fn sim(&self) -> Option<Sim> {
        let core = self.world.sim.as_ref()?;
        Some(Sim::new(Arc::clone(&self.world), Arc::clone(core)))
    }

    /// The caller's credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.process.credentials
    }

    /// The simulated process id of this caller (notification signals carry
    /// the sender's pid).
    pub fn pid(&self) -> u32 {
        self.process.pid
    }

    /// The namespace's virtual clock, if it was built with one.
    pub fn virtual_clock(&self) -> Option<VirtualClock> {
        match &self.world.clock {
            Clock::Virtual(v) => Some(v.clone()),
            Clock::Real => None,
        }
    }

    /// The namespace's current time: virtual or real.
    pub fn now(&self) -> std::time::SystemTime {
        self.world.clock.now()
    }

    /// Removes and returns the notification signals delivered to this
    /// process, oldest first.
    pub fn take_signals(&self) -> Vec<SignalInfo> {
        self.process.take_signals()
    }

    /// Faults injected so far (0 without a [`FaultPlan`]).
    pub fn faults_injected(&self) -> u64 {
        self.world.fault_status().map_or(0, |(_, n)| n)
    }

    /// The fault plan in force, if any.
    pub fn fault_plan(&self) -> Option<FaultPlan> {
        self.world.fault_status().map(|(plan, _)| plan)
    }

    /// Replaces the fault plan of the whole namespace (`None`: no more
    /// faults), for every process, from the next call on; the count of
    /// injected faults ([`faults_injected`](Twin::faults_injected)) and the
    /// plan's random sequence restart. (`mqtwin ctl faults --set` does this
    /// on a served twin.)
    ///
    /// ```
    /// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::{FaultPlan, Twin}};
    /// let ns = Twin::new();
    /// let q = ns.open("/q", &OpenOptions::read_write().create())?;
    /// ns.set_fault_plan(Some(FaultPlan::new(1).send(1.0)));
    /// assert_eq!(q.send(b"x", 0), Err(Error::OutOfMemory));
    /// ns.set_fault_plan(None);
    /// q.send(b"x", 0)?;
    /// # Ok::<(), Error>(())
    /// ```
    pub fn set_fault_plan(&self, plan: Option<FaultPlan>) {
        self.world.point(|| "set_fault_plan".into());
        self.world.set_faults(plan);
    }

    /// The calls recorded so far (empty unless built with
    /// [`TwinBuilder::trace`]).
    pub fn trace(&self) -> Vec<TraceEvent> {
        self.world.trace()
    }

    /// The trace as text, one call per line, for a failing test to print.
    pub fn trace_dump(&self) -> String {
        self.trace().iter().map(|e| format!("{e}\n")).collect()
    }

    /// The namespace's limits (the `fs.mqueue.*` sysctls).
    pub fn limits(&self) -> Limits {
        self.world.limits()
    }

    /// Changes the namespace's limits, as writing the sysctls would. Existing
    /// queues keep their attributes.
    ///
    /// ```
    /// use mqtwin::{Error, Limits, Namespace, OpenOptions, twin::Twin};
    /// let ns = Twin::new();
    /// ns.set_limits(Limits { queues_max: 1, ..Limits::default() })?;
    /// ns.open("/one", &OpenOptions::read_write().create())?;
    /// assert_eq!(ns.open("/two", &OpenOptions::read_write().create()).unwrap_err(), Error::TooManyQueues);
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `EINVAL` (as [`Error::Os`]) for values the kernel refuses; see
    /// [`Limits::validate`].
    pub fn set_limits(&self, limits: Limits) -> Result<(), Error> {
        self.world.point(|| "set_limits".into());
        self.world.set_limits(limits)
    }

    /// Queues in the namespace, counting unlinked ones that are still open
    /// (what `queues_max` is compared with).
    pub fn queue_count(&self) -> usize {
        self.world.queue_count()
    }

    /// `RLIMIT_MSGQUEUE` bytes currently charged to `uid` in this namespace.
    pub fn charged_bytes(&self, uid: u32) -> u64 {
        self.world.charged_bytes(uid)
    }

    /// A value of type `T` kept in this namespace: one per type, the same
    /// for every clone, process and participant of the namespace, made with
    /// `T::default()` on first use and dropped with the namespace. For test
    /// models that several simulated peers update and a final check reads
    /// (the fuzz kit's clients keep their ledger here); put a `Mutex` or
    /// atomics inside for mutation.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use mqtwin::twin::Twin;
    ///
    /// #[derive(Default)]
    /// struct Sent(AtomicU64);
    ///
    /// let ns = Twin::new();
    /// let peer = ns.process(ns.credentials().clone());
    /// peer.shared::<Sent>().0.fetch_add(2, Ordering::Relaxed);
    /// assert_eq!(ns.shared::<Sent>().0.load(Ordering::Relaxed), 2); // one namespace, one value
    /// assert_eq!(Twin::new().shared::<Sent>().0.load(Ordering::Relaxed), 0); // another namespace
    /// ```
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> std::sync::Arc<T> {
        self.world.shared.get_or_default::<T>()
    }

    /// Callers currently blocked in this namespace: in a send, a receive or
    /// a [`wait_ready`](crate::MessageQueue::wait_ready).
    pub fn blocked(&self) -> usize {
        self.world.blocked_count()
    }

    /// Waits until at least `n` callers are blocked in this namespace (in a
    /// send, a receive or a `wait_ready`): a
    /// deterministic point at which a test knows its threads are queued as
    /// waiters: by nice value ([`set_thread_nice`]), and in the order they
    /// blocked among equal values.
    ///
    /// ```
    /// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let ns = Twin::new();
    /// let q = ns.open("/q", &OpenOptions::read_write().create())?;
    /// std::thread::scope(|s| {
    ///     let rx = s.spawn(|| { let mut b = [0; 8192]; q.receive(&mut b).map(|r| r.priority) });
    ///     ns.wait_blocked(1); // the receiver is now a waiter...
    ///     q.send(b"hi", 7).unwrap(); // ...so this hands the message straight to it
    ///     assert_eq!(rx.join().unwrap(), Ok(7));
    /// });
    /// # Ok::<(), mqtwin::Error>(())
    /// ```
    ///
    /// # Panics
    ///
    /// When `n` callers are not blocked within the twin's wait limit (60
    /// seconds of real time unless set with
    /// [`TwinBuilder::wait_blocked_limit`] or the `MQTWIN_WAIT_BLOCKED_SECS`
    /// environment variable), with a message saying how many were blocked
    /// (and the last calls, when tracing): a test whose thread never blocks
    /// fails instead of hanging the suite.
    ///
    /// In a participant of a deterministic twin ([`Sim`]), this is a
    /// blocking point: the other participants run until `n` callers are
    /// blocked, and a count that can never be reached fails the run as a
    /// deadlock (no real-time limit).
    pub fn wait_blocked(&self, n: usize) {
        self.world.wait_blocked(n, self.wait_limit)
    }

    /// Delivers a signal to `thread`, as `pthread_kill` does on Linux when a
    /// handler is installed for it with `SA_RESTART` (`restart == true`) or
    /// without. Returns whether `thread` was blocked in this namespace (in a
    /// send, a receive or a `wait_ready`, and not yet served); otherwise
    /// nothing happens.
    ///
    /// - A blocked send or receive without `restart` returns
    ///   [`Error::Interrupted`] (`EINTR`): nothing is sent or received, and
    ///   the caller leaves the waiter list at once ([`blocked`](Twin::blocked)
    ///   drops before this returns).
    /// - With `restart`, the call restarts as the kernel restarts it: it
    ///   blocks again, behind every waiter of its nice value
    ///   ([`set_thread_nice`]), so it loses its place; its deadline is
    ///   absolute and stays. It stays blocked throughout.
    /// - `wait_ready` is `poll`, which Linux never restarts once a handler
    ///   ran: it returns `Interrupted` either way, unless the queue is
    ///   ready by the time it runs; it counts as blocked until it returns.
    /// - A caller already served (a message handed to it, or its message
    ///   moved in) is not blocked any more and keeps its result, as in the
    ///   kernel, where `wq_sleep` looks for its hand-over before signals.
    ///
    /// The twin delivers at once: the caller acts on the signal before any
    /// other call on its queue, one of the interleavings the kernel allows.
    /// Block the thread first (see [`wait_blocked`](Twin::wait_blocked)).
    ///
    /// ```
    /// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let ns = Twin::new();
    /// let q = ns.open("/q", &OpenOptions::read_write().create())?;
    /// std::thread::scope(|s| {
    ///     let rx = s.spawn(|| q.receive(&mut [0; 8192]).map(|m| m.len));
    ///     ns.wait_blocked(1);
    ///     assert!(ns.interrupt(rx.thread().id(), false));
    ///     assert_eq!(rx.join().unwrap(), Err(Error::Interrupted));
    ///     assert!(!ns.interrupt(std::thread::current().id(), false)); // not blocked
    /// });
    /// # Ok::<(), mqtwin::Error>(())
    /// ```
    ///
    /// `thread` names a thread that is not a participant of a deterministic
    /// run: participants share their OS thread with the others (they are
    /// coroutines), so no `ThreadId` names one; interrupt a participant with
    /// [`interrupt_participant`](Twin::interrupt_participant).
    pub fn interrupt(&self, thread: std::thread::ThreadId, restart: bool) -> bool {
        self.interrupt_target(trace::Target::Thread(thread), restart)
    }

    /// [`interrupt`](Twin::interrupt) for participant number `participant`
    /// of this twin's deterministic run (its [`JoinHandle::id`], or
    /// [`Sim::participant`] from inside it): the same rules. Returns whether
    /// it was blocked in this namespace; on a twin that is not
    /// deterministic, `false`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let ns = Twin::builder().deterministic(1).build();
    /// let sim = ns.sim().expect("deterministic");
    /// let q = ns.open("/q", &OpenOptions::read_write().create())?;
    /// let rx = sim.spawn(move || q.receive(&mut [0; 8192]).map(|m| m.len));
    /// let (id, ns2, s2) = (rx.id(), ns.clone(), sim.clone());
    /// sim.spawn(move || {
    ///     ns2.wait_blocked(1);
    ///     assert!(ns2.interrupt_participant(id, false));
    ///     assert_eq!(s2.participant(), Some(1));
    /// });
    /// assert_eq!(rx.join().unwrap(), Err(Error::Interrupted));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn interrupt_participant(&self, participant: usize, restart: bool) -> bool {
        self.interrupt_target(trace::Target::Participant(participant), restart)
    }

    fn interrupt_target(&self, target: trace::Target, restart: bool) -> bool {
        // Traced by who the interrupted caller is in the run (a
        // participant's number, a thread's name), not by `ThreadId`: that
        // counter depends on the process's history, and a trace must not.
        self.world
            .point(|| format!("interrupt(restart: {restart})"));
        let who = self.world.interrupt(target, restart);
        if self.world.tracing() {
            let target = match &who {
                Some(who) => who.to_string(),
                None => "a thread not blocked here".into(),
            };
            self.world.record(
                self.process.pid,
                format!("interrupt({target}, restart: {restart})"),
                format!("{}", who.is_some()),
            );
        }
        who.is_some()
    }

    /// As [`wait_blocked`](Twin::wait_blocked), but gives up after `timeout`
    /// of *real* time (also under virtual time), returning whether `n`
    /// callers were blocked. Lets a broken test fail instead of hang. A
    /// timeout too large for the clock (`Duration::MAX`) waits without limit.
    ///
    /// Called by a participant of a deterministic twin, the timeout does not
    /// apply (real time means nothing there): it waits as a blocked
    /// participant until `n` callers are blocked, and if that can never
    /// happen the run fails with a deadlock report instead of hanging.
    pub fn wait_blocked_timeout(&self, n: usize, timeout: std::time::Duration) -> bool {
        self.world.wait_blocked_timeout(n, timeout)
    }
}

impl Default for Twin {
    fn default() -> Self {
        Twin::new()
    }
}

impl fmt::Debug for Twin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Twin")
            .field("pid", &self.process.pid)
            .field("credentials", &self.process.credentials)
            .field("queues", &self.world.queue_count())
            .finish()
    }
}

impl Namespace for Twin {
    type Queue = Queue;

    fn open(&self, name: &str, options: &OpenOptions) -> Result<Queue, Error> {
        self.world.point(|| format!("open({name:?})"));
        let r = name::validate(name).and_then(|comp| {
            let queue = self
                .world
                .open(comp, name, options, &self.process.credentials)?;
            Ok(Queue::new(
                Arc::clone(&self.world),
                queue,
                Arc::clone(&self.process),
                name,
                options.get_access(),
                options.is_nonblocking(),
            ))
        });
        if self.world.tracing() {
            let shown = r.as_ref().map(drop).map_err(Clone::clone);
            self.world.record(
                self.process.pid,
                format!("open({name:?}, {options:?})"),
                format!("{shown:?}"),
            );
        }
        r
    }

    fn unlink(&self, name: &str) -> Result<(), Error> {
        self.world.point(|| format!("unlink({name:?})"));
        let r = name::validate(name)
            .and_then(|comp| self.world.unlink(comp, name, &self.process.credentials));
        if self.world.tracing() {
            self.world.record(
                self.process.pid,
                format!("unlink({name:?})"),
                format!("{r:?}"),
            );
        }
        r
    }

    fn now(&self) -> std::time::SystemTime {
        self.world.clock.now()
    }
}
