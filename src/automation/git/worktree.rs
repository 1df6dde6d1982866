//! The files of a workspace's tip under `root`, and what changed in them.
//!
//! An [`Index`] remembers, for every file written out, the blob it holds
//! and the file's size, times, inode and executable bit right after it was
//! written. A file whose metadata is unchanged still holds that blob and is
//! not read again; any other file is read and hashed. As in git, a file
//! whose times are not older than the moment the index was taken (its
//! [`stamp`](Index::stamp)) could have been rewritten within the same clock
//! tick and is always hashed ("racy" entries).
//!
//! Only regular files are written out. Symlinks, submodules and entries
//! whose names cannot be a safe path component (`.`, `..`, `.git`, names
//! with `/` or NUL) stay in the tree untouched and never appear on disk;
//! anything on disk that is not a regular file or a directory is ignored by
//! a commit and removed when the workspace is brought to a new tip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice as _};
use gix::objs::tree::EntryMode;

/// File metadata that tells whether a file was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stat {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i128,
    pub ctime: i128,
    pub ino: u64,
    pub executable: bool,
}

impl Stat {
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        Stat {
            size: meta.len(),
            mtime: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
            ctime: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            ino: meta.ino(),
            executable: meta.permissions().mode() & 0o111 != 0,
        }
    }
}

/// A file written out from the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub mode: EntryMode,
    pub id: ObjectId,
    pub stat: Stat,
}

/// What was written out, by path relative to the root (`/`-separated).
#[derive(Debug, Clone, Default)]
pub(super) struct Index {
    /// The tree the files are of.
    pub tree: Option<ObjectId>,
    pub entries: BTreeMap<BString, Entry>,
    /// Tree entries that are not written out (symlinks, submodules, unsafe
    /// names): a file found at such a path is not the tree's.
    pub kept: BTreeSet<BString>,
    /// Nanoseconds since the epoch, on the files' clock, when the index
    /// was taken: entries not older than this are hashed anyway.
    pub stamp: Option<i128>,
}

impl Index {
    /// Whether the file at `path`, with metadata `stat`, certainly still
    /// holds the blob the index has for it.
    pub fn clean(&self, path: &[u8], stat: &Stat) -> Option<&Entry> {
        let entry = self.entries.get(path.as_bstr())?;
        let stamp = self.stamp?;
        (entry.stat == *stat && stat.mtime < stamp && stat.ctime < stamp).then_some(entry)
    }

    const MAGIC: &'static [u8] = b"mooring-workspace-index 1\n";

    /// Save to `file` (replaced atomically); sets the stamp to the file's
    /// modification time.
    pub fn save(&mut self, file: &Path) -> std::io::Result<()> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 96);
        out.extend_from_slice(Self::MAGIC);
        match self.tree {
            Some(tree) => writeln!(out, "{tree}")?,
            None => writeln!(out, "-")?,
        }
        let mut mode = [0u8; 6];
        for (path, e) in &self.entries {
            let s = &e.stat;
            write!(
                out,
                "{} {} {} {} {} {} {} ",
                e.mode.as_bytes(&mut mode),
                e.id,
                s.size,
                s.mtime,
                s.ctime,
                s.ino,
                u8::from(s.executable)
            )?;
            out.extend_from_slice(path);
            out.push(0);
        }
        let dir = file.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        tmp.write_all(&out)?;
        let stamp = Stat::of(&tmp.as_file().metadata()?).mtime;
        tmp.persist(file).map_err(|e| e.error)?;
        self.stamp = Some(stamp);
        Ok(())
    }

    /// Load what [`save`](Self::save) wrote; `None` when the file is
    /// missing or not one of ours (the files are then all hashed).
    pub fn load(file: &Path) -> Option<Index> {
        let data = std::fs::read(file).ok()?;
        let stamp = Stat::of(&std::fs::metadata(file).ok()?).mtime;
        let rest = data.strip_prefix(Self::MAGIC)?;
        let (tree, mut rest) = rest.split_once_str(b"\n")?;
        let tree = match tree {
            b"-" => None,
            hex => Some(ObjectId::from_hex(hex).ok()?),
        };
        let mut entries = BTreeMap::new();
        while !rest.is_empty() {
            let (record, next) = rest.split_once_str(b"\0")?;
            rest = next;
            let mut fields = record.splitn(8, |b| *b == b' ');
            let mut field = || fields.next();
            let mode = EntryMode::from_bytes(field()?)?;
            let id = ObjectId::from_hex(field()?).ok()?;
            let mut number = || -> Option<i128> { field()?.to_str().ok()?.parse().ok() };
            let size = u64::try_from(number()?).ok()?;
            let mtime = number()?;
            let ctime = number()?;
            let ino = u64::try_from(number()?).ok()?;
            let executable = number()? == 1;
            let path = fields.next()?;
            if path.is_empty() {
                return None;
            }
            entries.insert(
                BString::from(path),
                Entry {
                    mode,
                    id,
                    stat: Stat {
                        size,
                        mtime,
                        ctime,
                        ino,
                        executable,
                    },
                },
            );
        }
        Some(Index {
            tree,
            entries,
            kept: BTreeSet::new(),
            stamp: Some(stamp),
        })
    }
}

