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
    crate::support::walk(dir)
        .into_iter()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.contains(".tmp") || name.starts_with(".mooring-") || name.ends_with(".partial")
        })
        .map(|e| e.path().display().to_string())
        .collect()
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

#[test]
fn the_api_server_answering_500_409_late_or_closing_the_connection() {
    use crate::apiserver::{ApiServer, Fault, FaultKind};
    let server = ApiServer::start();
    let f = Fixture::new();
    server.kubeconfig(&f.path().join("kubeconfig"));
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  a: \"1\"\n";
    f.repo.write(&[("cluster/cm.yaml", cm)]);
    f.repo.commit("for the cluster");
    f.repo.publish();
    f.env.write(
        "mooring.kdl",
        &format!(
            "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{}\"\n}}\ncluster \"test\" {{ kubeconfig \"kubeconfig\"; }}\n\
             source \"repo\" {{\n    git \"{}\"\n    interval \"1h\"\n}}\n\
             app \"web\" {{\n    source \"repo\"\n    path \"cluster\"\n    cluster \"test\"\n    interval \"2s\"\n    timeout \"2s\"\n}}\n",
            f.port,
            f.repo.file_url()
        ),
    );
    let patch = |kind: FaultKind| Fault {
        method: Some("PATCH"),
        path: "/configmaps/settings".into(),
        times: None,
        kind,
    };
    // From the start: every apply of the ConfigMap fails with 500.
    server.inject(patch(FaultKind::Status(500)));
    let agent = f.spawn(&[]);
    for (fault, says) in [
        (None, "etcdserver: request timed out"),
        (Some(FaultKind::Status(409)), "the object has been modified"),
        (
            Some(FaultKind::Delay(Duration::from_secs(5))),
            "longer than the timeout of 2s",
        ),
        (Some(FaultKind::Close), "connection"),
    ] {
        if let Some(kind) = fault {
            server.clear_faults();
            server.inject(patch(kind));
        }
        let s = agent.wait(LONG, says, |s| {
            object(s, "app", "web")["last_error"]
                .as_str()
                .is_some_and(|e| e.contains(says))
        });
        let web = object(&s, "app", "web");
        eprintln!("status under the fault: {}", web["last_error"]);
        assert_eq!(web["reason"], "ApplyFailed", "{web}");
        // Retried with backoff, not given up.
        let retries = web["failures"].as_u64().unwrap_or(0);
        agent.wait(LONG, "another attempt", |s| {
            object(s, "app", "web")["failures"].as_u64().unwrap_or(0) > retries
        });
        assert!(
            next_wait(&agent.status(), "app", "web").is_some(),
            "a retry is due"
        );
    }
    // The API is well again: the ConfigMap arrives.
    server.clear_faults();
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let live = server.object("v1", "ConfigMap", Some("default"), "settings");
    assert_eq!(live.expect("applied")["data"]["a"], "1");
}

/// About `n` bytes of text that does not compress (a pack holds as much).
fn incompressible(n: usize, seed: u64) -> String {
    let mut rng = crate::rng::Rng::new(seed);
    let mut s = String::with_capacity(n + 64);
    while s.len() < n {
        s.push_str(&rng.hex(64));
        s.push('\n');
    }
    s
}

#[test]
fn a_git_server_dying_mid_fetch_leaves_a_cache_that_still_works() {
    use crate::faultproxy::{Behaviour, FaultProxy};
    use crate::gitserver::{GitDaemon, Repo};
    use crate::support::SourceFixture;
    let f = SourceFixture::new();
    let repo = Repo::new(f.path());
    repo.write(&[("big.txt", &incompressible(1 << 20, 1)), ("cm.yaml", "a: 1\n")]);
    repo.commit("big");
    repo.publish();
    let daemon = GitDaemon::start(f.path(), &repo.root);
    let proxy = FaultProxy::start(daemon.port);
    f.configure(&format!(
        "git \"git://127.0.0.1:{}/repo.git\"\ntimeout \"20s\"",
        proxy.port
    ));

    // The server goes away 128 KiB into the pack: the fetch fails, says
    // so, and leaves no artifact.
    proxy.set(Behaviour::CutServerAfter(128 * 1024));
    for _ in 0..2 {
        let (run, error) = f.fails();
        assert!(!error.is_empty(), "{}", run.stderr);
        eprintln!("the fetch cut mid-pack: {error}");
    }
    assert!(proxy.cuts() >= 2, "the cut happened inside the transfer");
    assert!(f.artifacts().is_empty(), "{:?}", f.artifacts());
    assert!(leftovers(&f.state()).is_empty(), "{:?}", leftovers(&f.state()));

    // Back: the same cache fetches, and then fetches incrementally.
    proxy.set(Behaviour::Pass);
    let first = f.ok();
    assert_eq!(
        std::fs::read_to_string(first.dir.join("cm.yaml")).expect("read"),
        "a: 1\n"
    );
    repo.write(&[("cm.yaml", "a: 2\n")]);
    repo.commit("small change");
    repo.publish();
    let second = f.ok();
    assert_ne!(second.revision, first.revision);
    assert_eq!(
        std::fs::read_to_string(second.dir.join("cm.yaml")).expect("read"),
        "a: 2\n"
    );
    assert!(leftovers(&f.state()).is_empty());
}

