//! Shared test environment: a temp dir per test and the real binary, and
//! [`skip`], the one way a test says it cannot run here; polling for a
//! condition ([`wait_for`], [`wait_until`]); running a setup command ([`checked`], [`tool`])
//! or one that may hang ([`output_within`]).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A temp dir and helpers to run `mooring` in it. Failures print the
/// command's stdout and stderr.
pub struct TestEnv {
    dir: tempfile::TempDir,
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Stdout as JSON ([`json_output`]).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        json_output(&self.stdout, &self.stderr)
    }

    /// Assert the exit code, showing the output when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Assert that stdout holds `text`, showing it when it does not.
    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "no {text:?} in stdout:\n{}",
            self.stdout
        );
        self
    }

    /// Assert that stderr holds `text`, showing it when it does not.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "no {text:?} in stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// Run `cmd` (stdin empty, both outputs collected) to its end: `Ok` with
/// what it printed and how it exited, or `Err` with what it had printed
/// when it was still running after `limit` and was killed. Panics when it
/// cannot start.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Result<Run, Run> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + limit;
    // A short poll: benches time commands with it.
    let status = loop {
        match child.try_wait().expect("wait for the command") {
            Some(status) => break Some(status),
            None if Instant::now() > deadline => break None,
            None => std::thread::sleep(Duration::from_micros(500)),
        }
    };
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let run = Run {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    if status.is_some() { Ok(run) } else { Err(run) }
}

/// Run `cmd` to its end; its stdout. Panics, showing both outputs, when
/// it cannot start or fails.
#[track_caller]
pub fn checked(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write `contents` to `name` inside the env and return its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dir");
        }
        std::fs::write(&path, contents).expect("write file");
        path
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read file")
    }

    /// A `mooring` command that runs in the env's dir with a clean
    /// environment for config discovery and no colours.
    pub fn cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(mooring_bin());
        cmd.current_dir(self.dir.path())
            .env_remove("MOORING_CONFIG")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100");
        cmd
    }

    /// Run `mooring ARGS…` and collect its output.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd().args(args).output().expect("run mooring");
        Run::from(out)
    }
}

/// The repository root (for examples/, schema/, fixtures): the parent of
/// this crate's folder.
pub fn repo_root() -> PathBuf {
    let testkit = Path::new(env!("CARGO_MANIFEST_DIR"));
    testkit
        .parent()
        .expect("testkit/ is inside the repository")
        .to_path_buf()
}

/// The `mooring` binary cargo built with the running test or bench:
/// `target/PROFILE/mooring`, beside the `deps/` folder that holds the
/// test's own executable (cargo builds a package's binaries before its
/// integration tests and benches). Panics if it is not there.
pub fn mooring_bin() -> PathBuf {
    static BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        built_binary().unwrap_or_else(|| {
            panic!(
                "no mooring binary beside {:?} (run the tests through cargo)",
                std::env::current_exe()
            )
        })
    })
    .clone()
}

