//! The kernel backend: real POSIX message queues of the calling process's
//! IPC namespace, through `nix` (open, unlink, attributes) and `libc`
//! (`mq_timedsend` / `mq_timedreceive`, which `nix` lacks or wraps partly).
//!
//! Only compiled on Linux. Every argument goes to the kernel unchanged except
//! the name, which the shared [`name`] rules check first (a
//! probe test pins those rules to the kernel's answers); the kernel's errno
//! is then named with the shared [`Error`].
//!
//! ```no_run
//! use mqtwin::{MessageQueue, Namespace, OpenOptions, posix::Kernel};
//! let q = Kernel.open("/mqtwin-doc", &OpenOptions::read_write().create().capacity(4).max_msg_len(64))?;
//! q.send(b"hello", 1)?;
//! let mut buf = [0; 64];
//! assert_eq!(q.receive(&mut buf)?.len, 5);
//! Kernel.unlink("/mqtwin-doc")?;
//! # Ok::<(), mqtwin::Error>(())
//! ```

#![allow(unsafe_code)]

#[cfg(feature = "tokio")]
mod asynch;
mod callbacks;
mod notify;
mod poll;
pub(crate) mod raise;

use std::ffi::CString;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::{SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use nix::mqueue::{self, MqAttr, MqdT};

use crate::error::Error;
use crate::limits::{AttributeLimit, Limits};
use crate::name;
use crate::notify::{Interest, Notify, Readiness};
use crate::options::{Access, Attributes, OpenOptions};
use crate::queue::{MessageQueue, Namespace, Received};

/// The kernel's message-queue namespace (the caller's IPC namespace).
///
/// A unit value: names are global to the IPC namespace, so tests against
/// the kernel must pick unique names and unlink them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kernel;

impl Kernel {
    /// The current namespace's limits, read from `/proc/sys/fs/mqueue`.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] when a file cannot be read or parsed (no `/proc`).
    pub fn limits() -> Result<Limits, Error> {
        fn read(file: &str) -> Result<i64, Error> {
            let path = format!("/proc/sys/fs/mqueue/{file}");
            let text = std::fs::read_to_string(path).map_err(|e| Error::Os {
                errno: e.raw_os_error().unwrap_or(libc::EIO),
            })?;
            text.trim().parse().map_err(|_| Error::Os {
                errno: libc::EINVAL,
            })
        }
        let size = |v: i64| usize::try_from(v).unwrap_or(0);
        Ok(Limits {
            queues_max: read("queues_max")?,
            msg_max: size(read("msg_max")?),
            msgsize_max: size(read("msgsize_max")?),
            msg_default: size(read("msg_default")?),
            msgsize_default: size(read("msgsize_default")?),
        })
    }
}

impl Namespace for Kernel {
    type Queue = Queue;

    fn open(&self, name_str: &str, options: &OpenOptions) -> Result<Queue, Error> {
        name::validate(name_str)?;
        let mut flags = match options.get_access() {
            Access::ReadOnly => libc::O_RDONLY,
            Access::WriteOnly => libc::O_WRONLY,
            Access::ReadWrite => libc::O_RDWR,
        };
        for (on, flag) in [
            (options.is_create(), libc::O_CREAT),
            (options.is_create_new(), libc::O_EXCL),
            (options.is_nonblocking(), libc::O_NONBLOCK),
        ] {
            if on {
                flags |= flag;
            }
        }
        // Partial attributes are completed from the namespace defaults, as
        // the twin does (see `OpenOptions::requested_attributes`).
        let requested = if options.capacity.is_some() != options.max_msg_len.is_some() {
            options.requested_attributes(Kernel::limits().unwrap_or_default().defaults())
        } else {
            options.requested_attributes((0, 0))
        };
        let attr = requested.map(|(c, m)| {
            // SAFETY: mq_attr is plain integers; all-zero is a valid value.
            let mut a: libc::mq_attr = unsafe { std::mem::zeroed() };
            a.mq_maxmsg = to_long(c);
            a.mq_msgsize = to_long(m);
            a
        });
        let attr_ptr = attr
            .as_ref()
            .map_or(std::ptr::null(), |a| a as *const libc::mq_attr);
        // The name was validated: no NUL inside.
        let cname = CString::new(name_str).map_err(|_| os(Errno::EINVAL))?;
        let mode = (options.get_mode() & 0o7777) as libc::mode_t;
        // nix's `mq_open` omits the mode and attr varargs when `attr` is
        // `None`, and glibc then reads garbage for them under O_CREAT; so the
        // call is made here with an explicit NULL attr.
        // SAFETY: `cname` is a valid C string; `attr_ptr` is null or points
        // at a live mq_attr; glibc reads mode and attr only under O_CREAT.
        let fd = unsafe { libc::mq_open(cname.as_ptr(), flags, mode, attr_ptr) };
        if fd < 0 {
            let name = name_str.to_owned();
            return Err(match Errno::last() {
                Errno::ENOENT => Error::NotFound { name },
                Errno::EEXIST => Error::AlreadyExists { name },
                Errno::EACCES => Error::PermissionDenied { name },
                Errno::ENOSPC => Error::TooManyQueues,
                Errno::EMFILE => emfile(options.is_create(), requested),
                Errno::ENOMEM => Error::OutOfMemory,
                Errno::EINVAL => {
                    let (capacity, max_msg_len) = requested.unwrap_or((0, 0));
                    Error::InvalidAttributes {
                        capacity,
                        max_msg_len,
                        limit: broken_attribute(capacity, max_msg_len),
                    }
                }
                e => os(e),
            });
        }
        // SAFETY: `fd` is a fresh message-queue descriptor we now own.
        let mqd = unsafe { MqdT::from_raw_fd(fd) };
        let mut queue = Queue {
            mqd,
            max_msg_len: 0,
        };
        queue.max_msg_len = queue.attributes()?.max_msg_len;
        Ok(queue)
    }

    fn unlink(&self, name_str: &str) -> Result<(), Error> {
        name::validate(name_str)?;
        mqueue::mq_unlink(name_str).map_err(|e| {
            let name = name_str.to_owned();
            match e {
                Errno::ENOENT => Error::NotFound { name },
                Errno::EACCES | Errno::EPERM => Error::PermissionDenied { name },
                e => os(e),
            }
        })
    }
}

/// A kernel message-queue descriptor (`mqd_t`), closed on drop.
///
/// `max_msg_len` is cached at open (it never changes) so that size errors can
/// say what the limit is without another system call.
///
/// A Linux `mqd_t` is a file descriptor, so a `Queue` converts to and from
/// one: [`IntoRawFd`] and `From<Queue> for OwnedFd` give the descriptor up
/// without closing it; [`TryFrom<OwnedFd>`](#impl-TryFrom%3COwnedFd%3E-for-Queue)
/// checks with `mq_getattr` that the descriptor is a message queue;
/// [`FromRawFd`] trusts the caller and reads the maximum message length
/// lazily (with `mq_getattr`, when a size error needs it).
///
/// ```no_run
/// use std::os::fd::OwnedFd;
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, posix::{Kernel, Queue}};
/// let q = Kernel.open("/mqtwin-fd", &OpenOptions::read_write().create())?;
/// let fd: OwnedFd = q.into(); // e.g. to pass to a child process
/// let q = Queue::try_from(fd)?;
/// q.send(b"back", 0)?;
/// Kernel.unlink("/mqtwin-fd")?;
/// # Ok::<(), mqtwin::Error>(())
/// ```
pub struct Queue {
    mqd: MqdT,
    /// 0 when unknown (a queue made by `from_raw_fd`): read when needed.
    max_msg_len: usize,
}

