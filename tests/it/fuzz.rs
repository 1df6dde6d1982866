//! Deterministic fuzzing of the config checker and of `suspend`/`resume`.
//!
//! Start from valid configs (built here, plus `examples/*.kdl` when the
//! repository has them), apply random byte-level and token-level edits,
//! and check properties that must hold for *any* input:
//!
//! * `config::check` never panics;
//! * every diagnostic span (and related span) lies inside the text and on
//!   char boundaries;
//! * rendering the diagnostics (`render`, `to_json`) never panics;
//! * `edit::apply` never panics on a parseable file; on a file that checks
//!   without errors, a suspend/resume of a declared object gives text that
//!   still parses and checks without errors, and suspend-then-resume of an
//!   object that was not suspended gives back the original bytes.
//!
//! The PRNG is a fixed-seed xorshift, so a run is reproducible. Each
//! iteration has its own seed derived from the base seed and its number.
//! Environment:
//!
//! * `MOORING_FUZZ_ITERS`: iterations (default 400, a few seconds in a
//!   debug build; CI can afford more);
//! * `MOORING_FUZZ_SEED`: base seed (decimal or 0x-hex);
//! * `MOORING_FUZZ_ITER`: run only this iteration (to replay a failure).
//!
//! A failure prints the seed, the iteration, the property, the mutated
//! input and a minimised input that still fails.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Once;
use std::time::{Duration, Instant};

use mooring::config::edit::{self, Change};
use mooring::config::{self, Config, Diagnostics, Kind};

use crate::rng::{Rng, env_u64};
use crate::support;

const DEFAULT_ITERS: u64 = 400;
const DEFAULT_SEED: u64 = 0x6d6f_6f72_696e_6701;
/// Mutations applied on top of each other in one iteration, at most.
const MAX_STACKED: usize = 4;
/// Distinct failures to minimise and report before giving up.
const MAX_REPORTED: usize = 10;

// ---- PRNG ----------------------------------------------------------------------

// ---- the corpus ----------------------------------------------------------------

/// The design document's example, made complete (every reference resolves).
const DESIGN_EXAMPLE: &str = r##"agent {
    state-dir "/var/lib/mooring"        // git caches, artifacts, inventories
    listen "127.0.0.1:9797"
    log level="info" format="text"
    field-manager "mooring"
    concurrency 4
}

cluster "prod" {
    kubeconfig "~/.kube/config"
    context "prod-eu"
}

source "platform" {
    git "https://github.com/acme/platform.git"
    branch "main"
    interval "1m"
    timeout "60s"
    auth { token-file "/etc/mooring/token"; }
    ignore "docs/**" "*.md"
}

source "podinfo-manifests" {
    oci "ghcr.io/stefanprodan/manifests/podinfo"
    semver ">=6.0.0"
    interval "10m"
}

app "infra" {
    source "platform"
    path "infra"
}

app "podinfo" {
    source "platform"
    path "apps/podinfo"
    cluster "prod"
    namespace "podinfo"
    interval "5m"
    prune #true
    wait timeout="3m"
    depends-on "infra"
    substitute { cluster_name "prod"; region "eu-west-1"; }
}

app "edge" {
    source "platform"
    path "edge"
    target dir="/var/lib/rancher/k3s/server/manifests/edge"
}

image "podinfo" {
    repository "ghcr.io/stefanprodan/podinfo"
    interval "5m"
    semver "^6.0.0"
    filter #"^main-[a-f0-9]+-(?<ts>\d+)$"# extract="$ts"
    exclude #"\.sig$"#
}

automation "platform" {
    source "platform"
    checkout "main"
    push "main"
    path "apps"
    author name="mooring" email="mooring@example.com"
    message "chore(images): update\n{% for c in changes %}- {{ c.file }}: {{ c.old }} -> {{ c.new }}\n{% endfor %}"
    interval "5m"
}

suspend app="podinfo" reason="memory leak investigation" until="2099-12-01T09:00:00Z"
suspend image="podinfo"
"##;

