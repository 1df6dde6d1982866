//! `transformers:` and `generators:` entries: objects (inline, in files,
//! or built from a kustomization directory) that configure kustomize's
//! built-in transformers and generators (`apiVersion: builtin`). Anything
//! else is a plugin (exec, container, Go, KRM function), which mooring
//! refuses.

use super::build::{Accumulator, Builder, Target};
use super::error::{Error, Result, Source, code};
use super::fieldspec;
use super::fs::{self, Kind};
use super::generate;
use super::kustomization::{
    ImageSpec, PatchSpec, PluginEntry, ReplicaSpec, field_specs, generator, replacement, selector,
};
use super::read::{Reader, Spanned};
use super::replace;
use super::transform::{self, Subjects};
use super::yaml::Node;
use super::{names, patch};

const TRANSFORMERS: &[&str] = &[
    "AnnotationsTransformer",
    "HashTransformer",
    "ImageTagTransformer",
    "LabelTransformer",
    "NamespaceTransformer",
    "PatchJson6902Transformer",
    "PatchStrategicMergeTransformer",
    "PatchTransformer",
    "PrefixSuffixTransformer",
    "PrefixTransformer",
    "SuffixTransformer",
    "ReplicaCountTransformer",
    "ReplacementTransformer",
    "SortOrderTransformer",
    "ValueAddTransformer",
];
const GENERATORS: &[&str] = &["ConfigMapGenerator", "SecretGenerator", "IAMPolicyGenerator"];

/// A config object and the file it is in.
struct Config {
    node: Node,
    src: Source,
}

