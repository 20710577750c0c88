//! Kernel backend: a thread notification when the process has no file
//! descriptor left (docs/semantics.md Y18). Its own test binary, because it
//! exhausts the process's descriptors for a moment.

#![cfg(all(target_os = "linux", feature = "posix"))]
#![allow(unsafe_code)]

use std::sync::mpsc;
use std::time::Duration;

use mqtwin::posix::Kernel;
use mqtwin::{Error, MessageQueue, Namespace, Notify, OpenOptions};

mod common;

use common::{unique_name, Unlink};

fn nofile() -> libc::rlimit {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `r` is a valid rlimit to write into.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) }, 0);
    r
}

fn set_nofile(r: &libc::rlimit) {
    // SAFETY: `r` is a valid rlimit; lowering (or restoring) the soft limit
    // needs no privilege.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, r) }, 0);
}

#[test]
fn thread_notification_survives_descriptor_exhaustion() {
    let name = unique_name("nofds");
    let _cleanup = Unlink(name.clone());
    let q = Kernel
        .open(
            &name,
            &OpenOptions::read_write()
                .create()
                .capacity(2)
                .max_msg_len(16),
        )
        .unwrap();

    // Use up every descriptor under a lowered soft limit.
    let saved = nofile();
    set_nofile(&libc::rlimit {
        rlim_cur: saved.rlim_cur.min(256),
        rlim_max: saved.rlim_max,
    });
    let mut fillers = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
            Err(e) => panic!("unexpected error while filling descriptors: {e}"),
        }
    }
    let starved = q.notify(Notify::thread(|| {}));
    let starved_again = q.notify(Notify::thread(|| {}));
    drop(fillers);
    set_nofile(&saved);
    assert_eq!(starved, Err(Error::ResourceLimit));
    assert_eq!(starved_again, Err(Error::ResourceLimit));

    // Descriptors are back: thread notifications work again (glibc's helper
    // would say ENOSYS for the rest of the process's life).
    let (tx, rx) = mpsc::channel();
    q.notify(Notify::thread(move || {
        let _ = tx.send("fired");
    }))
    .unwrap();
    q.send(b"x", 0).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("fired"));
}
