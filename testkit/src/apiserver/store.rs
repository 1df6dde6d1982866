//! The store and the request dispatch: one `handle` from a plain request
//! (method, path, query, content type, body) to a status code and JSON
//! body. The HTTP layer in `mod.rs` is a thin shell around it, and the
//! direct helpers of `ApiServer` go through it too.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::Options;
use super::discovery;
use super::fields::{self, Entry};
use super::rules::{self, FieldError};
use super::selector::{FieldSelector, Selector};
use super::status;
use super::types::{self, ResourceType};
use crate::support::base64;

/// A request as the dispatch sees it.
pub struct Request<'a> {
    pub method: &'a str,
    /// Without the query.
    pub path: &'a str,
    pub query: &'a str,
    pub content_type: &'a str,
    pub user_agent: &'a str,
    pub body: &'a [u8],
    /// Whether the caller is a cluster admin (the test's own helpers),
    /// not the HTTP client with [`Options::identity`].
    pub admin: bool,
}

/// A response: code and JSON body, or the start of a watch.
#[derive(Debug)]
pub struct Response {
    pub code: u16,
    pub body: Value,
    /// For a watch: what to stream after the initial events in `body`
    /// (a JSON array of events).
    pub watch: Option<Watch>,
}

impl Response {
    fn ok(body: Value) -> Response {
        Response::with_code(200, body)
    }

    fn with_code(code: u16, body: Value) -> Response {
        Response {
            code,
            body,
            watch: None,
        }
    }
}

/// An open watch: which objects, from which resourceVersion on.
#[derive(Clone, Debug)]
pub struct Watch {
    group: String,
    plural: String,
    /// The API version events are shown as.
    api_version: String,
    kind: String,
    namespace: Option<String>,
    label_selector: String,
    field_selector: String,
    /// Events after this one are sent next.
    pub rv: u64,
    pub bookmarks: bool,
    pub until: Option<Instant>,
    /// The watch ends after its initial events (a too-old resourceVersion).
    pub done: bool,
}

/// One change, as watches see it.
#[derive(Clone, Debug)]
struct Event {
    rv: u64,
    kind: &'static str,
    key: Key,
    obj: Value,
}

/// A failure, answered as a `Status` object.
pub struct Failure {
    code: u16,
    reason: &'static str,
    message: String,
    details: Value,
}

type Result<T> = std::result::Result<T, Failure>;

impl Watch {
    /// A BOOKMARK event at the watch's resourceVersion.
    pub fn bookmark(&self) -> Value {
        json!({"type": "BOOKMARK", "object": {
            "kind": self.kind, "apiVersion": self.api_version,
            "metadata": {"resourceVersion": self.rv.to_string()},
        }})
    }
}

impl Failure {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            code,
            reason,
            message: message.into(),
            details: json!({}),
        }
    }

    fn method_not_allowed() -> Failure {
        Failure::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    }

    fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(400, "BadRequest", message)
    }

    fn not_found_path() -> Failure {
        Failure::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    fn not_found(rt: &ResourceType, name: &str) -> Failure {
        Failure::new(404, "NotFound", format!("{} {name:?} not found", rt.qualified()))
            .details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    fn namespace_not_found(ns: &str) -> Failure {
        Failure::new(404, "NotFound", format!("namespaces {ns:?} not found"))
            .details(json!({"name": ns, "kind": "namespaces"}))
    }

    /// 422 with the field errors as `details.causes`, as
    /// `apierrors.NewInvalid` makes it.
    fn invalid(rt: &ResourceType, name: &str, errors: &[FieldError]) -> Failure {
        let causes: Vec<Value> = errors.iter().map(FieldError::cause).collect();
        Failure::new(422, "Invalid", rules::invalid_message(rt, name, errors))
            .details(json!({"name": name, "group": rt.group, "kind": rt.kind, "causes": causes}))
    }

    /// [`Failure::invalid`] of one error written as `field: Body`.
    fn invalid_text(rt: &ResourceType, name: &str, text: &str) -> Failure {
        let (field, body) = text.split_once(": ").unwrap_or(("", text));
        let kind = match body.split(':').next().unwrap_or_default() {
            "Required value" => "FieldValueRequired",
            "Unsupported value" => "FieldValueNotSupported",
            "Forbidden" => "FieldValueForbidden",
            _ => "FieldValueInvalid",
        };
        let error = FieldError {
            kind,
            field: field.into(),
            body: body.into(),
        };
        Failure::invalid(rt, name, &[error])
    }

    /// 403, as `apierrors.NewForbidden` words it.
    fn forbidden(rt: &ResourceType, name: Option<&str>, why: &str) -> Failure {
        let what = rt.qualified();
        let message = match name {
            Some(n) => format!("{what} {n:?} is forbidden: {why}"),
            None => format!("{what} is forbidden: {why}"),
        };
        let mut details = json!({"group": rt.group, "kind": rt.plural});
        if let Some(n) = name {
            details["name"] = n.into();
        }
        Failure::new(403, "Forbidden", message).details(details)
    }

    fn details(mut self, details: Value) -> Failure {
        self.details = details;
        self
    }

    pub fn into_response(self) -> Response {
        Response {
            code: self.code,
            watch: None,
            body: json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": self.message,
                "reason": self.reason,
                "details": self.details,
                "code": self.code,
            }),
        }
    }
}

/// The `Status` a real server answers with `code` for no reason of the
/// request's own (an injected fault): 409 `Conflict`, 429
/// `TooManyRequests`, 500 `InternalError`, 503 `ServiceUnavailable`…
pub fn status_failure(code: u16) -> Response {
    let (reason, message) = match code {
        409 => (
            "Conflict",
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again",
        ),
        429 => (
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        ),
        500 => (
            "InternalError",
            "Internal error occurred: etcdserver: request timed out",
        ),
        503 => (
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
        504 => (
            "Timeout",
            "the server was unable to return a response in the time allotted",
        ),
        _ => (
            "Unknown",
            "an error on the server has prevented the request from succeeding",
        ),
    };
    Failure::new(code, reason, message).into_response()
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: String,
    plural: String,
    namespace: String,
    name: String,
}

#[derive(Clone)]
struct Stored {
    obj: Value,
    /// When the generation last changed (or the object was created).
    changed_at: Instant,
    /// `set_ready` was called since.
    forced_ready: bool,
    /// The ready status is shown.
    ready: bool,
    /// When a delete was asked that has not finished (finalizers, a
    /// terminating namespace).
    deleting_since: Option<Instant>,
}

/// How many events watches can start from (older ones answer 410).
const HISTORY: usize = 10_000;

/// Everything the server holds.
pub struct Store {
    objects: BTreeMap<Key, Stored>,
    /// The keys of the objects carrying each label (key, value), so that a
    /// list selecting on a label reads only those, as a real server's
    /// indexed cache would (an agent lists by its owner label).
    by_label: HashMap<(String, String), BTreeSet<Key>>,
    /// The objects a tick may have to change (a workload not ready yet, a
    /// CRD not established, a delete under way), or more: every object is
    /// added when it is written and dropped by the tick that finds it
    /// settled, so a tick reads these rather than every object.
    unsettled: BTreeSet<Key>,
    rv: u64,
    uids: u64,
    opts: Options,
    server_address: String,
    /// Recent changes, oldest first, for watches.
    events: VecDeque<Event>,
    /// Watches from a resourceVersion below this one are too old.
    compacted: u64,
    /// Writes that succeed before every write fails (503).
    writes_left: Option<usize>,
    /// Service cluster IPs handed out.
    cluster_ips: u32,
}

/// The wall clock as the API server writes times.
fn now_string() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Percent-decoding; in a query, `+` is a space.
fn decode(s: &str, query: bool) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if query => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The query parameters, decoded; the last of a repeated name wins.
pub fn parse_query(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k, true), decode(v, true)),
            None => (decode(p, true), String::new()),
        })
        .collect()
}

