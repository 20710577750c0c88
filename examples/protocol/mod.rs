//! A small request/response key-value service over POSIX message queues,
//! written once for any backend: the worked example of `docs/fuzzing.md`.
//!
//! Not an example of its own: `examples/protocol_server.rs` runs it (over the
//! twin, or the kernel with `--kernel`), and the `protocol_handler` fuzz
//! target and `tests/fuzz_regressions.rs` include it with
//! `#[path = "../../examples/protocol/mod.rs"] mod protocol;` and drive it
//! through a twin with virtual time and injected faults. Nothing here knows
//! which backend it talks to.
//!
//! # The service
//!
//! - One **request queue**, `<prefix>.req` (default `/svc.req`), created by
//!   the [`Server`]. Every client writes framed commands to it.
//! - One **reply queue** per client, `<prefix>.reply.<client id>`, created by
//!   the [`Client`] when it connects and unlinked when it disconnects. The
//!   server opens it for each reply.
//! - Commands: `PING`, `PUT key value [ttl]`, `GET key`, `DEL key`,
//!   `SHUTDOWN` ([`Command`]). Keys expire `ttl` milliseconds after the PUT
//!   was served, measured on the queue's clock (virtual under a twin built
//!   with virtual time).
//! - **Urgent** requests are sent with [`URGENT_PRIORITY`], others with
//!   [`NORMAL_PRIORITY`]; the queue hands out the highest priority first, so
//!   urgent requests waiting in the queue overtake normal ones. A reply
//!   carries its request's priority, so urgent answers overtake too.
//!
//! # What the server promises (the invariants the fuzzer checks)
//!
//! - A frame that does not decode never causes a panic: if its header names
//!   a client, that client gets a [`Status::BadRequest`] reply; otherwise
//!   (too short, wrong magic) it is counted in [`Stats::unaddressable`].
//! - Every addressable request gets **exactly one reply or one counted
//!   drop**: a reply queue that stays full for [`Config::reply_timeout`] (or
//!   at once with [`Config::nonblocking_replies`]) counts in
//!   [`Stats::dropped_full`], a missing reply queue in
//!   [`Stats::dropped_no_queue`], any other failure in
//!   [`Stats::dropped_error`]. The server never blocks on a client forever.
//! - Calls failing with [`Error::Interrupted`] or [`Error::OutOfMemory`]
//!   are retried (up to [`Config::max_retries`] times, counted in
//!   [`Stats::retries`]); a request taken from the queue is always answered
//!   or dropped, never lost.
//! - After `SHUTDOWN` the server answers what is already queued with
//!   [`Status::ShuttingDown`], then stops.
//!
//! # Wire format
//!
//! Requests (all integers big-endian):
//!
//! | bytes | field |
//! |---|---|
//! | 0 | magic `b'Q'` |
//! | 1 | version, 1 |
//! | 2..4 | client id (`u16`): the reply goes to `<prefix>.reply.<id>` |
//! | 4..8 | request id (`u32`), echoed in the reply |
//! | 8 | opcode: 1 PING, 2 PUT, 3 GET, 4 DEL, 5 SHUTDOWN |
//! | 9 | key length (≤ [`MAX_KEY_LEN`]) |
//! | 10..12 | value length (≤ [`MAX_VALUE_LEN`]) |
//! | 12..16 | TTL in milliseconds (PUT only; 0 = never expires) |
//! | 16.. | key, then value; nothing after |
//!
//! Replies: magic `b'R'`, version 1, request id (`u32`), status (`u8`),
//! value length (`u16`), value.

// Each user of this module uses part of it (the fuzz target never calls
// `Server::run`), so unused items are expected here.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, SystemTime};

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, Received};

