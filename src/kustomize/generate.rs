//! ConfigMap and Secret generators: `literals`, `files`, `envs`, options,
//! and how a generated object combines with one already built (`behavior`
//! create, merge or replace). kustomize's ConfigMapGenerator,
//! SecretGenerator and ResMap.AbsorbAll.

use super::build::{Accumulator, Builder, Target, conflict_error};
use super::error::{Error, Result, Source, code};
use super::fs::Use;
use super::kustomization::{GenOptions, GeneratorArgs, merge_options};
use super::plugins;
use super::read::Spanned;
use super::resource::{Behavior, Resource};
use super::yaml::{Node, Pos};

pub fn run(b: &mut Builder<'_>, t: &Target, ra: &mut Accumulator, origin_dir: &str) -> Result<()> {
    for (secret, list) in [(false, &t.k.config_map_generator), (true, &t.k.secret_generator)] {
        for g in list {
            let opts = merge_options(g.options.as_ref(), t.k.generator_options.as_ref());
            let mut r = generate(b, &t.src, &t.dir, g, &opts, secret)?;
            if b.origin {
                let kind = if secret {
                    "SecretGenerator"
                } else {
                    "ConfigMapGenerator"
                };
                r.set_annotation(
                    "config.kubernetes.io/origin",
                    &builtin_origin(origin_dir, &t.src.file, kind),
                );
            }
            absorb(b.fs, ra, r).map_err(|e| {
                if e.at.is_none() {
                    relocate(e, &t.src, g.pos)
                } else {
                    e
                }
            })?;
        }
    }
    plugins::run_generators(b, t, ra, origin_dir)
}

fn relocate(mut e: Error, src: &Source, pos: Pos) -> Error {
    let mut at = Error::at(e.code, src, pos, std::mem::take(&mut e.message));
    at.help = e.help.take();
    at
}

/// The origin annotation of an object a built-in generator made.
pub fn builtin_origin(origin_dir: &str, kust_file: &str, kind: &str) -> String {
    let name = kust_file.rsplit('/').next().unwrap_or(kust_file);
    format!(
        "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n",
        super::fs::join(origin_dir, name)
    )
}

/// One generated ConfigMap or Secret.
pub fn generate(
    b: &Builder<'_>,
    src: &Source,
    dir: &str,
    g: &GeneratorArgs,
    opts: &GenOptions,
    secret: bool,
) -> Result<Resource> {
    let kind = if secret { "Secret" } else { "ConfigMap" };
    if g.name.is_empty() {
        return Err(Error::at(
            code::INVALID,
            src,
            g.pos,
            format!("a {kind} generator needs a name"),
        ));
    }
    let pairs = pairs(b, src, dir, g, secret)?;
    let mut node = Node::map();
    node.set("apiVersion", Node::plain("v1"));
    node.set("kind", Node::plain(kind));
    let mut meta = Node::map();
    meta.set("name", Node::plain(g.name.as_str()));
    if !g.namespace.is_empty() {
        meta.set("namespace", Node::str(g.namespace.as_str()));
    }
    node.set("metadata", meta);
    if secret {
        node.set("type", Node::str(g.kind.as_deref().unwrap_or("Opaque")));
        let mut data = Node::map();
        for (k, v) in &pairs {
            data.set(k, Node::str(base64_lines(v)));
        }
        node.set("data", data);
    } else {
        let mut data = Node::map();
        let mut binary = Node::map();
        for (k, v) in &pairs {
            match std::str::from_utf8(v) {
                Ok(s) => data.set(k, Node::str(s)),
                Err(_) => binary.set(k, Node::str(base64(v))),
            }
        }
        if data.as_map().is_some_and(|m| !m.is_empty()) {
            node.set("data", data);
        }
        if binary.as_map().is_some_and(|m| !m.is_empty()) {
            node.set("binaryData", binary);
        }
    }
    if let Some(meta) = node.get_mut("metadata") {
        for (field, list) in [("labels", &opts.labels), ("annotations", &opts.annotations)] {
            if !list.is_empty() {
                let mut m = Node::map();
                let mut sorted: Vec<&(String, String)> = list.iter().collect();
                sorted.sort();
                for (k, v) in sorted {
                    m.set(k, Node::str(v.as_str()));
                }
                meta.set(field, m);
            }
        }
    }
    if opts.immutable {
        node.set("immutable", Node::plain("true"));
    }
    let size = pairs.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>() + 64;
    let mut r = Resource::new(node, &src.file, g.pos.line, size);
    r.behavior = g.behavior;
    r.needs_hash = !opts.disable_name_suffix_hash;
    Ok(r)
}

