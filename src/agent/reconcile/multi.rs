//! An app on clusters: the same build applied to each cluster of its list
//! at once, each with its own inventory, prune and health, one failing not
//! stopping the others; then each cluster dropped from the list (as the
//! state directory's record says, [`crate::agent::placed`]) is left: with
//! `prune`, everything the app's inventory there lists is deleted, then
//! the inventory.
//!
//! The render reads each cluster when it depends on it (`substitute-from`
//! and `values-from` ConfigMaps and Secrets, a chart's capabilities): each
//! cluster gets its own render then, the faithful one since clusters may
//! differ; otherwise one render serves all.

use std::sync::Arc;
use std::time::Duration;

use super::{Done, Failure, applied, is_chart_app, render_app, render_inputs, timed_out};
use crate::agent::placed::{self, Placed};
use crate::agent::status::{ClusterStatus, State};
use crate::apply::cluster::{Cluster, Clusters};
use crate::apply::{self, Summary};
use crate::config::{self, Spanned};
use crate::reason::{Classify, Reason};
use crate::render::Manifest;
use crate::source::Artifact;

/// What became of one cluster in this run.
struct Outcome {
    status: ClusterStatus,
    failure: Option<Failure>,
    /// Said in the app's message, though not a failure.
    note: Option<String>,
}

