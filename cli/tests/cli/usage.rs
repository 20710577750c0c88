//! Bad arguments are usage errors (exit 2) with a clear message; names are
//! shortened wherever a message repeats them; `create` makes an empty
//! queue; counts of one are singular.

use super::{mqtwin, stderr};

#[test]
fn out_of_range_priorities_are_usage_errors() {
    for p in ["32768", "-1", "4294967296", "1.5"] {
        let o = mqtwin(&["send", "/q", "x", "--priority", p]);
        assert_eq!(o.status.code(), Some(2), "{p}: {o:?}");
        let err = stderr(&o);
        assert!(
            err.contains(&format!("invalid value '{p}' for '--priority")),
            "{err}"
        );
        assert!(err.contains("priorities are 0..=32767"), "{err}");
    }
}

#[test]
fn a_negative_timeout_is_explained() {
    for args in [
        &["receive", "/q", "--timeout", "-1"][..],
        &["send", "/q", "x", "-t", "-0.5"],
    ] {
        let o = mqtwin(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        assert!(
            stderr(&o).contains("a timeout cannot be negative"),
            "{args:?}: {o:?}"
        );
    }
}

#[test]
fn an_empty_name_is_called_empty() {
    for args in [
        &["stat", ""][..],
        &["rm", "/"],
        &["send", "", "x"],
        &["receive", ""],
        &["watch", ""],
        &["create", ""],
    ] {
        let o = mqtwin(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {o:?}");
        let err = stderr(&o);
        assert!(
            err.starts_with("error: queue name is empty"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("invalid"), "{args:?}: {err}");
    }
}

#[test]
fn a_long_invalid_name_is_shortened() {
    let long = format!("/{}", "n".repeat(300));
    for args in [
        &["stat", &long][..],
        &["send", &long, "x"],
        &["rm", &long[1..]],
    ] {
        let o = mqtwin(args);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        let err = stderr(&o);
        assert!(!err.contains(&"n".repeat(41)), "{err}");
        assert!(
            err.contains("(301 bytes)") || err.contains("(300 bytes)"),
            "{err}"
        );
        assert!(err.contains("more than 255 bytes"), "{err}");
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel {
    use super::*;
    use crate::{stdout, Name};

    use mqtwin::posix::Kernel;
    use mqtwin::{MessageQueue, Namespace, OpenOptions};

    #[test]
    fn a_long_valid_name_is_shortened_in_every_message() {
        let name = Name::new(&"l".repeat(200));
        let n = name.0.as_str();
        let shown = format!("{}…({} bytes)", &n[..40], n.len());
        let check = |o: &std::process::Output, text: &str| {
            assert!(!text.contains(&n[..41]), "{o:?}");
            assert!(text.contains(&shown), "{o:?}");
        };
        for args in [
            &["stat", n][..],
            &["receive", n, "-t", "0"],
            &["send", n, "x"],
            &["watch", n],
            &["rm", n],
        ] {
            let o = mqtwin(args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {o:?}");
            check(&o, &stderr(&o));
        }
        let o = mqtwin(&["create", n, "--capacity", "1"]);
        check(&o, &stdout(&o));
        let o = mqtwin(&["create", n, "--exclusive"]);
        check(&o, &stderr(&o));
        let o = mqtwin(&["send", n, "x"]);
        check(&o, &stdout(&o));
        let o = mqtwin(&["send", n, "y", "-t", "0"]);
        assert_eq!(o.status.code(), Some(3), "{o:?}");
        check(&o, &stderr(&o));
        let o = mqtwin(&["receive", n]);
        assert!(o.status.success(), "{o:?}");
        let o = mqtwin(&["rm", n]);
        check(&o, &stdout(&o));
    }

    #[test]
    fn create_makes_an_empty_queue_and_leaves_an_existing_one() {
        let name = Name::new("create");
        let n = name.0.as_str();
        let o = mqtwin(&[
            "create",
            n,
            "--capacity",
            "3",
            "--max-msg-len",
            "100",
            "--mode",
            "0640",
        ]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            stdout(&o),
            format!("created {n} (capacity 3 messages, max_msg_len 100 bytes)\n")
        );
        let q = Kernel.open(n, &OpenOptions::read_only()).unwrap();
        let a = q.attributes().unwrap();
        assert_eq!((a.capacity, a.max_msg_len, a.current_messages), (3, 100, 0));

        // Again: it exists, is left as it is, and what was not applied is said.
        let o = mqtwin(&["create", n, "--capacity", "5"]);
        assert!(o.status.success(), "{o:?}");
        assert_eq!(
            stdout(&o),
            format!(
                "{n} already exists (capacity 3 messages, max_msg_len 100 bytes); left as it is\n"
            )
        );
        assert_eq!(
            stderr(&o),
            format!("mqtwin: warning: {n} already exists with capacity 3, so --capacity 5 was not applied\n")
        );
        assert_eq!(q.attributes().unwrap().capacity, 3);

        let o = mqtwin(&["create", n, "--exclusive"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert_eq!(
            stderr(&o),
            format!("mqtwin: cannot create {n}: message queue \"{n}\" already exists\n")
        );

        // Attributes the namespace refuses are the library's error.
        let other = Name::new("create-bad");
        let o = mqtwin(&["create", &other.0, "--capacity", "0"]);
        assert_eq!(o.status.code(), Some(1), "{o:?}");
        assert!(stderr(&o).contains("invalid queue attributes"), "{o:?}");
        // Attributes are for creating: `send` wants --create with them.
        let o = mqtwin(&["send", n, "x", "--capacity", "3"]);
        assert_eq!(o.status.code(), Some(2), "{o:?}");
        assert!(stderr(&o).contains("only apply with --create"), "{o:?}");
    }

    #[test]
    fn a_count_of_one_is_singular() {
        let name = Name::new("one");
        let n = name.0.as_str();
        let o = mqtwin(&[
            "send",
            n,
            "x",
            "--create",
            "--capacity",
            "1",
            "--max-msg-len",
            "1",
        ]);
        assert_eq!(
            stdout(&o),
            format!("sent 1 byte to {n} at priority 0\n"),
            "{o:?}"
        );
        let o = mqtwin(&["stat", n]);
        let out = stdout(&o);
        for line in [
            "  capacity     1 message (mq_maxmsg)",
            "  max_msg_len  1 byte (mq_msgsize)",
            "  messages     1 (mq_curmsgs)",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "stat lacks {line:?}:\n{out}"
            );
        }
    }
}
