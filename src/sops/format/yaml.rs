//! YAML in and out, read the way sops reads it with Go's yaml.v3: every
//! document is a tree, key order kept, scalars typed by yaml.v3's rules
//! (only `true`/`false` are booleans, timestamps stay strings, `0x1F` and
//! `0o17` are integers), aliases expanded, comments kept as tree items
//! where sops's store puts them.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use base64::Engine as _;
use serde_saphyr::granit_parser::{Event, Parser, Placement, ScalarStyle, Span, Tag};

use super::ParseError;
use crate::sops::tree::{Item, Key, Value, go_float_f};

/// Nodes one file may expand to, aliases included (a guard against
/// "billion laughs" documents).
const MAX_NODES: usize = 1_000_000;

static YAML_FLOAT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").expect("a valid regex")
});

/// Go's `strconv.ParseInt`/`ParseUint` with base 0: the sign and the
/// magnitude, or `None` when `s` is not an integer literal.
fn go_parse_base0(s: &str) -> Option<(bool, u64)> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok().map(|m| (neg, m))
}

/// How yaml.v3 types a plain (unquoted, untagged) scalar.
pub fn resolve_plain(s: &str) -> Result<Value, &'static str> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        ".nan" | ".NaN" | ".NAN" => return Ok(Value::Float(f64::NAN)),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Ok(Value::Float(f64::INFINITY)),
        "-.inf" | "-.Inf" | "-.INF" => return Ok(Value::Float(f64::NEG_INFINITY)),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        if s[1..].bytes().next().is_some_and(|b| b.is_ascii_digit())
            && let Ok(f) = s.parse::<f64>()
        {
            return Ok(Value::Float(f));
        }
        return Ok(Value::Str(s.to_string()));
    }
    if first.is_ascii_digit() || first == b'+' || first == b'-' {
        let plain = s.replace('_', "");
        match go_parse_base0(&plain) {
            Some((false, m)) if i64::try_from(m).is_ok() => return Ok(Value::Int(m as i64)),
            Some((true, m)) if m <= 1 << 63 => return Ok(Value::Int((m as i128).wrapping_neg() as i64)),
            Some((false, _)) => {
                return Err("an integer larger than sops can hold (it would fail to walk the tree)");
            }
            _ => {}
        }
        if YAML_FLOAT.is_match(&plain)
            && let Ok(f) = plain.parse::<f64>()
        {
            return Ok(Value::Float(f));
        }
    }
    Ok(Value::Str(s.to_string()))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" => Some(true),
        "false" | "False" | "FALSE" => Some(false),
        _ => None,
    }
}

/// The value of a scalar event.
fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, &'static str> {
    if let Some(tag) = tag {
        if tag.is_yaml_core_schema() {
            match tag.suffix() {
                "str" | "timestamp" => return Ok(Value::Str(text.to_string())),
                "null" => return Ok(Value::Null),
                "bool" => {
                    return parse_bool(text)
                        .map(Value::Bool)
                        .ok_or("a !!bool that is not true or false");
                }
                "int" => {
                    return match resolve_plain(text)? {
                        v @ Value::Int(_) => Ok(v),
                        _ => Err("a !!int that is not an integer"),
                    };
                }
                "float" => {
                    return match resolve_plain(text)? {
                        Value::Int(i) => Ok(Value::Float(i as f64)),
                        v @ Value::Float(_) => Ok(v),
                        _ => Err("a !!float that is not a number"),
                    };
                }
                "binary" => {
                    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                    return base64::engine::general_purpose::STANDARD
                        .decode(clean)
                        .map(Value::Bytes)
                        .map_err(|_| "a !!binary value that is not base64");
                }
                _ => return Ok(Value::Str(text.to_string())),
            }
        }
        // Local and other tags: yaml.v3 gives their text as a string.
        return Ok(Value::Str(text.to_string()));
    }
    match style {
        ScalarStyle::Plain => resolve_plain(text),
        _ => Ok(Value::Str(text.to_string())),
    }
}

