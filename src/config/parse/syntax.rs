//! Pass 1: KDL syntax. The `kdl` crate's errors are precise about where it
//! stopped but not about why, and one slip (an unquoted value, a missing
//! `}`) makes it report several errors. This turns them into one
//! diagnostic per mistake, in words about the config.

use kdl::KdlDocument;
use miette::SourceSpan;

use super::super::diagnostic::{Diagnostic, code};
use super::super::schema::Ty;
use super::{KdlVersion, find_spec};

const NO_CLOSE: &str = "No closing '}' for child block";
const NOT_AFTER_NODES: &str = "Closing '}' was not found after nodes";
const NOT_EOF: &str = "Expected end of document";
const NEWLINE_IN_STRING: &str = "Unexpected newline in single-line quoted string";
const EXPECTED_STRING: &str = "Expected quoted string";
const PARTIAL_VALUE_HELP: &str = "A valid value was partially parsed";

/// Characters that end or are not allowed in an unquoted KDL v2 string.
const NOT_IN_BARE: &[char] = &['\\', '/', '(', ')', '{', '}', ';', '[', ']', '"', '#', '='];

/// Parse KDL text, v2 first, then v1. On failure the v2 errors are
/// returned, rewritten.
pub fn parse_kdl(text: &str) -> Result<(KdlDocument, KdlVersion), Vec<Diagnostic>> {
    // The kdl parser recurses once per block: bound the depth before it
    // can exhaust a thread's stack.
    if let Some(too_deep) = nesting_beyond(text, MAX_DEPTH) {
        return Err(vec![
            Diagnostic::error(
                code::SYNTAX,
                SourceSpan::from((too_deep, 1)),
                format!("blocks are nested more than {MAX_DEPTH} deep"),
            )
            .label("too deep")
            .help("a mooring config needs at most three levels of `{ }`; look for unbalanced braces"),
        ]);
    }
    if let Some(doc) = super::fast::parse(text) {
        return Ok((doc, KdlVersion::V2));
    }
    let v2_err = match KdlDocument::parse_v2(text) {
        Ok(doc) => return Ok((doc, KdlVersion::V2)),
        Err(e) => e,
    };
    let v1_err = match KdlDocument::parse_v1(text) {
        Ok(doc) => return Ok((doc, KdlVersion::V1)),
        Err(e) => e,
    };
    // Where v1 stopped at v2-only syntax (`#true`, `#"raw"#`): a file that
    // mixes both versions.
    let v2_marker = v1_err
        .diagnostics
        .first()
        .map(|d| d.span.offset())
        .filter(|at| text.get(*at..).is_some_and(|rest| rest.starts_with('#')))
        .map(|at| token_span(text, at));
    let raw: Vec<Raw> = v2_err
        .diagnostics
        .iter()
        .map(|d| Raw {
            message: d.message.clone().unwrap_or_default(),
            label: d.label.clone(),
            help: d.help.clone(),
            span: clamp(text, d.span),
        })
        .collect();
    // A KDL v1 file with a mistake: v2's complaints are about the v1
    // syntax; v1's error is the one to show.
    let v1_syntax = raw.iter().find_map(|r| v1_syntax_at(text, r.span));
    let mut diags = match v1_syntax {
        Some(v1_at) if v2_marker.is_none() => v1_err
            .diagnostics
            .iter()
            .map(|d| v1_diagnostic(text, d, v1_at))
            .collect(),
        _ => rewrite_all(text, raw, v2_marker),
    };
    if diags.is_empty() {
        diags.push(Diagnostic::error(
            code::SYNTAX,
            SourceSpan::from((0, 0)),
            "invalid KDL document",
        ));
    }
    Err(diags)
}

/// The warning for a KDL v1 file, pointing at the first thing v2 rejects.
pub fn v1_warning(text: &str) -> Diagnostic {
    let span = KdlDocument::parse_v2(text)
        .err()
        .and_then(|e| {
            e.diagnostics
                .first()
                .map(|d| last_line(text, clamp(text, d.span)))
        })
        .unwrap_or_else(|| SourceSpan::from((0, 0)));
    Diagnostic::warning(code::KDL_V1, span, "this file is written in KDL v1")
        .label("not valid KDL v2")
        .help(
            "KDL v1 is accepted for now; to migrate, write `#true`, `#false` and `#null` \
             for true, false and null, and raw strings as #\"…\"# instead of r#\"…\"#",
        )
}

