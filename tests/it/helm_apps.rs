//! Apps from Helm charts, end to end: charts made and published with the
//! real helm 3.17.2 (`helm package` + `helm repo index` behind a static
//! HTTP server with basic auth; `helm push` into the distribution
//! registry), the real binary rendering and applying them (into a
//! directory, and into the test API server), and `helm template` as the
//! oracle for what was rendered.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::gitserver::Repo;
use crate::kube::Fixture;
use crate::registry::Registry;
use crate::statichttp::StaticServer;
use crate::support::{Run, TestEnv, checked};

const USER: &str = "bot";
const PASSWORD: &str = "s3cret-pass";
/// The bearer token the static server also accepts.
const TOKEN: &str = "t0ken-for-charts";

/// helm 3.17.2 with its home directories kept in `home`; `None` (and a
/// note) when it is not installed, a failure under `CI`.
fn helm(home: &Path) -> Option<Command> {
    let Some(path) = crate::helm::helm_3_17() else {
        let note = "helm 3.17.2 is not on PATH (scripts/test installs it)";
        assert!(std::env::var_os("CI").is_none(), "{note}");
        eprintln!("note: skipping a Helm app test: {note}");
        return None;
    };
    let mut cmd = Command::new(path);
    for (var, dir) in [
        ("HELM_CACHE_HOME", "cache"),
        ("HELM_CONFIG_HOME", "config"),
        ("HELM_DATA_HOME", "data"),
    ] {
        cmd.env(var, home.join(dir));
    }
    cmd.env("HELM_REGISTRY_CONFIG", home.join("registry.json"));
    Some(cmd)
}

/// `helm package SRC` into the folder of `tgz` (the archive it makes),
/// then `helm push` of `tgz` to the registry's `charts` with its user.
fn package_and_push(home: &Path, src: &Path, tgz: &Path, registry: &Registry) {
    let dir = tgz.parent().expect("the archive's folder");
    checked(
        helm(home)
            .expect("helm")
            .arg("package")
            .arg(src)
            .arg("-d")
            .arg(dir),
    );
    let (user, password) = (crate::registry::USER, crate::registry::PASSWORD);
    let mut push = helm(home).expect("helm");
    push.arg("push")
        .arg(tgz)
        .arg(format!("oci://{}/charts", registry.host()));
    checked(push.args(["--plain-http", "--username", user, "--password", password]));
}

/// A chart `hello` at `version` in `dir/hello`: a ConfigMap showing its
/// values, release and capabilities, a pre-install hook, a test hook.
fn write_chart(dir: &Path, version: &str, crds: bool) -> PathBuf {
    let chart = dir.join("hello");
    let files: &[(&str, String)] = &[
        (
            "Chart.yaml",
            format!("apiVersion: v2\nname: hello\nversion: {version}\n"),
        ),
        ("values.yaml", "greeting: hi\ncolor: none\n".into()),
        // A file Flux's default ignore rules would drop from a source.
        ("files/logo.png", "\u{89}PNG not really\n".into()),
        (
            "templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hello\n  labels:\n    chart: {{ .Chart.Name }}-{{ .Chart.Version }}\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  color: {{ .Values.color | quote }}\n  namespace: {{ .Release.Namespace | quote }}\n  autoscalingV2: {{ .Capabilities.APIVersions.Has \"autoscaling/v2\" | quote }}\n  widgets: {{ .Capabilities.APIVersions.Has \"example.com/v1/Widget\" | quote }}\n  logo: {{ .Files.Get \"files/logo.png\" | b64enc | quote }}\n".into(),
        ),
        (
            "templates/hook.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-setup\n  annotations:\n    helm.sh/hook: pre-install,pre-upgrade\ndata:\n  ready: \"yes\"\n".into(),
        ),
        (
            "templates/tests/test.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\nspec:\n  containers:\n  - name: t\n    image: busybox\n".into(),
        ),
    ];
    for (name, text) in files {
        let path = chart.join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write chart file");
    }
    if crds {
        let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names:\n    kind: Widget\n    plural: widgets\n    singular: widget\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n";
        std::fs::create_dir_all(chart.join("crds")).expect("mkdir crds");
        std::fs::write(chart.join("crds/widgets.yaml"), crd).expect("write crd");
    }
    chart
}

