//! The test API server (testkit/src/apiserver) cross-checked with the real
//! `kubectl`: if kubectl believes it, mooring's client can too. Each test
//! has its own server and its own kubectl discovery cache; every kubectl
//! call is killed (and the test failed) after 30 s.
//!
//! Needs kubectl 1.32 on PATH (OpenAPI v3, `--show-managed-fields`).
//! Debian's own `kubernetes-client` (bookworm: 1.20) is too old; the
//! `kubectl` package here comes from the Google Cloud SDK apt repository.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::apiserver::{ApiServer, Identity, Options, kubectl};
use crate::kube::patch_web;
use crate::support::{Run, output_within, wait_for};

const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);

const APP: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: demo
  labels:
    app: web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: demo
  labels:
    app: web
data:
  greeting: hello
"#;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#;

const WIDGET: &str = r#"apiVersion: example.com/v1
kind: Widget
metadata:
  name: gear
  namespace: demo
spec:
  size: 3
"#;

/// A server, a temp dir for manifests and kubectl's cache.
struct Kube {
    server: ApiServer,
    dir: tempfile::TempDir,
}

impl Kube {
    fn new() -> Kube {
        Kube::with(Options::default())
    }

    fn with(opts: Options) -> Kube {
        Kube {
            server: ApiServer::start_with(opts),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write manifest");
        path
    }

    /// `kubectl ARGS…` in the temp dir (paths relative to it).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = kubectl(&self.server, &self.dir.path().join("kube"));
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    /// Run `kubectl ARGS…`, killing it after [`KUBECTL_TIMEOUT`].
    fn kubectl(&self, args: &[&str]) -> Run {
        output_within(&mut self.command(args), KUBECTL_TIMEOUT).unwrap_or_else(|run| {
            panic!(
                "kubectl {args:?} still running after {KUBECTL_TIMEOUT:?}: {run:?}; requests:\n{}",
                self.server.requests().join("\n")
            )
        })
    }

    /// `kubectl apply --server-side --field-manager MANAGER MORE… -f app.yaml`.
    fn apply(&self, manager: &str, more: &[&str]) -> Run {
        let mut args = vec![
            "apply",
            "--server-side",
            "--field-manager",
            manager,
            "-f",
            "app.yaml",
        ];
        args.extend_from_slice(more);
        self.kubectl(&args)
    }

    /// [`Kube::apply`], which must succeed.
    #[track_caller]
    fn apply_ok(&self, manager: &str, more: &[&str]) -> Run {
        let run = self.apply(manager, more);
        run.expect_code(0);
        run
    }

    #[track_caller]
    fn ok(&self, args: &[&str]) -> Run {
        let run = self.kubectl(args);
        run.expect_code(0);
        run
    }

    /// Start `kubectl ARGS…` that runs until stopped (a watch): its
    /// stdout lines as they come; killed on drop.
    fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run kubectl 1.32 (on PATH? see the module doc)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running { child, lines: rx }
    }

    /// Object (apiVersion, kind, name) of namespace demo is gone: not
    /// stored, and `kubectl get` of it fails saying `message`.
    #[track_caller]
    fn assert_gone(&self, (api_version, kind, name): (&str, &str, &str), message: &str) {
        let stored = self.server.object(api_version, kind, Some("demo"), name);
        assert!(stored.is_none(), "{stored:?}");
        let run = self.kubectl(&["get", &kind.to_lowercase(), name, "-n", "demo"]);
        run.expect_code(1);
        run.stderr_has(message);
    }

    /// `kubectl get deploy web -n demo ARGS…`, which must succeed: its
    /// stdout.
    fn get_web(&self, args: &[&str]) -> String {
        self.ok(&[&["get", "deploy", "web", "-n", "demo"], args].concat())
            .stdout
    }

    fn deployment(&self) -> Value {
        self.server
            .object("apps/v1", "Deployment", Some("demo"), "web")
            .expect("deployment web stored")
    }
}

/// A kubectl that runs until stopped.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    /// `EVENT NAME`: the first two columns of the next line of a
    /// `--watch --output-watch-events` table (within 10 s).
    #[track_caller]
    fn event(&self) -> String {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(10))
            .expect("kubectl printed a line within 10 s");
        line.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rv(obj: &Value) -> &str {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .expect("resourceVersion")
}

