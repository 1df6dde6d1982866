//! Notifications: takes [`Event`]s (an object failed, recovered, pushed,
//! applied) and the `notify` nodes of the running config, and posts each
//! event to every notification whose `on` and `objects` match it — as a
//! Slack message, as JSON in the shape of Flux's generic provider, or as a
//! GitHub commit status ([`github`]).
//!
//! Posting never holds anything up: [`Notifier::send`] only queues (a
//! bounded queue per notification; when it is full the oldest event is
//! dropped and counted). One worker per notification posts in order, each
//! attempt within the notification's `timeout`, retrying transient
//! failures (network errors, 408, 429, 5xx) with exponential backoff.
//!
//! URLs and tokens are secrets (a Slack webhook URL is its own credential):
//! they are read from their files for each post and appear in no log,
//! status or error message — errors name the notification, not the URL.

pub mod github;
mod payload;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify as Wake;

use crate::config::{self, Kind, NotifyEvent, NotifyFormat};

/// Events waiting per notification, at most.
const QUEUE: usize = 64;
/// Attempts at one post before it is given up.
pub const ATTEMPTS: u32 = 5;
/// The first retry's delay; each next one doubles.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// A `Retry-After` longer than this is cut to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Something that happened to one object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub kind: Kind,
    pub name: String,
    pub event: NotifyEvent,
    /// `info` or `error`, as Flux's events.
    pub severity: Severity,
    /// The status reason of a failure; `ReconciliationSucceeded` otherwise.
    pub reason: String,
    pub message: String,
    pub revision: Option<String>,
    /// A web page of the revision's commit, for the forges known to have one.
    pub commit_url: Option<String>,
    pub at: jiff::Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Error,
}

/// The reason success events carry (Flux's `ReconciliationSucceeded`).
pub const SUCCEEDED: &str = "ReconciliationSucceeded";

/// What a notification has done, for `/api/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct NotifyStatus {
    pub name: String,
    /// Events posted.
    pub sent: u64,
    /// Events given up after every attempt failed.
    pub failed: u64,
    /// Events dropped because the queue was full.
    pub dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_sent: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

/// Queues and workers, one per notification; cheap to clone.
#[derive(Clone, Default)]
pub struct Notifier {
    inner: Arc<Mutex<HashMap<String, Arc<Queue>>>>,
}

/// One notification's queue, the definition its worker posts with, and
/// what it did.
struct Queue {
    state: Mutex<QueueState>,
    wake: Wake,
}

