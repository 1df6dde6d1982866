//! Variable substitution in manifest text, as Flux's `postBuild` does it
//! (fluxcd/pkg `kustomize/kustomize_varsub.go`, which runs fluxcd/pkg
//! `envsubst`, a fork of drone/envsubst). The rules, all Flux's:
//!
//! - only the braced form is an expression: `${var}`; `$var` stays as
//!   written, so shell scripts keep their variables;
//! - `$$` is one `$` anywhere outside an expression, so `$${var}` is the
//!   literal text `${var}` (and `echo $$` becomes `echo $`);
//! - inside the braces, the bash forms envsubst knows: `${var:=default}`,
//!   `${var=default}`, `${var:-default}`, `${var:+default}`,
//!   `${var:?default}` (all of them: the value when it is non-empty, else
//!   the default; a default may hold `${…}` and span lines), `${#var}`
//!   (the length in bytes), `${var^}` `${var^^}` `${var,}` `${var,,}`
//!   (case), `${var:offset}` `${var:offset:length}` (bytes),
//!   `${var#pattern}` `${var##pattern}` `${var%pattern}` `${var%%pattern}`
//!   (Go `path.Match` patterns) and `${var/old/new}` `${var//old/new}`
//!   `${var/#old/new}` `${var/%old/new}` (with `\/` and `\\` escapes);
//! - an unset variable is the empty string, or, in strict mode (Flux's
//!   `StrictPostBuildSubstitutions`), an error unless the form supplies a
//!   default (`=`, `:=`, `:-`, `:+`, `:?`);
//! - anything else after `${` — `${a b}`, `${}`, `${a-b}`, a `${` that is
//!   never closed — fails the whole substitution, as it fails Flux's.
//!
//! The text is a repository's and therefore hostile: the result is capped,
//! expressions nest at most [`MAX_DEPTH`] deep, and nothing here panics.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

/// How deeply `${…}` may nest in defaults and arguments.
const MAX_DEPTH: usize = 64;

/// The label or annotation with which an object opts out of substitution.
pub(crate) const DISABLE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// The variables of an app, later entries overriding earlier ones.
pub(crate) struct Vars<'a> {
    map: HashMap<&'a str, String>,
    strict: bool,
}

/// Why a document could not be substituted. Offsets are bytes of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The result would grow past the cap.
    TooLarge,
    /// An expression that is not one; `at` is its `${`.
    Syntax { at: usize, what: &'static str },
    /// Strict mode: a variable without a default is not set.
    NotSet { at: usize, name: String },
    /// An expression that parses but cannot be evaluated.
    Eval { at: usize, what: String },
}

impl Failure {
    /// Where in the text the failing expression starts.
    pub(crate) fn offset(&self) -> Option<usize> {
        match self {
            Failure::TooLarge => None,
            Failure::Syntax { at, .. } | Failure::NotSet { at, .. } | Failure::Eval { at, .. } => Some(*at),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::TooLarge => f.write_str("the result would be too large"),
            Failure::Syntax { what, .. } => write!(
                f,
                "variable substitution failed: {what}; write `$${{` for a literal `${{`, or label or annotate \
                 the object with `{DISABLE_KEY}: disabled`"
            ),
            Failure::NotSet { name, .. } => write!(
                f,
                "variable substitution failed: variable not set (strict mode): \"{name}\"; define it, give a \
                 default with `${{{name}:=default}}`, or write `$${{{name}}}` for the literal text"
            ),
            Failure::Eval { what, .. } => write!(f, "variable substitution failed: {what}"),
        }
    }
}

