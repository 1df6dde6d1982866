//! `mooring run`: the long-running agent process. Starts every object's
//! task and what serves the agent (the HTTP server, which `cli` wires in:
//! the agent knows nothing of it), then waits for signals and config changes:
//! a change in the file's directory (debounced) or the slow poll reloads if
//! the content hash changed, SIGHUP reloads now, SIGTERM/SIGINT stop
//! scheduling, let in-flight runs finish (bounded) and return. Speaks
//! sd_notify (READY, RELOADING, STOPPING, WATCHDOG, STATUS) when
//! `NOTIFY_SOCKET` is set.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;

use super::{Agent, Mode};
use crate::config::{self, watch};

/// How long a change must be quiet before the file is read: editors write
/// a file in several steps.
pub const DEBOUNCE: Duration = Duration::from_millis(50);
/// The safety net for changes no event reported (network file systems).
pub const POLL: Duration = Duration::from_secs(30);
/// How long in-flight runs may take to finish after SIGTERM.
pub const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);
/// How long queued notifications may take to go out after that.
pub const NOTIFY_BOUND: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot install a signal handler: {0}")]
    Signal(std::io::Error),
}

/// Completes when the agent has stopped: what serves it should stop too.
pub type Stopped = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Run until SIGTERM or SIGINT. `text` is the content `loaded` came from.
/// `serve` is given the agent once its tasks run, and returns what serves
/// it until [`Stopped`] completes.
pub async fn run<S, F>(path: PathBuf, loaded: config::Loaded, text: &[u8], serve: S) -> Result<(), Error>
where
    S: FnOnce(Agent, Stopped) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let listen = loaded.config.agent.listen;
    let mut term = signal(SignalKind::terminate()).map_err(Error::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Signal)?;
    let mut hup = signal(SignalKind::hangup()).map_err(Error::Signal)?;

    let warnings = warnings_of(&loaded.warnings);
    let agent = Agent::new(path.clone(), loaded.config, Mode::Run);
    if let Some((text, _)) = &warnings {
        tracing::warn!("{} has warnings:\n{text}", path.display());
    }
    agent.start(None);
    agent.start_election();

    let stop_serving = Arc::new(Notify::new());
    let serving = {
        let stop = stop_serving.clone();
        tokio::spawn(serve(
            agent.clone(),
            Box::pin(async move { stop.notified().await }),
        ))
    };

    let changed = Arc::new(Notify::new());
    let mut watch = match watch::watch(&path, changed.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            tracing::warn!(
                "cannot watch {} for changes ({e}); polling every {}s instead",
                path.display(),
                POLL.as_secs()
            );
            None
        }
    };
    let mut last_hash = watch::hash(text);
    tracing::info!(
        config = %path.display(),
        listen = %listen,
        objects = agent.report().objects.len(),
        "mooring {} started",
        env!("CARGO_PKG_VERSION")
    );
    notify(&[NotifyState::Ready, NotifyState::Status(&summary(&agent))]);

    let mut poll = tokio::time::interval(POLL);
    poll.reset();
    let watchdog = sd_notify::watchdog_enabled().map(|d| d / 2);
    let mut watchdog_tick = tokio::time::interval(watchdog.unwrap_or(Duration::from_secs(3600)));
    // Reading, parsing and checking a file run on the blocking pool, one at a
    // time, so that signals and the watchdog never wait on a large file;
    // a change seen meanwhile is read again once it is done.
    let mut loading: Option<tokio::task::JoinHandle<Load>> = None;
    let mut again: Option<bool> = None;
    // Why the file could not be read last time (said once, not at every look).
    let mut unreadable: Option<String> = None;

    loop {
        let mut request: Option<bool> = None;
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading");
                request = Some(true);
            }
            _ = changed.notified() => {
                // Wait until the directory has been quiet for DEBOUNCE.
                while tokio::time::timeout(DEBOUNCE, changed.notified()).await.is_ok() {}
                request = Some(false);
            }
            _ = poll.tick() => request = Some(false),
            _ = watchdog_tick.tick(), if watchdog.is_some() => notify(&[NotifyState::Watchdog]),
            done = async { loading.as_mut().expect("guarded by the condition").await }, if loading.is_some() => {
                loading = None;
                match done {
                    Ok(load) => adopt(&agent, &path, &mut last_hash, &mut unreadable, load),
                    Err(e) => tracing::error!("reading the config failed: {e}; the running config stays"),
                }
                if let Some(w) = watch.as_mut() {
                    w.follow(&path);
                }
                request = again.take();
            }
        }
        match (request, &loading) {
            (None, _) => {}
            (Some(force), Some(_)) => again = Some(again.unwrap_or(false) || force),
            (Some(force), None) => {
                let (path, hash) = (path.clone(), last_hash);
                loading = Some(tokio::task::spawn_blocking(move || {
                    Load::read(&path, hash, force)
                }));
            }
        }
    }

    tracing::info!(
        "stopping: no new runs; waiting up to {}s for runs in flight",
        SHUTDOWN_BOUND.as_secs()
    );
    notify(&[NotifyState::Stopping]);
    agent.shutdown();
    if !agent.join(SHUTDOWN_BOUND).await {
        tracing::warn!(
            "runs still in flight after {}s were abandoned",
            SHUTDOWN_BOUND.as_secs()
        );
    }
    // Failures of the last runs are worth telling: a short wait for posts.
    if !agent.notifier().flush(NOTIFY_BOUND).await {
        tracing::warn!(
            "notifications still queued after {}s were dropped",
            NOTIFY_BOUND.as_secs()
        );
    }
    stop_serving.notify_one();
    let _ = tokio::time::timeout(Duration::from_secs(2), serving).await;
    tracing::info!("stopped");
    Ok(())
}

