//! docs/config.md and docs/cli.md quote configs, commands and what mooring
//! prints; these tests keep the quotes true. An HTML comment on the line
//! before a code block (blank lines between are allowed) says what it is:
//!
//! - a ```kdl block without a marker is a complete config that `mooring
//!   validate` accepts without any diagnostic;
//! - `<!-- invalid -->`: a config with at least one error;
//! - `<!-- warning -->`: a config with warnings and no error;
//! - `<!-- partial -->`: objects that refer to others declared elsewhere in
//!   the doc: checked like a complete config, except that references may
//!   name objects it does not declare (`unknown-reference`);
//! - `<!-- fragment -->`: lines from inside a config; not checked;
//! - `<!-- transcript -->` on a ```text block: every `$ COMMAND` line is run
//!   with `sh` in a new temp dir that holds `examples/*.kdl` and, as
//!   `mooring.kdl`, the last ```kdl block above it in the doc. The lines up
//!   to the next `$ ` are what the command prints (standard output and
//!   error together); `$ echo $?` prints the exit code of the command
//!   before it. `<!-- transcript continued -->` runs in the dir of the
//!   transcript before it, for an example told in several steps.
//! - a ```diff block is a hunk of the change that the transcript before it
//!   made to `mooring.kdl` (checked, not refreshed).
//!
//! A line with `(from tests/fixtures/configs/NAME.kdl)` is followed by a
//! ```kdl block with that fixture's text and a ```text block with what
//! `mooring validate -c NAME.kdl` prints for it, run as
//! tests/it/diagnostics.rs runs the fixtures. The Diagnostics section of
//! docs/config.md shows such an example for every code in
//! src/config/diagnostic.rs. Quoted diagnostics and `$ ` commands must be
//! checked this way: a ```text block that holds either and is neither
//! attributed to a fixture nor a transcript is an error.
//!
//! Lines are compared without trailing whitespace.
//! `MOORING_UPDATE_DOCS=1 cargo test --test it docs` rewrites stale fixture
//! examples and transcripts in place; review the result with
//! `git diff docs/`.

use std::process::Command;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde_json::Value;

use crate::support::{TestEnv, repo_root, validate_fixture};

const DOCS: &[&str] = &[
    "docs/config.md",
    "docs/cli.md",
    "docs/kubernetes.md",
    "docs/kustomize.md",
    "docs/helm.md",
    "docs/migrating-from-flux.md",
    "docs/status-page.md",
];
const CONFIG_MD: &str = "docs/config.md";
const FIXTURES: &str = "tests/fixtures/configs/";
const REFRESH: &str = "refresh the stale blocks with `MOORING_UPDATE_DOCS=1 cargo test --test it docs`, \
                       then read `git diff docs/` and fix the prose around them if it no longer fits";
const CODE_PREFIX: &str = "mooring::config::";

/// Every test here reads the doc files and some rewrite them
/// (`MOORING_UPDATE_DOCS`): one test at a time.
static DOC_FILES: Mutex<()> = Mutex::new(());

fn lock() -> MutexGuard<'static, ()> {
    DOC_FILES.lock().unwrap_or_else(PoisonError::into_inner)
}

