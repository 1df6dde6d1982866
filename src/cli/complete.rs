//! Shell completions: the registration script `mooring completions SHELL`
//! prints, and the candidates for `KIND/NAME` arguments, read from the
//! config that `-c` would default to ($MOORING_CONFIG, ./mooring.kdl,
//! /etc/mooring/mooring.kdl). A config that does not load completes
//! nothing rather than printing errors into the shell.

use super::Exit;
use std::ffi::OsStr;

use clap_complete::engine::CompletionCandidate;
use clap_complete::env::EnvCompleter as _;

use crate::config::{self, Kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The script that hooks mooring into `shell`'s completion: it calls
/// `COMPLETE=SHELL mooring -- WORDS…` for every completion.
pub fn registration(shell: Shell) -> Exit {
    let mut out = std::io::stdout().lock();
    let written =
        match shell {
            Shell::Bash => clap_complete::env::Bash
                .write_registration("COMPLETE", "mooring", "mooring", "mooring", &mut out),
            Shell::Zsh => clap_complete::env::Zsh
                .write_registration("COMPLETE", "mooring", "mooring", "mooring", &mut out),
            Shell::Fish => clap_complete::env::Fish
                .write_registration("COMPLETE", "mooring", "mooring", "mooring", &mut out),
        };
    if written.is_ok() {
        Exit::Success
    } else {
        Exit::Error
    }
}

fn candidates(current: &OsStr, kinds: &[Kind]) -> Vec<CompletionCandidate> {
    let Some(current) = current.to_str() else {
        return Vec::new();
    };
    let Ok(loaded) = config::load(&config::resolve_path(None)) else {
        return Vec::new();
    };
    loaded
        .config
        .keys()
        .filter(|k| kinds.contains(&k.kind))
        .map(|k| k.to_string())
        .filter(|k| k.starts_with(current))
        .map(CompletionCandidate::new)
        .collect()
}

pub fn any(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, &Kind::ALL)
}

pub fn apps(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, &[Kind::App])
}

pub fn images(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, &[Kind::Image])
}
