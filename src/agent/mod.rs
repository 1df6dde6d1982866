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
//! A task's loop is glue: `decide` (pure: suspended, wait for inputs,
//! sleep, standby, or run with its [`Trigger`]) picks the next step from
//! what the task knows and sees, and `Task::record` records a run's result
//! (status and its event, metrics, the log line, notifications, what
//! readers see). Each object keeps its last [`status::EVENTS_KEPT`] events.
//!
//! State changes (a failure, a recovery, a push, an apply that changed
//! something) are handed to the [`crate::notify::Notifier`],
//! which never makes a task wait.
//! With `leader-election` ([`leader`]), only the objects of the leases this
//! replica holds run; the others wait as `standby`.

pub mod leader;
pub mod placed;
pub mod reconcile;
pub mod run;
pub mod status;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument as _;

use crate::apply::cluster::Clusters;
use crate::backoff;
use crate::config::diff::{ConfigDiff, Key};
use crate::config::graph::Graph;
use crate::config::{Config, Kind, NotifyEvent};
use crate::image::Selection;
use crate::notify::{self, Notifier};
use crate::reason::Reason;
use crate::source::Artifact;
pub use status::Trigger;
use status::{
    ArtifactStatus, Event, Metrics, ObjectStatus, ReceiverStatus, Reload, Report, State, Suspended,
};

