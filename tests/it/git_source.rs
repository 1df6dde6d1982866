//! Git sources against real servers on loopback: `file://`, `git daemon`
//! and `git http-backend` (smart HTTP, with basic auth in some tests),
//! driven through `mooring once source/NAME --format json`.

use std::path::Path;

use crate::gitserver::{GitDaemon, HttpGit};
use crate::support::{SourceFixture, free_port};

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn file_url_first_fetch_no_change_and_new_commit() {
    let f = SourceFixture::new();
    let repo = f.repo();
    repo.write(&[("apps/a.yaml", "a: 1\n"), ("README.md", "hi\n")]);
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/passwd", repo.work.join("apps/link")).expect("symlink");
    let first = repo.commit("one");
    repo.publish();
    f.configure(&format!("git \"{}\"", repo.file_url()));

    let a = f.ok();
    assert_eq!(a.revision, format!("main@sha1:{first}"));
    assert_eq!(read(&a.dir, "apps/a.yaml"), "a: 1\n");
    assert!(
        std::fs::symlink_metadata(a.dir.join("apps/link")).is_err(),
        "symlinks are skipped"
    );
    let cache_config = read(&f.state().join("git/s"), "config");
    assert!(!cache_config.contains("url"), "{cache_config}");

    let again = f.ok();
    assert_eq!(again.revision, a.revision);
    assert_eq!(again.dir, a.dir);
    assert_eq!(
        f.artifacts().len(),
        1,
        "no new directory for an unchanged revision"
    );

    repo.write(&[("apps/a.yaml", "a: 2\n")]);
    let second = repo.commit("two");
    repo.publish();
    let b = f.ok();
    assert_eq!(b.revision, format!("main@sha1:{second}"));
    assert_ne!(b.dir, a.dir);
    assert_eq!(read(&b.dir, "apps/a.yaml"), "a: 2\n");
    assert_eq!(f.artifacts().len(), 2);
}

#[test]
fn git_daemon_force_push_and_deleted_and_corrupt_cache() {
    let f = SourceFixture::new();
    let repo = f.repo();
    repo.write(&[("a.yaml", "v: 1\n")]);
    repo.commit("one");
    repo.write(&[("a.yaml", "v: 2\n")]);
    repo.commit("two");
    repo.publish();
    let daemon = GitDaemon::start(f.path(), &repo.root);
    f.configure(&format!("git \"{}\"\nbranch \"main\"", daemon.url("repo.git")));
    f.ok();

    // Rewrite history: a new root commit replaces both.
    repo.git(&["checkout", "-q", "--orphan", "rewritten"]);
    repo.write(&[("a.yaml", "v: rewritten\n")]);
    let rewritten = repo.commit("rewritten");
    repo.git(&["branch", "-q", "-M", "main"]);
    repo.publish();
    let a = f.ok();
    assert_eq!(a.revision, format!("main@sha1:{rewritten}"));
    assert_eq!(read(&a.dir, "a.yaml"), "v: rewritten\n");

    // A deleted cache is cloned again.
    std::fs::remove_dir_all(f.state().join("git/s")).expect("rm cache");
    repo.write(&[("a.yaml", "v: 3\n")]);
    let third = repo.commit("three");
    repo.publish();
    let b = f.ok();
    assert_eq!(b.revision, format!("main@sha1:{third}"));
    assert_eq!(read(&b.dir, "a.yaml"), "v: 3\n");

    // Garbage in HEAD: the cache cannot be opened.
    let marker = f.state().join("git/s/marker");
    std::fs::write(&marker, "").expect("write");
    std::fs::write(f.state().join("git/s/HEAD"), "garbage\0\n").expect("write");
    repo.write(&[("a.yaml", "v: 4\n")]);
    let fourth = repo.commit("four");
    repo.publish();
    assert_eq!(f.ok().revision, format!("main@sha1:{fourth}"));
    assert!(!marker.exists(), "the damaged cache was not replaced");

    // Truncated objects: every pack and loose object in the cache is cut short.
    std::fs::write(&marker, "").expect("write");
    truncate_objects(&f.state().join("git/s/objects"));
    repo.write(&[("a.yaml", "v: 5\n")]);
    let fifth = repo.commit("five");
    repo.publish();
    let c = f.ok();
    assert_eq!(c.revision, format!("main@sha1:{fifth}"));
    assert_eq!(read(&c.dir, "a.yaml"), "v: 5\n");
    assert!(!marker.exists(), "the damaged cache was not replaced");
}

fn truncate_objects(dir: &Path) {
    let mut truncated = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read objects").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "info" && n != "packs") {
                let len = std::fs::metadata(&p).expect("meta").len();
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&p)
                    .and_then(|f| f.set_len(len / 3))
                    .expect("truncate");
                truncated += 1;
            }
        }
    }
    assert!(truncated > 0, "nothing to truncate under {}", dir.display());
}

