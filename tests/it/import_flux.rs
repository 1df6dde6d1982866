//! `mooring import flux` on a bootstrap-style Flux repository
//! (tests/fixtures/flux-fleet): what it writes, what it notes, and that the
//! output validates; then the migration end to end — import, validate,
//! `once` against the test API server — compared with what Flux applies.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::apiserver::ApiServer;
use crate::gitserver::Repo;
use crate::support::{Run, TestEnv, checked, mooring_bin, repo_root};

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

/// `mooring ARGS…` in the repository's work tree.
fn mooring(repo: &Repo, args: &[&str]) -> Run {
    let out = Command::new(mooring_bin())
        .current_dir(&repo.work)
        .env("NO_COLOR", "1")
        .args(args)
        .output()
        .expect("run mooring");
    Run::from(out)
}

fn import(repo: &Repo, args: &[&str]) -> Run {
    mooring(repo, &[&["import", "flux"], args].concat())
}

/// [`block`], which must hold every one of `lines`.
#[track_caller]
fn block_has<'c>(config: &'c str, head: &str, lines: &[&str]) -> &'c str {
    let block = block(config, head);
    for line in lines {
        assert!(block.contains(line), "no `{line}` in\n{block}");
    }
    block
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
    run.stderr_has("note: clusters/prod: 3 objects of Flux's own installation left out");

    block_has(
        &config,
        "source \"flux-system\"",
        &[
            "git \"ssh://git@github.com/acme/fleet\"",
            "branch \"main\"\n    interval \"1m\"",
            "ssh-key \"/etc/mooring/secrets/flux-system/flux-system/identity\" // placeholder",
        ],
    );

    block_has(
        &config,
        "app \"infrastructure\"",
        &[
            "path \"infrastructure/base\"",
            "interval \"1h\"",
            "timeout \"5m\"",
            "prune #true",
            "wait timeout=\"5m\"",
            "// Flux `retryInterval` not imported",
        ],
    );

    assert!(
        config.contains("// from clusters/prod/apps.yaml:1: Kustomization flux-system/apps\napp \"apps\""),
        "{config}"
    );
    block_has(
        &config,
        "app \"apps\"",
        &[
            "path \"apps/prod\"",
            "namespace \"podinfo\"",
            "depends-on \"infrastructure\"",
            "name-prefix \"prod-\"",
            "\"app.kubernetes.io/part-of\" \"shop\"",
            "components \"../../components/ha\"",
            "set-image \"ghcr.io/stefanprodan/podinfo\" new-tag=\"6.5.1\"",
            "patch kind=\"Deployment\" name=\"podinfo\" #\"\"\"\n        - op: replace\n",
            "substitute {\n        cluster_name \"prod\"\n    }",
            "substitute-from configmap=\"flux-system/cluster-vars\"\n",
            "substitute-from secret=\"flux-system/cluster-secrets\" optional=#true",
            "sops age-key-file=\"/etc/mooring/secrets/flux-system/sops-age/age.agekey\"",
        ],
    );

    block_has(
        &config,
        "image \"podinfo\"",
        &[
            "repository \"ghcr.io/stefanprodan/podinfo\"",
            "semver \">=6.0.0, <7.0.0\"",
            "exclude #\"^.*\\.sig$\"#",
        ],
    );

    block_has(
        &config,
        "automation \"fleet\"",
        &[
            "message \"Automated image update\\n\\nAutomation name: flux-system/fleet\\n\\nFiles:\\n{% for file0 in changes|map(attribute=\\\"file\\\")|unique -%}\\n- {{ file0 }}\\n{% endfor -%}\\n\"",
        ],
    );

    // Helm: the repository is a source, the release an app of its chart.
    block_has(
        &config,
        "source \"prometheus-community\"",
        &["helm \"https://prometheus-community.github.io/helm-charts\""],
    );
    block_has(
        &config,
        "app \"kube-prometheus-stack\"",
        &[
            "source \"prometheus-community\"",
            "chart \"kube-prometheus-stack\" version=\">=66.0.0 <67.0.0\"",
            "release \"monitoring-kube-prometheus-stack\"",
            "namespace \"monitoring\"",
            "crds \"skip\"",
            "values #\"\"\"\n",
            "alertmanagerSpec:\n",
        ],
    );

    // What validate says of it: valid.
    mooring(&repo, &["validate", "-c", "mooring.kdl"]).expect_code(0);
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
    block_has(
        config,
        "source \"team-a-podinfo\"",
        &["semver \">=6.0.0\"", "ignore \"/*\" \"!/kustomize\""],
    );
    assert!(config.contains("source \"team-b-podinfo\""), "{config}");
    // A Kustomization whose source was not imported: a comment and a note,
    // never a config that does not validate.
    assert!(!config.contains("app \"web\""), "{config}");
    run.stderr_has("note: flux/bad.yaml:1: Kustomization team-a/web: not imported: its source GitRepository team-a/elsewhere is not among the imported objects");
    // A Receiver: its resources are what it makes run; its hook moves.
    block_has(
        config,
        "receiver \"github\"",
        &[
            "type \"github\"",
            "secret-file \"/etc/mooring/secrets/team-a/hook-token/token\" // placeholder: the key `token` of Secret team-a/hook-token",
            "reconcile \"source/team-a-podinfo\"",
        ],
    );
    run.stderr_has(
        "note: flux/hook.yaml:1: Receiver team-a/github: the hook's address is now POST /hooks/github",
    );
}