enum Frame {
    Map {
        items: Vec<Item>,
        /// The key read and not yet given its value, with its line.
        key: Option<(String, usize)>,
        seen: HashSet<String>,
        anchor: usize,
        last_line: usize,
    },
    Seq {
        items: Vec<Value>,
        anchor: usize,
        last_line: usize,
    },
}

struct Builder {
    stack: Vec<Frame>,
    /// Own-line comments waiting for the next key or list item.
    pending: Vec<String>,
    anchors: HashMap<usize, Value>,
    nodes: usize,
    root: Option<Value>,
}

fn count(v: &Value) -> usize {
    match v {
        Value::Map(items) => 1 + items.iter().map(|i| count(&i.value)).sum::<usize>(),
        Value::Seq(values) => 1 + values.iter().map(count).sum::<usize>(),
        _ => 1,
    }
}

impl Builder {
    fn err(span: &Span, message: impl Into<String>) -> ParseError {
        ParseError {
            line: Some(span.start.line()),
            column: Some(span.start.col() + 1),
            message: message.into(),
        }
    }

    fn flush_pending_into_top(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        match self.stack.last_mut() {
            Some(Frame::Map { items, .. }) => items.extend(pending.into_iter().map(Item::comment)),
            Some(Frame::Seq { items, .. }) => items.extend(pending.into_iter().map(Value::Comment)),
            None => self.pending = pending,
        }
    }

    /// A node is complete: give it to its parent (or make it the root).
    fn complete(&mut self, value: Value, anchor: usize, span: &Span) -> Result<(), ParseError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(Self::err(
                span,
                "the document expands to more than a million nodes",
            ));
        }
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        let line = span.end.line();
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(())
            }
            Some(Frame::Seq { items, last_line, .. }) => {
                items.push(value);
                *last_line = line;
                Ok(())
            }
            Some(Frame::Map {
                items,
                key,
                last_line,
                seen,
                ..
            }) => match key.take() {
                Some((k, _)) => {
                    if !seen.insert(k.clone()) {
                        return Err(Self::err(
                            span,
                            format!("the key \"{k}\" appears twice in one mapping"),
                        ));
                    }
                    items.push(Item::new(k, value));
                    *last_line = line;
                    Ok(())
                }
                None => match value {
                    Value::Str(k) => {
                        *key = Some((k, span.start.line()));
                        Ok(())
                    }
                    other => Err(Self::err(
                        span,
                        format!(
                            "a mapping key is {}; sops supports only string keys (quote it)",
                            other.kind()
                        ),
                    )),
                },
            },
        }
    }

    /// Before a node starts in a mapping-key or list-item position, own-line
    /// comments above it join the container.
    fn before_node(&mut self) {
        let at_item = match self.stack.last() {
            Some(Frame::Map { key, .. }) => key.is_none(),
            Some(Frame::Seq { .. }) => true,
            None => false,
        };
        if at_item {
            self.flush_pending_into_top();
        }
    }

    fn comment(&mut self, text: String, placement: Placement, span: &Span) {
        if placement != Placement::Right {
            self.pending.push(text);
            return;
        }
        let line = span.start.line();
        match self.stack.last_mut() {
            Some(Frame::Map {
                items,
                key,
                last_line,
                ..
            }) => {
                // `key: value # c` (value done) or `key: # c` (value to come):
                // sops puts line comments before the item.
                if key.is_none() && *last_line == line && !items.is_empty() {
                    let at = items.len() - 1;
                    items.insert(at, Item::comment(text));
                } else {
                    items.push(Item::comment(text));
                }
            }
            Some(Frame::Seq { items, last_line, .. }) => {
                if *last_line == line && !items.is_empty() {
                    let at = items.len() - 1;
                    items.insert(at, Value::Comment(text));
                } else {
                    items.push(Value::Comment(text));
                }
            }
            None => self.pending.push(text),
        }
    }
}

