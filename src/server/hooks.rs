//! Webhook receivers: `POST /hooks/NAME` takes a delivery from a git host
//! or a registry and makes the receiver's `reconcile` objects run now
//! (trigger `webhook`). Hooks need no API token: each carries its own
//! proof, checked against the receiver's `secret-file`:
//!
//! | type | proof |
//! |---|---|
//! | `github` | `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>` |
//! | `gitlab` | `X-Gitlab-Token: <secret>` |
//! | `generic-hmac` | `X-Signature: sha256=<HMAC-SHA256 of the body>` |
//! | `harbor` | `Authorization: <secret>` (Harbor's "auth header") |
//! | `dockerhub`, `quay` | `?token=<secret>` in the URL (they cannot sign) |
//!
//! The caller is untrusted until the proof holds, so the order of work
//! bounds what an anonymous caller can cost: the receiver must exist; a
//! per-receiver rate limit (a bucket of [`BURST`] refilled at [`REFILL`])
//! answers 429 before anything is read; a body announced larger than
//! [`MAX_BODY`] gets 413 before it is read, and one that grows past it
//! while read gets 413 as well; then the proof is compared in constant
//! time (401 on a mismatch, logged without the secret or the proof).
//!
//! A valid delivery is then read: `ping` answers `pong`; GitHub and GitLab
//! pushes reconcile a git source only when the push is to its repository
//! and to the branch (or tag) it follows; registry pushes reconcile an
//! image or OCI source only when the pushed repository is its; other
//! objects named in `reconcile` run on any accepted event. With leader
//! election, a run for an object of a shard another replica holds is left
//! in that shard's Lease for its holder, which runs it at its next
//! renewal (a source or an image runs on every holder). A delivery id
//! seen before (GitHub's `X-GitHub-Delivery`, GitLab's
//! `X-Gitlab-Event-UUID`, `X-Delivery-Id` for generic hooks, else for
//! registries a hash of the body) is answered again but runs nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::agent::{Agent, RefuseReason, Trigger};
use crate::config::diff::Key;
use crate::config::{self, GitRef, Kind, ReceiverKind, SourceKind};

/// The largest body a hook may have.
pub const MAX_BODY: usize = 1024 * 1024;
/// Requests one receiver takes at once before the rate limit applies.
pub const BURST: f64 = 30.0;
/// Requests per second one receiver takes after its burst.
pub const REFILL: f64 = 1.0;
/// Delivery ids remembered per receiver.
const REMEMBERED: usize = 1024;
/// How long a delivery id is remembered.
const REMEMBER_FOR: Duration = Duration::from_secs(3600);
/// Time to send the body once the headers are in.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Per-receiver state: the rate-limit bucket and the deliveries seen.
#[derive(Default)]
pub struct Hooks {
    receivers: Mutex<HashMap<String, PerReceiver>>,
}

struct PerReceiver {
    tokens: f64,
    refilled: Instant,
    seen: VecDeque<(String, Instant)>,
    seen_set: HashSet<String>,
}

impl PerReceiver {
    fn new() -> PerReceiver {
        PerReceiver {
            tokens: BURST,
            refilled: Instant::now(),
            seen: VecDeque::new(),
            seen_set: HashSet::new(),
        }
    }

