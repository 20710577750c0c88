//! `SIGEV_THREAD` notifications for the kernel backend, without glibc's
//! helper.
//!
//! At the system-call level a thread notification is a netlink message: the
//! caller passes a netlink socket (as `sigev_signo`) and a 32-byte cookie (at
//! `sival_ptr`); the kernel sends the cookie back on that socket exactly once
//! per registration, with its last byte set to `NOTIFY_WOKENUP` when the
//! notification fires or to `NOTIFY_REMOVED` when the registration is
//! removed (`mq_notify(NULL)`, or a close by the owner process).
//! `ipc/mqueue.c`: `do_mq_notify`, `__do_notify`, `remove_notification`.
//!
//! glibc turns that into a callback, but it reports only `WOKENUP` and sets
//! its socket up once per process (with no descriptor left, `mq_notify`
//! returns `ENOSYS` for the rest of the process's life). Reading the socket
//! ourselves gives exact lifetimes instead:
//!
//! - every registration's closure sits in a table under the key carried by
//!   its cookie; the message for that key removes it: `WOKENUP` queues it to
//!   be run, `REMOVED` to be dropped;
//! - so a notification that fired runs even if the handle is closed right
//!   after the send (the kernel sent `WOKENUP` before the close), and one
//!   that was cancelled or closed is freed as soon as the kernel says so;
//! - [`cancel`](super::notify::cancel) drops the closures of the queue's
//!   registrations it removed itself, on the calling thread, and waits
//!   (briefly) for any other removed one of that queue, so a cancel releases
//!   what the closure owns before it returns;
//! - no closure is run or dropped while the table's lock is held, so a
//!   closure may own queue handles, and its drop may close them;
//! - a failure to create a socket or a thread fails that one registration,
//!   with a clear error, and the next one tries again.
//!
//! # Threads and descriptors
//!
//! Everything is bounded, whatever the rate of registrations:
//!
//! - **Sockets and readers.** Each socket has one reader thread and serves
//!   at most [`PER_SOCKET`] pending registrations: the kernel charges each
//!   cookie to the socket's receive buffer from `mq_notify` until the
//!   reader has read it back, and *blocks* `mq_notify` when the buffer is
//!   full. The first socket (with its reader) stays for the life of the
//!   process, as glibc's does. A registration that finds every socket full
//!   first waits up to [`ROOM_WAIT`] for a reader to catch up (a burst of
//!   fired notifications drains in microseconds), and only then adds a
//!   socket; an added socket's reader closes it and exits once it has had
//!   nothing pending for [`SOCKET_LINGER`]. So there are at most one socket
//!   plus one per 64 registrations outstanding at once (and an idle added
//!   one for a second), each with one reader.
//! - **Callbacks.** A reader never runs user code: it only moves the closure
//!   to a job queue served by a pool of at most [`MAX_WORKERS`] threads
//!   (named `mqtwin-notify`). The first worker is started by the first
//!   registration and stays; another is added when a job finds no idle one,
//!   and exits after [`WORKER_LINGER`] without a job. Callbacks start in the
//!   order they fired, up to `MAX_WORKERS` running at a time: a callback
//!   that blocks holds one worker, and once all of them are held the next
//!   callbacks wait in the queue (never lost) until one is free. Closures removed by a close are dropped by a worker too (those
//!   removed by a cancel, by the cancelling thread).
//!
//! Readers and workers block every signal, as glibc's helper threads do, so
//! a process-directed signal is never delivered to them (a worker blocks
//! them again before each callback). Callbacks share the workers, so one
//! may see thread-locals an earlier one left. A panic in a callback (or in
//! a closure's `Drop`) is reported by the panic hook and ends that callback
//! only.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

use crate::error::Error;

/// A notification callback.
pub(super) type Callback = Box<dyn FnOnce() + Send + 'static>;

