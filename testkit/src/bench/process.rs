//! Running the tools a bench drives: `git` with a clean, fixed identity
//! and no user or system config, and the `mooring` binary under test.
//! Shared by the benches.

use std::path::{Path, PathBuf};

pub use crate::gitserver::git;

/// `$MOORING_BIN` (another build to measure), else the binary cargo built
/// with this bench, else a release build under `$CARGO_TARGET_DIR` or the
/// repository's `target/`; `None` if there is none.
pub fn find_binary() -> Option<PathBuf> {
    let exe = format!("mooring{}", std::env::consts::EXE_SUFFIX);
    let mut candidates: Vec<PathBuf> = Vec::new();
    candidates.extend(std::env::var_os("MOORING_BIN").map(PathBuf::from));
    candidates.extend(crate::support::built_binary());
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release").join(&exe));
    }
    candidates.push(crate::support::repo_root().join("target/release").join(&exe));
    candidates.into_iter().find(|p| p.is_file())
}

/// [`find_binary`], or a panic saying how to build one.
pub fn mooring_binary() -> PathBuf {
    find_binary().expect("no mooring binary: run `cargo build --release` or set MOORING_BIN")
}

/// The binary's path relative to the repository, when it is inside it.
pub fn display_bin(bin: &Path) -> String {
    bin.strip_prefix(crate::support::repo_root())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| bin.display().to_string())
}
