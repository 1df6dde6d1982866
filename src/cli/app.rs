//! `mooring render app/NAME` and `mooring diff app/NAME`: fetch the app's
//! source, render its manifests, and print them or what applying them would
//! change in the cluster.

use super::Exit;
use std::path::Path;

use crate::agent::reconcile;
use crate::apply;
use crate::config::{self, Config, Kind, Target};
use crate::render::{self, Manifest};
use crate::source;

/// Load the config, find the app, fetch its source and render it.
fn rendered(
    path: &Path,
    kind: Kind,
    name: &str,
) -> Result<(Config, config::App, String, Vec<Manifest>), Exit> {
    if kind != Kind::App {
        eprintln!("error: only apps are rendered; {kind}/{name} is not an app");
        return Err(Exit::Error);
    }
    let cfg = super::load_for_action(path)?.config;
    let Some(app) = cfg.app(name).cloned() else {
        let hint = config::value::suggest(name, cfg.names(Kind::App))
            .map(|s| format!(" (did you mean \"{s}\"?)"))
            .unwrap_or_default();
        eprintln!("error: {} declares no app named \"{name}\"{hint}", path.display());
        return Err(Exit::Failure);
    };
    let Some(src) = cfg.source(&app.source) else {
        eprintln!(
            "error: app \"{name}\" reads source \"{}\", which is not declared",
            app.source.value
        );
        return Err(Exit::Failure);
    };
    let runtime = super::runtime()?;
    let fetch = |src: &config::Source| {
        runtime
            .block_on(source::fetch(src, &cfg.agent.state_dir, &[]))
            .map_err(|e| {
                eprintln!("error: source/{}: {e}", src.name.value);
                Exit::Error
            })
    };
    let artifact = fetch(src)?;
    let mut values = Vec::new();
    for other in app.sources().into_iter().skip(1) {
        if let Some(s) = cfg.source(other) {
            values.push((other.to_string(), fetch(s)?));
        }
    }
    // A chart for a cluster renders with the cluster's capabilities, as it
    // is applied; without the cluster, with Helm's defaults, and says so.
    let capabilities = match &app.target {
        Target::Cluster(c) if reconcile::is_chart_app(&cfg, &app, &artifact) => {
            let def = c.as_ref().and_then(|n| cfg.cluster(n));
            let caps = runtime.block_on(async {
                let cluster = apply::cluster::Cluster::connect(def)
                    .await
                    .map_err(|e| e.to_string())?;
                cluster.capabilities().await.map_err(|e| apply::kube::message(&e))
            });
            match caps {
                Ok(caps) => Some(caps),
                Err(e) => {
                    eprintln!(
                        "note: app/{name}: rendering the chart with Helm's default capabilities: cannot ask the cluster: {e}"
                    );
                    None
                }
            }
        }
        _ => None,
    };
    let keys = render::keys_for(&app).map_err(|e| {
        eprintln!("error: app/{name}: {e}");
        Exit::Failure
    })?;
    let (vars, values_from) = runtime
        .block_on(async {
            let cluster = match &app.target {
                Target::Cluster(c) if app.reads_cluster() => {
                    let def = c.as_ref().and_then(|n| cfg.cluster(n));
                    Some(
                        apply::cluster::Cluster::connect(def)
                            .await
                            .map_err(|e| apply::vars::Error {
                                option: if app.helm.values_from.is_empty() {
                                    "substitute-from"
                                } else {
                                    "values-from"
                                },
                                source_name: "the cluster".into(),
                                message: e.to_string(),
                                retryable: true,
                            })?,
                    )
                }
                _ => None,
            };
            let vars = apply::vars::resolve(&app, &artifact.dir, cluster.as_ref(), keys.as_ref()).await?;
            let values_from = apply::vars::values(&app, cluster.as_ref()).await?;
            Ok::<_, apply::vars::Error>((vars, values_from))
        })
        .map_err(|e| {
            eprintln!("error: app/{name}: {e}");
            Exit::Failure
        })?;
    let (revision, manifests) = runtime
        .block_on(reconcile::render_app(
            &cfg,
            &app,
            &artifact,
            &values,
            reconcile::RenderInputs {
                capabilities,
                vars,
                keys,
                values_from,
            },
        ))
        .map_err(|e| {
            eprintln!("error: app/{name} at {}:\n{}", artifact.revision, e.message);
            // A chart that cannot be downloaded is a fetch failure, as a source's.
            if e.reason == crate::reason::Reason::FetchFailed {
                Exit::Error
            } else {
                Exit::Failure
            }
        })?;
    Ok((cfg, app, revision, manifests))
}

pub fn render(path: &Path, (kind, name): (Kind, String)) -> Exit {
    let (_, _, revision, manifests) = match rendered(path, kind, &name) {
        Ok(r) => r,
        Err(code) => return code,
    };
    println!("# app/{name} at {revision}: {} objects", manifests.len());
    for m in &manifests {
        println!("---\n# {}", m.position());
        print!("{}", m.text);
    }
    Exit::Success
}

pub fn diff(path: &Path, (kind, name): (Kind, String)) -> Exit {
    let (cfg, app, revision, manifests) = match rendered(path, kind, &name) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let cluster = match &app.target {
        Target::Cluster(c) => c.as_ref().and_then(|n| cfg.cluster(n)).cloned(),
        Target::Dir(dir) => {
            eprintln!(
                "error: app/{name} writes into {}, not to a cluster; `mooring render app/{name}` shows its files",
                dir.display()
            );
            return Exit::Error;
        }
    };
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let opts = apply::kube::Options {
        app: &app.name,
        field_manager: &cfg.agent.field_manager,
        namespace: app.namespace.as_deref(),
        force: app.force,
        recreate: app.recreate,
        prune: app.prune,
        inventory_namespace: &cfg.agent.inventory_namespace,
        revision: &revision,
        wait: None,
        reapply: None,
    };
    let result = runtime.block_on(async {
        let cluster = apply::cluster::Cluster::connect(cluster.as_ref())
            .await
            .map_err(apply::kube::Error::from)?;
        apply::diff::diff(&cluster, &manifests, &opts).await
    });
    match result {
        Ok(changes) if changes.is_empty() => {
            eprintln!("app/{name} at {revision}: no changes");
            Exit::Success
        }
        Ok(changes) => {
            for c in &changes {
                print!("{}", c.unified());
            }
            eprintln!("app/{name} at {revision}: {} objects would change", changes.len());
            Exit::Failure
        }
        Err(e) => {
            eprintln!("error: app/{name}: {e}");
            Exit::Error
        }
    }
}
