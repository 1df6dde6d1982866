//! The rules that keep applying and pruning from harming a cluster, one
//! test each, against a test API server that disagrees as a real one does
//! (testkit/src/apiserver: immutable fields, CRDs established late,
//! terminating namespaces, RBAC, failing writes). Each test fails when the
//! code of its rule is removed; docs/kubernetes.md promises these rules.

use std::time::Duration;

use serde_json::{Value, json};

use crate::apiserver::{Identity, Options};
use crate::kube::{CONFIGMAP, DEPLOY, Fixture, NAMESPACE, app, counts};
use crate::support::wait_until;

const OWNER: &str = "app.mooring.dev/name";

fn owner(obj: &Value) -> &str {
    obj["metadata"]["labels"][OWNER].as_str().unwrap_or_default()
}

fn uid(obj: &Value) -> String {
    obj["metadata"]["uid"].as_str().unwrap_or_default().to_string()
}

/// The inventory ConfigMap's entries as `Kind/ns/name`, sorted.
fn inventory(f: &Fixture, namespace: &str, app: &str) -> Vec<String> {
    let Some(cm) = f.object(
        "v1",
        "ConfigMap",
        Some(namespace),
        &format!("mooring-inventory-{app}"),
    ) else {
        return Vec::new();
    };
    let entries: Value =
        serde_json::from_str(cm["data"]["entries"].as_str().expect("entries")).expect("JSON");
    let mut out: Vec<String> = entries
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| match e["namespace"].as_str() {
            Some(ns) => format!(
                "{}/{ns}/{}",
                e["kind"].as_str().unwrap_or("?"),
                e["name"].as_str().unwrap_or("?")
            ),
            None => format!(
                "{}/{}",
                e["kind"].as_str().unwrap_or("?"),
                e["name"].as_str().unwrap_or("?")
            ),
        })
        .collect();
    out.sort();
    out
}

/// Every object labelled as the app's, as `Kind/ns/name`, sorted.
fn owned(f: &Fixture, app: &str) -> Vec<String> {
    let mut out: Vec<String> = f
        .server
        .objects()
        .iter()
        .filter(|o| owner(o) == app)
        .map(|o| {
            let kind = o["kind"].as_str().unwrap_or("?");
            let name = o["metadata"]["name"].as_str().unwrap_or("?");
            match o["metadata"]["namespace"].as_str() {
                Some(ns) => format!("{kind}/{ns}/{name}"),
                None => format!("{kind}/{name}"),
            }
        })
        .collect();
    out.sort();
    out
}

#[track_caller]
fn failed(f: &Fixture, name: &str) -> String {
    let (run, outcome) = f.once(name);
    assert_eq!(
        outcome["result"], "failed",
        "{outcome}\n--- stderr\n{}",
        run.stderr
    );
    run.expect_code(1);
    outcome["error"].as_str().expect("error").to_string()
}

#[test]
fn prune_keeps_an_object_another_app_has_taken_over() {
    let f = Fixture::new();
    f.commit(
        &[("other/settings.yaml", CONFIGMAP)],
        &[],
        "a second app with the same ConfigMap",
    );
    f.config(&format!(
        "{}app \"other\" {{\n    source \"repo\"\n    path \"other\"\n    cluster \"test\"\n}}\n",
        app("web", "    prune #true\n")
    ));
    assert_eq!(counts(&f.once_ok("web")), [3, 0, 0, 0]);
    // The second app applies the same object: it is its own now.
    f.once_ok("other");
    let settings = f
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .expect("settings");
    assert_eq!(owner(&settings), "other");

    f.commit(&[], &["web/settings.yaml"], "web lets go of settings");
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 2, 0], "nothing pruned");
    let settings = f
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .expect("another app's object was pruned");
    assert_eq!(owner(&settings), "other");
    assert!(!inventory(&f, "default", "web").contains(&"ConfigMap/demo/settings".to_string()));
}