    /// Take a token; `Err(wait)` when there is none.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * REFILL).min(BURST);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / REFILL))
        }
    }

    /// Remember `id`; `false` if it was seen (and not yet forgotten).
    fn first_time(&mut self, id: &str, now: Instant) -> bool {
        while let Some((old, at)) = self.seen.front() {
            if self.seen.len() < REMEMBERED && now.duration_since(*at) < REMEMBER_FOR {
                break;
            }
            self.seen_set.remove(old);
            self.seen.pop_front();
        }
        if !self.seen_set.insert(id.to_string()) {
            return false;
        }
        self.seen.push_back((id.to_string(), now));
        true
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn answer(code: StatusCode, body: Value) -> Response {
    (code, axum::Json(body)).into_response()
}

/// Handle `POST /hooks/NAME`.
pub async fn handle(
    agent: &Agent,
    hooks: &Hooks,
    name: &str,
    query: Option<&str>,
    peer: Option<std::net::SocketAddr>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let cfg = agent.config();
    let Some(receiver) = cfg.receiver(name) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({ "error": format!("no receiver is named \"{name}\"") }),
        );
    };
    let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.ip().to_string());
    let reject = |code: StatusCode, why: String| {
        tracing::warn!(receiver = name, peer = %peer, "refused a hook: {why}");
        agent.record_hook(name, |st| {
            st.rejected += 1;
            st.last_rejection = Some(why.clone());
        });
        answer(code, json!({ "error": why }))
    };
    // The rate limit, before anything costs more than a lookup.
    let limited = {
        let mut all = lock(&hooks.receivers);
        all.entry(name.to_string())
            .or_insert_with(PerReceiver::new)
            .take(Instant::now())
    };
    if let Err(wait) = limited {
        let secs = wait.as_secs().max(1);
        let mut res = reject(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many requests; retry in {secs}s"),
        );
        if let Ok(v) = header::HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return res;
    }
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {MAX_BODY} bytes"),
        );
    }
    let body = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return reject(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY} bytes (or was cut off)"),
            );
        }
        Err(_) => {
            return reject(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body took longer than {}s to send", BODY_TIMEOUT.as_secs()),
            );
        }
    };
    let secret = match crate::git::secret_text(&receiver.secret_file) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) | Err(_) => {
            tracing::error!(
                receiver = name,
                file = %receiver.secret_file.display(),
                "cannot read the receiver's secret file (or it is empty)"
            );
            agent.record_hook(name, |st| {
                st.rejected += 1;
                st.last_rejection = Some("the secret file cannot be read".into());
            });
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": "the agent cannot read this receiver's secret; see its log" }),
            );
        }
    };
    if let Err(why) = verify(receiver.kind, &secret, headers, query, &body) {
        return reject(StatusCode::UNAUTHORIZED, why.to_string());
    }

    // Authentic from here on.
    let event = match read_event(receiver.kind, headers, &body) {
        Ok(e) => e,
        Err(why) => return reject(StatusCode::BAD_REQUEST, why),
    };
    let now = jiff::Timestamp::now();
    let Some(event) = event else {
        agent.record_hook(name, |st| {
            st.ignored += 1;
            st.last_delivery = Some(now);
        });
        return answer(StatusCode::OK, json!({ "ignored": "not a push event" }));
    };
    if matches!(event, Event::Ping) {
        agent.record_hook(name, |st| st.last_delivery = Some(now));
        return answer(StatusCode::OK, json!({ "pong": true }));
    }
    if let Some(id) = delivery_id(receiver.kind, headers, &body) {
        let first = {
            let mut all = lock(&hooks.receivers);
            all.entry(name.to_string())
                .or_insert_with(PerReceiver::new)
                .first_time(&id, Instant::now())
        };
        if !first {
            agent.record_hook(name, |st| {
                st.duplicates += 1;
                st.last_delivery = Some(now);
            });
            tracing::info!(receiver = name, delivery = %id, "a delivery seen before: nothing to do again");
            return answer(StatusCode::OK, json!({ "duplicate": id }));
        }
    }

    let mut accepted = Vec::new();
    let mut skipped = serde_json::Map::new();
    for target in &receiver.reconcile {
        let key = Key::new(target.kind, target.name.as_str());
        if let Err(why) = concerns(&cfg, &key, &event) {
            skipped.insert(key.to_string(), Value::String(why));
            continue;
        }
        // With leader election, the replicas holding its shards run it.
        match agent.ask(&key, Trigger::Webhook) {
            Ok(()) => accepted.push(key.to_string()),
            Err(e @ (RefuseReason::Suspended(_) | RefuseReason::NotFound(_))) => {
                skipped.insert(key.to_string(), Value::String(e.to_string()));
            }
        }
    }
    let ran = !accepted.is_empty();
    agent.record_hook(name, |st| {
        if ran {
            st.accepted += 1;
        } else {
            st.ignored += 1;
        }
        st.last_delivery = Some(now);
    });
    tracing::info!(
        receiver = name,
        reconcile = %accepted.join(" "),
        "hook accepted{}",
        if ran { "" } else { ": it concerns none of the objects" }
    );
    let code = if ran { StatusCode::ACCEPTED } else { StatusCode::OK };
    answer(code, json!({ "accepted": accepted, "skipped": skipped }))
}

