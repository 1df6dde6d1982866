//! Patches: `patches` (strategic merge or JSON 6902, inline or from a
//! file, with or without a target), legacy `patchesStrategicMerge` and
//! `patchesJson6902`, and target selection (kustomize's ResMap.Select).
//! kustomize's PatchTransformer, PatchStrategicMergeTransformer and
//! PatchJson6902Transformer.

use std::sync::Arc;

use super::build::{Builder, resources_from, text_source};
use super::error::{Error, Result, Source, code};
use super::fs::Use;
use super::kustomization::{PatchSpec, Selector};
use super::read::Spanned;
use super::resource::{ResId, ResMap, Resource};
use super::smp;
use super::yaml::scalar::v2_retype;
use super::yaml::{Node, Pos, Value, parse_documents};

/// What a patch text holds.
pub enum Parsed {
    Strategic(Vec<Resource>),
    Json(Vec<Op>),
}

/// One JSON 6902 operation.
#[derive(Debug, Clone)]
pub struct Op {
    pub op: String,
    pub path: String,
    pub from: Option<String>,
    pub value: Option<Node>,
}

/// A patch's text: inline, or the file at `path` (inside the
/// kustomization's directory). Gives the text and the source to point into.
fn patch_text(b: &Builder<'_>, src: &Source, dir: &str, spec: &PatchSpec) -> Result<(String, Source, bool)> {
    match (&spec.path, &spec.patch) {
        (Some(_), Some(p)) => Err(Error::at(
            code::INVALID,
            src,
            p.pos,
            "patch and path can't be set at the same time",
        )
        .help("keep one of `patch` (inline) and `path` (a file)")),
        (None, None) => Err(
            Error::at(code::INVALID, src, spec.pos, "must specify one of patch and path")
                .help("give the patch inline under `patch`, or its file under `path`"),
        ),
        (Some(path), None) => {
            let file = b.file_in(src, dir, path)?;
            let bytes = b.fs.read_for(&file, Use::Patch)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::in_file(code::INVALID, &file, "not UTF-8 text"))?;
            let text = Arc::new(text);
            Ok((text.to_string(), Source { file, text }, false))
        }
        (None, Some(p)) => Ok((p.value.trim().to_string(), src.clone(), true)),
    }
}

/// Parse a patch: a strategic merge patch (objects) or a JSON patch (a
/// list of operations), as kustomize tells them apart.
pub fn parse(text: &str, src: &Source, pos: Pos, inline: bool) -> Result<Parsed> {
    let at = |m: String| {
        if inline {
            Error::at(code::INVALID, src, pos, m)
        } else {
            Error::in_file(code::INVALID, &src.file, m)
        }
    };
    let doc_src = if inline {
        text_source(&src.file, text)
    } else {
        src.clone()
    };
    let sm = resources_from(&doc_src);
    let json = json_ops(text);
    match (sm, json) {
        (Ok(list), Err(_)) => Ok(Parsed::Strategic(list)),
        (Err(_), Ok(ops)) => Ok(Parsed::Json(ops)),
        (Ok(_), Ok(_)) => Err(at(
            "the patch illegally qualifies as both a strategic merge and a JSON patch".into(),
        )),
        (Err(e), Err(j)) => {
            let yaml_problem = e.code == code::YAML;
            let mut err = if yaml_problem && !inline {
                e
            } else {
                at(format!("unable to parse SM or JSON patch: {}; {j}", e.message))
            };
            err.help = Some("a patch is either objects to merge (with apiVersion, kind and metadata.name) or a list of JSON patch operations (op, path, value)".into());
            Err(err)
        }
    }
}

