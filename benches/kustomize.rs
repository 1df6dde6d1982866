//! How fast is `mooring kustomize` next to `kubectl kustomize`, and how
//! does it grow?
//!
//! Generates two trees (once): a base of 60 objects (Deployments with
//! ConfigMap/Secret references, Services, ServiceAccounts, RBAC,
//! HorizontalPodAutoscalers, a generated ConfigMap) used by 10 overlays,
//! and a base of 240 objects used by 25 overlays; each overlay sets a
//! namespace, a prefix, labels with selectors, annotations, an image tag,
//! replicas, a strategic merge patch, a JSON patch and a generator merge,
//! and a top kustomization lists the overlays (600 and 6,000 objects out).
//! Then it runs `target/release/mooring kustomize` and `kubectl kustomize`
//! on each tree, checks that their outputs are byte for byte the same, and
//! prints wall time and peak RSS (GNU `time`) of both.
//!
//! Run with `cargo build --release && cargo bench --bench kustomize`.
//! Targets (docs/performance.md): at most 0.2× kubectl's time on the first
//! tree, the second tree under 1 s, time and memory about linear in the
//! objects out. kubectl takes minutes on the second tree; it runs once
//! there (`MOORING_BENCH_KUBECTL_BIG=0` skips it).
//!
//! Without `--bench` (as under `cargo test --all-targets`) a small tree is
//! built once by each tool, as a smoke test. `MOORING_BENCH_ITERS`
//! (default 5) sets the timed runs of mooring and of kubectl on the first
//! tree.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mooring_testkit::bench::{GnuTime, Mode, find_binary};
use mooring_testkit::bench::{Row, table};

const TARGET_RATIO: f64 = 0.2;
const TARGET_BIG_MS: f64 = 1000.0;

struct Tree {
    name: String,
    dir: tempfile::TempDir,
    objects: usize,
}

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.knob(&["MOORING_BENCH_ITERS"], 5, 5);
    let Some(mooring) = find_binary() else {
        eprintln!("no mooring binary: build it with `cargo build --release` or set MOORING_BIN");
        std::process::exit(if bench_mode { 2 } else { 0 });
    };
    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !kubectl {
        eprintln!("note: kubectl is not on the PATH; mooring alone is measured");
    }
    if let Ok(dir) = std::env::var("MOORING_BENCH_SAVE") {
        // Keep copies of the trees, for profiling.
        for t in [tree(60, 10), tree(240, 25)] {
            let to = Path::new(&dir).join(format!("{}", t.objects));
            let _ = Command::new("cp").arg("-r").arg(t.dir.path()).arg(&to).status();
        }
    }
    let trees = if bench_mode {
        vec![tree(60, 10), tree(240, 25)]
    } else {
        vec![tree(12, 2)]
    };
    let big_kubectl = std::env::var("MOORING_BENCH_KUBECTL_BIG").map_or(true, |v| v != "0");
    let mut rows = Vec::new();
    let mut report = String::new();
    for (i, t) in trees.iter().enumerate() {
        let n = if bench_mode { iters } else { 1 };
        let m = measure(&mooring, &["kustomize"], t.dir.path(), n);
        rows.push(Row::new(
            format!("mooring, {} ({} objects)", t.name, t.objects),
            m.wall.clone(),
        ));
        let _ = writeln!(
            report,
            "{}: {} objects; mooring {:.0} ms wall, {:.0} ms CPU median, {:.1} µs CPU per object, peak RSS {:.1} MiB",
            t.name,
            t.objects,
            median_ms(&m.wall),
            median(&m.cpu) * 1000.0,
            median(&m.cpu) * 1e6 / t.objects as f64,
            m.rss_mib
        );
        let count = m.out.matches("\n---\n").count() + usize::from(!m.out.is_empty());
        assert_eq!(count, t.objects, "{}: mooring built {count} objects", t.name);
        if bench_mode && i == 1 && median_ms(&m.wall) > TARGET_BIG_MS {
            let _ = writeln!(report, "  over the {TARGET_BIG_MS} ms target (wall)");
        }
        if !kubectl || (i == 1 && !big_kubectl) {
            continue;
        }
        let kn = if i == 0 && bench_mode { n } else { 1 };
        let k = measure(Path::new("kubectl"), &["kustomize"], t.dir.path(), kn);
        assert!(
            k.out == m.out,
            "{}: mooring's output differs from kubectl's",
            t.name
        );
        rows.push(Row::new(
            format!("kubectl, {} ({} objects)", t.name, t.objects),
            k.wall.clone(),
        ));
        let ratio = median_ms(&m.wall) / median_ms(&k.wall);
        let _ = writeln!(
            report,
            "{}: kubectl {:.0} ms wall, {:.0} ms CPU median, {:.1} µs CPU per object, peak RSS {:.1} MiB; mooring/kubectl wall {:.3}, CPU {:.3}; same output",
            t.name,
            median_ms(&k.wall),
            median(&k.cpu) * 1000.0,
            median(&k.cpu) * 1e6 / t.objects as f64,
            k.rss_mib,
            ratio,
            median(&m.cpu) / median(&k.cpu)
        );
        if bench_mode && i == 0 && ratio > TARGET_RATIO {
            let _ = writeln!(report, "  over the {TARGET_RATIO}× target");
        }
    }
    print!("{}", table(&rows));
    print!("{report}");
}

