//! `mooring import flux` on a bootstrap-style Flux repository
//! (tests/fixtures/flux-fleet): what it writes, what it notes, and that the
//! output validates; then the migration end to end — import, validate,
//! `once` against the test API server — compared with what Flux applies.

use std::path::Path;

use crate::gitserver::Repo;
use crate::support::{Run, TestEnv, repo_root};

/// The fixture fleet committed to a git work tree in `env`.
fn fleet(env: &TestEnv) -> Repo {
    let repo = Repo::new(&env.path().join("git"));
    copy(&repo_root().join("tests/fixtures/flux-fleet"), &repo.work);
    repo.commit("fleet");
    repo.publish();
    repo
}

fn copy(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("read fixture dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

fn import(repo: &Repo, args: &[&str]) -> Run {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
        .current_dir(&repo.work)
        .env("NO_COLOR", "1")
        .args(["import", "flux"])
        .args(args)
        .output()
        .expect("run mooring import flux");
    Run::from(out)
}

/// The node block that starts with `head` in `config`, up to its `}`.
fn block<'c>(config: &'c str, head: &str) -> &'c str {
    let start = config
        .find(head)
        .unwrap_or_else(|| panic!("no `{head}` in\n{config}"));
    let end = config[start..]
        .find("\n}\n")
        .map_or(config.len(), |e| start + e + 3);
    &config[start..end]
}

#[test]
fn a_bootstrap_repository_imports_into_a_valid_config() {
    let env = TestEnv::new();
    let repo = fleet(&env);
    let run = import(&repo, &["clusters/prod", "-o", "mooring.kdl"]);
    run.expect_code(0);
    let config = std::fs::read_to_string(repo.work.join("mooring.kdl")).expect("read the config");

    // The bootstrap Kustomization's path holds only Flux objects: no app.
    assert!(!config.contains("app \"flux-system\""), "{config}");
    assert!(
        config
            .contains("Kustomization flux-system/flux-system holds only Flux objects, imported here: no app"),
        "{config}"
    );
    // Flux's own installation is left out, and said so.
    assert!(!config.contains("kustomize-controller"), "{config}");
    assert!(
        run.stderr
            .contains("note: clusters/prod: 3 objects of Flux's own installation left out"),
        "{}",
        run.stderr
    );

    let source = block(&config, "source \"flux-system\"");
    assert!(
        source.contains("git \"ssh://git@github.com/acme/fleet\""),
        "{source}"
    );
    assert!(
        source.contains("branch \"main\"\n    interval \"1m\""),
        "{source}"
    );
    assert!(
        source.contains("ssh-key \"/etc/mooring/secrets/flux-system/flux-system/identity\" // placeholder"),
        "{source}"
    );

    let infra = block(&config, "app \"infrastructure\"");
    for line in [
        "path \"infrastructure/base\"",
        "interval \"1h\"",
        "timeout \"5m\"",
        "prune #true",
        "wait timeout=\"5m\"",
        "// Flux `retryInterval` not imported",
    ] {
        assert!(infra.contains(line), "no `{line}` in\n{infra}");
    }

    let apps = block(&config, "app \"apps\"");
    for line in [
        "// from clusters/prod/apps.yaml:1: Kustomization flux-system/apps\napp \"apps\"",
        "path \"apps/prod\"",
        "namespace \"podinfo\"",
        "depends-on \"infrastructure\"",
        "substitute {\n        cluster_name \"prod\"\n    }",
    ] {
        let (found, shown) = if line.starts_with("// from") {
            (config.contains(line), config.as_str())
        } else {
            (apps.contains(line), apps)
        };
        assert!(found, "no `{line}` in\n{shown}");
    }

    let image = block(&config, "image \"podinfo\"");
    assert!(
        image.contains("repository \"ghcr.io/stefanprodan/podinfo\""),
        "{image}"
    );
    assert!(image.contains("semver \">=6.0.0, <7.0.0\""), "{image}");
    assert!(image.contains("exclude #\"^.*\\.sig$\"#"), "{image}");

    let automation = block(&config, "automation \"fleet\"");
    assert!(
        automation.contains(
            "message \"Automated image update\\n\\nAutomation name: flux-system/fleet\\n\\nFiles:\\n{% for file0 in changes|map(attribute=\\\"file\\\")|unique -%}\\n- {{ file0 }}\\n{% endfor -%}\\n\""
        ),
        "{automation}"
    );

    // Helm objects: no equivalent yet, listed with file and line.
    assert!(
        run.stderr.contains(
            "note: clusters/prod/monitoring.yaml:10: HelmRelease monitoring/kube-prometheus-stack: not imported"
        ),
        "{}",
        run.stderr
    );
    assert!(
        config.contains("// from clusters/prod/monitoring.yaml:10: HelmRelease monitoring/kube-prometheus-stack not imported"),
        "{config}"
    );

    // What validate says of it: valid.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mooring"))
        .current_dir(&repo.work)
        .env("NO_COLOR", "1")
        .args(["validate", "-c", "mooring.kdl"])
        .output()
        .expect("run mooring validate");
    Run::from(out).expect_code(0);
}