/// Whether a tree entry name can be written out as one path component.
pub(super) fn safe_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name != b"."
        && name != b".."
        && !name.eq_ignore_ascii_case(b".git")
        && !name.contains(&b'/')
        && !name.contains(&0)
}

/// `root` joined with a `/`-separated relative path.
pub(super) fn disk_path(root: &Path, path: &[u8]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in path.split(|b| *b == b'/') {
        p.push(std::ffi::OsStr::from_bytes(part));
    }
    p
}

/// What is under `root`: regular files (path → metadata) and directories.
#[derive(Debug, Default)]
pub(super) struct Listing {
    pub files: BTreeMap<BString, Stat>,
    pub dirs: Vec<BString>,
    /// Symlinks, sockets…, and `.git` entries: never the tree's.
    pub others: Vec<BString>,
}

/// List `root` (missing: empty). The top-level directories are walked on
/// a few threads at once: a large tree is mostly `stat` calls.
pub(super) fn list(root: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing::default();
    let mut subdirs = Vec::new();
    match read_dir_into(root, &BString::default(), &mut listing, &mut subdirs) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listing),
        other => other?,
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(subdirs.len().max(1));
    if threads <= 1 {
        walk(root, subdirs, &mut listing)?;
        return Ok(listing);
    }
    let mut shares: Vec<Vec<BString>> = vec![Vec::new(); threads];
    for (i, dir) in subdirs.into_iter().enumerate() {
        shares[i % threads].push(dir);
    }
    let parts = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    let mut part = Listing::default();
                    walk(root, share, &mut part).map(|_| part)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a listing thread panicked")))
            })
            .collect::<Vec<_>>()
    });
    for part in parts {
        let part = part?;
        listing.files.extend(part.files);
        listing.dirs.extend(part.dirs);
        listing.others.extend(part.others);
    }
    Ok(listing)
}

/// Walk the directories `pending` (and below) into `listing`.
fn walk(root: &Path, mut pending: Vec<BString>, listing: &mut Listing) -> std::io::Result<()> {
    while let Some(dir) = pending.pop() {
        read_dir_into(root, &dir, listing, &mut pending)?;
    }
    Ok(())
}

/// The entries of one directory into `listing`; its subdirectories also
/// into `subdirs`.
fn read_dir_into(
    root: &Path,
    dir: &BString,
    listing: &mut Listing,
    subdirs: &mut Vec<BString>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(disk_path(root, dir))? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_bytes();
        let mut path = dir.clone();
        if !path.is_empty() {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        let kind = entry.file_type()?;
        if name.eq_ignore_ascii_case(b".git") {
            listing.others.push(path);
        } else if kind.is_dir() {
            listing.dirs.push(path.clone());
            subdirs.push(path);
        } else if kind.is_file() {
            let meta = entry.metadata()?;
            listing.files.insert(path, Stat::of(&meta));
        } else {
            listing.others.push(path);
        }
    }
    Ok(())
}

/// Read a file and hash it as a blob.
pub(super) fn hash_file(path: &Path) -> std::io::Result<(ObjectId, Vec<u8>)> {
    let data = std::fs::read(path)?;
    let id = gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, &data)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok((id, data))
}

