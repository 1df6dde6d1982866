//! `mooring helm template` against helm 3.17.2, the contract: the fixture
//! charts in tests/fixtures/helm with helm's output recorded beside them
//! (and checked against a live helm when one is on PATH), and the shared
//! conformance corpus of real charts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helm_corpus;
pub use crate::helm_corpus::helm_3_17;
use crate::support::{Run, repo_root};

fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures/helm")
}

/// A line of tests/fixtures/helm/cases.txt: a name and `helm template`'s
/// arguments, paths relative to the fixtures folder.
struct Case {
    name: String,
    args: Vec<String>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read_to_string(fixtures().join("cases.txt")).expect("read cases.txt");
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace().map(str::to_string);
            let name = words.next().expect("case name");
            Case {
                name,
                args: words.collect(),
            }
        })
        .collect()
}

/// Run `PROGRAM [PREFIX…] helm template ARGS…` in the fixtures folder.
fn run_in_fixtures(program: &Path, prefix: &[&str], args: &[String]) -> Run {
    let out = Command::new(program)
        .args(prefix)
        .args(["template"])
        .args(args)
        .current_dir(fixtures())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn mooring(args: &[String]) -> Run {
    run_in_fixtures(&crate::support::mooring_bin(), &["helm"], args)
}

/// The message of a miette report: the `×` line and the `│` lines that
/// continue it, without the frame.
fn diagnostic_message(stderr: &str) -> String {
    let mut lines = stderr.lines().skip_while(|l| !l.trim_start().starts_with('×'));
    let Some(first) = lines.next() else {
        return String::new();
    };
    let mut message = vec![first.trim_start().trim_start_matches('×').trim().to_string()];
    for line in lines {
        let Some(rest) = line.trim_start().strip_prefix('│') else {
            break;
        };
        message.push(rest.trim().to_string());
    }
    message.join("\n").trim_end().to_string()
}

/// Lines in sorted order: helm lists schema violations in Go's random map
/// order, so messages are compared as sets of lines.
fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.trim_end().lines().collect();
    lines.sort_unstable();
    lines
}

fn expected(case: &Case) -> Result<String, String> {
    let dir = fixtures().join("expected");
    match std::fs::read_to_string(dir.join(format!("{}.yaml", case.name))) {
        Ok(out) => Ok(out),
        Err(_) => Err(std::fs::read_to_string(dir.join(format!("{}.err", case.name)))
            .unwrap_or_else(|e| panic!("{}: no expected/{0}.yaml or .err: {e}", case.name))),
    }
}

#[test]
fn fixture_charts_render_as_helm_renders_them() {
    let cases = cases();
    assert!(cases.len() >= 9, "cases.txt lost its cases");
    for case in &cases {
        let run = mooring(&case.args);
        match expected(case) {
            Ok(want) => {
                run.expect_code(0);
                if run.stdout != want {
                    let diff = similar::TextDiff::from_lines(&want, &run.stdout);
                    panic!(
                        "{}: output differs from helm's (- helm, + mooring)\n{}",
                        case.name,
                        diff.unified_diff().context_radius(3)
                    );
                }
            }
            Err(want) => {
                run.expect_code(1);
                assert!(run.stdout.is_empty(), "{}: printed {}", case.name, run.stdout);
                let got = diagnostic_message(&run.stderr);
                assert_eq!(
                    sorted_lines(&got),
                    sorted_lines(&want),
                    "{}: error differs from helm's\n{}",
                    case.name,
                    run.stderr
                );
            }
        }
    }
}

#[test]
fn template_errors_point_into_the_template() {
    let case = cases()
        .into_iter()
        .find(|c| c.name == "broken-required")
        .expect("case");
    let run = mooring(&case.args);
    run.expect_code(1);
    insta::assert_snapshot!("broken-required", run.stderr);
}

/// The recorded outputs are helm's: with helm 3.17.2 on PATH (scripts/test
/// installs it), every case is run through it too.
#[test]
fn recorded_outputs_are_helms() {
    let Some(helm) = helm_3_17() else {
        let note = "helm 3.17.2 is not on PATH (scripts/test installs it)";
        assert!(std::env::var_os("CI").is_none(), "{note}");
        eprintln!("note: skipping the live comparison with helm: {note}");
        return;
    };
    for case in cases() {
        let run = run_in_fixtures(&helm, &[], &case.args);
        match expected(&case) {
            Ok(want) => {
                run.expect_code(0);
                assert_eq!(run.stdout, want, "{}: helm's output changed", case.name);
            }
            Err(want) => {
                run.expect_code(1);
                let got = run.stderr.lines().next().unwrap_or_default();
                let got = got.strip_prefix("Error: ").unwrap_or(got);
                let first = want.lines().next().unwrap_or_default();
                assert_eq!(got, first, "{}: helm's error changed", case.name);
            }
        }
    }
}

/// The shared corpus, its charts' dependencies put in place from the corpus
/// itself (`helm_corpus`): every case passes, error cases with helm's words,
/// except where the corpus lacks a dependency a case switches on; such a
/// case may fail only by missing that dependency's objects.
#[test]
fn conformance_corpus() {
    let Some(corpus) = helm_corpus::corpus() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the helm conformance corpus is missing (../shared/conformance/helm)"
        );
        eprintln!("note: skipping the helm conformance corpus: ../shared is absent");
        return;
    };
    let assembled = helm_corpus::assemble(&corpus);
    let out = Command::new("python3")
        .arg(corpus.join("runner.py"))
        .arg(&assembled.root)
        .args(["--strict-errors", "-j", "2"])
        .arg(crate::support::mooring_bin())
        .args(["helm", "template"])
        .env("NO_COLOR", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run the corpus runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    let (passed, total) = last
        .strip_prefix("PASS ")
        .and_then(|n| n.split_once('/'))
        .and_then(|(p, t)| Some((p.parse::<usize>().ok()?, t.parse::<usize>().ok()?)))
        .unwrap_or_else(|| panic!("no PASS line\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(total >= 41, "the corpus lost cases\n{stdout}");

    let mut excused = Vec::new();
    let lines: Vec<&str> = stdout.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("FAIL ") else {
            continue;
        };
        let case = rest.split_whitespace().next().unwrap_or_default();
        let chart = case_chart(&corpus, case);
        let dropped: Vec<&str> = assembled
            .dropped
            .iter()
            .filter(|(c, _)| *c == chart)
            .map(|(_, d)| d.as_str())
            .collect();
        let detail: Vec<&str> = lines[i + 1..]
            .iter()
            .take_while(|l| l.starts_with("    "))
            .map(|l| l.trim())
            .filter(|l| !l.starts_with("documents: "))
            .collect();
        let only_dropped = !detail.is_empty()
            && detail.iter().all(|l| {
                l.strip_prefix("missing: ")
                    .is_some_and(|object| dropped.iter().any(|d| object.contains(d)))
            });
        assert!(only_dropped, "{case} fails\n{stdout}");
        excused.push(case.to_string());
    }
    assert_eq!(passed + excused.len(), total, "{stdout}");
    if !excused.is_empty() {
        eprintln!(
            "note: {} fail only for want of {:?}, not in the corpus",
            excused.join(", "),
            assembled.dropped
        );
    }
}

fn case_chart(corpus: &Path, case: &str) -> String {
    let path = corpus.join("cases").join(case).join("case.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).expect("case.json");
    json["chart"].as_str().expect("case.json chart").to_string()
}
