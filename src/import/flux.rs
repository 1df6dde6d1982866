//! `mooring import flux`: Flux objects in a repository → the equivalent
//! mooring config.
//!
//! Takes paths (files or directories) inside a root directory (the git work
//! tree they are in) and reads them as Flux reads a Kustomization's path:
//! with [`crate::render`], so `kustomization.yaml` trees are built and plain
//! directories are walked. A Flux `Kustomization` whose path is in the same
//! root and holds Flux objects is followed (the bootstrap layout:
//! `clusters/prod` → `infrastructure.yaml`, `apps.yaml`); one whose path
//! holds only Flux objects becomes no app. Flux's own installation
//! (objects labeled `app.kubernetes.io/part-of: flux`, the toolkit CRDs) is
//! left out.
//!
//! Gives the config text — every node with a comment naming the Flux object
//! it came from — and notes for what has no equivalent or needs a hand:
//! secrets become clearly marked placeholder paths, never values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::kdl::{Out, ident, q};
use crate::render;

mod helm;
mod notify;

/// What an import gives.
#[derive(Debug)]
pub struct Import {
    /// The config, as KDL text.
    pub config: String,
    /// What did not translate, or needs a hand, in the order found.
    pub notes: Vec<Note>,
}

/// One thing the user must know about the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// `file:line` of the Flux object, relative to the root; empty when it
    /// concerns the whole import.
    pub at: String,
    /// `Kind namespace/name`, or empty.
    pub object: String,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.at.is_empty(), self.object.is_empty()) {
            (false, false) => write!(f, "{}: {}: {}", self.at, self.object, self.message),
            (false, true) => write!(f, "{}: {}", self.at, self.message),
            _ => write!(f, "{}", self.message),
        }
    }
}

/// Why nothing could be imported.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {message}")]
    Path { path: String, message: String },
    #[error("{0}")]
    Render(#[from] render::Error),
}

/// Where secrets that Flux keeps in Secrets are expected as files.
const SECRETS_DIR: &str = "/etc/mooring/secrets";

/// Import the Flux objects under `paths` (relative to `root`).
pub fn flux(root: &Path, paths: &[String]) -> Result<Import, Error> {
    let mut reader = Reader {
        root,
        objects: Vec::new(),
        seen: HashMap::new(),
        visited: HashMap::new(),
        notes: Vec::new(),
        outcomes: HashMap::new(),
    };
    for p in paths {
        let found = reader.visit(p, &[], None)?;
        if found.flux == 0 {
            reader.notes.push(Note {
                at: p.clone(),
                object: String::new(),
                message: "holds no Flux objects".into(),
            });
        }
    }
    Ok(reader.write())
}

/// One Flux object read.
#[derive(Debug, Clone)]
struct Obj {
    kind: String,
    ns: String,
    name: String,
    at: String,
    spec: Value,
}

impl Obj {
    fn id(&self) -> String {
        format!("{} {}/{}", self.kind, self.ns, self.name)
    }

    fn key(&self) -> (String, String, String) {
        (self.kind.clone(), self.ns.clone(), self.name.clone())
    }

    fn note(&self, message: impl Into<String>) -> Note {
        Note {
            at: self.at.clone(),
            object: self.id(),
            message: message.into(),
        }
    }

    fn str(&self, path: &str) -> Option<&str> {
        get(&self.spec, path).and_then(Value::as_str)
    }

    fn bool(&self, path: &str) -> bool {
        get(&self.spec, path).and_then(Value::as_bool) == Some(true)
    }
}

fn get<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, k| v.get(k))
}

/// What visiting a path found.
#[derive(Debug, Clone, Copy, Default)]
struct Found {
    flux: usize,
    other: usize,
}

struct Reader<'r> {
    root: &'r Path,
    objects: Vec<Obj>,
    seen: HashMap<(String, String, String), usize>,
    /// Paths read, and what they held.
    visited: HashMap<String, Found>,
    notes: Vec<Note>,
    /// Kustomizations followed: what their path held.
    outcomes: HashMap<(String, String, String), Found>,
}

const FLUX_GROUPS: [&str; 5] = [
    "source.toolkit.fluxcd.io",
    "kustomize.toolkit.fluxcd.io",
    "helm.toolkit.fluxcd.io",
    "image.toolkit.fluxcd.io",
    "notification.toolkit.fluxcd.io",
];

