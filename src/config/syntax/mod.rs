//! KDL v2 syntax: takes the text of a config file and gives a compact tree
//! of what mooring reads — nodes (name and span), their arguments and
//! properties (decoded values, with the span of each value and of the
//! whole entry) and children blocks — or every syntax error in the file.
//!
//! Written from the KDL v2 specification (<https://kdl.dev>), not from an
//! implementation: comments (nested `/* */`), slashdash on nodes, entries
//! and children blocks, line continuations, quoted, raw and multi-line
//! strings with escapes and dedent, numbers in four radixes, `#true`,
//! `#false`, `#null`, `#inf`, `#-inf`, `#nan`. Type annotations are parsed
//! and refused, as mooring gives them no meaning. KDL v1 spellings (`true`,
//! `r"…"`, `\/`) get their own diagnostic with the v2 spelling as the fix.
//!
//! Untrusted input: the parser never panics, recurses only once per
//! children block and refuses blocks nested deeper than [`MAX_DEPTH`],
//! runs in time linear in the text (plus the wording of each error, which
//! looks at its own line), and stops after [`MAX_ERRORS`] errors.

use miette::SourceSpan;

use super::diagnostic::Diagnostic;

mod explain;
mod parser;

/// How deep children blocks may nest; real configs use three levels.
pub const MAX_DEPTH: usize = 64;

/// Syntax errors reported before the parser gives up on a file.
pub const MAX_ERRORS: usize = 100;

/// Parse `text` as KDL v2.
pub fn parse(text: &str) -> Result<Document, Vec<Diagnostic>> {
    parser::parse(text)
}

/// A parsed file: its top-level nodes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    pub nodes: Vec<Node>,
}

impl Document {
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
}

/// A node or property name, decoded, with where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ident {
    value: Box<str>,
    span: SourceSpan,
}

impl Ident {
    pub fn value(&self) -> &str {
        &self.value
    }

    pub fn span(&self) -> SourceSpan {
        self.span
    }
}

/// One node: a name, entries in the order written, maybe a children block.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    name: Ident,
    entries: Vec<Entry>,
    children: Option<Block>,
    span: SourceSpan,
}

impl Node {
    pub fn name(&self) -> &Ident {
        &self.name
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn children(&self) -> Option<&Block> {
        self.children.as_ref()
    }

    /// From the name to the end of the last entry or of the children block.
    pub fn span(&self) -> SourceSpan {
        self.span
    }
}

/// A children block, `{` to `}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    nodes: Vec<Node>,
    span: SourceSpan,
}

impl Block {
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// From `{` to `}`, both included.
    pub fn span(&self) -> SourceSpan {
        self.span
    }
}

/// An argument (`name` is `None`) or a property.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    name: Option<Ident>,
    value: Value,
    value_span: SourceSpan,
    span: SourceSpan,
}

