//! The operations a differential test or a fuzzer applies: plain data, the
//! same on every backend, with every size, priority and deadline given
//! *symbolically* ("the queue's limit + 1", "a deadline before the epoch")
//! so one sequence means the same thing on the kernel and on the twin.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::limits::{Limits, HARD_MSGMAX, HARD_MSGSIZEMAX};

/// One call of the public API, by one simulated user (`who`, taken modulo
/// the number of users of the run) on one of its open handles (`handle`,
/// taken modulo the number of handles that user holds).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Op {
    /// `Namespace::open`; a handle it returns joins the user's handles.
    Open {
        /// Acting user.
        who: u8,
        /// Which name.
        name: NameSel,
        /// Access mode.
        access: AccessSel,
        /// `create` / `create_new`.
        create: Create,
        /// Open non-blocking.
        nonblocking: bool,
        /// Creation mode bits.
        mode: Mode,
        /// Requested capacity.
        capacity: Size,
        /// Requested maximum message length.
        max_msg_len: Size,
    },
    /// Drops (closes) one handle.
    Close {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
    },
    /// `try_clone` (`dup`): the clone joins the user's handles.
    Clone {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
    },
    /// `Namespace::unlink`.
    Unlink {
        /// Acting user.
        who: u8,
        /// Which name.
        name: NameSel,
    },
    /// A send of `len` bytes (contents derived from `fill`).
    Send {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
        /// Message length.
        len: Len,
        /// Seed of the message bytes.
        fill: u8,
        /// Priority.
        priority: Prio,
        /// Which send call, with which deadline.
        call: Call,
    },
    /// A receive into a buffer of the chosen size.
    Receive {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
        /// Buffer size.
        buf: Buf,
        /// Which receive call, with which deadline.
        call: Call,
    },
    /// `set_nonblocking`.
    SetNonblocking {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
        /// The new flag.
        on: bool,
    },
    /// `attributes`.
    Attributes {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
    },
    /// Writes the namespace's sysctls (as root would): later creations use
    /// the new limits, existing queues keep their attributes. Acts on the
    /// namespace, not as a user.
    SetSysctls {
        /// The new values.
        sysctls: Sysctls,
    },
    /// `notify` (only kinds that deliver nothing, so the kernel side needs
    /// no signal handling).
    Notify {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
        /// How.
        how: NotifySel,
    },
    /// `cancel_notify`.
    CancelNotify {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
    },
    /// `readiness`.
    Readiness {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
    },
    /// `wait_ready`.
    WaitReady {
        /// Acting user.
        who: u8,
        /// Which of its handles.
        handle: u8,
        /// What for.
        interest: InterestSel,
        /// Until when (`None`: no deadline).
        deadline: Option<When>,
    },
}

impl Op {
    /// The acting user, before the modulo.
    pub fn who(&self) -> u8 {
        match *self {
            Op::Open { who, .. }
            | Op::Close { who, .. }
            | Op::Clone { who, .. }
            | Op::Unlink { who, .. }
            | Op::Send { who, .. }
            | Op::Receive { who, .. }
            | Op::SetNonblocking { who, .. }
            | Op::Attributes { who, .. }
            | Op::Notify { who, .. }
            | Op::CancelNotify { who, .. }
            | Op::Readiness { who, .. }
            | Op::WaitReady { who, .. } => who,
            Op::SetSysctls { .. } => 0,
        }
    }

    /// The same operation acted by `who`.
    pub fn with_who(mut self, new: u8) -> Op {
        match &mut self {
            Op::Open { who, .. }
            | Op::Close { who, .. }
            | Op::Clone { who, .. }
            | Op::Unlink { who, .. }
            | Op::Send { who, .. }
            | Op::Receive { who, .. }
            | Op::SetNonblocking { who, .. }
            | Op::Attributes { who, .. }
            | Op::Notify { who, .. }
            | Op::CancelNotify { who, .. }
            | Op::Readiness { who, .. }
            | Op::WaitReady { who, .. } => *who = new,
            Op::SetSysctls { .. } => {}
        }
        self
    }
}

