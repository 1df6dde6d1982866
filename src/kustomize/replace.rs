//! `replacements`: copy a value from a field of one object into fields of
//! others (kustomize's ReplacementTransformer), with field paths like
//! `spec.template.spec.containers.[name=app].image`, wildcards in targets,
//! the `delimiter`/`index` and `create` options.

use super::build::{Builder, Target, parse_one};
use super::error::{Error, Result, Source, code};
use super::kustomization::{FieldOptions, Replacement, ReplacementEntry, Selector, replacement};
use super::read::Reader;
use super::resource::{Gvk, ResId, ResMap, Resource};
use super::yaml::{Node, Tag, Value};

/// The replacements of a kustomization, files read.
pub fn load(b: &Builder<'_>, t: &Target) -> Result<Vec<Replacement>> {
    let mut out = Vec::new();
    for e in &t.k.replacements {
        match e {
            ReplacementEntry::Inline(r) => out.push((**r).clone()),
            ReplacementEntry::Path(p) => {
                let file = b.file_of(t, p)?;
                let text = b.fs.read(&file)?;
                let src = Source { file, text };
                out.extend(replacements_from(&src, &parse_one(&src)?)?);
            }
        }
    }
    Ok(out)
}

/// The replacements in a file: one, or a list of them.
pub fn replacements_from(src: &Source, node: &Node) -> Result<Vec<Replacement>> {
    let mut r = Reader::new(src);
    let mut out = Vec::new();
    match &node.value {
        Value::Seq(items) => {
            for item in items {
                if let Some(rep) = replacement(&mut r, item) {
                    out.push(rep);
                }
            }
        }
        Value::Map(_) => {
            if let Some(rep) = replacement(&mut r, node) {
                out.push(rep);
            }
        }
        Value::Scalar(_) => {
            r.error(
                code::WRONG_TYPE,
                node.pos,
                "a replacements file holds a replacement or a list of them",
            );
        }
    }
    super::kustomization::finish(r, out)
}

fn id_of(s: &Selector) -> ResId {
    ResId {
        gvk: s.gvk.clone(),
        name: s.name.clone(),
        namespace: s.namespace.clone(),
    }
}

/// kustomize's ResId.IsSelectedBy.
fn selected_by(id: &ResId, sel: &ResId) -> bool {
    (sel.name.is_empty() || sel.name == id.name)
        && (sel.namespace.is_empty() || sel.ns_equals(id))
        && id.gvk.is_selected(&sel.gvk)
}

fn ids(r: &Resource) -> Vec<ResId> {
    let cur = r.cur_id();
    let mut v = vec![cur.clone()];
    for p in &r.prev {
        v.push(ResId {
            gvk: Gvk {
                group: cur.gvk.group.clone(),
                version: cur.gvk.version.clone(),
                kind: p.gvk.kind.clone(),
            },
            name: p.name.clone(),
            namespace: p.namespace.clone(),
        });
    }
    v
}

pub fn apply(m: &mut ResMap, list: &[Replacement]) -> Result<()> {
    for rep in list {
        let (Some(source), false) = (&rep.source, rep.targets.is_empty()) else {
            return Err(Error::new(
                code::INVALID,
                "replacements must specify a source and at least one target",
            )
            .help("each replacement needs `source:` and `targets:`"));
        };
        let sel = id_of(&source.id);
        let mut found = None;
        for (i, r) in m.list.iter().enumerate() {
            if ids(r).iter().any(|id| selected_by(id, &sel)) {
                if found.is_some() {
                    return Err(
                        Error::new(code::CONFLICT, format!("multiple matches for selector {sel}"))
                            .help("make the replacement source select one object (add name or namespace)"),
                    );
                }
                found = Some(i);
            }
        }
        let Some(i) = found else {
            return Err(Error::new(code::NO_TARGET, format!("nothing selected by {sel}"))
                .help("the replacement source must name an object of the build"));
        };
        let path = if source.field_path.is_empty() {
            "metadata.name"
        } else {
            source.field_path.as_str()
        };
        let parts = split(path);
        let value = lookup(&m.list[i].node, &parts)
            .filter(|n| {
                !n.is_null()
                    && !n.as_map().is_some_and(Vec::is_empty)
                    && !n.as_seq().is_some_and(Vec::is_empty)
            })
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    code::NO_TARGET,
                    format!("fieldPath `{path}` is missing for replacement source {sel}"),
                )
            })?;
        let value = refine(source.options.as_ref(), value)?;
        for t in &rep.targets {
            let Some(select) = &t.select else {
                return Err(Error::new(
                    code::INVALID,
                    "target must specify resources to select",
                ));
            };
            let sel = id_of(select);
            let paths: Vec<String> = if t.field_paths.is_empty() {
                vec!["metadata.name".into()]
            } else {
                t.field_paths.clone()
            };
            for r in &mut m.list {
                if !select_by_anno_and_label(r, select, &t.reject)? {
                    continue;
                }
                let rids = ids(r);
                let rejected = rids.iter().any(|id| {
                    t.reject.iter().any(|rej| {
                        let rid = id_of(rej);
                        rid != ResId::default() && selected_by(id, &rid)
                    })
                });
                let hit = !rejected && rids.iter().any(|id| selected_by(id, &sel));
                if !hit {
                    continue;
                }
                for fp in &paths {
                    copy_to(&mut r.node, &value, fp, t.options.as_ref())
                        .map_err(|e| Error::new(code::INVALID, format!("{e} (in {})", r.cur_id())))?;
                }
            }
        }
    }
    Ok(())
}

