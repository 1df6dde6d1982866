//! The typed configuration: what the rest of mooring reads after a file
//! has been parsed and validated. No KDL types leak past this module.
//!
//! Every struct derives `PartialEq` so that a reload can be computed as a
//! diff of values. Spans are kept only where validation needs to point at a
//! reference, inside [`Spanned`], whose equality ignores the span: moving a
//! node down a few lines is not a change.

use std::path::PathBuf;
use std::time::Duration;

use miette::SourceSpan;

/// A value together with where it was written. Equality ignores the span.
#[derive(Debug, Clone)]
pub struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: SourceSpan) -> Self {
        Self { value, span }
    }
}

impl<T: PartialEq> PartialEq for Spanned<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Eq> Eq for Spanned<T> {}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The kinds of object a config declares. `cluster` is not one of them:
/// it is a connection, not something that is reconciled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Source,
    App,
    Image,
    Automation,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Source, Kind::App, Kind::Image, Kind::Automation];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::App => "app",
            Kind::Image => "image",
            Kind::Automation => "automation",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole, valid configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    pub agent: Settings,
    pub clusters: Vec<Cluster>,
    pub sources: Vec<Source>,
    pub apps: Vec<App>,
    pub images: Vec<Image>,
    pub automations: Vec<Automation>,
    pub receivers: Vec<Receiver>,
    pub notifications: Vec<Notify>,
    pub suspensions: Vec<Suspension>,
}

impl Config {
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name.value == name)
    }

    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name.value == name)
    }

    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.name.value == name)
    }

    pub fn automation(&self, name: &str) -> Option<&Automation> {
        self.automations.iter().find(|a| a.name.value == name)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name.value == name)
    }

    /// The clusters `app` applies to, in order: its own `cluster` list,
    /// else `agent { default-cluster }`; empty: the default connection
    /// (in-cluster config or `$KUBECONFIG`). `None` for `target dir=`.
    pub fn app_clusters<'a>(&'a self, app: &'a App) -> Option<&'a [Spanned<String>]> {
        match &app.target {
            Target::Dir(_) => None,
            Target::Cluster(names) if names.is_empty() => Some(&self.agent.default_cluster),
            Target::Cluster(names) => Some(names),
        }
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.iter().find(|r| r.name.value == name)
    }

    /// Whether an object `kind/name` is declared.
    pub fn has(&self, kind: Kind, name: &str) -> bool {
        match kind {
            Kind::Source => self.source(name).is_some(),
            Kind::App => self.app(name).is_some(),
            Kind::Image => self.image(name).is_some(),
            Kind::Automation => self.automation(name).is_some(),
        }
    }

    /// Names of every object of `kind`, in file order.
    pub fn names(&self, kind: Kind) -> Vec<&str> {
        match kind {
            Kind::Source => self.sources.iter().map(|o| o.name.as_str()).collect(),
            Kind::App => self.apps.iter().map(|o| o.name.as_str()).collect(),
            Kind::Image => self.images.iter().map(|o| o.name.as_str()).collect(),
            Kind::Automation => self.automations.iter().map(|o| o.name.as_str()).collect(),
        }
    }

    /// The suspension that applies to `kind/name`, if any.
    pub fn suspension(&self, kind: Kind, name: &str) -> Option<&Suspension> {
        self.suspensions
            .iter()
            .find(|s| s.kind == kind && s.name.value == name)
    }
}

/// The agent's own settings: the `agent { … }` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub state_dir: PathBuf,
    pub listen: std::net::SocketAddr,
    pub log: Log,
    pub log_file: Option<LogFile>,
    pub field_manager: String,
    pub concurrency: u32,
    pub api_token_file: Option<PathBuf>,
    /// Apply untouched objects again once their last apply is this old.
    pub reapply: Option<Duration>,
    pub inventory_namespace: String,
    /// Run as one of several replicas: only the holder of the lease
    /// reconciles.
    pub leader_election: Option<LeaderElection>,
    /// `default-cluster`: the clusters of every app that names neither
    /// `cluster` nor `target` (empty: the default connection).
    pub default_cluster: Vec<Spanned<String>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            state_dir: defaults::state_dir(),
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 9797)),
            log: Log::default(),
            log_file: None,
            field_manager: defaults::FIELD_MANAGER.to_string(),
            concurrency: defaults::CONCURRENCY,
            api_token_file: None,
            reapply: None,
            inventory_namespace: defaults::INVENTORY_NAMESPACE.to_string(),
            leader_election: None,
            default_cluster: Vec::new(),
        }
    }
}

