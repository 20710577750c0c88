//! The key-value service of `examples/protocol/mod.rs` under
//! `mqtwin::fuzzkit`: its client model and invariant. Included by the
//! `protocol_kit` fuzz target and by `tests/fuzzkit.rs` (on stable).
//!
//! Each client works on its own keys (`[client id, 0..4]`), so its model is
//! exact whatever the interleaving: PING answers `pong`; a GET or DEL
//! finds a key that must still be there and misses one that must be gone
//! (a TTL makes both bounds: the PUT's send and reply times); every request
//! gets its reply (transient faults are retried without limit, so none may
//! be lost). A restarted client deletes its keys first (the server's store
//! outlives it).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use mqtwin::fuzzkit::{arbitrary::Unstructured, Client, Kit};
use mqtwin::twin::Twin;
use mqtwin::{Error, Namespace};

use super::protocol::{self, Command, Config, Status};

/// The service's settings under the fuzzer: transient faults always retried.
pub fn config() -> Config {
    Config {
        max_retries: u32::MAX,
        ..Config::default()
    }
}

/// What a client knows of one of its keys: the value, present at least
/// until `sure`, gone from `gone` on (`None`: never expires).
struct Entry {
    value: Vec<u8>,
    sure: Option<SystemTime>,
    gone: Option<SystemTime>,
}

/// One simulated client with its model.
pub struct Peer {
    ns: Twin,
    client: protocol::Client<Twin>,
    keys: BTreeMap<u8, Entry>,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.ns.unlink(&config().reply_queue(self.client.id()));
    }
}

fn connect(ns: &Twin, id: u16) -> Result<protocol::Client<Twin>, Error> {
    loop {
        match protocol::Client::connect(ns.clone(), id, &config()) {
            Err(Error::NotFound { .. }) => {} // the server has not started yet
            r => return r,
        }
    }
}

impl Peer {
    fn call(&mut self, c: Command, urgent: bool) -> Result<protocol::Reply, String> {
        let timeout = Duration::from_secs(3600);
        (self.client.call(c.clone(), urgent, timeout)).map_err(|e| format!("{c}: {e}"))
    }
}

impl Client for Peer {
    fn connect(ns: &Twin, id: usize) -> Result<Self, Error> {
        let mut peer = Peer {
            ns: ns.clone(),
            client: connect(ns, id as u16)?,
            keys: BTreeMap::new(),
        };
        for k in 0..4 {
            let key = vec![id as u8, k];
            peer.call(Command::Del { key }, false)
                .map_err(|_| Error::TimedOut)?;
        }
        Ok(peer)
    }

    fn request(&mut self, u: &mut Unstructured<'_>) -> Result<(), String> {
        let (op, k, urgent) = (
            u.int_in_range(0..=3u8).unwrap_or(0),
            u.int_in_range(0..=3u8).unwrap_or(0),
            u.arbitrary().unwrap_or(false),
        );
        let key = vec![self.client.id() as u8, k];
        let sent = self.ns.now();
        let (command, value, ttl_ms) = match op {
            0 => (Command::Ping, Vec::new(), 0),
            1 => {
                let len = u.int_in_range(0..=32usize).unwrap_or(0).min(u.len());
                let value = u.bytes(len).unwrap_or_default().to_vec();
                let ttl_ms = [0, 0, 100, 5_000][u.choose_index(4).unwrap_or(0)];
                (
                    Command::Put {
                        key,
                        value: value.clone(),
                        ttl_ms,
                    },
                    value,
                    ttl_ms,
                )
            }
            2 => (Command::Get { key }, Vec::new(), 0),
            _ => (Command::Del { key }, Vec::new(), 0),
        };
        let reply = self.call(command.clone(), urgent)?;
        let done = self.ns.now();
        let entry = self.keys.get(&k);
        // Must be there when answered before `sure`; must be gone when sent after `gone`.
        let must = entry.is_some_and(|e| e.sure.is_none_or(|t| done < t));
        let may = entry.is_some_and(|e| e.gone.is_none_or(|t| sent < t));
        let found = reply.status == Status::Ok;
        let ok = match &command {
            Command::Ping => found && reply.value == b"pong",
            Command::Put { .. } => found,
            Command::Get { .. } => {
                (found || !must)
                    && (!found || (may && Some(&reply.value) == entry.map(|e| &e.value)))
            }
            _ => (found || !must) && (!found || may),
        };
        if !ok {
            return Err(format!(
                "{command} sent at {sent:?}: {reply:?} (answered at {done:?})"
            ));
        }
        match command {
            Command::Put { .. } => {
                let ttl = (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms.into()));
                let sure = ttl.map(|t| sent + t);
                let gone = ttl.map(|t| done + t);
                self.keys.insert(k, Entry { value, sure, gone });
            }
            Command::Del { .. } => drop(self.keys.remove(&k)),
            _ => {}
        }
        Ok(())
    }
}

/// The kit: the real server loop, stopped by a `SHUTDOWN` from a last client.
pub fn kit() -> Kit<Peer> {
    let serve = |ns: &Twin| {
        let mut server =
            protocol::Server::start(ns.clone(), config()).map_err(|e| e.to_string())?;
        server.run().map(drop).map_err(|e| e.to_string())
    };
    Kit::<Peer>::new(serve, |ns| {
        let mut last = connect(ns, u16::MAX).expect("the stopper connects");
        let reply = last.call(Command::Shutdown, true, Duration::from_secs(3600));
        assert_eq!(reply.map(|r| r.status), Ok(Status::Ok), "SHUTDOWN");
    })
}