fn select_by_anno_and_label(r: &Resource, select: &Selector, rejects: &[Selector]) -> Result<bool> {
    let matches = |s: &Selector| -> Result<bool> {
        let mut only = Selector {
            label_selector: s.label_selector.clone(),
            annotation_selector: s.annotation_selector.clone(),
            ..Selector::default()
        };
        only.gvk = Gvk::default();
        let one = ResMap {
            list: vec![Resource::new(r.node.clone(), "", 0, 0)],
        };
        super::patch::select(&one, &only)
            .map(|v| !v.is_empty())
            .map_err(|e| Error::new(code::INVALID, e))
    };
    if !matches(select)? {
        return Ok(false);
    }
    for rej in rejects {
        if rej.label_selector.is_empty() && rej.annotation_selector.is_empty() {
            continue;
        }
        if matches(rej)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn refine(options: Option<&FieldOptions>, value: Node) -> Result<Node> {
    let Some(o) = options.filter(|o| !o.delimiter.is_empty()) else {
        return Ok(value);
    };
    let Some(s) = value.as_scalar() else {
        return Err(Error::new(
            code::INVALID,
            "delimiter option can only be used with scalar nodes",
        ));
    };
    let parts: Vec<&str> = s.text.split(o.delimiter.as_str()).collect();
    if o.index < 0 || o.index as usize >= parts.len() {
        return Err(Error::new(
            code::INVALID,
            format!("options.index {} is out of bounds for value {}", o.index, s.text),
        ));
    }
    let mut v = value.clone();
    if let Value::Scalar(sc) = &mut v.value {
        sc.text = parts[o.index as usize].to_string();
    }
    Ok(v)
}

/// Split a field path on dots, keeping `[…]` parts whole and splitting
/// `name[k=v]` into `name` and `[k=v]`.
pub fn split(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => {
                if depth == 0 && !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A `[k=v]` (or `[=v]`) part.
fn element_match(part: &str) -> Option<(&str, &str)> {
    part.strip_prefix('[')?.strip_suffix(']')?.split_once('=')
}

fn matches(item: &Node, k: &str, v: &str) -> bool {
    if k.is_empty() {
        return item.as_scalar().is_some_and(|s| s.text == v);
    }
    item.get(k)
        .and_then(|n| n.as_scalar())
        .is_some_and(|s| v == "*" || s.text == v)
}

/// The node at a path (the first match).
pub fn lookup<'n>(node: &'n Node, parts: &[String]) -> Option<&'n Node> {
    let mut cur = node;
    for part in parts {
        cur = match &cur.value {
            Value::Map(_) => cur.get(part)?,
            Value::Seq(items) => {
                if let Some((k, v)) = element_match(part) {
                    items.iter().find(|i| matches(i, k, v))?
                } else {
                    items.get(
                        part.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<usize>()
                            .ok()?,
                    )?
                }
            }
            Value::Scalar(_) => return None,
        };
    }
    Some(cur)
}

/// Every node a path (with `*` wildcards) matches.
fn matches_all<'n>(node: &'n mut Node, parts: &[String], out: &mut Vec<&'n mut Node>) {
    let Some((first, rest)) = parts.split_first() else {
        out.push(node);
        return;
    };
    match &mut node.value {
        Value::Map(entries) => {
            if first == "*" {
                for e in entries {
                    matches_all(&mut e.value, rest, out);
                }
            } else if let Some(e) = entries.iter_mut().find(|e| &e.key == first) {
                matches_all(&mut e.value, rest, out);
            }
        }
        Value::Seq(items) => {
            if let Some((k, v)) = element_match(first) {
                for i in items.iter_mut().filter(|i| matches(i, k, v)) {
                    matches_all(i, rest, out);
                }
            } else if first == "*" || first == "-" {
                for i in items.iter_mut() {
                    matches_all(i, rest, out);
                }
            } else if let Ok(idx) = first
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<usize>()
                && let Some(i) = items.get_mut(idx)
            {
                matches_all(i, rest, out);
            }
        }
        Value::Scalar(_) => {}
    }
}

/// Create the path (maps, list elements for `[k=v]`) and give its node.
fn lookup_create<'n>(node: &'n mut Node, parts: &[String], leaf: &Node) -> Option<&'n mut Node> {
    let Some((first, rest)) = parts.split_first() else {
        return Some(node);
    };
    let next_is_elem = rest.first().is_some_and(|p| element_match(p).is_some());
    if node.is_null() {
        *node = if element_match(first).is_some() {
            Node::seq(Vec::new())
        } else {
            Node::map()
        };
    }
    let fresh = || {
        if rest.is_empty() {
            match &leaf.value {
                Value::Map(_) => Node::map(),
                Value::Seq(_) => Node::seq(Vec::new()),
                Value::Scalar(_) => Node::null(),
            }
        } else if next_is_elem {
            Node::seq(Vec::new())
        } else {
            Node::map()
        }
    };
    match &mut node.value {
        Value::Map(entries) => {
            let i = match entries.iter().position(|e| &e.key == first) {
                Some(i) => i,
                None => {
                    entries.push(super::yaml::Entry {
                        key: first.clone(),
                        key_pos: super::yaml::Pos::default(),
                        value: fresh(),
                    });
                    entries.len() - 1
                }
            };
            lookup_create(&mut entries[i].value, rest, leaf)
        }
        Value::Seq(items) => {
            let (k, v) = element_match(first)?;
            let i = match items.iter().position(|i| matches(i, k, v)) {
                Some(i) => i,
                None => {
                    let mut e = Node::map();
                    e.set(k, Node::plain(v));
                    items.push(e);
                    items.len() - 1
                }
            };
            lookup_create(&mut items[i], rest, leaf)
        }
        Value::Scalar(_) => None,
    }
}

