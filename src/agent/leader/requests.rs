//! Runs forwarded through a Lease: takes the requests this replica was
//! asked for objects of shards another replica holds, and a shard's
//! Lease; gives the Lease with them added to its [`REQUESTS`] annotation,
//! and, to the holder, the requests taken out of it. The annotation is
//! written by any replica: what cannot be read is dropped, and it keeps
//! the newest [`MAX_REQUESTS`] at most.

use std::sync::Arc;

use k8s_openapi::api::coordination::v1::Lease;

use crate::agent::status::Trigger;
use crate::config::Kind;
use crate::config::diff::Key;

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
const REQUESTS: &str = "mooring.dev/reconcile-requests";
/// Requests kept in the annotation at most (the oldest go first).
const MAX_REQUESTS: usize = 100;

/// Add `pending` to the requests in `lease` (the oldest go first past
/// [`MAX_REQUESTS`]).
pub(super) fn add(lease: &mut Lease, pending: &[Request]) {
    let mut requests = read_requests(lease);
    requests.extend(pending.iter().map(|r| encode_request(&r.key, r.trigger)));
    let skip = requests.len().saturating_sub(MAX_REQUESTS);
    write_requests(lease, &requests[skip..]);
}

/// Take the requests out of `lease`, oldest first.
pub(super) fn take(lease: &mut Lease) -> Vec<(Key, Trigger)> {
    let requests = read_requests(lease)
        .iter()
        .filter_map(|r| decode_request(r.as_str()))
        .collect();
    write_requests(lease, &[]);
    requests
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