/// Parse every document of `text`. A document is returned as the value of
/// its root node (`Null` when empty); comments outside any mapping are
/// attached to the document's root mapping.
pub fn parse(text: &str) -> Result<Vec<Value>, ParseError> {
    let mut options = serde_saphyr::granit_parser::Options::default();
    // As libyaml (and so yaml.v3) reads a block scalar on the last line.
    options.block_scalar_eof_without_line_feed = true;
    let parser = Parser::new_from_str_with_options(text, options);
    let mut docs = Vec::new();
    let mut b = Builder {
        stack: Vec::new(),
        pending: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    for next in parser {
        let (event, span) = next.map_err(|e| ParseError {
            line: Some(e.marker().line()),
            column: Some(e.marker().col() + 1),
            message: e.info(),
        })?;
        match event {
            Event::StreamStart | Event::StreamEnd | Event::Anchor(..) => {}
            Event::DocumentStart(..) => {
                b.root = None;
                b.anchors.clear();
            }
            Event::DocumentEnd => {
                let mut root = b.root.take().unwrap_or(Value::Null);
                let pending = std::mem::take(&mut b.pending);
                match &mut root {
                    Value::Map(items) => items.extend(pending.into_iter().map(Item::comment)),
                    Value::Null if !pending.is_empty() => {
                        root = Value::Map(pending.into_iter().map(Item::comment).collect());
                    }
                    _ => {}
                }
                docs.push(root);
            }
            Event::Comment(text, placement) => b.comment(text.into_owned(), placement, &span),
            Event::Scalar(text, style, anchor, tag) => {
                b.before_node();
                let value = scalar_value(&text, style, tag.as_deref()).map_err(|m| Builder::err(&span, m))?;
                b.complete(value, anchor, &span)?;
            }
            Event::Alias(id) => {
                b.before_node();
                let value = b
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| Builder::err(&span, "an alias to an unknown anchor"))?;
                b.nodes += count(&value);
                b.complete(value, 0, &span)?;
            }
            Event::UnresolvedAlias(_) => return Err(Builder::err(&span, "an alias to an unknown anchor")),
            Event::MappingStart(_, anchor, _) => {
                b.before_node();
                if let Some(Frame::Map { key: None, .. }) = b.stack.last() {
                    return Err(Builder::err(
                        &span,
                        "a mapping used as a mapping key; sops supports only string keys",
                    ));
                }
                b.stack.push(Frame::Map {
                    items: Vec::new(),
                    key: None,
                    seen: HashSet::new(),
                    anchor,
                    last_line: 0,
                });
            }
            Event::SequenceStart(_, anchor, _) => {
                b.before_node();
                if let Some(Frame::Map { key: None, .. }) = b.stack.last() {
                    return Err(Builder::err(
                        &span,
                        "a list used as a mapping key; sops supports only string keys",
                    ));
                }
                b.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                    last_line: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                // Comments left at the end of a block belong to it.
                b.flush_pending_into_top();
                let (value, anchor) = match b.stack.pop() {
                    Some(Frame::Map { items, anchor, .. }) => (Value::Map(items), anchor),
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Seq(items), anchor),
                    None => return Err(Builder::err(&span, "unbalanced YAML structure")),
                };
                b.complete(value, anchor, &span)?;
            }
            // Events of later parser versions (the enum is non-exhaustive).
            _ => return Err(Builder::err(&span, "a YAML construct sops does not read")),
        }
    }
    Ok(docs)
}

// ---- emitting -------------------------------------------------------------------

const INDENT: usize = 4;

/// Whether `s` can be written as a plain scalar and read back as the same string.
fn plain_ok(s: &str) -> bool {
    if s.is_empty() || !matches!(resolve_plain(s), Ok(Value::Str(_))) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    let last = s.chars().last().unwrap_or(' ');
    if first.is_whitespace() || last.is_whitespace() || "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    // yaml.v3 also reads YAML 1.1 booleans as strings, but other YAML
    // readers do not: quote them.
    if matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "yes" | "n" | "no" | "on" | "off"
    ) {
        return false;
    }
    s.chars()
        .all(|c| !c.is_control() && c != '\u{feff}' && c != '\u{2028}' && c != '\u{2029}')
}

