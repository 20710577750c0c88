//! One queue of the twin: messages in priority order, the two waiter lists,
//! the notification registration, and the send / receive algorithms of
//! `ipc/mqueue.c` (direct handoff to a waiting receiver, a blocked sender's
//! message moved in by a receive, notification on empty → non-empty).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use crate::error::Error;
use crate::notify::{Interest, Notify, Readiness, SignalInfo, SI_MESGQ};
use crate::queue::Received;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard};

use super::clock::Sleeper;
use super::fault::FaultSite;
use super::process::Process;
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

/// One message slot: a payload and the next slot of its priority's FIFO (or
/// of the free list).
#[derive(Debug)]
struct Node {
    msg: Box<[u8]>,
    next: u32,
}

/// Oldest and newest slot of one priority.
#[derive(Debug, Clone, Copy)]
struct Fifo {
    head: u32,
    tail: u32,
}

/// Messages in per-priority FIFOs (`msg_insert`/`msg_get`).
///
/// All messages of a queue live in one slab of slots, linked per priority.
/// The highest priority's FIFO is kept aside in `top` (the kernel caches
/// its tree's rightmost node the same way); an ordered index maps every
/// other priority in use to its FIFO. A queue thus holds one entry per used
/// priority, as the kernel's tree, and a message costs its payload, one
/// 24-byte slot and its share of the index: no allocation per message beyond
/// the payload, and traffic at one priority never touches the index.
#[derive(Debug)]
pub(crate) struct Messages {
    slots: Vec<Node>,
    /// Free slots, linked through `next`.
    free: u32,
    /// The highest priority in use and its FIFO; `None` iff empty.
    top: Option<(u32, Fifo)>,
    /// The other priorities in use, all below `top`'s.
    index: BTreeMap<u32, Fifo>,
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
            slots: Vec::new(),
            free: NIL,
            top: None,
            index: BTreeMap::new(),
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
    fn free_slot(&mut self) -> u32 {
        if self.free != NIL {
            let i = self.free;
            self.free = self.slots[i as usize].next;
            return i;
        }
        let len = self.slots.len();
        if len == self.slots.capacity() {
            // Grow by half, never past the capacity: a full queue's slab
            // wastes at most a third of itself.
            let target = (len + len / 2).max(4).min(self.limit.max(len + 1));
            self.slots.reserve_exact(target - len);
        }
        self.slots.push(Node {
            msg: Box::default(),
            next: NIL,
        });
        len as u32
    }

    /// Links slot `i` at the tail of `priority`'s FIFO.
    fn link(&mut self, i: u32, len: usize, priority: u32) {
        self.count += 1;
        self.bytes += len;
        self.slots[i as usize].next = NIL;
        let new = Fifo { head: i, tail: i };
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
            Some(_) => match self.index.entry(priority) {
                Entry::Vacant(v) => {
                    v.insert(new);
                    return;
                }
                Entry::Occupied(o) => o.into_mut(),
            },
        };
        self.slots[fifo.tail as usize].next = i;
        fifo.tail = i;
    }

    /// Queues a copy of `msg`.
    fn push(&mut self, msg: &[u8], priority: u32) {
        let i = self.free_slot();
        let slot = &mut self.slots[i as usize];
        self.spare -= slot.msg.len();
        if slot.msg.len() == msg.len() {
            slot.msg.copy_from_slice(msg);
        } else {
            slot.msg = msg.into();
        }
        self.link(i, msg.len(), priority);
    }

    /// Queues `msg` itself (a blocked sender's message).
    fn push_owned(&mut self, msg: Box<[u8]>, priority: u32) {
        let i = self.free_slot();
        let len = msg.len();
        let slot = &mut self.slots[i as usize];
        self.spare -= slot.msg.len();
        slot.msg = msg;
        self.link(i, len, priority);
    }

    /// Removes the oldest message of the highest priority, copying it into
    /// `buf` (at least as long as any message); returns its length and priority.
    fn pop_into(&mut self, buf: &mut [u8]) -> Option<(usize, u32)> {
        let (priority, fifo) = self.top.as_mut()?;
        let priority = *priority;
        let i = fifo.head;
        let slot = &mut self.slots[i as usize];
        if slot.next == NIL {
            self.top = self.index.pop_last();
        } else {
            fifo.head = slot.next;
        }
        let len = slot.msg.len();
        buf[..len].copy_from_slice(&slot.msg);
        if self.spare + len <= SPARE_BYTES {
            self.spare += len;
        } else {
            slot.msg = Box::default();
        }
        slot.next = self.free;
        self.free = i;
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
}

/// One blocked caller. Its slot is only read or written with the queue lock
/// held; its own lock is uncontended and exists to satisfy the type system.
#[derive(Debug)]
pub(crate) struct Waiter {
    cv: Condvar,
    slot: Mutex<Slot>,
}

