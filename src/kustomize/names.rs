//! Names: prefixes and suffixes, content-hash suffixes of generated
//! objects, and the name references (kustomize's nameReference
//! transformer) that follow every rename into the objects that refer to the
//! renamed one.

use sha2::{Digest as _, Sha256};

use super::error::{Error, Result, code};
use super::fieldspec::{self, Create, TransformerConfig};
use super::kustomization::FieldSpec;
use super::resource::{Gvk, ResId, ResMap, Resource};
use super::yaml::scalar::{Out, output};
use super::yaml::{Node, Value};

/// Kinds whose names no prefix or suffix touches.
fn skip_rename(id: &ResId) -> bool {
    let sel = |group: &str, kind: &str| Gvk {
        group: group.into(),
        version: String::new(),
        kind: kind.into(),
    };
    id.gvk.is_selected(&sel("", "CustomResourceDefinition"))
        || id.gvk.is_selected(&sel("apiregistration.k8s.io", "APIService"))
        || id.gvk.is_selected(&sel("", "Namespace"))
}

/// kustomize's PrefixTransformer / SuffixTransformer /
/// PrefixSuffixTransformer. `split` is true for the v5 transformers of
/// `namePrefix`/`nameSuffix` (a previous id is kept only when something is
/// added).
pub fn prefix_suffix(
    m: &mut ResMap,
    prefix: &str,
    suffix: &str,
    specs: &[FieldSpec],
    split: bool,
) -> Result<()> {
    for r in &mut m.list {
        let id = r.org_id();
        if skip_rename(&id) {
            continue;
        }
        for f in specs {
            if !id.gvk.is_selected(&f.gvk) {
                continue;
            }
            if f.path == "metadata/name" {
                if !prefix.is_empty() {
                    r.prefixes.push(prefix.to_string());
                }
                if !suffix.is_empty() {
                    r.suffixes.push(suffix.to_string());
                }
                if !split || !prefix.is_empty() || !suffix.is_empty() {
                    r.remember_id();
                }
            }
            let cur = r.cur_id();
            fieldspec::apply(&mut r.node, f, Some(Create::Scalar), &mut |n| {
                let old = n.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                *n = Node::str(format!("{prefix}{old}{suffix}")).at(n.pos);
                Ok(())
            })
            .map_err(|e| Error::new(code::INVALID, format!("{e} (in {cur})")))?;
        }
    }
    Ok(())
}

/// Append the content hash to the names of generated objects.
pub fn add_hashes(m: &mut ResMap) -> Result<()> {
    for r in &mut m.list {
        if r.needs_hash {
            let h = hash(&r.node)?;
            r.remember_id();
            let name = format!("{}-{h}", r.name());
            r.set_name(&name);
        }
    }
    Ok(())
}

/// kustomize's content hash of an object: of kind, name and data for
/// ConfigMaps and Secrets, of the whole object otherwise.
pub fn hash(node: &Node) -> Result<String> {
    let kind = node.str_at(&["kind"]).unwrap_or("");
    let field = |path: &[&str]| -> Json<'_> {
        match node.path(path) {
            None => Json::Str(""),
            Some(n) if n.as_scalar().is_some() => Json::Str(n.as_scalar().map_or("", |s| s.text.as_str())),
            Some(n) => Json::Node(n),
        }
    };
    let mut out = String::new();
    match kind {
        "ConfigMap" => {
            let mut parts = Vec::new();
            if let Some(b) = node.get("binaryData").filter(|b| b.as_map().is_some()) {
                parts.push(("binaryData", Json::Node(b)));
            }
            parts.push(("data", field(&["data"])));
            parts.push(("kind", Json::Str("ConfigMap")));
            // kustomize looks the name up as one key "metadata/name", which
            // never exists: the name is always empty.
            parts.push(("name", Json::Str("")));
            write_object(&mut out, &parts)?;
        }
        "Secret" => {
            let mut parts = vec![
                ("data", field(&["data"])),
                ("kind", Json::Str("Secret")),
                ("name", Json::Str("")),
            ];
            if let Some(s) = node.get("stringData").filter(|b| b.as_map().is_some()) {
                parts.push(("stringData", Json::Node(s)));
            }
            parts.push(("type", field(&["type"])));
            write_object(&mut out, &parts)?;
        }
        _ => write_json(&mut out, node)?,
    }
    let digest = Sha256::digest(out.as_bytes());
    let hex: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    Ok(hex
        .chars()
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            c => c,
        })
        .collect())
}