fn managers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{}/{}",
                e["manager"].as_str().unwrap_or("?"),
                e["operation"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

#[test]
fn apply_get_and_delete() {
    let k = Kube::new();
    k.write("app.yaml", APP);
    let run = k.apply_ok("mooring-test", &[]);
    for line in [
        "namespace/demo serverside-applied",
        "deployment.apps/web serverside-applied",
        "configmap/settings serverside-applied",
    ] {
        assert!(run.stdout.contains(line), "{line} in\n{}", run.stdout);
    }
    let requests = k.server.requests();
    assert!(
        requests.iter().any(|r| r
            .starts_with("PATCH /apis/apps/v1/namespaces/demo/deployments/web?fieldManager=mooring-test")),
        "{requests:#?}"
    );

    let yaml = k.get_web(&["-o", "yaml", "--show-managed-fields"]);
    assert!(yaml.contains("manager: mooring-test"), "{yaml}");
    assert!(yaml.contains("operation: Apply"), "{yaml}");
    assert!(yaml.contains("image: nginx:1.27"), "{yaml}");
    assert!(yaml.contains("f:replicas: {}"), "{yaml}");
    let hidden = k.get_web(&["-o", "yaml"]);
    assert!(!hidden.contains("managedFields"), "{hidden}");

    let json: Value = serde_json::from_str(
        &k.ok(&["get", "configmap", "settings", "-n", "demo", "-o", "json"])
            .stdout,
    )
    .expect("kubectl -o json");
    assert_eq!(json["data"]["greeting"], "hello");
    assert_eq!(json["metadata"]["namespace"], "demo");
    assert!(json["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));

    let names = k
        .ok(&["get", "deploy,configmaps", "-n", "demo", "-o", "name"])
        .stdout;
    assert_eq!(names, "deployment.apps/web\nconfigmap/settings\n");

    let run = k.ok(&["delete", "deploy", "web", "-n", "demo"]);
    run.stdout_has("deployment.apps \"web\" deleted");
    k.assert_gone(
        ("apps/v1", "Deployment", "web"),
        "deployments.apps \"web\" not found",
    );

    // Deleting the namespace takes what is in it.
    k.ok(&["delete", "namespace", "demo"]);
    k.assert_gone(("v1", "ConfigMap", "settings"), "not found");
}

#[test]
fn reapplying_the_same_file_changes_nothing() {
    let k = Kube::new();
    k.write("app.yaml", APP);
    k.apply_ok("mooring-test", &[]);
    let before = k.server.objects();
    let deployment = k.deployment();
    assert_eq!(deployment["metadata"]["generation"], 1);

    k.apply_ok("mooring-test", &[]);
    assert_eq!(
        k.server.objects(),
        before,
        "byte-identical, resourceVersions and times included"
    );
    assert_eq!(rv(&k.deployment()), rv(&deployment));

    // A change bumps the resourceVersion and (outside metadata) the generation.
    k.write("app.yaml", &APP.replace("nginx:1.27", "nginx:1.28"));
    k.apply_ok("mooring-test", &[]);
    let after = k.deployment();
    assert_ne!(rv(&after), rv(&deployment));
    assert_eq!(after["metadata"]["generation"], 2);
    assert_eq!(
        after["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    let cm = k
        .server
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .expect("configmap");
    let cm_before = before
        .iter()
        .find(|o| o["metadata"]["name"] == "settings")
        .expect("configmap before");
    assert_eq!(&cm, cm_before, "untouched objects stay as they were");
    assert!(
        cm["metadata"].get("generation").is_none(),
        "ConfigMaps have no generation"
    );
}

#[test]
fn conflicts_with_kubectl_patch_and_force() {
    let k = Kube::new();
    k.write("app.yaml", APP);
    k.apply_ok("manager-a", &[]);
    k.ok(&patch_web(r#"{"spec":{"replicas":3}}"#))
        .stdout_has("deployment.apps/web patched");
    let patched = k.deployment();
    assert_eq!(patched["spec"]["replicas"], 3);
    assert_eq!(
        managers(&patched),
        [
            "manager-a/Apply",
            "kube-controller-manager/Update",
            "kubectl-patch/Update"
        ]
    );

    let run = k.apply("manager-a", &[]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has(
        r#"Apply failed with 1 conflict: conflict with "kubectl-patch" using apps/v1: .spec.replicas"#,
    );
    assert!(
        run.stderr.contains("--force-conflicts"),
        "kubectl's hint: {}",
        run.stderr
    );
    assert_eq!(k.deployment()["spec"]["replicas"], 3);

    k.apply_ok("manager-a", &["--force-conflicts"]);
    let forced = k.deployment();
    assert_eq!(forced["spec"]["replicas"], 1);
    assert_eq!(
        managers(&forced),
        ["manager-a/Apply", "kube-controller-manager/Update"]
    );

    // Now without conflicts.
    k.apply_ok("manager-a", &[]);

    // kubectl scale writes through the scale subresource (as an HPA would).
    let run = k.ok(&["scale", "deploy/web", "-n", "demo", "--replicas=2"]);
    run.stdout_has("deployment.apps/web scaled");
    assert_eq!(k.deployment()["spec"]["replicas"], 2);
    let run = k.apply("manager-a", &[]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has(r#"conflict with "kubectl" with subresource "scale" using apps/v1: .spec.replicas"#);
}

#[test]
fn server_dry_run_stores_nothing() {
    let k = Kube::new();
    k.write("app.yaml", APP);
    k.ok(&["create", "namespace", "demo"]);
    let before = k.server.objects();

    let run = k.apply_ok("m", &["--dry-run=server"]);
    run.stdout_has("deployment.apps/web serverside-applied (server dry run)");
    assert_eq!(k.server.objects(), before);
    let requests = k.server.requests();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/deployments/web?") && r.contains("dryRun=All")),
        "{requests:#?}"
    );

    // A dry run over a live object answers the change but keeps it.
    k.apply_ok("m", &[]);
    let live = k.deployment();
    k.write("app.yaml", &APP.replace("replicas: 1", "replicas: 4"));
    k.apply_ok("m", &["--dry-run=server", "-o", "json"])
        .stdout_has(r#""replicas": 4"#);
    assert_eq!(k.deployment(), live);

    // kubectl diff: a server dry run that must keep the live resourceVersion.
    k.write("app.yaml", APP);
    let diff = k.kubectl(&["diff", "--server-side", "--field-manager", "m", "-f", "app.yaml"]);
    if diff.stderr.contains("executable file not found") {
        crate::support::skip(
            "apiserver_kubectl::server_dry_run_stores_nothing",
            "(kubectl diff part) no `diff` program (Debian package diffutils)",
        );
        return;
    }
    assert_eq!(diff.code, 0, "no difference expected: {diff:?}");
}

#[test]
fn crd_then_custom_resource() {
    let k = Kube::new();
    k.write("crd.yaml", CRD);
    k.write("widget.yaml", WIDGET);
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&["apply", "--server-side", "-f", "crd.yaml"]);
    let crd = k
        .server
        .object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "widgets.example.com",
        )
        .expect("crd");
    let conditions = crd["status"]["conditions"].as_array().expect("conditions");
    for t in ["NamesAccepted", "Established"] {
        assert!(
            conditions.iter().any(|c| c["type"] == t && c["status"] == "True"),
            "{crd}"
        );
    }

    let run = k.ok(&["apply", "--server-side", "-f", "widget.yaml"]);
    run.stdout_has("widget.example.com/gear serverside-applied");
    let listed = k.ok(&["get", "widgets", "-n", "demo"]).stdout;
    assert!(listed.contains("gear"), "{listed}");
    let short = k.ok(&["get", "wd", "-A", "-o", "name"]).stdout;
    assert_eq!(short, "widget.example.com/gear\n");
    let widget = k
        .server
        .object("example.com/v1", "Widget", Some("demo"), "gear")
        .expect("widget");
    assert_eq!(widget["spec"]["size"], 3);
    assert_eq!(widget["metadata"]["generation"], 1);

    // Deleting the CRD takes its resources and the type.
    k.ok(&["delete", "crd", "widgets.example.com"]);
    assert!(
        k.server
            .object("example.com/v1", "Widget", Some("demo"), "gear")
            .is_none()
    );
    let run = k.kubectl(&["get", "widgets", "-n", "demo"]);
    assert_ne!(run.code, 0, "{run:?}");
}

#[test]
fn label_selectors_filter_lists() {
    let k = Kube::new();
    k.ok(&["create", "namespace", "demo"]);
    for (name, labels) in [("a", "app=x"), ("b", "app=y"), ("c", "")] {
        k.ok(&["create", "configmap", name, "-n", "demo", "--from-literal=k=v"]);
        if !labels.is_empty() {
            k.ok(&["label", "configmap", name, "-n", "demo", labels]);
        }
    }
    let get = |selector: &str| {
        k.ok(&["get", "configmaps", "-n", "demo", "-l", selector, "-o", "name"])
            .stdout
    };
    assert_eq!(get("app=x"), "configmap/a\n");
    assert_eq!(get("app!=x"), "configmap/b\nconfigmap/c\n");
    assert_eq!(get("app in (x,y)"), "configmap/a\nconfigmap/b\n");
    assert_eq!(get("!app"), "configmap/c\n");
    let all = k
        .ok(&["get", "configmaps", "-A", "-l", "app", "-o", "name"])
        .stdout;
    assert_eq!(all, "configmap/a\nconfigmap/b\n");
    let by_name = k
        .ok(&[
            "get",
            "configmaps",
            "-A",
            "--field-selector",
            "metadata.name=b",
            "-o",
            "name",
        ])
        .stdout;
    assert_eq!(by_name, "configmap/b\n");
    // kubectl label is a merge patch by manager kubectl-label.
    let a = k.server.object("v1", "ConfigMap", Some("demo"), "a").expect("a");
    assert_eq!(managers(&a), ["kubectl-create/Update", "kubectl-label/Update"]);
}

fn ready(d: &Value) -> bool {
    let replicas = d["spec"]["replicas"].as_u64().unwrap_or(1);
    d["status"]["readyReplicas"].as_u64() == Some(replicas)
        && d["status"]["observedGeneration"] == d["metadata"]["generation"]
}

/// Poll until the deployment is ready (10 s at most).
fn wait_ready(k: &Kube) {
    wait_for(Duration::from_secs(10), "the deployment ready", || {
        let d = k.deployment();
        if ready(&d) {
            Ok(())
        } else {
            Err(format!("it is {d}"))
        }
    });
}

fn web(image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image}]}
            }
        }
    })
}

fn create_demo(k: &Kube) {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
    k.server.apply("test", false, &ns).expect("namespace");
}

#[test]
fn deployments_become_ready_after_the_rollout_delay() {
    let k = Kube::with(Options {
        rollout_delay: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    create_demo(&k);
    let start = Instant::now();
    // The answer to the write shows the state at that moment.
    let fresh = k.server.apply("test", false, &web("nginx:1")).expect("apply");
    assert!(!ready(&fresh), "{fresh}");
    assert!(fresh["status"].get("observedGeneration").is_none(), "{fresh}");
    wait_ready(&k);
    assert!(start.elapsed() >= Duration::from_millis(200));
    let done = k.deployment();
    assert_ne!(rv(&done), rv(&fresh), "a status change is a change");
    let status = &done["status"];
    assert_eq!(status["availableReplicas"], 1);
    assert_eq!(status["updatedReplicas"], 1);
    let conditions = status["conditions"].as_array().expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True")
    );
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable")
    );

    // A new generation: the old one stays observed until the delay passes.
    let start = Instant::now();
    let rolling = k.server.apply("test", false, &web("nginx:2")).expect("apply");
    assert_eq!(rolling["metadata"]["generation"], 2);
    assert_eq!(rolling["status"]["observedGeneration"], 1);
    assert!(!ready(&rolling));
    wait_ready(&k);
    assert!(start.elapsed() >= Duration::from_millis(200));

    // kubectl sees the change with nothing else asking in between.
    k.server.apply("test", false, &web("nginx:3")).expect("apply");
    wait_for(
        Duration::from_secs(10),
        "kubectl to see generation 3 ready",
        || {
            let seen = k.get_web(&[
                "-o",
                "jsonpath={.status.observedGeneration}/{.status.readyReplicas}",
            ]);
            if seen == "3/1" {
                Ok(())
            } else {
                Err(format!("kubectl saw {seen}"))
            }
        },
    );
}

#[test]
fn without_a_rollout_delay_workloads_wait_for_set_ready() {
    let k = Kube::with(Options {
        rollout_delay: None,
        ..Options::default()
    });
    create_demo(&k);
    k.server.apply("test", false, &web("nginx:1")).expect("apply");
    for _ in 0..4 {
        assert!(!ready(&k.deployment()), "{}", k.deployment());
        std::thread::sleep(Duration::from_millis(75));
    }
    k.server.set_ready("apps/v1", "Deployment", Some("demo"), "web");
    assert!(ready(&k.deployment()), "{}", k.deployment());
    // Until the next change of generation.
    k.server.apply("test", false, &web("nginx:2")).expect("apply");
    assert!(!ready(&k.deployment()));
}

#[test]
fn never_ready_annotation_holds_back_whatever_the_delay() {
    let k = Kube::new();
    create_demo(&k);
    let mut d = web("nginx:1");
    d["metadata"]["annotations"] = json!({"test.mooring.dev/never-ready": "true"});
    k.server.apply("test", false, &d).expect("apply");
    std::thread::sleep(Duration::from_millis(50));
    assert!(!ready(&k.deployment()));
    // Dropping the annotation releases it (the default delay is zero).
    k.server.apply("test", false, &web("nginx:1")).expect("apply");
    let plain = k.deployment();
    assert!(plain["metadata"].get("annotations").is_none(), "{plain}");
    assert!(ready(&plain), "{plain}");
}

#[test]
fn errors_are_status_objects() {
    let k = Kube::new();
    let run = k.kubectl(&["get", "--raw", "/apis/nope.example.com/v1"]);
    run.expect_code(1);
    assert!(
        run.stderr.contains("NotFound") || run.stderr.contains("not find"),
        "{}",
        run.stderr
    );
    k.ok(&["create", "configmap", "dup", "-n", "default"]);
    let run = k.kubectl(&["create", "configmap", "dup", "-n", "default"]);
    run.expect_code(1);
    run.stderr_has(r#"configmaps "dup" already exists"#);
    let run = k.kubectl(&["create", "configmap", "x", "-n", "missing"]);
    run.expect_code(1);
    run.stderr_has(r#"namespaces "missing" not found"#);
    let version = k.ok(&["version", "-o", "json"]).stdout;
    assert!(version.contains("v1.32.0"), "{version}");
}

#[test]
fn kubectl_watches_see_changes_in_order() {
    let k = Kube::new();
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&["create", "configmap", "a", "-n", "demo"]);
    let listed = k
        .server
        .call("GET", "/api/v1/namespaces/demo/configmaps", "", b"")
        .expect("list");
    let rv = listed["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let watch = k.spawn(&[
        "get",
        "configmaps",
        "-n",
        "demo",
        "--watch",
        "--output-watch-events",
        "--no-headers",
    ]);
    assert_eq!(watch.event(), "ADDED a");
    let cm = |name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "demo"}});
    k.server.apply("test", false, &cm("b")).expect("b");
    assert_eq!(watch.event(), "ADDED b");
    k.server
        .merge_patch("test", &cm("a"), &json!({"data": {"k": "v"}}))
        .expect("patch a");
    assert_eq!(watch.event(), "MODIFIED a");
    k.server.delete(&cm("b")).expect("delete b");
    assert_eq!(watch.event(), "DELETED b");
    drop(watch);

    // A watch from before a compaction: one ERROR event with 410, and the
    // stream ends.
    k.server.compact();
    let raw = k
        .ok(&[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/demo/configmaps?watch=1&resourceVersion={rv}"),
        ])
        .stdout;
    let event: Value = serde_json::from_str(raw.trim()).expect("one JSON event");
    assert_eq!(event["type"], "ERROR", "{raw}");
    assert_eq!(event["object"]["code"], 410, "{raw}");
}

