//! Config problems as data: a code, a severity, a message, a span in the
//! file, labels and help. Rendering (miette's graphical report, or JSON)
//! happens only at the edges: the CLI and the reload log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// Stable diagnostic codes. They are part of the CLI contract
/// (`validate --format json`) and documented in docs/config.md.
pub mod code {
    pub const SYNTAX: &str = "mooring::config::syntax";
    pub const KDL_V1: &str = "mooring::config::kdl-v1";
    pub const UNKNOWN_NODE: &str = "mooring::config::unknown-node";
    pub const UNKNOWN_PROPERTY: &str = "mooring::config::unknown-property";
    pub const DUPLICATE_NODE: &str = "mooring::config::duplicate-node";
    pub const DUPLICATE_PROPERTY: &str = "mooring::config::duplicate-property";
    pub const UNEXPECTED_ARGUMENT: &str = "mooring::config::unexpected-argument";
    pub const UNEXPECTED_CHILDREN: &str = "mooring::config::unexpected-children";
    pub const MISSING_VALUE: &str = "mooring::config::missing-value";
    pub const WRONG_TYPE: &str = "mooring::config::wrong-type";
    pub const INVALID_VALUE: &str = "mooring::config::invalid-value";
    pub const INVALID_NAME: &str = "mooring::config::invalid-name";
    pub const INVALID_DURATION: &str = "mooring::config::invalid-duration";
    pub const INVALID_TIMESTAMP: &str = "mooring::config::invalid-timestamp";
    pub const INVALID_REGEX: &str = "mooring::config::invalid-regex";
    pub const INVALID_SEMVER: &str = "mooring::config::invalid-semver";
    pub const INVALID_URL: &str = "mooring::config::invalid-url";
    pub const CONFLICTING_OPTIONS: &str = "mooring::config::conflicting-options";
    pub const DUPLICATE_NAME: &str = "mooring::config::duplicate-name";
    pub const UNKNOWN_REFERENCE: &str = "mooring::config::unknown-reference";
    pub const DEPENDENCY_CYCLE: &str = "mooring::config::dependency-cycle";
    pub const AUTOMATION_ON_OCI: &str = "mooring::config::automation-on-oci";
    pub const UNTIL_IN_PAST: &str = "mooring::config::until-in-past";
    pub const NOT_APPLICABLE: &str = "mooring::config::not-applicable";
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub span: SourceSpan,
    pub label: String,
    pub help: Option<String>,
    /// Further places that explain the problem ("first defined here").
    pub related: Vec<(SourceSpan, String)>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: SourceSpan, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
            related: Vec::new(),
        }
    }

    pub fn warning(code: &'static str, span: SourceSpan, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    pub fn related(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Every problem found in one file, with the text they point into.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub source: Arc<String>,
    pub items: Vec<Diagnostic>,
}

/// The stable JSON shape of `mooring validate --format json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct JsonDiagnostic {
    pub severity: Severity,
    pub code: &'static str,
    pub message: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub length: usize,
    pub help: Option<String>,
}

impl Diagnostics {
    pub fn new(file: &Path, source: Arc<String>, mut items: Vec<Diagnostic>) -> Self {
        // File order, errors before warnings at the same place.
        items.sort_by_key(|d| (d.span.offset(), d.severity));
        Diagnostics {
            file: file.to_path_buf(),
            source,
            items,
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        line_column(&self.source, offset)
    }

    pub fn to_json(&self) -> Vec<JsonDiagnostic> {
        self.items
            .iter()
            .map(|d| {
                let (line, column) = self.line_column(d.span.offset());
                JsonDiagnostic {
                    severity: d.severity,
                    code: d.code,
                    message: d.message.clone(),
                    file: self.file.display().to_string(),
                    line,
                    column,
                    offset: d.span.offset(),
                    length: d.span.len(),
                    help: d.help.clone(),
                }
            })
            .collect()
    }

    /// rustc-style text: each problem with the lines it points at, then a
    /// one-line summary. `width` wraps long messages.
    pub fn render(&self, color: bool, width: usize) -> String {
        let theme = if color {
            GraphicalTheme::unicode()
        } else {
            GraphicalTheme::unicode_nocolor()
        };
        let handler = GraphicalReportHandler::new_themed(theme)
            .with_width(width)
            .with_links(false);
        let named = NamedSource::new(self.file.display().to_string(), self.source.clone());
        let mut out = String::new();
        for item in &self.items {
            let report = Rendered {
                diag: item,
                source: &named,
            };
            // Writing into a String cannot fail.
            let _ = handler.render_report(&mut out, &report);
            out.push('\n');
        }
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    pub fn summary(&self) -> String {
        let errors = self.error_count();
        let warnings = self.warning_count();
        let plural = |n: usize, word: &str| {
            if n == 1 {
                format!("1 {word}")
            } else {
                format!("{n} {word}s")
            }
        };
        let file = self.file.display();
        match (errors, warnings) {
            (0, 0) => format!("{file}: valid"),
            (0, w) => format!("{file}: valid, with {}", plural(w, "warning")),
            (e, 0) => format!("{file}: invalid, {}", plural(e, "error")),
            (e, w) => format!(
                "{file}: invalid, {} and {}",
                plural(e, "error"),
                plural(w, "warning")
            ),
        }
    }
}

pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(source, offset.min(source.len()));
    let before = &source[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: &'a NamedSource<Arc<String>>,
}

impl std::fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.diag.fmt(f)
    }
}

impl std::fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diag.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.diag.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.diag
            .help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let label = (!self.diag.label.is_empty()).then(|| self.diag.label.clone());
        let primary = LabeledSpan::new_primary_with_span(label, self.diag.span);
        let related = self
            .diag
            .related
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        let src = "a é\nbcd é x";
        assert_eq!(line_column(src, 0), (1, 1));
        assert_eq!(line_column(src, 5), (2, 1));
        let x = src.rfind('x').unwrap();
        assert_eq!(line_column(src, x), (2, 7));
        // Past the end, or inside a character: clamp, never panic.
        assert_eq!(line_column(src, 1000), (2, 8));
        assert_eq!(line_column(src, 3), (1, 3));
    }
}