enum Json<'a> {
    Str(&'a str),
    Node(&'a Node),
}

fn write_object(out: &mut String, parts: &[(&str, Json<'_>)]) -> Result<()> {
    out.push('{');
    for (i, (k, v)) in parts.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, k);
        out.push(':');
        match v {
            Json::Str(s) => json_string(out, s),
            Json::Node(n) => write_json(out, n)?,
        }
    }
    out.push('}');
    Ok(())
}

/// An object as Go's `json.Marshal` writes it: keys sorted, HTML-safe escapes.
pub fn write_json(out: &mut String, node: &Node) -> Result<()> {
    match &node.value {
        Value::Scalar(s) => match output(s).map_err(|e| Error::new(code::INVALID, e))? {
            Out::Null => out.push_str("null"),
            Out::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            Out::Number(n) => out.push_str(&json_number(&n)),
            Out::Str(s) => json_string(out, &s),
        },
        Value::Seq(items) => {
            out.push('[');
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, n)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&super::yaml::Entry> = entries.iter().collect();
            sorted.sort_by(|a, b| a.key.cmp(&b.key));
            out.push('{');
            for (i, e) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, &e.key);
                out.push(':');
                write_json(out, &e.value)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

/// A number as yaml.v2 wrote it, as Go's JSON writes it.
fn json_number(n: &str) -> String {
    match n.parse::<f64>() {
        Ok(f) if n.contains(['e', '.']) => {
            let abs = f.abs();
            if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                let s = format!("{f:e}");
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let e: i32 = e.parse().unwrap_or(0);
                format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs()).replace("e-0", "e-")
            } else {
                format!("{f}")
            }
        }
        _ => n.to_string(),
    }
}

pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// kustomize's nameReference transformer: every field that names an
/// object of a renamed kind gets the object's new name.
pub fn fix_back_references(m: &mut ResMap, config: &TransformerConfig) -> Result<()> {
    let cur_ids: Vec<ResId> = m.list.iter().map(Resource::cur_id).collect();
    // Which filters run on which referrer, in kustomize's order.
    let mut work: Vec<(usize, &FieldSpec, &Gvk)> = Vec::new();
    for back in &config.name_reference {
        for spec in &back.referrers {
            for (i, r) in m.list.iter().enumerate() {
                if cur_ids[i].gvk.is_selected(&spec.gvk) && has_field(&r.node, &spec.path) {
                    work.push((i, spec, &back.gvk));
                }
            }
        }
    }
    work.sort_by_key(|w| w.0);
    let mut refs: Vec<(usize, ResId)> = Vec::new();
    for (i, spec, target) in work {
        let referrer = &m.list[i];
        let candidates = candidates_for(m, referrer)?;
        let mut updates: Vec<Update> = Vec::new();
        let referrer_id = referrer.cur_id();
        let mut node = referrer.node.clone();
        let filter = Filter {
            m,
            referrer,
            spec,
            target,
            candidates: &candidates,
        };
        fieldspec::apply(&mut node, spec, None, &mut |n| filter.set(n, &mut updates)).map_err(|e| {
            Error::new(
                code::INVALID,
                format!(
                    "updating name reference in '{}' field of '{}': {e}",
                    spec.path, referrer_id
                ),
            )
        })?;
        m.list[i].node = node;
        for u in updates {
            refs.push((u.referral, referrer_id.clone()));
        }
    }
    for (referral, by) in refs {
        m.list[referral].ref_by.push(by);
    }
    Ok(())
}

struct Update {
    referral: usize,
}

