//! Notifications end to end: `mooring run` posting to a local HTTP server
//! that records every request — Slack messages, generic JSON events and
//! GitHub commit statuses, on state changes only, retried, never in the
//! way of reconciles, their URLs never in the log.

use std::time::Duration;

use serde_json::{Value, json};

use crate::agent::{Fixture, app, runs, state};
use crate::recorder::{HttpRecorder, Recorded, Reply};

const LONG: Duration = Duration::from_secs(30);

fn posts(all: &[Recorded]) -> Vec<Value> {
    all.iter()
        .filter(|r| r.method == "POST")
        .map(Recorded::json)
        .collect()
}

/// A source that fails until its repository appears at `later/repo.git`,
/// retried every second or two, and `notify` nodes.
fn failing_source(f: &Fixture, notify: &str) -> String {
    format!(
        "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{}\"\n}}\n\
         source \"late\" {{\n    git \"file://{}/later/repo.git\"\n    interval \"1s\"\n}}\n{notify}",
        f.port,
        f.path().display()
    )
}

fn publish_later(f: &Fixture) {
    let to = f.path().join("later");
    std::fs::create_dir_all(&to).expect("mkdir");
    let out = std::process::Command::new("cp")
        .arg("-r")
        .arg(f.repo.bare())
        .arg(to.join("repo.git"))
        .output()
        .expect("cp");
    assert!(out.status.success());
}

