//! The async contract (`mqtwin::tokio`): every rule written once as a
//! generic function over [`Backend`] and run against the twin and (on Linux
//! with the `posix` feature) the kernel, each test on its own tokio
//! runtime. Needs the features `tokio`, `tokio/rt` and `tokio/test-util`
//! (see the `[[test]]` entry in Cargo.toml).
//!
//! Kernel tests use unique names (`/mqtwin-async-<pid>-<n>-<tag>`) that the
//! backend unlinks when dropped, also while a failing test unwinds.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use mqtwin::tokio::{AsyncBackend, AsyncQueue};
use mqtwin::twin::Twin;
use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, Received, TryClone};
use tokio::runtime::{Builder, Runtime};
use tokio::time::Instant;

/// What a test needs from a backend.
trait Backend: Sync {
    type Q: AsyncBackend + TryClone + Debug + 'static;
    /// Opens (creating with the options given) a queue.
    fn open(&self, name: &str, options: &OpenOptions) -> Self::Q;
    /// A unique name, unlinked at the end of the test (kernel).
    fn name(&self, tag: &str) -> String;
    /// Called by a thread that will block in a synchronous call, so that
    /// [`wait_blocked`](Backend::wait_blocked) can see it.
    fn track(&self) {}
    /// Waits until `n` tracked threads are blocked in a send or receive.
    fn wait_blocked(&self, n: usize);
}

struct TwinBackend(Twin);

impl Backend for TwinBackend {
    type Q = mqtwin::twin::Queue;
    fn open(&self, name: &str, options: &OpenOptions) -> Self::Q {
        self.0.open(name, options).expect("open")
    }
    fn name(&self, tag: &str) -> String {
        format!("/{tag}")
    }
    fn wait_blocked(&self, n: usize) {
        assert!(
            self.0.wait_blocked_timeout(n, Duration::from_secs(10)),
            "timed out waiting for {n} blocked threads"
        );
    }
}

#[cfg(all(target_os = "linux", feature = "posix"))]
mod common;

#[cfg(all(target_os = "linux", feature = "posix"))]
mod kernel {
    use std::sync::Mutex;

    use mqtwin::posix::Kernel;
    use mqtwin::{Namespace, OpenOptions};

    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// The kernel, with the names a test created (unlinked on drop) and the
    /// threads it expects to block.
    #[derive(Default)]
    pub struct KernelBackend {
        names: Mutex<Vec<String>>,
        tids: Mutex<Vec<i32>>,
    }

    impl Drop for KernelBackend {
        fn drop(&mut self) {
            let names = self.names.get_mut().unwrap_or_else(|p| p.into_inner());
            for n in names.drain(..) {
                let _ = Kernel.unlink(&n);
            }
        }
    }

    impl super::Backend for KernelBackend {
        type Q = mqtwin::posix::Queue;
        fn open(&self, name: &str, options: &OpenOptions) -> Self::Q {
            Kernel.open(name, options).expect("open")
        }
        fn name(&self, tag: &str) -> String {
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("/mqtwin-async-{}-{n}-{tag}", std::process::id());
            self.names.lock().unwrap().push(name.clone());
            name
        }
        fn track(&self) {
            self.tids
                .lock()
                .unwrap()
                .push(nix::unistd::gettid().as_raw());
        }
        fn wait_blocked(&self, n: usize) {
            crate::common::settle(n, || {
                let tids = self.tids.lock().unwrap().clone();
                let blocked = |&t: &i32| crate::common::blocked_in_mq(t.into());
                tids.iter().filter(|t| blocked(t)).count()
            });
        }
    }
}

/// Creates `twin::<test>` and (Linux, `posix`) `kernel::<test>`.
macro_rules! instantiate {
    ($($test:ident),* $(,)?) => {
        mod twin_backend {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::TwinBackend(mqtwin::twin::Twin::new()));
                }
            )*
        }
        #[cfg(all(target_os = "linux", feature = "posix"))]
        mod kernel_backend {
            $(
                #[test]
                fn $test() {
                    super::$test(&super::kernel::KernelBackend::default());
                }
            )*
        }
    };
}

fn runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A runtime on tokio's paused clock: it jumps to the next timer when idle.
fn paused_runtime() -> Runtime {
    Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime")
}

