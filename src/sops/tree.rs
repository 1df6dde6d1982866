//! The document tree every format loads into, as sops models it: ordered
//! mappings whose items are keys or comments, sequences that may hold
//! comments, and typed scalars. Plaintext lives here after decryption, so
//! [`Document`] wipes every string and byte buffer when dropped, and no
//! type here prints a value in `Debug`.

use std::fmt;

use zeroize::Zeroize as _;

/// A mapping key, or a comment line standing among the keys.
#[derive(Clone, PartialEq)]
pub enum Key {
    Str(String),
    Comment(String),
}

/// One mapping entry.
#[derive(Clone, PartialEq)]
pub struct Item {
    pub key: Key,
    pub value: Value,
}

impl Item {
    pub fn new(key: impl Into<String>, value: Value) -> Item {
        Item {
            key: Key::Str(key.into()),
            value,
        }
    }

    pub fn comment(text: impl Into<String>) -> Item {
        Item {
            key: Key::Comment(text.into()),
            value: Value::Null,
        }
    }

    /// The key's text when it is a key (not a comment).
    pub fn key_str(&self) -> Option<&str> {
        match &self.key {
            Key::Str(k) => Some(k),
            Key::Comment(_) => None,
        }
    }
}

/// A node. `Comment` appears only inside sequences (and, from a
/// `type:comment` value, where sops would put it).
#[derive(Clone, PartialEq)]
pub enum Value {
    Map(Vec<Item>),
    Seq(Vec<Value>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Bytes(Vec<u8>),
    /// A `type:time` value, kept as its RFC 3339 text.
    Time(String),
    Comment(String),
}

impl Value {
    /// The kind of node, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Null => "null",
            Value::Bytes(_) => "binary data",
            Value::Time(_) => "a timestamp",
            Value::Comment(_) => "a comment",
        }
    }

    /// Overwrite every secret byte in place.
    pub fn wipe(&mut self) {
        match self {
            Value::Map(items) => items.iter_mut().for_each(Item::wipe),
            Value::Seq(values) => values.iter_mut().for_each(Value::wipe),
            Value::Str(s) | Value::Time(s) | Value::Comment(s) => s.zeroize(),
            Value::Bytes(b) => b.zeroize(),
            Value::Int(i) => *i = 0,
            Value::Float(f) => *f = 0.0,
            Value::Bool(b) => *b = false,
            Value::Null => {}
        }
    }
}

impl Item {
    fn wipe(&mut self) {
        match &mut self.key {
            Key::Str(s) | Key::Comment(s) => s.zeroize(),
        }
        self.value.wipe();
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Map(items) => f.debug_list().entries(items).finish(),
            Value::Seq(values) => f.debug_list().entries(values).finish(),
            other => f.write_str(other.kind()),
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(k) => write!(f, "{k:?}"),
            Key::Comment(_) => f.write_str("# comment"),
        }
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Key::Str(k) => write!(f, "{k}: {:?}", self.value),
            Key::Comment(_) => f.write_str("# comment"),
        }
    }
}

/// The data documents of one file (YAML may hold several; every other
/// format holds one), wiped on drop.
#[derive(Default)]
pub struct Document {
    pub branches: Vec<Vec<Item>>,
}

impl Drop for Document {
    fn drop(&mut self) {
        for branch in &mut self.branches {
            branch.iter_mut().for_each(Item::wipe);
        }
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Document({} documents)", self.branches.len())
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: the shortest decimal that
/// reads back as `f`, never in exponent form.
pub fn go_float_f(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        // Rust's Display is the shortest round-trip form without exponent.
        format!("{f}")
    }
}

/// Go's `json.Marshal` of a float64 (shortest form; exponent form below
/// 1e-6 and from 1e21, as ES6 does).
pub fn go_float_json(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust: "1e21" / "1e-7"; Go: "1e+21" / "1e-07".
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e')?;
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let digits = if digits.len() < 2 {
            format!("0{digits}")
        } else {
            digits.to_string()
        };
        Some(format!("{mantissa}e{sign}{digits}"))
    } else {
        Some(format!("{f}"))
    }
}

/// Go's `time.Parse(time.RFC3339, s)` followed by `Format(time.RFC3339)`:
/// fractional seconds dropped, a zero offset written `Z`. `None` when `s`
/// is not RFC 3339.
pub fn rfc3339_normalized(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r.clone()).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || b[10] != b'T'
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let zone = match rest {
        "Z" => "Z".to_string(),
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':'
            && z[1..3].bytes().all(|d| d.is_ascii_digit())
            && z[4..6].bytes().all(|d| d.is_ascii_digit()) =>
        {
            if &z[1..] == "00:00" {
                "Z".to_string()
            } else {
                z.to_string()
            }
        }
        _ => return None,
    };
    let year: u32 = s[..4].parse().ok()?;
    let month: u32 = s[5..7].parse().ok()?;
    let day: u32 = s[8..10].parse().ok()?;
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days {
        return None;
    }
    let hour: u32 = s[11..13].parse().ok()?;
    let min: u32 = s[14..16].parse().ok()?;
    let sec: u32 = s[17..19].parse().ok()?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    Some(format!("{}{zone}", &s[..19]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_formats() {
        assert_eq!(go_float_f(1234.56789), "1234.56789");
        assert_eq!(go_float_f(1.0), "1");
        assert_eq!(go_float_f(1e21), "1000000000000000000000");
        assert_eq!(go_float_f(f64::INFINITY), "+Inf");
        assert_eq!(go_float_json(1.0).unwrap(), "1");
        assert_eq!(go_float_json(1e21).unwrap(), "1e+21");
        assert_eq!(go_float_json(1e-7).unwrap(), "1e-07");
        assert_eq!(go_float_json(0.5).unwrap(), "0.5");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(
            rfc3339_normalized("2024-11-12T13:33:42Z").unwrap(),
            "2024-11-12T13:33:42Z"
        );
        assert_eq!(
            rfc3339_normalized("2024-11-12T13:33:42.123Z").unwrap(),
            "2024-11-12T13:33:42Z"
        );
        assert_eq!(
            rfc3339_normalized("2024-11-12T13:33:42+00:00").unwrap(),
            "2024-11-12T13:33:42Z"
        );
        assert_eq!(
            rfc3339_normalized("2024-11-12T13:33:42+02:00").unwrap(),
            "2024-11-12T13:33:42+02:00"
        );
        assert!(rfc3339_normalized("2024-11-12 13:33:42Z").is_none());
        assert!(rfc3339_normalized("2024-02-30T13:33:42Z").is_none());
        assert!(rfc3339_normalized("").is_none());
    }
}
