//! YAML as Helm reads and writes it.
//!
//! Reading is `sigs.k8s.io/yaml`'s: the first document is decoded as
//! go-yaml v2 decodes into `interface{}` (YAML 1.1 scalars: `yes`, `on`,
//! `y` are booleans, `0x1f` and `017` integers, `<<` merges), then goes
//! through JSON: keys become strings, every number a `float64`.
//!
//! Writing is `toYaml`'s: the value goes through JSON (so `3.0` is written
//! `3`), then go-yaml v2's emitter writes it: block style, keys in its
//! natural order (`a2` before `a10`), strings quoted only where a plain
//! scalar would read back as something else, long lines folded at 80
//! columns.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use granit_parser::{Event, Parser, ScalarStyle};

use super::gofmt;
use super::value::{Entries, MapKind, StructType, Value};

/// The most nodes one document may expand to (aliases included).
const MAX_NODES: usize = 5_000_000;
/// The deepest nesting read.
const MAX_DEPTH: usize = 1000;

/// A YAML node as go-yaml v2 decodes it into `interface{}`.
#[derive(Debug, Clone)]
pub enum Raw {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    Binary(Vec<u8>),
    Seq(Vec<Raw>),
    Map(Vec<(Raw, Raw)>),
}

/// A YAML syntax or type error, with its 1-based line.
#[derive(Debug, Clone)]
pub struct Error {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "yaml: line {}: {}", self.line, self.message)
        } else {
            write!(f, "yaml: {}", self.message)
        }
    }
}

// ---- reading ------------------------------------------------------------------------

/// The documents of a stream, decoded as go-yaml v2 would; `None` for an
/// empty document.
pub fn parse_documents(text: &str, max_docs: usize) -> Result<Vec<Option<Raw>>, Error> {
    let mut b = Builder {
        anchors: HashMap::new(),
        nodes: 0,
    };
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut in_doc = false;
    let mut root: Option<Raw> = None;
    let mut options = granit_parser::Options::default();
    // libyaml (and so go-yaml) ends a block scalar at the end of the input
    // without adding a line break.
    options.block_scalar_eof_without_line_feed = true;
    options.set_emit_comments(false);
    for ev in Parser::new_from_str_with_options(text, options) {
        let (ev, span) = ev.map_err(|e| Error {
            line: e.marker().line(),
            message: e.info(),
        })?;
        let line = span.start.line();
        match ev {
            Event::DocumentStart(..) => {
                in_doc = true;
                root = None;
                b.anchors.clear();
            }
            Event::DocumentEnd => {
                if in_doc {
                    docs.push(root.take());
                    if docs.len() >= max_docs {
                        return Ok(docs);
                    }
                }
                in_doc = false;
            }
            Event::Scalar(value, style, anchor, tag) => {
                let tag = tag.map(|t| tag_name(&t));
                let node = b.scalar(value, style, tag.as_deref(), line)?;
                if anchor > 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                b.count(1, line)?;
                push(&mut stack, &mut root, node, &mut b, line)?;
            }
            Event::Alias(id) => {
                let node = b.anchors.get(&id).cloned().ok_or_else(|| Error {
                    line,
                    message: "unknown anchor referenced".into(),
                })?;
                b.count(size(&node), line)?;
                push(&mut stack, &mut root, node, &mut b, line)?;
            }
            Event::SequenceStart(_, anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error {
                        line,
                        message: "exceeded max depth".into(),
                    });
                }
                let tag = tag.map(|t| tag_name(&t));
                check_collection_tag(tag.as_deref(), "!!seq", line)?;
                stack.push(Frame::Seq(anchor, Vec::new()));
            }
            Event::MappingStart(_, anchor, tag) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(Error {
                        line,
                        message: "exceeded max depth".into(),
                    });
                }
                let tag = tag.map(|t| tag_name(&t));
                check_collection_tag(tag.as_deref(), "!!map", line)?;
                stack.push(Frame::Map(anchor, Vec::new(), None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match stack.pop() {
                    Some(Frame::Seq(anchor, items)) => (anchor, Raw::Seq(items)),
                    Some(Frame::Map(anchor, pairs, _)) => (anchor, Raw::Map(pairs)),
                    None => continue,
                };
                let (anchor, node) = node;
                if anchor > 0 {
                    b.anchors.insert(anchor, node.clone());
                }
                b.count(1, line)?;
                push(&mut stack, &mut root, node, &mut b, line)?;
            }
            _ => {}
        }
    }
    Ok(docs)
}

