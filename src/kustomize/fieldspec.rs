//! Field specs (kind + path) and kustomize's transformer configuration:
//! which fields each built-in transformer touches. The defaults are
//! kustomize v5.5's (builtin_fieldspecs.txt); `configurations` files and
//! CRDs add to them.

use std::sync::LazyLock;

use super::error::{Error, Source, code};
use super::kustomization::{FieldSpec, field_specs, finish};
use super::read::Reader;
use super::resource::{Gvk, split_api_version};
use super::yaml::{Node, Tag, Value};

/// A kind whose name other objects refer to, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameBackRef {
    pub gvk: Gvk,
    pub referrers: Vec<FieldSpec>,
}

#[derive(Debug, Clone, Default)]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    pub name_space: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRef>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

static DEFAULTS: LazyLock<TransformerConfig> =
    LazyLock::new(|| parse_builtin(include_str!("builtin_fieldspecs.txt")));

pub fn defaults() -> &'static TransformerConfig {
    &DEFAULTS
}

fn parse_builtin(text: &str) -> TransformerConfig {
    let mut c = TransformerConfig::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split(' ');
        let section = words.next().unwrap_or_default();
        let rest: Vec<&str> = words.collect();
        let spec = |words: &[&str]| {
            let mut fs = FieldSpec {
                gvk: Gvk::default(),
                path: String::new(),
                create: false,
            };
            for w in words {
                match w.split_once('=') {
                    Some(("g", g)) => fs.gvk.group = g.to_string(),
                    Some(("v", v)) => fs.gvk.version = v.to_string(),
                    Some(("k", k)) => fs.gvk.kind = k.to_string(),
                    _ if *w == "create" => fs.create = true,
                    _ => fs.path = w.to_string(),
                }
            }
            fs
        };
        if section == "nameReference" {
            let split = rest.iter().position(|w| *w == "<-").unwrap_or(rest.len());
            let target = spec(&rest[..split]).gvk;
            let referrer = spec(&rest[(split + 1).min(rest.len())..]);
            match c.name_reference.iter_mut().find(|b| b.gvk == target) {
                Some(b) => b.referrers.push(referrer),
                None => c.name_reference.push(NameBackRef {
                    gvk: target,
                    referrers: vec![referrer],
                }),
            }
            continue;
        }
        let fs = spec(&rest);
        match section {
            "namePrefix" => c.name_prefix.push(fs),
            "nameSuffix" => c.name_suffix.push(fs),
            "commonLabels" => c.common_labels.push(fs),
            "templateLabels" => c.template_labels.push(fs),
            "commonAnnotations" => c.common_annotations.push(fs),
            "namespace" => c.name_space.push(fs),
            "varReference" => c.var_reference.push(fs),
            "images" => c.images.push(fs),
            "replicas" => c.replicas.push(fs),
            _ => {}
        }
    }
    c
}

/// kustomize's FsSlice.MergeOne: add `x` unless an equivalent spec is there.
pub fn merge_one(list: &mut Vec<FieldSpec>, x: &FieldSpec) -> Result<(), String> {
    match list
        .iter()
        .find(|f| f.gvk.is_selected(&x.gvk) && f.path == x.path)
    {
        Some(f) if f.create != x.create => Err(format!(
            "conflicting field specs for path `{}`: one sets create and one does not",
            x.path
        )),
        Some(_) => Ok(()),
        None => {
            list.push(x.clone());
            Ok(())
        }
    }
}

pub fn merge_all(list: &mut Vec<FieldSpec>, incoming: &[FieldSpec]) -> Result<(), String> {
    incoming.iter().try_for_each(|x| merge_one(list, x))
}

impl TransformerConfig {
    pub fn merge(&mut self, o: &TransformerConfig) -> Result<(), String> {
        merge_all(&mut self.name_prefix, &o.name_prefix)?;
        merge_all(&mut self.name_suffix, &o.name_suffix)?;
        merge_all(&mut self.name_space, &o.name_space)?;
        merge_all(&mut self.common_labels, &o.common_labels)?;
        merge_all(&mut self.template_labels, &o.template_labels)?;
        merge_all(&mut self.labels, &o.labels)?;
        merge_all(&mut self.common_annotations, &o.common_annotations)?;
        merge_all(&mut self.var_reference, &o.var_reference)?;
        merge_all(&mut self.images, &o.images)?;
        merge_all(&mut self.replicas, &o.replicas)?;
        for b in &o.name_reference {
            match self.name_reference.iter_mut().find(|x| x.gvk == b.gvk) {
                Some(x) => merge_all(&mut x.referrers, &b.referrers)?,
                None => self.name_reference.push(b.clone()),
            }
        }
        Ok(())
    }

