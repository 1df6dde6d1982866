//! Where a part of a decoded string value is written in the file: for
//! diagnostics that point inside a value (a regex's bad group, a
//! template's unknown variable), through quotes, escapes and the
//! indentation of multi-line strings.

use miette::SourceSpan;

use super::super::syntax::Entry;

/// Map a byte range of a decoded string back into the source text `text`,
/// through quotes, escapes and the indentation of multi-line strings.
/// `None` when the string's form makes that uncertain.
pub(super) fn span_within(text: &str, entry: &Entry, start: usize, len: usize) -> Option<SourceSpan> {
    let span = entry.value_span();
    let repr = text.get(span.offset()..span.offset() + span.len())?;
    let hashes = repr.bytes().take_while(|b| *b == b'#').count();
    let body = &repr[hashes..];
    // Where `body` starts in the file: the span starts with the value.
    let body_at = span.offset() + hashes;
    let map = if body.starts_with("\"\"\"") {
        multiline_map(body, hashes > 0)?
    } else if hashes > 0 {
        // Raw string: no escapes.
        let base = span.offset() + hashes + 1;
        return Some(SourceSpan::from((base + start, len)));
    } else if !body.starts_with('"') {
        // Bare identifier string.
        return Some(SourceSpan::from((span.offset() + start, len)));
    } else {
        let mut map = Vec::new();
        let end = escape_map(&body[1..], 1, true, &mut map)?;
        map.push(end);
        map
    };
    let from = *map.get(start)?;
    let to = *map.get(start + len)?;
    Some(SourceSpan::from((body_at + from, to.max(from) - from)))
}

/// For each decoded byte of `src` (up to an unescaped `"` when
/// `to_quote`), its offset in `src` plus `base`; gives the offset where
/// decoding stopped. `None` on escapes it cannot follow (whitespace escapes).
fn escape_map(src: &str, base: usize, to_quote: bool, map: &mut Vec<usize>) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = 0;
    while i < bytes.len() && !(to_quote && bytes[i] == b'"') {
        if bytes[i] == b'\\' {
            let esc_start = i;
            let next = *bytes.get(i + 1)?;
            let (decoded_len, consumed) = match next {
                b'u' => {
                    let close = src[i..].find('}')?;
                    let hex = src.get(i + 3..i + close)?;
                    let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                    (c.len_utf8(), close + 1)
                }
                b'n' | b'r' | b't' | b'\\' | b'"' | b'b' | b'f' | b's' | b'/' => (1, 2),
                _ => return None, // whitespace escapes and the like
            };
            for _ in 0..decoded_len {
                map.push(base + esc_start);
            }
            i += consumed;
        } else {
            map.push(base + i);
            i += 1;
        }
    }
    Some(base + i)
}

/// The decoded-byte map of a KDL v2 multi-line string (`body` starts at
/// its opening `"""`): content lines lose the closing line's indentation,
/// blank lines are empty, lines are joined by `\n`.
fn multiline_map(body: &str, raw: bool) -> Option<Vec<usize>> {
    let first = body[3..].find('\n')? + 4;
    let close = body.rfind("\"\"\"")?;
    let last_line = body[..close].rfind('\n')? + 1;
    let indent = &body[last_line..close];
    if !indent.bytes().all(|b| b == b' ' || b == b'\t') {
        return None;
    }
    let mut map = Vec::new();
    if last_line <= first {
        map.push(first);
        return Some(map);
    }
    let mut at = first;
    for (i, line) in body[first..last_line - 1].split('\n').enumerate() {
        if i > 0 {
            map.push(at - 1); // the newline that ended the line before
        }
        let text = line.strip_suffix('\r').unwrap_or(line);
        if !text.trim().is_empty() {
            let rest = text.strip_prefix(indent)?;
            let base = at + indent.len();
            if raw {
                map.extend((0..rest.len()).map(|k| base + k));
            } else {
                escape_map(rest, base, false, &mut map)?;
            }
        }
        at += line.len() + 1;
    }
    map.push(last_line - 1);
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first_entry(src: &str) -> Entry {
        let doc = crate::config::syntax::parse(src).unwrap_or_else(|e| panic!("{src:?}: {e:?}"));
        doc.nodes()[0].entries()[0].clone()
    }

    #[test]
    fn spans_map_through_escapes() {
        for (src, needle) in [
            (r##"filter #"^a(b$"#"##, "(b$"),
            (r#"filter "^a(b$""#, "(b$"),
            (r#"filter "\\d\"(b$""#, "(b$"),
            (r#"filter "é\u{e9}(b$""#, "(b$"),
            (r###"filter ##"^a(b$"##"###, "(b$"),
        ] {
            let entry = first_entry(src);
            let decoded = entry.value().as_string().unwrap();
            let start = decoded.find("(b").unwrap();
            let span = span_within(src, &entry, start, 3).unwrap();
            assert_eq!(&src[span.offset()..span.offset() + span.len()], needle, "{src}");
        }
    }

    #[test]
    fn spans_map_through_multi_line_strings() {
        for src in [
            "message \"\"\"\n    first\n\n      x {{ (b$ }}\n    \"\"\"",
            "message #\"\"\"\n  first\n\n    x {{ (b$ }}\n  \"\"\"#",
            "message \"\"\"\n\tfirst \\u{e9}\\\"\n\n\t  x {{ (b$ }}\n\t\"\"\"",
            "message \"\"\"\r\n    first\r\n    x {{ (b$ }}\r\n    \"\"\"",
        ] {
            let entry = first_entry(src);
            let decoded = entry.value().as_string().unwrap();
            let start = decoded.find("(b").unwrap();
            let span = span_within(src, &entry, start, 3)
                .unwrap_or_else(|| panic!("no span: {src:?} -> {decoded:?}"));
            assert_eq!(&src[span.offset()..span.offset() + span.len()], "(b$", "{src:?}");
            let whole = span_within(src, &entry, 0, decoded.len()).unwrap();
            assert!(src[whole.offset()..].starts_with("first"), "{src:?}");
        }
    }
}
