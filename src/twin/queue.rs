//! One queue of the twin: messages in priority order, the two waiter lists,
//! and the send / receive algorithms of `ipc/mqueue.c` (direct handoff to a
//! waiting receiver, a blocked sender's message moved in by a receive).

use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

use crate::error::Error;
use crate::queue::Received;
use crate::sync::{Arc, Condvar, Mutex, MutexGuard};

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

/// The mutable part of a queue.
#[derive(Debug, Default)]
pub(crate) struct QueueState {
    pub(crate) messages: Messages,
    recv_waiters: VecDeque<Arc<Waiter>>,
    send_waiters: VecDeque<Arc<Waiter>>,
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
}

impl QueueShared {
    pub(crate) fn new(meta: QueueMeta) -> Self {
        QueueShared {
            meta,
            state: Mutex::new(QueueState::default()),
        }
    }

    /// The send path after the argument checks (`do_mq_timedsend` under the
    /// queue lock). `deadline` has been validated; `None` waits forever.
    pub(crate) fn send(
        &self,
        world: &World,
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
            let waiter = Arc::new(Waiter {
                cv: Condvar::new(),
                slot: Mutex::new(Slot::Sending(msg.into(), priority)),
            });
            st.send_waiters.push_back(Arc::clone(&waiter));
            return self
                .wait(world, st, &waiter, deadline, |st| &mut st.send_waiters)
                .map(|_| ());
        }
        if let Some(receiver) = st.recv_waiters.pop_front() {
            // pipelined_send: the message goes straight to the first waiting
            // receiver and is never queued; no notification fires.
            *receiver.slot.lock() = Slot::Delivered(msg.into(), priority);
            world.unblocked(1);
            receiver.cv.notify_one();
            return Ok(());
        }
        st.messages.push(msg.into(), priority);
        Ok(())
    }

    /// The receive path after the argument checks (`do_mq_timedreceive`).
    /// `buf` is at least `max_msg_len` long.
    pub(crate) fn receive(
        &self,
        world: &World,
        buf: &mut [u8],
        nonblocking: bool,
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error> {
        let mut st = self.state.lock();
        let (msg, priority) = match st.messages.pop() {
            Some(m) => {
                // pipelined_receive: the first blocked sender's message moves
                // in at once, so the queue stays full.
                if let Some(sender) = st.send_waiters.pop_front() {
                    let mut slot = sender.slot.lock();
                    if let Slot::Sending(m, p) = std::mem::replace(&mut *slot, Slot::Sent) {
                        st.messages.push(m, p);
                    }
                    drop(slot);
                    world.unblocked(1);
                    sender.cv.notify_one();
                }
                m
            }
            None if nonblocking => return Err(Error::WouldBlock),
            None if world.clock.expired(deadline) => return Err(Error::TimedOut),
            None => {
                let waiter = Arc::new(Waiter {
                    cv: Condvar::new(),
                    slot: Mutex::new(Slot::Receiving),
                });
                st.recv_waiters.push_back(Arc::clone(&waiter));
                match self.wait(world, st, &waiter, deadline, |st| &mut st.recv_waiters)? {
                    Slot::Delivered(m, p) => (m, p),
                    _ => unreachable!("a served receiver always holds a message"),
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
        &self,
        world: &World,
        mut st: MutexGuard<'_, QueueState>,
        waiter: &Arc<Waiter>,
        deadline: Option<SystemTime>,
        list: fn(&mut QueueState) -> &mut VecDeque<Arc<Waiter>>,
    ) -> Result<Slot, Error> {
        world.blocked(1);
        loop {
            {
                let mut slot = waiter.slot.lock();
                if matches!(*slot, Slot::Sent | Slot::Delivered(..)) {
                    return Ok(std::mem::replace(&mut *slot, Slot::Sent));
                }
            }
            let now = world.clock.now();
            let remaining = match deadline {
                None => None,
                Some(d) => match d.duration_since(now) {
                    Ok(r) if !r.is_zero() => Some(r),
                    _ => {
                        // Expired and not served: leave the list, disturbing no one.
                        list(&mut st).retain(|w| !Arc::ptr_eq(w, waiter));
                        world.unblocked(1);
                        return Err(Error::TimedOut);
                    }
                },
            };
            st = world.clock.wait(&waiter.cv, st, remaining);
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
