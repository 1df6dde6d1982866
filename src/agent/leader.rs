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
//! `LEASE-0` … `LEASE-(N-1)`, by a consistent hash ([`shard_of`]) of
//! `kind/name` — of the first app, by name, of the apps an app is tied to
//! by `depends-on`, so that an app and what it depends on share a shard.
//! Sources and images only read, and every shard's objects read them:
//! every replica that holds a shard runs them. With N = 1 the one Lease is
//! `LEASE` and holds every object: a single leader, the others standbys.
//!
//! Balance (N > 1): every replica also writes its own entry, the time, in
//! the annotation [`MEMBERS`] of the Lease `LEASE-members` at each look;
//! an entry seen changing within D (by the reader's clock) is a live
//! replica. With M live replicas each should hold between ⌊N/M⌋ and
//! ⌈N/M⌉ shards ([`plan`]): a replica above ⌈N/M⌉ gives its extra shards
//! up; one below ⌈N/M⌉ takes free or expired ones, unless it already has
//! ⌊N/M⌋ and another live replica has fewer (that one goes first, but a
//! shard left free for a whole lease goes to anyone below ⌈N/M⌉); when
//! no shard is free and a live replica has fewer than ⌊N/M⌋, the replica
//! with the most (ties: the greatest identity) gives one up. Giving up
//! stops the shard's runs at once and releases its Lease at the next look.
//! Nothing moves while membership is stable and shares are within the
//! bounds; a replica that joins gets its share within a few looks, one
//! that dies leaves its shards free after D, and the others take them.

use std::collections::{BTreeMap, BTreeSet};
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

/// Which shards this replica holds, by index; `None` without leader
/// election (every object is this replica's).
pub type Held = Option<Arc<Vec<bool>>>;

/// Whether the holder of `held` reconciles `key` of `cfg`.
pub fn owns(held: &Held, cfg: &Config, key: &Key) -> bool {
    let Some(shards) = held else { return true };
    if shards.len() <= 1 {
        return shards.first().copied().unwrap_or(false);
    }
    if matches!(key.kind, Kind::Source | Kind::Image) {
        return shards.iter().any(|h| *h);
    }
    shards
        .get(shard_of(&shard_key(cfg, key), shards.len()))
        .copied()
        .unwrap_or(false)
}

/// The shards whose holders run `key` for this replica (which holds
/// `held`): the object's shard when this replica does not hold it; for a
/// source or an image (every holder runs them), every shard it does not
/// hold.
pub fn elsewhere(held: &Held, cfg: &Config, key: &Key) -> Vec<usize> {
    let Some(shards) = held else { return Vec::new() };
    let others = |i: &usize| !shards.get(*i).copied().unwrap_or(false);
    if shards.len() <= 1 {
        return [0].into_iter().filter(others).collect();
    }
    if matches!(key.kind, Kind::Source | Kind::Image) {
        return (0..shards.len()).filter(others).collect();
    }
    Some(shard_of(&shard_key(cfg, key), shards.len()))
        .filter(others)
        .into_iter()
        .collect()
}

/// The key an object is sharded by: an app's is the first app, by name,
/// of the apps `depends-on` ties it to (directly or not, either way), so
/// that they run on one replica; any other object's is its own.
pub fn shard_key(cfg: &Config, key: &Key) -> Key {
    let tied = |a: &config::App, name: &str| {
        a.name.as_str() == name || a.depends_on.iter().any(|d| d.as_str() == name)
    };
    let alone = cfg.app(&key.name).is_none_or(|a| a.depends_on.is_empty())
        && !cfg
            .apps
            .iter()
            .any(|a| a.name.as_str() != key.name && tied(a, &key.name));
    if key.kind != Kind::App || alone {
        return key.clone();
    }
    let mut seen: BTreeSet<&str> = BTreeSet::from([key.name.as_str()]);
    let mut todo = vec![key.name.as_str()];
    while let Some(name) = todo.pop() {
        for a in cfg.apps.iter().filter(|&a| tied(a, name)) {
            let names = std::iter::once(a.name.as_str()).chain(a.depends_on.iter().map(|d| d.as_str()));
            for t in names {
                if seen.insert(t) {
                    todo.push(t);
                }
            }
        }
    }
    let first = seen.first().copied().unwrap_or(key.name.as_str());
    Key::new(Kind::App, first)
}

