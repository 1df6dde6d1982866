//! Legacy `vars`: `$(NAME)` in the fields kustomize's varReference
//! configuration lists is replaced by the value of a field of another
//! object (kustomize's RefVarTransformer and its expansion rules: `$$`
//! escapes, an unknown `$(NAME)` stays, a whole-field reference keeps the
//! value's type).

use super::build::Accumulator;
use super::error::{Error, Result, code};
use super::fieldspec;
use super::yaml::{Node, Tag, Value};

pub fn resolve(ra: &mut Accumulator) -> Result<()> {
    if ra.vars.is_empty() {
        return Ok(());
    }
    let mut values: Vec<(String, Node)> = Vec::new();
    for v in &ra.vars {
        let Some(r) = ra
            .resources
            .list
            .iter()
            .find(|r| r.ref_var_names.contains(&v.name))
        else {
            return Err(Error::new(
                code::NO_TARGET,
                format!(
                    "var '{}' cannot be mapped to a field in the set of known resources",
                    v.name
                ),
            )
            .help("the var's objref must name an object of the build"));
        };
        let parts = path_parts(&v.field_path);
        let node = super::replace::lookup(&r.node, &parts).ok_or_else(|| {
            Error::new(
                code::NO_TARGET,
                format!(
                    "field specified in var '{}' not found in corresponding resource",
                    v.name
                ),
            )
        })?;
        values.push((v.name.clone(), node.clone()));
    }
    let specs = ra.config.var_reference.clone();
    for r in &mut ra.resources.list {
        for f in &specs {
            let id = r.cur_id();
            fieldspec::apply(&mut r.node, f, None, &mut |n| set(n, &values))
                .map_err(|e| Error::new(code::INVALID, format!("{e} (in {id})")))?;
        }
    }
    Ok(())
}

/// `a.b[0].c` → `a`, `b`, `0`, `c`.
fn path_parts(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.') {
        if let Some(open) = part.rfind('[')
            && part.ends_with(']')
            && part[open + 1..part.len() - 1].chars().all(|c| c.is_ascii_digit())
            && open + 1 < part.len() - 1
        {
            if open > 0 {
                out.push(part[..open].to_string());
            }
            out.push(part[open + 1..part.len() - 1].to_string());
        } else {
            out.push(part.to_string());
        }
    }
    out
}

fn is_string(n: &Node) -> bool {
    matches!(&n.value, Value::Scalar(s) if s.tag == Tag::Str)
}

fn set(node: &mut Node, values: &[(String, Node)]) -> std::result::Result<(), String> {
    match &mut node.value {
        Value::Scalar(s) if s.tag == Tag::Null => Ok(()),
        Value::Scalar(_) => {
            if is_string(node) {
                expand_node(node, values);
            }
            Ok(())
        }
        Value::Map(entries) => {
            for e in entries {
                if is_string(&e.value) {
                    expand_node(&mut e.value, values);
                }
            }
            Ok(())
        }
        Value::Seq(items) => {
            for item in items {
                if !is_string(item) {
                    return Err("invalid value type expect a string".into());
                }
                expand_node(item, values);
            }
            Ok(())
        }
    }
}

fn expand_node(node: &mut Node, values: &[(String, Node)]) {
    let Some(text) = node.as_scalar().map(|s| s.text.clone()) else {
        return;
    };
    let lookup = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    // A whole-field reference keeps the value's type.
    if let Some(name) = text.strip_prefix("$(").and_then(|t| t.strip_suffix(')'))
        && !name.contains(')')
        && let Some(v) = lookup(name)
    {
        if let Some(s) = v.as_scalar() {
            *node = Node::new(Value::Scalar(super::yaml::Scalar {
                text: s.text.clone(),
                tag: if s.tag == Tag::Timestamp { Tag::Str } else { s.tag },
                plain: false,
            }))
            .at(node.pos);
        }
        return;
    }
    let out = expand(&text, &|name| lookup(name).map(display));
    *node = Node::str(out).at(node.pos);
}

/// How Go's `%v` shows a value.
fn display(n: &Node) -> String {
    match n.as_scalar() {
        Some(s) if s.tag == Tag::Null => "<nil>".into(),
        Some(s) => match super::yaml::scalar::output(s) {
            Ok(super::yaml::scalar::Out::Number(n)) => n,
            Ok(super::yaml::scalar::Out::Bool(b)) => b.to_string(),
            _ => s.text.clone(),
        },
        None => String::new(),
    }
}

/// Kubernetes' `$(VAR)` expansion.
pub fn expand(input: &str, mapping: &dyn Fn(&str) -> Option<String>) -> String {
    let b = input.as_bytes();
    let mut out = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < b.len() {
        if b[cursor] == b'$' && cursor + 1 < b.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(end) => {
                        let name = &rest[1..end];
                        match mapping(name) {
                            Some(v) => out.push_str(&v),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        end + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    out.push('$');
                    let c = rest.chars().next().unwrap_or_default();
                    out.push(c);
                    c.len_utf8()
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion() {
        let m = |n: &str| (n == "A").then(|| "x".to_string());
        assert_eq!(expand("$(A)", &m), "x");
        assert_eq!(expand("a $(A) b $(B) $$(A) $ $", &m), "a x b $(B) $(A) $ $");
        assert_eq!(expand("$(A", &m), "$(A");
        assert_eq!(path_parts("spec.ports[0].port"), ["spec", "ports", "0", "port"]);
    }
}
