//! The client's side of one connection: requests out, answers and events
//! in. Whoever waits for an answer reads the socket itself when no one else
//! does (a leader/follower scheme), so an answer usually wakes only the
//! thread that waits for it; an event thread reads when no call has been
//! waiting for a while, so notifications arrive when the program makes no
//! calls.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{errno, Error};
use crate::notify::SignalInfo;

use super::protocol::{self, broken, Answer, Call, Event, Incoming, Request, ServerFrame};
use super::wire;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How long the socket must go unread by callers before the event thread
/// reads it: short enough for notifications in an idle program, long
/// enough that a program making call after call reads its own answers.
const GRACE: Duration = Duration::from_millis(2);

thread_local! {
    /// Set while this thread handles frames (as a reader): a call from
    /// there (the drop of a callback) must not wait for an answer that only
    /// this thread would read.
    static HANDLING: Cell<bool> = const { Cell::new(false) };
}

/// Whether this thread is handling frames now.
pub(crate) fn handling() -> bool {
    HANDLING.with(Cell::get)
}

#[derive(Default)]
struct SlotState {
    result: Option<Result<Answer, Error>>,
    /// The reader is free and this waiter may take it.
    offered: bool,
}

/// One call's answer.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    cv: Condvar,
}

impl Slot {
    fn fill(&self, r: Result<Answer, Error>) {
        lock(&self.state).result = Some(r);
        self.cv.notify_all();
    }

    fn offer(&self) -> bool {
        let mut st = lock(&self.state);
        if st.result.is_some() {
            return false;
        }
        st.offered = true;
        self.cv.notify_all();
        true
    }

    fn take(&self) -> Option<Result<Answer, Error>> {
        lock(&self.state).result.take()
    }

