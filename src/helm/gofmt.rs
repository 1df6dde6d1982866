//! Go's `fmt` and `strconv` as templates use them: how a value prints
//! (`%v`: `map[a:1 b:[x y]]`, `<nil>`, floats as `1e+06`), `print`,
//! `println` and `printf` with Go's verbs, flags and error notations
//! (`%!d(string=x)`), and `strconv.FormatFloat` and `strconv.Quote`.

use std::fmt::Write as _;

use super::value::{MapKind, StructType, Value};

// ---- floats ----------------------------------------------------------------

/// Decimal digits of a float: `0.d₁d₂… × 10^dp`, no trailing zeros.
struct Digits {
    d: Vec<u8>,
    dp: i32,
}

/// Digits from Rust's `{:e}` formatting (shortest round-trip, or rounded
/// half to even at `prec` fractional digits of the mantissa — as Go does).
fn digits(f: f64, sig: Option<usize>) -> Digits {
    let s = match sig {
        None => format!("{:e}", f.abs()),
        Some(n) => format!("{:.*e}", n.saturating_sub(1), f.abs()),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.len() > 1 && d.last() == Some(&b'0') {
        d.pop();
    }
    if d == [b'0'] {
        return Digits { d: Vec::new(), dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

/// `strconv.FormatFloat(f, fmt, prec, 64)` for `fmt` in `eEfFgG`; `prec`
/// `None` is Go's `-1` (the shortest representation that round-trips).
pub fn format_float(f: f64, fmt: char, prec: Option<usize>) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let neg = f.is_sign_negative();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    match fmt {
        'f' | 'F' => match prec {
            Some(p) => {
                let _ = write!(out, "{:.*}", p, f.abs());
            }
            None => {
                let digs = digits(f, None);
                fmt_f(&mut out, &digs, (digs.d.len() as i32 - digs.dp).max(0) as usize);
            }
        },
        'e' | 'E' => {
            let digs = match prec {
                Some(p) => digits(f, Some(p + 1)),
                None => digits(f, None),
            };
            let p = prec.unwrap_or(digs.d.len().max(1) - 1);
            fmt_e(&mut out, &digs, p, fmt);
        }
        _ => {
            let shortest = prec.is_none();
            let mut p = match prec {
                Some(0) => 1,
                Some(p) => p,
                None => 0,
            };
            let digs = if shortest {
                digits(f, None)
            } else {
                digits(f, Some(p))
            };
            let nd = digs.d.len() as i32;
            let mut eprec = if shortest { nd } else { p as i32 };
            if !shortest && eprec > nd && nd >= digs.dp {
                eprec = nd;
            }
            if shortest {
                eprec = 6;
                p = nd as usize;
            }
            let exp = digs.dp - 1;
            let e = if fmt == 'G' { 'E' } else { 'e' };
            if exp < -4 || exp >= eprec {
                if p as i32 > nd {
                    p = nd.max(1) as usize;
                }
                fmt_e(&mut out, &digs, p.saturating_sub(1), e);
            } else {
                if p as i32 > digs.dp {
                    p = nd as usize;
                }
                fmt_f(&mut out, &digs, (p as i32 - digs.dp).max(0) as usize);
            }
        }
    }
    out
}

fn digit(d: &Digits, i: i32) -> char {
    if i >= 0 && (i as usize) < d.d.len() {
        d.d[i as usize] as char
    } else {
        '0'
    }
}

fn fmt_e(out: &mut String, d: &Digits, prec: usize, e: char) {
    out.push(if d.d.is_empty() { '0' } else { digit(d, 0) });
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            out.push(digit(d, i));
        }
    }
    out.push(e);
    let exp = if d.d.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    let _ = write!(out, "{exp}");
}

fn fmt_f(out: &mut String, d: &Digits, prec: usize) {
    if d.dp > 0 {
        for i in 0..d.dp {
            out.push(digit(d, i));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 0..prec as i32 {
            out.push(digit(d, d.dp + i));
        }
    }
}

/// A float as `%v` prints it.
pub fn float_v(f: f64) -> String {
    format_float(f, 'g', None)
}

// ---- quoting ------------------------------------------------------------------

/// `strconv.Quote`.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    quote_into(&mut out, s.as_bytes(), '"', false);
    out.push('"');
    out
}

/// `strconv.QuoteToASCII`-less quoting of bytes (invalid UTF-8 as `\x..`).
pub fn quote_into(out: &mut String, bytes: &[u8], q: char, ascii: bool) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let (c, n) = match std::str::from_utf8(&rest[..rest.len().min(4)]) {
            Ok(s) => (s.chars().next(), s.chars().next().map_or(1, char::len_utf8)),
            Err(e) if e.valid_up_to() > 0 => {
                let s = std::str::from_utf8(&rest[..e.valid_up_to()]).unwrap_or_default();
                (s.chars().next(), s.chars().next().map_or(1, char::len_utf8))
            }
            Err(_) => (None, 1),
        };
        match c {
            None => {
                let _ = write!(out, "\\x{:02x}", rest[0]);
            }
            Some(c) => quote_char(out, c, q, ascii),
        }
        rest = &rest[n..];
    }
}