/// Write `data` to `path` (replacing a file there) with the mode of a blob
/// entry; its metadata afterwards.
pub(super) fn write_file(path: &Path, data: &[u8], executable: bool) -> std::io::Result<Stat> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(data)?;
    set_executable(path, &file.metadata()?, executable)?;
    Ok(Stat::of(&file.metadata()?))
}

/// Give a file the mode of a blob entry, if it has not.
pub(super) fn set_executable(
    path: &Path,
    meta: &std::fs::Metadata,
    executable: bool,
) -> std::io::Result<bool> {
    let mode = meta.permissions().mode();
    let wanted = if executable { 0o755 } else { 0o644 };
    if mode & 0o777 == wanted {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_finds_files_dirs_and_others_on_any_number_of_threads() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("tree");
        assert!(list(&root).unwrap().files.is_empty(), "a missing root is empty");
        for d in 0..5 {
            for f in 0..3 {
                let p = root.join(format!("d{d}/sub/f{f}"));
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, "x").unwrap();
            }
        }
        std::fs::write(root.join("top"), "x").unwrap();
        std::fs::create_dir_all(root.join(".git/objects")).unwrap();
        std::os::unix::fs::symlink("top", root.join("link")).unwrap();
        let listing = list(&root).unwrap();
        assert_eq!(listing.files.len(), 16);
        assert!(listing.files.contains_key(b"d3/sub/f2".as_bstr()));
        assert_eq!(listing.dirs.len(), 10);
        let mut others = listing.others.clone();
        others.sort();
        assert_eq!(others, vec![BString::from(".git"), BString::from("link")]);
    }

    #[test]
    fn unsafe_names_are_not_written_out() {
        for name in [&b""[..], b".", b"..", b".git", b".GIT", b"a/b", b"a\0"] {
            assert!(!safe_name(name), "{:?}", name.as_bstr());
        }
        for name in [&b"a"[..], b".github", b"..a", b"with space", "é".as_bytes()] {
            assert!(safe_name(name), "{:?}", name.as_bstr());
        }
    }

    #[test]
    fn an_index_round_trips_and_a_foreign_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("index");
        let id = ObjectId::from_hex(b"0123456789012345678901234567890123456789").unwrap();
        let stat = Stat {
            size: 3,
            mtime: 1_700_000_000_123_456_789,
            ctime: 1_700_000_000_123_456_789,
            ino: 42,
            executable: true,
        };
        let mut index = Index {
            tree: Some(id),
            ..Default::default()
        };
        for path in ["a.yaml", "dir/with space/b c", "x y\nz"] {
            index.entries.insert(
                path.into(),
                Entry {
                    mode: gix::objs::tree::EntryKind::BlobExecutable.into(),
                    id,
                    stat,
                },
            );
        }
        index.save(&file).unwrap();
        let loaded = Index::load(&file).unwrap();
        assert_eq!(loaded.tree, index.tree);
        assert_eq!(loaded.entries, index.entries);
        assert_eq!(loaded.stamp, index.stamp);
        // Older than the stamp and unchanged: clean.
        assert!(loaded.clean(b"a.yaml", &stat).is_some());
        assert!(loaded.clean(b"a.yaml", &Stat { size: 4, ..stat }).is_none());
        assert!(loaded.clean(b"missing", &stat).is_none());

        std::fs::write(&file, "something else").unwrap();
        assert!(Index::load(&file).is_none());
        std::fs::write(&file, b"mooring-workspace-index 1\n-\n100644 nothex").unwrap();
        assert!(Index::load(&file).is_none());
    }

    #[test]
    fn racy_entries_are_never_clean() {
        let stat = Stat {
            size: 1,
            mtime: 100,
            ctime: 100,
            ino: 1,
            executable: false,
        };
        let mut index = Index {
            stamp: Some(100),
            ..Default::default()
        };
        index.entries.insert(
            "f".into(),
            Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                id: ObjectId::null(gix::hash::Kind::Sha1),
                stat,
            },
        );
        assert!(index.clean(b"f", &stat).is_none(), "same tick as the stamp");
        index.stamp = Some(101);
        assert!(index.clean(b"f", &stat).is_some());
    }
}