/// First byte of every request frame.
pub const REQUEST_MAGIC: u8 = b'Q';
/// First byte of every reply frame.
pub const REPLY_MAGIC: u8 = b'R';
/// The protocol version both frame kinds carry in their second byte.
pub const VERSION: u8 = 1;
/// Bytes of a request before its key.
pub const REQUEST_HEADER_LEN: usize = 16;
/// Bytes of a reply before its value.
pub const REPLY_HEADER_LEN: usize = 9;
/// Bytes of the header that must be intact for the server to know whom to
/// answer: magic, version, client id, request id.
pub const ADDRESS_LEN: usize = 8;
/// Longest key.
pub const MAX_KEY_LEN: usize = 64;
/// Longest value.
pub const MAX_VALUE_LEN: usize = 256;
/// Longest well-formed request frame.
pub const MAX_REQUEST_LEN: usize = REQUEST_HEADER_LEN + MAX_KEY_LEN + MAX_VALUE_LEN;
/// Longest reply frame, and the message size of every reply queue.
pub const MAX_REPLY_LEN: usize = REPLY_HEADER_LEN + MAX_VALUE_LEN;
/// Message size of the request queue: larger than [`MAX_REQUEST_LEN`] on
/// purpose, so an oversized frame reaches the server and is answered with
/// [`Status::BadRequest`] instead of failing in the client's send.
pub const REQUEST_QUEUE_MSG_LEN: usize = 512;
/// Priority of ordinary requests (and their replies).
pub const NORMAL_PRIORITY: u32 = 1;
/// Priority of urgent requests (and their replies). Any priority at or
/// above it counts as urgent in [`Stats::urgent`].
pub const URGENT_PRIORITY: u32 = 10;

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// Is the server alive? Answered with `OK "pong"`.
    Ping,
    /// Store `value` under `key`, replacing any previous value. With a
    /// non-zero `ttl_ms` the entry expires that many milliseconds after the
    /// server handled the PUT.
    Put {
        /// 1..=[`MAX_KEY_LEN`] bytes.
        key: Vec<u8>,
        /// 0..=[`MAX_VALUE_LEN`] bytes.
        value: Vec<u8>,
        /// Time to live in milliseconds; 0 keeps the entry forever.
        ttl_ms: u32,
    },
    /// The value under `key`: `OK value`, or `NOT_FOUND`.
    Get {
        /// 1..=[`MAX_KEY_LEN`] bytes.
        key: Vec<u8>,
    },
    /// Remove `key`: `OK` if it was there, `NOT_FOUND` otherwise.
    Del {
        /// 1..=[`MAX_KEY_LEN`] bytes.
        key: Vec<u8>,
    },
    /// Stop the server: answered `OK`; requests already queued are answered
    /// with [`Status::ShuttingDown`], then the server stops.
    Shutdown,
}

impl Command {
    fn opcode(&self) -> u8 {
        match self {
            Command::Ping => 1,
            Command::Put { .. } => 2,
            Command::Get { .. } => 3,
            Command::Del { .. } => 4,
            Command::Shutdown => 5,
        }
    }
}

impl fmt::Display for Command {
    /// `PING`, `PUT key "value" [ttl 500ms]`, `GET key`, `DEL key`,
    /// `SHUTDOWN`, with keys and values shown as lossy UTF-8.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Command::Ping => f.write_str("PING"),
            Command::Put { key, value, ttl_ms } => {
                write!(f, "PUT {} {:?}", text(key), text(value))?;
                if *ttl_ms != 0 {
                    write!(f, " ttl {ttl_ms}ms")?;
                }
                Ok(())
            }
            Command::Get { key } => write!(f, "GET {}", text(key)),
            Command::Del { key } => write!(f, "DEL {}", text(key)),
            Command::Shutdown => f.write_str("SHUTDOWN"),
        }
    }
}

/// A request: who asks (`client`, which names the reply queue), its id (the
/// reply echoes it) and the command.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    /// The client id: replies go to `<prefix>.reply.<client>`.
    pub client: u16,
    /// Chosen by the client; echoed in the reply.
    pub id: u32,
    /// What to do.
    pub command: Command,
}

/// Why a request frame was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// The opcode byte names no command.
    UnknownOpcode(u8),
    /// The frame's length is not the header plus the key and value lengths
    /// it announces.
    LengthMismatch,
    /// The key is longer than [`MAX_KEY_LEN`].
    KeyTooLong,
    /// The value is longer than [`MAX_VALUE_LEN`].
    ValueTooLong,
    /// PUT, GET and DEL need a key.
    MissingKey,
    /// PING and SHUTDOWN take no key.
    UnexpectedKey,
    /// Only PUT takes a value.
    UnexpectedValue,
    /// Only PUT takes a TTL.
    UnexpectedTtl,
}

/// A request frame that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Malformed {
    /// Shorter than [`ADDRESS_LEN`] or with the wrong magic or version:
    /// nothing in it can be trusted, not even whom to answer.
    Unaddressable,
    /// The address is intact but the rest is not: the client gets a
    /// [`Status::BadRequest`] reply.
    Invalid {
        /// The client the frame claims to come from.
        client: u16,
        /// The request id to echo.
        id: u32,
        /// What is wrong.
        problem: Problem,
    },
}

impl Request {
    /// The frame of this request. Panics if the key or value is too long
    /// (a caller's bug: use [`Request::try_encode`] for untrusted data).
    pub fn encode(&self) -> Vec<u8> {
        self.try_encode().expect("key or value too long")
    }

