//! A small request/response key-value service over POSIX message queues,
//! written once for any backend: the worked example of `docs/fuzzing.md`.
//!
//! Not an example of its own: `examples/protocol_server.rs` runs it (over a
//! deterministic twin, or the kernel with `--kernel`), and the
//! `protocol_kit` fuzz target (`examples/protocol/kit.rs`, also run
//! by `tests/fuzzkit.rs`) fuzzes it with `mqtwin::fuzzkit`. Nothing here
//! knows which backend it talks to.
//!
//! # The service
//!
//! - One **request queue**, `<prefix>.req`, created by the [`Server`];
//!   every client writes framed commands to it.
//! - One **reply queue** per client, `<prefix>.reply.<client id>`, created
//!   by the [`Client`] when it connects, unlinked when it disconnects, and
//!   opened by the server for each reply.
//! - Commands ([`Command`]): `PING`, `PUT key value [ttl]`, `GET key`,
//!   `DEL key`, `SHUTDOWN`. A TTL runs on the queue's clock (virtual under
//!   a twin).
//! - **Urgent** requests go with [`URGENT_PRIORITY`], others with
//!   [`NORMAL_PRIORITY`]; the queue hands out the highest priority first,
//!   and a reply carries its request's priority, so urgent answers overtake
//!   too.
//!
//! # What the server promises (what the fuzz model checks)
//!
//! - A frame that does not decode never causes a panic: if its header
//!   names a client, that client gets [`Status::BadRequest`]; otherwise it
//!   is counted in [`Stats::unaddressable`].
//! - Every addressable frame gets **exactly one reply or one counted drop**
//!   ([`Delivery`]): a reply queue full for [`Config::reply_timeout`] (at
//!   once with [`Config::nonblocking_replies`]), missing, or failing. The
//!   server never blocks on a client forever.
//! - [`Error::Interrupted`] and [`Error::OutOfMemory`] are retried (up to
//!   [`Config::max_retries`] times): a frame taken from the queue is always
//!   answered or dropped, never lost.
//! - After `SHUTDOWN` the server answers what is already queued with
//!   [`Status::ShuttingDown`], then stops.
//!
//! # Wire format (integers big-endian)
//!
//! Request: magic `b'Q'`, version 1, client id `u16`, request id `u32`,
//! opcode `u8` (1 PING, 2 PUT, 3 GET, 4 DEL, 5 SHUTDOWN), key length `u8`
//! (≤ [`MAX_KEY_LEN`]), value length `u16` (≤ [`MAX_VALUE_LEN`]), TTL in
//! ms `u32` (PUT only; 0 = forever), key, value, nothing after. The first 8
//! bytes are the *address*: whom to answer, with which id.
//!
//! Reply: magic `b'R'`, version 1, request id `u32`, status `u8`, value
//! length `u16`, value.

// Each user of this module uses part of it.
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
/// Bytes that must be intact for the server to know whom to answer.
pub const ADDRESS_LEN: usize = 8;
/// Longest key.
pub const MAX_KEY_LEN: usize = 64;
/// Longest value.
pub const MAX_VALUE_LEN: usize = 256;
/// Longest reply frame: the message size of every reply queue.
pub const MAX_REPLY_LEN: usize = REPLY_HEADER_LEN + MAX_VALUE_LEN;
/// Message size of the request queue: larger than the longest well-formed
/// request on purpose, so an oversized frame reaches the server and is
/// answered [`Status::BadRequest`].
pub const REQUEST_QUEUE_MSG_LEN: usize = 512;
/// Priority of ordinary requests (and their replies).
pub const NORMAL_PRIORITY: u32 = 1;
/// Priority of urgent requests (and their replies).
pub const URGENT_PRIORITY: u32 = 10;

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Answered `OK "pong"`.
    Ping,
    /// Store `value` under `key`; a non-zero `ttl_ms` expires it that long
    /// after the server handled the PUT.
    Put {
        /// 1..=[`MAX_KEY_LEN`] bytes.
        key: Vec<u8>,
        /// 0..=[`MAX_VALUE_LEN`] bytes.
        value: Vec<u8>,
        /// Time to live in milliseconds; 0 keeps the entry forever.
        ttl_ms: u32,
    },
    /// `OK value`, or `NOT_FOUND`.
    Get {
        /// The key.
        key: Vec<u8>,
    },
    /// `OK` if the key was there, `NOT_FOUND` otherwise.
    Del {
        /// The key.
        key: Vec<u8>,
    },
    /// Stop the server (see the module docs).
    Shutdown,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self {
            Command::Ping => f.write_str("PING"),
            Command::Put { key, value, ttl_ms } => {
                write!(f, "PUT {} {:?} ttl {ttl_ms}ms", text(key), text(value))
            }
            Command::Get { key } => write!(f, "GET {}", text(key)),
            Command::Del { key } => write!(f, "DEL {}", text(key)),
            Command::Shutdown => f.write_str("SHUTDOWN"),
        }
    }
}

