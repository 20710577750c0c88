//! The `protocol_handler` fuzz target, as plain functions: the fuzz target
//! (`fuzz/fuzz_targets/protocol_handler.rs`) and the stable regression test
//! (`tests/fuzz_regressions.rs`) both include this file with `#[path]`, next
//! to the protocol module itself:
//!
//! ```ignore
//! #[path = "../../examples/protocol/mod.rs"]
//! mod protocol;
//! #[path = "../src_shared/protocol_handler.rs"]
//! mod protocol_harness;
//! ```
//!
//! The fuzzer's bytes become an [`Input`] (derived with `arbitrary`): a
//! setup (queue sizes, timeouts, retry budget, an optional seeded
//! [`FaultPlan`]) and a list of [`Action`]s: clients sending valid,
//! corrupted and raw frames with chosen priorities, the server serving,
//! clients reading replies, non-blocking toggles, virtual time moving,
//! clients disconnecting and reconnecting. [`run`] plays them against the
//! real [`Server`] and [`Client`]s over a twin on virtual time, and after
//! every action compares them with a small model:
//!
//! - the request queue holds exactly the frames the model says, and the
//!   server takes the oldest of the highest priority: **urgent requests
//!   queued together with normal ones are served first**;
//! - every frame is decoded as the model expects (an accepted frame is
//!   canonical; a rejected one is rejected for an honest reason), and
//!   **every addressable frame gets exactly one reply or one counted drop**:
//!   each reply a client reads is the next one the model expects, and at the
//!   end the server's counters equal the model's;
//! - **the key-value state matches a `BTreeMap` model**, expiry included
//!   (TTLs run on the virtual clock), reply by reply and at the end;
//! - **the server makes progress under faults**: a serve on a non-empty
//!   queue always serves one frame; injected `Interrupted` / `OutOfMemory`
//!   are retried (every retry is accounted for by an injected fault), and
//!   any failure that is not predicted exactly must be one the fault plan
//!   can cause;
//! - nothing panics and nothing blocks forever: every blocking call carries
//!   a deadline, and a helper thread moves virtual time to it.
//!
//! # Determinism
//!
//! Everything runs on the calling thread except the time keeper, a helper
//! that waits until the calling thread is blocked in the twin and then
//! moves the virtual clock to that call's deadline. Only one thread ever
//! acts on the queues, so a blocked call can only end by timing out at its
//! deadline, whoever moves the clock and whenever: each input always gives
//! the same run (with the same seeded faults).

// The fuzz target uses `run`, the regression test `run_bytes`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use mqtwin::error::errno;
use mqtwin::twin::{FaultPlan, Twin, VirtualClock};
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

use crate::protocol::{
    Client, Command, Config, Delivery, DropReason, Malformed, Reply, Request, Server, Stats,
    Status, Step, ADDRESS_LEN, MAX_KEY_LEN, MAX_REQUEST_LEN, NORMAL_PRIORITY, REQUEST_MAGIC,
    REQUEST_QUEUE_MSG_LEN, URGENT_PRIORITY, VERSION,
};

/// Clients in a run: ids `1..=MAX_CLIENTS`.
pub const MAX_CLIENTS: usize = 4;
/// Actions played per input (the rest is ignored), to keep runs short.
pub const MAX_ACTIONS: usize = 256;
/// Fault probabilities are scaled into `0.0..=MAX_FAULT_PROBABILITY`.
pub const MAX_FAULT_PROBABILITY: f64 = 0.5;

/// One fuzz case.
#[derive(Debug, Clone, Arbitrary)]
pub struct Input {
    /// How the service and the twin are set up.
    pub setup: Setup,
    /// What happens, in order.
    pub actions: Vec<Action>,
}

/// Sizes, timeouts and faults (each field is reduced into its valid range).
#[derive(Debug, Clone, Arbitrary)]
pub struct Setup {
    /// `1 + clients % MAX_CLIENTS` clients.
    pub clients: u8,
    /// Request queue capacity, `1 + x % 10`.
    pub request_capacity: u8,
    /// Reply queue capacity, `1 + x % 10`.
    pub reply_capacity: u8,
    /// The server's idle timeout.
    pub idle_timeout_ms: u16,
    /// How long the server waits for room in a reply queue.
    pub reply_timeout_ms: u16,
    /// How long a client waits for room in the request queue.
    pub request_timeout_ms: u16,
    /// Retry budget, `x % 8`.
    pub max_retries: u8,
    /// Whether the server starts with non-blocking replies.
    pub nonblocking_replies: bool,
    /// Inject faults.
    pub faults: Option<FaultSetup>,
}

