//! Throughput and latency of the twin against the kernel backend, raw `libc`
//! calls and a crossbeam bounded channel, in one run per scenario:
//!
//! - `pair`: one thread, non-blocking send + receive of a 64-byte message;
//! - `spsc`: one producer, one consumer, capacity 10, blocking calls (per message);
//! - `pingpong`: two threads, two queues, one round trip;
//! - `mpsc`: four producers, one consumer, capacity 10, blocking calls (per message);
//! - `virtual_timeout`: a timed receive that expires under virtual time.
//!
//! `pair` and `pingpong` also have a `remote` column (feature `remote`): a
//! twin [`Server`](mqtwin::remote::Server) in this process and clients on
//! its Unix socket, one connection per thread as two processes would have.
//!
//! See `docs/performance.md` for the figures and how to reproduce them.

// `criterion_group!` generates an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use crossbeam_channel::bounded;
use mqtwin::twin::Twin;
use mqtwin::{MessageQueue, Namespace};

mod common;
use common::{CAPACITY, MSG, MSG_LEN, PRODUCERS};

/// Non-blocking send then receive on one thread, queue empty between rounds.
fn pair(c: &mut Criterion) {
    let mut g = c.benchmark_group("pair");
    let mut buf = [0u8; MSG_LEN];

    let ns = Twin::new();
    let q = common::twin_queue(&ns);
    g.bench_function("twin", |b| {
        b.iter(|| {
            q.try_send(black_box(&MSG), 1).unwrap();
            black_box(q.try_receive(&mut buf).unwrap());
        })
    });

    #[cfg(all(target_os = "linux", feature = "posix"))]
    {
        let q = common::kernel_queue("pair", &common::small_queue());
        g.bench_function("kernel", |b| {
            b.iter(|| {
                q.try_send(black_box(&MSG), 1).unwrap();
                black_box(q.try_receive(&mut buf).unwrap());
            })
        });
        let raw = common::RawMq::create("pair-raw", CAPACITY, MSG_LEN);
        g.bench_function("libc", |b| {
            b.iter(|| {
                raw.send(black_box(&MSG), 1, &common::EPOCH);
                black_box(raw.receive(&mut buf, &common::EPOCH));
            })
        });
    }

    #[cfg(all(unix, feature = "remote"))]
    {
        let (_server, client) = remote::serve("pair");
        let q = client.open("/bench", &common::small_queue()).unwrap();
        g.bench_function("remote", |b| {
            b.iter(|| {
                q.try_send(black_box(&MSG), 1).unwrap();
                black_box(q.try_receive(&mut buf).unwrap());
            })
        });
        // The floor under `remote`: two bare round trips of 64 bytes over
        // a Unix socket to an echo thread (what two remote calls cost
        // before any protocol, twin or thread hand-off of this crate).
        g.bench_function("unix-socket-floor", |b| {
            b.iter_custom(|iters| remote::socket_round_trips(2 * iters))
        });
    }

    let (tx, rx) = bounded::<[u8; MSG_LEN]>(CAPACITY);
    g.bench_function("crossbeam", |b| {
        b.iter(|| {
            tx.try_send(black_box(MSG)).unwrap();
            black_box(rx.try_recv().unwrap());
        })
    });
    g.finish();
}

/// `iters` messages from a producer thread to this thread, blocking calls.
fn spsc_run<Q: MessageQueue>(tx: &Q, rx: &Q, iters: u64) -> Duration {
    thread::scope(|s| {
        let start = Instant::now();
        s.spawn(|| {
            for _ in 0..iters {
                tx.send(&MSG, 1).unwrap();
            }
        });
        let mut buf = [0u8; MSG_LEN];
        for _ in 0..iters {
            black_box(rx.receive(&mut buf).unwrap());
        }
        start.elapsed()
    })
}