fn median_ms(samples: &[Duration]) -> f64 {
    Row::new("", samples.to_vec()).median_ms()
}

/// What a tool did on a tree.
struct Measured {
    /// Wall times, sorted.
    wall: Vec<Duration>,
    /// User + system CPU seconds per run, sorted (GNU `time`).
    cpu: Vec<f64>,
    rss_mib: f64,
    out: String,
}

/// Run `prog ARGS DIR` `n` times.
fn measure(prog: &Path, args: &[&str], dir: &Path, n: usize) -> Measured {
    let mut times = Vec::new();
    let mut cpu = Vec::new();
    let mut rss_kib = 0u64;
    let mut out = String::new();
    let time = GnuTime::detect();
    let stats = tempfile::NamedTempFile::new().expect("temp file");
    for _ in 0..n {
        let mut cmd = Command::new(prog);
        cmd.args(args).arg(dir);
        if let Some(t) = &time {
            cmd = t.wrap(&cmd, stats.path());
        }
        let start = Instant::now();
        let o = cmd.output().expect("run the build");
        times.push(start.elapsed());
        assert!(
            o.status.success(),
            "{} failed: {}",
            prog.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        out = String::from_utf8(o.stdout).expect("UTF-8 output");
        if time.is_some() {
            let usage = GnuTime::read(stats.path());
            if let (Some(c), Some(kib)) = (usage.cpu, usage.rss_kib) {
                cpu.push(c.as_secs_f64());
                rss_kib = rss_kib.max(kib);
            }
        }
    }
    times.sort();
    cpu.sort_by(f64::total_cmp);
    Measured {
        wall: times,
        cpu,
        rss_mib: rss_kib as f64 / 1024.0,
        out,
    }
}

fn median(v: &[f64]) -> f64 {
    mooring_testkit::bench::median(v).unwrap_or(f64::NAN)
}

/// A base of `base` objects (one of them generated) and `overlays`
/// overlays of it, under one top kustomization.
fn tree(base: usize, overlays: usize) -> Tree {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path();
    let write = |rel: &str, text: &str| {
        let path = p.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    let mut objects = String::new();
    let apps = (base - 1) / 6;
    let mut made = 0;
    for i in 0..apps {
        let _ = write!(
            objects,
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app{i}
  labels: {{app: app{i}}}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: app{i}}}
  template:
    metadata:
      labels: {{app: app{i}}}
    spec:
      serviceAccountName: app{i}
      containers:
      - name: app
        image: ghcr.io/acme/app:0.{i}.0
        ports:
        - containerPort: 8080
        env:
        - name: MODE
          value: production
        envFrom:
        - configMapRef: {{name: settings}}
        - secretRef: {{name: app{i}-creds}}
        volumeMounts:
        - {{name: config, mountPath: /etc/app}}
      volumes:
      - name: config
        configMap: {{name: app{i}-config}}
---
apiVersion: v1
kind: Service
metadata:
  name: app{i}
spec:
  selector: {{app: app{i}}}
  ports:
  - {{port: 80, targetPort: 8080}}
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: app{i}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: app{i}-config
data:
  app.yaml: |
    listen: :8080
    level: info
---
apiVersion: v1
kind: Secret
metadata:
  name: app{i}-creds
stringData:
  token: t{i}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: app{i}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}}
subjects:
- {{kind: ServiceAccount, name: app{i}}}
---
"
        );
        made += 6;
    }
    while made < base - 1 {
        let _ = write!(
            objects,
            "apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: hpa{made}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: app0}}
  minReplicas: 1
  maxReplicas: 3
---
"
        );
        made += 1;
    }
    write("base/objects.yaml", &objects);
    write(
        "base/kustomization.yaml",
        "resources:\n- objects.yaml\nconfigMapGenerator:\n- name: settings\n  literals:\n  - LOG_LEVEL=info\n  - REGION=eu\n",
    );
    let mut top = String::from("resources:\n");
    for o in 0..overlays {
        let _ = writeln!(top, "- overlays/o{o}");
        write(
            &format!("overlays/o{o}/kustomization.yaml"),
            &format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: team{o}
namePrefix: o{o}-
resources:
- ../../base
labels:
- pairs: {{tenant: t{o}}}
  includeSelectors: true
commonAnnotations:
  owner: team{o}
images:
- name: ghcr.io/acme/app
  newTag: 1.{o}.0
replicas:
- name: app0
  count: 3
configMapGenerator:
- name: settings
  behavior: merge
  literals:
  - TENANT=t{o}
patches:
- path: patch.yaml
- target: {{kind: Service}}
  patch: |-
    - op: add
      path: /spec/sessionAffinity
      value: ClientIP
"
            ),
        );
        write(
            &format!("overlays/o{o}/patch.yaml"),
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app0
spec:
  template:
    spec:
      containers:
      - name: app
        resources:
          limits: {memory: 256Mi}
        env:
        - name: EXTRA
          value: \"1\"
",
        );
    }
    write("kustomization.yaml", &top);
    Tree {
        name: format!("{overlays} overlays of a {base}-object base"),
        dir,
        objects: base * overlays,
    }
}
