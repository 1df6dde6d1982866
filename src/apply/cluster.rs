//! A connection to one Kubernetes cluster: the client (from a named
//! `cluster`'s kubeconfig and context, the in-cluster service account when
//! running in a pod, else `$KUBECONFIG` / `~/.kube/config`) and a cache of
//! API discovery per group/version, refreshed when a kind is missing (a CRD
//! may just have been applied) and after [`DISCOVERY_TTL`]. Requests about
//! objects go through [`Objects`], which puts every name and namespace into
//! the URL as one percent-encoded path segment.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, ObjectList, PartialObjectMeta, Patch, PatchParams,
};
use kube::discovery::{ApiCapabilities, Scope};
use kube::{Api, Client};

use tokio::sync::mpsc::UnboundedSender;

use super::names::segment;
use super::stamps::Stamps;
use super::watch::{Drift, Watches};

use crate::config;
use crate::render::ObjectId;
use crate::render::chart::Capabilities;

/// How long discovery answers are trusted.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);

/// Requests that take longer than this fail (and are retried later).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot read kubeconfig {}: {message}", path.display())]
    Kubeconfig {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("no cluster configured: {message}")]
    NoConfig { message: String },
    #[error("cannot build a client for the cluster: {0}")]
    Client(String),
    #[error(transparent)]
    Ca(#[from] crate::tls::Error),
}

/// What the cluster says about one kind.
#[derive(Debug, Clone)]
pub struct Resource {
    pub api: ApiResource,
    pub namespaced: bool,
}

/// Per `group/version`: when it was asked and the kinds it serves.
type Discovered = HashMap<String, (Instant, HashMap<String, Resource>)>;

pub struct Cluster {
    client: Client,
    /// The API server's URL: two names for one cluster have the same.
    url: String,
    discovery: Mutex<Discovered>,
    /// What Helm charts render with, and when it was asked.
    capabilities: Mutex<Option<(Instant, Capabilities)>>,
    /// What was last applied to each object through this connection.
    stamps: Arc<Stamps>,
    /// Watches for changes to what was applied (when someone listens).
    watches: Option<Watches>,
}

impl Cluster {
    /// Connect as `def` says (or, without one, in-cluster / `$KUBECONFIG`).
    /// No request is made yet.
    pub async fn connect(def: Option<&config::Cluster>) -> Result<Cluster, ConnectError> {
        Cluster::connect_watching(def, None).await
    }

