//! The validation a real API server applies that the rest of the test
//! server does not: object names by kind (DNS-1123 subdomain, DNS-1123
//! label, DNS-1035 label or path segment, with apimachinery's messages) and,
//! with [`super::Options::immutable_fields`], the fields that cannot change
//! once set. Problems are field errors, answered as a 422 `Invalid` Status
//! whose `details.causes` list them, as `apierrors.NewInvalid` makes it.

use serde_json::{Value, json};

use super::types::ResourceType;

/// How a kind's names are checked (`ValidateObjectMeta`'s name function).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// Most kinds, custom resources included.
    Subdomain,
    /// Namespaces.
    Label,
    /// Services.
    Dns1035,
    /// Roles, RoleBindings, ClusterRoles, ClusterRoleBindings.
    PathSegment,
}

/// One field error, as `field.Error` holds it.
#[derive(Clone, Debug)]
pub struct FieldError {
    /// `FieldValueInvalid`, `FieldValueForbidden`, `FieldValueRequired`…
    pub kind: &'static str,
    pub field: String,
    /// The error without its field: `Invalid value: "x": must be …`.
    pub body: String,
}

impl FieldError {
    pub fn invalid(field: &str, value: &Value, detail: &str) -> FieldError {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        FieldError {
            kind: "FieldValueInvalid",
            field: field.into(),
            body: format!("Invalid value: {shown}: {detail}"),
        }
    }

    pub fn forbidden(field: &str, detail: &str) -> FieldError {
        FieldError {
            kind: "FieldValueForbidden",
            field: field.into(),
            body: format!("Forbidden: {detail}"),
        }
    }

    pub fn cause(&self) -> Value {
        json!({"reason": self.kind, "message": self.body, "field": self.field})
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.body)
    }
}

/// `Deployment.apps "web" is invalid: …` (several errors in `[…, …]`).
pub fn invalid_message(rt: &ResourceType, name: &str, errors: &[FieldError]) -> String {
    let kind = if rt.group.is_empty() {
        rt.kind.clone()
    } else {
        format!("{}.{}", rt.kind, rt.group)
    };
    let all: Vec<String> = errors.iter().map(FieldError::to_string).collect();
    match all.as_slice() {
        [] => format!("{kind} {name:?} is invalid"),
        [one] => format!("{kind} {name:?} is invalid: {one}"),
        many => format!("{kind} {name:?} is invalid: [{}]", many.join(", ")),
    }
}

const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.first().is_some_and(ok)
        && b.last().is_some_and(ok)
        && b.iter().all(|c| ok(c) || *c == b'-')
}

/// apimachinery's `IsDNS1123Label`, `IsDNS1123Subdomain`, `IsDNS1035Label`
/// and `IsValidPathSegmentName`: the messages for `name`, none if valid.
pub fn name_problems(rule: NameRule, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    match rule {
        NameRule::Label => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !is_label(name) {
                out.push(LABEL_MSG.into());
            }
        }
        NameRule::Dns1035 => {
            if name.len() > 63 {
                out.push("must be no more than 63 characters".to_string());
            }
            if !(is_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())) {
                out.push(DNS1035_MSG.into());
            }
        }
        NameRule::Subdomain => {
            if name.len() > 253 {
                out.push("must be no more than 253 characters".to_string());
            }
            if !name.split('.').all(is_label) {
                out.push(SUBDOMAIN_MSG.into());
            }
        }
        NameRule::PathSegment => {
            if name == "." || name == ".." {
                out.push(format!("may not be '{name}'"));
            } else {
                for bad in ["/", "%"] {
                    if name.contains(bad) {
                        out.push(format!("may not contain '{bad}'"));
                    }
                }
            }
        }
    }
    out
}

/// The errors of a new object's `metadata.name`.
pub fn check_name(rt: &ResourceType, name: &str) -> Vec<FieldError> {
    name_problems(rt.name_rule, name)
        .into_iter()
        .map(|m| FieldError::invalid("metadata.name", &Value::String(name.into()), &m))
        .collect()
}

