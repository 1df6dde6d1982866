//! One app on several clusters, end to end: the real binary against two
//! test API servers, "old" and "new". Adding a cluster to the app's list
//! converges both (`once`, and a running agent's reload); dropping one
//! prunes it of the app's objects and inventory (with `prune`), across an
//! agent restart too; nothing else on either cluster changes.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::agent::Running;
use crate::apiserver::ApiServer;
use crate::gitserver::Repo;
use crate::kube::Fixture;
use crate::support::{Run, TestEnv, free_port, wait_for};

const OWNER: &str = "app.mooring.dev/name";
const INVENTORY: &str = "mooring-inventory-web";

/// [`Fixture`]'s repository and server (as "old"), and a second server ("new").
struct Fleet {
    env: TestEnv,
    repo: Repo,
    old: ApiServer,
    new: ApiServer,
    port: u16,
}

impl Fleet {
    fn new() -> Fleet {
        let Fixture {
            env,
            repo,
            server: old,
        } = Fixture::new();
        let new = ApiServer::start();
        old.kubeconfig(&env.path().join("old.kubeconfig"));
        new.kubeconfig(&env.path().join("new.kubeconfig"));
        // Something of someone else's on each cluster.
        for server in [&old, &new] {
            let other = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "unrelated", "namespace": "default"}, "data": {"k": "v"}});
            server
                .apply("someone", false, &other)
                .expect("an unrelated object");
        }
        Fleet {
            env,
            repo,
            old,
            new,
            port: free_port(),
        }
    }

    /// The config: clusters (only those named in `defined`), the source,
    /// app "web" with `app` lines.
    fn config(&self, defined: &[&str], app: &str) {
        let clusters: String = defined
            .iter()
            .map(|c| format!("cluster \"{c}\" {{\n    kubeconfig \"{c}.kubeconfig\"\n}}\n"))
            .collect();
        let text = format!(
            "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{}\"\n}}\n{clusters}source \"repo\" {{\n    git \"{}\"\n}}\napp \"web\" {{\n    source \"repo\"\n    path \"web\"\n{app}}}\n",
            self.port,
            self.repo.file_url()
        );
        // As editors do: a temp file renamed over the config.
        let tmp = self.env.path().join(".mooring.kdl.swp");
        std::fs::write(&tmp, text).expect("write the config");
        std::fs::rename(&tmp, self.env.path().join("mooring.kdl")).expect("rename the config");
    }

    /// `mooring once app/web --format json`: the run and the app's outcome.
    fn once(&self) -> (Run, Value) {
        let run = self
            .env
            .run(&["once", "-v", "app/web", "-c", "mooring.kdl", "--format", "json"]);
        let outcome = run
            .json()
            .as_array()
            .and_then(|a| a.iter().find(|o| o["kind"] == "app").cloned())
            .unwrap_or_else(|| panic!("no app/web in\n{}\n{}", run.stdout, run.stderr));
        (run, outcome)
    }

    #[track_caller]
    fn once_ok(&self) -> Value {
        let (run, outcome) = self.once();
        assert_eq!(outcome["result"], "ok", "{outcome:#}\n--- stderr\n{}", run.stderr);
        run.expect_code(0);
        outcome
    }

    fn start(&self) -> Running {
        let mut cmd = self.env.cmd();
        cmd.args(["run", "-c", "mooring.kdl"])
            .env("MOORING_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        Running::start(cmd, self.port)
    }

    /// The clusters the state directory says the app has applied to.
    fn record(&self) -> Vec<Value> {
        let text = self.env.read("state/clusters/web.json");
        let v: Value = serde_json::from_str(&text).expect("the record is JSON");
        v["clusters"]
            .as_array()
            .map(|a| a.iter().map(|c| c["cluster"].clone()).collect())
            .unwrap_or_default()
    }
}

