//! Image automation end to end: a real registry with tags pushed by skopeo,
//! a git repository served by `git daemon --enable=receive-pack`, and the
//! real binary: scan → set the marked line → commit → push → fetch → apply.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::gitserver::{Repo, git_daemon_with_receive_pack};
use crate::registry::{Entry, Registry, tarball};
use crate::support::{TestEnv, free_port};

const DEPLOY: &str = "apiVersion: apps/v1\r\nkind: Deployment\r\nmetadata:\r\n  name: web   # the web tier\r\n  namespace: demo\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: web\r\n        image: REPO:1.0.0 # {\"$imagepolicy\": \"web\"}\r\n        # ünïcode comment, untouched\r\n";

struct Fixture {
    env: TestEnv,
    repo: Repo,
    registry: Registry,
    _daemon: crate::gitserver::GitDaemon,
    url: String,
}

impl Fixture {
    fn new() -> Fixture {
        let env = TestEnv::new();
        let registry = Registry::start();
        let layer = tarball(&[Entry::File("x", "x")]);
        for tag in ["1.0.0", "1.1.0", "2.0.0"] {
            registry.push("web", tag, &layer);
        }
        let repo = Repo::new(&env.path().join("git"));
        repo.write(&[(
            "apps/web/deploy.yaml",
            &DEPLOY.replace("REPO", &registry.repo("web")),
        )]);
        repo.commit("first");
        repo.publish();
        let daemon = git_daemon_with_receive_pack(env.path(), &repo.root);
        let url = daemon.url("repo.git");
        Fixture {
            env,
            repo,
            registry,
            _daemon: daemon,
            url,
        }
    }

