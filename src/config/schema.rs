//! The config language as data: every node, argument, property, type and
//! default. The decoder checks documents against this table (unknown names,
//! counts, types, formats), `mooring schema` prints it as a KDL Schema
//! document, and `schema/mooring.kdl-schema` is that output, committed.
//! One table, so the three cannot drift apart.

use std::fmt::Write as _;

use super::model::defaults as d;

/// What a value (argument or property) must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// Any string.
    String,
    /// A name declared by this file (`source "NAME"`): 1–63 characters,
    /// letters, digits, `-`, `_`, `.`, starting and ending alphanumeric.
    Name,
    /// The name of a declared object of that kind.
    Ref(RefKind),
    /// A filesystem path; `~/` expands to the home directory.
    Path,
    /// A relative path inside a repository or artifact, without `..`.
    RelPath,
    /// A git remote URL: https, http, ssh, git, file, or scp-like `user@host:path`.
    GitUrl,
    /// An OCI repository without tag or digest, e.g. `ghcr.io/org/app`.
    OciRepo,
    /// A Helm chart repository: `https://…`, `http://…` or `oci://…`.
    HelmRepo,
    /// A Helm release name: a DNS subdomain of at most 53 characters.
    Release,
    /// `90s`, `1m30s`, `2h`.
    Duration,
    /// RFC 3339, e.g. `2026-12-01T09:00:00Z`.
    Timestamp,
    /// A regular expression (Rust `regex` syntax).
    Regex,
    /// A semver range such as `>=1.2.0 <2.0.0`, `^6`, `6.x`.
    Semver,
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Enum(&'static [&'static str]),
    /// `HOST:PORT`.
    SocketAddr,
    /// A gitignore-style glob.
    Glob,
    /// A Kubernetes namespace name (RFC 1123 label).
    Namespace,
    /// A git branch name.
    Branch,
    /// A full commit id: 40 (SHA-1) or 64 (SHA-256) hex digits.
    Commit,
    /// `sha256:` and 64 hex digits.
    Digest,
    /// A variable name: letters, digits and `_`, not starting with a digit.
    VarName,
    Email,
    /// A replacement template of a regex match (`$ts`, `${ts}`).
    Template,
    /// A commit message: a minijinja template over `changes`.
    Message,
    /// A size in bytes: `512MiB`, `100MB`, `4096`.
    Size,
    /// `KIND/NAME` of a declared source, app, image or automation.
    ObjectRef,
    /// `KIND/NAME` where KIND may be `*` and `*` in NAME matches anything;
    /// or `*` alone.
    ObjectPattern,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    Source,
    App,
    Image,
    Automation,
    Cluster,
}

impl RefKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Source => "source",
            RefKind::App => "app",
            RefKind::Image => "image",
            RefKind::Automation => "automation",
            RefKind::Cluster => "cluster",
        }
    }
}

impl Ty {
    /// The KDL type of the value: `string`, `boolean` or `number`.
    pub fn kdl_type(self) -> &'static str {
        match self {
            Ty::Bool => "boolean",
            Ty::Int { .. } => "number",
            _ => "string",
        }
    }

    /// What a user reads in "expected …" messages.
    pub fn describe(self) -> String {
        match self {
            Ty::String => "a string".into(),
            Ty::Name => "a name".into(),
            Ty::Ref(k) => format!("the name of a {}", k.as_str()),
            Ty::Path => "a path".into(),
            Ty::RelPath => "a relative path".into(),
            Ty::GitUrl => "a git URL".into(),
            Ty::OciRepo => "an OCI repository".into(),
            Ty::HelmRepo => "a Helm repository URL".into(),
            Ty::Release => "a Helm release name".into(),
            Ty::Duration => "a duration such as \"90s\" or \"1m30s\"".into(),
            Ty::Timestamp => "an RFC 3339 timestamp such as \"2026-12-01T09:00:00Z\"".into(),
            Ty::Regex => "a regular expression".into(),
            Ty::Semver => "a semver range such as \">=1.0.0 <2.0.0\"".into(),
            Ty::Bool => "#true or #false".into(),
            Ty::Int { min, max } => format!("an integer from {min} to {max}"),
            Ty::Enum(values) => format!("one of {}", quoted_list(values)),
            Ty::SocketAddr => "an address such as \"127.0.0.1:9797\"".into(),
            Ty::Glob => "a glob pattern".into(),
            Ty::Namespace => "a Kubernetes namespace name".into(),
            Ty::Branch => "a branch name".into(),
            Ty::Commit => "a full commit id (40 or 64 hex digits)".into(),
            Ty::Digest => "a digest such as \"sha256:<64 hex digits>\"".into(),
            Ty::VarName => "a variable name".into(),
            Ty::Email => "an email address".into(),
            Ty::Template => "a template".into(),
            Ty::Message => "a message template".into(),
            Ty::Size => "a size such as \"512MiB\"".into(),
            Ty::ObjectRef => "an object such as \"source/platform\"".into(),
            Ty::ObjectPattern => "objects such as \"app/*\"".into(),
        }
    }

    /// KDL Schema `format` for string values, where one fits.
    fn schema_format(self) -> Option<&'static str> {
        match self {
            // Not `duration` (ISO 8601, "PT5M") nor `url` (git also takes
            // scp-like "git@host:path"): x-mooring-type says what they are.
            Ty::Timestamp => Some("date-time"),
            Ty::Regex => Some("regex"),
            Ty::Email => Some("email"),
            _ => None,
        }
    }

    /// mooring's own name for the value's format, kept in the schema as
    /// `x-mooring-type` so tools can tell a duration from a path.
    pub fn name(self) -> &'static str {
        match self {
            Ty::String => "string",
            Ty::Name => "name",
            Ty::Ref(RefKind::Source) => "source-ref",
            Ty::Ref(RefKind::App) => "app-ref",
            Ty::Ref(RefKind::Image) => "image-ref",
            Ty::Ref(RefKind::Automation) => "automation-ref",
            Ty::Ref(RefKind::Cluster) => "cluster-ref",
            Ty::Path => "path",
            Ty::RelPath => "relative-path",
            Ty::GitUrl => "git-url",
            Ty::OciRepo => "oci-repository",
            Ty::HelmRepo => "helm-repository",
            Ty::Release => "release-name",
            Ty::Duration => "duration",
            Ty::Timestamp => "timestamp",
            Ty::Regex => "regex",
            Ty::Semver => "semver-range",
            Ty::Bool => "bool",
            Ty::Int { .. } => "integer",
            Ty::Enum(_) => "enum",
            Ty::SocketAddr => "socket-address",
            Ty::Glob => "glob",
            Ty::Namespace => "namespace",
            Ty::Branch => "branch",
            Ty::Commit => "commit",
            Ty::Digest => "digest",
            Ty::VarName => "variable-name",
            Ty::Email => "email",
            Ty::Template | Ty::Message => "template",
            Ty::Size => "size",
            Ty::ObjectRef => "object-ref",
            Ty::ObjectPattern => "object-pattern",
        }
    }
}