/// The documents of a YAML stream, parsed, empty ones left out.
fn documents(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line == "---" {
            if let Ok(Some(v)) = serde_saphyr::from_str::<Option<Value>>(&current) {
                out.push(v);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    out.sort_by_key(|v| format!("{}/{}", v["kind"], v["metadata"]["name"]));
    out
}

/// A Helm repository of chart `hello` 1.0.0, 1.1.0 and 2.0.0-rc.1, made by
/// helm, behind a static server with basic auth.
fn repository(env: &TestEnv, home: &Path) -> Option<StaticServer> {
    let repo = env.path().join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir repo");
    for version in ["1.0.0", "1.1.0", "2.0.0-rc.1"] {
        let src = write_chart(&env.path().join(format!("src-{version}")), version, false);
        let mut package = helm(home)?;
        package.arg("package").arg(&src).arg("-d").arg(&repo);
        checked(&mut package);
    }
    let mut index = helm(home)?;
    index.args(["repo", "index"]).arg(&repo);
    checked(&mut index);
    Some(StaticServer::start(&repo, USER, PASSWORD, TOKEN))
}

/// `mooring render app/APP` prints what `template` (a `helm template`)
/// does, the chart's test Pods aside: the documents.
#[track_caller]
fn renders_as_helm(env: &TestEnv, app: &str, mut template: Command) -> Vec<Value> {
    let render = env.run(&["render", &format!("app/{app}"), "-c", "mooring.kdl"]);
    render.expect_code(0);
    let want: Vec<Value> = documents(&checked(&mut template))
        .into_iter()
        .filter(|d| d["kind"] != "Pod")
        .collect();
    let got = documents(&render.stdout);
    assert_eq!(got, want, "{}", render.stdout);
    got
}

fn once(env: &TestEnv) -> (Run, Value) {
    let run = env.run(&["once", "-v", "-c", "mooring.kdl", "--format", "json"]);
    let all: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n{}\n{}", run.stdout, run.stderr));
    (run, all)
}

fn outcome<'a>(all: &'a Value, kind: &str, name: &str) -> &'a Value {
    all.as_array()
        .and_then(|a| a.iter().find(|o| o["kind"] == kind && o["name"] == name))
        .unwrap_or_else(|| panic!("no {kind}/{name} in {all}"))
}

#[test]
fn a_chart_from_a_helm_repository_renders_as_helm_does_and_is_cached_by_digest() {
    let env = TestEnv::new();
    let home = env.path().join("helm-home");
    let Some(server) = repository(&env, &home) else {
        return;
    };
    let values = Repo::new(&env.path().join("git"));
    values.write(&[("values/cache.yaml", "greeting: from-file\ncolor: blue\n")]);
    values.commit("values");
    values.publish();
    env.write("password", &format!("{PASSWORD}\n"));
    let config = format!(
        "agent {{ state-dir \"state\"; }}\n\
         source \"platform\" {{ git \"{}\"; }}\n\
         source \"charts\" {{\n    helm \"{}\"\n    auth {{ username \"{USER}\"; password-file \"password\"; }}\n}}\n\
         app \"cache\" {{\n    source \"charts\"\n    chart \"hello\" version=\"^1.0.0\"\n    release \"cache\"\n    namespace \"data\"\n    values-file \"values/cache.yaml\" source=\"platform\"\n    values \"greeting: inline\"\n    target dir=\"out\"\n}}\n",
        values.file_url(),
        server.url()
    );
    env.write("mooring.kdl", &config);

    let (run, all) = once(&env);
    run.expect_code(0);
    let app = outcome(&all, "app", "cache");
    assert_eq!(app["result"], "ok", "{all}\n{}", run.stderr);
    let seen = server.take_seen();
    assert_eq!(
        seen,
        ["/charts/index.yaml", "/charts/hello-1.1.0.tgz"],
        "1.1.0 is the highest in ^1.0.0 (no pre-release)"
    );

    // Written into the directory: the ConfigMap and the install hook, not
    // the test hook.
    let mut files: Vec<String> = std::fs::read_dir(env.path().join("out"))
        .expect("out dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["configmap_cache-hello.yaml", "configmap_cache-setup.yaml"]
    );

    // What mooring renders is what helm renders for the same values, in
    // the same order (file, then inline).
    env.write("inline.yaml", "greeting: inline\n");
    let mut template = helm(&home).expect("helm");
    template
        .args(["template", "cache"])
        .arg(env.path().join("repo/hello-1.1.0.tgz"))
        .args(["-n", "data", "-f"])
        .arg(values.work.join("values/cache.yaml"))
        .arg("-f")
        .arg(env.path().join("inline.yaml"));
    let got = renders_as_helm(&env, "cache", template);
    assert_eq!(got[0]["data"]["greeting"], "inline");
    assert_eq!(got[0]["data"]["color"], "blue");
    assert_eq!(got[0]["metadata"]["labels"]["chart"], "hello-1.1.0");

    // The index again, the archive not: the store has its digest.
    server.take_seen();
    let (run, all) = once(&env);
    run.expect_code(0);
    assert_eq!(outcome(&all, "app", "cache")["result"], "ok", "{all}");
    assert_eq!(server.take_seen(), ["/charts/index.yaml"]);

    // Wrong credentials: refused, and the password never shown.
    env.write("password", "wrong\n");
    std::fs::remove_dir_all(env.path().join("state/artifacts")).expect("clear the store");
    let (run, all) = once(&env);
    run.expect_code(1);
    let source = outcome(&all, "source", "charts");
    assert_eq!(source["result"], "failed", "{all}");
    let text = format!("{all}{}", run.stderr);
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("wrong") && !text.contains(PASSWORD), "{text}");
}

