//! Go's `encoding/json` for template values: `toJson` (keys sorted, `<>&`
//! escaped as `\u003c`…, floats as Go writes them, `[]byte` as base64) and
//! `fromJson` (numbers become `float64`, as in Go).

use std::fmt::Write as _;

use base64::Engine as _;

use super::gofmt;
use super::value::{Entries, MapKind, StructType, Value};

/// How to write JSON.
#[derive(Clone, Copy, Default)]
pub struct Style {
    /// Escape `<`, `>` and `&` (Go's default).
    pub escape_html: bool,
    /// `MarshalIndent(v, "", indent)`.
    pub indent: Option<&'static str>,
}

/// `json.Marshal`.
pub fn encode(v: &Value, style: Style) -> Result<String, String> {
    let mut out = String::new();
    write_value(&mut out, v, style, 0, 0)?;
    Ok(out)
}

fn newline(out: &mut String, style: Style, depth: usize) {
    if let Some(ind) = style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(ind);
        }
    }
}

fn write_value(
    out: &mut String,
    v: &Value,
    style: Style,
    depth: usize,
    nesting: usize,
) -> Result<(), String> {
    if nesting > 10_000 {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float(*f)?),
        Value::Str(s) => write_string(out, s, style.escape_html),
        Value::Bytes(b) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        Value::List(l) => {
            if l.items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, x) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, style, depth + 1);
                write_value(out, x, style, depth + 1, nesting + 1)?;
            }
            newline(out, style, depth);
            out.push(']');
        }
        Value::Map(m) => {
            let map = m.0.borrow();
            if map.entries.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, (k, x)) in map.entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, style, depth + 1);
                write_string(out, k, style.escape_html);
                out.push(':');
                if style.indent.is_some() {
                    out.push(' ');
                }
                if map.kind == MapKind::Files {
                    // map[string][]byte: base64 values.
                    write_value(out, x, style, depth + 1, nesting + 1)?;
                } else {
                    write_value(out, x, style, depth + 1, nesting + 1)?;
                }
            }
            newline(out, style, depth);
            out.push('}');
        }
        Value::Struct(s) => match s.ty {
            StructType::Semver | StructType::Time => {
                let text = gofmt::stringer(v).unwrap_or_default();
                let text = if s.ty == StructType::Time {
                    super::funcs::date::rfc3339(v).unwrap_or(text)
                } else {
                    text
                };
                write_string(out, &text, style.escape_html);
            }
            _ => {
                let fields: Vec<_> = s
                    .fields
                    .iter()
                    .filter(|f| !f.omit_empty || f.value.truthy())
                    .collect();
                if fields.is_empty() {
                    out.push_str("{}");
                    return Ok(());
                }
                out.push('{');
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, style, depth + 1);
                    write_string(out, f.json.unwrap_or(f.name), style.escape_html);
                    out.push(':');
                    if style.indent.is_some() {
                        out.push(' ');
                    }
                    write_value(out, &f.value, style, depth + 1, nesting + 1)?;
                }
                newline(out, style, depth);
                out.push('}');
            }
        },
    }
    Ok(())
}

/// A float as `encoding/json` writes it.
pub fn float(f: f64) -> Result<String, String> {
    if !f.is_finite() {
        return Err(format!("json: unsupported value: {}", gofmt::float_v(f)));
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = gofmt::format_float(f, 'e', None);
        // e-09 → e-9
        if let Some(i) = s.find("e-0") {
            return Ok(format!("{}e-{}", &s[..i], &s[i + 3..]));
        }
        return Ok(s);
    }
    Ok(gofmt::format_float(f, 'f', None))
}

pub fn write_string(out: &mut String, s: &str, escape_html: bool) {
    crate::quoted::write(out, s, crate::quoted::Syntax::Json { escape_html });
}

// ---- decoding --------------------------------------------------------------------