pub async fn run(
    cfg: &config::Config,
    clusters: &Clusters,
    app: &config::App,
    artifact: &Artifact,
    values_artifacts: &[(String, Artifact)],
    names: &[Spanned<String>],
) -> (Vec<ClusterStatus>, Result<Done, Failure>) {
    let state_dir = &cfg.agent.state_dir;
    // Each listed cluster by its definition; no name: the default connection.
    let listed: Vec<(Option<String>, Option<&config::Cluster>)> = if names.is_empty() {
        vec![(None, None)]
    } else {
        names
            .iter()
            .filter_map(|n| cfg.cluster(n))
            .map(|def| (Some(def.name.value.clone()), Some(def)))
            .collect()
    };
    // Two names for one API server would apply to one inventory twice.
    let mut urls = Vec::new();
    for (_, def) in &listed {
        if let Ok(c) = clusters.get(*def).await {
            let name = def.map(|d| d.name.value.clone());
            if let Some((_, first)) = urls.iter().find(|(url, _)| url == c.url()) {
                let shown = |n: &Option<String>| n.clone().unwrap_or_else(|| "(default)".into());
                let message = format!(
                    "clusters \"{}\" and \"{}\" are the same API server ({}): list it once, or the app's objects and inventory there are applied twice",
                    shown(first),
                    shown(&name),
                    c.url()
                );
                return (Vec::new(), Err(Failure::permanent(Reason::ApplyFailed, message)));
            }
            urls.push((c.url().to_string(), name));
        }
    }
    // A cluster enters the record before anything is applied to it: a
    // crash mid-apply cannot leave objects no record leads back to.
    let mut record = match placed::load(state_dir, &app.name) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Err(Failure::from(e))),
    };
    let known = record.len();
    let before = record.clone();
    for (name, _) in &listed {
        if !record.iter().any(|p| &p.cluster == name) {
            record.push(Placed {
                cluster: name.clone(),
                revision: None,
            });
        }
    }
    if record.len() != known
        && let Err(e) = placed::save(state_dir, &app.name, &record)
    {
        return (Vec::new(), Err(Failure::from(e)));
    }

    // One render for all, unless it reads the cluster.
    let per_cluster = app.reads_cluster() || is_chart_app(cfg, app, artifact);
    let shared = if per_cluster {
        None
    } else {
        Some(match render_inputs(cfg, app, artifact, None).await {
            Ok(inputs) => render_app(cfg, app, artifact, values_artifacts, inputs).await,
            Err(f) => Err(f),
        })
    };
    // Each cluster's apply takes its own copy of the render; the last takes the render.
    let mut shared = shared;
    let runs = listed.iter().enumerate().map(|(i, (_, def))| {
        let render = if i + 1 == listed.len() {
            shared.take()
        } else {
            shared.clone()
        };
        to_cluster(cfg, clusters, app, artifact, values_artifacts, *def, render)
    });
    let results = futures_util::future::join_all(runs).await;

    let mut outcomes = Vec::new();
    let mut revision = None;
    let mut total = Summary::default();
    for ((name, _), result) in listed.iter().zip(results) {
        let last = record.iter_mut().find(|p| &p.cluster == name);
        let (status, failure) = match result {
            Ok((rev, summary)) => {
                if let Some(p) = last {
                    p.revision = Some(rev.clone());
                }
                add(&mut total, &summary);
                let status = ClusterStatus {
                    cluster: name.clone(),
                    state: State::Ready,
                    revision: Some(rev.clone()),
                    message: Some(format!("applied {rev}: {summary}")),
                    applied: Some(summary),
                    last_error: None,
                    dropped: false,
                };
                revision.get_or_insert(rev);
                (status, None)
            }
            Err(f) => {
                let status = ClusterStatus {
                    cluster: name.clone(),
                    state: if f.retryable {
                        State::Failed
                    } else {
                        State::Stalled
                    },
                    revision: last.and_then(|p| p.revision.clone()),
                    message: Some(f.message.clone()),
                    applied: None,
                    last_error: Some(f.message.clone()),
                    dropped: false,
                };
                (status, Some(f))
            }
        };
        outcomes.push(Outcome {
            status,
            failure,
            note: None,
        });
    }

    // The clusters dropped from the list.
    let dropped: Vec<Placed> = record
        .iter()
        .filter(|p| !listed.iter().any(|(n, _)| n == &p.cluster))
        .cloned()
        .collect();
    // Nothing is pruned while a listed cluster failed: a move whose new
    // cluster fails keeps the old one running.
    let listed_ok = outcomes.iter().all(|o| o.failure.is_none());
    for p in dropped {
        if !listed_ok {
            outcomes.push(Outcome {
                status: ClusterStatus {
                    cluster: p.cluster.clone(),
                    state: State::Waiting,
                    revision: p.revision.clone(),
                    message: Some(
                        "dropped from the list: left as it is until every listed cluster applies".into(),
                    ),
                    applied: None,
                    last_error: None,
                    dropped: true,
                },
                failure: None,
                note: None,
            });
            continue;
        }
        let (outcome, forget) = leave(cfg, clusters, app, &p, &urls).await;
        if forget {
            record.retain(|r| r.cluster != p.cluster);
        }
        if let Some(s) = &outcome.status.applied {
            add(&mut total, s);
        }
        outcomes.push(outcome);
    }
    // Written when it changed only: an idle pass writes nothing.
    if record != before
        && let Err(e) = placed::save(state_dir, &app.name, &record)
    {
        tracing::warn!("{e}");
    }

    // Said per cluster only when the app names clusters (or drops one).
    let several = outcomes.len() > 1;
    let statuses = if names.is_empty() && !several {
        Vec::new()
    } else {
        outcomes.iter().map(|o| o.status.clone()).collect()
    };
    let failures: Vec<(&ClusterStatus, &Failure)> = outcomes
        .iter()
        .filter_map(|o| Some((&o.status, o.failure.as_ref()?)))
        .collect();
    if !failures.is_empty() {
        let named = |s: &ClusterStatus, message: &str| {
            if several {
                format!("cluster \"{}\": {message}", s.shown())
            } else {
                message.to_string()
            }
        };
        // One failure of all (a render that reads no cluster) is said once.
        let first = failures[0].1;
        let message = if failures.len() > 1 && failures.iter().all(|(_, f)| f.message == first.message) {
            let names: Vec<String> = failures
                .iter()
                .map(|(s, _)| format!("\"{}\"", s.shown()))
                .collect();
            format!("clusters {}: {}", names.join(", "), first.message)
        } else {
            failures
                .iter()
                .map(|(s, f)| named(s, &f.message))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let failure = Failure {
            reason: first.reason,
            message,
            retryable: failures.iter().any(|(_, f)| f.retryable),
            retry_after: failures.iter().filter_map(|(_, f)| f.retry_after).max(),
        };
        return (statuses, Err(failure));
    }
    let Some(revision) = revision else {
        return (
            statuses,
            Err(Failure::permanent(Reason::Internal, "no cluster to apply to")),
        );
    };
    let notes: Vec<&str> = outcomes.iter().filter_map(|o| o.note.as_deref()).collect();
    let mut done = applied(revision.clone(), total);
    if several {
        let each: Vec<String> = outcomes
            .iter()
            .filter(|o| !o.status.dropped)
            .map(|o| match &o.status.applied {
                Some(s) => format!("{} ({s})", o.status.shown()),
                None => o.status.shown().to_string(),
            })
            .collect();
        done.message = format!("applied {revision} to {}", each.join(", "));
    }
    for note in notes {
        done.message.push_str("; ");
        done.message.push_str(note);
    }
    (statuses, Ok(done))
}

