//! Async handles for both backends on a [tokio](https://docs.rs/tokio)
//! runtime (feature `tokio`): [`AsyncQueue`].
//!
//! ```
//! use mqtwin::{Namespace, OpenOptions, tokio::AsyncQueue, twin::Twin};
//!
//! # fn block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     struct W(std::thread::Thread);
//! #     impl std::task::Wake for W { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
//! #     let waker = std::sync::Arc::new(W(std::thread::current())).into();
//! #     let mut cx = std::task::Context::from_waker(&waker);
//! #     let mut f = std::pin::pin!(f);
//! #     loop {
//! #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
//! #         std::thread::park();
//! #     }
//! # }
//! // Inside a tokio runtime (`block_on` here is a minimal executor: a twin
//! // handle needs no reactor).
//! # block_on(async {
//! let ns = Twin::new(); // or `mqtwin::posix::Kernel` on Linux
//! let q = AsyncQueue::new(ns.open("/jobs", &OpenOptions::read_write().create())?)?;
//! q.send(b"job 1", 5).await?;
//! assert_eq!(q.receive_vec().await?, (b"job 1".to_vec(), 5));
//! # Ok::<(), mqtwin::Error>(())
//! # }).unwrap();
//! ```
//!
//! # Minimum Rust version
//!
//! mqtwin itself needs Rust 1.83 (`rust-version`), and accepts any tokio
//! from 1.53.3 on. tokio 1.54 and later need Rust 1.85, so on an older
//! toolchain a fresh `Cargo.lock` with the feature `tokio` fails to build
//! with "package `tokio` cannot be built because it requires rustc 1.85".
//! Either pin tokio to the last release that builds on 1.83:
//!
//! ```text
//! cargo update -p tokio --precise 1.53.3
//! ```
//!
//! or, on Rust 1.84 (where the MSRV-aware resolver is stable), let cargo
//! pick versions your toolchain can build: `resolver = "3"` in the
//! workspace, or `CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback cargo
//! update` (the same as `resolver.incompatible-rust-versions = "fallback"`
//! in `.cargo/config.toml`). On 1.83 only the pin works.
//! Without the feature `tokio`, nothing here applies.
//!
//! # How an async call waits
//!
//! The same way on both backends: it makes a non-blocking attempt
//! ([`try_send`](MessageQueue::try_send) /
//! [`try_receive`](MessageQueue::try_receive)) and, when that finds the
//! queue full (empty), waits for the queue's readiness, then tries again.
//!
//! - **Kernel** ([`posix::Queue`](crate::posix::Queue)): the descriptor is
//!   registered with tokio's reactor (epoll, through
//!   [`AsyncFd`](::tokio::io::unix::AsyncFd); a Linux `mqd_t` is pollable)
//!   and the attempts are `mq_timedsend`/`mq_timedreceive` on an `O_NONBLOCK`
//!   description, which the kernel answers with `EAGAIN` without ever
//!   putting the caller on the queue's waiter list.
//! - **Twin** ([`twin::Queue`](crate::twin::Queue)): the task's waker is
//!   registered on the queue (after re-checking readiness under the queue's
//!   lock, so no change is missed) and woken whenever a send or receive
//!   changes the queue. Registering, re-registering (a future polled again
//!   replaces its waker) and removing a waker take constant time, and a
//!   dropped future removes its waker at once.
//!
//! ## Async callers are not FIFO waiters
//!
//! The kernel has no async waiter list: a task waiting in `epoll` is not a
//! blocked `mq_receive` (rules Q6–Q8 and KD21 in [`semantics`](crate::semantics)).
//! Therefore, on both backends:
//!
//! - a send hands its message straight to a *blocked* (synchronous)
//!   receiver if there is one; an async receiver never gets such a handoff,
//!   and is not even woken by it (the queue stays empty);
//! - async callers are served in no particular order: when a message
//!   arrives, every task waiting for it is woken and the first to try takes
//!   it; the others wait again. Blocked threads' nice values and arrival
//!   order do not apply to them.
//!
//! No message is lost or duplicated either way, and every future here is
//! **cancellation safe**: a message is taken only by the attempt that
//! returns it, so dropping a `receive` future (in `select!`, on a timeout)
//! never loses one, and a dropped `send` future sent nothing. Nor does a
//! dropped future leave its waker (and so its task) registered anywhere.
//!
//! # The handle becomes non-blocking
//!
//! [`AsyncQueue::new`] sets `O_NONBLOCK` on the handle's open description
//! (`mq_setattr`), and [`AsyncQueue::into_inner`] restores the old flag. A
//! flag belongs to the open description, not to the descriptor: a dup made
//! earlier ([`TryClone`](crate::TryClone)) shares it, so blocking calls
//! through that dup would return [`Error::WouldBlock`] while the async
//! handle lives. Give the async handle its own description: open the queue
//! again (another [`Namespace::open`](crate::Namespace::open) of the name)
//! rather than dup a handle in use. The async calls never depend on the
//! flag for not blocking the executor: their attempts carry a deadline in
//! the past, so a description whose flag someone cleared again only costs
//! the kernel an instant on its waiter list, never a wait.
//!
//! # Timeouts use tokio's clock
//!
//! [`AsyncQueue::receive_timeout`], [`AsyncQueue::send_timeout`] and the
//! `*_deadline` calls (which take a [`tokio::time::Instant`],
//! not a `SystemTime`) are [`tokio::time::timeout`]s
//! around the waits above, so they need tokio's time driver
//! (`enable_time`/`enable_all`), and they follow tokio's clock, including its
//! paused clock (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`):
//! a test can run an hour of timeouts in microseconds.
//!
//! They do **not** follow a twin's [`VirtualClock`](crate::twin::VirtualClock):
//! advancing it ends blocked synchronous calls, not async ones. For a test
//! of async code on a twin, pause tokio's clock instead (the twin's virtual
//! clock is for its synchronous, thread-based calls); the example
//! `examples/async_sidecar.rs` does so. A timed-out call took nothing (see
//! cancellation above). As with the synchronous calls, an attempt comes
//! first: a ready queue is served even when the timeout is zero or the
//! deadline has passed.
//!
//! # Runtime
//!
//! A kernel handle must be made inside a tokio runtime with its I/O driver
//! enabled (`enable_io`/`enable_all`): [`AsyncQueue::new`] registers it with
//! that runtime's reactor, and tokio panics without one. A twin handle needs
//! no reactor; without timeouts it runs on any executor.

