//! `mooring render app/NAME` and `mooring diff app/NAME`: fetch the app's
//! source, render its manifests, and print them or what applying them would
//! change in the cluster.

use super::Exit;
use std::path::Path;

use crate::agent::reconcile;
use crate::apply;
use crate::config::{self, Config, Kind};
use crate::render::{self, Manifest};
use crate::source;

/// What an app's render reads, fetched.
struct Fetched {
    cfg: Config,
    app: config::App,
    artifact: source::Artifact,
    values: Vec<(String, source::Artifact)>,
}

/// Load the config, find the app and fetch its sources.
fn fetched(path: &Path, kind: Kind, name: &str, runtime: &tokio::runtime::Runtime) -> Result<Fetched, Exit> {
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
    Ok(Fetched {
        cfg,
        app,
        artifact,
        values,
    })
}

/// The clusters `app` applies to, by definition (`None`: the default
/// connection); none for a `target dir=` app.
fn clusters_of<'a>(cfg: &'a Config, app: &'a config::App) -> Vec<Option<&'a config::Cluster>> {
    match cfg.app_clusters(app) {
        None => Vec::new(),
        Some([]) => vec![None],
        Some(names) => names.iter().filter_map(|n| cfg.cluster(n)).map(Some).collect(),
    }
}

/// Render the app as it would be applied to `cluster` (`None` with
/// `for_cluster`: the default connection).
fn rendered(
    f: &Fetched,
    for_cluster: bool,
    def: Option<&config::Cluster>,
    runtime: &tokio::runtime::Runtime,
) -> Result<(String, Vec<Manifest>), Exit> {
    let (cfg, app, artifact, name) = (&f.cfg, &f.app, &f.artifact, f.app.name.as_str());
    // A chart for a cluster renders with the cluster's capabilities, as it
    // is applied; without the cluster, with Helm's defaults, and says so.
    let capabilities = match for_cluster {
        true if reconcile::is_chart_app(cfg, app, artifact) => {
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
    let keys = render::keys_for(app).map_err(|e| {
        eprintln!("error: app/{name}: {e}");
        Exit::Failure
    })?;
    let (vars, values_from) = runtime
        .block_on(async {
            let cluster = match for_cluster {
                true if app.reads_cluster() => Some(apply::cluster::Cluster::connect(def).await.map_err(
                    |e| apply::vars::Error {
                        option: if app.helm.values_from.is_empty() {
                            "substitute-from"
                        } else {
                            "values-from"
                        },
                        source_name: "the cluster".into(),
                        message: e.to_string(),
                        retryable: true,
                    },
                )?),
                _ => None,
            };
            let vars = apply::vars::resolve(app, &artifact.dir, cluster.as_ref(), keys.as_ref()).await?;
            let values_from = apply::vars::values(app, cluster.as_ref()).await?;
            Ok::<_, apply::vars::Error>((vars, values_from))
        })
        .map_err(|e| {
            eprintln!("error: app/{name}: {e}");
            Exit::Failure
        })?;
    runtime
        .block_on(reconcile::render_app(
            cfg,
            app,
            artifact,
            &f.values,
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
        })
}

pub fn render(path: &Path, (kind, name): (Kind, String)) -> Exit {
    let run = || {
        let runtime = super::runtime()?;
        let f = fetched(path, kind, &name, &runtime)?;
        let clusters = clusters_of(&f.cfg, &f.app);
        // Several clusters: as applied to the first (the renders differ
        // only where the app reads its cluster).
        if clusters.len() > 1
            && (f.app.reads_cluster() || reconcile::is_chart_app(&f.cfg, &f.app, &f.artifact))
        {
            let first = clusters[0].map_or("(default)", |c| c.name.as_str());
            eprintln!(
                "note: app/{name} applies to {} clusters: rendered for \"{first}\"",
                clusters.len()
            );
        }
        rendered(
            &f,
            !clusters.is_empty(),
            clusters.first().copied().flatten(),
            &runtime,
        )
    };
    let (revision, manifests) = match run() {
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
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let f = match fetched(path, kind, &name, &runtime) {
        Ok(f) => f,
        Err(code) => return code,
    };
    if let config::Target::Dir(dir) = &f.app.target {
        eprintln!(
            "error: app/{name} writes into {}, not to a cluster; `mooring render app/{name}` shows its files",
            dir.display()
        );
        return Exit::Error;
    }
    let clusters = clusters_of(&f.cfg, &f.app);
    let several = clusters.len() > 1;
    let mut exit = Exit::Success;
    // Each cluster in turn, with its own render and inventory.
    for def in clusters {
        let on = match (several, def) {
            (true, Some(c)) => format!(" on cluster \"{}\"", c.name.value),
            _ => String::new(),
        };
        let (revision, manifests) = match rendered(&f, true, def, &runtime) {
            Ok(r) => r,
            Err(code) => return code,
        };
        let mut opts = apply::kube::Options::for_app(&f.cfg, &f.app, &revision);
        (opts.wait, opts.reapply) = (None, None);
        let result = runtime.block_on(async {
            let cluster = apply::cluster::Cluster::connect(def)
                .await
                .map_err(apply::kube::Error::from)?;
            apply::diff::diff(&cluster, manifests, &opts).await
        });
        match result {
            Ok(changes) if changes.is_empty() => {
                eprintln!("app/{name}{on} at {revision}: no changes");
            }
            Ok(changes) => {
                for c in &changes {
                    print!("{}", c.unified());
                }
                eprintln!(
                    "app/{name}{on} at {revision}: {} objects would change",
                    changes.len()
                );
                if exit == Exit::Success {
                    exit = Exit::Failure;
                }
            }
            Err(e) => {
                eprintln!("error: app/{name}{on}: {e}");
                exit = Exit::Error;
            }
        }
    }
    exit
}
