//! `poll` on a queue descriptor for the kernel backend: readiness and
//! `wait_ready` (a Linux `mqd_t` is a pollable descriptor).

use std::os::fd::BorrowedFd;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::Error;
use crate::notify::{Interest, Readiness};

fn flags(interest: Interest) -> PollFlags {
    match interest {
        Interest::Readable => PollFlags::POLLIN,
        Interest::Writable => PollFlags::POLLOUT,
        Interest::Either => PollFlags::POLLIN | PollFlags::POLLOUT,
    }
}

/// One `poll` with a timeout in milliseconds (-1: forever).
fn poll_once(fd: BorrowedFd<'_>, interest: Interest, timeout_ms: i32) -> Result<Readiness, Error> {
    let mut fds = [PollFd::new(fd, flags(interest))];
    let timeout = PollTimeout::try_from(timeout_ms).unwrap_or(PollTimeout::MAX);
    poll(&mut fds, timeout).map_err(|e| match e {
        Errno::EINTR => Error::Interrupted,
        e => Error::Os { errno: e as i32 },
    })?;
    let got = fds[0].revents().unwrap_or(PollFlags::empty());
    Ok(Readiness {
        readable: got.contains(PollFlags::POLLIN),
        writable: got.contains(PollFlags::POLLOUT),
    })
}

/// The queue's readiness now.
pub(super) fn readiness(fd: BorrowedFd<'_>) -> Result<Readiness, Error> {
    poll_once(fd, Interest::Either, 0)
}

/// Waits until `interest` is met or `deadline` passes.
pub(super) fn wait_ready(
    fd: BorrowedFd<'_>,
    interest: Interest,
    deadline: Option<SystemTime>,
) -> Result<Readiness, Error> {
    crate::deadline::check(deadline)?;
    loop {
        let timeout_ms = match deadline {
            None => -1,
            Some(d) => match d.duration_since(SystemTime::now()) {
                Err(_) => 0,
                // Round up, so a wait never ends before its deadline.
                Ok(left) => i32::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX),
            },
        };
        let r = poll_once(fd, interest, timeout_ms)?;
        if interest.is_met(r) {
            return Ok(r);
        }
        if timeout_ms == 0 {
            return Err(Error::TimedOut);
        }
    }
}
