//! Pass 3, decode: the checked tree into the typed [`Config`], with the
//! checks that need more than one value (an OCI-only option on a git
//! source, a filter's `extract`). A value that failed its check in pass 2
//! reads as absent, so that decoding falls back to the default and goes on.

use std::cell::RefCell;
use std::path::PathBuf;
use std::time::Duration;

use miette::SourceSpan;

use super::super::diagnostic::{Diagnostic, code};
use super::super::model::*;
use super::super::schema::{self, Ty};
use super::super::syntax::{Document, Entry, Node as KdlNode};
use super::super::value;
use super::shape::{find_spec, list_names, problem_at, value_span};
use super::spans::span_within;

/// Decode a document (parsed from `src`) whose shape has been checked.
/// Problems found here are pushed to `diags`; the returned config is
/// complete either way.
pub fn decode(doc: &Document, src: &str, diags: &mut Vec<Diagnostic>) -> Config {
    let mut cfg = Config::default();
    let found = RefCell::new(Vec::new());
    for node in doc.nodes() {
        let n = Node {
            kdl: node,
            src,
            diags: &found,
        };
        match node.name().value() {
            "agent" => cfg.agent = decode_agent(&n),
            "cluster" => cfg.clusters.push(decode_cluster(&n)),
            "source" => cfg.sources.push(decode_source(&n)),
            "app" => cfg.apps.push(decode_app(&n)),
            "image" => cfg.images.push(decode_image(&n)),
            "automation" => cfg.automations.push(decode_automation(&n)),
            "receiver" => cfg.receivers.push(decode_receiver(&n)),
            "notify" => cfg.notifications.push(decode_notify(&n)),
            "suspend" => {
                if let Some(s) = decode_suspend(&n) {
                    cfg.suspensions.push(s);
                }
            }
            _ => {} // reported by check_shape
        }
    }
    diags.extend(found.into_inner());
    cfg
}

/// A node with typed accessors. Values that failed their check in pass 2
/// read as absent, so callers fall back to defaults.
struct Node<'a> {
    kdl: &'a KdlNode,
    /// The config text, for spans inside values.
    src: &'a str,
    diags: &'a RefCell<Vec<Diagnostic>>,
}

impl<'a> Node<'a> {
    fn sub(&self, kdl: &'a KdlNode) -> Node<'a> {
        Node {
            kdl,
            src: self.src,
            diags: self.diags,
        }
    }

    fn push(&self, d: Diagnostic) {
        self.diags.borrow_mut().push(d);
    }

    fn children(&self, name: &'a str) -> impl Iterator<Item = &'a KdlNode> + 'a {
        debug_assert!(
            find_spec(self.kdl.name().value()).is_none_or(|s| s.child(name).is_some()),
            "decoder reads `{name}` in `{}`, which the schema lacks",
            self.kdl.name().value()
        );
        self.kdl
            .children()
            .map(|c| c.nodes())
            .unwrap_or_default()
            .iter()
            .filter(move |n| n.name().value() == name)
    }

    fn child(&self, name: &'a str) -> Option<&'a KdlNode> {
        self.children(name).next()
    }

    fn has(&self, name: &'a str) -> bool {
        self.child(name).is_some()
    }

    /// The node's own first argument (an object's name).
    fn own_arg(&self) -> Option<Spanned<String>> {
        first_arg(self.kdl).and_then(|e| string_of(e, Ty::Name))
    }

    /// The string argument of child `name`, if present and valid as `ty`.
    fn str(&self, name: &'a str, ty: Ty) -> Option<Spanned<String>> {
        self.child(name)
            .and_then(first_arg)
            .and_then(|e| string_of(e, ty))
    }

    fn string(&self, name: &'a str, ty: Ty) -> Option<String> {
        self.str(name, ty).map(|s| s.value)
    }

    fn path(&self, name: &'a str) -> Option<PathBuf> {
        self.string(name, Ty::Path).map(PathBuf::from)
    }

    fn duration(&self, name: &'a str, default: &str) -> Duration {
        self.string(name, Ty::Duration)
            .and_then(|s| value::parse_duration(&s).ok())
            .or_else(|| value::parse_duration(default).ok())
            .unwrap_or(Duration::from_secs(60))
    }

    fn bool(&self, name: &'a str) -> Option<bool> {
        self.child(name)
            .and_then(first_arg)
            .and_then(|e| e.value().as_bool())
    }

    fn int(&self, name: &'a str, ty: Ty) -> Option<i128> {
        let Ty::Int { min, max } = ty else { return None };
        self.child(name)
            .and_then(first_arg)
            .and_then(|e| e.value().as_integer())
            .filter(|i| *i >= i128::from(min) && *i <= i128::from(max))
    }

    /// Every argument of every `name` child, valid as `ty`.
    fn all_args(&self, name: &'a str, ty: Ty) -> Vec<Spanned<String>> {
        self.children(name)
            .flat_map(|n| n.entries().iter().filter(|e| e.name().is_none()))
            .filter_map(|e| string_of(e, ty))
            .collect()
    }
}

fn first_arg(node: &KdlNode) -> Option<&Entry> {
    node.entries().iter().find(|e| e.name().is_none())
}

fn prop_entry<'a>(node: &'a KdlNode, key: &str) -> Option<&'a Entry> {
    debug_assert!(
        find_spec(node.name().value()).is_none_or(|s| s.prop(key).is_some()),
        "decoder reads property `{key}` of `{}`, which the schema lacks",
        node.name().value()
    );
    node.entries()
        .iter()
        .rev()
        .find(|e| e.name().is_some_and(|k| k.value() == key))
}

fn prop_str(node: &KdlNode, key: &str, ty: Ty) -> Option<Spanned<String>> {
    prop_entry(node, key).and_then(|e| string_of(e, ty))
}