/// Defaults shared by the decoder, the schema and the docs.
pub mod defaults {
    use std::path::{Path, PathBuf};

    /// `state-dir` for root, and for a user who may write there (systemd's
    /// `StateDirectory=`, a pod's volume); see [`state_dir`].
    pub const STATE_DIR: &str = "/var/lib/mooring";

    /// `state-dir` when the config does not set it: [`STATE_DIR`] for
    /// root or a user who may write into it, else the user's own
    /// `$XDG_STATE_HOME/mooring`, else `~/.local/state/mooring`.
    pub fn state_dir() -> PathBuf {
        // SAFETY: geteuid cannot fail; access reads a NUL-terminated path.
        let root = unsafe { libc::geteuid() } == 0;
        let writable = || unsafe { libc::access(c"/var/lib/mooring".as_ptr(), libc::W_OK) } == 0;
        let xdg = std::env::var_os("XDG_STATE_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        state_dir_for(root || writable(), xdg.as_deref(), home.as_deref())
    }

    /// [`state_dir`] without the environment: `system` says whether
    /// [`STATE_DIR`] is ours to use. A relative `XDG_STATE_HOME` or `HOME`
    /// is ignored, as the XDG spec says.
    pub fn state_dir_for(system: bool, xdg: Option<&Path>, home: Option<&Path>) -> PathBuf {
        if system {
            return PathBuf::from(STATE_DIR);
        }
        match (xdg.filter(|p| p.is_absolute()), home.filter(|p| p.is_absolute())) {
            (Some(x), _) => x.join("mooring"),
            (None, Some(h)) => h.join(".local/state/mooring"),
            // Nowhere of the user's own: the system's, which says why it fails.
            (None, None) => PathBuf::from(STATE_DIR),
        }
    }

    pub const LISTEN: &str = "127.0.0.1:9797";
    pub const FIELD_MANAGER: &str = "mooring";
    pub const CONCURRENCY: u32 = 4;
    pub const INVENTORY_NAMESPACE: &str = "default";
    pub const SOURCE_INTERVAL: &str = "1m";
    pub const SOURCE_TIMEOUT: &str = "60s";
    pub const APP_INTERVAL: &str = "5m";
    pub const APP_TIMEOUT: &str = "5m";
    pub const WAIT_TIMEOUT: &str = "5m";
    pub const IMAGE_INTERVAL: &str = "5m";
    pub const IMAGE_TIMEOUT: &str = "60s";
    /// Flux's namespace for its own objects, and so for image policies.
    pub const IMAGE_NAMESPACE: &str = "flux-system";
    pub const AUTOMATION_INTERVAL: &str = "5m";
    pub const OCI_TAG: &str = "latest";
    pub const LOG_KEEP: u32 = 7;
    pub const LEASE_NAME: &str = "mooring";
    pub const LEASE_DURATION: &str = "15s";
    pub const NOTIFY_TIMEOUT: &str = "10s";
    pub const MAX_ARTIFACT_SIZE: &str = "512MiB";
    pub const MAX_ARTIFACT_BYTES: u64 = 512 * 1024 * 1024;
    pub const MAX_ARTIFACT_FILES: u64 = 100_000;
    pub const COMMIT_MESSAGE: &str = "chore(images): update images\n\n{% for c in changes %}- {{ c.file }}: {{ c.old }} -> {{ c.new }}\n{% endfor %}";

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn state_dir_for_root_and_users() {
            let home = Some(Path::new("/home/ann"));
            assert_eq!(state_dir_for(true, None, home), Path::new(STATE_DIR));
            assert_eq!(
                state_dir_for(false, None, home),
                Path::new("/home/ann/.local/state/mooring")
            );
            assert_eq!(
                state_dir_for(false, Some(Path::new("/xdg")), home),
                Path::new("/xdg/mooring")
            );
            assert_eq!(
                state_dir_for(false, Some(Path::new("rel")), home),
                Path::new("/home/ann/.local/state/mooring")
            );
            assert_eq!(state_dir_for(false, None, None), Path::new(STATE_DIR));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Log {
    pub level: LogLevel,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    Hourly,
    #[default]
    Daily,
    Never,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogFile {
    pub dir: PathBuf,
    pub rotate: Rotation,
    pub keep: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: Spanned<String>,
    /// `None`: `$KUBECONFIG`, then `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `None`: the kubeconfig's current context.
    pub context: Option<String>,
    /// PEM certificates trusted for the API server, besides the
    /// kubeconfig's `certificate-authority(-data)`.
    pub ca_file: Option<PathBuf>,
}

/// `agent { leader-election … }`: a Kubernetes Lease decides which replica
/// reconciles.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderElection {
    /// The Lease's name.
    pub lease: String,
    /// `None`: the pod's own namespace (from its service account), else
    /// `default`.
    pub namespace: Option<String>,
    /// How long a lease lasts without renewal: a standby takes over within it.
    pub duration: Duration,
    /// The cluster holding the Lease; `None`: the default one (in-cluster).
    pub cluster: Option<Spanned<String>>,
    /// How many Leases the objects are spread over (1..=[`MAX_SHARDS`]):
    /// 1 is a single leader; more let several replicas work at once.
    pub shards: u32,
}

/// The most shards `leader-election shards=` takes.
pub const MAX_SHARDS: u32 = 64;

#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: Spanned<String>,
    pub kind: SourceKind,
    pub interval: Duration,
    pub timeout: Duration,
    pub auth: Option<Auth>,
    pub ignore: Vec<String>,
    pub limits: Limits,
    /// PEM certificates trusted for HTTPS, besides the system's.
    pub ca_file: Option<PathBuf>,
}

/// What one artifact may hold, at most. Archives and repositories are
/// untrusted: these caps bound the disk a fetch can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bytes: u64,
    pub max_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: defaults::MAX_ARTIFACT_BYTES,
            max_files: defaults::MAX_ARTIFACT_FILES,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    Git {
        url: String,
        reference: GitRef,
    },
    Oci {
        url: String,
        reference: OciRef,
        insecure: bool,
    },
    /// A Helm chart repository: `https://…` (an `index.yaml` and chart
    /// archives) or `oci://…` (charts as OCI artifacts, one repository per
    /// chart below this one). Apps pick a chart and version from it.
    Helm {
        url: String,
        insecure: bool,
    },
}

impl SourceKind {
    pub fn url(&self) -> &str {
        match self {
            SourceKind::Git { url, .. } | SourceKind::Oci { url, .. } | SourceKind::Helm { url, .. } => url,
        }
    }
}

/// Which revision of a git repository a source follows.
#[derive(Debug, Clone, PartialEq)]
pub enum GitRef {
    /// The branch the remote's HEAD points at.
    DefaultBranch,
    Branch(String),
    Tag(String),
    /// The highest tag that satisfies the range.
    Semver(String),
    Commit(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum OciRef {
    Tag(String),
    Semver(String),
    Digest(String),
}

/// Credentials are paths to files, never inline secrets: a config file can
/// be committed, shown in status and logged without leaking anything.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Auth {
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
    pub ssh_key: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub docker_config: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub name: Spanned<String>,
    pub source: Spanned<String>,
    /// Relative path inside the source's artifact; `.` for its root.
    pub path: String,
    pub target: Target,
    pub namespace: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub prune: bool,
    /// Server-side apply with `force`: take over conflicting fields.
    pub force: bool,
    /// Delete and create again when a change hits an immutable field.
    pub recreate: bool,
    pub wait: Option<Wait>,
    pub depends_on: Vec<Spanned<String>>,
    /// In file order; later entries override earlier ones of the same name.
    pub substitute: Vec<(String, String)>,
    /// `substitute strict=#true`: an unset variable without a default is an
    /// error (Flux's `StrictPostBuildSubstitutions`).
    pub substitute_strict: bool,
    /// `substitute always=#true`: substitute even when no variable is
    /// defined (Flux's `substituteStrategy: Always`).
    pub substitute_always: bool,
    /// `substitute-from`, in file order: later sources override earlier
    /// ones, `substitute` overrides them all (Flux's postBuild).
    pub substitute_from: Vec<SubstituteFrom>,
    /// The Flux `Kustomization` features applied around the build.
    pub kustomize: Kustomize,
    /// `sops age-key-file=…`: decrypt SOPS files and objects.
    pub sops: Option<Sops>,
    /// How a Helm chart renders: set when the app's source is a Helm
    /// repository (`chart`), or given `release`/`values`/`values-file` for
    /// a chart at `path` in a git or OCI source.
    pub helm: HelmRelease,
}

/// What Flux's kustomize-controller adds to the kustomization of an app's
/// path (its `namePrefix`, `nameSuffix`, `components`, `images`,
/// `patches`) and sets on every object after it (`commonMetadata`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Kustomize {
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    /// Relative to the app's `path`, as written.
    pub components: Vec<String>,
    pub images: Vec<SetImage>,
    pub patches: Vec<Patch>,
    /// `common-metadata { labels {…} }`, in file order.
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
}

impl Kustomize {
    /// Whether anything changes the kustomization (common metadata does not:
    /// it is set after the build).
    pub fn changes_build(&self) -> bool {
        self.name_prefix.is_some()
            || self.name_suffix.is_some()
            || !self.components.is_empty()
            || !self.images.is_empty()
            || !self.patches.is_empty()
    }
}

/// `set-image NAME new-name=… new-tag=… digest=…`: a kustomize `images` entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SetImage {
    pub name: String,
    pub new_name: Option<String>,
    pub new_tag: Option<String>,
    pub digest: Option<String>,
}

