//! `mooring patch`: arrives in the next change.

use std::path::Path;
use std::process::ExitCode;

pub fn run(_dir: &Path, _sets: &[String], _dry_run: bool) -> ExitCode {
    eprintln!("error: `mooring patch` is not available in this build yet");
    ExitCode::from(2)
}
