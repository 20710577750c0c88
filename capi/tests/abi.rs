//! Edge inputs through the C ABI, from Rust: NULL pointers, huge lengths,
//! bad priorities and timespecs, foreign and stale descriptors, non-UTF-8
//! names. Every call returns an errno (the kernel's where it has one),
//! none panics or crashes.

#![cfg(unix)]

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint};
use std::ptr::{null, null_mut};

use mqtwin_capi::{
    mq_close, mq_getattr, mq_notify, mq_receive, mq_send, mq_setattr, mq_timedreceive,
    mq_timedsend, mq_unlink, mqtwin_advance, mqtwin_advance_to_next_deadline, mqtwin_blocked,
    mqtwin_capi_open, MqAttr,
};

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn name(tag: &str) -> CString {
    CString::new(format!("/abi-{}-{tag}", std::process::id())).expect("no NUL")
}

fn open(n: &CString, oflag: c_int, attr: Option<MqAttr>) -> c_int {
    let attr_ptr = attr.as_ref().map_or(null(), |a| a as *const MqAttr);
    // SAFETY: a valid name and attr (or NULL).
    unsafe { mqtwin_capi_open(n.as_ptr(), oflag | libc::O_CREAT, 0o600, attr_ptr) }
}

fn attr(maxmsg: i64, msgsize: i64) -> MqAttr {
    MqAttr {
        mq_maxmsg: maxmsg as _,
        mq_msgsize: msgsize as _,
        ..MqAttr::default()
    }
}

/// `(return value, errno)` of a call returning -1 on failure.
fn r(v: isize) -> (isize, c_int) {
    (v, if v == -1 { errno() } else { 0 })
}

