//! The C functions' bodies: argument checks in the kernel's order, then
//! the backend.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_long, c_uint};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mqtwin::deadline::{from_timespec, MQ_PRIO_MAX};
use mqtwin::{Error, NameProblem, OpenOptions};

use crate::backend::{state, State};
use crate::fds::{Desc, NewDesc};
use crate::ffi::{self, Errno};

/// `struct mq_attr` as glibc and capi/include/mqueue.h lay it out.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MqAttr {
    /// `O_NONBLOCK` or 0 (the open description's flag).
    pub mq_flags: c_long,
    /// Capacity in messages.
    pub mq_maxmsg: c_long,
    /// Largest message in bytes.
    pub mq_msgsize: c_long,
    /// Messages queued now.
    pub mq_curmsgs: c_long,
    /// Reserved, zero.
    pub pad: [c_long; 4],
}

fn errno(e: Error) -> Errno {
    Errno::from(e)
}

/// A name from C: `EFAULT` for NULL (the kernel's answer; glibc itself
/// would crash reading it), glibc's `EINVAL` without the leading slash.
///
/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
unsafe fn c_name<'a>(name: *const c_char) -> Result<&'a str, Errno> {
    if name.is_null() {
        return Err(Errno(libc::EFAULT));
    }
    // SAFETY: a NUL-terminated string, by the caller's contract.
    let bytes = unsafe { CStr::from_ptr(name) }.to_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(errno(Error::InvalidName {
            name: String::from_utf8_lossy(bytes).into_owned(),
            problem: NameProblem::NoLeadingSlash,
        }));
    }
    // The twin's names are UTF-8; the kernel takes any bytes (docs/capi.md).
    std::str::from_utf8(bytes).map_err(|_| Errno(libc::EINVAL))
}

/// # Safety
///
/// As `mqtwin_capi_open`.
pub(crate) unsafe fn open(
    name: *const c_char,
    oflag: c_int,
    mode: c_uint,
    attr: *const MqAttr,
) -> Result<c_int, Errno> {
    let st = state()?;
    // SAFETY: the caller's pointer.
    let name = unsafe { c_name(name) }?;
    let create = oflag & libc::O_CREAT != 0;
    let exclusive = create && oflag & libc::O_EXCL != 0;
    let requested = if create && !attr.is_null() {
        // SAFETY: a readable `struct mq_attr`, by the caller's contract.
        let a = unsafe { attr.read_unaligned() };
        // Zero or less is refused by the shared attribute rules (EINVAL).
        Some((
            usize::try_from(a.mq_maxmsg).unwrap_or(0),
            usize::try_from(a.mq_msgsize).unwrap_or(0),
        ))
    } else {
        None
    };
    let access_mode = oflag & libc::O_ACCMODE;
    let options = |base: OpenOptions| {
        let mut o = base.mode(mode);
        if create {
            o = o.create();
        }
        if exclusive {
            o = o.create_new();
        }
        if let Some((capacity, size)) = requested {
            o = o.capacity(capacity).max_msg_len(size);
        }
        if oflag & libc::O_NONBLOCK != 0 {
            o = o.nonblocking();
        }
        o
    };
    st.table.open(name, || {
        let (base, can_read, can_write) = match access_mode {
            m if m == libc::O_RDONLY => (OpenOptions::read_only(), true, false),
            m if m == libc::O_WRONLY => (OpenOptions::write_only(), false, true),
            m if m == libc::O_RDWR => (OpenOptions::read_write(), true, true),
            _ => return open_mode_3(st, name, create, exclusive, options),
        };
        let queue = st.backend.open(name, &options(base))?;
        Ok(NewDesc {
            queue,
            can_read,
            can_write,
        })
    })
}

/// Access mode 3 (`O_WRONLY|O_RDWR`): Linux creates a new queue and gives a
/// descriptor that can neither send nor receive; on an existing queue it is
/// `EINVAL` (after `EEXIST` for `O_CREAT|O_EXCL`).
fn open_mode_3(
    st: &State,
    name: &str,
    create: bool,
    exclusive: bool,
    options: impl Fn(OpenOptions) -> OpenOptions,
) -> Result<NewDesc, Errno> {
    if create {
        match st
            .backend
            .open(name, &options(OpenOptions::read_write()).create_new())
        {
            Ok(queue) => {
                return Ok(NewDesc {
                    queue,
                    can_read: false,
                    can_write: false,
                })
            }
            Err(e) if e.0 == ffi::host_errno(mqtwin::error::errno::EEXIST) => {
                return Err(if exclusive { e } else { Errno(libc::EINVAL) });
            }
            Err(e) => return Err(e),
        }
    }
    // No O_CREAT: ENOENT for a missing queue, else EINVAL (before EACCES).
    match st.backend.open(name, &OpenOptions::read_only()) {
        Err(e) if e.0 == libc::ENOENT => Err(e),
        Err(e) if e.0 == libc::EACCES => Err(Errno(libc::EINVAL)),
        Err(e) => Err(e),
        Ok(_) => Err(Errno(libc::EINVAL)),
    }
}