/// A request: who asks (naming the reply queue), its id, the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Replies go to `<prefix>.reply.<client>`.
    pub client: u16,
    /// Echoed in the reply.
    pub id: u32,
    /// What to do.
    pub command: Command,
}

/// A request frame that does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than [`ADDRESS_LEN`], or the wrong magic or version: not
    /// even whom to answer can be trusted.
    Unaddressable,
    /// The address is intact, the rest is not: answered `BAD_REQUEST`.
    Invalid {
        /// The client the frame names.
        client: u16,
        /// The request id to echo.
        id: u32,
        /// What is wrong.
        why: &'static str,
    },
}

impl Request {
    /// The frame of this request, or `None` if its key or value is too long.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let (op, key, value, ttl_ms): (u8, &[u8], &[u8], u32) = match &self.command {
            Command::Ping => (1, &[], &[], 0),
            Command::Put { key, value, ttl_ms } => (2, key, value, *ttl_ms),
            Command::Get { key } => (3, key, &[], 0),
            Command::Del { key } => (4, key, &[], 0),
            Command::Shutdown => (5, &[], &[], 0),
        };
        if key.len() > MAX_KEY_LEN || value.len() > MAX_VALUE_LEN {
            return None;
        }
        let mut f = vec![REQUEST_MAGIC, VERSION];
        f.extend_from_slice(&self.client.to_be_bytes());
        f.extend_from_slice(&self.id.to_be_bytes());
        f.extend_from_slice(&[op, key.len() as u8]);
        f.extend_from_slice(&(value.len() as u16).to_be_bytes());
        f.extend_from_slice(&ttl_ms.to_be_bytes());
        f.extend_from_slice(key);
        f.extend_from_slice(value);
        Some(f)
    }

    /// Decodes a frame. Total: any bytes give a request or say why not, and
    /// an accepted frame is exactly what [`Request::encode`] makes of the
    /// result (one encoding per request).
    ///
    /// # Errors
    ///
    /// [`Malformed`]: the address first, then the rest.
    pub fn decode(frame: &[u8]) -> Result<Request, Malformed> {
        if frame.len() < ADDRESS_LEN || frame[0] != REQUEST_MAGIC || frame[1] != VERSION {
            return Err(Malformed::Unaddressable);
        }
        let client = u16::from_be_bytes([frame[2], frame[3]]);
        let id = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        let bad = |why| Err(Malformed::Invalid { client, id, why });
        if frame.len() < REQUEST_HEADER_LEN {
            return bad("short header");
        }
        let (op, key_len) = (frame[8], usize::from(frame[9]));
        let value_len = usize::from(u16::from_be_bytes([frame[10], frame[11]]));
        let ttl_ms = u32::from_be_bytes([frame[12], frame[13], frame[14], frame[15]]);
        if !(1..=5).contains(&op) {
            return bad("unknown opcode");
        }
        if key_len > MAX_KEY_LEN || value_len > MAX_VALUE_LEN {
            return bad("key or value too long");
        }
        if frame.len() != REQUEST_HEADER_LEN + key_len + value_len {
            return bad("length mismatch");
        }
        let (key, value) = frame[REQUEST_HEADER_LEN..].split_at(key_len);
        let (key, value) = (key.to_vec(), value.to_vec());
        if matches!(op, 2..=4) == key.is_empty() {
            return bad("a key where none belongs, or none where one must be");
        }
        if op != 2 && (!value.is_empty() || ttl_ms != 0) {
            return bad("a value or TTL on a command other than PUT");
        }
        let command = match op {
            1 => Command::Ping,
            2 => Command::Put { key, value, ttl_ms },
            3 => Command::Get { key },
            4 => Command::Del { key },
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Done (GET: the value follows).
    Ok = 0,
    /// GET or DEL of a key that is not there (or expired).
    NotFound = 1,
    /// The frame did not decode ([`Malformed::Invalid`]).
    BadRequest = 2,
    /// Queued before a SHUTDOWN was served: not executed.
    ShuttingDown = 3,
}

/// A reply frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request's id.
    pub id: u32,
    /// The outcome.
    pub status: Status,
    /// GET's value, PING's `pong`; empty otherwise.
    pub value: Vec<u8>,
}