fn copy_to(
    target: &mut Node,
    value: &Node,
    fp: &str,
    options: Option<&FieldOptions>,
) -> std::result::Result<(), String> {
    let parts = split(fp);
    let create = options.is_some_and(|o| o.create);
    if create && parts.iter().any(|p| p == "*") {
        return Err("cannot support create option in a multi-value target".into());
    }
    let mut fields: Vec<&mut Node> = Vec::new();
    if create {
        if let Some(n) = lookup_create(target, &parts, value) {
            fields.push(n);
        }
    } else {
        matches_all(target, &parts, &mut fields);
    }
    if fields.is_empty() {
        return Err(if create {
            format!("unable to find or create field \"{fp}\" in replacement target")
        } else {
            format!("unable to find field \"{fp}\" in replacement target")
        });
    }
    for f in fields {
        let mut v = value.clone();
        if let Some(o) = options.filter(|o| !o.delimiter.is_empty()) {
            let Some(ts) = f.as_scalar() else {
                return Err("delimiter option can only be used with scalar nodes".into());
            };
            let mut tv: Vec<String> = ts.text.split(o.delimiter.as_str()).map(str::to_string).collect();
            let vs = v.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
            if o.index < 0 {
                tv.insert(0, vs);
            } else if o.index as usize >= tv.len() {
                tv.push(vs);
            } else {
                tv[o.index as usize] = vs;
            }
            if let Value::Scalar(s) = &mut v.value {
                s.text = tv.join(&o.delimiter);
            }
        }
        match (&mut f.value, &v.value) {
            (Value::Scalar(t), Value::Scalar(s)) if t.tag != Tag::Null => t.text = s.text.clone(),
            _ => *f = v.at(f.pos),
        }
    }
    Ok(())
}