/// The string value of `entry` if it is valid as `ty`. Names and
/// references are taken as written even when invalid (that was reported
/// once, at the name), so that references to them still resolve.
fn string_of(entry: &Entry, ty: Ty) -> Option<Spanned<String>> {
    let s = entry.value().as_string()?;
    if !matches!(ty, Ty::Name | Ty::Ref(_)) {
        value::check_str(ty, s).ok()?;
    }
    Some(Spanned::new(s.to_string(), value_span(entry)))
}

fn placeholder_name(node: &KdlNode) -> Spanned<String> {
    Spanned::new(String::new(), node.name().span())
}

fn decode_agent(n: &Node) -> Settings {
    let mut agent = Settings::default();
    if let Some(p) = n.path("state-dir") {
        agent.state_dir = p;
    }
    if let Some(listen) = n.str("listen", Ty::SocketAddr)
        && let Ok(addr) = listen.parse::<std::net::SocketAddr>()
    {
        agent.listen = addr;
        if !addr.ip().is_loopback() && !n.has("api-token-file") {
            n.push(
                Diagnostic::error(
                    code::MISSING_VALUE,
                    listen.span,
                    "a listener outside loopback needs an `api-token-file`",
                )
                .label("reachable from other hosts")
                .help(
                    "add `api-token-file \"/etc/mooring/api-token\"` to `agent`: POST endpoints \
                     (reconcile) then require that bearer token",
                ),
            );
        }
    }
    if let Some(log) = n.child("log") {
        if let Some(level) = prop_str(log, "level", Ty::Enum(schema::LOG_LEVELS)) {
            agent.log.level = match level.as_str() {
                "trace" => LogLevel::Trace,
                "debug" => LogLevel::Debug,
                "warn" => LogLevel::Warn,
                "error" => LogLevel::Error,
                _ => LogLevel::Info,
            };
        }
        if let Some(format) = prop_str(log, "format", Ty::Enum(schema::LOG_FORMATS)) {
            agent.log.format = if format.as_str() == "json" {
                LogFormat::Json
            } else {
                LogFormat::Text
            };
        }
    }
    if let Some(f) = n.child("log-file")
        && let Some(dir) = prop_str(f, "dir", Ty::Path)
    {
        let rotate = match prop_str(f, "rotate", Ty::Enum(schema::ROTATIONS))
            .as_deref()
            .map(String::as_str)
        {
            Some("hourly") => Rotation::Hourly,
            Some("never") => Rotation::Never,
            _ => Rotation::Daily,
        };
        let keep = prop_entry(f, "keep")
            .and_then(|e| e.value().as_integer())
            .and_then(|i| u32::try_from(i).ok())
            .filter(|i| *i >= 1)
            .unwrap_or(defaults::LOG_KEEP);
        agent.log_file = Some(LogFile {
            dir: PathBuf::from(dir.value),
            rotate,
            keep,
        });
    }
    if let Some(fm) = n.string("field-manager", Ty::String) {
        agent.field_manager = fm;
    }
    if let Some(c) = n.int("concurrency", Ty::Int { min: 1, max: 256 }) {
        agent.concurrency = u32::try_from(c).unwrap_or(defaults::CONCURRENCY);
    }
    agent.api_token_file = n.path("api-token-file");
    agent.reapply = n
        .string("reapply", Ty::Duration)
        .and_then(|s| value::parse_duration(&s).ok());
    if let Some(ns) = n.string("inventory-namespace", Ty::Namespace) {
        agent.inventory_namespace = ns;
    }
    agent.default_cluster = n.all_args("default-cluster", Ty::Ref(schema::RefKind::Cluster));
    agent.leader_election = n.child("leader-election").map(|le| {
        let duration = prop_str(le, "duration", Ty::Duration)
            .and_then(|s| Some((value::parse_duration(&s).ok()?, s.span)));
        if let Some((d, span)) = duration
            && d < MIN_LEASE
        {
            n.push(
                Diagnostic::error(
                    code::INVALID_VALUE,
                    span,
                    format!(
                        "a lease of {} is too short to renew in time",
                        humantime::format_duration(d)
                    ),
                )
                .label("too short")
                .help("use at least \"2s\"; \"15s\" is usual (a standby takes over within it)"),
            );
        }
        LeaderElection {
            lease: prop_str(le, "lease", Ty::Name)
                .map(|s| s.value)
                .unwrap_or_else(|| defaults::LEASE_NAME.into()),
            namespace: prop_str(le, "namespace", Ty::Namespace).map(|s| s.value),
            duration: duration
                .map(|(d, _)| d.max(MIN_LEASE))
                .or_else(|| value::parse_duration(defaults::LEASE_DURATION).ok())
                .unwrap_or(Duration::from_secs(15)),
            cluster: prop_str(le, "cluster", Ty::Ref(schema::RefKind::Cluster)),
            // Out of range was reported by the shape pass.
            shards: prop_entry(le, "shards")
                .and_then(|e| e.value().as_integer())
                .and_then(|i| u32::try_from(i).ok())
                .filter(|i| (1..=crate::config::model::MAX_SHARDS).contains(i))
                .unwrap_or(1),
        }
    });
    agent
}

/// The shortest lease: renewing takes a round trip or two.
const MIN_LEASE: Duration = Duration::from_secs(2);

/// `ca-file` of a node that talks HTTPS; a warning where it cannot apply.
fn decode_ca_file(n: &Node, https: bool, why_not: &str) -> Option<PathBuf> {
    let path = n.path("ca-file")?;
    if !https {
        n.push(
            Diagnostic::warning(
                code::NOT_APPLICABLE,
                n.children_span("ca-file"),
                "`ca-file` is only used for HTTPS",
            )
            .label("not used")
            .help(why_not.to_string()),
        );
    }
    Some(path)
}

