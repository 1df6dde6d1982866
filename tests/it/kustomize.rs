//! `mooring kustomize DIR` against kustomize itself: the conformance corpus
//! in `../shared/conformance/kustomize/` (cases from kustomize's own test
//! suite), and our own cases under `tests/fixtures/kustomize/NAME/`: `in/`
//! is the tree (the build runs in `in/`, or in the directory `entry`
//! names), and either `want.yaml` holds what `kubectl kustomize` prints —
//! compared byte for byte, and checked against kubectl itself when it is on
//! the PATH — or `error` says the build must fail (kubectl fails there too)
//! and the diagnostic is snapshotted (`tests/it/snapshots/`).

use std::path::PathBuf;
use std::process::Command;

use crate::support::{TestEnv, repo_root};

#[test]
fn conformance_corpus() {
    let Some(dir) = crate::support::conformance("kustomize conformance", "kustomize") else {
        return;
    };
    let bin = crate::support::mooring_bin().display().to_string();
    let out = Command::new(dir.join("run.sh"))
        .arg(format!("{bin} kustomize"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run the conformance runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let total = last
        .strip_prefix("PASS ")
        .and_then(|s| s.split_once('/'))
        .map(|(a, b)| (a.to_string(), b.to_string()));
    assert!(
        out.status.success() && total.as_ref().is_some_and(|(a, b)| a == b),
        "kustomize conformance: {last}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Fixture {
    name: String,
    /// The directory the build runs in.
    dir: PathBuf,
    want: Option<String>,
}

fn fixtures() -> Vec<Fixture> {
    let root = repo_root().join("tests/fixtures/kustomize");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&root).expect("read tests/fixtures/kustomize") {
        let path = entry.expect("dir entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 name")
            .to_string();
        let entry = std::fs::read_to_string(path.join("entry")).unwrap_or_default();
        let dir = path.join("in").join(entry.trim());
        let want = std::fs::read_to_string(path.join("want.yaml")).ok();
        assert!(
            want.is_some() || path.join("error").is_file(),
            "{name}: needs want.yaml or error"
        );
        out.push(Fixture { name, dir, want });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(out.len() >= 10, "only {} kustomize fixtures", out.len());
    out
}

fn kubectl() -> bool {
    Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The fixture's diagnostic, with the machine's paths taken out.
fn stderr_of(f: &Fixture, stderr: &str) -> String {
    let base = f.dir.to_string_lossy().into_owned();
    stderr
        .replace(&base, "IN")
        .replace(&repo_root().to_string_lossy().into_owned(), "REPO")
}

#[test]
fn fixtures_match_kubectl() {
    let with_kubectl = kubectl();
    if !with_kubectl {
        eprintln!("note: kubectl is not on the PATH; fixtures compared with their recorded output only");
    }
    let mut problems = Vec::new();
    for f in fixtures() {
        let out = Command::new(crate::support::mooring_bin())
            .args(["kustomize", "."])
            .current_dir(&f.dir)
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .output()
            .expect("run mooring");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        match &f.want {
            Some(want) => {
                if !out.status.success() || stdout != *want {
                    problems.push(format!(
                        "{}: exit {:?}\n{stderr}\n{}",
                        f.name,
                        out.status.code(),
                        diff(want, &stdout)
                    ));
                }
            }
            None => {
                if out.status.code() != Some(1) {
                    problems.push(format!(
                        "{}: exit {:?}, want 1\n{stdout}{stderr}",
                        f.name,
                        out.status.code()
                    ));
                }
                insta::assert_snapshot!(format!("kustomize__{}", f.name), stderr_of(&f, &stderr));
            }
        }
        if with_kubectl {
            let k = Command::new("kubectl")
                .args(["kustomize", "."])
                .current_dir(&f.dir)
                .output()
                .expect("run kubectl");
            match &f.want {
                Some(want) if String::from_utf8_lossy(&k.stdout) != *want || !k.status.success() => {
                    problems.push(format!("{}: want.yaml is not what kubectl prints", f.name));
                }
                None if k.status.success() => {
                    problems.push(format!("{}: kubectl builds it, mooring must too", f.name))
                }
                _ => {}
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

fn diff(want: &str, got: &str) -> String {
    similar::TextDiff::from_lines(want, got)
        .unified_diff()
        .header("kubectl", "mooring")
        .to_string()
}

#[test]
fn cli_prints_the_build_and_fails_with_diagnostics() {
    let env = TestEnv::new();
    env.write(
        "app/kustomization.yaml",
        "resources:\n- cm.yaml\nnamePrefix: p-\ncommonLabels:\n  app: web\n",
    );
    env.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    let run = env.run(&["kustomize", "app"]);
    run.expect_code(0);
    assert_eq!(
        run.stdout,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    app: web\n  name: p-a\n"
    );
    // A directory without a kustomization, and a missing one.
    env.write(
        "plain/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    let run = env.run(&["kustomize", "plain"]);
    run.expect_code(1);
    run.stderr_has("unable to find one of 'kustomization.yaml'");
    let run = env.run(&["kustomize", "nope"]);
    run.expect_code(1);
    // Warnings for fields kustomize ignores go to stderr; the build goes on.
    env.write(
        "gen/kustomization.yaml",
        "generators:\n- apiVersion: builtin\n  kind: ConfigMapGenerator\n  metadata: {name: g}\n  labels: {x: y}\n  literals: [a=b]\n",
    );
    let run = env.run(&["kustomize", "gen"]);
    run.expect_code(0);
    assert!(run.stderr.starts_with("warning: "), "{}", run.stderr);
    run.stderr_has("field `labels`");
}

/// A build with an absolute path and one through `..` give the same objects.
#[test]
fn paths_as_kubectl_takes_them() {
    let env = TestEnv::new();
    env.write("base/kustomization.yaml", "resources: [cm.yaml]\n");
    env.write(
        "base/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    );
    env.write(
        "overlay/kustomization.yaml",
        "resources: [../base]\nnameSuffix: -o\n",
    );
    let abs = env.path().join("overlay");
    let a = env.run(&["kustomize", abs.to_str().expect("UTF-8 path")]);
    let b = env.run(&["kustomize", "base/../overlay"]);
    a.expect_code(0);
    assert_eq!(a.stdout, b.stdout);
    assert!(a.stdout.contains("name: a-o"));
}

/// The seed's flow: an overlay's `images:` entry carries the marker; a new
/// tag in the registry becomes a one-line commit in that kustomization.yaml,
/// pushed, and the overlay is built and applied with the new image.
#[test]
fn a_new_tag_is_committed_into_the_overlay_and_applied() {
    let overlay = |image: &str| {
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: prod\nresources:\n- ../base\nimages:\n- name: {image}\n  newTag: 1.0.0 # {{\"$imagepolicy\": \"flux-system:web:tag\"}}\n"
        )
    };
    let f = crate::automation::Fixture::with(|image| {
        vec![
            (
                "apps/web/base/kustomization.yaml",
                "resources:\n- deployment.yaml\n".to_string(),
            ),
            (
                "apps/web/base/deployment.yaml",
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: {image}:0.1.0\n"
                ),
            ),
            ("apps/web/prod/kustomization.yaml", overlay(image)),
        ]
    });
    let image = f.registry.repo("web");
    let port = crate::support::free_port();
    f.config_with(port, "apps/web/prod", "");
    let want = format!("image: {image}:1.1.0\n");
    let applied = f.run_until_applied(port, "prod_deployment.apps_web.yaml", &want);
    assert!(applied.contains("  namespace: prod\n"), "{applied}");

    // One line of the overlay changed: the tag; its comment stays.
    assert_eq!(
        f.repo.served(&["diff", "--numstat", "main~1", "main"]),
        "1\t1\tapps/web/prod/kustomization.yaml"
    );
    assert_eq!(
        f.repo.served_file("main", "apps/web/prod/kustomization.yaml"),
        overlay(&image).replace("newTag: 1.0.0", "newTag: 1.1.0")
    );
}
