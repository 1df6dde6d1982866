//! How fast does `mooring helm template` render the largest chart of the
//! conformance corpus, next to `helm template` (3.17.2)?
//!
//! **The chart:** kube-prometheus-stack from
//! `../shared/conformance/helm/charts` (or `$MOORING_HELM_CORPUS/charts`),
//! assembled as the conformance test does (testkit/src/helm_corpus.rs): copied
//! into a temp dir with the corpus's own grafana, kube-state-metrics and
//! prometheus-node-exporter charts in its `charts/`, and
//! prometheus-windows-exporter (not in the corpus, off by default) taken out
//! of Chart.yaml. Both tools render this same tree.
//!
//! **Scenarios:** the chart's defaults as the corpus case `kps-default`
//! renders them (`-n monitoring --kube-version 1.32.0`), and the same with
//! `--include-crds` (about 5 MB more output, the CRDs). Every run pins
//! `--set grafana.adminPassword=bench`, so that the output is
//! deterministic: before anything is timed, mooring's stdout must equal
//! helm's byte for byte.
//!
//! **Timing:** wall time of each process, from spawn to exit, stdout read
//! into memory. The tools take turns per round, in alternating order; in
//! bench mode one untimed round comes first. Under GNU time
//! (`/usr/bin/time`, Debian package `time`) each run also reports its peak
//! RSS and CPU time. Two more rows time the library in this process, to
//! show where mooring's time goes: loading the chart (reading, unpacking,
//! parsing Chart.yaml and values) and rendering (values, templates, YAML
//! checks, sorting, printing).
//!
//! **The binary:** `$MOORING_BIN`, else the one cargo builds with the bench
//! (in its profile: release under `cargo bench`); helm
//! is `helm` on PATH and must say v3.17.2 (scripts/test installs it).
//!
//! Run with `cargo bench --bench helm`. Target (docs/performance.md):
//! mooring's median wall time at most 0.3× helm's for each scenario. A
//! miss is printed, not a failure; differing output is a failure.
//! Without `--bench` (as under `cargo test --benches`) it is a smoke test:
//! one round; without the corpus or helm it says so and skips what needs
//! them (in bench mode that is a failure). `MOORING_BENCH_ITERS` sets the
//! timed rounds (default 10).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mooring::helm::{Chart, KubeVersion, Options};

use mooring_testkit::bench::{Mode, Row, mooring_binary, sorted, table, usage_table};

use mooring_testkit::bench::GnuTime;
use mooring_testkit::helm_corpus;

const DEFAULT_ITERS: usize = 10;
const WARMUP: usize = 1;
/// mooring's median wall time over helm's, at most.
const TARGET_RATIO: f64 = 0.3;
const HELM_VERSION: &str = "v3.17.2";
const CHART: &str = "kube-prometheus-stack";

struct Scenario {
    name: &'static str,
    include_crds: bool,
}

const SCENARIOS: [Scenario; 2] = [
    Scenario {
        name: "defaults",
        include_crds: false,
    },
    Scenario {
        name: "defaults + --include-crds",
        include_crds: true,
    },
];

impl Scenario {
    /// `helm template`'s arguments.
    fn args(&self, chart: &Path) -> Vec<String> {
        let mut args: Vec<String> = ["template", "kps"].map(String::from).into();
        args.push(chart.display().to_string());
        args.extend(
            [
                "-n",
                "monitoring",
                "--kube-version",
                "1.32.0",
                "--set",
                "grafana.adminPassword=bench",
            ]
            .map(String::from),
        );
        if self.include_crds {
            args.push("--include-crds".into());
        }
        args
    }

