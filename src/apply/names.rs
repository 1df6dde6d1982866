//! Object names and namespaces, before they reach a URL. Names come from
//! manifests (untrusted: anyone who can push to a watched repository) and
//! from inventories in the cluster; a name such as `../../x` or
//! `x?dryRun=All` must never change which path or query a request has.
//!
//! Two rules, both always: [`check`] refuses, before any request, a name
//! the API server would refuse for its kind (the same rules, so the error
//! names the file and line instead of coming back from the server), and
//! [`segment`] percent-encodes every name and namespace put into a path, so
//! that even names the rules allow (an RBAC name may hold `?`, `&` or `:`)
//! stay one path segment.

use std::fmt::Write as _;

use crate::render::ObjectId;

/// How the API server checks the names of a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// `a.b-c`: lowercase letters, digits, `-` and `.`, at most 253, each
    /// dot-separated part starting and ending with a letter or digit.
    Subdomain,
    /// `a-b`: lowercase letters, digits and `-`, at most 63, starting and
    /// ending with a letter or digit.
    Label,
    /// As a label, starting with a letter.
    Dns1035,
    /// Anything but `.` and `..`, without `/` or `%`.
    PathSegment,
}

/// Built-in API groups whose kinds (but those listed in [`rule`]) have
/// DNS-1123 subdomain names.
const SUBDOMAIN_GROUPS: &[&str] = &[
    "",
    "apps",
    "batch",
    "autoscaling",
    "policy",
    "networking.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "apiextensions.k8s.io",
    "admissionregistration.k8s.io",
];

fn rule(group: &str, kind: &str) -> Rule {
    match (group, kind) {
        ("", "Namespace") => Rule::Label,
        ("", "Service") => Rule::Dns1035,
        ("rbac.authorization.k8s.io", _) => Rule::PathSegment,
        _ if SUBDOMAIN_GROUPS.contains(&group) => Rule::Subdomain,
        // Other built-in groups: only what keeps a path safe (the server
        // applies the kind's own rule).
        _ if group.ends_with(".k8s.io") || !group.contains('.') => Rule::PathSegment,
        // Custom resources.
        _ => Rule::Subdomain,
    }
}

fn is_label(s: &str) -> bool {
    let ok = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = s.as_bytes();
    b.first().is_some_and(ok) && b.last().is_some_and(ok) && b.iter().all(|c| ok(c) || *c == b'-')
}

/// What is wrong with `name` under `rule`, if anything.
fn problem(rule: Rule, name: &str) -> Option<&'static str> {
    match rule {
        Rule::Subdomain if name.len() > 253 || !name.split('.').all(is_label) => Some(
            "it must be a lowercase RFC 1123 subdomain: at most 253 lowercase letters, digits, `-` or `.`, \
             each part between dots starting and ending with a letter or digit",
        ),
        Rule::Label if name.len() > 63 || !is_label(name) => Some(
            "it must be a lowercase RFC 1123 label: at most 63 lowercase letters, digits or `-`, \
             starting and ending with a letter or digit",
        ),
        Rule::Dns1035
            if name.len() > 63 || !is_label(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) =>
        {
            Some(
                "it must be a DNS-1035 label: at most 63 lowercase letters, digits or `-`, \
                 starting with a letter and ending with a letter or digit",
            )
        }
        Rule::PathSegment if name.is_empty() || name == "." || name == ".." || name.contains(['/', '%']) => {
            Some("it must not be empty, `.` or `..`, nor contain `/` or `%`")
        }
        _ => None,
    }
}

/// Whether the API server would accept `id`'s name for its kind and its
/// namespace as a namespace name; why not, as a sentence.
pub fn check(id: &ObjectId) -> Result<(), String> {
    let mut why = Vec::new();
    if let Some(p) = problem(rule(id.group(), &id.kind), &id.name) {
        why.push(format!(
            "metadata.name {:?} is not a valid {} name: {p}",
            id.name, id.kind
        ));
    }
    if let Some(ns) = &id.namespace
        && let Some(p) = problem(Rule::Label, ns)
    {
        why.push(format!("metadata.namespace {ns:?} is not a valid namespace: {p}"));
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

/// `s` as one URL path segment: every byte but letters, digits, `-`,
/// `_` and `~` percent-encoded (`.` too when the segment is `.` or `..`).
pub fn segment(s: &str) -> String {
    let dots_only = s == "." || s == "..";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'~' => out.push(b as char),
            b'.' if !dots_only => out.push('.'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ObjectId {
        ObjectId {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(String::from),
            name: name.into(),
        }
    }

    #[test]
    fn names_follow_the_rule_of_their_kind() {
        let ok = |a: &str, k: &str, n: &str| check(&id(a, k, None, n)).is_ok();
        assert!(ok("v1", "ConfigMap", "web.v2"));
        assert!(!ok("v1", "ConfigMap", "web..v2"));
        assert!(!ok("v1", "ConfigMap", "../../x"));
        assert!(!ok("v1", "ConfigMap", "Web"));
        assert!(!ok("v1", "ConfigMap", &"a".repeat(254)));
        assert!(ok("v1", "Namespace", "demo"));
        assert!(!ok("v1", "Namespace", "demo.x"));
        assert!(!ok("v1", "Service", "1web"));
        assert!(ok("v1", "Service", "web1"));
        assert!(ok("example.com/v1", "Widget", "w.1"));
        assert!(!ok("example.com/v1", "Widget", "w_1"));
        // RBAC names are path segments: `system:…` and even `?` are fine.
        let rbac = "rbac.authorization.k8s.io/v1";
        assert!(ok(rbac, "ClusterRole", "system:aggregate-to-admin"));
        assert!(ok(rbac, "Role", "x?dryRun=All&fieldManager=evil"));
        assert!(!ok(rbac, "Role", ".."));
        assert!(!ok(rbac, "Role", "../../x"));
        assert!(!ok(rbac, "Role", "a%2Fb"));
        // A built-in group of unknown rules: only path safety.
        assert!(ok("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "Odd_Name"));
        assert!(!ok("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "a/b"));
        let e = check(&id("v1", "ConfigMap", Some("Bad_NS"), "web..v2")).unwrap_err();
        assert!(
            e.contains("metadata.name \"web..v2\" is not a valid ConfigMap name")
                && e.contains("metadata.namespace \"Bad_NS\""),
            "{e}"
        );
    }

    #[test]
    fn segments_cannot_leave_their_place() {
        assert_eq!(segment("web-1.v2"), "web-1.v2");
        assert_eq!(segment(".."), "%2E%2E");
        assert_eq!(segment("../../x"), "..%2F..%2Fx");
        assert_eq!(
            segment("x?dryRun=All&fieldManager=evil"),
            "x%3FdryRun%3DAll%26fieldManager%3Devil"
        );
        assert_eq!(segment("system:a b#c"), "system%3Aa%20b%23c");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
