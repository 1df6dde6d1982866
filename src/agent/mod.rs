//! The agent: takes a valid [`Config`] and keeps every object in it
//! reconciled. One task per object (source, app, image, automation) runs its
//! kind's reconcile function ([`reconcile`]) on its interval, backs off on
//! failure ([`backoff`]), waits for its inputs (an app for its source's
//! artifact and for the apps it depends on) and wakes at once when they
//! change. A global semaphore bounds how many run at a time.
//!
//! A reload hands the agent a new config; [`ConfigDiff`] says which tasks
//! to start, restart or stop, and all others keep running with their status
//! and backoff. Status and metrics ([`status`]) are what the HTTP server
//! serves. `mooring once` uses the same tasks, each running once.

pub mod reconcile;
pub mod run;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::backoff;
use crate::config::diff::{ConfigDiff, Key};
use crate::config::graph::Graph;
use crate::config::{Config, Kind};
use crate::image::Selection;
use crate::reason::Reason;
use crate::source::Artifact;
use status::{ArtifactStatus, Metrics, ObjectStatus, Reload, Report, State, Suspended};

/// Whether tasks loop forever or run once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    Once,
}

/// The agent's shared state; cheap to clone.
#[derive(Clone)]
pub struct Agent {
    shared: Arc<Shared>,
}

struct Shared {
    config_path: PathBuf,
    started: jiff::Timestamp,
    mode: Mode,
    metrics: Metrics,
    limit: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<JoinSet<()>>,
    clusters: crate::apply::cluster::Clusters,
    inner: Mutex<Inner>,
}

struct Inner {
    config: Arc<Config>,
    /// Who reads whom in `config`.
    graph: Graph,
    generation: u64,
    last_reload: Reload,
    objects: BTreeMap<Key, Handle>,
    permits: u32,
}

/// What the agent holds of one object's task.
struct Handle {
    /// The config the task reads its object from; `None` stops the task.
    spec: watch::Sender<Option<Arc<Config>>>,
    /// Look again at inputs (a dependency changed) or run (with `force`).
    wake: Arc<Notify>,
    force: Arc<AtomicBool>,
    status: Arc<Mutex<ObjectStatus>>,
    output: Arc<Mutex<Output>>,
}

/// What an object's last runs mean to the objects that read it.
#[derive(Debug, Clone, Default)]
struct Output {
    /// After a success: what it produced. Kept across later failures: apps
    /// go on using the last good artifact, automations the last selection.
    good: Option<Good>,
    /// At least one run finished.
    ran: bool,
    /// The last run failed.
    failed: bool,
    /// Suspended in a single pass: it will not run.
    suspended: bool,
}

/// What a successful run produced, for the objects that read it.
#[derive(Debug, Clone, Default)]
struct Good {
    revision: String,
    /// Sources: the artifact.
    artifact: Option<Artifact>,
    /// Images: the policy's pick.
    selection: Option<Selection>,
}

/// Why a manual reconcile was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefuseReason {
    #[error("there is no {0} in the running config")]
    NotFound(Key),
    #[error("{0} is suspended; resume it first")]
    Suspended(Key),
}

