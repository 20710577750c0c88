//! `mq_notify` and `poll` for the kernel backend (through `libc`: `nix`
//! has neither for message queues).
//!
//! A [`Notify::Thread`] callback cannot travel through C as a closure, so it
//! is parked in a process-wide table under a numeric key; the key travels as
//! the `sigev_value`, and a C trampoline (run by glibc on a new thread) takes
//! the callback out and runs it. The handle that registered it removes its
//! keys when it is dropped, so registrations that never fire do not leak.

use std::collections::HashMap;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::error::Error;
use crate::notify::{Interest, Notify, Readiness};

type Callback = Box<dyn FnOnce() + Send + 'static>;

static CALLBACKS: Mutex<Option<HashMap<u64, Callback>>> = Mutex::new(None);
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

fn callbacks() -> std::sync::MutexGuard<'static, Option<HashMap<u64, Callback>>> {
    CALLBACKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// glibc's `struct sigevent` with the `SIGEV_THREAD` member of its union
/// spelled out (`libc::sigevent` only exposes the thread-id member).
#[repr(C)]
struct SigeventThread {
    value: libc::sigval,
    signo: libc::c_int,
    notify: libc::c_int,
    function: Option<extern "C" fn(libc::sigval)>,
    attributes: *mut libc::pthread_attr_t,
    _pad: [u8; 64 - 8 - 2 * std::mem::size_of::<usize>() - std::mem::size_of::<libc::sigval>()],
}

const _: () =
    assert!(std::mem::size_of::<SigeventThread>() == std::mem::size_of::<libc::sigevent>());

/// Runs on the thread glibc creates for a `SIGEV_THREAD` notification.
extern "C" fn trampoline(value: libc::sigval) {
    let key = value.sival_ptr as usize as u64;
    let callback = callbacks().as_mut().and_then(|t| t.remove(&key));
    if let Some(cb) = callback {
        // A panic must not unwind into C.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(cb));
    }
}

/// Forgets callbacks that can no longer fire through this handle.
pub(super) fn forget(keys: &[u64]) {
    if let Some(t) = callbacks().as_mut() {
        for k in keys {
            t.remove(k);
        }
    }
}

/// `mq_notify(fd, how)`. Returns the callback key for a `Thread` form.
pub(super) fn register(fd: RawFd, how: Notify) -> Result<Option<u64>, Error> {
    how.validate()?;
    let mut key = None;
    let r = match how {
        Notify::None | Notify::Signal { .. } => {
            // SAFETY: sigevent is plain data; all-zero is a valid value.
            let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
            if let Notify::Signal { signal, value } = how {
                ev.sigev_notify = libc::SIGEV_SIGNAL;
                ev.sigev_signo = signal;
                ev.sigev_value = libc::sigval {
                    sival_ptr: value as *mut libc::c_void,
                };
            } else {
                ev.sigev_notify = libc::SIGEV_NONE;
            }
            // SAFETY: `ev` is a valid sigevent for the duration of the call.
            unsafe { libc::mq_notify(fd, &ev) }
        }
        Notify::Thread(cb) => {
            let k = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
            callbacks().get_or_insert_with(HashMap::new).insert(k, cb);
            key = Some(k);
            let ev = SigeventThread {
                value: libc::sigval {
                    sival_ptr: k as usize as *mut libc::c_void,
                },
                signo: 0,
                notify: libc::SIGEV_THREAD,
                function: Some(trampoline),
                attributes: std::ptr::null_mut(),
                _pad: [0; 64
                    - 8
                    - 2 * std::mem::size_of::<usize>()
                    - std::mem::size_of::<libc::sigval>()],
            };
            // SAFETY: `SigeventThread` has the layout of glibc's sigevent
            // (size checked at compile time); glibc reads the function and
            // attribute members for SIGEV_THREAD.
            unsafe { libc::mq_notify(fd, (&ev as *const SigeventThread).cast()) }
        }
    };
    if r == 0 {
        return Ok(key);
    }
    let e = Errno::last();
    if let Some(k) = key {
        forget(&[k]);
    }
    Err(match e {
        Errno::EBUSY => Error::Busy,
        Errno::ENOMEM => Error::OutOfMemory,
        e => Error::Os { errno: e as i32 },
    })
}

/// `mq_notify(fd, NULL)`.
pub(super) fn cancel(fd: RawFd) -> Result<(), Error> {
    // SAFETY: a null sigevent asks for deregistration.
    if unsafe { libc::mq_notify(fd, std::ptr::null()) } == 0 {
        Ok(())
    } else {
        Err(Error::Os {
            errno: Errno::last() as i32,
        })
    }
}

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