    /// [`Cluster::connect`], and with `drift`, watch the kinds applied
    /// through it for changes made by others ([`super::watch`]).
    pub async fn connect_watching(
        def: Option<&config::Cluster>,
        drift: Option<UnboundedSender<Drift>>,
    ) -> Result<Cluster, ConnectError> {
        let mut cfg = match def {
            Some(c) => from_kubeconfig(c.kubeconfig.as_deref(), c.context.as_deref()).await?,
            None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => kube::Config::incluster()
                .map_err(|e| ConnectError::NoConfig {
                    message: format!("in-cluster config: {e}"),
                })?,
            None => from_kubeconfig(None, None).await?,
        };
        // `ca-file`: trusted besides the kubeconfig's CA, never instead of
        // verification.
        if let Some(path) = def.and_then(|c| c.ca_file.as_deref()) {
            cfg.root_cert
                .get_or_insert_with(Vec::new)
                .extend(crate::tls::read_ca_file(path)?);
        }
        cfg.read_timeout = Some(READ_TIMEOUT);
        cfg.connect_timeout = Some(Duration::from_secs(10));
        let url = cfg.cluster_url.to_string();
        let client = Client::try_from(cfg).map_err(|e| ConnectError::Client(e.to_string()))?;
        let stamps = Arc::new(Stamps::default());
        Ok(Cluster {
            client: client.clone(),
            url,
            discovery: Mutex::new(HashMap::new()),
            capabilities: Mutex::new(None),
            stamps: stamps.clone(),
            watches: drift.map(|tx| Watches::new(client, stamps, tx)),
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The API server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn stamps(&self) -> &Stamps {
        &self.stamps
    }

    /// Watch `r`'s objects for drift, if this connection watches at all.
    pub fn watch(&self, r: &Resource) {
        if let Some(w) = &self.watches {
            w.ensure(r);
        }
    }

    /// Whether this connection's watch of `r` is live ([`Watches::is_live`]).
    pub fn watch_is_live(&self, r: &Resource) -> bool {
        self.watches.as_ref().is_some_and(|w| w.is_live(r))
    }

    /// The resource serving `api_version` + `kind`; `None` if the cluster
    /// has no such kind. A miss asks the cluster again (once per call).
    pub async fn resource(&self, api_version: &str, kind: &str) -> Result<Option<Resource>, kube::Error> {
        if let Some(found) = self.cached(api_version, kind, false) {
            return Ok(found);
        }
        self.refresh(api_version).await?;
        Ok(self.cached(api_version, kind, true).flatten())
    }

    /// `.Capabilities` for Helm charts, as `helm install` reads them: the
    /// server's version and every `group/version` and `group/version/Kind`
    /// it serves. Kept for [`DISCOVERY_TTL`].
    pub async fn capabilities(&self) -> Result<Capabilities, kube::Error> {
        if let Some((at, caps)) = &*self.capabilities.lock().unwrap_or_else(|e| e.into_inner())
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(caps.clone());
        }
        let version = self.client.apiserver_version().await?;
        // Every group/version the server lists, asked at once. As in Helm,
        // a group/version that fails to answer (an aggregated API that is
        // down) is left out rather than failing the render.
        let mut lists = Vec::new();
        for v in self.client.list_core_api_versions().await?.versions {
            lists.push(v);
        }
        for g in self.client.list_api_groups().await?.groups {
            lists.extend(g.versions.into_iter().map(|v| v.group_version));
        }
        let mut asks = tokio::task::JoinSet::new();
        for (i, gv) in lists.iter().enumerate() {
            let (client, gv) = (self.client.clone(), gv.clone());
            asks.spawn(async move {
                let answer = if gv.contains('/') {
                    client.list_api_group_resources(&gv).await
                } else {
                    client.list_core_api_resources(&gv).await
                };
                (i, answer)
            });
        }
        let mut answers: Vec<Option<Result<_, kube::Error>>> = (0..lists.len()).map(|_| None).collect();
        while let Some(joined) = asks.join_next().await {
            if let Ok((i, answer)) = joined {
                answers[i] = Some(answer);
            }
        }
        let mut api_versions = Vec::new();
        for (gv, answer) in lists.iter().zip(answers) {
            match answer {
                None => tracing::warn!("discovery of {gv} did not finish, charts render without it"),
                Some(Ok(list)) => {
                    api_versions.push(gv.clone());
                    // Subresources too (`apps/v1/Scale`), as Helm lists them.
                    api_versions.extend(list.resources.iter().map(|r| format!("{gv}/{}", r.kind)));
                }
                Some(Err(e)) => tracing::warn!(
                    "discovery of {gv} failed, charts render without it: {}",
                    super::kube::message(&e)
                ),
            }
        }
        let caps = Capabilities {
            kube_version: version.git_version,
            api_versions,
        };
        *self.capabilities.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), caps.clone()));
        Ok(caps)
    }

    /// Forget what discovery said about `api_version` (after a CRD changed).
    pub fn forget(&self, api_version: &str) {
        self.lock().remove(api_version);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Discovered> {
        self.discovery.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Some(found)` when the cache can answer; with `stale_ok`, a known
    /// group/version without the kind answers `Some(None)`.
    fn cached(&self, api_version: &str, kind: &str, stale_ok: bool) -> Option<Option<Resource>> {
        let cache = self.lock();
        let (at, kinds) = cache.get(api_version)?;
        if !stale_ok && at.elapsed() > DISCOVERY_TTL {
            return None;
        }
        match kinds.get(kind) {
            Some(r) => Some(Some(r.clone())),
            None if stale_ok => Some(None),
            None => None,
        }
    }

    async fn refresh(&self, api_version: &str) -> Result<(), kube::Error> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gv = kube::core::GroupVersion::gv(group, version);
        let kinds: HashMap<String, Resource> = match kube::discovery::pinned_group(&self.client, &gv).await {
            Ok(g) => g
                .versioned_resources(version)
                .into_iter()
                .map(|(api, caps): (ApiResource, ApiCapabilities)| {
                    let namespaced = caps.scope == Scope::Namespaced;
                    (api.kind.clone(), Resource { api, namespaced })
                })
                .collect(),
            // An unknown group/version is an answer: no kinds.
            Err(kube::Error::Api(s)) if s.code == 404 => HashMap::new(),
            Err(e) => return Err(e),
        };
        self.lock()
            .insert(api_version.to_string(), (Instant::now(), kinds));
        Ok(())
    }

    /// The objects of `r` in `namespace` (ignored if cluster-scoped; all
    /// namespaces for a LIST without one).
    pub fn api(&self, r: &Resource, namespace: Option<&str>) -> Objects {
        let (api, meta) = match (r.namespaced, namespace) {
            (true, Some(ns)) => (
                Api::namespaced_with(self.client.clone(), &segment(ns), &r.api),
                Api::namespaced_with(self.client.clone(), &segment(ns), &r.api),
            ),
            _ => (
                Api::all_with(self.client.clone(), &r.api),
                Api::all_with(self.client.clone(), &r.api),
            ),
        };
        Objects { api, meta }
    }

    /// The objects of `id`'s kind and namespace, if the cluster knows the kind.
    pub async fn api_for(&self, id: &ObjectId) -> Result<Option<(Resource, Objects)>, kube::Error> {
        Ok(self.resource(&id.api_version, &id.kind).await?.map(|r| {
            let api = self.api(&r, id.namespace.as_deref());
            (r, api)
        }))
    }
}

/// Objects of one kind in one namespace (or cluster-wide): the requests
/// mooring makes about them, each name sent as one encoded path segment.
pub struct Objects {
    api: Api<DynamicObject>,
    /// The same requests, reading only the metadata of the answer.
    meta: Api<PartialObjectMeta<DynamicObject>>,
}

impl Objects {
    pub async fn get_opt(&self, name: &str) -> Result<Option<DynamicObject>, kube::Error> {
        self.api.get_opt(&segment(name)).await
    }

    pub async fn patch<P: serde::Serialize + std::fmt::Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<DynamicObject, kube::Error> {
        self.api.patch(&segment(name), params, patch).await
    }

    /// A server-side apply whose answer is read for its metadata only:
    /// what an apply records of it.
    pub async fn apply<P: serde::Serialize + std::fmt::Debug>(
        &self,
        name: &str,
        params: &PatchParams,
        patch: &Patch<P>,
    ) -> Result<PartialObjectMeta<DynamicObject>, kube::Error> {
        self.meta.patch(&segment(name), params, patch).await
    }

    /// The object while it is still there (finalizers, a foreground
    /// delete), `None` once gone.
    pub async fn delete(
        &self,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Option<DynamicObject>, kube::Error> {
        Ok(self.api.delete(&segment(name), params).await?.left())
    }

    /// The objects' metadata only (a `PartialObjectMetadataList`): what
    /// telling changed objects from untouched ones needs.
    pub async fn list_metadata(
        &self,
        params: &ListParams,
    ) -> Result<ObjectList<PartialObjectMeta<DynamicObject>>, kube::Error> {
        self.api.list_metadata(params).await
    }
}

async fn from_kubeconfig(
    path: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<kube::Config, ConnectError> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let kubeconfig = match path {
        Some(p) => kube::config::Kubeconfig::read_from(p).map_err(|e| ConnectError::Kubeconfig {
            path: p.to_path_buf(),
            message: e.to_string(),
        })?,
        None => kube::config::Kubeconfig::read().map_err(|e| ConnectError::NoConfig {
            message: format!(
                "no in-cluster service account, and no kubeconfig ($KUBECONFIG, ~/.kube/config): {e}"
            ),
        })?,
    };
    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|e| ConnectError::Kubeconfig {
            path: path
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| "$KUBECONFIG".into()),
            message: e.to_string(),
        })
}

/// Connections by cluster name (`None`: the default cluster), made on
/// first use and made again when the cluster's definition changes.
#[derive(Default)]
pub struct Clusters {
    map: tokio::sync::Mutex<HashMap<Option<String>, Connection>>,
    /// Where the connections' watches report drift (none: no watches).
    drift: Option<UnboundedSender<Drift>>,
}

/// A connection and the definition it was made from.
type Connection = (Option<config::Cluster>, std::sync::Arc<Cluster>);

impl Clusters {
    /// Connections that watch what is applied through them and send each
    /// change someone else makes to `drift`.
    pub fn watching(drift: UnboundedSender<Drift>) -> Clusters {
        Clusters {
            map: Default::default(),
            drift: Some(drift),
        }
    }

    pub async fn get(&self, def: Option<&config::Cluster>) -> Result<std::sync::Arc<Cluster>, ConnectError> {
        let key = def.map(|c| c.name.value.clone());
        let mut map = self.map.lock().await;
        if let Some((known, cluster)) = map.get(&key)
            && known.as_ref() == def
        {
            return Ok(cluster.clone());
        }
        let cluster = Arc::new(Cluster::connect_watching(def, self.drift.clone()).await?);
        map.insert(key, (def.cloned(), cluster.clone()));
        Ok(cluster)
    }
}
