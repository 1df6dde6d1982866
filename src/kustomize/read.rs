//! Reading kustomize's own files (kustomizations, transformer configs,
//! plugin configs) into typed values, as kustomize reads them: strict about
//! field names (an unknown field is an error naming it, with a suggestion),
//! yaml.v2's typing of scalars, every problem of a file at once.

use super::error::{Error, Source, code};
use super::yaml::scalar::{v2_bool, v2_int, v2_kind, v2_string};
use super::yaml::{Node, Pos, Value};

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

pub struct Reader<'a> {
    pub src: &'a Source,
    pub errors: Vec<Error>,
    /// When set, unknown fields are collected here (kustomize ignores
    /// them in plugin configs) instead of being errors.
    pub ignored: Option<Vec<Error>>,
}

impl<'a> Reader<'a> {
    pub fn new(src: &'a Source) -> Reader<'a> {
        Reader {
            src,
            errors: Vec::new(),
            ignored: None,
        }
    }

    pub fn error(&mut self, code: &'static str, pos: Pos, message: impl Into<String>) -> &mut Error {
        self.errors.push(Error::at(code, self.src, pos, message));
        let last = self.errors.len() - 1;
        &mut self.errors[last]
    }

    /// A reader that warns about unknown fields instead of failing.
    pub fn lenient(src: &'a Source) -> Reader<'a> {
        Reader {
            ignored: Some(Vec::new()),
            ..Reader::new(src)
        }
    }

    /// The entries of a mapping whose keys must be among `known` (matched
    /// as Go's JSON decoding matches them: exactly, else ignoring ASCII
    /// case), under their known names; each other key is reported. `None`
    /// (and an error) when `node` is not a mapping; a null node reads as an
    /// empty mapping.
    pub fn fields<'n, 'k>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&'k str],
    ) -> Option<Vec<(&'k str, &'n Node)>> {
        if node.is_null() {
            return Some(Vec::new());
        }
        let Some(map) = node.as_map() else {
            self.error(
                code::WRONG_TYPE,
                node.pos,
                format!("{what} must be a mapping, not {}", node.kind_name()),
            );
            return None;
        };
        let mut out = Vec::new();
        for e in map {
            let name = known
                .iter()
                .find(|k| **k == e.key)
                .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(&e.key)));
            if let Some(name) = name {
                out.push((*name, &e.value));
                continue;
            }
            let hint = crate::config::value::suggest(&e.key, known.iter().copied())
                .map(|s| format!("did you mean `{s}`? "))
                .unwrap_or_default();
            if let Some(ignored) = &mut self.ignored {
                let mut w = Error::at(
                    code::UNKNOWN_FIELD,
                    self.src,
                    e.key_pos,
                    format!("field `{}` of {what} is ignored", e.key),
                );
                w.help = Some(format!(
                    "{hint}kustomize ignores it too; the fields of {what} are: {}",
                    known.join(", ")
                ));
                ignored.push(w);
            } else {
                self.error(
                    code::UNKNOWN_FIELD,
                    e.key_pos,
                    format!("unknown field `{}` in {what}", e.key),
                )
                .help = Some(format!("{hint}the fields of {what} are: {}", known.join(", ")));
            }
        }
        Some(out)
    }

    /// A string field. Like kustomize, a scalar that YAML 1.1 reads as a
    /// number or a boolean (`12`, `yes`, `on`) is not a string.
    pub fn string(&mut self, node: &Node, what: &str) -> Option<Spanned<String>> {
        match &node.value {
            Value::Scalar(s) => match v2_kind(s) {
                "string" => v2_string(s).map(|value| Spanned { value, pos: node.pos }),
                "null" => None,
                kind => {
                    self.error(
                        code::WRONG_TYPE,
                        node.pos,
                        format!("{what} must be a string, and `{}` reads as a {kind}", s.text),
                    )
                    .help = Some(format!("quote it: \"{}\"", s.text));
                    None
                }
            },
            _ => {
                self.error(
                    code::WRONG_TYPE,
                    node.pos,
                    format!("{what} must be a string, not {}", node.kind_name()),
                );
                None
            }
        }
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> bool {
        if node.is_null() {
            return false;
        }
        match node.as_scalar().and_then(v2_bool) {
            Some(b) => b,
            None => {
                self.error(
                    code::WRONG_TYPE,
                    node.pos,
                    format!("{what} must be true or false, not {}", describe(node)),
                );
                false
            }
        }
    }

    pub fn int(&mut self, node: &Node, what: &str) -> Option<i64> {
        match node.as_scalar().and_then(v2_int) {
            Some(i) => Some(i),
            None => {
                self.error(
                    code::WRONG_TYPE,
                    node.pos,
                    format!("{what} must be a whole number, not {}", describe(node)),
                );
                None
            }
        }
    }

    pub fn list<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        if node.is_null() {
            return &[];
        }
        match node.as_seq() {
            Some(items) => items,
            None => {
                self.error(
                    code::WRONG_TYPE,
                    node.pos,
                    format!("{what} must be a list, not {}", node.kind_name()),
                );
                &[]
            }
        }
    }

    pub fn strings(&mut self, node: &Node, what: &str) -> Vec<Spanned<String>> {
        let items = self.list(node, what);
        items.iter().filter_map(|n| self.string(n, what)).collect()
    }

    /// A mapping of strings, in file order.
    pub fn string_map(&mut self, node: &Node, what: &str) -> Vec<(String, String)> {
        if node.is_null() {
            return Vec::new();
        }
        let Some(map) = node.as_map() else {
            self.error(
                code::WRONG_TYPE,
                node.pos,
                format!("{what} must be a mapping of strings, not {}", node.kind_name()),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in map {
            if let Some(v) = self.string(&e.value, &format!("`{}` of {what}", e.key)) {
                out.push((e.key.clone(), v.value));
            } else if e.value.is_null() {
                out.push((e.key.clone(), String::new()));
            }
        }
        out
    }
}

fn describe(node: &Node) -> String {
    match node.as_scalar() {
        Some(s) => format!("`{}`", s.text),
        None => node.kind_name().to_string(),
    }
}
