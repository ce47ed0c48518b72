//! `POST /v1/search`: validate the query, scan on rayon, attach metadata.
//!
//! An `id` query ("more like this") scans with that document's row and
//! leaves the document out: it asks for one more hit and drops the row, the
//! same way expired rows are dropped, so the result stays exact.
//!
//! The scan goes through the [`crate::search::coalesce::Coalescer`] in
//! [`AppState`]: a lone query starts its scan at once, concurrent ones
//! share one pass over the matrix. Either way it runs on rayon, never on a
//! tokio worker, and returns exactly what `search::top_k` would.

use std::{sync::Arc, time::Instant};

use axum::extract::State;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{
    error::{ApiError, Problem, PROBLEM_JSON},
    extract::Json,
    query::resolve_query_or_id,
    AppState,
};
use crate::{
    index::{now_ms, Index},
    search::{coalesce::Snapshot, Hit},
    store::{context::ContextWrite, keys::WritableKey},
};

/// k when the request does not say (the chatbot's default).
pub const DEFAULT_K: i64 = 3;

fn default_k() -> i64 {
    DEFAULT_K
}

fn default_true() -> bool {
    true
}

/// Body of `POST /v1/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"vector": [0.12, -0.03, 0.51], "k": 3, "min_score": 0.2, "with_text": false}))]
pub struct SearchRequest {
    /// Query embedding, as long as the index dimension (`GET /v1/stats`);
    /// its length does not matter (cosine). Send exactly one of `vector`,
    /// `text` and `id`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<f64>>, min_items = 1)]
    pub vector: Option<Vec<Option<f64>>>,
    /// Question text, embedded server-side by the configured provider
    /// (422 `text_search_disabled` when none is). At most 8 KiB.
    #[serde(default)]
    #[schema(max_length = 8192)]
    pub text: Option<String>,
    /// A document id (for the chatbot, the article URL): find documents like
    /// it. Its stored vector is the query and it is left out of the results.
    #[serde(default)]
    pub id: Option<String>,
    /// How many results; 1 to the server's SEMSEARCH_MAX_K (default 1000).
    #[serde(default = "default_k")]
    #[schema(default = 3, minimum = 1)]
    pub k: i64,
    /// Drop results scoring below this.
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Include each article's text (the bulk of the response).
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub with_text: bool,
    /// Suffix of the `cache:context:<key>` the results are stored under
    /// (1 to 256 printable ASCII bytes, no spaces); default: a hash of the
    /// query, k and min_score.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = "^[!-~]+$")]
    pub context_key: Option<String>,
}

/// One article. Results are ordered by descending score, ties by ascending url.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResult {
    /// The embedding's Redis key without its prefix.
    pub id: String,
    pub url: String,
    pub title: Option<String>,
    /// Absent when the request said `with_text: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Cosine similarity, in [-1, 1].
    pub score: f32,
}

/// Why fewer than k results came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FewerReason {
    /// The index holds fewer than k documents.
    IndexSmallerThanK,
    /// `min_score` removed the rest.
    MinScore,
}

/// Answer of `POST /v1/search`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "results": [{"id": "https://example.org/a", "url": "https://example.org/a", "title": "A", "score": 0.83}],
    "took_us": 412,
    "index_version": 7,
    "context": {"key": "cache:context:3f2a", "queued": true}
}))]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    /// Server-side time, in microseconds.
    pub took_us: u64,
    /// The snapshot that answered; changes on every reload or update.
    pub index_version: u64,
    /// Present only when `results` has fewer than k entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewer_results_reason: Option<FewerReason>,
    /// Where the results are cached for the chatbot; absent when context
    /// writes are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextRef>,
}

/// Where the results were cached for the chatbot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextRef {
    /// The full Redis key (`cache:context:…`).
    pub key: String,
    /// False when the write queue was full and the context was not stored.
    pub queued: bool,
}

/// What is stored in `cache:context:<key>`.
#[derive(Debug, Serialize)]
struct ContextPayload<'a> {
    results: &'a [SearchResult],
    k: usize,
    min_score: Option<f32>,
    index_version: u64,
    created_at: String,
}

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
        (status = 400, description = "`invalid_json`", body = Problem, content_type = PROBLEM_JSON),
        (status = 401, description = "`unauthorized`: API keys are configured and none was sent", body = Problem, content_type = PROBLEM_JSON),
        (status = 404, description = "`document_not_found`: an `id` query names no live document", body = Problem, content_type = PROBLEM_JSON),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "The body is JSON of the wrong shape: see `code`", body = Problem, content_type = PROBLEM_JSON),
        (status = 502, description = "`embedder_failed` or `embedder_wrong_dimension` (text queries)", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "`not_ready`, `overloaded` or `timeout`; see Retry-After", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        (status = 504, description = "`embedder_timeout` (text queries)", body = Problem, content_type = PROBLEM_JSON),
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
    let answer = answer(&state, &index, &req, &prepared, &hits)?;
    Ok(axum::Json(SearchResponse {
        results: answer.results,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
        fewer_results_reason: answer.fewer_results_reason,
        context: answer.context,
    }))
}

