//! One queue of the twin: messages in priority order, the two waiter lists,
//! the notification registration, and the send / receive algorithms of
//! `ipc/mqueue.c` (direct handoff to a waiting receiver, a blocked sender's
//! message moved in by a receive, notification on empty → non-empty).

use std::any::Any;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::task::Waker;
use std::thread::ThreadId;

use super::trace::{Target, Who};
use std::time::{Duration, Instant, SystemTime};

use crate::deadline::MQ_PRIO_MAX;
use crate::error::Error;
use crate::notify::{Interest, Notify, Readiness, SignalInfo, SI_MESGQ};
use crate::queue::Received;
use crate::sync::{Arc, AtomicBool, Condvar, Mutex, MutexGuard, Ordering};

use super::clock::{Clock, Sleeper};
use super::fault::FaultSite;
use super::process::Process;
use super::sim::{Check, SimCore};
use super::world::World;

/// The fixed facts of a queue, set at creation.
#[derive(Debug)]
pub(crate) struct QueueMeta {
    pub(crate) id: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mode: u32,
    pub(crate) capacity: usize,
    pub(crate) max_msg_len: usize,
    /// Who was charged `cost` bytes of `RLIMIT_MSGQUEUE` at creation.
    pub(crate) charged_uid: u32,
    pub(crate) cost: u64,
}

/// A queue: its fixed facts and its mutable state behind one lock.
#[derive(Debug)]
pub(crate) struct QueueShared {
    pub(crate) meta: QueueMeta,
    pub(crate) state: Mutex<QueueState>,
}

/// End of a slot list.
const NIL: u32 = u32::MAX;

/// Payload bytes that free slots may keep for reuse, per queue: a send into
/// a free slot whose old payload has the same length copies into it instead
/// of allocating (steady traffic of equal-sized messages allocates nothing).
const SPARE_BYTES: usize = 64 * 1024;

/// Priorities in use at which the index turns dense (a bitmap and an array
/// of all 32,768 FIFOs, 260 KiB, i.e. at most 16 bytes per priority in use).
const DENSE_AT: usize = 16_384;

/// Oldest and newest slot of one priority.
#[derive(Debug, Clone, Copy)]
struct Fifo {
    head: u32,
    tail: u32,
}

impl Fifo {
    /// A priority not in use (dense index).
    const UNUSED: Fifo = Fifo {
        head: NIL,
        tail: NIL,
    };
}

/// Every priority in use, except the highest (kept in [`Messages::top`]),
/// with its FIFO.
///
/// Sparse (an ordered map, one entry per priority in use, like the kernel's
/// tree) while few priorities are in use; dense once [`DENSE_AT`] are:
/// then finding, adding and removing a priority is a few bit operations
/// whatever the number of priorities. It stays dense for the queue's life.
#[derive(Debug)]
enum Index {
    Sparse(BTreeMap<u32, Fifo>),
    Dense(Box<Dense>),
}

/// The dense index: a FIFO per priority (`head == NIL` when unused), a bit
/// per priority in use, and a bit per non-zero word of those.
#[derive(Debug)]
struct Dense {
    fifos: Vec<Fifo>,
    bits: Vec<u64>,
    summary: [u64; Dense::SUMMARY],
}

impl Dense {
    const WORDS: usize = MQ_PRIO_MAX as usize / 64;
    const SUMMARY: usize = Dense::WORDS / 64;

    fn new() -> Box<Self> {
        Box::new(Dense {
            fifos: vec![Fifo::UNUSED; MQ_PRIO_MAX as usize],
            bits: vec![0; Dense::WORDS],
            summary: [0; Dense::SUMMARY],
        })
    }

    fn insert(&mut self, priority: u32, fifo: Fifo) {
        let (p, w) = (priority as usize, priority as usize / 64);
        self.fifos[p] = fifo;
        self.bits[w] |= 1 << (p % 64);
        self.summary[w / 64] |= 1 << (w % 64);
    }

    fn pop_last(&mut self) -> Option<(u32, Fifo)> {
        let s = self.summary.iter().rposition(|&s| s != 0)?;
        let w = s * 64 + 63 - self.summary[s].leading_zeros() as usize;
        let p = w * 64 + 63 - self.bits[w].leading_zeros() as usize;
        self.bits[w] &= !(1 << (p % 64));
        if self.bits[w] == 0 {
            self.summary[s] &= !(1 << (w % 64));
        }
        let fifo = std::mem::replace(&mut self.fifos[p], Fifo::UNUSED);
        Some((p as u32, fifo))
    }
}

impl Index {
    /// The FIFO of `priority` if in use; otherwise adds `new` for it.
    fn get_or_insert(&mut self, priority: u32, new: Fifo) -> Option<&mut Fifo> {
        self.densify();
        match self {
            Index::Sparse(map) => match map.entry(priority) {
                Entry::Occupied(o) => Some(o.into_mut()),
                Entry::Vacant(v) => {
                    v.insert(new);
                    None
                }
            },
            Index::Dense(d) => {
                if d.fifos[priority as usize].head != NIL {
                    return Some(&mut d.fifos[priority as usize]);
                }
                d.insert(priority, new);
                None
            }
        }
    }

    /// Adds `priority`, not in use yet.
    fn insert(&mut self, priority: u32, fifo: Fifo) {
        self.densify();
        match self {
            Index::Sparse(map) => {
                map.insert(priority, fifo);
            }
            Index::Dense(d) => d.insert(priority, fifo),
        }
    }

