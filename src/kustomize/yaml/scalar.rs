//! Scalar typing. A plain scalar is typed as yaml.v3 (kustomize's YAML
//! library) types it; on output kustomize passes every object through JSON
//! and yaml.v2, so [`output`] gives the value those conversions leave and
//! [`plain_is_string`] says whether yaml.v2 may write a string unquoted.

use std::borrow::Cow;

use super::{Scalar, Tag};

/// The type yaml.v3 gives a plain scalar.
pub fn resolve_plain(s: &str) -> Tag {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Tag::Null,
        "true" | "True" | "TRUE" | "false" | "False" | "FALSE" => return Tag::Bool,
        ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" | "-.inf"
        | "-.Inf" | "-.INF" => return Tag::Float,
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => {
            if dot_float(s) {
                Tag::Float
            } else {
                Tag::Str
            }
        }
        b'0'..=b'9' | b'+' | b'-' => {
            if timestamp(s).is_some() {
                return Tag::Timestamp;
            }
            let plain = s.replace('_', "");
            if go_int(&plain).is_some() || binary_or_octal(&plain).is_some() {
                Tag::Int
            } else if yaml_style_float(&plain) && decimal_float(&plain).is_some() {
                Tag::Float
            } else {
                Tag::Str
            }
        }
        _ => Tag::Str,
    }
}

/// A number read as Go's `strconv.ParseInt(s, 0, 64)` (or ParseUint) reads it.
fn go_int(s: &str) -> Option<i128> {
    let (neg, rest) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(r) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = rest.strip_prefix("0o").or_else(|| rest.strip_prefix("0O")) {
        (8, r)
    } else if let Some(r) = rest.strip_prefix("0b").or_else(|| rest.strip_prefix("0B")) {
        (2, r)
    } else if rest.len() > 1 && rest.starts_with('0') {
        (8, &rest[1..])
    } else {
        (10, rest)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let v = u128::from_str_radix(digits, radix).ok()?;
    let v = i128::try_from(v).ok()?;
    let v = if neg { -v } else { v };
    // ParseInt's range, or ParseUint's (which takes no sign).
    let fits_i64 = v >= i64::MIN as i128 && v <= i64::MAX as i128;
    let fits_u64 = !s.starts_with(['+', '-']) && v >= 0 && v <= u64::MAX as i128;
    (fits_i64 || fits_u64).then_some(v)
}

/// yaml.v3's own `0b…`/`0o…` fallbacks (reached only when ParseInt failed).
fn binary_or_octal(s: &str) -> Option<i128> {
    for (prefix, radix, neg) in [
        ("0b", 2, false),
        ("-0b", 2, true),
        ("0o", 8, false),
        ("-0o", 8, true),
    ] {
        if let Some(d) = s.strip_prefix(prefix)
            && !d.is_empty()
        {
            let v = i64::from_str_radix(d, radix).ok().map(i128::from).or_else(|| {
                (!neg)
                    .then(|| u64::from_str_radix(d, radix).ok().map(i128::from))
                    .flatten()
            })?;
            return Some(if neg { -v } else { v });
        }
    }
    None
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// A float starting with `.` that Go's ParseFloat reads.
fn dot_float(s: &str) -> bool {
    yaml_style_float(s) && decimal_float(s).is_some()
}

/// A finite decimal float (Go's ParseFloat fails on overflow).
fn decimal_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A timestamp as yaml.v3 reads one: `2006-1-2`, `2006-1-2T15:4:5.999Z07:00`
/// (or lower-case `t`), `2006-1-2 15:4:5.999`. Gives its RFC 3339 form, as
/// Go's JSON encoding writes a `time.Time`.
pub fn timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut i = 5;
    let num = |i: &mut usize, max_digits: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && *i - start < max_digits && b[*i].is_ascii_digit() {
            *i += 1;
        }
        (*i > start).then(|| s[start..*i].parse().ok()).flatten()
    };
    let year: u32 = s[..4].parse().ok()?;
    let month = num(&mut i, 2)?;
    if i >= b.len() || b[i] != b'-' {
        return None;
    }
    i += 1;
    let day = num(&mut i, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in(year, month) {
        return None;
    }
    if i == b.len() {
        return Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"));
    }
    let with_zone = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return None,
    };
    i += 1;
    let hour = num(&mut i, 2)?;
    if i >= b.len() || b[i] != b':' {
        return None;
    }
    i += 1;
    let minute = num(&mut i, 2)?;
    if i >= b.len() || b[i] != b':' {
        return None;
    }
    i += 1;
    let second = num(&mut i, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut frac = String::new();
    if i + 1 < b.len() && (b[i] == b'.' || b[i] == b',') && b[i + 1].is_ascii_digit() {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac = s[start..i.min(start + 9)].trim_end_matches('0').to_string();
    }
    let zone = if with_zone {
        match b.get(i) {
            Some(b'Z') => {
                i += 1;
                "Z".to_string()
            }
            Some(b'+' | b'-') => {
                let z = s.get(i..i + 6)?;
                let zb = z.as_bytes();
                if !(zb[1..3].iter().all(u8::is_ascii_digit)
                    && zb[3] == b':'
                    && zb[4..6].iter().all(u8::is_ascii_digit))
                {
                    return None;
                }
                i += 6;
                if &z[1..] == "00:00" {
                    "Z".to_string()
                } else {
                    z.to_string()
                }
            }
            _ => return None,
        }
    } else {
        "Z".to_string()
    };
    if i != b.len() {
        return None;
    }
    let frac = if frac.is_empty() { frac } else { format!(".{frac}") };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{frac}{zone}"
    ))
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A scalar as it comes out of kustomize's YAML → JSON → YAML round trip.
#[derive(Debug, PartialEq)]
pub enum Out<'a> {
    Null,
    Bool(bool),
    /// A number, already formatted as yaml.v2 writes it.
    Number(String),
    Str(Cow<'a, str>),
}