/// `patch …`: kustomize's `patches` entry, inline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Patch {
    pub patch: String,
    pub target: Option<PatchTarget>,
}

/// Which objects a patch applies to (kustomize's selector); empty fields match all.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchTarget {
    pub group: Option<String>,
    pub version: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub annotation_selector: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubstituteFrom {
    pub from: VarSource,
    /// Missing: no variables rather than a failure.
    pub optional: bool,
}

/// Where `substitute-from` reads variables.
#[derive(Debug, Clone, PartialEq)]
pub enum VarSource {
    /// Relative: in the app's source artifact; absolute: on the host.
    File(PathBuf),
    ConfigMap {
        namespace: String,
        name: String,
    },
    Secret {
        namespace: String,
        name: String,
    },
}

impl std::fmt::Display for VarSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VarSource::File(p) => write!(f, "file {}", p.display()),
            VarSource::ConfigMap { namespace, name } => write!(f, "ConfigMap {namespace}/{name}"),
            VarSource::Secret { namespace, name } => write!(f, "Secret {namespace}/{name}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sops {
    pub age_key_file: PathBuf,
}

/// A Helm chart app's release: the chart (from a Helm repository source),
/// the release name and the values, merged as Helm merges them: the
/// chart's defaults, then each `values-file` in order, then `values`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HelmRelease {
    pub chart: Option<ChartRef>,
    /// `.Release.Name`; default: the app's name.
    pub release: Option<String>,
    pub values_files: Vec<ValuesFile>,
    /// `values-from`, in file order: merged over the values files, under
    /// `values` (Flux's `valuesFrom`).
    pub values_from: Vec<ValuesFrom>,
    /// Inline YAML (a mapping).
    pub values: Option<Spanned<String>>,
    /// `crds "skip"`: leave the charts' `crds/` out (default: apply them).
    pub skip_crds: bool,
    /// Children written on the app that a chart cannot honour (`name-prefix`,
    /// `components`, `substitute`, …), with where they were written: an
    /// app of a Helm repository source refuses them.
    pub not_for_charts: Vec<Spanned<&'static str>>,
}