    /// Removes and returns the highest priority in use.
    fn pop_last(&mut self) -> Option<(u32, Fifo)> {
        match self {
            Index::Sparse(map) => map.pop_last(),
            Index::Dense(d) => d.pop_last(),
        }
    }

    /// Turns a sparse index holding [`DENSE_AT`] priorities dense.
    fn densify(&mut self) {
        if let Index::Sparse(map) = self {
            if map.len() >= DENSE_AT {
                let mut d = Dense::new();
                for (&p, &f) in map.iter() {
                    d.insert(p, f);
                }
                *self = Index::Dense(d);
            }
        }
    }
}

/// Messages in per-priority FIFOs (`msg_insert`/`msg_get`).
///
/// All messages of a queue live in one slab of slots (a payload and the
/// next slot of its FIFO, in two parallel arrays), linked per priority. The
/// highest priority's FIFO is kept aside in `top` (the kernel caches its
/// tree's rightmost node the same way); an [`Index`] holds the others. A
/// message costs its payload, 20 bytes of slot and its share of the index:
/// no allocation per message beyond the payload, and traffic at one
/// priority never touches the index.
#[derive(Debug)]
pub(crate) struct Messages {
    /// Slot payloads; a free slot may keep its old payload for reuse.
    msgs: Vec<Box<[u8]>>,
    /// Next slot of the same FIFO (or of the free list); `NIL` ends it.
    next: Vec<u32>,
    /// Free slots, linked through `next`.
    free: u32,
    /// The highest priority in use and its FIFO; `None` iff empty.
    top: Option<(u32, Fifo)>,
    /// The other priorities in use, all below `top`'s.
    index: Index,
    /// The queue's capacity: the slab never grows beyond it.
    limit: usize,
    count: usize,
    bytes: usize,
    /// Payload bytes kept in free slots.
    spare: usize,
}

