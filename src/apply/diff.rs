//! What an apply would change, before it does: every object is applied as
//! a server-side dry run (`dryRun=All`, mooring's field manager) and the
//! answer is compared with the live object; objects the app's inventory
//! lists but git no longer has show as deleted when the app prunes.
//! `managedFields`, `status` and the fields the server bumps on every
//! write are left out, and Secret values are masked.

use std::collections::BTreeSet;

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::cluster::Cluster;
use super::kube::{Error, Options, message};
use super::{inventory, kube as apply};
use crate::render::{Manifest, ObjectId};

/// One object whose live and desired forms differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    /// YAML of the live object; `None` when it does not exist yet.
    pub live: Option<String>,
    /// YAML of what it would become; `None` when it would be pruned.
    pub desired: Option<String>,
}

impl Change {
    /// The change from `live` to `desired` (either may be absent), both
    /// cleaned and with Secret values masked; `None` when they are equal.
    /// Every change is made here, so that no path shows a Secret's values.
    fn new(id: &impl std::fmt::Display, live: Option<Value>, desired: Option<Value>) -> Option<Change> {
        let mut live = live.map(clean);
        let mut desired = desired.map(clean).unwrap_or(Value::Null);
        mask_secrets(live.as_mut(), &mut desired);
        let live = live.as_ref().map(yaml);
        let desired = (!desired.is_null()).then(|| yaml(&desired));
        (live != desired).then(|| Change {
            id: id.to_string(),
            live,
            desired,
        })
    }

    /// A unified diff of the two, with `live/ID` and `desired/ID` headers.
    pub fn unified(&self) -> String {
        let (a, b) = (
            self.live.as_deref().unwrap_or(""),
            self.desired.as_deref().unwrap_or(""),
        );
        let mut out = similar::TextDiff::from_lines(a, b)
            .unified_diff()
            .context_radius(3)
            .header(&format!("live/{}", self.id), &format!("desired/{}", self.id))
            .to_string();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }
}

/// The changes applying `manifests` would make, in apply order.
pub async fn diff(
    cluster: &Cluster,
    manifests: Vec<Manifest>,
    opts: &Options<'_>,
) -> Result<Vec<Change>, Error> {
    let planned = apply::plan(cluster, manifests, opts).await?;
    let mut changes = Vec::new();
    let mut errors = Vec::new();
    let params = PatchParams {
        field_manager: Some(opts.field_manager.to_string()),
        force: opts.force,
        dry_run: true,
        ..PatchParams::default()
    };
    let mut wanted: BTreeSet<ObjectId> = BTreeSet::new();
    let mut new_namespaces: BTreeSet<String> = BTreeSet::new();
    for item in &planned.objects {
        wanted.insert(item.id.clone());
        let Some(resource) = &item.resource else {
            // Its CRD is in this app and not yet served: all of it is new.
            changes.extend(Change::new(&item.id, None, Some(item.body.clone())));
            continue;
        };
        let api = cluster.api(resource, item.id.namespace.as_deref());
        let live = match api.get_opt(&item.id.name).await {
            Ok(l) => l,
            Err(e) => {
                errors.push(item.error(message(&e), true));
                continue;
            }
        };
        let would = match api.patch(&item.id.name, &params, &Patch::Apply(&item.body)).await {
            Ok(o) => o,
            // Its namespace is new too (and planned before it).
            Err(kube::Error::Api(s))
                if s.code == 404
                    && item
                        .id
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| new_namespaces.contains(ns.as_str())) =>
            {
                changes.extend(Change::new(&item.id, None, Some(item.body.clone())));
                continue;
            }
            Err(e) => {
                errors.push(item.error(
                    message(&e),
                    !matches!(&e, kube::Error::Api(s) if s.code == 400 || s.code == 422),
                ));
                continue;
            }
        };
        if live.is_none() && item.id.kind == "Namespace" && item.id.group().is_empty() {
            new_namespaces.insert(item.id.name.clone());
        }
        let live = live.map(|l| serde_json::to_value(l).unwrap_or_default());
        let would = serde_json::to_value(would).unwrap_or_default();
        changes.extend(Change::new(&item.id, live, Some(would)));
    }
    if !errors.is_empty() {
        return Err(if errors.len() == 1 {
            errors.remove(0)
        } else {
            Error::Many(errors)
        });
    }
    if opts.prune {
        let old = inventory::load(cluster.client(), opts.inventory_namespace, opts.app)
            .await?
            .objects;
        for id in old.difference(&wanted) {
            let Ok(Some((_, api))) = cluster.api_for(id).await else {
                continue;
            };
            let Ok(Some(live)) = api.get_opt(&id.name).await else {
                continue;
            };
            let annotations = live.metadata.annotations.clone().unwrap_or_default();
            let labels = live.metadata.labels.clone().unwrap_or_default();
            if annotations.get(apply::PRUNE_ANNOTATION).map(String::as_str) == Some("disabled")
                || labels.get(apply::OWNER_LABEL).map(String::as_str) != Some(opts.app)
            {
                continue;
            }
            let live = serde_json::to_value(live).unwrap_or_default();
            changes.extend(Change::new(id, Some(live), None));
        }
    }
    Ok(changes)
}