/// `values-from configmap="NS/NAME" values-key=… target-path=… optional=…`:
/// Helm values from the app's cluster (Flux's `valuesFrom`).
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesFrom {
    /// A ConfigMap or a Secret (never a file: that is `values-file`).
    pub from: VarSource,
    /// The data key holding the values; Flux's default `values.yaml`.
    pub values_key: String,
    /// Helm `--set` path the whole value is set at, instead of merging it
    /// as a YAML mapping.
    pub target_path: Option<String>,
    /// A missing object or key gives nothing instead of failing the app.
    pub optional: bool,
}

/// `chart "redis" version="^20.0.0"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartRef {
    pub name: Spanned<String>,
    /// A semver range; `None`: the highest stable version.
    pub version: Option<String>,
}

/// `values-file "values/cache.yaml" source="platform"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesFile {
    /// Relative to the root of the source's artifact.
    pub path: Spanned<String>,
    /// The source holding it; `None`: the app's own source (git or OCI).
    pub source: Option<Spanned<String>>,
}

impl App {
    /// The release name a chart renders with.
    pub fn release_name(&self) -> &str {
        self.helm.release.as_deref().unwrap_or(&self.name.value)
    }

    /// Whether the app reads ConfigMaps or Secrets of its cluster
    /// (`substitute-from` or `values-from`).
    pub fn reads_cluster(&self) -> bool {
        !self.helm.values_from.is_empty()
            || self
                .substitute_from
                .iter()
                .any(|f| !matches!(f.from, VarSource::File(_)))
    }

