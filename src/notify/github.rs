//! GitHub commit statuses, set as Flux's notification-controller sets
//! them (its `github` provider):
//!
//! - the commit is the one in the event's revision (`main@sha1:<hex>`);
//!   events without one are not posted;
//! - `state` is `success` for `info` events and `failure` for `error` ones;
//! - `context` is `KIND/NAME/ID`, lowercased — Flux's ID is the first part
//!   of the Provider's UID, mooring's is the notification's name;
//! - `description` is the event's reason split at its camel case and
//!   lowercased (`ReconciliationSucceeded` → `reconciliation succeeded`);
//! - the latest status of the same context is read first, and nothing is
//!   posted when it already has the same state and description;
//! - the repository is `url-file`'s address: on `github.com` the API is
//!   `https://api.github.com`, elsewhere (GitHub Enterprise) it is
//!   `SCHEME://HOST/api/v3`; the token goes as `Authorization: Bearer`.

use serde_json::{Value, json};

use super::{Error, Event, Severity, send};

/// Post the commit status for `event` to the repository at `address`.
pub async fn post(
    client: &reqwest::Client,
    address: &str,
    token: &str,
    id: &str,
    event: &Event,
) -> Result<(), Error> {
    let Some(sha) = event.revision.as_deref().and_then(super::revision_sha) else {
        // Nothing to attach a status to (an image's pick, an OCI digest).
        return Ok(());
    };
    let (api, owner_repo) = api_of(address)?;
    let status = status(id, event);
    let listed = client
        .get(format!(
            "{api}/repos/{owner_repo}/commits/{sha}/statuses?per_page=50"
        ))
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .send()
        .await
        .map_err(Error::network)?;
    if !listed.status().is_success() {
        return Err(Error::Status {
            status: listed.status().as_u16(),
            retry_after: None,
        });
    }
    let existing: Value = listed
        .json()
        .await
        .map_err(|e| Error::Invalid(format!("the commit statuses are not JSON: {}", e.without_url())))?;
    if duplicate(&existing, &status) {
        return Ok(());
    }
    send(
        client
            .post(format!("{api}/repos/{owner_repo}/statuses/{sha}"))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .json(&status),
    )
    .await
}

/// The status body for `event`.
pub fn status(id: &str, event: &Event) -> Value {
    let state = match event.severity {
        Severity::Info => "success",
        Severity::Error => "failure",
    };
    let context = format!("{}/{}/{}", event.kind, event.name, id).to_lowercase();
    let description = split_camel_case(&event.reason).join(" ").to_lowercase();
    json!({ "state": state, "context": context, "description": description })
}

/// Whether the newest status of the same context (GitHub lists newest
/// first) already says the same.
fn duplicate(existing: &Value, status: &Value) -> bool {
    let Some(list) = existing.as_array() else {
        return false;
    };
    let same = |s: &Value, k: &str| s.get(k).and_then(Value::as_str) == status.get(k).and_then(Value::as_str);
    list.iter()
        .find(|s| same(s, "context"))
        .is_some_and(|s| same(s, "state") && same(s, "description"))
}

/// `(api base, owner/repo)` of a repository address.
fn api_of(address: &str) -> Result<(String, String), Error> {
    let bad = || {
        Error::Invalid(
            "the address in url-file is not a repository URL such as https://github.com/OWNER/REPO".into(),
        )
    };
    let (scheme, _) = address.split_once("://").ok_or_else(bad)?;
    let (host_port, path) = {
        let rest = &address[scheme.len() + 3..];
        let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        (authority.to_ascii_lowercase(), path)
    };
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    let scheme = if scheme == "ssh" { "https" } else { scheme };
    let api = if host_port == "github.com" {
        "https://api.github.com".to_string()
    } else {
        format!("{scheme}://{host_port}/api/v3")
    };
    Ok((api, parts.join("/")))
}

/// Words of a CamelCase identifier, as Flux's `splitCamelcase`: runs of
/// lower case, upper case, digits and others, with an upper-case run's
/// last letter moved to a following lower-case run (`PDFLoader` → `PDF`,
/// `Loader`).
pub fn split_camel_case(s: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in s.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some(run) if k == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = k;
    }
    for i in 0..runs.len().saturating_sub(1) {
        let upper_then_lower = runs[i].first().is_some_and(|c| c.is_uppercase())
            && runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if upper_then_lower && let Some(moved) = runs[i].pop() {
            runs[i + 1].insert(0, moved);
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

/// This machine's name (the pod's name in Kubernetes).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Kind, NotifyEvent};

    #[test]
    fn camel_case_splits_as_flux_splits_it() {
        for (input, words) in [
            ("ReconciliationSucceeded", vec!["Reconciliation", "Succeeded"]),
            ("ApplyFailed", vec!["Apply", "Failed"]),
            ("PDFLoader", vec!["PDF", "Loader"]),
            ("HealthCheckFailed", vec!["Health", "Check", "Failed"]),
            ("lowercase", vec!["lowercase"]),
            ("Version2Update", vec!["Version", "2", "Update"]),
            ("", vec![]),
        ] {
            assert_eq!(split_camel_case(input), words, "{input}");
        }
    }

    #[test]
    fn a_status_is_flux_s() {
        let e = Event {
            kind: Kind::App,
            name: "PodInfo".into(),
            event: NotifyEvent::Failure,
            severity: Severity::Error,
            reason: "HealthCheckFailed".into(),
            message: "m".into(),
            revision: Some("main@sha1:0123456789abcdef0123456789abcdef01234567".into()),
            commit_url: None,
            at: jiff::Timestamp::UNIX_EPOCH,
        };
        assert_eq!(
            status("Team", &e),
            json!({ "state": "failure", "context": "app/podinfo/team", "description": "health check failed" })
        );
    }

    #[test]
    fn api_bases() {
        assert_eq!(
            api_of("https://github.com/acme/app.git").unwrap(),
            ("https://api.github.com".into(), "acme/app".into())
        );
        assert_eq!(
            api_of("https://ghe.example.com:8443/acme/app").unwrap(),
            ("https://ghe.example.com:8443/api/v3".into(), "acme/app".into())
        );
        assert!(api_of("https://github.com/acme").is_err());
        assert!(api_of("github.com/acme/app").is_err());
    }

    #[test]
    fn the_newest_status_of_the_context_decides_duplicates() {
        let s = json!({ "state": "success", "context": "app/a/n", "description": "ok" });
        let older_same = json!([
            { "state": "failure", "context": "app/a/n", "description": "bad" },
            { "state": "success", "context": "app/a/n", "description": "ok" },
        ]);
        assert!(!duplicate(&older_same, &s));
        let newest_same = json!([
            { "state": "success", "context": "other", "description": "x" },
            { "state": "success", "context": "app/a/n", "description": "ok" },
        ]);
        assert!(duplicate(&newest_same, &s));
        assert!(!duplicate(&json!([]), &s));
    }
}
