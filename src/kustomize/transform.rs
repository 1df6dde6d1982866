//! The built-in transformers a kustomization's fields configure, run in
//! kustomize's order: patchesStrategicMerge, patches, namespace, namePrefix,
//! nameSuffix, labels and commonLabels, commonAnnotations,
//! patchesJson6902, replicas, images, replacements. Each transformer is a
//! function of its own, shared with `transformers:` plugin configs.

use super::build::{Accumulator, Builder, Target};
use super::error::{Error, Result, code};
use super::fieldspec::{self, Create, merge_all, merge_one};
use super::kustomization::{FieldSpec, ImageSpec, ReplicaSpec};
use super::resource::{Gvk, ResMap};
use super::yaml::{Node, Tag, Value};
use super::{names, patch, replace};

/// With `buildMetadata: [transformerAnnotations]`, note on every object
/// that a transformer ran (kustomize's alpha.config.kubernetes.io/transformations).
pub fn record(b: &Builder<'_>, m: &mut ResMap, configured_in: &str, kind: &str, by: Option<(&str, &str)>) {
    if !b.transformer_annotations {
        return;
    }
    let mut entry = format!(
        "- configuredIn: {configured_in}\n  configuredBy:\n    apiVersion: builtin\n    kind: {kind}\n"
    );
    if let Some((name, ns)) = by {
        if !name.is_empty() {
            entry.push_str(&format!("    name: {name}\n"));
        }
        if !ns.is_empty() {
            entry.push_str(&format!("    namespace: {ns}\n"));
        }
    }
    const KEY: &str = "alpha.config.kubernetes.io/transformations";
    for r in &mut m.list {
        let value = format!("{}{entry}", r.annotation(KEY).unwrap_or(""));
        r.set_annotation(KEY, &value);
    }
}

pub fn run_builtins(b: &Builder<'_>, t: &Target, ra: &mut Accumulator, origin_dir: &str) -> Result<()> {
    let k = &t.k;
    let cfg = ra.config.clone();
    let m = &mut ra.resources;
    let kust_file = super::fs::join(origin_dir, t.src.file.rsplit('/').next().unwrap_or(""));
    let record = |m: &mut ResMap, kind: &str| record(b, m, &kust_file, kind, None);
    let at = |e: Error| e.in_file_if_none(&t.src.file);
    if !k.patches_strategic_merge.is_empty() {
        patch::strategic_merge_legacy(b, &t.src, &t.dir, m, &k.patches_strategic_merge)?;
        record(m, "PatchStrategicMergeTransformer");
    }
    for p in &k.patches {
        patch::apply(b, &t.src, &t.dir, m, p)?;
        record(m, "PatchTransformer");
    }
    if !k.namespace.is_empty() {
        namespace(m, &k.namespace, &cfg.name_space, false, Subjects::DefaultOnly).map_err(at)?;
        record(m, "NamespaceTransformer");
    }
    if !k.name_prefix.is_empty() {
        names::prefix_suffix(m, &k.name_prefix, "", &cfg.name_prefix, true).map_err(at)?;
        record(m, "PrefixTransformer");
    }
    if !k.name_suffix.is_empty() {
        names::prefix_suffix(m, "", &k.name_suffix, &cfg.name_suffix, true).map_err(at)?;
        record(m, "SuffixTransformer");
    }
    for label in &k.labels {
        let mut fss = label.fields.clone();
        let result = if label.include_selectors {
            merge_all(&mut fss, &cfg.common_labels)
        } else {
            let templates = if label.include_templates {
                merge_all(&mut fss, &cfg.template_labels)
            } else {
                Ok(())
            };
            templates.and_then(|()| {
                merge_one(
                    &mut fss,
                    &FieldSpec {
                        gvk: Gvk::default(),
                        path: "metadata/labels".into(),
                        create: true,
                    },
                )
            })
        };
        result
            .and_then(|()| merge_all(&mut fss, &cfg.labels))
            .map_err(|e| Error::in_file(code::INVALID, &t.src.file, e))?;
        set_map_entries(m, &label.pairs, &fss).map_err(at)?;
        record(m, "LabelTransformer");
    }
    if !k.labels.is_empty() || !k.common_labels.is_empty() {
        set_map_entries(m, &k.common_labels, &cfg.common_labels).map_err(at)?;
        record(m, "LabelTransformer");
    }
    if !k.common_annotations.is_empty() {
        set_map_entries(m, &k.common_annotations, &cfg.common_annotations).map_err(at)?;
        record(m, "AnnotationsTransformer");
    }
    for p in &k.patches_json6902 {
        patch::json6902_legacy(b, &t.src, &t.dir, m, p)?;
        record(m, "PatchJson6902Transformer");
    }
    for r in &k.replicas {
        replicas(m, r, &cfg.replicas).map_err(|e| relocate(e, &t.src, r.pos))?;
        record(m, "ReplicaCountTransformer");
    }
    for img in &k.images {
        images(m, img, &cfg.images).map_err(|e| relocate(e, &t.src, img.pos))?;
        record(m, "ImageTagTransformer");
    }
    if !k.replacements.is_empty() {
        let list = replace::load(b, t)?;
        replace::apply(m, &list).map_err(at)?;
        record(m, "ReplacementTransformer");
    }
    Ok(())
}