#[test]
fn alerts_with_their_providers_become_notify_nodes_and_validate() {
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    let object = |api: &str, kind: &str, name: &str, spec: &str| {
        format!(
            "apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: flux-system\nspec:\n{spec}"
        )
    };
    let n = "notification.toolkit.fluxcd.io/v1beta3";
    let files = [
        (
            "flux/git.yaml",
            object(
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                "fleet",
                "  interval: 1m\n  url: https://github.com/acme/fleet\n  ref: {branch: main}\n",
            ),
        ),
        (
            "flux/app.yaml",
            object(
                "kustomize.toolkit.fluxcd.io/v1",
                "Kustomization",
                "web",
                "  interval: 5m\n  path: ./web\n  prune: true\n  sourceRef: {kind: GitRepository, name: fleet}\n",
            ),
        ),
        (
            "flux/slack.yaml",
            object(
                n,
                "Provider",
                "slack",
                "  type: slack\n  channel: ops\n  secretRef: {name: slack-url}\n",
            ),
        ),
        (
            "flux/github.yaml",
            object(
                n,
                "Provider",
                "github",
                "  type: github\n  address: https://github.com/acme/fleet\n  secretRef: {name: github-token}\n",
            ),
        ),
        (
            "flux/teams.yaml",
            object(
                n,
                "Provider",
                "teams",
                "  type: msteams\n  secretRef: {name: teams-url}\n",
            ),
        ),
        (
            "flux/unused.yaml",
            object(n, "Provider", "unused", "  type: slack\n"),
        ),
        (
            "flux/on-call.yaml",
            object(
                n,
                "Alert",
                "on-call",
                "  providerRef: {name: slack}\n  eventSeverity: error\n  eventSources:\n  - {kind: Kustomization, name: '*'}\n  - {kind: GitRepository, name: fleet}\n  - {kind: Bucket, name: old}\n",
            ),
        ),
        (
            "flux/statuses.yaml",
            object(
                n,
                "Alert",
                "statuses",
                "  providerRef: {name: github}\n  eventSources:\n  - {kind: Kustomization, name: web}\n",
            ),
        ),
        (
            "flux/teams-alert.yaml",
            object(
                n,
                "Alert",
                "teams",
                "  providerRef: {name: teams}\n  eventSources:\n  - {kind: Kustomization, name: '*'}\n",
            ),
        ),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    repo.write(&files);
    repo.commit("flux");
    let run = import(&repo, &["flux", "-o", "mooring.kdl"]);
    run.expect_code(0);
    let config = std::fs::read_to_string(repo.work.join("mooring.kdl")).expect("read the config");
    block_has(
        &config,
        "notify \"on-call\"",
        &[
            "url-file \"/etc/mooring/secrets/flux-system/slack-url/address\" // placeholder: the key `address` of Secret flux-system/slack-url",
            "format \"slack\"",
            "on \"failure\"",
            "objects \"app/*\" \"source/fleet\"",
            "// Flux `channel` not imported",
        ],
    );
    block_has(
        &config,
        "notify \"statuses\"",
        &[
            "url-file \"/etc/mooring/secrets/flux-system/provider-github/address\" // placeholder: write https://github.com/acme/fleet to it",
            "format \"github-status\"",
            "token-file \"/etc/mooring/secrets/flux-system/github-token/token\"",
            "objects \"app/web\"",
        ],
    );
    assert!(!config.contains("notify \"teams\""), "{config}");
    run.stderr_has("note: flux/on-call.yaml:1: Alert flux-system/on-call: event source not imported: Bucket has no mooring form");
    run.stderr_has("note: flux/teams-alert.yaml:1: Alert flux-system/teams: not imported: provider type `msteams` has no mooring format");
    run.stderr_has("note: flux/unused.yaml:1: Provider flux-system/unused: not imported: no Alert uses it");
    mooring(&repo, &["validate", "-c", "mooring.kdl"]).expect_code(0);
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
    run.stderr_has("flux/bad.yaml:4");
    assert!(run.stdout.is_empty(), "{}", run.stdout);

    let run = import(&repo, &["/"]);
    run.expect_code(2);
    run.stderr_has("is outside");
}

/// Issue 11's migration, end to end: the bootstrap fleet (two
/// Kustomizations, one depending on the other, with targetNamespace,
/// namePrefix, components, images, patches, commonMetadata, postBuild from
/// inline values and a cluster ConfigMap, a SOPS Secret, image automation
/// objects) → `mooring import flux` → `validate` → `once` against the test
/// API server. What it applies is compared with what Flux applies: kubectl's
/// kustomize of the kustomization Flux's generator writes for the path,
/// then Flux's substitution, common metadata and decryption.
#[test]
fn the_imported_fleet_applies_what_flux_applies() {
    let Some(corpus) = crate::support::conformance("the_imported_fleet_applies_what_flux_applies", "sops")
    else {
        return;
    };
    if Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_err()
    {
        crate::support::skip(
            "the_imported_fleet_applies_what_flux_applies",
            "kubectl is not on the PATH",
        );
        return;
    }
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    copy(&repo_root().join("tests/fixtures/flux-fleet"), &repo.work);
    // The fleet's own repository is the local one, public; the Secret is one
    // the real sops encrypted, with a key of the corpus.
    let sync = repo.work.join("clusters/prod/flux-system/gotk-sync.yaml");
    let text = std::fs::read_to_string(&sync).expect("read gotk-sync.yaml");
    let text = text
        .replace("ssh://git@github.com/acme/fleet", &repo.file_url())
        .replace("  secretRef:\n    name: flux-system\n", "");
    std::fs::write(&sync, text).expect("write gotk-sync.yaml");
    let secret =
        std::fs::read_to_string(corpus.join("cases/kc-global-secret/encrypted.yaml")).expect("corpus secret");
    repo.write(&[
        ("apps/base/secret.yaml", &secret),
        (
            "apps/base/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - deployment.yaml\n  - config.yaml\n  - secret.yaml\n",
        ),
    ]);
    repo.commit("fleet");
    repo.publish();

    let run = import(&repo, &["clusters/prod", "-o", "imported.kdl"]);
    run.expect_code(0);
    let key = env.write(
        "age.agekey",
        &std::fs::read_to_string(corpus.join("keys/kc-age-global.agekey")).expect("corpus key"),
    );
    // What a user does after the import: the state directory, and the age
    // key where the placeholder says.
    let imported = std::fs::read_to_string(repo.work.join("imported.kdl")).expect("read the config");
    let config = format!(
        "agent {{\n    state-dir \"state\"\n}}\n{}",
        imported.replace(
            "/etc/mooring/secrets/flux-system/sops-age/age.agekey",
            &key.display().to_string()
        )
    );
    env.write("mooring.kdl", &config);
    env.run(&["validate", "-c", "mooring.kdl"]).expect_code(0);

    let server = ApiServer::start();
    server.kubeconfig(&env.path().join("kubeconfig"));
    for obj in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
               "data": {"region": "us-east-2"}}),
    ] {
        server.apply("setup", true, &obj).expect("seed the cluster");
    }
    let out = env
        .cmd()
        .env("KUBECONFIG", env.path().join("kubeconfig"))
        .args(["once", "-v", "app/apps", "-c", "mooring.kdl", "--format", "json"])
        .output()
        .expect("run mooring once");
    let once = Run::from(out);
    once.expect_code(0);
    // `apps` depends on `infrastructure`: both ran, and the namespace that
    // `infrastructure` makes was there for `apps`.
    let outcomes: Value = serde_json::from_str(&once.stdout).expect("once JSON");
    let mut ran: Vec<&str> = outcomes
        .as_array()
        .expect("outcomes")
        .iter()
        .filter(|o| o["kind"] == "app" && o["result"] == "ok")
        .filter_map(|o| o["name"].as_str())
        .collect();
    ran.sort_unstable();
    assert_eq!(ran, ["apps", "infrastructure"], "{}", once.stdout);
    assert!(server.object("v1", "Namespace", None, "podinfo").is_some());

    // Flux's generator: the path's kustomization with the Kustomization's
    // fields added, built by kubectl.
    let flux = env.path().join("flux");
    copy(&repo.work.join("apps"), &flux.join("apps"));
    copy(&repo.work.join("components"), &flux.join("components"));
    std::fs::write(
        flux.join("apps/prod/kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base\nnamespace: podinfo\nnamePrefix: prod-\ncomponents:\n  - ../../components/ha\nimages:\n  - name: ghcr.io/stefanprodan/podinfo\n    newTag: 6.5.1\npatches:\n  - patch: |\n      - op: replace\n        path: /spec/replicas\n        value: 3\n    target:\n      kind: Deployment\n      name: podinfo\n",
    )
    .expect("write the generated kustomization");
    let built = checked(
        Command::new("kubectl")
            .args(["kustomize", "apps/prod"])
            .current_dir(&flux),
    );
    // Flux's post-build: substitution (inline values over the cluster's),
    // then common metadata.
    let text = built
        .replace("${cluster_name}", "prod")
        .replace("${region:=eu-west-1}", "us-east-2");
    let mut compared = 0;
    for doc in text.split("\n---\n") {
        let mut want: Value = serde_saphyr::from_str(doc).expect("kubectl's YAML");
        want["metadata"]["labels"]["app.kubernetes.io/part-of"] = json!("shop");
        let (api, kind) = (
            want["apiVersion"].as_str().unwrap_or_default(),
            want["kind"].as_str().unwrap_or_default(),
        );
        let name = want["metadata"]["name"].as_str().unwrap_or_default();
        let got = server
            .object(api, kind, Some("podinfo"), name)
            .unwrap_or_else(|| panic!("{kind} podinfo/{name} was not applied"));
        for (k, v) in want["metadata"]["labels"].as_object().expect("labels") {
            assert_eq!(
                &got["metadata"]["labels"][k], v,
                "{kind} {name}: label {k}\n{got}"
            );
        }
        match kind {
            "Secret" => {
                // Flux decrypts what kubectl left encrypted.
                assert_eq!(got["data"]["key"], json!("Z2xvYmFsLXZhbHVl"), "{got}");
                assert!(got.get("sops").is_none(), "{got}");
            }
            "Deployment" => assert_eq!(got["spec"], want["spec"], "{name}"),
            _ => assert_eq!(got["data"], want["data"], "{name}"),
        }
        compared += 1;
    }
    assert_eq!(compared, 3, "{text}");
    let cm = server
        .object("v1", "ConfigMap", Some("podinfo"), "prod-podinfo")
        .expect("configmap");
    assert_eq!(cm["data"], json!({"cluster": "prod", "region": "us-east-2"}));
}