#[test]
fn a_missing_chart_or_version_is_named_with_what_there_is_and_caps_hold() {
    let env = TestEnv::new();
    let home = env.path().join("helm-home");
    let Some(server) = repository(&env, &home) else {
        return;
    };
    env.write("token", TOKEN);
    let config = format!(
        "agent {{ state-dir \"state\"; }}\n\
         source \"charts\" {{\n    helm \"{}\"\n    auth {{ token-file \"token\"; }}\n}}\n\
         source \"tiny\" {{\n    helm \"{0}\"\n    auth {{ token-file \"token\"; }}\n    limits max-size=\"100B\"\n}}\n\
         app \"capped\" {{ source \"tiny\"; chart \"hello\"; target dir=\"d\"; }}\n\
         app \"typo\" {{ source \"charts\"; chart \"helo\"; target dir=\"a\"; }}\n\
         app \"future\" {{ source \"charts\"; chart \"hello\" version=\">=3.0.0\"; target dir=\"b\"; }}\n\
         app \"rc\" {{ source \"charts\"; chart \"hello\" version=\">=2.0.0-0\"; target dir=\"c\"; }}\n",
        server.url()
    );
    env.write("mooring.kdl", &config);
    let (run, all) = once(&env);
    run.expect_code(1);
    let typo = outcome(&all, "app", "typo")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        typo.contains("chart \"helo\" (did you mean \"hello\"?)"),
        "{typo}"
    );
    let future = outcome(&all, "app", "future")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        future.contains("matching \">=3.0.0\" (among 3 versions)"),
        "{future}"
    );
    assert_eq!(outcome(&all, "app", "rc")["result"], "ok", "{all}");
    let capped = outcome(&all, "source", "tiny")["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(capped.contains("larger than the limit of 100 bytes"), "{capped}");
    let cm = std::fs::read_to_string(env.path().join("c/configmap_rc-hello.yaml")).expect("rc's ConfigMap");
    assert!(cm.contains("chart: hello-2.0.0-rc.1"), "{cm}");
}

