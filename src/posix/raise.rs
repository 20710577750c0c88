//! Raising a message-queue notification signal in the calling process, with
//! the `siginfo` the kernel's `__do_notify` fills in. The remote backend
//! (`mqtwin::remote`) uses it to deliver, in the client process, a signal
//! its twin server fired; `unsafe` is allowed in this backend only.

use crate::notify::{SignalInfo, SI_MESGQ};

/// Queues `info.signal` to the calling process (`rt_sigqueueinfo` to its own
/// pid: process-directed, like the kernel's notification) with `si_code =
/// SI_MESGQ`, `si_pid`/`si_uid` of the sender and `si_value = info.value`.
///
/// # Errors
///
/// The OS error of `rt_sigqueueinfo` (`EAGAIN` when the real-time signal
/// queue is full, `EINVAL` for a bad signal).
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) fn raise_mesgq(info: &SignalInfo) -> std::io::Result<()> {
    // SAFETY: an all-zero siginfo_t is a valid value (a plain C struct).
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    si.si_signo = info.signal;
    si.si_code = SI_MESGQ;
    si.si_errno = 0;
    // The union after the three header ints is, for SI_MESGQ (the
    // kernel's `_rt` member): si_pid, si_uid, si_value. libc exposes it
    // only for reading, so it is written through a mirror of its layout.
    #[repr(C)]
    struct Rt {
        signo: libc::c_int,
        errno: libc::c_int,
        code: libc::c_int,
        // 64-bit Linux pads the union to pointer alignment.
        #[cfg(target_pointer_width = "64")]
        _pad: libc::c_int,
        pid: libc::pid_t,
        uid: libc::uid_t,
        value: libc::sigval,
    }
    const _: () = assert!(std::mem::size_of::<Rt>() <= std::mem::size_of::<libc::siginfo_t>());
    // SAFETY: `Rt` is no larger than `siginfo_t` (checked above) and mirrors
    // the kernel's layout of its `_rt` member; `si` is a live, aligned
    // value we own.
    unsafe {
        let rt = &mut *(&mut si as *mut libc::siginfo_t as *mut Rt);
        rt.pid = info.pid as libc::pid_t;
        rt.uid = info.uid;
        rt.value = libc::sigval {
            sival_ptr: info.value as *mut libc::c_void,
        };
    }
    // SAFETY: rt_sigqueueinfo with our own pid, a signal number and a
    // valid, initialised siginfo_t; a negative si_code is allowed to self.
    let r = unsafe {
        libc::syscall(
            libc::SYS_rt_sigqueueinfo,
            libc::getpid(),
            info.signal,
            &si as *const libc::siginfo_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
