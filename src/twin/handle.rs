//! [`Queue`]: a handle to a twin queue, the twin's `mqd_t`.

use std::fmt;
use std::time::SystemTime;

use crate::deadline;
use crate::error::Error;
use crate::notify::{Interest, Notify, Readiness};
use crate::options::{Access, Attributes};
use crate::queue::{MessageQueue, Received};
use crate::sync::{Arc, AtomicBool, Ordering};

use super::fault::FaultSite;
use super::process::Process;
use super::queue::QueueShared;
use super::trace;
use super::world::World;

/// An open description: the queue, the access mode and the `O_NONBLOCK` bit.
/// Closing it (dropping the last handle) may destroy an unlinked queue.
struct Description {
    world: Arc<World>,
    queue: Arc<QueueShared>,
    /// The process that opened it, and that every call through it acts as.
    process: Arc<Process>,
    /// The name it was opened by (for the trace).
    name: Arc<str>,
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
        process: Arc<Process>,
        name: &str,
        access: Access,
        nonblocking: bool,
    ) -> Self {
        Queue {
            desc: Arc::new(Description {
                world,
                queue,
                process,
                name: name.into(),
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
        self.point("try_clone");
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

    /// One consistent snapshot of the queue: `(current messages, blocked
    /// receivers, blocked senders)`, read under the queue's lock. The twin's
    /// invariants hold in every snapshot: receivers wait only on an empty
    /// queue, senders only on a full one.
    pub fn snapshot(&self) -> (usize, usize, usize) {
        let st = self.desc.queue.state.lock();
        (
            st.messages.len(),
            st.receivers_waiting(),
            st.senders_waiting(),
        )
    }

    /// The pid of the process that holds the notification registration.
    pub fn notify_owner(&self) -> Option<u32> {
        self.desc
            .queue
            .state
            .lock()
            .notify
            .as_ref()
            .map(|r| r.owner.pid)
    }

    /// A scheduling point (deterministic mode) before `call` on this queue.
    #[inline]
    fn point(&self, call: &'static str) {
        let d = &*self.desc;
        d.world.point_queue(call, &d.name);
    }

    /// A new async wait on the queue (see [`QueueShared::async_wait`]).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn async_wait(&self) -> super::queue::AsyncWait<'_> {
        self.desc.queue.async_wait()
    }

    /// When tracing, the time a call starts (its trace shows the deadline
    /// relative to it); `None` otherwise, so untraced calls never read the clock.
    fn started(&self) -> Option<SystemTime> {
        self.desc.world.tracing().then(|| self.now())
    }

    /// Records the call in the trace when tracing is on.
    fn traced<T: fmt::Debug>(
        &self,
        call: impl FnOnce() -> String,
        result: Result<T, Error>,
    ) -> Result<T, Error> {
        let d = &*self.desc;
        if d.world.tracing() {
            d.world.record(d.process.pid, call(), format!("{result:?}"));
        }
        result
    }

    fn send_inner(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error> {
        self.point("send");
        deadline::validate(deadline)?;
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
        d.world.fault(FaultSite::Send, false)?;
        let nonblocking = d.nonblocking.load(Ordering::SeqCst);
        d.queue
            .send(&d.world, &d.process, msg, priority, nonblocking, deadline)
    }

    fn receive_inner(
        &self,
        buf: &mut [u8],
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error> {
        self.point("receive");
        deadline::validate(deadline)?;
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
}

impl crate::dynamic::TryClone for Queue {
    fn try_clone(&self) -> Result<Queue, Error> {
        Queue::try_clone(self)
    }
}

impl Drop for Queue {
    /// Every close by the owner process removes its notification
    /// registration (`mqueue_flush_file`), whichever handle registered it.
    fn drop(&mut self) {
        let d = &*self.desc;
        d.queue.deregister_notify(&d.process);
        if d.world.tracing() {
            d.world
                .record(d.process.pid, format!("close({:?})", d.name), "()".into());
        }
    }
}

impl MessageQueue for Queue {
    fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error> {
        let started = self.started();
        let r = self.send_inner(msg, priority, deadline);
        self.traced(
            || {
                format!(
                    "send({:?}, {} bytes, prio {priority}, deadline {})",
                    self.desc.name,
                    msg.len(),
                    trace::deadline(deadline, started.unwrap_or_else(|| self.now()))
                )
            },
            r,
        )
    }

    fn receive_deadline(
        &self,
        buf: &mut [u8],
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error> {
        let started = self.started();
        let len = buf.len();
        let r = self.receive_inner(buf, deadline);
        self.traced(
            || {
                format!(
                    "receive({:?}, buffer {len} bytes, deadline {})",
                    self.desc.name,
                    trace::deadline(deadline, started.unwrap_or_else(|| self.now()))
                )
            },
            r,
        )
    }

    fn attributes(&self) -> Result<Attributes, Error> {
        self.point("attributes");
        let d = &*self.desc;
        Ok(Attributes {
            capacity: d.queue.meta.capacity,
            max_msg_len: d.queue.meta.max_msg_len,
            current_messages: d.queue.state.lock().messages.len(),
            nonblocking: d.nonblocking.load(Ordering::SeqCst),
        })
    }

    fn set_nonblocking(&self, nonblocking: bool) -> Result<bool, Error> {
        self.point("set_nonblocking");
        let old = self.desc.nonblocking.swap(nonblocking, Ordering::SeqCst);
        self.traced(
            || format!("set_nonblocking({:?}, {nonblocking})", self.desc.name),
            Ok(old),
        )
    }

    fn try_clone_box(&self) -> Result<Box<dyn MessageQueue>, Error> {
        Ok(Box::new(self.try_clone()?))
    }

    fn notify(&self, how: Notify) -> Result<(), Error> {
        self.point("notify");
        let shown = format!("{how:?}");
        let d = &*self.desc;
        let r = how.validate().and_then(|()| {
            if matches!(how, Notify::Thread(_)) {
                d.world.fault(FaultSite::Notify, false)?;
            }
            d.queue.register_notify(&d.process, how)
        });
        self.traced(|| format!("notify({:?}, {shown})", self.desc.name), r)
    }

    fn cancel_notify(&self) -> Result<(), Error> {
        self.point("cancel_notify");
        self.desc.queue.deregister_notify(&self.desc.process);
        self.traced(|| format!("cancel_notify({:?})", self.desc.name), Ok(()))
    }

    fn readiness(&self) -> Result<Readiness, Error> {
        self.point("readiness");
        Ok(self.desc.queue.readiness())
    }

    fn wait_ready(
        &self,
        interest: Interest,
        deadline: Option<SystemTime>,
    ) -> Result<Readiness, Error> {
        self.point("wait_ready");
        let started = self.started();
        let d = &*self.desc;
        let r = deadline::check(deadline)
            .and_then(|_| d.queue.wait_ready(&d.world, interest, deadline));
        self.traced(
            || {
                format!(
                    "wait_ready({:?}, {interest:?}, deadline {})",
                    d.name,
                    trace::deadline(deadline, started.unwrap_or_else(|| self.now()))
                )
            },
            r,
        )
    }

    fn now(&self) -> SystemTime {
        self.desc.world.clock.now()
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &*self.desc;
        f.debug_struct("twin::Queue")
            .field("name", &d.name)
            .field("id", &d.queue.meta.id)
            .field("access", &d.access)
            .field("nonblocking", &d.nonblocking.load(Ordering::Relaxed))
            .finish()
    }
}
