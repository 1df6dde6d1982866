//! What the agent knows about itself and each object, as served by
//! `/api/status` and `/metrics`. The JSON shape is a documented contract
//! (docs/cli.md, `mooring status --format json`): add fields, never rename.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::apply::Summary;
use crate::config::Kind;

/// Where an object stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Declared, not yet run.
    Pending,
    /// Waiting for an input: its source's artifact, or an app it depends on.
    Waiting,
    Reconciling,
    Ready,
    /// The last run failed and will be retried with backoff.
    Failed,
    /// The last run failed in a way retrying cannot fix; waits until its
    /// inputs change (config, source revision) or a manual reconcile.
    Stalled,
    Suspended,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Pending,
        State::Waiting,
        State::Reconciling,
        State::Ready,
        State::Failed,
        State::Stalled,
        State::Suspended,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Waiting => "waiting",
            State::Reconciling => "reconciling",
            State::Ready => "ready",
            State::Failed => "failed",
            State::Stalled => "stalled",
            State::Suspended => "suspended",
        }
    }
}

/// Why a run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Trigger {
    /// The interval passed (or a retry's backoff).
    Timer,
    /// An input changed: the source's artifact, a dependency, a pick.
    Input,
    /// `mooring reconcile` or `POST /api/reconcile/…`.
    Manual,
    /// The object is new or its definition changed (a reload, a resume).
    Config,
    /// A receiver's valid delivery (`POST /hooks/NAME`).
    Webhook,
    /// Someone changed or deleted an object the app applied (seen by a
    /// watch).
    Drift,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Timer => "timer",
            Trigger::Input => "input",
            Trigger::Manual => "manual",
            Trigger::Config => "config",
            Trigger::Webhook => "webhook",
            Trigger::Drift => "drift",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suspended {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub until: Option<jiff::Timestamp>,
}

/// One object's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectStatus {
    pub kind: Kind,
    pub name: String,
    pub state: State,
    /// Why it is in that state: a [`crate::reason::Reason`].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// A one-line account of the last run.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    /// Source: the fetched revision. App: the source revision last applied.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_run: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_success: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_run: Option<jiff::Timestamp>,
    /// Failures in a row; 0 after a success.
    pub failures: u32,
    /// Runs since the agent started.
    pub runs: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suspended: Option<Suspended>,
    /// The config generation whose definition of this object is running.
    pub generation: u64,
    /// Apps: what the last apply did.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub applied: Option<Summary>,
    /// Apps on named clusters: where each stands, the clusters it lists
    /// first, then those dropped from the list and not yet pruned.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub clusters: Vec<ClusterStatus>,
    /// Sources: the artifact directory and its checksum.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artifact: Option<ArtifactStatus>,
    /// Why the last (or current) run started.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trigger: Option<Trigger>,
    /// What the object reads: its source, the apps it depends on, the
    /// image policies of an automation (`KIND/NAME`).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub inputs: Vec<String>,
    /// With leader election: the replica that reconciles this object when
    /// it is another one (the holder of its shard, as last seen).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub owner: Option<String>,
    /// The last [`EVENTS_KEPT`] things worth telling, oldest first.
    #[serde(default)]
    pub events: Vec<Event>,
}

/// How many events each object keeps; older ones are dropped.
pub const EVENTS_KEPT: usize = 20;

/// Something that happened to an object: a run's result, a wait for an
/// input, a suspension or its end. The same event again (same reason,
/// message and revision) right after it is counted, not added, as
/// Kubernetes counts its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it first happened.
    pub time: jiff::Timestamp,
    /// A [`crate::reason::Reason`], or `Resumed`.
    pub reason: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revision: Option<String>,
    /// Why the run that gave it started (events of runs only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trigger: Option<Trigger>,
    /// How many times it happened in a row.
    pub count: u64,
    /// When it last happened, once it happened again.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_time: Option<jiff::Timestamp>,
}

impl Event {
    pub fn new(
        time: jiff::Timestamp,
        reason: &str,
        message: &str,
        revision: Option<String>,
        trigger: Option<Trigger>,
    ) -> Event {
        Event {
            time,
            reason: reason.to_string(),
            message: message.to_string(),
            revision,
            trigger,
            count: 1,
            last_time: None,
        }
    }

    /// When it last happened.
    pub fn last_seen(&self) -> jiff::Timestamp {
        self.last_time.unwrap_or(self.time)
    }
}

