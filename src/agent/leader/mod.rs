//! Leader election for the pod form (`agent { leader-election … }`): takes
//! the agent's settings and a cluster, gives which objects this replica
//! may reconcile. A `coordination.k8s.io/v1` Lease names its holder; the
//! holder renews it, the others watch it age and take it over once it has
//! gone unrenewed for its whole duration — by their own clock (the time
//! they saw it last change), never the holder's, so clock skew does not
//! matter. Every write names the resourceVersion it read: of two replicas
//! taking a Lease at once, one gets a conflict.
//!
//! Timing, as client-go's: with a lease of D, a holder that cannot renew
//! a Lease for two thirds of D stops its work (runs in flight are
//! cancelled, no new one starts) before anyone may take it over at D;
//! everyone looks again every D/6. A replica that stops on SIGTERM gives
//! its Leases up, so the others take them at their next look.
//!
//! Shards (`shards=N`): apps and automations are spread over N Leases,
//! `LEASE-0` … `LEASE-(N-1)`, by a consistent hash ([`shards::owns`]) of
//! `kind/name` — of the first app, by name, of the apps an app is tied to
//! by `depends-on`, so that an app and what it depends on share a shard.
//! Sources and images only read, and every shard's objects read them:
//! every replica that holds a shard runs them. With N = 1 the one Lease is
//! `LEASE` and holds every object: a single leader, the others standbys.
//!
//! Balance (N > 1): every replica also writes its own entry, the time, in
//! the annotation `mooring.dev/members` ([`members`]) of the Lease
//! `LEASE-members` at each look; an entry seen changing within D (by the
//! reader's clock) is a live replica. With M live replicas each should
//! hold between ⌊N/M⌋ and ⌈N/M⌉ shards ([`plan`]): a replica above ⌈N/M⌉
//! gives its extra shards up; one below ⌈N/M⌉ takes free or expired ones,
//! unless it already has ⌊N/M⌋ and another live replica has fewer (that
//! one goes first, but a shard left free for a whole lease goes to anyone
//! below ⌈N/M⌉); when no shard is free and a live replica has fewer than
//! ⌊N/M⌋, the replica with the most (ties: the greatest identity) gives
//! one up. Giving up stops the shard's runs at once and releases its
//! Lease at the next look. Nothing moves while membership is stable and
//! shares are within the bounds; a replica that joins gets its share
//! within a few looks, one that dies leaves its shards free after D, and
//! the others take them.
//!
//! Here the loop ([`run`]) and what it reports ([`LeaderStatus`]);
//! [`shards`]: which shard an object is of and the fair-share [`plan`];
//! [`members`]: the live replicas; [`requests`]: runs left in a Lease
//! for its holder.

mod members;
mod requests;
mod shards;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::status::Trigger;
use crate::config::diff::Key;
use crate::config::{self, Config, Kind, LeaderElection};
use members::Members;
pub use requests::{Outbox, Request};
pub use shards::{Held, elsewhere, owns};
use shards::{lease_name, plan};

/// This replica's place, for `/api/status` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaderStatus {
    /// `leader` while this replica holds a shard (the Lease, with one).
    pub role: Role,
    /// `namespace/name` of the Lease (with shards, the name they share).
    pub lease: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// Who holds the Lease, as last read (one shard only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub holder: Option<String>,
    /// When this replica's current role began.
    pub since: jiff::Timestamp,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub last_error: Option<String>,
    /// With `shards` > 1: the live replicas seen, this one included.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub replicas: Option<usize>,
    /// With `shards` > 1: every shard, its Lease and holder.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub shards: Vec<ShardStatus>,
}

/// One shard as this replica last saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardStatus {
    /// `namespace/name` of its Lease.
    pub lease: String,
    /// Its live holder; none while it is free (or its holder's lease ran out).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub holder: Option<String>,
    /// This replica holds it and runs its objects.
    pub mine: bool,
}

