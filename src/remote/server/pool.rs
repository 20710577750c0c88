//! The server's worker threads: a bounded pool that runs the calls which
//! may block (send, receive, `wait_ready`), so a blocked call holds only its
//! own worker.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::threads::Threads;

/// A call to run on a worker.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle worker waits for a job before it exits.
const IDLE: Duration = Duration::from_secs(5);

struct State {
    jobs: VecDeque<Job>,
    idle: usize,
    total: usize,
    /// The server stopped: idle workers exit at once.
    closed: bool,
}

/// At most `max` worker threads, started on demand and ended when idle.
pub(crate) struct Pool {
    state: Mutex<State>,
    ready: Condvar,
    max: usize,
    threads: Arc<Threads>,
}

impl Pool {
    pub(crate) fn new(max: usize, threads: Arc<Threads>) -> Arc<Pool> {
        Arc::new(Pool {
            state: Mutex::new(State {
                jobs: VecDeque::new(),
                idle: 0,
                total: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            max: max.max(1),
            threads,
        })
    }

    /// Runs `job` on a worker; gives it back when every worker is busy and
    /// the pool is at its maximum (or no thread can be started).
    pub(crate) fn submit(self: &Arc<Self>, job: Job) -> Result<(), Job> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.idle > st.jobs.len() {
            st.jobs.push_back(job);
            drop(st);
            self.ready.notify_one();
            return Ok(());
        }
        if st.total >= self.max {
            return Err(job);
        }
        st.total += 1;
        drop(st);
        let pool = Arc::clone(self);
        // The job travels in a slot so that a failed spawn can hand it back.
        let slot = Arc::new(Mutex::new(Some(job)));
        let mine = Arc::clone(&slot);
        let started = self.threads.spawn("mqtwin-serve-call", move || {
            let first = mine.lock().unwrap_or_else(|p| p.into_inner()).take();
            pool.work(first)
        });
        if started.is_err() {
            self.state.lock().unwrap_or_else(|p| p.into_inner()).total -= 1;
            let job = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            return match job {
                Some(job) => Err(job),
                None => Ok(()),
            };
        }
        Ok(())
    }

    /// Idle workers exit now, busy ones after their job (their calls end
    /// with their connections); later jobs still get a thread.
    pub(crate) fn close(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.ready.notify_all();
    }

    fn work(&self, mut job: Option<Job>) {
        loop {
            if let Some(j) = job.take() {
                // A panicking call must not take the worker (and its count) with it.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(j));
            }
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.idle += 1;
            loop {
                if let Some(j) = st.jobs.pop_front() {
                    st.idle -= 1;
                    job = Some(j);
                    break;
                }
                if st.closed {
                    st.idle -= 1;
                    st.total -= 1;
                    return;
                }
                let (g, timeout) = self
                    .ready
                    .wait_timeout(st, IDLE)
                    .unwrap_or_else(|p| p.into_inner());
                st = g;
                if timeout.timed_out() && st.jobs.is_empty() {
                    st.idle -= 1;
                    st.total -= 1;
                    return;
                }
            }
        }
    }
}
