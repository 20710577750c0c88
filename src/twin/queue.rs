//! One queue of the twin: messages in priority order, the two waiter lists,
//! the notification registration, and the send / receive algorithms of
//! `ipc/mqueue.c` (direct handoff to a waiting receiver, a blocked sender's
//! message moved in by a receive, notification on empty → non-empty).

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

/// Messages in per-priority FIFO buckets (`msg_insert`/`msg_get`).
#[derive(Debug, Default)]
pub(crate) struct Messages {
    buckets: BTreeMap<u32, VecDeque<Box<[u8]>>>,
    count: usize,
    bytes: usize,
}

impl Messages {
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Payload bytes queued (the kernel's `QSIZE`).
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    fn push(&mut self, msg: Box<[u8]>, priority: u32) {
        self.count += 1;
        self.bytes += msg.len();
        self.buckets.entry(priority).or_default().push_back(msg);
    }

    /// Removes the oldest message of the highest priority.
    fn pop(&mut self) -> Option<(Box<[u8]>, u32)> {
        let mut entry = self.buckets.last_entry()?;
        let msg = entry.get_mut().pop_front()?;
        let priority = *entry.key();
        if entry.get().is_empty() {
            entry.remove();
        }
        self.count -= 1;
        self.bytes -= msg.len();
        Some((msg, priority))
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
#[derive(Debug, Default)]
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
        QueueShared {
            meta,
            state: Mutex::new(QueueState::default()),
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
        st.messages.push(msg.into(), priority);
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
        let (msg, priority) = if let Some(m) = st.messages.pop() {
            // pipelined_receive: the first blocked sender's message moves in
            // at once, so the queue stays full; this never notifies.
            if let Some(sender) = st.send_waiters.pop_front() {
                let taken = std::mem::replace(&mut *sender.slot.lock(), Slot::Sent);
                if let Slot::Sending(m, p) = taken {
                    st.messages.push(m, p);
                }
                world.unblocked(1);
                sender.cv.notify_all();
            }
            st.changed();
            m
        } else {
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
                Slot::Delivered(m, p) => (m, p),
                // Only a sender fills a receiver's slot, always with Delivered.
                _ => {
                    return Err(Error::Os {
                        errno: crate::error::errno::EINVAL,
                    })
                }
            }
        };
        buf[..msg.len()].copy_from_slice(&msg);
        Ok(Received {
            len: msg.len(),
            priority,
        })
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
            let _ = std::thread::Builder::new()
                .name("mqtwin-notify".into())
                .spawn(callback);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_order_then_fifo() {
        let mut m = Messages::default();
        for (b, p) in [
            (b'A', 1),
            (b'B', 5),
            (b'C', 1),
            (b'D', 5),
            (b'E', 0),
            (b'F', 32767),
        ] {
            m.push(Box::new([b]), p);
        }
        let order: Vec<u8> = std::iter::from_fn(|| m.pop().map(|(b, _)| b[0])).collect();
        assert_eq!(order, b"FBDACE");
        assert_eq!((m.len(), m.bytes()), (0, 0));
    }
}
