//! A loopback Kubernetes API server for tests: enough of the REST API that
//! the real `kubectl` and mooring's `kube` client believe it. It runs on its
//! own thread with its own tokio runtime, on `127.0.0.1:<free port>`, and
//! stops when the [`ApiServer`] is dropped. Test support only.
//!
//! What it serves:
//! - discovery: `/version` (v1.32.0), `/api`, `/apis`, `/apis/{g}`,
//!   `/api/v1`, `/apis/{g}/{v}` as plain JSON (no aggregated discovery);
//!   OpenAPI v3 root and per group/version documents with a `patch`
//!   operation per resource (group-version-kind and a `fieldValidation`
//!   parameter, which is what kubectl checks); `/openapi/v2` is 404;
//! - built-in types: core `namespaces`, `configmaps`, `secrets`,
//!   `services`, `serviceaccounts`, `pods`; `apps` `deployments`,
//!   `statefulsets`, `daemonsets`; `batch` `jobs`; rbac `roles`,
//!   `rolebindings`, `clusterroles`, `clusterrolebindings`;
//!   `apiextensions.k8s.io` `customresourcedefinitions`;
//!   `networking.k8s.io` `ingresses`; `coordination.k8s.io` `leases`
//!   (leader election: a PUT naming an old resourceVersion gets the real
//!   409); plus the types of stored CRDs
//!   (established at once or after `crd_delay`, in discovery and OpenAPI
//!   from then on; deleting the CRD deletes its objects);
//! - GET, LIST (one namespace or all; `labelSelector`, `fieldSelector` on
//!   `metadata.name`/`metadata.namespace`; a selector with `key=value`
//!   reads only the objects with that label, from an index, and the
//!   controllers' tick only the objects not yet settled, so that a fleet
//!   of thousands of apps measures the agent, not this server), POST, PUT, DELETE (also of a
//!   collection), PATCH as server-side apply, JSON merge patch, strategic
//!   merge patch and JSON patch, `dryRun=All` on every write; errors as
//!   `Status` objects with the real server's reasons and messages;
//! - server-side apply with field managers (see `fields`): ownership per
//!   manager, conflicts (409, the real message), `force=true`, removal of
//!   fields a manager stopped applying, no-op applies that change nothing
//!   (same resourceVersion, same managedFields times), Update entries for
//!   other writes that take the fields they change (manager: the
//!   `fieldManager` query, else the user agent up to its first `/`);
//! - a global resourceVersion counter bumped only by real changes;
//!   `metadata.generation` for the types that have one, bumped by changes
//!   outside `metadata` and `status`;
//! - simulated workload status (see `status`): Deployments, StatefulSets,
//!   DaemonSets and Jobs become ready [`Options::rollout_delay`] after each
//!   change of generation (computed lazily: any request or accessor sees it),
//!   never with `None` or the annotation `test.mooring.dev/never-ready:
//!   "true"`, at once after [`ApiServer::set_ready`];
//! - names of new objects checked by kind as the real validation does
//!   (`rules`): DNS-1123 subdomains for most kinds and custom resources,
//!   DNS-1123 labels for namespaces, DNS-1035 labels for Services, path
//!   segments (anything but `.`, `..`, `/`, `%`) for RBAC kinds; path
//!   segments are percent-decoded after the path is split, as the real
//!   server does, so `%2F` in a name is part of the name;
//! - every error a `Status` with the real reason, message and `details`:
//!   `Invalid` (422) lists its field errors in `details.causes`
//!   (`FieldValueInvalid`…), apply conflicts (409) carry only
//!   `details.causes` (`FieldManagerConflict`, one per field), as
//!   `apierrors.NewInvalid` and `NewApplyConflict` make them;
//! - watches (`GET` a collection with `watch=1`): from `resourceVersion`
//!   (events after it), or with none or `0` the objects there now as ADDED
//!   events first; label and field selectors; `allowWatchBookmarks=true`
//!   gets a BOOKMARK every [`Options::bookmark_interval`] (and after the
//!   initial events with `sendInitialEvents=true`); `timeoutSeconds`; a
//!   resourceVersion older than the history ([`ApiServer::compact`]
//!   forgets it, as an etcd compaction) gets one ERROR event with a 410
//!   `Expired` Status, and the stream ends;
//! - finalizers: an object with `metadata.finalizers` is only marked
//!   (`deletionTimestamp`) by a delete, and goes when a client removes its
//!   last finalizer.
//!
//! Ways a real server disagrees, each behind an [`Options`] field that
//! tests turn on: immutable fields (`immutable_fields`), CRDs established
//! after a delay (`crd_delay`), asynchronous deletes with namespaces that
//! stay `Terminating` (`delete_delay`), a namespace-scoped identity that
//! gets RBAC's 403 for anything cluster-wide (`identity`); and
//! [`ApiServer::fail_writes_after`], a server that fails every write (500)
//! after N of them; [`ApiServer::inject`], requests that get a given
//! status (409, 500, 429…), answer late (a timeout for the client) or have
//! their connection closed under them; and [`ApiServer::serve_tls`], the
//! same server over TLS with a CA of the test's own (the kubeconfig then
//! carries `certificate-authority-data`).
//!
//! Simplifications against a real API server:
//! - no schemas: no validation of fields (`fieldValidation` is accepted
//!   and ignored), no defaulting (no `imagePullPolicy`, no `strategy`…;
//!   only `Namespace.status.phase` and `spec.finalizers`, a Secret's
//!   `stringData` folded into `data`, CRD status, and with
//!   `immutable_fields` a Service's cluster IP), no pruning of unknown
//!   fields, no conversion between CRD versions (the stored object is
//!   served under the asked version as is);
//! - field ownership treats lists as atomic leaves, except the lists merged
//!   by key in real Kubernetes that matter most: `containers`,
//!   `initContainers`, `ephemeralContainers`, `env`, `volumes` (by name),
//!   `volumeMounts` (by mountPath), `ports` (by containerPort or port, with
//!   protocol defaulting to TCP). Set-lists (`finalizers`) are atomic;
//! - a strategic merge patch is a JSON merge patch that also merges those
//!   keyed lists by key; `$patch` and other directives are dropped;
//! - `status` is owned by the server: it is ignored in every write body
//!   (also for custom resources without a status subresource); the
//!   subresources are a read-only `…/status` and `…/scale` of Deployments
//!   and StatefulSets (GET, PATCH, PUT; what `kubectl scale` uses, filed as
//!   an Update with `subresource: scale`);
//! - request bodies are JSON (YAML for apply); protobuf only as far as
//!   `kubectl create namespace|configmap|secret|serviceaccount` need (see
//!   `proto`); other protobuf bodies get 415 (so `kubectl create
//!   deployment` fails: use `kubectl apply` or `kubectl create -f`);
//! - managedFields sent by clients are ignored (the server's are kept);
//! - without `delete_delay`, deletes of objects without finalizers finish
//!   at once whatever the propagation policy (no garbage collector:
//!   deleting a namespace or CRD deletes what is in it at once) and answer
//!   a Success Status; a delete that waits answers the object;
//! - no Table output (kubectl copes with the plain List), no pagination
//!   (`limit` ignored), no authentication, no admission but the namespace
//!   lifecycle, no ReplicaSets or Pods made by workloads; immutable fields
//!   are the few listed above (values in messages are JSON, where Go
//!   prints some with `%#v`);
//! - StatefulSets get no conditions (as in real Kubernetes); Job status is
//!   `succeeded: 1` with `SuccessCriteriaMet` and `Complete`;
//!   zero counts are left out of workload status, as `omitempty` does.