/// The output value of a scalar; an error for values JSON cannot hold
/// (`.inf`, `.nan`), as kustomize fails on them.
pub fn output(s: &Scalar) -> Result<Out<'_>, String> {
    Ok(match s.tag {
        Tag::Null => Out::Null,
        Tag::Bool => Out::Bool(matches!(s.text.as_str(), "true" | "True" | "TRUE")),
        Tag::Str => Out::Str(Cow::Borrowed(&s.text)),
        Tag::Timestamp => Out::Str(timestamp(&s.text).map_or(Cow::Borrowed(s.text.as_str()), Cow::Owned)),
        Tag::Int => {
            let plain = s.text.replace('_', "");
            match go_int(&plain).or_else(|| binary_or_octal(&plain)) {
                Some(v) => Out::Number(v.to_string()),
                None => Out::Str(Cow::Borrowed(&s.text)),
            }
        }
        Tag::Float => {
            let f = match s.text.as_str() {
                ".nan" | ".NaN" | ".NAN" => return Err("json: unsupported value: NaN".into()),
                ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                    return Err("json: unsupported value: +Inf".into());
                }
                "-.inf" | "-.Inf" | "-.INF" => return Err("json: unsupported value: -Inf".into()),
                t => match decimal_float(&t.replace('_', "")) {
                    Some(f) => f,
                    None => return Ok(Out::Str(Cow::Borrowed(&s.text))),
                },
            };
            Out::Number(float_out(f))
        }
    })
}

/// A JSON number as kustomize writes it (integers as they are, floats as
/// [`float_out`] writes them).
pub fn json_number(n: &serde_json::Number) -> String {
    match n.as_f64() {
        Some(f) if !(n.is_i64() || n.is_u64()) => float_out(f),
        _ => n.to_string(),
    }
}

/// A float as Go's JSON encoding writes it and yaml.v2 then reads and writes it.
fn float_out(f: f64) -> String {
    let json = go_json_float(f);
    if !json.contains(['.', 'e', 'E']) {
        if let Ok(v) = json.parse::<i64>() {
            return v.to_string();
        }
        if let Ok(v) = json.parse::<u64>() {
            return v.to_string();
        }
    }
    let v: f64 = json.parse().unwrap_or(f);
    let (digits, dp) = shortest(v);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        fmt_e(v < 0.0, &digits, dp)
    } else {
        fmt_f(v < 0.0, &digits, dp)
    }
}

/// Go's `encoding/json` float64 format.
fn go_json_float(f: f64) -> String {
    let (digits, dp) = shortest(f);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let mut s = fmt_e(f < 0.0, &digits, dp);
        // e-09 → e-9
        let n = s.len();
        if n >= 4 && &s[n - 4..n - 1] == "e-0" {
            s.remove(n - 2);
        }
        s
    } else {
        fmt_f(f < 0.0, &digits, dp)
    }
}

