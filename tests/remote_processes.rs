//! The remote backend with real client processes: this test binary re-runs
//! itself as a client (`MQTWIN_REMOTE_CHILD=<role>`), the parent hosts the
//! [`Server`] and kills clients with `SIGKILL` in every state — blocked in a
//! receive, blocked in a send, holding a notification registration, in the
//! middle of a frame — and checks that the server goes on serving the
//! others and loses nothing the kernel would have kept. Also: 64 client
//! processes × 1,000 messages through one queue, nothing lost or doubled.
//!
//! Every child is killed when its guard drops (also when a test fails), and
//! every wait is bounded.

#![cfg(unix)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mqtwin::remote::{protocol, Remote, Server};
use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, Notify, OpenOptions};

const ROLE: &str = "MQTWIN_REMOTE_CHILD";
const SOCKET: &str = "MQTWIN_REMOTE_SOCKET";
const QUEUE: &str = "MQTWIN_REMOTE_QUEUE";
const LIMIT: Duration = Duration::from_secs(20);

fn server() -> Server {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mqtwin-procs-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    Server::bind(&path, Twin::new()).expect("bind")
}

/// A client process, killed (`SIGKILL`) and reaped on drop.
struct Client {
    child: Child,
    out: BufReader<std::process::ChildStdout>,
}

impl Client {
    fn start(server: &Server, role: &str, queue: &str) -> Client {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .env(SOCKET, server.path())
            .env(QUEUE, queue)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a client process");
        let out = BufReader::new(child.stdout.take().expect("stdout"));
        Client { child, out }
    }

    /// Waits for the child's line `ready` (bounded by the child's own
    /// limit: a child that never gets there exits and closes its output).
    fn ready(&mut self) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .out
                .read_line(&mut line)
                .expect("read the child's output");
            assert!(n > 0, "the client exited before it was ready");
            if line.trim() == "mqtwin-child-ready" {
                return;
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (bounded) for a normal exit; returns whether it succeeded.
    fn join(mut self) -> bool {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.success();
            }
            assert!(start.elapsed() < LIMIT, "client did not finish in time");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.kill();
    }
}

fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn rw() -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(1)
        .max_msg_len(64)
}

