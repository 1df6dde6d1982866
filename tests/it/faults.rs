//! Fault injection against real servers: each fault is made while
//! `mooring run` works, then removed. What must hold every time: a clear
//! status and log line, a retry with backoff (no busy loop), no partial
//! file left behind, no cache the next run cannot use, and convergence
//! once the fault is gone.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::agent::{Fixture, runs, state};
use crate::recorder::{HttpRecorder, Reply};
use crate::registry::{Entry, Registry, tarball};

const LONG: Duration = Duration::from_secs(30);

pub(crate) fn object<'a>(s: &'a Value, kind: &str, name: &str) -> &'a Value {
    s["objects"]
        .as_array()
        .and_then(|all| all.iter().find(|o| o["kind"] == kind && o["name"] == name))
        .unwrap_or(&Value::Null)
}

/// Seconds between an object's last run and its next one, from status.
fn next_wait(s: &Value, kind: &str, name: &str) -> Option<f64> {
    let o = object(s, kind, name);
    let at = |k: &str| o[k].as_str()?.parse::<jiff::Timestamp>().ok();
    let d = at("next_run")?.duration_since(at("last_run")?);
    Some(d.as_secs_f64())
}

/// Every path under `dir` whose name says it is unfinished work.
pub(crate) fn leftovers(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp") || name.starts_with(".mooring-") || name.ends_with(".partial") {
                out.push(e.path().display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Error500,
    RateLimited,
    Pass,
}

#[test]
fn a_registry_answering_500_then_429_backs_off_and_converges() {
    let registry = Registry::start();
    registry.push(
        "app",
        "1.0.0",
        &tarball(&[Entry::File(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-oci\n  namespace: demo\n",
        )]),
    );
    let mode = Arc::new(Mutex::new(Mode::Error500));
    let upstream = registry.host();
    let m = mode.clone();
    let proxy = HttpRecorder::start(move |_, _| match *m.lock().expect("mode") {
        Mode::Error500 => Reply::status(500),
        Mode::RateLimited => Reply::status(429).with_header("retry-after", "4"),
        Mode::Pass => Reply::Forward(format!("http://{upstream}")),
    });
    let f = Fixture::new();
    let repo = format!("127.0.0.1:{}/app", proxy.port);
    f.env.write(
        "mooring.kdl",
        &format!(
            "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{}\"\n}}\n\
             source \"art\" {{\n    oci \"{repo}\"\n    tag \"1.0.0\"\n    insecure #true\n    interval \"1s\"\n}}\n\
             app \"a\" {{\n    source \"art\"\n    target dir=\"out/a\"\n}}\n\
             image \"app\" {{\n    repository \"{repo}\"\n    insecure #true\n    semver \"*\"\n    interval \"1s\"\n}}\n",
            f.port
        ),
    );
    let agent = f.spawn(&[]);

    // 500: both fail, say so, and retry.
    let s = agent.wait(LONG, "both failed twice", |s| {
        runs(s, "source", "art") >= 2 && runs(s, "image", "app") >= 2
    });
    let src = object(&s, "source", "art");
    assert_eq!(src["reason"], "FetchFailed", "{src}");
    assert!(
        src["last_error"].as_str().is_some_and(|e| e.contains("500")),
        "{src}"
    );
    assert!(
        object(&s, "image", "app")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("500"))
    );
    assert_eq!(state(&s, "app", "a"), "waiting");
    assert!(!f.path().join("state/artifacts/art").exists() || leftovers(&f.path().join("state")).is_empty());

    // 429 with Retry-After: 4: the image waits at least that long.
    *mode.lock().expect("mode") = Mode::RateLimited;
    let s = agent.wait(LONG, "the image rate-limited", |s| {
        object(s, "image", "app")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("429"))
    });
    let wait = next_wait(&s, "image", "app").expect("next_run after last_run");
    assert!(
        wait >= 3.9,
        "the next scan is due {wait}s later, before Retry-After"
    );
    assert!(
        object(&s, "image", "app")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("retry after")),
        "{s}"
    );

    // The registry is back: everything converges.
    *mode.lock().expect("mode") = Mode::Pass;
    let s = agent.wait(LONG, "everything ready", |s| {
        state(s, "source", "art") == "ready"
            && state(s, "image", "app") == "ready"
            && state(s, "app", "a") == "ready"
    });
    let picked = object(&s, "image", "app")["revision"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(picked.starts_with(&format!("{repo}:1.0.0")), "{picked}");
    let written: Vec<String> = std::fs::read_dir(f.out("a"))
        .expect("out/a")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(written.iter().any(|n| n.contains("from-oci")), "{written:?}");
    assert!(leftovers(&f.path().join("state")).is_empty());
    assert!(proxy.requests().iter().any(|r| r.path.starts_with("/v2/app/")));
}
