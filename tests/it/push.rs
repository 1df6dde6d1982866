//! Commit and push (`mooring::automation::git::Workspace`) against real
//! servers on loopback: `file://` (`git-receive-pack`), `git daemon
//! --enable=receive-pack`, `git http-backend` (with and without basic
//! auth) and, where it can run here, OpenSSH's `sshd`. What arrives is
//! checked with the git CLI on the server's repository: the commit, its
//! author and message, `git diff`, file modes, `git fsck --strict`.

use std::collections::BTreeMap;
use std::io::Write as _;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use mooring::automation::git::{Error, PushOutcome, Stage, Workspace};
use mooring::config::{self, GitRef, Limits, SourceKind, Spanned};

use crate::gitserver::{HttpGit, Repo, Sshd, git_cmd, git_daemon_with_receive_pack};
use mooring::reason::Classify as _;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A served repository with one `main` commit, and a place for workspaces.
struct Fixture {
    dir: tempfile::TempDir,
    repo: Repo,
}

impl Fixture {
    /// `main` with `files` (path, content) committed and published.
    fn new(files: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo = Repo::new(dir.path());
        repo.write(files);
        repo.commit("initial");
        repo.publish();
        Fixture { dir, repo }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A workspace directory (as `state-dir/automations/<name>`).
    fn workspace(&self, name: &str) -> PathBuf {
        self.path().join("state/automations").join(name)
    }

    /// Workspace `a` of `url` (no auth) on `main`, pushing to `main`.
    fn main_workspace(&self, url: &str) -> Workspace {
        prepare(&self.workspace("a"), &source(url, None), "main", "main")
    }

    /// [`Fixture::main_workspace`] with one commit that edits the README.
    fn readme_commit(&self, url: &str) -> Workspace {
        let mut ws = self.main_workspace(url);
        edit(&ws, "README.md", "platform", "x");
        ws.commit(&author(), "x").expect("commit").expect("change");
        ws
    }

    /// `git ARGS…` in the served (bare) repository; trimmed stdout.
    fn remote(&self, args: &[&str]) -> String {
        git_in(self.path(), &self.repo.bare(), args)
    }

    /// Allow pushes over smart HTTP without a `REMOTE_USER`.
    fn allow_http_push(&self) {
        self.remote(&["config", "http.receivepack", "true"]);
    }

    /// Someone else's commit on `main`, pushed to the server.
    fn concurrent_commit(&self, files: &[(&str, &str)], message: &str) -> String {
        self.repo.git(&["fetch", "-q", "origin"]);
        self.repo.git(&["reset", "-q", "--hard", "origin/main"]);
        self.repo.write(files);
        let id = self.repo.commit(message);
        self.repo.git(&["push", "-q", "origin", "main"]);
        id
    }

    fn fsck(&self) {
        self.remote(&["fsck", "--strict", "--no-dangling"]);
    }
}

fn git_in(home: &Path, dir: &Path, args: &[&str]) -> String {
    crate::gitserver::git(home, dir, args)
}

fn source(url: &str, auth: Option<config::Auth>) -> config::Source {
    config::Source {
        name: Spanned::new("platform".to_string(), (0, 0).into()),
        kind: SourceKind::Git {
            url: url.to_string(),
            reference: GitRef::Branch("main".into()),
        },
        interval: Duration::from_secs(60),
        timeout: TIMEOUT,
        auth,
        ignore: Vec::new(),
        limits: Limits::default(),
        ca_file: None,
    }
}

fn author() -> config::Author {
    config::Author {
        name: "mooring bot".into(),
        email: "bot@example.com".into(),
    }
}

fn prepare(dir: &Path, src: &config::Source, checkout: &str, push: &str) -> Workspace {
    Workspace::prepare(dir, src, checkout, push, TIMEOUT)
        .unwrap_or_else(|e| panic!("prepare {}: {e}", src.kind.url()))
}

/// Replace the first occurrence of `from` in a file of the workspace, as a
/// setter does (write a temporary file, rename it over the old one).
fn edit(ws: &Workspace, file: &str, from: &str, to: &str) {
    let path = ws.root().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert!(text.contains(from), "{file} has no `{from}`: {text}");
    let tmp = path.with_extension("mooring-tmp");
    std::fs::write(&tmp, text.replacen(from, to, 1)).expect("write");
    std::fs::rename(&tmp, &path).expect("rename");
}

#[track_caller]
fn pushed(outcome: PushOutcome) -> (Option<String>, String, u64) {
    match outcome {
        PushOutcome::Pushed { old, new, bytes_sent } => (old, new, bytes_sent),
        other => panic!("expected a push, got {other:?}"),
    }
}

const FILES: &[(&str, &str)] = &[
    (
        "apps/podinfo/deployment.yaml",
        "kind: Deployment\nspec:\n  image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}\n  replicas: 2\n",
    ),
    ("apps/other/service.yaml", "kind: Service\nport: 80\n"),
    ("README.md", "# platform\n"),
];

/// One edited line: one commit on the remote by the configured author,
/// with the message, a one-line diff, unchanged files untouched, a clean
/// `git fsck --strict`.
fn one_change_arrives(f: &Fixture, url: &str, auth: Option<config::Auth>) {
    one_change_arrives_to(f, source(url, auth));
}

fn one_change_arrives_to(f: &Fixture, src: config::Source) {
    let before = f.remote(&["rev-parse", "refs/heads/main"]);
    let mut ws = prepare(&f.workspace("a"), &src, "main", "main");
    assert_eq!(ws.base(), before);
    assert_eq!(ws.branch(), "main");
    assert_eq!(
        std::fs::read_to_string(ws.root().join("README.md")).expect("read"),
        "# platform\n"
    );
    edit(
        &ws,
        "apps/podinfo/deployment.yaml",
        "podinfo:6.5.0",
        "podinfo:6.5.1",
    );
    let message = "chore(images): update\n\n- apps/podinfo/deployment.yaml: 6.5.0 -> 6.5.1\n";
    let id = ws.commit(&author(), message).expect("commit").expect("a change");
    assert_eq!(ws.head(), id);
    assert_eq!(
        git_in(
            f.path(),
            &f.workspace("a").join("repo.git"),
            &["rev-parse", "refs/heads/main"]
        ),
        id,
        "the workspace's local branch"
    );
    let (old, new, bytes) = pushed(ws.push("main", false).expect("push"));
    assert_eq!(old.as_deref(), Some(before.as_str()));
    assert_eq!(new, id);
    assert!(bytes > 0);

    assert_eq!(f.remote(&["rev-parse", "refs/heads/main"]), id);
    assert_eq!(f.remote(&["rev-parse", "main~1"]), before);
    // Pushing again (as after a lost report) finds the commit there.
    assert_eq!(
        ws.push("main", false).expect("push again"),
        PushOutcome::Pushed {
            old: Some(id.clone()),
            new: id.clone(),
            bytes_sent: 0
        }
    );
    assert_eq!(
        f.remote(&["log", "-1", "--format=%an|%ae|%cn|%ce", "main"]),
        "mooring bot|bot@example.com|mooring bot|bot@example.com"
    );
    assert_eq!(
        f.remote(&["log", "-1", "--format=%B", "main"]),
        message.trim_end()
    );
    assert_eq!(
        f.remote(&["diff", "--numstat", "main~1", "main"]),
        "1\t1\tapps/podinfo/deployment.yaml"
    );
    let diff = f.remote(&["diff", "-U0", "main~1", "main"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('-') || l.starts_with('+')) && !l.starts_with("---") && !l.starts_with("+++")
        })
        .collect();
    assert_eq!(
        changed,
        [
            "-  image: ghcr.io/stefanprodan/podinfo:6.5.0 # {\"$imagepolicy\": \"podinfo\"}",
            "+  image: ghcr.io/stefanprodan/podinfo:6.5.1 # {\"$imagepolicy\": \"podinfo\"}"
        ]
    );
    // Untouched entries keep their ids; the other directory's tree is reused.
    assert_eq!(
        f.remote(&["rev-parse", "main~1:apps/other"]),
        f.remote(&["rev-parse", "main:apps/other"])
    );
    assert_eq!(
        f.remote(&["rev-parse", "main~1:README.md"]),
        f.remote(&["rev-parse", "main:README.md"])
    );
    f.fsck();
}

