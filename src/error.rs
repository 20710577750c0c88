//! The one error type both backends return.
//!
//! Every variant corresponds to exactly one `errno` the Linux kernel (or glibc)
//! returns for a message-queue call, so code written against the twin handles
//! the same failures it will meet in production, and tests can compare whole
//! `Result`s between the backends with `assert_eq!`.
//!
//! | variant | errno | typical cause |
//! |---|---|---|
//! | [`InvalidName`](Error::InvalidName) | `EINVAL`, `ENOENT`, `EACCES`, `ENAMETOOLONG` (see [`NameProblem`]) | name breaks a rule |
//! | [`NotFound`](Error::NotFound) | `ENOENT` | open without `create`, unlink of a missing queue |
//! | [`AlreadyExists`](Error::AlreadyExists) | `EEXIST` | `create_new` on an existing queue |
//! | [`PermissionDenied`](Error::PermissionDenied) | `EACCES` | mode bits forbid the access, or unlink by a non-owner |
//! | [`InvalidAttributes`](Error::InvalidAttributes) | `EINVAL` | capacity / message size zero or over the limits |
//! | [`TooManyQueues`](Error::TooManyQueues) | `ENOSPC` | the namespace's `queues_max` is reached |
//! | [`QueueBytesLimit`](Error::QueueBytesLimit) | `EMFILE` | creating the queue would exceed the user's `RLIMIT_MSGQUEUE` bytes |
//! | [`ResourceLimit`](Error::ResourceLimit) | `EMFILE` | the process is out of file descriptors |
//! | [`InvalidPriority`](Error::InvalidPriority) | `EINVAL` | priority ≥ 32768 |
//! | [`InvalidDeadline`](Error::InvalidDeadline) | `EINVAL` | a deadline before the Unix epoch |
//! | [`NotReadable`](Error::NotReadable) / [`NotWritable`](Error::NotWritable) | `EBADF` | the handle's access mode forbids the call |
//! | [`MessageTooLong`](Error::MessageTooLong) | `EMSGSIZE` | send of more than the queue's message size |
//! | [`BufferTooSmall`](Error::BufferTooSmall) | `EMSGSIZE` | receive buffer smaller than the queue's message size |
//! | [`WouldBlock`](Error::WouldBlock) | `EAGAIN` | non-blocking call on a full / empty queue |
//! | [`TimedOut`](Error::TimedOut) | `ETIMEDOUT` | the deadline passed while the call would block |
//! | [`Interrupted`](Error::Interrupted) | `EINTR` | a signal handler interrupted a blocked call |
//! | [`Busy`](Error::Busy) | `EBUSY` | a notification is already registered |
//! | [`InvalidSignal`](Error::InvalidSignal) | `EINVAL` | notification signal outside `0..=64` |
//! | [`OutOfMemory`](Error::OutOfMemory) | `ENOMEM` | kernel allocation failure (or injected) |
//! | [`Remote`](Error::Remote) | `ENOENT`, `ECONNREFUSED`, `EPROTO`, `ECONNRESET`, `EAGAIN`, … | the remote backend's server is unreachable, of another protocol version, gone, or at a limit |
//! | [`Backend`](Error::Backend) | `EINVAL` | [`from_env`](crate::from_env): a backend that cannot be made here |
//! | [`Os`](Error::Os) | any other | an errno this crate has no better word for |

use std::fmt;
use std::io;

use crate::limits::AttributeLimit;

/// Why a queue name was rejected. Each problem maps to the errno Linux returns.
///
/// ```
/// use mqtwin::{Error, NameProblem};
/// let err = mqtwin::name::validate("no-slash").unwrap_err();
/// assert_eq!(err, Error::InvalidName { name: "no-slash".into(), problem: NameProblem::NoLeadingSlash });
/// assert_eq!(err.errno(), libc_einval());
/// # fn libc_einval() -> i32 { 22 }
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameProblem {
    /// The name does not start with `/` (glibc: `EINVAL`). Includes `""`.
    NoLeadingSlash,
    /// The name is just `/` (`ENOENT`).
    Empty,
    /// A `/` after the leading one (`EACCES`).
    InnerSlash,
    /// The part after the slash is `.` or `..` (`EACCES`).
    DotOrDotDot,
    /// More than 255 bytes after the leading slash (`ENAMETOOLONG`).
    TooLong,
    /// A NUL byte inside the name; C cannot express it (`EINVAL`).
    ContainsNul,
}

impl NameProblem {
    /// The errno Linux returns for this problem.
    pub fn errno(self) -> i32 {
        match self {
            NameProblem::NoLeadingSlash | NameProblem::ContainsNul => errno::EINVAL,
            NameProblem::Empty => errno::ENOENT,
            NameProblem::InnerSlash | NameProblem::DotOrDotDot => errno::EACCES,
            NameProblem::TooLong => errno::ENAMETOOLONG,
        }
    }
}