impl Reader<'_> {
    /// Read `path` the way Flux reads a Kustomization's path, with `vars`
    /// substituted (the parent Kustomization's `postBuild.substitute`), and
    /// follow the Kustomizations found there.
    fn visit(
        &mut self,
        path: &str,
        vars: &[(String, String)],
        default_ns: Option<&str>,
    ) -> Result<Found, Error> {
        let key = normal(path);
        if let Some(found) = self.visited.get(&key) {
            return Ok(*found);
        }
        let opts = render::Options {
            vars,
            ..Default::default()
        };
        let manifests = render::render(self.root, &key, &opts)?;
        let mut found = Found::default();
        let mut own = 0usize;
        let mut follow = Vec::new();
        for m in manifests {
            let group = m.id.group().to_string();
            let object = &m.object;
            let part_of_flux = get(object, "metadata.labels")
                .and_then(|l| l.get("app.kubernetes.io/part-of"))
                .and_then(Value::as_str)
                == Some("flux");
            let toolkit_crd =
                m.id.kind == "CustomResourceDefinition" && m.id.name.ends_with(".toolkit.fluxcd.io");
            if part_of_flux || toolkit_crd {
                own += 1;
                continue;
            }
            if !FLUX_GROUPS.contains(&group.as_str()) {
                found.other += 1;
                continue;
            }
            found.flux += 1;
            let obj = Obj {
                kind: m.id.kind.clone(),
                ns: m
                    .id
                    .namespace
                    .clone()
                    .or_else(|| default_ns.map(str::to_string))
                    .unwrap_or_else(|| "default".into()),
                name: m.id.name.clone(),
                at: m.position(),
                spec: object.get("spec").cloned().unwrap_or(Value::Null),
            };
            if let Some(&i) = self.seen.get(&obj.key()) {
                if self.objects[i].spec != obj.spec {
                    let first = self.objects[i].at.clone();
                    self.notes.push(obj.note(format!(
                        "defined again, differently, at {first}; the first is imported"
                    )));
                }
                continue;
            }
            if obj.kind == "Kustomization" {
                follow.push(obj.clone());
            }
            self.seen.insert(obj.key(), self.objects.len());
            self.objects.push(obj);
        }
        self.visited.insert(key.clone(), found);
        if own > 0 {
            self.notes.push(Note {
                at: key.clone(),
                object: String::new(),
                message: format!("{own} objects of Flux's own installation left out: mooring replaces them"),
            });
        }
        for k in follow {
            self.follow(&k)?;
        }
        Ok(found)
    }

    /// Follow Kustomization `k` when its path is in this root.
    fn follow(&mut self, k: &Obj) -> Result<(), Error> {
        if k.str("sourceRef.kind") != Some("GitRepository") {
            return Ok(());
        }
        let path = normal(k.str("path").unwrap_or("."));
        if path.starts_with("..") || !self.root.join(&path).is_dir() {
            return Ok(());
        }
        let vars = substitute(k);
        let target = k.str("targetNamespace").map(str::to_string);
        match self.visit(&path, &vars, target.as_deref()) {
            Ok(found) => {
                self.outcomes.insert(k.key(), found);
            }
            Err(e) => self
                .notes
                .push(k.note(format!("its path `{path}` was not read for Flux objects: {e}"))),
        }
        Ok(())
    }

    fn write(mut self) -> Import {
        let names = Names::new(&self.objects);
        let mut out = Out::default();
        out.comment("Imported from Flux by `mooring import flux`. Review every `placeholder` path:");
        out.comment(&format!(
            "Flux keeps credentials in Secrets; mooring reads them from files (under {SECRETS_DIR} here)."
        ));
        let mut suspends = Vec::new();
        let objects = std::mem::take(&mut self.objects);
        let by_key: HashMap<_, _> = objects.iter().map(|o| (o.key(), o)).collect();

        let mut clusters = BTreeMap::new();
        for o in objects.iter().filter(|o| o.kind == "Kustomization") {
            if let Some(secret) = o.str("kubeConfig.secretRef.name") {
                let key = o.str("kubeConfig.secretRef.key").unwrap_or("value");
                clusters
                    .entry(format!("{}-{}", o.ns, secret))
                    .or_insert_with(|| (o.clone(), secret.to_string(), key.to_string()));
            }
        }
        for (name, (o, secret, key)) in &clusters {
            out.blank();
            out.comment(&format!("from {}: kubeConfig of {}", o.at, o.id()));
            out.block(&format!("cluster {}", q(&sanitize(name))), |out| {
                out.line(&format!(
                    "kubeconfig {} // placeholder: the key `{key}` of Secret {}/{secret}",
                    q(&placeholder(&o.ns, secret, key)),
                    o.ns
                ));
            });
        }

        for o in &objects {
            let notes = match o.kind.as_str() {
                "GitRepository" => git_source(&mut out, o, &names),
                "OCIRepository" if helm::is_chart_repository(o, &objects) => {
                    helm::oci_chart_source(&mut out, o, &names)
                }
                "OCIRepository" => oci_source(&mut out, o, &names),
                "HelmRepository" => helm::helm_source(&mut out, o, &names),
                _ => continue,
            };
            self.notes.extend(notes);
            if o.bool("suspend") {
                suspends.push(("source", names.get(o), o.clone()));
            }
        }

        for o in objects.iter().filter(|o| o.kind == "Kustomization") {
            let found = self.outcomes.get(&o.key()).copied();
            if let Some(f) = found
                && f.other == 0
                && f.flux > 0
            {
                out.blank();
                out.comment(&format!(
                    "from {}: {} holds only Flux objects, imported here: no app",
                    o.at,
                    o.id()
                ));
                continue;
            }
            let mut notes = app(&mut out, o, &names, &by_key, &self.outcomes, &clusters);
            if let Some(f) = found
                && f.flux > 0
            {
                notes.push(o.note(format!(
                    "its path also holds {} Flux objects besides manifests; they were imported, and the app would apply them as they are: move them out of the path",
                    f.flux
                )));
            }
            self.notes.extend(notes);
            if o.bool("suspend") && names.has(o) {
                suspends.push(("app", names.get(o), o.clone()));
            }
        }

        for o in objects.iter().filter(|o| o.kind == "HelmRelease") {
            let notes = helm::helm_app(&mut out, o, &names, &by_key);
            self.notes.extend(notes);
            if o.bool("suspend") && names.has(o) {
                suspends.push(("app", names.get(o), o.clone()));
            }
        }

        for o in objects.iter().filter(|o| o.kind == "ImagePolicy") {
            let notes = image(&mut out, o, &names, &by_key);
            self.notes.extend(notes);
        }
        for o in objects.iter().filter(|o| o.kind == "ImageRepository") {
            if o.bool("suspend") {
                for p in objects.iter().filter(|p| {
                    p.kind == "ImagePolicy" && repository_of(p, &by_key).map(|r| r.key()) == Some(o.key())
                }) {
                    suspends.push(("image", names.get(p), o.clone()));
                }
            }
        }
        for o in objects.iter().filter(|o| o.kind == "ImageUpdateAutomation") {
            let notes = automation(&mut out, o, &names, &by_key);
            self.notes.extend(notes);
            if o.bool("suspend") && names.has(o) {
                suspends.push(("automation", names.get(o), o.clone()));
            }
        }

        self.notes
            .extend(notify::receivers(&mut out, &objects, &names, &by_key));
        self.notes
            .extend(notify::alerts(&mut out, &objects, &names, &by_key));

        for o in &objects {
            let why = match o.kind.as_str() {
                "HelmChart" if helm::chart_users(o, &objects) > 0 => continue,
                "HelmChart" => {
                    "a HelmChart alone deploys nothing, and no imported HelmRelease's chartRef names it; a chart app names its chart itself (`chart`, or `path` in a git source)"
                }
                "Bucket" => "S3-compatible buckets are not a mooring source",
                "GitRepository"
                | "Alert"
                | "Provider"
                | "Receiver"
                | "OCIRepository"
                | "HelmRepository"
                | "HelmRelease"
                | "Kustomization"
                | "ImagePolicy"
                | "ImageRepository"
                | "ImageUpdateAutomation" => continue,
                _ => "not a kind mooring imports",
            };
            out.blank();
            out.comment(&format!("from {}: {} not imported: {why}", o.at, o.id()));
            self.notes.push(o.note(format!("not imported: {why}")));
        }

        if !suspends.is_empty() {
            out.blank();
        }
        for (kind, name, o) in suspends {
            out.line(&format!(
                "suspend {kind}={} reason={} // from {}",
                q(&name),
                q(&format!("suspended in Flux ({})", o.id())),
                o.at
            ));
        }
        Import {
            config: out.finish(),
            notes: self.notes,
        }
    }
}

