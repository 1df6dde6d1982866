//! The live replicas (shards > 1): takes this replica's identity and the
//! Lease `LEASE-members`; gives the replicas seen renewing their entry in
//! its [`MEMBERS`] annotation within a lease, by this replica's clock.
//! An annotation that does not parse reads as no entries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use super::{Timing, Wrote, describe, write};

/// The annotation of `LEASE-members`: each replica's identity and the
/// time of its last look.
const MEMBERS: &str = "mooring.dev/members";

/// The replicas taking part (shards > 1), from `LEASE-members`.
pub(super) struct Members {
    name: String,
    /// Each identity's entry last seen and when it was first seen so.
    observed: BTreeMap<String, (String, Instant)>,
}

impl Members {
    pub(super) fn new(name: String) -> Members {
        Members {
            name,
            observed: BTreeMap::new(),
        }
    }

    /// The identities whose entry was last seen changing within `lease`.
    pub(super) fn live(&self, lease: Duration) -> impl Iterator<Item = &String> {
        self.observed
            .iter()
            .filter(move |(_, (_, at))| at.elapsed() < lease)
            .map(|(id, _)| id)
    }

    /// Write this replica's entry (and drop those not renewed for twice
    /// the lease), noting what the others wrote.
    pub(super) async fn renew(
        &mut self,
        api: &Api<Lease>,
        identity: &str,
        timing: &Timing,
    ) -> Result<(), String> {
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
    pub(super) async fn leave(&self, api: &Api<Lease>, identity: &str) -> Result<(), String> {
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