/// Lock a mutex even if a panicking thread poisoned it: status is plain
/// data and stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Agent {
    /// An agent for `config` (already loaded from `config_path`); no tasks
    /// run until [`Agent::start`].
    pub fn new(config_path: PathBuf, config: Config, mode: Mode) -> Agent {
        let permits = config.agent.concurrency;
        let (shutdown, _) = watch::channel(false);
        Agent {
            shared: Arc::new(Shared {
                config_path,
                started: jiff::Timestamp::now(),
                mode,
                metrics: Metrics::new(),
                limit: Arc::new(Semaphore::new(permits as usize)),
                shutdown,
                tasks: Mutex::new(JoinSet::new()),
                clusters: Default::default(),
                inner: Mutex::new(Inner {
                    graph: Graph::of(&config),
                    config: Arc::new(config),
                    generation: 1,
                    last_reload: Reload {
                        result: "ok".into(),
                        at: jiff::Timestamp::now(),
                        diagnostics: None,
                        problems: None,
                        restart_needed: Vec::new(),
                    },
                    objects: BTreeMap::new(),
                    permits,
                }),
            }),
        }
    }

    /// Start a task for every object of the config, or only for `only`
    /// (and what they need) in [`Mode::Once`].
    pub fn start(&self, only: Option<&[Key]>) {
        let mut inner = lock(&self.shared.inner);
        let cfg = inner.config.clone();
        let keys: Vec<Key> = match only {
            Some(keys) => inner.graph.with_inputs(keys),
            None => cfg.keys().collect(),
        };
        for key in keys {
            self.spawn(&mut inner, key, cfg.clone());
        }
    }

    pub fn config(&self) -> Arc<Config> {
        lock(&self.shared.inner).config.clone()
    }

    pub fn config_path(&self) -> &std::path::Path {
        &self.shared.config_path
    }

    pub fn generation(&self) -> u64 {
        lock(&self.shared.inner).generation
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Make `config` the running one: start, restart and stop only what the
    /// diff names. Returns the diff (already applied).
    pub fn apply(&self, config: Config, warnings: Option<(String, serde_json::Value)>) -> ConfigDiff {
        let mut inner = lock(&self.shared.inner);
        let diff = ConfigDiff::between(&inner.config, &config);
        let cfg = Arc::new(config);
        for key in &diff.removed {
            if let Some(h) = inner.objects.remove(key) {
                h.spec.send_replace(None);
                self.shared.metrics.forget(key.kind, &key.name);
            }
        }
        for key in &diff.changed {
            if let Some(h) = inner.objects.get(key) {
                // A redefined source's artifact describes the old definition
                // (a suspension alone keeps it: apps go on using it).
                if key.kind == Kind::Source && inner.config.source(&key.name) != cfg.source(&key.name) {
                    *lock(&h.output) = Output::default();
                }
                h.spec.send_replace(Some(cfg.clone()));
            }
        }
        for key in &diff.added {
            self.spawn(&mut inner, key.clone(), cfg.clone());
        }
        // Unchanged tasks see the new config at their next look, without
        // being woken: no config but the running one stays alive.
        let restarted: std::collections::BTreeSet<&Key> = diff.changed.iter().chain(&diff.added).collect();
        for (key, h) in &inner.objects {
            if !restarted.contains(key) {
                h.spec.send_if_modified(|c| {
                    *c = Some(cfg.clone());
                    false
                });
            }
        }
        let want = cfg.agent.concurrency;
        if want > inner.permits {
            self.shared.limit.add_permits((want - inner.permits) as usize);
        } else if want < inner.permits {
            // Permits in use are taken back as they are released.
            let limit = self.shared.limit.clone();
            let surplus = inner.permits - want;
            tokio::spawn(async move {
                if let Ok(p) = limit.acquire_many(surplus).await {
                    p.forget();
                }
            });
        }
        inner.permits = want;
        inner.graph = Graph::of(&cfg);
        inner.config = cfg;
        inner.generation += 1;
        let generation = inner.generation;
        for key in diff.changed.iter().chain(&diff.added) {
            if let Some(h) = inner.objects.get(key) {
                lock(&h.status).generation = generation;
            }
        }
        let (diagnostics, problems) = warnings.unzip();
        inner.last_reload = Reload {
            result: "ok".into(),
            at: jiff::Timestamp::now(),
            diagnostics,
            problems,
            restart_needed: diff.restart_needed.iter().map(|s| s.to_string()).collect(),
        };
        diff
    }

    /// Record a reload that failed; the running config stays.
    pub fn reload_failed(&self, diagnostics: String, problems: Option<serde_json::Value>) {
        self.shared.metrics.reload_failed();
        lock(&self.shared.inner).last_reload = Reload {
            result: "failed".into(),
            at: jiff::Timestamp::now(),
            diagnostics: Some(diagnostics),
            problems,
            restart_needed: Vec::new(),
        };
    }

    /// Ask for a run of `key` now.
    pub fn reconcile(&self, key: &Key) -> Result<(), RefuseReason> {
        let inner = lock(&self.shared.inner);
        let Some(h) = inner.objects.get(key) else {
            return Err(RefuseReason::NotFound(key.clone()));
        };
        if lock(&h.status).state == State::Suspended {
            return Err(RefuseReason::Suspended(key.clone()));
        }
        h.force.store(true, Ordering::SeqCst);
        h.wake.notify_one();
        Ok(())
    }

    pub fn report(&self) -> Report {
        let inner = lock(&self.shared.inner);
        Report {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: self.shared.config_path.display().to_string(),
            generation: inner.generation,
            started: self.shared.started,
            last_reload: inner.last_reload.clone(),
            // In the order of the config file.
            objects: inner
                .config
                .keys()
                .filter_map(|k| inner.objects.get(&k))
                .map(|h| lock(&h.status).clone())
                .collect(),
        }
    }

    /// Stop scheduling; runs in flight go on until they finish.
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    /// Wait until every task has ended, at most `bound`. `false` if some
    /// were still running (they are then abandoned).
    pub async fn join(&self, bound: Duration) -> bool {
        let mut tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(bound, all).await.is_ok()
    }

    fn spawn(&self, inner: &mut Inner, key: Key, cfg: Arc<Config>) {
        let (spec, spec_rx) = watch::channel(Some(cfg));
        let handle = Handle {
            spec,
            wake: Arc::new(Notify::new()),
            force: Arc::new(AtomicBool::new(false)),
            status: Arc::new(Mutex::new(ObjectStatus::new(
                key.kind,
                &key.name,
                inner.generation,
            ))),
            output: Arc::new(Mutex::new(Output::default())),
        };
        let task = Task {
            agent: self.clone(),
            key: key.clone(),
            spec: spec_rx,
            wake: handle.wake.clone(),
            force: handle.force.clone(),
            status: handle.status.clone(),
            output: handle.output.clone(),
        };
        inner.objects.insert(key, handle);
        lock(&self.shared.tasks).spawn(task.run());
    }

    /// The output of `key`, if it exists.
    fn output(&self, key: &Key) -> Option<Output> {
        let inner = lock(&self.shared.inner);
        inner.objects.get(key).map(|h| lock(&h.output).clone())
    }

    /// Wake every object that reads `key`.
    fn wake_readers(&self, key: &Key) {
        let inner = lock(&self.shared.inner);
        for k in inner.graph.readers(key) {
            if let Some(h) = inner.objects.get(k) {
                h.wake.notify_one();
            }
        }
    }
}
/// What an object's run reads, once its inputs are ready.
struct Inputs {
    /// The artifact an app renders from.
    artifact: Option<Artifact>,
    /// The artifacts of the other sources an app's values files come from.
    values: Vec<(String, Artifact)>,
    /// The image policies and their picks, for an automation.
    policies: crate::automation::setters::Policies,
    /// A run is due when this differs from the last run's.
    revision: Option<String>,
}

