//! Sprig's list functions (`list.go`), defaults (`defaults.go`: `default`,
//! `empty`, `coalesce`, `ternary`, …) and reflection (`typeOf`, `kindIs`, …).

use std::rc::Rc;

use super::{FnError, FnResult, FuncDef, Ty, empty, err, f, in_list, int, items, kind, s, v};
use crate::helm::value::{Elem, List, Value, deep_equal};

/// The longest list `until` and friends may build.
pub const MAX_ITEMS: usize = 1_000_000;

fn list_result(items: Vec<Value>) -> Value {
    Value::list(items)
}

/// Run a `must…` function; the plain one turns its error into a panic,
/// which the template reports the same way.
fn must(r: FnResult) -> FnResult {
    r
}

fn no_list<T>(what: &str, v: &Value) -> Result<T, FnError> {
    if v.is_nil() {
        return super::nil_deref();
    }
    err(format!("Cannot {what} on type {}", kind(v)))
}

fn push(list: &Value, x: &Value) -> FnResult {
    let Some(mut items) = items(list) else {
        return no_list("push", list);
    };
    items.push(x.clone());
    Ok(list_result(items))
}

fn prepend(list: &Value, x: &Value) -> FnResult {
    let Some(mut items) = items(list) else {
        return no_list("prepend", list);
    };
    items.insert(0, x.clone());
    Ok(list_result(items))
}

fn first(list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("find first", list);
    };
    Ok(items.first().cloned().unwrap_or_default())
}

fn last(list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("find last", list);
    };
    Ok(items.last().cloned().unwrap_or_default())
}

fn rest(list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("find rest", list);
    };
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    Ok(list_result(items[1..].to_vec()))
}

fn initial(list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("find initial", list);
    };
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    Ok(list_result(items[..items.len() - 1].to_vec()))
}

fn reverse(list: &Value) -> FnResult {
    let Some(mut items) = items(list) else {
        return no_list("find reverse", list);
    };
    items.reverse();
    Ok(list_result(items))
}

fn uniq(list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("find uniq", list);
    };
    let mut out: Vec<Value> = Vec::new();
    for x in items {
        if !in_list(&out, &x) {
            out.push(x);
        }
    }
    Ok(list_result(out))
}

fn compact(list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("compact", list);
    };
    Ok(list_result(items.into_iter().filter(|x| !empty(x)).collect()))
}

fn without(list: &Value, omit: &[Value]) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("find without", list);
    };
    Ok(list_result(
        items.into_iter().filter(|x| !in_list(omit, x)).collect(),
    ))
}

fn has(needle: &Value, haystack: &Value) -> FnResult {
    if haystack.is_nil() {
        return Ok(Value::Bool(false));
    }
    let Some(items) = items(haystack) else {
        return no_list("find has", haystack);
    };
    Ok(Value::Bool(in_list(&items, needle)))
}

fn slice(list: &Value, indices: &[Value]) -> FnResult {
    let (elem, items) = match list {
        Value::List(l) => (l.elem, l.items.clone()),
        Value::Bytes(b) => {
            let (start, end) = bounds(b.len(), indices)?;
            return Ok(Value::Bytes(std::sync::Arc::from(&b[start..end])));
        }
        Value::Nil => return super::nil_deref(),
        other => {
            return err(format!(
                "list should be type of slice or array but {}",
                kind(other)
            ));
        }
    };
    if items.is_empty() {
        return Ok(Value::Nil);
    }
    let (start, end) = bounds(items.len(), indices)?;
    Ok(Value::List(Rc::new(List {
        elem,
        items: items[start..end].to_vec(),
    })))
}

fn bounds(len: usize, indices: &[Value]) -> Result<(usize, usize), FnError> {
    let start = indices.first().map_or(0, super::dicts::to_int);
    let end = if indices.len() < 2 {
        len as i64
    } else {
        super::dicts::to_int(&indices[1])
    };
    if start < 0 || end < start || end as usize > len {
        return err("reflect.Value.Slice: slice index out of bounds");
    }
    Ok((start as usize, end as usize))
}

fn concat(lists: &[Value]) -> FnResult {
    let mut out = Vec::new();
    for l in lists {
        match items(l) {
            Some(items) => out.extend(items),
            None => return err(format!("Cannot concat type {} as list", kind(l))),
        }
    }
    Ok(list_result(out))
}

