//! `POST /v1/search`: the node's adapter over the query path
//! (`crate::query`): plan, resolve against the current snapshot, execute on
//! rayon, render. Everything a request is checked for lives there, so the
//! router answers the same body the same way.

use std::{sync::Arc, time::Instant};

use axum::extract::State;

use super::{extract::Json, responses::SearchErrors, AppState};
use crate::{
    index::Index,
    problem::ApiError,
    query::{
        answer::{render, ContextTarget, HitView, Rendered, Spent},
        dto::{SearchRequest, SearchResponse},
        execute,
        resolve::Resolved,
        Plan,
    },
    search::{int8::ScanPath, Answer, Hit},
};

/// Nearest articles to a query vector, question text or document (exact cosine top-k).
#[utoipa::path(
    post,
    path = "/v1/search",
    operation_id = "search",
    tag = "search",
    request_body = SearchRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The k best articles (fewer when the index is smaller or `min_score` removed some)", body = SearchResponse),
        SearchErrors,
    )
)]
pub async fn search(
    State(state): State<AppState>,
    Json(req): Json<SearchRequest>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let started = Instant::now();
    let _permit = state.searches.try_acquire()?;
    let index = state.ready_index()?;
    let plan = Plan::new(&req, &state.rules(&index))?;
    let resolved = state.resolver().resolve(&plan, &index).await?;
    let scan_started = Instant::now();
    let answer = execute::one(&state.coalescer, Arc::clone(&index), &resolved.search).await?;
    super::metrics::record_search(scan_started.elapsed().as_secs_f64());
    let hits = counted(&state, answer);
    let rendered = render_hits(&state, &index, &plan, &resolved, &hits, &mut Spent::default())?;
    Ok(axum::Json(SearchResponse {
        results: rendered.results,
        mode: plan.mode,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
        fewer_results_reason: rendered.fewer_results_reason,
        context: rendered.context,
    }))
}

/// Renders one resolved query's hits from `index` and queues its context.
///
/// # Errors
/// Those of [`render`].
pub fn render_hits(
    state: &AppState,
    index: &Index,
    plan: &Plan,
    resolved: &Resolved,
    hits: &[Hit],
    spent: &mut Spent,
) -> Result<Rendered, ApiError> {
    let views: Vec<HitView<'_>> = hits.iter().map(|h| hit_view(index, *h)).collect();
    let context = match (&state.contexts, &resolved.context_key) {
        (Some(queue), Some(key)) => Some(ContextTarget { queue, key, index_version: index.version() }),
        _ => None,
    };
    render(plan, &views, resolved.search.reach(index), context, &state.budget, spent)
}

/// A hit with its document's fields, borrowed from the snapshot.
pub fn hit_view(index: &Index, hit: Hit) -> HitView<'_> {
    let doc = index.doc(hit.row as usize);
    HitView {
        id: &doc.id,
        url: doc.url(),
        title: doc.title.as_deref(),
        text: doc.text.as_deref(),
        score: hit.score,
        vector_score: None,
        lexical_score: None,
        snippet: None,
    }
}

/// Counts how a query was answered (`/v1/stats`, `/metrics`) and returns its hits.
pub fn counted(state: &AppState, answer: Answer) -> Vec<Hit> {
    state.scans.record(answer.rescore.as_ref());
    if let Some(r) = answer.rescore.filter(|r| r.path == ScanPath::Int8) {
        super::metrics::record_rescored(r.rows);
    }
    answer.hits
}