fn quoted_list(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("\"{v}\"")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// The positional arguments of a node.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    /// What the argument is called in messages and docs ("name", "url").
    pub name: &'static str,
    pub ty: Ty,
    pub min: usize,
    /// `None`: any number.
    pub max: Option<usize>,
    pub default: Option<&'static str>,
}

#[derive(Debug, Clone, Copy)]
pub struct Prop {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub enum Children {
    None,
    Nodes(&'static [NodeSpec]),
    /// Nodes with names chosen by the user (`substitute { region "eu" }`):
    /// each name must be `name_ty` and each node takes `args`.
    Free {
        name_ty: Ty,
        args: Args,
        doc: &'static str,
    },
}

/// Of these node or property names, at most one (or exactly one, if
/// `required`) may be given.
#[derive(Debug, Clone, Copy)]
pub struct OneOf {
    pub names: &'static [&'static str],
    pub required: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct NodeSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub args: Option<Args>,
    pub props: &'static [Prop],
    pub children: Children,
    /// How often the node may appear in its parent (`max: None`: any number).
    pub min: usize,
    pub max: Option<usize>,
    pub one_of: &'static [OneOf],
}

impl NodeSpec {
    pub fn child(&self, name: &str) -> Option<&'static NodeSpec> {
        match self.children {
            Children::Nodes(nodes) => nodes.iter().find(|n| n.name == name),
            _ => None,
        }
    }

    pub fn prop(&self, name: &str) -> Option<&Prop> {
        self.props.iter().find(|p| p.name == name)
    }

    pub fn child_names(&self) -> Vec<&'static str> {
        match self.children {
            Children::Nodes(nodes) => nodes.iter().map(|n| n.name).collect(),
            _ => Vec::new(),
        }
    }
}

// ---- the table -------------------------------------------------------------

const fn node(name: &'static str, doc: &'static str) -> NodeSpec {
    NodeSpec {
        name,
        doc,
        args: None,
        props: &[],
        children: Children::None,
        min: 0,
        max: Some(1),
        one_of: &[],
    }
}

const fn one(name: &'static str, ty: Ty) -> Args {
    Args {
        name,
        ty,
        min: 1,
        max: Some(1),
        default: None,
    }
}

const fn many(name: &'static str, ty: Ty) -> Args {
    Args {
        name,
        ty,
        min: 1,
        max: None,
        default: None,
    }
}

const fn with_default(mut args: Args, default: &'static str) -> Args {
    args.default = Some(default);
    args
}

/// A node holding one value: `interval "5m"`.
const fn value(name: &'static str, ty: Ty, doc: &'static str) -> NodeSpec {
    let mut n = node(name, doc);
    n.args = Some(one("value", ty));
    n
}

const fn value_or(name: &'static str, ty: Ty, default: &'static str, doc: &'static str) -> NodeSpec {
    let mut n = value(name, ty, doc);
    n.args = Some(with_default(one("value", ty), default));
    n
}

const fn with_children(mut n: NodeSpec, children: &'static [NodeSpec]) -> NodeSpec {
    n.children = Children::Nodes(children);
    n
}

const fn with_props(mut n: NodeSpec, props: &'static [Prop]) -> NodeSpec {
    n.props = props;
    n
}

const fn with_args(mut n: NodeSpec, args: Args) -> NodeSpec {
    n.args = Some(args);
    n
}

const fn with_one_of(mut n: NodeSpec, one_of: &'static [OneOf]) -> NodeSpec {
    n.one_of = one_of;
    n
}

const fn at_least_once(mut n: NodeSpec) -> NodeSpec {
    n.min = 1;
    n
}

const fn repeated(mut n: NodeSpec) -> NodeSpec {
    n.max = None;
    n
}

const fn prop(name: &'static str, ty: Ty, doc: &'static str) -> Prop {
    Prop {
        name,
        ty,
        required: false,
        default: None,
        doc,
    }
}

const fn prop_or(name: &'static str, ty: Ty, default: &'static str, doc: &'static str) -> Prop {
    Prop {
        name,
        ty,
        required: false,
        default: Some(default),
        doc,
    }
}