/// The key/value pairs of a generator, sorted by key: envs, then
/// literals, then files; a repeated key is an error.
fn pairs(
    b: &Builder<'_>,
    src: &Source,
    dir: &str,
    g: &GeneratorArgs,
    secret: bool,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out: Vec<(String, Vec<u8>, Pos)> = Vec::new();
    for env in &g.envs {
        let path = b.file_in(src, dir, env)?;
        let bytes = if secret {
            b.fs.read_for(&path, Use::SecretEnv)?
        } else {
            b.fs.read_bytes(&path)?
        };
        for (i, raw) in bytes.split(|&c| c == b'\n').enumerate() {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let raw = if i == 0 {
                raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw)
            } else {
                raw
            };
            let line = std::str::from_utf8(raw).map_err(|_| {
                Error::in_file(code::INVALID, &path, format!("line {} has invalid UTF-8", i + 1))
            })?;
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(Error::in_file(
                    code::REFUSED,
                    &path,
                    format!("line {}: `{line}` has no `=`; kustomize would take the value from its own environment", i + 1),
                )
                .help("write KEY=VALUE; mooring never copies its own environment into objects"));
            };
            if !is_env_var_name(key) {
                return Err(Error::in_file(
                    code::INVALID,
                    &path,
                    format!(
                        "line {}: \"{key}\" is not a valid key name: a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit",
                        i + 1
                    ),
                ));
            }
            out.push((key.to_string(), value.as_bytes().to_vec(), env.pos));
        }
    }
    for lit in &g.literals {
        let (k, v) = literal(&lit.value).ok_or_else(|| {
            Error::at(
                code::INVALID,
                src,
                lit.pos,
                format!("invalid literal source {}, expected key=value", lit.value),
            )
        })?;
        out.push((k, v.into_bytes(), lit.pos));
    }
    for f in &g.files {
        let (key, path) = file_source(src, f)?;
        let spanned = Spanned {
            value: path,
            pos: f.pos,
        };
        let real = b.file_in(src, dir, &spanned)?;
        let bytes = if secret {
            b.fs.read_for(&real, Use::SecretFile { key: &key })?
        } else {
            b.fs.read_bytes(&real)?
        };
        out.push((key, bytes, f.pos));
    }
    let mut seen: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, v, pos) in out {
        if !is_config_map_key(&k) {
            return Err(Error::at(
                code::INVALID,
                src,
                pos,
                format!(
                    "\"{k}\" is not a valid key name for a {}: a valid key must consist of alphanumeric characters, '-', '_' or '.'",
                    if g.kind.is_some() { "Secret" } else { "ConfigMap" }
                ),
            ));
        }
        if seen.iter().any(|(x, _)| *x == k) {
            return Err(Error::at(
                code::CONFLICT,
                src,
                pos,
                format!("configmap {} illegally repeats the key `{k}`", g.name),
            ));
        }
        seen.push((k, v));
    }
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(seen)
}

fn literal(s: &str) -> Option<(String, String)> {
    if s.starts_with('=') {
        return None;
    }
    let (k, v) = s.split_once('=')?;
    let v = if v.len() >= 2
        && v.as_bytes()[0] == v.as_bytes()[v.len() - 1]
        && (v.starts_with('"') || v.starts_with('\''))
    {
        &v[1..v.len() - 1]
    } else {
        v
    };
    Some((k.to_string(), v.to_string()))
}

fn file_source(src: &Source, f: &Spanned<String>) -> Result<(String, String)> {
    let s = &f.value;
    let bad = |m: String| Error::at(code::INVALID, src, f.pos, m);
    match s.matches('=').count() {
        0 => Ok((s.rsplit('/').next().unwrap_or(s).to_string(), s.clone())),
        1 if s.starts_with('=') => Err(bad(format!("key name for file path {} missing", &s[1..]))),
        1 if s.ends_with('=') => Err(bad(format!(
            "file path for key name {} missing",
            &s[..s.len() - 1]
        ))),
        1 => {
            let (k, p) = s.split_once('=').unwrap_or_default();
            Ok((k.to_string(), p.to_string()))
        }
        _ => Err(bad("key names or file paths cannot contain '='".into())),
    }
}

fn is_env_var_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '-' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn is_config_map_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        && k != "."
        && k != ".."
}