/// Where a request points inside a group/version.
#[derive(Clone)]
struct Target {
    rt: ResourceType,
    version: String,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// What a write takes from its request besides the target.
struct Call<'r> {
    req: &'r Request<'r>,
    query: BTreeMap<String, String>,
    dry_run: bool,
    now: Instant,
}

impl Call<'_> {
    /// The field manager of a non-apply write: the query's, else the
    /// client's user agent up to the first `/`, as the real server does.
    fn updater(&self) -> String {
        match self.query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.clone(),
            _ => match self.req.user_agent.split('/').next() {
                Some(ua) if !ua.is_empty() => ua.to_string(),
                _ => "unknown".into(),
            },
        }
    }

    /// Whether a delete asks for foreground propagation (DeleteOptions in
    /// the body, or the query).
    fn foreground(&self) -> bool {
        let body: Value = serde_json::from_slice(self.req.body).unwrap_or(Value::Null);
        let policy = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .or(self.query.get("propagationPolicy").map(String::as_str));
        policy == Some("Foreground")
    }
}

fn name_of(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The object without `metadata`, `status`, `apiVersion` and `kind`:
/// what a generation counts.
fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.as_object_mut() {
        for k in ["metadata", "status", "apiVersion", "kind"] {
            m.remove(k);
        }
    }
    v
}

/// The body of a create or update: JSON, or the protobuf kubectl's typed
/// clients send for a few kinds (see `proto`).
fn object_body(req: &Request) -> Result<Value> {
    match media_type(req).as_str() {
        "application/vnd.kubernetes.protobuf" => {
            super::proto::decode(req.body).map_err(|e| Failure::new(415, "UnsupportedMediaType", e))
        }
        "" | "application/json" | "*/*" => parse_body(req.body, false),
        "application/yaml" => parse_body(req.body, true),
        other => Err(unsupported_media_type(other)),
    }
}

/// The request's content type without its parameters, lowercased.
fn media_type(req: &Request) -> String {
    req.content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Parse a request body: JSON, or YAML for apply patches.
fn parse_body(body: &[u8], yaml: bool) -> Result<Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => Ok(v),
        Err(e) if !yaml => Err(Failure::bad_request(format!("error decoding request body: {e}"))),
        Err(_) => {
            let text = std::str::from_utf8(body)
                .map_err(|e| Failure::bad_request(format!("request body is not UTF-8: {e}")))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| Failure::bad_request(format!("error decoding YAML: {e}")))
        }
    }
}

impl Store {
    pub fn new(opts: Options, server_address: String) -> Store {
        let mut store = Store {
            objects: BTreeMap::new(),
            by_label: HashMap::new(),
            unsettled: BTreeSet::new(),
            rv: 0,
            uids: 0,
            opts,
            server_address,
            events: VecDeque::new(),
            compacted: 0,
            writes_left: None,
            cluster_ips: 0,
        };
        let now = Instant::now();
        for ns in ["default", "kube-system"] {
            let req = Request {
                method: "POST",
                path: "/api/v1/namespaces",
                query: "fieldManager=kube-apiserver",
                content_type: "application/json",
                user_agent: "",
                admin: true,
                body: &serde_json::to_vec(
                    &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                )
                .expect("namespace JSON"),
            };
            let resp = store.handle(&req, now);
            assert_eq!(resp.code, 201, "pre-create namespace {ns}: {}", resp.body);
        }
        store
    }

    /// The built-in types and those of the established CRDs.
    pub fn types(&self) -> Vec<ResourceType> {
        let mut out = types::builtins();
        let first = Key {
            group: "apiextensions.k8s.io".into(),
            plural: "customresourcedefinitions".into(),
            namespace: String::new(),
            name: String::new(),
        };
        let crds = self
            .objects
            .range(first..)
            .take_while(|(k, _)| is_crd(k))
            .filter(|(_, s)| status::established(&s.obj));
        for (_, s) in crds {
            if let Ok(t) = types::from_crd(&s.obj) {
                out.push(t);
            }
        }
        out
    }

    fn type_of(&self, group: &str, kind: &str) -> Option<ResourceType> {
        self.types()
            .into_iter()
            .find(|t| t.group == group && t.kind == kind)
    }

    fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        Key {
            group: rt.group.clone(),
            plural: rt.plural.clone(),
            namespace: if rt.namespaced {
                namespace.unwrap_or_default().to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// The stored object of `apiVersion`/`kind`, as that version.
    pub fn object(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        let (group, _) = split_api_version(api_version);
        let rt = self.type_of(group, kind)?;
        let mut obj = self.objects.get(&Self::key(&rt, ns, name))?.obj.clone();
        obj["apiVersion"] = api_version.into();
        Some(obj)
    }

    pub fn objects(&self) -> Vec<Value> {
        self.objects.values().map(|s| s.obj.clone()).collect()
    }

    /// Make a workload ready now; whether it exists.
    pub fn set_ready(&mut self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> bool {
        let (group, _) = split_api_version(api_version);
        let Some(rt) = self.type_of(group, kind) else {
            return false;
        };
        let Some(s) = self.objects.get_mut(&Self::key(&rt, namespace, name)) else {
            return false;
        };
        s.forced_ready = true;
        self.unsettled.insert(Self::key(&rt, namespace, name));
        self.tick(Instant::now());
        true
    }

    /// The path and the type of an object given its apiVersion and kind.
    pub fn path_for(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Option<String> {
        let (group, version) = split_api_version(api_version);
        let rt = self.type_of(group, kind)?;
        Some(rt.path(version, namespace, name))
    }

    /// What happens with time: workloads roll out, CRDs become
    /// established, pending deletes finish. Any request (and every watch,
    /// as it polls) sees it.
    pub fn tick(&mut self, now: Instant) {
        self.roll_out(now);
        self.establish(now);
        self.finish_deletes(now);
        let objects = &self.objects;
        self.unsettled.retain(|k| {
            objects.get(k).is_some_and(|s| {
                !s.ready || s.deleting_since.is_some() || (is_crd(k) && !status::established(&s.obj))
            })
        });
    }

    /// The objects a tick looks at: those [`Store::unsettled`] names.
    fn unsettled(&self) -> impl Iterator<Item = (&Key, &Stored)> {
        self.unsettled
            .iter()
            .filter_map(|k| self.objects.get_key_value(k))
    }

    /// Show the ready status of every workload whose rollout delay has
    /// passed (or that `set_ready` released). Status changes bump the
    /// resourceVersion, as the controllers' writes would.
    fn roll_out(&mut self, now: Instant) {
        let delay = self.opts.rollout_delay;
        let due: Vec<Key> = self
            .unsettled()
            .filter(|(_, s)| !s.ready)
            .filter(|(_, s)| {
                s.forced_ready
                    || (!status::never_ready(&s.obj) && delay.is_some_and(|d| now >= s.changed_at + d))
            })
            .map(|(k, _)| k.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let types = self.types();
        let now_str = now_string();
        for key in due {
            let Some(rt) = types
                .iter()
                .find(|t| t.group == key.group && t.plural == key.plural)
            else {
                continue;
            };
            if !rt.is_workload() {
                continue;
            }
            let Some(s) = self.objects.get_mut(&key) else {
                continue;
            };
            let new_status = status::ready(&rt.kind, &s.obj, &now_str);
            set_status(&mut s.obj, new_status, &now_str);
            s.ready = true;
            self.touch(&key);
        }
    }

    /// CRDs become established [`Options::crd_delay`] after they were
    /// created; their kinds are served from then on.
    fn establish(&mut self, now: Instant) {
        let delay = self.opts.crd_delay;
        let due: Vec<Key> = self
            .unsettled()
            .filter(|(k, s)| is_crd(k) && s.deleting_since.is_none() && !status::established(&s.obj))
            .filter(|(_, s)| now >= s.changed_at + delay)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(s) = self.objects.get_mut(&key) {
                s.obj["status"] = status::crd(&s.obj, &now_string(), true);
            }
            self.touch(&key);
        }
    }

    /// With [`Options::delete_delay`], the controllers' part of a delete
    /// that delay after it was asked: foreground deletes finish, a
    /// namespace's content is deleted and then the namespace, a CRD's
    /// custom resources and then the CRD. Finalizers of anyone else stay
    /// until a client removes them.
    fn finish_deletes(&mut self, now: Instant) {
        let Some(delay) = self.opts.delete_delay else {
            return;
        };
        let due: Vec<Key> = self
            .unsettled()
            .filter(|(_, s)| s.deleting_since.is_some_and(|t| now >= t + delay))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if key.group.is_empty() && key.plural == "namespaces" {
                let content: Vec<Key> = self
                    .objects
                    .keys()
                    .filter(|k| k.namespace == key.name && !k.namespace.is_empty())
                    .cloned()
                    .collect();
                for k in &content {
                    self.begin_delete(k, now, false);
                }
                let empty = !self.objects.keys().any(|k| k.namespace == key.name);
                if empty {
                    self.drop_finalizer(&key, "/spec/finalizers", "kubernetes");
                }
            }
            if is_crd(&key) {
                let defined = self
                    .types()
                    .into_iter()
                    .find(|t| t.crd.as_deref() == Some(key.name.as_str()));
                if let Some(t) = defined {
                    let instances: Vec<Key> = self
                        .objects
                        .keys()
                        .filter(|k| k.group == t.group && k.plural == t.plural)
                        .cloned()
                        .collect();
                    for k in &instances {
                        self.begin_delete(k, now, false);
                    }
                    if !self
                        .objects
                        .keys()
                        .any(|k| k.group == t.group && k.plural == t.plural)
                    {
                        self.drop_finalizer(&key, "/metadata/finalizers", CRD_FINALIZER);
                    }
                } else {
                    self.drop_finalizer(&key, "/metadata/finalizers", CRD_FINALIZER);
                }
            }
            self.drop_finalizer(&key, "/metadata/finalizers", "foregroundDeletion");
            self.finish_if_free(&key);
        }
    }

    /// Remove `finalizer` from the list at `pointer` of a stored object.
    fn drop_finalizer(&mut self, key: &Key, pointer: &str, finalizer: &str) {
        let Some(s) = self.objects.get_mut(key) else {
            return;
        };
        let Some(list) = s.obj.pointer_mut(pointer).and_then(Value::as_array_mut) else {
            return;
        };
        let before = list.len();
        list.retain(|f| f.as_str() != Some(finalizer));
        if list.len() != before {
            self.touch(key);
        }
    }

    /// An object being deleted goes once no finalizer holds it.
    fn finish_if_free(&mut self, key: &Key) {
        let free = self
            .objects
            .get(key)
            .is_some_and(|s| s.deleting_since.is_some() && !held(&s.obj, self.opts.delete_delay.is_some()));
        if free {
            self.remove(key);
        }
    }

    /// A change the server made to a stored object: a new resourceVersion
    /// and a MODIFIED event.
    fn touch(&mut self, key: &Key) {
        self.rv += 1;
        let rv = self.rv;
        if let Some(s) = self.objects.get_mut(key) {
            s.obj["metadata"]["resourceVersion"] = rv.to_string().into();
            let obj = s.obj.clone();
            self.record("MODIFIED", key.clone(), obj);
        }
    }

    /// Keep an event for watches (the current resourceVersion's).
    fn record(&mut self, kind: &'static str, key: Key, obj: Value) {
        self.events.push_back(Event {
            rv: self.rv,
            kind,
            key,
            obj,
        });
        while self.events.len() > HISTORY {
            if let Some(e) = self.events.pop_front() {
                self.compacted = e.rv;
            }
        }
    }

    /// Forget every event so far, as an etcd compaction does: watches from
    /// an older resourceVersion get 410.
    pub fn compact(&mut self) {
        self.events.clear();
        self.compacted = self.rv;
    }

    /// After `n` more writes (from HTTP clients), every write fails with
    /// 500 until called again with `None`.
    pub fn fail_writes_after(&mut self, n: Option<usize>) {
        self.writes_left = n;
    }

    /// Answer one request.
    pub fn handle(&mut self, req: &Request, now: Instant) -> Response {
        self.tick(now);
        let write = matches!(req.method, "POST" | "PUT" | "PATCH" | "DELETE");
        if write && !req.admin && !req.query.contains("dryRun=All") {
            match &mut self.writes_left {
                Some(0) => {
                    return Failure::new(
                        500,
                        "InternalError",
                        "Internal error occurred: etcdserver: request timed out",
                    )
                    .details(json!({"causes": [{"message": "etcdserver: request timed out"}]}))
                    .into_response();
                }
                Some(n) => *n -= 1,
                None => {}
            }
        }
        match self.route(req, now) {
            Ok(resp) => resp,
            Err(f) => f.into_response(),
        }
    }

    fn route(&mut self, req: &Request, now: Instant) -> Result<Response> {
        let segs: Vec<String> = req
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| decode(s, false))
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let get_only = |resp: Value| {
            if req.method == "GET" {
                Ok(Response::ok(resp))
            } else {
                Err(Failure::method_not_allowed())
            }
        };
        let types = self.types();
        match segs[..] {
            ["version"] => get_only(discovery::version()),
            ["api"] => get_only(discovery::api_versions(&self.server_address)),
            ["apis"] => get_only(discovery::api_group_list(&types)),
            ["openapi", "v3"] => get_only(discovery::openapi_root(&types)),
            ["openapi", "v3", ..] => {
                let doc = discovery::openapi_doc(&types, &segs[2..].join("/"))
                    .ok_or_else(Failure::not_found_path)?;
                get_only(doc)
            }
            ["apis", group] => {
                get_only(discovery::api_group(&types, group).ok_or_else(Failure::not_found_path)?)
            }
            ["api", version, ref rest @ ..] => self.resource(req, &types, "", version, rest, now),
            ["apis", group, version, ref rest @ ..] => self.resource(req, &types, group, version, rest, now),
            _ => Err(Failure::not_found_path()),
        }
    }

    fn resource(
        &mut self,
        req: &Request,
        types: &[ResourceType],
        group: &str,
        version: &str,
        rest: &[&str],
        now: Instant,
    ) -> Result<Response> {
        if rest.is_empty() {
            let list = discovery::resource_list(types, group, version).ok_or_else(Failure::not_found_path)?;
            if req.method != "GET" {
                return Err(Failure::method_not_allowed());
            }
            return Ok(Response::ok(list));
        }
        let find = |plural: &str| {
            types
                .iter()
                .find(|t| t.group == group && t.plural == plural && t.versions.iter().any(|v| v == version))
        };
        let namespaced = |plural: &str| find(plural).filter(|t| t.namespaced);
        let cluster = |plural: &str| find(plural).filter(|t| !t.namespaced);
        let (rt, namespace, name, subresource) = match *rest {
            ["namespaces", ns, plural] if namespaced(plural).is_some() => {
                (namespaced(plural), Some(ns), None, None)
            }
            ["namespaces", ns, plural, name] if namespaced(plural).is_some() => {
                (namespaced(plural), Some(ns), Some(name), None)
            }
            ["namespaces", ns, plural, name, sub] => (namespaced(plural), Some(ns), Some(name), Some(sub)),
            [plural] => (find(plural), None, None, None),
            [plural, name] => (cluster(plural), None, Some(name), None),
            [plural, name, sub] => (cluster(plural), None, Some(name), Some(sub)),
            _ => (None, None, None, None),
        };
        let rt = rt.ok_or_else(Failure::not_found_path)?.clone();
        let target = Target {
            rt,
            version: version.to_string(),
            namespace: namespace.map(String::from),
            name: name.map(String::from),
            subresource: subresource.map(String::from),
        };
        let query = parse_query(req.query);
        let dry_run = match query.get("dryRun").map(String::as_str) {
            None | Some("") => false,
            Some("All") => true,
            Some(other) => {
                return Err(Failure::bad_request(format!(
                    "Invalid dry run value: {other:?}: supported value is \"All\""
                )));
            }
        };
        let watch = matches!(query.get("watch").map(String::as_str), Some("true" | "1"));
        if !req.admin {
            self.authorize(req, &target, watch)?;
        }
        let c = Call {
            req,
            query,
            dry_run,
            now,
        };
        if let Some(sub) = target.subresource.clone() {
            return self.subresource(&target, &sub, &c);
        }
        let query = &c.query;
        match (req.method, target.name.is_some()) {
            ("GET", false) if watch => self.watch(&target, query, now),
            (_, _) if watch => Err(Failure::method_not_allowed()),
            ("GET", true) => self.get(&target),
            ("GET", false) => self.list(&target, query),
            ("POST", false) => self.create(&target, &c),
            ("PUT", true) => self.replace(&target, &c),
            ("PATCH", true) => self.patch(&target, &c),
            ("DELETE", true) => self.delete(&target, &c),
            ("DELETE", false) => self.delete_collection(&target, &c),
            _ => Err(Failure::method_not_allowed()),
        }
    }

    /// With [`Options::identity`], RBAC as a Role in some namespaces gives
    /// it: anything inside them, nothing cluster-wide (no LIST across
    /// namespaces, no cluster-scoped kinds), with the real server's 403.
    fn authorize(&self, req: &Request, t: &Target, watch: bool) -> Result<()> {
        let Some(id) = &self.opts.identity else {
            return Ok(());
        };
        let allowed = t.rt.namespaced
            && t.namespace
                .as_ref()
                .is_some_and(|ns| id.namespaces.iter().any(|n| n == ns));
        if allowed {
            return Ok(());
        }
        let verb = match (req.method, t.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if watch => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "get",
        };
        let mut resource = t.rt.plural.clone();
        if let Some(sub) = &t.subresource {
            resource = format!("{resource}/{sub}");
        }
        let scope = match (&t.namespace, t.rt.namespaced) {
            (Some(ns), true) => format!("in the namespace {ns:?}"),
            _ => "at the cluster scope".to_string(),
        };
        let why = format!(
            "User {:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
            id.user, t.rt.group
        );
        Err(Failure::forbidden(&t.rt, t.name.as_deref(), &why))
    }

    /// The start of a watch of a collection: the initial events (in the
    /// body) and where the stream goes on from.
    fn watch(&self, t: &Target, query: &BTreeMap<String, String>, now: Instant) -> Result<Response> {
        let param = |k: &str| query.get(k).cloned().unwrap_or_default();
        // Parse the selectors once, to answer a bad one with 400 now.
        Selector::parse(&param("labelSelector")).map_err(Failure::bad_request)?;
        FieldSelector::parse(&param("fieldSelector")).map_err(Failure::bad_request)?;
        let mut watch = Watch {
            group: t.rt.group.clone(),
            plural: t.rt.plural.clone(),
            api_version: t.rt.group_version(&t.version),
            kind: t.rt.kind.clone(),
            namespace: t.namespace.clone(),
            label_selector: param("labelSelector"),
            field_selector: param("fieldSelector"),
            rv: self.rv,
            bookmarks: param("allowWatchBookmarks") == "true",
            until: param("timeoutSeconds")
                .parse::<u64>()
                .ok()
                .map(|s| now + Duration::from_secs(s)),
            done: false,
        };
        let from = param("resourceVersion");
        let events = match from.as_str() {
            // Start now, with the objects that exist as ADDED events.
            "" | "0" => {
                let mut events: Vec<Value> = self
                    .matching(t, query)?
                    .iter()
                    .filter_map(|k| self.objects.get(k))
                    .map(|s| json!({"type": "ADDED", "object": Self::as_version(t, &s.obj)}))
                    .collect();
                if watch.bookmarks && param("sendInitialEvents") == "true" {
                    let mut end = watch.bookmark();
                    end["object"]["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
                    events.push(end);
                }
                events
            }
            n => {
                let n: u64 = n
                    .parse()
                    .map_err(|_| Failure::bad_request(format!("invalid resource version: {n:?}")))?;
                if n < self.compacted {
                    watch.done = true;
                    let expired = Failure::new(
                        410,
                        "Expired",
                        format!("too old resource version: {n} ({})", self.compacted),
                    )
                    .into_response()
                    .body;
                    vec![json!({"type": "ERROR", "object": expired})]
                } else {
                    watch.rv = n;
                    self.events_after(&mut watch)
                }
            }
        };
        Ok(Response {
            code: 200,
            body: Value::Array(events),
            watch: Some(watch),
        })
    }

    /// The events a watch has not seen yet, as watch events; moves the
    /// watch past them.
    pub fn events_after(&self, watch: &mut Watch) -> Vec<Value> {
        let labels = Selector::parse(&watch.label_selector)
            .unwrap_or_else(|_| Selector::parse("").expect("empty selector"));
        let fields = FieldSelector::parse(&watch.field_selector)
            .unwrap_or_else(|_| FieldSelector::parse("").expect("empty selector"));
        let out = self
            .events
            .iter()
            .filter(|e| e.rv > watch.rv)
            .filter(|e| e.key.group == watch.group && e.key.plural == watch.plural)
            .filter(|e| watch.namespace.as_ref().is_none_or(|ns| &e.key.namespace == ns))
            .filter(|e| labels.matches(e.obj.pointer("/metadata/labels")) && fields.matches(&e.obj))
            .map(|e| {
                let mut obj = e.obj.clone();
                obj["apiVersion"] = watch.api_version.clone().into();
                json!({"type": e.kind, "object": obj})
            })
            .collect();
        watch.rv = self.rv.max(watch.rv);
        out
    }

    /// `status` (read only) and `scale` (Deployments and StatefulSets).
    fn subresource(&mut self, t: &Target, sub: &str, c: &Call) -> Result<Response> {
        let scalable = t.rt.group == "apps" && matches!(t.rt.kind.as_str(), "Deployment" | "StatefulSet");
        let req = c.req;
        match (sub, req.method) {
            ("status", "GET") => self.get(t),
            ("scale", "GET") if scalable => Ok(Response::ok(scale_of(&self.live(t)?.1))),
            ("scale", "PATCH" | "PUT") if scalable => {
                let live = Self::as_version(t, &self.live(t)?.1);
                let scale = scale_of(&live);
                let new_scale = match (req.method, media_type(req).as_str()) {
                    ("PUT", _) => object_body(req)?,
                    (_, "application/merge-patch+json") => {
                        fields::merge_patch(&scale, &parse_body(req.body, false)?, false)
                    }
                    (_, "application/strategic-merge-patch+json") => {
                        fields::merge_patch(&scale, &parse_body(req.body, false)?, true)
                    }
                    (_, "application/json-patch+json") => {
                        fields::json_patch(&scale, &parse_body(req.body, false)?)
                            .map_err(|e| Failure::new(422, "Invalid", e))?
                    }
                    (_, other) => return Err(unsupported_media_type(other)),
                };
                let replicas = new_scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| {
                        let name = t.name.as_deref().unwrap_or_default();
                        Failure::new(
                            422,
                            "Invalid",
                            format!("Scale {name:?} is invalid: spec.replicas: Required value"),
                        )
                    })?;
                let mut obj = live.clone();
                obj["spec"]["replicas"] = replicas.into();
                let stored = self.update(t, Some(&live), obj, "scale", c)?;
                Ok(Response::ok(scale_of(&stored)))
            }
            ("status", _) | ("scale", _) if scalable || sub == "status" => Err(Failure::method_not_allowed()),
            _ => Err(Failure::not_found_path()),
        }
    }

    fn target_key(&self, t: &Target) -> Key {
        Self::key(
            &t.rt,
            t.namespace.as_deref(),
            t.name.as_deref().unwrap_or_default(),
        )
    }

    /// The target's key and its stored object, or 404.
    fn live(&self, t: &Target) -> Result<(Key, Value)> {
        let key = self.target_key(t);
        let live = self
            .objects
            .get(&key)
            .map(|s| s.obj.clone())
            .ok_or_else(|| Failure::not_found(&t.rt, t.name.as_deref().unwrap_or_default()))?;
        Ok((key, live))
    }

    /// The stored object as the target's version.
    fn as_version(t: &Target, obj: &Value) -> Value {
        let mut obj = obj.clone();
        obj["apiVersion"] = t.rt.group_version(&t.version).into();
        obj
    }

    fn get(&self, t: &Target) -> Result<Response> {
        let name = t.name.as_deref().unwrap_or_default();
        let s = self
            .objects
            .get(&self.target_key(t))
            .ok_or_else(|| Failure::not_found(&t.rt, name))?;
        Ok(Response::ok(Self::as_version(t, &s.obj)))
    }

    /// Move `key` in the label index from the labels of `old` to those of `new`.
    fn index(&mut self, key: &Key, old: Option<&Value>, new: Option<&Value>) {
        let labels = |obj: Option<&Value>| -> Vec<(String, String)> {
            obj.and_then(|o| o.pointer("/metadata/labels"))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        };
        let (old, new) = (labels(old), labels(new));
        for label in old.iter().filter(|l| !new.contains(l)) {
            if let Some(keys) = self.by_label.get_mut(label) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_label.remove(label);
                }
            }
        }
        for label in new {
            self.by_label.entry(label).or_default().insert(key.clone());
        }
    }