/// A Flux path as the render takes it: relative, without `./`.
fn normal(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// `postBuild.substitute` of `k`, in name order.
fn substitute(k: &Obj) -> Vec<(String, String)> {
    get(&k.spec, "postBuild.substitute")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn placeholder(ns: &str, secret: &str, key: &str) -> String {
    format!("{SECRETS_DIR}/{ns}/{secret}/{key}")
}

/// How the credentials in a Flux `secretRef` are used.
#[derive(Debug, Clone, Copy)]
enum Creds {
    /// `identity` and `known_hosts`, for git over ssh.
    Ssh,
    /// `username` (this placeholder) and `password`.
    Basic(&'static str),
    /// `.dockerconfigjson`, for registries.
    DockerConfig,
}

/// An `auth` block whose files are placeholders for the keys of `o`'s
/// Secret `secret`, and the note that says to write them.
fn auth(out: &mut Out, o: &Obj, secret: &str, creds: Creds) -> Note {
    let from = format!("Secret {}/{secret}", o.ns);
    let file = |key: &str| q(&placeholder(&o.ns, secret, key));
    out.block("auth", |out| match creds {
        Creds::Ssh => {
            for (node, key) in [("ssh-key", "identity"), ("known-hosts", "known_hosts")] {
                out.line(&format!(
                    "{node} {} // placeholder: the key `{key}` of {from}",
                    file(key)
                ));
            }
        }
        Creds::Basic(user) => {
            out.line(&format!(
                "username {} // placeholder: the key `username` of {from}",
                q(user)
            ));
            out.line(&format!(
                "password-file {} // placeholder: the key `password` (for a `bearerToken`, use token-file)",
                file("password")
            ));
        }
        Creds::DockerConfig => out.line(&format!(
            "docker-config {} // placeholder: the key `.dockerconfigjson` of {from}",
            file(".dockerconfigjson")
        )),
    });
    o.note(format!(
        "credentials come from {from}: write them to the placeholder files"
    ))
}

/// A name mooring accepts: letters, digits, `-`, `_`, `.`, at most 63,
/// starting and ending with a letter or digit, no `.` next to `.`, `-`, `_`.
fn sanitize(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.truncate(63);
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if s.is_empty() { "imported".into() } else { s }
}

/// mooring names for Flux objects: the Flux name where it is unique among
/// the objects that become the same mooring kind, else `namespace-name`.
struct Names {
    names: HashMap<(String, String, String), String>,
}

fn category(kind: &str) -> Option<&'static str> {
    match kind {
        "GitRepository" | "OCIRepository" | "HelmRepository" => Some("source"),
        "Kustomization" | "HelmRelease" => Some("app"),
        "ImagePolicy" => Some("image"),
        "ImageUpdateAutomation" => Some("automation"),
        _ => None,
    }
}

impl Names {
    fn new(objects: &[Obj]) -> Names {
        let mut count: HashMap<(&str, String), usize> = HashMap::new();
        for o in objects {
            if let Some(c) = category(&o.kind) {
                *count.entry((c, sanitize(&o.name))).or_default() += 1;
            }
        }
        let mut taken: HashSet<(&str, String)> = HashSet::new();
        let mut names = HashMap::new();
        for o in objects {
            let Some(c) = category(&o.kind) else { continue };
            let plain = sanitize(&o.name);
            let mut name = if count[&(c, plain.clone())] == 1 {
                plain
            } else {
                sanitize(&format!("{}-{}", o.ns, o.name))
            };
            let base = name.clone();
            let mut n = 2;
            while !taken.insert((c, name.clone())) {
                name = sanitize(&format!("{base}-{n}"));
                n += 1;
            }
            names.insert(o.key(), name);
        }
        Names { names }
    }

    fn has(&self, o: &Obj) -> bool {
        self.names.contains_key(&o.key())
    }

    fn get(&self, o: &Obj) -> String {
        self.names
            .get(&o.key())
            .cloned()
            .unwrap_or_else(|| sanitize(&o.name))
    }

    fn of(&self, kind: &str, ns: &str, name: &str) -> Option<&str> {
        self.names
            .get(&(kind.to_string(), ns.to_string(), name.to_string()))
            .map(String::as_str)
    }
}

/// A Go duration (`1m0s`, `1h30m`, `500ms`, `1.5h`) as a mooring duration.
fn duration(go: &str) -> Option<String> {
    let mut ms: f64 = 0.0;
    let mut rest = go.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1000.0,
            "ms" => 1.0,
            "us" | "µs" => 0.001,
            "ns" => 0.000_001,
            _ => return None,
        };
        ms += number * scale;
        rest = &rest[u..];
    }
    let ms = ms.round() as u64;
    if ms == 0 {
        return None;
    }
    if !ms.is_multiple_of(1000) {
        return Some(format!("{ms}ms"));
    }
    let (h, m, s) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60);
    let mut out = String::new();
    for (v, u) in [(h, "h"), (m, "m"), (s, "s")] {
        if v > 0 {
            out.push_str(&format!("{v}{u}"));
        }
    }
    Some(out)
}

