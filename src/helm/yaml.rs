//! YAML as Helm reads and writes it.
//!
//! Reading is `sigs.k8s.io/yaml`'s: the first document is decoded as
//! go-yaml v2 decodes into `interface{}` (YAML 1.1 scalars: `yes`, `on`,
//! `y` are booleans, `0x1f` and `017` integers, `<<` merges), then goes
//! through JSON: keys become strings, every number a `float64`.
//!
//! Writing is `toYaml`'s: the value goes through JSON (so `3.0` is written
//! `3`), then go-yaml v2's emitter ([`crate::goyaml`]) writes it: block
//! style, keys in its natural order (`a2` before `a10`), strings quoted
//! only where a plain scalar would read back as something else, long lines
//! folded at 80 columns.

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine as _;
use granit_parser::{Event, Parser, ScalarStyle};

use super::gofmt;
use super::value::{Entries, MapKind, StructType, Value};
use crate::goyaml::{self, Sequences, Shape};

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

/// The JSON `sigs.k8s.io/yaml` makes of a node, as Helm's Kubernetes
/// client sends it: integers stay integers, and a float is written as Go's
/// `encoding/json` writes it, so `1.0` is 1 and an integral float fits an
/// integer field.
pub fn to_json(raw: Raw) -> Result<serde_json::Value, String> {
    use serde_json::Value as Json;
    Ok(match raw {
        Raw::Null => Json::Null,
        Raw::Bool(b) => Json::Bool(b),
        Raw::Int(i) => Json::from(i),
        Raw::Uint(u) => Json::from(u),
        Raw::Float(f) if !f.is_finite() => {
            return Err(format!("json: unsupported value: {}", gofmt::float_v(f)));
        }
        Raw::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Json::from(f as i64),
        Raw::Float(f) => serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number),
        Raw::Str(s) => Json::String(s),
        Raw::Binary(b) => Json::String(base64::engine::general_purpose::STANDARD.encode(b)),
        Raw::Seq(items) => Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Raw::Map(pairs) => {
            let mut map = serde_json::Map::new();
            for (k, v) in pairs {
                map.insert(key_string(&k)?, to_json(v)?);
            }
            Json::Object(map)
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
    write(&node(v, 0).ok()?, Sequences::AtKey)
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
            let pairs: Vec<(Rc<str>, Node)> = map
                .entries
                .iter()
                .map(|(k, x)| Ok((k.clone(), node(x, depth + 1)?)))
                .collect::<Result<_, String>>()?;
            let _ = map.kind == MapKind::Files;
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
                Node::Map(pairs)
            }
        },
    })
}

/// `toYamlPretty`: go-yaml v3 on the value itself (no JSON on the way),
/// indent 2, sequences indented under their key.
pub fn to_yaml_pretty(v: &Value) -> Option<String> {
    write(&node_v3(v, 0)?, Sequences::Indented)
}

fn node_v3(v: &Value, depth: usize) -> Option<Node> {
    if depth > 10_000 {
        return None;
    }
    Some(match v {
        Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Node::Number(i.to_string()),
        Value::Float(f) => Node::Number(float(*f)),
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
            let pairs: Vec<(Rc<str>, Node)> = map
                .entries
                .iter()
                .map(|(k, x)| Some((k.clone(), node_v3(x, depth + 1)?)))
                .collect::<Option<_>>()?;
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
        Raw::Float(f) => float(f),
        _ => json.to_string(),
    }
}

/// A float as go-yaml writes one.
fn float(f: f64) -> String {
    match gofmt::float_v(f).as_str() {
        "+Inf" => ".inf".into(),
        "-Inf" => "-.inf".into(),
        "NaN" => ".nan".into(),
        s => s.to_string(),
    }
}

fn write(node: &Node, sequences: Sequences) -> Option<String> {
    let mut out = String::new();
    goyaml::write_document(node, sequences, &mut out).ok()?;
    Some(out)
}

impl goyaml::Tree for Node {
    fn shape(&self) -> Result<Shape<'_, Node>, String> {
        Ok(match self {
            Node::Null => Shape::Word(Cow::Borrowed("null")),
            Node::Bool(b) => Shape::Word(Cow::Borrowed(if *b { "true" } else { "false" })),
            Node::Number(n) => Shape::Word(Cow::Borrowed(n)),
            Node::Str(s) => Shape::Str(Cow::Borrowed(s)),
            Node::Seq(items) => Shape::Seq(items),
            Node::Map(pairs) => Shape::Map(pairs.iter().map(|(k, v)| (&**k, v)).collect()),
        })
    }

    /// go-yaml v2 reads it back as a string: not a timestamp (which Helm's
    /// reading turns into a string, but go-yaml does not write plain).
    fn plain_is_string(s: &str) -> bool {
        let number_like = matches!(s.as_bytes().first(), Some(b'+' | b'-' | b'0'..=b'9'));
        !(number_like && looks_like_timestamp(s))
            && matches!(resolve(s), Raw::Str(_))
            && !goyaml::is_base60_float(s)
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
