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
    crate::quoted::write(out, s, crate::quoted::Syntax::Json { escape_html: true });
}

/// kustomize's nameReference transformer: every field that names an
/// object of a renamed kind gets the object's new name.
pub fn fix_back_references(m: &mut ResMap, config: &TransformerConfig) -> Result<()> {
    let ix = Index::new(m);
    // Which filters run on which referrer, in kustomize's order.
    let mut work: Vec<(usize, &FieldSpec, &Gvk)> = Vec::new();
    for back in &config.name_reference {
        for spec in &back.referrers {
            let parts = fieldspec::split_path(&spec.path);
            for (i, r) in m.list.iter().enumerate() {
                if ix.cur[i].gvk.is_selected(&spec.gvk) && has_field(&r.node, &parts) {
                    work.push((i, spec, &back.gvk));
                }
            }
        }
    }
    work.sort_by_key(|w| w.0);
    let mut refs: Vec<(usize, ResId)> = Vec::new();
    let mut ctx: Option<(usize, Referrer)> = None;
    for (i, spec, target) in work {
        if ctx.as_ref().is_none_or(|(at, _)| *at != i) {
            ctx = Some((i, Referrer::new(&m.list[i], &ix.cur[i])?));
        }
        let Some((_, referrer)) = &ctx else { continue };
        let mut node = std::mem::replace(&mut m.list[i].node, Node::null());
        let mut updates: Vec<usize> = Vec::new();
        let result = {
            let filter = Filter {
                list: &m.list,
                ix: &ix,
                referrer,
                spec,
                target,
            };
            fieldspec::apply(&mut node, spec, None, &mut |n| filter.set(n, &mut updates))
        };
        m.list[i].node = node;
        result.map_err(|e| {
            Error::new(
                code::INVALID,
                format!(
                    "updating name reference in '{}' field of '{}': {e}",
                    spec.path, referrer.id
                ),
            )
        })?;
        for u in updates {
            refs.push((u, referrer.id.clone()));
        }
    }
    for (referral, by) in refs {
        m.list[referral].ref_by.push(by);
    }
    Ok(())
}

/// Ids of every object, and the objects by each name they had before.
struct Index {
    cur: Vec<ResId>,
    org: Vec<ResId>,
    /// Of the current ids: cluster-scoped, and the effective namespace.
    cluster: Vec<bool>,
    namespace: Vec<String>,
    by_prev_name: std::collections::HashMap<String, Vec<usize>>,
}

impl Index {
    fn new(m: &ResMap) -> Index {
        let mut by_prev_name: std::collections::HashMap<String, Vec<usize>> =
            std::collections::HashMap::new();
        for (i, r) in m.list.iter().enumerate() {
            for id in &r.prev {
                let v = by_prev_name.entry(id.name.clone()).or_default();
                if v.last() != Some(&i) {
                    v.push(i);
                }
            }
        }
        let cur: Vec<ResId> = m.list.iter().map(Resource::cur_id).collect();
        Index {
            cluster: cur.iter().map(ResId::is_cluster_scoped).collect(),
            namespace: cur
                .iter()
                .map(|id| id.effective_namespace().to_string())
                .collect(),
            org: m.list.iter().map(Resource::org_id).collect(),
            cur,
            by_prev_name,
        }
    }
}

fn has_field(node: &Node, parts: &[String]) -> bool {
    let Some(first) = parts.first() else {
        return true;
    };
    match &node.value {
        Value::Map(_) => {
            let name = first.strip_suffix("[]").unwrap_or(first);
            node.get(name).is_some_and(|v| has_field(v, &parts[1..]))
        }
        Value::Seq(items) => items.iter().any(|i| has_field(i, parts)),
        Value::Scalar(_) => false,
    }
}

/// What the filters need to know of the object whose fields they update.
struct Referrer {
    id: ResId,
    cluster: bool,
    namespace: String,
    /// Namespaces of the ServiceAccounts a RoleBinding names.
    binding_namespaces: Vec<String>,
    role_ref: Option<Gvk>,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
}

impl Referrer {
    fn new(r: &Resource, id: &ResId) -> Result<Referrer> {
        let mut binding_namespaces: Vec<String> = Vec::new();
        if r.kind() == "RoleBinding"
            && let Some(subjects) = r.node.get("subjects").and_then(Node::as_seq)
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
                                format!("Invalid Input: namespace is blank for resource \"{id}\""),
                            ));
                        }
                    }
                }
            }
        }
        Ok(Referrer {
            cluster: id.is_cluster_scoped(),
            namespace: id.effective_namespace().to_string(),
            id: id.clone(),
            binding_namespaces,
            role_ref: role_ref_gvk(&r.node),
            prefixes: r.prefixes.clone(),
            suffixes: r.suffixes.clone(),
        })
    }

    /// Whether it may refer to object `i` at all: kustomize's
    /// SubsetThatCouldBeReferencedByResource.
    fn may_refer(&self, ix: &Index, list: &[Resource], i: usize) -> bool {
        if self.cluster {
            return true;
        }
        ix.cluster[i]
            || ix.namespace[i] == self.namespace
            || self.binding_namespaces.iter().any(|n| n == list[i].namespace())
    }
}