    /// Waits until answered (`Some`) or offered the reader (`None`).
    fn wait(&self) -> Option<Result<Answer, Error>> {
        let mut st = lock(&self.state);
        loop {
            if let Some(r) = st.result.take() {
                return Some(r);
            }
            if std::mem::take(&mut st.offered) {
                return None;
            }
            st = self.cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// What the callers, the reader and the event thread share, under one lock.
struct Pending {
    calls: HashMap<u64, Arc<Slot>>,
    /// The read half, when no thread is reading.
    reader: Option<Reader>,
    /// When the last caller stopped reading with no call left.
    idle_since: Instant,
    /// The event thread waits without a timeout (for the reader to become
    /// free with no call left): only then does it need a wake-up.
    event_thread_parked: bool,
    /// Set once the connection is gone: every later call fails with it.
    dead: Option<Error>,
}

type Callback = Box<dyn FnOnce() + Send + 'static>;

/// The read half, buffered: a frame usually takes one `read`.
type Reader = BufReader<UnixStream>;

/// The read buffer's size (bigger frames are read in pieces).
const READ_BUFFER: usize = 64 * 1024;

/// The state the event thread keeps alive (the [`Conn`] itself is dropped
/// with the last client handle, which ends the event thread).
struct Shared {
    pending: Mutex<Pending>,
    /// The event thread waits here for the reader to be free and idle.
    idle: Condvar,
    callbacks: Mutex<HashMap<u64, Callback>>,
}

/// One connection to a server.
pub(crate) struct Conn {
    writer: Mutex<UnixStream>,
    /// The request each thread of this process is waiting for the answer
    /// to (what [`interrupt`](Conn::interrupt) names).
    calling: Mutex<HashMap<std::thread::ThreadId, u64>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    next_token: AtomicU64,
    pub(crate) pid: u32,
    pub(crate) virtual_time: bool,
    /// The event thread, joined when the connection is dropped.
    events: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The real process that connected. A forked child shares the socket
    /// but is another process of the twin only if it connects itself: its
    /// calls through this connection fail, and its drop leaves the socket
    /// alone.
    owner: u32,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if std::process::id() != self.owner {
            // A forked child: the socket is the parent's connection.
            return;
        }
        // Ends the event thread (it reads end of file, or sees `dead`) and,
        // on the server, this process: its handles are all closed already.
        let _ = lock(&self.writer).shutdown(std::net::Shutdown::Both);
        let mut p = lock(&self.shared.pending);
        p.dead
            .get_or_insert_with(|| broken(errno::ECONNRESET, "the client was dropped"));
        drop(p);
        self.shared.idle.notify_all();
        // Wait (briefly) for the event thread, so that a dropped client
        // leaves no thread behind; not from that thread itself (a callback
        // it drops may hold the last handle).
        let events = lock(&self.events).take();
        if let Some(h) = events {
            if h.thread().id() != std::thread::current().id() {
                let start = Instant::now();
                while !h.is_finished() && start.elapsed() < Duration::from_secs(1) {
                    std::thread::sleep(Duration::from_micros(100));
                }
                if h.is_finished() {
                    let _ = h.join();
                }
            }
        }
    }
}

impl Conn {
    /// A connection over `stream` (handshake done); starts the event thread.
    pub(crate) fn start(
        stream: UnixStream,
        pid: u32,
        virtual_time: bool,
    ) -> Result<Arc<Conn>, Error> {
        let reader = stream
            .try_clone()
            .map_err(|e| broken(errno::EMFILE, format!("cannot duplicate the socket: {e}")))?;
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                calls: HashMap::new(),
                reader: Some(BufReader::with_capacity(READ_BUFFER, reader)),
                idle_since: Instant::now(),
                event_thread_parked: false,
                dead: None,
            }),
            idle: Condvar::new(),
            callbacks: Mutex::new(HashMap::new()),
        });
        let conn = Arc::new(Conn {
            writer: Mutex::new(stream),
            calling: Mutex::new(HashMap::new()),
            shared: Arc::clone(&shared),
            next_id: AtomicU64::new(1),
            next_token: AtomicU64::new(1),
            pid,
            virtual_time,
            owner: std::process::id(),
            events: Mutex::new(None),
        });
        let events = std::thread::Builder::new()
            .name("mqtwin-remote-events".into())
            .spawn(move || event_thread(&shared))
            .map_err(|e| broken(errno::EAGAIN, format!("cannot start the event thread: {e}")))?;
        *lock(&conn.events) = Some(events);
        Ok(conn)
    }

    /// One request, one answer.
    pub(crate) fn call(&self, call: Call) -> Result<Answer, Error> {
        if handling() {
            return Err(broken(
                errno::EDEADLK,
                "a remote queue call from inside the drop of a notification callback \
                 (while its thread reads the connection) would wait for itself",
            ));
        }
        let me = std::process::id();
        if me != self.owner {
            return Err(broken(
                errno::EBADF,
                format!(
                    "this connection to the twin server belongs to process {}; process {me} \
                     (a forked child) must connect itself (Remote::connect)",
                    self.owner
                ),
            ));
        }
        let slot = Arc::new(Slot::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _calling = Calling::new(&self.calling, id);
        let mut reader = {
            let mut p = lock(&self.shared.pending);
            if let Some(e) = &p.dead {
                return Err(e.clone());
            }
            p.calls.insert(id, Arc::clone(&slot));
            p.reader.take()
        };
        if let Err(e) = self.send(&Request { id, call }) {
            lock(&self.shared.pending).calls.remove(&id);
            if let Some(r) = reader {
                self.shared.release(r);
            }
            return Err(e);
        }
        loop {
            if let Some(stream) = reader.take() {
                return self.shared.lead(stream, &slot);
            }
            if let Some(r) = slot.wait() {
                return r;
            }
            // Offered the reader: take it, unless someone was quicker.
            let mut p = lock(&self.shared.pending);
            if let Some(r) = slot.take() {
                return r;
            }
            reader = p.reader.take();
            if reader.is_none() && p.dead.is_some() {
                drop(p);
                return slot
                    .wait()
                    .unwrap_or_else(|| Err(broken(errno::ECONNRESET, "lost")));
            }
        }
    }

    /// Interrupts the call `thread` is waiting for, if the server has it
    /// blocked in the twin (see [`Call::Interrupt`]); `false` when that
    /// thread waits for no call, or its call is not blocked (not yet, or
    /// no longer).
    pub(crate) fn interrupt(
        &self,
        thread: std::thread::ThreadId,
        restart: bool,
    ) -> Result<bool, Error> {
        let Some(request) = lock(&self.calling).get(&thread).copied() else {
            return Ok(false);
        };
        match self.call(Call::Interrupt { request, restart })? {
            Answer::Flag(hit) => Ok(hit),
            other => Err(broken(
                errno::EPROTO,
                format!("the server answered an interrupt with {other:?}"),
            )),
        }
    }

    /// Sends a request without waiting for its answer (a close from a
    /// thread that reads the connection); nothing from a forked child.
    pub(crate) fn send_no_wait(&self, req: &Request) -> Result<(), Error> {
        if std::process::id() != self.owner {
            return Ok(());
        }
        self.send(req)
    }

    fn send(&self, req: &Request) -> Result<(), Error> {
        let bytes = protocol::encode(req)?;
        let w = lock(&self.writer);
        wire::send_all(&w, &bytes).map_err(|e| protocol::lost(&e))
    }

    /// A fresh token for a thread callback, kept until its event.
    pub(crate) fn keep_callback(&self, cb: Callback) -> u64 {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        lock(&self.shared.callbacks).insert(token, cb);
        token
    }

    /// Takes back a callback (its registration was refused); the caller
    /// drops it outside the lock.
    pub(crate) fn forget_callback(&self, token: u64) -> Option<Callback> {
        lock(&self.shared.callbacks).remove(&token)
    }

    pub(crate) fn now(&self) -> SystemTime {
        if !self.virtual_time {
            return SystemTime::now();
        }
        match self.call(Call::Now) {
            Ok(Answer::Time(t)) => t.into(),
            // The server is gone: no clock to read. Any later call fails
            // with the lost connection; the local clock is the best guess.
            _ => SystemTime::now(),
        }
    }
}

