//! [`Remote`]: the client backend, a [`Namespace`] served by a twin
//! [`Server`](super::Server) over its Unix-domain socket.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::{errno, Error};
use crate::limits::Limits;
use crate::notify::{Interest, Notify, Readiness};
use crate::options::{Access, Attributes, OpenOptions};
use crate::queue::{MessageQueue, Namespace, Received};

use super::connection::{self, Conn};
use super::peer;
use super::protocol::{
    self, broken, Answer, Call, Control, Hello, Incoming, NotifyHow, QueueStatus, Request, Time,
    Welcome, MAGIC, VERSION,
};
use super::wire;

/// A twin namespace served by a [`Server`](super::Server): the remote
/// backend. `Send + Sync` and cheap to clone (clones share one connection,
/// i.e. one process of the twin); every call is one request and one reply,
/// and calls from several threads are in flight at once.
///
/// See the [module docs](super) for a tutorial.
#[derive(Clone)]
pub struct Remote {
    client: Arc<Conn>,
}

impl Remote {
    /// Connects to the server at `path`: this process becomes one process
    /// of the twin served there, with its real identity.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`]: no socket at `path` (`ENOENT`), nobody listening
    /// (`ECONNREFUSED`), a server of another protocol version or a full
    /// server (`EPROTO`, the message says which), or no thread for the
    /// client's event reader.
    pub fn connect(path: impl AsRef<Path>) -> Result<Remote, Error> {
        let path = path.as_ref();
        let io = |e: std::io::Error| {
            broken(
                e.raw_os_error().unwrap_or(errno::ECONNREFUSED),
                format!("cannot connect to {}: {e}", path.display()),
            )
        };
        let mut stream = UnixStream::connect(path).map_err(io)?;
        let (umask, rlimit_msgqueue) = peer::own_declaration();
        let hello = protocol::encode(&Hello {
            magic: MAGIC,
            version: VERSION,
            umask,
            rlimit_msgqueue,
        })?;
        // A refusing server may close before reading: its answer still counts.
        let _ = wire::send_all(&stream, &hello);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let welcome = match protocol::read_frame(&mut stream) {
            Ok(Incoming::Frame(body)) => protocol::decode::<Welcome>(&body)?,
            Ok(Incoming::Closed) => {
                return Err(broken(
                    errno::EPROTO,
                    format!(
                        "{} closed the connection at the handshake (not an mqtwin server?)",
                        path.display()
                    ),
                ))
            }
            Err(e) => return Err(io(e)),
        };
        let (pid, virtual_time) = match welcome {
            Welcome::Accepted {
                version,
                pid,
                virtual_time,
            } if version == VERSION => (pid, virtual_time),
            Welcome::Accepted { version, .. } => {
                return Err(broken(
                    errno::EPROTO,
                    format!("the server speaks protocol version {version}, this client {VERSION}"),
                ))
            }
            Welcome::Refused { version, reason } => {
                return Err(broken(
                    errno::EPROTO,
                    format!("the server (protocol version {version}; this client {VERSION}) refused: {reason}"),
                ))
            }
        };
        let _ = stream.set_read_timeout(None);
        let client = Conn::start(stream, pid, virtual_time)?;
        Ok(Remote { client })
    }

