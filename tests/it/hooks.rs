//! Webhook receivers end to end: `mooring run` with a git source served
//! over smart HTTP, hooks posted to its listener as GitHub, GitLab, a
//! registry or a generic sender would post them. Signatures are made here
//! with the same HMAC the senders use.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::agent::{Fixture, Running, app, runs, state};
use crate::gitserver::HttpGit;

const SECRET: &str = "hook-s3cret-value";
const LONG: Duration = Duration::from_secs(20);

fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// An agent whose source `repo` is the fixture's repository over smart
/// HTTP (so a push names its URL), an app `web` of it, and `receivers`.
struct Hooked {
    f: Fixture,
    _http: HttpGit,
    url: String,
    agent: Running,
    http: reqwest::blocking::Client,
}

impl Hooked {
    fn start(receivers: &str, agent_extra: &str) -> Hooked {
        let f = Fixture::new();
        let http = HttpGit::start(f.path(), &f.repo.root, None);
        let url = http.url("repo.git");
        f.env.write("hook-secret", &format!("{SECRET}\n"));
        let config = format!(
            "agent {{\n    state-dir \"state\"\n    listen \"127.0.0.1:{port}\"\n{agent_extra}}}\n\
             source \"repo\" {{\n    git \"{url}\"\n    branch \"main\"\n    interval \"1h\"\n}}\n{app}{receivers}",
            port = f.port,
            app = app("web", "web"),
        );
        f.env.write("mooring.kdl", &config);
        let agent = f.spawn(&[]);
        agent.wait(LONG, "app/web ready", |s| state(s, "app", "web") == "ready");
        Hooked {
            f,
            _http: http,
            url,
            agent,
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client"),
        }
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value, Option<String>) {
        let mut req = self
            .http
            .post(format!("http://127.0.0.1:{}{path}", self.f.port))
            .body(body.to_vec());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().expect("POST a hook");
        let retry_after = res
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (res.status().as_u16(), res.json().unwrap_or_default(), retry_after)
    }

    fn github_push(&self, git_ref: &str, clone_url: &str, delivery: &str) -> (u16, Value) {
        let body = json!({
            "ref": git_ref,
            "repository": { "clone_url": clone_url, "default_branch": "main" },
        })
        .to_string();
        let sig = sign(body.as_bytes(), SECRET);
        let (code, json, _) = self.post(
            "/hooks/github",
            &[
                ("x-github-event", "push"),
                ("x-github-delivery", delivery),
                ("x-hub-signature-256", &sig),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        );
        (code, json)
    }

    fn new_commit(&self) {
        self.f
            .repo
            .write(&[("web/extra.yaml", &crate_configmap("extra"))]);
        self.f.repo.commit("more");
        self.f.repo.publish();
    }
}

fn crate_configmap(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: demo\n")
}

fn object<'a>(s: &'a Value, kind: &str, name: &str) -> &'a Value {
    s["objects"]
        .as_array()
        .and_then(|all| all.iter().find(|o| o["kind"] == kind && o["name"] == name))
        .unwrap_or(&Value::Null)
}

