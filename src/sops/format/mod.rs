//! The file formats sops reads and writes: YAML (several documents), JSON,
//! dotenv, INI and binary (a JSON envelope whose `data` holds the file).
//! Loading splits a file into its data tree and its `sops` metadata tree
//! (dotenv and INI keep metadata flattened: `sops_age__list_0__map_enc`);
//! emitting writes a decrypted tree back out in any of the formats.

mod dotenv;
mod ini;
mod json;
pub mod yaml;

use std::fmt;
use std::path::Path;

use zeroize::Zeroizing;

use super::tree::{Document, Item, Value};

/// A sops file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    Ini,
    Binary,
}

impl Format {
    /// The format sops picks from a file name: `.yaml`/`.yml`, `.json`,
    /// `.env`, `.ini`; anything else is binary.
    pub fn for_path(path: &str) -> Format {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Format::Yaml
        } else if path.ends_with(".json") {
            Format::Json
        } else if path.ends_with(".ini") {
            Format::Ini
        } else if path.ends_with(".env") {
            Format::Dotenv
        } else {
            Format::Binary
        }
    }

    /// [`Format::for_path`] for a file on disk.
    pub fn for_file(path: &Path) -> Format {
        Format::for_path(&path.to_string_lossy())
    }

    /// The output format Flux picks for a Secret data key: by its
    /// extension, with `.dockerconfigjson` as JSON.
    pub fn for_secret_key(key: &str) -> Format {
        if key.ends_with(".dockerconfigjson") {
            Format::Json
        } else {
            Format::for_path(key)
        }
    }

    /// The format Flux decrypts a `secretGenerator` `envs` file as: by its
    /// name, dotenv when the name says binary.
    pub fn for_env_file(path: &str) -> Format {
        match Format::for_path(path) {
            Format::Binary => Format::Dotenv,
            other => other,
        }
    }

    /// The bytes whose presence marks a file of this format as sops-encrypted
    /// (Flux's marker bytes).
    pub fn marker(self) -> &'static [u8] {
        match self {
            Format::Binary | Format::Json => b"\"mac\": \"ENC[",
            Format::Dotenv => b"sops_mac=ENC[",
            Format::Ini => b"[sops]",
            Format::Yaml => b"mac: ENC[",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Ini => "INI",
            Format::Binary => "binary",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a file does not parse. Holds a position and a description, never
/// the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> ParseError {
        ParseError {
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn at_line(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line: Some(line),
            column: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A loaded file: its data documents and its metadata tree (`None` when
/// the file has no sops metadata).
pub struct Loaded {
    pub doc: Document,
    pub metadata: Option<Value>,
}

/// Remove the top-level `sops` item of a branch and return its value.
fn take_sops(branch: &mut Vec<Item>) -> Option<Value> {
    let at = branch.iter().position(|i| i.key_str() == Some("sops"))?;
    Some(branch.remove(at).value)
}

/// Load a file in `format`.
pub fn load(data: &[u8], format: Format) -> Result<Loaded, ParseError> {
    let text = std::str::from_utf8(data).map_err(|e| {
        let line = data[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        ParseError::at_line(line, "the file is not UTF-8 text")
    })?;
    match format {
        Format::Yaml => {
            let docs = yaml::parse(text)?;
            let mut doc = Document::default();
            let mut metadata = None;
            for (i, root) in docs.into_iter().enumerate() {
                let mut branch = match root {
                    Value::Map(items) => items,
                    Value::Null => Vec::new(),
                    Value::Seq(_) => {
                        return Err(ParseError::new("YAML documents that are lists are not supported"));
                    }
                    _ => {
                        return Err(ParseError::new(
                            "YAML documents that are single values are not supported",
                        ));
                    }
                };
                // The metadata is the first document's; every document drops its copy.
                let sops = take_sops(&mut branch);
                if i == 0 {
                    metadata = sops;
                }
                doc.branches.push(branch);
            }
            if doc.branches.is_empty() {
                doc.branches.push(Vec::new());
            }
            Ok(Loaded { doc, metadata })
        }
        Format::Json | Format::Binary => {
            let mut branch = json::parse(text)?;
            let metadata = take_sops(&mut branch);
            Ok(Loaded {
                doc: Document {
                    branches: vec![branch],
                },
                metadata,
            })
        }
        Format::Dotenv => dotenv::load(text),
        Format::Ini => ini::load(text),
    }
}

/// Write decrypted documents out in `format`.
pub fn emit(doc: &Document, format: Format) -> Result<Zeroizing<Vec<u8>>, String> {
    let first = doc.branches.first().map(Vec::as_slice).unwrap_or_default();
    match format {
        Format::Yaml => Ok(Zeroizing::new(yaml::emit(&doc.branches).into_bytes())),
        Format::Json => json::emit(first, "\t").map(|s| Zeroizing::new(s.into_bytes())),
        Format::Dotenv => dotenv::emit(first).map(|s| Zeroizing::new(s.into_bytes())),
        Format::Ini => ini::emit(&doc.branches).map(|s| Zeroizing::new(s.into_bytes())),
        Format::Binary => {
            if doc.branches.len() != 1 {
                return Err("binary output needs exactly one document".into());
            }
            match first.iter().find(|i| i.key_str() == Some("data")) {
                Some(Item {
                    value: Value::Str(s), ..
                }) => Ok(Zeroizing::new(s.as_bytes().to_vec())),
                Some(_) => Err(
                    "its `data` key does not hold a string, so it cannot be written as a binary file".into(),
                ),
                None => Err("it has no `data` key, so it cannot be written as a binary file".into()),
            }
        }
    }
}

/// The first document as JSON indented with spaces, which YAML readers
/// also accept (Kubernetes objects after decryption).
pub fn emit_object_json(doc: &Document) -> Result<Zeroizing<String>, String> {
    let first = doc.branches.first().map(Vec::as_slice).unwrap_or_default();
    json::emit(first, "  ").map(Zeroizing::new)
}

/// sops's `ValueToString` for the flat formats.
fn flat_string(v: &Value) -> Option<String> {
    Some(match v {
        Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => super::tree::go_float_f(*f),
        Value::Bool(b) => b.to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Null => "<nil>".into(),
        Value::Map(_) | Value::Seq(_) => return None,
    })
}

const MAP_SEP: &str = "__map_";
const LIST_SEP: &str = "__list_";

enum Token {
    Map(String),
    List(usize),
}

/// sops's `tokenize` of a flattened metadata key.
fn tokenize(path: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = path;
    let mut state: Option<bool> = None; // None: first token; Some(true): map; Some(false): list
    loop {
        let next = [rest.find(MAP_SEP), rest.find(LIST_SEP)]
            .into_iter()
            .flatten()
            .min();
        let (part, tail) = match next {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        tokens.push(match state {
            None | Some(true) => Token::Map(part.to_string()),
            Some(false) => Token::List(
                part.parse()
                    .map_err(|_| format!("the flattened metadata key \"{path}\" has a bad list index"))?,
            ),
        });
        let Some(tail) = tail else { break };
        if let Some(t) = tail.strip_prefix(MAP_SEP) {
            state = Some(true);
            rest = t;
        } else if let Some(t) = tail.strip_prefix(LIST_SEP) {
            state = Some(false);
            rest = t;
        } else {
            break;
        }
    }
    Ok(tokens)
}

/// Rebuild the metadata tree from flattened `key → value` pairs
/// (sops's `Unflatten`).
fn unflatten(pairs: Vec<(String, String)>) -> Result<Value, String> {
    if pairs.len() > 10_000 {
        return Err("the metadata has more than 10,000 entries".into());
    }
    let mut root = Value::Map(Vec::new());
    for (key, value) in pairs {
        if key.matches(MAP_SEP).count() + key.matches(LIST_SEP).count() > 32 {
            return Err("a flattened metadata key is nested more than 32 deep".into());
        }
        let tokens = tokenize(&key)?;
        let mut node = &mut root;
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            let fresh = || match tokens.get(i + 1) {
                Some(Token::List(_)) => Value::Seq(Vec::new()),
                _ => Value::Map(Vec::new()),
            };
            node = match (node, token) {
                (Value::Map(items), Token::Map(k)) => {
                    let at = match items.iter().position(|it| it.key_str() == Some(k)) {
                        Some(at) => at,
                        None => {
                            items.push(Item::new(k.clone(), fresh()));
                            items.len() - 1
                        }
                    };
                    if last {
                        items[at].value = Value::Str(value.clone());
                    }
                    &mut items[at].value
                }
                (Value::Seq(values), Token::List(n)) => {
                    if *n > 1024 {
                        return Err(format!(
                            "the flattened metadata key \"{key}\" has a list index over 1024"
                        ));
                    }
                    while values.len() <= *n {
                        values.push(Value::Null);
                    }
                    if matches!(values[*n], Value::Null) {
                        values[*n] = fresh();
                    }
                    if last {
                        values[*n] = Value::Str(value.clone());
                    }
                    &mut values[*n]
                }
                _ => {
                    return Err(format!(
                        "the flattened metadata key \"{key}\" mixes lists and maps"
                    ));
                }
            };
        }
    }
    Ok(root)
}
