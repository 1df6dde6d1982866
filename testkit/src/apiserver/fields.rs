//! Field paths, field sets and the server-side apply bookkeeping: which
//! manager owns which fields, merging an applied configuration into the live
//! object, conflicts, and the `FieldsV1` encoding of `metadata.managedFields`.
//!
//! A field set holds the leaf paths a manager set: scalars, lists that are
//! atomic (replaced whole), empty maps, and the items of the few lists that
//! are merged by key (see [`list_keys`]) together with the fields inside
//! them. Maps are never leaves themselves; they are the prefixes of leaves.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// One step of a path: a map field, or the item of a keyed list whose key
/// is this compact JSON object (`{"name":"web"}`), as in `FieldsV1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Elem {
    Field(String),
    Key(String),
}

pub type Path = Vec<Elem>;
pub type FieldSet = BTreeSet<Path>;

/// Top-level fields no manager owns.
const UNOWNED_TOP: &[&str] = &["apiVersion", "kind", "status"];
/// `metadata` fields the server owns (or that only identify the object).
pub const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// The key fields of the lists merged by key rather than replaced whole,
/// by the list's field name and (for `ports`) its items; `None` = atomic.
pub fn list_keys(field: &str, items: &[Value]) -> Option<&'static [&'static str]> {
    let keys: &'static [&'static str] = match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" => &["name"],
        "volumeMounts" => &["mountPath"],
        "ports" if items.iter().all(|i| i.get("containerPort").is_some()) => &["containerPort", "protocol"],
        "ports" if items.iter().all(|i| i.get("port").is_some()) => &["port", "protocol"],
        _ => return None,
    };
    let keyed = items
        .iter()
        .all(|i| i.is_object() && keys.iter().all(|k| *k == "protocol" || i.get(*k).is_some()));
    keyed.then_some(keys)
}

/// The key of one list item as `FieldsV1` writes it (`{"name":"web"}`);
/// a missing `protocol` is the default `TCP`, as the real server defaults it.
fn item_key(keys: &[&str], item: &Value) -> Option<String> {
    let mut parts = Vec::new();
    for k in keys {
        let v = match item.get(*k) {
            Some(v) => v.clone(),
            None if *k == "protocol" => Value::String("TCP".into()),
            None => return None,
        };
        parts.push(format!("{}:{}", Value::String((*k).into()), v));
    }
    Some(format!("{{{}}}", parts.join(",")))
}

/// Whether `item` is the list item a `Key` step names.
fn matches_key(key: &str, item: &Value) -> bool {
    let Ok(Value::Object(want)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    want.iter().all(|(k, v)| match item.get(k) {
        Some(have) => have == v,
        None => k == "protocol" && v == "TCP",
    })
}

/// The fields a manager sets with `obj` (apiVersion, kind, status and
/// server-owned metadata excluded).
pub fn set_of(obj: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    let mut path = Path::new();
    for (k, v) in map {
        if UNOWNED_TOP.contains(&k.as_str()) {
            continue;
        }
        path.push(Elem::Field(k.clone()));
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for (mk, mv) in meta {
                    if SERVER_METADATA.contains(&mk.as_str()) {
                        continue;
                    }
                    path.push(Elem::Field(mk.clone()));
                    collect(mk, mv, &mut path, &mut out);
                    path.pop();
                }
            }
        } else {
            collect(k, v, &mut path, &mut out);
        }
        path.pop();
    }
    out
}

