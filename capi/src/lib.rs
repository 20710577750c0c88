//! libmqtwin: the POSIX message-queue C API (`mq_open` … `mq_notify`) over
//! the mqtwin twin, for C programs and any language with a C FFI. See
//! docs/capi.md for building, linking, `LD_PRELOAD`, the environment and
//! the differences from glibc on the kernel.
//!
//! The exported functions are the POSIX ones; `mq_open` itself is defined
//! in C (src/shim.c, it is variadic) and calls [`mqtwin_capi_open`].

mod backend;
mod config;
mod fds;
mod ffi;
mod notify;
mod ops;
mod proxy;

use std::os::raw::{c_char, c_int, c_long, c_uint, c_void};

pub use ops::MqAttr;

use ffi::guard;

/// `mq_open` after the C shim read its variadic arguments: `mode` and
/// `attr` are 0 and NULL unless `oflag` has `O_CREAT`.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string; `attr` is NULL or points to
/// a `struct mq_attr`.
#[no_mangle]
pub unsafe extern "C" fn mqtwin_capi_open(
    name: *const c_char,
    oflag: c_int,
    mode: c_uint,
    attr: *const MqAttr,
) -> c_int {
    // SAFETY: the caller's pointers, as documented above.
    guard(-1, || unsafe { ops::open(name, oflag, mode, attr) })
}

/// `mq_close`: closes the descriptor (any descriptor, as glibc's
/// `mq_close` is `close`), first dropping this process's notification
/// registration on its queue.
#[no_mangle]
pub extern "C" fn mq_close(mqdes: c_int) -> c_int {
    guard(-1, || ops::close(mqdes))
}

/// `mq_unlink`: removes a queue's name.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn mq_unlink(name: *const c_char) -> c_int {
    // SAFETY: the caller's pointer, as documented above.
    guard(-1, || unsafe { ops::unlink(name) })
}

/// `mq_send`: `mq_timedsend` without a deadline.
///
/// # Safety
///
/// `msg` points to `len` readable bytes (or is NULL with `len` 0).
#[no_mangle]
pub unsafe extern "C" fn mq_send(
    mqdes: c_int,
    msg: *const c_char,
    len: usize,
    prio: c_uint,
) -> c_int {
    // SAFETY: the caller's pointers, as documented above.
    guard(-1, || {
        unsafe { ops::send(mqdes, msg, len, prio, None) }.map(|_| 0)
    })
}

/// `mq_timedsend`: sends, waiting at most until `abs_timeout`
/// (`CLOCK_REALTIME`, or the virtual clock); NULL waits without limit.
///
/// # Safety
///
/// `msg` points to `len` readable bytes (or is NULL with `len` 0);
/// `abs_timeout` is NULL or points to a `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn mq_timedsend(
    mqdes: c_int,
    msg: *const c_char,
    len: usize,
    prio: c_uint,
    abs_timeout: *const libc::timespec,
) -> c_int {
    // SAFETY: the caller's pointers, as documented above.
    guard(-1, || {
        unsafe { ops::send(mqdes, msg, len, prio, Some(abs_timeout)) }.map(|_| 0)
    })
}

/// `mq_receive`: `mq_timedreceive` without a deadline.
///
/// # Safety
///
/// `buf` points to `len` writable bytes; `prio` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mq_receive(
    mqdes: c_int,
    buf: *mut c_char,
    len: usize,
    prio: *mut c_uint,
) -> isize {
    // SAFETY: the caller's pointers, as documented above.
    guard(-1, || unsafe { ops::receive(mqdes, buf, len, prio, None) })
}

/// `mq_timedreceive`: receives, waiting at most until `abs_timeout`.
///
/// # Safety
///
/// `buf` points to `len` writable bytes; `prio` is NULL or writable;
/// `abs_timeout` is NULL or points to a `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn mq_timedreceive(
    mqdes: c_int,
    buf: *mut c_char,
    len: usize,
    prio: *mut c_uint,
    abs_timeout: *const libc::timespec,
) -> isize {
    // SAFETY: the caller's pointers, as documented above.
    guard(-1, || unsafe {
        ops::receive(mqdes, buf, len, prio, Some(abs_timeout))
    })
}

/// `mq_getattr`: the description's flags and the queue's attributes.
///
/// # Safety
///
/// `attr` is NULL (then nothing is written, as glibc+kernel) or writable.
#[no_mangle]
pub unsafe extern "C" fn mq_getattr(mqdes: c_int, attr: *mut MqAttr) -> c_int {
    // SAFETY: the caller's pointer, as documented above.
    guard(-1, || unsafe {
        ops::setattr(mqdes, std::ptr::null(), attr)
    })
}

/// `mq_setattr`: sets or clears `O_NONBLOCK` on the open description;
/// `old` (if not NULL) gets the attributes from before.
///
/// # Safety
///
/// `new` is NULL or readable; `old` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn mq_setattr(mqdes: c_int, new: *const MqAttr, old: *mut MqAttr) -> c_int {
    // SAFETY: the caller's pointers, as documented above.
    guard(-1, || unsafe { ops::setattr(mqdes, new, old) })
}

/// `mq_notify`: registers (`sevp` not NULL: `SIGEV_NONE`, `SIGEV_SIGNAL`,
/// `SIGEV_THREAD`) or removes (NULL) this process's notification.
///
/// # Safety
///
/// `sevp` is NULL or points to a `struct sigevent`.
#[no_mangle]
pub unsafe extern "C" fn mq_notify(mqdes: c_int, sevp: *const c_void) -> c_int {
    // SAFETY: the caller's pointer, as documented above.
    guard(-1, || unsafe { notify::notify(mqdes, sevp) })
}

/// Extension (capi/include/mqtwin.h): advances the virtual clock
/// (`MQTWIN_VIRTUAL_TIME=1`) by `by`, waking the calls whose deadline it
/// reaches. `EINVAL` for a bad timespec or without virtual time.
///
/// # Safety
///
/// `by` is NULL or points to a `struct timespec`.
#[no_mangle]
pub unsafe extern "C" fn mqtwin_advance(by: *const libc::timespec) -> c_int {
    // SAFETY: the caller's pointer, as documented above.
    guard(-1, || unsafe { ops::advance(by) })
}

/// Extension (capi/include/mqtwin.h): advances the virtual clock to the
/// earliest deadline a blocked call waits for. Returns 1 if it moved, 0 if
/// no call waits with a deadline; -1 with `EINVAL` without virtual time.
#[no_mangle]
pub extern "C" fn mqtwin_advance_to_next_deadline() -> c_int {
    guard(-1, ops::advance_to_next_deadline)
}

/// Extension (capi/include/mqtwin.h): callers blocked in a send or receive
/// right now (to wait until a thread is blocked before acting).
#[no_mangle]
pub extern "C" fn mqtwin_blocked() -> c_long {
    guard(-1, ops::blocked)
}
