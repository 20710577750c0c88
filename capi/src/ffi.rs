//! The FFI boundary's plumbing: `errno`, the Linux-to-host errno mapping,
//! the panic guard every exported function runs in, and the C shim's
//! functions (src/shim.c).

use std::os::raw::{c_int, c_uint, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

use mqtwin::error::errno as linux;

/// Sets the calling thread's `errno`.
pub(crate) fn set_errno(value: c_int) {
    // SAFETY: the errno location is the calling thread's own, valid for the
    // thread's lifetime; writing an int there is what libc itself does.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            *libc::__errno_location() = value;
        }
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
        {
            *libc::__error() = value;
        }
    }
}

/// The calling thread's `errno`.
pub(crate) fn last_errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// The host's errno for a Linux errno (the numbers `mqtwin::Error::errno`
/// returns): the same number on Linux, the platform's constant elsewhere.
pub(crate) fn host_errno(e: i32) -> c_int {
    if cfg!(target_os = "linux") {
        return e;
    }
    match e {
        linux::EPERM => libc::EPERM,
        linux::ENOENT => libc::ENOENT,
        linux::EINTR => libc::EINTR,
        linux::EBADF => libc::EBADF,
        linux::EAGAIN => libc::EAGAIN,
        linux::ENOMEM => libc::ENOMEM,
        linux::EACCES => libc::EACCES,
        linux::EBUSY => libc::EBUSY,
        linux::EEXIST => libc::EEXIST,
        linux::EINVAL => libc::EINVAL,
        linux::ENFILE => libc::ENFILE,
        linux::EMFILE => libc::EMFILE,
        linux::ENOSPC => libc::ENOSPC,
        linux::ENAMETOOLONG => libc::ENAMETOOLONG,
        linux::EMSGSIZE => libc::EMSGSIZE,
        linux::ETIMEDOUT => libc::ETIMEDOUT,
        other => other,
    }
}

/// A failed call: the errno to set (the host's numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Errno(pub(crate) c_int);

impl From<mqtwin::Error> for Errno {
    fn from(e: mqtwin::Error) -> Self {
        Errno(host_errno(e.errno()))
    }
}

/// Runs an exported function's body: `Ok(v)` returns `v`; `Err(e)` sets
/// errno and returns `failed`; a panic (a bug) is caught here, never
/// unwinds into C, and becomes `EIO` with one line on stderr.
pub(crate) fn guard<T: Copy>(failed: T, body: impl FnOnce() -> Result<T, Errno>) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(Errno(e))) => {
            set_errno(e);
            failed
        }
        Err(_) => {
            eprintln!("libmqtwin: internal error (a panic, caught at the C boundary); errno EIO");
            set_errno(libc::EIO);
            failed
        }
    }
}

/// `SIGEV_*` as src/shim.c reports them, the same on every platform.
pub(crate) const KIND_NONE: c_int = 0;
pub(crate) const KIND_SIGNAL: c_int = 1;
pub(crate) const KIND_THREAD: c_int = 2;

/// A `SIGEV_THREAD` function: `void (*)(union sigval)`, a pointer-sized union.
pub(crate) type NotifyFn = unsafe extern "C" fn(*mut c_void);

/// An opaque `pthread_attr_t` copy made by the shim.
#[repr(C)]
pub(crate) struct PthreadAttr {
    _opaque: [u8; 0],
}

extern "C" {
    /// Reads a `struct sigevent` (src/shim.c).
    pub(crate) fn mqtwin_capi_sigevent(
        sev: *const c_void,
        kind: *mut c_int,
        signo: *mut c_int,
        value: *mut *mut c_void,
        function: *mut Option<NotifyFn>,
        attributes: *mut *const PthreadAttr,
    );
    /// Copies a `pthread_attr_t` (NULL for NULL).
    pub(crate) fn mqtwin_capi_attr_clone(attr: *const PthreadAttr) -> *mut PthreadAttr;
    /// Frees a copy from `mqtwin_capi_attr_clone`.
    pub(crate) fn mqtwin_capi_attr_free(attr: *mut PthreadAttr);
    /// Runs `function(value)` on a new detached thread.
    pub(crate) fn mqtwin_capi_spawn_notify(
        function: NotifyFn,
        value: *mut c_void,
        attr: *mut PthreadAttr,
    ) -> c_int;
    /// Raises a notification signal in this process.
    pub(crate) fn mqtwin_capi_raise(
        signo: c_int,
        value: *mut c_void,
        pid: c_int,
        uid: c_uint,
    ) -> c_int;
}