/// `interval`/`timeout` lines from Flux's fields of those names.
fn durations(out: &mut Out, o: &Obj, notes: &mut Vec<Note>, fields: &[(&str, &str)]) {
    for (field, node) in fields {
        if let Some(d) = o.str(field) {
            match duration(d) {
                Some(d) => out.line(&format!("{node} {}", q(&d))),
                None => notes.push(o.note(format!(
                    "`{field}: {d}` is not a duration mooring reads; left to the default"
                ))),
            }
        }
    }
}

/// An OCI `provider` other than `generic` (cloud identity): noted, not
/// imported.
fn provider(o: &Obj, out: &mut Out, notes: &mut Vec<Note>) {
    if let Some(p) = o.str("provider").filter(|p| *p != "generic") {
        out.comment(&format!(
            "Flux `provider: {p}` not imported: use auth with docker-config"
        ));
        notes.push(o.note(format!(
            "`provider: {p}` not imported: cloud identity is not supported; give credentials in auth"
        )));
    }
}

fn unsupported(o: &Obj, notes: &mut Vec<Note>, out: &mut Out, fields: &[(&str, &str)]) {
    for (field, why) in fields {
        if let Some(v) = get(&o.spec, field)
            && !v.is_null()
            && v != &Value::Bool(false)
        {
            out.comment(&format!("Flux `{field}` not imported: {why}"));
            notes.push(o.note(format!("`spec.{field}` not imported: {why}")));
        }
    }
}

fn header(out: &mut Out, o: &Obj) {
    out.blank();
    out.comment(&format!("from {}: {}", o.at, o.id()));
}

fn git_source(out: &mut Out, o: &Obj, names: &Names) -> Vec<Note> {
    let mut notes = Vec::new();
    let url = o.str("url").unwrap_or_default().to_string();
    header(out, o);
    out.block(&format!("source {}", q(&names.get(o))), |out| {
        out.line(&format!("git {}", q(&url)));
        let r = |k: &str| o.str(&format!("ref.{k}"));
        if let Some(c) = r("commit") {
            out.line(&format!("commit {}", q(c)));
            if r("branch").is_some() {
                out.comment("Flux `ref.branch` dropped: mooring pins the commit alone");
            }
        } else if let Some(n) = r("name") {
            if let Some(b) = n.strip_prefix("refs/heads/") {
                out.line(&format!("branch {}", q(b)));
            } else if let Some(t) = n.strip_prefix("refs/tags/") {
                out.line(&format!("tag {}", q(t)));
            } else {
                out.comment(&format!(
                    "Flux `ref.name: {n}` not imported: mooring follows branches, tags and commits"
                ));
                notes.push(o.note(format!(
                    "`ref.name: {n}` not imported: only refs/heads/… and refs/tags/… translate"
                )));
            }
        } else if let Some(s) = r("semver") {
            out.line(&format!("semver {}", q(s)));
        } else if let Some(t) = r("tag") {
            out.line(&format!("tag {}", q(t)));
        } else if let Some(b) = r("branch") {
            out.line(&format!("branch {}", q(b)));
        }
        durations(
            out,
            o,
            &mut notes,
            &[("interval", "interval"), ("timeout", "timeout")],
        );
        if let Some(secret) = o.str("secretRef.name") {
            let ssh = url.starts_with("ssh://") || (!url.contains("://") && url.contains('@'));
            notes.push(auth(
                out,
                o,
                secret,
                if ssh { Creds::Ssh } else { Creds::Basic("git") },
            ));
        }
        ignore(out, o);
        unsupported(
            o,
            &mut notes,
            out,
            &[
                ("recurseSubmodules", "mooring does not fetch submodules"),
                ("include", "mooring sources do not include other sources"),
                ("verify", "commit signature verification is not supported"),
                (
                    "proxySecretRef",
                    "proxies are taken from the environment (HTTPS_PROXY)",
                ),
            ],
        );
    });
    notes
}

fn ignore(out: &mut Out, o: &Obj) {
    if let Some(text) = o.str("ignore") {
        let globs: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(q)
            .collect();
        if !globs.is_empty() {
            out.line(&format!("ignore {}", globs.join(" ")));
        }
    }
}

/// The interval, timeout, credentials and `insecure` of a source, as its
/// Flux object gives them.
fn access(out: &mut Out, o: &Obj, notes: &mut Vec<Note>, creds: Creds) {
    durations(out, o, notes, &[("interval", "interval"), ("timeout", "timeout")]);
    if let Some(secret) = o.str("secretRef.name") {
        notes.push(auth(out, o, secret, creds));
    }
    if o.bool("insecure") {
        out.line("insecure #true");
    }
}

/// Fields of an OCIRepository that mooring does not import, and why.
const OCI_UNSUPPORTED: [(&str, &str); 5] = [
    ("ref.semverFilter", "filter tags with a narrower semver range"),
    ("verify", "signature verification is not supported"),
    ("certSecretRef", "custom CAs are not imported"),
    ("serviceAccountName", "cloud identity is not supported"),
    (
        "proxySecretRef",
        "proxies are taken from the environment (HTTPS_PROXY)",
    ),
];

