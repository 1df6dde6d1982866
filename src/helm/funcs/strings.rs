//! Sprig's string functions (`strings.go`, and the goutils and xstrings
//! helpers it calls).

use std::rc::Rc;

use super::{FnResult, FuncDef, Ty, err, f, int, s, strval, v};
use crate::helm::gofmt;
use crate::helm::value::{Entries, Map, MapKind, MapRef, Value};

/// The longest string `repeat` and friends may build.
const MAX_STRING: usize = 64 << 20;

fn text(s: String) -> FnResult {
    if s.len() > MAX_STRING {
        return err(format!("string too long: more than {MAX_STRING} bytes"));
    }
    Ok(Value::string(s))
}

/// A byte range of `s` as Go slices strings: on bytes. A cut through a
/// character leaves a replacement character, as Go would leave a stray byte.
fn byte_slice(s: &str, from: usize, to: usize) -> String {
    String::from_utf8_lossy(&s.as_bytes()[from..to]).into_owned()
}

pub const FUNCS: &[FuncDef] = &[
    f("hello", &[], |_, _| Ok(Value::str("Hello!"))),
    f("abbrev", &[Ty::Int, Ty::Str], |_, a| {
        let (w, s) = (int(&a[0]), s(&a[1]));
        if w < 4 || s.len() <= w as usize {
            return Ok(Value::str(s));
        }
        Ok(Value::string(byte_slice(s, 0, w as usize - 3) + "..."))
    }),
    f("abbrevboth", &[Ty::Int, Ty::Int, Ty::Str], |_, a| {
        let (left, right, s) = (int(&a[0]), int(&a[1]), s(&a[2]));
        if right < 4 || left > 0 && right < 7 {
            return Ok(Value::str(s));
        }
        Ok(Value::string(abbreviate_full(s, left, right)))
    }),
    f("trunc", &[Ty::Int, Ty::Str], |_, a| {
        let (c, s) = (int(&a[0]), s(&a[1]));
        let len = s.len() as i64;
        if c < 0 && len + c > 0 {
            return Ok(Value::string(byte_slice(s, (len + c) as usize, s.len())));
        }
        if c >= 0 && len > c {
            return Ok(Value::string(byte_slice(s, 0, c as usize)));
        }
        Ok(Value::str(s))
    }),
    f("trim", &[Ty::Str], |_, a| Ok(Value::str(go_trim_space(s(&a[0]))))),
    f("upper", &[Ty::Str], |_, a| Ok(Value::string(go_upper(s(&a[0]))))),
    f("lower", &[Ty::Str], |_, a| Ok(Value::string(go_lower(s(&a[0]))))),
    f("title", &[Ty::Str], |_, a| Ok(Value::string(title(s(&a[0]))))),
    f("untitle", &[Ty::Str], |_, a| Ok(Value::string(untitle(s(&a[0]))))),
    f("substr", &[Ty::Int, Ty::Int, Ty::Str], |_, a| {
        let (start, end, s) = (int(&a[0]), int(&a[1]), s(&a[2]));
        let len = s.len() as i64;
        let (from, to) = if start < 0 {
            (0, end)
        } else if end < 0 || end > len {
            (start, len)
        } else {
            (start, end)
        };
        if from < 0 || to < 0 || from > to || to > len {
            return err(format!(
                "runtime error: slice bounds out of range [{from}:{to}] with length {len}"
            ));
        }
        Ok(Value::string(byte_slice(s, from as usize, to as usize)))
    }),
    f("repeat", &[Ty::Int, Ty::Str], |_, a| {
        let (n, s) = (int(&a[0]), s(&a[1]));
        if n < 0 {
            return err("strings: negative Repeat count");
        }
        if (n as u128) * (s.len() as u128) > MAX_STRING as u128 {
            return err(format!("string too long: more than {MAX_STRING} bytes"));
        }
        text(s.repeat(n as usize))
    }),
    f("trimall", &[Ty::Str, Ty::Str], |_, a| {
        Ok(Value::str(go_trim(s(&a[1]), s(&a[0]))))
    }),
    f("trimAll", &[Ty::Str, Ty::Str], |_, a| {
        Ok(Value::str(go_trim(s(&a[1]), s(&a[0]))))
    }),
    f("trimSuffix", &[Ty::Str, Ty::Str], |_, a| {
        let (suf, s) = (s(&a[0]), s(&a[1]));
        Ok(Value::str(s.strip_suffix(suf).unwrap_or(s)))
    }),
    f("trimPrefix", &[Ty::Str, Ty::Str], |_, a| {
        let (pre, s) = (s(&a[0]), s(&a[1]));
        Ok(Value::str(s.strip_prefix(pre).unwrap_or(s)))
    }),
    f("nospace", &[Ty::Str], |_, a| {
        Ok(Value::string(
            s(&a[0]).chars().filter(|c| !c.is_whitespace()).collect(),
        ))
    }),
    f("initials", &[Ty::Str], |_, a| {
        Ok(Value::string(
            s(&a[0])
                .split(char::is_whitespace)
                .filter_map(|w| w.chars().next())
                .collect(),
        ))
    }),
    f("swapcase", &[Ty::Str], |_, a| {
        Ok(Value::string(swapcase(s(&a[0]))))
    }),
    f("snakecase", &[Ty::Str], |_, a| {
        Ok(Value::string(snake_case(s(&a[0]), '_')))
    }),
    f("kebabcase", &[Ty::Str], |_, a| {
        Ok(Value::string(snake_case(s(&a[0]), '-')))
    }),
    f("camelcase", &[Ty::Str], |_, a| {
        Ok(Value::string(camel_case(s(&a[0]))))
    }),
    f("wrap", &[Ty::Int, Ty::Str], |_, a| {
        Ok(Value::string(wrap(s(&a[1]), int(&a[0]), "\n", false)))
    }),
    f("wrapWith", &[Ty::Int, Ty::Str, Ty::Str], |_, a| {
        Ok(Value::string(wrap(s(&a[2]), int(&a[0]), s(&a[1]), true)))
    }),
    f("contains", &[Ty::Str, Ty::Str], |_, a| {
        Ok(Value::Bool(s(&a[1]).contains(s(&a[0]))))
    }),
    f("hasPrefix", &[Ty::Str, Ty::Str], |_, a| {
        Ok(Value::Bool(s(&a[1]).starts_with(s(&a[0]))))
    }),
    f("hasSuffix", &[Ty::Str, Ty::Str], |_, a| {
        Ok(Value::Bool(s(&a[1]).ends_with(s(&a[0]))))
    }),
    v("quote", &[], Ty::Any, |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|x| !x.is_nil())
            .map(|x| gofmt::quote(&strval(x)))
            .collect();
        Ok(Value::string(parts.join(" ")))
    }),
    v("squote", &[], Ty::Any, |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|x| !x.is_nil())
            .map(|x| format!("'{}'", strval(x)))
            .collect();
        Ok(Value::string(parts.join(" ")))
    }),
    v("cat", &[], Ty::Any, |_, a| {
        let parts: Vec<String> = a
            .iter()
            .filter(|x| !x.is_nil())
            .map(gofmt::sprint_value)
            .collect();
        Ok(Value::string(parts.join(" ")))
    }),
    f("indent", &[Ty::Int, Ty::Str], |_, a| {
        indent(int(&a[0]), s(&a[1]), false)
    }),
    f("nindent", &[Ty::Int, Ty::Str], |_, a| {
        indent(int(&a[0]), s(&a[1]), true)
    }),
    f("replace", &[Ty::Str, Ty::Str, Ty::Str], |_, a| {
        let (old, new, src) = (s(&a[0]), s(&a[1]), s(&a[2]));
        if old.is_empty() {
            // Go inserts `new` before every character and at the end.
            let mut out = String::new();
            for c in src.chars() {
                out.push_str(new);
                out.push(c);
            }
            out.push_str(new);
            return text(out);
        }
        text(src.replace(old, new))
    }),
    f("plural", &[Ty::Str, Ty::Str, Ty::Int], |_, a| {
        Ok(if int(&a[2]) == 1 {
            a[0].clone()
        } else {
            a[1].clone()
        })
    }),
    f("toString", &[Ty::Any], |_, a| Ok(Value::string(strval(&a[0])))),
    f("atoi", &[Ty::Str], |_, a| {
        let t = s(&a[0]);
        let n = if t.starts_with(['+', '-']) || t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse::<i64>().unwrap_or(0)
        } else {
            0
        };
        Ok(Value::Int(n))
    }),
    f("split", &[Ty::Str, Ty::Str], |_, a| {
        let parts = go_split(s(&a[1]), s(&a[0]), -1);
        Ok(indexed_map(parts))
    }),
    f("splitList", &[Ty::Str, Ty::Str], |_, a| {
        Ok(super::list_of_strings(go_split(s(&a[1]), s(&a[0]), -1)))
    }),
    f("splitn", &[Ty::Str, Ty::Int, Ty::Str], |_, a| {
        Ok(indexed_map(go_split(s(&a[2]), s(&a[0]), int(&a[1]))))
    }),
    f("toStrings", &[Ty::Any], |_, a| {
        Ok(super::list_of_strings(strslice(&a[0])))
    }),
    f("join", &[Ty::Str, Ty::Any], |_, a| {
        Ok(Value::string(strslice(&a[1]).join(s(&a[0]))))
    }),
    f("sortAlpha", &[Ty::Any], |_, a| {
        let mut items = match &a[0] {
            Value::List(_) | Value::Bytes(_) => strslice(&a[0]),
            other => vec![strval(other)],
        };
        items.sort();
        Ok(super::list_of_strings(items))
    }),
    f("shuffle", &[Ty::Str], |_, a| {
        let mut chars: Vec<char> = s(&a[0]).chars().collect();
        for i in (1..chars.len()).rev() {
            let j = super::random::below(i as u64 + 1) as usize;
            chars.swap(i, j);
        }
        Ok(Value::string(chars.into_iter().collect()))
    }),
];