/// Base64 in lines of 70 characters, each ending in a newline when there
/// is more than one (kyaml's encodeBase64, which Secrets go through).
fn base64_lines(data: &[u8]) -> String {
    let enc = base64(data);
    let lines = enc.len() / 70 + 1;
    if lines == 1 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + lines);
    for chunk in enc.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// kustomize's appendReplaceOrMerge: a generated object joins the build.
pub fn absorb(fs: &super::fs::Loader<'_>, ra: &mut Accumulator, mut r: Resource) -> Result<()> {
    let id = r.cur_id();
    let matches = ra.resources.by_any_id(|x| id.equals(x));
    match matches.as_slice() {
        [] => match r.behavior {
            Behavior::Create => ra.resources.append_all(vec![r]).map_err(|c| conflict_error(fs, &c)),
            _ => Err(Error::new(
                code::NO_TARGET,
                format!("id {id} does not exist; cannot merge or replace"),
            )
            .help("`behavior: merge` and `replace` change an object a base generated; check its name and namespace")),
        },
        [i] => {
            let old = &ra.resources.list[*i];
            match r.behavior {
                Behavior::Replace => copy_merge_meta(&mut r, old),
                Behavior::Merge => {
                    let origin = old.annotation("config.kubernetes.io/origin").map(str::to_string);
                    copy_merge_meta(&mut r, old);
                    for field in ["data", "binaryData"] {
                        let mut merged: Vec<(String, Node)> = map_entries(&old.node, field);
                        for (k, v) in map_entries(&r.node, field) {
                            match merged.iter_mut().find(|(x, _)| *x == k) {
                                Some(e) => e.1 = v,
                                None => merged.push((k, v)),
                            }
                        }
                        if !merged.is_empty() || field == "data" {
                            merged.sort_by(|a, b| a.0.cmp(&b.0));
                            let mut m = Node::map();
                            for (k, v) in merged {
                                m.set(&k, v);
                            }
                            if field == "data" && m.as_map().is_some_and(Vec::is_empty) && r.node.get("data").is_none() {
                                continue;
                            }
                            r.node.set(field, m);
                        }
                    }
                    if let Some(o) = origin {
                        r.set_annotation("config.kubernetes.io/origin", &o);
                    }
                }
                Behavior::Create => {
                    return Err(Error::new(
                        code::CONFLICT,
                        format!("id {id} exists; behavior must be merge or replace"),
                    )
                    .help("set `behavior: merge` or `behavior: replace` on the generator to change the existing object"));
                }
            }
            let keep = std::mem::take(&mut ra.resources.list[*i]);
            r.needs_hash = keep.needs_hash && r.needs_hash;
            r.behavior = keep.behavior;
            r.prev = keep.prev;
            r.prefixes = keep.prefixes;
            r.suffixes = keep.suffixes;
            ra.resources.list[*i] = r;
            Ok(())
        }
        _ => Err(Error::new(
            code::CONFLICT,
            format!("found multiple objects that could accept merge of {id}"),
        )),
    }
}

fn map_entries(node: &Node, field: &str) -> Vec<(String, Node)> {
    node.get(field)
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|e| (e.key.clone(), e.value.clone())).collect())
        .unwrap_or_default()
}

/// kustomize's CopyMergeMetaDataFieldsFrom: labels and annotations merged
/// (the new object's win), name and namespace and var names from the old.
fn copy_merge_meta(r: &mut Resource, old: &Resource) {
    for field in ["labels", "annotations"] {
        let mut merged: Vec<(String, String)> = old.string_map(field);
        for (k, v) in r.string_map(field) {
            super::kustomization::upsert(&mut merged, &k, &v);
        }
        merged.sort();
        if let Some(meta) = r.node.map_at("metadata") {
            meta.remove(field);
            if !merged.is_empty() {
                let mut m = Node::map();
                for (k, v) in merged {
                    m.set(&k, Node::str(v));
                }
                meta.set(field, m);
            }
        }
    }
    let name = old.name().to_string();
    let ns = old.namespace().to_string();
    r.set_name(&name);
    r.set_namespace(&ns);
    r.ref_var_names = old.ref_var_names.clone();
}

impl Default for Resource {
    fn default() -> Resource {
        Resource::new(Node::null(), "", 0, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_encoding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn literals() {
        assert_eq!(literal("a=b=c"), Some(("a".into(), "b=c".into())));
        assert_eq!(literal("a=\"x\""), Some(("a".into(), "x".into())));
        assert_eq!(literal("a='x\""), Some(("a".into(), "'x\"".into())));
        assert_eq!(literal("=x"), None);
        assert_eq!(literal("x"), None);
    }
}
