//! From rendered template files to what `helm template` prints: each file
//! split into documents on `---` (Helm's `SplitManifests`), each document's
//! head read (`kind`, `metadata.name`, annotations — a document that is
//! not valid YAML is an error, as in Helm), hooks (`helm.sh/hook`) set
//! apart, both sorted by kind in Helm's install order, then printed as
//! `---\n# Source: FILE\nDOCUMENT\n`.

use super::yaml::{self, Raw};

/// Helm's `InstallOrder`.
pub const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
];

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// One document of the output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The template file it came from (`chart/templates/x.yaml`).
    pub source: String,
    /// The document, trimmed.
    pub content: String,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// The hook events when it is a hook (`helm.sh/hook`).
    pub hook: Vec<String>,
    /// `helm.sh/hook-weight`.
    pub hook_weight: i64,
}

/// A document whose head is not what Helm reads.
#[derive(Debug, Clone)]
pub struct HeadError {
    pub file: String,
    pub message: String,
    /// The 1-based line within the document, when known.
    pub line: usize,
    /// The document, for context.
    pub content: String,
}

/// Helm's `SplitManifests`: documents separated by `---` at the start of
/// a line (`(?:^|\s*\n)---\s*`), trimmed, empty ones dropped.
pub fn split(text: &str) -> Vec<String> {
    let t = text.trim_matches(is_go_space);
    let mut out = Vec::new();
    let b = t.as_bytes();
    let mut start = 0;
    let mut i = 0;
    // A separator at the very start.
    if t.starts_with("---") {
        i = 3;
        while i < b.len() && is_go_space_byte(b[i]) {
            i += 1;
        }
        start = i;
    }
    while i < b.len() {
        if b[i] == b'\n' && t[i + 1..].starts_with("---") {
            // The separator takes the whitespace before the newline too.
            let mut end = i;
            while end > start && is_go_space_byte(b[end - 1]) {
                end -= 1;
            }
            let doc = &t[start..end];
            if !doc.is_empty() {
                out.push(doc.trim_matches(is_go_space).to_string());
            }
            let mut j = i + 4;
            while j < b.len() && is_go_space_byte(b[j]) {
                j += 1;
            }
            start = j;
            i = j;
            continue;
        }
        i += 1;
    }
    let last = &t[start.min(t.len())..];
    if !last.is_empty() {
        out.push(last.trim_matches(is_go_space).to_string());
    }
    out.retain(|d| !d.is_empty());
    out
}

fn is_go_space(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\n' | '\r' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{a0}'
    ) || c.is_whitespace()
}

fn is_go_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn raw_field<'a>(raw: &'a Raw, key: &str) -> Option<&'a Raw> {
    let Raw::Map(pairs) = raw else { return None };
    pairs
        .iter()
        .rev()
        .find(|(k, _)| yaml::key_string(k).ok().as_deref() == Some(key))
        .map(|(_, v)| v)
}

fn json_kind(r: &Raw) -> &'static str {
    match r {
        Raw::Map(_) => "object",
        Raw::Seq(_) => "array",
        Raw::Str(_) | Raw::Binary(_) => "string",
        Raw::Bool(_) => "bool",
        _ => "number",
    }
}

/// A scalar read into a Go `string` field.
fn coerce(r: &Raw, field: &str, ty: &str) -> Result<String, String> {
    Ok(match r {
        Raw::Null => String::new(),
        Raw::Str(s) => s.clone(),
        Raw::Int(i) => i.to_string(),
        Raw::Uint(u) => u.to_string(),
        Raw::Float(f) => yaml::format_float32(*f),
        Raw::Bool(b) => b.to_string(),
        Raw::Binary(b) => base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b),
        other => {
            return Err(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go struct field {field} of type {ty}",
                json_kind(other)
            ));
        }
    })
}

