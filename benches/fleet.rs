//! A fleet on one agent: how long until N apps are applied and ready, what
//! the agent holds in memory, and what it costs while nothing changes.
//!
//! The fleet: one git repository (over `file://`) with three shared bases
//! of 10 objects each (4 ConfigMaps, 2 Services, 2 Deployments, a
//! ServiceAccount and a Secret) and N overlays, `apps/app-NNNN/`, each a
//! kustomization over one base (in turn) with its own `namePrefix` and a
//! label. The config: that source, a cluster, an app `ns` with the
//! namespace, and N apps that depend on it (interval `IDLE_INTERVAL`, so
//! that the idle window sees every app's periodic pass). The cluster is
//! the test API server (`testkit/src/apiserver`) in this process, on its own
//! thread, with workloads ready at once.
//!
//! Measured, per fleet size (100, 1,000 and 3,000 apps; 20 in a smoke run
//! under `cargo test --benches`):
//!
//! * **ready**: from `mooring run` starting to every app having been
//!   applied and found ready once (`last_success` in `/api/status`, polled
//!   every 100 ms);
//! * **peak RSS** (`VmHWM`) up to then, and **idle RSS** (`VmRSS`) at the
//!   end of the idle window;
//! * **idle CPU**: the agent's user + system time over the idle window
//!   (`IDLE_SECS`, after everything is ready), scaled to an hour;
//! * **idle API requests** by verb over the same window, scaled to an hour.
//!
//! Targets (issue "Fleet scale"): 1,000 apps ready in under 30 s on a
//! 2-core machine, idle RSS under 64 MiB, growth about linear. A miss is
//! printed, not a failure; an app that never becomes ready is a failure.
//! Environment: `MOORING_BENCH_APPS` (a comma list of sizes),
//! `MOORING_BENCH_IDLE_SECS`, `MOORING_BIN`, `TMPDIR`. Run with
//! `cargo bench --bench fleet`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use mooring_testkit::apiserver::{ApiServer, Options};
use mooring_testkit::bench::{git, mooring_binary};

