//! The files of a build, confined to one root directory: paths are
//! normalised relative to the root, `..` may not climb above it, symlinks
//! are followed only while they stay inside it, every file is read at most
//! once (and cached), no file may exceed [`MAX_FILE_BYTES`] and all of them
//! together [`MAX_TOTAL_BYTES`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use super::error::{Error, Result, code};
use crate::walk::{MAX_FILE_BYTES, MAX_TOTAL_BYTES, read_capped};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Dir,
    Missing,
}

/// What a file is read for, when it may be SOPS-encrypted: Flux decrypts
/// the files a `secretGenerator` reads and patch files before the build.
#[derive(Debug, Clone, Copy)]
pub enum Use<'k> {
    /// `secretGenerator` `files`: the format comes from the data key.
    SecretFile { key: &'k str },
    /// `secretGenerator` `envs`.
    SecretEnv,
    /// A patch file.
    Patch,
}

/// Decrypts a file's bytes for a [`Use`]: `Ok(None)` when it is not
/// encrypted; `Err` gives the message (naming no value) and a help line.
pub trait Decrypt {
    fn decrypt(
        &self,
        file: &str,
        data: &[u8],
        used: Use<'_>,
    ) -> std::result::Result<Option<Vec<u8>>, (String, Option<String>)>;
}

pub struct Loader<'d> {
    /// Files that exist only in memory (a generated kustomization), by
    /// path relative to the root.
    virtual_files: HashMap<String, Arc<String>>,
    decrypt: Option<&'d dyn Decrypt>,
    /// kustomize's load restrictor: files only from a kustomization's own
    /// directory and below (kubectl's default; Flux turns it off).
    pub restricted: bool,
    root: PathBuf,
    /// Paths in messages are shown relative to this directory (relative to
    /// the root), when set.
    display: Option<String>,
    cache: RefCell<HashMap<String, Arc<String>>>,
    total: Cell<u64>,
    file_limit: u64,
    total_limit: u64,
}

/// `a/b` joined with `c` (`""` is the root).
pub fn join(dir: &str, path: &str) -> String {
    if dir.is_empty() {
        path.to_string()
    } else if path.is_empty() {
        dir.to_string()
    } else {
        format!("{dir}/{path}")
    }
}

/// `path` lies in `dir` or below it.
pub fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || (path.starts_with(dir) && path.as_bytes().get(dir.len()) == Some(&b'/'))
}

impl<'d> Loader<'d> {
    pub fn new(root: &Path) -> Result<Loader<'d>> {
        let root = fs::canonicalize(root).map_err(|e| io_error(root, e))?;
        Ok(Loader {
            virtual_files: HashMap::new(),
            decrypt: None,
            restricted: true,
            root,
            display: None,
            cache: RefCell::new(HashMap::new()),
            total: Cell::new(0),
            file_limit: MAX_FILE_BYTES,
            total_limit: MAX_TOTAL_BYTES,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Show paths in messages relative to `base` (a path relative to the root).
    /// A file that exists only in memory, at `rel` (relative to the root).
    pub fn with_virtual_file(mut self, rel: &str, text: String) -> Loader<'d> {
        self.virtual_files.insert(rel.to_string(), Arc::new(text));
        self
    }

    /// Decrypt secret generator sources and patch files with `d`.
    /// Files may come from anywhere in the root, as with kustomize's
    /// `--load-restrictor LoadRestrictionsNone` (what Flux builds with).
    pub fn unrestricted(mut self) -> Loader<'d> {
        self.restricted = false;
        self
    }

    pub fn decrypting(mut self, d: &'d dyn Decrypt) -> Loader<'d> {
        self.decrypt = Some(d);
        self
    }

    pub fn showing_from(mut self, base: &str) -> Loader<'d> {
        self.display = Some(base.to_string());
        self
    }

