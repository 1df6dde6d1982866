//! dotenv as sops reads it: one `KEY=value` per line (split at the first
//! `=`, nothing trimmed, `\n` in a value is a line feed), `#` lines are
//! comments, and the metadata is flattened into `sops_*` keys.

use super::{Loaded, ParseError, flat_string, unflatten};
use crate::sops::tree::{Document, Item, Key, Value};

const PREFIX: &str = "sops_";

pub fn load(text: &str) -> Result<Loaded, ParseError> {
    let mut branch = Vec::new();
    let mut metadata = Vec::new();
    for (n, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            branch.push(Item::comment(comment));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(ParseError::at_line(n + 1, "a dotenv line without `=`"));
        };
        let value = value.replace("\\n", "\n");
        match key.strip_prefix(PREFIX) {
            Some(meta) => metadata.push((meta.to_string(), value)),
            None => branch.push(Item::new(key, Value::Str(value))),
        }
    }
    let metadata = if metadata.is_empty() {
        None
    } else {
        Some(unflatten(metadata).map_err(ParseError::new)?)
    };
    Ok(Loaded {
        doc: Document {
            branches: vec![branch],
        },
        metadata,
    })
}

pub fn emit(branch: &[Item]) -> Result<String, String> {
    let mut out = String::new();
    for item in branch {
        match &item.key {
            Key::Comment(c) => {
                out.push('#');
                out.push_str(c);
                out.push('\n');
            }
            Key::Str(k) => {
                let value = flat_string(&item.value).ok_or_else(|| {
                    format!("`{k}` holds {}, which a dotenv file cannot", item.value.kind())
                })?;
                out.push_str(k);
                out.push('=');
                out.push_str(&value.replace('\n', "\\n"));
                out.push('\n');
            }
        }
    }
    Ok(out)
}
