//! `mooring sops decrypt` against files encrypted by the real sops: the
//! shared conformance corpus (`../shared/conformance/sops`, run through its
//! own `check.py`), keys from the environment, and diagnostics that name
//! the file and the cause without printing any plaintext.
//!
//! The corpus is read where it lies; without it (a user's clone) these
//! tests are skipped with a notice, and fail when `CI` is set.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::TestEnv;

fn corpus() -> Option<PathBuf> {
    crate::support::conformance("sops conformance", "sops")
}

fn check_py(dir: &Path, extra: &[&str], cmd: &str) -> (bool, String) {
    let out = Command::new("python3")
        .arg(dir.join("check.py"))
        .args(extra)
        .arg(cmd)
        .output()
        .expect("run python3 check.py (needs python3 and PyYAML)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `PASS N/M` → (N, M).
fn tally(output: &str) -> (usize, usize) {
    let last = output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("PASS ").filter(|r| r.contains('/')))
        .unwrap_or_else(|| panic!("no PASS line in:\n{output}"));
    let (n, m) = last.split_once('/').unwrap_or_default();
    (
        n.trim().parse().unwrap_or(0),
        m.trim().parse().unwrap_or(usize::MAX),
    )
}

#[test]
fn conformance_corpus_passes() {
    let Some(dir) = corpus() else { return };
    let bin = crate::support::mooring_bin().display().to_string();
    let (ok, output) = check_py(&dir, &["-v"], &format!("{bin} sops decrypt"));
    let (passed, total) = tally(&output);
    assert!(ok && passed == total && total > 0, "{output}");
    eprintln!("sops conformance: PASS {passed}/{total}");

    // Flux's default (no MAC check) is `--ignore-mac`.
    let (ok, output) = check_py(
        &dir,
        &["--flux-default"],
        &format!("{bin} sops decrypt --ignore-mac"),
    );
    let (passed, total) = tally(&output);
    assert!(ok && passed == total, "{output}");
}

fn case_key(dir: &Path, case: &str) -> PathBuf {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("cases").join(case).join("case.json")).unwrap())
            .unwrap();
    dir.join(meta["key"].as_str().unwrap())
}

fn encrypted(dir: &Path, case: &str) -> PathBuf {
    let case_dir = dir.join("cases").join(case);
    std::fs::read_dir(&case_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("encrypted."))
        })
        .unwrap()
}

/// A command with no age key in its environment and a home without sops's key file.
fn bare(env: &TestEnv) -> Command {
    let mut cmd = env.cmd();
    cmd.env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .env_remove("XDG_CONFIG_HOME")
        .env("HOME", env.path());
    cmd
}

#[test]
fn key_file_from_the_environment() {
    let Some(dir) = corpus() else { return };
    let env = TestEnv::new();
    let file = encrypted(&dir, "kc-envs-dotenv");
    let out = bare(&env)
        .env("SOPS_AGE_KEY_FILE", case_key(&dir, "kc-envs-dotenv"))
        .args(["sops", "decrypt"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "key=value\n");

    // The identities themselves in $SOPS_AGE_KEY.
    let key = std::fs::read_to_string(case_key(&dir, "kc-envs-dotenv")).unwrap();
    let out = bare(&env)
        .env("SOPS_AGE_KEY", key)
        .args(["sops", "decrypt"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "key=value\n");
}

#[test]
fn failures_name_file_and_cause_but_no_plaintext() {
    let Some(dir) = corpus() else { return };
    let env = TestEnv::new();
    let run = |case: &str, key: &Path| {
        let out = bare(&env)
            .args(["sops", "decrypt", "--key"])
            .arg(key)
            .arg(encrypted(&dir, case))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    // Values decrypt (to "my-sops-age-secret"), the MAC does not match.
    let (code, stdout, stderr) = run(
        "neg-pkg-panic-mac-mismatch",
        &case_key(&dir, "neg-pkg-panic-mac-mismatch"),
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("neg-pkg-panic-mac-mismatch/encrypted.yaml: MAC mismatch"),
        "{stderr}"
    );
    assert!(stderr.contains("help:"), "{stderr}");
    assert!(!stderr.contains("my-sops-age-secret"), "{stderr}");

    // A wrong key: the file's recipients and ours, abbreviated.
    let (code, _, stderr) = run("neg-wrong-key-rops", &case_key(&dir, "neg-wrong-key-rops"));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("encrypted for age1se5ghfyc…"), "{stderr}");
    assert!(stderr.contains("the key file holds age1l44xcng8…"), "{stderr}");

    // One tampered value: its path.
    let (_, _, stderr) = run(
        "neg-tampered-value-ciphertext",
        &case_key(&dir, "neg-tampered-value-ciphertext"),
    );
    assert!(stderr.contains("cannot decrypt `stringData.key`"), "{stderr}");

    // PGP only: refused, saying what the file has.
    let pgp = dir.join("unsupported/kustomize-controller-pgp-yaml/encrypted.yaml");
    let out = bare(&env)
        .args(["sops", "decrypt", "--key"])
        .arg(case_key(&dir, "kc-algorithms-age"))
        .arg(&pgp)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("only for PGP") && stderr.contains("only age is supported"),
        "{stderr}"
    );
}

#[test]
fn key_problems_are_reported() {
    let env = TestEnv::new();
    env.write("secret.yaml", "a: b\n");
    let out = bare(&env)
        .args(["sops", "decrypt", "secret.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("help: pass --key KEYFILE"));

    env.write("bad.agekey", "# a comment\nAGE-SECRET-KEY-1NOTAKEY\n");
    let run = env.run(&["sops", "decrypt", "--key", "bad.agekey", "secret.yaml"]);
    run.expect_code(1);
    assert!(
        run.stderr.starts_with("error: bad.agekey: line 2: the key "),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("NOTAKEY"), "{}", run.stderr);

    env.write(
        "good.agekey",
        "AGE-SECRET-KEY-1RH87A5Z54ZGUR9S0AS3R6WHFSEFNPLYMAKF5Z2CEU7R06VRJ0A3Q7242AM\n",
    );
    let run = env.run(&["sops", "decrypt", "--key", "good.agekey", "secret.yaml"]);
    run.expect_code(1);
    run.stderr_has("secret.yaml: not a sops-encrypted YAML file");
}