/// `NOTIFY_COOKIE_LEN`.
const COOKIE_LEN: usize = 32;
/// The kernel's verdicts, in the cookie's last byte.
const NOTIFY_WOKENUP: u8 = 1;
const NOTIFY_REMOVED: u8 = 2;
/// Pending registrations per socket (each costs the socket ~1 KiB of its
/// default 208 KiB receive buffer).
const PER_SOCKET: usize = 64;
/// How long a registration that finds every socket full waits for a reader
/// to make room before it adds a socket.
const ROOM_WAIT: Duration = Duration::from_millis(20);
/// An added socket is closed (and its reader exits) after this long with no
/// registration pending on it.
const SOCKET_LINGER: Duration = Duration::from_secs(1);
/// Threads that run callbacks, at most.
const MAX_WORKERS: usize = 8;
/// A worker beyond the first exits after this long without a job.
const WORKER_LINGER: Duration = Duration::from_secs(2);
/// How long a cancel waits for a removed callback to be dropped. Only a
/// callback whose `Drop` blocks (on another thread) can make it wait this
/// long.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// A queue, as the kernel identifies it: the mqueue inode.
pub(super) type QueueId = (u64, u64);

struct Entry {
    callback: Callback,
    queue: QueueId,
    /// The [`Socket::id`] its cookie was given to.
    socket: u64,
    /// The `mq_notify` call succeeded: the kernel holds the cookie and will
    /// send it back exactly once.
    armed: bool,
}

struct Socket {
    id: u64,
    fd: OwnedFd,
    /// Registrations whose cookie the kernel holds or has sent back but the
    /// reader has not read yet (or that are being registered).
    pending: usize,
    /// The first socket: kept for the life of the process.
    primary: bool,
}

/// A closure for a worker: to run (`WOKENUP`) or to drop (`REMOVED`).
struct Job {
    callback: Callback,
    queue: QueueId,
    run: bool,
}

#[derive(Default)]
struct Pool {
    jobs: VecDeque<Job>,
    /// Workers alive (or being started).
    workers: usize,
    /// Workers waiting for a job.
    idle: usize,
    /// Workers spawned that have not looked at the jobs yet: each takes a
    /// job before it waits, so a job that finds one starting needs no new
    /// worker.
    starting: usize,
}

struct Table {
    /// The process the table belongs to: a forked child starts afresh (its
    /// copy of the parent's sockets would read the parent's notifications).
    pid: u32,
    entries: HashMap<u64, Entry>,
    sockets: Vec<Socket>,
    next_socket: u64,
    pool: Pool,
    /// Removed closures of each queue taken out of `entries` but not dropped
    /// yet.
    in_flight: HashMap<QueueId, usize>,
    /// Cancels under way per queue: a removed closure of such a queue is
    /// handed to them (`handed`) to drop, instead of to a worker.
    cancelling: HashMap<QueueId, usize>,
    handed: HashMap<QueueId, Vec<Callback>>,
    /// Threads waiting on [`CHANGED`] (so a reader signals only if needed).
    waiters: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
type Guard = MutexGuard<'static, Option<Table>>;
/// Entries, pending counts or in-flight counts changed.
static CHANGED: Condvar = Condvar::new();
/// A job was queued.
static WORK: Condvar = Condvar::new();
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Set while this thread drops a removed closure: a cancel from that
    /// closure's `Drop` must not wait for the drop it is part of.
    static DROPPING: Cell<bool> = const { Cell::new(false) };
}

fn lock() -> Guard {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

thread_local! {
    /// The table's guard, held by the forking thread from the `fork`
    /// prepare handler until the parent or child handler.
    static FORK_GUARD: std::cell::RefCell<Option<Guard>> = const { std::cell::RefCell::new(None) };
}

/// `fork` safety: another thread may hold the table's lock at the moment
/// of a `fork`, and that thread does not exist in the child, so the child's
/// first registration would wait for it forever. As glibc does for its own
/// `SIGEV_THREAD` helper (`pthread_atfork` in `mq_notify.c`), the forking
/// thread takes the lock before the fork (every holder releases it
/// promptly: it is never held across user code or a blocking call), the
/// parent releases it after, and the child, which holds it, resets the
/// table to its own empty one and releases it.
fn install_fork_handlers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn prepare() {
        let guard = lock();
        // If this thread's locals are gone (it is exiting), unlock at once:
        // the fork is then as unprotected as without the handler.
        let _ = FORK_GUARD.try_with(|g| *g.borrow_mut() = Some(guard));
    }
    extern "C" fn parent() {
        let _ = FORK_GUARD.try_with(|g| drop(g.borrow_mut().take()));
    }
    extern "C" fn child() {
        let _ = FORK_GUARD.try_with(|g| {
            if let Some(mut guard) = g.borrow_mut().take() {
                table(&mut guard); // the pid changed: forget the parent's
            }
        });
    }
    ONCE.call_once(|| {
        // SAFETY: the three handlers are `extern "C" fn()`s that never
        // unwind (they only lock, move a guard and reset the table, none
        // of which panics: the lock ignores poisoning) and that run on the
        // forking thread, as `pthread_atfork` requires. A failure (ENOMEM)
        // leaves forks unprotected, as before; nothing else depends on it.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
        }
    });
}