/// A validated query, ready to scan; owned so it can move to a rayon worker.
#[derive(Debug)]
pub struct Prepared {
    /// Unit-length query vector.
    pub vector: Vec<f32>,
    pub k: usize,
    pub min_score: Option<f32>,
    /// For an `id` query: the document's own row, never returned.
    pub exclude_row: Option<usize>,
    /// Where the results go in Redis, if context writes are on.
    context_key: Option<WritableKey>,
}

/// Validates one request against `index` (shared by `/v1/search` and each
/// batch item, so both answer the same error codes).
///
/// # Errors
/// `invalid_k`, `invalid_context_key`, and those of [`resolve_query_or_id`].
pub async fn prepare(state: &AppState, index: &Index, req: &SearchRequest) -> Result<Prepared, ApiError> {
    let k = validate_k(req.k, state.max_k)?;
    let chosen_key = match &req.context_key {
        Some(suffix) => Some(state.keys.context_key(suffix).map_err(|_| ApiError::InvalidContextKey)?),
        None => None,
    };
    let resolved =
        resolve_query_or_id(state, index, req.vector.as_deref(), req.text.as_deref(), req.id.as_deref()).await?;
    let min_score = req.min_score;
    let context_key = match (&state.contexts, chosen_key) {
        (None, _) => None,
        (Some(_), Some(key)) => Some(key),
        (Some(_), None) => {
            let hash = match &req.id {
                Some(id) => similar_hash(id, k, min_score),
                None => request_hash(&resolved.vector, k, min_score),
            };
            Some(state.keys.context_key(&hash).map_err(|_| ApiError::InvalidContextKey)?)
        }
    };
    Ok(Prepared { vector: resolved.vector, k, min_score, exclude_row: resolved.exclude_row, context_key })
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
) -> Result<Answer, ApiError> {
    let searchable = index.len() - usize::from(p.exclude_row.is_some());
    let fewer_results_reason = (hits.len() < p.k).then(|| {
        if p.min_score.is_none() || hits.len() == searchable {
            FewerReason::IndexSmallerThanK
        } else {
            FewerReason::MinScore
        }
    });
    let results: Vec<SearchResult> = hits.iter().map(|hit| to_result(index, *hit, req.with_text)).collect();
    let context = match (&state.contexts, &p.context_key) {
        (Some(queue), Some(key)) => {
            // The chatbot reads title and text from the context, whatever this response carried.
            let full: Vec<SearchResult> =
                if req.with_text { Vec::new() } else { hits.iter().map(|h| to_result(index, *h, true)).collect() };
            let payload = ContextPayload {
                results: if req.with_text { &results } else { &full },
                k: p.k,
                min_score: p.min_score,
                index_version: index.version(),
                created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            };
            let payload = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
            let queued = queue.enqueue(ContextWrite { key: key.clone(), payload, index_version: index.version() });
            Some(ContextRef { key: key.as_str().to_owned(), queued })
        }
        _ => None,
    };
    Ok(Answer { results, fewer_results_reason, context })
}

/// Stable hex id of a query: SHA-256 over the unit query vector (little
/// endian f32; for text, its embedding), k and min_score. The same question
/// gives the same context key; a vector and its multiples share one (they
/// have the same results).
pub fn request_hash(query: &[f32], k: usize, min_score: Option<f32>) -> String {
    context_hash(b"semsearch-context-v1\0", k, min_score, |h| {
        for x in query {
            h.update(x.to_le_bytes());
        }
    })
}

/// The context id of an `id` query: unlike [`request_hash`] it names the
/// document, because its results (the document left out) differ from those
/// of a vector query with the same vector.
fn similar_hash(id: &str, k: usize, min_score: Option<f32>) -> String {
    context_hash(b"semsearch-context-similar-v1\0", k, min_score, |h| {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
    })
}

/// SHA-256 (hex) of a domain tag, the query as `write_query` feeds it, k and
/// min_score: the one layout both context hashes share.
fn context_hash(domain: &[u8], k: usize, min_score: Option<f32>, write_query: impl FnOnce(&mut Sha256)) -> String {
    let mut h = Sha256::new();
    h.update(domain);
    write_query(&mut h);
    h.update((k as u64).to_le_bytes());
    match min_score {
        Some(m) => {
            h.update([1]);
            h.update(m.to_le_bytes());
        }
        None => h.update([0]),
    }
    hex::encode(h.finalize())
}

