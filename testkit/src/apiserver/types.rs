//! The resource types the server knows: the built-in ones and those of the
//! established CustomResourceDefinitions.

use serde_json::{Value, json};

use super::rules::NameRule;

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    /// "" for the core group.
    pub group: String,
    /// Served versions, the preferred (storage) one first.
    pub versions: Vec<String>,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Whether objects carry `metadata.generation` (workloads, CRDs and
    /// custom resources do; ConfigMaps, Secrets, Services… do not).
    pub generation: bool,
    /// The CRD that defines this type.
    pub crd: Option<String>,
    /// How names of new objects are checked.
    pub name_rule: NameRule,
}

impl ResourceType {
    pub fn group_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// `deployments.apps`, as error details and messages name it.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The URL prefix of a version: `/api/v1` or `/apis/apps/v1`.
    pub fn prefix(&self, version: &str) -> String {
        if self.group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{}/{version}", self.group)
        }
    }

    /// The path of an object, or of the collection when `name` is None.
    pub fn path(&self, version: &str, namespace: Option<&str>, name: Option<&str>) -> String {
        let mut p = self.prefix(version);
        if let (true, Some(ns)) = (self.namespaced, namespace) {
            p.push_str(&format!("/namespaces/{ns}"));
        }
        p.push('/');
        p.push_str(&self.plural);
        if let Some(name) = name {
            p.push('/');
            p.push_str(name);
        }
        p
    }

    pub fn discovery(&self) -> Value {
        let mut r = json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !self.short_names.is_empty() {
            r["shortNames"] = json!(self.short_names);
        }
        if self.crd.is_some() {
            r["categories"] = json!([]);
        }
        r
    }

    /// Whether this is a workload whose status the server simulates.
    pub fn is_workload(&self) -> bool {
        matches!(
            (self.group.as_str(), self.kind.as_str()),
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet") | ("batch", "Job")
        )
    }
}

fn builtin(
    group: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    generation: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        versions: vec!["v1".into()],
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        generation,
        crd: None,
        name_rule: match (group, kind) {
            ("", "Namespace") => NameRule::Label,
            ("", "Service") => NameRule::Dns1035,
            ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
            _ => NameRule::Subdomain,
        },
    }
}

pub fn builtins() -> Vec<ResourceType> {
    const RBAC: &str = "rbac.authorization.k8s.io";
    vec![
        builtin("", "namespaces", "Namespace", false, &["ns"], false),
        builtin("", "configmaps", "ConfigMap", true, &["cm"], false),
        builtin("", "secrets", "Secret", true, &[], false),
        builtin("", "services", "Service", true, &["svc"], false),
        builtin("", "serviceaccounts", "ServiceAccount", true, &["sa"], false),
        builtin("", "pods", "Pod", true, &["po"], false),
        builtin("apps", "deployments", "Deployment", true, &["deploy"], true),
        builtin("apps", "statefulsets", "StatefulSet", true, &["sts"], true),
        builtin("apps", "daemonsets", "DaemonSet", true, &["ds"], true),
        builtin("batch", "jobs", "Job", true, &[], true),
        builtin(RBAC, "roles", "Role", true, &[], false),
        builtin(RBAC, "rolebindings", "RoleBinding", true, &[], false),
        builtin(RBAC, "clusterroles", "ClusterRole", false, &[], false),
        builtin(
            RBAC,
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
        ),
        builtin("networking.k8s.io", "ingresses", "Ingress", true, &["ing"], true),
        builtin("coordination.k8s.io", "leases", "Lease", true, &[], false),
    ]
}

/// The type a CRD defines, or why it cannot (as a field error).
pub fn from_crd(crd: &Value) -> Result<ResourceType, String> {
    let spec = crd.get("spec").ok_or("spec: Required value")?;
    let s = |p: &str| {
        spec.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (group, plural, kind) = (s("/group"), s("/names/plural"), s("/names/kind"));
    if group.is_empty() {
        return Err("spec.group: Required value".into());
    }
    if plural.is_empty() {
        return Err("spec.names.plural: Required value".into());
    }
    if kind.is_empty() {
        return Err("spec.names.kind: Required value".into());
    }
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name != format!("{plural}.{group}") {
        return Err(format!(
            "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"
        ));
    }
    let namespaced = match s("/scope").as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        other => {
            return Err(format!(
                "spec.scope: Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""
            ));
        }
    };
    let mut versions: Vec<(bool, String)> = Vec::new();
    for v in spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err("spec.versions.name: Required value".into());
        }
        if v.get("served").and_then(Value::as_bool).unwrap_or(false) {
            let storage = v.get("storage").and_then(Value::as_bool).unwrap_or(false);
            versions.push((!storage, name.to_string()));
        }
    }
    if versions.is_empty() {
        return Err("spec.versions: Invalid value: must have at least one served version".into());
    }
    versions.sort_by_key(|(not_storage, _)| *not_storage);
    let short_names = spec
        .pointer("/names/shortNames")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    let singular = match s("/names/singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    Ok(ResourceType {
        group,
        versions: versions.into_iter().map(|(_, v)| v).collect(),
        plural,
        singular,
        kind,
        namespaced,
        short_names,
        generation: true,
        crd: Some(name.to_string()),
        name_rule: NameRule::Subdomain,
    })
}
