//! Artifacts: immutable snapshots of a source at one revision, as plain
//! directories under `state-dir/artifacts/<source>/<key>/`, where `<key>`
//! is derived from the revision (content-addressed: one revision, one
//! directory).
//!
//! Every fetcher fills an artifact through a [`Writer`], which treats what
//! it is given as hostile: paths are confined to the artifact (no absolute
//! paths, no `..`, nothing through a link), only regular files and
//! directories are written, and total bytes and file count are capped. A
//! writer fills a staging directory that becomes the artifact by one
//! rename, so a half-written artifact is never visible; a failed fill
//! leaves nothing behind.

use std::fs;
use std::io::{self, Read, Write as _};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use super::Error;

pub use crate::config::Limits;

/// A finished snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// `main@sha1:<hex>`, `v1.2.3@sha1:<hex>`, `6.5.0@sha256:<hex>`.
    pub revision: String,
    pub dir: PathBuf,
    /// `sha256:<hex>` over the sorted paths, modes and contents.
    pub checksum: String,
}

/// How many artifacts of a source are kept besides the current one.
pub const KEEP: usize = 2;

/// The artifacts of every source, under one directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Store {
        Store {
            root: state_dir.join("artifacts"),
        }
    }

    fn source_dir(&self, source: &str) -> PathBuf {
        self.root.join(source)
    }

    /// The directory an artifact of `revision` lives in.
    pub fn dir_for(&self, source: &str, revision: &str) -> PathBuf {
        self.source_dir(source).join(key(revision))
    }

    /// The artifact for `revision`, if it was completed before.
    pub fn existing(&self, source: &str, revision: &str) -> Option<Artifact> {
        let dir = self.dir_for(source, revision);
        let meta = fs::read_to_string(meta_path(&dir)).ok()?;
        let mut lines = meta.lines();
        let (stored_revision, checksum) = (lines.next()?, lines.next()?);
        (stored_revision == revision && dir.is_dir()).then(|| Artifact {
            revision: revision.to_string(),
            dir,
            checksum: checksum.to_string(),
        })
    }

    /// Build the artifact for `revision` with `fill`, unless it exists.
    /// `ignore` holds gitignore-style patterns; `.sourceignore` files in
    /// the tree add more, with Flux's rules and defaults
    /// ([`super::ignore`]). Raising `cancel` (the fetch's timeout
    /// passed) stops the writing and the checksum at their next read.
    pub fn create(
        &self,
        source: &str,
        revision: &str,
        ignore: &[String],
        limits: Limits,
        cancel: &AtomicBool,
        fill: impl FnOnce(&mut Writer<'_>) -> Result<(), Error>,
    ) -> Result<Artifact, Error> {
        if let Some(existing) = self.existing(source, revision) {
            return Ok(existing);
        }
        let parent = self.source_dir(source);
        fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&parent)
            .map_err(|e| Error::io(&parent, e))?;
        let mut writer = Writer::new(staging.path(), limits, cancel);
        fill(&mut writer)?;
        prune_ignored(staging.path(), ignore)?;
        let checksum = checksum(staging.path(), cancel)?;

        let dir = self.dir_for(source, revision);
        if dir.exists() {
            // An earlier run died between rename and metadata: start over.
            fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        }
        let staged = staging.keep();
        if let Err(e) = fs::rename(&staged, &dir) {
            let _ = fs::remove_dir_all(&staged);
            return Err(Error::io(&dir, e));
        }
        crate::atomic::write(&meta_path(&dir), format!("{revision}\n{checksum}\n").as_bytes())
            .map_err(|e| Error::io(&dir, e))?;
        Ok(Artifact {
            revision: revision.to_string(),
            dir,
            checksum,
        })
    }

    /// Remove all but the newest `keep` artifacts of `source` (and any
    /// staging left by a crash), never `current`.
    pub fn gc(&self, source: &str, current: &Path, keep: usize) -> Result<(), Error> {
        let parent = self.source_dir(source);
        let Ok(entries) = fs::read_dir(&parent) else {
            return Ok(());
        };
        let mut artifacts = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".staging-") {
                let _ = fs::remove_dir_all(&path);
                continue;
            }
            if name.ends_with(".meta") || path == current || !path.is_dir() {
                continue;
            }
            let modified = fs::metadata(meta_path(&path))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
            artifacts.push((modified, path));
        }
        artifacts.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        for (_, path) in artifacts.into_iter().skip(keep) {
            let _ = fs::remove_file(meta_path(&path));
            fs::remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        }
        Ok(())
    }
}

