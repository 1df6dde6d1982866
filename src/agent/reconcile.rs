//! One reconcile function per kind, its steps written out in order. Each
//! returns what it did or a [`Failure`]: a status reason, a message, and
//! whether retrying can help. When to run next is decided elsewhere
//! ([`crate::backoff`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::status::ClusterStatus;
use crate::apply::cluster::{Cluster, Clusters};
use crate::apply::{self, Summary};
use crate::busy::{BusyGuard, CancelOnDrop};
use crate::config::{self, Target};
use crate::image::{self, Selection};
use crate::reason::{Classify, Reason};
use crate::render;
use crate::source::{self, Artifact};

mod multi;

/// What a successful run produced.
#[derive(Debug, Clone, Default)]
pub struct Done {
    pub revision: Option<String>,
    /// One line for the log and status.
    pub message: String,
    pub artifact: Option<Artifact>,
    pub applied: Option<Summary>,
    /// Images: the policy's pick.
    pub selection: Option<Selection>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: Reason,
    pub message: String,
    /// `false`: the object stalls until its inputs change.
    pub retryable: bool,
    /// The server asked to wait at least this long (HTTP 429 `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl<E: Classify + std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            reason: e.reason(),
            message: e.to_string(),
            retryable: e.retryable(),
            retry_after: e.retry_after(),
        }
    }
}