impl fmt::Display for NameProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameProblem::NoLeadingSlash => "it must start with '/'",
            NameProblem::Empty => "it has nothing after the leading '/'",
            NameProblem::InnerSlash => "it contains a '/' after the leading one",
            NameProblem::DotOrDotDot => "'.' and '..' are not queue names",
            NameProblem::TooLong => "it has more than 255 bytes after the leading '/'",
            NameProblem::ContainsNul => "it contains a NUL byte",
        })
    }
}

/// A name as error messages show it: quoted, and when longer than 40 bytes
/// cut to its first 40 (at a character boundary) followed by its length,
/// e.g. `"/aaaa…aaaa"…(300 bytes)` ([`crate::name::shortened`]). The
/// error's `name` field keeps it whole.
fn shown(name: &str) -> String {
    match crate::name::shortened(name) {
        (head, Some(len)) => format!("{head:?}…({len} bytes)"),
        (head, None) => format!("{head:?}"),
    }
}

/// The error of every fallible call in this crate, on both backends.
///
/// Compare errors with `==`; map them to [`std::io::Error`] with `From`; ask for
/// the C errno with [`Error::errno`].
///
/// ```
/// use mqtwin::Error;
/// let e = Error::MessageTooLong { len: 9000, limit: 8192 };
/// assert_eq!(e.to_string(), "message of 9000 bytes exceeds the queue's 8192-byte limit");
/// assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The queue name breaks a naming rule.
    #[error("invalid queue name {}: {problem}", shown(name))]
    InvalidName {
        /// The rejected name (lossy UTF-8 if it was not UTF-8).
        name: String,
        /// Which rule it breaks.
        problem: NameProblem,
    },
    /// No queue has this name (`ENOENT`).
    #[error("no message queue named {}", shown(name))]
    NotFound {
        /// The name looked up.
        name: String,
    },
    /// `create_new` was asked and the queue already exists (`EEXIST`).
    #[error("message queue {} already exists", shown(name))]
    AlreadyExists {
        /// The name of the existing queue.
        name: String,
    },
    /// The caller lacks permission: the queue's mode bits forbid the requested
    /// access, or an unlink by someone who does not own the queue (`EACCES`).
    #[error("permission denied on message queue {}", shown(name))]
    PermissionDenied {
        /// The queue's name.
        name: String,
    },
    /// The requested capacity or message size is zero or exceeds the
    /// namespace's limits (`msg_max`, `msgsize_max`; 65536 and 16 MiB for a
    /// caller with `CAP_SYS_RESOURCE`) (`EINVAL`). `limit` names the rule
    /// and its value; the message reads e.g. "invalid queue attributes:
    /// capacity 20 exceeds msg_max 10".
    #[error("invalid queue attributes: {}", limit.describe(*capacity, *max_msg_len))]
    InvalidAttributes {
        /// The requested capacity (`mq_maxmsg`).
        capacity: usize,
        /// The requested maximum message length (`mq_msgsize`).
        max_msg_len: usize,
        /// The rule broken, with the limit's value.
        limit: AttributeLimit,
    },
    /// The namespace already holds `queues_max` queues (`ENOSPC`).
    #[error("too many message queues in this IPC namespace (queues_max reached)")]
    TooManyQueues,
    /// A per-user or per-process resource limit is exhausted: the
    /// The process is out of file descriptors (`EMFILE`): no descriptor for
    /// the queue (or for a thread notification's socket).
    #[error("resource limit reached: no file descriptor left (RLIMIT_NOFILE)")]
    ResourceLimit,
    /// Creating the queue would take the user's `RLIMIT_MSGQUEUE` charge over
    /// its limit (`EMFILE`). `cost` is what this queue would be charged
    /// ([`queue_cost`](crate::limits::queue_cost) of its attributes); the
    /// queues the user already created count against `limit` too.
    ///
    /// ```
    /// use mqtwin::{Error, Namespace, OpenOptions, twin::{Credentials, Twin}};
    /// let ns = Twin::with_credentials(Credentials { rlimit_msgqueue: 100, ..Credentials::default() });
    /// let err = ns.open("/q", &OpenOptions::read_write().create().capacity(2).max_msg_len(16)).unwrap_err();
    /// assert_eq!(err, Error::QueueBytesLimit { cost: 224, limit: 100 });
    /// assert_eq!(err.errno(), 24); // EMFILE
    /// ```
    #[error(
        "RLIMIT_MSGQUEUE reached: this queue costs {cost} bytes, the limit is {limit} bytes \
         (the user's other queues count too)"
    )]
    QueueBytesLimit {
        /// Bytes this queue would be charged.
        cost: u64,
        /// The caller's `RLIMIT_MSGQUEUE` soft limit in bytes.
        limit: u64,
    },
    /// Priorities are `0..=32767`; this one is not (`EINVAL`).
    #[error("priority {priority} is out of range (valid priorities are 0..=32767)")]
    InvalidPriority {
        /// The rejected priority.
        priority: u32,
    },
    /// The deadline lies before the Unix epoch, which the kernel rejects even
    /// when the call would not have to wait (`EINVAL`).
    #[error("deadline lies before the Unix epoch, which the kernel rejects")]
    InvalidDeadline,
    /// The handle was opened without read access (`EBADF`).
    #[error("this queue handle was opened without read access")]
    NotReadable,
    /// The handle was opened without write access (`EBADF`).
    #[error("this queue handle was opened without write access")]
    NotWritable,
    /// The message is longer than the queue's maximum message length (`EMSGSIZE`).
    #[error("message of {len} bytes exceeds the queue's {limit}-byte limit")]
    MessageTooLong {
        /// Length of the rejected message.
        len: usize,
        /// The queue's maximum message length.
        limit: usize,
    },
    /// The receive buffer is smaller than the queue's maximum message length,
    /// whatever the size of the next message (`EMSGSIZE`).
    #[error(
        "receive buffer of {len} bytes is smaller than the queue's {msg_size}-byte message size"
    )]
    BufferTooSmall {
        /// Length of the caller's buffer.
        len: usize,
        /// The queue's maximum message length.
        msg_size: usize,
    },
    /// The queue is full (send) or empty (receive) and the handle is
    /// non-blocking (`EAGAIN`).
    #[error("the operation would block (queue full or empty, handle non-blocking)")]
    WouldBlock,
    /// The deadline passed before the call could complete (`ETIMEDOUT`).
    #[error("the deadline passed before the operation could complete")]
    TimedOut,
    /// A signal interrupted the blocked call (`EINTR`).
    #[error("the operation was interrupted by a signal")]
    Interrupted,
    /// A notification is already registered on this queue, by this or
    /// another process (`EBUSY`).
    #[error("a notification is already registered on this queue")]
    Busy,
    /// Notification signals are `0..=64`; this one is not (`EINVAL`).
    #[error("signal {signal} is out of range for a notification (valid signals are 0..=64)")]
    InvalidSignal {
        /// The rejected signal number.
        signal: i32,
    },
    /// The kernel could not allocate memory (`ENOMEM`).
    #[error("out of kernel memory")]
    OutOfMemory,
    /// The remote backend ([`mqtwin::remote`](crate#portability), feature
    /// `remote`) could not talk to its twin server: the socket is missing or
    /// refuses connections, the server speaks another protocol version, or
    /// the connection was lost (the server stopped, or a frame was refused).
    /// `errno` is the closest `errno` (`ENOENT`, `ECONNREFUSED`, `EPROTO`,
    /// `ECONNRESET`, …); `message` says what happened.
    #[error("mqtwin server: {message}")]
    Remote {
        /// The closest `errno`.
        errno: i32,
        /// What went wrong, for people.
        message: String,
    },
    /// [`from_env`](crate::from_env) or [`backend`](crate::backend) was
    /// given a backend it cannot make (`EINVAL`): an unknown name, the
    /// kernel where it does not exist, or `remote:` without the `remote`
    /// feature or without a path.
    #[error("cannot use the message-queue backend {spec:?}: {problem}")]
    Backend {
        /// What was asked for (the value of `MQTWIN`).
        spec: String,
        /// Why it cannot be had.
        problem: String,
    },
    /// Any other errno.
    #[error("message queue operation failed with errno {errno} ({})", io::Error::from_raw_os_error(*.errno))]
    Os {
        /// The raw errno.
        errno: i32,
    },
}

