//! Applying an app's objects to a cluster with server-side apply, under
//! mooring's field manager, in order: CRDs (then wait until they are
//! established), Namespaces, other cluster-scoped objects, namespaced ones;
//! with bounded parallelism inside each stage. Then prune what the app's
//! inventory lists but git no longer has, record the new inventory, and
//! (with `wait`) wait until what was applied is healthy.
//!
//! Rules for what comes from outside: every object's name is checked for
//! its kind before any request ([`super::names`]); what the server answers
//! is read from the structured `details.causes` of its `Status` (apply
//! conflicts, immutable fields, a terminating namespace), never from the
//! wording of its message; nothing is pruned unless the apply succeeded
//! and the live object still carries this app's owner label.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams};
use kube::core::Status;
use serde_json::Value;
use tokio::task::JoinSet;

use super::Summary;
use super::cluster::{Cluster, Objects, Resource};
use super::health::{Health, health};
use super::stamps::{self, Live};
use super::{inventory, names};
use crate::reason::{Classify, Reason};
use crate::render::{Manifest, ObjectId};

/// The label every applied object carries (value: the app).
pub const OWNER_LABEL: &str = "app.mooring.dev/name";
/// An object annotated `mooring.dev/prune: disabled` is never deleted by prune.
pub const PRUNE_ANNOTATION: &str = "mooring.dev/prune";
/// Requests in flight per stage.
const PARALLEL: usize = 16;
/// How long CRDs may take to become established before their objects apply.
const CRD_WAIT: Duration = Duration::from_secs(60);
/// How long a delete may take: of an object `recreate` replaces, of a
/// namespace that comes back while it is still terminating.
const DELETE_WAIT: Duration = Duration::from_secs(60);

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
    /// Apply objects nobody changed again once their last apply is this
    /// old (`None`: only what git or someone else changed is applied).
    pub reapply: Option<Duration>,
}

impl<'a> Options<'a> {
    /// What the config says for `app` applying `revision` (`wait` and
    /// `reapply` included).
    pub fn for_app(cfg: &'a crate::config::Config, app: &'a crate::config::App, revision: &'a str) -> Self {
        Options {
            app: &app.name,
            field_manager: &cfg.agent.field_manager,
            namespace: app.namespace.as_deref(),
            force: app.force,
            recreate: app.recreate,
            prune: app.prune,
            inventory_namespace: &cfg.agent.inventory_namespace,
            revision,
            wait: app.wait.as_ref().map(|w| w.timeout),
            reapply: cfg.agent.reapply,
        }
    }
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

impl Error {}

/// An object ready to be applied.
#[derive(Clone)]
struct Desired {
    id: ObjectId,
    position: String,
    /// Shared with the apply tasks, which outlive the stage's borrow.
    body: Arc<Value>,
    /// The body's digest as sent ([`Desired::sent`]), once asked for.
    sent: OnceLock<stamps::Digest>,
}

impl Desired {
    /// The digest of the body as `opts` send it (the same for the whole apply).
    fn sent(&self, opts: &Options<'_>) -> stamps::Digest {
        *self
            .sent
            .get_or_init(|| stamps::sent(&self.body, opts.field_manager, opts.force))
    }
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
fn desired(manifests: Vec<Manifest>, app: &str) -> Result<Vec<Desired>, Error> {
    let mut out = Vec::with_capacity(manifests.len());
    let mut errors = Vec::new();
    for m in manifests {
        if let Err(why) = names::check(&m.id) {
            errors.push(Error::Object {
                id: m.id.to_string(),
                position: m.position(),
                message: why,
                retryable: false,
            });
            continue;
        }
        let position = m.position();
        let mut body = m.object;
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
            id: m.id,
            position,
            body: Arc::new(body),
            sent: OnceLock::new(),
        });
    }
    crate::reason::one_or_many(Error::Many, errors)?;
    Ok(out)
}

