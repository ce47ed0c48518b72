//! Log set-up. Called once from `main` (and by tests when `TEST_LOG=1`).

use tracing_subscriber::{fmt, EnvFilter};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One compact human-readable line per event.
    Pretty,
    /// One JSON object per event, fields flattened (for log shippers).
    Json,
}

/// Installs the global subscriber. A second call is a no-op (tests call it
/// per test). `color`: ANSI colours in pretty logs, for a terminal only
/// (see `config::stderr_color`): a log file must not fill with escape codes.
pub fn init(filter: &str, format: LogFormat, color: bool) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(color);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// An error's sources joined with ": " (the error itself excluded), for the
/// `error.cause_chain` log field and readiness details.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