mod discovery;
mod fields;
mod proto;
mod rules;
mod selector;
mod status;
mod store;
mod types;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::Value;

use crate::server::{self, Background, Incoming, lock};
use store::{Request, Store};

/// How the server behaves. The default is a friendly server; each option
/// turns on one way a real one disagrees.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long after each change of generation a workload becomes ready;
    /// `None`: never (until [`ApiServer::set_ready`]).
    pub rollout_delay: Option<Duration>,
    /// Refuse changes to immutable fields with the real 422 (Deployment,
    /// StatefulSet, DaemonSet and Job selectors, a Job's template, a
    /// Service's cluster IP, the data of an `immutable` ConfigMap or
    /// Secret), and give new Services a cluster IP.
    pub immutable_fields: bool,
    /// How long a new CRD takes to become established; its kind is not
    /// served (discovery, OpenAPI, requests: 404) until then.
    pub crd_delay: Duration,
    /// `None`: deletes finish at once (finalizers other than the system's
    /// still hold an object until a client removes them). `Some(d)`:
    /// deleting a namespace, a CRD or with `propagationPolicy:
    /// Foreground` marks the object (`deletionTimestamp`, a namespace
    /// `Terminating`, creating in it refused with 403 as a real server
    /// does) and finishes `d` later, after what the namespace or CRD holds.
    pub delete_delay: Option<Duration>,
    /// Who HTTP clients are: `None` a cluster admin; else an identity
    /// allowed everything in some namespaces and nothing cluster-wide.
    pub identity: Option<Identity>,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            rollout_delay: Some(Duration::ZERO),
            immutable_fields: false,
            crd_delay: Duration::ZERO,
            delete_delay: None,
            identity: None,
            bookmark_interval: Duration::from_millis(200),
        }
    }
}