impl Messages {
    pub(crate) fn new(capacity: usize) -> Self {
        Messages {
            msgs: Vec::new(),
            next: Vec::new(),
            free: NIL,
            top: None,
            index: Index::Sparse(BTreeMap::new()),
            limit: capacity,
            count: 0,
            bytes: 0,
            spare: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Payload bytes queued (the kernel's `QSIZE`).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// A free slot (its old payload, if any, still in it).
    fn free_slot(&mut self) -> usize {
        if self.free != NIL {
            let i = self.free as usize;
            self.free = self.next[i];
            return i;
        }
        let len = self.msgs.len();
        if len == self.msgs.capacity() {
            // Grow by half, never past the capacity: a full queue's slab
            // wastes at most a third of itself.
            let target = (len + len / 2).max(4).min(self.limit.max(len + 1));
            self.msgs.reserve_exact(target - len);
            self.next.reserve_exact(target - len);
        }
        self.msgs.push(Box::default());
        self.next.push(NIL);
        len
    }

    /// Links slot `i` at the tail of `priority`'s FIFO.
    fn link(&mut self, i: usize, len: usize, priority: u32) {
        self.count += 1;
        self.bytes += len;
        self.next[i] = NIL;
        let new = Fifo {
            head: i as u32,
            tail: i as u32,
        };
        let fifo = match &mut self.top {
            None => {
                self.top = Some((priority, new));
                return;
            }
            Some((p, fifo)) if *p == priority => fifo,
            Some((p, fifo)) if *p < priority => {
                let below = std::mem::replace(fifo, new);
                let p = std::mem::replace(p, priority);
                self.index.insert(p, below);
                return;
            }
            Some(_) => match self.index.get_or_insert(priority, new) {
                Some(fifo) => fifo,
                None => return,
            },
        };
        self.next[fifo.tail as usize] = i as u32;
        fifo.tail = i as u32;
    }

    /// Queues a copy of `msg`.
    fn push(&mut self, msg: &[u8], priority: u32) {
        let i = self.free_slot();
        let slot = &mut self.msgs[i];
        self.spare -= slot.len();
        if slot.len() == msg.len() {
            slot.copy_from_slice(msg);
        } else {
            *slot = msg.into();
        }
        self.link(i, msg.len(), priority);
    }

    /// Queues `msg` itself (a blocked sender's message).
    fn push_owned(&mut self, msg: Box<[u8]>, priority: u32) {
        let i = self.free_slot();
        let len = msg.len();
        self.spare -= self.msgs[i].len();
        self.msgs[i] = msg;
        self.link(i, len, priority);
    }

    /// Removes the oldest message of the highest priority, copying it into
    /// `buf` (at least as long as any message); returns its length and priority.
    fn pop_into(&mut self, buf: &mut [u8]) -> Option<(usize, u32)> {
        let (priority, fifo) = self.top.as_mut()?;
        let priority = *priority;
        let i = fifo.head as usize;
        match self.next[i] {
            NIL => self.top = self.index.pop_last(),
            next => fifo.head = next,
        }
        let slot = &mut self.msgs[i];
        let len = slot.len();
        buf[..len].copy_from_slice(slot);
        if self.spare + len <= SPARE_BYTES {
            self.spare += len;
        } else {
            *slot = Box::default();
        }
        self.next[i] = self.free;
        self.free = i as u32;
        self.count -= 1;
        self.bytes -= len;
        Some((len, priority))
    }
}

/// What a blocked caller is waiting for, and what it got.
#[derive(Debug)]
enum Slot {
    /// A blocked sender's message, not yet moved into the queue.
    Sending(Box<[u8]>, u32),
    /// A blocked receiver, not yet served.
    Receiving,
    /// A caller waiting for readiness; woken on every change.
    Polling,
    /// A sender whose message a receiver moved into the queue.
    Sent,
    /// A receiver a sender handed this message to.
    Delivered(Box<[u8]>, u32),
    /// A caller a signal interrupted (`EINTR`), already off its list.
    Interrupted,
}

/// One blocked caller. Its slot is only read or written with the queue lock
/// held; its own lock is uncontended and exists to satisfy the type system.
///
/// A waiter first spins for a while (without the queue lock) and only then
/// sleeps on `cv`; a waker notifies `cv` only when the waiter sleeps, so a
/// hand-over to a waiter that is still spinning costs no system call.
#[derive(Debug)]
pub(crate) struct Waiter {
    cv: Condvar,
    slot: Mutex<Slot>,
    /// Set when the waiter should look again: its slot was filled (under the
    /// queue lock), or virtual time reached its deadline. A spinning waiter
    /// watches it without the lock.
    poked: AtomicBool,
    /// Set and cleared under the queue lock around the sleep on `cv`.
    sleeping: AtomicBool,
    /// The blocked thread, for [`QueueShared::interrupt`] (`None` for a
    /// participant, named by number in `who`).
    thread: Option<ThreadId>,
    /// Who it is in a trace ([`Who`]), fixed when it blocked.
    who: Who,
    /// Its nice value when it blocked: the list order (`K:wq_add`).
    nice: i32,
}

impl Waiter {
    /// A waiter for the calling thread, with its current nice value.
    fn new(world: &World, slot: Slot) -> Arc<Self> {
        let (thread, who) = Who::current(world);
        Arc::new(Waiter {
            cv: Condvar::new(),
            slot: Mutex::new(slot),
            poked: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            thread,
            who,
            nice: super::sched::thread_nice(),
        })
    }

    /// Fills the slot of a blocked sender or receiver, with the queue lock
    /// held (which is what makes `sleeping` exact). Returns the old slot and
    /// whether the waiter sleeps: then the caller must [`wake`](Self::wake)
    /// it, preferably after releasing the queue lock, so that the woken
    /// thread does not at once block again on that lock.
    fn serve(&self, slot: Slot) -> (Slot, bool) {
        let old = std::mem::replace(&mut *self.slot.lock(), slot);
        self.poked.store(true, Ordering::Release);
        (old, self.sleeping.load(Ordering::Relaxed))
    }

    /// Whether it was served (or interrupted): its call can return.
    fn served(&self) -> bool {
        matches!(
            *self.slot.lock(),
            Slot::Sent | Slot::Delivered(..) | Slot::Interrupted
        )
    }

    /// Wakes a served waiter that [`serve`](Self::serve) found asleep. Safe
    /// after the queue lock is released: the waiter sleeps until notified
    /// (or wakes spuriously, sees its slot filled and leaves).
    fn wake(&self) {
        self.cv.notify_all();
    }

    /// Spins for at most `limit`, without the queue lock, until poked.
    /// Hand-overs between running threads land here, which spares both sides
    /// a sleep and a wake-up (a wake-up of an idle CPU costs tens of
    /// microseconds on a virtual machine). It never yields: on a busy machine
    /// a yield can cost a whole time slice, a spin at most `limit`.
    fn spin(&self, limit: Duration) {
        // loom explores every step of a spin loop; the sleep path alone
        // covers the same orderings.
        if cfg!(mqtwin_loom) {
            return;
        }
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.poked.load(Ordering::Acquire) {
                    return;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= limit {
                return;
            }
        }
    }
}

/// How long a blocked caller spins before it sleeps.
/// Long enough to cover the wake-up of a thread whose CPU went idle (a few
/// to tens of microseconds here: 3 µs of spinning left `spsc` at 1.1 µs
/// per message, 10 µs brought it to 0.29 µs, 20 µs to 0.26 µs).
const SPIN: Duration = Duration::from_micros(20);

/// Wakes a waiter when virtual time reaches its deadline. Taking the queue
/// lock first means the waiter is either before its deadline check (and will
/// see the new time) or asleep (and gets the notification).
struct WaiterWake {
    queue: Arc<QueueShared>,
    waiter: Arc<Waiter>,
}

impl Sleeper for WaiterWake {
    fn wake(&self) {
        let _st = self.queue.state.lock();
        self.waiter.poked.store(true, Ordering::Release);
        self.waiter.cv.notify_all();
    }

    fn is_pending(&self) -> bool {
        !matches!(
            *self.waiter.slot.lock(),
            Slot::Sent | Slot::Delivered(..) | Slot::Interrupted
        )
    }
}

/// One of a queue's two waiter lists.
type WaiterList = fn(&mut QueueState) -> &mut VecDeque<Arc<Waiter>>;

/// Joins a waiter list where the kernel's `wq_add` puts it: behind every
/// waiter with a lower or equal nice value, ahead of every higher one. The
/// front is served first. (Usually the last waiter qualifies: O(1).)
fn enqueue(list: &mut VecDeque<Arc<Waiter>>, waiter: Arc<Waiter>) {
    let at = list
        .iter()
        .rposition(|w| w.nice <= waiter.nice)
        .map_or(0, |i| i + 1);
    list.insert(at, waiter);
}

/// A notification registration (`info->notify_owner` and friends).
pub(crate) struct Registration {
    pub(crate) owner: Arc<Process>,
    how: Notify,
}

impl std::fmt::Debug for Registration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registration")
            .field("owner", &self.owner.pid)
            .field("how", &self.how)
            .finish()
    }
}

/// The mutable part of a queue.
#[derive(Debug)]
pub(crate) struct QueueState {
    pub(crate) messages: Messages,
    recv_waiters: VecDeque<Arc<Waiter>>,
    send_waiters: VecDeque<Arc<Waiter>>,
    pollers: Vec<Arc<Waiter>>,
    /// Async waits for readiness (`mqtwin::tokio`), one waker per pending
    /// future; all are taken and woken on the next change.
    wakers: Wakers,
    pub(crate) notify: Option<Registration>,
}

/// The async wakers a change took from a queue. Wake them with
/// [`wake`](Woken::wake) after releasing the queue lock: a waker is the
/// executor's code, never run under one of the crate's locks.
#[must_use]
pub(crate) struct Woken(Vec<Option<Waker>>);

impl Woken {
    pub(crate) fn wake(self) {
        for w in self.0.into_iter().flatten() {
            w.wake();
        }
    }
}

/// One async send or receive waiting for a queue's readiness
/// (`mqtwin::tokio`), held by its future: the waker it registered, if any,
/// is removed when it is dropped (the future cancelled or done), so a
/// cancelled wait leaves neither its waker nor its task behind.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct AsyncWait<'a> {
    queue: &'a QueueShared,
    /// Its place among the queue's wakers.
    key: Option<WakerKey>,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl AsyncWait<'_> {
    /// For a wait whose `try_*` call found the queue not ready: returns
    /// `true` if `interest` is met now (the task should try again), or
    /// registers `waker` to be woken on the queue's next change and returns
    /// `false`. The check and the registration are one step under the queue
    /// lock, so a change that made the queue ready after the failed try is
    /// either seen here or wakes the waker. Polled again before a change,
    /// the wait replaces its waker (or keeps it, if it
    /// [`will_wake`](Waker::will_wake) the same task) instead of adding one.
    /// O(1). The waker is cloned before the lock is taken, and the one not
    /// kept is dropped after it is released: both are the executor's code.
    pub(crate) fn ready_or_register(&mut self, interest: Interest, waker: &Waker) -> bool {
        let waker = waker.clone();
        let mut st = self.queue.state.lock();
        let ready = interest.is_met(st.readiness(self.queue.meta.capacity));
        let unused = if ready {
            Some(waker)
        } else {
            st.wakers.register(&mut self.key, waker)
        };
        drop(st);
        drop(unused);
        ready
    }
}

