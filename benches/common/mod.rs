//! Shared pieces of the benchmarks: the message, criterion settings, twin
//! set-ups, and (Linux with the `posix` feature) kernel queues opened through
//! the backend or directly through `libc`, with unique names that are
//! unlinked at once so that nothing is left behind, even by a panic.

#![allow(dead_code)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{measurement::WallTime, BenchmarkGroup, Criterion};
use mqtwin::twin::{Capabilities, Credentials, Twin, VirtualClock};
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};

/// Payload size of every benchmark message.
pub const MSG_LEN: usize = 64;
/// The message every benchmark sends.
pub const MSG: [u8; MSG_LEN] = [0xA5; MSG_LEN];
/// Capacity of the queues in `pair`, `spsc`, `pingpong` and `mpsc`.
pub const CAPACITY: usize = 10;
/// Producers in `mpsc`.
pub const PRODUCERS: usize = 4;

/// Criterion with settings that keep the whole `cargo bench` run short.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

/// Sets the times of a group of multi-threaded benchmarks (fewer, longer samples).
pub fn threaded(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
}

/// Options of the small benchmark queues.
pub fn small_queue() -> OpenOptions {
    OpenOptions::read_write()
        .create_new()
        .capacity(CAPACITY)
        .max_msg_len(MSG_LEN)
}

/// A twin queue with the small-queue options.
pub fn twin_queue(ns: &Twin) -> mqtwin::twin::Queue {
    ns.open("/bench", &small_queue()).expect("twin open")
}

/// A twin caller with `CAP_SYS_RESOURCE` and no `RLIMIT_MSGQUEUE`, so queues
/// of up to 65,536 messages can be created.
pub fn privileged_twin() -> Twin {
    Twin::with_credentials(Credentials {
        capabilities: Capabilities {
            sys_resource: true,
            ..Capabilities::default()
        },
        rlimit_msgqueue: u64::MAX,
        ..Credentials::default()
    })
}