    fn matching(&self, t: &Target, query: &BTreeMap<String, String>) -> Result<Vec<Key>> {
        let labels = Selector::parse(query.get("labelSelector").map(String::as_str).unwrap_or_default())
            .map_err(Failure::bad_request)?;
        let fields = FieldSelector::parse(query.get("fieldSelector").map(String::as_str).unwrap_or_default())
            .map_err(Failure::bad_request)?;
        // Keys sort by group, plural, namespace and name: one range holds
        // the kind (in the namespace), as a real server's cache per resource.
        let first = Key {
            group: t.rt.group.clone(),
            plural: t.rt.plural.clone(),
            namespace: t.namespace.clone().unwrap_or_default(),
            name: String::new(),
        };
        let in_range = |k: &Key| {
            k.group == t.rt.group
                && k.plural == t.rt.plural
                && t.namespace.as_ref().is_none_or(|ns| &k.namespace == ns)
        };
        let selected =
            |s: &Stored| labels.matches(s.obj.pointer("/metadata/labels")) && fields.matches(&s.obj);
        Ok(match labels.equality() {
            // Only the objects with that label, in key order as the range's.
            Some((k, v)) => self
                .by_label
                .get(&(k.to_string(), v.to_string()))
                .into_iter()
                .flatten()
                .filter(|k| in_range(k))
                .filter(|k| self.objects.get(k).is_some_and(selected))
                .cloned()
                .collect(),
            None => self
                .objects
                .range(first..)
                .take_while(|(k, _)| in_range(k))
                .filter(|(_, s)| selected(s))
                .map(|(k, _)| k.clone())
                .collect(),
        })
    }