impl Reply {
    /// The frame of this reply.
    pub fn encode(&self) -> Vec<u8> {
        let mut f = vec![REPLY_MAGIC, VERSION];
        f.extend_from_slice(&self.id.to_be_bytes());
        f.push(self.status as u8);
        f.extend_from_slice(&(self.value.len() as u16).to_be_bytes());
        f.extend_from_slice(&self.value);
        f
    }

    /// Decodes a reply frame; `None` if it is not one.
    pub fn decode(f: &[u8]) -> Option<Reply> {
        if f.len() < REPLY_HEADER_LEN || f[0] != REPLY_MAGIC || f[1] != VERSION {
            return None;
        }
        let status = [
            Status::Ok,
            Status::NotFound,
            Status::BadRequest,
            Status::ShuttingDown,
        ]
        .get(usize::from(f[6]))
        .copied()?;
        let len = usize::from(u16::from_be_bytes([f[7], f[8]]));
        (f.len() == REPLY_HEADER_LEN + len).then(|| Reply {
            id: u32::from_be_bytes([f[2], f[3], f[4], f[5]]),
            status,
            value: f[REPLY_HEADER_LEN..].to_vec(),
        })
    }
}

/// The service's settings, shared by the server and its clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Queue names start with this: `<prefix>.req`, `<prefix>.reply.<id>`.
    pub prefix: String,
    /// Capacity of the request queue (≤ `msg_max`).
    pub request_capacity: usize,
    /// Capacity of each reply queue.
    pub reply_capacity: usize,
    /// How long [`Server::serve_one`] waits for a request before
    /// [`Step::Idle`].
    pub idle_timeout: Duration,
    /// How long the server waits for room in a full reply queue.
    pub reply_timeout: Duration,
    /// How long a client waits for room in a full request queue.
    pub request_timeout: Duration,
    /// Open reply queues non-blocking: a full one drops the reply at once.
    pub nonblocking_replies: bool,
    /// Retries of a call failing with a transient error ([`is_transient`]).
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
/// kernel lacked memory for it. Neither changed any state.
pub fn is_transient(e: &Error) -> bool {
    matches!(e, Error::Interrupted | Error::OutOfMemory)
}

/// Runs `call`, retrying transient failures up to `max` times, counting
/// the retries in `retries`.
fn retrying<T>(
    max: u32,
    retries: &mut u64,
    mut call: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut left = max;
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

/// What the server counted: every addressable frame it took ends in exactly
/// one of `replies_sent`, `dropped`; every other one in `unaddressable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames taken from the request queue.
    pub received: u64,
    /// Frames that did not decode (answered `BAD_REQUEST` if addressable).
    pub malformed: u64,
    /// Malformed frames with nobody to answer.
    pub unaddressable: u64,
    /// Replies delivered to a reply queue.
    pub replies_sent: u64,
    /// Replies not delivered ([`Delivery`] says why).
    pub dropped: u64,
    /// Calls retried after a transient failure.
    pub retries: u64,
}

/// What happened to the answer of one frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// In the client's reply queue.
    Sent,
    /// Dropped: the reply queue stayed full.
    Full,
    /// Dropped: the client's reply queue does not exist.
    NoQueue,
    /// Dropped: opening or sending failed otherwise.
    Failed(Error),
    /// Nobody to answer: the frame was [`Malformed::Unaddressable`].
    Unaddressable,
}

/// One frame the server handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// Whom it answered, and the request id: `None` if unaddressable.
    pub to: Option<(u16, u32)>,
    /// The decoded request, or why it did not decode.
    pub request: Result<Request, Malformed>,
    /// The frame's priority (the reply's).
    pub priority: u32,
    /// Where the answer went.
    pub delivery: Delivery,
}

