//! Git sources through gix: a bare cache per source under
//! `state-dir/git/<source>`, fetched incrementally (and shallowly) with
//! explicit forced refspecs, the tree at the chosen commit exported into
//! an artifact through the hostile-input [`Writer`](super::artifact::Writer).
//!
//! The remote's refs are listed first; when the selected commit already
//! has an artifact, no pack is fetched. A cache that cannot be opened or
//! that fails for a reason other than the network is removed and cloned
//! again, once. Credentials are read from files at fetch time, handed to
//! gix in memory and never written to the cache's config.
//!
//! `git://` and HTTP(S) are pure Rust; `file://` runs `git upload-pack` and
//! `ssh://` runs `ssh` (both external programs).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use gix::bstr::ByteSlice as _;
use gix::protocol::handshake::Ref;
use gix::remote::fetch::Shallow;

use super::artifact::Writer;
use super::{Artifact, Error, Store};
use crate::busy::BusyGuard;
use crate::config::{self, GitRef};

/// Fetch `source` (a git source) and export its tree at the selected
/// revision into `store`.
pub fn fetch(source: &config::Source, state_dir: &Path, store: &Store) -> Result<Artifact, Error> {
    let config::SourceKind::Git { url, reference } = &source.kind else {
        return Err(Error::Protocol {
            url: super::redact(source.kind.url()),
            reason: "not a git source".into(),
        });
    };
    let secrets = Secrets::load(source.auth.as_ref(), source.timeout)?;
    if secrets.basic.is_some() && !credentials_allowed(url) {
        return Err(Error::Auth {
            url: super::redact(url),
            reason: "credentials are sent only over https (or plain http to a loopback address)".into(),
        });
    }
    let job = Job {
        name: source.name.value.clone(),
        url: url.clone(),
        shown: super::redact(url),
        reference: reference.clone(),
        ignore: source.ignore.clone(),
        limits: source.limits,
        secrets,
        cache: state_dir.join("git").join(source.name.as_str()),
        store: store.clone(),
        timeout: source.timeout,
    };
    run_with_timeout(job)
}

