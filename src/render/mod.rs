//! Rendering: takes an artifact directory (the files of one source
//! revision), an app's `path` inside it and the app's substitution
//! variables, and gives the Kubernetes objects found there as
//! [`Manifest`]s, each keeping the user's own YAML text of its document —
//! mooring never re-emits YAML through serde (only a `List`'s items, which
//! have no text of their own, are written as kustomize writes them) — and
//! that document read once into the JSON the API server gets, typed as
//! the peer that applies it types it ([`Typing`]).
//!
//! A `path` holding a kustomization (`kustomization.yaml`, `.yml` or
//! `Kustomization`) is built with [`crate::kustomize`], exactly as
//! `kustomize build` builds it. Any other directory is plain manifests, as
//! Flux's kustomize-controller treats it: every `*.yaml` / `*.yml` file under
//! `path`, walked in byte order of the path (hidden files and directories
//! skipped, symlinks never followed), split into documents on `---` lines;
//! a subdirectory holding a kustomization is built and its objects take its
//! place in that order, without descending into it.
//!
//! With the Flux `Kustomization` features of an app ([`crate::config::Kustomize`])
//! or SOPS keys, the path is built as Flux's kustomize-controller builds it:
//! a plain directory gets the kustomization Flux generates for it (the same
//! walk, in memory), and the app's namespace, prefix, suffix, components,
//! images and patches are added to the top kustomization
//! ([`crate::kustomize::Additions`]); files a `secretGenerator` reads and
//! patch files are decrypted as the build reads them, encrypted objects
//! after it; then substitution, then the common metadata. An encrypted
//! object or generator source without keys is an error, never applied as
//! ciphertext. The variables of `substitute-from` are gathered by the
//! caller ([`vars`] reads files); `Options::vars` is the result.
//!
//! Substitution follows Flux's `postBuild` with Flux's envsubst rules
//! ([`substitute`]): `${var}`, `${var:=default}`, `$${var}` for a literal
//! `${var}`, an unset variable the empty string (an error in strict mode).
//! Only the braced form is substituted — `$var` is left alone so shell
//! scripts in ConfigMaps keep working. On plain manifests it applies to each
//! document's whole text (comments included) before it is parsed; on built
//! objects to each object's YAML after the build, as Flux does. As in Flux,
//! it runs only when at least one variable is defined (or `always`), and not
//! on an object labeled or annotated `kustomize.toolkit.fluxcd.io/substitute:
//! disabled`. Error positions refer to the text after substitution, which
//! has the same lines unless a value or default spans lines.
//!
//! Artifacts are hostile input: a file may hold at most [`MAX_FILE_BYTES`],
//! all files together [`MAX_TOTAL_BYTES`], and nothing outside the artifact
//! is ever read. Every problem in the manifests is collected and reported
//! at once ([`Error::Many`]), each naming its file (relative to the
//! artifact root) and line.

pub mod chart;
mod substitute;
pub mod vars;

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::reason::{Classify, Reason};
use crate::walk::{Entry, read_capped};

pub use crate::walk::{MAX_FILE_BYTES, MAX_TOTAL_BYTES};

use crate::kustomize::FILE_NAMES;

/// What names a Kubernetes object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectId {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectId {
    /// The API group: the part of `apiVersion` before `/`; `""` for the core group (`v1`).
    pub fn group(&self) -> &str {
        self.api_version.split_once('/').map_or("", |(group, _)| group)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One Kubernetes object, as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub id: ObjectId,
    /// The file, relative to the artifact root, `/`-separated.
    pub file: String,
    /// The 1-based line of the file where the document's text starts.
    pub line: usize,
    /// The document's text after substitution, without its `---` separator,
    /// ending in `\n`.
    pub text: String,
    /// The same document as JSON, parsed once when it was rendered; its
    /// identity fields are the strings of `id`.
    pub object: serde_json::Value,
}