/// The fields of the value at `path` (whose last field is `name`).
fn collect(name: &str, v: &Value, path: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(map) if !map.is_empty() => {
            for (k, child) in map {
                path.push(Elem::Field(k.clone()));
                collect(k, child, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match list_keys(name, items) {
            Some(keys) => {
                for item in items {
                    let Some(key) = item_key(keys, item) else { continue };
                    path.push(Elem::Key(key));
                    out.insert(path.clone());
                    if let Some(map) = item.as_object() {
                        for (k, child) in map {
                            path.push(Elem::Field(k.clone()));
                            collect(k, child, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// Whether `path` is a key field of a keyed list item (`…[name="web"].name`).
fn is_key_field(path: &[Elem]) -> bool {
    match path {
        [.., Elem::Key(key), Elem::Field(f)] => match serde_json::from_str::<Value>(key) {
            Ok(Value::Object(m)) => m.contains_key(f),
            _ => false,
        },
        _ => false,
    }
}

pub fn is_item(path: &[Elem]) -> bool {
    matches!(path.last(), Some(Elem::Key(_)))
}

/// The value at `path`, if present.
pub fn get<'a>(v: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut cur = v;
    for e in path {
        cur = match e {
            Elem::Field(f) => cur.as_object()?.get(f)?,
            Elem::Key(k) => cur.as_array()?.iter().find(|i| matches_key(k, i))?,
        };
    }
    Some(cur)
}

fn get_mut<'a>(v: &'a mut Value, path: &[Elem]) -> Option<&'a mut Value> {
    let mut cur = v;
    for e in path {
        cur = match e {
            Elem::Field(f) => cur.as_object_mut()?.get_mut(f)?,
            Elem::Key(k) => cur.as_array_mut()?.iter_mut().find(|i| matches_key(k, i))?,
        };
    }
    Some(cur)
}

/// Remove the field or list item at `path`, then the maps and lists that
/// this left empty (as the real server's `omitempty` drops them), up to but
/// not including `metadata` and the top level. Whether it removed anything.
pub fn remove(v: &mut Value, path: &[Elem]) -> bool {
    let Some((last, parent_path)) = path.split_last() else {
        return false;
    };
    let Some(parent) = get_mut(v, parent_path) else {
        return false;
    };
    let removed = match (last, parent) {
        (Elem::Field(f), Value::Object(map)) => map.remove(f).is_some(),
        (Elem::Key(k), Value::Array(items)) => {
            let before = items.len();
            items.retain(|i| !matches_key(k, i));
            items.len() != before
        }
        _ => false,
    };
    let prunable = !parent_path.is_empty() && parent_path != [Elem::Field("metadata".into())];
    if removed && prunable {
        let empty = match get(v, parent_path) {
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty {
            remove(v, parent_path);
        }
    }
    removed
}

/// Merge an applied configuration into the live object: maps recurse, keyed
/// lists merge item by item, everything else is replaced.
pub fn merge_apply(live: &Value, applied: &Value) -> Value {
    merge_value("", live, applied)
}

fn merge_value(name: &str, live: &Value, applied: &Value) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut out = l.clone();
            for (k, av) in a {
                let merged = match l.get(k) {
                    Some(lv) => merge_value(k, lv, av),
                    None => av.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => merge_keyed(name, l, a, merge_value)
            .map(Value::Array)
            .unwrap_or_else(|| applied.clone()),
        _ => applied.clone(),
    }
}

/// Merge two lists by key if both are keyed lists of the same keys: items
/// of `patch` merge into the live item of the same key (with `merge`), new
/// ones are appended. `None` if the lists are atomic.
fn merge_keyed(
    name: &str,
    live: &[Value],
    patch: &[Value],
    merge: fn(&str, &Value, &Value) -> Value,
) -> Option<Vec<Value>> {
    let keys = list_keys(name, patch)?;
    if list_keys(name, live) != Some(keys) && !live.is_empty() {
        return None;
    }
    let mut out: Vec<Value> = live.to_vec();
    for item in patch {
        let key = item_key(keys, item)?;
        match out
            .iter_mut()
            .find(|i| item_key(keys, i).as_deref() == Some(&key))
        {
            Some(existing) => *existing = merge("", existing, item),
            None => out.push(item.clone()),
        }
    }
    Some(out)
}

/// Drop `null`s from an applied configuration: in an apply, null means
/// "not specified".
pub fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// RFC 7386 JSON merge patch; with `strategic`, the keyed lists of
/// [`list_keys`] merge by key and `$`-directives are dropped (a subset of a
/// strategic merge patch).
pub fn merge_patch(target: &Value, patch: &Value, strategic: bool) -> Value {
    fn go(name: &str, target: &Value, patch: &Value, strategic: bool) -> Value {
        match patch {
            Value::Object(p) => {
                let mut out = match target {
                    Value::Object(t) => t.clone(),
                    _ => Map::new(),
                };
                for (k, pv) in p {
                    if strategic && k.starts_with('$') {
                        continue;
                    }
                    if pv.is_null() {
                        out.remove(k);
                        continue;
                    }
                    let merged = go(k, out.get(k).unwrap_or(&Value::Null), pv, strategic);
                    out.insert(k.clone(), merged);
                }
                Value::Object(out)
            }
            Value::Array(p) if strategic => match target {
                Value::Array(t) => merge_keyed(name, t, p, |n, a, b| go(n, a, b, true))
                    .map(Value::Array)
                    .unwrap_or_else(|| patch.clone()),
                _ => patch.clone(),
            },
            _ => patch.clone(),
        }
    }
    go("", target, patch, strategic)
}

/// RFC 6902 JSON patch (add, remove, replace, test, move, copy).
pub fn json_patch(target: &Value, ops: &Value) -> Result<Value, String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be a list of operations")?;
    let mut doc = target.clone();
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("operation without \"op\"")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("operation without \"path\"")?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("{name} without \"value\""))
        };
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or(format!("{name} without \"from\""))
        };
        match name {
            "add" => pointer_add(&mut doc, path, value()?)?,
            "remove" => {
                pointer_remove(&mut doc, path)?;
            }
            "replace" => {
                pointer_remove(&mut doc, path)?;
                pointer_add(&mut doc, path, value()?)?;
            }
            "test" => {
                if doc.pointer(path) != Some(&value()?) {
                    return Err(format!("test failed at {path}"));
                }
            }
            "move" => {
                let v = pointer_remove(&mut doc, from()?)?;
                pointer_add(&mut doc, path, v)?;
            }
            "copy" => {
                let v = doc
                    .pointer(from()?)
                    .cloned()
                    .ok_or(format!("no value at {path}"))?;
                pointer_add(&mut doc, path, v)?;
            }
            other => return Err(format!("unknown JSON patch operation {other:?}")),
        }
    }
    Ok(doc)
}

fn split_pointer(path: &str) -> Result<(&str, String), String> {
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or(format!("invalid JSON pointer {path:?}"))?;
    Ok((parent, last.replace("~1", "/").replace("~0", "~")))
}

fn pointer_add(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(last, value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            let index = if last == "-" {
                items.len()
            } else {
                last.parse::<usize>()
                    .map_err(|_| format!("invalid index in {path:?}"))?
            };
            if index > items.len() {
                return Err(format!("index out of range in {path:?}"));
            }
            items.insert(index, value);
            Ok(())
        }
        _ => Err(format!("no parent for {path:?}")),
    }
}

fn pointer_remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let removed = match doc.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&last),
        Some(Value::Array(items)) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => Some(items.remove(i)),
            _ => None,
        },
        _ => None,
    };
    removed.ok_or(format!("no value at {path:?}"))
}