#[test]
fn a_chart_pushed_to_an_oci_registry_with_auth_renders_as_helm_does() {
    let env = TestEnv::new();
    let home = env.path().join("helm-home");
    if helm(&home).is_none() {
        return;
    }
    let registry = Registry::with_auth();
    let src = write_chart(&env.path().join("src"), "0.3.1", false);
    let tgz = env.path().join("hello-0.3.1.tgz");
    package_and_push(&home, &src, &tgz, &registry);
    env.write("registry-password", crate::registry::PASSWORD);
    let config = format!(
        "agent {{ state-dir \"state\"; }}\n\
         source \"oci-charts\" {{\n    helm \"oci://{}/charts\"\n    insecure #true\n    auth {{ username \"{}\"; password-file \"registry-password\"; }}\n}}\n\
         app \"web\" {{ source \"oci-charts\"; chart \"hello\" version=\"0.3.x\"; values \"color: red\"; target dir=\"out\"; }}\n",
        registry.host(),
        crate::registry::USER
    );
    env.write("mooring.kdl", &config);
    let (run, all) = once(&env);
    run.expect_code(0);
    let app = outcome(&all, "app", "web");
    assert_eq!(app["result"], "ok", "{all}\n{}", run.stderr);
    assert!(
        app["revision"]
            .as_str()
            .is_some_and(|r| r.starts_with("hello@0.3.1@sha256:")),
        "{app}"
    );

    let mut template = helm(&home).expect("helm");
    template
        .args(["template", "web"])
        .arg(&tgz)
        .args(["--set", "color=red"]);
    let got = renders_as_helm(&env, "web", template);
    assert_ne!(got[0]["data"]["logo"], "", "every file of the chart is kept");

    // The source's revision is its chart's version and manifest digest, so
    // the same version pushed again is a new revision, which wakes the app.
    let source_revision = |all: &Value| outcome(all, "source", "oci-charts")["revision"].clone();
    let first = source_revision(&all);
    assert_eq!(
        first.as_str().map(|r| r.split('@').take(2).collect::<Vec<_>>()),
        Some(vec!["hello", "0.3.1"]),
        "{all}"
    );
    assert_eq!(
        app["revision"],
        format!("{}", first.as_str().unwrap_or_default()),
        "{all}"
    );
    std::fs::write(src.join("values.yaml"), "greeting: pushed-again\ncolor: none\n").expect("write values");
    package_and_push(&home, &src, &tgz, &registry);
    let (run, all) = once(&env);
    run.expect_code(0);
    let second = source_revision(&all);
    assert_ne!(second, first, "{all}");
    assert_eq!(outcome(&all, "app", "web")["revision"], second, "{all}");
    let out = std::fs::read_dir(env.path().join("out"))
        .expect("out")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect::<String>();
    assert!(out.contains("pushed-again"), "{out}");
}

#[test]
fn a_chart_in_git_is_applied_to_a_cluster_with_the_clusters_capabilities() {
    let fx = Fixture::new();
    let dir = fx.env.path().join("chart-src");
    write_chart(&dir, "0.1.0", true);
    let mut files = Vec::new();
    for entry in [
        "Chart.yaml",
        "values.yaml",
        "templates/configmap.yaml",
        "templates/hook.yaml",
        "templates/tests/test.yaml",
        "crds/widgets.yaml",
    ] {
        let text = std::fs::read_to_string(dir.join("hello").join(entry)).expect("chart file");
        files.push((format!("charts/hello/{entry}"), text));
    }
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    fx.commit(&refs, &[], "a chart");
    fx.config(
        "app \"hello\" {\n    source \"repo\"\n    path \"charts/hello\"\n    cluster \"test\"\n    namespace \"default\"\n    release \"greeter\"\n    values \"greeting: from-kdl\"\n}\n",
    );

    let applied = fx.once_ok("hello");
    assert_eq!(applied["created"], 3, "{applied}"); // the CRD, the ConfigMap, the hook
    let cm = fx
        .object("v1", "ConfigMap", Some("default"), "greeter-hello")
        .expect("the chart's ConfigMap");
    assert_eq!(cm["data"]["greeting"], "from-kdl");
    assert_eq!(cm["data"]["namespace"], "default");
    // The cluster's APIs, not helm's default set: no autoscaling here, and
    // no Widget before its CRD was applied.
    assert_eq!(cm["data"]["autoscalingV2"], "false");
    assert_eq!(cm["data"]["widgets"], "false");
    assert!(
        fx.object("v1", "ConfigMap", Some("default"), "greeter-setup")
            .is_some(),
        "the pre-install hook"
    );
    assert!(
        fx.object("v1", "Pod", Some("default"), "greeter-test").is_none(),
        "test hooks are not applied"
    );
    assert!(
        fx.object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "widgets.example.com"
        )
        .is_some(),
        "crds/ are applied"
    );

    // Now the cluster serves Widgets: the next render sees them.
    fx.once_ok("hello");
    let cm = fx
        .object("v1", "ConfigMap", Some("default"), "greeter-hello")
        .expect("the chart's ConfigMap");
    assert_eq!(cm["data"]["widgets"], "true");

    // kubectl sees what mooring applied.
    let greeting = fx.kubectl(&[
        "get",
        "configmap/greeter-hello",
        "-n",
        "default",
        "-o",
        "jsonpath={.data.greeting}",
    ]);
    assert_eq!(greeting, "from-kdl");
}