/// Where a v2 error is about v1 syntax: a bare keyword or an `r"…"` string.
fn v1_syntax_at(text: &str, span: SourceSpan) -> Option<SourceSpan> {
    let span = trim_start(text, last_line(text, span));
    let token = token_span(text, end(span).checked_sub(1)?);
    let t = slice(text, token);
    let v1 = ["true", "false", "null"].contains(&t) || t.starts_with("r\"") || t.starts_with("r#");
    v1.then_some(token)
}

fn v1_diagnostic(text: &str, d: &kdl::KdlDiagnostic, v1_at: SourceSpan) -> Diagnostic {
    let span = clamp(text, d.span);
    let (line, _) = super::super::diagnostic::line_column(text, v1_at.offset());
    let note = format!(
        "This file is read as KDL v1, as it uses v1 syntax (`{}` on line {line}).",
        slice(text, v1_at)
    );
    let with_note = |help: &str| format!("{}. {note}", help.trim_end().trim_end_matches('.'));
    let message = d.message.clone().unwrap_or_default();
    if message.contains("closing '}'") {
        let d = unclosed_block(text, span.offset());
        let help = with_note(d.help.as_deref().unwrap_or_default());
        return d.help(help);
    }
    let mut span = trim_start(text, last_line(text, span));
    if span.is_empty() {
        span = token_span(text, span.offset());
    }
    let message = message.trim_end_matches('.');
    Diagnostic::error(
        code::SYNTAX,
        span,
        if message.is_empty() {
            "invalid KDL v1"
        } else {
            message
        },
    )
    .label(d.label.clone().unwrap_or_else(|| "here".into()))
    .help(match &d.help {
        Some(h) => with_note(h),
        None => note,
    })
}

/// One error as the `kdl` crate reports it.
#[derive(Debug, Clone)]
struct Raw {
    message: String,
    label: Option<String>,
    help: Option<String>,
    span: SourceSpan,
}

fn rewrite_all(text: &str, mut raw: Vec<Raw>, v2_marker: Option<SourceSpan>) -> Vec<Diagnostic> {
    raw.sort_by_key(|r| r.span.offset());
    let mut out = Vec::new();

    // A block is reported as unclosed by every enclosing block too, and
    // also when the nodes inside it stopped at something unparseable; only
    // a block whose contents run to the end of the file is really unclosed.
    let unclosed: Vec<usize> = raw
        .iter()
        .filter(|r| r.message == NO_CLOSE)
        .filter(|r| {
            let open_end = end(r.span);
            let stop = raw
                .iter()
                .find(|a| a.message == NOT_AFTER_NODES && a.span.offset() == open_end)
                .map_or(open_end, |a| end(a.span));
            text.get(stop..).is_some_and(|rest| skip_trivia(rest).is_empty())
        })
        .map(|r| r.span.offset())
        .collect();
    if let Some(innermost) = unclosed.last() {
        out.push(unclosed_block(text, *innermost));
    }

    // After "expected end of document" the parser skips one character and
    // starts again, which reports the rest of that line (and every `}`
    // after it) as errors too.
    let first_eof = raw.iter().find(|r| r.message == NOT_EOF).map(|r| r.span.offset());
    for r in &raw {
        if r.message == NO_CLOSE || r.message == NOT_AFTER_NODES {
            continue;
        }
        if let Some(first) = first_eof {
            let at = r.span.offset();
            if (r.message == NOT_EOF && at != first) || (at > first && same_line(text, first, at)) {
                continue;
            }
        }
        out.push(rewrite(text, r, v2_marker));
    }
    // The parser may report one spot twice ("invalid node name" and why).
    out.dedup_by(|a, b| a.span.offset() == b.span.offset());
    out
}

