//! Helm charts, rendered natively: what `helm template` does, without the
//! `helm` binary. [`Chart::load`] reads a chart directory or `.tgz`
//! archive (with its subcharts), [`render()`] merges values and renders
//! with given capabilities into documents, NOTES and errors, and
//! [`Rendered::output`] prints them as `helm template` does.
//!
//! The parts: a Go `text/template` engine ([`template`]) with Go's value
//! printing ([`gofmt`]), Sprig's and Helm's functions ([`funcs`]), YAML,
//! JSON and TOML as Go's libraries read and write them ([`yaml`],
//! [`json`], [`toml`]), Helm's value merging ([`values`], [`strvals`]),
//! JSON Schema validation ([`schema`]) and manifest sorting
//! ([`manifest`]).
//!
//! Charts are hostile input: loading caps sizes and confines paths
//! ([`chart`]); rendering bounds template nesting, `include` recursion,
//! `tpl` nesting, the output size and the sizes of strings and lists
//! functions build; nothing reaches the network (`lookup` is empty,
//! `getHostByName` too, and a schema `$ref` to a URL is an error).

pub mod caps;
pub mod chart;
pub mod funcs;
pub mod glob;
pub mod gofmt;
pub mod ignore;
pub mod json;
pub mod manifest;
pub mod render;
pub mod schema;
pub mod semver;
pub mod strvals;
pub mod template;
pub mod toml;
pub mod value;
pub mod values;
pub mod yaml;

pub use caps::{Capabilities, KubeVersion};
pub use chart::Chart;
pub use render::{Layer, LayerKind, Options, Rendered, render};

/// A hash map with a fast hasher, seeded per map (names in templates are
/// chart input: no fixed seed to collide against).
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Where in a template an error is.
#[derive(Debug, Clone)]
pub struct Snippet {
    /// The template (`chart/templates/x.yaml`).
    pub file: String,
    /// Its text, named.
    pub source: miette::NamedSource<String>,
    pub offset: usize,
    pub line: usize,
    /// Go's column: the byte offset in the line.
    pub column: usize,
}

impl Snippet {
    /// The start of a line.
    pub fn at_line(file: &str, text: &str, line: usize) -> Snippet {
        let offset = text
            .split_inclusive('\n')
            .take(line.saturating_sub(1))
            .map(str::len)
            .sum::<usize>()
            .min(text.len());
        Snippet {
            file: file.to_string(),
            source: miette::NamedSource::new(file, text.to_string()),
            offset,
            line,
            column: 0,
        }
    }
}

/// A rendered document that is not YAML Helm can read.
#[derive(Debug, Clone)]
pub struct YamlError {
    pub file: String,
    pub message: String,
    /// The 1-based line in the document, when known.
    pub line: usize,
    /// The document, named after its template.
    pub content: miette::NamedSource<String>,
}

/// Why a chart did not render. The messages are Helm's.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Chart(String),
    #[error("{0}")]
    Values(String),
    #[error(
        "An error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: {}",
        missing.join(", ")
    )]
    MissingDependencies { missing: Vec<String> },
    #[error("values don't meet the specifications of the schema(s) in the following chart(s):\n{0}")]
    Schema(String),
    #[error("chart requires kubeVersion: {constraint} which is incompatible with Kubernetes {version}")]
    KubeVersion { constraint: String, version: String },
    #[error("{message}")]
    Template {
        message: String,
        snippet: Option<Box<Snippet>>,
        /// A `fail` or `required` in the chart.
        fail: bool,
    },
    #[error("YAML parse error on {}: {}", .0.file, .0.message)]
    Yaml(Box<YamlError>),
    #[error("{0}")]
    Other(String),
}

impl Error {
    fn code_name(&self) -> &'static str {
        match self {
            Error::Chart(_) => "mooring::helm::chart",
            Error::Values(_) => "mooring::helm::values",
            Error::MissingDependencies { .. } => "mooring::helm::missing-dependencies",
            Error::Schema(_) => "mooring::helm::schema",
            Error::KubeVersion { .. } => "mooring::helm::kube-version",
            Error::Template { fail: true, .. } => "mooring::helm::fail",
            Error::Template { .. } => "mooring::helm::template",
            Error::Yaml(_) => "mooring::helm::yaml",
            Error::Other(_) => "mooring::helm::internal",
        }
    }

    fn help_text(&self) -> Option<&'static str> {
        Some(match self {
            Error::Chart(_) => "check the chart's Chart.yaml and files",
            Error::Values(_) => "fix the values file or the --set argument named above",
            Error::MissingDependencies { .. } => {
                "put each dependency into the chart's charts/ directory (`helm dependency build`), or remove it from Chart.yaml"
            }
            Error::Schema(_) => "change the values named above to fit the chart's values.schema.json",
            Error::KubeVersion { .. } => "pass a --kube-version the chart supports",
            Error::Template { fail: true, .. } => {
                "the chart refused these values: its message above says what it needs"
            }
            Error::Template { .. } => "the template failed on these values; the position above is where",
            Error::Yaml(_) => "a template rendered a document that is not valid YAML for these values",
            Error::Other(_) => return None,
        })
    }
}

impl miette::Diagnostic for Error {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        Some(Box::new(self.code_name()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help_text()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        match self {
            Error::Template { snippet: Some(s), .. } => Some(&s.source as &dyn miette::SourceCode),
            Error::Yaml(y) if y.line > 0 => Some(&y.content as &dyn miette::SourceCode),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let (text, offset, label) = match self {
            Error::Template {
                snippet: Some(s),
                fail,
                ..
            } => (
                s.source.inner().as_str(),
                s.offset,
                if *fail { "failed here" } else { "here" },
            ),
            Error::Yaml(y) if y.line > 0 => {
                let text = y.content.inner().as_str();
                (text, Snippet::at_line("", text, y.line).offset, "here")
            }
            _ => return None,
        };
        let rest = &text[offset.min(text.len())..];
        let len = rest
            .find(|c: char| c.is_whitespace() || c == '}')
            .unwrap_or(rest.len())
            .max(1)
            .min(rest.len().max(1));
        let span = miette::LabeledSpan::at(offset..(offset + len).min(text.len().max(offset)), label);
        Some(Box::new(std::iter::once(span)))
    }
}