fn decode_receiver(n: &Node) -> Receiver {
    let kind = n
        .string("type", Ty::Enum(schema::RECEIVER_TYPES))
        .and_then(|t| ReceiverKind::parse(&t))
        .unwrap_or(ReceiverKind::GenericHmac);
    let reconcile = n
        .all_args("reconcile", Ty::ObjectRef)
        .into_iter()
        .filter_map(|r| {
            let (kind, at) = value::parse_object_ref(&r).ok()?;
            let span = SourceSpan::from((r.span.offset(), r.span.len()));
            // Point at the name part where the text maps one to one.
            let name_span = n
                .kdl
                .children()
                .and_then(|c| {
                    c.nodes()
                        .iter()
                        .flat_map(|node| node.entries())
                        .find(|e| value_span(e) == span)
                })
                .and_then(|e| span_within(n.src, e, at, r.len() - at))
                .unwrap_or(span);
            Some(ObjectRef {
                kind,
                name: Spanned::new(r.value[at..].to_string(), name_span),
            })
        })
        .collect();
    Receiver {
        name: n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl)),
        kind,
        secret_file: n.path("secret-file").unwrap_or_default(),
        reconcile,
    }
}

fn decode_notify(n: &Node) -> Notify {
    let format = match n.string("format", Ty::Enum(schema::NOTIFY_FORMATS)).as_deref() {
        Some("slack") => NotifyFormat::Slack,
        Some("github-status") => NotifyFormat::GithubStatus,
        _ => NotifyFormat::Generic,
    };
    let mut on: Vec<NotifyEvent> = n
        .all_args("on", Ty::Enum(schema::NOTIFY_EVENTS))
        .iter()
        .filter_map(|e| NotifyEvent::parse(e))
        .collect();
    on.sort();
    on.dedup();
    if on.is_empty() {
        on = NotifyEvent::ALL.to_vec();
    }
    let token_file = n.path("token-file");
    if format == NotifyFormat::GithubStatus && token_file.is_none() {
        n.push(
            Diagnostic::error(
                code::MISSING_VALUE,
                n.children_span("format"),
                "`github-status` needs a `token-file`",
            )
            .label("posts to the GitHub API")
            .help("add `token-file \"/etc/mooring/github-token\"`: a token allowed to write commit statuses"),
        );
    }
    if format == NotifyFormat::Slack && token_file.is_some() {
        n.push(
            Diagnostic::warning(
                code::NOT_APPLICABLE,
                n.children_span("token-file"),
                "`token-file` is not used by `slack`",
            )
            .label("not used")
            .help("a Slack webhook URL carries its own secret: remove `token-file`"),
        );
    }
    Notify {
        name: n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl)),
        url_file: n.path("url-file").unwrap_or_default(),
        token_file,
        format,
        on,
        objects: n
            .all_args("objects", Ty::ObjectPattern)
            .iter()
            .filter_map(|p| value::parse_object_pattern(p).ok())
            .map(|(kind, name)| ObjectPattern { kind, name })
            .collect(),
        timeout: n.duration("timeout", defaults::NOTIFY_TIMEOUT),
        ca_file: n.path("ca-file"),
    }
}

fn decode_cluster(n: &Node) -> Cluster {
    Cluster {
        name: n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl)),
        kubeconfig: n.path("kubeconfig"),
        context: n.string("context", Ty::String),
        ca_file: n.path("ca-file"),
    }
}

fn decode_auth(n: &Node, for_git: bool) -> Option<Auth> {
    let node = n.child("auth")?;
    let a = n.sub(node);
    let auth = Auth {
        username: a.string("username", Ty::String),
        password_file: a.path("password-file"),
        token_file: a.path("token-file"),
        ssh_key: a.path("ssh-key"),
        known_hosts: a.path("known-hosts"),
        docker_config: a.path("docker-config"),
    };
    let span_of = |name: &str| a.children_span(name);
    match (&auth.username, &auth.password_file) {
        (Some(_), None) => a.push(
            Diagnostic::error(
                code::MISSING_VALUE,
                span_of("username"),
                "`username` needs a `password-file`",
            )
            .label("no password for this user")
            .help("add `password-file \"/etc/mooring/password\"` next to it"),
        ),
        (None, Some(_)) => a.push(
            Diagnostic::error(
                code::MISSING_VALUE,
                span_of("password-file"),
                "`password-file` needs a `username`",
            )
            .label("password for whom?")
            .help("add `username \"…\"` next to it"),
        ),
        _ => {}
    }
    if auth.token_file.is_some() && auth.username.is_some() {
        a.push(
            Diagnostic::error(
                code::CONFLICTING_OPTIONS,
                span_of("token-file"),
                "`auth` sets both `token-file` and `username`",
            )
            .label("conflicts with `username`")
            .related(span_of("username"), "set here")
            .help("use a token or a user name and password, not both"),
        );
    }
    let not_for = |names: &[&str], kind: &str, hint: &str| {
        for name in names {
            if a.has(name) {
                a.push(
                    Diagnostic::error(
                        code::NOT_APPLICABLE,
                        span_of(name),
                        format!("`{name}` does not apply to {kind}"),
                    )
                    .label("not used")
                    .help(hint.to_string()),
                );
            }
        }
    };
    if for_git {
        not_for(
            &["docker-config"],
            "git sources",
            "`docker-config` is for OCI sources and images",
        );
    } else {
        not_for(
            &["ssh-key", "known-hosts"],
            "OCI registries",
            "registries use `username` + `password-file`, `token-file` or `docker-config`",
        );
    }
    Some(auth)
}

impl Node<'_> {
    fn children_span(&self, name: &str) -> SourceSpan {
        self.kdl
            .children()
            .map(|c| c.nodes())
            .unwrap_or_default()
            .iter()
            .find(|n| n.name().value() == name)
            .map(|n| n.name().span())
            .unwrap_or_else(|| self.kdl.name().span())
    }
}

