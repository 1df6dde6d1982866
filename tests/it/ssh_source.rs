//! Git over ssh end to end: a real OpenSSH server (`/usr/sbin/sshd`) on a
//! free loopback port with its own host key and authorized_keys, the
//! repository served by the server's `git-upload-pack`, fetched through
//! `mooring once source/s --format json` with `auth { ssh-key; known-hosts }`.
//!
//! OpenSSH finds `~/.ssh` through the password database, not `$HOME`, and
//! also reads `/etc/ssh`. To show that neither is consulted, one test runs
//! mooring in a private mount namespace (`unshare --mount`) with fake
//! directories bound over the user's home and `/etc/ssh`; nothing outside
//! the namespace sees them.
//!
//! A test is skipped ([`crate::support::skip`]: a failure when `CI` is
//! set) only when sshd cannot run here: no sshd/ssh/ssh-keygen, or no way
//! to create sshd's privilege separation directory. Anything else that goes
//! wrong setting the server up, or a server that starts and then fails, is
//! a test failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::gitserver::{Repo, Sshd};
use crate::support::{Run, TestEnv, tool};

/// Every fetch runs with this timeout; a run must not end by it.
const FETCH_TIMEOUT_SECS: u64 = 30;
const ONCE: [&str; 7] = ["once", "-v", "source/s", "--format", "json", "-c", "mooring.kdl"];

/// `test` cannot run here (see [`crate::support::skip`]).
fn skip(test: &str, why: &str) {
    crate::support::skip(&format!("ssh_source::{test}"), why);
}

/// A test env with a repository, an ssh server for it and a config with
/// one source `s`.
struct Fixture {
    env: TestEnv,
    repo: Repo,
    sshd: Sshd,
    /// An empty directory that is the `HOME` of every mooring run.
    home: PathBuf,
}

impl Fixture {
    /// `None` (after saying why) when sshd cannot run here.
    fn new(test: &str) -> Option<Fixture> {
        let env = TestEnv::new();
        let sshd = match Sshd::start(&env.path().join("ssh")) {
            Ok(s) => s,
            Err(why) => {
                skip(test, &why);
                return None;
            }
        };
        let repo = Repo::new(env.path());
        let home = env.path().join("home");
        std::fs::create_dir_all(&home).expect("create home");
        Some(Fixture {
            env,
            repo,
            sshd,
            home,
        })
    }

    fn state(&self) -> PathBuf {
        self.env.path().join("state")
    }

    fn url(&self) -> String {
        self.sshd.url(&self.repo.bare())
    }

    /// Configure the source with this client key and known_hosts file.
    fn configure(&self, key: &Path, known_hosts: &Path) {
        let config = format!(
            "agent {{ state-dir \"{}\" }}\n\
             source \"s\" {{\n\
             git \"{}\"\n\
             timeout \"{FETCH_TIMEOUT_SECS}s\"\n\
             auth {{\n ssh-key \"{}\"\n known-hosts \"{}\"\n}}\n\
             }}\n",
            self.state().display(),
            self.url(),
            key.display(),
            known_hosts.display()
        );
        self.env.write("mooring.kdl", &config);
    }

    /// `mooring once source/s` with `HOME` at the empty home and no agent.
    fn mooring(&self) -> Command {
        let mut cmd = self.env.cmd();
        cmd.env("HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .args(ONCE)
            .stdin(Stdio::null());
        cmd
    }

    /// Run `cmd` (a `mooring once`), checking that it ended on its own,
    /// not by the fetch timeout (ssh waiting on a prompt would); its output
    /// and the source's JSON result.
    fn run(&self, mut cmd: Command) -> (Run, serde_json::Value) {
        let run = Run::from(cmd.output().expect("run mooring"));
        assert!(
            !run.stdout.contains("took longer than the timeout")
                && !run.stderr.contains("took longer than the timeout"),
            "the fetch timed out: {run:?}"
        );
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e})\n--- stdout\n{}\n--- stderr\n{}\n--- sshd\n{}",
                run.stdout,
                run.stderr,
                self.sshd.log()
            )
        });
        (run, json[0].clone())
    }

    /// A successful run's revision and artifact directory.
    #[track_caller]
    fn ok(&self, cmd: Command) -> (String, PathBuf) {
        let (run, out) = self.run(cmd);
        assert!(
            run.code == 0 && out["result"] == "ok",
            "{run:?}\n--- sshd\n{}",
            self.sshd.log()
        );
        (
            out["revision"].as_str().expect("revision").to_string(),
            PathBuf::from(out["artifact"].as_str().expect("artifact")),
        )
    }

    /// A failed run's output and error message; no key material in either,
    /// nothing kept on disk.
    #[track_caller]
    fn fails(&self, cmd: Command) -> (Run, String) {
        let (run, out) = self.run(cmd);
        assert!(
            run.code == 1 && out["result"] == "failed",
            "expected a failure: {run:?}\n--- sshd\n{}",
            self.sshd.log()
        );
        let error = out["error"].as_str().expect("error").to_string();
        assert!(error.contains(&self.url()), "the error names the URL: {error}");
        for key in [&self.sshd.key, &self.sshd.wrong_key] {
            assert_no_key_material(key, &run);
        }
        (run, error)
    }

    fn artifact_count(&self) -> usize {
        std::fs::read_dir(self.state().join("artifacts/s"))
            .map(|d| d.flatten().filter(|e| e.path().is_dir()).count())
            .unwrap_or(0)
    }
}