/// Read a document's head as Helm's `SimpleHead`.
fn head(source: &str, doc: &str) -> Result<Document, HeadError> {
    let fail = |message: String, line: usize| HeadError {
        file: source.to_string(),
        message,
        line,
        content: doc.to_string(),
    };
    let raw =
        yaml::parse_first(doc).map_err(|e| fail(format!("error converting YAML to JSON: {e}"), e.line))?;
    let mut d = Document {
        source: source.to_string(),
        content: doc.to_string(),
        api_version: String::new(),
        kind: String::new(),
        name: String::new(),
        hook: Vec::new(),
        hook_weight: 0,
    };
    let Some(raw) = raw else { return Ok(d) };
    match &raw {
        Raw::Map(_) => {}
        Raw::Null => return Ok(d),
        other => {
            return Err(fail(
                format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type releaseutil.SimpleHead",
                    json_kind(other)
                ),
                0,
            ));
        }
    }
    // Keys that are not strings go through JSON as strings; a bad one fails.
    yaml::to_value(raw.clone()).map_err(|e| fail(format!("error converting YAML to JSON: {e}"), 0))?;
    if let Some(v) = raw_field(&raw, "apiVersion") {
        d.api_version = coerce(v, "SimpleHead.apiVersion", "string").map_err(|e| fail(e, 0))?;
    }
    if let Some(v) = raw_field(&raw, "kind") {
        d.kind = coerce(v, "SimpleHead.kind", "string").map_err(|e| fail(e, 0))?;
    }
    let Some(meta) = raw_field(&raw, "metadata") else {
        return Ok(d);
    };
    match meta {
        Raw::Null => return Ok(d),
        Raw::Map(_) => {}
        other => {
            return Err(fail(
                format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go struct field SimpleHead.metadata of type struct {{ Name string \"json:\\\"name\\\"\"; Annotations map[string]string \"json:\\\"annotations\\\"\" }}",
                    json_kind(other)
                ),
                0,
            ));
        }
    }
    if let Some(v) = raw_field(meta, "name") {
        d.name = coerce(v, "SimpleHead.metadata.name", "string").map_err(|e| fail(e, 0))?;
    }
    let mut annotations: Vec<(String, String)> = Vec::new();
    match raw_field(meta, "annotations") {
        None | Some(Raw::Null) => {}
        Some(Raw::Map(pairs)) => {
            for (k, v) in pairs {
                let key = yaml::key_string(k).map_err(|e| fail(e, 0))?;
                let value = coerce(v, "SimpleHead.metadata.annotations", "string").map_err(|e| fail(e, 0))?;
                annotations.retain(|(k, _)| *k != key);
                annotations.push((key, value));
            }
        }
        Some(other) => {
            return Err(fail(
                format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go struct field SimpleHead.metadata.annotations of type map[string]string",
                    json_kind(other)
                ),
                0,
            ));
        }
    }
    let annotation = |name: &str| {
        annotations
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(hooks) = annotation("helm.sh/hook") {
        let events: Vec<String> = hooks.split(',').map(|h| h.trim().to_lowercase()).collect();
        if events.iter().all(|e| HOOK_EVENTS.contains(&e.as_str())) {
            d.hook = events;
        } else {
            // Helm skips a document with an unknown hook.
            d.hook = vec![String::new()];
        }
        d.hook_weight = annotation("helm.sh/hook-weight")
            .and_then(|w| w.parse().ok())
            .unwrap_or(0);
    }
    Ok(d)
}

fn kind_rank(kind: &str) -> Option<usize> {
    INSTALL_ORDER.iter().position(|k| *k == kind)
}

/// Helm's `lessByKind` as a total order for a stable sort.
fn by_kind(a: &Document, b: &Document) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (kind_rank(&a.kind), kind_rank(&b.kind)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.kind.cmp(&b.kind),
    }
}

/// Helm's `SortManifests`: files in path order, documents in file order,
/// then stably by kind. Returns (manifests, hooks).
pub fn sort(files: &[(String, String)]) -> Result<(Vec<Document>, Vec<Document>), HeadError> {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut manifests = Vec::new();
    let mut hooks = Vec::new();
    for (path, content) in sorted {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split(content) {
            let d = head(path, &doc)?;
            if d.hook.is_empty() {
                manifests.push(d);
            } else if !d.hook[0].is_empty() {
                hooks.push(d);
            }
        }
    }
    manifests.sort_by(by_kind);
    hooks.sort_by(by_kind);
    Ok((manifests, hooks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_helm() {
        assert_eq!(split("a: 1\n---\nb: 2\n"), vec!["a: 1", "b: 2"]);
        // A separator's trailing whitespace eats the newline a next `---` needs.
        assert_eq!(
            split("---\na: 1\n  \n---  \n\n---\nb: 2"),
            vec!["a: 1", "---\nb: 2"]
        );
        assert_eq!(split("a: |\n  ---\n  x"), vec!["a: |\n  ---\n  x"]);
        assert_eq!(split("# only a comment"), vec!["# only a comment"]);
        assert_eq!(split("a: 1\n----\nb: 2"), vec!["a: 1", "-\nb: 2"]);
    }

    #[test]
    fn sorts_by_kind_then_file() {
        let files = vec![
            (
                "c/templates/b.yaml".to_string(),
                "kind: Deployment\nmetadata: {name: d}\n---\nkind: Service\nmetadata: {name: s}".to_string(),
            ),
            (
                "c/templates/a.yaml".to_string(),
                "kind: Foo\nmetadata: {name: f}\n---\nkind: ConfigMap\nmetadata: {name: c}".to_string(),
            ),
            (
                "c/templates/h.yaml".to_string(),
                "kind: Job\nmetadata:\n  name: j\n  annotations: {helm.sh/hook: pre-install}".to_string(),
            ),
        ];
        let (m, h) = sort(&files).unwrap();
        let kinds: Vec<&str> = m.iter().map(|d| d.kind.as_str()).collect();
        assert_eq!(kinds, ["ConfigMap", "Service", "Deployment", "Foo"]);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn bad_heads_are_errors() {
        let files = vec![("c/templates/x.yaml".to_string(), "just text".to_string())];
        let e = sort(&files).unwrap_err();
        assert!(
            e.message
                .contains("cannot unmarshal string into Go value of type releaseutil.SimpleHead")
        );
    }
}
