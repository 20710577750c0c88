//! The threads a server starts (connection readers, workers), so that
//! stopping it can wait for them: after `Server::shutdown` (or its drop)
//! no thread of the server is left running.

use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Handles of the threads started and not yet seen finished.
#[derive(Default)]
pub(crate) struct Threads(Mutex<Vec<JoinHandle<()>>>);

impl Threads {
    /// Starts `f` on a new thread named `name`.
    pub(crate) fn spawn(
        &self,
        name: &str,
        f: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let h = std::thread::Builder::new().name(name.into()).spawn(f)?;
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Finished threads are let go as new ones start: the list stays
        // as long as the threads alive.
        all.retain(|h| !h.is_finished());
        all.push(h);
        Ok(())
    }

    /// Joins every thread (also those started meanwhile), waiting at most
    /// `limit` for those still running; the rest are left to finish alone.
    pub(crate) fn join_all(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            let all = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
            if all.is_empty() {
                return;
            }
            let mut running = Vec::new();
            for h in all {
                if h.is_finished() {
                    let _ = h.join();
                } else {
                    running.push(h);
                }
            }
            if running.is_empty() {
                continue;
            }
            if start.elapsed() > limit {
                return;
            }
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(running);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
