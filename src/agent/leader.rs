//! Leader election for the pod form (`agent { leader-election … }`): takes
//! the agent's settings and a cluster, gives which objects this replica
//! may reconcile. A `coordination.k8s.io/v1` Lease names its holder; the
//! holder renews it, the others watch it age and take it over once it has
//! gone unrenewed for its whole duration — by their own clock (the time
//! they saw it last change), never the holder's, so clock skew does not
//! matter. Every write names the resourceVersion it read: of two standbys
//! taking over at once, one gets a conflict.
//!
//! Timing, as client-go's: with a lease of D, a leader that cannot renew
//! for two thirds of D stops (runs in flight are cancelled, no new one
//! starts) before any standby may take over at D; everyone looks again
//! every D/6. A leader that stops on SIGTERM gives the lease up, so a
//! standby takes over at its next look.
//!
//! Shards: objects are spread over N leases by a consistent hash of
//! `kind/name` ([`shard_of`]); a replica reconciles the objects of the
//! leases it holds. This agent has N = 1 (one lease, every
//! object); more leases extend [`Held`] without changing the tasks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::config::diff::Key;
use crate::config::{self, LeaderElection};

/// Which shards this replica holds, by index; `None` without leader
/// election (every object is this replica's).
pub type Held = Option<Arc<Vec<bool>>>;

/// Whether the holder of `held` reconciles `key`.
pub fn owns(held: &Held, key: &Key) -> bool {
    match held {
        None => true,
        Some(shards) => shards.get(shard_of(key, shards.len())).copied().unwrap_or(false),
    }
}

/// The shard of `key` among `n` (jump consistent hash: growing `n` by one
/// moves only a 1/n share of the objects).
pub fn shard_of(key: &Key, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    // FNV-1a of "kind/name": stable across runs and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        h = h.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b as f64 + 1.0) * ((1u64 << 31) as f64 / ((h >> 33) as f64 + 1.0))) as i64;
    }
    b.max(0) as usize
}

/// This replica's place, for `/api/status` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderStatus {
    pub role: Role,
    /// `namespace/name` of the Lease.
    pub lease: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// Who holds the Lease, as last read.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub holder: Option<String>,
    /// When this replica's current role began.
    pub since: jiff::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Leader,
    Standby,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Standby => "standby",
        }
    }
}

/// The timing derived from a lease duration (client-go's proportions).
#[derive(Debug, Clone, Copy)]
struct Timing {
    lease: Duration,
    /// A leader that has not renewed for this long stops.
    renew_deadline: Duration,
    /// How often everyone looks.
    retry: Duration,
}

impl Timing {
    fn of(lease: Duration) -> Timing {
        Timing {
            lease,
            renew_deadline: lease * 2 / 3,
            retry: lease / 6,
        }
    }
}

/// The identity this process writes into Leases: the host (the pod's)
/// name and a random suffix, unique per process.
pub fn identity() -> String {
    let mut random = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut random);
    }
    let suffix: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}_{suffix}", crate::notify::github::hostname())
}

/// The namespace of the Lease: configured, else the pod's own, else `default`.
fn namespace(le: &LeaderElection) -> String {
    le.namespace.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into())
    })
}

/// Reconcile requests received by a standby (a webhook), on their way to
/// the leader through the Lease: the standby adds them to its
/// [`REQUESTS`] annotation, the leader takes them out as it renews.
pub type Outbox = Arc<std::sync::Mutex<Vec<Key>>>;

/// The Lease annotation that carries requests from standbys to the leader.
pub const REQUESTS: &str = "mooring.dev/reconcile-requests";
/// Requests kept in the annotation at most (the oldest go first).
const MAX_REQUESTS: usize = 100;

