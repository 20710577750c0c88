//! The twin's async wait: a waker registered on the queue, woken on every
//! change of the queue and removed when the future is dropped (see
//! `twin::queue::AsyncWait`).

use std::future::{poll_fn, Future};
use std::task::Poll;

use super::sealed::{Backend, Direction};
use crate::error::Error;
use crate::notify::Interest;
use crate::twin::Queue;

impl Backend for Queue {
    type Registered = Queue;

    fn register(self) -> Result<Queue, (Queue, Error)> {
        Ok(self)
    }

    fn get(r: &Queue) -> &Queue {
        r
    }

    fn unregister(r: Queue) -> Queue {
        r
    }

    fn io<T: Send, F: FnMut(&Queue) -> Result<T, Error> + Send>(
        q: &Queue,
        direction: Direction,
        mut attempt: F,
    ) -> impl Future<Output = Result<T, Error>> + Send {
        let interest = match direction {
            Direction::Receive => Interest::Readable,
            Direction::Send => Interest::Writable,
        };
        // Dropped with the future: removes the waker it registered.
        let mut wait = q.async_wait();
        poll_fn(move |cx| loop {
            match attempt(q) {
                Err(Error::WouldBlock) => {}
                r => return Poll::Ready(r),
            }
            // Ready again already (a change since the attempt): try again;
            // otherwise the task's waker is registered on the queue.
            if !wait.ready_or_register(interest, cx.waker()) {
                return Poll::Pending;
            }
        })
    }
}
