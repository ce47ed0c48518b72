//! `GET /metrics`: Prometheus text exposition, rendered by our own route
//! (the exporter runs no listener of its own).
//!
//! Three kinds of series. Request counters and latency histograms are
//! recorded as they happen through the `metrics` facade ([`track`], the
//! search handler, and `embed::providers` for the embedder's latency).
//! Everything the service already counts elsewhere (documents, reloads,
//! skipped keys, context writes, Redis errors) is copied from
//! `RefreshStatus`, `ContextStats`, the index and the query-embedding cache
//! at scrape time, so there is one source of truth per number. The
//! `process_*` families are read at scrape time and appended to the text
//! (`process`, which says why they bypass the facade).
//!
//! The dashboards and alert rules in `deploy/` query these names; a test
//! (`tests/api/operations.rs`) fails when one of theirs is not exposed here.
//!
//! The recorder is process-global (the `metrics` facade allows one). Several
//! apps in one process, as in tests, share it; the scrape-time series then
//! describe whichever app was scraped last.

use crate::query::dto::SearchMode;
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
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::AppState;
use crate::{index::now_ms, refresh::FeedState};

/// Content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets, in seconds: from a 2k-document scan (tens of µs) to a
/// slow text query. The old smallest bucket, 0.5 ms, held 71% of searches
/// at 2k-10k documents, so p50/p95 could not be read (issue 15).
const LATENCY_BUCKETS: &[f64] = &[
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Buckets of `semsearch_rescored_rows`: rows rescored in f32 by one query
/// the int8 pass answered. Measured on 100k-1M rows: a median of 12-29 at
/// k = 10 and about k + 20 for larger k, so the buckets are dense up to a
/// few hundred and then only mark orders of magnitude.
const RESCORED_ROWS_BUCKETS: &[f64] =
    &[0.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0, 200.0, 500.0, 1_000.0, 10_000.0, 100_000.0];

/// Every series this module writes, with its `# HELP` text. Registered at
/// start so each is described, and the unlabelled counters exist at 0
/// before their first event (`rate()` and absence alerts need that).
const SERIES: &[(&str, Kind, &str)] = &[
    ("http_requests_total", Kind::Counter, "HTTP requests answered, by method, route (as in the spec) and status."),
    ("http_request_duration_seconds", Kind::Histogram, "Time to answer an HTTP request, by method and route."),
    ("semsearch_search_duration_seconds", Kind::Histogram, "Time of one scan (single, coalesced or batch)."),
    (
        "semsearch_rescored_rows",
        Kind::Histogram,
        "Rows rescored in f32 per query answered by the int8 pass (SEMSEARCH_SCAN); fallbacks are in semsearch_scan_queries_total.",
    ),
    (
        "semsearch_scan_queries_total",
        Kind::Counter,
        "Queries by how they were scanned: f32 (an f32 snapshot), int8 (the int8 pass), or an int8 snapshot's fallback to the f32 scan by reason.",
    ),
    ("semsearch_searches_rejected_total", Kind::Counter, "Searches refused with 503 overloaded (all slots busy)."),
    ("semsearch_searches_in_flight", Kind::Gauge, "Searches running now."),
    ("semsearch_searches_limit", Kind::Gauge, "Searches allowed at once (SEMSEARCH_MAX_CONCURRENT_SEARCHES)."),
    ("semsearch_reloads_total", Kind::Counter, "Full reloads published."),
    ("semsearch_reload_failures_total", Kind::Counter, "Full reloads that failed (the previous index kept serving)."),
    ("semsearch_docs_changed_total", Kind::Counter, "Documents changed by per-key updates, by change."),
    ("semsearch_redis_empty", Kind::Gauge, "1 while Redis holds no embeddings and the last index serves."),
    ("semsearch_ready", Kind::Gauge, "1 once an index is loaded."),
    (
        "semsearch_change_feed_state",
        Kind::Gauge,
        "1 for the change feed's state (tracking, connecting, reconnecting, unavailable), 0 for the others.",
    ),
    ("semsearch_documents", Kind::Gauge, "Documents in the published index."),
    ("semsearch_dimension", Kind::Gauge, "Vector dimension of the published index."),
    ("semsearch_index_bytes", Kind::Gauge, "Bytes of the vector matrix."),
    ("semsearch_int8_bytes", Kind::Gauge, "Bytes of the int8 copy of the vectors (0 when the index scans f32)."),
    ("semsearch_metadata_bytes", Kind::Gauge, "Bytes of ids, URLs, titles and texts."),
    (
        "semsearch_spare_matrix_bytes",
        Kind::Gauge,
        "Bytes of a retired vector matrix and int8 copy kept resident for the next reload to write into.",
    ),
    ("semsearch_index_version", Kind::Gauge, "Version of the published index; grows on every reload or update."),
    ("semsearch_expired_pending", Kind::Gauge, "Documents past their Redis deadline, hidden until dropped."),
    ("semsearch_skipped_keys", Kind::Gauge, "Keys the last full load skipped, by reason."),
    ("semsearch_context_writes_total", Kind::Counter, "Context writes (cache:context:*), by outcome."),
    ("semsearch_query_embeddings_total", Kind::Counter, "Question embeddings, by where they came from."),
    (
        "semsearch_redis_evicted_keys_total",
        Kind::Counter,
        "Keys Redis has evicted (its INFO evicted_keys, summed over primaries); must stay flat.",
    ),
    ("semsearch_redis_used_memory_bytes", Kind::Gauge, "Redis used_memory (the fullest primary's), read every SEMSEARCH_REDIS_MEMORY_CHECK_SECS."),
    ("semsearch_redis_maxmemory_bytes", Kind::Gauge, "Redis maxmemory (0: no limit)."),
    (
        "semsearch_redis_memory_headroom_bytes",
        Kind::Gauge,
        "maxmemory - used_memory of the fullest primary; -1 without maxmemory.",
    ),
    (
        "semsearch_redis_writes_held",
        Kind::Gauge,
        "1 while our writes (contexts, cached question embeddings) are skipped so Redis does not evict under an evicting policy.",
    ),
    (
        "semsearch_requests_refused_total",
        Kind::Counter,
        "Requests (HTTP/1 or HTTP/2 streams) refused with 503 overloaded: every request slot was taken.",
    ),
    (
        "semsearch_embed_questions_refused_total",
        Kind::Counter,
        "Text questions refused with 503 overloaded: the local model could not start them within SEMSEARCH_EMBEDDER_QUESTION_WAIT_MS.",
    ),
    ("semsearch_redis_errors_total", Kind::Counter, "Redis errors, by the part that met them."),
    ("semsearch_last_reload_timestamp_seconds", Kind::Gauge, "Unix time the last full reload was published."),
    (
        "semsearch_build_info",
        Kind::Gauge,
        "1 for the labels in use (build, kernel, int8 kernel, scan of the published index), 0 for a scan no longer in use.",
    ),
    (
        "semsearch_embed_duration_seconds",
        Kind::Histogram,
        "Time of one call into the embedder (retries included), by provider and call: single (a question) or batch (POST /v1/embed).",
    ),
];

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Describes every series and creates the ones that must exist at 0.
fn register() {
    for &(name, kind, help) in SERIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
    counter!("semsearch_searches_rejected_total").absolute(0);
    counter!("semsearch_requests_refused_total").absolute(0);
    counter!("semsearch_embed_questions_refused_total").absolute(0);
    counter!("semsearch_reloads_total").absolute(0);
    counter!("semsearch_reload_failures_total").absolute(0);
    for path in SCAN_PATHS {
        counter!("semsearch_scan_queries_total", "path" => path).absolute(0);
    }
    for source in ["lru", "redis", "provider"] {
        counter!("semsearch_query_embeddings_total", "source" => source).absolute(0);
    }
}

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
            .set_buckets_for_metric(Matcher::Full("semsearch_rescored_rows".into()), RESCORED_ROWS_BUCKETS)
            .expect("RESCORED_ROWS_BUCKETS is a non-empty constant")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only scrape-time series");
        }
        register();
        handle
    })
}