impl Entry {
    pub fn name(&self) -> Option<&Ident> {
        self.name.as_ref()
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    /// Where the value is written: for `key=value`, the value part.
    pub fn value_span(&self) -> SourceSpan {
        self.value_span
    }

    /// The whole entry: `key=value`, or the argument.
    pub fn span(&self) -> SourceSpan {
        self.span
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    String(Box<str>),
    Integer(i128),
    Float(f64),
    Bool(bool),
    Null,
}

impl Value {
    pub fn as_string(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Value::String(_))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_integer(&self) -> Option<i128> {
        match self {
            Value::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::String(s) => write!(f, "{s:?}"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_nan() => f.write_str("#nan"),
            Value::Float(x) if x.is_infinite() => f.write_str(if *x > 0.0 { "#inf" } else { "#-inf" }),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(b) => write!(f, "#{b}"),
            Value::Null => f.write_str("#null"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<(String, String, Option<String>)> {
        parse(text).map(|_| Vec::new()).unwrap_or_else(|diags| {
            diags
                .into_iter()
                .map(|d| {
                    let at = d.span.offset()..d.span.offset() + d.span.len();
                    (d.message, text.get(at).unwrap_or_default().to_string(), d.help)
                })
                .collect()
        })
    }

    #[test]
    fn values_and_spans() {
        let text = "a 1 -0x1f 0o17 0b1_0 1.5e3 #true #null #inf k=\"v\\n\" r=#\"\\d\"# /-x=1 bare\n";
        let doc = parse(text).unwrap_or_else(|e| panic!("{e:?}"));
        let node = &doc.nodes()[0];
        let values: Vec<String> = node.entries().iter().map(|e| e.value().to_string()).collect();
        assert_eq!(
            values,
            [
                "1",
                "-31",
                "15",
                "2",
                "1500.0",
                "#true",
                "#null",
                "#inf",
                "\"v\\n\"",
                "\"\\\\d\"",
                "\"bare\""
            ]
        );
        let k = &node.entries()[8];
        assert_eq!(k.name().map(Ident::value), Some("k"));
        let at = |s: SourceSpan| &text[s.offset()..s.offset() + s.len()];
        assert_eq!(at(k.value_span()), "\"v\\n\"");
        assert_eq!(at(k.span()), "k=\"v\\n\"");
        let multi = "m \"\"\"\n    one\n\n      two \\\n      three\n    \"\"\"\n";
        let doc = parse(multi).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(
            doc.nodes()[0].entries()[0].value().as_string(),
            Some("one\n\n  two three")
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "a {\n".repeat(5000), "}\n".repeat(5000));
        let diags = parse(&deep).unwrap_err();
        assert_eq!(diags.len(), 1);
        assert_eq!(diags[0].span.offset(), "a {\n".len() * MAX_DEPTH + 2);
        let ok = format!("{}{}", "a {\n".repeat(MAX_DEPTH), "}\n".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        // Comments nest without recursion.
        let comments = format!("{}{}\nagent {{}}", "/*".repeat(5000), "*/".repeat(5000));
        assert!(parse(&comments).is_ok());
        let globs = "s { ignore \"docs/**\" \"a/*.md\" }\n".repeat(200);
        assert!(parse(&globs).is_ok());
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
    fn kdl_v1_spellings_and_v2_mistakes_are_all_reported() {
        // The example of the issue: the v1 keyword does not hide the
        // unquoted duration, and neither hides the other.
        let e = errors("app \"a\" {\n    prune true\n    interval 10m\n    path \"x\"\n}\n");
        let messages: Vec<&str> = e.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            messages,
            ["`true` is KDL v1: KDL v2 writes `#true`", "`10m` must be quoted"]
        );
        let e = errors("a r#\"x\"# \"a\\/b\" nan\n");
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].2.as_deref().is_some_and(|h| h.contains("write #\"x\"#")),
            "{e:?}"
        );
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
    fn a_stray_closing_brace_is_one_error() {
        let e = errors("a {\n}\n}\nb {\n}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].1, "}");
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            "\"\u{2028}{",
            "/*\u{fffd}*/s{",
            "a \"\u{e9}\\\u{e9}\" {",
            "/* \u{e9} */ {",
            "a \"\"\"\n\u{e9}\\",
            "a #\"\"\"\n x\n\"\"\"",
            "a \"\\u{110000}\" \"\\u{D800}\" \"\\u{\"",
            "(",
            "a (",
            "a (t",
            "a =",
            "a b=",
            "/-",
            "a /-",
            "\\",
            "a \\",
            "#",
            "a ##",
            "a 0x",
            "a -",
            "a 99999999999999999999999999999999999999999",
        ] {
            let _ = parse(text);
        }
        // Too many errors: the parser stops.
        let many = "a 1x\n".repeat(10 * MAX_ERRORS);
        assert_eq!(parse(&many).unwrap_err().len(), MAX_ERRORS);
    }
}
