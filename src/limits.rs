//! Namespace limits (the `/proc/sys/fs/mqueue` sysctls), attribute
//! validation and `RLIMIT_MSGQUEUE` byte accounting: the creation rules both
//! backends share.

use crate::error::Error;

/// Highest `capacity` a caller with `CAP_SYS_RESOURCE` may ask for (`HARD_MSGMAX`).
pub const HARD_MSGMAX: usize = 65_536;
/// Highest `max_msg_len` a caller with `CAP_SYS_RESOURCE` may ask for (`HARD_MSGSIZEMAX`).
pub const HARD_MSGSIZEMAX: usize = 16 * 1024 * 1024;
/// Default `RLIMIT_MSGQUEUE` soft limit in bytes (`MQ_BYTES_MAX`).
pub const DEFAULT_RLIMIT_MSGQUEUE: u64 = 819_200;
/// Lowest value the kernel accepts for `msg_max` and `msg_default`.
pub const MIN_MSGMAX: usize = 1;
/// Lowest value the kernel accepts for `msgsize_max` and `msgsize_default`.
pub const MIN_MSGSIZEMAX: usize = 128;

/// Which rule a refused `(capacity, max_msg_len)` broke, as carried by
/// [`Error::InvalidAttributes`]. Both backends derive it with
/// [`Limits::broken_attribute`] from the same inputs (the namespace's limits
/// and whether the caller has `CAP_SYS_RESOURCE`), so the whole error
/// compares equal across backends.
///
/// The kernel's order decides which rule is named when several are broken:
/// a zero capacity, then a zero length, then the capacity ceiling, then the
/// length ceiling.
///
/// ```
/// use mqtwin::{AttributeLimit, Limits};
/// let l = Limits::default();
/// assert_eq!(l.broken_attribute(20, 64, false), Some(AttributeLimit::MsgMax(10)));
/// assert_eq!(AttributeLimit::MsgMax(10).describe(20, 64), "capacity 20 exceeds msg_max 10");
/// assert_eq!(l.broken_attribute(20, 64, true), None);
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttributeLimit {
    /// The capacity is 0; it must be at least 1.
    ZeroCapacity,
    /// The maximum message length is 0; it must be at least 1.
    ZeroMaxMsgLen,
    /// The capacity exceeds the namespace's `msg_max` (the value), the
    /// ceiling of a caller without `CAP_SYS_RESOURCE`.
    MsgMax(usize),
    /// The maximum message length exceeds the namespace's `msgsize_max`
    /// (the value), the ceiling of a caller without `CAP_SYS_RESOURCE`.
    MsgsizeMax(usize),
    /// The capacity exceeds [`HARD_MSGMAX`], the ceiling even with
    /// `CAP_SYS_RESOURCE`.
    HardMsgMax,
    /// The maximum message length exceeds [`HARD_MSGSIZEMAX`], the ceiling
    /// even with `CAP_SYS_RESOURCE`.
    HardMsgsizeMax,
    /// The kernel refused the values but no limit read afterwards explains
    /// why (the sysctls or the caller's capabilities changed meanwhile, or
    /// could not be read). Never produced by the twin.
    Unexplained,
}

impl AttributeLimit {
    /// The broken rule in words, with the requested values and the limit,
    /// e.g. `"capacity 20 exceeds msg_max 10"`.
    pub fn describe(&self, capacity: usize, max_msg_len: usize) -> String {
        match *self {
            AttributeLimit::ZeroCapacity => "capacity 0 must be at least 1".into(),
            AttributeLimit::ZeroMaxMsgLen => "max_msg_len 0 must be at least 1".into(),
            AttributeLimit::MsgMax(max) => format!("capacity {capacity} exceeds msg_max {max}"),
            AttributeLimit::MsgsizeMax(max) => {
                format!("max_msg_len {max_msg_len} exceeds msgsize_max {max}")
            }
            AttributeLimit::HardMsgMax => format!(
                "capacity {capacity} exceeds {HARD_MSGMAX}, the limit even with CAP_SYS_RESOURCE"
            ),
            AttributeLimit::HardMsgsizeMax => format!(
                "max_msg_len {max_msg_len} exceeds {HARD_MSGSIZEMAX}, the limit even with \
                 CAP_SYS_RESOURCE"
            ),
            AttributeLimit::Unexplained => format!(
                "capacity {capacity} and max_msg_len {max_msg_len} were refused, but the limits \
                 read afterwards allow them"
            ),
        }
    }
}

