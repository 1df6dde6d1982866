//! The one error of every git operation, and the one classifier that maps
//! what gix (or the connection) reports to it: gix's own judgement first
//! (the credentials were refused; a retryable failure of the network or
//! the server), then the I/O error kinds and texts gix passes on.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::remote::Remote;
use crate::reason::{Classify, Reason};

const ALLOCATION_LIMIT: gix::error::Class =
    gix::error::Class::ResourceExhaustion(gix::error::ResourceExhaustionKind::AllocationLimit);

/// Which git operation failed; gives the status reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// A source's fetch.
    Fetch,
    /// An automation's checkout.
    Checkout,
    Commit,
    Push,
}

impl Stage {
    /// The status reason of a failure in this step.
    pub fn reason(self) -> Reason {
        match self {
            Stage::Fetch => Reason::FetchFailed,
            Stage::Checkout => Reason::CheckoutFailed,
            Stage::Commit => Reason::CommitFailed,
            Stage::Push => Reason::PushFailed,
        }
    }

    pub(crate) fn verb(self) -> &'static str {
        match self {
            Stage::Fetch => "fetch",
            Stage::Checkout => "checkout",
            Stage::Commit => "commit",
            Stage::Push => "push",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.verb())
    }
}

/// Why a fetch, checkout, commit or push failed. Messages name the URL
/// but never credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        stage: Stage,
        url: String,
        reason: String,
    },
    #[error("{url} refused the credentials: {reason}")]
    Auth {
        stage: Stage,
        url: String,
        reason: String,
    },
    #[error("{} took longer than the timeout of {}", took(*stage, url), humantime::format_duration(*timeout))]
    Timeout {
        stage: Stage,
        url: String,
        timeout: Duration,
    },
    #[error("{url} has no {what}")]
    NotFound { stage: Stage, url: String, what: String },
    #[error("{url}: {reason}")]
    Protocol {
        stage: Stage,
        url: String,
        reason: String,
    },
    /// What the remote sent cannot be taken (an object past the size
    /// limit, a name that is not UTF-8, a version range that does not parse).
    #[error("rejected `{entry}`: {reason}")]
    Rejected {
        stage: Stage,
        entry: String,
        reason: String,
    },
    /// The remote could not take the pack (`unpack <reason>`).
    #[error("{url} could not unpack what was pushed: {reason}")]
    Unpack { url: String, reason: String },
    /// The remote refused the update for a reason other than a newer
    /// commit there (a hook, a protected branch…).
    #[error("{url} refused to update `{branch}`: {reason}")]
    Refused {
        url: String,
        branch: String,
        reason: String,
    },
    #[error("cannot read credentials from {}: {source}", path.display())]
    Credentials {
        stage: Stage,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        stage: Stage,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The workspace's own repository failed.
    #[error("the workspace repository {}: {reason}", path.display())]
    Repository {
        stage: Stage,
        path: PathBuf,
        reason: String,
    },
    /// The input cannot work: a branch name, an author, a CA file, a push
    /// without a commit.
    #[error("{what}")]
    Invalid { stage: Stage, what: String },
    /// An earlier operation on the same directory has not stopped yet.
    #[error("{}", busy(*stage, url, dir))]
    Busy { stage: Stage, url: String, dir: PathBuf },
}

fn took(stage: Stage, url: &str) -> String {
    match stage {
        Stage::Fetch => format!("fetching {url}"),
        _ => format!("the {stage} of {url}"),
    }
}

fn busy(stage: Stage, url: &str, dir: &Path) -> String {
    match stage {
        Stage::Fetch => format!("{url}: an earlier fetch of this source has not stopped yet"),
        _ => format!(
            "the workspace {} is busy with an earlier operation that has not stopped yet",
            dir.display()
        ),
    }
}

impl Error {
    /// The step that failed.
    pub fn stage(&self) -> Stage {
        match self {
            Error::Unreachable { stage, .. }
            | Error::Auth { stage, .. }
            | Error::Timeout { stage, .. }
            | Error::NotFound { stage, .. }
            | Error::Protocol { stage, .. }
            | Error::Rejected { stage, .. }
            | Error::Credentials { stage, .. }
            | Error::Io { stage, .. }
            | Error::Repository { stage, .. }
            | Error::Invalid { stage, .. }
            | Error::Busy { stage, .. } => *stage,
            Error::Unpack { .. } | Error::Refused { .. } => Stage::Push,
        }
    }

