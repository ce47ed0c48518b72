//! `POST /v1/search`: validate the query, scan on rayon, attach metadata.
//!
//! An `id` query ("more like this") scans with that document's row and
//! leaves the document out: it asks for one more hit and drops the row, the
//! same way expired rows are dropped, so the result stays exact.

use std::{sync::Arc, time::Instant};

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{error::ApiError, extract::Json, query::resolve_query_or_id, AppState};
use crate::{
    index::{now_ms, Index},
    search::{self, Hit},
    store::context::ContextWrite,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Query embedding; any length-scaling is irrelevant (cosine).
    /// Exactly one of `vector`, `text` and `id` (see [`resolve_query_or_id`]).
    #[serde(default)]
    pub vector: Option<Vec<Option<f64>>>,
    /// Question text, embedded server-side by the configured provider.
    #[serde(default)]
    pub text: Option<String>,
    /// A document id (for the chatbot, the article URL): find documents like
    /// it. Its stored vector is the query and it is left out of the results.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default = "default_k")]
    pub k: i64,
    /// Drop results scoring below this.
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Include each article's text (the bulk of the response).
    #[serde(default = "default_true")]
    pub with_text: bool,
    /// Suffix of the `cache:context:<key>` the results are stored under;
    /// default: a hash of the query, k and min_score.
    #[serde(default)]
    pub context_key: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    pub id: String,
    pub url: String,
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub score: f32,
}

/// Why fewer than k results came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FewerReason {
    /// The index holds fewer than k documents.
    IndexSmallerThanK,
    /// `min_score` removed the rest.
    MinScore,
}

#[derive(Debug, Serialize)]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    pub took_us: u64,
    pub index_version: u64,
    /// Present only when `results` has fewer than k entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewer_results_reason: Option<FewerReason>,
    /// Where the results are cached for the chatbot; absent when context
    /// writes are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextRef>,
}

#[derive(Debug, Serialize)]
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

pub async fn search(
    State(state): State<AppState>,
    Json(req): Json<SearchRequest>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let started = Instant::now();
    let index = state.ready_index()?;
    let k = validate_k(req.k, state.max_k)?;
    let context_key = match &req.context_key {
        Some(suffix) => Some(state.keys.context_key(suffix).map_err(|_| ApiError::InvalidContextKey)?),
        None => None,
    };
    let resolved =
        resolve_query_or_id(&state, &index, req.vector.as_deref(), req.text.as_deref(), req.id.as_deref()).await?;
    let (query, exclude_row) = (resolved.vector, resolved.exclude_row);
    let min_score = req.min_score;
    let default_context = state.contexts.is_some().then(|| match &req.id {
        Some(id) => similar_hash(id, k, min_score),
        None => request_hash(&query, k, min_score),
    });
    let hits = scan_live(Arc::clone(&index), query, k, min_score, exclude_row).await?;
    let searchable = index.len() - usize::from(exclude_row.is_some());
    let fewer_results_reason = (hits.len() < k).then(|| {
        if min_score.is_none() || hits.len() == searchable {
            FewerReason::IndexSmallerThanK
        } else {
            FewerReason::MinScore
        }
    });
    let results: Vec<SearchResult> = hits.iter().map(|hit| to_result(&index, *hit, req.with_text)).collect();
    let context = match &state.contexts {
        Some(queue) => {
            let key = match (context_key, default_context) {
                (Some(key), _) => key,
                (None, hash) => {
                    state.keys.context_key(&hash.unwrap_or_default()).map_err(|_| ApiError::InvalidContextKey)?
                }
            };
            // The chatbot reads title and text from the context, whatever this response carried.
            let full: Vec<SearchResult> =
                if req.with_text { Vec::new() } else { hits.iter().map(|h| to_result(&index, *h, true)).collect() };
            let payload = ContextPayload {
                results: if req.with_text { &results } else { &full },
                k,
                min_score,
                index_version: index.version(),
                created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            };
            let payload = serde_json::to_vec(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
            let queued = queue.enqueue(ContextWrite { key: key.clone(), payload, index_version: index.version() });
            Some(ContextRef { key: key.as_str().to_owned(), queued })
        }
        None => None,
    };
    Ok(axum::Json(SearchResponse {
        results,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
        fewer_results_reason,
        context,
    }))
}

/// Stable hex id of a query: SHA-256 over the unit query vector (little
/// endian f32; for text, its embedding), k and min_score. The same question
/// gives the same context key; a vector and its multiples share one (they
/// have the same results).
pub fn request_hash(query: &[f32], k: usize, min_score: Option<f32>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"semsearch-context-v1\0");
    for x in query {
        h.update(x.to_le_bytes());
    }
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

/// The context id of an `id` query: unlike [`request_hash`] it names the
/// document, because its results (the document left out) differ from those
/// of a vector query with the same vector.
fn similar_hash(id: &str, k: usize, min_score: Option<f32>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"semsearch-context-similar-v1\0");
    h.update((id.len() as u64).to_le_bytes());
    h.update(id.as_bytes());
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
/// `exclude_row`. Rows past the deadline are at most `expired_count`, so
/// asking for that many more (plus one for the excluded row) and dropping
/// them keeps the result exact.
async fn scan_live(
    index: Arc<Index>,
    query: Vec<f32>,
    k: usize,
    min_score: Option<f32>,
    exclude_row: Option<usize>,
) -> Result<Vec<Hit>, ApiError> {
    let now = now_ms();
    let extra = index.expired_count(now) + usize::from(exclude_row.is_some());
    let mut hits = scan(Arc::clone(&index), query, k + extra, min_score).await?;
    if extra > 0 {
        hits.retain(|h| !index.is_expired(h.row as usize, now) && Some(h.row as usize) != exclude_row);
        hits.truncate(k);
    }
    Ok(hits)
}

/// Runs the scan on rayon and awaits it, keeping tokio workers free.
async fn scan(index: Arc<Index>, query: Vec<f32>, k: usize, min_score: Option<f32>) -> Result<Vec<Hit>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(search::top_k(index.rows(), &query, k, min_score));
    });
    rx.await.map_err(|_| ApiError::Internal("search worker dropped its result".into()))
}

fn to_result(index: &Index, hit: Hit, with_text: bool) -> SearchResult {
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
    crate::store::decode::normalize(&mut query).map_err(|_| ApiError::ZeroVector)?;
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
