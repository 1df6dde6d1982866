//! How long do the setters take on a large checkout?
//!
//! Writes 10,000 YAML files once (a realistic mix: Deployments,
//! Services, ConfigMaps, HelmReleases and kustomizations of about 1–3 KB,
//! 2% of them with `$imagepolicy` markers, a few with marker-like text
//! that is not a marker), then measures `mooring::automation::setters::apply`
//! on the tree, which the page cache keeps warm after the first run:
//!
//! * a dry run that finds every marker out of date (the scan, the text
//!   edits and the YAML check of each changed file; nothing written);
//! * a run where every marker is up to date (the automation's usual case);
//! * a run that writes every marked file (alternating between two tags);
//! * `mooring patch DIR --set … --dry-run` end to end, when a release
//!   binary is found.
//!
//! Run with `cargo bench --bench setters`. The target (docs/performance.md)
//! is the scan of 10,000 files under 1 s in a release build.
//!
//! Without `--bench` (as under `cargo test --all-targets`) 200 files are
//! written and every row runs once, as a smoke test.
//! `MOORING_BENCH_ITERS` (default 20) sets the number of timed iterations.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use mooring::automation::setters::{self, Policies};
use mooring::image::Selection;

use mooring_testkit::rng::Rng;
use mooring_testkit::support::checked;

use mooring_testkit::bench::{Mode, Row, display_bin, find_binary, measure, table};

/// Percent of the files with markers.
const MARKED_PERCENT: u64 = 2;
const TARGET_MS: f64 = 1000.0;
const REPO: &str = "ghcr.io/acme/app";

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.iters(&[], 20);
    let warmup = mode.warmup(2);
    let files = mode.knob(&[], 10_000, 200);

    let dir = tempfile::tempdir().expect("create temp dir");
    let tree = generate(dir.path(), files);
    println!("mooring setters benchmark");
    println!(
        "tree: {} YAML files in {} directories, {} bytes ({:.1} MiB), {} files with {} markers",
        tree.files,
        tree.dirs,
        tree.bytes,
        tree.bytes as f64 / (1024.0 * 1024.0),
        tree.marked_files,
        tree.markers
    );
    if bench_mode {
        println!("timing: {warmup} warm-up runs, then {iters} timed runs per row");
    } else {
        println!(
            "smoke run (no --bench): {files} files, one run per row; use `cargo bench --bench setters` for numbers"
        );
    }
    println!();

    let old = picks("1.0.0");
    let new = picks("1.0.1");
    let newer = picks("1.0.2");

    // The generated markers all hold 1.0.0: a dry run with 1.0.1 changes
    // each, except the `:name` markers, which already hold the repository.
    let first = setters::apply(dir.path(), &new, true).expect("dry run");
    assert_eq!(first.scanned, tree.files, "every file is found");
    assert_eq!(
        first.changes.len(),
        tree.markers - tree.name_markers,
        "skipped: {:?}",
        first.skipped
    );
    assert_eq!(first.up_to_date, tree.name_markers);
    assert_eq!(first.files_changed.len(), tree.marked_files);
    assert_eq!(first.skipped.len(), 0, "{:?}", first.skipped);
    let up_to_date = setters::apply(dir.path(), &old, true).expect("dry run");
    assert_eq!(up_to_date.up_to_date, tree.markers);
    assert!(up_to_date.changes.is_empty());

    let mut rows = Vec::new();
    rows.push(Row::new(
        format!(
            "apply, dry run: {} files, {} values to set",
            tree.files,
            tree.markers - tree.name_markers
        ),
        measure(warmup, iters, || {
            black_box(setters::apply(dir.path(), black_box(&new), true).expect("apply"));
        }),
    ));
    rows.push(Row::new(
        "apply: every marker up to date",
        measure(warmup, iters, || {
            let out = setters::apply(dir.path(), black_box(&old), false).expect("apply");
            assert!(out.changes.is_empty());
        }),
    ));
    let mut flip = false;
    rows.push(Row::new(
        format!("apply: writes {} files", tree.marked_files),
        measure(warmup, iters, || {
            flip = !flip;
            let out = setters::apply(dir.path(), if flip { &new } else { &newer }, false).expect("apply");
            assert_eq!(out.files_changed.len(), tree.marked_files);
        }),
    ));
    // Back to 1.0.0 for the end-to-end row.
    setters::apply(dir.path(), &old, false).expect("apply");

    let e2e = find_binary().inspect(|bin| {
        let set = format!("app-0={REPO}-0:1.0.1");
        rows.push(Row::new(
            "mooring patch DIR --set … --dry-run (e2e)",
            measure(warmup, iters, || {
                checked(
                    Command::new(bin)
                        .arg("patch")
                        .arg(dir.path())
                        .args(["--set", &set, "--dry-run"]),
                );
            }),
        ));
    });
    if e2e.is_none() {
        println!("end-to-end: skipped, no release binary found (cargo build --release, or MOORING_BIN).");
        println!();
    }

    print!("{}", table(&rows));
    println!();
    if let Some(bin) = &e2e {
        println!("binary: {}", display_bin(bin));
    }
    if !bench_mode {
        println!("target: not judged in a smoke run");
        return;
    }
    let median = rows[0].median_ms();
    let verdict = if median < TARGET_MS { "met" } else { "MISSED" };
    println!(
        "target: setters over {} files under {TARGET_MS:.0} ms (release build): {verdict} (dry run: median {median:.2} ms)",
        tree.files
    );
}

