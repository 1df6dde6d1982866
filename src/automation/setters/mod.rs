//! Setters: takes a directory of YAML files (a checkout) and the image
//! policies' [`Selection`]s, and sets every image reference marked with a
//! Flux-style `$imagepolicy` comment to what its policy picked. Gives the
//! [`Change`]s made (for the commit message), the files written and what
//! was skipped, and why.
//!
//! Patches edit text, never re-emit YAML: on a marked line only the bytes
//! of the value change (the new value keeps the old one's quotes); every
//! other byte of the file stays, line endings (`\r\n`), comments, spacing
//! and all. An edited file must still parse as YAML, else it is left as it
//! was and reported. Files whose markers are all up to date are not
//! rewritten (they keep their mtime).
//!
//! A marker is a YAML comment that ends the line of a block mapping value
//! (`image: X # {"$imagepolicy": "podinfo"}`) or of a block sequence item
//! (`- X # {...}`):
//!
//! | marker value | sets |
//! |---|---|
//! | `NAME` | the whole reference: `repository:tag`, or `repository:tag@digest` when the digest is known |
//! | `NAME:tag` | the tag only |
//! | `NAME:name` | the repository only |
//! | `NAME:digest` | the digest only (skipped while the digest is unknown) |
//!
//! Flux's `NAMESPACE:NAME` and `NAMESPACE:NAME:tag|name|digest` set only
//! the policy with that namespace and name; mooring's own forms set the
//! policy of that name, whatever its namespace. A marker that names no
//! policy is left alone and reported. See docs/automation.md for the
//! exact rules.
//!
//! The tree is hostile input (it comes from a git repository): symlinks are
//! never followed, hidden files and directories (`.git`) are skipped, a
//! file may hold at most [`MAX_FILE_BYTES`], and only files whose bytes
//! contain `$imagepolicy` are looked at any further.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::image::Selection;
use crate::reason::{Classify, Reason};

mod line;
mod marker;

use line::*;
pub use marker::*;

/// The image policies that markers may name, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies(BTreeMap<String, Policy>);

/// One image policy: its namespace and what it picked, if anything yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub namespace: String,
    pub selection: Option<Selection>,
}

impl Policies {
    pub fn new() -> Policies {
        Policies::default()
    }

    /// Add (or replace) the policy `name`.
    pub fn insert(&mut self, name: &str, namespace: &str, selection: Option<Selection>) {
        self.0.insert(
            name.to_string(),
            Policy {
                namespace: namespace.to_string(),
                selection,
            },
        );
    }

    /// Policies of one namespace with these picks.
    pub fn with_picks<'a>(
        namespace: &str,
        picks: impl IntoIterator<Item = (&'a str, &'a Selection)>,
    ) -> Policies {
        let mut policies = Policies::new();
        for (name, selection) in picks {
            policies.insert(name, namespace, Some(selection.clone()));
        }
        policies
    }

    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.0.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// By name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Policy)> {
        self.0.iter().map(|(name, p)| (name.as_str(), p))
    }

    /// The policy a marker names: by name, and by namespace too when the
    /// marker has one.
    fn named(&self, marker: &Marker) -> Option<&Policy> {
        self.0
            .get(&marker.image)
            .filter(|p| marker.namespace.as_deref().is_none_or(|ns| ns == p.namespace))
    }
}

pub use crate::walk::MAX_FILE_BYTES;

/// What a file must contain to be looked at.
const TOKEN: &str = "$imagepolicy";

/// One value set on one marked line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// The file, relative to the root, `/`-separated.
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// The marker's value as written (`podinfo:tag`, `flux-system:podinfo`).
    pub marker: String,
    /// The image policy's name.
    pub image: String,
    pub old: String,
    pub new: String,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// By file, then line.
    pub changes: Vec<Change>,
    /// The files written (or, on a dry run, that would be), in order.
    pub files_changed: Vec<String>,
    /// `(file, why)`: markers that were not set and files that were not
    /// patched, in file order. Every entry is worth a warning.
    pub skipped: Vec<(String, String)>,
    /// Files that had values to set but were left as they were: the result
    /// would not parse as YAML, or writing failed. Each also has an entry
    /// in `skipped` that says why.
    pub untouched: Vec<String>,
    /// How many YAML files were found (and read, unless too large).
    pub scanned: usize,
    /// How many markers already held their value.
    pub up_to_date: usize,
}

/// One marker that was not set, in [`Patched`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// 1-based.
    pub line: usize,
    pub why: String,
}

/// One file's text after [`patch_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patched {
    /// The new text; the input itself when nothing changed.
    pub text: String,
    /// In line order.
    pub changes: Vec<Change>,
    pub skipped: Vec<Skip>,
    /// How many markers already held their value.
    pub up_to_date: usize,
}

/// Why a file's text was not patched (it is left as it was).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The file did not parse as YAML before the change either.
    #[error("not valid YAML ({message}); left untouched")]
    NotYaml { message: String },
    /// The file parsed, but would not after the change.
    #[error("the result would not parse as YAML ({message}); left untouched")]
    WouldNotParse { message: String },
}

/// Why [`apply`] failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl Error {
    fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Set every marked value in the YAML files under `root` (recursively) to