    /// A path (relative to the root) as messages show it.
    pub fn shown(&self, rel: &str) -> String {
        let Some(base) = &self.display else {
            return if rel.is_empty() {
                ".".into()
            } else {
                rel.to_string()
            };
        };
        let b: Vec<&str> = base.split('/').filter(|s| !s.is_empty()).collect();
        let r: Vec<&str> = rel.split('/').filter(|s| !s.is_empty()).collect();
        let common = b.iter().zip(&r).take_while(|(x, y)| x == y).count();
        let mut parts: Vec<&str> = vec![".."; b.len() - common];
        parts.extend(&r[common..]);
        if parts.is_empty() {
            ".".into()
        } else {
            parts.join("/")
        }
    }

    #[cfg(test)]
    pub fn with_limits(mut self, file: u64, total: u64) -> Loader<'d> {
        self.file_limit = file;
        self.total_limit = total;
        self
    }

    /// The real path (relative to the root) of `path` as written in a file
    /// of directory `dir`. `None` when it leads outside the root.
    pub fn resolve(&self, dir: &str, path: &str) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        let start = if Path::new(path).is_absolute() {
            let rel = Path::new(path).strip_prefix(&self.root).ok()?;
            rel.to_string_lossy().into_owned()
        } else {
            join(dir, path)
        };
        let mut pending: Vec<String> = Vec::new();
        push_components(&start, &mut pending)?;
        pending.reverse();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                parts.pop()?;
                continue;
            }
            parts.push(part);
            let here = self.root.join(parts.join("/"));
            let Ok(meta) = fs::symlink_metadata(&here) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                hops += 1;
                if hops > 40 {
                    return None;
                }
                let target = fs::read_link(&here).ok()?;
                parts.pop();
                let target = if target.is_absolute() {
                    target
                        .strip_prefix(&self.root)
                        .ok()?
                        .to_string_lossy()
                        .into_owned()
                } else {
                    join(&parts.join("/"), &target.to_string_lossy())
                };
                parts.clear();
                let mut more = Vec::new();
                push_components(&target, &mut more)?;
                more.reverse();
                pending.extend(more);
            }
        }
        Some(parts.join("/"))
    }

    pub fn kind(&self, rel: &str) -> Kind {
        if self.virtual_files.contains_key(rel) {
            return Kind::File;
        }
        match fs::metadata(self.root.join(rel)) {
            Ok(m) if m.is_dir() => Kind::Dir,
            Ok(m) if m.is_file() => Kind::File,
            _ => Kind::Missing,
        }
    }

    /// The text of a file (a real path relative to the root).
    pub fn read(&self, rel: &str) -> Result<Arc<String>> {
        if let Some(text) = self.virtual_files.get(rel) {
            return Ok(text.clone());
        }
        if let Some(text) = self.cache.borrow().get(rel) {
            return Ok(text.clone());
        }
        let full = self.root.join(rel);
        let bytes = match read_capped(&full, self.file_limit) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(self.too_large(rel)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::in_file(code::NOT_FOUND, rel, "no such file"));
            }
            Err(e) => return Err(io_error(&full, e)),
        };
        self.count(rel, &bytes)?;
        let text =
            String::from_utf8(bytes).map_err(|_| Error::in_file(code::INVALID, rel, "not UTF-8 text"))?;
        let text = match text.strip_prefix('\u{feff}') {
            Some(t) => t.to_string(),
            None => text,
        };
        let text = Arc::new(text);
        self.cache.borrow_mut().insert(rel.to_string(), text.clone());
        Ok(text)
    }

    /// The bytes of a file read for `used`, decrypted when it is
    /// SOPS-encrypted and the loader decrypts.
    pub fn read_for(&self, rel: &str, used: Use<'_>) -> Result<Vec<u8>> {
        let bytes = match self.virtual_files.get(rel) {
            Some(text) => text.as_bytes().to_vec(),
            None => self.read_bytes(rel)?,
        };
        let Some(d) = self.decrypt else { return Ok(bytes) };
        match d.decrypt(rel, &bytes, used) {
            Ok(Some(plain)) => Ok(plain),
            Ok(None) => Ok(bytes),
            Err((message, help)) => {
                let mut e = Error::in_file(code::INVALID, rel, message);
                e.help = help;
                Err(e)
            }
        }
    }

    /// The bytes of a file that need not be text (generator sources).
    pub fn read_bytes(&self, rel: &str) -> Result<Vec<u8>> {
        let full = self.root.join(rel);
        let bytes = match read_capped(&full, self.file_limit) {
            Ok(Some(b)) => b,
            Ok(None) => return Err(self.too_large(rel)),
            Err(e) => return Err(io_error(&full, e)),
        };
        self.count(rel, &bytes)?;
        Ok(bytes)
    }

    fn too_large(&self, rel: &str) -> Error {
        Error::in_file(
            code::TOO_LARGE,
            rel,
            format!("the file is larger than {} bytes", self.file_limit),
        )
    }

    /// Count a file's bytes into the build's total, which has a cap.
    fn count(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let total = self.total.get() + bytes.len() as u64;
        if total > self.total_limit {
            return Err(Error::in_file(
                code::TOO_LARGE,
                rel,
                format!(
                    "the files of the build add up to more than {} bytes",
                    self.total_limit
                ),
            ));
        }
        self.total.set(total);
        Ok(())
    }
}

