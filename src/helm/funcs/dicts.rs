//! Sprig's dict functions (`dict.go`), with `merge` and `mergeOverwrite`
//! as mergo does them: in place, into the first dict.

use std::rc::Rc;

use super::{FnResult, FuncDef, Ty, err, f, s, strval, to_int64, v};
use crate::helm::value::{Entries, MapKind, MapRef, Value};

/// cast's `ToInt`.
pub fn to_int(v: &Value) -> i64 {
    to_int64(v)
}

fn need_map(v: &Value) -> Result<Option<&MapRef>, super::FnError> {
    match v {
        Value::Nil => Ok(None),
        Value::Map(m) => Ok(Some(m)),
        _ => err("interface conversion: not a map"),
    }
}

pub const FUNCS: &[FuncDef] = &[
    v("dict", &[], Ty::Any, |_, a| {
        let mut entries = Entries::new();
        let mut i = 0;
        while i < a.len() {
            let key: Rc<str> = Rc::from(strval(&a[i]));
            let value = a.get(i + 1).cloned().unwrap_or_else(|| Value::str(""));
            entries.insert(key, value);
            i += 2;
        }
        Ok(Value::map(entries))
    }),
    f("get", &[Ty::Map, Ty::Str], |_, a| {
        Ok(need_map(&a[0])?
            .and_then(|m| m.get(s(&a[1])))
            .unwrap_or_else(|| Value::str("")))
    }),
    f("set", &[Ty::Map, Ty::Str, Ty::Any], |_, a| {
        let Some(m) = need_map(&a[0])? else {
            return err("assignment to entry in nil map");
        };
        m.insert(Rc::from(s(&a[1])), a[2].clone());
        Ok(a[0].clone())
    }),
    f("unset", &[Ty::Map, Ty::Str], |_, a| {
        if let Some(m) = need_map(&a[0])? {
            m.remove(s(&a[1]));
        }
        Ok(a[0].clone())
    }),
    f("hasKey", &[Ty::Map, Ty::Str], |_, a| {
        Ok(Value::Bool(
            need_map(&a[0])?.is_some_and(|m| m.get(s(&a[1])).is_some()),
        ))
    }),
    v("pluck", &[Ty::Str], Ty::Map, |_, a| {
        let key = s(&a[0]);
        let mut out = Vec::new();
        for d in &a[1..] {
            if let Some(m) = need_map(d)?
                && let Some(x) = m.get(key)
            {
                out.push(x);
            }
        }
        Ok(Value::list(out))
    }),
    v("keys", &[], Ty::Map, |_, a| {
        let mut out = Vec::new();
        for d in &a {
            if let Some(m) = need_map(d)? {
                out.extend(m.keys().into_iter().map(Value::Str));
            }
        }
        Ok(Value::str_list(out))
    }),
    v("pick", &[Ty::Map], Ty::Str, |_, a| {
        let mut entries = Entries::new();
        if let Some(m) = need_map(&a[0])? {
            for k in &a[1..] {
                if let Some(x) = m.get(s(k)) {
                    entries.insert(Rc::from(s(k)), x);
                }
            }
        }
        Ok(Value::map(entries))
    }),
    v("omit", &[Ty::Map], Ty::Str, |_, a| {
        let mut entries = Entries::new();
        if let Some(m) = need_map(&a[0])? {
            for (k, x) in m.snapshot() {
                if !a[1..].iter().any(|o| s(o) == &*k) {
                    entries.insert(k, x);
                }
            }
        }
        Ok(Value::map(entries))
    }),
    v("merge", &[Ty::Map], Ty::Map, |_, a| merge_all(a, false)),
    v("mustMerge", &[Ty::Map], Ty::Map, |_, a| merge_all(a, false)),
    v("mergeOverwrite", &[Ty::Map], Ty::Map, |_, a| merge_all(a, true)),
    v("mustMergeOverwrite", &[Ty::Map], Ty::Map, |_, a| {
        merge_all(a, true)
    }),
    f("values", &[Ty::Map], |_, a| {
        let items = need_map(&a[0])?
            .map(|m| m.snapshot().into_iter().map(|(_, v)| v).collect())
            .unwrap_or_default();
        Ok(Value::list(items))
    }),
    v("dig", &[], Ty::Any, |_, a| {
        if a.len() < 3 {
            return err("dig needs at least three arguments");
        }
        let Value::Map(dict) = &a[a.len() - 1] else {
            return err(format!(
                "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                a[a.len() - 1].type_name()
            ));
        };
        let default = a[a.len() - 2].clone();
        let mut keys = Vec::new();
        for k in &a[..a.len() - 2] {
            match k {
                Value::Str(s) => keys.push(s.clone()),
                other => {
                    return err(format!(
                        "interface conversion: interface {{}} is {}, not string",
                        other.type_name()
                    ));
                }
            }
        }
        let mut cur = dict.clone();
        for (i, k) in keys.iter().enumerate() {
            let Some(step) = cur.get(k) else {
                return Ok(default);
            };
            if i + 1 == keys.len() {
                return Ok(step);
            }
            match step {
                Value::Map(m) if m.kind() == MapKind::Any => cur = m,
                other => {
                    return err(format!(
                        "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                        if other.is_nil() {
                            "nil".to_string()
                        } else {
                            other.type_name()
                        }
                    ));
                }
            }
        }
        Ok(default)
    }),
];

