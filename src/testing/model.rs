//! An independent reference model of the single-threaded semantics: what
//! every [`Op`] must return, written from `docs/semantics.md` without the
//! twin's code, for checking the twin where no kernel is available (the
//! `twin_ops` fuzzer, macOS).
//!
//! It predicts, for users acting one after another in one namespace, the
//! exact [`Outcome`] of each op as a [`Driver`](super::Driver) reports it,
//! the state of every handle, the number of queues and the bytes charged to
//! each user. Nothing ever waits in a single-threaded run, so there are no
//! waiters to model; a call that would wait past the driver's horizon is
//! [`Outcome::WouldWait`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::deadline::MQ_PRIO_MAX;
use crate::error::Error;
use crate::limits::{queue_cost, AttributeLimit, Limits};
use crate::name;
use crate::notify::{Interest, Readiness};
use crate::options::Attributes;
use crate::twin::Credentials;

use super::driver::{payload, HandleState, Message, NamePool, Outcome, QueueFile, MAX_HANDLES};
use super::op::{Buf, Call, Create, InterestSel, Len, Mode, NotifySel, Op, Prio, When};

/// A queue in the model.
#[derive(Debug, Clone)]
struct MQueue {
    uid: u32,
    gid: u32,
    mode: u32,
    capacity: usize,
    msgsize: usize,
    /// Priority → messages, oldest first.
    msgs: BTreeMap<u32, VecDeque<Vec<u8>>>,
    count: usize,
    bytes: usize,
    linked: bool,
    /// Open descriptions.
    open: usize,
    charged_uid: u32,
    cost: u64,
    /// Blocked receivers / senders (waiter ids), in service order.
    recv_waiters: VecDeque<u64>,
    send_waiters: VecDeque<u64>,
    /// The user (process) whose notification is registered.
    notify_owner: Option<usize>,
}

/// What a blocked background caller waits for.
#[derive(Debug, Clone)]
enum Waiting {
    /// Room for this message.
    Send(Vec<u8>, u32),
    /// A message.
    Receive,
    /// Readiness.
    Ready(Interest),
}

/// A caller blocked in a background call.
#[derive(Debug, Clone)]
struct Waiter {
    queue: u64,
    desc: u64,
    /// Its user (process).
    user: usize,
    deadline: SystemTime,
    waiting: Waiting,
}

impl Waiting {
    /// The outcome of this call failing with `e`.
    fn failed(&self, e: Error) -> Outcome {
        match self {
            Waiting::Send(..) => Outcome::Sent(Err(e)),
            Waiting::Receive => Outcome::Received(Err(e)),
            Waiting::Ready(_) => Outcome::Ready(Err(e)),
        }
    }
}

/// `readiness` of a queue holding `count` of `capacity` messages.
fn readiness(count: usize, capacity: usize) -> Readiness {
    Readiness {
        readable: count > 0,
        writable: count < capacity,
    }
}

/// `wait_ready`'s result: the readiness restricted to the interest.
fn masked(r: Readiness, interest: Interest) -> Readiness {
    Readiness {
        readable: r.readable && interest != Interest::Writable,
        writable: r.writable && interest != Interest::Readable,
    }
}

/// A background send or receive (one that may block), for
/// [`Model::start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Background {
    /// `send_deadline`.
    Send {
        /// Message length.
        len: Len,
        /// Seed of the message bytes.
        fill: u8,
        /// Priority.
        priority: Prio,
    },
    /// `receive_deadline`.
    Receive {
        /// Buffer size.
        buf: Buf,
    },
    /// `wait_ready`.
    WaitReady {
        /// What for.
        interest: InterestSel,
    },
}

/// What [`Model::start`] predicts for a background call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// The user has no handle: nothing is called.
    NoHandle,
    /// The call returns at once with this outcome.
    Done(Outcome),
    /// The call blocks as waiter `id`.
    Blocked(u64),
}

/// Whether a send or receive passed its checks.
enum Gate {
    /// It failed a check (or found the queue full / empty when non-blocking).
    Fail(Error),
    /// It must wait.
    Wait,
    /// It completed.
    Done(Outcome),
}