    /// The frame of this request, or `None` if its key or value is too long.
    pub fn try_encode(&self) -> Option<Vec<u8>> {
        let (key, value, ttl_ms): (&[u8], &[u8], u32) = match &self.command {
            Command::Ping | Command::Shutdown => (&[], &[], 0),
            Command::Put { key, value, ttl_ms } => (key, value, *ttl_ms),
            Command::Get { key } | Command::Del { key } => (key, &[], 0),
        };
        if key.len() > MAX_KEY_LEN || value.len() > MAX_VALUE_LEN {
            return None;
        }
        let mut f = Vec::with_capacity(REQUEST_HEADER_LEN + key.len() + value.len());
        f.extend_from_slice(&[REQUEST_MAGIC, VERSION]);
        f.extend_from_slice(&self.client.to_be_bytes());
        f.extend_from_slice(&self.id.to_be_bytes());
        f.push(self.command.opcode());
        f.push(key.len() as u8);
        f.extend_from_slice(&(value.len() as u16).to_be_bytes());
        f.extend_from_slice(&ttl_ms.to_be_bytes());
        f.extend_from_slice(key);
        f.extend_from_slice(value);
        Some(f)
    }

    /// Decodes a frame. Total: any byte string gives a request or says why
    /// not, and every accepted frame is exactly what [`Request::encode`]
    /// makes of the result (one encoding per request).
    ///
    /// # Errors
    ///
    /// [`Malformed`], checked in this order: the address
    /// ([`Malformed::Unaddressable`]), then the opcode, the header length,
    /// the key and value limits, the total length, and which fields the
    /// command takes.
    pub fn decode(frame: &[u8]) -> Result<Request, Malformed> {
        if frame.len() < ADDRESS_LEN || frame[0] != REQUEST_MAGIC || frame[1] != VERSION {
            return Err(Malformed::Unaddressable);
        }
        let client = u16::from_be_bytes([frame[2], frame[3]]);
        let id = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let bad = |problem| {
            Err(Malformed::Invalid {
                client,
                id,
                problem,
            })
        };
        let Some(&opcode) = frame.get(8) else {
            return bad(Problem::LengthMismatch);
        };
        if !(1..=5).contains(&opcode) {
            return bad(Problem::UnknownOpcode(opcode));
        }
        if frame.len() < REQUEST_HEADER_LEN {
            return bad(Problem::LengthMismatch);
        }
        let key_len = usize::from(frame[9]);
        let value_len = usize::from(u16::from_be_bytes([frame[10], frame[11]]));
        let ttl_ms = u32::from_be_bytes([frame[12], frame[13], frame[14], frame[15]]);
        if key_len > MAX_KEY_LEN {
            return bad(Problem::KeyTooLong);
        }
        if value_len > MAX_VALUE_LEN {
            return bad(Problem::ValueTooLong);
        }
        if frame.len() != REQUEST_HEADER_LEN + key_len + value_len {
            return bad(Problem::LengthMismatch);
        }
        let key = &frame[REQUEST_HEADER_LEN..REQUEST_HEADER_LEN + key_len];
        let value = &frame[REQUEST_HEADER_LEN + key_len..];
        let takes_key = matches!(opcode, 2..=4);
        if takes_key && key.is_empty() {
            return bad(Problem::MissingKey);
        }
        if !takes_key && !key.is_empty() {
            return bad(Problem::UnexpectedKey);
        }
        if opcode != 2 && !value.is_empty() {
            return bad(Problem::UnexpectedValue);
        }
        if opcode != 2 && ttl_ms != 0 {
            return bad(Problem::UnexpectedTtl);
        }
        let command = match opcode {
            1 => Command::Ping,
            2 => Command::Put {
                key: key.to_vec(),
                value: value.to_vec(),
                ttl_ms,
            },
            3 => Command::Get { key: key.to_vec() },
            4 => Command::Del { key: key.to_vec() },
            _ => Command::Shutdown,
        };
        Ok(Request {
            client,
            id,
            command,
        })
    }
}

/// How the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Done (GET: the value follows).
    Ok,
    /// GET or DEL of a key that is not there (or has expired).
    NotFound,
    /// The frame did not decode ([`Malformed::Invalid`]).
    BadRequest,
    /// The server is shutting down and did not execute the request.
    ShuttingDown,
}

impl Status {
    fn code(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::NotFound => 1,
            Status::BadRequest => 2,
            Status::ShuttingDown => 3,
        }
    }

    fn from_code(code: u8) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::NotFound,
            2 => Status::BadRequest,
            3 => Status::ShuttingDown,
            _ => return None,
        })
    }
}

/// A reply: the request id it answers, a status and a value (GET, PING).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reply {
    /// The id of the request answered.
    pub id: u32,
    /// The outcome.
    pub status: Status,
    /// The value (GET), `b"pong"` (PING), or empty.
    pub value: Vec<u8>,
}

