//! Imports run only downwards: each top-level module of `src/` may use
//! (`crate::…`) only modules of a lower layer, its own group, or the leaf
//! utilities. The order is DESIGN's: config < source, render (kustomize,
//! helm, sops) < apply, image < automation < agent < server < cli, with
//! `git` (what sources and automations share) just above config, and the
//! modules DESIGN does not name placed by who uses them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Utilities anyone may use; they use only each other.
const LEAVES: &[&str] = &[
    "atomic", "backoff", "busy", "gomatch", "goyaml", "progress", "quoted", "reason", "tags", "tls", "walk",
];

/// Layers from the bottom up; each layer holds groups, and a module may
/// use the modules of its own group and of any lower layer.
const LAYERS: &[&[&[&str]]] = &[
    &[&["config"]],
    &[&["git"]],
    &[&["source"], &["render", "kustomize", "helm", "sops"]],
    // notify: posts state changes for the agent (and the server's tests).
    &[&["apply"], &["image"], &["notify"]],
    &[&["automation"]],
    &[&["agent"]],
    // import: `mooring import flux`, used by cli only.
    &[&["server"], &["import"]],
    &[&["cli"]],
];

/// Known upward imports, each to be removed by the change named.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn place(module: &str) -> Option<(usize, usize)> {
    LAYERS.iter().enumerate().find_map(|(layer, groups)| {
        groups
            .iter()
            .position(|g| g.contains(&module))
            .map(|group| (layer, group))
    })
}

fn may_use(user: &str, used: &str) -> bool {
    if user == used || LEAVES.contains(&used) {
        return true;
    }
    if LEAVES.contains(&user) {
        return false;
    }
    match (place(user), place(used)) {
        (Some((lu, gu)), Some((ld, gd))) => ld < lu || (ld == lu && gd == gu),
        _ => false,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `code` names through `crate::`, grouped imports
/// (`crate::{a, b::c}`, over several lines too) included, each with the
/// line it is on. Comments are not code.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let code: Vec<&str> = code.lines().map(|l| l.split("//").next().unwrap_or("")).collect();
    let code = code.join("\n");
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("crate::").map(|i| i + from) {
        from = at + "crate::".len();
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[from..];
        let line = line_of(at);
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            let mut at_start = true;
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => at_start = true,
                    c if at_start && (c.is_alphanumeric() || c == '_') => item.push(c),
                    _ if at_start && !item.is_empty() => {
                        found.push((line, std::mem::take(&mut item)));
                        at_start = false;
                    }
                    _ => {}
                }
            }
            if !item.is_empty() {
                found.push((line, item));
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.push((line, name));
        }
    }
    found.retain(|(_, n)| !n.is_empty() && n != "self");
    found
}

#[test]
fn the_path_parser_sees_plain_and_grouped_imports() {
    let names = |code: &str| -> Vec<String> { crate_paths(code).into_iter().map(|(_, n)| n).collect() };
    assert_eq!(names("use crate::config::{self, GitRef};"), ["config"]);
    assert_eq!(
        names("use crate::{agent::Agent, reason::{Classify, Reason}, tls};"),
        ["agent", "reason", "tls"]
    );
    assert_eq!(
        crate_paths("use crate::{\n    agent::Agent,\n    server,\n};"),
        [(1, "agent".to_string()), (1, "server".to_string())]
    );
    assert_eq!(
        names("let x = crate::git::redact(u); // crate::cli::main\n/// [`crate::agent`]"),
        ["git"]
    );
    assert!(names("$crate::x and mycrate::y").is_empty());
}

#[test]
fn imports_run_only_downwards() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut modules = BTreeSet::new();
    let mut wrong: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut allowed_seen = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let top = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a name");
        let module = top.strip_suffix(".rs").unwrap_or(top);
        if module == "lib" || module == "main" {
            continue;
        }
        modules.insert(module.to_string());
        let shown = format!("src/{}", relative.display()).replace('\\', "/");
        let text = std::fs::read_to_string(file).expect("read");
        for (line, used) in crate_paths(&text) {
            if may_use(module, &used) {
                continue;
            }
            if let Some(allowed) = ALLOWED
                .iter()
                .find(|(f, user, to)| *f == shown && *user == module && *to == used)
            {
                allowed_seen.insert(*allowed);
                continue;
            }
            wrong
                .entry(format!("{module} → {used}"))
                .or_default()
                .insert(format!("{shown}:{line}"));
        }
    }
    let unplaced: Vec<&String> = modules
        .iter()
        .filter(|m| !LEAVES.contains(&m.as_str()) && place(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules with no place in the layers (add them to LAYERS or LEAVES): {unplaced:?}"
    );
    assert!(
        wrong.is_empty(),
        "imports that run upwards or across (config < git < source, render < apply, image, notify < \
         automation < agent < server, import < cli):\n{wrong:#?}"
    );
    let stale: Vec<_> = ALLOWED.iter().filter(|a| !allowed_seen.contains(*a)).collect();
    assert!(
        stale.is_empty(),
        "allowed upward imports that no longer exist (remove them from ALLOWED): {stale:?}"
    );
}
