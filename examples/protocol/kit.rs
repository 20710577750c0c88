//! The key-value service of `examples/protocol/mod.rs` under
//! `mqtwin::fuzzkit`: its client model and invariants. Included by the
//! `protocol_kit` fuzz target, `tests/fuzzkit.rs` and
//! `tests/fuzz_regressions.rs` (on stable).
//!
//! The input's first byte picks the service's [`config`] (queue sizes,
//! reply timeout, blocking or non-blocking replies, failing opens); the
//! rest is the kit's scenario. Each client request is one of: a call
//! (PING/PUT/GET/DEL on the client's own keys, normal or urgent), a burst
//! of pipelined PINGs left unread for a while (full reply queues, reply
//! timeouts), a corrupted or unaddressable frame, a switch of its request
//! handle to non-blocking, or a look for stray replies.
//!
//! Invariants, per reply: it answers a request of this client that is
//! still outstanding (never a stray, never twice), at that request's
//! priority, with the right content (PING → pong; a corrupted frame →
//! `BAD_REQUEST`; GET/DEL → what the client's key model allows, TTLs
//! included: each client owns its keys, so the model is exact whatever the
//! interleaving). Per run, from the [`Ledger`] every participant writes in
//! the twin ([`Twin::shared`]): every frame a client put in the request
//! queue was served exactly once, at its priority; every reply a client
//! read was sent, every reply it gave up on was dropped; the server's
//! counters add up; no queue is left behind. And from the kit: no panic,
//! no deadlock (a server blocked forever on a full reply queue would be
//! one).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use mqtwin::fuzzkit::{arbitrary::Unstructured, sleep, Client, Kit};
use mqtwin::twin::{FaultSite, Twin};
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

use super::protocol::{
    self, Command, Config, Delivery, Malformed, Reply, Request, Stats, Status, Step, ADDRESS_LEN,
    NORMAL_PRIORITY, URGENT_PRIORITY,
};

/// The stopper's client id.
const STOPPER: u16 = u16::MAX;
/// How long a client waits for a reply before it gives up on it (virtual
/// time: the wait costs nothing). The server answers within its reply
/// timeout per frame queued ahead, unless it drops the reply.
const PATIENCE: Duration = Duration::from_secs(3600);

/// How long the stopper waits for the server to take its SHUTDOWN and to
/// answer it: well inside the kit's stop limit (an hour of virtual time
/// from the moment stop is asked, `Kit::stop_limit`), since a SHUTDOWN
/// reply can be lost like any other (a failed send, a full reply queue)
/// and the stopper must then give up, not outlast the limit. (Found by the
/// fuzzer: the stopper waited the whole hour; kept as
/// `tests/regressions/protocol_kit/stopper-outlasting-the-stop-limit`.)
const STOP_PATIENCE: Duration = Duration::from_secs(600);

/// The service's settings for setup byte `setup`: transient faults are
/// always retried; small queues so they fill; the idle timeout long, so an
/// idle server costs few scheduling points.
pub fn config(setup: u8) -> Config {
    Config {
        request_capacity: 1 + usize::from(setup & 3),
        reply_capacity: 1 + usize::from((setup >> 2) & 1),
        nonblocking_replies: setup & 8 != 0,
        reply_timeout: Duration::from_millis([0, 50, 1000][usize::from(setup >> 4 & 3) % 3]),
        idle_timeout: Duration::from_secs(60),
        max_retries: u32::MAX,
        ..Config::default()
    }
}

/// What a reply must say.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Pong,
    BadRequest,
    /// A call's reply: checked by the call against the key model.
    Call,
}

/// What a client knows of one of its keys.
#[derive(Debug, Clone)]
enum Key {
    /// Present with `value` at least until `sure`, gone from `gone` on
    /// (`None`: never expires).
    Present {
        value: Vec<u8>,
        sure: Option<SystemTime>,
        gone: Option<SystemTime>,
    },
    /// A PUT or DEL whose reply never came: anything goes until the next
    /// answered PUT or DEL.
    Unknown,
}

/// What everyone did, kept in the twin for the final check.
#[derive(Debug, Default)]
pub struct Ledger(Mutex<Book>);