/// Every image `app-N` picks `REPO-N:tag`.
fn picks(tag: &str) -> Policies {
    let mut policies = Policies::new();
    for i in 0..IMAGES {
        let selection = Selection {
            repository: format!("{REPO}-{i}"),
            tag: tag.to_string(),
            digest: None,
        };
        policies.insert(&format!("app-{i}"), "flux-system", Some(selection));
    }
    policies
}

const IMAGES: usize = 20;

struct Tree {
    files: usize,
    dirs: usize,
    bytes: usize,
    marked_files: usize,
    markers: usize,
    /// Of `markers`, those that set the repository (`:name`).
    name_markers: usize,
}

/// `files` YAML files under `root`, in `apps/team-T/app-A/` directories of
/// about ten files each, plus a few that are not YAML.
fn generate(root: &Path, files: usize) -> Tree {
    let mut rng = Rng::new(0x5e77e5);
    let mut tree = Tree {
        files: 0,
        dirs: 0,
        bytes: 0,
        marked_files: 0,
        markers: 0,
        name_markers: 0,
    };
    let mut dir = PathBuf::new();
    for n in 0..files {
        if n % 10 == 0 {
            dir = root.join(format!("apps/team-{}/app-{}", n / 500, n / 10));
            std::fs::create_dir_all(&dir).expect("create dir");
            tree.dirs += 1;
            // Not YAML, never read.
            std::fs::write(dir.join("README.md"), "# app\n").expect("write");
        }
        let image = rng.below(IMAGES);
        let marked = rng.chance(MARKED_PERCENT);
        let (name, text, markers) = match (n % 10, marked) {
            (0, true) => ("kustomization.yaml", kustomization(&mut rng, image, true), 2),
            (0, false) => ("kustomization.yaml", kustomization(&mut rng, image, false), 0),
            (1..=3, true) => ("deployment.yaml", deployment(&mut rng, image, true), 1),
            (1..=3, false) => ("deployment.yaml", deployment(&mut rng, image, false), 0),
            (4, true) => ("helmrelease.yaml", helmrelease(&mut rng, image, true), 2),
            (4, false) => ("helmrelease.yaml", helmrelease(&mut rng, image, false), 0),
            (5 | 6, false) => ("service.yaml", service(&mut rng), 0),
            (_, true) => ("cronjob.yaml", deployment(&mut rng, image, true), 1),
            (_, false) => ("configmap.yaml", configmap(&mut rng), 0),
        };
        let name = format!("{}-{name}", n % 10);
        std::fs::write(dir.join(&name), &text).expect("write");
        tree.files += 1;
        tree.bytes += text.len();
        if markers > 0 {
            tree.marked_files += 1;
            tree.markers += markers;
            if markers == 2 {
                // A kustomization or a HelmRelease: `:name` and `:tag`.
                tree.name_markers += 1;
            }
        }
    }
    tree
}

/// Two to six distinct labels. Values start with a letter: 8 hex digits
/// such as `1234e567` would read as a float.
fn labels(rng: &mut Rng, out: &mut String, indent: &str) {
    let keys = [
        "app.kubernetes.io/part-of",
        "team",
        "tier",
        "env",
        "cost-center",
        "owner",
    ];
    let skip = rng.below(keys.len());
    for key in keys.iter().cycle().skip(skip).take(2 + rng.below(5)) {
        let _ = writeln!(out, "{indent}{key}: v{}", rng.hex(8));
    }
}

/// A random number of lines (within `count`) made by `line`, appended to `s`.
fn some_lines(
    rng: &mut Rng,
    s: &mut String,
    count: std::ops::Range<usize>,
    line: impl Fn(&mut Rng) -> String,
) {
    for _ in 0..count.start + rng.below(count.len()) {
        let text = line(rng);
        let _ = writeln!(s, "{text}");
    }
}