/// An open description.
#[derive(Debug, Clone)]
struct Desc {
    queue: u64,
    read: bool,
    write: bool,
    nonblocking: bool,
    /// Handles sharing it.
    refs: usize,
}

/// The reference model. See the module docs.
#[derive(Debug, Clone)]
pub struct Model {
    limits: Limits,
    users: Vec<Credentials>,
    names: NamePool,
    horizon: Duration,
    table: HashMap<String, u64>,
    queues: HashMap<u64, MQueue>,
    descs: HashMap<u64, Desc>,
    /// Per user: description ids, as the driver orders its handles.
    handles: Vec<Vec<u64>>,
    charged: HashMap<u32, u64>,
    next: u64,
    /// Blocked background callers by id (ids grow with block time).
    waiters: BTreeMap<u64, Waiter>,
    /// Background callers served or timed out, not yet taken.
    completed: Vec<(u64, Outcome)>,
    /// The namespace's clock (virtual time), for waiter deadlines.
    now: SystemTime,
}

/// How a send or receive on a blocking handle that finds the queue full /
/// empty ends: `None` when the driver reports [`Outcome::WouldWait`] (the
/// call would wait past its `horizon`).
fn blocked_result(call: Call, horizon: Duration) -> Option<Error> {
    let past_horizon = match call {
        Call::Try => return Some(Error::WouldBlock),
        Call::Blocking => true,
        Call::Deadline(w) => match w {
            When::Later => Duration::from_secs(3600) > horizon,
            When::Latest => true,
            _ => false,
        },
        Call::Timeout(w) => w.resolve(horizon) > horizon,
    };
    (!past_horizon).then_some(Error::TimedOut)
}

/// The deadline check every send and receive makes first.
fn deadline_ok(call: Call) -> bool {
    !matches!(
        call,
        Call::Deadline(When::JustBeforeEpoch | When::LongBeforeEpoch)
    )
}

impl Model {
    /// A fresh namespace with `limits`, acted in by `users` (at least one;
    /// op `who` is taken modulo their number), with the names of `names`,
    /// predicting drivers with this `horizon`.
    pub fn new(users: &[Credentials], limits: Limits, names: NamePool, horizon: Duration) -> Self {
        let users = if users.is_empty() {
            vec![Credentials::default()]
        } else {
            users.to_vec()
        };
        Model {
            limits,
            handles: vec![Vec::new(); users.len()],
            users,
            names,
            horizon,
            table: HashMap::new(),
            queues: HashMap::new(),
            descs: HashMap::new(),
            charged: HashMap::new(),
            next: 0,
            waiters: BTreeMap::new(),
            completed: Vec::new(),
            now: UNIX_EPOCH,
        }
    }

    /// Sets the time background deadlines are compared with (the virtual
    /// clock's start).
    pub fn set_now(&mut self, now: SystemTime) {
        self.now = now;
    }

    /// Callers blocked now.
    pub fn blocked(&self) -> usize {
        self.waiters.len()
    }

    /// For every user's handles: `(blocked receivers, blocked senders)` of
    /// the handle's queue (what `twin::Queue::waiters` reports).
    pub fn waiter_counts(&self) -> Vec<Vec<(usize, usize)>> {
        self.handles
            .iter()
            .map(|hs| {
                hs.iter()
                    .map(|d| {
                        let q = &self.queues[&self.descs[d].queue];
                        (q.recv_waiters.len(), q.send_waiters.len())
                    })
                    .collect()
            })
            .collect()
    }

    /// Background callers that returned since the last call, with what
    /// they returned, in the order they were released.
    pub fn take_completed(&mut self) -> Vec<(u64, Outcome)> {
        std::mem::take(&mut self.completed)
    }

