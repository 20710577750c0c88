//! The state of one twin IPC namespace: the name table, the queues that
//! exist (linked or not), per-user byte accounting, and the blocked-caller
//! count tests synchronise on. `mq_open`, `mq_unlink` and close live here.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::limits::{queue_cost, Limits};
use crate::options::OpenOptions;
use crate::sync::{Arc, Condvar, Mutex};

use super::clock::Clock;
use super::fault::{FaultPlan, FaultSite, Faults};
use super::identity::Credentials;
use super::queue::{QueueMeta, QueueShared};
use super::shared::SharedValues;
use super::sim::{Call, SimCore};
use super::trace::TraceEvent;

/// A queue that exists, with its lifetime bookkeeping.
#[derive(Debug)]
struct Entry {
    queue: Arc<QueueShared>,
    /// Open descriptions referring to it.
    open: usize,
    /// The name no longer refers to it.
    unlinked: bool,
}

#[derive(Debug, Default)]
struct Table {
    limits: Limits,
    /// Name (after the slash) → queue id.
    names: HashMap<Vec<u8>, u64>,
    /// Every queue that exists, linked or not: `queues_count` is its length.
    queues: HashMap<u64, Entry>,
    /// `RLIMIT_MSGQUEUE` bytes charged per uid.
    charged: HashMap<u32, u64>,
    next_id: u64,
}

/// Callers blocked in the namespace, and threads waiting for that number in
/// `wait_blocked` (only they need a notification when it changes).
#[derive(Debug, Default)]
struct Blocked {
    count: usize,
    watchers: usize,
}

/// One twin namespace.
#[derive(Debug)]
pub(crate) struct World {
    table: Mutex<Table>,
    pub(crate) clock: Clock,
    blocked: Arc<Mutex<Blocked>>,
    blocked_changed: Condvar,
    /// The fault plan, if any; `faults_on` says whether there is one, so
    /// that a twin without a plan takes no lock for it. (A std atomic even
    /// under loom: the plan is no synchronisation between callers, and the
    /// loom models run without one.)
    faults: Mutex<Option<Faults>>,
    faults_on: std::sync::atomic::AtomicBool,
    trace: Option<Mutex<Vec<TraceEvent>>>,
    next_pid: Mutex<u32>,
    /// What tests keep in the namespace (`Twin::shared`).
    pub(crate) shared: SharedValues,
    /// The scheduler, in deterministic mode.
    pub(crate) sim: Option<Arc<SimCore>>,
}

impl World {
    pub(crate) fn new(
        clock: Clock,
        faults: Option<FaultPlan>,
        trace: bool,
        sim: Option<Arc<SimCore>>,
    ) -> Self {
        World {
            sim,
            clock,
            faults_on: std::sync::atomic::AtomicBool::new(faults.is_some()),
            faults: Mutex::new(faults.map(Faults::new)),
            trace: trace.then(|| Mutex::new(Vec::new())),
            next_pid: Mutex::new(100),
            shared: SharedValues::default(),
            table: Mutex::default(),
            blocked: Arc::new(Mutex::new(Blocked::default())),
            blocked_changed: Condvar::new(),
        }
    }

    /// A scheduling point (deterministic mode) at the start of a call
    /// described by `call`; nothing otherwise.
    #[inline]
    pub(crate) fn point(&self, call: impl FnOnce() -> String) {
        if let Some(sim) = &self.sim {
            sim.point(|| Call::Text(call()));
        }
    }

    /// [`point`](Self::point) for a call on the queue handle named `name`
    /// (described as `what("/name")`, formatted only if a report needs it).
    #[inline]
    pub(crate) fn point_queue(&self, what: &'static str, name: &Arc<str>) {
        if let Some(sim) = &self.sim {
            sim.point_with(|c| match c {
                Call::Queue(w, n) if Arc::ptr_eq(n, name) => *w = what,
                c => *c = Call::Queue(what, Arc::clone(name)),
            });
        }
    }