impl Drop for AsyncWait<'_> {
    /// Removes the waker, unless a change took it already. O(1); the waker
    /// is dropped after the lock is released (the last one drops its task).
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut st = self.queue.state.lock();
            let removed = st.wakers.deregister(key);
            drop(st);
            drop(removed);
        }
    }
}

/// Where a pending async wait's waker sits in its queue's [`Wakers`]: held
/// by the future, which replaces its waker through it when polled again and
/// removes it when dropped. It goes stale when a change takes the wakers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WakerKey {
    /// The [`Wakers::epoch`] it was made in.
    epoch: u64,
    slot: usize,
}

/// A queue's async wakers: a slab, so that registering, replacing and
/// removing a future's waker are O(1) whatever the number of waits.
#[derive(Debug, Default)]
struct Wakers {
    slots: Vec<Option<Waker>>,
    /// Empty slots, reused before `slots` grows.
    free: Vec<usize>,
    /// Wakers in `slots`.
    live: usize,
    /// Counts the changes that took the wakers; a key of an older epoch
    /// names nothing.
    epoch: u64,
}

impl Wakers {
    /// The slot `key` names, if it is of this epoch.
    fn slot(&mut self, key: Option<WakerKey>) -> Option<&mut Option<Waker>> {
        let key = key.filter(|k| k.epoch == self.epoch)?;
        self.slots.get_mut(key.slot).filter(|s| s.is_some())
    }

    /// Registers `waker` for the wait that holds `key`: replaces the waker
    /// in its slot (unless that one [`will_wake`](Waker::will_wake) the same
    /// task), or, for a new or stale key, fills a slot and sets `key` to it.
    /// Returns the waker not kept, to be dropped after the lock is released.
    fn register(&mut self, key: &mut Option<WakerKey>, waker: Waker) -> Option<Waker> {
        if let Some(slot) = self.slot(*key) {
            return match slot {
                Some(w) if w.will_wake(&waker) => Some(waker),
                _ => slot.replace(waker),
            };
        }
        let w = Some(waker);
        let slot = match self.free.pop() {
            Some(i) => {
                self.slots[i] = w;
                i
            }
            None => {
                self.slots.push(w);
                self.slots.len() - 1
            }
        };
        self.live += 1;
        *key = Some(WakerKey {
            epoch: self.epoch,
            slot,
        });
        None
    }

    /// Removes the waker `key` names, if still there, and returns it, to be
    /// dropped after the lock is released.
    fn deregister(&mut self, key: WakerKey) -> Option<Waker> {
        let waker = self.slot(Some(key))?.take();
        self.live -= 1;
        if self.live == 0 {
            // No key of this epoch names a slot any more: start afresh.
            self.slots.clear();
            self.free.clear();
        } else {
            self.free.push(key.slot);
        }
        waker
    }

    /// Takes every waker (O(1) here; the caller wakes them outside the
    /// lock); every key made so far goes stale.
    fn take(&mut self) -> Woken {
        self.epoch += 1;
        self.free.clear();
        self.live = 0;
        Woken(std::mem::take(&mut self.slots))
    }
}

impl QueueState {
    /// Blocked receivers, in service order.
    pub(crate) fn receivers_waiting(&self) -> usize {
        self.recv_waiters.len()
    }

    /// Blocked senders, in service order.
    pub(crate) fn senders_waiting(&self) -> usize {
        self.send_waiters.len()
    }

