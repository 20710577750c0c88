//! A command that takes a message off a queue must not lose it when the
//! output fails: a standard output closed at start is refused before the
//! queue is touched; a write that fails (EPIPE, ENOSPC) puts the message
//! back. Every case ends with the message still on the queue.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mqtwin::posix::Kernel;
use mqtwin::{MessageQueue, Namespace, OpenOptions};

use super::{stderr, Name};

const BIN: &str = env!("CARGO_BIN_EXE_mqtwin");

/// A fresh queue holding one message, "keep" at priority 5.
fn queue_with_one(tag: &str) -> (Name, mqtwin::posix::Queue) {
    let name = Name::new(tag);
    let q = Kernel
        .open(
            &name.0,
            &OpenOptions::read_write()
                .create()
                .capacity(4)
                .max_msg_len(64)
                .nonblocking(),
        )
        .unwrap();
    q.send(b"keep", 5).unwrap();
    (name, q)
}

/// The queue's messages, taken off it, as (payload, priority).
fn drain(q: &mqtwin::posix::Queue) -> Vec<(Vec<u8>, u32)> {
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while let Ok(m) = q.try_receive(&mut buf) {
        got.push((buf[..m.len].to_vec(), m.priority));
    }
    got
}

/// Runs `mqtwin ARGS >&-` (standard output closed) through sh.
fn with_stdout_closed(args: &[&str]) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg("exec \"$@\" >&-")
        .arg("sh")
        .arg(BIN)
        .args(args)
        .output()
        .expect("sh runs")
}

#[test]
fn a_closed_stdout_is_refused_before_the_queue_is_touched() {
    let (name, q) = queue_with_one("closed");
    let n = name.0.as_str();
    for args in [
        &["receive", n][..],
        &["receive", n, "--timeout", "0"],
        &["watch", n, "--count", "1"],
        &["send", n, "more"],
        &["rm", n],
    ] {
        let o = with_stdout_closed(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        assert!(
            stderr(&o).starts_with("mqtwin: standard output is closed"),
            "{args:?}: {o:?}"
        );
        assert_eq!(q.attributes().unwrap().current_messages, 1, "{args:?}");
    }
    // `rm` did nothing either: the name still opens.
    assert!(Kernel.open(n, &OpenOptions::read_only()).is_ok());
    assert_eq!(drain(&q), [(b"keep".to_vec(), 5)]);
    // Redirected to /dev/null on purpose, the output is discarded as asked.
    q.send(b"drop", 1).unwrap();
    let o = Command::new(BIN)
        .args(["receive", n])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(drain(&q), []);
}

#[test]
fn a_pipe_whose_reader_left_gets_nothing_and_the_message_goes_back() {
    for watch in [false, true] {
        let name = Name::new("epipe");
        let n = name.0.as_str();
        let q = Kernel
            .open(
                n,
                &OpenOptions::read_write()
                    .create()
                    .capacity(4)
                    .max_msg_len(64)
                    .nonblocking(),
            )
            .unwrap();
        let args: &[&str] = if watch {
            &["watch", n, "--count", "1"]
        } else {
            &["receive", n, "--timeout", "20"]
        };
        let mut child = Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reader leaves before there is anything to receive, so the
        // write of what the child then receives fails with EPIPE.
        drop(child.stdout.take());
        q.send(b"late", 7).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?} did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let o = child.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        let err = stderr(&o);
        assert!(err.contains("Broken pipe"), "{args:?}: {err}");
        assert!(
            err.contains(&format!("the message was put back on {n}")),
            "{args:?}: {err}"
        );
        assert_eq!(drain(&q), [(b"late".to_vec(), 7)], "{args:?}");
    }
}

#[test]
fn a_full_device_gets_nothing_and_says_what_was_done() {
    let (name, q) = queue_with_one("enospc");
    let n = name.0.as_str();
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    for args in [&["receive", n][..], &["watch", n, "--count", "1"]] {
        let o = Command::new(BIN)
            .args(args)
            .stdout(full())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
        assert!(
            stderr(&o).contains("No space left on device"),
            "{args:?}: {o:?}"
        );
        assert!(stderr(&o).contains("put back"), "{args:?}: {o:?}");
        assert_eq!(q.attributes().unwrap().current_messages, 1, "{args:?}");
    }
    // A command whose action is done says so when only its report fails.
    let o = Command::new(BIN)
        .args(["send", n, "x"])
        .stdout(full())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        stderr(&o).starts_with(&format!(
            "mqtwin: sent 1 byte to {n} at priority 0, but cannot write that to the output: "
        )),
        "{o:?}"
    );
    assert_eq!(drain(&q), [(b"keep".to_vec(), 5), (b"x".to_vec(), 0)]);
}
