//! `mooring images`: scan every image policy (or the named ones) now and
//! print each pick; exit 0 when every scan succeeded, 1 when one failed.
//! The picks are kept in the state dir as the agent's scans are.

use super::Exit;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{self, Kind};
use crate::image::{self, Scan};
use crate::reason::Classify as _;

/// One element of `images --format json` output (docs/images.md).
#[derive(Debug, Serialize)]
struct Outcome {
    kind: Kind,
    name: String,
    /// `ok` or `failed`.
    result: &'static str,
    repository: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    considered: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<Vec<Skipped>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    /// Seconds the registry asked to wait (a 429's `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
    /// After a failure: the pick of the last good scan, still in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    last: Option<image::Selection>,
}

#[derive(Debug, Serialize)]
struct Skipped {
    tag: String,
    why: String,
}

impl Outcome {
    fn of(img: &config::Image, result: Result<Scan, image::Error>, state_dir: &Path) -> Outcome {
        let base = Outcome {
            kind: Kind::Image,
            name: img.name.value.clone(),
            result: "ok",
            repository: img.repository.clone(),
            tag: None,
            digest: None,
            considered: None,
            skipped: None,
            error: None,
            reason: None,
            retry_after: None,
            last: None,
        };
        match result {
            Ok(scan) => Outcome {
                tag: Some(scan.selection.tag),
                digest: scan.selection.digest,
                considered: Some(scan.considered),
                skipped: Some(
                    scan.skipped
                        .into_iter()
                        .map(|(tag, why)| Skipped { tag, why })
                        .collect(),
                ),
                ..base
            },
            Err(e) => Outcome {
                result: "failed",
                error: Some(e.to_string()),
                reason: Some(e.reason().as_str()),
                retry_after: e.retry_after().map(|d| d.as_secs()),
                last: image::last(img, state_dir),
                ..base
            },
        }
    }

    fn text(&self) -> String {
        let what = format!("image/{}", self.name);
        match (&self.tag, &self.error) {
            (Some(tag), _) => {
                let digest = self
                    .digest
                    .as_deref()
                    .map(|d| format!("@{d}"))
                    .unwrap_or_default();
                let considered = self.considered.unwrap_or(0);
                let skipped = self.skipped.as_ref().map_or(0, Vec::len);
                format!(
                    "{what}  {}:{tag}{digest}  ({considered} tags considered, {skipped} skipped)",
                    self.repository
                )
            }
            (None, error) => format!("{what}  failed: {}", error.as_deref().unwrap_or("unknown error")),
        }
    }
}

pub fn run(path: &Path, targets: &[(Kind, String)], json: bool, digest: bool) -> Exit {
    let loaded = match super::load_for_action(path) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let cfg = loaded.config;
    let mut chosen: Vec<&config::Image> = Vec::new();
    for (kind, name) in targets {
        if *kind != Kind::Image {
            eprintln!("error: `mooring images` scans image policies: use image/NAME, not {kind}/{name}");
            return Exit::Error;
        }
        let Some(img) = cfg.image(name) else {
            let hint = config::value::suggest(name, cfg.names(Kind::Image))
                .map(|s| format!(" (did you mean \"{s}\"?)"))
                .unwrap_or_default();
            eprintln!(
                "error: {} declares no image named \"{name}\"{hint}",
                path.display()
            );
            return Exit::Failure;
        };
        if !chosen.iter().any(|c| c.name.value == *name) {
            chosen.push(img);
        }
    }
    if targets.is_empty() {
        chosen = cfg.images.iter().collect();
    }
    let _log = super::log::init(&cfg.agent);
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let state_dir = cfg.agent.state_dir.clone();
    let concurrency = cfg.agent.concurrency.max(1) as usize;
    let results = runtime.block_on(scan_all(&chosen, &state_dir, digest, concurrency));
    let outcomes: Vec<Outcome> = chosen
        .iter()
        .zip(results)
        .map(|(img, result)| {
            if let Ok(scan) = &result {
                for (tag, why) in &scan.skipped {
                    tracing::debug!(image = img.name.as_str(), "skipped tag \"{tag}\": {why}");
                }
            }
            Outcome::of(img, result, &state_dir)
        })
        .collect();
    let failed = outcomes.iter().any(|o| o.result == "failed");
    if json {
        super::print_json_list(&outcomes);
    } else {
        for o in &outcomes {
            println!("{}", o.text());
        }
    }
    if failed { Exit::Failure } else { Exit::Success }
}

/// Scan `images`, at most `concurrency` at a time; results in their order.
async fn scan_all(
    images: &[&config::Image],
    state_dir: &Path,
    digest: bool,
    concurrency: usize,
) -> Vec<Result<Scan, image::Error>> {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, img) in images.iter().enumerate() {
        let (img, state_dir, permits) = ((*img).clone(), state_dir.to_path_buf(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            (i, image::scan(&img, &state_dir, digest).await)
        });
    }
    let mut results: Vec<Option<Result<Scan, image::Error>>> = images.iter().map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, result)) = joined
            && let Some(slot) = results.get_mut(i)
        {
            *slot = Some(result);
        }
    }
    images
        .iter()
        .zip(results)
        .map(|(img, r)| {
            r.unwrap_or_else(|| {
                Err(image::Error::Protocol {
                    repository: img.repository.clone(),
                    reason: "the scan task failed".into(),
                })
            })
        })
        .collect()
}
