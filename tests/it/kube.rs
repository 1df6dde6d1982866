//! Apps applied to a cluster, end to end: the real binary against the test
//! API server (testkit/src/apiserver), sources from a git repository over
//! file://, the real kubectl to cross-check and to make drift. The safety
//! rules (prune, recreate, CRDs, terminating namespaces, names,
//! permissions), against a server with its real-server options on, are in
//! kube_safety.rs.

use serde_json::Value;

use crate::apiserver::{ApiServer, Options, kubectl};
use crate::gitserver::Repo;
use crate::support::{Run, TestEnv, checked};

pub const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n";
pub const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n";
pub const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: demo\ndata:\n  greeting: hello\n";

pub struct Fixture {
    pub env: TestEnv,
    pub repo: Repo,
    pub server: ApiServer,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with(Options::default())
    }

    pub fn with(opts: Options) -> Fixture {
        let env = TestEnv::new();
        let repo = Repo::new(&env.path().join("git"));
        repo.write(&[
            ("web/namespace.yaml", NAMESPACE),
            ("web/deploy.yaml", DEPLOY),
            ("web/settings.yaml", CONFIGMAP),
        ]);
        repo.commit("first");
        repo.publish();
        let server = ApiServer::start_with(opts);
        server.kubeconfig(&env.path().join("kubeconfig"));
        Fixture { env, repo, server }
    }

    /// A config with source `repo`, cluster `test` and `apps`.
    pub fn config(&self, apps: &str) {
        self.config_with("", apps);
    }

    /// [`Fixture::config`] with more lines in `agent { … }`.
    pub fn config_with(&self, agent: &str, apps: &str) {
        let text = format!(
            "agent {{\n    state-dir \"state\"\n{agent}}}\ncluster \"test\" {{\n    kubeconfig \"kubeconfig\"\n}}\nsource \"repo\" {{\n    git \"{}\"\n}}\n{apps}",
            self.repo.file_url()
        );
        self.env.write("mooring.kdl", &text);
    }

    pub fn commit(&self, files: &[(&str, &str)], remove: &[&str], message: &str) {
        self.repo.write(files);
        for f in remove {
            std::fs::remove_file(self.repo.work.join(f)).expect("remove file from the work tree");
        }
        self.repo.commit(message);
        self.repo.publish();
    }

    /// `mooring once app/NAME --format json`: the run and the app's outcome.
    pub fn once(&self, app: &str) -> (Run, Value) {
        let run = self.env.run(&[
            "once",
            "-v",
            &format!("app/{app}"),
            "-c",
            "mooring.kdl",
            "--format",
            "json",
        ]);
        let all = run.json();
        let outcome = all
            .as_array()
            .and_then(|a| a.iter().find(|o| o["kind"] == "app" && o["name"] == app))
            .cloned()
            .unwrap_or_else(|| panic!("no app/{app} in\n{}\n{}", run.stdout, run.stderr));
        (run, outcome)
    }

    #[track_caller]
    pub fn once_ok(&self, app: &str) -> Value {
        let (run, outcome) = self.once(app);
        assert_eq!(outcome["result"], "ok", "{outcome}\n--- stderr\n{}", run.stderr);
        run.expect_code(0);
        outcome["applied"].clone()
    }

    pub fn object(&self, api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> Option<Value> {
        self.server.object(api_version, kind, ns, name)
    }

    pub fn deploy(&self) -> Value {
        self.object("apps/v1", "Deployment", Some("demo"), "web")
            .expect("deployment web")
    }

    /// `kubectl ARGS…`, which must succeed: its stdout.
    #[track_caller]
    pub fn kubectl(&self, args: &[&str]) -> String {
        checked(kubectl(&self.server, &self.env.path().join("kubectl")).args(args))
    }
}

/// `kubectl patch deploy web -n demo --type=merge -p PATCH`: a change by
/// hand to the Deployment every app here applies.
pub fn patch_web(patch: &str) -> [&str; 8] {
    [
        "patch",
        "deploy",
        "web",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        patch,
    ]
}

