//! Every bad config under `tests/fixtures/configs/` run through the real
//! `mooring validate`: the rendered text and the JSON are snapshotted
//! (`tests/it/snapshots/`), the exit code is checked, and a few properties
//! that matter more than wording are asserted directly. Adding a fixture
//! adds its snapshots; accept them with `INSTA_UPDATE=always cargo test
//! --test it diagnostics` and read them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{Run, TestEnv, repo_root};

/// Fixtures with warnings only: valid, exit 0.
const WARNING_ONLY: &[&str] = &["ca-file-on-ssh-source.kdl", "suspend-until-in-past.kdl"];

/// Fixtures with more than one problem on purpose; every other fixture
/// has one mistake and must get exactly one diagnostic.
const SEVERAL: &[(&str, usize)] = &[
    ("many-errors.kdl", 15),
    ("unknown-suspend-target.kdl", 2),
    ("kdl-v1-file.kdl", 5),
    ("syntax-v1-file-unclosed-brace.kdl", 2),
];

fn fixture_dir() -> PathBuf {
    repo_root().join("tests/fixtures/configs")
}

fn fixtures() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixture_dir())
        .expect("read fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "kdl"))
        .collect();
    files.sort();
    assert!(files.len() >= 34, "only {} fixtures", files.len());
    files
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("UTF-8 file name")
}

/// The fixture copied into a fresh env under its own name, so the file
/// name in the output is stable.
struct Validated {
    text: String,
    rendered: Run,
    json: Run,
}

impl Validated {
    fn new(name: &str) -> Validated {
        let text = std::fs::read_to_string(fixture_dir().join(name)).expect("read fixture");
        let env = TestEnv::new();
        env.write(name, &text);
        let rendered = env.run(&["validate", "-c", name]);
        let json = env.run(&["validate", "-c", name, "--format", "json"]);
        Validated { text, rendered, json }
    }

    fn items(&self) -> Vec<Value> {
        match serde_json::from_str(&self.json.stdout) {
            Ok(Value::Array(items)) => items,
            other => panic!("not a JSON array: {other:?}\n{}", self.json.stdout),
        }
    }

    /// The text a diagnostic's span covers.
    fn spanned(&self, item: &Value) -> &str {
        let offset = item["offset"].as_u64().expect("offset") as usize;
        let length = item["length"].as_u64().expect("length") as usize;
        &self.text[offset..offset + length]
    }
}

#[test]
fn every_fixture_matches_its_snapshots() {
    for path in fixtures() {
        let name = file_name(&path);
        let v = Validated::new(name);
        let code = if WARNING_ONLY.contains(&name) { 0 } else { 1 };
        v.rendered.expect_code(code);
        v.json.expect_code(code);
        assert!(v.rendered.stderr.is_empty(), "{name}: {}", v.rendered.stderr);
        let stem = name.trim_end_matches(".kdl");
        insta::with_settings!({
            input_file => &path,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{stem}.text"), v.rendered.stdout);
            insta::assert_snapshot!(format!("{stem}.json"), v.json.stdout);
        });
    }
}

#[test]
fn json_fields_are_complete_and_positions_are_one_based() {
    for path in fixtures() {
        let name = file_name(&path);
        let v = Validated::new(name);
        let items = v.items();
        assert!(!items.is_empty(), "{name}: no diagnostics");
        for item in &items {
            for field in [
                "severity", "code", "message", "file", "line", "column", "offset", "length", "help",
            ] {
                assert!(item.get(field).is_some(), "{name}: no `{field}` in {item}");
            }
            assert_eq!(item["file"], name);
            assert!(
                item["code"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("mooring::config::")),
                "{name}: {item}"
            );
            assert!(
                item["help"].as_str().is_some_and(|h| !h.is_empty()),
                "{name}: every diagnostic says what to do: {item}"
            );
            let offset = item["offset"].as_u64().expect("offset") as usize;
            let length = item["length"].as_u64().expect("length") as usize;
            assert!(
                offset + length <= v.text.len(),
                "{name}: span past the end: {item}"
            );
            // 1-based line and column (in characters) of `offset`.
            let before = &v.text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
            assert_eq!(item["line"], line, "{name}: {item}");
            assert_eq!(item["column"], column, "{name}: {item}");
        }
        let expected = SEVERAL
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(1, |(_, count)| *count);
        assert_eq!(
            items.len(),
            expected,
            "{name}: one mistake, one diagnostic\n{}",
            v.rendered.stdout
        );
        let severities: BTreeSet<&str> = items.iter().filter_map(|i| i["severity"].as_str()).collect();
        if WARNING_ONLY.contains(&name) {
            assert_eq!(severities, BTreeSet::from(["warning"]), "{name}");
        } else {
            assert!(severities.contains("error"), "{name}");
        }
    }
}

