//! Bringing a workspace to the tip of its branch: a shallow fetch into
//! the workspace's bare repository, then the tree written out under
//! `tree/`, rewriting only files that differ from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::ObjectId;
use gix::bstr::{BString, ByteSlice as _};
use gix::objs::tree::{EntryKind, EntryMode};

use super::worktree::{self, Entry, Index};
use super::{Error, INDEX, REMOTE, REPO, Stage, TREE};
use crate::config;
use crate::git::cache::{Cache, Failure, Want};
use crate::git::refs;
use crate::git::remote::Remote;

/// A branch name must make a valid `refs/heads/NAME` (and so a refspec).
pub(super) fn valid_branch(branch: &str, stage: Stage) -> Result<(), Error> {
    let full = format!("refs/heads/{branch}");
    let plain = !branch.is_empty() && !branch.contains([':', '*', '+', ' ']);
    if plain && gix::validate::reference::name(full.as_bytes().as_bstr()).is_ok() {
        Ok(())
    } else {
        Err(Error::Invalid {
            stage,
            what: format!("`{branch}` is not a valid branch name"),
        })
    }
}

fn repo_error(stage: Stage, path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Repository {
        stage,
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// Open the workspace's repository, isolated from the user's and the
/// machine's git configuration.
pub(super) fn open(path: &Path, overrides: Vec<String>, stage: Stage) -> Result<gix::Repository, Error> {
    let options = gix::open::Options::isolated().config_overrides(overrides);
    gix::open_opts(path, options).map_err(|e| repo_error(stage, path, e))
}

/// What prepare needs done.
pub(super) struct Job {
    pub dir: PathBuf,
    pub checkout: String,
    pub push: String,
    pub limits: config::Limits,
}

/// A workspace brought to a tip.
pub(super) struct Prepared {
    pub branch: String,
    pub tip: ObjectId,
    pub tree: ObjectId,
    pub remote_tip: Option<ObjectId>,
    pub index: Index,
}

const STAGE: Stage = Stage::Checkout;

impl Job {
    pub fn run(&self, remote: &Remote, interrupt: &AtomicBool) -> Result<Prepared, Error> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(STAGE, &self.dir, e))?;
        let repo_dir = self.dir.join(REPO);
        // A workspace made for another repository starts afresh.
        let marker = self.dir.join(REMOTE);
        let made_for = std::fs::read_to_string(&marker).ok();
        if made_for
            .as_deref()
            .is_some_and(|url| url.trim_end() != remote.shown)
        {
            self.wipe()?;
        }
        let cache = cache(&repo_dir, remote);
        let (branch, tip, remote_tip) = cache.recover(|| self.fetch(&cache, remote, interrupt))?;
        std::fs::write(&marker, format!("{}\n", remote.shown)).map_err(|e| Error::io(STAGE, &marker, e))?;

        let repo = open(&repo_dir, remote.config_overrides(), STAGE)?;
        let tree = repo
            .find_commit(tip)
            .and_then(|c| c.tree_id().map(|id| id.detach()))
            .map_err(|e| repo_error(STAGE, &repo_dir, format!("cannot read the tip {tip}: {e}")))?;
        // The local branch follows the tip: a local commit of an earlier
        // run is dropped.
        repo.reference(
            format!("refs/heads/{}", self.push),
            tip,
            gix::refs::transaction::PreviousValue::Any,
            "mooring: prepare",
        )
        .map_err(|e| repo_error(STAGE, &repo_dir, format!("cannot set the local branch: {e}")))?;

        let index_file = self.dir.join(INDEX);
        let root = self.dir.join(TREE);
        let old = if root.exists() {
            Index::load(&index_file).unwrap_or_default()
        } else {
            Index::default()
        };
        let mut index = sync(&repo, &root, tree, &old, self.limits)?;
        index
            .save(&index_file)
            .map_err(|e| Error::io(STAGE, &index_file, e))?;
        Ok(Prepared {
            branch,
            tip,
            tree,
            remote_tip,
            index,
        })
    }

    fn wipe(&self) -> Result<(), Error> {
        for name in [REPO, TREE, INDEX] {
            let path = self.dir.join(name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(STAGE, &path, e)),
            }
        }
        Ok(())
    }

    /// Fetch the tip of the push branch, or of the checkout branch when
    /// the push branch does not exist: (branch, tip, push branch's tip).
    fn fetch(
        &self,
        cache: &Cache,
        remote: &Remote,
        interrupt: &AtomicBool,
    ) -> Result<(String, ObjectId, Option<ObjectId>), Failure> {
        let repo = cache.open(remote)?;
        if let Some(tip) = fetch_branch(cache, &repo, remote, &self.push, interrupt)? {
            return Ok((self.push.clone(), tip, Some(tip)));
        }
        let not_found = |what: String| {
            Failure::Final(Error::NotFound {
                stage: STAGE,
                url: remote.shown.clone(),
                what,
            })
        };
        if self.checkout == self.push {
            return Err(not_found(format!("branch `{}`", self.checkout)));
        }
        match fetch_branch(cache, &repo, remote, &self.checkout, interrupt)? {
            Some(tip) => Ok((self.checkout.clone(), tip, None)),
            None => Err(not_found(format!(
                "branch `{}` (to check out) nor `{}` (to push to)",
                self.checkout, self.push
            ))),
        }
    }
}