/// The shard of `key` among `n` (jump consistent hash: growing `n` by one
/// moves only a 1/n share of the objects).
pub fn shard_of(key: &Key, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    // FNV-1a, mixed (splitmix64's finalizer): names that differ in one
    // character spread as well as any.
    let mut h = fnv(&key.to_string());
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < n as i64 {
        b = j;
        h = h.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b as f64 + 1.0) * ((1u64 << 31) as f64 / ((h >> 33) as f64 + 1.0))) as i64;
    }
    b.max(0) as usize
}

/// FNV-1a: stable across runs and builds.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The name of shard `i`'s Lease among `n`: `LEASE` alone, else `LEASE-i`.
pub fn lease_name(lease: &str, i: usize, n: usize) -> String {
    if n <= 1 {
        lease.to_string()
    } else {
        format!("{lease}-{i}")
    }
}

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

/// A run asked of this replica for an object of a shard another replica
/// holds (a webhook, `mooring reconcile`), on its way to that holder.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub shard: usize,
    pub key: Key,
    pub trigger: Trigger,
}

/// Requests on their way: a replica adds them to the [`REQUESTS`]
/// annotation of their shard's Lease, the holder takes them out as it
/// renews.
pub type Outbox = Arc<std::sync::Mutex<Vec<Request>>>;

/// The Lease annotation that carries requests to the holder.
pub const REQUESTS: &str = "mooring.dev/reconcile-requests";
/// Requests kept in the annotation at most (the oldest go first).
const MAX_REQUESTS: usize = 100;
/// The annotation of `LEASE-members`: each replica's identity and the
/// time of its last look.
pub const MEMBERS: &str = "mooring.dev/members";

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
        members: (n > 1).then(|| Members {
            name: format!("{}-members", le.lease),
            observed: BTreeMap::new(),
        }),
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

/// The replicas taking part (shards > 1), from `LEASE-members`.
struct Members {
    name: String,
    /// Each identity's entry last seen and when it was first seen so.
    observed: BTreeMap<String, (String, Instant)>,
}

impl Members {
    /// Write this replica's entry (and drop those not renewed for twice
    /// the lease), noting what the others wrote.
    async fn renew(&mut self, api: &Api<Lease>, identity: &str, timing: &Timing) -> Result<(), String> {
        for _ in 0..3 {
            let now = Instant::now();
            let stamp = jiff::Timestamp::now().to_string();
            let Some(mut lease) = api.get_opt(&self.name).await.map_err(describe)? else {
                let mut lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec::default()),
                };
                write_members(
                    &mut lease,
                    &BTreeMap::from([(identity.to_string(), stamp.clone())]),
                );
                match api.create(&PostParams::default(), &lease).await {
                    Ok(_) => {
                        self.observed.insert(identity.to_string(), (stamp, now));
                        return Ok(());
                    }
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => return Err(describe(e)),
                }
            };
            let mut entries = read_members(&lease);
            self.observed.retain(|id, _| entries.contains_key(id));
            for (id, seen) in &entries {
                match self.observed.get(id) {
                    Some((s, _)) if s == seen => {}
                    _ => {
                        self.observed.insert(id.clone(), (seen.clone(), now));
                    }
                }
            }
            entries.retain(|id, _| {
                self.observed
                    .get(id)
                    .is_some_and(|(_, at)| now.duration_since(*at) < timing.lease * 2)
            });
            entries.insert(identity.to_string(), stamp.clone());
            write_members(&mut lease, &entries);
            match write(api, &self.name, &lease).await? {
                Wrote::Done => {
                    self.observed.insert(identity.to_string(), (stamp, now));
                    return Ok(());
                }
                Wrote::Conflict => continue,
            }
        }
        Ok(())
    }

    /// Take this replica's entry out (it stops).
    async fn leave(&self, api: &Api<Lease>, identity: &str) -> Result<(), String> {
        for _ in 0..3 {
            let Some(mut lease) = api.get_opt(&self.name).await.map_err(describe)? else {
                return Ok(());
            };
            let mut entries = read_members(&lease);
            if entries.remove(identity).is_none() {
                return Ok(());
            }
            write_members(&mut lease, &entries);
            if let Wrote::Done = write(api, &self.name, &lease).await? {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn read_members(lease: &Lease) -> BTreeMap<String, String> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MEMBERS))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn write_members(lease: &mut Lease, entries: &BTreeMap<String, String>) {
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            MEMBERS.to_string(),
            serde_json::to_string(entries).unwrap_or_default(),
        );
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

/// What a replica does after a look: the shards it gives up and the free
/// ones it takes.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    give: Vec<usize>,
    take: Vec<usize>,
}