#[test]
fn http_tags_semver_and_commit_pins() {
    let f = SourceFixture::new();
    let repo = f.repo();
    repo.write(&[("v.yaml", "1.0.0\n")]);
    let c1 = repo.commit("one");
    repo.git(&["tag", "-a", "v1.0.0", "-m", "annotated"]);
    repo.write(&[("v.yaml", "1.2.0\n")]);
    let c2 = repo.commit("two");
    repo.git(&["tag", "v1.2.0"]);
    repo.write(&[("v.yaml", "2.0.0-rc.1\n")]);
    repo.commit("three");
    repo.git(&["tag", "v2.0.0-rc.1"]);
    repo.git(&["tag", "-a", "latest", "-m", "not a version"]);
    repo.git(&["tag", "1.5"]);
    repo.publish();
    let http = HttpGit::start(f.path(), &repo.root, None);
    let url = http.url("repo.git");

    f.configure(&format!("git \"{url}\"\ntag \"v1.0.0\""));
    let a = f.ok();
    assert_eq!(
        a.revision,
        format!("v1.0.0@sha1:{c1}"),
        "annotated tags peel to the commit"
    );
    assert_eq!(read(&a.dir, "v.yaml"), "1.0.0\n");

    f.configure(&format!("git \"{url}\"\nsemver \">=1.0.0 <2.0.0\""));
    let b = f.ok();
    assert_eq!(b.revision, format!("v1.2.0@sha1:{c2}"));
    assert_eq!(read(&b.dir, "v.yaml"), "1.2.0\n");

    // A later annotated release wins; nothing is fetched when unchanged.
    repo.write(&[("v.yaml", "1.3.0\n")]);
    let c4 = repo.commit("four");
    repo.git(&["tag", "-a", "1.3.0", "-m", "release"]);
    repo.publish();
    let c = f.ok();
    assert_eq!(c.revision, format!("1.3.0@sha1:{c4}"));
    http.take_seen();
    assert_eq!(f.ok(), c);
    let seen = http.take_seen();
    assert!(
        seen.iter()
            .any(|s| s.method == "GET" && s.path.ends_with("/info/refs")),
        "{seen:?}"
    );
    assert!(
        !seen.is_empty() && seen.iter().all(|s| !s.fetch),
        "a no-change fetch asked for a pack: {seen:?}"
    );

    f.configure(&format!("git \"{url}\"\ncommit \"{c1}\""));
    let d = f.ok();
    assert_eq!(d.revision, format!("sha1:{c1}"));
    assert_eq!(read(&d.dir, "v.yaml"), "1.0.0\n");

    let unknown = "1".repeat(40);
    f.configure(&format!("git \"{url}\"\ncommit \"{unknown}\""));
    let (_, error) = f.fails();
    assert!(error.contains(&format!("has no commit {unknown}")), "{error}");

    f.configure(&format!("git \"{url}\"\ntag \"v9.9.9\""));
    let (_, error) = f.fails();
    assert!(error.contains("v9.9.9") && error.contains(&url), "{error}");
}

#[test]
fn http_basic_auth_right_and_wrong_password() {
    let f = SourceFixture::new();
    let repo = f.repo();
    repo.write(&[("a.yaml", "a\n")]);
    let head = repo.commit("one");
    repo.publish();
    let http = HttpGit::start(f.path(), &repo.root, Some(("bot", "right-pass")));
    let url = http.url("repo.git");

    f.env.write("password", "right-pass\n");
    f.configure(&format!(
        "git \"{url}\"\nauth {{\n username \"bot\"\n password-file \"{}\"\n}}",
        f.path().join("password").display()
    ));
    assert_eq!(f.ok().revision, format!("main@sha1:{head}"));
    let config = read(&f.state().join("git/s"), "config");
    assert!(
        !config.contains("right-pass") && !config.contains("bot"),
        "{config}"
    );

    f.env.write("password", "wrong-pass\n");
    repo.write(&[("a.yaml", "b\n")]);
    repo.commit("two");
    repo.publish();
    let (run, error) = f.fails();
    assert!(
        error.contains("refused the credentials") && error.contains(&url),
        "{error}"
    );
    assert!(!run.stdout.contains("wrong-pass") && !run.stderr.contains("wrong-pass"));

    // A token is sent as the password of `x-access-token`.
    let token_server = HttpGit::start(f.path(), &repo.root, Some(("x-access-token", "tok-123")));
    f.env.write("token", "tok-123\n");
    f.configure(&format!(
        "git \"{}\"\nauth {{\n token-file \"{}\"\n}}",
        token_server.url("repo.git"),
        f.path().join("token").display()
    ));
    f.ok();

    // No credentials at all: an auth error, not a hang on a prompt.
    f.configure(&format!("git \"{url}\""));
    let (_, error) = f.fails();
    assert!(error.contains("refused the credentials"), "{error}");

    f.configure(&format!(
        "git \"{url}\"\nauth {{\n token-file \"{}\"\n}}",
        f.path().join("missing-token").display()
    ));
    let (_, error) = f.fails();
    assert!(error.contains("missing-token"), "{error}");
}

