//! The wording of syntax errors: what the mistake most likely is and how to
//! write it in KDL v2, from the text around the place the parser stopped.
//! Every function here looks at one line (or, for an unclosed block, scans
//! the braces of the file once).

use miette::SourceSpan;

use super::super::diagnostic::{Diagnostic, code, line_column};
use super::super::parse::find_spec;
use super::super::schema::{self, Ty};

/// Characters that end or are not allowed in an unquoted KDL v2 string.
const NOT_IN_BARE: &[char] = &['\\', '/', '(', ')', '{', '}', ';', '[', ']', '"', '#', '='];

/// An unquoted value KDL cannot read: `5m`, `apps/podinfo`, `>=1.0.0`,
/// `update images (automated)`.
pub(super) fn bare_value(text: &str, token: SourceSpan) -> Option<Diagnostic> {
    let token_text = slice(text, token);
    if token_text.is_empty() {
        return None;
    }
    if token_text.contains('"') {
        return misquoted(token_text, token);
    }
    if let Some(key) = token_text.strip_suffix('=')
        && !key.is_empty()
        && !key.contains(NOT_IN_BARE)
    {
        return Some(
            Diagnostic::error(code::SYNTAX, token, format!("`{key}=` has no value"))
                .label("value missing")
                .help(format!("write `{key}=\"…\"`, or remove it")),
        );
    }
    let starts_numeric = {
        let t = token_text.trim_start_matches(['+', '-']).trim_start_matches('.');
        t.starts_with(|c: char| c.is_ascii_digit())
    };
    let bad_char = token_text.chars().find(|c| NOT_IN_BARE.contains(c));
    if !starts_numeric && bad_char.is_none() {
        return None;
    }
    let hint = QuoteHint::find(text, token.offset());
    if starts_numeric && hint.as_ref().is_some_and(|h| h.int) {
        let node = hint.as_ref().map_or("", |h| h.node.as_str());
        return Some(
            Diagnostic::error(code::SYNTAX, token, format!("`{token_text}` is not an integer"))
                .label("not a number")
                .help(format!("write a whole number, such as `{node} 4`")),
        );
    }
    let label = if starts_numeric {
        "starts with a digit, so KDL reads a number".to_string()
    } else {
        format!(
            "`{}` cannot appear in an unquoted string",
            bad_char.unwrap_or('"')
        )
    };
    Some(match hint {
        Some(h) => Diagnostic::error(
            code::SYNTAX,
            h.span,
            format!("`{}` must be quoted", slice(text, h.span)),
        )
        .label(label)
        .help(format!("write {}", h.suggestion)),
        None => Diagnostic::error(code::SYNTAX, token, format!("`{token_text}` must be quoted"))
            .label(label)
            .help(format!("write \"{token_text}\"")),
    })
}

/// A token with quotes in the wrong places: `context"prod-eu"`,
/// `podinfo"`, `"unclosed`, `r"v1-raw"`.
fn misquoted(t: &str, token: SourceSpan) -> Option<Diagnostic> {
    let at = |i: usize, len: usize| SourceSpan::from((token.offset() + i, len));
    if t.starts_with("r\"") || t.starts_with("r#") {
        return Some(v1_raw_string(t, token));
    }
    let quotes: Vec<usize> = t
        .char_indices()
        .filter(|(i, c)| *c == '"' && !t[..*i].ends_with('\\'))
        .map(|(i, _)| i)
        .collect();
    let first = *quotes.first()?;
    let hashes = first - t[..first].trim_end_matches('#').len();
    let prefix = &t[..first - hashes];
    let opens_value = prefix.is_empty() || prefix.ends_with('=');
    if hashes > 0 {
        // A raw string: only a missing space before it is clear from here.
        return (!opens_value && !prefix.contains(NOT_IN_BARE)).then(|| missing_space(t, prefix, token));
    }
    if opens_value && !quotes.len().is_multiple_of(2) {
        return Some(
            Diagnostic::error(
                code::SYNTAX,
                at(first, t.len() - first),
                "this string is not closed",
            )
            .label("no closing `\"`")
            .help("end the string with `\"`"),
        );
    }
    if !opens_value && quotes.len().is_multiple_of(2) && !prefix.contains(NOT_IN_BARE) {
        return Some(missing_space(t, prefix, token));
    }
    if !opens_value && quotes.len() == 1 {
        let bare = t.replace('"', "");
        return Some(
            Diagnostic::error(code::SYNTAX, at(first, 1), "unmatched `\"`")
                .label("no opening `\"`")
                .help(format!("quote the whole value: `{}`", quote(&bare))),
        );
    }
    None
}