/// The per-IPC-namespace message-queue sysctls, with the values a new Linux
/// namespace starts with.
///
/// ```
/// let l = mqtwin::Limits::default();
/// assert_eq!((l.queues_max, l.msg_max, l.msgsize_max), (256, 10, 8192));
/// assert_eq!(l.defaults(), (10, 8192));
/// ```
#[cfg_attr(feature = "remote", derive(serde::Serialize, serde::Deserialize))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Queues the namespace may hold for unprivileged creators (`queues_max`).
    /// Any `i32` is accepted, as by the kernel. Zero forbids creation; a
    /// negative value is compared as an unsigned int, as the kernel does,
    /// so it lifts the limit in practice (see [`Limits::queues_exhausted`]).
    pub queues_max: i64,
    /// Highest capacity an unprivileged creator may ask for (`msg_max`).
    pub msg_max: usize,
    /// Highest message length an unprivileged creator may ask for (`msgsize_max`).
    pub msgsize_max: usize,
    /// Capacity of a queue created without attributes, capped at `msg_max` (`msg_default`).
    pub msg_default: usize,
    /// Message length of a queue created without attributes, capped at
    /// `msgsize_max` (`msgsize_default`).
    pub msgsize_default: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            queues_max: 256,
            msg_max: 10,
            msgsize_max: 8192,
            msg_default: 10,
            msgsize_default: 8192,
        }
    }
}

impl Limits {
    /// `(capacity, max_msg_len)` of a queue created without attributes:
    /// `min(msg_max, msg_default)` and `min(msgsize_max, msgsize_default)`,
    /// for privileged and unprivileged callers alike.
    pub fn defaults(&self) -> (usize, usize) {
        (
            self.msg_max.min(self.msg_default),
            self.msgsize_max.min(self.msgsize_default),
        )
    }

    /// Checks the values as the kernel checks sysctl writes.
    ///
    /// # Errors
    ///
    /// [`Error::Os`] with `EINVAL` when `msg_max` or `msg_default` is outside
    /// `1..=65536`, or `msgsize_max` or `msgsize_default` outside
    /// `128..=16777216`, or `queues_max` does not fit an `i32`.
    pub fn validate(&self) -> Result<(), Error> {
        let count_ok = |v: usize| (MIN_MSGMAX..=HARD_MSGMAX).contains(&v);
        let size_ok = |v: usize| (MIN_MSGSIZEMAX..=HARD_MSGSIZEMAX).contains(&v);
        let ok = count_ok(self.msg_max)
            && count_ok(self.msg_default)
            && size_ok(self.msgsize_max)
            && size_ok(self.msgsize_default)
            && i32::try_from(self.queues_max).is_ok();
        if ok {
            Ok(())
        } else {
            Err(Error::Os {
                errno: crate::error::errno::EINVAL,
            })
        }
    }

    /// Whether an unprivileged caller may not create a queue in a namespace
    /// already holding `count` queues (`ENOSPC`). The kernel compares
    /// `queues_count >= queues_max` with both as `unsigned int`, so a
    /// negative `queues_max` (e.g. -1, i.e. 4294967295) never stops anyone.
    ///
    /// ```
    /// use mqtwin::Limits;
    /// let l = |queues_max| Limits { queues_max, ..Limits::default() };
    /// assert!(l(0).queues_exhausted(0));
    /// assert!(l(2).queues_exhausted(2) && !l(2).queues_exhausted(1));
    /// assert!(!l(-1).queues_exhausted(100_000));
    /// ```
    pub fn queues_exhausted(&self, count: usize) -> bool {
        // `validate` keeps `queues_max` within `i32`; the kernel stores the
        // written int in an unsigned field.
        let max = u64::from(self.queues_max as i32 as u32);
        count as u64 >= max
    }

    /// The attributes a new queue gets: `requested` (or the defaults when
    /// `None`), checked against these limits (`K:mqueue_get_inode`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidAttributes`] when either value is zero, or exceeds
    /// `msg_max` / `msgsize_max` (unprivileged) or 65536 / 16 MiB
    /// (`privileged`, i.e. `CAP_SYS_RESOURCE`); its `limit` says which
    /// ([`broken_attribute`](Limits::broken_attribute)).
    pub fn resolve(
        &self,
        requested: Option<(usize, usize)>,
        privileged: bool,
    ) -> Result<(usize, usize), Error> {
        let Some((capacity, max_msg_len)) = requested else {
            return Ok(self.defaults());
        };
        match self.broken_attribute(capacity, max_msg_len, privileged) {
            Some(limit) => Err(Error::InvalidAttributes {
                capacity,
                max_msg_len,
                limit,
            }),
            None => Ok((capacity, max_msg_len)),
        }
    }

