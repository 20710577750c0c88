//! `ls` and `stat` run as uid 65534 on queues root made: in a private mount
//! namespace with the mqueue filesystem mounted on a scratch directory
//! (`unshare`, as root), the binary run through `setpriv`. Skipped, with
//! one line saying so, when not root or without those tools.

use std::os::unix::fs::MetadataExt;
use std::process::Command;

use mqtwin::posix::Kernel;
use mqtwin::{MessageQueue, Namespace, OpenOptions};

use super::{stderr, stdout, Name};

/// Why this test cannot run here, if it cannot.
fn cannot_run() -> Option<&'static str> {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).ok() != Some(0) {
        return Some("not root");
    }
    for tool in ["unshare", "setpriv"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some("no unshare/setpriv (util-linux)");
        }
    }
    None
}

#[test]
fn ls_and_stat_show_queues_another_user_cannot_read() {
    if let Some(why) = cannot_run() {
        eprintln!("skipped ls_and_stat_show_queues_another_user_cannot_read: {why}");
        return;
    }
    let (private, public, write_only) = (Name::new("priv"), Name::new("pub"), Name::new("wo"));
    let (p, o, w) = (private.0.as_str(), public.0.as_str(), write_only.0.as_str());
    let q = Kernel
        .open(p, &OpenOptions::write_only().create().mode(0o600))
        .unwrap();
    q.send(b"12345", 1).unwrap();
    drop(
        Kernel
            .open(o, &OpenOptions::write_only().create().mode(0o644))
            .unwrap(),
    );
    let dir = std::env::temp_dir().join(format!("mqtwin-cli-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_mqtwin");
    let nobody = "setpriv --reuid 65534 --regid 65534 --clear-groups";
    // The write-only queue is made here, with no umask, so that it is 0622.
    let script = format!(
        "mount -t mqueue none '{d}' && (umask 0 && '{bin}' create {w} --mode 0622 >/dev/null) && \
         {nobody} '{bin}' ls && echo --- && \
         {nobody} '{bin}' stat {w} && echo --- && \
         {nobody} '{bin}' create {p} && echo --- && \
         {nobody} '{bin}' stat {p}; echo \"stat status $?\"",
        d = dir.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare runs");
    let _ = std::fs::remove_dir(&dir);
    let (text, err) = (stdout(&out), stderr(&out));
    let parts: Vec<&str> = text.split("---\n").collect();
    assert_eq!(parts.len(), 4, "{out:?}");

    let row = |name: &str| -> Vec<String> {
        parts[0]
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("ls lacks {name}:\n{}\n{err}", parts[0]))
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(row(p), [p, "0600", "0", "0", "?", "?"]);
    assert_eq!(row(w), [w, "0622", "0", "0", "?", "?"]);
    assert_eq!(row(o), [o, "0644", "0", "0", "0", "0"]);
    assert!(
        err.lines()
            .any(|l| l.starts_with("mqtwin: permission denied reading ")
                && l.ends_with(" as uid 65534: QSIZE and NOTIFY_PID show ? for them")),
        "{err}"
    );

    // A queue it may write: the attributes, the mode and owner, and why the rest is missing.
    for line in [
        "  capacity     10 messages (mq_maxmsg)",
        "  mode         0622",
        "  owner        uid 0, gid 0",
        "  notify       ?",
    ] {
        assert!(
            parts[1].lines().any(|l| l == line),
            "stat lacks {line:?}:\n{}",
            parts[1]
        );
    }
    let qsize = format!(
        "  qsize        ? (cannot read {}/{}: permission denied reading the queue as uid 65534)",
        dir.display(),
        &w[1..]
    );
    assert!(
        parts[1].lines().any(|l| l == qsize),
        "stat lacks {qsize:?}:\n{}",
        parts[1]
    );

    // A queue it may not open at all: `create` leaves it, `stat` gives
    // the reason, with the name.
    assert_eq!(parts[2], format!("{p} already exists; left as it is\n"));
    assert!(parts[3].ends_with("stat status 1\n"), "{out:?}");
    let why = format!(
        "mqtwin: cannot open {p}: permission denied on message queue \"{p}\" (its mode is 0600, \
         owner uid 0, gid 0; mqtwin runs as uid 65534)"
    );
    assert!(
        err.lines().any(|l| l == why),
        "stderr lacks {why:?}:\n{err}"
    );
}