    fn list(&self, t: &Target, query: &BTreeMap<String, String>) -> Result<Response> {
        let items: Vec<Value> = self
            .matching(t, query)?
            .iter()
            .filter_map(|k| self.objects.get(k))
            .map(|s| Self::as_version(t, &s.obj))
            .collect();
        Ok(self.list_of(t, items))
    }

    fn list_of(&self, t: &Target, items: Vec<Value>) -> Response {
        Response::ok(json!({
            "kind": format!("{}List", t.rt.kind),
            "apiVersion": t.rt.group_version(&t.version),
            "metadata": {"resourceVersion": self.rv.to_string()},
            "items": items,
        }))
    }

    /// Store `obj` (normalized) over `live` (`None`: a create) as an
    /// Update of `subresource` by the call's field manager: the managed
    /// fields it changed move to that manager. The object as answered.
    fn update(
        &mut self,
        t: &Target,
        live: Option<&Value>,
        obj: Value,
        subresource: &str,
        c: &Call,
    ) -> Result<Value> {
        let obj = self.normalize(t, obj)?;
        let manager = c.updater();
        let (entries, _) = fields::update(
            live.unwrap_or(&Value::Null),
            &obj,
            &live.map(fields::entries_of).unwrap_or_default(),
            &manager,
            &t.rt.group_version(&t.version),
            subresource,
            &now_string(),
        );
        self.finish_write(t, live, obj, entries, (&manager, "Update", subresource), c)
    }