fn double_quoted(s: &str, out: &mut String) {
    crate::quoted::write(out, s, crate::quoted::Syntax::Yaml);
}

/// A literal block fits a multi-line string whose lines need no escapes.
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\t', '\n'])
        && s.lines().all(|l| !l.ends_with([' ', '\t']))
        && s.chars()
            .all(|c| c == '\n' || (!c.is_control() && c != '\u{feff}' && c != '\u{2028}' && c != '\u{2029}'))
}

fn literal(s: &str, indent: usize, out: &mut String) {
    let body = s.trim_end_matches('\n');
    let trailing = s.len() - body.len();
    out.push('|');
    out.push_str(match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    });
    out.push('\n');
    let pad = " ".repeat(indent);
    let mut lines: Vec<&str> = body.split('\n').collect();
    lines.extend(std::iter::repeat_n("", trailing.saturating_sub(1)));
    for line in lines {
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
        out.push('\n');
    }
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf".into() } else { "-.inf".into() };
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-5..1e16).contains(&abs) {
        let s = format!("{f:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        let e = if e.starts_with('-') {
            e.to_string()
        } else {
            format!("+{e}")
        };
        return format!("{m}e{e}");
    }
    let s = go_float_f(f);
    if s.contains('.') { s } else { format!("{s}.0") }
}

/// A scalar written after `key: ` or `- ` (block scalars continue on the
/// next lines at `indent`).
fn scalar(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => {
            if plain_ok(s) {
                out.push_str(s);
                out.push('\n');
            } else if literal_ok(s) {
                literal(s, indent, out);
            } else {
                double_quoted(s, out);
                out.push('\n');
            }
        }
        Value::Bytes(b) => {
            out.push_str("!!binary ");
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('\n');
        }
        Value::Int(i) => {
            out.push_str(&i.to_string());
            out.push('\n');
        }
        Value::Float(f) => {
            out.push_str(&float_text(*f));
            out.push('\n');
        }
        Value::Bool(b) => out.push_str(if *b { "true\n" } else { "false\n" }),
        Value::Null => out.push_str("null\n"),
        Value::Map(_) | Value::Seq(_) => {}
    }
}

fn key_text(k: &str, out: &mut String) {
    if plain_ok(k) {
        out.push_str(k);
    } else {
        double_quoted(k, out);
    }
}

fn comment_line(text: &str, indent: usize, out: &mut String) {
    out.push_str(&" ".repeat(indent));
    out.push('#');
    out.push_str(&text.replace('\n', " "));
    out.push('\n');
}

fn has_data(items: &[Item]) -> bool {
    items.iter().any(|i| matches!(i.key, Key::Str(_)))
}

fn emit_map(items: &[Item], indent: usize, out: &mut String) {
    for item in items {
        match &item.key {
            Key::Comment(c) => comment_line(c, indent, out),
            Key::Str(k) => {
                out.push_str(&" ".repeat(indent));
                key_text(k, out);
                out.push(':');
                emit_value_after_key(&item.value, indent, out);
            }
        }
    }
}

fn emit_value_after_key(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Map(items) if has_data(items) => {
            out.push('\n');
            emit_map(items, indent + INDENT, out);
        }
        Value::Map(items) => {
            out.push_str(" {}\n");
            items.iter().for_each(|i| {
                if let Key::Comment(c) = &i.key {
                    comment_line(c, indent + INDENT, out);
                }
            });
        }
        Value::Seq(values) if values.iter().any(|v| !matches!(v, Value::Comment(_))) => {
            out.push('\n');
            emit_seq(values, indent + INDENT, out);
        }
        Value::Seq(_) => out.push_str(" []\n"),
        scalar_value => {
            out.push(' ');
            scalar(scalar_value, indent + INDENT, out);
        }
    }
}