#[test]
fn kubectl_shows_immutable_field_errors_from_their_causes() {
    let k = Kube::with(Options {
        immutable_fields: true,
        ..Options::default()
    });
    k.write("app.yaml", APP);
    k.ok(&["apply", "--server-side", "-f", "app.yaml"]);
    k.write("app.yaml", &APP.replace("app: web", "app: web2"));
    let run = k.kubectl(&["apply", "--server-side", "-f", "app.yaml"]);
    assert_ne!(run.code, 0, "{run:?}");
    // kubectl words an Invalid error from details.kind, .name and .causes.
    run.stderr_has(r#"The Deployment "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web2"}}: field is immutable"#);
    // Names by kind, the same way.
    k.write(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n  namespace: demo\n",
    );
    let run = k.kubectl(&["apply", "--server-side", "-f", "bad.yaml"]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has(r#"The ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain"#);
}

#[test]
fn kubectl_waits_for_a_crd_to_be_established() {
    let k = Kube::with(Options {
        crd_delay: Duration::from_millis(500),
        ..Options::default()
    });
    k.write("crd.yaml", CRD);
    k.write("widget.yaml", WIDGET);
    k.ok(&["create", "namespace", "demo"]);
    k.ok(&["apply", "--server-side", "-f", "crd.yaml"]);
    let early = k.kubectl(&["apply", "--server-side", "-f", "widget.yaml"]);
    assert_ne!(early.code, 0, "applied before the CRD was established: {early:?}");
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=20s",
    ]);
    k.ok(&["apply", "--server-side", "-f", "widget.yaml"]);
}

#[test]
fn kubectl_delete_waits_for_a_terminating_namespace() {
    let k = Kube::with(Options {
        delete_delay: Some(Duration::from_millis(200)),
        ..Options::default()
    });
    k.write("app.yaml", APP);
    k.ok(&["apply", "--server-side", "-f", "app.yaml"]);
    // A finalizer nobody removes keeps the namespace Terminating.
    let hold = |finalizers: &str| {
        let patch = format!(r#"{{"metadata":{{"finalizers":{finalizers}}}}}"#);
        k.ok(&[
            "patch",
            "configmap",
            "settings",
            "-n",
            "demo",
            "--type=merge",
            "-p",
            &patch,
        ]);
    };
    hold(r#"["example.com/hold"]"#);
    k.ok(&["delete", "namespace", "demo", "--wait=false"]);
    let phase = k
        .ok(&["get", "namespace", "demo", "-o", "jsonpath={.status.phase}"])
        .stdout;
    assert_eq!(phase, "Terminating");
    let run = k.kubectl(&["create", "configmap", "new", "-n", "demo"]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has(r#"configmaps "new" is forbidden: unable to create new content in namespace demo because it is being terminated"#);
    // Release it; `kubectl delete` (which waits through a watch) returns once it is gone.
    hold("null");
    k.ok(&["delete", "namespace", "demo", "--ignore-not-found"]);
    assert!(k.server.object("v1", "Namespace", None, "demo").is_none());
    let run = k.kubectl(&["get", "namespace", "demo"]);
    assert_ne!(run.code, 0, "{run:?}");
}

#[test]
fn kubectl_sees_rbac_refusals_of_a_namespace_scoped_identity() {
    let k = Kube::with(Options {
        identity: Some(Identity {
            user: "system:serviceaccount:demo:mooring".into(),
            namespaces: vec!["default".into()],
        }),
        ..Options::default()
    });
    k.ok(&["create", "configmap", "mine", "-n", "default"]);
    assert_eq!(
        k.ok(&["get", "configmaps", "-n", "default", "-o", "name"]).stdout,
        "configmap/mine\n"
    );
    let run = k.kubectl(&["get", "configmaps", "-A"]);
    assert_ne!(run.code, 0, "{run:?}");
    run.stderr_has(r#"Error from server (Forbidden): configmaps is forbidden: User "system:serviceaccount:demo:mooring" cannot list resource "configmaps" in API group "" at the cluster scope"#);
}
