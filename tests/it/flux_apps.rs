//! The Flux `Kustomization` features as app config, end to end through the
//! real binary: name prefix and suffix, components, images, patches (with
//! targets) and the target namespace against `kubectl kustomize` of the
//! kustomization Flux would write; common metadata; `substitute-from` files,
//! ConfigMaps and Secrets of the test API server in Flux's order; SOPS
//! (a Secret in a kustomization with a namespace override, a secretGenerator
//! over encrypted files) with the corpus's age test keys, and secrets kept out
//! of logs and the state directory.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::gitserver::Repo;
use crate::kube::Fixture;
use crate::support::{TestEnv, checked, conformance, skip};

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\n  labels: {app: podinfo}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: podinfo}\n  template:\n    metadata:\n      labels: {app: podinfo}\n    spec:\n      containers:\n      - name: podinfo\n        image: podinfo:1.0\n        env:\n        - {name: CONFIG, value: settings}\n";
const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {tier: config}\ndata:\n  greeting: hello\n";
const NESTED: &str = "resources: [svc.yaml]\ncommonLabels: {nested: \"yes\"}\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\nspec:\n  selector: {app: podinfo}\n  ports: [{port: 80}]\n";
const COMPONENT: &str = "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [hpa.yaml]\npatches:\n- target: {kind: Deployment}\n  patch: |\n    - op: add\n    \x20 path: /metadata/annotations\n    \x20 value: {component: extra}\n";
const HPA: &str = "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: podinfo\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}\n  minReplicas: 2\n  maxReplicas: 4\n";
const BASE_KUSTOMIZATION: &str = "namePrefix: base-\nresources: [deploy.yaml, cm.yaml]\nimages:\n- name: podinfo\n  newTag: \"1.1\"\n- name: other\n  newTag: \"9\"\n";