impl Queue {
    /// Another descriptor for the same open description (`dup`, with
    /// `FD_CLOEXEC` like every descriptor `mq_open` returns). The clone shares
    /// the non-blocking flag.
    ///
    /// # Errors
    ///
    /// [`Error::ResourceLimit`] when the process is out of descriptors.
    pub fn try_clone(&self) -> Result<Queue, Error> {
        let fd = fcntl(self.mqd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(0)).map_err(|e| match e {
            Errno::EMFILE => Error::ResourceLimit,
            e => os(e),
        })?;
        Ok(Queue {
            // SAFETY: `fd` was just returned by F_DUPFD_CLOEXEC, so it is an
            // open message-queue descriptor that nothing else owns.
            mqd: unsafe { MqdT::from_raw_fd(fd) },
            max_msg_len: self.max_msg_len,
        })
    }
}

impl Queue {
    /// The queue's maximum message length, for size errors: cached, or read
    /// now for a queue made by `from_raw_fd` (0 if even that fails).
    fn max_msg_len(&self) -> usize {
        match self.max_msg_len {
            0 => self.attributes().map_or(0, |a| a.max_msg_len),
            n => n,
        }
    }
}

impl IntoRawFd for Queue {
    /// Gives up the descriptor without closing it. A notification this
    /// process registered stays registered (nothing was closed).
    fn into_raw_fd(self) -> RawFd {
        let q = std::mem::ManuallyDrop::new(self);
        q.mqd.as_raw_fd()
    }
}

