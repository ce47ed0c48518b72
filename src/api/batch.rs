//! `POST /v1/search/batch`: many queries, one pass over the matrix.
//!
//! Each query is validated exactly like a `/v1/search` body (same fields,
//! same error codes) and answered with the same result shape, in request
//! order. The scan reads every row once for the whole batch
//! ([`search::top_k_batch`]) on rayon, never on a tokio worker. The batch
//! size is capped by `SEMSEARCH_MAX_BATCH` so one request cannot hold a
//! rayon worker for an unbounded time. The body limit still applies: at
//! the default 1 MiB a body holds roughly 200-250 queries of 384 floats as
//! JSON, so raise `SEMSEARCH_MAX_BODY_BYTES` with a larger batch cap.

use std::{sync::Arc, time::Instant};

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{
    error::ApiError,
    extract::Json,
    search::{to_result, validate_k, validate_vector, SearchRequest, SearchResult},
    AppState,
};
use crate::{
    index::Index,
    search::{self, BatchQuery, Hit},
};

/// Body of `POST /v1/search/batch`: each element is a `/v1/search` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub queries: Vec<SearchRequest>,
}

#[derive(Debug, Serialize)]
pub struct BatchResponse {
    /// One list per query, in request order, each shaped like `/v1/search` results.
    pub results: Vec<Vec<SearchResult>>,
    pub took_us: u64,
    pub index_version: u64,
}

/// A validated query, owned so it can move to the rayon worker.
struct Prepared {
    vector: Vec<f32>,
    k: usize,
    min_score: Option<f32>,
}

pub async fn search_batch(
    State(state): State<AppState>,
    Json(req): Json<BatchRequest>,
) -> Result<axum::Json<BatchResponse>, ApiError> {
    let started = Instant::now();
    let got = req.queries.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    let index = state.ready_index()?;
    let prepared = req
        .queries
        .iter()
        .map(|q| {
            Ok(Prepared {
                k: validate_k(q.k, state.max_k)?,
                vector: validate_vector(&q.vector, index.dim())?,
                min_score: q.min_score,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let hits = scan_batch(Arc::clone(&index), prepared).await?;
    let results = hits
        .iter()
        .zip(&req.queries)
        .map(|(hits, q)| hits.iter().map(|hit| to_result(&index, *hit, q.with_text)).collect())
        .collect();
    Ok(axum::Json(BatchResponse {
        results,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
    }))
}

/// Runs the batch scan on rayon and awaits it, keeping tokio workers free.
async fn scan_batch(index: Arc<Index>, queries: Vec<Prepared>) -> Result<Vec<Vec<Hit>>, ApiError> {
    if index.is_empty() {
        // Nothing to scan, and with no configured dimension the queries may
        // not even agree on a length.
        return Ok(vec![Vec::new(); queries.len()]);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let batch: Vec<BatchQuery<'_>> =
            queries.iter().map(|q| BatchQuery { vector: &q.vector, k: q.k, min_score: q.min_score }).collect();
        let _ = tx.send(search::top_k_batch(index.rows(), &batch));
    });
    rx.await.map_err(|_| ApiError::Internal("batch search worker dropped its result".into()))
}
