//! The HTTP server on `agent.listen`: takes the running [`Agent`], serves
//! `/healthz`, `/readyz`, `/metrics` (Prometheus text), `/api/status`
//! (JSON), `POST /api/reconcile/{kind}/{name}` and the webhook receivers'
//! `POST /hooks/{name}` ([`hooks`]). Reading is open; POST to `/api/`
//! needs `Authorization: Bearer <token>` whenever the listener is not on
//! loopback or an `api-token-file` is configured; hooks carry their own
//! signature or token instead. The page and the API also follow browser
//! rules ([`same_origin`]): no change from another web origin, and on
//! loopback no request naming another host (DNS rebinding). Connections
//! are bounded in number and in time: see [`listener`].

pub mod hooks;
mod listener;
pub mod page;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::agent::{Agent, RefuseReason};
use crate::config::Kind;
use crate::config::diff::Key;

#[derive(Clone)]
struct App {
    agent: Agent,
    /// Set once the first config runs; `/readyz` answers 503 before.
    ready: Arc<AtomicBool>,
    loopback: bool,
    hooks: Arc<hooks::Hooks>,
}

/// Serve until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    agent: Agent,
    ready: Arc<AtomicBool>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let loopback = listener.local_addr()?.ip().is_loopback();
    let app = App {
        agent,
        ready,
        loopback,
        hooks: Arc::new(hooks::Hooks::default()),
    };
    // What a browser reaches: the page and the API, behind the origin rules.
    let browser = Router::new()
        .route("/", get(page::index))
        .route("/page/{file}", get(page::file))
        .route(
            "/api/graph",
            get(|State(app): State<App>| async move { page::graph(&app.agent) }),
        )
        .route("/api/status", get(status))
        .route("/api/reconcile/{kind}/{name}", post(reconcile))
        .layer(axum::middleware::from_fn_with_state(app.clone(), same_origin));
    let router = Router::new()
        .merge(browser)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/hooks/{name}", post(hook))
        .with_state(app);
    let cap = listener::connection_cap(listener::raise_open_file_limit());
    listener::serve(listener, router, cap, shutdown).await;
    Ok(())
}

/// Ready once the config runs; with leader election the body says which
/// role this replica has (a standby is ready: it takes over when needed).
async fn readyz(State(app): State<App>) -> Response {
    if !app.ready.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting\n").into_response();
    }
    match app.agent.election() {
        Some(e) => (StatusCode::OK, format!("ready: {}\n", e.role.as_str())).into_response(),
        None => (StatusCode::OK, "ready\n").into_response(),
    }
}

async fn hook(
    State(app): State<App>,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    peer: Option<axum::Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let peer = peer.map(|axum::Extension(ConnectInfo(p))| p);
    hooks::handle(
        &app.agent,
        &app.hooks,
        &name,
        query.as_deref(),
        peer,
        &headers,
        body,
    )
    .await
}

async fn metrics(State(app): State<App>) -> Response {
    let report = app.agent.report();
    let body = app.agent.metrics().render(&report);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn status(State(app): State<App>) -> Response {
    axum::Json(app.agent.report()).into_response()
}

async fn reconcile(
    State(app): State<App>,
    Path((kind, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = refuse(&app, &headers) {
        return refused;
    }
    let Some(kind) = Kind::parse(&kind) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("unknown kind \"{kind}\": use source, app, image or automation"),
        );
    };
    let key = Key::new(kind, name);
    match app.agent.run_now(&key) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "accepted": key.to_string() })),
        )
            .into_response(),
        Err(e @ RefuseReason::NotFound(_)) => error(StatusCode::NOT_FOUND, e.to_string()),
        Err(e @ RefuseReason::Suspended(_)) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

fn error(code: StatusCode, message: String) -> Response {
    (code, axum::Json(json!({ "error": message }))).into_response()
}

/// The browser rules for the page and the API. A request another web page
/// makes (its `Origin` names another host than its `Host`) may only read;
/// on a loopback listener, a request naming a host that is not this
/// machine (`Host: evil.example` resolving to 127.0.0.1: DNS rebinding) is
/// refused outright.
async fn same_origin(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if app.loopback
        && let Some(host) = host
        && !names_this_machine(host)
    {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "this agent listens on loopback and answers only requests to a loopback address or localhost, not to {host:?}"
            ),
        );
    }
    if request.method() != axum::http::Method::GET
        && let Some(origin) = headers.get(header::ORIGIN)
        && !origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .is_some_and(|(_, authority)| host.is_some_and(|h| h.eq_ignore_ascii_case(authority)))
    {
        return error(
            StatusCode::FORBIDDEN,
            "a request from another web origin may not change anything here".into(),
        );
    }
    next.run(request).await
}

/// `host` (a `Host` header: name or address, maybe a port) is this machine.
fn names_this_machine(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The bearer-token rule for POST endpoints: the answer to send instead,
/// if the request may not go on.
fn refuse(app: &App, headers: &HeaderMap) -> Option<Response> {
    let token_file = app.agent.config().agent.api_token_file.clone();
    let Some(file) = token_file else {
        if app.loopback {
            return None;
        }
        return Some(error(
            StatusCode::FORBIDDEN,
            "this listener is not on loopback: set `agent { api-token-file … }` to allow POST requests"
                .into(),
        ));
    };
    let expected = match std::fs::read_to_string(&file) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        _ => {
            tracing::error!(file = %file.display(), "cannot read the API token file (or it is empty)");
            return Some(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the agent cannot read its API token file; see its log".into(),
            ));
        }
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => None,
        Some(_) => Some(error(StatusCode::UNAUTHORIZED, "wrong bearer token".into())),
        None => Some(
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(json!({ "error": "this endpoint needs `Authorization: Bearer <token>`" })),
            )
                .into_response(),
        ),
    }
}

/// Compare without leaking, through timing, how many leading bytes match.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::{constant_time_eq, names_this_machine};

    #[test]
    fn only_loopback_addresses_and_localhost_name_this_machine() {
        for yes in [
            "127.0.0.1:8080",
            "127.0.0.1",
            "localhost:9",
            "LOCALHOST",
            "[::1]:8080",
            "127.3.4.5:1",
        ] {
            assert!(names_this_machine(yes), "{yes}");
        }
        for no in [
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:80",
            "[fe80::1]:80",
            "localhost.evil.example",
            "",
        ] {
            assert!(!names_this_machine(no), "{no}");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