impl FromRawFd for Queue {
    /// Takes ownership of `fd`, which must be an open message-queue
    /// descriptor that nothing else owns or closes. The maximum message
    /// length is not read here (this cannot fail) but when a size error
    /// first needs it. Prefer [`Queue::try_from`] with an [`OwnedFd`], which
    /// checks that `fd` is a queue.
    unsafe fn from_raw_fd(fd: RawFd) -> Queue {
        Queue {
            // SAFETY: the caller guarantees `fd` is an open message-queue
            // descriptor that this `Queue` may own and close.
            mqd: unsafe { MqdT::from_raw_fd(fd) },
            max_msg_len: 0,
        }
    }
}

impl From<Queue> for OwnedFd {
    fn from(q: Queue) -> OwnedFd {
        // SAFETY: `into_raw_fd` gave up an open descriptor that nothing else
        // owns.
        unsafe { OwnedFd::from_raw_fd(q.into_raw_fd()) }
    }
}

impl TryFrom<OwnedFd> for Queue {
    type Error = Error;

    /// Adopts `fd` after checking with `mq_getattr` that it is a message
    /// queue descriptor (which also caches its maximum message length).
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with `EBADF` when `fd` is not a message queue (a file,
    /// a socket, …); `fd` is then closed.
    fn try_from(fd: OwnedFd) -> Result<Queue, Error> {
        let mut queue = Queue {
            // SAFETY: `fd` is an open descriptor we own; if it is not a
            // queue, mq_getattr below fails and the drop closes it, which
            // is the only thing done with it.
            mqd: unsafe { MqdT::from_raw_fd(fd.into_raw_fd()) },
            max_msg_len: 0,
        };
        queue.max_msg_len = queue.attributes()?.max_msg_len;
        Ok(queue)
    }
}

impl crate::dynamic::TryClone for Queue {
    fn try_clone(&self) -> Result<Queue, Error> {
        Queue::try_clone(self)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: this `Queue` owns the descriptor and nothing uses it after
        // drop. The result is ignored: close(2) releases the descriptor even
        // when it reports an error, and Drop cannot report one.
        // A thread callback registered on the queue by this process is
        // dropped (by a callback worker, see `callbacks`) when the kernel
        // reports the registration removed; one that already fired still
        // runs.
        unsafe {
            libc::mq_close(self.mqd.as_raw_fd());
        }
    }
}

impl AsFd for Queue {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd.as_fd()
    }
}

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        self.mqd.as_raw_fd()
    }
}

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("posix::Queue")
            .field("fd", &self.mqd.as_raw_fd())
            .finish()
    }
}

impl MessageQueue for Queue {
    fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: Option<SystemTime>,
    ) -> Result<(), Error> {
        let ts = deadline.map(timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `msg` is valid for `msg.len()` bytes; `ts_ptr` is null or
        // points at a timespec that outlives the call; the descriptor is open.
        let r = unsafe {
            libc::mq_timedsend(
                self.mqd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                priority,
                ts_ptr,
            )
        };
        if r == 0 {
            return Ok(());
        }
        Err(match Errno::last() {
            Errno::EINVAL if crate::deadline::validate(deadline).is_err() => Error::InvalidDeadline,
            Errno::EINVAL if priority >= crate::deadline::MQ_PRIO_MAX => {
                Error::InvalidPriority { priority }
            }
            Errno::EBADF => Error::NotWritable,
            Errno::EMSGSIZE => Error::MessageTooLong {
                len: msg.len(),
                limit: self.max_msg_len(),
            },
            e => common(e),
        })
    }

    fn receive_deadline(
        &self,
        buf: &mut [u8],
        deadline: Option<SystemTime>,
    ) -> Result<Received, Error> {
        let ts = deadline.map(timespec);
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        let mut priority = 0u32;
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes; `priority`
        // and `ts_ptr` (null or a live timespec) outlive the call.
        let r = unsafe {
            libc::mq_timedreceive(
                self.mqd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut priority,
                ts_ptr,
            )
        };
        if let Ok(len) = usize::try_from(r) {
            return Ok(Received { len, priority });
        }
        Err(match Errno::last() {
            Errno::EINVAL if crate::deadline::validate(deadline).is_err() => Error::InvalidDeadline,
            Errno::EBADF => Error::NotReadable,
            Errno::EMSGSIZE => Error::BufferTooSmall {
                len: buf.len(),
                msg_size: self.max_msg_len(),
            },
            e => common(e),
        })
    }

    fn attributes(&self) -> Result<Attributes, Error> {
        let a = mqueue::mq_getattr(&self.mqd).map_err(os)?;
        Ok(attributes(&a))
    }

    fn set_nonblocking(&self, nonblocking: bool) -> Result<bool, Error> {
        // One `mq_setattr`, whose old attributes give the previous flag
        // atomically (nix's `mq_set_nonblock` reads them separately first).
        let flags = if nonblocking {
            libc::c_long::from(libc::O_NONBLOCK)
        } else {
            0
        };
        let new = MqAttr::new(flags, 0, 0, 0);
        let old = mqueue::mq_setattr(&self.mqd, &new).map_err(os)?;
        Ok(attributes(&old).nonblocking)
    }

    fn try_clone_box(&self) -> Result<Box<dyn MessageQueue>, Error> {
        Ok(Box::new(self.try_clone()?))
    }

    fn notify(&self, how: Notify) -> Result<(), Error> {
        notify::register(self.mqd.as_raw_fd(), how)
    }

    fn cancel_notify(&self) -> Result<(), Error> {
        notify::cancel(self.mqd.as_raw_fd())
    }

    fn readiness(&self) -> Result<Readiness, Error> {
        poll::readiness(self.mqd.as_fd())
    }

    fn wait_ready(
        &self,
        interest: Interest,
        deadline: Option<SystemTime>,
    ) -> Result<Readiness, Error> {
        poll::wait_ready(self.mqd.as_fd(), interest, deadline)
    }
}

