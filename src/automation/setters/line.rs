//! Reading YAML a line at a time, as the setters need it: where a line's
//! value and comment are, and what the line leaves open for the next one
//! (block scalars, flow collections, quoted strings) — without parsing the
//! document.

use super::*;

/// What a line leaves open for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Carry {
    /// Block context: a line starts afresh.
    Block,
    /// Inside a block scalar (`|`, `>`): lines indented deeper than
    /// `parent` (and blank lines) are its content, not YAML.
    Literal { parent: isize },
    /// Inside a quoted scalar that goes on past the line, itself inside
    /// `flow` levels of flow collections.
    Quoted { double: bool, flow: usize },
    /// Inside `depth` levels of flow collections (`[`, `{`).
    Flow { depth: usize },
}

/// Where the value that a marker on the line would set is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    /// A plain scalar: these bytes.
    Plain(Range<usize>),
    /// A quoted scalar: the bytes between the quotes.
    Quoted { inner: Range<usize>, double: bool },
    /// No value that can be set; why.
    None(&'static str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LineInfo {
    /// The byte offset of the `#` that starts the line's comment.
    pub(super) comment: Option<usize>,
    pub(super) slot: Slot,
}

impl LineInfo {
    fn none(comment: Option<usize>, why: &'static str) -> LineInfo {
        LineInfo {
            comment,
            slot: Slot::None(why),
        }
    }
}

pub(super) const NOT_A_VALUE: &str = "the line holds no mapping value or list item to set";

pub(super) fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// The first `#` at or after `from` that starts a comment: at the start of
/// the line or after a blank.
pub(super) fn comment_start(b: &[u8], from: usize) -> Option<usize> {
    (from..b.len()).find(|&i| b[i] == b'#' && (i == 0 || is_ws(b[i - 1])))
}