/// `indent` / `nindent`.
fn indent(n: i64, s: &str, newline: bool) -> FnResult {
    if n < 0 {
        return err("strings: negative Repeat count");
    }
    let pad = " ".repeat(n.min(MAX_STRING as i64) as usize);
    let lines = s.matches('\n').count() + 1;
    if lines.saturating_mul(pad.len()) > MAX_STRING {
        return err(format!("string too long: more than {MAX_STRING} bytes"));
    }
    let mut out = String::with_capacity(s.len() + lines * pad.len() + 1);
    if newline {
        out.push('\n');
    }
    out.push_str(&pad);
    let mut first = true;
    for line in s.split('\n') {
        if !first {
            out.push('\n');
            out.push_str(&pad);
        }
        first = false;
        out.push_str(line);
    }
    text(out)
}

/// A `map[string]string` of `_0`, `_1`, … (Sprig's `split`).
fn indexed_map(parts: Vec<String>) -> Value {
    let entries: Entries = parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| (Rc::from(format!("_{i}")), Value::string(p)))
        .collect();
    Value::Map(MapRef::new(Map {
        kind: MapKind::Strings,
        entries,
    }))
}

/// Go's `strings.SplitN` (n < 0: all).
pub fn go_split(s: &str, sep: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let chars: Vec<String> = s.chars().map(String::from).collect();
        if n > 0 && chars.len() > n as usize {
            let n = n as usize;
            let mut out: Vec<String> = chars[..n - 1].to_vec();
            out.push(chars[n - 1..].concat());
            return out;
        }
        return chars;
    }
    if n < 0 {
        return s.split(sep).map(String::from).collect();
    }
    s.splitn(n as usize, sep).map(String::from).collect()
}