/// Hold the election until `stop` says so: publish the shards held on
/// `held` and the status through `report`; while leading, hand the
/// requests standbys left in the Lease to `requested`; while standing by,
/// leave those of `outbox` there. Gives the lease up on stop.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    le: LeaderElection,
    cluster_def: Option<config::Cluster>,
    clusters: &crate::apply::cluster::Clusters,
    identity: String,
    held: watch::Sender<Held>,
    report: impl Fn(LeaderStatus),
    outbox: Outbox,
    requested: impl Fn(Vec<Key>),
    mut stop: watch::Receiver<bool>,
) {
    let timing = Timing::of(le.duration);
    let ns = namespace(&le);
    let mut status = LeaderStatus {
        role: Role::Standby,
        lease: format!("{ns}/{}", le.lease),
        identity: identity.clone(),
        holder: None,
        since: jiff::Timestamp::now(),
        last_error: None,
    };
    report(status.clone());
    let mut elector = Elector {
        name: le.lease.clone(),
        identity,
        timing,
        observed: None,
        last_renew: None,
        outbox,
    };
    let mut api: Option<Api<Lease>> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let started = Instant::now();
        let outcome = match &api {
            Some(api) => {
                tokio::time::timeout(timing.retry.max(Duration::from_millis(500)), elector.step(api))
                    .await
                    .unwrap_or_else(|_| Err("the API server did not answer in time".into()))
            }
            None => match clusters.get(cluster_def.as_ref()).await {
                Ok(c) => {
                    api = Some(Api::namespaced(c.client().clone(), &ns));
                    continue;
                }
                Err(e) => Err(e.to_string()),
            },
        };
        let leading = match outcome {
            Ok(step) => {
                status.holder = step.holder;
                status.last_error = None;
                if step.leading {
                    elector.last_renew = Some(started);
                }
                if !step.requests.is_empty() {
                    requested(step.requests);
                }
                step.leading
            }
            Err(e) => {
                status.last_error = Some(e);
                // A leader keeps leading until the renew deadline.
                elector
                    .last_renew
                    .is_some_and(|t| started.duration_since(t) < timing.renew_deadline)
            }
        };
        let role = if leading { Role::Leader } else { Role::Standby };
        if role != status.role {
            status.role = role;
            status.since = jiff::Timestamp::now();
            match role {
                Role::Leader => tracing::info!(lease = %status.lease, "this replica is now the leader"),
                Role::Standby => tracing::warn!(
                    lease = %status.lease,
                    error = status.last_error.as_deref().unwrap_or(""),
                    "this replica is now a standby"
                ),
            }
            if role == Role::Standby {
                elector.last_renew = None;
            }
        }
        held.send_if_modified(|h| {
            let want: Held = Some(Arc::new(vec![leading]));
            let changed = *h != want;
            *h = want;
            changed
        });
        report(status.clone());
        tokio::select! {
            _ = tokio::time::sleep(timing.retry) => {}
            _ = stop.changed() => {}
        }
    }
    // Stopping: hand the lease over at once rather than at its expiry.
    held.send_replace(Some(Arc::new(vec![false])));
    if status.role == Role::Leader
        && let Some(api) = &api
    {
        match tokio::time::timeout(Duration::from_secs(2), elector.release(api)).await {
            Ok(Ok(())) => tracing::info!(lease = %status.lease, "gave up the lease"),
            Ok(Err(e)) => tracing::warn!(lease = %status.lease, "cannot give up the lease: {e}"),
            Err(_) => tracing::warn!(lease = %status.lease, "cannot give up the lease: no answer in time"),
        }
    }
}

/// What one look at the Lease found.
struct Step {
    holder: Option<String>,
    leading: bool,
    /// Requests the standbys left, for the leader to run.
    requests: Vec<Key>,
}

struct Elector {
    name: String,
    identity: String,
    timing: Timing,
    /// The holder and renew time last seen, and when they were first seen.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
    /// When this replica last renewed (`None`: not leading).
    last_renew: Option<Instant>,
    outbox: Outbox,
}

/// What one write of the Lease came to.
enum Wrote {
    Done,
    /// Someone wrote it since it was read.
    Conflict,
}

impl Elector {
    /// Read the Lease and act: renew it (leader), take it over (expired),
    /// or leave the outbox's requests in it (standby). A write that
    /// conflicts is tried again on a fresh read, a few times.
    async fn step(&mut self, api: &Api<Lease>) -> Result<Step, String> {
        for _ in 0..3 {
            if let Some(step) = self.attempt(api).await? {
                return Ok(step);
            }
        }
        Ok(Step {
            holder: None,
            leading: false,
            requests: Vec::new(),
        })
    }