fn quote_char(out: &mut String, c: char, q: char, ascii: bool) {
    match c {
        _ if c == q || c == '\\' => {
            out.push('\\');
            out.push(c);
        }
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        _ if ascii && !c.is_ascii() || !is_print(c) => {
            let n = c as u32;
            if n < 0x80 {
                let _ = write!(out, "\\x{n:02x}");
            } else if n < 0x10000 {
                let _ = write!(out, "\\u{n:04x}");
            } else {
                let _ = write!(out, "\\U{n:08x}");
            }
        }
        _ => out.push(c),
    }
}

/// Go's `strconv.IsPrint`, close enough: graphic characters and the space.
pub fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let n = c as u32;
    // Unassigned/format characters Go treats as non-printable.
    !matches!(n, 0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
        | 0xFFFE | 0xFFFF | 0xD800..=0xDFFF)
}

// ---- %v ---------------------------------------------------------------------------

/// How a value prints with `%v` (or `%+v`).
pub fn write_v(out: &mut String, v: &Value, plus: bool, depth: usize) {
    match v {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&float_v(*f)),
        Value::Str(s) => out.push_str(s),
        Value::Bytes(b) => {
            out.push('[');
            for (i, x) in b.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{x}");
            }
            out.push(']');
        }
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, x, plus, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            let m = m.0.borrow();
            out.push_str("map[");
            for (i, (k, x)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, x, plus, depth + 1);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            if let Some(text) = stringer(v) {
                out.push_str(&text);
                return;
            }
            let pointer = v.kind_name() == "ptr";
            if pointer && depth > 0 {
                // Go prints a nested pointer as its address.
                out.push_str("0xc000010000");
                return;
            }
            if pointer {
                out.push('&');
            }
            out.push('{');
            let mut first = true;
            for f in &s.fields {
                if s.ty == StructType::Chart && f.name == "IsRoot" {
                    // Metadata is embedded: its fields print inside braces.
                    out.push_str("} ");
                    first = true;
                }
                if !first {
                    out.push(' ');
                }
                first = false;
                if s.ty == StructType::Chart && f.name == "Name" {
                    out.push('{');
                }
                if plus {
                    out.push_str(f.name);
                    out.push(':');
                }
                write_v(out, &f.value, plus, depth + 1);
            }
            out.push('}');
        }
    }
}

/// The `String()` of types that have one.
pub fn stringer(v: &Value) -> Option<String> {
    let Value::Struct(s) = v else { return None };
    match s.ty {
        StructType::KubeVersion => s.field("Version").and_then(|v| v.as_str().map(str::to_string)),
        StructType::Semver => {
            let mut out = String::new();
            for (i, name) in ["Major", "Minor", "Patch"].iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                write_v(&mut out, s.field(name).unwrap_or(&Value::Nil), false, 1);
            }
            if let Some(Value::Str(p)) = s.field("Prerelease")
                && !p.is_empty()
            {
                out.push('-');
                out.push_str(p);
            }
            if let Some(Value::Str(m)) = s.field("Metadata")
                && !m.is_empty()
            {
                out.push('+');
                out.push_str(m);
            }
            Some(out)
        }
        StructType::Time => super::funcs::date::time_string(v),
        _ => None,
    }
}