/// Odd but valid formatting: semicolons, comments everywhere, slashdash,
/// raw and multi-line strings, escapes, non-ASCII text, no final newline.
const ODD_FORMATTING: &str = "/* leading\n   block comment */\nsource \"s-1\" { git \"git@github.com:acme/x.git\"; tag \"v1.2.3\"; auth { ssh-key \"/k\"; known-hosts \"/kh\"; } }\n\
source s2 { oci \"ghcr.io/acme/m\"; digest \"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"; insecure #true }\n\
/-source \"gone\" { git \"nowhere\" }\n\
app \"cafe-free\" /-ignored=1 {\n    source \"s-1\" // trailing comment \u{1f980}\n    path \"apps/caf\u{e9}\"\n    substitute {\n        greeting \"h\u{e9}llo \\\"w\u{f6}rld\\\"\\n\"\n        raw #\"no \\escapes \"here\"\"#\n        multi \"\"\"\n            line one\n            line two\n            \"\"\"\n    }\n    /-depends-on \"nothing\"\n}\n\
app b { source s2; depends-on \"cafe-free\"; }\n\
image i1 { repository \"nginx\"; numerical order=\"desc\"; filter \"^(?<n>\\\\d+)-\u{e9}t\u{e9}$\" extract=\"${n}\"; exclude #\"^rc\"# \"\\\\.sig$\"; }\n\
image i2 { repository \"localhost:5000/app\"; alphabetical; }\n\
suspend app=b; suspend source=\"s2\" reason=\"\u{1f6a7} w\u{e4}hrend der Migration\"   // why\n\
\tsuspend image=i2 until=\"2099-01-01T00:00:00+02:00\"";

/// Small, with CRLF line endings and a depends-on chain.
const CRLF: &str = "source \"s\" {\r\n  git \"file:///srv/git/repo.git\"\r\n  semver \"^1\"\r\n}\r\napp \"a\" {\r\n  source \"s\"\r\n}\r\napp \"b\" {\r\n  source \"s\"\r\n  depends-on \"a\"\r\n}\r\napp \"c\" {\r\n  source \"s\"\r\n  depends-on \"a\" \"b\"\r\n  target dir=\"/tmp/out\"\r\n}\r\nautomation \"up\" {\r\n  source \"s\"\r\n  checkout \"main\"\r\n  author name=\"bot\" email=\"bot@example.com\"\r\n}\r\n";

/// The smallest useful file.
const MINIMAL: &str = "source \"s\" { git \"https://example.com/r.git\" }\n";

fn corpus() -> Vec<(String, String)> {
    let mut corpus: Vec<(String, String)> = [
        ("design example", DESIGN_EXAMPLE),
        ("odd formatting", ODD_FORMATTING),
        ("CRLF", CRLF),
        ("minimal", MINIMAL),
    ]
    .into_iter()
    .map(|(name, text)| (name.to_string(), text.to_string()))
    .collect();
    // Examples may be added by others at any time: take whatever is there.
    let dir = support::repo_root().join("examples");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "kdl"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(&p) {
                let name = format!("examples/{}", p.file_name().unwrap_or_default().to_string_lossy());
                corpus.push((name, text));
            }
        }
    }
    corpus
}

// ---- mutations -----------------------------------------------------------------