    /// The body as an object of the target's type, named and namespaced as
    /// the URL says (or as the body says, for a create).
    fn checked_body(&self, t: &Target, mut obj: Value, yaml: bool) -> Result<(Value, String)> {
        if !obj.is_object() {
            return Err(Failure::bad_request("the request body must be an object"));
        }
        let gv = t.rt.group_version(&t.version);
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        if api_version != gv || kind != t.rt.kind {
            return Err(Failure::bad_request(format!(
                "the API version in the data ({api_version}) or kind ({kind}) does not match the expected \
                 API version ({gv}) and kind ({})",
                t.rt.kind
            )));
        }
        if !obj.get("metadata").is_none_or(Value::is_object) {
            return Err(Failure::bad_request("metadata must be an object"));
        }
        let meta = obj
            .as_object_mut()
            .and_then(|o| {
                o.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
                o.get_mut("metadata")
            })
            .and_then(Value::as_object_mut)
            .ok_or_else(|| Failure::bad_request("metadata must be an object"))?;
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(url_name) = &t.name {
            if name.is_empty() && !yaml {
                name = url_name.clone();
            }
            if &name != url_name {
                return Err(Failure::bad_request(format!(
                    "the name of the object ({name}) does not match the name on the URL ({url_name})"
                )));
            }
        } else if name.is_empty() {
            let prefix = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if prefix.is_empty() {
                return Err(Failure::invalid_text(
                    &t.rt,
                    "",
                    "metadata.name: Required value: name or generateName is required",
                ));
            }
            name = format!("{prefix}{:05x}", (self.uids + 1) * 7919 % 0xfffff);
        }
        meta.insert("name".into(), name.clone().into());
        if t.rt.namespaced {
            let url_ns = t.namespace.clone().unwrap_or_default();
            let body_ns = meta.get("namespace").and_then(Value::as_str).unwrap_or_default();
            if !body_ns.is_empty() && body_ns != url_ns {
                return Err(Failure::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            if url_ns.is_empty() {
                return Err(Failure::not_found_path());
            }
            meta.insert("namespace".into(), url_ns.into());
        } else {
            meta.remove("namespace");
        }
        Ok((obj, name))
    }

    /// What a real server checks before it creates `name`: a valid name
    /// for the kind (validation), then an existing namespace that is not
    /// being deleted (admission).
    fn check_create(&self, t: &Target, name: &str) -> Result<()> {
        let errors = rules::check_name(&t.rt, name);
        if !errors.is_empty() {
            return Err(Failure::invalid(&t.rt, name, &errors));
        }
        let (Some(ns), true) = (&t.namespace, t.rt.namespaced) else {
            return Ok(());
        };
        let namespace = self.objects.get(&Key {
            group: String::new(),
            plural: "namespaces".into(),
            namespace: String::new(),
            name: ns.clone(),
        });
        match namespace {
            None => Err(Failure::namespace_not_found(ns)),
            Some(s) if s.deleting_since.is_some() => {
                let why =
                    format!("unable to create new content in namespace {ns} because it is being terminated");
                let mut f = Failure::forbidden(&t.rt, Some(name), &why);
                f.details["causes"] = json!([{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {ns} is being terminated"),
                    "field": "metadata.namespace",
                }]);
                Err(f)
            }
            Some(_) => Ok(()),
        }
    }

    fn create(&mut self, t: &Target, c: &Call) -> Result<Response> {
        let (mut obj, name) = self.checked_body(t, object_body(c.req)?, false)?;
        self.check_create(t, &name)?;
        let t = Target {
            name: Some(name.clone()),
            ..t.clone()
        };
        let key = self.target_key(&t);
        if self.objects.contains_key(&key) {
            return Err(Failure::new(
                409,
                "AlreadyExists",
                format!("{} {name:?} already exists", t.rt.qualified()),
            )
            .details(json!({"name": name, "group": t.rt.group, "kind": t.rt.plural})));
        }
        strip_server_metadata(&mut obj);
        let stored = self.update(&t, None, obj, "", c)?;
        Ok(Response::with_code(201, stored))
    }

    fn replace(&mut self, t: &Target, c: &Call) -> Result<Response> {
        let (mut obj, _) = self.checked_body(t, object_body(c.req)?, false)?;
        let (_, live) = self.live(t)?;
        check_resource_version(t, &obj, &live)?;
        strip_server_metadata(&mut obj);
        Ok(Response::ok(self.update(t, Some(&live), obj, "", c)?))
    }

    fn patch(&mut self, t: &Target, c: &Call) -> Result<Response> {
        let media = media_type(c.req);
        let name = t.name.clone().unwrap_or_default();
        if media == "application/apply-patch+yaml" {
            return self.apply(t, c);
        }
        let (_, live) = self.live(t)?;
        let known = [
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/json-patch+json",
        ];
        if !known.contains(&media.as_str()) {
            return Err(unsupported_media_type(&media));
        }
        let patch = parse_body(c.req.body, false)?;
        let live_here = Self::as_version(t, &live);
        let patched = match media.as_str() {
            "application/merge-patch+json" => fields::merge_patch(&live_here, &patch, false),
            "application/strategic-merge-patch+json" => fields::merge_patch(&live_here, &patch, true),
            "application/json-patch+json" => fields::json_patch(&live_here, &patch).map_err(|e| {
                Failure::new(
                    422,
                    "Invalid",
                    format!("the server rejected our request due to an error in our request: {e}"),
                )
            })?,
            other => return Err(unsupported_media_type(other)),
        };
        // Identity fields cannot be patched away.
        let mut obj = patched;
        if name_of(&obj) != name {
            return Err(Failure::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&obj)
            )));
        }
        check_resource_version(t, &obj, &live)?;
        obj["apiVersion"] = t.rt.group_version(&t.version).into();
        obj["kind"] = t.rt.kind.clone().into();
        strip_server_metadata(&mut obj);
        restore_identity(t, &mut obj, &name);
        Ok(Response::ok(self.update(t, Some(&live), obj, "", c)?))
    }

    fn apply(&mut self, t: &Target, c: &Call) -> Result<Response> {
        let query = &c.query;
        let manager = match query.get("fieldManager") {
            Some(m) if !m.is_empty() => m.clone(),
            _ => {
                return Err(Failure::bad_request(
                    "PATCH, application/apply-patch+yaml requests require a non-empty fieldManager",
                ));
            }
        };
        let force = match query.get("force").map(String::as_str) {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(other) => return Err(Failure::bad_request(format!("invalid force value {other:?}"))),
        };
        let (mut config, name) = self.checked_body(t, parse_body(c.req.body, true)?, true)?;
        let key = self.target_key(t);
        let live = self.objects.get(&key).map(|s| s.obj.clone());
        if live.is_none() {
            self.check_create(t, &name)?;
        }
        if let Some(live) = &live {
            check_resource_version(t, &config, live)?;
        }
        if let Some(m) = config.as_object_mut() {
            m.remove("status");
        }
        strip_server_metadata(&mut config);
        fields::drop_nulls(&mut config);
        let gv = t.rt.group_version(&t.version);
        let now_str = now_string();
        let entries = live.as_ref().map(fields::entries_of).unwrap_or_default();
        let live_here = live
            .as_ref()
            .map(|l| Self::as_version(t, l))
            .unwrap_or(Value::Null);
        let applied = fields::apply(&live_here, &config, &entries, &manager, &gv, force, &now_str).map_err(
            |conflicts| {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| {
                        json!({
                            "reason": "FieldManagerConflict",
                            "message": format!("conflict with {}", c.manager),
                            "field": fields::path_string(&c.path),
                        })
                    })
                    .collect();
                // As apierrors.NewApplyConflict: the causes and nothing else.
                Failure::new(409, "Conflict", fields::conflict_message(&conflicts))
                    .details(json!({"causes": causes}))
            },
        )?;
        let mut obj = applied.object;
        restore_identity(t, &mut obj, &name);
        let obj = self.normalize(t, obj)?;
        let created = live.is_none();
        let stored = self.finish_write(t, live.as_ref(), obj, applied.entries, (&manager, "Apply", ""), c)?;
        Ok(Response::with_code(if created { 201 } else { 200 }, stored))
    }

    /// Per-kind rules every write goes through: a Secret's `stringData`
    /// moves into `data`; a CRD must define a valid type.
    fn normalize(&self, t: &Target, mut obj: Value) -> Result<Value> {
        match (t.rt.group.as_str(), t.rt.kind.as_str()) {
            ("", "Secret") => {
                if let Some(Value::Object(string_data)) =
                    obj.as_object_mut().and_then(|o| o.remove("stringData"))
                {
                    let data = obj
                        .as_object_mut()
                        .map(|o| o.entry("data").or_insert_with(|| Value::Object(Map::new())));
                    if let Some(Value::Object(data)) = data {
                        for (k, v) in string_data {
                            let text = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
                            data.insert(k, base64(text.as_bytes()).into());
                        }
                    }
                }
            }
            ("apiextensions.k8s.io", "CustomResourceDefinition") => {
                let rt =
                    types::from_crd(&obj).map_err(|e| Failure::invalid_text(&t.rt, name_of(&obj), &e))?;
                let clash = self
                    .types()
                    .into_iter()
                    .any(|o| o.group == rt.group && o.plural == rt.plural && o.crd != rt.crd);
                if clash {
                    return Err(Failure::invalid_text(
                        &t.rt,
                        name_of(&obj),
                        "spec.names.plural: Invalid value: the resource is already served",
                    ));
                }
            }
            _ => {}
        }
        Ok(obj)
    }

    /// Server-owned metadata and status, the generation, the workload
    /// status; then store (unless a dry run) with a new resourceVersion if
    /// anything changed. Returns the object as answered.
    fn finish_write(
        &mut self,
        t: &Target,
        live: Option<&Value>,
        mut obj: Value,
        entries: Vec<Entry>,
        writer: (&str, &str, &str),
        c: &Call,
    ) -> Result<Value> {
        let key = self.target_key(t);
        let (dry_run, now) = (c.dry_run, c.now);
        let now_str = now_string();
        let live = live.map(|l| Self::as_version(t, l));
        let gv = t.rt.group_version(&t.version);
        let service = t.rt.group.is_empty() && t.rt.kind == "Service";
        if self.opts.immutable_fields {
            match &live {
                Some(live) => {
                    if service {
                        rules::keep_allocated(live, &mut obj);
                    }
                    let errors = rules::immutable(&t.rt, live, &obj);
                    if !errors.is_empty() {
                        return Err(Failure::invalid(&t.rt, name_of(&obj), &errors));
                    }
                }
                None if service => {
                    let n = self.cluster_ips + 10;
                    rules::allocate_cluster_ip(&mut obj, &format!("10.96.{}.{}", n / 250, n % 250 + 1));
                    if !dry_run {
                        self.cluster_ips += 1;
                    }
                }
                None => {}
            }
        }
        {
            let meta = obj
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .ok_or_else(|| Failure::bad_request("metadata must be an object"))?;
            match &live {
                Some(live) => {
                    for k in [
                        "uid",
                        "creationTimestamp",
                        "generation",
                        "resourceVersion",
                        "deletionTimestamp",
                        "deletionGracePeriodSeconds",
                    ] {
                        match live.pointer(&format!("/metadata/{k}")) {
                            Some(v) => meta.insert(k.into(), v.clone()),
                            None => meta.remove(k),
                        };
                    }
                }
                None => {
                    let uid = self.uids + 1;
                    meta.insert(
                        "uid".into(),
                        format!("00000000-0000-4000-8000-{:012x}", uid).into(),
                    );
                    meta.insert("creationTimestamp".into(), now_str.clone().into());
                    if t.rt.generation {
                        meta.insert("generation".into(), 1.into());
                    }
                }
            }
        }
        // The server owns status: writes keep the live one.
        let old_status = live.as_ref().and_then(|l| l.get("status")).cloned();
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
            if let Some(s) = old_status.clone() {
                o.insert("status".into(), s);
            }
        }
        let spec_changed = live.as_ref().is_some_and(|l| spec_part(l) != spec_part(&obj));
        if spec_changed && t.rt.generation {
            let g = obj
                .pointer("/metadata/generation")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            obj["metadata"]["generation"] = (g + 1).into();
        }
        let mut entries = entries;
        // Only workloads wait to be ready.
        let mut ready = !t.rt.is_workload() || self.objects.get(&key).is_some_and(|s| s.ready);
        let generation_changed = live.is_none() || (spec_changed && t.rt.generation);
        if t.rt.is_workload() && generation_changed {
            let instant = self.opts.rollout_delay == Some(Duration::ZERO) && !status::never_ready(&obj);
            let new_status = if instant {
                status::ready(&t.rt.kind, &obj, &now_str)
            } else {
                status::not_ready(&t.rt.kind, &obj, live.as_ref(), &now_str)
            };
            ready = instant;
            obj["status"] = new_status;
            controller_entry(&mut entries, &obj, &gv, &now_str);
        }
        match (t.rt.kind.as_str(), &live) {
            ("Namespace", None) => {
                obj["status"] = json!({"phase": "Active"});
                if obj.pointer("/spec/finalizers").is_none() {
                    obj["spec"]["finalizers"] = json!(["kubernetes"]);
                }
            }
            ("CustomResourceDefinition", _) if live.is_none() || spec_changed => {
                let established = match &live {
                    Some(l) => status::established(l),
                    None => self.opts.crd_delay.is_zero(),
                };
                obj["status"] = status::crd(&obj, &now_str, established);
            }
            _ => {}
        }

        // The writer's entry is stamped when the object changes.
        let body_changed = match &live {
            Some(l) => without_managed_fields(l) != without_managed_fields(&obj),
            None => true,
        };
        if body_changed {
            let (manager, operation, subresource) = writer;
            for e in entries.iter_mut() {
                if e.manager == manager && e.operation == operation && e.subresource == subresource {
                    e.time = now_str.clone();
                }
            }
        }
        write_entries(&mut obj, &entries);
        if live.as_ref() == Some(&obj) {
            return Ok(obj);
        }
        if dry_run {
            return Ok(obj);
        }
        if live.is_none() {
            self.uids += 1;
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
        let changed_at = match self.objects.get(&key) {
            Some(s) if !generation_changed => s.changed_at,
            _ => now,
        };
        let forced_ready = !generation_changed && self.objects.get(&key).is_some_and(|s| s.forced_ready);
        let deleting_since = self.objects.get(&key).and_then(|s| s.deleting_since);
        let before = self.objects.insert(
            key.clone(),
            Stored {
                obj: obj.clone(),
                changed_at,
                forced_ready,
                ready,
                deleting_since,
            },
        );
        self.index(&key, before.as_ref().map(|s| &s.obj), Some(&obj));
        self.unsettled.insert(key.clone());
        self.record(
            if live.is_none() { "ADDED" } else { "MODIFIED" },
            key.clone(),
            obj.clone(),
        );
        // A client removed the last finalizer of an object being deleted.
        self.finish_if_free(&key);
        Ok(obj)
    }

    fn delete(&mut self, t: &Target, c: &Call) -> Result<Response> {
        let name = t.name.clone().unwrap_or_default();
        let (key, live) = self.live(t)?;
        if t.rt.kind == "Namespace" && matches!(name.as_str(), "default" | "kube-system" | "kube-public") {
            return Err(Failure::new(
                403,
                "Forbidden",
                format!("namespaces {name:?} is forbidden: this namespace may not be deleted"),
            ));
        }
        let gone = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": t.rt.group, "kind": t.rt.plural,
                        "uid": live.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)},
        });
        if c.dry_run {
            return Ok(Response::ok(gone));
        }
        match self.begin_delete(&key, c.now, c.foreground()) {
            None => Ok(Response::ok(gone)),
            // Still there (finalizers, a terminating namespace): the object.
            Some(obj) => Ok(Response::ok(Self::as_version(t, &obj))),
        }
    }

    fn delete_collection(&mut self, t: &Target, c: &Call) -> Result<Response> {
        let keys = self.matching(t, &c.query)?;
        let mut items = Vec::new();
        for key in keys {
            if let Some(s) = self.objects.get(&key) {
                items.push(Self::as_version(t, &s.obj));
            }
            if !c.dry_run {
                self.begin_delete(&key, c.now, c.foreground());
            }
        }
        Ok(self.list_of(t, items))
    }

    /// Delete a stored object: at once, or — when finalizers hold it, or
    /// with [`Options::delete_delay`] for a namespace, a CRD or a
    /// foreground delete — mark it (`deletionTimestamp`, a namespace
    /// `Terminating`) for [`Store::tick`] to finish. The object while it
    /// stays, `None` once gone.
    fn begin_delete(&mut self, key: &Key, now: Instant, foreground: bool) -> Option<Value> {
        let s = self.objects.get(key)?;
        self.unsettled.insert(key.clone());
        if s.deleting_since.is_some() {
            return Some(s.obj.clone());
        }
        let namespace = key.group.is_empty() && key.plural == "namespaces";
        let asynchronous = self.opts.delete_delay.is_some() && (namespace || is_crd(key) || foreground);
        if !asynchronous && !held(&s.obj, false) {
            self.remove(key);
            return None;
        }
        let now_str = now_string();
        let s = self.objects.get_mut(key)?;
        s.deleting_since = Some(now);
        let meta = &mut s.obj["metadata"];
        meta["deletionTimestamp"] = now_str.into();
        meta["deletionGracePeriodSeconds"] = 0.into();
        let mut finalizers: Vec<Value> = meta
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut add = |f: &str| {
            if !finalizers.iter().any(|x| x == f) {
                finalizers.push(f.into());
            }
        };
        if asynchronous && foreground {
            add("foregroundDeletion");
        }
        if asynchronous && is_crd(key) {
            add(CRD_FINALIZER);
        }
        if !finalizers.is_empty() {
            meta["finalizers"] = finalizers.into();
        }
        if namespace {
            s.obj["status"]["phase"] = "Terminating".into();
        }
        self.touch(key);
        self.objects.get(key).map(|s| s.obj.clone())
    }

    /// Remove an object now, and what goes with it: a namespace's objects,
    /// a CRD's custom resources. Each removal is a DELETED event.
    fn remove(&mut self, key: &Key) {
        let mut gone = vec![key.clone()];
        if key.group.is_empty() && key.plural == "namespaces" {
            gone.extend(self.objects.keys().filter(|k| k.namespace == key.name).cloned());
        }
        if is_crd(key)
            && let Some(t) = self
                .types()
                .into_iter()
                .find(|t| t.crd.as_deref() == Some(key.name.as_str()))
        {
            gone.extend(
                self.objects
                    .keys()
                    .filter(|k| k.group == t.group && k.plural == t.plural)
                    .cloned(),
            );
        }
        for k in gone {
            if let Some(s) = self.objects.remove(&k) {
                self.index(&k, Some(&s.obj), None);
                self.rv += 1;
                let mut obj = s.obj;
                obj["metadata"]["resourceVersion"] = self.rv.to_string().into();
                self.record("DELETED", k, obj);
            }
        }
    }
}