fn chunk(size: i64, list: &Value) -> FnResult {
    let Some(items) = items(list) else {
        return no_list("chunk", list);
    };
    if size <= 0 {
        return err("runtime error: integer divide by zero");
    }
    let chunks: Vec<Value> = items
        .chunks(size as usize)
        .map(|c| list_result(c.to_vec()))
        .collect();
    Ok(list_result(chunks))
}

fn until_step(start: i64, stop: i64, step: i64) -> FnResult {
    let mut out = Vec::new();
    let push = |out: &mut Vec<Value>, i: i64| -> Result<(), FnError> {
        if out.len() >= MAX_ITEMS {
            return err(format!("list too long: more than {MAX_ITEMS} items"));
        }
        out.push(Value::Int(i));
        Ok(())
    };
    if stop < start {
        if step >= 0 {
            return Ok(int_list(out));
        }
        let mut i = start;
        while i > stop {
            push(&mut out, i)?;
            i += step;
        }
        return Ok(int_list(out));
    }
    if step <= 0 {
        return Ok(int_list(out));
    }
    let mut i = start;
    while i < stop {
        push(&mut out, i)?;
        i += step;
    }
    Ok(int_list(out))
}

fn int_list(items: Vec<Value>) -> Value {
    Value::List(Rc::new(List {
        elem: Elem::Int,
        items,
    }))
}

fn seq(params: &[Value]) -> FnResult {
    let p: Vec<i64> = params.iter().map(int).collect();
    let list = match p.as_slice() {
        [] => return Ok(Value::str("")),
        [end] => {
            let inc = if *end < 1 { -1 } else { 1 };
            until_step(1, end + inc, inc)?
        }
        [start, end] => {
            let step = if end < start { -1 } else { 1 };
            until_step(*start, end + step, step)?
        }
        [start, step, end] => {
            let mut inc = 1;
            if end < start {
                inc = -1;
                if *step > 0 {
                    return Ok(Value::str(""));
                }
            }
            until_step(*start, end + inc, *step)?
        }
        _ => return Ok(Value::str("")),
    };
    let Value::List(l) = list else {
        return Ok(Value::str(""));
    };
    let parts: Vec<String> = l.items.iter().map(|x| int(x).to_string()).collect();
    Ok(Value::string(parts.join(" ")))
}

fn type_of(v: &Value) -> String {
    if v.is_nil() { "<nil>".into() } else { v.type_name() }
}