/// The first document, as go-yaml v2's `Unmarshal` reads it.
pub fn parse_first(text: &str) -> Result<Option<Raw>, Error> {
    Ok(parse_documents(text, 1)?.into_iter().next().flatten())
}

enum Frame {
    Seq(usize, Vec<Raw>),
    Map(usize, Vec<(Raw, Raw)>, Option<Raw>),
}

struct Builder {
    anchors: HashMap<usize, Raw>,
    nodes: usize,
}

fn size(node: &Raw) -> usize {
    match node {
        Raw::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
        Raw::Map(pairs) => 1 + pairs.iter().map(|(k, v)| size(k) + size(v)).sum::<usize>(),
        _ => 1,
    }
}

fn tag_name(t: &granit_parser::Tag) -> String {
    if t.handle() == "tag:yaml.org,2002:" {
        format!("!!{}", t.suffix())
    } else if t.handle() == "!" {
        format!("!{}", t.suffix())
    } else {
        format!("{}{}", t.handle(), t.suffix())
    }
}

fn check_collection_tag(tag: Option<&str>, want: &str, line: usize) -> Result<(), Error> {
    match tag {
        Some(t) if t.starts_with("!!") && t != want => Err(Error {
            line,
            message: format!("cannot decode {want} as a {t}"),
        }),
        _ => Ok(()),
    }
}

fn push(
    stack: &mut [Frame],
    root: &mut Option<Raw>,
    node: Raw,
    _b: &mut Builder,
    _line: usize,
) -> Result<(), Error> {
    match stack.last_mut() {
        None => *root = Some(node),
        Some(Frame::Seq(_, items)) => items.push(node),
        Some(Frame::Map(_, pairs, key)) => match key.take() {
            None => *key = Some(node),
            Some(k) => {
                if matches!(&k, Raw::Str(s) if s == "<<") && is_merge_key(&k) {
                    merge(pairs, node);
                } else {
                    pairs.push((k, node));
                }
            }
        },
    }
    Ok(())
}

fn is_merge_key(_k: &Raw) -> bool {
    true
}

/// `<<: *a` or `<<: [*a, *b]` (the first listed wins).
fn merge(pairs: &mut Vec<(Raw, Raw)>, value: Raw) {
    match value {
        Raw::Map(m) => pairs.extend(m),
        Raw::Seq(items) => {
            for item in items.into_iter().rev() {
                if let Raw::Map(m) = item {
                    pairs.extend(m);
                }
            }
        }
        _ => {}
    }
}

