//! A commit of what changed under a workspace's root: blobs for the
//! changed files, new trees only along changed paths (every other entry is
//! reused by id, so untouched files and subtrees stay byte for byte), one
//! commit object, the local branch moved to it.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use gix::ObjectId;
use gix::bstr::{BStr, BString, ByteSlice as _};
use gix::objs::tree::{self, EntryKind, EntryMode};

use super::pack::PackObject;
use super::worktree::{self, Entry, Index};
use super::{Error, Stage};
use crate::config;

const STAGE: Stage = Stage::Commit;

/// A change to one path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Upsert(EntryMode, ObjectId),
    Remove,
}

/// What a commit made.
pub(super) struct Made {
    pub commit: ObjectId,
    pub tree: ObjectId,
    /// The index after the commit (the files as committed).
    pub index: Index,
    /// The objects the commit created: the commit, then new trees, then
    /// new blobs, each with the object it replaces.
    pub objects: Vec<PackObject>,
}

fn repo_error(repo: &gix::Repository, reason: String) -> Error {
    Error::Repository {
        stage: STAGE,
        path: repo.path().to_path_buf(),
        reason,
    }
}

/// Commit what changed under `root` (relative to `index`) on top of
/// `parent` (whose tree is `tree`); `None` when nothing changed.
pub(super) fn commit(
    repo: &gix::Repository,
    root: &Path,
    index: &Index,
    parent: ObjectId,
    tree: ObjectId,
    author: &config::Author,
    message: &str,
) -> Result<Option<Made>, Error> {
    let signature = signature(author)?;
    let io = |path: &Path, e: std::io::Error| Error::io(STAGE, path, e);
    let listing = worktree::list(root).map_err(|e| io(root, e))?;

    let mut changes: Vec<(BString, Op)> = Vec::new();
    let mut next = index.clone();
    for (path, stat) in &listing.files {
        if index.kept.contains(path) || index.clean(path, stat).is_some() {
            continue;
        }
        let p = worktree::disk_path(root, path);
        let (id, data) = worktree::hash_file(&p).map_err(|e| io(&p, e))?;
        let mode = match index.entries.get(path) {
            Some(entry) if entry.id == id => continue,
            // The tree's mode stays, whatever became of the file's.
            Some(entry) => entry.mode,
            None if stat.executable => EntryKind::BlobExecutable.into(),
            None => EntryKind::Blob.into(),
        };
        repo.write_blob(&data)
            .map_err(|e| repo_error(repo, format!("cannot write the blob of {}: {e}", path.as_bstr())))?;
        changes.push((path.clone(), Op::Upsert(mode, id)));
        next.entries.insert(
            path.clone(),
            Entry {
                mode,
                id,
                stat: *stat,
            },
        );
    }
    for path in index.entries.keys().filter(|p| !listing.files.contains_key(*p)) {
        changes.push((path.clone(), Op::Remove));
        next.entries.remove(path);
    }
    if changes.is_empty() {
        return Ok(None);
    }

    let new_tree = match build(repo, Some(tree), &changes)? {
        Some(id) => id,
        None => write_tree(repo, Vec::new())?,
    };
    if new_tree == tree {
        return Ok(None);
    }
    let mut message = message.to_string();
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let commit = gix::objs::Commit {
        tree: new_tree,
        parents: vec![parent].into(),
        author: signature.clone(),
        committer: signature,
        encoding: None,
        message: message.into(),
        extra_headers: Vec::new(),
    };
    let id = repo
        .write_object(&commit)
        .map_err(|e| repo_error(repo, format!("cannot write the commit: {e}")))?
        .detach();

    let mut objects = vec![PackObject {
        id,
        kind: gix::objs::Kind::Commit,
        base: None,
    }];
    let mut seen = HashSet::new();
    let (mut trees, mut blobs) = (Vec::new(), Vec::new());
    new_objects(repo, Some(tree), new_tree, &mut seen, &mut trees, &mut blobs)?;
    objects.extend(trees);
    objects.extend(blobs);
    next.tree = Some(new_tree);
    Ok(Some(Made {
        commit: id,
        tree: new_tree,
        index: next,
        objects,
    }))
}

/// Author and committer; a name or email that would break the commit
/// header is refused.
fn signature(author: &config::Author) -> Result<gix::actor::Signature, Error> {
    for (what, value) in [("name", &author.name), ("email", &author.email)] {
        if value.contains(['<', '>', '\n', '\r', '\0']) {
            return Err(Error::Invalid {
                stage: STAGE,
                what: format!(
                    "the author {what} `{value}` has a character a commit cannot hold (<, >, a newline or NUL)"
                ),
            });
        }
    }
    Ok(gix::actor::Signature {
        name: author.name.trim().into(),
        email: author.email.trim().into(),
        time: gix::date::Time::now_utc(),
    })
}

