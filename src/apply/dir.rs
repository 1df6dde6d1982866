//! The `target dir=…` writer: puts an app's objects into a directory, one
//! file per object, for a tool that applies every manifest it finds there
//! (k3s' `server/manifests`, a sidecar, a person).
//!
//! **File names** are derived from the object's id so that they are stable
//! and never collide:
//!
//! ```text
//! {namespace}_{kind}.{group}_{name}.yaml    namespaced, named group   web_deployment.apps_podinfo.yaml
//! {namespace}_{kind}_{name}.yaml            namespaced, core group    web_configmap_settings.yaml
//! {kind}.{group}_{name}.yaml                cluster-scoped            clusterrole.rbac.authorization.k8s.io_view.yaml
//! {kind}_{name}.yaml                        cluster-scoped, core      namespace_web.yaml
//! ```
//!
//! `kind` is lowercased. No part can hold `_` (Kubernetes names and groups
//! never do), so the number of `_` tells the shapes apart and a kind never
//! holds `.`. Objects are refused unless the namespace is a DNS-1123 label,
//! the group and name DNS-1123 subdomains and the kind alphanumeric — except
//! that RBAC objects may have any name Kubernetes allows them
//! (`system:aggregate-to-view`): there every byte other than `a-z0-9.-` is
//! written `%XX`. A name longer than a file name may be is cut and ends in
//! a hash of the whole. The "namespace" is the one in the manifest: an
//! object without `metadata.namespace` gets no namespace part. Two objects
//! that would still share a file are refused.
//!
//! **Ownership**: `.mooring-{app}.inventory` (hidden, and with no `.yaml` or
//! `.json` extension, so that the tool reading the directory ignores it)
//! holds a JSON list of the file names the app wrote. A file that exists but
//! is not in the app's inventory belongs to someone else: the whole write is
//! refused before anything is changed. Only files listed in the inventory
//! are ever replaced or pruned; symlinks and non-regular files are never
//! written through. A missing inventory is an empty one; a corrupt one is an
//! error, not a guess.
//!
//! **Durability**: every file is written to a temp file in the directory,
//! fsynced and renamed into place, then the directory is fsynced. A file
//! whose bytes are unchanged is not touched (its mtime stays). Before new
//! files appear, the inventory is extended to name them, so a crash at any
//! point leaves an inventory that covers every file the app wrote; after the
//! objects and the pruning, it is rewritten to the exact set.
//!
//! New files are mode 0644, Secrets 0600; a replaced file keeps its mode.
//! Temp files are named `.mooring-{app}-XXXXXX.tmp`; one left by a killed
//! write is removed at the start of the app's next write. A write given up
//! at its timeout stops before its next file (the agent never starts
//! another write of the same directory until it has).

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::Digest as _;

use super::Summary;
use crate::reason::{Classify, Reason};
use crate::render::{Manifest, ObjectId};

/// The longest file name written (most file systems allow 255 bytes).
const MAX_FILE_NAME: usize = 240;
/// The largest inventory read.
const MAX_INVENTORY_BYTES: u64 = 16 << 20;

/// Why writing to the directory failed. Paths are the full paths.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("app name `{app}` cannot name an inventory file")]
    App { app: String },
    #[error("{id} ({position}): {reason}")]
    Invalid {
        id: String,
        position: String,
        reason: String,
    },
    #[error("{first} and {second} would both be written to {file}")]
    SameFile {
        file: String,
        first: String,
        second: String,
    },
    #[error("{} exists and is not managed by app {app}; remove it or change the target", path.display())]
    Foreign { path: PathBuf, app: String },
    #[error("{} is a symlink or not a regular file; mooring does not write through it", path.display())]
    NotRegular { path: PathBuf },
    #[error("{}: corrupt inventory ({reason}); fix or remove it (mooring does not guess which files are its own)", path.display())]
    Inventory { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("cannot prune {}: {reason}", path.display())]
    Prune { path: PathBuf, reason: String },
    #[error("{} problems:\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Error>),
}

impl Error {
    fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What to do with one object's file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Configure,
    Unchanged,
}

