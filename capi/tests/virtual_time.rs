//! libmqtwin under `MQTWIN_VIRTUAL_TIME=1` and limits from the
//! environment (read once, at the first call: this test binary sets them
//! before it).

#![cfg(unix)]

use std::ffi::CString;
use std::os::raw::c_int;
use std::ptr::null_mut;

use mqtwin_capi::{
    mq_timedreceive, mq_unlink, mqtwin_advance, mqtwin_advance_to_next_deadline, mqtwin_blocked,
    mqtwin_capi_open, MqAttr,
};

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

#[test]
fn deadlines_follow_the_virtual_clock_and_limits_the_environment() {
    std::env::set_var("MQTWIN_VIRTUAL_TIME", "1");
    std::env::set_var("MQTWIN_MSG_MAX", "3");
    std::env::remove_var("MQTWIN_SOCKET");
    let n = CString::new(format!("/vt-{}", std::process::id())).unwrap();
    let attr = |maxmsg| MqAttr {
        mq_maxmsg: maxmsg,
        mq_msgsize: 16,
        ..MqAttr::default()
    };
    // SAFETY: valid names, attrs, buffers and timespecs throughout.
    unsafe {
        let four = attr(4);
        assert_eq!(
            mqtwin_capi_open(n.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600, &four),
            -1
        );
        assert_eq!(errno(), libc::EINVAL, "MQTWIN_MSG_MAX=3 refuses 4");
        let three = attr(3);
        let q = mqtwin_capi_open(n.as_ptr(), libc::O_RDWR | libc::O_CREAT, 0o600, &three);
        assert!(q >= 0, "errno {}", errno());
        assert_eq!(mqtwin_advance_to_next_deadline(), 0, "nobody waits");
        // A receive with a deadline an hour from the virtual now (which
        // started at the real time) wakes when the clock is moved there.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::clock_gettime(libc::CLOCK_REALTIME, &mut now);
        let rx = std::thread::spawn(move || {
            let deadline = libc::timespec {
                tv_sec: now.tv_sec + 3600,
                tv_nsec: 0,
            };
            let mut buf = [0u8; 16];
            let r = mq_timedreceive(q, buf.as_mut_ptr().cast(), 16, null_mut(), &deadline);
            (r, errno())
        });
        let start = std::time::Instant::now();
        while mqtwin_blocked() < 1 {
            assert!(start.elapsed().as_secs() < 20, "the receiver never blocked");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let minute = libc::timespec {
            tv_sec: 60,
            tv_nsec: 0,
        };
        assert_eq!(mqtwin_advance(&minute), 0);
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!rx.is_finished(), "a minute is not an hour");
        assert_eq!(mqtwin_advance_to_next_deadline(), 1);
        assert_eq!(rx.join().unwrap(), (-1, libc::ETIMEDOUT));
        assert!(start.elapsed().as_secs() < 20, "no real hour passed");
        let bad = libc::timespec {
            tv_sec: 0,
            tv_nsec: -1,
        };
        assert_eq!(mqtwin_advance(&bad), -1);
        assert_eq!(errno(), libc::EINVAL);
        assert_eq!(mq_unlink(n.as_ptr()), 0);
    }
}