impl<'a> Vars<'a> {
    /// Values lose their newlines, as Flux's do.
    pub(crate) fn new(vars: &'a [(String, String)], strict: bool) -> Vars<'a> {
        Vars {
            map: vars
                .iter()
                .map(|(k, v)| (k.as_str(), v.replace('\n', "")))
                .collect(),
            strict,
        }
    }

    /// `text` with every expression replaced. Fails as soon as the result
    /// would grow past `cap` bytes (a few references to a large value must
    /// not fill the memory).
    pub(crate) fn apply(&self, text: &str, cap: u64) -> Result<String, Failure> {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        if !text.contains('$') {
            return if text.len() > cap {
                Err(Failure::TooLarge)
            } else {
                Ok(text.to_string())
            };
        }
        let nodes = Parser::new(text).parse()?;
        let mut out = String::with_capacity(text.len().min(cap));
        for node in &nodes {
            self.eval(node, &mut out, cap)?;
        }
        Ok(out)
    }

    fn eval(&self, node: &Node, out: &mut String, cap: usize) -> Result<(), Failure> {
        match node {
            Node::Text(t) => push(out, t, cap),
            Node::Func(func) => {
                let mut args = Vec::with_capacity(func.args.len());
                for arg in &func.args {
                    let mut buf = String::new();
                    self.eval(arg, &mut buf, cap)?;
                    args.push(buf);
                }
                let value = self.map.get(func.param.as_str());
                if self.strict && value.is_none() && !is_default_op(&func.op) {
                    return Err(Failure::NotSet {
                        at: func.at,
                        name: func.param.clone(),
                    });
                }
                let value = value.map_or("", String::as_str);
                let result =
                    call(&func.op, value, &args).map_err(|what| Failure::Eval { at: func.at, what })?;
                push(out, &result, cap)
            }
        }
    }
}

fn push(out: &mut String, s: &str, cap: usize) -> Result<(), Failure> {
    if out.len().saturating_add(s.len()) > cap {
        return Err(Failure::TooLarge);
    }
    out.push_str(s);
    Ok(())
}

/// Whether the object in `text` (one YAML document, before substitution)
/// is labeled or annotated `kustomize.toolkit.fluxcd.io/substitute:
/// disabled` (Flux compares the value exactly). A document that does not
/// parse yet is not exempt.
pub(crate) fn disabled(text: &str) -> bool {
    if !text.contains(DISABLE_KEY) {
        return false;
    }
    let Ok(docs) = crate::kustomize::yaml::parse_documents(text) else {
        return false;
    };
    let Some(node) = docs.into_iter().find_map(|d| d.node) else {
        return false;
    };
    ["labels", "annotations"]
        .iter()
        .any(|m| node.str_at(&["metadata", m, DISABLE_KEY]) == Some("disabled"))
}

// ---- the template ----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Text(String),
    Func(Func),
}

/// One `${…}`: `op` is the operator as written (`""` for `${var}`, `:=`,
/// `#`, `//`, …), `param` the variable's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Func {
    op: String,
    param: String,
    args: Vec<Node>,
    /// The byte offset of its `${`.
    at: usize,
}

/// The operators that supply their own value when the variable is unset.
fn is_default_op(op: &str) -> bool {
    matches!(op, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?")
}

/// envsubst's function for `op` applied to the variable's value.
fn call<'v>(op: &str, v: &'v str, args: &[String]) -> Result<Cow<'v, str>, String> {
    let arg = |i: usize| args.get(i).map(String::as_str);
    Ok(match op {
        "," => first_char(v, false),
        ",," => Cow::Owned(v.to_lowercase()),
        "^" => first_char(v, true),
        "^^" => Cow::Owned(v.to_uppercase()),
        "#" if args.is_empty() => Cow::Owned(v.len().to_string()),
        "#" => trim_prefix(v, arg(0), false),
        "##" => trim_prefix(v, arg(0), true),
        "%" => trim_suffix(v, arg(0), false),
        "%%" => trim_suffix(v, arg(0), true),
        ":" => substring(v, args)?,
        "/#" => match (arg(0), arg(1)) {
            (Some(old), Some(new)) if args.len() == 2 && v.starts_with(old) => {
                Cow::Owned(v.replacen(old, new, 1))
            }
            _ => Cow::Borrowed(v),
        },
        "/%" => match (arg(0), arg(1)) {
            (Some(old), Some(new)) if args.len() == 2 && v.ends_with(old) => {
                Cow::Owned(format!("{}{new}", &v[..v.len() - old.len()]))
            }
            _ => Cow::Borrowed(v),
        },
        "/" => match args {
            [] => Cow::Borrowed(v),
            [old] => Cow::Owned(v.replacen(old.as_str(), "", 1)),
            [old, new, ..] => Cow::Owned(v.replacen(old.as_str(), new, 1)),
        },
        "//" => match args {
            [] => Cow::Borrowed(v),
            [old] => Cow::Owned(v.replace(old.as_str(), "")),
            [old, new, ..] => Cow::Owned(v.replace(old.as_str(), new)),
        },
        // `${var}`, the default forms, and anything unknown.
        _ if v.is_empty() && !args.is_empty() => Cow::Owned(args.concat()),
        _ => Cow::Borrowed(v),
    })
}