/// A name no other process or benchmark uses.
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "/mqtwin-bench-{}-{tag}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Deterministic pseudo-random numbers (a 64-bit LCG, high bits).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
#[allow(unused_imports)] // not every benchmark uses every helper
pub use kernel::*;

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel {
    #![allow(unsafe_code)]

    use std::ffi::CString;

    use mqtwin::posix::{Kernel, Queue};
    use mqtwin::{Namespace, OpenOptions};

    /// Opens a new kernel queue through the backend, with a unique name that
    /// is unlinked at once: the handle keeps the queue alive, and nothing is
    /// left in `/dev/mqueue` whatever happens to the benchmark.
    pub fn kernel_queue(tag: &str, options: &OpenOptions) -> Queue {
        let name = super::unique_name(tag);
        let q = Kernel.open(&name, options).expect("kernel open");
        Kernel.unlink(&name).expect("kernel unlink");
        q
    }

    /// A second handle to a kernel queue (the backend's `dup`).
    pub fn kernel_clone(q: &Queue) -> Queue {
        q.try_clone().expect("dup")
    }

    /// A kernel queue used directly through `libc`, as C code would: the
    /// baseline for the backend's wrapper overhead. Created and unlinked at
    /// once like [`kernel_queue`]; closed on drop.
    pub struct RawMq(libc::mqd_t);

    impl RawMq {
        pub fn create(tag: &str, capacity: usize, msg_len: usize) -> RawMq {
            let name = CString::new(super::unique_name(tag)).unwrap();
            // SAFETY: mq_attr is plain integers; `name` is a C string; the
            // attribute pointer outlives the call.
            unsafe {
                let mut attr: libc::mq_attr = std::mem::zeroed();
                attr.mq_maxmsg = capacity as libc::c_long;
                attr.mq_msgsize = msg_len as libc::c_long;
                let mqd = libc::mq_open(
                    name.as_ptr(),
                    libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
                    0o600 as libc::mode_t,
                    &attr as *const libc::mq_attr,
                );
                assert!(mqd >= 0, "mq_open: {}", std::io::Error::last_os_error());
                libc::mq_unlink(name.as_ptr());
                RawMq(mqd)
            }
        }

        /// `mq_timedsend`; `ts` null for a blocking send.
        #[inline]
        pub fn send(&self, msg: &[u8], priority: u32, ts: *const libc::timespec) {
            // SAFETY: `msg` is valid for its length; `ts` is null or live.
            let r =
                unsafe { libc::mq_timedsend(self.0, msg.as_ptr().cast(), msg.len(), priority, ts) };
            assert_eq!(r, 0, "mq_timedsend: {}", std::io::Error::last_os_error());
        }

        /// `mq_timedreceive`; `ts` null for a blocking receive.
        #[inline]
        pub fn receive(&self, buf: &mut [u8], ts: *const libc::timespec) -> usize {
            let mut priority = 0;
            // SAFETY: `buf` is valid for writes of its length; `ts` is null or live.
            let r = unsafe {
                libc::mq_timedreceive(
                    self.0,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut priority,
                    ts,
                )
            };
            assert!(
                r >= 0,
                "mq_timedreceive: {}",
                std::io::Error::last_os_error()
            );
            r as usize
        }
    }

    impl Drop for RawMq {
        fn drop(&mut self) {
            // SAFETY: we own the descriptor.
            unsafe {
                libc::mq_close(self.0);
            }
        }
    }

    /// The deadline `try_send`/`try_receive` pass: the epoch (never waits).
    pub const EPOCH: libc::timespec = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };

    /// Moves the calling thread into a fresh IPC namespace and raises its
    /// `msg_max` to `msg_max`. Queues opened afterwards by this thread live
    /// there (and vanish with it).
    ///
    /// # Errors
    ///
    /// A description of what failed (no `CAP_SYS_ADMIN`, sysctl not writable).
    pub fn enter_fresh_ipc_namespace(msg_max: usize) -> Result<(), String> {
        // SAFETY: a plain syscall; CLONE_NEWIPC is allowed in a
        // multi-threaded process and only affects this thread.
        if unsafe { libc::unshare(libc::CLONE_NEWIPC) } != 0 {
            return Err(format!(
                "unshare(CLONE_NEWIPC): {}",
                std::io::Error::last_os_error()
            ));
        }
        std::fs::write("/proc/sys/fs/mqueue/msg_max", msg_max.to_string())
            .map_err(|e| format!("writing fs.mqueue.msg_max: {e}"))
    }

    /// The soft `RLIMIT_MSGQUEUE` of this process, in bytes.
    pub fn rlimit_msgqueue() -> u64 {
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `rl` is a valid rlimit to fill in.
        unsafe { libc::getrlimit(libc::RLIMIT_MSGQUEUE, &mut rl) };
        rl.rlim_cur
    }
}

/// The echo side of a ping-pong: `iters` times, receives on `a` and sends
/// the message back on `b`.
pub fn echo<Q: MessageQueue>(a: &Q, b: &Q, iters: u64) {
    let mut buf = [0u8; MSG_LEN];
    for _ in 0..iters {
        let r = a.receive(&mut buf).unwrap();
        b.send(&buf[..r.len], r.priority).unwrap();
    }
}

/// The timed side of a ping-pong: `iters` round trips (send on `a`, wait
/// for the echo on `b`); the time they took.
pub fn ping<Q: MessageQueue>(a: &Q, b: &Q, iters: u64) -> Duration {
    let mut buf = [0u8; MSG_LEN];
    let start = Instant::now();
    for _ in 0..iters {
        a.send(&MSG, 1).unwrap();
        black_box(b.receive(&mut buf).unwrap());
    }
    start.elapsed()
}

/// `iters` one-hour timed receives on the empty `q` of a free-running twin
/// on virtual time, each expired by this thread (`wait_blocked` +
/// `advance_to_next_deadline`); the time they took.
pub fn virtual_timeouts(
    ns: &Twin,
    clock: &VirtualClock,
    q: &mqtwin::twin::Queue,
    iters: u64,
) -> Duration {
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut buf = [0u8; MSG_LEN];
            for _ in 0..iters {
                let r = q.receive_timeout(&mut buf, Duration::from_secs(3600));
                assert_eq!(r, Err(Error::TimedOut));
                done_tx.send(()).unwrap();
            }
        });
        let start = Instant::now();
        for _ in 0..iters {
            ns.wait_blocked(1);
            clock.advance_to_next_deadline().unwrap();
            done_rx.recv().unwrap();
        }
        start.elapsed()
    })
}