/// The entries of tree `id`.
fn entries_of(repo: &gix::Repository, id: ObjectId) -> Result<Vec<tree::Entry>, Error> {
    let found = repo
        .find_tree(id)
        .map_err(|e| repo_error(repo, format!("cannot read tree {id}: {e}")))?;
    let decoded = found
        .decode()
        .map_err(|e| repo_error(repo, format!("cannot read tree {id}: {e}")))?;
    Ok(gix::objs::Tree::from(decoded).entries)
}

/// The tree `tree` (or an empty one) with `changes` (paths relative to
/// it) applied; `None` when nothing is left in it.
fn build(
    repo: &gix::Repository,
    tree: Option<ObjectId>,
    changes: &[(BString, Op)],
) -> Result<Option<ObjectId>, Error> {
    let mut entries: Vec<tree::Entry> = match tree {
        Some(id) => entries_of(repo, id)?,
        None => Vec::new(),
    };
    let mut direct: BTreeMap<&BStr, &Op> = BTreeMap::new();
    let mut nested: BTreeMap<&BStr, Vec<(BString, Op)>> = BTreeMap::new();
    for (path, op) in changes {
        match path.split_once_str(b"/") {
            Some((first, rest)) => nested
                .entry(first.as_bstr())
                .or_default()
                .push((rest.into(), op.clone())),
            None => {
                direct.insert(path.as_bstr(), op);
            }
        }
    }
    let position = |entries: &[tree::Entry], name: &BStr| entries.iter().position(|e| e.filename == name);
    for (name, op) in direct {
        if nested.contains_key(name) {
            // A file that became a directory: the directory wins below.
            continue;
        }
        let at = position(&entries, name);
        match (op, at) {
            (Op::Upsert(mode, id), Some(i)) => {
                entries[i].mode = *mode;
                entries[i].oid = *id;
            }
            (Op::Upsert(mode, id), None) => entries.push(tree::Entry {
                mode: *mode,
                filename: name.to_owned(),
                oid: *id,
            }),
            (Op::Remove, Some(i)) if !entries[i].mode.is_tree() => {
                entries.remove(i);
            }
            (Op::Remove, _) => {}
        }
    }
    for (name, sub) in nested {
        let at = position(&entries, name);
        let existing = at.and_then(|i| entries[i].mode.is_tree().then_some(entries[i].oid));
        let built = build(repo, existing, &sub)?;
        match (at, built) {
            (Some(i), Some(id)) => {
                if !entries[i].mode.is_tree() {
                    entries[i].mode = EntryKind::Tree.into();
                }
                entries[i].oid = id;
            }
            (None, Some(id)) => entries.push(tree::Entry {
                mode: EntryKind::Tree.into(),
                filename: name.to_owned(),
                oid: id,
            }),
            (Some(i), None) if entries[i].mode.is_tree() => {
                entries.remove(i);
            }
            _ => {}
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    write_tree(repo, entries).map(Some)
}

fn write_tree(repo: &gix::Repository, mut entries: Vec<tree::Entry>) -> Result<ObjectId, Error> {
    entries.sort();
    repo.write_object(gix::objs::Tree { entries })
        .map(|id| id.detach())
        .map_err(|e| repo_error(repo, format!("cannot write a tree: {e}")))
}

/// The trees and blobs reachable from `new` that are not the same object
/// at the same path under `old`, each with the object it replaces.
fn new_objects(
    repo: &gix::Repository,
    old: Option<ObjectId>,
    new: ObjectId,
    seen: &mut HashSet<ObjectId>,
    trees: &mut Vec<PackObject>,
    blobs: &mut Vec<PackObject>,
) -> Result<(), Error> {
    if old == Some(new) || !seen.insert(new) {
        return Ok(());
    }
    trees.push(PackObject {
        id: new,
        kind: gix::objs::Kind::Tree,
        base: old,
    });
    let before = match old {
        Some(id) => entries_of(repo, id)?,
        None => Vec::new(),
    };
    for entry in entries_of(repo, new)? {
        let previous = before.iter().find(|e| e.filename == entry.filename);
        if previous.is_some_and(|p| p.oid == entry.oid) {
            continue;
        }
        if entry.mode.is_tree() {
            let base = previous.filter(|p| p.mode.is_tree()).map(|p| p.oid);
            new_objects(repo, base, entry.oid, seen, trees, blobs)?;
        } else if entry.mode.is_blob_or_symlink() && seen.insert(entry.oid) {
            let base = previous.filter(|p| p.mode.is_blob()).map(|p| p.oid);
            blobs.push(PackObject {
                id: entry.oid,
                kind: gix::objs::Kind::Blob,
                base,
            });
        }
    }
    Ok(())
}