#[test]
fn helm_releases_of_git_charts_and_chart_refs() {
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    repo.write(&[(
        "flux/web.yaml",
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: platform, namespace: flux-system}\nspec:\n  interval: 5m\n  url: https://github.com/acme/platform\n  ref: {branch: main}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web, namespace: apps}\nspec:\n  interval: 10m\n  releaseName: web\n  chart:\n    spec:\n      chart: ./charts/web\n      sourceRef: {kind: GitRepository, name: platform, namespace: flux-system}\n      valuesFiles: [values-prod.yaml]\n  valuesFrom:\n    - {kind: ConfigMap, name: web-values}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: podinfo, namespace: apps}\nspec:\n  interval: 10m\n  chartRef: {kind: OCIRepository, name: podinfo}\n",
    )]);
    repo.commit("helm");
    let run = import(&repo, &["flux"]);
    run.expect_code(0);
    let web = block_has(
        &run.stdout,
        "app \"web\"",
        &[
            "source \"platform\"",
            "path \"charts/web\"",
            "namespace \"apps\"",
            "values-file \"charts/web/values-prod.yaml\"",
            "values-from configmap=\"apps/web-values\"",
        ],
    );
    assert!(!web.contains("release "), "the release is the app's name: {web}");
    assert!(!run.stdout.contains("app \"podinfo\""), "{}", run.stdout);
    run.stderr_has("HelmRelease apps/podinfo: not imported: its chartRef OCIRepository apps/podinfo is not among the imported objects");
}