/// `json.Unmarshal` into `interface{}`.
pub fn decode(text: &str) -> Result<Value, String> {
    let mut p = Decoder {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.skip_ws();
    if p.i >= p.s.len() {
        return Err("unexpected end of JSON input".into());
    }
    let v = p.value()?;
    p.skip_ws();
    if p.i < p.s.len() {
        return Err(format!(
            "invalid character {} after top-level value",
            quote_char(p.s[p.i])
        ));
    }
    Ok(v)
}

fn quote_char(b: u8) -> String {
    match b {
        b'\'' => "'\\''".into(),
        b'"' => "'\"'".into(),
        b if b.is_ascii_graphic() || b == b' ' => format!("'{}'", b as char),
        b => format!("'\\x{b:02x}'"),
    }
}

struct Decoder<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Decoder<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eof<T>(&self) -> Result<T, String> {
        Err("unexpected end of JSON input".into())
    }

    fn value(&mut self) -> Result<Value, String> {
        self.skip_ws();
        let Some(&c) = self.s.get(self.i) else {
            return self.eof();
        };
        match c {
            b'{' => {
                self.depth += 1;
                if self.depth > 10_000 {
                    return Err("exceeded max depth".into());
                }
                self.i += 1;
                let mut entries = Entries::new();
                self.skip_ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Value::map(entries));
                }
                loop {
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b'"') => {}
                        Some(&c) => {
                            return Err(format!(
                                "invalid character {} looking for beginning of object key string",
                                quote_char(c)
                            ));
                        }
                        None => return self.eof(),
                    }
                    let k = self.string()?;
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b':') => self.i += 1,
                        Some(&c) => {
                            return Err(format!("invalid character {} after object key", quote_char(c)));
                        }
                        None => return self.eof(),
                    }
                    let v = self.value()?;
                    entries.insert(k.into(), v);
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            break;
                        }
                        Some(&c) => {
                            return Err(format!(
                                "invalid character {} after object key:value pair",
                                quote_char(c)
                            ));
                        }
                        None => return self.eof(),
                    }
                }
                self.depth -= 1;
                Ok(Value::map(entries))
            }
            b'[' => {
                self.depth += 1;
                if self.depth > 10_000 {
                    return Err("exceeded max depth".into());
                }
                self.i += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    self.depth -= 1;
                    return Ok(Value::list(items));
                }
                loop {
                    items.push(self.value()?);
                    self.skip_ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            break;
                        }
                        Some(&c) => {
                            return Err(format!("invalid character {} after array element", quote_char(c)));
                        }
                        None => return self.eof(),
                    }
                }
                self.depth -= 1;
                Ok(Value::list(items))
            }
            b'"' => Ok(Value::string(self.string()?)),
            b't' => self.literal("true", Value::Bool(true)),
            b'f' => self.literal("false", Value::Bool(false)),
            b'n' => self.literal("null", Value::Nil),
            b'-' | b'0'..=b'9' => self.number(),
            c => Err(format!(
                "invalid character {} looking for beginning of value",
                quote_char(c)
            )),
        }
    }

    fn literal(&mut self, word: &str, v: Value) -> Result<Value, String> {
        for (k, want) in word.bytes().enumerate() {
            match self.s.get(self.i + k) {
                None => return self.eof(),
                Some(&c) if c != want => {
                    return Err(format!(
                        "invalid character {} in literal {word} (expecting {})",
                        quote_char(c),
                        quote_char(want)
                    ));
                }
                _ => {}
            }
        }
        self.i += word.len();
        Ok(v)
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        let s = self.s;
        let mut i = self.i;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            Some(&c) => return Err(format!("invalid character {} in numeric literal", quote_char(c))),
            None => return self.eof(),
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
            match s.get(i) {
                Some(c) if c.is_ascii_digit() => {}
                Some(&c) => {
                    return Err(format!(
                        "invalid character {} after decimal point in numeric literal",
                        quote_char(c)
                    ));
                }
                None => return self.eof(),
            }
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            match s.get(i) {
                Some(c) if c.is_ascii_digit() => {}
                Some(&c) => {
                    return Err(format!(
                        "invalid character {} in exponent of numeric literal",
                        quote_char(c)
                    ));
                }
                None => return self.eof(),
            }
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.i = i;
        let text = std::str::from_utf8(&s[start..i]).unwrap_or("0");
        let f: f64 = text.parse().unwrap_or(0.0);
        if f.is_infinite() {
            return Err(format!(
                "json: cannot unmarshal number {text} into Go value of type float64"
            ));
        }
        Ok(Value::Float(f))
    }

    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return self.eof();
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return self.eof();
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s.get(self.i) == Some(&b'\\')
                                && self.s.get(self.i + 1) == Some(&b'u')
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                } else {
                                    self.i = save;
                                }
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        c => {
                            return Err(format!(
                                "invalid character {} in string escape code",
                                quote_char(c)
                            ));
                        }
                    }
                }
                c if c < 0x20 => {
                    return Err(format!("invalid character {} in string literal", quote_char(c)));
                }
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let Some(h) = self.s.get(self.i..self.i + 4) else {
            return self.eof();
        };
        let h =
            std::str::from_utf8(h).map_err(|_| "invalid character in \\u hexadecimal character escape")?;
        let v = u32::from_str_radix(h, 16)
            .map_err(|_| "invalid character in \\u hexadecimal character escape".to_string())?;
        self.i += 4;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_go() {
        let v = decode(r#"{"b":[1,2.5,"x<y"],"a":null,"c":{"d":true},"e":1e21,"f":0.0000001}"#).unwrap();
        assert_eq!(
            encode(
                &v,
                Style {
                    escape_html: true,
                    indent: None
                }
            )
            .unwrap(),
            r#"{"a":null,"b":[1,2.5,"x\u003cy"],"c":{"d":true},"e":1e+21,"f":1e-7}"#
        );
        assert_eq!(
            encode(
                &v,
                Style {
                    escape_html: false,
                    indent: Some("  ")
                }
            )
            .unwrap(),
            "{\n  \"a\": null,\n  \"b\": [\n    1,\n    2.5,\n    \"x<y\"\n  ],\n  \"c\": {\n    \"d\": true\n  },\n  \"e\": 1e+21,\n  \"f\": 1e-7\n}"
        );
        assert_eq!(encode(&Value::Float(1e6), Style::default()).unwrap(), "1000000");
    }

    #[test]
    fn decode_errors_like_go() {
        assert_eq!(decode("").unwrap_err(), "unexpected end of JSON input");
        assert_eq!(
            decode("{x}").unwrap_err(),
            "invalid character 'x' looking for beginning of object key string"
        );
        assert_eq!(
            decode("[1,]").unwrap_err(),
            "invalid character ']' looking for beginning of value"
        );
        assert_eq!(
            decode("1 2").unwrap_err(),
            "invalid character '2' after top-level value"
        );
    }
}
