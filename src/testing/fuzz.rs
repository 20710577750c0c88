//! The fuzz targets' entry points (feature `arbitrary`), in the library so
//! that `cargo test` can replay saved inputs through exactly the code the
//! fuzzer runs.
//!
//! Each takes the raw fuzz input, decodes a [`FuzzInput`] with `arbitrary`
//! (ops beyond [`MAX_OPS`] are ignored) and panics on the first violation.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use arbitrary::{Arbitrary, Unstructured};

use crate::queue::MessageQueue;
#[cfg(not(any(mqtwin_loom, miri)))]
use crate::twin::WaitFinished as _;
use crate::twin::{Capabilities, Credentials, Queue, Twin};

use super::driver::{message, payload, NamePool, Outcome, SENTINEL};
use super::model::{Background, Model, Started};
use super::op::{Op, Scenario, Sysctls};
use super::Group;

/// Ops of one input that are run; the rest is ignored.
pub const MAX_OPS: usize = 256;

/// The horizon of the fuzz drivers: short, so inputs run fast.
pub const HORIZON: Duration = Duration::from_micros(20);

/// A decoded `twin_vs_kernel` input.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct FuzzInput {
    /// How many users act (1 + value % 3).
    pub users: u8,
    /// Namespace limits.
    pub sysctls: Sysctls,
    /// The ops.
    pub ops: Vec<Op>,
}

impl FuzzInput {
    /// Decodes `data`; `None` when it is too short to mean anything.
    pub fn decode(data: &[u8]) -> Option<FuzzInput> {
        let mut input = FuzzInput::arbitrary_take_rest(Unstructured::new(data)).ok()?;
        input.ops.truncate(MAX_OPS);
        Some(input)
    }

    /// As a [`Scenario`].
    pub fn scenario(&self) -> Scenario {
        Scenario {
            sysctls: self.sysctls,
            ops: self.ops.clone(),
        }
    }
}

/// The simulated users of `twin_ops`: two sharing a group, and one with
/// `CAP_DAC_OVERRIDE` + `CAP_FOWNER` and a small `RLIMIT_MSGQUEUE`.
pub fn twin_users() -> Vec<Credentials> {
    vec![
        Credentials::user(1001, 100),
        Credentials {
            umask: 0o002,
            groups: vec![100],
            ..Credentials::user(1002, 200)
        },
        Credentials {
            umask: 0,
            capabilities: Capabilities::CONTAINER_ROOT,
            rlimit_msgqueue: 3_000,
            ..Credentials::user(1003, 300)
        },
    ]
}

/// One step of a `twin_ops` input.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub enum Step {
    /// An op on the main thread (never waits: horizon zero, virtual time).
    Op(Op),
    /// A send or receive on a thread of its own, with a deadline
    /// `1 + secs` seconds of virtual time away: it may block as a waiter.
    Background {
        /// Acting user.
        who: u8,
        /// Which of its handles (the thread gets a `try_clone` of it).
        handle: u8,
        /// The call.
        call: Background,
        /// Deadline, in seconds after now, minus one.
        secs: u8,
    },
    /// Moves virtual time to the earliest pending deadline.
    Advance,
}

/// A decoded `twin_ops` input.
#[derive(Debug, Clone, PartialEq, Eq, Arbitrary)]
pub struct TwinInput {
    /// How many users act (1 + value % 3).
    pub users: u8,
    /// Namespace limits.
    pub sysctls: Sysctls,
    /// The steps.
    pub steps: Vec<Step>,
}

impl TwinInput {
    /// Decodes `data`; `None` when it is too short to mean anything.
    pub fn decode(data: &[u8]) -> Option<TwinInput> {
        let mut input = TwinInput::arbitrary_take_rest(Unstructured::new(data)).ok()?;
        input.steps.truncate(MAX_OPS);
        Some(input)
    }
}

/// Most background callers blocked at once in a `twin_ops` run.
pub const MAX_WAITERS: usize = 8;

/// How long (real time) `twin_ops` waits for a thread to block or return
/// before it calls the twin hung.
const PATIENCE: Duration = Duration::from_secs(10);

/// Runs a background call on `q` (a clone of a driver handle).
fn background(q: Queue, call: Background, deadline: SystemTime) -> Outcome {
    match call {
        Background::Send {
            len,
            fill,
            priority,
        } => {
            let max = q.attributes().map_or(0, |a| a.max_msg_len);
            let msg = payload(len.resolve(max), fill);
            Outcome::Sent(q.send_deadline(&msg, priority.resolve(), Some(deadline)))
        }
        Background::Receive { buf } => {
            let max = q.attributes().map_or(0, |a| a.max_msg_len);
            let mut buffer = vec![SENTINEL; buf.resolve(max)];
            let r = q.receive_deadline(&mut buffer, Some(deadline));
            Outcome::Received(r.map(|r| message(&buffer, r)))
        }
        Background::WaitReady { interest } => {
            Outcome::Ready(q.wait_ready(interest.interest(), Some(deadline)))
        }
    }
}