/// Write `manifests` of `app` into `dir` (created if missing) and prune
/// (when `prune`) or forget (otherwise) the files the app no longer holds.
///
/// Raising `cancel` (the write outlived its timeout) stops it before the
/// next file; what was written so far is covered by the inventory.
pub fn write(
    dir: &Path,
    app: &str,
    manifests: &[Manifest],
    prune: bool,
    cancel: &AtomicBool,
) -> Result<Summary, Error> {
    if !valid_app(app) {
        return Err(Error::App { app: app.to_string() });
    }
    let given_up = || -> Result<(), Error> {
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::io(
                dir,
                io::Error::new(io::ErrorKind::TimedOut, "the write was given up at its timeout"),
            ));
        }
        Ok(())
    };

    // Names first: nothing touches the disk while a manifest is invalid.
    let mut errors = Vec::new();
    let mut planned: Vec<(String, &Manifest)> = Vec::with_capacity(manifests.len());
    let mut by_name: HashMap<String, &Manifest> = HashMap::new();
    for m in manifests {
        match file_name(&m.id) {
            Ok(name) => {
                if let Some(first) = by_name.get(&name) {
                    errors.push(Error::SameFile {
                        file: name.clone(),
                        first: format!("{} ({})", first.id, first.position()),
                        second: format!("{} ({})", m.id, m.position()),
                    });
                    continue;
                }
                by_name.insert(name.clone(), m);
                planned.push((name, m));
            }
            Err(reason) => errors.push(Error::Invalid {
                id: m.id.to_string(),
                position: m.position(),
                reason,
            }),
        }
    }
    crate::reason::one_or_many(Error::Many, errors)?;

    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    remove_stale_temp_files(dir, app);
    let inventory_path = dir.join(inventory_name(app));
    let (old, old_bytes) = read_inventory(&inventory_path)?;

    // Check every file before writing any.
    let mut errors = Vec::new();
    let mut actions = Vec::with_capacity(planned.len());
    for (name, m) in &planned {
        let path = dir.join(name);
        let action = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Action::Create,
            Err(e) => return Err(Error::io(&path, e)),
            Ok(meta) if !meta.file_type().is_file() => {
                errors.push(Error::NotRegular { path });
                continue;
            }
            Ok(_) if !old.contains(name) => {
                errors.push(Error::Foreign {
                    path,
                    app: app.to_string(),
                });
                continue;
            }
            Ok(meta) if meta.len() != m.text.len() as u64 => Action::Configure,
            Ok(_) => {
                if same_bytes(&path, m.text.as_bytes())? {
                    Action::Unchanged
                } else {
                    Action::Configure
                }
            }
        };
        actions.push(action);
    }
    crate::reason::one_or_many(Error::Many, errors)?;

    let new: BTreeSet<String> = planned.iter().map(|(name, _)| name.clone()).collect();
    let mut on_disk = old_bytes;

    // Name new files in the inventory before they appear.
    let widened: BTreeSet<String> = old.union(&new).cloned().collect();
    if widened.len() != old.len() {
        on_disk = Some(write_inventory(dir, app, &inventory_path, &widened)?);
    }

    let mut summary = Summary::default();
    for ((name, m), action) in planned.iter().zip(&actions) {
        given_up()?;
        let path = dir.join(name);
        match action {
            Action::Unchanged => summary.unchanged += 1,
            Action::Create => {
                let mode = if m.id.kind == "Secret" && m.id.group().is_empty() {
                    0o600
                } else {
                    0o644
                };
                put(dir, app, &path, m.text.as_bytes(), Mode::Create(mode))?;
                tracing::debug!(app, file = %path.display(), object = %m.id, "created");
                summary.created += 1;
            }
            Action::Configure => {
                put(dir, app, &path, m.text.as_bytes(), Mode::Replace(&path))?;
                tracing::debug!(app, file = %path.display(), object = %m.id, "configured");
                summary.configured += 1;
            }
        }
    }
    if summary.created + summary.configured > 0 {
        sync_dir(dir);
    }

    // Files the app no longer holds: delete them, or forget them.
    let mut kept = new;
    let mut errors = Vec::new();
    if prune {
        let stale: Vec<String> = old.difference(&kept).cloned().collect();
        for name in stale {
            given_up()?;
            let path = dir.join(&name);
            match remove(&path) {
                Ok(true) => {
                    tracing::debug!(app, file = %path.display(), "pruned");
                    summary.pruned += 1;
                }
                Ok(false) => {}
                Err(reason) => {
                    // Still ours: try again next time.
                    kept.insert(name);
                    errors.push(Error::Prune { path, reason });
                }
            }
        }
        if summary.pruned > 0 {
            sync_dir(dir);
        }
    }

    if on_disk.as_deref() != Some(inventory_bytes(&kept).as_slice()) {
        write_inventory(dir, app, &inventory_path, &kept)?;
    }
    crate::reason::one_or_many(Error::Many, errors)?;
    Ok(summary)
}