/// The fleet's charts by reference: a chartRef to an OCIRepository of a
/// chart (a `helm "oci://…"` source of its parent repository, the app
/// naming the chart and the range), a chartRef to a HelmChart (its chart
/// and source), `valuesFrom` and `postRenderers` as `values-from`,
/// `set-image` and `patch`, and a HelmChart nobody uses noted, not dropped.
#[test]
fn helm_releases_by_chart_ref_with_values_from_and_post_renderers() {
    let env = TestEnv::new();
    let repo = fleet(&env);
    let run = import(&repo, &["clusters/prod", "-o", "mooring.kdl"]);
    run.expect_code(0);
    let config = std::fs::read_to_string(repo.work.join("mooring.kdl")).expect("read the config");

    block_has(
        &config,
        "source \"podinfo-chart\"",
        &["helm \"oci://ghcr.io/stefanprodan/charts\"\n"],
    );
    block_has(
        &config,
        "app \"podinfo\"",
        &[
            "source \"podinfo-chart\"",
            "chart \"podinfo\" version=\">=6.0.0 <7.0.0\"",
            "namespace \"podinfo\"",
            "values-from configmap=\"podinfo/podinfo-values\"\n",
            "values-from secret=\"podinfo/podinfo-auth\" values-key=\"password\" target-path=\"auth.password\" optional=#true",
            "set-image \"ghcr.io/stefanprodan/podinfo\" new-name=\"registry.example.com/podinfo\"",
            "patch kind=\"Deployment\" name=\"podinfo\" #\"\"\"\n        - op: add\n",
        ],
    );
    block_has(
        &config,
        "app \"cache\"",
        &[
            "source \"bitnami\"",
            "chart \"redis\" version=\"20.x\"",
            "namespace \"data\"",
        ],
    );
    assert!(
        !config.contains("HelmChart flux-system/redis not imported"),
        "{config}"
    );
    run.stderr_has("HelmChart flux-system/unused: not imported: a HelmChart alone deploys nothing");
    mooring(&repo, &["validate", "-c", "mooring.kdl"]).expect_code(0);
}
