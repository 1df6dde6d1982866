//! Reading an artifact's files, shared by rendering, kustomize, sops and
//! the setters: one directory walk and one capped read.
//!
//! Artifacts are hostile input. The walk never follows a symlink (it reads
//! each entry's own type), skips hidden files and directories, and gives
//! paths relative to the root, `/`-separated, in byte order — the order
//! Flux and kustomize read a directory in. Reads stop one byte past their
//! cap, so a huge or endless file costs at most the cap.

use std::fs;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

/// The largest file read from an artifact.
pub const MAX_FILE_BYTES: u64 = 8 << 20;
/// The most bytes read from an artifact for one app.
pub const MAX_TOTAL_BYTES: u64 = 64 << 20;

/// What the walk found: a file, or a directory `stop` asked to keep
/// whole instead of descending into it.
#[derive(Debug, PartialEq, Eq)]
pub enum Entry {
    File(String),
    Dir(String),
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::File(p) | Entry::Dir(p) => p,
        }
    }
}

/// The files under `root/start` whose name `want` accepts, and the
/// directories `stop` accepts (given by their relative path; not descended
/// into), sorted by path. An I/O error names the path it happened at.
pub fn walk(
    root: &Path,
    start: &str,
    want: impl Fn(&str) -> bool,
    stop: impl Fn(&str) -> bool,
) -> Result<Vec<Entry>, (PathBuf, io::Error)> {
    let mut out = Vec::new();
    let mut pending = vec![start.to_string()];
    while let Some(dir) = pending.pop() {
        let full = if dir.is_empty() {
            root.to_path_buf()
        } else {
            root.join(&dir)
        };
        let entries = fs::read_dir(&full).map_err(|e| (full.clone(), e))?;
        for entry in entries {
            let entry = entry.map_err(|e| (full.clone(), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let child = if dir.is_empty() {
                name.clone()
            } else {
                format!("{dir}/{name}")
            };
            // DirEntry::file_type does not follow symlinks.
            let ft = entry.file_type().map_err(|e| (entry.path(), e))?;
            if ft.is_dir() {
                if stop(&child) {
                    out.push(Entry::Dir(child));
                } else {
                    pending.push(child);
                }
            } else if ft.is_file() && want(&name) {
                out.push(Entry::File(child));
            }
        }
    }
    out.sort_by(|a, b| a.path().cmp(b.path()));
    Ok(out)
}

/// `name` is a YAML file by its extension.
pub fn is_yaml(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The file's bytes, or `None` when it holds more than `limit`.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// A temporary directory holding `files` (path, text), for tests.
#[cfg(test)]
pub fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let full = dir.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(full, text).unwrap();
    }
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_in_byte_order_skipping_hidden_and_links_and_stopping_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "b.yaml",
            "a/z.yml",
            "a/b.txt",
            ".hidden/x.yaml",
            "a/.x.yaml",
            "k/kustomization.yaml",
        ] {
            let p = root.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x: 1\n").unwrap();
        }
        std::os::unix::fs::symlink(root.join("b.yaml"), root.join("c.yaml")).unwrap();
        std::os::unix::fs::symlink(root.join("a"), root.join("d")).unwrap();
        let found = walk(root, "", is_yaml, |d| {
            root.join(d).join("kustomization.yaml").is_file()
        })
        .unwrap();
        assert_eq!(
            found,
            [
                Entry::File("a/z.yml".into()),
                Entry::File("b.yaml".into()),
                Entry::Dir("k".into())
            ]
        );
        let under_a = walk(root, "a", |_| true, |_| false).unwrap();
        assert_eq!(
            under_a,
            [Entry::File("a/b.txt".into()), Entry::File("a/z.yml".into())]
        );
    }

    #[test]
    fn a_read_stops_past_its_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        fs::write(&p, b"12345").unwrap();
        assert_eq!(read_capped(&p, 5).unwrap().as_deref(), Some(&b"12345"[..]));
        assert_eq!(read_capped(&p, 4).unwrap(), None);
    }
}
