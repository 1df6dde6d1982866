//! Regression tests for holes a hostile probe found: each drives the real
//! binary with the input that broke it (see docs/security.md).

use std::io::Write as _;
use std::process::Stdio;

use crate::gitserver::{Repo, git_cmd};
use crate::support::SourceFixture;

/// Commit a tree made of `(name, content)` entries at the root, names
/// written as they are (no index, so nothing checks or splits them), and
/// publish it as `main`.
fn commit_raw_tree(f: &SourceFixture, repo: &Repo, entries: &[(&str, &str)]) -> String {
    let git = |args: &[&str], input: Option<&str>| -> String {
        let mut child = git_cmd(f.path())
            .current_dir(&repo.work)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run git");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.unwrap_or("").as_bytes())
            .expect("write stdin");
        drop(stdin);
        let out = child.wait_with_output().expect("wait for git");
        assert!(out.status.success(), "git {args:?} failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let mut listing = String::new();
    for (name, content) in entries {
        let blob = git(&["hash-object", "-w", "--stdin"], Some(content));
        listing.push_str(&format!("100644 blob {blob}\t{name}\n"));
    }
    let tree = git(&["mktree"], Some(&listing));
    let parent = repo.git(&["rev-parse", "-q", "--verify", "HEAD"]);
    let mut args = vec!["commit-tree", tree.as_str(), "-m", "raw"];
    if !parent.is_empty() {
        args.extend(["-p", parent.as_str()]);
    }
    let commit = git(&args, None);
    repo.git(&["update-ref", "refs/heads/main", &commit]);
    repo.publish();
    commit
}

#[test]
fn backslashes_in_git_names_are_part_of_the_name() {
    let f = SourceFixture::new();
    let repo = Repo::new(f.path());
    repo.write(&[("seed.yaml", "a: 1\n")]);
    repo.commit("seed");
    let escape_to_zero = format!("{}dev\\zero", "..\\".repeat(12));
    let entries = [
        ("docs\\x.yaml", "x: 1\n"),
        (escape_to_zero.as_str(), "not the device\n"),
        ("..\\..\\etc\\passwd", "one\n"),
    ];
    commit_raw_tree(&f, &repo, &entries);
    f.configure(&format!("git \"{}\"\ntimeout \"20s\"", repo.file_url()));

    let started = std::time::Instant::now();
    let (run, out) = f.once();
    run.expect_code(0);
    let a = f.ok();
    eprintln!("fetch of the backslash tree: {:?}", started.elapsed());
    for (name, content) in entries {
        let written = a.dir.join(name);
        assert_eq!(
            std::fs::read_to_string(&written).unwrap_or_else(|e| panic!("{name}: {e}")),
            content,
            "one file named exactly `{name}`"
        );
    }
    let names: Vec<String> = std::fs::read_dir(&a.dir)
        .expect("read artifact")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let first = out["checksum"].as_str().expect("checksum").to_string();

    // The checksum covers what was written, not what a translated name
    // points at outside the artifact.
    commit_raw_tree(
        &f,
        &repo,
        &[entries[0], entries[1], ("..\\..\\etc\\passwd", "two\n")],
    );
    let (run, out) = f.once();
    run.expect_code(0);
    assert_ne!(out["checksum"].as_str().expect("checksum"), first);
}

#[test]
fn backslashes_in_oci_tar_names_are_part_of_the_name() {
    use crate::registry::{Entry, Registry, tarball};
    let registry = Registry::start();
    let escape_to_zero = format!("{}dev\\zero", "..\\".repeat(12));
    let layer = tarball(&[
        Entry::File(&escape_to_zero, "not the device\n"),
        Entry::File("docs\\x.yaml", "x: 1\n"),
    ]);
    registry.push("app", "latest", &layer);
    let f = SourceFixture::new();
    f.configure(&format!(
        "oci \"{}\"\ninsecure #true\ntimeout \"20s\"",
        registry.repo("app")
    ));
    let a = f.ok();
    assert_eq!(
        std::fs::read_to_string(a.dir.join(&escape_to_zero)).expect("read"),
        "not the device\n"
    );
    assert_eq!(
        std::fs::read_to_string(a.dir.join("docs\\x.yaml")).expect("read"),
        "x: 1\n"
    );
}

/// `mooring ARGS…` in `env` under GNU time: what it printed and its peak
/// resident set size in KiB (its own and its children's, not the test's).
fn run_measured(env: &crate::support::TestEnv, args: &[&str]) -> (crate::support::Run, u64) {
    let report = env.path().join("time.out");
    let out = std::process::Command::new("/usr/bin/time")
        .current_dir(env.path())
        .env_remove("MOORING_CONFIG")
        .env("NO_COLOR", "1")
        .args(["-f", "%M", "-o"])
        .arg(&report)
        .arg(crate::support::mooring_bin())
        .args(args)
        .output()
        .expect("run /usr/bin/time (install the `time` package)");
    let out = crate::support::Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let peak = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| t.lines().last()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no report from /usr/bin/time (install the `time` package)"));
    (out, peak)
}

#[test]
fn a_blob_beyond_the_cap_is_refused_before_it_is_inflated() {
    let f = SourceFixture::new();
    let repo = Repo::new(f.path());
    let big = repo.work.join("big.bin");
    let file = std::fs::File::create(&big).expect("create");
    file.set_len(128 << 20).expect("128 MiB of zeros");
    repo.commit("big");
    repo.publish();
    let daemon = crate::gitserver::GitDaemon::start(f.path(), &repo.root);
    f.configure(&format!(
        "git \"{}\"\nlimits max-size=\"16MiB\"",
        daemon.url("repo.git")
    ));
    let (run, peak_kib) = run_measured(
        &f.env,
        &["once", "-v", "source/s", "--format", "json", "-c", "mooring.kdl"],
    );
    run.expect_code(1);
    assert!(
        run.stdout
            .contains("larger than the artifact may be (16777216 bytes"),
        "{}",
        run.stdout
    );
    eprintln!(
        "peak RSS fetching a 128 MiB blob with a 16 MiB cap: {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}

/// A loopback HTTP server that answers every request with `respond(path)`
/// and keeps each request's head; stops when dropped (one request per
/// connection).
struct Recorder {
    port: u16,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    fn start(respond: impl Fn(&str) -> String + Send + 'static) -> Recorder {
        use std::io::{BufRead as _, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                seen.lock().expect("lock").push(head);
                let mut out = conn;
                let _ = out.write_all(respond(&path).as_bytes());
            }
        });
        Recorder { port, heads }
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().expect("lock").clone()
    }
}

#[test]
fn git_credentials_do_not_follow_a_redirect_to_another_origin() {
    // Another origin: the same host on another port, asking for credentials.
    let elsewhere = Recorder::start(|_| {
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            .to_string()
    });
    let target = elsewhere.port;
    let redirector = Recorder::start(move |path| {
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{target}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let f = SourceFixture::new();
    f.env.write("password", "hunter2-secret\n");
    f.configure(&format!(
        "git \"http://127.0.0.1:{}/repo.git\"\nauth {{ username \"bot\"; password-file \"{}\"; }}",
        redirector.port,
        f.path().join("password").display()
    ));
    let (run, error) = f.fails();
    assert!(!run.stdout.contains("hunter2") && !run.stderr.contains("hunter2"));
    assert!(!error.is_empty());
    let heads = elsewhere.heads();
    assert!(!heads.is_empty(), "the redirect was followed");
    for head in heads {
        assert!(
            !head.to_ascii_lowercase().contains("authorization:"),
            "credentials went to another origin:\n{head}"
        );
    }
}

#[test]
fn substitution_cannot_amplify_a_manifest_past_the_cap() {
    let f = SourceFixture::new();
    let repo = Repo::new(f.path());
    // An 8 MiB manifest of about a million references to a 4 KiB value.
    let mut manifest =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n  x: \"");
    let reference = "${big}";
    manifest.push_str(&reference.repeat(((8 << 20) - 200) / reference.len()));
    manifest.push_str("\"\n");
    repo.write(&[("app/bomb.yaml", &manifest)]);
    repo.commit("bomb");
    repo.publish();
    let big = "x".repeat(4096);
    f.env.write(
        "mooring.kdl",
        &format!(
            "agent {{ state-dir \"{}\" }}\nsource \"s\" {{ git \"{}\"; }}\n\
             app \"a\" {{ source \"s\"; path \"app\"; target dir=\"{}\"; substitute {{ big \"{big}\"; }} }}\n",
            f.state().display(),
            repo.file_url(),
            f.path().join("out").display()
        ),
    );
    let (run, peak_kib) = run_measured(&f.env, &["render", "app/a", "-c", "mooring.kdl"]);
    run.expect_code(1);
    assert!(
        run.stderr
            .contains("bomb.yaml:1: after substitution the manifests would exceed their size cap"),
        "{}",
        run.stderr
    );
    eprintln!(
        "peak RSS rendering the amplification input: {} MiB",
        peak_kib / 1024
    );
    assert!(peak_kib < 256 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn diff_masks_a_secret_in_a_namespace_the_app_creates() {
    let env = crate::support::TestEnv::new();
    let repo = Repo::new(&env.path().join("git"));
    let namespace = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fresh\n";
    let secret = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\n  namespace: fresh\n\
                  stringData:\n  password: hunter2-plain\ndata:\n  token: aHVudGVyMi1iYXNlNjQ=\n";
    repo.write(&[("app/ns.yaml", namespace), ("app/secret.yaml", secret)]);
    repo.commit("new app");
    repo.publish();
    let server = crate::apiserver::ApiServer::start_with(crate::apiserver::Options::default());
    server.kubeconfig(&env.path().join("kubeconfig"));
    env.write(
        "mooring.kdl",
        &format!(
            "agent {{ state-dir \"state\"; }}\ncluster \"test\" {{ kubeconfig \"kubeconfig\"; }}\n\
             source \"repo\" {{ git \"{}\"; }}\napp \"new\" {{ source \"repo\"; path \"app\"; cluster \"test\"; }}\n",
            repo.file_url()
        ),
    );
    let run = env.run(&["diff", "app/new", "-c", "mooring.kdl"]);
    run.expect_code(1);
    assert!(
        run.stdout.contains("+++ desired/Secret/fresh/creds"),
        "{}",
        run.stdout
    );
    for leaked in [
        "hunter2-plain",
        "aHVudGVyMi1iYXNlNjQ=",
        "aHVudGVyMi1wbGFpbg",
        "hunter2-base64",
    ] {
        assert!(!run.stdout.contains(leaked), "`{leaked}` in:\n{}", run.stdout);
        assert!(!run.stderr.contains(leaked), "`{leaked}` in:\n{}", run.stderr);
    }
}

/// Raise this process's soft limit on open files to its hard limit.
fn raise_nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
    }
    limit.rlim_cur
}

#[test]
fn idle_connections_cannot_starve_the_agent() {
    use crate::agent::{Fixture, app, state};
    assert!(
        raise_nofile() > 2400,
        "the test needs more than 2,400 descriptors"
    );
    let f = Fixture::new();
    f.save(&app("web", "web"));
    let mut cmd = f.env.cmd();
    cmd.args(["run", "-c", "mooring.kdl"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // The agent starts with the usual soft limit of 1,024 descriptors.
    // SAFETY: only setrlimit runs between fork and exec.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
            limit.rlim_cur = 1024;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let agent = f.spawn_command(cmd);
    agent.wait(std::time::Duration::from_secs(20), "app/web ready", |s| {
        state(s, "app", "web") == "ready"
    });

    let idle: Vec<std::net::TcpStream> = (0..1100)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", f.port)).expect("connect"))
        .collect();
    let started = std::time::Instant::now();
    // The client gives up well before an idle connection times out (10 s):
    // an answer means a slot was made, not that one came free by itself.
    let (code, body) = agent.get("/healthz");
    eprintln!(
        "/healthz with {} idle connections: {:?}",
        idle.len(),
        started.elapsed()
    );
    assert_eq!((code, body.as_str()), (200, "ok\n"));

    // The work still finds descriptors: a reconcile fetches and writes.
    let (code, _) = agent.post("/api/reconcile/source/repo", None);
    assert_eq!(code, 202);
    let (code, _) = agent.post("/api/reconcile/app/web", None);
    assert_eq!(code, 202);
    agent.wait(std::time::Duration::from_secs(20), "app/web ran again", |s| {
        crate::agent::runs(s, "app", "web") >= 2 && state(s, "app", "web") == "ready"
    });
    drop(idle);
}

#[test]
fn a_large_invalid_config_is_reported_at_once_and_holds_nothing_up() {
    use crate::agent::{Fixture, app};
    let f = Fixture::new();
    let mut agent = f.start(&app("web", "web"));
    // About 0.7 MB of unknown nodes: 40,000 problems.
    let mut text = f.config(&app("web", "web"));
    for i in 0..40_000 {
        text.push_str(&format!("bogus{i} \"x\"\n"));
    }
    let tmp = f.path().join(".mooring.kdl.tmp");
    std::fs::write(&tmp, &text).expect("write");
    let saved = std::time::Instant::now();
    std::fs::rename(&tmp, f.path().join("mooring.kdl")).expect("rename");
    let s = agent.wait(std::time::Duration::from_secs(20), "the failed reload", |s| {
        s["last_reload"]["result"] == "failed"
    });
    eprintln!(
        "a 40,000-problem config reported as a failed reload after {:?}",
        saved.elapsed()
    );
    let diagnostics = s["last_reload"]["diagnostics"].as_str().expect("diagnostics");
    assert!(
        diagnostics.contains("… and 39950 more mooring::config::unknown-node errors not shown"),
        "{}",
        &diagnostics[diagnostics.len().saturating_sub(400)..]
    );
    assert!(
        diagnostics.ends_with("invalid, 40000 errors\n"),
        "{}",
        &diagnostics[diagnostics.len().saturating_sub(400)..]
    );
    let (code, _) = agent.signal("TERM");
    assert_eq!(code, 0);
}

#[test]
fn validate_refuses_urls_that_would_run_commands_and_explains_far_timestamps() {
    let env = crate::support::TestEnv::new();
    env.write(
        "mooring.kdl",
        r#"source "helper" { git "ext::sh -c touch% /tmp/pwned"; }
source "option-host" { git "-oProxyCommand=x:repo"; }
source "option-url" { git "ssh://-oProxyCommand=x/repo"; }
app "a" { source "helper"; target dir="out"; }
suspend app="a" reason="for ever" until="9999-12-31T23:59:59Z"
"#,
    );
    let run = env.run(&["validate", "-c", "mooring.kdl", "--format", "json"]);
    run.expect_code(1);
    let problems: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let codes: Vec<(&str, &str)> = problems
        .as_array()
        .expect("array")
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap_or(""),
                p["message"].as_str().unwrap_or(""),
            )
        })
        .collect();
    let urls: Vec<&&str> = codes
        .iter()
        .filter(|(c, _)| *c == "mooring::config::invalid-url")
        .map(|(_, m)| m)
        .collect();
    assert_eq!(urls.len(), 3, "{codes:?}");
    assert!(urls[0].contains("remote helper"), "{}", urls[0]);
    assert!(urls[1].contains("ssh would read it as an option"), "{}", urls[1]);
    assert!(urls[2].contains("ssh would read it as an option"), "{}", urls[2]);
    let until = codes
        .iter()
        .find(|(c, _)| *c == "mooring::config::invalid-timestamp")
        .expect("the timestamp");
    assert!(until.1.contains("outside the range"), "{}", until.1);
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}

#[test]
fn directory_writes_never_overlap_and_leave_no_temp_files() {
    use crate::agent::{Fixture, state};
    let f = Fixture::new();
    // Enough objects that writing them outlasts a 1 ms timeout.
    let many: String = (0..300)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm{i}\n  namespace: web\ndata:\n  n: \"{i}\"\n"))
        .collect();
    f.repo.write(&[("many/all.yaml", &many)]);
    f.repo.commit("many");
    f.repo.publish();
    // A temp file a killed write left behind, and one that is not ours.
    let out = f.out("many");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join(".mooring-many-k1ll3d.tmp"), "half a manifest").expect("write");
    std::fs::write(out.join(".notes.tmp"), "someone's").expect("write");
    let app = |timeout: &str| {
        format!(
            "app \"many\" {{\n    source \"repo\"\n    path \"many\"\n    target dir=\"out/many\"\n    timeout \"{timeout}\"\n}}\n"
        )
    };
    let agent = f.start(&app("1ms"));
    let s = agent.wait(std::time::Duration::from_secs(20), "a failed write", |s| {
        state(s, "app", "many") == "failed"
    });
    let error = crate::agent::object(&s, "app", "many")
        .map(|o| o["error"].to_string())
        .unwrap_or_default();
    assert!(!error.contains("File exists"), "{error}");
    // A generous timeout: it converges, whatever the given-up writes left.
    f.save(&app("5m"));
    agent.wait(std::time::Duration::from_secs(60), "app/many ready", |s| {
        state(s, "app", "many") == "ready"
    });
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .expect("read out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        !names.iter().any(|n| n.starts_with(".mooring-many-")),
        "{:?}",
        &names[..5]
    );
    assert!(names.contains(&".notes.tmp".to_string()));
    assert_eq!(names.iter().filter(|n| n.ends_with(".yaml")).count(), 300);
}