impl Manifest {
    /// `file:line`, for messages.
    pub fn position(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

/// How to render.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// The Flux `Kustomization` features: with any of them (or with
    /// `keys`), a plain directory is built as the kustomization Flux
    /// generates for it.
    pub kustomize: Option<&'a crate::config::Kustomize>,
    /// Flux's `targetNamespace`: set in the kustomization when one is built.
    pub namespace: Option<&'a str>,
    /// age identities for SOPS files and objects.
    pub keys: Option<&'a crate::sops::Keys>,
    /// Substitution variables in order; later entries override earlier ones
    /// of the same name. Empty: no substitution at all, unless `always`.
    pub vars: &'a [(String, String)],
    /// Substitute even without variables (Flux's `substituteStrategy: Always`).
    pub always: bool,
    /// An unset variable without a default is an error (Flux's
    /// `StrictPostBuildSubstitutions`).
    pub strict: bool,
}

impl<'a> Options<'a> {
    /// How `app` renders: its `substitute` variables and flags.
    /// Its `substitute-from` variables are not read here: callers resolve
    /// them and set `vars`; `keys` too are the caller's.
    pub fn for_app(app: &'a crate::config::App) -> Options<'a> {
        Options {
            vars: &app.substitute,
            always: app.substitute_always,
            strict: app.substitute_strict,
            kustomize: Some(&app.kustomize),
            namespace: app.namespace.as_deref(),
            keys: None,
        }
    }

    /// Whether the path is built as Flux builds it: with a generated
    /// kustomization for a plain directory.
    fn flux_build(&self) -> bool {
        self.keys.is_some()
            || self
                .kustomize
                .is_some_and(|k| *k != crate::config::Kustomize::default())
    }

    /// What Flux adds to the kustomization it builds.
    fn additions(&self) -> Option<crate::kustomize::Additions> {
        let a = additions(self.namespace, &self.kustomize.cloned().unwrap_or_default());
        (a != crate::kustomize::Additions::default()).then_some(a)
    }
}

/// An app's Flux `Kustomization` features (and its target namespace) as
/// what kustomize adds to a kustomization.
pub fn additions(namespace: Option<&str>, k: &crate::config::Kustomize) -> crate::kustomize::Additions {
    let k = k.clone();
    crate::kustomize::Additions {
        namespace: namespace.map(str::to_string),
        name_prefix: k.name_prefix,
        name_suffix: k.name_suffix,
        components: k.components,
        images: k
            .images
            .into_iter()
            .map(|i| crate::kustomize::Image {
                name: i.name,
                new_name: i.new_name.unwrap_or_default(),
                new_tag: i.new_tag.unwrap_or_default(),
                digest: i.digest.unwrap_or_default(),
            })
            .collect(),
        patches: k
            .patches
            .into_iter()
            .map(|p| crate::kustomize::Patch {
                patch: p.patch,
                target: p.target.map(|t| crate::kustomize::PatchTarget {
                    group: t.group.unwrap_or_default(),
                    version: t.version.unwrap_or_default(),
                    kind: t.kind.unwrap_or_default(),
                    name: t.name.unwrap_or_default(),
                    namespace: t.namespace.unwrap_or_default(),
                    label_selector: t.label_selector.unwrap_or_default(),
                    annotation_selector: t.annotation_selector.unwrap_or_default(),
                }),
            })
            .collect(),
    }
}

/// The age identities of an app's `sops`, if it has one.
pub fn keys_for(app: &crate::config::App) -> Result<Option<crate::sops::Keys>, Error> {
    let Some(s) = &app.sops else { return Ok(None) };
    crate::sops::Keys::from_file(&s.age_key_file)
        .map(Some)
        .map_err(|e| Error::Sops {
            message: e.to_string(),
            help: e.help(),
        })
}

/// Why rendering failed. Files are named relative to the artifact root.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("path `{path}` {reason}")]
    Path { path: String, reason: &'static str },
    #[error("path `{path}` does not exist in the source")]
    NotFound { path: String },
    #[error("{0}")]
    Kustomize(Box<crate::kustomize::Error>),
    #[error("{file}: the file is larger than {limit} bytes")]
    FileTooLarge { file: String, limit: u64 },
    #[error("{file}: the manifests add up to more than {limit} bytes")]
    TotalTooLarge { file: String, limit: u64 },
    #[error(
        "{file}:{line}: after substitution the manifests would exceed their size cap ({per_document} bytes per document, {total} in all); check the variables' values and how often they are used"
    )]
    SubstitutedTooLarge {
        file: String,
        line: usize,
        per_document: u64,
        total: u64,
    },
    #[error("{file}:{line}: {message}")]
    Substitution {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: not UTF-8 text")]
    NotUtf8 { file: String },
    #[error("{file}:{line}:{column}: {message}")]
    Yaml {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}:{line}: not a Kubernetes object: missing {}", missing.join(", "))]
    NotAnObject {
        file: String,
        line: usize,
        missing: Vec<&'static str>,
    },
    #[error("{id} is defined twice: at {first} and at {second}")]
    Duplicate {
        id: Box<ObjectId>,
        first: String,
        second: String,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{message}{}", help.as_ref().map(|h| format!(" (help: {h})")).unwrap_or_default())]
    Sops { message: String, help: Option<String> },
    #[error("chart {chart}: {error}")]
    Helm {
        chart: String,
        error: Box<crate::helm::Error>,
    },
    #[error("{} problems:\n{}", .0.len(), list(.0))]
    Many(Vec<Error>),
}

fn list(errors: &[Error]) -> String {
    errors
        .iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

impl Error {
    /// Each single problem, flattening [`Error::Many`].
    pub fn problems(&self) -> Vec<&Error> {
        match self {
            Error::Many(errors) => errors.iter().flat_map(Error::problems).collect(),
            other => vec![other],
        }
    }

    fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Size caps; the defaults are [`MAX_FILE_BYTES`] and [`MAX_TOTAL_BYTES`].
#[derive(Debug, Clone, Copy)]
struct Limits {
    file: u64,
    total: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            file: MAX_FILE_BYTES,
            total: MAX_TOTAL_BYTES,
        }
    }
}

/// The objects under `path` (relative to `root`, `.` for the root itself;
/// it may name a single file), in file order and, within a file, document
/// order.
pub fn render(root: &Path, path: &str, opts: &Options) -> Result<Vec<Manifest>, Error> {
    render_limited(root, path, opts, Limits::default())
}

fn render_limited(root: &Path, path: &str, opts: &Options, limits: Limits) -> Result<Vec<Manifest>, Error> {
    let rel = normalize(path)?;
    let mut substitution = (!opts.vars.is_empty() || opts.always).then(|| Substitution {
        vars: substitute::Vars::new(opts.vars, opts.strict),
        limits,
        used: 0,
    });
    let dir = rel.join("/");
    let found = locate(root, path, &rel)?;
    let is_kustomization = matches!(found, Found::Dir) && crate::kustomize::is_kustomization(root, &dir);
    let additions = opts.additions();
    let sops_files = SopsFiles { keys: opts.keys };
    let mut flux = Flux {
        generated: None,
        additions: None,
        decrypt: Some(&sops_files),
        keys: opts.keys,
        labels: opts.kustomize.map_or(&[][..], |k| &k.labels),
        annotations: opts.kustomize.map_or(&[][..], |k| &k.annotations),
        verified: HashMap::new(),
    };
    let entries = match found {
        Found::File if opts.flux_build() => {
            return Err(Error::Path {
                path: path.to_string(),
                reason: "names a file; name-prefix, name-suffix, components, set-image, patch, common-metadata and sops need a directory, as Flux's do",
            });
        }
        Found::File => vec![Entry::File(dir)],
        Found::Dir if is_kustomization => {
            // Flux sets targetNamespace in the kustomization it builds.
            flux.additions = additions.as_ref();
            vec![Entry::Dir(dir)]
        }
        Found::Dir if opts.flux_build() => {
            flux.generated = Some(generated_kustomization(&dir, &walk(root, &rel)?));
            flux.additions = additions.as_ref();
            vec![Entry::Dir(dir)]
        }
        Found::Dir => walk(root, &rel)?,
    };

    let mut errors = Vec::new();
    let mut manifests: Vec<Manifest> = Vec::new();
    let mut total = 0u64;
    'entries: for entry in &entries {
        let file = match entry {
            Entry::File(file) => file,
            Entry::Dir(dir) => {
                match built(root, dir, substitution.as_mut(), &mut flux) {
                    Ok(mut ms) => manifests.append(&mut ms),
                    Err(e @ Error::SubstitutedTooLarge { .. }) => {
                        errors.push(e);
                        break 'entries;
                    }
                    Err(e) => errors.push(e),
                }
                continue;
            }
        };
        let full = root.join(file);
        let bytes = match read_capped(&full, limits.file).map_err(|e| Error::io(&full, e))? {
            Some(bytes) => bytes,
            None => {
                errors.push(Error::FileTooLarge {
                    file: file.clone(),
                    limit: limits.file,
                });
                continue;
            }
        };
        total += bytes.len() as u64;
        if total > limits.total {
            // Stop reading: whatever else is wrong, this has to be fixed first.
            errors.push(Error::TotalTooLarge {
                file: file.clone(),
                limit: limits.total,
            });
            break;
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            errors.push(Error::NotUtf8 { file: file.clone() });
            continue;
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for doc in split_documents(text) {
            let text = match substitution.as_mut() {
                Some(s) if !substitute::disabled(&doc.text) => match s.apply(file, doc.line, &doc.text) {
                    Ok(text) => text,
                    Err(e @ Error::SubstitutedTooLarge { .. }) => {
                        // As for the input: this has to be fixed first.
                        errors.push(e);
                        break 'entries;
                    }
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
                _ => doc.text,
            };
            if text.contains("\nsops:") && crate::sops::is_encrypted_object(&text) {
                // Only an app with `sops` decrypts, and it builds the path as Flux does.
                errors.push(Error::Sops {
                    message: format!("{file}:{}: the object is SOPS-encrypted", doc.line),
                    help: Some(
                        "add `sops age-key-file=\"…\"` to the app with the age identity that decrypts it"
                            .into(),
                    ),
                });
                continue;
            }
            match manifest(file.clone(), doc.line, text, Typing::Kustomize) {
                Ok(m) => manifests.extend(m),
                Err(e) => errors.push(e),
            }
        }
    }

    duplicates(&manifests, &mut errors);
    crate::reason::one_or_many(Error::Many, errors)?;
    Ok(manifests)
}

/// The same object twice: compared by group, not version (apps/v1 and
/// apps/v1beta1 name the same object).
fn duplicates(manifests: &[Manifest], errors: &mut Vec<Error>) {
    let mut seen: HashMap<(&str, &str, Option<&str>, &str), &Manifest> = HashMap::new();
    for m in manifests {
        let key = (
            m.id.group(),
            m.id.kind.as_str(),
            m.id.namespace.as_deref(),
            m.id.name.as_str(),
        );
        match seen.get(&key) {
            Some(first) => errors.push(Error::Duplicate {
                id: Box::new(m.id.clone()),
                first: first.position(),
                second: m.position(),
            }),
            None => {
                seen.insert(key, m);
            }
        }
    }
}

/// How Flux builds: the kustomization it generates for a plain directory,
/// its additions, decryption, and the metadata set after the build.
struct Flux<'a> {
    generated: Option<String>,
    additions: Option<&'a crate::kustomize::Additions>,
    decrypt: Option<&'a SopsFiles<'a>>,
    keys: Option<&'a crate::sops::Keys>,
    labels: &'a [(String, String)],
    annotations: &'a [(String, String)],
    /// Files whose MAC was checked: the result.
    verified: HashMap<String, Result<(), String>>,
}

/// The kustomization Flux generates for a plain directory: every manifest
/// file under it and every directory holding a kustomization, relative to it.
fn generated_kustomization(dir: &str, entries: &[Entry]) -> String {
    let mut text =
        String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    if entries.is_empty() {
        text = text.replace("resources:\n", "resources: []\n");
    }
    for e in entries {
        let p = e.path();
        let rel = if dir.is_empty() {
            p
        } else {
            p.strip_prefix(dir).map_or(p, |r| r.trim_start_matches('/'))
        };
        text.push_str(&format!("- {}\n", serde_json::Value::String(format!("./{rel}"))));
    }
    text
}

/// Decrypts what a `secretGenerator` reads and patch files, as Flux's
/// `DecryptSources` does: in the format of the data key (files), of the
/// file name (patches) or dotenv (envs), only when the file is encrypted.
/// These are used as committed, so their MAC is verified.
struct SopsFiles<'k> {
    /// Without keys, an encrypted file is an error rather than ciphertext
    /// in a Secret.
    keys: Option<&'k crate::sops::Keys>,
}

impl crate::kustomize::Decrypt for SopsFiles<'_> {
    fn decrypt(
        &self,
        file: &str,
        data: &[u8],
        used: crate::kustomize::Use<'_>,
    ) -> Result<Option<Vec<u8>>, (String, Option<String>)> {
        use crate::sops::Format;
        let format = match used {
            crate::kustomize::Use::SecretFile { key } => Format::for_path(key),
            crate::kustomize::Use::SecretEnv => Format::for_env_file(file),
            crate::kustomize::Use::Patch => Format::for_path(file),
        };
        if !crate::sops::is_encrypted(data, format) {
            return Ok(None);
        }
        let Some(keys) = self.keys else {
            return Err((
                "the file is SOPS-encrypted".into(),
                Some(
                    "add `sops age-key-file=\"…\"` to the app with the age identity that decrypts it".into(),
                ),
            ));
        };
        crate::sops::decrypt(file, data, format, keys, &crate::sops::Options::default())
            .map(|plain| Some(plain.to_vec()))
            .map_err(|e| sops_message(file, &e))
    }
}

