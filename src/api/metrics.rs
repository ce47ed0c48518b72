//! `GET /metrics`: Prometheus text exposition, rendered by our own route
//! (the exporter runs no listener of its own).
//!
//! Two kinds of series. Request counters and latency histograms are recorded
//! as they happen through the `metrics` facade ([`track`], the search
//! handler). Everything the service already counts elsewhere (documents,
//! reloads, skipped keys, context writes, Redis errors) is copied from
//! `RefreshStatus`, `ContextStats`, the index and the query-embedding cache
//! at scrape time, so there is one source of truth per number.
//!
//! The recorder is process-global (the `metrics` facade allows one). Several
//! apps in one process, as in tests, share it; the scrape-time series then
//! describe whichever app was scraped last.

use std::{
    sync::{atomic::Ordering, OnceLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{header, Method},
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;
use crate::index::now_ms;

/// Content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets, in seconds: from a cached small scan to a slow text query.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nobody
/// scrapes: the recorder keeps every sample until upkeep runs, so without
/// this a deployment that never scrapes grows ~32 bytes per request forever
/// (issue 16).
pub const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds pending histogram samples into their buckets every [`UPKEEP_EVERY`]
/// until `cancel` fires. Spawned by `app.rs`.
pub async fn run_upkeep(cancel: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = every.tick() => handle().run_upkeep(),
        }
    }
}

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .expect("LATENCY_BUCKETS is a non-empty constant")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only scrape-time series");
        }
        handle
    })
}

/// Middleware: counts each request by matched route and status, and times it.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    // The route template, never the raw path: ids in paths would explode the label set.
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    histogram!("http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!("http_requests_total", "method" => method, "route" => route, "status" => status).increment(1);
    response
}

/// The method as a label; extension methods (any token a client sends)
/// become `other`, so clients cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Records one scan's duration (search handler).
pub fn record_search(seconds: f64) {
    histogram!("semsearch_search_duration_seconds").record(seconds);
}

/// Prometheus metrics of this process.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4; series are listed in docs/api.md", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let handle = handle();
    copy_counters(&state);
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render())
}

/// Copies the counters other modules own into the recorder.
fn copy_counters(state: &AppState) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    gauge!("semsearch_searches_in_flight").set(state.searches.in_use() as f64);
    gauge!("semsearch_searches_limit").set(state.searches.limit() as f64);
    let s = &state.refresh.status;
    counter!("semsearch_reloads_total").absolute(load(&s.reloads));
    counter!("semsearch_reload_failures_total").absolute(load(&s.reload_failures));
    counter!("semsearch_docs_changed_total", "change" => "added").absolute(load(&s.docs_added));
    counter!("semsearch_docs_changed_total", "change" => "updated").absolute(load(&s.docs_updated));
    counter!("semsearch_docs_changed_total", "change" => "removed").absolute(load(&s.docs_removed));
    gauge!("semsearch_redis_empty").set(f64::from(u8::from(s.redis_empty.load(Ordering::Relaxed))));
    let mut redis_errors = vec![("reload", load(&s.reload_failures))];
    match state.index.current() {
        Some(index) => {
            gauge!("semsearch_ready").set(1.0);
            gauge!("semsearch_documents").set(index.len() as f64);
            gauge!("semsearch_dimension").set(index.dim() as f64);
            gauge!("semsearch_index_bytes").set(index.matrix_bytes() as f64);
            gauge!("semsearch_metadata_bytes").set(index.metadata_bytes() as f64);
            gauge!("semsearch_index_version").set(index.version() as f64);
            gauge!("semsearch_expired_pending").set(index.expired_count(now_ms()) as f64);
            if let Some((_, report)) = s.load_report() {
                for (reason, n) in report.skipped.by_name() {
                    gauge!("semsearch_skipped_keys", "reason" => reason).set(n as f64);
                }
            }
        }
        None => gauge!("semsearch_ready").set(0.0),
    }
    if let Some(contexts) = &state.contexts {
        let c = &contexts.stats;
        for (outcome, n) in [
            ("written", load(&c.written)),
            ("dropped", load(&c.dropped)),
            ("too_large", load(&c.too_large)),
            ("stale", load(&c.stale)),
            ("failed", load(&c.failed)),
            ("purged", load(&c.purged)),
        ] {
            counter!("semsearch_context_writes_total", "outcome" => outcome).absolute(n);
        }
        redis_errors.push(("context_write", load(&c.failed)));
    }
    if let Some(embedder) = &state.embedder {
        let c = embedder.counts();
        counter!("semsearch_query_embeddings_total", "source" => "lru").absolute(c.lru_hits);
        counter!("semsearch_query_embeddings_total", "source" => "redis").absolute(c.redis_hits);
        counter!("semsearch_query_embeddings_total", "source" => "provider").absolute(c.provider_calls);
        redis_errors.push(("query_cache", c.redis_errors));
    }
    for (source, n) in redis_errors {
        counter!("semsearch_redis_errors_total", "source" => source).absolute(n);
    }
}