/// The shortest decimal digits of `f` and the position of the decimal
/// point (value = 0.DIGITS × 10^dp).
fn shortest(f: f64) -> (String, i32) {
    if f == 0.0 {
        return ("0".into(), 1);
    }
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

fn fmt_e(neg: bool, digits: &str, dp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    let exp = dp - 1;
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f(neg: bool, digits: &str, dp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let d = digits.as_bytes();
    let digit = |i: i32| {
        if i >= 0 && (i as usize) < d.len() {
            d[i as usize] as char
        } else {
            '0'
        }
    };
    if dp > 0 {
        for i in 0..dp {
            s.push(digit(i));
        }
    } else {
        s.push('0');
    }
    let prec = (d.len() as i32 - dp).max(0);
    if prec > 0 {
        s.push('.');
        for i in 0..prec {
            s.push(digit(dp + i));
        }
    }
    s
}

/// The string a Go `string` field gets from this scalar when kustomize
/// reads its own files (sigs.k8s.io/yaml: yaml.v2's YAML 1.1 typing, then
/// numbers and booleans turned back into text); `None` for null.
pub fn v2_string(s: &Scalar) -> Option<String> {
    if !s.plain {
        return Some(s.text.clone());
    }
    Some(match v2_type(&s.text) {
        V2::Null => return None,
        V2::Bool(b) => b.to_string(),
        V2::Int(i) => i.to_string(),
        V2::Float(f) => {
            let f = f as f32;
            if f.is_infinite() {
                if f > 0.0 { ".inf".into() } else { "-.inf".into() }
            } else if f.is_nan() {
                ".nan".into()
            } else {
                let (digits, dp) = shortest32(f);
                let exp = dp - 1;
                if !(-4..6).contains(&exp) {
                    fmt_e(f < 0.0, &digits, dp)
                } else {
                    fmt_f(f < 0.0, &digits, dp)
                }
            }
        }
        V2::Str => s.text.clone(),
    })
}

/// Retype the plain scalars of a tree as yaml.v2 types them (kustomize
/// reads JSON patches written in YAML that way).
pub fn v2_retype(node: &mut super::Node) {
    match &mut node.value {
        super::Value::Scalar(s) if s.plain => {
            let (tag, text) = match v2_type(&s.text) {
                V2::Null => (Tag::Null, String::new()),
                V2::Bool(b) => (Tag::Bool, b.to_string()),
                V2::Int(i) => (Tag::Int, i.to_string()),
                V2::Float(f) if f.is_finite() => (Tag::Float, format!("{f:e}")),
                V2::Float(_) => (Tag::Float, s.text.clone()),
                V2::Str => (Tag::Str, s.text.clone()),
            };
            s.tag = tag;
            s.text = text;
        }
        super::Value::Scalar(_) => {}
        super::Value::Seq(items) => items.iter_mut().for_each(v2_retype),
        super::Value::Map(entries) => entries.iter_mut().for_each(|e| v2_retype(&mut e.value)),
    }
}

/// What yaml.v2 (which kustomize reads its own files with) makes of a
/// scalar: "string", "boolean", "number" or "null".
pub fn v2_kind(s: &Scalar) -> &'static str {
    if !s.plain {
        return "string";
    }
    match v2_type(&s.text) {
        V2::Null => "null",
        V2::Bool(_) => "boolean",
        V2::Int(_) | V2::Float(_) => "number",
        V2::Str => "string",
    }
}

/// A plain scalar's boolean under yaml.v2's rules, if it is one.
pub fn v2_bool(s: &Scalar) -> Option<bool> {
    match v2_type(&s.text) {
        V2::Bool(b) if s.plain => Some(b),
        _ => None,
    }
}

/// A plain scalar's integer under yaml.v2's rules, if it is one.
pub fn v2_int(s: &Scalar) -> Option<i64> {
    match v2_type(&s.text) {
        V2::Int(i) if s.plain => i64::try_from(i).ok(),
        V2::Float(f) if s.plain && f.fract() == 0.0 && f.abs() < 9.0e15 => Some(f as i64),
        _ => None,
    }
}

enum V2 {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str,
}

fn v2_type(s: &str) -> V2 {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return V2::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return V2::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return V2::Null,
        ".nan" | ".NaN" | ".NAN" => return V2::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return V2::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return V2::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => s
            .parse::<f64>()
            .ok()
            .filter(|_| dot_float(s))
            .map_or(V2::Str, V2::Float),
        b'0'..=b'9' | b'+' | b'-' => {
            if timestamp(s).is_some() {
                return V2::Str;
            }
            let plain = s.replace('_', "");
            if let Some(i) = go_int(&plain) {
                return V2::Int(i);
            }
            if yaml_style_float(&plain)
                && let Some(f) = decimal_float(&plain)
            {
                return V2::Float(f);
            }
            if let Some(d) = plain.strip_prefix("0b")
                && let Ok(i) = u64::from_str_radix(d, 2)
            {
                return V2::Int(i128::from(i));
            }
            if let Some(d) = plain.strip_prefix("-0b")
                && let Ok(i) = i64::from_str_radix(d, 2)
            {
                return V2::Int(-i128::from(i));
            }
            V2::Str
        }
        _ => V2::Str,
    }
}

