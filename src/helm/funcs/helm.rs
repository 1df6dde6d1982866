//! Helm's own template functions (`pkg/engine/funcs.go`, `engine.go`):
//! `include`, `tpl`, `required`, `fail`, `lookup` (empty, as in `helm
//! template`), the YAML/JSON/TOML converters, and the methods of `.Files`,
//! `.Capabilities.APIVersions` and `.Capabilities.KubeVersion`.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use base64::Engine as _;

use super::{FnError, FnResult, FuncDef, Ty, err, f, s};
use crate::helm::template::exec::{Env, Set};
use crate::helm::template::parse;
use crate::helm::value::{Elem, Entries, Map, MapKind, MapRef, Value, string_from_bytes};
use crate::helm::{gofmt, json, toml, yaml};

/// What Helm's functions keep across calls during one render.
#[derive(Default)]
pub struct Host {
    /// `tpl` texts already parsed.
    tpl_cache: HashMap<String, Rc<Set>>,
}

/// The most distinct `tpl` texts kept parsed.
const TPL_CACHE: usize = 4096;

fn host(env: &mut Env) -> &mut Host {
    if !env.host.is::<Host>() {
        env.host = Box::new(Host::default());
    }
    env.host.downcast_mut::<Host>().expect("host was just set")
}

/// Helm's `toYAML`: go-yaml v2 through JSON, without the final newline;
/// empty when the value cannot be written.
pub fn to_yaml(v: &Value) -> String {
    let mut out = yaml::to_yaml(v).unwrap_or_default();
    if out.ends_with('\n') {
        out.pop();
    }
    out
}

fn tpl(env: &mut Env, text: &str, vals: Value) -> FnResult {
    let set = match host(env).tpl_cache.get(text) {
        Some(set) => set.clone(),
        None => {
            let trees = parse::parse("gotpl", text, &super::lookup)
                .map_err(|e| FnError::Msg(format!("cannot parse template {}: {e}", gofmt::quote(text))))?;
            let set = Rc::new(trees);
            let h = host(env);
            if h.tpl_cache.len() < TPL_CACHE {
                h.tpl_cache.insert(text.to_string(), set.clone());
            }
            set
        }
    };
    let Some(tree) = set.get("gotpl").cloned() else {
        return Ok(Value::str(""));
    };
    env.overlays.push(set);
    let mut out = String::new();
    let r = env.run(&tree, vals, &mut out);
    env.overlays.pop();
    match r {
        Ok(()) => Ok(Value::string(out.replace("<no value>", ""))),
        Err(e) => Err(FnError::Wrapped(
            format!("error during tpl function execution for {}", gofmt::quote(text)),
            Box::new(e),
        )),
    }
}

fn from_yaml_array(text: &str) -> Value {
    let r = yaml::parse_first(text)
        .map_err(|e| format!("error converting YAML to JSON: {e}"))
        .and_then(|raw| match raw {
            None | Some(yaml::Raw::Null) => Ok(Value::list(Vec::new())),
            Some(r @ yaml::Raw::Seq(_)) => yaml::to_value(r).map_err(|e| format!("error converting YAML to JSON: {e}")),
            Some(other) => Err(format!(
                "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind_raw(&other)
            )),
        });
    match r {
        Ok(v) => v,
        Err(e) => Value::list(vec![Value::string(e)]),
    }
}

fn json_kind_raw(r: &yaml::Raw) -> &'static str {
    match r {
        yaml::Raw::Map(_) => "object",
        yaml::Raw::Seq(_) => "array",
        yaml::Raw::Str(_) | yaml::Raw::Binary(_) => "string",
        yaml::Raw::Bool(_) => "bool",
        _ => "number",
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Map(_) => "object",
        Value::List(_) => "array",
        Value::Str(_) => "string",
        Value::Bool(_) => "bool",
        _ => "number",
    }
}

fn error_map(e: String) -> Value {
    let mut m = Entries::new();
    m.insert(Rc::from("Error"), Value::string(e));
    Value::map(m)
}

