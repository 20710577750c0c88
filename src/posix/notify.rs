//! `mq_notify` for the kernel backend (through `libc`: `nix` has no
//! message-queue notification). The signal and none forms go straight to
//! the system call; the thread form goes through [`super::callbacks`].

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::error::Error;
use crate::notify::Notify;

use super::callbacks;

/// `mq_notify(fd, how)`.
pub(super) fn register(fd: RawFd, how: Notify) -> Result<(), Error> {
    how.validate()?;
    let (notify, signal, value) = match how {
        Notify::Thread(callback) => return callbacks::register(fd, callback),
        Notify::None => (libc::SIGEV_NONE, 0, 0),
        Notify::Signal { signal, value } => (libc::SIGEV_SIGNAL, signal, value),
    };
    // SAFETY: sigevent is plain data; all-zero is a valid value.
    let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
    ev.sigev_notify = notify;
    ev.sigev_signo = signal;
    ev.sigev_value = libc::sigval {
        sival_ptr: value as *mut libc::c_void,
    };
    // SAFETY: `ev` is a valid sigevent for the duration of the call.
    if unsafe { libc::mq_notify(fd, &ev) } == 0 {
        return Ok(());
    }
    Err(error(Errno::last()))
}

/// An `mq_notify` errno, named (both forms, so they cannot drift).
pub(super) fn error(e: Errno) -> Error {
    match e {
        Errno::EBUSY => Error::Busy,
        Errno::ENOMEM => Error::OutOfMemory,
        e => Error::Os { errno: e as i32 },
    }
}

/// `mq_notify(fd, NULL)`; returns once a thread callback it removed has
/// been dropped.
pub(super) fn cancel(fd: RawFd) -> Result<(), Error> {
    callbacks::cancel_and_wait(fd, || {
        // SAFETY: a null sigevent asks for deregistration.
        if unsafe { libc::mq_notify(fd, std::ptr::null()) } == 0 {
            Ok(())
        } else {
            Err(Error::Os {
                errno: Errno::last() as i32,
            })
        }
    })
}
