//! Discovery (`/version`, `/api`, `/apis`, resource lists) and the OpenAPI v3
//! documents kubectl reads before an apply, built from the current types.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::types::ResourceType;

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0",
        "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T17:58:34Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Groups (not the core one) and their versions, the preferred one first.
fn groups(types: &[ResourceType]) -> BTreeMap<&str, Vec<&str>> {
    let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in types.iter().filter(|t| !t.group.is_empty()) {
        let versions = out.entry(&t.group).or_default();
        for v in &t.versions {
            if !versions.contains(&v.as_str()) {
                versions.push(v);
            }
        }
    }
    out
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{name}/{v}"), "version": v});
    json!({
        "name": name,
        "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
        "preferredVersion": gv(versions[0]),
    })
}

pub fn api_group_list(types: &[ResourceType]) -> Value {
    let groups: Vec<Value> = groups(types).iter().map(|(g, vs)| group_json(g, vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub fn api_group(types: &[ResourceType], group: &str) -> Option<Value> {
    let groups = groups(types);
    let versions = groups.get(group)?;
    let mut g = group_json(group, versions);
    g["kind"] = "APIGroup".into();
    g["apiVersion"] = "v1".into();
    Some(g)
}

pub fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Option<Value> {
    let resources: Vec<Value> = types
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
        .map(ResourceType::discovery)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
}

/// The OpenAPI v3 document of one group/version (`api/v1`,
/// `apis/apps/v1`): a `patch` operation per resource, with the
/// group-version-kind and the `fieldValidation` parameter kubectl looks for.
pub fn openapi_doc(types: &[ResourceType], path: &str) -> Option<Value> {
    let (group, version) = match path.split('/').collect::<Vec<_>>()[..] {
        ["api", v] => ("", v),
        ["apis", g, v] => (g, v),
        _ => return None,
    };
    let mut paths = Map::new();
    for t in types
        .iter()
        .filter(|t| t.group == group && t.versions.iter().any(|v| v == version))
    {
        let url = if t.namespaced {
            format!(
                "{}/namespaces/{{namespace}}/{}/{{name}}",
                t.prefix(version),
                t.plural
            )
        } else {
            format!("{}/{}/{{name}}", t.prefix(version), t.plural)
        };
        let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        let gvk = json!({"group": group, "version": version, "kind": t.kind});
        paths.insert(
            url,
            json!({
                "get": {
                    "operationId": format!("read{}", t.kind),
                    "x-kubernetes-action": "get",
                    "x-kubernetes-group-version-kind": gvk,
                },
                "patch": {
                    "operationId": format!("patch{}", t.kind),
                    "x-kubernetes-action": "patch",
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": [query("dryRun"), query("fieldManager"), query("fieldValidation"), query("force")],
                    "requestBody": {"content": {
                        "application/apply-patch+yaml": {"schema": {"type": "object"}},
                        "application/json-patch+json": {"schema": {"type": "object"}},
                        "application/merge-patch+json": {"schema": {"type": "object"}},
                        "application/strategic-merge-patch+json": {"schema": {"type": "object"}},
                    }},
                    "responses": {"200": {"description": "OK"}, "201": {"description": "Created"}},
                },
            }),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// The OpenAPI v3 root: a URL per group/version, with a hash of its
/// document so that kubectl's cache notices changes (a new CRD).
pub fn openapi_root(types: &[ResourceType]) -> Value {
    let mut gvs: Vec<String> = Vec::new();
    for t in types {
        for v in &t.versions {
            let p = if t.group.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{}/{v}", t.group)
            };
            if !gvs.contains(&p) {
                gvs.push(p);
            }
        }
    }
    let mut paths = Map::new();
    for p in gvs {
        let Some(doc) = openapi_doc(types, &p) else {
            continue;
        };
        let hash: String = Sha256::digest(doc.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}