#[derive(Debug, Default)]
struct Book {
    config: Option<Config>,
    /// Each client's next request id, across its restarts.
    next_id: BTreeMap<u16, u32>,
    /// Each client's key model, across its restarts (the store outlives it).
    keys: BTreeMap<(u16, u8), Key>,
    /// Addressable frames the clients put in the request queue: priority.
    sent: BTreeMap<(u16, u32), u32>,
    /// Sent frames whose reply may still come, and what it must say.
    outstanding: BTreeMap<(u16, u32), Expect>,
    unaddressable_sent: u64,
    /// What the server did with each addressable frame, at which priority.
    served: BTreeMap<(u16, u32), (Delivery, u32)>,
    unaddressable_served: u64,
    read: BTreeSet<(u16, u32)>,
    given_up: BTreeSet<(u16, u32)>,
    stats: Option<Stats>,
    /// The server loop has returned (clients stop waiting for it to start).
    server_done: bool,
}

impl Ledger {
    fn of(ns: &Twin) -> Arc<Ledger> {
        ns.shared::<Ledger>()
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How often each outcome the model tells apart was reached, over every
/// run in this process (tests assert that generated inputs reach them all).
#[derive(Debug, Default)]
pub struct Coverage {
    pub read: AtomicU64,
    pub full: AtomicU64,
    pub no_queue: AtomicU64,
    pub failed: AtomicU64,
    pub bad_request: AtomicU64,
    pub unaddressable: AtomicU64,
    pub given_up: AtomicU64,
    pub connect_failed: AtomicU64,
    pub request_queue_full: AtomicU64,
}

/// The process's [`Coverage`].
pub static COVERAGE: Coverage = Coverage {
    read: AtomicU64::new(0),
    full: AtomicU64::new(0),
    no_queue: AtomicU64::new(0),
    failed: AtomicU64::new(0),
    bad_request: AtomicU64::new(0),
    unaddressable: AtomicU64::new(0),
    given_up: AtomicU64::new(0),
    connect_failed: AtomicU64::new(0),
    request_queue_full: AtomicU64::new(0),
};

fn count(c: &AtomicU64, n: usize) {
    c.fetch_add(n as u64, Relaxed);
}

/// Whether `e` is one a failing open injects (`FaultPlan::open`).
fn injected_open(e: &Error) -> bool {
    FaultSite::Open.errors(true).contains(e)
}

/// Connects as `id` once the server has started (its config is in the
/// ledger from then on); `retry_faults`: also retry injected open faults.
fn connect(ns: &Twin, id: u16, retry_faults: bool) -> Result<protocol::Client<Twin>, Error> {
    let ledger = Ledger::of(ns);
    loop {
        let config = ledger.book().config.clone();
        let Some(config) = config else {
            // Not started: an open is a scheduling point that lets it start.
            let _ = ns.open(
                &Config::default().request_queue(),
                &OpenOptions::write_only(),
            );
            if ledger.book().server_done {
                return Err(Error::NotFound {
                    name: Config::default().request_queue(),
                });
            }
            continue;
        };
        match protocol::Client::connect(ns.clone(), id, &config) {
            // The server has not started yet (or never will).
            Err(e @ Error::NotFound { .. }) if ledger.book().server_done => return Err(e),
            Err(Error::NotFound { .. }) => {}
            Err(e) if retry_faults && injected_open(&e) => {}
            Ok(mut c) => {
                c.set_next_request_id(*ledger.book().next_id.get(&id).unwrap_or(&1));
                return Ok(c);
            }
            Err(e) => return Err(e),
        }
    }
}

/// One simulated client with its model.
pub struct Peer {
    ns: Twin,
    ledger: Arc<Ledger>,
    client: protocol::Client<Twin>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let name = Config::default().reply_queue(self.client.id());
        let _ = self.ns.unlink(&name);
    }
}

impl Peer {
    fn id(&self) -> u16 {
        self.client.id()
    }

    /// Sends `frame` at `priority` for request `id` (None: unaddressable);
    /// whether it went into the request queue. A full request queue
    /// (timeout, or non-blocking) is not a violation: nothing was sent.
    fn send(
        &mut self,
        frame: &[u8],
        priority: u32,
        id: Option<(u32, Expect)>,
    ) -> Result<bool, String> {
        match self.client.send_frame(frame, priority) {
            Ok(()) => {}
            Err(Error::TimedOut | Error::WouldBlock) => {
                count(&COVERAGE.request_queue_full, 1);
                return Ok(false);
            }
            Err(e) => return Err(format!("send: {e}")),
        }
        let mut book = self.ledger.book();
        match id {
            Some((id, expect)) => {
                book.next_id.insert(self.id(), id.wrapping_add(1));
                book.sent.insert((self.id(), id), priority);
                book.outstanding.insert((self.id(), id), expect);
            }
            None => book.unaddressable_sent += 1,
        }
        drop(book);
        if let Some((id, _)) = id {
            self.client.set_next_request_id(id.wrapping_add(1));
        }
        Ok(true)
    }