/// A small queue: `capacity` messages of at most 64 bytes.
fn small(capacity: usize) -> OpenOptions {
    OpenOptions::read_write()
        .create()
        .capacity(capacity)
        .max_msg_len(64)
}

/// Polls `fut` once; `None` while it is pending.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    poll_fn(|cx| {
        Poll::Ready(match std::pin::Pin::new(&mut *fut).poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

/// A future's own waker, forwarding to its task's: the strong count of its
/// `Arc` shows whether anything (a queue, the reactor, a timer) still holds
/// a clone of it.
struct Forward(Waker);

impl Wake for Forward {
    fn wake(self: Arc<Self>) {
        self.0.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.wake_by_ref();
    }
}

/// Polls `fut` with a waker of its own (a [`Forward`]) until it is ready,
/// or only once if `once`, then drops it. Returns its output (`None`: it
/// was still pending) and its waker.
async fn with_own_waker<F: Future>(fut: F, once: bool) -> (Option<F::Output>, Arc<Forward>) {
    let mut fut = Box::pin(fut);
    let mut own = None;
    let out = poll_fn(|cx| {
        let own = own.get_or_insert_with(|| Arc::new(Forward(cx.waker().clone())));
        let waker = Waker::from(Arc::clone(own));
        match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(v) => Poll::Ready(Some(v)),
            Poll::Pending if once => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    drop(fut);
    (out, own.expect("polled at least once"))
}

/// How many of `wakers` someone besides the test still holds.
fn still_held(wakers: &[Arc<Forward>]) -> usize {
    wakers.iter().filter(|w| Arc::strong_count(w) > 1).count()
}

instantiate!(
    receive_waits_for_a_send_from_another_thread,
    send_waits_for_room,
    priority_order_is_kept,
    timeouts_follow_tokios_paused_clock,
    try_calls_and_argument_errors_never_wait,
    new_sets_nonblocking_and_into_inner_restores_it,
    a_blocked_receiver_gets_the_handoff_not_an_async_one,
    a_dropped_receive_loses_nothing,
    cancelled_receives_lose_and_duplicate_nothing,
    cancelled_waits_leave_no_waker_behind,
    concurrent_receivers_get_distinct_messages,
);

fn receive_waits_for_a_send_from_another_thread<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("recv-waits");
    let q = AsyncQueue::new(b.open(&name, &small(4))).unwrap();
    let tx = b.open(&name, &OpenOptions::write_only());
    rt.block_on(async {
        let mut buf = [0u8; 64];
        let sender = {
            let mut rx = pin!(q.receive(&mut buf));
            assert_eq!(poll_once(&mut rx).await, None, "empty queue: pending");
            let sender = std::thread::spawn(move || tx.send(b"hello", 7));
            assert_eq!(
                rx.await,
                Ok(Received {
                    len: 5,
                    priority: 7
                })
            );
            sender
        };
        assert_eq!(sender.join().unwrap(), Ok(()));
        assert_eq!(&buf[..5], b"hello");
    });
}

fn send_waits_for_room<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("send-waits");
    let q = AsyncQueue::new(b.open(&name, &small(1))).unwrap();
    let rx = b.open(&name, &OpenOptions::read_only());
    rt.block_on(async {
        q.send(b"first", 1).await.unwrap();
        let mut tx = pin!(q.send(b"second", 2));
        assert_eq!(poll_once(&mut tx).await, None, "full queue: pending");
        let receiver = std::thread::spawn(move || rx.receive_vec());
        assert_eq!(tx.await, Ok(()));
        assert_eq!(receiver.join().unwrap(), Ok((b"first".to_vec(), 1)));
        assert_eq!(q.receive_vec().await, Ok((b"second".to_vec(), 2)));
    });
}

fn priority_order_is_kept<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("order");
    let q = AsyncQueue::new(b.open(&name, &small(8))).unwrap();
    rt.block_on(async {
        for (m, p) in [(&b"A"[..], 1), (b"B", 9), (b"C", 5), (b"D", 9), (b"E", 0)] {
            q.send(m, p).await.unwrap();
        }
        let mut got = Vec::new();
        for _ in 0..5 {
            let (m, p) = q.receive_vec().await.unwrap();
            got.push((String::from_utf8(m).unwrap(), p));
        }
        let want: Vec<(String, u32)> = [("B", 9), ("D", 9), ("C", 5), ("A", 1), ("E", 0)]
            .iter()
            .map(|&(m, p)| (m.to_owned(), p))
            .collect();
        assert_eq!(got, want);
    });
}

