//! How fast does mooring apply 1,000 objects to a cluster, next to
//! `kubectl apply --server-side`?
//!
//! Generates one app of N objects (1,000; 50 in a smoke run): a Namespace,
//! then in it ConfigMaps, Services, Deployments, ServiceAccounts and Secrets
//! (`stringData`) in the proportions 400 : 300 : 150 : 100 : 49, one object
//! per file under `apps/bench/<kind>/` (the Namespace is
//! `apps/bench/00-namespace.yaml`, so that kubectl, which applies files in
//! path order, creates it first). The files are committed with the `git`
//! command line into a bare repository that mooring reads over `file://`;
//! kubectl gets the same files from the work tree. Every `git` runs with
//! `GIT_CONFIG_GLOBAL=/dev/null`, `GIT_CONFIG_NOSYSTEM=1`, a temporary
//! `HOME` and fixed author and committer.
//!
//! Each tool applies against its **own, fresh** loopback API server
//! (`testkit/src/apiserver`, in this process, on its own thread; default
//! `Options`), so neither sees the other's objects or field managers:
//!
//! * **mooring**: a config with `cluster "bench" { kubeconfig … }`, the
//!   `file://` source and one app (no prune, no wait), in a fresh directory
//!   with a fresh state dir. Untimed, `mooring once source/bench` fetches
//!   the source (its time is reported for scale); then the timed
//!   `mooring once app/bench -c FILE --format json` mostly applies: it
//!   still runs the source (a no-change fetch over `file://`, which finds
//!   its artifact) and, as every `once` process does, discovery of the
//!   kinds it applies (mooring keeps no discovery cache on disk). Its JSON
//!   must say `created: N`; a second `once` (the no-op re-apply) must say
//!   `unchanged: N`. From the agent's JSON log (`duration_ms` of each
//!   object's run) the bench splits the wall time into the app's run, the
//!   source's run and the rest (process start, config, connection).
//! * **kubectl**: the real `kubectl apply --server-side -f DIR --recursive`
//!   (its default field manager, `kubectl`), through `apiserver::kubectl`
//!   (clean environment, a discovery cache dir per run). Two first-apply
//!   rows: with a **cold** cache (empty cache dir), and with a **warm** one
//!   (an untimed `kubectl api-resources` against the same fresh server
//!   first, which fills the discovery cache; the OpenAPI documents kubectl
//!   reads to validate are cached by their hash as it first reads them).
//!   The no-op re-apply follows the warm first apply (so its cache is
//!   warm too). The ratio the target is about is mooring against the
//!   **warm** row: the harder one for mooring.
//!
//! After each tool's first apply, `ApiServer::objects()` must hold the
//! Namespace and N − 1 objects in it; after the no-op, their
//! resourceVersions must not have changed. The scenarios take turns per
//! round (the order rotates each round), so a change in the machine's load
//! weighs on all alike; in bench mode one untimed round comes first.
//!
//! **CPU and memory:** every timed command runs under GNU time
//! (`/usr/bin/time -f "%M %U %S" -o FILE`, Debian package `time`), which
//! reports the peak RSS and the CPU time of the process it runs (mooring
//! or kubectl; not of the API server, which is this bench). The API
//! server's thread's CPU time over the same run comes from
//! `/proc/self/task/TID/stat`. Without GNU time, times are still measured
//! and memory is reported as missing (`apt-get install time`).
//!
//! **Where the time goes:** the server's request log (`ApiServer::requests`)
//! of each timed run is counted by kind (discovery and OpenAPI, LIST, GET,
//! PATCH, other) and printed for the last round. After the timed rounds,
//! three more first applies and no-ops of mooring and of kubectl (warm
//! cache) run while a thread polls the request log every millisecond, which
//! dates the first request, the first and last PATCH of an object, and
//! the exit: time before the first request is the client's own (start,
//! reading and parsing the manifests), and so on.
//!
//! **The binary:** the one cargo builds with the bench, in the same
//! profile: `release` under `cargo bench`, `debug` under `cargo test
//! --benches`. So there is nothing to build by hand and no stale binary to
//! pick up; `MOORING_BIN` overrides it (e.g. to compare two builds).
//!
//! Run with `cargo bench --bench kube`. Target (docs/performance.md): for
//! the first apply and for the no-op re-apply of 1,000 objects, mooring at
//! most half of kubectl's wall time (medians; release build). A miss is
//! printed, not a failure; missing objects or wrong counts are failures.
//!
//! Without `--bench` (as under `cargo test --benches`) it is a smoke test
//! of 50 objects, one round, no target check, a few seconds; without
//! `kubectl` on PATH the kubectl rows are left out (in bench mode that is
//! a failure). Environment: `MOORING_BENCH_ITERS` (timed rounds, default
//! 5), `MOORING_BENCH_OBJECTS` (N, default 1,000), `MOORING_BIN`, `TMPDIR`
//! (where the repository, configs and state dirs go).
//!
//! Needs kubectl 1.32 on PATH (see `tests/it/apiserver_kubectl.rs`).
//! No benchmark framework on purpose, as in `benches/validate.rs`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use mooring_testkit::bench::{
    GnuTime, Mode, Row, Usage, git, median, mooring_binary, sorted, table, usage_table,
};

