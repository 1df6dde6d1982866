//! Flux's own image tests: `../shared/conformance/flux-image/run.sh` (the
//! policy cases of image-reflector-controller and the setter cases of
//! image-automation-controller, against a real registry it starts) with the
//! debug binary. Every case must pass except the differences that
//! docs/images.md and docs/automation.md document; one more failure, or
//! one of those starting to pass unnoticed, fails the test.
//!
//! Without the corpus (a user's clone) the test is skipped with a notice;
//! under `CI` that is a failure.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{conformance, skip};

/// The cases that may not pass, and why (see the docs' "Differences from Flux").
const DOCUMENTED: &[(&str, &str)] = &[
    (
        "p037",
        "numerical and a tag that is not a number: Flux fails the policy, mooring skips the tag",
    ),
    (
        "s03-update-setters-2021-reindent",
        "Flux of 2021 re-indented the files it changed; mooring changes only the values",
    ),
];

#[test]
fn flux_image_corpus_passes_but_for_documented_differences() {
    let Some(dir) = conformance("flux-image conformance", "flux-image") else {
        return;
    };
    let have = |tool: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("docker-registry") || !have("python3") {
        skip(
            "flux-image conformance",
            "docker-registry or python3 is not installed",
        );
        return;
    }
    let out = Command::new("bash")
        .arg(dir.join("run.sh"))
        .arg(crate::support::mooring_bin())
        .output()
        .expect("run run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stdout.lines().rev().find_map(|l| l.strip_prefix("PASS "));
    let Some((passed, total)) = last.and_then(|l| l.split_once('/')) else {
        panic!(
            "no PASS line; run.sh exited with {}:\n{stdout}\n{stderr}",
            out.status
        );
    };
    let (passed, total): (usize, usize) = (passed.parse().unwrap_or(0), total.trim().parse().unwrap_or(0));
    let failed: BTreeSet<&str> = stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("FAIL ")
                .or_else(|| l.strip_prefix("FORMATTING-ONLY "))
        })
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let documented: BTreeSet<&str> = DOCUMENTED.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        failed, documented,
        "the cases that do not pass should be exactly the documented differences {DOCUMENTED:#?}\n{stdout}\n{stderr}"
    );
    assert!(total > 90, "the corpus shrank to {total} cases:\n{stdout}");
    assert_eq!(passed + documented.len(), total, "{stdout}");
    eprintln!("flux-image conformance: PASS {passed}/{total} (documented differences: p037, s03)");
}