const fn required(mut p: Prop) -> Prop {
    p.required = true;
    p
}

/// A top-level object: `source "NAME" { … }`, any number of them.
const fn object(name: &'static str, doc: &'static str, children: &'static [NodeSpec]) -> NodeSpec {
    NodeSpec {
        name,
        doc,
        args: Some(one("name", Ty::Name)),
        props: &[],
        children: Children::Nodes(children),
        min: 0,
        max: None,
        one_of: &[],
    }
}

pub const LOG_LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error"];
pub const LOG_FORMATS: &[&str] = &["text", "json"];
pub const ROTATIONS: &[&str] = &["hourly", "daily", "never"];
pub const ORDERS: &[&str] = &["asc", "desc"];
pub const SUSPEND_TARGETS: &[&str] = &["source", "app", "image", "automation"];
pub const RECEIVER_TYPES: &[&str] = &["github", "gitlab", "generic-hmac", "dockerhub", "harbor", "quay"];
pub const NOTIFY_FORMATS: &[&str] = &["slack", "generic", "github-status"];
pub const NOTIFY_EVENTS: &[&str] = &["failure", "recovery", "push", "apply"];

const AUTH_CHILDREN: &[NodeSpec] = &[
    value(
        "username",
        Ty::String,
        "User name for basic auth; pair with `password-file`.",
    ),
    value(
        "password-file",
        Ty::Path,
        "File holding the password for `username`.",
    ),
    value(
        "token-file",
        Ty::Path,
        "File holding a bearer token (git over HTTPS).",
    ),
    value("ssh-key", Ty::Path, "Private key for git over ssh."),
    value(
        "known-hosts",
        Ty::Path,
        "known_hosts file that must vouch for the ssh server.",
    ),
    value(
        "docker-config",
        Ty::Path,
        "A docker `config.json` to take registry credentials from.",
    ),
];

const AUTH: NodeSpec = with_children(
    node(
        "auth",
        "Credentials. Secrets are read from files, never written inline.",
    ),
    AUTH_CHILDREN,
);

/// Registries take no ssh credentials.
const REGISTRY_AUTH_CHILDREN: &[NodeSpec] = &[
    AUTH_CHILDREN[0],
    AUTH_CHILDREN[1],
    AUTH_CHILDREN[2],
    AUTH_CHILDREN[5],
];

const REGISTRY_AUTH: NodeSpec = with_children(
    node(
        "auth",
        "Registry credentials. Secrets are read from files, never written inline.",
    ),
    REGISTRY_AUTH_CHILDREN,
);

const LOG_PROPS: &[Prop] = &[
    prop_or(
        "level",
        Ty::Enum(LOG_LEVELS),
        "info",
        "Least severe level written.",
    ),
    prop_or(
        "format",
        Ty::Enum(LOG_FORMATS),
        "text",
        "`text` for people, `json` for collectors.",
    ),
];

const LOG_FILE_PROPS: &[Prop] = &[
    required(prop("dir", Ty::Path, "Directory of the log files.")),
    prop_or(
        "rotate",
        Ty::Enum(ROTATIONS),
        "daily",
        "When to start a new file.",
    ),
    prop_or(
        "keep",
        Ty::Int { min: 1, max: 10_000 },
        "7",
        "How many old files to keep.",
    ),
];

const AGENT_CHILDREN: &[NodeSpec] = &[
    value_or(
        "state-dir",
        Ty::Path,
        d::STATE_DIR,
        "Where git caches, artifacts and tag lists live.",
    ),
    value_or(
        "listen",
        Ty::SocketAddr,
        d::LISTEN,
        "Address of the HTTP server (/healthz, /readyz, /metrics, /api/status, /hooks/NAME).",
    ),
    with_props(node("log", "Log level and format. Logs go to stderr."), LOG_PROPS),
    with_props(
        node("log-file", "Also write logs to rotating files."),
        LOG_FILE_PROPS,
    ),
    value_or(
        "field-manager",
        Ty::String,
        d::FIELD_MANAGER,
        "Field manager name for server-side apply.",
    ),
    value_or(
        "concurrency",
        Ty::Int { min: 1, max: 256 },
        "4",
        "How many reconciles run at once.",
    ),
    value_or(
        "inventory-namespace",
        Ty::Namespace,
        d::INVENTORY_NAMESPACE,
        "Namespace of the ConfigMaps that record what each app applied to a cluster.",
    ),
    with_args(
        node(
            "default-cluster",
            "The clusters of every app that names neither `cluster` nor `target`, in place of in-cluster config or $KUBECONFIG: one line to move many apps to another cluster.",
        ),
        many("name", Ty::Ref(RefKind::Cluster)),
    ),
    value(
        "reapply",
        Ty::Duration,
        "Apply objects nobody changed again once their last apply is this old. Unset: a pass applies only what git changed or someone else touched.",
    ),
    value(
        "api-token-file",
        Ty::Path,
        "File holding the bearer token that POST endpoints require. Required when `listen` is not a loopback address.",
    ),
    with_props(
        node(
            "leader-election",
            "Several replicas, one at work (or, with `shards`, each on a share of the objects): only the holder of a Kubernetes Lease reconciles its objects; the others take over within `duration` when a holder is gone.",
        ),
        LEADER_ELECTION_PROPS,
    ),
];

