//! INI as sops reads it through go-ini: sections (keys before the first
//! header go to `DEFAULT`, which always comes first), `key = value` or
//! `key: value`, values trimmed and unquoted (`"…"`, `'…'`, `` `…` ``,
//! `"""…"""` across lines), `#` and `;` comments kept with their key, and
//! the metadata flattened into a `[sops]` section.

use std::collections::HashMap;

use super::{Loaded, ParseError, flat_string, unflatten};
use crate::sops::tree::{Document, Item, Key, Value};

const DEFAULT: &str = "DEFAULT";

struct Section {
    name: String,
    comment: Option<String>,
    keys: Vec<(String, String, Option<String>)>,
}

fn strip_comment_char(c: &str) -> String {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_string()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_string()
    } else {
        c.to_string()
    }
}

fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    if b.len() >= 2 {
        let (f, l) = (b[0], b[b.len() - 1]);
        if f == l && matches!(f, b'"' | b'\'' | b'`') {
            return &v[1..v.len() - 1];
        }
    }
    v
}

fn parse(text: &str) -> Result<Vec<Section>, ParseError> {
    let mut sections = vec![Section {
        name: DEFAULT.into(),
        comment: None,
        keys: Vec::new(),
    }];
    let mut comment: Vec<String> = Vec::new();
    // Section and key positions, so that long files stay linear.
    let mut section_at: HashMap<String, usize> = HashMap::from([(DEFAULT.to_string(), 0)]);
    let mut key_at: Vec<HashMap<String, usize>> = vec![HashMap::new()];
    let mut current = 0;
    let mut lines = text.lines().enumerate().peekable();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') || line.starts_with(';') {
            comment.push(line.to_string());
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let Some(name) = inner.strip_suffix(']') else {
                return Err(ParseError::at_line(n + 1, "a section header without `]`"));
            };
            let name = name.trim().to_string();
            let c = (!comment.is_empty()).then(|| comment.join("\n"));
            comment.clear();
            match section_at.get(&name) {
                Some(&at) => {
                    current = at;
                    if sections[at].comment.is_none() {
                        sections[at].comment = c;
                    }
                }
                None => {
                    current = sections.len();
                    section_at.insert(name.clone(), current);
                    key_at.push(HashMap::new());
                    sections.push(Section {
                        name,
                        comment: c,
                        keys: Vec::new(),
                    });
                }
            }
            continue;
        }
        let Some(at) = line.find(['=', ':']) else {
            return Err(ParseError::at_line(
                n + 1,
                "an INI line that is no section, key = value or comment",
            ));
        };
        let key = unquote(line[..at].trim()).to_string();
        let mut value = line[at + 1..].trim().to_string();
        if let Some(rest) = value.strip_prefix("\"\"\"") {
            // A value across lines, up to the closing `"""`.
            let mut v = rest.to_string();
            loop {
                if let Some(end) = v.find("\"\"\"") {
                    v.truncate(end);
                    break;
                }
                let Some((_, next)) = lines.next() else {
                    return Err(ParseError::at_line(n + 1, "a \"\"\" value is never closed"));
                };
                v.push('\n');
                v.push_str(next);
            }
            value = v;
        } else {
            while value.ends_with('\\') {
                value.pop();
                match lines.next() {
                    Some((_, next)) => value.push_str(next.trim()),
                    None => break,
                }
            }
            let quoted = value.len() >= 2
                && matches!(value.as_bytes()[0], b'"' | b'\'' | b'`')
                && value.as_bytes()[0] == value.as_bytes()[value.len() - 1];
            if quoted {
                value = unquote(&value).to_string();
            } else if let Some(i) = value.find(['#', ';']) {
                comment.push(value[i..].to_string());
                value = value[..i].trim().to_string();
            }
        }
        let c = (!comment.is_empty()).then(|| comment.join("\n"));
        comment.clear();
        let section = &mut sections[current];
        let keys = &mut key_at[current];
        match keys.get(&key) {
            Some(&at) => {
                section.keys[at].1 = value;
                section.keys[at].2 = c;
            }
            None => {
                keys.insert(key.clone(), section.keys.len());
                section.keys.push((key, value, c));
            }
        }
    }
    Ok(sections)
}

pub fn load(text: &str) -> Result<Loaded, ParseError> {
    let sections = parse(text)?;
    let mut branch = Vec::new();
    let mut metadata = None;
    for s in sections {
        if s.name == "sops" {
            let pairs = s
                .keys
                .into_iter()
                .map(|(k, v, _)| (k, v.replace("\\n", "\n")))
                .collect();
            metadata = Some(unflatten(pairs).map_err(ParseError::new)?);
            continue;
        }
        let mut items = Vec::new();
        if let Some(c) = &s.comment {
            items.push(Item::comment(strip_comment_char(c)));
        }
        for (k, v, c) in s.keys {
            items.push(Item::new(k, Value::Str(v)));
            if let Some(c) = c {
                items.push(Item::comment(strip_comment_char(&c)));
            }
        }
        branch.push(Item::new(s.name, Value::Map(items)));
    }
    Ok(Loaded {
        doc: Document {
            branches: vec![branch],
        },
        metadata,
    })
}

fn quote_value(v: &str) -> String {
    if v.contains('\n') {
        format!("\"\"\"{v}\"\"\"")
    } else if v.contains(['#', ';']) {
        format!("`{v}`")
    } else if v.trim().len() != v.len() {
        format!("\"{v}\"")
    } else {
        v.to_string()
    }
}

fn comment_lines(c: &str, out: &mut String) {
    for line in c.split('\n') {
        out.push_str("; ");
        out.push_str(line);
        out.push('\n');
    }
}

pub fn emit(branches: &[Vec<Item>]) -> Result<String, String> {
    let mut out = String::new();
    for item in branches.iter().flatten() {
        let Key::Str(name) = &item.key else { continue };
        let Value::Map(items) = &item.value else {
            return Err(format!(
                "`{name}` is {}, but INI holds only sections of keys",
                item.value.kind()
            ));
        };
        let mut body = String::new();
        let mut section_comment = None;
        let mut first = true;
        for it in items {
            match &it.key {
                Key::Comment(c) if first && section_comment.is_none() && body.is_empty() => {
                    section_comment = Some(c.clone());
                }
                Key::Comment(c) => comment_lines(c, &mut body),
                Key::Str(k) => {
                    let v = flat_string(&it.value)
                        .ok_or_else(|| format!("`{name}.{k}` holds {}, which INI cannot", it.value.kind()))?;
                    body.push_str(k);
                    body.push_str(" = ");
                    body.push_str(&quote_value(&v));
                    body.push('\n');
                }
            }
            first = false;
        }
        if name == DEFAULT && body.is_empty() && section_comment.is_none() {
            continue;
        }
        if !out.is_empty() {
            out.push('\n');
        }
        if let Some(c) = section_comment {
            comment_lines(&c, &mut out);
        }
        if name != DEFAULT {
            out.push('[');
            out.push_str(name);
            out.push_str("]\n");
        }
        out.push_str(&body);
    }
    Ok(out)
}