/// The workspace's bare repository at `path`, for `remote`: no object
/// larger than the source's `limits max-size` is inflated, as for the
/// source's own fetch.
fn cache(path: &Path, remote: &Remote) -> Cache {
    Cache {
        dir: path.to_path_buf(),
        stage: STAGE,
        alloc_limit: Some(remote.max_bytes),
    }
}

/// Fetch the tip of `branch` (shallow, depth 1) into
/// `refs/remotes/origin/<branch>`; `None` when the remote has no such
/// branch (nothing is fetched then).
fn fetch_branch(
    cache: &Cache,
    repo: &gix::Repository,
    remote: &Remote,
    branch: &str,
    interrupt: &AtomicBool,
) -> Result<Option<ObjectId>, Failure> {
    let spec = format!("+refs/heads/{branch}:refs/remotes/origin/{branch}");
    cache.fetch(repo, remote, &spec, interrupt, |advertised| {
        Ok(match refs::find(advertised, &format!("refs/heads/{branch}")) {
            None => Want::Done(None),
            Some(id) => Want::Fetch {
                id,
                name: branch.to_string(),
                then: Some(id),
            },
        })
    })
}

/// The branch the remote's HEAD points at, from a listing only.
pub(super) fn remote_head(scratch: &Path, remote: &Remote, interrupt: &AtomicBool) -> Result<String, Error> {
    let cache = cache(&scratch.join(REPO), remote);
    let repo = cache.open(remote).map_err(|f| match f {
        Failure::Final(e) | Failure::Cache(e) => e,
    })?;
    let advertised = cache.list(&repo, remote, "+HEAD:refs/remotes/origin/HEAD", interrupt)?;
    refs::head(&advertised)
        .map(|(branch, _)| branch)
        .ok_or_else(|| Error::NotFound {
            stage: STAGE,
            url: remote.shown.clone(),
            what: "HEAD pointing at a branch (set `checkout` or the source's `branch`)".into(),
        })
}

/// The regular files of `tree` by path, and the paths of entries that
/// are not written out.
type Flat = (BTreeMap<BString, (EntryMode, ObjectId)>, BTreeSet<BString>);