/// Why a request is not authentic. Never holds the secret or the proof.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no {0} header")]
    Missing(&'static str),
    #[error("the {0} header is not `sha256=<hex>`")]
    Malformed(&'static str),
    #[error("the signature does not match")]
    Signature,
    #[error("the token does not match")]
    Token,
}

/// Check the request's proof against `secret`, in constant time.
pub fn verify(
    kind: ReceiverKind,
    secret: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<(), Refused> {
    let header = |name: &'static str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let signed = |name: &'static str| -> Result<(), Refused> {
        let given = header(name).ok_or(Refused::Missing(name))?;
        let hex = given.strip_prefix("sha256=").ok_or(Refused::Malformed(name))?;
        let given = decode_hex(hex).ok_or(Refused::Malformed(name))?;
        let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).map_err(|_| Refused::Signature)?;
        mac.update(body);
        mac.verify_slice(&given).map_err(|_| Refused::Signature)
    };
    let token = |given: Option<&str>, name: &'static str| -> Result<(), Refused> {
        let given = given.ok_or(Refused::Missing(name))?;
        if super::constant_time_eq(given.as_bytes(), secret.as_bytes()) {
            Ok(())
        } else {
            Err(Refused::Token)
        }
    };
    match kind {
        ReceiverKind::Github => signed("x-hub-signature-256"),
        ReceiverKind::GenericHmac => signed("x-signature"),
        ReceiverKind::Gitlab => token(header("x-gitlab-token"), "X-Gitlab-Token"),
        ReceiverKind::Harbor => {
            let given = header("authorization").map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
            token(given, "Authorization")
        }
        ReceiverKind::Dockerhub | ReceiverKind::Quay => token(query_token(query), "`?token=`"),
    }
}

/// `token` of a query string, as written (use a token of letters and
/// digits: it is not percent-decoded).
fn query_token(query: Option<&str>) -> Option<&str> {
    query?.split('&').find_map(|pair| pair.strip_prefix("token="))
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What an authentic delivery announces.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Ping,
    /// A git push: the full ref, the repository's URLs, its default branch.
    Push {
        git_ref: String,
        urls: Vec<String>,
        default_branch: Option<String>,
    },
    /// An image pushed to a registry: the repository (`org/app` or
    /// `host/org/app`).
    Image {
        repositories: Vec<String>,
    },
    /// A generic hook: no details.
    Any,
}