/// Tokens that tend to break KDL, the decoder's span arithmetic or the
/// renderer in interesting ways.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "#",
    "/-",
    "\\",
    "=",
    ";",
    "r#\"",
    "\"#",
    "#\"",
    "\"\"\"",
    "##\"",
    "\\u{",
    "\\u{e9}",
    "\\u{10FFFF}",
    "\\u{D800}",
    "\\u{110000}",
    "\\t",
    "\\n",
    "\\s",
    "\\ \n",
    "\u{e9}",
    "\u{1f980}",
    "\u{200b}",
    "\u{feff}",
    "\u{2028}",
    "\u{85}",
    "\u{a0}",
    "\u{0}",
    "\r",
    "\r\n",
    "\n",
    "\t",
    "//",
    "/*",
    "*/",
    "(",
    ")",
    "(ty)",
    "#true",
    "#false",
    "#null",
    "#inf",
    "#nan",
    "true",
    "null",
    "'",
    "0x",
    "1e999",
    "-0",
    "99999999999999999999999999999999999999999",
    "1.5",
    "$",
    "${",
    "$zz",
    "$1",
    "(?<",
    "(?<x>a)",
    "[",
    "a{999999}",
    "..",
    "~",
    "@",
    "oci://",
    "sha256:",
    "app",
    "source",
    "image",
    "suspend",
    "depends-on",
    "substitute",
    "filter",
    "extract=",
    "until=",
    "reason=",
    "order=",
    "timeout=",
    "dir=",
    "app=",
    "source=",
    " app=\"a\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"2099-01-01T00:00:00Z\"",
];

/// Whole lines worth inserting: valid-looking nodes and troublemakers.
const LINES: &[&str] = &[
    "suspend app=\"a\"",
    "suspend app=\"podinfo\" reason=\"x\"; suspend image=\"podinfo\"",
    "/-suspend app=\"a\"",
    "suspend app=\"a\" /- reason=\"x\" // c",
    "suspend app=\"a\" until=\"1970-01-01T00:00:00Z\"",
    "suspend automation=\"up\" source=\"s\"",
    "app \"a\" { source \"s\"; depends-on \"a\"; }",
    "app \"x1\" { source \"s\"; depends-on \"x2\"; }\napp \"x2\" { source \"s\"; depends-on \"x1\"; }",
    "image \"i\" { repository \"a/b\"; semver \"*\"; filter \"(?<a>x)\" extract=$zz\u{e9} }",
    "image \"i\" { repository \"a/b\"; semver \"*\"; filter \"(?<a>x)\" extract=\"\\t\u{e9}\u{e9}\u{e9}$zz\" }",
    "image \"i\" { repository \"a/b\"; semver \"*\"; filter \"\\t\u{e9}(\" }",
    "source \"s\" { git \"https://u:p@\u{e9}x.com/r\"; branch \"a b\"; }",
    "source \"s\" { oci \"ghcr.io/\u{e9}/x:t\u{e9}g\"; }",
    "agent { listen \"0.0.0.0:1\"; concurrency 0; log-file; }",
    "cluster \"c\" { context; }",
    "// just a comment",
    "/* unterminated",
    "\"unterminated",
    "",
];

fn char_floor(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn line_starts(s: &[u8]) -> Vec<usize> {
    let mut starts = vec![0];
    starts.extend(
        s.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .filter(|i| *i < s.len()),
    );
    starts
}

/// The byte range of the line that holds `pos`, with its newline.
fn line_around(s: &[u8], pos: usize) -> (usize, usize) {
    let start = s[..pos].iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
    let end = s[pos..]
        .iter()
        .position(|b| *b == b'\n')
        .map_or(s.len(), |p| pos + p + 1);
    (start, end)
}

/// A position to insert at: anywhere, or (often) just inside a string
/// literal, where the value checks and span arithmetic live.
fn insertion_point(rng: &mut Rng, s: &[u8]) -> usize {
    if rng.chance(40) {
        let quotes: Vec<usize> = s
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'"')
            .map(|(i, _)| i + 1)
            .collect();
        if !quotes.is_empty() {
            return *rng.pick(&quotes);
        }
    }
    rng.below(s.len() + 1)
}