/// A path as the real server prints it in conflicts:
/// `.spec.template.spec.containers[name="web"].image`.
pub fn path_string(path: &[Elem]) -> String {
    let mut out = String::new();
    for e in path {
        match e {
            Elem::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Elem::Key(k) => {
                let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![k.clone()],
                };
                out.push_str(&format!("[{}]", parts.join(",")));
            }
        }
    }
    out
}

/// The `FieldsV1` encoding of a field set:
/// `{"f:metadata":{"f:labels":{"f:a":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:name":{}}}}}`.
pub fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for e in path {
            let key = match e {
                Elem::Field(f) => format!("f:{f}"),
                Elem::Key(k) => format!("k:{k}"),
            };
            let child = node.entry(key).or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(child) = child else {
                unreachable!("FieldsV1 nodes are maps")
            };
            node = child;
        }
    }
    // A path in the set that also has children is marked with ".".
    fn mark(node: &mut Map<String, Value>, path: &mut Path, set: &FieldSet) {
        for (k, v) in node.iter_mut() {
            let Some(elem) = parse_elem(k) else { continue };
            path.push(elem);
            if let Value::Object(child) = v {
                if set.contains(path) && !child.is_empty() {
                    mark(child, path, set);
                    child.insert(".".into(), Value::Object(Map::new()));
                } else {
                    mark(child, path, set);
                }
            }
            path.pop();
        }
    }
    mark(&mut root, &mut Path::new(), set);
    Value::Object(root)
}