/// The event of an authentic delivery; `None` for events that announce no
/// push (an issue comment, a deleted tag…).
pub fn read_event(kind: ReceiverKind, headers: &HeaderMap, body: &[u8]) -> Result<Option<Event>, String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("");
    let json = || -> Result<Value, String> {
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
    };
    let strings = |v: &Value, pointers: &[&str]| -> Vec<String> {
        pointers
            .iter()
            .filter_map(|p| v.pointer(p).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    match kind {
        ReceiverKind::Github => match header("x-github-event") {
            "ping" => Ok(Some(Event::Ping)),
            "push" => {
                let v = json()?;
                if v.get("deleted").and_then(Value::as_bool) == Some(true) {
                    return Ok(None);
                }
                Ok(Some(Event::Push {
                    git_ref: strings(&v, &["/ref"]).pop().unwrap_or_default(),
                    urls: strings(
                        &v,
                        &[
                            "/repository/clone_url",
                            "/repository/ssh_url",
                            "/repository/git_url",
                            "/repository/html_url",
                        ],
                    ),
                    default_branch: strings(&v, &["/repository/default_branch"]).pop(),
                }))
            }
            _ => Ok(None),
        },
        ReceiverKind::Gitlab => match header("x-gitlab-event") {
            "Push Hook" | "Tag Push Hook" => {
                let v = json()?;
                Ok(Some(Event::Push {
                    git_ref: strings(&v, &["/ref"]).pop().unwrap_or_default(),
                    urls: strings(
                        &v,
                        &[
                            "/project/git_http_url",
                            "/project/git_ssh_url",
                            "/project/web_url",
                            "/repository/git_http_url",
                            "/repository/git_ssh_url",
                        ],
                    ),
                    default_branch: strings(&v, &["/project/default_branch"]).pop(),
                }))
            }
            _ => Ok(None),
        },
        ReceiverKind::GenericHmac => Ok(Some(Event::Any)),
        ReceiverKind::Dockerhub => {
            let v = json()?;
            Ok(Some(Event::Image {
                repositories: strings(&v, &["/repository/repo_name"]),
            }))
        }
        ReceiverKind::Harbor => {
            let v = json()?;
            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
            if !matches!(kind, "PUSH_ARTIFACT" | "pushImage") {
                return Ok(None);
            }
            let mut repositories = strings(&v, &["/event_data/repository/repo_full_name"]);
            if let Some(resources) = v.pointer("/event_data/resources").and_then(Value::as_array) {
                for r in resources {
                    if let Some(url) = r.get("resource_url").and_then(Value::as_str) {
                        // host/project/app:tag or …@sha256:…
                        let repo = url.split('@').next().unwrap_or(url);
                        let repo = match repo.rsplit_once(':') {
                            Some((r, tag)) if !tag.contains('/') => r,
                            _ => repo,
                        };
                        repositories.push(repo.to_string());
                    }
                }
            }
            Ok(Some(Event::Image { repositories }))
        }
        ReceiverKind::Quay => {
            let v = json()?;
            Ok(Some(Event::Image {
                repositories: strings(&v, &["/docker_url", "/repository"]),
            })
            .filter(|e| !matches!(e, Event::Image { repositories } if repositories.is_empty())))
        }
    }
}

/// The id that makes a replay recognisable, if the delivery has one.
fn delivery_id(kind: ReceiverKind, headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| v.chars().take(128).collect::<String>())
    };
    match kind {
        ReceiverKind::Github => header("x-github-delivery"),
        ReceiverKind::Gitlab => header("x-gitlab-event-uuid").or_else(|| header("idempotency-key")),
        ReceiverKind::GenericHmac => header("x-delivery-id"),
        // Registries send no id; their bodies carry the push's time.
        ReceiverKind::Dockerhub | ReceiverKind::Harbor | ReceiverKind::Quay => {
            let digest = Sha256::digest(body);
            Some(format!(
                "sha256:{}",
                digest.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ))
        }
    }
}

/// `Ok` when `event` concerns the object `key`; else why not.
pub fn concerns(cfg: &config::Config, key: &Key, event: &Event) -> Result<(), String> {
    match (key.kind, event) {
        (
            Kind::Source,
            Event::Push {
                git_ref,
                urls,
                default_branch,
            },
        ) => {
            let Some(src) = cfg.source(&key.name) else {
                return Ok(());
            };
            let SourceKind::Git { url, reference } = &src.kind else {
                return Ok(());
            };
            if let Some(ours) = crate::notify::web_repo(url)
                && !urls.is_empty()
                && !urls
                    .iter()
                    .any(|u| crate::notify::web_repo(u).is_some_and(|t| same_repo(&t, &ours)))
            {
                return Err("a push to another repository".into());
            }
            let followed = match reference {
                GitRef::Branch(b) => format!("refs/heads/{b}") == *git_ref,
                GitRef::DefaultBranch => match default_branch {
                    Some(d) => format!("refs/heads/{d}") == *git_ref,
                    None => git_ref.starts_with("refs/heads/"),
                },
                GitRef::Tag(t) => format!("refs/tags/{t}") == *git_ref,
                GitRef::Semver(_) => git_ref.starts_with("refs/tags/"),
                GitRef::Commit(_) => false,
            };
            if followed {
                Ok(())
            } else {
                Err(format!("a push to {git_ref}, which the source does not follow"))
            }
        }
        (Kind::Image | Kind::Source, Event::Image { repositories }) => {
            // An `oci://` Helm repository holds each chart in the
            // repository below it: a push names `URL/CHART`, one of the
            // charts its apps install.
            let ours: Vec<String> = match key.kind {
                Kind::Image => cfg
                    .image(&key.name)
                    .map(|i| i.repository.clone())
                    .into_iter()
                    .collect(),
                _ => match cfg.source(&key.name).map(|s| &s.kind) {
                    Some(SourceKind::Oci { url, .. }) => vec![url.clone()],
                    Some(SourceKind::Helm { url, .. }) => match url.strip_prefix("oci://") {
                        Some(base) => cfg
                            .apps
                            .iter()
                            .filter(|a| a.source.value == key.name)
                            .filter_map(|a| a.helm.chart.as_ref())
                            .map(|c| format!("{}/{}", base.trim_end_matches('/'), c.name.value))
                            .collect(),
                        None => return Ok(()),
                    },
                    Some(SourceKind::Git { .. }) | None => return Ok(()),
                },
            };
            if ours.is_empty() {
                return match key.kind {
                    Kind::Image => Ok(()),
                    _ => Err("no app installs a chart from this repository".into()),
                };
            }
            if repositories.is_empty()
                || repositories
                    .iter()
                    .any(|r| ours.iter().any(|o| same_image_repo(r, o)))
            {
                Ok(())
            } else {
                Err(format!(
                    "a push to {}, not {}",
                    repositories.join(", "),
                    ours.join(", ")
                ))
            }
        }
        _ => Ok(()),
    }
}