/// Neither the private key's armour nor any line of its body was printed.
#[track_caller]
fn assert_no_key_material(key: &Path, run: &Run) {
    let text = std::fs::read_to_string(key).expect("read key");
    let printed = format!("{}\n{}", run.stdout, run.stderr);
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    for line in text.lines().filter(|l| !l.starts_with("-----") && l.len() > 16) {
        assert!(!printed.contains(line), "key material printed: {printed}");
    }
}

/// An ssh error printed by ssh itself, or carried in the error.
fn said(run: &Run, error: &str, needle: &str) -> bool {
    error.contains(needle) || run.stderr.contains(needle)
}

/// Whether ssh refused the server's host key. gix turns ssh's message into
/// the error only if it reads it within 5 ms of ssh closing its output
/// (gix-transport's `swap_err_if_present_in_stderr`); on a loaded machine
/// it may lose that race and report the closed connection instead.
fn host_key_refused(run: &Run, error: &str) -> bool {
    said(run, error, "Host key verification failed")
        || said(
            run,
            error,
            "Transport handshake failed: An IO error occurred when talking to the server: failed to fill whole buffer",
        )
}

#[test]
fn ssh_fetch_with_key_and_known_hosts_then_no_change_then_new_commit() {
    let Some(f) = Fixture::new("ssh_fetch_with_key_and_known_hosts_then_no_change_then_new_commit") else {
        return;
    };
    f.repo.write(&[("apps/a.yaml", "a: 1\n")]);
    let first = f.repo.commit("one");
    f.repo.publish();
    assert_eq!(
        f.repo.rev("refs/heads/main"),
        first,
        "git rev-parse of the served branch"
    );
    f.configure(&f.sshd.key, &f.sshd.known_hosts);

    let (revision, dir) = f.ok(f.mooring());
    assert_eq!(revision, format!("main@sha1:{first}"));
    assert_eq!(
        std::fs::read_to_string(dir.join("apps/a.yaml")).expect("read"),
        "a: 1\n"
    );
    assert!(f.sshd.logins() >= 1, "no ssh login:\n{}", f.sshd.log());
    // The key and the ssh command live in memory, not in the cache's config.
    let cache_config = std::fs::read_to_string(f.state().join("git/s/config")).expect("cache config");
    assert!(
        !cache_config.contains("sshCommand") && !cache_config.contains("client"),
        "{cache_config}"
    );
    assert!(
        !f.home.join(".ssh").exists(),
        "ssh wrote into $HOME, which it should not even read"
    );

    // Unchanged: the same artifact, no new directory.
    let (again, again_dir) = f.ok(f.mooring());
    assert_eq!(again, revision);
    assert_eq!(again_dir, dir);
    assert_eq!(f.artifact_count(), 1);

    f.repo.write(&[("apps/a.yaml", "a: 2\n")]);
    let second = f.repo.commit("two");
    f.repo.publish();
    let (next, next_dir) = f.ok(f.mooring());
    assert_eq!(next, format!("main@sha1:{second}"));
    assert_ne!(next_dir, dir);
    assert_eq!(
        std::fs::read_to_string(next_dir.join("apps/a.yaml")).expect("read"),
        "a: 2\n"
    );
    assert_eq!(f.artifact_count(), 2);
}

