//! How fast does `mooring run` pick up a saved config, and how much memory
//! does it hold while idle?
//!
//! Builds a bare git repository with the `git` command line (10 app paths
//! of 3 manifests each: a Deployment, a Service, a ConfigMap), then runs
//! the real `mooring run` binary twice, each time with a generated config
//! whose apps (`target dir=`) read that repository over `file://`:
//!
//! 1. **Reload latency**, 500 apps. Once every object is `ready`, the bench
//!    saves the config the way editors do (a temporary file in the same
//!    directory, renamed over the config), changing one app's `interval`
//!    (1h ↔ 2h, so exactly one task restarts), and times from just before
//!    the save to the moment the agent logs `config reloaded: 0 added,
//!    1 changed, 0 removed` with the expected generation (the agent logs
//!    JSON to stderr, which a thread of the bench reads and timestamps).
//!    That includes the agent's 50 ms debounce. The saves take turns with
//!    a SIGHUP (a forced reload, no file watch and no debounce), for
//!    scale. For the breakdown, the bench also times, in process,
//!    `config::from_str` on the same text and `ConfigDiff::between` the
//!    two configs. At the end `/api/status` must show the last generation.
//! 2. **Idle memory**, 200 apps: once every object is `ready` (polling
//!    `/api/status` every 200 ms), the bench waits (15 s by default: the
//!    agent's blocking threads retire after 10 s idle) and reads `VmRSS`
//!    and `VmHWM` from `/proc/PID/status`. Then, as edits over a long life
//!    would, it saves the config once per app, each save changing one more
//!    app's interval (200 reloads, each restarting another task), waits
//!    idle again and reads the same. The 500-app agent of scenario 1 is
//!    read the same way after its reloads.
//!
//! Run with `cargo bench --bench agent`. Targets (docs/performance.md):
//! reload p50 under 200 ms on 500 apps; idle RSS under 40 MiB with 200
//! apps (judged fresh and after the edits); release build. A miss is
//! printed, not a failure.
//!
//! Without `--bench` (as under `cargo test --benches`) it is a smoke test:
//! 3 reloads of each kind, 20 apps for the memory scenario, 1 s idle.
//! Environment: `MOORING_BENCH_ITERS` (timed reloads of each kind, default
//! 30), `MOORING_BENCH_APPS` (apps of scenario 1, default 500),
//! `MOORING_BENCH_RSS_APPS` (apps of scenario 2, default 200),
//! `MOORING_BENCH_IDLE_SECS` (default 15), `MOORING_BENCH_ONLY=1|2` (one
//! scenario), `MOORING_BIN` (the binary to run), `TMPDIR` (where the
//! repository, configs, state and output directories go). Every `git` the
//! bench runs, and the agent, get `GIT_CONFIG_GLOBAL=/dev/null`,
//! `GIT_CONFIG_NOSYSTEM=1` and a temporary `HOME`.
//!
//! No benchmark framework on purpose, as in `benches/validate.rs`: std, the
//! mooring library, reqwest, serde_json and tempfile.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mooring::agent::run::DEBOUNCE;
use mooring::config::{self, diff::ConfigDiff};
use serde_json::Value;

use mooring_testkit::bench::{Mode, Row, display_bin, find_binary, measure, sorted, table};
use mooring_testkit::support::free_port;

