//! `--set` and `--set-string`, parsed exactly as Helm's `pkg/strvals`:
//! `a.b=c,d[0]=x,e={1,2}`, `\` escapes, and (without `--set-string`)
//! `null`, `true`/`false` and decimal integers typed (`007` stays a
//! string, `1.5` too).

use std::rc::Rc;

use super::value::{MapRef, Value};

/// How deep `a.b.c…` may nest.
const MAX_NESTED: usize = 30;
/// The largest list index accepted.
const MAX_INDEX: i64 = 65536;

/// Parse one `--set` argument into `dest`.
pub fn parse_into(s: &str, dest: &MapRef, strings: bool) -> Result<(), String> {
    let mut p = Parser {
        chars: s.chars().collect(),
        pos: 0,
        strings,
    };
    loop {
        match p.key(dest, 0) {
            Ok(()) => continue,
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Err(e)) => return Err(e),
        }
    }
}

enum Stop {
    Eof,
    Err(String),
}

impl From<String> for Stop {
    fn from(s: String) -> Stop {
        Stop::Err(s)
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    strings: bool,
}

/// Result of reading up to a stop character: the text, and the stop
/// character (`None` at the end).
type Runes = (String, Option<char>);

impl Parser {
    fn runes_until(&mut self, stop: &[char]) -> Runes {
        let mut v = String::new();
        while let Some(&c) = self.chars.get(self.pos) {
            self.pos += 1;
            if stop.contains(&c) {
                return (v, Some(c));
            }
            if c == '\\' {
                match self.chars.get(self.pos) {
                    Some(&n) => {
                        self.pos += 1;
                        v.push(n);
                    }
                    None => return (v, None),
                }
                continue;
            }
            v.push(c);
        }
        (v, None)
    }

    fn typed(&self, v: &str) -> Value {
        if self.strings {
            return Value::str(v);
        }
        if v.eq_ignore_ascii_case("null") {
            return Value::Nil;
        }
        if v.eq_ignore_ascii_case("true") {
            return Value::Bool(true);
        }
        if v.eq_ignore_ascii_case("false") {
            return Value::Bool(false);
        }
        if v == "0" {
            return Value::Int64(0);
        }
        if !v.is_empty() && !v.starts_with('0') {
            let digits = v.strip_prefix(['+', '-']).unwrap_or(v);
            if !digits.is_empty()
                && digits.bytes().all(|c| c.is_ascii_digit())
                && let Ok(i) = v.parse::<i64>()
            {
                return Value::Int64(i);
            }
        }
        Value::str(v)
    }

    fn key(&mut self, data: &MapRef, level: usize) -> Result<(), Stop> {
        let (k, last) = self.runes_until(&['=', '[', ',', '.']);
        match last {
            None => {
                if k.is_empty() {
                    return Err(Stop::Eof);
                }
                Err(Stop::Err(format!("key {k:?} has no value")))
            }
            Some('[') => {
                let i = self.key_index()?;
                let list = match data.get(&k) {
                    None => Vec::new(),
                    Some(Value::List(l)) => l.items.clone(),
                    Some(other) => {
                        return Err(Stop::Err(format!(
                            "unable to parse key: interface conversion: interface {{}} is {}, not []interface {{}}",
                            other.type_name()
                        )));
                    }
                };
                let r = self.list_item(list, i, level);
                match r {
                    Ok(list) => {
                        set(data, &k, Value::list(list));
                        Ok(())
                    }
                    Err((list, e)) => {
                        set(data, &k, Value::list(list));
                        Err(e)
                    }
                }
            }
            Some('=') => match self.val_list() {
                Ok(Some(list)) => {
                    set(data, &k, Value::list(list));
                    Ok(())
                }
                Ok(None) => {
                    let (v, end) = self.runes_until(&[',']);
                    set(data, &k, self.typed(&v));
                    if end.is_none() { Err(Stop::Eof) } else { Ok(()) }
                }
                Err(Stop::Eof) => {
                    set(data, &k, Value::str(""));
                    Err(Stop::Eof)
                }
                Err(e) => Err(e),
            },
            Some(',') => {
                set(data, &k, Value::str(""));
                Err(Stop::Err(format!("key {k:?} has no value (cannot end with ,)")))
            }
            Some(_) => {
                let level = level + 1;
                if level > MAX_NESTED {
                    return Err(Stop::Err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED}"
                    )));
                }
                let inner = match data.get(&k) {
                    None => super::values::new_table(),
                    Some(Value::Map(m)) => m,
                    Some(other) => {
                        return Err(Stop::Err(format!(
                            "unable to parse key: interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                            other.type_name()
                        )));
                    }
                };
                let e = self.key(&inner, level);
                if e.is_ok() && inner.is_empty() {
                    return Err(Stop::Err(format!("key map {k:?} has no value")));
                }
                if !inner.is_empty() {
                    set(data, &k, Value::Map(inner));
                }
                e
            }
        }
    }

    fn key_index(&mut self) -> Result<i64, Stop> {
        let (v, last) = self.runes_until(&[']']);
        if last.is_none() {
            return Err(Stop::Eof);
        }
        v.parse::<i64>().map_err(|_| {
            Stop::Err(format!(
                "error parsing index: strconv.Atoi: parsing {v:?}: invalid syntax"
            ))
        })
    }

    /// `listItem`; on error, the list as it was left.
    #[allow(clippy::type_complexity)]
    fn list_item(
        &mut self,
        mut list: Vec<Value>,
        i: i64,
        level: usize,
    ) -> Result<Vec<Value>, (Vec<Value>, Stop)> {
        if i < 0 {
            return Err((list, Stop::Err(format!("negative {i} index not allowed"))));
        }
        if i > MAX_INDEX {
            return Err((
                list,
                Stop::Err(format!(
                    "index of {i} is greater than maximum supported index of {MAX_INDEX}"
                )),
            ));
        }
        let i = i as usize;
        let (k, last) = self.runes_until(&['[', '.', '=']);
        if !k.is_empty() {
            return Err((
                list,
                Stop::Err(format!("unexpected data at end of array index: {k:?}")),
            ));
        }
        match last {
            None => Err((list, Stop::Eof)),
            Some('=') => match self.val_list() {
                Ok(Some(vl)) => Ok(set_index(list, i, Value::list(vl))),
                Err(Stop::Eof) => Ok(set_index(list, i, Value::str(""))),
                Ok(None) => {
                    let (v, _) = self.runes_until(&[',']);
                    let v = self.typed(&v);
                    Ok(set_index(list, i, v))
                }
                Err(e) => Err((list, e)),
            },
            Some('[') => {
                let next = match self.key_index() {
                    Ok(n) => n,
                    Err(e) => return Err((list, e)),
                };
                let current = match list.get(i) {
                    Some(Value::List(l)) => l.items.clone(),
                    _ => Vec::new(),
                };
                match self.list_item(current, next, level) {
                    Ok(inner) => Ok(set_index(list, i, Value::list(inner))),
                    Err((_, e)) => Err((list, e)),
                }
            }
            Some(_) => {
                let inner = match list.get(i) {
                    Some(Value::Map(m)) => m.clone(),
                    Some(_) => {
                        let m = super::values::new_table();
                        list[i] = Value::Map(m.clone());
                        m
                    }
                    None => super::values::new_table(),
                };
                let e = self.key(&inner, level);
                let list = set_index(list, i, Value::Map(inner));
                match e {
                    Ok(()) => Ok(list),
                    Err(e) => Err((list, e)),
                }
            }
        }
    }

    /// `{a,b}`: `Ok(None)` when the value is not a list.
    fn val_list(&mut self) -> Result<Option<Vec<Value>>, Stop> {
        match self.chars.get(self.pos) {
            None => return Err(Stop::Eof),
            Some('{') => self.pos += 1,
            Some(_) => return Ok(None),
        }
        let mut list = Vec::new();
        loop {
            let (v, last) = self.runes_until(&[',', '}']);
            match last {
                None => return Err(Stop::Err("list must terminate with '}'".into())),
                Some('}') => {
                    if self.chars.get(self.pos) == Some(&',') {
                        self.pos += 1;
                    }
                    list.push(self.typed(&v));
                    return Ok(Some(list));
                }
                Some(_) => list.push(self.typed(&v)),
            }
        }
    }
}

