//! The threaded executor: every participant is an OS thread that waits for
//! the token on its own condition variable (spinning a moment first). What
//! loom and Miri check (they cannot run the coroutines' context switches),
//! and what `--cfg mqtwin_sim_threads` selects: then the threads come from
//! the pool of reused workers ([`super::pool`]) instead of being spawned
//! per participant.

use std::time::{Duration, Instant};

use crate::sync::{Arc, Condvar};

use super::core::SimCore;

/// How a participant is told it has the token: its condition variable.
pub(super) type Wake = Arc<Condvar>;

/// The OS threads of the participants, joined when a run ends, so that no
/// participant thread is still exiting (running its thread-local
/// destructors) after `run` returns: a caller such as a fuzzer's leak check
/// sees every thread's resources released. (Pooled threads do not exit.)
#[derive(Default)]
pub(super) struct State {
    #[cfg(not(any(mqtwin_loom, mqtwin_sim_threads)))]
    threads: std::sync::Mutex<Vec<(usize, std::thread::JoinHandle<()>)>>,
}

/// How long a participant waiting for the token spins before it sleeps.
const SPIN: Duration = Duration::from_micros(50);

/// Starts participant `id`'s thread; it waits for its first turn.
pub(super) fn start(core: &Arc<SimCore>, id: usize) -> std::io::Result<()> {
    let Some(f) = core.take_body(id) else {
        return Ok(());
    };
    let c = Arc::clone(core);
    #[cfg(all(mqtwin_sim_threads, not(mqtwin_loom), not(miri)))]
    {
        super::pool::run(Box::new(move || {
            // A reused thread: it starts at nice 0, as a new one would.
            crate::twin::set_thread_nice(0);
            c.body(id, f);
        }))
        .map(drop)
    }
    #[cfg(all(mqtwin_sim_threads, miri, not(mqtwin_loom)))]
    {
        crate::sync::spawn_detached(&format!("mqtwin-sim-{id}"), move || c.body(id, f))
    }
    #[cfg(not(any(mqtwin_loom, mqtwin_sim_threads)))]
    {
        std::thread::Builder::new()
            .name(format!("mqtwin-sim-{id}"))
            .spawn(move || c.body(id, f))
            .map(|t| {
                (core.exec.threads.lock())
                    .unwrap_or_else(|p| p.into_inner())
                    .push((id, t))
            })
    }
    #[cfg(mqtwin_loom)]
    {
        crate::sync::spawn_detached(&format!("mqtwin-sim-{id}"), move || c.body(id, f))
    }
}

/// Waits until `me` holds the token.
pub(super) fn wait_turn(core: &SimCore, me: usize) {
    spin_for(core, me);
    core.wait_on_condvar(me);
}

/// Spins (without the lock) for at most [`SPIN`] until `me` has the token.
fn spin_for(core: &SimCore, me: usize) {
    // loom and Miri would interpret every step of the spin.
    if cfg!(mqtwin_loom) || cfg!(miri) {
        return;
    }
    if core.turn() == me {
        return; // kept the token: no clock read
    }
    let start = Instant::now();
    while start.elapsed() < SPIN {
        for _ in 0..64 {
            if core.turn() == me {
                return;
            }
            std::hint::spin_loop();
        }
    }
}

/// Tells the new token holder (called with the state lock held).
pub(super) fn wake(w: &Wake) {
    w.notify_one();
}

/// The threads run by themselves: no driver.
pub(super) fn drive(_core: &Arc<SimCore>) -> std::io::Result<()> {
    Ok(())
}

/// Nothing to wait for before the caller's own wait for the run's end.
pub(super) fn await_end(_core: &SimCore) {}

/// Joins the OS threads of the participants that have finished (every
/// participant, when a run has ended): each has handed on the token and
/// only its thread's exit is left.
pub(super) fn after_run(core: &SimCore) {
    #[cfg(not(any(mqtwin_loom, mqtwin_sim_threads)))]
    {
        let lock = || (core.exec.threads.lock()).unwrap_or_else(|p| p.into_inner());
        let threads = std::mem::take(&mut *lock());
        let (done, parked): (Vec<_>, Vec<_>) =
            threads.into_iter().partition(|(id, _)| core.is_done(*id));
        // Never wait for a participant that has not finished.
        lock().extend(parked);
        for (_, t) in done {
            // A participant's panic was caught in its body; nothing to report.
            let _ = t.join();
        }
    }
    #[cfg(any(mqtwin_loom, mqtwin_sim_threads))]
    let _ = core;
}
