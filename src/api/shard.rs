//! `POST /v1/shard/search`: a node answering the router (`query::shard`).
//!
//! The router has already planned and resolved each query; the node only
//! finds the `exclude_id` and the filter's rows in its snapshot, runs the
//! batch in one pass, and returns its exact top-k with what the router needs
//! to answer as one node would. It writes no context (the router does).
//! Not in `openapi.yaml`: a route between semsearch processes.

use std::{sync::Arc, time::Instant};

use axum::extract::State;

use super::{
    extract::Json,
    search::{counted, hit_view},
    AppState,
};
use crate::{
    problem::ApiError,
    query::{
        execute,
        plan::validate_k,
        shard::{ShardAnswer, ShardHit, ShardRequest, ShardResponse},
    },
};

/// The exact top-k of this shard's documents for each resolved query.
///
/// # Errors
/// `invalid_batch_size`, `invalid_k`, `too_many_results`, `wrong_dimension` (a query of
/// another length than the index), `not_ready`, `overloaded`.
pub async fn shard_search(
    State(state): State<AppState>,
    Json(req): Json<ShardRequest>,
) -> Result<axum::Json<ShardResponse>, ApiError> {
    let _permit = state.searches.try_acquire()?;
    let got = req.queries.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    for q in &req.queries {
        validate_k(i64::try_from(q.k).unwrap_or(i64::MAX), state.max_k)?;
    }
    let asked: usize = req.queries.iter().map(|q| q.k).sum();
    if asked > state.budget.max_results {
        return Err(ApiError::TooManyResults { asked, max: state.budget.max_results });
    }
    let index = state.ready_index()?;
    let mut searches = Vec::with_capacity(got);
    let mut kinds = Vec::with_capacity(got);
    for q in &req.queries {
        let (search, filter_kinds) = q.resolve(&index)?;
        searches.push(search);
        kinds.push(filter_kinds);
    }
    let searches = Arc::new(searches);
    let scan_started = Instant::now();
    let answers = execute::batch(Arc::clone(&index), Arc::clone(&searches)).await?;
    super::metrics::record_search(scan_started.elapsed().as_secs_f64());
    let answers = answers
        .into_iter()
        .zip(searches.iter())
        .zip(req.queries.iter().zip(kinds))
        .map(|((answer, search), (q, filter_kinds))| {
            let hits = counted(&state, answer)
                .into_iter()
                .map(|h| {
                    let v = hit_view(&index, h);
                    ShardHit {
                        id: v.id.to_owned(),
                        url: v.url.to_owned(),
                        title: v.title.map(str::to_owned),
                        text: if q.with_text { v.text.map(str::to_owned) } else { None },
                        score: v.score,
                        vector_score: v.vector_score,
                        lexical_score: v.lexical_score,
                        snippet: v.snippet,
                    }
                })
                .collect();
            let reach = search.reach(&index);
            ShardAnswer { hits, searchable: reach.searchable, filtered: reach.filtered, matches: reach.matches, filter_kinds }
        })
        .collect();
    Ok(axum::Json(ShardResponse { index_version: index.version(), answers }))
}