    /// Ends the call that `thread` of this process is blocked in on the
    /// server, as a handled signal would on the kernel: the call returns
    /// [`Error::Interrupted`] without taking a message or a slot, or with
    /// `restart` (`SA_RESTART`) waits again behind the callers of its nice
    /// value ([`Twin::interrupt`](crate::twin::Twin::interrupt) on the
    /// server). A signal to a client thread does not do this by itself (the
    /// call waits on a server thread); this is what libmqtwin does when its
    /// caller's wait is interrupted.
    ///
    /// Returns `false` when `thread` is not waiting for a call of this
    /// client, or its call is not blocked (not yet, or no longer).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] when the connection is lost.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use mqtwin::{Error, MessageQueue, Namespace, OpenOptions};
    /// # use mqtwin::remote::{Remote, Server};
    /// # let path = std::env::temp_dir().join(format!("mqtwin-int-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// # let server = Server::bind(&path, mqtwin::twin::Twin::new())?;
    /// let client = Remote::connect(&path)?;
    /// let q = client.open("/jobs", &OpenOptions::read_write().create())?;
    /// std::thread::scope(|s| {
    ///     let waiter = s.spawn(|| q.receive_vec());
    ///     assert!(client.wait_blocked(1, Duration::from_secs(10)).unwrap());
    ///     while !client.interrupt(waiter.thread().id(), false).unwrap() {}
    ///     assert_eq!(waiter.join().unwrap(), Err(Error::Interrupted));
    /// });
    /// # drop(server);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn interrupt(&self, thread: std::thread::ThreadId, restart: bool) -> Result<bool, Error> {
        self.client.interrupt(thread, restart)
    }

    /// This connection's pid in the twin. Notification signals fired by
    /// its sends carry the process's real pid instead where the server
    /// learns it from the socket (Linux, `SO_PEERCRED`), as the kernel's do.
    pub fn pid(&self) -> u32 {
        self.client.pid
    }

    fn control(&self, c: Control) -> Result<Answer, Error> {
        self.client.call(Call::Control(c))
    }

    /// The served twin's limits (`fs.mqueue.*`).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] when the connection is lost.
    pub fn limits(&self) -> Result<Limits, Error> {
        match self.control(Control::GetLimits)? {
            Answer::Limits(l) => Ok(l),
            a => Err(unexpected(&a)),
        }
    }

    /// Sets the served twin's limits, as writing the sysctls would (for
    /// every client).
    ///
    /// # Errors
    ///
    /// As [`Twin::set_limits`](crate::twin::Twin::set_limits); [`Error::Remote`].
    pub fn set_limits(&self, limits: Limits) -> Result<(), Error> {
        self.control(Control::SetLimits(limits)).map(drop)
    }

    /// Advances the served twin's virtual clock by `by`; returns the new time.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] (`EINVAL`) when the twin runs on the real clock.
    pub fn advance(&self, by: Duration) -> Result<SystemTime, Error> {
        match self.control(Control::Advance(by))? {
            Answer::Time(t) => Ok(t.into()),
            a => Err(unexpected(&a)),
        }
    }

    /// Advances the virtual clock to the earliest deadline a caller waits
    /// for; `None` when nobody waits on one.
    ///
    /// # Errors
    ///
    /// As [`advance`](Remote::advance).
    pub fn advance_to_deadline(&self) -> Result<Option<SystemTime>, Error> {
        match self.control(Control::AdvanceToDeadline)? {
            Answer::MaybeTime(t) => Ok(t.map(Into::into)),
            a => Err(unexpected(&a)),
        }
    }

    /// Waits until `n` callers (of any client) are blocked in the served
    /// twin, at most `timeout` of real time; returns whether they were.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn wait_blocked(&self, n: usize, timeout: Duration) -> Result<bool, Error> {
        match self.control(Control::WaitBlocked {
            n: n as u64,
            timeout,
        })? {
            Answer::Flag(f) => Ok(f),
            a => Err(unexpected(&a)),
        }
    }

    /// Callers blocked in the served twin now.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn blocked(&self) -> Result<usize, Error> {
        match self.control(Control::Blocked)? {
            Answer::Count(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
            a => Err(unexpected(&a)),
        }
    }

    /// The served twin's trace, one call per line (empty unless the server's
    /// twin was built with tracing).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn trace(&self) -> Result<String, Error> {
        self.text(Control::Trace)
    }

    /// The served twin's fault plan and the faults injected so far, as text.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn faults(&self) -> Result<String, Error> {
        self.text(Control::Faults)
    }

    /// Replaces the served twin's fault plan, for every client (`None`: no
    /// more faults); see [`Twin::set_fault_plan`](crate::twin::Twin::set_fault_plan).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn set_fault_plan(&self, plan: Option<crate::twin::FaultPlan>) -> Result<(), Error> {
        self.control(Control::SetFaults(plan)).map(drop)
    }

    /// Asks the server's owner to stop it (`mqtwin serve` then writes its
    /// trace and exits; a [`Server`](super::Server) in a program sees it in
    /// [`wait_for_stop_request`](super::Server::wait_for_stop_request)).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`].
    pub fn request_stop(&self) -> Result<(), Error> {
        self.control(Control::Stop).map(drop)
    }

    fn text(&self, c: Control) -> Result<String, Error> {
        match self.control(c)? {
            Answer::Text(t) => Ok(t),
            a => Err(unexpected(&a)),
        }
    }
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("pid", &self.client.pid)
            .finish()
    }
}