#[test]
fn file_url_one_change_is_one_commit() {
    let f = Fixture::new(FILES);
    one_change_arrives(&f, &f.repo.file_url(), None);
}

#[test]
fn git_daemon_one_change_is_one_commit() {
    let f = Fixture::new(FILES);
    let daemon = git_daemon_with_receive_pack(f.path(), &f.repo.root);
    one_change_arrives(&f, &daemon.url("repo.git"), None);
}

#[test]
fn smart_http_one_change_is_one_commit() {
    let f = Fixture::new(FILES);
    f.allow_http_push();
    let http = HttpGit::start(f.path(), &f.repo.root, None);
    one_change_arrives(&f, &http.url("repo.git"), None);
    let seen = http.take_seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.path.ends_with("/git-receive-pack")),
        "{seen:?}"
    );
}

#[test]
fn smart_https_pushes_with_the_ca_file_and_refuses_without() {
    let f = Fixture::new(FILES);
    f.allow_http_push();
    let certs = crate::tls::Certs::new();
    let http = HttpGit::start(f.path(), &f.repo.root, None);
    let front = crate::tls::TlsFront::start(&certs, http.port);
    let url = format!("https://127.0.0.1:{}/repo.git", front.port);
    let Err(untrusted) = Workspace::prepare(&f.workspace("b"), &source(&url, None), "main", "main", TIMEOUT)
    else {
        panic!("no CA, no checkout");
    };
    assert!(
        untrusted.to_string().to_ascii_lowercase().contains("certificate"),
        "{untrusted}"
    );
    let mut src = source(&url, None);
    src.ca_file = Some(certs.ca.clone());
    one_change_arrives_to(&f, src);
    let seen = http.take_seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "POST" && s.path.ends_with("/git-receive-pack")),
        "the push went over the TLS front: {seen:?}"
    );
}