impl Builder {
    fn count(&mut self, n: usize, line: usize) -> Result<(), Error> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(Error {
                line,
                message: "document contains excessive aliasing".into(),
            });
        }
        Ok(())
    }

    fn scalar(
        &mut self,
        value: Cow<str>,
        style: ScalarStyle,
        tag: Option<&str>,
        line: usize,
    ) -> Result<Raw, Error> {
        let plain = style == ScalarStyle::Plain;
        match tag {
            None if !plain => Ok(Raw::Str(value.into_owned())),
            None => Ok(resolve(&value)),
            Some("!!str") => Ok(Raw::Str(value.into_owned())),
            Some("!!binary") => {
                let clean: String = value.chars().filter(|c| !c.is_whitespace()).collect();
                base64::engine::general_purpose::STANDARD
                    .decode(clean.as_bytes())
                    .map(Raw::Binary)
                    .map_err(|e| Error {
                        line,
                        message: format!("!!binary value contains invalid base64 data: {e}"),
                    })
            }
            Some(t @ ("!!int" | "!!float" | "!!bool" | "!!null" | "!!timestamp")) => {
                let r = resolve(&value);
                let ok = matches!(
                    (t, &r),
                    ("!!int", Raw::Int(_) | Raw::Uint(_))
                        | ("!!float", Raw::Float(_) | Raw::Int(_) | Raw::Uint(_))
                        | ("!!bool", Raw::Bool(_))
                        | ("!!null", Raw::Null)
                        | ("!!timestamp", Raw::Str(_))
                );
                if !ok {
                    return Err(Error {
                        line,
                        message: format!("cannot decode !!str `{}` as a {t}", value),
                    });
                }
                Ok(match (t, r) {
                    ("!!float", Raw::Int(i)) => Raw::Float(i as f64),
                    ("!!float", Raw::Uint(u)) => Raw::Float(u as f64),
                    (_, r) => r,
                })
            }
            Some(_) => Ok(Raw::Str(value.into_owned())),
        }
    }
}

/// go-yaml v2's `resolve` of an untagged plain scalar.
pub fn resolve(s: &str) -> Raw {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Raw::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Raw::Bool(false);
        }
        "" | "~" | "null" | "Null" | "NULL" => return Raw::Null,
        ".nan" | ".NaN" | ".NAN" => return Raw::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Raw::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Raw::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => {
            if let Some(f) = go_parse_float(s) {
                return Raw::Float(f);
            }
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if looks_like_timestamp(s) {
                return Raw::Str(s.to_string());
            }
            let plain = s.replace('_', "");
            if let Some(i) = super::template::parse::parse_go_int(&plain) {
                return Raw::Int(i);
            }
            if let Some(u) = super::template::parse::parse_go_uint(&plain) {
                return Raw::Uint(u);
            }
            if yaml_style_float(&plain)
                && let Some(f) = go_parse_float(&plain)
            {
                return Raw::Float(f);
            }
            if let Some(b) = plain.strip_prefix("0b") {
                if let Ok(i) = i64::from_str_radix(b, 2) {
                    return Raw::Int(i);
                }
                if let Ok(u) = u64::from_str_radix(b, 2) {
                    return Raw::Uint(u);
                }
            } else if let Some(b) = plain.strip_prefix("-0b")
                && let Ok(i) = i64::from_str_radix(&format!("-{b}"), 2)
            {
                return Raw::Int(i);
            }
        }
        _ => {}
    }
    Raw::Str(s.to_string())
}

fn go_parse_float(s: &str) -> Option<f64> {
    super::template::parse::parse_go_float(s)
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    } else {
        if !digits(&mut i) {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml v2's timestamp forms: `2006-1-2`, with `T`/`t`/space and a time.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i != 4 || i == b.len() || b[i] != b'-' {
        return false;
    }
    parse_timestamp(s)
}

fn parse_timestamp(s: &str) -> bool {
    // YYYY-M-D, optionally followed by [Tt ]H:M:S[.frac][Z|±hh:mm]
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let num = |p: &str, min: usize, max: usize| {
        p.len() >= min && p.len() <= max && p.bytes().all(|c| c.is_ascii_digit())
    };
    if parts.len() != 3 || !num(parts[0], 4, 4) || !num(parts[1], 1, 2) || !num(parts[2], 1, 2) {
        return false;
    }
    let (m, d): (u32, u32) = (parts[1].parse().unwrap_or(0), parts[2].parse().unwrap_or(0));
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return false;
    }
    let Some(rest) = rest else { return true };
    let rest = rest.trim_start_matches(' ');
    let (time, zone) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (time, frac) = match time.split_once('.') {
        Some((t, f)) => (t, Some(f)),
        None => (time, None),
    };
    let hms: Vec<&str> = time.split(':').collect();
    if hms.len() != 3 || !hms.iter().all(|p| num(p, 1, 2)) {
        return false;
    }
    if let Some(f) = frac
        && !f.bytes().all(|c| c.is_ascii_digit())
    {
        return false;
    }
    match zone {
        "" | "Z" => true,
        z => {
            let z = &z[1..];
            let (h, m) = z.split_once(':').unwrap_or((z, "00"));
            num(h, 2, 2) && num(m, 2, 2)
        }
    }
}

