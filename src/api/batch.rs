//! `POST /v1/search/batch`: many queries, one pass over the matrix.
//!
//! Each query is planned, resolved and rendered exactly like a `/v1/search`
//! body (`crate::query`: same fields, same error codes, `vector`, `text` or
//! `id`), in request order, and writes its context like a single search. The
//! scan reads every row once for the whole batch (`query::execute::batch`)
//! on rayon, never on a tokio worker. The batch size is capped by
//! `SEMSEARCH_MAX_BATCH` so one request cannot hold a rayon worker for an
//! unbounded time, and the k of all queries by the result budget.

use std::{sync::Arc, time::Instant};

use axum::{extract::State, response::Response};

use super::{
    extract::Json,
    responses::SearchErrors,
    search::{counted, json_response, render_ranked, response_capacity},
    AppState,
};
use crate::{
    problem::ApiError,
    query::{
        answer::Spent,
        dto::{BatchRequest, BatchResponse},
        execute,
        resolve::Resolved,
        Plan,
    },
};

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
pub async fn search_batch(State(state): State<AppState>, Json(req): Json<BatchRequest>) -> Result<Response, ApiError> {
    let started = Instant::now();
    let _permit = state.searches.try_acquire()?;
    let got = req.queries.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    let index = state.ready_index()?;
    let rules = state.rules(&index);
    let resolver = state.resolver();
    let mut planned: Vec<(Plan, Resolved)> = Vec::with_capacity(got);
    let mut failed = Vec::new();
    for (i, q) in req.queries.iter().enumerate() {
        let item = async {
            let plan = Plan::new(q, &rules)?;
            let resolved = resolver.resolve(&plan, &index).await?;
            Ok::<_, ApiError>((plan, resolved))
        };
        match item.await {
            Ok(p) => planned.push(p),
            Err(e) => failed.push((format!("/queries/{i}"), e)),
        }
    }
    if !failed.is_empty() {
        return Err(ApiError::BatchItems(failed));
    }
    state.budget.check_results(planned.iter().map(|(plan, _)| plan))?;
    let searches = Arc::new(planned.iter().map(|(_, r)| (r.search.clone(), r.ranking.clone())).collect::<Vec<_>>());
    let scan_started = Instant::now();
    let answers = execute::batch(Arc::clone(&index), searches).await?;
    let per_query = scan_started.elapsed().as_secs_f64() / got as f64;
    let mut spent = Spent::default();
    let (mut results, mut fewer_results_reasons, mut contexts) =
        (Vec::with_capacity(got), Vec::with_capacity(got), Vec::with_capacity(got));
    for ((plan, resolved), ranked) in planned.iter().zip(answers) {
        super::metrics::record_search(plan.mode, per_query);
        counted(&state, &ranked);
        let rendered = render_ranked(&state, &index, plan, resolved, &ranked, &mut spent)?;
        results.push(rendered.results);
        fewer_results_reasons.push(rendered.fewer_results_reason);
        contexts.push(rendered.context);
    }
    let capacity = results.iter().map(|r| response_capacity(r)).sum();
    let response = BatchResponse {
        results,
        fewer_results_reasons,
        contexts,
        modes: planned.iter().map(|(plan, _)| plan.mode).collect(),
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
    };
    json_response(&response, capacity)
}
