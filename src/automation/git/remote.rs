//! What fetch and push share: the remote's URL as it may be shown,
//! credentials read from their files, the mapping of gix errors to
//! [`Error`]s, and running a blocking operation under a timeout.
//!
//! The credential rules are the ones of `source::git`: a password or token
//! goes only over https (or plain http to a loopback address), ssh runs
//! with `-F /dev/null` and only the configured key and known_hosts, and
//! nothing secret is written to disk or put into a message.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::{Error, Stage};
use crate::config;

/// A remote repository and how to authenticate to it.
pub(super) struct Remote {
    pub url: String,
    /// The URL with any password or token in it hidden.
    pub shown: String,
    pub secrets: Secrets,
    pub timeout: Duration,
}

impl Remote {
    /// The git remote of `source`, with its credentials loaded.
    pub fn of(source: &config::Source, timeout: Duration, stage: Stage) -> Result<Remote, Error> {
        let config::SourceKind::Git { url, .. } = &source.kind else {
            return Err(Error::Invalid {
                stage,
                what: format!(
                    "the source `{}` ({}) is not a git repository",
                    source.name.as_str(),
                    crate::source::redact(source.kind.url())
                ),
            });
        };
        let shown = crate::source::redact(url);
        let secrets = Secrets::read(source.auth.as_ref(), timeout)
            .map_err(|(path, source)| Error::Credentials { stage, path, source })?;
        if secrets.basic.is_some() && !credentials_allowed(url) {
            return Err(Error::Auth {
                stage,
                url: shown,
                reason: "credentials are sent only over https (or plain http to a loopback address)".into(),
            });
        }
        Ok(Remote {
            url: url.clone(),
            shown,
            secrets,
            timeout,
        })
    }

    /// Config overrides for a repository that talks to this remote: no
    /// reflogs, and the ssh command of a configured key.
    pub fn config_overrides(&self) -> Vec<String> {
        let mut overrides = vec!["core.logAllRefUpdates=false".to_string()];
        if let Some(cmd) = &self.secrets.ssh_command {
            overrides.push(format!("core.sshCommand={cmd}"));
            overrides.push("ssh.variant=ssh".into());
        }
        overrides
    }

    pub fn protocol(&self, stage: Stage, reason: impl AsRef<str>) -> Error {
        Error::Protocol {
            stage,
            url: self.shown.clone(),
            reason: self.scrub(reason.as_ref()),
        }
    }

    /// `text` without the URL's user info or the password or token.
    pub fn scrub(&self, text: &str) -> String {
        let text = if self.url != self.shown {
            text.replace(&self.url, &self.shown)
        } else {
            text.to_string()
        };
        self.secrets.scrub(&text)
    }

    /// A one-line account of `e` and its causes, with secrets removed.
    pub fn reason(&self, e: &gix::Error) -> String {
        let mut parts: Vec<String> = Vec::new();
        for cause in chain(e) {
            let text = cause.to_string();
            if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
        }
        self.scrub(&parts.join(": "))
    }

    /// Map a gix error from talking to the remote. Anything not known to
    /// be the network's or the credentials' fault is a `Protocol` error.
    pub fn network(&self, e: &gix::Error, interrupt: &AtomicBool, stage: Stage) -> Error {
        let url = self.shown.clone();
        if interrupt.load(Ordering::SeqCst) {
            return Error::Timeout {
                stage,
                url,
                timeout: self.timeout,
            };
        }
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
        self.classify(stage, reason, &kinds)
    }

