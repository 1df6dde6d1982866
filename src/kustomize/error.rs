//! Build errors as data: what is wrong, where (a file of the build and,
//! when it is YAML that is wrong, the span in it) and how to fix it. The
//! CLI renders them as miette diagnostics through [`Error::diagnostics`];
//! everything else uses the one-line `Display`.

use std::fmt;
use std::sync::Arc;

use miette::SourceSpan;

use super::yaml::Pos;
use crate::config::{Diagnostic, Diagnostics};

/// Stable codes of build errors.
pub mod code {
    pub const YAML: &str = "mooring::kustomize::yaml";
    pub const UNKNOWN_FIELD: &str = "mooring::kustomize::unknown-field";
    pub const WRONG_TYPE: &str = "mooring::kustomize::wrong-type";
    pub const INVALID: &str = "mooring::kustomize::invalid";
    pub const REFUSED: &str = "mooring::kustomize::refused";
    pub const OUTSIDE_ROOT: &str = "mooring::kustomize::outside-root";
    pub const NOT_FOUND: &str = "mooring::kustomize::not-found";
    pub const CONFLICT: &str = "mooring::kustomize::conflict";
    pub const NO_TARGET: &str = "mooring::kustomize::no-target";
    pub const CYCLE: &str = "mooring::kustomize::cycle";
    pub const TOO_LARGE: &str = "mooring::kustomize::too-large";
    pub const IO: &str = "mooring::kustomize::io";
}

/// A file of the build, with its text for pointing into it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Relative to the build's root, `/`-separated.
    pub file: String,
    pub text: Arc<String>,
}

impl Source {
    /// The byte offset of a position.
    pub fn offset(&self, pos: Pos) -> usize {
        let mut offset = 0;
        for (line, l) in (1..).zip(self.text.split_inclusive('\n')) {
            if line == pos.line as usize {
                let col = (pos.col.max(1) - 1) as usize;
                return offset
                    + l.char_indices()
                        .nth(col)
                        .map_or(l.trim_end_matches('\n').len(), |(i, _)| i);
            }
            offset += l.len();
        }
        self.text.len()
    }

    /// The span of the token at `pos`: to the end of its word.
    pub fn span(&self, pos: Pos) -> SourceSpan {
        let start = self.offset(pos);
        let rest = &self.text[start.min(self.text.len())..];
        let len = rest.find(['\n', ':', ',', '}', ']', '#']).unwrap_or(rest.len());
        let len = rest[..len].trim_end().len().max(1).min(rest.len());
        SourceSpan::new(start.into(), len)
    }
}

/// A build error (boxed: errors are rare, results are everywhere).
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub code: &'static str,
    pub message: String,
    pub help: Option<String>,
    /// The file the problem is in (relative to the root), if any.
    pub file: Option<String>,
    /// Where in that file, with its text.
    pub at: Option<(Arc<String>, Pos)>,
    /// What the build was doing, outermost first ("in base/kustomization.yaml").
    pub context: Vec<String>,
    /// Further problems found at the same time (in the same file).
    pub more: Vec<Error>,
}

impl std::ops::Deref for Error {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.0
    }
}

impl Error {
    pub fn new(code: &'static str, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            code,
            message: message.into(),
            help: None,
            file: None,
            at: None,
            context: Vec::new(),
            more: Vec::new(),
        }))
    }

    /// A problem at a place of a file.
    pub fn at(code: &'static str, src: &Source, pos: Pos, message: impl Into<String>) -> Error {
        let mut e = Error::new(code, message);
        e.file = Some(src.file.clone());
        e.at = (pos.line > 0).then(|| (src.text.clone(), pos));
        e
    }

    /// A problem with a whole file.
    pub fn in_file(code: &'static str, file: &str, message: impl Into<String>) -> Error {
        let mut e = Error::new(code, message);
        e.file = Some(file.to_string());
        e
    }

    /// Name the file when the error does not name one yet.
    pub fn in_file_if_none(mut self, file: &str) -> Error {
        if self.file.is_none() {
            self.file = Some(file.to_string());
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Error {
        self.help = Some(help.into());
        self
    }

    /// Adds what the build was doing when this happened.
    pub fn context(mut self, what: impl Into<String>) -> Error {
        self.context.insert(0, what.into());
        self
    }

    /// This problem and the ones found with it.
    pub fn all(&self) -> impl Iterator<Item = &Error> {
        std::iter::once(self).chain(self.more.iter())
    }

    /// As diagnostics of its file, for rendering; `None` when the error has
    /// no place to point at. `path` maps a file of the build to the path
    /// shown.
    pub fn diagnostics(&self, path: impl Fn(&str) -> std::path::PathBuf) -> Option<Diagnostics> {
        let (text, _) = self.at.as_ref()?;
        let file = self.file.as_deref()?;
        let src = Source {
            file: file.to_string(),
            text: text.clone(),
        };
        let mut items = Vec::new();
        for e in self.all() {
            let Some((_, pos)) = &e.at else { continue };
            if e.file.as_deref() != Some(file) {
                continue;
            }
            let mut message = e.message.clone();
            for c in e.context.iter().rev() {
                message = format!("{message} ({c})");
            }
            items.push(Diagnostic::error(e.code, src.span(*pos), message).with_help(e.help.clone()));
        }
        Some(Diagnostics::new(&path(file), text.clone(), items))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, &self.at) {
            (Some(file), Some((_, pos))) => write!(f, "{file}:{}:{}: ", pos.line, pos.col)?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        f.write_str(&self.message)?;
        for c in self.context.iter().rev() {
            write!(f, " ({c})")?;
        }
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        for e in &self.more {
            write!(f, "\n{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl crate::reason::Classify for Error {
    fn reason(&self) -> crate::reason::Reason {
        crate::reason::Reason::RenderFailed
    }

    fn retryable(&self) -> bool {
        self.code == code::IO
    }
}