/// The result of [`Server::serve_one`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No request came within the idle timeout.
    Idle,
    /// One frame was handled.
    Served(Box<Served>),
    /// Shut down, and everything queued was answered.
    Stopped,
}

/// The server: the request queue, the store and the counters.
pub struct Server<N: Namespace> {
    ns: N,
    config: Config,
    requests: N::Queue,
    /// Key → (value, expiry).
    store: BTreeMap<Vec<u8>, (Vec<u8>, Option<SystemTime>)>,
    stats: Stats,
    /// A SHUTDOWN was served: answering what is queued, without waiting.
    draining: bool,
    buf: Vec<u8>,
}

impl<N: Namespace> Server<N> {
    /// Creates (or reuses) the request queue.
    ///
    /// # Errors
    ///
    /// Opening it failed (after retrying transient failures).
    pub fn start(ns: N, config: Config) -> Result<Self, Error> {
        let opts = OpenOptions::read_only()
            .create()
            .mode(0o622)
            .capacity(config.request_capacity)
            .max_msg_len(REQUEST_QUEUE_MSG_LEN);
        let mut stats = Stats::default();
        let requests = retrying(config.max_retries, &mut stats.retries, || {
            ns.open(&config.request_queue(), &opts)
        })?;
        // An existing queue keeps its own message size.
        let len = requests.attributes()?.max_msg_len;
        Ok(Server {
            ns,
            config,
            requests,
            store: BTreeMap::new(),
            stats,
            draining: false,
            buf: vec![0; len],
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Takes one frame (the oldest of the highest priority), executes it and
    /// answers it.
    ///
    /// # Errors
    ///
    /// Only an unexpected failure of the request queue itself: everything
    /// about a client is counted, not returned.
    pub fn serve_one(&mut self) -> Result<Step, Error> {
        let (requests, buf) = (&self.requests, &mut self.buf);
        let received = if self.draining {
            match requests.try_receive(buf) {
                Err(Error::WouldBlock) => return Ok(Step::Stopped),
                r => r?,
            }
        } else {
            let deadline = requests.now().checked_add(self.config.idle_timeout);
            match retrying(self.config.max_retries, &mut self.stats.retries, || {
                requests.receive_deadline(buf, deadline)
            }) {
                Err(Error::WouldBlock | Error::TimedOut | Error::Interrupted) => {
                    let now = self.requests.now(); // idle: forget expired keys
                    self.store.retain(|_, (_, exp)| exp.is_none_or(|t| now < t));
                    return Ok(Step::Idle);
                }
                r => r?,
            }
        };
        Ok(Step::Served(Box::new(self.handle(received))))
    }

    /// Serves until shut down and drained.
    ///
    /// # Errors
    ///
    /// As [`serve_one`](Server::serve_one).
    pub fn run(&mut self) -> Result<Stats, Error> {
        while self.serve_one()? != Step::Stopped {}
        Ok(self.stats)
    }

    /// Unlinks the request queue.
    ///
    /// # Errors
    ///
    /// As [`Namespace::unlink`].
    pub fn close(self) -> Result<(), Error> {
        self.ns.unlink(&self.config.request_queue())
    }

    fn handle(&mut self, r: Received) -> Served {
        self.stats.received += 1;
        let request = Request::decode(&self.buf[..r.len]);
        let (to, reply) = match &request {
            Ok(req) => (Some((req.client, req.id)), self.execute(req)),
            Err(Malformed::Invalid { client, id, .. }) => {
                self.stats.malformed += 1;
                let reply = Reply {
                    id: *id,
                    status: Status::BadRequest,
                    value: Vec::new(),
                };
                (Some((*client, *id)), reply)
            }
            Err(Malformed::Unaddressable) => {
                self.stats.malformed += 1;
                self.stats.unaddressable += 1;
                let delivery = Delivery::Unaddressable;
                return Served {
                    to: None,
                    request,
                    priority: r.priority,
                    delivery,
                };
            }
        };
        let client = to.map_or(0, |(c, _)| c);
        let delivery = self.deliver(client, &reply.encode(), r.priority);
        match delivery {
            Delivery::Sent => self.stats.replies_sent += 1,
            _ => self.stats.dropped += 1,
        }
        Served {
            to,
            request,
            priority: r.priority,
            delivery,
        }
    }

    fn execute(&mut self, req: &Request) -> Reply {
        let now = self.requests.now();
        let (status, value) = match &req.command {
            _ if self.draining => (Status::ShuttingDown, Vec::new()),
            Command::Ping => (Status::Ok, b"pong".to_vec()),
            Command::Put { key, value, ttl_ms } => {
                let ttl = Duration::from_millis(u64::from(*ttl_ms));
                let expires = (*ttl_ms != 0).then(|| now.checked_add(ttl)).flatten();
                self.store.insert(key.clone(), (value.clone(), expires));
                (Status::Ok, Vec::new())
            }
            Command::Get { key } | Command::Del { key } => {
                let live = match self.store.get(key) {
                    Some((v, exp)) if exp.is_none_or(|t| now < t) => Some(v.clone()),
                    _ => None,
                };
                let is_get = matches!(req.command, Command::Get { .. });
                if !is_get {
                    self.store.remove(key);
                }
                match live {
                    Some(v) if is_get => (Status::Ok, v),
                    Some(_) => (Status::Ok, Vec::new()),
                    None => (Status::NotFound, Vec::new()),
                }
            }
            Command::Shutdown => {
                self.draining = true;
                (Status::Ok, Vec::new())
            }
        };
        Reply {
            id: req.id,
            status,
            value,
        }
    }

    /// Sends `frame` to `client`'s reply queue, waiting at most the reply
    /// timeout. Opened per reply, so a client that reconnects (a new queue
    /// under the same name) is answered on its current queue.
    fn deliver(&mut self, client: u16, frame: &[u8], priority: u32) -> Delivery {
        let mut opts = OpenOptions::write_only();
        if self.config.nonblocking_replies {
            opts = opts.nonblocking();
        }
        let (ns, name, max) = (
            &self.ns,
            self.config.reply_queue(client),
            self.config.max_retries,
        );
        let queue = match retrying(max, &mut self.stats.retries, || ns.open(&name, &opts)) {
            Ok(q) => q,
            Err(Error::NotFound { .. }) => return Delivery::NoQueue,
            Err(e) => return Delivery::Failed(e),
        };
        // One deadline for all attempts: retries never extend it.
        let deadline = queue.now().checked_add(self.config.reply_timeout);
        match retrying(max, &mut self.stats.retries, || {
            queue.send_deadline(frame, priority, deadline)
        }) {
            Ok(()) => Delivery::Sent,
            Err(Error::WouldBlock | Error::TimedOut) => Delivery::Full,
            Err(e) => Delivery::Failed(e),
        }
    }
}

/// A client: a handle on the request queue and its own reply queue.
pub struct Client<N: Namespace> {
    ns: N,
    config: Config,
    id: u16,
    requests: N::Queue,
    replies: N::Queue,
    next_request: u32,
    buf: Vec<u8>,
}

impl<N: Namespace> Client<N> {
    /// Opens the request queue (the server must be started) and creates this
    /// client's reply queue (it must not exist).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when no server runs; [`Error::AlreadyExists`]
    /// when a client with this id is connected; any other open failure
    /// (after retries), in which case no reply queue is left behind.
    pub fn connect(ns: N, id: u16, config: &Config) -> Result<Self, Error> {
        let mut retries = 0;
        let max = config.max_retries;
        let requests = retrying(max, &mut retries, || {
            ns.open(&config.request_queue(), &OpenOptions::write_only())
        })?;
        let opts = OpenOptions::read_only()
            .create_new()
            .mode(0o622)
            .capacity(config.reply_capacity)
            .max_msg_len(MAX_REPLY_LEN);
        let name = config.reply_queue(id);
        let replies = retrying(max, &mut retries, || ns.open(&name, &opts)).inspect_err(|e| {
            // Linux can fail a create *after* making the queue (ENFILE from
            // the last step of `mq_open`): leave nothing behind.
            if !matches!(e, Error::AlreadyExists { .. }) {
                let _ = ns.unlink(&name);
            }
        })?;
        Ok(Client {
            ns,
            config: config.clone(),
            id,
            requests,
            replies,
            next_request: 1,
            buf: vec![0; MAX_REPLY_LEN],
        })
    }

    /// This client's id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Sets the id the next request gets (a reconnecting client continues
    /// its numbering, so a late reply to its earlier life is recognisable).
    pub fn set_next_request_id(&mut self, id: u32) {
        self.next_request = id;
    }

    /// Makes the request handle non-blocking (a full request queue fails
    /// sends at once with [`Error::WouldBlock`]); returns the old flag.
    ///
    /// # Errors
    ///
    /// As [`MessageQueue::set_nonblocking`].
    pub fn set_nonblocking_requests(&self, on: bool) -> Result<bool, Error> {
        self.requests.set_nonblocking(on)
    }

    /// Sends `command` (urgent: with [`URGENT_PRIORITY`]); returns the request
    /// id its reply will carry.
    ///
    /// # Errors
    ///
    /// [`Error::MessageTooLong`] for a key or value over the limits; as
    /// [`send_frame`](Client::send_frame) otherwise.
    pub fn send(&mut self, command: Command, urgent: bool) -> Result<u32, Error> {
        let id = self.next_request;
        let len = match &command {
            Command::Put { key, value, .. } => REQUEST_HEADER_LEN + key.len() + value.len(),
            Command::Get { key } | Command::Del { key } => REQUEST_HEADER_LEN + key.len(),
            Command::Ping | Command::Shutdown => REQUEST_HEADER_LEN,
        };
        let request = Request {
            client: self.id,
            id,
            command,
        };
        let limit = REQUEST_HEADER_LEN + MAX_KEY_LEN + MAX_VALUE_LEN;
        let frame = request
            .encode()
            .ok_or(Error::MessageTooLong { len, limit })?;
        let priority = if urgent {
            URGENT_PRIORITY
        } else {
            NORMAL_PRIORITY
        };
        self.send_frame(&frame, priority)?;
        self.next_request = id.wrapping_add(1);
        Ok(id)
    }

    /// Sends any frame with any priority (malformed ones too), waiting at
    /// most [`Config::request_timeout`] for room.
    ///
    /// # Errors
    ///
    /// [`Error::TimedOut`] / [`Error::WouldBlock`] when the request queue
    /// stayed full; any other send failure (after retries).
    pub fn send_frame(&mut self, frame: &[u8], priority: u32) -> Result<(), Error> {
        let deadline = self.requests.now().checked_add(self.config.request_timeout);
        let (q, max) = (&self.requests, self.config.max_retries);
        retrying(max, &mut 0, || q.send_deadline(frame, priority, deadline))
    }

    /// The next reply and its priority, waiting at most `timeout`; `None`
    /// if none came.
    ///
    /// # Errors
    ///
    /// A receive failure, or [`Error::Os`] (`EBADMSG`) for a frame that is
    /// not a reply.
    pub fn wait_reply(&mut self, timeout: Duration) -> Result<Option<(Reply, u32)>, Error> {
        let deadline = self.replies.now().checked_add(timeout);
        let (q, buf, max) = (&self.replies, &mut self.buf, self.config.max_retries);
        match retrying(max, &mut 0, || q.receive_deadline(buf, deadline)) {
            Ok(r) => Reply::decode(&buf[..r.len])
                .map(|reply| Some((reply, r.priority)))
                .ok_or(Error::Os { errno: 74 }), // EBADMSG
            Err(Error::WouldBlock | Error::TimedOut) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends `command` and waits up to `timeout` for its reply, skipping
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
        let until = self.replies.now().checked_add(timeout);
        loop {
            let left = until.map_or(Duration::MAX, |t| {
                t.duration_since(self.replies.now()).unwrap_or_default()
            });
            match self.wait_reply(left)? {
                Some((reply, _)) if reply.id == id => return Ok(reply),
                Some(_) => {}
                None => return Err(Error::TimedOut),
            }
        }
    }

    /// Unlinks this client's reply queue: replies still on their way are
    /// dropped by the server ([`Delivery::NoQueue`]).
    ///
    /// # Errors
    ///
    /// As [`Namespace::unlink`].
    pub fn disconnect(self) -> Result<(), Error> {
        self.ns.unlink(&self.config.reply_queue(self.id))
    }
}
