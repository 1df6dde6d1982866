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
    /// Sources: the artifact directory and its checksum.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub artifact: Option<ArtifactStatus>,
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
            artifact: None,
        }
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
    pub objects: Vec<ObjectStatus>,
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