/// `fmt.Sprint` of one value.
pub fn sprint_value(v: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, v, false, 0);
    out
}

/// `fmt.Sprint`: operands separated by a space when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, a) in args.iter().enumerate() {
        let is_string = matches!(a, Value::Str(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        write_v(&mut out, a, false, 0);
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: operands always separated by a space, and a newline.
pub fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(&mut out, a, false, 0);
    }
    out.push('\n');
    out
}

// ---- printf --------------------------------------------------------------------

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `fmt.Sprintf`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(format.len() + 16);
    let bytes = format.as_bytes();
    let mut cur = ArgNum::default();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i] != b'%' {
            i += 1;
        }
        out.push_str(&format[start..i]);
        if i >= bytes.len() {
            break;
        }
        i += 1; // '%'
        let mut fl = Flags::default();
        // flags
        while i < bytes.len() {
            match bytes[i] {
                b'#' => fl.sharp = true,
                b'0' => fl.zero = !fl.minus,
                b'+' => fl.plus = true,
                b'-' => {
                    fl.minus = true;
                    fl.zero = false;
                }
                b' ' => fl.space = true,
                _ => break,
            }
            i += 1;
        }
        // argument index, width
        cur.good = true;
        i = cur.index(format, i);
        if i < bytes.len() && bytes[i] == b'*' {
            i += 1;
            match args.get(cur.next) {
                Some(Value::Int(w) | Value::Int64(w)) => {
                    if *w < 0 {
                        fl.minus = true;
                        fl.zero = false;
                    }
                    fl.width = Some(w.unsigned_abs() as usize);
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            cur.next += 1;
        } else {
            let (n, ni) = parse_num(format, i);
            if ni > i {
                fl.width = Some(n);
            }
            i = ni;
        }
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            i = cur.index(format, i);
            if i < bytes.len() && bytes[i] == b'*' {
                i += 1;
                match args.get(cur.next) {
                    Some(Value::Int(p) | Value::Int64(p)) if *p >= 0 => fl.prec = Some(*p as usize),
                    Some(Value::Int(_) | Value::Int64(_)) => fl.prec = None,
                    _ => out.push_str("%!(BADPREC)"),
                }
                cur.next += 1;
            } else {
                let (n, ni) = parse_num(format, i);
                fl.prec = Some(n);
                i = ni;
            }
        }
        i = cur.index(format, i);
        if i >= bytes.len() {
            out.push_str("%!(NOVERB)");
            break;
        }
        let verb = format[i..].chars().next().unwrap_or('%');
        i += verb.len_utf8();
        match verb {
            '%' => {
                out.push('%');
                continue;
            }
            _ if !cur.good => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(BADINDEX)");
                continue;
            }
            _ if cur.next >= args.len() => {
                out.push_str("%!");
                out.push(verb);
                out.push_str("(MISSING)");
                continue;
            }
            _ => {}
        }
        let arg = &args[cur.next];
        cur.next += 1;
        fmt_arg(&mut out, arg, verb, fl, 0);
    }
    if !cur.reordered && cur.next < args.len() {
        out.push_str("%!(EXTRA ");
        for (k, a) in args[cur.next..].iter().enumerate() {
            if k > 0 {
                out.push_str(", ");
            }
            if a.is_nil() {
                out.push_str("<nil>");
            } else {
                out.push_str(&a.type_name());
                out.push('=');
                write_v(&mut out, a, false, 0);
            }
        }
        out.push(')');
    }
    out
}

