//! The one vocabulary of status reasons, and the one way every stage's
//! error is classified ([`Classify`]): which reason, whether retrying can
//! help, and how long the server asked to wait. Status, metrics, logs and
//! `once` all speak these; docs/cli.md's table of reasons is checked
//! against [`Reason::ALL`] by the test suite.

use std::fmt;
use std::time::Duration;

/// Why an object is in the state it is in; [`Reason::meaning`] says what each means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    Succeeded,
    Suspended,
    Standby,
    ArtifactNotReady,
    DependencyNotReady,
    FetchFailed,
    ScanFailed,
    SubstituteFailed,
    RenderFailed,
    ApplyFailed,
    PruneFailed,
    HealthCheckFailed,
    CheckoutFailed,
    PatchFailed,
    CommitFailed,
    PushFailed,
    Internal,
}

impl Reason {
    pub const ALL: [Reason; 17] = [
        Reason::Succeeded,
        Reason::Suspended,
        Reason::Standby,
        Reason::ArtifactNotReady,
        Reason::DependencyNotReady,
        Reason::FetchFailed,
        Reason::ScanFailed,
        Reason::SubstituteFailed,
        Reason::RenderFailed,
        Reason::ApplyFailed,
        Reason::PruneFailed,
        Reason::HealthCheckFailed,
        Reason::CheckoutFailed,
        Reason::PatchFailed,
        Reason::CommitFailed,
        Reason::PushFailed,
        Reason::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Succeeded => "Succeeded",
            Reason::Suspended => "Suspended",
            Reason::Standby => "Standby",
            Reason::ArtifactNotReady => "ArtifactNotReady",
            Reason::DependencyNotReady => "DependencyNotReady",
            Reason::FetchFailed => "FetchFailed",
            Reason::ScanFailed => "ScanFailed",
            Reason::SubstituteFailed => "SubstituteFailed",
            Reason::RenderFailed => "RenderFailed",
            Reason::ApplyFailed => "ApplyFailed",
            Reason::PruneFailed => "PruneFailed",
            Reason::HealthCheckFailed => "HealthCheckFailed",
            Reason::CheckoutFailed => "CheckoutFailed",
            Reason::PatchFailed => "PatchFailed",
            Reason::CommitFailed => "CommitFailed",
            Reason::PushFailed => "PushFailed",
            Reason::Internal => "Internal",
        }
    }
}

impl Reason {
    /// What it means, as docs/cli.md's table of reasons says.
    pub fn meaning(self) -> &'static str {
        match self {
            Reason::Succeeded => "The last run did what it had to.",
            Reason::Suspended => "A `suspend` node (or `mooring suspend`) pauses the object.",
            Reason::Standby => {
                "With leader election: another replica holds the lease (with shards, the object's shard), and it reconciles the object."
            }
            Reason::ArtifactNotReady => "An app waits for its source's first artifact.",
            Reason::DependencyNotReady => {
                "An app waits for an app it depends on, or an automation for the first scan of an image policy."
            }
            Reason::FetchFailed => "A source could not be fetched, or its artifact not stored.",
            Reason::ScanFailed => "An image policy's registry could not be listed, or no tag matched.",
            Reason::SubstituteFailed => {
                "An app's `substitute-from` variables could not be read: a missing ConfigMap, Secret or file, or a cluster that does not answer."
            }
            Reason::RenderFailed => {
                "An app's manifests could not be rendered (YAML, kustomize, SOPS, substitution)."
            }
            Reason::ApplyFailed => "Objects could not be applied or written, or the target not reached.",
            Reason::PruneFailed => "Objects removed from the source could not be deleted.",
            Reason::HealthCheckFailed => "What was applied did not become healthy within `wait`'s timeout.",
            Reason::CheckoutFailed => "An automation could not check out its branch.",
            Reason::PatchFailed => "An automation could not set the marked values.",
            Reason::CommitFailed => "An automation could not make its commit.",
            Reason::PushFailed => "An automation could not push.",
            Reason::Internal => "A run stopped in a way mooring does not expect: a bug to report.",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What the scheduler needs to know of a stage's error.
pub trait Classify {
    /// The status reason it maps to.
    fn reason(&self) -> Reason;
    /// Whether running again, unchanged, can succeed (a network error can;
    /// a YAML error cannot until the source changes).
    fn retryable(&self) -> bool;
    /// How long the server asked to be left alone, if it said.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// No error, one error as itself, or several as the one error `many`
/// makes of them: how a stage that checks everything before giving up
/// reports what it found.
pub fn one_or_many<E>(many: impl FnOnce(Vec<E>) -> E, mut errors: Vec<E>) -> Result<(), E> {
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.remove(0)),
        _ => Err(many(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_every_reason_once() {
        let mut names: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reason::ALL.len());
        assert_eq!(
            serde_json::to_string(&Reason::PruneFailed).ok().as_deref(),
            Some("\"PruneFailed\"")
        );
    }
}
