//! Checks across objects: unique names, references that resolve,
//! `depends-on` without cycles, automations only on git sources,
//! suspensions that have not already expired, names of apps on a cluster
//! that can name Kubernetes objects.

use std::collections::{HashMap, HashSet};

use super::diagnostic::{Diagnostic, MAX_PER_CODE, code};
use super::model::*;
use super::value::suggest;

/// Every cross-object problem of `cfg`. `now` decides whether a
/// suspension's `until` is in the past.
pub fn validate(cfg: &Config, now: jiff::Timestamp) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let clusters = Declared::new(cfg.clusters.iter().map(|c| &c.name));
    let sources = Declared::new(cfg.sources.iter().map(|s| &s.name));
    let apps = Declared::new(cfg.apps.iter().map(|a| &a.name));
    let images = Declared::new(cfg.images.iter().map(|i| &i.name));
    let automations = Declared::new(cfg.automations.iter().map(|a| &a.name));
    let receivers = Declared::new(cfg.receivers.iter().map(|r| &r.name));
    let notifications = Declared::new(cfg.notifications.iter().map(|n| &n.name));

    for (kind, list) in [
        ("cluster", &clusters),
        ("source", &sources),
        ("app", &apps),
        ("image", &images),
        ("automation", &automations),
        ("receiver", &receivers),
        ("notify", &notifications),
    ] {
        duplicates(kind, &list.list, &mut diags);
    }

    // Unknown references are collected first: suggesting a name compares
    // it with every declared one, so only those shown get a suggestion.
    let declared = |kind: &str| match kind {
        "cluster" => &clusters,
        "source" => &sources,
        "app" => &apps,
        "image" => &images,
        _ => &automations,
    };
    let mut unknown = Vec::new();
    let resolve = |kind: &'static str, r: &Spanned<String>, unknown: &mut Vec<_>| {
        if r.value.is_empty() || declared(kind).set.contains(r.value.as_str()) {
            return;
        }
        unknown.push((kind, r.clone()));
    };

    for c in &cfg.agent.default_cluster {
        resolve("cluster", c, &mut unknown);
    }
    distinct_clusters(&cfg.agent.default_cluster, "`default-cluster`", &mut diags);
    for app in &cfg.apps {
        if matches!(app.target, Target::Cluster(_)) {
            diags.extend(kubernetes_name(&app.name));
        }
        resolve("source", &app.source, &mut unknown);
        if let Target::Cluster(names) = &app.target {
            for c in names {
                resolve("cluster", c, &mut unknown);
            }
            distinct_clusters(names, &format!("app \"{}\"", app.name.value), &mut diags);
        }
        for dep in &app.depends_on {
            resolve("app", dep, &mut unknown);
        }
        for file in &app.helm.values_files {
            if let Some(src) = &file.source {
                resolve("source", src, &mut unknown);
            }
        }
        helm_app(cfg, app, &mut diags);
    }
    cycles(cfg, &mut diags);

    for auto in &cfg.automations {
        resolve("source", &auto.source, &mut unknown);
        let Some(source) = cfg.source(&auto.source) else {
            continue;
        };
        // An automation pushes to git: any other source is refused.
        let not_git = |code: &'static str, what: &str, label: &str, declared: &str| {
            Diagnostic::error(
                code,
                auto.source.span,
                format!(
                    "automation \"{}\" cannot write to {what} \"{}\"",
                    auto.name.value, source.name.value
                ),
            )
            .label(label)
            .related(source.name.span, declared)
            .help("automations commit and push to git: point `source` at a git source")
        };
        match &source.kind {
            SourceKind::Helm { .. } => diags.push(not_git(
                code::NOT_APPLICABLE,
                "Helm repository",
                "a Helm repository",
                "declared as a Helm repository here",
            )),
            SourceKind::Oci { .. } => diags.push(not_git(
                code::AUTOMATION_ON_OCI,
                "OCI source",
                "an OCI source",
                "declared as OCI here",
            )),
            SourceKind::Git { reference, .. } if auto.checkout.is_none() => {
                let pinned = match reference {
                    GitRef::Tag(_) => Some("a tag"),
                    GitRef::Semver(_) => Some("a semver range"),
                    GitRef::Commit(_) => Some("a commit"),
                    GitRef::Branch(_) | GitRef::DefaultBranch => None,
                };
                if let Some(what) = pinned {
                    diags.push(
                        Diagnostic::error(
                            code::MISSING_VALUE,
                            auto.name.span,
                            format!("automation \"{}\" needs a `checkout` branch", auto.name.value),
                        )
                        .label("no branch to start from")
                        .related(
                            source.name.span,
                            format!("this source follows {what}, not a branch"),
                        )
                        .help("add `checkout \"main\"` (the branch to commit on)"),
                    );
                }
            }
            SourceKind::Git { .. } => {}
        }
    }

    for r in &cfg.receivers {
        for target in &r.reconcile {
            resolve(target.kind.as_str(), &target.name, &mut unknown);
        }
    }
    if let Some(c) = cfg
        .agent
        .leader_election
        .as_ref()
        .and_then(|le| le.cluster.as_ref())
    {
        resolve("cluster", c, &mut unknown);
    }

    let mut suspended: HashMap<(Kind, &str), &Spanned<String>> = HashMap::new();
    for s in &cfg.suspensions {
        let list = match s.kind {
            Kind::Source => &sources,
            Kind::App => &apps,
            Kind::Image => &images,
            Kind::Automation => &automations,
        };
        let known = s.name.value.is_empty() || list.set.contains(s.name.value.as_str());
        resolve(s.kind.as_str(), &s.name, &mut unknown);
        if let Some(first) = suspended.insert((s.kind, s.name.value.as_str()), &s.name) {
            diags.push(
                Diagnostic::error(
                    code::DUPLICATE_NAME,
                    s.name.span,
                    format!("{} \"{}\" is suspended twice", s.kind, s.name.value),
                )
                .label("second suspension")
                .related(first.span, "first suspension")
                .help("keep one `suspend` node per object"),
            );
        }
        // An unknown target is already an error; whether it has expired does not matter.
        if let Some(until) = &s.until
            && known
            && until.value <= now
        {
            diags.push(
                Diagnostic::warning(
                    code::UNTIL_IN_PAST,
                    until.span,
                    format!("this suspension of {} \"{}\" has expired", s.kind, s.name.value),
                )
                .label("in the past")
                .help(format!(
                    "the {} runs as if not suspended; remove this node with `mooring resume {}/{}`",
                    s.kind, s.kind, s.name.value
                )),
            );
        }
    }
    unknown.sort_by_key(|(_, r): &(&str, Spanned<String>)| r.span.offset());
    for (i, (kind, r)) in unknown.iter().enumerate() {
        let suggest = i < MAX_PER_CODE;
        diags.push(unknown_reference(kind, &declared(kind).list, r, suggest));
    }
    diags
}