mod twin;

use std::fmt;
use std::time::Duration;

use ::tokio::time::{timeout, timeout_at, Instant};

use crate::error::Error;
use crate::owned::{self, Message};
use crate::queue::{MessageQueue, Received};
use sealed::Direction;

pub(crate) mod sealed {
    use crate::error::Error;
    use std::future::Future;

    /// Which way an attempt goes: what it waits for.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Direction {
        /// A receive: waits until the queue is readable.
        Receive,
        /// A send: waits until the queue is writable.
        Send,
    }

    /// What a backend gives the async handle: a registration with the
    /// runtime and a poll loop over its readiness.
    pub trait Backend: Sized {
        /// The handle, registered for readiness.
        type Registered: Send + Sync;

        /// Registers the (non-blocking) handle; gives it back on failure.
        fn register(self) -> Result<Self::Registered, (Self, Error)>;

        /// The handle inside.
        fn get(r: &Self::Registered) -> &Self;

        /// Unregisters the handle and gives it back.
        fn unregister(r: Self::Registered) -> Self;

        /// Runs `attempt` until it returns anything but
        /// [`Error::WouldBlock`], waiting for readiness in `direction`
        /// between attempts. Dropping the future leaves nothing behind: no
        /// message taken or sent, no waker registered.
        fn io<T: Send, F: FnMut(&Self) -> Result<T, Error> + Send>(
            r: &Self::Registered,
            direction: Direction,
            attempt: F,
        ) -> impl Future<Output = Result<T, Error>> + Send;
    }
}

/// A queue handle type that [`AsyncQueue`] can drive: [`twin::Queue`](crate::twin::Queue)
/// and, on Linux with the `posix` feature, [`posix::Queue`](crate::posix::Queue).
/// Sealed: implemented by this crate's backends only.
pub trait AsyncBackend: MessageQueue + sealed::Backend {}

impl<Q: MessageQueue + sealed::Backend> AsyncBackend for Q {}