fn same_repo(a: &(String, String), b: &(String, String)) -> bool {
    a.0.eq_ignore_ascii_case(&b.0) && a.1.eq_ignore_ascii_case(&b.1)
}

/// Whether a registry's `repo` names the image repository `ours`: the
/// same path (Docker Hub's `library/` implied), and the same host when
/// both name one.
fn same_image_repo(theirs: &str, ours: &str) -> bool {
    fn split(r: &str) -> (Option<String>, String) {
        let r = r.trim_start_matches("oci://").trim_end_matches('/');
        let r = r.split_once("://").map_or(r, |(_, rest)| rest);
        match r.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                let host = match first {
                    "docker.io" | "index.docker.io" | "registry-1.docker.io" => None,
                    h => Some(h.to_ascii_lowercase()),
                };
                (host, rest.to_string())
            }
            _ => (None, r.to_string()),
        }
    }
    let path = |p: String| p.strip_prefix("library/").map(str::to_string).unwrap_or(p);
    let (h1, p1) = split(theirs);
    let (h2, p2) = split(ours);
    let hosts_agree = match (&h1, &h2) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    hosts_agree && path(p1) == path(p2)
}

/// The signature GitHub would send for `body` (tests and docs).
pub fn github_signature(secret: &str, body: &Bytes) -> String {
    let mut mac = match <Hmac<Sha256>>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let sig = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        sig.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn github_signatures_are_checked() {
        let body = Bytes::from_static(b"{\"ref\":\"refs/heads/main\"}");
        let good = github_signature("s3cret", &body);
        let ok = verify(
            ReceiverKind::Github,
            "s3cret",
            &headers(&[("x-hub-signature-256", &good)]),
            None,
            &body,
        );
        assert_eq!(ok, Ok(()));
        let bad = github_signature("other", &body);
        for (h, want) in [
            (headers(&[("x-hub-signature-256", &bad)]), Refused::Signature),
            (headers(&[]), Refused::Missing("x-hub-signature-256")),
            (
                headers(&[("x-hub-signature-256", "sha1=abcd")]),
                Refused::Malformed("x-hub-signature-256"),
            ),
            (
                headers(&[("x-hub-signature-256", "sha256=zz")]),
                Refused::Malformed("x-hub-signature-256"),
            ),
        ] {
            assert_eq!(verify(ReceiverKind::Github, "s3cret", &h, None, &body), Err(want));
        }
        // The message names neither the secret nor the proof.
        let e = verify(
            ReceiverKind::Github,
            "s3cret",
            &headers(&[("x-hub-signature-256", &bad)]),
            None,
            &body,
        )
        .unwrap_err()
        .to_string();
        assert!(!e.contains("s3cret") && !e.contains(&bad[7..]), "{e}");
    }

    #[test]
    fn tokens_are_checked_where_each_registry_puts_them() {
        let b = b"{}";
        let v = |kind, h: &HeaderMap, q| verify(kind, "tok", h, q, b);
        assert_eq!(
            v(ReceiverKind::Gitlab, &headers(&[("x-gitlab-token", "tok")]), None),
            Ok(())
        );
        assert_eq!(
            v(ReceiverKind::Gitlab, &headers(&[("x-gitlab-token", "to")]), None),
            Err(Refused::Token)
        );
        assert_eq!(
            v(ReceiverKind::Harbor, &headers(&[("authorization", "tok")]), None),
            Ok(())
        );
        assert_eq!(
            v(ReceiverKind::Dockerhub, &headers(&[]), Some("a=1&token=tok")),
            Ok(())
        );
        assert_eq!(
            v(ReceiverKind::Quay, &headers(&[]), Some("token=nope")),
            Err(Refused::Token)
        );
        assert_eq!(
            v(ReceiverKind::Quay, &headers(&[]), None),
            Err(Refused::Missing("`?token=`"))
        );
    }

    #[test]
    fn the_bucket_empties_and_refills() {
        let mut r = PerReceiver::new();
        let t0 = Instant::now();
        for _ in 0..BURST as usize {
            assert!(r.take(t0).is_ok());
        }
        let wait = r.take(t0).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(r.take(t0 + Duration::from_secs(2)).is_ok());
    }

    #[test]
    fn replays_are_recognised() {
        let mut r = PerReceiver::new();
        let t0 = Instant::now();
        assert!(r.first_time("a", t0));
        assert!(!r.first_time("a", t0));
        assert!(r.first_time("b", t0));
        assert!(r.first_time("a", t0 + REMEMBER_FOR + Duration::from_secs(1)));
    }

    #[test]
    fn image_repositories_compare_without_docker_hub_defaults() {
        assert!(same_image_repo("library/nginx", "nginx"));
        assert!(same_image_repo("acme/app", "docker.io/acme/app"));
        assert!(same_image_repo("quay.io/acme/app", "quay.io/acme/app"));
        assert!(same_image_repo("acme/app", "ghcr.io/acme/app"));
        assert!(!same_image_repo("quay.io/acme/app", "ghcr.io/acme/app"));
        assert!(!same_image_repo("acme/other", "ghcr.io/acme/app"));
        assert!(same_image_repo("127.0.0.1:5000/app", "127.0.0.1:5000/app"));
    }

    #[test]
    fn harbor_resources_name_their_repository() {
        let body = br#"{"type":"PUSH_ARTIFACT","event_data":{"resources":[{"resource_url":"harbor.example.com/library/app:v1"}],"repository":{"repo_full_name":"library/app"}}}"#;
        let e = read_event(ReceiverKind::Harbor, &HeaderMap::new(), body).unwrap();
        assert_eq!(
            e,
            Some(Event::Image {
                repositories: vec!["library/app".into(), "harbor.example.com/library/app".into()]
            })
        );
    }

    #[test]
    fn a_push_to_an_oci_chart_wakes_the_helm_source_of_that_chart() {
        let text = r#"
source "charts" { helm "oci://ghcr.io/acme/charts"; }
app "web" { source "charts"; chart "web"; target dir="out"; }
source "empty" { helm "oci://ghcr.io/acme/charts"; }
"#;
        let cfg = config::from_str(std::path::Path::new("m.kdl"), text.into(), jiff::Timestamp::now())
            .expect("valid")
            .config;
        let push = |repo: &str| Event::Image {
            repositories: vec![repo.into()],
        };
        let charts = Key::new(Kind::Source, "charts");
        assert!(concerns(&cfg, &charts, &push("ghcr.io/acme/charts/web")).is_ok());
        assert!(concerns(&cfg, &charts, &push("ghcr.io/acme/charts/api")).is_err());
        assert!(concerns(&cfg, &charts, &push("ghcr.io/acme/charts")).is_err());
        let empty = Key::new(Kind::Source, "empty");
        assert!(concerns(&cfg, &empty, &push("ghcr.io/acme/charts/web")).is_err());
    }
}