/// Runs `job` on a thread of its own: a reused one (the deterministic
/// twin's pool of workers), so that a fuzzer does not spawn a thread per
/// background call; a new one under loom or Miri.
#[cfg(not(any(mqtwin_loom, miri)))]
fn run_in_background(job: Box<dyn FnOnce() + Send>) -> impl crate::twin::WaitFinished {
    crate::twin::run_on_worker(job).expect("mqtwin: cannot create a thread for a background call")
}

/// Runs `job` on a new thread (under loom or Miri).
#[cfg(any(mqtwin_loom, miri))]
fn run_in_background(job: Box<dyn FnOnce() + Send>) -> Joined {
    Joined(std::sync::Mutex::new(Some(
        std::thread::Builder::new()
            .spawn(job)
            .expect("mqtwin: cannot create a thread for a background call"),
    )))
}

/// A background thread, joined by `wait`.
#[cfg(any(mqtwin_loom, miri))]
struct Joined(std::sync::Mutex<Option<std::thread::JoinHandle<()>>>);

#[cfg(any(mqtwin_loom, miri))]
impl Joined {
    fn wait(&self) {
        let t = self.0.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

/// Polls `cond` until it holds or [`PATIENCE`] runs out.
fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + PATIENCE;
    while !cond() {
        if Instant::now() > end {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

/// `twin_ops`: operation sequences on a twin under virtual time, some calls
/// made from background threads so they block as waiters, checked after
/// every step against the reference [`Model`]: the exact outcome of every
/// call (also of background calls when they return: served by a handoff,
/// moved in by a receive, or timed out by [`Step::Advance`]), every handle's
/// attributes and queued bytes, the waiter counts of every queue, the queue
/// count and the bytes charged per user; and the invariants
/// `receivers waiting ⇒ queue empty`, `senders waiting ⇒ queue full`.
///
/// # Panics
///
/// On the first difference, with the steps that led to it.
pub fn twin_ops(data: &[u8]) {
    let Some(input) = TwinInput::decode(data) else {
        return;
    };
    let all = twin_users();
    let users = &all[..1 + usize::from(input.users) % all.len()];
    let limits = input.sysctls.limits();
    let names = NamePool::new("/fz-", 3);
    let base = Twin::builder()
        .credentials(users[0].clone())
        .virtual_time()
        .build();
    let clock = base.virtual_clock().expect("built with virtual time");
    let (twin, mut group) = Group::twin_in(base, users, limits, &names, Duration::ZERO)
        .expect("Sysctls are always valid");
    let mut model = Model::new(users, limits, names, Duration::ZERO);
    model.set_now(clock.now());
    let mut pending: HashMap<u64, mpsc::Receiver<Outcome>> = HashMap::new();
    // Background calls run on reused threads (no thread spawned per call in
    // steady state); each reports here when it has returned.
    let (finished_tx, finished) = mpsc::channel::<bool>();
    let mut started = Vec::new();
    let mut log = String::new();
    let steps = input.steps.iter().map(Some).chain(std::iter::repeat(None));
    for (n, step) in steps.enumerate() {
        match step {
            // After the input: time out whoever still waits, then stop.
            None if model.blocked() == 0 => break,
            None | Some(Step::Advance) => {
                let want = model.advance();
                let got = clock.advance_to_next_deadline();
                log += &format!("#{n} advance => {got:?}\n");
                assert_eq!(got, want, "next deadline at step {n}\n{log}");
            }
            Some(Step::Op(op)) => {
                let got = group.apply(op);
                log += &format!("#{n} {op:?} => {got:?}\n");
                assert_eq!(got, model.apply(op), "outcome of step {n}\n{log}");
            }
            Some(Step::Background {
                who,
                handle,
                call,
                secs,
            }) => {
                if model.blocked() >= MAX_WAITERS {
                    continue;
                }
                let deadline = clock.now() + Duration::from_secs(1 + u64::from(*secs));
                let want = model.start(*who, *handle, call, deadline);
                let driver = &group.drivers()[usize::from(*who) % users.len()];
                let hs = driver.handles();
                log += &format!(
                    "#{n} background {who} {handle} {call:?} +{}s => {want:?}\n",
                    1 + u64::from(*secs)
                );
                if hs.is_empty() {
                    assert_eq!(want, Started::NoHandle, "step {n}\n{log}");
                    continue;
                }
                let q = hs[usize::from(*handle) % hs.len()]
                    .try_clone()
                    .expect("the twin's try_clone never fails");
                let (tx, rx) = mpsc::channel();
                let call = *call;
                let finished_tx = finished_tx.clone();
                started.push(run_in_background(Box::new(move || {
                    let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let _ = tx.send(background(q, call, deadline));
                    }))
                    .is_ok();
                    let _ = finished_tx.send(ok);
                })));
                match want {
                    Started::NoHandle => panic!("the model lost a handle at step {n}\n{log}"),
                    Started::Done(o) => {
                        let got = rx.recv_timeout(PATIENCE);
                        assert_eq!(got, Ok(o), "background call of step {n}\n{log}");
                    }
                    Started::Blocked(id) => {
                        let blocked = eventually(|| twin.blocked() >= model.blocked());
                        assert!(blocked, "the call of step {n} did not block\n{log}");
                        pending.insert(id, rx);
                    }
                }
            }
        }
        for (id, want) in model.take_completed() {
            let rx = pending.remove(&id).expect("a pending waiter");
            let got = rx.recv_timeout(PATIENCE);
            log += &format!("   waiter {id} => {got:?}\n");
            assert_eq!(got, Ok(want), "waiter {id} after step {n}\n{log}");
        }
        for (id, rx) in &pending {
            assert!(
                rx.try_recv().is_err(),
                "waiter {id} returned after step {n} though it should still wait\n{log}"
            );
        }
        let settled = eventually(|| twin.blocked() == model.blocked());
        assert!(
            settled,
            "{} blocked callers after step {n}, expected {}\n{log}",
            twin.blocked(),
            model.blocked()
        );
        check_state(
            &twin,
            &group,
            &model,
            users,
            &format!("after step {n}\n{log}"),
        );
    }
    for job in &started {
        let ok = finished.recv_timeout(PATIENCE);
        assert_eq!(ok, Ok(true), "background calls never panic and all return");
        // Its closure is dropped too: nothing of this input is freed after
        // it (a fuzzer's leak check counts allocations per input).
        job.wait();
    }
}

/// Compares everything observable with the model, and checks the waiter
/// invariants on the twin's own numbers.
fn check_state(twin: &Twin, group: &Group<Twin>, model: &Model, users: &[Credentials], at: &str) {
    assert_eq!(group.snapshot(), model.snapshot(), "handle states {at}");
    assert_eq!(twin.queue_count(), model.queue_count(), "queue count {at}");
    for u in users {
        assert_eq!(
            twin.charged_bytes(u.uid),
            model.charged_bytes(u.uid),
            "bytes charged to uid {} {at}",
            u.uid
        );
    }
    let waiters: Vec<Vec<(usize, usize)>> = group
        .drivers()
        .iter()
        .map(|d| d.handles().iter().map(Queue::waiters).collect())
        .collect();
    assert_eq!(waiters, model.waiter_counts(), "waiters {at}");
    for d in group.drivers() {
        for q in d.handles() {
            let (receivers, senders) = q.waiters();
            let a = q.attributes().expect("the twin's attributes never fail");
            assert!(
                receivers == 0 || a.current_messages == 0,
                "receivers wait on a non-empty queue {at}"
            );
            assert!(
                senders == 0 || a.current_messages == a.capacity,
                "senders wait on a non-full queue {at}"
            );
        }
    }
}

/// Users of the `twin_vs_kernel` sandbox; an input acts as the first
/// `1 + users % 3` of them.
pub const FUZZ_KERNEL_USERS: u8 = 3;

/// `twin_vs_kernel`: the ops on the twin and, in a [`Sandbox`](super::Sandbox)
/// (private IPC namespace, the [`twin_users`] with fresh uids and gids), on
/// the kernel, compared after every step by [`Lockstep`](super::Lockstep).
/// The sandbox is started on the first call and reused (so call it from one
/// thread: the sandbox dies with the thread that started it).
///
/// # Panics
///
/// On the first divergence, or when the sandbox cannot start (it needs root).
#[cfg(all(target_os = "linux", feature = "posix"))]
#[cfg_attr(docsrs, doc(cfg(all(target_os = "linux", feature = "posix"))))]
pub fn twin_vs_kernel(data: &[u8]) {
    use std::sync::{Mutex, OnceLock};

    use super::lockstep::Lockstep;
    use super::sandbox::Sandbox;

    static LOCKSTEP: OnceLock<Mutex<Lockstep>> = OnceLock::new();
    let Some(input) = FuzzInput::decode(data) else {
        return;
    };
    let lockstep = LOCKSTEP.get_or_init(|| {
        // The `twin_ops` users, with uids nothing else uses.
        let users: Vec<Credentials> = twin_users()
            .into_iter()
            .zip(0..)
            .map(|(c, k)| Credentials {
                uid: Sandbox::fresh_uid(k),
                gid: Sandbox::fresh_uid(8 + c.gid / 100),
                groups: c
                    .groups
                    .iter()
                    .map(|g| Sandbox::fresh_uid(8 + g / 100))
                    .collect(),
                ..c
            })
            .collect();
        match Lockstep::new(&users, HORIZON) {
            Ok(l) => Mutex::new(l),
            Err(e) => panic!("twin_vs_kernel needs root (CAP_SYS_ADMIN, CAP_SETUID): {e}"),
        }
    });
    let mut lockstep = lockstep.lock().unwrap_or_else(|p| p.into_inner());
    let users = 1 + input.users % FUZZ_KERNEL_USERS;
    let mut scenario = input.scenario();
    for op in &mut scenario.ops {
        *op = op.clone().with_who(op.who() % users);
    }
    if let Err(d) = lockstep.run(&scenario) {
        panic!("{d}");
    }
}