#[test]
fn ssh_wrong_client_key_is_refused() {
    let Some(f) = Fixture::new("ssh_wrong_client_key_is_refused") else {
        return;
    };
    f.repo.write(&[("a.yaml", "a\n")]);
    f.repo.commit("one");
    f.repo.publish();
    f.configure(&f.sshd.wrong_key, &f.sshd.known_hosts);

    // ssh's "Permission denied (publickey)" makes gix ask the credential
    // helper, which has nothing for ssh: an auth error, retried only after
    // the config changes (ssh's own line is not in the message).
    let (run, error) = f.fails(f.mooring());
    assert!(
        error.contains("refused the credentials"),
        "{error}\n{}",
        run.stderr
    );
    assert_eq!(f.sshd.logins(), 0, "{}", f.sshd.log());
    assert_eq!(f.artifact_count(), 0);

    // The right key works against the same server afterwards.
    f.configure(&f.sshd.key, &f.sshd.known_hosts);
    f.ok(f.mooring());
}

#[test]
fn ssh_changed_or_unknown_host_key_fails_without_logging_in() {
    let Some(f) = Fixture::new("ssh_changed_or_unknown_host_key_fails_without_logging_in") else {
        return;
    };
    f.repo.write(&[("a.yaml", "a\n")]);
    f.repo.commit("one");
    f.repo.publish();

    // The file vouches for another key at this address.
    let before = std::fs::read_to_string(&f.sshd.wrong_known_hosts).expect("read");
    f.configure(&f.sshd.key, &f.sshd.wrong_known_hosts);
    let (run, error) = f.fails(f.mooring());
    assert!(host_key_refused(&run, &error), "{error}\n{}", run.stderr);
    assert_eq!(
        f.sshd.logins(),
        0,
        "logged in despite the host key:\n{}",
        f.sshd.log()
    );
    assert_eq!(
        std::fs::read_to_string(&f.sshd.wrong_known_hosts).expect("read"),
        before,
        "known_hosts was changed"
    );

    // The file does not know the host at all: no trust on first use.
    let empty = f.env.write("empty_known_hosts", "");
    f.configure(&f.sshd.key, &empty);
    let (run, error) = f.fails(f.mooring());
    assert!(host_key_refused(&run, &error), "{error}\n{}", run.stderr);
    assert_eq!(f.sshd.logins(), 0, "{}", f.sshd.log());
    assert_eq!(
        std::fs::read_to_string(&empty).expect("read"),
        "",
        "the host key was added"
    );
    assert_eq!(f.artifact_count(), 0);
}

/// Files `(path, content)` written under a fresh `dir`.
fn tree(dir: &Path, files: &[(&str, String)]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    for (path, content) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    dir.to_path_buf()
}

/// The current user's home directory from the password database (where
/// ssh looks, whatever `$HOME` says).
fn passwd_home() -> Option<PathBuf> {
    let uid = tool(Command::new("id").arg("-u")).ok()?;
    let entry = tool(Command::new("getent").args(["passwd", &uid])).ok()?;
    let home = PathBuf::from(entry.split(':').nth(5)?);
    (home.is_dir() && home != Path::new("/")).then_some(home)
}