    pub(crate) fn io(stage: Stage, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            stage,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        self.stage().reason()
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. }
            | Error::Timeout { .. }
            | Error::NotFound { .. }
            | Error::Protocol { .. }
            | Error::Unpack { .. }
            | Error::Io { .. }
            | Error::Repository { .. }
            | Error::Busy { .. } => true,
            Error::Auth { .. }
            | Error::Rejected { .. }
            | Error::Credentials { .. }
            | Error::Refused { .. }
            | Error::Invalid { .. } => false,
        }
    }
}

/// Every error in `e`'s tree, each followed by its `source()` chain.
pub(crate) fn chain(e: &gix::Error) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    e.iter_errors().flat_map(|top| {
        let mut next = Some(top);
        std::iter::from_fn(move || {
            let cur = next?;
            next = cur.source();
            Some(cur)
        })
    })
}

impl Remote {
    /// A `Protocol` error with `reason` scrubbed of secrets.
    pub(crate) fn protocol(&self, stage: Stage, reason: impl AsRef<str>) -> Error {
        Error::Protocol {
            stage,
            url: self.shown.clone(),
            reason: self.scrub(reason.as_ref()),
        }
    }

    /// A one-line account of `e` and its causes, with secrets removed.
    pub(crate) fn reason(&self, e: &gix::Error) -> String {
        let mut parts: Vec<String> = Vec::new();
        for cause in chain(e) {
            let text = cause.to_string();
            if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        self.scrub(&parts.join(": "))
    }

    fn timeout(&self, stage: Stage) -> Error {
        Error::Timeout {
            stage,
            url: self.shown.clone(),
            timeout: self.timeout,
        }
    }

    /// Map a gix error from talking to the remote. Anything not known to
    /// be the network's, the server's or the credentials' fault is a
    /// `Protocol` error.
    pub(crate) fn network(&self, e: &gix::Error, interrupt: &AtomicBool, stage: Stage) -> Error {
        if interrupt.load(Ordering::SeqCst) {
            return self.timeout(stage);
        }
        let url = self.shown.clone();
        let reason = self.reason(e);
        let kinds: Vec<std::io::ErrorKind> = chain(e)
            .filter_map(|c| c.downcast_ref::<std::io::Error>())
            .map(|io| io.kind())
            .collect();
        if e.is_unauthenticated()
            || e.is_permission_denied()
            || kinds.contains(&std::io::ErrorKind::PermissionDenied)
        {
            return Error::Auth { stage, url, reason };
        }
        if e.classify().has(ALLOCATION_LIMIT) {
            return self.too_large(stage);
        }
        if e.is_retryable() {
            // gix's word (a connection that failed, a timeout, a 5xx): the
            // network or the server, worth another try as it is.
            return match unreachable(&reason, &kinds) {
                true => Error::Unreachable { stage, url, reason },
                false => Error::Protocol { stage, url, reason },
            };
        }
        self.classify(stage, reason, &kinds)
    }

    /// Map an I/O error while sending or receiving.
    pub(crate) fn io(&self, e: &std::io::Error, interrupt: &AtomicBool, stage: Stage) -> Error {
        if interrupt.load(Ordering::SeqCst) {
            return self.timeout(stage);
        }
        let mut parts = vec![e.to_string()];
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            parts.insert(
                0,
                "the connection closed before the server's answer was complete".into(),
            );
        }
        let mut next = std::error::Error::source(e);
        while let Some(cause) = next {
            let text = cause.to_string();
            if !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            next = cause.source();
        }
        let reason = self.scrub(&parts.join(": "));
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            return Error::Auth {
                stage,
                url: self.shown.clone(),
                reason,
            };
        }
        self.classify(stage, reason, &[e.kind()])
    }

    /// gix refused to inflate an object past `gitoxide.objects.allocLimit`.
    fn too_large(&self, stage: Stage) -> Error {
        Error::Rejected {
            stage,
            entry: "the pack sent by the remote".into(),
            reason: format!(
                "it holds an object larger than the artifact may be ({} bytes; raise `limits max-size` if it belongs there)",
                self.max_bytes
            ),
        }
    }

    fn classify(&self, stage: Stage, reason: String, kinds: &[std::io::ErrorKind]) -> Error {
        let url = self.shown.clone();
        let lower = reason.to_ascii_lowercase();
        if unreachable(&reason, kinds) {
            return Error::Unreachable { stage, url, reason };
        }
        if lower.contains("too large to fit in memory") {
            return self.too_large(stage);
        }
        if lower.contains("404") || lower.contains("not found") && lower.contains("repository") {
            return Error::NotFound {
                stage,
                url,
                what: format!("git repository ({reason})"),
            };
        }
        Error::Protocol { stage, url, reason }
    }
}