fn updating() -> bool {
    std::env::var_os("MOORING_UPDATE_DOCS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Panic with every problem found, if any.
fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s) in the docs (conventions: the header of tests/it/docs.rs):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

// ---- reading the docs ----------------------------------------------------------

/// A fenced code block.
#[derive(Debug)]
struct Block {
    lang: String,
    /// The HTML comment on the line before the fence, without `<!--`/`-->`.
    marker: Option<String>,
    /// The fixture this block was attributed to with `(from …)`.
    fixture: Option<String>,
    /// The last heading above the block.
    heading: String,
    /// 0-based line index of the opening fence, and of the closing one.
    open: usize,
    close: usize,
    /// Indentation of the fence (inside a list item), stripped from the body.
    indent: usize,
    body: String,
}

struct Doc {
    rel: &'static str,
    lines: Vec<String>,
    blocks: Vec<Block>,
}

impl Doc {
    fn load(rel: &'static str) -> Doc {
        let text =
            std::fs::read_to_string(repo_root().join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"));
        let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        let mut blocks = Vec::new();
        let mut problems = Vec::new();
        let mut heading = String::new();
        // A fixture attribution waiting for its ```kdl (false) or ```text (true) block.
        let mut pending: Option<(String, usize, bool)> = None;
        let mut i = 0;
        while i < lines.len() {
            let line = &lines[i];
            let trimmed = line.trim_start();
            let Some(lang) = trimmed.strip_prefix("```") else {
                if line.starts_with('#') {
                    heading = line.trim().to_string();
                }
                if let Some(name) = attribution(line) {
                    if let Some((old, at, _)) = pending.take() {
                        problems.push(unfinished_attribution(rel, &old, at));
                    }
                    pending = Some((name, i, false));
                } else if line.starts_with('#')
                    && let Some((old, at, _)) = pending.take()
                {
                    problems.push(unfinished_attribution(rel, &old, at));
                }
                i += 1;
                continue;
            };
            let indent = line.len() - trimmed.len();
            let close = (i + 1..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("{rel}:{}: code block is never closed", i + 1));
            let marker = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.trim().strip_prefix("<!--")?.strip_suffix("-->"))
                .map(|m| m.trim().to_string());
            let lang = lang.trim().to_string();
            let fixture = match (&mut pending, lang.as_str()) {
                (Some((name, _, seen_kdl @ false)), "kdl") => {
                    *seen_kdl = true;
                    Some(name.clone())
                }
                (Some((_, _, true)), "text") => pending.take().map(|(name, _, _)| name),
                (Some(_), _) => {
                    let (name, at, _) = pending.take().expect("pending");
                    problems.push(unfinished_attribution(rel, &name, at));
                    None
                }
                (None, _) => None,
            };
            let body: String = lines[i + 1..close]
                .iter()
                .map(|l| {
                    let cut = l.len() - l.trim_start_matches(' ').len();
                    format!("{}\n", &l[cut.min(indent)..])
                })
                .collect();
            blocks.push(Block {
                lang,
                marker,
                fixture,
                heading: heading.clone(),
                open: i,
                close,
                indent,
                body,
            });
            i = close + 1;
        }
        if let Some((name, at, _)) = pending {
            problems.push(unfinished_attribution(rel, &name, at));
        }
        report(problems);
        Doc { rel, lines, blocks }
    }

    /// `docs/config.md:123`, the place of a block's opening fence.
    fn at(&self, block: &Block) -> String {
        format!("{}:{}", self.rel, block.open + 1)
    }

    /// Replace the bodies of some blocks (by index into `blocks`) and write
    /// the file.
    fn rewrite(&self, mut bodies: Vec<(usize, String)>) {
        if bodies.is_empty() {
            return;
        }
        let mut lines = self.lines.clone();
        bodies.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, body) in bodies {
            let block = &self.blocks[i];
            let pad = " ".repeat(block.indent);
            let new: Vec<String> = normalize(&body)
                .into_iter()
                .map(|l| if l.is_empty() { l } else { format!("{pad}{l}") })
                .collect();
            eprintln!("{}: refreshed", self.at(block));
            lines.splice(block.open + 1..block.close, new);
        }
        std::fs::write(repo_root().join(self.rel), lines.join("\n")).expect("write doc");
    }
}

/// The fixture named by a `(from tests/fixtures/configs/NAME.kdl)` line.
fn attribution(line: &str) -> Option<String> {
    let rest = &line[line.find("(from ")?..];
    let name = &rest[rest.find(FIXTURES)? + FIXTURES.len()..];
    let end = name
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(name.len());
    Some(name[..end].to_string())
}

fn unfinished_attribution(rel: &str, name: &str, at: usize) -> String {
    format!(
        "{rel}:{}: `(from {FIXTURES}{name})` must be followed by a ```kdl block with the fixture \
         and a ```text block with its output, before anything else",
        at + 1
    )
}

/// The lines of a text as compared: no trailing whitespace, no trailing
/// blank lines.
fn normalize(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    lines
}

fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn stale(doc: &Doc, block: &Block, what: &str, quoted: &str, now: &str) -> String {
    format!(
        "{}: this ```{} block is stale: it should be {what}.\n--- in the doc\n{}\n--- now\n{}\n\
         To fix it, {REFRESH}.",
        doc.at(block),
        block.lang,
        normalize(quoted).join("\n"),
        normalize(now).join("\n"),
    )
}

// ---- the diagnostic codes --------------------------------------------------------

/// `(NAME, "mooring::config::…")` for every constant of the `code` module of
/// src/config/diagnostic.rs.
fn codes_in_source() -> Vec<(String, String)> {
    let path = repo_root().join("src/config/diagnostic.rs");
    let src = std::fs::read_to_string(&path).expect("read src/config/diagnostic.rs");
    let start = src
        .find("pub mod code {")
        .expect("src/config/diagnostic.rs has no `pub mod code {`");
    let module = &src[start..];
    let module = &module[..module.find("\n}").expect("end of `mod code`")];
    let consts = module.lines().filter(|l| l.contains("pub const")).count();
    let codes: Vec<(String, String)> = module
        .lines()
        .filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, rest) = rest.split_once(": &str = \"")?;
            let code = rest.strip_suffix("\";")?;
            Some((name.to_string(), code.to_string()))
        })
        .collect();
    assert_eq!(
        codes.len(),
        consts,
        "tests/it/docs.rs reads `pub const NAME: &str = \"…\";`, one a line, in `mod code`: {codes:?}"
    );
    assert!(
        codes.len() >= 20,
        "only {} codes in `mod code`: {codes:?}",
        codes.len()
    );
    for (name, code) in &codes {
        assert!(code.starts_with(CODE_PREFIX), "code::{name} = {code:?}");
    }
    codes
}