struct Filter<'a> {
    list: &'a [Resource],
    ix: &'a Index,
    referrer: &'a Referrer,
    spec: &'a FieldSpec,
    target: &'a Gvk,
}

impl Filter<'_> {
    fn set(&self, node: &mut Node, updates: &mut Vec<usize>) -> std::result::Result<(), String> {
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

    /// The objects once named `old` that the referrer may refer to.
    fn named(&self, old: &str) -> Vec<usize> {
        self.ix
            .by_prev_name
            .get(old)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&i| self.referrer.may_refer(self.ix, self.list, i))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn set_scalar(&self, node: &mut Node, updates: &mut Vec<usize>) -> std::result::Result<(), String> {
        let old = node.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
        let Some(referral) = self.select(self.named(&old), false)? else {
            return Ok(());
        };
        updates.push(referral);
        let name = &self.ix.cur[referral].name;
        if *name != old {
            *node = Node::str(name.as_str()).at(node.pos);
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Node, updates: &mut Vec<usize>) -> std::result::Result<(), String> {
        let Some(old) = node
            .get("name")
            .map(|n| n.as_scalar().map(|s| s.text.clone()).unwrap_or_default())
        else {
            return Err("path config error; no 'name' field in node".into());
        };
        let named = self.named(&old);
        let candidates: Vec<usize> = match node.get("namespace").and_then(|n| n.as_scalar()) {
            None => named,
            Some(ns) => {
                // kustomize groups candidates by effective namespace
                // (`default` for none), leaving out cluster-scoped ones.
                let in_group =
                    |id: &ResId| !id.is_cluster_scoped() && id.effective_namespace() == ns.text.as_str();
                let by_org: Vec<usize> = named
                    .iter()
                    .copied()
                    .filter(|&i| in_group(&self.ix.org[i]))
                    .collect();
                if by_org.is_empty() {
                    named.into_iter().filter(|&i| in_group(&self.ix.cur[i])).collect()
                } else {
                    by_org
                }
            }
        };
        let Some(referral) = self.select(candidates, true)? else {
            return Ok(());
        };
        updates.push(referral);
        let id = &self.ix.cur[referral];
        if id.name == old && id.namespace.is_empty() {
            return Ok(());
        }
        node.set("name", Node::str(id.name.as_str()));
        if !id.namespace.is_empty() {
            node.set("namespace", Node::str(id.namespace.as_str()));
        }
        Ok(())
    }

    fn select(
        &self,
        candidates: Vec<usize>,
        with_namespace: bool,
    ) -> std::result::Result<Option<usize>, String> {
        let list = self.list;
        let ix = self.ix;
        let mut c: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| list[i].prev.iter().any(|id| id.gvk.is_selected(self.target)))
            .collect();
        if self.spec.path.ends_with("roleRef/name")
            && let Some(gvk) = &self.referrer.role_ref
        {
            c.retain(|&i| list[i].prev.iter().any(|id| id.gvk.is_selected(gvk)));
        }
        if !self.referrer.cluster {
            c.retain(|&i| {
                ix.cluster[i]
                    || ix.cur[i].gvk.kind == "ServiceAccount"
                    || ix.namespace[i] == self.referrer.namespace
            });
        }
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        let (p, s) = (&self.referrer.prefixes, &self.referrer.suffixes);
        c.retain(|&i| prefixes_suffixes_equal(&list[i], p, s, true));
        match c.len() {
            0 => return Ok(None),
            1 => return Ok(Some(c[0])),
            _ => {}
        }
        let strict: Vec<usize> = c
            .iter()
            .copied()
            .filter(|&i| prefixes_suffixes_equal(&list[i], p, s, false))
            .collect();
        if strict.len() == 1 {
            return Ok(Some(strict[0]));
        }
        let first = &ix.cur[c[0]];
        let same = c.iter().all(|&i| {
            ix.cur[i].name == first.name && (!with_namespace || ix.cur[i].namespace == first.namespace)
        });
        if same {
            return Ok(Some(c[0]));
        }
        let ids: Vec<String> = c.iter().map(|&i| ix.cur[i].to_string()).collect();
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

fn prefixes_suffixes_equal(
    r: &Resource,
    prefixes: &[String],
    suffixes: &[String],
    allow_empty: bool,
) -> bool {
    let pe = allow_empty && (r.prefixes.is_empty() || prefixes.is_empty());
    let se = allow_empty && (r.suffixes.is_empty() || suffixes.is_empty());
    (pe || same_ending(&r.prefixes, prefixes)) && (se || same_ending(&r.suffixes, suffixes))
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