impl Reply {
    fn new(id: u32, status: Status) -> Reply {
        Reply {
            id,
            status,
            value: Vec::new(),
        }
    }

    /// The frame of this reply (at most [`MAX_REPLY_LEN`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.value.len() <= MAX_VALUE_LEN, "reply value too long");
        let mut f = Vec::with_capacity(REPLY_HEADER_LEN + self.value.len());
        f.extend_from_slice(&[REPLY_MAGIC, VERSION]);
        f.extend_from_slice(&self.id.to_be_bytes());
        f.push(self.status.code());
        f.extend_from_slice(&(self.value.len() as u16).to_be_bytes());
        f.extend_from_slice(&self.value);
        f
    }

    /// Decodes a reply frame; `None` if it is not one.
    pub fn decode(frame: &[u8]) -> Option<Reply> {
        if frame.len() < REPLY_HEADER_LEN || frame[0] != REPLY_MAGIC || frame[1] != VERSION {
            return None;
        }
        let id = u32::from_be_bytes([frame[2], frame[3], frame[4], frame[5]]);
        let status = Status::from_code(frame[6])?;
        let len = usize::from(u16::from_be_bytes([frame[7], frame[8]]));
        (frame.len() == REPLY_HEADER_LEN + len && len <= MAX_VALUE_LEN).then(|| Reply {
            id,
            status,
            value: frame[REPLY_HEADER_LEN..].to_vec(),
        })
    }
}

// ---------------------------------------------------------------------------
// Configuration and shared helpers
// ---------------------------------------------------------------------------

/// The service's settings, shared by the server and its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Queue names start with this (`/svc`): `<prefix>.req` and
    /// `<prefix>.reply.<client id>`.
    pub prefix: String,
    /// Capacity of the request queue (≤ `msg_max`, 10 by default).
    pub request_capacity: usize,
    /// Capacity of each client's reply queue.
    pub reply_capacity: usize,
    /// How long [`Server::serve_one`] waits for a request before returning
    /// [`Step::Idle`] (blocking request handle only).
    pub idle_timeout: Duration,
    /// How long the server waits for room in a full reply queue before
    /// dropping the reply.
    pub reply_timeout: Duration,
    /// How long a client waits for room in a full request queue.
    pub request_timeout: Duration,
    /// Open reply queues non-blocking: a full reply queue drops the reply at
    /// once instead of waiting up to `reply_timeout`.
    pub nonblocking_replies: bool,
    /// How many times a call failing with [`Error::Interrupted`] or
    /// [`Error::OutOfMemory`] is retried before giving up.
    pub max_retries: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            prefix: "/svc".to_owned(),
            request_capacity: 10,
            reply_capacity: 10,
            idle_timeout: Duration::from_millis(100),
            reply_timeout: Duration::from_millis(50),
            request_timeout: Duration::from_secs(1),
            nonblocking_replies: false,
            max_retries: 3,
        }
    }
}

impl Config {
    /// The request queue's name.
    pub fn request_queue(&self) -> String {
        format!("{}.req", self.prefix)
    }

    /// The name of `client`'s reply queue.
    pub fn reply_queue(&self, client: u16) -> String {
        format!("{}.reply.{client}", self.prefix)
    }
}

/// Failures worth retrying at once: a signal interrupted the call, or the
/// kernel could not allocate memory for it. Neither changed any state.
pub fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Interrupted | Error::OutOfMemory)
}

/// Runs `call`, retrying transient failures up to `max_retries` times;
/// `retries` counts the retries made.
fn retrying<T>(
    max_retries: u32,
    retries: &mut u64,
    mut call: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut left = max_retries;
    loop {
        match call() {
            Err(e) if is_transient(&e) && left > 0 => {
                left -= 1;
                *retries += 1;
            }
            r => return r,
        }
    }
}

/// `now + d`, or no deadline when that overflows.
fn deadline_after(now: SystemTime, d: Duration) -> Option<SystemTime> {
    now.checked_add(d)
}

// ---------------------------------------------------------------------------
// The key-value store
// ---------------------------------------------------------------------------

/// The server's state: keys with values and optional expiry times.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Store {
    entries: BTreeMap<Vec<u8>, (Vec<u8>, Option<SystemTime>)>,
}

impl Store {
    fn live(expires: Option<SystemTime>, now: SystemTime) -> bool {
        expires.is_none_or(|t| now < t)
    }