#[test]
fn nothing_is_pruned_after_a_failed_apply() {
    let f = Fixture::with(Options {
        immutable_fields: true,
        ..Options::default()
    });
    f.config(&app("web", "    prune #true\n"));
    f.once_ok("web");
    // One commit drops settings and changes what the cluster cannot change.
    f.commit(
        &[("web/deploy.yaml", &DEPLOY.replace("app: web", "app: web2"))],
        &["web/settings.yaml"],
        "new selector, no settings",
    );
    let error = failed(&f, "web");
    assert!(
        error.contains("web/deploy.yaml:1")
            && error.contains("spec.selector cannot change once set")
            && error.contains("recreate #true"),
        "{error}"
    );
    assert!(
        f.object("v1", "ConfigMap", Some("demo"), "settings").is_some(),
        "pruned after a failed apply"
    );
    assert!(inventory(&f, "default", "web").contains(&"ConfigMap/demo/settings".to_string()));

    // Fixed: the apply succeeds, and now it prunes.
    f.commit(&[("web/deploy.yaml", DEPLOY)], &[], "old selector");
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 2, 1]);
    assert!(f.object("v1", "ConfigMap", Some("demo"), "settings").is_none());
}

#[test]
fn nothing_is_pruned_after_a_failed_render() {
    let f = Fixture::new();
    f.config(&app("web", "    prune #true\n"));
    f.once_ok("web");
    f.commit(
        &[("web/broken.yaml", "kind: [\n")],
        &["web/settings.yaml"],
        "break",
    );
    f.server.clear_requests();
    let error = failed(&f, "web");
    assert!(error.contains("web/broken.yaml:1"), "{error}");
    assert!(f.object("v1", "ConfigMap", Some("demo"), "settings").is_some());
    assert!(f.server.requests().is_empty(), "{:#?}", f.server.requests());
}

#[test]
fn the_inventory_lists_every_object_before_it_is_created() {
    let f = Fixture::new();
    f.config(&app("web", "    prune #true\n"));
    // The server fails every write after three: the run stops half-way.
    f.server.fail_writes_after(Some(3));
    let error = failed(&f, "web");
    assert!(error.contains("etcdserver"), "{error}");
    let created = owned(&f, "web");
    assert!(!created.is_empty(), "the failure came before any object");
    let listed = inventory(&f, "default", "web");
    for id in &created {
        assert!(
            listed.contains(id),
            "{id} was created but is not in the inventory {listed:?}"
        );
    }

    // A restart, after git dropped everything but the namespace: what the
    // broken run created is pruned, nothing is left behind.
    f.server.fail_writes_after(None);
    f.commit(
        &[],
        &["web/deploy.yaml", "web/settings.yaml"],
        "only the namespace",
    );
    f.once_ok("web");
    assert_eq!(owned(&f, "web"), ["Namespace/demo"]);
}

#[test]
fn recreate_deletes_waits_until_gone_and_creates_again() {
    let f = Fixture::with(Options {
        immutable_fields: true,
        delete_delay: Some(Duration::from_millis(300)),
        ..Options::default()
    });
    f.config(&app("web", "    recreate #true\n"));
    f.once_ok("web");
    let before = uid(&f.deploy());
    f.commit(
        &[("web/deploy.yaml", &DEPLOY.replace("app: web", "app: web2"))],
        &[],
        "new selector",
    );
    let (run, outcome) = f.once("web");
    assert_eq!(outcome["result"], "ok", "{outcome}\n--- stderr\n{}", run.stderr);
    assert_eq!(counts(&outcome["applied"]), [0, 1, 2, 0]);
    // It says so: in the run's message and its log.
    let message = outcome["message"].as_str().expect("message");
    assert!(message.ends_with("; recreated Deployment/demo/web"), "{message}");
    assert!(
        run.stderr
            .contains("spec.selector cannot change once set; deleting it, waiting until it is gone"),
        "{}",
        run.stderr
    );
    let after = f.deploy();
    assert_ne!(uid(&after), before, "not a new object");
    assert_eq!(after["spec"]["selector"]["matchLabels"]["app"], "web2");
    assert!(after["metadata"].get("deletionTimestamp").is_none(), "{after}");
    // The delete was in the foreground, and the apply came after it finished.
    let requests = f.server.requests();
    let delete = requests
        .iter()
        .position(|r| r.starts_with("DELETE /apis/apps/v1/namespaces/demo/deployments/web"))
        .expect("a DELETE");
    let last_patch = requests
        .iter()
        .rposition(|r| r.starts_with("PATCH /apis/apps/v1/namespaces/demo/deployments/web"))
        .expect("a PATCH");
    assert!(delete < last_patch, "{requests:#?}");
}