/// The plan of replica `me` among the `live` replicas (`me` among them),
/// the shards' live holders being `holders` (`None`: free). See the
/// module doc.
fn plan(me: &str, live: &BTreeSet<String>, holders: &[Option<String>], stuck: &[bool]) -> Plan {
    let n = holders.len();
    let m = live.len().max(1);
    let (lo, hi) = (n / m, n.div_ceil(m));
    let count = |id: &str| holders.iter().filter(|h| h.as_deref() == Some(id)).count();
    let mine: Vec<usize> = (0..n).filter(|&i| holders[i].as_deref() == Some(me)).collect();
    let free: Vec<usize> = (0..n).filter(|&i| holders[i].is_none()).collect();
    if mine.len() > hi {
        return Plan {
            give: mine[hi..].to_vec(),
            take: Vec::new(),
        };
    }
    let starved = live.iter().any(|id| id != me && count(id) < lo);
    // Free for a whole lease: whoever should have gone first did not.
    let free = if mine.len() < hi && mine.len() >= lo && starved {
        free.into_iter()
            .filter(|&i| stuck.get(i).copied().unwrap_or(false))
            .collect()
    } else {
        free
    };
    if mine.len() < hi && !free.is_empty() {
        // Start at a place of its own, so that replicas looking at once
        // mostly go for different shards.
        let start = if free.is_empty() {
            0
        } else {
            (fnv(me) % free.len() as u64) as usize
        };
        let take = free
            .iter()
            .cycle()
            .skip(start)
            .take(free.len().min(hi - mine.len()))
            .copied()
            .collect();
        return Plan {
            give: Vec::new(),
            take,
        };
    }
    let top = live.iter().max_by(|a, b| (count(a), a).cmp(&(count(b), b)));
    let none_free = holders.iter().all(Option::is_some);
    if starved && none_free && mine.len() > lo && top.is_some_and(|t| t == me) {
        return Plan {
            give: mine.last().copied().into_iter().collect(),
            take: Vec::new(),
        };
    }
    Plan::default()
}