/// Whether the connection itself failed: refused, reset, unroutable,
/// not resolved.
fn unreachable(reason: &str, kinds: &[std::io::ErrorKind]) -> bool {
    use std::io::ErrorKind as K;
    let lower = reason.to_ascii_lowercase();
    kinds.iter().any(|k| {
        matches!(
            k,
            K::ConnectionRefused
                | K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::AddrNotAvailable
                | K::TimedOut
                | K::HostUnreachable
                | K::NetworkUnreachable
        )
    }) || lower.contains("error trying to connect")
        || lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("connection refused")
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;

    use gix::error::{Class, ClassificationMarker};

    use super::*;
    use crate::git::secrets::Secrets;

    fn remote() -> Remote {
        Remote {
            url: "https://bot:pw@host/r.git".into(),
            shown: "https://***@host/r.git".into(),
            secrets: Secrets {
                basic: Some(("bot".into(), "pw".into())),
                ssh_command: None,
                ca: Vec::new(),
            },
            timeout: Duration::from_secs(3),
            max_bytes: 1000,
        }
    }

    fn marked(class: Class, kind: ErrorKind, text: &'static str) -> gix::Error {
        gix::Error::from_error(ClassificationMarker::with_source(
            class,
            std::io::Error::new(kind, text),
        ))
    }

    fn plain(kind: ErrorKind, text: &'static str) -> gix::Error {
        gix::Error::from_error(std::io::Error::new(kind, text))
    }

    #[test]
    fn gix_s_own_classification_comes_first_then_kinds_and_texts() {
        let (remote, calm) = (remote(), AtomicBool::new(false));
        let map = |e: gix::Error| remote.network(&e, &calm, Stage::Fetch);
        let e = map(marked(
            Class::Unauthenticated,
            ErrorKind::Other,
            "401 for https://bot:pw@host/r.git",
        ));
        assert!(matches!(e, Error::Auth { .. }), "{e:?}");
        assert!(!e.to_string().contains("pw@"), "{e}");
        assert!(e.to_string().contains("https://***@host/r.git"), "{e}");
        assert!(!e.retryable());
        let e = map(marked(
            Class::Retryable,
            ErrorKind::Other,
            "error trying to connect",
        ));
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        // A 5xx is the server's, not the network's: retryable, but reached.
        let e = map(marked(
            Class::Retryable,
            ErrorKind::Other,
            "HTTP status 503, repository not found",
        ));
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        assert!(e.retryable());
        let e = map(marked(ALLOCATION_LIMIT, ErrorKind::Other, "an object"));
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        assert!(!e.retryable());
        let e = map(plain(ErrorKind::ConnectionRefused, "refused"));
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        let e = map(plain(ErrorKind::Other, "repository not found"));
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
        let e = map(plain(ErrorKind::Other, "object is too large to fit in memory"));
        assert!(matches!(e, Error::Rejected { .. }), "{e:?}");
        let e = map(plain(ErrorKind::Other, "bad pack pw"));
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        assert_eq!(e.to_string(), "https://***@host/r.git: bad pack ***");
    }

    #[test]
    fn an_interrupted_operation_is_a_timeout_of_its_stage() {
        let (remote, interrupted) = (remote(), AtomicBool::new(true));
        let e = remote.network(&plain(ErrorKind::Other, "x"), &interrupted, Stage::Fetch);
        assert_eq!(
            e.to_string(),
            "fetching https://***@host/r.git took longer than the timeout of 3s"
        );
        let e = remote.io(&std::io::Error::other("x"), &interrupted, Stage::Push);
        assert_eq!(
            e.to_string(),
            "the push of https://***@host/r.git took longer than the timeout of 3s"
        );
        assert_eq!(e.reason(), Reason::PushFailed);
    }
}