    /// A `configurations` file: the defaults, each section the file has
    /// replacing the default one (kustomize unmarshals the file onto them).
    pub fn read(src: &Source, node: &Node) -> Result<TransformerConfig, Error> {
        let mut r = Reader::new(src);
        let mut c = defaults().clone();
        let fields = r
            .fields(
                node,
                "a transformer configuration",
                &[
                    "namePrefix",
                    "nameSuffix",
                    "namespace",
                    "commonLabels",
                    "templateLabels",
                    "labels",
                    "commonAnnotations",
                    "nameReference",
                    "varReference",
                    "images",
                    "replicas",
                ],
            )
            .unwrap_or_default();
        for (key, v) in fields {
            match key {
                "nameReference" => c.name_reference.clear(),
                "namePrefix" => c.name_prefix.clear(),
                "nameSuffix" => c.name_suffix.clear(),
                "namespace" => c.name_space.clear(),
                "commonLabels" => c.common_labels.clear(),
                "templateLabels" => c.template_labels.clear(),
                "labels" => c.labels.clear(),
                "commonAnnotations" => c.common_annotations.clear(),
                "varReference" => c.var_reference.clear(),
                "images" => c.images.clear(),
                _ => c.replicas.clear(),
            }
            if key == "nameReference" {
                for item in r.list(v, key) {
                    let Some(f) = r.fields(
                        item,
                        "a nameReference entry",
                        &["group", "version", "kind", "fieldSpecs"],
                    ) else {
                        continue;
                    };
                    let mut b = NameBackRef {
                        gvk: Gvk::default(),
                        referrers: Vec::new(),
                    };
                    for (key, v) in f {
                        match key {
                            "fieldSpecs" => b.referrers = field_specs(&mut r, v, key),
                            _ => {
                                let s = r.string(v, key).map(|s| s.value).unwrap_or_default();
                                match key {
                                    "group" => b.gvk.group = s,
                                    "version" => b.gvk.version = s,
                                    _ => b.gvk.kind = s,
                                }
                            }
                        }
                    }
                    match c.name_reference.iter_mut().find(|x| x.gvk == b.gvk) {
                        Some(x) => {
                            if let Err(e) = merge_all(&mut x.referrers, &b.referrers) {
                                r.error(code::INVALID, item.pos, e);
                            }
                        }
                        None => c.name_reference.push(b),
                    }
                }
                continue;
            }
            let specs = field_specs(&mut r, v, key);
            let list = match key {
                "namePrefix" => &mut c.name_prefix,
                "nameSuffix" => &mut c.name_suffix,
                "namespace" => &mut c.name_space,
                "commonLabels" => &mut c.common_labels,
                "templateLabels" => &mut c.template_labels,
                "labels" => &mut c.labels,
                "commonAnnotations" => &mut c.common_annotations,
                "varReference" => &mut c.var_reference,
                "images" => &mut c.images,
                _ => &mut c.replicas,
            };
            if let Err(e) = merge_all(list, &specs) {
                r.error(code::INVALID, v.pos, e);
            }
        }
        finish(r, c)
    }
}

/// Split a field spec path on `/`, keeping `\/` as a slash in a name.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(part);
            }
            _ => out.push(part.to_string()),
        }
    }
    out
}

/// What to create at the end of a path that is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    Scalar,
    Map,
}

/// The object's group, version and kind match the spec's.
pub fn gvk_matches(spec: &Gvk, obj: &Node) -> bool {
    let kind = obj.str_at(&["kind"]).unwrap_or("");
    if !spec.kind.is_empty() && spec.kind != kind {
        return false;
    }
    let (group, version) = split_api_version(obj.str_at(&["apiVersion"]).unwrap_or(""));
    (spec.group.is_empty() || spec.group == group) && (spec.version.is_empty() || spec.version == version)
}

/// Call `f` on each node at the spec's path in `obj` (every element of a
/// list on the way), creating the path when the spec says `create` and
/// `create` says what. kustomize's fieldspec filter.
pub fn apply(
    obj: &mut Node,
    spec: &FieldSpec,
    create: Option<Create>,
    f: &mut dyn FnMut(&mut Node) -> Result<(), String>,
) -> Result<(), String> {
    if !gvk_matches(&spec.gvk, obj) {
        return Ok(());
    }
    let path = split_path(&spec.path);
    walk(obj, &path, spec.create, create, f).map_err(|e| format!("considering field '{}': {e}", spec.path))
}