/// A notification registration that delivers nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum NotifySel {
    /// `Notify::None` (`SIGEV_NONE`).
    Silent,
    /// `Notify::Signal` with signal 0 (accepted, delivers nothing).
    SignalZero {
        /// The value.
        value: u8,
    },
    /// `Notify::Signal` with an invalid signal.
    BadSignal(BadSignal),
}

/// Signal numbers outside `0..=64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum BadSignal {
    /// 65.
    JustAbove,
    /// -1.
    Negative,
    /// `i32::MAX`.
    Max,
    /// `i32::MIN`.
    Min,
}

impl NotifySel {
    /// The [`crate::Notify`] it stands for.
    pub fn notify(self) -> crate::Notify {
        match self {
            NotifySel::Silent => crate::Notify::None,
            NotifySel::SignalZero { value } => crate::Notify::Signal {
                signal: 0,
                value: usize::from(value),
            },
            NotifySel::BadSignal(b) => crate::Notify::Signal {
                signal: match b {
                    BadSignal::JustAbove => 65,
                    BadSignal::Negative => -1,
                    BadSignal::Max => i32::MAX,
                    BadSignal::Min => i32::MIN,
                },
                value: 0,
            },
        }
    }
}

/// [`crate::Interest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum InterestSel {
    /// Readable.
    Readable,
    /// Writable.
    Writable,
    /// Either.
    Either,
}

impl InterestSel {
    /// The [`crate::Interest`] it stands for.
    pub fn interest(self) -> crate::Interest {
        match self {
            InterestSel::Readable => crate::Interest::Readable,
            InterestSel::Writable => crate::Interest::Writable,
            InterestSel::Either => crate::Interest::Either,
        }
    }
}

/// A queue name: one of a few valid names of the run, or a broken one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum NameSel {
    /// One of the run's short valid names (index modulo the pool size).
    Pool(u8),
    /// The run's valid name of exactly 255 bytes after the slash.
    Longest,
    /// An invalid name.
    Bad(BadName),
}

/// Names that break a rule (see [`crate::name`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum BadName {
    /// `""`.
    Empty,
    /// No leading slash.
    NoSlash,
    /// `"/"`.
    JustSlash,
    /// A slash inside.
    InnerSlash,
    /// `"/."`.
    Dot,
    /// `"/.."`.
    DotDot,
    /// 256 bytes after the slash.
    TooLong,
    /// 4096 bytes after the slash, with an inner slash (still `TooLong`).
    WayTooLong,
    /// A NUL byte inside.
    Nul,
}

/// `OpenOptions::read_only` / `write_only` / `read_write`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AccessSel {
    /// `O_RDONLY`.
    ReadOnly,
    /// `O_WRONLY`.
    WriteOnly,
    /// `O_RDWR`.
    ReadWrite,
}

impl AccessSel {
    /// The [`crate::Access`] it stands for.
    pub fn access(self) -> crate::Access {
        match self {
            AccessSel::ReadOnly => crate::Access::ReadOnly,
            AccessSel::WriteOnly => crate::Access::WriteOnly,
            AccessSel::ReadWrite => crate::Access::ReadWrite,
        }
    }
}

/// Creation flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Create {
    /// Open an existing queue only.
    No,
    /// `O_CREAT`.
    Create,
    /// `O_CREAT | O_EXCL`.
    CreateNew,
}

/// Creation mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Mode {
    /// Leave the default (`0o600`).
    Default,
    /// These bits, unmasked (bits above `0o7777` included).
    Bits(u16),
}

/// A requested capacity or maximum message length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Size {
    /// Not set.
    Unset,
    /// A literal value.
    Value(u16),
    /// The namespace's unprivileged ceiling (`msg_max` / `msgsize_max`).
    Max,
    /// One over it.
    MaxPlus1,
    /// The privileged ceiling (65536 / 16 MiB).
    HardMax,
    /// One over the privileged ceiling.
    HardMaxPlus1,
    /// `2^32 + 1`, which must not wrap to 1.
    Wrap,
    /// `usize::MAX`.
    Huge,
}