    /// Reads replies for up to `wait` until the one to `id` (if any) comes;
    /// checks each against the ledger. `None`: it did not come.
    fn await_reply(&mut self, id: Option<u32>, wait: Duration) -> Result<Option<Reply>, String> {
        let until = self.ns.now().checked_add(wait);
        loop {
            let left = until.map_or(Duration::MAX, |t| {
                t.duration_since(self.ns.now()).unwrap_or_default()
            });
            let Some((reply, priority)) = self
                .client
                .wait_reply(left)
                .map_err(|e| format!("receive: {e}"))?
            else {
                return Ok(None);
            };
            let key = (self.id(), reply.id);
            let mut book = self.ledger.book();
            let Some(expect) = book.outstanding.remove(&key) else {
                return Err(format!(
                    "a reply to no outstanding request (stray or duplicate): {reply:?}"
                ));
            };
            book.read.insert(key);
            let sent_at = book.sent[&key];
            drop(book);
            if priority != sent_at {
                return Err(format!(
                    "reply {reply:?} at priority {priority}, request at {sent_at}"
                ));
            }
            let ok = match expect {
                Expect::Pong => reply.status == Status::Ok && reply.value == b"pong",
                Expect::BadRequest => reply.status == Status::BadRequest && reply.value.is_empty(),
                Expect::Call => true,
            };
            if !ok {
                return Err(format!("expected {expect:?}, got {reply:?}"));
            }
            if Some(reply.id) == id {
                return Ok(Some(reply));
            }
        }
    }

    fn give_up(&self, id: u32) {
        self.ledger.book().given_up.insert((self.id(), id));
    }

    /// A call on key `k` with the model's check.
    fn call(&mut self, command: Command, urgent: bool, k: u8) -> Result<(), String> {
        let id = self.client_next_id();
        let request = Request {
            client: self.id(),
            id,
            command: command.clone(),
        };
        let frame = request
            .encode()
            .ok_or("the model made an oversized request")?;
        let priority = if urgent {
            URGENT_PRIORITY
        } else {
            NORMAL_PRIORITY
        };
        let sent = self.ns.now();
        let expect = if command == Command::Ping {
            Expect::Pong
        } else {
            Expect::Call
        };
        if !self.send(&frame, priority, Some((id, expect)))? {
            return Ok(());
        }
        let slot = (self.id(), k);
        let Some(reply) = self.await_reply(Some(id), PATIENCE)? else {
            self.give_up(id);
            if !matches!(command, Command::Ping | Command::Get { .. }) {
                self.ledger.book().keys.insert(slot, Key::Unknown);
            }
            return Ok(());
        };
        let done = self.ns.now();
        let mut book = self.ledger.book();
        let entry = book.keys.get(&slot).cloned();
        // Must be there if answered before `sure`; may be there if sent before `gone`.
        let (must, may, value) = match &entry {
            None => (false, false, None),
            Some(Key::Unknown) => (false, true, None),
            Some(Key::Present { value, sure, gone }) => (
                sure.is_none_or(|t| done < t),
                gone.is_none_or(|t| sent < t),
                Some(value),
            ),
        };
        let found = reply.status == Status::Ok;
        let ok = match &command {
            Command::Ping | Command::Put { .. } => found,
            Command::Get { .. } => {
                (found || !must) && (!found || (may && value.is_none_or(|v| *v == reply.value)))
            }
            _ => (found || !must) && (!found || may),
        };
        if !ok {
            return Err(format!(
                "{command} sent at {sent:?}: {reply:?} (answered at {done:?}; model {entry:?})"
            ));
        }
        match command {
            Command::Put { value, ttl_ms, .. } => {
                let ttl = (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms.into()));
                let (sure, gone) = (ttl.map(|t| sent + t), ttl.map(|t| done + t));
                book.keys.insert(slot, Key::Present { value, sure, gone });
            }
            Command::Del { .. } => drop(book.keys.remove(&slot)),
            _ => {}
        }
        Ok(())
    }