use mooring_testkit::apiserver::{self, ApiServer, Options};
use mooring_testkit::support::{json_output, output_within};

/// Runs of each tool watched through the request log (bench mode; 1 in a
/// smoke run).
const TIMELINE_RUNS: usize = 3;
/// mooring's time over kubectl's, at most.
const TARGET_RATIO: f64 = 0.5;
/// The namespace every namespaced object goes to.
const NAMESPACE: &str = "bench";
/// Any command the bench runs is killed (and the bench fails) after this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// The object kinds after the Namespace, with their share of the rest.
const MIX: [(&str, usize); 5] = [
    ("configmaps", 400),
    ("services", 300),
    ("deployments", 150),
    ("serviceaccounts", 100),
    ("secrets", 49),
];

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.iters(&[], 5);
    // Untimed rounds before the timed ones.
    let warmup = mode.warmup(1);
    let n = mode
        .knob(&["MOORING_BENCH_OBJECTS"], 1_000, 50)
        .max(MIX.len() + 1);

    let tmp = tempfile::tempdir().expect("create temp dir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("create home");

    // ---- the app: files, committed -------------------------------------------
    let start = Instant::now();
    let files = manifests(n);
    let work = tmp.path().join("work");
    let app_dir = work.join("apps").join("bench");
    for (rel, text) in &files {
        let path = app_dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create dir");
        std::fs::write(&path, text).expect("write manifest");
    }
    let bytes: usize = files.iter().map(|(_, t)| t.len()).sum();
    git(&home, tmp.path(), &["init", "-q", "-b", "main", "work"]);
    git(&home, &work, &["add", "-A"]);
    git(&home, &work, &["commit", "-q", "-m", "bench app"]);
    let bare = tmp.path().join("repo.git");
    git(&home, tmp.path(), &["clone", "-q", "--bare", "work", "repo.git"]);
    let url = format!("file://{}", bare.display());

    let bin = mooring_binary();
    let time = GnuTime::detect();
    let kubectl_version = kubectl_version();
    if kubectl_version.is_none() {
        assert!(
            !bench_mode,
            "kubectl not found on PATH: the bench compares mooring with kubectl 1.32"
        );
    }

    println!("mooring Kubernetes apply benchmark: mooring vs kubectl apply --server-side");
    println!(
        "app: {n} objects ({}), {} files, {} bytes of YAML; committed in {:.1} s",
        mix(n)
            .iter()
            .map(|(k, c)| format!("{c} {k}"))
            .collect::<Vec<_>>()
            .join(", "),
        files.len(),
        bytes,
        start.elapsed().as_secs_f64()
    );
    println!("mooring: {}", bin.display());
    match &kubectl_version {
        Some(v) => println!("kubectl: {v}"),
        None => println!("kubectl: not on PATH; its rows are left out (smoke run)"),
    }
    match &time {
        Some(_) => println!("memory: peak RSS and CPU time of each timed command, from /usr/bin/time"),
        None => println!("memory: not measured: no GNU time at /usr/bin/time (Debian: apt-get install time)"),
    }
    if bench_mode {
        println!(
            "timing: {iters} timed rounds after {warmup} untimed; each round runs every scenario \
             once, on fresh API servers, in an order that rotates per round"
        );
    } else {
        println!(
            "smoke run (no --bench): {n} objects, one round, no target; use `cargo bench --bench kube` for numbers"
        );
    }
    println!();

    let ctx = Ctx {
        n,
        tmp: tmp.path().to_path_buf(),
        home,
        bin,
        url,
        app_dir,
        time,
    };
    let mut s = Samples::default();
    let mut scenarios: Vec<Scenario> = vec![Scenario::Mooring];
    if kubectl_version.is_some() {
        scenarios.push(Scenario::KubectlCold);
        scenarios.push(Scenario::KubectlWarm);
    }
    let mut run = 0;
    for round in 0..warmup + iters {
        let timed = round >= warmup;
        for i in 0..scenarios.len() {
            let scenario = scenarios[(i + round) % scenarios.len()];
            run += 1;
            let dir = ctx.tmp.join(format!("run-{run}"));
            std::fs::create_dir_all(&dir).expect("create run dir");
            let mut out = Samples::default();
            match scenario {
                Scenario::Mooring => ctx.mooring(&dir, &mut out),
                Scenario::KubectlCold => ctx.kubectl(&dir, false, &mut out),
                Scenario::KubectlWarm => ctx.kubectl(&dir, true, &mut out),
            }
            if timed {
                s.merge(out);
            } else {
                // Requests of the untimed round are as good as any.
                s.requests.extend(out.requests);
            }
        }
        if bench_mode {
            println!(
                "round {}/{} done{}",
                round + 1,
                warmup + iters,
                if timed { "" } else { " (untimed)" }
            );
        }
    }
    if bench_mode {
        println!();
    }

    let mut timelines: Vec<(&str, Vec<Timeline>)> = Vec::new();
    for _ in 0..if bench_mode { TIMELINE_RUNS } else { 1 } {
        for (label, t) in ctx.timelines(kubectl_version.is_some()) {
            match timelines.iter_mut().find(|(l, _)| *l == label) {
                Some((_, v)) => v.push(t),
                None => timelines.push((label, vec![t])),
            }
        }
    }

    // ---- report -----------------------------------------------------------------
    // A run of `mooring once` and its parts, as it logged them.
    let mooring = |label: &'static str, [total, app, source, rest]: [Key; 4]| {
        vec![
            (label, total),
            ("    app run (logged duration_ms)", app),
            ("    source run (logged duration_ms)", source),
            ("    the rest: start, config, connect", rest),
        ]
    };
    let mut first = mooring("  mooring once app/bench (source cached)", FIRST_APPLY);
    first.push(("  kubectl apply --server-side, cold cache", Key::KubectlCold));
    first.push(("  kubectl apply --server-side, warm cache", Key::KubectlWarm));
    let mut noop = mooring("  mooring once app/bench", NOOP_APPLY);
    noop.push(("  kubectl apply --server-side (warm cache)", Key::KubectlNoop));
    let scale = vec![
        ("  mooring once source/bench (first fetch)", Key::MooringFetch),
        ("  mooring render app/bench (no cluster)", Key::MooringRender),
        ("  kubectl api-resources (cache warm-up)", Key::KubectlDiscovery),
    ];
    let mut rows = Vec::new();
    for (title, section) in [
        (format!("1. first apply, {n} objects (fresh server)"), first),
        (format!("2. no-op re-apply, {n} objects"), noop),
        ("for scale (untimed in the comparison)".to_string(), scale),
    ] {
        rows.push(Row::new(title, vec![]));
        for (label, key) in section {
            if let Some((_, samples)) = s.times.iter().find(|(k, _)| *k == key) {
                rows.push(Row::new(label, sorted(samples.clone())));
            }
        }
    }
    print!("{}", table(&rows));
    println!();

    s.sort();
    println!(
        "CPU and memory per run: the command's CPU time (user + system) and peak RSS (GNU time),{}",
        if ctx.time.is_some() { "" } else { " not measured," }
    );
    println!("and the CPU time of the API server's thread (in this process) meanwhile:");
    print!("{}", usage_table(&s.usage));
    println!();

    println!("requests per run (last round; the test API server's log):");
    print!("{}", requests_table(&s.requests));
    println!();

    println!(
        "where the time goes: {} more run(s) of each, the server's request log polled every 1 ms; \
         medians, ms from the command's start:",
        timelines.first().map_or(0, |(_, v)| v.len())
    );
    print!("{}", timeline_table(&timelines, n));
    println!();

    let median = |key: Key| -> Option<f64> {
        s.times
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| Row::new("", sorted(v.clone())).median_ms())
    };
    let verdicts = [
        (
            "first apply",
            Key::MooringFirst,
            Key::KubectlWarm,
            Some(Key::KubectlCold),
        ),
        ("no-op re-apply", Key::MooringNoop, Key::KubectlNoop, None),
    ];
    let mut all_met = true;
    for (what, m, k, also) in verdicts {
        let (Some(m), Some(k)) = (median(m), median(k)) else {
            println!("{what}: no kubectl rows, no ratio");
            all_met = false;
            continue;
        };
        let ratio = m / k;
        let also = also
            .and_then(median)
            .map(|c| format!("; {:.2}× vs the cold-cache kubectl", m / c))
            .unwrap_or_default();
        let verdict = if !bench_mode {
            "not judged in a smoke run"
        } else if ratio <= TARGET_RATIO {
            "met"
        } else {
            all_met = false;
            "MISSED"
        };
        println!(
            "{what}: mooring / kubectl (warm cache) = {ratio:.2}× (medians {m:.0} / {k:.0} ms{also}); \
             target ≤ {TARGET_RATIO}×: {verdict}"
        );
    }
    if bench_mode {
        println!(
            "target (mooring ≤ {TARGET_RATIO}× kubectl for both rows): {}",
            if all_met { "met" } else { "MISSED" }
        );
    }
}