/// An error of a transformer, pointed at the kustomization entry that
/// configured it.
fn relocate(e: Error, src: &super::error::Source, pos: super::yaml::Pos) -> Error {
    if e.at.is_some() {
        return e;
    }
    let mut at = Error::at(e.code, src, pos, e.message.clone());
    at.help = e.help.clone();
    at
}

/// How the namespace transformer treats RoleBinding subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subjects {
    DefaultOnly,
    AllServiceAccounts,
    None,
}

/// kustomize's NamespaceTransformer.
pub fn namespace(
    m: &mut ResMap,
    ns: &str,
    specs: &[FieldSpec],
    unset_only: bool,
    subjects: Subjects,
) -> Result<()> {
    if ns.is_empty() {
        return Ok(());
    }
    let set = |node: &mut Node| -> std::result::Result<(), String> {
        if unset_only && node.as_str().is_some_and(|s| !s.is_empty()) {
            return Ok(());
        }
        *node = Node::str(ns).at(node.pos);
        Ok(())
    };
    for i in 0..m.list.len() {
        let r = &mut m.list[i];
        r.remember_id();
        let api_version = r.api_version().to_string();
        let gvk = r.gvk();
        let specs: Vec<&FieldSpec> = specs
            .iter()
            .filter(|f| f.path != "metadata/namespace" && (f.path != "metadata/name" || api_version == "v1"))
            .filter(|f| !(is_role_binding(&gvk.kind) && f.path == "subjects"))
            .collect();
        let err = |e: String| Error::new(code::INVALID, format!("namespace transformation failed: {e}"));
        if !gvk.is_cluster_scoped() {
            let meta = FieldSpec {
                gvk: Gvk::default(),
                path: "metadata/namespace".into(),
                create: true,
            };
            fieldspec::apply(&mut r.node, &meta, Some(Create::Scalar), &mut |n| set(n)).map_err(err)?;
        }
        if is_role_binding(&gvk.kind)
            && subjects != Subjects::None
            && let Some(list) = r.node.get_mut("subjects").and_then(Node::as_seq_mut)
        {
            {
                for s in list {
                    let name = s.str_at(&["name"]);
                    let wanted = match subjects {
                        Subjects::DefaultOnly => name == Some("default"),
                        _ => s.str_at(&["kind"]) == Some("ServiceAccount"),
                    };
                    if wanted && s.as_map().is_some() {
                        let mut node = s.get("namespace").cloned().unwrap_or_else(|| Node::str(""));
                        set(&mut node).map_err(err)?;
                        s.set("namespace", node);
                    }
                }
            }
        }
        for f in specs {
            fieldspec::apply(&mut r.node, f, Some(Create::Scalar), &mut |n| {
                if n.as_scalar().is_none() && !n.is_null() {
                    return Err("namespace field specs must target scalar nodes".into());
                }
                set(n)
            })
            .map_err(err)?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for r in &m.list {
        let id = r.cur_id();
        let key = (
            id.gvk.clone(),
            id.name.clone(),
            id.effective_namespace().to_string(),
        );
        if !seen.insert(key) {
            return Err(Error::new(
                code::CONFLICT,
                format!("namespace transformation produces ID conflict: {id}"),
            ));
        }
    }
    Ok(())
}

fn is_role_binding(kind: &str) -> bool {
    kind == "RoleBinding" || kind == "ClusterRoleBinding"
}

/// kustomize's LabelTransformer and AnnotationsTransformer: set each pair
/// in the mapping at each spec's path.
pub fn set_map_entries(m: &mut ResMap, pairs: &[(String, String)], specs: &[FieldSpec]) -> Result<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort();
    for r in &mut m.list {
        for f in specs {
            fieldspec::apply(&mut r.node, f, Some(Create::Map), &mut |n| match &mut n.value {
                Value::Map(_) => {
                    for (k, v) in &sorted {
                        n.set(k, Node::str(v.as_str()));
                    }
                    Ok(())
                }
                Value::Scalar(s) if s.tag == Tag::Null => Ok(()),
                _ => Err(format!(
                    "wrong node kind: expected a mapping, found {}",
                    n.kind_name()
                )),
            })
            .map_err(|e| Error::new(code::INVALID, format!("{e} (in {})", r.cur_id())))?;
        }
    }
    Ok(())
}

/// kustomize's ReplicaCountTransformer.
pub fn replicas(m: &mut ResMap, rep: &ReplicaSpec, specs: &[FieldSpec]) -> Result<()> {
    let mut found = false;
    for f in specs {
        let matched = m.by_any_id(|id| id.name == rep.name && id.gvk.is_selected(&f.gvk));
        if matched.is_empty() {
            continue;
        }
        found = true;
        for i in matched {
            let r = &mut m.list[i];
            fieldspec::apply(&mut r.node, f, Some(Create::Scalar), &mut |n| {
                *n = Node::int(rep.count).at(n.pos);
                Ok(())
            })
            .map_err(|e| Error::new(code::INVALID, e))?;
        }
    }
    if !found {
        let gvks: Vec<String> = specs.iter().map(|f| f.gvk.to_string()).collect();
        return Err(Error::new(
            code::NO_TARGET,
            format!(
                "resource with name {} does not match a config with the following GVK [{}]",
                rep.name,
                gvks.join(" ")
            ),
        )
        .help(
            "`replicas` names a Deployment, ReplicationController, ReplicaSet or StatefulSet of the build",
        ));
    }
    Ok(())
}

/// kustomize's ImageTagTransformer: every `image` in `containers` and
/// `initContainers` lists anywhere, then the configured field specs.
pub fn images(m: &mut ResMap, img: &ImageSpec, specs: &[FieldSpec]) -> Result<()> {
    let re = regex::Regex::new(&format!("^{}(@sha256)?(:[a-zA-Z0-9_.{{}}-]*)?$", img.name)).ok();
    let update = |n: &mut Node| -> std::result::Result<(), String> {
        let Some(s) = n.as_scalar() else {
            if n.is_null() {
                return Ok(());
            }
            return Err(format!(
                "wrong node kind: expected a scalar image, found {}",
                n.kind_name()
            ));
        };
        if !re.as_ref().is_some_and(|re| re.is_match(&s.text)) {
            return Ok(());
        }
        let value = set_image(&s.text, img);
        *n = Node::str(value).at(n.pos);
        Ok(())
    };
    for r in &mut m.list {
        if r.kind() == "CustomResourceDefinition" {
            continue;
        }
        let id = r.cur_id();
        let err = |e: String| Error::new(code::INVALID, format!("{e} (in {id})"));
        find_containers(&mut r.node, &mut |list| {
            let Some(items) = list.as_seq_mut() else {
                if list.is_null() {
                    return Ok(());
                }
                return Err(format!(
                    "wrong node kind: expected a list of containers, found {}",
                    list.kind_name()
                ));
            };
            for c in items {
                if let Some(image) = c.get_mut("image") {
                    update(image)?;
                }
            }
            Ok(())
        })
        .map_err(err)?;
        for f in specs {
            fieldspec::apply(&mut r.node, f, None, &mut |n| update(n)).map_err(err)?;
        }
    }
    Ok(())
}

fn find_containers(
    node: &mut Node,
    f: &mut dyn FnMut(&mut Node) -> std::result::Result<(), String>,
) -> std::result::Result<(), String> {
    match &mut node.value {
        Value::Map(entries) => {
            for e in entries {
                find_containers(&mut e.value, f)?;
                if e.key == "containers" || e.key == "initContainers" {
                    f(&mut e.value)?;
                }
            }
            Ok(())
        }
        Value::Seq(items) => items.iter_mut().try_for_each(|n| find_containers(n, f)),
        Value::Scalar(_) => Ok(()),
    }
}

/// An image reference with the entry's new name, tag or digest.
pub fn set_image(value: &str, img: &ImageSpec) -> String {
    let (mut name, mut tag, mut digest) = split_image(value);
    if !img.new_name.is_empty() {
        name = img.new_name.clone();
    }
    if !img.new_tag.is_empty() && !img.digest.is_empty() {
        tag = img.new_tag.clone();
        digest = img.digest.clone();
    } else if !img.new_tag.is_empty() {
        tag = img.new_tag.clone();
        digest.clear();
    } else if !img.digest.is_empty() {
        tag.clear();
        digest = img.digest.clone();
    }
    if !tag.is_empty() {
        name.push(':');
        name.push_str(&tag);
    }
    if !digest.is_empty() {
        name.push('@');
        name.push_str(&digest);
    }
    name
}

/// kustomize's image.Split: name, tag and digest of a reference.
pub fn split_image(image: &str) -> (String, String, String) {
    let slash = image.find('/').filter(|&i| i > 0).unwrap_or(0);
    let search = &image[slash..];
    let at = search.find('@');
    let colon = search.find(':');
    match (colon, at) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (c, Some(d)) if c.is_none_or(|c| d < c) => {
            let d = d + slash;
            (image[..d].to_string(), String::new(), image[d + 1..].to_string())
        }
        (Some(c), Some(d)) => {
            let (c, d) = (c + slash, d + slash);
            (
                image[..c].to_string(),
                image[c + 1..d].to_string(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), None) => {
            let c = c + slash;
            (image[..c].to_string(), image[c + 1..].to_string(), String::new())
        }
        (None, Some(_)) => (image.to_string(), String::new(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        assert_eq!(split_image("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(
            split_image("nginx:1.0"),
            ("nginx".into(), "1.0".into(), "".into())
        );
        assert_eq!(
            split_image("localhost:5000/a/b:v1@sha256:abc"),
            ("localhost:5000/a/b".into(), "v1".into(), "sha256:abc".into())
        );
        assert_eq!(
            split_image("a/b@sha256:abc"),
            ("a/b".into(), "".into(), "sha256:abc".into())
        );
        let img = ImageSpec {
            name: "nginx".into(),
            new_tag: "2".into(),
            ..ImageSpec::default()
        };
        assert_eq!(set_image("nginx:1@sha256:x", &img), "nginx:2");
    }
}