#[test]
fn a_known_position_in_json() {
    let v = Validated::new("unknown-node-typo.kdl");
    let items = v.items();
    assert_eq!(items[0]["code"], "mooring::config::unknown-node");
    assert_eq!(items[0]["severity"], "error");
    assert_eq!(items[0]["line"], 3);
    assert_eq!(items[0]["column"], 5);
    assert_eq!(items[0]["length"], 9);
    assert_eq!(v.spanned(&items[0]), "intervall");
    assert_eq!(items[0]["help"], "did you mean `interval`?");
}

#[test]
fn a_cycle_is_reported_once_naming_every_app_in_it() {
    let v = Validated::new("depends-on-cycle-three.kdl");
    let items = v.items();
    assert_eq!(items.len(), 1);
    let message = items[0]["message"].as_str().expect("message");
    for app in ["infra", "monitoring", "database"] {
        assert!(message.contains(&format!("\"{app}\"")), "{message}");
    }
    // "podinfo" depends on the cycle but is not part of it.
    assert!(!message.contains("podinfo"), "{message}");
    // The chain closes: it starts and ends with the same app.
    let chain: Vec<&str> = message
        .split(": ")
        .nth(1)
        .expect("a chain")
        .split(" → ")
        .collect();
    assert_eq!(chain.len(), 4, "{message}");
    assert_eq!(chain.first(), chain.last(), "{message}");
    // Every edge of the cycle is labelled in the rendered text.
    assert_eq!(v.rendered.stdout.matches("part of the cycle").count(), 2);
    assert_eq!(v.rendered.stdout.matches("closes the cycle").count(), 1);

    let v = Validated::new("depends-on-self-cycle.kdl");
    let items = v.items();
    assert_eq!(
        items[0]["message"],
        "`depends-on` forms a cycle: \"podinfo\" → \"podinfo\""
    );
    assert_eq!(v.spanned(&items[0]), "\"podinfo\"");
}

