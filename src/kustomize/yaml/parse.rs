//! YAML text to [`Node`]s, from the event stream of `granit-parser` (the
//! parser serde-saphyr uses): positions for every node, mapping order kept,
//! aliases expanded (with a cap, against alias bombs), merge keys (`<<`)
//! applied, duplicate keys refused.

use std::collections::HashMap;

use granit_parser::{Event, Parser, ScalarStyle, Span};

use super::{Entry, Node, Pos, Scalar, Tag, Value, scalar};

/// The most nodes that alias expansion may create in one file.
const MAX_ALIAS_NODES: usize = 1_000_000;

/// One document of a file; `node` is `None` for an empty or null document.
#[derive(Debug)]
pub struct Document {
    pub node: Option<Node>,
    /// The line where the document's content starts.
    pub line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub col: u32,
    pub message: String,
}

fn pos(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        col: span.start.col() as u32 + 1,
    }
}

fn error(span: &Span, message: impl Into<String>) -> ParseError {
    let p = pos(span);
    ParseError {
        line: p.line,
        col: p.col,
        message: message.into(),
    }
}

struct Builder<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    alias_nodes: usize,
    last_key_wins: bool,
}

/// Every document of `text`; a repeated mapping key is an error.
pub fn parse_documents(text: &str) -> Result<Vec<Document>, ParseError> {
    parse(text, false)
}

/// Every document of `text`, a repeated mapping key replacing the earlier
/// value (how kustomize reads its own files).
pub fn parse_documents_lenient(text: &str) -> Result<Vec<Document>, ParseError> {
    parse(text, true)
}

fn parse(text: &str, last_key_wins: bool) -> Result<Vec<Document>, ParseError> {
    let mut b = Builder {
        parser: Parser::new_from_str_with_options(text, granit_parser::options! { emit_comments: false }),
        anchors: HashMap::new(),
        alias_nodes: 0,
        last_key_wins,
    };
    let mut docs = Vec::new();
    loop {
        let (event, span) = b.next()?;
        match event {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                b.anchors.clear();
                let (event, span) = b.next()?;
                if matches!(event, Event::DocumentEnd) {
                    docs.push(Document {
                        node: None,
                        line: pos(&span).line,
                    });
                    continue;
                }
                let line = pos(&span).line;
                let node = b.node(event, span)?;
                docs.push(Document {
                    node: (!node.is_null()).then_some(node),
                    line,
                });
            }
            _ => return Err(error(&span, "unexpected YAML event")),
        }
    }
    Ok(docs)
}

