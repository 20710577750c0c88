//! Helpers shared by the kernel test binaries outside the contract suite
//! (`tests/contract/harness.rs` has its own, richer harness).

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use mqtwin::posix::Kernel;
use mqtwin::Namespace;

/// A queue name no other test (of this or another concurrent run) uses:
/// `/mqtwin-<pid>-<tag>-<n>`.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/mqtwin-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Unlinks the kernel queue `name` when dropped: when the test ends, also
/// when it fails.
pub struct Unlink(pub String);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = Kernel.unlink(&self.0);
    }
}