#[test]
fn server_down_names_the_url_without_credentials() {
    let f = SourceFixture::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/repo.git");
    f.env.write("token", "tok-SECRET-123\n");
    f.configure(&format!(
        "git \"{url}\"\nauth {{\n token-file \"{}\"\n}}",
        f.path().join("token").display()
    ));
    let (run, error) = f.fails();
    assert!(error.contains("cannot reach") && error.contains(&url), "{error}");
    assert!(!run.stdout.contains("tok-SECRET") && !run.stderr.contains("tok-SECRET"));

    f.configure(&format!("git \"git://127.0.0.1:{port}/repo.git\""));
    let (_, error) = f.fails();
    assert!(error.contains("cannot reach"), "{error}");
}

#[test]
fn a_server_that_never_answers_times_out() {
    let f = SourceFixture::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    f.configure(&format!(
        "git \"git://127.0.0.1:{port}/repo.git\"\ntimeout \"1s\""
    ));
    let (_, error) = f.fails();
    // The timeout that fired is the one configured, not a default.
    assert!(error.contains("took longer than the timeout of 1s"), "{error}");
    drop(listener);
}

/// Flux source-controller's rules (fluxcd/pkg sourceignore, go-git's
/// matcher): `.sourceignore` at every level, each file judged on its own
/// path so a re-included file under an ignored folder is kept, `ignore`
/// from the config last.
#[test]
fn ignore_rules_and_sourceignore_are_honoured() {
    let f = SourceFixture::new();
    let repo = f.repo();
    repo.write(&[
        ("apps/a.yaml", "a\n"),
        ("apps/logo.png", "p\n"),
        ("docs/guide.yaml", "d\n"),
        ("docs/keep/api.yaml", "k\n"),
        ("NOTES.md", "n\n"),
        ("secret/key.yaml", "k\n"),
        ("secret/public.yaml", "p\n"),
        (".sourceignore", "secret/\n!secret/public.yaml\n"),
        ("apps/local/.sourceignore", "*.yaml\n!shared.yaml\n"),
        ("apps/local/dev.yaml", "dev\n"),
        ("apps/local/shared.yaml", "shared\n"),
        (".github/workflows/ci.yaml", "ci\n"),
    ]);
    repo.commit("one");
    repo.publish();
    f.configure(&format!(
        "git \"{}\"\nignore \"docs/**\" \"*.md\" \"!docs/keep/*\"",
        repo.file_url()
    ));
    let a = f.ok();
    assert!(a.dir.join("apps/a.yaml").is_file());
    assert!(!a.dir.join("docs/guide.yaml").exists());
    assert!(
        a.dir.join("docs/keep/api.yaml").is_file(),
        "re-included by `ignore`"
    );
    assert!(!a.dir.join("NOTES.md").exists());
    assert!(!a.dir.join("secret/key.yaml").exists());
    assert!(
        a.dir.join("secret/public.yaml").is_file(),
        "re-included under an ignored folder"
    );
    assert!(
        !a.dir.join("apps/local/dev.yaml").exists(),
        "a nested .sourceignore applies"
    );
    assert!(a.dir.join("apps/local/shared.yaml").is_file());
    // With patterns of its own, Flux drops its default exclusions (but for VCS files).
    assert!(a.dir.join("apps/logo.png").is_file());
    assert!(a.dir.join(".github/workflows/ci.yaml").is_file());
}

/// Without any pattern, Flux's defaults exclude VCS files, images and
/// archives, and CI configuration.
#[test]
fn flux_default_exclusions_without_patterns() {
    let f = SourceFixture::new();
    let repo = f.repo();
    repo.write(&[
        ("apps/a.yaml", "a\n"),
        ("apps/logo.png", "p\n"),
        ("dist/chart.tar.gz", "z\n"),
        (".github/workflows/ci.yaml", "ci\n"),
        (".gitlab-ci.yml", "ci\n"),
        (".gitignore", "*.tmp\n"),
        ("apps/.sops.yaml", "creation_rules: []\n"),
    ]);
    repo.commit("one");
    repo.publish();
    f.configure(&format!("git \"{}\"", repo.file_url()));
    let a = f.ok();
    assert!(a.dir.join("apps/a.yaml").is_file());
    for gone in [
        "apps/logo.png",
        "dist/chart.tar.gz",
        ".github",
        ".gitlab-ci.yml",
        ".gitignore",
        "apps/.sops.yaml",
    ] {
        assert!(!a.dir.join(gone).exists(), "{gone}");
    }
}