const IMMUTABLE: &str = "field is immutable";

/// The fields of `old` that `new` may not change, for the kinds whose
/// validation has such rules.
pub fn immutable(rt: &ResourceType, old: &Value, new: &Value) -> Vec<FieldError> {
    let changed = |p: &str| old.pointer(p) != new.pointer(p);
    let at = |p: &str| new.pointer(p).cloned().unwrap_or(Value::Null);
    let mut out = Vec::new();
    let apps = rt.group == "apps" && matches!(rt.kind.as_str(), "Deployment" | "StatefulSet" | "DaemonSet");
    let job = rt.group == "batch" && rt.kind == "Job";
    if (apps || job) && changed("/spec/selector") {
        out.push(FieldError::invalid(
            "spec.selector",
            &at("/spec/selector"),
            IMMUTABLE,
        ));
    }
    if job && changed("/spec/template") {
        out.push(FieldError::invalid(
            "spec.template",
            &at("/spec/template"),
            IMMUTABLE,
        ));
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Service") => {
            let old_ip = old
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("");
            let new_ip = new
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !old_ip.is_empty() && old_ip != new_ip {
                out.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    &json!([new_ip]),
                    "may not change once set",
                ));
            }
        }
        ("", "ConfigMap" | "Secret") if old.get("immutable") == Some(&Value::Bool(true)) => {
            for field in ["data", "binaryData"] {
                if changed(&format!("/{field}")) {
                    out.push(FieldError::forbidden(
                        field,
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
            if new.get("immutable") != Some(&Value::Bool(true)) {
                out.push(FieldError::forbidden(
                    "immutable",
                    "field is immutable when `immutable` is set",
                ));
            }
        }
        _ => {}
    }
    out
}

/// A new Service's cluster IP, as the allocator gives it: `ip` unless the
/// manifest names one (or `None`, headless), nothing for `ExternalName`.
pub fn allocate_cluster_ip(obj: &mut Value, ip: &str) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return;
    }
    let given = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    let ip = given.unwrap_or_else(|| ip.to_string());
    spec.insert("clusterIP".into(), ip.clone().into());
    spec.insert("clusterIPs".into(), json!([ip]));
}

/// On update, what the client left out of an allocated Service keeps its
/// value (the real registry's `patchAllocatedValues`).
pub fn keep_allocated(old: &Value, new: &mut Value) {
    for field in ["clusterIP", "clusterIPs"] {
        let absent = new.pointer(&format!("/spec/{field}")).is_none();
        if let (true, Some(v), Some(spec)) = (
            absent,
            old.pointer(&format!("/spec/{field}")),
            new.get_mut("spec").and_then(Value::as_object_mut),
        ) {
            spec.insert(field.into(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_by_rule() {
        assert!(name_problems(NameRule::Subdomain, "a.b-c.d").is_empty());
        assert_eq!(name_problems(NameRule::Subdomain, "web..v2"), [SUBDOMAIN_MSG]);
        assert_eq!(name_problems(NameRule::Subdomain, "Web"), [SUBDOMAIN_MSG]);
        assert_eq!(name_problems(NameRule::Label, "a.b"), [LABEL_MSG]);
        assert_eq!(name_problems(NameRule::Dns1035, "1abc"), [DNS1035_MSG]);
        assert!(name_problems(NameRule::PathSegment, "system:x?y=z&w").is_empty());
        assert_eq!(name_problems(NameRule::PathSegment, ".."), ["may not be '..'"]);
        assert_eq!(
            name_problems(NameRule::PathSegment, "../x%"),
            ["may not contain '/'", "may not contain '%'"]
        );
        let long = "a".repeat(64);
        assert_eq!(
            name_problems(NameRule::Label, &long),
            ["must be no more than 63 characters"]
        );
    }
}
