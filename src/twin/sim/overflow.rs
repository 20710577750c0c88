//! Naming the participant whose coroutine stack overflowed (Linux).
//!
//! A participant's stack ends in a guard page; running into it raises
//! `SIGSEGV`. Rust's own handler only recognises the guard page of the
//! thread's stack, so without this the process would die with a bare
//! "Segmentation fault". The handler installed here (chained in front of
//! whatever was installed before: std's, a fuzzer's) checks whether the
//! fault hit the guard page of the participant running on this thread; if
//! so it writes which participant overflowed (and the seed) to stderr. In
//! every case it then restores the previous disposition and returns: the
//! faulting instruction runs again and the fault goes where it went before
//! (a fuzzer's crash report, or death by the signal). A stack overflow is
//! never recovered from, as with threads.
//!
//! The handler runs on an alternate signal stack (the overflowed stack has
//! no room): the driver thread gets one if it has none.

use std::cell::Cell;
use std::sync::OnceLock;

thread_local! {
    /// The running participant's guard page `[lo, hi)`, its number and the
    /// run's seed; `lo == hi` when no participant runs on this thread.
    static GUARD: Cell<(usize, usize, usize, u64)> = const { Cell::new((0, 0, 0, 0)) };
    /// This thread has an alternate signal stack.
    static ALTSTACK: Cell<bool> = const { Cell::new(false) };
}

/// The dispositions found when the handler was installed.
static PREVIOUS: OnceLock<[Previous; 2]> = OnceLock::new();

struct Previous {
    signal: libc::c_int,
    action: libc::sigaction,
}

// SAFETY: a `sigaction` is plain data (a handler address, flags and a mask);
// it is written once, before the handler can read it, and only read after.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

/// Size of the alternate signal stack given to a driver thread.
const ALTSTACK_SIZE: usize = 64 * 1024;

/// Installs the handler (once per process) and gives the calling thread an
/// alternate signal stack if it has none. Failures leave the default
/// behaviour (a bare `SIGSEGV`), nothing worse.
pub(super) fn prepare() {
    PREVIOUS.get_or_init(|| [install(libc::SIGSEGV), install(libc::SIGBUS)]);
    if !ALTSTACK.with(Cell::get) {
        ALTSTACK.with(|a| a.set(altstack()));
    }
}

fn install(signal: libc::c_int) -> Previous {
    // SAFETY: zeroed `sigaction`s are valid (no handler, empty mask, no
    // flags); `sigaction` reads `new` and writes `old`, both valid for the
    // call, and `on_fault` has the signature SA_SIGINFO requires.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_fault as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigemptyset(&mut new.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, &new, &mut old) != 0 {
            old.sa_sigaction = libc::SIG_DFL;
        }
        Previous {
            signal,
            action: old,
        }
    }
}

/// Whether the calling thread has (or now got) an alternate signal stack.
fn altstack() -> bool {
    // SAFETY: `sigaltstack` with a null new stack only reads the current one
    // into `cur`. The new stack is a fresh private mapping, never unmapped
    // (a driver thread lives on in the pool; at most a few exist).
    unsafe {
        let mut cur: libc::stack_t = std::mem::zeroed();
        if libc::sigaltstack(std::ptr::null(), &mut cur) == 0
            && cur.ss_flags & libc::SS_DISABLE == 0
        {
            return true;
        }
        let mem = libc::mmap(
            std::ptr::null_mut(),
            ALTSTACK_SIZE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if mem == libc::MAP_FAILED {
            return false;
        }
        let stack = libc::stack_t {
            ss_sp: mem,
            ss_flags: 0,
            ss_size: ALTSTACK_SIZE,
        };
        libc::sigaltstack(&stack, std::ptr::null_mut()) == 0
    }
}

/// Participant `id` (of the run with `seed`) runs on the stack whose guard
/// page starts at `limit`.
pub(super) fn enter(limit: usize, id: usize, seed: u64) {
    static PAGE: OnceLock<usize> = OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    let page = *PAGE.get_or_init(|| {
        usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096)
    });
    GUARD.with(|g| g.set((limit, limit.saturating_add(page), id, seed)));
}

/// No participant runs on this thread.
pub(super) fn leave() {
    GUARD.with(|g| g.set((0, 0, 0, 0)));
}

/// A fixed buffer that `write!` fills without allocating (a signal handler
/// may not allocate).
struct Buf {
    bytes: [u8; 256],
    len: usize,
}

impl std::fmt::Write for Buf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

extern "C" fn on_fault(signal: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid `siginfo_t` to an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    let (lo, hi, id, seed) = GUARD.with(Cell::get);
    if lo <= addr && addr < hi {
        use std::fmt::Write as _;
        let mut b = Buf {
            bytes: [0; 256],
            len: 0,
        };
        let _ = write!(
            b,
            "\nmqtwin: participant {id} of a deterministic run (seed {seed}) overflowed its \
             stack ({} bytes; RUST_MIN_STACK sets the size)\n",
            super::coro::stack_size()
        );
        // SAFETY: writes `b.len` initialised bytes of `b` to stderr.
        unsafe { libc::write(2, b.bytes.as_ptr().cast(), b.len) };
    }
    if let Some(prev) = PREVIOUS.get() {
        if let Some(p) = prev.iter().find(|p| p.signal == signal) {
            // SAFETY: restores a disposition `sigaction` returned earlier;
            // returning re-runs the faulting access, which then goes there.
            unsafe { libc::sigaction(signal, &p.action, std::ptr::null_mut()) };
            return;
        }
    }
    // SAFETY: resetting to the default disposition is always valid.
    unsafe { libc::signal(signal, libc::SIG_DFL) };
}