/// Whether `unshare --mount` with a bind mount works here.
fn can_unshare(dir: &Path) -> bool {
    let (a, b) = (dir.join("probe-a"), dir.join("probe-b"));
    std::fs::create_dir_all(&a).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
        .arg(r#"mount --bind "$1" "$2""#)
        .arg("sh")
        .arg(&a)
        .arg(&b)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Fixture {
    /// `mooring once` in a private mount namespace where the user's home
    /// (per the password database) is `fake_home` and `/etc/ssh` is
    /// `fake_etc_ssh`.
    fn mooring_in_namespace(&self, real_home: &Path, fake_home: &Path, fake_etc_ssh: &Path) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.current_dir(self.env.path())
            .env_remove("MOORING_CONFIG")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("HOME", &self.home)
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null())
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(r#"mount --bind "$1" "$2" && mount --bind "$3" /etc/ssh && shift 3 && exec "$@""#)
            .arg("sh")
            .arg(fake_home)
            .arg(real_home)
            .arg(fake_etc_ssh)
            .arg(crate::support::mooring_bin())
            .args(ONCE);
        cmd
    }
}

#[test]
fn ssh_ignores_home_and_the_machines_ssh_config_and_known_hosts() {
    let test = "ssh_ignores_home_and_the_machines_ssh_config_and_known_hosts";
    let Some(f) = Fixture::new(test) else {
        return;
    };
    f.repo.write(&[("a.yaml", "a\n")]);
    let head = f.repo.commit("one");
    f.repo.publish();
    let s = &f.sshd;
    let right_hosts = std::fs::read_to_string(&s.known_hosts).expect("read");
    let right_key = std::fs::read_to_string(&s.key).expect("read");
    let dirs = f.env.path().join("machine");

    // A user's ssh files that would rescue a wrong key or known_hosts, or
    // break every connection, if they were read.
    let rescue = |name: &str| {
        tree(
            &dirs.join(name),
            &[
                (".ssh/known_hosts", right_hosts.clone()),
                (".ssh/id_ed25519", right_key.clone()),
                (
                    ".ssh/config",
                    format!(
                        "Host *\n  IdentityFile {}\n  KnownHostsCommand /bin/cat {}\n",
                        s.key.display(),
                        s.known_hosts.display()
                    ),
                ),
            ],
        )
    };
    let breaking = |name: &str, file: &str| {
        tree(
            &dirs.join(name),
            &[(file, "Host *\n  ProxyCommand /bin/false\n".to_string())],
        )
    };

    // 1. `$HOME` (which ssh does not use) and git's ssh variables (which
    //    mooring's isolated gix does not read).
    let hostile_home = rescue("home-rescue");
    f.configure(&s.key, &s.wrong_known_hosts);
    let mut cmd = f.mooring();
    cmd.env("HOME", &hostile_home)
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        )
        .env("GIT_SSH", "/bin/false");
    let (run, error) = f.fails(cmd);
    assert!(host_key_refused(&run, &error), "{error}");
    f.configure(&s.key, &s.known_hosts);
    let mut cmd = f.mooring();
    cmd.env("HOME", breaking("home-break", ".ssh/config"))
        .env("GIT_SSH_COMMAND", "/bin/false");
    assert_eq!(f.ok(cmd).0, format!("main@sha1:{head}"));

    // 2. The real lookups: the password database's home and /etc/ssh,
    //    replaced inside a private mount namespace.
    let Some(real_home) = passwd_home() else {
        skip(test, "(namespace part) the user has no home directory to replace");
        return;
    };
    if !can_unshare(&dirs) {
        skip(
            test,
            "(namespace part) `unshare --mount` with a bind mount is not permitted here",
        );
        return;
    }
    let empty_home = tree(&dirs.join("empty-home"), &[]);
    let empty_etc = tree(&dirs.join("empty-etc"), &[]);
    let rescue_home = rescue("ns-rescue-home");
    let rescue_etc = tree(
        &dirs.join("ns-rescue-etc"),
        &[
            ("ssh_known_hosts", right_hosts.clone()),
            (
                "ssh_config",
                format!(
                    "Host *\n  IdentityFile {}\n  KnownHostsCommand /bin/cat {}\n",
                    s.key.display(),
                    s.known_hosts.display()
                ),
            ),
        ],
    );

    // The machine knows the right host key; mooring's file does not.
    f.configure(&s.key, &s.wrong_known_hosts);
    let (run, error) = f.fails(f.mooring_in_namespace(&real_home, &empty_home, &rescue_etc));
    assert!(
        host_key_refused(&run, &error),
        "/etc/ssh was consulted: {error}\n{}",
        run.stderr
    );
    let (run, error) = f.fails(f.mooring_in_namespace(&real_home, &rescue_home, &empty_etc));
    assert!(
        host_key_refused(&run, &error),
        "~/.ssh was consulted: {error}\n{}",
        run.stderr
    );

    // The machine's config names the right client key; mooring's is wrong.
    f.configure(&s.wrong_key, &s.known_hosts);
    let (run, error) = f.fails(f.mooring_in_namespace(&real_home, &rescue_home, &rescue_etc));
    assert!(
        error.contains("refused the credentials"),
        "{error}\n{}",
        run.stderr
    );
    assert_eq!(s.logins(), 1, "{}", s.log());

    // Configs that break every connection are not read, and ssh does not
    // create `~/.ssh` in the machine's home.
    f.configure(&s.key, &s.known_hosts);
    let home_break = breaking("ns-home-break", ".ssh/config");
    let etc_break = breaking("ns-etc-break", "ssh_config");
    f.ok(f.mooring_in_namespace(&real_home, &home_break, &etc_break));
    f.ok(f.mooring_in_namespace(&real_home, &empty_home, &empty_etc));
    assert!(
        std::fs::read_dir(&empty_home).expect("read").next().is_none(),
        "ssh wrote into the user's home"
    );
}
