//! [`Queue`]: a handle to a twin queue, the twin's `mqd_t`.

use std::fmt;
use std::time::SystemTime;

use crate::deadline;
use crate::error::Error;
use crate::options::{Access, Attributes};
use crate::queue::{MessageQueue, Received};
use crate::sync::{Arc, AtomicBool, Ordering};

use super::queue::QueueShared;
use super::world::World;

/// An open description: the queue, the access mode and the `O_NONBLOCK` bit.
/// Closing it (dropping the last handle) may destroy an unlinked queue.
struct Description {
    world: Arc<World>,
    queue: Arc<QueueShared>,
    access: Access,
    nonblocking: AtomicBool,
}

impl Drop for Description {
    fn drop(&mut self) {
        self.world.close(self.queue.meta.id);
    }
}

/// A handle to a queue in a [`Twin`](super::Twin) namespace.
///
/// Dropping it closes it. [`try_clone`](Queue::try_clone) is `dup`: the
/// clone shares the open description, so the non-blocking flag set through
/// one is seen through the other, while a second `open` of the same name
/// gets an independent flag.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
/// let ns = Twin::new();
/// let tx = ns.open("/q", &OpenOptions::write_only().create())?;
/// let rx = ns.open("/q", &OpenOptions::read_only())?;
/// tx.send(b"ping", 3)?;
/// let mut buf = [0; 8192];
/// let got = rx.receive(&mut buf)?;
/// assert_eq!((&buf[..got.len], got.priority), (&b"ping"[..], 3));
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub struct Queue {
    desc: Arc<Description>,
}

impl Queue {
    pub(crate) fn new(
        world: Arc<World>,
        queue: Arc<QueueShared>,
        access: Access,
        nonblocking: bool,
    ) -> Self {
        Queue {
            desc: Arc::new(Description {
                world,
                queue,
                access,
                nonblocking: AtomicBool::new(nonblocking),
            }),
        }
    }

    /// Another handle to the same open description (`dup`).
    ///
    /// # Errors
    ///
    /// Never fails on the twin; the signature matches the kernel backend.
    pub fn try_clone(&self) -> Result<Queue, Error> {
        Ok(Queue {
            desc: Arc::clone(&self.desc),
        })
    }

    /// Payload bytes currently queued (the kernel shows it as `QSIZE` when
    /// the queue is read as a file).
    pub fn queued_bytes(&self) -> usize {
        self.desc.queue.state.lock().messages.bytes()
    }

    /// The access this handle was opened with.
    pub fn access(&self) -> Access {
        self.desc.access
    }

    /// `(blocked receivers, blocked senders)` on this queue right now.
    pub fn waiters(&self) -> (usize, usize) {
        let st = self.desc.queue.state.lock();
        (st.receivers_waiting(), st.senders_waiting())
    }
}

impl MessageQueue for Queue {
    fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error> {
        deadline::check(deadline)?;
        deadline::check_priority(priority)?;
        let d = &*self.desc;
        if !d.access.can_write() {
            return Err(Error::NotWritable);
        }
        let limit = d.queue.meta.max_msg_len;
        if msg.len() > limit {
            return Err(Error::MessageTooLong {
                len: msg.len(),
                limit,
            });
        }
        let nonblocking = d.nonblocking.load(Ordering::SeqCst);
        d.queue.send(&d.world, msg, priority, nonblocking, deadline)
    }

    fn receive_deadline(
        &self,
        buf: &mut [u8],
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error> {
        deadline::check(deadline)?;
        let d = &*self.desc;
        if !d.access.can_read() {
            return Err(Error::NotReadable);
        }
        let msg_size = d.queue.meta.max_msg_len;
        if buf.len() < msg_size {
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                msg_size,
            });
        }
        let nonblocking = d.nonblocking.load(Ordering::SeqCst);
        d.queue.receive(&d.world, buf, nonblocking, deadline)
    }

    fn attributes(&self) -> Result<Attributes, Error> {
        let d = &*self.desc;
        Ok(Attributes {
            capacity: d.queue.meta.capacity,
            max_msg_len: d.queue.meta.max_msg_len,
            current_messages: d.queue.state.lock().messages.len(),
            nonblocking: d.nonblocking.load(Ordering::SeqCst),
        })
    }

    fn set_nonblocking(&self, nonblocking: bool) -> Result<(), Error> {
        self.desc.nonblocking.store(nonblocking, Ordering::SeqCst);
        Ok(())
    }

    fn now(&self) -> SystemTime {
        self.desc.world.clock.now()
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &*self.desc;
        f.debug_struct("twin::Queue")
            .field("id", &d.queue.meta.id)
            .field("access", &d.access)
            .field("nonblocking", &d.nonblocking.load(Ordering::Relaxed))
            .finish()
    }
}