/// The value `sigs.k8s.io/yaml` gives for a node: through JSON.
pub fn to_value(raw: Raw) -> Result<Value, String> {
    Ok(match raw {
        Raw::Null => Value::Nil,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Float(i as f64),
        Raw::Uint(u) => Value::Float(u as f64),
        Raw::Float(f) => {
            if !f.is_finite() {
                return Err(format!("json: unsupported value: {}", gofmt::float_v(f)));
            }
            Value::Float(f)
        }
        Raw::Str(s) => Value::string(s),
        Raw::Binary(b) => Value::string(base64::engine::general_purpose::STANDARD.encode(b)),
        Raw::Seq(items) => Value::list(items.into_iter().map(to_value).collect::<Result<_, _>>()?),
        Raw::Map(pairs) => {
            let mut entries = Entries::new();
            for (k, v) in pairs {
                let key = key_string(&k)?;
                entries.insert(Rc::from(key), to_value(v)?);
            }
            Value::map(entries)
        }
    })
}

/// How `sigs.k8s.io/yaml` turns a map key into a JSON key.
pub fn key_string(k: &Raw) -> Result<String, String> {
    Ok(match k {
        Raw::Str(s) => s.clone(),
        Raw::Int(i) => i.to_string(),
        Raw::Uint(u) => u.to_string(),
        Raw::Float(f) => match gofmt::format_float(*f as f32 as f64, 'g', None).as_str() {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            "NaN" => ".nan".into(),
            _ => format_float32(*f),
        },
        Raw::Bool(b) => b.to_string(),
        Raw::Binary(b) => String::from_utf8_lossy(b).into_owned(),
        Raw::Null => return Err("unsupported map key of type: <nil>, key: <nil>".into()),
        Raw::Seq(_) | Raw::Map(_) => return Err("unsupported map key of type: a collection".into()),
    })
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`: the shortest digits that read
/// back as the same `float32`.
pub fn format_float32(f: f64) -> String {
    let f32v = f as f32;
    let s = format!("{:e}", f32v.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    // Rebuild via the f64 formatter from the f32 shortest digits.
    let text = format!(
        "{}{}.{}e{exp}",
        if f32v < 0.0 { "-" } else { "" },
        &digits[..1],
        &digits[1..]
    );
    let as64: f64 = text.parse().unwrap_or(f);
    gofmt::format_float(as64, 'g', None)
}

/// Helm's `fromYaml` / values parsing: the first document as a map
/// (an empty document is an empty map).
pub fn parse_map(text: &str) -> Result<Value, String> {
    let raw = parse_first(text).map_err(|e| format!("error converting YAML to JSON: {e}"))?;
    match raw {
        None => Ok(Value::empty_map()),
        Some(r @ Raw::Map(_)) => to_value(r).map_err(|e| format!("error converting YAML to JSON: {e}")),
        Some(Raw::Null) => Ok(Value::empty_map()),
        Some(other) => {
            let what = match other {
                Raw::Seq(_) => "array",
                Raw::Str(_) | Raw::Binary(_) => "string",
                Raw::Bool(_) => "bool",
                _ => "number",
            };
            Err(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {what} into Go value of type map[string]interface {{}}"
            ))
        }
    }
}

// ---- writing --------------------------------------------------------------------------

/// A node to write: what `yaml.Unmarshal` of a value's JSON gives.
enum Node {
    Null,
    Bool(bool),
    /// A number, already as go-yaml v2 writes it.
    Number(String),
    Str(Rc<str>),
    Seq(Vec<Node>),
    Map(Vec<(Rc<str>, Node)>),
}

/// `toYaml`: `None` when the value cannot be written as JSON (Helm then
/// writes nothing).
pub fn to_yaml(v: &Value) -> Option<String> {
    let node = node(v, 0).ok()?;
    let mut e = Emitter::new();
    e.node(&node, true, false, false, false);
    e.write_indent();
    Some(e.out)
}

fn node(v: &Value, depth: usize) -> Result<Node, String> {
    if depth > 10_000 {
        return Err("too deep".into());
    }
    Ok(match v {
        Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Node::Number(i.to_string()),
        Value::Float(f) => Node::Number(number(&super::json::float(*f)?)),
        Value::Str(s) => Node::Str(s.clone()),
        Value::Bytes(b) => Node::Str(Rc::from(base64::engine::general_purpose::STANDARD.encode(b))),
        Value::List(l) => Node::Seq(
            l.items
                .iter()
                .map(|x| node(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(m) => {
            let map = m.0.borrow();
            let mut pairs: Vec<(Rc<str>, Node)> = map
                .entries
                .iter()
                .map(|(k, x)| Ok((k.clone(), node(x, depth + 1)?)))
                .collect::<Result<_, String>>()?;
            let _ = map.kind == MapKind::Files;
            pairs.sort_by(|a, b| key_order(&a.0, &b.0));
            Node::Map(pairs)
        }
        Value::Struct(s) => match s.ty {
            StructType::Semver | StructType::Time => {
                let json = super::json::encode(v, super::json::Style::default())?;
                match super::json::decode(&json)? {
                    Value::Str(s) => Node::Str(s),
                    _ => Node::Null,
                }
            }
            _ => {
                let mut pairs: Vec<(Rc<str>, Node)> = Vec::new();
                for f in &s.fields {
                    if f.omit_empty && !f.value.truthy() {
                        continue;
                    }
                    pairs.push((Rc::from(f.json.unwrap_or(f.name)), node(&f.value, depth + 1)?));
                }
                pairs.sort_by(|a, b| key_order(&a.0, &b.0));
                Node::Map(pairs)
            }
        },
    })
}

/// `toYamlPretty`: go-yaml v3 on the value itself (no JSON on the way),
/// indent 2, sequences indented under their key.
pub fn to_yaml_pretty(v: &Value) -> Option<String> {
    let node = node_v3(v, 0)?;
    let mut e = Emitter::new();
    e.indent_sequences = true;
    e.node(&node, true, false, false, false);
    e.write_indent();
    Some(e.out)
}

fn node_v3(v: &Value, depth: usize) -> Option<Node> {
    if depth > 10_000 {
        return None;
    }
    Some(match v {
        Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Node::Number(i.to_string()),
        Value::Float(f) => Node::Number(match gofmt::float_v(*f).as_str() {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            "NaN" => ".nan".into(),
            s => s.to_string(),
        }),
        Value::Str(s) => Node::Str(s.clone()),
        Value::Bytes(b) => Node::Seq(b.iter().map(|x| Node::Number(x.to_string())).collect()),
        Value::List(l) => Node::Seq(
            l.items
                .iter()
                .map(|x| node_v3(x, depth + 1))
                .collect::<Option<_>>()?,
        ),
        Value::Map(m) => {
            let map = m.0.borrow();
            let mut pairs: Vec<(Rc<str>, Node)> = map
                .entries
                .iter()
                .map(|(k, x)| Some((k.clone(), node_v3(x, depth + 1)?)))
                .collect::<Option<_>>()?;
            pairs.sort_by(|a, b| key_order(&a.0, &b.0));
            Node::Map(pairs)
        }
        Value::Struct(_) => node(v, depth).ok()?,
    })
}

/// A JSON number as go-yaml v2 reads and writes it back.
fn number(json: &str) -> String {
    match resolve(json) {
        Raw::Int(i) => i.to_string(),
        Raw::Uint(u) => u.to_string(),
        Raw::Float(f) => match gofmt::float_v(f).as_str() {
            "+Inf" => ".inf".into(),
            "-Inf" => "-.inf".into(),
            "NaN" => ".nan".into(),
            s => s.to_string(),
        },
        _ => json.to_string(),
    }
}

/// go-yaml v2's order of string keys: digit runs compare as numbers, and a
/// letter sorts after anything else.
pub fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let less = |x: &[char], y: &[char]| -> bool {
        for i in 0..x.len().min(y.len()) {
            if x[i] == y[i] {
                continue;
            }
            let al = x[i].is_alphabetic();
            let bl = y[i].is_alphabetic();
            if al && bl {
                return x[i] < y[i];
            }
            if al || bl {
                return bl;
            }
            let (mut an, mut bn): (i64, i64) = (0, 0);
            if x[i] == '0' || y[i] == '0' {
                let mut j = i;
                while j > 0 && x[j - 1].is_ascii_digit() {
                    j -= 1;
                    if x[j] != '0' {
                        an = 1;
                        bn = 1;
                        break;
                    }
                }
            }
            let mut ai = i;
            while ai < x.len() && x[ai].is_ascii_digit() {
                an = an.wrapping_mul(10).wrapping_add(x[ai] as i64 - '0' as i64);
                ai += 1;
            }
            let mut bi = i;
            while bi < y.len() && y[bi].is_ascii_digit() {
                bn = bn.wrapping_mul(10).wrapping_add(y[bi] as i64 - '0' as i64);
                bi += 1;
            }
            if an != bn {
                return an < bn;
            }
            if ai != bi {
                return ai < bi;
            }
            return x[i] < y[i];
        }
        x.len() < y.len()
    };
    if less(&ar, &br) {
        Ordering::Less
    } else if less(&br, &ar) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Analysis {
    multiline: bool,
    flow_plain: bool,
    block_plain: bool,
    single: bool,
    block: bool,
}

fn is_printable(c: char) -> bool {
    let n = c as u32;
    n == 0x0A
        || (0x20..=0x7E).contains(&n)
        || (0xA0..=0xD7FF).contains(&n)
        || ((0xE000..=0xFFFD).contains(&n) && n != 0xFEFF)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: Option<char>) -> bool {
    matches!(c, Some(' ' | '\t'))
}

fn is_blankz(c: Option<char>) -> bool {
    match c {
        None | Some('\0') => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c),
    }
}

fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single: true,
            block: false,
        };
    }
    let (mut block_ind, mut flow_ind) = (false, false);
    if value.starts_with("---") || value.starts_with("...") {
        block_ind = true;
        flow_ind = true;
    }
    let chars: Vec<char> = value.chars().collect();
    let (mut line_breaks, mut special) = (false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut prev_space, mut prev_break) = (false, false);
    let mut preceded_by_ws = true;
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_by_ws = i + 1 >= n || is_blank(Some(chars[i + 1]));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@'
                | '`' => {
                    flow_ind = true;
                    block_ind = true;
                }
                '?' | ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_ind = true,
                ':' => {
                    flow_ind = true;
                    if followed_by_ws {
                        block_ind = true;
                    }
                }
                '#' if preceded_by_ws => {
                    flow_ind = true;
                    block_ind = true;
                }
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_by_ws = is_blankz(Some(c));
    }
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

