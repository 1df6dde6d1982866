//! What the benches share: how a bench was started and its knobs
//! ([`Mode`]), timing samples, rows and tables ([`stats`]), peak memory and
//! CPU time through GNU time ([`gnu_time`]), and the programs a bench
//! drives ([`process`]).

pub mod gnu_time;
pub mod process;
pub mod stats;

pub use gnu_time::{GnuTime, Usage};
pub use process::{display_bin, find_binary, git, mooring_binary};
pub use stats::{Row, measure, median, sorted, table, usage_table};

/// How a bench was started: `cargo bench` passes `--bench` (full runs,
/// targets checked); `cargo test --benches` does not (one short pass, a
/// smoke test).
#[derive(Clone, Copy, Debug)]
pub struct Mode {
    pub bench: bool,
}

impl Mode {
    pub fn from_args() -> Mode {
        Mode {
            bench: std::env::args().any(|a| a == "--bench"),
        }
    }

    /// A positive number from the first of the environment variables
    /// `vars` that holds one; else `bench` in bench mode, `smoke` otherwise.
    pub fn knob(self, vars: &[&str], bench: usize, smoke: usize) -> usize {
        vars.iter()
            .find_map(|v| std::env::var(v).ok()?.trim().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(if self.bench { bench } else { smoke })
    }

    /// Timed runs per row: in bench mode [`knob`](Self::knob) of `vars`
    /// then `MOORING_BENCH_ITERS`, else `default`; 1 in a smoke test.
    pub fn iters(self, vars: &[&str], default: usize) -> usize {
        if !self.bench {
            return 1;
        }
        let mut all = vars.to_vec();
        all.push("MOORING_BENCH_ITERS");
        self.knob(&all, default, 1)
    }

    /// `n` untimed rounds first in bench mode, none in a smoke test.
    pub fn warmup(self, n: usize) -> usize {
        if self.bench { n } else { 0 }
    }
}
