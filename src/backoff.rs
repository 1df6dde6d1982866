//! When to run next: the retry policy, kept apart from the reconcile
//! functions (which only say whether they succeeded and whether retrying
//! can help), and the jitter every retry loop spreads itself with. Below
//! every stage, so that automation's push retries and the agent's
//! scheduler share it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// First retry after a failure.
pub const BASE: Duration = Duration::from_secs(2);
/// Retries never wait longer than this, nor longer than the interval.
pub const CAP: Duration = Duration::from_secs(300);

/// After a success: the interval plus up to 10% jitter, so objects that
/// share an interval spread out instead of firing together.
pub fn after_success(interval: Duration) -> Duration {
    interval + jitter(interval / 10)
}

/// After the `failures`-th failure in a row (1 for the first): exponential
/// from [`BASE`], capped at the smaller of [`CAP`] and the interval, with
/// "equal jitter" (half fixed, half random) so retries of many objects
/// against one broken server do not arrive in lockstep.
pub fn after_failure(failures: u32, interval: Duration) -> Duration {
    let cap = CAP.min(interval.max(BASE));
    let exp = BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(20));
    let delay = exp.min(cap);
    delay / 2 + jitter(delay / 2)
}

/// A random duration in `[0, max]`.
pub fn jitter(max: Duration) -> Duration {
    let nanos = max.as_nanos() as u64;
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random() % (nanos + 1))
}

/// xorshift seeded from the clock: jitter needs spread, not secrecy.
fn random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15)
            | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let hour = Duration::from_secs(3600);
        for (n, full) in [(1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (40, 300)] {
            let full = Duration::from_secs(full);
            for _ in 0..50 {
                let d = after_failure(n, hour);
                assert!(
                    d >= full / 2 && d <= full,
                    "failure {n}: {d:?} not in [{:?}, {full:?}]",
                    full / 2
                );
            }
        }
    }

    #[test]
    fn retries_never_wait_longer_than_the_interval() {
        let interval = Duration::from_secs(30);
        for _ in 0..50 {
            assert!(after_failure(10, interval) <= interval);
        }
    }

    #[test]
    fn success_waits_the_interval_plus_at_most_a_tenth() {
        let interval = Duration::from_secs(60);
        let runs: Vec<_> = (0..100).map(|_| after_success(interval)).collect();
        assert!(
            runs.iter()
                .all(|d| *d >= interval && *d <= interval + interval / 10)
        );
        assert!(runs.iter().any(|d| *d != runs[0]), "no jitter at all");
    }
}
