//! Queue descriptors: real descriptors of the process, one Unix socket pair
//! per open description. The caller gets one end (its `mqd_t`); the library
//! keeps the other (the *peer*). A descriptor is found again by the identity
//! of its socket (`fstat` device and inode), so `dup(mqd)` reaches the same
//! open description, and a number the process closed with `close()` and
//! reused for something else is not mistaken for a queue (`EBADF`).
//!
//! Readiness: the caller's end holds one byte exactly while the queue holds
//! a message, so `poll`/`select`/`epoll` report `POLLIN` as for a kernel
//! queue. `POLLOUT` is always reported (a socket's send buffer), also when
//! the queue is full.
//!
//! Lifetime: `mq_close` ends the description when no other descriptor (a
//! `dup`) shares it. A description whose every descriptor was closed with
//! `close()` is noticed later (the peer reads end-of-file) and released at
//! the next `mq_open`.

use std::collections::HashMap;
use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use mqtwin::MessageQueue;

use crate::ffi::{last_errno, Errno};

/// What identifies a socket: `st_dev`, `st_ino`.
type Key = (u64, u64);

/// One open description.
pub(crate) struct Desc {
    /// The backend's handle.
    pub(crate) queue: Box<dyn MessageQueue>,
    /// Whether sends are allowed (`O_WRONLY`, `O_RDWR`).
    pub(crate) can_write: bool,
    /// Whether receives are allowed (`O_RDONLY`, `O_RDWR`).
    pub(crate) can_read: bool,
    /// The queue's message size, fixed at creation.
    pub(crate) msgsize: usize,
    key: Key,
    /// The library's end of the socket pair.
    peer: c_int,
    /// The descriptor number last used for this description (to take the
    /// readiness byte back out).
    last_fd: AtomicI32,
    /// Whether the caller's end holds the readiness byte.
    signalled: AtomicBool,
    group: Arc<Group>,
}

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: `peer` is the library's own descriptor, closed once, here.
        unsafe { libc::close(self.peer) };
    }
}

impl Desc {
    /// Brings the readiness byte in line with `readable`. Called under the
    /// group's lock.
    fn mark(&self, readable: bool) {
        if readable == self.signalled.load(Ordering::SeqCst) {
            return;
        }
        if readable {
            let byte = [1u8];
            // SAFETY: a one-byte buffer that lives across the call, on the
            // library's own socket.
            let n = unsafe { libc::send(self.peer, byte.as_ptr().cast(), 1, SEND_FLAGS) };
            if n == 1 {
                self.signalled.store(true, Ordering::SeqCst);
            }
        } else {
            let fd = self.last_fd.load(Ordering::SeqCst);
            if identity(fd) != Ok(self.key) {
                return; // no known descriptor left: the byte stays (lazy)
            }
            let mut byte = [0u8];
            // SAFETY: a one-byte buffer that lives across the call; `fd` is
            // this description's socket (identity checked just above).
            let n = unsafe { libc::recv(fd, byte.as_mut_ptr().cast(), 1, libc::MSG_DONTWAIT) };
            if n == 1 {
                self.signalled.store(false, Ordering::SeqCst);
            }
        }
    }

    /// Whether every descriptor of the caller's end is closed.
    fn abandoned(&self) -> bool {
        let mut byte = [0u8];
        // SAFETY: a one-byte buffer that lives across the call, on the
        // library's own socket; MSG_PEEK leaves any data in place.
        let n = unsafe {
            libc::recv(
                self.peer,
                byte.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n == 0
    }

    /// Updates the readiness of every description of this queue.
    pub(crate) fn refresh(&self) {
        self.group.refresh();
    }
}

#[cfg(target_os = "linux")]
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(target_os = "linux"))]
const SEND_FLAGS: c_int = libc::MSG_DONTWAIT;

/// The descriptions of one queue (the same name, not unlinked in between).
#[derive(Default)]
pub(crate) struct Group {
    members: Mutex<Vec<Weak<Desc>>>,
}