/// Middleware: counts each request by matched route and status, and times it.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    // The route template, never the raw path: ids in paths would explode the
    // label set. Written as the spec writes it: axum's `{*id}` is `{id}`.
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().replace("{*", "{"));
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
pub fn record_search(mode: SearchMode, seconds: f64) {
    histogram!("semsearch_search_duration_seconds", "mode" => mode.as_str()).record(seconds);
}

/// Records the rows one query rescored in f32 after the int8 pass (search
/// handlers; not called for f32 snapshots or fallbacks to the f32 scan).
pub fn record_rescored(rows: usize) {
    histogram!("semsearch_rescored_rows").record(rows as f64);
}

/// The `path` labels of `semsearch_scan_queries_total`.
const SCAN_PATHS: [&str; 5] =
    ["f32", "int8", "fallback_query_out_of_range", "fallback_large_k", "fallback_too_many_candidates"];

/// Every change-feed state with its `state` label (the names `/v1/stats`
/// uses), so each series exists from the first scrape and an alert can
/// compare `tracking` with 0 instead of testing for absence.
const FEED_STATES: [(FeedState, &str); 4] = [
    (FeedState::Tracking, "tracking"),
    (FeedState::Connecting, "connecting"),
    (FeedState::Reconnecting, "reconnecting"),
    (FeedState::Unavailable, "unavailable"),
];

