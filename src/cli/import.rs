//! `mooring import flux PATH… [-o FILE]`: a Flux repository's objects as
//! mooring config, on stdout or in a file; notes on stderr; the output is
//! validated before it is written.

use super::Exit;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use crate::config;
use crate::import::flux;

pub fn flux(paths: &[PathBuf], output: Option<&Path>) -> Exit {
    let Some(root) = root(paths) else {
        eprintln!("error: cannot read the current directory");
        return Exit::Error;
    };
    let mut rel = Vec::new();
    for p in paths {
        let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let Ok(under) = abs.strip_prefix(&root) else {
            eprintln!(
                "error: {} is outside {}, the git work tree of the first path",
                p.display(),
                root.display()
            );
            eprintln!("  help: import paths of one repository at a time");
            return Exit::Error;
        };
        let s = under.to_string_lossy();
        rel.push(if s.is_empty() { ".".into() } else { s.into_owned() });
    }
    let import = match flux::flux(&root, &rel) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failure;
        }
    };
    for n in &import.notes {
        eprintln!("note: {n}");
    }
    let shown = output.unwrap_or(Path::new("imported.kdl"));
    let (_, diagnostics) = config::check(shown, import.config.clone(), jiff::Timestamp::now());
    let valid = !diagnostics.has_errors();
    if !diagnostics.items.is_empty() {
        eprint!("{}", super::render(&diagnostics, std::io::stderr().is_terminal()));
    }
    if !valid {
        eprintln!("error: the imported config does not validate; it is written all the same, fix it by hand");
    }
    let written = match output {
        Some(path) => crate::atomic::write(path, import.config.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::stdout()
            .lock()
            .write_all(import.config.as_bytes())
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = written {
        eprintln!("error: cannot write the config: {e}");
        return Exit::Error;
    }
    if valid { Exit::Success } else { Exit::Failure }
}

/// The git work tree holding the first path, else the current directory.
fn root(paths: &[PathBuf]) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let first = paths.first().map_or(cwd.clone(), |p| cwd.join(p));
    let mut dir = if first.is_dir() {
        first.clone()
    } else {
        first.parent()?.to_path_buf()
    };
    loop {
        if dir.join(".git").exists() {
            return Some(dir);
        }
        if !dir.pop() {
            return Some(cwd);
        }
    }
}
