//! A request's `vector` or `text` → the unit-length query vector to scan with.
//!
//! Shared by every endpoint that takes a query ([`resolve_query`]), so a
//! single search and a batch item follow the same rules and error codes.
//! Owns the mapping of [`EmbedError`] to [`ApiError`] and the dimension check
//! of embedded text against the index: a provider whose vectors have another
//! length gets a 502 that says so, never a wrong answer.

use tracing::warn;

use super::{
    error::ApiError,
    search::{normalized, validate_vector},
    AppState,
};
use crate::embed::{EmbedError, QueryEmbedder};

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
    crate::store::decode::normalize(&mut query).map_err(|_| ApiError::EmbedderFailed {
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
