//! Timing: samples of a closure, rows and the table the benches print
//! (min, median, p95), and the table of what runs used (CPU, RSS).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use super::Usage;

/// `f` run `warmup` times untimed, then `iters` times timed: the samples,
/// sorted.
pub fn measure(warmup: usize, iters: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..warmup {
        f();
    }
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let start = Instant::now();
        f();
        samples.push(start.elapsed());
    }
    sorted(samples)
}

pub fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

/// The median, `None` of nothing.
pub fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

pub struct Row {
    pub name: String,
    /// Sorted; empty for a heading.
    pub samples: Vec<Duration>,
}

impl Row {
    pub fn new(name: impl Into<String>, samples: Vec<Duration>) -> Row {
        Row {
            name: name.into(),
            samples,
        }
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    pub fn min_ms(&self) -> f64 {
        Self::ms(self.samples[0])
    }

    pub fn median_ms(&self) -> f64 {
        let n = self.samples.len();
        if n % 2 == 1 {
            Self::ms(self.samples[n / 2])
        } else {
            (Self::ms(self.samples[n / 2 - 1]) + Self::ms(self.samples[n / 2])) / 2.0
        }
    }

    /// Nearest-rank 95th percentile.
    pub fn p95_ms(&self) -> f64 {
        let n = self.samples.len();
        let rank = (0.95 * n as f64).ceil() as usize;
        Self::ms(self.samples[rank.clamp(1, n) - 1])
    }
}

pub fn table(rows: &[Row]) -> String {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(5);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {:<width$} | {:>8} | {:>9} | {:>8} | {:>4} |",
        "what", "min ms", "median ms", "p95 ms", "runs"
    );
    let _ = writeln!(
        out,
        "|-{}-|---------:|----------:|---------:|-----:|",
        "-".repeat(width)
    );
    for r in rows {
        if r.samples.is_empty() {
            let _ = writeln!(
                out,
                "| {:<width$} | {:>8} | {:>9} | {:>8} | {:>4} |",
                r.name, "", "", "", ""
            );
            continue;
        }
        let _ = writeln!(
            out,
            "| {:<width$} | {:>8.2} | {:>9.2} | {:>8.2} | {:>4} |",
            r.name,
            r.min_ms(),
            r.median_ms(),
            r.p95_ms(),
            r.samples.len()
        );
    }
    out
}

/// What runs used, a row per label: median CPU ms (and the server's, when
/// any run measured it), median and max RSS MiB.
pub fn usage_table<L: AsRef<str>>(rows: &[(L, Vec<Usage>)]) -> String {
    let server = rows.iter().any(|(_, v)| v.iter().any(|u| u.server_cpu.is_some()));
    let width = rows
        .iter()
        .map(|(l, _)| l.as_ref().len())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut out = String::new();
    let (server_head, server_rule) = if server {
        (format!(" {:>14} |", "server CPU ms"), "---------------:|")
    } else {
        (String::new(), "")
    };
    let _ = writeln!(
        out,
        "| {:<width$} | {:>11} |{server_head} {:>12} | {:>12} | {:>4} |",
        "run (medians)", "CPU ms", "RSS MiB", "max RSS MiB", "runs"
    );
    let _ = writeln!(
        out,
        "|-{}-|------------:|{server_rule}-------------:|-------------:|-----:|",
        "-".repeat(width)
    );
    let show = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |x| format!("{x:.digits$}"));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (label, v) in rows {
        let rss: Vec<f64> = v
            .iter()
            .filter_map(|u| u.rss_kib)
            .map(|k| k as f64 / 1024.0)
            .collect();
        let cpu: Vec<f64> = v.iter().filter_map(|u| u.cpu).map(ms).collect();
        let server_cell = if server {
            let cpu: Vec<f64> = v.iter().filter_map(|u| u.server_cpu).map(ms).collect();
            format!(" {:>14} |", show(median(&cpu), 0))
        } else {
            String::new()
        };
        let max = rss.iter().copied().reduce(f64::max);
        let _ = writeln!(
            out,
            "| {:<width$} | {:>11} |{server_cell} {:>12} | {:>12} | {:>4} |",
            label.as_ref(),
            show(median(&cpu), 0),
            show(median(&rss), 1),
            show(max, 1),
            v.len()
        );
    }
    out
}
