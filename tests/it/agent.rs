//! `mooring run` and `mooring once` end to end: the real binary, a git
//! repository served over file://, directory targets, the HTTP API, hot
//! reload, suspensions, signals and sd_notify.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::gitserver::Repo;
use crate::support::{TestEnv, free_port, wait_for};

const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: demo\nspec:\n  replicas: 1\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: demo\n";
const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: demo\ndata:\n  a: \"1\"\n";

/// A test env with a git repository of manifests and a config around it.
pub(crate) struct Fixture {
    pub(crate) env: TestEnv,
    pub(crate) repo: Repo,
    pub(crate) port: u16,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        let env = TestEnv::new();
        let repo = Repo::new(&env.path().join("git"));
        repo.write(&[
            ("web/deploy.yaml", DEPLOY),
            ("web/service.yaml", SERVICE),
            ("settings/cm.yaml", CONFIGMAP),
        ]);
        repo.commit("first");
        repo.publish();
        Fixture {
            env,
            repo,
            port: free_port(),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.env.path()
    }

    /// A config: the agent block, source `repo`, then `body`.
    pub(crate) fn config(&self, body: &str) -> String {
        format!(
            "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{}\"\n}}\nsource \"repo\" {{\n    git \"{}\"\n    interval \"1h\"\n}}\n{body}",
            self.port,
            self.repo.file_url()
        )
    }

    /// Replace the config the way editors do: write a temp file, rename it over.
    pub(crate) fn save(&self, body: &str) {
        let tmp = self.path().join(".mooring.kdl.swp");
        std::fs::write(&tmp, self.config(body)).expect("write temp config");
        std::fs::rename(&tmp, self.path().join("mooring.kdl")).expect("rename config");
    }

    pub(crate) fn out(&self, name: &str) -> PathBuf {
        self.path().join("out").join(name)
    }

    pub(crate) fn start(&self, body: &str) -> Running {
        self.save(body);
        self.spawn(&[])
    }

