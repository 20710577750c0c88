//! [`Driver`]: applies [`Op`]s to one backend as one user, and reports each
//! result as an [`Outcome`] that can be compared across backends.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::limits::Limits;
use crate::notify::Readiness;
use crate::options::{Attributes, OpenOptions};
use crate::queue::{MessageQueue, Namespace};

use super::op::{BadName, Call, Create, Mode, NameSel, Op};

/// What the [`Driver`] needs from a handle beyond [`MessageQueue`]: the
/// inherent methods both backends have under the same name.
pub trait TestQueue: MessageQueue + Sized {
    /// `try_clone` (`dup`).
    ///
    /// # Errors
    ///
    /// As the backend's `try_clone`.
    fn duplicate(&self) -> Result<Self, Error>;

    /// What `read()` of the queue file shows, when this handle can read it
    /// (`None` without read access, as on the kernel): the payload bytes
    /// queued (`QSIZE`) and whether a notification is registered.
    fn inspect(&self) -> Option<QueueFile>;
}

/// The queue file's contents (`read()` on a Linux mqueue descriptor):
/// `QSIZE` and whether `NOTIFY_PID` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueFile {
    /// Payload bytes queued.
    pub queued_bytes: usize,
    /// A notification is registered (by anyone).
    pub notify_registered: bool,
}

impl TestQueue for crate::twin::Queue {
    fn duplicate(&self) -> Result<Self, Error> {
        self.try_clone()
    }

    fn inspect(&self) -> Option<QueueFile> {
        self.access().can_read().then(|| QueueFile {
            queued_bytes: self.queued_bytes(),
            notify_registered: self.notify_owner().is_some(),
        })
    }
}

#[cfg(all(unix, feature = "remote"))]
impl TestQueue for crate::remote::RemoteQueue {
    fn duplicate(&self) -> Result<Self, Error> {
        self.try_clone()
    }

    /// `None` also when the server cannot be asked (the driver never
    /// panics; a lost connection shows in every other outcome).
    fn inspect(&self) -> Option<QueueFile> {
        if !self.access().can_read() {
            return None;
        }
        let s = self.status().ok()?;
        Some(QueueFile {
            queued_bytes: usize::try_from(s.queued_bytes).unwrap_or(usize::MAX),
            notify_registered: s.notify_owner.is_some(),
        })
    }
}

/// The names a run uses: a few valid ones under a per-run prefix (kernel
/// names are global to the IPC namespace), the longest valid name, and
/// broken ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePool {
    short: Vec<String>,
    longest: String,
}

impl NamePool {
    /// `count` (at least 1) short names `<prefix><i>` and one of 255 bytes
    /// after the slash. `prefix` must start with `/` and be at most 200 bytes.
    pub fn new(prefix: &str, count: usize) -> Self {
        let short: Vec<String> = (0..count.max(1)).map(|i| format!("{prefix}{i}")).collect();
        let mut longest = format!("{prefix}L");
        while longest.len() < 256 {
            longest.push('x');
        }
        longest.truncate(256);
        NamePool { short, longest }
    }

    /// A pool whose prefix is unique to this process and call, for names
    /// in a shared (kernel) namespace: `/mqtwin-t<pid>-<n>-`.
    pub fn unique(count: usize) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        Self::new(&format!("/mqtwin-t{}-{n}-", std::process::id()), count)
    }

    /// Every valid name of the pool.
    pub fn valid(&self) -> impl Iterator<Item = &str> {
        self.short
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.longest.as_str()))
    }

    /// The name `sel` stands for.
    pub fn name(&self, sel: NameSel) -> String {
        match sel {
            NameSel::Pool(i) => self.short[usize::from(i) % self.short.len()].clone(),
            NameSel::Longest => self.longest.clone(),
            NameSel::Bad(b) => match b {
                BadName::Empty => String::new(),
                BadName::NoSlash => "mqtwin-no-slash".into(),
                BadName::JustSlash => "/".into(),
                BadName::InnerSlash => format!("{}/x", self.short[0]),
                BadName::Dot => "/.".into(),
                BadName::DotDot => "/..".into(),
                BadName::TooLong => format!("{}x", self.longest),
                BadName::WayTooLong => {
                    let mut s = format!("{}/", self.short[0]);
                    while s.len() < 4097 {
                        s.push('y');
                    }
                    s
                }
                BadName::Nul => format!("{}\0x", self.short[0]),
            },
        }
    }
}