    fn readiness(&self, capacity: usize) -> Readiness {
        Readiness {
            readable: self.messages.len() > 0,
            writable: self.messages.len() < capacity,
        }
    }

    /// The queue changed: readiness waiters re-check. Async waiters are
    /// returned, to be woken once the lock is released.
    fn changed(&mut self) -> Woken {
        for p in &self.pollers {
            p.cv.notify_all();
        }
        self.wakers.take()
    }
}

impl QueueShared {
    pub(crate) fn new(meta: QueueMeta) -> Self {
        let messages = Messages::new(meta.capacity);
        QueueShared {
            meta,
            state: Mutex::new(QueueState {
                messages,
                recv_waiters: VecDeque::new(),
                send_waiters: VecDeque::new(),
                pollers: Vec::new(),
                wakers: Wakers::default(),
                notify: None,
            }),
        }
    }

    /// The queue's readiness now (`mqueue_poll_file`).
    pub(crate) fn readiness(&self) -> Readiness {
        self.state.lock().readiness(self.meta.capacity)
    }

    /// A new async wait on the queue, registered nowhere yet.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn async_wait(&self) -> AsyncWait<'_> {
        AsyncWait {
            queue: self,
            key: None,
        }
    }

    /// The send path after the argument checks (`do_mq_timedsend` under the
    /// queue lock). `deadline` has been validated; `None` waits forever.
    pub(crate) fn send(
        self: &Arc<Self>,
        world: &World,
        sender: &Process,
        msg: &[u8],
        priority: u32,
        nonblocking: bool,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error> {
        let mut st = self.state.lock();
        if st.messages.len() >= self.meta.capacity {
            if nonblocking {
                return Err(Error::WouldBlock);
            }
            if world.clock.expired(deadline) {
                return Err(Error::TimedOut);
            }
            world.fault(FaultSite::Interrupt, false)?;
            #[cfg(all(unix, feature = "remote"))]
            super::hook::before_block()?;
            world.may_block();
            let waiter = Waiter::new(world, Slot::Sending(msg.into(), priority));
            enqueue(&mut st.send_waiters, Arc::clone(&waiter));
            return self
                .wait(world, st, &waiter, deadline, |st| &mut st.send_waiters)
                .map(drop);
        }
        if let Some(receiver) = st.recv_waiters.pop_front() {
            // pipelined_send: the message goes straight to the first waiting
            // receiver and is never queued; no notification fires.
            let (_, asleep) = receiver.serve(Slot::Delivered(msg.into(), priority));
            world.unblocked(1);
            drop(st);
            if asleep {
                receiver.wake();
            }
            return Ok(());
        }
        st.messages.push(msg, priority);
        let woken = st.changed();
        let fired = if st.messages.len() == 1 {
            st.notify.take()
        } else {
            None
        };
        // Fired outside the lock: a callback (or its drop, if no thread can
        // be started) may use handles to this very queue.
        drop(st);
        woken.wake();
        if let Some(reg) = fired {
            fire(world, reg, sender);
        }
        Ok(())
    }

    /// The receive path after the argument checks (`do_mq_timedreceive`).
    /// `buf` is at least `max_msg_len` long.
    pub(crate) fn receive(
        self: &Arc<Self>,
        world: &World,
        buf: &mut [u8],
        nonblocking: bool,
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error> {
        let mut st = self.state.lock();
        if let Some((len, priority)) = st.messages.pop_into(buf) {
            // pipelined_receive: the first blocked sender's message moves in
            // at once, so the queue stays full; this never notifies.
            let mut asleep = None;
            if let Some(sender) = st.send_waiters.pop_front() {
                let (old, sleeps) = sender.serve(Slot::Sent);
                if let Slot::Sending(m, p) = old {
                    st.messages.push_owned(m, p);
                }
                world.unblocked(1);
                asleep = sleeps.then_some(sender);
            }
            let woken = st.changed();
            drop(st);
            woken.wake();
            if let Some(sender) = asleep {
                sender.wake();
            }
            return Ok(Received { len, priority });
        }
        if nonblocking {
            return Err(Error::WouldBlock);
        }
        if world.clock.expired(deadline) {
            return Err(Error::TimedOut);
        }
        world.fault(FaultSite::Interrupt, false)?;
        #[cfg(all(unix, feature = "remote"))]
        super::hook::before_block()?;
        world.may_block();
        let waiter = Waiter::new(world, Slot::Receiving);
        enqueue(&mut st.recv_waiters, Arc::clone(&waiter));
        match self.wait(world, st, &waiter, deadline, |st| &mut st.recv_waiters)? {
            Slot::Delivered(msg, priority) => {
                buf[..msg.len()].copy_from_slice(&msg);
                Ok(Received {
                    len: msg.len(),
                    priority,
                })
            }
            // Only a sender fills a receiver's slot, always with Delivered.
            _ => Err(Error::Os {
                errno: crate::error::errno::EINVAL,
            }),
        }
    }

    /// Sleeps as a queued waiter until served or until `deadline` (`wq_sleep`).
    /// A waiter served before it notices its deadline succeeds.
    fn wait<'a>(
        self: &'a Arc<Self>,
        world: &World,
        mut st: MutexGuard<'a, QueueState>,
        waiter: &Arc<Waiter>,
        deadline: Option<SystemTime>,
        list: fn(&mut QueueState) -> &mut VecDeque<Arc<Waiter>>,
    ) -> Result<Slot, Error> {
        // Register with the clock before counting as blocked: a test that
        // sees the caller blocked may advance virtual time at once.
        let _timer = world.clock.register(deadline, || {
            Arc::new(WaiterWake {
                queue: Arc::clone(self),
                waiter: Arc::clone(waiter),
            })
        });
        world.blocked(1);
        let mut spun = false;
        loop {
            {
                let mut slot = waiter.slot.lock();
                match *slot {
                    Slot::Sent | Slot::Delivered(..) => {
                        return Ok(std::mem::replace(&mut *slot, Slot::Sent))
                    }
                    // `interrupt` took it off its list and counted it out.
                    Slot::Interrupted => return Err(Error::Interrupted),
                    _ => {}
                }
            }
            if world.clock.expired(deadline) {
                // Expired and not served: leave the list, disturbing no one.
                list(&mut st).retain(|w| !Arc::ptr_eq(w, waiter));
                world.unblocked(1);
                return Err(Error::TimedOut);
            }
            if let Some(sim) = &world.sim {
                // Deterministic: no spinning, no OS sleep; the token holder
                // decides when this waiter can go on.
                let (w, clock) = (Arc::clone(waiter), world.clock.clone());
                let check: Check = Arc::new(move || w.served() || clock.expired(deadline));
                drop(st);
                let r = catch_unwind(AssertUnwindSafe(|| sim.block(check, deadline)));
                st = self.state.lock();
                if let Err(unwinding) = r {
                    // A failed run is torn down: leave the list (unless
                    // served) so the queue stays consistent for the test.
                    let list = list(&mut st);
                    let before = list.len();
                    list.retain(|w| !Arc::ptr_eq(w, waiter));
                    if list.len() < before {
                        world.unblocked(1);
                    }
                    drop(st);
                    resume_unwind(unwinding);
                }
                continue;
            }
            if !spun {
                spun = true;
                // On the real clock, never spin past the deadline (virtual
                // time pokes the waiter instead).
                let limit = match (&world.clock, deadline) {
                    (Clock::Real, Some(d)) => {
                        SPIN.min(d.duration_since(SystemTime::now()).unwrap_or_default())
                    }
                    _ => SPIN,
                };
                drop(st);
                waiter.spin(limit);
                st = self.state.lock();
                continue;
            }
            waiter.sleeping.store(true, Ordering::Relaxed);
            st = world.clock.sleep(&waiter.cv, st, deadline);
            waiter.sleeping.store(false, Ordering::Relaxed);
        }
    }

    /// Waits until `interest` is met or `deadline` passes (`poll` on the
    /// descriptor). Returns the readiness restricted to `interest`.
    pub(crate) fn wait_ready(
        self: &Arc<Self>,
        world: &World,
        interest: Interest,
        deadline: Option<SystemTime>,
    ) -> Result<Readiness, Error> {
        let mask = |r: Readiness| Readiness {
            readable: r.readable && interest != Interest::Writable,
            writable: r.writable && interest != Interest::Readable,
        };
        let mut st = self.state.lock();
        let now = st.readiness(self.meta.capacity);
        if interest.is_met(now) {
            return Ok(mask(now));
        }
        if world.clock.expired(deadline) {
            return Err(Error::TimedOut);
        }
        #[cfg(all(unix, feature = "remote"))]
        super::hook::before_block()?;
        world.may_block();
        let waiter = Waiter::new(world, Slot::Polling);
        st.pollers.push(Arc::clone(&waiter));
        // Registered with the clock while holding the queue lock, and the
        // deadline checked again before every sleep: an `advance` that ran
        // between the check above and the registration is seen below, and
        // one that runs later wakes us (its wake takes the queue lock, which
        // the sleep releases atomically).
        let _timer = world.clock.register(deadline, || {
            Arc::new(WaiterWake {
                queue: Arc::clone(self),
                waiter: Arc::clone(&waiter),
            })
        });
        world.blocked(1);
        let mut unwinding = None;
        let result = loop {
            if world.clock.expired(deadline) {
                break Err(Error::TimedOut);
            }
            match &world.sim {
                Some(sim) => {
                    let (guard, unwind) =
                        self.block_polling(sim, world, st, &waiter, interest, deadline);
                    st = guard;
                    if unwind.is_some() {
                        // A failed run is torn down: leave as below first.
                        unwinding = unwind;
                        break Err(Error::Interrupted);
                    }
                }
                None => st = world.clock.sleep(&waiter.cv, st, deadline),
            }
            let now = st.readiness(self.meta.capacity);
            if interest.is_met(now) {
                break Ok(mask(now));
            }
            if matches!(*waiter.slot.lock(), Slot::Interrupted) {
                break Err(Error::Interrupted);
            }
        };
        st.pollers.retain(|w| !Arc::ptr_eq(w, &waiter));
        world.unblocked(1);
        if let Some(payload) = unwinding {
            drop(st);
            resume_unwind(payload);
        }
        result
    }

    /// Deterministic mode's sleep of `wait_ready`: runnable again once the
    /// queue meets `interest`, the caller is interrupted or the deadline
    /// passes (the caller re-checks all three). Returns the lock again, and
    /// the unwind payload when a failed run is being torn down.
    fn block_polling<'a>(
        self: &'a Arc<Self>,
        sim: &SimCore,
        world: &World,
        st: MutexGuard<'a, QueueState>,
        waiter: &Arc<Waiter>,
        interest: Interest,
        deadline: Option<SystemTime>,
    ) -> (MutexGuard<'a, QueueState>, Option<Box<dyn Any + Send>>) {
        let (q, w, clock) = (Arc::clone(self), Arc::clone(waiter), world.clock.clone());
        let check: Check = Arc::new(move || {
            interest.is_met(q.readiness())
                || matches!(*w.slot.lock(), Slot::Interrupted)
                || clock.expired(deadline)
        });
        drop(st);
        let r = catch_unwind(AssertUnwindSafe(|| sim.block(check, deadline)));
        (self.state.lock(), r.err())
    }

    /// A signal with a handler reaches `thread`, if it is blocked on this
    /// queue (`K:wq_sleep` returns `-ERESTARTSYS`). Returns whether it was.
    ///
    /// In a send or receive, without `restart` the caller leaves its list
    /// and returns [`Error::Interrupted`], sending or receiving nothing;
    /// with `restart` the call starts again at once, i.e. it joins its list
    /// again, behind every waiter of its nice value (its deadline, absolute,
    /// is unchanged). In `wait_ready` (`poll`, which a handler never
    /// restarts) the caller returns `Interrupted` unless the queue is ready.
    /// A caller already served is not blocked any more: it keeps what it got.
    pub(crate) fn interrupt(&self, world: &World, target: Target, restart: bool) -> Option<Who> {
        let mut st = self.state.lock();
        let lists: [WaiterList; 2] = [|st| &mut st.recv_waiters, |st| &mut st.send_waiters];
        for list in lists {
            let list = list(&mut st);
            let Some(waiter) = list
                .iter()
                .position(|w| target.is(w.thread, &w.who))
                .and_then(|i| list.remove(i))
            else {
                continue;
            };
            let who = waiter.who.clone();
            if restart {
                enqueue(list, waiter);
                return Some(who);
            }
            // Like a handoff: the slot, then the count, then the wake-up.
            let (_, asleep) = waiter.serve(Slot::Interrupted);
            world.unblocked(1);
            drop(st);
            if asleep {
                waiter.wake();
            }
            return Some(who);
        }
        match st.pollers.iter().find(|p| target.is(p.thread, &p.who)) {
            Some(poller) => {
                // It leaves the pollers and the count itself when it runs.
                *poller.slot.lock() = Slot::Interrupted;
                poller.cv.notify_all();
                Some(poller.who.clone())
            }
            None => None,
        }
    }

    /// `mq_notify(sevp)` with a validated `how`, by `owner`.
    /// A refused `how` (and the closure it may hold) is dropped after the
    /// queue lock is released: its drop may close handles to this queue.
    pub(crate) fn register_notify(&self, owner: &Arc<Process>, how: Notify) -> Result<(), Error> {
        let mut st = self.state.lock();
        if st.notify.is_some() {
            drop(st);
            drop(how);
            return Err(Error::Busy);
        }
        st.notify = Some(Registration {
            owner: Arc::clone(owner),
            how,
        });
        Ok(())
    }

    /// Removes the registration if `process` owns it: `mq_notify(NULL)` and
    /// the flush on every close. Anyone else's call changes nothing. The
    /// removed registration (a callback and whatever it owns) is dropped
    /// after the queue lock is released, before this returns.
    pub(crate) fn deregister_notify(&self, process: &Process) {
        let mut st = self.state.lock();
        let removed = if st
            .notify
            .as_ref()
            .is_some_and(|r| r.owner.pid == process.pid)
        {
            st.notify.take()
        } else {
            None
        };
        drop(st);
        drop(removed);
    }
}

