//! The wire protocol between [`Remote`](super::Remote) clients and the
//! [`Server`](super::Server): length-prefixed [postcard] frames.
//!
//! Every frame is a little-endian `u32` length followed by that many bytes
//! of one postcard-encoded value; a length above [`MAX_FRAME`] is refused
//! (the connection is closed). A connection starts with the client's
//! [`Hello`] and the server's [`Welcome`]; then the client sends
//! [`Request`]s, each with an id of its choice, and the server answers each
//! with one [`ServerFrame::Reply`] carrying the same id, in any order (a
//! blocked receive does not hold up later requests), and sends
//! [`ServerFrame::Event`]s (notifications) whenever they happen.
//!
//! Anything the server cannot decode closes that connection, and only that
//! one: a frame names no request id until it is decoded.

use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::{errno, Error};
use crate::limits::Limits;
use crate::notify::{Interest, Readiness, SignalInfo};
use crate::options::{Attributes, OpenOptions};

/// The protocol version this build speaks. A client and a server of
/// different versions refuse each other with [`Error::Remote`] (`EPROTO`).
pub const VERSION: u32 = 2;

/// The first bytes of every [`Hello`], so that a stray connection (another
/// program, garbage) is told apart from an old client at once.
pub const MAGIC: [u8; 8] = *b"mqtwin\0\x01";

/// The largest frame either side accepts: a 16 MiB message (the kernel's
/// hard `msgsize_max`) plus room for the request around it.
pub const MAX_FRAME: usize = crate::limits::HARD_MSGSIZEMAX + 64 * 1024;

/// The client's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// The client's [`VERSION`].
    pub version: u32,
    /// The client's umask, used when the server cannot read the client's
    /// `/proc/<pid>/status` (another pid namespace; not Linux).
    pub umask: u32,
    /// The client's soft `RLIMIT_MSGQUEUE`, used likewise when the server
    /// cannot read `/proc/<pid>/limits`.
    pub rlimit_msgqueue: u64,
}

/// The server's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    /// Accepted: the server's version and what the client needs to know.
    Accepted {
        /// The server's [`VERSION`] (equal to the client's).
        version: u32,
        /// The simulated pid the twin gave this connection (the `si_pid`
        /// its sends put in notification signals).
        pid: u32,
        /// The twin runs on a virtual clock: the client must ask the server
        /// for the time instead of reading its own.
        virtual_time: bool,
    },
    /// Refused: the server speaks `version` (another protocol), or the
    /// server is full, as `reason` says.
    Refused {
        /// The server's [`VERSION`].
        version: u32,
        /// Why, for people.
        reason: String,
    },
}

/// A time on the wire: `SystemTime` may lie before the epoch (an invalid
/// deadline must reach the twin to be refused there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Time {
    /// This long after the Unix epoch.
    After(Duration),
    /// This long before it.
    Before(Duration),
}

impl From<SystemTime> for Time {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Time::After(d),
            Err(e) => Time::Before(e.duration()),
        }
    }
}

impl From<Time> for SystemTime {
    fn from(t: Time) -> Self {
        // Saturates at the platform's range instead of panicking.
        match t {
            Time::After(d) => UNIX_EPOCH
                .checked_add(d)
                .unwrap_or_else(crate::deadline::latest),
            Time::Before(d) => UNIX_EPOCH
                .checked_sub(d)
                .unwrap_or(UNIX_EPOCH - Duration::from_secs(1)),
        }
    }
}

/// A notification registration on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NotifyHow {
    /// `SIGEV_NONE`.
    None,
    /// `SIGEV_SIGNAL`: the server sends [`Event::Signal`] to this client.
    Signal {
        /// Signal number.
        signal: i32,
        /// `si_value`.
        value: usize,
    },
    /// `SIGEV_THREAD`: the server sends [`Event::Fired`] with `token`, or
    /// [`Event::Dropped`] when the registration goes without firing; the
    /// client keeps the callback.
    Thread {
        /// The client's name for its callback.
        token: u64,
    },
}