impl<'a> Builder<'a> {
    fn next(&mut self) -> Result<(Event<'a>, Span), ParseError> {
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(ParseError {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
                message: e.info(),
            }),
            None => Err(ParseError {
                line: 0,
                col: 0,
                message: "unexpected end of the YAML stream".into(),
            }),
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span) -> Result<Node, ParseError> {
        let at = pos(&span);
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = tag.is_none() && style == ScalarStyle::Plain;
                let tag = match (&tag, style) {
                    (Some(t), _) => match t.core_suffix() {
                        Some("null") => Tag::Null,
                        Some("bool") => Tag::Bool,
                        Some("int") => Tag::Int,
                        Some("float") => Tag::Float,
                        _ => Tag::Str,
                    },
                    (None, ScalarStyle::Plain) => scalar::resolve_plain(&text),
                    (None, _) => Tag::Str,
                };
                let node = Node {
                    value: Value::Scalar(Scalar {
                        text: text.into_owned(),
                        tag,
                        plain,
                    }),
                    pos: at,
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(error(&span, "unknown alias"));
                };
                self.alias_nodes += count(target);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(error(
                        &span,
                        format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                    ));
                }
                Ok(target.clone().at(at))
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, span)?);
                }
                let node = Node {
                    value: Value::Seq(items),
                    pos: at,
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            Event::MappingStart(_, anchor, _) => {
                let mut entries: Vec<Entry> = Vec::new();
                let mut merges: Vec<Node> = Vec::new();
                loop {
                    let (event, kspan) = self.next()?;
                    if matches!(event, Event::MappingEnd) {
                        break;
                    }
                    let is_merge =
                        matches!(&event, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
                    let key = self.node(event, kspan)?;
                    let key_pos = key.pos;
                    let key = match key.value {
                        Value::Scalar(s) => s.text,
                        _ => return Err(error(&kspan, "a mapping key must be a scalar")),
                    };
                    let (event, vspan) = self.next()?;
                    let value = self.node(event, vspan)?;
                    if is_merge {
                        merges.push(value);
                        continue;
                    }
                    if self.last_key_wins
                        && let Some(e) = entries.iter_mut().find(|e| e.key == key)
                    {
                        e.value = value;
                        e.key_pos = key_pos;
                        continue;
                    }
                    if let Some(first) = entries.iter().find(|e| e.key == key) {
                        return Err(error(
                            &kspan,
                            format!(
                                "mapping key \"{key}\" already defined at line {}",
                                first.key_pos.line
                            ),
                        ));
                    }
                    entries.push(Entry { key, key_pos, value });
                }
                for merge in merges {
                    let sources = match merge.value {
                        Value::Map(_) => vec![merge],
                        Value::Seq(items) => items,
                        Value::Scalar(_) => {
                            return Err(ParseError {
                                line: merge.pos.line,
                                col: merge.pos.col,
                                message: "a merge key (<<) needs a mapping or a list of mappings".into(),
                            });
                        }
                    };
                    for source in sources {
                        let Value::Map(src) = source.value else {
                            return Err(ParseError {
                                line: source.pos.line,
                                col: source.pos.col,
                                message: "a merge key (<<) needs a mapping or a list of mappings".into(),
                            });
                        };
                        for e in src {
                            if !entries.iter().any(|x| x.key == e.key) {
                                entries.push(e);
                            }
                        }
                    }
                }
                let node = Node {
                    value: Value::Map(entries),
                    pos: at,
                };
                if anchor != 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                Ok(node)
            }
            _ => Err(error(&span, "unexpected YAML event")),
        }
    }
}

fn count(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|e| 1 + count(&e.value)).sum::<usize>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Node {
        let mut docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 1);
        docs.remove(0).node.unwrap()
    }

    #[test]
    fn documents_and_positions() {
        let docs = parse_documents("a: 1\n---\n---\nb:\n  - x\n  - 'y'\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[1].node.is_none());
        let b = docs[2].node.as_ref().unwrap();
        assert_eq!(docs[2].line, 4);
        let items = b.get("b").unwrap().as_seq().unwrap();
        assert_eq!(items[1].pos, Pos { line: 6, col: 5 });
        assert_eq!(items[1].as_scalar().unwrap().tag, Tag::Str);
        assert_eq!(b.entry("b").unwrap().key_pos, Pos { line: 4, col: 1 });
    }

    #[test]
    fn scalar_types() {
        let n = one("a: 1\nb: '1'\nc: ~\nd: yes\ne: !!str 3\nf: |\n  x\n");
        let tag = |k: &str| n.get(k).unwrap().as_scalar().unwrap().tag;
        assert_eq!(tag("a"), Tag::Int);
        assert_eq!(tag("b"), Tag::Str);
        assert_eq!(tag("c"), Tag::Null);
        assert_eq!(tag("d"), Tag::Str);
        assert_eq!(tag("e"), Tag::Str);
        assert_eq!(n.str_at(&["f"]), Some("x\n"));
    }

    #[test]
    fn aliases_and_merge_keys() {
        let n = one("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\nd: *b\n");
        assert_eq!(n.str_at(&["c", "x"]), Some("1"));
        assert_eq!(n.str_at(&["c", "y"]), Some("3"));
        assert_eq!(n.str_at(&["d", "y"]), Some("2"));
    }

    #[test]
    fn alias_bombs_are_stopped() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            text.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("aliases expand"), "{err:?}");
    }

    #[test]
    fn errors_have_positions() {
        let err = parse_documents("a: 1\nb: [\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert_eq!((err.line, err.col), (2, 1));
        assert!(err.message.contains("already defined at line 1"), "{err:?}");
    }
}