    /// Called before a caller joins a waiter list: in deterministic mode,
    /// a thread that is not a participant may not block (nothing could
    /// wake it), and panics here, before it changed anything.
    #[inline]
    pub(crate) fn may_block(&self) {
        if let Some(sim) = &self.sim {
            sim.may_block();
        }
    }

    /// Runs `f` on a new thread: a participant in deterministic mode, a
    /// detached thread otherwise. Fails only if no thread can be created.
    pub(crate) fn spawn(&self, f: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
        match &self.sim {
            Some(sim) => sim.add(f).map(drop),
            None => crate::sync::spawn_detached("mqtwin-notify", f),
        }
    }

    /// A fresh pid for a new simulated process.
    pub(crate) fn next_pid(&self) -> u32 {
        let mut p = self.next_pid.lock();
        *p += 1;
        *p
    }

    /// Rolls the fault plan for `site`; `Err` is the injected fault.
    pub(crate) fn fault(&self, site: FaultSite, creating: bool) -> Result<(), Error> {
        if !self.faults_on.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        match &mut *self.faults.lock() {
            Some(f) => f.roll(site, creating).map_or(Ok(()), Err),
            None => Ok(()),
        }
    }

    /// Replaces the fault plan (`None`: no faults from now on); the count of
    /// injected faults restarts.
    pub(crate) fn set_faults(&self, plan: Option<FaultPlan>) {
        let mut f = self.faults.lock();
        *f = plan.map(Faults::new);
        self.faults_on
            .store(f.is_some(), std::sync::atomic::Ordering::Release);
    }

    /// Faults injected so far, and the plan.
    pub(crate) fn fault_status(&self) -> Option<(FaultPlan, u64)> {
        let f = self.faults.lock();
        let f = f.as_ref()?;
        Some((f.plan().clone(), f.injected()))
    }

    /// Whether calls are being traced.
    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Appends a call to the trace, if tracing.
    pub(crate) fn record(&self, pid: u32, call: String, result: String) {
        if let Some(t) = &self.trace {
            let time = self.clock.now();
            let mut t = t.lock();
            let seq = t.len() as u64;
            t.push(TraceEvent {
                seq,
                time,
                pid,
                call,
                result,
            });
        }
    }

    /// The trace so far.
    pub(crate) fn trace(&self) -> Vec<TraceEvent> {
        self.trace
            .as_ref()
            .map(|t| t.lock().clone())
            .unwrap_or_default()
    }

    pub(crate) fn limits(&self) -> Limits {
        self.table.lock().limits
    }

    pub(crate) fn set_limits(&self, limits: Limits) -> Result<(), Error> {
        limits.validate()?;
        self.table.lock().limits = limits;
        Ok(())
    }

