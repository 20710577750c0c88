//! Kernel backend: a queue as a file descriptor (`IntoRawFd`, `FromRawFd`,
//! `OwnedFd` both ways). The twin has no descriptors, so these are not in the
//! contract suite.

#![cfg(all(target_os = "linux", feature = "posix"))]
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use mqtwin::posix::{Kernel, Queue};
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

mod common;

use common::{unique_name, Unlink};

fn create(tag: &str) -> (Unlink, Queue) {
    let name = unique_name(&format!("fd-{tag}"));
    let options = OpenOptions::read_write()
        .create()
        .capacity(2)
        .max_msg_len(16);
    let q = Kernel.open(&name, &options).unwrap();
    (Unlink(name), q)
}

/// Whether `fd` is an open descriptor.
fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

#[test]
fn owned_fd_round_trip_keeps_the_queue_open() {
    let (u, q) = create("owned");
    assert_eq!(q.send(b"kept", 3), Ok(()));
    let raw = q.as_raw_fd();
    let fd: OwnedFd = q.into();
    assert_eq!(fd.as_raw_fd(), raw);
    assert!(is_open(raw), "the conversion does not close");
    assert!(
        points_to(raw, &u.0),
        "an mqueue descriptor reads as its name"
    );
    let q = Queue::try_from(fd).unwrap();
    assert_eq!(q.try_receive_vec(), Ok((b"kept".to_vec(), 3)));
    // The cached limit is back: size errors name it.
    assert_eq!(
        q.send(&[0; 17], 0),
        Err(Error::MessageTooLong { len: 17, limit: 16 })
    );
    drop(q);
    assert!(
        !is_open(raw) || !points_to(raw, &u.0),
        "dropping the queue closes the descriptor"
    );
}

#[test]
fn raw_fd_round_trip_reads_the_limit_lazily() {
    let (_u, q) = create("raw");
    let raw = q.into_raw_fd();
    assert!(is_open(raw));
    // SAFETY: `raw` came from `into_raw_fd` and nothing else owns it.
    let q = unsafe { Queue::from_raw_fd(raw) };
    assert_eq!(
        q.send(&[0; 17], 0),
        Err(Error::MessageTooLong { len: 17, limit: 16 })
    );
    let mut small = [0u8; 4];
    assert_eq!(
        q.receive(&mut small),
        Err(Error::BufferTooSmall {
            len: 4,
            msg_size: 16
        })
    );
    assert_eq!(q.send(b"x", 1), Ok(()));
    assert_eq!(q.receive_vec(), Ok((b"x".to_vec(), 1)));
}

#[test]
fn a_descriptor_that_is_not_a_queue_is_refused_and_closed() {
    let file = std::fs::File::open("/proc/self/stat").unwrap();
    let raw = file.as_raw_fd();
    let fd = OwnedFd::from(file);
    assert_eq!(
        Queue::try_from(fd).map(drop),
        Err(Error::Os { errno: libc::EBADF })
    );
    assert!(!is_open(raw) || !points_to(raw, "stat"));
}

/// Whether descriptor `raw` is open on a file whose path ends with `end`.
/// (Another test thread may reuse a closed descriptor's number at once, so
/// "closed" is checked as "no longer ours".)
fn points_to(raw: i32, end: &str) -> bool {
    let link = std::fs::read_link(format!("/proc/self/fd/{raw}"));
    matches!(link, Ok(p) if p.to_string_lossy().ends_with(end))
}