fn mutate(rng: &mut Rng, input: &[u8], corpus: &[(String, String)]) -> Vec<u8> {
    let mut s = input.to_vec();
    match rng.below(14) {
        // Insert a random byte (invalid UTF-8 is welcome: it becomes U+FFFD).
        0 => {
            let at = insertion_point(rng, &s);
            s.insert(at, rng.next() as u8);
        }
        1 if !s.is_empty() => {
            let at = rng.below(s.len());
            s.remove(at);
        }
        2 if !s.is_empty() => {
            let at = rng.below(s.len());
            s[at] = if rng.chance(50) {
                *rng.pick(b"{}\"#=;/\\ \n()'$e")
            } else {
                rng.next() as u8
            };
        }
        // Duplicate a line.
        3 if !s.is_empty() => {
            let (a, b) = line_around(&s, rng.below(s.len()));
            let line = s[a..b].to_vec();
            let at = *rng.pick(&line_starts(&s));
            s.splice(at..at, line);
        }
        // Delete a line.
        4 if !s.is_empty() => {
            let (a, b) = line_around(&s, rng.below(s.len()));
            s.drain(a..b);
        }
        // Insert a token.
        5..=7 => {
            let at = insertion_point(rng, &s);
            let token = rng.pick(TOKENS).as_bytes().to_vec();
            s.splice(at..at, token);
        }
        // Insert a whole line at a line start.
        8 => {
            let at = *rng.pick(&line_starts(&s));
            let mut line = rng.pick(LINES).as_bytes().to_vec();
            line.push(b'\n');
            s.splice(at..at, line);
        }
        // A very long string or identifier.
        9 => {
            let at = insertion_point(rng, &s);
            // Mostly long, now and then very long (slow in debug builds).
            let max = if rng.chance(10) { 20_000 } else { 3_000 };
            let n = 1 + rng.below(max);
            let c = *rng.pick(&["a", "\u{e9}", "\\\\", "(", "9", " "]);
            let long = if rng.chance(50) {
                format!("\"{}\"", c.repeat(n))
            } else {
                c.repeat(n)
            };
            s.splice(at..at, long.into_bytes());
        }
        // Nested braces (balanced or not). Kept shallow on purpose: the
        // `kdl` parser recurses once per level, and a few hundred levels
        // overflow a 2 MiB test thread's stack, which aborts the whole test
        // binary instead of failing this test. Depth is a known issue to be
        // guarded against before parsing, not something to find by chance.
        10 => {
            let at = *rng.pick(&line_starts(&s));
            let depth = 1 + rng.below(48);
            let mut nest = String::new();
            for d in 0..depth {
                let _ = write!(nest, "n{d} {{ ");
            }
            let closing = if rng.chance(70) {
                depth
            } else {
                rng.below(depth + 2)
            };
            nest.push_str(&"} ".repeat(closing));
            nest.push('\n');
            s.splice(at..at, nest.into_bytes());
        }
        // Cut the file short.
        11 if !s.is_empty() => {
            let at = rng.below(s.len());
            s.truncate(at);
        }
        // Splice in a chunk of another corpus entry.
        12 => {
            let other = rng.pick(corpus).1.as_bytes();
            if !other.is_empty() {
                let a = rng.below(other.len());
                let b = (a + 1 + rng.below(200)).min(other.len());
                let at = rng.below(s.len() + 1);
                s.splice(at..at, other[a..b].to_vec());
            }
        }
        // Swap two bytes.
        _ if s.len() >= 2 => {
            let a = rng.below(s.len());
            let b = rng.below(s.len());
            s.swap(a, b);
        }
        _ => s.push(rng.next() as u8),
    }
    s
}

// ---- properties ----------------------------------------------------------------

thread_local! {
    /// Where the last panic on this thread happened (set by our panic hook).
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Inside `guarded`: the hook records instead of printing.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                return previous(info);
            }
            let at = info
                .location()
                .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_else(|| "unknown location".into());
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(at));
        }));
    });
}

/// Run `f`, turning a panic into its message and location.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    LAST_PANIC.with(|p| p.borrow_mut().take());
    QUIET.with(|q| q.set(true));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|payload| {
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        let at = LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_default();
        format!("{msg} (at {at})")
    })
}

fn now() -> jiff::Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("timestamp")
}

/// A broken property: which one, and details.
#[derive(Debug, Clone)]
struct Violation {
    property: &'static str,
    detail: String,
}