/// This process's table, created (or reset after a fork) on demand.
fn table(guard: &mut Option<Table>) -> &mut Table {
    let pid = std::process::id();
    if guard.as_ref().is_some_and(|t| t.pid != pid) {
        // Inherited from the parent: its closures and sockets are the
        // parent's, and its threads do not exist here. Forget them without
        // running any destructor.
        if let Some(old) = guard.take() {
            std::mem::forget(old.entries);
            std::mem::forget(old.pool.jobs);
            std::mem::forget(old.handed);
            drop(old.sockets); // closes this process's copies of the fds
        }
    }
    guard.get_or_insert_with(|| {
        install_fork_handlers();
        new_table(pid)
    })
}

fn new_table(pid: u32) -> Table {
    Table {
        pid,
        entries: HashMap::new(),
        sockets: Vec::new(),
        next_socket: 0,
        pool: Pool::default(),
        in_flight: HashMap::new(),
        cancelling: HashMap::new(),
        handed: HashMap::new(),
        waiters: 0,
    }
}

/// Waits on `cv` until `end` (or a notification), counted in `waiters`.
fn wait_until(cv: &Condvar, mut guard: Guard, end: Instant) -> Guard {
    table(&mut guard).waiters += 1;
    let left = end.saturating_duration_since(Instant::now());
    let mut guard = cv
        .wait_timeout(guard, left)
        .map(|(g, _)| g)
        .unwrap_or_else(|p| p.into_inner().0);
    let t = table(&mut guard);
    t.waiters = t.waiters.saturating_sub(1);
    guard
}

/// `d` from now (saturating: an unrepresentable instant means now).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d).unwrap_or(now)
}

/// Wakes the threads waiting on [`CHANGED`], if any.
fn changed(t: &Table) {
    if t.waiters > 0 {
        CHANGED.notify_all();
    }
}

/// The queue behind `fd` (`fstat`: device and inode).
pub(super) fn queue_id(fd: RawFd) -> Result<QueueId, Error> {
    // SAFETY: `fd` is borrowed from a live `Queue` for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let st = nix::sys::stat::fstat(fd).map_err(|e| Error::Os { errno: e as i32 })?;
    Ok((st.st_dev, st.st_ino))
}

fn spawn_error(e: &std::io::Error) -> Error {
    Error::Os {
        errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
    }
}

fn spawn_worker() -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("mqtwin-notify".into())
        .spawn(work_loop)
        .map(drop)
}

/// A socket with room for one more registration: the first with room,
/// else (after waiting up to [`ROOM_WAIT`] for a reader to catch up) a new
/// one with its reader thread. Returns its id and descriptor, with the
/// guard (released while waiting).
fn socket_with_room(mut guard: Guard) -> (Guard, Result<(u64, RawFd), Error>) {
    let end = after(ROOM_WAIT);
    loop {
        let t = table(&mut guard);
        if let Some(s) = t.sockets.iter().find(|s| s.pending < PER_SOCKET) {
            let found = (s.id, s.fd.as_raw_fd());
            return (guard, Ok(found));
        }
        if t.sockets.is_empty() || Instant::now() >= end {
            let r = add_socket(t);
            return (guard, r);
        }
        guard = wait_until(&CHANGED, guard, end);
    }
}

