//! The coroutine executor: every participant of a run is a stackful
//! coroutine ([`corosensei`]) on one OS thread, the *driver*, a worker
//! reused across runs ([`super::pool`]). A hand-over of the token is two
//! context switches on that thread (the holder suspends to the driver, the
//! driver resumes the new holder), tens of nanoseconds, instead of a
//! futex wake-up of another thread.
//!
//! - The driver runs the run off the caller's thread, so that the caller
//!   can still watch for a stall: a participant blocked outside the twin
//!   blocks the driver's thread, never the caller, which gives the run up
//!   after the stall limit as before (the stuck driver is never reused).
//! - Identity: the driver sets the core's notion of "me" before every
//!   resume; the twin's per-thread nice value ([`set_thread_nice`]) is saved
//!   and restored around every resume, so each participant keeps its own.
//!   Other thread-locals, `std::thread::current()` and its id are the
//!   driver's, shared by every participant of the run (documented on
//!   `Sim`).
//! - Stacks are `mmap`ed with a guard page, 2 MiB (or `RUST_MIN_STACK`),
//!   and kept by the driver for the next run.

use std::cell::{Cell, RefCell};
use std::sync::OnceLock;

use corosensei::stack::{DefaultStack, Stack};
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::sync::Arc;
use crate::twin::sched::{set_thread_nice, thread_nice};

use super::core::{SimCore, NOBODY};

type Coro = Coroutine<(), (), (), DefaultStack>;

/// Nothing to tell: the driver resumes whoever holds the token.
#[derive(Debug, Default)]
pub(super) struct Wake;

/// The driver's job for the run in progress, to wait for at its end.
#[derive(Default)]
pub(super) struct State {
    job: std::sync::Mutex<Option<super::pool::Ticket>>,
}

thread_local! {
    /// The `Yielder` of the coroutine running on this thread (null when the
    /// driver itself runs): set by each coroutine when it starts and again
    /// whenever it is resumed, from its own `&Yielder`.
    static YIELDER: Cell<*const Yielder<(), ()>> = const { Cell::new(std::ptr::null()) };
    /// Stacks of finished coroutines, for the next ones.
    static STACKS: RefCell<Vec<DefaultStack>> = const { RefCell::new(Vec::new()) };
}

/// Stacks a driver keeps between runs.
const MAX_STACKS: usize = 64;

/// A participant's stack size: `RUST_MIN_STACK` if set (as for
/// `std::thread::spawn`), else 2 MiB (std's default).
pub(super) fn stack_size() -> usize {
    static SIZE: OnceLock<usize> = OnceLock::new();
    *SIZE.get_or_init(|| {
        std::env::var("RUST_MIN_STACK")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(2 << 20)
    })
}

/// Nothing to start: the driver creates a participant's coroutine when it
/// first gets the token.
pub(super) fn start(_core: &Arc<SimCore>, _id: usize) -> std::io::Result<()> {
    Ok(())
}

/// Nothing to do: the driver resumes the new holder.
pub(super) fn wake(_w: &Wake) {}

/// From a participant: suspends its coroutine until it holds the token.
pub(super) fn wait_turn(core: &SimCore, me: usize) {
    while core.turn() != me {
        suspend();
    }
}

/// Suspends the running coroutine (back to the driver).
fn suspend() {
    let y = YIELDER.with(Cell::get);
    assert!(
        !y.is_null(),
        "mqtwin: a participant waited for its turn outside its coroutine"
    );
    // SAFETY: `y` is non-null, so it was stored by the coroutine running on
    // this thread right now (every coroutine stores its own `&Yielder` when
    // it starts and each time it is resumed, and the driver nulls it after
    // every resume): the `Yielder` lives on this coroutine's stack, which
    // stays alive while we run on it, and is only used on this thread.
    let yielder = unsafe { &*y };
    yielder.suspend(());
    YIELDER.with(|c| c.set(y));
}