    /// Every source the app reads: its own, then those of values files.
    pub fn sources(&self) -> Vec<&str> {
        let mut out = vec![self.source.as_str()];
        for f in &self.helm.values_files {
            if let Some(s) = &f.source
                && !out.contains(&s.as_str())
            {
                out.push(s.as_str());
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The `cluster` names, in file order and distinct; empty: none
    /// written (`agent { default-cluster }`, else the default connection:
    /// see [`Config::app_clusters`]).
    Cluster(Vec<Spanned<String>>),
    /// Write rendered manifests into a directory.
    Dir(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Wait {
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    pub name: Spanned<String>,
    /// Flux markers `NAMESPACE:NAME` name the policy by both.
    pub namespace: String,
    pub repository: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub policy: Policy,
    pub filter: Option<TagFilter>,
    pub exclude: Vec<String>,
    pub auth: Option<Auth>,
    pub insecure: bool,
    /// PEM certificates trusted for HTTPS, besides the system's.
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// How the "latest" tag is chosen.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    Semver(String),
    Alphabetical(Order),
    Numerical(Order),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TagFilter {
    pub pattern: String,
    /// A replacement template such as `$ts`; `None` keeps the whole tag.
    pub extract: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Automation {
    pub name: Spanned<String>,
    pub source: Spanned<String>,
    /// `None`: the source's branch.
    pub checkout: Option<String>,
    /// `None`: the checkout branch.
    pub push: Option<String>,
    pub path: String,
    pub author: Author,
    pub message: String,
    pub interval: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Author {
    pub name: String,
    pub email: String,
}

/// `receiver "NAME"`: `POST /hooks/NAME` makes objects reconcile now.
#[derive(Debug, Clone, PartialEq)]
pub struct Receiver {
    pub name: Spanned<String>,
    pub kind: ReceiverKind,
    /// The shared secret (HMAC key or token), read at each request.
    pub secret_file: PathBuf,
    /// What a valid delivery reconciles, in file order.
    pub reconcile: Vec<ObjectRef>,
}

/// Who sends the hooks, which decides how they are signed and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiverKind {
    /// `X-Hub-Signature-256`; push events.
    Github,
    /// `X-Gitlab-Token`; push and tag push events.
    Gitlab,
    /// `X-Signature: sha256=<hex>`, HMAC-SHA256 of the body.
    GenericHmac,
    /// Docker Hub: the token as `?token=` (it cannot sign).
    Dockerhub,
    /// Harbor: the token as the `Authorization` header.
    Harbor,
    /// Quay: the token as `?token=` (it cannot sign).
    Quay,
}

impl ReceiverKind {
    pub const ALL: [(ReceiverKind, &'static str); 6] = [
        (ReceiverKind::Github, "github"),
        (ReceiverKind::Gitlab, "gitlab"),
        (ReceiverKind::GenericHmac, "generic-hmac"),
        (ReceiverKind::Dockerhub, "dockerhub"),
        (ReceiverKind::Harbor, "harbor"),
        (ReceiverKind::Quay, "quay"),
    ];

    pub fn as_str(self) -> &'static str {
        ReceiverKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("generic-hmac", |(_, s)| s)
    }

    pub fn parse(s: &str) -> Option<ReceiverKind> {
        ReceiverKind::ALL.iter().find(|(_, n)| *n == s).map(|(k, _)| *k)
    }

    /// Registries announce pushed images, not git refs.
    pub fn is_registry(self) -> bool {
        matches!(
            self,
            ReceiverKind::Dockerhub | ReceiverKind::Harbor | ReceiverKind::Quay
        )
    }
}

/// `kind/name` of a declared object, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub kind: Kind,
    pub name: Spanned<String>,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.name.value)
    }
}

/// `notify "NAME"`: post state changes to a chat, a webhook or GitHub.
#[derive(Debug, Clone, PartialEq)]
pub struct Notify {
    pub name: Spanned<String>,
    /// The file holding the URL (a chat's webhook URL is itself a secret).
    pub url_file: PathBuf,
    /// A bearer token (`generic`) or a GitHub token (`github-status`).
    pub token_file: Option<PathBuf>,
    pub format: NotifyFormat,
    /// Which changes are posted; never empty.
    pub on: Vec<NotifyEvent>,
    /// Which objects' changes are posted; empty: all.
    pub objects: Vec<ObjectPattern>,
    /// One attempt's time limit.
    pub timeout: Duration,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    /// A Slack incoming webhook (also Mattermost, Rocket.Chat…).
    Slack,
    /// The event as JSON, in the shape of Flux's generic provider.
    Generic,
    /// A GitHub commit status on the revision's commit.
    GithubStatus,
}

impl NotifyFormat {
    pub const ALL: [(NotifyFormat, &'static str); 3] = [
        (NotifyFormat::Slack, "slack"),
        (NotifyFormat::Generic, "generic"),
        (NotifyFormat::GithubStatus, "github-status"),
    ];

    pub fn as_str(self) -> &'static str {
        NotifyFormat::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("generic", |(_, s)| s)
    }
}

/// A change worth telling someone about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    /// A run failed, and the one before did not fail the same way.
    Failure,
    /// A run succeeded after failures.
    Recovery,
    /// An automation pushed a commit.
    Push,
    /// An app's apply changed something in its target.
    Apply,
}

impl NotifyEvent {
    pub const ALL: [NotifyEvent; 4] = [
        NotifyEvent::Failure,
        NotifyEvent::Recovery,
        NotifyEvent::Push,
        NotifyEvent::Apply,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Failure => "failure",
            NotifyEvent::Recovery => "recovery",
            NotifyEvent::Push => "push",
            NotifyEvent::Apply => "apply",
        }
    }

    pub fn parse(s: &str) -> Option<NotifyEvent> {
        NotifyEvent::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// `app/*`, `source/platform`, `*/web-*`, `*`: which objects a
/// notification is about. `*` in a name matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPattern {
    /// `None`: every kind.
    pub kind: Option<Kind>,
    pub name: String,
}

impl ObjectPattern {
    pub fn matches(&self, kind: Kind, name: &str) -> bool {
        self.kind.is_none_or(|k| k == kind) && glob_match(&self.name, name)
    }
}

/// `*` matches any run of characters; everything else itself.
fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Suspension {
    pub kind: Kind,
    pub name: Spanned<String>,
    pub reason: Option<String>,
    pub until: Option<Spanned<jiff::Timestamp>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_patterns() {
        let p = |kind, name: &str| ObjectPattern {
            kind,
            name: name.to_string(),
        };
        assert!(p(Some(Kind::App), "*").matches(Kind::App, "web"));
        assert!(!p(Some(Kind::App), "*").matches(Kind::Source, "web"));
        assert!(p(None, "web-*").matches(Kind::Source, "web-eu"));
        assert!(!p(None, "web-*").matches(Kind::Source, "api-eu"));
        assert!(p(None, "*-eu").matches(Kind::App, "web-eu"));
        assert!(p(None, "a*b*c").matches(Kind::App, "aXbYc"));
        assert!(!p(None, "a*b*c").matches(Kind::App, "aXcYb"));
        assert!(!p(None, "ab*ba").matches(Kind::App, "aba"));
        assert!(p(None, "web").matches(Kind::App, "web"));
        assert!(!p(None, "web").matches(Kind::App, "webs"));
    }
}