/// Distinct app paths in the repository; app `i` reads path `i % PATHS`.
const PATHS: usize = 10;
const RELOAD_TARGET_MS: f64 = 200.0;
const RSS_TARGET_MIB: f64 = 40.0;
/// Untimed reloads of each kind before the timed ones (bench mode only).
const WARMUP: usize = 2;
/// Quiet time after a reload was logged before the next save: longer than
/// the debounce, and long enough for the restarted app's run.
const PAUSE: Duration = Duration::from_millis(250);
/// The same between the saves that edit every app of scenario 2 in turn.
const CHURN_PAUSE: Duration = Duration::from_millis(100);
/// How long to wait for a reload to be logged.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long every object may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.knob(&["MOORING_BENCH_ITERS"], 30, 3);
    let reload_apps = mode.knob(&["MOORING_BENCH_APPS"], 500, 500);
    let rss_apps = mode.knob(&["MOORING_BENCH_RSS_APPS"], 200, 20);
    let idle = Duration::from_secs(mode.knob(&["MOORING_BENCH_IDLE_SECS"], 15, 1) as u64);
    let warmup = mode.warmup(WARMUP);
    let only = std::env::var("MOORING_BENCH_ONLY").unwrap_or_default();

    let Some(bin) = find_binary() else {
        panic!(
            "no mooring binary found: run `cargo bench --bench agent` (which builds it), \
             build it with `cargo build --release`, or set MOORING_BIN"
        );
    };
    let tmp = tempfile::tempdir().expect("create temp dir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("create home");
    let git = Git { home: home.clone() };

    println!("mooring agent benchmark: reload latency and idle memory");
    println!("binary: {}", display_bin(&bin));
    println!("{}", git.output(tmp.path(), &["--version"]));
    let repo = git.make_repo(tmp.path());
    println!(
        "repository: {} ({PATHS} app paths of 3 manifests each)",
        repo.display()
    );
    if bench_mode {
        println!(
            "timing: {warmup} untimed reloads of each kind, then {iters} timed ones, taking turns; \
             {PAUSE:?} quiet after each"
        );
    } else {
        println!("smoke run (no --bench): {iters} reloads, {rss_apps} apps for memory, {idle:?} idle");
        println!("  use `cargo bench --bench agent` for numbers");
    }
    println!();

    let mut rows = Vec::new();
    let mut memory = Vec::new();
    let mut notes = Vec::new();
    let mut reload_median = None;
    let mut idle_rss = None;
    let mut churned_rss = None;

    // ---- 1. reload latency ----------------------------------------------------
    if only.is_empty() || only == "1" {
        let setup = Setup::new(tmp.path().join("reload"), &repo, &home, reload_apps);
        let mut agent = setup.start(&bin);
        let (ready_in, objects) = agent.wait_all_ready();
        println!(
            "scenario 1: {objects} objects ready {:.2} s after start",
            ready_in.as_secs_f64()
        );
        let mem_ready = agent.memory();

        // The in-process parts of a reload, on the same texts.
        let path = setup.config.clone();
        let text_a = setup.text("1h");
        let text_b = setup.text("2h");
        let load = |t: &str| {
            config::from_str(&path, t.to_string(), jiff::Timestamp::now())
                .unwrap_or_else(|e| panic!("the generated config is not valid: {e}"))
        };
        let (cfg_a, cfg_b) = (load(&text_a), load(&text_b));
        assert!(
            cfg_a.warnings.items.is_empty(),
            "the generated config has warnings:\n{}",
            cfg_a.warnings.render(false, 100)
        );
        let diff = ConfigDiff::between(&cfg_a.config, &cfg_b.config);
        assert_eq!(diff.to_string(), "0 added, 1 changed, 0 removed");

        let mut generation = 1;
        let mut edits = 0usize;
        let mut saved = Vec::new();
        let mut hup = Vec::new();
        for round in 0..warmup + iters {
            // Save: one app's interval flips between 1h and 2h.
            edits += 1;
            generation += 1;
            let text = if edits % 2 == 1 { &text_b } else { &text_a };
            let start = Instant::now();
            setup.save(text);
            let took = agent.wait_reload(start, generation, "0 added, 1 changed, 0 removed");
            if round >= warmup {
                saved.push(took);
            }
            std::thread::sleep(PAUSE);
            // SIGHUP: the same file read again, nothing changed.
            generation += 1;
            let start = Instant::now();
            agent.signal("HUP");
            let took = agent.wait_reload(start, generation, "0 added, 0 changed, 0 removed");
            if round >= warmup {
                hup.push(took);
            }
            std::thread::sleep(PAUSE);
        }
        let status = agent.status();
        assert_eq!(
            status["generation"].as_u64(),
            Some(generation),
            "/api/status disagrees with the log on the generation"
        );
        assert_eq!(status["last_reload"]["result"].as_str(), Some("ok"));
        let edited = setup.edited_app();
        let edited_status = status["objects"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["name"].as_str() == Some(edited.as_str())))
            .expect("the edited app in /api/status");
        notes.push(format!(
            "scenario 1: /api/status shows generation {generation}, last reload ok; \
             app/{edited} ran {} times (state {})",
            edited_status["runs"], edited_status["state"]
        ));
        let mem_after = agent.memory();
        let stopped = agent.stop();
        notes.push(format!(
            "scenario 1: SIGTERM → exit in {:.0} ms ({})",
            stopped.0.as_secs_f64() * 1000.0,
            stopped.1
        ));

        let beyond: Vec<Duration> = saved.iter().map(|d| d.saturating_sub(DEBOUNCE)).collect();
        let from_str = measure(warmup, iters, || {
            std::hint::black_box(load(std::hint::black_box(&text_b)));
        });
        let between = measure(warmup, iters, || {
            std::hint::black_box(ConfigDiff::between(&cfg_a.config, &cfg_b.config));
        });
        let lines = text_a.lines().count();
        rows.push(Row::new(
            format!("1. reload, {reload_apps} apps ({lines} lines)"),
            vec![],
        ));
        let save_row = Row::new("  save → generation logged", sorted(saved));
        reload_median = Some(save_row.median_ms());
        rows.push(save_row);
        rows.push(Row::new(
            format!("    beyond the {} ms debounce", DEBOUNCE.as_millis()),
            sorted(beyond),
        ));
        rows.push(Row::new("  SIGHUP → generation logged", sorted(hup)));
        rows.push(Row::new("  config::from_str (in process)", from_str));
        rows.push(Row::new("  ConfigDiff::between (in process)", between));
        memory.push((format!("{reload_apps} apps, all ready"), mem_ready));
        memory.push((
            format!("{reload_apps} apps, after {} reloads", generation - 1),
            mem_after,
        ));
    }

    // ---- 2. idle memory ------------------------------------------------------------
    if only.is_empty() || only == "2" {
        let setup = Setup::new(tmp.path().join("rss"), &repo, &home, rss_apps);
        let mut agent = setup.start(&bin);
        let (ready_in, objects) = agent.wait_all_ready();
        println!(
            "scenario 2: {objects} objects ready {:.2} s after start",
            ready_in.as_secs_f64()
        );
        memory.push((format!("{rss_apps} apps, all ready"), agent.memory()));
        std::thread::sleep(idle);
        let mem = agent.memory();
        idle_rss = Some((mem.rss_kib as f64 / 1024.0, rss_apps));
        memory.push((format!("{rss_apps} apps, idle {} s after", idle.as_secs()), mem));
        agent.assert_all_ready();

        // A long-lived agent: edits over time touch every app once (each
        // save changes the interval of one more app), then it idles again.
        let start = Instant::now();
        for k in 1..=rss_apps {
            setup.save(&setup.render(|i| if i <= k { "2h" } else { "1h" }));
            agent.wait_reload(start, 1 + k as u64, "0 added, 1 changed, 0 removed");
            std::thread::sleep(CHURN_PAUSE);
        }
        println!(
            "scenario 2: {rss_apps} reloads, each changing one more app, in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        agent.wait_all_ready();
        std::thread::sleep(idle);
        let mem = agent.memory();
        churned_rss = Some(mem.rss_kib as f64 / 1024.0);
        memory.push((
            format!(
                "{rss_apps} apps, every app edited once, idle {} s",
                idle.as_secs()
            ),
            mem,
        ));
        agent.assert_all_ready();
        let stopped = agent.stop();
        notes.push(format!(
            "scenario 2: SIGTERM → exit in {:.0} ms ({})",
            stopped.0.as_secs_f64() * 1000.0,
            stopped.1
        ));
    }

    println!();
    if !rows.is_empty() {
        print!("{}", table(&rows));
        println!();
    }
    if !memory.is_empty() {
        print!("{}", memory_table(&memory));
        println!();
    }
    for note in &notes {
        println!("{note}");
    }
    let verdict = |met: bool| {
        if !bench_mode {
            "not judged in a smoke run"
        } else if met {
            "met"
        } else {
            "MISSED"
        }
    };
    if let Some(median) = reload_median {
        println!(
            "target: reload (save → new generation) p50 under {RELOAD_TARGET_MS:.0} ms on {reload_apps} apps: {} \
             (median {median:.2} ms)",
            verdict(median < RELOAD_TARGET_MS)
        );
    }
    if let Some((rss, apps)) = idle_rss {
        println!(
            "target: idle RSS under {RSS_TARGET_MIB:.0} MiB with {apps} apps: {} (VmRSS {rss:.1} MiB)",
            verdict(rss < RSS_TARGET_MIB)
        );
    }
    if let Some(rss) = churned_rss {
        println!(
            "        the same after edits that changed every app once: {} (VmRSS {rss:.1} MiB)",
            verdict(rss < RSS_TARGET_MIB)
        );
    }
}

