//! Events and the status of one object, end to end: a failing input's own
//! error told by the objects that wait for it (in `once`, the status and
//! the events), events recorded as things happen and counted when they
//! repeat, and what `mooring events` and `mooring status KIND/NAME` print.

use std::io::{BufRead as _, BufReader, Write as _};
use std::time::Duration;

use serde_json::Value;

use crate::agent::{Fixture, app, object, runs, state};
use crate::support::TestEnv;

const LONG: Duration = Duration::from_secs(20);

/// An HTTP server that answers every request with 401, as a git host does
/// to wrong credentials.
fn refusing_server() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().expect("clone"));
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let mut out = conn;
            let _ = out.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    port
}

/// A config whose source `platform` is refused by the server on `port`,
/// an app `infra` reading it and an app `web` depending on `infra`.
fn refused_config(env: &TestEnv, port: u16, listen: u16) -> String {
    env.write("password", "hunter2-secret\n");
    format!(
        "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{listen}\"\n}}\n\
         source \"platform\" {{\n    git \"http://127.0.0.1:{port}/platform.git\"\n    auth {{ username \"bot\"; password-file \"password\"; }}\n}}\n\
         app \"infra\" {{ source \"platform\"; path \"infra\"; target dir=\"out/infra\"; }}\n\
         app \"web\" {{ source \"platform\"; path \"web\"; target dir=\"out/web\"; depends-on \"infra\"; }}\n"
    )
}

#[test]
fn once_tells_the_error_of_the_input_that_failed() {
    let env = TestEnv::new();
    let port = refusing_server();
    env.write(
        "mooring.kdl",
        &refused_config(&env, port, crate::support::free_port()),
    );
    let run = env.run(&["once", "-c", "mooring.kdl"]);
    run.expect_code(1);
    let line = |prefix: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in\n{}", run.stdout))
            .to_string()
    };
    let source = line("source/platform  failed (FetchFailed): ");
    let error = source
        .strip_prefix("source/platform  failed (FetchFailed): ")
        .expect("prefix");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    assert_eq!(
        line("app/infra "),
        format!("app/infra  failed (ArtifactNotReady): waiting for source/platform: it failed: {error}")
    );
    // Through the chain: web waits for infra, which waits for the source.
    assert_eq!(
        line("app/web "),
        format!(
            "app/web  failed (DependencyNotReady): waiting for app/infra: it failed: \
             waiting for source/platform: it failed: {error}"
        )
    );
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
}

