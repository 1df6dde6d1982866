//! Progress lines on a terminal for long work: a download, an apply of many
//! objects, a registry scan. A task is started with [`start`] and fed with
//! [`Task::set`] / [`Task::inc`] from any thread; one line on stderr shows
//! the oldest running task (and how many others run), redrawn a few times a
//! second and erased when no task runs. A task that ends within
//! [`DELAY`] never shows.
//!
//! Nothing is drawn unless the command line called [`enable`] — it does so
//! only when stderr is a terminal and logs are text, not JSON — so the
//! agent under systemd, in a pod or in tests writes nothing extra. Log
//! lines go through [`Stderr`], which erases the progress line before the
//! log line and lets the next tick redraw it below.
//!
//! A leaf: it imports nothing of mooring. Another progress API plugs in by
//! forwarding to a [`Task`]. gix's (prodash's `Progress` + `Count`):
//! `init(max, unit)` → [`Task::set_total`], `set(n)` → [`Task::set`],
//! `inc_by(n)` → [`Task::inc`], `set_name` → [`Task::set_label`], and
//! `counter()` → [`Task::counter`], the very counter that is drawn (the
//! same `Arc<AtomicUsize>` type as prodash's `StepShared`, which gix
//! increments directly while it receives a pack).

use std::io::{IsTerminal as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a task runs before its line appears.
pub const DELAY: Duration = Duration::from_millis(800);
const TICK: Duration = Duration::from_millis(150);
/// `total` of a task whose size is unknown.
const UNKNOWN: u64 = u64::MAX;

/// What a task counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    /// Things, named in the plural: "objects", "tags".
    Items(&'static str),
}

/// A running task; its line goes when it is dropped.
pub struct Task {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    label: Mutex<String>,
    unit: Unit,
    done: Arc<AtomicUsize>,
    total: AtomicU64,
    started: Instant,
}

#[derive(Default)]
struct Screen {
    tasks: Vec<Arc<Inner>>,
    /// A progress line is on the terminal now.
    shown: bool,
    ticking: bool,
}

static ENABLED: AtomicBool = AtomicBool::new(false);

fn screen() -> MutexGuard<'static, Screen> {
    static SCREEN: OnceLock<Mutex<Screen>> = OnceLock::new();
    SCREEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Draw progress from now on if `on` and stderr is a terminal.
pub fn enable(on: bool) {
    ENABLED.store(on && std::io::stderr().is_terminal(), Ordering::SeqCst);
}

/// Start a task named `label` (such as "pulling oci source/charts"),
/// counting in `unit`, of `total` if known.
pub fn start(label: impl Into<String>, unit: Unit, total: Option<u64>) -> Task {
    if !ENABLED.load(Ordering::Relaxed) {
        return Task { inner: None };
    }
    let inner = Arc::new(Inner {
        label: Mutex::new(label.into()),
        unit,
        done: Arc::new(AtomicUsize::new(0)),
        total: AtomicU64::new(total.unwrap_or(UNKNOWN)),
        started: Instant::now(),
    });
    let mut s = screen();
    s.tasks.push(inner.clone());
    if !s.ticking {
        // One drawing thread while tasks run; it ends when none is left.
        s.ticking = std::thread::Builder::new()
            .name("progress".into())
            .spawn(tick)
            .is_ok();
    }
    Task { inner: Some(inner) }
}

impl Task {
    pub fn set(&self, done: u64) {
        if let Some(i) = &self.inner {
            i.done
                .store(usize::try_from(done).unwrap_or(usize::MAX), Ordering::Relaxed);
        }
    }

    pub fn inc(&self, by: u64) {
        if let Some(i) = &self.inner {
            i.done
                .fetch_add(usize::try_from(by).unwrap_or(usize::MAX), Ordering::Relaxed);
        }
    }

    /// The count as a shared counter, for a caller that counts on its own
    /// (gix's `Count::counter`); a task that is not drawn gives a counter
    /// nobody reads.
    pub fn counter(&self) -> Arc<AtomicUsize> {
        match &self.inner {
            Some(i) => i.done.clone(),
            None => Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn set_total(&self, total: Option<u64>) {
        if let Some(i) = &self.inner {
            i.total.store(total.unwrap_or(UNKNOWN), Ordering::Relaxed);
        }
    }

    pub fn set_label(&self, label: impl Into<String>) {
        if let Some(i) = &self.inner {
            *i.label.lock().unwrap_or_else(PoisonError::into_inner) = label.into();
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        let mut s = screen();
        s.tasks.retain(|t| !Arc::ptr_eq(t, &inner));
        if s.tasks.is_empty() && s.shown {
            erase(&mut s);
        }
    }
}

fn erase(s: &mut Screen) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(b"\r\x1b[2K");
    let _ = err.flush();
    s.shown = false;
}

fn tick() {
    loop {
        std::thread::sleep(TICK);
        let mut s = screen();
        if s.tasks.is_empty() {
            s.ticking = false;
            return;
        }
        let Some(first) = s.tasks.iter().find(|t| t.started.elapsed() >= DELAY).cloned() else {
            continue;
        };
        let others = s.tasks.len() - 1;
        let label = first.label.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let total = first.total.load(Ordering::Relaxed);
        let line = render(
            &label,
            first.unit,
            first.done.load(Ordering::Relaxed) as u64,
            (total != UNKNOWN).then_some(total),
            first.started.elapsed(),
            others,
            width(),
        );
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
        s.shown = true;
    }
}

/// The terminal's width in columns: `$COLUMNS`, else what the terminal
/// says, else 80.
fn width() -> usize {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return c;
    }
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

/// One progress line, at most `width` characters:
/// `pulling oci source/charts  12.0 MiB / 40.0 MiB  30%  2.4 MiB/s  (+1 more)`.
pub fn render(
    label: &str,
    unit: Unit,
    done: u64,
    total: Option<u64>,
    elapsed: Duration,
    others: usize,
    width: usize,
) -> String {
    let amount = |n: u64| match unit {
        Unit::Bytes => bytes(n),
        Unit::Items(_) => n.to_string(),
    };
    let mut stats = amount(done);
    match total {
        Some(t) if t > 0 => {
            let pct = (done.min(t) as u128 * 100 / t as u128) as u64;
            stats.push_str(&format!(" / {}", amount(t)));
            if let Unit::Items(what) = unit {
                stats.push_str(&format!(" {what}"));
            }
            stats.push_str(&format!("  {pct}%"));
        }
        _ => {
            if let Unit::Items(what) = unit {
                stats.push_str(&format!(" {what}"));
            }
        }
    }
    let secs = elapsed.as_secs_f64();
    if unit == Unit::Bytes && secs >= 1.0 {
        stats.push_str(&format!("  {}/s", bytes((done as f64 / secs) as u64)));
    }
    stats.push_str(&format!("  {}s", elapsed.as_secs()));
    if others > 0 {
        stats.push_str(&format!("  (+{others} more)"));
    }
    // The numbers stay; the label gives way. The last column stays free:
    // a full line makes some terminals wrap.
    let room = width.saturating_sub(1 + 2 + stats.chars().count());
    let label = if label.chars().count() <= room {
        label.to_string()
    } else {
        label.chars().take(room.saturating_sub(1)).collect::<String>() + "…"
    };
    let line = format!("{label}  {stats}");
    if line.chars().count() >= width {
        return line.chars().take(width.saturating_sub(1)).collect();
    }
    line
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// The logs' stderr: erases a progress line before writing, so that log
/// lines and the progress line never share a line. A
/// `tracing_subscriber` writer (`MakeWriter`) as `fn() -> Stderr`.
pub struct Stderr;

impl Stderr {
    pub fn make() -> Stderr {
        Stderr
    }
}

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if ENABLED.load(Ordering::Relaxed) {
            let mut s = screen();
            if s.shown {
                erase(&mut s);
            }
            // Written while the screen is held: no progress line in between.
            return std::io::stderr().lock().write(buf);
        }
        std::io::stderr().lock().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_bytes_and_items() {
        let mib = 1024 * 1024;
        assert_eq!(
            render(
                "pulling oci source/charts",
                Unit::Bytes,
                12 * mib,
                Some(40 * mib),
                Duration::from_secs(5),
                0,
                200
            ),
            "pulling oci source/charts  12.0 MiB / 40.0 MiB  30%  2.4 MiB/s  5s"
        );
        assert_eq!(
            render(
                "applying app/web",
                Unit::Items("objects"),
                120,
                Some(3000),
                Duration::from_millis(2500),
                2,
                200
            ),
            "applying app/web  120 / 3000 objects  4%  2s  (+2 more)"
        );
        assert_eq!(
            render(
                "scanning image/podinfo",
                Unit::Items("tags"),
                300,
                None,
                Duration::from_millis(900),
                0,
                200
            ),
            "scanning image/podinfo  300 tags  0s"
        );
        assert_eq!(
            render("downloading", Unit::Bytes, 512, None, Duration::ZERO, 0, 200),
            "downloading  512 B  0s"
        );
        // More done than announced reads as 100%, not more.
        assert!(render("x", Unit::Bytes, 50, Some(10), Duration::ZERO, 0, 200).contains("100%"));
    }

    #[test]
    fn lines_fit_the_terminal() {
        let line = render(
            "pulling oci source/a-very-long-name-indeed",
            Unit::Bytes,
            1 << 30,
            Some(1 << 32),
            Duration::from_secs(100),
            3,
            30,
        );
        assert_eq!(line.chars().count(), 29, "{line}");
        let wide = render(
            "pulling oci source/a-very-long-name-indeed",
            Unit::Bytes,
            1 << 30,
            Some(1 << 32),
            Duration::from_secs(100),
            0,
            60,
        );
        // The numbers stay whole; the label is cut.
        assert_eq!(
            wide, "pulling oci sour…  1.0 GiB / 4.0 GiB  25%  10.2 MiB/s  100s",
            "{wide}"
        );
    }

    #[test]
    fn a_shared_counter_is_the_count_drawn() {
        let inner = Arc::new(Inner {
            label: Mutex::new("receiving pack".into()),
            unit: Unit::Bytes,
            done: Arc::new(AtomicUsize::new(0)),
            total: AtomicU64::new(UNKNOWN),
            started: Instant::now(),
        });
        let task = Task {
            inner: Some(inner.clone()),
        };
        task.counter().fetch_add(7, Ordering::Relaxed);
        task.inc(3);
        assert_eq!(inner.done.load(Ordering::Relaxed), 10);
        task.set(4);
        assert_eq!(task.counter().load(Ordering::Relaxed), 4);
    }

    /// Without a terminal (the tests' stderr is a pipe or a file),
    /// `enable` keeps progress off and a task registers nothing.
    #[test]
    fn nothing_without_a_terminal() {
        if std::io::stderr().is_terminal() {
            return;
        }
        enable(true);
        assert!(!ENABLED.load(Ordering::SeqCst));
        let task = start("fetching", Unit::Bytes, Some(10));
        task.inc(5);
        assert!(task.inner.is_none());
        assert!(screen().tasks.is_empty());
        assert!(!screen().shown);
    }
}