impl Error {
    /// The errno the C API reports for this error.
    ///
    /// ```
    /// assert_eq!(mqtwin::Error::TimedOut.errno(), 110); // ETIMEDOUT on Linux
    /// ```
    pub fn errno(&self) -> i32 {
        match self {
            Error::InvalidName { problem, .. } => problem.errno(),
            Error::NotFound { .. } => errno::ENOENT,
            Error::AlreadyExists { .. } => errno::EEXIST,
            Error::PermissionDenied { .. } => errno::EACCES,
            Error::InvalidAttributes { .. }
            | Error::InvalidPriority { .. }
            | Error::InvalidDeadline => errno::EINVAL,
            Error::TooManyQueues => errno::ENOSPC,
            Error::ResourceLimit | Error::QueueBytesLimit { .. } => errno::EMFILE,
            Error::NotReadable | Error::NotWritable => errno::EBADF,
            Error::MessageTooLong { .. } | Error::BufferTooSmall { .. } => errno::EMSGSIZE,
            Error::WouldBlock => errno::EAGAIN,
            Error::TimedOut => errno::ETIMEDOUT,
            Error::Interrupted => errno::EINTR,
            Error::Busy => errno::EBUSY,
            Error::InvalidSignal { .. } | Error::Backend { .. } => errno::EINVAL,
            Error::OutOfMemory => errno::ENOMEM,
            Error::Remote { errno, .. } | Error::Os { errno } => *errno,
        }
    }

