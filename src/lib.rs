//! POSIX message queues and their in-memory twin.
//!
//! `mqtwin` gives code that talks over POSIX message queues one API with two
//! backends:
//!
//! - [`posix`]: the real Linux queues (`mq_open`, `mq_timedsend`, …), for
//!   production;
//! - [`twin`]: an in-memory namespace with the *same* observable semantics
//!   (priority order, limits, blocking and deadlines, wake-up order,
//!   unlink-while-open, permissions, accounting, the same errors), for tests
//!   that need no kernel, on any OS.
//!
//! The twin's fidelity is checked, not assumed: one contract suite in
//! `tests/` runs against both backends and compares whole `Result`s.
//!
//! # Hello, queue
//!
//! Write your code against the [`Namespace`] and [`MessageQueue`] traits:
//!
//! ```
//! use mqtwin::{MessageQueue, Namespace, OpenOptions};
//!
//! fn greet<N: Namespace>(ns: &N) -> Result<String, mqtwin::Error> {
//!     let q = ns.open("/greetings", &OpenOptions::read_write().create().capacity(4).max_msg_len(64))?;
//!     q.send(b"Hello, World", 0)?;
//!     let mut buf = [0u8; 64];
//!     let got = q.receive(&mut buf)?;
//!     Ok(String::from_utf8_lossy(&buf[..got.len]).into_owned())
//! }
//!
//! // In tests (and on macOS): the twin.
//! assert_eq!(greet(&mqtwin::twin::Twin::new())?, "Hello, World");
//! // In production on Linux: `greet(&mqtwin::posix::Kernel)`.
//! # Ok::<(), mqtwin::Error>(())
//! ```
//!
//! # A unit test
//!
//! What a test of your own code looks like: call it with a fresh
//! [`twin::Twin`] (no kernel, no unique names, no cleanup, any OS) and
//! compare whole `Result`s. Copy it into your `tests/` or a
//! `#[cfg(test)] mod tests`:
//!
//! ```
//! use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};
//!
//! /// Your code, generic over the backend: queues a job without waiting.
//! fn submit<N: Namespace>(ns: &N, job: &[u8], urgent: bool) -> Result<(), Error> {
//!     let q = ns.open("/jobs", &OpenOptions::write_only().create().capacity(2))?;
//!     q.try_send(job, if urgent { 9 } else { 1 })
//! }
//!
//! # /*
//! #[test]
//! # */
//! fn urgent_jobs_go_first_and_a_full_queue_is_reported() {
//!     let ns = mqtwin::twin::Twin::new();
//!     assert_eq!(submit(&ns, b"tidy up", false), Ok(()));
//!     assert_eq!(submit(&ns, b"page oncall", true), Ok(()));
//!     assert_eq!(submit(&ns, b"one too many", false), Err(Error::WouldBlock));
//!
//!     let q = ns.open("/jobs", &OpenOptions::read_only()).unwrap();
//!     assert_eq!(q.try_receive_vec(), Ok((b"page oncall".to_vec(), 9)));
//!     assert_eq!(q.try_receive_vec(), Ok((b"tidy up".to_vec(), 1)));
//!     assert_eq!(q.try_receive_vec(), Err(Error::WouldBlock));
//! }
//! # urgent_jobs_go_first_and_a_full_queue_is_reported();
//! ```
//!
//! `examples/unit_test.rs` has more patterns: two users and permissions, a
//! consumer blocked in `receive` without sleeps, virtual time.
//!
//! # Priorities and order
//!
//! Priorities are `0..=32767` (higher is more urgent). A receive takes the
//! oldest message of the highest priority. When a receiver is already
//! waiting, a send hands its message straight to the first waiting receiver
//! (see below for who is first), whatever the message's priority, without
//! queueing it.
//!
//! # Blocking, non-blocking and deadlines
//!
//! Each direction has one core call taking an absolute deadline
//! ([`MessageQueue::send_deadline`], [`MessageQueue::receive_deadline`]); the
//! others (`send`, `try_send`, `send_timeout`, and the receive equivalents)
//! are built on it. Deadlines are wall-clock [`SystemTime`](std::time::SystemTime)s,
//! like the kernel's `CLOCK_REALTIME`. A handle opened with
//! [`OpenOptions::nonblocking`], or switched with
//! [`MessageQueue::set_nonblocking`], returns [`Error::WouldBlock`] instead
//! of waiting.
//!
//! Blocked callers are served as Linux serves them: by the scheduling
//! priority of their thread first (a lower nice value first), then in the
//! order they blocked. Threads that never change their nice value are
//! therefore served first come, first served. A signal with a handler
//! installed without `SA_RESTART` ends a blocked call with
//! [`Error::Interrupted`]; with `SA_RESTART` the call blocks again, behind
//! the callers of the same nice value (it loses its place). The twin
//! simulates both: [`twin::set_thread_nice`] and [`twin::Twin::interrupt`].
//!
//! # Testing with the twin
//!
//! Every [`twin::Twin::new`] is a fresh namespace: no names shared between
//! tests, no cleanup. A twin can act as several simulated users
//! ([`twin::Twin::process`]), change its limits
//! ([`twin::Twin::set_limits`]), and tell a test when its threads are blocked
//! ([`twin::Twin::wait_blocked`]), so wake-up order can be tested without
//! sleeps. Its threads can have nice values ([`twin::set_thread_nice`]) and
//! be interrupted as by a signal ([`twin::Twin::interrupt`]).
//!
//! # Notification and readiness
//!
//! [`MessageQueue::notify`] registers for `mq_notify` in any of its three
//! forms ([`Notify`]): none, a signal, or a callback on another thread; the
//! exact Linux rules are in [`notify`]. [`MessageQueue::readiness`] and
//! [`MessageQueue::wait_ready`] are `poll` on the queue. Both work on both
//! backends.
//!
//! # Async
//!
//! With the feature `tokio`, `mqtwin::tokio::AsyncQueue`
//! wraps a kernel or twin handle: `send`, `receive` and their timeouts are
//! futures on a tokio runtime (the kernel's descriptor in tokio's reactor,
//! the twin's queue waking tasks). Async callers are not FIFO waiters on
//! either backend, and their timeouts follow tokio's clock: see the module.
//!
//! # Simulation
//!
//! A twin built with [`twin::Twin::builder`] can run on a
//! [`twin::VirtualClock`] (a one-hour timeout takes microseconds), inject
//! the errors the kernel can really return ([`twin::FaultPlan`], seeded and
//! reproducible), and record every call ([`twin::Twin::trace_dump`]).
//!
//! ```
//! use std::time::Duration;
//! use mqtwin::{Error, MessageQueue, Namespace, OpenOptions, twin::Twin};
//!
//! let ns = Twin::builder().virtual_time().build();
//! let q = ns.open("/replies", &OpenOptions::read_write().create())?;
//! std::thread::scope(|s| {
//!     let waiter = s.spawn(|| q.receive_timeout(&mut [0; 8192], Duration::from_secs(30)));
//!     ns.wait_blocked(1);
//!     ns.virtual_clock().unwrap().advance(Duration::from_secs(30));
//!     assert_eq!(waiter.join().unwrap(), Err(Error::TimedOut));
//! });
//! # Ok::<(), Error>(())
//! ```
//!
//! # Deterministic simulation
//!
//! [`twin::TwinBuilder::deterministic`] goes further: threads started with
//! [`twin::Sim::spawn`] run one at a time, in an order drawn from a seed at
//! every twin call and blocking point; virtual time jumps when all of them
//! are blocked, and a deadlock fails the run instead of hanging it. The same
//! seed gives the same run, bit for bit; a failing run prints its seed and
//! how to replay it (`MQTWIN_SEED`, `MQTWIN_SCHEDULE`).
//!
//! ```
//! use mqtwin::{MessageQueue, Namespace, OpenOptions, twin::Twin};
//!
//! let trace = |seed| {
//!     let ns = Twin::builder().deterministic(seed).trace().build();
//!     let sim = ns.sim().unwrap();
//!     let q = ns.open("/q", &OpenOptions::read_write().create().capacity(1)).unwrap();
//!     for i in 0..3u8 {
//!         let q = q.try_clone().unwrap();
//!         sim.spawn(move || q.send(&[i], 0).unwrap());
//!     }
//!     sim.spawn(move || (0..3).for_each(|_| drop(q.receive(&mut [0; 8192]).unwrap())));
//!     sim.run().unwrap();
//!     ns.trace_dump()
//! };
//! assert_eq!(trace(3), trace(3));
//! ```
//!
//! # Portability
//!
//! | OS | [`twin`] | [`posix`] |
//! |---|---|---|
//! | Linux | yes | yes (feature `posix`, on by default) |
//! | macOS, Windows, others | yes | not compiled (macOS has no `mq_open`) |
//!
//! | feature | default | gives |
//! |---|---|---|
//! | `posix` | on | [`posix`], the kernel backend (Linux only) |
//! | `tokio` | off | `mqtwin::tokio`: async handles for both backends |
//! | `testing` | off | `testing`: the operation model of the differential tests and fuzzers |
//! | `arbitrary` | off | `testing` plus `arbitrary::Arbitrary` for its types |
//! | `fuzzkit` | off | `mqtwin::fuzzkit`: fuzz your own protocol handler on a deterministic twin |
//! | `remote` | off | `mqtwin::remote` (Unix): the twin server and the remote backend, one twin shared by several processes over a Unix socket |
//!
//! A binary can leave the choice to its user: [`from_env`] reads
//! `MQTWIN=kernel|twin|remote:PATH`.
//!
//! # Coming from posixmq or nix::mqueue
//!
//! The calls are the same, with the message first and the priority second,
//! a [`Received`] instead of a tuple, and names spelled out
//! (the README has the whole table):
//!
//! ```
//! use mqtwin::{MessageQueue, Namespace, OpenOptions, Received};
//! let ns = mqtwin::twin::Twin::new(); // or mqtwin::posix::Kernel
//!
//! // posixmq: OpenOptions::readwrite().create_new().capacity(4).max_msg_len(64).open("/q")
//! let q = ns.open("/q", &OpenOptions::read_write().create_new().capacity(4).max_msg_len(64))?;
//! // posixmq: q.send(3, b"hi")            nix: mq_send(&q, b"hi", 3)
//! q.send(b"hi", 3)?;
//! // posixmq: let (priority, len) = q.recv(&mut buf)?
//! let mut buf = [0; 64];
//! let Received { len, priority } = q.receive(&mut buf)?;
//! assert_eq!((&buf[..len], priority), (&b"hi"[..], 3));
//! // posixmq: for (priority, msg) in q.iter()   (blocking; here items are Results)
//! q.send(b"again", 1)?;
//! for message in q.try_iter() {
//!     assert_eq!(message?, (b"again".to_vec(), 1));
//! }
//! // posixmq: posixmq::remove_queue("/q")   nix: mq_unlink(c"/q")
//! ns.unlink("/q")?;
//! # Ok::<(), mqtwin::Error>(())
//! ```
//!
//! # Differences from the C API
//!
//! - Handles close on drop; [`twin::Queue::try_clone`] / [`posix::Queue::try_clone`] are `dup`
//!   ([`TryClone`] in generic code, [`MessageQueue::try_clone_box`] on a trait object).
//! - A backend chosen at run time: `Box<dyn DynNamespace>` (see [`DynNamespace`]).
//! - Access is an [`Access`] enum: the Linux quirk of access mode 3
//!   (`O_WRONLY|O_RDWR`) cannot be expressed.
//! - `try_send`/`try_receive` never wait, whatever the handle's mode.
//! - Names are `&str`; the kernel also accepts non-UTF-8 names.
//! - Setting only one of capacity / message length fills in the other from
//!   the namespace default, instead of failing.
//! - `EINTR` is reported as [`Error::Interrupted`], not retried.
//!
//! # Known differences between the twin and the kernel
//!
//! Every rule the twin implements is listed with its evidence (kernel source
//! or a probe of the real queue) and the contract test that runs it on both
//! backends in [`semantics`]. What the twin does *not* reproduce (waiter order
//! by scheduling priority, signals, fork and exec, `RLIMIT_MSGQUEUE` across
//! IPC namespaces, timer lateness, …) is in its
//! [known-differences table](semantics#known-differences-between-the-twin-and-the-kernel),
//! each row with its reason and the test that pins the twin's behaviour.
// The crate docs link to `posix`, which exists only on Linux with the `posix`
// feature; elsewhere (the twin-only docs) those links render as plain text.
// The default configuration's `cargo doc` (with `-D warnings`) checks them all.
#![cfg_attr(
    not(all(target_os = "linux", feature = "posix")),
    allow(rustdoc::broken_intra_doc_links)
)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// docs.rs (`--cfg docsrs`, nightly rustdoc) marks every item that needs a
// feature or Linux with a badge ("Available on crate feature tokio only").
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backend;
pub mod deadline;
mod dynamic;
pub mod error;
#[cfg(feature = "fuzzkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "fuzzkit")))]
pub mod fuzzkit;
pub mod limits;
pub mod name;
pub mod notify;
pub mod options;
mod owned;
mod queue;
#[cfg(all(unix, feature = "remote"))]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "remote"))))]
pub mod remote;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub mod tokio;
pub mod twin;

cfg_if::cfg_if! {
    if #[cfg(all(target_os = "linux", feature = "posix"))] {
        #[cfg_attr(docsrs, doc(cfg(all(target_os = "linux", feature = "posix"))))]
        pub mod posix;
    }
}

/// Every rule the twin implements, its evidence and its test, and the known
/// differences between the twin and the kernel: `docs/semantics.md`, as a
/// page of these docs (this module has no items).
#[doc = include_str!("../docs/semantics.md")]
// The rules' scope tags ("[both]", "[twin]", "[both, crate]") are text, not links.
#[allow(rustdoc::broken_intra_doc_links)]
pub mod semantics {}

/// The README's examples are compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use backend::{backend, from_env, BACKEND_ENV};
pub use dynamic::{DynNamespace, TryClone};
pub use error::{Error, NameProblem};
pub use limits::{AttributeLimit, Limits};
pub use notify::{Interest, Notify, Readiness, SignalInfo};
pub use options::{Access, Attributes, OpenOptions};
pub use owned::{Iter, Message, TryIter};
pub use queue::{MessageQueue, Namespace, Received};