fn parse_elem(k: &str) -> Option<Elem> {
    if let Some(f) = k.strip_prefix("f:") {
        Some(Elem::Field(f.to_string()))
    } else {
        k.strip_prefix("k:").map(|key| Elem::Key(key.to_string()))
    }
}

/// Decode `FieldsV1` (unknown step kinds, `v:` and `i:`, are skipped).
pub fn from_fields_v1(v: &Value) -> FieldSet {
    fn go(node: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
        for (k, child) in node {
            if k == "." {
                out.insert(path.clone());
                continue;
            }
            let Some(elem) = parse_elem(k) else { continue };
            path.push(elem);
            match child {
                Value::Object(m) if !m.is_empty() => go(m, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    if let Value::Object(m) = v {
        go(m, &mut Path::new(), &mut out);
    }
    out
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// "Apply" or "Update".
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    /// Whether this is the entry of `manager` doing `operation` (Update
    /// entries are also per apiVersion, as the real server keys them).
    fn is(&self, manager: &str, operation: &str, api_version: &str, subresource: &str) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource == subresource
            && (operation == "Apply" || self.api_version == api_version)
    }

    /// How conflicts name this manager: `"kubectl-edit" using apps/v1`.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == "Update" {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.clone().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        m.insert("time".into(), self.time.clone().into());
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), to_fields_v1(&self.set));
        if !self.subresource.is_empty() {
            m.insert("subresource".into(), self.subresource.clone().into());
        }
        Value::Object(m)
    }

    pub fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        Some(Entry {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: s("time"),
            subresource: s("subresource"),
            set: from_fields_v1(v.get("fieldsV1")?),
        })
    }
}

/// The managed-fields entries of an object.
pub fn entries_of(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Entry::from_json).collect())
        .unwrap_or_default()
}

/// A field another manager owns that an apply would change.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// As [`Entry::describe`] names it.
    pub manager: String,
    pub path: Path,
}