fn missing_space(t: &str, prefix: &str, token: SourceSpan) -> Diagnostic {
    Diagnostic::error(code::SYNTAX, token, format!("missing space after `{prefix}`"))
        .label("missing space")
        .help(format!("write `{prefix} {}`", &t[prefix.len()..]))
}

/// `authorname="x"`: a node name and a property of it run together.
fn glued_property(text: &str, eq: usize) -> Option<Diagnostic> {
    let (line_start, _) = line_bounds(text, eq);
    let before = text.get(line_start..eq)?;
    let word_start = line_start + before.len() - before.trim_start().len();
    let word = text.get(word_start..eq)?;
    (1..word.len())
        .filter(|k| word.is_char_boundary(*k))
        .find_map(|k| {
            let (node, prop) = word.split_at(k);
            find_spec(node)?.prop(prop)?;
            Some(
                Diagnostic::error(
                    code::SYNTAX,
                    SourceSpan::from((word_start, word.len())),
                    format!("missing space after `{node}`"),
                )
                .label("missing space")
                .help(format!("write `{node} {prop}=…`")),
            )
        })
}

/// How to quote the value on a node's line.
struct QuoteHint {
    node: String,
    /// The node takes an integer: quoting would not help.
    int: bool,
    span: SourceSpan,
    suggestion: String,
}

