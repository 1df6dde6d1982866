//! Logging: tracing to stderr (`text` or `json`, at the configured level),
//! and with `log-file` also to rolling files through a non-blocking writer.
//! `MOORING_LOG` (a level such as `debug`) overrides the configured level.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{Agent, LogFormat, LogLevel, Rotation};

/// Keeps the file writer flushing; drop it last.
pub struct Guard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

pub fn init(agent: &Agent) -> Guard {
    let level = std::env::var("MOORING_LOG")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(match agent.log.level {
            LogLevel::Trace => LevelFilter::TRACE,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Error => LevelFilter::ERROR,
        });
    let json = agent.log.format == LogFormat::Json;
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
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
            .with_writer(std::io::stderr)
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
        .with(stderr.with_filter(level))
        .with(file.map(|l| l.with_filter(level)))
        .try_init();
    Guard(guard)
}