fn first_char(v: &str, upper: bool) -> Cow<'_, str> {
    let mut chars = v.chars();
    match chars.next() {
        None => Cow::Borrowed(v),
        Some(c) if upper => Cow::Owned(c.to_uppercase().chain(chars).collect()),
        Some(c) => Cow::Owned(c.to_lowercase().chain(chars).collect()),
    }
}

/// `${var:offset}` and `${var:offset:length}`, in bytes, as envsubst does.
fn substring<'v>(v: &'v str, args: &[String]) -> Result<Cow<'v, str>, String> {
    let Some(Ok(pos)) = args.first().map(|a| a.parse::<i64>()) else {
        // A position that is not a number gives the value, as in bash.
        return Ok(Cow::Borrowed(v));
    };
    let len = i64::try_from(v.len()).unwrap_or(i64::MAX);
    let pos = if pos < 0 { (len + pos).max(0) } else { pos };
    let (from, to) = match args.get(1) {
        None => (pos, len),
        Some(length) => {
            let Ok(length) = length.parse::<i64>() else {
                return Ok(Cow::Borrowed(v));
            };
            match pos.checked_add(length) {
                Some(end) if end < len && length < 0 => {
                    return Err(format!("substring length {length} is negative"));
                }
                Some(end) if end < len => (pos, end),
                _ => (pos, len),
            }
        }
    };
    if from >= len {
        return Ok(Cow::Borrowed(""));
    }
    let (from, to) = (from as usize, to as usize);
    v.get(from..to)
        .map(Cow::Borrowed)
        .ok_or_else(|| format!("substring {from}..{to} splits a multi-byte character"))
}

/// The prefix of `v` that `pattern` matches, the shortest or the longest
/// (never the empty one), removed.
fn trim_prefix<'v>(v: &'v str, pattern: Option<&str>, longest: bool) -> Cow<'v, str> {
    let Some(pattern) = pattern else {
        return Cow::Borrowed(v);
    };
    let mut found = None;
    // From the longest prefix down, as envsubst loops.
    let mut ends: Vec<usize> = v.char_indices().map(|(i, _)| i).skip(1).collect();
    ends.push(v.len());
    for &end in ends.iter().rev() {
        match crate::gomatch::match_lazy(pattern, &v[..end]) {
            Err(_) => return Cow::Borrowed(v),
            Ok(true) => {
                found = Some(end);
                if longest {
                    break;
                }
            }
            Ok(false) => {}
        }
    }
    match found {
        Some(end) if end > 0 => Cow::Borrowed(&v[end..]),
        _ => Cow::Borrowed(v),
    }
}

/// The suffix version: envsubst reverses the value and the pattern.
fn trim_suffix<'v>(v: &'v str, pattern: Option<&str>, longest: bool) -> Cow<'v, str> {
    let Some(pattern) = pattern else {
        return Cow::Borrowed(v);
    };
    let reversed: String = v.chars().rev().collect();
    let pattern: String = pattern.chars().rev().collect();
    let trimmed = trim_prefix(&reversed, Some(&pattern), longest);
    if trimmed.len() == reversed.len() {
        return Cow::Borrowed(v);
    }
    Cow::Borrowed(&v[..trimmed.len()])
}

