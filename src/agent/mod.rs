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
//!
//! Each run records its [`Trigger`]. State changes (a failure, a
//! recovery, a push, an apply that changed something) are handed to the
//! [`Notifier`](crate::notify::Notifier), which never makes a task wait.
//! With `leader-election` ([`leader`]), only the objects of the leases this
//! replica holds run; the others wait as `standby`.

pub mod leader;
pub mod reconcile;
pub mod run;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::backoff;
use crate::config::diff::{ConfigDiff, Key};
use crate::config::graph::Graph;
use crate::config::{Config, Kind, NotifyEvent};
use crate::image::Selection;
use crate::notify::{self, Notifier};
use crate::reason::Reason;
use crate::source::Artifact;
pub use status::Trigger;
use status::{ArtifactStatus, Metrics, ObjectStatus, ReceiverStatus, Reload, Report, State, Suspended};

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
    notifier: Notifier,
    /// The shards this replica holds (leader election); `None`: all.
    held: watch::Sender<leader::Held>,
    election: Mutex<Option<leader::LeaderStatus>>,
    /// Runs asked of this replica while a standby, for the leader.
    outbox: leader::Outbox,
    receivers: Mutex<BTreeMap<String, ReceiverStatus>>,
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
    /// Look again at inputs (a dependency changed) or run (with `forced`).
    wake: Arc<Notify>,
    forced: Arc<Mutex<Option<Trigger>>>,
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
        // With an election, nothing is this replica's until it wins (a
        // single pass, `once`, takes part in none).
        let held = config
            .agent
            .leader_election
            .as_ref()
            .filter(|_| mode == Mode::Run)
            .map(|_| Arc::new(vec![false]));
        let (held, _) = watch::channel(held);
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
                notifier: Notifier::new(),
                held,
                election: Mutex::new(None),
                outbox: Default::default(),
                receivers: Mutex::new(BTreeMap::new()),
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

    /// Record that the file can be read again and holds the running
    /// config (after an unreadable spell): the last reload is ok.
    pub fn reload_unchanged(&self) {
        lock(&self.shared.inner).last_reload = Reload {
            result: "ok".into(),
            at: jiff::Timestamp::now(),
            diagnostics: None,
            problems: None,
            restart_needed: Vec::new(),
        };
    }

    /// Ask for a run of `key` now (a manual reconcile).
    pub fn reconcile(&self, key: &Key) -> Result<(), RefuseReason> {
        self.trigger(key, Trigger::Manual)
    }

    /// Ask for a run of `key` now, for `trigger`'s reason.
    pub fn trigger(&self, key: &Key, trigger: Trigger) -> Result<(), RefuseReason> {
        let inner = lock(&self.shared.inner);
        let Some(h) = inner.objects.get(key) else {
            return Err(RefuseReason::NotFound(key.clone()));
        };
        if lock(&h.status).state == State::Suspended {
            return Err(RefuseReason::Suspended(key.clone()));
        }
        *lock(&h.forced) = Some(trigger);
        h.wake.notify_one();
        Ok(())
    }

    /// Record what a receiver did with one request.
    pub fn record_hook(&self, receiver: &str, f: impl FnOnce(&mut ReceiverStatus)) {
        let mut all = lock(&self.shared.receivers);
        let st = all.entry(receiver.to_string()).or_insert_with(|| ReceiverStatus {
            name: receiver.to_string(),
            ..ReceiverStatus::default()
        });
        f(st);
    }

    /// This replica's role, with `leader-election`.
    pub fn election(&self) -> Option<leader::LeaderStatus> {
        lock(&self.shared.election).clone()
    }

    pub fn notifier(&self) -> &Notifier {
        &self.shared.notifier
    }

    /// Hold the leader election the config asks for (if any) until
    /// shutdown; the tasks of objects this replica does not hold wait.
    pub fn start_election(&self) {
        let cfg = self.config();
        let Some(le) = cfg.agent.leader_election.clone() else {
            return;
        };
        let def = le.cluster.as_ref().and_then(|c| cfg.cluster(c)).cloned();
        let agent = self.clone();
        let stop = self.shared.shutdown.subscribe();
        let identity = leader::identity();
        lock(&self.shared.tasks).spawn(async move {
            let report = |s: leader::LeaderStatus| *lock(&agent.shared.election) = Some(s);
            let requested = |keys: Vec<Key>| {
                for key in keys {
                    tracing::info!(object = %key, "running what a standby's receiver was asked");
                    let _ = agent.trigger(&key, Trigger::Webhook);
                }
            };
            leader::run(
                le,
                def,
                &agent.shared.clusters,
                identity,
                agent.shared.held.clone(),
                report,
                agent.shared.outbox.clone(),
                requested,
                stop,
            )
            .await;
        });
    }

    /// Whether another replica holds the lease of `key` (leader election).
    pub fn is_standby_for(&self, key: &Key) -> bool {
        !leader::owns(&self.shared.held.borrow(), key)
    }

    /// Hand a run of `key` to the leader (this replica is a standby): it
    /// goes through the Lease and runs there with the trigger `webhook`.
    pub fn forward(&self, key: Key) {
        lock(&self.shared.outbox).push(key);
    }

    pub fn report(&self) -> Report {
        let inner = lock(&self.shared.inner);
        Report {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: self.shared.config_path.display().to_string(),
            generation: inner.generation,
            started: self.shared.started,
            last_reload: inner.last_reload.clone(),
            leader_election: self.election(),
            // In the order of the config file.
            objects: inner
                .config
                .keys()
                .filter_map(|k| inner.objects.get(&k))
                .map(|h| lock(&h.status).clone())
                .collect(),
            receivers: {
                let seen = lock(&self.shared.receivers);
                inner
                    .config
                    .receivers
                    .iter()
                    .map(|r| {
                        seen.get(r.name.as_str())
                            .cloned()
                            .unwrap_or_else(|| ReceiverStatus {
                                name: r.name.value.clone(),
                                ..ReceiverStatus::default()
                            })
                    })
                    .collect()
            },
            notifications: self.shared.notifier.report(),
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
            forced: Arc::new(Mutex::new(None)),
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
            forced: handle.forced.clone(),
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
    forced: Arc<Mutex<Option<Trigger>>>,
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
        // The object is new, changed or resumed: its next run says so.
        let mut reconfigured = true;
        // The last failure's reason and message, until a success.
        let mut failing: Option<(String, String)> = None;
        let mut held = self.agent.shared.held.subscribe();
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
                reconfigured = true;
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
                            reconfigured = true;
                        },
                        _ = shutdown.changed() => break,
                    }
                    continue;
                }
            };

            // Is a run due, and why?
            let forced = lock(&self.forced).take();
            let timed = due.is_some_and(|d| d <= Instant::now());
            let new_input = last_input.as_ref() != Some(&inputs.revision);
            let trigger = match forced {
                Some(t) => Some(t),
                None if reconfigured && (timed || new_input) => Some(Trigger::Config),
                None if new_input => Some(Trigger::Input),
                None if timed => Some(Trigger::Timer),
                None => None,
            };
            let Some(trigger) = trigger else {
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
                        reconfigured = true;
                    },
                    _ = shutdown.changed() => break,
                }
                continue;
            };

            // Another replica's: wait until this one holds it (the run
            // stays due, with its trigger).
            if !leader::owns(&held.borrow_and_update(), &self.key) {
                if let Some(t) = forced {
                    *lock(&self.forced) = Some(t);
                }
                self.set(|st| {
                    st.state = State::Waiting;
                    st.reason = Some(Reason::Standby.to_string());
                    st.message = Some("this replica is a standby: the leader reconciles".into());
                    st.next_run = None;
                });
                drop(cfg);
                tokio::select! {
                    changed = held.changed() => if changed.is_err() { break },
                    changed = self.spec.changed() => {
                        if changed.is_err() { break }
                        reconfigured = true;
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
            self.set(|st| st.trigger = Some(trigger));
            reconfigured = false;
            let span = tracing::info_span!(
                "reconcile",
                kind = %self.key.kind,
                object = %self.key.name,
                trigger = trigger.as_str(),
                revision = tracing::field::Empty,
            );
            if let Some(rev) = &inputs.revision {
                span.record("revision", rev.as_str());
            }
            // Losing the lease cancels the run: another replica takes over.
            let run = self.reconcile(&cfg, &inputs).instrument(span.clone());
            let key = self.key.clone();
            let result = tokio::select! {
                r = run => Some(r),
                () = lost(&mut held, &key) => None,
            };
            drop(permit);
            let Some(result) = result else {
                tracing::warn!(kind = %self.key.kind, object = %self.key.name, "run cancelled: this replica lost the lease");
                self.set(|st| st.state = State::Waiting);
                continue;
            };
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
                    if mode == Mode::Run {
                        self.notify_success(&cfg, &done, failing.take().is_some(), &inputs);
                    }
                    failing = None;
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
                    let this = (f.reason.to_string(), f.message.clone());
                    if mode == Mode::Run && failing.as_ref() != Some(&this) {
                        let revision = inputs.revision.clone();
                        self.notify(
                            &cfg,
                            NotifyEvent::Failure,
                            f.reason.as_str(),
                            &f.message,
                            revision,
                        );
                    }
                    failing = Some(this);
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

    /// Hand a success's state changes to the notifier: a recovery after
    /// failures, a push, an apply that changed something.
    fn notify_success(&self, cfg: &Config, done: &reconcile::Done, recovered: bool, inputs: &Inputs) {
        let revision = done.revision.clone().or_else(|| inputs.revision.clone());
        if recovered {
            self.notify(
                cfg,
                NotifyEvent::Recovery,
                notify::SUCCEEDED,
                &done.message,
                revision.clone(),
            );
        }
        if self.key.kind == Kind::Automation && done.revision.is_some() {
            let pushed = done.revision.as_ref().map(|c| format!("sha1:{c}"));
            self.notify(cfg, NotifyEvent::Push, notify::SUCCEEDED, &done.message, pushed);
        }
        if done.applied.as_ref().is_some_and(|s| s.changed()) {
            self.notify(
                cfg,
                NotifyEvent::Apply,
                notify::SUCCEEDED,
                &done.message,
                revision,
            );
        }
    }

    fn notify(
        &self,
        cfg: &Config,
        event: NotifyEvent,
        reason: &str,
        message: &str,
        revision: Option<String>,
    ) {
        if cfg.notifications.is_empty() {
            return;
        }
        let source = match self.key.kind {
            Kind::Source => Some(self.key.name.as_str()),
            _ => cfg.source_of(&self.key),
        };
        let commit_url = source
            .and_then(|s| cfg.source(s))
            .filter(|s| matches!(s.kind, crate::config::SourceKind::Git { .. }))
            .zip(revision.as_deref())
            .and_then(|(s, rev)| notify::commit_url(s.kind.url(), rev));
        let e = notify::Event {
            kind: self.key.kind,
            name: self.key.name.clone(),
            event,
            severity: if event == NotifyEvent::Failure {
                notify::Severity::Error
            } else {
                notify::Severity::Info
            },
            reason: reason.to_string(),
            message: message.to_string(),
            revision,
            commit_url,
            at: jiff::Timestamp::now(),
        };
        self.agent.shared.notifier.send(cfg, &e);
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
                let charts: Vec<&crate::config::ChartRef> = cfg
                    .apps
                    .iter()
                    .filter(|a| a.source.value == name)
                    .filter_map(|a| a.helm.chart.as_ref())
                    .collect();
                reconcile::source(src, &cfg.agent.state_dir, &charts).await
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
                    let _ = self
                        .agent
                        .trigger(&Key::new(Kind::Source, a.source.as_str()), Trigger::Input);
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

/// Completes when this replica no longer holds `key` (never without an
/// election).
async fn lost(held: &mut watch::Receiver<leader::Held>, key: &Key) {
    loop {
        if !leader::owns(&held.borrow_and_update(), key) {
            return;
        }
        if held.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
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
