//! Health: whether an applied object is ready, read from its live status.
//! Deployments, StatefulSets and DaemonSets have rolled out (the controller
//! saw the latest generation and every replica is updated and ready), Jobs
//! have completed, CRDs are established, and anything else with a `Ready`
//! condition has it `True`. Objects with no notion of readiness are ready.

use serde_json::Value;

/// What an object's status says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ready,
    /// Not yet, and why ("1 of 3 replicas ready").
    Progressing(String),
    /// Will not become ready by waiting (a failed Job).
    Failed(String),
}

pub fn health(obj: &Value) -> Health {
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g);
    let kind = obj["kind"].as_str().unwrap_or("");
    let status = &obj["status"];
    match (group, kind) {
        ("apps", "Deployment") | ("apps", "StatefulSet") => replicas(obj, status),
        ("apps", "DaemonSet") => daemonset(obj, status),
        ("batch", "Job") => job(status),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => match condition(status, "Established") {
            Some("True") => Health::Ready,
            _ => Health::Progressing("not established yet".into()),
        },
        _ => match condition(status, "Ready") {
            None | Some("True") => Health::Ready,
            Some(_) => Health::Progressing(
                condition_message(status, "Ready")
                    .unwrap_or_else(|| "the Ready condition is not True".into()),
            ),
        },
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The controller has seen the object's latest generation.
fn observed(obj: &Value, status: &Value) -> Option<Health> {
    let generation = int(&obj["metadata"]["generation"]);
    let seen = int(&status["observedGeneration"]);
    (seen < generation)
        .then(|| Health::Progressing("the controller has not seen the latest change yet".into()))
}

fn replicas(obj: &Value, status: &Value) -> Health {
    if let Some(h) = observed(obj, status) {
        return h;
    }
    let want = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    let updated = int(&status["updatedReplicas"]);
    let ready = int(&status["readyReplicas"]);
    let total = int(&status["replicas"]);
    if updated < want {
        Health::Progressing(format!("{updated} of {want} replicas updated"))
    } else if ready < want {
        Health::Progressing(format!("{ready} of {want} replicas ready"))
    } else if total > want {
        Health::Progressing(format!("{} old replicas still terminating", total - want))
    } else {
        Health::Ready
    }
}

fn daemonset(obj: &Value, status: &Value) -> Health {
    if let Some(h) = observed(obj, status) {
        return h;
    }
    let want = int(&status["desiredNumberScheduled"]);
    let updated = int(&status["updatedNumberScheduled"]);
    let ready = int(&status["numberReady"]);
    if updated < want {
        Health::Progressing(format!("{updated} of {want} pods updated"))
    } else if ready < want {
        Health::Progressing(format!("{ready} of {want} pods ready"))
    } else {
        Health::Ready
    }
}

fn job(status: &Value) -> Health {
    if condition(status, "Failed") == Some("True") {
        let why = condition_message(status, "Failed").unwrap_or_else(|| "the job failed".into());
        return Health::Failed(why);
    }
    match condition(status, "Complete") {
        Some("True") => Health::Ready,
        _ => Health::Progressing(format!(
            "{} pods succeeded, not complete yet",
            int(&status["succeeded"])
        )),
    }
}

fn find<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(kind))
}

fn condition<'a>(status: &'a Value, kind: &str) -> Option<&'a str> {
    find(status, kind).map(|c| c["status"].as_str().unwrap_or("Unknown"))
}

fn condition_message(status: &Value, kind: &str) -> Option<String> {
    let c = find(status, kind)?;
    let reason = c["reason"].as_str().unwrap_or("");
    let message = c["message"].as_str().unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (true, true) => None,
        (false, true) => Some(reason.to_string()),
        (true, false) => Some(message.to_string()),
        (false, false) => Some(format!("{reason}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployments_are_ready_once_rolled_out() {
        let d = |generation: i64, status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"generation": generation},
                   "spec": {"replicas": 3}, "status": status})
        };
        let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3});
        assert_eq!(health(&d(2, done.clone())), Health::Ready);
        assert!(matches!(health(&d(3, done)), Health::Progressing(m) if m.contains("not seen")));
        let half = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 1});
        assert_eq!(
            health(&d(2, half)),
            Health::Progressing("1 of 3 replicas ready".into())
        );
        let surge = json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "readyReplicas": 3});
        assert!(matches!(health(&d(2, surge)), Health::Progressing(_)));
    }

    #[test]
    fn jobs_crds_and_conditions() {
        let job = |c: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "status": {"conditions": [c]}});
        assert_eq!(
            health(&job(json!({"type": "Complete", "status": "True"}))),
            Health::Ready
        );
        assert!(matches!(
            health(&job(json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}))),
            Health::Failed(m) if m == "BackoffLimitExceeded"
        ));
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "status": {"conditions": [{"type": "Established", "status": "True"}]}});
        assert_eq!(health(&crd), Health::Ready);
        let cr = json!({"apiVersion": "x.io/v1", "kind": "Thing",
                        "status": {"conditions": [{"type": "Ready", "status": "False", "message": "waiting"}]}});
        assert_eq!(health(&cr), Health::Progressing("waiting".into()));
        assert_eq!(
            health(&json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            Health::Ready
        );
    }
}