#[test]
fn a_waiting_app_shows_its_source_s_error_and_repeated_failures_are_counted() {
    let env = TestEnv::new();
    let port = refusing_server();
    let listen = crate::support::free_port();
    env.write("mooring.kdl", &refused_config(&env, port, listen));
    let mut cmd = env.cmd();
    cmd.args(["run", "-c", "mooring.kdl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let agent = crate::agent::Running::start(cmd, listen);
    // Refused credentials stall the source; asked again, it fails again:
    // the second failure is counted into the first event.
    let failures =
        |n: u64| move |s: &Value| object(s, "source", "platform").is_some_and(|o| o["failures"] == n);
    agent.wait(LONG, "source/platform failed", failures(1));
    assert_eq!(agent.post("/api/reconcile/source/platform", None).0, 202);
    let s = agent.wait(LONG, "source/platform failed again", |s| {
        failures(2)(s)
            && object(s, "app", "web")
                .is_some_and(|o| o["message"].as_str().is_some_and(|m| m.contains("401")))
    });
    let source = object(&s, "source", "platform").expect("source");
    let events = source["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{source}");
    assert_eq!(events[0]["reason"], "FetchFailed");
    assert_eq!(events[0]["count"], 2, "{source}");
    assert_eq!(events[0]["trigger"], "manual", "{source}");
    assert!(events[0]["last_time"].is_string(), "{source}");
    let error = source["last_error"].as_str().expect("last_error");
    let infra = object(&s, "app", "infra").expect("infra");
    let expected = format!("waiting for source/platform: it failed: {error}");
    assert_eq!(infra["message"], expected.as_str(), "{infra}");
    assert_eq!(infra["state"], "waiting");
    assert_eq!(infra["inputs"], serde_json::json!(["source/platform"]));
    // Waiting for a source that failed is one event: the second failure,
    // with the same error, adds nothing (and waiting for the first fetch,
    // as every app does at the start, is none).
    let infra_events = infra["events"].as_array().expect("events");
    assert_eq!(infra_events.len(), 1, "{infra}");
    assert_eq!(infra_events[0]["reason"], "ArtifactNotReady");
    assert_eq!(infra_events[0]["message"], expected.as_str());
    assert_eq!(infra_events[0]["count"], 1);
    // web waits for infra, which waits for the source: the chain is told.
    let web = object(&s, "app", "web").expect("web");
    assert_eq!(
        web["message"],
        format!("waiting for app/infra: {expected}").as_str(),
        "{web}"
    );
    assert!(!serde_json::to_string(&s).unwrap_or_default().contains("hunter2"));

    let addr = format!("127.0.0.1:{listen}");
    let run = env.run(&["events", "app/infra", "--addr", &addr, "--format", "json"]);
    run.expect_code(0);
    let listed: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed[0]["kind"], "app");
    assert_eq!(listed[0]["name"], "infra");
    assert_eq!(listed[0]["message"], expected.as_str());
}

/// Times, ages, hashes and paths out of `text`, which is aligned on them.
fn redact(text: &str) -> String {
    let rules = [
        // An age in the LAST SEEN column (as wide as its header).
        (r"(?m)^(  )?\d+[smhd](\d+[smh])? ago +", "${1}[AGE]      "),
        (r"\d{4}-\d\d-\d\dT[\d:.]+Z \([^)]*\)", "[TIME]"),
        (r"sha1:[0-9a-f]{40}", "sha1:[HASH]"),
        (
            r"(?m)^(  artifact +)\S+ \(sha256:[0-9a-f]{64}\)$",
            "${1}[PATH] (sha256:[SUM])",
        ),
    ];
    let mut text = text.to_string();
    for (pattern, with) in rules {
        let re = regex::Regex::new(pattern).expect("regex");
        text = re.replace_all(&text, with).into_owned();
    }
    text
}

#[test]
fn events_and_one_object_in_full_as_printed() {
    let f = Fixture::new();
    let agent = f.start(&app("web", "web"));
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    // The same fetch again, twice: counted, not repeated.
    for n in [2, 3] {
        assert_eq!(agent.post("/api/reconcile/source/repo", None).0, 202);
        agent.wait(LONG, "the source fetched again", |s| {
            runs(s, "source", "repo") == n
        });
    }
    let addr = format!("127.0.0.1:{}", f.port);
    let mooring = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--addr", &addr]);
        let run = f.env.run(&all);
        run.expect_code(0);
        assert!(!run.stdout.contains('\x1b'), "colour into a pipe");
        redact(&run.stdout)
    };
    insta::assert_snapshot!("events", mooring(&["events"]));
    insta::assert_snapshot!("status_source", mooring(&["status", "source/repo"]));
    insta::assert_snapshot!("status_app", mooring(&["status", "app/web"]));

    // Suspended, then resumed: both told.
    f.save(&format!(
        "{}suspend app=\"web\" reason=\"load test\"\n",
        app("web", "web")
    ));
    agent.wait(LONG, "app/web suspended", |s| {
        state(s, "app", "web") == "suspended"
    });
    f.save(&app("web", "web"));
    let s = agent.wait(LONG, "app/web run again", |s| {
        runs(s, "app", "web") == 2 && state(s, "app", "web") == "ready"
    });
    let reasons: Vec<&str> = object(&s, "app", "web").expect("web")["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["reason"].as_str())
        .collect();
    assert_eq!(reasons, ["Succeeded", "Suspended", "Resumed", "Succeeded"]);

    // No such object: exit 1 with a suggestion.
    let run = f.env.run(&["status", "app/wbe", "--addr", &addr]);
    run.expect_code(1);
    assert_eq!(
        run.stderr.trim_end(),
        "error: the agent runs no app named \"wbe\" (did you mean \"web\"?)"
    );
}
