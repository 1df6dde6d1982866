//! `mooring once`: one pass over the named objects (sources, for now),
//! in file order, then exit.

use std::path::Path;
use std::process::ExitCode;

use serde::Serialize;

use crate::config::{self, Kind};
use crate::source;

/// One line of `once --format json` output.
#[derive(Debug, Serialize)]
struct Outcome {
    kind: &'static str,
    name: String,
    /// `ok` or `failed`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

pub fn run(path: &Path, targets: &[(Kind, String)], json: bool) -> ExitCode {
    let loaded = match super::load_for_action(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let cfg = loaded.config;
    let mut selected = Vec::new();
    for (kind, name) in targets {
        if *kind != Kind::Source {
            eprintln!(
                "error: `mooring once` reconciles sources in this version; {kind}/{name} is not a source"
            );
            return ExitCode::from(2);
        }
        match cfg.source(name) {
            Some(s) => selected.push(s.clone()),
            None => {
                let names = cfg.names(Kind::Source);
                let hint = config::value::suggest(name, names.iter().copied())
                    .map(|s| format!(" (did you mean \"{s}\"?)"))
                    .unwrap_or_default();
                eprintln!(
                    "error: {} declares no source named \"{name}\"{hint}",
                    path.display()
                );
                return ExitCode::from(1);
            }
        }
    }
    if targets.is_empty() {
        selected = cfg.sources.clone();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let state_dir = cfg.agent.state_dir.clone();
    let mut outcomes = Vec::new();
    for src in &selected {
        let result = runtime.block_on(source::fetch(src, &state_dir));
        let name = src.name.value.clone();
        outcomes.push(match result {
            Ok(a) => Outcome {
                kind: "source",
                name,
                result: "ok",
                revision: Some(a.revision),
                artifact: Some(a.dir.display().to_string()),
                checksum: Some(a.checksum),
                reason: None,
                error: None,
            },
            Err(e) => Outcome {
                kind: "source",
                name,
                result: "failed",
                revision: None,
                artifact: None,
                checksum: None,
                reason: Some(e.reason()),
                error: Some(e.to_string()),
            },
        });
    }
    let failed = outcomes.iter().any(|o| o.result != "ok");
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcomes).unwrap_or_else(|_| "[]".into())
        );
    } else {
        for o in &outcomes {
            match (&o.revision, &o.artifact, &o.error) {
                (Some(rev), Some(dir), _) => println!("source/{}  {rev}  {dir}", o.name),
                (_, _, Some(err)) => println!("source/{}  failed: {err}", o.name),
                _ => {}
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