    fn client_next_id(&self) -> u32 {
        *self.ledger.book().next_id.get(&self.id()).unwrap_or(&1)
    }

    /// 2 to 4 PINGs sent back to back, left unread for a while (the reply
    /// queue fills, the server waits its reply timeout or drops at once),
    /// then read: each reply that comes must be one of them.
    fn burst(&mut self, u: &mut Unstructured<'_>) -> Result<(), String> {
        let n = u.int_in_range(2..=4u32).unwrap_or(2);
        let mut ids = Vec::new();
        for _ in 0..n {
            let id = self.client_next_id();
            let urgent: bool = u.arbitrary().unwrap_or(false);
            let frame = Request {
                client: self.id(),
                id,
                command: Command::Ping,
            }
            .encode()
            .unwrap_or_default();
            let priority = if urgent {
                URGENT_PRIORITY
            } else {
                NORMAL_PRIORITY
            };
            if self.send(&frame, priority, Some((id, Expect::Pong)))? {
                ids.push(id);
            }
        }
        let pause = [0, 10, 100, 2_000][u.choose_index(4).unwrap_or(0)];
        sleep(&self.ns, Duration::from_millis(pause));
        if u.ratio(1, 4).unwrap_or(false) {
            return Ok(()); // fire and forget: read later, or never (a restart)
        }
        for id in ids {
            let answered = self.ledger.book().read.contains(&(self.id(), id));
            if !answered && self.await_reply(Some(id), PATIENCE)?.is_none() {
                self.give_up(id);
            }
        }
        Ok(())
    }

    /// A well-formed request cut short, with trailing bytes, with a length
    /// off by one or any header byte changed (after the address), or made
    /// unaddressable; checked against the decoder and
    /// answered `BAD_REQUEST` (or nothing, if unaddressable).
    fn corrupt(&mut self, u: &mut Unstructured<'_>) -> Result<(), String> {
        let id = self.client_next_id();
        let key = vec![self.id() as u8, 0];
        let command = match u.int_in_range(0..=2u8).unwrap_or(0) {
            0 => Command::Ping,
            1 => Command::Put {
                key,
                value: b"v".to_vec(),
                ttl_ms: 0,
            },
            _ => Command::Get { key },
        };
        let mut frame = Request {
            client: self.id(),
            id,
            command,
        }
        .encode()
        .unwrap_or_default();
        let at = u.int_in_range(0..=255usize).unwrap_or(0);
        let mask = u.int_in_range(1..=255u8).unwrap_or(1);
        match u.int_in_range(0..=4u8).unwrap_or(0) {
            // Cut short, after the address.
            0 => frame.truncate(ADDRESS_LEN + at % (frame.len() - ADDRESS_LEN)),
            // Trailing bytes.
            1 => frame.extend(std::iter::repeat_n(mask, 1 + at % 3)),
            // The key length (byte 9) or the value length (byte 11) off by one.
            2 => {
                let i = [9, 11][at % 2];
                frame[i] = if mask & 1 == 0 {
                    frame[i].wrapping_add(1)
                } else {
                    frame[i].wrapping_sub(1)
                };
            }
            // Any header byte after the address, any change.
            3 => frame[ADDRESS_LEN + at % 8] ^= mask,
            // The magic or the version: unaddressable.
            _ => frame[at % 2] ^= 0x80,
        }
        let priority = u.int_in_range(0..=15u32).unwrap_or(0);
        match Request::decode(&frame) {
            Ok(req) if req.encode().as_ref() != Some(&frame) => Err(format!(
                "accepted a non-canonical frame {frame:?} as {req:?}"
            )),
            Ok(_) => Ok(()), // still well-formed (e.g. a new TTL): not sent
            Err(Malformed::Invalid {
                client,
                id: got,
                why,
            }) => {
                if (client, got) != (self.id(), id) {
                    return Err(format!(
                        "the address of {frame:?} decoded as {client}/{got} ({why})"
                    ));
                }
                if self.send(&frame, priority, Some((id, Expect::BadRequest)))?
                    && self.await_reply(Some(id), PATIENCE)?.is_none()
                {
                    self.give_up(id);
                }
                Ok(())
            }
            Err(Malformed::Unaddressable) => self.send(&frame, priority, None).map(drop),
        }
    }
}