/// A short, filesystem-safe key for a revision.
fn key(revision: &str) -> String {
    let digest = Sha256::digest(revision.as_bytes());
    hex(&digest[..12])
}

fn meta_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".meta");
    dir.with_file_name(name)
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Writes files into a staging directory, refusing anything that could
/// escape it or exhaust the disk.
pub struct Writer<'a> {
    root: PathBuf,
    limits: Limits,
    bytes: u64,
    files: u64,
    cancel: &'a AtomicBool,
}

impl<'a> Writer<'a> {
    fn new(root: &Path, limits: Limits, cancel: &'a AtomicBool) -> Writer<'a> {
        Writer {
            root: root.to_path_buf(),
            limits,
            bytes: 0,
            files: 0,
            cancel,
        }
    }

    /// The bytes still allowed before the artifact is full.
    pub fn budget(&self) -> u64 {
        self.limits.max_bytes - self.bytes
    }

    /// A rejection of `entry` for making the artifact too large.
    pub fn too_large(&self, entry: &str) -> Error {
        Error::Rejected {
            entry: entry.to_string(),
            reason: format!("the artifact would exceed {} bytes", self.limits.max_bytes),
        }
    }

    /// The staging directory (read-only use: write through the writer).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Write a regular file at `path` (relative, `/`-separated) from
    /// `content`, which may yield at most the remaining byte budget.
    pub fn file(&mut self, path: &str, executable: bool, content: &mut dyn Read) -> Result<(), Error> {
        let target = self.confine(path)?;
        self.files += 1;
        if self.files > self.limits.max_files {
            return Err(Error::Rejected {
                entry: path.to_string(),
                reason: format!("more than {} files", self.limits.max_files),
            });
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => Error::Rejected {
                    entry: path.to_string(),
                    reason: "the same path appears twice".into(),
                },
                _ => Error::io(&target, e),
            })?;
        let budget = self.budget();
        // Read one byte past the budget to tell "exactly full" from "too big".
        let mut content = Cancellable {
            inner: content.take(budget + 1),
            cancel: self.cancel,
        };
        let written = io::copy(&mut content, &mut out).map_err(|e| Error::io(&target, e))?;
        self.bytes += written;
        if written > budget {
            return Err(self.too_large(path));
        }
        #[cfg(unix)]
        if executable {
            use std::os::unix::fs::PermissionsExt as _;
            fs::set_permissions(&target, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io(&target, e))?;
        }
        #[cfg(not(unix))]
        let _ = executable;
        out.flush().map_err(|e| Error::io(&target, e))?;
        Ok(())
    }

    /// Create a directory (and its parents).
    pub fn dir(&mut self, path: &str) -> Result<(), Error> {
        let target = self.confine(path)?;
        fs::create_dir_all(&target).map_err(|e| Error::io(&target, e))
    }

    /// The place for `path` inside the root, or a rejection naming it.
    fn confine(&self, path: &str) -> Result<PathBuf, Error> {
        let reject = |reason: &str| Error::Rejected {
            entry: path.to_string(),
            reason: reason.to_string(),
        };
        if path.contains('\0') {
            return Err(reject("the path contains a NUL byte"));
        }
        let rel = Path::new(path);
        let mut out = self.root.clone();
        for c in rel.components() {
            match c {
                Component::Normal(part) => out.push(part),
                Component::CurDir => {}
                Component::ParentDir => return Err(reject("the path leaves the artifact with `..`")),
                Component::RootDir | Component::Prefix(_) => return Err(reject("the path is absolute")),
            }
        }
        if out == self.root {
            return Err(reject("the path is empty"));
        }
        // Nothing on the way may be a link (only files and dirs are ever
        // written, but check rather than assume).
        let mut at = self.root.clone();
        for c in out.strip_prefix(&self.root).unwrap_or(Path::new("")).components() {
            at.push(c);
            if let Ok(meta) = fs::symlink_metadata(&at)
                && meta.file_type().is_symlink()
            {
                return Err(reject("the path goes through a link"));
            }
        }
        Ok(out)
    }
}