fn parse_num(s: &str, mut i: usize) -> (usize, usize) {
    let b = s.as_bytes();
    let mut n = 0usize;
    while i < b.len() && b[i].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add((b[i] - b'0') as usize);
        if n > 1_000_000 {
            n = 1_000_000;
        }
        i += 1;
    }
    (n, i)
}

/// Which argument the next verb takes (Go's `argNum`), whether an `[n]`
/// chose it (`reordered`) and whether the last `[n]` was good.
#[derive(Default)]
struct ArgNum {
    next: usize,
    reordered: bool,
    good: bool,
}

impl ArgNum {
    /// Take an `[n]` at `i`, if there is one; gives the position after it.
    fn index(&mut self, format: &str, i: usize) -> usize {
        let Some((n, after, ok)) = arg_index(format, i) else {
            return i;
        };
        self.good = ok;
        if ok {
            self.next = n;
            self.reordered = true;
        }
        after
    }
}

/// `[n]` at `i`: the 0-based index, the position after it and whether it is good.
fn arg_index(s: &str, i: usize) -> Option<(usize, usize, bool)> {
    let b = s.as_bytes();
    if i >= b.len() || b[i] != b'[' {
        return None;
    }
    let close = s[i..].find(']').map(|c| c + i);
    match close {
        None => Some((0, b.len(), false)),
        Some(c) => match s[i + 1..c].parse::<usize>() {
            Ok(n) if n >= 1 => Some((n - 1, c + 1, true)),
            _ => Some((0, c + 1, false)),
        },
    }
}

fn pad(out: &mut String, s: &str, fl: Flags) {
    let Some(w) = fl.width else {
        out.push_str(s);
        return;
    };
    let n = s.chars().count();
    if n >= w {
        out.push_str(s);
        return;
    }
    let fill = w - n;
    if fl.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if fl.zero {
        // Zero padding goes after a sign.
        let (sign, rest) = match s.as_bytes().first() {
            Some(b'-' | b'+' | b' ') => s.split_at(1),
            _ => ("", s),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(rest);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(s);
    }
}

fn bad_verb(out: &mut String, v: &Value, verb: char) {
    out.push_str("%!");
    out.push(verb);
    out.push('(');
    if v.is_nil() {
        out.push_str("<nil>");
    } else {
        out.push_str(&v.type_name());
        out.push('=');
        write_v(out, v, false, 0);
    }
    out.push(')');
}

fn fmt_arg(out: &mut String, v: &Value, verb: char, fl: Flags, depth: usize) {
    if verb == 'T' {
        let t = if v.is_nil() {
            "<nil>".to_string()
        } else {
            v.type_name()
        };
        pad(out, &t, fl);
        return;
    }
    match v {
        Value::Nil => match verb {
            'v' => pad(out, "<nil>", fl),
            _ => bad_verb(out, v, verb),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, fl),
            _ => bad_verb(out, v, verb),
        },
        Value::Int(i) | Value::Int64(i) => fmt_int(out, *i, v, verb, fl),
        Value::Float(f) => fmt_float(out, *f, v, verb, fl),
        Value::Str(s) => fmt_str(out, s.as_bytes(), v, verb, fl),
        Value::Bytes(b) => match verb {
            's' | 'q' | 'x' | 'X' => fmt_str(out, b, v, verb, fl),
            _ => fmt_list(
                out,
                b.iter().map(|x| Value::Int(*x as i64)).collect(),
                verb,
                fl,
                depth,
            ),
        },
        Value::List(l) => fmt_list(out, l.items.clone(), verb, fl, depth),
        Value::Map(m) => {
            if verb == 'v' && fl.sharp {
                pad(out, &sprint_value(v), fl);
                return;
            }
            let entries = m.snapshot();
            let _ = m.kind() == MapKind::Any;
            out.push_str("map[");
            for (i, (k, x)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_arg(out, &Value::Str(k.clone()), verb, fl, depth + 1);
                out.push(':');
                fmt_arg(out, x, verb, fl, depth + 1);
            }
            out.push(']');
        }
        Value::Struct(_) => {
            if let Some(s) = stringer(v) {
                fmt_str(out, s.as_bytes(), &Value::string(s.clone()), verb, fl);
                return;
            }
            let mut s = String::new();
            write_v(&mut s, v, fl.plus, depth);
            pad(out, &s, fl);
        }
    }
}

