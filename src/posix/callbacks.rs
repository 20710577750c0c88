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
//!   its cookie; the message for that key removes it: `WOKENUP` runs it on a
//!   new thread, `REMOVED` drops it;
//! - so a notification that fired runs even if the handle is closed right
//!   after the send (the kernel sent `WOKENUP` before the close), and one
//!   that was cancelled or closed is freed as soon as the kernel says so;
//! - [`cancel`](super::notify::cancel) waits (briefly) until the closures of
//!   the queue's registrations it removed are gone, so a cancel releases what
//!   the closure owns before it returns;
//! - no closure is run or dropped while the table's lock is held, so a
//!   closure may own queue handles, and its drop may close them;
//! - a failure to create a socket or a reader thread fails that one
//!   registration, with a clear error, and the next one tries again.
//!
//! Each socket serves at most [`PER_SOCKET`] pending registrations (the
//! kernel charges each pending cookie to the socket's receive buffer and
//! *blocks* `mq_notify` when the buffer is full); a new socket and reader
//! thread are added when all are that busy. Sockets and readers live as long
//! as the process (a few descriptors at most for most programs). Readers and
//! callback threads block every signal, as glibc's do, so a process-directed
//! signal is never delivered to them.

use std::cell::Cell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
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
/// How long a cancel waits for the reader to drop a removed callback. Only
/// a callback whose `Drop` blocks can make it wait this long.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

/// A queue, as the kernel identifies it: the mqueue inode.
pub(super) type QueueId = (u64, u64);

struct Entry {
    callback: Callback,
    queue: QueueId,
    socket: usize,
    /// The `mq_notify` call succeeded: the kernel holds the cookie and will
    /// send it back exactly once.
    armed: bool,
}

struct Socket {
    fd: OwnedFd,
    pending: usize,
}

struct Table {
    /// The process the table belongs to: a forked child starts afresh (its
    /// copy of the parent's sockets would read the parent's notifications).
    pid: u32,
    entries: HashMap<u64, Entry>,
    sockets: Vec<Socket>,
    /// Callbacks of each queue taken out of `entries` but not yet run or
    /// dropped by a reader.
    in_flight: HashMap<QueueId, usize>,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
static CHANGED: Condvar = Condvar::new();
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Set on reader threads: a cancel from a callback's `Drop` must not wait
    /// for the reader that is running that very `Drop`.
    static IS_READER: Cell<bool> = const { Cell::new(false) };
}

fn lock() -> MutexGuard<'static, Option<Table>> {
    TABLE.lock().unwrap_or_else(|p| p.into_inner())
}

/// This process's table, created (or reset after a fork) on demand.
fn table(guard: &mut Option<Table>) -> &mut Table {
    let pid = std::process::id();
    if guard.as_ref().is_some_and(|t| t.pid != pid) {
        // Inherited from the parent: its closures and sockets are the
        // parent's. Forget them without running any destructor.
        if let Some(old) = guard.take() {
            std::mem::forget(old.entries);
            drop(old.sockets); // closes this process's copies of the fds
        }
    }
    guard.get_or_insert_with(|| Table {
        pid,
        entries: HashMap::new(),
        sockets: Vec::new(),
        in_flight: HashMap::new(),
    })
}

/// The queue behind `fd` (`fstat`: device and inode).
pub(super) fn queue_id(fd: RawFd) -> Result<QueueId, Error> {
    // SAFETY: `fd` is borrowed from a live `Queue` for the duration of the call.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let st = nix::sys::stat::fstat(fd).map_err(|e| Error::Os { errno: e as i32 })?;
    Ok((st.st_dev, st.st_ino))
}