const LEADER_ELECTION_PROPS: &[Prop] = &[
    prop_or("lease", Ty::Name, d::LEASE_NAME, "Name of the Lease."),
    prop(
        "namespace",
        Ty::Namespace,
        "Namespace of the Lease. Default: the pod's own namespace, else `default`.",
    ),
    prop_or(
        "duration",
        Ty::Duration,
        d::LEASE_DURATION,
        "How long a lease holds without renewal: the longest a standby waits to take over.",
    ),
    prop(
        "cluster",
        Ty::Ref(RefKind::Cluster),
        "The cluster holding the Lease. Default: in-cluster config or $KUBECONFIG.",
    ),
    prop_or(
        "shards",
        Ty::Int {
            min: 1,
            max: super::model::MAX_SHARDS as i64,
        },
        "1",
        "How many Leases the objects are spread over: 1 is a single leader; with N, replicas share the Leases `LEASE-0` … `LEASE-(N-1)` fairly and each reconciles the objects of those it holds.",
    ),
];

const CA_FILE: NodeSpec = value(
    "ca-file",
    Ty::Path,
    "PEM file of CA certificates to trust for HTTPS, besides the system's.",
);

pub const AGENT: NodeSpec = with_children(
    node("agent", "Settings of the agent process itself. At most one."),
    AGENT_CHILDREN,
);

const CLUSTER_CHILDREN: &[NodeSpec] = &[
    value(
        "kubeconfig",
        Ty::Path,
        "Kubeconfig file. Default: $KUBECONFIG, then ~/.kube/config.",
    ),
    value(
        "context",
        Ty::String,
        "Context in the kubeconfig. Default: its current context.",
    ),
    value(
        "ca-file",
        Ty::Path,
        "PEM file of CA certificates to trust for the API server, besides the kubeconfig's.",
    ),
];

pub const CLUSTER: NodeSpec = object(
    "cluster",
    "A Kubernetes cluster to apply to. Without any, apps use the in-cluster config or $KUBECONFIG.",
    CLUSTER_CHILDREN,
);

const LIMITS_PROPS: &[Prop] = &[
    prop_or(
        "max-size",
        Ty::Size,
        d::MAX_ARTIFACT_SIZE,
        "Total bytes of all files.",
    ),
    prop_or(
        "max-files",
        Ty::Int {
            min: 1,
            max: 10_000_000,
        },
        "100000",
        "Number of files.",
    ),
];

const SOURCE_CHILDREN: &[NodeSpec] = &[
    value("git", Ty::GitUrl, "URL of a git repository."),
    value(
        "oci",
        Ty::OciRepo,
        "An OCI repository holding Flux-format artifacts.",
    ),
    value(
        "helm",
        Ty::HelmRepo,
        "A Helm chart repository: https://… (index.yaml) or oci://…; apps pick a `chart` from it.",
    ),
    value(
        "branch",
        Ty::Branch,
        "Follow this branch (git). Default: the remote's HEAD.",
    ),
    value(
        "tag",
        Ty::String,
        "Follow this tag (git) or pull this tag (OCI, default \"latest\").",
    ),
    value("semver", Ty::Semver, "Follow the highest tag in this range."),
    value("commit", Ty::Commit, "Pin a git commit."),
    value("digest", Ty::Digest, "Pin an OCI artifact by digest."),
    value_or(
        "interval",
        Ty::Duration,
        d::SOURCE_INTERVAL,
        "How often to look for a new revision.",
    ),
    value_or(
        "timeout",
        Ty::Duration,
        d::SOURCE_TIMEOUT,
        "Give up on one fetch after this long.",
    ),
    AUTH,
    repeated(with_args(
        node("ignore", "Leave paths matching these globs out of the artifact."),
        many("pattern", Ty::Glob),
    )),
    with_props(
        node(
            "limits",
            "Caps on what one artifact may hold; a fetch that exceeds them fails.",
        ),
        LIMITS_PROPS,
    ),
    value_or(
        "insecure",
        Ty::Bool,
        "#false",
        "Allow plain HTTP to the registry (OCI), or to a Helm repository that is not on loopback.",
    ),
    CA_FILE,
];

const SOURCE_ONE_OF: &[OneOf] = &[
    OneOf {
        names: &["git", "oci", "helm"],
        required: true,
    },
    OneOf {
        names: &["branch", "tag", "semver", "commit", "digest"],
        required: false,
    },
];

pub const SOURCE: NodeSpec = with_one_of(
    object(
        "source",
        "Where manifests come from: a git repository, an OCI artifact or a Helm chart repository.",
        SOURCE_CHILDREN,
    ),
    SOURCE_ONE_OF,
);

const TARGET_PROPS: &[Prop] = &[required(prop(
    "dir",
    Ty::Path,
    "The directory; mooring owns its contents.",
))];
const WAIT_PROPS: &[Prop] = &[prop_or(
    "timeout",
    Ty::Duration,
    d::WAIT_TIMEOUT,
    "How long to wait.",
)];

