//! How long does checking a large config take?
//!
//! Generates a realistic config of 2,000 apps, 500 sources and 500 images
//! (about 22,000 lines), asserts that it is valid, then measures
//!
//! * `mooring::config::check` in process, and each of its phases (KDL
//!   parse, shape check, decode, cross-object validation);
//! * `mooring validate -c FILE` end to end, by spawning the binary that
//!   `cargo bench` built next to this benchmark.
//!
//! Run with `cargo bench --bench validate`. The target (docs/performance.md)
//! is `mooring validate` under 50 ms on this config in a release build.
//!
//! Without `--bench` (as under `cargo test --all-targets`) everything runs
//! once, as a smoke test. Environment: `MOORING_BENCH_ITERS` (default 30)
//! sets the number of timed iterations, `MOORING_BIN` the binary to spawn,
//! `MOORING_BENCH_WRITE=FILE` keeps a copy of the generated config (to
//! profile `mooring validate -c FILE` on it).
//!
//! No benchmark framework on purpose: std, the mooring library and
//! tempfile are enough, and keep the dependency tree lean.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;

use mooring::config::{self, parse, syntax, validate};

use mooring_testkit::genconfig::{Size, generate};
use mooring_testkit::support::checked;

use mooring_testkit::bench::{Mode, Row, display_bin, find_binary, measure, table};