/// An app on a cluster names its inventory ConfigMap
/// (`mooring-inventory-NAME`, lowercased, `_` as `-`), which must be a
/// DNS-1123 subdomain: every part between dots starts and ends with a
/// letter or digit. (The name's other rules are checked where it is parsed.)
fn kubernetes_name(name: &Spanned<String>) -> Option<Diagnostic> {
    let mapped = name.value.to_ascii_lowercase().replace('_', "-");
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let fits = |part: &str| part.starts_with(alnum) && part.ends_with(alnum);
    if name.value.is_empty() || mapped.split('.').all(fits) {
        return None;
    }
    let fixed: Vec<&str> = name
        .value
        .split('.')
        .map(|p| p.trim_matches(['-', '_']))
        .filter(|p| !p.is_empty())
        .collect();
    let fixed = fixed.join(".");
    Some(
        Diagnostic::error(
            code::INVALID_NAME,
            name.span,
            format!("app \"{}\" cannot name its objects in the cluster", name.value),
        )
        .label("a dot next to another dot, `-` or `_`")
        .help(format!(
            "its inventory ConfigMap would be named \"mooring-inventory-{mapped}\", which Kubernetes refuses: \
             each part between dots must start and end with a letter or digit; rename the app, e.g. \"{fixed}\""
        )),
    )
}

/// The names declared for one kind, in file order and as a set.
struct Declared<'a> {
    list: Vec<&'a Spanned<String>>,
    set: HashSet<&'a str>,
}

