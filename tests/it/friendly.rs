//! Defaults for a new user: `once` prints its results on stdout and logs
//! only with `-v`; a non-root user without `state-dir` gets a state
//! directory of their own and a one-line note, not "Permission denied".

use std::path::Path;

use crate::agent::{Fixture, app};
use crate::support::{Run, is_root, skip};

fn once(f: &Fixture, extra: &[&str]) -> Run {
    let out = f
        .env
        .cmd()
        .args(["once", "-c", "mooring.kdl"])
        .args(extra)
        .env_remove("MOORING_LOG")
        .output()
        .expect("run mooring once");
    Run::from(out)
}

#[test]
fn once_prints_results_and_logs_only_when_asked() {
    let f = Fixture::new();
    f.save(&format!("{}{}", app("web", "web"), app("broken", "missing")));

    let quiet = once(&f, &[]);
    quiet.expect_code(1);
    let lines: Vec<&str> = quiet.stdout.lines().collect();
    assert!(
        lines.iter().any(|l| l.starts_with("app/web  applied")),
        "{}",
        quiet.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("app/broken  failed (RenderFailed)")),
        "{}",
        quiet.stdout
    );
    // No log lines, no progress line (stderr is not a terminal).
    assert_eq!(quiet.stderr, "", "stderr of a quiet once");

    let verbose = once(&f, &["-v"]);
    verbose.expect_code(1);
    assert!(verbose.stdout.contains("app/web  applied"), "{}", verbose.stdout);
    assert!(
        verbose.stderr.contains("INFO") && verbose.stderr.contains("applied"),
        "{}",
        verbose.stderr
    );
    assert!(verbose.stderr.contains("RenderFailed"), "{}", verbose.stderr);
    assert!(!verbose.stderr.contains("DEBUG"), "{}", verbose.stderr);
    assert!(
        !verbose.stderr.contains('\x1b'),
        "escapes without a terminal: {}",
        verbose.stderr
    );

    // -vv: debug lines too, such as each file a directory target writes.
    f.repo.write(&[(
        "web/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: more\n",
    )]);
    f.repo.commit("one more");
    f.repo.publish();
    let debug = once(&f, &["-vv"]);
    assert!(
        debug.stderr.contains("DEBUG") && debug.stderr.contains("created"),
        "{}",
        debug.stderr
    );
}

#[test]
fn a_user_without_state_dir_gets_their_own() {
    if Path::new("/var/lib/mooring").exists() {
        skip(
            "a_user_without_state_dir_gets_their_own",
            "/var/lib/mooring exists on this machine",
        );
        return;
    }
    let f = Fixture::new();
    // The fixture's config without its `state-dir`.
    let config = f
        .config(&app("web", "web"))
        .replace("    state-dir \"state\"\n", "");
    assert!(!config.contains("state-dir"));
    f.env.write("mooring.kdl", &config);
    let home = f.path().join("home");
    std::fs::create_dir(&home).expect("home");
    let mut cmd = if is_root() {
        // As nobody, who owns the fixture (git refuses a repository of
        // another user) and cannot write into /var/lib.
        if !Path::new("/usr/bin/setpriv").exists() && !Path::new("/bin/setpriv").exists() {
            skip(
                "a_user_without_state_dir_gets_their_own",
                "setpriv is not installed",
            );
            return;
        }
        for entry in walk(f.path()) {
            std::os::unix::fs::lchown(&entry, Some(65534), Some(65534)).expect("chown to nobody");
        }
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(crate::support::mooring_bin());
        c
    } else {
        std::process::Command::new(crate::support::mooring_bin())
    };
    let out = cmd
        .args(["once", "-c", "mooring.kdl"])
        .current_dir(f.path())
        .env("HOME", &home)
        .env_remove("XDG_STATE_HOME")
        .env_remove("MOORING_CONFIG")
        .env_remove("MOORING_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run mooring once");
    let run = Run::from(out);
    let state = home.join(".local/state/mooring");
    let note = format!(
        "note: the config sets no state-dir and /var/lib/mooring is not writable by this user: state goes to {}",
        state.display()
    );
    assert!(run.stderr.starts_with(&note), "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "one line:\n{}", run.stderr);
    assert!(!run.stdout.contains("/var/lib/mooring"), "{}", run.stdout);
    assert!(state.join("artifacts").is_dir(), "{}", run.stdout);
    run.expect_code(0);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut all = vec![dir.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                all.extend(walk(&p));
            } else {
                all.push(p);
            }
        }
    }
    all
}