/// The client side: what each role does. Not a test of its own: without the
/// environment variable it returns at once.
#[test]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    // A child never outlives its parent's test for long.
    std::thread::spawn(|| {
        std::thread::sleep(LIMIT);
        std::process::exit(9);
    });
    let path = std::env::var(SOCKET).expect("socket");
    let name = std::env::var(QUEUE).expect("queue");
    let ready = || {
        println!("\nmqtwin-child-ready");
        std::io::stdout().flush().unwrap();
    };
    if role == "mid-frame" {
        // A well-formed handshake, then half of a frame, then silence.
        let mut s = UnixStream::connect(&path).unwrap();
        let hello = protocol::encode(&protocol::Hello {
            magic: protocol::MAGIC,
            version: protocol::VERSION,
            umask: 0o022,
            rlimit_msgqueue: 819_200,
        })
        .unwrap();
        s.write_all(&hello).unwrap();
        s.write_all(&1000u32.to_le_bytes()).unwrap();
        s.write_all(&[0u8; 10]).unwrap();
        ready();
        std::thread::sleep(LIMIT);
        return;
    }
    let ns = Remote::connect(&path).expect("connect");
    let q = ns.open(&name, &rw()).expect("open");
    match role.as_str() {
        "receive" => {
            ready();
            let _ = q.receive_vec();
        }
        "send" => {
            ready();
            let _ = q.send(b"from the killed sender", 1);
        }
        "notify" => {
            q.notify(Notify::Signal {
                signal: 0,
                value: 1,
            })
            .expect("register");
            ready();
            std::thread::sleep(LIMIT);
        }
        "load" => {
            let me = std::process::id();
            for i in 0..1000u32 {
                let msg = format!("{me}:{i}");
                q.send(msg.as_bytes(), 0).expect("send");
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn a_client_killed_in_a_blocked_receive_consumes_nothing() {
    let server = server();
    let me = Remote::connect(server.path()).unwrap();
    let name = "/killed-receiver";
    let q = me.open(name, &rw()).unwrap();
    let mut child = Client::start(&server, "receive", name);
    child.ready();
    assert!(server.twin().wait_blocked_timeout(1, LIMIT));
    child.kill();
    until("the killed receiver to leave", || {
        server.twin().blocked() == 0 && server.connections() == 1
    });
    // The message goes to the next receiver, not to the dead one.
    q.send(b"kept", 3).unwrap();
    assert_eq!(q.try_receive_vec(), Ok((b"kept".to_vec(), 3)));
}

#[test]
fn a_client_killed_in_a_blocked_send_queues_nothing() {
    let server = server();
    let me = Remote::connect(server.path()).unwrap();
    let name = "/killed-sender";
    let q = me.open(name, &rw()).unwrap();
    q.send(b"first", 0).unwrap();
    let mut child = Client::start(&server, "send", name);
    child.ready();
    assert!(server.twin().wait_blocked_timeout(1, LIMIT));
    child.kill();
    until("the killed sender to leave", || {
        server.twin().blocked() == 0 && server.connections() == 1
    });
    assert_eq!(q.try_receive_vec(), Ok((b"first".to_vec(), 0)));
    // As on the kernel: a sender that died blocked sent nothing.
    assert_eq!(q.try_receive_vec(), Err(Error::WouldBlock));
    q.send(b"room for others", 0).unwrap();
}

#[test]
fn a_killed_client_loses_its_notification_registration() {
    let server = server();
    let me = Remote::connect(server.path()).unwrap();
    let name = "/killed-notify";
    let q = me.open(name, &rw()).unwrap();
    let mut child = Client::start(&server, "notify", name);
    child.ready();
    assert_eq!(q.notify(Notify::None), Err(Error::Busy));
    child.kill();
    until("the killed client's connection to end", || {
        server.connections() == 1
    });
    // Its process is gone, and with it the registration.
    assert_eq!(q.notify(Notify::None), Ok(()));
}

#[test]
fn a_client_killed_mid_frame_harms_no_one() {
    let server = server();
    let me = Remote::connect(server.path()).unwrap();
    let q = me.open("/mid-frame", &rw()).unwrap();
    let mut child = Client::start(&server, "mid-frame", "/unused");
    child.ready();
    until("the half-frame client to connect", || {
        server.connections() == 2
    });
    // Served while the other connection is stuck in its frame...
    q.send(b"during", 0).unwrap();
    assert_eq!(q.receive_vec(), Ok((b"during".to_vec(), 0)));
    child.kill();
    until("the half-frame connection to end", || {
        server.connections() == 1
    });
    // ...and after it died.
    q.send(b"after", 0).unwrap();
    assert_eq!(q.receive_vec(), Ok((b"after".to_vec(), 0)));
}

#[test]
fn sixty_four_clients_lose_and_double_nothing() {
    let server = server();
    let me = Remote::connect(server.path()).unwrap();
    let name = "/load";
    let q = me
        .open(
            name,
            &OpenOptions::read_write()
                .create()
                .capacity(10)
                .max_msg_len(64),
        )
        .unwrap();
    let clients: Vec<Client> = (0..64)
        .map(|_| Client::start(&server, "load", name))
        .collect();
    let pids: HashSet<u32> = clients.iter().map(|c| c.child.id()).collect();
    let mut seen = HashSet::new();
    let mut buf = [0u8; 64];
    let start = Instant::now();
    while seen.len() < 64_000 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "load took too long"
        );
        let r = q
            .receive_timeout(&mut buf, Duration::from_secs(30))
            .expect("a message within 30 s");
        let text = std::str::from_utf8(&buf[..r.len]).unwrap().to_owned();
        let (pid, i) = text.split_once(':').unwrap();
        assert!(
            pids.contains(&pid.parse().unwrap()),
            "unknown sender {text}"
        );
        assert!(i.parse::<u32>().unwrap() < 1000);
        assert!(seen.insert(text.clone()), "duplicate {text}");
    }
    for c in clients {
        assert!(c.join(), "a client failed");
    }
    assert_eq!(q.try_receive_vec(), Err(Error::WouldBlock));
}