/// A queue call or a control call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Call {
    /// `mq_open`: answered with [`Answer::Opened`].
    Open {
        /// The name.
        name: String,
        /// The options.
        options: OpenOptions,
    },
    /// `mq_unlink`.
    Unlink {
        /// The name.
        name: String,
    },
    /// The twin's clock: answered with [`Answer::Time`].
    Now,
    /// `mq_timedsend` on a handle.
    Send {
        /// The handle.
        handle: u64,
        /// The message.
        msg: Vec<u8>,
        /// Its priority.
        priority: u32,
        /// Absolute deadline on the twin's clock.
        deadline: Option<Time>,
    },
    /// `mq_timedreceive` with a buffer of `buf_len` bytes: answered with
    /// [`Answer::Message`].
    Receive {
        /// The handle.
        handle: u64,
        /// The caller's buffer length (checked against the message size).
        buf_len: u64,
        /// Absolute deadline.
        deadline: Option<Time>,
    },
    /// `mq_getattr`: [`Answer::Attributes`].
    Attributes {
        /// The handle.
        handle: u64,
    },
    /// `mq_setattr` of `O_NONBLOCK`: [`Answer::Flag`] with the old value.
    SetNonblocking {
        /// The handle.
        handle: u64,
        /// The new value.
        nonblocking: bool,
    },
    /// `dup`: [`Answer::Opened`] with the new handle.
    Dup {
        /// The handle.
        handle: u64,
    },
    /// `close`.
    Close {
        /// The handle.
        handle: u64,
    },
    /// `mq_notify(sevp)`.
    Notify {
        /// The handle.
        handle: u64,
        /// How.
        how: NotifyHow,
    },
    /// `mq_notify(NULL)`.
    CancelNotify {
        /// The handle.
        handle: u64,
    },
    /// `poll` with a zero timeout: [`Answer::Readiness`].
    Readiness {
        /// The handle.
        handle: u64,
    },
    /// `poll` until ready or the deadline: [`Answer::Readiness`].
    WaitReady {
        /// The handle.
        handle: u64,
        /// What to wait for.
        interest: Interest,
        /// Absolute deadline.
        deadline: Option<Time>,
    },
    /// What reading the queue's file would show: [`Answer::Status`].
    Status {
        /// The handle.
        handle: u64,
    },
    /// A control call on the whole twin.
    Control(Control),
    /// Ends this connection's call `request` if it is blocked in the twin,
    /// as a handled signal does ([`Twin::interrupt`](crate::twin::Twin::interrupt)):
    /// [`Answer::Flag`], `true` when it was blocked and now ends with
    /// [`Error::Interrupted`] (or, with
    /// `restart`, waits again behind its peers).
    Interrupt {
        /// The id of the request to interrupt.
        request: u64,
        /// `SA_RESTART`: the call waits again instead of failing.
        restart: bool,
    },
}

/// Calls on the hosted twin itself, for tests and `mqtwin ctl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Control {
    /// The `fs.mqueue.*` limits: [`Answer::Limits`].
    GetLimits,
    /// Writes the limits.
    SetLimits(Limits),
    /// Advances the virtual clock: [`Answer::Time`] with the new time.
    Advance(Duration),
    /// Advances the virtual clock to its earliest pending deadline:
    /// [`Answer::MaybeTime`] (`None`: nobody waits on a deadline).
    AdvanceToDeadline,
    /// Waits until `n` callers are blocked in the twin, at most `timeout`
    /// of real time: [`Answer::Flag`] (whether they were).
    WaitBlocked {
        /// Callers.
        n: u64,
        /// Real-time limit.
        timeout: Duration,
    },
    /// Callers blocked now: [`Answer::Count`].
    Blocked,
    /// The trace as text: [`Answer::Text`].
    Trace,
    /// The fault plan in force and the faults injected so far:
    /// [`Answer::Text`].
    Faults,
    /// Replaces the twin's fault plan (`None`: no more faults).
    SetFaults(Option<crate::twin::FaultPlan>),
    /// Asks the server's owner to stop (see
    /// [`Server::wait_for_stop_request`](super::Server::wait_for_stop_request)).
    Stop,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    /// Nothing to say.
    Done,
    /// A new handle.
    Opened {
        /// The server's name for it.
        handle: u64,
        /// The queue's maximum message length (the client sizes receive
        /// buffers with it).
        max_msg_len: u64,
    },
    /// A received message.
    Message {
        /// Its bytes.
        data: Vec<u8>,
        /// Its priority.
        priority: u32,
    },
    /// Attributes.
    Attributes(Attributes),
    /// A flag.
    Flag(bool),
    /// Readiness.
    Readiness(Readiness),
    /// A time.
    Time(Time),
    /// Maybe a time.
    MaybeTime(Option<Time>),
    /// Limits.
    Limits(Limits),
    /// A count.
    Count(u64),
    /// Text.
    Text(String),
    /// A queue's status.
    Status(QueueStatus),
}

/// What the kernel shows when a queue's file is read (`/dev/mqueue/NAME`):
/// the payload bytes queued and who holds the notification registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueStatus {
    /// Payload bytes queued (`QSIZE`).
    pub queued_bytes: u64,
    /// The twin pid of the process holding the notification registration
    /// (`NOTIFY_PID`), if any.
    pub notify_owner: Option<u32>,
}

/// A client's frame after the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The client's id for this request; the reply carries it.
    pub id: u64,
    /// What to do.
    pub call: Call,
}

