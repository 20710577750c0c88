//! `mq_notify`: the C `struct sigevent` as a [`Notify`].

use std::os::raw::{c_int, c_void};

use mqtwin::{Error, Notify};

use crate::backend::state;
use crate::ffi::{self, Errno, NotifyFn, PthreadAttr};

/// The copy of a `SIGEV_THREAD` registration's `pthread_attr_t`, owned by
/// the registration: freed when it fires or is dropped unfired.
struct Attr(*mut PthreadAttr);

// SAFETY: the copy is private to the registration, used by one thread at
// a time (the one running or dropping the registration).
unsafe impl Send for Attr {}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: a copy from mqtwin_capi_attr_clone (or NULL), freed once.
        unsafe { ffi::mqtwin_capi_attr_free(self.0) };
    }
}

/// A `SIGEV_THREAD` function and its value.
struct Callback {
    function: NotifyFn,
    value: *mut c_void,
    attr: Attr,
}

// SAFETY: the function pointer and the value are the caller's, meant to be
// used on another thread (that is what SIGEV_THREAD does).
unsafe impl Send for Callback {}

impl Callback {
    /// Runs the function on a new C thread (a method, so a closure moves
    /// the whole `Send` value).
    fn start(self) {
        // SAFETY: starts a detached C thread calling function(value); the
        // attributes copy stays alive until pthread_create returned.
        let _ = unsafe { ffi::mqtwin_capi_spawn_notify(self.function, self.value, self.attr.0) };
    }
}

/// # Safety
///
/// `sevp` is NULL or points to a `struct sigevent`.
pub(crate) unsafe fn notify(fd: c_int, sevp: *const c_void) -> Result<c_int, Errno> {
    let st = state()?;
    // The sigevent is checked before the descriptor, as the kernel does.
    let how = if sevp.is_null() {
        None
    } else {
        let (mut kind, mut signo) = (0, 0);
        let mut value = std::ptr::null_mut();
        let mut function = None;
        let mut attributes = std::ptr::null();
        // SAFETY: a readable sigevent (the caller's contract); the outputs
        // are locals.
        unsafe {
            ffi::mqtwin_capi_sigevent(
                sevp,
                &mut kind,
                &mut signo,
                &mut value,
                &mut function,
                &mut attributes,
            )
        };
        let how = match kind {
            ffi::KIND_NONE => Notify::None,
            ffi::KIND_SIGNAL => Notify::Signal {
                signal: signo,
                value: value as usize,
            },
            ffi::KIND_THREAD => {
                let Some(function) = function else {
                    // glibc would start a thread that crashes calling NULL.
                    return Err(Errno(libc::EINVAL));
                };
                // SAFETY: `attributes` is NULL or the caller's
                // pthread_attr_t; it is copied now, as glibc copies it.
                let copy = unsafe { ffi::mqtwin_capi_attr_clone(attributes) };
                if !attributes.is_null() && copy.is_null() {
                    return Err(Errno(libc::ENOMEM));
                }
                let callback = Callback {
                    function,
                    value,
                    attr: Attr(copy),
                };
                Notify::thread(move || callback.start())
            }
            _ => return Err(Errno(libc::EINVAL)),
        };
        how.validate().map_err(Errno::from)?;
        Some(how)
    };
    let desc = st.table.get(fd)?;
    match how {
        None => desc.queue.cancel_notify(),
        Some(how) => desc.queue.notify(how),
    }
    .map_err(|e: Error| Errno::from(e))?;
    Ok(0)
}
