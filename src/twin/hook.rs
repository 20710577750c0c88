//! A crate-internal hook run when a twin call on this thread is about to
//! block (after every check, before it joins a waiter list, with the
//! queue's lock held). The remote server uses it to hand its connection's
//! reading to another thread, so that a call runs where it was read and
//! only a call that really waits costs a thread hand-off.

use std::cell::RefCell;

use crate::error::Error;

/// The hook: `Err` ends the call with that error before it waits (nothing
/// sent, received or queued). It must not call into the twin.
pub(crate) type BlockHook = Box<dyn FnMut() -> Result<(), Error>>;

thread_local! {
    static HOOK: RefCell<Option<BlockHook>> = const { RefCell::new(None) };
}

/// Runs `f` with `hook` installed on this thread; returns `f`'s result and
/// whether the hook ran.
pub(crate) fn with_block_hook<T>(hook: BlockHook, f: impl FnOnce() -> T) -> (T, bool) {
    HOOK.with(|h| *h.borrow_mut() = Some(hook));
    let out = f();
    let still = HOOK.with(|h| h.borrow_mut().take()).is_some();
    (out, !still)
}

/// Called by the twin where a call is about to block. A hook runs at most
/// once per installation.
pub(crate) fn before_block() -> Result<(), Error> {
    match HOOK.with(|h| h.borrow_mut().take()) {
        Some(mut hook) => hook(),
        None => Ok(()),
    }
}