/// The file name for `id` (see the module documentation), or why the
/// object cannot be written.
pub fn file_name(id: &ObjectId) -> Result<String, String> {
    let (group, version) = match id.api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", id.api_version.as_str()),
    };
    if version.is_empty()
        || !version
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(format!(
            "apiVersion `{}` is not a valid API version",
            id.api_version
        ));
    }
    if !group.is_empty() && !dns_subdomain(group) {
        return Err(format!("API group `{group}` is not a valid DNS-1123 subdomain"));
    }
    let kind_ok = id.kind.len() <= 63
        && id.kind.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && id.kind.bytes().all(|b| b.is_ascii_alphanumeric());
    if !kind_ok {
        return Err(format!(
            "kind `{}` is not a valid kind (letters and digits)",
            id.kind
        ));
    }
    if let Some(ns) = &id.namespace
        && !dns_label(ns)
    {
        return Err(format!(
            "namespace `{ns}` is not a valid namespace (a DNS-1123 label: 1 to 63 lowercase letters, digits or `-`)"
        ));
    }
    let rbac = group == "rbac.authorization.k8s.io";
    let name_ok = dns_subdomain(&id.name)
        || (rbac
            && id.name.len() <= 253
            && !matches!(id.name.as_str(), "" | "." | "..")
            && !id.name.contains(['/', '%'])
            && !id.name.chars().any(char::is_control));
    if !name_ok {
        return Err(format!(
            "name `{}` is not a valid DNS-1123 subdomain (lowercase letters, digits, `-` and `.`)",
            id.name.escape_debug()
        ));
    }

    let mut stem = String::new();
    if let Some(ns) = &id.namespace {
        stem.push_str(ns);
        stem.push('_');
    }
    stem.push_str(&id.kind.to_ascii_lowercase());
    if !group.is_empty() {
        stem.push('.');
        stem.push_str(group);
    }
    stem.push('_');
    for b in id.name.bytes() {
        if b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-' {
            stem.push(char::from(b));
        } else {
            stem.push_str(&format!("%{b:02X}"));
        }
    }
    if stem.len() + ".yaml".len() > MAX_FILE_NAME {
        // Every byte is ASCII here, so any cut is on a character boundary.
        let hash: String = sha2::Sha256::digest(stem.as_bytes())[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        stem.truncate(MAX_FILE_NAME - ".yaml".len() - hash.len() - 1);
        stem.push('-');
        stem.push_str(&hash);
    }
    stem.push_str(".yaml");
    Ok(stem)
}

/// The inventory's file name for `app`.
pub fn inventory_name(app: &str) -> String {
    format!(".mooring-{app}.inventory")
}

/// What `config` accepts as a name, checked again here because it becomes
/// part of a file name.
fn valid_app(app: &str) -> bool {
    let b = app.as_bytes();
    let alnum = |c: &u8| c.is_ascii_alphanumeric();
    !app.is_empty()
        && app.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || matches!(c, b'-' | b'_' | b'.'))
}

fn dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    let lower = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && b.first().is_some_and(lower)
        && b.last().is_some_and(lower)
        && b.iter().all(|c| lower(c) || *c == b'-')
}

fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(dns_label)
}

/// A name this writer could have produced: the only names an inventory may
/// hold, so that a tampered one cannot point anywhere else.
fn valid_entry(name: &str) -> bool {
    name.len() <= MAX_FILE_NAME
        && name.ends_with(".yaml")
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'%'))
}