#[test]
fn edge_inputs_get_errnos() {
    // SAFETY (whole test): every pointer passed is NULL, a live local, or
    // deliberately a length larger than the buffer where the library must
    // refuse before touching memory (checked by the expected errno).
    unsafe {
        // Names.
        assert_eq!(
            r(mqtwin_capi_open(null(), libc::O_RDONLY, 0, null()) as isize),
            (-1, libc::EFAULT)
        );
        assert_eq!(r(mq_unlink(null()) as isize), (-1, libc::EFAULT));
        let bad_utf8 = [b'/', 0xff, 0xfe, 0];
        assert_eq!(
            r(mqtwin_capi_open(bad_utf8.as_ptr().cast(), libc::O_RDONLY, 0, null()) as isize),
            (-1, libc::EINVAL)
        );
        let long = CString::new(format!("/{}", "n".repeat(300))).unwrap();
        assert_eq!(
            r(open(&long, libc::O_RDWR, None) as isize),
            (-1, libc::ENAMETOOLONG)
        );
        let empty = CString::new("").unwrap();
        assert_eq!(r(mq_unlink(empty.as_ptr()) as isize), (-1, libc::EINVAL));

        // Attributes: huge, negative.
        let n = name("edge");
        assert_eq!(
            r(open(&n, libc::O_RDWR, Some(attr(i64::MAX, 16))) as isize),
            (-1, libc::EINVAL)
        );
        assert_eq!(
            r(open(&n, libc::O_RDWR, Some(attr(4, i64::MIN))) as isize),
            (-1, libc::EINVAL)
        );
        let q = open(&n, libc::O_RDWR, Some(attr(2, 16)));
        assert!(q >= 0, "open: errno {}", errno());

        // Sends: bad priorities, huge lengths, NULL.
        let msg = b"hello";
        for prio in [32768, c_uint::MAX] {
            assert_eq!(
                r(mq_send(q, msg.as_ptr().cast(), 5, prio) as isize),
                (-1, libc::EINVAL)
            );
        }
        assert_eq!(
            r(mq_send(q, msg.as_ptr().cast(), usize::MAX, 0) as isize),
            (-1, libc::EMSGSIZE)
        );
        assert_eq!(r(mq_send(q, null(), 3, 0) as isize), (-1, libc::EFAULT));

        // Timespecs.
        let bad = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: 1_000_000_000,
            },
            libc::timespec {
                tv_sec: -1,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: 0,
                tv_nsec: -1,
            },
            libc::timespec {
                tv_sec: libc::time_t::MIN,
                tv_nsec: i64::MAX as _,
            },
        ];
        for ts in &bad {
            assert_eq!(
                r(mq_timedsend(q, msg.as_ptr().cast(), 5, 0, ts) as isize),
                (-1, libc::EINVAL)
            );
            let mut buf = [0u8; 16];
            assert_eq!(
                r(mq_timedreceive(
                    q,
                    buf.as_mut_ptr().cast(),
                    16,
                    null_mut(),
                    ts
                )),
                (-1, libc::EINVAL)
            );
        }
        let huge = libc::timespec {
            tv_sec: libc::time_t::MAX,
            tv_nsec: 999_999_999,
        };
        assert_eq!(
            r(mq_timedsend(q, msg.as_ptr().cast(), 5, 3, &huge) as isize),
            (0, 0)
        );

        // Receives: a buffer claimed huge is only used up to the message size.
        let mut buf = [0u8; 16];
        let mut prio: c_uint = 0;
        assert_eq!(
            r(mq_receive(
                q,
                buf.as_mut_ptr().cast(),
                usize::MAX,
                &mut prio
            )),
            (5, 0)
        );
        assert_eq!((&buf[..5], prio), (&msg[..], 3));
        assert_eq!(
            r(mq_receive(q, buf.as_mut_ptr().cast(), 15, null_mut())),
            (-1, libc::EMSGSIZE)
        );

        // Attributes in and out: NULLs, bad flags.
        assert_eq!(r(mq_getattr(q, null_mut()) as isize), (0, 0));
        assert_eq!(r(mq_setattr(q, null(), null_mut()) as isize), (0, 0));
        let mut flags = MqAttr {
            mq_flags: -1,
            ..MqAttr::default()
        };
        assert_eq!(
            r(mq_setattr(q, &flags, null_mut()) as isize),
            (-1, libc::EINVAL)
        );
        flags.mq_flags = libc::O_NONBLOCK as _;
        let mut old = MqAttr::default();
        assert_eq!(r(mq_setattr(q, &flags, &mut old) as isize), (0, 0));
        assert_eq!((old.mq_flags, old.mq_maxmsg, old.mq_msgsize), (0, 2, 16));
        assert_eq!(
            r(mq_receive(q, buf.as_mut_ptr().cast(), 16, null_mut())),
            (-1, libc::EAGAIN)
        );

        // Notification: a SIGEV_THREAD without a function is refused.
        let mut ev: libc::sigevent = std::mem::zeroed();
        ev.sigev_notify = libc::SIGEV_THREAD;
        assert_eq!(
            r(mq_notify(q, (&ev as *const libc::sigevent).cast()) as isize),
            (-1, libc::EINVAL)
        );
        assert_eq!(r(mq_notify(q, null()) as isize), (0, 0));

        // Descriptors: foreign, out of range, stale after libc close().
        for fd in [-1, c_int::MAX, 0] {
            assert_eq!(
                r(mq_send(fd, msg.as_ptr().cast(), 1, 0) as isize),
                (-1, libc::EBADF)
            );
        }
        let mut sv = [0 as c_int; 2];
        assert_eq!(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()),
            0
        );
        assert_eq!(
            r(mq_send(sv[0], msg.as_ptr().cast(), 1, 0) as isize),
            (-1, libc::EBADF)
        );
        let d = libc::dup(q);
        assert_eq!(r(mq_send(d, msg.as_ptr().cast(), 1, 0) as isize), (0, 0));
        assert_eq!(libc::close(q), 0); // libc's close, not mq_close
        assert_eq!(
            r(mq_send(q, msg.as_ptr().cast(), 1, 0) as isize),
            (-1, libc::EBADF)
        );
        // The dup still reaches the description (O_NONBLOCK set above).
        let mut g = MqAttr::default();
        assert_eq!(r(mq_getattr(d, &mut g) as isize), (0, 0));
        assert_eq!((g.mq_flags, g.mq_curmsgs), (libc::O_NONBLOCK as _, 1));
        assert_eq!(mq_close(d), 0);
        assert_eq!(r(mq_close(d) as isize), (-1, libc::EBADF));
        libc::close(sv[0]);
        libc::close(sv[1]);

        // Without MQTWIN_VIRTUAL_TIME the extensions say EINVAL.
        let by = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        assert_eq!(r(mqtwin_advance(&by) as isize), (-1, libc::EINVAL));
        assert_eq!(
            r(mqtwin_advance_to_next_deadline() as isize),
            (-1, libc::EINVAL)
        );
        assert_eq!(mqtwin_blocked(), 0);

        assert_eq!(mq_unlink(n.as_ptr()), 0);
        // A description whose descriptors were all closed by libc's
        // close() is released (its library end closed) at the next open.
        let q2 = open(&n, libc::O_RDWR, Some(attr(2, 16)));
        assert!(q2 >= 0);
        assert_eq!(libc::close(q2), 0);
        let stale = open_fds();
        let q3 = open(&n, libc::O_RDWR, Some(attr(2, 16)));
        assert_eq!(
            open_fds(),
            stale + 1,
            "q3's two ends came, q2's library end went"
        );
        assert_eq!(mq_close(q3), 0);
        // Descriptors are not leaked: 200 open/close cycles leave the
        // process's descriptor count where it was.
        let before = open_fds();
        for _ in 0..200 {
            let q = open(&n, libc::O_RDWR, Some(attr(2, 16)));
            assert!(q >= 0);
            assert_eq!(mq_close(q), 0);
        }
        assert_eq!(mq_unlink(n.as_ptr()), 0);
        assert_eq!(open_fds(), before);
        let _: *const c_char = null();
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/dev/fd").map(|d| d.count()).unwrap_or(0)
}