/// A [`FaultPlan`]: seed and per-site probabilities (`x / 255 * 0.5`).
#[derive(Debug, Clone, Arbitrary)]
pub struct FaultSetup {
    /// The plan's seed.
    pub seed: u64,
    /// `mq_open` failures.
    pub open: u8,
    /// `ENOMEM` on send.
    pub send: u8,
    /// `EINTR` on calls about to block.
    pub interrupt: u8,
}

/// A command, with keys drawn from a small set so they collide.
#[derive(Debug, Clone, Arbitrary)]
pub enum Cmd {
    /// PING.
    Ping,
    /// PUT; `key` via [`key`], the value as given (may be too long).
    Put {
        /// Key selector.
        key: u8,
        /// Value (longer than `MAX_VALUE_LEN` is refused by the client).
        value: Vec<u8>,
        /// TTL in milliseconds (0: none).
        ttl_ms: u16,
    },
    /// GET.
    Get {
        /// Key selector.
        key: u8,
    },
    /// DEL.
    Del {
        /// Key selector.
        key: u8,
    },
    /// SHUTDOWN.
    Shutdown,
}

/// Whose non-blocking flag to toggle.
#[derive(Debug, Clone, Arbitrary)]
pub enum Target {
    /// The server's request handle.
    ServerRequests,
    /// How the server opens reply queues.
    ServerReplies,
    /// A client's request handle.
    ClientRequests(u8),
    /// A client's reply handle.
    ClientReplies(u8),
}

/// One step of a fuzz case.
#[derive(Debug, Clone, Arbitrary)]
pub enum Action {
    /// A client sends a well-formed request.
    Send {
        /// Client selector.
        client: u8,
        /// The command.
        cmd: Cmd,
        /// Urgent priority.
        urgent: bool,
    },
    /// A client sends a well-formed request with one byte flipped, or cut short.
    SendCorrupted {
        /// Client selector.
        client: u8,
        /// The command to corrupt.
        cmd: Cmd,
        /// Urgent priority.
        urgent: bool,
        /// Where (modulo the frame length).
        at: u16,
        /// XOR mask for the byte (when not truncating).
        xor: u8,
        /// Truncate at `at` instead.
        truncate: bool,
    },
    /// A client sends arbitrary bytes with an arbitrary priority.
    SendRaw {
        /// Client selector.
        client: u8,
        /// The frame.
        frame: Vec<u8>,
        /// The priority (≥ 32768 is refused).
        priority: u16,
    },
    /// The server serves up to `1 + steps % 16` frames, stopping when it
    /// finds nothing to do (after its idle wait).
    Serve {
        /// How many serves.
        steps: u8,
    },
    /// A client reads up to `1 + max % 16` replies, stopping at the first
    /// that is not there; with `wait_ms`, each read waits up to that long.
    Read {
        /// Client selector.
        client: u8,
        /// How many.
        max: u8,
        /// Wait this long for each, or not at all.
        wait_ms: Option<u16>,
    },
    /// Toggle a non-blocking flag.
    SetNonblocking {
        /// Whose.
        target: Target,
        /// On or off.
        on: bool,
    },
    /// Virtual time moves forward.
    Advance {
        /// By this many milliseconds.
        ms: u32,
    },
    /// A client unlinks its reply queue and goes away.
    Disconnect {
        /// Client selector.
        client: u8,
    },
    /// A disconnected client connects again (a new reply queue).
    Reconnect {
        /// Client selector.
        client: u8,
    },
}

/// The fuzz target's entry point: decodes `data` exactly as
/// `libfuzzer_sys::fuzz_target!(|input: Input| ...)` does, then [`run`]s it.
/// Inputs that do not decode are ignored.
pub fn run_bytes(data: &[u8]) {
    // libfuzzer-sys skips inputs shorter than the type's minimum size.
    if data.len() < <Input as Arbitrary>::size_hint(0).0 {
        return;
    }
    if let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) {
        let _ = run(&input);
    }
}

/// Plays `input` and asserts the handler's invariants (panics on a
/// violation). Returns the server's final counters, or `None` when an
/// injected fault prevented the server from starting.
pub fn run(input: &Input) -> Option<Stats> {
    let mut h = Harness::new(&input.setup)?;
    for action in input.actions.iter().take(MAX_ACTIONS) {
        h.act(action);
        h.check_queues();
    }
    Some(h.finish())
}

/// The key `k` selects: eight short keys, or (255) a maximal one.
pub fn key(k: u8) -> Vec<u8> {
    if k == u8::MAX {
        vec![b'K'; MAX_KEY_LEN]
    } else {
        format!("k{}", k % 8).into_bytes()
    }
}