pub const FUNCS: &[FuncDef] = &[
    f("include", &[Ty::Str, Ty::Any], |env, a| {
        let name = s(&a[0]).to_string();
        env.include(&name, a[1].clone()).map(Value::string)
    }),
    f("tpl", &[Ty::Str, Ty::Any], |env, a| {
        let text = s(&a[0]).to_string();
        tpl(env, &text, a[1].clone())
    }),
    f("required", &[Ty::Str, Ty::Any], |_, a| match &a[1] {
        Value::Nil => Err(FnError::Fail(s(&a[0]).to_string())),
        Value::Str(v) if v.is_empty() => Err(FnError::Fail(s(&a[0]).to_string())),
        other => Ok(other.clone()),
    }),
    f("fail", &[Ty::Str], |_, a| {
        Err(FnError::Fail(s(&a[0]).to_string()))
    }),
    f("lookup", &[Ty::Str, Ty::Str, Ty::Str, Ty::Str], |_, _| {
        Ok(Value::empty_map())
    }),
    f("toYaml", &[Ty::Any], |_, a| Ok(Value::string(to_yaml(&a[0])))),
    f("toYamlPretty", &[Ty::Any], |_, a| {
        let mut out = yaml::to_yaml_pretty(&a[0]).unwrap_or_default();
        if out.ends_with('\n') {
            out.pop();
        }
        Ok(Value::string(out))
    }),
    f("fromYaml", &[Ty::Str], |_, a| {
        Ok(yaml::parse_map(s(&a[0])).unwrap_or_else(error_map))
    }),
    f("fromYamlArray", &[Ty::Str], |_, a| Ok(from_yaml_array(s(&a[0])))),
    f("toJson", &[Ty::Any], |_, a| {
        Ok(Value::string(
            json::encode(
                &a[0],
                json::Style {
                    escape_html: true,
                    indent: None,
                },
            )
            .unwrap_or_default(),
        ))
    }),
    f("fromJson", &[Ty::Str], |_, a| {
        Ok(match json::decode(s(&a[0])) {
            Ok(v @ Value::Map(_)) => v,
            Ok(Value::Nil) => Value::empty_map(),
            Ok(other) => error_map(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                json_kind(&other)
            )),
            Err(e) => error_map(e),
        })
    }),
    f("fromJsonArray", &[Ty::Str], |_, a| {
        Ok(match json::decode(s(&a[0])) {
            Ok(v @ Value::List(_)) => v,
            Ok(Value::Nil) => Value::list(Vec::new()),
            Ok(other) => Value::list(vec![Value::string(format!(
                "json: cannot unmarshal {} into Go value of type []interface {{}}",
                json_kind(&other)
            ))]),
            Err(e) => Value::list(vec![Value::string(e)]),
        })
    }),
    f("toToml", &[Ty::Any], |_, a| {
        Ok(Value::string(toml::encode(&a[0]).unwrap_or_else(|e| e)))
    }),
    f("fromToml", &[Ty::Str], |_, a| {
        Ok(toml::decode(s(&a[0])).unwrap_or_else(error_map))
    }),
];

// ---- .Files ---------------------------------------------------------------------

fn files_of(v: &Value) -> Vec<(Rc<str>, Value)> {
    v.as_map().map(MapRef::snapshot).unwrap_or_default()
}

fn bytes_of(v: &Value) -> Option<Arc<[u8]>> {
    match v {
        Value::Bytes(b) => Some(b.clone()),
        _ => None,
    }
}

fn file(v: &Value, name: &str) -> Option<Arc<[u8]>> {
    v.as_map().and_then(|m| m.get(name)).as_ref().and_then(bytes_of)
}

pub fn files_value(entries: Entries) -> Value {
    Value::Map(MapRef::new(Map {
        kind: MapKind::Files,
        entries,
    }))
}

fn base_name_map(files: &Value, f: impl Fn(&[u8]) -> String) -> String {
    let entries = files_of(files);
    if entries.is_empty() {
        return String::new();
    }
    let mut m = Entries::new();
    for (k, v) in entries {
        let base = super::encoding::base(&k);
        m.insert(
            Rc::from(base),
            Value::string(f(&bytes_of(&v).unwrap_or_else(|| Arc::from(&[][..])))),
        );
    }
    to_yaml(&Value::map(m))
}

pub const FILES_METHODS: &[FuncDef] = &[
    f("Get", &[Ty::Str], |_, a| {
        Ok(Value::string(
            file(&a[0], s(&a[1]))
                .map(|b| string_from_bytes(&b))
                .unwrap_or_default(),
        ))
    }),
    f("GetBytes", &[Ty::Str], |_, a| {
        Ok(Value::Bytes(
            file(&a[0], s(&a[1])).unwrap_or_else(|| Arc::from(&[][..])),
        ))
    }),
    f("Glob", &[Ty::Str], |_, a| {
        let pattern = crate::helm::glob::Glob::new(s(&a[1]));
        let entries: Entries = files_of(&a[0])
            .into_iter()
            .filter(|(k, _)| pattern.as_ref().is_some_and(|p| p.matches(k)))
            .collect();
        Ok(files_value(entries))
    }),
    f("Lines", &[Ty::Str], |_, a| {
        let Some(b) = file(&a[0], s(&a[1])) else {
            return Ok(Value::str_list(Vec::new()));
        };
        let mut text = string_from_bytes(&b);
        if text.ends_with('\n') {
            text.pop();
        }
        Ok(Value::str_list(text.split('\n').map(Value::str).collect()))
    }),
    f("AsConfig", &[], |_, a| {
        Ok(Value::string(base_name_map(&a[0], string_from_bytes)))
    }),
    f("AsSecrets", &[], |_, a| {
        Ok(Value::string(base_name_map(&a[0], |b| {
            base64::engine::general_purpose::STANDARD.encode(b)
        })))
    }),
];

pub const VERSION_SET_METHODS: &[FuncDef] = &[f("Has", &[Ty::Str], |_, a| {
    let want = s(&a[1]);
    Ok(Value::Bool(match &a[0] {
        Value::List(l) if l.elem == Elem::VersionSet => l.items.iter().any(|x| x.as_str() == Some(want)),
        _ => false,
    }))
})];

pub const KUBE_VERSION_METHODS: &[FuncDef] = &[
    f("String", &[], |_, a| kube_version(&a[0])),
    f("GitVersion", &[], |_, a| kube_version(&a[0])),
];

fn kube_version(v: &Value) -> FnResult {
    match v {
        Value::Struct(s) => Ok(s.field("Version").cloned().unwrap_or_default()),
        _ => err("not a KubeVersion"),
    }
}