/// Delete what Flux's ignore rules exclude ([`super::ignore`]).
fn prune_ignored(root: &Path, patterns: &[String]) -> Result<(), Error> {
    let rules = super::ignore::Rules::load(root, patterns)?;
    super::ignore::prune(root, &rules)
}

/// `sha256:<hex>` over every file's relative path, mode and content, in
/// path order: equal trees have equal checksums wherever they live. Paths
/// are hashed as the bytes of their components, exactly as written (a `\\`
/// in a name is part of the name); links are never followed.
pub fn checksum(root: &Path, cancel: &AtomicBool) -> Result<String, Error> {
    let mut files = Vec::new();
    collect(root, PathBuf::new(), &mut files)?;
    files.sort();
    let mut hasher = Sha256::new();
    for rel in files {
        let path = root.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io(&path, e))?;
        if !meta.is_file() {
            return Err(Error::io(&path, io::Error::other("not a regular file")));
        }
        #[cfg(unix)]
        let mode = {
            use std::os::unix::fs::PermissionsExt as _;
            if meta.permissions().mode() & 0o111 != 0 {
                "x"
            } else {
                "-"
            }
        };
        #[cfg(not(unix))]
        let mode = "-";
        hasher.update(rel_bytes(&rel));
        hasher.update([0]);
        hasher.update(mode.as_bytes());
        hasher.update(meta.len().to_le_bytes());
        let file = fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut content = Cancellable {
            // The length was hashed: never read past it (the file is ours, but
            // a reader that never ends must not spin for ever).
            inner: file.take(meta.len()),
            cancel,
        };
        io::copy(&mut content, &mut HashWriter(&mut hasher)).map_err(|e| Error::io(&path, e))?;
    }
    Ok(format!("sha256:{}", hex(&hasher.finalize())))
}

struct HashWriter<'a>(&'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `/`-joined component bytes of a relative path, for hashing.
fn rel_bytes(rel: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, c) in rel.components().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_os_str().as_encoded_bytes());
    }
    out
}

/// Every regular file under `root.join(rel)`, as paths relative to `root`.
fn collect(root: &Path, rel: PathBuf, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let dir = root.join(&rel);
    let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(&dir, e))?;
        let ty = entry.file_type().map_err(|e| Error::io(&entry.path(), e))?;
        let child = rel.join(entry.file_name());
        if ty.is_dir() {
            collect(root, child, out)?;
        } else if ty.is_file() {
            out.push(child);
        }
    }
    Ok(())
}

/// A reader that fails once `cancel` is raised.
struct Cancellable<'a, R> {
    inner: R,
    cancel: &'a AtomicBool,
}