/// A JSON 6902 patch: JSON when it starts with `[`, else YAML (typed as
/// kustomize's YAML-to-JSON conversion types it).
pub fn json_ops(text: &str) -> std::result::Result<Vec<Op>, String> {
    if text.is_empty() {
        return Err("empty json patch operations".into());
    }
    let json = text.starts_with('[');
    let docs = parse_documents(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let mut docs: Vec<Node> = docs.into_iter().filter_map(|d| d.node).collect();
    if docs.len() != 1 {
        return Err("a JSON patch is one list of operations".into());
    }
    let mut doc = docs.remove(0);
    if !json {
        v2_retype(&mut doc);
    }
    let Value::Seq(items) = doc.value else {
        return Err("a JSON patch is a list of operations".into());
    };
    let mut ops = Vec::new();
    for item in items {
        if item.as_map().is_none() {
            return Err("each JSON patch operation is a mapping".into());
        }
        let s = |k: &str| item.get(k).and_then(|n| n.as_scalar()).map(|s| s.text.clone());
        let Some(op) = s("op") else {
            return Err("a JSON patch operation needs `op`".into());
        };
        ops.push(Op {
            op,
            path: s("path").unwrap_or_default(),
            from: s("from"),
            value: item.get("value").cloned(),
        });
    }
    Ok(ops)
}

/// A `patches` entry.
pub fn apply(b: &Builder<'_>, src: &Source, dir: &str, m: &mut ResMap, spec: &PatchSpec) -> Result<()> {
    let (text, psrc, inline) = patch_text(b, src, dir, spec)?;
    let pos = spec.patch.as_ref().map_or(spec.pos, |p| p.pos);
    match parse(&text, &psrc, pos, inline)? {
        Parsed::Strategic(patches) => {
            if let Some(target) = &spec.target {
                if patches.len() > 1 {
                    return Err(Error::at(
                        code::INVALID,
                        src,
                        spec.pos,
                        "Multiple Strategic-Merge Patches in one `patches` entry is not allowed to set `patches.target` field",
                    )
                    .help("split the patch into one entry per object, or drop the target"));
                }
                let Some(patch) = patches.into_iter().next() else {
                    return Err(Error::at(code::INVALID, src, spec.pos, "the patch is empty"));
                };
                let selected = select(m, target).map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
                let ids: Vec<ResId> = selected.iter().map(|&i| m.list[i].cur_id()).collect();
                apply_to_set(b, m, &ids, &patch, spec.allow_name_change, spec.allow_kind_change)
                    .map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
                return Ok(());
            }
            for patch in patches {
                let id = patch.org_id();
                let i = by_id(m, &id).map_err(|e| {
                    Error::at(code::NO_TARGET, src, spec.pos, format!("no resource matches strategic merge patch \"{id}\": {e}"))
                        .help("the patch's apiVersion, kind, metadata.name and metadata.namespace must name an object of the build; or give a `target`")
                })?;
                apply_sm(
                    b,
                    &mut m.list[i],
                    &patch,
                    spec.allow_name_change,
                    spec.allow_kind_change,
                )
                .map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
                if m.list[i].node.as_map().is_none_or(Vec::is_empty) {
                    m.list.remove(i);
                }
            }
            Ok(())
        }
        Parsed::Json(ops) => {
            let Some(target) = &spec.target else {
                return Err(Error::at(
                    code::INVALID,
                    src,
                    spec.pos,
                    "must specify a target for a JSON patch",
                )
                .help("add `target:` (kind, name, …) naming the objects the operations apply to"));
            };
            let selected = select(m, target).map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
            for i in selected {
                let r = &mut m.list[i];
                r.remember_id();
                json_patch(&mut r.node, &ops).map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
            }
            Ok(())
        }
    }
}

/// `patchesStrategicMerge`: each entry a file, or (for legacy reasons)
/// the patch itself.
pub fn strategic_merge_legacy(
    b: &Builder<'_>,
    src: &Source,
    dir: &str,
    m: &mut ResMap,
    paths: &[Spanned<String>],
) -> Result<()> {
    let mut patches: Vec<(Resource, Pos)> = Vec::new();
    for p in paths {
        let inline = text_source(&src.file, &p.value);
        let list = match resources_from(&inline) {
            Ok(list)
                if !p.value.trim().is_empty()
                    && parse_documents(&p.value).is_ok_and(|d| {
                        d.iter()
                            .all(|d| d.node.as_ref().is_none_or(|n| n.as_map().is_some()))
                    })
                    && !list.is_empty() =>
            {
                list
            }
            _ => {
                let file = b.file_in(src, dir, p)?;
                b.read_resources(&file)?
            }
        };
        patches.extend(list.into_iter().map(|r| (r, p.pos)));
    }
    if patches.is_empty() {
        return Err(
            Error::in_file(code::INVALID, &src.file, "patch appears to be empty")
                .help("each patchesStrategicMerge entry must hold at least one object"),
        );
    }
    for (patch, pos) in patches {
        let id = patch.org_id();
        let i = by_id(m, &id).map_err(|e| {
            Error::at(code::NO_TARGET, src, pos, e)
                .help("the patch's apiVersion, kind, metadata.name and metadata.namespace must name an object of the build")
        })?;
        let ids = vec![m.list[i].cur_id()];
        apply_to_set(b, m, &ids, &patch, false, false).map_err(|e| Error::at(code::INVALID, src, pos, e))?;
    }
    Ok(())
}

/// `patchesJson6902`.
pub fn json6902_legacy(
    b: &Builder<'_>,
    src: &Source,
    dir: &str,
    m: &mut ResMap,
    spec: &PatchSpec,
) -> Result<()> {
    let Some(target) = &spec.target else {
        return Err(Error::at(
            code::INVALID,
            src,
            spec.pos,
            "must specify a target for patch",
        ));
    };
    if target.name.is_empty() {
        return Err(Error::at(
            code::INVALID,
            src,
            spec.pos,
            "must specify the target name",
        ));
    }
    let (text, psrc, inline) = patch_text(b, src, dir, spec)?;
    if text.is_empty() {
        return Err(Error::at(
            code::INVALID,
            src,
            spec.pos,
            "patch file seems to be empty",
        ));
    }
    let ops = json_ops(&text).map_err(|e| {
        if inline {
            Error::at(
                code::INVALID,
                src,
                spec.pos,
                format!("decoding the JSON patch: {e}"),
            )
        } else {
            Error::in_file(code::INVALID, &psrc.file, format!("decoding the JSON patch: {e}"))
        }
    })?;
    if ops.is_empty() {
        return Err(Error::at(
            code::INVALID,
            src,
            spec.pos,
            "patch appears to be empty",
        ));
    }
    let selected = select(m, target).map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
    for i in selected {
        json_patch(&mut m.list[i].node, &ops).map_err(|e| Error::at(code::INVALID, src, spec.pos, e))?;
    }
    Ok(())
}

/// The one object any of whose ids equals `id` (kustomize's GetById).
fn by_id(m: &ResMap, id: &ResId) -> std::result::Result<usize, String> {
    let found = m.by_any_id(|x| id.equals(x));
    match found.as_slice() {
        [i] => Ok(*i),
        [] => Err(format!(
            "no matches for Id {id}; failed to find unique target for patch"
        )),
        _ => Err(format!(
            "multiple matches for Id {id}; failed to find unique target for patch"
        )),
    }
}

/// kustomize's ResMap.ApplySmPatch: patch each object of the set (the
/// patch takes the object's apiVersion), dropping objects the patch deletes.
fn apply_to_set(
    b: &Builder<'_>,
    m: &mut ResMap,
    ids: &[ResId],
    patch: &Resource,
    allow_name: bool,
    allow_kind: bool,
) -> std::result::Result<(), String> {
    let mut i = 0;
    while i < m.list.len() {
        let id = m.list[i].cur_id();
        if ids.contains(&id) {
            let mut copy = patch.clone();
            let av = m.list[i].api_version().to_string();
            copy.node.set("apiVersion", Node::str(av));
            apply_sm(b, &mut m.list[i], &copy, allow_name, allow_kind)?;
            if m.list[i].node.as_map().is_none_or(Vec::is_empty) {
                m.list.remove(i);
                continue;
            }
        }
        i += 1;
    }
    Ok(())
}

/// kustomize's Resource.ApplySmPatch: name, kind and namespace stay
/// unless the patch may change them.
fn apply_sm(
    b: &Builder<'_>,
    r: &mut Resource,
    patch: &Resource,
    allow_name: bool,
    allow_kind: bool,
) -> std::result::Result<(), String> {
    let (name, ns, kind) = (
        r.name().to_string(),
        r.namespace().to_string(),
        r.kind().to_string(),
    );
    if allow_name || allow_kind {
        r.remember_id();
    }
    let schema = b.schema();
    let merged = smp::merge(&r.node, &patch.node, schema)?;
    let Some(merged) = merged.filter(|n| n.as_map().is_some_and(|m| !m.is_empty())) else {
        r.node = Node::map();
        return Ok(());
    };
    r.node = merged;
    if !allow_kind {
        r.node.set("kind", Node::str(kind));
    }
    if !allow_name {
        r.set_name(&name);
    }
    r.set_namespace(&ns);
    Ok(())
}

/// kustomize's ResMap.Select: objects matching a target by group, version,
/// kind, name, namespace (regular expressions, on the original or current
/// id), label and annotation selectors.
pub fn select(m: &ResMap, s: &Selector) -> std::result::Result<Vec<usize>, String> {
    let re = |p: &str| -> std::result::Result<Option<regex::Regex>, String> {
        if p.is_empty() {
            return Ok(None);
        }
        regex::Regex::new(&format!("^(?:{p})$"))
            .map(Some)
            .map_err(|e| format!("invalid regular expression `{p}` in the target: {e}"))
    };
    let (g, v, k, n, ns) = (
        re(&s.gvk.group)?,
        re(&s.gvk.version)?,
        re(&s.gvk.kind)?,
        re(&s.name)?,
        re(&s.namespace)?,
    );
    let labels = parse_label_selector(&s.label_selector)?;
    let annotations = parse_label_selector(&s.annotation_selector)?;
    let ok = |r: &Option<regex::Regex>, v: &str| r.as_ref().is_none_or(|r| r.is_match(v));
    let mut out = Vec::new();
    for (i, r) in m.list.iter().enumerate() {
        let cur = r.cur_id();
        let org = r.org_id();
        if !ok(&ns, org.effective_namespace()) && !ok(&ns, cur.effective_namespace()) {
            continue;
        }
        if !ok(&n, &org.name) && !ok(&n, &cur.name) {
            continue;
        }
        let gvk = &cur.gvk;
        if !(ok(&g, &gvk.group) && ok(&v, &gvk.version) && ok(&k, &gvk.kind)) {
            continue;
        }
        if !matches_selector(&labels, &r.labels()) || !matches_selector(&annotations, &r.annotations()) {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

#[derive(Debug)]
enum Req {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A Kubernetes label selector: `a=b,c!=d,e in (x,y),f notin (z),g,!h`.
fn parse_label_selector(s: &str) -> std::result::Result<Vec<Req>, String> {
    let mut reqs = Vec::new();
    let s = s.trim();
    if s.is_empty() {
        return Ok(reqs);
    }
    // Split on commas outside parentheses.
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        let bad = || format!("unable to parse requirement `{p}` of the selector `{s}`");
        if let Some(k) = p.strip_prefix('!') {
            reqs.push(Req::NotExists(k.trim().to_string()));
        } else if let Some((k, v)) = p.split_once("!=") {
            reqs.push(Req::NotEq(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = p.split_once("==").or_else(|| p.split_once('=')) {
            reqs.push(Req::Eq(k.trim().into(), v.trim().into()));
        } else if let Some((k, rest)) = split_word(p, "notin") {
            reqs.push(Req::NotIn(k, set_values(rest).ok_or_else(bad)?));
        } else if let Some((k, rest)) = split_word(p, "in") {
            reqs.push(Req::In(k, set_values(rest).ok_or_else(bad)?));
        } else if !p.is_empty() && !p.contains([' ', '(', ')']) {
            reqs.push(Req::Exists(p.to_string()));
        } else {
            return Err(bad());
        }
    }
    Ok(reqs)
}

fn split_word(p: &str, word: &str) -> Option<(String, String)> {
    let pat = format!(" {word} ");
    let i = p.find(&pat).or_else(|| p.find(&format!(" {word}(")))?;
    Some((
        p[..i].trim().to_string(),
        p[i + word.len() + 1..].trim().to_string(),
    ))
}

fn set_values(rest: String) -> Option<Vec<String>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_string()).collect())
}

fn matches_selector(reqs: &[Req], labels: &[(String, String)]) -> bool {
    let get = |k: &str| labels.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => get(k) == Some(v.as_str()),
        Req::NotEq(k, v) => get(k) != Some(v.as_str()),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    })
}

/// Apply JSON 6902 operations to an object.
pub fn json_patch(node: &mut Node, ops: &[Op]) -> std::result::Result<(), String> {
    for op in ops {
        let path = pointer(&op.path)?;
        match op.op.as_str() {
            "add" => add(node, &path, value(op)?)?,
            "remove" => {
                remove(node, &path).map_err(|e| format!("error in remove for path: '{}': {e}", op.path))?;
            }
            "replace" => {
                let v = value(op)?;
                let slot = get_mut(node, &path).ok_or_else(|| {
                    format!("error in replace for path: '{}': replace operation does not apply: doc is missing path: {}", op.path, op.path)
                })?;
                *slot = v;
            }
            "move" => {
                let from = pointer(op.from.as_deref().unwrap_or(""))?;
                let v =
                    remove(node, &from).map_err(|e| format!("error in move for path: '{}': {e}", op.path))?;
                add(node, &path, v)?;
            }
            "copy" => {
                let from = pointer(op.from.as_deref().unwrap_or(""))?;
                let v = get_mut(node, &from).map(|n| n.clone()).ok_or_else(|| {
                    format!("error in copy for path: '{}': doc is missing from path", op.path)
                })?;
                add(node, &path, v)?;
            }
            "test" => {
                let want = value(op)?;
                let got = get_mut(node, &path).map(|n| n.clone());
                if !got.is_some_and(|g| g.same(&want)) {
                    return Err(format!("testing value {} failed: test failed", op.path));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

fn value(op: &Op) -> std::result::Result<Node, String> {
    op.value
        .clone()
        .ok_or_else(|| format!("the `{}` operation at `{}` needs a value", op.op, op.path))
}

fn pointer(p: &str) -> std::result::Result<Vec<String>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!("JSON pointer `{p}` must start with /"));
    };
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn index(part: &str, len: usize, insert: bool) -> Option<usize> {
    if part == "-" {
        return insert.then_some(len);
    }
    let i: i64 = part.parse().ok()?;
    let limit = if insert { len } else { len.checked_sub(1)? } as i64;
    let i = if i < 0 { len as i64 + i } else { i };
    (0..=limit).contains(&i).then_some(i as usize)
}

fn get_mut<'n>(node: &'n mut Node, path: &[String]) -> Option<&'n mut Node> {
    let mut cur = node;
    for part in path {
        cur = match &mut cur.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|e| &e.key == part)
                .map(|e| &mut e.value)?,
            Value::Seq(items) => {
                let len = items.len();
                items.get_mut(index(part, len, false)?)?
            }
            Value::Scalar(_) => return None,
        };
    }
    Some(cur)
}

fn add(node: &mut Node, path: &[String], v: Node) -> std::result::Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *node = v;
        return Ok(());
    };
    let joined = format!("/{}", path.join("/"));
    let parent = get_mut(node, parent).ok_or_else(|| {
        format!("error in add for path: '{joined}': doc is missing path: {joined}: missing value")
    })?;
    match &mut parent.value {
        Value::Map(_) => {
            parent.set(last, v);
            Ok(())
        }
        Value::Seq(items) => {
            let i = index(last, items.len(), true)
                .ok_or_else(|| format!("error in add for path: '{joined}': Unable to access invalid index: {last}: invalid index referenced"))?;
            items.insert(i, v);
            Ok(())
        }
        Value::Scalar(_) => Err(format!(
            "error in add for path: '{joined}': doc is missing path: {joined}"
        )),
    }
}

