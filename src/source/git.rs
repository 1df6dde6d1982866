//! Git sources: the revision a source follows (branch, tag, highest tag in
//! a version range, pinned commit, or the remote's HEAD), fetched into the
//! source's bare cache `state-dir/git/<source>` ([`crate::git`]: shallow,
//! one forced refspec, credentials in memory only, a damaged cache fetched
//! again once), and its tree exported into an artifact through the
//! hostile-input [`super::artifact::Writer`].
//!
//! The remote's refs are listed first; when the selected commit already
//! has an artifact, no pack is fetched. No object larger than the
//! artifact may be is inflated.
//!
//! `git://` and HTTP(S) are pure Rust; `file://` runs `git upload-pack` and
//! `ssh://` runs `ssh` (both external programs).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use gix::bstr::ByteSlice as _;

use super::artifact::Writer;
use super::{Artifact, Error, Store};
use crate::config::{self, GitRef};
use crate::git::cache::{Cache, Failure, Want, fail};
use crate::git::remote::Remote;
use crate::git::{Stage, refs};

const STAGE: Stage = Stage::Fetch;

/// Fetch `source` (a git source) and export its tree at the selected
/// revision into `store`.
pub fn fetch(source: &config::Source, state_dir: &Path, store: &Store) -> Result<Artifact, Error> {
    let config::SourceKind::Git { reference, .. } = &source.kind else {
        return Err(Error::Protocol {
            url: crate::git::redact(source.kind.url()),
            reason: "not a git source".into(),
        });
    };
    let remote = Remote::of(source, source.timeout, STAGE)?;
    let cache = Cache {
        dir: state_dir.join("git").join(source.name.as_str()),
        stage: STAGE,
        alloc_limit: Some(source.limits.max_bytes),
    };
    let (shown, timeout, dir) = (remote.shown.clone(), source.timeout, cache.dir.clone());
    let job = Job {
        name: source.name.value.clone(),
        reference: reference.clone(),
        ignore: source.ignore.clone(),
        limits: source.limits,
        store: store.clone(),
        remote,
        cache,
    };
    crate::git::timeout::run_on_thread(&dir, STAGE, &shown, timeout, move |interrupt| {
        job.cache.recover(|| job.attempt(interrupt))
    })?
}

/// What the source needs from the remote, credentials included.
struct Job {
    name: String,
    reference: GitRef,
    ignore: Vec<String>,
    limits: config::Limits,
    store: Store,
    remote: Remote,
    cache: Cache,
}

/// The commit a source resolves to, and the name its revision carries.
struct Selected {
    /// `main`, `v1.2.3`, or `None` for a pinned commit.
    name: Option<String>,
    id: gix::ObjectId,
}

impl Selected {
    fn revision(&self) -> String {
        match &self.name {
            Some(name) => format!("{name}@sha1:{}", self.id),
            None => format!("sha1:{}", self.id),
        }
    }
}

impl Job {
    fn attempt(&self, interrupt: &AtomicBool) -> Result<Artifact, Failure<Error>> {
        if let GitRef::Commit(hex) = &self.reference {
            // A pin needs no listing: its revision is known up front.
            let revision = format!("sha1:{}", hex.to_ascii_lowercase());
            if let Some(existing) = self.store.existing(&self.name, &revision) {
                return Ok(existing);
            }
        }
        let repo = self.cache.open(&self.remote).map_err(Failure::widen)?;
        let (spec, known) = match &self.reference {
            GitRef::DefaultBranch => ("+HEAD:refs/remotes/origin/HEAD".to_string(), None),
            GitRef::Branch(b) => (format!("+refs/heads/{b}:refs/remotes/origin/{b}"), None),
            GitRef::Tag(t) => (format!("+refs/tags/{t}:refs/tags/{t}"), None),
            GitRef::Commit(hex) => {
                let id = gix::ObjectId::from_hex(hex.as_bytes()).map_err(|e| {
                    fail(
                        self.remote
                            .protocol(STAGE, format!("`{hex}` is not a full commit id: {e}")),
                    )
                })?;
                (
                    format!("+{id}:refs/mooring/pinned"),
                    Some(Selected { name: None, id }),
                )
            }
            GitRef::Semver(range) => {
                let listed = self
                    .cache
                    .list(&repo, &self.remote, "+refs/tags/*:refs/tags/*", interrupt)
                    .map_err(fail)?;
                let tags: Vec<&str> = listed
                    .iter()
                    .filter_map(|r| refs::peeled(r).0.strip_prefix("refs/tags/"))
                    .collect();
                let parsed = crate::tags::Range::parse(range).map_err(|e| {
                    fail(crate::git::Error::Rejected {
                        stage: STAGE,
                        entry: format!("semver \"{range}\""),
                        reason: e.reason,
                    })
                })?;
                let Some(tag) = crate::tags::highest(tags.iter().copied(), &parsed) else {
                    return Err(fail(self.not_found(format!("tag matching `{range}`"))));
                };
                let selected = refs::find(&listed, &format!("refs/tags/{tag}")).map(|id| Selected {
                    name: Some(tag.to_string()),
                    id,
                });
                if let Some(s) = &selected
                    && let Some(existing) = self.store.existing(&self.name, &s.revision())
                {
                    return Ok(existing);
                }
                (format!("+refs/tags/{tag}:refs/tags/{tag}"), selected)
            }
        };

        let fetched = self
            .cache
            .fetch(&repo, &self.remote, &spec, interrupt, |advertised| {
                let selected = match known {
                    Some(s) => s,
                    None => self.select(advertised).map_err(fail)?,
                };
                let revision = selected.revision();
                Ok(match self.store.existing(&self.name, &revision) {
                    Some(existing) => Want::Done(Ok(existing)),
                    None => Want::Fetch {
                        id: selected.id,
                        name: selected.name.clone().unwrap_or_else(|| selected.id.to_string()),
                        then: Err(selected),
                    },
                })
            });
        let selected = match fetched {
            Ok(Ok(existing)) => return Ok(existing),
            Ok(Err(selected)) => selected,
            Err(Failure::Cache(e)) => match (&self.reference, &e) {
                // A server that does not serve the pinned commit says so.
                (GitRef::Commit(c), crate::git::Error::Protocol { reason, .. })
                    if reason.to_ascii_lowercase().contains("not our ref") =>
                {
                    return Err(fail(self.not_found(format!(
                        "commit {c} (or the server does not serve commits by id)"
                    ))));
                }
                _ => return Err(Failure::Cache(e)),
            },
            Err(e) => return Err(e),
        };

        let revision = selected.revision();
        let mut broken = None;
        let created = self
            .store
            .create(&self.name, &revision, &self.ignore, self.limits, interrupt, |w| {
                export(&repo, &self.remote, selected.id, w).map_err(|f| match f {
                    Failure::Final(e) => e,
                    Failure::Cache(e) => {
                        broken = Some(e);
                        self.remote.protocol(STAGE, "the cache is damaged").into()
                    }
                })
            });
        match (created, broken) {
            (Ok(a), _) => Ok(a),
            (Err(_), Some(e)) => Err(Failure::Cache(e)),
            (Err(e), None) => Err(e.into()),
        }
    }

