//! Noticing that the config file may have changed: takes the file's path,
//! gives a [`Notify`] that fires on any change in the directory that holds
//! it. Editors replace files by rename or through backup copies, and a
//! Kubernetes ConfigMap volume swaps a `..data` symlink, so the directory
//! is watched, not the file. A symlinked file's target directory is watched
//! too. Whether the content really changed is decided by the caller, by
//! comparing a hash of what it reads, with a slow poll as a safety net.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use notify::{RecursiveMode, Watcher as _};
use sha2::{Digest as _, Sha256};
use tokio::sync::Notify;

/// Keeps the watch alive; dropping it stops watching.
pub struct Watch {
    watcher: notify::RecommendedWatcher,
    pub dirs: Vec<PathBuf>,
}

/// Watch the directories that can change `path`; `changed` is notified
/// for every event in them.
pub fn watch(path: &Path, changed: Arc<Notify>) -> notify::Result<Watch> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error (queue overflow) may hide a change: look anyway.
        if event.as_ref().map_or(true, |e| !e.kind.is_access()) {
            changed.notify_one();
        }
    })?;
    let mut dirs = vec![parent(path)];
    if let Ok(real) = std::fs::canonicalize(path) {
        let dir = parent(&real);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        watcher.watch(dir, RecursiveMode::NonRecursive)?;
    }
    Ok(Watch { watcher, dirs })
}

impl Watch {
    /// Watch the directory `path` resolves to now, if it is a new one: a
    /// file that became a symlink, or whose link was pointed elsewhere.
    pub fn follow(&mut self, path: &Path) {
        let Ok(real) = std::fs::canonicalize(path) else {
            return;
        };
        let dir = parent(&real);
        if self.dirs.contains(&dir) {
            return;
        }
        match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
            Ok(()) => self.dirs.push(dir),
            Err(e) => tracing::warn!("cannot watch {} for changes: {e}", dir.display()),
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A content hash to tell a real change from a touch.
pub fn hash(text: &[u8]) -> [u8; 32] {
    Sha256::digest(text).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn fires(n: &Notify) -> bool {
        tokio::time::timeout(Duration::from_secs(5), n.notified())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_rename_over_the_file_and_a_symlink_swap_are_seen() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let data1 = dir.path().join("..2026_1");
        std::fs::create_dir(&data1).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(data1.join("m.kdl"), "a").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("..2026_1", dir.path().join("..data")).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("..data/m.kdl", dir.path().join("m.kdl"))
            .unwrap_or_else(|e| panic!("{e}"));
        let n = Arc::new(Notify::new());
        let _w = watch(&dir.path().join("m.kdl"), n.clone()).unwrap_or_else(|e| panic!("{e}"));
        // The kubelet's swap: a new data dir, a new symlink renamed over `..data`.
        let data2 = dir.path().join("..2026_2");
        std::fs::create_dir(&data2).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(data2.join("m.kdl"), "b").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink("..2026_2", dir.path().join("..data_tmp"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(fires(&n).await, "no event for the ..data swap");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("m.kdl")).ok().as_deref(),
            Some("b")
        );
    }

    #[tokio::test]
    async fn a_file_that_becomes_a_link_is_followed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let elsewhere = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("m.kdl");
        std::fs::write(&file, "a").unwrap_or_else(|e| panic!("{e}"));
        let n = Arc::new(Notify::new());
        let mut w = watch(&file, n.clone()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(elsewhere.path().join("real.kdl"), "b").unwrap_or_else(|e| panic!("{e}"));
        std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(elsewhere.path().join("real.kdl"), &file)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(fires(&n).await, "no event for the swap");
        w.follow(&file);
        while tokio::time::timeout(Duration::from_millis(100), n.notified())
            .await
            .is_ok()
        {}
        std::fs::write(elsewhere.path().join("real.kdl"), "c").unwrap_or_else(|e| panic!("{e}"));
        assert!(fires(&n).await, "no event for a change of the link's target");
    }

    #[test]
    fn hash_tells_contents_apart() {
        assert_eq!(hash(b"x"), hash(b"x"));
        assert_ne!(hash(b"x"), hash(b"y"));
    }
}
