//! In-place edits of a config file: `suspend` and `resume`.
//!
//! The file is parsed into the syntax tree to find nodes and entries; the
//! change is then spliced into the original text at those spans, so every
//! other byte (comments, blank lines, order, formatting) stays as it was. A new suspension is one line of its own, so
//! `resume` after `suspend` gives back the original file byte for byte.
//! The result is checked again before it replaces the file, atomically.

use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostics;
use super::model::Kind;
use super::schema::q;
use super::syntax::{self, Document, Node};
use super::value::suggest;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{} has errors; fix them first", diagnostics.file.display())]
    Invalid { diagnostics: Diagnostics },
    #[error("{} declares no {kind} named \"{name}\"{}", file.display(), suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default())]
    UnknownTarget {
        file: PathBuf,
        kind: Kind,
        name: String,
        suggestion: Option<String>,
    },
    #[error("cannot edit {}: {reason}", file.display())]
    Refused { file: PathBuf, reason: String },
    /// The edit would have produced an invalid file. A bug, never the user's.
    #[error("internal error: the edited file would not be valid; {} was left unchanged", diagnostics.file.display())]
    Produced { diagnostics: Diagnostics },
}

/// What to do to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Suspend {
        kind: Kind,
        name: String,
        reason: Option<String>,
        until: Option<jiff::Timestamp>,
    },
    Resume {
        kind: Kind,
        name: String,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The file was rewritten.
    Written(String),
    /// Nothing needed to change; the file was not touched.
    Unchanged(String),
    /// The change cannot be made to this text; the file was not touched.
    Refused(String),
}

/// Apply `change` to the config file at `path`.
pub fn edit_file(path: &Path, change: &Change, now: jiff::Timestamp) -> Result<Outcome, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (config, diagnostics) = super::check(path, text.clone(), now);
    let config = match config {
        Some(c) if !diagnostics.has_errors() => c,
        _ => return Err(Error::Invalid { diagnostics }),
    };
    let (kind, name) = match change {
        Change::Suspend { kind, name, .. } | Change::Resume { kind, name } => (*kind, name.as_str()),
    };
    let names = config.names(kind);
    if !names.contains(&name) {
        return Err(Error::UnknownTarget {
            file: path.to_path_buf(),
            kind,
            name: name.to_string(),
            suggestion: suggest(name, names.iter().copied()).map(str::to_string),
        });
    }
    let (new_text, outcome) = apply(&text, change);
    let Some(new_text) = new_text else {
        return match outcome {
            Outcome::Refused(reason) => Err(Error::Refused {
                file: path.to_path_buf(),
                reason,
            }),
            other => Ok(other),
        };
    };
    let (_, produced) = super::check(path, new_text.clone(), now);
    if produced.has_errors() {
        return Err(Error::Produced {
            diagnostics: produced,
        });
    }
    crate::atomic::write(path, new_text.as_bytes()).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(outcome)
}

/// The edited text (None when nothing changes) and what was done. `text`
/// must be a parseable config.
pub fn apply(text: &str, change: &Change) -> (Option<String>, Outcome) {
    let Ok(doc) = syntax::parse(text) else {
        return (None, Outcome::Refused("the file does not parse as KDL".into()));
    };
    match change {
        Change::Suspend {
            kind,
            name,
            reason,
            until,
        } => suspend(text, &doc, *kind, name, reason.as_deref(), *until),
        Change::Resume { kind, name } => resume(text, &doc, *kind, name),
    }
}

fn targets<'a>(doc: &'a Document, kind: Kind, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
    doc.nodes().iter().filter(move |n| {
        n.name().value() == "suspend"
            && n.entries().iter().any(|e| {
                e.name().is_some_and(|k| k.value() == kind.as_str()) && e.value().as_string() == Some(name)
            })
    })
}

fn format_until(t: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(t.as_second()).map_or_else(|_| t.to_string(), |s| s.to_string())
}