pub(crate) fn close(fd: c_int) -> Result<c_int, Errno> {
    state()?.table.close(fd).map(|()| 0)
}

/// # Safety
///
/// `name` is NULL or a NUL-terminated string.
pub(crate) unsafe fn unlink(name: *const c_char) -> Result<c_int, Errno> {
    let st = state()?;
    // SAFETY: the caller's pointer.
    let name = unsafe { c_name(name) }?;
    st.backend.unlink(name)?;
    st.table.unlinked(name);
    Ok(0)
}

/// `abs_timeout`: `None` for `mq_send`/`mq_receive` and for a NULL
/// pointer; `EINVAL` by the kernel's timespec rule.
///
/// # Safety
///
/// `ts` is NULL or points to a `struct timespec`.
unsafe fn deadline(ts: Option<*const libc::timespec>) -> Result<Option<SystemTime>, Errno> {
    match ts {
        Some(p) if !p.is_null() => {
            // SAFETY: a readable timespec, by the caller's contract.
            let t = unsafe { p.read_unaligned() };
            #[allow(clippy::unnecessary_cast)] // time_t and c_long vary
            let d = from_timespec(t.tv_sec as i64, t.tv_nsec as i64).map_err(errno)?;
            Ok(Some(d))
        }
        _ => Ok(None),
    }
}

/// A pointer handed to a proxy thread. The caller waits for the proxy to
/// finish before it returns, so the memory outlives every use.
struct Shared<T>(*mut T);
// SAFETY: see above: the pointee is used by one thread at a time (the
// caller waits in `Pool::run` while the proxy uses it).
unsafe impl<T> Send for Shared<T> {}

impl<T> Shared<T> {
    /// The pointer (a method, so closures capture the whole `Send` value).
    fn get(&self) -> *mut T {
        self.0
    }
}

/// How a call that may wait is run: at once when it cannot wait (the
/// description is non-blocking, the deadline has passed, or the queue
/// lets it through), otherwise on a proxy the caller waits for
/// interruptibly.
fn run_blocking(
    st: &'static State,
    desc: &Arc<Desc>,
    deadline: Option<SystemTime>,
    call: impl Fn(&Desc, Option<SystemTime>) -> Result<isize, Error> + Send + 'static,
) -> Result<isize, Errno> {
    let nonblocking = desc.queue.attributes().map_err(errno)?.nonblocking;
    let passed = deadline.is_some_and(|d| d <= st.backend.now());
    if nonblocking || passed {
        return call(desc, deadline).map_err(errno);
    }
    match call(desc, Some(UNIX_EPOCH)) {
        Err(Error::TimedOut) => {}
        other => return other.map_err(errno),
    }
    let desc = Arc::clone(desc);
    st.pool.run(
        &*st.backend,
        Box::new(move || call(&desc, deadline).map_err(errno)),
    )
}

/// Raises the notification signals the last send fired and updates the
/// queue's readiness.
fn after_send(st: &State, desc: &Desc) {
    for s in st.backend.take_signals() {
        // SAFETY: raises a signal in this process; no memory is passed but
        // the value, which the kernel copies.
        unsafe {
            ffi::mqtwin_capi_raise(
                s.signal,
                s.value as *mut std::os::raw::c_void,
                s.pid as c_int,
                s.uid,
            )
        };
    }
    desc.refresh();
}

/// # Safety
///
/// `msg` points to `len` readable bytes or is NULL; `ts` as [`deadline`].
pub(crate) unsafe fn send(
    fd: c_int,
    msg: *const c_char,
    len: usize,
    prio: c_uint,
    ts: Option<*const libc::timespec>,
) -> Result<isize, Errno> {
    let st = state()?;
    // SAFETY: the caller's pointer.
    let deadline = unsafe { deadline(ts) }?;
    if prio >= MQ_PRIO_MAX {
        return Err(errno(Error::InvalidPriority { priority: prio }));
    }
    let desc = st.table.get(fd)?;
    if !desc.can_write {
        return Err(errno(Error::NotWritable));
    }
    if len > desc.msgsize {
        return Err(errno(Error::MessageTooLong {
            len,
            limit: desc.msgsize,
        }));
    }
    if msg.is_null() && len > 0 {
        return Err(Errno(libc::EFAULT));
    }
    let msg = Shared(msg as *mut u8);
    let r = run_blocking(st, &desc, deadline, move |d, deadline| {
        let bytes: &[u8] = if len == 0 {
            &[]
        } else {
            // SAFETY: `len` readable bytes (the caller's contract), alive
            // until the caller returns, which waits for this call.
            unsafe { std::slice::from_raw_parts(msg.get(), len) }
        };
        let r = d.queue.send_deadline(bytes, prio, deadline).map(|()| 0);
        if let Ok(st) = state() {
            after_send(st, d);
        }
        r
    });
    r
}