fn oci_source(out: &mut Out, o: &Obj, names: &Names) -> Vec<Note> {
    let mut notes = Vec::new();
    let url = o.str("url").unwrap_or_default();
    let repo = url.strip_prefix("oci://").unwrap_or(url).to_string();
    header(out, o);
    out.block(&format!("source {}", q(&names.get(o))), |out| {
        out.line(&format!("oci {}", q(&repo)));
        let r = |k: &str| o.str(&format!("ref.{k}"));
        if let Some(d) = r("digest") {
            out.line(&format!("digest {}", q(d)));
        } else if let Some(s) = r("semver") {
            out.line(&format!("semver {}", q(s)));
        } else if let Some(t) = r("tag") {
            out.line(&format!("tag {}", q(t)));
        }
        access(out, o, &mut notes, Creds::DockerConfig);
        ignore(out, o);
        provider(o, out, &mut notes);
        let layers = (
            "layerSelector",
            "mooring takes the artifact's first layer, as Flux does by default",
        );
        unsupported(o, &mut notes, out, &[&OCI_UNSUPPORTED[..], &[layers]].concat());
    });
    notes
}

#[allow(clippy::too_many_lines)]
fn app(
    out: &mut Out,
    o: &Obj,
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
    outcomes: &HashMap<(String, String, String), Found>,
    clusters: &BTreeMap<String, (Obj, String, String)>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let source_kind = o.str("sourceRef.kind").unwrap_or("GitRepository");
    let source_ns = o.str("sourceRef.namespace").unwrap_or(&o.ns);
    let source_name = o.str("sourceRef.name").unwrap_or_default();
    let Some(source) = names.of(source_kind, source_ns, source_name) else {
        header(out, o);
        let why = format!(
            "its source {source_kind} {source_ns}/{source_name} is not among the imported objects (or is a kind mooring has no source for); import the files that define it too"
        );
        out.comment(&format!("not imported: {why}"));
        notes.push(o.note(format!("not imported: {why}")));
        return notes;
    };
    header(out, o);
    out.block(&format!("app {}", q(&names.get(o))), |out| {
        out.line(&format!("source {}", q(source)));
        let path = normal(o.str("path").unwrap_or("."));
        if path != "." {
            out.line(&format!("path {}", q(&path)));
        }
        if let Some(secret) = o.str("kubeConfig.secretRef.name") {
            let name = sanitize(&format!("{}-{}", o.ns, secret));
            if clusters.contains_key(&format!("{}-{}", o.ns, secret)) {
                out.line(&format!("cluster {}", q(&name)));
            }
        }
        if let Some(ns) = o.str("targetNamespace") {
            out.line(&format!("namespace {}", q(ns)));
        }
        durations(out, o, &mut notes, &[("interval", "interval"), ("timeout", "timeout")]);
        if o.bool("prune") {
            out.line("prune #true");
        }
        if o.bool("force") {
            out.line("force #true");
        }
        if o.bool("wait") || get(&o.spec, "healthChecks").is_some_and(|h| h.as_array().is_some_and(|a| !a.is_empty())) {
            let timeout = o
                .str("timeout")
                .or_else(|| o.str("interval"))
                .and_then(duration);
            match timeout {
                Some(t) => out.line(&format!("wait timeout={}", q(&t))),
                None => out.line("wait"),
            }
            if !o.bool("wait") {
                out.comment("Flux `healthChecks` named objects; mooring waits for everything the app applied");
            }
        }
        let mut deps = Vec::new();
        for d in get(&o.spec, "dependsOn").and_then(Value::as_array).into_iter().flatten() {
            let name = d.get("name").and_then(Value::as_str).unwrap_or_default();
            let ns = d.get("namespace").and_then(Value::as_str).unwrap_or(&o.ns);
            let key = ("Kustomization".to_string(), ns.to_string(), name.to_string());
            let bootstrap = outcomes.get(&key).is_some_and(|f| f.other == 0 && f.flux > 0);
            match names.of("Kustomization", ns, name) {
                Some(n) if !bootstrap && by_key.contains_key(&key) => deps.push(q(n)),
                _ if bootstrap => {}
                _ => {
                    out.comment(&format!("Flux dependsOn {ns}/{name} not imported: no such Kustomization among the imported objects"));
                    notes.push(o.note(format!("dependsOn {ns}/{name} dropped: no such Kustomization was imported")));
                }
            }
        }
        if !deps.is_empty() {
            out.line(&format!("depends-on {}", deps.join(" ")));
        }
        if let Some(p) = o.str("namePrefix") {
            out.line(&format!("name-prefix {}", q(p)));
        }
        if let Some(s) = o.str("nameSuffix") {
            out.line(&format!("name-suffix {}", q(s)));
        }
        if let Some(meta) = get(&o.spec, "commonMetadata") {
            out.block("common-metadata", |out| {
                for field in ["labels", "annotations"] {
                    if let Some(m) = meta.get(field).and_then(Value::as_object)
                        && !m.is_empty()
                    {
                        out.block(field, |out| {
                            for (k, v) in m {
                                out.line(&format!("{} {}", ident(k), q(&scalar(v))));
                            }
                        });
                    }
                }
            });
        }
        let components: Vec<String> = get(&o.spec, "components")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(q)
            .collect();
        if !components.is_empty() {
            out.line(&format!("components {}", components.join(" ")));
        }
        images(out, get(&o.spec, "images"));
        patches(out, get(&o.spec, "patches"));
        let vars = substitute(o);
        if !vars.is_empty() {
            out.block("substitute", |out| {
                for (k, v) in &vars {
                    out.line(&format!("{} {}", ident(k), q(v)));
                }
            });
        }
        for s in get(&o.spec, "postBuild.substituteFrom").and_then(Value::as_array).into_iter().flatten() {
            let kind = match s.get("kind").and_then(Value::as_str) {
                Some("Secret") => "secret",
                _ => "configmap",
            };
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let optional = if s.get("optional").and_then(Value::as_bool) == Some(true) {
                " optional=#true"
            } else {
                ""
            };
            out.line(&format!("substitute-from {kind}={}{optional}", q(&format!("{}/{name}", o.ns))));
        }
        if get(&o.spec, "decryption").is_some() {
            let provider = o.str("decryption.provider").unwrap_or("sops");
            if provider == "sops" {
                let secret = o.str("decryption.secretRef.name");
                match secret {
                    Some(secret) => out.line(&format!(
                        "sops age-key-file={} // placeholder: the age keys (`*.agekey`) of Secret {}/{secret}",
                        q(&placeholder(&o.ns, secret, "age.agekey")),
                        o.ns
                    )),
                    None => {
                        out.line(&format!("sops age-key-file={} // placeholder: the age identities", q(&format!("{SECRETS_DIR}/age.agekey"))));
                    }
                }
                notes.push(o.note("SOPS: write the age identities to the placeholder file; PGP and cloud KMS keys are not supported"));
            }
        }
        unsupported(
            o,
            &mut notes,
            out,
            &[
                ("retryInterval", "mooring retries failures with its own backoff"),
                ("serviceAccountName", "mooring applies with its cluster's credentials"),
                ("healthCheckExprs", "custom health expressions are not supported"),
                ("deletionPolicy", "objects are pruned when removed from the source, never on app deletion"),
                ("ignoreMissingComponents", "every component must exist"),
                ("patchesStrategicMerge", "write them as patches (spec.patches)"),
                ("patchesJson6902", "write them as patches (spec.patches)"),
            ],
        );
    });
    if o.str("sourceRef.kind") == Some("Bucket") {
        notes.push(o.note("its source is a Bucket, which mooring does not have"));
    }
    notes
}