impl Shared {
    /// Reads frames as the reader until `mine` is answered, then frees the
    /// reader for the next waiter.
    fn lead(&self, mut stream: Reader, mine: &Slot) -> Result<Answer, Error> {
        loop {
            if let Some(r) = mine.take() {
                self.release(stream);
                return r;
            }
            if let Err(e) = self.read_one(&mut stream, Some(mine)) {
                self.lost(e);
                return mine
                    .take()
                    .unwrap_or_else(|| Err(broken(errno::ECONNRESET, "lost")));
            }
        }
    }

    /// Puts the reader back and offers it to a waiting call, or to the
    /// event thread when none waits.
    fn release(&self, stream: Reader) {
        let mut p = lock(&self.pending);
        p.reader = Some(stream);
        if p.dead.is_some() {
            return;
        }
        let offered = p.calls.values().any(|s| s.offer());
        if !offered {
            p.idle_since = Instant::now();
            // A thread in its timed wait sees the new time when it wakes.
            if std::mem::take(&mut p.event_thread_parked) {
                drop(p);
                self.idle.notify_all();
            }
        }
    }

    /// Reads and handles one frame.
    /// `mine`: the reading caller's own slot, filled without a wake-up.
    fn read_one(&self, stream: &mut Reader, mine: Option<&Slot>) -> Result<(), Error> {
        let frame = match protocol::read_frame(stream) {
            Ok(Incoming::Frame(body)) => protocol::decode::<ServerFrame>(&body)?,
            Ok(Incoming::Closed) => {
                return Err(broken(
                    errno::ECONNRESET,
                    "the server closed the connection",
                ))
            }
            Err(e) => return Err(protocol::lost(&e)),
        };
        match frame {
            ServerFrame::Reply { id, result } => {
                let slot = lock(&self.pending).calls.remove(&id);
                match slot {
                    Some(slot) if mine.is_some_and(|m| std::ptr::eq(m, &*slot)) => {
                        lock(&slot.state).result = Some(result);
                    }
                    Some(slot) => slot.fill(result),
                    None => {}
                }
            }
            ServerFrame::Event(e) => {
                HANDLING.with(|h| h.set(true));
                self.event(e);
                HANDLING.with(|h| h.set(false));
            }
        }
        Ok(())
    }