#[test]
fn a_git_server_dying_mid_push_loses_nothing_and_duplicates_nothing() {
    use crate::faultproxy::{Behaviour, FaultProxy};
    use crate::gitserver::{Repo, git_daemon_with_receive_pack};
    let registry = Registry::start();
    let layer = tarball(&[Entry::File("x", "x")]);
    for tag in ["1.0.0", "1.1.0"] {
        registry.push("web", tag, &layer);
    }
    let f = Fixture::new();
    let repo = Repo::new(&f.path().join("pushed"));
    let deploy = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: demo\ndata:\n  \
         image: {}:1.0.0 # {{\"$imagepolicy\": \"web\"}}\n",
        registry.repo("web"),
    );
    repo.write(&[("apps/web/cm.yaml", &deploy)]);
    let before = repo.commit("first");
    repo.publish();
    let daemon = git_daemon_with_receive_pack(f.path(), &repo.root);
    let proxy = FaultProxy::start(daemon.port);
    // A push's connection dies once its command is sent, inside the pack.
    proxy.set(Behaviour::CutClientAfterIf("git-receive-pack", 200));
    f.env.write(
        "mooring.kdl",
        &format!(
            "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{}\"\n}}\n\
             source \"repo\" {{\n    git \"git://127.0.0.1:{}/repo.git\"\n    interval \"1h\"\n}}\n\
             image \"web\" {{\n    repository \"{}\"\n    insecure #true\n    semver \"^1.0.0\"\n    interval \"1h\"\n}}\n\
             automation \"bump\" {{\n    source \"repo\"\n    author name=\"bot\" email=\"bot@example.com\"\n    interval \"1s\"\n}}\n",
            f.port,
            proxy.port,
            registry.repo("web")
        ),
    );
    let agent = f.spawn(&[]);
    let s = agent.wait(LONG, "the push cut twice", |s| {
        object(s, "automation", "bump")["failures"].as_u64().unwrap_or(0) >= 2
    });
    let bump = object(&s, "automation", "bump");
    eprintln!("status under the fault: {}", bump["last_error"]);
    assert_eq!(bump["reason"], "PushFailed", "{bump}");
    assert_eq!(bump["state"], "failed", "retried, not stalled: {bump}");
    assert!(proxy.cuts() >= 2);
    // The server has nothing of it: main where it was, the repository sound.
    let remote = |args: &[&str]| repo.served(args);
    assert_eq!(remote(&["rev-parse", "main"]), before);
    remote(&["fsck", "--no-dangling"]);

    // The server is back: one commit, on top, with the new tag.
    proxy.set(Behaviour::Pass);
    agent.wait(LONG, "the push through", |s| {
        state(s, "automation", "bump") == "ready"
    });
    assert_eq!(remote(&["rev-parse", "main~1"]), before);
    let pushed = remote(&["show", "main:apps/web/cm.yaml"]);
    assert!(pushed.contains(&format!("{}:1.1.0", registry.repo("web"))));
    assert_eq!(remote(&["rev-list", "--count", "main"]), "2");
    remote(&["fsck", "--no-dangling"]);
    assert!(leftovers(&f.path().join("state")).is_empty());
}