/// A YAML scalar as the string it means.
fn scalar(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// Flux `images` entries (of a Kustomization, or a HelmRelease's
/// post-renderer) as `set-image` lines.
fn images(out: &mut Out, list: Option<&Value>) {
    for i in list.and_then(Value::as_array).into_iter().flatten() {
        let mut line = format!(
            "set-image {}",
            q(i.get("name").and_then(Value::as_str).unwrap_or_default())
        );
        for (field, prop) in [
            ("newName", "new-name"),
            ("newTag", "new-tag"),
            ("digest", "digest"),
        ] {
            if let Some(v) = i.get(field).and_then(Value::as_str) {
                line.push_str(&format!(" {prop}={}", q(v)));
            }
        }
        out.line(&line);
    }
}

/// Flux `patches` entries (of a Kustomization, or a HelmRelease's
/// post-renderer) as `patch` nodes.
fn patches(out: &mut Out, list: Option<&Value>) {
    for p in list.and_then(Value::as_array).into_iter().flatten() {
        let Some(text) = p.get("patch").and_then(Value::as_str) else {
            continue;
        };
        let mut head = String::from("patch");
        if let Some(t) = p.get("target") {
            for (field, prop) in [
                ("group", "group"),
                ("version", "version"),
                ("kind", "kind"),
                ("name", "name"),
                ("namespace", "namespace"),
                ("labelSelector", "label-selector"),
                ("annotationSelector", "annotation-selector"),
            ] {
                if let Some(v) = t.get(field).and_then(Value::as_str) {
                    head.push_str(&format!(" {prop}={}", q(v)));
                }
            }
        }
        out.multiline(&head, text);
    }
}

/// The ImageRepository an ImagePolicy refers to.
fn repository_of<'o>(p: &Obj, by_key: &HashMap<(String, String, String), &'o Obj>) -> Option<&'o Obj> {
    let name = p.str("imageRepositoryRef.name")?;
    let ns = p.str("imageRepositoryRef.namespace").unwrap_or(&p.ns);
    by_key
        .get(&("ImageRepository".to_string(), ns.to_string(), name.to_string()))
        .copied()
}

/// An image reference as mooring wants it: with the registry host.
fn with_registry(image: &str) -> String {
    let first = image.split('/').next().unwrap_or_default();
    let has_host =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    if has_host {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    }
}