    fn config(&self, port: u16) {
        let text = format!(
            r#"agent {{
    state-dir "state"
    listen "127.0.0.1:{port}"
}}
source "repo" {{
    git "{url}"
    branch "main"
    interval "1h"
}}
app "web" {{
    source "repo"
    path "apps/web"
    target dir="out"
}}
image "web" {{
    repository "{image}"
    insecure #true
    semver "^1.0.0"
}}
automation "bump" {{
    source "repo"
    path "apps"
    author name="mooring bot" email="bot@example.com"
    message "chore: update images\n{{% for c in changes %}}- {{{{ c.file }}}}: {{{{ c.old }}}} -> {{{{ c.new }}}}\n{{% endfor %}}"
    interval "1h"
}}
"#,
            url = self.url,
            image = self.registry.repo("web"),
        );
        self.env.write("mooring.kdl", &text);
    }

    /// `git ARGS…` in the bare repository the daemon serves.
    fn remote(&self, args: &[&str]) -> String {
        let out = crate::gitserver::git_cmd(self.env.path())
            .arg("-C")
            .arg(self.repo.bare())
            .args(args)
            .output()
            .expect("git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

#[test]
fn a_new_tag_becomes_one_minimal_commit_pushed_and_applied() {
    let f = Fixture::new();
    let port = free_port();
    f.config(port);
    let mut agent = f
        .env
        .cmd()
        .args(["run", "-c", "mooring.kdl"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mooring run");
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let status = || -> Option<Value> {
        http.get(format!("http://127.0.0.1:{port}/api/status"))
            .send()
            .ok()?
            .json()
            .ok()
    };
    // The app applies the pushed tag: fetched right after the push, not an hour later.
    let want = format!("{}:1.1.0", f.registry.repo("web"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = loop {
        let files: Vec<_> = std::fs::read_dir(f.env.path().join("out"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(text) = files.first().and_then(|p| std::fs::read_to_string(p).ok())
            && text.contains(&want)
        {
            break text;
        }
        assert!(Instant::now() < deadline, "not applied; status: {:#?}", status());
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = agent.kill();
    let _ = agent.wait();

    // Exactly the value changed, bytes and line endings included.
    let expected = DEPLOY
        .replace("REPO:1.0.0", &want)
        .replace("REPO", &f.registry.repo("web"));
    assert_eq!(applied, expected);
    let log = f.remote(&["log", "-1", "--format=%an <%ae>|%cn|%B", "main"]);
    let image = f.registry.repo("web");
    assert_eq!(
        log.trim_end(),
        format!(
            "mooring bot <bot@example.com>|mooring bot|chore: update images\n- web/deploy.yaml: {image}:1.0.0 -> {want}"
        ),
    );
    let diff = f.remote(&["diff", "--numstat", "main~1", "main"]);
    assert_eq!(diff.trim(), "1\t1\tapps/web/deploy.yaml", "{diff}");
    f.remote(&["fsck", "--strict"]);
    assert_eq!(f.remote(&["rev-list", "--count", "main"]).trim(), "2");

    // A second pass with no new tag commits nothing.
    let run = f.env.run(&[
        "once",
        "-v",
        "automation/bump",
        "-c",
        "mooring.kdl",
        "--format",
        "json",
    ]);
    run.expect_code(0);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let bump = out
        .as_array()
        .and_then(|a| a.iter().find(|o| o["kind"] == "automation"))
        .expect("automation");
    assert!(
        bump["message"].as_str().is_some_and(|m| m.contains("up to date")),
        "{bump}"
    );
    assert_eq!(f.remote(&["rev-list", "--count", "main"]).trim(), "2");
}

/// Flux markers name the policy's namespace (`image "web"` is in Flux's
/// default `flux-system`): a marker of another namespace is left alone and
/// the run says so.
#[test]
fn flux_markers_set_only_the_policy_of_their_namespace() {
    let f = Fixture::new();
    let image = f.registry.repo("web");
    f.repo.write(&[(
        "apps/other/flux.yaml",
        &format!(
            "a: {image}:1.0.0 # {{\"$imagepolicy\": \"flux-system:web\"}}\nb: {image}:1.0.0 # {{\"$imagepolicy\": \"other:web\"}}\n"
        ),
    )]);
    f.repo.commit("flux markers");
    f.repo.publish();
    f.config(free_port());
    let run = f
        .env
        .run(&["once", "-v", "-c", "mooring.kdl", "--format", "json"]);
    run.expect_code(0);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON");
    let bump = out
        .as_array()
        .and_then(|a| a.iter().find(|o| o["kind"] == "automation"))
        .expect("automation");
    let message = bump["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "; skipped other/flux.yaml: line 2: marker \"other:web\" names no image policy: \"web\" is in namespace \"flux-system\", not \"other\"; not set"
        ),
        "{bump}"
    );
    let pushed = f.remote(&["show", "main:apps/other/flux.yaml"]);
    assert_eq!(
        pushed,
        format!(
            "a: {image}:1.1.0 # {{\"$imagepolicy\": \"flux-system:web\"}}\nb: {image}:1.0.0 # {{\"$imagepolicy\": \"other:web\"}}\n"
        )
    );
}

/// A pre-receive hook that, the first time, moves `main` on by a commit of
/// "someone else" — as if they pushed between mooring's fetch and push.
const RACE_HOOK: &str = r#"#!/bin/sh
[ -e "$GIT_DIR/raced" ] && exit 0
touch "$GIT_DIR/raced"
unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES
parent=$(git rev-parse refs/heads/main)
commit=$(GIT_AUTHOR_NAME=Other GIT_AUTHOR_EMAIL=o@example.com GIT_COMMITTER_NAME=Other \
    GIT_COMMITTER_EMAIL=o@example.com git commit-tree "$parent^{tree}" -p "$parent" -m "someone else")
git update-ref refs/heads/main "$commit" "$parent"
"#;

#[test]
fn a_push_that_loses_a_race_is_redone_on_top_and_both_commits_survive() {
    let f = Fixture::new();
    let hook = f.repo.bare().join("hooks/pre-receive");
    std::fs::write(&hook, RACE_HOOK).expect("write hook");
    let mut perms = std::fs::metadata(&hook).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&hook, perms).expect("chmod");
    f.config(free_port());
    let run = f.env.run(&[
        "once",
        "-v",
        "automation/bump",
        "-c",
        "mooring.kdl",
        "--format",
        "json",
    ]);
    run.expect_code(0);
    assert!(
        f.repo.bare().join("raced").exists(),
        "the hook never ran\n{}",
        run.stderr
    );
    let subjects = f.remote(&["log", "--format=%an|%s", "main"]);
    let lines: Vec<&str> = subjects.lines().collect();
    assert_eq!(lines.len(), 3, "{subjects}");
    assert!(
        lines[0].starts_with("mooring bot|chore: update images"),
        "{subjects}"
    );
    assert_eq!(lines[1], "Other|someone else", "{subjects}");
    f.remote(&["fsck", "--strict"]);
}