fn unexpected(a: &Answer) -> Error {
    broken(
        errno::EPROTO,
        format!("unexpected answer from the server: {a:?}"),
    )
}

impl Namespace for Remote {
    type Queue = RemoteQueue;

    fn open(&self, name: &str, options: &OpenOptions) -> Result<RemoteQueue, Error> {
        let a = self.client.call(Call::Open {
            name: name.to_owned(),
            options: options.clone(),
        })?;
        RemoteQueue::from_answer(&self.client, a, options.get_access())
    }

    fn unlink(&self, name: &str) -> Result<(), Error> {
        self.client
            .call(Call::Unlink {
                name: name.to_owned(),
            })
            .map(drop)
    }

    fn now(&self) -> SystemTime {
        self.client.now()
    }
}

/// A handle to a queue of a served twin: one open description of the
/// server's twin. Dropping it closes it; [`try_clone`](RemoteQueue::try_clone)
/// is `dup` (the clone shares the non-blocking flag).
pub struct RemoteQueue {
    client: Arc<Conn>,
    handle: u64,
    max_msg_len: usize,
    access: Access,
}

impl RemoteQueue {
    fn from_answer(client: &Arc<Conn>, a: Answer, access: Access) -> Result<RemoteQueue, Error> {
        match a {
            Answer::Opened {
                handle,
                max_msg_len,
            } => Ok(RemoteQueue {
                client: Arc::clone(client),
                handle,
                max_msg_len: usize::try_from(max_msg_len).unwrap_or(usize::MAX),
                access,
            }),
            a => Err(unexpected(&a)),
        }
    }

    /// Another handle to the same open description (`dup`).
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] when the connection is lost.
    pub fn try_clone(&self) -> Result<RemoteQueue, Error> {
        let a = self.client.call(Call::Dup {
            handle: self.handle,
        })?;
        RemoteQueue::from_answer(&self.client, a, self.access)
    }

    /// What reading the queue's file would show (`QSIZE`, `NOTIFY_PID`),
    /// whatever this handle's access.
    ///
    /// # Errors
    ///
    /// [`Error::Remote`] when the connection is lost.
    pub fn status(&self) -> Result<QueueStatus, Error> {
        match self.client.call(Call::Status {
            handle: self.handle,
        })? {
            Answer::Status(s) => Ok(s),
            a => Err(unexpected(&a)),
        }
    }

    /// The access this handle was opened with.
    pub fn access(&self) -> Access {
        self.access
    }

    fn done(&self, call: Call) -> Result<(), Error> {
        self.client.call(call).map(drop)
    }
}

impl crate::dynamic::TryClone for RemoteQueue {
    fn try_clone(&self) -> Result<Self, Error> {
        RemoteQueue::try_clone(self)
    }
}

impl Drop for RemoteQueue {
    fn drop(&mut self) {
        let close = Call::Close {
            handle: self.handle,
        };
        if connection::handling() {
            // Dropped with a callback while this thread reads the
            // connection: send the close without waiting for its answer.
            let _ = self.client.send_no_wait(&Request { id: 0, call: close });
        } else {
            // Waits, so that a callback the close removes is dropped first.
            let _ = self.client.call(close);
        }
    }
}