/// Run the job on its own thread; at the timeout, raise gix's interrupt
/// flag and return [`Error::Timeout`] even if the thread is stuck in I/O.
fn run_with_timeout(job: Job) -> Result<Artifact, Error> {
    let (shown, timeout) = (job.shown.clone(), job.timeout);
    let Some(guard) = BusyGuard::take(&job.cache) else {
        return Err(Error::Protocol {
            url: shown,
            reason: "an earlier fetch of this source has not stopped yet".into(),
        });
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = interrupt.clone();
    std::thread::Builder::new()
        .name("git-fetch".into())
        .spawn(move || {
            let _guard = guard;
            let _ = tx.send(job.run(&flag));
        })
        .map_err(|e| Error::Protocol {
            url: shown.clone(),
            reason: format!("cannot start the fetch thread: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            interrupt.store(true, Ordering::SeqCst);
            Err(Error::Timeout { url: shown, timeout })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Protocol {
            url: shown,
            reason: "the fetch thread stopped without a result".into(),
        }),
    }
}

/// What the source needs from the remote, credentials included.
struct Job {
    name: String,
    url: String,
    /// The URL as it may be shown.
    shown: String,
    reference: GitRef,
    ignore: Vec<String>,
    limits: config::Limits,
    secrets: Secrets,
    cache: PathBuf,
    store: Store,
    timeout: Duration,
}

/// Why an attempt failed: for good, or because of the local cache.
enum Failure {
    Final(Error),
    Cache(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Final(e)
    }
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
    fn run(&self, interrupt: &AtomicBool) -> Result<Artifact, Error> {
        let existed = self.cache.exists();
        match self.attempt(interrupt) {
            Ok(a) => Ok(a),
            Err(Failure::Final(e)) => Err(e),
            Err(Failure::Cache(reason)) if !existed => Err(self.protocol(reason)),
            Err(Failure::Cache(_)) => {
                std::fs::remove_dir_all(&self.cache).map_err(|e| Error::io(&self.cache, e))?;
                match self.attempt(interrupt) {
                    Ok(a) => Ok(a),
                    Err(Failure::Final(e)) => Err(e),
                    Err(Failure::Cache(reason)) => Err(self.protocol(reason)),
                }
            }
        }
    }

    fn protocol(&self, reason: String) -> Error {
        Error::Protocol {
            url: self.shown.clone(),
            reason: self.secrets.scrub(&reason),
        }
    }

    fn attempt(&self, interrupt: &AtomicBool) -> Result<Artifact, Failure> {
        if let GitRef::Commit(hex) = &self.reference {
            // A pin needs no listing: its revision is known up front.
            let revision = format!("sha1:{}", hex.to_ascii_lowercase());
            if let Some(existing) = self.store.existing(&self.name, &revision) {
                return Ok(existing);
            }
        }
        let repo = self.open_cache()?;

        let (spec, known) = match &self.reference {
            GitRef::DefaultBranch => ("+HEAD:refs/remotes/origin/HEAD".to_string(), None),
            GitRef::Branch(b) => (format!("+refs/heads/{b}:refs/remotes/origin/{b}"), None),
            GitRef::Tag(t) => (format!("+refs/tags/{t}:refs/tags/{t}"), None),
            GitRef::Commit(hex) => {
                let id = gix::ObjectId::from_hex(hex.as_bytes()).map_err(|e| Error::Protocol {
                    url: self.shown.clone(),
                    reason: format!("`{hex}` is not a full commit id: {e}"),
                })?;
                (
                    format!("+{id}:refs/mooring/pinned"),
                    Some(Selected { name: None, id }),
                )
            }
            GitRef::Semver(range) => {
                let listed = self.list(&repo, "+refs/tags/*:refs/tags/*", interrupt)?;
                let tags: Vec<&str> = listed
                    .iter()
                    .filter_map(|r| name_and_peeled(r).0.strip_prefix("refs/tags/"))
                    .collect();
                let parsed = crate::tags::Range::parse(range).map_err(|e| Error::Rejected {
                    entry: format!("semver \"{range}\""),
                    reason: e.reason,
                })?;
                let Some(tag) = crate::tags::highest(tags.iter().copied(), &parsed) else {
                    return Err(Error::NotFound {
                        url: self.shown.clone(),
                        what: format!("tag matching `{range}`"),
                    }
                    .into());
                };
                let id = listed
                    .iter()
                    .map(name_and_peeled)
                    .find(|(n, _)| n.strip_prefix("refs/tags/") == Some(tag))
                    .map(|(_, id)| id);
                let selected = id.map(|id| Selected {
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

        let remote = self.remote(&repo, &spec)?;
        let connection = remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(|e| self.network(&e, interrupt))?
            .with_credentials(self.secrets.helper(&self.url));
        let prepare = connection
            .prepare_fetch(gix::progress::Discard, Default::default())
            .map_err(|e| self.network(&e, interrupt))?;
        let selected = match known {
            Some(s) => s,
            None => self.select(&prepare.ref_map().remote_refs)?,
        };
        let revision = selected.revision();
        if let Some(existing) = self.store.existing(&self.name, &revision) {
            return Ok(existing);
        }
        let depth = std::num::NonZeroU32::MIN;
        prepare
            .with_shallow(Shallow::DepthAtRemote(depth))
            .receive(gix::progress::Discard, interrupt)
            .map_err(|e| match self.network(&e, interrupt) {
                Failure::Final(Error::Protocol { .. }) => Failure::Cache(self.reason(&e)),
                other => other,
            })?;

        let mut broken = None;
        let created = self
            .store
            .create(&self.name, &revision, &self.ignore, self.limits, interrupt, |w| {
                export(&repo, selected.id, w).map_err(|f| match f {
                    Failure::Final(e) => e,
                    Failure::Cache(reason) => {
                        broken = Some(reason);
                        self.protocol("the cache is damaged".into())
                    }
                })
            });
        match (created, broken) {
            (Ok(a), _) => Ok(a),
            (Err(_), Some(reason)) => Err(Failure::Cache(reason)),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// Open the bare cache, or make it. Nothing from the user's or the
    /// system's git config is read.
    fn open_cache(&self) -> Result<gix::Repository, Failure> {
        let mut overrides = vec![
            "core.logAllRefUpdates=false".to_string(),
            // No object larger than the artifact may hold is ever inflated,
            // while the pack is indexed or after.
            format!("gitoxide.objects.allocLimit={}", self.limits.max_bytes),
        ];
        if let Some(cmd) = &self.secrets.ssh_command {
            overrides.push(format!("core.sshCommand={cmd}"));
            overrides.push("ssh.variant=ssh".into());
        }
        let options = gix::open::Options::isolated().config_overrides(overrides);
        if self.cache.exists() {
            let damaged =
                |e: gix::Error| Failure::Cache(format!("cannot open the cache: {}", self.reason(&e)));
            let repo = gix::open_opts(&self.cache, options).map_err(damaged)?;
            // A fetch never reads HEAD, but a cache with a broken one is damaged.
            repo.head().map_err(damaged)?;
            return Ok(repo);
        }
        if let Some(parent) = self.cache.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        gix::ThreadSafeRepository::init_opts(
            &self.cache,
            gix::create::Kind::Bare,
            gix::create::Options::default(),
            options,
        )
        .map(gix::Repository::from)
        .map_err(|e| Error::Protocol {
            url: self.shown.clone(),
            reason: format!(
                "cannot create the cache at {}: {}",
                self.cache.display(),
                self.reason(&e)
            ),
        })
        .map_err(Failure::Final)
    }

    fn remote<'r>(&self, repo: &'r gix::Repository, spec: &str) -> Result<gix::Remote<'r>, Failure> {
        let bad = |e: gix::Error| Error::Protocol {
            url: self.shown.clone(),
            reason: self.reason(&e),
        };
        Ok(repo
            .remote_at(self.url.as_str())
            .map_err(bad)?
            .with_fetch_tags(gix::remote::fetch::Tags::None)
            .with_refspecs([spec], gix::remote::Direction::Fetch)
            .map_err(bad)?)
    }

    /// The remote refs matching `spec`, without fetching anything.
    fn list(&self, repo: &gix::Repository, spec: &str, interrupt: &AtomicBool) -> Result<Vec<Ref>, Failure> {
        let remote = self.remote(repo, spec)?;
        let (map, _) = remote
            .connect(gix::remote::Direction::Fetch)
            .map_err(|e| self.network(&e, interrupt))?
            .with_credentials(self.secrets.helper(&self.url))
            .ref_map(gix::progress::Discard, Default::default())
            .map_err(|e| self.network(&e, interrupt))?;
        Ok(map.remote_refs)
    }

    /// The commit the configured ref names among the remote's refs.
    fn select(&self, refs: &[Ref]) -> Result<Selected, Failure> {
        let find = |full: &str| refs.iter().map(name_and_peeled).find(|(n, _)| *n == full);
        let not_found = |what: String| {
            Failure::Final(Error::NotFound {
                url: self.shown.clone(),
                what,
            })
        };
        match &self.reference {
            GitRef::DefaultBranch => {
                let head = refs.iter().find_map(|r| match r {
                    Ref::Symbolic {
                        full_ref_name,
                        target,
                        object,
                        ..
                    } if full_ref_name == "HEAD" => Some((target, *object)),
                    _ => None,
                });
                let Some((target, id)) = head else {
                    return Err(not_found("HEAD pointing at a branch (set `branch`)".into()));
                };
                let branch = target.to_str_lossy();
                let branch = branch.strip_prefix("refs/heads/").unwrap_or(&branch);
                Ok(Selected {
                    name: Some(branch.to_string()),
                    id,
                })
            }
            GitRef::Branch(b) => find(&format!("refs/heads/{b}"))
                .map(|(_, id)| Selected {
                    name: Some(b.clone()),
                    id,
                })
                .ok_or_else(|| not_found(format!("branch `{b}`"))),
            GitRef::Tag(t) | GitRef::Semver(t) => {
                let tag = match &self.reference {
                    GitRef::Tag(_) => t.as_str(),
                    // Semver was resolved to one tag: the only one listed.
                    _ => refs
                        .iter()
                        .find_map(|r| name_and_peeled(r).0.strip_prefix("refs/tags/"))
                        .unwrap_or(t),
                };
                find(&format!("refs/tags/{tag}"))
                    .map(|(_, id)| Selected {
                        name: Some(tag.to_string()),
                        id,
                    })
                    .ok_or_else(|| not_found(format!("tag `{tag}`")))
            }
            GitRef::Commit(c) => Err(not_found(format!("commit {c}"))),
        }
    }

    /// Map a gix error from talking to the remote. Anything not known to
    /// be the network's or the credentials' fault is a `Protocol` error.
    fn network(&self, e: &gix::Error, interrupt: &AtomicBool) -> Failure {
        let url = self.shown.clone();
        if interrupt.load(Ordering::SeqCst) {
            return Failure::Final(Error::Timeout {
                url,
                timeout: self.timeout,
            });
        }
        let reason = self.reason(e);
        let kinds: Vec<std::io::ErrorKind> = chain(e)
            .filter_map(|c| c.downcast_ref::<std::io::Error>())
            .map(|io| io.kind())
            .collect();
        use std::io::ErrorKind as K;
        let lower = reason.to_ascii_lowercase();
        if e.is_unauthenticated() || e.is_permission_denied() || kinds.contains(&K::PermissionDenied) {
            return Failure::Final(Error::Auth { url, reason });
        }
        let unreachable = kinds.iter().any(|k| {
            matches!(
                k,
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::NotConnected
                    | K::AddrNotAvailable
                    | K::TimedOut
                    | K::HostUnreachable
                    | K::NetworkUnreachable
            )
        }) || lower.contains("error trying to connect")
            || lower.contains("dns error")
            || lower.contains("failed to lookup address")
            || lower.contains("connection refused");
        if unreachable {
            return Failure::Final(Error::Unreachable { url, reason });
        }
        if lower.contains("too large to fit in memory") {
            // gix refused to inflate an object past `gitoxide.objects.allocLimit`.
            return Failure::Final(Error::Rejected {
                entry: "the pack sent by the remote".into(),
                reason: format!(
                    "it holds an object larger than the artifact may be ({} bytes; raise `limits max-size` if it belongs there)",
                    self.limits.max_bytes
                ),
            });
        }
        if let (GitRef::Commit(c), true) = (&self.reference, lower.contains("not our ref")) {
            return Failure::Final(Error::NotFound {
                url,
                what: format!("commit {c} (or the server does not serve commits by id)"),
            });
        }
        if lower.contains("404") || lower.contains("not found") && lower.contains("repository") {
            return Failure::Final(Error::NotFound {
                url,
                what: format!("git repository ({reason})"),
            });
        }
        Failure::Final(Error::Protocol { url, reason })
    }

    /// A one-line account of `e` and its causes, with secrets removed.
    fn reason(&self, e: &gix::Error) -> String {
        let mut parts: Vec<String> = Vec::new();
        for cause in chain(e) {
            let text = cause.to_string();
            if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        let text = parts.join(": ");
        let text = if self.url != self.shown {
            text.replace(&self.url, &self.shown)
        } else {
            text
        };
        self.secrets.scrub(&text)
    }
}

/// Every error in `e`'s tree, each followed by its `source()` chain.
pub(crate) fn chain(e: &gix::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    e.iter_errors().flat_map(|top| {
        let mut next = Some(top);
        std::iter::from_fn(move || {
            let cur = next?;
            next = cur.source();
            Some(cur)
        })
    })
}

/// A remote ref's full name and the object it finally points at (an
/// annotated tag peeled to its target).
fn name_and_peeled(r: &Ref) -> (&str, gix::ObjectId) {
    let (name, id) = match r {
        Ref::Peeled {
            full_ref_name,
            object,
            ..
        }
        | Ref::Direct {
            full_ref_name,
            object,
        }
        | Ref::Symbolic {
            full_ref_name,
            object,
            ..
        } => (full_ref_name, *object),
        Ref::Unborn { full_ref_name, .. } => (full_ref_name, gix::ObjectId::null(gix::hash::Kind::Sha1)),
    };
    (name.to_str().unwrap_or(""), id)
}

/// Write the tree of `commit` into the artifact. Symlinks and submodules
/// are skipped: a link could point anywhere, a submodule is not here.
fn export(repo: &gix::Repository, commit: gix::ObjectId, w: &mut Writer) -> Result<(), Failure> {
    let damaged = |e: gix::Error| Failure::Cache(format!("cannot read {commit} from the cache: {e}"));
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

/// Credentials, read from their files for one fetch or push only.
pub(crate) struct Secrets {
    /// HTTP basic user name and password (or token).
    pub(crate) basic: Option<(String, String)>,
    /// `core.sshCommand` for a configured key.
    pub(crate) ssh_command: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("basic", &self.basic.as_ref().map(|(user, _)| (user, "***")))
            .field("ssh_command", &self.ssh_command)
            .finish()
    }
}

impl Secrets {
    fn load(auth: Option<&config::Auth>, timeout: Duration) -> Result<Secrets, Error> {
        Secrets::read(auth, timeout).map_err(|(path, source)| Error::Credentials { path, source })
    }

    /// Read the files `auth` names; the file that could not be read, and why.
    pub(crate) fn read(
        auth: Option<&config::Auth>,
        timeout: Duration,
    ) -> Result<Secrets, (PathBuf, std::io::Error)> {
        let Some(auth) = auth else {
            return Ok(Secrets {
                basic: None,
                ssh_command: None,
            });
        };
        let basic = match (&auth.password_file, &auth.token_file) {
            (Some(file), _) => Some((
                auth.username.clone().unwrap_or_else(|| "git".into()),
                secret_text(file).map_err(|e| (file.clone(), e))?,
            )),
            (None, Some(file)) => Some((
                auth.username.clone().unwrap_or_else(|| "x-access-token".into()),
                secret_text(file).map_err(|e| (file.clone(), e))?,
            )),
            (None, None) => None,
        };
        let ssh_command = match &auth.ssh_key {
            Some(key) => {
                std::fs::File::open(key).map_err(|e| (key.clone(), e))?;
                // `-F /dev/null`: no ssh_config of the user or the machine, whose
                // IdentityFile, KnownHostsCommand, ProxyCommand… would apply too.
                let mut cmd = format!(
                    "ssh -F /dev/null -i {} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o ConnectTimeout={}",
                    shell_quote(key),
                    timeout.as_secs().max(1)
                );
                if let Some(known) = &auth.known_hosts {
                    std::fs::File::open(known).map_err(|e| (known.clone(), e))?;
                    // Only this file vouches: not /etc/ssh/ssh_known_hosts either.
                    cmd.push_str(&format!(
                        " -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null",
                        shell_quote(known)
                    ));
                }
                Some(cmd)
            }
            None => None,
        };
        Ok(Secrets { basic, ssh_command })
    }

    /// The credential helper gix calls when the server asks. It answers
    /// only for `url`'s origin (scheme, host and port): a server that
    /// redirects elsewhere and asks there for credentials gets none.
    pub(crate) fn helper(
        &self,
        url: &str,
    ) -> impl FnMut(
        gix::credentials::helper::Action,
    ) -> gix::Result<Option<gix::credentials::protocol::Outcome>>
    + 'static {
        let basic = self.basic.clone();
        let origin = origin(url.as_bytes());
        move |action| match (action, &basic) {
            (gix::credentials::helper::Action::Get(ctx), Some((user, password)))
                if origin.is_some() && asked_origin(&ctx) == origin =>
            {
                Ok(Some(gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: user.clone(),
                        password: password.clone(),
                        oauth_refresh_token: None,
                    },
                    next: ctx.into(),
                }))
            }
            _ => Ok(None),
        }
    }

    /// `text` with the password or token replaced.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match &self.basic {
            Some((_, secret)) if !secret.is_empty() => text.replace(secret.as_str(), "***"),
            _ => text.to_string(),
        }
    }
}

/// `(scheme, host, port)` of `url`, the port made explicit; `None` when it
/// has no host.
fn origin(url: &[u8]) -> Option<(String, String, Option<u16>)> {
    let url = gix::url::parse(gix::bstr::BStr::new(url)).ok()?;
    let host = url.host()?.to_ascii_lowercase();
    Some((url.scheme.as_str().to_string(), host, url.port_or_default()))
}

/// The origin a credential request is for.
fn asked_origin(ctx: &gix::credentials::protocol::Context) -> Option<(String, String, Option<u16>)> {
    match &ctx.url {
        Some(url) => origin(url),
        None => origin(&ctx.to_url()?),
    }
}

/// Whether a password or token may be sent to `url`: not in clear text,
/// except to this machine.
pub(crate) fn credentials_allowed(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("http://") else {
        return true;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A secret file's content without one trailing line break.
pub(crate) fn secret_text(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let text = text.strip_suffix('\n').unwrap_or(&text);
    Ok(text.strip_suffix('\r').unwrap_or(text).to_string())
}

/// `path` quoted for the shell command line gix runs ssh with.
pub(crate) fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_trimmed_of_one_newline_and_scrubbed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\r\n").unwrap();
        assert_eq!(secret_text(&file).unwrap(), "s3cret");
        let auth = config::Auth {
            token_file: Some(file),
            ..Default::default()
        };
        let secrets = Secrets::load(Some(&auth), Duration::from_secs(5)).unwrap();
        assert_eq!(
            secrets.basic,
            Some(("x-access-token".to_string(), "s3cret".to_string()))
        );
        assert_eq!(secrets.scrub("bad s3cret here"), "bad *** here");
        let missing = config::Auth {
            password_file: Some(dir.path().join("nope")),
            username: Some("bot".into()),
            ..Default::default()
        };
        assert!(matches!(
            Secrets::load(Some(&missing), Duration::from_secs(5)),
            Err(Error::Credentials { .. })
        ));
    }

    #[test]
    fn credentials_go_in_clear_text_only_to_this_machine() {
        assert!(credentials_allowed("https://example.com/r.git"));
        assert!(credentials_allowed("http://127.0.0.1:8080/r.git"));
        assert!(credentials_allowed("http://localhost/r.git"));
        assert!(credentials_allowed("http://[::1]:80/r.git"));
        assert!(!credentials_allowed("http://example.com/r.git"));
        assert!(!credentials_allowed("http://127.0.0.1.example.com/r.git"));
    }

    #[test]
    fn credentials_are_given_only_to_the_configured_origin() {
        let secrets = Secrets {
            basic: Some(("bot".into(), "pw".into())),
            ssh_command: None,
        };
        let mut helper = secrets.helper("https://git.example.com/org/repo.git");
        let mut ask = |url: &str| {
            let ctx = gix::credentials::protocol::Context {
                url: Some(url.into()),
                ..Default::default()
            };
            helper(gix::credentials::helper::Action::Get(ctx))
                .expect("helper")
                .is_some()
        };
        assert!(ask("https://git.example.com/org/repo.git"));
        assert!(
            ask("https://GIT.example.com:443/org/other.git"),
            "same origin, other path"
        );
        assert!(!ask("http://git.example.com/org/repo.git"), "downgraded to http");
        assert!(!ask("https://git.example.com:8443/org/repo.git"), "another port");
        assert!(!ask("https://evil.example.com/org/repo.git"), "another host");
    }

    #[test]
    fn ssh_paths_are_quoted() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
