//! Runs the `mqtwin` binary end to end: against real kernel queues (Linux),
//! each with a unique name (pid + counter) that is unlinked even when the
//! test panics, and the `--twin` demo everywhere.

use std::process::{Command, Output};

fn mqtwin(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mqtwin"))
        .args(args)
        .output()
        .expect("the mqtwin binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A unique kernel queue name, unlinked when dropped (also while a
/// failing test unwinds).
#[cfg(all(target_os = "linux", feature = "posix"))]
struct Name(String);

#[cfg(all(target_os = "linux", feature = "posix"))]
impl Name {
    fn new(tag: &str) -> Name {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Name(format!("/mqtwin-cli-{}-{n}-{tag}", std::process::id()))
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
impl Drop for Name {
    fn drop(&mut self) {
        use mqtwin::Namespace;
        let _ = mqtwin::posix::Kernel.unlink(&self.0);
    }
}

/// Consuming commands and a standard output that fails (issue 14, item 1).
#[cfg(all(target_os = "linux", feature = "posix"))]
#[path = "cli/output.rs"]
mod output;

/// `ls` and `stat` as a user who may not read every queue (item 2).
#[cfg(all(target_os = "linux", feature = "posix"))]
#[path = "cli/permissions.rs"]
mod permissions;

/// Usage errors, names in messages, `create`, counts (items 3 to 5).
#[path = "cli/usage.rs"]
mod usage;

#[test]
fn help_lists_every_subcommand_and_the_exit_statuses() {
    let o = mqtwin(&["--help"]);
    assert!(o.status.success(), "{o:?}");
    let help = stdout(&o);
    for word in [
        "ls",
        "stat",
        "create",
        "send",
        "receive",
        "watch",
        "rm",
        "--twin",
        "Exit status",
        "mount -t mqueue",
    ] {
        assert!(help.contains(word), "help lacks {word:?}:\n{help}");
    }
    let send = stdout(&mqtwin(&["send", "--help"]));
    for word in [
        "--priority",
        "--timeout",
        "--hex",
        "--create",
        "--capacity",
        "--max-msg-len",
        "--mode",
    ] {
        assert!(send.contains(word), "send --help lacks {word:?}:\n{send}");
    }
    // No arguments: the help, as a usage error.
    assert_eq!(mqtwin(&[]).status.code(), Some(2));
    // --twin is a demo, not a mode for the subcommands.
    let o = mqtwin(&["--twin", "ls"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}

#[test]
fn twin_demo_runs_the_scripted_session() {
    let o = mqtwin(&["--twin"]);
    assert!(o.status.success(), "{o:?}");
    let out = stdout(&o);
    for line in [
        "sent 12 bytes to /demo at priority 1",
        "  capacity     4 messages (mq_maxmsg)",
        "  messages     2 (mq_curmsgs)",
        "  qsize        15 bytes queued (QSIZE)",
        "priority 7, 3 bytes, hex: 00ff10",
        "priority 1, 12 bytes, text: hello, queue",
        "mqtwin: cannot receive from /demo: the queue is empty and --timeout 0 does not wait",
        "removed /demo",
        "mqtwin: cannot open /demo: no message queue named \"/demo\"",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "demo lacks {line:?}:\n{out}"
        );
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["send", "/q", "zz", "--hex"][..],
        &["send", "/q", "x", "--capacity", "3"],
        &["send", "/q", "x", "--create", "--mode", "9"],
        &["receive", "/q", "--timeout", "-1"],
        &["receive", "/q", "--hex", "--text"],
    ] {
        let o = mqtwin(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel {
    use super::*;
    use std::io::Read;
    use std::process::Stdio;

    use mqtwin::posix::Kernel;
    use mqtwin::{MessageQueue, Namespace, Notify, OpenOptions};

    #[test]
    fn send_stat_receive_rm_on_a_real_queue() {
        let name = Name::new("e2e");
        let q = name.0.as_str();
        let o = mqtwin(&[
            "send",
            q,
            "hello",
            "-p",
            "9",
            "--create",
            "--capacity",
            "4",
            "--max-msg-len",
            "64",
            "--mode",
            "640",
        ]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(stdout(&o), format!("sent 5 bytes to {q} at priority 9\n"));
        // Without the slash, as hex, not waiting.
        let o = mqtwin(&[
            "send",
            &q[1..],
            "00 ff",
            "--hex",
            "--priority",
            "2",
            "--timeout",
            "0",
        ]);
        assert!(o.status.success(), "{o:?}");

        let o = mqtwin(&["stat", q]);
        assert!(o.status.success(), "{o:?}");
        let stat = stdout(&o);
        for line in [
            q,
            "  capacity     4 messages (mq_maxmsg)",
            "  max_msg_len  64 bytes (mq_msgsize)",
            "  messages     2 (mq_curmsgs)",
        ] {
            assert!(
                stat.lines().any(|l| l == line),
                "stat lacks {line:?}:\n{stat}"
            );
        }

        let o = mqtwin(&["receive", q]);
        assert_eq!(stdout(&o), "priority 9, 5 bytes, text: hello\n", "{o:?}");
        let o = mqtwin(&["receive", q, "--text", "--timeout", "1"]);
        assert_eq!(
            stdout(&o),
            "priority 2, 2 bytes, text: \\u{0}\u{fffd}\n",
            "{o:?}"
        );
        let o = mqtwin(&["receive", q, "--timeout", "0.05"]);
        assert_eq!(o.status.code(), Some(3), "{o:?}");
        assert_eq!(stderr(&o), format!("mqtwin: cannot receive from {q}: the deadline passed before the operation could complete\n"));

        let o = mqtwin(&["rm", q]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(stdout(&o), format!("removed {q}\n"));
        assert_eq!(
            Kernel.open(q, &OpenOptions::read_only()).err(),
            Some(mqtwin::Error::NotFound { name: q.into() })
        );
    }

    #[test]
    fn a_missing_queue_is_named_in_the_error() {
        let name = Name::new("missing");
        let q = name.0.as_str();
        for args in [
            &["stat", q][..],
            &["receive", q, "-t", "0"],
            &["send", q, "x"],
            &["watch", q],
            &["rm", q],
        ] {
            let o = mqtwin(args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
            assert!(stderr(&o).starts_with("mqtwin: cannot "), "{args:?}: {o:?}");
            assert!(
                stderr(&o).ends_with(&format!(": no message queue named \"{q}\"\n")),
                "{args:?}: {o:?}"
            );
        }
        // A name that breaks the rules is a bad argument.
        let o = mqtwin(&["send", "/bad/name", "x"]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(
            stderr(&o).contains("it contains a '/' after the leading one"),
            "{o:?}"
        );
    }

    #[test]
    fn watch_prints_every_message_as_it_arrives() {
        let name = Name::new("watch");
        let q = name.0.as_str();
        let sender = Kernel
            .open(
                q,
                &OpenOptions::write_only()
                    .create()
                    .capacity(4)
                    .max_msg_len(32),
            )
            .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_mqtwin"))
            .args(["watch", q, "--count", "3"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // The watcher may or may not be waiting yet: either way it prints
        // all three, in priority order for what was queued together.
        sender.send(b"one", 1).unwrap();
        sender.send(&[0xff, 0x00], 0).unwrap();
        sender.send(b"three", 3).unwrap();
        let status = child.wait().unwrap();
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(status.success(), "{status:?} {out}");
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        assert_eq!(
            lines,
            [
                "priority 0, 2 bytes, hex: ff00",
                "priority 1, 3 bytes, text: one",
                "priority 3, 5 bytes, text: three"
            ]
        );
    }

    /// `ls` and the mqueue-filesystem half of `stat` in a private mount
    /// namespace with the mqueue filesystem mounted on a scratch directory
    /// (needs root with CAP_SYS_ADMIN, as the contract suite does), then
    /// `ls` where none is mounted.
    #[test]
    fn ls_and_stat_read_the_mqueue_filesystem() {
        let name = Name::new("ls");
        let q = name.0.as_str();
        let sender = Kernel
            .open(q, &OpenOptions::write_only().create().mode(0o640))
            .unwrap();
        sender.send(b"12345", 1).unwrap();
        // Signal 0 delivers nothing, but registers this process (NOTIFY_PID).
        sender
            .notify(Notify::Signal {
                signal: 0,
                value: 0,
            })
            .unwrap();
        let pid = std::process::id().to_string();
        let dir = std::env::temp_dir().join(format!("mqtwin-cli-mqfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bin = env!("CARGO_BIN_EXE_mqtwin");
        let script = format!(
            "mount -t mqueue none '{d}' && '{bin}' ls && echo --- && '{bin}' stat {q} && echo --- && \
             umount '{d}' && '{bin}' ls",
            d = dir.display()
        );
        let o = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .output()
            .expect("unshare (util-linux) runs");
        let _ = std::fs::remove_dir(&dir);
        let out = stdout(&o);
        let parts: Vec<&str> = out.split("---\n").collect();
        assert_eq!(parts.len(), 3, "{o:?}");
        let row = parts[0]
            .lines()
            .find(|l| l.starts_with(&format!("{q} ")))
            .unwrap_or_else(|| panic!("ls lacks {q}:\n{}", parts[0]));
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [q, "0640", "0", "0", "5", pid.as_str()],
            "{row}"
        );
        for line in [
            "  qsize        5 bytes queued (QSIZE)",
            &format!("  notify       signal 0, registered by pid {pid}"),
            &format!("  raw          QSIZE:5 NOTIFY:0 SIGNO:0 NOTIFY_PID:{pid}"),
            "  mode         0640",
            "  owner        uid 0, gid 0",
        ] {
            assert!(
                parts[1].lines().any(|l| l == line),
                "stat lacks {line:?}:\n{}",
                parts[1]
            );
        }
        // Unmounted again (unless the host mounts one itself): the way to mount it.
        let host_has_one = std::fs::read_to_string("/proc/self/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some("mqueue"));
        if !host_has_one {
            assert_eq!(o.status.code(), Some(1), "{o:?}");
            assert!(
                stderr(&o).contains("mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue"),
                "{o:?}"
            );
        }
    }
}

/// Without the kernel backend (macOS, or `--no-default-features`) the
/// subcommands parse but say that only `--twin` runs here.
#[cfg(not(all(target_os = "linux", feature = "posix")))]
#[test]
fn kernel_subcommands_explain_that_only_the_twin_runs_here() {
    for args in [&["ls"][..], &["send", "/q", "x"], &["rm", "/q"]] {
        let o = mqtwin(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("the kernel subcommands need Linux"), "{err}");
        assert!(err.contains("mqtwin --twin"), "{err}");
    }
}
