//! Image automation end to end: a real registry with tags pushed by skopeo,
//! a git repository served by `git daemon --enable=receive-pack`, and the
//! real binary: scan → set the marked line → commit → push → fetch → apply.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::agent::Running;
use crate::gitserver::{GitDaemon, Repo, git_daemon_with_receive_pack};
use crate::registry::{Entry, Registry, tarball};
use crate::support::{Run, TestEnv, free_port, wait_for};

const DEPLOY: &str = "apiVersion: apps/v1\r\nkind: Deployment\r\nmetadata:\r\n  name: web   # the web tier\r\n  namespace: demo\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n      - name: web\r\n        image: REPO:1.0.0 # {\"$imagepolicy\": \"web\"}\r\n        # ünïcode comment, untouched\r\n";

/// The commit message template of the automations here.
const MESSAGE: &str = "    message \"chore: update images\\n{% for c in changes %}- {{ c.file }}: {{ c.old }} -> {{ c.new }}\\n{% endfor %}\"\n";

/// A registry with `web` 1.0.0, 1.1.0 and 2.0.0; a repository served by
/// `git daemon --enable=receive-pack` for the automation to push to.
pub(crate) struct Fixture {
    pub(crate) env: TestEnv,
    pub(crate) repo: Repo,
    pub(crate) registry: Registry,
    _daemon: GitDaemon,
    url: String,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture::with(|image| vec![("apps/web/deploy.yaml", DEPLOY.replace("REPO", image))])
    }

    /// The repository's first commit holds `files(image)`, `image` being
    /// the registry's `web` repository.
    pub(crate) fn with(files: impl FnOnce(&str) -> Vec<(&'static str, String)>) -> Fixture {
        let env = TestEnv::new();
        let registry = Registry::start();
        let layer = tarball(&[Entry::File("x", "x")]);
        for tag in ["1.0.0", "1.1.0", "2.0.0"] {
            registry.push("web", tag, &layer);
        }
        let repo = Repo::new(&env.path().join("git"));
        let files = files(&registry.repo("web"));
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        repo.write(&files);
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
        self.config_with(port, "apps/web", MESSAGE);
    }

    /// Source `repo`; app `web` of `path` into the folder `out`; image
    /// `web` at `^1.0.0`; automation `bump` of `apps` with
    /// `automation_lines` more; the agent listening on `port`.
    pub(crate) fn config_with(&self, port: u16, path: &str, automation_lines: &str) {
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
    path "{path}"
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
{automation_lines}    interval "1h"
}}
"#,
            url = self.url,
            image = self.registry.repo("web"),
        );
        self.env.write("mooring.kdl", &text);
    }

    /// `mooring once -v TARGETS… --format json`, which must succeed: the
    /// run and automation `bump`'s outcome.
    fn once(&self, targets: &[&str]) -> (Run, Value) {
        let (run, bump) = self.once_any(targets);
        run.expect_code(0);
        (run, bump)
    }

    /// [`Fixture::once`], whatever the exit code.
    fn once_any(&self, targets: &[&str]) -> (Run, Value) {
        let run = self
            .env
            .run(&[&["once", "-v", "-c", "mooring.kdl", "--format", "json"], targets].concat());
        let bump = run
            .json()
            .as_array()
            .and_then(|a| a.iter().find(|o| o["kind"] == "automation"))
            .cloned()
            .unwrap_or_else(|| panic!("no automation in {}", run.stdout));
        (run, bump)
    }

    /// `mooring run` (configured for `port`) until `out/FILE` holds
    /// `want`: its text. The agent is stopped after.
    pub(crate) fn run_until_applied(&self, port: u16, file: &str, want: &str) -> String {
        let mut cmd = self.env.cmd();
        cmd.args(["run", "-c", "mooring.kdl"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let agent = Running::start(cmd, port);
        let out = self.env.path().join("out").join(file);
        wait_for(
            Duration::from_secs(60),
            &format!("{want} applied"),
            || match std::fs::read_to_string(&out) {
                Ok(text) if text.contains(want) => Ok(text),
                _ => Err(format!("status: {:#}", agent.status())),
            },
        )
    }
}

#[test]
fn a_new_tag_becomes_one_minimal_commit_pushed_and_applied() {
    let f = Fixture::new();
    let port = free_port();
    f.config(port);
    // The app applies the pushed tag: fetched right after the push, not an hour later.
    let want = format!("{}:1.1.0", f.registry.repo("web"));
    let applied = f.run_until_applied(port, "demo_deployment.apps_web.yaml", &want);

    // Exactly the value changed, bytes and line endings included.
    let expected = DEPLOY
        .replace("REPO:1.0.0", &want)
        .replace("REPO", &f.registry.repo("web"));
    assert_eq!(applied, expected);
    let log = f.repo.served(&["log", "-1", "--format=%an <%ae>|%cn|%B", "main"]);
    let image = f.registry.repo("web");
    assert_eq!(
        log,
        format!(
            "mooring bot <bot@example.com>|mooring bot|chore: update images\n- web/deploy.yaml: {image}:1.0.0 -> {want}"
        ),
    );
    let diff = f.repo.served(&["diff", "--numstat", "main~1", "main"]);
    assert_eq!(diff, "1\t1\tapps/web/deploy.yaml");
    f.repo.served(&["fsck", "--strict"]);
    assert_eq!(f.repo.served(&["rev-list", "--count", "main"]), "2");

    // A second pass with no new tag commits nothing.
    let (_, bump) = f.once(&["automation/bump"]);
    assert!(
        bump["message"].as_str().is_some_and(|m| m.contains("up to date")),
        "{bump}"
    );
    assert_eq!(f.repo.served(&["rev-list", "--count", "main"]), "2");
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
    let (_, bump) = f.once(&[]);
    let message = bump["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(
            "; skipped other/flux.yaml: line 2: marker \"other:web\" names no image policy: \"web\" is in namespace \"flux-system\", not \"other\"; not set"
        ),
        "{bump}"
    );
    let pushed = f.repo.served_file("main", "apps/other/flux.yaml");
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
    let (run, _) = f.once(&["automation/bump"]);
    assert!(
        f.repo.bare().join("raced").exists(),
        "the hook never ran\n{}",
        run.stderr
    );
    let subjects = f.repo.served(&["log", "--format=%an|%s", "main"]);
    let lines: Vec<&str> = subjects.lines().collect();
    assert_eq!(lines.len(), 3, "{subjects}");
    assert!(
        lines[0].starts_with("mooring bot|chore: update images"),
        "{subjects}"
    );
    assert_eq!(lines[1], "Other|someone else", "{subjects}");
    f.repo.served(&["fsck", "--strict"]);
}