fn password_auth(f: &Fixture, password: &str) -> (config::Auth, PathBuf) {
    let file = f.path().join("password");
    std::fs::write(&file, format!("{password}\n")).expect("write password");
    (
        config::Auth {
            username: Some("user".into()),
            password_file: Some(file.clone()),
            ..Default::default()
        },
        file,
    )
}

#[test]
fn smart_http_with_basic_auth_pushes() {
    let f = Fixture::new(FILES);
    // No http.receivepack: http-backend allows the push for an
    // authenticated REMOTE_USER only.
    let http = HttpGit::start(f.path(), &f.repo.root, Some(("user", "s3cret-Pa55")));
    let (auth, _) = password_auth(&f, "s3cret-Pa55");
    one_change_arrives(&f, &http.url("repo.git"), Some(auth));
}

#[test]
fn smart_http_wrong_credentials_are_an_auth_error_without_the_password() {
    let f = Fixture::new(FILES);
    let http = HttpGit::start(f.path(), &f.repo.root, Some(("user", "s3cret-Pa55")));
    let url = http.url("repo.git");

    let (wrong, _) = password_auth(&f, "wr0ng-Passw0rd");
    let err = Workspace::prepare(
        &f.workspace("a"),
        &source(&url, Some(wrong)),
        "main",
        "main",
        TIMEOUT,
    )
    .expect_err("wrong password");
    let text = err.to_string();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(text.contains("refused the credentials"), "{text}");
    assert!(
        !text.contains("wr0ng-Passw0rd") && !format!("{err:?}").contains("wr0ng-Passw0rd"),
        "{text}"
    );
    assert!(!err.retryable());
    assert_eq!(err.reason().as_str(), "CheckoutFailed");

    // Right for the fetch; the token is rotated wrongly before the push.
    let (right, file) = password_auth(&f, "s3cret-Pa55");
    let mut ws = prepare(&f.workspace("a"), &source(&url, Some(right)), "main", "main");
    edit(&ws, "README.md", "platform", "Platform");
    ws.commit(&author(), "readme").expect("commit").expect("a change");
    std::fs::write(&file, "wr0ng-Passw0rd\n").expect("write");
    let err = ws.push("main", false).expect_err("wrong password");
    let text = err.to_string();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(
        !text.contains("wr0ng-Passw0rd") && !text.contains("s3cret-Pa55"),
        "{text}"
    );
    assert!(!format!("{err:?}").contains("wr0ng-Passw0rd"));
    assert_eq!(err.reason().as_str(), "PushFailed");
    assert_eq!(err.stage(), Stage::Push);
    assert_ne!(
        f.remote(&["log", "-1", "--format=%s", "main"]),
        "readme",
        "nothing arrived"
    );
}