/// Sprig's `strslice`: a slice's non-nil items as strings; anything else
/// as one string; nil as none.
pub fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.items.iter().filter(|x| !x.is_nil()).map(strval).collect(),
        Value::Bytes(b) => b.iter().map(|x| x.to_string()).collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// Go's `strings.ToUpper`: simple case mapping, one character for one.
pub fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut u = c.to_uppercase();
            match (u.next(), u.next()) {
                (Some(x), None) => x,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToLower`.
pub fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut l = c.to_lowercase();
            match (l.next(), l.next()) {
                (Some(x), None) => x,
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.TrimSpace`.
pub fn go_trim_space(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace())
}

/// Go's `strings.Trim(s, cutset)`.
fn go_trim<'a>(s: &'a str, cutset: &str) -> &'a str {
    s.trim_matches(|c: char| cutset.contains(c))
}

/// Go's (deprecated) `strings.Title`.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev = ' ';
    for c in s.chars() {
        if is_separator(prev) {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev = c;
    }
    out
}

fn is_separator(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_alphanumeric() || c == '_');
    }
    if c.is_alphanumeric() {
        return false;
    }
    c.is_whitespace()
}

/// goutils' `Uncapitalize`: the first letter of each word in lower case.
fn untitle(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_whitespace() {
            start = true;
            out.push(c);
        } else if start {
            out.extend(c.to_lowercase());
            start = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// goutils' `SwapCase`.
fn swapcase(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_uppercase() {
            out.extend(c.to_lowercase());
        } else if c.is_lowercase() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// xstrings' `ToSnakeCase` / `ToKebabCase`.
fn snake_case(s: &str, sep: char) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let n = chars.len();
    // Skip leading separators.
    while i < n && is_word_sep(chars[i]) {
        i += 1;
    }
    let mut prev_lower = false;
    let mut prev_sep = false;
    while i < n {
        let c = chars[i];
        if is_word_sep(c) {
            prev_sep = true;
            i += 1;
            continue;
        }
        if prev_sep && !out.is_empty() {
            out.push(sep);
            prev_lower = false;
        }
        prev_sep = false;
        if c.is_uppercase() {
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let prev_upper = i > 0 && chars[i - 1].is_uppercase();
            if !out.is_empty()
                && !out.ends_with(sep)
                && (prev_lower || (prev_upper && next_lower) || chars[i - 1].is_ascii_digit())
            {
                out.push(sep);
            }
            out.extend(c.to_lowercase());
            prev_lower = false;
        } else {
            out.push(c);
            prev_lower = c.is_lowercase() || c.is_ascii_digit();
        }
        i += 1;
    }
    out
}

fn is_word_sep(c: char) -> bool {
    matches!(c, '_' | '-' | ' ' | '.') || c.is_whitespace()
}

/// xstrings' `ToCamelCase`: `foo_bar` → `FooBar`.
fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = true;
    let mut prev_underscore = false;
    for (i, c) in s.chars().enumerate() {
        if c == '_' {
            if prev_underscore || i == 0 {
                out.push('_');
            }
            prev_underscore = true;
            upper = true;
            continue;
        }
        prev_underscore = false;
        if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// goutils' `AbbreviateFull`.
fn abbreviate_full(s: &str, offset: i64, max_width: i64) -> String {
    let len = s.len() as i64;
    let max_width = max_width.max(4);
    if len <= max_width {
        return s.to_string();
    }
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    let abrev = "...";
    if offset <= 4 {
        return byte_slice(s, 0, (max_width - 3) as usize) + abrev;
    }
    if max_width < 7 {
        return s.to_string();
    }
    if offset + max_width - 3 < len {
        let rest = byte_slice(s, offset as usize, s.len());
        return abrev.to_string() + &abbreviate_full(&rest, 0, max_width - 3);
    }
    abrev.to_string() + &byte_slice(s, (len - (max_width - 3)) as usize, s.len())
}

/// goutils' `WrapCustom`.
fn wrap(s: &str, width: i64, newline: &str, long_words: bool) -> String {
    let width = width.max(1) as usize;
    let input: Vec<char> = s.chars().collect();
    let len = input.len();
    let mut out = String::with_capacity(s.len() + 16);
    let mut offset = 0;
    while len - offset > width {
        if input[offset] == ' ' {
            offset += 1;
            continue;
        }
        let end = (offset + width + 1).min(len);
        let window: String = input[offset..end].iter().collect();
        let space = window.chars().collect::<Vec<_>>().iter().rposition(|c| *c == ' ');
        match space {
            Some(sp) if sp > 0 => {
                out.extend(&input[offset..offset + sp]);
                out.push_str(newline);
                offset += sp + 1;
            }
            _ => {
                if long_words {
                    out.extend(&input[offset..offset + width]);
                    out.push_str(newline);
                    offset += width;
                } else {
                    let rest: String = input[offset + width..].iter().collect();
                    match rest.find(' ') {
                        Some(i) => {
                            let i = rest[..i].chars().count() + width;
                            out.extend(&input[offset..offset + i]);
                            out.push_str(newline);
                            offset += i + 1;
                        }
                        None => {
                            out.extend(&input[offset..]);
                            offset = len;
                        }
                    }
                }
            }
        }
    }
    out.extend(&input[offset..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_every_line() {
        assert_eq!(indent(2, "a\nb", false).unwrap().as_str(), Some("  a\n  b"));
        assert_eq!(indent(2, "a\n", true).unwrap().as_str(), Some("\n  a\n  "));
    }

    #[test]
    fn case_helpers() {
        assert_eq!(title("hello world-foo"), "Hello World-Foo");
        assert_eq!(untitle("Hello World"), "hello world");
        assert_eq!(snake_case("FirstName", '_'), "first_name");
        assert_eq!(snake_case("HTTPServer", '_'), "http_server");
        assert_eq!(camel_case("http_server"), "HttpServer");
        assert_eq!(swapcase("This Is A.Test"), "tHIS iS a.tEST");
    }

    #[test]
    fn split_like_go() {
        assert_eq!(go_split("a,b,c", ",", 2), vec!["a", "b,c"]);
        assert_eq!(go_split("abc", "", -1), vec!["a", "b", "c"]);
        assert_eq!(go_split("", ",", -1), vec![""]);
    }

    #[test]
    fn wraps_words() {
        assert_eq!(
            wrap("Hello world, I am Sprig", 5, "\n", false),
            "Hello\nworld,\nI am\nSprig"
        );
    }
}