// ---- the parser: envsubst's scanner, step by step ------------------------------

const IDENT: u8 = 1;
const LBRACK: u8 = 2;
const RBRACK: u8 = 4;
const ESCAPE: u8 = 8;

/// Which characters a token may hold (`i`: the byte position, from 1, of
/// the character in the token).
#[derive(Debug, Clone, Copy)]
enum Accept {
    Rune,
    Ident,
    Colon,
    OneHash,
    NotClosing,
    HashFunc,
    PercentFunc,
    DefaultFunc,
    ReplaceFunc,
    OneEqual,
    OneColon,
    RejectColonClose,
    Slash,
    NotSlash,
    Casing,
}

impl Accept {
    fn accepts(self, r: char, i: usize) -> bool {
        match self {
            Accept::Rune => true,
            Accept::Ident => is_ident(r),
            Accept::Colon => r == ':',
            Accept::OneHash => r == '#' && i == 1,
            Accept::NotClosing => r != '}',
            Accept::HashFunc => r == '#' && i < 3,
            Accept::PercentFunc => r == '%' && i < 3,
            Accept::DefaultFunc => (i == 1 && r == ':') || (i == 2 && matches!(r, '=' | '-' | '?' | '+')),
            Accept::ReplaceFunc => (i == 1 && r == '/') || (i == 2 && matches!(r, '/' | '#' | '%')),
            Accept::OneEqual => i == 1 && r == '=',
            Accept::OneColon => i == 1 && r == ':',
            Accept::RejectColonClose => r != ':' && r != '}',
            Accept::Slash => r == '/',
            Accept::NotSlash => r != '/',
            Accept::Casing => (r == ',' || r == '^') && i < 3,
        }
    }
}

/// Go's `unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_'`.
fn is_ident(r: char) -> bool {
    static UNICODE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^[\p{L}\p{Nd}]$").expect("a valid constant pattern"));
    r == '_' || r.is_ascii_alphanumeric() || (!r.is_ascii() && UNICODE.is_match(r.encode_utf8(&mut [0; 4])))
}

enum Token {
    Eof,
    Ident(String),
    Lbrack,
    Rbrack,
    Illegal,
}

struct Parser<'t> {
    buf: &'t str,
    pos: usize,
    start: usize,
    width: usize,
    mode: u8,
    /// Inside `${…}`, `\/` and `\\` are escapes too (where `ESCAPE` is on).
    escape_all: bool,
    accept: Accept,
}

type Parsed<T> = Result<T, Failure>;