pub fn app(name: &str, extra: &str) -> String {
    format!("app \"{name}\" {{\n    source \"repo\"\n    path \"web\"\n    cluster \"test\"\n{extra}}}\n")
}

pub fn counts(applied: &Value) -> [u64; 4] {
    ["created", "configured", "unchanged", "pruned"].map(|k| applied[k].as_u64().unwrap_or(u64::MAX))
}

pub fn rv(v: &Value) -> String {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn managers(v: &Value) -> Vec<String> {
    v["metadata"]["managedFields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["manager"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn first_apply_then_a_no_op_reapply_changes_nothing() {
    let f = Fixture::new();
    f.config(&app("web", ""));
    assert_eq!(counts(&f.once_ok("web")), [3, 0, 0, 0]);
    let deploy = f.deploy();
    assert!(managers(&deploy).contains(&"mooring".to_string()), "{deploy}");
    assert_eq!(deploy["metadata"]["labels"]["app.mooring.dev/name"], "web");
    let inventory = f
        .object("v1", "ConfigMap", Some("default"), "mooring-inventory-web")
        .expect("the inventory ConfigMap");
    let entries: Value =
        serde_json::from_str(inventory["data"]["entries"].as_str().expect("entries")).expect("JSON");
    assert_eq!(entries.as_array().map(Vec::len), Some(3), "{entries}");

    let before: Vec<String> = f.server.objects().iter().map(rv).collect();
    f.server.clear_requests();
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 3, 0]);
    let after: Vec<String> = f.server.objects().iter().map(rv).collect();
    assert_eq!(before, after, "a no-op apply changed resourceVersions");
    let writes: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET") && !r.contains("dryRun"))
        .collect();
    assert_eq!(
        writes.len(),
        3,
        "one apply per object and no other write: {writes:#?}"
    );

    // kubectl sees what mooring applied, under mooring's field manager.
    let yaml = f.kubectl(&[
        "get",
        "deploy/web",
        "-n",
        "demo",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    assert!(yaml.contains("manager: mooring"), "{yaml}");
}

#[test]
fn drift_made_by_hand_is_undone_and_a_conflict_with_another_applier_is_reported() {
    let f = Fixture::new();
    f.config(&app("web", ""));
    f.once_ok("web");
    // `kubectl scale`-style drift: an update by another manager.
    f.kubectl(&patch_web(r#"{"spec":{"replicas":5}}"#));
    assert_eq!(f.deploy()["spec"]["replicas"], 5);
    assert_eq!(counts(&f.once_ok("web")), [0, 1, 2, 0]);
    assert_eq!(f.deploy()["spec"]["replicas"], 1, "drift not undone");

    // Another server-side applier owns replicas now: that is a conflict.
    let other = f.env.write(
        "other.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  replicas: 3\n",
    );
    let other = other.display().to_string();
    f.kubectl(&[
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager",
        "other-tool",
        "-f",
        &other,
    ]);
    let (run, outcome) = f.once("web");
    run.expect_code(1);
    assert_eq!(outcome["reason"], "ApplyFailed", "{outcome}");
    let error = outcome["error"].as_str().expect("error");
    assert!(
        error.contains("web/deploy.yaml:1")
            && error.contains("other-tool")
            && error.contains(".spec.replicas"),
        "{error}"
    );
    assert!(error.contains("force #true"), "{error}");
    assert_eq!(f.deploy()["spec"]["replicas"], 3);

    // `force #true` takes the field over.
    f.config(&app("web", "    force #true\n"));
    f.once_ok("web");
    assert_eq!(f.deploy()["spec"]["replicas"], 1);
}

#[test]
fn objects_that_leave_git_are_pruned_unless_marked() {
    let f = Fixture::new();
    let kept = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: demo\n  annotations:\n    mooring.dev/prune: disabled\n";
    f.commit(&[("web/kept.yaml", kept)], &[], "a kept configmap");
    f.config(&app("web", "    prune #true\n"));
    assert_eq!(counts(&f.once_ok("web")), [4, 0, 0, 0]);
    // Something mooring never applied, in the same namespace.
    let foreign = f.env.write(
        "foreign.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: foreign\n  namespace: demo\n",
    );
    f.kubectl(&["apply", "--server-side", "-f", &foreign.display().to_string()]);

    f.commit(
        &[],
        &["web/settings.yaml", "web/kept.yaml"],
        "drop two configmaps",
    );
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 2, 1]);
    assert!(
        f.object("v1", "ConfigMap", Some("demo"), "settings").is_none(),
        "not pruned"
    );
    assert!(
        f.object("v1", "ConfigMap", Some("demo"), "kept").is_some(),
        "prune: disabled was deleted"
    );
    assert!(
        f.object("v1", "ConfigMap", Some("demo"), "foreign").is_some(),
        "a foreign object was touched"
    );
}

#[test]
fn a_new_agent_takes_over_from_the_inventory_in_the_cluster() {
    let f = Fixture::new();
    f.config(&app("web", "    prune #true\n"));
    f.once_ok("web");
    // A fresh state dir: nothing on disk remembers the first run.
    std::fs::remove_dir_all(f.env.path().join("state")).expect("remove state");
    f.commit(&[], &["web/settings.yaml"], "drop settings");
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 2, 1]);
}

