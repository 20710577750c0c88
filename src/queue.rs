//! The two traits every backend implements: [`MessageQueue`] (a handle) and
//! [`Namespace`] (where names live).

use std::time::{Duration, SystemTime};

use crate::deadline;
use crate::dynamic::TryClone;
use crate::error::Error;
use crate::notify::{Interest, Notify, Readiness};
use crate::options::{Attributes, OpenOptions};
use crate::owned::{self, Iter, Message, TryIter};

/// What a successful receive returns: the message length and its priority.
///
/// The message itself is in the first `len` bytes of the caller's buffer;
/// bytes after it are untouched.
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Received {
    /// Length of the message in bytes (may be 0).
    pub len: usize,
    /// The priority it was sent with.
    pub priority: u32,
}

/// A handle to an open message queue: one open description (`mqd_t`).
///
/// Two methods do the work, one per direction, both taking an optional
/// absolute deadline ([`send_deadline`](MessageQueue::send_deadline),
/// [`receive_deadline`](MessageQueue::receive_deadline)); every other
/// send/receive method is defined in terms of them, so each backend has
/// exactly one code path per direction.
///
/// | call | full queue (send) / empty queue (receive) |
/// |---|---|
/// | `send`, `receive` | waits forever, or [`Error::WouldBlock`] if the handle is non-blocking |
/// | `try_send`, `try_receive` | [`Error::WouldBlock`] at once, whatever the handle's mode |
/// | `*_timeout(d)` | waits until the backend's clock reads `now + d`, then [`Error::TimedOut`] |
/// | `*_deadline(t)` | waits until the backend's clock reads `t` (build it with [`deadline_after`](MessageQueue::deadline_after)), then [`Error::TimedOut`] |
///
/// A timeout too large to add to the clock (`Duration::MAX`,
/// `Duration::new(u64::MAX, 999_999_999)`) is not an error and not "no
/// deadline": the sum saturates at [`deadline::latest`](crate::deadline::latest),
/// which the kernel treats as "wait forever" (it saturates it to its own
/// maximum, in the year 2262) and a twin on virtual time reaches only when
/// advanced that far. The same call therefore behaves the same on both
/// backends, and a huge timeout never turns a wait into an immediate error.
///
/// The trait is object safe: `Box<dyn MessageQueue>` works, and so do mocks.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
///
/// // Takes every message now queued (`try_receive` until `WouldBlock`).
/// fn drain(q: &dyn MessageQueue) -> Result<Vec<(Vec<u8>, u32)>, mqtwin::Error> {
///     mqtwin::TryIter::new(q).collect()
/// }
///
/// let q = Twin::new().open("/q", &OpenOptions::read_write().create())?;
/// q.send(b"low", 1)?;
/// q.send(b"high", 9)?;
/// assert_eq!(drain(&q)?, vec![(b"high".to_vec(), 9), (b"low".to_vec(), 1)]);
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub trait MessageQueue: Send + Sync {
    /// Sends `msg` with `priority`, waiting for room until `deadline`
    /// (`None`: no deadline). A non-blocking handle never waits. This is
    /// `mq_timedsend` (`mq_send` when `deadline` is `None`).
    ///
    /// Checks run in the kernel's order, so when several apply the first
    /// wins: deadline, priority, access, length, then fullness.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidDeadline`]: `deadline` is before the Unix epoch
    ///   (even if the queue has room);
    /// - [`Error::InvalidPriority`]: `priority` ≥ 32768;
    /// - [`Error::NotWritable`]: the handle has no write access;
    /// - [`Error::MessageTooLong`]: `msg` is longer than the queue's maximum;
    /// - [`Error::WouldBlock`]: the queue is full and the handle is non-blocking;
    /// - [`Error::TimedOut`]: the queue stayed full until `deadline`;
    /// - [`Error::Interrupted`]: a signal handler installed without
    ///   `SA_RESTART` (on the twin: [`Twin::interrupt`](crate::twin::Twin::interrupt),
    ///   or an injected fault) interrupted the wait; with `SA_RESTART` the
    ///   call waits again, behind the waiters of its nice value.
    fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error>;

    /// Receives the highest-priority, oldest message into `buf`, waiting
    /// until `deadline` (`None`: no deadline). A non-blocking handle never
    /// waits. This is `mq_timedreceive` (`mq_receive` when `deadline` is `None`).
    ///
    /// `buf` must be at least the queue's maximum message length, whatever
    /// the length of the next message.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidDeadline`]: `deadline` is before the Unix epoch;
    /// - [`Error::NotReadable`]: the handle has no read access;
    /// - [`Error::BufferTooSmall`]: `buf` is shorter than the queue's maximum
    ///   message length (checked before looking at the queue);
    /// - [`Error::WouldBlock`]: the queue is empty and the handle is non-blocking;
    /// - [`Error::TimedOut`]: the queue stayed empty until `deadline`;
    /// - [`Error::Interrupted`]: a signal handler installed without
    ///   `SA_RESTART` (on the twin: [`Twin::interrupt`](crate::twin::Twin::interrupt),
    ///   or an injected fault) interrupted the wait; with `SA_RESTART` the
    ///   call waits again, behind the waiters of its nice value.
    fn receive_deadline(
        &self,
        buf: &mut [u8],
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error>;

    /// The queue's attributes and this handle's non-blocking flag (`mq_getattr`).
    ///
    /// # Errors
    ///
    /// Only an unexpected OS error on the kernel backend; the twin never fails.
    fn attributes(&self) -> Result<Attributes, Error>;

    /// Makes this handle (its open description, shared by its clones)
    /// non-blocking or blocking (`mq_setattr`), and returns the flag it had
    /// before (`mq_setattr`'s old attributes). Calls already waiting are not
    /// affected.
    ///
    /// ```
    /// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let q = Twin::new().open("/q", &OpenOptions::read_write().create())?;
    /// let was = q.set_nonblocking(true)?;
    /// assert!(!was);
    /// // ... non-blocking work ...
    /// assert!(q.set_nonblocking(was)?); // restore
    /// # Ok::<(), mqtwin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Only an unexpected OS error on the kernel backend.
    fn set_nonblocking(&self, nonblocking: bool) -> Result<bool, Error>;

    /// Another handle to the same open description (`dup`), boxed: the
    /// object-safe form of [`TryClone::try_clone`], so that
    /// `Box<dyn MessageQueue>` can be duplicated too. The dup shares the
    /// non-blocking flag; dropping it is a close (which removes this
    /// process's notification registration, as any close does).
    ///
    /// ```
    /// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let q: Box<dyn MessageQueue> =
    ///     Box::new(Twin::new().open("/q", &OpenOptions::read_write().create())?);
    /// let dup = q.try_clone_box()?;
    /// dup.set_nonblocking(true)?;
    /// assert!(q.attributes()?.nonblocking);
    /// # Ok::<(), mqtwin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::ResourceLimit`] when the process is out of descriptors
    /// (kernel backend); the twin never fails.
    fn try_clone_box(&self) -> Result<Box<dyn MessageQueue>, Error>;

    /// Registers for notification when a message arrives in the empty queue
    /// (`mq_notify`). The registration belongs to the calling process, fires
    /// once, and is removed when that process closes any handle to the queue.
    /// See [`crate::notify`] for the exact rules.
    ///
    /// A [`Notify::Thread`] callback runs once, on another thread (a pool of
    /// at most 8 on the kernel backend, semantics Y19), if the
    /// notification fires — even if every handle is closed right after the
    /// send that fired it. If the registration is removed instead (cancel,
    /// or a close by this process), the callback is dropped without running.
    /// The callback may own queue handles: it is never run or dropped while
    /// the crate holds a lock.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidSignal`]: a signal outside `0..=64` (checked first);
    /// - [`Error::ResourceLimit`] (`EMFILE`, [`Notify::Thread`] only, kernel
    ///   backend or an injected [`FaultSite::Notify`](crate::twin::FaultSite::Notify)):
    ///   no file descriptor left for the notification socket; nothing is
    ///   registered, and a later call, once descriptors are free, works;
    /// - [`Error::OutOfMemory`] (`ENOMEM`, [`Notify::Thread`] only);
    /// - [`Error::Busy`]: a registration exists, even this process's own.
    ///   A refused callback is dropped before this returns.
    fn notify(&self, how: Notify) -> Result<(), Error>;

    /// Removes this process's notification registration (`mq_notify(NULL)`).
    /// Does nothing, successfully, when the registration belongs to another
    /// process or there is none. A removed [`Notify::Thread`] callback (and
    /// everything it owns) is dropped before this returns; one that already
    /// fired runs anyway.
    ///
    /// # Errors
    ///
    /// Only an unexpected OS error on the kernel backend.
    fn cancel_notify(&self) -> Result<(), Error>;

    /// What the queue is ready for now (`poll` with a zero timeout):
    /// readable iff it holds a message, writable iff it is below capacity,
    /// whatever this handle's access mode.
    ///
    /// # Errors
    ///
    /// Only an unexpected OS error on the kernel backend.
    fn readiness(&self) -> Result<Readiness, Error>;

    /// Waits until the queue is ready as `interest` asks, or until
    /// `deadline` (`None`: no deadline). Returns the readiness restricted to
    /// `interest`. Readiness is a hint: another handle may take the message
    /// or the room before this caller acts on it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidDeadline`]; [`Error::TimedOut`] when the deadline
    /// passes first; [`Error::Interrupted`] when a signal with a handler
    /// interrupts `poll`, even one installed with `SA_RESTART` (on the twin:
    /// [`Twin::interrupt`](crate::twin::Twin::interrupt)).
    fn wait_ready(
        &self,
        interest: Interest,
        deadline: Option<SystemTime>,
    ) -> Result<Readiness, Error>;

    /// The backend's clock, which turns relative timeouts into deadlines.
    /// The kernel backend and a default twin use [`SystemTime::now`]; a twin
    /// on virtual time reads its virtual clock.
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// The absolute deadline `timeout` from now on this handle's clock
    /// ([`now`](MessageQueue::now) + `timeout`, saturating at
    /// [`deadline::latest`](crate::deadline::latest)), for the `*_deadline`
    /// calls. See [`Namespace::deadline_after`] for why deadlines must not be
    /// built from [`SystemTime::now`].
    fn deadline_after(&self, timeout: Duration) -> SystemTime {
        deadline::saturating_add(self.now(), timeout)
    }

    /// Sends, waiting as long as needed (unless the handle is non-blocking).
    ///
    /// # Errors
    ///
    /// As [`send_deadline`](MessageQueue::send_deadline), except `InvalidDeadline` and `TimedOut`.
    fn send(&self, msg: &[u8], priority: u32) -> Result<(), Error> {
        self.send_deadline(msg, priority, None)
    }

    /// Sends without ever waiting, whatever the handle's mode.
    ///
    /// # Errors
    ///
    /// As [`send_deadline`](MessageQueue::send_deadline); a full queue gives
    /// [`Error::WouldBlock`].
    fn try_send(&self, msg: &[u8], priority: u32) -> Result<(), Error> {
        self.send_deadline(msg, priority, Some(deadline::IMMEDIATE))
            .map_err(would_block)
    }

    /// Sends, waiting at most `timeout` as measured by [`now`](MessageQueue::now).
    ///
    /// # Errors
    ///
    /// As [`send_deadline`](MessageQueue::send_deadline).
    fn send_timeout(&self, msg: &[u8], priority: u32, timeout: Duration) -> Result<(), Error> {
        self.send_deadline(msg, priority, deadline::after(self.now(), timeout))
    }

    /// Receives, waiting as long as needed (unless the handle is non-blocking).
    ///
    /// # Errors
    ///
    /// As [`receive_deadline`](MessageQueue::receive_deadline), except `InvalidDeadline` and `TimedOut`.
    fn receive(&self, buf: &mut [u8]) -> Result<Received, Error> {
        self.receive_deadline(buf, None)
    }

    /// Receives without ever waiting, whatever the handle's mode.
    ///
    /// # Errors
    ///
    /// As [`receive_deadline`](MessageQueue::receive_deadline); an empty queue
    /// gives [`Error::WouldBlock`].
    fn try_receive(&self, buf: &mut [u8]) -> Result<Received, Error> {
        self.receive_deadline(buf, Some(deadline::IMMEDIATE))
            .map_err(would_block)
    }

    /// Receives, waiting at most `timeout` as measured by [`now`](MessageQueue::now).
    ///
    /// # Errors
    ///
    /// As [`receive_deadline`](MessageQueue::receive_deadline).
    fn receive_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<Received, Error> {
        self.receive_deadline(buf, deadline::after(self.now(), timeout))
    }

    /// As [`receive_deadline`](MessageQueue::receive_deadline), into a new
    /// `Vec` sized from [`attributes`](MessageQueue::attributes) (the queue's
    /// maximum message length) and then shrunk to the message: returns the
    /// message's bytes and its priority.
    ///
    /// Each call allocates a buffer of the queue's maximum message length
    /// (up to 16 MiB); to receive many messages, reuse a buffer with
    /// [`receive`](MessageQueue::receive) or drain with
    /// [`try_iter`](MessageQueue::try_iter).
    ///
    /// # Errors
    ///
    /// As [`receive_deadline`](MessageQueue::receive_deadline), except
    /// `BufferTooSmall`; also an unexpected OS error from `attributes`
    /// (kernel backend).
    fn receive_vec_deadline(&self, deadline: Option<SystemTime>) -> Result<Message, Error> {
        let mut buf = owned::buffer(self)?;
        let r = self.receive_deadline(&mut buf, deadline)?;
        buf.truncate(r.len);
        buf.shrink_to_fit();
        Ok((buf, r.priority))
    }

    /// Receives into a new `Vec`, waiting as long as needed (unless the
    /// handle is non-blocking); see
    /// [`receive_vec_deadline`](MessageQueue::receive_vec_deadline).
    ///
    /// ```
    /// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
    /// let q = Twin::new().open("/q", &OpenOptions::read_write().create())?;
    /// q.send(b"hello", 3)?;
    /// assert_eq!(q.receive_vec()?, (b"hello".to_vec(), 3));
    /// assert_eq!(q.try_receive_vec(), Err(mqtwin::Error::WouldBlock));
    /// # Ok::<(), mqtwin::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`receive_vec_deadline`](MessageQueue::receive_vec_deadline),
    /// except `InvalidDeadline` and `TimedOut`.
    fn receive_vec(&self) -> Result<Message, Error> {
        self.receive_vec_deadline(None)
    }

    /// Receives into a new `Vec` without ever waiting, whatever the handle's
    /// mode.
    ///
    /// # Errors
    ///
    /// As [`receive_vec_deadline`](MessageQueue::receive_vec_deadline); an
    /// empty queue gives [`Error::WouldBlock`].
    fn try_receive_vec(&self) -> Result<Message, Error> {
        self.receive_vec_deadline(Some(deadline::IMMEDIATE))
            .map_err(would_block)
    }

    /// Receives into a new `Vec`, waiting at most `timeout` as measured by
    /// [`now`](MessageQueue::now).
    ///
    /// # Errors
    ///
    /// As [`receive_vec_deadline`](MessageQueue::receive_vec_deadline).
    fn receive_vec_timeout(&self, timeout: Duration) -> Result<Message, Error> {
        self.receive_vec_deadline(deadline::after(self.now(), timeout))
    }

    /// An iterator that receives message after message, waiting for each
    /// (unless the handle is non-blocking), highest priority first: see
    /// [`Iter`]. It ends after yielding an error once; on a non-blocking
    /// handle an empty queue ends it.
    ///
    /// On an unsized handle (`&dyn MessageQueue`) use [`Iter::new`].
    fn iter(&self) -> Iter<'_, Self>
    where
        Self: Sized,
    {
        Iter::new(self)
    }

    /// An iterator that takes every message now in the queue, without
    /// waiting, highest priority first: see [`TryIter`]. It ends when the
    /// queue is empty; any other error is yielded once and ends it.
    ///
    /// On an unsized handle (`&dyn MessageQueue`) use [`TryIter::new`];
    /// `Box<dyn MessageQueue>` and `Arc<dyn MessageQueue>` have this method.
    fn try_iter(&self) -> TryIter<'_, Self>
    where
        Self: Sized,
    {
        TryIter::new(self)
    }
}

/// `try_*` calls wait until the epoch, i.e. not at all: their timeout is
/// "would block".
fn would_block(e: Error) -> Error {
    match e {
        Error::TimedOut => Error::WouldBlock,
        e => e,
    }
}

/// A place where queue names live: the kernel's IPC namespace, or a twin.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions};
///
/// // Code under test takes any namespace...
/// fn publish<N: Namespace>(ns: &N, msg: &[u8]) -> Result<(), mqtwin::Error> {
///     let q = ns.open("/events", &OpenOptions::write_only().create())?;
///     q.send(msg, 0)
/// }
///
/// // ...and a test hands it a twin.
/// let ns = mqtwin::twin::Twin::new();
/// publish(&ns, b"started")?;
/// # Ok::<(), mqtwin::Error>(())
/// ```
///
/// # Deadlines come from the namespace's clock
///
/// A twin built with [`virtual_time`](crate::twin::TwinBuilder::virtual_time)
/// runs on a virtual clock that starts in 2001. A deadline built from
/// [`SystemTime::now`] lands decades ahead of that clock, so the call waits
/// (silently) until the test advances the clock that far. Build deadlines
/// with [`deadline_after`](Namespace::deadline_after) (or
/// [`MessageQueue::deadline_after`]) instead, or pass relative timeouts to the
/// `*_timeout` calls; both read the backend's own clock.
///
/// ```
/// use std::time::Duration;
/// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::Twin};
///
/// fn first_message<N: Namespace>(ns: &N, within: Duration) -> Result<usize, Error> {
///     let q = ns.open("/in", &OpenOptions::read_only().create())?;
///     let deadline = ns.deadline_after(within); // not SystemTime::now() + within
///     let mut buf = vec![0; q.attributes()?.max_msg_len];
///     Ok(q.receive_deadline(&mut buf, Some(deadline))?.len)
/// }
///
/// let ns = Twin::builder().virtual_time().build();
/// let clock = ns.virtual_clock().unwrap();
/// std::thread::scope(|s| {
///     let waiter = s.spawn(|| first_message(&ns, Duration::from_secs(5)));
///     ns.wait_blocked(1);
///     clock.advance(Duration::from_secs(5)); // the deadline passes at once
///     assert_eq!(waiter.join().unwrap(), Err(Error::TimedOut));
/// });
/// ```
///
/// Namespaces are `Send + Sync` and their handles are `'static` and
/// [`TryClone`], so generic code can share a namespace across threads and
/// hand handles (or their dups) to spawned threads without extra bounds.
/// For a backend chosen at run time, see [`DynNamespace`](crate::DynNamespace).
pub trait Namespace: Send + Sync {
    /// The handle type `open` returns.
    type Queue: MessageQueue + TryClone + 'static;

    /// Opens (and with [`OpenOptions::create`] possibly creates) the queue
    /// `name` (`mq_open`).
    ///
    /// # Errors
    ///
    /// In the kernel's order: [`Error::InvalidName`]; [`Error::NotFound`]
    /// (missing, without `create`); for a missing queue with `create`:
    /// [`Error::TooManyQueues`], [`Error::InvalidAttributes`],
    /// [`Error::ResourceLimit`]; for an existing queue:
    /// [`Error::AlreadyExists`] (with `create_new`), then
    /// [`Error::PermissionDenied`] (mode bits).
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Self::Queue, Error>;

    /// Removes the name `name` (`mq_unlink`). Open handles keep working; the
    /// queue is destroyed when the last one closes, and the name can be
    /// created again at once as a new, independent queue.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`]; [`Error::NotFound`]; [`Error::PermissionDenied`]
    /// when the caller neither owns the queue nor is root nor has `CAP_FOWNER`.
    fn unlink(&self, name: &str) -> Result<(), Error>;

    /// The namespace's clock: [`SystemTime::now`] for the kernel and a
    /// default twin, the virtual clock for a twin on virtual time. Handles
    /// opened here read the same clock ([`MessageQueue::now`]).
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    /// The absolute deadline `timeout` from [`now`](Namespace::now), saturating
    /// at [`deadline::latest`](crate::deadline::latest): the right way to
    /// build a deadline for [`MessageQueue::send_deadline`],
    /// [`MessageQueue::receive_deadline`] or [`MessageQueue::wait_ready`] on
    /// any backend (see the type's docs for the virtual-clock pitfall).
    fn deadline_after(&self, timeout: Duration) -> SystemTime {
        deadline::saturating_add(self.now(), timeout)
    }
}

macro_rules! forward_message_queue {
    ($($ty:ty),*) => {$(
        impl<Q: MessageQueue + ?Sized> MessageQueue for $ty {
            fn send_deadline(&self, msg: &[u8], priority: u32, deadline: Option<SystemTime>) -> Result<(), Error> {
                (**self).send_deadline(msg, priority, deadline)
            }
            fn receive_deadline(&self, buf: &mut [u8], deadline: Option<SystemTime>) -> Result<Received, Error> {
                (**self).receive_deadline(buf, deadline)
            }
            fn attributes(&self) -> Result<Attributes, Error> {
                (**self).attributes()
            }
            fn set_nonblocking(&self, nonblocking: bool) -> Result<bool, Error> {
                (**self).set_nonblocking(nonblocking)
            }
            fn try_clone_box(&self) -> Result<Box<dyn MessageQueue>, Error> {
                (**self).try_clone_box()
            }
            fn now(&self) -> SystemTime {
                (**self).now()
            }
            fn notify(&self, how: Notify) -> Result<(), Error> {
                (**self).notify(how)
            }
            fn cancel_notify(&self) -> Result<(), Error> {
                (**self).cancel_notify()
            }
            fn readiness(&self) -> Result<Readiness, Error> {
                (**self).readiness()
            }
            fn wait_ready(&self, interest: Interest, deadline: Option<SystemTime>) -> Result<Readiness, Error> {
                (**self).wait_ready(interest, deadline)
            }
        }
    )*};
}

forward_message_queue!(&Q, Box<Q>, std::sync::Arc<Q>);
