//! Double-quoted string literals as JSON, YAML and KDL spell them. All three
//! escape `"` and `\` with a backslash and write a line feed, carriage
//! return and tab as `\n`, `\r`, `\t`; they differ in which other characters
//! they escape and how ([`Syntax`]). Any string goes in; what comes out reads
//! back as that string.

use std::fmt::Write as _;

/// Whose string literal to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// Go's `encoding/json`: the other C0 controls, U+2028 and U+2029 as
    /// `\u00XX`; with `escape_html`, `<`, `>` and `&` too.
    Json { escape_html: bool },
    /// YAML: control characters, the byte order mark, U+2028 and U+2029 as
    /// `\uXXXX`.
    Yaml,
    /// KDL: control characters as `\u{X}`.
    Kdl,
}

/// Append `s` as a double-quoted string literal of `syntax`.
pub fn write(out: &mut String, s: &str, syntax: Syntax) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if syntax.escapes(c) => {
                let _ = match syntax {
                    Syntax::Kdl => write!(out, "\\u{{{:x}}}", c as u32),
                    Syntax::Json { .. } | Syntax::Yaml => write!(out, "\\u{:04x}", c as u32),
                };
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Syntax {
    fn escapes(self, c: char) -> bool {
        match self {
            Syntax::Json { escape_html } => {
                (c as u32) < 0x20
                    || matches!(c, '\u{2028}' | '\u{2029}')
                    || (escape_html && matches!(c, '<' | '>' | '&'))
            }
            Syntax::Yaml => c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}'),
            Syntax::Kdl => c.is_control(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(s: &str, syntax: Syntax) -> String {
        let mut out = String::new();
        write(&mut out, s, syntax);
        out
    }

    #[test]
    fn each_syntax_escapes_its_own() {
        let s = "a\"b\\c\nd\re\tf\u{1}<&>\u{7f}\u{85}\u{feff}\u{2028}é";
        for (syntax, want) in [
            (
                Syntax::Json { escape_html: true },
                "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001\\u003c\\u0026\\u003e\u{7f}\u{85}\u{feff}\\u2028é\"",
            ),
            (
                Syntax::Json { escape_html: false },
                "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001<&>\u{7f}\u{85}\u{feff}\\u2028é\"",
            ),
            (
                Syntax::Yaml,
                "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001<&>\\u007f\\u0085\\ufeff\\u2028é\"",
            ),
            (
                Syntax::Kdl,
                "\"a\\\"b\\\\c\\nd\\re\\tf\\u{1}<&>\\u{7f}\\u{85}\u{feff}\u{2028}é\"",
            ),
        ] {
            assert_eq!(quoted(s, syntax), want, "{syntax:?}");
        }
    }
}