/// Leave out what the server manages and what changes on every write.
fn clean(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in ["managedFields", "resourceVersion", "generation"] {
                meta.remove(k);
            }
        }
    }
    v
}

/// Replace Secret values by `***`, telling only whether each changed.
fn mask_secrets(live: Option<&mut Value>, desired: &mut Value) {
    let is_secret = |v: &Value| v["kind"] == "Secret" && v["apiVersion"] == "v1";
    let live = live.filter(|l| is_secret(l));
    if live.is_none() && !is_secret(desired) {
        return;
    }
    let mut live = live;
    for field in ["data", "stringData"] {
        let before = live
            .as_ref()
            .and_then(|l| l.get(field))
            .cloned()
            .unwrap_or(Value::Null);
        let after = desired.get(field).cloned().unwrap_or(Value::Null);
        let mark = |v: &Value, other: &Value, side: &str| -> Value {
            match v.as_object() {
                Some(map) => Value::Object(
                    map.iter()
                        .map(|(k, val)| {
                            let same = other.get(k) == Some(val);
                            let text = if same {
                                "***".to_string()
                            } else {
                                format!("*** ({side})")
                            };
                            (k.clone(), Value::String(text))
                        })
                        .collect(),
                ),
                None => v.clone(),
            }
        };
        if let Some(l) = live.as_deref_mut().and_then(Value::as_object_mut)
            && !before.is_null()
        {
            l.insert(field.into(), mark(&before, &after, "before"));
        }
        if let Some(d) = desired.as_object_mut()
            && !after.is_null()
        {
            d.insert(field.into(), mark(&after, &before, "after"));
        }
    }
}

fn yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).unwrap_or_else(|e| format!("# cannot show as YAML: {e}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked_and_say_whether_they_changed() {
        let mut live = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "MQ==", "b": "Mg=="}});
        let mut desired = json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "MQ==", "b": "Mw=="}});
        mask_secrets(Some(&mut live), &mut desired);
        assert_eq!(live["data"], json!({"a": "***", "b": "*** (before)"}));
        assert_eq!(desired["data"], json!({"a": "***", "b": "*** (after)"}));
        let text = format!("{}{}", yaml(&live), yaml(&desired));
        assert!(!text.contains("MQ==") && !text.contains("Mw=="), "{text}");
    }

    #[test]
    fn every_change_masks_secrets_whichever_side_is_missing() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "aHVudGVyMg=="}, "stringData": {"b": "hunter2"}});
        for (live, desired) in [(None, Some(secret.clone())), (Some(secret.clone()), None)] {
            let c = Change::new(&"Secret/ns/s", live, desired).expect("a change");
            let text = c.unified();
            assert!(
                !text.contains("hunter2") && !text.contains("aHVudGVyMg=="),
                "{text}"
            );
            assert!(text.contains("***"), "{text}");
        }
    }

    #[test]
    fn unified_diff_has_headers() {
        let c = Change {
            id: "ConfigMap/demo/x".into(),
            live: Some("a: 1\nb: 2\n".into()),
            desired: Some("a: 1\nb: 3\n".into()),
        };
        let d = c.unified();
        assert!(
            d.starts_with("--- live/ConfigMap/demo/x\n+++ desired/ConfigMap/demo/x\n"),
            "{d}"
        );
        assert!(d.contains("-b: 2\n+b: 3\n"), "{d}");
    }
}
