//! Who is calling: the simulated process and user a twin call acts as.

mod current;

/// The capabilities that change message-queue behaviour.
///
/// ```
/// let caps = mqtwin::twin::Capabilities { dac_override: true, ..Default::default() };
/// assert!(!caps.sys_resource);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities {
    /// `CAP_SYS_RESOURCE`: lifts `queues_max`, and raises the attribute
    /// ceilings from `msg_max`/`msgsize_max` to 65536 / 16 MiB.
    pub sys_resource: bool,
    /// `CAP_DAC_OVERRIDE`: opening ignores the queue's mode bits.
    pub dac_override: bool,
    /// `CAP_FOWNER`: may unlink any queue.
    pub fowner: bool,
}

impl Capabilities {
    /// All three capabilities, as a real root process usually has.
    pub const ALL: Capabilities = Capabilities {
        sys_resource: true,
        dac_override: true,
        fowner: true,
    };

    /// What root usually has in a container (Docker, Kubernetes, most CI
    /// runners): `CAP_DAC_OVERRIDE` and `CAP_FOWNER` (mode bits are
    /// bypassed) but not `CAP_SYS_RESOURCE` (the `fs.mqueue` limits and
    /// `RLIMIT_MSGQUEUE` apply).
    pub const CONTAINER_ROOT: Capabilities = Capabilities {
        sys_resource: false,
        dac_override: true,
        fowner: true,
    };
}

/// The identity of a simulated process: user, groups, umask, capabilities
/// and `RLIMIT_MSGQUEUE`.
///
/// The default is an ordinary user (uid and gid 1000, umask `0o022`, no
/// capabilities, the default 819200-byte `RLIMIT_MSGQUEUE`).
///
/// To make a twin behave like the kernel does for *this* process, use
/// [`Credentials::current`], not [`Credentials::root`]: root in a container
/// (Docker, Kubernetes, most CI runners) usually lacks `CAP_SYS_RESOURCE`, so
/// the kernel holds it to `queues_max`, `msg_max` and `msgsize_max` like any
/// user, while `Credentials::root()` has every capability and is not.
///
/// ```
/// use mqtwin::twin::Credentials;
/// let alice = Credentials::user(1001, 1001);
/// let root = Credentials::root();
/// assert!(root.capabilities.fowner && !alice.capabilities.fowner);
/// let strict = Credentials { umask: 0o077, ..alice };
/// assert_eq!(strict.uid, 1001);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    /// User id (real and filesystem uid; the twin does not separate them).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
    /// File-creation mask applied to the mode of created queues.
    pub umask: u32,
    /// Capabilities in effect.
    pub capabilities: Capabilities,
    /// Soft `RLIMIT_MSGQUEUE` in bytes, checked when this process creates a queue.
    pub rlimit_msgqueue: u64,
}

impl Default for Credentials {
    fn default() -> Self {
        Credentials::user(1000, 1000)
    }
}

impl Credentials {
    /// An ordinary user without capabilities.
    pub fn user(uid: u32, gid: u32) -> Self {
        Credentials {
            uid,
            gid,
            groups: Vec::new(),
            umask: 0o022,
            capabilities: Capabilities::default(),
            rlimit_msgqueue: crate::limits::DEFAULT_RLIMIT_MSGQUEUE,
        }
    }

    /// Root with every capability.
    pub fn root() -> Self {
        Credentials {
            capabilities: Capabilities::ALL,
            ..Credentials::user(0, 0)
        }
    }

    /// Whether this caller is in group `gid`.
    pub(crate) fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// The kernel's `inode_permission` for a queue owned by `uid:gid` with
    /// `mode`, asking for read and/or write access.
    pub(crate) fn may_open(&self, uid: u32, gid: u32, mode: u32, read: bool, write: bool) -> bool {
        if self.capabilities.dac_override {
            return true;
        }
        let class = if self.uid == uid {
            mode >> 6
        } else if self.in_group(gid) {
            mode >> 3
        } else {
            mode
        } & 0o7;
        (!read || class & 0o4 != 0) && (!write || class & 0o2 != 0)
    }

    /// The sticky-directory rule of `may_delete`: the queue's owner, the
    /// directory's owner (root) or `CAP_FOWNER`. Mode bits play no part.
    pub(crate) fn may_unlink(&self, owner: u32) -> bool {
        self.uid == owner || self.uid == 0 || self.capabilities.fowner
    }
}
