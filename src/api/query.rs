//! A request's `vector`, `text` or `id` → the unit-length query vector to scan with.
//!
//! Shared by every endpoint that takes a query ([`resolve_query`]), so a
//! single search and a batch item follow the same rules and error codes.
//! [`resolve_query_or_id`] adds "more like this": an `id` query scans with
//! that document's stored row and names the row to leave out of the results.
//! Owns the mapping of [`EmbedError`] to [`ApiError`] and the dimension check
//! of embedded text against the index: a provider whose vectors have another
//! length gets a 502 that says so, never a wrong answer.

use tracing::warn;

use super::{
    error::ApiError,
    search::{normalized, validate_vector},
    AppState,
};
use crate::{
    embed::{EmbedError, QueryEmbedder},
    index::{now_ms, Index},
};

/// Longest `text` sent to a provider, in bytes. Questions are short; this
/// stops a 1 MB body from becoming a 1 MB (and billed) provider request.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// The query vector at unit length, from exactly one of `vector` or `text`.
///
/// `dim` is the index dimension the answer will be scanned against (0: an
/// empty index, any length accepted).
///
/// # Errors
/// `query_required` or `ambiguous_query` unless exactly one is given; the
/// vector checks of [`validate_vector`]; for text `text_search_disabled`,
/// `empty_text`, `text_too_long`, `embedder_failed`, `embedder_timeout` or
/// `embedder_wrong_dimension`.
pub async fn resolve_query(
    state: &AppState,
    vector: Option<&[Option<f64>]>,
    text: Option<&str>,
    dim: usize,
) -> Result<Vec<f32>, ApiError> {
    match (vector, text) {
        (Some(_), Some(_)) => Err(ApiError::AmbiguousQuery),
        (None, None) => Err(ApiError::QueryRequired),
        (Some(vector), None) => validate_vector(vector, dim).and_then(normalized),
        (None, Some(text)) => {
            let embedder = state.embedder.as_deref().ok_or(ApiError::TextSearchDisabled)?;
            embed_text(embedder, text, dim).await
        }
    }
}

/// A query resolved against one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedQuery {
    /// Unit length, of the snapshot's dimension.
    pub vector: Vec<f32>,
    /// For an `id` query: that document's row, which the results must not contain.
    pub exclude_row: Option<usize>,
}

/// As [`resolve_query`], with `id` as a third, mutually exclusive kind of
/// query: the document's row in `index` is the query vector (already unit
/// length, so used as stored) and is excluded from the results.
///
/// # Errors
/// `query_required` or `ambiguous_query` unless exactly one of the three is
/// given; `document_not_found` for an id with no live row in `index`;
/// otherwise those of [`resolve_query`].
pub async fn resolve_query_or_id(
    state: &AppState,
    index: &Index,
    vector: Option<&[Option<f64>]>,
    text: Option<&str>,
    id: Option<&str>,
) -> Result<ResolvedQuery, ApiError> {
    match id {
        Some(_) if vector.is_some() || text.is_some() => Err(ApiError::AmbiguousQuery),
        Some(id) => {
            let row = live_row(index, id)?;
            Ok(ResolvedQuery { vector: index.row(row).to_vec(), exclude_row: Some(row) })
        }
        None => {
            let vector = resolve_query(state, vector, text, index.dim()).await?;
            Ok(ResolvedQuery { vector, exclude_row: None })
        }
    }
}

/// The row of document `id`, unless it is absent or past its Redis deadline
/// (an expired document is never returned, so it cannot be looked up either).
///
/// # Errors
/// [`ApiError::DocumentNotFound`].
pub fn live_row(index: &Index, id: &str) -> Result<usize, ApiError> {
    index
        .find(id)
        .filter(|&row| !index.is_expired(row, now_ms()))
        .ok_or_else(|| ApiError::DocumentNotFound { id: id.to_owned() })
}

async fn embed_text(embedder: &QueryEmbedder, text: &str, dim: usize) -> Result<Vec<f32>, ApiError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ApiError::TextTooLong { got: text.len(), max: MAX_TEXT_BYTES });
    }
    let provider = embedder.provider();
    let (vector, _source) = embedder.embed(text).await.map_err(|e| {
        if !matches!(e, EmbedError::EmptyText) {
            warn!(provider = %provider.kind(), host = provider.host(), error.message = %e, error.cause_chain = ?e, "embedding a text query failed");
        }
        to_api_error(e)
    })?;
    if dim != 0 && vector.len() != dim {
        return Err(ApiError::EmbedderWrongDimension {
            provider: provider.kind().as_str(),
            model: provider.model().to_owned(),
            expected: dim,
            got: vector.len(),
        });
    }
    let mut query = vector.to_vec();
    crate::index::unit::scale_to_unit(&mut query).map_err(|_| ApiError::EmbedderFailed {
        provider: provider.kind().as_str(),
        detail: format!("the {} embedding service returned an all-zero vector", provider.kind()),
    })?;
    Ok(query)
}

fn to_api_error(e: EmbedError) -> ApiError {
    match e {
        EmbedError::EmptyText => ApiError::EmptyText,
        EmbedError::Timeout { provider, timeout_ms } => {
            ApiError::EmbedderTimeout { provider: provider.as_str(), timeout_ms }
        }
        EmbedError::Client { provider, .. }
        | EmbedError::BadUrl { provider }
        | EmbedError::Unreachable { provider, .. }
        | EmbedError::Status { provider, .. }
        | EmbedError::BadResponse { provider, .. }
        | EmbedError::Closed { provider } => {
            ApiError::EmbedderFailed { provider: provider.as_str(), detail: e.to_string() }
        }
    }
}