/// One cluster of an app, after the app's last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// The `cluster` name; `None`: the default connection (in-cluster
    /// config or `$KUBECONFIG`).
    pub cluster: Option<String>,
    /// `ready`, `failed` (retried) or `stalled`.
    pub state: State,
    /// The revision last applied there (kept across restarts).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub revision: Option<String>,
    /// What the last run did there, in one line.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub applied: Option<Summary>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    /// No longer in the app's list: its objects there are pruned (with
    /// `prune`) or left.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub dropped: bool,
}

impl ClusterStatus {
    /// The cluster's name as shown: the default one is `(default)`.
    pub fn shown(&self) -> &str {
        self.cluster.as_deref().unwrap_or("(default)")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactStatus {
    pub path: String,
    pub checksum: String,
}

impl ObjectStatus {
    pub fn new(kind: Kind, name: &str, generation: u64) -> ObjectStatus {
        ObjectStatus {
            kind,
            name: name.to_string(),
            state: State::Pending,
            reason: None,
            message: None,
            revision: None,
            last_error: None,
            last_run: None,
            last_success: None,
            next_run: None,
            failures: 0,
            runs: 0,
            suspended: None,
            generation,
            applied: None,
            clusters: Vec::new(),
            artifact: None,
            trigger: None,
            inputs: Vec::new(),
            owner: None,
            events: Vec::new(),
        }
    }

    /// Keep `event`: counted into the last one if it is the same, else
    /// added (dropping the oldest beyond [`EVENTS_KEPT`]).
    pub fn record(&mut self, event: Event) {
        if let Some(last) = self.events.last_mut()
            && (&last.reason, &last.message, &last.revision)
                == (&event.reason, &event.message, &event.revision)
        {
            last.count += 1;
            last.last_time = Some(event.time);
            if event.trigger.is_some() {
                last.trigger = event.trigger;
            }
            return;
        }
        if self.events.len() >= EVENTS_KEPT {
            self.events.remove(0);
        }
        self.events.push(event);
    }
}

/// The outcome of the last attempt to load the config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reload {
    /// `ok` or `failed`.
    pub result: String,
    pub at: jiff::Timestamp,
    /// Rendered diagnostics (errors and warnings), colour-free.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub diagnostics: Option<String>,
    /// The diagnostics as data (the `validate --format json` shape).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub problems: Option<serde_json::Value>,
    /// Changed settings that take effect only after a restart.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub restart_needed: Vec<String>,
}

/// The whole `/api/status` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub version: String,
    pub config: String,
    pub generation: u64,
    pub started: jiff::Timestamp,
    pub last_reload: Reload,
    /// With `leader-election`: this replica's role.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub leader_election: Option<super::leader::LeaderStatus>,
    pub objects: Vec<ObjectStatus>,
    /// What each receiver has seen.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub receivers: Vec<ReceiverStatus>,
    /// What each notification has posted.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notifications: Vec<crate::notify::NotifyStatus>,
}

/// One receiver's deliveries since the agent started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReceiverStatus {
    pub name: String,
    /// Valid deliveries that made objects reconcile.
    pub accepted: u64,
    /// Valid deliveries whose event did not concern any object.
    pub ignored: u64,
    /// Deliveries seen before (same delivery id): answered, not run again.
    pub duplicates: u64,
    /// Refused: bad signature or token, too large, too many.
    pub rejected: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_delivery: Option<jiff::Timestamp>,
    /// Why the last refused request was refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_rejection: Option<String>,
}

