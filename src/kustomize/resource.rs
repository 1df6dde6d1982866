//! Resources and their ids, and the ordered list of them a build
//! accumulates (kustomize's `ResMap`), with kustomize's rules for ids:
//! cluster-scoped kinds, effective namespaces, previous names.

use std::collections::HashMap;
use std::fmt;

use super::yaml::Node;

/// Cluster-scoped `apiVersion`/`kind` pairs kustomize v5.5 knows (its
/// built-in OpenAPI data, Kubernetes 1.21); every other kind is namespaced.
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiregistration.k8s.io/v1beta1", "APIService"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
    ),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("node.k8s.io/v1beta1", "RuntimeClass"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("storage.k8s.io/v1beta1", "CSIDriver"),
    ("storage.k8s.io/v1beta1", "CSINode"),
    ("storage.k8s.io/v1beta1", "StorageClass"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment"),
    ("v1", "ComponentStatus"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "NodeProxyOptions"),
    ("v1", "PersistentVolume"),
];

/// Whether kustomize knows this kind as cluster-scoped.
pub fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    // Most kinds are namespaced: decide on the kind first.
    if !CLUSTER_SCOPED.iter().any(|(_, k)| *k == kind) {
        return false;
    }
    CLUSTER_SCOPED.iter().any(|(av, k)| {
        *k == kind && {
            let (g, v) = split_api_version(av);
            g == group && v == version
        }
    })
}

/// What kustomize's ids write for an empty namespace of a namespaced kind.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = split_api_version(api_version);
        Gvk {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
        }
    }

    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(&self.group, &self.version, &self.kind)
    }

    /// `selector` (whose empty fields match anything) selects this.
    pub fn is_selected(&self, selector: &Gvk) -> bool {
        (selector.group.is_empty() || selector.group == self.group)
            && (selector.version.is_empty() || selector.version == self.version)
            && (selector.kind.is_empty() || selector.kind == self.kind)
    }

    /// kustomize's `Gvk.String()`: `group_version_kind` with `~G`, `~V`, `~K`
    /// for empty parts.
    pub fn legacy_string(&self) -> String {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "{}_{}_{}",
            or(&self.group, "~G"),
            or(&self.version, "~V"),
            or(&self.kind, "~K")
        )
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}.{}.{}",
            or(&self.kind, "[noKind]"),
            or(&self.version, "[noVer]"),
            or(&self.group, "[noGrp]")
        )
    }
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ResId {
    pub gvk: Gvk,
    pub name: String,
    pub namespace: String,
}

impl ResId {
    pub fn is_cluster_scoped(&self) -> bool {
        self.gvk.is_cluster_scoped()
    }

    /// The namespace for comparisons: `default` for an empty one, a marker
    /// for cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        if self.is_cluster_scoped() {
            "_non_namespaceable_"
        } else if self.namespace.is_empty() {
            DEFAULT_NAMESPACE
        } else {
            &self.namespace
        }
    }

    pub fn ns_equals(&self, o: &ResId) -> bool {
        (self.is_cluster_scoped() && o.is_cluster_scoped())
            || self.effective_namespace() == o.effective_namespace()
    }

    pub fn gvkn_equals(&self, o: &ResId) -> bool {
        self.gvk == o.gvk && self.name == o.name
    }

    pub fn equals(&self, o: &ResId) -> bool {
        self.gvkn_equals(o) && self.ns_equals(o)
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let name = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        write!(f, "{}/{}.{}", self.gvk, name, ns)
    }
}

/// A generated object's `behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    #[default]
    Create,
    Merge,
    Replace,
}

/// One object of the build and what kustomize remembers about it.
#[derive(Debug, Clone)]
pub struct Resource {
    pub node: Node,
    /// Where it came from (relative to the root), and the line.
    pub file: String,
    pub line: u32,
    /// Its ids before renames, oldest first (kustomize's previousNames,
    /// previousKinds and previousNamespaces build annotations).
    pub prev: Vec<ResId>,
    /// Prefixes and suffixes added to its name, in order.
    pub prefixes: Vec<String>,
    pub suffixes: Vec<String>,
    /// Generated objects: how they combine with an existing one, and
    /// whether they get a content-hash suffix.
    pub behavior: Behavior,
    pub needs_hash: bool,
    /// Ids of the objects that refer to this one by name.
    pub ref_by: Vec<ResId>,
    /// Names of the vars whose values come from this object.
    pub ref_var_names: Vec<String>,
    /// An estimate of its size, against builds that blow up.
    pub size: usize,
}

impl Resource {
    pub fn new(node: Node, file: &str, line: u32, size: usize) -> Resource {
        Resource {
            node,
            file: file.to_string(),
            line,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            behavior: Behavior::Create,
            needs_hash: false,
            ref_by: Vec::new(),
            ref_var_names: Vec::new(),
            size,
        }
    }

    pub fn api_version(&self) -> &str {
        self.node.str_at(&["apiVersion"]).unwrap_or("")
    }