// ---- the scenarios -------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Scenario {
    Mooring,
    KubectlCold,
    KubectlWarm,
}

/// What a sample is of.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Key {
    MooringFetch,
    MooringFirst,
    MooringFirstApp,
    MooringFirstSource,
    MooringFirstRest,
    MooringNoop,
    MooringNoopApp,
    MooringNoopSource,
    MooringNoopRest,
    MooringRender,
    KubectlDiscovery,
    KubectlCold,
    KubectlWarm,
    KubectlNoop,
}

/// The keys of the first `mooring once` apply and its parts.
const FIRST_APPLY: [Key; 4] = [
    Key::MooringFirst,
    Key::MooringFirstApp,
    Key::MooringFirstSource,
    Key::MooringFirstRest,
];
/// The same of the no-op re-apply.
const NOOP_APPLY: [Key; 4] = [
    Key::MooringNoop,
    Key::MooringNoopApp,
    Key::MooringNoopSource,
    Key::MooringNoopRest,
];

/// The runs the usage and request tables list, in their order.
const RUNS: [&str; 6] = [
    "mooring once app/bench: first apply",
    "mooring once app/bench: no-op",
    "mooring once source/bench: first fetch",
    "kubectl apply: first apply, cold cache",
    "kubectl apply: first apply, warm cache",
    "kubectl apply: no-op",
];

