//! Logging: tracing to stderr (`text` or `json`, at the configured level),
//! and with `log-file` also to rolling files through a non-blocking writer.
//! `MOORING_LOG` (a level such as `debug`) overrides the configured level.
//! A one-shot verb whose results go to stdout (`once`) logs only warnings
//! to stderr unless asked with `-v` ([`Verbosity`]). Text logs on a
//! terminal share it with [`crate::progress`] lines.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogFormat, LogLevel, Rotation, Settings};

/// Keeps the file writer flushing; drop it last.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// How much goes to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// The configured level: the agent.
    Configured,
    /// `once` without `-v`: warnings, but not the failures of runs (the
    /// results on stdout carry them).
    Quiet,
    /// `-v`: the configured level; `-vv` debug; `-vvv` trace.
    Verbose(u8),
}

pub fn init(agent: &Settings) -> Guard {
    init_with(agent, Verbosity::Configured)
}

/// What stderr shows at `verbosity`; `MOORING_LOG` overrides it all.
fn stderr_filter(configured: LevelFilter, verbosity: Verbosity, env: Option<LevelFilter>) -> Targets {
    if let Some(level) = env {
        return Targets::new().with_default(level);
    }
    match verbosity {
        Verbosity::Configured | Verbosity::Verbose(0 | 1) => Targets::new().with_default(configured),
        Verbosity::Verbose(2) if configured == LevelFilter::TRACE => Targets::new().with_default(configured),
        Verbosity::Verbose(2) => Targets::new().with_default(LevelFilter::DEBUG),
        Verbosity::Verbose(_) => Targets::new().with_default(LevelFilter::TRACE),
        // The agent logs each failed run; `once` prints them as results.
        Verbosity::Quiet => Targets::new()
            .with_default(LevelFilter::WARN)
            .with_target("mooring::agent", LevelFilter::OFF),
    }
}

pub fn init_with(agent: &Settings, verbosity: Verbosity) -> Guard {
    let env = std::env::var("MOORING_LOG")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok());
    let configured = match agent.log.level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    };
    let level = env.unwrap_or(configured);
    let json = agent.log.format == LogFormat::Json;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    // Progress lines only where a person reads text logs.
    crate::progress::enable(!json);
    let stderr = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_target(false)
            .with_writer(crate::progress::Stderr::make)
            .boxed()
    };
    let mut guard = None;
    let file = agent.log_file.as_ref().and_then(|f| {
        let rotation = match f.rotate {
            Rotation::Hourly => tracing_appender::rolling::Rotation::HOURLY,
            Rotation::Daily => tracing_appender::rolling::Rotation::DAILY,
            Rotation::Never => tracing_appender::rolling::Rotation::NEVER,
        };
        let appender = tracing_appender::rolling::Builder::new()
            .rotation(rotation)
            .filename_prefix("mooring")
            .filename_suffix("log")
            .max_log_files(f.keep as usize)
            .build(&f.dir);
        match appender {
            Ok(a) => {
                let (writer, g) = tracing_appender::non_blocking(a);
                guard = Some(g);
                let layer = tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_writer(writer);
                Some(if json {
                    layer.json().boxed()
                } else {
                    layer.with_target(false).boxed()
                })
            }
            Err(e) => {
                eprintln!(
                    "warning: cannot write logs into {}: {e}; logging to stderr only",
                    f.dir.display()
                );
                None
            }
        }
    });
    let _ = tracing_subscriber::registry()
        .with(stderr.with_filter(stderr_filter(configured, verbosity, env)))
        .with(file.map(|l| l.with_filter(level)))
        .try_init();
    Guard(guard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    fn shows(t: &Targets, target: &str, level: Level) -> bool {
        t.would_enable(target, &level)
    }

    #[test]
    fn verbosity_levels() {
        let info = LevelFilter::INFO;
        let quiet = stderr_filter(info, Verbosity::Quiet, None);
        assert!(shows(&quiet, "mooring::render", Level::WARN));
        assert!(!shows(&quiet, "mooring::render", Level::INFO));
        assert!(!shows(&quiet, "mooring::agent", Level::ERROR));
        let v = stderr_filter(info, Verbosity::Verbose(1), None);
        assert!(shows(&v, "mooring::agent", Level::INFO));
        assert!(!shows(&v, "mooring::agent", Level::DEBUG));
        let vv = stderr_filter(info, Verbosity::Verbose(2), None);
        assert!(shows(&vv, "mooring::agent", Level::DEBUG));
        assert!(!shows(&vv, "mooring::agent", Level::TRACE));
        let vvv = stderr_filter(LevelFilter::WARN, Verbosity::Verbose(3), None);
        assert!(shows(&vvv, "mooring::source", Level::TRACE));
        // MOORING_LOG wins, quiet or not.
        let env = stderr_filter(info, Verbosity::Quiet, Some(LevelFilter::DEBUG));
        assert!(shows(&env, "mooring::agent", Level::DEBUG));
    }
}