/// Hands the run to a driver (a pooled worker thread).
pub(super) fn drive(core: &Arc<SimCore>) -> std::io::Result<()> {
    if core.turn() == NOBODY {
        return Ok(()); // ended at once (nothing runnable, nothing to unwind)
    }
    let c = Arc::clone(core);
    let ticket = super::pool::run(Box::new(move || run_coroutines(&c)))?;
    *lock(&core.exec.job) = Some(ticket);
    Ok(())
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The caller of a run spins a moment for its end (a fuzzer's runs are
/// short), then waits for it as before.
pub(super) fn await_end(core: &SimCore) {
    super::pool::spin_until(|| core.turn() == NOBODY);
}

/// Waits until the driver has let go of the run (its job finished): then
/// nothing of the run (the driver's reference to the core, the
/// coroutines) is dropped on the driver's thread after `run` returns, and
/// a fuzzer's leak check counts every allocation of the run as freed.
pub(super) fn after_run(core: &SimCore) {
    let ticket = lock(&core.exec.job).take();
    if let Some(t) = ticket {
        t.wait();
    }
}

/// The driver: resumes the token holder until the run has ended.
fn run_coroutines(core: &Arc<SimCore>) {
    let mut coros: Vec<Option<Coro>> = Vec::new();
    let mut nice: Vec<i32> = Vec::new();
    // Where each participant's stack ends (its guard page).
    let mut limits: Vec<usize> = Vec::new();
    let own_nice = thread_nice();
    #[cfg(target_os = "linux")]
    let seed = {
        super::overflow::prepare();
        core.seed()
    };
    loop {
        let id = core.turn();
        if id == NOBODY {
            break;
        }
        if coros.len() <= id {
            coros.resize_with(id + 1, || None);
            nice.resize(id + 1, 0);
            limits.resize(id + 1, 0);
        }
        if coros[id].is_none() {
            match new_coroutine(core, id) {
                Ok(Some((c, limit))) => (coros[id], limits[id]) = (Some(c), limit),
                Ok(None) | Err(_) => continue, // start_failed handed the token on
            }
        }
        let Some(coro) = coros[id].as_mut() else {
            continue;
        };
        set_thread_nice(nice[id]);
        core.set_me(Some(id));
        #[cfg(target_os = "linux")]
        super::overflow::enter(limits[id], id, seed);
        let r = coro.resume(());
        #[cfg(target_os = "linux")]
        super::overflow::leave();
        core.set_me(None);
        YIELDER.with(|c| c.set(std::ptr::null()));
        nice[id] = thread_nice();
        if let CoroutineResult::Return(()) = r {
            if let Some(done) = coros[id].take() {
                STACKS.with(|s| {
                    let mut s = s.borrow_mut();
                    if s.len() < MAX_STACKS {
                        s.push(done.into_stack());
                    }
                });
            }
        }
    }
    set_thread_nice(own_nice);
    // Every participant has finished (a run ends only then); a coroutine
    // left suspended would be unwound by its drop.
    drop(coros);
}

/// Participant `id`'s coroutine, on a kept stack or a new one, and the
/// lowest address of that stack (its guard page). `Ok(None)` when it has no
/// body (it cannot happen: it was started already); on a stack that cannot
/// be had, the run fails naming it.
fn new_coroutine(core: &Arc<SimCore>, id: usize) -> std::io::Result<Option<(Coro, usize)>> {
    let Some(body) = core.take_body(id) else {
        core.start_failed(id, "mqtwin: participant scheduled twice".into());
        return Ok(None);
    };
    let stack = match STACKS.with(|s| s.borrow_mut().pop()) {
        Some(s) => s,
        None => match DefaultStack::new(stack_size()) {
            Ok(s) => s,
            Err(e) => {
                drop(body);
                core.start_failed(id, format!("mqtwin: no stack for the participant: {e}"));
                return Err(e);
            }
        },
    };
    let limit = stack.limit().get();
    let c = Arc::clone(core);
    let coro = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
        YIELDER.with(|cell| cell.set(y as *const _));
        c.body(id, body);
    });
    Ok(Some((coro, limit)))
}
