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

/// The timing rows as a Markdown table (a row without samples is a
/// heading).
pub fn table(rows: &[Row]) -> String {
    let cells = rows
        .iter()
        .map(|r| {
            let mut cells = vec![r.name.clone()];
            if r.samples.is_empty() {
                cells.extend(["", "", "", ""].map(String::from));
            } else {
                cells.extend([r.min_ms(), r.median_ms(), r.p95_ms()].map(|ms| format!("{ms:.2}")));
                cells.push(r.samples.len().to_string());
            }
            cells
        })
        .collect::<Vec<_>>();
    markdown(&["what", "min ms", "median ms", "p95 ms", "runs"], &cells)
}

/// What runs used, a row per label: median CPU ms (and the server's, when
/// any run measured it), median and max RSS MiB.
pub fn usage_table<L: AsRef<str>>(rows: &[(L, Vec<Usage>)]) -> String {
    let server = rows.iter().any(|(_, v)| v.iter().any(|u| u.server_cpu.is_some()));
    let show = |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |x| format!("{x:.digits$}"));
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let cells = rows
        .iter()
        .map(|(label, v)| {
            let rss: Vec<f64> = v
                .iter()
                .filter_map(|u| u.rss_kib)
                .map(|k| k as f64 / 1024.0)
                .collect();
            let cpu: Vec<f64> = v.iter().filter_map(|u| u.cpu).map(ms).collect();
            let mut cells = vec![label.as_ref().to_string(), show(median(&cpu), 0)];
            if server {
                let cpu: Vec<f64> = v.iter().filter_map(|u| u.server_cpu).map(ms).collect();
                cells.push(show(median(&cpu), 0));
            }
            let max = rss.iter().copied().reduce(f64::max);
            cells.extend([show(median(&rss), 1), show(max, 1), v.len().to_string()]);
            cells
        })
        .collect::<Vec<_>>();
    let mut head = vec!["run (medians)", "CPU ms"];
    if server {
        head.push("server CPU ms");
    }
    head.extend(["RSS MiB", "max RSS MiB", "runs"]);
    markdown(&head, &cells)
}

/// A Markdown table: the first column left-aligned, the others
/// right-aligned, each as wide as its widest cell.
fn markdown(head: &[&str], rows: &[Vec<String>]) -> String {
    let len = |s: &str| s.chars().count();
    let widths: Vec<usize> = (0..head.len())
        .map(|i| rows.iter().map(|r| len(&r[i])).fold(len(head[i]), usize::max))
        .collect();
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            let _ = if i == 0 {
                write!(out, "| {cell:<w$} ")
            } else {
                write!(out, "| {cell:>w$} ")
            };
        }
        out.push_str("|\n");
    };
    line(&mut head.iter().copied());
    let rules: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                "-".repeat(*w)
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    line(&mut rules.iter().map(String::as_str));
    for r in rows {
        line(&mut r.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns_to_the_widest_cell() {
        let ms = Duration::from_millis;
        let rows = [
            Row::new("heading", Vec::new()),
            Row::new("  a → b", vec![ms(1), ms(2), ms(4)]),
        ];
        assert_eq!(
            table(&rows),
            "| what    | min ms | median ms | p95 ms | runs |\n\
             | ------- | -----: | --------: | -----: | ---: |\n\
             | heading |        |           |        |      |\n\
             |   a → b |   1.00 |      2.00 |   4.00 |    3 |\n"
        );
    }
}