fn fmt_list(out: &mut String, items: Vec<Value>, verb: char, fl: Flags, depth: usize) {
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        fmt_arg(out, x, verb, fl, depth + 1);
    }
    out.push(']');
}

fn fmt_int(out: &mut String, i: i64, v: &Value, verb: char, fl: Flags) {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let body = match verb {
        'v' | 'd' => u.to_string(),
        'b' => format!("{u:b}"),
        'o' | 'O' => format!("{u:o}"),
        'x' => format!("{u:x}"),
        'X' => format!("{u:X}"),
        'c' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), fl);
            return;
        }
        'q' => {
            let c = char::from_u32(i as u32).unwrap_or('\u{FFFD}');
            let mut s = String::from("'");
            quote_char(&mut s, c, '\'', fl.plus);
            s.push('\'');
            pad(out, &s, fl);
            return;
        }
        'U' => {
            let s = format!("U+{u:04X}");
            pad(out, &s, fl);
            return;
        }
        'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => {
            bad_verb(out, v, verb);
            return;
        }
        _ => {
            bad_verb(out, v, verb);
            return;
        }
    };
    let mut body = body;
    if let Some(p) = fl.prec {
        if p == 0 && u == 0 {
            body.clear();
        }
        while body.len() < p {
            body.insert(0, '0');
        }
    }
    let prefix = match (verb, fl.sharp) {
        ('x', true) => "0x",
        ('X', true) => "0X",
        ('o', true) if !body.starts_with('0') => "0",
        ('O', _) => "0o",
        ('b', true) => "0b",
        _ => "",
    };
    let sign = if neg {
        "-"
    } else if fl.plus {
        "+"
    } else if fl.space {
        " "
    } else {
        ""
    };
    let s = format!("{sign}{prefix}{body}");
    let fl = Flags {
        zero: fl.zero && fl.prec.is_none(),
        ..fl
    };
    pad(out, &s, fl);
}

fn fmt_float(out: &mut String, f: f64, v: &Value, verb: char, fl: Flags) {
    let mut s = match verb {
        'v' => format_float(f, 'g', fl.prec),
        'e' | 'E' | 'f' | 'F' => format_float(f, verb, Some(fl.prec.unwrap_or(6))),
        'g' | 'G' => format_float(f, verb, fl.prec),
        _ => {
            bad_verb(out, v, verb);
            return;
        }
    };
    if fl.sharp && !s.contains('.') && f.is_finite() {
        match s.find(['e', 'E']) {
            Some(e) => s.insert(e, '.'),
            None => s.push('.'),
        }
    }
    if f.is_infinite() || f.is_nan() {
        if s == "+Inf" && !fl.plus {
            s = "Inf".into();
        }
        let fl = Flags { zero: false, ..fl };
        pad(out, &s, fl);
        return;
    }
    if !s.starts_with('-') {
        if fl.plus {
            s.insert(0, '+');
        } else if fl.space {
            s.insert(0, ' ');
        }
    }
    pad(out, &s, fl);
}