#[derive(Default)]
struct Samples {
    times: Vec<(Key, Vec<Duration>)>,
    usage: Vec<(&'static str, Vec<Usage>)>,
    /// The request log of a run (the last one wins).
    requests: Vec<(&'static str, Vec<String>)>,
}

impl Samples {
    /// A `mooring once`'s time and its parts as it logged them, under
    /// `keys` (the whole, the app's run, the source's run, the rest).
    fn once_times(&mut self, [whole, app, source, rest]: [Key; 4], done: &Done) {
        let (app_ms, source_ms) = logged_runs(&done.stderr);
        self.time(whole, done.wall);
        self.time(app, app_ms);
        self.time(source, source_ms);
        self.time(rest, done.wall.saturating_sub(app_ms + source_ms));
    }

    fn time(&mut self, key: Key, d: Duration) {
        match self.times.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(d),
            None => self.times.push((key, vec![d])),
        }
    }

    fn usage(&mut self, run: &'static str, u: Usage) {
        debug_assert!(RUNS.contains(&run), "{run}");
        match self.usage.iter_mut().find(|(l, _)| *l == run) {
            Some((_, v)) => v.push(u),
            None => self.usage.push((run, vec![u])),
        }
    }

    fn requests(&mut self, run: &'static str, log: Vec<String>) {
        debug_assert!(RUNS.contains(&run), "{run}");
        match self.requests.iter_mut().find(|(l, _)| *l == run) {
            Some((_, v)) => *v = log,
            None => self.requests.push((run, log)),
        }
    }

    fn merge(&mut self, other: Samples) {
        for (k, v) in other.times {
            for d in v {
                self.time(k, d);
            }
        }
        for (l, v) in other.usage {
            for u in v {
                self.usage(l, u);
            }
        }
        for (l, v) in other.requests {
            self.requests(l, v);
        }
    }

    /// Usage and request logs in the order of [`RUNS`].
    fn sort(&mut self) {
        let pos = |l: &str| RUNS.iter().position(|r| *r == l).unwrap_or(usize::MAX);
        self.usage.sort_by_key(|(l, _)| pos(l));
        self.requests.sort_by_key(|(l, _)| pos(l));
    }
}

struct Ctx {
    n: usize,
    tmp: PathBuf,
    home: PathBuf,
    bin: PathBuf,
    url: String,
    /// The same files kubectl applies (the work tree's `apps/bench`).
    app_dir: PathBuf,
    time: Option<GnuTime>,
}

impl Ctx {
    /// A `mooring` command in `dir` with a clean environment.
    fn mooring_cmd(&self, dir: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("NO_COLOR", "1")
            .current_dir(dir)
            .args(args);
        if let Some(t) = std::env::var_os("TMPDIR") {
            cmd.env("TMPDIR", t);
        }
        cmd
    }

    /// A fresh server, and in `dir` a kubeconfig for it and the config.
    fn mooring_setup(&self, dir: &Path) -> ApiServer {
        let server = start_server();
        server.kubeconfig(&dir.join("kubeconfig"));
        let config = format!(
            "agent {{\n    state-dir \"state\"\n    log level=\"info\" format=\"json\"\n}}\n\
             cluster \"bench\" {{\n    kubeconfig \"kubeconfig\"\n}}\n\
             source \"bench\" {{\n    git \"{}\"\n}}\n\
             app \"bench\" {{\n    source \"bench\"\n    path \"apps/bench\"\n    cluster \"bench\"\n}}\n",
            self.url
        );
        std::fs::write(dir.join("mooring.kdl"), config).expect("write config");
        server
    }

    /// `mooring once -v TARGET -c mooring.kdl --format json` in `dir`.
    fn once(&self, dir: &Path, target: &str) -> Command {
        // `-v`: the agent's log (its `duration_ms` lines) on stderr.
        self.mooring_cmd(
            dir,
            &["once", "-v", target, "-c", "mooring.kdl", "--format", "json"],
        )
    }

    /// `kubectl apply --server-side --recursive -f APP_DIR` against `server`.
    fn kubectl_apply(&self, server: &ApiServer, cache: &Path, dir: &Path) -> Command {
        let mut cmd = apiserver::kubectl(server, cache);
        cmd.current_dir(dir)
            .args(["apply", "--server-side", "--recursive", "-f"])
            .arg(&self.app_dir);
        cmd
    }

