//! The key-value service of `examples/protocol/mod.rs` (the handler the
//! `protocol_kit` fuzz target checks), running for real: a server and a few
//! clients, over a deterministic twin or the Linux kernel.
//!
//! ```text
//! cargo run --example protocol_server             # deterministic twin: same output every run
//! MQTWIN_SEED=7 cargo run --example protocol_server # another interleaving, same results
//! cargo run --example protocol_server -- --kernel # the same code on Linux queues, OS threads
//! ```
//!
//! Two acts:
//!
//! 1. **Priorities, one frame at a time**: clients queue normal requests
//!    and one urgent PING, then the server serves one frame at a time: the
//!    PING comes out first. A malformed frame is answered `BAD_REQUEST`, an
//!    unaddressable one is counted, and the reply of a client that left
//!    before being served is dropped.
//! 2. **Under load**: the server runs in its own thread while two clients
//!    make calls concurrently and a third never reads its replies; once its
//!    reply queue is full the server drops its replies after
//!    `reply_timeout` instead of blocking. An urgent SHUTDOWN ends the run.
//!
//! On the twin every thread is a participant of a deterministic simulation
//! (`Twin::builder().deterministic(seed)`): one interleaving per seed, and
//! the reply timeouts pass in virtual time. It exits with status 1 if any
//! reply or counter is not what the protocol promises.

#[path = "protocol/mod.rs"]
mod protocol;

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use mqtwin::twin::{Sim, Twin};
use mqtwin::{Error, Namespace};
use protocol::{Client, Command, Config, Delivery, Reply, Server, Status, Step};

#[allow(dead_code)] // tests/determinism.rs includes this file as a module
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (log, result) = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            let (log, result, trace) = run(mqtwin::twin::seeds([2024]).next().unwrap_or(2024));
            println!("{log}({} calls traced)", trace.lines().count());
            (String::new(), result)
        }
        ["--kernel"] => kernel(),
        _ => {
            eprintln!("usage: protocol_server [--kernel]");
            return ExitCode::from(2);
        }
    };
    print!("{log}");
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

/// One run on a deterministic twin: what it printed, how it ended, and the
/// twin's trace. The same seed gives the same three, bit for bit.
pub fn run(seed: u64) -> (String, Result<(), String>, String) {
    let twin = Twin::builder().deterministic(seed).trace().build();
    let sim = twin.sim().expect("built deterministic");
    let (ns, spawner) = (twin.clone(), Participants(sim.clone()));
    let main = sim.spawn(move || {
        let mut log = format!("protocol_server over a deterministic twin (seed {seed})\n\n");
        // The server and each client are separate simulated processes of
        // one user, as separate programs would be.
        let creds = ns.credentials().clone();
        let r = demo(
            &|| ns.process(creds.clone()),
            Config::default(),
            &spawner,
            &mut log,
        );
        (log, r)
    });
    let (log, result) = main
        .join()
        .unwrap_or_else(|e| (String::new(), Err(format!("the simulation failed: {e}"))));
    (log, result, twin.trace_dump())
}

#[cfg(all(target_os = "linux", feature = "posix"))]
fn kernel() -> (String, Result<(), String>) {
    let mut log = "protocol_server over Linux message queues\n\n".to_owned();
    // Kernel names are shared by the whole IPC namespace: make them unique.
    let config = Config {
        prefix: format!("/mqtwin-protocol-{}", std::process::id()),
        ..Config::default()
    };
    let r = demo(&|| mqtwin::posix::Kernel, config, &OsThreads, &mut log);
    (log, r)
}

#[cfg(not(all(target_os = "linux", feature = "posix")))]
fn kernel() -> (String, Result<(), String>) {
    let e = "the kernel backend needs Linux and the `posix` feature";
    (String::new(), Err(e.into()))
}

/// How the demo starts its threads: OS threads on the kernel, participants
/// of the simulation on the deterministic twin.
trait Spawner {
    /// Starts `f`; the returned closure joins it.
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Box<dyn FnOnce() -> Result<T, String>>;
}