impl Violation {
    /// What makes two failures the same bug: the property, and where the
    /// panic happened or which diagnostic code had the bad span.
    fn key(&self) -> String {
        let place = match self.detail.rfind("(at ") {
            Some(i) => self.detail[i..].to_string(),
            None => self
                .detail
                .split([' ', ':'])
                .find(|w| w.starts_with("mooring::"))
                .unwrap_or_default()
                .to_string(),
        };
        format!("{} {place}", self.property)
    }
}

fn violation(property: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        property,
        detail: detail.into(),
    }
}

#[derive(Default)]
struct Stats {
    check_time: Duration,
    edit_time: Duration,
    checked: u64,
    parsed: u64,
    clean: u64,
    edits: u64,
    diagnostics: u64,
}

fn check_span(text: &str, offset: usize, len: usize, what: &str) -> Result<(), Violation> {
    let end = offset.checked_add(len);
    match end {
        Some(end) if end <= text.len() => {}
        _ => {
            return Err(violation(
                "span inside the text",
                format!(
                    "{what}: offset {offset} + length {len} > text length {}",
                    text.len()
                ),
            ));
        }
    }
    let end = offset + len;
    if !text.is_char_boundary(offset) || !text.is_char_boundary(end) {
        let from = char_floor(text, offset.saturating_sub(8));
        let to = char_floor(text, end + 8);
        return Err(violation(
            "span on char boundaries",
            format!(
                "{what}: {offset}..{end} splits a character, near {:?}",
                &text[from..to]
            ),
        ));
    }
    Ok(())
}

fn check_spans(text: &str, diags: &Diagnostics) -> Result<(), Violation> {
    for d in &diags.items {
        let what = format!("{} ({:?})", d.code, d.message);
        check_span(text, d.span.offset(), d.span.len(), &what)?;
        for (span, label) in &d.related {
            let what = format!("{what}, related span {label:?}");
            check_span(text, span.offset(), span.len(), &what)?;
        }
    }
    Ok(())
}

fn kind_names(config: &Config) -> Vec<(Kind, String)> {
    Kind::ALL
        .into_iter()
        .flat_map(|k| config.names(k).into_iter().map(move |n| (k, n.to_string())))
        .collect()
}

const REASONS: &[&str] = &[
    "why",
    "say \"hi\"\\",
    "multi\nline\ttabbed",
    "caf\u{e9} \u{1f980}",
    "\u{0}nul",
    "#\"raw-ish\"#",
    "/- not a comment",
    "",
];

fn random_change(rng: &mut Rng, names: &[(Kind, String)]) -> (Change, bool) {
    let known = !names.is_empty() && rng.chance(85);
    let (kind, name) = if known {
        rng.pick(names).clone()
    } else {
        (
            *rng.pick(&Kind::ALL),
            rng.pick(&["nope", "a", "caf\u{e9}", "x\"y", ""]).to_string(),
        )
    };
    let change = if rng.chance(60) {
        let until = match rng.below(3) {
            0 => None,
            1 => Some(jiff::Timestamp::from_second(4_102_444_800).expect("2100")),
            _ => Some(jiff::Timestamp::from_second(1_700_000_000).expect("2023")),
        };
        Change::Suspend {
            kind,
            name,
            reason: rng.chance(60).then(|| rng.pick(REASONS).to_string()),
            until,
        }
    } else {
        Change::Resume { kind, name }
    };
    (change, known)
}

/// Every property on one input. `edit_seed` drives the choice of edits, so
/// a minimised input is judged by the same edits.
fn properties(text: &str, edit_seed: u64, stats: &mut Stats) -> Result<(), Violation> {
    let started = Instant::now();
    let checked = check_properties(text, stats);
    stats.check_time += started.elapsed();
    let Some((config, clean)) = checked? else {
        return Ok(());
    };
    let started = Instant::now();
    let edited = edit_properties(text, &config, clean, edit_seed, stats);
    stats.edit_time += started.elapsed();
    edited
}