    /// The [`io::ErrorKind`] this error maps to.
    pub fn kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::InvalidName { problem, .. } => match problem {
                NameProblem::Empty => K::NotFound,
                NameProblem::InnerSlash | NameProblem::DotOrDotDot => K::PermissionDenied,
                _ => K::InvalidInput,
            },
            Error::NotFound { .. } => K::NotFound,
            Error::AlreadyExists { .. } => K::AlreadyExists,
            Error::PermissionDenied { .. } => K::PermissionDenied,
            Error::InvalidAttributes { .. }
            | Error::InvalidPriority { .. }
            | Error::InvalidDeadline
            | Error::MessageTooLong { .. }
            | Error::BufferTooSmall { .. } => K::InvalidInput,
            Error::TooManyQueues | Error::ResourceLimit | Error::QueueBytesLimit { .. } => {
                K::OutOfMemory
            }
            Error::NotReadable | Error::NotWritable => K::PermissionDenied,
            Error::WouldBlock => K::WouldBlock,
            Error::TimedOut => K::TimedOut,
            Error::Interrupted => K::Interrupted,
            Error::Busy => K::ResourceBusy,
            Error::InvalidSignal { .. } | Error::Backend { .. } => K::InvalidInput,
            Error::OutOfMemory => K::OutOfMemory,
            Error::Remote { errno, .. } | Error::Os { errno } => {
                io::Error::from_raw_os_error(*errno).kind()
            }
        }
    }
}

impl From<Error> for io::Error {
    /// Keeps the [`Error`] as the source, with a fitting [`io::ErrorKind`].
    fn from(e: Error) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// Linux errno values, spelled out so the twin (and this type) mean the same
/// numbers on every OS. On Linux a test pins each one to `libc`.
pub mod errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// Interrupted system call.
    pub const EINTR: i32 = 4;
    /// Bad file descriptor.
    pub const EBADF: i32 = 9;
    /// Try again.
    pub const EAGAIN: i32 = 11;
    /// Out of memory.
    pub const ENOMEM: i32 = 12;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// File table overflow.
    pub const ENFILE: i32 = 23;
    /// Too many open files.
    pub const EMFILE: i32 = 24;
    /// No space left on device.
    pub const ENOSPC: i32 = 28;
    /// File name too long.
    pub const ENAMETOOLONG: i32 = 36;
    /// Message too long.
    pub const EMSGSIZE: i32 = 90;
    /// Connection timed out.
    pub const ETIMEDOUT: i32 = 110;
    /// Broken pipe.
    pub const EPIPE: i32 = 32;
    /// Resource deadlock avoided.
    pub const EDEADLK: i32 = 35;
    /// Protocol error.
    pub const EPROTO: i32 = 71;
    /// Connection reset by peer.
    pub const ECONNRESET: i32 = 104;
    /// Connection refused.
    pub const ECONNREFUSED: i32 = 111;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened_in_messages_only() {
        let long = format!("/{}", "a".repeat(299));
        let e = Error::NotFound { name: long.clone() };
        assert_eq!(
            e.to_string(),
            format!("no message queue named \"/{}\"…(300 bytes)", "a".repeat(39))
        );
        assert_eq!(e, Error::NotFound { name: long });
        // A multi-byte character across the cut is left out whole.
        let wide = format!("/{}é{}", "b".repeat(38), "c".repeat(10));
        assert_eq!(
            shown(&wide),
            format!("\"/{}\"…({} bytes)", "b".repeat(38), wide.len())
        );
        let exact = format!("/{}", "d".repeat(39));
        assert_eq!(shown(&exact), format!("{exact:?}"));
        let e = Error::InvalidName {
            name: format!("/{}", "e".repeat(300)),
            problem: NameProblem::TooLong,
        };
        assert_eq!(
            e.to_string(),
            format!(
                "invalid queue name \"/{}\"…(301 bytes): it has more than 255 bytes after the \
                 leading '/'",
                "e".repeat(39)
            )
        );
    }
}