impl std::fmt::Debug for RemoteQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteQueue")
            .field("handle", &self.handle)
            .field("max_msg_len", &self.max_msg_len)
            .finish()
    }
}

fn deadline(d: Option<SystemTime>) -> Option<Time> {
    d.map(Time::from)
}

impl MessageQueue for RemoteQueue {
    fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline_at: Option<SystemTime>,
    ) -> Result<(), Error> {
        if msg.len() > protocol::MAX_FRAME - 1024 {
            // Longer than any queue's message size, and than a frame: the
            // twin's own checks, in its order, without sending it.
            crate::deadline::validate(deadline_at)?;
            crate::deadline::check_priority(priority)?;
            if !self.access.can_write() {
                return Err(Error::NotWritable);
            }
            return Err(Error::MessageTooLong {
                len: msg.len(),
                limit: self.max_msg_len,
            });
        }
        self.done(Call::Send {
            handle: self.handle,
            msg: msg.to_vec(),
            priority,
            deadline: deadline(deadline_at),
        })
    }

    fn receive_deadline(
        &self,
        buf: &mut [u8],
        deadline_at: Option<SystemTime>,
    ) -> Result<Received, Error> {
        match self.client.call(Call::Receive {
            handle: self.handle,
            buf_len: buf.len() as u64,
            deadline: deadline(deadline_at),
        })? {
            Answer::Message { data, priority } if data.len() <= buf.len() => {
                buf[..data.len()].copy_from_slice(&data);
                Ok(Received {
                    len: data.len(),
                    priority,
                })
            }
            a => Err(unexpected(&a)),
        }
    }

    fn attributes(&self) -> Result<Attributes, Error> {
        match self.client.call(Call::Attributes {
            handle: self.handle,
        })? {
            Answer::Attributes(a) => Ok(a),
            a => Err(unexpected(&a)),
        }
    }

    fn set_nonblocking(&self, nonblocking: bool) -> Result<bool, Error> {
        match self.client.call(Call::SetNonblocking {
            handle: self.handle,
            nonblocking,
        })? {
            Answer::Flag(old) => Ok(old),
            a => Err(unexpected(&a)),
        }
    }

    fn try_clone_box(&self) -> Result<Box<dyn MessageQueue>, Error> {
        Ok(Box::new(self.try_clone()?))
    }

    fn notify(&self, how: Notify) -> Result<(), Error> {
        how.validate()?;
        let (wire_how, token) = match how {
            Notify::None => (NotifyHow::None, None),
            Notify::Signal { signal, value } => (NotifyHow::Signal { signal, value }, None),
            Notify::Thread(cb) => {
                let token = self.client.keep_callback(cb);
                (NotifyHow::Thread { token }, Some(token))
            }
        };
        let r = self.done(Call::Notify {
            handle: self.handle,
            how: wire_how,
        });
        if r.is_err() {
            if let Some(token) = token {
                // Refused: the callback is dropped before this returns.
                let cb = self.client.forget_callback(token);
                drop(cb);
            }
        }
        r
    }

    fn cancel_notify(&self) -> Result<(), Error> {
        self.done(Call::CancelNotify {
            handle: self.handle,
        })
    }

    fn readiness(&self) -> Result<Readiness, Error> {
        match self.client.call(Call::Readiness {
            handle: self.handle,
        })? {
            Answer::Readiness(r) => Ok(r),
            a => Err(unexpected(&a)),
        }
    }

    fn wait_ready(
        &self,
        interest: Interest,
        deadline_at: Option<SystemTime>,
    ) -> Result<Readiness, Error> {
        match self.client.call(Call::WaitReady {
            handle: self.handle,
            interest,
            deadline: deadline(deadline_at),
        })? {
            Answer::Readiness(r) => Ok(r),
            a => Err(unexpected(&a)),
        }
    }

    fn now(&self) -> SystemTime {
        self.client.now()
    }
}
