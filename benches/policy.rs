//! How long does an image policy take to pick among many tags?
//!
//! Generates 10,000 tags of a busy repository, a realistic mix: release
//! versions (`1.4.2`, `v2.0.0`, pre-releases), CI builds
//! (`main-<sha>-<unix time>`, `pr-123-<sha>`), `sha-<hex>`, cosign
//! signatures (`sha256-<hex>.sig`) and a few words (`latest`, `stable`).
//! Then measures `mooring::image::policy::Rules::select` (the rules built
//! once, as a scan does) for
//!
//! * `semver` (a range, most tags skipped as non-versions);
//! * `alphabetical` and `numerical`, each with a `filter` and `extract`
//!   of the CI build's timestamp;
//! * building the rules as well (patterns come memoized).
//!
//! Run with `cargo bench --bench policy`. The target (docs/performance.md)
//! is a policy over 10,000 tags under 5 ms in a release build.
//!
//! Without `--bench` (as under `cargo test --all-targets`) every row runs
//! once, as a smoke test. `MOORING_BENCH_ITERS` (default 200) sets the
//! number of timed iterations.

use std::hint::black_box;

use mooring::config::{Order, Policy, TagFilter};
use mooring::image::policy::Rules;

use mooring_testkit::rng::Rng;

use mooring_testkit::bench::{Mode, Row, measure, table};

const TAGS: usize = 10_000;
const TARGET_MS: f64 = 5.0;
const WARMUP: usize = 5;
const FILTER: &str = r"^main-[a-f0-9]+-(?<ts>\d+)$";

/// A repository's tags; distinct, in no particular order.
fn tags(n: usize) -> Vec<String> {
    let mut rng = Rng::new(0x1ea5e);
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    let mut ts: u64 = 1_700_000_000;
    while out.len() < n {
        let tag = match rng.below(100) {
            0..=29 => {
                let v = if rng.chance(30) { "v" } else { "" };
                let pre = if rng.chance(15) {
                    format!("-rc.{}", rng.below(5))
                } else {
                    String::new()
                };
                format!("{v}{}.{}.{}{pre}", rng.below(4), rng.below(30), rng.below(20))
            }
            30..=69 => {
                ts += 1 + rng.below(5000) as u64;
                format!("main-{}-{ts}", rng.hex(7))
            }
            70..=79 => format!("pr-{}-{}", rng.below(2000), rng.hex(7)),
            80..=89 => format!("sha-{}", rng.hex(12)),
            90..=95 => format!("sha256-{}.sig", rng.hex(64)),
            _ => rng
                .word(&["latest", "stable", "edge", "nightly", "main", "dev"])
                .to_string(),
        };
        if seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    out
}

fn filter() -> Option<TagFilter> {
    Some(TagFilter {
        pattern: FILTER.into(),
        extract: Some("$ts".into()),
    })
}

fn main() {
    let mode = Mode::from_args();
    let bench_mode = mode.bench;
    let iters = mode.iters(&[], 200);
    let warmup = mode.warmup(WARMUP);
    let tags = tags(TAGS);

    let cases: Vec<(&str, Policy, Option<TagFilter>)> = vec![
        (
            "semver \">=1.0.0 <3.0.0\"",
            Policy::Semver(">=1.0.0 <3.0.0".into()),
            None,
        ),
        (
            "alphabetical asc, filter + extract $ts",
            Policy::Alphabetical(Order::Asc),
            filter(),
        ),
        (
            "numerical asc, filter + extract $ts",
            Policy::Numerical(Order::Asc),
            filter(),
        ),
        (
            "numerical desc, filter + extract $ts",
            Policy::Numerical(Order::Desc),
            filter(),
        ),
        (
            "alphabetical asc, no filter",
            Policy::Alphabetical(Order::Asc),
            None,
        ),
    ];

    println!("mooring image policy benchmark");
    println!(
        "tags: {} distinct (releases, CI builds, signatures, words)",
        tags.len()
    );
    if bench_mode {
        println!("timing: {warmup} warm-up runs, then {iters} timed runs per row");
    } else {
        println!("smoke run (no --bench): one run per row; use `cargo bench --bench policy` for numbers");
    }
    println!();

    let mut rows = Vec::new();
    let mut picks = Vec::new();
    for (name, policy, filter) in &cases {
        let rules = Rules::new(policy, filter.as_ref(), &[]).expect("valid rules");
        let choice = rules.select(tags.iter().map(String::as_str)).expect("a pick");
        picks.push(format!(
            "{name}: {} ({} excluded, {} not matching the filter, {} skipped)",
            choice.tag,
            choice.excluded,
            choice.filtered,
            choice.skipped.len()
        ));
        rows.push(Row::new(
            format!("select: {name}"),
            measure(warmup, iters, || {
                black_box(rules.select(black_box(&tags).iter().map(String::as_str)).is_ok());
            }),
        ));
    }
    let (_, policy, filter) = &cases[2];
    rows.push(Row::new(
        "rules + select: numerical, filter + extract",
        measure(warmup, iters, || {
            let rules = Rules::new(policy, filter.as_ref(), &[]).expect("valid rules");
            black_box(rules.select(black_box(&tags).iter().map(String::as_str)).is_ok());
        }),
    ));

    print!("{}", table(&rows));
    println!();
    for p in &picks {
        println!("pick: {p}");
    }
    println!();
    if !bench_mode {
        println!("target: not judged in a smoke run");
        return;
    }
    let worst = rows
        .iter()
        .max_by(|a, b| a.median_ms().total_cmp(&b.median_ms()))
        .expect("rows");
    let verdict = if worst.median_ms() < TARGET_MS {
        "met"
    } else {
        "MISSED"
    };
    println!(
        "target: every policy over {TAGS} tags under {TARGET_MS:.0} ms (release build): {verdict} \
         (slowest: {}, median {:.2} ms)",
        worst.name,
        worst.median_ms()
    );
}