impl<R: Read> Read for Cancellable<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not `Interrupted`: io::copy would retry that.
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the fetch was given up at its timeout",
            ));
        }
        self.inner.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static KEEP_GOING: AtomicBool = AtomicBool::new(false);

    fn write_all(w: &mut Writer, files: &[(&str, &str)]) -> Result<(), Error> {
        for (path, content) in files {
            w.file(path, false, &mut content.as_bytes())?;
        }
        Ok(())
    }

    #[test]
    fn creates_once_per_revision_and_checksums_content() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::new(state.path());
        let files = [("a.yaml", "a: 1\n"), ("dir/b.yaml", "b: 2\n")];
        let first = store
            .create("src", "main@sha1:1", &[], Limits::default(), &KEEP_GOING, |w| {
                write_all(w, &files)
            })
            .unwrap();
        assert_eq!(
            fs::read_to_string(first.dir.join("dir/b.yaml")).unwrap(),
            "b: 2\n"
        );
        let mut called = false;
        let again = store
            .create("src", "main@sha1:1", &[], Limits::default(), &KEEP_GOING, |_| {
                called = true;
                Ok(())
            })
            .unwrap();
        assert!(!called, "an existing revision is not rebuilt");
        assert_eq!(again, first);
        // The same tree elsewhere has the same checksum.
        let other = store
            .create("src", "main@sha1:2", &[], Limits::default(), &KEEP_GOING, |w| {
                write_all(w, &files)
            })
            .unwrap();
        assert_ne!(other.dir, first.dir);
        assert_eq!(other.checksum, first.checksum);
    }

    #[test]
    fn hostile_paths_are_rejected_and_leave_nothing() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::new(state.path());
        for bad in ["../../etc/x", "/etc/passwd", "a/../../x", ""] {
            let err = store
                .create("src", "r", &[], Limits::default(), &KEEP_GOING, |w| {
                    w.file("ok.yaml", false, &mut "x".as_bytes())?;
                    w.file(bad, false, &mut "evil".as_bytes())
                })
                .unwrap_err();
            assert!(
                matches!(&err, Error::Rejected { entry, .. } if entry == bad),
                "{err:?}"
            );
        }
        assert!(store.existing("src", "r").is_none());
        let left: Vec<_> = fs::read_dir(state.path().join("artifacts/src"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "staging was not cleaned up: {left:?}");
        assert!(!state.path().join("etc").exists());
    }

    #[test]
    fn limits_are_enforced() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::new(state.path());
        let limits = Limits {
            max_bytes: 10,
            max_files: 2,
        };
        let too_big = store.create("s", "r1", &[], limits, &KEEP_GOING, |w| {
            w.file("a", false, &mut [0u8; 11].as_slice())
        });
        assert!(matches!(too_big, Err(Error::Rejected { .. })));
        let exact = store.create("s", "r2", &[], limits, &KEEP_GOING, |w| {
            w.file("a", false, &mut [0u8; 10].as_slice())
        });
        assert!(exact.is_ok());
        let too_many = store.create("s", "r3", &[], limits, &KEEP_GOING, |w| {
            write_all(w, &[("a", ""), ("b", ""), ("c", "")])
        });
        assert!(matches!(too_many, Err(Error::Rejected { entry, .. }) if entry == "c"));
    }

    #[test]
    fn ignore_patterns_and_sourceignore_prune_files() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::new(state.path());
        let a = store
            .create(
                "s",
                "r",
                &["docs/**".into(), "*.md".into()],
                Limits::default(),
                &KEEP_GOING,
                |w| {
                    write_all(
                        w,
                        &[
                            ("apps/a.yaml", "a"),
                            ("docs/x.yaml", "x"),
                            ("README.md", "r"),
                            ("secret/key.yaml", "k"),
                            (".sourceignore", "secret/\n"),
                        ],
                    )
                },
            )
            .unwrap();
        assert!(a.dir.join("apps/a.yaml").exists());
        assert!(!a.dir.join("docs/x.yaml").exists());
        assert!(!a.dir.join("README.md").exists());
        assert!(!a.dir.join("secret").exists());
    }

    #[test]
    fn gc_keeps_the_newest_and_the_current() {
        let state = tempfile::tempdir().unwrap();
        let store = Store::new(state.path());
        let mut made = Vec::new();
        for i in 0..5 {
            let a = store
                .create("s", &format!("r{i}"), &[], Limits::default(), &KEEP_GOING, |w| {
                    write_all(w, &[("f", "x")])
                })
                .unwrap();
            // Distinct modification times, oldest first.
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000 + i);
            fs::File::options()
                .write(true)
                .open(meta_path(&a.dir))
                .unwrap()
                .set_modified(t)
                .unwrap();
            made.push(a);
        }
        store.gc("s", &made[0].dir, 2).unwrap();
        let alive: Vec<bool> = made.iter().map(|a| a.dir.exists()).collect();
        assert_eq!(alive, [true, false, false, true, true]);
    }
}