    pub fn kind(&self) -> &str {
        self.node.str_at(&["kind"]).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.node.str_at(&["metadata", "name"]).unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        self.node.str_at(&["metadata", "namespace"]).unwrap_or("")
    }

    pub fn gvk(&self) -> Gvk {
        Gvk::new(self.api_version(), self.kind())
    }

    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name().to_string(),
            namespace: self.namespace().to_string(),
        }
    }

    /// The id it had when it entered the build.
    pub fn org_id(&self) -> ResId {
        self.prev.first().cloned().unwrap_or_else(|| self.cur_id())
    }

    /// Every id it has had, the current one last.
    pub fn all_ids(&self) -> impl Iterator<Item = ResId> + '_ {
        self.prev.iter().cloned().chain(std::iter::once(self.cur_id()))
    }

    /// Record the current id before a rename.
    pub fn remember_id(&mut self) {
        let id = self.cur_id();
        self.prev.push(id);
    }

    pub fn set_name(&mut self, name: &str) {
        if let Some(meta) = self.node.map_at("metadata") {
            meta.set("name", Node::str(name));
        }
    }

    /// Set `metadata.namespace`; an empty one removes it.
    pub fn set_namespace(&mut self, ns: &str) {
        if let Some(meta) = self.node.map_at("metadata") {
            if ns.is_empty() {
                meta.remove("namespace");
            } else {
                meta.set("namespace", Node::str(ns));
            }
        }
    }

    /// A map of strings under metadata (`labels`, `annotations`).
    pub fn string_map(&self, field: &str) -> Vec<(String, String)> {
        self.node
            .path(&["metadata", field])
            .and_then(Node::as_map)
            .map(|m| {
                m.iter()
                    .map(|e| {
                        let v = e.value.as_scalar().map(|s| s.text.clone()).unwrap_or_default();
                        (e.key.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn labels(&self) -> Vec<(String, String)> {
        self.string_map("labels")
    }

    pub fn annotations(&self) -> Vec<(String, String)> {
        self.string_map("annotations")
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.node
            .path(&["metadata", "annotations", key])
            .and_then(|n| n.as_scalar())
            .map(|s| s.text.as_str())
    }

    pub fn set_annotation(&mut self, key: &str, value: &str) {
        if let Some(meta) = self.node.map_at("metadata")
            && let Some(annos) = meta.map_at("annotations")
        {
            annos.set(key, Node::str(value));
        }
    }

    pub fn remove_annotation(&mut self, key: &str) {
        if let Some(meta) = self.node.get_mut("metadata")
            && let Some(annos) = meta.get_mut("annotations")
        {
            annos.remove(key);
            if annos.as_map().is_some_and(Vec::is_empty) {
                meta.remove("annotations");
            }
        }
    }
}

/// The resources of a build, in order.
#[derive(Debug, Clone, Default)]
pub struct ResMap {
    pub list: Vec<Resource>,
}

/// Why an append failed: an object with that id is there already.
#[derive(Debug)]
pub struct Conflict {
    pub id: ResId,
    /// Where each came from: file and line.
    pub first: (String, u32),
    pub second: (String, u32),
}

/// The key under which ids `equal` each other, borrowed from the object:
/// group/version, kind, name, effective namespace.
fn id_key(r: &Resource) -> (&str, &str, &str, &str) {
    let av = r.api_version();
    let kind = r.kind();
    let (g, v) = split_api_version(av);
    let ns = if is_cluster_scoped(g, v, kind) {
        "_non_namespaceable_"
    } else if r.namespace().is_empty() {
        DEFAULT_NAMESPACE
    } else {
        r.namespace()
    };
    (av, kind, r.name(), ns)
}

impl ResMap {
    pub fn size(&self) -> usize {
        self.list.iter().map(|r| r.size).sum()
    }

    /// Append resources, refusing an id that is already there.
    pub fn append_all(&mut self, other: Vec<Resource>) -> Result<(), Box<Conflict>> {
        let conflict = {
            let mut seen: HashMap<(&str, &str, &str, &str), usize> =
                HashMap::with_capacity(self.list.len() + other.len());
            let mut found = None;
            for (i, r) in self.list.iter().chain(other.iter()).enumerate() {
                if let Some(first) = seen.insert(id_key(r), i) {
                    found = Some((first, i));
                    break;
                }
            }
            found
        };
        if let Some((first, second)) = conflict {
            let n = self.list.len();
            let at = |i: usize| if i < n { &self.list[i] } else { &other[i - n] };
            let (a, b) = (at(first), at(second));
            return Err(Box::new(Conflict {
                id: b.cur_id(),
                first: (a.file.clone(), a.line),
                second: (b.file.clone(), b.line),
            }));
        }
        self.list.extend(other);
        Ok(())
    }

    /// The resources any of whose ids (previous or current) `matches`.
    pub fn by_any_id(&self, matches: impl Fn(&ResId) -> bool) -> Vec<usize> {
        self.list
            .iter()
            .enumerate()
            .filter(|(_, r)| r.all_ids().any(|id| matches(&id)))
            .map(|(i, _)| i)
            .collect()
    }
}