fn has_field(node: &Node, path: &str) -> bool {
    let parts = fieldspec::split_path(path);
    fn walk(n: &Node, parts: &[String]) -> bool {
        let Some(first) = parts.first() else {
            return true;
        };
        match &n.value {
            Value::Map(_) => {
                let name = first.strip_suffix("[]").unwrap_or(first);
                n.get(name).is_some_and(|v| walk(v, &parts[1..]))
            }
            Value::Seq(items) => items.iter().any(|i| walk(i, parts)),
            Value::Scalar(_) => false,
        }
    }
    walk(node, &parts)
}

/// The objects `referrer` may refer to: kustomize's
/// SubsetThatCouldBeReferencedByResource.
fn candidates_for(m: &ResMap, referrer: &Resource) -> Result<Vec<usize>> {
    let rid = referrer.cur_id();
    if rid.is_cluster_scoped() {
        return Ok((0..m.list.len()).collect());
    }
    let mut binding_namespaces: Vec<String> = Vec::new();
    if referrer.kind() == "RoleBinding"
        && let Some(subjects) = referrer.node.get("subjects").and_then(Node::as_seq)
    {
        for s in subjects {
            if s.str_at(&["kind"]) == Some("ServiceAccount")
                && let Some(ns) = s.get("namespace")
            {
                match ns.as_str() {
                    Some(ns) => binding_namespaces.push(ns.to_string()),
                    None => {
                        return Err(Error::new(
                            code::INVALID,
                            format!("Invalid Input: namespace is blank for resource \"{rid}\""),
                        ));
                    }
                }
            }
        }
    }
    Ok(m.list
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            let id = r.cur_id();
            id.is_cluster_scoped()
                || id.ns_equals(&rid)
                || binding_namespaces.iter().any(|n| n == r.namespace())
        })
        .map(|(i, _)| i)
        .collect())
}

struct Filter<'a> {
    m: &'a ResMap,
    referrer: &'a Resource,
    spec: &'a FieldSpec,
    target: &'a Gvk,
    candidates: &'a [usize],
}