impl Failure {
    fn retry(reason: Reason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    fn permanent(reason: Reason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

/// Source: fetch → artifact. `charts`: those its apps install (an
/// `oci://` Helm repository's revision is theirs).
pub async fn source(
    src: &config::Source,
    state_dir: &Path,
    charts: &[&config::ChartRef],
) -> Result<Done, Failure> {
    let fetch = tokio::time::timeout(src.timeout + std::time::Duration::from_secs(5), async {
        source::fetch(src, state_dir, charts).await
    });
    let artifact = match fetch.await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return Err(Failure::from(e));
        }
        Err(_) => {
            return Err(Failure {
                reason: Reason::FetchFailed,
                message: format!(
                    "fetching {} took longer than the timeout of {}",
                    source::redact(src.kind.url()),
                    humantime::format_duration(src.timeout)
                ),
                retryable: true,
                retry_after: None,
            });
        }
    };
    Ok(Done {
        revision: Some(artifact.revision.clone()),
        message: format!("fetched {}", artifact.revision),
        artifact: Some(artifact),
        applied: None,
        selection: None,
    })
}

/// App: render the manifests at its path in the artifact → apply them to
/// the target: a directory, or each of its clusters (server-side apply,
/// prune, and with `wait` health), then prune the clusters dropped from
/// its list. Gives each cluster's status too (apps on named clusters).
pub async fn app(
    cfg: &config::Config,
    clusters: &Clusters,
    app: &config::App,
    artifact: &Artifact,
    values_artifacts: &[(String, Artifact)],
) -> (Vec<ClusterStatus>, Result<Done, Failure>) {
    match (&app.target, cfg.app_clusters(app)) {
        (_, Some(names)) => multi::run(cfg, clusters, app, artifact, values_artifacts, names).await,
        (Target::Dir(dir), None) => (
            Vec::new(),
            to_dir(cfg, app, dir, artifact, values_artifacts).await,
        ),
        (Target::Cluster(_), None) => (
            Vec::new(),
            Err(Failure::permanent(
                Reason::Internal,
                "an app on clusters without a cluster list",
            )),
        ),
    }
}

/// A `target dir=` app: render, then write the files.
async fn to_dir(
    cfg: &config::Config,
    app: &config::App,
    dir: &Path,
    artifact: &Artifact,
    values_artifacts: &[(String, Artifact)],
) -> Result<Done, Failure> {
    let inputs = render_inputs(cfg, app, artifact, None).await?;
    let (revision, manifests) = render_app(cfg, app, artifact, values_artifacts, inputs).await?;
    let (dir, name, prune) = (dir.to_path_buf(), app.name.value.clone(), app.prune);
    // One write per directory at a time: a write given up at its
    // timeout stops before its next file, and until it has, the
    // next attempt waits its turn through the backoff.
    let Some(busy) = BusyGuard::take(&dir) else {
        return Err(Failure::retry(
            Reason::ApplyFailed,
            format!(
                "an earlier write to {} outlived its timeout and has not stopped yet",
                dir.display()
            ),
        ));
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let _stop_if_given_up = CancelOnDrop(cancel.clone());
    let work = tokio::task::spawn_blocking(move || {
        let _busy = busy;
        apply::dir::write(&dir, &name, &manifests, prune, &cancel)
    });
    let summary = match tokio::time::timeout(app.timeout, work).await {
        Ok(Ok(result)) => result.map_err(Failure::from)?,
        Ok(Err(join)) => {
            return Err(Failure::retry(
                Reason::ApplyFailed,
                format!("the apply task failed: {join}"),
            ));
        }
        Err(_) => return Err(timed_out(app.timeout)),
    };
    Ok(applied(revision, summary))
}

fn applied(revision: String, summary: apply::Summary) -> Done {
    Done {
        message: format!("applied {revision}: {summary}"),
        revision: Some(revision),
        artifact: None,
        applied: Some(summary),
        selection: None,
    }
}

/// What the render of `app` reads besides its artifacts: its SOPS keys,
/// its substitution variables and a chart's `values-from` (ConfigMaps
/// and Secrets of `cluster`), a chart's capabilities (those of `cluster`;
/// without one, Helm's defaults).
pub async fn render_inputs(
    cfg: &config::Config,
    app: &config::App,
    artifact: &Artifact,
    cluster: Option<&Cluster>,
) -> Result<RenderInputs, Failure> {
    let keys = render::keys_for(app).map_err(|e| Failure::permanent(e.reason(), e.to_string()))?;
    let reads = cluster.filter(|_| app.reads_cluster());
    let vars = apply::vars::resolve(app, &artifact.dir, reads, keys.as_ref())
        .await
        .map_err(Failure::from)?;
    let values_from = apply::vars::values(app, reads).await.map_err(Failure::from)?;
    let capabilities = match cluster {
        Some(cluster) if is_chart_app(cfg, app, artifact) => {
            Some(cluster.capabilities().await.map_err(|e| {
                Failure::retry(
                    Reason::RenderFailed,
                    format!(
                        "asking the cluster for its version and APIs (a chart's .Capabilities): {}",
                        apply::kube::message(&e)
                    ),
                )
            })?)
        }
        _ => None,
    };
    Ok(RenderInputs {
        capabilities,
        vars,
        keys,
        values_from,
    })
}

/// Whether `app` renders a Helm chart: its source is a Helm repository, or
/// its `path` holds a Chart.yaml.
pub fn is_chart_app(cfg: &config::Config, app: &config::App, artifact: &Artifact) -> bool {
    let helm_source = cfg
        .source(&app.source)
        .is_some_and(|s| matches!(s.kind, config::SourceKind::Helm { .. }));
    helm_source || render::chart::is_chart(&artifact.dir, &app.path)
}

/// What an app's render needs beyond its artifacts, read by its caller.
#[derive(Default)]
pub struct RenderInputs {
    /// The cluster's, for a chart; `None`: Helm's defaults.
    pub capabilities: Option<render::chart::Capabilities>,
    /// Substitution variables ([`crate::apply::vars::resolve`]).
    pub vars: Vec<(String, String)>,
    pub keys: Option<crate::sops::Keys>,
    /// A chart's `values-from` ([`crate::apply::vars::values`]).
    pub values_from: Vec<crate::helm::Layer>,
}

/// The app's manifests and the revision they are of: plain YAML or a
/// kustomization at its path, or a Helm chart (from its Helm repository
/// source, or at its path), with its values files read from their sources'
/// artifacts.
pub async fn render_app(
    cfg: &config::Config,
    app: &config::App,
    artifact: &Artifact,
    values_artifacts: &[(String, Artifact)],
    inputs: RenderInputs,
) -> Result<(String, Vec<render::Manifest>), Failure> {
    let RenderInputs {
        capabilities,
        vars,
        keys,
        values_from,
    } = inputs;
    let render_failed = Failure::from;
    let source = cfg.source(&app.source).ok_or_else(|| {
        Failure::permanent(
            Reason::Internal,
            format!("source \"{}\" is not in the config", app.source.value),
        )
    })?;
    let helm = &app.helm;
    let (chart, shown, revision) = if let Some(chart) = &helm.chart {
        let fetched = source::helm::chart(source, artifact, chart, &cfg.agent.state_dir)
            .await
            .map_err(Failure::from)?;
        let shown = format!("{}/{} {}", source.name.value, chart.name.value, fetched.version);
        let revision = format!("{}@{}", chart.name.value, fetched.artifact.revision);
        (Some(fetched.path), shown, revision)
    } else if render::chart::is_chart(&artifact.dir, &app.path) {
        let shown = format!("{}:{}", source.name.value, app.path);
        (
            Some(artifact.dir.join(&app.path)),
            shown,
            artifact.revision.clone(),
        )
    } else {
        (None, String::new(), artifact.revision.clone())
    };
    let Some(chart) = chart else {
        if helm.release.is_some()
            || helm.values.is_some()
            || !helm.values_files.is_empty()
            || !helm.values_from.is_empty()
            || helm.skip_crds
        {
            return Err(Failure::permanent(
                Reason::RenderFailed,
                format!(
                    "`release`, `values`, `values-file`, `values-from` and `crds` are for Helm charts, and path `{}` of source \"{}\" holds no Chart.yaml",
                    app.path, source.name.value
                ),
            ));
        }
        let (root, app) = (artifact.dir.clone(), app.clone());
        let manifests = tokio::task::spawn_blocking(move || {
            let opts = render::Options {
                vars: &vars,
                keys: keys.as_ref(),
                ..render::Options::for_app(&app)
            };
            render::render(&root, &app.path, &opts)
        })
        .await
        .map_err(|e| Failure::retry(Reason::RenderFailed, format!("the render task failed: {e}")))?
        .map_err(render_failed)?;
        return Ok((revision, manifests));
    };
    if let Some(option) = helm.not_for_charts.first() {
        return Err(Failure::permanent(
            Reason::RenderFailed,
            format!(
                "`{}` does not apply to the Helm chart {shown}: {}",
                option.value,
                config::validate::not_for_charts_help(option.value)
            ),
        ));
    }
    let kustomize = &app.kustomize;
    let post_render = (!kustomize.patches.is_empty() || !kustomize.images.is_empty()).then(|| {
        let only = config::Kustomize {
            images: kustomize.images.clone(),
            patches: kustomize.patches.clone(),
            ..config::Kustomize::default()
        };
        render::additions(None, &only)
    });
    let mut values = Vec::new();
    for file in &helm.values_files {
        let (name, root) = match &file.source {
            Some(s) => {
                let found = values_artifacts
                    .iter()
                    .find(|(n, _)| n == s.as_str())
                    .ok_or_else(|| {
                        Failure::retry(
                            Reason::ArtifactNotReady,
                            format!("source \"{}\" has no artifact yet", s.value),
                        )
                    })?;
                (s.value.clone(), found.1.dir.clone())
            }
            None => (source.name.value.clone(), artifact.dir.clone()),
        };
        let text = render::chart::read_values(&root, &file.path).map_err(|e| {
            let mut f = render_failed(e);
            f.message = format!("values file {name}:{}: {}", file.path.value, f.message);
            f
        })?;
        values.push((format!("{name}:{}", file.path.value), text));
    }
    let mut layers = values_from;
    if let Some(inline) = &helm.values {
        layers.push(crate::helm::Layer {
            name: format!("app \"{}\" values", app.name.value),
            kind: crate::helm::LayerKind::Yaml(inline.value.clone()),
            secret: false,
        });
    }
    let opts = render::chart::ChartOptions {
        release: app.release_name().to_string(),
        namespace: app.namespace.clone().unwrap_or_else(|| "default".into()),
        values,
        layers,
        post_render,
        capabilities,
        skip_crds: helm.skip_crds,
    };
    // Values from the cluster can be fixed there, unseen by the scheduler:
    // a chart that fails with them is retried, not stalled.
    let reads_values = !helm.values_from.is_empty();
    let manifests = tokio::task::spawn_blocking(move || render::chart::render_chart(&chart, &shown, &opts))
        .await
        .map_err(|e| Failure::retry(Reason::RenderFailed, format!("the render task failed: {e}")))?
        .map_err(|e| Failure {
            retryable: reads_values || e.retryable(),
            ..render_failed(e)
        })?;
    Ok((revision, manifests))
}

fn timed_out(limit: Duration) -> Failure {
    Failure::retry(
        Reason::ApplyFailed,
        format!(
            "applying took longer than the timeout of {}",
            humantime::format_duration(limit)
        ),
    )
}

/// Image: list the repository's tags → the policy's pick.
pub async fn image(img: &config::Image, state_dir: &Path) -> Result<Done, Failure> {
    let scan = image::scan(img, state_dir, false).await.map_err(Failure::from)?;
    for (tag, why) in scan.skipped.iter().take(5) {
        tracing::debug!("skipped tag {tag}: {why}");
    }
    let reference = scan.selection.reference();
    Ok(Done {
        message: format!(
            "picked {reference} ({} tags considered, {} skipped)",
            scan.considered,
            scan.skipped.len()
        ),
        revision: Some(reference),
        artifact: None,
        applied: None,
        selection: Some(scan.selection),
    })
}

/// Automation: check out → set the picks → commit → push (see
/// [`crate::automation`]).
pub async fn automation(
    cfg: &config::Config,
    a: &config::Automation,
    policies: &crate::automation::setters::Policies,
) -> Result<Done, Failure> {
    let src = cfg.source(&a.source).ok_or_else(|| {
        Failure::permanent(
            Reason::CheckoutFailed,
            format!("no source \"{}\"", a.source.value),
        )
    })?;
    let outcome = crate::automation::run(a, src, policies, &cfg.agent.state_dir)
        .await
        .map_err(Failure::from)?;
    Ok(Done {
        message: outcome.to_string(),
        revision: outcome.commit.clone(),
        artifact: None,
        applied: None,
        selection: None,
    })
}