#[test]
fn no_change_commits_and_pushes_nothing() {
    let f = Fixture::new(FILES);
    let before = f.remote(&["rev-parse", "main"]);
    let mut ws = f.main_workspace(&f.repo.file_url());
    assert_eq!(ws.commit(&author(), "nothing").expect("commit"), None);
    // A file rewritten with the same content is no change either.
    edit(&ws, "README.md", "platform", "platform");
    assert_eq!(ws.commit(&author(), "nothing").expect("commit"), None);
    assert_eq!(ws.head(), before);
    let err = ws.push("main", false).expect_err("nothing to push");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
    assert_eq!(f.remote(&["rev-parse", "main"]), before);
}

#[test]
fn a_concurrent_push_is_rejected_then_the_retry_keeps_both_commits() {
    let f = Fixture::new(FILES);
    let daemon = git_daemon_with_receive_pack(f.path(), &f.repo.root);
    let src = source(&daemon.url("repo.git"), None);
    let dir = f.workspace("a");

    let mut ws = prepare(&dir, &src, "main", "main");
    edit(&ws, "apps/podinfo/deployment.yaml", "6.5.0", "6.5.1");
    let first = ws
        .commit(&author(), "mooring: 6.5.1")
        .expect("commit")
        .expect("change");

    let theirs = f.concurrent_commit(
        &[("apps/other/service.yaml", "kind: Service\nport: 8080\n")],
        "theirs",
    );
    let outcome = ws.push("main", false).expect("push");
    let PushOutcome::Rejected { reason } = outcome else {
        panic!("expected a rejection, got {outcome:?}");
    };
    assert!(reason.contains("fast-forward"), "{reason}");
    assert_eq!(
        f.remote(&["rev-parse", "main"]),
        theirs,
        "the remote kept their commit"
    );
    assert!(
        git_cmd(f.path())
            .current_dir(f.repo.bare())
            .args(["cat-file", "-e", &first])
            .status()
            .is_ok_and(|s| !s.success()),
        "nothing was sent"
    );

    // The caller's retry: prepare again (the local commit is dropped),
    // re-apply, commit, push.
    let mut ws = prepare(&dir, &src, "main", "main");
    assert_eq!(ws.base(), theirs);
    assert_eq!(
        std::fs::read_to_string(ws.root().join("apps/other/service.yaml")).expect("read"),
        "kind: Service\nport: 8080\n"
    );
    assert!(
        std::fs::read_to_string(ws.root().join("apps/podinfo/deployment.yaml"))
            .expect("read")
            .contains("6.5.0"),
        "the earlier edit was discarded"
    );
    edit(&ws, "apps/podinfo/deployment.yaml", "6.5.0", "6.5.1");
    let second = ws
        .commit(&author(), "mooring: 6.5.1")
        .expect("commit")
        .expect("change");
    assert_ne!(second, first);
    let (old, new, _) = pushed(ws.push("main", false).expect("push"));
    assert_eq!(old.as_deref(), Some(theirs.as_str()));
    assert_eq!(new, second);
    assert_eq!(
        f.remote(&["log", "--format=%s", "main"]),
        "mooring: 6.5.1\ntheirs\ninitial"
    );
    assert_eq!(
        f.remote(&["diff", "--name-only", "main~1", "main"]),
        "apps/podinfo/deployment.yaml"
    );
    f.fsck();
}