/// Top-k over the documents whose Redis deadline has not passed, without
/// the query's `exclude_row`. See [`extra_candidates`] and [`keep_live`].
async fn scan_live(state: &AppState, index: Arc<Index>, p: &Prepared) -> Result<Vec<Hit>, ApiError> {
    let now = now_ms();
    let extra = extra_candidates(&index, p, now);
    let hits = state
        .coalescer
        .top_k(Arc::clone(&index), p.vector.clone(), p.k + extra, p.min_score)
        .await
        .ok_or_else(|| ApiError::Internal("search worker dropped its result".into()))?;
    Ok(keep_live(&index, p, hits, now))
}

/// Rows a scan must return beyond k so that k live ones remain: those past
/// their deadline (at most `expired_count`) plus the excluded row.
pub fn extra_candidates(index: &Index, p: &Prepared, now_ms: u64) -> usize {
    index.expired_count(now_ms) + usize::from(p.exclude_row.is_some())
}

/// Drops expired and excluded rows from a scan's hits and cuts them to k;
/// with [`extra_candidates`] the result is exactly the live top-k.
pub fn keep_live(index: &Index, p: &Prepared, mut hits: Vec<Hit>, now_ms: u64) -> Vec<Hit> {
    hits.retain(|h| !index.is_expired(h.row as usize, now_ms) && Some(h.row as usize) != p.exclude_row);
    hits.truncate(p.k);
    hits
}

/// The coalescer scans an index's matrix; queries over one snapshot are
/// batched together, never across a reload.
impl Snapshot for Index {
    fn rows(&self) -> &[f32] {
        Index::rows(self)
    }
}

pub(super) fn to_result(index: &Index, hit: Hit, with_text: bool) -> SearchResult {
    let doc = index.doc(hit.row as usize);
    SearchResult {
        id: doc.id.to_string(),
        url: doc.url().to_owned(),
        title: doc.title.as_deref().map(str::to_owned),
        text: if with_text { doc.text.as_deref().map(str::to_owned) } else { None },
        score: hit.score,
    }
}

/// # Errors
/// [`ApiError::InvalidK`] unless `1 <= k <= max_k`.
pub fn validate_k(k: i64, max_k: usize) -> Result<usize, ApiError> {
    match usize::try_from(k) {
        Ok(k) if (1..=max_k).contains(&k) => Ok(k),
        _ => Err(ApiError::InvalidK { k, max: max_k }),
    }
}

/// Scales a validated query to unit length.
///
/// # Errors
/// `zero_vector` when every element is zero.
pub fn normalized(mut query: Vec<f32>) -> Result<Vec<f32>, ApiError> {
    crate::index::unit::scale_to_unit(&mut query).map_err(|_| ApiError::ZeroVector)?;
    Ok(query)
}

/// Checks a query vector and returns it as f32 (not yet normalised).
///
/// `dim = 0` (an empty index with no known dimension) accepts any length.
///
/// # Errors
/// `empty_vector`, `null_element`, `non_finite`, `wrong_dimension` or `zero_vector`.
pub fn validate_vector(vector: &[Option<f64>], dim: usize) -> Result<Vec<f32>, ApiError> {
    if vector.is_empty() {
        return Err(ApiError::EmptyVector);
    }
    let mut out = Vec::with_capacity(vector.len());
    for (index, x) in vector.iter().enumerate() {
        let x = x.ok_or(ApiError::NullElement { index })? as f32;
        if !x.is_finite() {
            return Err(ApiError::NonFinite { index });
        }
        out.push(x);
    }
    if dim != 0 && out.len() != dim {
        return Err(ApiError::WrongDimension { expected: dim, got: out.len() });
    }
    if out.iter().all(|&x| x == 0.0) {
        return Err(ApiError::ZeroVector);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k_bounds() {
        assert!(validate_k(0, 10).is_err());
        assert!(validate_k(-1, 10).is_err());
        assert!(validate_k(11, 10).is_err());
        assert_eq!(validate_k(10, 10).ok(), Some(10));
    }

    #[test]
    fn vector_checks() {
        assert!(matches!(validate_vector(&[], 2), Err(ApiError::EmptyVector)));
        assert!(matches!(validate_vector(&[Some(1.0), None], 2), Err(ApiError::NullElement { index: 1 })));
        assert!(matches!(validate_vector(&[Some(1e300), Some(1.0)], 2), Err(ApiError::NonFinite { index: 0 })));
        assert!(matches!(validate_vector(&[Some(1.0)], 2), Err(ApiError::WrongDimension { expected: 2, got: 1 })));
        assert!(matches!(validate_vector(&[Some(0.0), Some(-0.0)], 2), Err(ApiError::ZeroVector)));
        assert_eq!(validate_vector(&[Some(3.0), Some(4.0)], 2).ok(), Some(vec![3.0, 4.0]));
        assert_eq!(normalized(vec![3.0, 4.0]).ok(), Some(vec![0.6, 0.8]));
    }
}
