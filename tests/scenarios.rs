//! Scripted multi-thread schedules, run on every backend with the same
//! expectations: who gets which message, and the exact `Result` of every call.
//!
//! Each scenario is a generic `fn scenario<B: Backend>(b: &B)` in
//! `scenarios/cases.rs` (the harness: `scenarios/harness.rs`), instantiated
//! by `instantiate!` at the bottom, like the contract suite, for:
//!
//! - `twin::`: the free-running twin (everywhere), on real threads;
//! - `kernel::`: the kernel (Linux, feature `posix`), on real threads;
//! - `deterministic::`: a deterministic twin (`TwinBuilder::deterministic`),
//!   the scenario and its threads all participants of the simulation, on
//!   virtual time. `tests/determinism.rs` runs these twice per seed over
//!   several seeds and compares the traces.
//!
//! # Schedules
//!
//! Threads that must block are started one at a time with `Scene::blocked`,
//! which returns only once that thread (and every one started before it) is
//! *settled*: queued as a waiter in the send or receive, or already finished.
//! So the order of the waiter lists is the order of the `blocked` calls, and
//! the rest of the scenario runs in the test thread, one call at a time.
//! "Finished" counts as settled so that a timed waiter whose deadline passes
//! early (a loaded machine) cannot stall a later wait: its result is
//! `TimedOut` either way, and that is what the scenario asserts.
//!
//! # Settle strategy
//!
//! - **Twin**: deterministic. `Twin::blocked()` counts the callers currently
//!   in a waiter list (a waiter is counted under the queue lock when it
//!   enqueues itself and uncounted by whoever serves it, or by itself when
//!   its deadline passes). A scene is settled at `n` when `blocked() +
//!   finished >= n`; `Twin::wait_blocked_timeout` does the waiting.
//! - **Kernel**: each tracked thread records its tid. A thread is blocked
//!   when `/proc/self/task/<tid>/syscall` names `mq_timedsend` or
//!   `mq_timedreceive` (the file names a syscall only for a thread that is
//!   not running) *and* `/proc/self/task/<tid>/stat` shows state `S`. Why
//!   that is not a guess: on the send and receive paths the only
//!   interruptible sleep is `wq_sleep`, and `wq_sleep` links the task into
//!   the queue's waiter list (`wq_add`, under `info->lock`) *before* it sets
//!   `TASK_INTERRUPTIBLE` and drops the lock. Other sleeps on those paths
//!   (page faults while copying the message, memory allocation) are
//!   uninterruptible (`D`), and a runnable or preempted thread is `R`. A
//!   served waiter is set running by `wake_up_q` before the serving call
//!   returns, so after a `send`/`receive` of the test thread returns it no
//!   longer counts as blocked. The count is confirmed by a second read 2 ms
//!   later (cheap insurance against an interruptible sleep elsewhere on the
//!   path in some future kernel). No scenario depends on a sleep being long
//!   enough: the only real-time waits are the deadlines of the timed waiters
//!   the scenarios *expect* to time out, and those are joined before
//!   anything else happens.
//!
//! - **Deterministic twin**: the scenario's participant waits in
//!   `Twin::wait_blocked` (a blocking point: the others run until enough
//!   are blocked). Virtual time moves only when every participant waits, so
//!   no timed waiter expires early, and the deadlines are read on the
//!   virtual clock (`MessageQueue::now`).
//!
//! A scene's threads own (`Arc`) clones of the handles they use (the
//! `share!` closures), as a participant must. Calls that the scenario
//! expects to block forever are `receive`/`send` without a deadline: if an
//! assertion fails while such a thread is blocked, the test fails at once
//! and the blocked thread is left behind (on the deterministic twin, the
//! failed run unwinds it).

#[macro_use]
#[path = "scenarios/harness.rs"]
mod harness;
#[macro_use]
#[path = "scenarios/cases.rs"]
mod cases;

/// Creates `twin::<scenario>`, `kernel::<scenario>` and
/// `deterministic::<scenario>` tests.
macro_rules! instantiate {
    ($($test:ident),* $(,)?) => {
        mod twin {
            $(
                #[test]
                fn $test() {
                    super::cases::$test(&super::harness::TwinBackend::new());
                }
            )*
        }
        #[cfg(all(target_os = "linux", feature = "posix"))]
        mod kernel {
            $(
                #[test]
                fn $test() {
                    super::cases::$test(&super::harness::kernel_backend::KernelBackend::new());
                }
            )*
        }
        /// One seed each (`MQTWIN_SEED` overrides it); `tests/determinism.rs`
        /// runs several, twice each. Not under miri (`.ci/run` runs this
        /// file there): the simulation's token hand-overs spin on the clock
        /// for a moment, which would be minutes of interpretation.
        #[cfg(not(miri))]
        mod deterministic {
            $(
                #[test]
                fn $test() {
                    let trace = super::harness::run_deterministic(0, super::cases::$test);
                    assert!(!trace.is_empty());
                }
            )*
        }
    };
}

for_each_scenario!(instantiate);