#[test]
fn force_replaces_a_branch_that_moved_on() {
    let f = Fixture::new(FILES);
    let src = source(&f.repo.file_url(), None);
    let mut ws = prepare(&f.workspace("a"), &src, "main", "main");
    edit(&ws, "README.md", "platform", "forced");
    let ours = ws.commit(&author(), "forced").expect("commit").expect("change");
    let theirs = f.concurrent_commit(&[("x.txt", "x\n")], "theirs");
    let (old, new, _) = pushed(ws.push("main", true).expect("push"));
    assert_eq!(old.as_deref(), Some(theirs.as_str()));
    assert_eq!(new, ours);
    assert_eq!(f.remote(&["rev-parse", "main"]), ours);
    f.fsck();
}

#[test]
fn pushing_to_another_branch_creates_it_then_continues_on_it() {
    let f = Fixture::new(FILES);
    let daemon = git_daemon_with_receive_pack(f.path(), &f.repo.root);
    let src = source(&daemon.url("repo.git"), None);
    let dir = f.workspace("a");
    let main = f.remote(&["rev-parse", "main"]);

    let mut ws = prepare(&dir, &src, "main", "automation/images");
    assert_eq!(ws.branch(), "main");
    assert_eq!(ws.remote_tip(), None);
    edit(&ws, "apps/podinfo/deployment.yaml", "6.5.0", "6.5.1");
    let first = ws.commit(&author(), "one").expect("commit").expect("change");
    let (old, new, _) = pushed(ws.push("automation/images", false).expect("push"));
    assert_eq!((old, new.as_str()), (None, first.as_str()));
    assert_eq!(f.remote(&["rev-parse", "automation/images"]), first);
    assert_eq!(f.remote(&["rev-parse", "automation/images~1"]), main);
    assert_eq!(f.remote(&["rev-parse", "main"]), main, "main is untouched");

    // The next run continues on the push branch, not on main.
    let mut ws = prepare(&dir, &src, "main", "automation/images");
    assert_eq!(ws.branch(), "automation/images");
    assert_eq!(ws.base(), first);
    assert_eq!(ws.remote_tip().as_deref(), Some(first.as_str()));
    assert!(
        std::fs::read_to_string(ws.root().join("apps/podinfo/deployment.yaml"))
            .expect("read")
            .contains("6.5.1")
    );
    edit(&ws, "apps/podinfo/deployment.yaml", "6.5.1", "6.5.2");
    let second = ws.commit(&author(), "two").expect("commit").expect("change");
    let (old, _, _) = pushed(ws.push("automation/images", false).expect("push"));
    assert_eq!(old.as_deref(), Some(first.as_str()));
    assert_eq!(
        f.remote(&["log", "--format=%s", "automation/images"]),
        "two\none\ninitial"
    );
    assert_eq!(f.remote(&["rev-parse", "automation/images"]), second);
    assert_eq!(f.remote(&["rev-parse", "main"]), main);
    f.fsck();
}

/// `git fast-import` a single commit of `dirs` × `files` small YAML files
/// into `bare`'s `main`.
fn import_large_tree(home: &Path, bare: &Path, dirs: usize, files: usize) {
    let mut stream = Vec::new();
    let msg = "large tree\n";
    write!(
        stream,
        "commit refs/heads/main\ncommitter Test <test@example.com> 1700000000 +0000\ndata {}\n{msg}",
        msg.len()
    )
    .expect("write");
    for d in 0..dirs {
        for i in 0..files {
            let content = format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{d}-{i}\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/svc-{d}-{i}:1.{i}.0\n"
            );
            write!(
                stream,
                "M 100644 inline team-{d:03}/svc-{i:02}.yaml\ndata {}\n{content}\n",
                content.len()
            )
            .expect("write");
        }
    }
    stream.push(b'\n');
    let mut child = git_cmd(home)
        .current_dir(bare)
        .args(["fast-import", "--quiet", "--force"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&stream)
        .expect("feed fast-import");
    assert!(child.wait().expect("wait").success());
    git_in(home, bare, &["repack", "-adq"]);
}

