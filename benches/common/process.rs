//! Running the tools a bench drives: `git` with a clean, fixed identity
//! and no user or system config, and the `mooring` binary under test.
//! Shared by the benches through `#[path]`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `git ARGS…` in `dir`, isolated from the machine's and the user's config.
pub fn git(home: &Path, dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `$MOORING_BIN`, else the binary cargo built with this bench.
pub fn mooring_binary() -> PathBuf {
    let bin = std::env::var_os("MOORING_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_mooring")));
    assert!(bin.is_file(), "no mooring binary at {}", bin.display());
    bin
}