fn emit_seq(values: &[Value], indent: usize, out: &mut String) {
    for v in values {
        if let Value::Comment(c) = v {
            comment_line(c, indent, out);
            continue;
        }
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match v {
            Value::Map(items) if has_data(items) => {
                // The first key on the dash's line, the rest aligned with it.
                out.push(' ');
                let mut first = String::new();
                emit_map(items, indent + 2, &mut first);
                out.push_str(first.trim_start_matches(' '));
            }
            Value::Map(_) => out.push_str(" {}\n"),
            Value::Seq(inner) if inner.iter().any(|v| !matches!(v, Value::Comment(_))) => {
                out.push('\n');
                emit_seq(inner, indent + INDENT, out);
            }
            Value::Seq(_) => out.push_str(" []\n"),
            other => {
                out.push(' ');
                scalar(other, indent + 2, out);
            }
        }
    }
}

/// Emit documents as YAML (several separated by `---`).
pub fn emit(branches: &[Vec<Item>]) -> String {
    let mut out = String::new();
    for (i, branch) in branches.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if has_data(branch) {
            emit_map(branch, 0, &mut out);
        } else {
            emit_map(branch, 0, &mut out);
            out.push_str("{}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        parse(text).unwrap().remove(0)
    }

    #[test]
    fn scalars_typed_as_yaml_v3_does() {
        let doc = one(
            "a: 1\nb: 0x1F\nc: 0o17\nd: 1.5\ne: yes\nf: true\ng: 2001-12-14\nh: ~\ni: '1'\nj: 1_000\nk: 08\nl: .5\nm: -.inf\n",
        );
        let Value::Map(items) = doc else {
            panic!("not a map")
        };
        let v: Vec<&Value> = items.iter().map(|i| &i.value).collect();
        assert_eq!(v[0], &Value::Int(1));
        assert_eq!(v[1], &Value::Int(31));
        assert_eq!(v[2], &Value::Int(15));
        assert_eq!(v[3], &Value::Float(1.5));
        assert_eq!(v[4], &Value::Str("yes".into()));
        assert_eq!(v[5], &Value::Bool(true));
        assert_eq!(v[6], &Value::Str("2001-12-14".into()));
        assert_eq!(v[7], &Value::Null);
        assert_eq!(v[8], &Value::Str("1".into()));
        assert_eq!(v[9], &Value::Int(1000));
        assert_eq!(v[10], &Value::Float(8.0));
        assert_eq!(v[11], &Value::Float(0.5));
        assert_eq!(v[12], &Value::Float(f64::NEG_INFINITY));
    }

    #[test]
    fn comments_go_where_sops_puts_them() {
        let doc = one("# top\na: 1 # right\nb:\n  # inner\n  c: 2\nl:\n  - x # item\n");
        let Value::Map(items) = doc else {
            panic!("not a map")
        };
        assert_eq!(items[0].key, Key::Comment(" top".into()));
        assert_eq!(items[1].key, Key::Comment(" right".into()));
        assert_eq!(items[2].key_str(), Some("a"));
        let Value::Map(inner) = &items[3].value else {
            panic!("b")
        };
        assert_eq!(inner[0].key, Key::Comment(" inner".into()));
        let Value::Seq(list) = &items[4].value else {
            panic!("l")
        };
        assert_eq!(list[0], Value::Comment(" item".into()));
    }

    #[test]
    fn errors_and_limits() {
        assert!(parse("1: a\n").is_err());
        assert!(parse("a: 1\na: 2\n").is_err());
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        assert!(parse(bomb).is_err());
    }

    #[test]
    fn emit_round_trips_types_and_order() {
        let text = "z: \"1\"\na: 1\nf: 1.0\nt: \"true\"\nb: true\nn: null\ns: |\n    line1\n    line2\nl:\n    - x\n    - k: v\n      j: w\n    - []\nm: {}\nq: \"a: b\"\ne: ''\n";
        let docs = parse(text).unwrap();
        let Value::Map(items) = &docs[0] else {
            panic!("map")
        };
        let out = emit(std::slice::from_ref(items));
        let again = parse(&out).unwrap();
        assert_eq!(docs, again, "{out}");
    }
}