#[test]
fn crds_then_namespaces_then_the_rest_and_custom_resources_in_one_app() {
    let f = Fixture::new();
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}\n";
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: demo\nspec:\n  size: 3\n";
    // File order puts the widget first and the CRD and namespace last.
    f.commit(
        &[("web/a-widget.yaml", widget), ("web/z-crd.yaml", crd)],
        &[],
        "a widget",
    );
    f.config(&app("web", ""));
    f.server.clear_requests();
    assert_eq!(counts(&f.once_ok("web")), [5, 0, 0, 0]);
    assert!(f.object("example.com/v1", "Widget", Some("demo"), "w1").is_some());
    let patches: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("PATCH") && !r.contains("mooring-inventory"))
        .collect();
    let at = |needle: &str| {
        patches
            .iter()
            .position(|r| r.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} in {patches:#?}"))
    };
    assert!(
        at("customresourcedefinitions") < at("/namespaces/demo?"),
        "{patches:#?}"
    );
    assert!(at("/namespaces/demo?") < at("/deployments/web"), "{patches:#?}");
    assert!(at("/namespaces/demo?") < at("/widgets/w1"), "{patches:#?}");
}

#[test]
fn wait_times_out_naming_what_is_not_ready_and_depends_on_waits() {
    let f = Fixture::with(Options {
        rollout_delay: None,
        ..Options::default()
    });
    f.config(&format!(
        "{}{}",
        app("web", "    wait timeout=\"1s\"\n"),
        "app \"after\" {\n    source \"repo\"\n    path \"web/settings.yaml\"\n    cluster \"test\"\n    namespace \"other\"\n    depends-on \"web\"\n}\n"
    ));
    let run = f.env.run(&["once", "-v", "-c", "mooring.kdl"]);
    run.expect_code(1);
    let web = run
        .stdout
        .lines()
        .find(|l| l.starts_with("app/web"))
        .expect("web line");
    assert!(
        web.contains("HealthCheckFailed") && web.contains("Deployment/demo/web"),
        "{}",
        run.stdout
    );
    let after = run
        .stdout
        .lines()
        .find(|l| l.starts_with("app/after"))
        .expect("after line");
    assert!(after.contains("DependencyNotReady"), "{}", run.stdout);

    f.server.set_ready("apps/v1", "Deployment", Some("demo"), "web");
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 3, 0]);
}