impl Size {
    /// The value, given the namespace's ceiling and the privileged one.
    pub fn resolve(self, max: usize, hard: usize) -> Option<usize> {
        Some(match self {
            Size::Unset => return None,
            Size::Value(v) => usize::from(v),
            Size::Max => max,
            Size::MaxPlus1 => max.saturating_add(1),
            Size::HardMax => hard,
            Size::HardMaxPlus1 => hard + 1,
            Size::Wrap => (1usize << 32) + 1,
            Size::Huge => usize::MAX,
        })
    }

    /// As a capacity, in a namespace with `limits`.
    pub fn capacity(self, limits: &Limits) -> Option<usize> {
        self.resolve(limits.msg_max, HARD_MSGMAX)
    }

    /// As a maximum message length, in a namespace with `limits`.
    pub fn max_msg_len(self, limits: &Limits) -> Option<usize> {
        self.resolve(limits.msgsize_max, HARD_MSGSIZEMAX)
    }
}

/// The length of a sent message, relative to the queue's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Len {
    /// Empty.
    Zero,
    /// A literal length.
    Value(u16),
    /// Exactly the queue's maximum.
    Max,
    /// One over it.
    MaxPlus1,
}

impl Len {
    /// The length, given the queue's maximum message length.
    pub fn resolve(self, max: usize) -> usize {
        match self {
            Len::Zero => 0,
            Len::Value(v) => usize::from(v),
            Len::Max => max,
            Len::MaxPlus1 => max + 1,
        }
    }
}

/// The size of a receive buffer, relative to the queue's maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Buf {
    /// Exactly the queue's maximum message length.
    Exact,
    /// This many bytes less (at least one less; zero at most).
    Smaller(u16),
    /// This many bytes more.
    Larger(u16),
    /// An empty buffer.
    Empty,
}

impl Buf {
    /// The size, given the queue's maximum message length.
    pub fn resolve(self, max: usize) -> usize {
        match self {
            Buf::Exact => max,
            Buf::Smaller(n) => max.saturating_sub(usize::from(n).max(1)),
            Buf::Larger(n) => max + usize::from(n),
            Buf::Empty => 0,
        }
    }
}

/// A message priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Prio {
    /// A literal priority (values ≥ 32768 are invalid).
    Value(u16),
    /// 32767, the highest valid one.
    Highest,
    /// 32768, the lowest invalid one.
    FirstInvalid,
    /// `u32::MAX`.
    Max,
    /// Any `u32`.
    Raw(u32),
}

impl Prio {
    /// The priority value.
    pub fn resolve(self) -> u32 {
        match self {
            Prio::Value(v) => u32::from(v),
            Prio::Highest => 32_767,
            Prio::FirstInvalid => 32_768,
            Prio::Max => u32::MAX,
            Prio::Raw(v) => v,
        }
    }
}

/// Which send / receive method is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Call {
    /// `try_send` / `try_receive`.
    Try,
    /// `send` / `receive` (no deadline).
    Blocking,
    /// `send_deadline` / `receive_deadline`.
    Deadline(When),
    /// `send_timeout` / `receive_timeout`.
    Timeout(Wait),
}

/// An absolute deadline, relative to the moment of the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum When {
    /// One nanosecond before the Unix epoch.
    JustBeforeEpoch,
    /// Long before the Unix epoch.
    LongBeforeEpoch,
    /// The Unix epoch itself (valid, long past).
    Epoch,
    /// A second ago.
    Past,
    /// Now.
    Now,
    /// The driver's short horizon from now (a call that would block waits it).
    Soon,
    /// An hour from now.
    Later,
    /// The latest time the kernel accepts (`tv_sec == i64::MAX`).
    Latest,
}

/// A relative timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Wait {
    /// Zero.
    Zero,
    /// One nanosecond.
    Nano,
    /// The driver's short horizon.
    Soon,
    /// An hour.
    Hour,
    /// `Duration::MAX` (no representable deadline: waits forever).
    Forever,
}

