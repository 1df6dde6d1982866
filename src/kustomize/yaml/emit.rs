//! Writing objects as `kustomize build` writes them. kustomize turns each
//! object into JSON and back into YAML with yaml.v2, so its output has keys
//! in yaml.v2's order, values as JSON typed them ([`scalar::output`]), and
//! yaml.v2's choices of quoting, line folding at 80 columns, literal blocks
//! for multi-line strings and two-space indentation with list items at the
//! level of their key ([`crate::goyaml`]), so that the bytes match.

use std::borrow::Cow;

use super::scalar::{self, Out};
use super::{Node, Value};
use crate::goyaml::{self, Sequences, Shape};

/// Write one object (a document without `---`), ending in a newline.
pub fn emit_document(node: &Node, out: &mut String) -> Result<(), String> {
    goyaml::write_document(node, Sequences::AtKey, out)
}

impl goyaml::Tree for Node {
    fn shape(&self) -> Result<Shape<'_, Node>, String> {
        Ok(match &self.value {
            Value::Scalar(s) => match scalar::output(s)? {
                Out::Null => Shape::Word(Cow::Borrowed("null")),
                Out::Bool(b) => Shape::Word(Cow::Borrowed(if b { "true" } else { "false" })),
                Out::Number(n) => Shape::Word(Cow::Owned(n)),
                Out::Str(s) => Shape::Str(s),
            },
            Value::Seq(items) => Shape::Seq(items),
            Value::Map(entries) => Shape::Map(entries.iter().map(|e| (e.key.as_str(), &e.value)).collect()),
        })
    }

    fn plain_is_string(text: &str) -> bool {
        scalar::plain_is_string(text)
    }
}

/// Write a JSON object as `kustomize build` writes it (its objects are JSON).
pub fn emit_json(value: &serde_json::Value, out: &mut String) -> Result<(), String> {
    goyaml::write_document(value, Sequences::AtKey, out)
}

impl goyaml::Tree for serde_json::Value {
    fn shape(&self) -> Result<Shape<'_, serde_json::Value>, String> {
        use serde_json::Value as Json;
        Ok(match self {
            Json::Null => Shape::Word(Cow::Borrowed("null")),
            Json::Bool(b) => Shape::Word(Cow::Borrowed(if *b { "true" } else { "false" })),
            Json::Number(n) => Shape::Word(Cow::Owned(scalar::json_number(n))),
            Json::String(s) => Shape::Str(Cow::Borrowed(s)),
            Json::Array(items) => Shape::Seq(items),
            Json::Object(map) => Shape::Map(map.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        })
    }

    fn plain_is_string(text: &str) -> bool {
        scalar::plain_is_string(text)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse_documents;
    use super::*;

    fn emit(text: &str) -> String {
        let docs = parse_documents(text).unwrap();
        let mut out = String::new();
        emit_document(docs[0].node.as_ref().unwrap(), &mut out).unwrap();
        out
    }

    #[test]
    fn like_kustomize() {
        // Input and output from `kubectl kustomize` (kustomize v5.5).
        let input = r##"kind: ConfigMap
apiVersion: v1
metadata: {name: a, labels: {z: "1", a: yes}}
data:
  f: 1.0
  g: "1.0"
  h: yes
  aa: "tab\there"
  bb: "ü"
  cc: "#x"
  dd: "x #y"
  ee: ""
  ff: "="
  m: "multi\nline\n"
  n: ~
  r: "  lead"
  s: "a: b"
  t: 'it''s'
  u: "- x"
  z: "trailing \n"
spec:
  list: [1, 2, {b: 1, a: 2}]
  emptyl: []
  emptym: {}
  nested: [[a, b], []]
  long: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cccccccccccccccc"
"##;
        let want = r##"apiVersion: v1
data:
  aa: "tab\there"
  bb: ü
  cc: '#x'
  dd: 'x #y'
  ee: ""
  f: 1
  ff: =
  g: "1.0"
  h: "yes"
  m: |
    multi
    line
  "n": null
  r: '  lead'
  s: 'a: b'
  t: it's
  u: '- x'
  z: "trailing \n"
kind: ConfigMap
metadata:
  labels:
    a: "yes"
    z: "1"
  name: a
spec:
  emptyl: []
  emptym: {}
  list:
  - 1
  - 2
  - a: 2
    b: 1
  long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
    bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cccccccccccccccc
  nested:
  - - a
    - b
  - []
"##;
        assert_eq!(emit(input), want);
    }
}