const SIZES: [usize; 3] = [100, 1_000, 3_000];
const SMOKE_SIZES: [usize; 1] = [20];
const IDLE_SECS: u64 = 120;
const SMOKE_IDLE_SECS: u64 = 3;
const IDLE_INTERVAL: &str = "1m";
const READY_TIMEOUT: Duration = Duration::from_secs(900);
const TARGET_READY_1000: Duration = Duration::from_secs(30);
const TARGET_IDLE_RSS_MIB: f64 = 64.0;

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = std::env::var("MOORING_BENCH_APPS")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| {
            if bench_mode {
                SIZES.to_vec()
            } else {
                SMOKE_SIZES.to_vec()
            }
        });
    let idle = Duration::from_secs(
        std::env::var("MOORING_BENCH_IDLE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(if bench_mode { IDLE_SECS } else { SMOKE_IDLE_SECS }),
    );
    let mut report = String::new();
    let _ = writeln!(
        report,
        "{:>6} {:>9} {:>10} {:>10} {:>14} {:>13}  idle requests per hour by verb",
        "apps", "ready s", "peak MiB", "idle MiB", "idle CPU s/h", "requests/h"
    );
    for n in sizes {
        let r = fleet(n, idle);
        let _ = writeln!(
            report,
            "{:>6} {:>9.1} {:>10.1} {:>10.1} {:>14.1} {:>13.0}  {}",
            n,
            r.ready.as_secs_f64(),
            r.peak_mib,
            r.idle_mib,
            r.idle_cpu_per_hour,
            r.requests_per_hour.values().fold(0.0, |a, b| a + b),
            r.requests_per_hour
                .iter()
                .map(|(verb, count)| format!("{verb} {count:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if bench_mode && n == 1_000 {
            if r.ready > TARGET_READY_1000 {
                let _ = writeln!(
                    report,
                    "  MISS: 1,000 apps ready in {:.1} s (target < 30 s)",
                    r.ready.as_secs_f64()
                );
            }
            if r.idle_mib > TARGET_IDLE_RSS_MIB {
                let _ = writeln!(report, "  MISS: idle RSS {:.1} MiB (target < 64 MiB)", r.idle_mib);
            }
        }
        print!("{report}");
        report.clear();
    }
}

struct Result {
    ready: Duration,
    peak_mib: f64,
    idle_mib: f64,
    idle_cpu_per_hour: f64,
    requests_per_hour: BTreeMap<String, f64>,
}

fn fleet(n: usize, idle: Duration) -> Result {
    let tmp = tempfile::tempdir().expect("temp dir");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let work = tmp.path().join("work");
    write_repo(&work, n);
    git(&home, tmp.path(), &["init", "-q", "-b", "main", "work"]);
    git(&home, &work, &["add", "-A"]);
    git(&home, &work, &["commit", "-q", "-m", "fleet"]);
    git(&home, tmp.path(), &["clone", "-q", "--bare", "work", "repo.git"]);

    let server = ApiServer::start_with(Options {
        rollout_delay: Some(Duration::ZERO),
        ..Options::default()
    });
    let kubeconfig = tmp.path().join("kubeconfig");
    server.kubeconfig(&kubeconfig);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut config = format!(
        "agent {{\n    state-dir \"{}\"\n    listen \"127.0.0.1:{port}\"\n    log level=\"warn\"\n}}\ncluster \"bench\" {{ kubeconfig \"{}\"; }}\nsource \"fleet\" {{ git \"file://{}\"; interval \"1h\"; }}\napp \"ns\" {{ source \"fleet\"; path \"ns\"; cluster \"bench\"; interval \"{IDLE_INTERVAL}\"; }}\n",
        tmp.path().join("state").display(),
        kubeconfig.display(),
        tmp.path().join("repo.git").display(),
    );
    for i in 0..n {
        let _ = writeln!(
            config,
            "app \"app-{i:04}\" {{ source \"fleet\"; path \"apps/app-{i:04}\"; cluster \"bench\"; interval \"{IDLE_INTERVAL}\"; depends-on \"ns\"; }}"
        );
    }
    let config_path = tmp.path().join("mooring.kdl");
    std::fs::write(&config_path, config).expect("write config");

    let started = Instant::now();
    let mut agent = Agent(
        Command::new(mooring_binary())
            .args(["run", "-c"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mooring run"),
    );
    let pid = agent.0.id();
    let status = format!("http://127.0.0.1:{port}/api/status");
    loop {
        assert!(
            started.elapsed() < READY_TIMEOUT,
            "{n} apps not ready after {READY_TIMEOUT:?}"
        );
        if let Ok(None) = agent.0.try_wait() {
        } else {
            panic!("mooring run exited before the fleet was ready");
        }
        let asked = Instant::now();
        if let Some(ready) = ready_apps(&status)
            && ready == n + 1
        {
            break;
        }
        // The status of thousands of apps is megabytes: asking for it
        // takes CPU from the agent it measures, so ask less often the
        // longer an answer takes (at most a sixth of the time).
        std::thread::sleep(Duration::from_millis(100).max(asked.elapsed() * 5));
    }
    let ready = started.elapsed();
    let peak_mib = proc_kib(pid, "VmHWM:") / 1024.0;

    server.clear_requests();
    let cpu_before = cpu_secs(pid);
    std::thread::sleep(idle);
    let cpu = cpu_secs(pid) - cpu_before;
    let idle_mib = proc_kib(pid, "VmRSS:") / 1024.0;
    let scale = 3600.0 / idle.as_secs_f64();
    let mut requests_per_hour = BTreeMap::new();
    for line in server.requests() {
        let verb = line.split_whitespace().next().unwrap_or("?").to_string();
        *requests_per_hour.entry(verb).or_insert(0.0) += scale;
    }
    drop(agent);
    Result {
        ready,
        peak_mib,
        idle_mib,
        idle_cpu_per_hour: cpu * scale,
        requests_per_hour,
    }
}

/// Kills the agent when the bench is done with it (or panics).
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How many apps `/api/status` says have been applied and found ready at
/// least once (`last_success`): with short intervals, the first apps run
/// again before the last have run once. (curl: the bench needs no HTTP
/// client.)
fn ready_apps(url: &str) -> Option<usize> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "5", url])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    Some(
        v["objects"]
            .as_array()?
            .iter()
            .filter(|o| o["kind"] == "app" && o.get("last_success").is_some())
            .count(),
    )
}

fn proc_kib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// User + system CPU seconds of `pid` so far.
fn cpu_secs(pid: u32) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(f64::NAN)
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn write_repo(work: &Path, n: usize) {
    write(
        &work.join("ns/namespace.yaml"),
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: fleet\n",
    );
    for base in ["web", "worker", "cache"] {
        let files = ["account.yaml", "config.yaml", "deploy.yaml", "service.yaml"];
        write(
            &work.join(format!("bases/{base}/kustomization.yaml")),
            &format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: fleet\nresources:\n{}",
                files.iter().map(|f| format!("  - {f}\n")).collect::<String>()
            ),
        );
        let mut deploys = String::new();
        let mut services = String::new();
        for i in 0..2 {
            let _ = write!(
                deploys,
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {base}-{i}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {base}-{i}}}\n  template:\n    metadata:\n      labels: {{app: {base}-{i}}}\n    spec:\n      serviceAccountName: {base}\n      containers:\n        - name: main\n          image: registry.example.com/{base}:1.0.{i}\n          envFrom:\n            - configMapRef: {{name: {base}-settings-0}}\n"
            );
            let _ = write!(
                services,
                "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {base}-{i}\nspec:\n  selector: {{app: {base}-{i}}}\n  ports:\n    - port: 80\n      targetPort: 8080\n"
            );
        }
        let mut configs = String::new();
        for i in 0..4 {
            let _ = write!(
                configs,
                "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {base}-settings-{i}\ndata:\n  level: \"{i}\"\n  owner: {base}\n"
            );
        }
        write(&work.join(format!("bases/{base}/deploy.yaml")), &deploys);
        write(&work.join(format!("bases/{base}/service.yaml")), &services);
        write(&work.join(format!("bases/{base}/config.yaml")), &configs);
        write(
            &work.join(format!("bases/{base}/account.yaml")),
            &format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {base}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {base}-token\nstringData:\n  token: not-a-secret\n"
            ),
        );
    }
    let bases = ["web", "worker", "cache"];
    for i in 0..n {
        write(
            &work.join(format!("apps/app-{i:04}/kustomization.yaml")),
            &format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: app-{i:04}-\nlabels:\n  - pairs: {{team: t{}}}\nresources:\n  - ../../bases/{}\n",
                i % 7,
                bases[i % 3]
            ),
        );
    }
}