enum Gate {
    Ready(Inputs),
    /// Not yet; `failed` says an input has run and failed (so in a single
    /// pass it never will be ready).
    Wait {
        reason: Reason,
        message: String,
        failed: bool,
    },
}

/// One object's task.
struct Task {
    agent: Agent,
    key: Key,
    spec: watch::Receiver<Option<Arc<Config>>>,
    wake: Arc<Notify>,
    force: Arc<AtomicBool>,
    status: Arc<Mutex<ObjectStatus>>,
    output: Arc<Mutex<Output>>,
}

impl Task {
    async fn run(mut self) {
        let mode = self.agent.shared.mode;
        let mut shutdown = self.agent.shared.shutdown.subscribe();
        // When the next timed run is due; `None` while stalled.
        let mut due = Some(Instant::now());
        // The input revision of the last run.
        let mut last_input: Option<Option<String>> = None;
        let mut failures = 0u32;
        loop {
            let Some(cfg) = self.spec.borrow_and_update().clone() else {
                break;
            };
            if *shutdown.borrow() {
                break;
            }
            let interval = interval(&cfg, &self.key);

            // Suspended: no new runs until resumed or expired.
            if let Some(s) = active_suspension(&cfg, &self.key) {
                self.set(|st| {
                    st.state = State::Suspended;
                    st.reason = Some(Reason::Suspended.to_string());
                    st.next_run = s.until;
                    st.suspended = Some(s.clone());
                });
                let expiry = s.until.map(|u| {
                    let left = jiff::Timestamp::now().duration_until(u);
                    Duration::try_from(left).unwrap_or(Duration::ZERO)
                });
                if mode == Mode::Once {
                    lock(&self.output).suspended = true;
                    self.agent.wake_readers(&self.key);
                    break;
                }
                // Waiting never pins a config: reloads free the old ones.
                drop(cfg);
                tokio::select! {
                    changed = self.spec.changed() => if changed.is_err() { break },
                    _ = sleep_opt(expiry) => {},
                    _ = shutdown.changed() => break,
                }
                // Resumed (or the object changed): run at once.
                due = Some(Instant::now());
                failures = 0;
                last_input = None;
                continue;
            }
            self.set(|st| st.suspended = None);

            // Inputs.
            let inputs = match self.gate(&cfg) {
                Gate::Ready(inputs) => inputs,
                Gate::Wait {
                    reason,
                    message,
                    failed,
                } => {
                    let once_failed = mode == Mode::Once && failed;
                    self.set(|st| {
                        st.state = if once_failed {
                            State::Failed
                        } else {
                            State::Waiting
                        };
                        st.reason = Some(reason.to_string());
                        st.message = Some(message.clone());
                        st.next_run = None;
                        if once_failed {
                            st.last_error = Some(message.clone());
                        }
                    });
                    if once_failed {
                        self.publish(None, false);
                        break;
                    }
                    drop(cfg);
                    tokio::select! {
                        _ = self.wake.notified() => {},
                        changed = self.spec.changed() => {
                            if changed.is_err() { break }
                            due = Some(Instant::now());
                            failures = 0;
                        },
                        _ = shutdown.changed() => break,
                    }
                    continue;
                }
            };

            // Is a run due?
            let forced = self.force.swap(false, Ordering::SeqCst);
            let timed = due.is_some_and(|d| d <= Instant::now());
            let new_input = last_input.as_ref() != Some(&inputs.revision);
            if !(forced || timed || new_input) {
                let next = due.map(|d| {
                    let left = d.saturating_duration_since(Instant::now());
                    jiff::Timestamp::now() + jiff::SignedDuration::try_from(left).unwrap_or_default()
                });
                self.set(|st| st.next_run = next);
                drop(cfg);
                tokio::select! {
                    _ = sleep_until_opt(due) => {},
                    _ = self.wake.notified() => {},
                    changed = self.spec.changed() => {
                        if changed.is_err() { break }
                        due = Some(Instant::now());
                        failures = 0;
                    },
                    _ = shutdown.changed() => break,
                }
                continue;
            }

            // Run, within the global limit.
            let limit = self.agent.shared.limit.clone();
            let permit = tokio::select! {
                p = limit.acquire_owned() => p,
                _ = shutdown.changed() => break,
            };
            let Ok(permit) = permit else { break };
            self.set(|st| {
                st.state = State::Reconciling;
                st.next_run = None;
            });
            let started = Instant::now();
            let at = jiff::Timestamp::now();
            let span = tracing::info_span!(
                "reconcile",
                kind = %self.key.kind,
                object = %self.key.name,
                revision = tracing::field::Empty,
            );
            if let Some(rev) = &inputs.revision {
                span.record("revision", rev.as_str());
            }
            let result = self.reconcile(&cfg, &inputs).instrument(span.clone()).await;
            drop(permit);
            let seconds = started.elapsed().as_secs_f64();
            self.agent
                .shared
                .metrics
                .record_run(self.key.kind, &self.key.name, result.is_ok(), seconds, at);
            last_input = Some(inputs.revision.clone());
            let _enter = span.enter();
            match result {
                Ok(done) => {
                    failures = 0;
                    let wait = backoff::after_success(interval);
                    due = Some(Instant::now() + wait);
                    if let (None, Some(rev)) = (&inputs.revision, &done.revision) {
                        span.record("revision", rev.as_str());
                    }
                    tracing::info!(duration_ms = (seconds * 1000.0) as u64, "{}", done.message);
                    self.set(|st| {
                        st.state = State::Ready;
                        st.reason = Some(Reason::Succeeded.to_string());
                        st.message = Some(done.message.clone());
                        st.revision = done.revision.clone().or(st.revision.take());
                        st.last_error = None;
                        st.last_run = Some(at);
                        st.last_success = Some(at);
                        st.next_run = Some(later(wait));
                        st.failures = 0;
                        st.runs += 1;
                        if let Some(a) = &done.artifact {
                            st.artifact = Some(ArtifactStatus {
                                path: a.dir.display().to_string(),
                                checksum: a.checksum.clone(),
                            });
                        }
                        if done.applied.is_some() {
                            st.applied = done.applied.clone();
                        }
                    });
                    let good = done.revision.clone().map(|revision| Good {
                        revision,
                        artifact: done.artifact.clone(),
                        selection: done.selection.clone(),
                    });
                    self.publish(good, true);
                }
                Err(f) => {
                    failures += 1;
                    let wait = f.retryable.then(|| {
                        let b = backoff::after_failure(failures, interval);
                        f.retry_after.map_or(b, |r| b.max(r))
                    });
                    due = wait.map(|w| Instant::now() + w);
                    if f.retryable {
                        tracing::warn!(reason = f.reason.as_str(), failures, "{}", f.message);
                    } else {
                        tracing::error!(
                            reason = f.reason.as_str(),
                            "{} (stalled until its inputs change)",
                            f.message
                        );
                    }
                    self.set(|st| {
                        st.state = if f.retryable {
                            State::Failed
                        } else {
                            State::Stalled
                        };
                        st.reason = Some(f.reason.to_string());
                        st.message = Some(f.message.clone());
                        st.last_error = Some(f.message.clone());
                        st.last_run = Some(at);
                        st.next_run = wait.map(later);
                        st.failures = failures;
                        st.runs += 1;
                    });
                    self.publish(None, false);
                }
            }
            drop(_enter);
            if mode == Mode::Once {
                break;
            }
        }
    }