// ---- the config ----------------------------------------------------------------

/// One agent's directory: `etc/mooring.kdl`, and beside it (not in the
/// watched `etc/`) `state/` and `out/`.
struct Setup {
    dir: PathBuf,
    config: PathBuf,
    repo_url: String,
    home: PathBuf,
    apps: usize,
    port: u16,
}

impl Setup {
    fn new(dir: PathBuf, repo: &Path, home: &Path, apps: usize) -> Setup {
        std::fs::create_dir_all(dir.join("etc")).expect("create etc dir");
        let setup = Setup {
            config: dir.join("etc").join("mooring.kdl"),
            dir,
            repo_url: format!("file://{}", repo.display()),
            home: home.to_path_buf(),
            apps,
            port: free_port(),
        };
        setup.save(&setup.text("1h"));
        setup
    }

    /// The app whose interval the reloads change.
    fn edited_app(&self) -> String {
        app_name(self.apps / 2 + 1)
    }

    /// The config, with `interval` for the edited app (`1h` for the others).
    fn text(&self, interval: &'static str) -> String {
        let edited = self.apps / 2 + 1;
        self.render(|i| if i == edited { interval } else { "1h" })
    }

    /// The config; app `i` (from 1) runs every `interval_of(i)`.
    fn render(&self, interval_of: impl Fn(usize) -> &'static str) -> String {
        let mut s = format!(
            "agent {{\n    state-dir \"../state\"\n    listen \"127.0.0.1:{}\"\n    log level=\"info\" format=\"json\"\n}}\n\n\
             source \"repo\" {{\n    git {}\n    branch \"main\"\n    interval \"1h\"\n}}\n",
            self.port,
            kdl_string(&self.repo_url)
        );
        for i in 1..=self.apps {
            let name = app_name(i);
            let every = interval_of(i);
            s.push_str(&format!(
                "\napp \"{name}\" {{\n    source \"repo\"\n    path \"apps/p{}\"\n    target dir=\"../out/{name}\"\n    interval \"{every}\"\n}}\n",
                i % PATHS
            ));
        }
        s
    }