/// The GitHub anchor of a heading `### \`mooring::config::kdl-v1\``.
fn anchor(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

/// Every `PREFIX<name>` in `text`, with `<name>` the longest run of
/// lowercase letters, digits and `-` after it.
fn names_after<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &text[i + prefix.len()..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

#[test]
fn every_diagnostic_code_is_documented_with_an_example() {
    let _docs = lock();
    let codes = codes_in_source();
    let doc = Doc::load(CONFIG_MD);
    let text = doc.lines.join("\n");
    let mut problems = Vec::new();
    for (name, code) in &codes {
        let heading = format!("### `{code}`");
        if !doc.lines.iter().any(|l| l.trim_end() == heading) {
            problems.push(format!(
                "code::{name} ({code}) in src/config/diagnostic.rs is not documented: add a section \
                 `{heading}` to the Diagnostics section of {CONFIG_MD}, with an example from {FIXTURES}"
            ));
            continue;
        }
        let row = format!("| [`{code}`](#{}) |", anchor(code));
        if !doc.lines.iter().any(|l| l.starts_with(&row)) {
            problems.push(format!(
                "{code} has no row `{row} SEVERITY |` in the table of codes in {CONFIG_MD}"
            ));
        }
        let examples: Vec<&Block> = doc
            .blocks
            .iter()
            .filter(|b| b.heading == heading && b.lang == "text" && b.fixture.is_some())
            .collect();
        if examples.is_empty() {
            problems.push(format!(
                "the section `{heading}` of {CONFIG_MD} has no example: add a line \
                 `(from {FIXTURES}NAME.kdl)` for a fixture whose output has this code, followed by \
                 an empty ```kdl block and an empty ```text block, then {REFRESH}"
            ));
        } else if !examples.iter().any(|b| b.body.lines().any(|l| l == code)) {
            problems.push(format!(
                "the examples of the section `{heading}` of {CONFIG_MD} do not print {code}: \
                 if they are stale, {REFRESH}; otherwise take a fixture that has this code"
            ));
        }
    }
    // No code in the docs that the source does not have. The marker of left
    // out problems is named in JSON output, not a problem with an example.
    let omitted = mooring::config::diagnostic::OMITTED;
    let known: Vec<&str> = codes
        .iter()
        .map(|(_, c)| c.as_str())
        .chain([omitted])
        .map(|c| &c[CODE_PREFIX.len()..])
        .collect();
    let anchors: Vec<String> = codes.iter().map(|(_, c)| anchor(c)).collect();
    for rel in DOCS {
        let text = if *rel == CONFIG_MD {
            text.clone()
        } else {
            std::fs::read_to_string(repo_root().join(rel)).expect("read doc")
        };
        for name in names_after(&text, CODE_PREFIX) {
            if !name.is_empty() && !known.contains(&name) {
                problems.push(format!("{rel} names `{CODE_PREFIX}{name}`, which is no code"));
            }
        }
        for name in names_after(&text, "#mooringconfig") {
            if !anchors.iter().any(|a| *a == format!("mooringconfig{name}")) {
                problems.push(format!(
                    "{rel} links to `#mooringconfig{name}`, which is no code's section"
                ));
            }
        }
    }
    report(problems);
}

// ---- config examples ---------------------------------------------------------------

/// What a ```kdl block must be, by its marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Clean,
    Invalid,
    Warning,
    Partial,
}

impl Expect {
    fn of(marker: Option<&str>) -> Result<Option<Expect>, String> {
        Ok(Some(match marker {
            None => Expect::Clean,
            Some("invalid") => Expect::Invalid,
            Some("warning") => Expect::Warning,
            Some("partial") => Expect::Partial,
            Some("fragment") => return Ok(None),
            Some(other) => {
                return Err(format!(
                    "unknown marker `<!-- {other} -->` before a ```kdl block: use `invalid`, \
                     `warning`, `partial` or `fragment`, or none for a complete valid config"
                ));
            }
        }))
    }

    fn rule(self) -> &'static str {
        match self {
            Expect::Clean => "it has no marker, so it must be a complete config without any diagnostic",
            Expect::Invalid => "it is marked `<!-- invalid -->`, so it must have at least one error",
            Expect::Warning => "it is marked `<!-- warning -->`, so it must have warnings and no error",
            Expect::Partial => {
                "it is marked `<!-- partial -->`, so it must have no diagnostic other than \
                 unknown references"
            }
        }
    }

    fn accepts(self, items: &[Value]) -> bool {
        let errors = items.iter().filter(|i| i["severity"] == "error").count();
        match self {
            Expect::Clean => items.is_empty(),
            Expect::Invalid => errors > 0,
            Expect::Warning => errors == 0 && !items.is_empty(),
            Expect::Partial => items
                .iter()
                .all(|i| i["code"] == "mooring::config::unknown-reference" && i["severity"] == "error"),
        }
    }
}

#[test]
fn kdl_examples_validate_as_marked() {
    let _docs = lock();
    let mut problems = Vec::new();
    let mut checked = 0;
    for rel in DOCS {
        let doc = Doc::load(rel);
        for block in doc.blocks.iter().filter(|b| b.lang == "kdl") {
            let expect = match Expect::of(block.marker.as_deref()) {
                Ok(Some(expect)) => expect,
                Ok(None) => continue,
                Err(e) => {
                    problems.push(format!("{}: {e}", doc.at(block)));
                    continue;
                }
            };
            checked += 1;
            let env = TestEnv::new();
            env.write("mooring.kdl", &block.body);
            let json = env.run(&["validate", "-c", "mooring.kdl", "--format", "json"]);
            let items = match serde_json::from_str(&json.stdout) {
                Ok(Value::Array(items)) => items,
                _ => panic!("{}: not a JSON array: {json:?}", doc.at(block)),
            };
            if !expect.accepts(&items) {
                let text = env.run(&["validate", "-c", "mooring.kdl"]);
                problems.push(format!(
                    "{}: {}; `mooring validate` says:\n{}\nFix the example, or its marker on the line \
                     before the block.",
                    doc.at(block),
                    expect.rule(),
                    text.stdout.trim_end()
                ));
            }
        }
    }
    assert!(checked >= 30, "only {checked} ```kdl blocks checked");
    report(problems);
}

// ---- quoted output ---------------------------------------------------------------