    /// First apply on a fresh server (source fetched first, untimed), then
    /// the no-op re-apply.
    fn mooring(&self, dir: &Path, out: &mut Samples) {
        let server = self.mooring_setup(dir);
        let once = |target: &str| self.once(dir, target);

        let fetch = self.run(once("source/bench"), Some(&server));
        fetch.expect_ok("mooring once source/bench");
        out.time(Key::MooringFetch, fetch.wall);
        assert!(
            server.requests().is_empty(),
            "fetching the source talked to the cluster"
        );

        let first = self.run(once("app/bench"), Some(&server));
        first.expect_ok("mooring once app/bench (first apply)");
        let applied = app_outcome(&first)["applied"].clone();
        assert_eq!(
            counts(&applied),
            [self.n as u64, 0, 0, 0],
            "mooring's first apply: created, configured, unchanged, pruned: {applied}"
        );
        let after_first = self.check_objects(&server, "mooring", "mooring");
        out.once_times(FIRST_APPLY, &first);
        out.usage(RUNS[0], first.usage);
        out.requests(RUNS[0], server.requests());
        server.clear_requests();

        let noop = self.run(once("app/bench"), Some(&server));
        noop.expect_ok("mooring once app/bench (no-op)");
        let applied = app_outcome(&noop)["applied"].clone();
        assert_eq!(
            counts(&applied),
            [0, 0, self.n as u64, 0],
            "mooring's no-op re-apply: created, configured, unchanged, pruned: {applied}"
        );
        let after_noop = self.check_objects(&server, "mooring", "mooring");
        assert_eq!(
            after_first, after_noop,
            "mooring's no-op re-apply changed objects"
        );
        out.once_times(NOOP_APPLY, &noop);
        out.usage(RUNS[1], noop.usage);
        out.usage(RUNS[2], fetch.usage);
        out.requests(RUNS[1], server.requests());

        // For scale: the same process without the cluster (fetch, render, print).
        let render = self.run(
            self.mooring_cmd(dir, &["render", "app/bench", "-c", "mooring.kdl"]),
            None,
        );
        render.expect_ok("mooring render app/bench");
        let docs =
            render.stdout.matches("\nkind: ").count() + usize::from(render.stdout.starts_with("kind: "));
        assert_eq!(docs, self.n, "mooring render printed {docs} objects");
        out.time(Key::MooringRender, render.wall);
    }

    /// First apply on a fresh server with a cold or warm discovery cache;
    /// after the warm one, the no-op re-apply.
    fn kubectl(&self, dir: &Path, warm: bool, out: &mut Samples) {
        let server = start_server();
        let cache = dir.join("kubectl");
        let apply = || self.kubectl_apply(&server, &cache, dir);
        if warm {
            let mut cmd = apiserver::kubectl(&server, &cache);
            cmd.args(["api-resources", "-o", "name"]);
            let discovery = self.run(cmd, None);
            discovery.expect_ok("kubectl api-resources");
            out.time(Key::KubectlDiscovery, discovery.wall);
            server.clear_requests();
        }
        let first = self.run(apply(), Some(&server));
        first.expect_ok("kubectl apply --server-side (first apply)");
        let applied = first
            .stdout
            .lines()
            .filter(|l| l.ends_with(" serverside-applied"))
            .count();
        assert_eq!(applied, self.n, "kubectl's first apply:\n{}", first.stdout);
        let after_first = self.check_objects(&server, "kubectl", "kubectl");
        let (key, run) = if warm {
            (Key::KubectlWarm, RUNS[4])
        } else {
            (Key::KubectlCold, RUNS[3])
        };
        out.time(key, first.wall);
        out.usage(run, first.usage);
        out.requests(run, server.requests());
        server.clear_requests();
        if !warm {
            return;
        }

        let noop = self.run(apply(), Some(&server));
        noop.expect_ok("kubectl apply --server-side (no-op)");
        let after_noop = self.check_objects(&server, "kubectl", "kubectl");
        assert_eq!(
            after_first, after_noop,
            "kubectl's no-op re-apply changed objects"
        );
        out.time(Key::KubectlNoop, noop.wall);
        out.usage(RUNS[5], noop.usage);
        out.requests(RUNS[5], server.requests());
    }

    /// One more first apply and no-op of each tool (mooring; kubectl, if
    /// there, with a warm cache), each run watched through the server's
    /// request log.
    fn timelines(&self, kubectl: bool) -> Vec<(&'static str, Timeline)> {
        let mut out = Vec::new();
        let dir = self.tmp.join("timeline-mooring");
        std::fs::create_dir_all(&dir).expect("create dir");
        let server = self.mooring_setup(&dir);
        self.run(self.once(&dir, "source/bench"), None)
            .expect_ok("mooring once source/bench");
        for (label, counts_after) in [
            (RUNS[0], [self.n as u64, 0, 0, 0]),
            (RUNS[1], [0, 0, self.n as u64, 0]),
        ] {
            let (done, timeline) = self.watched(&server, self.once(&dir, "app/bench"));
            done.expect_ok(label);
            assert_eq!(counts(&app_outcome(&done)["applied"]), counts_after, "{label}");
            out.push((label, timeline));
        }
        drop(server);
        if !kubectl {
            return out;
        }

        let dir = self.tmp.join("timeline-kubectl");
        let server = start_server();
        let cache = dir.join("kubectl");
        let mut warm = apiserver::kubectl(&server, &cache);
        warm.args(["api-resources", "-o", "name"]);
        self.run(warm, None).expect_ok("kubectl api-resources");
        for label in [RUNS[4], RUNS[5]] {
            let (done, timeline) = self.watched(&server, self.kubectl_apply(&server, &cache, &dir));
            done.expect_ok(label);
            out.push((label, timeline));
        }
        out
    }

