//! Applying an app's objects to a cluster with server-side apply, under
//! mooring's field manager, in order: CRDs (then wait until they are
//! established), Namespaces, other cluster-scoped objects, namespaced ones;
//! with bounded parallelism inside each stage. Then prune what the app's
//! inventory lists but git no longer has, record the new inventory, and
//! (with `wait`) wait until what was applied is healthy.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::Value;
use tokio::task::JoinSet;

use super::Summary;
use super::cluster::{Cluster, Resource};
use super::health::{Health, health};
use super::inventory;
use crate::render::{Manifest, ObjectId};

/// The label every applied object carries (value: the app).
pub const OWNER_LABEL: &str = "app.mooring.dev/name";
/// An object annotated `mooring.dev/prune: disabled` is never deleted by prune.
pub const PRUNE_ANNOTATION: &str = "mooring.dev/prune";
/// Requests in flight per stage.
const PARALLEL: usize = 16;
/// How long CRDs may take to become established before their objects apply.
const CRD_WAIT: Duration = Duration::from_secs(60);

pub struct Options<'a> {
    pub app: &'a str,
    pub field_manager: &'a str,
    /// Replaces the namespace of namespaced objects.
    pub namespace: Option<&'a str>,
    pub force: bool,
    pub recreate: bool,
    pub prune: bool,
    pub inventory_namespace: &'a str,
    pub revision: &'a str,
    /// Health-check what was applied, for at most this long.
    pub wait: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Connect(#[from] super::cluster::ConnectError),
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    /// `id` is the object as displayed: `Kind/namespace/name`.
    #[error("{position}: {id}: the cluster has no kind {kind} in {api_version}")]
    UnknownKind {
        id: String,
        position: String,
        api_version: String,
        kind: String,
    },
    #[error("{position}: {id}: {message}")]
    Object {
        id: String,
        position: String,
        message: String,
        retryable: bool,
    },
    #[error("{0}")]
    Inventory(#[from] inventory::Error),
    #[error("cannot prune {id}: {message}")]
    Prune { id: String, message: String },
    #[error("not healthy after {}: {}", humantime::format_duration(*waited), objects.join("; "))]
    NotReady { waited: Duration, objects: Vec<String> },
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Error>),
}

impl Error {
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Prune { .. } => "PruneFailed",
            Error::NotReady { .. } => "HealthCheckFailed",
            Error::Many(v) => v.first().map_or("ApplyFailed", Error::reason),
            _ => "ApplyFailed",
        }
    }

    /// Invalid objects stay invalid; everything else may pass later (a CRD
    /// installed by another app, a conflict released, a server back up).
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Object { retryable, .. } => *retryable,
            Error::Inventory(e) => e.is_retryable(),
            Error::Many(v) => v.iter().all(Error::is_retryable),
            Error::Connect(_) => false,
            _ => true,
        }
    }

    fn many(mut errors: Vec<Error>) -> Result<(), Error> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Many(errors)),
        }
    }
}

/// An object ready to be applied.
#[derive(Clone)]
struct Desired {
    id: ObjectId,
    position: String,
    body: Value,
}

/// When an object applies, relative to the others.
fn stage(id: &ObjectId, namespaced: bool) -> u8 {
    match (id.group(), id.kind.as_str(), namespaced) {
        ("apiextensions.k8s.io", "CustomResourceDefinition", _) => 0,
        ("", "Namespace", _) => 1,
        (_, _, false) => 2,
        (_, _, true) => 3,
    }
}

/// The objects of `manifests` as they will be sent: server-owned fields
/// dropped, the owner label added.
fn desired(manifests: &[Manifest], app: &str) -> Result<Vec<Desired>, Error> {
    let mut out = Vec::with_capacity(manifests.len());
    let mut errors = Vec::new();
    for m in manifests {
        let mut body = match m.object() {
            Ok(v) => v,
            Err(e) => {
                errors.push(Error::Object {
                    id: m.id.to_string(),
                    position: m.position(),
                    message: e.to_string(),
                    retryable: false,
                });
                continue;
            }
        };
        if let Some(obj) = body.as_object_mut() {
            obj.remove("status");
            if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                for server_owned in [
                    "resourceVersion",
                    "uid",
                    "creationTimestamp",
                    "managedFields",
                    "generation",
                    "selfLink",
                ] {
                    meta.remove(server_owned);
                }
                let labels = meta
                    .entry("labels")
                    .or_insert_with(|| Value::Object(Default::default()));
                if !labels.is_object() {
                    *labels = Value::Object(Default::default());
                }
                if let Some(l) = labels.as_object_mut() {
                    l.insert(OWNER_LABEL.into(), Value::String(app.into()));
                }
            }
        }
        out.push(Desired {
            id: m.id.clone(),
            position: m.position(),
            body,
        });
    }
    Error::many(errors)?;
    Ok(out)
}