impl Client for Peer {
    fn connect(ns: &Twin, id: usize) -> Result<Self, Error> {
        let client = connect(ns, id as u16, false).inspect_err(|_| {
            count(&COVERAGE.connect_failed, 1);
        })?;
        Ok(Peer {
            ns: ns.clone(),
            ledger: Ledger::of(ns),
            client,
        })
    }

    fn request(&mut self, u: &mut Unstructured<'_>) -> Result<(), String> {
        let kind = u.int_in_range(0..=9u8).unwrap_or(0);
        let k = u.int_in_range(0..=3u8).unwrap_or(0);
        let urgent = u.arbitrary().unwrap_or(false);
        let key = vec![self.id() as u8, k];
        match kind {
            0 | 1 => self.call(Command::Ping, urgent, k),
            2 | 3 => {
                let len = u.int_in_range(0..=32usize).unwrap_or(0).min(u.len());
                let value = u.bytes(len).unwrap_or_default().to_vec();
                let ttl_ms = [0, 0, 100, 5_000][u.choose_index(4).unwrap_or(0)];
                self.call(Command::Put { key, value, ttl_ms }, urgent, k)
            }
            4 => self.call(Command::Get { key }, urgent, k),
            5 => self.call(Command::Del { key }, urgent, k),
            6 => self.burst(u),
            7 => self.corrupt(u),
            8 => self
                .client
                .set_nonblocking_requests(urgent)
                .map(drop)
                .map_err(|e| e.to_string()),
            _ => self.await_reply(None, Duration::ZERO).map(drop),
        }
    }
}

/// A planted server bug, to prove the model catches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// Every reply delivered is sent a second time.
    DuplicateReply,
    /// Every third frame is taken from the request queue and forgotten.
    LoseRequest,
}

/// The server loop the kit runs: the real `Server`, each step written to
/// the ledger (with `bug`, a planted defect around it).
fn serve(ns: &Twin, config: &Config, bug: Option<Bug>) -> Result<(), String> {
    let r = serve_steps(ns, config, bug);
    Ledger::of(ns).book().server_done = true;
    r
}

fn serve_steps(ns: &Twin, config: &Config, bug: Option<Bug>) -> Result<(), String> {
    let ledger = Ledger::of(ns);
    ledger.book().config = Some(config.clone());
    let mut server = loop {
        match protocol::Server::start(ns.clone(), config.clone()) {
            Err(e) if injected_open(&e) => {}
            r => break r.map_err(|e| format!("start: {e}"))?,
        }
    };
    let mut steps = 0u64;
    loop {
        steps += 1;
        if bug == Some(Bug::LoseRequest) && steps % 3 == 0 {
            let q = ns.open(&config.request_queue(), &OpenOptions::read_only());
            let _ = q.map(|q| q.try_receive(&mut [0; 512]));
        }
        let served = match server.serve_one().map_err(|e| e.to_string())? {
            Step::Idle => continue,
            Step::Stopped => break,
            Step::Served(s) => s,
        };
        let mut book = ledger.book();
        let Some(to) = served.to else {
            book.unaddressable_served += 1;
            continue;
        };
        if book
            .served
            .insert(to, (served.delivery.clone(), served.priority))
            .is_some()
        {
            return Err(format!("request {to:?} served twice"));
        }
        drop(book);
        if bug == Some(Bug::DuplicateReply) && served.delivery == Delivery::Sent {
            let reply = Reply {
                id: to.1,
                status: Status::Ok,
                value: b"pong".to_vec(),
            };
            let opts = OpenOptions::write_only().nonblocking();
            if let Ok(q) = ns.open(&config.reply_queue(to.0), &opts) {
                let _ = q.send(&reply.encode(), served.priority);
            }
        }
    }
    ledger.book().stats = Some(server.stats());
    Ok(())
}

