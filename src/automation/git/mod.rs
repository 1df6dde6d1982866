//! Commit and push: takes an automation's git source, the branch to check
//! out and the branch to push to, gives a [`Workspace`] whose files
//! ([`Workspace::root`]) the setters edit in place, then a commit of
//! exactly what changed and a push of it.
//!
//! A workspace lives in a directory of its own (the caller uses
//! `state-dir/automations/<name>/`):
//!
//! - `repo.git/`: a bare, shallow (depth 1) clone fetched with gix and
//!   explicit refspecs (`+refs/heads/B:refs/remotes/origin/B`); it holds
//!   the tip, the local commits, and nothing of the remote's history
//!   beyond the tip;
//! - `tree/`: the files of the tip (regular files only; see `worktree`);
//! - `index`: what was written into `tree/`, so that bringing the
//!   workspace to a new tip rewrites only what differs and a commit reads
//!   only files whose metadata changed;
//! - `remote`: the URL (redacted) the workspace was made for.
//!
//! A commit builds new trees only along changed paths (every other entry
//! and subtree is reused by id) and writes one commit object. A push
//! speaks `git-receive-pack` itself (gix has no push; see `push`) over
//! the transports gix provides for fetch, and sends a pack of only the
//! objects the commit created. It never rewrites the remote branch unless
//! asked to (`force`): when someone else pushed first, the outcome is
//! [`PushOutcome::Rejected`] and the caller prepares the workspace again
//! (which discards the local commit), re-applies its edits and commits
//! again.
//!
//! What a source's fetch shares with this (the remote and its credentials,
//! the timeout and busy guard, the error and its classifier, the bare
//! repository's fetch and recovery) is [`crate::git`]'s: network
//! operations run on a thread of their own and end with
//! [`Error::Timeout`] at the timeout (gix's interrupt flag is raised; a
//! thread stuck in I/O keeps the workspace marked busy until it ends).
//! The push stays here: only automations push.

mod checkout;
mod commit;
mod pack;
mod push;
mod worktree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::ObjectId;

use crate::config;
use crate::git::remote::Remote;
use crate::git::timeout::run_with_timeout;

pub use crate::git::{Error, Stage};

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The remote branch moved from `old` (`None`: it was created) to
    /// `new`; `bytes_sent` counts the commands and the pack.
    Pushed {
        old: Option<String>,
        new: String,
        bytes_sent: u64,
    },
    /// The remote branch is not where the commit was made on (someone
    /// pushed first): prepare again, re-apply, commit, push.
    Rejected { reason: String },
}

const REPO: &str = "repo.git";
const TREE: &str = "tree";
const INDEX: &str = "index";
/// The (redacted) URL the workspace was made for.
const REMOTE: &str = "remote";

/// An automation's clone of its source at the tip of a branch, with the
/// files of that tip under [`root`](Workspace::root).
pub struct Workspace {
    dir: PathBuf,
    root: PathBuf,
    source: config::Source,
    timeout: Duration,
    /// The branch the tip was taken from.
    branch: String,
    push_branch: String,
    /// The tip the workspace was prepared at.
    base: ObjectId,
    /// Where `push_branch` was on the remote when prepared.
    remote_tip: Option<ObjectId>,
    /// The last local commit (or `base`) and its tree.
    head: ObjectId,
    tree: ObjectId,
    index: worktree::Index,
    /// What the local commits created, for the pack.
    pending: Vec<pack::PackObject>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("dir", &self.dir)
            .field("url", &crate::git::redact(self.source.kind.url()))
            .field("branch", &self.branch)
            .field("push_branch", &self.push_branch)
            .field("base", &self.base)
            .field("remote_tip", &self.remote_tip)
            .field("head", &self.head)
            .field("files", &self.index.entries.len())
            .field("pending_objects", &self.pending.len())
            .finish()
    }
}

impl Workspace {
    /// Open or create the workspace in `dir` for `source` (git URL and
    /// auth) and bring it to the tip of `push_branch` if that branch exists
    /// on the remote, else to the tip of `checkout_branch` (so pushing to
    /// another branch creates it from the checkout branch the first time
    /// and continues on it later).
    ///
    /// The fetch is shallow (depth 1): the tip and its tree are all a
    /// commit and a push need. On an existing workspace this discards any
    /// local commit and edit and rewrites only the files that differ from
    /// the new tip. Blocking, with `timeout` on the network part.
    pub fn prepare(
        dir: &Path,
        source: &config::Source,
        checkout_branch: &str,
        push_branch: &str,
        timeout: Duration,
    ) -> Result<Workspace, Error> {
        for branch in [checkout_branch, push_branch] {
            checkout::valid_branch(branch, Stage::Checkout)?;
        }
        let remote = Remote::of(source, timeout, Stage::Checkout)?;
        let job = checkout::Job {
            dir: dir.to_path_buf(),
            checkout: checkout_branch.to_string(),
            push: push_branch.to_string(),
            limits: source.limits,
        };
        let shown = remote.shown.clone();
        let prepared = run_with_timeout(dir, Stage::Checkout, &shown, timeout, move |interrupt| {
            job.run(&remote, interrupt)
        })?;
        Ok(Workspace {
            dir: dir.to_path_buf(),
            root: dir.join(TREE),
            source: source.clone(),
            timeout,
            branch: prepared.branch,
            push_branch: push_branch.to_string(),
            base: prepared.tip,
            remote_tip: prepared.remote_tip,
            head: prepared.tip,
            tree: prepared.tree,
            index: prepared.index,
            pending: Vec::new(),
        })
    }