/// The offset just past the quote that closes a quoted scalar whose text
/// starts at `from`, if it closes on this line.
pub(super) fn close_quote(b: &[u8], from: usize, double: bool) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        match (b[i], double) {
            (b'\\', true) => i += 2,
            (b'"', true) => return Some(i + 1),
            (b'\'', false) if b.get(i + 1) == Some(&b'\'') => i += 2,
            (b'\'', false) => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Read one line (without its line ending) given what the line before left
/// open: where its comment starts and which value a marker there would set.
pub(super) fn analyze(line: &str, carry: Carry) -> (LineInfo, Carry) {
    let b = line.as_bytes();
    match carry {
        Carry::Block => block_line(b),
        Carry::Literal { parent } => {
            let indent = b.iter().take_while(|&&c| c == b' ').count();
            if b.iter().all(|&c| is_ws(c)) || indent as isize > parent {
                (LineInfo::none(None, "inside a block scalar"), carry)
            } else {
                block_line(b)
            }
        }
        Carry::Quoted { double, flow } => match close_quote(b, 0, double) {
            None => (LineInfo::none(None, "inside a quoted scalar"), carry),
            Some(end) if flow > 0 => flow_scan(b, end, flow, "inside a flow collection"),
            Some(end) => (
                LineInfo::none(
                    comment_start(b, end),
                    "the value starts on an earlier line (a multi-line quoted scalar)",
                ),
                Carry::Block,
            ),
        },
        Carry::Flow { depth } => flow_scan(
            b,
            0,
            depth,
            "inside a flow collection; flow style is not supported",
        ),
    }
}

/// Scan flow-collection text from `from`, `depth` levels deep, for its
/// comment and for where the collection (or a quoted scalar) ends.
pub(super) fn flow_scan(b: &[u8], from: usize, mut depth: usize, why: &'static str) -> (LineInfo, Carry) {
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'#' if i == 0 || is_ws(b[i - 1]) => return (LineInfo::none(Some(i), why), flow_carry(depth)),
            q @ (b'"' | b'\'') if depth > 0 && (i == 0 || is_ws(b[i - 1]) || b"[{,:".contains(&b[i - 1])) => {
                match close_quote(b, i + 1, q == b'"') {
                    Some(end) => i = end,
                    None => {
                        return (
                            LineInfo::none(None, why),
                            Carry::Quoted {
                                double: q == b'"',
                                flow: depth,
                            },
                        );
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    (LineInfo::none(None, why), flow_carry(depth))
}

pub(super) fn flow_carry(depth: usize) -> Carry {
    if depth == 0 {
        Carry::Block
    } else {
        Carry::Flow { depth }
    }
}

/// A line in block context.
pub(super) fn block_line(b: &[u8]) -> (LineInfo, Carry) {
    let len = b.len();
    let indent = b.iter().take_while(|&&c| c == b' ').count();
    let mut i = skip_ws(b, indent);
    if i == len || b[i] == b'#' {
        // Blank, or a line of only a comment (such as commented-out YAML):
        // never a marker.
        return (LineInfo::none(None, NOT_A_VALUE), Carry::Block);
    }
    let starts = |s: &[u8]| b.starts_with(s) && (len == s.len() || is_ws(b[s.len()]));
    if starts(b"---") || starts(b"...") {
        return (
            LineInfo::none(comment_start(b, 3), "a document marker line"),
            Carry::Block,
        );
    }
    if b[0] == b'%' {
        return (LineInfo::none(None, "a directive"), Carry::Block);
    }
    // Block sequence entries: `- `, maybe nested (`- - x`).
    let mut dash: Option<usize> = None;
    while i < len && b[i] == b'-' && (i + 1 == len || is_ws(b[i + 1])) {
        dash = Some(i);
        i = skip_ws(b, i + 1);
    }
    if i == len {
        return (LineInfo::none(None, NOT_A_VALUE), Carry::Block);
    }
    if b[i] == b'#' {
        return (
            LineInfo::none(Some(i), "the marked line has no value (is it on the next line?)"),
            Carry::Block,
        );
    }
    if (b[i] == b'?' || b[i] == b':') && (i + 1 == len || is_ws(b[i + 1])) {
        return (
            LineInfo::none(comment_start(b, i), "explicit keys (`? `) are not supported"),
            Carry::Block,
        );
    }
    let item_parent = dash.map_or(indent as isize - 1, |d| d as isize);
    match b[i] {
        q @ (b'"' | b'\'') => {
            let double = q == b'"';
            let Some(end) = close_quote(b, i + 1, double) else {
                return (
                    LineInfo::none(None, "a multi-line quoted scalar"),
                    Carry::Quoted { double, flow: 0 },
                );
            };
            let j = skip_ws(b, end);
            if j < len && b[j] == b':' && (j + 1 == len || is_ws(b[j + 1])) {
                value_at(b, j + 1, i as isize)
            } else if dash.is_some() {
                value_at(b, i, item_parent)
            } else {
                (LineInfo::none(comment_start(b, end), NOT_A_VALUE), Carry::Block)
            }
        }
        b'[' | b'{' => flow_scan(b, i, 0, "a flow collection; flow style is not supported"),
        _ => match key_colon(b, i) {
            Some(colon) => value_at(b, colon + 1, i as isize),
            None if dash.is_some() => value_at(b, i, item_parent),
            None => (LineInfo::none(comment_start(b, i), NOT_A_VALUE), Carry::Block),
        },
    }
}

/// The `:` that ends a plain key starting at `from`: followed by a blank
/// or the end of the line, before any comment.
pub(super) fn key_colon(b: &[u8], from: usize) -> Option<usize> {
    for i in from..b.len() {
        match b[i] {
            b'#' if i > 0 && is_ws(b[i - 1]) => return None,
            b':' if i + 1 == b.len() || is_ws(b[i + 1]) => return Some(i),
            _ => {}
        }
    }
    None
}

/// The value that starts at `from` (after a key's `:` or a `- `); `parent`
/// is the indentation a block scalar's content must exceed.
pub(super) fn value_at(b: &[u8], from: usize, parent: isize) -> (LineInfo, Carry) {
    let len = b.len();
    let mut j = skip_ws(b, from);
    // Properties: an anchor (`&a`) and a tag (`!!str`), in any order.
    while j < len && (b[j] == b'&' || b[j] == b'!') {
        while j < len && !is_ws(b[j]) {
            j += 1;
        }
        j = skip_ws(b, j);
    }
    if j == len {
        return (
            LineInfo::none(None, "the marked line has no value (is it on the next line?)"),
            Carry::Block,
        );
    }
    match b[j] {
        b'#' => (
            LineInfo::none(Some(j), "the marked line has no value (is it on the next line?)"),
            Carry::Block,
        ),
        b'*' => (
            LineInfo::none(comment_start(b, j), "the value is an alias (`*name`)"),
            Carry::Block,
        ),
        b'|' | b'>' => (
            LineInfo::none(comment_start(b, j), "the value is a block scalar (`|`, `>`)"),
            Carry::Literal { parent },
        ),
        b'[' | b'{' => flow_scan(
            b,
            j,
            0,
            "the value is a flow collection; flow style is not supported",
        ),
        q @ (b'"' | b'\'') => {
            let double = q == b'"';
            let Some(end) = close_quote(b, j + 1, double) else {
                return (
                    LineInfo::none(None, "a multi-line quoted scalar"),
                    Carry::Quoted { double, flow: 0 },
                );
            };
            let k = skip_ws(b, end);
            if k == len {
                let slot = Slot::Quoted {
                    inner: j + 1..end - 1,
                    double,
                };
                (LineInfo { comment: None, slot }, Carry::Block)
            } else if b[k] == b'#' && k > end {
                let slot = Slot::Quoted {
                    inner: j + 1..end - 1,
                    double,
                };
                (
                    LineInfo {
                        comment: Some(k),
                        slot,
                    },
                    Carry::Block,
                )
            } else {
                (
                    LineInfo::none(comment_start(b, end), "text follows the quoted value"),
                    Carry::Block,
                )
            }
        }
        _ => {
            let comment = comment_start(b, j);
            let mut end = comment.unwrap_or(len);
            while end > j && is_ws(b[end - 1]) {
                end -= 1;
            }
            (
                LineInfo {
                    comment,
                    slot: Slot::Plain(j..end),
                },
                Carry::Block,
            )
        }
    }
}
