//! Helm charts as an app's manifests: takes a chart (a directory in an
//! artifact, or an archive from a Helm repository), the release name and
//! namespace, values files and inline values, and the capabilities to
//! render with, gives the [`Manifest`]s `helm install` would create.
//!
//! Rendering is [`crate::helm`]'s, exactly `helm template`'s. What is kept
//! is this policy, documented in docs/helm.md: the `crds/` files of every
//! enabled chart first (Helm's default, "create"; none with `crds "skip"`),
//! then the manifests, then
//! the hooks of install and upgrade (`pre-`/`post-install`,
//! `pre-`/`post-upgrade`) as ordinary objects; test hooks and hooks only of
//! delete or rollback are left out, since a GitOps apply neither tests nor
//! deletes a release. Helm's release records are not written.
//!
//! Values are merged as Flux's helm-controller merges a HelmRelease's:
//! the chart's defaults, the values files, then (Flux's `valuesFrom`) each
//! ConfigMap's or Secret's values in order — merged as YAML, or set whole
//! at a `target-path` — and the inline `values` over them ([`layer`]).
//! Post-render patches and images (Flux's `postRenderers` kustomize) are
//! applied by [`crate::kustomize`] to the rendered manifests, as Helm runs
//! a post-renderer: not to `crds/` nor to hooks.
//!
//! Values files are read from artifacts, confined to them (no `..`, no
//! absolute path, no symbolic link on the way) and capped at
//! [`super::MAX_FILE_BYTES`].

use std::path::Path;

use super::{Error, Manifest, manifest};
use crate::helm::{self, KubeVersion};

/// How a chart renders, beyond the chart.
#[derive(Debug, Clone, Default)]
pub struct ChartOptions {
    pub release: String,
    pub namespace: String,
    /// Values files in merge order, later ones winning: (name for
    /// messages, YAML).
    pub values: Vec<(String, String)>,
    /// Merged over the files: `values-from`, then the inline `values`.
    pub layers: Vec<helm::Layer>,
    /// Patches and images for the rendered manifests (Flux's
    /// `postRenderers`); `None`: none.
    pub post_render: Option<crate::kustomize::Additions>,
    /// The cluster's, from discovery; `None`: Helm's defaults.
    pub capabilities: Option<Capabilities>,
    /// Leave the charts' `crds/` out.
    pub skip_crds: bool,
}

/// `.Capabilities` from a cluster.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// The API server's `gitVersion`, e.g. `v1.32.4`.
    pub kube_version: String,
    /// `group/version` and `group/version/Kind` of everything it serves.
    pub api_versions: Vec<String>,
}

/// Hook events applied with the release's objects.
const APPLIED_HOOKS: [&str; 4] = ["pre-install", "post-install", "pre-upgrade", "post-upgrade"];

/// The chart at `chart` (a directory or an archive), rendered. `shown`
/// names it in messages (`source:path` or `repository/chart@version`).
pub fn render_chart(chart: &Path, shown: &str, opts: &ChartOptions) -> Result<Vec<Manifest>, Error> {
    let helm_error = |e: helm::Error| Error::Helm {
        chart: shown.to_string(),
        error: Box::new(e),
    };
    let loaded = helm::Chart::load(chart).map_err(|e| helm_error(helm::Error::Chart(e)))?;
    let mut options = helm::Options {
        release: opts.release.clone(),
        namespace: opts.namespace.clone(),
        values_files: opts.values.clone(),
        layers: opts.layers.clone(),
        include_crds: !opts.skip_crds,
        ..helm::Options::default()
    };
    if let Some(caps) = &opts.capabilities {
        options.kube_version = Some(KubeVersion::parse(&caps.kube_version).map_err(|e| {
            helm_error(helm::Error::Other(format!(
                "the cluster's version \"{}\" is not a Kubernetes version: {e}",
                caps.kube_version
            )))
        })?);
        options.api_versions = caps.api_versions.clone();
        options.only_api_versions = true;
    }
    let mut warnings = Vec::new();
    let rendered = helm::render(&loaded, &options, &mut warnings).map_err(helm_error)?;
    for w in warnings {
        tracing::warn!(chart = shown, "{w}");
    }

    let mut documents: Vec<(String, String)> = rendered.crds.clone();
    let manifests: Vec<(String, String)> = rendered
        .manifests
        .iter()
        .map(|d| (d.source.clone(), d.content.clone()))
        .collect();
    match &opts.post_render {
        Some(additions) if !manifests.is_empty() => {
            documents.extend(post_render(&manifests, additions).map_err(|e| Error::Kustomize(Box::new(e)))?);
        }
        _ => documents.extend(manifests),
    }
    documents.extend(
        rendered
            .hooks
            .iter()
            .filter(|d| d.hook.iter().any(|h| APPLIED_HOOKS.contains(&h.as_str())))
            .map(|d| (d.source.clone(), d.content.clone())),
    );
    let mut errors = Vec::new();
    let mut manifests = Vec::new();
    for (file, content) in documents {
        for doc in super::split_documents(&content) {
            let mut text = doc.text;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            match manifest(file.clone(), doc.line, text, super::Typing::Helm) {
                Ok(m) => manifests.extend(m),
                Err(e) => errors.push(e),
            }
        }
    }
    super::duplicates(&manifests, &mut errors);
    crate::reason::one_or_many(Error::Many, errors)?;
    Ok(manifests)
}