fn shortest32(f: f32) -> (String, i32) {
    if f == 0.0 {
        return ("0".into(), 1);
    }
    let e = format!("{:e}", f.abs());
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

/// Whether yaml.v2 writes this string as a plain scalar (it would read back
/// as a string under yaml.v2's YAML 1.1 rules), before the emitter's own
/// checks of the characters.
pub fn plain_is_string(s: &str) -> bool {
    v2_resolves_to_string(s) && !crate::goyaml::is_base60_float(s)
}

fn v2_resolves_to_string(s: &str) -> bool {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "n" | "N"
        | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" | "" | "~" | "null"
        | "Null" | "NULL" | ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf"
        | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | "<<" => return false,
        _ => {}
    }
    match s.as_bytes()[0] {
        b'.' => !dot_float(s),
        b'0'..=b'9' | b'+' | b'-' => {
            if timestamp(s).is_some() {
                return false;
            }
            let plain = s.replace('_', "");
            if go_int(&plain).is_some() || (yaml_style_float(&plain) && decimal_float(&plain).is_some()) {
                return false;
            }
            // yaml.v2's `0b…` fallback (it has no `0o…` one).
            for (prefix, neg) in [("0b", false), ("-0b", true)] {
                if let Some(d) = plain.strip_prefix(prefix)
                    && !d.is_empty()
                    && (i64::from_str_radix(d, 2).is_ok() || (!neg && u64::from_str_radix(d, 2).is_ok()))
                {
                    return false;
                }
            }
            true
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(text: &str) -> String {
        let s = Scalar {
            text: text.into(),
            tag: resolve_plain(text),
            plain: true,
        };
        match output(&s) {
            Ok(Out::Null) => "null".into(),
            Ok(Out::Bool(b)) => b.to_string(),
            Ok(Out::Number(n)) => n,
            Ok(Out::Str(s)) => format!("'{s}'"),
            Err(e) => e,
        }
    }

    #[test]
    fn plain_scalars_as_kustomize_writes_them() {
        // Each pair checked against `kubectl kustomize` (kustomize v5.5).
        for (input, want) in [
            ("1.0", "1"),
            ("yes", "'yes'"),
            ("0x10", "16"),
            ("1e3", "1000"),
            ("012", "10"),
            ("08", "8"),
            ("~", "null"),
            ("2020-01-01", "'2020-01-01T00:00:00Z'"),
            ("2001-12-14t21:59:43.10-05:00", "'2001-12-14T21:59:43.1-05:00'"),
            ("2001-12-14 21:59:43.10", "'2001-12-14T21:59:43.1Z'"),
            ("123456789012345678901234567890", "1.2345678901234568e+29"),
            ("1_000", "1000"),
            ("1.5", "1.5"),
            ("1234567.5", "1.2345675e+06"),
            ("0.0000001", "1e-07"),
            ("-0.0", "0"),
            ("18446744073709551615", "18446744073709551615"),
            ("100000000000000000000", "1e+20"),
            (".5", "0.5"),
            ("0o17", "15"),
            ("0b101", "5"),
            ("True", "true"),
            ("1:20", "'1:20'"),
            ("2020-13-01", "'2020-13-01'"),
            (".inf", "json: unsupported value: +Inf"),
            ("+12", "12"),
            ("1e400", "'1e400'"),
        ] {
            assert_eq!(out(input), want, "{input}");
        }
    }

    #[test]
    fn strings_yaml_v2_would_misread_are_quoted() {
        for s in [
            "yes",
            "on",
            "n",
            "true",
            "null",
            "",
            "~",
            "1",
            "1.0",
            "0x1F",
            "1e3",
            "1:20",
            "2020-01-01",
            "0b101",
            ".5",
            "+1",
            "1_000",
            "<<",
            "0o17",
        ] {
            assert!(!plain_is_string(s), "{s}");
        }
        for s in ["yess", "a", "1.2.3", "+", "-", "1:2:3a", "v1", "2020-1"] {
            assert!(plain_is_string(s), "{s}");
        }
    }
}