#[test]
fn diff_shows_what_would_change_and_exits_by_result() {
    let f = Fixture::new();
    f.config(&app("web", "    prune #true\n"));
    let diff = |f: &Fixture| f.env.run(&["diff", "app/web", "-c", "mooring.kdl"]);
    // Nothing applied yet: everything is new.
    let run = diff(&f);
    run.expect_code(1);
    run.stdout_has("+++ desired/Deployment/demo/web");
    f.once_ok("web");
    diff(&f).expect_code(0);
    assert!(f.object("v1", "ConfigMap", Some("demo"), "settings").is_some());

    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: demo\nstringData:\n  password: hunter2\n";
    f.commit(
        &[
            ("web/settings.yaml", &CONFIGMAP.replace("hello", "bonjour")),
            ("web/secret.yaml", secret),
        ],
        &["web/namespace.yaml"],
        "change",
    );
    let before: Vec<String> = f.server.objects().iter().map(rv).collect();
    let run = diff(&f);
    run.expect_code(1);
    run.stdout_has("-  greeting: hello\n+  greeting: bonjour\n");
    assert!(
        run.stdout.contains("--- live/Namespace/demo"),
        "the prune shows: {}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("hunter2"),
        "a secret value leaked: {}",
        run.stdout
    );
    assert!(!run.stdout.contains("managedFields"), "{}", run.stdout);
    let after: Vec<String> = f.server.objects().iter().map(rv).collect();
    assert_eq!(before, after, "diff changed the cluster");

    // An unreachable cluster is an error.
    let dead = format!("http://127.0.0.1:{}", crate::support::free_port());
    let kubeconfig = f.env.read("kubeconfig").replace(&f.server.url(), &dead);
    f.env.write("kubeconfig", &kubeconfig);
    let run = diff(&f);
    run.expect_code(2);
    run.stderr_has("cannot reach the cluster");
}

#[test]
fn a_broken_manifest_applies_nothing() {
    let f = Fixture::new();
    f.commit(
        &[(
            "web/zz.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n",
        )],
        &[],
        "broken",
    );
    f.config(&app("web", ""));
    f.server.clear_requests();
    let (run, outcome) = f.once("web");
    run.expect_code(1);
    assert_eq!(outcome["reason"], "RenderFailed", "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .is_some_and(|e| e.contains("web/zz.yaml:4")),
        "{outcome}"
    );
    assert!(f.server.requests().is_empty(), "{:#?}", f.server.requests());
    assert!(f.object("apps/v1", "Deployment", Some("demo"), "web").is_none());
}

#[test]
fn render_prints_the_manifests() {
    let f = Fixture::new();
    f.config(&app("web", "    substitute {\n        who \"world\"\n    }\n"));
    f.commit(
        &[("web/settings.yaml", &CONFIGMAP.replace("hello", "hello ${who}"))],
        &[],
        "subst",
    );
    let run = f.env.run(&["render", "app/web", "-c", "mooring.kdl"]);
    run.expect_code(0);
    run.stdout_has("greeting: hello world");
    run.stdout_has("# web/deploy.yaml:1");
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with("# web/")).count(),
        3,
        "{}",
        run.stdout
    );
}

/// Plain scalars in every form YAML 1.1 and 1.2 read differently.
const SCALARS: [&str; 42] = [
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "Y",
    "N",
    "Yes",
    "NO",
    "True",
    "TRUE",
    "true",
    "False",
    "010",
    "0o10",
    "0x1F",
    "0X1F",
    "1_000",
    "1:20",
    "190:20:30",
    "1e3",
    "1E3",
    "1.0",
    "+1",
    "-0",
    "0b101",
    "~",
    "null",
    "Null",
    "2001-12-14",
    "12:30:45",
    "0.5e+2",
    ".5",
    "+.5",
    "1.",
    "0644",
    "08",
    "-010",
    "1__0",
    "0x_1",
    "+0x10",
];

/// A ConfigMap named `name` whose data holds [`SCALARS`], unquoted.
fn odd(name: &str) -> String {
    let mut text = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (i, s) in SCALARS.iter().enumerate() {
        text.push_str(&format!("  k{i:02}: {s}\n"));
    }
    text
}

/// The data of a ConfigMap in `default`.
fn data(server: &ApiServer, name: &str) -> Value {
    server
        .object("v1", "ConfigMap", Some("default"), name)
        .unwrap_or_else(|| panic!("ConfigMap {name}"))["data"]
        .clone()
}