fn command(cmd: &Cmd) -> Command {
    match cmd {
        Cmd::Ping => Command::Ping,
        Cmd::Put {
            key: k,
            value,
            ttl_ms,
        } => Command::Put {
            key: key(*k),
            value: value.clone(),
            ttl_ms: u32::from(*ttl_ms),
        },
        Cmd::Get { key: k } => Command::Get { key: key(*k) },
        Cmd::Del { key: k } => Command::Del { key: key(*k) },
        Cmd::Shutdown => Command::Shutdown,
    }
}

/// Errors an open can get from the fault plan.
fn injectable_open(e: &Error, creating: bool) -> bool {
    matches!(e, Error::ResourceLimit | Error::OutOfMemory)
        || *e
            == Error::Os {
                errno: errno::ENFILE,
            }
        || (creating && *e == Error::TooManyQueues)
}

// ---------------------------------------------------------------------------
// The time keeper
// ---------------------------------------------------------------------------

/// Moves virtual time to the deadline of whatever call the harness thread is
/// blocked in, so blocking calls with deadlines time out instead of hanging.
///
/// The keeper threads are pooled (a thread costs more to start than a whole
/// short run); each serves one harness at a time, so concurrent harnesses
/// (parallel tests) each get their own.
struct TimeKeeper {
    stop: Arc<AtomicBool>,
    stop_queue: Arc<mqtwin::twin::Queue>,
}

/// What a keeper thread works for: one harness's twin.
struct Job {
    ns: Twin,
    clock: VirtualClock,
    stop: Arc<AtomicBool>,
    stop_queue: Arc<mqtwin::twin::Queue>,
}

/// Idle keeper threads, waiting for a job.
static IDLE_KEEPERS: Mutex<Vec<mpsc::Sender<Job>>> = Mutex::new(Vec::new());

impl TimeKeeper {
    fn start(ns: &Twin, clock: VirtualClock) -> TimeKeeper {
        // The handshake queue that ends the job (see `stop`). Opening it
        // may meet injected faults like any open: try until it works (not
        // `create_new`: an injected ENFILE leaves the queue created).
        let opts = OpenOptions::read_write()
            .create()
            .capacity(1)
            .max_msg_len(1);
        let stop_queue = Arc::new(
            (0..10_000)
                .find_map(|_| ns.open("/harness.stop", &opts).ok())
                .expect("cannot create the time keeper's queue"),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let job = Job {
            ns: ns.clone(),
            clock,
            stop: Arc::clone(&stop),
            stop_queue: Arc::clone(&stop_queue),
        };
        let idle = IDLE_KEEPERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let job = match idle {
            Some(keeper) => match keeper.send(job) {
                Ok(()) => None,
                Err(mpsc::SendError(job)) => Some(job),
            },
            None => Some(job),
        };
        if let Some(job) = job {
            let (tx, rx) = mpsc::channel();
            tx.send(job).expect("fresh channel");
            std::thread::spawn(move || {
                for job in rx {
                    keep_time(&job);
                    IDLE_KEEPERS
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(tx.clone());
                    // Released last: the harness may start its next run at once.
                    while job.stop_queue.try_send(b"!", 0).is_err() {}
                }
            });
        }
        TimeKeeper { stop, stop_queue }
    }

    /// Ends the job: raise the flag, then block in the twin (which wakes
    /// the keeper) until it answers on the stop queue.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let mut buf = [0u8; 1];
        loop {
            match self.stop_queue.receive(&mut buf) {
                Ok(_) => break,
                Err(Error::Interrupted) => continue,
                Err(e) => panic!("time keeper handshake failed: {e:?}"),
            }
        }
    }
}

/// A keeper's work for one harness: whenever the harness thread is blocked,
/// move the clock to the deadline it waits for. Returns when asked to stop
/// (the harness then blocks on the stop queue without a deadline, which is
/// what wakes the keeper to see the flag).
fn keep_time(job: &Job) {
    loop {
        job.ns.wait_blocked(1);
        if job.stop.load(Ordering::SeqCst) {
            return;
        }
        // Only the harness thread blocks, so any registered deadline is the
        // one it waits for (or one it just timed out at).
        if job.clock.advance_to_next_deadline().is_none() {
            std::thread::yield_now();
        }
    }
}

// ---------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------

/// A queue as the model sees it: `(priority, frame, what was sent)` in
/// arrival order; receive takes the first of the highest priority.
#[derive(Debug, Default)]
struct ModelQueue {
    capacity: usize,
    items: Vec<(u32, Vec<u8>, Option<Request>)>,
}