impl<'a> Declared<'a> {
    fn new(names: impl Iterator<Item = &'a Spanned<String>>) -> Declared<'a> {
        let list: Vec<_> = names.filter(|n| !n.value.is_empty()).collect();
        let set = list.iter().map(|n| n.value.as_str()).collect();
        Declared { list, set }
    }
}

fn duplicates(kind: &str, list: &[&Spanned<String>], diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &Spanned<String>> = HashMap::new();
    for name in list {
        if let Some(first) = seen.get(name.value.as_str()) {
            diags.push(
                Diagnostic::error(
                    code::DUPLICATE_NAME,
                    name.span,
                    format!("there are two {} named \"{}\"", plural(kind), name.value),
                )
                .label("second definition")
                .related(first.span, "first definition")
                .help(format!("{kind} names must be unique: rename one of them")),
            );
        } else {
            seen.insert(&name.value, name);
        }
    }
}

/// A cluster list names each cluster once: the same name twice would
/// apply twice to one cluster.
fn distinct_clusters(list: &[Spanned<String>], whose: &str, diags: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<&str, &Spanned<String>> = HashMap::new();
    for name in list {
        match seen.get(name.value.as_str()) {
            Some(first) => diags.push(
                Diagnostic::error(
                    code::INVALID_VALUE,
                    name.span,
                    format!("{whose} names cluster \"{}\" twice", name.value),
                )
                .label("again")
                .related(first.span, "first named here")
                .help(format!("name each cluster once: remove this \"{}\"", name.value)),
            ),
            None => {
                seen.insert(&name.value, name);
            }
        }
    }
}

/// "sources", "`notify` nodes".
fn plural(kind: &str) -> String {
    match kind {
        "notify" => "`notify` nodes".into(),
        _ => format!("{kind}s"),
    }
}

/// `suggest`: look for a similar declared name (the cost grows with the
/// number of names: done only for the problems shown).
fn unknown_reference(
    kind: &str,
    list: &[&Spanned<String>],
    r: &Spanned<String>,
    suggest: bool,
) -> Diagnostic {
    let similar = suggest
        .then(|| self::suggest(&r.value, list.iter().map(|n| n.value.as_str())))
        .flatten();
    let help = match similar {
        Some(s) => format!("did you mean \"{s}\"?"),
        None if list.is_empty() => format!(
            "this file declares no {kind}: add `{kind} \"{}\" {{ … }}`",
            r.value
        ),
        None => {
            let all: Vec<String> = list.iter().take(8).map(|n| format!("\"{}\"", n.value)).collect();
            format!("declared {kind}s: {}", all.join(", "))
        }
    };
    Diagnostic::error(
        code::UNKNOWN_REFERENCE,
        r.span,
        format!("no {kind} is named \"{}\"", r.value),
    )
    .label(format!("unknown {kind}"))
    .help(help)
}

/// Report each `depends-on` cycle once, naming every app in it.
fn cycles(cfg: &Config, diags: &mut Vec<Diagnostic>) {
    let index: HashMap<&str, &App> = cfg.apps.iter().map(|a| (a.name.value.as_str(), a)).collect();
    let mut done: HashSet<&str> = HashSet::new();
    let mut reported: HashSet<Vec<&str>> = HashSet::new();
    for app in &cfg.apps {
        let mut path: Vec<Step> = Vec::new();
        visit(
            app.name.value.as_str(),
            None,
            &index,
            &mut path,
            &mut done,
            &mut |cycle| {
                let mut key: Vec<&str> = cycle.iter().map(|(n, _)| *n).collect();
                key.sort_unstable();
                if !reported.insert(key) {
                    return;
                }
                let names: Vec<&str> = cycle
                    .iter()
                    .map(|(n, _)| *n)
                    .chain(cycle.first().map(|(n, _)| *n))
                    .collect();
                let chain = names
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(" → ");
                // cycle[i].1 is the reference by which cycle[i-1] reached cycle[i];
                // the closing edge (last → first) is cycle[0].1.
                let edges: Vec<&Spanned<String>> = cycle.iter().filter_map(|(_, e)| *e).collect();
                let Some(first_edge) = edges.first() else { return };
                let mut d = Diagnostic::error(code::DEPENDENCY_CYCLE, first_edge.span, format!("`depends-on` forms a cycle: {chain}"))
                .label("closes the cycle")
                .help("apps in a cycle would wait for each other forever: remove one of these `depends-on` entries");
                for e in edges.iter().skip(1) {
                    d = d.related(e.span, "part of the cycle");
                }
                diags.push(d);
            },
        );
    }
}

/// An app on the path of the search, with the `depends-on` entry that led to it.
type Step<'a> = (&'a str, Option<&'a Spanned<String>>);

fn visit<'a>(
    name: &'a str,
    via: Option<&'a Spanned<String>>,
    index: &HashMap<&'a str, &'a App>,
    path: &mut Vec<Step<'a>>,
    done: &mut HashSet<&'a str>,
    report: &mut dyn FnMut(Vec<Step<'a>>),
) {
    if let Some(pos) = path.iter().position(|(n, _)| *n == name) {
        let mut cycle: Vec<_> = path[pos..].to_vec();
        // The edge that closes the cycle is the one we arrived by.
        cycle[0].1 = via;
        report(cycle);
        return;
    }
    if done.contains(name) {
        return;
    }
    let Some(app) = index.get(name) else { return };
    path.push((name, via));
    for dep in &app.depends_on {
        visit(dep.value.as_str(), Some(dep), index, path, done, report);
    }
    path.pop();
    done.insert(name);
}

/// What to write instead of an option a chart cannot honour (as Flux's
/// HelmRelease has no such field).
pub fn not_for_charts_help(option: &str) -> &'static str {
    match option {
        "name-prefix" | "name-suffix" => {
            "a chart names its objects itself: most charts take `fullnameOverride` or `nameOverride` in `values`"
        }
        "components" => {
            "components need a kustomization; change the rendered objects with `patch` and `set-image` (Flux's postRenderers)"
        }
        "common-metadata" => {
            "set labels and annotations through the chart's values, or add them with a `patch` per kind (Flux's postRenderers)"
        }
        "sops" => {
            "a chart's secret values come from the cluster: `values-from secret=\"NAMESPACE/NAME\"` (Flux's valuesFrom)"
        }
        _ => {
            "a HelmRelease has no post-build substitution: pass the variables as `values`, or read them from the cluster with `values-from`"
        }
    }
}

