//! The YAML value model of the build: ordered mappings, sequences and
//! scalars that keep their text and the type YAML gave them, each with its
//! position in the file for messages. [`parse`] reads documents with
//! kustomize's (yaml.v3's) typing rules; [`emit`] writes them as `kustomize
//! build` does (keys sorted, values as JSON typed them, yaml.v2's quoting,
//! folding and indentation).

pub mod emit;
pub mod parse;
pub mod scalar;

pub use parse::{Document, ParseError, parse_documents, parse_documents_lenient};

/// A position in a file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// The type of a scalar, as yaml.v3 resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    Null,
    Bool,
    Int,
    Float,
    Str,
    /// A plain date or date-time (`2020-01-01`): kustomize turns it into an
    /// RFC 3339 string.
    Timestamp,
}

/// A scalar: its text (after YAML escapes), its type, and whether it was
/// written plain (unquoted, untagged), which decides how yaml.v2 types it in
/// kustomization files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar {
    pub text: String,
    pub tag: Tag,
    pub plain: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_pos: Pos,
    pub value: Node,
}

impl Node {
    pub fn new(value: Value) -> Node {
        Node {
            value,
            pos: Pos::default(),
        }
    }

    /// A string scalar.
    pub fn str(text: impl Into<String>) -> Node {
        Node::new(Value::Scalar(Scalar {
            text: text.into(),
            tag: Tag::Str,
            plain: false,
        }))
    }

    /// A scalar typed as a plain scalar of this text would be.
    pub fn plain(text: impl Into<String>) -> Node {
        let text = text.into();
        let tag = scalar::resolve_plain(&text);
        Node::new(Value::Scalar(Scalar {
            text,
            tag,
            plain: true,
        }))
    }

    pub fn int(n: i64) -> Node {
        Node::new(Value::Scalar(Scalar {
            text: n.to_string(),
            tag: Tag::Int,
            plain: true,
        }))
    }

    pub fn null() -> Node {
        Node::new(Value::Scalar(Scalar {
            text: String::new(),
            tag: Tag::Null,
            plain: true,
        }))
    }

    pub fn map() -> Node {
        Node::new(Value::Map(Vec::new()))
    }

    pub fn seq(items: Vec<Node>) -> Node {
        Node::new(Value::Seq(items))
    }

    pub fn at(mut self, pos: Pos) -> Node {
        self.pos = pos;
        self
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(s) if s.tag == Tag::Null)
    }

    pub fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            Value::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar that is not null.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(s) if s.tag != Tag::Null => Some(&s.text),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Vec<Entry>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<Entry>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&Vec<Node>> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_seq_mut(&mut self) -> Option<&mut Vec<Node>> {
        match &mut self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.iter().find(|e| e.key == key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.value)
    }

    /// The entry of `key`, for its position.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.as_map()?.iter().find(|e| e.key == key)
    }

    /// The node at a path of mapping keys.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |n, k| n.get(k))
    }

    /// The scalar text at a path of mapping keys.
    pub fn str_at(&self, keys: &[&str]) -> Option<&str> {
        self.path(keys)?.as_str()
    }

    /// Set `key` of a mapping (replacing its value, or appending it).
    /// Does nothing on a node that is not a mapping.
    pub fn set(&mut self, key: &str, value: Node) {
        if let Some(map) = self.as_map_mut() {
            match map.iter_mut().find(|e| e.key == key) {
                Some(e) => e.value = value,
                None => map.push(Entry {
                    key: key.to_string(),
                    key_pos: Pos::default(),
                    value,
                }),
            }
        }
    }

    /// The value of `key`, made a mapping first when missing or null.
    /// `None` when this is not a mapping or the value is another kind.
    pub fn map_at(&mut self, key: &str) -> Option<&mut Node> {
        let map = self.as_map_mut()?;
        let i = match map.iter().position(|e| e.key == key) {
            Some(i) => {
                if map[i].value.is_null() {
                    map[i].value = Node::map();
                }
                i
            }
            None => {
                map.push(Entry {
                    key: key.to_string(),
                    key_pos: Pos::default(),
                    value: Node::map(),
                });
                map.len() - 1
            }
        };
        let node = &mut map[i].value;
        node.as_map().is_some().then_some(node)
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        let map = self.as_map_mut()?;
        let i = map.iter().position(|e| e.key == key)?;
        Some(map.remove(i).value)
    }

    /// What kind of node this is, for messages.
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Scalar(s) if s.tag == Tag::Null => "null",
            Value::Scalar(_) => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// Equal as data: same structure and scalars of equal text and type;
    /// key order matters not.
    pub fn same(&self, other: &Node) -> bool {
        match (&self.value, &other.value) {
            (Value::Scalar(a), Value::Scalar(b)) => a.text == b.text && a.tag == b.tag,
            (Value::Seq(a), Value::Seq(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y)),
            (Value::Map(a), Value::Map(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|e| b.iter().any(|f| f.key == e.key && f.value.same(&e.value)))
            }
            _ => false,
        }
    }
}

/// The JSON a node becomes when kustomize passes it through JSON (as
/// `kustomize build` and Flux's kustomize-controller do): `yes` stays a
/// string, `0644` is 420, `1.0` is 1, a date an RFC 3339 string. `.inf`
/// and `.nan` are errors, at their position, as they are in kustomize.
pub fn to_json(node: Node) -> Result<serde_json::Value, (Pos, String)> {
    use serde_json::Value as Json;
    Ok(match node.value {
        Value::Scalar(s) if s.tag == Tag::Str => Json::String(s.text),
        Value::Scalar(s) => match scalar::output(&s).map_err(|e| (node.pos, e))? {
            scalar::Out::Null => Json::Null,
            scalar::Out::Bool(b) => Json::Bool(b),
            scalar::Out::Str(s) => Json::String(s.into_owned()),
            scalar::Out::Number(n) => Json::Number(
                n.parse()
                    .map_err(|_| (node.pos, format!("the number {n} has no JSON form")))?,
            ),
        },
        Value::Seq(items) => Json::Array(items.into_iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(entries) => Json::Object(
            entries
                .into_iter()
                .map(|e| Ok((e.key, to_json(e.value)?)))
                .collect::<Result<_, _>>()?,
        ),
    })
}