#[cfg(all(target_os = "linux", feature = "posix"))]
struct OsThreads;

#[cfg(all(target_os = "linux", feature = "posix"))]
impl Spawner for OsThreads {
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Box<dyn FnOnce() -> Result<T, String>> {
        let t = std::thread::spawn(f);
        Box::new(move || t.join().map_err(|_| "a thread panicked".to_owned()))
    }
}

struct Participants(Sim);

impl Spawner for Participants {
    fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Box<dyn FnOnce() -> Result<T, String>> {
        let p = self.0.spawn(f);
        Box::new(move || p.join().map_err(|e| e.to_string()))
    }
}

/// Turns a library error into the demo's error text.
fn ctx<T>(what: &str, r: Result<T, Error>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    ok.then_some(()).ok_or_else(what)
}

fn show(r: &Reply) -> String {
    let value = String::from_utf8_lossy(&r.value);
    format!("#{} {:?} {value:?}", r.id, r.status)
}

/// Both acts, on the namespace `ns()` gives (one per simulated process).
fn demo<N: Namespace + Send + 'static>(
    ns: &dyn Fn() -> N,
    config: Config,
    spawner: &impl Spawner,
    log: &mut String,
) -> Result<(), String>
where
    N::Queue: Send,
{
    let mut server = ctx("server start", Server::start(ns(), config.clone()))?;
    let result = act1(ns, &config, &mut server, log)
        .and_then(|clients| act2(ns, &config, server, clients, spawner, log));
    if result.is_err() {
        // Leave no queue behind (kernel queues outlive the process).
        let _ = ns().unlink(&config.request_queue());
        for id in 1..=4 {
            let _ = ns().unlink(&config.reply_queue(id));
        }
    }
    result
}

fn act1<N: Namespace>(
    ns: &dyn Fn() -> N,
    config: &Config,
    server: &mut Server<N>,
    log: &mut String,
) -> Result<[Client<N>; 2], String> {
    let _ = writeln!(log, "Act 1: priorities, one frame at a time");
    let mut alice = ctx("alice connects", Client::connect(ns(), 1, config))?;
    let mut bob = ctx("bob connects", Client::connect(ns(), 2, config))?;
    let mut carol = ctx("carol connects", Client::connect(ns(), 3, config))?;
    let key = || b"colour".to_vec();
    let put = Command::Put {
        key: key(),
        value: b"blue".to_vec(),
        ttl_ms: 0,
    };
    ctx("send", alice.send(put, false))?;
    ctx("send", alice.send(Command::Get { key: key() }, false))?;
    ctx("send", carol.send(Command::Get { key: key() }, false))?;
    ctx("carol leaves", carol.disconnect())?; // before being answered
    ctx("send", bob.send_frame(b"QX not a frame", 1))?; // bad version: nobody to answer
    ctx("send", bob.send_frame(&[b'Q', 1, 0, 2, 0, 0, 0, 7, 99], 1))?; // bob's, truncated
    ctx("send", bob.send(Command::Ping, true))?; // urgent, sent last
    let mut order = Vec::new();
    while let Step::Served(s) = ctx("serve", server.serve_one())? {
        let what = match &s.request {
            Ok(r) => format!("client {}: {}", r.client, r.command),
            Err(e) => format!("{e:?}"),
        };
        let _ = writeln!(
            log,
            "  served (priority {:2}) {what:<58} -> {:?}",
            s.priority, s.delivery
        );
        order.push((s.request.map(|r| r.command), s.delivery));
    }
    check(
        matches!(order.first(), Some((Ok(Command::Ping), _))),
        || format!("the urgent PING was not served first: {order:?}"),
    )?;
    check(order.iter().any(|(_, d)| *d == Delivery::NoQueue), || {
        format!("carol's reply should find no queue: {order:?}")
    })?;
    let a = [
        ctx("alice", alice.wait_reply(Duration::ZERO))?,
        ctx("alice", alice.wait_reply(Duration::ZERO))?,
    ];
    let b = [
        ctx("bob", bob.wait_reply(Duration::ZERO))?,
        ctx("bob", bob.wait_reply(Duration::ZERO))?,
    ];
    for (who, r) in [
        ("alice", &a[0]),
        ("alice", &a[1]),
        ("bob", &b[0]),
        ("bob", &b[1]),
    ] {
        if let Some((reply, priority)) = r {
            let _ = writeln!(log, "  {who} got {} (priority {priority})", show(reply));
        }
    }
    check(
        matches!(&a[1], Some((r, 1)) if r.status == Status::Ok && r.value == b"blue"),
        || format!("alice's GET: {:?}", a[1]),
    )?;
    check(
        matches!(&b, [Some((p, 10)), Some((bad, 1))]
            if p.value == b"pong" && bad.status == Status::BadRequest),
        || format!("bob's replies: {b:?}"),
    )?;
    let s = server.stats();
    let _ = writeln!(log, "  counters: {s:?}");
    check(
        s.received == 6 && s.replies_sent == 4 && s.dropped == 1 && s.unaddressable == 1,
        || format!("act 1 counters: {s:?}"),
    )?;
    Ok([alice, bob])
}