/// What reading the config file found: the blocking part of a reload.
enum Load {
    /// The content is what the running config came from.
    Unchanged,
    /// Mid-replace, or gone: the next event or poll looks again.
    Unreadable(std::io::Error),
    /// A new content, loaded or refused.
    Read {
        hash: [u8; 32],
        result: Result<Box<config::Loaded>, Refused>,
    },
}

/// Why a new content was not loaded: the rendered diagnostics, and the
/// problems as JSON when they are diagnostics.
struct Refused {
    rendered: String,
    problems: Option<serde_json::Value>,
}

impl Load {
    /// Read the file and, if its content changed (or `force`), load it.
    fn read(path: &Path, last_hash: [u8; 32], force: bool) -> Load {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => return Load::Unreadable(e),
        };
        let hash = watch::hash(&bytes);
        if hash == last_hash && !force {
            return Load::Unchanged;
        }
        notify(&[NotifyState::Reloading, monotonic_now()]);
        let result = match String::from_utf8(bytes) {
            Ok(text) => config::from_str(path, text, jiff::Timestamp::now())
                .map(Box::new)
                .map_err(|e| match e {
                    config::Error::Invalid { diagnostics } => Refused {
                        rendered: diagnostics.render(false, 100),
                        problems: serde_json::to_value(diagnostics.to_json()).ok(),
                    },
                    e @ config::Error::Read { .. } => Refused {
                        rendered: e.to_string(),
                        problems: None,
                    },
                }),
            Err(_) => Err(Refused {
                rendered: format!("{} is not UTF-8 text", path.display()),
                problems: None,
            }),
        };
        Load::Read { hash, result }
    }
}

/// Hand what [`Load::read`] found to the agent, or report why not. An
/// unreadable or invalid file leaves the running config; an unreadable one
/// is a failed reload until the file can be read again (even unchanged).
fn adopt(agent: &Agent, path: &Path, last_hash: &mut [u8; 32], unreadable: &mut Option<String>, load: Load) {
    let (hash, result) = match load {
        Load::Unchanged => {
            if unreadable.take().is_some() {
                tracing::info!("{} can be read again, unchanged", path.display());
                agent.reload_unchanged();
                notify(&[NotifyState::Ready, NotifyState::Status(&summary(agent))]);
            }
            return;
        }
        Load::Unreadable(e) => {
            let why = format!(
                "cannot read {}: {e}; the running config (generation {}) stays",
                path.display(),
                agent.generation()
            );
            if unreadable.as_deref() != Some(why.as_str()) {
                tracing::error!("{why}");
                agent.reload_failed(why.clone(), None);
                *unreadable = Some(why);
            }
            return;
        }
        Load::Read { hash, result } => (hash, result),
    };
    *unreadable = None;
    *last_hash = hash;
    match result {
        Ok(loaded) => {
            let warnings = warnings_of(&loaded.warnings);
            if let Some((text, _)) = &warnings {
                tracing::warn!("{} has warnings:\n{text}", path.display());
            }
            let diff = agent.reload(loaded.config, warnings);
            tracing::info!(generation = agent.generation(), "config reloaded: {diff}");
            for setting in &diff.restart_needed {
                tracing::warn!("{setting} changed; restart mooring for it to take effect");
            }
        }
        Err(Refused { rendered, problems }) => {
            tracing::error!(
                "{} is invalid; the running config (generation {}) stays:\n{rendered}",
                path.display(),
                agent.generation()
            );
            agent.reload_failed(rendered, problems);
        }
    }
    notify(&[NotifyState::Ready, NotifyState::Status(&summary(agent))]);
}

fn warnings_of(d: &config::Diagnostics) -> Option<(String, serde_json::Value)> {
    if d.items.is_empty() {
        return None;
    }
    let json = serde_json::to_value(d.to_json()).unwrap_or_default();
    Some((d.render(false, 100), json))
}

fn summary(agent: &Agent) -> String {
    let report = agent.report();
    let ready = report
        .objects
        .iter()
        .filter(|o| o.state == super::status::State::Ready)
        .count();
    format!(
        "generation {}: {} objects, {} ready; last reload {}",
        report.generation,
        report.objects.len(),
        ready,
        report.last_reload.result
    )
}

fn monotonic_now() -> NotifyState<'static> {
    NotifyState::monotonic_usec_now().unwrap_or(NotifyState::MonotonicUsec(0))
}

/// Tell systemd, if it is listening; failures only matter to systemd.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}