/// The inventory at `path` (missing: empty) and its bytes as read.
fn read_inventory(path: &Path) -> Result<(BTreeSet<String>, Option<Vec<u8>>), Error> {
    let corrupt = |reason: String| Error::Inventory {
        path: path.to_path_buf(),
        reason,
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((BTreeSet::new(), None)),
        Err(e) => return Err(Error::io(path, e)),
        Ok(meta) if !meta.file_type().is_file() => {
            return Err(Error::NotRegular {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_INVENTORY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_INVENTORY_BYTES {
        return Err(corrupt(format!("larger than {MAX_INVENTORY_BYTES} bytes")));
    }
    let names: Vec<String> =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(format!("not a JSON list of file names: {e}")))?;
    if let Some(bad) = names.iter().find(|n| !valid_entry(n)) {
        return Err(corrupt(format!(
            "`{}` is not a file name mooring writes",
            bad.escape_debug()
        )));
    }
    Ok((names.into_iter().collect(), Some(bytes)))
}

fn inventory_bytes(names: &BTreeSet<String>) -> Vec<u8> {
    let mut out = String::from("[\n");
    for (i, name) in names.iter().enumerate() {
        let sep = if i + 1 == names.len() { "" } else { "," };
        // Names are plain ASCII (see `valid_entry`): serde_json cannot fail here.
        out.push_str(&format!("  {}{sep}\n", serde_json::Value::from(name.as_str())));
    }
    out.push_str("]\n");
    out.into_bytes()
}

/// Replace the inventory with `names`; gives the bytes written.
fn write_inventory(dir: &Path, app: &str, path: &Path, names: &BTreeSet<String>) -> Result<Vec<u8>, Error> {
    let bytes = inventory_bytes(names);
    put(dir, app, path, &bytes, Mode::Overwrite(0o644))?;
    sync_dir(dir);
    Ok(bytes)
}

/// Whether the regular file at `path` holds exactly `expected`.
fn same_bytes(path: &Path, expected: &[u8]) -> Result<bool, Error> {
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(expected.len());
    file.take(expected.len() as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes == expected)
}

enum Mode<'a> {
    /// A new file with these permission bits, never put over one that
    /// appeared meanwhile.
    Create(u32),
    /// Replacing `path`: keep its mode (and owner, where permitted).
    Replace(&'a Path),
    /// Whatever is there (the inventory), with these permission bits.
    Overwrite(u32),
}

/// Write `bytes` to `path` through a fsynced temp file in `dir` and a
/// rename, which replaces a directory entry and never writes through it.
/// Temp files of `app` left by a write that was killed: never renamed into
/// place, so nothing reads them; removed at the start of the next write
/// (writes of one directory never overlap within the agent).
fn remove_stale_temp_files(dir: &Path, app: &str) {
    let ours = temp_prefix(app);
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if is_file && name.ends_with(".tmp") && name.starts_with(&ours) {
            match fs::remove_file(entry.path()) {
                Ok(()) => tracing::debug!(app, file = %entry.path().display(), "removed a stale temp file"),
                Err(e) => {
                    tracing::warn!(app, file = %entry.path().display(), "cannot remove a stale temp file: {e}")
                }
            }
        }
    }
}

/// The prefix of `app`'s temp files in its target.
fn temp_prefix(app: &str) -> String {
    format!(".mooring-{app}-")
}

fn put(dir: &Path, app: &str, path: &Path, bytes: &[u8], mode: Mode<'_>) -> Result<(), Error> {
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(app))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| Error::io(dir, e))?;
    match mode {
        Mode::Create(bits) | Mode::Overwrite(bits) => {
            set_mode(tmp.as_file(), bits).map_err(|e| Error::io(tmp.path(), e))?;
        }
        Mode::Replace(old) => {
            if let Ok(meta) = fs::symlink_metadata(old) {
                tmp.as_file()
                    .set_permissions(meta.permissions())
                    .map_err(|e| Error::io(tmp.path(), e))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::MetadataExt as _;
                    // Only root may give a file away; anyone else keeps it as theirs.
                    let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
                }
            }
        }
    }
    tmp.write_all(bytes).map_err(|e| Error::io(tmp.path(), e))?;
    tmp.as_file().sync_all().map_err(|e| Error::io(tmp.path(), e))?;
    let persisted = match mode {
        Mode::Create(_) => tmp.persist_noclobber(path).map(drop),
        Mode::Replace(_) | Mode::Overwrite(_) => tmp.persist(path).map(drop),
    };
    persisted.map_err(|e| Error::io(path, e.error))
}

