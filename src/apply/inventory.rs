//! The inventory of an app in a cluster: which objects it applied, so that
//! objects that leave git can be pruned, and so that another agent
//! instance can take over. Stored in the cluster itself, as the ConfigMap
//! `mooring-inventory-<app>` in `agent { inventory-namespace }`:
//!
//! ```yaml
//! data:
//!   app: podinfo
//!   revision: main@sha1:…
//!   entries: '[{"apiVersion":"apps/v1","kind":"Deployment","namespace":"demo","name":"web"}, …]'
//! ```
//!
//! Anyone who can edit ConfigMaps there can edit an inventory: an entry
//! whose name its kind does not allow (`../../x`) makes the whole
//! inventory refused, and nothing is pruned from it.

use std::collections::BTreeSet;

use kube::api::{Api, Patch, PatchParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::names::{self, segment};
use crate::render::ObjectId;

/// The label that marks inventory ConfigMaps (value: the app).
pub const LABEL: &str = "app.mooring.dev/inventory";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    api_version: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("inventory {namespace}/{name}: {message}")]
    Api {
        namespace: String,
        name: String,
        message: String,
        retryable: bool,
    },
    #[error("inventory {namespace}/{name} is not a mooring inventory: {message}")]
    Corrupt {
        namespace: String,
        name: String,
        message: String,
    },
}

/// The ConfigMap's name for `app`: a DNS subdomain even when the app's
/// name has capitals or `_` (then with a hash to keep names apart).
pub fn name(app: &str) -> String {
    let clean: String = app
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect();
    if clean == app {
        format!("mooring-inventory-{app}")
    } else {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(app.as_bytes());
        let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("mooring-inventory-{clean}-{hex}")
    }
}

/// What an inventory holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub objects: BTreeSet<ObjectId>,
    /// The revision last recorded; `None` without an inventory.
    pub revision: Option<String>,
}

/// The objects recorded for `app`; empty when it has no inventory yet.
pub async fn load(client: &kube::Client, namespace: &str, app: &str) -> Result<Recorded, Error> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &segment(namespace));
    let name = name(app);
    let cm = api
        .get_opt(&segment(&name))
        .await
        .map_err(|e| api_error(namespace, &name, e))?;
    let Some(cm) = cm else {
        return Ok(Recorded::default());
    };
    let corrupt = |message: String| Error::Corrupt {
        namespace: namespace.to_string(),
        name: name.clone(),
        message,
    };
    let data = cm.data.unwrap_or_default();
    if data.get("app").map(String::as_str) != Some(app) {
        return Err(corrupt(format!("it does not belong to app \"{app}\"")));
    }
    let entries: Vec<Entry> = serde_json::from_str(data.get("entries").map_or("[]", String::as_str))
        .map_err(|e| corrupt(format!("its entries do not parse: {e}")))?;
    let mut objects = BTreeSet::new();
    for e in entries {
        let id = ObjectId {
            api_version: e.api_version,
            kind: e.kind,
            namespace: e.namespace,
            name: e.name,
        };
        names::check(&id).map_err(|why| corrupt(format!("its entry {id} is not an object: {why}")))?;
        objects.insert(id);
    }
    Ok(Recorded {
        objects,
        revision: data.get("revision").cloned(),
    })
}

/// Record `objects` as what `app` applied at `revision`.
pub async fn store(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    field_manager: &str,
    revision: &str,
    objects: &BTreeSet<ObjectId>,
) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &segment(namespace));
    let name = name(app);
    let entries: Vec<Entry> = objects
        .iter()
        .map(|o| Entry {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
        })
        .collect();
    let entries = serde_json::to_string(&entries).unwrap_or_else(|_| "[]".into());
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": namespace, "labels": { LABEL: app } },
        "data": { "app": app, "revision": revision, "entries": entries },
    });
    let params = PatchParams::apply(field_manager).force();
    api.patch(&segment(&name), &params, &Patch::Apply(&cm))
        .await
        .map(drop)
        .map_err(|e| api_error(namespace, &name, e))
}

/// Delete `app`'s inventory (gone already is fine).
pub async fn delete(client: &kube::Client, namespace: &str, app: &str) -> Result<(), Error> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &segment(namespace));
    let name = name(app);
    match api.delete(&segment(&name), &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(api_error(namespace, &name, e)),
    }
}

fn api_error(namespace: &str, name: &str, e: kube::Error) -> Error {
    let (message, retryable) = match &e {
        kube::Error::Api(s) if s.code == 404 => (
            format!(
                "namespace \"{namespace}\" does not exist: create it, or set `agent {{ inventory-namespace }}` to one that does"
            ),
            true,
        ),
        kube::Error::Api(s) => (s.message.clone(), s.code >= 500 || s.code == 409 || s.code == 429),
        other => (super::kube::message(other), true),
    };
    Error::Api {
        namespace: namespace.to_string(),
        name: name.to_string(),
        message,
        retryable,
    }
}

impl crate::reason::Classify for Error {
    fn reason(&self) -> crate::reason::Reason {
        crate::reason::Reason::ApplyFailed
    }

    fn retryable(&self) -> bool {
        match self {
            Error::Api { retryable, .. } => *retryable,
            Error::Corrupt { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::name;

    #[test]
    fn names_are_dns_subdomains() {
        assert_eq!(name("podinfo"), "mooring-inventory-podinfo");
        let odd = name("My_App");
        assert!(
            odd.starts_with("mooring-inventory-my-app-")
                && odd.len() == "mooring-inventory-my-app-".len() + 8
        );
        assert_ne!(name("a_b"), name("a.b"));
    }
}