/// The rendered manifests (source, text) through a kustomization with
/// `additions`, as Flux's post-renderer builds them; each object keeps the
/// source of the template it came from.
fn post_render(
    manifests: &[(String, String)],
    additions: &crate::kustomize::Additions,
) -> Result<Vec<(String, String)>, crate::kustomize::Error> {
    const FILE: &str = "helm-output.yaml";
    let mut stream = String::new();
    // The line of each document's `---`, and its source.
    let mut starts: Vec<(u32, &str)> = Vec::with_capacity(manifests.len());
    let mut line = 1u32;
    for (source, text) in manifests {
        stream.push_str("---\n");
        starts.push((line, source));
        line += 1;
        stream.push_str(text);
        if !text.ends_with('\n') {
            stream.push('\n');
        }
        line += u32::try_from(text.trim_end_matches('\n').lines().count()).unwrap_or(u32::MAX);
    }
    let built = crate::kustomize::build_stream(FILE, stream, additions)?;
    for w in &built.warnings {
        tracing::warn!("post-render: {w}");
    }
    Ok(built
        .objects
        .into_iter()
        .map(|o| {
            let at = starts.partition_point(|(start, _)| *start <= o.line);
            let source = at.checked_sub(1).map_or(FILE, |i| starts[i].1).to_string();
            (source, o.text)
        })
        .collect())
}

/// `values-from`'s value read from a ConfigMap or Secret, as a values
/// layer: merged as YAML, or, with a `target_path`, set whole at that path
/// as Flux's `ReplacePathValue` sets it — in `--set` syntax, typed unless
/// quoted (`'…'` or `"…"`, quotes removed, then as `--set-string`).
pub fn layer(shown: String, target_path: Option<&str>, text: String, secret: bool) -> helm::Layer {
    let kind = match target_path {
        None => helm::LayerKind::Yaml(text),
        Some(path) => {
            let quoted = |q: char| text.starts_with(q) && text.ends_with(q);
            let strings = quoted('\'') || quoted('"');
            let value = if strings {
                text.trim_matches(|c| c == '\'' || c == '"')
            } else {
                text.as_str()
            };
            helm::LayerKind::Set {
                assignment: format!("{path}={value}"),
                strings,
            }
        }
    };
    helm::Layer {
        name: shown,
        kind,
        secret,
    }
}

/// Whether `root/path` holds a chart (a `Chart.yaml`).
pub fn is_chart(root: &Path, path: &str) -> bool {
    match super::normalize(path) {
        Ok(rel) => {
            let mut dir = root.to_path_buf();
            dir.extend(&rel);
            std::fs::symlink_metadata(dir.join("Chart.yaml")).is_ok_and(|m| m.is_file())
        }
        Err(_) => false,
    }
}