#[test]
fn a_one_line_change_in_5000_files_sends_a_small_pack() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Repo::new(dir.path());
    import_large_tree(dir.path(), &repo.bare(), 100, 50);
    let daemon = git_daemon_with_receive_pack(dir.path(), &repo.root);
    let src = source(&daemon.url("repo.git"), None);
    let ws_dir = dir.path().join("state/automations/big");

    let started = Instant::now();
    let mut ws = prepare(&ws_dir, &src, "main", "main");
    let first_prepare = started.elapsed();
    edit(&ws, "team-042/svc-07.yaml", ":1.7.0", ":1.7.1");
    ws.commit(&author(), "bump svc-42-7")
        .expect("commit")
        .expect("change");
    let (_, new, bytes) = pushed(ws.push("main", false).expect("push"));
    assert!(bytes < 10 * 1024, "sent {bytes} bytes for a one-line change");
    let remote = |args: &[&str]| git_in(dir.path(), &repo.bare(), args);
    assert_eq!(remote(&["rev-parse", "main"]), new);
    assert_eq!(
        remote(&["diff", "--numstat", "main~1", "main"]),
        "1\t1\tteam-042/svc-07.yaml"
    );
    assert_eq!(
        remote(&["ls-tree", "-r", "--name-only", "main"]).lines().count(),
        5000
    );
    remote(&["fsck", "--strict", "--no-dangling"]);

    // A second prepare at the pushed tip rewrites nothing and is quick.
    let started = Instant::now();
    let ws = prepare(&ws_dir, &src, "main", "main");
    let again = started.elapsed();
    assert_eq!(ws.base(), new);
    eprintln!(
        "5000 files: first prepare {first_prepare:?}, prepare at the same tip {again:?}, pushed {bytes} bytes"
    );
}

#[cfg(unix)]
#[test]
fn modes_symlinks_additions_and_removals() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = Repo::new(dir.path());
    repo.write(&[
        ("bin/run.sh", "#!/bin/sh\necho 1\n"),
        ("apps/a.yaml", "a: 1\n"),
        ("apps/gone.yaml", "gone\n"),
    ]);
    std::fs::set_permissions(
        repo.work.join("bin/run.sh"),
        std::fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    std::os::unix::fs::symlink("a.yaml", repo.work.join("apps/link.yaml")).expect("symlink");
    repo.commit("initial");
    repo.publish();
    let remote = |args: &[&str]| git_in(dir.path(), &repo.bare(), args);

    let mut ws = prepare(
        &dir.path().join("ws"),
        &source(&repo.file_url(), None),
        "main",
        "main",
    );
    let run = ws.root().join("bin/run.sh");
    assert_eq!(
        std::fs::metadata(&run).expect("stat").permissions().mode() & 0o777,
        0o755
    );
    assert!(
        std::fs::symlink_metadata(ws.root().join("apps/link.yaml")).is_err(),
        "symlinks are not written out"
    );
    // A setter that replaces the script by rename drops its x bit on disk;
    // the tree's mode stays.
    edit(&ws, "bin/run.sh", "echo 1", "echo 2");
    assert_eq!(
        std::fs::metadata(&run).expect("stat").permissions().mode() & 0o111,
        0
    );
    std::fs::write(ws.root().join("apps/new.yaml"), "new\n").expect("write");
    let tool = ws.root().join("bin/new-tool");
    std::fs::write(&tool, "#!/bin/sh\n").expect("write");
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::remove_file(ws.root().join("apps/gone.yaml")).expect("rm");
    std::fs::create_dir_all(ws.root().join("deep/er")).expect("mkdir");
    std::fs::write(ws.root().join("deep/er/file.yaml"), "deep\n").expect("write");
    ws.commit(&author(), "modes").expect("commit").expect("change");
    pushed(ws.push("main", false).expect("push"));

    let tree: BTreeMap<String, String> = remote(&["ls-tree", "-r", "main"])
        .lines()
        .filter_map(|l| {
            let (meta, path) = l.split_once('\t')?;
            Some((path.to_string(), meta.split(' ').next()?.to_string()))
        })
        .collect();
    let expected: BTreeMap<String, String> = [
        ("apps/a.yaml", "100644"),
        ("apps/link.yaml", "120000"),
        ("apps/new.yaml", "100644"),
        ("bin/new-tool", "100755"),
        ("bin/run.sh", "100755"),
        ("deep/er/file.yaml", "100644"),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_string(), m.to_string()))
    .collect();
    assert_eq!(tree, expected);
    assert_eq!(remote(&["cat-file", "-p", "main:apps/link.yaml"]), "a.yaml");
    assert_eq!(
        remote(&["cat-file", "-p", "main:bin/run.sh"]),
        "#!/bin/sh\necho 2"
    );
    remote(&["fsck", "--strict", "--no-dangling"]);
}