    /// Starts a background call by user `who` on its handle `handle`, with
    /// an absolute `deadline` (on the model's clock).
    pub fn start(
        &mut self,
        who: u8,
        handle: u8,
        what: &Background,
        deadline: SystemTime,
    ) -> Started {
        let u = usize::from(who) % self.users.len();
        let Some(i) = self.pick(u, handle) else {
            return Started::NoHandle;
        };
        let desc = self.handles[u][i];
        let deadline_ok = deadline >= UNIX_EPOCH;
        let queue = self.descs[&desc].queue;
        let (gate, waiting) = match *what {
            Background::Send {
                len,
                fill,
                priority,
            } => {
                let msgsize = self.queues[&queue].msgsize;
                let msg = payload(len.resolve(msgsize), fill);
                let prio = priority.resolve();
                (
                    self.send(desc, msg.clone(), prio, deadline_ok),
                    Waiting::Send(msg, prio),
                )
            }
            Background::Receive { buf } => (self.receive(desc, buf, deadline_ok), Waiting::Receive),
            Background::WaitReady { interest } => {
                let interest = interest.interest();
                (
                    self.ready(queue, interest, deadline_ok),
                    Waiting::Ready(interest),
                )
            }
        };
        let started = match gate {
            Gate::Fail(e) => Started::Done(waiting.failed(e)),
            Gate::Done(o) => Started::Done(o),
            Gate::Wait if deadline <= self.now => Started::Done(waiting.failed(Error::TimedOut)),
            Gate::Wait => {
                let id = self.new_id();
                self.descs.get_mut(&desc).expect("description").refs += 1;
                let q = self.queues.get_mut(&queue).expect("queue");
                match waiting {
                    Waiting::Send(..) => q.send_waiters.push_back(id),
                    Waiting::Receive => q.recv_waiters.push_back(id),
                    Waiting::Ready(_) => {}
                }
                self.waiters.insert(
                    id,
                    Waiter {
                        queue,
                        desc,
                        user: u,
                        deadline,
                        waiting,
                    },
                );
                Started::Blocked(id)
            }
        };
        self.settle_pollers();
        // The background thread's handle is closed when its call returns.
        if matches!(started, Started::Done(_)) {
            self.closed_by(u, queue);
        }
        started
    }

    /// Pollers whose interest is met return.
    fn settle_pollers(&mut self) {
        let done: Vec<(u64, Readiness)> = self
            .waiters
            .iter()
            .filter_map(|(&id, w)| {
                let Waiting::Ready(interest) = w.waiting else {
                    return None;
                };
                let q = &self.queues[&w.queue];
                let r = readiness(q.count, q.capacity);
                interest.is_met(r).then(|| (id, masked(r, interest)))
            })
            .collect();
        for (id, r) in done {
            self.finish(id, Outcome::Ready(Ok(r)));
        }
    }

    /// Waiter `id` returns `outcome`; its handle is closed.
    fn finish(&mut self, id: u64, outcome: Outcome) {
        let w = self.waiters.remove(&id).expect("waiter");
        if let Some(q) = self.queues.get_mut(&w.queue) {
            q.recv_waiters.retain(|&x| x != id);
            q.send_waiters.retain(|&x| x != id);
        }
        self.completed.push((id, outcome));
        self.closed_by(w.user, w.queue);
        self.release(w.desc);
    }

    /// User `u` closed a handle of queue `qid`: its notification
    /// registration there, if any, goes (`mqueue_flush_file`).
    fn closed_by(&mut self, u: usize, qid: u64) {
        if let Some(q) = self.queues.get_mut(&qid) {
            if q.notify_owner == Some(u) {
                q.notify_owner = None;
            }
        }
    }

    /// `wait_ready`'s checks and immediate answer.
    fn ready(&self, qid: u64, interest: Interest, deadline_ok: bool) -> Gate {
        if !deadline_ok {
            return Gate::Fail(Error::InvalidDeadline);
        }
        let q = &self.queues[&qid];
        let r = readiness(q.count, q.capacity);
        if interest.is_met(r) {
            Gate::Done(Outcome::Ready(Ok(masked(r, interest))))
        } else {
            Gate::Wait
        }
    }

