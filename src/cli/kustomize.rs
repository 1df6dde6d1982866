//! `mooring kustomize DIR`: build a kustomization and print it like
//! `kubectl kustomize DIR`; on failure, the diagnostics and exit 1.

use super::Exit;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use crate::kustomize;

pub fn run(dir: &Path) -> Exit {
    // Like kubectl, the build may reach anywhere on the filesystem (bases
    // in `../..`); its files are still read with every other rule.
    let root = Path::new("/");
    let abs = match std::path::absolute(dir) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", dir.display());
            return Exit::Error;
        }
    };
    let rel = abs
        .strip_prefix(root)
        .unwrap_or(&abs)
        .to_string_lossy()
        .into_owned();
    let cwd = std::env::current_dir().ok().and_then(|c| {
        c.strip_prefix(root)
            .ok()
            .map(|c| c.to_string_lossy().into_owned())
    });
    match kustomize::build_shown(root, &rel, cwd.as_deref()) {
        Ok(build) => {
            for w in &build.warnings {
                eprintln!("warning: {w}");
            }
            let mut out = std::io::stdout().lock();
            if out
                .write_all(kustomize::to_yaml(&build.objects).as_bytes())
                .is_err()
            {
                return Exit::Error;
            }
            Exit::Success
        }
        Err(e) => {
            report(&e);
            Exit::Failure
        }
    }
}

/// Show a file of the build relative to the working directory.
fn shown(file: &str) -> PathBuf {
    let abs = Path::new("/").join(file);
    let Ok(cwd) = std::env::current_dir() else {
        return abs;
    };
    let base: Vec<_> = cwd.components().collect();
    let target: Vec<_> = abs.components().collect();
    let common = base.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for c in &target[common..] {
        out.push(c);
    }
    out
}

fn report(e: &kustomize::Error) {
    let tty = std::io::stderr().is_terminal();
    match e.diagnostics(shown) {
        Some(d) => eprint!("{}", super::render(&d, tty)),
        None => {
            let mut msg = e.message.clone();
            for c in e.context.iter().rev() {
                msg = format!("{msg} ({c})");
            }
            match &e.file {
                Some(f) => eprintln!("error: {}: {msg}", shown(f).display()),
                None => eprintln!("error: {msg}"),
            }
            if let Some(h) = &e.help {
                eprintln!("  help: {h}");
            }
        }
    }
    for more in &e.more {
        if more.file != e.file {
            report(more);
        }
    }
}
