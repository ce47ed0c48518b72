//! `POST /v1/search`: validate the query, scan on rayon, attach metadata.
//!
//! An `id` query ("more like this") scans with that document's row and
//! leaves the document out: it asks for one more hit and drops the row, the
//! same way expired rows are dropped, so the result stays exact.
//!
//! The scan goes through the [`crate::index::coalesce::Coalescer`] in
//! [`AppState`]: a lone query starts its scan at once, concurrent ones
//! share one pass over the matrix. Either way it runs on rayon, never on a
//! tokio worker, with the snapshot's scan (int8 or f32, `Index::search`),
//! and returns exactly what `search::top_k` over the f32 rows would.

use std::{sync::Arc, time::Instant};

use axum::extract::State;

use super::{
    dto::{ContextRef, FewerReason, SearchRequest, SearchResponse, SearchResult},
    error::{ApiError, SearchErrors},
    extract::Json,
    query::{prepare, Prepared},
    AppState,
};
use crate::{
    index::{now_ms, Index, OwnedLiveQuery},
    store::context::{self, ContextEntry, ContextWrite},
};
use semsearch_scan::{Hit, ScanAnswer, ScanPath};

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
    let prepared = prepare(&state, &index, &req).await?;
    let scan_started = Instant::now();
    let hits = scan_live(&state, Arc::clone(&index), &prepared).await?;
    super::metrics::record_search(scan_started.elapsed().as_secs_f64());
    let answer = answer(&state, &index, &req, &prepared, &hits, &mut Spent::default())?;
    Ok(axum::Json(SearchResponse {
        results: answer.results,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
        fewer_results_reason: answer.fewer_results_reason,
        context: answer.context,
    }))
}

/// What one request may cost, checked before and while answering so that
/// no request builds a response of unbounded size (issue 16: a 738 KB batch
/// asked for 129 MB of results and 128 MB of contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The k of all queries of one request, added up (`SEMSEARCH_MAX_RESULTS_PER_REQUEST`).
    pub max_results: usize,
    /// Bytes of titles and texts in one response (`SEMSEARCH_MAX_RESPONSE_TEXT_BYTES`).
    pub max_text_bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self { max_results: 10_000, max_text_bytes: 32 << 20 }
    }
}

/// What a request has used of its [`Budget`] so far.
#[derive(Debug, Default)]
pub struct Spent {
    pub text_bytes: usize,
}

/// What a request gets back, apart from timing.
pub struct Answer {
    pub results: Vec<SearchResult>,
    pub fewer_results_reason: Option<FewerReason>,
    pub context: Option<ContextRef>,
}

/// Attaches metadata to the hits, explains a short list, and queues the
/// context write.
///
/// # Errors
/// `internal` if the context cannot be serialised (it always can).
pub fn answer(
    state: &AppState,
    index: &Index,
    req: &SearchRequest,
    p: &Prepared,
    hits: &[Hit],
    spent: &mut Spent,
) -> Result<Answer, ApiError> {
    if req.with_text {
        let bytes: usize = hits
            .iter()
            .map(|h| {
                let doc = index.doc(h.row as usize);
                doc.text.as_deref().map_or(0, str::len) + doc.title.as_deref().map_or(0, str::len)
            })
            .sum();
        spent.text_bytes += bytes;
        if spent.text_bytes > state.budget.max_text_bytes {
            return Err(ApiError::ResponseTooLarge { max_bytes: state.budget.max_text_bytes });
        }
    }
    let excluded = |in_set: bool| usize::from(p.exclude_row.is_some() && in_set);
    let (searchable, filtered_out) = match &p.rows {
        Some(rows) => {
            let excluded = excluded(p.exclude_row.is_some_and(|r| rows.contains(r as u32)));
            (rows.len() as usize - excluded, (rows.len() as usize) < index.len())
        }
        None => (index.len() - excluded(true), false),
    };
    let fewer_results_reason = (hits.len() < p.k).then(|| {
        if p.min_score.is_some() && hits.len() < searchable {
            FewerReason::MinScore
        } else if filtered_out {
            FewerReason::Filter
        } else {
            FewerReason::IndexSmallerThanK
        }
    });
    let results: Vec<SearchResult> = hits.iter().map(|hit| to_result(index, *hit, req.with_text)).collect();
    let context = match (&state.contexts, &p.context_key) {
        (Some(queue), Some(key)) => {
            // The chatbot reads title and text from the context, whatever this response carried.
            let entries: Vec<ContextEntry<'_>> = hits
                .iter()
                .map(|hit| {
                    let doc = index.doc(hit.row as usize);
                    ContextEntry {
                        id: &doc.id,
                        url: doc.url(),
                        title: doc.title.as_deref(),
                        text: doc.text.as_deref(),
                        score: hit.score,
                    }
                })
                .collect();
            let payload = context::encode_payload(&entries, p.k, p.min_score, index.version())
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let queued = queue.enqueue(ContextWrite { key: key.clone(), payload, index_version: index.version() });
            Some(ContextRef { key: key.as_str().to_owned(), queued })
        }
        _ => None,
    };
    Ok(Answer { results, fewer_results_reason, context })
}

/// The live top-k (`Index::search`: no expired document, not the query's
/// `exclude_row`, only its filter's rows). A filtered query scans its own
/// rows on rayon; others go through the coalescer, which shares one pass
/// over the matrix between them.
async fn scan_live(state: &AppState, index: Arc<Index>, p: &Prepared) -> Result<Vec<Hit>, ApiError> {
    let now = now_ms();
    let query = OwnedLiveQuery {
        vector: p.vector.clone(),
        k: p.k,
        min_score: p.min_score,
        exclude: p.exclude_row,
        rows: p.rows.clone(),
    };
    let answer = match &p.rows {
        Some(_) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            rayon::spawn(move || {
                let _ = tx.send(index.search(&[query.as_live()], now).pop());
            });
            rx.await.ok().flatten()
        }
        None => state.coalescer.search(index, query, now).await,
    }
    .ok_or_else(|| ApiError::Internal("search worker dropped its result".into()))?;
    Ok(counted(state, answer))
}

/// Counts how a query was answered (`/v1/stats`, `/metrics`) and returns its hits.
pub fn counted(state: &AppState, answer: ScanAnswer) -> Vec<Hit> {
    state.scans.record(&answer);
    if answer.path == ScanPath::Int8 {
        super::metrics::record_rescored(answer.rescored_rows);
    }
    answer.hits
}

pub(super) fn to_result(index: &Index, hit: Hit, with_text: bool) -> SearchResult {
    let doc = index.doc(hit.row as usize);
    SearchResult {
        id: doc.id.to_string(),
        url: doc.url().to_owned(),
        title: doc.title.as_deref().map(str::to_owned),
        text: with_text.then(|| doc.text.as_deref().map(str::to_owned)),
        score: hit.score,
    }
}
