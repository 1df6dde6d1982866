//! A running agent over an app nobody changes sends no writes; a change
//! made by hand (an edit, a delete) is still applied back, and only that
//! object is written.

use std::process::Stdio;
use std::time::Duration;

use crate::agent::{Running, runs};
use crate::kube::{Fixture, app, patch_web};
use crate::support::{free_port, wait_until};

/// The write requests the server saw, the inventory's aside.
fn writes(f: &Fixture) -> Vec<String> {
    f.server
        .requests()
        .into_iter()
        .filter(|r| {
            ["PATCH", "POST", "PUT", "DELETE"]
                .iter()
                .any(|v| r.starts_with(v))
        })
        .collect()
}

/// The writes mooring made (its applies name its field manager), not
/// kubectl's.
fn mooring_writes(f: &Fixture) -> Vec<String> {
    let w = writes(f);
    w.into_iter()
        .filter(|r| r.contains("fieldManager=mooring"))
        .collect()
}

/// `mooring run` over app/web with more `agent_lines` and `app_lines`,
/// once the app is first applied.
fn start(f: &Fixture, agent_lines: &str, app_lines: &str) -> Running {
    let port = free_port();
    f.config_with(
        &format!("    listen \"127.0.0.1:{port}\"\n{agent_lines}"),
        &app("web", app_lines),
    );
    let mut cmd = f.env.cmd();
    cmd.args(["run", "-c", "mooring.kdl"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let agent = Running::start(cmd, port);
    agent.wait(Duration::from_secs(30), "the first apply", |s| {
        crate::agent::state(s, "app", "web") == "ready"
    });
    agent
}

/// Ask for a run of app/web and wait until it is done and ready.
fn reconcile(agent: &Running) {
    let before = runs(&agent.status(), "app", "web");
    let (code, body) = agent.post("/api/reconcile/app/web", None);
    assert_eq!(code, 202, "{body}");
    agent.wait(Duration::from_secs(30), "the run asked for", |s| {
        runs(s, "app", "web") > before && crate::agent::state(s, "app", "web") == "ready"
    });
}

#[test]
fn passes_over_an_untouched_app_write_nothing_and_hand_changes_are_applied_back() {
    let f = Fixture::new();
    let agent = start(&f, "", "");
    assert!(f.object("v1", "ConfigMap", Some("demo"), "settings").is_some());

    // Two passes over what nobody touched (the test server's controllers
    // meanwhile write the Deployment's status): no write at all; and once
    // the watches of the app's three kinds run, not even a list of its
    // objects (the watches vouch for them).
    wait_until(Duration::from_secs(30), "the watches", || {
        let watches = f.server.requests();
        ["/namespaces?", "/configmaps?", "/deployments?"]
            .iter()
            .all(|kind| watches.iter().any(|r| r.contains(kind) && r.contains("watch=")))
    });
    f.server.clear_requests();
    reconcile(&agent);
    reconcile(&agent);
    assert_eq!(writes(&f), Vec::<String>::new());
    let lists: Vec<String> = f
        .server
        .requests()
        .into_iter()
        .filter(|r| r.contains("labelSelector=app.mooring.dev%2Fname%3Dweb"))
        .collect();
    assert_eq!(lists, Vec::<String>::new());
    let status = agent.status();
    let applied = &crate::agent::object(&status, "app", "web").expect("app/web")["applied"];
    assert_eq!(applied["unchanged"], 3, "{applied}");

    // A hand edit of the Deployment's spec: only it is applied back (by
    // the watch's run or the one asked for, whichever comes first).
    f.server.clear_requests();
    f.kubectl(&patch_web(r#"{"spec":{"replicas":5}}"#));
    reconcile(&agent);
    assert_eq!(f.deploy()["spec"]["replicas"], 1, "drift not undone");
    let w = mooring_writes(&f);
    assert!(
        !w.is_empty() && w.iter().all(|r| r.contains("/deployments/web")),
        "{w:#?}"
    );

    // A deleted ConfigMap is created again, and nothing else is written.
    f.server.clear_requests();
    f.kubectl(&["delete", "configmap", "settings", "-n", "demo"]);
    reconcile(&agent);
    assert!(f.object("v1", "ConfigMap", Some("demo"), "settings").is_some());
    let w = mooring_writes(&f);
    assert!(
        !w.is_empty() && w.iter().all(|r| r.contains("/configmaps/settings")),
        "{w:#?}"
    );

    // And quiet again.
    f.server.clear_requests();
    reconcile(&agent);
    assert_eq!(writes(&f), Vec::<String>::new());
}

#[test]
fn a_hand_change_is_taken_back_at_once_without_waiting_for_the_interval() {
    let f = Fixture::new();
    let agent = start(&f, "", "    interval \"1h\"\n");

    // `kubectl scale`: the watch sees it and the app runs (an hour before
    // its interval would have).
    f.kubectl(&["scale", "deploy", "web", "-n", "demo", "--replicas=5"]);
    wait_until(Duration::from_secs(20), "the replicas taken back", || {
        f.deploy()["spec"]["replicas"] == 1
    });
    let s = agent.wait(Duration::from_secs(20), "the drift run recorded", |s| {
        crate::agent::object(s, "app", "web")
            .is_some_and(|o| o["trigger"] == "drift" && o["state"] == "ready")
    });
    assert!(runs(&s, "app", "web") >= 2);

    // A delete: created again.
    f.kubectl(&["delete", "configmap", "settings", "-n", "demo"]);
    wait_until(Duration::from_secs(20), "the ConfigMap created again", || {
        f.object("v1", "ConfigMap", Some("demo"), "settings").is_some()
    });
}

#[test]
fn with_reapply_untouched_objects_are_applied_again_once_their_apply_is_that_old() {
    let f = Fixture::new();
    let agent = start(&f, "    reapply \"1s\"\n", "");
    // Passes asked for until one, a second or more after the first apply,
    // applies the untouched objects again.
    f.server.clear_requests();
    wait_until(Duration::from_secs(20), "a pass that applies again", || {
        reconcile(&agent);
        mooring_writes(&f)
            .iter()
            .any(|r| r.contains("/configmaps/settings"))
    });
}