    /// The directory holding the files of the tip, where setters edit
    /// files in place.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The branch whose tip was checked out: the push branch if it existed
    /// on the remote, else the checkout branch.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The commit the workspace was prepared at (hex).
    pub fn base(&self) -> String {
        self.base.to_string()
    }

    /// The last local commit, or the base when nothing was committed (hex).
    pub fn head(&self) -> String {
        self.head.to_string()
    }

    /// Commit every file changed, added or removed under [`root`] since
    /// [`prepare`] (or the previous commit) on top of it, with `author` as
    /// author and committer (time: now) and `message`; the new commit's id
    /// (hex), or `None` when nothing changed.
    ///
    /// Files keep the mode the tree gives them (a setter that replaces a
    /// file does not drop its executable bit); a new file is executable if
    /// it is on disk. Untouched files are not read again, and their
    /// entries and subtrees are reused as they are.
    ///
    /// [`root`]: Workspace::root
    /// [`prepare`]: Workspace::prepare
    pub fn commit(&mut self, author: &config::Author, message: &str) -> Result<Option<String>, Error> {
        let repo = checkout::open(&self.dir.join(REPO), Vec::new(), Stage::Commit)?;
        let Some(made) = commit::commit(
            &repo,
            &self.root,
            &self.index,
            self.head,
            self.tree,
            author,
            message,
        )?
        else {
            return Ok(None);
        };
        let id = made.commit.to_string();
        // The local branch moves to the commit (from where it was).
        repo.reference(
            format!("refs/heads/{}", self.push_branch),
            made.commit,
            gix::refs::transaction::PreviousValue::ExistingMustMatch(gix::refs::Target::Object(self.head)),
            "mooring: commit",
        )
        .map_err(|e| Error::Repository {
            stage: Stage::Commit,
            path: self.dir.join(REPO),
            reason: format!("cannot move the local branch to the commit: {e}"),
        })?;
        self.head = made.commit;
        self.tree = made.tree;
        self.index = made.index;
        for object in made.objects {
            if !self.pending.iter().any(|o| o.id == object.id) {
                self.pending.push(object);
            }
        }
        Ok(Some(id))
    }

    /// Push the local commits to `push_branch`: a fast-forward from where
    /// the workspace was prepared, or the creation of the branch. When the
    /// remote branch is anywhere else (someone pushed first), nothing is
    /// sent and the outcome is [`PushOutcome::Rejected`], unless `force`,
    /// which replaces whatever is there.
    pub fn push(&self, push_branch: &str, force: bool) -> Result<PushOutcome, Error> {
        checkout::valid_branch(push_branch, Stage::Push)?;
        if self.head == self.base {
            return Err(Error::Invalid {
                stage: Stage::Push,
                what: "nothing was committed, so there is nothing to push".into(),
            });
        }
        // Credentials are read again: a rotated token is picked up.
        let remote = Remote::of(&self.source, self.timeout, Stage::Push)?;
        let job = push::Job {
            repo_dir: self.dir.join(REPO),
            branch: push_branch.to_string(),
            base: self.base,
            head: self.head,
            objects: self.pending.clone(),
            force,
        };
        let shown = remote.shown.clone();
        run_with_timeout(&self.dir, Stage::Push, &shown, self.timeout, move |interrupt| {
            job.run(&remote, interrupt)
        })
    }

    /// The branch given to [`prepare`](Workspace::prepare) as the push branch.
    pub fn push_branch(&self) -> &str {
        &self.push_branch
    }

    /// Where the push branch was on the remote when prepared (hex), `None`
    /// if it did not exist.
    pub fn remote_tip(&self) -> Option<String> {
        self.remote_tip.map(|id| id.to_string())
    }
}

/// The branch an automation checks out: its `checkout`, else the source's
/// `branch`, else (a source that follows the remote's HEAD) the branch the
/// remote's HEAD points at, asked from the remote. A source that follows a
/// tag, a version range or a commit has no branch: `checkout` must be set.
pub fn checkout_branch(
    automation: &config::Automation,
    source: &config::Source,
    timeout: Duration,
) -> Result<String, Error> {
    if let Some(branch) = &automation.checkout {
        return Ok(branch.clone());
    }
    match &source.kind {
        config::SourceKind::Git {
            reference: config::GitRef::Branch(branch),
            ..
        } => Ok(branch.clone()),
        config::SourceKind::Git {
            reference: config::GitRef::DefaultBranch,
            ..
        } => default_branch(source, timeout),
        other => Err(Error::Invalid {
            stage: Stage::Checkout,
            what: format!(
                "the source `{}` ({}) does not follow a branch: set `checkout` in the automation",
                source.name.as_str(),
                crate::git::redact(other.url())
            ),
        }),
    }
}

/// The branch the remote's HEAD points at (`main`), asked from the remote
/// without fetching anything.
pub fn default_branch(source: &config::Source, timeout: Duration) -> Result<String, Error> {
    let remote = Remote::of(source, timeout, Stage::Checkout)?;
    let shown = remote.shown.clone();
    // A scratch directory: nothing is fetched, and no workspace is needed.
    let scratch = tempfile::tempdir().map_err(|e| Error::io(Stage::Checkout, &std::env::temp_dir(), e))?;
    let dir = scratch.path().to_path_buf();
    run_with_timeout(&dir.clone(), Stage::Checkout, &shown, timeout, move |interrupt| {
        let _scratch = scratch;
        checkout::remote_head(&dir, &remote, interrupt)
    })
}
