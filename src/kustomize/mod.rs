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
//! [`build_with`] takes what Flux's kustomize-controller adds around a
//! build ([`Options`]): additions to the top kustomization, a generated
//! kustomization for a directory that has none, and a [`Decrypt`] hook for
//! the files a `secretGenerator` reads and patch files. Nothing is written
//! to the directory.
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

pub use fs::{Decrypt, Use};

/// What Flux's kustomize-controller writes into the kustomization of the
/// path it builds (`targetNamespace`, `namePrefix`, `nameSuffix`,
/// `components`, `images`, `patches`): set, or appended after the file's own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Additions {
    pub namespace: Option<String>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    /// Relative to the kustomization's directory.
    pub components: Vec<String>,
    /// An entry replaces the file's entry of the same name, else is appended.
    pub images: Vec<Image>,
    pub patches: Vec<Patch>,
}

/// A kustomize `images` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Image {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
}

/// A kustomize `patches` entry, inline; empty target fields match all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Patch {
    pub patch: String,
    pub target: Option<PatchTarget>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatchTarget {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub label_selector: String,
    pub annotation_selector: String,
}

/// How to build, beyond kustomize's own inputs.
#[derive(Default, Clone, Copy)]
pub struct Options<'a> {
    /// Added to the top kustomization.
    pub additions: Option<&'a Additions>,
    /// The kustomization file text to use when the directory has none
    /// (Flux generates one listing a plain directory's files).
    pub generated: Option<&'a str>,
    /// Decrypts secret generator sources and patch files.
    pub decrypt: Option<&'a dyn Decrypt>,
    /// Files may come from anywhere in the root, not only from below each
    /// kustomization (Flux's `--load-restrictor LoadRestrictionsNone`).
    pub unrestricted: bool,
}

/// Build the kustomization in `dir` (relative to `root`; `""` or `.` for
/// the root itself).
pub fn build(root: &Path, dir: &str) -> Result<Build, Error> {
    build_shown(root, dir, None)
}

/// [`build()`], with paths in messages shown relative to `shown_from` (a
/// directory relative to `root`).
pub fn build_shown(root: &Path, dir: &str, shown_from: Option<&str>) -> Result<Build, Error> {
    let mut loader = fs::Loader::new(root)?;
    if let Some(base) = shown_from {
        loader = loader.showing_from(base);
    }
    run(&loader, dir, None)
}

/// [`build()`] with [`Options`].
pub fn build_with(root: &Path, dir: &str, opts: &Options<'_>) -> Result<Build, Error> {
    let mut loader = fs::Loader::new(root)?;
    if let Some(text) = opts.generated {
        let real = loader.resolve("", dir).unwrap_or_default();
        loader = loader.with_virtual_file(&fs::join(&real, FILE_NAMES[0]), text.to_string());
    }
    if let Some(d) = opts.decrypt {
        loader = loader.decrypting(d);
    }
    if opts.unrestricted {
        loader = loader.unrestricted();
    }
    run(&loader, dir, opts.additions)
}

/// Flux's Helm post-renderer: `stream` (a chart's rendered objects, one
/// YAML stream) as the one resource `file` of a kustomization that adds
/// `additions`, built in memory: nothing is written to disk.
pub fn build_stream(file: &str, stream: String, additions: &Additions) -> Result<Build, Error> {
    let empty =
        tempfile::tempdir().map_err(|e| Error::new(code::IO, format!("a temporary directory: {e}")))?;
    let kustomization = format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- {}\n",
        serde_json::Value::String(file.to_string())
    );
    let loader = fs::Loader::new(empty.path())?
        .with_virtual_file(FILE_NAMES[0], kustomization)
        .with_virtual_file(file, stream);
    run(&loader, "", Some(additions))
}

