//! The trace pipeline (feature `otel`): `tracing` spans → the
//! `tracing-opentelemetry` layer → a bounded batch processor → OTLP/HTTP
//! protobuf POSTed to `<endpoint>/v1/traces` through our own reqwest client.
//!
//! Owns the exporter's set-up and its transport; not which spans exist (they
//! are where the work is) nor the W3C headers (`super::propagation`).
//!
//! Invariants:
//! - A request never waits for the collector: ending a span is a `try_send`
//!   into the batch processor's queue (OTEL_BSP_MAX_QUEUE_SIZE, 2048 by
//!   default), which drops spans when full; exports run on the processor's
//!   own thread, each bounded by [`EXPORT_TIMEOUT`].
//! - Only spans of this crate are exported, no events: a log line may carry
//!   what a trace must not (and a collector is often another team's).

use std::time::Duration;

use async_trait::async_trait;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::{
    trace::{BatchSpanProcessor, SdkTracerProvider},
    Resource,
};
use tracing::Level;
use tracing_subscriber::{
    filter::{filter_fn, LevelFilter},
    Layer,
};

use super::{BoxedLayer, TelemetryError};

/// Longest one export may take (the OTLP default): connect, send, answer.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait at shutdown for the last spans to leave.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes read of a collector's answer (an `ExportTraceServiceResponse`
/// is a few bytes; anything larger is not one).
const MAX_ANSWER_BYTES: usize = 64 << 10;

/// The running pipeline; [`Traces::shutdown`] flushes it.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

/// The OTLP URL of traces under an OTLP/HTTP base URL, as the OpenTelemetry
/// specification builds it from OTEL_EXPORTER_OTLP_ENDPOINT: the base's
/// path, then `/v1/traces`.
///
/// # Errors
/// A reason when `endpoint` is not an http(s) URL with a host (`collector:4318`
/// without a scheme would fail at every export instead of at start-up).
pub fn traces_url(endpoint: &str) -> Result<String, &'static str> {
    let base = endpoint.trim().trim_end_matches('/');
    let rest = base.strip_prefix("http://").or_else(|| base.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(format!("{base}/v1/traces")),
        _ => Err("not an http:// or https:// URL with a host"),
    }
}

/// Starts the exporter and returns it with the layer that feeds it.
///
/// # Errors
/// [`TelemetryError::Exporter`] for an endpoint the exporter refuses.
pub(super) fn start(endpoint: &str, service: String) -> Result<(Traces, BoxedLayer), TelemetryError> {
    let refused = |reason: String| TelemetryError::Exporter { endpoint: endpoint.to_owned(), reason };
    let url = traces_url(endpoint).map_err(|why| refused(why.to_owned()))?;
    let client = ExportClient::new().map_err(|e| refused(e.to_string()))?;
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .map_err(|e| refused(e.to_string()))?;
    // The batch processor reads OTEL_BSP_* (queue size, delay, batch size).
    let processor = BatchSpanProcessor::builder(exporter).build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(Resource::builder().with_service_name(service).build())
        .build();
    let tracer = provider.tracer("semsearch");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(
            filter_fn(|meta| meta.is_span() && *meta.level() <= Level::DEBUG && meta.target().starts_with("semsearch"))
                // No TRACE callsite of any crate passes the global level check for this layer.
                .with_max_level_hint(LevelFilter::DEBUG),
        )
        .boxed();
    Ok((Traces { provider }, layer))
}

impl Traces {
    /// Sends what is queued and stops the processor's thread, waiting at most
    /// [`SHUTDOWN_TIMEOUT`] (an unreachable collector must not hold up a
    /// rolling restart).
    pub async fn shutdown(self) {
        let provider = self.provider;
        // Blocking: the processor's thread needs this runtime to send.
        let flush = tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT));
        match tokio::time::timeout(SHUTDOWN_TIMEOUT + Duration::from_secs(1), flush).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error.message = %e, "spans not sent at shutdown"),
            Ok(Err(_)) | Err(_) => tracing::warn!("spans not sent at shutdown: the exporter did not stop in time"),
        }
    }
}

/// The exporter's transport: our reqwest 0.12 client, driven by the
/// service's Tokio runtime. The batch processor calls it from its own
/// thread with a plain `block_on`, where reqwest cannot run, so each export
/// is spawned onto the runtime and awaited from there.
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    /// Must be called inside the runtime (see `super::init_service`).
    fn new() -> Result<Self, HttpError> {
        let runtime = tokio::runtime::Handle::try_current()?;
        let http = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .connect_timeout(EXPORT_TIMEOUT / 4)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { http, runtime })
    }
}

#[async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let mut answer = http.execute(request).await?;
            let mut body = Vec::new();
            while let Some(chunk) = answer.chunk().await? {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(HttpError::from(format!("collector answered more than {MAX_ANSWER_BYTES} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            let mut response = Response::builder().status(answer.status()).body(Bytes::from(body))?;
            *response.headers_mut() = std::mem::take(answer.headers_mut());
            Ok::<_, HttpError>(response)
        });
        sent.await.map_err(|e| Box::new(e) as HttpError)?
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn traces_url_appends_the_signal_path_to_the_base_and_its_path() {
        assert_eq!(traces_url("http://collector:4318").as_deref(), Ok("http://collector:4318/v1/traces"));
        assert_eq!(traces_url("http://collector:4318/").as_deref(), Ok("http://collector:4318/v1/traces"));
        assert_eq!(traces_url("https://gw.example/otlp/").as_deref(), Ok("https://gw.example/otlp/v1/traces"));
    }

    #[test]
    fn traces_url_refuses_what_is_not_an_http_url_with_a_host() {
        for bad in ["collector:4318", "grpc://collector:4317", "http://", "https:///v1", "", "   "] {
            assert!(traces_url(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
