//! `mooring patch DIR --set NAME=IMAGE[:TAG][@DIGEST]… [--namespace NS] [--dry-run]`:
//! set the values marked with `$imagepolicy` in the YAML files under DIR,
//! as an automation would with its policies' picks, without git.
//!
//! Like a Flux automation, the run works in one namespace: Flux markers
//! `NS:NAME` are set only for that namespace. Without `--namespace`, it is
//! the namespace in which the tree's markers name the most of the `--set`
//! policies (a tie is a usage error), or `flux-system` when they name none.
//!
//! Prints one line per change (`FILE:LINE  MARKER  OLD -> NEW`) and a
//! summary on stdout; skipped markers (one that names no policy among
//! them) and files are warnings on stderr. Exit 0 when done (also when
//! nothing changed), 1 when a file with values to set was left untouched
//! (its result would not parse, or it could not be written) or the tree
//! could not be read, 2 on a usage error.

use super::Exit;
use std::collections::BTreeMap;
use std::path::Path;

use crate::automation::setters::{self, Outcome, Policies};
use crate::config::model::defaults;
use crate::image::Selection;

const SET_FORM: &str = "NAME=IMAGE:TAG[@DIGEST], such as podinfo=ghcr.io/stefanprodan/podinfo:6.5.1";

pub fn run(dir: &Path, sets: &[String], namespace: Option<&str>, dry_run: bool) -> Exit {
    let mut selections: BTreeMap<String, Selection> = BTreeMap::new();
    for arg in sets {
        let (name, selection) = match parse_set(arg) {
            Ok(parsed) => parsed,
            Err(why) => {
                eprintln!("error: --set {arg}: {why}");
                eprintln!("  help: write --set {SET_FORM}");
                return Exit::Error;
            }
        };
        if selections.insert(name.clone(), selection).is_some() {
            eprintln!("error: --set {name}=… is given more than once");
            return Exit::Error;
        }
    }
    if let Some(ns) = namespace
        && (ns.is_empty() || ns.contains([':', ' ']))
    {
        eprintln!("error: --namespace {ns:?} is not a namespace");
        return Exit::Error;
    }
    if !dir.is_dir() {
        eprintln!("error: {} is not a directory", dir.display());
        return Exit::Error;
    }
    let namespace = match namespace {
        Some(ns) => ns.to_string(),
        None => match infer_namespace(dir, &selections) {
            Ok(ns) => ns,
            Err(code) => return code,
        },
    };
    let policies = Policies::with_picks(&namespace, selections.iter().map(|(n, s)| (n.as_str(), s)));
    let outcome = match setters::apply(dir, &policies, dry_run) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Failure;
        }
    };
    report(dir, &outcome, dry_run);
    if outcome.untouched.is_empty() {
        Exit::Success
    } else {
        Exit::Failure
    }
}

/// The namespace in which the tree's Flux markers name the most of the
/// `--set` policies; `flux-system` when they name none.
fn infer_namespace(dir: &Path, selections: &BTreeMap<String, Selection>) -> Result<String, Exit> {
    let seen = setters::marker_namespaces(dir).map_err(|e| {
        eprintln!("error: {e}");
        Exit::Failure
    })?;
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for name in selections.keys() {
        for ns in seen.get(name).into_iter().flatten() {
            *counts.entry(ns.as_str()).or_default() += 1;
        }
    }
    let Some(most) = counts.values().copied().max() else {
        return Ok(defaults::IMAGE_NAMESPACE.to_string());
    };
    let best: Vec<&str> = counts
        .iter()
        .filter(|(_, n)| **n == most)
        .map(|(ns, _)| *ns)
        .collect();
    match best.as_slice() {
        [one] => Ok((*one).to_string()),
        tied => {
            eprintln!(
                "error: the markers name these policies in more than one namespace ({}), equally often",
                tied.join(", ")
            );
            eprintln!("  help: say which with --namespace NS, as a Flux automation works in one namespace");
            Err(Exit::Error)
        }
    }
}