/// `check`, the spans it reports and their rendering. Gives the config, and
/// whether it came without errors, when the text parsed.
fn check_properties(text: &str, stats: &mut Stats) -> Result<Option<(Config, bool)>, Violation> {
    let (config, diags) = guarded(|| config::check(Path::new("fuzz.kdl"), text.to_string(), now()))
        .map_err(|p| violation("check does not panic", p))?;
    stats.checked += 1;
    stats.diagnostics += diags.items.len() as u64;
    check_spans(text, &diags)?;
    guarded(|| diags.render(false, 100)).map_err(|p| violation("render does not panic", p))?;
    guarded(|| diags.render(true, 40)).map_err(|p| violation("render does not panic", p))?;
    guarded(|| serde_json::to_string(&diags.to_json()).expect("serialize"))
        .map_err(|p| violation("to_json does not panic", p))?;
    let Some(config) = config else {
        return Ok(None);
    };
    stats.parsed += 1;
    let clean = !diags.has_errors();
    stats.clean += u64::from(clean);
    Ok(Some((config, clean)))
}

/// `edit::apply` on a parseable text: never panics; on a clean text, the
/// result parses and (for a declared object) is clean, and suspending then
/// resuming an object that was not suspended changes nothing.
fn edit_properties(
    text: &str,
    config: &Config,
    clean: bool,
    edit_seed: u64,
    stats: &mut Stats,
) -> Result<(), Violation> {
    let path = Path::new("fuzz.kdl");
    let mut rng = Rng::new(edit_seed);
    let (change, known) = random_change(&mut rng, &kind_names(config));
    let (edited, _) = guarded(|| edit::apply(text, &change))
        .map_err(|p| violation("edit::apply does not panic", format!("{change:?}: {p}")))?;
    stats.edits += 1;
    let (true, Some(edited)) = (clean, edited) else {
        return Ok(());
    };
    let (cfg2, diags2) = guarded(|| config::check(path, edited.clone(), now()))
        .map_err(|p| violation("check does not panic", format!("on edited text: {p}")))?;
    check_spans(&edited, &diags2)?;
    if cfg2.is_none() {
        return Err(violation(
            "edited text still parses",
            format!("{change:?} gave:\n{edited}\n{}", diags2.render(false, 100)),
        ));
    }
    if known && diags2.has_errors() {
        return Err(violation(
            "edited text checks without errors",
            format!("{change:?} gave:\n{edited}\n{}", diags2.render(false, 100)),
        ));
    }
    if let Change::Suspend { kind, name, .. } = &change
        && known
        && config.suspension(*kind, name).is_none()
    {
        let resume = Change::Resume {
            kind: *kind,
            name: name.clone(),
        };
        let (back, _) = guarded(|| edit::apply(&edited, &resume))
            .map_err(|p| violation("edit::apply does not panic", format!("{resume:?}: {p}")))?;
        stats.edits += 1;
        if back.as_deref() != Some(text) {
            return Err(violation(
                "resume after suspend restores the file",
                format!("{change:?} then resume gave:\n{back:?}"),
            ));
        }
    }
    Ok(())
}

/// Make a failing input smaller while it still fails the same way.
fn minimise(text: &str, edit_seed: u64, key: &str) -> String {
    let fails = |candidate: &str| {
        let mut stats = Stats::default();
        matches!(properties(candidate, edit_seed, &mut stats), Err(v) if v.key() == key)
    };
    let mut best = text.to_string();
    let mut budget = 3000;
    // Whole lines first, then chunks of characters of shrinking size.
    let mut i = 0;
    while budget > 0 {
        let lines: Vec<&str> = best.split_inclusive('\n').collect();
        if i >= lines.len() {
            break;
        }
        let candidate: String = lines
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, l)| *l)
            .collect();
        budget -= 1;
        if fails(&candidate) {
            best = candidate;
        } else {
            i += 1;
        }
    }
    let mut chunk = (best.chars().count() / 2).max(1);
    loop {
        let mut start = 0;
        while budget > 0 {
            let chars: Vec<char> = best.chars().collect();
            if start >= chars.len() {
                break;
            }
            let end = (start + chunk).min(chars.len());
            let candidate: String = chars[..start].iter().chain(&chars[end..]).collect();
            budget -= 1;
            if fails(&candidate) {
                best = candidate;
            } else {
                start += chunk;
            }
        }
        if chunk == 1 || budget == 0 {
            break;
        }
        chunk /= 2;
    }
    best
}