fn image(
    out: &mut Out,
    p: &Obj,
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let Some(repo) = repository_of(p, by_key) else {
        header(out, p);
        let why = "its ImageRepository is not among the imported objects";
        out.comment(&format!("not imported: {why}"));
        notes.push(p.note(format!("not imported: {why}")));
        return notes;
    };
    header(out, p);
    out.comment(&format!("and {}: {}", repo.at, repo.id()));
    out.block(&format!("image {}", q(&names.get(p))), |out| {
        out.line(&format!(
            "repository {}",
            q(&with_registry(repo.str("image").unwrap_or_default()))
        ));
        if p.ns != "flux-system" {
            out.line(&format!("namespace {}", q(&p.ns)));
        }
        if let Some(r) = p.str("policy.semver.range") {
            out.line(&format!("semver {}", q(r)));
        } else if get(&p.spec, "policy.alphabetical").is_some() {
            out.line(&format!(
                "alphabetical order={}",
                q(p.str("policy.alphabetical.order").unwrap_or("asc"))
            ));
        } else if get(&p.spec, "policy.numerical").is_some() {
            out.line(&format!(
                "numerical order={}",
                q(p.str("policy.numerical.order").unwrap_or("asc"))
            ));
        }
        if let Some(pattern) = p.str("filterTags.pattern") {
            match p.str("filterTags.extract") {
                Some(x) => out.line(&format!("filter {} extract={}", raw(pattern), q(x))),
                None => out.line(&format!("filter {}", raw(pattern))),
            }
        }
        let exclusions: Vec<String> = get(&repo.spec, "exclusionList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(raw)
            .collect();
        if !exclusions.is_empty() {
            out.line(&format!("exclude {}", exclusions.join(" ")));
        }
        durations(
            out,
            repo,
            &mut notes,
            &[("interval", "interval"), ("timeout", "timeout")],
        );
        if let Some(secret) = repo.str("secretRef.name") {
            notes.push(auth(out, repo, secret, Creds::DockerConfig));
        }
        if repo.bool("insecure") {
            out.line("insecure #true");
        }
        if let Some(prov) = repo.str("provider").filter(|v| *v != "generic") {
            notes.push(repo.note(format!(
                "`provider: {prov}` not imported: cloud identity is not supported; give credentials in auth"
            )));
        }
        unsupported(
            repo,
            &mut notes,
            out,
            &[
                ("certSecretRef", "custom CAs are not imported"),
                ("serviceAccountName", "cloud identity is not supported"),
                ("accessFrom", "policies are not namespaced objects in mooring"),
            ],
        );
        unsupported(
            p,
            &mut notes,
            out,
            &[(
                "digestReflectionPolicy",
                "use `:digest` markers; mooring resolves digests when they are asked for",
            )],
        );
    });
    notes
}

/// A regex as a KDL raw string, so `\d` needs no escaping.
fn raw(s: &str) -> String {
    let mut hashes = String::from("#");
    while s.contains(&format!("\"{hashes}")) {
        hashes.push('#');
    }
    if s.contains('\n') {
        return q(s);
    }
    format!("{hashes}\"{s}\"{hashes}")
}

fn automation(
    out: &mut Out,
    a: &Obj,
    names: &Names,
    by_key: &HashMap<(String, String, String), &Obj>,
) -> Vec<Note> {
    let mut notes = Vec::new();
    let ns = a.str("sourceRef.namespace").unwrap_or(&a.ns);
    let name = a.str("sourceRef.name").unwrap_or_default();
    let source = names
        .of("GitRepository", ns, name)
        .filter(|_| by_key.contains_key(&("GitRepository".to_string(), ns.to_string(), name.to_string())));
    header(out, a);
    let Some(source) = source else {
        let why = format!("its GitRepository {ns}/{name} is not among the imported objects");
        out.comment(&format!("not imported: {why}"));
        notes.push(a.note(format!("not imported: {why}")));
        return notes;
    };
    let message = a
        .str("git.commit.messageTemplate")
        .map(|t| go_template(t, &format!("{}/{}", a.ns, a.name)));
    out.block(&format!("automation {}", q(&names.get(a))), |out| {
        out.line(&format!("source {}", q(source)));
        if let Some(b) = a.str("git.checkout.ref.branch") {
            out.line(&format!("checkout {}", q(b)));
        }
        if let Some(b) = a.str("git.push.branch") {
            out.line(&format!("push {}", q(b)));
        }
        if let Some(p) = a.str("update.path") {
            let p = normal(p);
            if p != "." {
                out.line(&format!("path {}", q(&p)));
            }
        }
        let author_name = a.str("git.commit.author.name").unwrap_or("fluxcdbot");
        let author_email = a
            .str("git.commit.author.email")
            .unwrap_or("fluxcdbot@users.noreply.github.com");
        out.line(&format!(
            "author name={} email={}",
            q(author_name),
            q(author_email)
        ));
        match &message {
            Some(Ok(m)) => out.line(&format!("message {}", q(m))),
            Some(Err(why)) => {
                out.comment(&format!(
                    "Flux messageTemplate not translated ({why}); the default message is used. It was:"
                ));
                if let Some(t) = a.str("git.commit.messageTemplate") {
                    out.comment(t);
                }
                notes.push(a.note(format!(
                    "messageTemplate not translated ({why}); the default message is used"
                )));
            }
            None => {}
        }
        durations(out, a, &mut notes, &[("interval", "interval")]);
        unsupported(
            a,
            &mut notes,
            out,
            &[
                ("git.push.refspec", "mooring pushes to a branch"),
                ("git.push.options", "push options are not supported"),
                ("git.commit.signingKey", "commit signing is not supported"),
                ("git.checkout.ref.tag", "automations check out branches"),
                ("git.checkout.ref.semver", "automations check out branches"),
                ("git.checkout.ref.commit", "automations check out branches"),
                (
                    "policySelector",
                    "every marked line under the path is updated, whatever policy it names",
                ),
            ],
        );
    });
    notes
}

/// A Go `messageTemplate` in mooring's template language, for the fields
/// Flux documents; `Err` says what could not be translated.
fn go_template(template: &str, automation: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    // What `.` and each `$var` mean inside the open ranges.
    let mut scopes: Vec<Scope> = Vec::new();
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("an action is not closed")?;
        let mut action = &after[..end];
        rest = &after[end + 2..];
        let trim_left = action.starts_with('-');
        let trim_right = action.ends_with('-');
        if trim_left {
            action = &action[1..];
        }
        if trim_right {
            action = &action[..action.len() - 1];
        }
        let (l, r) = (
            if trim_left { "-" } else { "" },
            if trim_right { "-" } else { "" },
        );
        let words: Vec<&str> = action.split_whitespace().collect();
        match words.as_slice() {
            ["range", rest @ ..] => {
                let (vars, collection) = match rest {
                    [c] => (vec![], *c),
                    [v, ":=", c] => (vec![v.trim_end_matches(',')], *c),
                    [k, v, ":=", c] => (vec![k.trim_end_matches(','), *v], *c),
                    _ => return Err(format!("`{{{{{action}}}}}`")),
                };
                let scope = match collection {
                    ".Changed.FileChanges" | ".Updated.Files" => Scope::Files {
                        key: vars.first().map(|s| s.to_string()),
                    },
                    ".Changed.Changes" | ".Updated.Images" => Scope::Changes {
                        var: vars.last().map(|s| s.to_string()),
                        images: collection == ".Updated.Images",
                    },
                    other => return Err(format!("ranging over `{other}`")),
                };
                let n = scopes.len();
                match &scope {
                    Scope::Files { .. } => out.push_str(&format!(
                        "{{%{l} for file{n} in changes|map(attribute=\"file\")|unique {r}%}}"
                    )),
                    Scope::Changes { .. } => out.push_str(&format!("{{%{l} for c{n} in changes {r}%}}")),
                }
                scopes.push(scope);
            }
            ["end"] => {
                scopes.pop().ok_or("an `end` without a range")?;
                out.push_str(&format!("{{%{l} endfor {r}%}}"));
            }
            [".AutomationObject"] => {
                // Plain text, trimmed as the action would trim.
                if trim_left {
                    out.truncate(out.trim_end().len());
                }
                out.push_str(automation);
                if trim_right {
                    rest = rest.trim_start();
                }
            }
            [field] => {
                let expr = field_expr(field, &scopes).ok_or_else(|| format!("`{{{{{action}}}}}`"))?;
                out.push_str(&format!("{{{{{l} {expr} {r}}}}}"));
            }
            _ => return Err(format!("`{{{{{action}}}}}`")),
        }
    }
    out.push_str(rest);
    if !scopes.is_empty() {
        return Err("a range is not closed".into());
    }
    crate::config::template::check(&out).map_err(|e| e.to_string())?;
    Ok(out)
}

