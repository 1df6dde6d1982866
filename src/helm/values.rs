//! Values, merged as Helm merges them (`pkg/chartutil/coalesce.go`,
//! `values.go`, `pkg/cli/values`): values files over one another, a
//! chart's defaults under the user's (a user's `null` deletes a default),
//! subchart defaults under their parent's section, `global` passed down,
//! and the lookups conditions and tags use.
//!
//! Go maps are shared references, and Helm's copies are sometimes deep
//! and sometimes shallow; these functions copy exactly where Helm does, so
//! that a template changing a map (`set`, `merge`) sees what it would see
//! under Helm.

use std::rc::Rc;

use super::gofmt::sprint_value;
use super::value::{Entries, MapRef, Value};

pub const GLOBAL: &str = "global";

pub fn new_table() -> MapRef {
    match Value::empty_map() {
        Value::Map(m) => m,
        _ => unreachable!("empty_map is a map"),
    }
}

/// A deep copy of a table (`copystructure.Copy`).
pub fn deep_copy(m: &MapRef) -> MapRef {
    match Value::Map(m.clone()).deep_copy() {
        Value::Map(m) => m,
        _ => unreachable!("a copy of a map is a map"),
    }
}

/// A shallow copy (`copyMap`): a new map holding the same values.
fn copy_map(m: &MapRef) -> MapRef {
    let out = new_table();
    for (k, v) in m.snapshot() {
        out.insert(k, v);
    }
    out
}

fn table(v: &Value) -> Option<&MapRef> {
    v.as_table()
}

/// `--values` files over one another (`mergeMaps` in `pkg/cli/values`):
/// nested maps merge, anything else replaces.
pub fn merge_maps(a: &MapRef, b: &MapRef) -> MapRef {
    let out = copy_map(a);
    for (k, v) in b.snapshot() {
        if let Some(vm) = table(&v)
            && let Some(Value::Map(bv)) = out.get(&k)
            && table(&Value::Map(bv.clone())).is_some()
        {
            out.insert(k, Value::Map(merge_maps(&bv, vm)));
            continue;
        }
        out.insert(k, v);
    }
    out
}

/// What Helm logs while coalescing: values dropped because a table and a
/// plain value meet. Each message once, in the order they came.
#[derive(Debug, Default)]
pub struct Warnings(Vec<String>);