/// A received message as the driver saw it.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The payload.
    pub bytes: Vec<u8>,
    /// Its priority.
    pub priority: u32,
    /// Whether the buffer bytes after the payload were left untouched.
    pub tail_untouched: bool,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Long payloads are summarised: length, a checksum and the head.
        let sum = self
            .bytes
            .iter()
            .fold(0u32, |h, &b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        let head = &self.bytes[..self.bytes.len().min(8)];
        write!(
            f,
            "Message {{ len: {}, sum: {sum:08x}, head: {head:02x?}, priority: {}, tail_untouched: {} }}",
            self.bytes.len(),
            self.priority,
            self.tail_untouched
        )
    }
}

/// The observable result of one [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The op names a handle but the user has none; nothing was called.
    NoHandle,
    /// `open`: the new handle's attributes, or the error.
    Opened(Result<Attributes, Error>),
    /// The handle was dropped.
    Closed,
    /// `try_clone`.
    Cloned(Result<(), Error>),
    /// `unlink`.
    Unlinked(Result<(), Error>),
    /// A send.
    Sent(Result<(), Error>),
    /// A receive.
    Received(Result<Message, Error>),
    /// A send or receive without a near deadline that would have waited
    /// (forever, or past the driver's horizon): it was made with a deadline
    /// at the horizon instead, and timed out there.
    WouldWait,
    /// `set_nonblocking`.
    NonblockingSet(Result<bool, Error>),
    /// `attributes`.
    Attributes(Result<Attributes, Error>),
    /// `notify`.
    Notified(Result<(), Error>),
    /// `cancel_notify`.
    NotifyCancelled(Result<(), Error>),
    /// `readiness`.
    Readiness(Result<Readiness, Error>),
    /// `wait_ready`.
    Ready(Result<Readiness, Error>),
    /// The sysctls were written.
    LimitsSet,
}

/// The state of one open handle, compared after every step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleState {
    /// `attributes()`.
    pub attributes: Result<Attributes, Error>,
    /// The queue file, when the handle may read it.
    pub file: Option<QueueFile>,
}

/// Fill byte of receive buffers, to see which bytes a receive wrote.
pub(crate) const SENTINEL: u8 = 0xa5;

/// The bytes of a `len`-byte message seeded by `fill`.
pub(crate) fn payload(len: usize, fill: u8) -> Vec<u8> {
    (0..len)
        .map(|j| fill.wrapping_add((j as u8).wrapping_mul(31)))
        .collect()
}

/// What a successful receive into `buffer` (filled with [`SENTINEL`]) got.
pub(crate) fn message(buffer: &[u8], r: crate::Received) -> Message {
    let len = r.len.min(buffer.len());
    Message {
        bytes: buffer[..len].to_vec(),
        priority: r.priority,
        tail_untouched: buffer[len..].iter().all(|&b| b == SENTINEL),
    }
}

/// Most handles one driver keeps; a handle opened beyond that is closed at
/// once (after its attributes are reported).
pub const MAX_HANDLES: usize = 8;

/// Applies [`Op`]s to one namespace as one user and owns the handles.
///
/// The driver never waits longer than its horizon: a call that could wait
/// longer (no deadline, or a later one) is first checked against the
/// handle's attributes; when it would have to wait, it is made with a
/// deadline at the horizon and reported as [`Outcome::WouldWait`]. In a
/// single-threaded run nothing else can change the queue meanwhile, so both
/// backends agree on it. It never panics on any op.
///
/// With [`cleanup`](Driver::cleanup), dropping the driver (also while
/// unwinding) closes its handles and unlinks every valid name of its pool.
pub struct Driver<N: Namespace>
where
    N::Queue: TestQueue,
{
    ns: N,
    names: NamePool,
    limits: Limits,
    horizon: Duration,
    handles: Vec<N::Queue>,
    cleanup: bool,
}