/// Render (unless `shared` is the render for all) and apply to one cluster.
async fn to_cluster(
    cfg: &config::Config,
    clusters: &Clusters,
    app: &config::App,
    artifact: &Artifact,
    values_artifacts: &[(String, Artifact)],
    def: Option<&config::Cluster>,
    shared: Option<Result<(String, Vec<Manifest>), Failure>>,
) -> Result<(String, Summary), Failure> {
    let cluster = clusters.get(def).await.map_err(|e| {
        let reason = if app.reads_cluster() {
            Reason::SubstituteFailed
        } else {
            Reason::ApplyFailed
        };
        Failure::permanent(reason, e.to_string())
    })?;
    let (revision, manifests) = match shared {
        Some(rendered) => rendered?,
        None => {
            let inputs = render_inputs(cfg, app, artifact, Some(&cluster)).await?;
            render_app(cfg, app, artifact, values_artifacts, inputs).await?
        }
    };
    let opts = apply::kube::Options::for_app(cfg, app, &revision);
    let budget = app.timeout + app.wait.as_ref().map_or(Duration::ZERO, |w| w.timeout);
    match tokio::time::timeout(budget, apply::kube::apply(&cluster, manifests, &opts)).await {
        Ok(result) => Ok((revision, result.map_err(Failure::from)?)),
        Err(_) => Err(timed_out(budget)),
    }
}

/// The app leaves the dropped cluster `p` (once every listed cluster has
/// applied): with `prune`, its objects and inventory there are deleted.
/// The flag: whether the record forgets it.
async fn leave(
    cfg: &config::Config,
    clusters: &Clusters,
    app: &config::App,
    p: &Placed,
    listed_urls: &[(String, Option<String>)],
) -> (Outcome, bool) {
    let name = p.cluster.as_deref().unwrap_or("(default)");
    let inventory = format!(
        "{}/{}",
        cfg.agent.inventory_namespace,
        apply::inventory::name(&app.name)
    );
    let status = |state: State, message: String| ClusterStatus {
        cluster: p.cluster.clone(),
        state,
        revision: p.revision.clone(),
        message: Some(message),
        applied: None,
        last_error: None,
        dropped: true,
    };
    let noted = |status: ClusterStatus, forget: bool| {
        let note = status.message.clone();
        (
            Outcome {
                status,
                failure: None,
                note,
            },
            forget,
        )
    };
    if !app.prune {
        let message = format!(
            "cluster \"{name}\" was dropped from the list: its objects and inventory {inventory} there are left (prune is off)"
        );
        tracing::warn!("{message}");
        return noted(status(State::Ready, message), true);
    }
    // A dropped name whose definition is gone cannot be reached.
    let def = match &p.cluster {
        None => None,
        Some(n) => match cfg.cluster(n) {
            Some(def) => Some(def),
            None => {
                let message = format!(
                    "cluster \"{name}\" was dropped from the list and is no longer defined: its objects and inventory {inventory} there are left; define it again to prune them"
                );
                tracing::warn!("{message}");
                return noted(status(State::Stalled, message), false);
            }
        },
    };
    let failed = |f: Failure| {
        let message = f.message.clone();
        tracing::warn!(cluster = name, "pruning the dropped cluster: {message}");
        let mut st = status(
            if f.retryable {
                State::Failed
            } else {
                State::Stalled
            },
            message.clone(),
        );
        st.last_error = Some(message);
        (
            Outcome {
                status: st,
                failure: Some(f),
                note: None,
            },
            false,
        )
    };
    let cluster: Arc<Cluster> = match clusters.get(def).await {
        Ok(c) => c,
        Err(e) => return failed(Failure::retry(Reason::PruneFailed, e.to_string())),
    };
    // Two names for one API server share the inventory: pruning one
    // would delete what the other holds.
    if let Some((_, other)) = listed_urls.iter().find(|(url, _)| url == cluster.url()) {
        let other = other.as_deref().unwrap_or("(default)");
        let message = format!(
            "cluster \"{name}\" was dropped from the list; it is the API server of cluster \"{other}\" ({}), which the app still applies to: nothing pruned",
            cluster.url()
        );
        tracing::info!("{message}");
        return noted(status(State::Ready, message), true);
    }
    let work = apply::kube::remove(&cluster, &app.name, &cfg.agent.inventory_namespace);
    match tokio::time::timeout(app.timeout, work).await {
        Ok(Ok(summary)) => {
            let message = format!(
                "cluster \"{name}\" was dropped from the list: pruned {} objects and inventory {inventory}",
                summary.pruned
            );
            tracing::info!("{message}");
            let mut st = status(State::Ready, message);
            st.applied = Some(summary);
            noted(st, true)
        }
        Ok(Err(e)) => failed(Failure {
            reason: Reason::PruneFailed,
            message: format!("pruning what the app left there: {e}"),
            retryable: true,
            retry_after: e.retry_after(),
        }),
        Err(_) => failed(timed_out(app.timeout)),
    }
}

fn add(total: &mut Summary, s: &Summary) {
    total.created += s.created;
    total.configured += s.configured;
    total.unchanged += s.unchanged;
    total.pruned += s.pruned;
    total.recreated.extend(s.recreated.iter().cloned());
}
