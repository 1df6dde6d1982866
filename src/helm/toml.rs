//! TOML for `toToml` and `fromToml`, as BurntSushi/toml (v1) writes and
//! reads it: keys sorted, plain values before tables, nested tables
//! indented by two spaces, arrays of tables as `[[x]]`.

use std::rc::Rc;

use super::value::{Entries, Value};

/// `toToml`: the document, or BurntSushi's error text.
pub fn encode(v: &Value) -> Result<String, String> {
    let Value::Map(_) = v else {
        return Err("toml: top-level values must be Go maps or structs".into());
    };
    let mut e = Enc {
        out: String::new(),
        written: false,
    };
    e.table(&[], v)?;
    Ok(e.out)
}

struct Enc {
    out: String,
    written: bool,
}

fn is_table(v: &Value) -> bool {
    matches!(v, Value::Map(_) | Value::Struct(_))
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::List(l) if !l.items.is_empty() && l.items.iter().all(is_table))
}

fn bare(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn key_str(k: &str) -> String {
    if bare(k) { k.to_string() } else { quoted(k) }
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn entries(v: &Value) -> Vec<(Rc<str>, Value)> {
    match v {
        Value::Map(m) => m.snapshot(),
        Value::Struct(s) => s
            .fields
            .iter()
            .map(|f| (Rc::from(f.json.unwrap_or(f.name)), f.value.clone()))
            .collect(),
        _ => Vec::new(),
    }
}

impl Enc {
    fn w(&mut self, s: &str) {
        self.out.push_str(s);
        self.written = true;
    }

    fn newline(&mut self) {
        if self.written {
            self.out.push('\n');
        }
    }

    fn indent(key: &[String]) -> String {
        "  ".repeat(key.len().saturating_sub(1))
    }

    fn full_key(key: &[String]) -> String {
        key.iter().map(|k| key_str(k)).collect::<Vec<_>>().join(".")
    }

    fn table(&mut self, key: &[String], v: &Value) -> Result<(), String> {
        if key.len() == 1 {
            self.newline();
        }
        if !key.is_empty() {
            let line = format!("{}[{}]", Self::indent(key), Self::full_key(key));
            self.w(&line);
            self.newline();
        }
        self.map_body(key, v)
    }

    fn map_body(&mut self, key: &[String], v: &Value) -> Result<(), String> {
        let mut direct = Vec::new();
        let mut sub = Vec::new();
        for (k, x) in entries(v) {
            if x.is_nil() {
                continue;
            }
            if is_table(&x) || is_table_array(&x) {
                sub.push((k, x));
            } else {
                direct.push((k, x));
            }
        }
        direct.sort_by(|a, b| a.0.cmp(&b.0));
        sub.sort_by(|a, b| a.0.cmp(&b.0));
        for (k, x) in direct.into_iter().chain(sub) {
            let mut child = key.to_vec();
            child.push(k.to_string());
            if is_table(&x) {
                self.table(&child, &x)?;
            } else if is_table_array(&x) {
                let Value::List(l) = &x else { continue };
                for item in &l.items {
                    self.newline();
                    let line = format!("{}[[{}]]", Self::indent(&child), Self::full_key(&child));
                    self.w(&line);
                    self.newline();
                    self.map_body(&child, item)?;
                }
            } else {
                let mut val = String::new();
                element(&mut val, &x)?;
                let line = format!("{}{} = {val}", Self::indent(&child), key_str(&k));
                self.w(&line);
                self.newline();
            }
        }
        Ok(())
    }
}

fn element(out: &mut String, v: &Value) -> Result<(), String> {
    match v {
        Value::Nil => return Err("toml: cannot encode a nil value".into()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            if f.is_nan() {
                out.push_str("nan");
            } else if f.is_infinite() {
                out.push_str(if *f > 0.0 { "inf" } else { "-inf" });
            } else {
                let s = super::gofmt::format_float(*f, 'f', None);
                out.push_str(&s);
                if !s.contains('.') {
                    out.push_str(".0");
                }
            }
        }
        Value::Str(s) => out.push_str(&quoted(s)),
        Value::Bytes(b) => out.push_str(&quoted(&String::from_utf8_lossy(b))),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                element(out, x)?;
            }
            out.push(']');
        }
        Value::Map(_) | Value::Struct(_) => {
            out.push('{');
            let mut items = entries(v);
            items.retain(|(_, x)| !x.is_nil());
            items.sort_by(|a, b| a.0.cmp(&b.0));
            for (i, (k, x)) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&key_str(k));
                out.push_str(" = ");
                element(out, x)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

// ---- decoding ---------------------------------------------------------------------------

/// `fromToml`: the document as a map, or the error text.
pub fn decode(text: &str) -> Result<Value, String> {
    let mut p = Dec {
        s: text.chars().collect(),
        i: 0,
        line: 1,
    };
    let root = Value::empty_map();
    let mut current = root.clone();
    loop {
        p.skip_ws_comments_newlines();
        if p.i >= p.s.len() {
            break;
        }
        if p.peek() == Some('[') {
            let array = p.s.get(p.i + 1) == Some(&'[');
            p.i += if array { 2 } else { 1 };
            let keys = p.key_path()?;
            p.expect(']')?;
            if array {
                p.expect(']')?;
            }
            current = if array {
                p.array_table(&root, &keys)?
            } else {
                p.table(&root, &keys)?
            };
            continue;
        }
        let keys = p.key_path()?;
        p.skip_ws();
        p.expect('=')?;
        p.skip_ws();
        let value = p.value(0)?;
        let (last, parents) = keys.split_last().ok_or_else(|| p.err("empty key"))?;
        let target = p.table(&current, parents)?;
        let Value::Map(m) = &target else {
            return Err(p.err("not a table"));
        };
        if m.get(last).is_some() {
            return Err(p.err(&format!("key {last:?} is already defined")));
        }
        m.insert(Rc::from(last.as_str()), value);
        p.skip_ws();
        if p.peek() == Some('#') {
            p.skip_comment();
        }
        match p.peek() {
            None | Some('\n') => {}
            Some('\r') if p.s.get(p.i + 1) == Some(&'\n') => {}
            Some(c) => return Err(p.err(&format!("expected a newline after a value, found {c:?}"))),
        }
    }
    Ok(root)
}

struct Dec {
    s: Vec<char>,
    i: usize,
    line: usize,
}

impl Dec {
    fn err(&self, msg: &str) -> String {
        format!("toml: line {}: {msg}", self.line)
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected {c:?}")))
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.i += 1;
        }
    }

    fn skip_comment(&mut self) {
        while self.peek().is_some_and(|c| c != '\n') {
            self.i += 1;
        }
    }

    fn skip_ws_comments_newlines(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\r') => self.i += 1,
                Some('\n') => {
                    self.line += 1;
                    self.i += 1;
                }
                Some('#') => self.skip_comment(),
                _ => return,
            }
        }
    }

    fn key_path(&mut self) -> Result<Vec<String>, String> {
        let mut keys = Vec::new();
        loop {
            self.skip_ws();
            let k = match self.peek() {
                Some('"') => self.basic_string()?,
                Some('\'') => self.literal_string()?,
                _ => {
                    let start = self.i;
                    while self
                        .peek()
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                    {
                        self.i += 1;
                    }
                    if self.i == start {
                        return Err(self.err("expected a key"));
                    }
                    self.s[start..self.i].iter().collect()
                }
            };
            keys.push(k);
            self.skip_ws();
            if self.peek() == Some('.') {
                self.i += 1;
                continue;
            }
            return Ok(keys);
        }
    }

    fn table(&self, root: &Value, keys: &[String]) -> Result<Value, String> {
        let mut cur = root.clone();
        for k in keys {
            let Value::Map(m) = &cur else {
                return Err(self.err("not a table"));
            };
            let next = match m.get(k) {
                Some(v @ Value::Map(_)) => v,
                Some(Value::List(l)) if l.items.last().is_some_and(|x| matches!(x, Value::Map(_))) => {
                    l.items.last().cloned().unwrap_or_default()
                }
                Some(_) => return Err(self.err(&format!("key {k:?} is not a table"))),
                None => {
                    let t = Value::empty_map();
                    m.insert(Rc::from(k.as_str()), t.clone());
                    t
                }
            };
            cur = next;
        }
        Ok(cur)
    }

    fn array_table(&self, root: &Value, keys: &[String]) -> Result<Value, String> {
        let (last, parents) = keys.split_last().ok_or_else(|| self.err("empty key"))?;
        let parent = self.table(root, parents)?;
        let Value::Map(m) = &parent else {
            return Err(self.err("not a table"));
        };
        let mut items = match m.get(last) {
            Some(Value::List(l)) => l.items.clone(),
            Some(_) => return Err(self.err(&format!("key {last:?} is not an array of tables"))),
            None => Vec::new(),
        };
        let t = Value::empty_map();
        items.push(t.clone());
        m.insert(Rc::from(last.as_str()), Value::list(items));
        Ok(t)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 100 {
            return Err(self.err("nested too deeply"));
        }
        match self.peek() {
            Some('"') => {
                if self.s[self.i..].starts_with(&['"', '"', '"']) {
                    self.multiline_basic().map(Value::string)
                } else {
                    self.basic_string().map(Value::string)
                }
            }
            Some('\'') => {
                if self.s[self.i..].starts_with(&['\'', '\'', '\'']) {
                    self.i += 3;
                    if self.peek() == Some('\n') {
                        self.i += 1;
                    }
                    let start = self.i;
                    while !self.s[self.i..].starts_with(&['\'', '\'', '\'']) {
                        if self.i >= self.s.len() {
                            return Err(self.err("unterminated string"));
                        }
                        self.i += 1;
                    }
                    let v: String = self.s[start..self.i].iter().collect();
                    self.i += 3;
                    Ok(Value::string(v))
                } else {
                    self.literal_string().map(Value::string)
                }
            }
            Some('[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_ws_comments_newlines();
                    if self.peek() == Some(']') {
                        self.i += 1;
                        break;
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_ws_comments_newlines();
                    match self.peek() {
                        Some(',') => self.i += 1,
                        Some(']') => {
                            self.i += 1;
                            break;
                        }
                        _ => return Err(self.err("expected ',' or ']' in an array")),
                    }
                }
                Ok(Value::list(items))
            }
            Some('{') => {
                self.i += 1;
                let table = Value::empty_map();
                self.skip_ws();
                if self.peek() == Some('}') {
                    self.i += 1;
                    return Ok(table);
                }
                loop {
                    let keys = self.key_path()?;
                    self.expect('=')?;
                    self.skip_ws();
                    let v = self.value(depth + 1)?;
                    let (last, parents) = keys.split_last().ok_or_else(|| self.err("empty key"))?;
                    let t = self.table(&table, parents)?;
                    if let Value::Map(m) = &t {
                        m.insert(Rc::from(last.as_str()), v);
                    }
                    self.skip_ws();
                    match self.peek() {
                        Some(',') => self.i += 1,
                        Some('}') => {
                            self.i += 1;
                            return Ok(table);
                        }
                        _ => return Err(self.err("expected ',' or '}' in an inline table")),
                    }
                }
            }
            Some(_) => self.scalar(),
            None => Err(self.err("expected a value")),
        }
    }

    fn scalar(&mut self) -> Result<Value, String> {
        let start = self.i;
        while self.peek().is_some_and(|c| {
            !matches!(c, ',' | ']' | '}' | '\n' | '#' | '\r') && (c != ' ' || self.datetime_space())
        }) {
            self.i += 1;
        }
        let word: String = self.s[start..self.i].iter().collect();
        let word = word.trim_end();
        match word {
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            "inf" | "+inf" => return Ok(Value::Float(f64::INFINITY)),
            "-inf" => return Ok(Value::Float(f64::NEG_INFINITY)),
            "nan" | "+nan" | "-nan" => return Ok(Value::Float(f64::NAN)),
            _ => {}
        }
        let clean = word.replace('_', "");
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
            if let Some(d) = clean.strip_prefix(prefix) {
                return i64::from_str_radix(d, radix)
                    .map(Value::Int64)
                    .map_err(|_| self.err(&format!("invalid number {word:?}")));
            }
        }
        if let Ok(i) = clean.parse::<i64>() {
            return Ok(Value::Int64(i));
        }
        if clean
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
            && let Ok(f) = clean.parse::<f64>()
        {
            return Ok(Value::Float(f));
        }
        if word.len() >= 8 && word.as_bytes().get(4) == Some(&b'-') || word.as_bytes().get(2) == Some(&b':') {
            return Ok(Value::string(word.to_string()));
        }
        Err(self.err(&format!("invalid value {word:?}")))
    }

    /// A space inside a date-time (`1979-05-27 07:32:00`).
    fn datetime_space(&self) -> bool {
        let before: String = self.s[self.i.saturating_sub(10)..self.i].iter().collect();
        before.len() == 10
            && before.as_bytes()[4] == b'-'
            && before.as_bytes()[7] == b'-'
            && self.s.get(self.i + 1).is_some_and(|c| c.is_ascii_digit())
            && self.s.get(self.i + 3) == Some(&':')
    }

    fn literal_string(&mut self) -> Result<String, String> {
        self.i += 1;
        let start = self.i;
        while self.peek() != Some('\'') {
            if self.peek().is_none() || self.peek() == Some('\n') {
                return Err(self.err("unterminated string"));
            }
            self.i += 1;
        }
        let v = self.s[start..self.i].iter().collect();
        self.i += 1;
        Ok(v)
    }

    fn basic_string(&mut self) -> Result<String, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some('\n') => return Err(self.err("unterminated string")),
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.i += 1;
                    self.escape(&mut out)?;
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn multiline_basic(&mut self) -> Result<String, String> {
        self.i += 3;
        if self.peek() == Some('\n') {
            self.i += 1;
        }
        let mut out = String::new();
        loop {
            if self.s[self.i..].starts_with(&['"', '"', '"']) {
                self.i += 3;
                return Ok(out);
            }
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some('\\') => {
                    self.i += 1;
                    if matches!(self.peek(), Some('\n' | ' ' | '\t' | '\r')) {
                        while matches!(self.peek(), Some('\n' | ' ' | '\t' | '\r')) {
                            self.i += 1;
                        }
                    } else {
                        self.escape(&mut out)?;
                    }
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Result<(), String> {
        let c = self.peek().ok_or_else(|| self.err("unterminated escape"))?;
        self.i += 1;
        match c {
            'b' => out.push('\u{8}'),
            't' => out.push('\t'),
            'n' => out.push('\n'),
            'f' => out.push('\u{c}'),
            'r' => out.push('\r'),
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            'u' | 'U' => {
                let n = if c == 'u' { 4 } else { 8 };
                let hex: String = self
                    .s
                    .get(self.i..self.i + n)
                    .ok_or_else(|| self.err("bad escape"))?
                    .iter()
                    .collect();
                self.i += n;
                let cp = u32::from_str_radix(&hex, 16).map_err(|_| self.err("bad escape"))?;
                out.push(char::from_u32(cp).ok_or_else(|| self.err("bad escape"))?);
            }
            other => return Err(self.err(&format!("invalid escape sequence \\{other}"))),
        }
        Ok(())
    }
}

#[allow(dead_code)]
fn _entries_type(_: Entries) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let v = decode("title = \"x\"\n[owner]\nname = 'Tom'\n[db]\nports = [ 8000, 8001 ]\nenabled = true\nratio = 0.5\n[[items]]\nid = 1\n[[items]]\nid = 2\n").unwrap();
        assert_eq!(
            encode(&v).unwrap(),
            "title = \"x\"\n\n[db]\n  enabled = true\n  ports = [8000, 8001]\n  ratio = 0.5\n\n[[items]]\n  id = 1\n\n[[items]]\n  id = 2\n\n[owner]\n  name = \"Tom\"\n"
        );
    }
}