fn timeouts_follow_tokios_paused_clock<B: Backend>(b: &B) {
    let rt = paused_runtime();
    let _rt = rt.enter();
    let name = b.name("timeouts");
    let q = AsyncQueue::new(b.open(&name, &small(1))).unwrap();
    let real = std::time::Instant::now();
    rt.block_on(async {
        let mut buf = [0u8; 64];
        let start = Instant::now();
        assert_eq!(
            q.receive_timeout(&mut buf, Duration::from_secs(3600)).await,
            Err(Error::TimedOut)
        );
        assert!(start.elapsed() >= Duration::from_secs(3600));
        assert_eq!(
            q.receive_vec_timeout(Duration::from_secs(5)).await,
            Err(Error::TimedOut)
        );
        // A huge timeout is not an error: it waits as long as needed.
        q.send_timeout(b"kept", 3, Duration::MAX).await.unwrap();
        let start = Instant::now();
        assert_eq!(
            q.send_timeout(b"lost", 4, Duration::from_secs(60)).await,
            Err(Error::TimedOut)
        );
        assert!(start.elapsed() >= Duration::from_secs(60));
        assert_eq!(
            q.send_deadline(b"lost", 4, Instant::now() + Duration::from_secs(1))
                .await,
            Err(Error::TimedOut)
        );
        // A deadline already passed still gets a ready queue's message.
        let past = Instant::now() - Duration::from_secs(1);
        assert_eq!(
            q.receive_deadline(&mut buf, past).await,
            Ok(Received {
                len: 4,
                priority: 3
            })
        );
        assert_eq!(
            q.receive_deadline(&mut buf, past).await,
            Err(Error::TimedOut)
        );
        // The timed-out sends sent nothing.
        assert_eq!(q.get_ref().attributes().unwrap().current_messages, 0);
    });
    assert!(real.elapsed() < Duration::from_secs(5), "paused clock");
}

fn try_calls_and_argument_errors_never_wait<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("errors");
    let q = AsyncQueue::new(b.open(&name, &small(1))).unwrap();
    let wo = AsyncQueue::new(b.open(&name, &OpenOptions::write_only())).unwrap();
    let ro = AsyncQueue::new(b.open(&name, &OpenOptions::read_only())).unwrap();
    rt.block_on(async {
        let mut buf = [0u8; 64];
        let limit = Duration::from_secs(5);
        assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
        // Empty queue, write-only handle: refused at once, not after a wait.
        assert_eq!(
            wo.receive_timeout(&mut buf, limit).await,
            Err(Error::NotReadable)
        );
        assert_eq!(
            q.receive_timeout(&mut [0u8; 8], limit).await,
            Err(Error::BufferTooSmall {
                len: 8,
                msg_size: 64
            })
        );
        q.try_send(b"x", 0).unwrap();
        assert_eq!(q.try_send(b"y", 0), Err(Error::WouldBlock));
        // Full queue: argument errors still come first.
        assert_eq!(
            ro.send_timeout(b"y", 0, limit).await,
            Err(Error::NotWritable)
        );
        assert_eq!(
            q.send_timeout(b"y", 32768, limit).await,
            Err(Error::InvalidPriority { priority: 32768 })
        );
        assert_eq!(
            q.send_timeout(&[0; 65], 0, limit).await,
            Err(Error::MessageTooLong { len: 65, limit: 64 })
        );
        assert_eq!(
            q.try_receive(&mut buf),
            Ok(Received {
                len: 1,
                priority: 0
            })
        );
    });
}

fn new_sets_nonblocking_and_into_inner_restores_it<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("flag");
    let q = b.open(&name, &small(1));
    let dup = q.try_clone().unwrap();
    let other = b.open(&name, &OpenOptions::read_write());
    let q = AsyncQueue::new(q).unwrap();
    assert!(q.get_ref().attributes().unwrap().nonblocking);
    // The flag belongs to the open description: a dup shares it, another
    // open does not.
    assert!(dup.attributes().unwrap().nonblocking);
    assert!(!other.attributes().unwrap().nonblocking);
    assert_eq!(dup.receive(&mut [0; 64]), Err(Error::WouldBlock));
    let q = q.into_inner().unwrap();
    assert!(!q.attributes().unwrap().nonblocking);
    assert!(!dup.attributes().unwrap().nonblocking);
    // A handle opened non-blocking stays so.
    let nb = AsyncQueue::new(b.open(&name, &OpenOptions::read_write().nonblocking())).unwrap();
    assert!(nb.into_inner().unwrap().attributes().unwrap().nonblocking);
}