const APP_CHILDREN: &[NodeSpec] = &[
    at_least_once(value(
        "source",
        Ty::Ref(RefKind::Source),
        "The source to take manifests from.",
    )),
    value_or("path", Ty::RelPath, ".", "Directory inside the source."),
    with_args(
        node(
            "cluster",
            "The clusters to apply to, each the same render, with its own inventory, prune and health; dropping one from the list prunes what the app put there (with `prune`). Default: `agent { default-cluster }`, else in-cluster config or $KUBECONFIG.",
        ),
        many("name", Ty::Ref(RefKind::Cluster)),
    ),
    with_props(
        node(
            "target",
            "Write the rendered manifests into a directory instead of a cluster.",
        ),
        TARGET_PROPS,
    ),
    value(
        "namespace",
        Ty::Namespace,
        "The namespace of every namespaced object, replacing the one the manifest names.",
    ),
    value_or(
        "interval",
        Ty::Duration,
        d::APP_INTERVAL,
        "How often to re-apply (drift correction).",
    ),
    value_or(
        "timeout",
        Ty::Duration,
        d::APP_TIMEOUT,
        "Give up on one apply after this long.",
    ),
    value_or(
        "prune",
        Ty::Bool,
        "#false",
        "Delete objects that were removed from the source.",
    ),
    value_or(
        "force",
        Ty::Bool,
        "#false",
        "Take over fields that another field manager owns instead of failing with a conflict.",
    ),
    value_or(
        "recreate",
        Ty::Bool,
        "#false",
        "Delete and create again an object whose change touches an immutable field.",
    ),
    with_props(
        node("wait", "Wait until what was applied is healthy."),
        WAIT_PROPS,
    ),
    repeated(with_args(
        node("depends-on", "Apply only after these apps are Ready."),
        many("app", Ty::Ref(RefKind::App)),
    )),
    NodeSpec {
        children: Children::Free {
            name_ty: Ty::VarName,
            args: one("value", Ty::String),
            doc: "Each child is a variable: its name, then its value.",
        },
        ..with_props(
            node(
                "substitute",
                "Variables for ${name} and ${name:=default} in manifests.",
            ),
            SUBSTITUTE_PROPS,
        )
    },
    with_one_of(
        repeated(with_props(
            node(
                "substitute-from",
                "More variables, from a file or (apps on a cluster) a ConfigMap or Secret; later ones win, `substitute` wins over all (Flux's postBuild.substituteFrom).",
            ),
            SUBSTITUTE_FROM_PROPS,
        )),
        SUBSTITUTE_FROM_ONE_OF,
    ),
    value(
        "name-prefix",
        Ty::String,
        "Prefix of every object's name, references included (Flux's namePrefix).",
    ),
    value(
        "name-suffix",
        Ty::String,
        "Suffix of every object's name, references included (Flux's nameSuffix).",
    ),
    with_children(
        node(
            "common-metadata",
            "Labels and annotations set on every object after the build (Flux's commonMetadata).",
        ),
        COMMON_METADATA_CHILDREN,
    ),
    repeated(with_args(
        node(
            "components",
            "Kustomize components to add, relative to `path` (Flux's components).",
        ),
        many("path", Ty::String),
    )),
    repeated(with_props(
        with_args(
            node(
                "set-image",
                "Override an image's name, tag or digest (Flux's images, kustomize's `images`).",
            ),
            one("name", Ty::String),
        ),
        SET_IMAGE_PROPS,
    )),
    repeated(with_props(
        with_args(
            node(
                "patch",
                "A strategic merge patch, or a YAML list of JSON 6902 operations, applied in order (Flux's patches); properties select the targets.",
            ),
            one("patch", Ty::String),
        ),
        PATCH_TARGET_PROPS,
    )),
    with_props(
        node(
            "sops",
            "Decrypt SOPS-encrypted manifests and generator files with age keys (Flux's decryption).",
        ),
        SOPS_PROPS,
    ),
    with_props(
        with_args(
            node(
                "chart",
                "The chart to render, from the app's Helm repository source.",
            ),
            one("name", Ty::Name),
        ),
        CHART_PROPS,
    ),
    value_or(
        "crds",
        Ty::Enum(CRD_POLICIES),
        "create",
        "The CRDs in a chart's crds/ folders: `create` applies them with the rest, `skip` leaves them out.",
    ),
    value(
        "release",
        Ty::Release,
        "The Helm release name (.Release.Name). Default: the app's name.",
    ),
    value(
        "values",
        Ty::String,
        "Helm values as YAML, merged over the values files.",
    ),
    repeated(with_props(
        with_args(
            node(
                "values-file",
                "A Helm values file; several merge in order, later ones winning.",
            ),
            one("path", Ty::RelPath),
        ),
        VALUES_FILE_PROPS,
    )),
    with_one_of(
        repeated(with_props(
            node(
                "values-from",
                "Helm values from a ConfigMap or Secret of the app's cluster (Flux's valuesFrom); merged in order over the values files, under `values`.",
            ),
            VALUES_FROM_PROPS,
        )),
        VALUES_FROM_ONE_OF,
    ),
];

const VALUES_FROM_PROPS: &[Prop] = &[
    prop(
        "configmap",
        Ty::String,
        "`NAMESPACE/NAME` of a ConfigMap in the app's cluster.",
    ),
    prop(
        "secret",
        Ty::String,
        "`NAMESPACE/NAME` of a Secret in the app's cluster.",
    ),
    prop_or(
        "values-key",
        Ty::String,
        "values.yaml",
        "The data key holding the values (Flux's valuesKey).",
    ),
    prop(
        "target-path",
        Ty::String,
        "Set the key's whole value at this Helm `--set` path instead of merging it as YAML (Flux's targetPath).",
    ),
    prop_or(
        "optional",
        Ty::Bool,
        "#false",
        "A missing ConfigMap, Secret or key gives no values instead of failing the app.",
    ),
];

const VALUES_FROM_ONE_OF: &[OneOf] = &[OneOf {
    names: &["configmap", "secret"],
    required: true,
}];

const SET_IMAGE_PROPS: &[Prop] = &[
    prop(
        "new-name",
        Ty::String,
        "The image name to use instead (kustomize images newName).",
    ),
    prop("new-tag", Ty::String, "The tag to use (kustomize images newTag)."),
    prop(
        "digest",
        Ty::Digest,
        "The digest to use; replaces the tag (kustomize images digest).",
    ),
];