/// A namespace-scoped identity (a service account with Roles in
/// `namespaces`).
#[derive(Clone, Debug)]
pub struct Identity {
    /// As the 403 messages name it: `system:serviceaccount:NS:NAME`.
    pub user: String,
    pub namespaces: Vec<String>,
}

struct Shared {
    store: Mutex<Store>,
    requests: Mutex<Vec<String>>,
    bookmark_interval: Duration,
    faults: Mutex<Vec<Fault>>,
}

/// A fault for the requests that match `method` (any if `None`) and whose
/// path contains `path`, for the next `times` of them (all if `None`).
#[derive(Clone, Debug)]
pub struct Fault {
    pub method: Option<&'static str>,
    pub path: String,
    pub times: Option<usize>,
    pub kind: FaultKind,
}

#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer with this status code (a `Status` with the real reason).
    Status(u16),
    /// Wait this long, then answer as usual.
    Delay(Duration),
    /// Send the response head, then close the connection mid-body.
    Close,
}

/// A running server; stopped on drop.
pub struct ApiServer {
    shared: Arc<Shared>,
    /// With [`ApiServer::serve_tls`]: the TLS front and its CA (PEM).
    /// Declared first: dropped before the server behind it.
    tls: Option<(crate::tls::TlsFront, String)>,
    server: Background,
}

