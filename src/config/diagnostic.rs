//! Config problems as data: a code, a severity, a message, a span in the
//! file, labels and help. Rendering (miette's graphical report, or JSON)
//! happens only at the edges: the CLI and the reload log.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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
    pub const INVALID_TEMPLATE: &str = "mooring::config::invalid-template";
    pub const INVALID_URL: &str = "mooring::config::invalid-url";
    pub const CONFLICTING_OPTIONS: &str = "mooring::config::conflicting-options";
    pub const DUPLICATE_NAME: &str = "mooring::config::duplicate-name";
    pub const UNKNOWN_REFERENCE: &str = "mooring::config::unknown-reference";
    pub const DEPENDENCY_CYCLE: &str = "mooring::config::dependency-cycle";
    pub const AUTOMATION_ON_OCI: &str = "mooring::config::automation-on-oci";
    pub const UNTIL_IN_PAST: &str = "mooring::config::until-in-past";
    pub const NOT_APPLICABLE: &str = "mooring::config::not-applicable";
}

/// Not a problem of its own: in JSON output, how many problems of one code
/// were found past the first [`MAX_PER_CODE`] and left out.
pub const OMITTED: &str = "mooring::config::omitted";

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

/// At most this many problems of one code are kept; the rest are counted.
pub const MAX_PER_CODE: usize = 50;

/// Every problem found in one file, with the text they point into.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub source: Arc<String>,
    /// The problems shown, in file order: at most [`MAX_PER_CODE`] of each
    /// code and severity.
    pub items: Vec<Diagnostic>,
    /// Problems found but not kept in `items`: (code, severity, how many).
    pub omitted: Vec<(&'static str, Severity, usize)>,
    lines: Arc<LineIndex>,
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
        // The first few of each kind say what is wrong; thousands more of
        // the same only cost time to build and to read.
        let mut seen: std::collections::HashMap<(&'static str, Severity), usize> =
            std::collections::HashMap::new();
        items.retain(|d| {
            let n = seen.entry((d.code, d.severity)).or_default();
            *n += 1;
            *n <= MAX_PER_CODE
        });
        let mut omitted: Vec<(&'static str, Severity, usize)> = seen
            .into_iter()
            .filter(|(_, n)| *n > MAX_PER_CODE)
            .map(|((code, severity), n)| (code, severity, n - MAX_PER_CODE))
            .collect();
        omitted.sort();
        let lines = Arc::new(LineIndex::new(&source));
        Diagnostics {
            file: file.to_path_buf(),
            source,
            items,
            omitted,
            lines,
        }
    }

    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }

    /// Every error found, shown or not.
    pub fn error_count(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Every warning found, shown or not.
    pub fn warning_count(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        let shown = self.items.iter().filter(|d| d.severity == severity).count();
        let omitted: usize = self
            .omitted
            .iter()
            .filter(|(_, s, _)| *s == severity)
            .map(|(_, _, n)| n)
            .sum();
        shown + omitted
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        self.lines.line_column(&self.source, offset)
    }

    /// One line per code of which problems were left out.
    fn omitted_lines(&self) -> impl Iterator<Item = String> + '_ {
        self.omitted.iter().map(|(code, severity, n)| {
            let kind = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            format!(
                "… and {n} more {code} {kind}{} not shown",
                if *n == 1 { "" } else { "s" }
            )
        })
    }

    pub fn to_json(&self) -> Vec<JsonDiagnostic> {
        let omitted = self
            .omitted
            .iter()
            .zip(self.omitted_lines())
            .map(|((_, severity, _), message)| JsonDiagnostic {
                severity: *severity,
                code: OMITTED,
                message,
                file: self.file.display().to_string(),
                line: 0,
                column: 0,
                offset: 0,
                length: 0,
                help: None,
            });
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
            .chain(omitted)
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
        let named = IndexedSource {
            name: self.file.display().to_string(),
            text: self.source.clone(),
            lines: self.lines.clone(),
        };
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
        for line in self.omitted_lines() {
            let _ = writeln!(out, "{line}");
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

/// Where each line of a text starts, counting line breaks as miette does
/// (`\n`, `\r\n`, and a lone `\r`), for line numbers in logarithmic time.
#[derive(Debug, Clone)]
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let bytes = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    starts.push(i + 2);
                    i += 2;
                    continue;
                }
                b'\r' | b'\n' => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { starts }
    }

    /// The 0-based line holding `offset`.
    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset).saturating_sub(1)
    }

    fn start(&self, line: usize, len: usize) -> usize {
        self.starts.get(line).copied().unwrap_or(len).min(len)
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn line_column(&self, text: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.line(offset);
        let start = self.start(line, text.len()).min(offset);
        (line + 1, text[start..offset].chars().count() + 1)
    }
}

/// The config text for miette, read through a window of the lines around
/// each span: what miette shows is the same, without scanning the file from
/// its start for every problem.
struct IndexedSource {
    name: String,
    text: Arc<String>,
    lines: Arc<LineIndex>,
}

impl miette::SourceCode for IndexedSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let bytes = self.text.as_bytes();
        let first = self
            .lines
            .line(span.offset())
            .saturating_sub(context_lines_before + 1);
        let last = self.lines.line(span.offset() + span.len()) + context_lines_after + 2;
        let (from, to) = (
            self.lines.start(first, bytes.len()),
            self.lines.start(last, bytes.len()),
        );
        let window = &bytes[from..to];
        let shifted = SourceSpan::new(span.offset().saturating_sub(from).into(), span.len());
        let inner = window.read_span(&shifted, context_lines_before, context_lines_after)?;
        let data = inner.data();
        let data_from = data.as_ptr() as usize - window.as_ptr() as usize;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            data,
            SourceSpan::new((from + data_from).into(), data.len()),
            first + inner.line(),
            inner.column(),
            first + inner.line_count(),
        )))
    }
}

struct Rendered<'a> {
    diag: &'a Diagnostic,
    source: &'a IndexedSource,
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