/// Apply `manifests` for the app `opts.app`.
pub async fn apply(cluster: &Cluster, manifests: &[Manifest], opts: &Options<'_>) -> Result<Summary, Error> {
    let objects = desired(manifests, opts.app)?;
    let mut summary = Summary::default();
    let client = cluster.client().clone();
    let recorded = inventory::load(&client, opts.inventory_namespace, opts.app).await?;
    let old = recorded.objects.clone();

    // CRDs first: their kinds must exist before the objects that use them.
    let (crds, rest): (Vec<Desired>, Vec<Desired>) =
        objects.into_iter().partition(|d| stage(&d.id, false) == 0);
    let mut resolved: Vec<(Desired, Resource)> = Vec::new();
    for d in &crds {
        resolved.push((d.clone(), resource(cluster, d).await?.ok_or_else(|| unknown(d))?));
    }
    let mut all_ids: BTreeSet<ObjectId> = crds.iter().map(|d| d.id.clone()).collect();
    all_ids.extend(rest.iter().map(|d| d.id.clone()));
    if !crds.is_empty() {
        remember(&client, opts, &old, &all_ids).await?;
        let current = current(cluster, opts.app, &resolved).await?;
        apply_stage(cluster, &resolved, &current, &old, opts, &mut summary).await?;
        wait_established(cluster, &resolved).await?;
        for d in &crds {
            for version in crd_versions(&d.body) {
                cluster.forget(&version);
            }
        }
    }

    // Everything else, once kinds are known.
    let mut unknown_kinds = Vec::new();
    let mut rest_resolved = Vec::new();
    for mut d in rest {
        match resource(cluster, &d).await? {
            None => unknown_kinds.push(unknown(&d)),
            Some(r) => {
                set_namespace(&mut d, &r, opts.namespace);
                rest_resolved.push((d, r));
            }
        }
    }
    Error::many(unknown_kinds)?;
    // Namespaces may have changed: the inventory records the final names.
    let ids: BTreeSet<ObjectId> = resolved
        .iter()
        .chain(&rest_resolved)
        .map(|(d, _)| d.id.clone())
        .collect();
    if crds.is_empty() {
        remember(&client, opts, &old, &ids).await?;
    }
    let current = current(cluster, opts.app, &rest_resolved).await?;
    let mut errors = Vec::new();
    for s in 1..=3 {
        let batch: Vec<(Desired, Resource)> = rest_resolved
            .iter()
            .filter(|(d, r)| stage(&d.id, r.namespaced) == s)
            .cloned()
            .collect();
        if let Err(e) = apply_stage(cluster, &batch, &current, &old, opts, &mut summary).await {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        // Nothing is pruned after a failed apply; the inventory keeps old and new.
        return Error::many(errors).map(|()| summary);
    }

    // Prune what left git, then record what the app now holds.
    let mut keep = ids.clone();
    let mut failed = Vec::new();
    if opts.prune {
        let gone: Vec<ObjectId> = old.difference(&ids).cloned().collect();
        let (pruned, not_pruned) = prune(cluster, opts.app, gone).await;
        summary.pruned = pruned;
        keep.extend(not_pruned.iter().map(|(id, _)| id.clone()));
        failed = not_pruned;
    }
    let unchanged = recorded.objects == keep && recorded.revision.as_deref() == Some(opts.revision);
    if !unchanged {
        inventory::store(
            &client,
            opts.inventory_namespace,
            opts.app,
            opts.field_manager,
            opts.revision,
            &keep,
        )
        .await?;
    }
    Error::many(
        failed
            .into_iter()
            .map(|(id, message)| Error::Prune {
                id: id.to_string(),
                message,
            })
            .collect(),
    )?;

    if let Some(timeout) = opts.wait {
        let all: Vec<(Desired, Resource)> = resolved.into_iter().chain(rest_resolved).collect();
        wait_healthy(cluster, &all, timeout).await?;
    }
    Ok(summary)
}

/// The objects an apply would send, resolved against the cluster's kinds.
pub struct Plan {
    pub objects: Vec<Planned>,
}

pub struct Planned {
    pub id: ObjectId,
    pub position: String,
    pub body: Value,
    /// `None`: the kind comes from a CRD of the same app, not yet served.
    pub resource: Option<Resource>,
}

impl Planned {
    pub fn error(&self, message: String, retryable: bool) -> Error {
        Error::Object {
            id: self.id.to_string(),
            position: self.position.clone(),
            message,
            retryable,
        }
    }
}

/// Resolve what `manifests` would apply, in apply order, without writing.
pub async fn plan(cluster: &Cluster, manifests: &[Manifest], opts: &Options<'_>) -> Result<Plan, Error> {
    let objects = desired(manifests, opts.app)?;
    let defined: BTreeSet<(String, String)> = objects
        .iter()
        .filter(|d| stage(&d.id, false) == 0)
        .flat_map(|d| {
            let kind = d.body["spec"]["names"]["kind"].as_str().unwrap_or("").to_string();
            crd_versions(&d.body).into_iter().map(move |v| (v, kind.clone()))
        })
        .collect();
    let mut planned = Vec::new();
    let mut errors = Vec::new();
    for mut d in objects {
        match resource(cluster, &d).await? {
            Some(r) => {
                set_namespace(&mut d, &r, opts.namespace);
                let order = stage(&d.id, r.namespaced);
                planned.push((order, d, Some(r)));
            }
            None if defined.contains(&(d.id.api_version.clone(), d.id.kind.clone())) => {
                if d.id.namespace.is_none() || opts.namespace.is_some() {
                    // Most custom kinds are namespaced; the CRD decides for real.
                    let r = Resource {
                        api: kube::api::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
                            d.id.group(),
                            d.id.api_version.rsplit('/').next().unwrap_or(""),
                            &d.id.kind,
                        )),
                        namespaced: true,
                    };
                    set_namespace(&mut d, &r, opts.namespace);
                }
                planned.push((4, d, None));
            }
            None => errors.push(unknown(&d)),
        }
    }
    Error::many(errors)?;
    planned.sort_by_key(|(order, _, _)| *order);
    Ok(Plan {
        objects: planned
            .into_iter()
            .map(|(_, d, resource)| Planned {
                id: d.id,
                position: d.position,
                body: d.body,
                resource,
            })
            .collect(),
    })
}