    fn set(&self, f: impl FnOnce(&mut ObjectStatus)) {
        f(&mut lock(&self.status));
    }

    /// Record the outcome of a run for readers and wake them.
    fn publish(&self, good: Option<Good>, ok: bool) {
        {
            let mut out = lock(&self.output);
            if good.is_some() {
                out.good = good;
            }
            out.ran = true;
            out.failed = !ok;
        }
        self.agent.wake_readers(&self.key);
    }

    fn gate(&self, cfg: &Config) -> Gate {
        if self.key.kind == Kind::Automation {
            return self.gate_automation(cfg);
        }
        let Some(app) = (self.key.kind == Kind::App)
            .then(|| cfg.app(&self.key.name))
            .flatten()
        else {
            return Gate::Ready(Inputs {
                artifact: None,
                values: Vec::new(),
                policies: Default::default(),
                revision: None,
            });
        };
        for dep in &app.depends_on {
            let key = Key::new(Kind::App, dep.as_str());
            let out = self.agent.output(&key).unwrap_or_default();
            if out.suspended {
                return Gate::Wait {
                    reason: Reason::DependencyNotReady,
                    message: format!("{key} is suspended"),
                    failed: true,
                };
            }
            if !out.ran || out.failed {
                return Gate::Wait {
                    reason: Reason::DependencyNotReady,
                    message: format!("waiting for {key} to be ready"),
                    failed: out.ran,
                };
            }
        }
        // The app's own source, then those of its values files; the run is
        // due when any of their revisions changes.
        let mut artifacts = Vec::new();
        for name in app.sources() {
            let key = Key::new(Kind::Source, name);
            let out = self.agent.output(&key).unwrap_or_default();
            match out.good {
                _ if out.suspended => {
                    return Gate::Wait {
                        reason: Reason::ArtifactNotReady,
                        message: format!("{key} is suspended and has no artifact in this pass"),
                        failed: true,
                    };
                }
                Some(Good {
                    revision,
                    artifact: Some(artifact),
                    ..
                }) => artifacts.push((name.to_string(), revision, artifact)),
                _ => {
                    return Gate::Wait {
                        reason: Reason::ArtifactNotReady,
                        message: format!("waiting for {key} to fetch an artifact"),
                        failed: out.ran,
                    };
                }
            }
        }
        let revision = artifacts
            .iter()
            .map(|(_, r, _)| r.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut artifacts = artifacts.into_iter().map(|(name, _, a)| (name, a));
        let own = artifacts.next().map(|(_, a)| a);
        Gate::Ready(Inputs {
            artifact: own,
            values: artifacts.collect(),
            policies: Default::default(),
            revision: Some(revision),
        })
    }

    /// An automation runs once every image policy has had its first scan,
    /// with what they picked (the last good pick of a failing scan).
    fn gate_automation(&self, cfg: &Config) -> Gate {
        let mut policies = crate::automation::setters::Policies::new();
        for image in &cfg.images {
            let key = Key::new(Kind::Image, image.name.as_str());
            // Not in this pass (`once` of other objects): its last pick.
            let out = self.agent.output(&key).unwrap_or_default();
            if self.agent.output(&key).is_some() && !out.ran && !out.suspended {
                return Gate::Wait {
                    reason: Reason::DependencyNotReady,
                    message: format!("waiting for the first scan of {key}"),
                    failed: false,
                };
            }
            let picked = out
                .good
                .and_then(|g| g.selection)
                .or_else(|| crate::image::last(image, &cfg.agent.state_dir));
            policies.insert(&image.name, &image.namespace, picked);
        }
        let revision = policies
            .iter()
            .filter_map(|(name, p)| Some(format!("{name}={}", p.selection.as_ref()?.reference())))
            .collect::<Vec<_>>()
            .join(",");
        Gate::Ready(Inputs {
            artifact: None,
            values: Vec::new(),
            policies,
            revision: Some(revision),
        })
    }

    async fn reconcile(&self, cfg: &Config, inputs: &Inputs) -> Result<reconcile::Done, reconcile::Failure> {
        let name = self.key.name.as_str();
        let missing = || reconcile::Failure {
            reason: Reason::Internal,
            message: format!("{} is not in the config it was started with", self.key),
            retryable: false,
            retry_after: None,
        };
        match self.key.kind {
            Kind::Source => {
                let src = cfg.source(name).ok_or_else(missing)?;
                reconcile::source(src, &cfg.agent.state_dir).await
            }
            Kind::App => {
                let app = cfg.app(name).ok_or_else(missing)?;
                let artifact = inputs.artifact.as_ref().ok_or_else(missing)?;
                reconcile::app(cfg, &self.agent.shared.clusters, app, artifact, &inputs.values).await
            }
            Kind::Image => reconcile::image(cfg.image(name).ok_or_else(missing)?, &cfg.agent.state_dir).await,
            Kind::Automation => {
                let a = cfg.automation(name).ok_or_else(missing)?;
                let done = reconcile::automation(cfg, a, &inputs.policies).await?;
                // A push changes the source: fetch it now, not at its interval.
                if done.revision.is_some() {
                    let _ = self.agent.reconcile(&Key::new(Kind::Source, a.source.as_str()));
                }
                Ok(done)
            }
        }
    }
}

fn interval(cfg: &Config, key: &Key) -> Duration {
    let n = key.name.as_str();
    match key.kind {
        Kind::Source => cfg.source(n).map(|o| o.interval),
        Kind::App => cfg.app(n).map(|o| o.interval),
        Kind::Image => cfg.image(n).map(|o| o.interval),
        Kind::Automation => cfg.automation(n).map(|o| o.interval),
    }
    .unwrap_or(Duration::from_secs(300))
}

/// The suspension of `key` that is in force now.
fn active_suspension(cfg: &Config, key: &Key) -> Option<Suspended> {
    let s = cfg.suspension(key.kind, &key.name)?;
    let until = s.until.as_ref().map(|u| u.value);
    if until.is_some_and(|u| u <= jiff::Timestamp::now()) {
        return None;
    }
    Some(Suspended {
        reason: s.reason.clone(),
        until,
    })
}

fn later(d: Duration) -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(now)
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