/// The reason of the event that says a suspension ended; every other
/// event's reason is a [`Reason`].
pub const RESUMED: &str = "Resumed";

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
    clusters: Clusters,
    /// What the clusters' watches report, until a task follows it.
    drift: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<crate::apply::watch::Drift>>>,
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
    /// Why the last run failed.
    error: Option<String>,
    /// Why it waits for its own inputs, while it does.
    blocked: Option<String>,
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
            .map(|le| Arc::new(vec![false; le.shards.max(1) as usize]));
        let (held, _) = watch::channel(held);
        // A running agent watches what it applied; a single pass does not.
        let (clusters, drift) = if mode == Mode::Run {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Clusters::watching(tx), Some(rx))
        } else {
            (Clusters::default(), None)
        };
        Agent {
            shared: Arc::new(Shared {
                config_path,
                started: jiff::Timestamp::now(),
                mode,
                metrics: Metrics::new(),
                limit: Arc::new(Semaphore::new(permits as usize)),
                shutdown,
                tasks: Mutex::new(JoinSet::new()),
                clusters,
                drift: Mutex::new(drift),
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
        drop(inner);
        self.follow_drift();
    }

    /// Run an app again as soon as a watch sees someone change or delete
    /// one of its objects (a suspended app is left alone).
    fn follow_drift(&self) {
        let Some(mut drift) = lock(&self.shared.drift).take() else {
            return;
        };
        let agent = self.clone();
        let mut stop = self.shared.shutdown.subscribe();
        lock(&self.shared.tasks).spawn(async move {
            loop {
                let d = tokio::select! {
                    d = drift.recv() => d,
                    _ = stop.changed() => None,
                };
                let Some(d) = d else { break };
                let key = Key::new(Kind::App, d.app.as_str());
                if agent.trigger(&key, Trigger::Drift).is_ok() {
                    tracing::info!(object = %key, "{} changed outside git: applying the app again", d.id);
                }
            }
        });
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

    /// Reload: make `config` the running one, starting, restarting and
    /// stopping only what the diff names. Returns the diff (already made).
    pub fn reload(&self, config: Config, warnings: Option<(String, serde_json::Value)>) -> ConfigDiff {
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

    /// Ask for a run of `key` now: a manual reconcile (`mooring reconcile`).
    pub fn run_now(&self, key: &Key) -> Result<(), RefuseReason> {
        self.ask(key, Trigger::Manual)
    }

    /// Ask for a run of `key` now, for `trigger`'s reason.
    pub fn trigger(&self, key: &Key, trigger: Trigger) -> Result<(), RefuseReason> {
        self.request(key, trigger, false)
    }

    /// Ask for a run of `key` from outside (a receiver, `mooring
    /// reconcile`): with leader election it runs on the replicas that hold
    /// its shards, here only if this one does.
    pub fn ask(&self, key: &Key, trigger: Trigger) -> Result<(), RefuseReason> {
        self.request(key, trigger, true)
    }

    fn request(&self, key: &Key, trigger: Trigger, forward: bool) -> Result<(), RefuseReason> {
        let inner = lock(&self.shared.inner);
        let Some(h) = inner.objects.get(key) else {
            return Err(RefuseReason::NotFound(key.clone()));
        };
        if lock(&h.status).state == State::Suspended {
            return Err(RefuseReason::Suspended(key.clone()));
        }
        if forward && !self.forward(&inner.config, key, trigger) {
            return Ok(());
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
            let requested = |keys: Vec<(Key, Trigger)>| {
                for (key, trigger) in keys {
                    tracing::info!(object = %key, "running what another replica was asked");
                    let _ = agent.trigger(&key, trigger);
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

    /// Hand a run of `key` to the other replicas that hold its shards
    /// (leader election): it goes through their Leases and runs there with
    /// `trigger`. Whether this replica runs it too.
    fn forward(&self, cfg: &Config, key: &Key, trigger: Trigger) -> bool {
        let held = self.shared.held.borrow().clone();
        let mut outbox = lock(&self.shared.outbox);
        for shard in leader::elsewhere(&held, cfg, key) {
            outbox.push(leader::Request {
                shard,
                key: key.clone(),
                trigger,
            });
        }
        leader::owns(&held, cfg, key)
    }

    pub fn report(&self) -> Report {
        let election = self.election();
        let held = self.shared.held.borrow().clone();
        let inner = lock(&self.shared.inner);
        Report {
            version: env!("CARGO_PKG_VERSION").to_string(),
            config: self.shared.config_path.display().to_string(),
            generation: inner.generation,
            started: self.shared.started,
            last_reload: inner.last_reload.clone(),
            leader_election: election.clone(),
            // In the order of the config file.
            objects: inner
                .config
                .keys()
                .filter_map(|k| {
                    let mut st = lock(&inner.objects.get(&k)?.status).clone();
                    st.inputs = inner.graph.inputs(&k).map(Key::to_string).collect();
                    st.owner = election.as_ref().and_then(|e| e.owner(&held, &inner.config, &k));
                    Some(st)
                })
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

impl Inputs {
    fn none() -> Inputs {
        Inputs {
            artifact: None,
            values: Vec::new(),
            policies: Default::default(),
            revision: None,
        }
    }
}

enum Gate {
    Ready(Inputs),
    /// Not yet; `failed` says an input has run and failed (so in a single
    /// pass it never will be ready); `told`, that the wait is worth an
    /// event: an input failed, is suspended or waits in turn (not merely
    /// the first run of an input, as at the start).
    Wait {
        reason: Reason,
        message: String,
        failed: bool,
        told: bool,
    },
}

/// What a task remembers between its steps.
#[derive(Debug, Clone, PartialEq)]
struct Schedule {
    /// When the next timed run is due; `None` while stalled.
    due: Option<Instant>,
    /// The input revision of the last run; `None` before the first.
    last_input: Option<Option<String>>,
    /// Failures in a row.
    failures: u32,
    /// The object is new, changed or resumed: its next run says so.
    reconfigured: bool,
    /// The last failure's reason and message, until a success.
    failing: Option<(String, String)>,
}

impl Schedule {
    fn new(now: Instant) -> Schedule {
        Schedule {
            due: Some(now),
            last_input: None,
            failures: 0,
            reconfigured: true,
            failing: None,
        }
    }

    /// The object's definition changed: run at once, as a new object.
    fn reconfigure(&mut self, now: Instant) {
        self.due = Some(now);
        self.failures = 0;
        self.reconfigured = true;
    }
}

/// What a task's next step is decided from; the task gathers it.
struct Facts {
    mode: Mode,
    /// The object's `suspend` node, if any (it may have expired).
    suspension: Option<Suspended>,
    /// Whether its inputs are ready.
    gate: Gate,
    /// A run asked for (manual, webhook, a push) and not done yet.
    forced: Option<Trigger>,
    /// This replica holds the object (always, without leader election).
    held: bool,
}

/// A task's next step.
enum Step {
    /// A suspension is in force: no new runs until it ends.
    Suspended(Suspended),
    /// An input is not ready: wait until one changes (`told`: see [`Gate::Wait`]).
    Wait {
        reason: Reason,
        message: String,
        told: bool,
    },
    /// In a single pass, an input failed: this object fails without running.
    InputFailed { reason: Reason, message: String },
    /// Nothing is due: sleep until `until` (`None`: until woken).
    Sleep { until: Option<Instant> },
    /// A run is due, but another replica holds the object.
    Standby,
    /// Run now.
    Run { trigger: Trigger, inputs: Inputs },
}

/// The next step of a task, from what it knows (`sched`), what it sees
/// (`facts`) and the time (`now` on the wall clock, `clock` on the
/// monotonic one). No I/O.
fn decide(facts: Facts, sched: &Schedule, now: jiff::Timestamp, clock: Instant) -> Step {
    if let Some(s) = facts.suspension
        && s.until.is_none_or(|u| u > now)
    {
        return Step::Suspended(s);
    }
    let inputs = match facts.gate {
        Gate::Ready(inputs) => inputs,
        Gate::Wait {
            reason,
            message,
            failed: true,
            ..
        } if facts.mode == Mode::Once => return Step::InputFailed { reason, message },
        Gate::Wait {
            reason,
            message,
            told,
            ..
        } => {
            return Step::Wait {
                reason,
                message,
                told,
            };
        }
    };
    let timed = sched.due.is_some_and(|d| d <= clock);
    let new_input = sched.last_input.as_ref() != Some(&inputs.revision);
    let trigger = match facts.forced {
        Some(t) => t,
        None if sched.reconfigured && (timed || new_input) => Trigger::Config,
        None if new_input => Trigger::Input,
        None if timed => Trigger::Timer,
        None => return Step::Sleep { until: sched.due },
    };
    if !facts.held {
        return Step::Standby;
    }
    Step::Run { trigger, inputs }
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

/// What ended a [`Task::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Woke {
    /// What the step waited for.
    Other,
    /// The object's definition changed.
    Changed,
    /// The object was removed or the agent stops.
    Stop,
}

/// A run in flight: what [`Task::record`] needs of its start.
struct Attempt {
    trigger: Trigger,
    inputs: Inputs,
    at: jiff::Timestamp,
    started: Instant,
    span: tracing::Span,
}

impl Task {
    /// Decide the next step, take it, repeat; until the object is removed,
    /// the agent stops, or (in a single pass) the object has run.
    async fn run(mut self) {
        let mode = self.agent.shared.mode;
        let mut shutdown = self.agent.shared.shutdown.subscribe();
        let mut held = self.agent.shared.held.subscribe();
        let mut sched = Schedule::new(Instant::now());
        loop {
            let Some(cfg) = self.spec.borrow_and_update().clone() else {
                break;
            };
            if *shutdown.borrow() {
                break;
            }
            let facts = Facts {
                mode,
                suspension: cfg.suspension(self.key.kind, &self.key.name).map(|s| Suspended {
                    reason: s.reason.clone(),
                    until: s.until.as_ref().map(|u| u.value),
                }),
                gate: self.gate(&cfg),
                forced: *lock(&self.forced),
                held: leader::owns(&held.borrow_and_update(), &cfg, &self.key),
            };
            let step = decide(facts, &sched, jiff::Timestamp::now(), Instant::now());
            if !matches!(step, Step::Suspended(_)) {
                self.resumed();
            }
            // Waiting never pins a config: reloads free the old ones.
            let (trigger, inputs) = match step {
                Step::Run { trigger, inputs } => (trigger, inputs),
                Step::Suspended(s) => {
                    self.suspended(&s);
                    if mode == Mode::Once {
                        lock(&self.output).suspended = true;
                        self.agent.wake_readers(&self.key);
                        break;
                    }
                    let expiry = s.until.map(|u| {
                        let left = jiff::Timestamp::now().duration_until(u);
                        Duration::try_from(left).unwrap_or(Duration::ZERO)
                    });
                    drop(cfg);
                    if self.wait(&mut shutdown, sleep_opt(expiry)).await == Woke::Stop {
                        break;
                    }
                    // Resumed (or the object changed): run at once.
                    sched.reconfigure(Instant::now());
                    sched.last_input = None;
                    continue;
                }
                Step::InputFailed { reason, message } => {
                    self.enter(State::Failed, reason, &message, true);
                    self.set(|st| st.last_error = Some(message.clone()));
                    self.publish(Err(message));
                    break;
                }
                Step::Wait {
                    reason,
                    message,
                    told,
                } => {
                    self.enter(State::Waiting, reason, &message, told);
                    self.blocked(message);
                    drop(cfg);
                    let wake = self.wake.clone();
                    match self
                        .wait(&mut shutdown, async {
                            wake.notified().await;
                            true
                        })
                        .await
                    {
                        Woke::Stop => break,
                        Woke::Changed => sched.reconfigure(Instant::now()),
                        Woke::Other => {}
                    }
                    continue;
                }
                Step::Sleep { until } => {
                    let next = until.map(|d| {
                        let left = d.saturating_duration_since(Instant::now());
                        jiff::Timestamp::now() + jiff::SignedDuration::try_from(left).unwrap_or_default()
                    });
                    self.set(|st| st.next_run = next);
                    drop(cfg);
                    let wake = self.wake.clone();
                    let woken = async {
                        tokio::select! {
                            _ = sleep_until_opt(until) => {},
                            _ = wake.notified() => {},
                        }
                        true
                    };
                    match self.wait(&mut shutdown, woken).await {
                        Woke::Stop => break,
                        Woke::Changed => sched.reconfigure(Instant::now()),
                        Woke::Other => {}
                    }
                    continue;
                }
                // The run stays due, with its trigger, until this replica
                // holds the object.
                Step::Standby => {
                    let sharded = cfg.agent.leader_election.as_ref().is_some_and(|le| le.shards > 1);
                    self.enter(
                        State::Waiting,
                        Reason::Standby,
                        if sharded {
                            "another replica holds the shard of this object: it reconciles"
                        } else {
                            "this replica is a standby: the leader reconciles"
                        },
                        true,
                    );
                    drop(cfg);
                    let moved = async { held.changed().await.is_ok() };
                    match self.wait(&mut shutdown, moved).await {
                        Woke::Stop => break,
                        Woke::Changed => sched.reconfigured = true,
                        Woke::Other => {}
                    }
                    continue;
                }
            };
            lock(&self.forced).take();
            let Some((attempt, result)) = self
                .attempt(&cfg, trigger, inputs, &mut held, &mut shutdown)
                .await
            else {
                break;
            };
            sched.reconfigured = false;
            let Some(result) = result else {
                tracing::warn!(kind = %self.key.kind, object = %self.key.name, "run cancelled: this replica lost the lease");
                self.set(|st| st.state = State::Waiting);
                continue;
            };
            self.record(&cfg, &attempt, result, &mut sched);
            if mode == Mode::Once {
                break;
            }
        }
    }

    /// Wait for `other` (`false`: stop), a change of the object's
    /// definition, or the agent's shutdown.
    async fn wait(
        &mut self,
        shutdown: &mut watch::Receiver<bool>,
        other: impl Future<Output = bool>,
    ) -> Woke {
        tokio::select! {
            go_on = other => if go_on { Woke::Other } else { Woke::Stop },
            changed = self.spec.changed() => if changed.is_ok() { Woke::Changed } else { Woke::Stop },
            _ = shutdown.changed() => Woke::Stop,
        }
    }

    /// Run the object within the global limit. `None` when the agent
    /// stops before a permit is free; a result of `None` when this replica
    /// lost the lease meanwhile (the run was cancelled: another replica
    /// takes over).
    async fn attempt(
        &self,
        cfg: &Config,
        trigger: Trigger,
        inputs: Inputs,
        held: &mut watch::Receiver<leader::Held>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Option<(Attempt, Option<Result<reconcile::Done, reconcile::Failure>>)> {
        let limit = self.agent.shared.limit.clone();
        let permit = tokio::select! {
            p = limit.acquire_owned() => p.ok()?,
            _ = shutdown.changed() => return None,
        };
        let attempt = Attempt {
            trigger,
            at: jiff::Timestamp::now(),
            started: Instant::now(),
            span: tracing::info_span!(
                "reconcile",
                kind = %self.key.kind,
                object = %self.key.name,
                trigger = trigger.as_str(),
                revision = tracing::field::Empty,
            ),
            inputs,
        };
        self.set(|st| {
            st.state = State::Reconciling;
            st.next_run = None;
            st.trigger = Some(trigger);
        });
        if let Some(rev) = &attempt.inputs.revision {
            attempt.span.record("revision", rev.as_str());
        }
        let run = self
            .reconcile(cfg, &attempt.inputs)
            .instrument(attempt.span.clone());
        let result = tokio::select! {
            r = run => Some(r),
            () = lost(held, cfg, &self.key) => None,
        };
        drop(permit);
        Some((attempt, result))
    }

    /// Record a run's result: metrics, status and its event, the log line,
    /// notifications, and what the objects that read this one see; plan
    /// the next run in `sched`.
    fn record(
        &self,
        cfg: &Config,
        attempt: &Attempt,
        result: Result<reconcile::Done, reconcile::Failure>,
        sched: &mut Schedule,
    ) {
        let mode = self.agent.shared.mode;
        let interval = interval(cfg, &self.key);
        let seconds = attempt.started.elapsed().as_secs_f64();
        let at = attempt.at;
        let inputs = &attempt.inputs;
        self.agent
            .shared
            .metrics
            .record_run(self.key.kind, &self.key.name, result.is_ok(), seconds, at);
        sched.last_input = Some(inputs.revision.clone());
        let _enter = attempt.span.enter();
        match result {
            Ok(done) => {
                sched.failures = 0;
                let wait = backoff::after_success(interval);
                sched.due = Some(Instant::now() + wait);
                if let (None, Some(rev)) = (&inputs.revision, &done.revision) {
                    attempt.span.record("revision", rev.as_str());
                }
                tracing::info!(duration_ms = (seconds * 1000.0) as u64, "{}", done.message);
                let revision = done.revision.clone().or_else(|| inputs.revision.clone());
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
                    st.record(Event::new(
                        jiff::Timestamp::now(),
                        Reason::Succeeded.as_str(),
                        &done.message,
                        revision,
                        Some(attempt.trigger),
                    ));
                });
                if mode == Mode::Run {
                    self.notify_success(cfg, &done, sched.failing.take().is_some(), inputs);
                }
                sched.failing = None;
                let good = done.revision.clone().map(|revision| Good {
                    revision,
                    artifact: done.artifact.clone(),
                    selection: done.selection.clone(),
                });
                self.publish(Ok(good));
            }
            Err(f) => {
                sched.failures += 1;
                let failures = sched.failures;
                let wait = f.retryable.then(|| {
                    let b = backoff::after_failure(failures, interval);
                    f.retry_after.map_or(b, |r| b.max(r))
                });
                sched.due = wait.map(|w| Instant::now() + w);
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
                    st.record(Event::new(
                        jiff::Timestamp::now(),
                        f.reason.as_str(),
                        &f.message,
                        inputs.revision.clone(),
                        Some(attempt.trigger),
                    ));
                });
                let this = (f.reason.to_string(), f.message.clone());
                if mode == Mode::Run && sched.failing.as_ref() != Some(&this) {
                    let revision = inputs.revision.clone();
                    self.notify(cfg, NotifyEvent::Failure, f.reason.as_str(), &f.message, revision);
                }
                sched.failing = Some(this);
                self.publish(Err(f.message));
            }
        }
    }

    fn set(&self, f: impl FnOnce(&mut ObjectStatus)) {
        f(&mut lock(&self.status));
    }

    /// Enter a state that is not a run's result (waiting, standby, an
    /// input failed): an event when it is news and `told`.
    fn enter(&self, state: State, reason: Reason, message: &str, told: bool) {
        self.set(|st| {
            let news = told
                && (st.state != state
                    || st.reason.as_deref() != Some(reason.as_str())
                    || st.message.as_deref() != Some(message));
            st.state = state;
            st.reason = Some(reason.to_string());
            st.message = Some(message.to_string());
            st.next_run = None;
            if news {
                st.record(Event::new(
                    jiff::Timestamp::now(),
                    reason.as_str(),
                    message,
                    None,
                    None,
                ));
            }
        });
    }

    /// Show the suspension `s` in force: an event when it is news.
    fn suspended(&self, s: &Suspended) {
        self.set(|st| {
            if st.suspended.as_ref() != Some(s) {
                let mut message = match &s.reason {
                    Some(r) => format!("suspended: {r}"),
                    None => "suspended".to_string(),
                };
                if let Some(u) = s.until {
                    message.push_str(&format!(" (until {u})"));
                }
                st.record(Event::new(
                    jiff::Timestamp::now(),
                    Reason::Suspended.as_str(),
                    &message,
                    None,
                    None,
                ));
            }
            st.state = State::Suspended;
            st.reason = Some(Reason::Suspended.to_string());
            st.next_run = s.until;
            st.suspended = Some(s.clone());
        });
    }

    /// No suspension is in force: if one was, say it ended.
    fn resumed(&self) {
        self.set(|st| {
            if st.suspended.take().is_some() {
                st.record(Event::new(jiff::Timestamp::now(), RESUMED, "resumed", None, None));
            }
        });
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

    /// Record the outcome of a run for readers and wake them: what it
    /// produced, or why it failed.
    fn publish(&self, result: Result<Option<Good>, String>) {
        {
            let mut out = lock(&self.output);
            out.ran = true;
            out.blocked = None;
            match result {
                Ok(good) => {
                    if good.is_some() {
                        out.good = good;
                    }
                    out.failed = false;
                    out.error = None;
                }
                Err(e) => {
                    out.failed = true;
                    out.error = Some(e);
                }
            }
        }
        self.agent.wake_readers(&self.key);
    }

    /// Tell readers why this object waits, when that changed: they say it
    /// in turn.
    fn blocked(&self, message: String) {
        let changed = {
            let mut out = lock(&self.output);
            let changed = out.blocked.as_ref() != Some(&message);
            out.blocked = Some(message);
            changed
        };
        if changed {
            self.agent.wake_readers(&self.key);
        }
    }

    fn gate(&self, cfg: &Config) -> Gate {
        if self.key.kind == Kind::Automation {
            return self.gate_automation(cfg);
        }
        let Some(app) = (self.key.kind == Kind::App)
            .then(|| cfg.app(&self.key.name))
            .flatten()
        else {
            return Gate::Ready(Inputs::none());
        };
        for dep in &app.depends_on {
            let key = Key::new(Kind::App, dep.as_str());
            let out = self.agent.output(&key).unwrap_or_default();
            if out.suspended {
                return Gate::Wait {
                    reason: Reason::DependencyNotReady,
                    message: format!("{key} is suspended"),
                    failed: true,
                    told: true,
                };
            }
            if !out.ran || out.failed {
                return Gate::Wait {
                    reason: Reason::DependencyNotReady,
                    message: waiting_for(&key, &out),
                    failed: out.ran,
                    told: out.ran || out.blocked.is_some(),
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
                        told: true,
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
                        message: waiting_for(&key, &out),
                        failed: out.ran,
                        told: out.ran || out.blocked.is_some(),
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
                    told: false,
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
                let (placed, result) =
                    reconcile::app(cfg, &self.agent.shared.clusters, app, artifact, &inputs.values).await;
                self.set(|st| st.clusters = placed);
                result
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

/// Why a reader waits for `key`: its own error when it failed (already
/// free of secrets, as every status message is), or why it waits in turn.
fn waiting_for(key: &Key, out: &Output) -> String {
    if let Some(error) = out.error.as_deref().filter(|_| out.failed) {
        return format!("waiting for {key}: it failed: {error}");
    }
    match &out.blocked {
        Some(why) => format!("waiting for {key}: {why}"),
        None if key.kind == Kind::Source => format!("waiting for {key} to fetch an artifact"),
        None => format!("waiting for {key} to be ready"),
    }
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
async fn lost(held: &mut watch::Receiver<leader::Held>, cfg: &Config, key: &Key) {
    loop {
        if !leader::owns(&held.borrow_and_update(), cfg, key) {
            return;
        }
        if held.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn sleep_opt(d: Option<Duration>) -> bool {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
    true
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).expect("time")
    }

    fn ready(revision: &str) -> Gate {
        Gate::Ready(Inputs {
            revision: Some(revision.into()),
            ..Inputs::none()
        })
    }

    fn facts(gate: Gate) -> Facts {
        Facts {
            mode: Mode::Run,
            suspension: None,
            gate,
            forced: None,
            held: true,
        }
    }

    /// A task that ran on `r1` and is next due at `due`.
    fn after_a_run(due: Instant) -> Schedule {
        Schedule {
            due: Some(due),
            last_input: Some(Some("r1".into())),
            failures: 0,
            reconfigured: false,
            failing: None,
        }
    }

    /// The step, in words (the inputs of a run left out).
    fn step(facts: Facts, sched: &Schedule, clock: Instant) -> String {
        match decide(facts, sched, wall(0), clock) {
            Step::Suspended(s) => format!(
                "suspended {:?} until {:?}",
                s.reason,
                s.until.map(|u| u.to_string())
            ),
            Step::Wait {
                reason,
                message,
                told,
            } => format!("wait {reason}: {message}{}", if told { " (told)" } else { "" }),
            Step::InputFailed { reason, message } => format!("fail {reason}: {message}"),
            Step::Sleep { until } => format!("sleep {:?}", until.map(|u| u.duration_since(clock))),
            Step::Standby => "standby".into(),
            Step::Run { trigger, inputs } => format!("run {} on {:?}", trigger.as_str(), inputs.revision),
        }
    }

    #[test]
    fn a_suspension_in_force_stops_runs_and_an_expired_one_does_not() {
        let now = Instant::now();
        let mut f = facts(ready("r1"));
        f.suspension = Some(Suspended {
            reason: Some("leak".into()),
            until: Some(wall(60)),
        });
        f.forced = Some(Trigger::Manual);
        assert_eq!(
            step(f, &Schedule::new(now), now),
            "suspended Some(\"leak\") until Some(\"2027-01-15T08:01:00Z\")"
        );
        let mut f = facts(ready("r1"));
        f.suspension = Some(Suspended {
            reason: None,
            until: None,
        });
        assert_eq!(step(f, &Schedule::new(now), now), "suspended None until None");
        // Expired (until is now or past): a run as of a new definition.
        let mut f = facts(ready("r1"));
        f.suspension = Some(Suspended {
            reason: None,
            until: Some(wall(0)),
        });
        assert_eq!(step(f, &Schedule::new(now), now), "run config on Some(\"r1\")");
    }

    #[test]
    fn inputs_not_ready_wait_and_fail_only_in_a_single_pass() {
        let now = Instant::now();
        let waiting = || Gate::Wait {
            reason: Reason::ArtifactNotReady,
            message: "waiting for source/s to fetch an artifact".into(),
            failed: false,
            told: false,
        };
        let failed = || Gate::Wait {
            reason: Reason::DependencyNotReady,
            message: "waiting for app/a: it failed: boom".into(),
            failed: true,
            told: true,
        };
        let sched = Schedule::new(now);
        assert_eq!(
            step(facts(waiting()), &sched, now),
            "wait ArtifactNotReady: waiting for source/s to fetch an artifact"
        );
        // While running, a failed input may recover: wait for it.
        assert_eq!(
            step(facts(failed()), &sched, now),
            "wait DependencyNotReady: waiting for app/a: it failed: boom (told)"
        );
        let once = |gate| Facts {
            mode: Mode::Once,
            ..facts(gate)
        };
        assert_eq!(
            step(once(failed()), &sched, now),
            "fail DependencyNotReady: waiting for app/a: it failed: boom"
        );
        assert_eq!(
            step(once(waiting()), &sched, now),
            "wait ArtifactNotReady: waiting for source/s to fetch an artifact"
        );
    }

    #[test]
    fn nothing_due_sleeps_until_the_next_run() {
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        assert_eq!(
            step(facts(ready("r1")), &after_a_run(later), now),
            "sleep Some(30s)"
        );
        // Stalled: no timed run, only a change wakes it.
        let stalled = Schedule {
            due: None,
            ..after_a_run(now)
        };
        assert_eq!(step(facts(ready("r1")), &stalled, now), "sleep None");
    }

    #[test]
    fn a_due_run_says_why() {
        let now = Instant::now();
        let later = now + Duration::from_secs(30);
        // New, changed or resumed: config, whether due by time or input.
        assert_eq!(
            step(facts(ready("r1")), &Schedule::new(now), now),
            "run config on Some(\"r1\")"
        );
        let reconfigured = Schedule {
            reconfigured: true,
            ..after_a_run(later)
        };
        assert_eq!(
            step(facts(ready("r2")), &reconfigured, now),
            "run config on Some(\"r2\")"
        );
        assert_eq!(step(facts(ready("r1")), &reconfigured, now), "sleep Some(30s)");
        // A new input revision before the interval passed.
        assert_eq!(
            step(facts(ready("r2")), &after_a_run(later), now),
            "run input on Some(\"r2\")"
        );
        // The interval (or a backoff) passed.
        assert_eq!(
            step(facts(ready("r1")), &after_a_run(now), now),
            "run timer on Some(\"r1\")"
        );
        // Asked for: whatever else holds, the run says who asked.
        for t in [Trigger::Manual, Trigger::Webhook, Trigger::Input] {
            let f = Facts {
                forced: Some(t),
                ..facts(ready("r2"))
            };
            assert_eq!(
                step(f, &reconfigured, now),
                format!("run {} on Some(\"r2\")", t.as_str())
            );
        }
    }

    #[test]
    fn a_standby_replica_does_not_run_what_is_due() {
        let now = Instant::now();
        let f = Facts {
            held: false,
            forced: Some(Trigger::Manual),
            ..facts(ready("r1"))
        };
        assert_eq!(step(f, &after_a_run(now), now), "standby");
        // Nothing due: it sleeps as a holder would.
        let f = Facts {
            held: false,
            ..facts(ready("r1"))
        };
        assert_eq!(
            step(f, &after_a_run(now + Duration::from_secs(5)), now),
            "sleep Some(5s)"
        );
    }

    #[test]
    fn a_reader_waiting_on_a_failed_input_is_told_its_error() {
        let key = Key::new(Kind::Source, "platform");
        let failed = Output {
            ran: true,
            failed: true,
            error: Some("authentication failed for https://git.example.com/p.git".into()),
            ..Output::default()
        };
        assert_eq!(
            waiting_for(&key, &failed),
            "waiting for source/platform: it failed: authentication failed for https://git.example.com/p.git"
        );
        assert_eq!(
            waiting_for(&key, &Output::default()),
            "waiting for source/platform to fetch an artifact"
        );
        let infra = Key::new(Kind::App, "infra");
        assert_eq!(
            waiting_for(&infra, &Output::default()),
            "waiting for app/infra to be ready"
        );
        let blocked = Output {
            blocked: Some("waiting for source/platform: it failed: no".into()),
            ..Output::default()
        };
        assert_eq!(
            waiting_for(&infra, &blocked),
            "waiting for app/infra: waiting for source/platform: it failed: no"
        );
    }
}