/// The normal components of a relative path; `None` for a NUL byte.
fn push_components(path: &str, out: &mut Vec<String>) -> Option<()> {
    if path.contains('\0') {
        return None;
    }
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p.to_string_lossy().into_owned()),
            Component::ParentDir => out.push("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    Some(())
}

fn io_error(path: &Path, e: io::Error) -> Error {
    Error::new(code::IO, format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("a/b")).unwrap();
        fs::write(dir.path().join("a/b/f.yaml"), "x").unwrap();
        let l = Loader::new(dir.path()).unwrap();
        assert_eq!(l.resolve("a", "b/../b/./f.yaml").as_deref(), Some("a/b/f.yaml"));
        assert_eq!(l.resolve("a", "..").as_deref(), Some(""));
        assert_eq!(l.resolve("a", "../.."), None);
        assert_eq!(l.resolve("", "/etc/passwd"), None);
        let abs = l.root.join("a/b").to_string_lossy().into_owned();
        assert_eq!(l.resolve("", &abs).as_deref(), Some("a/b"));
        assert_eq!(l.kind("a/b"), Kind::Dir);
        assert_eq!(l.kind("a/b/f.yaml"), Kind::File);
        assert_eq!(l.kind("a/c"), Kind::Missing);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_only_inside() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("base")).unwrap();
        fs::write(dir.path().join("base/x.yaml"), "x").unwrap();
        std::os::unix::fs::symlink("base", dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink("../../..", dir.path().join("base/up")).unwrap();
        let l = Loader::new(dir.path()).unwrap();
        assert_eq!(l.resolve("", "link/x.yaml").as_deref(), Some("base/x.yaml"));
        assert_eq!(l.resolve("", "out"), None);
        assert_eq!(l.resolve("", "base/up/etc"), None);
    }

    #[test]
    fn size_caps() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a"), "12345").unwrap();
        fs::write(dir.path().join("b"), "1234567890").unwrap();
        fs::write(dir.path().join("c"), "123").unwrap();
        let l = Loader::new(dir.path()).unwrap().with_limits(6, 7);
        assert_eq!(l.read("a").unwrap().as_str(), "12345");
        assert_eq!(l.read("a").unwrap().as_str(), "12345");
        assert!(
            l.read("b")
                .unwrap_err()
                .to_string()
                .contains("larger than 6 bytes")
        );
        assert!(l.read("c").unwrap_err().to_string().contains("more than 7 bytes"));
    }
}