#[test]
fn prepare_again_discards_edits_and_stray_files() {
    let f = Fixture::new(FILES);
    let src = source(&f.repo.file_url(), None);
    let dir = f.workspace("a");
    let ws = prepare(&dir, &src, "main", "main");
    let original = std::fs::read_to_string(ws.root().join("apps/podinfo/deployment.yaml")).expect("read");
    edit(&ws, "apps/podinfo/deployment.yaml", "6.5.0", "9.9.9");
    std::fs::write(ws.root().join("stray.yaml"), "stray\n").expect("write");
    std::fs::remove_file(ws.root().join("README.md")).expect("rm");
    std::fs::create_dir_all(ws.root().join("empty/dir")).expect("mkdir");

    let mut ws = prepare(&dir, &src, "main", "main");
    assert_eq!(
        std::fs::read_to_string(ws.root().join("apps/podinfo/deployment.yaml")).expect("read"),
        original
    );
    assert!(!ws.root().join("stray.yaml").exists());
    assert!(!ws.root().join("empty").exists());
    assert_eq!(
        std::fs::read_to_string(ws.root().join("README.md")).expect("read"),
        "# platform\n"
    );
    assert_eq!(ws.commit(&author(), "nothing").expect("commit"), None);
}

#[test]
fn a_hook_that_declines_is_a_refusal() {
    let f = Fixture::new(FILES);
    let hook = f.repo.bare().join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'protected branch' >&2\nexit 1\n").expect("hook");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let daemon = git_daemon_with_receive_pack(f.path(), &f.repo.root);
    let ws = f.readme_commit(&daemon.url("repo.git"));
    let err = ws.push("main", false).expect_err("declined");
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("hook declined"), "{err}");
    assert!(
        err.to_string().contains("protected branch"),
        "the hook's output: {err}"
    );
    assert!(!err.retryable());
    assert_eq!(err.reason().as_str(), "PushFailed");
}

#[test]
fn a_missing_branch_is_not_found() {
    let f = Fixture::new(FILES);
    let err = Workspace::prepare(
        &f.workspace("a"),
        &source(&f.repo.file_url(), None),
        "nope",
        "nope",
        TIMEOUT,
    )
    .expect_err("no such branch");
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("`nope`"), "{err}");
    let err = Workspace::prepare(
        &f.workspace("b"),
        &source(&f.repo.file_url(), None),
        "main",
        "bad name:x",
        TIMEOUT,
    )
    .expect_err("bad branch name");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[test]
fn the_default_branch_is_asked_from_the_remote() {
    let f = Fixture::new(FILES);
    f.remote(&["branch", "trunk", "main"]);
    f.remote(&["symbolic-ref", "HEAD", "refs/heads/trunk"]);
    let daemon = git_daemon_with_receive_pack(f.path(), &f.repo.root);
    let mut src = source(&daemon.url("repo.git"), None);
    src.kind = SourceKind::Git {
        url: daemon.url("repo.git"),
        reference: GitRef::DefaultBranch,
    };
    let automation = config::Automation {
        name: Spanned::new("a".to_string(), (0, 0).into()),
        source: Spanned::new("platform".to_string(), (0, 0).into()),
        checkout: None,
        push: None,
        path: ".".into(),
        author: author(),
        message: "m".into(),
        interval: Duration::from_secs(60),
    };
    assert_eq!(
        mooring::automation::git::checkout_branch(&automation, &src, TIMEOUT).expect("default branch"),
        "trunk"
    );
    let pinned = config::Automation {
        checkout: Some("release".into()),
        ..automation.clone()
    };
    assert_eq!(
        mooring::automation::git::checkout_branch(&pinned, &src, TIMEOUT).expect("checkout"),
        "release"
    );
    src.kind = SourceKind::Git {
        url: daemon.url("repo.git"),
        reference: GitRef::Tag("v1".into()),
    };
    let err = mooring::automation::git::checkout_branch(&automation, &src, TIMEOUT).expect_err("a tag");
    assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
}