fn decode_source(n: &Node) -> Source {
    let name = n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl));
    let is_oci = n.has("oci") && !n.has("git");
    let is_helm = n.has("helm") && !n.has("git") && !n.has("oci");
    let not_for = |opt: &str, kind: &str, hint: &str| {
        if n.has(opt) {
            n.push(
                Diagnostic::error(
                    code::NOT_APPLICABLE,
                    n.children_span(opt),
                    format!("`{opt}` does not apply to {kind} sources"),
                )
                .label("not used")
                .help(hint.to_string()),
            );
        }
    };
    let kind = if is_helm {
        let chart_hint = "a Helm repository source has no revision of its own: an app picks the chart and its \
                          version with `chart \"NAME\" version=\"RANGE\"`";
        for opt in ["branch", "tag", "semver", "commit", "digest"] {
            not_for(opt, "Helm repository", chart_hint);
        }
        not_for(
            "ignore",
            "Helm repository",
            "charts are rendered whole; a chart's own .helmignore decides what it holds",
        );
        let url = n.string("helm", Ty::HelmRepo).unwrap_or_default();
        if !url.starts_with("oci://")
            && let Some(auth) = n.child("auth")
        {
            let an = n.sub(auth);
            if an.has("docker-config") {
                an.push(
                    Diagnostic::error(
                        code::NOT_APPLICABLE,
                        an.children_span("docker-config"),
                        "`docker-config` does not apply to an HTTP Helm repository",
                    )
                    .label("not used")
                    .help("use `username` + `password-file` (basic auth) or `token-file` (a bearer token)"),
                );
            }
        }
        SourceKind::Helm {
            url: url.trim_end_matches('/').to_string(),
            insecure: n.bool("insecure").unwrap_or(false),
        }
    } else if is_oci {
        not_for("branch", "OCI", "OCI sources follow `tag`, `semver` or `digest`");
        not_for("commit", "OCI", "pin an OCI artifact with `digest \"sha256:…\"`");
        let url = n
            .string("oci", Ty::OciRepo)
            .and_then(|s| value::check_oci_repo(&s).ok())
            .unwrap_or_default();
        let reference = if let Some(d) = n.string("digest", Ty::Digest) {
            OciRef::Digest(d)
        } else if let Some(s) = n.string("semver", Ty::Semver) {
            OciRef::Semver(s)
        } else {
            OciRef::Tag(
                n.string("tag", Ty::String)
                    .unwrap_or_else(|| defaults::OCI_TAG.into()),
            )
        };
        SourceKind::Oci {
            url,
            reference,
            insecure: n.bool("insecure").unwrap_or(false),
        }
    } else {
        not_for(
            "digest",
            "git",
            "pin a git commit with `commit \"<40 hex digits>\"`",
        );
        not_for(
            "insecure",
            "git",
            "for git, the URL's scheme decides: http:// is plain",
        );
        let reference = if let Some(b) = n.string("branch", Ty::Branch) {
            GitRef::Branch(b)
        } else if let Some(t) = n.string("tag", Ty::String) {
            GitRef::Tag(t)
        } else if let Some(s) = n.string("semver", Ty::Semver) {
            GitRef::Semver(s)
        } else if let Some(c) = n.string("commit", Ty::Commit) {
            GitRef::Commit(c)
        } else {
            GitRef::DefaultBranch
        };
        let url = n.string("git", Ty::GitUrl).unwrap_or_default();
        let auth_node = n.child("auth");
        if let Some(auth) = auth_node {
            let an = n.sub(auth);
            let ssh = url.starts_with("ssh://") || (!url.contains("://") && url.contains(':'));
            if an.has("ssh-key") && !ssh && !url.is_empty() {
                an.push(
                    Diagnostic::warning(
                        code::NOT_APPLICABLE,
                        an.children_span("ssh-key"),
                        "`ssh-key` is only used for ssh URLs",
                    )
                    .label("not used")
                    .help("use an ssh:// or git@host:path URL, or remove the key"),
                );
            }
        }
        SourceKind::Git { url, reference }
    };
    let ca_file = match &kind {
        SourceKind::Oci { insecure, .. } => decode_ca_file(
            n,
            !insecure,
            "`insecure #true` talks plain HTTP: remove `insecure` to use HTTPS with this CA",
        ),
        SourceKind::Git { url, .. } => decode_ca_file(
            n,
            url.is_empty() || url.starts_with("https://"),
            "the CA is used for https:// URLs; ssh, git:// and file:// do not use it",
        ),
        SourceKind::Helm { url, insecure } => decode_ca_file(
            n,
            url.is_empty() || url.starts_with("https://") || (url.starts_with("oci://") && !insecure),
            "the CA is used for https:// and (without `insecure`) oci:// repositories",
        ),
    };
    Source {
        name,
        kind,
        ca_file,
        interval: n.duration("interval", defaults::SOURCE_INTERVAL),
        timeout: n.duration("timeout", defaults::SOURCE_TIMEOUT),
        auth: decode_auth(n, !is_oci && !is_helm),
        ignore: n
            .all_args("ignore", Ty::Glob)
            .into_iter()
            .map(|s| s.value)
            .collect(),
        limits: decode_limits(n),
    }
}

fn decode_limits(n: &Node) -> Limits {
    let mut limits = Limits::default();
    if let Some(node) = n.child("limits") {
        if let Some(bytes) = prop_str(node, "max-size", Ty::Size).and_then(|s| value::parse_size(&s).ok()) {
            limits.max_bytes = bytes;
        }
        if let Some(files) = prop_entry(node, "max-files")
            .and_then(|e| e.value().as_integer())
            .and_then(|i| u64::try_from(i).ok())
            .filter(|i| *i >= 1)
        {
            limits.max_files = files;
        }
    }
    limits
}