/// A sops error without the file name it starts with (the caller names it).
fn sops_message(file: &str, e: &crate::sops::Error) -> (String, Option<String>) {
    let text = e.to_string();
    let message = text
        .strip_prefix(&format!("{file}: "))
        .map_or(text.clone(), str::to_string);
    (format!("SOPS: {message}"), e.help())
}

impl Flux<'_> {
    /// A built object decrypted, as Flux's `DecryptResource` does: an
    /// object encrypted as a whole, or a Secret whose data values are sops
    /// documents. kustomize may have changed a whole-encrypted object
    /// (namespace, labels, name prefix), which its MAC would refuse — Flux
    /// skips the MAC for that reason; mooring checks the MAC of the file as
    /// committed instead, then decrypts the built object without it.
    fn decrypt(&mut self, root: &Path, o: &crate::kustomize::Object) -> Result<Option<String>, Error> {
        use crate::sops::{self, Options as SopsOptions};
        let whole = o.text.contains("\nsops:") && sops::is_encrypted_object(&o.text);
        let name = format!("{} {}", o.file, o.kind);
        let Some(keys) = self.keys else {
            if whole {
                return Err(Error::Sops {
                    message: format!("{}:{}: {} {} is SOPS-encrypted", o.file, o.line, o.kind, o.name),
                    help: Some(
                        "add `sops age-key-file=\"…\"` to the app with the age identity that decrypts it"
                            .into(),
                    ),
                });
            }
            return Ok(None);
        };
        let to_error = |e: sops::Error| {
            let (message, help) = sops_message(&name, &e);
            Error::Sops {
                message: format!("{}:{}: {} {}: {message}", o.file, o.line, o.kind, o.name),
                help,
            }
        };
        let plain = if whole {
            self.verify_committed(root, &o.file, keys)?;
            sops::decrypt_manifest(&name, &o.text, keys, &SopsOptions { verify_mac: false })
        } else if o.kind == "Secret" && o.text.contains("data:") {
            sops::decrypt_manifest(&name, &o.text, keys, &SopsOptions::default())
        } else {
            return Ok(None);
        }
        .map_err(to_error)?;
        let Some(json) = plain else { return Ok(None) };
        json_to_yaml(&json).map(Some).map_err(|message| Error::Sops {
            message: format!(
                "{}:{}: {} {}: the decrypted object: {message}",
                o.file, o.line, o.kind, o.name
            ),
            help: None,
        })
    }

    /// The MAC of `file` (relative to the root) as committed, when it is a
    /// sops file as a whole; a file sops cannot read as one is not checked.
    fn verify_committed(&mut self, root: &Path, file: &str, keys: &crate::sops::Keys) -> Result<(), Error> {
        use crate::sops::{self, ErrorKind, Format};
        if !self.verified.contains_key(file) {
            let result = match read_capped(&root.join(file), MAX_FILE_BYTES) {
                Ok(Some(bytes)) => match sops::decrypt(
                    file,
                    &bytes,
                    Format::for_path(file),
                    keys,
                    &sops::Options::default(),
                ) {
                    Err(e) if matches!(e.kind, ErrorKind::Mac(_) | ErrorKind::Values { .. }) => {
                        let (message, help) = sops_message(file, &e);
                        Err(format!(
                            "{message}{}",
                            help.map(|h| format!(" (help: {h})")).unwrap_or_default()
                        ))
                    }
                    _ => Ok(()),
                },
                _ => Ok(()),
            };
            self.verified.insert(file.to_string(), result);
        }
        match self.verified.get(file) {
            Some(Err(message)) => Err(Error::Sops {
                message: format!("{file}: {message}"),
                help: None,
            }),
            _ => Ok(()),
        }
    }
}

/// JSON text (a decrypted object) as `kustomize build` writes YAML.
fn json_to_yaml(json: &str) -> Result<String, String> {
    use crate::kustomize::yaml;
    let docs = yaml::parse_documents(json).map_err(|e| e.message)?;
    let node = docs
        .into_iter()
        .find_map(|d| d.node)
        .ok_or_else(|| "empty".to_string())?;
    let mut out = String::new();
    yaml::emit::emit_document(&node, &mut out)?;
    Ok(out)
}

/// Flux's commonMetadata: labels and annotations set on the object,
/// replacing those of the same key; selectors and templates untouched.
fn set_metadata(
    text: &str,
    labels: &[(String, String)],
    annotations: &[(String, String)],
) -> Result<String, String> {
    use crate::kustomize::yaml::{self, Node};
    let docs = yaml::parse_documents(text).map_err(|e| e.message)?;
    let Some(mut node) = docs.into_iter().find_map(|d| d.node) else {
        return Ok(text.to_string());
    };
    let Some(meta) = node.map_at("metadata") else {
        return Ok(text.to_string());
    };
    for (field, pairs) in [("labels", labels), ("annotations", annotations)] {
        if pairs.is_empty() {
            continue;
        }
        let Some(map) = meta.map_at(field) else {
            return Err(format!("metadata.{field} is not a mapping"));
        };
        for (k, v) in pairs {
            map.set(k, Node::str(v.as_str()));
        }
    }
    let mut out = String::new();
    yaml::emit::emit_document(&node, &mut out)?;
    Ok(out)
}

/// The objects of the kustomization in `dir`, decrypted and substituted
/// per object, then given the common metadata.
fn built(
    root: &Path,
    dir: &str,
    mut substitution: Option<&mut Substitution<'_>>,
    flux: &mut Flux<'_>,
) -> Result<Vec<Manifest>, Error> {
    let opts = crate::kustomize::Options {
        additions: flux.additions,
        generated: flux.generated.as_deref(),
        decrypt: flux.decrypt.map(|d| d as &dyn crate::kustomize::Decrypt),
        // Flux builds with kustomize's load restrictor off: a kustomization
        // may name files anywhere in the source.
        unrestricted: true,
    };
    let build = crate::kustomize::build_with(root, dir, &opts).map_err(|e| Error::Kustomize(Box::new(e)))?;
    for w in &build.warnings {
        tracing::warn!("{w}");
    }
    let mut out = Vec::with_capacity(build.objects.len());
    let mut errors = Vec::new();
    for mut o in build.objects {
        let line = o.line as usize;
        match flux.decrypt(root, &o) {
            Ok(Some(text)) => o.text = text,
            Ok(None) => {}
            Err(e) => {
                errors.push(e);
                continue;
            }
        }
        let text = match substitution.as_deref_mut() {
            Some(s) if !substitute::disabled(&o.text) => match s.apply(&o.file, line, &o.text) {
                Ok(text) => text,
                Err(e @ Error::SubstitutedTooLarge { .. }) => return Err(e),
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            },
            _ => o.text,
        };
        let text = if flux.labels.is_empty() && flux.annotations.is_empty() {
            text
        } else {
            match set_metadata(&text, flux.labels, flux.annotations) {
                Ok(text) => text,
                Err(message) => {
                    errors.push(Error::Yaml {
                        file: o.file.clone(),
                        line,
                        column: 1,
                        message: format!("cannot set common-metadata: {message}"),
                    });
                    continue;
                }
            }
        };
        match manifest(o.file, line, text, Typing::Kustomize) {
            Ok(m) => out.extend(m),
            Err(e) => errors.push(e),
        }
    }
    crate::reason::one_or_many(Error::Many, errors)?;
    Ok(out)
}