impl Warnings {
    pub fn push(&mut self, message: String) {
        if !self.0.contains(&message) {
            self.0.push(message);
        }
    }

    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// `concatPrefix`.
fn concat(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// `coalesceTablesFullKey`: `src` under `dst` (dst wins); with `merge`
/// false a `null` in `dst` deletes the key.
fn coalesce_tables(dst: &MapRef, src: &MapRef, prefix: &str, merge: bool, warn: &mut Warnings) {
    for (key, val) in src.snapshot() {
        let dv = dst.get(&key);
        match dv {
            Some(Value::Nil) if !merge => {
                dst.remove(&key);
            }
            None => dst.insert(key, val),
            Some(dv) => match (table(&val), table(&dv)) {
                (Some(vm), Some(dm)) => coalesce_tables(dm, vm, &concat(prefix, &key), merge, warn),
                (Some(_), None) => warn.push(format!(
                    "warning: cannot overwrite table with non table for {} ({})",
                    concat(prefix, &key),
                    sprint_value(&val)
                )),
                (None, Some(_)) if !matches!(val, Value::Nil) => warn.push(format!(
                    "warning: destination for {} is a table. Ignoring non-table value ({})",
                    concat(prefix, &key),
                    sprint_value(&val)
                )),
                _ => {}
            },
        }
    }
}

/// `CoalesceTables(dst, src)`: returns dst (or src when dst is nil).
pub fn coalesce_tables_top(dst: &MapRef, src: &MapRef, warn: &mut Warnings) -> MapRef {
    coalesce_tables(dst, src, "", false, warn);
    dst.clone()
}

/// `MergeTables(dst, src)`: as coalescing, keeping nulls.
pub fn merge_tables(dst: &MapRef, src: &MapRef, warn: &mut Warnings) -> MapRef {
    coalesce_tables(dst, src, "", true, warn);
    dst.clone()
}

/// `trimNilValues`: a deep copy without null values.
pub fn trim_nil_values(m: &MapRef) -> MapRef {
    let out = new_table();
    for (k, v) in m.snapshot() {
        match &v {
            Value::Nil => {}
            Value::Map(sub) if table(&v).is_some() => out.insert(k, Value::Map(trim_nil_values(sub))),
            _ => out.insert(k, v),
        }
    }
    out
}

/// `pathToMap`: `a.b` and a table → `{a: {b: table}}`.
pub fn path_to_map(path: &str, data: &MapRef) -> MapRef {
    if path == "." {
        return data.clone();
    }
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = data.clone();
    for p in parts.iter().rev() {
        let m = new_table();
        m.insert(Rc::from(*p), Value::Map(cur));
        cur = m;
    }
    cur
}

/// `Values.Table`: the table at a dotted path.
pub fn table_at(v: &MapRef, path: &str) -> Option<MapRef> {
    let mut cur = v.clone();
    for part in path.split('.') {
        let next = cur.get(part)?;
        cur = table(&next)?.clone();
    }
    Some(cur)
}

/// `Values.PathValue`: a non-table value at a dotted path.
pub fn path_value(v: &MapRef, path: &str) -> Option<Value> {
    if path.is_empty() {
        return None;
    }
    let parts: Vec<&str> = path.split('.').collect();
    let (key, parents) = parts.split_last()?;
    let t = if parents.is_empty() {
        v.clone()
    } else {
        table_at(v, &parents.join("."))?
    };
    let val = t.get(key)?;
    if table(&val).is_some() {
        return None;
    }
    Some(val)
}

/// One chart of the tree being rendered, as the coalescing functions see
/// it: its name (after an alias), its default values and its subcharts.
pub trait ChartValues {
    fn name(&self) -> &str;
    fn values(&self) -> MapRef;
    fn children(&self) -> Vec<&dyn ChartValues>;
}

/// `CoalesceValues` (merge false) / `MergeValues` (merge true): a chart's
/// values with the user's on top, subcharts' in their sections.
pub fn coalesce_chart(
    chart: &dyn ChartValues,
    user: &MapRef,
    merge: bool,
    warn: &mut Warnings,
) -> Result<MapRef, String> {
    let dest = deep_copy(user);
    coalesce(chart, &dest, "", merge, warn)?;
    Ok(dest)
}

fn coalesce(
    chart: &dyn ChartValues,
    dest: &MapRef,
    prefix: &str,
    merge: bool,
    warn: &mut Warnings,
) -> Result<(), String> {
    coalesce_values(chart, dest, prefix, merge, warn);
    coalesce_deps(chart, dest, prefix, merge, warn)
}

fn coalesce_values(chart: &dyn ChartValues, v: &MapRef, prefix: &str, merge: bool, warn: &mut Warnings) {
    let prefix = concat(prefix, chart.name());
    let defaults = deep_copy(&chart.values());
    for (key, val) in defaults.snapshot() {
        match v.get(&key) {
            Some(Value::Nil) if !merge => {
                v.remove(&key);
            }
            Some(value) => {
                if let Some(dest) = table(&value) {
                    if let Some(src) = table(&val) {
                        let child_merge = merge || chart.children().iter().any(|c| c.name() == &*key);
                        coalesce_tables(dest, src, &concat(&prefix, &key), child_merge, warn);
                    } else if !matches!(val, Value::Nil) {
                        warn.push(format!("warning: skipped value for {prefix}.{key}: Not a table."));
                    }
                }
            }
            None => v.insert(key, val),
        }
    }
}

fn coalesce_deps(
    chart: &dyn ChartValues,
    dest: &MapRef,
    prefix: &str,
    merge: bool,
    warn: &mut Warnings,
) -> Result<(), String> {
    let prefix = concat(prefix, chart.name());
    for sub in chart.children() {
        let name: Rc<str> = Rc::from(sub.name());
        let dv = match dest.get(&name) {
            None => {
                let t = new_table();
                dest.insert(name.clone(), Value::Map(t.clone()));
                t
            }
            Some(v) => match table(&v) {
                Some(t) => t.clone(),
                None => {
                    return Err(format!(
                        "type mismatch on {name}: {}",
                        crate::helm::gofmt::sprintf("%t", std::slice::from_ref(&v))
                    ));
                }
            },
        };
        coalesce_globals(&dv, dest, &prefix, warn);
        coalesce(sub, &dv, &prefix, merge, warn)?;
    }
    Ok(())
}

/// `coalesceGlobals`: the parent's globals into the child's section.
fn coalesce_globals(dest: &MapRef, src: &MapRef, prefix: &str, warn: &mut Warnings) {
    let Some(dg) = globals(dest, "destination", warn) else {
        return;
    };
    let Some(sg) = globals(src, "source", warn) else {
        return;
    };
    for (key, val) in sg.snapshot() {
        if let Some(vt) = table(&val) {
            let vv = copy_map(vt);
            match dg.get(&key) {
                None => dg.insert(key, Value::Map(vv)),
                Some(destv) => {
                    if let Some(destvmap) = table(&destv) {
                        coalesce_tables(&vv, destvmap, &concat(prefix, &key), true, warn);
                        dg.insert(key, Value::Map(vv));
                    } else {
                        warn.push(format!(
                            "Conflict: cannot merge map onto non-map for {}. Skipping.",
                            crate::helm::gofmt::quote(&key)
                        ));
                    }
                }
            }
        } else if dg.get(&key).is_some_and(|dv| table(&dv).is_some()) {
            warn.push(format!("key {key} is table. Skipping"));
        } else {
            dg.insert(key, val);
        }
    }
    dest.insert(Rc::from(GLOBAL), Value::Map(dg));
}

/// A copy of the globals of one side of [`coalesce_globals`] (a new table
/// where it has none); `None`, with a warning, where they are no table.
fn globals(map: &MapRef, side: &str, warn: &mut Warnings) -> Option<MapRef> {
    match map.get(GLOBAL) {
        None => Some(new_table()),
        Some(v) => {
            let t = table(&v).cloned();
            if t.is_none() {
                warn.push(format!(
                    "warning: skipping globals because {side} {GLOBAL} is not a table."
                ));
            }
            t
        }
    }
}

/// Entries as a table value.
pub fn table_value(entries: Entries) -> Value {
    Value::map(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::yaml::parse_map;

    fn m(text: &str) -> MapRef {
        parse_map(text).unwrap().as_map().unwrap().clone()
    }

    struct C {
        name: &'static str,
        values: MapRef,
        children: Vec<C>,
    }

    impl ChartValues for C {
        fn name(&self) -> &str {
            self.name
        }
        fn values(&self) -> MapRef {
            self.values.clone()
        }
        fn children(&self) -> Vec<&dyn ChartValues> {
            self.children.iter().map(|c| c as &dyn ChartValues).collect()
        }
    }

    #[test]
    fn user_values_win_and_null_deletes() {
        let c = C {
            name: "top",
            values: m("a: 1\nb: {x: 1, z: 2}\nc: keep\nd: gone"),
            children: vec![],
        };
        let out = coalesce_chart(
            &c,
            &m("a: 2\nb: {x: 9}\nd: null"),
            false,
            &mut Warnings::default(),
        )
        .unwrap();
        assert_eq!(sprint_value(&Value::Map(out)), "map[a:2 b:map[x:9 z:2] c:keep]");
    }

    #[test]
    fn subcharts_get_defaults_and_globals() {
        let c = C {
            name: "top",
            values: m("global: {g: 1}\nsub: {a: 2}"),
            children: vec![C {
                name: "sub",
                values: m("a: 1\nb: 1\nglobal: {h: 2}"),
                children: vec![],
            }],
        };
        let out = coalesce_chart(&c, &m("sub: {b: 5}"), false, &mut Warnings::default()).unwrap();
        assert_eq!(
            sprint_value(&Value::Map(out)),
            "map[global:map[g:1] sub:map[a:2 b:5 global:map[g:1 h:2]]]"
        );
    }

    #[test]
    fn dropped_values_are_warned_about_as_helm_words_it() {
        let c = C {
            name: "top",
            values: m("scal: 5\ntab: {x: {w: 1}}\ng: {k: 1}"),
            children: vec![],
        };
        let mut warn = Warnings::default();
        let out = coalesce_chart(
            &c,
            &m("scal: {a: 1}\ntab: {x: 2}\ng: {k: {z: 1}}"),
            false,
            &mut warn,
        )
        .unwrap();
        assert_eq!(
            sprint_value(&Value::Map(out)),
            "map[g:map[k:map[z:1]] scal:map[a:1] tab:map[x:2]]"
        );
        assert_eq!(
            warn.into_vec(),
            [
                "warning: destination for top.g.k is a table. Ignoring non-table value (1)",
                "warning: skipped value for top.scal: Not a table.",
                "warning: cannot overwrite table with non table for top.tab.x (map[w:1])",
            ]
        );
    }

    #[test]
    fn values_files_merge() {
        let out = merge_maps(&m("a: {x: 1, z: 2}\nb: [1]"), &m("a: {x: 3}\nb: [2]"));
        assert_eq!(sprint_value(&Value::Map(out)), "map[a:map[x:3 z:2] b:[2]]");
    }

    #[test]
    fn paths() {
        let v = m("a: {b: {c: true}}");
        assert_eq!(
            path_value(&v, "a.b.c").map(|x| sprint_value(&x)),
            Some("true".into())
        );
        assert!(path_value(&v, "a.b").is_none());
        assert!(table_at(&v, "a.b").is_some());
    }
}
