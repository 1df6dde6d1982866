//! `.Capabilities` as `helm template` (Helm 3.17.2) fills it: Kubernetes
//! v1.32.0 unless `--kube-version` says otherwise, the API versions its
//! client library knows plus `--api-versions`, and Helm's own version.

use std::rc::Rc;

use super::semver::Version;
use super::value::{Elem, Field, List, Struct, StructType, Value};

/// Helm's default API version set: what client-go v0.32 registers, plus
/// `apiextensions.k8s.io`, in Helm's order.
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1alpha1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha1",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1alpha1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// The Kubernetes version `helm template` assumes.
pub const DEFAULT_KUBE_VERSION: &str = "v1.32.0";

pub const HELM_VERSION: &str = "v3.17.2";
const HELM_GIT_COMMIT: &str = "cc0bbbd6d6276b83880042c1ecb34087e84d41eb";
const HELM_GO_VERSION: &str = "go1.23.7";

/// `.Capabilities.KubeVersion`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeVersion {
    /// `v1.32.0`
    pub version: String,
    pub major: String,
    pub minor: String,
}

impl KubeVersion {
    /// `chartutil.ParseKubeVersion`: `1.31`, `v1.31.2`, …
    pub fn parse(s: &str) -> Result<KubeVersion, String> {
        let v = Version::parse(s)?;
        Ok(KubeVersion {
            version: format!("v{v}"),
            major: v.major.to_string(),
            minor: v.minor.to_string(),
        })
    }

    pub fn default_version() -> KubeVersion {
        KubeVersion {
            version: DEFAULT_KUBE_VERSION.into(),
            major: "1".into(),
            minor: "32".into(),
        }
    }
}

/// What a render may assume about the cluster.
#[derive(Debug, Clone)]
pub struct Capabilities {
    pub kube_version: KubeVersion,
    pub api_versions: Vec<String>,
}

impl Default for Capabilities {
    fn default() -> Capabilities {
        Capabilities {
            kube_version: KubeVersion::default_version(),
            api_versions: DEFAULT_API_VERSIONS.iter().map(|s| s.to_string()).collect(),
        }
    }
}

fn field(name: &'static str, json: Option<&'static str>, omit_empty: bool, value: Value) -> Field {
    Field {
        name,
        json,
        omit_empty,
        value,
    }
}

impl Capabilities {
    /// `.Capabilities` as a template value.
    pub fn value(&self) -> Value {
        let kv = Value::Struct(Rc::new(Struct {
            ty: StructType::KubeVersion,
            fields: vec![
                field("Version", None, false, Value::str(&self.kube_version.version)),
                field("Major", None, false, Value::str(&self.kube_version.major)),
                field("Minor", None, false, Value::str(&self.kube_version.minor)),
            ],
        }));
        let apis = Value::List(Rc::new(List {
            elem: Elem::VersionSet,
            items: self.api_versions.iter().map(|s| Value::str(s)).collect(),
        }));
        let helm = Value::Struct(Rc::new(Struct {
            ty: StructType::HelmVersion,
            fields: vec![
                field("Version", Some("version"), true, Value::str(HELM_VERSION)),
                field("GitCommit", Some("git_commit"), true, Value::str(HELM_GIT_COMMIT)),
                field("GitTreeState", Some("git_tree_state"), true, Value::str("clean")),
                field("GoVersion", Some("go_version"), true, Value::str(HELM_GO_VERSION)),
            ],
        }));
        Value::Struct(Rc::new(Struct {
            ty: StructType::Capabilities,
            fields: vec![
                field("KubeVersion", None, false, kv),
                field("APIVersions", None, false, apis),
                field("HelmVersion", None, false, helm),
            ],
        }))
    }
}