/// One producer, one consumer, capacity 10: time per message.
fn spsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("spsc");
    common::threaded(&mut g);

    let ns = Twin::new();
    let q = common::twin_queue(&ns);
    let q2 = q.try_clone().unwrap();
    g.bench_function("twin", |b| b.iter_custom(|n| spsc_run(&q, &q2, n)));

    #[cfg(all(target_os = "linux", feature = "posix"))]
    {
        let q = common::kernel_queue("spsc", &common::small_queue());
        let q2 = common::kernel_clone(&q);
        g.bench_function("kernel", |b| b.iter_custom(|n| spsc_run(&q, &q2, n)));
        let raw = common::RawMq::create("spsc-raw", CAPACITY, MSG_LEN);
        g.bench_function("libc", |b| {
            b.iter_custom(|iters| {
                thread::scope(|s| {
                    let start = Instant::now();
                    s.spawn(|| {
                        for _ in 0..iters {
                            raw.send(&MSG, 1, std::ptr::null());
                        }
                    });
                    let mut buf = [0u8; MSG_LEN];
                    for _ in 0..iters {
                        black_box(raw.receive(&mut buf, std::ptr::null()));
                    }
                    start.elapsed()
                })
            })
        });
    }

    let (tx, rx) = bounded::<[u8; MSG_LEN]>(CAPACITY);
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            thread::scope(|s| {
                let start = Instant::now();
                s.spawn(|| {
                    for _ in 0..iters {
                        tx.send(MSG).unwrap();
                    }
                });
                for _ in 0..iters {
                    black_box(rx.recv().unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// `iters` round trips: this thread sends on `a` and waits for the echo on
/// `b`; an echo thread receives on `a` and answers on `b`.
fn pingpong_run<Q: MessageQueue>(a: &Q, b: &Q, iters: u64) -> Duration {
    thread::scope(|s| {
        s.spawn(|| common::echo(a, b, iters));
        common::ping(a, b, iters)
    })
}

/// Two threads, two queues: time per round trip.
fn pingpong(c: &mut Criterion) {
    let mut g = c.benchmark_group("pingpong");
    common::threaded(&mut g);

    let ns = Twin::new();
    let a = ns.open("/ping", &common::small_queue()).unwrap();
    let b = ns.open("/pong", &common::small_queue()).unwrap();
    g.bench_function("twin", |bench| {
        bench.iter_custom(|n| pingpong_run(&a, &b, n))
    });

    #[cfg(all(target_os = "linux", feature = "posix"))]
    {
        let a = common::kernel_queue("ping", &common::small_queue());
        let b = common::kernel_queue("pong", &common::small_queue());
        g.bench_function("kernel", |bench| {
            bench.iter_custom(|n| pingpong_run(&a, &b, n))
        });
        let a = common::RawMq::create("ping-raw", CAPACITY, MSG_LEN);
        let b = common::RawMq::create("pong-raw", CAPACITY, MSG_LEN);
        g.bench_function("libc", |bench| {
            bench.iter_custom(|iters| {
                thread::scope(|s| {
                    s.spawn(|| {
                        let mut buf = [0u8; MSG_LEN];
                        for _ in 0..iters {
                            let len = a.receive(&mut buf, std::ptr::null());
                            b.send(&buf[..len], 1, std::ptr::null());
                        }
                    });
                    let mut buf = [0u8; MSG_LEN];
                    let start = Instant::now();
                    for _ in 0..iters {
                        a.send(&MSG, 1, std::ptr::null());
                        black_box(b.receive(&mut buf, std::ptr::null()));
                    }
                    start.elapsed()
                })
            })
        });
    }

    #[cfg(all(unix, feature = "remote"))]
    {
        let (server, pinger) = remote::serve("pingpong");
        let echoer = mqtwin::remote::Remote::connect(server.path()).unwrap();
        let (a, b) = (
            pinger.open("/ping", &common::small_queue()).unwrap(),
            pinger.open("/pong", &common::small_queue()).unwrap(),
        );
        let rw = mqtwin::OpenOptions::read_write();
        let (a2, b2) = (
            echoer.open("/ping", &rw).unwrap(),
            echoer.open("/pong", &rw).unwrap(),
        );
        g.bench_function("remote", |bench| {
            bench.iter_custom(|n| {
                thread::scope(|s| {
                    s.spawn(|| common::echo(&a2, &b2, n));
                    common::ping(&a, &b, n)
                })
            })
        });
    }

    let (ping_tx, ping_rx) = bounded::<[u8; MSG_LEN]>(CAPACITY);
    let (pong_tx, pong_rx) = bounded::<[u8; MSG_LEN]>(CAPACITY);
    g.bench_function("crossbeam", |bench| {
        bench.iter_custom(|iters| {
            thread::scope(|s| {
                s.spawn(|| {
                    for _ in 0..iters {
                        pong_tx.send(ping_rx.recv().unwrap()).unwrap();
                    }
                });
                let start = Instant::now();
                for _ in 0..iters {
                    ping_tx.send(MSG).unwrap();
                    black_box(pong_rx.recv().unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// How many of `iters` messages producer `i` of [`PRODUCERS`] sends.
fn share(iters: u64, i: usize) -> u64 {
    iters / PRODUCERS as u64 + u64::from((i as u64) < iters % PRODUCERS as u64)
}

/// `iters` messages from [`PRODUCERS`] threads to this thread.
fn mpsc_run<Q: MessageQueue>(tx: &Q, rx: &Q, iters: u64) -> Duration {
    thread::scope(|s| {
        let start = Instant::now();
        for i in 0..PRODUCERS {
            s.spawn(move || {
                for _ in 0..share(iters, i) {
                    tx.send(&MSG, 1).unwrap();
                }
            });
        }
        let mut buf = [0u8; MSG_LEN];
        for _ in 0..iters {
            black_box(rx.receive(&mut buf).unwrap());
        }
        start.elapsed()
    })
}

/// Four producers, one consumer, capacity 10: time per message.
fn mpsc(c: &mut Criterion) {
    let mut g = c.benchmark_group("mpsc");
    common::threaded(&mut g);

    let ns = Twin::new();
    let q = common::twin_queue(&ns);
    let q2 = q.try_clone().unwrap();
    g.bench_function("twin", |b| b.iter_custom(|n| mpsc_run(&q, &q2, n)));

    #[cfg(all(target_os = "linux", feature = "posix"))]
    {
        let q = common::kernel_queue("mpsc", &common::small_queue());
        let q2 = common::kernel_clone(&q);
        g.bench_function("kernel", |b| b.iter_custom(|n| mpsc_run(&q, &q2, n)));
        let raw = common::RawMq::create("mpsc-raw", CAPACITY, MSG_LEN);
        g.bench_function("libc", |b| {
            b.iter_custom(|iters| {
                thread::scope(|s| {
                    let start = Instant::now();
                    for i in 0..PRODUCERS {
                        let raw = &raw;
                        s.spawn(move || {
                            for _ in 0..share(iters, i) {
                                raw.send(&MSG, 1, std::ptr::null());
                            }
                        });
                    }
                    let mut buf = [0u8; MSG_LEN];
                    for _ in 0..iters {
                        black_box(raw.receive(&mut buf, std::ptr::null()));
                    }
                    start.elapsed()
                })
            })
        });
    }

    let (tx, rx) = bounded::<[u8; MSG_LEN]>(CAPACITY);
    g.bench_function("crossbeam", |b| {
        b.iter_custom(|iters| {
            thread::scope(|s| {
                let start = Instant::now();
                for i in 0..PRODUCERS {
                    let tx = tx.clone();
                    s.spawn(move || {
                        for _ in 0..share(iters, i) {
                            tx.send(MSG).unwrap();
                        }
                    });
                }
                for _ in 0..iters {
                    black_box(rx.recv().unwrap());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// A receive with a one-hour timeout on an empty queue, under virtual time:
/// a worker thread blocks, this thread waits until it is blocked, moves the
/// clock to its deadline and waits for the worker's `TimedOut`. Time per
/// expired receive. (On the real clock the same call takes an hour, so there
/// is nothing to compare it with.)
fn virtual_timeout(c: &mut Criterion) {
    let mut g = c.benchmark_group("virtual_timeout");
    common::threaded(&mut g);

    let ns = Twin::builder().virtual_time().build();
    let clock = ns.virtual_clock().unwrap();
    let q = common::twin_queue(&ns);
    g.bench_function("twin", |b| {
        b.iter_custom(|iters| common::virtual_timeouts(&ns, &clock, &q, iters))
    });
    g.finish();
}

#[cfg(all(unix, feature = "remote"))]
mod remote {
    use mqtwin::remote::{Remote, Server};
    use mqtwin::twin::Twin;

    /// `n` round trips of 64 bytes to an echo thread over a socket pair.
    pub fn socket_round_trips(n: u64) -> std::time::Duration {
        use std::io::{Read, Write};
        let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
        std::thread::scope(|s| {
            s.spawn(move || {
                let mut buf = [0u8; 64];
                for _ in 0..n {
                    b.read_exact(&mut buf).unwrap();
                    b.write_all(&buf).unwrap();
                }
            });
            let mut buf = [0u8; 64];
            let start = std::time::Instant::now();
            for _ in 0..n {
                a.write_all(&buf).unwrap();
                a.read_exact(&mut buf).unwrap();
            }
            start.elapsed()
        })
    }

    /// A server on a fresh socket and one client of it.
    pub fn serve(tag: &str) -> (Server, Remote) {
        let path =
            std::env::temp_dir().join(format!("mqtwin-bench-{tag}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let server = Server::bind(&path, Twin::new()).expect("bind the bench server");
        let client = Remote::connect(&path).expect("connect");
        (server, client)
    }
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = pair, spsc, pingpong, mpsc, virtual_timeout
}
criterion_main!(benches);