/// Flux's `kustomize.toolkit.fluxcd.io/substitute: disabled` annotation, in
/// the text kustomize writes.
/// Substitution within the render's size caps, which hold after it as
/// before: a few references to a large value must not fill the memory.
struct Substitution<'a> {
    vars: substitute::Vars<'a>,
    limits: Limits,
    /// Bytes substituted so far, across the app's manifests.
    used: u64,
}

impl Substitution<'_> {
    /// `text`, the document at `file:line`, substituted.
    fn apply(&mut self, file: &str, line: usize, text: &str) -> Result<String, Error> {
        let cap = self.limits.file.min(self.limits.total.saturating_sub(self.used));
        match self.vars.apply(text, cap) {
            Ok(out) => {
                self.used += out.len() as u64;
                Ok(out)
            }
            Err(substitute::Failure::TooLarge) => Err(Error::SubstitutedTooLarge {
                file: file.to_string(),
                line,
                per_document: self.limits.file,
                total: self.limits.total,
            }),
            Err(failure) => {
                let at = failure.offset().unwrap_or(0).min(text.len());
                Err(Error::Substitution {
                    file: file.to_string(),
                    line: line + text[..at].matches('\n').count(),
                    message: failure.to_string(),
                })
            }
        }
    }
}

/// `path` as normal components, `..` resolved lexically. Absolute paths and
/// paths that climb out of the root are refused.
fn normalize(path: &str) -> Result<Vec<String>, Error> {
    let refuse = |reason| Error::Path {
        path: path.to_string(),
        reason,
    };
    if path.starts_with('/') || path.starts_with('\\') || Path::new(path).is_absolute() {
        return Err(refuse("must be relative to the source's root"));
    }
    if path.contains('\0') {
        return Err(refuse("contains a NUL character"));
    }
    let mut parts: Vec<String> = Vec::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(refuse("leads outside the source (`..`)"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("must be relative to the source's root"));
            }
        }
    }
    Ok(parts)
}

enum Found {
    File,
    Dir,
}

/// What `rel` names under `root`, without following any symlink on the way.
fn locate(root: &Path, path: &str, rel: &[String]) -> Result<Found, Error> {
    let mut at = root.to_path_buf();
    let mut found = Found::Dir;
    for (i, part) in rel.iter().enumerate() {
        at.push(part);
        let meta = match fs::symlink_metadata(&at) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    path: path.to_string(),
                });
            }
            Err(e) => return Err(Error::io(&at, e)),
        };
        let last = i + 1 == rel.len();
        let ft = meta.file_type();
        found = if ft.is_symlink() {
            return Err(Error::Path {
                path: path.to_string(),
                reason: "goes through a symlink; mooring does not follow links in a source",
            });
        } else if ft.is_dir() {
            Found::Dir
        } else if ft.is_file() && last {
            Found::File
        } else if ft.is_file() {
            return Err(Error::NotFound {
                path: path.to_string(),
            });
        } else {
            return Err(Error::Path {
                path: path.to_string(),
                reason: "is not a regular file or directory",
            });
        };
    }
    Ok(found)
}

/// What a plain directory holds: manifest files, and directories holding a
/// kustomization (an [`Entry::Dir`], built, not descended into), relative
/// to the root, in byte order of their paths.
fn walk(root: &Path, rel: &[String]) -> Result<Vec<Entry>, Error> {
    let is_kustomization = |dir: &str| FILE_NAMES.iter().any(|k| root.join(dir).join(k).is_file());
    crate::walk::walk(root, &rel.join("/"), crate::walk::is_yaml, is_kustomization)
        .map_err(|(path, e)| Error::io(&path, e))
}

/// The YAML files (`*.yaml`, `*.yml`, kustomize's `Kustomization`) under
/// `root/start`, as paths relative to `root`, in byte order.
pub(crate) fn yaml_files(root: &Path, start: &str) -> Result<Vec<String>, (PathBuf, io::Error)> {
    let want = |name: &str| crate::walk::is_yaml(name) || FILE_NAMES.contains(&name);
    let found = crate::walk::walk(root, start, want, |_| false)?;
    Ok(found.into_iter().map(|e| e.path().to_string()).collect())
}

/// One YAML document of a file.
#[derive(Debug, PartialEq)]
struct Document {
    /// 1-based line of the file where `text` starts.
    line: usize,
    text: String,
}

/// The non-empty documents of `text`, split on `---` and `...` marker lines
/// at column 0. A document's leading blank lines are dropped (they mean
/// nothing in YAML); the rest is kept byte for byte, ending in a newline.
fn split_documents(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    let mut finish = |current: &mut String, start: usize| {
        let doc = std::mem::take(current);
        if doc.lines().all(|l| {
            let t = l.trim();
            t.is_empty() || t.starts_with('#') || l.starts_with('%')
        }) {
            return;
        }
        let mut line = start;
        let mut rest = doc.as_str();
        while let Some(end) = rest.find('\n') {
            if !rest[..end].trim().is_empty() {
                break;
            }
            rest = &rest[end + 1..];
            line += 1;
        }
        let mut text = rest.to_string();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        docs.push(Document { line, text });
    };
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if is_marker(line, "---") || is_marker(line, "...") {
            finish(&mut current, start);
            start = i + 2;
        } else {
            current.push_str(line);
        }
    }
    finish(&mut current, start);
    docs
}

/// `line` is `marker` at column 0, followed by nothing but blanks or a comment.
fn is_marker(line: &str, marker: &str) -> bool {
    let Some(rest) = line.strip_prefix(marker) else {
        return false;
    };
    let rest = rest.trim_end_matches(['\n', '\r']);
    rest.is_empty()
        || (rest.starts_with([' ', '\t']) && (rest.trim().is_empty() || rest.trim().starts_with('#')))
}

/// How a document's scalars are typed: as the tool that applies it under
/// Flux types them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Typing {
    /// kustomize's (yaml.v3, then JSON), for plain directories and builds,
    /// which Flux applies as `kustomize build` writes them: `yes` is a
    /// string, `0644` the number 420.
    Kustomize,
    /// Helm's (go-yaml v2, YAML 1.1, through `sigs.k8s.io/yaml`), for what a
    /// chart renders: `yes` is `true`, `0644` the number 420.
    Helm,
}

