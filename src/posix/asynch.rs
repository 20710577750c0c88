//! The kernel backend's async wait (feature `tokio`): the descriptor in
//! tokio's reactor ([`AsyncFd`], epoll; a Linux `mqd_t` is pollable), and
//! non-blocking attempts retried when readiness fires.

use tokio::io::unix::AsyncFd;

use super::Queue;
use crate::error::Error;
use crate::tokio::sealed::{Backend, Direction};

impl Backend for Queue {
    type Registered = AsyncFd<Queue>;

    fn register(self) -> Result<AsyncFd<Queue>, (Queue, Error)> {
        // SAFETY: a `Queue` owns its descriptor and closes it only when
        // dropped, and `as_raw_fd` always returns that descriptor; the
        // `AsyncFd` owns the `Queue`, hands out only `&Queue` (through which
        // the descriptor cannot be closed or replaced), and drops it only
        // after deregistering it.
        unsafe { AsyncFd::register(self) }.map_err(|e| {
            let (queue, cause) = e.into_parts();
            (queue, io_error(&cause))
        })
    }

    fn get(r: &AsyncFd<Queue>) -> &Queue {
        r.get_ref()
    }

    fn unregister(r: AsyncFd<Queue>) -> Queue {
        r.into_inner()
    }

    async fn io<T: Send, F: FnMut(&Queue) -> Result<T, Error> + Send>(
        fd: &AsyncFd<Queue>,
        direction: Direction,
        mut attempt: F,
    ) -> Result<T, Error> {
        loop {
            // `readable()`/`writable()`, not `poll_read_ready`: the poll
            // functions keep only the last task's waker, so with several
            // tasks waiting on one handle all but one would never wake
            // (a test hung so); the futures queue every waiting task.
            // Readiness first, then the attempt: a `WouldBlock` clears
            // only the readiness this guard saw, never an event that
            // came after it (tokio compares the event's tick).
            let ready = match direction {
                Direction::Receive => fd.readable().await,
                Direction::Send => fd.writable().await,
            };
            let mut guard = ready.map_err(|e| io_error(&e))?;
            match attempt(guard.get_inner()) {
                Err(Error::WouldBlock) => guard.clear_ready(),
                r => return r,
            }
        }
    }
}

fn io_error(e: &std::io::Error) -> Error {
    Error::Os {
        errno: e.raw_os_error().unwrap_or(libc::EIO),
    }
}