/// Apply `manifests` for the app `opts.app`.
pub async fn apply(
    cluster: &Cluster,
    manifests: Vec<Manifest>,
    opts: &Options<'_>,
) -> Result<Summary, Error> {
    let objects = desired(manifests, opts.app)?;
    let progress = crate::progress::start(
        format!("applying app/{}", opts.app),
        crate::progress::Unit::Items("objects"),
        Some(objects.len() as u64),
    );
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
        let current = current(cluster, opts, &resolved).await?;
        apply_stage(cluster, &resolved, &current, &old, opts, &mut summary, &progress).await?;
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
    crate::reason::one_or_many(Error::Many, unknown_kinds)?;
    // Namespaces may have changed: the inventory records the final names.
    let ids: BTreeSet<ObjectId> = resolved
        .iter()
        .chain(&rest_resolved)
        .map(|(d, _)| d.id.clone())
        .collect();
    if crds.is_empty() {
        remember(&client, opts, &old, &ids).await?;
    }
    let current = current(cluster, opts, &rest_resolved).await?;
    let mut errors = Vec::new();
    for s in 1..=3 {
        let batch: Vec<(Desired, Resource)> = rest_resolved
            .iter()
            .filter(|(d, r)| stage(&d.id, r.namespaced) == s)
            .cloned()
            .collect();
        if let Err(e) = apply_stage(cluster, &batch, &current, &old, opts, &mut summary, &progress).await {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        // Nothing is pruned after a failed apply; the inventory keeps old and new.
        return crate::reason::one_or_many(Error::Many, errors).map(|()| summary);
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
    cluster.stamps().retain(opts.app, |id| ids.contains(id));
    for (_, r) in resolved.iter().chain(&rest_resolved) {
        cluster.watch(r);
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
    not_pruned(failed)?;

    if let Some(timeout) = opts.wait {
        let all: Vec<(Desired, Resource)> = resolved.into_iter().chain(rest_resolved).collect();
        wait_healthy(cluster, &all, timeout).await?;
    }
    Ok(summary)
}

/// The app `app` leaves `cluster`: delete every object its inventory
/// there lists, with prune's rules (reverse apply order; an object
/// annotated `mooring.dev/prune: disabled` or taken over by another owner
/// is kept), then the inventory. After a failure the inventory stays, for
/// the next attempt.
pub async fn remove(cluster: &Cluster, app: &str, inventory_namespace: &str) -> Result<Summary, Error> {
    let client = cluster.client();
    let recorded = inventory::load(client, inventory_namespace, app).await?;
    // Its own deletes are not drift: the app no longer watches here.
    cluster.stamps().retain(app, |_| false);
    let (pruned, failed) = prune(cluster, app, recorded.objects.into_iter().collect()).await;
    not_pruned(failed)?;
    inventory::delete(client, inventory_namespace, app).await?;
    Ok(Summary {
        pruned,
        ..Summary::default()
    })
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
pub async fn plan(cluster: &Cluster, manifests: Vec<Manifest>, opts: &Options<'_>) -> Result<Plan, Error> {
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
    crate::reason::one_or_many(Error::Many, errors)?;
    planned.sort_by_key(|(order, _, _)| *order);
    Ok(Plan {
        objects: planned
            .into_iter()
            .map(|(_, d, resource)| Planned {
                id: d.id,
                position: d.position,
                body: Arc::unwrap_or_clone(d.body),
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
    d.sent = OnceLock::new();
    if let Some(meta) = Arc::make_mut(&mut d.body)
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
    {
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

/// This app's objects as they are now, to tell "unchanged" from
/// "configured" after the apply and untouched objects from ones someone
/// changed ([`stamps`]): one list per kind and namespace
/// (cluster-wide only for cluster-scoped kinds, so that an identity with
/// rights in some namespaces only can apply there). A kind and namespace
/// whose objects the stamps all vouch for, while the kind's watch is
/// live, is not listed: the watch would have cleared a stamp that no
/// longer holds.
async fn current(
    cluster: &Cluster,
    opts: &Options<'_>,
    objects: &[(Desired, Resource)],
) -> Result<HashMap<ObjectId, Live>, Error> {
    let mut scopes: Vec<(&Resource, Option<&str>, Vec<&Desired>)> = Vec::new();
    for (d, r) in objects {
        let ns = d.id.namespace.as_deref().filter(|_| r.namespaced);
        match scopes.iter_mut().find(|(k, n, _)| k.api == r.api && *n == ns) {
            Some((_, _, members)) => members.push(d),
            None => scopes.push((r, ns, vec![d])),
        }
    }
    let mut out = HashMap::new();
    // All lists at once.
    let params = ListParams::default().labels(&format!("{OWNER_LABEL}={}", opts.app));
    let mut lists = JoinSet::new();
    for (r, ns, members) in scopes {
        if let Some(vouched) = vouched(cluster, opts, r, &members) {
            out.extend(vouched);
            continue;
        }
        let (api, params, r) = (cluster.api(r, ns), params.clone(), r.api.clone());
        lists.spawn(async move { (api.list_metadata(&params).await, r) });
    }
    while let Some(joined) = lists.join_next().await {
        let (list, r) = joined.map_err(|e| Error::Unreachable(format!("a list task failed: {e}")))?;
        let list = match list {
            Ok(list) => list,
            // Not allowed to list: the counts of these objects are less
            // exact, and their applies say whether they are allowed at all.
            Err(kube::Error::Api(s)) if s.code == 403 => {
                tracing::debug!("listing {}: {}", r.plural, s.message);
                continue;
            }
            Err(e) => {
                return Err(Error::Unreachable(format!(
                    "listing {}: {}",
                    r.plural,
                    message(&e)
                )));
            }
        };
        for o in list.items {
            let live = Live::of(&o.metadata);
            let id = ObjectId {
                api_version: r.api_version.clone(),
                kind: r.kind.clone(),
                namespace: o.metadata.namespace,
                name: o.metadata.name.unwrap_or_default(),
            };
            out.insert(id, live);
        }
    }
    Ok(out)
}

/// What the stamps say of `members` (objects of kind `r`), if they vouch
/// for every one of them while `r`'s watch is live.
fn vouched(
    cluster: &Cluster,
    opts: &Options<'_>,
    r: &Resource,
    members: &[&Desired],
) -> Option<Vec<(ObjectId, Live)>> {
    if !cluster.watch_is_live(r) {
        return None;
    }
    members
        .iter()
        .map(|d| {
            let sent = d.sent(opts);
            let live = cluster.stamps().vouched(opts.app, &d.id, &sent, opts.reapply)?;
            Some((d.id.clone(), live))
        })
        .collect()
}

enum Applied {
    Created,
    Configured,
    Unchanged,
}

async fn apply_stage(
    cluster: &Cluster,
    batch: &[(Desired, Resource)],
    current: &HashMap<ObjectId, Live>,
    old: &BTreeSet<ObjectId>,
    opts: &Options<'_>,
    summary: &mut Summary,
    progress: &crate::progress::Task,
) -> Result<(), Error> {
    let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = JoinSet::new();
    for (d, r) in batch {
        let sent = d.sent(opts);
        let before = current.get(&d.id);
        if cluster
            .stamps()
            .unchanged(opts.app, &d.id, &sent, before, opts.reapply)
        {
            summary.unchanged += 1;
            continue;
        }
        cluster.stamps().applying(opts.app, &d.id);
        let api = cluster.api(r, d.id.namespace.as_deref());
        let params = PatchParams {
            field_manager: Some(opts.field_manager.to_string()),
            force: opts.force,
            ..PatchParams::default()
        };
        let before = before.map(|l| l.resource_version.clone());
        let known = old.contains(&d.id);
        let (d, limit, recreate) = (d.clone(), limit.clone(), opts.recreate);
        tasks.spawn(async move {
            let _permit = limit.acquire().await;
            let result = apply_one(&api, &d, &params, recreate).await;
            (
                d,
                sent,
                result.map(|(answer, recreated)| {
                    let applied = match (&before, &answer.resource_version) {
                        (None, _) if !known => Applied::Created,
                        (Some(b), Some(a)) if b == a => Applied::Unchanged,
                        _ => Applied::Configured,
                    };
                    (applied, Live::of(&answer), recreated)
                }),
            )
        });
    }
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        progress.inc(1);
        match joined {
            Ok((d, sent, Ok((applied, live, recreated)))) => {
                cluster.stamps().record(opts.app, &d.id, sent, live);
                match applied {
                    Applied::Created => summary.created += 1,
                    Applied::Configured => summary.configured += 1,
                    Applied::Unchanged => summary.unchanged += 1,
                }
                if recreated {
                    summary.recreated.push(d.id.to_string());
                }
            }
            Ok((d, _, Err(e))) => {
                cluster.stamps().forget(opts.app, &d.id);
                errors.push(e);
            }
            Err(e) => errors.push(Error::Unreachable(format!("an apply task failed: {e}"))),
        }
    }
    summary.recreated.sort();
    errors.sort_by_key(|e| e.to_string());
    crate::reason::one_or_many(Error::Many, errors)
}

/// Server-side apply one object: its metadata after, and whether it was
/// deleted and created again (`recreate`).
async fn apply_one(
    api: &Objects,
    d: &Desired,
    params: &PatchParams,
    recreate: bool,
) -> Result<(ObjectMeta, bool), Error> {
    let object_error = |message: String, retryable: bool| Error::Object {
        id: d.id.to_string(),
        position: d.position.clone(),
        message,
        retryable,
    };
    let fail = |e: &kube::Error| match e {
        kube::Error::Api(s) => {
            let conflicts = conflicts(s);
            if s.code == 409 && !conflicts.is_empty() {
                return object_error(
                    format!(
                        "other managers own fields this apply sets: {} (set `force #true` on the app to take these fields over)",
                        describe(&conflicts)
                    ),
                    true,
                );
            }
            if let Some(ns) = terminating_namespace(s) {
                return object_error(
                    format!(
                        "namespace {ns:?} is being deleted (Terminating): objects can be created in it once it is gone and applied again"
                    ),
                    true,
                );
            }
            let mut text = s.message.clone();
            if s.code == 403 {
                text.push_str(" (the cluster's credentials do not allow this: grant the permission, or leave the object out of the app)");
            }
            object_error(text, !matches!(s.code, 400 | 422))
        }
        other => object_error(message(other), true),
    };
    let answer = match api.apply(&d.id.name, params, &Patch::Apply(&*d.body)).await {
        Ok(o) => o,
        // Drift: fields someone changed by hand (`kubectl edit`, `patch`,
        // `scale`) are taken back; fields another apply manager holds are a
        // real conflict.
        Err(kube::Error::Api(s))
            if s.code == 409 && !params.force && changed_by_hand(api, &d.id.name, &s).await =>
        {
            tracing::info!(
                "{}: undoing changes made outside git: {}",
                d.id,
                describe(&conflicts(&s))
            );
            let forced = PatchParams {
                force: true,
                ..params.clone()
            };
            api.apply(&d.id.name, &forced, &Patch::Apply(&*d.body))
                .await
                .map_err(|e| fail(&e))?
        }
        Err(kube::Error::Api(s)) if s.code == 422 && !immutable_fields(&s).is_empty() => {
            let fields = immutable_fields(&s).join(", ");
            if !recreate {
                return Err(object_error(
                    format!(
                        "{} cannot change once set: {} (set `recreate #true` on the app to delete and create it again)",
                        fields, s.message
                    ),
                    false,
                ));
            }
            tracing::info!(
                "{}: {fields} cannot change once set; deleting it, waiting until it is gone, creating it again (recreate #true)",
                d.id
            );
            let o = replace(api, d, params).await.map_err(|e| match e {
                Replace::Api(e) => fail(&e),
                Replace::StillThere(why) => object_error(why, true),
            })?;
            tracing::info!("{}: recreated", d.id);
            return Ok((o.metadata, true));
        }
        Err(e) => return Err(fail(&e)),
    };
    if d.id.group().is_empty() && d.id.kind == "Namespace" && answer.metadata.deletion_timestamp.is_some() {
        // A namespace pruned a moment ago is back in git while the cluster
        // still deletes it: wait until it is gone, then create it anew.
        tracing::info!(
            "{}: still being deleted (Terminating); waiting to create it again",
            d.id
        );
        let o = after_delete(api, d, params, answer.metadata.uid.clone())
            .await
            .map_err(|e| match e {
                Replace::Api(e) => fail(&e),
                Replace::StillThere(why) => object_error(why, true),
            })?;
        return Ok((o.metadata, false));
    }
    Ok((answer.metadata, false))
}

enum Replace {
    Api(kube::Error),
    StillThere(String),
}

/// `recreate`: delete (foreground: what it owns goes first), wait until it
/// is gone, apply again.
async fn replace(
    api: &Objects,
    d: &Desired,
    params: &PatchParams,
) -> Result<kube::api::PartialObjectMeta<kube::api::DynamicObject>, Replace> {
    let uid = api
        .get_opt(&d.id.name)
        .await
        .map_err(Replace::Api)?
        .and_then(|o| o.metadata.uid);
    match api.delete(&d.id.name, &DeleteParams::foreground()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(Replace::Api(e)),
    }
    after_delete(api, d, params, uid).await
}

/// Wait (at most [`DELETE_WAIT`]) until the object with `uid` is gone,
/// then apply `d`: it is created anew.
async fn after_delete(
    api: &Objects,
    d: &Desired,
    params: &PatchParams,
    uid: Option<String>,
) -> Result<kube::api::PartialObjectMeta<kube::api::DynamicObject>, Replace> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let live = api.get_opt(&d.id.name).await.map_err(Replace::Api)?;
        let Some(live) = live.filter(|o| uid.is_none() || o.metadata.uid == uid) else {
            break;
        };
        if started.elapsed() >= DELETE_WAIT {
            let finalizers = live.metadata.finalizers.unwrap_or_default();
            let held = if finalizers.is_empty() {
                String::new()
            } else {
                format!(", held by the finalizers {}", finalizers.join(", "))
            };
            return Err(Replace::StillThere(format!(
                "deleted to be created again, but still there after {}{held}; applied again on the next run",
                humantime::format_duration(DELETE_WAIT)
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
    api.apply(&d.id.name, params, &Patch::Apply(&*d.body))
        .await
        .map_err(Replace::Api)
}

/// One field of an apply conflict: who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Conflict {
    manager: String,
    /// `scale`, `status`; empty for the main resource.
    subresource: String,
    field: String,
}

/// The conflicts of a 409 from its `details.causes`
/// (`FieldManagerConflict`, one per field; the message names the owner as
/// `conflict with "NAME"`, then ` with subresource "S"`, ` using V`).
fn conflicts(s: &Status) -> Vec<Conflict> {
    let Some(details) = &s.details else {
        return Vec::new();
    };
    details
        .causes
        .iter()
        .filter(|c| c.reason == "FieldManagerConflict")
        .filter_map(|c| {
            let rest = c.message.strip_prefix("conflict with ")?;
            let (manager, rest) = go_quoted(rest)?;
            let subresource = rest
                .strip_prefix(" with subresource ")
                .and_then(go_quoted)
                .map(|(s, _)| s)
                .unwrap_or_default();
            Some(Conflict {
                manager,
                subresource,
                field: c.field.clone(),
            })
        })
        .collect()
}

/// `.spec.replicas ("kubectl-edit"), .data.x ("other")`.
fn describe(conflicts: &[Conflict]) -> String {
    conflicts
        .iter()
        .map(|c| {
            let sub = if c.subresource.is_empty() {
                String::new()
            } else {
                format!(" through {}", c.subresource)
            };
            format!("{} ({:?}{sub})", c.field, c.manager)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A Go `%q` string at the start of `s`: its value and what follows.
fn go_quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &s[i + 2..])),
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

/// Whether every manager a conflict names changed its fields with an
/// update (`kubectl edit`, `patch`, `scale`), not with an apply of its own:
/// their entries in the live object's `managedFields`.
async fn changed_by_hand(api: &Objects, name: &str, s: &Status) -> bool {
    let conflicts = conflicts(s);
    if conflicts.is_empty() {
        return false;
    }
    let Ok(Some(live)) = api.get_opt(name).await else {
        return false;
    };
    let entries = live.metadata.managed_fields.unwrap_or_default();
    conflicts.iter().all(|c| {
        let ops: Vec<&str> = entries
            .iter()
            .filter(|e| e.manager.as_deref() == Some(c.manager.as_str()))
            .filter(|e| e.subresource.as_deref().unwrap_or("") == c.subresource)
            .filter_map(|e| e.operation.as_deref())
            .collect();
        !ops.is_empty() && ops.iter().all(|op| *op == "Update")
    })
}

/// The fields a 422 says cannot change, from its `details.causes`: field
/// errors whose detail is apimachinery's "field is immutable", a Service's
/// "may not change once set", or a StatefulSet's "updates to … are
/// forbidden".
fn immutable_fields(s: &Status) -> Vec<String> {
    let Some(details) = &s.details else {
        return Vec::new();
    };
    details
        .causes
        .iter()
        .filter(|c| match c.reason.as_str() {
            "FieldValueInvalid" => {
                c.message.ends_with("field is immutable") || c.message.ends_with("may not change once set")
            }
            "FieldValueForbidden" => {
                c.message.contains("field is immutable")
                    || (c.message.contains("updates to ") && c.message.contains(" are forbidden"))
            }
            _ => false,
        })
        .map(|c| c.field.clone())
        .collect()
}

/// The namespace a 403 names when it refuses to create in a namespace
/// that is being deleted (cause `NamespaceTerminating`).
fn terminating_namespace(s: &Status) -> Option<String> {
    let details = s.details.as_ref()?;
    details
        .causes
        .iter()
        .find(|c| c.reason == "NamespaceTerminating")
        .map(|c| {
            c.message
                .strip_prefix("namespace ")
                .and_then(|m| m.strip_suffix(" is being terminated"))
                .unwrap_or(&c.message)
                .to_string()
        })
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

/// The objects prune failed to delete, as the error.
fn not_pruned(failed: Vec<(ObjectId, String)>) -> Result<(), Error> {
    crate::reason::one_or_many(
        Error::Many,
        failed
            .into_iter()
            .map(|(id, message)| Error::Prune {
                id: id.to_string(),
                message,
            })
            .collect(),
    )
}

/// A client error in one line, without the request it came from.
pub fn message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => {
            let mut s = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(inner) = source {
                let text = inner.to_string();
                // Wrappers repeat their cause's text: say each thing once.
                if !s.contains(&text) {
                    s = format!("{s}: {text}");
                }
                source = inner.source();
            }
            s
        }
    }
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        match self {
            Error::Prune { .. } => Reason::PruneFailed,
            Error::NotReady { .. } => Reason::HealthCheckFailed,
            Error::Many(v) => v.first().map_or(Reason::ApplyFailed, Error::reason),
            _ => Reason::ApplyFailed,
        }
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Object { retryable, .. } => *retryable,
            Error::Inventory(e) => e.retryable(),
            Error::Many(v) => v.iter().all(Error::retryable),
            Error::Connect(_) => false,
            _ => true,
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

    fn status(code: u16, causes: serde_json::Value) -> Status {
        serde_json::from_value(serde_json::json!({
            "status": "Failure", "code": code, "message": "whatever the wording", "details": {"causes": causes},
        }))
        .expect("a Status")
    }

    #[test]
    fn conflicts_come_from_the_causes() {
        let s = status(
            409,
            serde_json::json!([
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl-edit\" using apps/v1", "field": ".spec.replicas"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"kubectl\" with subresource \"scale\" using apps/v1", "field": ".spec.replicas"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"odd \\\"name\\\"\"", "field": ".data.x"},
                {"reason": "Other", "message": "conflict with \"nobody\"", "field": ".x"},
            ]),
        );
        let found = conflicts(&s);
        assert_eq!(
            found,
            [
                Conflict {
                    manager: "kubectl-edit".into(),
                    subresource: String::new(),
                    field: ".spec.replicas".into()
                },
                Conflict {
                    manager: "kubectl".into(),
                    subresource: "scale".into(),
                    field: ".spec.replicas".into()
                },
                Conflict {
                    manager: "odd \"name\"".into(),
                    subresource: String::new(),
                    field: ".data.x".into()
                },
            ]
        );
        assert_eq!(
            describe(&found[..2]),
            ".spec.replicas (\"kubectl-edit\"), .spec.replicas (\"kubectl\" through scale)"
        );
        // A message without causes names nobody.
        assert!(conflicts(&status(409, serde_json::json!([]))).is_empty());
    }

    #[test]
    fn immutable_fields_and_terminating_namespaces_come_from_the_causes() {
        let s = status(
            422,
            serde_json::json!([
                {"reason": "FieldValueInvalid", "message": "Invalid value: {\"matchLabels\":{}}: field is immutable", "field": "spec.selector"},
                {"reason": "FieldValueInvalid", "message": "Invalid value: [\"None\"]: may not change once set", "field": "spec.clusterIPs[0]"},
                {"reason": "FieldValueForbidden", "message": "Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden", "field": "spec"},
                {"reason": "FieldValueInvalid", "message": "Invalid value: \"x\": must be no more than 63 characters", "field": "metadata.name"},
            ]),
        );
        assert_eq!(
            immutable_fields(&s),
            ["spec.selector", "spec.clusterIPs[0]", "spec"]
        );
        let t = status(
            403,
            serde_json::json!([{"reason": "NamespaceTerminating", "message": "namespace demo is being terminated", "field": "metadata.namespace"}]),
        );
        assert_eq!(terminating_namespace(&t).as_deref(), Some("demo"));
        assert!(immutable_fields(&t).is_empty());
    }

    #[test]
    fn crd_versions_are_group_slash_version() {
        let crd =
            serde_json::json!({"spec": {"group": "x.io", "versions": [{"name": "v1"}, {"name": "v2"}]}});
        assert_eq!(crd_versions(&crd), ["x.io/v1", "x.io/v2"]);
    }
}