    /// The first rule (in the kernel's order, see [`AttributeLimit`]) that
    /// `(capacity, max_msg_len)` breaks for a caller with (`privileged`) or
    /// without `CAP_SYS_RESOURCE`; `None` when they are acceptable.
    pub fn broken_attribute(
        &self,
        capacity: usize,
        max_msg_len: usize,
        privileged: bool,
    ) -> Option<AttributeLimit> {
        if capacity == 0 {
            Some(AttributeLimit::ZeroCapacity)
        } else if max_msg_len == 0 {
            Some(AttributeLimit::ZeroMaxMsgLen)
        } else if privileged {
            if capacity > HARD_MSGMAX {
                Some(AttributeLimit::HardMsgMax)
            } else if max_msg_len > HARD_MSGSIZEMAX {
                Some(AttributeLimit::HardMsgsizeMax)
            } else {
                None
            }
        } else if capacity > self.msg_max {
            Some(AttributeLimit::MsgMax(self.msg_max))
        } else if max_msg_len > self.msgsize_max {
            Some(AttributeLimit::MsgsizeMax(self.msgsize_max))
        } else {
            None
        }
    }
}

/// Bytes a queue charges against its creator's `RLIMIT_MSGQUEUE`, exactly as
/// Linux on 64-bit computes it: payload space plus a 48-byte `msg_msg` header
/// per message plus a 48-byte priority-tree node per message (at most 32768).
///
/// ```
/// assert_eq!(mqtwin::limits::queue_cost(10, 8192), 82_880);
/// assert_eq!(mqtwin::limits::queue_cost(1, 1), 97);
/// ```
pub fn queue_cost(capacity: usize, max_msg_len: usize) -> u64 {
    let m = capacity as u64;
    let s = max_msg_len as u64;
    m.saturating_mul(s)
        .saturating_add(m.saturating_mul(48))
        .saturating_add(m.min(32_768) * 48)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_matches_probed_thresholds() {
        for (m, s, cost) in [
            (1, 1, 97),
            (1, 128, 224),
            (2, 10, 212),
            (3, 1000, 3288),
            (10, 1, 970),
            (10, 8192, 82880),
        ] {
            assert_eq!(queue_cost(m, s), cost, "{{{m},{s}}}");
        }
    }

    #[test]
    fn resolve_rules() {
        let l = Limits::default();
        assert_eq!(l.resolve(None, false), Ok((10, 8192)));
        assert_eq!(l.resolve(Some((10, 8192)), false), Ok((10, 8192)));
        let invalid = |capacity, max_msg_len, limit| {
            Err(Error::InvalidAttributes {
                capacity,
                max_msg_len,
                limit,
            })
        };
        use AttributeLimit::*;
        assert_eq!(
            l.resolve(Some((11, 8192)), false),
            invalid(11, 8192, MsgMax(10))
        );
        assert_eq!(l.resolve(Some((1, 0)), false), invalid(1, 0, ZeroMaxMsgLen));
        assert_eq!(l.resolve(Some((0, 0)), true), invalid(0, 0, ZeroCapacity));
        assert_eq!(
            l.resolve(Some((11, 0)), false),
            invalid(11, 0, ZeroMaxMsgLen)
        );
        assert_eq!(
            l.resolve(Some((11, 9000)), false),
            invalid(11, 9000, MsgMax(10))
        );
        assert_eq!(
            l.resolve(Some((1, 9000)), false),
            invalid(1, 9000, MsgsizeMax(8192))
        );
        assert_eq!(l.resolve(Some((65536, 1)), true), Ok((65536, 1)));
        assert_eq!(
            l.resolve(Some((65537, 1)), true),
            invalid(65537, 1, HardMsgMax)
        );
        assert_eq!(
            l.resolve(Some((1, HARD_MSGSIZEMAX + 1)), true),
            invalid(1, HARD_MSGSIZEMAX + 1, HardMsgsizeMax)
        );
        assert_eq!(
            invalid(20, 64, MsgMax(10))
                .map(drop)
                .unwrap_err()
                .to_string(),
            "invalid queue attributes: capacity 20 exceeds msg_max 10"
        );
        let odd = Limits {
            msg_max: 3,
            msg_default: 5,
            msgsize_max: 200,
            msgsize_default: 1000,
            ..l
        };
        assert_eq!(odd.defaults(), (3, 200));
    }
}