fn suspend(
    text: &str,
    doc: &Document,
    kind: Kind,
    name: &str,
    reason: Option<&str>,
    until: Option<jiff::Timestamp>,
) -> (Option<String>, Outcome) {
    let what = format!("{kind}/{name}");
    let until = until.map(format_until);
    let updates: Vec<(&str, String)> = [("reason", reason.map(q)), ("until", until.as_deref().map(q))]
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect();

    if let Some(node) = targets(doc, kind, name).next() {
        // Already suspended: change the given properties in place.
        let mut splices: Vec<(usize, usize, String)> = Vec::new();
        let end_of_entries = node
            .entries()
            .iter()
            .map(|e| e.span().offset() + e.span().len())
            .max()
            .unwrap_or(node.name().span().offset() + node.name().span().len());
        for (key, value) in &updates {
            let existing = node
                .entries()
                .iter()
                .rev()
                .find(|e| e.name().is_some_and(|k| k.value() == *key));
            match existing {
                Some(entry) => {
                    let span = entry.value_span();
                    if &text[span.offset()..span.offset() + span.len()] != value {
                        splices.push((span.offset(), span.len(), value.clone()));
                    }
                }
                None => splices.push((end_of_entries, 0, format!(" {key}={value}"))),
            }
        }
        if splices.is_empty() {
            return (None, Outcome::Unchanged(format!("{what} is already suspended")));
        }
        return (
            Some(splice(text, splices)),
            Outcome::Written(format!("{what} was already suspended; updated")),
        );
    }

    let mut line = format!("suspend {}={}", kind.as_str(), q(name));
    for (key, value) in &updates {
        line.push_str(&format!(" {key}={value}"));
    }
    // Keep the file's line endings.
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let at_end = if text.is_empty() {
        format!("{line}{nl}")
    } else if text.ends_with('\n') {
        format!("{text}{line}{nl}")
    } else {
        format!("{text}{nl}{line}")
    };
    let after_last = insertion_point(text, doc)
        .map(|(at, indent)| splice(text, vec![(at, 0, format!("{indent}{line}{nl}"))]));
    // The first placement that reads back as one more suspension of the
    // target. The end of a file can swallow a line (a trailing `\` line
    // continuation); the start of the file cannot.
    let before = targets(doc, kind, name).count();
    let new_text = after_last
        .into_iter()
        .chain([at_end, format!("{line}{nl}{text}")])
        .find(|candidate| {
            syntax::parse(candidate).is_ok_and(|d| {
                d.nodes().len() == doc.nodes().len() + 1 && targets(&d, kind, name).count() == before + 1
            })
        });
    match new_text {
        Some(t) => (Some(t), Outcome::Written(format!("suspended {what}"))),
        None => (
            None,
            Outcome::Refused(format!("found no place in the file for a suspension of {what}")),
        ),
    }
}

/// Just after the line of the last top-level `suspend` node, with its
/// indentation, if that line holds nothing else.
fn insertion_point<'a>(text: &'a str, doc: &Document) -> Option<(usize, &'a str)> {
    let last = doc.nodes().iter().rposition(|n| n.name().value() == "suspend")?;
    let (start, end) = own_line(text, doc, last)?;
    let node_start = doc.nodes()[last].span().offset();
    let indent = &text[start..node_start];
    // Only a node that ends with a newline can have a line inserted after it.
    if !text[..end].ends_with('\n') {
        return None;
    }
    Some((end, indent))
}

/// The byte range of the line(s) that node `i` occupies, if it shares them
/// with no other node. The range includes the final newline, if any.
fn own_line(text: &str, doc: &Document, i: usize) -> Option<(usize, usize)> {
    let nodes = doc.nodes();
    let span = nodes[i].span();
    let start = text[..span.offset()].rfind('\n').map_or(0, |p| p + 1);
    if !text[start..span.offset()].trim().is_empty() {
        return None;
    }
    let node_end = span.offset() + span.len();
    let end = text[node_end..]
        .find('\n')
        .map_or(text.len(), |p| node_end + p + 1);
    let next_starts_on_line = nodes.get(i + 1).is_some_and(|n| n.span().offset() < end);
    if next_starts_on_line {
        return None;
    }
    Some((start, end))
}

fn resume(text: &str, doc: &Document, kind: Kind, name: &str) -> (Option<String>, Outcome) {
    let what = format!("{kind}/{name}");
    let nodes = doc.nodes();
    let mut splices = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if !targets(doc, kind, name).any(|t| std::ptr::eq(t, node)) {
            continue;
        }
        match own_line(text, doc, i) {
            Some((start, end)) if end == text.len() && !text.ends_with('\n') && start > 0 => {
                // The last line, without a final newline: take the newline before it.
                let nl_len = if text[..start].ends_with("\r\n") { 2 } else { 1 };
                splices.push((start - nl_len, end - start + nl_len, String::new()));
            }
            Some((start, end)) => splices.push((start, end - start, String::new())),
            None => {
                // Shares a line with other nodes: remove just the node and its `;`.
                let span = node.span();
                let mut end = span.offset() + span.len();
                let rest = &text[end..];
                let ws = rest.len() - rest.trim_start_matches([' ', '\t']).len();
                if rest[ws..].starts_with(';') {
                    end += ws + 1;
                    let after = &text[end..];
                    end += after.len() - after.trim_start_matches([' ', '\t']).len();
                }
                splices.push((span.offset(), end - span.offset(), String::new()));
            }
        }
    }
    if splices.is_empty() {
        return (None, Outcome::Unchanged(format!("{what} is not suspended")));
    }
    (
        Some(splice(text, splices)),
        Outcome::Written(format!("resumed {what}")),
    )
}

