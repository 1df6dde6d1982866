//! One reconcile function per kind, its steps written out in order. Each
//! returns what it did or a [`Failure`]: a status reason, a message, and
//! whether retrying can help. When to run next is decided elsewhere
//! ([`super::backoff`]).

use std::path::Path;

use crate::apply::{self, Summary};
use crate::config::{self, Target};
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
    /// `false`: the object stalls until its inputs change.
    pub retryable: bool,
}

impl Failure {
    fn permanent(reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
            retryable: false,
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
            });
        }
    };
    Ok(Done {
        revision: Some(artifact.revision.clone()),
        message: format!("fetched {}", artifact.revision),
        artifact: Some(artifact),
        applied: None,
    })
}

/// App: render the manifests at its path in the artifact → apply them to
/// the target (a directory; clusters come with the Kubernetes target).
pub async fn app(app: &config::App, artifact: &Artifact) -> Result<Done, Failure> {
    let dir = match &app.target {
        Target::Dir(dir) => dir.clone(),
        Target::Cluster(_) => {
            return Err(Failure::permanent(
                "Unsupported",
                "this build cannot apply to a Kubernetes cluster yet; use `target dir=\"…\"`",
            ));
        }
    };
    let revision = artifact.revision.clone();
    let (app, root) = (app.clone(), artifact.dir.clone());
    let timeout = app.timeout;
    let work = tokio::task::spawn_blocking(move || -> Result<Summary, Failure> {
        // Step 1: render.
        let manifests = render::render(
            &root,
            &app.path,
            &render::Options {
                vars: &app.substitute,
            },
        )
        .map_err(|e| Failure {
            reason: e.reason(),
            message: e.to_string(),
            retryable: e.is_retryable(),
        })?;
        // Step 2: apply (and prune).
        apply::dir::write(&dir, &app.name, &manifests, app.prune).map_err(|e| Failure {
            reason: e.reason(),
            message: e.to_string(),
            retryable: e.is_retryable(),
        })
    });
    let summary = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(result)) => result?,
        Ok(Err(join)) => {
            return Err(Failure {
                reason: "ApplyFailed",
                message: format!("the apply task failed: {join}"),
                retryable: true,
            });
        }
        Err(_) => {
            return Err(Failure {
                reason: "ApplyFailed",
                message: format!(
                    "rendering and writing took longer than the timeout of {}",
                    humantime::format_duration(timeout)
                ),
                retryable: true,
            });
        }
    };
    Ok(Done {
        message: format!("applied {revision}: {summary}"),
        revision: Some(revision),
        artifact: None,
        applied: Some(summary),
    })
}

/// Images: scanning registries arrives with image automation.
pub async fn image(_image: &config::Image) -> Result<Done, Failure> {
    Err(Failure::permanent(
        "Unsupported",
        "this build does not scan image registries yet",
    ))
}

/// Automations: writing tags back to git arrives with image automation.
pub async fn automation(_automation: &config::Automation) -> Result<Done, Failure> {
    Err(Failure::permanent(
        "Unsupported",
        "this build does not run image automations yet",
    ))
}
