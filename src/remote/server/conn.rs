//! One client connection: one simulated process of the hosted twin, its
//! open handles, its calls in flight, and how it ends.

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant, SystemTime};

use crate::error::{errno, Error};
use crate::notify::Notify;
use crate::queue::{MessageQueue, Namespace};
use crate::twin::{self, Twin};

use super::super::protocol::{
    self, broken, Answer, Call, Control, Event, Incoming, NotifyHow, Request, ServerFrame, Time,
};
use super::super::wire;
use super::pool::Pool;
use super::StopRequest;

/// How long a closing connection keeps interrupting its blocked calls
/// before it leaves them be (they then end on their own deadlines).
const CANCEL_LIMIT: Duration = Duration::from_secs(10);

/// A connection's read half, buffered (a frame usually takes one `read`);
/// it moves, buffer and all, to the thread that reads next.
pub(crate) type Reader = std::io::BufReader<UnixStream>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A client process as the server sees it.
pub(crate) struct Conn {
    /// The twin, as this process.
    pub(crate) twin: Twin,
    /// The root twin (for control calls; same namespace).
    root: Twin,
    stream: UnixStream,
    writer: Mutex<()>,
    handles: Mutex<HashMap<u64, Arc<twin::Queue>>>,
    next_handle: AtomicU64,
    /// Calls running on a worker: request id → the worker thread. Read and
    /// changed only under this lock, and a worker leaves it before taking
    /// another job, so an interrupt never reaches another call.
    inflight: Mutex<HashMap<u64, ThreadId>>,
    max_inflight: usize,
    closed: AtomicBool,
    finished: AtomicBool,
    pool: Arc<Pool>,
    stop: Arc<StopRequest>,
    /// The connection's read half while the thread that read the current
    /// request runs a call that may hand reading on.
    reader: Mutex<Option<Reader>>,
    /// The server's count of live connections (decremented at the end).
    live: Arc<std::sync::atomic::AtomicUsize>,
    /// This connection, for the notification callbacks it hands the twin.
    me: Weak<Conn>,
    /// The server's twin pid → real pid map (this connection's entry goes
    /// when it finishes).
    pids: Arc<Pids>,
}

/// Twin pid → real pid of the connected processes whose real pid the
/// socket told (`SO_PEERCRED`), so notification signals carry the sender's
/// real pid.
pub(crate) type Pids = Mutex<HashMap<u32, u32>>;

