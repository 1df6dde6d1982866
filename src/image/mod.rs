//! Image policies: takes an `image` (a registry repository and a policy),
//! lists the repository's tags, and gives the [`Selection`]: the tag the
//! policy picks (and its digest when asked).
//!
//! [`scan()`] lists the tags (every page, with the image's credentials,
//! within its `timeout`), lets the [`policy`] choose, and keeps the list in
//! `state-dir/images/<name>.json`. When a scan fails, [`last`] still gives
//! the pick of the last good list, so a restart or a registry outage does
//! not lose the selection.

pub mod policy;
mod scan;

use std::path::PathBuf;
use std::time::Duration;

use crate::reason::{Classify, Reason};
pub use scan::{Scan, cached, last, list_tags, scan};

/// What an image policy picked: `repository:tag[@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selection {
    /// The repository without tag or digest, as configured
    /// (`ghcr.io/stefanprodan/podinfo`).
    pub repository: String,
    pub tag: String,
    /// `sha256:<hex>`, when resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Selection {
    /// `repository:tag`, or `repository:tag@digest` when the digest is known.
    pub fn reference(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}:{}@{d}", self.repository, self.tag),
            None => format!("{}:{}", self.repository, self.tag),
        }
    }
}

/// Why a scan failed. Messages name the repository, never credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach {repository}: {reason}")]
    Unreachable { repository: String, reason: String },
    #[error("{repository} refused the credentials: {reason}")]
    Auth { repository: String, reason: String },
    /// HTTP 429. `retry_after` is the registry's `Retry-After`, when it
    /// sent one (capped at [`MAX_RETRY_AFTER`]).
    #[error("{repository} is rate-limiting requests (429 Too Many Requests){}", retry_hint(*.retry_after))]
    RateLimited {
        repository: String,
        retry_after: Option<Duration>,
    },
    #[error("scanning {repository} took longer than the timeout of {}", humantime::format_duration(*timeout))]
    Timeout { repository: String, timeout: Duration },
    #[error("{repository} has no {what}")]
    NotFound { repository: String, what: String },
    #[error("{repository}: {reason}")]
    Protocol { repository: String, reason: String },
    #[error("cannot read the credentials for {repository} from {}: {source}", path.display())]
    Credentials {
        repository: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The policy could not pick a tag (or is itself invalid).
    #[error("{repository}: {problem}")]
    Policy {
        repository: String,
        problem: policy::Error,
    },
}

/// The longest `Retry-After` taken from a registry.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

fn retry_hint(after: Option<Duration>) -> String {
    match after {
        Some(d) => format!("; retry after {}", humantime::format_duration(d)),
        None => String::new(),
    }
}

impl Error {
    /// The repository the error is about.
    pub fn repository(&self) -> &str {
        match self {
            Error::Unreachable { repository, .. }
            | Error::Auth { repository, .. }
            | Error::RateLimited { repository, .. }
            | Error::Timeout { repository, .. }
            | Error::NotFound { repository, .. }
            | Error::Protocol { repository, .. }
            | Error::Credentials { repository, .. }
            | Error::Policy { repository, .. } => repository,
        }
    }

    /// A source error from the shared OCI code, about `repository`.
    fn from_source(repository: &str, e: crate::source::Error) -> Error {
        use crate::source::Error as S;
        let repository = repository.to_string();
        match e {
            S::Unreachable { reason, .. } => Error::Unreachable { repository, reason },
            S::Auth { reason, .. } => Error::Auth { repository, reason },
            S::Timeout { timeout, .. } => Error::Timeout { repository, timeout },
            S::NotFound { what, .. } => Error::NotFound { repository, what },
            S::Protocol { reason, .. } => Error::Protocol { repository, reason },
            S::Rejected { entry, reason } => Error::Protocol {
                repository,
                reason: format!("{entry}: {reason}"),
            },
            S::Credentials { path, source } => Error::Credentials {
                repository,
                path,
                source,
            },
            S::Io { path, source } => Error::Protocol {
                repository,
                reason: format!("{}: {source}", path.display()),
            },
            S::Ca(e) => Error::Protocol {
                repository,
                reason: e.to_string(),
            },
            // Only a git source's fetch fails so; a scan never makes one.
            S::Git(e) => Error::Protocol {
                repository,
                reason: e.to_string(),
            },
        }
    }
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        Reason::ScanFailed
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. }
            | Error::RateLimited { .. }
            | Error::Timeout { .. }
            | Error::NotFound { .. }
            | Error::Protocol { .. } => true,
            Error::Policy { problem, .. } => matches!(problem, policy::Error::NoMatch { .. }),
            Error::Auth { .. } | Error::Credentials { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}