/// The finalizer a CRD carries while its custom resources are deleted.
const CRD_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn is_crd(key: &Key) -> bool {
    key.group == "apiextensions.k8s.io" && key.plural == "customresourcedefinitions"
}

/// Whether finalizers hold an object; `spec` counts a namespace's own
/// (`kubernetes`, which only asynchronous deletes wait for).
fn held(obj: &Value, spec: bool) -> bool {
    let some = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
    };
    let namespace = obj.get("kind").and_then(Value::as_str) == Some("Namespace");
    some("/metadata/finalizers") || (spec && namespace && some("/spec/finalizers"))
}

fn unsupported_media_type(media: &str) -> Failure {
    let accepted = if media.is_empty() || media.contains("json") || media.contains("yaml") {
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, \
         application/strategic-merge-patch+json"
    } else {
        "application/json, application/yaml"
    };
    Failure::new(
        415,
        "UnsupportedMediaType",
        format!(
            "the body of the request was in an unknown format - accepted media types include: {accepted}"
        ),
    )
}

/// The `autoscaling/v1` Scale of a Deployment or StatefulSet.
fn scale_of(obj: &Value) -> Value {
    let selector: Vec<String> = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    let meta = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut metadata = Map::new();
    for k in ["name", "namespace", "uid", "resourceVersion", "creationTimestamp"] {
        if !meta(k).is_null() {
            metadata.insert(k.into(), meta(k));
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1)},
        "status": {
            "replicas": obj.pointer("/status/replicas").and_then(Value::as_u64).unwrap_or(0),
            "selector": selector.join(","),
        },
    })
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Metadata a client may send but the server owns.
fn strip_server_metadata(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in fields::SERVER_METADATA {
            if !matches!(*k, "name" | "namespace") {
                meta.remove(*k);
            }
        }
    }
}