fn fmt_str(out: &mut String, b: &[u8], v: &Value, verb: char, fl: Flags) {
    let truncated: &[u8] = match fl.prec {
        Some(p) if matches!(verb, 's' | 'v' | 'q') => {
            let s = String::from_utf8_lossy(b);
            let end = s.char_indices().nth(p).map_or(b.len(), |(i, _)| i);
            &b[..end.min(b.len())]
        }
        _ => b,
    };
    match verb {
        'v' | 's' => pad(out, &String::from_utf8_lossy(truncated), fl),
        'q' => {
            let mut s = String::new();
            if fl.sharp && !truncated.contains(&b'`') && std::str::from_utf8(truncated).is_ok() {
                s.push('`');
                s.push_str(&String::from_utf8_lossy(truncated));
                s.push('`');
            } else {
                s.push('"');
                quote_into(&mut s, truncated, '"', fl.plus);
                s.push('"');
            }
            pad(out, &s, fl);
        }
        'x' | 'X' => {
            let mut s = String::new();
            let bytes = match fl.prec {
                Some(p) => &b[..p.min(b.len())],
                None => b,
            };
            for (i, x) in bytes.iter().enumerate() {
                if fl.space && i > 0 {
                    s.push(' ');
                }
                if fl.sharp && (fl.space || i == 0) {
                    s.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(s, "{x:02x}");
                } else {
                    let _ = write!(s, "{x:02X}");
                }
            }
            pad(out, &s, fl);
        }
        _ => bad_verb(out, v, verb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        let cases = [
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (123456789.0, "1.23456789e+08"),
            (1.5, "1.5"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (3.0, "3"),
            (-2.5, "-2.5"),
            (0.0, "0"),
            (1e21, "1e+21"),
            (0.1, "0.1"),
        ];
        for (f, want) in cases {
            assert_eq!(float_v(f), want, "{f}");
        }
        assert_eq!(format_float(1.0, 'e', Some(3)), "1.000e+00");
        assert_eq!(format_float(1234.5678, 'f', Some(2)), "1234.57");
        assert_eq!(format_float(0.125, 'f', Some(2)), "0.12");
        assert_eq!(format_float(1.0, 'g', Some(3)), "1");
        assert_eq!(format_float(1234567.0, 'g', Some(3)), "1.23e+06");
        assert_eq!(format_float(100.0, 'g', Some(2)), "1e+02");
        assert_eq!(format_float(1e-7, 'e', None), "1e-07");
    }

    #[test]
    fn printf_verbs_flags_and_errors() {
        let s = |x: &str| Value::str(x);
        assert_eq!(sprintf("%s-%s", &[s("a"), s("b")]), "a-b");
        assert_eq!(sprintf("%d", &[Value::Int(42)]), "42");
        assert_eq!(
            sprintf("%05d|%-4d|%+d", &[Value::Int(42), Value::Int(7), Value::Int(3)]),
            "00042|7   |+3"
        );
        assert_eq!(sprintf("%q", &[s("a\"b")]), "\"a\\\"b\"");
        assert_eq!(
            sprintf("%v %v", &[Value::Float(1e6), Value::Bool(true)]),
            "1e+06 true"
        );
        assert_eq!(sprintf("%.2f", &[Value::Float(1.23456)]), "1.23");
        assert_eq!(sprintf("%d", &[s("x")]), "%!d(string=x)");
        assert_eq!(sprintf("%s", &[]), "%!s(MISSING)");
        assert_eq!(sprintf("a", &[Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(sprintf("%x", &[s("hi")]), "6869");
        assert_eq!(
            sprintf("%5.1f|%-6s|", &[Value::Float(2.25), s("ab")]),
            "  2.2|ab    |"
        );
        assert_eq!(sprintf("%[2]s %[1]s", &[s("a"), s("b")]), "b a");
        assert_eq!(sprintf("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(sprintf("%v", &[Value::Nil]), "<nil>");
        assert_eq!(sprintf("%T", &[Value::Float(1.0)]), "float64");
        assert_eq!(sprintf("100%%", &[]), "100%");
    }

    #[test]
    fn sprint_spaces_between_non_strings() {
        assert_eq!(sprint(&[Value::Int(1), Value::Int(2)]), "1 2");
        assert_eq!(sprint(&[Value::str("a"), Value::Int(1), Value::str("b")]), "a1b");
        assert_eq!(sprintln(&[Value::str("a"), Value::str("b")]), "a b\n");
    }

    #[test]
    fn quote_like_strconv() {
        assert_eq!(quote("a\tb\n\u{1}é"), "\"a\\tb\\n\\x01é\"");
    }
}