/// what the `policies` picked, and write the files that changed atomically
/// — unless `dry_run`, which computes the same outcome and writes nothing.
pub fn apply(root: &Path, policies: &Policies, dry_run: bool) -> Result<Outcome, Error> {
    // The root itself is the caller's choice and may be a symlink.
    let meta = fs::metadata(root).map_err(|e| Error::io(root, e))?;
    if !meta.is_dir() {
        return Err(Error::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let mut outcome = Outcome::default();
    let files = crate::render::yaml_files(root, "").map_err(|(path, e)| Error::io(&path, e))?;
    for rel in files {
        outcome.scanned += 1;
        let path = root.join(&rel);
        let bytes = crate::walk::read_capped(&path, MAX_FILE_BYTES).map_err(|e| Error::io(&path, e))?;
        let Some(bytes) = bytes else {
            outcome.skipped.push((rel, too_large()));
            continue;
        };
        if !contains(&bytes, TOKEN.as_bytes()) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&bytes) else {
            outcome
                .skipped
                .push((rel, "not UTF-8 text; its markers were not looked at".into()));
            continue;
        };
        let patched = match patch_text(text, policies, &rel) {
            Ok(p) => p,
            Err(problem) => {
                outcome.skipped.push((rel.clone(), problem.to_string()));
                outcome.untouched.push(rel);
                continue;
            }
        };
        outcome.up_to_date += patched.up_to_date;
        outcome.skipped.extend(
            patched
                .skipped
                .into_iter()
                .map(|s| (rel.clone(), format!("line {}: {}", s.line, s.why))),
        );
        if patched.changes.is_empty() {
            continue;
        }
        if !dry_run && let Err(e) = crate::atomic::write(&path, patched.text.as_bytes()) {
            outcome.skipped.push((
                rel.clone(),
                format!("cannot write the file ({e}); left untouched"),
            ));
            outcome.untouched.push(rel);
            continue;
        }
        outcome.files_changed.push(rel);
        outcome.changes.extend(patched.changes);
    }
    Ok(outcome)
}

/// For each image policy name that Flux-style markers (`NAMESPACE:NAME…`)
/// in the YAML files under `root` mention, the namespaces they give it.
pub fn marker_namespaces(root: &Path) -> Result<BTreeMap<String, BTreeSet<String>>, Error> {
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let files = crate::render::yaml_files(root, "").map_err(|(path, e)| Error::io(&path, e))?;
    for rel in files {
        let path = root.join(&rel);
        let bytes = crate::walk::read_capped(&path, MAX_FILE_BYTES).map_err(|e| Error::io(&path, e))?;
        let Some(text) = bytes.as_deref().and_then(|b| std::str::from_utf8(b).ok()) else {
            continue;
        };
        for marker in markers(text) {
            if let Some(ns) = marker.namespace {
                seen.entry(marker.image).or_default().insert(ns);
            }
        }
    }
    Ok(seen)
}

/// The well-formed markers in a file's text, where [`patch_text`] would
/// find them.
pub fn markers(text: &str) -> Vec<Marker> {
    let mut found = Vec::new();
    if !text.contains(TOKEN) {
        return found;
    }
    let mut carry = Carry::Block;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let (_, line) = line_of(index, raw);
        let (info, next) = analyze(line, carry);
        carry = next;
        if let Some(value) = info.comment.and_then(|hash| marked(&line[hash + 1..]))
            && let Ok(value) = marker_value(value)
            && let Ok(marker) = parse_marker(&value)
        {
            found.push(marker);
        }
    }
    found
}

/// A line without its line ending and, on the first line, its byte order
/// mark, and the mark's length.
fn line_of(index: usize, raw: &str) -> (usize, &str) {
    let start = if index == 0 && raw.starts_with('\u{feff}') {
        '\u{feff}'.len_utf8()
    } else {
        0
    };
    let body = raw.strip_suffix('\n').unwrap_or(raw);
    let body = body.strip_suffix('\r').unwrap_or(body);
    (start, &body[start..])
}

/// A comment's text (after the `#`) when it is meant as a marker.
fn marked(comment: &str) -> Option<&str> {
    (comment.contains(TOKEN) && comment.trim_start().starts_with('{')).then_some(comment)
}

fn too_large() -> String {
    format!("larger than {} MiB; not read", MAX_FILE_BYTES >> 20)
}

/// One file's text with the marked values set, and the changes made: the
/// pure core of [`apply`]. `file` names the file in the changes.
pub fn set_text(text: &str, policies: &Policies, file: &str) -> Result<(String, Vec<Change>), Problem> {
    patch_text(text, policies, file).map(|p| (p.text, p.changes))
}

/// [`set_text`], also telling which markers were skipped and why.
pub fn patch_text(text: &str, policies: &Policies, file: &str) -> Result<Patched, Problem> {
    let mut patched = Patched {
        text: String::new(),
        changes: Vec::new(),
        skipped: Vec::new(),
        up_to_date: 0,
    };
    if !text.contains(TOKEN) {
        patched.text = text.to_string();
        return Ok(patched);
    }
    let mut out = String::with_capacity(text.len() + 64);
    let mut carry = Carry::Block;
    for (index, raw) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let (start, line) = line_of(index, raw);
        let (info, next) = analyze(line, carry);
        carry = next;
        // A line without a comment, or one that mentions the word, not a marker.
        let Some(comment) = info.comment.and_then(|hash| marked(&line[hash + 1..])) else {
            out.push_str(raw);
            continue;
        };
        match set_line(line, comment, &info.slot, policies) {
            LineResult::Set {
                range,
                replacement,
                marker,
                image,
                old,
                new,
            } => {
                out.push_str(&raw[..start + range.start]);
                out.push_str(&replacement);
                out.push_str(&raw[start + range.end..]);
                patched.changes.push(Change {
                    file: file.to_string(),
                    line: number,
                    marker,
                    image,
                    old,
                    new,
                });
            }
            LineResult::UpToDate => {
                patched.up_to_date += 1;
                out.push_str(raw);
            }
            LineResult::Skip(why) => {
                patched.skipped.push(Skip { line: number, why });
                out.push_str(raw);
            }
        }
    }
    if patched.changes.is_empty() {
        patched.text = text.to_string();
        return Ok(patched);
    }
    verify(text, &out)?;
    patched.text = out;
    Ok(patched)
}