    /// Stores `value` under `key`, expiring at `expires` (if any).
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>, expires: Option<SystemTime>) {
        self.entries.insert(key, (value, expires));
    }

    /// The value under `key` at time `now`.
    pub fn get(&self, key: &[u8], now: SystemTime) -> Option<&[u8]> {
        match self.entries.get(key) {
            Some((v, exp)) if Self::live(*exp, now) => Some(v),
            _ => None,
        }
    }

    /// Removes `key`; whether it was there (and alive) at `now`.
    pub fn del(&mut self, key: &[u8], now: SystemTime) -> bool {
        self.entries
            .remove(key)
            .is_some_and(|(_, exp)| Self::live(exp, now))
    }

    /// Drops expired entries (memory only: lookups already ignore them).
    pub fn purge(&mut self, now: SystemTime) {
        self.entries.retain(|_, (_, exp)| Self::live(*exp, now));
    }

    /// The entries alive at `now`.
    pub fn snapshot(&self, now: SystemTime) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.entries
            .iter()
            .filter(|(_, (_, exp))| Self::live(*exp, now))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/// What the server counted. Every addressable frame taken from the queue
/// ends in exactly one of `replies_sent`, `dropped_full`,
/// `dropped_no_queue` and `dropped_error`; every unaddressable one in
/// `unaddressable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames taken from the request queue.
    pub received: u64,
    /// Of those, sent with a priority ≥ [`URGENT_PRIORITY`].
    pub urgent: u64,
    /// Frames that did not decode (answered with `BAD_REQUEST` when
    /// addressable).
    pub malformed: u64,
    /// Malformed frames with no usable address: nobody to answer.
    pub unaddressable: u64,
    /// Replies delivered to a reply queue.
    pub replies_sent: u64,
    /// Replies dropped because the reply queue stayed full.
    pub dropped_full: u64,
    /// Replies dropped because the client's reply queue does not exist.
    pub dropped_no_queue: u64,
    /// Replies dropped for any other error (after retries).
    pub dropped_error: u64,
    /// Calls retried after [`Error::Interrupted`] or [`Error::OutOfMemory`].
    pub retries: u64,
}

/// Why a reply was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DropReason {
    /// The reply queue stayed full ([`Error::WouldBlock`] or
    /// [`Error::TimedOut`]).
    QueueFull,
    /// The client's reply queue does not exist (it disconnected, or never
    /// was).
    NoReplyQueue,
    /// Opening the reply queue failed otherwise.
    OpenFailed(Error),
    /// Sending the reply failed otherwise (retries exhausted included).
    SendFailed(Error),
}

/// What happened to the reply of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// In the client's reply queue.
    Sent,
    /// Not delivered, and counted.
    Dropped(DropReason),
    /// The frame named nobody to answer.
    Unaddressable,
}

/// One frame the server handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The server's clock when it handled the frame (TTLs count from here).
    pub at: SystemTime,
    /// The priority the frame was sent with (the reply's priority).
    pub priority: u32,
    /// The decoded request, or why it did not decode.
    pub request: Result<Request, Malformed>,
    /// The answer, if the frame was addressable.
    pub reply: Option<Reply>,
    /// Where the answer went.
    pub delivery: Delivery,
}

/// The result of [`Server::serve_one`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No request arrived in time (or the handle is non-blocking and the
    /// queue is empty).
    Idle,
    /// One frame was handled.
    Served(Box<Served>),
    /// The server was shut down and has answered everything that was queued.
    Stopped,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// SHUTDOWN received: answering what is queued, without waiting.
    Draining,
    Stopped,
}

/// The server: owns the request queue, the store and the counters.
pub struct Server<N: Namespace> {
    ns: N,
    config: Config,
    requests: N::Queue,
    store: Store,
    stats: Stats,
    state: State,
    buf: Vec<u8>,
}

