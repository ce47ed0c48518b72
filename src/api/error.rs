//! `ApiError`: the only thing that becomes an HTTP error response.
//!
//! Every variant maps to one status and one stable `code` (listed in
//! `openapi.yaml`), rendered as RFC 9457 `application/problem+json`:
//! `{"type","title","status","detail","code"}`. Internal causes are logged
//! here once and never echoed to the client.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use thiserror::Error;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Error)]
pub enum ApiError {
    /// 400 `invalid_json`: the body is not syntactically valid JSON.
    #[error("the request body is not valid JSON: {0}")]
    InvalidJson(String),
    /// 415 `unsupported_media_type`: JSON bodies need `Content-Type: application/json`.
    #[error("send the body with Content-Type: application/json")]
    UnsupportedMediaType,
    /// 413 `payload_too_large`: the body exceeds the configured limit.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// 422 `missing_field`: a required field is absent.
    #[error("{0}")]
    MissingField(String),
    /// 422 `unknown_field`: a field the endpoint does not know (typo guard).
    #[error("{0}")]
    UnknownField(String),
    /// 422 `invalid_type`: a field has the wrong JSON type or range.
    #[error("{0}")]
    InvalidType(String),
    /// 422 `null_element`: the vector contains null.
    #[error("vector[{index}] is null; every element must be a number")]
    NullElement { index: usize },
    /// 422 `non_finite`: an element is outside the f32 range.
    #[error("vector[{index}] is outside the range of a 32-bit float")]
    NonFinite { index: usize },
    /// 422 `empty_vector`: the vector has no elements.
    #[error("vector is empty")]
    EmptyVector,
    /// 422 `wrong_dimension`: the vector's length differs from the index's.
    #[error("vector has {got} elements but the index dimension is {expected}")]
    WrongDimension { expected: usize, got: usize },
    /// 422 `zero_vector`: every element is zero, so cosine is undefined.
    #[error("vector is all zeros; cosine similarity is undefined for it")]
    ZeroVector,
    /// 422 `invalid_k`: k is outside `1..=max_k`.
    #[error("k must be between 1 and {max} (got {k})")]
    InvalidK { k: i64, max: usize },
    /// 422 `invalid_context_key`: `context_key` is not 1..=256 printable ASCII bytes.
    #[error("context_key must be 1 to 256 bytes of printable ASCII without spaces")]
    InvalidContextKey,
    /// 403 `forbidden`: the route is disabled in this configuration.
    #[error("{0}")]
    Forbidden(String),
    /// 503 `reload_failed`: a forced reload could not read Redis; the previous index still serves.
    #[error("reload failed, the previous index is still serving: {0}")]
    ReloadFailed(String),
    /// 422 `invalid_batch_size`: a batch holds no queries or more than `max_batch`.
    #[error("a batch must hold between 1 and {max} queries (got {got})")]
    InvalidBatchSize { got: usize, max: usize },
    /// 404 `not_found`: no such route.
    #[error("no route for {0}")]
    NotFound(String),
    /// 405 `method_not_allowed`: the route exists with another method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 503 `not_ready`: the first load from Redis has not finished.
    #[error("the index is not loaded yet: {0}")]
    NotReady(String),
    /// 503 `timeout`: the request took longer than the configured limit.
    #[error("the request took longer than {secs} s")]
    Timeout { secs: u64 },
    /// 422 `query_required`: none of `vector`, `text` and `id` was sent.
    #[error("send a query: \"vector\" (an embedding), \"text\" (a question) or \"id\" (a document, for more like it)")]
    QueryRequired,
    /// 422 `ambiguous_query`: more than one of `vector`, `text` and `id` was sent.
    #[error("send exactly one of \"vector\", \"text\" and \"id\"")]
    AmbiguousQuery,
    /// 404 `document_not_found`: no live document has this id (never
    /// loaded, deleted, or past its Redis expiry).
    #[error("no document with id {id:?}")]
    DocumentNotFound { id: String },
    /// 422 `text_search_disabled`: `text` was sent but no embedding provider is configured.
    #[error("text search is not configured on this server (SEMSEARCH_EMBEDDER is unset); send \"vector\" instead")]
    TextSearchDisabled,
    /// 422 `empty_text`: nothing is left of `text` after normalisation.
    #[error("text is empty after normalisation")]
    EmptyText,
    /// 422 `text_too_long`: `text` exceeds the limit sent to the provider.
    #[error("text is {got} bytes long; the limit is {max}")]
    TextTooLong { got: usize, max: usize },
    /// 502 `embedder_failed`: the embedding provider is unreachable, answered
    /// an error after its retries, or sent an unusable body. `detail` names the provider.
    #[error("{detail}")]
    EmbedderFailed { provider: &'static str, detail: String },
    /// 504 `embedder_timeout`: the embedding provider did not answer in time.
    #[error("the {provider} embedding service did not answer within {timeout_ms} ms")]
    EmbedderTimeout { provider: &'static str, timeout_ms: u64 },
    /// 502 `embedder_wrong_dimension`: the provider's vectors cannot be
    /// compared with the index's, so no answer is better than a wrong one.
    #[error(
        "the {provider} embedding service returns {got}-dimensional vectors for model {model:?}, but the index holds {expected}-dimensional embeddings; configure the model that embedded the articles"
    )]
    EmbedderWrongDimension { provider: &'static str, model: String, expected: usize, got: usize },
    /// 500 `internal`: a bug. The cause is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidJson(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::MissingField(_)
            | Self::UnknownField(_)
            | Self::InvalidType(_)
            | Self::NullElement { .. }
            | Self::NonFinite { .. }
            | Self::EmptyVector
            | Self::WrongDimension { .. }
            | Self::ZeroVector
            | Self::InvalidK { .. }
            | Self::QueryRequired
            | Self::AmbiguousQuery
            | Self::TextSearchDisabled
            | Self::EmptyText
            | Self::TextTooLong { .. }
            | Self::InvalidContextKey
            | Self::InvalidBatchSize { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::ReloadFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::EmbedderFailed { .. } | Self::EmbedderWrongDimension { .. } => StatusCode::BAD_GATEWAY,
            Self::EmbedderTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::NotFound(_) | Self::DocumentNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotReady(_) | Self::Timeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code; clients switch on this, not on text.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidJson(_) => "invalid_json",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::MissingField(_) => "missing_field",
            Self::UnknownField(_) => "unknown_field",
            Self::InvalidType(_) => "invalid_type",
            Self::NullElement { .. } => "null_element",
            Self::NonFinite { .. } => "non_finite",
            Self::EmptyVector => "empty_vector",
            Self::WrongDimension { .. } => "wrong_dimension",
            Self::ZeroVector => "zero_vector",
            Self::InvalidK { .. } => "invalid_k",
            Self::InvalidContextKey => "invalid_context_key",
            Self::Forbidden(_) => "forbidden",
            Self::ReloadFailed(_) => "reload_failed",
            Self::InvalidBatchSize { .. } => "invalid_batch_size",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotReady(_) => "not_ready",
            Self::Timeout { .. } => "timeout",
            Self::QueryRequired => "query_required",
            Self::AmbiguousQuery => "ambiguous_query",
            Self::DocumentNotFound { .. } => "document_not_found",
            Self::TextSearchDisabled => "text_search_disabled",
            Self::EmptyText => "empty_text",
            Self::TextTooLong { .. } => "text_too_long",
            Self::EmbedderFailed { .. } => "embedder_failed",
            Self::EmbedderTimeout { .. } => "embedder_timeout",
            Self::EmbedderWrongDimension { .. } => "embedder_wrong_dimension",
            Self::Internal(_) => "internal",
        }
    }
}

/// The RFC 9457 body.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error.message = %cause, "internal error answering a request");
        }
        let body = Problem {
            type_: format!("urn:semsearch:problem:{}", self.code()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.code(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