    fn options(&self) -> Options {
        Options {
            release: "kps".into(),
            namespace: "monitoring".into(),
            values_files: Vec::new(),
            layers: Vec::new(),
            set: vec!["grafana.adminPassword=bench".into()],
            set_string: Vec::new(),
            kube_version: Some(KubeVersion::parse("1.32.0").expect("kube version")),
            api_versions: Vec::new(),
            include_crds: self.include_crds,
            only_api_versions: false,
        }
    }
}

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.iters(&[], DEFAULT_ITERS);
    let warmup = mode.warmup(WARMUP);

    let Some(corpus) = helm_corpus::corpus() else {
        assert!(
            !bench_mode,
            "no helm conformance corpus (../shared/conformance/helm)"
        );
        println!("helm bench: skipped: no conformance corpus at ../shared/conformance/helm");
        return;
    };
    let assembled = helm_corpus::assemble(&corpus);
    let chart = assembled.root.join("charts").join(CHART);
    let dropped: Vec<&str> = assembled
        .dropped
        .iter()
        .filter(|(c, _)| c == CHART)
        .map(|(_, d)| d.as_str())
        .collect();
    let tmp = tempfile::tempdir().expect("create temp dir");
    let bin = mooring_binary();
    let helm = helm_corpus::helm_3_17();
    if helm.is_none() {
        assert!(!bench_mode, "helm {HELM_VERSION} not found on PATH");
    }
    let time = GnuTime::detect();

    println!("mooring Helm benchmark: mooring helm template vs helm template");
    println!("chart: {CHART} from {}", corpus.display());
    if !dropped.is_empty() {
        println!(
            "       without {} (not in the corpus; off by default)",
            dropped.join(", ")
        );
    }
    println!("mooring: {}", bin.display());
    match &helm {
        Some(h) => println!("helm: {} ({HELM_VERSION})", h.display()),
        None => println!("helm: {HELM_VERSION} not on PATH; its rows are left out (smoke run)"),
    }
    if time.is_none() {
        println!("memory: not measured: no GNU time at /usr/bin/time (Debian: apt-get install time)");
    }
    println!("timing: {iters} timed rounds after {warmup} untimed, tools alternating");
    println!();

    let mut rows = Vec::new();
    let mut usage_rows = Vec::new();
    let mut ratios = Vec::new();
    for scenario in &SCENARIOS {
        let args = scenario.args(&chart);
        let mooring_cmd = |out: Option<&Path>| tool(&bin, &["helm"], &args, time.as_ref(), out);
        let helm_cmd = |h: &Path, out: Option<&Path>| tool(h, &[], &args, time.as_ref(), out);

        let (mine, _) = run(mooring_cmd(None));
        let documents = mine.matches("\n---\n").count() + usize::from(mine.starts_with("---\n"));
        println!(
            "{}: {} documents, {} bytes of output",
            scenario.name,
            documents,
            mine.len()
        );
        if let Some(h) = &helm {
            let (theirs, _) = run(helm_cmd(h, None));
            assert!(
                mine == theirs,
                "{}: mooring's output differs from helm's ({} vs {} bytes)",
                scenario.name,
                mine.len(),
                theirs.len()
            );
        }

        let mut mooring_times = Vec::new();
        let mut helm_times = Vec::new();
        let mut mooring_usage = Vec::new();
        let mut helm_usage = Vec::new();
        let usage_file = tmp.path().join("usage");
        for round in 0..warmup + iters {
            let timed = round >= warmup;
            let helm_first = round % 2 == 1;
            for which in [helm_first, !helm_first] {
                let out = time.as_ref().map(|_| usage_file.as_path());
                let (cmd, times, usage) = match (which, &helm) {
                    (true, Some(h)) => (helm_cmd(h, out), &mut helm_times, &mut helm_usage),
                    (true, None) => continue,
                    (false, _) => (mooring_cmd(out), &mut mooring_times, &mut mooring_usage),
                };
                let (_, elapsed) = run(cmd);
                if timed {
                    times.push(elapsed);
                    if out.is_some() {
                        usage.push(GnuTime::read(&usage_file));
                    }
                }
            }
        }

        // In process: where mooring's time goes.
        let mut load = Vec::new();
        let mut render = Vec::new();
        let opts = scenario.options();
        for round in 0..warmup + iters {
            let start = Instant::now();
            let loaded = Chart::load(&chart).expect("load the chart");
            let loaded_at = start.elapsed();
            let start = Instant::now();
            let rendered = mooring::helm::render(&loaded, &opts, &mut Vec::new()).expect("render");
            let text = rendered.output();
            let rendered_at = start.elapsed();
            assert_eq!(
                text, mine,
                "{}: the library's output differs from the binary's",
                scenario.name
            );
            if round >= warmup {
                load.push(loaded_at);
                render.push(rendered_at);
            }
        }

        let mooring_row = Row::new(
            format!("{}: mooring helm template", scenario.name),
            sorted(mooring_times),
        );
        if !helm_times.is_empty() {
            let helm_row = Row::new(format!("{}: helm template", scenario.name), sorted(helm_times));
            ratios.push((scenario.name, mooring_row.median_ms() / helm_row.median_ms()));
            rows.push(helm_row);
            usage_rows.push((format!("{}: helm template", scenario.name), helm_usage));
        }
        rows.push(mooring_row);
        rows.push(Row::new(
            format!("{}: in process, load chart", scenario.name),
            sorted(load),
        ));
        rows.push(Row::new(
            format!("{}: in process, render + print", scenario.name),
            sorted(render),
        ));
        usage_rows.push((format!("{}: mooring helm template", scenario.name), mooring_usage));
    }

    println!();
    print!("{}", table(&rows));
    if time.is_some() {
        println!();
        print!("{}", usage_table(&usage_rows));
    }
    println!();
    for (name, ratio) in ratios {
        let verdict = if ratio <= TARGET_RATIO { "met" } else { "MISSED" };
        println!("{name}: mooring/helm median wall time {ratio:.2} (target ≤ {TARGET_RATIO}: {verdict})");
    }
}

/// `PROGRAM PREFIX… ARGS…`, under GNU time writing to `usage` when given.
fn tool(
    program: &Path,
    prefix: &[&str],
    args: &[String],
    time: Option<&GnuTime>,
    usage: Option<&Path>,
) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(prefix).args(args).env("NO_COLOR", "1");
    match (time, usage) {
        (Some(t), Some(file)) => t.wrap(&cmd, file),
        _ => cmd,
    }
}

/// Run to completion; stdout and the wall time. A failure fails the bench.
fn run(mut cmd: Command) -> (String, Duration) {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {:?}: {e}", cmd.get_program()));
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (String::from_utf8(out.stdout).expect("UTF-8 output"), elapsed)
}