/// An app's chart settings against its sources: a Helm repository source
/// needs `chart` (and no `path`); `chart` needs a Helm repository source;
/// values files come from git or OCI sources.
fn helm_app(cfg: &Config, app: &App, diags: &mut Vec<Diagnostic>) {
    let Some(source) = cfg.source(&app.source) else {
        return;
    };
    let is_helm = matches!(source.kind, SourceKind::Helm { .. });
    match (&app.helm.chart, is_helm) {
        (None, true) => diags.push(
            Diagnostic::error(
                code::MISSING_VALUE,
                app.source.span,
                format!(
                    "app \"{}\" needs a `chart` from Helm repository \"{}\"",
                    app.name.value, source.name.value
                ),
            )
            .label("a Helm repository")
            .help("add `chart \"NAME\" version=\"RANGE\"`: the chart to install from it"),
        ),
        (Some(chart), false) => diags.push(
            Diagnostic::error(
                code::NOT_APPLICABLE,
                chart.name.span,
                format!(
                    "`chart` needs a Helm repository source, and \"{}\" is not one",
                    source.name.value
                ),
            )
            .label("no chart repository")
            .related(source.name.span, "declared here")
            .help(
                "for a chart inside a git or OCI source, set `path` to the directory holding its Chart.yaml; \
                 for a chart repository, declare a source with `helm \"https://…\"`",
            ),
        ),
        _ => {}
    }
    if is_helm {
        for option in &app.helm.not_for_charts {
            diags.push(
                Diagnostic::error(
                    code::NOT_APPLICABLE,
                    option.span,
                    format!(
                        "`{}` does not apply to a chart: app \"{}\" installs a chart of Helm repository \"{}\"",
                        option.value, app.name.value, source.name.value
                    ),
                )
                .label("not for charts")
                .related(source.name.span, "a Helm repository")
                .help(not_for_charts_help(option.value)),
            );
        }
    }
    if is_helm && app.path != "." {
        diags.push(
            Diagnostic::error(
                code::NOT_APPLICABLE,
                app.source.span,
                format!(
                    "`path` does not apply to an app of Helm repository \"{}\"",
                    source.name.value
                ),
            )
            .label("a Helm repository")
            .help("the chart is the whole app: remove `path`"),
        );
    }
    for file in &app.helm.values_files {
        let from = match &file.source {
            Some(name) => cfg.source(name).map(|s| (s, name.span)),
            None => Some((source, file.path.span)),
        };
        if let Some((s, span)) = from
            && matches!(s.kind, SourceKind::Helm { .. })
        {
            diags.push(
                Diagnostic::error(
                    code::NOT_APPLICABLE,
                    span,
                    format!(
                        "values file `{}` cannot come from Helm repository \"{}\"",
                        file.path.value, s.name.value
                    ),
                )
                .label("holds charts, not files")
                .help("name the git or OCI source holding the file: `values-file \"PATH\" source=\"NAME\"`"),
            );
        }
    }
}
