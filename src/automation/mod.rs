//! Image automation: takes an `automation`, the image policies (with their
//! picks) and the state directory; checks out the source's branch into a
//! clone of its own ([`git::Workspace`]), sets the marked image references
//! ([`setters`]), commits with a message rendered from the changes, and
//! pushes. When someone else pushed first, it starts again on top of the
//! new tip (a few times, with jitter), so no update is lost and nothing is
//! ever force-pushed.

pub mod git;
pub mod setters;

use std::path::Path;
use std::time::Duration;

use crate::config;
use crate::reason::{Classify, Reason};
use setters::Policies;

/// Attempts at commit + push before giving up on a busy branch.
const ATTEMPTS: u32 = 5;
/// Checking out and pushing may take at least this long, each (or the
/// source's timeout, if longer).
const GIT_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Git(#[from] git::Error),
    #[error("{0}")]
    Setters(#[from] setters::Error),
    #[error("the commit message template: {0}")]
    Template(String),
    #[error("{branch} moved on during each of {attempts} attempts; will try again later")]
    Busy { branch: String, attempts: u32 },
    #[error("the automation task failed: {0}")]
    Task(String),
}

impl Error {}

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The commit pushed; `None` when nothing needed to change.
    pub commit: Option<String>,
    pub branch: String,
    pub changes: Vec<setters::Change>,
    pub attempts: u32,
    /// `(file, why)`: markers and files that were not set (a marker that
    /// names no image policy, a file that would not parse, …).
    pub skipped: Vec<(String, String)>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.commit {
            None => write!(f, "{} is up to date", self.branch)?,
            Some(c) => write!(
                f,
                "pushed {} to {}: {} change{}",
                &c[..c.len().min(12)],
                self.branch,
                self.changes.len(),
                if self.changes.len() == 1 { "" } else { "s" }
            )?,
        }
        if let Some((file, why)) = self.skipped.first() {
            let more = match self.skipped.len() - 1 {
                0 => String::new(),
                n => format!(" (and {n} more, in the log)"),
            };
            write!(f, "; skipped {file}: {why}{more}")?;
        }
        Ok(())
    }
}

/// One run of `a` against its source `src`.
pub async fn run(
    a: &config::Automation,
    src: &config::Source,
    policies: &Policies,
    state_dir: &Path,
) -> Result<Outcome, Error> {
    let (a, src, policies) = (a.clone(), src.clone(), policies.clone());
    let dir = state_dir.join("automations").join(a.name.as_str());
    tokio::task::spawn_blocking(move || run_blocking(&a, &src, &policies, &dir))
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

fn run_blocking(
    a: &config::Automation,
    src: &config::Source,
    policies: &Policies,
    dir: &Path,
) -> Result<Outcome, Error> {
    let checkout = git::checkout_branch(a, src, src.timeout)?;
    let push = a.push.clone().unwrap_or_else(|| checkout.clone());
    for attempt in 1..=ATTEMPTS {
        // Start from the remote's tip: ours, or the one that beat us.
        let mut ws = git::Workspace::prepare(dir, src, &checkout, &push, src.timeout.max(GIT_TIMEOUT))?;
        let root = ws.root().join(&a.path);
        let patched = setters::apply(&root, policies, false)?;
        for (file, why) in &patched.skipped {
            tracing::warn!("{file}: {why}");
        }
        let commit = if patched.changes.is_empty() {
            None
        } else {
            let message = message(&a.message, &patched.changes)?;
            ws.commit(&a.author, &message)?
        };
        // Nothing changed, or the changes left the tree as it was.
        let Some(commit) = commit else {
            return Ok(Outcome {
                commit: None,
                branch: push,
                changes: Vec::new(),
                attempts: attempt,
                skipped: patched.skipped,
            });
        };
        match ws.push(&push, false)? {
            git::PushOutcome::Pushed { .. } => {
                return Ok(Outcome {
                    commit: Some(commit),
                    branch: push,
                    changes: patched.changes,
                    attempts: attempt,
                    skipped: patched.skipped,
                });
            }
            git::PushOutcome::Rejected { reason } => {
                tracing::info!("push to {push} rejected ({reason}); starting again on the new tip");
                let pause = crate::backoff::jitter(Duration::from_millis(200 * u64::from(attempt)));
                std::thread::sleep(pause);
            }
        }
    }
    Err(Error::Busy {
        branch: push,
        attempts: ATTEMPTS,
    })
}

/// The commit message: the automation's template with `changes` (each has
/// `file`, `line`, `marker`, `image`, `old`, `new`), rendered as `validate`
/// checked it ([`config::template`]).
pub fn message(template: &str, changes: &[setters::Change]) -> Result<String, Error> {
    let changes = minijinja::Value::from(minijinja::value::Serde(changes));
    config::template::render(template, changes).map_err(|e| Error::Template(e.to_string()))
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        match self {
            Error::Git(e) => e.reason(),
            Error::Setters(_) => Reason::PatchFailed,
            Error::Template(_) => Reason::CommitFailed,
            Error::Busy { .. } | Error::Task(_) => Reason::PushFailed,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Git(e) => e.retryable(),
            Error::Setters(_) | Error::Busy { .. } | Error::Task(_) => true,
            Error::Template(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `validate` promises a template is what a change holds.
    #[test]
    fn a_change_holds_the_fields_templates_are_checked_against() {
        let change = setters::Change {
            file: "f.yaml".into(),
            line: 3,
            marker: "podinfo".into(),
            image: "podinfo".into(),
            old: "a:1".into(),
            new: "a:2".into(),
        };
        let json = serde_json::to_value(&change).unwrap();
        let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
        let mut want = config::template::CHANGE_FIELDS.to_vec();
        want.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, want);
        assert_eq!(
            message(config::model::defaults::COMMIT_MESSAGE, &[change]).unwrap(),
            "chore(images): update images\n\n- f.yaml: a:1 -> a:2\n"
        );
    }
}
