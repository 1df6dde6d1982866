//! Watching what apps applied, so that a change made by hand is taken
//! back at once instead of at the next interval.
//!
//! One metadata-only watch per kind per cluster, shared by every app (it
//! selects objects carrying the owner label), started after the first
//! apply of that kind and kept while the connection lives. Each event is
//! held against the app's [`Stamps`]: an object someone changed or deleted
//! since mooring applied it becomes a [`Drift`] for the consumer (the
//! agent runs that app); status writes, mooring's own applies and objects
//! mooring never applied are not drift. A watch resumes from the last
//! resourceVersion (bookmarks keep it fresh), lists again after a 410
//! Gone and compares what it lists with the stamps, so nothing changed in
//! the gap is missed; errors back off. A kind the identity may not watch
//! cluster-wide is left to the periodic pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;

use super::cluster::Resource;
use super::kube::OWNER_LABEL;
use super::stamps::{Live, Stamps};
use crate::render::ObjectId;

/// An applied object that someone else changed or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub app: String,
    pub id: ObjectId,
}

/// The watches of one connection; they stop when it is dropped.
pub struct Watches {
    client: kube::Client,
    stamps: Arc<Stamps>,
    drift: UnboundedSender<Drift>,
    running: Mutex<HashMap<String, Running>>,
}

/// One kind's watch.
struct Running {
    task: AbortHandle,
    /// Listed, compared with the stamps, and watching since, without a gap.
    live: Arc<AtomicBool>,
}

/// The longest wait between attempts after errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Watches {
    pub fn new(client: kube::Client, stamps: Arc<Stamps>, drift: UnboundedSender<Drift>) -> Watches {
        Watches {
            client,
            stamps,
            drift,
            running: Mutex::new(HashMap::new()),
        }
    }

    /// Watch `r`'s objects, unless that watch already runs. Needs a Tokio
    /// runtime.
    pub fn ensure(&self, r: &Resource) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.get(&key(r)).is_some_and(|w| !w.task.is_finished()) {
            return;
        }
        let live = Arc::new(AtomicBool::new(false));
        let task = watch(
            self.client.clone(),
            r.clone(),
            self.stamps.clone(),
            self.drift.clone(),
            live.clone(),
        );
        let task = tokio::spawn(task).abort_handle();
        running.insert(key(r), Running { task, live });
    }

    /// Whether every change to `r`'s objects reaches the stamps now: its
    /// watch has listed, compared and is watching, with no gap since. Then
    /// a stamp that no drift has cleared still describes its object, and
    /// a pass need not list the kind to know that.
    pub fn is_live(&self, r: &Resource) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        running
            .get(&key(r))
            .is_some_and(|w| !w.task.is_finished() && w.live.load(Ordering::Acquire))
    }
}

impl Drop for Watches {
    fn drop(&mut self) {
        for w in self.running.get_mut().unwrap_or_else(|e| e.into_inner()).values() {
            w.task.abort();
        }
    }
}

fn key(r: &Resource) -> String {
    format!("{}/{}", r.api.api_version, r.api.plural)
}

fn id_of(r: &Resource, meta: &kube::api::ObjectMeta) -> ObjectId {
    ObjectId {
        api_version: r.api.api_version.clone(),
        kind: r.api.kind.clone(),
        namespace: meta.namespace.clone().filter(|_| r.namespaced),
        name: meta.name.clone().unwrap_or_default(),
    }
}

fn app_of(meta: &kube::api::ObjectMeta) -> Option<String> {
    meta.labels.as_ref()?.get(OWNER_LABEL).cloned()
}

async fn watch(
    client: kube::Client,
    r: Resource,
    stamps: Arc<Stamps>,
    drift: UnboundedSender<Drift>,
    live: Arc<AtomicBool>,
) {
    let api: Api<DynamicObject> = Api::all_with(client, &r.api);
    let mut failures = 0u32;
    loop {
        live.store(false, Ordering::Release);
        if failures > 0 {
            let wait = Duration::from_millis(250 << failures.min(7)).min(MAX_BACKOFF);
            tokio::time::sleep(crate::backoff::jitter(wait)).await;
        }
        // List: where to watch from, and (after the first time) what
        // changed while no watch ran.
        let list = match api
            .list_metadata(&ListParams::default().labels(OWNER_LABEL))
            .await
        {
            Ok(list) => list,
            Err(kube::Error::Api(s)) if matches!(s.code, 401 | 403 | 404 | 405) => {
                tracing::debug!(kind = %r.api.kind, "not watching {}: {}", r.api.plural, s.message);
                return;
            }
            Err(e) => {
                tracing::debug!(kind = %r.api.kind, "listing {} to watch: {e}", r.api.plural);
                failures += 1;
                continue;
            }
        };
        // Stamps recorded before this list (the first one, too: the
        // applies that started the watch came before it) against it.
        let listed: Vec<(String, ObjectId, Live)> = list
            .items
            .iter()
            .filter_map(|o| {
                Some((
                    app_of(&o.metadata)?,
                    id_of(&r, &o.metadata),
                    Live::of(&o.metadata),
                ))
            })
            .collect();
        for (app, id) in stamps.drifted(&r.api.api_version, &r.api.kind, &listed) {
            let _ = drift.send(Drift { app, id });
        }
        let mut version = list.metadata.resource_version.unwrap_or_default();
        // Watch until the server says the version is gone (then list again).
        'watch: loop {
            let params = WatchParams::default().labels(OWNER_LABEL).timeout(290);
            let events = match api.watch_metadata(&params, &version).await {
                Ok(events) => events,
                Err(e) => {
                    tracing::debug!(kind = %r.api.kind, "watching {}: {e}", r.api.plural);
                    failures += 1;
                    break 'watch;
                }
            };
            // Events from `version` on: nothing since the list is missed.
            live.store(true, Ordering::Release);
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let (meta, deleted) = match event {
                    Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)) => (o.metadata, false),
                    Ok(WatchEvent::Deleted(o)) => (o.metadata, true),
                    Ok(WatchEvent::Bookmark(b)) => {
                        version = b.metadata.resource_version;
                        continue;
                    }
                    Ok(WatchEvent::Error(e)) => {
                        if e.code != 410 {
                            tracing::debug!(kind = %r.api.kind, "watching {}: {}", r.api.plural, e.message);
                            failures += 1;
                        }
                        break 'watch;
                    }
                    Err(e) => {
                        tracing::debug!(kind = %r.api.kind, "watching {}: {e}", r.api.plural);
                        failures += 1;
                        break 'watch;
                    }
                };
                failures = 0;
                if let Some(v) = &meta.resource_version {
                    version.clone_from(v);
                }
                let Some(app) = app_of(&meta) else { continue };
                let id = id_of(&r, &meta);
                let now = (!deleted).then(|| Live::of(&meta));
                if stamps.drift(&app, &id, now.as_ref()) {
                    let _ = drift.send(Drift { app, id });
                }
            }
            // The server ended the watch (its timeout): go on from `version`.
        }
    }
}