// ---- the test ----------------------------------------------------------------

#[test]
fn config_check_and_edits_survive_random_input() {
    install_panic_hook();
    let seed = env_u64("MOORING_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iters = env_u64("MOORING_FUZZ_ITERS").unwrap_or(DEFAULT_ITERS);
    let only = env_u64("MOORING_FUZZ_ITER");
    let corpus = corpus();

    // The built-in seeds must be valid, or the fuzzing starts from noise.
    for (name, text) in corpus.iter().filter(|(n, _)| !n.starts_with("examples/")) {
        let (cfg, diags) = config::check(Path::new(name), text.clone(), now());
        assert!(
            cfg.is_some() && !diags.has_errors(),
            "corpus entry {name:?} is not valid:\n{}",
            diags.render(false, 100)
        );
    }

    let mut stats = Stats::default();
    // The unmutated corpus first, then the random walk.
    for (i, (name, text)) in corpus.iter().enumerate() {
        if let Err(v) = properties(text, seed ^ i as u64, &mut stats) {
            panic!(
                "corpus entry {name:?} breaks \"{}\": {}\n--- input\n{text}",
                v.property, v.detail
            );
        }
    }

    let range = match only {
        Some(i) => i..i + 1,
        None => 0..iters,
    };
    // Keep going after a failure, to report every distinct one at once.
    let mut failures: Vec<(String, String)> = Vec::new();
    for iter in range {
        let iter_seed = seed ^ iter.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng::new(iter_seed);
        let (name, base) = rng.pick(&corpus);
        let mut bytes = base.as_bytes().to_vec();
        let stacked = 1 + rng.below(MAX_STACKED);
        for _ in 0..stacked {
            bytes = mutate(&mut rng, &bytes, &corpus);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let edit_seed = rng.next();
        let Err(v) = properties(&text, edit_seed, &mut stats) else {
            continue;
        };
        let key = v.key();
        if failures.iter().any(|(k, _)| *k == key) || failures.len() >= MAX_REPORTED {
            continue;
        }
        let small = minimise(&text, edit_seed, &key);
        let small_detail = properties(&small, edit_seed, &mut Stats::default())
            .err()
            .map(|v| v.detail)
            .unwrap_or_default();
        let report = format!(
            "property \"{}\" broken\n  base seed: {seed:#x}, iteration {iter} (from corpus entry {name:?})\n  \
             replay: MOORING_FUZZ_SEED={seed:#x} MOORING_FUZZ_ITER={iter} cargo test --test it fuzz\n  \
             detail: {}\n--- mutated input ({} bytes)\n{text:?}\n--- minimised input\n{small:?}\n  detail: {small_detail}\n",
            v.property,
            v.detail,
            text.len()
        );
        failures.push((key, report));
    }
    if !failures.is_empty() {
        let all: Vec<&str> = failures.iter().map(|(_, r)| r.as_str()).collect();
        panic!(
            "{} distinct propert{} broken (seed {seed:#x}):\n\n{}",
            failures.len(),
            if failures.len() == 1 { "y" } else { "ies" },
            all.join("\n")
        );
    }
    eprintln!(
        "fuzz: seed {seed:#x}, {} inputs checked ({:.1?} in check + render), {} parsed, {} without errors, \
         {} edits ({:.1?}), {} diagnostics",
        stats.checked,
        stats.check_time,
        stats.parsed,
        stats.clean,
        stats.edits,
        stats.edit_time,
        stats.diagnostics
    );
    assert!(stats.parsed > 0 && stats.clean > 0 && stats.edits > 0);
}
