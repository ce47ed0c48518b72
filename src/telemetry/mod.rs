//! Logs and traces. [`init`] installs the log subscriber (the tools, the
//! tests with `TEST_LOG=1`); [`init_service`] does the same for `serve` and
//! `router` and, when [`TraceSettings::otlp_endpoint`] is set, adds the
//! OpenTelemetry bridge ([`otel`], feature `otel`) that sends the service's
//! spans over OTLP/HTTP.
//!
//! The spans themselves are ordinary `tracing` spans where the work is done
//! (the request span in `api`/`router`, `embed`, `search.rank`,
//! `context.write`, the Redis calls): [`propagation`] joins a request to
//! its caller's trace and hands the trace to the shards. Spans meant for
//! traces only are at DEBUG level, so with the default `info` log filter and
//! no exporter they are disabled at their call site and cost a load and a
//! branch.

pub mod propagation;

#[cfg(feature = "otel")]
pub mod otel;

use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer, Registry};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One compact human-readable line per event.
    Pretty,
    /// One JSON object per event, fields flattened (for log shippers).
    Json,
}

/// Where traces go: from the standard OpenTelemetry variables (see
/// `config::LogArgs`), so an operator's usual set-up works unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceSettings {
    /// The OTLP/HTTP base URL (`/v1/traces` is appended); `None`: traces off.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the spans; `None`: the command's own default.
    pub service_name: Option<String>,
}

/// A layer of the one global subscriber, whatever its concrete type.
type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber, logs only. A second call is a no-op
/// (tests call it per test). `color`: ANSI colours in pretty logs, for a
/// terminal only (see `config::stderr_color`): a log file must not fill
/// with escape codes.
pub fn init(filter: &str, format: LogFormat, color: bool) {
    let _ = Registry::default().with(log_layer(filter, format, color)).try_init();
}

/// The log layer, with its own filter: the trace layer sees spans the logs
/// do not (DEBUG spans under an `info` filter), and log lines stay as they
/// were, each naming the nearest span the filter lets through.
fn log_layer(filter: &str, format: LogFormat, color: bool) -> BoxedLayer {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let layer = fmt::layer().with_writer(std::io::stderr).with_ansi(color);
    match format {
        LogFormat::Json => layer.json().flatten_event(true).with_filter(filter).boxed(),
        LogFormat::Pretty => layer.compact().with_filter(filter).boxed(),
    }
}

/// What [`init_service`] started; [`Telemetry::shutdown`] sends the spans
/// still queued before the process exits.
#[derive(Debug, Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    traces: Option<otel::Traces>,
}

impl Telemetry {
    /// Flushes and stops the trace exporter, if any (bounded: see
    /// `otel::Traces::shutdown`). Logs need nothing.
    pub async fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(traces) = self.traces {
            traces.shutdown().await;
        }
    }
}

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter refused its configuration (a malformed endpoint URL).
    #[error("OTEL_EXPORTER_OTLP_ENDPOINT {endpoint:?}: {reason}")]
    Exporter { endpoint: String, reason: String },
}

/// Logs as [`init`], plus traces over OTLP/HTTP when `traces` names an
/// endpoint (`default_service`: `service.name` unless OTEL_SERVICE_NAME
/// says otherwise). Must run inside the Tokio runtime that serves: the
/// exporter sends through it.
///
/// # Errors
/// [`TelemetryError`] when the exporter cannot be built from `traces`.
pub fn init_service(
    filter: &str,
    format: LogFormat,
    color: bool,
    traces: &TraceSettings,
    default_service: &'static str,
) -> Result<Telemetry, TelemetryError> {
    let Some(endpoint) = &traces.otlp_endpoint else {
        init(filter, format, color);
        return Ok(Telemetry::default());
    };
    #[cfg(feature = "otel")]
    {
        let service = traces.service_name.clone().unwrap_or_else(|| default_service.to_owned());
        let (traces, layer) = otel::start(endpoint, service)?;
        let layers: Vec<BoxedLayer> = vec![log_layer(filter, format, color), layer];
        if Registry::default().with(layers).try_init().is_ok() {
            propagation::enable();
            tracing::info!(endpoint = %endpoint, "traces sent over OTLP/HTTP");
        }
        Ok(Telemetry { traces: Some(traces) })
    }
    #[cfg(not(feature = "otel"))]
    {
        let _ = default_service;
        init(filter, format, color);
        tracing::warn!(endpoint = %endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT is set but this build has no `otel` feature; no traces are sent");
        Ok(Telemetry::default())
    }
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