/// A socket with room for one more registration, creating one (and its
/// reader thread) if needed. Returns its index and descriptor.
fn socket_with_room(t: &mut Table) -> Result<(usize, RawFd), Error> {
    if let Some(i) = t.sockets.iter().position(|s| s.pending < PER_SOCKET) {
        return Ok((i, t.sockets[i].fd.as_raw_fd()));
    }
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
    let index = t.sockets.len();
    std::thread::Builder::new()
        .name("mqtwin-notify-reader".into())
        .spawn(move || read_loop(raw))
        .map_err(|e| Error::Os {
            errno: e.raw_os_error().unwrap_or(libc::EAGAIN),
        })?;
    t.sockets.push(Socket { fd, pending: 0 });
    Ok((index, raw))
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
    let (socket, sock_fd) = match socket_with_room(t) {
        Ok(s) => s,
        Err(e) => {
            drop(guard);
            drop(callback);
            return Err(e);
        }
    };
    t.sockets[socket].pending += 1;
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
    // at during the call only; both outlive it. `sock_fd` stays open (the
    // table never closes a socket of this process).
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
            if let Some(s) = t.sockets.get_mut(socket) {
                s.pending = s.pending.saturating_sub(1);
            }
            drop(guard);
            drop(entry);
            Err(super::notify::error(e))
        }
    }
}

/// Runs `remove` (an `mq_notify(fd, NULL)`), then waits until every callback
/// this process had armed on `fd`'s queue before it has been run or dropped.
pub(super) fn cancel_and_wait(
    fd: RawFd,
    remove: impl FnOnce() -> Result<(), Error>,
) -> Result<(), Error> {
    let any = {
        let mut guard = lock();
        !table(&mut guard).entries.is_empty()
    };
    if !any {
        return remove();
    }
    let queue = queue_id(fd)?;
    let waiting_for: Vec<u64> = {
        let mut guard = lock();
        let t = table(&mut guard);
        t.entries
            .iter()
            .filter(|(_, e)| e.armed && e.queue == queue)
            .map(|(&k, _)| k)
            .collect()
    };
    remove()?;
    if waiting_for.is_empty() || IS_READER.with(Cell::get) {
        return Ok(());
    }
    // Every key in `waiting_for` was armed before the removal, so the kernel
    // has sent its cookie back (REMOVED now, or WOKENUP earlier): a reader
    // takes it out within microseconds.
    let end = Instant::now() + CANCEL_WAIT;
    let mut guard = lock();
    loop {
        let t = table(&mut guard);
        let pending = waiting_for.iter().any(|k| t.entries.contains_key(k))
            || t.in_flight.get(&queue).is_some_and(|&n| n > 0);
        let now = Instant::now();
        if !pending || now >= end {
            return Ok(());
        }
        guard = CHANGED
            .wait_timeout(guard, end - now)
            .map(|(g, _)| g)
            .unwrap_or_else(|p| p.into_inner().0);
    }
}

/// A reader thread: takes each cookie the kernel sends on socket `fd`
/// and runs or drops its callback, never under the table's lock.
fn read_loop(fd: RawFd) {
    IS_READER.with(|r| r.set(true));
    // As glibc's helper: no signal is ever delivered to this thread, nor to
    // the callback threads it starts (they inherit the mask).
    let _ = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None);
    let mut buf = [0u8; COOKIE_LEN];
    loop {
        // SAFETY: `buf` is valid for COOKIE_LEN bytes; `fd` stays open for
        // the life of the process (the table never closes its sockets).
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), COOKIE_LEN, 0) };
        if n < 0 {
            match Errno::last() {
                Errno::EINTR | Errno::ENOBUFS => continue,
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

        let taken = {
            let mut guard = lock();
            let t = table(&mut guard);
            let entry = t.entries.remove(&key);
            if let Some(e) = &entry {
                if let Some(s) = t.sockets.get_mut(e.socket) {
                    s.pending = s.pending.saturating_sub(1);
                }
                *t.in_flight.entry(e.queue).or_insert(0) += 1;
            }
            entry
        };
        let Some(entry) = taken else { continue };
        let queue = entry.queue;
        if fired {
            // If no thread can be created the notification is lost, as in C
            // (and the callback is dropped here).
            let _ = std::thread::Builder::new()
                .name("mqtwin-notify".into())
                .spawn(entry.callback);
        } else {
            drop(entry);
        }
        let mut guard = lock();
        let t = table(&mut guard);
        if let Some(n) = t.in_flight.get_mut(&queue) {
            *n -= 1;
            if *n == 0 {
                t.in_flight.remove(&queue);
            }
        }
        drop(guard);
        CHANGED.notify_all();
    }
}