/// The `scan` label last set to 1 on `semsearch_build_info`, so a change
/// (auto crossing its size rule) sets the old series to 0 instead of
/// leaving two at 1.
static BUILD_INFO_SCAN: std::sync::Mutex<Option<&'static str>> = std::sync::Mutex::new(None);

fn set_build_info(scan: &'static str) {
    let build_info = |scan: &'static str| {
        gauge!(
            "semsearch_build_info",
            "version" => crate::build_info::VERSION,
            "git_sha" => crate::build_info::GIT_SHA,
            "kernel" => semsearch_scan::kernel::name(),
            "int8_kernel" => semsearch_scan::int8::kernel::active().name(),
            "scan" => scan
        )
    };
    // The guarded value is a plain Option; a panic elsewhere cannot leave it half-written.
    let mut last = BUILD_INFO_SCAN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(old) = last.filter(|old| *old != scan) {
        build_info(old).set(0.0);
    }
    build_info(scan).set(1.0);
    *last = Some(scan);
}

/// Prometheus metrics of this process.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "get_metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4; series are listed in docs/api-and-filters.md", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let handle = handle();
    copy_counters(&state);
    handle.run_upkeep();
    let mut body = handle.render();
    process::render(&mut body, &metrics_process::collector::collect());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

/// Copies the counters other modules own into the recorder.
fn copy_counters(state: &AppState) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    gauge!("semsearch_searches_in_flight").set(state.searches.in_use() as f64);
    gauge!("semsearch_searches_limit").set(state.searches.limit() as f64);
    counter!("semsearch_searches_rejected_total").absolute(state.searches.rejected());
    counter!("semsearch_requests_refused_total").absolute(super::server::requests_refused());
    let s = &state.refresh.status;
    counter!("semsearch_reloads_total").absolute(load(&s.reloads));
    counter!("semsearch_reload_failures_total").absolute(load(&s.reload_failures));
    counter!("semsearch_docs_changed_total", "change" => "added").absolute(load(&s.docs_added));
    counter!("semsearch_docs_changed_total", "change" => "updated").absolute(load(&s.docs_updated));
    counter!("semsearch_docs_changed_total", "change" => "removed").absolute(load(&s.docs_removed));
    gauge!("semsearch_redis_empty").set(f64::from(u8::from(s.redis_empty.load(Ordering::Relaxed))));
    let feed = s.change_feed();
    for (state, name) in FEED_STATES {
        gauge!("semsearch_change_feed_state", "state" => name).set(f64::from(u8::from(state == feed)));
    }
    if let Some(at) = s.last_reload().and_then(|r| humantime::parse_rfc3339_weak(&r.finished_at).ok()) {
        let secs = at.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        gauge!("semsearch_last_reload_timestamp_seconds").set(secs);
    }
    let c = &state.scans;
    let fallbacks = [
        ("fallback_query_out_of_range", load(&c.fallback_query_out_of_range)),
        ("fallback_large_k", load(&c.fallback_large_k)),
        ("fallback_too_many_candidates", load(&c.fallback_too_many_candidates)),
    ];
    let int8_pass = load(&c.int8_queries).saturating_sub(fallbacks.iter().map(|(_, n)| n).sum());
    for (path, n) in [("f32", load(&c.f32_queries)), ("int8", int8_pass)].into_iter().chain(fallbacks) {
        counter!("semsearch_scan_queries_total", "path" => path).absolute(n);
    }
    let mut redis_errors = vec![("reload", load(&s.reload_failures))];
    let index = state.index.current();
    // Before the first load: what an index of this process's size rule would use is unknown; say f32.
    set_build_info(index.as_ref().map_or("f32", |i| i.scan().name()));
    gauge!("semsearch_spare_matrix_bytes").set(crate::index::spare::bytes() as f64);
    match index {
        Some(index) => {
            gauge!("semsearch_ready").set(1.0);
            gauge!("semsearch_documents").set(index.len() as f64);
            gauge!("semsearch_dimension").set(index.dim() as f64);
            gauge!("semsearch_index_bytes").set(index.matrix_bytes() as f64);
            gauge!("semsearch_int8_bytes").set(index.int8_bytes() as f64);
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
            ("memory_held", load(&c.memory_held)),
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

/// This process's own series, named and described as Prometheus's Go client
/// names them (so stock dashboards and alerts work unchanged), read by the
/// `metrics-process` crate. They are written here rather than through the
/// `metrics` facade, whose counters are integers: CPU time must keep its
/// fraction, or `rate(process_cpu_seconds_total[1m])` moves in steps of one
/// core-second. A value the platform cannot read is left out.
mod process {
    use std::fmt::Write as _;

    use metrics_process::collector::Metrics;

    /// Appends the `process_*` families to an exposition.
    pub fn render(out: &mut String, m: &Metrics) {
        let as_f64 = |v: Option<u64>| v.map(|v| v as f64);
        let series = [
            (
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
                m.cpu_seconds_total,
            ),
            ("process_open_fds", "gauge", "Number of open file descriptors.", as_f64(m.open_fds)),
            ("process_max_fds", "gauge", "Maximum number of open file descriptors.", as_f64(m.max_fds)),
            ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", as_f64(m.virtual_memory_bytes)),
            (
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
                as_f64(m.resident_memory_bytes),
            ),
            (
                "process_start_time_seconds",
                "gauge",
                "Start time of the process since unix epoch in seconds.",
                as_f64(m.start_time_seconds),
            ),
            ("process_threads", "gauge", "Number of OS threads in the process.", as_f64(m.threads)),
        ];
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        for (name, kind, help, value) in series {
            if let Some(value) = value.filter(|v| v.is_finite()) {
                writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}")
                    .expect("writing to a String cannot fail");
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn cpu_time_keeps_its_fraction_and_unread_values_are_left_out() {
            // Arrange
            let m = Metrics { cpu_seconds_total: Some(1.25), open_fds: Some(9), ..Metrics::default() };
            let mut out = String::from("up 1");

            // Act
            render(&mut out, &m);

            // Assert
            assert!(out.starts_with("up 1\n# HELP process_cpu_seconds_total "), "{out}");
            assert!(
                out.contains("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n"),
                "{out}"
            );
            assert!(out.contains("\nprocess_open_fds 9\n"), "{out}");
            assert!(!out.contains("process_threads"), "an unread value is absent, not 0:\n{out}");
        }

        #[test]
        fn this_process_reports_memory_open_files_and_start_time() {
            // Act
            let m = metrics_process::collector::collect();

            // Assert: Linux and macOS, the platforms we build for, read all three.
            assert!(m.resident_memory_bytes.is_some_and(|b| b > 0), "{m:?}");
            assert!(m.open_fds.is_some_and(|n| n > 0), "{m:?}");
            assert!(m.start_time_seconds.is_some_and(|t| t > 1_000_000_000), "{m:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_feed_labels_are_the_names_v1_stats_uses() {
        for (state, name) in FEED_STATES {
            assert_eq!(serde_json::to_value(state).ok(), Some(serde_json::Value::from(name)), "{state:?}");
        }
    }
}