/// Delivers a notification (`__do_notify`); the registration is consumed
/// whatever its form.
fn fire(world: &World, reg: Registration, sender: &Process) {
    match reg.how {
        Notify::None | Notify::Signal { signal: 0, .. } => {}
        Notify::Signal { signal, value } => reg.owner.deliver(SignalInfo {
            signal,
            code: SI_MESGQ,
            value,
            pid: sender.pid,
            uid: sender.credentials.uid,
        }),
        Notify::Thread(callback) => {
            // As glibc's SIGEV_THREAD: the callback runs on a new thread (a
            // participant, in deterministic mode). If no thread can be
            // created the notification is lost, as in C.
            let _ = world.spawn(callback);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A waker that counts its wakes; its `Arc`'s strong count shows
    /// whether the queue still holds a clone.
    #[derive(Default)]
    struct Counted(std::sync::atomic::AtomicUsize);

    impl std::task::Wake for Counted {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn counted() -> (std::sync::Arc<Counted>, Waker) {
        let c = std::sync::Arc::new(Counted::default());
        (std::sync::Arc::clone(&c), Waker::from(c))
    }

    fn wakes(c: &Counted) -> usize {
        c.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn async_queue(capacity: usize) -> QueueShared {
        QueueShared::new(QueueMeta {
            id: 1,
            uid: 0,
            gid: 0,
            mode: 0o600,
            capacity,
            max_msg_len: 8,
            charged_uid: 0,
            cost: 0,
        })
    }

    /// Issue 14 item 6: a dropped async wait removes its waker at once
    /// (not on the queue's next change), so thousands of cancelled waits
    /// leave no waker, task or slot behind; a wait polled again replaces
    /// its waker in place.
    #[test]
    fn async_waits_deregister_on_drop_and_reregister_in_place() {
        let n = if cfg!(miri) { 100 } else { 10_000 };
        let q = async_queue(1);
        let live = |q: &QueueShared| q.state.lock().wakers.live;
        let slots = |q: &QueueShared| q.state.lock().wakers.slots.len();
        // Cancelled waits, each with a waker of its own, one at a time and
        // with 10 others pending.
        let pending: Vec<_> = (0..10)
            .map(|_| {
                let (c, w) = counted();
                let mut wait = q.async_wait();
                assert!(!wait.ready_or_register(Interest::Readable, &w));
                (c, wait)
            })
            .collect();
        let mut cancelled = Vec::new();
        for _ in 0..n {
            let (c, w) = counted();
            let mut wait = q.async_wait();
            assert!(!wait.ready_or_register(Interest::Readable, &w));
            assert_eq!(live(&q), 11);
            drop(wait);
            cancelled.push(c);
        }
        assert_eq!(slots(&q), 11, "freed slots are reused");
        assert!(cancelled
            .iter()
            .all(|c| std::sync::Arc::strong_count(c) == 1));
        drop(pending);
        assert_eq!((live(&q), slots(&q)), (0, 0));

        // Polled again before a change: the same waker is kept, another
        // replaces it (and the old one is dropped).
        let (a, wa) = counted();
        let (b, wb) = counted();
        let mut wait = q.async_wait();
        for _ in 0..3 {
            assert!(!wait.ready_or_register(Interest::Readable, &wa));
        }
        assert_eq!((live(&q), std::sync::Arc::strong_count(&a)), (1, 3));
        assert!(!wait.ready_or_register(Interest::Readable, &wb));
        assert_eq!(live(&q), 1);
        assert_eq!(
            std::sync::Arc::strong_count(&a),
            2,
            "replaced waker dropped"
        );
        assert_eq!(std::sync::Arc::strong_count(&b), 3);

        // A change takes and wakes it once; the wait's key goes stale: a
        // newer wait may get its slot, and dropping the old wait leaves
        // the newer one registered.
        let mut st = q.state.lock();
        st.messages.push(b"x", 0);
        let woken = st.changed();
        drop(st);
        woken.wake();
        assert_eq!((wakes(&a), wakes(&b), live(&q)), (0, 1, 0));
        assert!(wait.ready_or_register(Interest::Readable, &wb), "ready now");
        assert_eq!(live(&q), 0, "a ready queue registers nothing");
        let (c, wc) = counted();
        let mut newer = q.async_wait();
        assert!(!newer.ready_or_register(Interest::Writable, &wc));
        drop(wait);
        assert_eq!(live(&q), 1, "the stale key removed nothing");
        drop(newer);
        assert_eq!(live(&q), 0);
        assert_eq!(std::sync::Arc::strong_count(&b), 2);
        assert_eq!(std::sync::Arc::strong_count(&c), 2);
        assert_eq!(wakes(&c), 0);
    }

    #[test]
    fn priority_order_then_fifo() {
        let mut m = Messages::new(8);
        let mut buf = [0u8; 4];
        for (b, p) in [
            (b'A', 1),
            (b'B', 5),
            (b'C', 1),
            (b'D', 5),
            (b'E', 0),
            (b'F', 32767),
        ] {
            m.push(&[b], p);
        }
        // Slots freed by a receive are reused, with and without their payload.
        assert_eq!(m.pop_into(&mut buf), Some((1, 32767)));
        m.push(b"GG", 5);
        m.push_owned(Box::new([b'H']), 1);
        let order: Vec<(u8, u32)> =
            std::iter::from_fn(|| m.pop_into(&mut buf).map(|(_, p)| (buf[0], p))).collect();
        assert_eq!(
            order,
            [
                (b'B', 5),
                (b'D', 5),
                (b'G', 5),
                (b'A', 1),
                (b'C', 1),
                (b'H', 1),
                (b'E', 0)
            ]
        );
        assert_eq!((m.len(), m.bytes()), (0, 0));
        assert!(m.msgs.len() <= 8);
    }

    /// Random sends and receives over all 32,768 priorities, through the
    /// sparse index, its switch to dense and the dense index, against a
    /// plain model (a FIFO per priority).
    #[test]
    fn index_matches_a_model_sparse_and_dense() {
        let cap = 40_000;
        let mut m = Messages::new(cap);
        let mut model: BTreeMap<u32, VecDeque<Vec<u8>>> = BTreeMap::new();
        let mut buf = vec![0u8; 8];
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut seq = 0u32;
        // Fill towards 30,000 messages (crossing DENSE_AT priorities), then drain.
        for round in 0..120_000 {
            let filling = round < 80_000;
            let r = next();
            let send = m.len() < cap && (m.len() == 0 || (filling && r % 4 != 0) || r % 3 == 0);
            if send {
                let priority = (r >> 16) as u32 % MQ_PRIO_MAX;
                seq += 1;
                let msg = seq.to_le_bytes()[..(r % 5) as usize].to_vec();
                if r & 8 == 0 {
                    m.push(&msg, priority);
                } else {
                    m.push_owned(msg.clone().into(), priority);
                }
                model.entry(priority).or_default().push_back(msg);
            } else {
                let got = m
                    .pop_into(&mut buf)
                    .map(|(len, p)| (buf[..len].to_vec(), p));
                let want = model.last_entry().map(|mut e| {
                    let msg = e.get_mut().pop_front().unwrap();
                    let p = *e.key();
                    if e.get().is_empty() {
                        e.remove();
                    }
                    (msg, p)
                });
                assert_eq!(got, want, "round {round}");
            }
            if round % 4096 == 0 {
                assert_eq!(m.len(), model.values().map(VecDeque::len).sum::<usize>());
            }
        }
        assert!(matches!(m.index, Index::Dense(_)));
        while let Some((len, p)) = m.pop_into(&mut buf) {
            let mut e = model.last_entry().unwrap();
            assert_eq!(
                (buf[..len].to_vec(), p),
                (e.get_mut().pop_front().unwrap(), *e.key())
            );
            if e.get().is_empty() {
                e.remove();
            }
        }
        assert!(model.is_empty());
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }
}
