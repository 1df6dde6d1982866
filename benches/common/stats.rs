//! Timing rows and the table the benches print (min, median, p95).
//! Shared by the benches through `#[path]`.

use std::fmt::Write as _;
use std::time::Duration;

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