fn rewrite(text: &str, r: &Raw, v2_marker: Option<SourceSpan>) -> Diagnostic {
    if r.message == NOT_EOF {
        return unexpected(text, r.span.offset());
    }
    if r.message == NEWLINE_IN_STRING {
        return Diagnostic::error(code::SYNTAX, r.span, "this string is not closed")
            .label("no closing `\"` on this line")
            .help(
                "end the string with `\"` on the same line; for text over several lines, \
                 use a multi-line string: \"\"\" on a line of its own before and after",
            );
    }
    if r.message == EXPECTED_STRING
        && let Some(d) = quoted_string(text, r.span)
    {
        return d;
    }
    let span = trim_start(text, last_line(text, r.span));
    let Some(last) = end(span).checked_sub(1) else {
        return generic(r, span);
    };
    let token = token_span(text, last);
    let token_text = slice(text, token);
    if let Some(keyword) = ["true", "false", "null", "inf", "-inf", "nan"]
        .into_iter()
        .find(|k| *k == token_text)
    {
        let written = keyword.trim_start_matches('-');
        let mut d = Diagnostic::error(
            code::SYNTAX,
            token,
            format!("bare `{keyword}` is not a value in KDL v2"),
        )
        .label(format!("write #{written}"));
        d = match v2_marker {
            Some(marker) => {
                let (line, _) = super::super::diagnostic::line_column(text, marker.offset());
                d.related(marker, "KDL v2 syntax").help(format!(
                    "KDL v2 writes keywords with a hash: #true, #false, #null. This file also \
                     uses KDL v2 syntax (line {line}), so it cannot be read as KDL v1 either: \
                     write it all in v2"
                ))
            }
            None => d.help("KDL v2 writes keywords with a hash: #true, #false, #null"),
        };
        return d;
    }
    if let Some(d) = bare_value(text, token) {
        return d;
    }
    generic(r, span)
}

/// A quoted string the parser gave up on: a bad escape (`"^v\d+$"`, the
/// usual way to write a regex) or text glued to its end.
fn quoted_string(text: &str, span: SourceSpan) -> Option<Diagnostic> {
    let s = slice(text, span);
    let body = s.strip_prefix('"')?;
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                let (_, next) = chars.next()?;
                if matches!(next, 'n' | 'r' | 't' | '\\' | '"' | 'b' | 'f' | 's' | '/' | 'u')
                    || next.is_whitespace()
                {
                    continue;
                }
                let at = SourceSpan::from((span.offset() + 1 + i, 1 + next.len_utf8()));
                let content = body.rfind('"').map_or(body, |close| &body[..close]);
                return Some(
                    Diagnostic::error(
                        code::SYNTAX,
                        at,
                        format!("`\\{next}` is not an escape in a KDL string"),
                    )
                    .label("unknown escape")
                    .help(if content.contains("\\\\") {
                        "write \\\\ for a backslash in a quoted string, or use a raw string such as #\"^v\\d+$\"#, where backslashes are literal".to_string()
                    } else {
                        format!("for a regular expression, use a raw string, where backslashes are literal: #\"{content}\"#; or write \\\\ for each backslash")
                    }),
                );
            }
            '"' => {
                let close = SourceSpan::from((span.offset() + 1 + i, 1));
                return Some(
                    Diagnostic::error(code::SYNTAX, close, "the string ends here, but the value goes on")
                        .label("string ends")
                        .help("a quote is missing or one too many: check the quotes on this line"),
                );
            }
            _ => {}
        }
    }
    Some(
        Diagnostic::error(code::SYNTAX, span, "this string is not closed")
            .label("no closing `\"`")
            .help("end the string with `\"`"),
    )
}

fn generic(r: &Raw, span: SourceSpan) -> Diagnostic {
    let message = if r.message.is_empty() {
        "invalid KDL".to_string()
    } else {
        r.message.clone()
    };
    let help = match &r.help {
        Some(h) if h.starts_with(PARTIAL_VALUE_HELP) => {
            Some("KDL could read only part of this value: quote it if it is text, or separate two values with a space".into())
        }
        other => other.clone(),
    };
    Diagnostic::error(code::SYNTAX, span, message)
        .label(r.label.clone().unwrap_or_else(|| "here".into()))
        .with_help(help)
}

/// An unquoted value KDL cannot read: `5m`, `apps/podinfo`, `>=1.0.0`,
/// `update images (automated)`.
fn bare_value(text: &str, token: SourceSpan) -> Option<Diagnostic> {
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
        return Some(
            Diagnostic::error(code::SYNTAX, token, "`r\"…\"` raw strings are KDL v1 syntax")
                .label("KDL v1 raw string")
                .help("in KDL v2, write raw strings as #\"…\"#"),
        );
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
    super::super::schema::q(s)
}