/// The patched text parses as YAML; if not, whether the original did.
fn verify(original: &str, patched: &str) -> Result<(), Problem> {
    match check_yaml(patched) {
        Ok(()) => Ok(()),
        Err(message) => Err(match check_yaml(original) {
            Ok(()) => Problem::WouldNotParse { message },
            Err(message) => Problem::NotYaml { message },
        }),
    }
}

enum LineResult {
    Set {
        /// The bytes of the line that the replacement takes the place of.
        range: Range<usize>,
        replacement: String,
        marker: String,
        image: String,
        old: String,
        new: String,
    },
    UpToDate,
    Skip(String),
}

fn set_line(line: &str, comment: &str, slot: &Slot, policies: &Policies) -> LineResult {
    let value = match marker_value(comment) {
        Ok(v) => v,
        Err(why) => return LineResult::Skip(why),
    };
    let marker = match parse_marker(&value) {
        Ok(m) => m,
        Err(why) => return LineResult::Skip(why),
    };
    let Some(policy) = policies.named(&marker) else {
        return LineResult::Skip(no_policy(&value, &marker, policies));
    };
    let Some(selection) = &policy.selection else {
        return LineResult::Skip(format!(
            "marker \"{value}\": image policy \"{}\" has no pick yet; not set",
            marker.image
        ));
    };
    let new = match new_value(selection, marker.field, &marker.image) {
        Ok(v) => v,
        Err(why) => return LineResult::Skip(format!("marker \"{value}\": {why}; not set")),
    };
    let (range, old, replacement) = match slot {
        Slot::None(why) => return LineResult::Skip(format!("marker \"{value}\": {why}; not set")),
        Slot::Plain(range) => {
            let old = line[range.clone()].to_string();
            let replacement = if plain_is_string(&new) {
                new.clone()
            } else {
                format!("\"{new}\"")
            };
            (range.clone(), old, replacement)
        }
        Slot::Quoted { inner, double } => {
            let raw = &line[inner.clone()];
            let old = if *double {
                unescape_double(raw)
            } else {
                raw.replace("''", "'")
            };
            // Image reference characters need no escaping in either style.
            (inner.clone(), old, new.clone())
        }
    };
    if old == new {
        return LineResult::UpToDate;
    }
    LineResult::Set {
        range,
        replacement,
        marker: value,
        image: marker.image,
        old,
        new,
    }
}

/// Why a marker names no policy, with the nearest one when there is one.
fn no_policy(value: &str, marker: &Marker, policies: &Policies) -> String {
    let named = match &marker.namespace {
        Some(ns) => format!("{ns}/{}", marker.image),
        None => marker.image.clone(),
    };
    match policies.get(&marker.image) {
        Some(p) => format!(
            "marker \"{value}\" names no image policy: \"{}\" is in namespace \"{}\", not \"{}\"; not set",
            marker.image,
            p.namespace,
            marker.namespace.as_deref().unwrap_or_default()
        ),
        None => format!("marker \"{value}\" names no image policy ({named}); not set"),
    }
}

/// The common escapes of a double-quoted scalar; others are kept as written.
fn unescape_double(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('"' | '\\' | '/')) => out.push(e),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// A plain scalar with this text reads as a string (in YAML 1.1 as well as
/// 1.2): not a number, boolean, null or date. A value that would not is
/// written in double quotes.
fn plain_is_string(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | ""
    ) {
        return false;
    }
    let unsigned = lower.strip_prefix(['+', '-']).unwrap_or(&lower);
    if matches!(unsigned, ".inf" | ".nan") {
        return false;
    }
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(digits) = unsigned.strip_prefix(prefix)
            && !digits.is_empty()
            && digits.chars().all(|c| c == '_' || c.is_digit(radix))
        {
            return false;
        }
    }
    // YAML 1.1 sexagesimal numbers (`1:30`).
    if unsigned.contains(':')
        && unsigned
            .split(':')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit() || c == '_'))
    {
        return false;
    }
    // Dates (`2024-01-31…`) are timestamps in YAML 1.1.
    let b = value.as_bytes();
    if b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && (b[6] == b'-' || b[7] == b'-')
    {
        return false;
    }
    !is_number(unsigned)
}

/// `digits[.digits][e[+-]digits]`, with `_` allowed between digits and at
/// least one digit before the exponent.
fn is_number(s: &str) -> bool {
    let (mantissa, exponent) = match s.find('e') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut digits = 0;
    let mut dots = 0;
    for c in mantissa.chars() {
        match c {
            '0'..='9' => digits += 1,
            '_' => {}
            '.' => dots += 1,
            _ => return false,
        }
    }
    if digits == 0 || dots > 1 {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        }
    }
}

fn parse_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        with_snippet: false,
        // As src/render: deeply nested CRD schemas need more than 64 levels.
        budget: serde_saphyr::budget! { max_depth: 256 },
    }
}

/// Every document of `text` parses as YAML.
fn check_yaml(text: &str) -> Result<(), String> {
    serde_saphyr::from_multiple_with_options::<serde::de::IgnoredAny>(text, parse_options())
        .map(|_| ())
        .map_err(|e| {
            e.to_string()
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect()
        })
}

// ---- the tree ------------------------------------------------------------------

/// `needle` occurs in `haystack`. Looks for the needle's first byte, which
/// is rare in YAML (`$`), then compares.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut at = 0;
    while let Some(pos) = haystack[at..].iter().position(|&b| b == first) {
        let start = at + pos + 1;
        if haystack[start..].starts_with(rest) {
            return true;
        }
        at = start;
    }
    false
}

impl Classify for Error {
    fn reason(&self) -> Reason {
        Reason::PatchFailed
    }