    pub(crate) fn spawn(&self, env: &[(&str, &str)]) -> Running {
        let mut cmd = self.env.cmd();
        cmd.args(["run", "-c", "mooring.kdl"])
            .env("MOORING_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.spawn_command(cmd)
    }

    /// Start `mooring run` as `cmd` says and wait until it is ready.
    pub(crate) fn spawn_command(&self, cmd: std::process::Command) -> Running {
        Running::start(cmd, self.port)
    }
}

impl Running {
    /// Start `mooring run` as `cmd` says, listening on `port`, and wait
    /// until it is ready.
    pub(crate) fn start(mut cmd: std::process::Command, port: u16) -> Running {
        let child = cmd.spawn().expect("start mooring run");
        let mut running = Running {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
        };
        running.wait_ready();
        running
    }
}

/// A running `mooring run`; killed on drop.
pub(crate) struct Running {
    child: Option<Child>,
    base: String,
    http: reqwest::blocking::Client,
}

impl Running {
    pub(crate) fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send()
                && r.status().is_success()
            {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = self.log();
                panic!("mooring run exited early ({status})\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "mooring run never became ready\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id of the agent (while it runs).
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub(crate) fn status(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/api/status", self.base))
            .send()
            .expect("GET /api/status");
        assert!(r.status().is_success(), "status answered {}", r.status());
        r.json().expect("status JSON")
    }

    pub(crate) fn get(&self, path: &str) -> (u16, String) {
        let r = self.http.get(format!("{}{path}", self.base)).send().expect("GET");
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    pub(crate) fn post(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().expect("POST");
        (r.status().as_u16(), r.json().unwrap_or_default())
    }

    /// Poll the status until `pred` holds, at most `within`; the status that did.
    #[track_caller]
    pub(crate) fn wait(&self, within: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_for(within, what, || {
            let s = self.status();
            match pred(&s) {
                true => Ok(s),
                false => Err(format!("last status:\n{s:#}")),
            }
        })
    }

    /// Send `signal` and wait for the exit code.
    pub(crate) fn signal(&mut self, signal: &str) -> (i32, String) {
        let child = self.child.take().expect("running");
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        let out = child.wait_with_output().expect("wait for mooring");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub(crate) fn log(&mut self) -> String {
        match self.child.take() {
            Some(mut c) => {
                let _ = c.kill();
                c.wait_with_output()
                    .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_default()
            }
            None => String::new(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub(crate) fn object<'a>(s: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    s["objects"]
        .as_array()?
        .iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
}

pub(crate) fn state(s: &Value, kind: &str, name: &str) -> String {
    object(s, kind, name)
        .and_then(|o| o["state"].as_str())
        .unwrap_or("absent")
        .to_string()
}

pub(crate) fn runs(s: &Value, kind: &str, name: &str) -> u64 {
    object(s, kind, name)
        .and_then(|o| o["runs"].as_u64())
        .unwrap_or(0)
}

pub(crate) fn app(name: &str, path: &str) -> String {
    format!(
        "app \"{name}\" {{\n    source \"repo\"\n    path \"{path}\"\n    target dir=\"out/{name}\"\n}}\n"
    )
}

const LONG: Duration = Duration::from_secs(20);

#[test]
fn the_loop_writes_manifests_and_serves_status_and_metrics() {
    let f = Fixture::new();
    let mut agent = f.start(&app("web", "web"));
    let s = agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let web = object(&s, "app", "web").expect("app/web");
    assert_eq!(web["applied"]["created"], 2, "{web}");
    let rev = web["revision"].as_str().expect("revision");
    assert!(rev.starts_with("main@sha1:"), "{rev}");
    assert_eq!(s["generation"], 1);
    assert_eq!(s["last_reload"]["result"], "ok");
    let files = list(&f.out("web"));
    assert_eq!(files.len(), 2, "{files:?}");
    let deploy = files
        .iter()
        .find(|n| n.contains("deployment"))
        .expect("a deployment file");
    assert_eq!(
        std::fs::read_to_string(f.out("web").join(deploy)).ok().as_deref(),
        Some(DEPLOY)
    );

    let (code, metrics) = agent.get("/metrics");
    assert_eq!(code, 200);
    for needle in [
        "mooring_reconciles_total{kind=\"source\",result=\"success\"} 1",
        "mooring_reconciles_total{kind=\"app\",result=\"success\"} 1",
        "mooring_config_generation 1",
        "mooring_objects{kind=\"app\",state=\"ready\"} 1",
        "mooring_last_success_timestamp_seconds{kind=\"app\",name=\"web\"}",
        "mooring_reconcile_duration_seconds_count{kind=\"app\"} 1",
    ] {
        assert!(metrics.contains(needle), "no `{needle}` in\n{metrics}");
    }
    assert_eq!(agent.get("/healthz").0, 200);

    // The human table, through the CLI client.
    let table = f.env.run(&["status", "-c", "mooring.kdl"]);
    table.expect_code(0);
    let line = table
        .stdout
        .lines()
        .find(|l| l.starts_with("app"))
        .expect("an app row");
    assert!(
        line.contains("web") && line.contains("ready") && line.contains("main@sha1:"),
        "{}",
        table.stdout
    );

    // A new commit, then a manual reconcile of the source: the app follows at once.
    f.repo
        .write(&[("web/service.yaml", &SERVICE.replace("web\n", "web-v2\n"))]);
    f.repo.commit("rename the service");
    f.repo.publish();
    let run = f.env.run(&["reconcile", "source/repo", "-c", "mooring.kdl"]);
    run.expect_code(0);
    let s = agent.wait(LONG, "app/web at the new revision", |s| {
        object(s, "app", "web").is_some_and(|o| o["revision"].as_str() != Some(rev) && o["state"] == "ready")
    });
    let web = object(&s, "app", "web").expect("app/web");
    assert_eq!(web["applied"]["created"], 1, "{web}");
    assert_eq!(web["applied"]["pruned"], 0, "prune is off: {web}");
    assert_eq!(list(&f.out("web")).len(), 3);

    let (code, stderr) = agent.signal("TERM");
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

/// How fast a reload is, is measured by benches/agent.rs (reload latency),
/// not asserted here.
#[test]
fn an_edit_by_rename_starts_the_new_app_and_restarts_nothing_else() {
    let f = Fixture::new();
    let agent = f.start(&format!("{}{}", app("web", "web"), app("settings", "settings")));
    let before = agent.wait(LONG, "both apps ready", |s| {
        state(s, "app", "web") == "ready" && state(s, "app", "settings") == "ready"
    });

    // Add an app and change another; `web` and the source stay as they are.
    f.save(&format!(
        "{}{}{}",
        app("web", "web"),
        app("settings", "settings").replace("target dir=\"out/settings\"", "target dir=\"out/settings2\""),
        app("more", "settings"),
    ));
    agent.wait(LONG, "app/more in the status", |s| {
        s["generation"] == 2 && object(s, "app", "more").is_some()
    });
    let after = agent.wait(LONG, "the new and changed apps ready", |s| {
        state(s, "app", "more") == "ready" && runs(s, "app", "settings") == 2
    });
    assert_eq!(
        runs(&after, "app", "web"),
        runs(&before, "app", "web"),
        "app/web restarted"
    );
    assert_eq!(runs(&after, "source", "repo"), 1, "the source restarted");
    assert_eq!(object(&after, "app", "web").expect("web")["generation"], 1);
    assert_eq!(
        object(&after, "app", "settings").expect("settings")["generation"],
        2
    );
    assert_eq!(list(&f.out("settings2")).len(), 1);

    // Removing an app stops its task and drops it from the status.
    f.save(&app("web", "web"));
    agent.wait(LONG, "only app/web left", |s| {
        s["generation"] == 3 && object(s, "app", "more").is_none() && object(s, "app", "settings").is_none()
    });
}

#[test]
fn an_invalid_edit_keeps_the_running_config_and_status_shows_where() {
    let f = Fixture::new();
    let agent = f.start(&app("web", "web"));
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    // Line 12 of the file: the app's `path` node gets an unknown sibling.
    f.save(&app("web", "web").replace("    path \"web\"\n", "    path \"web\"\n    pathh \"x\"\n"));
    let s = agent.wait(LONG, "a failed reload", |s| {
        s["last_reload"]["result"] == "failed"
    });
    assert_eq!(s["generation"], 1);
    assert_eq!(state(&s, "app", "web"), "ready");
    let diags = s["last_reload"]["diagnostics"]
        .as_str()
        .expect("rendered diagnostics");
    assert!(diags.contains("mooring.kdl:12:5"), "{diags}");
    assert!(diags.contains("pathh"), "{diags}");
    let problems = &s["last_reload"]["problems"][0];
    assert_eq!(
        (problems["line"].as_u64(), problems["column"].as_u64()),
        (Some(12), Some(5)),
        "{problems}"
    );

    let table = f.env.run(&["status", "-c", "mooring.kdl"]);
    assert!(table.stdout.contains("last reload failed"), "{}", table.stdout);
    assert!(table.stdout.contains("mooring.kdl:12:5"), "{}", table.stdout);

    // Fixing the file recovers.
    f.save(&app("web", "web").replace("out/web", "out/web2"));
    let s = agent.wait(LONG, "a good reload", |s| s["last_reload"]["result"] == "ok");
    assert_eq!(s["generation"], 2);
    agent.wait(LONG, "app/web written to web2", |s| runs(s, "app", "web") == 2);
    assert_eq!(list(&f.out("web2")).len(), 2);
}

#[test]
fn a_configmap_style_data_swap_reloads() {
    let f = Fixture::new();
    // /etc/mooring as the kubelet lays out a ConfigMap volume.
    let vol = f.path().join("vol");
    let write_version = |n: u32, body: &str| {
        let dir = vol.join(format!("..2026_11_29_{n}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(
            dir.join("mooring.kdl"),
            f.config(body).replace("\"state\"", "\"../state\""),
        )
        .expect("write");
        let tmp = vol.join("..data_tmp");
        std::os::unix::fs::symlink(format!("..2026_11_29_{n}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, vol.join("..data")).expect("swap ..data");
    };
    write_version(1, &app("web", "web"));
    std::os::unix::fs::symlink("..data/mooring.kdl", vol.join("mooring.kdl")).expect("symlink");
    let mut cmd = f.env.cmd();
    cmd.args(["run", "-c", "vol/mooring.kdl"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut agent = Running {
        child: Some(cmd.spawn().expect("start")),
        base: format!("http://127.0.0.1:{}", f.port),
        http: reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
    };
    agent.wait_ready();
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    write_version(
        2,
        &format!("{}{}", app("web", "web"), app("settings", "settings")),
    );
    agent.wait(LONG, "app/settings ready after the swap", |s| {
        s["generation"] == 2 && state(s, "app", "settings") == "ready"
    });
}

#[test]
fn suspend_stops_new_runs_and_until_expiry_resumes() {
    let f = Fixture::new();
    let agent = f.start(&app("web", "web"));
    let s = agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let first = object(&s, "app", "web").expect("web")["revision"].clone();

    f.env
        .run(&[
            "suspend",
            "app/web",
            "--reason",
            "incident 42",
            "--until",
            "4s",
            "-c",
            "mooring.kdl",
        ])
        .expect_code(0);
    let s = agent.wait(LONG, "app/web suspended", |s| {
        state(s, "app", "web") == "suspended"
    });
    let web = object(&s, "app", "web").expect("web");
    assert_eq!(web["suspended"]["reason"], "incident 42");
    assert!(web["suspended"]["until"].is_string(), "{web}");
    let (code, body) = agent.post("/api/reconcile/app/web", None);
    assert_eq!(code, 409, "{body}");

    // A new revision arrives while suspended: the source takes it, the app does not.
    f.repo.write(&[("web/extra.yaml", CONFIGMAP)]);
    f.repo.commit("more");
    f.repo.publish();
    assert_eq!(agent.post("/api/reconcile/source/repo", None).0, 202);
    agent.wait(LONG, "the source at the new revision", |s| {
        runs(s, "source", "repo") == 2
    });
    assert_eq!(state(&agent.status(), "app", "web"), "suspended");
    assert_eq!(list(&f.out("web")).len(), 2);

    // Expiry resumes it at once, with the new revision.
    let s = agent.wait(LONG, "app/web resumed", |s| {
        state(s, "app", "web") == "ready" && runs(s, "app", "web") == 2
    });
    let web = object(&s, "app", "web").expect("web");
    assert_ne!(web["revision"], first);
    assert!(web.get("suspended").is_none(), "{web}");
    assert_eq!(list(&f.out("web")).len(), 3);
}

#[test]
fn sd_notify_ready_watchdog_reloading_and_stopping() {
    let f = Fixture::new();
    let sock_path = f.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind NOTIFY_SOCKET");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    f.save(&app("web", "web"));
    let mut agent = f.spawn(&[
        ("NOTIFY_SOCKET", sock_path.to_str().expect("utf-8 path")),
        ("WATCHDOG_USEC", "200000"),
    ]);
    let mut seen = String::new();
    let read_until = |needle: &str, seen: &mut String| {
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {needle} ({e}); got:\n{seen}"));
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    };
    read_until("READY=1", &mut seen);
    read_until("WATCHDOG=1", &mut seen);
    assert!(seen.contains("STATUS=generation 1"), "{seen}");
    let mut kill = std::process::Command::new("kill");
    let pid = agent.child.as_ref().expect("child").id().to_string();
    kill.args(["-HUP", &pid]).status().expect("kill -HUP");
    read_until("RELOADING=1", &mut seen);
    assert!(seen.contains("MONOTONIC_USEC="), "{seen}");
    let (code, log) = agent.signal("TERM");
    read_until("STOPPING=1", &mut seen);
    assert_eq!(code, 0, "{log}");
}

#[test]
fn other_web_origins_may_not_post_and_other_host_names_are_refused_on_loopback() {
    let f = Fixture::new();
    let _agent = f.start(&app("web", "web"));
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let base = format!("http://127.0.0.1:{}", f.port);
    let post = |origin: Option<&str>| {
        let mut req = http.post(format!("{base}/api/reconcile/app/web"));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let r = req.send().expect("POST");
        (r.status().as_u16(), r.text().unwrap_or_default())
    };
    // A page of another site posting to the agent (CSRF): refused.
    let (code, body) = post(Some("https://evil.example"));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("another web origin"), "{body}");
    let (code, _) = post(Some("null"));
    assert_eq!(code, 403);
    // The agent's own page, and tools that send no Origin: accepted.
    let (code, body) = post(Some(&base));
    assert_eq!(code, 202, "{body}");
    let (code, body) = post(None);
    assert_eq!(code, 202, "{body}");
    // DNS rebinding: another name for 127.0.0.1 reads nothing.
    for path in ["/api/status", "/"] {
        let r = http
            .get(format!("{base}{path}"))
            .header("host", format!("evil.example:{}", f.port))
            .send()
            .expect("GET");
        assert_eq!(r.status().as_u16(), 403, "{path}");
        let r = http
            .get(format!("{base}{path}"))
            .header("host", format!("localhost:{}", f.port))
            .send()
            .expect("GET");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    // Probes and receivers are not browser endpoints.
    let r = http
        .get(format!("{base}/healthz"))
        .header("host", "evil.example")
        .send()
        .expect("GET");
    assert_eq!(r.status().as_u16(), 200);
}

#[test]
fn post_needs_the_token_when_one_is_configured() {
    let f = Fixture::new();
    f.env.write("token", "s3cret-token\n");
    let body = app("web", "web");
    let config = f
        .config(&body)
        .replace("agent {\n", "agent {\n    api-token-file \"token\"\n");
    f.env.write("mooring.kdl", &config);
    let agent = f.spawn(&[]);
    let (code, body) = agent.post("/api/reconcile/app/web", None);
    assert_eq!(code, 401, "{body}");
    let (code, _) = agent.post("/api/reconcile/app/web", Some("wrong"));
    assert_eq!(code, 401);
    let (code, body) = agent.post("/api/reconcile/app/web", Some("s3cret-token"));
    assert_eq!(code, 202, "{body}");
    let (code, body) = agent.post("/api/reconcile/app/nope", Some("s3cret-token"));
    assert_eq!(code, 404, "{body}");
    // The CLI client reads the token file from the config.
    f.env
        .run(&["reconcile", "app/web", "-c", "mooring.kdl"])
        .expect_code(0);
    let run = f.env.run(&["reconcile", "app/nope", "-c", "mooring.kdl"]);
    run.expect_code(1);
    assert!(run.stderr.contains("no app/nope"), "{}", run.stderr);
    assert!(
        !agent.get("/api/status").1.contains("s3cret"),
        "the token leaked into status"
    );
}

#[test]
fn once_runs_everything_in_dependency_order_and_reports_failures() {
    let f = Fixture::new();
    let body = format!(
        "{}{}",
        app("web", "web").replace("}\n", "    depends-on \"settings\"\n}\n"),
        app("settings", "settings")
    );
    f.env.write("mooring.kdl", &f.config(&body));
    let run = f
        .env
        .run(&["once", "-v", "-c", "mooring.kdl", "--format", "json"]);
    run.expect_code(0);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let results: Vec<(String, String)> = out
        .as_array()
        .expect("array")
        .iter()
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or(""),
                    o["name"].as_str().unwrap_or("")
                ),
                o["result"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        results,
        [("source/repo", "ok"), ("app/web", "ok"), ("app/settings", "ok")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(list(&f.out("web")).len(), 2);

    // A broken manifest: the app fails with its file and line, the app that
    // depends on it does not run, nothing is written.
    f.repo.write(&[(
        "settings/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
    )]);
    f.repo.commit("break it");
    f.repo.publish();
    let run = f.env.run(&["once", "-v", "app/web", "-c", "mooring.kdl"]);
    run.expect_code(1);
    let settings = run
        .stdout
        .lines()
        .find(|l| l.starts_with("app/settings"))
        .expect("settings line");
    assert!(
        settings.contains("RenderFailed") && settings.contains("settings/cm.yaml:4"),
        "{}",
        run.stdout
    );
    let web = run
        .stdout
        .lines()
        .find(|l| l.starts_with("app/web"))
        .expect("web line");
    assert!(web.contains("DependencyNotReady"), "{}", run.stdout);
    assert_eq!(
        std::fs::read_to_string(f.out("settings").join(list(&f.out("settings"))[0].clone()))
            .ok()
            .as_deref(),
        Some(CONFIGMAP)
    );
}

/// The file names in `dir` (not hidden ones), sorted.
fn list(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn once_skips_suspended_objects_and_what_needs_them() {
    let f = Fixture::new();
    let body = format!(
        "{}{}suspend source=\"repo\" reason=\"frozen\"\n",
        app("web", "web"),
        app("settings", "settings").replace("}\n", "    depends-on \"web\"\n}\n"),
    );
    f.env.write("mooring.kdl", &f.config(&body));
    let run = f.env.run(&["once", "-v", "-c", "mooring.kdl"]);
    run.expect_code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines[0], "source/repo  suspended", "{}", run.stdout);
    assert!(
        lines[1].starts_with("app/web  failed (ArtifactNotReady): source/repo is suspended"),
        "{}",
        run.stdout
    );
    assert!(
        lines[2].starts_with("app/settings  failed (DependencyNotReady): waiting for app/web"),
        "{}",
        run.stdout
    );
}

#[test]
fn json_logs_carry_the_reconcile_span_and_log_files_rotate_into_their_dir() {
    let f = Fixture::new();
    let config = f.config(&app("web", "web")).replace(
        "agent {\n",
        "agent {\n    log level=\"info\" format=\"json\"\n    log-file dir=\"logs\" rotate=\"daily\" keep=3\n",
    );
    f.env.write("mooring.kdl", &config);
    let run = f
        .env
        .cmd()
        .args(["once", "-v", "-c", "mooring.kdl"])
        .env_remove("MOORING_LOG")
        .output()
        .expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let stderr = String::from_utf8_lossy(&run.stderr);
    let applied: Value = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("applied"))
        })
        .unwrap_or_else(|| panic!("no JSON line for the apply in\n{stderr}"));
    assert_eq!(applied["level"], "INFO");
    assert_eq!(applied["span"]["kind"], "app", "{applied}");
    assert_eq!(applied["span"]["object"], "web", "{applied}");
    assert!(
        applied["span"]["revision"]
            .as_str()
            .is_some_and(|r| r.starts_with("main@sha1:")),
        "{applied}"
    );
    let logs = list(&f.path().join("logs"));
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert!(
        logs[0].starts_with("mooring.") && logs[0].ends_with(".log"),
        "{logs:?}"
    );
    let file = std::fs::read_to_string(f.path().join("logs").join(&logs[0])).expect("log file");
    assert!(file.contains("\"applied "), "{file}");
}

#[test]
fn a_bad_manifest_stalls_the_app_until_a_new_revision_fixes_it() {
    let f = Fixture::new();
    f.repo
        .write(&[("web/broken.yaml", "kind: ConfigMap\nmetadata: {name: x}\n")]);
    f.repo.commit("no apiVersion");
    f.repo.publish();
    let agent = f.start(&app("web", "web"));
    let s = agent.wait(LONG, "app/web stalled", |s| state(s, "app", "web") == "stalled");
    let web = object(&s, "app", "web").expect("web");
    assert_eq!(web["reason"], "RenderFailed", "{web}");
    let error = web["last_error"].as_str().expect("last_error");
    assert!(
        error.contains("web/broken.yaml:1") && error.contains("apiVersion"),
        "{error}"
    );
    assert!(
        web.get("next_run").is_none(),
        "a stalled app has no next run: {web}"
    );
    assert!(list(&f.out("web")).is_empty(), "a failed render wrote files");

    // The fix arrives as a new revision: the app runs at once, no backoff to wait out.
    f.repo.write(&[(
        "web/broken.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: demo}\n",
    )]);
    f.repo.commit("fix");
    f.repo.publish();
    assert_eq!(agent.post("/api/reconcile/source/repo", None).0, 202);
    let s = agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    assert_eq!(object(&s, "app", "web").expect("web")["failures"], 0);
    assert_eq!(list(&f.out("web")).len(), 3);
}

#[test]
fn an_unreachable_source_fails_with_backoff_and_a_listen_change_needs_a_restart() {
    let f = Fixture::new();
    let agent = f.start(&app("web", "web"));
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    let moved = f
        .config(&app("web", "web"))
        .replace(&f.repo.file_url(), "git://127.0.0.1:1/nothing.git");
    let other = free_port();
    let moved = moved.replace(&format!("127.0.0.1:{}", f.port), &format!("127.0.0.1:{other}"));
    let tmp = f.path().join(".edit");
    std::fs::write(&tmp, moved).expect("write");
    std::fs::rename(&tmp, f.path().join("mooring.kdl")).expect("rename");
    // Still served on the old address, which the status says needs a restart.
    let s = agent.wait(LONG, "the source failing", |s| {
        state(s, "source", "repo") == "failed"
    });
    assert_eq!(
        s["last_reload"]["restart_needed"],
        serde_json::json!(["agent.listen"])
    );
    let repo = object(&s, "source", "repo").expect("repo");
    assert_eq!(repo["reason"], "FetchFailed", "{repo}");
    assert_eq!(repo["failures"], 1, "{repo}");
    assert!(repo["next_run"].is_string(), "a failed source is retried: {repo}");
    // The app waits for an artifact of the new definition; what it wrote stays.
    let web = object(&s, "app", "web").expect("web");
    assert_eq!(
        (web["state"].as_str(), web["reason"].as_str()),
        (Some("waiting"), Some("ArtifactNotReady")),
        "{web}"
    );
    assert_eq!(list(&f.out("web")).len(), 2);
}

#[test]
fn a_suspended_source_keeps_serving_its_last_artifact() {
    let f = Fixture::new();
    let agent = f.start(&app("web", "web"));
    agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
    f.save(&format!("{}suspend source=\"repo\"\n", app("web", "settings")));
    let s = agent.wait(LONG, "app/web rerun on the suspended source's artifact", |s| {
        state(s, "source", "repo") == "suspended"
            && runs(s, "app", "web") == 2
            && state(s, "app", "web") == "ready"
    });
    assert_eq!(runs(&s, "source", "repo"), 1);
    assert_eq!(
        list(&f.out("web")).len(),
        3,
        "two objects of web plus the one of settings (no prune)"
    );
}