/// The automation's own fetch keeps the source's `limits max-size`: a blob
/// beyond it on the checkout branch is refused before it is inflated.
#[test]
fn the_automation_fetch_refuses_an_object_beyond_the_sources_cap() {
    let f = Fixture::new();
    f.repo.git(&["checkout", "-q", "-b", "big"]);
    let big = std::fs::File::create(f.repo.work.join("apps/big.bin")).expect("create");
    big.set_len(4 << 20).expect("4 MiB of zeros");
    f.repo.commit("big");
    f.repo.git(&["checkout", "-q", "main"]);
    f.repo.publish();
    f.config_with(
        free_port(),
        "apps/web",
        &format!("    checkout \"big\"\n{MESSAGE}"),
    );
    let text = std::fs::read_to_string(f.env.path().join("mooring.kdl")).expect("config");
    f.env.write(
        "mooring.kdl",
        &text.replace(
            "    branch \"main\"\n",
            "    branch \"main\"\n    limits max-size=\"1MiB\"\n",
        ),
    );
    let (_, bump) = f.once_any(&["automation/bump"]);
    assert_eq!(bump["result"], "failed", "{bump}");
    assert!(
        bump["message"]
            .as_str()
            .is_some_and(|m| m.contains("larger than the artifact may be (1048576 bytes")),
        "{bump}"
    );
    assert_eq!(
        f.repo.served(&["rev-list", "--count", "big"]),
        "2",
        "nothing pushed"
    );
}