/// Rule Q-ASYNC: an async receiver is not on the kernel's waiter list. A
/// blocked synchronous receiver gets the handoff even though the async
/// receiver started waiting first, and the async one is not even woken.
fn a_blocked_receiver_gets_the_handoff_not_an_async_one<B: Backend + Sync>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("handoff");
    let q = AsyncQueue::new(b.open(&name, &small(4))).unwrap();
    let sync_rx = b.open(&name, &OpenOptions::read_only());
    let tx = b.open(&name, &OpenOptions::write_only());
    std::thread::scope(|s| {
        rt.block_on(async {
            let mut buf = [0u8; 64];
            let mut rx = pin!(q.receive(&mut buf));
            assert_eq!(poll_once(&mut rx).await, None);
            let blocked = s.spawn(|| {
                b.track();
                sync_rx.receive_vec()
            });
            b.wait_blocked(1);
            tx.send(b"handed", 1).unwrap();
            assert_eq!(blocked.join().unwrap(), Ok((b"handed".to_vec(), 1)));
            let waited = tokio::time::timeout(Duration::from_millis(50), &mut rx).await;
            assert!(waited.is_err(), "the async receiver got {waited:?}");
            tx.send(b"queued", 2).unwrap();
            assert_eq!(
                rx.await,
                Ok(Received {
                    len: 6,
                    priority: 2
                })
            );
        });
    });
}

fn a_dropped_receive_loses_nothing<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    let name = b.name("drop");
    let q = AsyncQueue::new(b.open(&name, &small(4))).unwrap();
    rt.block_on(async {
        let mut buf = [0u8; 64];
        {
            let mut rx = pin!(q.receive(&mut buf));
            assert_eq!(poll_once(&mut rx).await, None);
        } // dropped while waiting
        q.try_send(b"kept", 5).unwrap();
        {
            // Dropped after the message arrived but before being polled again.
            let mut rx = pin!(q.receive(&mut buf));
            drop(poll_once(&mut rx));
        }
        assert_eq!(q.receive_vec().await, Ok((b"kept".to_vec(), 5)));
    });
}