/// A new socket and its reader thread.
fn add_socket(t: &mut Table) -> Result<(u64, RawFd), Error> {
    // SAFETY: plain system call; the result is checked.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if raw < 0 {
        return Err(match Errno::last() {
            // No descriptor left for the notification socket.
            Errno::EMFILE => Error::ResourceLimit,
            Errno::ENOMEM | Errno::ENOBUFS => Error::OutOfMemory,
            e => Error::Os { errno: e as i32 },
        });
    }
    // SAFETY: `raw` is a new socket that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let primary = t.sockets.is_empty();
    if !primary {
        // An added socket's reader wakes up now and then to see whether it
        // can retire.
        let tv = libc::timeval {
            tv_sec: SOCKET_LINGER.as_secs() as libc::time_t,
            tv_usec: SOCKET_LINGER.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` is a valid timeval for the duration of the call.
        let r = unsafe {
            libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(Error::Os {
                errno: Errno::last() as i32,
            });
        }
    }
    let id = t.next_socket;
    std::thread::Builder::new()
        .name("mqtwin-notify-reader".into())
        .spawn(move || read_loop(id, raw))
        .map_err(|e| spawn_error(&e))?;
    t.next_socket += 1;
    t.sockets.push(Socket {
        id,
        fd,
        pending: 0,
        primary,
    });
    Ok((id, raw))
}

/// Registers `callback` for a `SIGEV_THREAD` notification on `fd`.
///
/// # Errors
///
/// The kernel's ([`Error::Busy`], …), and [`Error::ResourceLimit`] when no
/// descriptor is left for the notification socket.
pub(super) fn register(fd: RawFd, callback: Callback) -> Result<(), Error> {
    let queue = queue_id(fd)?;
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let mut guard = lock();
    let t = table(&mut guard);
    if t.pool.workers == 0 {
        // The first worker stays: a fired callback always has one.
        if let Err(e) = spawn_worker() {
            drop(guard);
            drop(callback);
            return Err(spawn_error(&e));
        }
        t.pool.workers = 1;
        t.pool.starting += 1;
    }
    let (mut guard, found) = socket_with_room(guard);
    let (socket, sock_fd) = match found {
        Ok(s) => s,
        Err(e) => {
            drop(guard);
            drop(callback);
            return Err(e);
        }
    };
    let t = table(&mut guard);
    if let Some(s) = t.sockets.iter_mut().find(|s| s.id == socket) {
        s.pending += 1;
    }
    t.entries.insert(
        key,
        Entry {
            callback,
            queue,
            socket,
            armed: false,
        },
    );
    drop(guard);

    let mut cookie = [0u8; COOKIE_LEN];
    cookie[..8].copy_from_slice(&key.to_ne_bytes());
    // SAFETY: sigevent is plain data; all-zero is a valid value.
    let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
    ev.sigev_notify = libc::SIGEV_THREAD;
    ev.sigev_signo = sock_fd;
    ev.sigev_value = libc::sigval {
        sival_ptr: cookie.as_mut_ptr().cast(),
    };
    // SAFETY: the raw system call reads `ev` and the 32-byte cookie it points
    // at during the call only; both outlive it. `sock_fd` stays open: a
    // socket is closed only by its reader, when nothing is pending on it, and
    // this registration counts as pending from before the call.
    let r = unsafe { libc::syscall(libc::SYS_mq_notify, fd, &ev as *const libc::sigevent) };
    let errno = (r != 0).then(Errno::last);

    let mut guard = lock();
    let t = table(&mut guard);
    match errno {
        None => {
            // The reader may already have taken it (fired at once).
            if let Some(e) = t.entries.get_mut(&key) {
                e.armed = true;
            }
            Ok(())
        }
        Some(e) => {
            // The kernel did not keep the cookie: no message will come.
            let entry = t.entries.remove(&key);
            if let Some(s) = t.sockets.iter_mut().find(|s| s.id == socket) {
                s.pending = s.pending.saturating_sub(1);
            }
            changed(t);
            drop(guard);
            drop(entry);
            Err(super::notify::error(e))
        }
    }
}

/// Drops `callbacks` (removed closures of one queue) on this thread,
/// marked as [`DROPPING`]; a panicking `Drop` is contained.
fn drop_removed(callbacks: impl IntoIterator<Item = Callback>) {
    let was = DROPPING.with(|d| d.replace(true));
    for callback in callbacks {
        let _ = catch_unwind(AssertUnwindSafe(move || drop(callback)));
    }
    DROPPING.with(|d| d.set(was));
}

/// `n` removed closures of `queue` are dropped.
fn dropped(t: &mut Table, queue: QueueId, n: usize) {
    if let Some(left) = t.in_flight.get_mut(&queue) {
        *left = left.saturating_sub(n);
        if *left == 0 {
            t.in_flight.remove(&queue);
        }
    }
    changed(t);
}

/// The removed closures of `queue` a cancel drops itself: those a reader
/// handed to it, and any a close left in the pool's queue (so a cancel never
/// waits for a worker).
fn take_removed(t: &mut Table, queue: QueueId) -> Vec<Callback> {
    let mut mine = t.handed.remove(&queue).unwrap_or_default();
    if t.pool.jobs.iter().any(|j| !j.run && j.queue == queue) {
        let jobs = std::mem::take(&mut t.pool.jobs);
        for job in jobs {
            if !job.run && job.queue == queue {
                mine.push(job.callback);
            } else {
                t.pool.jobs.push_back(job);
            }
        }
    }
    mine
}

/// Runs `remove` (an `mq_notify(fd, NULL)`), then waits until every callback
/// this process had armed on `fd`'s queue before it has been queued to run
/// or dropped. The closures the removal sent back are dropped on this
/// thread.
pub(super) fn cancel_and_wait(
    fd: RawFd,
    remove: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    let any = {
        let mut guard = lock();
        !table(&mut guard).entries.is_empty()
    };
    if !any || DROPPING.with(Cell::get) {
        return remove();
    }
    let queue = queue_id(fd)?;
    let waiting_for: Vec<u64> = {
        let mut guard = lock();
        let t = table(&mut guard);
        let keys: Vec<u64> = t
            .entries
            .iter()
            .filter(|(_, e)| e.armed && e.queue == queue)
            .map(|(&k, _)| k)
            .collect();
        if !keys.is_empty() {
            // From here on a reader hands this queue's removed closures to
            // us.
            *t.cancelling.entry(queue).or_insert(0) += 1;
        }
        keys
    };
    if waiting_for.is_empty() {
        return remove();
    }
    let result = remove();
    // Every key in `waiting_for` was armed before the removal, so the kernel
    // has sent its cookie back (REMOVED now, or WOKENUP earlier): a reader
    // takes it out within microseconds.
    let end = after(CANCEL_WAIT);
    let mut guard = lock();
    loop {
        let t = table(&mut guard);
        let callbacks = take_removed(t, queue);
        if !callbacks.is_empty() {
            let n = callbacks.len();
            drop(guard);
            drop_removed(callbacks);
            guard = lock();
            dropped(table(&mut guard), queue, n);
            continue;
        }
        let pending = result.is_ok()
            && (waiting_for.iter().any(|k| t.entries.contains_key(k))
                || t.in_flight.contains_key(&queue));
        if !pending || Instant::now() >= end {
            if let Some(n) = t.cancelling.get_mut(&queue) {
                *n -= 1;
                if *n == 0 {
                    t.cancelling.remove(&queue);
                }
            }
            return result;
        }
        guard = wait_until(&CHANGED, guard, end);
    }
}

/// Blocks every signal on the calling thread, as glibc's helper threads do.
fn block_signals() {
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), None);
}

/// A reader thread: takes each cookie the kernel sends on socket `fd`
/// (table id `id`) out of the table and queues its closure for a worker
/// (or hands it to a cancel). It never runs user code. An added socket's
/// reader closes the socket and exits when nothing has been pending on it
/// for [`SOCKET_LINGER`].
fn read_loop(id: u64, fd: RawFd) {
    block_signals();
    let mut buf = [0u8; COOKIE_LEN];
    loop {
        // SAFETY: `buf` is valid for COOKIE_LEN bytes; `fd` stays open until
        // this thread closes it (`retire`).
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), COOKIE_LEN, 0) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR | Errno::ENOBUFS => continue,
                // SO_RCVTIMEO: only added sockets have one.
                Errno::EAGAIN if retire(id) => return,
                Errno::EAGAIN => continue,
                // Cannot happen on an open netlink socket; do not spin.
                _ => return,
            }
        }
        if n as usize != COOKIE_LEN {
            continue;
        }
        let mut key = [0u8; 8];
        key.copy_from_slice(&buf[..8]);
        let key = u64::from_ne_bytes(key);
        let fired = buf[COOKIE_LEN - 1] == NOTIFY_WOKENUP;
        debug_assert!(fired || buf[COOKIE_LEN - 1] == NOTIFY_REMOVED);

        let spawn = {
            let mut guard = lock();
            let t = table(&mut guard);
            let Some(entry) = t.entries.remove(&key) else {
                continue;
            };
            if let Some(s) = t.sockets.iter_mut().find(|s| s.id == entry.socket) {
                s.pending = s.pending.saturating_sub(1);
            }
            let Entry {
                callback, queue, ..
            } = entry;
            let to_pool = if fired {
                Some(Job {
                    callback,
                    queue,
                    run: true,
                })
            } else {
                *t.in_flight.entry(queue).or_insert(0) += 1;
                if t.cancelling.contains_key(&queue) {
                    t.handed.entry(queue).or_default().push(callback);
                    None
                } else {
                    Some(Job {
                        callback,
                        queue,
                        run: false,
                    })
                }
            };
            changed(t);
            let mut spawn = false;
            if let Some(job) = to_pool {
                t.pool.jobs.push_back(job);
                if t.pool.idle > 0 {
                    WORK.notify_one();
                }
                spawn = t.pool.jobs.len() > t.pool.idle + t.pool.starting
                    && t.pool.workers < MAX_WORKERS;
                if spawn {
                    t.pool.workers += 1;
                    t.pool.starting += 1;
                }
            }
            spawn
        };
        if spawn && spawn_worker().is_err() {
            // The workers there are serve the queue.
            let mut guard = lock();
            let t = table(&mut guard);
            t.pool.workers = t.pool.workers.saturating_sub(1);
            t.pool.starting = t.pool.starting.saturating_sub(1);
        }
    }
}

/// On an added socket's receive timeout: if nothing is pending on it, takes
/// it out of the table and closes it. Returns whether the reader should
/// exit.
fn retire(id: u64) -> bool {
    let mut guard = lock();
    let t = table(&mut guard);
    let Some(i) = t.sockets.iter().position(|s| s.id == id) else {
        return true;
    };
    if t.sockets[i].primary || t.sockets[i].pending > 0 {
        return false;
    }
    // Nothing pending: no registration holds its descriptor, and no cookie
    // can arrive on it any more.
    let socket = t.sockets.remove(i);
    drop(guard);
    drop(socket);
    true
}

/// A worker: runs or drops queued closures, never under the table's lock.
/// Workers beyond the first exit after [`WORKER_LINGER`] without a job.
fn work_loop() {
    block_signals();
    let pid = std::process::id();
    let mut guard = lock();
    {
        let t = table(&mut guard);
        t.pool.starting = t.pool.starting.saturating_sub(1);
    }
    loop {
        if std::process::id() != pid {
            // A callback forked and this is the child: the table (and its
            // count of workers) is the parent's.
            return;
        }
        let t = table(&mut guard);
        if let Some(Job {
            callback,
            queue,
            run,
        }) = t.pool.jobs.pop_front()
        {
            drop(guard);
            if run {
                // Each callback starts with every signal blocked, as on a
                // thread of its own, whatever the previous one did.
                block_signals();
                let _ = catch_unwind(AssertUnwindSafe(callback));
                guard = lock();
            } else {
                drop_removed([callback]);
                guard = lock();
                dropped(table(&mut guard), queue, 1);
            }
            continue;
        }
        t.pool.idle += 1;
        let (g, timeout) = WORK
            .wait_timeout(guard, WORKER_LINGER)
            .unwrap_or_else(|p| p.into_inner());
        guard = g;
        let t = table(&mut guard);
        t.pool.idle = t.pool.idle.saturating_sub(1);
        if timeout.timed_out() && t.pool.jobs.is_empty() && t.pool.workers > 1 {
            t.pool.workers -= 1;
            return;
        }
    }
}