impl ApiServer {
    pub fn start() -> ApiServer {
        ApiServer::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> ApiServer {
        let (server, shared) = server::http(
            "apiserver",
            |port| {
                Arc::new(Shared {
                    store: Mutex::new(Store::new(opts.clone(), format!("127.0.0.1:{port}"))),
                    requests: Mutex::new(Vec::new()),
                    bookmark_interval: opts.bookmark_interval,
                    faults: Mutex::new(Vec::new()),
                })
            },
            serve,
        );
        ApiServer {
            shared,
            tls: None,
            server,
        }
    }

    pub fn port(&self) -> u16 {
        self.server.port
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` (the TLS
    /// front's) after [`serve_tls`](Self::serve_tls).
    pub fn url(&self) -> String {
        match &self.tls {
            Some((front, _)) => format!("https://127.0.0.1:{}", front.port),
            None => format!("http://127.0.0.1:{}", self.server.port),
        }
    }

    /// Serve over TLS too, with `certs`: [`url`](Self::url) and
    /// [`kubeconfig`](Self::kubeconfig) name the TLS port from now on.
    pub fn serve_tls(&mut self, certs: &crate::tls::Certs) {
        self.tls = Some((
            crate::tls::TlsFront::start(certs, self.server.port),
            certs.ca_pem(),
        ));
    }

    /// Write a kubeconfig: cluster at [`url`](Self::url) (with the CA as
    /// `certificate-authority-data` when serving TLS), a user with no
    /// auth, context `test` (namespace `default`) as current context.
    pub fn kubeconfig(&self, path: &Path) {
        self.kubeconfig_at(path, &self.url(), true);
    }

    /// A kubeconfig for the server at `server` (a proxy in front of this
    /// one), with the CA of [`serve_tls`](Self::serve_tls) if `with_ca`.
    pub fn kubeconfig_at(&self, path: &Path, server: &str, with_ca: bool) {
        let ca = match (&self.tls, with_ca) {
            (Some((_, pem)), true) => format!(
                "    certificate-authority-data: {}\n",
                crate::support::base64(pem.as_bytes())
            ),
            _ => String::new(),
        };
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n{ca}\
             users:\n- name: test\n  user: {{}}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    \
             user: test\n    namespace: default\ncurrent-context: test\npreferences: {{}}\n"
        );
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create kubeconfig dir");
        }
        std::fs::write(path, text).expect("write kubeconfig");
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        let mut store = lock(&self.shared.store);
        store.tick(Instant::now());
        store
    }

    /// The stored object (with `metadata.managedFields`), as `api_version`.
    pub fn object(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.store().object(api_version, kind, ns, name)
    }

    /// Everything stored, sorted by group, resource, namespace and name.
    pub fn objects(&self) -> Vec<Value> {
        self.store().objects()
    }

    /// `METHOD /path?query` of every HTTP request so far.
    pub fn requests(&self) -> Vec<String> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// After `n` more writes from HTTP clients succeed, every write fails
    /// (500, as when etcd times out) until `fail_writes_after(None)`.
    pub fn fail_writes_after(&self, n: Option<usize>) {
        lock(&self.shared.store).fail_writes_after(n);
    }

    /// Add a fault for requests from HTTP clients (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Remove every fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Forget the change history, as an etcd compaction does: a watch from
    /// a resourceVersion before now gets 410 Expired.
    pub fn compact(&self) {
        lock(&self.shared.store).compact();
    }

    /// Make a held-back workload ready now (until its next change of
    /// generation). Panics if there is no such object.
    pub fn set_ready(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) {
        let found = self.store().set_ready(api_version, kind, namespace, name);
        assert!(found, "set_ready: no {kind} {namespace:?}/{name}");
    }

    /// Send a request straight to the store (no HTTP, not recorded):
    /// `Ok(body)` for a 2xx answer, `Err(status)` otherwise.
    pub fn call(
        &self,
        method: &str,
        path_and_query: &str,
        content_type: &str,
        body: &[u8],
    ) -> Result<Value, Value> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let req = Request {
            method,
            path,
            query,
            content_type,
            user_agent: "apiserver-test",
            body,
            admin: true,
        };
        let resp = lock(&self.shared.store).handle(&req, Instant::now());
        if (200..300).contains(&resp.code) {
            Ok(resp.body)
        } else {
            Err(resp.body)
        }
    }

    fn object_path(&self, obj: &Value, with_name: bool) -> String {
        let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let ns = Some(s("/metadata/namespace")).filter(|n| !n.is_empty());
        let name = with_name.then(|| s("/metadata/name"));
        self.store()
            .path_for(s("/apiVersion"), s("/kind"), ns, name)
            .unwrap_or_else(|| panic!("no resource type for {} {}", s("/apiVersion"), s("/kind")))
    }

    /// Server-side apply `obj` (its apiVersion, kind, metadata.name and,
    /// for namespaced kinds, metadata.namespace say where) as `manager`.
    pub fn apply(&self, manager: &str, force: bool, obj: &Value) -> Result<Value, Value> {
        let path = self.object_path(obj, true);
        let body = serde_json::to_vec(obj).expect("serialize object");
        self.call(
            "PATCH",
            &format!("{path}?fieldManager={manager}&force={force}"),
            "application/apply-patch+yaml",
            &body,
        )
    }

    /// A JSON merge patch of the object `obj` names (apiVersion, kind,
    /// metadata) by `manager`: drift, as `kubectl patch --type=merge` or
    /// `kubectl edit` makes it.
    pub fn merge_patch(&self, manager: &str, obj: &Value, patch: &Value) -> Result<Value, Value> {
        let path = self.object_path(obj, true);
        let body = serde_json::to_vec(patch).expect("serialize patch");
        self.call(
            "PATCH",
            &format!("{path}?fieldManager={manager}"),
            "application/merge-patch+json",
            &body,
        )
    }

    /// Delete the object `obj` names.
    pub fn delete(&self, obj: &Value) -> Result<Value, Value> {
        let path = self.object_path(obj, true);
        self.call("DELETE", &path, "application/json", b"")
    }
}

async fn serve(shared: Arc<Shared>, req: Incoming) -> axum::response::Response {
    let Incoming {
        method,
        uri,
        headers: _,
        body: _,
    } = &req;
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    let line = if query.is_empty() {
        format!("{method} {path}")
    } else {
        format!("{method} {path}?{query}")
    };
    lock(&shared.requests).push(line);
    let fault = {
        let mut faults = lock(&shared.faults);
        let hit = faults.iter_mut().find(|f| {
            f.method.is_none_or(|m| m == method.as_str())
                && path.contains(f.path.as_str())
                && f.times != Some(0)
        });
        hit.map(|f| {
            if let Some(n) = &mut f.times {
                *n -= 1;
            }
            f.kind.clone()
        })
    };
    match fault {
        Some(FaultKind::Status(code)) => {
            let resp = store::status_failure(code);
            let code = StatusCode::from_u16(resp.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let bytes = serde_json::to_vec(&resp.body).unwrap_or_default();
            return (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
        }
        Some(FaultKind::Delay(d)) => tokio::time::sleep(d).await,
        Some(FaultKind::Close) => {
            let broken = futures_util::stream::iter([
                Ok(Bytes::from_static(b"{\"kind\":")),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "fault: closed",
                )),
            ]);
            return (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                axum::body::Body::from_stream(broken),
            )
                .into_response();
        }
        None => {}
    }
    let request = Request {
        method: method.as_str(),
        path,
        query,
        content_type: &req.header(header::CONTENT_TYPE),
        user_agent: &req.header(header::USER_AGENT),
        body: &req.body,
        admin: false,
    };
    let resp = lock(&shared.store).handle(&request, Instant::now());
    let code = StatusCode::from_u16(resp.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(watch) = resp.watch {
        let initial = match resp.body {
            Value::Array(events) => events,
            _ => Vec::new(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        tokio::spawn(stream_watch(shared.clone(), watch, initial, tx));
        let body = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<Bytes, std::convert::Infallible>(b), rx))
        });
        return (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            axum::body::Body::from_stream(body),
        )
            .into_response();
    }
    let bytes = serde_json::to_vec(&resp.body).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Send a watch's events, one JSON object per line, as they happen (the
/// store is polled every few milliseconds), with bookmarks if asked, until
/// the client goes away or `timeoutSeconds` passes.
async fn stream_watch(
    shared: Arc<Shared>,
    mut watch: store::Watch,
    initial: Vec<Value>,
    tx: tokio::sync::mpsc::Sender<Bytes>,
) {
    let line = |event: &Value| {
        let mut bytes = serde_json::to_vec(event).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    };
    for event in &initial {
        if tx.send(line(event)).await.is_err() {
            return;
        }
    }
    let mut bookmarked = Instant::now();
    while !watch.done && !tx.is_closed() {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let now = Instant::now();
        if watch.until.is_some_and(|t| now >= t) {
            return;
        }
        let events = {
            let mut store = lock(&shared.store);
            store.tick(now);
            store.events_after(&mut watch)
        };
        for event in &events {
            if tx.send(line(event)).await.is_err() {
                return;
            }
        }
        if watch.bookmarks && now >= bookmarked + shared.bookmark_interval {
            bookmarked = now;
            if tx.send(line(&watch.bookmark())).await.is_err() {
                return;
            }
        }
    }
}

/// The real `kubectl`, talking to `server` (`--server`), with its discovery
/// cache in `cache_dir`, an empty kubeconfig there (nothing from HOME) and a
/// clean environment (PATH only, HOME = `cache_dir`).
pub fn kubectl(server: &ApiServer, cache_dir: &Path) -> Command {
    std::fs::create_dir_all(cache_dir).expect("create kubectl cache dir");
    let kubeconfig = cache_dir.join("empty-kubeconfig");
    if !kubeconfig.exists() {
        std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\n").expect("write empty kubeconfig");
    }
    let mut cmd = Command::new("kubectl");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", cache_dir)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--server")
        .arg(server.url())
        .arg("--cache-dir")
        .arg(cache_dir.join("cache"));
    cmd
}