/// go-yaml v2's `isBase60Float`.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if !b.get(i).is_some_and(u8::is_ascii_digit) {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while b.get(i) == Some(&b':') {
        i += 1;
        let start = i;
        if b.get(i).is_some_and(|c| (b'0'..=b'5').contains(c)) && b.get(i + 1).is_some_and(u8::is_ascii_digit)
        {
            i += 2;
        } else if b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// The style go-yaml v2 asks for a string.
fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        return Style::Literal;
    }
    let plain = matches!(resolve_for_style(s), ResolvedAs::Str) && !is_base60_float(s);
    if plain { Style::Plain } else { Style::Double }
}

enum ResolvedAs {
    Str,
    Other,
}

fn resolve_for_style(s: &str) -> ResolvedAs {
    if s.is_empty() {
        return ResolvedAs::Other;
    }
    let first = s.as_bytes()[0];
    if matches!(first, b'+' | b'-' | b'0'..=b'9') && looks_like_timestamp(s) {
        return ResolvedAs::Other;
    }
    match resolve(s) {
        Raw::Str(_) => ResolvedAs::Str,
        _ => ResolvedAs::Other,
    }
}

struct Emitter {
    out: String,
    column: usize,
    indent: isize,
    indents: Vec<isize>,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
    best_width: usize,
    best_indent: isize,
    /// go-yaml v3: sequences under a key are indented.
    indent_sequences: bool,
}

