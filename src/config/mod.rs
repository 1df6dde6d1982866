//! Configuration: takes the text of a `mooring.kdl` file and gives either a
//! typed, validated [`Config`] (plus warnings) or every problem in the file
//! as [`Diagnostics`]. Also edits the file in place (`suspend`/`resume`)
//! and describes the language as a schema.

pub mod diagnostic;
pub mod edit;
pub mod model;
pub mod parse;
pub mod schema;
pub mod validate;
pub mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use model::*;

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", diagnostics.summary())]
    Invalid { diagnostics: Diagnostics },
}

impl Error {
    /// A read error may go away (the file is being replaced); an invalid
    /// file stays invalid until someone edits it.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::Read { .. })
    }
}

/// A valid config and the warnings it came with.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Diagnostics,
}

/// Read and check the file at `path`.
pub fn load(path: &Path) -> Result<Loaded, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    from_str(path, text, jiff::Timestamp::now())
}

/// Check `text` as if read from `path` (used for messages only). `now`
/// decides whether suspensions have expired.
pub fn from_str(path: &Path, text: String, now: jiff::Timestamp) -> Result<Loaded, Error> {
    let (config, diagnostics) = check(path, text, now);
    match config {
        Some(config) if !diagnostics.has_errors() => Ok(Loaded {
            config,
            warnings: diagnostics,
        }),
        _ => Err(Error::Invalid { diagnostics }),
    }
}

/// Every problem in `text`, and the decoded config if the text was
/// syntactically KDL at all (it may still have errors).
pub fn check(path: &Path, text: String, now: jiff::Timestamp) -> (Option<Config>, Diagnostics) {
    let mut diags = Vec::new();
    let config = match parse::parse_kdl(&text) {
        Err(syntax) => {
            diags = syntax;
            None
        }
        Ok((doc, version)) => {
            if version == parse::KdlVersion::V1 {
                diags.push(parse::v1_warning(&text));
            }
            parse::check_shape(&doc, &mut diags);
            let cfg = parse::decode(&doc, &mut diags);
            diags.extend(validate::validate(&cfg, now));
            Some(cfg)
        }
    };
    (config, Diagnostics::new(path, Arc::new(text), diags))
}

/// The config file to use: `-c`, else `$MOORING_CONFIG`, else
/// `./mooring.kdl` if it exists, else `/etc/mooring/mooring.kdl`.
pub fn resolve_path(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("MOORING_CONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let local = PathBuf::from("mooring.kdl");
    if local.exists() {
        return local;
    }
    PathBuf::from("/etc/mooring/mooring.kdl")
}