fn run<'a>(loader: &'a fs::Loader<'a>, dir: &str, additions: Option<&'a Additions>) -> Result<Build, Error> {
    let root = loader.root();
    let dir = loader.resolve("", dir).ok_or_else(|| {
        Error::new(
            code::OUTSIDE_ROOT,
            format!("`{dir}` leads outside {}", root.display()),
        )
    })?;
    let mut b = build::Builder::new(loader);
    b.additions = additions;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::tree;

    #[test]
    fn a_base_included_many_times_over_is_stopped() {
        // Each level includes the one below twice: 2^levels copies.
        let big = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: \"{}\"\n",
            "x".repeat(4000)
        );
        let mut files: Vec<(String, String)> = vec![
            ("l0/kustomization.yaml".into(), "resources: [cm.yaml]\n".into()),
            ("l0/cm.yaml".into(), big),
        ];
        for i in 1..=12 {
            let below = i - 1;
            files.push((
                format!("a{i}/kustomization.yaml"),
                format!("resources: [../l{below}]\nnamePrefix: a-\n"),
            ));
            files.push((
                format!("b{i}/kustomization.yaml"),
                format!("resources: [../l{below}]\nnamePrefix: b-\n"),
            ));
            files.push((
                format!("l{i}/kustomization.yaml"),
                format!("resources: [../a{i}, ../b{i}]\n"),
            ));
        }
        let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let dir = tree(&refs);
        let loader = fs::Loader::new(dir.path()).unwrap();
        let mut b = build::Builder::new(&loader);
        b.max_bytes = 1 << 20;
        let err = b.build("l12").map(|_| ()).unwrap_err();
        assert_eq!(err.code, code::TOO_LARGE, "{err}");
        // Well under the limit, the same tree builds.
        let out = build(dir.path(), "l3").unwrap();
        assert_eq!(out.objects.len(), 8);
    }

    #[test]
    fn nesting_is_limited_and_cycles_are_errors() {
        let mut files: Vec<(String, String)> = Vec::new();
        for i in 0..70 {
            files.push((
                format!("k{i}/kustomization.yaml"),
                format!("resources: [../k{}]\n", i + 1),
            ));
        }
        files.push(("k70/kustomization.yaml".into(), "resources: []\n".into()));
        let refs: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let dir = tree(&refs);
        let err = build(dir.path(), "k0").unwrap_err();
        assert_eq!(err.code, code::TOO_LARGE, "{err}");
        let dir = tree(&[
            ("a/kustomization.yaml", "resources: [../b]\n"),
            ("b/kustomization.yaml", "resources: [../a]\n"),
        ]);
        let err = build(dir.path(), "a").unwrap_err();
        assert_eq!(err.code, code::CYCLE, "{err}");
    }

    #[test]
    fn objects_carry_their_origin() {
        let dir = tree(&[
            (
                "app/kustomization.yaml",
                "resources: [objs.yaml]\nnamespace: ns\n",
            ),
            (
                "app/objs.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
            ),
        ]);
        let out = build(dir.path(), "app").unwrap();
        let got: Vec<(String, String, String, u32)> = out
            .objects
            .iter()
            .map(|o| (o.kind.clone(), o.namespace.clone(), o.file.clone(), o.line))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "ConfigMap".to_string(),
                    "ns".to_string(),
                    "app/objs.yaml".to_string(),
                    1
                ),
                (
                    "Secret".to_string(),
                    "ns".to_string(),
                    "app/objs.yaml".to_string(),
                    6
                )
            ]
        );
        assert!(to_yaml(&out.objects).contains("\n---\napiVersion: v1\nkind: Secret\n"));
    }

    #[test]
    fn builds_stay_inside_the_root() {
        let dir = tree(&[("inside/kustomization.yaml", "resources: [../../outside]\n")]);
        let err = build(&dir.path().join("inside"), "").unwrap_err();
        assert_eq!(err.code, code::OUTSIDE_ROOT, "{err}");
        assert!(build(dir.path(), "../x").is_err());
    }
}
