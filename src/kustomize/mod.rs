//! kustomize build, natively: takes a directory (a path relative to a root
//! directory that nothing may leave) holding a `kustomization.yaml`, and
//! gives the objects `kustomize build` (v5.5, the one in kubectl 1.32)
//! gives, in the same order, written as it writes them.
//!
//! Supported: everything kustomize does for `Kustomization` and
//! `Component` files except plugins — see docs/kustomize.md. Refused with a
//! diagnostic: remote resources, Helm charts, exec/container/Go/KRM
//! plugins, validators, files outside a kustomization's own directory
//! (kustomize's load restrictor), unknown fields.
//!
//! Untrusted input: every file is read through [`fs::Loader`] (confined to
//! the root, symlinks followed only inside it, per-file and total size
//! caps); kustomizations nest at most 64 deep, cycles are errors, YAML
//! aliases expand to at most a million nodes per file, and a build may hold
//! at most [`build::MAX_BUILD_BYTES`] of objects (a base included many
//! times over counts each time).

mod build;
pub mod error;
mod fieldspec;
mod fs;
mod generate;
mod kustomization;
mod names;
mod patch;
mod plugins;
mod read;
mod replace;
mod resource;
mod smp;
mod sort;
mod transform;
mod vars;
pub mod yaml;

use std::path::Path;

pub use error::{Error, code};
pub use kustomization::FILE_NAMES;

/// One object of a build.
#[derive(Debug, Clone)]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// The file it came from (relative to the root) and the line there.
    pub file: String,
    pub line: u32,
    /// The object as `kustomize build` writes it, ending in a newline.
    pub text: String,
}

/// Whether `dir` (under `root`) holds a kustomization file.
pub fn is_kustomization(root: &Path, dir: &str) -> bool {
    FILE_NAMES.iter().any(|f| root.join(dir).join(f).is_file())
}

/// What a build gives: the objects, and problems that did not stop it
/// (fields kustomize ignores).
#[derive(Debug)]
pub struct Build {
    pub objects: Vec<Object>,
    pub warnings: Vec<Error>,
}

/// Build the kustomization in `dir` (relative to `root`; `""` or `.` for
/// the root itself).
pub fn build(root: &Path, dir: &str) -> Result<Build, Error> {
    build_shown(root, dir, None)
}

/// [`build`], with paths in messages shown relative to `shown_from` (a
/// directory relative to `root`).
pub fn build_shown(root: &Path, dir: &str, shown_from: Option<&str>) -> Result<Build, Error> {
    let mut loader = fs::Loader::new(root)?;
    if let Some(base) = shown_from {
        loader = loader.showing_from(base);
    }
    let dir = loader.resolve("", dir).ok_or_else(|| {
        Error::new(
            code::OUTSIDE_ROOT,
            format!("`{dir}` leads outside {}", root.display()),
        )
    })?;
    let mut b = build::Builder::new(&loader);
    let (t, mut m) = b.build(&dir)?;
    sort::sort(&mut m.list, t.k.sort_options.as_ref())?;
    let managed_by = t.k.build_metadata.iter().any(|x| x == "managedByLabel");
    let mut out = Vec::with_capacity(m.list.len());
    for mut r in m.list {
        if !b.origin {
            r.remove_annotation("config.kubernetes.io/origin");
        }
        if managed_by
            && let Some(meta) = r.node.map_at("metadata")
            && let Some(labels) = meta.map_at("labels")
        {
            labels.set(
                "app.kubernetes.io/managed-by",
                yaml::Node::str("kustomize-v5.5.0"),
            );
        }
        let mut text = String::new();
        yaml::emit::emit_document(&r.node, &mut text).map_err(|e| {
            Error::new(code::INVALID, format!("{}: {e}", r.cur_id()))
                .help("YAML's .inf and .nan have no JSON form; kustomize fails on them too")
        })?;
        out.push(Object {
            api_version: r.api_version().to_string(),
            kind: r.kind().to_string(),
            name: r.name().to_string(),
            namespace: r.namespace().to_string(),
            file: r.file.clone(),
            line: r.line,
            text,
        });
    }
    Ok(Build {
        objects: out,
        warnings: b.warnings.take(),
    })
}

/// The objects as one YAML stream, as `kustomize build` prints it.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut s = String::with_capacity(objects.iter().map(|o| o.text.len() + 4).sum());
    for (i, o) in objects.iter().enumerate() {
        if i > 0 {
            s.push_str("---\n");
        }
        s.push_str(&o.text);
    }
    s
}
