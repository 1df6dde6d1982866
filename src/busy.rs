//! Blocking work that outlives its timeout. An async step that gives up
//! on work running on the blocking pool raises a flag the work checks
//! ([`CancelOnDrop`]), and the directory the work uses (a fetch cache, an
//! automation workspace, a directory target) stays marked busy until the
//! work has really stopped ([`BusyGuard`]): the next attempt fails fast and
//! is retried, and two never share a directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Raises its flag when dropped. An async step holds one while it awaits
/// blocking work, so that the work stops when the step is given up (its
/// future dropped at the timeout).
pub(crate) struct CancelOnDrop(pub(crate) Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

static BUSY: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// `dir` marked busy until dropped.
pub(crate) struct BusyGuard(PathBuf);

impl BusyGuard {
    /// `None` when an operation on `dir` is still in flight.
    pub(crate) fn take(dir: &Path) -> Option<BusyGuard> {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        busy.get_or_insert_with(HashSet::new)
            .insert(dir.to_path_buf())
            .then(|| BusyGuard(dir.to_path_buf()))
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(set) = busy.as_mut() {
            set.remove(&self.0);
        }
    }
}
