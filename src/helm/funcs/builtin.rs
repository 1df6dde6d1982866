//! Go's `text/template` builtins (`funcs.go`). `and` and `or` short-circuit
//! in the executor; `slice` is Sprig's.

use super::{FnResult, FuncDef, Special, Ty, err, f, s, v};
use crate::helm::gofmt;
use crate::helm::value::{MapKind, Value};

pub const FUNCS: &[FuncDef] = &[
    FuncDef {
        name: "and",
        params: &[Ty::Reflect],
        variadic: Some(Ty::Reflect),
        special: Special::And,
        call: |_, _| Ok(Value::Nil),
    },
    FuncDef {
        name: "or",
        params: &[Ty::Reflect],
        variadic: Some(Ty::Reflect),
        special: Special::Or,
        call: |_, _| Ok(Value::Nil),
    },
    f("not", &[Ty::Reflect], |_, a| Ok(Value::Bool(!a[0].truthy()))),
    f("len", &[Ty::Reflect], |_, a| length(&a[0])),
    v("index", &[Ty::Reflect], Ty::Reflect, |_, a| index(&a[0], &a[1..])),
    v("print", &[], Ty::Any, |_, a| Ok(Value::string(gofmt::sprint(&a)))),
    v("println", &[], Ty::Any, |_, a| {
        Ok(Value::string(gofmt::sprintln(&a)))
    }),
    v("printf", &[Ty::Str], Ty::Any, |_, a| {
        Ok(Value::string(gofmt::sprintf(s(&a[0]), &a[1..])))
    }),
    v("html", &[], Ty::Any, |_, a| {
        Ok(Value::string(html_escape(&eval_args(&a))))
    }),
    v("js", &[], Ty::Any, |_, a| {
        Ok(Value::string(js_escape(&eval_args(&a))))
    }),
    v("urlquery", &[], Ty::Any, |_, a| {
        Ok(Value::string(super::encoding::query_escape(&eval_args(&a))))
    }),
    v("eq", &[Ty::Reflect], Ty::Reflect, |_, a| {
        eq(&a[0], &a[1..]).map(Value::Bool)
    }),
    f("ne", &[Ty::Reflect, Ty::Reflect], |_, a| {
        eq(&a[0], &a[1..]).map(|b| Value::Bool(!b))
    }),
    f("lt", &[Ty::Reflect, Ty::Reflect], |_, a| {
        lt(&a[0], &a[1]).map(Value::Bool)
    }),
    f("le", &[Ty::Reflect, Ty::Reflect], |_, a| {
        Ok(Value::Bool(lt(&a[0], &a[1])? || eq(&a[0], &a[1..])?))
    }),
    f("gt", &[Ty::Reflect, Ty::Reflect], |_, a| {
        Ok(Value::Bool(!(lt(&a[0], &a[1])? || eq(&a[0], &a[1..])?)))
    }),
    f("ge", &[Ty::Reflect, Ty::Reflect], |_, a| {
        Ok(Value::Bool(!lt(&a[0], &a[1])?))
    }),
    v("call", &[Ty::Reflect], Ty::Reflect, |_, a| match &a[0] {
        Value::Nil => err("call of nil"),
        other => err(format!(
            "non-function {} of type {}",
            gofmt::sprint_value(other),
            other.type_name()
        )),
    }),
];

fn length(v: &Value) -> FnResult {
    Ok(Value::Int(match v {
        Value::Nil => return err("len of nil pointer"),
        Value::Str(s) => crate::helm::value::string_bytes(s).len(),
        Value::Bytes(b) => b.len(),
        Value::List(l) => l.items.len(),
        Value::Map(m) => m.len(),
        other => return err(format!("len of type {}", other.type_name())),
    } as i64))
}

fn index(item: &Value, indexes: &[Value]) -> FnResult {
    if item.is_nil() {
        return err("index of untyped nil");
    }
    let mut item = item.clone();
    for ix in indexes {
        if item.is_nil() {
            return err("index of nil pointer");
        }
        item = match &item {
            Value::List(_) | Value::Str(_) | Value::Bytes(_) => {
                let len = match &item {
                    Value::List(l) => l.items.len(),
                    Value::Str(s) => s.len(),
                    Value::Bytes(b) => b.len(),
                    _ => 0,
                };
                let x = match ix {
                    Value::Int(i) | Value::Int64(i) => *i,
                    Value::Nil => return err("cannot index slice/array with nil"),
                    other => {
                        return err(format!(
                            "cannot index slice/array with type {}",
                            other.type_name()
                        ));
                    }
                };
                if x < 0 || x as usize > len {
                    return err(format!("index out of range: {x}"));
                }
                let x = x as usize;
                if x == len {
                    return err("reflect: slice index out of range");
                }
                match &item {
                    Value::List(l) => l.items[x].clone(),
                    Value::Str(s) => Value::Int(s.as_bytes()[x] as i64),
                    Value::Bytes(b) => Value::Int(b[x] as i64),
                    _ => Value::Nil,
                }
            }
            Value::Map(m) => {
                let key = match ix {
                    Value::Str(k) => k.clone(),
                    Value::Nil => return err("value is nil; should be of type string"),
                    other => {
                        return err(format!("value has type {}; should be string", other.type_name()));
                    }
                };
                match m.get(&key) {
                    Some(x) => x,
                    None => match m.kind() {
                        MapKind::Strings => Value::str(""),
                        MapKind::Files => Value::Bytes(std::sync::Arc::from(&[][..])),
                        MapKind::Any => Value::Nil,
                    },
                }
            }
            other => return err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    Str,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::Str(_) => Kind::Str,
        _ => Kind::Invalid,
    }
}

fn eq(a: &Value, others: &[Value]) -> Result<bool, super::FnError> {
    if others.is_empty() {
        return err("missing argument for comparison");
    }
    let k1 = basic_kind(a);
    for b in others {
        let k2 = basic_kind(b);
        let truth = if k1 != k2 {
            if !a.is_nil() && !b.is_nil() {
                return err("incompatible types for comparison");
            }
            false
        } else {
            match (a, b) {
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Str(x), Value::Str(y)) => x == y,
                (Value::Nil, Value::Nil) => true,
                (Value::Nil, _) | (_, Value::Nil) => false,
                (x, y) => {
                    let comparable =
                        |v: &Value| !matches!(v, Value::List(_) | Value::Map(_) | Value::Bytes(_));
                    if !comparable(x) {
                        return err(format!(
                            "non-comparable type {}: {}",
                            gofmt::sprint_value(x),
                            x.type_name()
                        ));
                    }
                    if !comparable(y) {
                        return err(format!(
                            "non-comparable type {}: {}",
                            gofmt::sprint_value(y),
                            y.type_name()
                        ));
                    }
                    crate::helm::value::deep_equal(x, y)
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a: &Value, b: &Value) -> Result<bool, super::FnError> {
    let (k1, k2) = (basic_kind(a), basic_kind(b));
    if k1 == Kind::Invalid || k2 == Kind::Invalid {
        return err("invalid type for comparison");
    }
    if k1 != k2 {
        return err("incompatible types for comparison");
    }
    Ok(match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => x < y,
        (Value::Float(x), Value::Float(y)) => x < y,
        (Value::Str(x), Value::Str(y)) => x < y,
        _ => return err("invalid type for comparison"),
    })
}

/// The text of `html`, `js` and `urlquery`'s arguments.
fn eval_args(args: &[Value]) -> String {
    if let [Value::Str(s)] = args {
        return s.to_string();
    }
    gofmt::sprint(args)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\0' => out.push('\u{FFFD}'),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if !gofmt::is_print(c) && !c.is_ascii() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