impl Conn {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        root: &Twin,
        credentials: twin::Credentials,
        real_pid: Option<u32>,
        pids: Arc<Pids>,
        stream: UnixStream,
        pool: Arc<Pool>,
        max_inflight: usize,
        stop: Arc<StopRequest>,
        live: Arc<std::sync::atomic::AtomicUsize>,
    ) -> Arc<Conn> {
        Arc::new_cyclic(|weak: &Weak<Conn>| {
            let me = weak.clone();
            let sink_pids = Arc::clone(&pids);
            let twin = root.process_with_sink(
                credentials,
                crate::twin::SignalSink(Box::new(move |mut info| {
                    // `si_pid` is the sending process's real pid, as the
                    // kernel gives it, when the server knows it.
                    if let Some(real) = lock(&sink_pids).get(&info.pid) {
                        info.pid = *real;
                    }
                    if let Some(c) = me.upgrade() {
                        c.event(Event::Signal(info));
                    }
                })),
            );
            if let Some(real) = real_pid {
                lock(&pids).insert(twin.pid(), real);
            }
            Conn {
                pids,
                twin,
                root: root.clone(),
                stream,
                writer: Mutex::new(()),
                handles: Mutex::new(HashMap::new()),
                next_handle: AtomicU64::new(1),
                inflight: Mutex::new(HashMap::new()),
                max_inflight,
                closed: AtomicBool::new(false),
                finished: AtomicBool::new(false),
                pool,
                stop,
                reader: Mutex::new(None),
                live,
                me: weak.clone(),
            }
        })
    }

    /// Writes a frame; a write that fails (peer gone, or not reading for
    /// the write timeout) ends the connection.
    fn write(&self, frame: &ServerFrame) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let bytes = match protocol::encode(frame) {
            Ok(b) => b,
            // Too big to send (cannot happen for a message the twin accepted):
            // say so instead.
            Err(e) => match frame {
                ServerFrame::Reply { id, .. } => match protocol::encode(&ServerFrame::Reply {
                    id: *id,
                    result: Err(e),
                }) {
                    Ok(b) => b,
                    Err(_) => return,
                },
                ServerFrame::Event(_) => return,
            },
        };
        let _w = lock(&self.writer);
        if wire::send_all(&self.stream, &bytes).is_err() {
            self.shut();
        }
    }

    fn event(&self, e: Event) {
        self.write(&ServerFrame::Event(e));
    }

    fn reply(&self, id: u64, result: Result<Answer, Error>) {
        self.write(&ServerFrame::Reply { id, result });
    }

    /// Stops all traffic; the reader then ends the connection.
    pub(crate) fn shut(&self) {
        self.closed.store(true, Ordering::Release);
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    fn handle(&self, h: u64) -> Result<Arc<twin::Queue>, Error> {
        lock(&self.handles).get(&h).cloned().ok_or(Error::Os {
            errno: errno::EBADF,
        })
    }

    fn add(&self, q: twin::Queue) -> Answer {
        let max_msg_len = q.attributes().map_or(0, |a| a.max_msg_len as u64);
        let h = self.next_handle.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(h, Arc::new(q));
        Answer::Opened {
            handle: h,
            max_msg_len,
        }
    }

    /// Reads and serves this connection's requests on this thread until the
    /// connection ends, or until a call here must wait: then another
    /// thread goes on reading (see [`hand_off`](Conn::hand_off)) and this
    /// one answers its call and leaves.
    pub(crate) fn read_loop(self: Arc<Self>, mut stream: Reader) {
        while let Ok(Incoming::Frame(body)) = protocol::read_frame(&mut stream) {
            // Undecodable: the connection ends (the frame named no id).
            let Ok(req) = protocol::decode::<Request>(&body) else {
                break;
            };
            match self.serve_one(req, stream) {
                Some(s) => stream = s,
                None => return,
            }
        }
        self.finish();
    }

    /// Serves one request. Returns the reader if this thread is still the
    /// connection's reader (`None`: it handed reading on while it waited).
    fn serve_one(self: &Arc<Self>, req: Request, stream: Reader) -> Option<Reader> {
        let Request { id, call } = req;
        if matches!(call, Call::Control(Control::WaitBlocked { .. })) {
            // Waits outside any queue: always on a worker.
            self.on_worker(id, call);
            return Some(stream);
        }
        if !self.may_block(&call) {
            // A stop is asked for once its answer is out: the server's
            // owner may end this connection at once.
            let stop = matches!(call, Call::Control(Control::Stop));
            let r = self.run(call);
            self.reply(id, r);
            if stop {
                self.stop.request();
            }
            return Some(stream);
        }
        if let Err(e) = self.enter(id) {
            self.reply(id, Err(e));
            return Some(stream);
        }
        *lock(&self.reader) = Some(stream);
        let handed = Arc::new(AtomicBool::new(false));
        let hook = {
            let (me, handed) = (Arc::clone(self), Arc::clone(&handed));
            Box::new(move || me.hand_off(&handed))
        };
        let (r, _) = crate::twin::hook::with_block_hook(hook, || self.run(call));
        lock(&self.inflight).remove(&id);
        let stream = if handed.load(Ordering::Acquire) {
            None
        } else {
            lock(&self.reader).take()
        };
        self.reply(id, r);
        stream
    }

    /// The twin is about to block this thread's call (its queue's lock is
    /// held): a worker takes over reading the connection. Fails, before the
    /// call waits, when no worker can be had.
    fn hand_off(self: &Arc<Self>, handed: &AtomicBool) -> Result<(), Error> {
        let me = Arc::clone(self);
        let job = Box::new(move || {
            let stream = lock(&me.reader).take();
            if let Some(stream) = stream {
                me.read_loop(stream);
            }
        });
        match self.pool.submit(job) {
            Ok(()) => {
                handed.store(true, Ordering::Release);
                Ok(())
            }
            Err(_) => Err(broken(
                errno::EAGAIN,
                "the server has no worker thread left for a blocking call",
            )),
        }
    }

    /// Counts a call that may wait, for the per-connection limit and for
    /// [`finish`](Conn::finish), which interrupts it.
    fn enter(&self, id: u64) -> Result<(), Error> {
        let mut inflight = lock(&self.inflight);
        if inflight.contains_key(&id) {
            return Err(broken(
                errno::EPROTO,
                format!("request id {id} is already in flight"),
            ));
        }
        if inflight.len() >= self.max_inflight {
            let limit = self.max_inflight;
            return Err(broken(
                errno::EAGAIN,
                format!("more than {limit} blocking calls in flight on one connection"),
            ));
        }
        inflight.insert(id, std::thread::current().id());
        Ok(())
    }

    /// Runs `call` on a worker.
    fn on_worker(self: &Arc<Self>, id: u64, call: Call) {
        if let Err(e) = self.enter(id) {
            return self.reply(id, Err(e));
        }
        let me = Arc::clone(self);
        let job = Box::new(move || me.run_blocking(id, call));
        if self.pool.submit(job).is_err() {
            lock(&self.inflight).remove(&id);
            self.reply(
                id,
                Err(broken(
                    errno::EAGAIN,
                    "the server has no worker thread left for a blocking call",
                )),
            );
        }
    }

    fn run_blocking(&self, id: u64, call: Call) {
        {
            let mut inflight = lock(&self.inflight);
            if self.closed.load(Ordering::Acquire) {
                inflight.remove(&id);
                return;
            }
            inflight.insert(id, std::thread::current().id());
        }
        let r = self.run(call);
        lock(&self.inflight).remove(&id);
        self.reply(id, r);
    }

    /// Whether `call` may wait: a send, receive or `wait_ready` on a
    /// blocking handle whose deadline has not passed.
    fn may_block(&self, call: &Call) -> bool {
        let (handle, deadline) = match call {
            Call::Send {
                handle, deadline, ..
            }
            | Call::Receive {
                handle, deadline, ..
            } => (*handle, *deadline),
            Call::WaitReady {
                handle, deadline, ..
            } => {
                return deadline.is_none_or(|d| SystemTime::from(d) > self.twin.now())
                    && lock(&self.handles).contains_key(handle)
            }
            Call::Control(Control::WaitBlocked { .. }) => return true,
            _ => return false,
        };
        let Ok(q) = self.handle(handle) else {
            return false;
        };
        if q.attributes().is_ok_and(|a| a.nonblocking) {
            return false;
        }
        deadline.is_none_or(|d| SystemTime::from(d) > self.twin.now())
    }

    fn run(&self, call: Call) -> Result<Answer, Error> {
        let deadline = |d: Option<Time>| d.map(SystemTime::from);
        match call {
            Call::Open { name, options } => Ok(self.add(self.twin.open(&name, &options)?)),
            Call::Unlink { name } => self.twin.unlink(&name).map(|()| Answer::Done),
            Call::Now => Ok(Answer::Time(self.twin.now().into())),
            Call::Send {
                handle,
                msg,
                priority,
                deadline: d,
            } => self
                .handle(handle)?
                .send_deadline(&msg, priority, deadline(d))
                .map(|()| Answer::Done),
            Call::Receive {
                handle,
                buf_len,
                deadline: d,
            } => {
                let q = self.handle(handle)?;
                let size = q.attributes()?.max_msg_len;
                // The twin needs a buffer of at least the message size; a
                // shorter one is refused before anything else, with the
                // caller's length. Never allocate more than the size.
                let len = usize::try_from(buf_len).unwrap_or(usize::MAX).min(size);
                let mut buf = vec![0u8; len];
                let r = q.receive_deadline(&mut buf, deadline(d));
                let r = match r {
                    Err(Error::BufferTooSmall { msg_size, .. }) => {
                        return Err(Error::BufferTooSmall {
                            len: usize::try_from(buf_len).unwrap_or(usize::MAX),
                            msg_size,
                        })
                    }
                    r => r?,
                };
                buf.truncate(r.len);
                Ok(Answer::Message {
                    data: buf,
                    priority: r.priority,
                })
            }
            Call::Attributes { handle } => {
                Ok(Answer::Attributes(self.handle(handle)?.attributes()?))
            }
            Call::SetNonblocking {
                handle,
                nonblocking,
            } => Ok(Answer::Flag(
                self.handle(handle)?.set_nonblocking(nonblocking)?,
            )),
            Call::Dup { handle } => {
                let q = self.handle(handle)?.try_clone()?;
                Ok(self.add(q))
            }
            Call::Close { handle } => {
                let q = lock(&self.handles).remove(&handle);
                // Dropped here, outside the lock: a close flushes this
                // process's notification registration (its callback's drop
                // sends an event).
                drop(q);
                Ok(Answer::Done)
            }
            Call::Notify { handle, how } => {
                let q = self.handle(handle)?;
                let how = match how {
                    NotifyHow::None => Notify::None,
                    NotifyHow::Signal { signal, value } => Notify::Signal { signal, value },
                    NotifyHow::Thread { token } => {
                        let cb = Callback {
                            conn: self.weak(),
                            token,
                            fired: false,
                        };
                        Notify::thread(move || cb.fire())
                    }
                };
                q.notify(how).map(|()| Answer::Done)
            }
            Call::CancelNotify { handle } => {
                self.handle(handle)?.cancel_notify().map(|()| Answer::Done)
            }
            Call::Readiness { handle } => Ok(Answer::Readiness(self.handle(handle)?.readiness()?)),
            Call::WaitReady {
                handle,
                interest,
                deadline: d,
            } => Ok(Answer::Readiness(
                self.handle(handle)?.wait_ready(interest, deadline(d))?,
            )),
            Call::Status { handle } => {
                let q = self.handle(handle)?;
                Ok(Answer::Status(protocol::QueueStatus {
                    queued_bytes: q.queued_bytes() as u64,
                    notify_owner: q.notify_owner(),
                }))
            }
            Call::Interrupt { request, restart } => {
                // Under the lock: the call cannot finish and its thread take
                // another call in between (see `inflight`).
                let inflight = lock(&self.inflight);
                let hit = match inflight.get(&request) {
                    Some(thread) => self.twin.interrupt(*thread, restart),
                    None => false,
                };
                Ok(Answer::Flag(hit))
            }
            Call::Control(c) => super::control::run(
                &self.root,
                c,
                &super::control::Caller {
                    closed: &|| self.closed.load(Ordering::Acquire),
                },
            ),
        }
    }

    fn weak(&self) -> Weak<Conn> {
        self.me.clone()
    }

    /// The connection ended (the client exited or died, or broke the
    /// protocol): as the kernel does at process exit, its blocked calls
    /// end without sending or receiving anything, then its descriptors
    /// close, which removes its notification registrations.
    pub(crate) fn finish(&self) {
        if self.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        self.shut();
        let start = Instant::now();
        loop {
            {
                let inflight = lock(&self.inflight);
                if inflight.is_empty() {
                    break;
                }
                for tid in inflight.values() {
                    let _ = self.twin.interrupt(*tid, false);
                }
            }
            if start.elapsed() > CANCEL_LIMIT {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let handles = std::mem::take(&mut *lock(&self.handles));
        drop(handles);
        lock(&self.pids).remove(&self.twin.pid());
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The server's side of a [`Notify::Thread`] registration: tells the
/// client to run its callback, or, dropped unfired, to drop it.
struct Callback {
    conn: Weak<Conn>,
    token: u64,
    fired: bool,
}

impl Callback {
    fn fire(mut self) {
        self.fired = true;
        if let Some(c) = self.conn.upgrade() {
            c.event(Event::Fired(self.token));
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        if !self.fired {
            if let Some(c) = self.conn.upgrade() {
                c.event(Event::Dropped(self.token));
            }
        }
    }
}
