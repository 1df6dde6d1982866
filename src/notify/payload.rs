//! The bodies posted for `slack` and `generic`: the shapes of Flux's Slack
//! and generic providers, so that what already reads Flux's alerts reads
//! mooring's.

use serde_json::{Value, json};

use super::{Event, Severity};

/// The event's facts as `(title, value)` pairs.
fn facts(e: &Event) -> Vec<(&'static str, String)> {
    let mut out = vec![("event", e.event.as_str().to_string())];
    if let Some(r) = &e.revision {
        out.push(("revision", r.clone()));
    }
    if let Some(c) = &e.commit_url {
        out.push(("commit", c.clone()));
    }
    out
}

/// A Slack incoming-webhook message: one attachment, green for good news
/// and red for failures, as Flux's Slack provider posts it.
pub fn slack(e: &Event) -> Value {
    let color = match e.severity {
        Severity::Info => "good",
        Severity::Error => "danger",
    };
    let fields: Vec<Value> = facts(e)
        .into_iter()
        .map(|(title, value)| json!({ "title": title, "value": value, "short": false }))
        .collect();
    json!({
        "username": "mooring",
        "text": format!("{}/{}: {} ({})", e.kind, e.name, e.event.as_str(), e.reason),
        "attachments": [{
            "color": color,
            "author_name": format!("{}/{}", e.kind, e.name),
            "title": e.reason,
            "text": e.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    })
}

/// The event as Flux's generic provider forwards it (`involvedObject`,
/// `severity`, `timestamp`, `message`, `reason`, `metadata`…).
pub fn generic(e: &Event) -> Value {
    let metadata: serde_json::Map<String, Value> = facts(e)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    json!({
        "involvedObject": { "kind": e.kind.as_str(), "name": e.name },
        "severity": e.severity,
        "timestamp": e.at.to_string(),
        "message": e.message,
        "reason": e.reason,
        "metadata": metadata,
        "reportingController": "mooring",
        "reportingInstance": crate::notify::github::hostname(),
    })
}