    /// `mq_open` after name validation, in the kernel's check order.
    pub(crate) fn open(
        &self,
        comp: &[u8],
        full_name: &str,
        opts: &OpenOptions,
        who: &Credentials,
    ) -> Result<Arc<QueueShared>, Error> {
        let mut t = self.table.lock();
        let exists = t.names.contains_key(comp);
        // An injected fault strikes where the kernel would fail: EMFILE
        // (descriptor) and ENOMEM first, ENOSPC at the queues_max check,
        // ENFILE last (from `dentry_open`, after a new queue was created).
        let fault = if self.faults_on.load(std::sync::atomic::Ordering::Acquire) {
            match &mut *self.faults.lock() {
                Some(f) => f.roll(FaultSite::Open, !exists && opts.is_create()),
                None => None,
            }
        } else {
            None
        };
        let late_fault = match fault {
            Some(e @ (Error::ResourceLimit | Error::OutOfMemory)) => return Err(e),
            other => other,
        };
        let enfile = |e: &Option<Error>| matches!(e, Some(Error::Os { .. }));
        if let Some(&id) = t.names.get(comp) {
            let entry = t.queues.get_mut(&id).expect("named queues exist");
            if opts.is_create_new() {
                return Err(Error::AlreadyExists {
                    name: full_name.into(),
                });
            }
            let m = &entry.queue.meta;
            let access = opts.get_access();
            if !who.may_open(m.uid, m.gid, m.mode, access.can_read(), access.can_write()) {
                return Err(Error::PermissionDenied {
                    name: full_name.into(),
                });
            }
            if enfile(&late_fault) {
                return Err(late_fault.unwrap_or(Error::OutOfMemory));
            }
            entry.open += 1;
            return Ok(Arc::clone(&entry.queue));
        }
        if !opts.is_create() {
            return Err(Error::NotFound {
                name: full_name.into(),
            });
        }
        let privileged = who.capabilities.sys_resource;
        if late_fault == Some(Error::TooManyQueues)
            || (!privileged && t.limits.queues_exhausted(t.queues.len()))
        {
            return Err(Error::TooManyQueues);
        }
        let requested = opts.requested_attributes(t.limits.defaults());
        let (capacity, max_msg_len) = t.limits.resolve(requested, privileged)?;
        let cost = queue_cost(capacity, max_msg_len);
        let charged = t.charged.get(&who.uid).copied().unwrap_or(0);
        match charged.checked_add(cost) {
            Some(total) if total <= who.rlimit_msgqueue => {
                t.charged.insert(who.uid, total);
            }
            _ => {
                return Err(Error::QueueBytesLimit {
                    cost,
                    limit: who.rlimit_msgqueue,
                })
            }
        }
        t.next_id += 1;
        let queue = Arc::new(QueueShared::new(QueueMeta {
            id: t.next_id,
            uid: who.uid,
            gid: who.gid,
            mode: opts.get_mode() & !who.umask & 0o7777,
            capacity,
            max_msg_len,
            charged_uid: who.uid,
            cost,
        }));
        let id = t.next_id;
        t.names.insert(comp.to_vec(), id);
        t.queues.insert(
            id,
            Entry {
                queue: Arc::clone(&queue),
                open: usize::from(!enfile(&late_fault)),
                unlinked: false,
            },
        );
        if enfile(&late_fault) {
            // The queue exists (and is charged) but no descriptor was made.
            return Err(late_fault.unwrap_or(Error::OutOfMemory));
        }
        Ok(queue)
    }

    /// `mq_unlink` after name validation.
    pub(crate) fn unlink(
        &self,
        comp: &[u8],
        full_name: &str,
        who: &Credentials,
    ) -> Result<(), Error> {
        let mut t = self.table.lock();
        let Some(&id) = t.names.get(comp) else {
            return Err(Error::NotFound {
                name: full_name.into(),
            });
        };
        let entry = t.queues.get_mut(&id).expect("named queues exist");
        if !who.may_unlink(entry.queue.meta.uid) {
            return Err(Error::PermissionDenied {
                name: full_name.into(),
            });
        }
        entry.unlinked = true;
        let idle = entry.open == 0;
        t.names.remove(comp);
        if idle {
            t.destroy(id);
        }
        Ok(())
    }

    /// The last handle of an open description went away (`close`).
    pub(crate) fn close(&self, id: u64) {
        let mut t = self.table.lock();
        let Some(entry) = t.queues.get_mut(&id) else {
            return;
        };
        entry.open -= 1;
        if entry.open == 0 && entry.unlinked {
            t.destroy(id);
        }
    }

    /// Queues that exist in this namespace, including unlinked ones still
    /// open (the kernel's `queues_count`).
    pub(crate) fn queue_count(&self) -> usize {
        self.table.lock().queues.len()
    }

    /// `RLIMIT_MSGQUEUE` bytes currently charged to `uid`.
    pub(crate) fn charged_bytes(&self, uid: u32) -> u64 {
        self.table.lock().charged.get(&uid).copied().unwrap_or(0)
    }