fn attributes(a: &MqAttr) -> Attributes {
    let size = |v: libc::c_long| usize::try_from(v).unwrap_or(0);
    Attributes {
        capacity: size(a.maxmsg()),
        max_msg_len: size(a.msgsize()),
        current_messages: size(a.curmsgs()),
        nonblocking: a.flags() & libc::c_long::from(libc::O_NONBLOCK) != 0,
    }
}

/// Why the kernel refused `(capacity, max_msg_len)` with `EINVAL`: the same
/// rule the twin names, derived from the namespace's limits and the
/// caller's `CAP_SYS_RESOURCE` as read now ([`AttributeLimit::Unexplained`]
/// when they cannot be read or allow the values).
fn broken_attribute(capacity: usize, max_msg_len: usize) -> AttributeLimit {
    let privileged = crate::twin::Credentials::current()
        .map(|c| c.capabilities.sys_resource)
        .ok();
    match (Kernel::limits(), privileged) {
        (Ok(limits), Some(privileged)) => limits
            .broken_attribute(capacity, max_msg_len, privileged)
            .unwrap_or(AttributeLimit::Unexplained),
        // Zero values are refused whatever the limits.
        _ => Limits::default()
            .broken_attribute(capacity, max_msg_len, true)
            .filter(|l| {
                matches!(
                    l,
                    AttributeLimit::ZeroCapacity | AttributeLimit::ZeroMaxMsgLen
                )
            })
            .unwrap_or(AttributeLimit::Unexplained),
    }
}

/// Names an `EMFILE` from `mq_open`: the kernel gives it both for a full
/// descriptor table and for `RLIMIT_MSGQUEUE` (`mqueue_get_inode`). If a
/// descriptor can be had now, a creating open failed on the byte budget, and
/// the error says what the queue costs (its attributes resolved against the
/// namespace, as the kernel does) and the soft limit.
fn emfile(creating: bool, requested: Option<(usize, usize)>) -> Error {
    // SAFETY: plain system call with a static NUL-terminated path.
    let probe = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if !creating || probe < 0 {
        return Error::ResourceLimit;
    }
    // SAFETY: `probe` is a descriptor we just opened and nothing else owns.
    unsafe { libc::close(probe) };
    let privileged = crate::twin::Credentials::current().is_ok_and(|c| c.capabilities.sys_resource);
    let attrs = Kernel::limits().and_then(|l| l.resolve(requested, privileged));
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a valid rlimit to write into.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut rl) };
    match attrs {
        Ok((capacity, max_msg_len)) if got == 0 => Error::QueueBytesLimit {
            cost: crate::limits::queue_cost(capacity, max_msg_len),
            limit: rl.rlim_cur,
        },
        _ => Error::ResourceLimit,
    }
}

/// Errnos that mean the same for send and receive.
fn common(e: Errno) -> Error {
    match e {
        Errno::ENOMEM => Error::OutOfMemory,
        Errno::EAGAIN => Error::WouldBlock,
        Errno::ETIMEDOUT => Error::TimedOut,
        Errno::EINTR => Error::Interrupted,
        e => os(e),
    }
}

fn os(e: Errno) -> Error {
    Error::Os { errno: e as i32 }
}

fn to_long(v: usize) -> libc::c_long {
    // Out-of-range sizes become c_long::MAX, which the kernel rejects with
    // EINVAL exactly as it would the real value.
    libc::c_long::try_from(v).unwrap_or(libc::c_long::MAX)
}

/// A `SystemTime` as a CLOCK_REALTIME timespec; times before the epoch give a
/// negative `tv_sec`, which the kernel rejects.
fn timespec(t: SystemTime) -> libc::timespec {
    let (sec, nsec) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                n => (-secs - 1, 1_000_000_000 - n),
            }
        }
    };
    libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as libc::c_long,
    }
}