    /// Replace the config the way editors do: a temporary file in the same
    /// directory, renamed over it.
    fn save(&self, text: &str) {
        let tmp = self.config.with_file_name(".mooring.kdl.tmp");
        std::fs::write(&tmp, text).expect("write temp config");
        std::fs::rename(&tmp, &self.config).expect("rename config");
    }

    fn start(&self, bin: &Path) -> Agent {
        let mut child = Command::new(bin)
            .arg("run")
            .arg("-c")
            .arg(&self.config)
            .current_dir(&self.dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("MOORING_LOG")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start mooring run");
        let started = Instant::now();
        let stderr = child.stderr.take().expect("stderr");
        let (tx, events) = mpsc::channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let reader = {
            let tail = tail.clone();
            std::thread::spawn(move || read_log(stderr, tx, tail))
        };
        // The guard exists before the wait, so an agent that never gets
        // ready is stopped too.
        let mut agent = Agent {
            pid: child.id(),
            child: Some(child),
            started,
            base: format!("http://127.0.0.1:{}", self.port),
            http: reqwest::blocking::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            events,
            tail,
            reader: Some(reader),
        };
        agent.wait_http();
        agent
    }
}

fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn kdl_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

// ---- the agent -----------------------------------------------------------------

/// What the log reader reports.
enum Event {
    Reloaded {
        generation: u64,
        message: String,
        at: Instant,
    },
    Failed {
        message: String,
    },
}

/// Read the agent's JSON log lines, timestamp reloads, keep the last lines.
fn read_log(stderr: impl std::io::Read, tx: Sender<Event>, tail: Arc<Mutex<VecDeque<String>>>) {
    for line in BufReader::new(stderr).lines() {
        let at = Instant::now();
        let Ok(line) = line else { break };
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            let message = v["fields"]["message"].as_str().unwrap_or_default();
            if let Some(rest) = message.strip_prefix("config reloaded: ") {
                let generation = v["fields"]["generation"].as_u64().unwrap_or(0);
                let _ = tx.send(Event::Reloaded {
                    generation,
                    message: rest.to_string(),
                    at,
                });
            } else if v["level"] == "ERROR" && message.contains("is invalid") {
                let _ = tx.send(Event::Failed {
                    message: message.to_string(),
                });
            }
        }
        let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
}

/// A running `mooring run`; stopped (SIGTERM, then SIGKILL) on drop, so
/// also when the bench panics.
struct Agent {
    child: Option<Child>,
    pid: u32,
    started: Instant,
    base: String,
    http: reqwest::blocking::Client,
    events: Receiver<Event>,
    tail: Arc<Mutex<VecDeque<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// What `/proc/PID/status` says about memory and threads, in KiB.
#[derive(Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    threads: u64,
}

impl Agent {
    /// The last log lines, for a panic message.
    fn log_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Panics if the agent has exited.
    fn check_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!("mooring run exited early ({status})\n{}", self.log_tail());
        }
    }

    /// Until `/readyz` answers 200.
    fn wait_http(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(format!("{}/readyz", self.base)).send()
                && r.status().is_success()
            {
                return;
            }
            self.check_alive();
            assert!(
                Instant::now() < deadline,
                "mooring run never answered /readyz\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn status(&self) -> Value {
        let r = self
            .http
            .get(format!("{}/api/status", self.base))
            .send()
            .unwrap_or_else(|e| panic!("GET /api/status: {e}\n{}", self.log_tail()));
        assert!(r.status().is_success(), "/api/status answered {}", r.status());
        r.json().expect("status JSON")
    }

    fn assert_all_ready(&self) {
        let status = self.status();
        let not_ready: Vec<String> = status["objects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["state"] != "ready")
            .map(|o| format!("{}/{} is {}", o["kind"], o["name"], o["state"]))
            .collect();
        assert!(not_ready.is_empty(), "objects left `ready`: {not_ready:?}");
    }

    /// Poll `/api/status` until every object is `ready`; how long after
    /// the start that was, and how many objects there are.
    fn wait_all_ready(&mut self) -> (Duration, usize) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let status = self.status();
            let objects = status["objects"].as_array().cloned().unwrap_or_default();
            let ready = objects.iter().filter(|o| o["state"] == "ready").count();
            if !objects.is_empty() && ready == objects.len() {
                return (self.started.elapsed(), objects.len());
            }
            if let Some(bad) = objects
                .iter()
                .find(|o| o["state"] == "failed" || o["state"] == "stalled")
            {
                panic!(
                    "{}/{} is {}: {}\n{}",
                    bad["kind"],
                    bad["name"],
                    bad["state"],
                    bad["last_error"],
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "only {ready} of {} objects ready after {READY_TIMEOUT:?}\n{}",
                objects.len(),
                self.log_tail()
            );
            self.check_alive();
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Wait for the reload to `generation` to be logged; the time from
    /// `start` to the moment its line was read.
    fn wait_reload(&self, start: Instant, generation: u64, diff: &str) -> Duration {
        match self.events.recv_timeout(RELOAD_TIMEOUT) {
            Ok(Event::Reloaded {
                generation: g,
                message,
                at,
            }) => {
                assert_eq!(
                    g,
                    generation,
                    "expected a reload to generation {generation}, got {g} ({message})\n{}",
                    self.log_tail()
                );
                assert_eq!(message, diff, "reload to generation {g}");
                at.duration_since(start)
            }
            Ok(Event::Failed { message }) => panic!("the reload failed: {message}"),
            Err(_) => panic!(
                "no reload to generation {generation} within {RELOAD_TIMEOUT:?}\n{}",
                self.log_tail()
            ),
        }
    }

    /// `kill -NAME PID` (std cannot send a signal other than SIGKILL).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {} failed", self.pid);
    }

    fn memory(&self) -> Memory {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).expect("read /proc/PID/status");
        let mut m = Memory::default();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let n = value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            match key {
                "VmRSS" => m.rss_kib = n,
                "VmHWM" => m.hwm_kib = n,
                "RssAnon" => m.anon_kib = n,
                "RssFile" => m.file_kib = n,
                "Threads" => m.threads = n,
                _ => {}
            }
        }
        m
    }

    /// SIGTERM and wait: how long the exit took, and how it exited.
    fn stop(mut self) -> (Duration, String) {
        let start = Instant::now();
        let status = self.terminate(Duration::from_secs(40));
        let took = start.elapsed();
        let status = match status {
            Some(s) if s.success() => "exit 0".to_string(),
            Some(s) => format!("{s}: UNEXPECTED"),
            None => "did not exit; killed".to_string(),
        };
        (took, status)
    }

    /// SIGTERM, wait up to `bound`, then SIGKILL. `None` if it was killed.
    fn terminate(&mut self, bound: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(5));
    }
}