    /// Map an I/O error while sending or receiving.
    pub fn io(&self, e: &std::io::Error, interrupt: &AtomicBool, stage: Stage) -> Error {
        if interrupt.load(Ordering::SeqCst) {
            return Error::Timeout {
                stage,
                url: self.shown.clone(),
                timeout: self.timeout,
            };
        }
        let mut parts = vec![e.to_string()];
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

    fn classify(&self, stage: Stage, reason: String, kinds: &[std::io::ErrorKind]) -> Error {
        use std::io::ErrorKind as K;
        let url = self.shown.clone();
        let lower = reason.to_ascii_lowercase();
        let unreachable = kinds.iter().any(|k| {
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
            || lower.contains("connection refused");
        if unreachable {
            return Error::Unreachable { stage, url, reason };
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

use crate::busy::BusyGuard;
pub(super) use crate::source::git::credentials_allowed;
use crate::source::git::{Secrets, chain};

/// Run `op` on its own thread with the workspace `dir` marked busy; at
/// `timeout`, raise the interrupt flag and return [`Error::Timeout`] even
/// if the thread is stuck in I/O (it keeps `dir` busy until it ends).
pub(super) fn run_with_timeout<T: Send + 'static>(
    dir: &Path,
    stage: Stage,
    shown: &str,
    timeout: Duration,
    op: impl FnOnce(&AtomicBool) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    let Some(guard) = BusyGuard::take(dir) else {
        return Err(Error::Busy {
            stage,
            dir: dir.to_path_buf(),
        });
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = interrupt.clone();
    std::thread::Builder::new()
        .name(format!("git-{}", stage.verb()))
        .spawn(move || {
            let result = op(&flag);
            // Free before answering: the caller may go on at once.
            drop(guard);
            let _ = tx.send(result);
        })
        .map_err(|e| Error::Protocol {
            stage,
            url: shown.to_string(),
            reason: format!("cannot start a thread: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            interrupt.store(true, Ordering::SeqCst);
            Err(Error::Timeout {
                stage,
                url: shown.to_string(),
                timeout,
            })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Protocol {
            stage,
            url: shown.to_string(),
            reason: "the worker thread stopped without a result".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_go_in_clear_text_only_to_this_machine() {
        assert!(credentials_allowed("https://example.com/r.git"));
        assert!(credentials_allowed("http://127.0.0.1:8080/r.git"));
        assert!(credentials_allowed("http://localhost/r.git"));
        assert!(credentials_allowed("http://[::1]:80/r.git"));
        assert!(!credentials_allowed("http://example.com/r.git"));
        assert!(!credentials_allowed("http://127.0.0.1.example.com/r.git"));
    }

    #[test]
    fn secrets_are_scrubbed_and_not_debug_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s3cret\n").unwrap();
        let auth = config::Auth {
            token_file: Some(file),
            ..Default::default()
        };
        let secrets = Secrets::read(Some(&auth), Duration::from_secs(5)).unwrap();
        assert_eq!(secrets.scrub("bad s3cret here"), "bad *** here");
        assert!(!format!("{secrets:?}").contains("s3cret"));
    }

    #[test]
    fn a_second_operation_on_a_busy_workspace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (started_tx, started) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let path = dir.path().to_path_buf();
        let first = std::thread::spawn(move || {
            run_with_timeout(&path, Stage::Push, "u", Duration::from_secs(10), move |_| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv();
                Ok(())
            })
        });
        started.recv().unwrap();
        let second = run_with_timeout(dir.path(), Stage::Push, "u", Duration::from_secs(1), |_| Ok(()));
        assert!(matches!(second, Err(Error::Busy { .. })), "{second:?}");
        release.send(()).unwrap();
        assert!(first.join().unwrap().is_ok());
        // Free again.
        run_with_timeout(dir.path(), Stage::Push, "u", Duration::from_secs(1), |_| Ok(())).unwrap();
    }

    #[test]
    fn an_operation_past_its_timeout_is_a_timeout_and_sees_the_interrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel::<bool>();
        let result: Result<(), Error> = run_with_timeout(
            dir.path(),
            Stage::Checkout,
            "u",
            Duration::from_millis(50),
            move |interrupt| {
                while !interrupt.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = tx.send(true);
                Ok(())
            },
        );
        assert!(matches!(result, Err(Error::Timeout { .. })));
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
    }
}