impl<'t> Parser<'t> {
    fn new(buf: &'t str) -> Parser<'t> {
        Parser {
            buf,
            pos: 0,
            start: 0,
            width: 0,
            mode: 0,
            escape_all: false,
            accept: Accept::Rune,
        }
    }

    fn read(&mut self) -> Option<char> {
        match self.buf[self.pos..].chars().next() {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
            None => {
                self.width = 0;
                None
            }
        }
    }

    fn unread(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&mut self) -> Option<char> {
        let r = self.read();
        self.unread();
        r
    }

    fn scan(&mut self) -> Token {
        self.start = self.pos;
        let Some(r) = self.read() else {
            return Token::Eof;
        };
        if self.scan_lbrack(r) {
            return Token::Lbrack;
        }
        if self.mode & RBRACK != 0 && r == '}' {
            return Token::Rbrack;
        }
        let mut token = String::new();
        if self.scan_ident(r, &mut token) {
            return Token::Ident(token);
        }
        Token::Illegal
    }

    fn scan_ident(&mut self, r: char, token: &mut String) -> bool {
        if self.mode & IDENT == 0 {
            return false;
        }
        if self.scan_escaped(r) {
            self.take_escaped(token);
        } else if !self.accept.accepts(r, self.pos - self.start) {
            return false;
        } else {
            token.push(r);
        }
        while let Some(r) = self.read() {
            if self.scan_lbrack(r) {
                self.unread();
                self.unread();
                break;
            }
            if self.scan_escaped(r) {
                self.take_escaped(token);
                continue;
            }
            if !self.accept.accepts(r, self.pos - self.start) {
                self.unread();
                break;
            }
            token.push(r);
        }
        true
    }

    /// The escape character was read: the next one is taken as it is.
    fn take_escaped(&mut self, token: &mut String) {
        if let Some(c) = self.read() {
            token.push(c);
        }
    }

    fn scan_lbrack(&mut self, r: char) -> bool {
        if self.mode & LBRACK == 0 || r != '$' {
            return false;
        }
        if self.read() == Some('{') {
            return true;
        }
        self.unread();
        false
    }

    fn scan_escaped(&mut self, r: char) -> bool {
        if self.mode & ESCAPE == 0 {
            return false;
        }
        match r {
            '$' => self.peek() == Some('$'),
            '\\' if self.escape_all => matches!(self.peek(), Some('/' | '\\')),
            _ => false,
        }
    }

    fn parse(mut self) -> Parsed<Vec<Node>> {
        let mut nodes = Vec::new();
        loop {
            self.accept = Accept::Rune;
            self.mode = IDENT | LBRACK | ESCAPE;
            self.escape_all = false;
            match self.scan() {
                Token::Ident(text) => nodes.push(Node::Text(text)),
                Token::Eof => return Ok(nodes),
                Token::Lbrack => {
                    let at = self.start;
                    nodes.push(Node::Func(self.parse_func(at, 1)?));
                }
                Token::Rbrack | Token::Illegal => return Err(self.syntax(self.start, "bad substitution")),
            }
        }
    }

    fn syntax(&self, at: usize, what: &'static str) -> Failure {
        Failure::Syntax { at, what }
    }

    fn func(op: String, param: String, args: Vec<Node>, at: usize) -> Func {
        Func { op, param, args, at }
    }

    fn parse_func(&mut self, at: usize, depth: usize) -> Parsed<Func> {
        if depth > MAX_DEPTH {
            return Err(self.syntax(at, "expressions nested too deeply"));
        }
        self.escape_all = true;
        if self.peek() == Some('#') {
            return self.parse_len(at);
        }
        self.accept = Accept::Ident;
        self.mode = IDENT;
        let Token::Ident(name) = self.scan() else {
            return Err(self.syntax(at, "unable to parse variable name"));
        };
        match self.peek() {
            Some(':') => return self.parse_default_or_substr(name, at, depth),
            Some('=') => return self.parse_default(name, at, depth),
            Some(',' | '^') => return self.parse_casing(name, at),
            Some('/') => return self.parse_replace(name, at, depth),
            Some('#') => return self.parse_remove(name, Accept::HashFunc, at, depth),
            Some('%') => return self.parse_remove(name, Accept::PercentFunc, at, depth),
            _ => {}
        }
        self.accept = Accept::Ident;
        self.mode = RBRACK;
        match self.scan() {
            Token::Rbrack => Ok(Self::func(String::new(), name, Vec::new(), at)),
            _ => Err(self.syntax(at, "missing closing brace")),
        }
    }

    fn parse_param(&mut self, accept: Accept, mode: u8, at: usize, depth: usize) -> Parsed<Node> {
        self.accept = accept;
        self.mode = mode | LBRACK;
        match self.scan() {
            Token::Lbrack => {
                let inner = self.start;
                Ok(Node::Func(self.parse_func(inner, depth + 1)?))
            }
            Token::Ident(text) => Ok(Node::Text(text)),
            Token::Rbrack => Ok(Node::Text("}".into())),
            Token::Eof | Token::Illegal => {
                Err(self.syntax(at, "unable to parse substitution within function"))
            }
        }
    }

    fn op(&mut self, accept: Accept, at: usize, what: &'static str) -> Parsed<String> {
        self.accept = accept;
        self.mode = IDENT;
        match self.scan() {
            Token::Ident(op) => Ok(op),
            _ => Err(self.syntax(at, what)),
        }
    }

    fn parse_default_or_substr(&mut self, name: String, at: usize, depth: usize) -> Parsed<Func> {
        self.read();
        let r = self.peek();
        self.unread();
        match r {
            Some('=' | '-' | '?' | '+') => self.parse_default(name, at, depth),
            _ => self.parse_substr(name, at, depth),
        }
    }

    fn parse_substr(&mut self, name: String, at: usize, depth: usize) -> Parsed<Func> {
        let op = self.op(Accept::OneColon, at, "bad substitution")?;
        let mut args = vec![self.parse_param(Accept::RejectColonClose, IDENT, at, depth)?];
        self.accept = Accept::Colon;
        self.mode = IDENT | RBRACK;
        match self.scan() {
            Token::Rbrack => return Ok(Self::func(op, name, args, at)),
            Token::Ident(_) => {}
            _ => return Err(self.syntax(at, "bad substitution")),
        }
        args.push(self.parse_param(Accept::NotClosing, IDENT, at, depth)?);
        self.consume_rbrack(at)?;
        Ok(Self::func(op, name, args, at))
    }

    fn parse_remove(&mut self, name: String, accept: Accept, at: usize, depth: usize) -> Parsed<Func> {
        let op = self.op(accept, at, "bad substitution")?;
        let args = vec![self.parse_param(Accept::NotClosing, IDENT, at, depth)?];
        self.consume_rbrack(at)?;
        Ok(Self::func(op, name, args, at))
    }

    fn parse_replace(&mut self, name: String, at: usize, depth: usize) -> Parsed<Func> {
        let op = self.op(Accept::ReplaceFunc, at, "bad substitution")?;
        let mut args = vec![self.parse_param(Accept::NotSlash, IDENT | ESCAPE, at, depth)?];
        self.op(Accept::Slash, at, "bad substitution")?;
        if self.peek() == Some('}') {
            self.consume_rbrack(at)?;
            return Ok(Self::func(op, name, args, at));
        }
        args.push(self.parse_param(Accept::NotClosing, IDENT | ESCAPE, at, depth)?);
        self.consume_rbrack(at)?;
        Ok(Self::func(op, name, args, at))
    }

    fn parse_default(&mut self, name: String, at: usize, depth: usize) -> Parsed<Func> {
        let accept = if self.peek() == Some('=') {
            Accept::OneEqual
        } else {
            Accept::DefaultFunc
        };
        let op = self.op(accept, at, "unable to parse default function")?;
        let mut args = Vec::new();
        loop {
            if self.peek() == Some('}') {
                self.consume_rbrack(at)?;
                return Ok(Self::func(op, name, args, at));
            }
            args.push(self.parse_param(Accept::NotClosing, IDENT, at, depth)?);
        }
    }

    fn parse_casing(&mut self, name: String, at: usize) -> Parsed<Func> {
        let op = self.op(Accept::Casing, at, "bad substitution")?;
        self.consume_rbrack(at)?;
        Ok(Self::func(op, name, Vec::new(), at))
    }

    fn parse_len(&mut self, at: usize) -> Parsed<Func> {
        let op = self.op(Accept::OneHash, at, "bad substitution")?;
        let name = self.op(Accept::Ident, at, "bad substitution")?;
        self.consume_rbrack(at)?;
        Ok(Self::func(op, name, Vec::new(), at))
    }

    fn consume_rbrack(&mut self, at: usize) -> Parsed<()> {
        self.mode = RBRACK;
        match self.scan() {
            Token::Rbrack => Ok(()),
            _ => Err(self.syntax(at, "bad substitution")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn subst(vars: &[(&str, &str)], text: &str) -> String {
        let owned = owned(vars);
        Vars::new(&owned, false)
            .apply(text, u64::MAX)
            .expect("substitutes")
    }

    fn fails(vars: &[(&str, &str)], text: &str) -> Failure {
        let owned = owned(vars);
        Vars::new(&owned, false).apply(text, u64::MAX).expect_err(text)
    }

    fn strict(vars: &[(&str, &str)], text: &str) -> Result<String, Failure> {
        let owned = owned(vars);
        Vars::new(&owned, true).apply(text, u64::MAX)
    }

    #[test]
    fn braced_variables() {
        assert_eq!(subst(&[("a", "1")], "x: ${a}"), "x: 1");
        assert_eq!(subst(&[("a", "1"), ("a", "2")], "x: ${a}"), "x: 2");
        assert_eq!(subst(&[("_b9", "z")], "${_b9}${_b9}"), "zz");
        // Flux removes newlines from values (kustomize_varsub.go).
        assert_eq!(subst(&[("a", "x\ny\n")], "${a}"), "xy");
    }

    /// fluxcd/pkg envsubst: every default operator gives the value when it
    /// is non-empty, else the default (`toDefault`), which may span lines
    /// and hold further expressions.
    #[test]
    fn defaults() {
        assert_eq!(subst(&[], "x: ${a:=dflt}"), "x: dflt");
        assert_eq!(subst(&[("a", "set")], "x: ${a:=dflt}"), "x: set");
        assert_eq!(subst(&[("a", "")], "x: ${a:=dflt}"), "x: dflt");
        assert_eq!(subst(&[], "x: ${a:-other value}"), "x: other value");
        assert_eq!(subst(&[], "x: ${a:=}"), "x: ");
        assert_eq!(subst(&[], "${a=d}${a:+d}${a:?d}"), "ddd");
        assert_eq!(subst(&[("a", "v")], "${a:+d}"), "v");
        assert_eq!(subst(&[("b", "B")], "${a:=x${b}y}"), "xBy");
        assert_eq!(subst(&[], "${a:=two\nlines}"), "two\nlines");
        assert_eq!(subst(&[], "${a:=$$}"), "$$", "no escapes inside a default");
    }

    /// envsubst's scanner: `$$` is an escaped `$` outside expressions.
    #[test]
    fn escapes_and_unbraced_forms() {
        for (text, want) in [
            ("x: $${a}", "x: ${a}"),
            ("x: $${a:=d}", "x: ${a:=d}"),
            ("echo $a $$ $$a $1 \\/", "echo $a $ $a $1 \\/"),
            ("$$$${a}", "$${a}"),
            ("$$${a}", "$1"),
            ("cost: 5$ and $", "cost: 5$ and $"),
            // A letter of any script reads as a name.
            ("${é}", ""),
        ] {
            assert_eq!(subst(&[("a", "1")], text), want, "{text}");
        }
    }

    #[test]
    fn bash_functions() {
        let v = [("v", "Hello/World.tar.gz"), ("n", "ab"), ("w", "archive.tar.gz")];
        for (text, want) in [
            ("${#v}", "18"),
            (
                "${n^}${n^^}${v,}${v,,}",
                "AbABhello/World.tar.gzhello/world.tar.gz",
            ),
            (
                "${v:6}|${v:6:5}|${v:-6}|${v:100}|${v:x}",
                "World.tar.gz|World|Hello/World.tar.gz||Hello/World.tar.gz",
            ),
            // " -3" is not a number to Go's Atoi.
            ("${v: -3}", "Hello/World.tar.gz"),
            ("${v:-100:2}", "Hello/World.tar.gz"),
            ("${v:2:100}", "llo/World.tar.gz"),
            (
                "${w#*.}|${w##*.}|${w%.*}|${w%%.*}",
                "tar.gz|gz|archive.tar|archive",
            ),
            // A star does not cross `/`.
            ("${v#*/}", "World.tar.gz"),
            ("${v#nope}|${v#[}", "Hello/World.tar.gz|Hello/World.tar.gz"),
            (
                "${v/o/0}|${v//o/0}|${v/#Hello/Bye}|${v/%gz/xz}|${v//o/}",
                "Hell0/World.tar.gz|Hell0/W0rld.tar.gz|Bye/World.tar.gz|Hello/World.tar.xz|Hell/Wrld.tar.gz",
            ),
            ("${v/\\//-}|${v/$$/x}", "Hello-World.tar.gz|Hello/World.tar.gz"),
            ("${n/a/${n}}", "abb"),
            // An unknown operator gives the value.
            ("${n,^}", "ab"),
        ] {
            assert_eq!(subst(&v, text), want, "{text}");
        }
        assert!(matches!(fails(&v, "${v:2:-20}"), Failure::Eval { .. }));
        assert!(matches!(fails(&[("u", "é")], "${u:1}"), Failure::Eval { .. }));
    }

    /// What envsubst refuses fails the whole document, as in Flux.
    #[test]
    fn malformed_expressions_fail() {
        for (text, what) in [
            ("x ${a b}", "missing closing brace"),
            ("x ${}", "unable to parse variable name"),
            ("x ${ a}", "unable to parse variable name"),
            ("x ${a-b}", "missing closing brace"),
            ("x ${a", "missing closing brace"),
            ("x ${a:=d", "unable to parse substitution within function"),
            ("x ${#}", "bad substitution"),
            ("x ${a:}", "unable to parse substitution within function"),
            ("x ${a/b}", "bad substitution"),
        ] {
            assert_eq!(fails(&[], text), Failure::Syntax { at: 2, what }, "{text}");
        }
        let deep = format!("{}{}", "${a:=".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert!(matches!(
            fails(&[], &deep),
            Failure::Syntax {
                what: "expressions nested too deeply",
                ..
            }
        ));
        let fine = format!("{}{}", "${a:=".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(subst(&[], &fine), "");
    }

    #[test]
    fn unset_is_empty_unless_strict() {
        assert_eq!(subst(&[("b", "1")], "x: '${a}'"), "x: ''");
        assert_eq!(
            strict(&[("b", "1")], "a\nx: '${a}'"),
            Err(Failure::NotSet {
                at: 6,
                name: "a".into()
            })
        );
        assert!(matches!(strict(&[], "${#a}"), Err(Failure::NotSet { .. })));
        assert!(matches!(strict(&[], "${a^^}"), Err(Failure::NotSet { .. })));
        assert_eq!(
            strict(&[], "${a:=d}${a=e}${a:-f}${a:+g}${a:?h}"),
            Ok("defgh".into())
        );
        assert_eq!(
            strict(&[("a", "")], "[${a}]"),
            Ok("[]".into()),
            "set to empty is set"
        );
        assert_eq!(strict(&[], "$${a}"), Ok("${a}".into()));
    }

    #[test]
    fn the_result_is_capped() {
        let owned = vec![("big".to_string(), "x".repeat(4096))];
        let vars = Vars::new(&owned, false);
        let text = "${big}".repeat(1000);
        assert_eq!(vars.apply(&text, 4096 * 1000).map(|t| t.len()), Ok(4096 * 1000));
        assert_eq!(vars.apply(&text, 4096 * 1000 - 1), Err(Failure::TooLarge));
        assert_eq!(vars.apply("plain text", 5), Err(Failure::TooLarge));
        assert_eq!(vars.apply("plain", 5).as_deref(), Ok("plain"));
        assert_eq!(vars.apply("${a:=${big}${big}}", 8191), Err(Failure::TooLarge));
    }

    /// kustomize_varsub.go: a label or an annotation, with the exact value.
    #[test]
    fn objects_opt_out_by_label_or_annotation() {
        let with = |meta: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n{meta}");
        assert!(disabled(&with(
            "  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"
        )));
        assert!(disabled(&with(
            "  labels:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\n"
        )));
        assert!(!disabled(&with(
            "  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: Disabled\n"
        )));
        assert!(!disabled(&with(
            "  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: enabled\n"
        )));
        assert!(!disabled(&with(
            "# kustomize.toolkit.fluxcd.io/substitute: disabled\n"
        )));
        assert!(!disabled("kustomize.toolkit.fluxcd.io/substitute: disabled\n"));
    }
}