fn flatten(repo: &gix::Repository, tree: ObjectId) -> Result<Flat, Error> {
    let damaged = |e: gix::Error| repo_error(STAGE, repo.path(), format!("cannot read tree {tree}: {e}"));
    let mut files = BTreeMap::new();
    let mut kept = BTreeSet::new();
    let mut pending = vec![(tree, BString::default())];
    while let Some((id, prefix)) = pending.pop() {
        let tree = repo.find_tree(id).map_err(damaged)?;
        let decoded = tree.decode().map_err(damaged)?;
        for entry in &decoded.entries {
            let mut path = prefix.clone();
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(entry.filename);
            if !worktree::safe_name(entry.filename) {
                kept.insert(path);
                continue;
            }
            match entry.mode.kind() {
                EntryKind::Tree => pending.push((entry.oid.to_owned(), path)),
                EntryKind::Blob | EntryKind::BlobExecutable => {
                    files.insert(path, (entry.mode, entry.oid.to_owned()));
                }
                EntryKind::Link | EntryKind::Commit => {
                    kept.insert(path);
                }
            }
        }
    }
    Ok((files, kept))
}

/// Make the files under `root` those of `tree`: remove what is not in it,
/// write what differs, keep what the index (or a hash) shows is the same.
fn sync(
    repo: &gix::Repository,
    root: &Path,
    tree: ObjectId,
    old: &Index,
    limits: config::Limits,
) -> Result<Index, Error> {
    let (files, kept) = flatten(repo, tree)?;
    if files.len() as u64 > limits.max_files {
        return Err(Error::Invalid {
            stage: STAGE,
            what: format!(
                "the tree has {} files, more than the source's limit of {}",
                files.len(),
                limits.max_files
            ),
        });
    }
    let io = |path: &Path, e: std::io::Error| Error::io(STAGE, path, e);
    std::fs::create_dir_all(root).map_err(|e| io(root, e))?;
    let listing = worktree::list(root).map_err(|e| io(root, e))?;

    // Away with everything that is not a file of the tree.
    for path in &listing.others {
        let p = worktree::disk_path(root, path);
        let removed = match std::fs::symlink_metadata(&p) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&p),
            Ok(_) => std::fs::remove_file(&p),
            Err(e) => Err(e),
        };
        removed.map_err(|e| io(&p, e))?;
    }
    for path in listing.files.keys().filter(|p| !files.contains_key(*p)) {
        let p = worktree::disk_path(root, path);
        std::fs::remove_file(&p).map_err(|e| io(&p, e))?;
    }
    // Directories left empty, deepest first.
    let mut dirs = listing.dirs.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
    for dir in dirs {
        let p = worktree::disk_path(root, &dir);
        if std::fs::read_dir(&p)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
        {
            std::fs::remove_dir(&p).map_err(|e| io(&p, e))?;
        }
    }

    let mut index = Index {
        tree: Some(tree),
        entries: BTreeMap::new(),
        kept,
        stamp: None,
    };
    let mut bytes: u64 = 0;
    for (path, (mode, id)) in files {
        let p = worktree::disk_path(root, &path);
        let executable = mode.is_executable();
        let on_disk = listing.files.get(&path).copied();
        let same = match on_disk.as_ref() {
            Some(stat) => match old.clean(&path, stat) {
                Some(entry) => entry.id == id,
                None => worktree::hash_file(&p).map_err(|e| io(&p, e))?.0 == id,
            },
            None => false,
        };
        let stat = match (same, on_disk) {
            (true, Some(stat)) if stat.executable == executable => stat,
            (true, Some(_)) => {
                let meta = std::fs::metadata(&p).map_err(|e| io(&p, e))?;
                worktree::set_executable(&p, &meta, executable).map_err(|e| io(&p, e))?;
                worktree::Stat::of(&std::fs::metadata(&p).map_err(|e| io(&p, e))?)
            }
            _ => {
                let blob = repo
                    .find_object(id)
                    .map_err(|e| repo_error(STAGE, repo.path(), format!("cannot read blob {id}: {e}")))?;
                bytes += blob.data.len() as u64;
                if bytes > limits.max_bytes {
                    return Err(Error::Invalid {
                        stage: STAGE,
                        what: format!(
                            "the tree holds more than the source's limit of {} bytes",
                            limits.max_bytes
                        ),
                    });
                }
                worktree::write_file(&p, &blob.data, executable).map_err(|e| io(&p, e))?
            }
        };
        if same {
            bytes += stat.size;
        }
        index.entries.insert(path, Entry { mode, id, stat });
    }
    Ok(index)
}
