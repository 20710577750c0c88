//! The key-value service of `examples/protocol/mod.rs` (the protocol handler
//! the `protocol_handler` fuzz target checks), running for real: a server
//! and a few clients, over the in-memory twin or the Linux kernel.
//!
//! ```text
//! cargo run --example protocol_server             # over a twin: no kernel queue
//! cargo run --example protocol_server -- --kernel # the same code on Linux queues
//! ```
//!
//! Two acts:
//!
//! 1. **Priorities, step by step** (one thread, deterministic): clients
//!    queue normal requests and one urgent PING, then the server serves
//!    one frame at a time: the PING comes out first. A malformed frame is
//!    answered `BAD_REQUEST`, and the reply of a client that disconnected
//!    before being served is counted as dropped.
//! 2. **Under load** (threads): the server runs in its own thread while two
//!    clients make calls concurrently and a third never reads its replies;
//!    once its reply queue is full the server drops its replies after
//!    `reply_timeout` instead of blocking. An urgent SHUTDOWN ends the run.
//!
//! It exits with status 1 if any reply or counter is not what the protocol
//! promises.

#[path = "protocol/mod.rs"]
mod protocol;

use std::process::ExitCode;
use std::time::Duration;

use mqtwin::{Error, Namespace};
use protocol::{Client, Command, Config, Reply, Server, Status, Step};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            println!("protocol_server over the in-memory twin\n");
            let twin = mqtwin::twin::Twin::new();
            // The server and each client are separate simulated processes of
            // one user, as separate programs would be.
            let creds = twin.credentials().clone();
            demo(|| twin.process(creds.clone()), Config::default())
        }
        ["--kernel"] => kernel(),
        _ => {
            eprintln!("usage: protocol_server [--kernel]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => {
            println!("\nall replies and counters as the protocol promises");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nFAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
fn kernel() -> Result<(), String> {
    println!("protocol_server over Linux message queues\n");
    // Kernel names are shared by the whole IPC namespace: make them unique.
    let config = Config {
        prefix: format!("/mqtwin-protocol-{}", std::process::id()),
        ..Config::default()
    };
    demo(|| mqtwin::posix::Kernel, config)
}

#[cfg(not(all(target_os = "linux", feature = "posix")))]
fn kernel() -> Result<(), String> {
    Err("the kernel backend needs Linux and the `posix` feature".into())
}

/// Turns a library error into the demo's error text.
fn ctx<T>(what: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn show(reply: &Reply) -> String {
    format!(
        "#{} {:?} {:?}",
        reply.id,
        reply.status,
        String::from_utf8_lossy(&reply.value)
    )
}

/// Both acts, on the namespace `ns()` gives (one per simulated process).
fn demo<N, F>(ns: F, config: Config) -> Result<(), String>
where
    N: Namespace + Send + 'static,
    N::Queue: Send,
    F: Fn() -> N,
{
    let mut server = ctx("server start", Server::start(ns(), config.clone()))?;
    let result = acts(&ns, &config, &mut server);
    // Whatever happened, leave no request queue behind.
    let closed = server.close();
    result.and(ctx("closing the request queue", closed))
}

fn acts<N, F>(ns: &F, config: &Config, server: &mut Server<N>) -> Result<(), String>
where
    N: Namespace + Send + 'static,
    N::Queue: Send,
    F: Fn() -> N,
{
    // ---- Act 1: priorities, one step at a time ---------------------------
    println!("Act 1: priorities, one frame at a time");
    let mut alice = ctx("alice connects", Client::connect(ns(), 1, config))?;
    let mut bob = ctx("bob connects", Client::connect(ns(), 2, config))?;
    let carol = ctx("carol connects", Client::connect(ns(), 3, config))?;
    let put = |k: &str, v: &str| Command::Put {
        key: k.into(),
        value: v.into(),
        ttl_ms: 0,
    };
    ctx("send", alice.send(put("colour", "blue"), false))?;
    ctx(
        "send",
        alice.send(
            Command::Get {
                key: "colour".into(),
            },
            false,
        ),
    )?;
    let mut carol = carol;
    ctx(
        "send",
        carol.send(
            Command::Get {
                key: "colour".into(),
            },
            false,
        ),
    )?;
    ctx("carol leaves", carol.disconnect())?; // before being answered
    ctx("send", bob.send_frame(b"QX not a frame", 1))?; // bad version: nobody to answer
    ctx("send", bob.send_frame(&[b'Q', 1, 0, 2, 0, 0, 0, 7, 99], 1))?; // bob's, unknown opcode
    ctx("send", bob.send(Command::Ping, true))?; // urgent, sent last
    let mut order = Vec::new();
    while let Step::Served(s) = ctx("serve", server.serve_one())? {
        let what = match &s.request {
            Ok(r) => format!("client {}: {}", r.client, r.command),
            Err(e) => format!("{e:?}"),
        };
        println!(
            "  served (priority {:2}) {what:<56} -> {:?}",
            s.priority, s.delivery
        );
        order.push(s.request.map(|r| r.command));
    }
    check(order.first() == Some(&Ok(Command::Ping)), || {
        format!("the urgent PING was not served first: {order:?}")
    })?;
    let a1 = ctx("alice reads", alice.try_reply())?;
    let a2 = ctx("alice reads", alice.try_reply())?;
    let b1 = ctx("bob reads", bob.try_reply())?;
    let b2 = ctx("bob reads", bob.try_reply())?;
    for (who, r) in [("alice", &a1), ("alice", &a2), ("bob", &b1), ("bob", &b2)] {
        if let Some((reply, priority)) = r {
            println!("  {who} got {} (priority {priority})", show(reply));
        }
    }
    check(
        matches!(&a2, Some((r, _)) if r.status == Status::Ok && r.value == b"blue"),
        || format!("alice's GET: {a2:?}"),
    )?;
    check(
        matches!((&b1, &b2), (Some((p, 10)), Some((bad, 1)))
            if p.value == b"pong" && bad.status == Status::BadRequest),
        || format!("bob's replies: {b1:?} {b2:?}"),
    )?;
    let s = *server.stats();
    println!("  counters: {s:?}");
    check(
        s.received == 6 && s.replies_sent == 4 && s.dropped_no_queue == 1 && s.unaddressable == 1,
        || format!("act 1 counters: {s:?}"),
    )?;

    // ---- Act 2: under load -------------------------------------------------
    println!("\nAct 2: the server in its own thread, three clients");
    let dave = ctx("dave connects", Client::connect(ns(), 4, config))?;
    let rounds = 20;
    std::thread::scope(|scope| -> Result<(), String> {
        let serving = scope.spawn(|| server.run());
        let workers: Vec<_> = [alice, bob]
            .into_iter()
            .map(|mut c| {
                scope.spawn(move || -> Result<Client<N>, String> {
                    for i in 0..rounds {
                        let key = format!("key-{}-{i}", c.id());
                        let value = format!("value {i} of client {}", c.id());
                        let t = Duration::from_secs(5);
                        let put = Command::Put {
                            key: key.clone().into(),
                            value: value.clone().into(),
                            ttl_ms: 0,
                        };
                        let r = ctx("put", c.call(put, false, t))?;
                        check(r.status == Status::Ok, || format!("put: {r:?}"))?;
                        let r = ctx(
                            "get",
                            c.call(Command::Get { key: key.into() }, i % 5 == 0, t),
                        )?;
                        check(r.value == value.as_bytes(), || format!("get: {r:?}"))?;
                    }
                    Ok(c)
                })
            })
            .collect();
        // Dave sends and never reads: his reply queue (capacity 10) fills,
        // and from then on each of his replies is dropped after the
        // server's reply timeout, instead of blocking it.
        let mut dave = dave;
        for _ in 0..config.reply_capacity + 3 {
            ctx("dave sends", dave.send(Command::Ping, false))?;
        }
        let mut alice = None;
        for w in workers {
            let c = w.join().map_err(|_| "a client panicked".to_string())??;
            alice = alice.or(Some(c));
        }
        let mut alice = alice.expect("two clients");
        let bye = ctx(
            "shutdown",
            alice.call(Command::Shutdown, true, Duration::from_secs(5)),
        )?;
        println!("  SHUTDOWN answered {}", show(&bye));
        let stats = serving
            .join()
            .map_err(|_| "the server panicked".to_string())?;
        let s = ctx("server", stats)?;
        println!("  counters: {s:?}");
        // Act 1's six frames, 2 clients x 2 calls x rounds, dave's, SHUTDOWN.
        let dave_sent = config.reply_capacity as u64 + 3;
        check(s.received == 6 + 4 * rounds + dave_sent + 1, || {
            format!("received: {s:?}")
        })?;
        check(s.dropped_full == 3, || {
            format!("dave's 3 extra replies should be dropped: {s:?}")
        })?;
        check(
            s.received - s.unaddressable
                == s.replies_sent + s.dropped_full + s.dropped_no_queue + s.dropped_error,
            || format!("a request without exactly one reply or drop: {s:?}"),
        )?;
        ctx("dave leaves", dave.disconnect())?;
        ctx("alice leaves", alice.disconnect())?;
        Ok(())
    })?;
    // Bob's client was dropped with its worker's result; unlink his queue.
    ctx("bob's queue", ns().unlink(&config.reply_queue(2)))
}