impl QuoteHint {
    /// For the unquoted value around `at`, on a line `NODE VALUE…` or
    /// `NODE … key=VALUE…`.
    fn find(text: &str, at: usize) -> Option<QuoteHint> {
        let (line_start, line_end) = line_bounds(text, at);
        let line = text.get(line_start..line_end)?;
        // Stop at a comment, a block or another node on the same line.
        let stop = [line.find("//"), line.find('{'), line.find(';')]
            .into_iter()
            .flatten()
            .filter(|i| line_start + i > at)
            .min()
            .unwrap_or(line.len());
        let line = &line[..stop];
        let tokens = tokens(line, line_start);
        let (name, rest) = tokens.split_first()?;
        let int = find_spec(name.1)
            .and_then(|s| s.args)
            .is_some_and(|a| matches!(a.ty, Ty::Int { .. }));
        let is_prop = |t: &str| {
            t.split_once('=').is_some_and(|(k, _)| {
                k.starts_with(|c: char| c.is_ascii_alphabetic())
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
        };
        let bad = rest.iter().position(|t| t.0 <= at && at < t.0 + t.1.len())?;
        // The value runs from the bad token (or the property it belongs
        // to) back to the previous property, and on to the next one.
        let first = rest[..=bad].iter().rposition(|t| is_prop(t.1)).unwrap_or(0);
        let last = rest[bad + 1..]
            .iter()
            .position(|t| is_prop(t.1))
            .map_or(rest.len() - 1, |i| bad + i);
        let from = rest[first].0;
        let to = rest[last].0 + rest[last].1.len();
        let value = text.get(from..to)?;
        if value.contains('"') || name.1.contains('"') {
            return None;
        }
        let (span, suggestion) = match value.split_once('=').filter(|_| is_prop(rest[first].1)) {
            Some((key, v)) => {
                let v_start = from + key.len() + 1;
                (
                    SourceSpan::from((v_start, to - v_start)),
                    format!("`{key}={}`", quote(v)),
                )
            }
            None if first == 0 => (
                SourceSpan::from((from, to - from)),
                format!("`{} {}`", name.1, quote(value)),
            ),
            None => (SourceSpan::from((from, to - from)), format!("`{}`", quote(value))),
        };
        Some(QuoteHint {
            node: name.1.to_string(),
            int,
            span,
            suggestion,
        })
    }
}

fn quote(s: &str) -> String {
    schema::q(s)
}

/// "expected end of document": something at `at` cannot start a node.
pub(super) fn unexpected(text: &str, at: usize) -> Diagnostic {
    let c = text.get(at..).and_then(|r| r.chars().next()).unwrap_or(' ');
    let char_span = SourceSpan::from((at, c.len_utf8()));
    if c == '}' {
        return Diagnostic::error(code::SYNTAX, char_span, "unexpected `}`: no block is open here")
            .label("nothing to close")
            .help("remove it, or look above for a block that was closed too early");
    }
    if c == '#' {
        let rest = text.get(at..).unwrap_or_default();
        if rest.trim_start_matches('#').starts_with('"') {
            let (_, line_end) = line_bounds(text, at);
            let hashes = rest.len() - rest.trim_start_matches('#').len();
            return Diagnostic::error(
                code::SYNTAX,
                SourceSpan::from((at, line_end.max(at) - at)),
                "this raw string is not closed",
            )
            .label(format!("no closing `\"{}`", "#".repeat(hashes)))
            .help(format!(
                "end it with `\"{}`, as many `#` as it starts with",
                "#".repeat(hashes)
            ));
        }
    }
    if c == '='
        && let Some(d) = glued_property(text, at)
    {
        return d;
    }
    if let Some(h) = QuoteHint::find(text, at) {
        return Diagnostic::error(
            code::SYNTAX,
            h.span,
            format!("`{}` must be quoted", slice(text, h.span)),
        )
        .label(format!("`{c}` cannot appear in an unquoted string"))
        .help(format!("write {}", h.suggestion));
    }
    let help = match c {
        '=' => "a property is written `key=value`, with a space between it and what comes before",
        '(' => {
            "`(…)` is a type annotation in KDL and must come right before a value; quote the text if it is part of one"
        }
        _ => "quote the value if this is part of it",
    };
    Diagnostic::error(code::SYNTAX, char_span, format!("unexpected `{c}`"))
        .label("cannot parse from here")
        .help(help)
}

/// A block that never gets its `}`. The parser only knows that the file
/// ended inside `parser_open`; the indentation usually tells which block
/// it was.
pub(super) fn unclosed_block(text: &str, parser_open: usize) -> Diagnostic {
    let (open, closed_by) = match guess_unclosed(text) {
        Some(guess) => guess,
        None => (parser_open, None),
    };
    let (line_start, _) = line_bounds(text, open);
    let head = text.get(line_start..open).unwrap_or_default().trim();
    let what = if head.is_empty() {
        "this block".to_string()
    } else {
        format!("`{head}`")
    };
    let help = match closed_by {
        Some(line) => format!("add `}}` where {what} ends; judging by the indentation, before line {line}"),
        None => format!("add `}}` at the end of {what}"),
    };
    Diagnostic::error(
        code::SYNTAX,
        SourceSpan::from((open, 1)),
        format!("{what} has no closing `}}`"),
    )
    .label("this `{` is never closed")
    .help(help)
}

/// The `{` that most likely lacks its `}`: the first one that a less
/// indented `}` closes (with that `}`'s line), else the innermost one left
/// open at the end of the file.
fn guess_unclosed(text: &str) -> Option<(usize, Option<usize>)> {
    let mut stack: Vec<Brace> = Vec::new();
    for b in braces(text) {
        if b.open {
            stack.push(b);
            continue;
        }
        if b.first_on_line
            && stack.len() >= 2
            && let Some(top) = stack.last()
            && top.indent > b.indent
        {
            let (line, _) = line_column(text, b.offset);
            return Some((top.offset, Some(line)));
        }
        stack.pop();
    }
    stack.last().map(|b| (b.offset, None))
}

#[derive(Debug, Clone, Copy)]
struct Brace {
    offset: usize,
    open: bool,
    indent: usize,
    first_on_line: bool,
}

/// Every `{` and `}` outside strings and comments.
fn braces(text: &str) -> Vec<Brace> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(text, i, 0),
            b'#' => {
                let hashes = bytes[i..].iter().take_while(|b| **b == b'#').count();
                if bytes.get(i + hashes) == Some(&b'"') {
                    i = skip_string(text, i + hashes, hashes);
                } else {
                    i += hashes;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(text, i),
            c @ (b'{' | b'}') => {
                let (line_start, _) = line_bounds(text, i);
                let before = &text[line_start..i];
                out.push(Brace {
                    offset: i,
                    open: c == b'{',
                    indent: before.len() - before.trim_start().len(),
                    first_on_line: before.trim().is_empty(),
                });
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// The offset after a string starting with `"` at `i` (raw if `hashes` > 0).
fn skip_string(text: &str, i: usize, hashes: usize) -> usize {
    let bytes = text.as_bytes();
    let multi = text[i..].starts_with("\"\"\"");
    let mut j = i + if multi { 3 } else { 1 };
    let closing: String = if multi { "\"\"\"" } else { "\"" }.to_string() + &"#".repeat(hashes);
    while j < bytes.len() {
        if hashes == 0 && bytes[j] == b'\\' {
            j += 2;
            continue;
        }
        if !multi && bytes[j] == b'\n' {
            return j;
        }
        if bytes[j..].starts_with(closing.as_bytes()) {
            return j + closing.len();
        }
        j += 1;
    }
    bytes.len()
}

fn skip_block_comment(text: &str, i: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0;
    let mut j = i;
    while j < bytes.len() {
        if bytes[j..].starts_with(b"/*") {
            depth += 1;
            j += 2;
        } else if bytes[j..].starts_with(b"*/") {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    text.len()
}

/// Whitespace-separated tokens of `line`, with their offsets in the text.
fn tokens(line: &str, base: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain(std::iter::once((line.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                out.push((base + s, &line[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// The whitespace-delimited token around `at`.
pub(super) fn token_span(text: &str, at: usize) -> SourceSpan {
    let (line_start, line_end) = line_bounds(text, at);
    let at = at.min(line_end);
    let line = &text[line_start..line_end];
    tokens(line, line_start)
        .into_iter()
        .find(|(s, t)| *s <= at && at < s + t.len())
        .map_or(SourceSpan::from((at, 0)), |(s, t)| SourceSpan::from((s, t.len())))
}

/// Start and end (before `\r\n`) of the line holding `at`.
pub(super) fn line_bounds(text: &str, at: usize) -> (usize, usize) {
    let at = floor_boundary(text, at.min(text.len()));
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let end = if text[..end].ends_with('\r') { end - 1 } else { end };
    (start, end.max(start))
}

pub(super) fn slice(text: &str, span: SourceSpan) -> &str {
    text.get(span.offset()..end(span)).unwrap_or_default()
}

pub(super) fn end(span: SourceSpan) -> usize {
    span.offset() + span.len()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// A value the parser could not read, starting at `at`: a KDL v1 keyword,
/// an unquoted value, quotes in the wrong places, a stray character.
pub(super) fn at_value(text: &str, at: usize) -> Diagnostic {
    let token = token_span(text, at);
    let token_text = slice(text, token);
    if let Some(keyword) = KEYWORDS.iter().find(|k| **k == token_text) {
        return keyword_diagnostic(keyword, token);
    }
    if let Some(d) = bare_value(text, token) {
        return d;
    }
    unexpected(text, at)
}

/// Words that KDL v2 writes with a `#` (`-inf` is a string in v2).
pub(super) const KEYWORDS: &[&str] = &["true", "false", "null", "inf", "nan"];

/// `true`, `false`, `null` (KDL v1 spellings) and `inf`, `-inf`, `nan`.
pub(super) fn keyword_diagnostic(keyword: &str, span: SourceSpan) -> Diagnostic {
    let written = keyword.trim_start_matches('-');
    let v2 = if keyword.starts_with('-') {
        "#-inf".to_string()
    } else {
        format!("#{written}")
    };
    if matches!(keyword, "true" | "false" | "null") {
        Diagnostic::error(
            code::KDL_V1,
            span,
            format!("`{keyword}` is KDL v1: KDL v2 writes `{v2}`"),
        )
        .label(format!("write {v2}"))
        .help(format!(
            "mooring reads KDL v2, where a bare word is a string and true, false and null are \
                 written #true, #false and #null: write `{v2}` here (or \"{keyword}\" for the text)"
        ))
    } else {
        Diagnostic::error(
            code::SYNTAX,
            span,
            format!("bare `{keyword}` is not a value in KDL v2"),
        )
        .label(format!("write {v2}"))
        .help("KDL v2 writes these numbers with a hash: #inf, #-inf, #nan; quote the word for the text")
    }
}

/// `r"…"` or `r#"…"#`: a KDL v1 raw string.
fn v1_raw_string(t: &str, token: SourceSpan) -> Diagnostic {
    let body = &t[1..];
    let v2 = if body.starts_with('"') {
        format!("#{body}#")
    } else {
        body.to_string()
    };
    Diagnostic::error(code::KDL_V1, token, "`r\"…\"` raw strings are KDL v1 syntax")
        .label("KDL v1 raw string")
        .help(format!(
            "in KDL v2, a raw string starts with # instead of r: write {v2}"
        ))
}

/// `\/`, an escape of KDL v1 only, at `at`.
pub(super) fn v1_escape(at: usize) -> Diagnostic {
    Diagnostic::error(
        code::KDL_V1,
        SourceSpan::from((at, 2)),
        "`\\/` is a KDL v1 escape",
    )
    .label("KDL v1 escape")
    .help("KDL v2 has no escape for `/`: write `/` alone")
}

/// A `\` in a quoted string starting at `start` that is no escape (`"^v\d+$"`,
/// the usual way to write a regex), at `esc`.
pub(super) fn bad_escape(text: &str, start: usize, esc: usize) -> Diagnostic {
    let next = text.get(esc + 1..).and_then(|r| r.chars().next()).unwrap_or(' ');
    let at = SourceSpan::from((esc, 1 + next.len_utf8()));
    let (_, line_end) = line_bounds(text, start);
    let body = text.get(start + 1..line_end.max(start + 1)).unwrap_or_default();
    let content = closing_quote(body).map_or(body, |close| &body[..close]);
    Diagnostic::error(code::SYNTAX, at, format!("`\\{next}` is not an escape in a KDL string"))
        .label("unknown escape")
        .help(if content.contains("\\\\") {
            "write \\\\ for a backslash in a quoted string, or use a raw string such as #\"^v\\d+$\"#, where backslashes are literal".to_string()
        } else {
            format!("for a regular expression, use a raw string, where backslashes are literal: #\"{content}\"#; or write \\\\ for each backslash")
        })
}

/// The offset of the first `"` in `body` that no backslash escapes.
fn closing_quote(body: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// A quoted string from `start` that a new line (or the end of the file,
/// at `stop`) interrupts.
pub(super) fn unclosed_string(text: &str, start: usize, stop: usize) -> Diagnostic {
    let span = SourceSpan::from((start, stop.saturating_sub(start)));
    if stop >= text.len() {
        return Diagnostic::error(code::SYNTAX, span, "this string is not closed")
            .label("no closing `\"`")
            .help("end the string with `\"`");
    }
    Diagnostic::error(code::SYNTAX, span, "this string is not closed")
        .label("no closing `\"` on this line")
        .help(
            "end the string with `\"` on the same line; for text over several lines, \
             use a multi-line string: \"\"\" on a line of its own before and after",
        )
}

/// Text right after a closing quote at `close`: `"a"b`.
pub(super) fn glued_to_string(close: usize) -> Diagnostic {
    Diagnostic::error(
        code::SYNTAX,
        SourceSpan::from((close, 1)),
        "the string ends here, but the value goes on",
    )
    .label("string ends")
    .help("a quote is missing or one too many: check the quotes on this line")
}
