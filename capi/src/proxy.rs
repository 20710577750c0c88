//! Blocking calls that a signal can interrupt.
//!
//! A thread waiting on a condition variable never sees a signal, so a
//! send or receive that has to wait is handed to a pooled *proxy* thread
//! (all signals blocked, the caller's nice value), while the caller blocks
//! in `read()` on the proxy's wake-up pipe. A handled signal without
//! `SA_RESTART` makes that `read` fail with `EINTR`: the caller then ends
//! the proxy's wait ([`Backend::interrupt`], which consumes nothing) and
//! returns `EINTR`, unless the call completed first (then its result).
//! Under `SA_RESTART` the kernel restarts the `read` itself and the proxy
//! keeps waiting, in its place (the kernel re-queues a restarted waiter
//! behind its peers: the one divergence, docs/capi.md).

use std::os::raw::c_int;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use crate::backend::Backend;
use crate::ffi::{last_errno, Errno};

/// A blocking call: run on a proxy, returns what the C function returns.
pub(crate) type Job = Box<dyn FnOnce() -> Result<isize, Errno> + Send>;

/// The most idle proxies kept; more exit after their call.
const IDLE_KEPT: usize = 16;

struct Slot {
    job: Option<Job>,
    /// Set by the caller after an `EINTR`: a job not started yet is not run.
    cancelled: bool,
    started: bool,
    result: Option<Result<isize, Errno>>,
    /// Set when the pool does not keep the worker: its thread exits.
    exit: bool,
}

struct Worker {
    slot: Mutex<Slot>,
    wake: Condvar,
    /// The proxy's thread (what `interrupt` names).
    thread: Mutex<Option<ThreadId>>,
    /// The pipe the proxy writes one byte to when a call is done.
    done_read: c_int,
    done_write: c_int,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: the worker's own pipe, closed once.
        unsafe {
            libc::close(self.done_read);
            libc::close(self.done_write);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pool of idle proxies.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<Arc<Worker>>>,
}

fn new_worker() -> Result<Arc<Worker>, Errno> {
    let mut fds = [-1 as c_int; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(Errno(last_errno()));
    }
    for fd in fds.iter_mut() {
        // SAFETY: fcntl on descriptors just made; the old one is closed
        // only when its duplicate exists.
        unsafe {
            libc::fcntl(*fd, libc::F_SETFD, libc::FD_CLOEXEC);
            let high = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 768);
            if high >= 0 {
                libc::close(*fd);
                *fd = high;
            }
        }
    }
    let worker = Arc::new(Worker {
        slot: Mutex::new(Slot {
            job: None,
            cancelled: false,
            started: false,
            result: None,
            exit: false,
        }),
        wake: Condvar::new(),
        thread: Mutex::new(None),
        done_read: fds[0],
        done_write: fds[1],
    });
    let for_thread = Arc::clone(&worker);
    std::thread::Builder::new()
        .name("mqtwin-proxy".into())
        .spawn(move || serve(for_thread))
        .map_err(|_| Errno(libc::EAGAIN))?;
    Ok(worker)
}

/// A proxy's life: wait for a job, run it, report, go back to the pool.
fn serve(worker: Arc<Worker>) {
    block_all_signals();
    *lock(&worker.thread) = Some(std::thread::current().id());
    loop {
        let mut slot = lock(&worker.slot);
        let job = loop {
            if let Some(job) = slot.job.take() {
                break job;
            }
            if slot.exit {
                return;
            }
            slot = worker.wake.wait(slot).unwrap_or_else(|e| e.into_inner());
        };
        let result = if slot.cancelled {
            drop(slot);
            Err(Errno(libc::EINTR))
        } else {
            slot.started = true;
            drop(slot);
            job()
        };
        lock(&worker.slot).result = Some(result);
        let byte = [1u8];
        // SAFETY: a one-byte buffer on the worker's own pipe.
        let _ = unsafe { libc::write(worker.done_write, byte.as_ptr().cast(), 1) };
    }
}

fn block_all_signals() {
    // SAFETY: a full signal set made by sigfillset and applied to this
    // thread only.
    unsafe {
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigfillset(set.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
    }
}

/// The caller's nice value, which the proxy takes on for the twin's
/// waiter order (Linux: per thread).
fn caller_nice() -> i32 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: getpriority only reads; errno is cleared first to tell -1
        // from an error.
        unsafe {
            crate::ffi::set_errno(0);
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let n = libc::getpriority(libc::PRIO_PROCESS, tid);
            if n == -1 && last_errno() != 0 {
                0
            } else {
                n
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

impl Pool {
    /// Runs `job` on a proxy and waits for it in an interruptible `read`.
    pub(crate) fn run(&self, backend: &dyn Backend, job: Job) -> Result<isize, Errno> {
        let worker = match lock(&self.idle).pop() {
            Some(w) => w,
            None => new_worker()?,
        };
        let nice = caller_nice();
        let job: Job = Box::new(move || {
            mqtwin::twin::set_thread_nice(nice);
            job()
        });
        {
            let mut slot = lock(&worker.slot);
            slot.job = Some(job);
            slot.cancelled = false;
            slot.started = false;
            slot.result = None;
        }
        worker.wake.notify_one();
        let mut interrupted = false;
        loop {
            match read_byte(worker.done_read) {
                Ok(()) => break,
                Err(libc::EINTR) if !interrupted => {
                    interrupted = true;
                    self.interrupt(backend, &worker);
                }
                Err(libc::EINTR) => {}
                Err(e) => {
                    // The pipe failed (cannot happen with a valid pipe):
                    // the worker is not reused. Its job still holds the
                    // caller's buffer, so wait for it to end first.
                    self.interrupt(backend, &worker);
                    while lock(&worker.slot).result.is_none() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    lock(&worker.slot).exit = true;
                    worker.wake.notify_one();
                    return Err(Errno(e));
                }
            }
        }
        let result = lock(&worker.slot)
            .result
            .take()
            .unwrap_or(Err(Errno(libc::EIO)));
        let mut idle = lock(&self.idle);
        if idle.len() < IDLE_KEPT {
            idle.push(worker);
        } else {
            lock(&worker.slot).exit = true;
            worker.wake.notify_one();
        }
        drop(idle);
        result
    }

    /// Ends the proxy's wait after the caller caught a signal: a job not
    /// started is not run; a started one is interrupted once it blocks
    /// (the backend says whether it is), unless it completes first.
    fn interrupt(&self, backend: &dyn Backend, worker: &Worker) {
        {
            let mut slot = lock(&worker.slot);
            slot.cancelled = true;
            if !slot.started || slot.result.is_some() {
                return;
            }
        }
        let Some(thread) = *lock(&worker.thread) else {
            return;
        };
        loop {
            if lock(&worker.slot).result.is_some() || backend.interrupt(thread) {
                return;
            }
            // Started but not blocked yet (or between its checks): soon it
            // either blocks or completes.
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Reads the one byte a proxy writes; `Err(errno)` on failure.
fn read_byte(fd: c_int) -> Result<(), c_int> {
    let mut byte = [0u8];
    // SAFETY: a one-byte buffer that lives across the call.
    let n = unsafe { libc::read(fd, byte.as_mut_ptr().cast(), 1) };
    if n == 1 {
        Ok(())
    } else if n == 0 {
        Err(libc::EIO)
    } else {
        Err(last_errno())
    }
}