fn receiver(s: &Value, name: &str) -> Value {
    s["receivers"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

const GITHUB: &str = "receiver \"github\" {\n    type \"github\"\n    secret-file \"hook-secret\"\n    reconcile \"source/repo\"\n}\n";

#[test]
fn a_signed_github_push_fetches_at_once_and_a_replay_does_nothing() {
    let mut h = Hooked::start(GITHUB, "");
    h.new_commit();
    let (code, body) = h.github_push("refs/heads/main", &h.url, "delivery-1");
    assert_eq!(
        (code, &body["accepted"]),
        (202, &json!(["source/repo"])),
        "{body}"
    );
    let s = h.agent.wait(LONG, "the source fetched by the hook", |s| {
        runs(s, "source", "repo") == 2 && state(s, "app", "web") == "ready" && runs(s, "app", "web") == 2
    });
    assert_eq!(object(&s, "source", "repo")["trigger"], "webhook", "{s}");
    // The app followed the new revision as an input.
    assert_eq!(object(&s, "app", "web")["trigger"], "input");

    // The same delivery again (GitHub's "redeliver"): answered, not run.
    let (code, body) = h.github_push("refs/heads/main", &h.url, "delivery-1");
    assert_eq!((code, &body["duplicate"]), (200, &json!("delivery-1")), "{body}");
    let s = h.agent.status();
    assert_eq!(runs(&s, "source", "repo"), 2);
    let r = receiver(&s, "github");
    assert_eq!(
        (r["accepted"].as_u64(), r["duplicates"].as_u64()),
        (Some(1), Some(1)),
        "{r}"
    );

    // A ping is answered; nothing runs.
    let body = b"{\"zen\":\"x\"}";
    let sig = sign(body, SECRET);
    let (code, json, _) = h.post(
        "/hooks/github",
        &[("x-github-event", "ping"), ("x-hub-signature-256", &sig)],
        body,
    );
    assert_eq!((code, &json["pong"]), (200, &json!(true)));
    let (code, _) = h.agent.signal("TERM");
    assert_eq!(code, 0);
}

#[test]
fn pushes_elsewhere_are_ignored_and_bad_proofs_are_refused_without_the_secret() {
    let mut h = Hooked::start(GITHUB, "");
    // Another branch, another repository: valid, but not the source's.
    let (code, body) = h.github_push("refs/heads/dev", &h.url, "d-branch");
    assert_eq!(code, 200, "{body}");
    assert!(
        body["skipped"]["source/repo"]
            .as_str()
            .is_some_and(|s| s.contains("refs/heads/dev")),
        "{body}"
    );
    let (code, body) = h.github_push("refs/heads/main", "https://github.com/someone/else.git", "d-repo");
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["skipped"]["source/repo"], "a push to another repository");

    // Wrong secret, no signature, a signature of another body.
    let body = json!({ "ref": "refs/heads/main", "repository": { "clone_url": h.url } }).to_string();
    let wrong = sign(body.as_bytes(), "not-the-secret");
    for headers in [
        vec![
            ("x-github-event", "push"),
            ("x-hub-signature-256", wrong.as_str()),
        ],
        vec![("x-github-event", "push")],
        vec![("x-github-event", "push"), ("x-hub-signature-256", "sha256=00")],
    ] {
        let (code, json, _) = h.post("/hooks/github", &headers, body.as_bytes());
        assert_eq!(code, 401, "{json}");
        assert!(!json.to_string().contains(SECRET));
    }
    // An unknown receiver.
    let (code, _, _) = h.post("/hooks/nope", &[], b"{}");
    assert_eq!(code, 404);

    let s = h.agent.status();
    assert_eq!(runs(&s, "source", "repo"), 1, "nothing ran");
    let r = receiver(&s, "github");
    assert_eq!(
        (r["ignored"].as_u64(), r["rejected"].as_u64()),
        (Some(2), Some(3)),
        "{r}"
    );
    assert_eq!(r["last_rejection"], "the signature does not match");
    let log = h.agent.log();
    assert!(log.contains("refused a hook"), "{log}");
    assert!(log.contains("peer=127.0.0.1"), "{log}");
    assert!(!log.contains(SECRET), "the secret is in the log");
}

#[test]
fn large_bodies_are_refused_early_and_floods_are_rate_limited() {
    let h = Hooked::start(GITHUB, "");
    // Headers announcing 2 MiB, and no body: the answer comes at once.
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", h.f.port)).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        conn,
        "POST /hooks/github HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\nX-GitHub-Event: push\r\n\r\n"
    )
    .expect("write");
    let mut answer = [0u8; 64];
    let n = conn.read(&mut answer).expect("an answer before any body byte");
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");

    // A chunked body that grows past the cap: 413, or the connection
    // closed under the client still sending (the server read no further).
    let big = vec![b'x'; 1024 * 1024 + 10];
    let sent = h
        .http
        .post(format!("http://127.0.0.1:{}/hooks/github", h.f.port))
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(big)))
        .send();
    if let Ok(res) = sent {
        assert_eq!(res.status().as_u16(), 413);
    }
    assert_eq!(h.agent.get("/healthz").0, 200);

    // A flood: the bucket empties and the rest wait.
    let mut limited = None;
    for _ in 0..60 {
        let (code, _, retry_after) = h.post("/hooks/github", &[("x-github-event", "push")], b"{}");
        if code == 429 {
            limited = retry_after;
            break;
        }
        assert_eq!(code, 401);
    }
    let after: u64 = limited
        .expect("429 Too Many Requests within 60 requests")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&after), "{after}");
    // Signed hooks wait too: the limit comes before the signature.
    let (code, _) = h.github_push("refs/heads/main", &h.url, "late");
    assert_eq!(code, 429);
}