    /// Run `cmd` while a thread polls `server`'s request log every
    /// millisecond, noting when each request was first seen.
    fn watched(&self, server: &ApiServer, cmd: Command) -> (Done, Timeline) {
        server.clear_requests();
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        std::thread::scope(|scope| {
            let poller = scope.spawn(|| {
                let mut seen: Vec<(Duration, String)> = Vec::new();
                loop {
                    let last = stop.load(Ordering::SeqCst);
                    let log = server.requests();
                    let at = start.elapsed();
                    let new: Vec<String> = log.into_iter().skip(seen.len()).collect();
                    seen.extend(new.into_iter().map(|r| (at, r)));
                    if last {
                        break seen;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let done = self.run(cmd, None);
            stop.store(true, Ordering::SeqCst);
            let seen = poller.join().expect("request log poller");
            let object_patches: Vec<Duration> = seen
                .iter()
                .filter(|(_, r)| classify(r) == "PATCH" && !r.contains("mooring-inventory"))
                .map(|(at, _)| *at)
                .collect();
            assert_eq!(object_patches.len(), self.n, "object PATCHes");
            let timeline = Timeline {
                first_request: seen.first().map(|(at, _)| *at).unwrap_or_default(),
                first_patch: object_patches[0],
                last_patch: object_patches[self.n - 1],
                last_request: seen.last().map(|(at, _)| *at).unwrap_or_default(),
                exit: done.wall,
            };
            (done, timeline)
        })
    }

    /// The app's objects on `server`: the Namespace and N − 1 objects in
    /// it, each managed by `manager`. Returns their resourceVersions.
    fn check_objects(&self, server: &ApiServer, tool: &str, manager: &str) -> Vec<(String, String)> {
        let objects = server.objects();
        let mut ours: Vec<(String, String)> = objects
            .iter()
            .filter(|o| {
                let ns = o["metadata"]["namespace"].as_str();
                let name = o["metadata"]["name"].as_str();
                ns == Some(NAMESPACE) || (o["kind"] == "Namespace" && name == Some(NAMESPACE))
            })
            .map(|o| {
                let managed = o["metadata"]["managedFields"].as_array().is_some_and(|m| {
                    m.iter()
                        .any(|e| e["manager"] == manager && e["operation"] == "Apply")
                });
                assert!(managed, "{tool}: not applied by {manager}: {o}");
                (
                    format!(
                        "{}/{}/{}",
                        o["kind"].as_str().unwrap_or_default(),
                        o["metadata"]["namespace"].as_str().unwrap_or_default(),
                        o["metadata"]["name"].as_str().unwrap_or_default()
                    ),
                    o["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        ours.sort();
        assert_eq!(
            ours.len(),
            self.n,
            "{tool}: {} of the app's {} objects are on the server",
            ours.len(),
            self.n
        );
        ours
    }

    /// Run `cmd` to the end (under GNU time when there is one), timing it.
    /// `cmd` must have been made with `env_clear()`: only its explicit
    /// environment is carried over to the `time` wrapper. With `server`,
    /// also the CPU time its thread spent meanwhile.
    fn run(&self, cmd: Command, server: Option<&ApiServer>) -> Done {
        let rss_file = self.tmp.join("rss");
        let _ = std::fs::remove_file(&rss_file);
        let mut cmd = match &self.time {
            Some(t) => t.wrap_cleared(&cmd, &rss_file),
            None => cmd,
        };
        let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
        let server_before = server.and_then(server_cpu);
        let start = Instant::now();
        let run = output_within(&mut cmd, COMMAND_TIMEOUT)
            .unwrap_or_else(|run| panic!("{what}: still running after {COMMAND_TIMEOUT:?}: {run:?}"));
        let wall = start.elapsed();
        let server_after = server.and_then(server_cpu);
        let usage = match &self.time {
            Some(_) => GnuTime::read(&rss_file),
            None => Usage::default(),
        };
        Done {
            wall,
            usage: Usage {
                server_cpu: server_before.zip(server_after).map(|(b, a)| a.saturating_sub(b)),
                ..usage
            },
            code: run.code,
            stdout: run.stdout,
            stderr: run.stderr,
        }
    }
}

/// When, from a command's start, the server first saw its requests (to
/// the next millisecond or so).
struct Timeline {
    first_request: Duration,
    /// The first and the last PATCH of an object of the app.
    first_patch: Duration,
    last_patch: Duration,
    last_request: Duration,
    exit: Duration,
}

/// A finished command.
struct Done {
    wall: Duration,
    usage: Usage,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Done {
    #[track_caller]
    fn expect_ok(&self, what: &str) {
        assert_eq!(
            self.code, 0,
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
    }
}

/// The app's element of `once --format json`.
fn app_outcome(run: &Done) -> Value {
    let all = json_output(&run.stdout, &run.stderr);
    let outcome = all
        .as_array()
        .and_then(|a| a.iter().find(|o| o["kind"] == "app" && o["name"] == "bench"))
        .cloned()
        .unwrap_or_else(|| panic!("no app/bench in\n{}", run.stdout));
    assert_eq!(outcome["result"], "ok", "{outcome}\n--- stderr\n{}", run.stderr);
    outcome
}

fn counts(applied: &Value) -> [u64; 4] {
    ["created", "configured", "unchanged", "pruned"].map(|k| applied[k].as_u64().unwrap_or(u64::MAX))
}

/// The `duration_ms` the agent logged for the app's run and the source's.
fn logged_runs(stderr: &str) -> (Duration, Duration) {
    let mut app = None;
    let mut source = None;
    for line in stderr.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(ms) = v["fields"]["duration_ms"].as_u64() else {
            continue;
        };
        let span = &v["span"];
        let kind = span["kind"].as_str().or_else(|| {
            v["spans"]
                .as_array()
                .and_then(|s| s.iter().find_map(|s| s["kind"].as_str()))
        });
        match kind {
            Some("app") => app = Some(Duration::from_millis(ms)),
            Some("source") => source = Some(Duration::from_millis(ms)),
            _ => {}
        }
    }
    match (app, source) {
        (Some(a), Some(s)) => (a, s),
        _ => panic!("no duration_ms logged for the app and the source in:\n{stderr}"),
    }
}

// ---- the manifests ---------------------------------------------------------------

/// How many objects of each kind (after the Namespace) make `n` in all.
fn mix(n: usize) -> Vec<(&'static str, usize)> {
    let rest = n - 1;
    let total: usize = MIX.iter().map(|(_, s)| s).sum();
    let mut out: Vec<(&str, usize)> = MIX
        .iter()
        .map(|(k, share)| (*k, (rest * share / total).max(1)))
        .collect();
    let sum: usize = out.iter().map(|(_, c)| c).sum();
    // Rounding goes to (or comes from) the ConfigMaps.
    out[0].1 = out[0].1 + rest - sum;
    out
}

/// The app's files: `(path under apps/bench, text)`, one object each.
fn manifests(n: usize) -> Vec<(String, String)> {
    let mut files = vec![(
        "00-namespace.yaml".to_string(),
        format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n  labels:\n    team: platform\n"
        ),
    )];
    for (kind, count) in mix(n) {
        for i in 0..count {
            let (name, text) = match kind {
                "configmaps" => configmap(i),
                "services" => service(i),
                "deployments" => deployment(i),
                "serviceaccounts" => service_account(i),
                "secrets" => secret(i),
                other => unreachable!("{other}"),
            };
            files.push((format!("{kind}/{name}.yaml"), text));
        }
    }
    files
}

fn labels(name: &str, component: &str) -> String {
    format!(
        "  labels:\n    app.kubernetes.io/name: {name}\n    app.kubernetes.io/part-of: bench\n    \
         app.kubernetes.io/component: {component}\n"
    )
}

fn configmap(i: usize) -> (String, String) {
    let name = format!("settings-{i:04}");
    let text = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n{}\
         data:\n  LOG_LEVEL: info\n  FEATURE_FLAGS: \"search,export,beta-{i}\"\n  \
         UPSTREAM_URL: http://svc-{:04}.{NAMESPACE}.svc.cluster.local:8080\n  \
         app.properties: |\n    server.port=8080\n    cache.size={}\n    retry.max=5\n    \
         pool.name=pool-{i}\n",
        labels(&name, "config"),
        i % 300,
        64 * (1 + i % 8)
    );
    (name, text)
}

fn service(i: usize) -> (String, String) {
    let name = format!("svc-{i:04}");
    let text = format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n{}\
         spec:\n  type: ClusterIP\n  selector:\n    app.kubernetes.io/name: web-{:04}\n  ports:\n    \
         - name: http\n      port: 80\n      targetPort: 8080\n      protocol: TCP\n    \
         - name: metrics\n      port: 9090\n      targetPort: 9090\n      protocol: TCP\n",
        labels(&name, "service"),
        i % 150
    );
    (name, text)
}

fn deployment(i: usize) -> (String, String) {
    let name = format!("web-{i:04}");
    let text = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n{labels}\
         spec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: {name}\n  \
         template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: {name}\n        \
         app.kubernetes.io/part-of: bench\n    spec:\n      serviceAccountName: sa-{sa:04}\n      \
         containers:\n        - name: app\n          image: ghcr.io/acme/{name}:1.{i}.0\n          \
         ports:\n            - containerPort: 8080\n              name: http\n            \
         - containerPort: 9090\n              name: metrics\n          env:\n            \
         - name: LOG_LEVEL\n              value: info\n            - name: POD_NAME\n              \
         valueFrom:\n                fieldRef:\n                  fieldPath: metadata.name\n          \
         envFrom:\n            - configMapRef:\n                name: settings-{i:04}\n          \
         resources:\n            requests:\n              cpu: 100m\n              memory: 128Mi\n            \
         limits:\n              memory: 256Mi\n          readinessProbe:\n            httpGet:\n              \
         path: /healthz\n              port: http\n            periodSeconds: 10\n          \
         volumeMounts:\n            - name: tmp\n              mountPath: /tmp\n      \
         volumes:\n        - name: tmp\n          emptyDir: {{}}\n",
        labels = labels(&name, "web"),
        replicas = 1 + i % 3,
        sa = i % 100,
    );
    (name, text)
}

fn service_account(i: usize) -> (String, String) {
    let name = format!("sa-{i:04}");
    let text = format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n{}\
         automountServiceAccountToken: false\n",
        labels(&name, "identity")
    );
    (name, text)
}

fn secret(i: usize) -> (String, String) {
    let name = format!("credentials-{i:04}");
    let text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: {NAMESPACE}\n{}\
         type: Opaque\nstringData:\n  username: user-{i}\n  password: not-a-secret-{i:08}\n  \
         DATABASE_URL: postgres://user-{i}@db.{NAMESPACE}.svc:5432/app{i}\n",
        labels(&name, "credentials")
    );
    (name, text)
}

// ---- tools ---------------------------------------------------------------------

/// kubectl's client version, or `None` if it is not on PATH.
fn kubectl_version() -> Option<String> {
    let out = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["clientVersion"]["gitVersion"].as_str().map(str::to_string)
}

/// A fresh API server (default options), once its thread has named
/// itself (the kernel learns the name a moment after the thread starts),
/// so that [`server_cpu`] finds it.
fn start_server() -> ApiServer {
    let server = ApiServer::start_with(Options::default());
    let deadline = Instant::now() + Duration::from_secs(5);
    while server_cpu(&server).is_none() {
        assert!(Instant::now() < deadline, "no thread apiserver-{}", server.port());
        std::thread::sleep(Duration::from_millis(1));
    }
    server
}

/// CPU time (user + system) of `server`'s thread so far, from
/// `/proc/self/task/TID/stat` (in clock ticks, taken as 1/100 s: Linux's
/// `USER_HZ` everywhere that matters).
fn server_cpu(server: &ApiServer) -> Option<Duration> {
    // The thread is named `apiserver-PORT`; the kernel keeps 15 bytes.
    let name: String = format!("apiserver-{}", server.port()).chars().take(15).collect();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
        // Fields after the `(comm)`: state is the 3rd field, utime the 14th.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(2)
            .filter_map(|f| f.parse().ok())
            .collect();
        let ticks: u64 = fields.iter().sum();
        return Some(Duration::from_millis(ticks * 10));
    }
    None
}

// ---- reports -------------------------------------------------------------------

fn timeline_table(timelines: &[(&str, Vec<Timeline>)], n: usize) -> String {
    let width = timelines.iter().map(|(l, _)| l.len()).max().unwrap_or(0).max(10);
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {:<width$} | {:>11} | {:>9} | {:>10} | {:>12} | {:>5} | {:>9} |",
        "run", "1st request", "1st PATCH", "last PATCH", "last request", "exit", "PATCHes/s"
    );
    let _ = writeln!(
        out,
        "|-{}-|------------:|----------:|-----------:|-------------:|------:|----------:|",
        "-".repeat(width)
    );
    for (label, ts) in timelines {
        let med = |f: fn(&Timeline) -> Duration| {
            let v: Vec<f64> = ts.iter().map(|t| f(t).as_secs_f64()).collect();
            Duration::from_secs_f64(median(&v).unwrap_or_default())
        };
        let t = Timeline {
            first_request: med(|t| t.first_request),
            first_patch: med(|t| t.first_patch),
            last_patch: med(|t| t.last_patch),
            last_request: med(|t| t.last_request),
            exit: med(|t| t.exit),
        };
        let span = t.last_patch.saturating_sub(t.first_patch).as_secs_f64();
        let rate = if span > 0.0 {
            format!("{:.0}", (n - 1) as f64 / span)
        } else {
            "-".into()
        };
        let _ = writeln!(
            out,
            "| {:<width$} | {:>11} | {:>9} | {:>10} | {:>12} | {:>5} | {:>9} |",
            label,
            ms(t.first_request),
            ms(t.first_patch),
            ms(t.last_patch),
            ms(t.last_request),
            ms(t.exit),
            rate
        );
    }
    out
}

/// What a request was: discovery, OpenAPI, LIST, GET, PATCH or other.
fn classify(req: &str) -> &'static str {
    let (method, rest) = req.split_once(' ').unwrap_or((req, ""));
    let path = rest.split('?').next().unwrap_or_default();
    if path.starts_with("/openapi") {
        return "openapi";
    }
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // After the group/version prefix: /api/v1/… or /apis/g/v/…
    let rest: &[&str] = match segs.first() {
        Some(&"api") => segs.get(2..).unwrap_or(&[]),
        Some(&"apis") => segs.get(3..).unwrap_or(&[]),
        _ => &[],
    };
    if rest.is_empty() {
        return "discovery";
    }
    match method {
        "GET" => {
            let list = if rest[0] == "namespaces" && rest.len() >= 3 {
                rest.len() == 3
            } else {
                rest.len() == 1
            };
            if list { "LIST" } else { "GET" }
        }
        "PATCH" => "PATCH",
        _ => "other",
    }
}

fn requests_table(requests: &[(&str, Vec<String>)]) -> String {
    const COLUMNS: [&str; 6] = ["discovery", "openapi", "LIST", "GET", "PATCH", "other"];
    let width = requests.iter().map(|(l, _)| l.len()).max().unwrap_or(0).max(10);
    let mut out = String::new();
    let _ = write!(out, "| {:<width$} | {:>5} |", "run", "all");
    for c in COLUMNS {
        let _ = write!(out, " {c:>9} |");
    }
    let _ = writeln!(out);
    let _ = write!(out, "|-{}-|------:|", "-".repeat(width));
    for _ in COLUMNS {
        let _ = write!(out, "----------:|");
    }
    let _ = writeln!(out);
    for (label, log) in requests {
        let _ = write!(out, "| {label:<width$} | {:>5} |", log.len());
        for c in COLUMNS {
            let count = log.iter().filter(|r| classify(r) == c).count();
            let _ = write!(out, " {count:>9} |");
        }
        let _ = writeln!(out);
    }
    out
}
