//! `POST /v1/search/batch`: many queries, one pass over the matrix.
//!
//! Each query is validated exactly like a `/v1/search` body (same fields,
//! same error codes, `vector`, `text` or `id`) and answered with the same
//! result shape, in request order; each writes its context like a single
//! search. The scan reads every row once for the whole batch
//! ([`search::top_k_batch`]) on rayon, never on a tokio worker. The batch
//! size is capped by `SEMSEARCH_MAX_BATCH` so one request cannot hold a
//! rayon worker for an unbounded time. The body limit still applies: at
//! the default 1 MiB a body holds roughly 200-250 queries of 384 floats as
//! JSON, so raise `SEMSEARCH_MAX_BODY_BYTES` with a larger batch cap.

use std::{sync::Arc, time::Instant};

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    error::{ApiError, Problem, PROBLEM_JSON},
    extract::Json,
    search::{
        answer, extra_candidates, keep_live, prepare, ContextRef, FewerReason, Prepared, SearchRequest, SearchResult,
    },
    AppState,
};
use crate::{
    index::{now_ms, Index},
    search::{self, BatchQuery, Hit},
};

/// Body of `POST /v1/search/batch`: each element is a `/v1/search` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"queries": [{"vector": [0.12, -0.03, 0.51], "k": 2}, {"id": "https://example.org/a", "k": 3}]}))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub queries: Vec<SearchRequest>,
}

/// Answers of a batch, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One list per query, in request order, each shaped like `/v1/search` results.
    pub results: Vec<Vec<SearchResult>>,
    /// Per query, why fewer than k results came back (null when k came back).
    pub fewer_results_reasons: Vec<Option<FewerReason>>,
    /// Per query, where its results were cached (null when context writes are off).
    pub contexts: Vec<Option<ContextRef>>,
    pub took_us: u64,
    pub index_version: u64,
}

#[utoipa::path(
    post,
    path = "/v1/search/batch",
    operation_id = "search_batch",
    tag = "search",
    request_body = BatchRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One result list per query, in request order", body = BatchResponse),
        (status = 400, description = "`invalid_json`", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "`unauthorized`: API keys are configured and none was sent", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "`document_not_found`: an `id` query names no live document", body = Problem, content_type = PROBLEM_JSON),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`invalid_batch_size`, or a query of the wrong shape: see `code`", body = Problem, content_type = PROBLEM_JSON),
        (status = 502, description = "`embedder_failed` or `embedder_wrong_dimension` (text queries)", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "`not_ready`, `overloaded` or `timeout`; see Retry-After", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        (status = 504, description = "`embedder_timeout` (text queries)", body = Problem, content_type = PROBLEM_JSON),
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
    for q in &req.queries {
        prepared.push(prepare(&state, &index, q).await?);
    }
    let now = now_ms();
    let prepared = Arc::new(prepared);
    let scan_started = Instant::now();
    let hits = scan_batch(Arc::clone(&index), Arc::clone(&prepared), now).await?;
    super::metrics::record_search(scan_started.elapsed().as_secs_f64());
    let (mut results, mut fewer_results_reasons, mut contexts) =
        (Vec::with_capacity(got), Vec::with_capacity(got), Vec::with_capacity(got));
    for ((q, p), hits) in req.queries.iter().zip(prepared.iter()).zip(hits) {
        let hits = keep_live(&index, p, hits, now);
        let a = answer(&state, &index, q, p, &hits)?;
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

/// Runs the batch scan on rayon and awaits it, keeping tokio workers free.
/// Each query asks for its [`extra_candidates`] beyond k.
async fn scan_batch(index: Arc<Index>, queries: Arc<Vec<Prepared>>, now: u64) -> Result<Vec<Vec<Hit>>, ApiError> {
    if index.is_empty() {
        // Nothing to scan, and with no configured dimension the queries may
        // not even agree on a length.
        return Ok(vec![Vec::new(); queries.len()]);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let batch: Vec<BatchQuery<'_>> = queries
            .iter()
            .map(|q| BatchQuery {
                vector: &q.vector,
                k: q.k + extra_candidates(&index, q, now),
                min_score: q.min_score,
            })
            .collect();
        let _ = tx.send(search::top_k_batch(index.rows(), &batch));
    });
    rx.await.map_err(|_| ApiError::Internal("batch search worker dropped its result".into()))
}