#[test]
fn stdout_without_output_and_names_disambiguated_across_namespaces() {
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    let git = |ns: &str| {
        format!(
            "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: podinfo\n  namespace: {ns}\nspec:\n  interval: 5m\n  url: https://github.com/stefanprodan/podinfo\n  ref:\n    semver: \">=6.0.0\"\n  ignore: |\n    # everything but the manifests\n    /*\n    !/kustomize\n"
        )
    };
    repo.write(&[
        ("flux/a.yaml", &git("team-a")),
        ("flux/b.yaml", &git("team-b")),
        (
            "flux/bad.yaml",
            "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: web\n  namespace: team-a\nspec:\n  interval: 5m\n  path: ./kustomize\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: elsewhere\n",
        ),
        (
            "flux/hook.yaml",
            "apiVersion: notification.toolkit.fluxcd.io/v1\nkind: Receiver\nmetadata:\n  name: github\n  namespace: team-a\nspec:\n  type: github\n  secretRef:\n    name: hook-token\n  resources:\n  - kind: GitRepository\n    name: podinfo\n",
        ),
    ]);
    repo.commit("flux");
    let run = import(&repo, &["flux"]);
    run.expect_code(0);
    let config = &run.stdout;
    let a = block(config, "source \"team-a-podinfo\"");
    assert!(a.contains("semver \">=6.0.0\""), "{a}");
    assert!(a.contains("ignore \"/*\" \"!/kustomize\""), "{a}");
    assert!(config.contains("source \"team-b-podinfo\""), "{config}");
    // A Kustomization whose source was not imported: a comment and a note,
    // never a config that does not validate.
    assert!(!config.contains("app \"web\""), "{config}");
    assert!(
        run.stderr.contains(
            "note: flux/bad.yaml:1: Kustomization team-a/web: not imported: its source GitRepository team-a/elsewhere is not among the imported objects"
        ),
        "{}",
        run.stderr
    );
    // Notification objects: a note that says what to write instead.
    assert!(
        run.stderr.contains(
            "note: flux/hook.yaml:1: Receiver team-a/github: not imported: notification objects are not translated yet: write a receiver or notify node by hand"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn unreadable_paths_are_errors_with_the_file_and_line() {
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    repo.write(&[(
        "flux/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
    )]);
    repo.commit("bad");
    let run = import(&repo, &["flux"]);
    run.expect_code(1);
    assert!(run.stderr.contains("flux/bad.yaml:4"), "{}", run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    let run = import(&repo, &["/"]);
    run.expect_code(2);
    assert!(run.stderr.contains("is outside"), "{}", run.stderr);
}