    /// Handles one event. User callbacks never run on the reading thread
    /// and are never dropped under a lock.
    fn event(&self, e: Event) {
        match e {
            Event::Signal(info) => raise(&info),
            Event::Fired(token) => {
                let cb = lock(&self.callbacks).remove(&token);
                if let Some(cb) = cb {
                    let _ = std::thread::Builder::new()
                        .name("mqtwin-remote-notify".into())
                        .spawn(cb);
                }
            }
            Event::Dropped(token) => {
                let cb = lock(&self.callbacks).remove(&token);
                drop(cb);
            }
        }
    }

    /// The connection is gone: fail every waiting call and every later one.
    fn lost(&self, e: Error) {
        let calls = {
            let mut p = lock(&self.pending);
            p.dead.get_or_insert(e.clone());
            std::mem::take(&mut p.calls)
        };
        self.idle.notify_all();
        for slot in calls.values() {
            slot.fill(Err(e.clone()));
        }
        // Registrations die with the process's connection: drop their
        // callbacks unrun.
        let cbs = std::mem::take(&mut *lock(&self.callbacks));
        drop(cbs);
    }
}

/// Reads the socket when no call has needed it for [`GRACE`]: events
/// (notifications) arrive while the program makes no calls.
fn event_thread(shared: &Shared) {
    // Notification signals are process-directed: this thread must not be
    // the one that takes them (their default action may end the process).
    {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
        let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
    }
    loop {
        let mut stream = {
            let mut p = lock(&shared.pending);
            loop {
                if p.dead.is_some() {
                    return;
                }
                if p.reader.is_some() && p.calls.is_empty() {
                    let idle = p.idle_since.elapsed();
                    if idle >= GRACE {
                        break p.reader.take().expect("checked");
                    }
                    p = shared
                        .idle
                        .wait_timeout(p, GRACE - idle)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                } else {
                    p.event_thread_parked = true;
                    p = shared.idle.wait(p).unwrap_or_else(|e| e.into_inner());
                }
            }
        };
        match shared.read_one(&mut stream, None) {
            Ok(()) => shared.release(stream),
            Err(e) => return shared.lost(e),
        }
    }
}

/// Delivers a notification signal in this process, as the kernel would.
fn raise(info: &SignalInfo) {
    #[cfg(all(target_os = "linux", feature = "posix"))]
    {
        let _ = crate::posix::raise::raise_mesgq(info);
    }
    #[cfg(not(all(target_os = "linux", feature = "posix")))]
    {
        // Best effort: `kill` to ourselves (si_code SI_USER, no value).
        if let Ok(sig) = nix::sys::signal::Signal::try_from(info.signal) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), sig);
        }
    }
}

/// Marks the calling thread as waiting for request `id` until dropped.
struct Calling<'a> {
    map: &'a Mutex<HashMap<std::thread::ThreadId, u64>>,
    previous: Option<u64>,
}

impl<'a> Calling<'a> {
    fn new(map: &'a Mutex<HashMap<std::thread::ThreadId, u64>>, id: u64) -> Self {
        // A thread makes one call at a time, except a call made from a
        // notification callback's drop while its own call reads the
        // connection: the inner call is the one waiting, then the outer.
        let previous = lock(map).insert(std::thread::current().id(), id);
        Calling { map, previous }
    }
}

impl Drop for Calling<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut map = lock(self.map);
        match self.previous {
            Some(id) => map.insert(me, id),
            None => map.remove(&me),
        };
    }
}
