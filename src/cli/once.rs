//! `mooring once`: one pass over every object (or the named ones and what
//! they read), in dependency order, then exit: 0 when everything that ran
//! succeeded, 1 when something failed. Results go to stdout; stderr gets
//! warnings only, unless `-v` asks for the logs.

use super::Exit;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::agent::status::{ClusterStatus, ObjectStatus, State};
use crate::agent::{Agent, Mode};
use crate::apply::Summary;
use crate::config::diff::Key;
use crate::config::{self, Kind};

/// One element of `once --format json` output.
#[derive(Debug, Serialize)]
struct Outcome {
    kind: Kind,
    name: String,
    /// `ok`, `failed` or `suspended`.
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artifact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checksum: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<Summary>,
    /// Apps on named clusters: each cluster's outcome.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    clusters: Vec<ClusterStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Outcome {
    fn of(s: ObjectStatus) -> Outcome {
        let result = match s.state {
            State::Ready => "ok",
            State::Suspended => "suspended",
            _ => "failed",
        };
        let failed = result == "failed";
        Outcome {
            kind: s.kind,
            name: s.name,
            result,
            revision: s.revision,
            artifact: s.artifact.as_ref().map(|a| a.path.clone()),
            checksum: s.artifact.map(|a| a.checksum),
            applied: s.applied,
            clusters: s.clusters,
            message: s.message.clone(),
            reason: if failed || result == "suspended" {
                s.reason
            } else {
                None
            },
            error: if failed { s.last_error.or(s.message) } else { None },
        }
    }
}

pub fn run(path: &Path, targets: &[(Kind, String)], json: bool, verbose: u8) -> Exit {
    let loaded = match super::load_for_action(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let cfg = loaded.config;
    let mut keys = Vec::new();
    for (kind, name) in targets {
        let names = cfg.names(*kind);
        if !names.contains(&name.as_str()) {
            let hint = config::value::suggest(name, names.iter().copied())
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            eprintln!(
                "error: {} declares no {kind} named \"{name}\"{hint}",
                path.display()
            );
            return Exit::Failure;
        }
        keys.push(Key::new(*kind, name.as_str()));
    }
    super::state_dir_hint(&cfg.agent);
    let verbosity = match verbose {
        0 => super::log::Verbosity::Quiet,
        n => super::log::Verbosity::Verbose(n),
    };
    let _log = super::log::init_with(&cfg.agent, verbosity);
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let agent = Agent::new(path.to_path_buf(), cfg, Mode::Once);
    let outcomes: Vec<Outcome> = runtime.block_on(async {
        agent.start((!keys.is_empty()).then_some(keys.as_slice()));
        agent.join(Duration::MAX).await;
        agent.report().objects.into_iter().map(Outcome::of).collect()
    });
    let failed = outcomes.iter().any(|o| o.result == "failed");
    if json {
        super::print_json_list(&outcomes);
    } else {
        for o in &outcomes {
            let what = format!("{}/{}", o.kind, o.name);
            match o.result {
                "ok" => match (&o.kind, &o.revision, &o.artifact) {
                    (Kind::Source, Some(rev), Some(dir)) => println!("{what}  {rev}  {dir}"),
                    _ => println!("{what}  {}", o.message.as_deref().unwrap_or("ok")),
                },
                "suspended" => println!("{what}  suspended"),
                _ => println!(
                    "{what}  failed ({}): {}",
                    o.reason.as_deref().unwrap_or("Failed"),
                    o.error.as_deref().unwrap_or("unknown error")
                ),
            }
        }
    }
    if failed { Exit::Failure } else { Exit::Success }
}
