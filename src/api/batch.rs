//! `POST /v1/search/batch`: many queries, one pass over the matrix.
//!
//! Each query is validated exactly like a `/v1/search` body (same fields,
//! same error codes, `vector`, `text` or `id`) and answered with the same
//! result shape, in request order; each writes its context like a single
//! search. The scan reads every row once for the whole batch
//! ([`Index::search`], int8 or f32 as the snapshot was built) on rayon,
//! never on a tokio worker. The batch
//! size is capped by `SEMSEARCH_MAX_BATCH` so one request cannot hold a
//! rayon worker for an unbounded time. The body limit still applies: at
//! the default 1 MiB a body holds roughly 200-250 queries of 384 floats as
//! JSON, so raise `SEMSEARCH_MAX_BODY_BYTES` with a larger batch cap.

use std::{sync::Arc, time::Instant};

use axum::extract::State;

use super::{
    dto::{BatchRequest, BatchResponse},
    error::{ApiError, SearchErrors},
    extract::Json,
    query::{prepare, Prepared},
    search::{answer, counted, Spent},
    AppState,
};
use crate::index::{now_ms, Index, LiveQuery};
use semsearch_scan::ScanAnswer;

/// Many searches in one request and one pass over the matrix.
///
/// Each query is a `/v1/search` body and gets the answer it would get alone, in request order.
#[utoipa::path(
    post,
    path = "/v1/search/batch",
    operation_id = "search_batch",
    tag = "search",
    request_body = BatchRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One result list per query, in request order", body = BatchResponse),
        SearchErrors,
    )
)]
pub async fn search_batch(
    State(state): State<AppState>,
    Json(req): Json<BatchRequest>,
) -> Result<axum::Json<BatchResponse>, ApiError> {
    let started = Instant::now();
    let _permit = state.searches.try_acquire()?;
    let got = req.queries.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    let index = state.ready_index()?;
    let mut prepared = Vec::with_capacity(got);
    let mut failed = Vec::new();
    for (i, q) in req.queries.iter().enumerate() {
        match prepare(&state, &index, q).await {
            Ok(p) => prepared.push(p),
            Err(e) => failed.push((format!("/queries/{i}"), e)),
        }
    }
    if !failed.is_empty() {
        return Err(ApiError::BatchItems(failed));
    }
    let asked: usize = prepared.iter().map(|p| p.k).sum();
    if asked > state.budget.max_results {
        return Err(ApiError::TooManyResults { asked, max: state.budget.max_results });
    }
    let now = now_ms();
    let prepared = Arc::new(prepared);
    let scan_started = Instant::now();
    let hits = scan_batch(Arc::clone(&index), Arc::clone(&prepared), now).await?;
    super::metrics::record_search(scan_started.elapsed().as_secs_f64());
    let mut spent = Spent::default();
    let (mut results, mut fewer_results_reasons, mut contexts) =
        (Vec::with_capacity(got), Vec::with_capacity(got), Vec::with_capacity(got));
    for ((q, p), scanned) in req.queries.iter().zip(prepared.iter()).zip(hits) {
        let hits = counted(&state, scanned);
        let a = answer(&state, &index, q, p, &hits, &mut spent)?;
        results.push(a.results);
        fewer_results_reasons.push(a.fewer_results_reason);
        contexts.push(a.context);
    }
    Ok(axum::Json(BatchResponse {
        results,
        fewer_results_reasons,
        contexts,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
    }))
}

/// Runs the batch's live top-k on rayon and awaits it, keeping tokio
/// workers free (`Index::search`: unfiltered queries share one pass over
/// the matrix, each filtered one scans only its own rows).
async fn scan_batch(index: Arc<Index>, queries: Arc<Vec<Prepared>>, now: u64) -> Result<Vec<ScanAnswer>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let live: Vec<LiveQuery<'_>> = queries
            .iter()
            .map(|q| LiveQuery {
                vector: &q.vector,
                k: q.k,
                min_score: q.min_score,
                exclude: q.exclude_row,
                rows: q.rows.as_deref(),
            })
            .collect();
        let _ = tx.send(index.search(&live, now));
    });
    rx.await.map_err(|_| ApiError::Internal("batch search worker dropped its result".into()))
}