#[test]
fn a_failure_is_posted_once_while_it_lasts_then_its_recovery_and_the_url_stays_secret() {
    let hook = HttpRecorder::start(|_, _| Reply::status(200));
    let f = Fixture::new();
    // The URL is a secret (Slack's are): it must not reach the log.
    f.env.write(
        "slack-url",
        &format!("{}/services/T000/B000/SECRET-PATH-123\n", hook.url()),
    );
    f.env.write(
        "mooring.kdl",
        &failing_source(
            &f,
            "notify \"team\" {\n    url-file \"slack-url\"\n    format \"slack\"\n    on \"failure\" \"recovery\"\n    objects \"source/*\"\n}\n",
        ),
    );
    let mut agent = f.spawn(&[]);
    let failed = hook.wait(LONG, "the failure posted", |all| !all.is_empty());
    agent.wait(LONG, "three failed fetches", |s| {
        runs(s, "source", "late") >= 3 && state(s, "source", "late") == "failed"
    });
    // Still one post: the same failure again is not news.
    let all = hook.requests();
    assert_eq!(all.len(), 1, "{all:#?}");
    let first = &failed[0];
    assert_eq!(first.path, "/services/T000/B000/SECRET-PATH-123");
    let msg = first.json();
    assert_eq!(msg["attachments"][0]["color"], "danger", "{msg}");
    assert_eq!(msg["attachments"][0]["author_name"], "source/late");
    assert_eq!(msg["attachments"][0]["title"], "FetchFailed");
    assert!(
        msg["attachments"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    assert_eq!(msg["text"], "source/late: failure (FetchFailed)");

    publish_later(&f);
    let all = hook.wait(LONG, "the recovery posted", |all| all.len() >= 2);
    let recovered = all[1].json();
    assert_eq!(recovered["attachments"][0]["color"], "good", "{recovered}");
    assert_eq!(recovered["attachments"][0]["title"], "ReconciliationSucceeded");
    let fields = recovered["attachments"][0]["fields"].to_string();
    assert!(fields.contains("main@sha1:"), "the revision: {fields}");
    let s = agent.status();
    assert_eq!(s["notifications"][0]["sent"], 2, "{s}");
    let log = agent.log();
    assert!(!log.contains("SECRET-PATH"), "the URL is in the log");
}

#[test]
fn failed_posts_are_retried_and_a_slow_endpoint_holds_nothing_up() {
    // 429 with Retry-After, then 500, then accepted.
    let flaky = HttpRecorder::start(|_, i| match i {
        0 => Reply::status(429).with_header("retry-after", "1"),
        1 => Reply::status(500),
        _ => Reply::status(202),
    });
    // Answers only after a minute.
    let slow = HttpRecorder::start(|_, _| Reply::status(200).after(Duration::from_secs(60)));
    let f = Fixture::new();
    f.env.write("flaky-url", &format!("{}/events\n", flaky.url()));
    f.env.write("slow-url", &format!("{}/events\n", slow.url()));
    f.env.write("token", "bearer-t0ken\n");
    f.env.write(
        "mooring.kdl",
        &failing_source(
            &f,
            "notify \"flaky\" {\n    url-file \"flaky-url\"\n    token-file \"token\"\n    on \"failure\"\n}\n\
             notify \"slow\" {\n    url-file \"slow-url\"\n    on \"failure\"\n    timeout \"1s\"\n}\n",
        ),
    );
    let agent = f.spawn(&[]);
    let all = flaky.wait(LONG, "three attempts", |all| all.len() >= 3);
    assert_eq!(all.len(), 3, "retried until accepted, then done");
    let event = all[2].json();
    assert_eq!(all[0].json(), event, "every attempt posts the same event");
    assert_eq!(all[2].header("authorization"), Some("Bearer bearer-t0ken"));
    assert_eq!(all[2].header("content-type"), Some("application/json"));
    assert_eq!(
        event["involvedObject"],
        json!({ "kind": "source", "name": "late" })
    );
    assert_eq!(event["severity"], "error");
    assert_eq!(event["reason"], "FetchFailed");
    assert_eq!(event["metadata"]["event"], "failure");
    assert_eq!(event["reportingController"], "mooring");

    // While the slow endpoint holds its post (a minute per attempt, cut
    // at the 1s timeout), reconciles go on at their pace.
    agent.wait(LONG, "the source retried again and again", |s| {
        runs(s, "source", "late") >= 4
    });
    assert!(!slow.requests().is_empty());
    let s = agent.wait(LONG, "the flaky post counted as sent", |s| {
        s["notifications"]
            .as_array()
            .is_some_and(|n| n.iter().any(|n| n["name"] == "flaky" && n["sent"] == 1))
    });
    let slow_status = s["notifications"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["name"] == "slow"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(slow_status["sent"], 0, "{slow_status}");
}

#[test]
fn github_commit_statuses_are_set_as_flux_sets_them() {
    let api = HttpRecorder::start(|r, _| match r.method.as_str() {
        "GET" => Reply::json(200, &json!([])),
        _ => Reply::json(201, &json!({ "id": 1 })),
    });
    let f = Fixture::new();
    f.env.write("repo-url", &format!("{}/acme/platform\n", api.url()));
    f.env.write("gh-token", "ghp_t0ken\n");
    let notify = "notify \"statuses\" {\n    url-file \"repo-url\"\n    format \"github-status\"\n    token-file \"gh-token\"\n    objects \"app/web\"\n}\n";
    let agent = f.start(&format!("{}{notify}", app("web", "web")));
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let head = f.repo.rev("main");
    let all = api.wait(LONG, "the status posted", |all| all.len() >= 2);
    assert_eq!(all[0].method, "GET");
    assert_eq!(
        all[0].path,
        format!("/api/v3/repos/acme/platform/commits/{head}/statuses?per_page=50")
    );
    assert_eq!(all[1].method, "POST");
    assert_eq!(
        all[1].path,
        format!("/api/v3/repos/acme/platform/statuses/{head}")
    );
    assert_eq!(all[1].header("authorization"), Some("Bearer ghp_t0ken"));
    assert_eq!(
        all[1].json(),
        json!({ "state": "success", "context": "app/web/statuses", "description": "reconciliation succeeded" })
    );

    // A broken manifest on the next commit: a failure status on that commit.
    f.repo.write(&[("web/broken.yaml", "kind: [unclosed\n")]);
    f.repo.commit("broken");
    f.repo.publish();
    let broken = f.repo.rev("main");
    f.env
        .run(&["reconcile", "source/repo", "-c", "mooring.kdl"])
        .expect_code(0);
    let all = api.wait(LONG, "the failure status", |all| posts(all).len() >= 2);
    let last = all.iter().rfind(|r| r.method == "POST").expect("a POST");
    assert_eq!(
        last.path,
        format!("/api/v3/repos/acme/platform/statuses/{broken}")
    );
    assert_eq!(
        last.json(),
        json!({ "state": "failure", "context": "app/web/statuses", "description": "render failed" })
    );

    // The same failure again is not news: nothing is sent.
    let before = api.requests().len();
    f.env
        .run(&["reconcile", "app/web", "-c", "mooring.kdl"])
        .expect_code(0);
    agent.wait(LONG, "the app ran again", |s| runs(s, "app", "web") >= 3);

    // After a restart the failure is news to the agent, but GitHub has
    // that status already: it is read, and not posted again.
    let mut agent = agent;
    let (code, _) = agent.signal("TERM");
    assert_eq!(code, 0);
    assert_eq!(api.requests().len(), before, "{:#?}", &api.requests()[before..]);
    api.respond(|r, _| match r.method.as_str() {
        "GET" => Reply::json(
            200,
            &json!([
                { "state": "failure", "context": "app/web/statuses", "description": "render failed" },
                { "state": "success", "context": "app/web/statuses", "description": "reconciliation succeeded" },
            ]),
        ),
        _ => Reply::json(201, &json!({ "id": 2 })),
    });
    let agent = f.spawn(&[]);
    // The notification is done with the event once it has read the statuses.
    agent.wait(LONG, "the failure handled", |s| {
        state(s, "app", "web") == "stalled" && s["notifications"][0]["sent"] == 1
    });
    let after: Vec<(String, String)> = api.requests()[before..]
        .iter()
        .map(|r| (r.method.clone(), r.path.clone()))
        .collect();
    assert_eq!(
        after,
        vec![(
            "GET".to_string(),
            format!("/api/v3/repos/acme/platform/commits/{broken}/statuses?per_page=50")
        )]
    );
}