/// The stopper: a last client sends an urgent SHUTDOWN and reads its reply.
fn stop(ns: &Twin) {
    let mut c = Peer {
        ns: ns.clone(),
        ledger: Ledger::of(ns),
        client: connect(ns, STOPPER, true).expect("the stopper connects"),
    };
    let id = c.client_next_id();
    let frame = Request {
        client: STOPPER,
        id,
        command: Command::Shutdown,
    }
    .encode()
    .unwrap_or_default();
    // The request queue may be full for a while; not for ten minutes.
    let give_up = ns.now() + STOP_PATIENCE;
    while !c
        .send(&frame, URGENT_PRIORITY, Some((id, Expect::Call)))
        .expect("SHUTDOWN")
    {
        assert!(
            ns.now() < give_up,
            "the server took no request for {STOP_PATIENCE:?}"
        );
    }
    match c
        .await_reply(Some(id), STOP_PATIENCE)
        .expect("the SHUTDOWN reply")
    {
        Some(r) => assert_eq!(r.status, Status::Ok, "SHUTDOWN answered {r:?}"),
        None => c.give_up(id),
    }
}

/// The final check: the ledger and the server's counters agree.
fn check(ns: &Twin) -> Result<(), String> {
    let ledger = Ledger::of(ns);
    let book = ledger.book();
    let stats = book.stats.ok_or("the server left no counters")?;
    for (key, priority) in &book.sent {
        match book.served.get(key) {
            None => return Err(format!("request {key:?} was sent but never served (lost)")),
            Some((_, p)) if p != priority => {
                return Err(format!(
                    "request {key:?} sent at priority {priority}, served at {p}"
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(key) = book.served.keys().find(|k| !book.sent.contains_key(k)) {
        return Err(format!("served {key:?}, which no client sent"));
    }
    if book.unaddressable_sent != book.unaddressable_served {
        return Err(format!(
            "{} unaddressable frames sent, {} served",
            book.unaddressable_sent, book.unaddressable_served
        ));
    }
    for key in &book.read {
        if book.served[key].0 != Delivery::Sent {
            return Err(format!("read a reply to {key:?}, which the server dropped"));
        }
    }
    // Transient failures are retried without limit, so a reply can only
    // fail on what a failing open (of an existing queue) injects and a
    // retry cannot fix.
    for (key, (delivery, _)) in &book.served {
        if let Delivery::Failed(e) = delivery {
            if !FaultSite::Open.errors(false).contains(e) || protocol::is_transient(e) {
                return Err(format!("the reply to {key:?} was dropped for {e:?}"));
            }
        }
    }
    for key in &book.given_up {
        if book.served[key].0 == Delivery::Sent {
            return Err(format!(
                "waited {PATIENCE:?} for the reply to {key:?}, which the server sent"
            ));
        }
    }
    let sent = book
        .served
        .values()
        .filter(|(d, _)| *d == Delivery::Sent)
        .count() as u64;
    let all = book.served.len() as u64;
    let expected = Stats {
        received: all + book.unaddressable_served,
        unaddressable: book.unaddressable_served,
        replies_sent: sent,
        dropped: all - sent,
        ..stats
    };
    if stats != expected {
        return Err(format!("counters {stats:?}, ledger says {expected:?}"));
    }
    let delivered = |f: fn(&Delivery) -> bool| book.served.values().filter(|(d, _)| f(d)).count();
    count(&COVERAGE.read, book.read.len());
    count(&COVERAGE.full, delivered(|d| *d == Delivery::Full));
    count(&COVERAGE.no_queue, delivered(|d| *d == Delivery::NoQueue));
    count(
        &COVERAGE.failed,
        delivered(|d| matches!(d, Delivery::Failed(_))),
    );
    count(
        &COVERAGE.bad_request,
        stats.malformed.saturating_sub(stats.unaddressable) as usize,
    );
    count(&COVERAGE.unaddressable, stats.unaddressable as usize);
    count(&COVERAGE.given_up, book.given_up.len());
    // The request queue, and nothing else (reply queues are unlinked and
    // closed; the kit's waits use no queue).
    match ns.queue_count() {
        1 => Ok(()),
        n => Err(format!("{n} queues left, expected only the request queue")),
    }
}

/// The kit for setup byte `setup`, with an optional planted `bug`.
pub fn kit(setup: u8, bug: Option<Bug>) -> Kit<Peer> {
    let config = config(setup);
    Kit::<Peer>::new(move |ns| serve(ns, &config, bug), stop)
        .check(check)
        .open_faults(setup & 0x80 != 0)
}

/// The fuzz target's body: the first byte is the setup, the rest the
/// scenario.
pub fn fuzz(data: &[u8]) {
    let (setup, rest) = data.split_first().unwrap_or((&0, &[]));
    kit(*setup, None).fuzz(rest);
}
