//! `examples/sender.rs` and `examples/receiver.rs` as two processes over
//! one twin [`Server`], chosen with `MQTWIN=remote:PATH` (what a macOS user
//! runs over `mqtwin serve`). Both children are killed if the test fails,
//! and every wait is bounded.
//!
//! The example binaries are built by `cargo test --features remote` (all
//! targets); run alone with `--test remote_examples`, build them first with
//! `cargo build --features remote --example sender --example receiver`.

#![cfg(unix)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mqtwin::remote::Server;
use mqtwin::twin::Twin;

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("examples").join(name))
        .unwrap();
    assert!(
        path.exists(),
        "{} is not built: cargo build --features remote --example sender --example receiver",
        path.display()
    );
    path
}

#[test]
fn sender_and_receiver_examples_talk_over_the_server() {
    let path = std::env::temp_dir().join(format!("mqtwin-examples-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = Server::bind(&path, Twin::builder().trace().build()).unwrap();
    let backend = format!("remote:{}", path.display());
    let queue = format!("/mqtwin-examples-{}", std::process::id());
    let spawn = |name: &str, extra: &[&str]| {
        Kill(
            Command::new(example(name))
                .args(["--queue", &queue, "--timeout-ms", "20000"])
                .args(extra)
                .env("MQTWIN", &backend)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start the example"),
        )
    };
    let receiver = spawn("receiver", &[]);
    let sender = spawn("sender", &["--interval-ms", "10"]);
    let start = Instant::now();
    let wait = |mut c: Kill| {
        loop {
            if c.0.try_wait().unwrap().is_some() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the examples took too long"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let c = std::mem::replace(&mut c.0, Command::new("true").spawn().unwrap());
        c.wait_with_output().unwrap()
    };
    let sent = wait(sender);
    let got = wait(receiver);
    assert!(sent.status.success(), "sender: {sent:?}");
    assert!(got.status.success(), "receiver: {got:?}");
    let out = String::from_utf8_lossy(&got.stdout);
    for i in 1..=10 {
        assert!(out.contains(&format!("Hello, World : {i}")), "{out}");
    }
    // Both went through the server's twin, and the receiver unlinked the queue.
    let trace = server.twin().trace_dump();
    assert_eq!(trace.matches("send(").count(), 10, "{trace}");
    assert!(trace.contains(&format!("unlink({queue:?})")), "{trace}");
    assert_eq!(server.twin().queue_count(), 0);
}