    fn not_found(&self, what: String) -> crate::git::Error {
        crate::git::Error::NotFound {
            stage: STAGE,
            url: self.remote.shown.clone(),
            what,
        }
    }

    /// The commit the configured ref names among the remote's refs.
    fn select(&self, advertised: &[gix::protocol::handshake::Ref]) -> Result<Selected, crate::git::Error> {
        let named = |name: String, full: String, what: String| {
            refs::find(advertised, &full)
                .map(|id| Selected { name: Some(name), id })
                .ok_or_else(|| self.not_found(what))
        };
        match &self.reference {
            GitRef::DefaultBranch => match refs::head(advertised) {
                Some((branch, Some(id))) => Ok(Selected {
                    name: Some(branch),
                    id,
                }),
                _ => Err(self.not_found("HEAD pointing at a branch (set `branch`)".into())),
            },
            GitRef::Branch(b) => named(b.clone(), format!("refs/heads/{b}"), format!("branch `{b}`")),
            GitRef::Tag(t) | GitRef::Semver(t) => {
                let tag = match &self.reference {
                    GitRef::Tag(_) => t.as_str(),
                    // Semver was resolved to one tag: the only one listed.
                    _ => advertised
                        .iter()
                        .find_map(|r| refs::peeled(r).0.strip_prefix("refs/tags/"))
                        .unwrap_or(t),
                };
                named(
                    tag.to_string(),
                    format!("refs/tags/{tag}"),
                    format!("tag `{tag}`"),
                )
            }
            GitRef::Commit(c) => Err(self.not_found(format!("commit {c}"))),
        }
    }
}

/// Write the tree of `commit` into the artifact. Symlinks and submodules
/// are skipped: a link could point anywhere, a submodule is not here.
fn export(
    repo: &gix::Repository,
    remote: &Remote,
    commit: gix::ObjectId,
    w: &mut Writer,
) -> Result<(), Failure<Error>> {
    let damaged = |e: gix::Error| {
        Failure::Cache(remote.protocol(STAGE, format!("cannot read {commit} from the cache: {e}")))
    };
    let root = repo
        .find_object(commit)
        .map_err(damaged)?
        .peel_to_tree()
        .map_err(damaged)?;
    let mut pending = vec![(root.id, String::new())];
    while let Some((id, prefix)) = pending.pop() {
        let tree = repo.find_tree(id).map_err(damaged)?;
        for entry in tree.iter() {
            let entry = entry.map_err(damaged)?;
            let name = entry.filename().to_str().map_err(|_| Error::Rejected {
                entry: format!("{prefix}{}", entry.filename()),
                reason: "the name is not UTF-8".into(),
            })?;
            let path = format!("{prefix}{name}");
            match entry.kind() {
                gix::object::tree::EntryKind::Tree => {
                    w.dir(&path)?;
                    pending.push((entry.object_id(), format!("{path}/")));
                }
                kind
                @ (gix::object::tree::EntryKind::Blob | gix::object::tree::EntryKind::BlobExecutable) => {
                    // Refuse a blob too large for the artifact before inflating it.
                    let header = repo.find_header(entry.object_id()).map_err(damaged)?;
                    if header.size() > w.budget() {
                        return Err(w.too_large(&path).into());
                    }
                    let blob = repo.find_blob(entry.object_id()).map_err(damaged)?;
                    let executable = kind == gix::object::tree::EntryKind::BlobExecutable;
                    w.file(&path, executable, &mut blob.data.as_slice())?;
                }
                gix::object::tree::EntryKind::Link | gix::object::tree::EntryKind::Commit => {}
            }
        }
    }
    Ok(())
}