impl Emitter {
    fn new() -> Emitter {
        Emitter {
            out: String::new(),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            flow_level: 0,
            best_width: 80,
            best_indent: 2,
            indent_sequences: false,
        }
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { self.best_indent } else { 0 };
        } else if !indentless {
            self.indent += self.best_indent;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    /// Emit a node. `mapping`/`sequence` say what holds it.
    fn node(&mut self, n: &Node, _root: bool, sequence: bool, mapping: bool, simple_key: bool) {
        let _ = sequence;
        match n {
            Node::Null => self.scalar("null", Style::Plain, simple_key),
            Node::Bool(b) => self.scalar(if *b { "true" } else { "false" }, Style::Plain, simple_key),
            Node::Number(s) => self.scalar(s, Style::Plain, simple_key),
            Node::Str(s) => self.scalar(s, string_style(s), simple_key),
            Node::Seq(items) => {
                if items.is_empty() || self.flow_level > 0 {
                    self.write_indicator("[", true, true, false);
                    self.increase_indent(true, false);
                    self.flow_level += 1;
                    for (i, item) in items.iter().enumerate() {
                        if i > 0 {
                            self.write_indicator(",", false, false, false);
                        }
                        if self.column > self.best_width {
                            self.write_indent();
                        }
                        self.node(item, false, true, false, false);
                    }
                    self.flow_level -= 1;
                    self.pop_indent();
                    self.write_indicator("]", false, false, false);
                    return;
                }
                let indentless = mapping && !self.indention && !self.indent_sequences;
                self.increase_indent(false, indentless);
                for item in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(item, false, true, false, false);
                }
                self.pop_indent();
            }
            Node::Map(pairs) => {
                if pairs.is_empty() || self.flow_level > 0 {
                    self.write_indicator("{", true, true, false);
                    self.increase_indent(true, false);
                    self.flow_level += 1;
                    for (i, (k, v)) in pairs.iter().enumerate() {
                        if i > 0 {
                            self.write_indicator(",", false, false, false);
                        }
                        if self.column > self.best_width {
                            self.write_indent();
                        }
                        self.node(&Node::Str(k.clone()), false, false, true, true);
                        self.write_indicator(":", false, false, false);
                        self.node(v, false, false, true, false);
                    }
                    self.flow_level -= 1;
                    self.pop_indent();
                    self.write_indicator("}", false, false, false);
                    return;
                }
                self.increase_indent(false, false);
                for (k, v) in pairs {
                    self.write_indent();
                    let a = analyze(k);
                    if !a.multiline && k.len() <= 128 {
                        self.node(&Node::Str(k.clone()), false, false, true, true);
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.node(&Node::Str(k.clone()), false, false, true, false);
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(v, false, false, true, false);
                }
                self.pop_indent();
            }
        }
    }

    fn scalar(&mut self, value: &str, requested: Style, simple_key: bool) {
        let a = analyze(value);
        let mut style = requested;
        if simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            if (self.flow_level > 0 && !a.flow_plain) || (self.flow_level == 0 && !a.block_plain) {
                style = Style::Single;
            }
            if value.is_empty() && (self.flow_level > 0 || simple_key) {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block || self.flow_level > 0 || simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::Single => self.write_single(value, allow_breaks),
            Style::Double => self.write_double(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = value.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
            i += 1;
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let n = chars.len();
        for i in 0..n {
            let c = chars[i];
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > self.best_width
                    && i > 0
                    && i < n - 1
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double(&mut self, value: &str, allow_breaks: bool) {
        let mut spaces = false;
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let n = chars.len();
        for i in 0..n {
            let c = chars[i];
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{A0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        let (ch, w) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(ch);
                        for k in (0..w).rev() {
                            let d = (v >> (k * 4)) & 0xF;
                            self.put(char::from_digit(d, 16).unwrap_or('0').to_ascii_uppercase());
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > self.best_width && i > 0 && i < n - 1 {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        // Hints.
        let chars: Vec<char> = value.chars().collect();
        if chars.first().is_some_and(|c| *c == ' ' || is_break(*c)) {
            let hint = char::from_digit(self.best_indent as u32, 10).unwrap_or('2');
            self.write_indicator(&hint.to_string(), false, false, false);
        }
        let chomp = if chars.is_empty() {
            Some('-')
        } else {
            let last = chars[chars.len() - 1];
            if !is_break(last) {
                Some('-')
            } else if chars.len() == 1 || is_break(chars[chars.len() - 2]) {
                Some('+')
            } else {
                None
            }
        };
        if let Some(c) = chomp {
            self.write_indicator(&c.to_string(), false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in chars {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        parse_map(text).unwrap()
    }

    #[test]
    fn reads_yaml11_scalars_through_json() {
        let m = v("a: yes\nb: 0x1F\nc: 017\nd: 1e3\ne: '1'\nf: ~\ng: 2020-01-01\nh: 1_000\ny: 1\n1: x\n");
        let s = crate::helm::gofmt::sprint_value(&m);
        assert_eq!(
            s,
            "map[1:x a:true b:31 c:15 d:1000 e:1 f:<nil> g:2020-01-01 h:1000 true:1]"
        );
    }

    #[test]
    fn merges_and_aliases() {
        let m = v("base: &b {x: 1, z: 2}\nd:\n  <<: *b\n  z: 3\n");
        assert_eq!(
            crate::helm::gofmt::sprint_value(&m),
            "map[base:map[x:1 z:2] d:map[x:1 z:3]]"
        );
    }

    #[test]
    fn writes_like_go_yaml_v2() {
        let m = v(
            "b: [1, 2.5, 'x: y', '']\na: {}\nc:\n  - k: v\n    l: [ ]\nd: \"two\\nlines\\n\"\ne: 'yes'\nf: 1e6\ng: \"-x\"\n",
        );
        assert_eq!(
            to_yaml(&m).unwrap(),
            "a: {}\nb:\n- 1\n- 2.5\n- 'x: y'\n- \"\"\nc:\n- k: v\n  l: []\nd: |\n  two\n  lines\ne: \"yes\"\nf: 1000000\ng: -x\n"
        );
    }

    #[test]
    fn key_order_is_natural() {
        let mut keys = vec!["a10", "a2", "a_b", "aB", "b", "A", "1", "10", "9"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, ["1", "9", "10", "A", "a_b", "a2", "a10", "aB", "b"]);
    }

    #[test]
    fn long_plain_lines_fold_at_80_columns() {
        let long = "word ".repeat(30);
        let m = Value::map(
            [(Rc::from("k"), Value::string(long.trim_end().to_string()))]
                .into_iter()
                .collect(),
        );
        let out = to_yaml(&m).unwrap();
        assert!(out.lines().count() > 1, "{out}");
        assert!(out.lines().all(|l| l.len() <= 90), "{out}");
    }
}