/// The config the target is about.
const LARGE: Size = Size {
    apps: 2_000,
    sources: 500,
    images: 500,
    automations: 20,
};
/// A config of a more usual size, for scale.
const SMALL: Size = Size {
    apps: 100,
    sources: 25,
    images: 25,
    automations: 2,
};
const TARGET_MS: f64 = 50.0;
const WARMUP: usize = 3;

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.iters(&[], 30);
    let warmup = mode.warmup(WARMUP);

    let generated = generate(&LARGE);
    let text = generated.text;
    let lines = text.lines().count();
    let bytes = text.len();
    let now = jiff::Timestamp::now();
    let path = Path::new("bench.kdl");
    if let Some(out) = std::env::var_os("MOORING_BENCH_WRITE") {
        std::fs::write(&out, &text).expect("write MOORING_BENCH_WRITE");
        println!("wrote the generated config to {}", Path::new(&out).display());
    }

    // The generator must produce a valid config, or the numbers mean nothing.
    let (cfg, diags) = config::check(path, text.clone(), now);
    if diags.has_errors() || cfg.is_none() {
        eprint!("{}", diags.render(false, 100));
        panic!("the generated config is not valid");
    }
    let cfg = cfg.expect("checked above");
    assert_eq!(cfg.apps.len(), LARGE.apps);
    assert_eq!(cfg.sources.len(), LARGE.sources);
    assert_eq!(cfg.images.len(), LARGE.images);
    assert_eq!(cfg.automations.len(), LARGE.automations);
    assert_eq!(
        diags.items.len(),
        0,
        "the generated config has warnings:\n{}",
        diags.render(false, 100)
    );

    println!("mooring config validation benchmark");
    println!(
        "config: {} apps, {} sources ({} git, {} OCI), {} images, {} automations, {} suspensions, {} clusters",
        cfg.apps.len(),
        cfg.sources.len(),
        generated.git_sources,
        cfg.sources.len() - generated.git_sources,
        cfg.images.len(),
        cfg.automations.len(),
        cfg.suspensions.len(),
        cfg.clusters.len()
    );
    println!(
        "        {lines} lines, {bytes} bytes ({:.1} KiB)",
        bytes as f64 / 1024.0
    );
    // A config of a more usual size, for scale.
    let small = generate(&SMALL).text;
    let (small_cfg, small_diags) = config::check(path, small.clone(), now);
    assert!(
        small_cfg.is_some() && small_diags.items.is_empty(),
        "the small generated config is not clean:\n{}",
        small_diags.render(false, 100)
    );
    println!(
        "small config for scale: {} apps, {} lines, {} bytes",
        SMALL.apps,
        small.lines().count(),
        small.len()
    );
    if bench_mode {
        println!("timing: {warmup} warm-up runs, then {iters} timed runs per row");
    } else {
        println!("smoke run (no --bench): one run per row; use `cargo bench --bench validate` for numbers");
    }
    println!();

    let mut rows: Vec<Row> = Vec::new();

    // (a) In process: the whole check, then its phases one by one.
    rows.push(Row::new(
        "config::check (in process)",
        measure(warmup, iters, || {
            black_box(config::check(path, black_box(text.clone()), now));
        }),
    ));
    rows.push(Row::new(
        "  1. KDL parse (syntax::parse)",
        measure(warmup, iters, || {
            black_box(syntax::parse(black_box(&text)).is_ok());
        }),
    ));
    let doc = syntax::parse(&text).expect("parsed above");
    rows.push(Row::new(
        "  2. shape check (check_shape)",
        measure(warmup, iters, || {
            let mut d = Vec::new();
            parse::check_shape(black_box(&doc), &text, &mut d);
            black_box(d);
        }),
    ));
    rows.push(Row::new(
        "  3. decode",
        measure(warmup, iters, || {
            let mut d = Vec::new();
            black_box(parse::decode(black_box(&doc), &text, &mut d));
            black_box(d);
        }),
    ));
    let mut scratch = Vec::new();
    let decoded = parse::decode(&doc, &text, &mut scratch);
    rows.push(Row::new(
        "  4. validate (cross-object)",
        measure(warmup, iters, || {
            black_box(validate::validate(black_box(&decoded), now));
        }),
    ));
    drop(doc);

    // For scale: the config of a more usual size, in process.
    let small_name = format!(
        "small config ({} apps, {} lines): check",
        SMALL.apps,
        small.lines().count()
    );
    rows.push(Row::new(
        small_name,
        measure(warmup, iters, || {
            black_box(config::check(path, black_box(small.clone()), now));
        }),
    ));

    // (b) End to end: the release binary on a file.
    let dir = tempfile::tempdir().expect("create temp dir");
    let file = dir.path().join("mooring.kdl");
    std::fs::write(&file, &text).expect("write config");
    let small_file = dir.path().join("small.kdl");
    std::fs::write(&small_file, &small).expect("write config");
    let e2e = match find_binary() {
        Some(bin) => {
            let run_validate = |file: &Path| {
                checked(
                    Command::new(&bin)
                        .args(["validate", "-c"])
                        .arg(file)
                        .env("NO_COLOR", "1"),
                );
            };
            rows.push(Row::new(
                "mooring validate -c FILE (e2e)",
                measure(warmup, iters, || run_validate(&file)),
            ));
            rows.push(Row::new(
                "  process start (mooring --version)",
                measure(warmup, iters, || {
                    let status = Command::new(&bin)
                        .arg("--version")
                        .stdout(std::process::Stdio::null())
                        .status()
                        .expect("run mooring --version");
                    assert!(status.success());
                }),
            ));
            rows.push(Row::new(
                "small config: mooring validate (e2e)",
                measure(warmup, iters, || run_validate(&small_file)),
            ));
            Some(bin)
        }
        None => {
            println!("end-to-end: skipped, no release binary found.");
            println!("  build it with `cargo build --release` (or run `cargo bench --bench validate`,");
            println!("  which builds it), or point MOORING_BIN at a mooring binary.");
            println!();
            None
        }
    };

    print!("{}", table(&rows));
    println!();
    if let Some(bin) = &e2e {
        println!("binary: {}", display_bin(bin));
    }
    if !bench_mode {
        println!("target: not judged in a smoke run (one cold run, in whatever profile built this)");
        return;
    }
    let verdict_row = rows
        .iter()
        .find(|r| r.name.starts_with("mooring validate"))
        .or_else(|| rows.first())
        .expect("rows");
    let median = verdict_row.median_ms();
    let verdict = if median < TARGET_MS { "met" } else { "MISSED" };
    println!(
        "target: `mooring validate` on the large config under {TARGET_MS:.0} ms (release build): {verdict} \
         ({}: median {median:.2} ms)",
        verdict_row.name.trim()
    );
}