enum Scope {
    Files { key: Option<String> },
    Changes { var: Option<String>, images: bool },
}

fn field_expr(field: &str, scopes: &[Scope]) -> Option<String> {
    for (n, scope) in scopes.iter().enumerate().rev() {
        match scope {
            Scope::Files { key } => {
                if key.as_deref() == Some(field) {
                    return Some(format!("file{n}"));
                }
            }
            Scope::Changes { var, images } => {
                let (base, member) = match field.split_once('.') {
                    Some((b, m)) if b.starts_with('$') => (b, format!(".{m}")),
                    _ if field.starts_with('$') => (field, String::new()),
                    _ => ("", field.to_string()),
                };
                let this = base.is_empty() && n == scopes.len() - 1 || var.as_deref() == Some(base);
                if !this {
                    continue;
                }
                let m = match (member.as_str(), images) {
                    ("." | "", true) => "new",
                    (".OldValue", false) => "old",
                    (".NewValue", false) => "new",
                    (".Setter", false) => "marker",
                    _ => return None,
                };
                return Some(format!("c{n}.{m}"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration("1m0s").as_deref(), Some("1m"));
        assert_eq!(duration("1h30m").as_deref(), Some("1h30m"));
        assert_eq!(duration("10m0s").as_deref(), Some("10m"));
        assert_eq!(duration("1.5h").as_deref(), Some("1h30m"));
        assert_eq!(duration("500ms").as_deref(), Some("500ms"));
        assert_eq!(duration("0s"), None);
        assert_eq!(duration("5 minutes"), None);
    }

    #[test]
    fn names() {
        assert_eq!(sanitize("apps"), "apps");
        assert_eq!(sanitize("a..b"), "a--b");
        assert_eq!(sanitize("-x-"), "x");
        assert_eq!(normal("./clusters/prod/"), "clusters/prod");
        assert_eq!(normal("./"), ".");
    }

    #[test]
    fn registries() {
        assert_eq!(with_registry("nginx"), "docker.io/library/nginx");
        assert_eq!(with_registry("bitnami/redis"), "docker.io/bitnami/redis");
        assert_eq!(with_registry("ghcr.io/a/b"), "ghcr.io/a/b");
        assert_eq!(with_registry("localhost:5000/a"), "localhost:5000/a");
    }

    #[test]
    fn flux_documented_templates_translate() {
        let t = "Automated image update\n\nAutomation name: {{ .AutomationObject }}\n\nFiles:\n{{ range $filename, $_ := .Changed.FileChanges -}}\n- {{ $filename }}\n{{ end -}}\n\nChanges:\n{{ range .Changed.Changes -}}\n- {{ .OldValue }} -> {{ .NewValue }}\n{{ end -}}\n";
        let m = go_template(t, "flux-system/podinfo").unwrap();
        assert!(m.contains("Automation name: flux-system/podinfo\n"), "{m}");
        assert!(
            m.contains(
                "{% for file0 in changes|map(attribute=\"file\")|unique -%}\n- {{ file0 }}\n{% endfor -%}"
            ),
            "{m}"
        );
        assert!(
            m.contains("{% for c0 in changes -%}\n- {{ c0.old }} -> {{ c0.new }}\n{% endfor -%}"),
            "{m}"
        );
        let v1beta1 = "Update\n{{range .Updated.Images}}- {{.}}\n{{end}}";
        assert_eq!(
            go_template(v1beta1, "a/b").unwrap(),
            "Update\n{% for c0 in changes %}- {{ c0.new }}\n{% endfor %}"
        );
    }

    #[test]
    fn untranslatable_templates_say_why() {
        let t = "{{ range $resource, $changes := .Changed.Objects }}{{ $resource.Kind }}{{ end }}";
        assert_eq!(
            go_template(t, "a/b").unwrap_err(),
            "ranging over `.Changed.Objects`"
        );
        assert!(go_template("{{ if .Foo }}x{{ end }}", "a/b").is_err());
        assert!(go_template("{{ range .Changed.Changes }}", "a/b").is_err());
    }
}
