//! JSON in and out as sops's JSON store does it: keys in file order, every
//! number a float64, the top level an object; output indented with tabs.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::ParseError;
use crate::sops::tree::{Item, Key, Value, go_float_json};

/// The deepest nesting read (serde_json's own limit is 128).
struct Node;

impl<'de> DeserializeSeed<'de> for Node {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(v) = seq.next_element_seed(Node)? {
            values.push(v);
        }
        Ok(Value::Seq(values))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Node)?;
            items.push(Item::new(k, v));
        }
        Ok(Value::Map(items))
    }
}

pub fn parse(text: &str) -> Result<Vec<Item>, ParseError> {
    let mut d = serde_json::Deserializer::from_str(text);
    let value = Node.deserialize(&mut d).map_err(|e| ParseError {
        line: Some(e.line()),
        column: Some(e.column()),
        message: json_error(&e),
    })?;
    d.end().map_err(|e| ParseError {
        line: Some(e.line()),
        column: Some(e.column()),
        message: "text after the JSON value".into(),
    })?;
    match value {
        Value::Map(items) => Ok(items),
        other => Err(ParseError::new(format!(
            "sops reads only JSON files with an object at the top, this one holds {}",
            other.kind()
        ))),
    }
}

/// serde_json's message without its position (reported separately) and
/// without quoting input.
fn json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "the JSON ends too early".into(),
        Category::Syntax => "invalid JSON syntax".into(),
        Category::Data => "invalid JSON data".into(),
        Category::Io => "cannot read the JSON".into(),
    }
}

fn string(s: &str, out: &mut String) {
    // A String always serialises.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn map(items: &[Item], indent: usize, tab: &str, out: &mut String) -> Result<(), String> {
    let data: Vec<&Item> = items.iter().filter(|i| matches!(i.key, Key::Str(_))).collect();
    if data.is_empty() {
        out.push_str("{}");
        return Ok(());
    }
    out.push_str("{\n");
    for (n, item) in data.iter().enumerate() {
        (0..=indent).for_each(|_| out.push_str(tab));
        string(item.key_str().unwrap_or_default(), out);
        out.push_str(": ");
        value(&item.value, indent + 1, tab, out)?;
        out.push_str(if n + 1 < data.len() { ",\n" } else { "\n" });
    }
    (0..indent).for_each(|_| out.push_str(tab));
    out.push('}');
    Ok(())
}

fn value(v: &Value, indent: usize, tab: &str, out: &mut String) -> Result<(), String> {
    let pad = |n: usize, out: &mut String| (0..n).for_each(|_| out.push_str(tab));
    match v {
        Value::Map(items) => map(items, indent, tab, out)?,
        Value::Seq(values) => {
            let data: Vec<&Value> = values
                .iter()
                .filter(|v| !matches!(v, Value::Comment(_)))
                .collect();
            if data.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push_str("[\n");
            for (n, v) in data.iter().enumerate() {
                pad(indent + 1, out);
                value(v, indent + 1, tab, out)?;
                out.push_str(if n + 1 < data.len() { ",\n" } else { "\n" });
            }
            pad(indent, out);
            out.push(']');
        }
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => string(s, out),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            out.push_str(&go_float_json(*f).ok_or("a value is NaN or infinite, which JSON cannot hold")?)
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Null => out.push_str("null"),
        Value::Bytes(b) => {
            use base64::Engine as _;
            string(&base64::engine::general_purpose::STANDARD.encode(b), out);
        }
    }
    Ok(())
}

/// The first document as JSON, indented with `tab` (sops indents with
/// tabs; YAML readers want spaces), ending in a newline.
pub fn emit(branch: &[Item], tab: &str) -> Result<String, String> {
    let mut out = String::new();
    map(branch, 0, tab, &mut out)?;
    out.push('\n');
    Ok(out)
}
