//! `POST /v1/search`: the node's adapter over the query path
//! (`crate::query`): plan, resolve against the current snapshot, execute on
//! rayon, render. Everything a request is checked for lives there, so the
//! router answers the same body the same way.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
};

use super::{extract::Json, responses::SearchErrors, AppState};
use semsearch_scan::ScanPath;

use crate::{
    index::Index,
    problem::ApiError,
    query::{
        answer::{render, ContextTarget, HitView, Reach, Rendered, Spent},
        dto::{SearchMode, SearchRequest, SearchResponse, SearchResult},
        execute::{self, RankedHit, RankedHits},
        resolve::{Resolved, Words},
        Plan,
    },
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
pub async fn search(State(state): State<AppState>, Json(req): Json<SearchRequest>) -> Result<Response, ApiError> {
    let started = Instant::now();
    let _permit = state.searches.try_acquire()?;
    let index = state.ready_index()?;
    let plan = Plan::new(&req, &state.rules(&index))?;
    let resolved = state.resolver().resolve(&plan, &index).await?;
    let scan_started = Instant::now();
    let ranked = execute::one(&state.coalescer, Arc::clone(&index), &resolved.search, &resolved.ranking).await?;
    super::metrics::record_search(plan.mode, scan_started.elapsed().as_secs_f64());
    counted(&state, &ranked);
    let rendered = render_ranked(&state, &index, &plan, &resolved, &ranked, &mut Spent::default())?;
    let capacity = response_capacity(&rendered.results);
    let response = SearchResponse {
        results: rendered.results,
        mode: plan.mode,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
        fewer_results_reason: rendered.fewer_results_reason,
        context: rendered.context,
    };
    json_response(&response, capacity)
}

/// Bytes of JSON besides the strings of one result (field names, score,
/// punctuation) and of the envelope: a first guess that holds most answers.
const RESULT_OVERHEAD_BYTES: usize = 160;
const ENVELOPE_BYTES: usize = 256;

/// About how long `results` are as JSON, so the body is written into one
/// buffer instead of growing from axum's 128 bytes by doubling (a profile
/// of 64 clients showed the copies). Only a hint: escapes may need more.
pub fn response_capacity(results: &[SearchResult]) -> usize {
    let strings = |r: &SearchResult| {
        r.id.len()
            + r.url.len()
            + r.title.as_ref().map_or(0, String::len)
            + r.text.as_ref().and_then(Option::as_ref).map_or(0, |t| t.get().len())
    };
    ENVELOPE_BYTES + results.iter().map(|r| strings(r) + RESULT_OVERHEAD_BYTES).sum::<usize>()
}

/// `value` as an `application/json` response, written into a buffer of
/// `capacity` bytes to start with.
///
/// # Errors
/// `internal` if serialisation fails, which plain strings and numbers cannot.
pub fn json_response<T: serde::Serialize>(value: &T, capacity: usize) -> Result<Response, ApiError> {
    let mut body = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut body, value).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Renders one resolved query's ranked hits from `index` and queues its context.
///
/// # Errors
/// Those of [`render`].
pub fn render_ranked(
    state: &AppState,
    index: &Index,
    plan: &Plan,
    resolved: &Resolved,
    ranked: &RankedHits,
    spent: &mut Spent,
) -> Result<Rendered, ApiError> {
    let shown = Shown { mode: plan.mode, snippet_chars: plan.snippet_chars, words: resolved.words.as_ref() };
    let views: Vec<HitView<'_>> = ranked.hits.iter().map(|h| hit_view(index, &shown, *h)).collect();
    let context = match (&state.contexts, &resolved.context_key) {
        (Some(queue), Some(key)) => Some(ContextTarget { queue, key, index_version: index.version() }),
        _ => None,
    };
    let reach = Reach { matches: ranked.matches, ..resolved.search.reach(index) };
    render(plan, &views, reach, context, &state.budget, spent)
}

/// What a hit shows besides its document: the scores of its mode, and a
/// snippet for these words when asked.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub mode: SearchMode,
    pub snippet_chars: Option<usize>,
    pub words: Option<&'a Words>,
}

/// A ranked hit with its document's fields, borrowed from the snapshot,
/// the scores its mode reports, and its snippet when asked.
pub fn hit_view<'a>(index: &'a Index, shown: &Shown<'_>, hit: RankedHit) -> HitView<'a> {
    let doc = index.doc(hit.row as usize);
    let snippet = shown.snippet_chars.zip(index.lexical()).map(|(max_chars, settings)| {
        let weights = match shown.words {
            Some(w) => execute::snippet_weights(&w.terms, w.idf.as_deref()),
            None => Default::default(),
        };
        execute::snippet(settings, doc.text.as_deref().unwrap_or(""), &weights, max_chars)
    });
    HitView {
        id: &doc.id,
        url: doc.url(),
        title: doc.title.as_deref(),
        text: doc.text.as_deref(),
        score: hit.score(),
        vector_score: (shown.mode == SearchMode::Hybrid).then_some(hit.cosine).flatten(),
        lexical_score: shown.mode.uses_words().then_some(hit.lexical).flatten(),
        snippet,
    }
}

/// Counts how a query's vector scan ran (`/v1/stats`, `/metrics`).
pub fn counted(state: &AppState, ranked: &RankedHits) {
    if let Some(scan) = &ranked.scan {
        state.scans.record(scan);
        if scan.path == ScanPath::Int8 {
            super::metrics::record_rescored(scan.rescored_rows);
        }
    }
}