#[test]
fn scalars_reach_the_cluster_typed_as_kustomize_and_helm_type_them() {
    let f = Fixture::new();
    f.commit(
        &[
            ("odd/odd.yaml", &odd("plain")),
            ("chart/Chart.yaml", "apiVersion: v2\nname: odd\nversion: 0.1.0\n"),
            ("chart/templates/odd.yaml", &odd("chart")),
        ],
        &[],
        "odd scalars",
    );
    f.config(
        "app \"plain\" {\n    source \"repo\"\n    path \"odd\"\n    cluster \"test\"\n}\napp \"chart\" {\n    source \"repo\"\n    path \"chart\"\n    cluster \"test\"\n    release \"odd\"\n}\n",
    );
    f.once_ok("plain");
    f.once_ok("chart");

    // The oracles, each on its own server: Flux applies a plain directory
    // as `kustomize build` writes it; Helm's client reads a chart's output
    // as kubectl reads a file (sigs.k8s.io/yaml, YAML 1.1).
    let oracle = ApiServer::start();
    let dir = f.env.path().join("oracle");
    std::fs::create_dir_all(dir.join("k")).unwrap();
    std::fs::write(dir.join("k/odd.yaml"), odd("plain")).unwrap();
    std::fs::write(dir.join("k/kustomization.yaml"), "resources: [odd.yaml]\n").unwrap();
    std::fs::write(dir.join("chart.yaml"), odd("chart")).unwrap();
    let apply = |args: &[&str]| {
        checked(
            kubectl(&oracle, &dir.join("kubectl"))
                .args(["apply", "--server-side", "--validate=false"])
                .args(args),
        )
    };
    apply(&["-k", &dir.join("k").to_string_lossy()]);
    apply(&["-f", &dir.join("chart.yaml").to_string_lossy()]);

    let (plain, chart) = (data(&f.server, "plain"), data(&f.server, "chart"));
    assert_eq!(plain, data(&oracle, "plain"));
    assert_eq!(chart, data(&oracle, "chart"));
    // Where the two readings part, and where both read 0644 as octal.
    assert_eq!(
        (&plain["k00"], &chart["k00"]),
        (&Value::from("yes"), &Value::from(true))
    );
    assert_eq!(
        (&plain["k36"], &chart["k36"]),
        (&Value::from(420), &Value::from(420))
    );
}

#[test]
fn identity_fields_must_be_strings() {
    let f = Fixture::new();
    f.commit(
        &[(
            "web/settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: 123\n",
        )],
        &[],
        "a number for a name",
    );
    f.config(&app("web", ""));
    let (run, outcome) = f.once("web");
    assert_eq!(outcome["result"], "failed", "{outcome}");
    run.stderr_has(
        "web/settings.yaml:4:9: metadata.name must be a string, not the number 123; quote it: \"123\"",
    );
}

#[test]
fn a_list_in_a_plain_directory_is_applied_item_by_item_as_kustomize_expands_it() {
    let f = Fixture::new();
    // As `kubectl get configmaps -o yaml` writes them, a list nested in it.
    let list = "apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a, namespace: demo}\n  data: {on: yes}\n- apiVersion: v1\n  kind: ConfigMapList\n  items:\n  - {apiVersion: v1, kind: ConfigMap, metadata: {name: b, namespace: demo}}\n";
    f.commit(&[("web/list.yaml", list)], &[], "a list");
    f.config(&app("web", "    prune #true\n"));
    let applied = f.once_ok("web");
    assert_eq!(counts(&applied), [5, 0, 0, 0], "{applied}");
    let a = f.object("v1", "ConfigMap", Some("demo"), "a").expect("item a");
    assert_eq!(a["data"], serde_json::json!({"on": "yes"}));
    assert!(
        f.object("v1", "ConfigMap", Some("demo"), "b").is_some(),
        "the nested list's item"
    );

    // The items are the app's like any object: gone from the list, pruned.
    f.commit(
        &[(
            "web/list.yaml",
            &list[..list
                .find("- apiVersion: v1\n  kind: ConfigMapList")
                .unwrap_or(list.len())],
        )],
        &[],
        "b goes",
    );
    let applied = f.once_ok("web");
    assert_eq!(counts(&applied), [0, 0, 4, 1], "{applied}");
    assert!(f.object("v1", "ConfigMap", Some("demo"), "b").is_none());
}
