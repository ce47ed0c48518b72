//! `POST /v1/search`: validate the query, scan on rayon, attach metadata.
//!
//! The scan goes through the [`crate::search::coalesce::Coalescer`] in
//! [`AppState`]: a lone query starts its scan at once, concurrent ones
//! share one pass over the matrix. Either way it runs on rayon, never on a
//! tokio worker, and returns exactly what `search::top_k` would.

use std::{sync::Arc, time::Instant};

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{error::ApiError, extract::Json, AppState};
use crate::{
    index::Index,
    search::{coalesce::Snapshot, Hit},
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
    pub vector: Vec<Option<f64>>,
    #[serde(default = "default_k")]
    pub k: i64,
    /// Drop results scoring below this.
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Include each article's text (the bulk of the response).
    #[serde(default = "default_true")]
    pub with_text: bool,
}

#[derive(Debug, Serialize)]
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
}

pub async fn search(
    State(state): State<AppState>,
    Json(req): Json<SearchRequest>,
) -> Result<axum::Json<SearchResponse>, ApiError> {
    let started = Instant::now();
    let index = state.ready_index()?;
    let k = validate_k(req.k, state.max_k)?;
    let query = validate_vector(&req.vector, index.dim())?;
    let min_score = req.min_score;
    let hits = state
        .coalescer
        .top_k(Arc::clone(&index), query, k, min_score)
        .await
        .ok_or_else(|| ApiError::Internal("search worker dropped its result".into()))?;
    let fewer_results_reason = (hits.len() < k).then(|| {
        if index.len() < k && min_score.is_none_or(|_| hits.len() == index.len()) {
            FewerReason::IndexSmallerThanK
        } else {
            FewerReason::MinScore
        }
    });
    let results = hits.iter().map(|hit| to_result(&index, *hit, req.with_text)).collect();
    Ok(axum::Json(SearchResponse {
        results,
        took_us: started.elapsed().as_micros() as u64,
        index_version: index.version(),
        fewer_results_reason,
    }))
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

/// Checks a query vector and returns it at unit length.
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
    crate::store::decode::normalize(&mut out).map_err(|_| ApiError::ZeroVector)?;
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
        assert_eq!(validate_vector(&[Some(3.0), Some(4.0)], 2).ok(), Some(vec![0.6, 0.8]));
    }
}