pub const FUNCS: &[FuncDef] = &[
    v("list", &[], Ty::Any, |_, a| Ok(list_result(a))),
    v("tuple", &[], Ty::Any, |_, a| Ok(list_result(a))),
    f("append", &[Ty::Any, Ty::Any], |_, a| push(&a[0], &a[1])),
    f("push", &[Ty::Any, Ty::Any], |_, a| push(&a[0], &a[1])),
    f("mustAppend", &[Ty::Any, Ty::Any], |_, a| must(push(&a[0], &a[1]))),
    f("mustPush", &[Ty::Any, Ty::Any], |_, a| must(push(&a[0], &a[1]))),
    f("prepend", &[Ty::Any, Ty::Any], |_, a| prepend(&a[0], &a[1])),
    f("mustPrepend", &[Ty::Any, Ty::Any], |_, a| prepend(&a[0], &a[1])),
    f("first", &[Ty::Any], |_, a| first(&a[0])),
    f("mustFirst", &[Ty::Any], |_, a| first(&a[0])),
    f("rest", &[Ty::Any], |_, a| rest(&a[0])),
    f("mustRest", &[Ty::Any], |_, a| rest(&a[0])),
    f("last", &[Ty::Any], |_, a| last(&a[0])),
    f("mustLast", &[Ty::Any], |_, a| last(&a[0])),
    f("initial", &[Ty::Any], |_, a| initial(&a[0])),
    f("mustInitial", &[Ty::Any], |_, a| initial(&a[0])),
    f("reverse", &[Ty::Any], |_, a| reverse(&a[0])),
    f("mustReverse", &[Ty::Any], |_, a| reverse(&a[0])),
    f("uniq", &[Ty::Any], |_, a| uniq(&a[0])),
    f("mustUniq", &[Ty::Any], |_, a| uniq(&a[0])),
    v("without", &[Ty::Any], Ty::Any, |_, a| without(&a[0], &a[1..])),
    v("mustWithout", &[Ty::Any], Ty::Any, |_, a| without(&a[0], &a[1..])),
    f("has", &[Ty::Any, Ty::Any], |_, a| has(&a[0], &a[1])),
    f("mustHas", &[Ty::Any, Ty::Any], |_, a| has(&a[0], &a[1])),
    v("slice", &[Ty::Any], Ty::Any, |_, a| slice(&a[0], &a[1..])),
    v("mustSlice", &[Ty::Any], Ty::Any, |_, a| slice(&a[0], &a[1..])),
    v("concat", &[], Ty::Any, |_, a| concat(&a)),
    f("chunk", &[Ty::Int, Ty::Any], |_, a| chunk(int(&a[0]), &a[1])),
    f("mustChunk", &[Ty::Int, Ty::Any], |_, a| chunk(int(&a[0]), &a[1])),
    f("compact", &[Ty::Any], |_, a| compact(&a[0])),
    f("mustCompact", &[Ty::Any], |_, a| compact(&a[0])),
    f("until", &[Ty::Int], |_, a| {
        let n = int(&a[0]);
        until_step(0, n, if n < 0 { -1 } else { 1 })
    }),
    f("untilStep", &[Ty::Int, Ty::Int, Ty::Int], |_, a| {
        until_step(int(&a[0]), int(&a[1]), int(&a[2]))
    }),
    v("seq", &[], Ty::Int, |_, a| seq(&a)),
    // Defaults.
    v("default", &[Ty::Any], Ty::Any, |_, a| {
        if a.len() < 2 || empty(&a[1]) {
            return Ok(a[0].clone());
        }
        Ok(a[1].clone())
    }),
    f("empty", &[Ty::Any], |_, a| Ok(Value::Bool(empty(&a[0])))),
    v("coalesce", &[], Ty::Any, |_, a| {
        Ok(a.into_iter().find(|x| !empty(x)).unwrap_or_default())
    }),
    v("all", &[], Ty::Any, |_, a| {
        Ok(Value::Bool(a.iter().all(|x| !empty(x))))
    }),
    v("any", &[], Ty::Any, |_, a| {
        Ok(Value::Bool(a.iter().any(|x| !empty(x))))
    }),
    f("ternary", &[Ty::Any, Ty::Any, Ty::Bool], |_, a| {
        Ok(if matches!(a[2], Value::Bool(true)) {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    f("deepCopy", &[Ty::Any], |_, a| Ok(a[0].deep_copy())),
    f("mustDeepCopy", &[Ty::Any], |_, a| {
        if a[0].is_nil() {
            return err("copy: cannot copy nil");
        }
        Ok(a[0].deep_copy())
    }),
    // Reflection.
    f("typeOf", &[Ty::Any], |_, a| Ok(Value::string(type_of(&a[0])))),
    f("typeIs", &[Ty::Str, Ty::Any], |_, a| {
        Ok(Value::Bool(s(&a[0]) == type_of(&a[1])))
    }),
    f("typeIsLike", &[Ty::Str, Ty::Any], |_, a| {
        let t = type_of(&a[1]);
        let target = s(&a[0]);
        Ok(Value::Bool(target == t || format!("*{target}") == t))
    }),
    f("kindOf", &[Ty::Any], |_, a| Ok(Value::str(a[0].kind_name()))),
    f("kindIs", &[Ty::Str, Ty::Any], |_, a| {
        Ok(Value::Bool(s(&a[0]) == a[1].kind_name()))
    }),
    f("deepEqual", &[Ty::Any, Ty::Any], |_, a| {
        Ok(Value::Bool(deep_equal(&a[0], &a[1])))
    }),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_like_gnu() {
        let i = |v: &[i64]| seq(&v.iter().map(|x| Value::Int(*x)).collect::<Vec<_>>()).unwrap();
        assert_eq!(i(&[3]).as_str(), Some("1 2 3"));
        assert_eq!(i(&[2, 4]).as_str(), Some("2 3 4"));
        assert_eq!(i(&[0, 2, 6]).as_str(), Some("0 2 4 6"));
        assert_eq!(i(&[-2]).as_str(), Some("1 0 -1 -2"));
    }

    #[test]
    fn until_is_bounded() {
        assert!(until_step(0, i64::MAX, 1).is_err());
    }
}