/// A notification event for the client process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Raise this signal in the client process.
    Signal(SignalInfo),
    /// Run the callback `token` (its registration fired).
    Fired(u64),
    /// Drop the callback `token` unrun (its registration was removed).
    Dropped(u64),
}

/// A server's frame after the handshake.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ServerFrame {
    /// The answer to request `id`.
    Reply {
        /// The request's id.
        id: u64,
        /// Its result, errors as the twin returned them.
        result: Result<Answer, Error>,
    },
    /// A notification.
    Event(Event),
}

/// A protocol failure as the shared error type.
pub(crate) fn broken(errno: i32, message: impl Into<String>) -> Error {
    Error::Remote {
        errno,
        message: message.into(),
    }
}

/// The error for a lost connection.
pub(crate) fn lost(e: &io::Error) -> Error {
    broken(
        e.raw_os_error().unwrap_or(errno::ECONNRESET),
        format!("connection to the server lost: {e}"),
    )
}

/// Encodes `value` as one frame (length prefix included).
///
/// # Errors
///
/// [`Error::Remote`] (`EMSGSIZE`) when the frame would exceed [`MAX_FRAME`].
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    let mut out = vec![0u8; 4];
    let mut out = postcard::to_extend(value, std::mem::take(&mut out))
        .map_err(|e| broken(errno::EPROTO, format!("cannot encode a frame: {e}")))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(broken(
            errno::EMSGSIZE,
            format!("a frame of {len} bytes exceeds the protocol's {MAX_FRAME}-byte maximum"),
        ));
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// Decodes one frame's body (without its length prefix).
///
/// # Errors
///
/// [`Error::Remote`] (`EPROTO`) for bytes that are not one whole value of
/// type `T` (trailing bytes included).
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, Error> {
    let (value, rest) = postcard::take_from_bytes(body)
        .map_err(|e| broken(errno::EPROTO, format!("undecodable frame: {e}")))?;
    if !rest.is_empty() {
        return Err(broken(
            errno::EPROTO,
            format!("{} stray bytes after a frame", rest.len()),
        ));
    }
    Ok(value)
}

/// What [`read_frame`] found.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// A frame's body.
    Frame(Vec<u8>),
    /// The peer closed the connection between frames.
    Closed,
}

/// Reads one frame's body. A clean end of stream before a frame starts is
/// [`Incoming::Closed`]; one inside a frame, a length above [`MAX_FRAME`],
/// or any read error is `Err`.
pub(crate) fn read_frame(r: &mut impl Read) -> io::Result<Incoming> {
    let mut head = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(Incoming::Closed),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes announced, the maximum is {MAX_FRAME}"),
        ));
    }
    // Read in pieces, so that a huge announced length costs memory only as
    // its bytes really arrive.
    let mut body = Vec::with_capacity(len.min(64 * 1024));
    let mut chunk = [0u8; 16 * 1024];
    while body.len() < len {
        let want = (len - body.len()).min(chunk.len());
        match r.read(&mut chunk[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Incoming::Frame(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_an_error() {
        let req = Request {
            id: 7,
            call: Call::Send {
                handle: 1,
                msg: b"hi".to_vec(),
                priority: 3,
                deadline: Some(
                    SystemTime::UNIX_EPOCH
                        .checked_sub(Duration::from_secs(2))
                        .unwrap()
                        .into(),
                ),
            },
        };
        let frame = encode(&req).unwrap();
        let mut r = &frame[..];
        let Incoming::Frame(body) = read_frame(&mut r).unwrap() else {
            panic!("no frame")
        };
        assert_eq!(decode::<Request>(&body).unwrap(), req);
        assert!(matches!(
            decode::<Request>(&[0xff; 9]),
            Err(Error::Remote {
                errno: errno::EPROTO,
                ..
            })
        ));
        let mut extra = body.clone();
        extra.push(0);
        assert!(decode::<Request>(&extra).is_err());
        // A huge announced length is refused before anything is allocated.
        let mut huge = &u32::MAX.to_le_bytes()[..];
        assert!(read_frame(&mut huge).is_err());
        // Half a frame is an error, an empty stream a clean close.
        let mut half = &frame[..frame.len() - 1];
        assert!(read_frame(&mut half).is_err());
        assert!(matches!(
            read_frame(&mut &[][..]).unwrap(),
            Incoming::Closed
        ));
    }

    #[test]
    fn times_before_the_epoch_travel() {
        let before = UNIX_EPOCH - Duration::from_nanos(1);
        assert_eq!(SystemTime::from(Time::from(before)), before);
        let now = SystemTime::now();
        assert_eq!(SystemTime::from(Time::from(now)), now);
    }
}