fn merge_all(a: Vec<Value>, overwrite: bool) -> FnResult {
    let Some(dst) = need_map(&a[0])?.cloned() else {
        return Ok(a[0].clone());
    };
    for src in &a[1..] {
        if let Some(src) = need_map(src)? {
            if src.ptr_eq(&dst) {
                continue;
            }
            mergo(&dst, src, overwrite, 0);
        }
    }
    Ok(a[0].clone())
}

/// mergo's `Merge` (`overwrite` false) / `MergeWithOverwrite` of two
/// `map[string]interface{}`, into `dst`.
pub fn mergo(dst: &MapRef, src: &MapRef, overwrite: bool, depth: usize) {
    if depth > 1000 {
        return;
    }
    for (k, sv) in src.snapshot() {
        let dv = dst.get(&k);
        if sv.is_nil() {
            if overwrite {
                dst.insert(k, Value::Nil);
            }
            continue;
        }
        match &sv {
            Value::Map(sm) => {
                if let Some(Value::Map(dm)) = &dv {
                    if !dm.ptr_eq(sm) {
                        mergo(dm, sm, overwrite, depth + 1);
                    }
                    if !dm.is_empty() {
                        continue;
                    }
                }
            }
            Value::List(_) => {
                if let Some(d) = &dv
                    && d.truthy()
                {
                    if overwrite {
                        dst.insert(k, sv.clone());
                    }
                    continue;
                }
            }
            _ => {}
        }
        let dst_empty = dv.as_ref().is_none_or(|d| !d.truthy());
        if overwrite || dst_empty {
            dst.insert(k, sv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::yaml::parse_map;

    fn m(text: &str) -> MapRef {
        parse_map(text).unwrap().as_map().unwrap().clone()
    }

    #[test]
    fn merge_keeps_destination_values() {
        let dst = m("a: 1\nb: {x: 1}\nc: ''\nl: [1]");
        mergo(&dst, &m("a: 2\nb: {x: 2, w: 2}\nc: z\nd: 4\nl: [2, 3]"), false, 0);
        assert_eq!(
            crate::helm::gofmt::sprint_value(&Value::Map(dst)),
            "map[a:1 b:map[w:2 x:1] c:z d:4 l:[1]]"
        );
    }

    #[test]
    fn merge_overwrite_prefers_the_source() {
        let dst = m("a: 1\nb: {x: 1}\nl: [1]");
        mergo(&dst, &m("a: 2\nb: {w: 2}\nl: [2]\nz: null"), true, 0);
        assert_eq!(
            crate::helm::gofmt::sprint_value(&Value::Map(dst)),
            "map[a:2 b:map[w:2 x:1] l:[2] z:<nil>]"
        );
    }
}
