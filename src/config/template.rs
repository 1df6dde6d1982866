//! Commit message templates: the one minijinja environment automations
//! render with, and what `validate` checks a template against — the
//! compile, then a render over a sample change, both with undefined
//! values as errors, so a typo (`{{ c.fiel }}`) is found before a commit.
//!
//! A template sees `changes`, a list of changes, each with the fields of
//! [`CHANGE_FIELDS`].

use minijinja::{Environment, UndefinedBehavior, Value};

/// What each change offers a template (see `automation::setters::Change`).
pub const CHANGE_FIELDS: [&str; 6] = ["file", "line", "marker", "image", "old", "new"];

/// The environment every message is rendered in.
pub fn environment() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()?;
    env.set_syntax(syntax);
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    Ok(env)
}

/// Render `template` with `changes` (one map of [`CHANGE_FIELDS`] each).
pub fn render(template: &str, changes: Value) -> Result<String, minijinja::Error> {
    let mut env = environment()?;
    env.add_template("message", template)?;
    env.get_template("message")?
        .render(minijinja::context! { changes => changes })
}

/// `template` rendered over one sample change: the error, if any.
pub fn check(template: &str) -> Result<(), minijinja::Error> {
    let change: std::collections::BTreeMap<&str, Value> = [
        ("file", Value::from("apps/podinfo/deployment.yaml")),
        ("line", Value::from(15)),
        ("marker", Value::from("podinfo")),
        ("image", Value::from("podinfo")),
        ("old", Value::from("ghcr.io/stefanprodan/podinfo:6.5.0")),
        ("new", Value::from("ghcr.io/stefanprodan/podinfo:6.5.1")),
    ]
    .into_iter()
    .collect();
    let sample = Value::from(vec![Value::from(change)]);
    render(template, sample).map(|_| ())
}

/// Whether `template` looks like a Go template (Flux's `messageTemplate`):
/// `{{ .Field }}`, `{{ range … }}`, `{{ end }}`, `{{ $var }}`.
pub fn looks_like_go(template: &str) -> bool {
    static GO: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"\{\{-?\s*(?:\.|\$|(?:range|end|with|define|block|template|else)\b)").ok()
    });
    GO.as_ref().is_some_and(|re| re.is_match(template))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_message_checks() {
        check(crate::config::model::defaults::COMMIT_MESSAGE).unwrap();
        check("{% for c in changes %}{{ c.file }}:{{ c.line }} {{ c.marker }} {{ c.image }} {{ c.old }} {{ c.new }}{% endfor %}")
            .unwrap();
    }

    #[test]
    fn errors_are_found_with_their_place() {
        let e = check("ok\n{% for c in changes %}{{ c.fiel }}{% endfor %}").unwrap_err();
        assert_eq!(e.line(), Some(2));
        assert!(e.range().is_some());
        let e = check("a {{ changes | nosuchfilter }}").unwrap_err();
        assert_eq!(e.line(), Some(1));
        let e = check("{% for c in changes %}").unwrap_err();
        assert_eq!(e.kind(), minijinja::ErrorKind::SyntaxError);
    }

    #[test]
    fn go_templates_are_told_apart() {
        assert!(looks_like_go(
            "{{ range .Changed.Changes }}{{ .NewValue }}{{ end }}"
        ));
        assert!(looks_like_go("Automation: {{ .AutomationObject }}"));
        assert!(looks_like_go("{{- range $file, $x := .Updated.Files -}}"));
        assert!(!looks_like_go(crate::config::model::defaults::COMMIT_MESSAGE));
        assert!(!looks_like_go("{{ c.file }} {% if x %}{% endif %}"));
    }
}