    /// Interrupts `target` if it is blocked on a queue of this namespace
    /// ([`QueueShared::interrupt`]). Returns who it was, if it was.
    pub(crate) fn interrupt(
        &self,
        target: super::trace::Target,
        restart: bool,
    ) -> Option<super::trace::Who> {
        // Not under the table lock: queue locks are never taken inside it.
        let queues: Vec<Arc<QueueShared>> = (self.table.lock().queues.values())
            .map(|e| Arc::clone(&e.queue))
            .collect();
        queues
            .iter()
            .find_map(|q| q.interrupt(self, target, restart))
    }

    /// Callers currently blocked in this namespace.
    pub(crate) fn blocked_count(&self) -> usize {
        self.blocked.lock().count
    }

    /// Waits until at least `n` callers are blocked in this namespace, at
    /// most `limit` of real time; then panics saying how many were blocked.
    pub(crate) fn wait_blocked(&self, n: usize, limit: Duration) {
        if self.wait_blocked_timeout(n, limit) {
            return;
        }
        let trace = self.trace();
        let tail = trace.len().saturating_sub(10);
        let recent: String = trace[tail..].iter().map(|e| format!("\n    {e}")).collect();
        panic!(
            "mqtwin: wait_blocked({n}) gave up after {limit:?}: {} caller(s) blocked in this \
             twin. A thread that never blocks here (it returned, failed, or waits on \
             something else) would make it wait forever. Use wait_blocked_timeout to \
             handle this yourself, or raise the limit with \
             TwinBuilder::wait_blocked_limit or MQTWIN_WAIT_BLOCKED_SECS.{}",
            self.blocked_count(),
            if recent.is_empty() {
                " (Build the twin with .trace() to see its last calls here.)".to_owned()
            } else {
                format!(" Last calls:{recent}")
            }
        );
    }

    /// As `wait_blocked`, giving up after `timeout` of real time (a timeout
    /// too large for the clock waits without limit).
    pub(crate) fn wait_blocked_timeout(&self, n: usize, timeout: Duration) -> bool {
        if let Some(sim) = self.sim.as_ref().filter(|s| s.is_participant()) {
            // A participant waits as a blocked participant: the others run
            // until `n` are blocked, and a count never reached is a deadlock
            // (the real-time limit does not apply).
            sim.point(|| Call::Text(format!("wait_blocked({n})")));
            while self.blocked_count() < n {
                let b = Arc::clone(&self.blocked);
                sim.block(Arc::new(move || b.lock().count >= n), None);
            }
            return true;
        }
        let end = Instant::now().checked_add(timeout);
        let mut b = self.blocked.lock();
        b.watchers += 1;
        let reached = loop {
            if b.count >= n {
                break true;
            }
            match end {
                None => b = self.blocked_changed.wait(b),
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        break false;
                    }
                    b = self.blocked_changed.wait_timeout(b, end - now);
                }
            }
        };
        b.watchers -= 1;
        reached
    }

    /// `n` callers joined a waiter list.
    pub(crate) fn blocked(&self, n: usize) {
        let mut b = self.blocked.lock();
        b.count += n;
        if b.watchers > 0 {
            self.blocked_changed.notify_all();
        }
    }

    /// `n` callers left a waiter list (served or timed out).
    pub(crate) fn unblocked(&self, n: usize) {
        let mut b = self.blocked.lock();
        b.count -= n;
        if b.watchers > 0 {
            self.blocked_changed.notify_all();
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        // A failing test drops its twin while unwinding: say how to replay.
        if std::thread::panicking() {
            if let Some((plan, injected)) = self.fault_status() {
                eprintln!("mqtwin: the twin ran with {plan:?} ({injected} faults injected); replay with the same seed");
            }
        }
    }
}

impl Table {
    /// Unlinked and closed: drop the messages, free the slot, uncharge.
    fn destroy(&mut self, id: u64) {
        if let Some(entry) = self.queues.remove(&id) {
            let m = &entry.queue.meta;
            if let Some(c) = self.charged.get_mut(&m.charged_uid) {
                *c = c.saturating_sub(m.cost);
            }
        }
    }
}
