//! A request → a [`Prepared`] query: validated, resolved to the unit-length
//! vector to scan with, and with the context key its results go under.
//!
//! Shared by every endpoint that takes a query ([`prepare`] for search and
//! each batch item, [`resolve_query`] for the vector or text alone), so they
//! follow the same rules and error codes.
//! [`resolve_query_or_id`] adds "more like this": an `id` query scans with
//! that document's stored row and names the row to leave out of the results.
//! Owns the mapping of [`EmbedError`] to [`ApiError`] and the dimension check
//! of embedded text against the index: a provider whose vectors have another
//! length gets a 502 that says so, never a wrong answer.

use std::{collections::BTreeMap, sync::Arc};

use roaring::RoaringBitmap;
use tracing::warn;

use super::{
    dto::{SearchFilter, SearchRequest, MAX_FILTER_FIELDS, MAX_FILTER_VALUES, MAX_URL_PREFIX_BYTES},
    AppState,
};
use crate::problem::ApiError;
use crate::{
    embed::{EmbedError, QueryEmbedder},
    index::{
        attributes::{AttrValue, FilterError, RowFilter},
        now_ms, Index,
    },
    store::{context, keys::WritableKey},
};

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
    pub context_key: Option<WritableKey>,
    /// The rows the request's `filter` matches in the snapshot it was
    /// prepared against; `None` without a filter (every row).
    pub rows: Option<Arc<RoaringBitmap>>,
}

/// Validates one request against `index` (shared by `/v1/search` and each
/// batch item, so both answer the same error codes).
///
/// # Errors
/// `invalid_k`, `invalid_context_key`, `invalid_type` (a `min_score` beyond
/// f32), those of [`matching_rows`] and of [`resolve_query_or_id`].
pub async fn prepare(state: &AppState, index: &Index, req: &SearchRequest) -> Result<Prepared, ApiError> {
    let k = validate_k(req.k, state.max_k)?;
    let filter = req.filter.as_ref().map(row_filter).transpose()?.filter(|f| !f.is_empty());
    let rows = filter.as_ref().map(|f| matching_rows(index, f)).transpose()?.flatten().map(Arc::new);
    let canonical = filter.as_ref().map(RowFilter::canonical);
    let chosen_key = match &req.context_key {
        Some(suffix) => Some(state.keys.context_key(suffix).map_err(|_| ApiError::InvalidContextKey)?),
        None => None,
    };
    let resolved =
        resolve_query_or_id(state, index, req.vector.as_deref(), req.text.as_deref(), req.id.as_deref()).await?;
    // serde reads `1e39` into an f32 as infinity; like the same number in
    // `vector` it is refused, not served as "nothing reaches this score".
    let min_score = match req.min_score {
        Some(m) if !m.is_finite() => {
            return Err(ApiError::InvalidType("min_score: the number is outside f32's range".into()))
        }
        m => m,
    };
    let context_key = match (&state.contexts, chosen_key) {
        (None, _) => None,
        (Some(_), Some(key)) => Some(key),
        (Some(_), None) => {
            let hash = match &req.id {
                Some(id) => context::similar_hash(id, k, min_score, canonical.as_deref()),
                None => context::request_hash(&resolved.vector, k, min_score, canonical.as_deref()),
            };
            Some(state.keys.context_key(&hash).map_err(|_| ApiError::InvalidContextKey)?)
        }
    };
    Ok(Prepared { vector: resolved.vector, k, min_score, exclude_row: resolved.exclude_row, context_key, rows })
}

/// A request's `filter` as a [`RowFilter`]: values sorted and deduplicated,
/// so equal filters are equal however they were written.
///
/// # Errors
/// [`ApiError::InvalidFilter`] for a value that is not a string, number,
/// boolean or non-empty list of them, or past the bounds in `super::dto`.
pub fn row_filter(filter: &SearchFilter) -> Result<RowFilter, ApiError> {
    if filter.url_prefix.as_ref().is_some_and(|p| p.len() > MAX_URL_PREFIX_BYTES) {
        return Err(ApiError::InvalidFilter(format!("url_prefix is longer than {MAX_URL_PREFIX_BYTES} bytes")));
    }
    let given = filter.fields.as_ref();
    if given.is_some_and(|f| f.len() > MAX_FILTER_FIELDS) {
        return Err(ApiError::InvalidFilter(format!("at most {MAX_FILTER_FIELDS} fields")));
    }
    let mut fields = BTreeMap::new();
    for (name, value) in given.into_iter().flatten() {
        let bad = |what: &str| ApiError::InvalidFilter(format!("fields.{}: {what}", crate::problem::echo(name)));
        let scalar = |v: &serde_json::Value| {
            AttrValue::from_json(v).ok_or_else(|| bad("a value must be a string, number or boolean"))
        };
        let mut values = match value {
            serde_json::Value::Array(list) if list.is_empty() => {
                return Err(bad("an empty list matches nothing; leave the field out or list values"))
            }
            serde_json::Value::Array(list) if list.len() > MAX_FILTER_VALUES => {
                return Err(bad(&format!("at most {MAX_FILTER_VALUES} values")))
            }
            serde_json::Value::Array(list) => list.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
            one => vec![scalar(one)?],
        };
        values.sort_unstable();
        values.dedup();
        fields.insert(name.as_str().into(), values);
    }
    Ok(RowFilter { url_prefix: filter.url_prefix.as_deref().map(Into::into), fields })
}

/// The rows of `index` that `filter` matches (`None`: every row).
///
/// # Errors
/// `unknown_filter_field` or `filter_type_mismatch`.
pub fn matching_rows(index: &Index, filter: &RowFilter) -> Result<Option<RoaringBitmap>, ApiError> {
    index.matching(filter).map_err(|e| match e {
        FilterError::UnknownField { field } => ApiError::UnknownFilterField { field },
        FilterError::WrongType { field, holds, got } => ApiError::FilterTypeMismatch {
            field,
            holds: holds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or "),
            got: got.as_str(),
        },
    })
}

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

/// A question embedded with `embedder`, at unit length; `dim` as in
/// [`resolve_query`] (the router passes 0: its shards check the dimension).
///
/// # Errors
/// As [`resolve_query`] for text.
pub async fn embed_text(embedder: &QueryEmbedder, text: &str, dim: usize) -> Result<Vec<f32>, ApiError> {
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

/// How an embedding failure is answered.
pub fn to_api_error(e: EmbedError) -> ApiError {
    match e {
        EmbedError::Overloaded { .. } | EmbedError::LocalFailed { .. } | EmbedError::LocalLoad(_) => {
            ApiError::EmbedderUnavailable { detail: e.to_string() }
        }
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