#[test]
fn regex_errors_point_into_the_pattern() {
    // Raw string: the offset is the `(` of the unclosed group.
    let v = Validated::new("regex-unclosed-group.kdl");
    let item = &v.items()[0];
    assert_eq!(item["code"], "mooring::config::invalid-regex");
    assert_eq!(v.spanned(item), "(");
    let offset = item["offset"].as_u64().expect("offset") as usize;
    assert!(v.text[..offset].ends_with("#\"^main-[a-f0-9]+-"), "{item}");

    // Quoted string with escapes before the bad spot: the offset maps
    // through `\\` (two characters in the file, one in the pattern).
    let v = Validated::new("regex-unclosed-group-quoted.kdl");
    let item = &v.items()[0];
    assert_eq!(v.spanned(item), "(");
    let offset = item["offset"].as_u64().expect("offset") as usize;
    assert!(v.text[..offset].ends_with(r#""^v\\d+\\."#), "{item}");

    // The bad escape itself, written with an escaped quote before it.
    let v = Validated::new("regex-bad-escape-quoted.kdl");
    let item = &v.items()[0];
    assert_eq!(v.spanned(item), r"\\q");

    let v = Validated::new("regex-lookahead.kdl");
    let item = &v.items()[0];
    assert_eq!(v.spanned(item), "(?!");
}

#[test]
fn credentials_in_a_url_are_never_repeated() {
    let v = Validated::new("git-url-credentials.kdl");
    let items = v.items();
    assert_eq!(items[0]["code"], "mooring::config::invalid-url");
    assert_eq!(v.spanned(&items[0]), "deploy-bot:ghp_s3cr3tT0ken@");
    // The JSON carries no source text: the secret must not appear at all.
    assert!(!v.json.stdout.contains("s3cr3t"), "{}", v.json.stdout);
    assert!(!v.json.stdout.contains("deploy-bot"), "{}", v.json.stdout);
    // The rendered text shows the line itself, but no message, label or
    // help repeats it.
    let outside_snippet: String = v.rendered.stdout.lines().filter(|l| !l.contains(" │ ")).collect();
    assert!(!outside_snippet.contains("s3cr3t"), "{}", v.rendered.stdout);
}

#[test]
fn many_errors_are_all_reported_in_file_order() {
    let v = Validated::new("many-errors.kdl");
    let items = v.items();
    let errors: Vec<&Value> = items.iter().filter(|i| i["severity"] == "error").collect();
    assert!(errors.len() >= 8, "{}", v.rendered.stdout);
    let codes: BTreeSet<&str> = errors.iter().filter_map(|i| i["code"].as_str()).collect();
    for code in [
        "invalid-value",
        "unknown-node",
        "duplicate-name",
        "invalid-url",
        "unknown-reference",
        "invalid-name",
        "wrong-type",
        "dependency-cycle",
        "invalid-duration",
        "missing-value",
        "invalid-regex",
    ] {
        assert!(
            codes.contains(format!("mooring::config::{code}").as_str()),
            "no {code} in {codes:?}"
        );
    }
    let offsets: Vec<u64> = items.iter().filter_map(|i| i["offset"].as_u64()).collect();
    assert!(offsets.is_sorted(), "{offsets:?}");
    assert!(
        v.rendered
            .stdout
            .trim_end()
            .ends_with(&format!("many-errors.kdl: invalid, {} errors", errors.len())),
        "{}",
        v.rendered.stdout
    );
}

#[test]
fn syntax_errors_say_how_to_write_the_value() {
    for (name, spanned, help) in [
        ("syntax-unquoted-duration.kdl", "5m", "write `interval \"5m\"`"),
        (
            "syntax-unquoted-path.kdl",
            "apps/podinfo",
            "write `path \"apps/podinfo\"`",
        ),
        (
            "syntax-unquoted-semver.kdl",
            ">=1.0.0",
            "write `semver \">=1.0.0\"`",
        ),
        (
            "syntax-unquoted-string-with-spaces.kdl",
            "update images (automated)",
            "write `message \"update images (automated)\"`",
        ),
        (
            "syntax-missing-space.kdl",
            "branch\"main\"",
            "write `branch \"main\"`",
        ),
    ] {
        let v = Validated::new(name);
        let item = &v.items()[0];
        assert_eq!(item["code"], "mooring::config::syntax", "{name}");
        assert_eq!(v.spanned(item), spanned, "{name}");
        assert_eq!(item["help"], help, "{name}");
    }
}

#[test]
fn an_unclosed_block_is_found_by_its_indentation() {
    let v = Validated::new("syntax-unclosed-brace.kdl");
    let items = v.items();
    assert_eq!(items.len(), 1);
    // The `{` of `auth`, not the one of `source` that the parser blames.
    assert_eq!(items[0]["line"], 3);
    assert_eq!(v.spanned(&items[0]), "{");
    assert_eq!(items[0]["message"], "`auth` has no closing `}`");
}

#[test]
fn kdl_v1_spellings_get_the_v2_spelling_as_the_fix() {
    let v = Validated::new("kdl-v1-file.kdl");
    v.rendered.expect_code(1);
    let items = v.items();
    // Every KDL v1 spelling at once, each with its KDL v2 spelling.
    let found: Vec<(&str, &str)> = items
        .iter()
        .map(|i| (i["code"].as_str().unwrap_or_default(), v.spanned(i)))
        .collect();
    assert_eq!(
        found,
        [
            ("mooring::config::kdl-v1", "false"),
            ("mooring::config::kdl-v1", "true"),
            ("mooring::config::kdl-v1", "null"),
            ("mooring::config::kdl-v1", r#"r"^\d+\.\d+\.\d+$""#),
            ("mooring::config::kdl-v1", "\\/"),
        ],
        "{}",
        v.rendered.stdout
    );
    let helps: Vec<&str> = items.iter().filter_map(|i| i["help"].as_str()).collect();
    assert!(helps[0].contains("`#false`"), "{helps:?}");
    assert!(helps[1].contains("`#true`"), "{helps:?}");
    assert!(helps[3].contains(r##"#"^\d+\.\d+\.\d+$"#"##), "{helps:?}");
    // A v1 keyword in a file that is otherwise v2: the same error.
    let v = Validated::new("syntax-v1-true-mixed-with-v2.kdl");
    let item = &v.items()[0];
    assert_eq!(v.spanned(item), "true");
    assert_eq!(item["code"], "mooring::config::kdl-v1");
}