/// An async handle to a message queue, for the kernel or the twin.
///
/// Made from a synchronous handle with [`AsyncQueue::new`]; the sync
/// handle's other methods ([`attributes`](MessageQueue::attributes),
/// [`notify`](MessageQueue::notify), …) stay available through
/// [`get_ref`](AsyncQueue::get_ref). It is `Send + Sync`: share it (in an
/// `Arc`) among tasks, each of which may wait on it at the same time. See
/// the [module docs](self) for how the calls wait, who gets a message when
/// several wait, the non-blocking flag and the clock of the timeouts.
///
/// ```
/// use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, tokio::AsyncQueue, twin::Twin};
///
/// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     struct W(std::thread::Thread);
/// #     impl std::task::Wake for W { fn wake(self: std::sync::Arc<Self>) { self.0.unpark() } }
/// #     let waker = std::sync::Arc::new(W(std::thread::current())).into();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop {
/// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
/// #         std::thread::park();
/// #     }
/// # }
/// # block_on(async {
/// let ns = Twin::new();
/// let q = AsyncQueue::new(ns.open("/q", &OpenOptions::read_write().create())?)?;
/// let mut buf = vec![0; q.get_ref().attributes()?.max_msg_len];
/// assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
/// let sender = ns.open("/q", &OpenOptions::write_only())?;
/// let t = std::thread::spawn(move || sender.send(b"from a thread", 2));
/// let got = q.receive(&mut buf).await?; // waits for the thread's send
/// assert_eq!(&buf[..got.len], b"from a thread");
/// t.join().unwrap()?;
/// # Ok::<(), Error>(())
/// # }).unwrap();
/// ```
pub struct AsyncQueue<Q: AsyncBackend> {
    io: Q::Registered,
    /// The description's flag before [`AsyncQueue::new`] set it.
    was_nonblocking: bool,
}

impl<Q: AsyncBackend> AsyncQueue<Q> {
    /// Makes `queue` non-blocking (its open description: see the
    /// [module docs](self#the-handle-becomes-non-blocking)) and registers it
    /// for readiness with the current runtime (kernel handles) or with the
    /// twin's queue.
    ///
    /// # Errors
    ///
    /// An unexpected OS error from `mq_setattr` or from the registration
    /// with the reactor (kernel backend); the handle is closed then. The twin
    /// never fails.
    ///
    /// # Panics
    ///
    /// A kernel handle: when called outside a tokio runtime with its I/O
    /// driver enabled (tokio's own panic).
    pub fn new(queue: Q) -> Result<Self, Error> {
        let was_nonblocking = queue.set_nonblocking(true)?;
        match queue.register() {
            Ok(io) => Ok(AsyncQueue {
                io,
                was_nonblocking,
            }),
            Err((queue, e)) => {
                let _ = queue.set_nonblocking(was_nonblocking);
                Err(e)
            }
        }
    }

    /// The synchronous handle inside. Its blocking calls do not wait (the
    /// description is non-blocking); use it for attributes, notification
    /// and the like.
    pub fn get_ref(&self) -> &Q {
        Q::get(&self.io)
    }

    /// Unregisters the handle, restores the non-blocking flag it had before
    /// [`AsyncQueue::new`], and gives it back.
    ///
    /// # Errors
    ///
    /// An unexpected OS error from `mq_setattr` (kernel backend); the
    /// handle is closed then.
    pub fn into_inner(self) -> Result<Q, Error> {
        let queue = Q::unregister(self.io);
        queue.set_nonblocking(self.was_nonblocking)?;
        Ok(queue)
    }

    /// Runs `attempt` once, then (while it would block) waits for
    /// readiness in `direction` and runs it again.
    async fn attempt<T: Send>(
        &self,
        direction: Direction,
        mut attempt: impl FnMut(&Q) -> Result<T, Error> + Send,
    ) -> Result<T, Error> {
        // The first attempt before any readiness: argument errors (priority,
        // access, sizes) come at once, as from the synchronous calls.
        match attempt(self.get_ref()) {
            Err(Error::WouldBlock) => {}
            r => return r,
        }
        Q::io(&self.io, direction, attempt).await
    }

    /// Sends `msg` with `priority`, waiting (asynchronously) for room.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::send`]: [`Error::InvalidPriority`],
    /// [`Error::NotWritable`], [`Error::MessageTooLong`], …; never
    /// `WouldBlock` or `TimedOut`.
    pub async fn send(&self, msg: &[u8], priority: u32) -> Result<(), Error> {
        self.attempt(Direction::Send, |q| q.try_send(msg, priority))
            .await
    }

