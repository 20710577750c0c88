//! A tiny request/reply service over POSIX message queues: the handler the
//! fuzzing kit's example fuzzes (`fuzz/fuzz_targets/echo_kit.rs`,
//! `tests/fuzzkit.rs`, the README's "Fuzzing your own handler").
//!
//! Clients send `[client id, sequence number, payload…]` to [`REQUESTS`];
//! the server sends the same bytes back, with the request's priority, on the
//! client's reply queue ([`reply_queue`]). An empty request stops it
//! ([`shutdown`]). Transient errors (`EINTR`, `ENOMEM`) are retried.

use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// The server's request queue.
pub const REQUESTS: &str = "/echo.req";

/// The reply queue of client `id`.
pub fn reply_queue(id: u8) -> String {
    format!("/echo.reply.{id}")
}

/// How both sides open every queue (created by whoever comes first).
pub fn options() -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(4)
        .max_msg_len(64)
}

/// The server loop: answers requests until an empty one; returns how many
/// it answered.
///
/// # Errors
///
/// The first error that is not transient.
pub fn serve<N: Namespace>(ns: &N) -> Result<u64, Error> {
    serve_with(ns, false)
}

/// [`serve`], or with `planted_bug` a version that sends each reply once and
/// drops it when that send fails (a reply lost when a fault hits): the bug
/// the kit's fuzzer must find.
///
/// # Errors
///
/// The first error that is not transient.
pub fn serve_with<N: Namespace>(ns: &N, planted_bug: bool) -> Result<u64, Error> {
    let requests = ns.open(REQUESTS, &options())?;
    let mut answered = 0;
    loop {
        let (data, priority) = transient(|| requests.receive_vec())?;
        let Some(&client) = data.first() else {
            return Ok(answered);
        };
        let reply = transient(|| ns.open(&reply_queue(client), &options()))?;
        let sent = if planted_bug {
            reply.send(&data, priority)
        } else {
            transient(|| reply.send(&data, priority))
        };
        match sent {
            Err(Error::OutOfMemory | Error::Interrupted) if planted_bug => {}
            r => r?,
        }
        answered += 1;
    }
}

/// Stops a running server (sends it the empty request).
///
/// # Errors
///
/// The first error that is not transient.
pub fn shutdown<N: Namespace>(ns: &N) -> Result<(), Error> {
    let q = transient(|| ns.open(REQUESTS, &options()))?;
    transient(|| q.send(b"", 0))
}

/// Calls `f` again while it fails with `EINTR` or `ENOMEM`.
fn transient<T>(mut f: impl FnMut() -> Result<T, Error>) -> Result<T, Error> {
    loop {
        match f() {
            Err(Error::Interrupted | Error::OutOfMemory) => {}
            r => return r,
        }
    }
}