/// A Helm repository over HTTPS with a private CA: refused without
/// `ca-file` (with the TLS error, no fallback to plain HTTP), fetched and
/// rendered with it.
#[test]
fn a_helm_repository_over_https_trusts_the_ca_file() {
    let env = TestEnv::new();
    let home = env.path().join("helm-home");
    let Some(server) = repository(&env, &home) else {
        return;
    };
    let certs = crate::tls::Certs::new();
    let front = crate::tls::TlsFront::start(&certs, server.port);
    let url = format!("https://127.0.0.1:{}/charts", front.port);
    env.write("token", TOKEN);
    let config = |ca: &str| {
        format!(
            "agent {{ state-dir \"state\"; }}\n\
             source \"charts\" {{\n    helm \"{url}\"\n    auth {{ token-file \"token\"; }}\n{ca}}}\n\
             app \"hello\" {{ source \"charts\"; chart \"hello\"; target dir=\"out\"; }}\n"
        )
    };
    env.write("mooring.kdl", &config(""));
    let (run, all) = once(&env);
    run.expect_code(1);
    let message = outcome(&all, "source", "charts")["message"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(message.contains("certificate"), "{message}\n{}", run.stderr);
    assert!(
        server.take_seen().is_empty(),
        "nothing reached the server without TLS"
    );

    env.write(
        "mooring.kdl",
        &config(&format!("    ca-file \"{}\"\n", certs.ca.display())),
    );
    let (run, all) = once(&env);
    run.expect_code(0);
    assert_eq!(outcome(&all, "app", "hello")["result"], "ok", "{all}");
    assert_eq!(
        server.take_seen(),
        ["/charts/index.yaml", "/charts/hello-1.1.0.tgz"]
    );
}

/// `values-from` as Flux's `valuesFrom`: ConfigMaps and Secrets of the
/// cluster merged in order over the values files, each whole or one key at
/// a `target-path` (typed as `--set` types it, a quoted value a string),
/// missing optional ones skipped, the inline `values` over all; then the
/// post-render `patch` and `set-image` (Flux's `postRenderers`), which
/// leave hooks alone as Helm's post-renderers do. Values read from a Secret
/// appear in no output, error or state file; a missing required object
/// fails the app and names it.
#[test]
fn values_from_the_cluster_and_post_render_patches() {
    let fx = Fixture::new();
    let chart = [
        (
            "charts/vf/Chart.yaml",
            "apiVersion: v2\nname: vf\nversion: 0.1.0\n",
        ),
        (
            "charts/vf/values.yaml",
            "a: default\nb: default\nc: default\nnested: {x: default, w: default, z: default}\nreplicas: 1\ncode: none\nauth: {password: none}\nimage: nginx:1.27\n",
        ),
        (
            "charts/vf/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-values\ndata:\n  a: {{ .Values.a | quote }}\n  b: {{ .Values.b | quote }}\n  c: {{ .Values.c | quote }}\n  nested: {{ .Values.nested | toJson | quote }}\n  replicas: {{ printf \"%T %v\" .Values.replicas .Values.replicas | quote }}\n  code: {{ printf \"%T %v\" .Values.code .Values.code | quote }}\n",
        ),
        (
            "charts/vf/templates/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-auth\nstringData:\n  password: {{ .Values.auth.password | quote }}\n",
        ),
        (
            "charts/vf/templates/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-web\nspec:\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: {{ .Values.image }}\n",
        ),
        (
            "charts/vf/templates/hook.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-setup\n  annotations:\n    helm.sh/hook: pre-install\ndata:\n  ready: \"yes\"\n",
        ),
        (
            "values/prod.yaml",
            "a: from-file\nc: from-file\nnested: {z: file}\n",
        ),
    ];
    fx.commit(&chart, &[], "a chart");
    let secret = "s3cr3t-v4lue";
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    for obj in [
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "base", "namespace": "flux-system"},
            "data": {"values.yaml": "a: from-cm\nb: from-cm\nnested:\n  x: cm\n  w: cm\n", "replicas": "1234567", "code": "'007'"}}),
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds", "namespace": "flux-system"},
            "data": {"values.yaml": b64("nested:\n  w: secret\n"), "password": b64(secret), "broken": b64(&format!("a: [{secret}"))}}),
    ] {
        fx.server.apply("setup", true, &obj).expect("seed the cluster");
    }
    let app = |extra: &str| {
        format!(
            "app \"vf\" {{\n    source \"repo\"\n    path \"charts/vf\"\n    cluster \"test\"\n    namespace \"demo\"\n    values-file \"values/prod.yaml\"\n    values-from configmap=\"flux-system/base\"\n    values-from secret=\"flux-system/creds\"\n    values-from secret=\"flux-system/creds\" values-key=\"password\" target-path=\"auth.password\"\n    values-from configmap=\"flux-system/base\" values-key=\"replicas\" target-path=\"replicas\"\n    values-from configmap=\"flux-system/base\" values-key=\"code\" target-path=\"code\"\n    values-from configmap=\"flux-system/absent\" optional=#true\n    values-from configmap=\"flux-system/base\" values-key=\"absent\" optional=#true\n    values \"b: inline\"\n    set-image \"nginx\" new-tag=\"1.28\"\n    patch kind=\"ConfigMap\" #\"\"\"\n        - op: add\n          path: /metadata/labels\n          value: {{patched: \"yes\"}}\n        \"\"\"#\n{extra}}}\n"
        )
    };
    fx.config_with("    log level=\"debug\"\n", &app(""));
    let (run, outcome) = fx.once("vf");
    assert_eq!(outcome["result"], "ok", "{outcome}\n{}", run.stderr);
    let cm = fx
        .object("v1", "ConfigMap", Some("demo"), "vf-values")
        .expect("the chart's ConfigMap");
    assert_eq!(
        cm["data"],
        serde_json::json!({
            "a": "from-cm", "b": "inline", "c": "from-file",
            "nested": "{\"w\":\"secret\",\"x\":\"cm\",\"z\":\"file\"}",
            "replicas": "int64 1234567", "code": "string 007",
        })
    );
    assert_eq!(cm["metadata"]["labels"]["patched"], "yes", "{cm}");
    let hook = fx
        .object("v1", "ConfigMap", Some("demo"), "vf-setup")
        .expect("the hook");
    assert!(
        hook["metadata"]["labels"]["patched"].is_null(),
        "hooks are not post-rendered: {hook}"
    );
    let deploy = fx
        .object("apps/v1", "Deployment", Some("demo"), "vf-web")
        .expect("the Deployment");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    let auth = fx
        .object("v1", "Secret", Some("demo"), "vf-auth")
        .expect("the chart's Secret");
    assert_eq!(auth["data"]["password"], b64(secret), "{auth}");
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "{run:?}"
    );
    crate::flux_apps::assert_no_secret_in(&fx.env.path().join("state"), secret);

    // `mooring render` reads them the same way.
    let render = fx.env.run(&["render", "app/vf", "-c", "mooring.kdl"]);
    render.expect_code(0);
    render.stdout_has("replicas: int64 1234567");

    // A Secret's values that are not YAML: the error names it, not its text.
    fx.config(&app(
        "    values-from secret=\"flux-system/creds\" values-key=\"broken\"\n",
    ));
    let (run, outcome) = fx.once("vf");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    let message = outcome.to_string();
    assert!(
        message.contains("Secret flux-system/creds key `broken`"),
        "{message}"
    );
    assert!(
        !message.contains(secret) && !run.stderr.contains(secret),
        "{message}\n{}",
        run.stderr
    );

    // A required object that is missing fails the app, naming it.
    fx.config(&app("    values-from secret=\"flux-system/absent\"\n"));
    let (run, outcome) = fx.once("vf");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    let message = outcome.to_string();
    assert!(
        message.contains("values-from Secret flux-system/absent: not found"),
        "{message}\n{}",
        run.stderr
    );
}