fn remove(node: &mut Node, path: &[String]) -> std::result::Result<Node, String> {
    let Some((last, parent)) = path.split_last() else {
        return Err("cannot remove the whole object".into());
    };
    let parent = get_mut(node, parent)
        .ok_or_else(|| format!("Unable to remove nonexistent key: {last}: missing value"))?;
    match &mut parent.value {
        Value::Map(_) => parent
            .remove(last)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {last}: missing value")),
        Value::Seq(items) => {
            let i = index(last, items.len(), false)
                .ok_or_else(|| format!("Unable to access invalid index: {last}: invalid index referenced"))?;
            Ok(items.remove(i))
        }
        Value::Scalar(_) => Err(format!("Unable to remove nonexistent key: {last}: missing value")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        parse_documents(text).unwrap().remove(0).node.unwrap()
    }

    #[test]
    fn json_patch_ops() {
        let mut n = node("a: {b: [1, 2, 3]}\nc: x\n");
        let ops = json_ops("- op: add\n  path: /a/b/-\n  value: 4\n- op: remove\n  path: /a/b/0\n- op: replace\n  path: /c\n  value: yes\n- op: move\n  from: /c\n  path: /d\n- op: copy\n  from: /d\n  path: /e\n- op: test\n  path: /e\n  value: true\n").unwrap();
        json_patch(&mut n, &ops).unwrap();
        assert!(n.get("c").is_none());
        assert_eq!(n.path(&["a", "b"]).unwrap().as_seq().unwrap().len(), 3);
        assert_eq!(n.str_at(&["e"]), Some("true"));
        let err = json_patch(
            &mut n,
            &json_ops("[{\"op\": \"remove\", \"path\": \"/nope\"}]").unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("nonexistent key"), "{err}");
    }

    #[test]
    fn label_selectors() {
        let labels = vec![
            ("app".to_string(), "web".to_string()),
            ("tier".to_string(), "fe".to_string()),
        ];
        for (sel, want) in [
            ("app=web", true),
            ("app==web,tier!=be", true),
            ("app in (web, db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("missing", false),
        ] {
            assert_eq!(
                matches_selector(&parse_label_selector(sel).unwrap(), &labels),
                want,
                "{sel}"
            );
        }
    }
}
