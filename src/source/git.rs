//! Git sources through gix: a bare cache per source, incremental fetch,
//! the tree at the chosen revision exported into an artifact.

use std::path::Path;

use super::{Artifact, Error, Store};
use crate::config;

/// Fetch `source` (a git source) and export its tree at the selected
/// revision into `store`.
pub fn fetch(source: &config::Source, state_dir: &Path, store: &Store) -> Result<Artifact, Error> {
    let _ = (source, state_dir, store);
    Err(Error::Protocol {
        url: super::redact(source.kind.url()),
        reason: "git fetch is being written".into(),
    })
}