fn decode_app(n: &Node) -> App {
    let name = n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl));
    let target = match n.child("target").and_then(|t| prop_str(t, "dir", Ty::Path)) {
        Some(dir) => Target::Dir(PathBuf::from(dir.value)),
        None => Target::Cluster(n.all_args("cluster", Ty::Ref(schema::RefKind::Cluster))),
    };
    let substitute_node = n.child("substitute");
    let substitute_flag = |key: &str| {
        substitute_node
            .and_then(|s| prop_entry(s, key))
            .and_then(|e| e.value().as_bool())
            .unwrap_or(false)
    };
    let substitute_strict = substitute_flag("strict");
    let substitute_always = substitute_flag("always");
    let substitute: Vec<(String, String)> = n
        .child("substitute")
        .and_then(|s| s.children())
        .map(|c| {
            c.nodes()
                .iter()
                .filter_map(|v| {
                    let value = first_arg(v)?.value().as_string()?;
                    Some((v.name().value().to_string(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    if let Some(node) = substitute_node
        && substitute.is_empty()
        && !substitute_always
        && !n.has("substitute-from")
    {
        n.push(
            Diagnostic::warning(
                code::NOT_APPLICABLE,
                node.name().span(),
                "this `substitute` defines no variable, so nothing is substituted",
            )
            .label("turns nothing on")
            .help(
                "as in Flux, substitution runs only when a variable is defined; add `always=#true` to \
                 substitute `${var:=default}` and unset variables anyway (Flux's `substituteStrategy: Always`)",
            ),
        );
    }
    let wait = n.child("wait").map(|w| Wait {
        timeout: prop_str(w, "timeout", Ty::Duration)
            .and_then(|s| value::parse_duration(&s).ok())
            .or_else(|| value::parse_duration(defaults::WAIT_TIMEOUT).ok())
            .unwrap_or(Duration::from_secs(300)),
    });
    for (option, why) in [("force", "field managers"), ("recreate", "immutable fields")] {
        if let (Target::Dir(_), Some(node)) = (&target, n.child(option)) {
            n.push(
                Diagnostic::warning(
                    code::NOT_APPLICABLE,
                    node.name().span(),
                    format!("`{option}` has no effect on a `target dir=` app"),
                )
                .label("ignored")
                .help(format!("{why} exist only in a cluster; remove `{option}`")),
            );
        }
    }
    if let (Target::Dir(_), Some(w)) = (&target, n.child("wait")) {
        n.push(
            Diagnostic::warning(
                code::NOT_APPLICABLE,
                w.name().span(),
                "`wait` has no effect on a `target dir=` app",
            )
            .label("ignored")
            .help("health checks need a cluster; remove `wait`"),
        );
    }
    let target_is_dir = matches!(target, Target::Dir(_));
    let app_path = n
        .string("path", Ty::RelPath)
        .and_then(|p| value::check_rel_path(&p).ok())
        .unwrap_or_else(|| ".".into());
    let helm = decode_helm_release(n);
    App {
        helm,
        source: n
            .str("source", Ty::Ref(schema::RefKind::Source))
            .unwrap_or_else(|| placeholder_name(n.kdl)),
        name,
        path: app_path.clone(),
        target,
        namespace: n.string("namespace", Ty::Namespace),
        interval: n.duration("interval", defaults::APP_INTERVAL),
        timeout: n.duration("timeout", defaults::APP_TIMEOUT),
        prune: n.bool("prune").unwrap_or(false),
        force: n.bool("force").unwrap_or(false),
        recreate: n.bool("recreate").unwrap_or(false),
        wait,
        depends_on: n.all_args("depends-on", Ty::Ref(schema::RefKind::App)),
        substitute,
        substitute_strict,
        substitute_always,
        substitute_from: decode_substitute_from(n, &target_is_dir),
        kustomize: decode_kustomize(n, &app_path),
        sops: n
            .child("sops")
            .and_then(|s| prop_str(s, "age-key-file", Ty::Path))
            .map(|p| Sops {
                age_key_file: PathBuf::from(p.value),
            }),
    }
}

/// `substitute-from` entries; the cluster ones need an app on a cluster.
fn decode_substitute_from(n: &Node, target_is_dir: &bool) -> Vec<SubstituteFrom> {
    let mut out = Vec::new();
    for node in n.children("substitute-from") {
        let optional = prop_entry(node, "optional")
            .and_then(|e| e.value().as_bool())
            .unwrap_or(false);
        let from = if let Some(file) = prop_str(node, "file", Ty::Path) {
            let path = PathBuf::from(&file.value);
            if path.is_relative() && !file.value.starts_with('~') && escapes(&file.value) {
                n.push(
                    Diagnostic::error(
                        code::INVALID_VALUE,
                        file.span,
                        format!("`{}` leads outside the source", file.value),
                    )
                    .label("outside the source")
                    .help("a relative file is read from the app's source; use an absolute path for a file on the host"),
                );
                continue;
            }
            VarSource::File(path)
        } else if let Some(from) = cluster_object(
            n,
            node,
            *target_is_dir,
            "read the variables from a file instead: `substitute-from file=\"vars.env\"`",
        ) {
            from
        } else {
            continue;
        };
        out.push(SubstituteFrom { from, optional });
    }
    out
}

/// The `configmap="NS/NAME"` or `secret="NS/NAME"` of `node`: an object of
/// the app's cluster, which a `target dir=` app does not have (`instead`
/// says what to do then). `None` when neither is given or it is invalid
/// (reported).
fn cluster_object(n: &Node, node: &KdlNode, target_is_dir: bool, instead: &str) -> Option<VarSource> {
    let (key, entry) = ["configmap", "secret"]
        .into_iter()
        .find_map(|k| prop_entry(node, k).map(|e| (k, e)))?;
    let text = entry.value().as_string()?;
    let span = value_span(entry);
    if target_is_dir {
        n.push(
            Diagnostic::error(
                code::NOT_APPLICABLE,
                span,
                format!("`{key}=` needs an app on a cluster; this one writes into a directory"),
            )
            .label("no cluster to read it from")
            .help(instead.to_string()),
        );
        return None;
    }
    let parts = text
        .split_once('/')
        .filter(|(ns, name)| value::check_str(Ty::Namespace, ns).is_ok() && value::is_object_name(name));
    let Some((namespace, name)) = parts else {
        n.push(
            Diagnostic::error(
                code::INVALID_VALUE,
                span,
                format!("`{key}=` takes NAMESPACE/NAME, not \"{text}\""),
            )
            .label("not NAMESPACE/NAME")
            .help(format!(
                "name the namespace too, e.g. `{key}=\"flux-system/cluster-vars\"`"
            )),
        );
        return None;
    };
    let (namespace, name) = (namespace.to_string(), name.to_string());
    Some(if key == "configmap" {
        VarSource::ConfigMap { namespace, name }
    } else {
        VarSource::Secret { namespace, name }
    })
}

/// Whether a relative `/`-separated path climbs above where it starts.
fn escapes(path: &str) -> bool {
    let mut depth: i64 = 0;
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// The Flux `Kustomization` features of an app.
fn decode_kustomize(n: &Node, app_path: &str) -> Kustomize {
    let mut k = Kustomize {
        name_prefix: n.string("name-prefix", Ty::String),
        name_suffix: n.string("name-suffix", Ty::String),
        ..Kustomize::default()
    };
    for node in n.children("components") {
        for entry in node.entries().iter().filter(|e| e.name().is_none()) {
            let Some(c) = entry.value().as_string() else {
                continue;
            };
            let span = value_span(entry);
            let problem = if c.contains("://") || c.starts_with("github.com/") {
                Some((
                    "remote components are not supported",
                    "vendor the component into the source",
                ))
            } else if c.starts_with('/') {
                Some((
                    "a component path is relative to the app's `path`",
                    "write it relative to `path`, e.g. \"../../components/ingress\"",
                ))
            } else if escapes(&format!("{app_path}/{c}")) {
                Some((
                    "this component lies outside the source",
                    "components are read from the app's source; check the number of `..`",
                ))
            } else {
                None
            };
            if let Some((message, help)) = problem {
                n.push(
                    Diagnostic::error(code::INVALID_VALUE, span, format!("`{c}`: {message}"))
                        .label("invalid component")
                        .help(help),
                );
                continue;
            }
            k.components.push(c.to_string());
        }
    }
    for node in n.children("set-image") {
        let Some(name) = first_arg(node).and_then(|e| string_of(e, Ty::String)) else {
            continue;
        };
        let image = SetImage {
            name: name.value,
            new_name: prop_str(node, "new-name", Ty::String).map(|s| s.value),
            new_tag: prop_str(node, "new-tag", Ty::String).map(|s| s.value),
            digest: prop_str(node, "digest", Ty::Digest).map(|s| s.value),
        };
        if image.new_name.is_none() && image.new_tag.is_none() && image.digest.is_none() {
            n.push(
                Diagnostic::warning(
                    code::NOT_APPLICABLE,
                    node.name().span(),
                    format!("`set-image \"{}\"` changes nothing", image.name),
                )
                .label("no new name, tag or digest")
                .help("add `new-tag=`, `new-name=` or `digest=`"),
            );
        }
        k.images.push(image);
    }
    for node in n.children("patch") {
        let Some(entry) = first_arg(node) else { continue };
        let Some(text) = entry.value().as_string() else {
            continue;
        };
        let prop = |key: &str| prop_str(node, key, Ty::String).map(|s| s.value);
        let target = PatchTarget {
            group: prop("group"),
            version: prop("version"),
            kind: prop("kind"),
            name: prop("name"),
            namespace: prop("namespace"),
            label_selector: prop("label-selector"),
            annotation_selector: prop("annotation-selector"),
        };
        let target = (target != PatchTarget::default()).then_some(target);
        if let Some(d) = check_patch(n.src, node, entry, text, target.as_ref()) {
            n.push(d);
            continue;
        }
        k.patches.push(Patch {
            patch: text.to_string(),
            target,
        });
    }
    if let Some(meta) = n.child("common-metadata") {
        let m = n.sub(meta);
        for (key, out) in [("labels", &mut k.labels), ("annotations", &mut k.annotations)] {
            let Some(block) = m.child(key) else { continue };
            for v in block.children().map(|c| c.nodes()).unwrap_or_default() {
                let Some(value) = first_arg(v).and_then(|e| e.value().as_string()) else {
                    continue;
                };
                let name = v.name().value();
                let problem = value::check_label_key(name).err().or_else(|| {
                    (key == "labels")
                        .then(|| value::check_label_value(value).err())
                        .flatten()
                });
                if let Some(problem) = problem {
                    n.push(
                        Diagnostic::error(code::INVALID_VALUE, v.span(), format!("invalid {}: {problem}", &key[..key.len() - 1]))
                            .label("not valid in Kubernetes")
                            .help("keys are [prefix/]name: a DNS subdomain prefix, a name of at most 63 letters, digits, `-`, `_`, `.`; label values the same without the prefix"),
                    );
                    continue;
                }
                out.push((name.to_string(), value.to_string()));
            }
        }
    }
    k
}

/// A patch must be YAML, and a strategic merge patch (mappings) or a list
/// of JSON 6902 operations; the latter only with a target kind, the former
/// without a target only when it names its object.
fn check_patch(
    src: &str,
    node: &KdlNode,
    entry: &Entry,
    text: &str,
    target: Option<&PatchTarget>,
) -> Option<Diagnostic> {
    use serde_saphyr::MessageFormatter as _;
    let docs: Vec<serde_json::Value> = match serde_saphyr::from_multiple::<serde_json::Value>(text) {
        Ok(docs) => docs.into_iter().filter(|d| !d.is_null()).collect(),
        Err(e) => {
            let (line, col) = e
                .location()
                .filter(|l| l.line() > 0)
                .map_or((1, 1), |l| (l.line() as usize, l.column().max(1) as usize));
            let offset: usize = text
                .split_inclusive('\n')
                .take(line - 1)
                .map(str::len)
                .sum::<usize>()
                + text
                    .split_inclusive('\n')
                    .nth(line - 1)
                    .map_or(0, |l| l.chars().take(col - 1).map(char::len_utf8).sum());
            let span = value_span(entry);
            // The whole character there (the column counts characters).
            let mut offset = offset.min(text.len().saturating_sub(1));
            while !text.is_char_boundary(offset) {
                offset -= 1;
            }
            let width = text[offset..].chars().next().map_or(1, char::len_utf8);
            let at = span_within(src, entry, offset, width).unwrap_or(span);
            let message: String = serde_saphyr::UserMessageFormatter
                .format_message(&e)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            return Some(
                Diagnostic::error(
                    code::INVALID_VALUE,
                    at,
                    format!("the patch is not valid YAML (line {line}, column {col}): {message}"),
                )
                .label("here")
                .help("a patch is YAML: objects to merge, or a list of JSON 6902 operations"),
            );
        }
    };
    let span = value_span(entry);
    let invalid = |message: String, help: &str| {
        Some(
            Diagnostic::error(code::INVALID_VALUE, span, message)
                .label("this patch")
                .help(help.to_string()),
        )
    };
    match docs.as_slice() {
        [] => invalid(
            "the patch is empty".into(),
            "write objects to merge, or a list of JSON 6902 operations",
        ),
        [serde_json::Value::Array(ops)] => {
            if target.and_then(|t| t.kind.as_ref()).is_none() {
                return Some(
                    Diagnostic::error(
                        code::MISSING_VALUE,
                        node.name().span(),
                        "a JSON 6902 patch needs a target kind",
                    )
                    .label("which objects?")
                    .related(span, "a list of operations")
                    .help("name the targets: `patch kind=\"Deployment\" name=\"web\" …`"),
                );
            }
            let bad = ops.iter().position(|op| {
                !(op.get("op").is_some_and(|v| v.is_string())
                    && op.get("path").is_some_and(|v| v.is_string()))
            });
            match bad {
                Some(i) => invalid(
                    format!("JSON 6902 operation {} needs `op` and `path`", i + 1),
                    "each operation is a mapping such as `{op: replace, path: /spec/replicas, value: 3}`",
                ),
                None => None,
            }
        }
        docs => {
            for d in docs {
                let Some(obj) = d.as_object() else {
                    return invalid(
                        "a patch is objects to merge or one list of JSON 6902 operations".into(),
                        "write a YAML mapping (an object) or a list of operations",
                    );
                };
                let named = obj.get("kind").is_some_and(|v| v.is_string())
                    && d.pointer("/metadata/name").is_some_and(|v| v.is_string());
                if target.is_none() && !named {
                    return invalid(
                        "a strategic merge patch without a target needs `kind` and `metadata.name`".into(),
                        "name the object in the patch, or select targets with properties such as `kind=\"Deployment\"`",
                    );
                }
            }
            None
        }
    }
}

/// `chart`, `release`, `values`, `values-file` and `values-from` of an app.
fn decode_helm_release(n: &Node) -> HelmRelease {
    let chart = n.child("chart").and_then(|c| {
        Some(ChartRef {
            name: first_arg(c).and_then(|e| string_of(e, Ty::Name))?,
            version: prop_str(c, "version", Ty::Semver).map(|v| v.value),
        })
    });
    let values = n.child("values").and_then(|v| {
        let entry = first_arg(v)?;
        let text = string_of(entry, Ty::String)?;
        if let Err(p) = value::check_values_yaml(&text) {
            n.push(problem_at(n.src, p, value_span(entry), Some(entry)));
        }
        Some(text)
    });
    let values_files = n
        .children("values-file")
        .filter_map(|f| {
            let path = first_arg(f)
                .and_then(|e| string_of(e, Ty::RelPath))
                .and_then(|p| Some(Spanned::new(value::check_rel_path(&p).ok()?, p.span)))?;
            Some(ValuesFile {
                path,
                source: prop_str(f, "source", Ty::Ref(schema::RefKind::Source)),
            })
        })
        .collect();
    HelmRelease {
        chart,
        release: n.string("release", Ty::Release),
        skip_crds: n.string("crds", Ty::String).as_deref() == Some("skip"),
        values_files,
        values_from: decode_values_from(n),
        values,
        not_for_charts: NOT_FOR_CHARTS
            .iter()
            .filter_map(|&c| n.child(c).map(|node| Spanned::new(c, node.name().span())))
            .collect(),
    }
}

/// What an app may have that a chart cannot honour: Flux's HelmRelease has
/// no `namePrefix`, `nameSuffix`, `components`, `commonMetadata`,
/// `decryption` or `postBuild`.
const NOT_FOR_CHARTS: [&str; 7] = [
    "name-prefix",
    "name-suffix",
    "components",
    "common-metadata",
    "sops",
    "substitute",
    "substitute-from",
];

/// `values-from` entries (Flux's `valuesFrom`): ConfigMaps and Secrets of
/// the app's cluster.
fn decode_values_from(n: &Node) -> Vec<ValuesFrom> {
    let target_is_dir = n.child("target").is_some();
    n.children("values-from")
        .filter_map(|node| {
            let from = cluster_object(
                n,
                node,
                target_is_dir,
                "render the chart with `values` or a `values-file` instead",
            )?;
            Some(ValuesFrom {
                from,
                values_key: prop_str(node, "values-key", Ty::String)
                    .map_or_else(|| "values.yaml".to_string(), |k| k.value),
                target_path: prop_str(node, "target-path", Ty::String).map(|t| t.value),
                optional: prop_entry(node, "optional")
                    .and_then(|e| e.value().as_bool())
                    .unwrap_or(false),
            })
        })
        .collect()
}

fn decode_image(n: &Node) -> Image {
    let name = n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl));
    let order = |node: &KdlNode| match prop_str(node, "order", Ty::Enum(schema::ORDERS))
        .as_deref()
        .map(String::as_str)
    {
        Some("desc") => Order::Desc,
        _ => Order::Asc,
    };
    let policy = if let Some(r) = n.string("semver", Ty::Semver) {
        Policy::Semver(r)
    } else if let Some(a) = n.child("alphabetical") {
        Policy::Alphabetical(order(a))
    } else if let Some(a) = n.child("numerical") {
        Policy::Numerical(order(a))
    } else {
        Policy::Semver("*".into())
    };
    let filter = n.child("filter").and_then(|f| {
        let pattern_entry = first_arg(f)?;
        let pattern = string_of(pattern_entry, Ty::Regex)?;
        let extract = prop_str(f, "extract", Ty::Template);
        if let (Some(extract), Ok(re)) = (&extract, value::check_regex(&pattern)) {
            check_extract(n, re, extract, prop_entry(f, "extract"));
        }
        Some(TagFilter {
            pattern: pattern.value,
            extract: extract.map(|e| e.value),
        })
    });
    Image {
        name,
        namespace: n
            .string("namespace", Ty::Namespace)
            .unwrap_or_else(|| defaults::IMAGE_NAMESPACE.into()),
        repository: n
            .string("repository", Ty::OciRepo)
            .and_then(|r| value::check_oci_repo(&r).ok())
            .unwrap_or_default(),
        interval: n.duration("interval", defaults::IMAGE_INTERVAL),
        timeout: n.duration("timeout", defaults::IMAGE_TIMEOUT),
        policy,
        filter,
        exclude: n
            .all_args("exclude", Ty::Regex)
            .into_iter()
            .map(|s| s.value)
            .collect(),
        auth: decode_auth(n, false),
        insecure: n.bool("insecure").unwrap_or(false),
        ca_file: decode_ca_file(
            n,
            !n.bool("insecure").unwrap_or(false),
            "`insecure #true` talks plain HTTP: remove `insecure` to use HTTPS with this CA",
        ),
    }
}

/// `extract="$ts"` must name groups the filter has.
fn check_extract(n: &Node, re: value::Groups, extract: &Spanned<String>, entry: Option<&Entry>) {
    let names: Vec<&str> = re.names.iter().map(String::as_str).collect();
    let group_count = re.count;
    static REFS: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))").ok());
    let Some(refs) = REFS.as_ref() else { return };
    for cap in refs.captures_iter(extract) {
        let Some(m) = cap.get(1).or_else(|| cap.get(2)) else {
            continue;
        };
        let group = m.as_str();
        let known = match group.parse::<usize>() {
            Ok(i) => i < group_count,
            Err(_) => names.contains(&group),
        };
        if !known {
            let (start, len) = cap.get(0).map(|m| (m.start(), m.len())).unwrap_or((0, 0));
            let span = entry
                .and_then(|e| span_within(n.src, e, start, len))
                .unwrap_or(extract.span);
            n.push(
                Diagnostic::error(
                    code::INVALID_VALUE,
                    span,
                    format!("`extract` refers to `{group}`, which the filter does not capture"),
                )
                .label("no such group")
                .help(match value::suggest(group, names.iter().copied()) {
                    Some(s) => format!("did you mean `${s}`?"),
                    None if names.is_empty() => {
                        "name a group in the filter, e.g. #\"^main-(?<ts>\\d+)$\"#, and extract \"$ts\""
                            .into()
                    }
                    None => format!("the filter captures {}", list_names(names.iter().copied())),
                }),
            );
        }
    }
}

fn decode_automation(n: &Node) -> Automation {
    let author = n
        .child("author")
        .map(|a| Author {
            name: prop_str(a, "name", Ty::String)
                .map(|s| s.value)
                .unwrap_or_default(),
            email: prop_str(a, "email", Ty::Email)
                .map(|s| s.value)
                .unwrap_or_default(),
        })
        .unwrap_or(Author {
            name: String::new(),
            email: String::new(),
        });
    Automation {
        name: n.own_arg().unwrap_or_else(|| placeholder_name(n.kdl)),
        source: n
            .str("source", Ty::Ref(schema::RefKind::Source))
            .unwrap_or_else(|| placeholder_name(n.kdl)),
        checkout: n.string("checkout", Ty::Branch),
        push: n.string("push", Ty::Branch),
        path: n
            .string("path", Ty::RelPath)
            .and_then(|p| value::check_rel_path(&p).ok())
            .unwrap_or_else(|| ".".into()),
        author,
        message: n
            .string("message", Ty::Message)
            .unwrap_or_else(|| defaults::COMMIT_MESSAGE.into()),
        interval: n.duration("interval", defaults::AUTOMATION_INTERVAL),
    }
}

fn decode_suspend(n: &Node) -> Option<Suspension> {
    let (kind, name) = schema::SUSPEND_TARGETS.iter().find_map(|k| {
        let kind = Kind::parse(k)?;
        let target = prop_str(n.kdl, k, Ty::Name)?;
        Some((kind, target))
    })?;
    Some(Suspension {
        kind,
        name,
        reason: prop_str(n.kdl, "reason", Ty::String).map(|s| s.value),
        until: prop_str(n.kdl, "until", Ty::Timestamp)
            .and_then(|s| Some(Spanned::new(value::parse_timestamp(&s).ok()?, s.span))),
    })
}
