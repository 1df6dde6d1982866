//! One reconcile function per kind, its steps written out in order. Each
//! returns what it did or a [`Failure`]: a status reason, a message, and
//! whether retrying can help. When to run next is decided elsewhere
//! ([`super::backoff`]).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::apply::cluster::Clusters;
use crate::apply::{self, Summary};
use crate::busy::{BusyGuard, CancelOnDrop};
use crate::config::{self, Target};
use crate::image::{self, Selection};
use crate::render;
use crate::source::{self, Artifact};

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
    pub reason: &'static str,
    pub message: String,
    /// `false`: the object stalls until its inputs change.
    pub retryable: bool,
    /// The server asked to wait at least this long (HTTP 429 `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl Failure {
    fn retry(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            retryable: true,
            retry_after: None,
        }
    }

    fn permanent(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            retryable: false,
            retry_after: None,
        }
    }
}

/// Source: fetch → artifact.
pub async fn source(src: &config::Source, state_dir: &Path) -> Result<Done, Failure> {
    let fetch = tokio::time::timeout(src.timeout + std::time::Duration::from_secs(5), async {
        source::fetch(src, state_dir).await
    });
    let artifact = match fetch.await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            return Err(Failure {
                reason: e.reason(),
                message: e.to_string(),
                retryable: e.is_retryable(),
                retry_after: None,
            });
        }
        Err(_) => {
            return Err(Failure {
                reason: "FetchFailed",
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
/// the target (a directory, or a cluster: server-side apply, prune, health).
pub async fn app(
    cfg: &config::Config,
    clusters: &Clusters,
    app: &config::App,
    artifact: &Artifact,
) -> Result<Done, Failure> {
    let revision = artifact.revision.clone();
    // Step 1: render.
    let manifests = {
        let (root, app) = (artifact.dir.clone(), app.clone());
        tokio::task::spawn_blocking(move || render::render(&root, &app.path, &render::Options::for_app(&app)))
            .await
            .map_err(|e| Failure {
                reason: "RenderFailed",
                message: format!("the render task failed: {e}"),
                retryable: true,
                retry_after: None,
            })?
            .map_err(|e| Failure {
                reason: e.reason(),
                message: e.to_string(),
                retryable: e.is_retryable(),
                retry_after: None,
            })?
    };
    // Step 2: apply, prune, and (on a cluster, with `wait`) health-check.
    let summary = match &app.target {
        Target::Dir(dir) => {
            let (dir, name, prune) = (dir.clone(), app.name.value.clone(), app.prune);
            // One write per directory at a time: a write given up at its
            // timeout stops before its next file, and until it has, the
            // next attempt waits its turn through the backoff.
            let Some(busy) = BusyGuard::take(&dir) else {
                return Err(Failure::retry(
                    "ApplyFailed",
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
            match tokio::time::timeout(app.timeout, work).await {
                Ok(Ok(result)) => result.map_err(|e| Failure {
                    reason: e.reason(),
                    message: e.to_string(),
                    retryable: e.is_retryable(),
                    retry_after: None,
                })?,
                Ok(Err(join)) => {
                    return Err(Failure::retry(
                        "ApplyFailed",
                        format!("the apply task failed: {join}"),
                    ));
                }
                Err(_) => return Err(timed_out(app.timeout)),
            }
        }
        Target::Cluster(name) => {
            let def = name.as_ref().and_then(|n| cfg.cluster(n));
            let cluster = clusters
                .get(def)
                .await
                .map_err(|e| Failure::permanent("ApplyFailed", e.to_string()))?;
            let opts = apply::kube::Options {
                app: &app.name,
                field_manager: &cfg.agent.field_manager,
                namespace: app.namespace.as_deref(),
                force: app.force,
                recreate: app.recreate,
                prune: app.prune,
                inventory_namespace: &cfg.agent.inventory_namespace,
                revision: &revision,
                wait: app.wait.as_ref().map(|w| w.timeout),
            };
            let budget = app.timeout + app.wait.as_ref().map_or(Duration::ZERO, |w| w.timeout);
            match tokio::time::timeout(budget, apply::kube::apply(&cluster, &manifests, &opts)).await {
                Ok(result) => result.map_err(|e| Failure {
                    reason: e.reason(),
                    message: e.to_string(),
                    retryable: e.is_retryable(),
                    retry_after: None,
                })?,
                Err(_) => return Err(timed_out(budget)),
            }
        }
    };
    Ok(Done {
        message: format!("applied {revision}: {summary}"),
        revision: Some(revision),
        artifact: None,
        applied: Some(summary),
        selection: None,
    })
}

fn timed_out(limit: Duration) -> Failure {
    Failure::retry(
        "ApplyFailed",
        format!(
            "applying took longer than the timeout of {}",
            humantime::format_duration(limit)
        ),
    )
}

/// Image: list the repository's tags → the policy's pick.
pub async fn image(img: &config::Image, state_dir: &Path) -> Result<Done, Failure> {
    let scan = image::scan(img, state_dir, false).await.map_err(|e| Failure {
        reason: e.reason(),
        message: e.to_string(),
        retryable: e.is_retryable(),
        retry_after: e.retry_after(),
    })?;
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
    let src = cfg
        .source(&a.source)
        .ok_or_else(|| Failure::permanent("CheckoutFailed", format!("no source \"{}\"", a.source.value)))?;
    let outcome = crate::automation::run(a, src, policies, &cfg.agent.state_dir)
        .await
        .map_err(|e| Failure {
            reason: e.reason(),
            message: e.to_string(),
            retryable: e.is_retryable(),
            retry_after: None,
        })?;
    Ok(Done {
        message: outcome.to_string(),
        revision: outcome.commit.clone(),
        artifact: None,
        applied: None,
        selection: None,
    })
}