/// The text of the file at `path` in the artifact `root`, confined to it
/// and capped: a values file.
pub fn read_values(root: &Path, path: &str) -> Result<String, Error> {
    let rel = super::normalize(path)?;
    if rel.is_empty() {
        return Err(Error::Path {
            path: path.to_string(),
            reason: "is not a file",
        });
    }
    let mut full = root.to_path_buf();
    for (i, part) in rel.iter().enumerate() {
        full.push(part);
        let meta = std::fs::symlink_metadata(&full).map_err(|_| Error::NotFound {
            path: path.to_string(),
        })?;
        if meta.file_type().is_symlink() {
            return Err(Error::Path {
                path: path.to_string(),
                reason: "passes through a symbolic link, which mooring does not follow",
            });
        }
        if i + 1 == rel.len() && !meta.is_file() {
            return Err(Error::Path {
                path: path.to_string(),
                reason: "is not a file",
            });
        }
    }
    let bytes = crate::walk::read_capped(&full, super::MAX_FILE_BYTES)
        .map_err(|e| Error::io(&full, e))?
        .ok_or_else(|| Error::FileTooLarge {
            file: path.to_string(),
            limit: super::MAX_FILE_BYTES,
        })?;
    String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        file: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chart `c` with no templates yet, in a temporary directory.
    fn empty_chart() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let chart = dir.path().join("c");
        std::fs::create_dir_all(chart.join("templates")).expect("mkdir");
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: c\nversion: 1.0.0\n",
        )
        .expect("write");
        (dir, chart)
    }

    #[test]
    fn a_target_path_value_is_set_as_flux_sets_it() {
        let set = |text: &str| match layer("x".into(), Some("a.b"), text.into(), false).kind {
            helm::LayerKind::Set { assignment, strings } => (assignment, strings),
            helm::LayerKind::Yaml(_) => panic!("a target path sets"),
        };
        assert_eq!(set("12"), ("a.b=12".into(), false));
        assert_eq!(set("'007'"), ("a.b=007".into(), true));
        assert_eq!(set("\"x\""), ("a.b=x".into(), true));
        assert_eq!(set("'"), ("a.b=".into(), true));
        assert!(matches!(
            layer("x".into(), None, "a: 1".into(), false).kind,
            helm::LayerKind::Yaml(_)
        ));
    }

    #[test]
    fn post_render_patches_manifests_and_keeps_their_sources() {
        let (_dir, chart) = empty_chart();
        let cm = |name: &str| {
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n")
        };
        std::fs::write(
            chart.join("templates/a.yaml"),
            format!("{}---\n{}", cm("a1"), cm("a2")),
        )
        .expect("write");
        std::fs::write(chart.join("templates/b.yaml"), cm("b")).expect("write");
        let opts = ChartOptions {
            release: "r".into(),
            namespace: "default".into(),
            post_render: Some(crate::kustomize::Additions {
                patches: vec![crate::kustomize::Patch {
                    patch: "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a2\ndata:\n  a: patched\n"
                        .into(),
                    target: None,
                }],
                ..crate::kustomize::Additions::default()
            }),
            ..ChartOptions::default()
        };
        let got: Vec<(String, String, bool)> = render_chart(&chart, "c", &opts)
            .expect("rendered")
            .into_iter()
            .map(|m| (m.id.name, m.file, m.text.contains("patched")))
            .collect();
        assert_eq!(
            got,
            [
                ("a1".into(), "c/templates/a.yaml".into(), false),
                ("a2".into(), "c/templates/a.yaml".into(), true),
                ("b".into(), "c/templates/b.yaml".into(), false),
            ]
        );
    }

    #[test]
    fn values_files_stay_inside_the_artifact() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("artifact");
        std::fs::create_dir_all(root.join("values")).expect("mkdir");
        std::fs::write(root.join("values/a.yaml"), "a: 1\n").expect("write");
        std::fs::write(dir.path().join("secret.yaml"), "token: x\n").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret.yaml"), root.join("values/link.yaml"))
            .expect("symlink");
        assert_eq!(read_values(&root, "values/a.yaml").expect("a file"), "a: 1\n");
        assert!(matches!(
            read_values(&root, "values/link.yaml"),
            Err(Error::Path { .. })
        ));
        assert!(matches!(
            read_values(&root, "../secret.yaml"),
            Err(Error::Path { .. })
        ));
        assert!(matches!(
            read_values(&root, "/etc/passwd"),
            Err(Error::Path { .. })
        ));
        assert!(matches!(read_values(&root, "values"), Err(Error::Path { .. })));
        assert!(matches!(
            read_values(&root, "values/none.yaml"),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn test_and_delete_hooks_are_left_out() {
        let (_dir, chart) = empty_chart();
        let doc = |name: &str, hook: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n    helm.sh/hook: {hook}\n"
            )
        };
        std::fs::write(
            chart.join("templates/all.yaml"),
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n---\n{}---\n{}---\n{}---\n{}",
                doc("install", "pre-install"),
                doc("upgrade", "post-upgrade,post-delete"),
                doc("test", "test"),
                doc("delete", "pre-delete")
            ),
        )
        .expect("write");
        let opts = ChartOptions {
            release: "r".into(),
            namespace: "default".into(),
            ..ChartOptions::default()
        };
        let names: Vec<String> = render_chart(&chart, "c", &opts)
            .expect("rendered")
            .into_iter()
            .map(|m| m.id.name)
            .collect();
        assert_eq!(names, ["plain", "install", "upgrade"]);
    }

    #[test]
    fn crds_come_first_unless_skipped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let chart = dir.path().join("c");
        std::fs::create_dir_all(chart.join("templates")).expect("mkdir");
        std::fs::create_dir_all(chart.join("crds")).expect("mkdir");
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: c\nversion: 1.0.0\n",
        )
        .expect("write");
        std::fs::write(
            chart.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
        )
        .expect("write");
        std::fs::write(
            chart.join("crds/w.yaml"),
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n",
        )
        .expect("write");
        let mut opts = ChartOptions {
            release: "r".into(),
            namespace: "default".into(),
            ..ChartOptions::default()
        };
        let kinds = |opts: &ChartOptions| -> Vec<String> {
            render_chart(&chart, "c", opts)
                .expect("rendered")
                .into_iter()
                .map(|m| m.id.kind)
                .collect()
        };
        assert_eq!(kinds(&opts), ["CustomResourceDefinition", "ConfigMap"]);
        opts.skip_crds = true;
        assert_eq!(kinds(&opts), ["ConfigMap"]);
    }
}