impl<N: Namespace> Driver<N>
where
    N::Queue: TestQueue,
{
    /// A driver acting in `ns`, whose limits are `limits` (used to resolve
    /// [`Size::Max`](super::Size::Max) and friends), with a 1 ms horizon.
    pub fn new(ns: N, names: NamePool, limits: Limits) -> Self {
        Driver {
            ns,
            names,
            limits,
            horizon: Duration::from_millis(1),
            handles: Vec::new(),
            cleanup: false,
        }
    }

    /// Sets how long a call that would block may wait ([`When::Soon`](super::When::Soon),
    /// [`Wait::Soon`](super::Wait::Soon), and the stand-in for longer waits).
    pub fn horizon(mut self, horizon: Duration) -> Self {
        self.horizon = horizon;
        self
    }

    /// Unlink every valid pool name when dropped (for kernel namespaces).
    pub fn cleanup(mut self) -> Self {
        self.cleanup = true;
        self
    }

    /// The namespace.
    pub fn namespace(&self) -> &N {
        &self.ns
    }

    /// The names of the run.
    pub fn names(&self) -> &NamePool {
        &self.names
    }

    /// The open handles, in the order the driver indexes them.
    pub fn handles(&self) -> &[N::Queue] {
        &self.handles
    }

    /// Closes every handle.
    pub fn close_all(&mut self) {
        self.handles.clear();
    }

    /// The state of every open handle, in order.
    pub fn snapshot(&self) -> Vec<HandleState> {
        self.handles
            .iter()
            .map(|q| HandleState {
                attributes: q.attributes(),
                file: q.inspect(),
            })
            .collect()
    }

    fn pick(&self, handle: u8) -> Option<usize> {
        (!self.handles.is_empty()).then(|| usize::from(handle) % self.handles.len())
    }

    fn keep(&mut self, q: N::Queue) {
        if self.handles.len() < MAX_HANDLES {
            self.handles.push(q);
        }
    }

    /// Applies `op` (whatever its `who`) and reports what happened.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        match *op {
            Op::Open {
                name,
                access,
                create,
                nonblocking,
                mode,
                capacity,
                max_msg_len,
                ..
            } => {
                let mut o = OpenOptions::read_only().access(access.access());
                o = match create {
                    Create::No => o,
                    Create::Create => o.create(),
                    Create::CreateNew => o.create_new(),
                };
                if nonblocking {
                    o = o.nonblocking();
                }
                if let Mode::Bits(bits) = mode {
                    o = o.mode(u32::from(bits));
                }
                if let Some(c) = capacity.capacity(&self.limits) {
                    o = o.capacity(c);
                }
                if let Some(m) = max_msg_len.max_msg_len(&self.limits) {
                    o = o.max_msg_len(m);
                }
                match self.ns.open(&self.names.name(name), &o) {
                    Ok(q) => {
                        let attributes = q.attributes();
                        self.keep(q);
                        Outcome::Opened(attributes)
                    }
                    Err(e) => Outcome::Opened(Err(e)),
                }
            }
            Op::Unlink { name, .. } => Outcome::Unlinked(self.ns.unlink(&self.names.name(name))),
            Op::SetSysctls { sysctls } => {
                // The namespace itself is changed by whoever runs the driver
                // (writing sysctls needs root); the driver resolves sizes
                // against the new limits from now on.
                self.limits = sysctls.limits();
                Outcome::LimitsSet
            }
            Op::Close { handle, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    drop(self.handles.remove(i));
                    Outcome::Closed
                }
            },
            Op::Clone { handle, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => match self.handles[i].duplicate() {
                    Ok(q) => {
                        self.keep(q);
                        Outcome::Cloned(Ok(()))
                    }
                    Err(e) => Outcome::Cloned(Err(e)),
                },
            },
            Op::SetNonblocking { handle, on, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => Outcome::NonblockingSet(self.handles[i].set_nonblocking(on)),
            },
            Op::Attributes { handle, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => Outcome::Attributes(self.handles[i].attributes()),
            },
            Op::Notify { handle, how, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => Outcome::Notified(self.handles[i].notify(how.notify())),
            },
            Op::CancelNotify { handle, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => Outcome::NotifyCancelled(self.handles[i].cancel_notify()),
            },
            Op::Readiness { handle, .. } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => Outcome::Readiness(self.handles[i].readiness()),
            },
            Op::WaitReady {
                handle,
                interest,
                deadline,
                ..
            } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    let q = &self.handles[i];
                    let interest = interest.interest();
                    let ready = q.attributes().ok().map(|a| Readiness {
                        readable: a.current_messages > 0,
                        writable: a.current_messages < a.capacity,
                    });
                    let waits = ready.is_some_and(|r| !interest.is_met(r));
                    let call = deadline.map_or(Call::Blocking, Call::Deadline);
                    self.timed(q.now(), call, waits, |form| match form {
                        Form::Deadline(d) => q.wait_ready(interest, d),
                        _ => q.wait_ready(interest, None),
                    })
                    .map_or(Outcome::WouldWait, Outcome::Ready)
                }
            },
            Op::Send {
                handle,
                len,
                fill,
                priority,
                call,
                ..
            } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    let q = &self.handles[i];
                    let attrs = q.attributes().ok();
                    let max = attrs.map_or(0, |a| a.max_msg_len);
                    let msg = payload(len.resolve(max), fill);
                    let full =
                        attrs.is_some_and(|a| !a.nonblocking && a.current_messages >= a.capacity);
                    let prio = priority.resolve();
                    self.timed(q.now(), call, full, |form| match form {
                        Form::Deadline(d) => q.send_deadline(&msg, prio, d),
                        Form::Try => q.try_send(&msg, prio),
                        Form::Blocking => q.send(&msg, prio),
                        Form::Timeout(t) => q.send_timeout(&msg, prio, t),
                    })
                    .map_or(Outcome::WouldWait, Outcome::Sent)
                }
            },
            Op::Receive {
                handle, buf, call, ..
            } => match self.pick(handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    let q = &self.handles[i];
                    let attrs = q.attributes().ok();
                    let max = attrs.map_or(0, |a| a.max_msg_len);
                    let mut buffer = vec![SENTINEL; buf.resolve(max)];
                    let empty = attrs.is_some_and(|a| !a.nonblocking && a.current_messages == 0);
                    let got = self.timed(q.now(), call, empty, |form| match form {
                        Form::Deadline(d) => q.receive_deadline(&mut buffer, d),
                        Form::Try => q.try_receive(&mut buffer),
                        Form::Blocking => q.receive(&mut buffer),
                        Form::Timeout(t) => q.receive_timeout(&mut buffer, t),
                    });
                    got.map_or(Outcome::WouldWait, |r| {
                        Outcome::Received(r.map(|r| message(&buffer, r)))
                    })
                }
            },
        }
    }

    /// Runs a send or receive `call` through `f`, with deadlines relative to
    /// `now` (the handle's clock: virtual time on a twin built with it).
    /// `blocks` says whether the call would have to wait (queue full /
    /// empty, handle blocking).
    /// Returns `None` when it would have waited past the horizon.
    fn timed<T>(
        &self,
        now: SystemTime,
        call: Call,
        blocks: bool,
        mut f: impl FnMut(Form) -> Result<T, Error>,
    ) -> Option<Result<T, Error>> {
        let horizon = now.checked_add(self.horizon).unwrap_or(now);
        // A wait past the horizon is replaced by one that ends there.
        let form = match call {
            Call::Try => Form::Try,
            Call::Blocking if blocks => return stand_in(f, horizon),
            Call::Blocking => Form::Blocking,
            Call::Deadline(when) => {
                let d = when.resolve(now, self.horizon);
                if blocks && d > horizon {
                    return stand_in(f, horizon);
                }
                Form::Deadline(Some(d))
            }
            Call::Timeout(wait) => {
                let t = wait.resolve(self.horizon);
                if blocks && t > self.horizon {
                    return stand_in(f, horizon);
                }
                Form::Timeout(t)
            }
        };
        Some(f(form))
    }
}

/// Makes a call that would wait too long with a deadline at `horizon`:
/// `None` if it timed out there.
fn stand_in<T>(
    mut f: impl FnMut(Form) -> Result<T, Error>,
    horizon: SystemTime,
) -> Option<Result<T, Error>> {
    match f(Form::Deadline(Some(horizon))) {
        Err(Error::TimedOut) => None,
        r => Some(r),
    }
}

/// The forms of a send or receive call.
enum Form {
    Deadline(Option<SystemTime>),
    Try,
    Blocking,
    Timeout(Duration),
}

impl<N: Namespace> Drop for Driver<N>
where
    N::Queue: TestQueue,
{
    fn drop(&mut self) {
        self.handles.clear();
        if self.cleanup {
            for name in self.names.valid() {
                let _ = self.ns.unlink(name);
            }
        }
    }
}

impl<N: Namespace> fmt::Debug for Driver<N>
where
    N::Queue: TestQueue,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("handles", &self.handles.len())
            .field("limits", &self.limits)
            .field("horizon", &self.horizon)
            .finish()
    }
}
