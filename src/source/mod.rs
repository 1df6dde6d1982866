//! Sources: takes a configured `source` (a git repository, an OCI
//! artifact or a Helm chart repository, see [`helm`]) and the state directory, gives an [`Artifact`]: the revision
//! (`main@sha1:<hex>`, `6.5.0@sha256:<hex>`) and a directory holding the
//! tree at that revision. An unchanged revision does no work and makes no
//! new directory. Nothing the server sends is trusted: see [`artifact`].

pub mod artifact;
pub mod git;
pub mod helm;
pub mod ignore;
pub mod oci;

use std::path::{Path, PathBuf};

/// Every source's URL is shown as a git remote's is.
pub use crate::git::redact;
pub use artifact::{Artifact, Limits, Store};

use crate::config;
use crate::reason::{Classify, Reason};

/// Why a fetch failed. Messages name the URL but never credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{url} refused the credentials: {reason}")]
    Auth { url: String, reason: String },
    #[error("fetching {url} took longer than the timeout of {}", humantime::format_duration(*timeout))]
    Timeout {
        url: String,
        timeout: std::time::Duration,
    },
    #[error("{url} has no {what}")]
    NotFound { url: String, what: String },
    #[error("{url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("rejected `{entry}`: {reason}")]
    Rejected { entry: String, reason: String },
    #[error("cannot read credentials from {}: {source}", path.display())]
    Credentials { path: PathBuf, source: std::io::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Ca(#[from] crate::tls::Error),
    /// A git source's fetch.
    #[error(transparent)]
    Git(#[from] crate::git::Error),
}

impl Error {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Fetch `source` into the artifact store under `state_dir`. `charts`:
/// the charts its apps install, which an `oci://` Helm repository resolves
/// for its revision ([`helm::fetch`]); other sources ignore them.
pub async fn fetch(
    source: &config::Source,
    state_dir: &Path,
    charts: &[&config::ChartRef],
) -> Result<Artifact, Error> {
    let store = Store::new(state_dir);
    let artifact = match &source.kind {
        config::SourceKind::Git { .. } => {
            let url = redact(source.kind.url());
            let (source, state_dir, store) = (source.clone(), state_dir.to_path_buf(), store.clone());
            tokio::task::spawn_blocking(move || git::fetch(&source, &state_dir, &store))
                .await
                .map_err(|e| Error::Protocol {
                    url,
                    reason: format!("the fetch task failed: {e}"),
                })??
        }
        config::SourceKind::Oci { .. } => oci::fetch(source, state_dir, &store).await?,
        config::SourceKind::Helm { .. } => helm::fetch(source, state_dir, &store, charts).await?,
    };
    store.gc(&source.name, &artifact.dir, artifact::KEEP)?;
    Ok(artifact)
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        Reason::FetchFailed
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. }
            | Error::Timeout { .. }
            | Error::Protocol { .. }
            | Error::NotFound { .. }
            | Error::Io { .. } => true,
            Error::Auth { .. } | Error::Rejected { .. } | Error::Credentials { .. } | Error::Ca(_) => false,
            Error::Git(e) => e.retryable(),
        }
    }
}