/// "expected end of document": something at `at` cannot start a node.
fn unexpected(text: &str, at: usize) -> Diagnostic {
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
/// ended; the indentation usually tells which block it was.
fn unclosed_block(text: &str, kdl_open: usize) -> Diagnostic {
    let (open, closed_by) = match guess_unclosed(text) {
        Some(guess) => guess,
        None => (kdl_open, None),
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
            let (line, _) = super::super::diagnostic::line_column(text, b.offset);
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

/// How deep blocks may nest; real configs use three levels.
pub const MAX_DEPTH: usize = 64;

/// The offset of the first `{` (outside strings and comments) that opens
/// a block deeper than `max`, or of a `/*` nested deeper than `max`.
fn nesting_beyond(text: &str, max: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut blocks, mut comments, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        let pair = (bytes[i], bytes.get(i + 1).copied());
        if comments > 0 {
            // Inside a block comment only nested comments count.
            match pair {
                (b'/', Some(b'*')) => {
                    comments += 1;
                    if comments > max {
                        return Some(i);
                    }
                    i += 2;
                }
                (b'*', Some(b'/')) => {
                    comments -= 1;
                    i += 2;
                }
                _ => i += 1,
            }
            continue;
        }
        match pair {
            (b'"', _) => i = skip_string(text, i, 0),
            (b'#', _) => {
                let hashes = bytes[i..].iter().take_while(|b| **b == b'#').count();
                if bytes.get(i + hashes) == Some(&b'"') {
                    i = skip_string(text, i + hashes, hashes);
                } else {
                    i += hashes;
                }
            }
            (b'/', Some(b'/')) => i = text[i..].find('\n').map_or(bytes.len(), |n| i + n),
            (b'/', Some(b'*')) => {
                comments = 1;
                i += 2;
            }
            (b'{', _) => {
                blocks += 1;
                if blocks > max {
                    return Some(i);
                }
                i += 1;
            }
            (b'}', _) => {
                blocks = blocks.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
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

/// `rest` without leading whitespace and comments.
fn skip_trivia(mut rest: &str) -> &str {
    loop {
        let trimmed = rest.trim_start();
        if trimmed.starts_with("//") {
            rest = trimmed.find('\n').map_or("", |n| &trimmed[n..]);
        } else if trimmed.starts_with("/*") {
            rest = &trimmed[skip_block_comment(trimmed, 0)..];
        } else {
            return trimmed;
        }
    }
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
fn token_span(text: &str, at: usize) -> SourceSpan {
    let (line_start, line_end) = line_bounds(text, at);
    let at = at.min(line_end);
    let line = &text[line_start..line_end];
    tokens(line, line_start)
        .into_iter()
        .find(|(s, t)| *s <= at && at < s + t.len())
        .map_or(SourceSpan::from((at, 0)), |(s, t)| SourceSpan::from((s, t.len())))
}

/// Start and end (before `\r\n`) of the line holding `at`.
fn line_bounds(text: &str, at: usize) -> (usize, usize) {
    let at = floor_boundary(text, at.min(text.len()));
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let end = if text[..end].ends_with('\r') { end - 1 } else { end };
    (start, end.max(start))
}

fn same_line(text: &str, a: usize, b: usize) -> bool {
    line_bounds(text, a).0 == line_bounds(text, b).0
}

/// Multi-line spans from the KDL parser cover everything since the node
/// started; the problem is at the end. Keep the last line.
pub(super) fn last_line(text: &str, span: SourceSpan) -> SourceSpan {
    let start = span.offset().min(text.len());
    let end = end(span).min(text.len());
    match text
        .get(start..end)
        .and_then(|s| s.trim_end_matches('\n').rfind('\n'))
    {
        Some(nl) => {
            let new_start = start + nl + 1;
            SourceSpan::from((new_start, end - new_start))
        }
        None => SourceSpan::from((start, end - start)),
    }
}

fn trim_start(text: &str, span: SourceSpan) -> SourceSpan {
    let s = slice(text, span);
    let skip = s.len() - s.trim_start().len();
    SourceSpan::from((span.offset() + skip, span.len() - skip))
}

fn clamp(text: &str, span: SourceSpan) -> SourceSpan {
    let start = floor_boundary(text, span.offset().min(text.len()));
    let end = floor_boundary(text, end(span).min(text.len())).max(start);
    SourceSpan::from((start, end - start))
}

fn slice(text: &str, span: SourceSpan) -> &str {
    text.get(span.offset()..end(span)).unwrap_or_default()
}

fn end(span: SourceSpan) -> usize {
    span.offset() + span.len()
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_nesting_is_refused_before_the_parser_recurses() {
        let deep = format!("{}{}", "a {\n".repeat(5000), "}\n".repeat(5000));
        let diags = parse_kdl(&deep).unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].span.offset(), "a {\n".len() * MAX_DEPTH + 2);
        let comments = format!("{}{}\nagent {{}}", "/*".repeat(5000), "*/".repeat(5000));
        assert!(parse_kdl(&comments).is_err());
        // Braces in strings and comments do not count; shallow files parse.
        let text = format!(
            "a \"{}\" // {}\nb {{ c {{ d {{ }} }} }}\n",
            "{".repeat(500),
            "{".repeat(500)
        );
        assert!(parse_kdl(&text).is_ok());
        // `/*` inside strings (globs!) is not a comment.
        let globs = "s { ignore \"docs/**\" \"a/*.md\" }\n".repeat(200);
        assert!(parse_kdl(&globs).is_ok());
        let ok = format!("{}{}", "a {\n".repeat(MAX_DEPTH), "}\n".repeat(MAX_DEPTH));
        assert!(parse_kdl(&ok).is_ok());
    }

    fn errors(text: &str) -> Vec<(String, String, Option<String>)> {
        parse_kdl(text).map(|_| Vec::new()).unwrap_or_else(|diags| {
            diags
                .into_iter()
                .map(|d| (d.message, slice(text, d.span).to_string(), d.help))
                .collect()
        })
    }

    #[test]
    fn one_error_per_unquoted_value() {
        let e = errors("a {\n    message update images (automated)\n}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].1, "update images (automated)");
        assert_eq!(
            e[0].2.as_deref(),
            Some("write `message \"update images (automated)\"`")
        );
        let e = errors("a {\n    interval 5m\n}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].1, "5m");
        let e = errors("semver >=1.0.0\n");
        assert_eq!(e[0].1, ">=1.0.0");
        let e = errors("concurrency 4x\n");
        assert_eq!(e[0].0, "`4x` is not an integer");
        let e = errors("log level=de/bug format=\"json\"\n");
        assert_eq!(e[0].1, "de/bug");
        assert_eq!(e[0].2.as_deref(), Some("write `level=\"de/bug\"`"));
    }

    #[test]
    fn unclosed_blocks_are_found_by_indentation() {
        let text = "s \"a\" {\n    auth {\n        x \"y\"\n}\n\nb {\n    c \"d\"\n}\n";
        let e = errors(text);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "`auth` has no closing `}`");
        assert!(e[0].2.as_deref().is_some_and(|h| h.contains("before line 4")));
        let e = errors("s \"a\" {\n    x \"// {\"\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "`s \"a\"` has no closing `}`");
    }

    #[test]
    fn multi_byte_characters_do_not_panic() {
        for text in [
            "\"\u{2028}{",
            "/*\u{fffd}*/s{",
            "a \"\u{e9}\\\u{e9}\" {",
            "/* \u{e9} */ {",
        ] {
            let _ = parse_kdl(text);
            let _ = guess_unclosed(text);
        }
    }

    #[test]
    fn a_v1_file_gets_the_v1_error() {
        let e = errors("app \"a\" {\n    prune true\n    path \"x\" {\n}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].0, "`path \"x\"` has no closing `}`");
        assert!(e[0].2.as_deref().is_some_and(|h| h.contains("KDL v1")), "{e:?}");
    }

    #[test]
    fn a_stray_closing_brace_is_one_error() {
        let e = errors("a {\n}\n}\nb {\n}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].1, "}");
    }

    #[test]
    fn multi_line_parse_errors_point_at_the_last_line() {
        let text = "a \"é\" x=1\nbad é=\n";
        let diags = parse_kdl(text).unwrap_err();
        let (line, _) = super::super::super::diagnostic::line_column(text, diags[0].span.offset());
        assert_eq!(line, 2);
    }
}
