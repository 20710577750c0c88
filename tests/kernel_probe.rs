//! Probes that pin the crate's shared rules to the kernel's own answers.
//!
//! The posix backend checks names with the shared `mqtwin::name` rules
//! before calling the kernel, so the contract suite alone would only test
//! the shared code. These probes hand every rule's example straight to
//! `mq_open`/`mq_unlink` through `libc` and check that the kernel returns the
//! errno the shared rule claims. They also pin the crate's spelled-out errno
//! numbers to `libc`'s.

#![cfg(all(target_os = "linux", feature = "posix"))]
#![allow(unsafe_code)]

use std::ffi::CString;

use mqtwin::error::errno;
use mqtwin::name;

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Raw `mq_open(name, O_CREAT|O_RDWR, 0600, {1,16})` and `mq_unlink(name)`,
/// returning their errnos (0 on success, after which the queue is removed).
fn kernel_errnos(name: &[u8]) -> (i32, i32) {
    let c = CString::new(name).expect("probe names have no NUL");
    // SAFETY: mq_attr is plain integers; all-zero is valid.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 1;
    attr.mq_msgsize = 16;
    // SAFETY: valid C string and attr pointer for the duration of the call.
    let fd = unsafe { libc::mq_open(c.as_ptr(), libc::O_CREAT | libc::O_RDWR, 0o600, &attr) };
    let open = if fd < 0 { last_errno() } else { 0 };
    if fd >= 0 {
        // SAFETY: closing the descriptor we just got.
        unsafe { libc::mq_close(fd) };
    }
    // SAFETY: valid C string.
    let unlink = if unsafe { libc::mq_unlink(c.as_ptr()) } < 0 {
        last_errno()
    } else {
        0
    };
    (open, unlink)
}

#[test]
fn name_rules_match_kernel() {
    let pid = std::process::id();
    let tail = |n: usize| "x".repeat(n);
    let base = format!("probe{pid}");
    let mut cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"noslash".to_vec(),
        b"/".to_vec(),
        b"//x".to_vec(),
        b"/a/b".to_vec(),
        b"/a/".to_vec(),
        b"/.".to_vec(),
        b"/..".to_vec(),
        format!("/{base}...").into_bytes(),
        format!("/{base} \n\t\x01\x7f").into_bytes(),
        format!("/{base}{}", tail(255 - base.len())).into_bytes(),
        format!("/{base}{}", tail(256 - base.len())).into_bytes(),
        format!("/{}/{}", tail(150), tail(150)).into_bytes(),
        format!("/{}", tail(4095)).into_bytes(),
        format!("/{}/", tail(5000)).into_bytes(),
    ];
    cases.push([b"/".as_slice(), base.as_bytes(), b"\xff\xfe"].concat());
    for name in cases {
        let expected = match name::validate(&name) {
            Ok(_) => 0,
            Err(e) => e.errno(),
        };
        let (open, unlink) = kernel_errnos(&name);
        let shown = String::from_utf8_lossy(&name[..name.len().min(40)]).into_owned();
        assert_eq!(open, expected, "mq_open({shown:?}...) errno");
        // A valid name was created and then unlinked (0); an invalid one fails
        // unlink with the same error.
        assert_eq!(unlink, expected, "mq_unlink({shown:?}...) errno");
    }
}

#[test]
fn errno_constants_match_libc() {
    for (ours, theirs) in [
        (errno::EPERM, libc::EPERM),
        (errno::ENOENT, libc::ENOENT),
        (errno::EINTR, libc::EINTR),
        (errno::EBADF, libc::EBADF),
        (errno::EAGAIN, libc::EAGAIN),
        (errno::ENOMEM, libc::ENOMEM),
        (errno::EACCES, libc::EACCES),
        (errno::EBUSY, libc::EBUSY),
        (errno::EEXIST, libc::EEXIST),
        (errno::EINVAL, libc::EINVAL),
        (errno::ENFILE, libc::ENFILE),
        (errno::EMFILE, libc::EMFILE),
        (errno::ENOSPC, libc::ENOSPC),
        (errno::ENAMETOOLONG, libc::ENAMETOOLONG),
        (errno::EMSGSIZE, libc::EMSGSIZE),
        (errno::ETIMEDOUT, libc::ETIMEDOUT),
    ] {
        assert_eq!(ours, theirs);
    }
}