impl LeaderStatus {
    /// Which replica reconciles `key` when it is not this one, as last seen.
    pub fn owner(&self, held: &Held, cfg: &Config, key: &Key) -> Option<String> {
        if owns(held, cfg, key) {
            return None;
        }
        if self.shards.is_empty() {
            return self.holder.clone();
        }
        let shard = elsewhere(held, cfg, key);
        match shard.as_slice() {
            [one] if !matches!(key.kind, Kind::Source | Kind::Image) => {
                self.shards.get(*one).and_then(|s| s.holder.clone())
            }
            _ => None,
        }
    }
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
    /// A holder that has not renewed for this long stops.
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

/// Hold the election until `stop` says so: publish the shards held on
/// `held` and the status through `report`; hand the requests others left
/// in the Leases this replica holds to `requested`; leave those of
/// `outbox` in the Leases of their shards. Gives the Leases up on stop.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    le: LeaderElection,
    cluster_def: Option<config::Cluster>,
    clusters: &crate::apply::cluster::Clusters,
    identity: String,
    held: watch::Sender<Held>,
    report: impl Fn(LeaderStatus),
    outbox: Outbox,
    requested: impl Fn(Vec<(Key, Trigger)>),
    mut stop: watch::Receiver<bool>,
) {
    let timing = Timing::of(le.duration);
    let ns = namespace(&le);
    let n = le.shards.max(1) as usize;
    let mut status = LeaderStatus {
        role: Role::Standby,
        lease: format!("{ns}/{}", le.lease),
        identity: identity.clone(),
        holder: None,
        since: jiff::Timestamp::now(),
        last_error: None,
        replicas: None,
        shards: Vec::new(),
    };
    report(status.clone());
    let mut elector = Elector {
        identity,
        timing,
        shards: (0..n).map(|i| Shard::new(lease_name(&le.lease, i, n))).collect(),
        members: (n > 1).then(|| Members::new(format!("{}-members", le.lease))),
        outbox,
    };
    let mut api: Option<Api<Lease>> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let error = match &api {
            Some(api) => {
                let (requests, error) =
                    tokio::time::timeout(timing.retry.max(Duration::from_millis(500)), elector.step(api))
                        .await
                        .unwrap_or_else(|_| {
                            (Vec::new(), Some("the API server did not answer in time".into()))
                        });
                if !requests.is_empty() {
                    requested(requests);
                }
                error
            }
            None => match clusters.get(cluster_def.as_ref()).await {
                Ok(c) => {
                    api = Some(Api::namespaced(c.client().clone(), &ns));
                    continue;
                }
                Err(e) => Some(e.to_string()),
            },
        };
        let now = Instant::now();
        let mine: Vec<bool> = elector.shards.iter().map(|s| s.holding(now, &timing)).collect();
        for (s, &m) in elector.shards.iter_mut().zip(&mine) {
            if !m {
                // Past the renew deadline: its work stops now.
                s.last_renew = None;
            }
        }
        status.last_error = error;
        if n == 1 {
            status.holder = elector.shards[0].holder.clone();
        } else {
            status.replicas = Some(elector.live().len());
            status.shards = elector
                .shards
                .iter()
                .zip(&mine)
                .map(|(s, &m)| ShardStatus {
                    lease: format!("{ns}/{}", s.name),
                    holder: s.holder.clone(),
                    mine: m,
                })
                .collect();
        }
        let role = if mine.iter().any(|m| *m) {
            Role::Leader
        } else {
            Role::Standby
        };
        if role != status.role {
            status.role = role;
            status.since = jiff::Timestamp::now();
            match role {
                Role::Leader => tracing::info!(lease = %status.lease, "this replica is now a leader"),
                Role::Standby => tracing::warn!(
                    lease = %status.lease,
                    error = status.last_error.as_deref().unwrap_or(""),
                    "this replica is now a standby"
                ),
            }
        }
        held.send_if_modified(|h| {
            let want: Held = Some(Arc::new(mine.clone()));
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
    // Stopping: hand the Leases over at once rather than at their expiry.
    held.send_replace(Some(Arc::new(vec![false; n])));
    if let Some(api) = &api {
        let release = async {
            for s in &elector.shards {
                if s.last_renew.is_some() || s.releasing {
                    s.release(api, &elector.identity).await?;
                }
            }
            if let Some(m) = &elector.members {
                m.leave(api, &elector.identity).await?;
            }
            Ok::<_, String>(())
        };
        let held_any = status.role == Role::Leader;
        match tokio::time::timeout(Duration::from_secs(2), release).await {
            Ok(Ok(())) if held_any => tracing::info!(lease = %status.lease, "gave up the lease"),
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(lease = %status.lease, "cannot give up the lease: {e}"),
            Err(_) => tracing::warn!(lease = %status.lease, "cannot give up the lease: no answer in time"),
        }
    }
}

/// One shard's Lease as this replica follows it.
struct Shard {
    name: String,
    /// The holder and renew time last seen, and when they were first seen.
    observed: Option<(Option<String>, Option<MicroTime>, Instant)>,
    /// Its live holder, as last read.
    holder: Option<String>,
    /// When this replica last renewed it (`None`: not holding it).
    last_renew: Option<Instant>,
    /// Given up: its work stopped; the Lease is released at the next look.
    releasing: bool,
    /// Since when it has had no live holder.
    free_since: Option<Instant>,
}

impl Shard {
    fn new(name: String) -> Shard {
        Shard {
            name,
            observed: None,
            holder: None,
            last_renew: None,
            releasing: false,
            free_since: None,
        }
    }

    /// This replica holds it and may work on it.
    fn holding(&self, now: Instant, timing: &Timing) -> bool {
        !self.releasing
            && self
                .last_renew
                .is_some_and(|t| now.duration_since(t) < timing.renew_deadline)
    }

    /// Clear the holder if it is still `identity`.
    async fn release(&self, api: &Api<Lease>, identity: &str) -> Result<(), String> {
        let Some(mut lease) = api.get_opt(&self.name).await.map_err(describe)? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(identity) {
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

struct Elector {
    identity: String,
    timing: Timing,
    shards: Vec<Shard>,
    /// `None` with one shard: no balance to keep.
    members: Option<Members>,
    outbox: Outbox,
}

/// What one write of a Lease came to.
enum Wrote {
    Done,
    /// Someone wrote it since it was read.
    Conflict,
}

impl Elector {
    /// The live replicas, this one included.
    fn live(&self) -> BTreeSet<String> {
        let mut live: BTreeSet<String> = self
            .members
            .iter()
            .flat_map(|m| m.live(self.timing.lease))
            .cloned()
            .collect();
        live.insert(self.identity.clone());
        live
    }

    /// One look: release what was given up, renew the membership, read
    /// every shard (renewing this replica's, leaving requests in the
    /// others'), then give up or take shards by the [`plan`]. Gives the
    /// requests to run here and the first error met.
    async fn step(&mut self, api: &Api<Lease>) -> (Vec<(Key, Trigger)>, Option<String>) {
        let mut error = None;
        let mut note = |e: String| {
            error.get_or_insert(e);
        };
        for s in self.shards.iter_mut().filter(|s| s.releasing) {
            match s.release(api, &self.identity).await {
                Ok(()) => {
                    s.releasing = false;
                    s.holder = None;
                    s.observed = None;
                }
                Err(e) => note(e),
            }
        }
        if let Some(m) = &mut self.members
            && let Err(e) = m.renew(api, &self.identity, &self.timing).await
        {
            note(e);
        }
        let mut requests = Vec::new();
        // Renewals first: a look cut short by the timeout must not cost a
        // held shard its renewal.
        let mut order: Vec<usize> = (0..self.shards.len()).collect();
        order.sort_by_key(|&i| self.shards[i].last_renew.is_none());
        for i in order {
            if self.shards[i].releasing {
                continue;
            }
            match self.visit(api, i, false).await {
                Ok(r) => requests.extend(r),
                Err(e) => note(e),
            }
        }
        let holders: Vec<Option<String>> = self
            .shards
            .iter()
            .map(|s| s.holder.clone().filter(|_| !s.releasing))
            .collect();
        let now = Instant::now();
        let stuck: Vec<bool> = self
            .shards
            .iter_mut()
            .zip(&holders)
            .map(|(s, h)| match h {
                Some(_) => {
                    s.free_since = None;
                    false
                }
                None => now.duration_since(*s.free_since.get_or_insert(now)) >= self.timing.lease,
            })
            .collect();
        let plan = plan(&self.identity, &self.live(), &holders, &stuck);
        for &i in &plan.give {
            let s = &mut self.shards[i];
            tracing::info!(lease = %s.name, "giving the shard up to balance the replicas");
            s.releasing = true;
            s.last_renew = None;
        }
        // A shard whose release failed is not taken back: it is released
        // again at the next look.
        let take: Vec<usize> = plan
            .take
            .into_iter()
            .filter(|&i| !self.shards[i].releasing)
            .collect();
        for i in take {
            match self.visit(api, i, true).await {
                Ok(r) => requests.extend(r),
                Err(e) => note(e),
            }
        }
        // Requests for shards this replica holds now run here.
        let now = Instant::now();
        let held: Vec<bool> = self.shards.iter().map(|s| s.holding(now, &self.timing)).collect();
        lock(&self.outbox).retain(|r| {
            if held.get(r.shard).copied().unwrap_or(false) {
                requests.push((r.key.clone(), r.trigger));
                false
            } else {
                true
            }
        });
        (requests, error)
    }

    /// Look at shard `i`'s Lease: renew it if this replica holds it, take
    /// it if `take` and it is free, else leave the outbox's requests for
    /// its holder. A write that conflicts is tried again on a fresh read,
    /// a few times. Gives the requests taken out of it.
    async fn visit(&mut self, api: &Api<Lease>, i: usize, take: bool) -> Result<Vec<(Key, Trigger)>, String> {
        for _ in 0..3 {
            if let Some(requests) = self.attempt(api, i, take).await? {
                return Ok(requests);
            }
        }
        Ok(Vec::new())
    }

    /// `None`: a write conflicted; read again.
    async fn attempt(
        &mut self,
        api: &Api<Lease>,
        i: usize,
        take: bool,
    ) -> Result<Option<Vec<(Key, Trigger)>>, String> {
        let seconds = i32::try_from(self.timing.lease.as_secs().max(1)).unwrap_or(i32::MAX);
        let started = Instant::now();
        let me = self.identity.as_str();
        let sharded = self.shards.len() > 1;
        let Some(shard) = self.shards.get_mut(i) else {
            return Ok(Some(Vec::new()));
        };
        let Some(mut lease) = api.get_opt(&shard.name).await.map_err(describe)? else {
            shard.holder = None;
            if !take {
                return Ok(Some(Vec::new()));
            }
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(shard.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.to_string()),
                    lease_duration_seconds: Some(seconds),
                    acquire_time: Some(micro_now()),
                    renew_time: Some(micro_now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    shard.holder = Some(me.to_string());
                    shard.last_renew = Some(started);
                    Ok(Some(Vec::new()))
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(None),
                Err(e) => Err(describe(e)),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let renewed = spec.renew_time.clone();
        let first_seen = match &shard.observed {
            Some((h, r, at)) if (h, r) == (&holder, &renewed) => *at,
            _ => {
                shard.observed = Some((holder.clone(), renewed, started));
                started
            }
        };
        let their_duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.timing.lease, Duration::from_secs);
        let mine = holder.as_deref() == Some(me);
        if !mine && holder.is_some() && first_seen.elapsed() < their_duration {
            // Another replica's: leave what this one was asked to run.
            shard.holder = holder.clone();
            shard.last_renew = None;
            let pending: Vec<Request> = lock(&self.outbox)
                .iter()
                .filter(|r| r.shard == i)
                .cloned()
                .collect();
            if !pending.is_empty() {
                requests::add(&mut lease, &pending);
                match write(api, &shard.name, &lease).await? {
                    Wrote::Done => {
                        let mut outbox = lock(&self.outbox);
                        for sent in &pending {
                            if let Some(at) = outbox.iter().position(|r| r == sent) {
                                outbox.remove(at);
                            }
                        }
                    }
                    Wrote::Conflict => return Ok(None),
                }
            }
            return Ok(Some(Vec::new()));
        }
        if !mine && !take {
            // Free (or its holder is gone): the plan decides.
            shard.holder = None;
            return Ok(Some(Vec::new()));
        }
        // Ours to renew, or free to take: take the requests out as well.
        let requests = requests::take(&mut lease);
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if !mine {
            spec.holder_identity = Some(me.to_string());
            spec.acquire_time = Some(micro_now());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.lease_duration_seconds = Some(seconds);
        spec.renew_time = Some(micro_now());
        match write(api, &shard.name, &lease).await? {
            Wrote::Done => {
                if !mine && sharded {
                    tracing::info!(lease = %shard.name, previous = holder.as_deref().unwrap_or(""), "took the shard");
                }
                shard.holder = Some(me.to_string());
                shard.last_renew = Some(started);
                Ok(Some(requests))
            }
            Wrote::Conflict => Ok(None),
        }
    }
}

/// Replace the Lease `name`, as of the resourceVersion it was read at.
async fn write(api: &Api<Lease>, name: &str, lease: &Lease) -> Result<Wrote, String> {
    match api.replace(name, &PostParams::default(), lease).await {
        Ok(_) => Ok(Wrote::Done),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(Wrote::Conflict),
        Err(e) => Err(describe(e)),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

    #[test]
    fn timing_follows_client_go_proportions() {
        let t = Timing::of(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry, Duration::from_millis(2500));
    }
}