impl Group {
    fn refresh(&self) {
        let mut members = lock(&self.members);
        members.retain(|m| m.strong_count() > 0);
        let live: Vec<Arc<Desc>> = members.iter().filter_map(Weak::upgrade).collect();
        let Some(first) = live.first() else { return };
        let readable = first.queue.readiness().map(|r| r.readable).unwrap_or(false);
        for d in &live {
            d.mark(readable);
        }
        drop(members);
        // The upgraded handles are dropped after the lock (a last one would
        // drop a twin handle).
        drop(live);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The socket identity of `fd`, or `EBADF` when it is not an open socket.
fn identity(fd: c_int) -> Result<Key, Errno> {
    if fd < 0 {
        return Err(Errno(libc::EBADF));
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `struct stat` into the buffer it is given.
    let rc = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if rc != 0 {
        return Err(Errno(libc::EBADF));
    }
    // SAFETY: fstat returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(Errno(libc::EBADF));
    }
    #[allow(clippy::unnecessary_cast)] // the field types differ by platform
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// The lowest descriptor the library moves its own ends to, so that the
/// caller's next `open` gets the number it would get without them.
const HIGH_FD: c_int = 768;

/// A socket pair, close-on-exec, the library's end moved out of the way.
fn socket_pair() -> Result<(c_int, c_int), Errno> {
    let mut sv = [-1 as c_int; 2];
    // SAFETY: socketpair writes two descriptors into the array.
    let rc = unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, sv.as_mut_ptr()) };
    if rc != 0 {
        return Err(Errno(last_errno()));
    }
    let [user, mut peer] = sv;
    for fd in [user, peer] {
        // SAFETY: fcntl on descriptors just made.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: F_DUPFD_CLOEXEC makes a new descriptor or fails; the old one
    // is closed only when the new one exists.
    let high = unsafe { libc::fcntl(peer, libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if high >= 0 {
        // SAFETY: `peer` is ours and now duplicated.
        unsafe { libc::close(peer) };
        peer = high;
    }
    #[cfg(not(target_os = "linux"))]
    {
        let one: c_int = 1;
        // SAFETY: SO_NOSIGPIPE takes an int, passed by pointer with its size.
        unsafe {
            libc::setsockopt(
                peer,
                libc::SOL_SOCKET,
                libc::SO_NOSIGPIPE,
                (&one as *const c_int).cast(),
                std::mem::size_of::<c_int>() as libc::socklen_t,
            )
        };
    }
    Ok((user, peer))
}

/// What a new description needs besides its descriptor.
pub(crate) struct NewDesc {
    pub(crate) queue: Box<dyn MessageQueue>,
    pub(crate) can_read: bool,
    pub(crate) can_write: bool,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<Key, Arc<Desc>>,
    /// Queue name → the group of its descriptions (removed on unlink).
    groups: HashMap<String, Weak<Group>>,
}

/// Every open description of the process.
#[derive(Default)]
pub(crate) struct Table {
    inner: Mutex<Inner>,
}

impl Table {
    /// Makes a descriptor for what `open` returns. The socket pair comes
    /// first, as the kernel allocates the descriptor before it looks the
    /// name up (`EMFILE` first).
    pub(crate) fn open(
        &self,
        name: &str,
        open: impl FnOnce() -> Result<NewDesc, Errno>,
    ) -> Result<c_int, Errno> {
        drop(self.sweep());
        let (user, peer) = socket_pair()?;
        let made = open().and_then(|new| {
            let msgsize = new.queue.attributes()?.max_msg_len;
            Ok((new, msgsize))
        });
        let (new, msgsize) = match made {
            Ok(v) => v,
            Err(e) => {
                // SAFETY: both descriptors were just made and are unused.
                unsafe {
                    libc::close(user);
                    libc::close(peer);
                }
                return Err(e);
            }
        };
        let key = match identity(user) {
            Ok(k) => k,
            Err(e) => {
                // SAFETY: as above.
                unsafe {
                    libc::close(user);
                    libc::close(peer);
                }
                return Err(e);
            }
        };
        let mut inner = lock(&self.inner);
        let group = match inner.groups.get(name).and_then(Weak::upgrade) {
            Some(g) => g,
            None => {
                let g = Arc::new(Group::default());
                inner.groups.insert(name.to_owned(), Arc::downgrade(&g));
                g
            }
        };
        let desc = Arc::new(Desc {
            queue: new.queue,
            can_read: new.can_read,
            can_write: new.can_write,
            msgsize,
            key,
            peer,
            last_fd: AtomicI32::new(user),
            signalled: AtomicBool::new(false),
            group: Arc::clone(&group),
        });
        lock(&group.members).push(Arc::downgrade(&desc));
        let stale = inner.by_key.insert(key, Arc::clone(&desc));
        inner.groups.retain(|_, g| g.strong_count() > 0);
        drop(inner);
        drop(stale);
        desc.refresh();
        Ok(user)
    }

    /// The description behind `fd` (`EBADF` if none).
    pub(crate) fn get(&self, fd: c_int) -> Result<Arc<Desc>, Errno> {
        let key = identity(fd)?;
        let desc = lock(&self.inner)
            .by_key
            .get(&key)
            .cloned()
            .ok_or(Errno(libc::EBADF))?;
        desc.last_fd.store(fd, Ordering::SeqCst);
        Ok(desc)
    }

    /// `mq_close`: glibc's is `close(2)`, so any descriptor closes. A
    /// queue descriptor first drops this process's notification
    /// registration on the queue (the kernel's flush on every close).
    pub(crate) fn close(&self, fd: c_int) -> Result<(), Errno> {
        let desc = self.get(fd).ok();
        if let Some(d) = &desc {
            let _ = d.queue.cancel_notify();
        }
        // SAFETY: closing a descriptor the caller names, as close(2) does.
        if unsafe { libc::close(fd) } != 0 {
            return Err(Errno(last_errno()));
        }
        if let Some(d) = desc {
            if d.abandoned() {
                let removed = lock(&self.inner).by_key.remove(&d.key);
                drop(removed);
            }
        }
        Ok(())
    }

    /// Takes out the descriptions none of whose descriptors is open any
    /// more; the caller drops them after the table's lock is released.
    fn sweep(&self) -> Vec<Arc<Desc>> {
        let mut inner = lock(&self.inner);
        let dead: Vec<Key> = inner
            .by_key
            .iter()
            .filter(|(_, d)| d.abandoned())
            .map(|(k, _)| *k)
            .collect();
        dead.iter().filter_map(|k| inner.by_key.remove(k)).collect()
    }

    /// After a successful unlink: the name's next queue is a new group.
    pub(crate) fn unlinked(&self, name: &str) {
        let removed = lock(&self.inner).groups.remove(name);
        drop(removed);
    }
}