/// The manifests of one document (starting at `line` of `file`): none for
/// an empty or null document, the items of a `…List` (as kustomize and
/// Helm's client expand them), else one. The document is parsed once,
/// here, into the JSON the API server gets.
pub(crate) fn manifest(
    file: String,
    line: usize,
    text: String,
    typing: Typing,
) -> Result<Vec<Manifest>, Error> {
    let at = |l: usize, column: usize, message: &str| yaml_error(&file, line, (l, column), message);
    let more = "more than one YAML document; separate documents with a `---` line";
    let (object, places) = match typing {
        Typing::Kustomize => {
            let docs = crate::kustomize::yaml::parse_documents(&text)
                .map_err(|e| at(e.line as usize, e.col as usize, &e.message))?;
            let mut nodes = docs.into_iter().filter_map(|d| d.node);
            let Some(node) = nodes.next() else {
                return Ok(Vec::new());
            };
            if let Some(extra) = nodes.next() {
                return Err(at(extra.pos.line as usize, extra.pos.col as usize, more));
            }
            let places = Places::of(&node);
            let object = crate::kustomize::yaml::to_json(node)
                .map_err(|(p, message)| at(p.line as usize, p.col as usize, &message))?;
            (object, places)
        }
        Typing::Helm => {
            let mut docs = crate::helm::yaml::parse_documents(&text, 2)
                .map_err(|e| at(e.line, 1, &e.message))?
                .into_iter()
                .flatten();
            let Some(raw) = docs.next() else {
                return Ok(Vec::new());
            };
            if docs.next().is_some() {
                return Err(at(1, 1, more));
            }
            let object = crate::helm::yaml::to_json(raw).map_err(|message| at(1, 1, &message))?;
            (object, Places::default())
        }
    };
    let mut out = Vec::new();
    let doc = Doc {
        file: &file,
        base: line,
    };
    doc.expand(line, Some(text), object, &places, &mut out)?;
    Ok(out)
}

/// An [`Error::Yaml`] at `(line, column)` of a document that starts at `base` of `file`.
fn yaml_error(file: &str, base: usize, (line, column): (usize, usize), message: &str) -> Error {
    Error::Yaml {
        file: file.to_string(),
        line: base + line.max(1) - 1,
        column: column.max(1),
        message: message
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    }
}

/// Where a document's parts are, for messages (lines and columns in the
/// document's text; known for kustomize's typing).
#[derive(Default)]
struct Places {
    top: Option<(usize, usize)>,
    fields: HashMap<&'static [&'static str], (usize, usize)>,
    /// A list's items.
    items: Vec<Places>,
}

impl Places {
    fn of(node: &crate::kustomize::yaml::Node) -> Places {
        let pos = |n: &crate::kustomize::yaml::Node| (n.pos.line as usize, n.pos.col as usize);
        let fields = ID_FIELDS
            .into_iter()
            .chain([&ID_FIELDS[2][..1]])
            .filter_map(|field| Some((field, pos(node.path(field)?))))
            .collect();
        let items = match node.get("items").and_then(|i| i.as_seq()) {
            Some(items) if node.str_at(&["kind"]).is_some_and(|k| k.ends_with("List")) => {
                items.iter().map(Places::of).collect()
            }
            _ => Vec::new(),
        };
        Places {
            top: Some(pos(node)),
            fields,
            items,
        }
    }
}

/// The document being read: its file and first line.
struct Doc<'a> {
    file: &'a str,
    base: usize,
}

impl Doc<'_> {
    /// The manifest of `object` (at `line`; `text` its own, or `None` for a
    /// list's item, which is written as kustomize writes it), or of each
    /// item of a list, into `out`.
    fn expand(
        &self,
        line: usize,
        text: Option<String>,
        object: serde_json::Value,
        places: &Places,
        out: &mut Vec<Manifest>,
    ) -> Result<(), Error> {
        let top = places.top.unwrap_or((line + 1 - self.base, 1));
        let error = |(l, c): (usize, usize), message: &str| yaml_error(self.file, self.base, (l, c), message);
        let serde_json::Value::Object(map) = &object else {
            if object.is_null() {
                return Ok(());
            }
            return Err(error(
                top,
                &format!(
                    "a document must be a Kubernetes object (a mapping), not {}",
                    json_kind(&object)
                ),
            ));
        };
        if map
            .get("metadata")
            .is_some_and(|m| !m.is_object() && !m.is_null())
        {
            let pos = places.fields.get(&ID_FIELDS[2][..1]).copied().unwrap_or(top);
            return Err(error(pos, "metadata must be a mapping"));
        }
        let text_at = |field: &'static [&'static str]| -> Result<Option<String>, Error> {
            let pos = places.fields.get(field).copied().unwrap_or(top);
            let not = |what: String| {
                Err(error(
                    pos,
                    &format!("{} must be a string, not {what}", field.join(".")),
                ))
            };
            match field.iter().try_fold(&object, |v, k| v.get(k)) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.is_empty())),
                Some(v @ (serde_json::Value::Bool(_) | serde_json::Value::Number(_))) => {
                    not(format!("{} {v}; quote it: \"{v}\"", json_kind(v)))
                }
                Some(v) => not(json_kind(v).to_string()),
            }
        };
        let kind = text_at(ID_FIELDS[1])?.unwrap_or_default();
        if kind.ends_with("List") && map.contains_key("items") {
            let items = match object {
                serde_json::Value::Object(mut map) => map.remove("items"),
                _ => None,
            };
            let items = match items {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(serde_json::Value::Array(items)) => items,
                Some(other) => {
                    return Err(error(
                        top,
                        &format!("{kind}: items must be a list, not {}", json_kind(&other)),
                    ));
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let item_places = places.items.get(i);
                let item_line = item_places
                    .and_then(|p| p.top)
                    .map_or(line, |(l, _)| self.base + l - 1);
                self.expand(
                    item_line,
                    None,
                    item,
                    item_places.unwrap_or(&Places::default()),
                    out,
                )?;
            }
            return Ok(());
        }
        let api_version = text_at(ID_FIELDS[0])?;
        let name = text_at(ID_FIELDS[2])?;
        let namespace = text_at(ID_FIELDS[3])?;
        let mut missing = Vec::new();
        for (absent, field) in [
            (api_version.is_none(), "apiVersion"),
            (kind.is_empty(), "kind"),
            (name.is_none(), "metadata.name"),
        ] {
            if absent {
                missing.push(field);
            }
        }
        if !missing.is_empty() {
            return Err(Error::NotAnObject {
                file: self.file.to_string(),
                line,
                missing,
            });
        }
        let text = match text {
            Some(text) => text,
            None => {
                let mut text = String::new();
                crate::kustomize::yaml::emit::emit_json(&object, &mut text).map_err(|e| error(top, &e))?;
                text
            }
        };
        out.push(Manifest {
            id: ObjectId {
                api_version: api_version.unwrap_or_default(),
                kind,
                namespace,
                name: name.unwrap_or_default(),
            },
            file: self.file.to_string(),
            line,
            text,
            object,
        });
        Ok(())
    }
}

/// The fields that name an object.
const ID_FIELDS: [&[&str]; 4] = [
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
];

