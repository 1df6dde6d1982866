//! The status the controllers of a real cluster would write for workloads:
//! not ready right after a change of generation, ready once the rollout
//! delay has passed. Zero counts are left out, as the real API server's
//! `omitempty` does.

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

pub const NEVER_READY: &str = "test.mooring.dev/never-ready";

pub fn never_ready(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(NEVER_READY))
        .and_then(Value::as_str)
        == Some("true")
}

fn replicas(obj: &Value) -> u64 {
    obj.pointer("/spec/replicas").and_then(Value::as_u64).unwrap_or(1)
}

fn generation(obj: &Value) -> Option<u64> {
    obj.pointer("/metadata/generation").and_then(Value::as_u64)
}

fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `web-5d7f8c9b6d`: the name of the ReplicaSet or revision of a pod template.
fn revision(obj: &Value) -> String {
    let template = obj.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    let hash = Sha256::digest(template.to_string().as_bytes());
    let hex: String = hash.iter().take(5).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hex}", name(obj))
}

fn put(map: &mut Map<String, Value>, key: &str, n: u64) {
    if n > 0 {
        map.insert(key.into(), n.into());
    }
}

fn condition(kind: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": kind, "status": status, "reason": reason, "message": message,
        "lastUpdateTime": now, "lastTransitionTime": now,
    })
}

/// A Deployment's `Available` and `Progressing` conditions, before and
/// after its rollout.
fn deployment_conditions(obj: &Value, ready: bool, now: &str) -> Value {
    let rs = revision(obj);
    let available = if ready {
        condition(
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            now,
        )
    } else {
        let message = "Deployment does not have minimum availability.";
        condition("Available", "False", "MinimumReplicasUnavailable", message, now)
    };
    let progressing = if ready {
        let message = format!("ReplicaSet {rs:?} has successfully progressed.");
        condition("Progressing", "True", "NewReplicaSetAvailable", &message, now)
    } else {
        let message = format!("ReplicaSet {rs:?} is progressing.");
        condition("Progressing", "True", "ReplicaSetUpdated", &message, now)
    };
    json!([available, progressing])
}

/// Every field of `fields` (an object) into `map`.
fn extend(map: &mut Map<String, Value>, fields: Value) {
    if let Value::Object(fields) = fields {
        map.extend(fields);
    }
}

/// What a Job's status shows while it runs and once it is done: the
/// controller writes no `observedGeneration` for Jobs.
fn job(s: &mut Map<String, Value>, now: &str) {
    s.remove("observedGeneration");
    extend(
        s,
        json!({"ready": 0, "terminating": 0, "startTime": now, "uncountedTerminatedPods": {}}),
    );
}

/// The status of a workload just after a change to generation
/// `generation(obj)`, from `old` (None on create): the controller has not
/// yet observed it.
pub fn not_ready(kind: &str, obj: &Value, old: Option<&Value>, now: &str) -> Value {
    let mut s = Map::new();
    if let Some(g) = old.and_then(generation) {
        s.insert("observedGeneration".into(), g.into());
    }
    let n = replicas(obj);
    match kind {
        "Deployment" => {
            put(&mut s, "replicas", n);
            put(&mut s, "unavailableReplicas", n);
            s.insert("conditions".into(), deployment_conditions(obj, false, now));
        }
        "StatefulSet" => {
            put(&mut s, "replicas", n);
            let current = old.map(revision).unwrap_or_else(|| revision(obj));
            s.insert("currentRevision".into(), current.into());
            s.insert("updateRevision".into(), revision(obj).into());
            s.insert("collisionCount".into(), 0.into());
        }
        "DaemonSet" => extend(
            &mut s,
            json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0,
                   "numberReady": 0, "numberUnavailable": 1}),
        ),
        "Job" => {
            job(&mut s, now);
            s.insert("active".into(), 1.into());
        }
        _ => {}
    }
    Value::Object(s)
}

/// The status of a workload whose rollout finished.
pub fn ready(kind: &str, obj: &Value, now: &str) -> Value {
    let mut s = Map::new();
    if let Some(g) = generation(obj) {
        s.insert("observedGeneration".into(), g.into());
    }
    let n = replicas(obj);
    match kind {
        "Deployment" => {
            for k in [
                "replicas",
                "updatedReplicas",
                "readyReplicas",
                "availableReplicas",
            ] {
                put(&mut s, k, n);
            }
            s.insert("conditions".into(), deployment_conditions(obj, true, now));
        }
        "StatefulSet" => {
            for k in [
                "replicas",
                "readyReplicas",
                "currentReplicas",
                "updatedReplicas",
                "availableReplicas",
            ] {
                put(&mut s, k, n);
            }
            s.insert("currentRevision".into(), revision(obj).into());
            s.insert("updateRevision".into(), revision(obj).into());
            s.insert("collisionCount".into(), 0.into());
        }
        "DaemonSet" => extend(
            &mut s,
            json!({"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberReady": 1,
                   "updatedNumberScheduled": 1, "numberAvailable": 1, "numberMisscheduled": 0}),
        ),
        "Job" => {
            job(&mut s, now);
            s.insert("succeeded".into(), 1.into());
            s.insert("completionTime".into(), now.into());
            s.insert(
                "conditions".into(),
                json!([
                    {"type": "SuccessCriteriaMet", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods",
                     "lastProbeTime": now, "lastTransitionTime": now},
                    {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                     "message": "Reached expected number of succeeded pods",
                     "lastProbeTime": now, "lastTransitionTime": now},
                ]),
            );
        }
        _ => {}
    }
    Value::Object(s)
}

/// A CRD's status once the API server accepted its names: established
/// (its kind served) or, until then, `Established` False while installing.
pub fn crd(obj: &Value, now: &str, established: bool) -> Value {
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let mut accepted = names.clone();
    if accepted.get("singular").is_none() {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default();
        accepted["singular"] = kind.to_lowercase().into();
    }
    if accepted.get("listKind").is_none() {
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or_default();
        accepted["listKind"] = format!("{kind}List").into();
    }
    let stored: Vec<Value> = obj
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    let cond = |t: &str, status: &str, reason: &str, message: &str| json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": now});
    let established = if established {
        cond(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
        )
    } else {
        cond(
            "Established",
            "False",
            "Installing",
            "the initial names have been accepted",
        )
    };
    json!({
        "acceptedNames": accepted,
        "conditions": [cond("NamesAccepted", "True", "NoConflicts", "no conflicts found"), established],
        "storedVersions": stored,
    })
}

/// Whether a CRD's status says it is established.
pub fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}