impl Filter<'_> {
    fn set(&self, node: &mut Node, updates: &mut Vec<Update>) -> std::result::Result<(), String> {
        match &mut node.value {
            Value::Scalar(s) if s.tag == super::yaml::Tag::Null => Ok(()),
            Value::Scalar(_) => self.set_scalar(node, updates),
            Value::Map(_) => self.set_mapping(node, updates),
            Value::Seq(items) => {
                for item in items {
                    match &item.value {
                        Value::Scalar(_) => self.set_scalar(item, updates)?,
                        Value::Map(_) => self.set_mapping(item, updates)?,
                        Value::Seq(_) => return Err("expected a scalar or a mapping in the list".into()),
                    }
                }
                Ok(())
            }
        }
    }

    fn set_scalar(&self, node: &mut Node, updates: &mut Vec<Update>) -> std::result::Result<(), String> {
        let old = node.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
        let Some(referral) = self.select(&old, self.candidates.to_vec(), false)? else {
            return Ok(());
        };
        updates.push(Update { referral });
        let name = self.m.list[referral].name();
        if name != old {
            *node = Node::str(name).at(node.pos);
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Node, updates: &mut Vec<Update>) -> std::result::Result<(), String> {
        let Some(old) = node
            .get("name")
            .map(|n| n.as_scalar().map(|s| s.text.clone()).unwrap_or_default())
        else {
            return Err("path config error; no 'name' field in node".into());
        };
        let candidates: Vec<usize> = match node.get("namespace").and_then(|n| n.as_scalar()) {
            None => self.candidates.to_vec(),
            Some(ns) => {
                // kustomize groups candidates by effective namespace
                // (`default` for none), leaving out cluster-scoped ones.
                let group =
                    |id: ResId| (!id.is_cluster_scoped()).then(|| id.effective_namespace().to_string());
                let by_org: Vec<usize> = self
                    .candidates
                    .iter()
                    .copied()
                    .filter(|&i| group(self.m.list[i].org_id()).as_deref() == Some(ns.text.as_str()))
                    .collect();
                if by_org.is_empty() {
                    self.candidates
                        .iter()
                        .copied()
                        .filter(|&i| group(self.m.list[i].cur_id()).as_deref() == Some(ns.text.as_str()))
                        .collect()
                } else {
                    by_org
                }
            }
        };
        let Some(referral) = self.select(&old, candidates, true)? else {
            return Ok(());
        };
        updates.push(Update { referral });
        let r = &self.m.list[referral];
        if r.name() == old && r.namespace().is_empty() {
            return Ok(());
        }
        node.set("name", Node::str(r.name()));
        if !r.namespace().is_empty() {
            node.set("namespace", Node::str(r.namespace()));
        }
        Ok(())
    }

    fn select(
        &self,
        old: &str,
        candidates: Vec<usize>,
        with_namespace: bool,
    ) -> std::result::Result<Option<usize>, String> {
        let list = &self.m.list;
        let mut c: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| list[i].prev.iter().any(|id| id.name == old))
            .filter(|&i| list[i].prev.iter().any(|id| id.gvk.is_selected(self.target)))
            .collect();
        if self.spec.path.ends_with("roleRef/name")
            && let Some(gvk) = role_ref_gvk(&self.referrer.node)
        {
            c.retain(|&i| list[i].prev.iter().any(|id| id.gvk.is_selected(&gvk)));
        }
        let rid = self.referrer.cur_id();
        if !rid.is_cluster_scoped() {
            c.retain(|&i| {
                let id = list[i].cur_id();
                id.is_cluster_scoped() || list[i].kind() == "ServiceAccount" || rid.ns_equals(&id)
            });
        }
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&i| prefixes_suffixes_equal(&list[i], self.referrer, true));
        match c.len() {
            0 => return Ok(None),
            1 => return Ok(Some(c[0])),
            _ => {}
        }
        let strict: Vec<usize> = c
            .iter()
            .copied()
            .filter(|&i| prefixes_suffixes_equal(&list[i], self.referrer, false))
            .collect();
        if strict.len() == 1 {
            return Ok(Some(strict[0]));
        }
        let first = &list[c[0]];
        let same = c.iter().all(|&i| {
            list[i].name() == first.name() && (!with_namespace || list[i].namespace() == first.namespace())
        });
        if same {
            return Ok(Some(c[0]));
        }
        let ids: Vec<String> = c.iter().map(|&i| list[i].cur_id().to_string()).collect();
        Err(format!("found multiple possible referrals: {}", ids.join(", ")))
    }
}

fn role_ref_gvk(node: &Node) -> Option<Gvk> {
    let rr = node.get("roleRef")?;
    Some(Gvk {
        group: rr.str_at(&["apiGroup"])?.to_string(),
        version: String::new(),
        kind: rr.str_at(&["kind"])?.to_string(),
    })
}

fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let diff = long.len() - short.len();
    if short.is_empty() {
        return diff == 0;
    }
    short.iter().enumerate().all(|(i, s)| &long[i + diff] == s)
}

fn prefixes_suffixes_equal(r: &Resource, o: &Resource, allow_empty: bool) -> bool {
    let pe = allow_empty && (r.prefixes.is_empty() || o.prefixes.is_empty());
    let se = allow_empty && (r.suffixes.is_empty() || o.suffixes.is_empty());
    (pe || same_ending(&r.prefixes, &o.prefixes)) && (se || same_ending(&r.suffixes, &o.suffixes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kustomize::yaml::parse_documents;

    fn node(text: &str) -> Node {
        parse_documents(text).unwrap().remove(0).node.unwrap()
    }

    #[test]
    fn config_map_hash_is_kustomizes() {
        // Names from `kubectl kustomize` (kustomize v5.5).
        let cm = node("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: example-configmap\n");
        assert_eq!(hash(&cm).unwrap(), "6ct58987ht");
    }

    #[test]
    fn hash_input_is_kustomizes() {
        // The hash of a ConfigMap covers kind, name and data only.
        let a =
            node("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {x: y}\ndata:\n  k: v\n");
        let b = node("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n");
        assert_eq!(hash(&a).unwrap(), hash(&b).unwrap());
        assert_eq!(hash(&a).unwrap().len(), 10);
    }
}