/// What a JSON value is, for messages.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "the boolean",
        serde_json::Value::Number(_) => "the number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        Reason::RenderFailed
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Io { .. } => true,
            Error::Kustomize(e) => e.retryable(),
            Error::Many(errors) => !errors.is_empty() && errors.iter().all(Error::retryable),
            Error::Path { .. }
            | Error::NotFound { .. }
            | Error::FileTooLarge { .. }
            | Error::TotalTooLarge { .. }
            | Error::SubstitutedTooLarge { .. }
            | Error::Substitution { .. }
            | Error::NotUtf8 { .. }
            | Error::Yaml { .. }
            | Error::NotAnObject { .. }
            | Error::Sops { .. }
            | Error::Duplicate { .. }
            | Error::Helm { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::tree;

    fn cm(name: &str) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
    }

    fn ids(manifests: &[Manifest]) -> Vec<String> {
        manifests
            .iter()
            .map(|m| format!("{}@{}:{}", m.id, m.file, m.line))
            .collect()
    }

    fn plain(root: &Path, path: &str) -> Result<Vec<Manifest>, Error> {
        render(root, path, &Options::default())
    }

    #[test]
    fn object_ids() {
        let id = ObjectId {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("web".into()),
            name: "podinfo".into(),
        };
        assert_eq!(id.to_string(), "Deployment/web/podinfo");
        assert_eq!(id.group(), "apps");
        let id = ObjectId {
            api_version: "v1".into(),
            kind: "Namespace".into(),
            namespace: None,
            name: "web".into(),
        };
        assert_eq!(id.to_string(), "Namespace/web");
        assert_eq!(id.group(), "");
    }

    #[test]
    fn multi_document_files() {
        let text = format!(
            "---\n# leading comment only\n---\n{}---\n\n\n---   # just a comment\n# c\n  \n---\n\n{}...\n# trailing\n",
            cm("a"),
            cm("b")
        );
        let dir = tree(&[("all.yaml", &text)]);
        let ms = plain(dir.path(), ".").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/a@all.yaml:4", "ConfigMap/b@all.yaml:16"]);
        assert_eq!(ms[0].text, cm("a"));
        assert_eq!(ms[1].text, cm("b"));
    }

    #[test]
    fn document_text_is_verbatim_and_ends_in_newline() {
        let text = "# about a\napiVersion: v1   # v\nkind:    ConfigMap\nmetadata: {name: a,\n  namespace: n}\ndata:\n  k: |+\n    x\n\n---\nkind: Secret\napiVersion: v1\nmetadata:\n  name: s";
        let dir = tree(&[("a.yml", text)]);
        let ms = plain(dir.path(), ".").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/n/a@a.yml:1", "Secret/s@a.yml:11"]);
        assert_eq!(
            ms[0].text,
            "# about a\napiVersion: v1   # v\nkind:    ConfigMap\nmetadata: {name: a,\n  namespace: n}\ndata:\n  k: |+\n    x\n\n"
        );
        assert_eq!(ms[1].text, "kind: Secret\napiVersion: v1\nmetadata:\n  name: s\n");
    }

    #[test]
    fn crlf_files() {
        let text = "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: a\r\n---\r\napiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: b\r\n";
        let dir = tree(&[("crlf.yaml", text)]);
        let ms = plain(dir.path(), ".").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/a@crlf.yaml:1", "ConfigMap/b@crlf.yaml:6"]);
        assert_eq!(
            ms[1].text,
            "apiVersion: v1\r\nkind: ConfigMap\r\nmetadata:\r\n  name: b\r\n"
        );
    }

    #[test]
    fn byte_order_mark_is_dropped() {
        let dir = tree(&[("bom.yaml", &format!("\u{feff}{}", cm("a")))]);
        let ms = plain(dir.path(), ".").unwrap();
        assert_eq!(ms[0].text, cm("a"));
    }

    #[test]
    fn nested_directories_in_byte_order() {
        let dir = tree(&[
            ("b.yaml", &cm("b")),
            ("a/z.yaml", &cm("az")),
            ("a/b/c.yml", &cm("abc")),
            ("a.yaml", &cm("a")),
            ("B.yaml", &cm("upper")),
            ("notes.txt", "not: yaml"),
            ("README.md", "# hi"),
        ]);
        let ms = plain(dir.path(), ".").unwrap();
        let files: Vec<&str> = ms.iter().map(|m| m.file.as_str()).collect();
        assert_eq!(files, ["B.yaml", "a.yaml", "a/b/c.yml", "a/z.yaml", "b.yaml"]);
        // A sub-path, with `./` and a harmless `..` inside.
        let ms = plain(dir.path(), "./a/b/../").unwrap();
        let files: Vec<&str> = ms.iter().map(|m| m.file.as_str()).collect();
        assert_eq!(files, ["a/b/c.yml", "a/z.yaml"]);
        // A single file, whatever its extension.
        let ms = plain(dir.path(), "a/b/c.yml").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/abc@a/b/c.yml:1"]);
    }

    #[test]
    fn hidden_entries_are_skipped() {
        let dir = tree(&[
            ("app.yaml", &cm("a")),
            (".hidden.yaml", &cm("hidden")),
            (".git/config.yaml", &cm("git")),
            ("sub/.x/y.yaml", &cm("y")),
        ]);
        let ms = plain(dir.path(), ".").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/a@app.yaml:1"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_not_followed() {
        let outside = tree(&[("secret.yaml", &cm("outside")), ("d/x.yaml", &cm("outside-dir"))]);
        let dir = tree(&[("app/a.yaml", &cm("a"))]);
        std::os::unix::fs::symlink(
            outside.path().join("secret.yaml"),
            dir.path().join("app/link.yaml"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path().join("d"), dir.path().join("app/linkdir")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        let ms = plain(dir.path(), "app").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/a@app/a.yaml:1"]);
        // A path through a link is refused.
        for path in ["out", "out/secret.yaml", "out/d", "app/link.yaml"] {
            let err = plain(dir.path(), path).unwrap_err();
            assert!(matches!(err, Error::Path { .. }), "{path}: {err}");
            assert!(err.to_string().contains("symlink"), "{err}");
        }
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let dir = tree(&[("a/x.yaml", &cm("x"))]);
        for path in ["..", "../x", "a/../..", "a/../../a", "/etc", "/"] {
            let err = plain(&dir.path().join("a"), path).unwrap_err();
            assert!(matches!(err, Error::Path { .. }), "{path}: {err}");
            assert!(!err.retryable());
        }
        let err = plain(dir.path(), "nope/deeper").unwrap_err();
        assert_eq!(err.to_string(), "path `nope/deeper` does not exist in the source");
        let err = plain(dir.path(), "a/x.yaml/more").unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }

    #[test]
    fn yaml_errors_point_into_the_file() {
        let text = format!(
            "{}---\n# second\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
            cm("a")
        );
        let dir = tree(&[("dir/bad.yaml", &text)]);
        let err = plain(dir.path(), ".").unwrap_err();
        let Error::Yaml {
            file, line, column, ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((file.as_str(), *line), ("dir/bad.yaml", 10), "{err}");
        assert!(*column >= 1, "{err}");
        assert!(err.to_string().starts_with("dir/bad.yaml:10:"), "{err}");
        assert!(!err.retryable());
    }

    #[test]
    fn yaml_error_column() {
        let text = format!(
            "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
            cm("a")
        );
        let dir = tree(&[("dup.yaml", &text)]);
        let err = plain(dir.path(), ".").unwrap_err();
        let Error::Yaml {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*line, *column), (10, 3), "{err}");
        assert!(!message.contains('\n'));
    }

    #[test]
    fn not_objects() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n---\nfoo: bar\n";
        let dir = tree(&[("x.yaml", text)]);
        let err = plain(dir.path(), ".").unwrap_err();
        let problems: Vec<String> = err.problems().iter().map(|e| e.to_string()).collect();
        assert_eq!(
            problems,
            [
                "x.yaml:1: not a Kubernetes object: missing metadata.name",
                "x.yaml:6: not a Kubernetes object: missing apiVersion, kind, metadata.name",
            ]
        );
        assert!(err.to_string().starts_with("2 problems:\n  x.yaml:1: "), "{err}");
    }

    #[test]
    fn documents_are_typed_as_the_peer_that_applies_them() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: no\ndata:\n  a: yes\n  mode: 0644\n  r: 1.0\n";
        let one = |typing| manifest("a.yaml".into(), 3, text.into(), typing);
        let m = one(Typing::Kustomize).unwrap().remove(0);
        assert_eq!(m.id.name, "no");
        assert_eq!(
            m.object,
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "no"},
                               "data": {"a": "yes", "mode": 420, "r": 1}})
        );
        assert_eq!(m.text, text);
        // Helm reads YAML 1.1: the name is `false`, which names nothing.
        let err = one(Typing::Helm).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.yaml:3:1: metadata.name must be a string, not the boolean false; quote it: \"false\""
        );
    }

    #[test]
    fn identity_fields_that_are_not_strings_are_named_where_they_are() {
        let cases = [
            (
                "metadata:\n  name: 123\n",
                "x.yaml:4:9: metadata.name must be a string, not the number 123; quote it: \"123\"",
            ),
            (
                "metadata:\n  name: a\n  namespace: [a]\n",
                "x.yaml:5:14: metadata.namespace must be a string, not a list",
            ),
            ("metadata: a\n", "x.yaml:3:11: metadata must be a mapping"),
        ];
        for (meta, want) in cases {
            let text = format!("apiVersion: v1\nkind: ConfigMap\n{meta}");
            let dir = tree(&[("x.yaml", &text)]);
            assert_eq!(plain(dir.path(), ".").unwrap_err().to_string(), want);
        }
        let dir = tree(&[("x.yaml", "apiVersion: v1\nkind: true\nmetadata: {name: a}\n")]);
        assert_eq!(
            plain(dir.path(), ".").unwrap_err().to_string(),
            "x.yaml:2:7: kind must be a string, not the boolean true; quote it: \"true\""
        );
    }

    #[test]
    fn scalar_documents_are_errors() {
        let dir = tree(&[("x.yaml", "just a string\n")]);
        let err = plain(dir.path(), ".").unwrap_err();
        assert!(matches!(err, Error::Yaml { line: 1, .. }), "{err}");
    }

    #[test]
    fn lists_are_expanded_as_kustomize_expands_them() {
        // `kubectl get -o yaml` writes a List; kustomize (and so Flux) and
        // Helm's client apply its items, nested lists too.
        let text = "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n  data: {on: yes}\n- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b}}\n";
        let dir = tree(&[("l.yaml", &format!("{}---\n{text}", cm("first")))]);
        let ms = plain(dir.path(), ".").unwrap();
        assert_eq!(
            ids(&ms),
            [
                "ConfigMap/first@l.yaml:1",
                "ConfigMap/a@l.yaml:11",
                "ConfigMap/b@l.yaml:18"
            ]
        );
        assert_eq!(ms[1].object["data"], serde_json::json!({"on": "yes"}));
        // An item's text is the object as kustomize writes it.
        assert_eq!(
            ms[1].text,
            "apiVersion: v1\ndata:\n  \"on\": \"yes\"\nkind: ConfigMap\nmetadata:\n  name: a\n"
        );
        // An item that is no object is named at its line.
        let text =
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {}\n";
        let dir = tree(&[("l.yaml", text)]);
        assert_eq!(
            plain(dir.path(), ".").unwrap_err().to_string(),
            "l.yaml:4: not a Kubernetes object: missing metadata.name"
        );
        let dir = tree(&[("l.yaml", "apiVersion: v1\nkind: List\nitems: {a: 1}\n")]);
        assert_eq!(
            plain(dir.path(), ".").unwrap_err().to_string(),
            "l.yaml:1:1: List: items must be a list, not a mapping"
        );
        // An empty list is nothing.
        let dir = tree(&[("l.yaml", "apiVersion: v1\nkind: List\nitems: []\n")]);
        assert!(plain(dir.path(), ".").unwrap().is_empty());
    }

    #[test]
    fn duplicates() {
        let dup = "apiVersion: apps/v1beta1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n";
        let dep = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: n}\n";
        let other_ns = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: m}\n";
        let dir = tree(&[("a.yaml", dep), ("b.yaml", &format!("{other_ns}---\n{dup}"))]);
        let err = plain(dir.path(), ".").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Deployment/n/d is defined twice: at a.yaml:1 and at b.yaml:5"
        );
        let Error::Duplicate { first, second, .. } = err else {
            panic!()
        };
        assert_eq!((first.as_str(), second.as_str()), ("a.yaml:1", "b.yaml:5"));
    }

    #[test]
    fn kustomizations_are_built() {
        for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
            let dir = tree(&[
                ("app/a.yaml", &cm("a")),
                ("app/sub/b.yaml", &cm("b")),
                (
                    &format!("app/sub/{name}"),
                    "namePrefix: p-\nresources: [b.yaml]\n",
                ),
                ("app/z.yaml", &cm("z")),
            ]);
            // A plain directory: a nested kustomization is built in its place.
            let ms = plain(dir.path(), "app").unwrap();
            assert_eq!(
                ids(&ms),
                [
                    "ConfigMap/a@app/a.yaml:1",
                    "ConfigMap/p-b@app/sub/b.yaml:1",
                    "ConfigMap/z@app/z.yaml:1"
                ]
            );
            assert_eq!(
                ms[1].text,
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: p-b\n"
            );
            // The kustomization itself.
            let ms = plain(dir.path(), "app/sub").unwrap();
            assert_eq!(ids(&ms), ["ConfigMap/p-b@app/sub/b.yaml:1"]);
        }
    }

    #[test]
    fn substitution_after_the_build() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: d\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  a: ${a}\n";
        let dir = tree(&[
            ("k/kustomization.yaml", "resources: [c.yaml]\nnameSuffix: -${a}\n"),
            ("k/c.yaml", text),
        ]);
        let ms = render_vars(dir.path(), "k", &[("a", "x")], Options::default()).unwrap();
        assert_eq!(ms[0].id.name, "c-x");
        assert!(ms[0].text.contains("  a: x\n"), "{}", ms[0].text);
        assert!(ms[1].text.contains("  a: ${a}\n"), "{}", ms[1].text);
        assert!(ms[1].text.contains("name: d-${a}\n"), "{}", ms[1].text);
    }

    #[test]
    fn flux_features_build_a_plain_directory() {
        let dir = tree(&[
            ("app/a.yaml", &cm("a")),
            ("app/sub/b.yaml", &cm("b")),
            ("app/k/kustomization.yaml", "resources: [c.yaml]\n"),
            ("app/k/c.yaml", &cm("c")),
            ("app/.hidden.yaml", &cm("hidden")),
        ]);
        let k = crate::config::Kustomize {
            name_prefix: Some("p-".into()),
            labels: vec![("team".into(), "web".into())],
            ..Default::default()
        };
        let opts = Options {
            kustomize: Some(&k),
            namespace: Some("ns"),
            ..Options::default()
        };
        let ms = render(dir.path(), "app", &opts).unwrap();
        let names: Vec<(&str, Option<&str>)> = ms
            .iter()
            .map(|m| (m.id.name.as_str(), m.id.namespace.as_deref()))
            .collect();
        // kustomize's legacy order: by kind, then name.
        assert_eq!(
            names,
            [("p-a", Some("ns")), ("p-b", Some("ns")), ("p-c", Some("ns"))]
        );
        assert!(
            ms[0].text.contains("  labels:\n    team: web\n"),
            "{}",
            ms[0].text
        );
        assert_eq!(
            generated_kustomization(
                "app",
                &[Entry::File("app/a.yaml".into()), Entry::Dir("app/k".into())]
            ),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- \"./a.yaml\"\n- \"./k\"\n"
        );
        // A file cannot take them.
        let err = render(dir.path(), "app/a.yaml", &opts).unwrap_err();
        assert!(matches!(err, Error::Path { .. }), "{err}");
    }

    #[test]
    fn common_metadata_replaces_keys_and_leaves_selectors() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  labels:\n    app: x\n    team: old\n  name: d\nspec:\n  selector:\n    matchLabels:\n      app: x\n";
        let out = set_metadata(
            text,
            &[("team".into(), "new".into())],
            &[("a/b".into(), "1".into())],
        )
        .unwrap();
        assert_eq!(
            out,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    a/b: \"1\"\n  labels:\n    app: x\n    team: new\n  name: d\nspec:\n  selector:\n    matchLabels:\n      app: x\n"
        );
    }

    #[test]
    fn encrypted_plain_objects_without_keys_are_refused() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  k: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nsops:\n  age: []\n  mac: ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n  version: 3.9.0\n";
        let dir = tree(&[("s.yaml", text)]);
        let err = plain(dir.path(), ".").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s.yaml:1: the object is SOPS-encrypted"),
            "{err}"
        );
    }

    #[test]
    fn encrypted_sources_without_keys_are_refused() {
        let dir = tree(&[
            (
                "k/kustomization.yaml",
                "secretGenerator:\n- name: s\n  envs: [s.env]\n",
            ),
            (
                "k/s.env",
                "key=ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\nsops_mac=ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]\n",
            ),
        ]);
        let err = plain(dir.path(), "k").unwrap_err();
        assert!(
            err.to_string().contains("k/s.env: the file is SOPS-encrypted"),
            "{err}"
        );
    }

    #[test]
    fn files_outside_the_kustomization_load_as_flux_loads_them() {
        let dir = tree(&[
            ("k/kustomization.yaml", "resources:\n- ../shared/c.yaml\n"),
            ("shared/c.yaml", &cm("c")),
        ]);
        let ms = plain(dir.path(), "k").unwrap();
        assert_eq!(ids(&ms), ["ConfigMap/c@shared/c.yaml:1"]);
        // kubectl's default keeps them out; so does `mooring kustomize`.
        let err = crate::kustomize::build(dir.path(), "k").unwrap_err();
        assert!(err.to_string().contains("is not in or below"), "{err}");
        // Never outside the artifact.
        let dir = tree(&[("k/kustomization.yaml", "resources:\n- ../../c.yaml\n")]);
        assert!(plain(dir.path(), "k").is_err());
    }

    #[test]
    fn kustomize_errors_are_render_errors() {
        let dir = tree(&[("k/kustomization.yaml", "resources: [missing.yaml]\n")]);
        let err = plain(dir.path(), "k").unwrap_err();
        assert!(matches!(err, Error::Kustomize(_)), "{err}");
        assert!(err.to_string().starts_with("k/kustomization.yaml:1:"), "{err}");
        assert!(!err.retryable());
    }

    #[test]
    fn every_problem_is_reported() {
        let dir = tree(&[
            ("a.yaml", "apiVersion: v1\nkind: [\n"),
            ("b.yaml", &cm("ok")),
            ("c.yaml", "kind: ConfigMap\nmetadata: {name: c}\n"),
            (
                "d.yaml",
                b"\xff\xfe"
                    .iter()
                    .map(|&b| b as char)
                    .collect::<String>()
                    .as_str(),
            ),
        ]);
        fs::write(dir.path().join("d.yaml"), b"\xff\xfe").unwrap();
        let err = plain(dir.path(), ".").unwrap_err();
        let files: Vec<String> = err
            .problems()
            .iter()
            .map(|e| e.to_string().split(':').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(files, ["a.yaml", "c.yaml", "d.yaml"], "{err}");
        assert!(err.to_string().contains("d.yaml: not UTF-8 text"), "{err}");
        assert!(!err.retryable());
    }

    /// Render `path` in `dir` substituting `vars`, with `options`' other
    /// settings.
    fn render_vars(
        dir: &Path,
        path: &str,
        vars: &[(&str, &str)],
        options: Options,
    ) -> Result<Vec<Manifest>, Error> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        render(
            dir,
            path,
            &Options {
                vars: &vars,
                ..options
            },
        )
    }

    fn with_vars(text: &str, vars: &[(&str, &str)]) -> String {
        let dir = tree(&[("s.yaml", text)]);
        let ms = render_vars(dir.path(), ".", vars, Options::default()).unwrap();
        ms.into_iter().map(|m| m.text).collect()
    }

    #[test]
    fn substitution() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name:=dflt}\ndata:\n  a: \"${a}\"\n  esc: \"$${a}\"\n  unset: \"${nope}\"\n  shell: echo $a $$ ${#a}\n";
        assert_eq!(
            with_vars(text, &[("a", "one"), ("a", "two")]),
            // Flux's envsubst: `$$` is one `$`, `${#a}` the length of a.
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dflt\ndata:\n  a: \"two\"\n  esc: \"${a}\"\n  unset: \"\"\n  shell: echo $a $ 3\n"
        );
        let dir = tree(&[("s.yaml", text)]);
        let ms = render_vars(dir.path(), ".", &[("name", "given")], Options::default()).unwrap();
        assert_eq!(ms[0].id.name, "given");
        assert!(ms[0].text.contains("a: \"\"\n"));
    }

    fn render_with(
        text: &str,
        vars: &[(&str, &str)],
        always: bool,
        strict: bool,
    ) -> Result<Vec<Manifest>, Error> {
        let dir = tree(&[("s.yaml", text)]);
        let options = Options {
            always,
            strict,
            ..Options::default()
        };
        render_vars(dir.path(), ".", vars, options)
    }

    /// kustomize_varsub.go skips an object labeled or annotated
    /// `kustomize.toolkit.fluxcd.io/substitute: disabled`; the others of
    /// the same file are substituted.
    #[test]
    fn objects_can_opt_out() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: script\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  run.sh: echo ${HOME} $${x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: ${a}\n";
        let ms = render_with(text, &[("a", "1")], false, false).unwrap();
        assert!(
            ms[0].text.ends_with("run.sh: echo ${HOME} $${x}\n"),
            "{}",
            ms[0].text
        );
        assert!(ms[1].text.ends_with("a: 1\n"), "{}", ms[1].text);
        // Nor does strict mode look at it.
        assert_eq!(render_with(text, &[("a", "1")], false, true).unwrap().len(), 2);
    }

    /// Flux substitutes only when a variable is defined (the default
    /// `substituteStrategy: WithVariables`), or always with `Always`.
    #[test]
    fn substitution_runs_with_a_variable_or_always() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${n:=x}\ndata:\n  a: '${a}'\n";
        assert_eq!(
            render_with(text, &[], false, false).unwrap()[0].id.name,
            "${n:=x}"
        );
        let ms = render_with(text, &[], true, false).unwrap();
        assert_eq!(ms[0].id.name, "x");
        assert!(ms[0].text.ends_with("a: ''\n"));
    }

    #[test]
    fn strict_mode_and_bad_expressions_name_the_line() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: '${a}'\n  b: '${b:=d}'\n";
        let err = render_with(&format!("# c\n---\n{text}"), &[("b", "1")], false, true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "s.yaml:8: variable substitution failed: variable not set (strict mode): \"a\"; define it, give a default with `${a:=default}`, or write `$${a}` for the literal text"
        );
        assert!(!err.retryable());
        assert!(render_with(text, &[("a", "")], false, true).is_ok());
        let err = render_with(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${a b}\n",
            &[("a", "1")],
            false,
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("s.yaml:4: variable substitution failed: missing closing brace;"),
            "{err}"
        );
    }

    #[test]
    fn no_variables_leave_the_text_alone() {
        let text =
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: \"${a} $${b} ${c:=d}\"\n";
        assert_eq!(with_vars(text, &[]), text);
    }

    #[test]
    fn size_caps() {
        let big = format!("{}data:\n  k: \"{}\"\n", cm("big"), "x".repeat(200));
        let dir = tree(&[("a.yaml", &cm("a")), ("b.yaml", &big), ("c.yaml", &cm("c"))]);
        let limits = Limits {
            file: 150,
            total: 1000,
        };
        let err = render_limited(dir.path(), ".", &Options::default(), limits).unwrap_err();
        assert!(
            matches!(&err, Error::FileTooLarge { file, limit: 150 } if file == "b.yaml"),
            "{err}"
        );
        assert_eq!(err.to_string(), "b.yaml: the file is larger than 150 bytes");
        let limits = Limits {
            file: 1000,
            total: 150,
        };
        let err = render_limited(dir.path(), ".", &Options::default(), limits).unwrap_err();
        assert!(
            matches!(&err, Error::TotalTooLarge { file, .. } if file == "b.yaml"),
            "{err}"
        );
        // The real caps are generous.
        assert_eq!(plain(dir.path(), ".").unwrap().len(), 3);
    }

    #[test]
    fn null_documents_are_skipped() {
        let dir = tree(&[("n.yaml", &format!("~\n---\nnull\n---\n{}", cm("a")))]);
        assert_eq!(ids(&plain(dir.path(), ".").unwrap()), ["ConfigMap/a@n.yaml:5"]);
    }

    #[test]
    fn splitting() {
        let docs = split_documents("a: 1\n--- # c\nb: 2\n...\n---\n\n  \nc: 3");
        assert_eq!(
            docs,
            [
                Document {
                    line: 1,
                    text: "a: 1\n".into()
                },
                Document {
                    line: 3,
                    text: "b: 2\n".into()
                },
                Document {
                    line: 8,
                    text: "c: 3\n".into()
                },
            ]
        );
        assert!(is_marker("---\n", "---"));
        assert!(is_marker("---\r\n", "---"));
        assert!(is_marker("---  \t\n", "---"));
        assert!(!is_marker("----\n", "---"));
        assert!(!is_marker("--- a: 1\n", "---"));
        assert!(!is_marker(" ---\n", "---"));
        assert!(!is_marker("---# no space\n", "---"));
    }
}