impl When {
    /// The deadline, given the time of the call and the driver's horizon.
    pub fn resolve(self, now: SystemTime, horizon: Duration) -> SystemTime {
        let before = |d: Duration| UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH);
        let after = |t: SystemTime, d: Duration| t.checked_add(d).unwrap_or(t);
        match self {
            When::JustBeforeEpoch => before(Duration::from_nanos(1)),
            When::LongBeforeEpoch => before(Duration::from_secs(1 << 40)),
            When::Epoch => UNIX_EPOCH,
            When::Past => now
                .checked_sub(Duration::from_secs(1))
                .unwrap_or(UNIX_EPOCH),
            When::Now => now,
            When::Soon => after(now, horizon),
            When::Later => after(now, Duration::from_secs(3600)),
            When::Latest => after(UNIX_EPOCH, Duration::from_secs(i64::MAX as u64)),
        }
    }
}

impl Wait {
    /// The timeout, given the driver's horizon.
    pub fn resolve(self, horizon: Duration) -> Duration {
        match self {
            Wait::Zero => Duration::ZERO,
            Wait::Nano => Duration::from_nanos(1),
            Wait::Soon => horizon,
            Wait::Hour => Duration::from_secs(3600),
            Wait::Forever => Duration::MAX,
        }
    }
}

/// The namespace limits of a run, chosen symbolically so that every choice
/// is a value the kernel's sysctls accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Sysctls {
    /// `queues_max`: 0..=4; -1 (forbids creation, as 0 does) for values
    /// below -1; the default 256 for -1 and values above 4.
    pub queues_max: i8,
    /// `msg_max`: 1..=12, or the default 10 for 0.
    pub msg_max: u8,
    /// `msgsize_max`: 128 + value (up to 65663), or the default for 0.
    pub msgsize_max: u16,
    /// `msg_default`: 1..=12, or the default 10 for 0.
    pub msg_default: u8,
    /// `msgsize_default`: 128 + value, or the default for 0.
    pub msgsize_default: u16,
}

impl Sysctls {
    /// The Linux defaults (256, 10, 8192, 10, 8192).
    pub const DEFAULT: Sysctls = Sysctls {
        queues_max: -1,
        msg_max: 0,
        msgsize_max: 0,
        msg_default: 0,
        msgsize_default: 0,
    };

    /// The limits these stand for; always valid sysctl values.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        let count = |v: u8, def: usize| {
            if v == 0 {
                def
            } else {
                1 + usize::from(v - 1) % 12
            }
        };
        let size = |v: u16, def: usize| if v == 0 { def } else { 128 + usize::from(v) };
        Limits {
            queues_max: match self.queues_max {
                q @ 0..=4 => i64::from(q),
                q if q < -1 => -1,
                _ => d.queues_max,
            },
            msg_max: count(self.msg_max, d.msg_max),
            msgsize_max: size(self.msgsize_max, d.msgsize_max),
            msg_default: count(self.msg_default, d.msg_default),
            msgsize_default: size(self.msgsize_default, d.msgsize_default),
        }
    }
}

impl Default for Sysctls {
    fn default() -> Self {
        Sysctls::DEFAULT
    }
}

/// A whole run: the namespace limits and the operations.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Scenario {
    /// Namespace limits for the run.
    pub sysctls: Sysctls,
    /// The operations, in order.
    pub ops: Vec<Op>,
}

/// A compact binary form of [`Op`] and [`Sysctls`], so a scenario can be
/// handed to a helper process (the kernel side of a lockstep run).
#[cfg(all(target_os = "linux", feature = "posix"))]
pub(crate) mod wire {
    use super::*;

    pub(crate) trait Wire: Sized {
        fn put(&self, out: &mut Vec<u8>);
        fn get(inp: &mut &[u8]) -> Option<Self>;
    }

    fn take<const N: usize>(inp: &mut &[u8]) -> Option<[u8; N]> {
        let (head, rest) = inp.split_first_chunk::<N>()?;
        *inp = rest;
        Some(*head)
    }

    impl Wire for u8 {
        fn put(&self, out: &mut Vec<u8>) {
            out.push(*self);
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            take::<1>(inp).map(|b| b[0])
        }
    }

    impl Wire for i8 {
        fn put(&self, out: &mut Vec<u8>) {
            out.extend(self.to_le_bytes());
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            take(inp).map(i8::from_le_bytes)
        }
    }