fn memory_table(rows: &[(String, Memory)]) -> String {
    use std::fmt::Write as _;
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(5);
    let mib = |k: u64| k as f64 / 1024.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {:<width$} | {:>9} | {:>9} | {:>8} | {:>8} | {:>7} |",
        "memory", "VmRSS MiB", "VmHWM MiB", "anon MiB", "file MiB", "threads"
    );
    let _ = writeln!(
        out,
        "|-{}-|----------:|----------:|---------:|---------:|--------:|",
        "-".repeat(width)
    );
    for (name, m) in rows {
        let _ = writeln!(
            out,
            "| {:<width$} | {:>9.1} | {:>9.1} | {:>8.1} | {:>8.1} | {:>7} |",
            name,
            mib(m.rss_kib),
            mib(m.hwm_kib),
            mib(m.anon_kib),
            mib(m.file_kib),
            m.threads
        );
    }
    out
}

// ---- the repository ------------------------------------------------------------

/// Runs `git` isolated from the machine's and the user's config.
struct Git {
    home: PathBuf,
}

impl Git {
    fn cmd(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir)
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_AUTHOR_NAME", "Bench")
            .env("GIT_AUTHOR_EMAIL", "bench@example.com")
            .env("GIT_COMMITTER_NAME", "Bench")
            .env("GIT_COMMITTER_EMAIL", "bench@example.com")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        cmd
    }

    /// `git ARGS…`'s trimmed stdout; panics on failure.
    fn output(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.cmd(dir).args(args).output().expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `srv/repo.git` under `root`: one commit on `main` of `PATHS` app
    /// paths (`apps/p0` …), each a Deployment, a Service and a ConfigMap.
    fn make_repo(&self, root: &Path) -> PathBuf {
        let work = root.join("work");
        let bare = root.join("srv").join("repo.git");
        std::fs::create_dir_all(&work).expect("create work tree");
        self.output(&work, &["init", "-q", "-b", "main"]);
        for p in 0..PATHS {
            let dir = work.join("apps").join(format!("p{p}"));
            std::fs::create_dir_all(&dir).expect("create app path");
            for (file, text) in manifests(p) {
                std::fs::write(dir.join(file), text).expect("write manifest");
            }
        }
        self.output(&work, &["add", "-A"]);
        self.output(&work, &["commit", "-q", "-m", "apps"]);
        std::fs::create_dir_all(bare.parent().expect("parent")).expect("create srv");
        self.output(
            root,
            &[
                "clone",
                "-q",
                "--bare",
                work.to_str().expect("UTF-8 temp path"),
                bare.to_str().expect("UTF-8 temp path"),
            ],
        );
        bare
    }
}

/// Three small manifests for app path `p`.
fn manifests(p: usize) -> [(&'static str, String); 3] {
    let name = format!("web-{p}");
    let ns = format!("team-{p}");
    [
        (
            "deployment.yaml",
            format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    app: {name}\n\
                 spec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      \
                 labels:\n        app: {name}\n    spec:\n      containers:\n        - name: {name}\n          \
                 image: ghcr.io/acme/{name}:1.{p}.0\n          ports:\n            - containerPort: 8080\n"
            ),
        ),
        (
            "service.yaml",
            format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector:\n    \
                 app: {name}\n  ports:\n    - port: 80\n      targetPort: 8080\n"
            ),
        ),
        (
            "configmap.yaml",
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-settings\n  namespace: {ns}\ndata:\n  \
                 LOG_LEVEL: info\n  PATH_INDEX: \"{p}\"\n"
            ),
        ),
    ]
}

// ---- helpers -------------------------------------------------------------------