fn report(dir: &Path, outcome: &Outcome, dry_run: bool) {
    for (file, why) in &outcome.skipped {
        eprintln!("warning: {}: {why}", shown(dir, file));
    }
    for c in &outcome.changes {
        println!(
            "{}:{}  {}  {} -> {}",
            shown(dir, &c.file),
            c.line,
            c.marker,
            c.old,
            c.new
        );
    }
    let mut summary = match (outcome.changes.len(), outcome.files_changed.len()) {
        (0, _) => "no changes".to_string(),
        (n, f) => format!(
            "{} in {}",
            count(n, "change", "changes"),
            count(f, "file", "files")
        ),
    };
    if outcome.up_to_date > 0 {
        summary.push_str(&format!(
            "; {} already up to date",
            count(outcome.up_to_date, "marker", "markers")
        ));
    }
    if !outcome.untouched.is_empty() {
        summary.push_str(&format!(
            "; {} left untouched",
            count(outcome.untouched.len(), "file", "files")
        ));
    }
    if dry_run {
        println!("dry run: {summary}; nothing written");
    } else {
        println!("{summary}");
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A file as the user can open it: under DIR as given (`DIR/FILE`), or
/// just FILE when DIR is the current directory.
fn shown(dir: &Path, file: &str) -> String {
    let d = dir.to_string_lossy();
    let d = d.trim_end_matches('/');
    if d.is_empty() || d == "." {
        file.to_string()
    } else {
        format!("{d}/{file}")
    }
}

/// `NAME=IMAGE[:TAG][@DIGEST]`: the tag is what follows the last `:` after
/// the last `/` (a registry port is not a tag); the digest what follows
/// `@`. The tag is required.
fn parse_set(arg: &str) -> Result<(String, Selection), String> {
    let (name, image) = arg
        .split_once('=')
        .ok_or_else(|| "expected NAME=IMAGE:TAG[@DIGEST]".to_string())?;
    if name.is_empty() {
        return Err("the image policy name before `=` is empty".into());
    }
    if name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(format!(
            "\"{name}\" cannot be named in a marker (no `:` or blanks in a name)"
        ));
    }
    let (reference, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d.to_string())),
        None => (image, None),
    };
    let after_slash = reference.rfind('/').map_or(0, |i| i + 1);
    let Some(colon) = reference[after_slash..].rfind(':') else {
        return Err(match digest {
            Some(_) => format!("\"{image}\" has no tag; the tag is required even with a digest"),
            None => format!("\"{image}\" has no tag"),
        });
    };
    let colon = after_slash + colon;
    let selection = Selection {
        repository: reference[..colon].to_string(),
        tag: reference[colon + 1..].to_string(),
        digest,
    };
    setters::check_selection(&selection)?;
    Ok((name.to_string(), selection))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(repository: &str, tag: &str, digest: Option<&str>) -> Selection {
        Selection {
            repository: repository.into(),
            tag: tag.into(),
            digest: digest.map(str::to_string),
        }
    }

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_sets() {
        assert_eq!(
            parse_set("podinfo=ghcr.io/stefanprodan/podinfo:6.5.1"),
            Ok((
                "podinfo".into(),
                sel("ghcr.io/stefanprodan/podinfo", "6.5.1", None)
            ))
        );
        assert_eq!(
            parse_set("app=host:5000/app:1.2"),
            Ok(("app".into(), sel("host:5000/app", "1.2", None)))
        );
        assert_eq!(
            parse_set(&format!("app=host:5000/team/app:1.2@{DIGEST}")),
            Ok(("app".into(), sel("host:5000/team/app", "1.2", Some(DIGEST))))
        );
        assert_eq!(
            parse_set("n=nginx:latest"),
            Ok(("n".into(), sel("nginx", "latest", None)))
        );
    }

    #[test]
    fn refuses_bad_sets() {
        for (arg, why) in [
            ("podinfo", "expected NAME=IMAGE"),
            ("=nginx:1", "empty"),
            ("a:b=nginx:1", "cannot be named"),
            ("podinfo=ghcr.io/stefanprodan/podinfo", "has no tag"),
            ("app=host:5000/app", "has no tag"),
            (&format!("app=host:5000/app@{DIGEST}"), "has no tag"),
            ("app=nginx:", "not an image tag"),
            ("app=:1", "not an image repository"),
            ("app=nginx:1@sha256", "not a digest"),
            ("app=nginx:1 # x", "not an image tag"),
        ] {
            let err = parse_set(arg).unwrap_err();
            assert!(err.contains(why), "{arg}: {err}");
        }
    }

    #[test]
    fn shows_files_under_the_dir() {
        assert_eq!(shown(Path::new("."), "a/b.yaml"), "a/b.yaml");
        assert_eq!(shown(Path::new("./"), "a/b.yaml"), "a/b.yaml");
        assert_eq!(shown(Path::new("repo/"), "a/b.yaml"), "repo/a/b.yaml");
        assert_eq!(shown(Path::new("/tmp/x"), "b.yaml"), "/tmp/x/b.yaml");
    }
}
