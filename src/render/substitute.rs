//! Variable substitution in manifest text, after Flux's `postBuild`
//! (non-strict): `${var}` is the variable's value, `${var:=default}` (or
//! `${var:-default}`) the default when the variable is unset or empty,
//! `$${var}` the literal text `${var}`, and an unset variable without a
//! default the empty string. Only the braced form is substituted: `$var`,
//! `$$`, `${#var}` and every other `$` stay as written, so shell scripts in
//! ConfigMaps keep working.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

/// `$` (or the escape `$$`), then `{name}` or `{name:=default}` / `{name:-default}`.
/// A default runs to the first `}` and never spans lines.
static EXPR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\$(\$)?\{([_a-zA-Z][_a-zA-Z0-9]*)(?::[=-]([^}\n]*))?\}").expect("a valid constant pattern")
});

/// The variables of an app, later entries overriding earlier ones.
pub(crate) struct Vars<'a> {
    map: HashMap<&'a str, &'a str>,
}

impl<'a> Vars<'a> {
    pub(crate) fn new(vars: &'a [(String, String)]) -> Vars<'a> {
        Vars {
            map: vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect(),
        }
    }

    /// `text` with every `${…}` expression replaced, or `None` as soon as
    /// the result would grow past `cap` bytes (a few references to a large
    /// value must not fill the memory).
    pub(crate) fn apply(&self, text: &str, cap: u64) -> Option<String> {
        let cap = usize::try_from(cap).unwrap_or(usize::MAX);
        let mut out = String::with_capacity(text.len().min(cap));
        let mut last = 0;
        for c in EXPR.captures_iter(text) {
            let Some(whole) = c.get(0) else { continue };
            out.push_str(&text[last..whole.start()]);
            last = whole.end();
            let value = if c.get(1).is_some() {
                // `$${…}` → `${…}`: drop the escaping dollar.
                &whole.as_str()[1..]
            } else {
                let name = c.get(2).map_or("", |m| m.as_str());
                match (self.map.get(name), c.get(3)) {
                    (Some(v), _) if !v.is_empty() => v,
                    (_, Some(default)) => default.as_str(),
                    (Some(v), None) => v,
                    (None, None) => "",
                }
            };
            if out.len() + value.len() > cap {
                return None;
            }
            out.push_str(value);
        }
        if out.len() + (text.len() - last) > cap {
            return None;
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subst(vars: &[(&str, &str)], text: &str) -> String {
        let owned: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars::new(&owned).apply(text, u64::MAX).expect("no cap")
    }

    #[test]
    fn braced_variables() {
        assert_eq!(subst(&[("a", "1")], "x: ${a}"), "x: 1");
        assert_eq!(subst(&[("a", "1"), ("a", "2")], "x: ${a}"), "x: 2");
        assert_eq!(subst(&[("_b9", "z")], "${_b9}${_b9}"), "zz");
    }

    #[test]
    fn defaults() {
        assert_eq!(subst(&[], "x: ${a:=dflt}"), "x: dflt");
        assert_eq!(subst(&[("a", "set")], "x: ${a:=dflt}"), "x: set");
        assert_eq!(subst(&[("a", "")], "x: ${a:=dflt}"), "x: dflt");
        assert_eq!(subst(&[], "x: ${a:-other value}"), "x: other value");
        assert_eq!(subst(&[], "x: ${a:=}"), "x: ");
    }

    #[test]
    fn escapes_and_untouched_forms() {
        assert_eq!(subst(&[("a", "1")], "x: $${a}"), "x: ${a}");
        assert_eq!(subst(&[("a", "1")], "x: $${a:=d}"), "x: ${a:=d}");
        assert_eq!(
            subst(&[("a", "1")], "echo $a $$ ${#a} ${1} ${a b}"),
            "echo $a $$ ${#a} ${1} ${a b}"
        );
        assert_eq!(subst(&[("a", "1")], "${a:=no\nnewline}"), "${a:=no\nnewline}");
    }

    #[test]
    fn the_result_is_capped() {
        let owned = vec![("big".to_string(), "x".repeat(4096))];
        let vars = Vars::new(&owned);
        let text = "${big}".repeat(1000);
        assert_eq!(vars.apply(&text, 4096 * 1000).map(|t| t.len()), Some(4096 * 1000));
        assert_eq!(vars.apply(&text, 4096 * 1000 - 1), None);
        assert_eq!(vars.apply("plain text", 5), None);
        assert_eq!(vars.apply("plain", 5).as_deref(), Some("plain"));
    }

    #[test]
    fn unset_is_empty() {
        assert_eq!(subst(&[("b", "1")], "x: '${a}'"), "x: ''");
    }
}