/// The message the real server gives for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [c] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager,
            path_string(&c.path)
        );
    }
    let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for m in managers {
        lines.push(format!("conflicts with {m}:"));
        for c in conflicts.iter().filter(|c| c.manager == m) {
            lines.push(format!("- {}", path_string(&c.path)));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// What an apply produced: the merged object (managedFields not yet
/// written) and the new entries. `owners_changed` says whether any
/// entry's field set changed.
#[derive(Debug)]
pub struct Applied {
    pub object: Value,
    pub entries: Vec<Entry>,
    // Read by the unit tests only.
    #[cfg_attr(not(test), allow(dead_code))]
    pub owners_changed: bool,
}

/// Server-side apply of `config` (already stripped of status, server-owned
/// metadata and nulls) by `manager` onto `live` (`Value::Null` if absent).
/// The new or changed entry of `manager` gets time `now`.
pub fn apply(
    live: &Value,
    config: &Value,
    entries: &[Entry],
    manager: &str,
    api_version: &str,
    force: bool,
    now: &str,
) -> Result<Applied, Vec<Conflict>> {
    let applied = set_of(config);
    let mine = |e: &Entry| e.is(manager, "Apply", api_version, "");

    // Conflicts: fields this apply changes (or adds) that others own.
    let mut conflicts = Vec::new();
    let mut taken: Vec<(usize, Path)> = Vec::new();
    for path in &applied {
        if is_item(path) || get(live, path) == get(config, path) {
            continue;
        }
        for (i, e) in entries.iter().enumerate() {
            if !mine(e) && e.set.contains(path) {
                conflicts.push(Conflict {
                    manager: e.describe(),
                    path: path.clone(),
                });
                taken.push((i, path.clone()));
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }

    let mut new_entries: Vec<Entry> = entries.to_vec();
    for (i, path) in &taken {
        new_entries[*i].set.remove(path);
    }
    let previous: FieldSet = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.set.clone())
        .unwrap_or_default();

    let base = if live.is_object() {
        live.clone()
    } else {
        Value::Object(Map::new())
    };
    let mut object = merge_apply(&base, config);

    // Fields this manager stopped applying go, unless someone else owns
    // them (or something inside them), or they lead to what it applies.
    let others: FieldSet = new_entries
        .iter()
        .filter(|e| !mine(e))
        .flat_map(|e| e.set.iter().cloned())
        .collect();
    // An item's key fields go only with the item.
    for path in previous.difference(&applied) {
        let kept = others.iter().any(|o| o.starts_with(path))
            || applied.iter().any(|a| a.starts_with(path))
            || is_key_field(path);
        if !kept {
            remove(&mut object, path);
        }
    }

    match new_entries.iter_mut().find(|e| mine(e)) {
        Some(e) => {
            e.set = applied.clone();
            e.api_version = api_version.to_string();
        }
        None => new_entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version: api_version.to_string(),
            time: now.to_string(),
            subresource: String::new(),
            set: applied.clone(),
        }),
    }
    new_entries.retain(|e| !e.set.is_empty());
    let owners_changed = !same_sets(entries, &new_entries);
    if owners_changed {
        for e in new_entries.iter_mut().filter(|e| mine(e)) {
            e.time = now.to_string();
        }
    }
    Ok(Applied {
        object,
        entries: new_entries,
        owners_changed,
    })
}

/// Ownership after a non-apply write (create, update, patch) by `manager`
/// that turned `old` (`Value::Null` for a create) into `new`: the writer
/// takes the fields it changed or added, from everyone; fields that are
/// gone leave every set.
pub fn update(
    old: &Value,
    new: &Value,
    entries: &[Entry],
    manager: &str,
    api_version: &str,
    subresource: &str,
    now: &str,
) -> (Vec<Entry>, bool) {
    let before = set_of(old);
    let after = set_of(new);
    let changed: FieldSet = after
        .iter()
        .filter(|p| {
            if is_item(p) {
                !before.contains(*p)
            } else {
                get(old, p) != get(new, p)
            }
        })
        .cloned()
        .collect();
    let mut out: Vec<Entry> = entries.to_vec();
    // Status fields are not in these sets: they stay with their owners.
    let status = Elem::Field("status".into());
    for e in out.iter_mut() {
        e.set
            .retain(|p| p.first() == Some(&status) || (after.contains(p) && !changed.contains(p)));
    }
    if !changed.is_empty() {
        match out
            .iter_mut()
            .find(|e| e.is(manager, "Update", api_version, subresource))
        {
            Some(e) => e.set.extend(changed),
            None => out.push(Entry {
                manager: manager.to_string(),
                operation: "Update".into(),
                api_version: api_version.to_string(),
                time: now.to_string(),
                subresource: subresource.to_string(),
                set: changed,
            }),
        }
    }
    out.retain(|e| !e.set.is_empty());
    let changed = !same_sets(entries, &out);
    if changed {
        for e in out
            .iter_mut()
            .filter(|e| e.is(manager, "Update", api_version, subresource))
        {
            e.time = now.to_string();
        }
    }
    (out, changed)
}

fn same_sets(a: &[Entry], b: &[Entry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.manager == y.manager
                && x.operation == y.operation
                && x.subresource == y.subresource
                && x.api_version == y.api_version
                && x.set == y.set
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A merge patch of `a`'s object by `kubectl-patch` (an Update at T2):
    /// the patched object, the new entries and whether anything changed.
    fn kubectl_patch(a: &Applied, patch: &Value) -> (Value, Vec<Entry>, bool) {
        let patched = merge_patch(&a.object, patch, false);
        let manager = "kubectl-patch";
        let (entries, changed) = update(&a.object, &patched, &a.entries, manager, "apps/v1", "", "T2");
        (patched, entries, changed)
    }

    fn f(s: &str) -> Path {
        s.split('.')
            .filter(|p| !p.is_empty())
            .map(|p| Elem::Field(p.to_string()))
            .collect()
    }

    fn deployment(replicas: u64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "template": {"spec": {"containers": [{"name": "web", "image": image, "args": ["a"]}]}}
            }
        })
    }

    #[test]
    fn set_of_skips_server_fields_and_keys_containers() {
        let set = set_of(&deployment(1, "nginx"));
        let strings: Vec<String> = set.iter().map(|p| path_string(p)).collect();
        assert_eq!(
            strings,
            [
                ".metadata.labels.app",
                ".spec.replicas",
                ".spec.template.spec.containers[name=\"web\"]",
                ".spec.template.spec.containers[name=\"web\"].args",
                ".spec.template.spec.containers[name=\"web\"].image",
                ".spec.template.spec.containers[name=\"web\"].name",
            ]
        );
    }

    #[test]
    fn fields_v1_round_trip_and_shape() {
        let set = set_of(&deployment(1, "nginx"));
        let v1 = to_fields_v1(&set);
        assert_eq!(
            v1,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"web\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}
                    }}}
                }
            })
        );
        assert_eq!(from_fields_v1(&v1), set);
    }

    #[test]
    fn ports_are_keyed_with_default_protocol() {
        let obj = json!({"spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        let set = set_of(&obj);
        assert!(set.contains(&vec![
            Elem::Field("spec".into()),
            Elem::Field("ports".into()),
            Elem::Key(r#"{"port":80,"protocol":"TCP"}"#.into())
        ]));
        let p = vec![
            Elem::Field("spec".into()),
            Elem::Field("ports".into()),
            Elem::Key(r#"{"port":53,"protocol":"UDP"}"#.into()),
        ];
        assert_eq!(path_string(&p), r#".spec.ports[port=53,protocol="UDP"]"#);
        assert_eq!(get(&obj, &p), Some(&json!({"port": 53, "protocol": "UDP"})));
    }

    fn apply_as(
        live: &Value,
        cfg: &Value,
        entries: &[Entry],
        m: &str,
        force: bool,
    ) -> Result<Applied, Vec<Conflict>> {
        apply(live, cfg, entries, m, "apps/v1", force, "T1")
    }

    #[test]
    fn apply_creates_and_reapply_is_a_no_op() {
        let cfg = deployment(1, "nginx");
        let first = apply_as(&Value::Null, &cfg, &[], "a", false).expect("apply");
        assert_eq!(first.object, cfg);
        assert!(first.owners_changed);
        assert_eq!(first.entries.len(), 1);
        assert_eq!(first.entries[0].time, "T1");
        let second = apply(&first.object, &cfg, &first.entries, "a", "apps/v1", false, "T2").expect("apply");
        assert!(!second.owners_changed);
        assert_eq!(second.object, first.object);
        assert_eq!(second.entries[0].time, "T1", "no-op keeps the time");
    }

    #[test]
    fn conflict_with_an_updater_unless_forced() {
        let cfg = deployment(1, "nginx");
        let a = apply_as(&Value::Null, &cfg, &[], "a", false).expect("apply");
        // kubectl-patch sets replicas to 3 (an Update).
        let (patched, entries, changed) = kubectl_patch(&a, &json!({"spec": {"replicas": 3}}));
        assert!(changed);
        assert_eq!(entries.len(), 2);
        assert!(
            !entries[0].set.contains(&f("spec.replicas")),
            "the patcher took replicas"
        );
        assert!(entries[1].set.contains(&f("spec.replicas")));

        // Same apply again: replicas 1 ≠ live 3, owned by kubectl-patch.
        let err = apply_as(&patched, &cfg, &entries, "a", false).expect_err("conflict");
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using apps/v1: .spec.replicas"
        );
        // Applying the live value is no conflict: shared ownership.
        let shared = apply_as(&patched, &deployment(3, "nginx"), &entries, "a", false).expect("shared");
        assert!(shared.entries.iter().all(|e| e.set.contains(&f("spec.replicas"))));

        // Forced: the applier takes the field, the patcher's entry goes.
        let forced = apply_as(&patched, &cfg, &entries, "a", true).expect("forced");
        assert_eq!(forced.object["spec"]["replicas"], 1);
        assert_eq!(forced.entries.len(), 1);
        assert_eq!(forced.entries[0].manager, "a");
    }

    #[test]
    fn two_conflicts_are_listed_per_manager() {
        let cs = vec![
            Conflict {
                manager: "\"x\"".into(),
                path: f("spec.a"),
            },
            Conflict {
                manager: "\"x\"".into(),
                path: f("spec.b"),
            },
        ];
        assert_eq!(
            conflict_message(&cs),
            "Apply failed with 2 conflicts: conflicts with \"x\":\n- .spec.a\n- .spec.b"
        );
    }

    #[test]
    fn fields_no_longer_applied_are_removed_unless_owned_by_others() {
        let mut cfg = deployment(1, "nginx");
        cfg["metadata"]["labels"]["tier"] = json!("front");
        cfg["metadata"]["annotations"] = json!({"note": "x"});
        let a = apply_as(&Value::Null, &cfg, &[], "a", false).expect("apply");
        // Manager b applies the same label value: shared ownership.
        let b_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"tier": "front"}}});
        let b = apply_as(&a.object, &b_cfg, &a.entries, "b", false).expect("apply b");
        assert!(!b.owners_changed || b.entries.len() == 2);

        // a stops applying both labels' tier, the annotation and args.
        let mut smaller = deployment(1, "nginx");
        smaller["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .expect("container")
            .remove("args");
        let c = apply_as(&b.object, &smaller, &b.entries, "a", false).expect("apply smaller");
        assert_eq!(
            c.object["metadata"]["labels"],
            json!({"app": "web", "tier": "front"}),
            "b still owns tier"
        );
        assert!(
            c.object["metadata"].get("annotations").is_none(),
            "emptied map goes too"
        );
        assert!(
            c.object["spec"]["template"]["spec"]["containers"][0]
                .get("args")
                .is_none()
        );
        assert_eq!(
            c.object["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx"
        );

        // A container a no longer applies goes with everything in it.
        let mut two = smaller.clone();
        two["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("containers")
            .push(json!({"name": "side", "image": "busybox"}));
        let d = apply_as(&c.object, &two, &c.entries, "a", false).expect("add side");
        assert_eq!(
            d.object["spec"]["template"]["spec"]["containers"]
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        let e = apply_as(&d.object, &smaller, &d.entries, "a", false).expect("drop side");
        assert_eq!(
            e.object["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "nginx"}])
        );
    }

    #[test]
    fn keyed_items_merge_and_image_conflicts_name_the_container() {
        let cfg = deployment(1, "nginx:1");
        let a = apply_as(&Value::Null, &cfg, &[], "mooring", false).expect("apply");
        // kubectl set image: a strategic merge patch of one container.
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}});
        let patched = merge_patch(&a.object, &patch, true);
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "nginx:2", "args": ["a"]}]),
            "strategic merge keeps the other fields of the container"
        );
        let (entries, _) = update(
            &a.object,
            &patched,
            &a.entries,
            "kubectl-set",
            "apps/v1",
            "",
            "T2",
        );
        let err = apply_as(&patched, &cfg, &entries, "mooring", false).expect_err("conflict");
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"kubectl-set\" using apps/v1: .spec.template.spec.containers[name=\"web\"].image"
        );
    }

    #[test]
    fn update_drops_removed_fields_from_every_owner() {
        let mut cfg = deployment(1, "nginx");
        cfg["metadata"]["labels"]["x"] = json!("1");
        let a = apply_as(&Value::Null, &cfg, &[], "a", false).expect("apply");
        let (_, entries, changed) = kubectl_patch(&a, &json!({"metadata": {"labels": {"x": null}}}));
        assert!(changed);
        assert_eq!(entries.len(), 1, "removing takes no ownership");
        assert!(!entries[0].set.contains(&f("metadata.labels.x")));
    }

    #[test]
    fn remove_prunes_empty_parents_but_not_metadata() {
        let mut v = json!({"metadata": {"labels": {"a": "1"}}, "data": {"k": "v"}});
        assert!(remove(&mut v, &f("metadata.labels.a")));
        assert!(remove(&mut v, &f("data.k")));
        assert_eq!(v, json!({"metadata": {}}));
        assert!(!remove(&mut v, &f("spec.nothing")));
    }

    #[test]
    fn json_patch_ops() {
        let v = json!({"spec": {"replicas": 1, "list": [1, 2]}});
        let ops = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "add", "path": "/spec/list/-", "value": 3},
            {"op": "remove", "path": "/spec/list/0"},
            {"op": "test", "path": "/spec/replicas", "value": 2}
        ]);
        assert_eq!(
            json_patch(&v, &ops),
            Ok(json!({"spec": {"replicas": 2, "list": [2, 3]}}))
        );
        assert!(json_patch(&v, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