const PATCH_TARGET_PROPS: &[Prop] = &[
    prop(
        "group",
        Ty::String,
        "Target: the API group (`apps`); empty matches every group.",
    ),
    prop("version", Ty::String, "Target: the API version (`v1`)."),
    prop(
        "kind",
        Ty::String,
        "Target: the kind; a JSON 6902 patch needs it.",
    ),
    prop(
        "name",
        Ty::String,
        "Target: the object name (a regex, as kustomize reads it).",
    ),
    prop("namespace", Ty::String, "Target: the namespace (a regex)."),
    prop(
        "label-selector",
        Ty::String,
        "Target: a label selector such as `app=web,tier!=db`.",
    ),
    prop(
        "annotation-selector",
        Ty::String,
        "Target: an annotation selector, in label selector syntax.",
    ),
];

const SUBSTITUTE_FROM_PROPS: &[Prop] = &[
    prop(
        "file",
        Ty::Path,
        "A dotenv or YAML (`.yaml`, `.yml`, `.json`) file of variables: relative, in the app's source; absolute, on the host.",
    ),
    prop(
        "configmap",
        Ty::String,
        "`NAMESPACE/NAME` of a ConfigMap in the app's cluster whose data are variables.",
    ),
    prop(
        "secret",
        Ty::String,
        "`NAMESPACE/NAME` of a Secret in the app's cluster whose data are variables.",
    ),
    prop_or(
        "optional",
        Ty::Bool,
        "#false",
        "A missing file, ConfigMap or Secret gives no variables instead of failing the app.",
    ),
];

const SUBSTITUTE_FROM_ONE_OF: &[OneOf] = &[OneOf {
    names: &["file", "configmap", "secret"],
    required: true,
}];

const SOPS_PROPS: &[Prop] = &[required(prop(
    "age-key-file",
    Ty::Path,
    "The age identities (age-keygen output) that decrypt the app's SOPS files.",
))];

const FREE_STRINGS: Children = Children::Free {
    name_ty: Ty::String,
    args: Args {
        name: "value",
        ty: Ty::String,
        min: 1,
        max: Some(1),
        default: None,
    },
    doc: "Each child is a key, then its value.",
};

const COMMON_METADATA_CHILDREN: &[NodeSpec] = &[
    NodeSpec {
        children: FREE_STRINGS,
        ..node(
            "labels",
            "Labels set on every object (replacing ones of the same key).",
        )
    },
    NodeSpec {
        children: FREE_STRINGS,
        ..node(
            "annotations",
            "Annotations set on every object (replacing ones of the same key).",
        )
    },
];

const CRD_POLICIES: &[&str] = &["create", "skip"];
const CHART_PROPS: &[Prop] = &[prop(
    "version",
    Ty::Semver,
    "A semver range; default: the highest version without a pre-release.",
)];
const VALUES_FILE_PROPS: &[Prop] = &[prop(
    "source",
    Ty::Ref(RefKind::Source),
    "The git or OCI source holding the file. Default: the app's own source.",
)];

const SUBSTITUTE_PROPS: &[Prop] = &[
    prop_or(
        "strict",
        Ty::Bool,
        "#false",
        "An unset variable without a default fails the render (Flux's StrictPostBuildSubstitutions).",
    ),
    prop_or(
        "always",
        Ty::Bool,
        "#false",
        "Substitute even when no variable is defined (Flux's substituteStrategy: Always).",
    ),
];

const APP_ONE_OF: &[OneOf] = &[OneOf {
    names: &["cluster", "target"],
    required: false,
}];

pub const APP: NodeSpec = with_one_of(
    object(
        "app",
        "Manifests at a path in a source, applied to a cluster or written to a directory.",
        APP_CHILDREN,
    ),
    APP_ONE_OF,
);

const ORDER_PROP: &[Prop] = &[prop_or(
    "order",
    Ty::Enum(ORDERS),
    "asc",
    "`asc`: the last tag in this order wins.",
)];
const FILTER_PROPS: &[Prop] = &[prop(
    "extract",
    Ty::Template,
    "Compare this instead of the whole tag, e.g. \"$ts\" for a named group.",
)];

const IMAGE_CHILDREN: &[NodeSpec] = &[
    at_least_once(value(
        "repository",
        Ty::OciRepo,
        "The image repository, without tag.",
    )),
    value_or(
        "namespace",
        Ty::Namespace,
        d::IMAGE_NAMESPACE,
        "The policy's namespace: Flux markers \"NAMESPACE:NAME\" must name it.",
    ),
    value_or(
        "interval",
        Ty::Duration,
        d::IMAGE_INTERVAL,
        "How often to list tags.",
    ),
    value_or(
        "timeout",
        Ty::Duration,
        d::IMAGE_TIMEOUT,
        "Give up on one scan after this long.",
    ),
    value("semver", Ty::Semver, "Pick the highest tag in this semver range."),
    with_props(
        node(
            "alphabetical",
            "Pick by alphabetical order of the (extracted) tag.",
        ),
        ORDER_PROP,
    ),
    with_props(
        node("numerical", "Pick by numeric order of the (extracted) tag."),
        ORDER_PROP,
    ),
    with_props(
        value("filter", Ty::Regex, "Only consider tags matching this regex."),
        FILTER_PROPS,
    ),
    repeated(with_args(
        node(
            "exclude",
            "Never consider tags matching these regexes (default: `^.*\\.sig$`, replaced when set).",
        ),
        many("pattern", Ty::Regex),
    )),
    REGISTRY_AUTH,
    value_or(
        "insecure",
        Ty::Bool,
        "#false",
        "Allow plain HTTP to the registry.",
    ),
    CA_FILE,
];