fn walk(
    node: &mut Node,
    path: &[String],
    create_if_missing: bool,
    create: Option<Create>,
    f: &mut dyn FnMut(&mut Node) -> Result<(), String>,
) -> Result<(), String> {
    let Some(first) = path.first() else {
        return f(node);
    };
    if node.is_null() {
        return Ok(());
    }
    match &mut node.value {
        Value::Seq(items) => {
            for item in items {
                walk(item, path, create_if_missing, create, f)?;
            }
            Ok(())
        }
        Value::Map(_) => {
            let (name, is_seq) = match first.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (first.as_str(), false),
            };
            if name.is_empty() {
                return Err("cannot set or create an empty field name".into());
            }
            let last = path.len() <= 1;
            let make = if !create_if_missing || create.is_none() || is_seq {
                None
            } else if last {
                create
            } else {
                Some(Create::Map)
            };
            if node.get(name).is_none() {
                match make {
                    None => return Ok(()),
                    Some(Create::Map) => node.set(name, Node::map()),
                    Some(Create::Scalar) => node.set(
                        name,
                        Node::new(Value::Scalar(super::yaml::Scalar {
                            text: String::new(),
                            tag: Tag::Str,
                            plain: false,
                        })),
                    ),
                }
            }
            let Some(field) = node.get_mut(name) else {
                return Ok(());
            };
            if field.is_null() {
                match make {
                    Some(Create::Map) => *field = Node::map().at(field.pos),
                    _ if is_seq => *field = Node::seq(Vec::new()).at(field.pos),
                    _ => {}
                }
            }
            walk(field, &path[1..], create_if_missing, create, f)
        }
        Value::Scalar(_) => Err("expected sequence or mapping node".into()),
    }
}

/// The transformer configuration in a `crds` file: OpenAPI definitions
/// (name → `Schema`) whose properties carry kustomize's extensions
/// (`x-kubernetes-annotation`, `-label-selector`, `-identity`,
/// `-object-ref-api-version`/`-kind`/`-name-key`). kustomize's
/// LoadConfigFromCRDs.
pub fn crd_config(defs: &Node) -> TransformerConfig {
    let mut c = TransformerConfig::default();
    let Some(map) = defs.as_map() else {
        return c;
    };
    for e in map {
        let props = e.value.path(&["Schema", "properties"]);
        let looks_k8s = props.is_some_and(|p| {
            p.get("kind").is_some() && p.get("apiVersion").is_some() && p.get("metadata").is_some()
        });
        if !looks_k8s {
            continue;
        }
        let kind = e.key.rsplit('.').next().unwrap_or(&e.key);
        let gvk = Gvk {
            kind: kind.to_string(),
            ..Gvk::default()
        };
        crd_walk(defs, &e.key, &gvk, &mut Vec::new(), &mut c, 0);
    }
    c
}

fn crd_walk(
    defs: &Node,
    type_name: &str,
    gvk: &Gvk,
    path: &mut Vec<String>,
    c: &mut TransformerConfig,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let Some(props) = defs
        .path(&[type_name, "Schema", "properties"])
        .and_then(Node::as_map)
    else {
        return;
    };
    for e in props {
        let p = &e.value;
        path.push(e.key.clone());
        let fs = |path: &[String]| FieldSpec {
            gvk: gvk.clone(),
            path: path.join("/"),
            create: false,
        };
        let ext = |k: &str| {
            p.get(k)
                .and_then(|n| n.as_scalar())
                .filter(|s| s.tag == Tag::Str)
                .map(|s| s.text.clone())
        };
        if ext("x-kubernetes-annotation").is_some() {
            let _ = merge_one(&mut c.common_annotations, &fs(path));
        }
        if ext("x-kubernetes-label-selector").is_some() {
            let _ = merge_one(&mut c.common_labels, &fs(path));
        }
        if ext("x-kubernetes-identity").is_some() {
            let _ = merge_one(&mut c.name_prefix, &fs(path));
        }
        if let (Some(version), Some(kind)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let key = ext("x-kubernetes-object-ref-name-key").unwrap_or_else(|| "name".into());
            let mut full = path.clone();
            full.push(key);
            let target = Gvk {
                group: String::new(),
                version,
                kind,
            };
            let referrer = fs(&full);
            match c.name_reference.iter_mut().find(|b| b.gvk == target) {
                Some(b) => {
                    let _ = merge_one(&mut b.referrers, &referrer);
                }
                None => c.name_reference.push(NameBackRef {
                    gvk: target,
                    referrers: vec![referrer],
                }),
            }
        }
        if let Some(r) = p.str_at(&["$ref"]) {
            let r = r.to_string();
            crd_walk(defs, &r, gvk, path, c, depth + 1);
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let d = defaults();
        assert!(d.name_prefix.iter().any(|f| f.path == "metadata/name"));
        assert!(
            d.common_labels
                .iter()
                .any(|f| f.path == "spec/selector" && f.create && f.gvk.kind == "Service")
        );
        let cm = d
            .name_reference
            .iter()
            .find(|b| b.gvk.kind == "ConfigMap")
            .unwrap();
        assert!(
            cm.referrers
                .iter()
                .any(|f| f.path == "spec/volumes/configMap/name" && f.gvk.kind == "Pod")
        );
        assert_eq!(
            split_path(r"metadata/annotations/nginx.ingress.kubernetes.io\/auth-secret"),
            [
                "metadata",
                "annotations",
                "nginx.ingress.kubernetes.io/auth-secret"
            ]
        );
    }
}