    fn retryable(&self) -> bool {
        matches!(self, Error::Io { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::tree;

    const REPO: &str = "ghcr.io/stefanprodan/podinfo";
    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn sel(tag: &str, digest: Option<&str>) -> Selection {
        Selection {
            repository: REPO.into(),
            tag: tag.into(),
            digest: digest.map(str::to_string),
        }
    }

    /// Policies in Flux's default namespace.
    fn picks(list: &[(&str, Selection)]) -> Policies {
        Policies::with_picks("flux-system", list.iter().map(|(n, s)| (*n, s)))
    }

    fn podinfo() -> Policies {
        picks(&[("podinfo", sel("6.5.1", None))])
    }

    /// Patch `text`; assert the whole result is `expected`.
    #[track_caller]
    fn check(text: &str, policies: &Policies, expected: &str) -> Patched {
        let patched = patch_text(text, policies, "f.yaml").unwrap();
        assert_eq!(patched.text, expected, "skipped: {:?}", patched.skipped);
        patched
    }

    /// The markers on `text` are skipped; the text stays; the reasons.
    #[track_caller]
    fn skips(text: &str, policies: &Policies) -> Vec<String> {
        let patched = patch_text(text, policies, "f.yaml").unwrap();
        assert_eq!(patched.text, text);
        assert!(patched.changes.is_empty(), "{:?}", patched.changes);
        patched.skipped.into_iter().map(|s| s.why).collect()
    }

    #[test]
    fn full_reference_marker() {
        let text = "spec:\n  containers:\n    - name: podinfod\n      image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n      ports: []\n";
        let p = check(text, &podinfo(), &text.replace("podinfo:6.5.0", "podinfo:6.5.1"));
        assert_eq!(
            p.changes,
            vec![Change {
                file: "f.yaml".into(),
                line: 4,
                marker: "podinfo".into(),
                image: "podinfo".into(),
                old: "ghcr.io/stefanprodan/podinfo:6.5.0".into(),
                new: "ghcr.io/stefanprodan/podinfo:6.5.1".into(),
            }]
        );
    }

    #[test]
    fn full_reference_with_digest_and_other_fields() {
        let with_digest = picks(&[("podinfo", sel("6.5.1", Some(DIGEST)))]);
        let text = "image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n\
                    tag: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n\
                    repository: docker.io/old/podinfo # {\"$imagepolicy\": \"podinfo:name\"}\n\
                    digest: sha256:aaaa # {\"$imagepolicy\": \"podinfo:digest\"}\n";
        let expected = format!(
            "image: ghcr.io/stefanprodan/podinfo:6.5.1@{DIGEST} # {{\"$imagepolicy\": \"podinfo\"}}\n\
             tag: 6.5.1 # {{\"$imagepolicy\": \"podinfo:tag\"}}\n\
             repository: ghcr.io/stefanprodan/podinfo # {{\"$imagepolicy\": \"podinfo:name\"}}\n\
             digest: {DIGEST} # {{\"$imagepolicy\": \"podinfo:digest\"}}\n"
        );
        let p = check(text, &with_digest, &expected);
        let lines: Vec<(usize, &str)> = p.changes.iter().map(|c| (c.line, c.marker.as_str())).collect();
        assert_eq!(
            lines,
            vec![
                (1, "podinfo"),
                (2, "podinfo:tag"),
                (3, "podinfo:name"),
                (4, "podinfo:digest")
            ]
        );
    }

    #[test]
    fn digest_marker_without_a_digest_is_skipped() {
        let text = "digest: sha256:aaaa # {\"$imagepolicy\": \"podinfo:digest\"}\n";
        let why = skips(text, &podinfo());
        assert_eq!(why.len(), 1);
        assert!(why[0].contains("no digest is known"), "{why:?}");
    }

    #[test]
    fn flux_namespaced_markers() {
        let text = "a: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n\
                    b: 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n\
                    c: x # {\"$imagepolicy\": \"flux-system:podinfo:name\"}\n";
        let p = check(
            text,
            &podinfo(),
            "a: ghcr.io/stefanprodan/podinfo:6.5.1 # {\"$imagepolicy\": \"flux-system:podinfo\"}\n\
             b: 6.5.1 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n\
             c: ghcr.io/stefanprodan/podinfo # {\"$imagepolicy\": \"flux-system:podinfo:name\"}\n",
        );
        assert!(p.changes.iter().all(|c| c.image == "podinfo"));
        assert_eq!(p.changes[1].marker, "flux-system:podinfo:tag");
    }

    /// Flux's setters match `NAMESPACE:NAME` against the automation's
    /// policies by namespace and name (image-automation-controller
    /// internal/update TestUpdateWithSetters: `other-namespace:policy` is
    /// left alone); mooring's `NAME` forms match by name.
    #[test]
    fn flux_markers_match_namespace_and_name() {
        let mut policies = Policies::new();
        policies.insert("podinfo", "apps", Some(sel("6.5.1", None)));
        let text = "a: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"apps:podinfo\"}\n\
                    b: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"other:podinfo\"}\n\
                    c: '6.5.0' # {\"$imagepolicy\": \"other:podinfo:tag\"}\n\
                    d: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n\
                    e: '6.5.0' # {\"$imagepolicy\": \"apps:gone:tag\"}\n";
        let p = patch_text(text, &policies, "f.yaml").unwrap();
        let set: Vec<usize> = p.changes.iter().map(|c| c.line).collect();
        assert_eq!(set, [1, 4]);
        let why: Vec<(usize, &str)> = p.skipped.iter().map(|s| (s.line, s.why.as_str())).collect();
        assert_eq!(
            why,
            [
                (
                    2,
                    "marker \"other:podinfo\" names no image policy: \"podinfo\" is in namespace \"apps\", not \"other\"; not set"
                ),
                (
                    3,
                    "marker \"other:podinfo:tag\" names no image policy: \"podinfo\" is in namespace \"apps\", not \"other\"; not set"
                ),
                (
                    5,
                    "marker \"apps:gone:tag\" names no image policy (apps/gone); not set"
                ),
            ]
        );
        // A policy without a pick yet is not the same as no policy.
        let mut unpicked = Policies::new();
        unpicked.insert("podinfo", "apps", None);
        let why = skips("a: x:1 # {\"$imagepolicy\": \"apps:podinfo\"}\n", &unpicked);
        assert_eq!(
            why,
            ["marker \"apps:podinfo\": image policy \"podinfo\" has no pick yet; not set"]
        );
    }

    #[test]
    fn markers_are_read_where_they_would_be_set() {
        let text = "a: x # {\"$imagepolicy\": \"ns:one\"}\n\
                    b: |\n  c: y # {\"$imagepolicy\": \"ns:content\"}\n\
                    d: z # {\"$imagepolicy\": \"two:tag\"}\n\
                    # {\"$imagepolicy\": \"ns:comment-line\"}\n";
        let names: Vec<(Option<String>, String)> = markers(text)
            .into_iter()
            .map(|m| (m.namespace, m.image))
            .collect();
        // Neither block scalar content nor a comment line is a marker.
        assert_eq!(names, [(Some("ns".into()), "one".into()), (None, "two".into())]);
    }

    #[test]
    fn marker_values() {
        let m = |image: &str, field| Marker {
            namespace: None,
            image: image.into(),
            field,
        };
        let ns = |image: &str, field| Marker {
            namespace: Some("ns".into()),
            ..m(image, field)
        };
        assert_eq!(parse_marker("podinfo"), Ok(m("podinfo", Field::Reference)));
        assert_eq!(parse_marker("podinfo:tag"), Ok(m("podinfo", Field::Tag)));
        assert_eq!(parse_marker("podinfo:name"), Ok(m("podinfo", Field::Name)));
        assert_eq!(parse_marker("podinfo:digest"), Ok(m("podinfo", Field::Digest)));
        assert_eq!(parse_marker("ns:podinfo"), Ok(ns("podinfo", Field::Reference)));
        assert_eq!(parse_marker("ns:podinfo:tag"), Ok(ns("podinfo", Field::Tag)));
        assert!(parse_marker("ns:podinfo:bogus").is_err());
        assert!(parse_marker("a:b:c:d").is_err());
        assert!(parse_marker("").is_err());
        assert!(parse_marker("podinfo:").is_err());
        assert!(parse_marker(" podinfo").is_err());
    }

    #[test]
    fn spacing_variants_of_the_comment() {
        for marker in [
            "#{\"$imagepolicy\":\"podinfo:tag\"}",
            "#   {  \"$imagepolicy\" :  \"podinfo:tag\"  }   ",
            "# {\"$imagepolicy\":\"podinfo:tag\"}\t",
        ] {
            let text = format!("tag: 6.5.0 {marker}\n");
            check(&text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
        }
        // A tab before the comment, and trailing blanks after the value.
        let text = "tag: 6.5.0 \t  \t# {\"$imagepolicy\": \"podinfo:tag\"}  \n";
        check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
    }

    #[test]
    fn malformed_markers_are_skipped_with_a_reason() {
        for comment in [
            "{\"$imagepolicy\": podinfo}",
            "{\"$imagepolicy\": \"podinfo\"} trailing",
            "{\"$imagepolicy\": \"podinfo\", \"x\": 1}",
            "{'$imagepolicy': 'podinfo'}",
            "{\"$imagepolicy\": 1}",
        ] {
            let text = format!("image: a:1 # {comment}\n");
            let why = skips(&text, &podinfo());
            assert!(
                why.len() == 1 && why[0].starts_with("malformed marker"),
                "{comment}: {why:?}"
            );
        }
        // A comment that only mentions the word is no marker at all.
        let text = "image: a:1 # set by $imagepolicy automation\n";
        assert!(skips(text, &podinfo()).is_empty());
    }

    #[test]
    fn unknown_policy_is_skipped() {
        let text = "image: a:1 # {\"$imagepolicy\": \"other\"}\ntag: 1 # {\"$imagepolicy\": \"flux-system:other:tag\"}\n";
        let why = skips(text, &podinfo());
        assert_eq!(why.len(), 2);
        assert!(why[0].contains("\"other\""), "{why:?}");
        let patched = patch_text(text, &podinfo(), "f.yaml").unwrap();
        assert_eq!(patched.skipped[1].line, 2);
    }

    #[test]
    fn quoted_values_keep_their_quotes() {
        let text = "a: \"ghcr.io/stefanprodan/podinfo:6.5.0\" # {\"$imagepolicy\": \"podinfo\"}\n\
                    b: '6.5.0' # {\"$imagepolicy\": \"podinfo:tag\"}\n\
                    - \"6.5.0\"   # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        // (Not one valid document: a list after a map. Checked piecewise below.)
        let lines: Vec<&str> = text.lines().collect();
        check(
            &format!("{}\n{}\n", lines[0], lines[1]),
            &podinfo(),
            "a: \"ghcr.io/stefanprodan/podinfo:6.5.1\" # {\"$imagepolicy\": \"podinfo\"}\n\
             b: '6.5.1' # {\"$imagepolicy\": \"podinfo:tag\"}\n",
        );
        check(
            &format!("{}\n", lines[2]),
            &podinfo(),
            "- \"6.5.1\"   # {\"$imagepolicy\": \"podinfo:tag\"}\n",
        );
    }

    #[test]
    fn quoted_old_values_are_unescaped_for_comparison() {
        let text = "a: 'it''s' # {\"$imagepolicy\": \"podinfo:tag\"}\nb: \"6.5.1\" # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let p = check(
            text,
            &podinfo(),
            "a: '6.5.1' # {\"$imagepolicy\": \"podinfo:tag\"}\nb: \"6.5.1\" # {\"$imagepolicy\": \"podinfo:tag\"}\n",
        );
        assert_eq!(p.changes[0].old, "it's");
        assert_eq!(p.up_to_date, 1);
    }

    #[test]
    fn list_items_and_nested_items() {
        let text = "images:\n  - ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n  - - 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n  - image: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
    }

    #[test]
    fn kustomization_images() {
        let text = "apiVersion: kustomize.config.k8s.io/v1beta1\n\
                    kind: Kustomization\n\
                    resources:\n\
                    - deployment.yaml\n\
                    images:\n\
                    - name: podinfo\n  \
                      newName: docker.io/stefanprodan/podinfo # {\"$imagepolicy\": \"flux-system:podinfo:name\"}\n  \
                      newTag: 6.5.0 # {\"$imagepolicy\": \"flux-system:podinfo:tag\"}\n";
        let expected = text
            .replace("docker.io/stefanprodan/podinfo", REPO)
            .replace("newTag: 6.5.0", "newTag: 6.5.1");
        let p = check(text, &podinfo(), &expected);
        assert_eq!(p.changes.len(), 2);
        assert_eq!((p.changes[0].line, p.changes[1].line), (7, 8));
    }

    #[test]
    fn crlf_line_endings_stay() {
        let text =
            "a: 1\r\nimage: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\r\nb: 2\r\n";
        check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
        // And without a final line ending.
        let text = "image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\r\ntag: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}";
        check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
    }

    #[test]
    fn utf8_elsewhere_and_a_bom_stay() {
        let text = "\u{feff}# Überschrift — 日本語\ndescription: \"café ☕\" # ünïcödé\nimage: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\nnote: naïve # 注意\n";
        check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
        // A BOM on the marked line itself.
        let text = "\u{feff}tag: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        check(
            text,
            &podinfo(),
            "\u{feff}tag: 6.5.1 # {\"$imagepolicy\": \"podinfo:tag\"}\n",
        );
    }

    #[test]
    fn only_the_value_changes_byte_for_byte() {
        let text = "# leading comment\n\
                    apiVersion: apps/v1   \n\
                    kind: Deployment\n\
                    metadata:\n\
                    \x20 name: podinfo # name\n\
                    \x20 annotations:\n\
                    \x20   note: 'keep # this'\n\
                    spec:\n\
                    \x20 template:\n\
                    \x20   spec:\n\
                    \x20     containers:\n\
                    \x20       - name: podinfod\n\
                    \x20         image:   &img   ghcr.io/stefanprodan/podinfo:6.5.0    #   {\"$imagepolicy\": \"podinfo\"}   \n\
                    \x20         args: [\"--port\", \"9898\"]\t\n\
                    \n\
                    # trailing comment\n";
        // Spaces, the anchor, the comment and the other lines stay as they are.
        let expected = text.replace("podinfo:6.5.0", "podinfo:6.5.1");
        assert_ne!(expected, text);
        check(text, &podinfo(), &expected);
    }

    #[test]
    fn unchanged_value_is_no_change() {
        let text = "image: ghcr.io/stefanprodan/podinfo:6.5.1 # {\"$imagepolicy\": \"podinfo\"}\ntag: \"6.5.1\" # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let p = check(text, &podinfo(), text);
        assert!(p.changes.is_empty());
        assert!(p.skipped.is_empty());
        assert_eq!(p.up_to_date, 2);
    }

    #[test]
    fn a_marker_inside_a_string_is_not_a_marker() {
        let text = "description: \"use # {\\\"$imagepolicy\\\": \\\"podinfo\\\"}\"\n\
                    other: 'x # {\"$imagepolicy\": \"podinfo\"}'\n\
                    glued: a#{\"$imagepolicy\":\"podinfo\"}\n\
                    key: \"x\" # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let p = check(text, &podinfo(), &text.replace("key: \"x\"", "key: \"6.5.1\""));
        assert_eq!(p.changes.len(), 1);
        assert_eq!(p.changes[0].line, 4);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn markers_in_block_scalars_and_commented_out_lines_are_content() {
        let text = "data:\n  script: |\n    image: a:1 # {\"$imagepolicy\": \"podinfo\"}\n\n    more\n  next: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n# image: a:1 # {\"$imagepolicy\": \"podinfo\"}\nlist:\n- >-\n  tag: 1 # {\"$imagepolicy\": \"podinfo:tag\"}\n- 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let expected = text
            .replace("next: 6.5.0", "next: 6.5.1")
            .replace("- 6.5.0", "- 6.5.1");
        let p = check(text, &podinfo(), &expected);
        assert_eq!(p.changes.iter().map(|c| c.line).collect::<Vec<_>>(), vec![6, 11]);
        assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    }

    #[test]
    fn multi_line_quoted_scalars_are_followed() {
        let text = "a: \"first\n  # {\\\"$imagepolicy\\\": \\\"podinfo\\\"} still text\n  end\"\nb: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let p = check(text, &podinfo(), &text.replace("b: 6.5.0", "b: 6.5.1"));
        assert_eq!(p.changes.len(), 1);
    }

    #[test]
    fn flow_context_is_skipped_with_a_reason() {
        let text = "a: [ghcr.io/stefanprodan/podinfo:6.5.0] # {\"$imagepolicy\": \"podinfo\"}\n\
                    b: {\n  x: 6.5.0, # {\"$imagepolicy\": \"podinfo:tag\"}\n}\n\
                    c: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let patched = patch_text(text, &podinfo(), "f.yaml").unwrap();
        assert_eq!(patched.text, text.replace("c: 6.5.0", "c: 6.5.1"));
        let why: Vec<(usize, &str)> = patched.skipped.iter().map(|s| (s.line, s.why.as_str())).collect();
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(why.iter().all(|(_, w)| w.contains("flow")), "{why:?}");
        assert_eq!((why[0].0, why[1].0), (1, 3));
    }

    #[test]
    fn values_that_cannot_be_set_are_skipped_with_a_reason() {
        for (text, expect) in [
            ("a: # {\"$imagepolicy\": \"podinfo\"}\n", "no value"),
            ("a: *ref # {\"$imagepolicy\": \"podinfo\"}\n", "alias"),
            ("a: | # {\"$imagepolicy\": \"podinfo\"}\n  x\n", "block scalar"),
            ("- # {\"$imagepolicy\": \"podinfo\"}\n", "no value"),
            (
                "a:\n  plain continued\n  6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n",
                "no mapping value",
            ),
            ("--- # {\"$imagepolicy\": \"podinfo\"}\na: 1\n", "document marker"),
        ] {
            let why = skips(text, &podinfo());
            assert!(why.len() == 1 && why[0].contains(expect), "{text:?}: {why:?}");
        }
    }

    #[test]
    fn a_result_that_would_not_parse_is_refused() {
        // The file did not parse before: nothing is set.
        let text = "image: a:1 # {\"$imagepolicy\": \"podinfo\"}\nbroken: [\n";
        assert_eq!(
            patch_text(text, &podinfo(), "f.yaml").unwrap_err(),
            Problem::NotYaml {
                message: "unclosed bracket '[' at line 2, column 9".into()
            }
        );
        // A marked plain value may not go on past its comment.
        let text = "a: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n  still text\n";
        assert!(matches!(
            patch_text(text, &podinfo(), "f.yaml"),
            Err(Problem::NotYaml { .. })
        ));
        // A change that breaks a file that parsed. Values of image
        // reference characters cannot, on lines read right, so this is the
        // safety net for lines read wrong.
        assert_eq!(verify("a: 1\n", "a: 1\n"), Ok(()));
        assert_eq!(
            verify("a: 1\n", "a: [1\n"),
            Err(Problem::WouldNotParse {
                message: "unclosed bracket '[' at line 1, column 4".into()
            })
        );
        assert_eq!(
            Problem::WouldNotParse { message: "m".into() }.to_string(),
            "the result would not parse as YAML (m); left untouched"
        );
    }

    #[test]
    fn set_text_is_patch_text() {
        let text = "tag: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let (out, changes) = set_text(text, &podinfo(), "x/y.yaml").unwrap();
        assert_eq!(out, "tag: 6.5.1 # {\"$imagepolicy\": \"podinfo:tag\"}\n");
        assert_eq!(changes[0].file, "x/y.yaml");
        let unchanged = "a: 1\n";
        assert_eq!(
            set_text(unchanged, &podinfo(), "f").unwrap(),
            (unchanged.to_string(), vec![])
        );
    }

    #[test]
    fn plain_values_that_would_not_read_as_strings_get_quotes() {
        for (tag, written) in [
            ("1.10", "\"1.10\""),
            ("123", "\"123\""),
            ("1e3", "\"1e3\""),
            ("yes", "\"yes\""),
            ("0x1F", "\"0x1F\""),
            ("2024-01-31", "\"2024-01-31\""),
            ("6.5.1", "6.5.1"),
            ("v1.2", "v1.2"),
            ("main-abc123-1700000000", "main-abc123-1700000000"),
        ] {
            let p = picks(&[("podinfo", sel(tag, None))]);
            let text = "tag: 0.0.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
            check(text, &p, &text.replace("0.0.0", written));
        }
        // Inside quotes nothing is added.
        let p = picks(&[("podinfo", sel("1.10", None))]);
        let text = "tag: '0.0.0' # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        check(text, &p, &text.replace("0.0.0", "1.10"));
    }

    #[test]
    fn unusable_selections_are_skipped() {
        let bad = picks(&[("podinfo", sel("6.5.1 # x", None))]);
        let why = skips("tag: 1.0.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n", &bad);
        assert!(why[0].contains("not an image tag"), "{why:?}");
        let bad = picks(&[(
            "podinfo",
            Selection {
                repository: "\"quoted\"".into(),
                tag: "1".into(),
                digest: None,
            },
        )]);
        let why = skips("tag: 1.0.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n", &bad);
        assert!(why[0].contains("not an image repository"), "{why:?}");
    }

    #[test]
    fn check_selection_accepts_references() {
        for (repo, tag, digest) in [
            ("ghcr.io/stefanprodan/podinfo", "6.5.1", None),
            ("localhost:5000/app", "main-abc_1", Some(DIGEST)),
            ("nginx", "latest", None),
        ] {
            let s = Selection {
                repository: repo.into(),
                tag: tag.into(),
                digest: digest.map(str::to_string),
            };
            assert_eq!(check_selection(&s), Ok(()), "{repo}:{tag}");
        }
        for (repo, tag, digest) in [
            ("", "1", None),
            ("a/", "1", None),
            ("a b", "1", None),
            ("a", "", None),
            ("a", "-x", None),
            ("a", "1", Some("nocolon")),
            ("a", "1", Some("sha256:")),
        ] {
            let s = Selection {
                repository: repo.into(),
                tag: tag.into(),
                digest: digest.map(str::to_string),
            };
            assert!(check_selection(&s).is_err(), "{repo}:{tag}@{digest:?}");
        }
    }

    #[test]
    fn multi_document_files() {
        let text = "a: 1\n---\nimage: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n...\n---\nb: 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        let p = check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
        assert_eq!(p.changes.len(), 2);
    }

    #[test]
    fn quoted_keys_and_tags() {
        let text = "\"image\": ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n'tag': !!str 6.5.0 # {\"$imagepolicy\": \"podinfo:tag\"}\n";
        check(text, &podinfo(), &text.replace("6.5.0", "6.5.1"));
    }

    #[test]
    fn substring_search() {
        assert!(contains(b"abc $imagepolicy x", TOKEN.as_bytes()));
        assert!(contains(b"$$imagepolicy", TOKEN.as_bytes()));
        assert!(!contains(b"$imagepolic", TOKEN.as_bytes()));
        assert!(!contains(b"", TOKEN.as_bytes()));
    }

    // ---- apply ---------------------------------------------------------------------

    const MARKED: &str = "image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n";

    #[test]
    fn apply_walks_sorts_and_writes() {
        let dir = tree(&[
            ("b/deploy.yaml", MARKED),
            ("b/Kustomization", MARKED),
            ("b/kustomization.json", MARKED),
            ("a.yml", MARKED),
            ("a/z.yaml", MARKED),
            ("plain.yaml", "a: 1\n"),
            ("notes.txt", MARKED),
            (".git/x.yaml", MARKED),
            (".hidden.yaml", MARKED),
            ("up-to-date.yaml", &MARKED.replace("6.5.0", "6.5.1")),
        ]);
        let before = fs::metadata(dir.path().join("up-to-date.yaml"))
            .unwrap()
            .modified()
            .unwrap();
        let out = apply(dir.path(), &podinfo(), false).unwrap();
        let written = vec!["a.yml", "a/z.yaml", "b/Kustomization", "b/deploy.yaml"];
        assert_eq!(out.files_changed, written);
        assert_eq!(
            out.changes.iter().map(|c| c.file.as_str()).collect::<Vec<_>>(),
            written
        );
        assert_eq!(out.scanned, 6);
        assert_eq!(out.up_to_date, 1);
        assert!(out.skipped.is_empty() && out.untouched.is_empty(), "{out:?}");
        let patched = MARKED.replace("6.5.0", "6.5.1");
        for f in written {
            assert_eq!(fs::read_to_string(dir.path().join(f)).unwrap(), patched);
        }
        for f in ["notes.txt", ".git/x.yaml", ".hidden.yaml", "b/kustomization.json"] {
            assert_eq!(fs::read_to_string(dir.path().join(f)).unwrap(), MARKED);
        }
        let after = fs::metadata(dir.path().join("up-to-date.yaml"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(before, after);
        // A second run changes nothing.
        let again = apply(dir.path(), &podinfo(), false).unwrap();
        assert!(again.changes.is_empty());
        assert_eq!(again.up_to_date, 5);
    }

    #[test]
    fn apply_dry_run_writes_nothing() {
        let dir = tree(&[("a.yaml", MARKED)]);
        let out = apply(dir.path(), &podinfo(), true).unwrap();
        assert_eq!(out.files_changed, vec!["a.yaml"]);
        assert_eq!(out.changes.len(), 1);
        assert_eq!(fs::read_to_string(dir.path().join("a.yaml")).unwrap(), MARKED);
    }

    #[test]
    fn apply_leaves_broken_files_untouched() {
        let broken = format!("{MARKED}x: [\n");
        let dir = tree(&[("bad.yaml", &broken), ("good.yaml", MARKED)]);
        let out = apply(dir.path(), &podinfo(), false).unwrap();
        assert_eq!(out.files_changed, vec!["good.yaml"]);
        assert_eq!(out.untouched, vec!["bad.yaml"]);
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].0, "bad.yaml");
        assert!(out.skipped[0].1.contains("left untouched"), "{:?}", out.skipped);
        assert_eq!(fs::read_to_string(dir.path().join("bad.yaml")).unwrap(), broken);
    }

    #[test]
    fn apply_reports_skipped_markers_and_files() {
        let dir = tree(&[
            ("a.yaml", "x: 1 # {\"$imagepolicy\": \"nope\"}\n"),
            ("b.yaml", "x: 1\n"),
        ]);
        fs::write(dir.path().join("latin1.yaml"), b"x: \xe9 # $imagepolicy\n").unwrap();
        let out = apply(dir.path(), &podinfo(), false).unwrap();
        assert_eq!(out.skipped.len(), 2, "{:?}", out.skipped);
        assert_eq!(out.skipped[0].0, "a.yaml");
        assert!(out.skipped[0].1.starts_with("line 1: "), "{:?}", out.skipped);
        assert_eq!(out.skipped[1].0, "latin1.yaml");
        assert!(out.untouched.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn apply_does_not_follow_symlinks() {
        let outside = tree(&[("target.yaml", MARKED), ("dir/t.yaml", MARKED)]);
        let dir = tree(&[("a.yaml", "a: 1\n")]);
        std::os::unix::fs::symlink(outside.path().join("target.yaml"), dir.path().join("link.yaml")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("dir"), dir.path().join("linkdir")).unwrap();
        let out = apply(dir.path(), &podinfo(), false).unwrap();
        assert!(out.changes.is_empty(), "{out:?}");
        assert_eq!(out.scanned, 1);
        assert_eq!(
            fs::read_to_string(outside.path().join("target.yaml")).unwrap(),
            MARKED
        );
        assert_eq!(
            fs::read_to_string(outside.path().join("dir/t.yaml")).unwrap(),
            MARKED
        );
    }

    #[test]
    fn apply_refuses_a_file_as_root() {
        let dir = tree(&[("a.yaml", MARKED)]);
        assert!(matches!(
            apply(&dir.path().join("a.yaml"), &podinfo(), false),
            Err(Error::NotADirectory { .. })
        ));
        assert!(matches!(
            apply(&dir.path().join("missing"), &podinfo(), false),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn apply_skips_files_over_the_cap() {
        let dir = tree(&[("a.yaml", MARKED)]);
        let big = fs::File::create(dir.path().join("big.yaml")).unwrap();
        big.set_len(MAX_FILE_BYTES + 1).unwrap();
        let out = apply(dir.path(), &podinfo(), false).unwrap();
        assert_eq!(out.files_changed, vec!["a.yaml"]);
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].0, "big.yaml");
        assert!(out.skipped[0].1.contains("8 MiB"));
    }
}