fn unknown(d: &Desired) -> Error {
    Error::UnknownKind {
        id: d.id.to_string(),
        position: d.position.clone(),
        api_version: d.id.api_version.clone(),
        kind: d.id.kind.clone(),
    }
}

async fn resource(cluster: &Cluster, d: &Desired) -> Result<Option<Resource>, Error> {
    cluster
        .resource(&d.id.api_version, &d.id.kind)
        .await
        .map_err(|e| Error::Unreachable(format!("discovery of {}: {}", d.id.api_version, message(&e))))
}

/// Namespaced objects go to the app's namespace (or keep their own, or
/// `default`); cluster-scoped ones have none.
fn set_namespace(d: &mut Desired, r: &Resource, app_namespace: Option<&str>) {
    let ns = if r.namespaced {
        Some(
            app_namespace
                .map(str::to_string)
                .or_else(|| d.id.namespace.clone())
                .unwrap_or_else(|| "default".into()),
        )
    } else {
        None
    };
    d.id.namespace = ns.clone();
    if let Some(meta) = d.body.get_mut("metadata").and_then(Value::as_object_mut) {
        match ns {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
}

/// Before creating anything the inventory does not list, record it, so a
/// crash between the apply and the final inventory cannot orphan objects.
async fn remember(
    client: &kube::Client,
    opts: &Options<'_>,
    old: &BTreeSet<ObjectId>,
    new: &BTreeSet<ObjectId>,
) -> Result<(), Error> {
    if new.is_subset(old) {
        return Ok(());
    }
    let union: BTreeSet<ObjectId> = old.union(new).cloned().collect();
    inventory::store(
        client,
        opts.inventory_namespace,
        opts.app,
        opts.field_manager,
        opts.revision,
        &union,
    )
    .await?;
    Ok(())
}

/// The resourceVersions of this app's objects now, to tell "unchanged"
/// from "configured" after the apply: one list per kind.
async fn current(
    cluster: &Cluster,
    app: &str,
    objects: &[(Desired, Resource)],
) -> Result<HashMap<ObjectId, String>, Error> {
    let mut kinds: Vec<&Resource> = Vec::new();
    for (_, r) in objects {
        if !kinds.iter().any(|k| k.api == r.api) {
            kinds.push(r);
        }
    }
    // One list per kind, all at once.
    let params = ListParams::default().labels(&format!("{OWNER_LABEL}={app}"));
    let mut lists = JoinSet::new();
    for r in kinds {
        let (api, params, r) = (cluster.api(r, None), params.clone(), r.api.clone());
        lists.spawn(async move { (api.list(&params).await, r) });
    }
    let mut out = HashMap::new();
    while let Some(joined) = lists.join_next().await {
        let (list, r) = joined.map_err(|e| Error::Unreachable(format!("a list task failed: {e}")))?;
        let list = list.map_err(|e| Error::Unreachable(format!("listing {}: {}", r.plural, message(&e))))?;
        for o in list.items {
            let id = ObjectId {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: o.metadata.namespace,
                name: o.metadata.name.unwrap_or_default(),
            };
            out.insert(id, o.metadata.resource_version.unwrap_or_default());
        }
    }
    Ok(out)
}

enum Applied {
    Created,
    Configured,
    Unchanged,
}

async fn apply_stage(
    cluster: &Cluster,
    batch: &[(Desired, Resource)],
    current: &HashMap<ObjectId, String>,
    old: &BTreeSet<ObjectId>,
    opts: &Options<'_>,
    summary: &mut Summary,
) -> Result<(), Error> {
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    for (d, r) in batch {
        let api = cluster.api(r, d.id.namespace.as_deref());
        let params = PatchParams {
            field_manager: Some(opts.field_manager.to_string()),
            force: opts.force,
            ..PatchParams::default()
        };
        let before = current.get(&d.id).cloned();
        let known = old.contains(&d.id);
        let (d, limit, recreate) = (d.clone(), limit.clone(), opts.recreate);
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let result = apply_one(&api, &d, &params, recreate).await;
            (
                d,
                result.map(|rv| match (before, rv) {
                    (None, _) if !known => Applied::Created,
                    (Some(b), Some(a)) if b == a => Applied::Unchanged,
                    _ => Applied::Configured,
                }),
            )
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((_, Ok(Applied::Created))) => summary.created += 1,
            Ok((_, Ok(Applied::Configured))) => summary.configured += 1,
            Ok((_, Ok(Applied::Unchanged))) => summary.unchanged += 1,
            Ok((_, Err(e))) => errors.push(e),
            Err(e) => errors.push(Error::Unreachable(format!("an apply task failed: {e}"))),
        }
    }
    errors.sort_by_key(|e| e.to_string());
    Error::many(errors)
}

/// Server-side apply one object; its resourceVersion after.
async fn apply_one(
    api: &kube::Api<kube::api::DynamicObject>,
    d: &Desired,
    params: &PatchParams,
    recreate: bool,
) -> Result<Option<String>, Error> {
    let fail = |e: &kube::Error| {
        let (msg, retryable) = match e {
            kube::Error::Api(s) if s.code == 409 => (
                format!(
                    "{} (set `force #true` on the app to take these fields over)",
                    s.message
                ),
                true,
            ),
            kube::Error::Api(s) => (s.message.clone(), !matches!(s.code, 400 | 422)),
            other => (message(other), true),
        };
        Error::Object {
            id: d.id.to_string(),
            position: d.position.clone(),
            message: msg,
            retryable,
        }
    };
    match api.patch(&d.id.name, params, &Patch::Apply(&d.body)).await {
        Ok(o) => Ok(o.metadata.resource_version),
        // Drift: fields someone changed by hand (`kubectl edit`, `patch`,
        // `scale`) are taken back; fields another apply manager holds are a
        // real conflict.
        Err(kube::Error::Api(s))
            if s.code == 409 && !params.force && changed_by_hand(api, &d.id.name, &s.message).await =>
        {
            tracing::info!("{}: undoing changes made outside git ({})", d.id, s.message);
            let forced = PatchParams {
                force: true,
                ..params.clone()
            };
            let o = api
                .patch(&d.id.name, &forced, &Patch::Apply(&d.body))
                .await
                .map_err(|e| fail(&e))?;
            Ok(o.metadata.resource_version)
        }
        Err(kube::Error::Api(s)) if recreate && s.code == 422 && s.message.contains("immutable") => {
            tracing::info!(
                "{}: an immutable field changed; deleting and creating it again",
                d.id
            );
            api.delete(&d.id.name, &DeleteParams::foreground())
                .await
                .map_err(|e| fail(&e))?;
            let deadline = Instant::now() + Duration::from_secs(60);
            while api.get_opt(&d.id.name).await.map_err(|e| fail(&e))?.is_some() {
                if Instant::now() > deadline {
                    return Err(Error::Object {
                        id: d.id.to_string(),
                        position: d.position.clone(),
                        message: "deleted to be recreated, but still there after 60s".into(),
                        retryable: true,
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let o = api
                .patch(&d.id.name, params, &Patch::Apply(&d.body))
                .await
                .map_err(|e| fail(&e))?;
            Ok(o.metadata.resource_version)
        }
        Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("immutable") => Err(Error::Object {
            id: d.id.to_string(),
            position: d.position.clone(),
            message: format!("{} (set `recreate #true` on the app to replace it)", s.message),
            retryable: false,
        }),
        Err(e) => Err(fail(&e)),
    }
}

/// Whether every manager a conflict names changed its fields with an
/// update (`kubectl edit`, `patch`, `scale`), not with an apply of its own.
async fn changed_by_hand(api: &kube::Api<kube::api::DynamicObject>, name: &str, conflict: &str) -> bool {
    let managers = conflicting_managers(conflict);
    if managers.is_empty() {
        return false;
    }
    let Ok(Some(live)) = api.get_opt(name).await else {
        return false;
    };
    let entries = live.metadata.managed_fields.unwrap_or_default();
    managers.iter().all(|m| {
        let ops: Vec<&str> = entries
            .iter()
            .filter(|e| e.manager.as_deref() == Some(m.as_str()))
            .filter_map(|e| e.operation.as_deref())
            .collect();
        !ops.is_empty() && ops.iter().all(|op| *op == "Update")
    })
}

/// The managers named in an API server's conflict message:
/// `Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas`.
fn conflicting_managers(message: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = message;
    while let Some(at) = rest.find("with \"") {
        rest = &rest[at + 6..];
        if let Some(end) = rest.find('"') {
            let m = rest[..end].to_string();
            if !out.contains(&m) {
                out.push(m);
            }
            rest = &rest[end..];
        }
    }
    out
}

/// The `group/version`s a CRD serves.
fn crd_versions(crd: &Value) -> Vec<String> {
    let group = crd["spec"]["group"].as_str().unwrap_or("");
    crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["name"].as_str())
                .map(|v| format!("{group}/{v}"))
                .collect()
        })
        .unwrap_or_default()
}

async fn wait_established(cluster: &Cluster, crds: &[(Desired, Resource)]) -> Result<(), Error> {
    wait_healthy(cluster, crds, CRD_WAIT).await
}

/// Poll until every object is healthy, at most `timeout`.
async fn wait_healthy(
    cluster: &Cluster,
    objects: &[(Desired, Resource)],
    timeout: Duration,
) -> Result<(), Error> {
    let started = Instant::now();
    let mut pending: Vec<&(Desired, Resource)> = objects.iter().collect();
    let mut delay = Duration::from_millis(100);
    let mut why: Vec<String>;
    loop {
        why = Vec::new();
        let mut still = Vec::new();
        for item in pending {
            let (d, r) = item;
            let live = cluster
                .api(r, d.id.namespace.as_deref())
                .get_opt(&d.id.name)
                .await
                .map_err(|e| Error::Unreachable(format!("reading {}: {}", d.id, message(&e))))?;
            let h = match live {
                Some(o) => health(&serde_json::to_value(&o).unwrap_or_default()),
                None => Health::Progressing("not found".into()),
            };
            match h {
                Health::Ready => {}
                Health::Progressing(m) => {
                    why.push(format!("{}: {m}", d.id));
                    still.push(item);
                }
                Health::Failed(m) => {
                    return Err(Error::NotReady {
                        waited: started.elapsed(),
                        objects: vec![format!("{}: {m}", d.id)],
                    });
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(Error::NotReady {
                waited: timeout,
                objects: why,
            });
        }
        let left = timeout.saturating_sub(started.elapsed());
        tokio::time::sleep(delay.min(left)).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Delete objects that left git, namespaced ones first. Returns how many
/// went, and those that could not (with why).
async fn prune(cluster: &Cluster, app: &str, mut gone: Vec<ObjectId>) -> (usize, Vec<(ObjectId, String)>) {
    // Reverse apply order: namespaced objects, cluster-scoped, namespaces, CRDs.
    gone.sort_by_key(|id| {
        std::cmp::Reverse(match (id.group(), id.kind.as_str()) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") => 0,
            ("", "Namespace") => 1,
            _ if id.namespace.is_none() => 2,
            _ => 3,
        })
    });
    let mut pruned = 0;
    let mut failed = Vec::new();
    for id in gone {
        let api = match cluster.api_for(&id).await {
            Ok(Some((_, api))) => api,
            // The kind is gone (its CRD was deleted): so are its objects.
            Ok(None) => continue,
            Err(e) => {
                failed.push((id, message(&e)));
                continue;
            }
        };
        let live = match api.get_opt(&id.name).await {
            Ok(Some(o)) => o,
            Ok(None) => continue,
            Err(e) => {
                failed.push((id, message(&e)));
                continue;
            }
        };
        let annotations = live.metadata.annotations.unwrap_or_default();
        if annotations.get(PRUNE_ANNOTATION).map(String::as_str) == Some("disabled") {
            tracing::info!("{id}: kept ({PRUNE_ANNOTATION}: disabled)");
            continue;
        }
        let labels = live.metadata.labels.unwrap_or_default();
        if labels.get(OWNER_LABEL).map(String::as_str) != Some(app) {
            tracing::info!("{id}: kept (another owner has taken it over)");
            continue;
        }
        match api.delete(&id.name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!("{id}: pruned");
                pruned += 1;
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => failed.push((id, message(&e))),
        }
    }
    (pruned, failed)
}

/// A client error in one line, without the request it came from.
pub fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => {
            let mut s = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                s = format!("{s}: {inner}");
                source = inner.source();
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(api_version: &str, kind: &str) -> ObjectId {
        ObjectId {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: None,
            name: "x".into(),
        }
    }

    #[test]
    fn stages_order_crds_namespaces_cluster_then_namespaced() {
        assert_eq!(
            stage(&id("apiextensions.k8s.io/v1", "CustomResourceDefinition"), false),
            0
        );
        assert_eq!(stage(&id("v1", "Namespace"), false), 1);
        assert_eq!(
            stage(&id("rbac.authorization.k8s.io/v1", "ClusterRole"), false),
            2
        );
        assert_eq!(stage(&id("apps/v1", "Deployment"), true), 3);
    }

    #[test]
    fn conflict_messages_name_their_managers() {
        let one =
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using apps/v1: .spec.replicas";
        assert_eq!(conflicting_managers(one), ["kubectl-edit"]);
        let two = "Apply failed with 2 conflicts: conflicts with \"a\":\n- .x\nconflicts with \"b\" using v1:\n- .y";
        assert_eq!(conflicting_managers(two), ["a", "b"]);
        assert!(conflicting_managers("something else").is_empty());
    }

    #[test]
    fn crd_versions_are_group_slash_version() {
        let crd =
            serde_json::json!({"spec": {"group": "x.io", "versions": [{"name": "v1"}, {"name": "v2"}]}});
        assert_eq!(crd_versions(&crd), ["x.io/v1", "x.io/v2"]);
    }
}