#[test]
fn crds_are_established_before_their_custom_resources_apply() {
    let f = Fixture::with(Options {
        crd_delay: Duration::from_millis(300),
        ..Options::default()
    });
    let crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions:\n  - name: v1\n    served: true\n    storage: true\n";
    let widget = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  namespace: demo\nspec:\n  size: 3\n";
    f.commit(
        &[("web/crd.yaml", crd), ("web/widget.yaml", widget)],
        &[],
        "a CRD and a widget",
    );
    f.config(&app("web", ""));
    assert_eq!(counts(&f.once_ok("web")), [5, 0, 0, 0]);
    assert!(f.object("example.com/v1", "Widget", Some("demo"), "w1").is_some());
}

#[test]
fn a_pruned_namespace_that_comes_back_while_terminating_is_created_again() {
    let f = Fixture::with(Options {
        delete_delay: Some(Duration::from_millis(50)),
        ..Options::default()
    });
    f.config(&app("web", "    prune #true\n"));
    f.once_ok("web");
    // Something mooring does not own holds the namespace while it terminates.
    let holder = json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "holder", "namespace": "demo", "finalizers": ["example.com/hold"]}});
    f.server.apply("someone", false, &holder).expect("holder");

    f.commit(
        &[],
        &["web/namespace.yaml", "web/deploy.yaml", "web/settings.yaml"],
        "drop the namespace",
    );
    f.commit(
        &[("web/keep.yaml", &CONFIGMAP.replace("demo", "default"))],
        &[],
        "keep something",
    );
    assert_eq!(counts(&f.once_ok("web")), [1, 0, 0, 3]);
    let ns = f
        .object("v1", "Namespace", None, "demo")
        .expect("still terminating");
    assert_eq!(ns["status"]["phase"], "Terminating");
    let old = uid(&ns);

    // Back in git while the cluster still deletes it.
    f.commit(
        &[
            ("web/namespace.yaml", NAMESPACE),
            ("web/settings.yaml", CONFIGMAP),
        ],
        &[],
        "namespace back",
    );
    f.server.clear_requests();
    let child = f
        .env
        .cmd()
        .args(["once", "-v", "app/web", "-c", "mooring.kdl", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mooring once");
    // Once mooring has applied the namespace, found it terminating and
    // waits for it to go (it reads it again), the holder lets go.
    wait_until(
        Duration::from_secs(20),
        "mooring waiting for the namespace to go",
        || {
            let requests = f.server.requests();
            let read = |r: &String| {
                r == "GET /api/v1/namespaces/demo" || r.starts_with("GET /api/v1/namespaces/demo?")
            };
            requests
                .iter()
                .position(|r| r.starts_with("PATCH /api/v1/namespaces/demo?"))
                .is_some_and(|applied| requests[applied..].iter().any(read))
        },
    );
    f.server
        .merge_patch("someone", &holder, &json!({"metadata": {"finalizers": null}}))
        .expect("release");
    let out = child.wait_with_output().expect("wait for mooring");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n--- stderr\n{stderr}");
    assert!(
        stderr.contains("Namespace/demo: still being deleted (Terminating)"),
        "{stderr}"
    );
    let ns = f.object("v1", "Namespace", None, "demo").expect("created again");
    assert_ne!(uid(&ns), old);
    assert_eq!(ns["status"]["phase"], "Active");
    assert!(f.object("v1", "ConfigMap", Some("demo"), "settings").is_some());
}

#[test]
fn the_namespace_override_and_the_inventory_namespace_are_applied() {
    let f = Fixture::new();
    for ns in ["other", "mooring-system"] {
        let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        f.server.apply("admin", false, &obj).expect("namespace");
    }
    f.config_with(
        "    inventory-namespace \"mooring-system\"\n",
        &app("web", "    namespace \"other\"\n"),
    );
    assert_eq!(counts(&f.once_ok("web")), [3, 0, 0, 0]);
    assert!(f.object("apps/v1", "Deployment", Some("other"), "web").is_some());
    assert!(f.object("v1", "ConfigMap", Some("other"), "settings").is_some());
    assert!(f.object("apps/v1", "Deployment", Some("demo"), "web").is_none());
    assert_eq!(
        inventory(&f, "mooring-system", "web"),
        [
            "ConfigMap/other/settings",
            "Deployment/other/web",
            "Namespace/demo"
        ]
    );
    assert!(
        f.object("v1", "ConfigMap", Some("default"), "mooring-inventory-web")
            .is_none()
    );
}

#[test]
fn a_namespace_scoped_identity_lists_in_its_namespaces_and_gets_a_clear_error_outside() {
    let f = Fixture::with(Options {
        identity: Some(Identity {
            user: "system:serviceaccount:demo:mooring".into(),
            namespaces: vec!["default".into(), "demo".into()],
        }),
        ..Options::default()
    });
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
    f.server.apply("admin", false, &ns).expect("namespace");
    f.commit(
        &[
            ("scoped/deploy.yaml", DEPLOY),
            ("scoped/settings.yaml", CONFIGMAP),
        ],
        &[],
        "namespaced only",
    );
    f.config(&format!(
        "{}{}",
        app("web", ""),
        "app \"scoped\" {\n    source \"repo\"\n    path \"scoped\"\n    cluster \"test\"\n}\n"
    ));
    f.server.clear_requests();
    assert_eq!(counts(&f.once_ok("scoped")), [2, 0, 0, 0]);
    assert_eq!(counts(&f.once_ok("scoped")), [0, 0, 2, 0]);
    let lists: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET") && r.contains("labelSelector"))
        .collect();
    assert!(!lists.is_empty());
    assert!(
        lists.iter().all(|r| r.contains("/namespaces/demo/")),
        "{lists:#?}"
    );

    // The Namespace itself is cluster-scoped: a clear error, naming it.
    let error = failed(&f, "web");
    assert!(
        error.contains("web/namespace.yaml:1: Namespace/demo")
            && error.contains("cannot patch resource \"namespaces\"")
            && error.contains("the cluster's credentials do not allow this"),
        "{error}"
    );
}

#[test]
fn object_names_are_checked_by_kind_before_any_request() {
    let f = Fixture::new();
    f.config(&app("web", ""));
    f.commit(
        &[(
            "web/evil.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ../../x\n  namespace: demo\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: 1web\n  namespace: demo\n",
        )],
        &[],
        "bad names",
    );
    let error = failed(&f, "web");
    assert!(
        error.contains(r#"web/evil.yaml:1: ConfigMap/demo/../../x: metadata.name "../../x" is not a valid ConfigMap name: it must be a lowercase RFC 1123 subdomain"#),
        "{error}"
    );
    assert!(
        error.contains(r#"web/evil.yaml:7: Service/demo/1web: metadata.name "1web" is not a valid Service name: it must be a DNS-1035 label"#),
        "{error}"
    );
    assert!(f.server.requests().is_empty(), "{:#?}", f.server.requests());
}

#[test]
fn a_name_the_rules_allow_stays_one_path_segment() {
    let f = Fixture::new();
    // RBAC names are path segments: `?`, `&` and `=` are allowed in them.
    let odd = "x?dryRun=All&fieldManager=evil";
    let role = format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: \"{odd}\"\n  namespace: demo\nrules: []\n"
    );
    f.commit(&[("web/role.yaml", &role)], &[], "an odd role name");
    f.config(&app("web", "    prune #true\n"));
    assert_eq!(counts(&f.once_ok("web")), [4, 0, 0, 0]);
    let stored = f
        .object("rbac.authorization.k8s.io/v1", "Role", Some("demo"), odd)
        .expect("the role, under its own name");
    assert_eq!(crate::kube::managers(&stored), ["mooring"]);
    let patches: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/roles/"))
        .collect();
    assert!(
        patches
            .iter()
            .all(|r| r.contains("/roles/x%3FdryRun%3DAll%26fieldManager%3Devil?")
                && !r.contains("dryRun=All")
                && !r.contains("fieldManager=evil")),
        "{patches:#?}"
    );
    // Pruned by the same name.
    f.commit(&[], &["web/role.yaml"], "no role");
    assert_eq!(counts(&f.once_ok("web")), [0, 0, 3, 1]);
    assert!(
        f.object("rbac.authorization.k8s.io/v1", "Role", Some("demo"), odd)
            .is_none()
    );
}

#[test]
fn a_tampered_inventory_prunes_nothing() {
    let f = Fixture::new();
    f.config(&app("web", "    prune #true\n"));
    f.once_ok("web");
    let mut inventory = f
        .object("v1", "ConfigMap", Some("default"), "mooring-inventory-web")
        .expect("inventory");
    let entries = r#"[{"apiVersion":"v1","kind":"ConfigMap","namespace":"demo","name":"../../../api/v1/namespaces/kube-system"}]"#;
    inventory["data"]["entries"] = entries.into();
    f.server
        .merge_patch("intruder", &inventory, &json!({"data": {"entries": entries}}))
        .expect("tamper");
    f.server.clear_requests();
    let error = failed(&f, "web");
    assert!(
        error.contains("inventory default/mooring-inventory-web is not a mooring inventory")
            && error.contains(
                "metadata.name \"../../../api/v1/namespaces/kube-system\" is not a valid ConfigMap name"
            ),
        "{error}"
    );
    let writes: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("GET"))
        .collect();
    assert!(writes.is_empty(), "{writes:#?}");
}

#[test]
fn the_artifact_checksum_covers_every_byte() {
    let f = crate::kube::Fixture::new();
    f.config(&app("web", ""));
    let run = |f: &Fixture| {
        let run = f
            .env
            .run(&["once", "-v", "-c", "mooring.kdl", "--format", "json"]);
        run.expect_code(0);
        let all: Value = serde_json::from_str(&run.stdout).expect("JSON");
        let find = |kind: &str, name: &str| {
            all.as_array()
                .and_then(|a| a.iter().find(|o| o["kind"] == kind && o["name"] == name))
                .cloned()
                .unwrap_or_else(|| panic!("no {kind}/{name} in {all}"))
        };
        (find("source", "repo"), find("app", "web"))
    };
    let (source, _) = run(&f);
    let checksum = source["checksum"].as_str().expect("checksum").to_string();
    // One byte of one file, the same length.
    f.commit(
        &[("web/settings.yaml", &CONFIGMAP.replace("hello", "hellp"))],
        &[],
        "one byte",
    );
    let (source, web) = run(&f);
    assert_ne!(source["checksum"].as_str().expect("checksum"), checksum);
    assert_eq!(counts(&web["applied"]), [0, 1, 2, 0]);
    let settings = f
        .object("v1", "ConfigMap", Some("demo"), "settings")
        .expect("settings");
    assert_eq!(settings["data"]["greeting"], "hellp");
}