/// # Safety
///
/// `buf` points to `len` writable bytes or is NULL; `prio` is NULL or
/// writable; `ts` as [`deadline`].
pub(crate) unsafe fn receive(
    fd: c_int,
    buf: *mut c_char,
    len: usize,
    prio: *mut c_uint,
    ts: Option<*const libc::timespec>,
) -> Result<isize, Errno> {
    let st = state()?;
    // SAFETY: the caller's pointer.
    let deadline = unsafe { deadline(ts) }?;
    let desc = st.table.get(fd)?;
    if !desc.can_read {
        return Err(errno(Error::NotReadable));
    }
    let size = desc.msgsize;
    if len < size {
        return Err(errno(Error::BufferTooSmall {
            len,
            msg_size: size,
        }));
    }
    // NULL: the kernel takes the message and fails copying it out
    // (EFAULT, the message is lost); so does this.
    let mut scratch = if buf.is_null() {
        vec![0u8; size]
    } else {
        Vec::new()
    };
    let target = Shared(if buf.is_null() {
        scratch.as_mut_ptr()
    } else {
        buf.cast::<u8>()
    });
    let got_prio = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let prio_out = Arc::clone(&got_prio);
    let n = run_blocking(st, &desc, deadline, move |d, deadline| {
        // SAFETY: at least `size` writable bytes (len >= size, checked
        // above), alive until the caller returns, which waits for this.
        let out = unsafe { std::slice::from_raw_parts_mut(target.get(), size) };
        let r = d.queue.receive_deadline(out, deadline);
        d.refresh();
        r.map(|m| {
            prio_out.store(m.priority, std::sync::atomic::Ordering::SeqCst);
            m.len as isize
        })
    })?;
    drop(scratch);
    if buf.is_null() {
        return Err(Errno(libc::EFAULT));
    }
    if !prio.is_null() {
        // SAFETY: a writable unsigned int, by the caller's contract.
        unsafe { prio.write_unaligned(got_prio.load(std::sync::atomic::Ordering::SeqCst)) };
    }
    Ok(n)
}

/// `mq_setattr` (and `mq_getattr`, which glibc makes `mq_setattr(fd,
/// NULL, attr)`).
///
/// # Safety
///
/// `new` is NULL or readable; `old` is NULL or writable.
pub(crate) unsafe fn setattr(
    fd: c_int,
    new: *const MqAttr,
    old: *mut MqAttr,
) -> Result<c_int, Errno> {
    let st = state()?;
    let flags = if new.is_null() {
        None
    } else {
        // SAFETY: a readable `struct mq_attr`, by the caller's contract.
        let flags = unsafe { new.read_unaligned() }.mq_flags;
        if flags & !(libc::O_NONBLOCK as c_long) != 0 {
            return Err(Errno(libc::EINVAL));
        }
        Some(flags)
    };
    let desc = st.table.get(fd)?;
    if !old.is_null() {
        let a = desc.queue.attributes().map_err(errno)?;
        let out = MqAttr {
            mq_flags: if a.nonblocking {
                libc::O_NONBLOCK as c_long
            } else {
                0
            },
            mq_maxmsg: a.capacity as c_long,
            mq_msgsize: a.max_msg_len as c_long,
            mq_curmsgs: a.current_messages as c_long,
            pad: [0; 4],
        };
        // SAFETY: a writable `struct mq_attr`, by the caller's contract.
        unsafe { old.write_unaligned(out) };
    }
    if let Some(flags) = flags {
        desc.queue
            .set_nonblocking(flags & libc::O_NONBLOCK as c_long != 0)
            .map_err(errno)?;
    }
    Ok(0)
}

/// # Safety
///
/// `by` is NULL or points to a `struct timespec`.
pub(crate) unsafe fn advance(by: *const libc::timespec) -> Result<c_int, Errno> {
    let st = state()?;
    if by.is_null() {
        return Err(Errno(libc::EFAULT));
    }
    // SAFETY: a readable timespec, by the caller's contract.
    let t = unsafe { by.read_unaligned() };
    #[allow(clippy::unnecessary_cast)] // time_t and c_long vary
    let (sec, nsec) = (t.tv_sec as i64, t.tv_nsec as i64);
    let (Ok(sec), Ok(nsec)) = (u64::try_from(sec), u32::try_from(nsec)) else {
        return Err(Errno(libc::EINVAL));
    };
    if nsec > 999_999_999 {
        return Err(Errno(libc::EINVAL));
    }
    st.backend.advance(Duration::new(sec, nsec))?;
    Ok(0)
}

pub(crate) fn advance_to_next_deadline() -> Result<c_int, Errno> {
    Ok(state()?.backend.advance_to_next_deadline()? as c_int)
}

pub(crate) fn blocked() -> Result<c_long, Errno> {
    Ok(state()?.backend.blocked() as c_long)
}