/// Replace `(offset, len)` ranges with new text; ranges must not overlap.
fn splice(text: &str, mut splices: Vec<(usize, usize, String)>) -> String {
    splices.sort_by_key(|(at, _, _)| std::cmp::Reverse(*at));
    let mut out = text.to_string();
    for (at, len, with) in splices {
        out.replace_range(at..at + len, &with);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suspend_change(name: &str, reason: Option<&str>) -> Change {
        Change::Suspend {
            kind: Kind::App,
            name: name.into(),
            reason: reason.map(str::to_string),
            until: None,
        }
    }

    fn resume_change(name: &str) -> Change {
        Change::Resume {
            kind: Kind::App,
            name: name.into(),
        }
    }

    #[test]
    fn suspend_then_resume_is_identity() {
        for text in [
            "app \"a\" { source \"s\" }\n",
            "app \"a\" { source \"s\" }",
            "app \"a\" { source \"s\" }\n\n// trailing comment\n",
            "app \"a\" { source \"s\" }\nsuspend app=\"b\" // other\n/-suspend app=\"a\"\n",
            "  suspend app=\"b\"\n  app \"a\" { source \"s\" }\n",
            "app \"a\" {\r\n  source \"s\"\r\n}\r\n",
            "app \"a\" {\r\n  source \"s\"\r\n}",
        ] {
            let (Some(s), _) = apply(text, &suspend_change("a", Some("why"))) else {
                panic!("no edit for {text:?}");
            };
            assert!(s.contains("suspend app=\"a\" reason=\"why\""), "{s}");
            let (Some(r), _) = apply(&s, &resume_change("a")) else {
                panic!("no resume for {s:?}");
            };
            assert_eq!(r, text);
        }
    }

    #[test]
    fn suspend_goes_after_the_last_suspension_with_its_indent() {
        let text = "app \"a\" {}\n  suspend app=\"b\" // note\napp \"c\" {}\n";
        let (Some(s), _) = apply(text, &suspend_change("a", None)) else {
            panic!()
        };
        assert_eq!(
            s,
            "app \"a\" {}\n  suspend app=\"b\" // note\n  suspend app=\"a\"\napp \"c\" {}\n"
        );
    }

    #[test]
    fn suspending_again_updates_in_place() {
        let text = "suspend app=\"a\" reason=\"old\" // keep me\n";
        let (Some(s), out) = apply(text, &suspend_change("a", Some("new"))) else {
            panic!()
        };
        assert_eq!(s, "suspend app=\"a\" reason=\"new\" // keep me\n");
        assert!(matches!(out, Outcome::Written(_)));
        let (none, out) = apply(&s, &suspend_change("a", Some("new")));
        assert!(none.is_none());
        assert!(matches!(out, Outcome::Unchanged(_)));
        let (Some(s), _) = apply("suspend app=\"a\"\n", &suspend_change("a", Some("x y"))) else {
            panic!()
        };
        assert_eq!(s, "suspend app=\"a\" reason=\"x y\"\n");
    }

    #[test]
    fn resume_keeps_comments_above_and_handles_shared_lines() {
        let text = "// why we paused\nsuspend app=\"a\" reason=\"r\" // inline\nx 1\n";
        let (Some(r), _) = apply(text, &resume_change("a")) else {
            panic!()
        };
        assert_eq!(r, "// why we paused\nx 1\n");
        let text = "x 1; suspend app=\"a\"; y 2\n";
        let (Some(r), _) = apply(text, &resume_change("a")) else {
            panic!()
        };
        assert_eq!(r, "x 1; y 2\n");
        let (none, _) = apply("x 1\n", &resume_change("a"));
        assert!(none.is_none());
    }

    #[test]
    fn a_trailing_line_continuation_cannot_swallow_the_new_line() {
        let text = "app \"a\" { source \"s\"; } \\\n";
        let (Some(s), _) = apply(text, &suspend_change("a", None)) else {
            panic!()
        };
        assert_eq!(s, format!("suspend app=\"a\"\n{text}"));
        let (Some(r), _) = apply(&s, &resume_change("a")) else {
            panic!()
        };
        assert_eq!(r, text);
    }

    #[test]
    fn strings_are_escaped() {
        let (Some(s), _) = apply("", &suspend_change("a", Some("say \"hi\"\\\n"))) else {
            panic!()
        };
        let doc = syntax::parse(&s).unwrap();
        let reason = doc.nodes()[0]
            .entries()
            .iter()
            .find(|e| e.name().is_some_and(|k| k.value() == "reason"))
            .and_then(|e| e.value().as_string());
        assert_eq!(reason, Some("say \"hi\"\\\n"));
    }
}