#[test]
fn hooks_need_no_api_token_and_registry_and_generic_hooks_reconcile_their_objects() {
    let receivers = format!(
        "{GITHUB}receiver \"hub\" {{\n    type \"dockerhub\"\n    secret-file \"hook-secret\"\n    reconcile \"image/app\"\n}}\n\
         receiver \"lab\" {{\n    type \"gitlab\"\n    secret-file \"hook-secret\"\n    reconcile \"source/repo\"\n}}\n\
         receiver \"ci\" {{\n    type \"generic-hmac\"\n    secret-file \"hook-secret\"\n    reconcile \"app/web\"\n}}\n\
         image \"app\" {{\n    repository \"127.0.0.1:9/acme/app\"\n    insecure #true\n    semver \"*\"\n    interval \"1h\"\n}}\n"
    );
    let h = Hooked::start(&receivers, "    api-token-file \"api-token\"\n");
    h.f.env.write("api-token", "api-t0ken\n");
    // The API wants its token…
    let (code, _, _) = h.post("/api/reconcile/app/web", &[], b"");
    assert_eq!(code, 401);
    // …hooks do not: their proof is their own.
    let (code, body) = h.github_push("refs/heads/main", &h.url, "x1");
    assert_eq!(code, 202, "{body}");

    let s = h
        .agent
        .wait(LONG, "the image's first scan", |s| runs(s, "image", "app") >= 1);
    let before = runs(&s, "image", "app");
    // Docker Hub: the token in the URL; a push of another repository is not the image's.
    let other = json!({ "push_data": { "tag": "v2" }, "repository": { "repo_name": "acme/other" } });
    let (code, body, _) = h.post(
        &format!("/hooks/hub?token={SECRET}"),
        &[],
        other.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    let pushed =
        json!({ "push_data": { "tag": "v2", "pushed_at": 1 }, "repository": { "repo_name": "acme/app" } });
    let (code, body, _) = h.post("/hooks/hub?token=wrong", &[], pushed.to_string().as_bytes());
    assert_eq!(code, 401, "{body}");
    let (code, body, _) = h.post(
        &format!("/hooks/hub?token={SECRET}"),
        &[],
        pushed.to_string().as_bytes(),
    );
    assert_eq!((code, &body["accepted"]), (202, &json!(["image/app"])), "{body}");
    // (The scan fails, 127.0.0.1:9 has no registry, and retries on its
    // own: wait for the run the hook asked for.)
    h.agent.wait(LONG, "the image scanned for the hook", |s| {
        object(s, "image", "app")["trigger"] == "webhook" && runs(s, "image", "app") > before
    });

    // GitLab: the token header; a tag push is not the branch the source follows.
    let tag = json!({ "ref": "refs/tags/v1", "project": { "git_http_url": h.url } });
    let (code, body, _) = h.post(
        "/hooks/lab",
        &[("x-gitlab-token", SECRET), ("x-gitlab-event", "Tag Push Hook")],
        tag.to_string().as_bytes(),
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body["accepted"].as_array().is_some_and(|a| a.is_empty()),
        "{body}"
    );

    // Generic: HMAC in X-Signature; any event.
    let web_runs = runs(&h.agent.status(), "app", "web");
    let body = b"{\"anything\":1}";
    let (code, json, _) = h.post(
        "/hooks/ci",
        &[("x-signature", &sign(body, SECRET)), ("x-delivery-id", "ci-1")],
        body,
    );
    assert_eq!((code, &json["accepted"]), (202, &json!(["app/web"])), "{json}");
    let s = h.agent.wait(LONG, "app/web run by the hook", |s| {
        runs(s, "app", "web") > web_runs
    });
    assert_eq!(object(&s, "app", "web")["trigger"], "webhook");
}