const IMAGE_ONE_OF: &[OneOf] = &[OneOf {
    names: &["semver", "alphabetical", "numerical"],
    required: true,
}];

pub const IMAGE: NodeSpec = with_one_of(
    object(
        "image",
        "An image policy: which tag of a registry repository is the latest.",
        IMAGE_CHILDREN,
    ),
    IMAGE_ONE_OF,
);

const AUTHOR_PROPS: &[Prop] = &[
    required(prop("name", Ty::String, "Author name.")),
    required(prop("email", Ty::Email, "Author email.")),
];

const AUTOMATION_CHILDREN: &[NodeSpec] = &[
    at_least_once(value(
        "source",
        Ty::Ref(RefKind::Source),
        "The git source to update.",
    )),
    value(
        "checkout",
        Ty::Branch,
        "Branch to start from. Default: the source's branch.",
    ),
    value(
        "push",
        Ty::Branch,
        "Branch to push to. Default: the checkout branch.",
    ),
    value_or("path", Ty::RelPath, ".", "Only patch files under this directory."),
    at_least_once(with_props(
        node("author", "Author and committer of the commits."),
        AUTHOR_PROPS,
    )),
    value_or(
        "message",
        Ty::Message,
        d::COMMIT_MESSAGE,
        "Commit message, a minijinja template over `changes`.",
    ),
    value_or(
        "interval",
        Ty::Duration,
        d::AUTOMATION_INTERVAL,
        "How often to look for updates.",
    ),
];

pub const AUTOMATION: NodeSpec = object(
    "automation",
    "Write the images' chosen tags into a git source: patch, commit, push.",
    AUTOMATION_CHILDREN,
);

const SUSPEND_PROPS: &[Prop] = &[
    prop("source", Ty::Ref(RefKind::Source), "Suspend this source."),
    prop("app", Ty::Ref(RefKind::App), "Suspend this app."),
    prop("image", Ty::Ref(RefKind::Image), "Suspend this image policy."),
    prop(
        "automation",
        Ty::Ref(RefKind::Automation),
        "Suspend this automation.",
    ),
    prop("reason", Ty::String, "Why; shown in status."),
    prop("until", Ty::Timestamp, "Resume by itself at this time."),
];

const SUSPEND_ONE_OF: &[OneOf] = &[OneOf {
    names: SUSPEND_TARGETS,
    required: true,
}];

pub const SUSPEND: NodeSpec = NodeSpec {
    max: None,
    ..with_one_of(
        with_props(
            node(
                "suspend",
                "Pause one object: it starts no new runs until resumed or until `until`.",
            ),
            SUSPEND_PROPS,
        ),
        SUSPEND_ONE_OF,
    )
};

const RECEIVER_CHILDREN: &[NodeSpec] = &[
    at_least_once(value(
        "type",
        Ty::Enum(RECEIVER_TYPES),
        "Who sends the hooks: how they are signed and what their events say.",
    )),
    at_least_once(value(
        "secret-file",
        Ty::Path,
        "File holding the shared secret (HMAC key or token).",
    )),
    at_least_once(repeated(with_args(
        node(
            "reconcile",
            "What a valid delivery makes reconcile at once: `source/NAME`, `app/NAME`, `image/NAME`, `automation/NAME`.",
        ),
        many("object", Ty::ObjectRef),
    ))),
];

pub const RECEIVER: NodeSpec = object(
    "receiver",
    "A webhook at `POST /hooks/NAME`: a signed push event reconciles objects now.",
    RECEIVER_CHILDREN,
);

const NOTIFY_CHILDREN: &[NodeSpec] = &[
    at_least_once(value(
        "url-file",
        Ty::Path,
        "File holding the URL to post to (a chat webhook URL is a secret), or the repository for `github-status`.",
    )),
    value_or(
        "format",
        Ty::Enum(NOTIFY_FORMATS),
        "generic",
        "`slack`, `generic` (the event as JSON) or `github-status` (a commit status).",
    ),
    value(
        "token-file",
        Ty::Path,
        "File holding a token: a GitHub token for `github-status`, a bearer token for `generic`.",
    ),
    repeated(with_args(
        node(
            "on",
            "Which changes to post: `failure`, `recovery`, `push`, `apply`. Default: all four.",
        ),
        many("event", Ty::Enum(NOTIFY_EVENTS)),
    )),
    repeated(with_args(
        node(
            "objects",
            "Only changes of these objects: `app/*`, `source/platform`, `*`. Default: every object.",
        ),
        many("pattern", Ty::ObjectPattern),
    )),
    value_or(
        "timeout",
        Ty::Duration,
        d::NOTIFY_TIMEOUT,
        "Give up on one attempt after this long (failed posts are retried with backoff).",
    ),
    CA_FILE,
];

pub const NOTIFY: NodeSpec = object(
    "notify",
    "Post state changes (failures, recoveries, pushes, applies) to a chat, a webhook or GitHub commit statuses.",
    NOTIFY_CHILDREN,
);

const DOCUMENT_CHILDREN: &[NodeSpec] = &[
    AGENT, CLUSTER, SOURCE, APP, IMAGE, AUTOMATION, RECEIVER, NOTIFY, SUSPEND,
];

/// The top level of a config file.
pub const DOCUMENT: NodeSpec = NodeSpec {
    name: "document",
    doc: "A mooring config file.",
    args: None,
    props: &[],
    children: Children::Nodes(DOCUMENT_CHILDREN),
    min: 1,
    max: Some(1),
    one_of: &[],
};

// ---- rendering as KDL Schema ------------------------------------------------