    /// Receives the highest-priority, oldest message into `buf` (at least
    /// the queue's maximum message length), waiting (asynchronously) for one.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::receive`]: [`Error::NotReadable`],
    /// [`Error::BufferTooSmall`], …; never `WouldBlock` or `TimedOut`.
    pub async fn receive(&self, buf: &mut [u8]) -> Result<Received, Error> {
        self.attempt(Direction::Receive, |q| q.try_receive(buf))
            .await
    }

    /// Receives into a new `Vec` (sized from the queue's maximum message
    /// length, then shrunk), waiting for a message: its bytes and priority.
    ///
    /// # Errors
    ///
    /// As [`receive`](AsyncQueue::receive), except `BufferTooSmall`; also an
    /// unexpected OS error from `attributes` (kernel backend).
    pub async fn receive_vec(&self) -> Result<Message, Error> {
        let mut buf = owned::buffer(self.get_ref())?;
        let r = self.receive(&mut buf).await?;
        buf.truncate(r.len);
        buf.shrink_to_fit();
        Ok((buf, r.priority))
    }

    /// Sends without waiting.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::try_send`]: a full queue gives [`Error::WouldBlock`].
    pub fn try_send(&self, msg: &[u8], priority: u32) -> Result<(), Error> {
        self.get_ref().try_send(msg, priority)
    }

    /// Receives without waiting.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::try_receive`]: an empty queue gives
    /// [`Error::WouldBlock`].
    pub fn try_receive(&self, buf: &mut [u8]) -> Result<Received, Error> {
        self.get_ref().try_receive(buf)
    }

    /// As [`send`](AsyncQueue::send), giving up after `timeout` on tokio's
    /// clock (see the [module docs](self#timeouts-use-tokios-clock)).
    /// A `timeout` too large for the clock waits forever.
    ///
    /// # Errors
    ///
    /// As [`send`](AsyncQueue::send); [`Error::TimedOut`] when the queue
    /// stayed full (nothing was sent).
    pub async fn send_timeout(
        &self,
        msg: &[u8],
        priority: u32,
        timeout_: Duration,
    ) -> Result<(), Error> {
        timed_out(timeout(timeout_, self.send(msg, priority)).await)
    }

    /// As [`send`](AsyncQueue::send), giving up at `deadline` on tokio's clock.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](AsyncQueue::send_timeout).
    pub async fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: Instant,
    ) -> Result<(), Error> {
        timed_out(timeout_at(deadline, self.send(msg, priority)).await)
    }

    /// As [`receive`](AsyncQueue::receive), giving up after `timeout` on
    /// tokio's clock (see the [module docs](self#timeouts-use-tokios-clock)).
    /// A `timeout` too large for the clock waits forever.
    ///
    /// # Errors
    ///
    /// As [`receive`](AsyncQueue::receive); [`Error::TimedOut`] when the
    /// queue stayed empty (nothing was taken).
    pub async fn receive_timeout(
        &self,
        buf: &mut [u8],
        timeout_: Duration,
    ) -> Result<Received, Error> {
        timed_out(timeout(timeout_, self.receive(buf)).await)
    }

    /// As [`receive`](AsyncQueue::receive), giving up at `deadline` on
    /// tokio's clock.
    ///
    /// # Errors
    ///
    /// As [`receive_timeout`](AsyncQueue::receive_timeout).
    pub async fn receive_deadline(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<Received, Error> {
        timed_out(timeout_at(deadline, self.receive(buf)).await)
    }

    /// As [`receive_vec`](AsyncQueue::receive_vec), giving up after
    /// `timeout` on tokio's clock.
    ///
    /// # Errors
    ///
    /// As [`receive_vec`](AsyncQueue::receive_vec); [`Error::TimedOut`] when
    /// the queue stayed empty.
    pub async fn receive_vec_timeout(&self, timeout_: Duration) -> Result<Message, Error> {
        timed_out(timeout(timeout_, self.receive_vec()).await)
    }
}

/// A tokio timeout's result as the crate's: elapsed is [`Error::TimedOut`].
fn timed_out<T>(r: Result<Result<T, Error>, ::tokio::time::error::Elapsed>) -> Result<T, Error> {
    r.unwrap_or(Err(Error::TimedOut))
}

impl<Q: AsyncBackend + fmt::Debug> fmt::Debug for AsyncQueue<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncQueue")
            .field("queue", self.get_ref())
            .field("was_nonblocking", &self.was_nonblocking)
            .finish()
    }
}