#[cfg(unix)]
fn set_mode(file: &fs::File, bits: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(bits))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _bits: u32) -> io::Result<()> {
    Ok(())
}

/// Delete the file (or symlink: never what it points to) at `path`.
/// `Ok(false)` when it was already gone.
fn remove(path: &Path) -> Result<bool, String> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.to_string()),
        Ok(meta) if meta.is_dir() => Err("it is a directory; mooring only removes files".to_string()),
        Ok(_) => match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.to_string()),
        },
    }
}

/// Make renames and deletions in `dir` durable. Some file systems cannot
/// sync a directory; that is not an error.
fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        match self {
            Error::Prune { .. } => Reason::PruneFailed,
            Error::Many(errors)
                if !errors.is_empty() && errors.iter().all(|e| e.reason() == Reason::PruneFailed) =>
            {
                Reason::PruneFailed
            }
            _ => Reason::ApplyFailed,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Foreign { .. }
            | Error::NotRegular { .. }
            | Error::Inventory { .. }
            | Error::Io { .. }
            | Error::Prune { .. } => true,
            Error::App { .. } | Error::Invalid { .. } | Error::SameFile { .. } => false,
            Error::Many(errors) => !errors.is_empty() && errors.iter().all(Error::retryable),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The writer, never given up.
    fn write(dir: &Path, app: &str, manifests: &[Manifest], prune: bool) -> Result<Summary, Error> {
        super::write(dir, app, manifests, prune, &AtomicBool::new(false))
    }

    #[test]
    fn a_write_given_up_stops_before_the_next_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = super::write(dir.path(), "edge", &[cm("a", "")], true, &AtomicBool::new(true)).unwrap_err();
        assert!(err.to_string().contains("given up at its timeout"), "{err}");
        assert!(!dir.path().join("web_configmap_a.yaml").exists());
        // The inventory names what might have been written: nothing is lost.
        assert_eq!(inventory(dir.path(), "edge"), ["web_configmap_a.yaml"]);
    }

    #[test]
    fn stale_temp_files_of_the_app_are_removed_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        for name in [
            ".mooring-edge-Ab12Cd.tmp",
            ".mooring-other-Ab12Cd.tmp",
            ".editor.tmp",
        ] {
            fs::write(dir.join(name), "half").unwrap();
        }
        write(dir, "edge", &[cm("a", "")], true).unwrap();
        assert!(!dir.join(".mooring-edge-Ab12Cd.tmp").exists());
        assert!(dir.join(".mooring-other-Ab12Cd.tmp").exists(), "another app's");
        assert!(dir.join(".editor.tmp").exists(), "not ours");
    }

    fn manifest(api_version: &str, kind: &str, namespace: Option<&str>, name: &str, body: &str) -> Manifest {
        // JSON strings are YAML too, and can hold any name.
        let q = |s: &str| match s.chars().all(|c| c.is_ascii_graphic()) {
            true => s.to_string(),
            false => serde_json::to_string(s).unwrap(),
        };
        let ns = namespace
            .map(|n| format!("\n  namespace: {}", q(n)))
            .unwrap_or_default();
        let (api_version, kind, name) = (q(api_version), q(kind), q(name));
        let text = format!("apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: {name}{ns}\n{body}");
        crate::render::manifest("app.yaml".into(), 1, text, crate::render::Typing::Kustomize)
            .unwrap()
            .remove(0)
    }

    fn cm(name: &str, body: &str) -> Manifest {
        manifest("v1", "ConfigMap", Some("web"), name, body)
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn inventory(dir: &Path, app: &str) -> Vec<String> {
        serde_json::from_slice(&fs::read(dir.join(inventory_name(app))).unwrap()).unwrap()
    }

    fn summary(created: usize, configured: usize, unchanged: usize, pruned: usize) -> Summary {
        Summary {
            created,
            configured,
            unchanged,
            pruned,
            recreated: Vec::new(),
        }
    }

    #[test]
    fn file_names() {
        let name = |v: &str, k: &str, ns: Option<&str>, n: &str| file_name(&manifest(v, k, ns, n, "").id);
        assert_eq!(
            name("apps/v1", "Deployment", Some("web"), "podinfo").unwrap(),
            "web_deployment.apps_podinfo.yaml"
        );
        assert_eq!(
            name("v1", "ConfigMap", Some("web"), "a.b").unwrap(),
            "web_configmap_a.b.yaml"
        );
        assert_eq!(
            name("v1", "Namespace", None, "web").unwrap(),
            "namespace_web.yaml"
        );
        assert_eq!(
            name(
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                None,
                "system:Edit_x"
            )
            .unwrap(),
            "clusterrole.rbac.authorization.k8s.io_system%3A%45dit%5Fx.yaml"
        );
        // Long names are cut and hashed, distinctly.
        let long = vec!["x".repeat(60); 4].join(".");
        let a = name("v1", "ConfigMap", Some("web"), &format!("{long}.a")).unwrap();
        let b = name("v1", "ConfigMap", Some("web"), &format!("{long}.b")).unwrap();
        assert!(
            a.len() <= MAX_FILE_NAME && a.ends_with(".yaml") && valid_entry(&a),
            "{a}"
        );
        assert_ne!(a, b);
    }

    #[test]
    fn hostile_names_are_refused() {
        let bad = [
            ("v1", "ConfigMap", Some("web"), "../x"),
            ("v1", "ConfigMap", Some("web"), "a/b"),
            ("v1", "ConfigMap", Some("web"), ".."),
            ("v1", "ConfigMap", Some("web"), "a\0b"),
            ("v1", "ConfigMap", Some("web"), "A"),
            ("v1", "ConfigMap", Some("web"), "a_b"),
            ("v1", "ConfigMap", Some("../etc"), "a"),
            ("v1", "ConfigMap", Some("a.b"), "a"),
            ("v1", "Config/Map", Some("web"), "a"),
            ("v1", "Config.Map", Some("web"), "a"),
            ("v1", "Config_Map", Some("web"), "a"),
            ("../v1", "ConfigMap", Some("web"), "a"),
            ("a_b/v1", "ConfigMap", Some("web"), "a"),
            ("g/v1/x", "ConfigMap", Some("web"), "a"),
            ("rbac.authorization.k8s.io/v1", "Role", Some("web"), "a/b"),
            ("rbac.authorization.k8s.io/v1", "Role", Some("web"), ".."),
        ];
        for (v, k, ns, n) in bad {
            let m = manifest(v, k, ns, n, "");
            assert!(file_name(&m.id).is_err(), "{v} {k} {ns:?} {n:?}");
            let dir = tempfile::tempdir().unwrap();
            let err = write(dir.path(), "app", &[cm("ok", ""), m], true).unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{err}");
            assert!(!err.retryable());
            assert_eq!(err.reason(), Reason::ApplyFailed);
            assert!(listing(dir.path()).is_empty(), "nothing is written");
        }
        let err = write(tempfile::tempdir().unwrap().path(), "../x", &[], true).unwrap_err();
        assert!(matches!(err, Error::App { .. }), "{err}");
    }

    #[test]
    fn three_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out/edge");
        let first = [
            cm("a", ""),
            cm("b", ""),
            manifest("v1", "Namespace", None, "web", ""),
        ];
        assert_eq!(write(&dir, "edge", &first, true).unwrap(), summary(3, 0, 0, 0));
        assert_eq!(
            listing(&dir),
            [
                ".mooring-edge.inventory",
                "namespace_web.yaml",
                "web_configmap_a.yaml",
                "web_configmap_b.yaml"
            ]
        );
        assert_eq!(
            fs::read_to_string(dir.join("web_configmap_a.yaml")).unwrap(),
            first[0].text
        );
        assert_eq!(
            inventory(&dir, "edge"),
            [
                "namespace_web.yaml",
                "web_configmap_a.yaml",
                "web_configmap_b.yaml"
            ]
        );

        let second = [
            cm("a", "data: {k: v}\n"),
            cm("b", ""),
            manifest("v1", "Namespace", None, "web", ""),
            cm("c", ""),
        ];
        assert_eq!(write(&dir, "edge", &second, true).unwrap(), summary(1, 1, 2, 0));
        assert_eq!(
            fs::read_to_string(dir.join("web_configmap_a.yaml")).unwrap(),
            second[0].text
        );

        let third = [
            cm("a", "data: {k: v}\n"),
            manifest("v1", "Namespace", None, "web", ""),
        ];
        assert_eq!(write(&dir, "edge", &third, true).unwrap(), summary(0, 0, 2, 2));
        assert_eq!(
            listing(&dir),
            [
                ".mooring-edge.inventory",
                "namespace_web.yaml",
                "web_configmap_a.yaml"
            ]
        );
        assert_eq!(
            inventory(&dir, "edge"),
            ["namespace_web.yaml", "web_configmap_a.yaml"]
        );

        // Nothing to do: nothing is written, not even the inventory.
        let inv = dir.join(inventory_name("edge"));
        let before = fs::metadata(&inv).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(write(&dir, "edge", &third, true).unwrap(), summary(0, 0, 2, 0));
        assert_eq!(fs::metadata(&inv).unwrap().modified().unwrap(), before);
    }

    #[test]
    fn without_prune_files_stay_but_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write(dir, "edge", &[cm("a", ""), cm("b", "")], false).unwrap();
        assert_eq!(
            write(dir, "edge", &[cm("a", "")], false).unwrap(),
            summary(0, 0, 1, 0)
        );
        assert!(dir.join("web_configmap_b.yaml").exists());
        assert_eq!(inventory(dir, "edge"), ["web_configmap_a.yaml"]);
        // Forgotten for good: a later prune leaves it alone too.
        assert_eq!(write(dir, "edge", &[], true).unwrap(), summary(0, 0, 0, 1));
        assert!(dir.join("web_configmap_b.yaml").exists());
        assert!(!dir.join("web_configmap_a.yaml").exists());
        assert_eq!(inventory(dir, "edge"), Vec::<String>::new());
    }

    #[test]
    fn foreign_files_are_not_touched() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write(dir, "other", &[cm("b", "")], true).unwrap();
        fs::write(dir.join("web_configmap_c.yaml"), "a person's file\n").unwrap();
        write(dir, "edge", &[cm("a", "")], true).unwrap();
        let before = listing(dir);

        let err = write(
            dir,
            "edge",
            &[cm("a", "data: {}\n"), cm("b", ""), cm("c", ""), cm("d", "")],
            true,
        )
        .unwrap_err();
        let Error::Many(errors) = &err else {
            panic!("{err}")
        };
        assert_eq!(errors.len(), 2, "{err}");
        assert!(
            err.to_string().contains(
                "web_configmap_b.yaml exists and is not managed by app edge; remove it or change the target"
            ),
            "{err}"
        );
        assert!(err.retryable());
        assert_eq!(err.reason(), Reason::ApplyFailed);
        // Nothing was written: no new file, no changed file, same inventory.
        assert_eq!(listing(dir), before);
        assert_eq!(
            fs::read_to_string(dir.join("web_configmap_a.yaml")).unwrap(),
            cm("a", "").text
        );
        assert_eq!(
            fs::read_to_string(dir.join("web_configmap_c.yaml")).unwrap(),
            "a person's file\n"
        );
        assert_eq!(inventory(dir, "edge"), ["web_configmap_a.yaml"]);
        // Apps never prune each other's files.
        assert_eq!(write(dir, "edge", &[], true).unwrap(), summary(0, 0, 0, 1));
        assert!(dir.join("web_configmap_b.yaml").exists());
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_in_the_target_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, "keep").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write(dir, "edge", &[cm("a", "")], true).unwrap();
        // Someone puts a symlink where the app's own file was.
        fs::remove_file(dir.join("web_configmap_a.yaml")).unwrap();
        std::os::unix::fs::symlink(&victim, dir.join("web_configmap_a.yaml")).unwrap();
        let err = write(dir, "edge", &[cm("a", "data: {}\n")], true).unwrap_err();
        assert!(matches!(err, Error::NotRegular { .. }), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        // A symlink as a new file, too.
        std::os::unix::fs::symlink(&victim, dir.join("web_configmap_b.yaml")).unwrap();
        let err = write(dir, "other", &[cm("b", "")], true).unwrap_err();
        assert!(matches!(err, Error::NotRegular { .. }), "{err}");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        // Pruning removes the link the inventory names, never its target.
        assert_eq!(write(dir, "edge", &[], true).unwrap(), summary(0, 0, 0, 1));
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        // A symlinked inventory is refused.
        std::os::unix::fs::symlink(&victim, dir.join(inventory_name("third"))).unwrap();
        let err = write(dir, "third", &[cm("z", "")], true).unwrap_err();
        assert!(matches!(err, Error::NotRegular { .. }), "{err}");
    }

    #[test]
    fn corrupt_inventories_are_errors() {
        for (bytes, what) in [
            (&b"not json"[..], "not a JSON list"),
            (b"{\"files\": []}", "not a JSON list"),
            (b"[\"../../etc/passwd\"]", "is not a file name"),
            (b"[\".mooring-x.inventory\"]", "is not a file name"),
            (b"[\"a/b.yaml\"]", "is not a file name"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let dir = dir.path();
            fs::write(dir.join("web_configmap_a.yaml"), "x").unwrap();
            fs::write(dir.join(inventory_name("edge")), bytes).unwrap();
            let err = write(dir, "edge", &[cm("a", "")], true).unwrap_err();
            assert!(matches!(err, Error::Inventory { .. }), "{err}");
            assert!(err.to_string().contains(what), "{err}");
            assert_eq!(fs::read(dir.join("web_configmap_a.yaml")).unwrap(), b"x");
        }
    }

    #[test]
    fn unchanged_files_keep_their_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write(dir, "edge", &[cm("a", ""), cm("b", "")], true).unwrap();
        let path = dir.join("web_configmap_a.yaml");
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        assert_eq!(
            write(dir, "edge", &[cm("a", ""), cm("b", "x: 1\n")], true).unwrap(),
            summary(0, 1, 1, 0)
        );
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), old);
    }

    #[cfg(unix)]
    #[test]
    fn modes() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let secret = manifest("v1", "Secret", Some("web"), "s", "");
        write(dir, "edge", &[cm("a", ""), secret.clone()], true).unwrap();
        let mode = |name: &str| fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("web_configmap_a.yaml"), 0o644);
        assert_eq!(mode("web_secret_s.yaml"), 0o600);
        fs::set_permissions(
            dir.join("web_configmap_a.yaml"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        write(dir, "edge", &[cm("a", "x: 1\n"), secret], true).unwrap();
        assert_eq!(mode("web_configmap_a.yaml"), 0o640);
        // No temp files are left behind.
        assert!(listing(dir).iter().all(|n| !n.ends_with(".tmp")));
    }

    #[test]
    fn objects_sharing_a_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = manifest("example.com/v1", "Widget", Some("web"), "a", "");
        let b = manifest("example.com/v2", "WIDGET", Some("web"), "a", "");
        let err = write(dir.path(), "edge", &[a, b], true).unwrap_err();
        assert!(matches!(err, Error::SameFile { .. }), "{err}");
        assert!(listing(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn failed_prunes_are_kept_in_the_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        write(dir, "edge", &[cm("a", ""), cm("b", "")], true).unwrap();
        // Replace b with a directory: pruning it must fail, not recurse.
        fs::remove_file(dir.join("web_configmap_b.yaml")).unwrap();
        fs::create_dir(dir.join("web_configmap_b.yaml")).unwrap();
        fs::write(dir.join("web_configmap_b.yaml/keep"), "x").unwrap();
        let err = write(dir, "edge", &[cm("a", "")], true).unwrap_err();
        assert!(matches!(err, Error::Prune { .. }), "{err}");
        assert_eq!(err.reason(), Reason::PruneFailed);
        assert!(dir.join("web_configmap_b.yaml/keep").exists());
        assert_eq!(
            inventory(dir, "edge"),
            ["web_configmap_a.yaml", "web_configmap_b.yaml"]
        );
    }
}