impl Builder<'_> {
    fn configs(&mut self, t: &Target, entries: &[PluginEntry], origin_dir: &str) -> Result<Vec<Config>> {
        let mut out = Vec::new();
        for e in entries {
            match e {
                PluginEntry::Inline(node) => out.push(Config {
                    node: node.clone(),
                    src: t.src.clone(),
                }),
                PluginEntry::Path(p) => {
                    if super::build::is_remote(&p.value) {
                        return Err(Error::at(
                            code::REFUSED,
                            &t.src,
                            p.pos,
                            format!("remote `{}` is not supported", p.value),
                        ));
                    }
                    let Some(path) = self.fs.resolve(&t.dir, &p.value) else {
                        return Err(Error::at(
                            code::OUTSIDE_ROOT,
                            &t.src,
                            p.pos,
                            format!("`{}` leads outside the source", p.value),
                        ));
                    };
                    match self.fs.kind(&path) {
                        Kind::File => {
                            let file = self.file_of(t, p)?;
                            let text = self.fs.read(&file)?;
                            let src = Source { file, text };
                            for r in super::build::resources_from(&src)? {
                                out.push(Config {
                                    node: r.node,
                                    src: src.clone(),
                                });
                            }
                        }
                        Kind::Dir => {
                            let sub = self.load(&path)?;
                            let sub_origin = fs::join(origin_dir, &p.value);
                            let ra = self.accumulate_target(&sub, Accumulator::default(), &sub_origin)?;
                            for r in ra.resources.list {
                                out.push(Config {
                                    node: r.node,
                                    src: sub.src.clone(),
                                });
                            }
                        }
                        Kind::Missing => {
                            return Err(Error::at(
                                code::NOT_FOUND,
                                &t.src,
                                p.pos,
                                format!("`{}` does not exist", p.value),
                            ));
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The errors of a plugin config's reader; its ignored fields become warnings.
fn done(b: &Builder<'_>, mut r: Reader<'_>) -> Result<()> {
    if let Some(ignored) = r.ignored.take() {
        b.warnings.borrow_mut().extend(ignored);
    }
    super::kustomization::finish(r, ())
}

fn check_builtin(c: &Config, allowed: &[&str], what: &str) -> Result<String> {
    let av = c.node.str_at(&["apiVersion"]).unwrap_or("");
    let kind = c.node.str_at(&["kind"]).unwrap_or("").to_string();
    let pos = c.node.pos;
    if c.node
        .path(&["metadata", "annotations", "config.kubernetes.io/function"])
        .is_some()
    {
        return Err(Error::at(
            code::REFUSED,
            &c.src,
            pos,
            format!("`{kind}` is a KRM function, which mooring does not run"),
        )
        .help(
            "render its output into the repository, or express the change with kustomize's built-in fields",
        ));
    }
    if av != "builtin" || !allowed.contains(&kind.as_str()) {
        let hint = if allowed.contains(&kind.as_str()) {
            "use `apiVersion: builtin` for kustomize's built-in ".to_string() + what
        } else {
            format!(
                "mooring runs kustomize's built-in {what} only ({}); plugins (exec, containers, Go) are refused",
                allowed.join(", ")
            )
        };
        return Err(Error::at(
            code::REFUSED,
            &c.src,
            pos,
            format!("{what} `{av}` `{kind}` is a plugin, which mooring does not run"),
        )
        .help(hint));
    }
    Ok(kind)
}

pub fn run_generators(b: &mut Builder<'_>, t: &Target, ra: &mut Accumulator, origin_dir: &str) -> Result<()> {
    if t.k.generators.is_empty() {
        return Ok(());
    }
    for c in b.configs(t, &t.k.generators, origin_dir)? {
        let kind = check_builtin(&c, GENERATORS, "generator")?;
        let mut r = Reader::lenient(&c.src);
        let mut node = c.node.clone();
        let meta = node.remove("metadata");
        node.remove("apiVersion");
        node.remove("kind");
        let (name, namespace) = (
            meta.as_ref()
                .and_then(|m| m.str_at(&["name"]))
                .unwrap_or("")
                .to_string(),
            meta.as_ref()
                .and_then(|m| m.str_at(&["namespace"]))
                .unwrap_or("")
                .to_string(),
        );
        let made = match kind.as_str() {
            "IAMPolicyGenerator" => {
                iam_policy(&mut r, &node, &namespace).and_then(|n| done(b, r).map(|()| n))
            }
            _ => {
                let secret = kind == "SecretGenerator";
                let args = generator(&mut r, &node, secret);
                done(b, r)?;
                let Some(mut args) = args else {
                    continue;
                };
                if args.name.is_empty() {
                    args.name = name.clone();
                }
                if args.namespace.is_empty() {
                    args.namespace = namespace;
                }
                let opts = args.options.clone().unwrap_or_default();
                let mut res = generate::generate(b, &t.src, &t.dir, &args, &opts, secret)?;
                if b.origin {
                    res.set_annotation(
                        "config.kubernetes.io/origin",
                        &format!(
                            "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n  name: {}\n",
                            config_file(origin_dir, t, &c),
                            name
                        ),
                    );
                }
                generate::absorb(b.fs, ra, res)?;
                continue;
            }
        };
        let node = made?;
        let res = super::resource::Resource::new(node, &c.src.file, c.node.pos.line, 256);
        generate::absorb(b.fs, ra, res)?;
    }
    Ok(())
}

/// Where a config object came from, relative to the top kustomization's
/// directory, for origin annotations.
fn config_file(origin_dir: &str, t: &Target, c: &Config) -> String {
    let rel = c
        .src
        .file
        .strip_prefix(&format!("{}/", t.dir))
        .unwrap_or(&c.src.file);
    let rel = if t.dir.is_empty() {
        c.src.file.as_str()
    } else {
        rel
    };
    fs::join(origin_dir, rel)
}

fn iam_policy(r: &mut Reader<'_>, node: &Node, namespace: &str) -> Result<Node> {
    let fields = r
        .fields(
            node,
            "an IAMPolicyGenerator",
            &["cloud", "kubernetesService", "serviceAccount", "projectId"],
        )
        .unwrap_or_default();
    let mut cloud = String::new();
    let mut ksa_ns = namespace.to_string();
    let mut ksa_name = String::new();
    let mut gsa_name = String::new();
    let mut project = String::new();
    for (key, v) in fields {
        match key {
            "cloud" => cloud = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "projectId" => project = r.string(v, key).map(|s| s.value).unwrap_or_default(),
            "kubernetesService" => {
                for (k, v) in r
                    .fields(v, "kubernetesService", &["namespace", "name"])
                    .unwrap_or_default()
                {
                    let s = r.string(v, k).map(|s| s.value).unwrap_or_default();
                    if k == "namespace" {
                        ksa_ns = s;
                    } else {
                        ksa_name = s;
                    }
                }
            }
            _ => {
                for (k, v) in r
                    .fields(v, "serviceAccount", &["name", "projectId"])
                    .unwrap_or_default()
                {
                    let s = r.string(v, k).map(|s| s.value).unwrap_or_default();
                    if k == "name" {
                        gsa_name = s;
                    } else {
                        project = s;
                    }
                }
            }
        }
    }
    if !r.errors.is_empty() {
        let mut errors = std::mem::take(&mut r.errors);
        let mut first = errors.remove(0);
        first.more = errors;
        return Err(first);
    }
    if cloud != "gke" {
        return Err(Error::at(
            code::INVALID,
            r.src,
            node.pos,
            format!("unsupported cloud `{cloud}`"),
        )
        .help("IAMPolicyGenerator supports `cloud: gke`"));
    }
    let mut sa = Node::map();
    sa.set("apiVersion", Node::plain("v1"));
    sa.set("kind", Node::plain("ServiceAccount"));
    let mut meta = Node::map();
    let mut annos = Node::map();
    annos.set(
        "iam.gke.io/gcp-service-account",
        Node::str(format!("{gsa_name}@{project}.iam.gserviceaccount.com")),
    );
    meta.set("annotations", annos);
    meta.set("name", Node::str(ksa_name));
    if !ksa_ns.is_empty() {
        meta.set("namespace", Node::str(ksa_ns));
    }
    sa.set("metadata", meta);
    Ok(sa)
}

pub fn run_transformers(
    b: &mut Builder<'_>,
    t: &Target,
    ra: &mut Accumulator,
    origin_dir: &str,
) -> Result<()> {
    if t.k.transformers.is_empty() {
        return Ok(());
    }
    for c in b.configs(t, &t.k.transformers, origin_dir)? {
        let kind = check_builtin(&c, TRANSFORMERS, "transformer")?;
        run_one(b, t, ra, &c, &kind)?;
        let name = c.node.str_at(&["metadata", "name"]).unwrap_or("");
        let ns = c.node.str_at(&["metadata", "namespace"]).unwrap_or("");
        transform::record(
            b,
            &mut ra.resources,
            &config_file(origin_dir, t, &c),
            &kind,
            Some((name, ns)),
        );
    }
    Ok(())
}

/// kustomize's ValueAddTransformer: set a field, or insert the value into
/// a `/`-separated path held by the field.
fn value_add(
    m: &mut super::resource::ResMap,
    value: &str,
    targets: &[(Option<super::kustomization::Selector>, String, i64)],
) -> Result<()> {
    for (sel, path, position) in targets {
        let chosen: Vec<usize> = match sel {
            Some(s) => patch::select(m, s).map_err(|e| Error::new(code::INVALID, e))?,
            None => (0..m.list.len()).collect(),
        };
        let spec = super::kustomization::FieldSpec {
            gvk: super::resource::Gvk::default(),
            path: path.clone(),
            create: true,
        };
        for i in chosen {
            fieldspec::apply(
                &mut m.list[i].node,
                &spec,
                Some(fieldspec::Create::Scalar),
                &mut |n| {
                    let new = if *position <= 0 {
                        value.to_string()
                    } else {
                        let old = n.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                        let mut parts: Vec<&str> = if old.is_empty() {
                            Vec::new()
                        } else {
                            old.split('/').collect()
                        };
                        let at = ((*position - 1) as usize).min(parts.len());
                        parts.insert(at, value);
                        parts.join("/")
                    };
                    *n = Node::str(new).at(n.pos);
                    Ok(())
                },
            )
            .map_err(|e| Error::new(code::INVALID, e))?;
        }
    }
    Ok(())
}

fn run_one(b: &Builder<'_>, t: &Target, ra: &mut Accumulator, c: &Config, kind: &str) -> Result<()> {
    let mut r = Reader::lenient(&c.src);
    let node = &c.node;
    let known: &[&str] = match kind {
        "AnnotationsTransformer" => &["annotations", "fieldSpecs"],
        "LabelTransformer" => &["labels", "fieldSpecs"],
        "NamespaceTransformer" => &["fieldSpecs", "unsetOnly", "setRoleBindingSubjects"],
        "PrefixSuffixTransformer" => &["prefix", "suffix", "fieldSpecs"],
        "PrefixTransformer" => &["prefix", "fieldSpecs"],
        "SuffixTransformer" => &["suffix", "fieldSpecs"],
        "ImageTagTransformer" => &["imageTag", "fieldSpecs"],
        "ReplicaCountTransformer" => &["replica", "fieldSpecs"],
        "PatchTransformer" => &["path", "patch", "target", "options"],
        "PatchStrategicMergeTransformer" => &["paths", "patches"],
        "PatchJson6902Transformer" => &["target", "path", "jsonOp"],
        "ReplacementTransformer" => &["replacements"],
        "SortOrderTransformer" => &["sortOptions"],
        "ValueAddTransformer" => &["value", "targets"],
        _ => &[],
    };
    let mut all: Vec<&str> = vec!["apiVersion", "kind", "metadata"];
    all.extend(known);
    let fields = r.fields(node, &format!("a {kind}"), &all).unwrap_or_default();
    let get = |k: &str| fields.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
    let specs = get("fieldSpecs")
        .map(|n| field_specs(&mut r, n, "fieldSpecs"))
        .unwrap_or_default();
    let string = |r: &mut Reader<'_>, k: &str| {
        get(k)
            .and_then(|n| r.string(n, k))
            .map(|s| s.value)
            .unwrap_or_default()
    };
    let m = &mut ra.resources;
    match kind {
        "AnnotationsTransformer" | "LabelTransformer" => {
            let key = if kind == "LabelTransformer" {
                "labels"
            } else {
                "annotations"
            };
            let pairs = get(key).map(|n| r.string_map(n, key)).unwrap_or_default();
            done(b, r)?;
            transform::set_map_entries(m, &pairs, &specs)
        }
        "NamespaceTransformer" => {
            let ns = node.str_at(&["metadata", "namespace"]).unwrap_or("").to_string();
            let unset_only = get("unsetOnly").is_some_and(|n| r.bool(n, "unsetOnly"));
            let subjects = match string(&mut r, "setRoleBindingSubjects").as_str() {
                "" | "defaultOnly" => Subjects::DefaultOnly,
                "allServiceAccounts" => Subjects::AllServiceAccounts,
                "none" => Subjects::None,
                other => {
                    let pos = get("setRoleBindingSubjects").map_or(node.pos, |n| n.pos);
                    r.error(
                        code::INVALID,
                        pos,
                        format!("invalid value \"{other}\" for setRoleBindingSubjects"),
                    )
                    .help = Some("use defaultOnly, allServiceAccounts or none".into());
                    Subjects::None
                }
            };
            done(b, r)?;
            transform::namespace(m, &ns, &specs, unset_only, subjects)
        }
        "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
            let prefix = string(&mut r, "prefix");
            let suffix = string(&mut r, "suffix");
            done(b, r)?;
            if kind != "PrefixSuffixTransformer" && prefix.is_empty() && suffix.is_empty() {
                return Ok(());
            }
            names::prefix_suffix(m, &prefix, &suffix, &specs, kind != "PrefixSuffixTransformer")
        }
        "ImageTagTransformer" => {
            let mut img = ImageSpec::default();
            if let Some(n) = get("imageTag") {
                for (k, v) in r
                    .fields(n, "imageTag", &["name", "newName", "newTag", "digest"])
                    .unwrap_or_default()
                {
                    let s = r.string(v, k).map(|s| s.value).unwrap_or_default();
                    match k {
                        "name" => img.name = s,
                        "newName" => img.new_name = s,
                        "newTag" => img.new_tag = s,
                        _ => img.digest = s,
                    }
                }
            }
            done(b, r)?;
            transform::images(m, &img, &specs)
        }
        "ReplicaCountTransformer" => {
            let mut rep = ReplicaSpec {
                name: String::new(),
                count: 0,
                pos: node.pos,
            };
            if let Some(n) = get("replica") {
                for (k, v) in r.fields(n, "replica", &["name", "count"]).unwrap_or_default() {
                    if k == "name" {
                        rep.name = r.string(v, k).map(|s| s.value).unwrap_or_default();
                    } else {
                        rep.count = r.int(v, k).unwrap_or(0);
                    }
                }
            }
            done(b, r)?;
            transform::replicas(m, &rep, &specs)
        }
        "PatchTransformer" | "PatchJson6902Transformer" => {
            let text_key = if kind == "PatchTransformer" {
                "patch"
            } else {
                "jsonOp"
            };
            let mut spec = PatchSpec {
                path: get("path").and_then(|n| r.string(n, "path")),
                patch: get(text_key).and_then(|n| r.string(n, text_key)),
                target: get("target").and_then(|n| selector(&mut r, n, "a patch target")),
                allow_name_change: false,
                allow_kind_change: false,
                pos: node.pos,
            };
            if let Some(o) = get("options") {
                for (k, v) in r
                    .fields(o, "patch options", &["allowNameChange", "allowKindChange"])
                    .unwrap_or_default()
                {
                    let b = r.bool(v, k);
                    if k == "allowNameChange" {
                        spec.allow_name_change = b;
                    } else {
                        spec.allow_kind_change = b;
                    }
                }
            }
            done(b, r)?;
            if kind == "PatchTransformer" {
                patch::apply(b, &c.src, &t.dir, m, &spec)
            } else {
                patch::json6902_legacy(b, &c.src, &t.dir, m, &spec)
            }
        }
        "PatchStrategicMergeTransformer" => {
            let mut paths: Vec<Spanned<String>> =
                get("paths").map(|n| r.strings(n, "paths")).unwrap_or_default();
            if let Some(p) = get("patches").and_then(|n| r.string(n, "patches")) {
                paths.push(p);
            }
            done(b, r)?;
            patch::strategic_merge_legacy(b, &c.src, &t.dir, m, &paths)
        }
        "ReplacementTransformer" => {
            let mut list = Vec::new();
            for item in get("replacements")
                .map(|n| r.list(n, "replacements"))
                .unwrap_or_default()
            {
                if let Some(p) = item.get("path") {
                    if let Some(p) = r.string(p, "path") {
                        let file = b.file_in(&c.src, &t.dir, &p)?;
                        let text = b.fs.read(&file)?;
                        let src = Source { file, text };
                        list.extend(replace::replacements_from(&src, &super::build::parse_one(&src)?)?);
                    }
                } else if let Some(rep) = replacement(&mut r, item) {
                    list.push(rep);
                }
            }
            done(b, r)?;
            replace::apply(m, &list)
        }
        "SortOrderTransformer" => Err(Error::at(
            code::REFUSED,
            &c.src,
            node.pos,
            "SortOrderTransformer is not allowed in `transformers`",
        )
        .help("set the order with `sortOptions` in the kustomization")),
        "HashTransformer" => names::add_hashes(m),
        "ValueAddTransformer" => {
            let value = match get("value").and_then(|n| r.string(n, "value")) {
                Some(v) => v.value,
                None => t.dir.rsplit('/').next().unwrap_or("").to_string(),
            };
            let mut targets = Vec::new();
            for item in get("targets").map(|n| r.list(n, "targets")).unwrap_or_default() {
                let f = r
                    .fields(
                        item,
                        "a ValueAddTransformer target",
                        &["selector", "fieldPath", "filePathPosition"],
                    )
                    .unwrap_or_default();
                let mut sel = None;
                let mut path = String::new();
                let mut position = 0;
                for (k, v) in f {
                    match k {
                        "selector" => sel = selector(&mut r, v, "a target selector"),
                        "fieldPath" => path = r.string(v, k).map(|s| s.value).unwrap_or_default(),
                        _ => position = r.int(v, k).unwrap_or(0),
                    }
                }
                targets.push((sel, path, position));
            }
            done(b, r)?;
            value_add(m, &value, &targets)
        }
        _ => Ok(()),
    }
}