impl Waiter {
    fn new(slot: Slot) -> Arc<Self> {
        Arc::new(Waiter {
            cv: Condvar::new(),
            slot: Mutex::new(slot),
        })
    }
}

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
        self.waiter.cv.notify_all();
    }

    fn is_pending(&self) -> bool {
        !matches!(*self.waiter.slot.lock(), Slot::Sent | Slot::Delivered(..))
    }
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
    pub(crate) notify: Option<Registration>,
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

    /// The queue changed: readiness waiters re-check.
    fn changed(&self) {
        for p in &self.pollers {
            p.cv.notify_all();
        }
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
                notify: None,
            }),
        }
    }

    /// The queue's readiness now (`mqueue_poll_file`).
    pub(crate) fn readiness(&self) -> Readiness {
        self.state.lock().readiness(self.meta.capacity)
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
            let waiter = Waiter::new(Slot::Sending(msg.into(), priority));
            st.send_waiters.push_back(Arc::clone(&waiter));
            return self
                .wait(world, st, &waiter, deadline, |st| &mut st.send_waiters)
                .map(drop);
        }
        if let Some(receiver) = st.recv_waiters.pop_front() {
            // pipelined_send: the message goes straight to the first waiting
            // receiver and is never queued; no notification fires.
            *receiver.slot.lock() = Slot::Delivered(msg.into(), priority);
            world.unblocked(1);
            receiver.cv.notify_all();
            return Ok(());
        }
        st.messages.push(msg, priority);
        st.changed();
        if st.messages.len() == 1 {
            if let Some(reg) = st.notify.take() {
                fire(reg, sender);
            }
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
            if let Some(sender) = st.send_waiters.pop_front() {
                let taken = std::mem::replace(&mut *sender.slot.lock(), Slot::Sent);
                if let Slot::Sending(m, p) = taken {
                    st.messages.push_owned(m, p);
                }
                world.unblocked(1);
                sender.cv.notify_all();
            }
            st.changed();
            return Ok(Received { len, priority });
        }
        if nonblocking {
            return Err(Error::WouldBlock);
        }
        if world.clock.expired(deadline) {
            return Err(Error::TimedOut);
        }
        world.fault(FaultSite::Interrupt, false)?;
        let waiter = Waiter::new(Slot::Receiving);
        st.recv_waiters.push_back(Arc::clone(&waiter));
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
    fn wait(
        self: &Arc<Self>,
        world: &World,
        mut st: MutexGuard<'_, QueueState>,
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
        loop {
            {
                let mut slot = waiter.slot.lock();
                if matches!(*slot, Slot::Sent | Slot::Delivered(..)) {
                    return Ok(std::mem::replace(&mut *slot, Slot::Sent));
                }
            }
            if world.clock.expired(deadline) {
                // Expired and not served: leave the list, disturbing no one.
                list(&mut st).retain(|w| !Arc::ptr_eq(w, waiter));
                world.unblocked(1);
                return Err(Error::TimedOut);
            }
            st = world.clock.sleep(&waiter.cv, st, deadline);
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
        let waiter = Waiter::new(Slot::Polling);
        st.pollers.push(Arc::clone(&waiter));
        let _timer = world.clock.register(deadline, || {
            Arc::new(WaiterWake {
                queue: Arc::clone(self),
                waiter: Arc::clone(&waiter),
            })
        });
        world.blocked(1);
        let result = loop {
            st = world.clock.sleep(&waiter.cv, st, deadline);
            let now = st.readiness(self.meta.capacity);
            if interest.is_met(now) {
                break Ok(mask(now));
            }
            if world.clock.expired(deadline) {
                break Err(Error::TimedOut);
            }
        };
        st.pollers.retain(|w| !Arc::ptr_eq(w, &waiter));
        world.unblocked(1);
        result
    }

    /// `mq_notify(sevp)` with a validated `how`, by `owner`.
    pub(crate) fn register_notify(&self, owner: &Arc<Process>, how: Notify) -> Result<(), Error> {
        let mut st = self.state.lock();
        if st.notify.is_some() {
            return Err(Error::Busy);
        }
        st.notify = Some(Registration {
            owner: Arc::clone(owner),
            how,
        });
        Ok(())
    }

    /// Removes the registration if `process` owns it: `mq_notify(NULL)` and
    /// the flush on every close. Anyone else's call changes nothing.
    pub(crate) fn deregister_notify(&self, process: &Process) {
        let mut st = self.state.lock();
        if st
            .notify
            .as_ref()
            .is_some_and(|r| r.owner.pid == process.pid)
        {
            st.notify = None;
        }
    }
}

/// Delivers a notification (`__do_notify`); the registration is consumed
/// whatever its form.
fn fire(reg: Registration, sender: &Process) {
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
            // As glibc's SIGEV_THREAD: the callback runs on a new thread. If
            // no thread can be created the notification is lost, as in C.
            let _ = crate::sync::spawn_detached("mqtwin-notify", callback);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            [(b'B', 5), (b'D', 5), (b'G', 5), (b'A', 1), (b'C', 1), (b'H', 1), (b'E', 0)]
        );
        assert_eq!((m.len(), m.bytes()), (0, 0));
        assert!(m.slots.len() <= 8);
    }
}