fn act2<N: Namespace + Send + 'static>(
    ns: &dyn Fn() -> N,
    config: &Config,
    mut server: Server<N>,
    clients: [Client<N>; 2],
    spawner: &impl Spawner,
    log: &mut String,
) -> Result<(), String>
where
    N::Queue: Send,
{
    let _ = writeln!(log, "\nAct 2: the server in its own thread, three clients");
    let mut dave = ctx("dave connects", Client::connect(ns(), 4, config))?;
    let rounds = 20;
    let serving = spawner.spawn(move || (server.run(), server));
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            spawner.spawn(move || -> Result<Client<N>, String> {
                for i in 0..rounds {
                    let (key, value) = (format!("key-{}-{i}", c.id()), format!("value {i}"));
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
    // Dave sends and never reads: his reply queue fills, and then each of
    // his replies is dropped after the server's reply timeout.
    let sent =
        (0..config.reply_capacity + 3).try_for_each(|_| dave.send(Command::Ping, false).map(drop));
    let done: Result<Vec<Client<N>>, String> = workers.into_iter().map(|w| w()?).collect();
    // Stop the server whatever happened, or it would serve forever.
    let (stopped, clients) = match (ctx("dave sends", sent), done) {
        (Ok(()), Ok(mut clients)) => {
            let bye = clients[0].call(Command::Shutdown, true, Duration::from_secs(5));
            let bye = ctx("shutdown", bye).map(|r| {
                let _ = writeln!(log, "  SHUTDOWN answered {}", show(&r));
            });
            (bye, clients)
        }
        (Err(e), _) | (_, Err(e)) => {
            let _ = dave.send(Command::Shutdown, true);
            (Err(e), Vec::new())
        }
    };
    let (stats, server) = serving()?;
    stopped?;
    let s = ctx("server", stats)?;
    let _ = writeln!(log, "  counters: {s:?}");
    // Act 1's six frames, 2 clients x 2 calls x rounds, dave's, SHUTDOWN.
    let dave_sent = config.reply_capacity as u64 + 3;
    check(s.received == 6 + 4 * rounds + dave_sent + 1, || {
        format!("received: {s:?}")
    })?;
    check(s.dropped == 1 + 3, || {
        format!("carol's reply and dave's 3 extra should be dropped: {s:?}")
    })?;
    check(
        s.received - s.unaddressable == s.replies_sent + s.dropped,
        || format!("a request without exactly one reply or drop: {s:?}"),
    )?;
    for c in clients.into_iter().chain([dave]) {
        ctx("disconnect", c.disconnect())?;
    }
    ctx("closing the request queue", server.close())
}