/// Every object on `server` by `KIND/NS/NAME`, with its resourceVersion.
fn everything(server: &ApiServer) -> BTreeMap<String, String> {
    server
        .objects()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            let id = format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or(""),
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or("")
            );
            (id, m["resourceVersion"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// The objects of app "web" on `server` (`KIND/NS/NAME`), sorted.
fn of_app(server: &ApiServer) -> Vec<String> {
    let mut ids: Vec<String> = server
        .objects()
        .iter()
        .filter(|o| o["metadata"]["labels"][OWNER] == "web")
        .map(|o| {
            let m = &o["metadata"];
            format!(
                "{}/{}/{}",
                o["kind"].as_str().unwrap_or(""),
                m["namespace"].as_str().unwrap_or(""),
                m["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    ids.sort();
    ids
}

fn inventory(server: &ApiServer) -> Option<Value> {
    server.object("v1", "ConfigMap", Some("default"), INVENTORY)
}

fn unrelated(server: &ApiServer) -> Option<String> {
    server
        .object("v1", "ConfigMap", Some("default"), "unrelated")
        .map(|o| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
                .to_string()
        })
}

/// `(cluster, state, dropped)` of each entry of an outcome's `clusters`.
fn clusters(outcome: &Value) -> Vec<(String, String, bool)> {
    outcome["clusters"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["cluster"].as_str().unwrap_or("(default)").to_string(),
                        c["state"].as_str().unwrap_or("").to_string(),
                        c["dropped"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry(name: &str, state: &str, dropped: bool) -> (String, String, bool) {
    (name.to_string(), state.to_string(), dropped)
}

const PRUNE: &str = "    cluster \"old\" \"new\"\n    prune #true\n";

#[test]
fn a_cluster_added_converges_and_a_cluster_dropped_is_emptied_of_the_app() {
    let f = Fleet::new();
    f.config(&["old", "new"], "    cluster \"old\"\n    prune #true\n");
    f.once_ok();
    let three = vec![
        "ConfigMap/demo/settings".to_string(),
        "Deployment/demo/web".into(),
        "Namespace//demo".into(),
    ];
    assert_eq!(of_app(&f.old), three);
    assert_eq!(of_app(&f.new), Vec::<String>::new());
    let old_before = everything(&f.old);

    // Add "new": both converge, each with its inventory; "old" is not changed.
    f.config(&["old", "new"], PRUNE);
    let out = f.once_ok();
    assert_eq!(
        clusters(&out),
        [entry("old", "ready", false), entry("new", "ready", false)],
        "{out:#}"
    );
    assert_eq!(out["clusters"][1]["applied"]["created"], 3, "{out:#}");
    assert_eq!(of_app(&f.new), three);
    assert!(inventory(&f.new).is_some() && inventory(&f.old).is_some());
    assert_eq!(everything(&f.old), old_before, "a no-op on old changed it");
    let message = out["message"].as_str().unwrap_or("");
    assert!(
        message.contains("old (") && message.contains("new ("),
        "{message}"
    );
    let new_before = everything(&f.new);
    assert_eq!(f.record(), [json!("old"), json!("new")]);
    // `mooring diff` looks at each cluster in turn.
    let diff = f.env.run(&["diff", "app/web", "-c", "mooring.kdl"]);
    diff.expect_code(0);
    for name in ["old", "new"] {
        assert!(
            diff.stderr
                .contains(&format!("app/web on cluster \"{name}\" at main@")),
            "{}",
            diff.stderr
        );
    }

    // Drop "old": emptied of the app and its inventory; the rest stays.
    let unrelated_old = unrelated(&f.old);
    f.config(&["old", "new"], "    cluster \"new\"\n    prune #true\n");
    let out = f.once_ok();
    assert_eq!(
        clusters(&out),
        [entry("new", "ready", false), entry("old", "ready", true)],
        "{out:#}"
    );
    assert_eq!(out["clusters"][1]["applied"]["pruned"], 3, "{out:#}");
    assert_eq!(of_app(&f.old), Vec::<String>::new());
    assert_eq!(inventory(&f.old), None);
    assert_eq!(unrelated(&f.old), unrelated_old);
    assert!(unrelated_old.is_some());
    assert_eq!(everything(&f.new), new_before, "new changed");
    assert_eq!(f.record(), [json!("new")]);

    // The next run is about "new" alone.
    let out = f.once_ok();
    assert_eq!(clusters(&out), [entry("new", "ready", false)], "{out:#}");
}

#[test]
fn a_cluster_dropped_while_the_agent_is_stopped_is_emptied_when_it_starts() {
    let f = Fleet::new();
    f.config(&["old", "new"], "    cluster \"old\"\n    prune #true\n");
    let mut agent = f.start();
    agent.wait(Duration::from_secs(60), "ready on old", |s| {
        crate::agent::object(s, "app", "web")
            .is_some_and(|o| o["state"] == "ready" && clusters(o) == [entry("old", "ready", false)])
    });
    // "new" is added while the agent runs: the reload applies it there.
    f.config(&["old", "new"], PRUNE);
    let status = agent.wait(Duration::from_secs(60), "both clusters ready", |s| {
        crate::agent::object(s, "app", "web").is_some_and(|o| {
            o["state"] == "ready"
                && o["clusters"].as_array().map(Vec::len) == Some(2)
                && o["clusters"]
                    .as_array()
                    .is_some_and(|a| a.iter().all(|c| c["state"] == "ready"))
        })
    });
    assert!(
        !of_app(&f.old).is_empty() && of_app(&f.old) == of_app(&f.new),
        "{status:#}"
    );
    let (code, _) = agent.signal("TERM");
    assert_eq!(code, 0);
    let new_before = everything(&f.new);

    // The edit happens while no agent runs.
    f.config(&["old", "new"], "    cluster \"new\"\n    prune #true\n");
    let agent = f.start();
    wait_for(Duration::from_secs(60), "old emptied of app/web", || {
        match (of_app(&f.old).is_empty(), inventory(&f.old)) {
            (true, None) => Ok(()),
            (empty, inv) => Err(format!("objects gone: {empty}, inventory: {}", inv.is_some())),
        }
    });
    let status = agent.wait(Duration::from_secs(60), "app ready, old pruned", |s| {
        crate::agent::object(s, "app", "web").is_some_and(|o| {
            o["state"] == "ready"
                && clusters(o) == [entry("new", "ready", false), entry("old", "ready", true)]
        })
    });
    assert_eq!(everything(&f.new), new_before, "new changed: {status:#}");
    let text = f.env.run(&["status", "app/web", "-c", "mooring.kdl"]);
    text.expect_code(0);
    assert!(
        text.stdout.contains("Clusters:") && text.stdout.contains("old (dropped)  ready"),
        "{}",
        text.stdout
    );
    assert!(unrelated(&f.old).is_some());
    assert_eq!(f.record(), [json!("new")]);
}

#[test]
fn without_prune_a_dropped_cluster_keeps_everything_and_says_so() {
    let f = Fleet::new();
    f.config(&["old", "new"], "    cluster \"old\" \"new\"\n");
    f.once_ok();
    let old_before = everything(&f.old);
    assert!(inventory(&f.old).is_some());

    f.config(&["old", "new"], "    cluster \"new\"\n");
    let out = f.once_ok();
    let message = out["message"].as_str().unwrap_or("");
    assert!(message.contains("prune is off"), "{message}");
    assert_eq!(everything(&f.old), old_before, "old changed without prune");
    // Said once, then forgotten.
    assert_eq!(f.record(), [json!("new")]);
}

#[test]
fn a_failing_cluster_does_not_stop_the_other_nor_lets_the_dropped_one_be_pruned() {
    let f = Fleet::new();
    f.config(&["old", "new"], "    cluster \"old\"\n    prune #true\n");
    f.once_ok();
    let old_before = everything(&f.old);

    // "new" refuses every write: "old" still applies, the app fails naming "new".
    f.new.fail_writes_after(Some(0));
    f.config(&["old", "new"], PRUNE);
    let (run, out) = f.once();
    run.expect_code(1);
    assert_eq!(
        clusters(&out),
        [entry("old", "ready", false), entry("new", "failed", false)],
        "{out:#}"
    );
    let error = out["error"].as_str().unwrap_or("");
    assert!(error.contains("cluster \"new\""), "{error}");
    assert!(!error.contains("cluster \"old\""), "{error}");

    // A move to the failing cluster leaves the old one as it is.
    f.config(&["old", "new"], "    cluster \"new\"\n    prune #true\n");
    let (run, out) = f.once();
    run.expect_code(1);
    assert_eq!(
        clusters(&out),
        [entry("new", "failed", false), entry("old", "waiting", true)],
        "{out:#}"
    );
    assert_eq!(everything(&f.old), old_before);

    // Once "new" takes writes, "old" is pruned.
    f.new.fail_writes_after(None);
    f.once_ok();
    assert_eq!(of_app(&f.old), Vec::<String>::new());
    assert_eq!(of_app(&f.new).len(), 3);
}

#[test]
fn a_dropped_cluster_no_longer_defined_is_reported_until_it_can_be_pruned() {
    let f = Fleet::new();
    f.config(&["old", "new"], PRUNE);
    f.once_ok();
    let old_before = everything(&f.old);

    // "old" leaves the list and the config: it cannot be reached.
    f.config(&["new"], "    cluster \"new\"\n    prune #true\n");
    let out = f.once_ok();
    assert_eq!(
        clusters(&out),
        [entry("new", "ready", false), entry("old", "stalled", true)],
        "{out:#}"
    );
    let message = out["message"].as_str().unwrap_or("");
    assert!(
        message.contains("\"old\"") && message.contains("no longer defined") && message.contains(INVENTORY),
        "{message}"
    );
    assert_eq!(everything(&f.old), old_before);
    assert_eq!(f.record(), [json!("old"), json!("new")]);

    // Defined again, it is pruned.
    f.config(&["old", "new"], "    cluster \"new\"\n    prune #true\n");
    f.once_ok();
    assert_eq!(of_app(&f.old), Vec::<String>::new());
    assert_eq!(f.record(), [json!("new")]);
}

#[test]
fn default_cluster_moves_every_app_without_its_own() {
    let f = Fleet::new();
    let config = |default: &str| {
        let clusters = "cluster \"old\" {\n    kubeconfig \"old.kubeconfig\"\n}\ncluster \"new\" {\n    kubeconfig \"new.kubeconfig\"\n}\n";
        let text = format!(
            "agent {{\n    state-dir \"state\"\n    default-cluster {default}\n}}\n{clusters}source \"repo\" {{\n    git \"{}\"\n}}\napp \"web\" {{\n    source \"repo\"\n    path \"web\"\n    prune #true\n}}\n",
            f.repo.file_url()
        );
        f.env.write("mooring.kdl", &text);
    };
    config("\"old\" \"new\"");
    f.once_ok();
    assert_eq!(of_app(&f.old).len(), 3);
    assert_eq!(of_app(&f.new).len(), 3);
    config("\"new\"");
    f.once_ok();
    assert_eq!(of_app(&f.old), Vec::<String>::new());
    assert_eq!(of_app(&f.new).len(), 3);
}

#[test]
fn variables_are_read_from_each_cluster() {
    let f = Fleet::new();
    let settings = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: demo\ndata:\n  greeting: ${greeting}\n";
    f.repo.write(&[("web/settings.yaml", settings)]);
    f.repo.commit("a variable");
    f.repo.publish();
    for (server, greeting) in [(&f.old, "hello from old"), (&f.new, "hello from new")] {
        let vars = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vars", "namespace": "default"}, "data": {"greeting": greeting}});
        server.apply("someone", false, &vars).expect("the variables");
    }
    f.config(
        &["old", "new"],
        "    cluster \"old\" \"new\"\n    substitute-from configmap=\"default/vars\"\n",
    );
    f.once_ok();
    for (server, greeting) in [(&f.old, "hello from old"), (&f.new, "hello from new")] {
        let cm = server
            .object("v1", "ConfigMap", Some("demo"), "settings")
            .expect("settings applied");
        assert_eq!(cm["data"]["greeting"], greeting);
    }
}

#[test]
fn a_dropped_name_for_a_listed_api_server_prunes_nothing() {
    let f = Fleet::new();
    f.old.kubeconfig(&f.env.path().join("alias.kubeconfig"));
    f.config(&["old", "alias"], "    cluster \"old\"\n    prune #true\n");
    f.once_ok();
    let before = everything(&f.old);
    // The same API server, another name: its inventory is the one kept.
    f.config(&["old", "alias"], "    cluster \"alias\"\n    prune #true\n");
    let out = f.once_ok();
    let message = out["message"].as_str().unwrap_or("");
    assert!(message.contains("nothing pruned"), "{message}");
    assert_eq!(of_app(&f.old).len(), 3);
    assert!(inventory(&f.old).is_some());
    assert_eq!(everything(&f.old), before);
    assert_eq!(f.record(), [json!("alias")]);
}

#[test]
fn two_names_for_one_api_server_in_the_list_apply_nothing_and_say_so() {
    let f = Fleet::new();
    f.old.kubeconfig(&f.env.path().join("alias.kubeconfig"));
    f.config(
        &["old", "alias"],
        "    cluster \"old\" \"alias\"\n    prune #true\n",
    );
    let (run, out) = f.once();
    assert_eq!(out["result"], "failed", "{out}");
    let message = out["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("clusters \"old\" and \"alias\" are the same API server (")
            && message.contains(&f.old.url())
            && message.contains("): list it once"),
        "{message}"
    );
    run.expect_code(1);
    assert!(of_app(&f.old).is_empty(), "nothing applied");
    assert!(inventory(&f.old).is_none());
    assert!(
        !f.env.path().join("state/clusters/web.json").exists(),
        "nothing recorded"
    );
}

#[test]
fn a_prune_that_fails_is_reported_and_tried_again() {
    let f = Fleet::new();
    f.config(&["old", "new"], PRUNE);
    f.once_ok();
    f.old.fail_writes_after(Some(0));
    f.config(&["old", "new"], "    cluster \"new\"\n    prune #true\n");
    let (run, out) = f.once();
    run.expect_code(1);
    assert_eq!(out["reason"], "PruneFailed", "{out:#}");
    assert_eq!(
        clusters(&out),
        [entry("new", "ready", false), entry("old", "failed", true)],
        "{out:#}"
    );
    let error = out["error"].as_str().unwrap_or("");
    assert!(error.starts_with("cluster \"old\": "), "{error}");
    // Kept in the record until the prune succeeds.
    assert_eq!(f.record(), [json!("old"), json!("new")]);
    f.old.fail_writes_after(None);
    f.once_ok();
    assert_eq!(of_app(&f.old), Vec::<String>::new());
    assert_eq!(inventory(&f.old), None);
    assert_eq!(f.record(), [json!("new")]);
}
