//! Owned receives: [`Iter`], the blocking iterator of
//! [`MessageQueue::iter`], [`TryIter`], the draining iterator of
//! [`MessageQueue::try_iter`], and the buffer sizing the `receive_vec`
//! family shares with them.

use std::fmt;

use crate::error::Error;
use crate::queue::MessageQueue;

/// A received message, owned: its bytes and its priority.
pub type Message = (Vec<u8>, u32);

/// A buffer as long as the queue's maximum message length, which every
/// receive needs (`mq_receive` refuses a shorter one with `EMSGSIZE`).
pub(crate) fn buffer<Q: MessageQueue + ?Sized>(q: &Q) -> Result<Vec<u8>, Error> {
    Ok(vec![0; q.attributes()?.max_msg_len])
}

/// Drains a queue without waiting: each item is the next message
/// ([`try_receive`](MessageQueue::try_receive)), until the queue is empty
/// (the iterator then ends) or an error other than
/// [`Error::WouldBlock`] (yielded once, after which the iterator ends).
///
/// Made by [`MessageQueue::try_iter`]. It reuses one receive buffer, sized on
/// the first call from [`attributes`](MessageQueue::attributes), and copies
/// each message out of it into a `Vec` of the message's own length. Messages
/// another handle sends while the iterator runs are taken too, so on a queue
/// that never empties it never ends: bound it with
/// [`take`](Iterator::take) when that matters.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
/// let q = Twin::new().open("/q", &OpenOptions::read_write().create())?;
/// q.send(b"low", 1)?;
/// q.send(b"high", 9)?;
/// let all: Result<Vec<_>, _> = q.try_iter().collect();
/// assert_eq!(all?, vec![(b"high".to_vec(), 9), (b"low".to_vec(), 1)]);
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub struct TryIter<'a, Q: MessageQueue + ?Sized>(Receiver<'a, Q>);

impl<'a, Q: MessageQueue + ?Sized> TryIter<'a, Q> {
    /// An iterator draining `queue`; the same as `queue.try_iter()`, also for
    /// an unsized `Q` such as `dyn MessageQueue`.
    pub fn new(queue: &'a Q) -> Self {
        TryIter(Receiver::new(queue, false))
    }
}

impl<Q: MessageQueue + ?Sized> Iterator for TryIter<'_, Q> {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl<Q: MessageQueue + ?Sized> std::iter::FusedIterator for TryIter<'_, Q> {}

impl<Q: MessageQueue + ?Sized> fmt::Debug for TryIter<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("TryIter", f)
    }
}

/// Receives messages one after another, waiting for each: each item is the
/// next message ([`receive`](MessageQueue::receive)), highest priority
/// first. It ends after yielding an error, once; on a non-blocking handle
/// [`Error::WouldBlock`] (the queue is empty) ends it without an item, so
/// there it drains like [`TryIter`]. On a blocking handle it never ends on
/// its own: a receiver loop is `for m in q.iter() { let (bytes, prio) = m?; … }`.
///
/// Made by [`MessageQueue::iter`]. Like posixmq's `iter()`, but an error
/// is yielded instead of a panic, and `EINTR` ([`Error::Interrupted`]) is
/// yielded too, not retried (as every call of this crate). One receive
/// buffer is reused, sized on the first call from
/// [`attributes`](MessageQueue::attributes).
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
/// let ns = Twin::new();
/// let q = ns.open("/jobs", &OpenOptions::read_write().create())?;
/// let tx = q.try_clone()?;
/// let producer = std::thread::spawn(move || {
///     (1..=3u8).try_for_each(|i| tx.send(&[i], u32::from(i)))
/// });
/// // Blocks for each message; three are expected.
/// let got: Vec<_> = q.iter().take(3).collect::<Result<_, _>>()?;
/// producer.join().unwrap()?;
/// assert_eq!(got.len(), 3);
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub struct Iter<'a, Q: MessageQueue + ?Sized>(Receiver<'a, Q>);

impl<'a, Q: MessageQueue + ?Sized> Iter<'a, Q> {
    /// A blocking iterator over `queue`; the same as `queue.iter()`, also
    /// for an unsized `Q` such as `dyn MessageQueue`.
    pub fn new(queue: &'a Q) -> Self {
        Iter(Receiver::new(queue, true))
    }
}

impl<Q: MessageQueue + ?Sized> Iterator for Iter<'_, Q> {
    type Item = Result<Message, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl<Q: MessageQueue + ?Sized> std::iter::FusedIterator for Iter<'_, Q> {}

impl<Q: MessageQueue + ?Sized> fmt::Debug for Iter<'_, Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug("Iter", f)
    }
}

/// What [`Iter`] and [`TryIter`] share: one receive buffer, sized on the
/// first call, and the end rule (an empty queue, `WouldBlock`, ends without
/// an item; another error is yielded once and ends).
struct Receiver<'a, Q: MessageQueue + ?Sized> {
    queue: &'a Q,
    buf: Vec<u8>,
    done: bool,
    /// `receive` (waits unless the handle is non-blocking) or `try_receive`.
    wait: bool,
}

impl<'a, Q: MessageQueue + ?Sized> Receiver<'a, Q> {
    fn new(queue: &'a Q, wait: bool) -> Self {
        Receiver {
            queue,
            buf: Vec::new(),
            done: false,
            wait,
        }
    }

    fn next_message(&mut self) -> Result<Message, Error> {
        if self.buf.is_empty() {
            self.buf = buffer(self.queue)?;
        }
        let r = match self.wait {
            true => self.queue.receive(&mut self.buf)?,
            false => self.queue.try_receive(&mut self.buf)?,
        };
        Ok((self.buf[..r.len].to_vec(), r.priority))
    }

    fn next(&mut self) -> Option<Result<Message, Error>> {
        if self.done {
            return None;
        }
        match self.next_message() {
            Ok(m) => Some(Ok(m)),
            Err(e) => {
                self.done = true;
                (e != Error::WouldBlock).then_some(Err(e))
            }
        }
    }

    fn debug(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(name)
            .field("buffer", &self.buf.len())
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}