#[test]
fn fixture_examples_match_the_binary() {
    let _docs = lock();
    let mut problems = Vec::new();
    let mut examples = 0;
    for rel in DOCS {
        let doc = Doc::load(rel);
        let mut updates = Vec::new();
        for (i, block) in doc.blocks.iter().enumerate() {
            let Some(name) = &block.fixture else { continue };
            examples += 1;
            let path = repo_root().join(FIXTURES).join(name);
            let Ok(fixture) = std::fs::read_to_string(&path) else {
                problems.push(format!("{}: there is no fixture {FIXTURES}{name}", doc.at(block)));
                continue;
            };
            let (what, now) = if block.lang == "kdl" {
                (format!("the text of {FIXTURES}{name}"), fixture)
            } else {
                let run = validate_fixture(name, &[]);
                assert!(run.stderr.is_empty(), "{name}: {}", run.stderr);
                (
                    format!("what `mooring validate -c {name}` prints for {FIXTURES}{name}"),
                    run.stdout,
                )
            };
            if same(&block.body, &now) {
                continue;
            }
            if updating() {
                updates.push((i, now));
            } else {
                problems.push(stale(&doc, block, &what, &block.body, &now));
            }
        }
        doc.rewrite(updates);
    }
    assert!(examples >= 48, "only {examples} fixture blocks in the docs");
    report(problems);
}

/// A temp dir in which the commands of a transcript run.
struct Session {
    env: TestEnv,
    /// `mooring.kdl` before and after the last transcript run.
    before: String,
    after: String,
}

impl Session {
    fn new(config: Option<&str>) -> Session {
        let env = TestEnv::new();
        if let Some(config) = config {
            env.write("mooring.kdl", config);
        }
        let examples = std::fs::read_dir(repo_root().join("examples")).expect("read examples/");
        for entry in examples {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "kdl") {
                let name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 name");
                let text = std::fs::read_to_string(&path).expect("read example");
                env.write(&format!("examples/{name}"), &text);
            }
        }
        Session {
            env,
            before: String::new(),
            after: String::new(),
        }
    }

    fn config(&self) -> String {
        std::fs::read_to_string(self.env.path().join("mooring.kdl")).unwrap_or_default()
    }

    /// Run the `$ ` lines of `transcript`; the transcript as it should read.
    fn run(&mut self, transcript: &str) -> String {
        let bin = crate::support::mooring_bin()
            .parent()
            .expect("binary dir")
            .to_path_buf();
        let path = std::env::var_os("PATH").unwrap_or_default();
        let path =
            std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&path))).expect("PATH");
        self.before = self.config();
        let mut out = String::new();
        let mut last_code = 0;
        for command in transcript.lines().filter_map(|l| l.strip_prefix("$ ")) {
            out.push_str(&format!("$ {command}\n"));
            if command.trim() == "echo $?" {
                out.push_str(&format!("{last_code}\n"));
                continue;
            }
            let result = Command::new("sh")
                .arg("-c")
                .arg(format!("exec 2>&1\n{command}"))
                .current_dir(self.env.path())
                .env_remove("MOORING_CONFIG")
                .env("NO_COLOR", "1")
                .env("COLUMNS", "100")
                .env("PATH", &path)
                .output()
                .expect("run sh");
            last_code = result.status.code().unwrap_or(-1);
            let printed = String::from_utf8_lossy(&result.stdout);
            out.push_str(&printed);
            if !printed.is_empty() && !printed.ends_with('\n') {
                out.push('\n');
            }
        }
        self.after = self.config();
        out
    }
}

/// Whether `hunk` (lines starting with ` `, `-` or `+`) is part of the
/// change from `before` to `after`.
fn check_hunk(hunk: &str, before: &str, after: &str) -> Result<(), String> {
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for line in hunk.lines() {
        let (tag, rest) = line.split_at(line.len().min(1));
        let rest = rest.trim_end().to_string();
        match tag {
            " " | "" => {
                old.push(rest.clone());
                new.push(rest);
            }
            "-" => old.push(rest),
            "+" => new.push(rest),
            _ => return Err(format!("the line {line:?} does not start with ` `, `-` or `+`")),
        }
    }
    let has = |text: &str, lines: &[String]| {
        let text: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
        text.windows(lines.len()).any(|w| w == lines)
    };
    if before == after {
        return Err("the transcript before it did not change mooring.kdl".into());
    }
    if !has(before, &old) || !has(after, &new) {
        return Err(format!(
            "mooring.kdl did not change that way.\n--- before\n{}\n--- after\n{}",
            before.trim_end(),
            after.trim_end()
        ));
    }
    Ok(())
}

