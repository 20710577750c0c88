//! `mqtwin serve` and `mqtwin ctl` end to end: a server process on a
//! temporary socket (killed at the end, also when the test fails), a client
//! of it through the library, and the control subcommands.

#![cfg(all(unix, feature = "remote"))]

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use mqtwin::remote::Remote;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mqtwin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtwin"))
        .args(args)
        .output()
        .expect("the mqtwin binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn serve_then_drive_it_with_ctl() {
    let socket = std::env::temp_dir().join(format!("mqtwin-cli-serve-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let path = socket.to_str().unwrap();
    let mut serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_mqtwin"))
            .args(["serve", "--socket", path, "--virtual-time", "--trace", "-"])
            .args(["--msg-max", "20", "--faults", "seed=3"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mqtwin serve"),
    );
    let mut out = BufReader::new(serve.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), format!("serving {path}"));

    let ns = Remote::connect(&socket).unwrap();
    let q = ns
        .open("/cli", &OpenOptions::read_write().create())
        .unwrap();
    std::thread::scope(|s| {
        let waiter = s.spawn(|| q.receive_vec_timeout(Duration::from_secs(30)));
        let o = mqtwin(&[
            "ctl",
            "--socket",
            path,
            "wait-blocked",
            "1",
            "--timeout",
            "20s",
        ]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            stdout(&mqtwin(&["ctl", "--socket", path, "blocked"])).trim(),
            "1"
        );
        let o = mqtwin(&["ctl", "--socket", path, "advance", "30s"]);
        assert!(
            o.status.success() && stdout(&o).starts_with("now "),
            "{o:?}"
        );
        assert_eq!(waiter.join().unwrap(), Err(Error::TimedOut));
    });
    // Nobody waits now: advance-to-deadline has nothing to do (status 3).
    let o = mqtwin(&["ctl", "--socket", path, "advance-to-deadline"]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    // Limits: the server's option, then a change through ctl.
    let o = mqtwin(&["ctl", "--socket", path, "limits", "--queues-max", "1"]);
    assert!(stdout(&o).contains("queues_max=1 msg_max=20 "), "{o:?}");
    assert_eq!(
        ns.open("/second", &OpenOptions::read_write().create())
            .unwrap_err(),
        Error::TooManyQueues
    );
    let faults = stdout(&mqtwin(&["ctl", "--socket", path, "faults"]));
    assert!(faults.contains("FaultPlan::new(3)"), "{faults}");
    // A new plan at run time: every send fails with ENOMEM, then no faults.
    let o = mqtwin(&["ctl", "--socket", path, "faults", "--set", "seed=5,send=1"]);
    assert!(stdout(&o).contains("FaultPlan::new(5)"), "{o:?}");
    assert_eq!(q.send(b"x", 0), Err(Error::OutOfMemory));
    let o = mqtwin(&["ctl", "--socket", path, "faults", "--clear"]);
    assert!(stdout(&o).contains("no fault plan"), "{o:?}");
    q.send(b"x", 0).unwrap();
    let trace = stdout(&mqtwin(&["ctl", "--socket", path, "trace"]));
    assert!(trace.contains("receive(\"/cli\""), "{trace}");
    // Stop: the server prints its trace and exits.
    let o = mqtwin(&["ctl", "--socket", path, "stop"]);
    assert!(o.status.success(), "{o:?}");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.contains("open(\"/second\""), "{rest}");
    let status = serve.0.wait().unwrap();
    assert!(status.success());
    assert!(!socket.exists(), "the socket file is removed");
}

#[test]
fn ctl_without_a_server_and_bad_arguments_fail_clearly() {
    let o = mqtwin(&["ctl", "--socket", "/nonexistent/mqtwin.sock", "blocked"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach the server"));
    let o = mqtwin(&["ctl", "--socket", "/x", "advance", "5 parsecs"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = mqtwin(&["serve", "--socket", "/x", "--faults", "disk=1"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let help = stdout(&mqtwin(&["ctl", "--help"]));
    for word in [
        "advance",
        "advance-to-deadline",
        "wait-blocked",
        "limits",
        "trace",
        "stop",
    ] {
        assert!(help.contains(word), "ctl help lacks {word}:\n{help}");
    }
}