/// [`mooring_bin`]'s file, if it exists.
pub fn built_binary() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let profile = exe.parent()?.parent()?;
    let bin = profile.join(format!("mooring{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

/// `mooring validate -c NAME ARGS…` for the fixture
/// `tests/fixtures/configs/NAME`, copied into a fresh env under its own
/// name so that the file name in the output is stable, as
/// tests/it/diagnostics.rs runs the fixtures.
pub fn validate_fixture(name: &str, args: &[&str]) -> Run {
    let path = repo_root().join("tests/fixtures/configs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let env = TestEnv::new();
    env.write(name, &text);
    let mut all = vec!["validate", "-c", name];
    all.extend_from_slice(args);
    env.run(&all)
}

/// A port nothing listens on right now, on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// A test env whose config holds one source `s` (its children given by
/// the test) with its state dir inside the env, fetched with
/// `mooring once source/s --format json`.
pub struct SourceFixture {
    pub env: TestEnv,
}

/// What a successful fetch printed.
#[derive(Debug, PartialEq, Eq)]
pub struct Fetched {
    pub revision: String,
    pub dir: PathBuf,
}

impl SourceFixture {
    pub fn new() -> SourceFixture {
        SourceFixture { env: TestEnv::new() }
    }

    pub fn path(&self) -> &Path {
        self.env.path()
    }

    pub fn state(&self) -> PathBuf {
        self.path().join("state")
    }

    /// A git work repository and its bare one in the env
    /// ([`crate::gitserver::Repo`]).
    pub fn repo(&self) -> crate::gitserver::Repo {
        crate::gitserver::Repo::new(self.env.path())
    }

    /// Write the config: source `s` with `body` as its children.
    pub fn configure(&self, body: &str) {
        let config = format!(
            "agent {{ state-dir \"{}\" }}\nsource \"s\" {{\n{body}\n}}\n",
            self.state().display()
        );
        self.env.write("mooring.kdl", &config);
    }

    pub fn once(&self) -> (Run, serde_json::Value) {
        let run = self
            .env
            .run(&["once", "-v", "source/s", "--format", "json", "-c", "mooring.kdl"]);
        let json = run.json();
        (run, json[0].clone())
    }

    #[track_caller]
    pub fn ok(&self) -> Fetched {
        let (run, out) = self.once();
        run.expect_code(0);
        assert_eq!(out["result"], "ok", "{out}");
        Fetched {
            revision: out["revision"].as_str().expect("revision").to_string(),
            dir: PathBuf::from(out["artifact"].as_str().expect("artifact")),
        }
    }

    /// The failed run's error message, after checking the exit code.
    #[track_caller]
    pub fn fails(&self) -> (Run, String) {
        let (run, out) = self.once();
        run.expect_code(1);
        assert_eq!(out["result"], "failed", "{out}");
        assert_eq!(out["reason"], "FetchFailed", "{out}");
        let error = out["error"].as_str().expect("error").to_string();
        (run, error)
    }

    /// The artifact directories of source `s`, sorted.
    pub fn artifacts(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.state().join("artifacts/s")) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        dirs
    }
}

/// Whether the environment variable `CI` asks for a complete run: set and
/// neither empty, `0` nor `false`.
pub fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// `test` cannot run on this machine because of `why` (a tool is missing,
/// sshd cannot start here…). Under [`ci`] that fails the test: scripts/test
/// installs every tool, so a skip there hides a broken setup. Elsewhere the
/// test is skipped: the caller returns, and a notice goes straight to the
/// terminal (the test harness would hide `eprintln!` of a passing test).
#[track_caller]
pub fn skip(test: &str, why: &str) {
    if ci() {
        panic!(
            "{test} cannot run here: {why}. With CI set this is a failure, not a skip: \
             scripts/test installs every tool the tests drive"
        );
    }
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {why} (with CI set this fails)"
    );
}

/// The shared conformance corpus `../shared/conformance/NAME` (cases taken
/// from the peers' own test suites), or `None` after [`skip`] when it is
/// absent, as in a user's clone.
#[track_caller]
pub fn conformance(test: &str, name: &str) -> Option<PathBuf> {
    let dir = repo_root().join("../shared/conformance").join(name);
    if dir.is_dir() {
        return Some(dir);
    }
    skip(
        test,
        &format!("the conformance corpus {} is absent", dir.display()),
    );
    None
}

/// Whether the tests run as root (permissions then stop no read).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Standard base64 with padding (basic auth, docker `config.json`, Secret
/// data).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every entry under `dir`, depth first, links not followed; unreadable
/// folders are passed over.
pub fn walk(dir: &Path) -> Vec<std::fs::DirEntry> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
            out.push(e);
        }
    }
    out
}

/// Run a setup command: its trimmed stdout, or `Err` (a reason to skip)
/// only when the program is missing; a program that runs and fails fails
/// the test.
pub fn tool(cmd: &mut std::process::Command) -> Result<String, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = match cmd.stdin(std::process::Stdio::null()).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("`{program}` is not installed"));
        }
        Err(e) => panic!("cannot run `{program}`: {e}"),
    };
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A command's stdout as JSON, or a panic showing both outputs.
#[track_caller]
pub fn json_output(stdout: &str, stderr: &str) -> serde_json::Value {
    serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"))
}

/// [`wait_for`] a condition: poll `cond` until it holds, at most `within`.
#[track_caller]
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    wait_for(within, what, || {
        if cond() { Ok(()) } else { Err("it did not".into()) }
    })
}

/// Poll `check` every 10 ms until it gives `Ok`, at most `within`; then
/// panic with `what` and the last `Err` (what was seen instead).
#[track_caller]
pub fn wait_for<T>(within: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(v) => return v,
            Err(seen) => assert!(Instant::now() < deadline, "waited {within:?} for {what}; {seen}"),
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
