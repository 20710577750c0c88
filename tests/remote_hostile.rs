//! The twin server against hostile and broken peers: garbage, oversized
//! and truncated frames, a wrong protocol version, more connections and
//! more blocked calls than it allows. None of them may crash or wedge the
//! server or disturb a well-behaved client.

#![cfg(unix)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mqtwin::error::errno;
use mqtwin::remote::{protocol, Remote, Server, ServerConfig};
use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

fn server(config: ServerConfig) -> Server {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mqtwin-hostile-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    Server::with_config(&path, Twin::new(), config).expect("bind")
}

fn hello(version: u32) -> Vec<u8> {
    protocol::encode(&protocol::Hello {
        magic: protocol::MAGIC,
        version,
        umask: 0o022,
        rlimit_msgqueue: 819_200,
    })
    .unwrap()
}

/// Whether the server closed `s` (reads end of file within 5 s), skipping
/// whatever it sent first.
fn closed_by_server(s: &mut UnixStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A well-behaved client still gets served.
fn still_serves(server: &Server) {
    let ns = Remote::connect(server.path()).expect("connect");
    let q = ns
        .open("/alive", &OpenOptions::read_write().create())
        .expect("open");
    q.send(b"ok", 1).unwrap();
    assert_eq!(q.receive_vec(), Ok((b"ok".to_vec(), 1)));
}

#[test]
fn garbage_oversized_and_truncated_frames_close_only_their_connection() {
    let server = server(ServerConfig::default());
    let bystander = Remote::connect(server.path()).unwrap();
    let q = bystander
        .open("/bystander", &OpenOptions::read_write().create())
        .unwrap();
    q.send(b"before", 0).unwrap();

    // Not our protocol at all.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    assert!(closed_by_server(&mut s));

    // A frame length far above the maximum, before and after the handshake.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(&u32::MAX.to_le_bytes()).unwrap();
    assert!(closed_by_server(&mut s));
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(&hello(protocol::VERSION)).unwrap();
    s.write_all(&((protocol::MAX_FRAME as u32) + 1).to_le_bytes())
        .unwrap();
    assert!(closed_by_server(&mut s));

    // Undecodable bytes in a frame of a fine length.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(&hello(protocol::VERSION)).unwrap();
    s.write_all(&9u32.to_le_bytes()).unwrap();
    s.write_all(&[0xff; 9]).unwrap();
    assert!(closed_by_server(&mut s));

    // Half a frame, then the peer goes away.
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(&hello(protocol::VERSION)).unwrap();
    s.write_all(&100u32.to_le_bytes()).unwrap();
    s.write_all(&[1, 2, 3]).unwrap();
    drop(s);

    // Every random prefix of a real request, then close.
    let req = protocol::encode(&protocol::Request {
        id: 1,
        call: protocol::Call::Open {
            name: "/x".into(),
            options: OpenOptions::read_write().create(),
        },
    })
    .unwrap();
    for cut in 0..req.len() {
        let mut s = UnixStream::connect(server.path()).unwrap();
        s.write_all(&hello(protocol::VERSION)).unwrap();
        s.write_all(&req[..cut]).unwrap();
    }

    assert_eq!(q.receive_vec(), Ok((b"before".to_vec(), 0)));
    still_serves(&server);
}

#[test]
fn another_protocol_version_is_a_clear_error() {
    let server = server(ServerConfig::default());
    let mut s = UnixStream::connect(server.path()).unwrap();
    s.write_all(&hello(protocol::VERSION + 1)).unwrap();
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    let mut body = vec![0u8; u32::from_le_bytes(head) as usize];
    s.read_exact(&mut body).unwrap();
    match protocol::decode::<protocol::Welcome>(&body).unwrap() {
        protocol::Welcome::Refused { version, reason } => {
            assert_eq!(version, protocol::VERSION);
            assert!(reason.contains("protocol version"), "{reason}");
        }
        other => panic!("accepted a wrong version: {other:?}"),
    }
    assert!(closed_by_server(&mut s));
    still_serves(&server);
}

#[test]
fn a_missing_server_is_a_clear_error() {
    let path = std::env::temp_dir().join(format!("mqtwin-nobody-{}.sock", std::process::id()));
    match Remote::connect(&path) {
        Err(Error::Remote { errno: e, message }) => {
            assert_eq!(e, errno::ENOENT);
            assert!(message.contains("cannot connect"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn connections_beyond_the_limit_are_refused_and_served_again_later() {
    let server = server(ServerConfig {
        max_connections: 4,
        ..ServerConfig::default()
    });
    let held: Vec<Remote> = (0..4)
        .map(|_| Remote::connect(server.path()).unwrap())
        .collect();
    match Remote::connect(server.path()) {
        Err(Error::Remote { errno: e, message }) => {
            assert_eq!(e, errno::EPROTO);
            assert!(message.contains("full"), "{message}");
        }
        other => panic!("a fifth connection: {other:?}"),
    }
    drop(held);
    let start = std::time::Instant::now();
    while server.connections() > 0 {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(2));
    }
    still_serves(&server);
}

#[test]
fn many_connections_that_never_say_hello_are_dropped() {
    let server = server(ServerConfig {
        max_connections: 64,
        ..ServerConfig::default()
    });
    // Silent connections hold their slots only until the handshake limit;
    // meanwhile the others are refused, never hung.
    let silent: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(server.path()).unwrap())
        .collect();
    drop(silent);
    let start = std::time::Instant::now();
    while server.connections() > 0 {
        assert!(start.elapsed() < Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(5));
    }
    still_serves(&server);
}

#[test]
fn blocking_calls_beyond_the_per_connection_limit_fail_clearly() {
    let server = server(ServerConfig {
        max_calls_per_connection: 2,
        ..ServerConfig::default()
    });
    let ns = Remote::connect(server.path()).unwrap();
    let q = ns
        .open("/limit", &OpenOptions::read_write().create())
        .unwrap();
    std::thread::scope(|s| {
        let waiters: Vec<_> = (0..2)
            .map(|_| s.spawn(|| q.receive_vec_timeout(Duration::from_secs(10))))
            .collect();
        assert!(server
            .twin()
            .wait_blocked_timeout(2, Duration::from_secs(10)));
        match q.receive_vec() {
            Err(Error::Remote { errno: e, .. }) => assert_eq!(e, errno::EAGAIN),
            other => panic!("a third blocked call: {other:?}"),
        }
        // A send may block too, so it also needs a place: send from
        // another connection (process).
        let other = Remote::connect(server.path()).unwrap();
        let tx = other.open("/limit", &OpenOptions::write_only()).unwrap();
        tx.send(b"1", 0).unwrap();
        tx.send(b"2", 0).unwrap();
        for w in waiters {
            assert!(w.join().unwrap().is_ok());
        }
    });
}

/// Inputs in the `remote_frames` fuzz target's format (first byte even: a
/// valid handshake comes first): a session of real requests, one that
/// leaves calls blocked (a receive, a send on a full queue, a `wait_ready`,
/// a long `WaitBlocked`) when the client goes away, control calls with
/// extreme values, and a request cut short.
fn built_inputs() -> Vec<(&'static str, Vec<u8>)> {
    use protocol::{Call, Control, Request};
    let frames = |calls: Vec<Call>| -> Vec<u8> {
        let mut out = vec![0u8];
        for (i, call) in calls.into_iter().enumerate() {
            out.extend(
                protocol::encode(&Request {
                    id: i as u64 + 1,
                    call,
                })
                .unwrap(),
            );
        }
        out
    };
    let open = |name: &str, capacity: usize| Call::Open {
        name: name.into(),
        options: OpenOptions::read_write()
            .create()
            .capacity(capacity)
            .max_msg_len(16),
    };
    let session = frames(vec![
        open("/a", 2),
        Call::Send {
            handle: 1,
            msg: b"hi".to_vec(),
            priority: 3,
            deadline: None,
        },
        Call::Receive {
            handle: 1,
            buf_len: 16,
            deadline: None,
        },
        Call::Dup { handle: 1 },
        Call::SetNonblocking {
            handle: 2,
            nonblocking: true,
        },
        Call::Notify {
            handle: 1,
            how: protocol::NotifyHow::Thread { token: 9 },
        },
        Call::Send {
            handle: 2,
            msg: b"x".to_vec(),
            priority: 0,
            deadline: None,
        },
        Call::Status { handle: 1 },
        Call::Close { handle: 1 },
        Call::Unlink { name: "/a".into() },
        Call::Close { handle: 77 },
    ]);
    let blocked = frames(vec![
        open("/b", 1),
        Call::Receive {
            handle: 1,
            buf_len: u64::MAX,
            deadline: None,
        },
        Call::WaitReady {
            handle: 1,
            interest: mqtwin::Interest::Readable,
            deadline: None,
        },
        open("/c", 1),
        Call::Send {
            handle: 2,
            msg: vec![1],
            priority: 1,
            deadline: None,
        },
        Call::Send {
            handle: 2,
            msg: vec![2],
            priority: 1,
            deadline: None,
        },
        Call::Control(Control::WaitBlocked {
            n: u64::MAX,
            timeout: Duration::MAX,
        }),
        Call::Receive {
            handle: 1,
            buf_len: 0,
            deadline: None,
        },
    ]);
    let control = frames(vec![
        Call::Control(Control::Advance(Duration::MAX)),
        Call::Control(Control::AdvanceToDeadline),
        Call::Control(Control::SetLimits(mqtwin::Limits {
            queues_max: i64::MIN,
            msg_max: usize::MAX,
            msgsize_max: 0,
            msg_default: usize::MAX,
            msgsize_default: 1,
        })),
        Call::Control(Control::Trace),
        Call::Control(Control::Faults),
        Call::Control(Control::Blocked),
        Call::Control(Control::Stop),
        Call::Now,
    ]);
    let mut cut = session.clone();
    cut.truncate(session.len() / 2);
    vec![
        ("session", session),
        ("blocked-calls-left-behind", blocked),
        ("control-extremes", control),
        ("request-cut-short", cut),
        ("no-handshake", b"\x01GET / HTTP/1.1\r\n\r\n".to_vec()),
    ]
}

#[test]
fn built_fuzz_inputs_neither_crash_nor_hang_the_server() {
    for (name, input) in built_inputs() {
        let start = std::time::Instant::now();
        mqtwin::remote::fuzz::frames(&input);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{name} took {:?}",
            start.elapsed()
        );
    }
}

/// The kept inputs of the `remote_frames` fuzz target, replayed on stable
/// (`tests/fuzz_regressions.rs` leaves this target to this file, which has
/// the `remote` feature).
#[test]
fn kept_remote_frames_inputs_replay() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/regressions/remote_frames");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/regressions/remote_frames") {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|f| f.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        mqtwin::remote::fuzz::frames(&data);
        n += 1;
    }
    assert!(n > 0, "no kept inputs in {}", dir.display());
}

/// A forked child shares the parent's socket but is not its process: its
/// calls through the parent's connection fail clearly, and its drops close
/// nothing of the parent's.
#[cfg(target_os = "linux")]
#[test]
#[allow(unsafe_code)]
fn a_forked_child_cannot_use_or_close_the_parents_connection() {
    let server = server(ServerConfig::default());
    let ns = Remote::connect(server.path()).unwrap();
    let q = ns
        .open("/forked", &OpenOptions::read_write().create())
        .unwrap();
    // SAFETY: the child only calls into this crate's client (which checks
    // the pid first), drops it and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork");
    if pid == 0 {
        let ok = matches!(q.send(b"from the child", 0), Err(Error::Remote { errno: e, .. }) if e == errno::EBADF);
        drop(q);
        drop(ns);
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "child status {status}"
    );
    assert_eq!(
        q.try_receive_vec(),
        Err(Error::WouldBlock),
        "the child sent nothing"
    );
    q.send(b"parent", 1).unwrap();
    assert_eq!(q.receive_vec(), Ok((b"parent".to_vec(), 1)));
}

/// A message longer than a frame can hold gets the twin's error for a
/// message over the queue's size, in the twin's order, without a frame.
#[test]
fn a_message_longer_than_a_frame_is_too_long_not_a_protocol_error() {
    let server = server(ServerConfig::default());
    let ns = Remote::connect(server.path()).unwrap();
    let q = ns
        .open("/huge", &OpenOptions::read_write().create())
        .unwrap();
    let huge = vec![0u8; protocol::MAX_FRAME + 1];
    assert_eq!(
        q.send(&huge, 0),
        Err(Error::MessageTooLong {
            len: huge.len(),
            limit: 8192
        })
    );
    assert_eq!(
        q.send(&huge, 40_000),
        Err(Error::InvalidPriority { priority: 40_000 })
    );
    let ro = ns.open("/huge", &OpenOptions::read_only()).unwrap();
    assert_eq!(ro.send(&huge, 0), Err(Error::NotWritable));
    // And the connection is fine.
    q.send(b"small", 0).unwrap();
}