#[test]
fn transcripts_match_the_binary() {
    let _docs = lock();
    let mut problems = Vec::new();
    let mut transcripts = 0;
    for rel in DOCS {
        let doc = Doc::load(rel);
        let mut updates = Vec::new();
        let mut session: Option<Session> = None;
        let mut last_kdl: Option<&str> = None;
        for (i, block) in doc.blocks.iter().enumerate() {
            let at = doc.at(block);
            match (block.lang.as_str(), block.marker.as_deref()) {
                ("kdl", _) => last_kdl = Some(&block.body),
                ("text", Some(marker @ ("transcript" | "transcript continued"))) => {
                    transcripts += 1;
                    if !block.body.starts_with("$ ") {
                        problems.push(format!("{at}: a transcript starts with a `$ COMMAND` line"));
                        continue;
                    }
                    if marker == "transcript" || session.is_none() {
                        if marker != "transcript" {
                            problems.push(format!("{at}: no transcript before it to continue"));
                        }
                        session = Some(Session::new(last_kdl));
                    }
                    let now = session.as_mut().expect("session").run(&block.body);
                    if same(&block.body, &now) {
                        continue;
                    }
                    if updating() {
                        updates.push((i, now));
                    } else {
                        problems.push(stale(&doc, block, "what these commands print", &block.body, &now));
                    }
                }
                ("text", Some(other)) => problems.push(format!(
                    "{at}: unknown marker `<!-- {other} -->` before a ```text block: use `transcript` \
                     or `transcript continued`"
                )),
                ("text", None) if block.fixture.is_none() => {
                    if block.body.starts_with("$ ") {
                        problems.push(format!(
                            "{at}: this looks like a transcript: mark it `<!-- transcript -->` so that \
                             it is checked"
                        ));
                    } else if block.body.contains(CODE_PREFIX) && block.body.contains(" │ ") {
                        problems.push(format!(
                            "{at}: quoted diagnostics must come from a fixture, with a line \
                             `(from {FIXTURES}NAME.kdl)` above the config, or from a transcript"
                        ));
                    }
                }
                ("diff", _) => match &session {
                    None => problems.push(format!("{at}: a ```diff block needs a transcript before it")),
                    Some(s) => {
                        if let Err(e) = check_hunk(&block.body, &s.before, &s.after) {
                            problems.push(format!(
                                "{at}: this ```diff block is not the change that the transcript before \
                                 it made to mooring.kdl: {e}\nFix it by hand."
                            ));
                        }
                    }
                },
                _ => {}
            }
        }
        doc.rewrite(updates);
    }
    assert!(transcripts >= 8, "only {transcripts} transcripts");
    report(problems);
}

#[test]
fn the_table_of_reasons_is_the_code_s() {
    let _lock = lock();
    let text = std::fs::read_to_string(repo_root().join("docs/cli.md")).expect("read docs/cli.md");
    let start = text
        .find("### Reasons")
        .expect("docs/cli.md has a Reasons section");
    let section = &text[start..];
    let end = section[4..].find("\n#").map_or(section.len(), |e| e + 4);
    let rows: Vec<(String, String)> = section[..end]
        .lines()
        .filter_map(|l| {
            let l = l.strip_prefix("| `")?;
            let (name, rest) = l.split_once("` | ")?;
            Some((name.to_string(), rest.strip_suffix(" |")?.to_string()))
        })
        .collect();
    let code: Vec<(String, String)> = mooring::reason::Reason::ALL
        .iter()
        .map(|r| (r.as_str().to_string(), r.meaning().to_string()))
        .collect();
    assert_eq!(
        rows, code,
        "docs/cli.md's table of reasons differs from src/reason.rs"
    );
}