/// Prometheus metrics. Counters and histograms are updated as things
/// happen; per-state gauges are computed from status at scrape time.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<Vec<(String, String)>, Counter>,
    durations: Family<Vec<(String, String)>, Histogram>,
    last_success: Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>,
    objects: Family<Vec<(String, String)>, Gauge>,
    suspended: Family<Vec<(String, String)>, Gauge>,
    generation: Gauge,
    reload_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mooring");
        let reconciles = Family::<Vec<(String, String)>, Counter>::default();
        let durations = Family::<Vec<(String, String)>, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])
        });
        let last_success = Family::<Vec<(String, String)>, Gauge<f64, AtomicU64>>::default();
        let objects = Family::<Vec<(String, String)>, Gauge>::default();
        let suspended = Family::<Vec<(String, String)>, Gauge>::default();
        let generation = Gauge::default();
        let reload_failures = Counter::default();
        registry.register(
            "reconciles",
            "Reconcile runs by kind and result (success, failure)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time a reconcile run took, by kind",
            durations.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last successful reconcile of each object",
            last_success.clone(),
        );
        registry.register("objects", "Objects by kind and state", objects.clone());
        registry.register(
            "suspended_objects",
            "Objects that are suspended, by kind",
            suspended.clone(),
        );
        registry.register(
            "config_generation",
            "Generation of the running config; grows with every applied reload",
            generation.clone(),
        );
        registry.register(
            "config_reload_failures",
            "Reloads that failed (invalid or unreadable file)",
            reload_failures.clone(),
        );
        Metrics {
            registry,
            reconciles,
            durations,
            last_success,
            objects,
            suspended,
            generation,
            reload_failures,
        }
    }

    pub fn record_run(&self, kind: Kind, name: &str, ok: bool, seconds: f64, at: jiff::Timestamp) {
        let result = if ok { "success" } else { "failure" };
        self.reconciles
            .get_or_create(&labels(&[("kind", kind.as_str()), ("result", result)]))
            .inc();
        self.durations
            .get_or_create(&labels(&[("kind", kind.as_str())]))
            .observe(seconds);
        if ok {
            let unix = at.as_millisecond() as f64 / 1000.0;
            self.last_success
                .get_or_create(&labels(&[("kind", kind.as_str()), ("name", name)]))
                .set(unix);
        }
    }

    pub fn forget(&self, kind: Kind, name: &str) {
        self.last_success
            .remove(&labels(&[("kind", kind.as_str()), ("name", name)]));
    }

    pub fn reload_failed(&self) {
        self.reload_failures.inc();
    }

    /// The text exposition, with gauges refreshed from `report`.
    pub fn render(&self, report: &Report) -> String {
        self.generation.set(report.generation as i64);
        for kind in Kind::ALL {
            let of_kind = || report.objects.iter().filter(move |o| o.kind == kind);
            for state in State::ALL {
                let n = of_kind().filter(|o| o.state == state).count();
                self.objects
                    .get_or_create(&labels(&[("kind", kind.as_str()), ("state", state.as_str())]))
                    .set(n as i64);
            }
            let n = of_kind().filter(|o| o.suspended.is_some()).count();
            self.suspended
                .get_or_create(&labels(&[("kind", kind.as_str())]))
                .set(n as i64);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s as i64).expect("time")
    }

    #[test]
    fn the_same_event_again_is_counted_and_others_are_added() {
        let mut st = ObjectStatus::new(Kind::App, "web", 1);
        st.record(Event::new(
            at(0),
            "FetchFailed",
            "no",
            None,
            Some(Trigger::Config),
        ));
        st.record(Event::new(at(5), "FetchFailed", "no", None, Some(Trigger::Timer)));
        st.record(Event::new(at(9), "FetchFailed", "no", None, Some(Trigger::Timer)));
        assert_eq!(st.events.len(), 1);
        let e = &st.events[0];
        assert_eq!(
            (e.count, e.time, e.last_time, e.trigger),
            (3, at(0), Some(at(9)), Some(Trigger::Timer))
        );
        // Another revision is another event, even with the same message.
        st.record(Event::new(at(10), "FetchFailed", "no", Some("r2".into()), None));
        st.record(Event::new(at(11), "Succeeded", "ok", Some("r2".into()), None));
        st.record(Event::new(at(12), "FetchFailed", "no", None, None));
        assert_eq!(
            st.events
                .iter()
                .map(|e| (e.reason.as_str(), e.count))
                .collect::<Vec<_>>(),
            [
                ("FetchFailed", 3),
                ("FetchFailed", 1),
                ("Succeeded", 1),
                ("FetchFailed", 1)
            ]
        );
        let json = serde_json::to_value(&st.events[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"time": at(0).to_string(), "reason": "FetchFailed", "message": "no",
                "trigger": "timer", "count": 3, "last_time": at(9).to_string()})
        );
    }

    #[test]
    fn only_the_last_events_are_kept() {
        let mut st = ObjectStatus::new(Kind::Source, "s", 1);
        for i in 0..(EVENTS_KEPT as u64 + 5) {
            st.record(Event::new(at(i), "Succeeded", &format!("run {i}"), None, None));
        }
        assert_eq!(st.events.len(), EVENTS_KEPT);
        assert_eq!(st.events[0].message, "run 5");
        assert_eq!(
            st.events[EVENTS_KEPT - 1].message,
            format!("run {}", EVENTS_KEPT + 4)
        );
    }
}