/// Name, namespace, apiVersion and kind as the URL says.
fn restore_identity(t: &Target, obj: &mut Value, name: &str) {
    obj["apiVersion"] = t.rt.group_version(&t.version).into();
    obj["kind"] = t.rt.kind.clone().into();
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]["name"] = name.into();
    match (&t.namespace, t.rt.namespaced) {
        (Some(ns), true) => obj["metadata"]["namespace"] = ns.clone().into(),
        _ => {
            if let Some(m) = obj["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
    }
}

/// A write that names a resourceVersion must name the live one.
fn check_resource_version(t: &Target, body: &Value, live: &Value) -> Result<()> {
    let Some(rv) = body.pointer("/metadata/resourceVersion").and_then(Value::as_str) else {
        return Ok(());
    };
    let live_rv = live
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !rv.is_empty() && rv != live_rv {
        let name = name_of(live);
        return Err(Failure::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                t.rt.qualified()
            ),
        )
        .details(json!({"name": name, "group": t.rt.group, "kind": t.rt.plural})));
    }
    Ok(())
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}

fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            entries.iter().map(Entry::to_json).collect::<Vec<_>>().into(),
        );
    }
}

/// The status fields the (simulated) controller wrote, owned by
/// `kube-controller-manager` through the status subresource.
fn controller_entry(entries: &mut Vec<Entry>, obj: &Value, api_version: &str, now: &str) {
    let status = obj.get("status").cloned().unwrap_or(Value::Null);
    let set = status_set(&status);
    let existing = entries
        .iter()
        .position(|e| e.manager == "kube-controller-manager" && e.subresource == "status");
    let entry = Entry {
        manager: "kube-controller-manager".into(),
        operation: "Update".into(),
        api_version: api_version.to_string(),
        time: now.to_string(),
        subresource: "status".into(),
        set,
    };
    match (existing, entry.set.is_empty()) {
        (Some(i), false) => entries[i] = entry,
        (Some(i), true) => {
            entries.remove(i);
        }
        (None, false) => entries.push(entry),
        (None, true) => {}
    }
}

fn status_set(status: &Value) -> fields::FieldSet {
    // set_of ignores `status`; file it under another name, then rename.
    fields::set_of(&json!({ "s": status }))
        .into_iter()
        .map(|mut p| {
            p[0] = fields::Elem::Field("status".into());
            p
        })
        .collect()
}

/// Replace a workload's status as the controller would, with its
/// managed-fields entry.
fn set_status(obj: &mut Value, status: Value, now: &str) {
    obj["status"] = status;
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut entries = fields::entries_of(obj);
    controller_entry(&mut entries, obj, &api_version, now);
    write_entries(obj, &entries);
}