/// The app-side features, as config lines, and the kustomization entries
/// Flux writes for them.
const FEATURES: &str = r##"    namespace "web"
    name-prefix "prod-"
    name-suffix "-eu"
    components "../../components/extra"
    set-image "podinfo" new-name="ghcr.io/acme/podinfo" new-tag="6.5.0"
    patch #"""
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: podinfo
        spec:
          replicas: 3
        """#
    patch group="apps" version="v1" kind="Deployment" name="podinfo" #"""
        - op: add
          path: /spec/template/spec/containers/0/args
          value: ["--level=debug"]
        """#
    patch kind="ConfigMap" label-selector="tier=config" #"""
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: any
        data:
          extra: "1"
        """#
"##;
const FEATURES_YAML: &str = "namespace: web\nnamePrefix: prod-\nnameSuffix: -eu\ncomponents:\n- ../../components/extra\npatches:\n- patch: |\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: podinfo\n    spec:\n      replicas: 3\n- target: {group: apps, version: v1, kind: Deployment, name: podinfo}\n  patch: |\n    - op: add\n      path: /spec/template/spec/containers/0/args\n      value: [\"--level=debug\"]\n- target: {kind: ConfigMap, labelSelector: tier=config}\n  patch: |\n    apiVersion: v1\n    kind: ConfigMap\n    metadata:\n      name: any\n    data:\n      extra: \"1\"\n";

fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("apps/plain/deploy.yaml", DEPLOY),
        ("apps/plain/sub/cm.yaml", CONFIGMAP),
        ("apps/plain/nested/kustomization.yaml", NESTED),
        ("apps/plain/nested/svc.yaml", SERVICE),
        ("apps/plain/notes.txt", "not a manifest\n"),
        ("apps/base/deploy.yaml", DEPLOY),
        ("apps/base/cm.yaml", CONFIGMAP),
        ("apps/base/kustomization.yaml", BASE_KUSTOMIZATION),
        ("components/extra/kustomization.yaml", COMPONENT),
        ("components/extra/hpa.yaml", HPA),
    ]
}

fn has_kubectl(test: &str) -> bool {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        skip(test, "kubectl is not on the PATH");
    }
    ok
}

/// `kubectl kustomize DIR` of `files` with `kustomization` written into `dir`.
fn kubectl_kustomize(env: &TestEnv, files: &[(&str, &str)], dir: &str, kustomization: &str) -> String {
    let root = env.path().join("oracle");
    let _ = std::fs::remove_dir_all(&root);
    for (path, text) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }
    std::fs::write(root.join(dir).join("kustomization.yaml"), kustomization).expect("write kustomization");
    checked(
        Command::new("kubectl")
            .args(["kustomize", dir])
            .current_dir(&root),
    )
}

/// `mooring render app/NAME` without its comment lines: the YAML stream
/// as `kubectl kustomize` prints it.
fn render(env: &TestEnv, app: &str) -> String {
    let run = env.run(&["render", &format!("app/{app}"), "-c", "mooring.kdl"]);
    run.expect_code(0);
    let body: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("# ")).collect();
    let text = body.join("\n") + "\n";
    text.strip_prefix("---\n").unwrap_or(&text).to_string()
}

fn diff(want: &str, got: &str) -> String {
    similar::TextDiff::from_lines(want, got)
        .unified_diff()
        .header("kubectl", "mooring")
        .to_string()
}

fn setup(apps: &str) -> (TestEnv, Repo) {
    let env = TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    repo.write(&files());
    repo.commit("first");
    repo.publish();
    let config = format!(
        "agent {{\n    state-dir \"state\"\n}}\nsource \"repo\" {{\n    git \"{}\"\n}}\n{apps}",
        repo.file_url()
    );
    env.write("mooring.kdl", &config);
    (env, repo)
}

fn dir_app(name: &str, path: &str, body: &str) -> String {
    format!(
        "app \"{name}\" {{\n    source \"repo\"\n    path \"{path}\"\n    target dir=\"out-{name}\"\n{body}}}\n"
    )
}

/// A plain directory gets the kustomization Flux generates (its manifest
/// files and nested kustomizations) with the app's features added; a
/// kustomization gets them added to its own file (prefix replaced, an
/// image of the same name replaced). Both build as kubectl builds them.
#[test]
fn kustomization_features_match_kubectl() {
    if !has_kubectl("kustomization_features_match_kubectl") {
        return;
    }
    let apps = [
        dir_app("plain", "apps/plain", FEATURES),
        dir_app(
            "base",
            "apps/base",
            &FEATURES.replace("set-image \"podinfo\"", "set-image \"podinfo\" digest=\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""),
        ),
        dir_app("untouched", "apps/plain", ""),
    ]
    .concat();
    let (env, _repo) = setup(&apps);
    let images = "images:\n- name: podinfo\n  newName: ghcr.io/acme/podinfo\n  newTag: 6.5.0\n";
    let generated =
        format!("resources:\n- ./deploy.yaml\n- ./nested\n- ./sub/cm.yaml\n{FEATURES_YAML}{images}");
    let want = kubectl_kustomize(&env, &files(), "apps/plain", &generated);
    let got = render(&env, "plain");
    assert!(got == want, "{}", diff(&want, &got));
    assert!(got.contains("name: prod-podinfo-eu\n  namespace: web\n"), "{got}");

    // The file's own kustomization, extended as Flux extends it.
    let base = format!(
        "resources: [deploy.yaml, cm.yaml]\nimages:\n- name: podinfo\n  newName: ghcr.io/acme/podinfo\n  newTag: 6.5.0\n  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n- name: other\n  newTag: \"9\"\n{FEATURES_YAML}"
    );
    let want = kubectl_kustomize(&env, &files(), "apps/base", &base);
    let got = render(&env, "base");
    assert!(got == want, "{}", diff(&want, &got));

    // Without features a plain directory renders as before: its own text.
    let plain = env.run(&["render", "app/untouched", "-c", "mooring.kdl"]);
    plain.expect_code(0);
    assert!(
        plain.stdout.contains("labels: {app: podinfo}"),
        "{}",
        plain.stdout
    );
}

fn docs(stream: &str) -> Vec<Value> {
    stream
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str::<Value>(d).expect("YAML document"))
        .collect()
}

/// Flux's commonMetadata: labels and annotations on every object's
/// metadata only (selectors and templates keep theirs), replacing keys of
/// the same name, after the build and substitution (not substituted).
#[test]
fn common_metadata_is_set_after_the_build() {
    if !has_kubectl("common_metadata_is_set_after_the_build") {
        return;
    }
    let meta = "    substitute { team \"subst\"; }\n    common-metadata {\n        labels { tier \"web\"; \"app.kubernetes.io/part-of\" \"shop\"; }\n        annotations { \"example.com/owner\" \"${team}\"; }\n    }\n";
    let (env, _repo) = setup(&dir_app("meta", "apps/plain", &format!("{FEATURES}{meta}")));
    let generated = format!(
        "resources:\n- ./deploy.yaml\n- ./nested\n- ./sub/cm.yaml\n{FEATURES_YAML}images:\n- name: podinfo\n  newName: ghcr.io/acme/podinfo\n  newTag: 6.5.0\n"
    );
    let want = docs(&kubectl_kustomize(&env, &files(), "apps/plain", &generated));
    let got = docs(&render(&env, "meta"));
    assert_eq!(got.len(), want.len());
    for (mut got, want) in got.into_iter().zip(want) {
        let labels = &got["metadata"]["labels"];
        assert_eq!(labels["tier"], "web", "{got}");
        assert_eq!(labels["app.kubernetes.io/part-of"], "shop", "{got}");
        assert_eq!(got["metadata"]["annotations"]["example.com/owner"], "${team}");
        // Take them out again: the rest is kubectl's build.
        let meta = got["metadata"].as_object_mut().expect("metadata");
        for (field, keys) in [
            ("labels", &["tier", "app.kubernetes.io/part-of"][..]),
            ("annotations", &["example.com/owner"][..]),
        ] {
            let m = meta.get_mut(field).and_then(Value::as_object_mut).expect("map");
            for k in keys {
                m.remove(*k);
            }
            if let Some(old) = want["metadata"][field].get("tier") {
                m.insert("tier".into(), old.clone());
            }
            if m.is_empty() {
                meta.remove(field);
            }
        }
        assert_eq!(got, want);
    }
}

/// `substitute-from` in order, later ones winning, `substitute` over all,
/// as Flux's postBuild; ConfigMaps and Secrets read from the cluster; an
/// optional missing one gives nothing, a required one fails the app; the
/// Secret's values are nowhere in the output or the state directory.
#[test]
fn substitute_from_files_configmaps_and_secrets() {
    let f = Fixture::new();
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: subst\n  namespace: demo\ndata:\n  a: \"${from_file}\"\n  b: \"${from_cm}\"\n  c: \"${from_secret}\"\n  d: \"${override}\"\n  e: \"${shared}\"\n  f: \"${missing:=dflt}\"\n";
    f.commit(
        &[
            ("subst/cm.yaml", cm),
            (
                "vars/app.env",
                "# comment\nfrom_file=file\noverride=file\nshared=file\n",
            ),
        ],
        &[],
        "subst",
    );
    for obj in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
               "data": {"from_cm": "cm", "override": "cm", "shared": "cm"}}),
        // base64 of "s3cr3t-v4lue\n" and "secret".
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cluster-secrets", "namespace": "flux-system"},
               "data": {"from_secret": "czNjcjN0LXY0bHVlCg==", "shared": "c2VjcmV0"}}),
    ] {
        f.server.apply("setup", true, &obj).expect("seed the cluster");
    }
    let from = "    substitute-from file=\"vars/app.env\"\n    substitute-from configmap=\"flux-system/cluster-vars\"\n    substitute-from secret=\"flux-system/cluster-secrets\"\n    substitute-from configmap=\"flux-system/absent\" optional=#true\n    substitute-from file=\"vars/absent.env\" optional=#true\n    substitute { override \"inline\"; }\n";
    let app = |name: &str, extra: &str| {
        format!(
            "app \"{name}\" {{\n    source \"repo\"\n    path \"subst\"\n    cluster \"test\"\n{from}{extra}}}\n"
        )
    };
    f.config_with("    log level=\"debug\"\n", &app("subst", ""));
    let (run, outcome) = f.once("subst");
    assert_eq!(outcome["result"], "ok", "{outcome}\n{}", run.stderr);
    let got = f
        .object("v1", "ConfigMap", Some("demo"), "subst")
        .expect("ConfigMap subst");
    assert_eq!(
        got["data"],
        json!({"a": "file", "b": "cm", "c": "s3cr3t-v4lue", "d": "inline", "e": "secret", "f": "dflt"})
    );
    let secret = "s3cr3t-v4lue";
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "{run:?}"
    );
    assert_no_secret_in(&f.env.path().join("state"), secret);

    // A required source that is missing fails the app and says which.
    f.config(&app(
        "subst",
        "    substitute-from secret=\"flux-system/absent\"\n",
    ));
    let (run, outcome) = f.once("subst");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    let message = outcome.to_string();
    assert!(
        message.contains("substitute-from Secret flux-system/absent: not found"),
        "{message}\n{}",
        run.stderr
    );
}

pub fn assert_no_secret_in(dir: &Path, secret: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            assert_no_secret_in(&path, secret);
        } else if let Ok(bytes) = std::fs::read(&path) {
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(secret), "{} holds a secret value", path.display());
        }
    }
}

/// A SOPS-encrypted Secret in a kustomization whose namespace the app
/// overrides, and a secretGenerator over an encrypted .env and binary file:
/// decrypted as Flux does, the generated Secret named and filled as kubectl
/// names and fills it from the plaintext; the committed file's MAC is
/// checked; no plaintext in the output or the state directory.
#[test]
fn sops_secrets_in_a_kustomization() {
    let Some(corpus) = conformance("sops_secrets_in_a_kustomization", "sops") else {
        return;
    };
    if !has_kubectl("sops_secrets_in_a_kustomization") {
        return;
    }
    let read = |p: &str| std::fs::read_to_string(corpus.join(p)).expect("corpus file");
    let secret = read("cases/kc-global-secret/encrypted.yaml");
    let env_file = read("cases/kc-envs-dotenv/encrypted.env");
    let binary = read("cases/kc-files-binary/encrypted.bin");
    let merge = read("cases/kc-patches-merge1/encrypted.yaml");
    let base = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret\nstringData:\n  key: base\n";
    let kustomization = "namespace: other\nresources: [secret.yaml, base.yaml]\npatches:\n- path: merge.yaml\nsecretGenerator:\n- name: gen\n  envs: [secret.env]\n  files: [file.txt]\n";
    let f = Fixture::new();
    f.commit(
        &[
            ("sec/kustomization.yaml", kustomization),
            ("sec/secret.yaml", &secret),
            ("sec/secret.env", &env_file),
            ("sec/file.txt", &binary),
            ("sec/base.yaml", base),
            ("sec/merge.yaml", &merge),
        ],
        &[],
        "sops",
    );
    let keys = format!(
        "{}{}",
        read("keys/kc-age-global.agekey"),
        read("keys/kc-age.agekey")
    );
    f.env.write("age.agekey", &keys);
    f.server
        .apply(
            "setup",
            true,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        )
        .expect("namespace");
    let app = "app \"sec\" {\n    source \"repo\"\n    path \"sec\"\n    cluster \"test\"\n    namespace \"demo\"\n    sops age-key-file=\"age.agekey\"\n}\n";
    f.config_with("    log level=\"debug\"\n", app);
    let (run, outcome) = f.once("sec");
    assert_eq!(outcome["result"], "ok", "{outcome}\n{}", run.stderr);
    let live = f
        .object("v1", "Secret", Some("demo"), "global-age-secret")
        .expect("the decrypted Secret, in the app's namespace");
    let value = live["stringData"]["key"]
        .as_str()
        .or(live["data"]["key"].as_str())
        .unwrap_or_default();
    assert!(value == "global-value" || value == "Z2xvYmFsLXZhbHVl", "{live}");
    assert!(live.get("sops").is_none(), "{live}");
    // An encrypted patch file, decrypted before the build.
    let patched = f
        .object("v1", "Secret", Some("demo"), "secret")
        .expect("the patched Secret");
    // (The API server keeps stringData as data: base64 of "merge1".)
    assert_eq!(patched["data"]["key"], "bWVyZ2Ux", "{patched}");
    for plain in ["global-value", "Z2xvYmFsLXZhbHVl", "merge1", "bWVyZ2Ux"] {
        assert!(
            !run.stdout.contains(plain) && !run.stderr.contains(plain),
            "{run:?}"
        );
        assert_no_secret_in(&f.env.path().join("state"), plain);
    }

    // The generated Secret, as kubectl generates it from the plaintext.
    let plain_files = [
        ("sec/kustomization.yaml", "x"),
        ("sec/secret.env", "key=value\n"),
        ("sec/file.txt", "value"),
    ];
    let want = kubectl_kustomize(
        &f.env,
        &plain_files,
        "sec",
        "namespace: demo\nsecretGenerator:\n- name: gen\n  envs: [secret.env]\n  files: [file.txt]\n",
    );
    let rendered = f.env.run(&["render", "app/sec", "-c", "mooring.kdl"]);
    rendered.expect_code(0);
    assert!(
        rendered.stdout.contains(&want),
        "{}\n---\n{want}",
        rendered.stdout
    );
    let name = want
        .lines()
        .find_map(|l| l.strip_prefix("  name: "))
        .expect("generated name");
    assert!(
        f.object("v1", "Secret", Some("demo"), name).is_some(),
        "{name} applied"
    );

    // A value edited outside sops: the committed file's MAC refuses it.
    f.commit(
        &[("sec/secret.yaml", &secret.replace("type: Opaque", "type: Edited"))],
        &[],
        "tamper",
    );
    let (_, outcome) = f.once("sec");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    assert!(outcome.to_string().contains("MAC mismatch"), "{outcome}");

    // A file encrypted for PGP only: refused, saying why.
    let pgp = read("unsupported/kustomize-controller-pgp-yaml/encrypted.yaml");
    f.commit(&[("sec/secret.yaml", &pgp)], &[], "pgp");
    let (_, outcome) = f.once("sec");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    assert!(outcome.to_string().contains("only age is supported"), "{outcome}");

    // Without keys: refused, not applied as ciphertext.
    f.commit(&[("sec/secret.yaml", &secret)], &[], "restore");
    f.config(&app.replace("    sops age-key-file=\"age.agekey\"\n", ""));
    let (_, outcome) = f.once("sec");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    assert!(outcome.to_string().contains("SOPS-encrypted"), "{outcome}");
}

/// Flux objects → `mooring import flux` → `validate` → `once`: a
/// Kustomization with targetNamespace, namePrefix, components, images,
/// patches, commonMetadata and postBuild (substitute, a ConfigMap, an
/// optional missing Secret) applies what Flux would.
#[test]
fn an_imported_flux_kustomization_applies_as_flux_would() {
    let f = Fixture::new();
    let flux = format!(
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {{name: fleet, namespace: flux-system}}\nspec:\n  interval: 1m\n  url: {}\n  ref: {{branch: main}}\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {{name: apps, namespace: flux-system}}\nspec:\n  interval: 10m\n  sourceRef: {{kind: GitRepository, name: fleet}}\n  path: ./apps/prod\n  prune: true\n  targetNamespace: demo\n  namePrefix: prod-\n  components: [../../components/extra]\n  images:\n  - {{name: podinfo, newName: ghcr.io/acme/podinfo, newTag: \"6.5.0\"}}\n  patches:\n  - target: {{kind: Deployment}}\n    patch: |\n      - op: replace\n        path: /spec/replicas\n        value: 2\n  commonMetadata:\n    labels: {{team: web}}\n  postBuild:\n    substitute: {{greeting: hello}}\n    substituteFrom:\n    - {{kind: ConfigMap, name: cluster-vars}}\n    - {{kind: Secret, name: absent, optional: true}}\n",
        f.repo.file_url()
    );
    let deploy = DEPLOY.replace("value: settings", "value: \"${region}\"");
    let cm =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: \"${greeting}\"\n";
    let component =
        "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nresources: [extra.yaml]\n";
    let extra = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  from: component\n";
    f.commit(
        &[
            ("clusters/test/fleet.yaml", &flux),
            ("apps/prod/deploy.yaml", &deploy),
            ("apps/prod/cm.yaml", cm),
            ("components/extra/kustomization.yaml", component),
            ("components/extra/extra.yaml", extra),
        ],
        &[],
        "fleet",
    );
    let imported = f.env.path().join("imported.kdl");
    let out = f
        .env
        .cmd()
        .current_dir(&f.repo.work)
        .args(["import", "flux", "clusters/test", "-o"])
        .arg(&imported)
        .output()
        .expect("run mooring import flux");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&imported).expect("imported config");
    for line in [
        "name-prefix \"prod-\"",
        "components \"../../components/extra\"",
        "set-image \"podinfo\" new-name=\"ghcr.io/acme/podinfo\" new-tag=\"6.5.0\"",
        "patch kind=\"Deployment\"",
        "substitute-from configmap=\"flux-system/cluster-vars\"",
        "substitute-from secret=\"flux-system/absent\" optional=#true",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    f.env.write(
        "mooring.kdl",
        &format!("agent {{\n    state-dir \"state\"\n}}\n{text}"),
    );
    f.env.run(&["validate", "-c", "mooring.kdl"]).expect_code(0);
    for obj in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
               "data": {"region": "eu-west-1"}}),
    ] {
        f.server.apply("setup", true, &obj).expect("seed the cluster");
    }
    let mut once = f.env.cmd();
    once.env("KUBECONFIG", f.env.path().join("kubeconfig"));
    checked(once.args(["once", "-v", "app/apps", "-c", "mooring.kdl", "--format", "json"]));
    let d = f
        .object("apps/v1", "Deployment", Some("demo"), "prod-podinfo")
        .expect("Deployment demo/prod-podinfo");
    assert_eq!(d["spec"]["replicas"], 2, "{d}");
    assert_eq!(d["metadata"]["labels"]["team"], "web", "{d}");
    assert_eq!(
        d["spec"]["selector"]["matchLabels"],
        json!({"app": "podinfo"}),
        "{d}"
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "ghcr.io/acme/podinfo:6.5.0", "{d}");
    assert_eq!(c["env"][0]["value"], "eu-west-1", "{d}");
    let settings = f
        .object("v1", "ConfigMap", Some("demo"), "prod-settings")
        .expect("ConfigMap demo/prod-settings");
    assert_eq!(settings["data"]["greeting"], "hello");
    let extra = f
        .object("v1", "ConfigMap", Some("demo"), "prod-extra")
        .expect("the component's ConfigMap");
    assert_eq!(extra["metadata"]["labels"]["team"], "web");
}