    /// Moves the clock to the earliest waiter deadline, timing out every
    /// waiter due by then; returns that time (`None`: nobody waits).
    pub fn advance(&mut self) -> Option<SystemTime> {
        let next = self.waiters.values().map(|w| w.deadline).min()?;
        self.now = self.now.max(next);
        let due: Vec<u64> = self
            .waiters
            .iter()
            .filter(|(_, w)| w.deadline <= next)
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let outcome = self.waiters[&id].waiting.failed(Error::TimedOut);
            self.finish(id, outcome);
        }
        Some(next)
    }

    /// The send path after the deadline check: checks, then a handoff to
    /// the first blocked receiver, or the queue.
    fn send(&mut self, desc: u64, msg: Vec<u8>, priority: u32, deadline_ok: bool) -> Gate {
        let d = &self.descs[&desc];
        let q = self.queues.get_mut(&d.queue).expect("queue");
        if !deadline_ok {
            return Gate::Fail(Error::InvalidDeadline);
        }
        if priority >= MQ_PRIO_MAX {
            return Gate::Fail(Error::InvalidPriority { priority });
        }
        if !d.write {
            return Gate::Fail(Error::NotWritable);
        }
        if msg.len() > q.msgsize {
            return Gate::Fail(Error::MessageTooLong {
                len: msg.len(),
                limit: q.msgsize,
            });
        }
        if q.count >= q.capacity {
            return if d.nonblocking {
                Gate::Fail(Error::WouldBlock)
            } else {
                Gate::Wait
            };
        }
        if let Some(&id) = q.recv_waiters.front() {
            // Handed straight to the first blocked receiver: never queued,
            // no notification.
            let message = Message {
                bytes: msg,
                priority,
                tail_untouched: true,
            };
            self.finish(id, Outcome::Received(Ok(message)));
        } else {
            q.count += 1;
            q.bytes += msg.len();
            q.msgs.entry(priority).or_default().push_back(msg);
            if q.count == 1 {
                // Empty → non-empty: a registered notification fires and
                // is consumed.
                q.notify_owner = None;
            }
        }
        self.settle_pollers();
        Gate::Done(Outcome::Sent(Ok(())))
    }

    /// The receive path after the deadline check: checks, then the oldest
    /// message of the highest priority, and the first blocked sender's
    /// message moved in.
    fn receive(&mut self, desc: u64, buf: Buf, deadline_ok: bool) -> Gate {
        let d = &self.descs[&desc];
        let q = self.queues.get_mut(&d.queue).expect("queue");
        let size = buf.resolve(q.msgsize);
        if !deadline_ok {
            return Gate::Fail(Error::InvalidDeadline);
        }
        if !d.read {
            return Gate::Fail(Error::NotReadable);
        }
        if size < q.msgsize {
            return Gate::Fail(Error::BufferTooSmall {
                len: size,
                msg_size: q.msgsize,
            });
        }
        let Some(mut top) = q.msgs.last_entry() else {
            return if d.nonblocking {
                Gate::Fail(Error::WouldBlock)
            } else {
                Gate::Wait
            };
        };
        let priority = *top.key();
        let bytes = top.get_mut().pop_front().expect("buckets are never empty");
        if top.get().is_empty() {
            top.remove();
        }
        q.count -= 1;
        q.bytes -= bytes.len();
        if let Some(&id) = q.send_waiters.front() {
            // The first blocked sender's message moves in (no notification).
            if let Waiting::Send(m, p) = &self.waiters[&id].waiting {
                q.count += 1;
                q.bytes += m.len();
                q.msgs.entry(*p).or_default().push_back(m.clone());
            }
            self.finish(id, Outcome::Sent(Ok(())));
        }
        self.settle_pollers();
        Gate::Done(Outcome::Received(Ok(Message {
            bytes,
            priority,
            tail_untouched: true,
        })))
    }

    /// Queues that exist, linked or not (`queues_count`).
    pub fn queue_count(&self) -> usize {
        self.queues.len()
    }

    /// Bytes charged to `uid`.
    pub fn charged_bytes(&self, uid: u32) -> u64 {
        self.charged.get(&uid).copied().unwrap_or(0)
    }

    /// The users.
    pub fn users(&self) -> &[Credentials] {
        &self.users
    }

    /// What every user's handles must report now.
    pub fn snapshot(&self) -> Vec<Vec<HandleState>> {
        self.handles
            .iter()
            .map(|hs| {
                hs.iter()
                    .map(|d| {
                        let desc = &self.descs[d];
                        let q = &self.queues[&desc.queue];
                        HandleState {
                            attributes: Ok(self.attributes(desc)),
                            file: desc.read.then_some(QueueFile {
                                queued_bytes: q.bytes,
                                notify_registered: q.notify_owner.is_some(),
                            }),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn attributes(&self, desc: &Desc) -> Attributes {
        let q = &self.queues[&desc.queue];
        Attributes {
            capacity: q.capacity,
            max_msg_len: q.msgsize,
            current_messages: q.count,
            nonblocking: desc.nonblocking,
        }
    }

    fn new_id(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// A description joins user `u`'s handles, or is closed at once when
    /// the user already holds [`MAX_HANDLES`].
    fn keep(&mut self, u: usize, desc: u64) {
        if self.handles[u].len() < MAX_HANDLES {
            self.handles[u].push(desc);
        } else {
            let qid = self.descs[&desc].queue;
            self.closed_by(u, qid);
            self.release(desc);
        }
    }

    /// One handle of `desc` goes away.
    fn release(&mut self, desc: u64) {
        let d = self.descs.get_mut(&desc).expect("live description");
        d.refs -= 1;
        if d.refs > 0 {
            return;
        }
        let qid = d.queue;
        self.descs.remove(&desc);
        let q = self.queues.get_mut(&qid).expect("live queue");
        q.open -= 1;
        if q.open == 0 && !q.linked {
            self.destroy(qid);
        }
    }

    fn destroy(&mut self, qid: u64) {
        if let Some(q) = self.queues.remove(&qid) {
            if let Some(c) = self.charged.get_mut(&q.charged_uid) {
                *c -= q.cost;
            }
        }
    }

    fn pick(&self, u: usize, handle: u8) -> Option<usize> {
        let n = self.handles[u].len();
        (n > 0).then(|| usize::from(handle) % n)
    }

    /// What `op` must return; the model's state moves on accordingly.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        let u = usize::from(op.who()) % self.users.len();
        match *op {
            Op::Open {
                name: sel,
                access,
                create,
                nonblocking,
                mode,
                capacity,
                max_msg_len,
                ..
            } => {
                let name = self.names.name(sel);
                if let Err(e) = name::validate(&name) {
                    return Outcome::Opened(Err(e));
                }
                let who = self.users[u].clone();
                let access = access.access();
                let (read, write) = (access.can_read(), access.can_write());
                let qid = if let Some(&qid) = self.table.get(&name) {
                    if create == Create::CreateNew {
                        return Outcome::Opened(Err(Error::AlreadyExists { name }));
                    }
                    let q = &self.queues[&qid];
                    let class = if who.uid == q.uid {
                        q.mode >> 6
                    } else if who.gid == q.gid || who.groups.contains(&q.gid) {
                        q.mode >> 3
                    } else {
                        q.mode
                    } & 0o7;
                    let allowed = who.capabilities.dac_override
                        || ((!read || class & 0o4 != 0) && (!write || class & 0o2 != 0));
                    if !allowed {
                        return Outcome::Opened(Err(Error::PermissionDenied { name }));
                    }
                    qid
                } else {
                    if create == Create::No {
                        return Outcome::Opened(Err(Error::NotFound { name }));
                    }
                    let privileged = who.capabilities.sys_resource;
                    // `queues_count >= queues_max`, both unsigned ints in the
                    // kernel: a negative `queues_max` is no limit.
                    let max = u64::from(self.limits.queues_max as i32 as u32);
                    if !privileged && self.queues.len() as u64 >= max {
                        return Outcome::Opened(Err(Error::TooManyQueues));
                    }
                    let dc = self.limits.msg_max.min(self.limits.msg_default);
                    let dm = self.limits.msgsize_max.min(self.limits.msgsize_default);
                    let c = capacity.capacity(&self.limits);
                    let m = max_msg_len.max_msg_len(&self.limits);
                    let (cap, msgsize) = if c.is_none() && m.is_none() {
                        (dc, dm)
                    } else {
                        let (c, m) = (c.unwrap_or(dc), m.unwrap_or(dm));
                        let (cmax, mmax) = if privileged {
                            (crate::limits::HARD_MSGMAX, crate::limits::HARD_MSGSIZEMAX)
                        } else {
                            (self.limits.msg_max, self.limits.msgsize_max)
                        };
                        // The model names the rule on its own, in the
                        // kernel's order (zeros first, then ceilings).
                        let limit = if c == 0 {
                            Some(AttributeLimit::ZeroCapacity)
                        } else if m == 0 {
                            Some(AttributeLimit::ZeroMaxMsgLen)
                        } else if c > cmax {
                            Some(if privileged {
                                AttributeLimit::HardMsgMax
                            } else {
                                AttributeLimit::MsgMax(cmax)
                            })
                        } else if m > mmax {
                            Some(if privileged {
                                AttributeLimit::HardMsgsizeMax
                            } else {
                                AttributeLimit::MsgsizeMax(mmax)
                            })
                        } else {
                            None
                        };
                        if let Some(limit) = limit {
                            return Outcome::Opened(Err(Error::InvalidAttributes {
                                capacity: c,
                                max_msg_len: m,
                                limit,
                            }));
                        }
                        (c, m)
                    };
                    let cost = queue_cost(cap, msgsize);
                    let charged = self.charged_bytes(who.uid);
                    if charged.saturating_add(cost) > who.rlimit_msgqueue
                        || charged.checked_add(cost).is_none()
                    {
                        return Outcome::Opened(Err(Error::QueueBytesLimit {
                            cost,
                            limit: who.rlimit_msgqueue,
                        }));
                    }
                    *self.charged.entry(who.uid).or_default() += cost;
                    let bits = match mode {
                        Mode::Default => 0o600,
                        Mode::Bits(b) => u32::from(b),
                    };
                    let qid = self.new_id();
                    self.queues.insert(
                        qid,
                        MQueue {
                            uid: who.uid,
                            gid: who.gid,
                            mode: bits & !who.umask & 0o7777,
                            capacity: cap,
                            msgsize,
                            msgs: BTreeMap::new(),
                            count: 0,
                            bytes: 0,
                            linked: true,
                            open: 0,
                            charged_uid: who.uid,
                            cost,
                            recv_waiters: VecDeque::new(),
                            send_waiters: VecDeque::new(),
                            notify_owner: None,
                        },
                    );
                    self.table.insert(name, qid);
                    qid
                };
                self.queues.get_mut(&qid).expect("queue").open += 1;
                let desc = Desc {
                    queue: qid,
                    read,
                    write,
                    nonblocking,
                    refs: 1,
                };
                let attrs = self.attributes(&desc);
                let id = self.new_id();
                self.descs.insert(id, desc);
                self.keep(u, id);
                Outcome::Opened(Ok(attrs))
            }
            Op::Unlink { name: sel, .. } => {
                let name = self.names.name(sel);
                if let Err(e) = name::validate(&name) {
                    return Outcome::Unlinked(Err(e));
                }
                let Some(&qid) = self.table.get(&name) else {
                    return Outcome::Unlinked(Err(Error::NotFound { name }));
                };
                let who = &self.users[u];
                let owner = self.queues[&qid].uid;
                if who.uid != owner && who.uid != 0 && !who.capabilities.fowner {
                    return Outcome::Unlinked(Err(Error::PermissionDenied { name }));
                }
                self.table.remove(&name);
                let q = self.queues.get_mut(&qid).expect("queue");
                q.linked = false;
                if q.open == 0 {
                    self.destroy(qid);
                }
                Outcome::Unlinked(Ok(()))
            }
            Op::Close { handle, .. } => match self.pick(u, handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    let d = self.handles[u].remove(i);
                    let qid = self.descs[&d].queue;
                    self.closed_by(u, qid);
                    self.release(d);
                    Outcome::Closed
                }
            },
            Op::Clone { handle, .. } => match self.pick(u, handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    let d = self.handles[u][i];
                    self.descs.get_mut(&d).expect("description").refs += 1;
                    self.keep(u, d);
                    Outcome::Cloned(Ok(()))
                }
            },
            Op::SetNonblocking { handle, on, .. } => match self.pick(u, handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    let d = self.handles[u][i];
                    let desc = self.descs.get_mut(&d).expect("description");
                    let old = std::mem::replace(&mut desc.nonblocking, on);
                    Outcome::NonblockingSet(Ok(old))
                }
            },
            Op::Attributes { handle, .. } => match self.pick(u, handle) {
                None => Outcome::NoHandle,
                Some(i) => {
                    Outcome::Attributes(Ok(self.attributes(&self.descs[&self.handles[u][i]])))
                }
            },
            Op::SetSysctls { sysctls } => {
                self.limits = sysctls.limits();
                Outcome::LimitsSet
            }
            Op::Notify { handle, how, .. } => {
                let Some(i) = self.pick(u, handle) else {
                    return Outcome::NoHandle;
                };
                if let NotifySel::BadSignal(_) = how {
                    if let crate::Notify::Signal { signal, .. } = how.notify() {
                        return Outcome::Notified(Err(Error::InvalidSignal { signal }));
                    }
                }
                let qid = self.descs[&self.handles[u][i]].queue;
                let q = self.queues.get_mut(&qid).expect("queue");
                if q.notify_owner.is_some() {
                    return Outcome::Notified(Err(Error::Busy));
                }
                q.notify_owner = Some(u);
                Outcome::Notified(Ok(()))
            }
            Op::CancelNotify { handle, .. } => {
                let Some(i) = self.pick(u, handle) else {
                    return Outcome::NoHandle;
                };
                let qid = self.descs[&self.handles[u][i]].queue;
                let q = self.queues.get_mut(&qid).expect("queue");
                if q.notify_owner == Some(u) {
                    q.notify_owner = None;
                }
                Outcome::NotifyCancelled(Ok(()))
            }
            Op::Readiness { handle, .. } => {
                let Some(i) = self.pick(u, handle) else {
                    return Outcome::NoHandle;
                };
                let q = &self.queues[&self.descs[&self.handles[u][i]].queue];
                Outcome::Readiness(Ok(readiness(q.count, q.capacity)))
            }
            Op::WaitReady {
                handle,
                interest,
                deadline,
                ..
            } => {
                let Some(i) = self.pick(u, handle) else {
                    return Outcome::NoHandle;
                };
                let qid = self.descs[&self.handles[u][i]].queue;
                let call = deadline.map_or(Call::Blocking, Call::Deadline);
                match self.ready(qid, interest.interest(), deadline_ok(call)) {
                    Gate::Fail(e) => Outcome::Ready(Err(e)),
                    Gate::Done(o) => o,
                    Gate::Wait => blocked_result(call, self.horizon)
                        .map_or(Outcome::WouldWait, |e| Outcome::Ready(Err(e))),
                }
            }
            Op::Send {
                handle,
                len,
                fill,
                priority,
                call,
                ..
            } => {
                let Some(i) = self.pick(u, handle) else {
                    return Outcome::NoHandle;
                };
                let desc = self.handles[u][i];
                let msgsize = self.queues[&self.descs[&desc].queue].msgsize;
                let msg = payload(len.resolve(msgsize), fill);
                match self.send(desc, msg, priority.resolve(), deadline_ok(call)) {
                    Gate::Fail(e) => Outcome::Sent(Err(e)),
                    Gate::Done(o) => o,
                    Gate::Wait => blocked_result(call, self.horizon)
                        .map_or(Outcome::WouldWait, |e| Outcome::Sent(Err(e))),
                }
            }
            Op::Receive {
                handle, buf, call, ..
            } => {
                let Some(i) = self.pick(u, handle) else {
                    return Outcome::NoHandle;
                };
                let desc = self.handles[u][i];
                match self.receive(desc, buf, deadline_ok(call)) {
                    Gate::Fail(e) => Outcome::Received(Err(e)),
                    Gate::Done(o) => o,
                    Gate::Wait => blocked_result(call, self.horizon)
                        .map_or(Outcome::WouldWait, |e| Outcome::Received(Err(e))),
                }
            }
        }
    }
}