/// Thousands of receives cancelled by zero and short timeouts while
/// another thread sends: every message is received exactly once, in order.
fn cancelled_receives_lose_and_duplicate_nothing<B: Backend>(b: &B) {
    let rt = runtime();
    let _rt = rt.enter();
    const N: u32 = 300;
    let name = b.name("cancel");
    let q = AsyncQueue::new(b.open(&name, &small(4))).unwrap();
    let tx = b.open(&name, &OpenOptions::write_only());
    let sender = std::thread::spawn(move || {
        for i in 0..N {
            tx.send(&i.to_le_bytes(), 0).unwrap();
            if i % 8 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    let (got, cancelled) = rt.block_on(async {
        let mut buf = [0u8; 64];
        let (mut got, mut cancelled) = (Vec::new(), 0u32);
        let mut round = 0u32;
        while got.len() < N as usize {
            round += 1;
            let timeout = match round % 3 {
                0 => Duration::ZERO,
                1 => Duration::from_micros(100),
                _ => Duration::from_millis(1),
            };
            match q.receive_timeout(&mut buf, timeout).await {
                Ok(r) => got.push(u32::from_le_bytes(buf[..r.len].try_into().unwrap())),
                Err(Error::TimedOut) => cancelled += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        (got, cancelled)
    });
    sender.join().unwrap();
    assert_eq!(got, (0..N).collect::<Vec<_>>());
    assert!(cancelled > 0, "no receive was cancelled");
    assert_eq!(q.try_receive(&mut [0; 64]), Err(Error::WouldBlock));
}

/// A cancelled async wait leaves nothing behind (Q7), at once, not on the
/// queue's next change: after 10,000 receives on an empty queue and 10,000
/// sends on a full one, each polled once with a waker of its own and
/// dropped, and a few hundred of each that timed out, nothing holds any of
/// their wakers (the twin used to keep each one, and its task, until the
/// queue next changed, every new wait scanning them all), and the queue
/// still works.
fn cancelled_waits_leave_no_waker_behind<B: Backend>(b: &B) {
    const N: usize = 10_000;
    const TIMED: usize = 300;
    let rt = paused_runtime();
    let _rt = rt.enter();
    let name = b.name("leave");
    let q = AsyncQueue::new(b.open(&name, &small(1))).unwrap();
    let timeout = |i: usize| {
        if i % 2 == 0 {
            Duration::ZERO
        } else {
            Duration::from_millis(1)
        }
    };
    rt.block_on(async {
        let mut buf = [0u8; 64];
        let mut wakers = Vec::new();
        for _ in 0..N {
            let (r, w) = with_own_waker(q.receive(&mut buf), true).await;
            assert_eq!(r, None, "empty queue: pending");
            wakers.push(w);
        }
        for i in 0..TIMED {
            let (r, w) = with_own_waker(q.receive_timeout(&mut buf, timeout(i)), false).await;
            assert_eq!(r, Some(Err(Error::TimedOut)));
            wakers.push(w);
        }
        assert_eq!(still_held(&wakers), 0, "receive wakers still held");
        q.try_send(b"full", 1).unwrap();
        wakers.clear();
        for _ in 0..N {
            let (r, w) = with_own_waker(q.send(b"more", 2), true).await;
            assert_eq!(r, None, "full queue: pending");
            wakers.push(w);
        }
        for i in 0..TIMED {
            let (r, w) = with_own_waker(q.send_timeout(b"more", 2, timeout(i)), false).await;
            assert_eq!(r, Some(Err(Error::TimedOut)));
            wakers.push(w);
        }
        assert_eq!(still_held(&wakers), 0, "send wakers still held");
        // Nothing was taken or sent by the cancelled calls; waits still wake.
        let (r, w) = with_own_waker(q.send(b"next", 3), true).await;
        assert_eq!(r, None);
        assert_eq!(q.receive_vec().await, Ok((b"full".to_vec(), 1)));
        drop(w);
        assert_eq!(q.try_receive(&mut buf), Err(Error::WouldBlock));
        let mut rx = pin!(q.receive_vec());
        assert_eq!(poll_once(&mut rx).await, None);
        q.try_send(b"last", 4).unwrap();
        assert_eq!(rx.await, Ok((b"last".to_vec(), 4)));
    });
}

/// Two runtimes on two threads, three tasks each, share one queue (each
/// runtime through its own open description): 600 messages reach exactly
/// one receiver each.
fn concurrent_receivers_get_distinct_messages<B: Backend + Sync>(b: &B) {
    const N: u32 = 600;
    const TASKS: usize = 3;
    let name = b.name("many");
    let tx = b.open(&name, &small(8));
    let stopped = AtomicUsize::new(0);
    let received: Vec<u32> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let q = b.open(&name, &OpenOptions::read_only());
                let stopped = &stopped;
                s.spawn(move || {
                    runtime().block_on(async move {
                        let q = Arc::new(AsyncQueue::new(q).unwrap());
                        let tasks: Vec<_> = (0..TASKS)
                            .map(|_| {
                                let q = Arc::clone(&q);
                                tokio::spawn(async move {
                                    let mut mine = Vec::new();
                                    loop {
                                        let (m, p) = q.receive_vec().await.unwrap();
                                        if p == 0 {
                                            break mine; // a stop message
                                        }
                                        mine.push(u32::from_le_bytes(m.try_into().unwrap()));
                                    }
                                })
                            })
                            .collect();
                        let mut all = Vec::new();
                        for t in tasks {
                            all.extend(t.await.unwrap());
                            stopped.fetch_add(1, Ordering::Relaxed);
                        }
                        all
                    })
                })
            })
            .collect();
        for i in 0..N {
            tx.send(&i.to_le_bytes(), 1).unwrap();
        }
        for _ in 0..2 * TASKS {
            tx.send(b"stop", 0).unwrap();
        }
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    assert_eq!(stopped.load(Ordering::Relaxed), 2 * TASKS);
    assert_eq!(received.len(), N as usize, "nothing lost or duplicated");
    let distinct: BTreeSet<u32> = received.into_iter().collect();
    assert_eq!(distinct, (0..N).collect::<BTreeSet<_>>());
}