struct QueueState {
    events: VecDeque<Event>,
    def: config::Notify,
    /// The notification left the config: finish the queue, then stop.
    closed: bool,
    /// A post in progress (for [`Notifier::flush`]).
    busy: bool,
    status: NotifyStatus,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Notifier {
    pub fn new() -> Notifier {
        Notifier::default()
    }

    /// Queue `event` for every notification of `cfg` that wants it. Needs
    /// a tokio runtime (workers are spawned on first use); never waits.
    pub fn send(&self, cfg: &config::Config, event: &Event) {
        let mut queues = lock(&self.inner);
        // Notifications removed from the config finish what they have.
        queues.retain(|name, q| {
            let keep = cfg.notifications.iter().any(|n| n.name.value == *name);
            if !keep {
                lock(&q.state).closed = true;
                q.wake.notify_one();
            }
            keep
        });
        for def in &cfg.notifications {
            if !wants(def, event) {
                continue;
            }
            let queue = queues
                .entry(def.name.value.clone())
                .or_insert_with(|| spawn(def.clone()))
                .clone();
            {
                let mut st = lock(&queue.state);
                st.def = def.clone();
                if st.events.len() >= QUEUE {
                    st.events.pop_front();
                    st.status.dropped += 1;
                    tracing::warn!(
                        notify = %def.name.value,
                        "the queue of notify/{} is full: dropped its oldest event",
                        def.name.value
                    );
                }
                st.events.push_back(event.clone());
            }
            queue.wake.notify_one();
        }
    }

    /// What every notification has done, by name.
    pub fn report(&self) -> Vec<NotifyStatus> {
        let queues = lock(&self.inner);
        let mut all: Vec<NotifyStatus> = queues.values().map(|q| lock(&q.state).status.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Wait until every queue is empty and idle, at most `bound`.
    pub async fn flush(&self, bound: Duration) -> bool {
        let idle = || {
            lock(&self.inner).values().all(|q| {
                let st = lock(&q.state);
                st.events.is_empty() && !st.busy
            })
        };
        let wait = async {
            while !idle() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(bound, wait).await.is_ok()
    }
}

/// Whether `def` is about `event`'s kind of change and object.
pub fn wants(def: &config::Notify, event: &Event) -> bool {
    def.on.contains(&event.event)
        && (def.objects.is_empty() || def.objects.iter().any(|p| p.matches(event.kind, &event.name)))
}

fn spawn(def: config::Notify) -> Arc<Queue> {
    let queue = Arc::new(Queue {
        state: Mutex::new(QueueState {
            events: VecDeque::new(),
            status: NotifyStatus {
                name: def.name.value.clone(),
                ..NotifyStatus::default()
            },
            def,
            closed: false,
            busy: false,
        }),
        wake: Wake::new(),
    });
    tokio::spawn(work(queue.clone()));
    queue
}

/// Post a queue's events in order until it is closed and empty.
async fn work(queue: Arc<Queue>) {
    loop {
        let next = {
            let mut st = lock(&queue.state);
            match st.events.pop_front() {
                Some(e) => {
                    st.busy = true;
                    Some((e, st.def.clone()))
                }
                None if st.closed => return,
                None => None,
            }
        };
        let Some((event, def)) = next else {
            queue.wake.notified().await;
            continue;
        };
        let result = deliver(&def, &event).await;
        let mut st = lock(&queue.state);
        st.busy = false;
        match result {
            Ok(()) => {
                st.status.sent += 1;
                st.status.last_sent = Some(jiff::Timestamp::now());
                tracing::debug!(notify = %def.name.value, "posted {} of {}/{}", event.event.as_str(), event.kind, event.name);
            }
            Err(e) => {
                st.status.failed += 1;
                st.status.last_error = Some(e.to_string());
                tracing::warn!(
                    notify = %def.name.value,
                    "gave up posting {} of {}/{}: {e}",
                    event.event.as_str(),
                    event.kind,
                    event.name
                );
            }
        }
    }
}

/// Why a post failed. Never holds the URL or a token.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {what} from {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::Error),
    #[error("the endpoint answered {status}{}", after(*retry_after))]
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the request failed: {0}")]
    Network(String),
    /// The endpoint's certificate is not trusted: retrying cannot help.
    #[error("the endpoint's certificate is not trusted: {0}")]
    Untrusted(String),
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

fn after(d: Option<Duration>) -> String {
    d.map(|d| format!(" (retry after {})", humantime::format_duration(d)))
        .unwrap_or_default()
}

impl Error {
    /// Whether another attempt may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            Error::Network(_) | Error::Timeout(_) => true,
            Error::Read { .. } | Error::Invalid(_) | Error::Tls(_) | Error::Untrusted(_) => false,
        }
    }

    /// A reqwest error without its URL (which may hold the secret).
    pub fn network(e: reqwest::Error) -> Error {
        let e = e.without_url();
        let mut text = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            let t = cause.to_string();
            if !text.contains(&t) {
                text.push_str(": ");
                text.push_str(&t);
            }
            source = cause.source();
        }
        if text.contains("certificate") || text.contains("UnknownIssuer") {
            return Error::Untrusted(text);
        }
        Error::Network(text)
    }
}

/// Post `event` as `def` says, retrying transient failures.
async fn deliver(def: &config::Notify, event: &Event) -> Result<(), Error> {
    let mut delay = FIRST_RETRY;
    let mut attempt = 1;
    loop {
        let result = match tokio::time::timeout(def.timeout, post(def, event)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(def.timeout)),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                let wait = match &e {
                    Error::Status {
                        retry_after: Some(r), ..
                    } => (*r).min(MAX_RETRY_AFTER).max(delay),
                    _ => delay,
                };
                tracing::debug!(notify = %def.name.value, attempt, "posting failed ({e}); again in {wait:?}");
                tokio::time::sleep(wait).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// One attempt.
async fn post(def: &config::Notify, event: &Event) -> Result<(), Error> {
    let url = secret(&def.url_file, "the URL")?;
    let token = def
        .token_file
        .as_deref()
        .map(|f| secret(f, "the token"))
        .transpose()?;
    let client = http_client(def)?;
    match def.format {
        NotifyFormat::Slack => send(client.post(&url).json(&payload::slack(event))).await,
        NotifyFormat::Generic => {
            let mut req = client.post(&url).json(&payload::generic(event));
            if let Some(t) = &token {
                req = req.bearer_auth(t);
            }
            send(req).await
        }
        NotifyFormat::GithubStatus => {
            let token = token.ok_or_else(|| Error::Invalid("`github-status` needs a `token-file`".into()))?;
            github::post(&client, &url, &token, &def.name.value, event).await
        }
    }
}

/// Send a request; any 2xx is success.
pub(crate) async fn send(req: reqwest::RequestBuilder) -> Result<(), Error> {
    let res = req.send().await.map_err(Error::network)?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = res
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    Err(Error::Status {
        status: status.as_u16(),
        retry_after,
    })
}

fn http_client(def: &config::Notify) -> Result<reqwest::Client, Error> {
    let certs = crate::tls::reqwest_certificates(def.ca_file.as_deref())?;
    reqwest::Client::builder()
        .user_agent(concat!("mooring/", env!("CARGO_PKG_VERSION")))
        // A redirect would carry the body (and maybe a token) elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_merge(certs)
        .build()
        .map_err(Error::network)
}

/// A secret file's first line, trimmed; an empty one is an error.
fn secret(path: &std::path::Path, what: &'static str) -> Result<String, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if line.is_empty() {
        return Err(Error::Invalid(format!("{} is empty", path.display())));
    }
    Ok(line)
}

/// The web page of `revision`'s commit in the repository at `git_url`, for
/// GitHub and GitLab (where the page's path is known).
pub fn commit_url(git_url: &str, revision: &str) -> Option<String> {
    let sha = revision_sha(revision)?;
    let (host, path) = web_repo(git_url)?;
    match host.as_str() {
        "github.com" => Some(format!("https://{host}/{path}/commit/{sha}")),
        "gitlab.com" => Some(format!("https://{host}/{path}/-/commit/{sha}")),
        _ => None,
    }
}

/// The commit id in a revision (`main@sha1:<hex>`, `sha1:<hex>`, `<hex>`).
pub fn revision_sha(revision: &str) -> Option<&str> {
    let id = revision.rsplit_once('@').map_or(revision, |(_, id)| id);
    let hex = id
        .strip_prefix("sha1:")
        .or_else(|| id.strip_prefix("sha256:"))
        .unwrap_or(id);
    let ok = matches!(hex.len(), 40 | 64) && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(hex)
}

/// `(host, owner/repo)` of a git URL (https, ssh or scp-like), without
/// credentials or `.git`.
pub fn web_repo(git_url: &str) -> Option<(String, String)> {
    let rest = match git_url.split_once("://") {
        Some((_, rest)) => rest.to_string(),
        // git@host:owner/repo.git
        None => git_url.replacen(':', "/", 1),
    };
    let (authority, path) = rest.split_once('/')?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?.to_ascii_lowercase();
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path).to_string();
    (!host.is_empty() && !path.is_empty()).then_some((host, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_pages_of_known_forges() {
        let sha = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            commit_url(
                "https://bot:tok@github.com/acme/app.git",
                &format!("main@sha1:{sha}")
            )
            .as_deref(),
            Some(format!("https://github.com/acme/app/commit/{sha}").as_str())
        );
        assert_eq!(
            commit_url("git@gitlab.com:acme/app.git", &format!("sha1:{sha}")).as_deref(),
            Some(format!("https://gitlab.com/acme/app/-/commit/{sha}").as_str())
        );
        assert_eq!(commit_url("https://git.example.com/a/b.git", sha), None);
        assert_eq!(commit_url("https://github.com/a/b", "6.5.0@sha256:abc"), None);
    }

    #[test]
    fn events_are_filtered_by_kind_of_change_and_object() {
        let def = config::Notify {
            name: config::Spanned::new("n".into(), (0, 0).into()),
            url_file: "/u".into(),
            token_file: None,
            format: NotifyFormat::Generic,
            on: vec![NotifyEvent::Failure],
            objects: vec![config::ObjectPattern {
                kind: Some(Kind::App),
                name: "web-*".into(),
            }],
            timeout: Duration::from_secs(1),
            ca_file: None,
        };
        let mut e = Event {
            kind: Kind::App,
            name: "web-eu".into(),
            event: NotifyEvent::Failure,
            severity: Severity::Error,
            reason: "ApplyFailed".into(),
            message: "x".into(),
            revision: None,
            commit_url: None,
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        assert!(wants(&def, &e));
        e.event = NotifyEvent::Recovery;
        assert!(!wants(&def, &e));
        e.event = NotifyEvent::Failure;
        e.name = "api".into();
        assert!(!wants(&def, &e));
    }

    #[test]
    fn errors_never_carry_the_url() {
        let e = Error::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(e.to_string(), "the endpoint answered 429 (retry after 3s)");
        assert!(e.is_transient());
        assert!(
            !Error::Status {
                status: 404,
                retry_after: None
            }
            .is_transient()
        );
    }
}
