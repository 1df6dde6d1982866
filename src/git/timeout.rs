//! Blocking git work under a timeout. gix's network I/O cannot be
//! cancelled from outside, so an operation runs on a thread of its own
//! with the directory it uses marked busy ([`BusyGuard`]); at the timeout
//! the caller gets [`Error::Timeout`] at once and gix's interrupt flag is
//! raised. A thread stuck in I/O keeps the directory busy until it ends,
//! so the next attempt fails fast ([`Error::Busy`]) instead of sharing it.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::{Error, Stage};
use crate::busy::BusyGuard;

/// Run `op` on its own thread with `dir` marked busy; at `timeout`, raise
/// the interrupt flag `op` is given and return [`Error::Timeout`] even if
/// the thread is stuck in I/O. `shown` is the remote's URL as it may be
/// shown.
pub(crate) fn run_with_timeout<T: Send + 'static>(
    dir: &Path,
    stage: Stage,
    shown: &str,
    timeout: Duration,
    op: impl FnOnce(&AtomicBool) -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    run_on_thread(dir, stage, shown, timeout, op).and_then(|r| r)
}

/// [`run_with_timeout`] for an operation with an error of its own (a
/// source's fetch also fails on the artifact store): its result, or the
/// git error that kept it from ending.
pub(crate) fn run_on_thread<T: Send + 'static>(
    dir: &Path,
    stage: Stage,
    shown: &str,
    timeout: Duration,
    op: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> Result<T, Error> {
    let Some(guard) = BusyGuard::take(dir) else {
        return Err(Error::Busy {
            stage,
            url: shown.to_string(),
            dir: dir.to_path_buf(),
        });
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let flag = interrupt.clone();
    std::thread::Builder::new()
        .name(format!("git-{}", stage.verb()))
        .spawn(move || {
            let result = op(&flag);
            // Free before answering: the caller may go on at once.
            drop(guard);
            let _ = tx.send(result);
        })
        .map_err(|e| Error::Protocol {
            stage,
            url: shown.to_string(),
            reason: format!("cannot start a thread: {e}"),
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => Ok(result),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            interrupt.store(true, Ordering::SeqCst);
            Err(Error::Timeout {
                stage,
                url: shown.to_string(),
                timeout,
            })
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(Error::Protocol {
            stage,
            url: shown.to_string(),
            reason: "the worker thread stopped without a result".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_operation_on_a_busy_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (started_tx, started) = mpsc::channel::<()>();
        let (release, release_rx) = mpsc::channel::<()>();
        let path = dir.path().to_path_buf();
        let first = std::thread::spawn(move || {
            run_with_timeout(&path, Stage::Push, "u", Duration::from_secs(10), move |_| {
                started_tx.send(()).unwrap();
                let _ = release_rx.recv();
                Ok(())
            })
        });
        started.recv().unwrap();
        let second = run_with_timeout(dir.path(), Stage::Push, "u", Duration::from_secs(1), |_| Ok(()));
        assert!(matches!(second, Err(Error::Busy { .. })), "{second:?}");
        let fetch = run_with_timeout(dir.path(), Stage::Fetch, "u", Duration::from_secs(1), |_| Ok(()));
        assert_eq!(
            fetch.unwrap_err().to_string(),
            "u: an earlier fetch of this source has not stopped yet"
        );
        release.send(()).unwrap();
        assert!(first.join().unwrap().is_ok());
        // Free again.
        run_with_timeout(dir.path(), Stage::Push, "u", Duration::from_secs(1), |_| Ok(())).unwrap();
    }

    #[test]
    fn an_operation_past_its_timeout_is_a_timeout_and_sees_the_interrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::channel::<bool>();
        let result: Result<(), Error> = run_with_timeout(
            dir.path(),
            Stage::Checkout,
            "u",
            Duration::from_millis(50),
            move |interrupt| {
                while !interrupt.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                let _ = tx.send(true);
                Ok(())
            },
        );
        assert!(matches!(result, Err(Error::Timeout { .. })));
        assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap());
        let other = tempfile::tempdir().unwrap();
        let fetch: Result<(), Error> = run_with_timeout(
            other.path(),
            Stage::Fetch,
            "u",
            Duration::from_millis(10),
            |interrupt| {
                while !interrupt.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Ok(())
            },
        );
        assert_eq!(
            fetch.unwrap_err().to_string(),
            "fetching u took longer than the timeout of 10ms"
        );
    }
}