    impl Wire for bool {
        fn put(&self, out: &mut Vec<u8>) {
            out.push(u8::from(*self));
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            match u8::get(inp)? {
                0 => Some(false),
                1 => Some(true),
                _ => None,
            }
        }
    }

    impl Wire for u16 {
        fn put(&self, out: &mut Vec<u8>) {
            out.extend(self.to_le_bytes());
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            take(inp).map(u16::from_le_bytes)
        }
    }

    impl Wire for u32 {
        fn put(&self, out: &mut Vec<u8>) {
            out.extend(self.to_le_bytes());
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            take(inp).map(u32::from_le_bytes)
        }
    }

    /// Implements `Wire` for an enum: a tag byte, then the fields in order.
    macro_rules! wire_enum {
        ($ty:ident { $($tag:literal => $var:ident $( { $($f:ident),* } )? $( ( $($t:ident),* ) )? ),* $(,)? }) => {
            impl Wire for $ty {
                #[allow(non_snake_case)]
                fn put(&self, out: &mut Vec<u8>) {
                    match self {
                        $( $ty::$var $( { $($f),* } )? $( ( $($t),* ) )? => {
                            out.push($tag);
                            $( $( $f.put(out); )* )?
                            $( $( $t.put(out); )* )?
                        } )*
                    }
                }
                #[allow(non_snake_case)]
                fn get(inp: &mut &[u8]) -> Option<Self> {
                    Some(match u8::get(inp)? {
                        $( $tag => $ty::$var $( { $($f: Wire::get(inp)?),* } )? $( ( $(wire_enum!(@get inp $t)),* ) )?, )*
                        _ => return None,
                    })
                }
            }
        };
        (@get $inp:ident $t:ident) => { Wire::get($inp)? };
    }

    wire_enum!(NameSel { 0 => Pool(a), 1 => Longest, 2 => Bad(a) });
    wire_enum!(BadName {
        0 => Empty, 1 => NoSlash, 2 => JustSlash, 3 => InnerSlash, 4 => Dot,
        5 => DotDot, 6 => TooLong, 7 => WayTooLong, 8 => Nul,
    });
    wire_enum!(AccessSel { 0 => ReadOnly, 1 => WriteOnly, 2 => ReadWrite });
    wire_enum!(Create { 0 => No, 1 => Create, 2 => CreateNew });
    wire_enum!(Mode { 0 => Default, 1 => Bits(a) });
    wire_enum!(Size {
        0 => Unset, 1 => Value(a), 2 => Max, 3 => MaxPlus1, 4 => HardMax,
        5 => HardMaxPlus1, 6 => Wrap, 7 => Huge,
    });
    wire_enum!(Len { 0 => Zero, 1 => Value(a), 2 => Max, 3 => MaxPlus1 });
    wire_enum!(Buf { 0 => Exact, 1 => Smaller(a), 2 => Larger(a), 3 => Empty });
    wire_enum!(Prio { 0 => Value(a), 1 => Highest, 2 => FirstInvalid, 3 => Max, 4 => Raw(a) });
    wire_enum!(Call { 0 => Try, 1 => Blocking, 2 => Deadline(a), 3 => Timeout(a) });
    wire_enum!(When {
        0 => JustBeforeEpoch, 1 => LongBeforeEpoch, 2 => Epoch, 3 => Past,
        4 => Now, 5 => Soon, 6 => Later, 7 => Latest,
    });
    wire_enum!(Wait { 0 => Zero, 1 => Nano, 2 => Soon, 3 => Hour, 4 => Forever });
    wire_enum!(NotifySel { 0 => Silent, 1 => SignalZero { value }, 2 => BadSignal(a) });
    wire_enum!(BadSignal { 0 => JustAbove, 1 => Negative, 2 => Max, 3 => Min });
    wire_enum!(InterestSel { 0 => Readable, 1 => Writable, 2 => Either });

    impl<T: Wire> Wire for Option<T> {
        fn put(&self, out: &mut Vec<u8>) {
            match self {
                None => out.push(0),
                Some(v) => {
                    out.push(1);
                    v.put(out);
                }
            }
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            match u8::get(inp)? {
                0 => Some(None),
                1 => Some(Some(T::get(inp)?)),
                _ => None,
            }
        }
    }

