//! OS threads reused across deterministic runs: a run (or, with the threaded
//! scheduler, a participant) is a job handed to an idle worker instead of a
//! freshly spawned thread, so that in steady state no thread is created per
//! run. Not under loom or Miri, which need every thread they check spawned
//! and joined by the program.
//!
//! A worker that finished a job waits for the next one, spinning a moment
//! first (a fuzzer starts its next run within microseconds), then sleeping;
//! the caller of a job waits for its end the same way.
//! A worker whose job never returns (a participant stuck outside the twin,
//! a stalled run) is simply never reused: the next job gets a new thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Work for a worker; it must not unwind (a panic is caught and dropped).
pub(crate) type Job = Box<dyn FnOnce() + Send>;

struct Worker {
    job: Mutex<Option<Job>>,
    /// Set with `job` filled: a spinning worker watches it without the lock.
    ready: AtomicBool,
    cv: Condvar,
    /// Jobs given to this worker so far (under `job`'s lock).
    given: AtomicU64,
    /// Jobs it has finished: a job's closure, and everything it held, is
    /// dropped before this counts it.
    done: AtomicU64,
    done_lock: Mutex<()>,
    done_cv: Condvar,
}

/// Tells when a job has finished, closure dropped ([`Ticket::wait`]).
/// (The threaded scheduler does not wait for its participants' jobs.)
#[cfg_attr(mqtwin_sim_threads, allow(dead_code))]
pub(crate) struct Ticket {
    worker: Arc<Worker>,
    job: u64,
}

#[cfg(feature = "arbitrary")]
impl crate::twin::WaitFinished for Ticket {
    fn wait(&self) {
        Ticket::wait(self);
    }
}

#[cfg_attr(mqtwin_sim_threads, allow(dead_code))]
impl Ticket {
    /// Waits until the job has finished: spins (see [`SPIN`]), then sleeps.
    /// Whatever the job held has been dropped by then (on the worker's
    /// thread), so nothing of it is freed after the caller goes on.
    pub(crate) fn wait(&self) {
        let w = &self.worker;
        let finished = || w.done.load(Ordering::Acquire) >= self.job;
        if spin_until(finished) {
            return;
        }
        let mut g = w.done_lock.lock().unwrap_or_else(PoisonError::into_inner);
        while !finished() {
            g = w.done_cv.wait(g).unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Idle workers, the most recently used last.
static IDLE: Mutex<Vec<Arc<Worker>>> = Mutex::new(Vec::new());

/// Idle workers kept; more exit when they finish.
const MAX_IDLE: usize = 16;

/// How long a thread waiting for the other side of a hand-over (a job, its
/// end, a run's end) spins before it sleeps on a condition variable. The
/// spin yields the CPU between rounds, so that on a busy machine the thread
/// it waits for gets the core (measured on 2 shared vCPUs, `echo_kit`
/// without a sanitizer: a pure 100 µs spin 3,800 exec/s, no spin 8,900,
/// this 11,100; docs/performance.md).
const SPIN: Duration = Duration::from_millis(1);

/// Spins until `cond` holds, at most [`SPIN`]; whether it held.
pub(crate) fn spin_until(cond: impl Fn() -> bool) -> bool {
    if cond() {
        return true;
    }
    let start = Instant::now();
    while start.elapsed() < SPIN {
        for _ in 0..64 {
            if cond() {
                return true;
            }
            std::hint::spin_loop();
        }
        std::thread::yield_now();
    }
    cond()
}

/// The name of every worker thread (what `std::thread::current().name()`
/// says in a participant).
pub(crate) const THREAD_NAME: &str = "mqtwin-sim";

/// Runs `job` on an idle worker, or on a new one; the ticket tells when it
/// has finished.
///
/// # Errors
///
/// When no worker is idle and the OS cannot create a thread.
pub(crate) fn run(job: Job) -> std::io::Result<Ticket> {
    let idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner).pop();
    match idle {
        Some(w) => {
            let n = {
                let mut slot = w.job.lock().unwrap_or_else(PoisonError::into_inner);
                *slot = Some(job);
                w.given.fetch_add(1, Ordering::Relaxed) + 1
            };
            w.ready.store(true, Ordering::Release);
            w.cv.notify_one();
            Ok(Ticket { worker: w, job: n })
        }
        None => {
            let w = Arc::new(Worker {
                job: Mutex::new(Some(job)),
                ready: AtomicBool::new(true),
                cv: Condvar::new(),
                given: AtomicU64::new(1),
                done: AtomicU64::new(0),
                done_lock: Mutex::new(()),
                done_cv: Condvar::new(),
            });
            let w2 = Arc::clone(&w);
            std::thread::Builder::new()
                .name(THREAD_NAME.into())
                .spawn(move || work(&w2))?;
            Ok(Ticket { worker: w, job: 1 })
        }
    }
}

fn work(w: &Arc<Worker>) {
    loop {
        let job = next(w);
        // A job catches its participants' panics; anything else is a bug
        // of the scheduler, which must not take the worker down silently.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
        {
            let _g = w.done_lock.lock().unwrap_or_else(PoisonError::into_inner);
            w.done.fetch_add(1, Ordering::Release);
            w.done_cv.notify_all();
        }
        if let Err(p) = r {
            drop(p);
            return;
        }
        let mut idle = IDLE.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() >= MAX_IDLE {
            return;
        }
        idle.push(Arc::clone(w));
    }
}

/// Waits for the next job: spins (see [`SPIN`]), then sleeps.
fn next(w: &Worker) -> Job {
    spin_until(|| w.ready.load(Ordering::Acquire));
    let mut job = w.job.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(j) = job.take() {
            w.ready.store(false, Ordering::Relaxed);
            return j;
        }
        job = w.cv.wait(job).unwrap_or_else(PoisonError::into_inner);
    }
}