impl Elector {
    /// The live replicas, this one included.
    fn live(&self) -> BTreeSet<String> {
        let mut live: BTreeSet<String> = self
            .members
            .iter()
            .flat_map(|m| &m.observed)
            .filter(|(_, (_, at))| at.elapsed() < self.timing.lease)
            .map(|(id, _)| id.clone())
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
                let mut requests = read_requests(&lease);
                requests.extend(pending.iter().map(|r| encode_request(&r.key, r.trigger)));
                let skip = requests.len().saturating_sub(MAX_REQUESTS);
                write_requests(&mut lease, &requests[skip..]);
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
        let requests: Vec<(Key, Trigger)> = read_requests(&lease)
            .iter()
            .filter_map(|r| decode_request(r.as_str()))
            .collect();
        write_requests(&mut lease, &[]);
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

/// The requests in a Lease's annotation (oldest first).
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

/// A request as the annotation holds it: `KIND/NAME` for a webhook's,
/// `TRIGGER:KIND/NAME` for any other.
fn encode_request(key: &Key, trigger: Trigger) -> String {
    match trigger {
        Trigger::Webhook => key.to_string(),
        other => format!("{}:{key}", other.as_str()),
    }
}

fn decode_request(s: &str) -> Option<(Key, Trigger)> {
    let (trigger, key) = match s.split_once(':') {
        Some(("manual", key)) => (Trigger::Manual, key),
        Some(_) => return None,
        None => (Trigger::Webhook, s),
    };
    let (kind, name) = key.split_once('/')?;
    Some((Key::new(Kind::parse(kind)?, name), trigger))
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

    fn cfg(text: &str) -> Config {
        let path = std::path::Path::new("/x/m.kdl");
        match crate::config::from_str(path, text.to_string(), jiff::Timestamp::now()) {
            Ok(l) => l.config,
            Err(e) => panic!("{e}"),
        }
    }

    fn live(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    fn holders(h: &[Option<&str>]) -> Vec<Option<String>> {
        h.iter().map(|h| h.map(str::to_string)).collect()
    }

    /// The plan when no shard has been free for a whole lease.
    fn look(me: &str, live: &BTreeSet<String>, holders: &[Option<String>]) -> Plan {
        plan(me, live, holders, &vec![false; holders.len()])
    }

    #[test]
    fn one_shard_holds_everything_and_none_is_no_election() {
        let c = Config::default();
        let key = Key::new(Kind::App, "web");
        let source = Key::new(Kind::Source, "repo");
        assert!(owns(&None, &c, &key));
        assert!(owns(&Some(Arc::new(vec![true])), &c, &key));
        assert!(!owns(&Some(Arc::new(vec![false])), &c, &key));
        assert!(!owns(&Some(Arc::new(vec![false])), &c, &source));
        assert_eq!(shard_of(&key, 1), 0);
        assert_eq!(elsewhere(&Some(Arc::new(vec![false])), &c, &source), vec![0]);
        assert_eq!(
            elsewhere(&Some(Arc::new(vec![true])), &c, &key),
            Vec::<usize>::new()
        );
        assert_eq!(lease_name("mooring", 0, 1), "mooring");
        assert_eq!(lease_name("mooring", 3, 4), "mooring-3");
    }

    #[test]
    fn with_shards_sources_and_images_run_on_every_holder() {
        let c = Config::default();
        let source = Key::new(Kind::Source, "repo");
        let image = Key::new(Kind::Image, "app");
        let some: Held = Some(Arc::new(vec![false, true, false]));
        assert!(owns(&some, &c, &source) && owns(&some, &c, &image));
        assert!(!owns(&Some(Arc::new(vec![false; 3])), &c, &source));
        // A hook for a source reaches the holders of the other shards too.
        assert_eq!(elsewhere(&some, &c, &source), vec![0, 2]);
        let app = Key::new(Kind::App, "web");
        let shard = shard_of(&app, 3);
        assert_eq!(owns(&some, &c, &app), shard == 1);
        assert_eq!(
            elsewhere(&some, &c, &app),
            if shard == 1 { vec![] } else { vec![shard] }
        );
    }

    #[test]
    fn apps_tied_by_depends_on_share_a_shard() {
        let c = cfg(r#"
            source "s" { git "https://example.com/r.git"; }
            app "web" { source "s"; path "w"; target dir="/o/w"; depends-on "db"; }
            app "db" { source "s"; path "d"; target dir="/o/d"; depends-on "infra"; }
            app "infra" { source "s"; path "i"; target dir="/o/i"; }
            app "api" { source "s"; path "a"; target dir="/o/a"; depends-on "db"; }
            app "alone" { source "s"; path "x"; target dir="/o/x"; }
        "#);
        for name in ["web", "db", "infra", "api"] {
            assert_eq!(
                shard_key(&c, &Key::new(Kind::App, name)),
                Key::new(Kind::App, "api"),
                "{name}"
            );
        }
        let alone = Key::new(Kind::App, "alone");
        assert_eq!(shard_key(&c, &alone), alone);
        let source = Key::new(Kind::Source, "s");
        assert_eq!(shard_key(&c, &source), source);
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
    fn a_lone_replica_takes_every_free_shard() {
        let p = look("a", &live(&["a"]), &holders(&[None, None, None, None]));
        let mut take = p.take.clone();
        take.sort();
        assert_eq!((p.give, take), (vec![], vec![0, 1, 2, 3]));
    }

    #[test]
    fn a_replica_above_its_share_gives_the_extra_up() {
        // Two replicas, four shards: two each; "a" holds all four.
        let h = holders(&[Some("a"), Some("a"), Some("a"), Some("a")]);
        assert_eq!(
            look("a", &live(&["a", "b"]), &h),
            Plan {
                give: vec![2, 3],
                take: vec![]
            }
        );
        // "b" waits for them to be free.
        assert_eq!(look("b", &live(&["a", "b"]), &h), Plan::default());
        let freed = holders(&[Some("a"), Some("a"), None, None]);
        let mut take = look("b", &live(&["a", "b"]), &freed).take;
        take.sort();
        assert_eq!(take, vec![2, 3]);
        assert_eq!(look("a", &live(&["a", "b"]), &freed), Plan::default());
    }

    #[test]
    fn a_replica_with_none_gets_one_from_the_replica_with_most() {
        // Three replicas, four shards: 2, 2, 0. Only the greatest of the
        // two with most gives one up, and neither takes it back.
        let h = holders(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        let all = live(&["a", "b", "c"]);
        assert_eq!(look("a", &all, &h), Plan::default());
        assert_eq!(
            look("b", &all, &h),
            Plan {
                give: vec![3],
                take: vec![]
            }
        );
        let freed = holders(&[Some("a"), Some("a"), Some("b"), None]);
        assert_eq!(look("b", &all, &freed), Plan::default());
        assert_eq!(look("a", &all, &freed), Plan::default());
        assert_eq!(
            look("c", &all, &freed),
            Plan {
                give: vec![],
                take: vec![3]
            }
        );
    }

    #[test]
    fn nothing_moves_when_shares_are_within_bounds() {
        let all = live(&["a", "b", "c"]);
        for h in [
            holders(&[Some("a"), Some("a"), Some("b"), Some("c")]),
            holders(&[Some("c"), Some("a"), Some("b"), Some("c")]),
        ] {
            for me in ["a", "b", "c"] {
                assert_eq!(look(me, &all, &h), Plan::default(), "{me} {h:?}");
            }
        }
        // Fewer shards than replicas: one each, the rest stand by.
        let h = holders(&[Some("a"), Some("b")]);
        for me in ["a", "b", "c"] {
            assert_eq!(look(me, &all, &h), Plan::default(), "{me}");
        }
        // One shard: today's single leader.
        assert_eq!(look("b", &live(&["b"]), &holders(&[Some("a")])), Plan::default());
    }

    #[test]
    fn the_shards_of_a_dead_replica_go_to_those_below_the_ceiling() {
        // "c" died: its shard is free. While "c" still counts as live (it
        // has none: it would go first), "b" waits; once it is gone, "b"
        // (one, below two) takes it, "a" (two) does not.
        let h = holders(&[Some("a"), Some("a"), Some("b"), None]);
        assert_eq!(look("b", &live(&["a", "b", "c"]), &h), Plan::default());
        let two = live(&["a", "b"]);
        assert_eq!(look("a", &two, &h), Plan::default());
        assert_eq!(
            look("b", &two, &h),
            Plan {
                give: vec![],
                take: vec![3]
            }
        );
        // Free for a whole lease, it goes to "b" even while "c" counts.
        let stuck = [false, false, false, true];
        assert_eq!(plan("b", &live(&["a", "b", "c"]), &h, &stuck).take, vec![3]);
        assert_eq!(plan("a", &live(&["a", "b", "c"]), &h, &stuck), Plan::default());
        // "c" held two: once it is seen gone, "a" and "b" take one each.
        let h = holders(&[Some("a"), None, Some("b"), None]);
        assert_eq!(look("a", &two, &h).take.len(), 1);
        assert_eq!(look("b", &two, &h).take.len(), 1);
    }

    #[test]
    fn requests_keep_a_manual_trigger_through_the_lease() {
        let key = Key::new(Kind::App, "web");
        for trigger in [Trigger::Webhook, Trigger::Manual] {
            let s = encode_request(&key, trigger);
            assert_eq!(decode_request(&s), Some((key.clone(), trigger)), "{s}");
        }
        assert_eq!(encode_request(&key, Trigger::Webhook), "app/web");
        assert_eq!(decode_request("drift:app/web"), None);
        assert_eq!(decode_request("nokind/web"), None);
    }

    #[test]
    fn timing_follows_client_go_proportions() {
        let t = Timing::of(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry, Duration::from_millis(2500));
    }
}