#[test]
fn a_server_that_never_answers_is_a_timeout() {
    // Connections are accepted by the kernel (backlog) and never answered.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("temp dir");
    let src = source(&format!("git://127.0.0.1:{port}/repo.git"), None);
    let err = Workspace::prepare(
        &dir.path().join("ws"),
        &src,
        "main",
        "main",
        Duration::from_secs(1),
    )
    .expect_err("timeout");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(err.retryable());
    // The timeout that fired is the one asked for, not a default.
    assert!(
        err.to_string().contains("took longer than the timeout of 1s"),
        "{err}"
    );
    drop(listener);
}

// ---- ssh -------------------------------------------------------------------

#[test]
fn ssh_one_change_is_one_commit() {
    let f = Fixture::new(FILES);
    let sshd = match Sshd::start(&f.path().join("ssh")) {
        Ok(s) => s,
        Err(why) => {
            crate::support::skip("push::ssh_one_change_is_one_commit", &why);
            return;
        }
    };
    let auth = config::Auth {
        ssh_key: Some(sshd.key.clone()),
        known_hosts: Some(sshd.known_hosts.clone()),
        ..Default::default()
    };
    let url = sshd.url(&f.repo.bare());
    // The server runs `git-receive-pack` from its PATH, as any ssh server.
    one_change_arrives(&f, &url, Some(auth));
    let log = std::fs::read_to_string(&sshd.log).unwrap_or_default();
    assert!(log.contains("Accepted publickey"), "{log}");
}

#[test]
fn an_in_place_edit_right_after_prepare_is_seen() {
    // The same size, the same inode, the modification time put back: only
    // the change time (maybe within the clock tick of the checkout, where
    // the "racy" rule hashes the file anyway) tells it changed.
    for round in 0..5 {
        let f = Fixture::new(FILES);
        let mut ws = f.main_workspace(&f.repo.file_url());
        let path = ws.root().join("apps/podinfo/deployment.yaml");
        let text = std::fs::read_to_string(&path).expect("read");
        let mtime = std::fs::metadata(&path).expect("stat").modified().expect("mtime");
        std::fs::write(&path, text.replace("6.5.0", "6.5.1")).expect("write in place");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime");
        let id = ws.commit(&author(), "bump").expect("commit");
        assert!(id.is_some(), "round {round}: the edit was missed");
    }
}

#[test]
fn smart_http_without_receive_pack_enabled_is_refused() {
    let f = Fixture::new(FILES);
    // Neither http.receivepack nor an authenticated user: http-backend
    // answers 403 to receive-pack (fetching still works).
    let http = HttpGit::start(f.path(), &f.repo.root, None);
    let ws = f.readme_commit(&http.url("repo.git"));
    let err = ws.push("main", false).expect_err("403");
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(err.to_string().contains("403"), "{err}");
    assert!(!err.retryable(), "{err:?}");
    assert_eq!(err.reason().as_str(), "PushFailed");
}

#[test]
fn smart_http_pushes_a_large_pack_chunked() {
    let f = Fixture::new(FILES);
    f.allow_http_push();
    let http = HttpGit::start(f.path(), &f.repo.root, None);
    let mut ws = f.main_workspace(&http.url("repo.git"));
    // 2 MiB that do not compress: a pack above git's 1 MiB post buffer.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..2 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(ws.root().join("blob.bin"), &noise).expect("write");
    let id = ws.commit(&author(), "large").expect("commit").expect("change");
    let (_, new, bytes) = pushed(ws.push("main", false).expect("push"));
    assert_eq!(new, id);
    assert!(bytes > 2 * 1024 * 1024, "{bytes}");
    assert_eq!(f.remote(&["rev-parse", "main"]), id);
    assert_eq!(
        f.remote(&["cat-file", "-s", "main:blob.bin"]),
        (2 * 1024 * 1024).to_string()
    );
    f.fsck();
}