    wire_enum!(Op {
        0 => Open { who, name, access, create, nonblocking, mode, capacity, max_msg_len },
        1 => Close { who, handle },
        2 => Clone { who, handle },
        3 => Unlink { who, name },
        4 => Send { who, handle, len, fill, priority, call },
        5 => Receive { who, handle, buf, call },
        6 => SetNonblocking { who, handle, on },
        7 => Attributes { who, handle },
        8 => Notify { who, handle, how },
        9 => CancelNotify { who, handle },
        10 => Readiness { who, handle },
        11 => WaitReady { who, handle, interest, deadline },
        12 => SetSysctls { sysctls },
    });

    impl Wire for Sysctls {
        fn put(&self, out: &mut Vec<u8>) {
            self.queues_max.put(out);
            self.msg_max.put(out);
            self.msgsize_max.put(out);
            self.msg_default.put(out);
            self.msgsize_default.put(out);
        }
        fn get(inp: &mut &[u8]) -> Option<Self> {
            Some(Sysctls {
                queues_max: Wire::get(inp)?,
                msg_max: Wire::get(inp)?,
                msgsize_max: Wire::get(inp)?,
                msg_default: Wire::get(inp)?,
                msgsize_default: Wire::get(inp)?,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", feature = "posix"))]
    #[test]
    fn wire_round_trip() {
        use super::wire::Wire;
        let ops = vec![
            Op::Open {
                who: 3,
                name: NameSel::Bad(BadName::WayTooLong),
                access: AccessSel::WriteOnly,
                create: Create::CreateNew,
                nonblocking: true,
                mode: Mode::Bits(0o17777),
                capacity: Size::Value(7),
                max_msg_len: Size::Huge,
            },
            Op::Send {
                who: 1,
                handle: 200,
                len: Len::Value(9000),
                fill: 7,
                priority: Prio::Raw(u32::MAX - 1),
                call: Call::Deadline(When::Latest),
            },
            Op::Receive {
                who: 0,
                handle: 1,
                buf: Buf::Smaller(3),
                call: Call::Timeout(Wait::Forever),
            },
            Op::SetNonblocking {
                who: 0,
                handle: 2,
                on: true,
            },
            Op::Unlink {
                who: 2,
                name: NameSel::Pool(9),
            },
            Op::Notify {
                who: 1,
                handle: 0,
                how: NotifySel::BadSignal(BadSignal::Min),
            },
            Op::Notify {
                who: 1,
                handle: 0,
                how: NotifySel::SignalZero { value: 3 },
            },
            Op::CancelNotify { who: 2, handle: 1 },
            Op::SetSysctls {
                sysctls: Sysctls {
                    queues_max: 2,
                    msg_max: 3,
                    msgsize_max: 4,
                    msg_default: 5,
                    msgsize_default: 6,
                },
            },
            Op::Readiness { who: 2, handle: 1 },
            Op::WaitReady {
                who: 0,
                handle: 4,
                interest: InterestSel::Either,
                deadline: None,
            },
            Op::WaitReady {
                who: 0,
                handle: 4,
                interest: InterestSel::Writable,
                deadline: Some(When::Soon),
            },
        ];
        let mut out = Vec::new();
        for op in &ops {
            op.put(&mut out);
        }
        let mut inp = &out[..];
        for op in &ops {
            assert_eq!(Op::get(&mut inp).as_ref(), Some(op));
        }
        assert!(inp.is_empty());
        assert_eq!(Op::get(&mut &[99u8][..]), None);
    }

    #[test]
    fn sysctls_are_always_valid() {
        for q in [-128i8, -1, 0, 4, 5, 127] {
            for m in [0u8, 1, 12, 13, 255] {
                for s in [0u16, 1, u16::MAX] {
                    let l = Sysctls {
                        queues_max: q,
                        msg_max: m,
                        msgsize_max: s,
                        msg_default: m,
                        msgsize_default: s,
                    }
                    .limits();
                    assert_eq!(l.validate(), Ok(()), "{l:?}");
                }
            }
        }
        assert_eq!(Sysctls::DEFAULT.limits(), Limits::default());
    }
}