#[test]
fn the_config_file_deleted_replaced_by_a_directory_or_unreadable() {
    use crate::agent::app;
    use std::os::unix::fs::PermissionsExt as _;
    let f = Fixture::new();
    f.save(&app("web", "web"));
    // As root, permissions do not stop reads: without the capabilities
    // that bypass them, a mode 000 file is unreadable for root too.
    let mut cmd = if crate::support::is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args([
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
        ])
        .arg(crate::support::mooring_bin())
        .current_dir(f.path())
        .env_remove("MOORING_CONFIG")
        .env("NO_COLOR", "1");
        c
    } else {
        f.env.cmd()
    };
    cmd.args(["run", "-c", "mooring.kdl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut agent = f.spawn_command(cmd);
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let file = f.path().join("mooring.kdl");
    let text = std::fs::read_to_string(&file).expect("read");
    let failed_with = |why: &str| {
        let s = agent.wait(LONG, why, |s| {
            s["last_reload"]["result"] == "failed"
                && s["last_reload"]["diagnostics"]
                    .as_str()
                    .is_some_and(|d| d.contains(why))
        });
        assert_eq!(s["generation"], 1, "the running config stays");
        assert_eq!(state(&s, "app", "web"), "ready");
    };
    let ok_again = || {
        agent.wait(LONG, "the reload ok again", |s| {
            s["last_reload"]["result"] == "ok"
        })
    };

    std::fs::remove_file(&file).expect("delete");
    failed_with("No such file or directory");
    std::fs::write(&file, &text).expect("restore");
    assert_eq!(ok_again()["generation"], 1, "the same content: nothing restarted");

    std::fs::remove_file(&file).expect("delete");
    std::fs::create_dir(&file).expect("a directory in its place");
    failed_with("Is a directory");
    std::fs::remove_dir(&file).expect("rmdir");
    std::fs::write(&file, &text).expect("restore");
    ok_again();

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    failed_with("Permission denied");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod 644");
    ok_again();

    // And the watch still works: a real change is a new generation.
    f.save(&app("web", "web").replace("out/web", "out/web2"));
    agent.wait(LONG, "generation 2", |s| {
        s["generation"] == 2 && runs(s, "app", "web") == 2
    });
    let log = agent.log();
    assert_eq!(
        log.matches("cannot read").count(),
        3,
        "each fault said once, not at every look:\n{log}"
    );
}

#[test]
fn a_full_or_read_only_state_directory_fails_cleanly_and_recovers() {
    use crate::agent::app;
    let test = "faults::a_full_or_read_only_state_directory_fails_cleanly_and_recovers";
    if !crate::support::is_root() {
        return crate::support::skip(test, "mounting a small tmpfs needs root");
    }
    let probe = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            "mount -t tmpfs -o size=1m tmpfs /mnt",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return crate::support::skip(test, "this machine cannot mount a tmpfs in a mount namespace");
    }
    let f = Fixture::new();
    f.save(&app("web", "web"));
    let state_dir = f.path().join("state");
    std::fs::create_dir_all(&state_dir).expect("mkdir state");
    // The agent in its own mount namespace, on a 2 MiB tmpfs that a filler
    // file has already filled.
    let script = format!(
        "mount -t tmpfs -o size=2m tmpfs '{state}' && (head -c 4194304 /dev/zero > '{state}/filler' || true) && exec '{bin}' run -c mooring.kdl",
        state = state_dir.display(),
        bin = crate::support::mooring_bin().display(),
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(f.path())
        .env_remove("MOORING_CONFIG")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let agent = f.spawn_command(cmd);
    // The state directory as the agent sees it.
    let seen = std::path::PathBuf::from(format!("/proc/{}/root{}", agent.pid(), state_dir.display()));

    let s = agent.wait(LONG, "the fetch failed for want of space", |s| {
        object(s, "source", "repo")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("No space left on device"))
    });
    let source = object(&s, "source", "repo");
    eprintln!("status on a full disk: {}", source["last_error"]);
    assert_eq!(source["reason"], "FetchFailed");
    assert_eq!(source["state"], "failed", "retried: {source}");
    assert!(leftovers(&seen).is_empty(), "{:?}", leftovers(&seen));
    assert!(
        !seen.join("artifacts/repo").exists()
            || std::fs::read_dir(seen.join("artifacts/repo")).map_or(0, |d| d.count()) == 0
    );

    // Space again: it converges.
    std::fs::remove_file(seen.join("filler")).expect("remove the filler");
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    assert!(leftovers(&seen).is_empty());

    // Read-only: a new revision cannot be fetched; then it can.
    let remount = |how: &str| {
        let out = std::process::Command::new("nsenter")
            .args([
                "-t",
                &agent.pid().to_string(),
                "-m",
                "mount",
                "-o",
                &format!("remount,{how}"),
            ])
            .arg(&state_dir)
            .output()
            .expect("nsenter");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    remount("ro");
    f.repo.write(&[(
        "web/extra.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: demo\n",
    )]);
    let new = f.repo.commit("more");
    f.repo.publish();
    f.env
        .run(&["reconcile", "source/repo", "-c", "mooring.kdl"])
        .expect_code(0);
    let s = agent.wait(LONG, "the fetch failed on a read-only disk", |s| {
        object(s, "source", "repo")["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("Read-only file system"))
    });
    eprintln!(
        "status on a read-only disk: {}",
        object(&s, "source", "repo")["last_error"]
    );
    assert_eq!(
        state(&s, "app", "web"),
        "ready",
        "the app keeps its last good artifact"
    );
    remount("rw");
    agent.wait(LONG, "the new revision applied", |s| {
        object(s, "app", "web")["revision"]
            .as_str()
            .is_some_and(|r| r.ends_with(&new))
            && state(s, "app", "web") == "ready"
    });
    assert!(leftovers(&seen).is_empty(), "{:?}", leftovers(&seen));
}