impl<N: Namespace> fmt::Debug for Server<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<N: Namespace> Server<N> {
    /// Creates (or reuses) the request queue and starts in the running state.
    ///
    /// # Errors
    ///
    /// Opening the request queue failed (after retrying transient failures).
    pub fn start(ns: N, config: Config) -> Result<Self, Error> {
        let opts = OpenOptions::read_only()
            .create()
            .mode(0o622)
            .capacity(config.request_capacity)
            .max_msg_len(REQUEST_QUEUE_MSG_LEN);
        let mut retries = 0;
        let requests = retrying(config.max_retries, &mut retries, || {
            ns.open(&config.request_queue(), &opts)
        })?;
        // An existing queue keeps its own message size: size the buffer
        // from the queue, not from what we would have created.
        let msg_len = requests.attributes()?.max_msg_len;
        Ok(Server {
            ns,
            config,
            requests,
            store: Store::default(),
            stats: Stats {
                retries,
                ..Stats::default()
            },
            state: State::Running,
            buf: vec![0; msg_len],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The key-value state.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The server's clock (the request queue's).
    pub fn now(&self) -> SystemTime {
        self.requests.now()
    }

    /// Requests waiting in the request queue.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::attributes`].
    pub fn queued(&self) -> Result<usize, Error> {
        Ok(self.requests.attributes()?.current_messages)
    }

    /// Whether a SHUTDOWN was served.
    pub fn is_shutting_down(&self) -> bool {
        self.state != State::Running
    }

    /// Makes the request handle non-blocking (an empty queue makes
    /// [`serve_one`](Server::serve_one) return [`Step::Idle`] at once) or
    /// blocking (it waits up to [`Config::idle_timeout`]).
    ///
    /// Returns the flag it had before.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::set_nonblocking`].
    pub fn set_nonblocking(&self, on: bool) -> Result<bool, Error> {
        self.requests.set_nonblocking(on)
    }

    /// Opens reply queues non-blocking (see [`Config::nonblocking_replies`]).
    pub fn set_nonblocking_replies(&mut self, on: bool) {
        self.config.nonblocking_replies = on;
    }

    /// Takes one frame from the request queue (the oldest of the highest
    /// priority), executes it and answers it.
    ///
    /// # Errors
    ///
    /// Only an unexpected failure of the request queue itself; everything
    /// about a client (bad frame, missing or full reply queue) is counted,
    /// not returned.
    pub fn serve_one(&mut self) -> Result<Step, Error> {
        let received = match self.state {
            State::Stopped => return Ok(Step::Stopped),
            State::Draining => match self.requests.try_receive(&mut self.buf) {
                Ok(r) => r,
                Err(Error::WouldBlock) => {
                    self.state = State::Stopped;
                    return Ok(Step::Stopped);
                }
                Err(e) => return Err(e),
            },
            State::Running => {
                let deadline = deadline_after(self.requests.now(), self.config.idle_timeout);
                let (requests, buf) = (&self.requests, &mut self.buf);
                match retrying(self.config.max_retries, &mut self.stats.retries, || {
                    requests.receive_deadline(buf, deadline)
                }) {
                    Ok(r) => r,
                    Err(Error::WouldBlock | Error::TimedOut | Error::Interrupted) => {
                        // Nothing to do: a good moment to forget expired keys.
                        self.store.purge(self.requests.now());
                        return Ok(Step::Idle);
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(Step::Served(Box::new(self.handle(received))))
    }

    /// Serves until shut down (and drained).
    ///
    /// # Errors
    ///
    /// As [`serve_one`](Server::serve_one).
    pub fn run(&mut self) -> Result<Stats, Error> {
        loop {
            if self.serve_one()? == Step::Stopped {
                return Ok(self.stats);
            }
        }
    }

    /// Unlinks the request queue: clients can no longer reach this server.
    ///
    /// # Errors
    ///
    /// As [`Namespace::unlink`].
    pub fn close(self) -> Result<(), Error> {
        self.ns.unlink(&self.config.request_queue())
    }

    fn handle(&mut self, r: Received) -> Served {
        let at = self.requests.now();
        self.stats.received += 1;
        if r.priority >= URGENT_PRIORITY {
            self.stats.urgent += 1;
        }
        let request = Request::decode(&self.buf[..r.len]);
        let (client, reply) = match &request {
            Ok(req) => (Some(req.client), Some(self.execute(req, at))),
            Err(Malformed::Invalid { client, id, .. }) => {
                self.stats.malformed += 1;
                (Some(*client), Some(Reply::new(*id, Status::BadRequest)))
            }
            Err(Malformed::Unaddressable) => {
                self.stats.malformed += 1;
                self.stats.unaddressable += 1;
                (None, None)
            }
        };
        let delivery = match (client, &reply) {
            (Some(client), Some(reply)) => self.deliver(client, &reply.encode(), r.priority),
            _ => Delivery::Unaddressable,
        };
        Served {
            at,
            priority: r.priority,
            request,
            reply,
            delivery,
        }
    }

    fn execute(&mut self, req: &Request, now: SystemTime) -> Reply {
        if self.state != State::Running {
            return Reply::new(req.id, Status::ShuttingDown);
        }
        let found = |found: bool| if found { Status::Ok } else { Status::NotFound };
        match &req.command {
            Command::Ping => Reply {
                id: req.id,
                status: Status::Ok,
                value: b"pong".to_vec(),
            },
            Command::Put { key, value, ttl_ms } => {
                let expires = match ttl_ms {
                    0 => None,
                    ms => deadline_after(now, Duration::from_millis(u64::from(*ms))),
                };
                self.store.put(key.clone(), value.clone(), expires);
                Reply::new(req.id, Status::Ok)
            }
            Command::Get { key } => match self.store.get(key, now) {
                Some(v) => Reply {
                    id: req.id,
                    status: Status::Ok,
                    value: v.to_vec(),
                },
                None => Reply::new(req.id, Status::NotFound),
            },
            Command::Del { key } => Reply::new(req.id, found(self.store.del(key, now))),
            Command::Shutdown => {
                self.state = State::Draining;
                Reply::new(req.id, Status::Ok)
            }
        }
    }

    /// Sends `frame` to `client`'s reply queue, never waiting longer than
    /// the reply timeout. The queue is opened per reply, so a client that
    /// disconnects and reconnects (a new queue under the same name) is
    /// always answered on its current queue.
    fn deliver(&mut self, client: u16, frame: &[u8], priority: u32) -> Delivery {
        let mut opts = OpenOptions::write_only();
        if self.config.nonblocking_replies {
            opts = opts.nonblocking();
        }
        let name = self.config.reply_queue(client);
        let ns = &self.ns;
        let opened = retrying(self.config.max_retries, &mut self.stats.retries, || {
            ns.open(&name, &opts)
        });
        let queue = match opened {
            Ok(q) => q,
            Err(Error::NotFound { .. }) => {
                self.stats.dropped_no_queue += 1;
                return Delivery::Dropped(DropReason::NoReplyQueue);
            }
            Err(e) => {
                self.stats.dropped_error += 1;
                return Delivery::Dropped(DropReason::OpenFailed(e));
            }
        };
        // One absolute deadline for all attempts: retries never extend it.
        let deadline = deadline_after(queue.now(), self.config.reply_timeout);
        match retrying(self.config.max_retries, &mut self.stats.retries, || {
            queue.send_deadline(frame, priority, deadline)
        }) {
            Ok(()) => {
                self.stats.replies_sent += 1;
                Delivery::Sent
            }
            Err(Error::WouldBlock | Error::TimedOut) => {
                self.stats.dropped_full += 1;
                Delivery::Dropped(DropReason::QueueFull)
            }
            Err(e) => {
                self.stats.dropped_error += 1;
                Delivery::Dropped(DropReason::SendFailed(e))
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/// A client: a handle on the request queue and its own reply queue.
pub struct Client<N: Namespace> {
    ns: N,
    config: Config,
    id: u16,
    requests: N::Queue,
    replies: N::Queue,
    next_request: u32,
    retries: u64,
    buf: Vec<u8>,
}

impl<N: Namespace> fmt::Debug for Client<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .field("next_request", &self.next_request)
            .finish_non_exhaustive()
    }
}

impl<N: Namespace> Client<N> {
    /// Opens the request queue (the server must be started) and creates
    /// this client's reply queue (it must not exist).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no server runs; [`Error::AlreadyExists`]
    /// when a client with this id is connected; any other open failure
    /// (after retrying transient ones), in which case no reply queue is
    /// left behind.
    pub fn connect(ns: N, id: u16, config: &Config) -> Result<Self, Error> {
        let mut retries = 0;
        let requests = retrying(config.max_retries, &mut retries, || {
            ns.open(&config.request_queue(), &OpenOptions::write_only())
        })?;
        let opts = OpenOptions::read_only()
            .create_new()
            .mode(0o622)
            .capacity(config.reply_capacity)
            .max_msg_len(MAX_REPLY_LEN);
        let name = config.reply_queue(id);
        let replies = match retrying(config.max_retries, &mut retries, || ns.open(&name, &opts)) {
            Ok(q) => q,
            Err(e) => {
                // Linux can fail a create *after* making the queue (ENFILE
                // from the last step of `mq_open`). Do not leave it behind:
                // the server would answer into a queue nobody reads, and
                // the next connect would find the name taken.
                if !matches!(e, Error::AlreadyExists { .. }) {
                    let _ = ns.unlink(&name);
                }
                return Err(e);
            }
        };
        Ok(Client {
            ns,
            config: config.clone(),
            id,
            requests,
            replies,
            next_request: 1,
            retries,
            buf: vec![0; MAX_REPLY_LEN],
        })
    }

    /// This client's id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The id the next [`send`](Client::send) will use.
    pub fn next_request_id(&self) -> u32 {
        self.next_request
    }

    /// Calls retried after transient failures.
    pub fn retries(&self) -> u64 {
        self.retries
    }

    /// Replies waiting in this client's reply queue.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::attributes`].
    pub fn queued_replies(&self) -> Result<usize, Error> {
        Ok(self.replies.attributes()?.current_messages)
    }

    /// Makes the request handle non-blocking (a full request queue fails at
    /// once with [`Error::WouldBlock`]) or blocking (waits up to
    /// [`Config::request_timeout`]).
    ///
    /// Returns the flag it had before.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::set_nonblocking`].
    pub fn set_nonblocking_requests(&self, on: bool) -> Result<bool, Error> {
        self.requests.set_nonblocking(on)
    }

    /// Makes the reply handle non-blocking or blocking (see
    /// [`wait_reply`](Client::wait_reply)).
    ///
    /// Returns the flag it had before.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::set_nonblocking`].
    pub fn set_nonblocking_replies(&self, on: bool) -> Result<bool, Error> {
        self.replies.set_nonblocking(on)
    }

    /// Sends `command` (urgent: with [`URGENT_PRIORITY`]) and returns the
    /// request id the reply will carry. Waits at most
    /// [`Config::request_timeout`] for room in the request queue.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLong`] if the key or value is too long;
    /// [`Error::TimedOut`] / [`Error::WouldBlock`] when the request queue
    /// stayed full; any other send failure (after retrying transient ones).
    pub fn send(&mut self, command: Command, urgent: bool) -> Result<u32, Error> {
        let id = self.next_request;
        self.next_request = self.next_request.wrapping_add(1);
        let request = Request {
            client: self.id,
            id,
            command,
        };
        let Some(frame) = request.try_encode() else {
            let len = match &request.command {
                Command::Put { key, value, .. } => REQUEST_HEADER_LEN + key.len() + value.len(),
                Command::Get { key } | Command::Del { key } => REQUEST_HEADER_LEN + key.len(),
                Command::Ping | Command::Shutdown => REQUEST_HEADER_LEN,
            };
            return Err(Error::MessageTooLong {
                len,
                limit: MAX_REQUEST_LEN,
            });
        };
        let priority = if urgent {
            URGENT_PRIORITY
        } else {
            NORMAL_PRIORITY
        };
        self.send_frame(&frame, priority)?;
        Ok(id)
    }

    /// Sends any frame with any priority, as [`send`](Client::send) does:
    /// for tests that need malformed requests.
    ///
    /// # Errors
    ///
    /// As [`send`](Client::send), plus [`Error::InvalidPriority`].
    pub fn send_frame(&mut self, frame: &[u8], priority: u32) -> Result<(), Error> {
        let deadline = deadline_after(self.requests.now(), self.config.request_timeout);
        let requests = &self.requests;
        retrying(self.config.max_retries, &mut self.retries, || {
            requests.send_deadline(frame, priority, deadline)
        })
    }

    /// The next reply if one is waiting, with its priority.
    ///
    /// # Errors
    ///
    /// A receive failure, or [`Error::Os`] (`EBADMSG`) for a frame that is
    /// not a reply.
    pub fn try_reply(&mut self) -> Result<Option<(Reply, u32)>, Error> {
        self.reply_until(Some(std::time::UNIX_EPOCH))
    }

    /// The next reply, waiting at most `timeout` (a non-blocking reply
    /// handle does not wait); `None` if none came.
    ///
    /// # Errors
    ///
    /// As [`try_reply`](Client::try_reply).
    pub fn wait_reply(&mut self, timeout: Duration) -> Result<Option<(Reply, u32)>, Error> {
        self.reply_until(deadline_after(self.replies.now(), timeout))
    }

    fn reply_until(&mut self, deadline: Option<SystemTime>) -> Result<Option<(Reply, u32)>, Error> {
        let (replies, buf) = (&self.replies, &mut self.buf);
        match retrying(self.config.max_retries, &mut self.retries, || {
            replies.receive_deadline(buf, deadline)
        }) {
            Ok(r) => Reply::decode(&self.buf[..r.len])
                .map(|reply| Some((reply, r.priority)))
                .ok_or(Error::Os { errno: 74 }), // EBADMSG
            Err(Error::WouldBlock | Error::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `command` and waits up to `timeout` for its reply, discarding
    /// replies to earlier requests (answers that came too late).
    ///
    /// # Errors
    ///
    /// As [`send`](Client::send); [`Error::TimedOut`] when no reply came.
    pub fn call(
        &mut self,
        command: Command,
        urgent: bool,
        timeout: Duration,
    ) -> Result<Reply, Error> {
        let id = self.send(command, urgent)?;
        let deadline = deadline_after(self.replies.now(), timeout);
        loop {
            match self.reply_until(deadline)? {
                Some((reply, _)) if reply.id == id => return Ok(reply),
                Some(_) => continue,
                None => return Err(Error::TimedOut),
            }
        }
    }

    /// Unlinks this client's reply queue: replies still on their way are
    /// dropped by the server (counted in [`Stats::dropped_no_queue`]).
    ///
    /// # Errors
    ///
    /// As [`Namespace::unlink`].
    pub fn disconnect(self) -> Result<(), Error> {
        self.ns.unlink(&self.config.reply_queue(self.id))
    }
}