fn deployment(rng: &mut Rng, image: usize, marked: bool) -> String {
    let mut s = String::with_capacity(2048);
    let name = format!("app-{}", rng.hex(6));
    let _ = write!(
        s,
        "# Generated for the setters benchmark\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: apps\n  labels:\n"
    );
    labels(rng, &mut s, "    ");
    let _ = write!(
        s,
        "spec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n      annotations:\n        prometheus.io/scrape: \"true\"\n    spec:\n      containers:\n",
        1 + rng.below(5)
    );
    let marker = if marked {
        format!(" # {{\"$imagepolicy\": \"flux-system:app-{image}\"}}")
    } else {
        String::new()
    };
    let _ = write!(
        s,
        "        - name: main\n          image: {REPO}-{image}:1.0.0{marker}\n          imagePullPolicy: IfNotPresent\n          ports:\n            - name: http\n              containerPort: {}\n              protocol: TCP\n          env:\n",
        8000 + rng.below(1000)
    );
    some_lines(rng, &mut s, 4..24, |rng| {
        let var = rng.word(&["LOG", "DB", "CACHE", "FEATURE", "OTEL"]);
        let (suffix, value) = (rng.hex(4).to_uppercase(), rng.hex(12));
        format!("            - name: {var}_{suffix}\n              value: \"{value}\"")
    });
    s.push_str(
        "          resources:\n            limits:\n              memory: 256Mi\n            requests:\n              cpu: 100m\n              memory: 64Mi\n          livenessProbe:\n            httpGet:\n              path: /healthz\n              port: http\n",
    );
    if rng.chance(20) {
        // Text that mentions markers without being one.
        s.push_str("          # Pin images with $imagepolicy markers, see docs/automation.md\n");
    }
    s
}

fn service(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(1024);
    let _ = write!(
        s,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{}\n  namespace: apps\n  labels:\n",
        rng.hex(6)
    );
    labels(rng, &mut s, "    ");
    s.push_str("  annotations:\n");
    some_lines(rng, &mut s, 8..24, |rng| {
        format!("    example.com/{}: \"{}\"", rng.hex(6), rng.hex(32))
    });
    let _ = write!(
        s,
        "spec:\n  type: ClusterIP\n  selector:\n    app: app-{}\n  ports:\n    - name: http\n      port: 80\n      targetPort: http\n",
        rng.hex(6)
    );
    s
}

fn configmap(rng: &mut Rng) -> String {
    let mut s = String::with_capacity(2048);
    let _ = write!(
        s,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg-{}\n  namespace: apps\ndata:\n  config.yaml: |\n",
        rng.hex(6)
    );
    some_lines(rng, &mut s, 20..80, |rng| {
        format!(
            "    {}: {} # {}",
            rng.hex(8),
            rng.hex(16),
            rng.word(&["note", "todo", "x"])
        )
    });
    s
}

/// The `:name` and `:tag` markers of policy `policy`, or none.
fn markers(marked: bool, policy: &str) -> (String, String) {
    if !marked {
        return (String::new(), String::new());
    }
    let marker = |part: &str| format!(" # {{\"$imagepolicy\": \"{policy}:{part}\"}}");
    (marker("name"), marker("tag"))
}

fn helmrelease(rng: &mut Rng, image: usize, marked: bool) -> String {
    let (name_marker, tag_marker) = markers(marked, &format!("app-{image}"));
    let mut s = String::with_capacity(2048);
    let _ = write!(
        s,
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: hr-{}\n  namespace: apps\nspec:\n  interval: 10m\n  chart:\n    spec:\n      chart: app\n      version: \"1.x\"\n      sourceRef:\n        kind: HelmRepository\n        name: charts\n  values:\n    image:\n      repository: {REPO}-{image}{name_marker}\n      tag: \"1.0.0\"{tag_marker}\n    extra:\n",
        rng.hex(6)
    );
    some_lines(rng, &mut s, 10..50, |rng| {
        format!("      k{}: {}", rng.hex(10), rng.below(100_000))
    });
    s
}

fn kustomization(rng: &mut Rng, image: usize, marked: bool) -> String {
    let (name_marker, tag_marker) = markers(marked, &format!("flux-system:app-{image}"));
    let mut s =
        String::from("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n");
    for i in 1..10 {
        let _ = writeln!(s, "  - {i}-resource.yaml");
    }
    let _ = write!(
        s,
        "commonLabels:\n  team: t-{}\nimages:\n  - name: app\n    newName: {REPO}-{image}{name_marker}\n    newTag: 1.0.0{tag_marker}\n",
        rng.hex(4)
    );
    some_lines(rng, &mut s, 10..40, |rng| {
        let (name, major, minor, patch) = (rng.hex(8), rng.below(5), rng.below(30), rng.below(10));
        format!("  - name: img-{name}\n    newTag: v{major}.{minor}.{patch}")
    });
    s
}