impl ModelQueue {
    fn new(capacity: usize) -> Self {
        ModelQueue {
            capacity,
            items: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.items.len() >= self.capacity
    }

    fn pop(&mut self) -> Option<(u32, Vec<u8>, Option<Request>)> {
        let top = self.items.iter().map(|i| i.0).max()?;
        let at = self.items.iter().position(|i| i.0 == top)?;
        Some(self.items.remove(at))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ModelState {
    Running,
    Draining,
    Stopped,
}

struct Slot {
    client: Option<Client<Twin>>,
    replies: ModelQueue,
    nonblocking_requests: bool,
    nonblocking_replies: bool,
}

struct Harness {
    ns: Twin,
    clock: VirtualClock,
    keeper: Option<TimeKeeper>,
    faults: bool,
    config: Config,
    server: Server<Twin>,
    server_nonblocking: bool,
    requests: ModelQueue,
    slots: Vec<Slot>,
    kv: BTreeMap<Vec<u8>, (Vec<u8>, Option<SystemTime>)>,
    state: ModelState,
    expected: Stats,
    /// Retries made by clients that have since disconnected.
    gone_client_retries: u64,
}

impl Harness {
    fn new(setup: &Setup) -> Option<Harness> {
        let mut builder = Twin::builder().virtual_time();
        if let Some(f) = &setup.faults {
            let p = |x: u8| f64::from(x) / 255.0 * MAX_FAULT_PROBABILITY;
            builder = builder.faults(
                FaultPlan::new(f.seed)
                    .open(p(f.open))
                    .send(p(f.send))
                    .interrupt(p(f.interrupt)),
            );
        }
        let ns = builder.build();
        let clock = ns.virtual_clock().expect("built with virtual time");
        let keeper = TimeKeeper::start(&ns, clock.clone());
        let faults = setup.faults.is_some();
        let config = Config {
            prefix: "/svc".to_owned(),
            request_capacity: 1 + usize::from(setup.request_capacity) % 10,
            reply_capacity: 1 + usize::from(setup.reply_capacity) % 10,
            idle_timeout: Duration::from_millis(u64::from(setup.idle_timeout_ms)),
            reply_timeout: Duration::from_millis(u64::from(setup.reply_timeout_ms)),
            request_timeout: Duration::from_millis(u64::from(setup.request_timeout_ms)),
            nonblocking_replies: setup.nonblocking_replies,
            max_retries: u32::from(setup.max_retries % 8),
        };
        let server = match Server::start(ns.clone(), config.clone()) {
            Ok(s) => s,
            Err(e) => {
                assert!(faults && injectable_open(&e, true), "server start: {e:?}");
                keeper.stop();
                return None;
            }
        };
        let mut h = Harness {
            requests: ModelQueue::new(config.request_capacity),
            ns,
            clock,
            keeper: Some(keeper),
            faults,
            config,
            server,
            server_nonblocking: false,
            slots: Vec::new(),
            kv: BTreeMap::new(),
            state: ModelState::Running,
            expected: Stats::default(),
            gone_client_retries: 0,
        };
        for _ in 0..1 + usize::from(setup.clients) % MAX_CLIENTS {
            h.slots.push(Slot {
                client: None,
                replies: ModelQueue::new(h.config.reply_capacity),
                nonblocking_requests: false,
                nonblocking_replies: false,
            });
            h.connect(h.slots.len() - 1);
        }
        Some(h)
    }

    fn slot(&self, client: u8) -> usize {
        usize::from(client) % self.slots.len()
    }

    /// Client ids are 1-based slot numbers.
    fn id_of(slot: usize) -> u16 {
        slot as u16 + 1
    }

    fn connect(&mut self, i: usize) {
        // Each client is its own simulated process of the same user.
        let ns = self.ns.process(self.ns.credentials().clone());
        match Client::connect(ns, Self::id_of(i), &self.config) {
            Ok(c) => {
                self.slots[i] = Slot {
                    client: Some(c),
                    replies: ModelQueue::new(self.config.reply_capacity),
                    nonblocking_requests: false,
                    nonblocking_replies: false,
                };
            }
            Err(e) => assert!(self.faults && injectable_open(&e, true), "connect: {e:?}"),
        }
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::Send {
                client,
                cmd,
                urgent,
            } => self.send(*client, cmd, *urgent),
            Action::SendCorrupted {
                client,
                cmd,
                urgent,
                at,
                xor,
                truncate,
            } => {
                let i = self.slot(*client);
                let Some(c) = &self.slots[i].client else {
                    return;
                };
                let request = Request {
                    client: Self::id_of(i),
                    id: c.next_request_id(),
                    command: command(cmd),
                };
                let Some(mut frame) = request.try_encode() else {
                    return;
                };
                let at = usize::from(*at) % frame.len();
                if *truncate {
                    frame.truncate(at);
                } else {
                    frame[at] ^= xor;
                }
                let priority = if *urgent {
                    URGENT_PRIORITY
                } else {
                    NORMAL_PRIORITY
                };
                self.send_frame(i, frame, priority);
            }
            Action::SendRaw {
                client,
                frame,
                priority,
            } => {
                let i = self.slot(*client);
                if self.slots[i].client.is_some() {
                    self.send_frame(i, frame.clone(), u32::from(*priority));
                }
            }
            Action::Serve { steps } => {
                for _ in 0..1 + steps % 16 {
                    if !matches!(self.serve(), Step::Served(_)) {
                        break;
                    }
                }
            }
            Action::Read {
                client,
                max,
                wait_ms,
            } => {
                let i = self.slot(*client);
                for _ in 0..1 + max % 16 {
                    if !self.read(i, *wait_ms) {
                        break;
                    }
                }
            }
            Action::SetNonblocking { target, on } => self.set_nonblocking(target, *on),
            Action::Advance { ms } => {
                self.clock.advance(Duration::from_millis(u64::from(*ms)));
            }
            Action::Disconnect { client } => {
                let i = self.slot(*client);
                if let Some(c) = self.slots[i].client.take() {
                    self.gone_client_retries += c.retries();
                    assert_eq!(c.disconnect(), Ok(()), "disconnect");
                    self.slots[i].replies = ModelQueue::new(self.config.reply_capacity);
                }
            }
            Action::Reconnect { client } => {
                let i = self.slot(*client);
                if self.slots[i].client.is_none() {
                    self.connect(i);
                }
            }
        }
    }

    fn set_nonblocking(&mut self, target: &Target, on: bool) {
        match target {
            Target::ServerRequests => {
                assert_eq!(self.server.set_nonblocking(on), Ok(self.server_nonblocking));
                self.server_nonblocking = on;
            }
            Target::ServerReplies => self.server.set_nonblocking_replies(on),
            Target::ClientRequests(c) | Target::ClientReplies(c) => {
                let i = self.slot(*c);
                let slot = &mut self.slots[i];
                let Some(client) = &slot.client else { return };
                if matches!(target, Target::ClientRequests(_)) {
                    assert_eq!(
                        client.set_nonblocking_requests(on),
                        Ok(slot.nonblocking_requests)
                    );
                    slot.nonblocking_requests = on;
                } else {
                    assert_eq!(
                        client.set_nonblocking_replies(on),
                        Ok(slot.nonblocking_replies)
                    );
                    slot.nonblocking_replies = on;
                }
            }
        }
    }

    /// A client sends a well-formed request through [`Client::send`].
    fn send(&mut self, client: u8, cmd: &Cmd, urgent: bool) {
        let i = self.slot(client);
        let Some(c) = &mut self.slots[i].client else {
            return;
        };
        let request = Request {
            client: Self::id_of(i),
            id: c.next_request_id(),
            command: command(cmd),
        };
        let priority = if urgent {
            URGENT_PRIORITY
        } else {
            NORMAL_PRIORITY
        };
        let before = self.clock.now();
        let result = c.send(request.command.clone(), urgent);
        match request.try_encode() {
            None => assert!(
                matches!(
                    result,
                    Err(Error::MessageTooLong {
                        limit: MAX_REQUEST_LEN,
                        ..
                    })
                ),
                "oversized request: {result:?}"
            ),
            Some(frame) => {
                let queued = self.check_send(i, frame.len(), priority, result.map(drop), before);
                if queued {
                    self.requests.items.push((priority, frame, Some(request)));
                }
            }
        }
    }

    /// A client sends raw bytes through [`Client::send_frame`].
    fn send_frame(&mut self, i: usize, frame: Vec<u8>, priority: u32) {
        let before = self.clock.now();
        let c = self.slots[i].client.as_mut().expect("connected");
        let result = c.send_frame(&frame, priority);
        if self.check_send(i, frame.len(), priority, result, before) {
            self.requests.items.push((priority, frame, None));
        }
    }

    /// Checks a client's send to the request queue against the model;
    /// whether the frame was queued.
    fn check_send(
        &self,
        i: usize,
        len: usize,
        priority: u32,
        result: Result<(), Error>,
        before: SystemTime,
    ) -> bool {
        let nonblocking = self.slots[i].nonblocking_requests;
        let full = self.requests.full();
        let expected = if priority >= mqtwin::deadline::MQ_PRIO_MAX {
            Err(Error::InvalidPriority { priority })
        } else if len > REQUEST_QUEUE_MSG_LEN {
            Err(Error::MessageTooLong {
                len,
                limit: REQUEST_QUEUE_MSG_LEN,
            })
        } else if !full {
            Ok(())
        } else if nonblocking {
            Err(Error::WouldBlock)
        } else {
            Err(Error::TimedOut)
        };
        if result != expected {
            // Only injected faults may change the outcome, and only after
            // the argument checks: ENOMEM (before the fullness check), or
            // EINTR on each attempt that was about to block.
            let explained = self.faults
                && match (&expected, &result) {
                    (Err(Error::InvalidPriority { .. } | Error::MessageTooLong { .. }), _) => false,
                    (_, Err(Error::OutOfMemory)) => true,
                    (Err(Error::TimedOut), Err(Error::Interrupted)) => true,
                    _ => false,
                };
            assert!(
                explained,
                "client send: expected {expected:?}, got {result:?}"
            );
        }
        // Time moves only when the client really waited: to its deadline.
        let waited = result == Err(Error::TimedOut);
        let timeout = if waited {
            self.config.request_timeout
        } else {
            Duration::ZERO
        };
        assert_eq!(self.clock.now(), before + timeout, "client send time");
        result.is_ok()
    }

    /// One `serve_one`, checked against the model.
    fn serve(&mut self) -> Step {
        let before = self.clock.now();
        let step = self.server.serve_one().expect("serve_one failed");
        if self.state == ModelState::Stopped {
            assert_eq!(step, Step::Stopped, "a stopped server stays stopped");
            assert_eq!(self.clock.now(), before);
            return step;
        }
        let Some((priority, frame, sent)) = self.requests.pop() else {
            match self.state {
                ModelState::Draining => {
                    assert_eq!(step, Step::Stopped, "drained after SHUTDOWN");
                    self.state = ModelState::Stopped;
                    assert_eq!(self.clock.now(), before);
                }
                _ => {
                    assert_eq!(step, Step::Idle, "empty request queue");
                    let waited = before + self.config.idle_timeout;
                    let now = self.clock.now();
                    if self.server_nonblocking {
                        assert_eq!(now, before, "non-blocking idle serve waited");
                    } else if now != waited {
                        // Every attempt interrupted before it could wait.
                        assert!(self.faults && now == before, "idle serve time");
                    }
                }
            }
            return step;
        };
        let Step::Served(served) = step else {
            panic!("the request queue held a frame but serve_one gave {step:?}: no progress");
        };
        // Urgent first: nothing of higher priority was left waiting, and
        // within a priority the oldest frame came out.
        assert!(
            self.requests.items.iter().all(|q| q.0 <= served.priority),
            "served priority {} while a higher one was waiting",
            served.priority
        );
        assert_eq!(served.priority, priority, "priority order");
        assert_eq!(served.at, before, "handled at the current time");
        let decoded = Request::decode(&frame);
        assert_eq!(
            served.request, decoded,
            "the server decoded another frame (FIFO order)"
        );
        self.check_decoding(&frame, &decoded, sent.as_ref());

        // The model executes the same request.
        self.expected.received += 1;
        if priority >= URGENT_PRIORITY {
            self.expected.urgent += 1;
        }
        let (client, reply) = match &decoded {
            Ok(req) => (Some(req.client), Some(self.execute(req, before))),
            Err(Malformed::Invalid { client, id, .. }) => {
                self.expected.malformed += 1;
                (
                    Some(*client),
                    Some(Reply {
                        id: *id,
                        status: Status::BadRequest,
                        value: Vec::new(),
                    }),
                )
            }
            Err(Malformed::Unaddressable) => {
                self.expected.malformed += 1;
                self.expected.unaddressable += 1;
                (None, None)
            }
        };
        assert_eq!(
            served.reply, reply,
            "reply differs from the key-value model"
        );
        match (client, reply) {
            (Some(client), Some(reply)) => {
                self.check_delivery(client, priority, &reply, &served.delivery, before)
            }
            _ => {
                assert_eq!(served.delivery, Delivery::Unaddressable);
                assert_eq!(self.clock.now(), before);
            }
        }
        Step::Served(served)
    }

    /// An accepted frame is canonical, a rejected one is rejected honestly,
    /// and a request a client sent with `Client::send` decodes to itself.
    fn check_decoding(
        &self,
        frame: &[u8],
        decoded: &Result<Request, Malformed>,
        sent: Option<&Request>,
    ) {
        if let Some(sent) = sent {
            assert_eq!(decoded.as_ref(), Ok(sent), "round trip");
        }
        match decoded {
            Ok(req) => assert_eq!(req.encode(), frame, "accepted a non-canonical frame"),
            Err(Malformed::Unaddressable) => assert!(
                frame.len() < ADDRESS_LEN || frame[0] != REQUEST_MAGIC || frame[1] != VERSION,
                "addressable frame rejected as unaddressable"
            ),
            Err(Malformed::Invalid { client, id, .. }) => {
                assert_eq!(client.to_be_bytes(), frame[2..4]);
                assert_eq!(id.to_be_bytes(), frame[4..8]);
            }
        }
    }

    /// The key-value model.
    fn execute(&mut self, req: &Request, now: SystemTime) -> Reply {
        let reply = |status, value: &[u8]| Reply {
            id: req.id,
            status,
            value: value.to_vec(),
        };
        if self.state != ModelState::Running {
            return reply(Status::ShuttingDown, b"");
        }
        let live = |e: &(Vec<u8>, Option<SystemTime>)| e.1.is_none_or(|t| now < t);
        match &req.command {
            Command::Ping => reply(Status::Ok, b"pong"),
            Command::Put { key, value, ttl_ms } => {
                let expires =
                    (*ttl_ms != 0).then(|| now + Duration::from_millis(u64::from(*ttl_ms)));
                self.kv.insert(key.clone(), (value.clone(), expires));
                reply(Status::Ok, b"")
            }
            Command::Get { key } => match self.kv.get(key).filter(|e| live(e)) {
                Some((v, _)) => reply(Status::Ok, v),
                None => reply(Status::NotFound, b""),
            },
            Command::Del { key } => match self.kv.remove(key).filter(|e| live(e)) {
                Some(_) => reply(Status::Ok, b""),
                None => reply(Status::NotFound, b""),
            },
            Command::Shutdown => {
                self.state = ModelState::Draining;
                reply(Status::Ok, b"")
            }
        }
    }

    /// Exactly one reply or one counted drop, as the model predicts (or as an
    /// injected fault explains).
    fn check_delivery(
        &mut self,
        client: u16,
        priority: u32,
        reply: &Reply,
        actual: &Delivery,
        before: SystemTime,
    ) {
        let slot = usize::from(client)
            .checked_sub(1)
            .filter(|&i| i < self.slots.len() && self.slots[i].client.is_some());
        let exact = match slot {
            None => Delivery::Dropped(DropReason::NoReplyQueue),
            Some(i) if self.slots[i].replies.full() => Delivery::Dropped(DropReason::QueueFull),
            Some(_) => Delivery::Sent,
        };
        let blocking = !self.server.config().nonblocking_replies;
        if *actual != exact {
            let explained = self.faults
                && match actual {
                    Delivery::Dropped(DropReason::OpenFailed(e)) => injectable_open(e, false),
                    Delivery::Dropped(DropReason::SendFailed(Error::OutOfMemory)) => {
                        exact != Delivery::Dropped(DropReason::NoReplyQueue)
                    }
                    Delivery::Dropped(DropReason::SendFailed(Error::Interrupted)) => {
                        blocking && exact == Delivery::Dropped(DropReason::QueueFull)
                    }
                    _ => false,
                };
            assert!(
                explained,
                "reply to client {client}: expected {exact:?}, got {actual:?}"
            );
        }
        match actual {
            Delivery::Sent => {
                self.expected.replies_sent += 1;
                let i = slot.expect("sent to a connected client");
                self.slots[i]
                    .replies
                    .items
                    .push((priority, reply.encode(), None));
            }
            Delivery::Dropped(DropReason::QueueFull) => self.expected.dropped_full += 1,
            Delivery::Dropped(DropReason::NoReplyQueue) => self.expected.dropped_no_queue += 1,
            Delivery::Dropped(_) => self.expected.dropped_error += 1,
            Delivery::Unaddressable => panic!("addressable frame delivered as unaddressable"),
        }
        // The server waited (to its deadline, never longer) only for a full
        // reply queue on a blocking handle.
        let waited = blocking && *actual == Delivery::Dropped(DropReason::QueueFull);
        let timeout = if waited {
            self.config.reply_timeout
        } else {
            Duration::ZERO
        };
        assert_eq!(self.clock.now(), before + timeout, "reply time");
    }

    /// A client reads one reply (or finds none); whether it got one.
    fn read(&mut self, i: usize, wait_ms: Option<u16>) -> bool {
        let before = self.clock.now();
        let slot = &mut self.slots[i];
        let Some(c) = &mut slot.client else {
            return false;
        };
        let result = match wait_ms {
            None => c.try_reply(),
            Some(ms) => c.wait_reply(Duration::from_millis(u64::from(ms))),
        };
        let expected = slot.replies.pop().map(|(priority, frame, _)| {
            (
                Reply::decode(&frame).expect("the model holds replies"),
                priority,
            )
        });
        let got_one = matches!(result, Ok(Some(_)));
        let waited = match (&result, &expected) {
            (Ok(got), _) => {
                assert_eq!(got, &expected, "client {} read the wrong reply", i + 1);
                got.is_none() && wait_ms.is_some() && !slot.nonblocking_replies
            }
            (Err(Error::Interrupted), None)
                if self.faults && wait_ms.is_some() && !slot.nonblocking_replies =>
            {
                false
            }
            (Err(e), _) => panic!("client {} read: {e:?} (expected {expected:?})", i + 1),
        };
        let timeout = match wait_ms {
            Some(ms) if waited => Duration::from_millis(u64::from(ms)),
            _ => Duration::ZERO,
        };
        assert_eq!(self.clock.now(), before + timeout, "read time");
        got_one
    }

    /// The queues hold as many messages as the model says.
    fn check_queues(&self) {
        assert_eq!(
            self.server.queued(),
            Ok(self.requests.items.len()),
            "request queue length"
        );
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(c) = &s.client {
                assert_eq!(
                    c.queued_replies(),
                    Ok(s.replies.items.len()),
                    "client {} replies",
                    i + 1
                );
            }
        }
    }

    /// The end: the server drains what it can, the clients read everything,
    /// and the counters and the store match the model.
    fn finish(mut self) -> Stats {
        // Progress: each serve on a non-empty queue serves one frame.
        for _ in 0..self.requests.items.len() + 2 {
            if matches!(self.serve(), Step::Idle | Step::Stopped) {
                break;
            }
        }
        assert!(
            self.requests.items.is_empty() || self.state == ModelState::Stopped,
            "requests left behind by a running server"
        );
        for i in 0..self.slots.len() {
            while !self.slots[i].replies.items.is_empty() {
                self.read(i, None);
            }
            self.read(i, None); // and then nothing more
        }
        self.check_queues();
        let now = self.clock.now();
        let model: BTreeMap<Vec<u8>, Vec<u8>> = self
            .kv
            .iter()
            .filter(|(_, (_, exp))| exp.is_none_or(|t| now < t))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        assert_eq!(self.server.store().snapshot(now), model, "store");
        let stats = *self.server.stats();
        assert_eq!(
            Stats {
                retries: 0,
                ..stats
            },
            self.expected,
            "server counters"
        );
        let retries = stats.retries
            + self.gone_client_retries
            + self
                .slots
                .iter()
                .filter_map(|s| s.client.as_ref())
                .map(|c| c.retries())
                .sum::<u64>();
        assert!(
            retries <= self.ns.faults_injected(),
            "{retries} retries but only {} faults injected",
            self.ns.faults_injected()
        );
        if let Some(k) = self.keeper.take() {
            k.stop();
        }
        stats
    }
}

/// A hand-written input that exercises every path of the handler once
/// without faults: two clients, urgent and normal requests queued together,
/// an invalid and an unaddressable frame, a full reply queue (capacity 1)
/// and a key expiring on the virtual clock. `tests/fuzz_regressions.rs`
/// asserts the exact counters it produces, so the harness cannot silently
/// stop checking anything.
pub fn example_input() -> Input {
    let put = Cmd::Put {
        key: 1,
        value: b"v".to_vec(),
        ttl_ms: 100,
    };
    Input {
        setup: Setup {
            clients: 1,
            request_capacity: 9,
            reply_capacity: 0,
            idle_timeout_ms: 10,
            reply_timeout_ms: 20,
            request_timeout_ms: 30,
            max_retries: 3,
            nonblocking_replies: false,
            faults: None,
        },
        actions: vec![
            Action::Send {
                client: 0,
                cmd: put,
                urgent: false,
            },
            Action::Send {
                client: 1,
                cmd: Cmd::Get { key: 1 },
                urgent: false,
            },
            Action::Send {
                client: 1,
                cmd: Cmd::Ping,
                urgent: true,
            },
            Action::SendRaw {
                client: 0,
                frame: vec![b'Q', 1, 0, 1, 0, 0, 0, 9, 42],
                priority: 3,
            },
            Action::SendRaw {
                client: 0,
                frame: vec![1, 2, 3],
                priority: 0,
            },
            Action::Serve { steps: 7 },
            Action::Read {
                client: 1,
                max: 3,
                wait_ms: Some(5),
            },
            Action::Read {
                client: 0,
                max: 3,
                wait_ms: None,
            },
            Action::Advance { ms: 100 },
            Action::Send {
                client: 0,
                cmd: Cmd::Get { key: 1 },
                urgent: false,
            },
            Action::Serve { steps: 0 },
        ],
    }
}