    /// `None`: a write conflicted; read again.
    async fn attempt(&mut self, api: &Api<Lease>) -> Result<Option<Step>, String> {
        let seconds = i32::try_from(self.timing.lease.as_secs().max(1)).unwrap_or(i32::MAX);
        let Some(mut lease) = api.get_opt(&self.name).await.map_err(describe)? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.identity.clone()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(micro_now()),
                    renew_time: Some(micro_now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Some(self.mine(Vec::new()))),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
                Err(e) => Err(describe(e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let renewed = spec.renew_time.clone();
        let seen_now = (holder.clone(), renewed.clone());
        let first_seen = match &self.observed {
            Some((h, r, at)) if (h, r) == (&seen_now.0, &seen_now.1) => *at,
            _ => {
                let at = Instant::now();
                self.observed = Some((seen_now.0, seen_now.1, at));
                at
            }
        };
        let their_duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.timing.lease, Duration::from_secs);
        let mine = holder.as_deref() == Some(self.identity.as_str());
        if !mine && holder.is_some() && first_seen.elapsed() < their_duration {
            // A standby: leave what it was asked to run for the leader.
            let pending: Vec<Key> = lock(&self.outbox).clone();
            if !pending.is_empty() {
                let mut requests = read_requests(&lease);
                requests.extend(pending.iter().map(|k| k.to_string()));
                let skip = requests.len().saturating_sub(MAX_REQUESTS);
                write_requests(&mut lease, &requests[skip..]);
                match self.write(api, &lease).await? {
                    Wrote::Done => {
                        let mut outbox = lock(&self.outbox);
                        let sent = pending.len().min(outbox.len());
                        outbox.drain(..sent);
                    }
                    Wrote::Conflict => return Ok(None),
                }
            }
            return Ok(Some(Step {
                holder,
                leading: false,
                requests: Vec::new(),
            }));
        }
        // Ours to renew, or free to take: take the requests out as well.
        let requests: Vec<Key> = read_requests(&lease)
            .iter()
            .filter_map(|r| parse_key(r))
            .collect();
        write_requests(&mut lease, &[]);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if !mine {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(micro_now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(micro_now());
        match self.write(api, &lease).await? {
            Wrote::Done => Ok(Some(self.mine(requests))),
            Wrote::Conflict => Ok(None),
        }
    }

    fn mine(&self, requests: Vec<Key>) -> Step {
        Step {
            holder: Some(self.identity.clone()),
            leading: true,
            requests,
        }
    }

    /// Replace the Lease, as of the resourceVersion it was read at.
    async fn write(&self, api: &Api<Lease>, lease: &Lease) -> Result<Wrote, String> {
        match api.replace(&self.name, &PostParams::default(), lease).await {
            Ok(_) => Ok(Wrote::Done),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Wrote::Conflict),
            Err(e) => Err(describe(e)),
        }
    }

    async fn release(&self, api: &Api<Lease>) -> Result<(), String> {
        let Some(mut lease) = api.get_opt(&self.name).await.map_err(describe)? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro_now());
        api.replace(&self.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(describe)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The requests in a Lease's annotation (`KIND/NAME`, oldest first).
fn read_requests(lease: &Lease) -> Vec<String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTS))
        .and_then(|v| serde_json::from_str::<Vec<String>>(v).ok())
        .unwrap_or_default()
}

fn write_requests(lease: &mut Lease, requests: &[String]) {
    let annotations = lease.metadata.annotations.get_or_insert_with(Default::default);
    if requests.is_empty() {
        annotations.remove(REQUESTS);
    } else {
        annotations.insert(
            REQUESTS.to_string(),
            serde_json::to_string(requests).unwrap_or_default(),
        );
    }
}

fn parse_key(s: &str) -> Option<Key> {
    let (kind, name) = s.split_once('/')?;
    Some(Key::new(crate::config::Kind::parse(kind)?, name))
}

/// Now, as Lease times are written (k8s-openapi's own jiff).
fn micro_now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn describe(e: kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!("{} ({})", s.message, s.code),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;

    #[test]
    fn one_shard_holds_everything_and_none_is_no_election() {
        let key = Key::new(Kind::App, "web");
        assert!(owns(&None, &key));
        assert!(owns(&Some(Arc::new(vec![true])), &key));
        assert!(!owns(&Some(Arc::new(vec![false])), &key));
        assert_eq!(shard_of(&key, 1), 0);
    }

    #[test]
    fn shards_spread_and_move_little_when_one_is_added() {
        let keys: Vec<Key> = (0..2000)
            .map(|i| Key::new(Kind::App, format!("app-{i}")))
            .collect();
        let mut counts = [0usize; 4];
        for k in &keys {
            counts[shard_of(k, 4)] += 1;
        }
        assert!(counts.iter().all(|c| (350..650).contains(c)), "{counts:?}");
        let moved = keys.iter().filter(|k| shard_of(k, 4) != shard_of(k, 5)).count();
        // A fifth of them should move to the new shard, and no more.
        assert!((300..500).contains(&moved), "{moved}");
        assert!(keys.iter().all(|k| shard_of(k, 5) < 5));
    }

    #[test]
    fn timing_follows_client_go_proportions() {
        let t = Timing::of(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry, Duration::from_millis(2500));
    }
}