/// The table as a KDL Schema 1.0 document. KDL Schema has no notion of
/// defaults, of mutually exclusive options or of formats such as "path" or
/// "semver range"; those are added as `x-mooring-default`,
/// `x-mooring-one-of` and `x-mooring-type` nodes (docs/config.md).
pub fn to_kdl_schema() -> String {
    let mut out = String::new();
    out.push_str("// The mooring config language as a KDL Schema 1.0 document.\n");
    out.push_str("// Generated by `mooring schema`; do not edit by hand.\n");
    out.push_str("document {\n");
    out.push_str("    info {\n");
    out.push_str("        title \"mooring configuration\"\n");
    let _ = writeln!(out, "        version \"{}\"", env!("CARGO_PKG_VERSION"));
    out.push_str("        description \"One file describes sources, apps, image policies, automations, receivers, notifications and suspensions.\"\n");
    out.push_str("    }\n");
    if let Children::Nodes(nodes) = DOCUMENT.children {
        for n in nodes {
            write_node(&mut out, n, 1);
        }
    }
    out.push_str("}\n");
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("    ");
    }
}

fn write_node(out: &mut String, n: &NodeSpec, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "node {} description={} {{", q(n.name), q(n.doc));
    let inner = depth + 1;
    if n.min > 0 {
        indent(out, inner);
        let _ = writeln!(out, "min {}", n.min);
    }
    if let Some(max) = n.max {
        indent(out, inner);
        let _ = writeln!(out, "max {max}");
    }
    if let Some(args) = &n.args {
        write_value(out, args, inner);
    }
    for p in n.props {
        indent(out, inner);
        let _ = writeln!(out, "prop {} description={} {{", q(p.name), q(p.doc));
        if p.required {
            indent(out, inner + 1);
            out.push_str("required #true\n");
        }
        write_validations(out, p.ty, p.default, inner + 1);
        indent(out, inner);
        out.push_str("}\n");
    }
    for group in n.one_of {
        indent(out, inner);
        let names: Vec<String> = group.names.iter().map(|s| q(s)).collect();
        let _ = writeln!(
            out,
            "x-mooring-one-of {} required={}",
            names.join(" "),
            if group.required { "#true" } else { "#false" }
        );
    }
    match n.children {
        Children::None => {}
        Children::Nodes(nodes) => {
            indent(out, inner);
            out.push_str("children {\n");
            for c in nodes {
                write_node(out, c, inner + 1);
            }
            indent(out, inner);
            out.push_str("}\n");
        }
        Children::Free { name_ty, args, doc } => {
            indent(out, inner);
            out.push_str("children {\n");
            indent(out, inner + 1);
            out.push_str("node-names {\n");
            write_validations(out, name_ty, None, inner + 2);
            indent(out, inner + 1);
            out.push_str("}\n");
            indent(out, inner + 1);
            let _ = writeln!(out, "node description={} {{", q(doc));
            write_value(out, &args, inner + 2);
            indent(out, inner + 1);
            out.push_str("}\n");
            indent(out, inner);
            out.push_str("}\n");
        }
    }
    indent(out, depth);
    out.push_str("}\n");
}

fn write_value(out: &mut String, args: &Args, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "value description={} {{", q(args.name));
    indent(out, depth + 1);
    let _ = writeln!(out, "min {}", args.min);
    if let Some(max) = args.max {
        indent(out, depth + 1);
        let _ = writeln!(out, "max {max}");
    }
    write_validations(out, args.ty, args.default, depth + 1);
    indent(out, depth);
    out.push_str("}\n");
}

fn write_validations(out: &mut String, ty: Ty, default: Option<&str>, depth: usize) {
    indent(out, depth);
    let _ = writeln!(out, "type {}", q(ty.kdl_type()));
    indent(out, depth);
    let _ = writeln!(out, "x-mooring-type {}", q(ty.name()));
    if let Some(format) = ty.schema_format() {
        indent(out, depth);
        let _ = writeln!(out, "format {}", q(format));
    }
    match ty {
        Ty::Enum(values) => {
            indent(out, depth);
            let vs: Vec<String> = values.iter().map(|v| q(v)).collect();
            let _ = writeln!(out, "enum {}", vs.join(" "));
        }
        Ty::Int { min, max } => {
            indent(out, depth);
            let _ = writeln!(out, "\">=\" {min}");
            indent(out, depth);
            let _ = writeln!(out, "\"<=\" {max}");
        }
        _ => {}
    }
    if let Some(default) = default {
        indent(out, depth);
        // Booleans and numbers are written as KDL values, the rest as strings.
        let value = match ty {
            Ty::Bool | Ty::Int { .. } => default.to_string(),
            _ => q(default),
        };
        let _ = writeln!(out, "x-mooring-default {value}");
    }
}

/// A KDL string literal for `s`.
pub fn q(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    crate::quoted::write(&mut out, s, crate::quoted::Syntax::Kdl);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_valid_kdl() {
        let text = to_kdl_schema();
        if let Err(e) = kdl::KdlDocument::parse_v2(&text) {
            panic!(
                "{:?}",
                e.diagnostics
                    .iter()
                    .map(|d| (d.span, &d.message))
                    .collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn quoting_escapes_what_kdl_needs() {
        assert_eq!(q("a\"b\\c\nd\u{7}"), r#""a\"b\\c\nd\u{7}""#);
        let parsed = kdl::KdlValue::String("a\"b\\c\nd\u{7}".into());
        let doc = kdl::KdlDocument::parse_v2(&format!("n {}", q("a\"b\\c\nd\u{7}"))).unwrap();
        assert_eq!(doc.nodes()[0].entries()[0].value(), &parsed);
    }
}
