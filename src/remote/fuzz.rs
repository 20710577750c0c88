//! The entry point of the `remote_frames` fuzz target (and of its replay
//! on stable, `tests/remote_hostile.rs`): arbitrary bytes from a client at
//! a real [`Server`], which must neither crash nor hang and must go on
//! serving a well-behaved client.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::queue::{MessageQueue, Namespace};
use crate::twin::Twin;
use crate::OpenOptions;

use super::{protocol, Remote, Server};

/// Feeds `data` to a fresh server over one connection: after a valid
/// handshake when the first byte is even, as the very first bytes
/// otherwise. Then closes its side, reads until the server closes too, and
/// checks that another client is served.
///
/// # Panics
///
/// When the server does not close the connection within 15 s of the
/// client's end (a hang) or stops serving other clients (the bug the
/// fuzzer looks for), or when the machine cannot host a server at all.
pub fn frames(data: &[u8]) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "mqtwin-fuzz-{}-{}.sock",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let server = Server::bind(&path, Twin::builder().virtual_time().trace().build())
        .expect("a server for the fuzz input");
    let (first, rest) = data.split_first().map_or((0, data), |(f, r)| (*f, r));
    let mut s = UnixStream::connect(&path).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    // The server may close at any point: write errors are expected.
    if first % 2 == 0 {
        let hello = protocol::encode(&protocol::Hello {
            magic: protocol::MAGIC,
            version: protocol::VERSION,
            umask: 0o022,
            rlimit_msgqueue: crate::limits::DEFAULT_RLIMIT_MSGQUEUE,
        })
        .expect("hello");
        let _ = s.write_all(&hello);
    }
    let _ = s.write_all(rest);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 64 * 1024];
    loop {
        match s.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // libFuzzer's timeout timer (SIGALRM) interrupts blocking reads.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
    let ns = Remote::connect(server.path()).expect("a second client is accepted");
    // The input may have changed the limits, filled the namespace or used
    // up this user's RLIMIT_MSGQUEUE budget (its queues outlive it): the
    // twin may then refuse the open, and that answer, the twin's own
    // error, also shows the server serving. A lost connection does not.
    let opened = ns.open(
        "/fuzz-check",
        &OpenOptions::read_write()
            .create()
            .nonblocking()
            .capacity(1)
            .max_msg_len(16),
    );
    let q = match opened {
        Ok(q) => q,
        Err(e @ crate::Error::Remote { .. }) => panic!("the server stopped serving: {e}"),
        Err(_) => return,
    };
    while q.try_receive_vec().is_ok() {}
    q.send(b"still serving", 1).expect("send");
    assert_eq!(q.try_receive_vec(), Ok((b"still serving".to_vec(), 1)));
}
