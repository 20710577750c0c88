//! Several processes, one twin: the twin server ([`Server`], behind
//! `mqtwin serve`) and the remote backend ([`Remote`]), feature `remote`,
//! Unix only.
//!
//! A [`Twin`](crate::twin::Twin) lives in one process. A [`Server`] hosts
//! one for every process that connects to its Unix-domain socket: each
//! connection is one process of the twin, with the real identity of the
//! process at the other end, so mode bits, the unlink owner rule and
//! per-user `RLIMIT_MSGQUEUE` accounting apply to real users. A [`Remote`]
//! is the client: a [`Namespace`](crate::Namespace) like the others, so
//! code written for the kernel or the twin runs on it unchanged — in
//! several processes, on macOS too, with the twin's virtual time, fault
//! plans, limits and trace, which the server's owner (or `mqtwin ctl`)
//! drives.
//!
//! # A server and two clients
//!
//! ```
//! use std::time::Duration;
//! use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};
//! use mqtwin::remote::{Remote, Server};
//! use mqtwin::twin::Twin;
//!
//! let path = std::env::temp_dir().join(format!("mqtwin-tour-{}.sock", std::process::id()));
//! # let _ = std::fs::remove_file(&path);
//! // The server's owner builds the twin: here on virtual time, with a trace.
//! let server = Server::bind(&path, Twin::builder().virtual_time().trace().build())?;
//!
//! // Two clients (in real use, two processes; `mqtwin serve` is the server).
//! let alice = Remote::connect(&path)?;
//! let bob = Remote::connect(&path)?;
//! let inbox = alice.open("/inbox", &OpenOptions::read_only().create())?;
//! let outbox = bob.open("/inbox", &OpenOptions::write_only())?;
//!
//! std::thread::scope(|s| {
//!     // A one-hour timeout, on the served twin's virtual clock.
//!     let waiter = s.spawn(|| inbox.receive_vec_timeout(Duration::from_secs(3600)));
//!     assert!(alice.wait_blocked(1, Duration::from_secs(10)).unwrap());
//!     alice.advance(Duration::from_secs(3600)).unwrap(); // `mqtwin ctl advance 1h`
//!     assert_eq!(waiter.join().unwrap(), Err(Error::TimedOut));
//! });
//! outbox.send(b"hello from bob", 5)?;
//! assert_eq!(inbox.receive_vec()?, (b"hello from bob".to_vec(), 5));
//! assert!(server.twin().trace_dump().contains("send(\"/inbox\""));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! From the shell, the same with the CLI:
//!
//! ```text
//! mqtwin serve --socket /tmp/mq.sock --virtual-time --trace - &
//! MQTWIN=remote:/tmp/mq.sock ./receiver &         # any program using mqtwin::from_env()
//! MQTWIN=remote:/tmp/mq.sock ./sender
//! mqtwin ctl --socket /tmp/mq.sock wait-blocked 1
//! mqtwin ctl --socket /tmp/mq.sock advance 30s
//! mqtwin ctl --socket /tmp/mq.sock stop           # the server prints its trace and exits
//! ```
//!
//! # What a connection is
//!
//! - **Identity.** On Linux the server takes the client's pid, uid and gid
//!   from `SO_PEERCRED`, then its groups, umask, capabilities and soft
//!   `RLIMIT_MSGQUEUE` from `/proc/<pid>/status` and `/proc/<pid>/limits`
//!   (as [`Credentials::current`](crate::twin::Credentials::current) reads
//!   its own), at connect time. When `/proc/<pid>` cannot be read or shows
//!   other ids (another pid namespace) and on other systems (`getpeereid`:
//!   uid and gid only), it uses [`Credentials::root`](crate::twin::Credentials::root)
//!   for uid 0 and [`Credentials::user`](crate::twin::Credentials::user)
//!   otherwise, with the umask and `RLIMIT_MSGQUEUE` the client declared in
//!   its handshake (Linux clients read them from `/proc/self`; others send
//!   `0o022` and the Linux default). A umask or rlimit changed after
//!   connecting is not seen.
//! - **Process exit.** When the connection closes — the client exits,
//!   crashes, is killed with `SIGKILL`, even in the middle of a call or of
//!   a frame — its blocked calls end without sending or receiving anything
//!   (they are interrupted in the twin, as the kernel ends a dying
//!   process's waits), then its handles close, which removes its
//!   notification registrations. A receive that had already taken its
//!   message when the client died loses that message, as on the kernel
//!   (the message was dequeued; the process died before reading it).
//! - **Blocking.** Calls that may wait (send, receive and `wait_ready` on a
//!   blocking handle with a deadline still ahead) run on worker threads of
//!   the server, so a blocked call holds only its caller; the others run at
//!   once in the connection's reader. [`ServerConfig`] bounds connections,
//!   waiting calls per connection and workers; beyond them the call fails
//!   with [`Error::Remote`](crate::Error::Remote) (`EAGAIN`), a connection
//!   is refused at its handshake.
//! - **Handles.** A [`RemoteQueue`] is one open description on the server:
//!   `O_NONBLOCK` lives there, so [`set_nonblocking`](crate::MessageQueue::set_nonblocking)
//!   is seen by every [`try_clone`](RemoteQueue::try_clone) (`dup`).
//! - **Time.** Deadlines are absolute and travel as such. On a real-clock
//!   twin the client reads its own clock (the same machine's); on a
//!   virtual-time twin every [`now`](crate::MessageQueue::now) asks the server.
//! - **Notification.** [`Notify::Signal`](crate::Notify::Signal): the
//!   server sends an event; the client raises the signal in its own process
//!   (Linux: `rt_sigqueueinfo` to itself with `si_code = SI_MESGQ`, the
//!   sender's real pid (from the server's `SO_PEERCRED`; its twin pid
//!   where the server cannot learn it) and uid, the value, before the sender's call
//!   returns when the sender is this process; elsewhere `kill`, without
//!   the value). The client's event thread blocks every signal, so the
//!   signal goes to one of the program's own threads.
//!   [`Notify::Thread`](crate::Notify::Thread): the callback stays in the
//!   client and runs on a new thread of the client when the registration
//!   fires; a registration removed without firing drops it, before the
//!   call that removed it returns. A callback that makes remote calls from
//!   its `Drop` gets [`Error::Remote`](crate::Error::Remote) (`EDEADLK`)
//!   instead of waiting for itself (a close is sent without waiting).
//! - **Fork.** A connection belongs to the process that made it. A forked
//!   child that uses its parent's [`Remote`] or queues gets
//!   [`Error::Remote`](crate::Error::Remote) (`EBADF`) at its first call,
//!   and dropping them there closes nothing of the parent's; the child
//!   connects itself to be a process of the twin.
//! - **Errors** are the twin's own [`Error`](crate::Error) values; a lost
//!   connection, a refusing or incompatible server is [`Error::Remote`](crate::Error::Remote),
//!   and every later call on that client fails with it.
//!
//! # The protocol
//!
//! [`protocol`]: a handshake carrying a version (a mismatch is a clear
//! [`Error::Remote`](crate::Error::Remote) on both sides), then
//! length-prefixed [postcard] frames of at most
//! [`MAX_FRAME`](protocol::MAX_FRAME) bytes, each request with an id so that
//! many calls of one process are in flight at once. A frame the server
//! cannot decode, a length above the maximum or a handshake not sent within
//! 10 s closes that connection, and only that one.
//!
//! # Differences from the in-process twin
//!
//! - Nice values ([`set_thread_nice`](crate::twin::set_thread_nice)) and
//!   [`Twin::interrupt`](crate::twin::Twin::interrupt) act on threads of the
//!   process that holds the twin: a client thread's nice value does not
//!   order its waits, and a signal to a client thread does not interrupt
//!   its call (its call waits on a server thread). Blocked callers are
//!   served in arrival order.
//! - A deterministic twin ([`TwinBuilder::deterministic`](crate::twin::TwinBuilder::deterministic))
//!   cannot be served.
//! - Closing a handle while another thread of the client is blocked on it
//!   removes the process's notification registration only once that call
//!   has returned (the kernel flushes it at the close).
//! - Each call is a round trip over the socket: tens of microseconds on a
//!   busy virtual machine, where the kernel takes one or two
//!   (`docs/performance.md`).

mod client;
mod connection;
#[doc(hidden)]
pub mod fuzz;
mod peer;
pub mod protocol;
mod server;
mod wire;

pub use client::{Remote, RemoteQueue};
pub use protocol::QueueStatus;
pub use server::{Server, ServerConfig};