fn set(data: &MapRef, key: &str, v: Value) {
    if key.is_empty() {
        return;
    }
    data.insert(Rc::from(key), v);
}

fn set_index(mut list: Vec<Value>, i: usize, v: Value) -> Vec<Value> {
    if list.len() <= i {
        list.resize(i + 1, Value::Nil);
    }
    list[i] = v;
    list
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helm::gofmt::sprint_value;

    fn parse(s: &str, strings: bool) -> Result<String, String> {
        let m = crate::helm::values::new_table();
        parse_into(s, &m, strings)?;
        Ok(sprint_value(&Value::Map(m)))
    }

    #[test]
    fn like_helm_strvals() {
        let ok = |s: &str, want: &str| assert_eq!(parse(s, false), Ok(want.to_string()), "{s}");
        ok("name=value", "map[name:value]");
        ok("long_int_string=1234567890", "map[long_int_string:1234567890]");
        ok("boolean=true", "map[boolean:true]");
        ok("is_null=null", "map[is_null:<nil>]");
        ok("zero=0", "map[zero:0]");
        let m = crate::helm::values::new_table();
        parse_into("zero=0,one=1,lead=01", &m, false).unwrap();
        assert!(matches!(m.get("zero"), Some(Value::Int64(0))));
        assert!(matches!(m.get("one"), Some(Value::Int64(1))));
        assert!(matches!(m.get("lead"), Some(Value::Str(_))));
        ok("leading_zeros=00009", "map[leading_zeros:00009]");
        ok("name1=value1,name2=value2", "map[name1:value1 name2:value2]");
        ok("outer.inner=value", "map[outer:map[inner:value]]");
        ok(
            "outer.middle.inner=value",
            "map[outer:map[middle:map[inner:value]]]",
        );
        ok(
            "name1.name2=value1,name1.name3=value2",
            "map[name1:map[name2:value1 name3:value2]]",
        );
        ok("name1={value1,value2}", "map[name1:[value1 value2]]");
        ok("list[0]=foo,list[1]=bar", "map[list:[foo bar]]");
        ok("list[1]=foo", "map[list:[<nil> foo]]");
        ok(
            "list[0].foo=bar,list[0].hello=world",
            "map[list:[map[foo:bar hello:world]]]",
        );
        ok("nested[0][0]=1", "map[nested:[[1]]]");
        ok("a=1,list[0].name=x", "map[a:1 list:[map[name:x]]]");
        ok("list[1].a.b=x", "map[list:[<nil> map[a:map[b:x]]]]");
        ok("name=one\\,two", "map[name:one,two]");
        ok("a=b=c", "map[a:b=c]");
        ok("noval=", "map[noval:]");
        ok("x.y\\.z=1", "map[x:map[y.z:1]]");
        assert_eq!(parse("age=42", true), Ok("map[age:42]".into()));
        assert!(parse("name", false).unwrap_err().contains("has no value"));
        assert!(parse("name1=,name2", false).unwrap_err().contains("has no value"));
        assert!(parse("list[-1]=x", false).unwrap_err().contains("negative"));
    }
}
