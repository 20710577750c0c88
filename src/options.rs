//! [`OpenOptions`]: how to open or create a queue, and [`Attributes`]: what a
//! queue reports about itself. Shared by both backends.

/// The access a handle has: what `O_RDONLY`, `O_WRONLY` and `O_RDWR` mean.
///
/// A handle without read access gets [`Error::NotReadable`](crate::Error::NotReadable)
/// on receive; one without write access gets
/// [`Error::NotWritable`](crate::Error::NotWritable) on send. Attributes,
/// readiness and `set_nonblocking` work with any access.
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Access {
    /// Receive only (`O_RDONLY`).
    ReadOnly,
    /// Send only (`O_WRONLY`).
    WriteOnly,
    /// Send and receive (`O_RDWR`).
    #[default]
    ReadWrite,
}

impl Access {
    /// Whether this access allows receiving.
    pub fn can_read(self) -> bool {
        matches!(self, Access::ReadOnly | Access::ReadWrite)
    }

    /// Whether this access allows sending.
    pub fn can_write(self) -> bool {
        matches!(self, Access::WriteOnly | Access::ReadWrite)
    }
}

/// How to open a queue: a builder in the style of [`std::fs::OpenOptions`].
///
/// Start from [`OpenOptions::read_only`], [`write_only`](OpenOptions::write_only)
/// or [`read_write`](OpenOptions::read_write), then add flags. The options are
/// plain data, so the same value opens a queue on either backend.
///
/// ```
/// use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
/// let ns = Twin::new();
/// let opts = OpenOptions::read_write().create_new().capacity(4).max_msg_len(128).mode(0o600);
/// let q = ns.open("/jobs", &opts)?;
/// assert_eq!(q.attributes()?.capacity, 4);
/// # Ok::<(), mqtwin::Error>(())
/// ```
///
/// `Debug` shows the mode in octal, as it is written:
///
/// ```
/// let opts = mqtwin::OpenOptions::read_only().mode(0o640);
/// assert!(format!("{opts:?}").contains("mode: 0o640"));
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OpenOptions {
    pub(crate) access: Access,
    pub(crate) create: bool,
    pub(crate) exclusive: bool,
    pub(crate) mode: u32,
    pub(crate) capacity: Option<usize>,
    pub(crate) max_msg_len: Option<usize>,
    pub(crate) nonblocking: bool,
}

impl std::fmt::Debug for OpenOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenOptions")
            .field("access", &self.access)
            .field("create", &self.create)
            .field("exclusive", &self.exclusive)
            .field("mode", &format_args!("{:#o}", self.mode))
            .field("capacity", &self.capacity)
            .field("max_msg_len", &self.max_msg_len)
            .field("nonblocking", &self.nonblocking)
            .finish()
    }
}

impl OpenOptions {
    fn with(access: Access) -> Self {
        OpenOptions {
            access,
            create: false,
            exclusive: false,
            mode: 0o600,
            capacity: None,
            max_msg_len: None,
            nonblocking: false,
        }
    }

    /// Open for receiving only (`O_RDONLY`).
    pub fn read_only() -> Self {
        Self::with(Access::ReadOnly)
    }

    /// Open for sending only (`O_WRONLY`).
    pub fn write_only() -> Self {
        Self::with(Access::WriteOnly)
    }

    /// Open for sending and receiving (`O_RDWR`).
    pub fn read_write() -> Self {
        Self::with(Access::ReadWrite)
    }

    /// Sets the access mode.
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Create the queue if it does not exist (`O_CREAT`). When it exists, the
    /// mode, capacity and message length given here are ignored, as in C.
    pub fn create(mut self) -> Self {
        self.create = true;
        self
    }

    /// Create the queue and fail with [`Error::AlreadyExists`](crate::Error::AlreadyExists)
    /// if it exists (`O_CREAT | O_EXCL`).
    pub fn create_new(mut self) -> Self {
        self.create = true;
        self.exclusive = true;
        self
    }

    /// Permission bits of a created queue, before the umask (default `0o600`).
    /// Bits above `0o7777` are dropped.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Capacity of a created queue in messages (`mq_maxmsg`). When neither
    /// this nor [`max_msg_len`](OpenOptions::max_msg_len) is set the namespace
    /// defaults apply (`min(msg_max, msg_default)`, usually 10).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// Maximum message length of a created queue in bytes (`mq_msgsize`).
    /// When neither this nor [`capacity`](OpenOptions::capacity) is set the
    /// namespace defaults apply (usually 8192).
    pub fn max_msg_len(mut self, max_msg_len: usize) -> Self {
        self.max_msg_len = Some(max_msg_len);
        self
    }

    /// Open the handle in non-blocking mode (`O_NONBLOCK`): calls that would
    /// wait fail with [`Error::WouldBlock`](crate::Error::WouldBlock) instead.
    pub fn nonblocking(mut self) -> Self {
        self.nonblocking = true;
        self
    }

    /// The access mode.
    pub fn get_access(&self) -> Access {
        self.access
    }

    /// Whether the queue is created when missing.
    pub fn is_create(&self) -> bool {
        self.create
    }

    /// Whether opening fails when the queue exists.
    pub fn is_create_new(&self) -> bool {
        self.exclusive
    }

    /// Whether the handle starts non-blocking.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// The creation mode bits.
    pub fn get_mode(&self) -> u32 {
        self.mode
    }

    /// The explicit `(capacity, max_msg_len)` to create with, or `None` to
    /// use the namespace defaults.
    ///
    /// As in C, an `mq_attr` is passed only when at least one of the two is
    /// set; the other then takes the value a queue created without attributes
    /// would get (`defaults`: `min(msg_max, msg_default)` and
    /// `min(msgsize_max, msgsize_default)`), so setting only the capacity
    /// never changes the message size a user would otherwise have had.
    pub fn requested_attributes(&self, defaults: (usize, usize)) -> Option<(usize, usize)> {
        match (self.capacity, self.max_msg_len) {
            (None, None) => None,
            (c, m) => Some((c.unwrap_or(defaults.0), m.unwrap_or(defaults.1))),
        }
    }
}

impl Default for OpenOptions {
    /// Read-write, open existing only, blocking.
    fn default() -> Self {
        Self::read_write()
    }
}

/// What a queue reports about itself (`struct mq_attr`).
///
/// ```
/// use mqtwin::{Attributes, MessageQueue, Namespace, OpenOptions, twin::Twin};
/// let q = Twin::new().open("/a", &OpenOptions::read_write().create())?;
/// q.send(b"x", 0)?;
/// assert_eq!(
///     q.attributes()?,
///     Attributes { capacity: 10, max_msg_len: 8192, current_messages: 1, nonblocking: false }
/// );
/// # Ok::<(), mqtwin::Error>(())
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attributes {
    /// Maximum number of queued messages (`mq_maxmsg`).
    pub capacity: usize,
    /// Maximum message length in bytes (`mq_msgsize`).
    pub max_msg_len: usize,
    /// Messages currently queued (`mq_curmsgs`). Messages handed directly to
    /// a waiting receiver are never counted.
    pub current_messages: usize,
    /// Whether *this handle* is non-blocking (`mq_flags & O_NONBLOCK`).
    pub nonblocking: bool,
}
