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
use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The error answers of the search routes (`/v1/search` and
/// `/v1/search/batch`), listed once for both in the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // only its OpenAPI description is used
pub enum SearchErrors {
    #[response(status = 400, description = "`invalid_json`", content_type = "application/problem+json")]
    InvalidJson(Problem),
    #[response(
        status = 401,
        description = "`unauthorized`: API keys are configured and none was sent",
        content_type = "application/problem+json"
    )]
    Unauthorized(Problem),
    #[response(
        status = 404,
        description = "`document_not_found`: an `id` query names no live document",
        content_type = "application/problem+json"
    )]
    DocumentNotFound(Problem),
    #[response(status = 413, description = "`payload_too_large`", content_type = "application/problem+json")]
    PayloadTooLarge(Problem),
    #[response(status = 415, description = "`unsupported_media_type`", content_type = "application/problem+json")]
    UnsupportedMediaType(Problem),
    #[response(
        status = 422,
        description = "The body is JSON of the wrong shape (for a batch also `invalid_batch_size`): see `code`",
        content_type = "application/problem+json"
    )]
    WrongShape(Problem),
    #[response(
        status = 502,
        description = "`embedder_failed` or `embedder_wrong_dimension` (text queries)",
        content_type = "application/problem+json"
    )]
    EmbedderFailed(Problem),
    #[response(
        status = 503,
        description = "`not_ready`, `overloaded` or `timeout`; see Retry-After",
        content_type = "application/problem+json",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
    )]
    Unavailable(Problem),
    #[response(
        status = 504,
        description = "`embedder_timeout` (text queries)",
        content_type = "application/problem+json"
    )]
    EmbedderTimeout(Problem),
}

/// 401 on a route behind the search keys, listed once for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 401,
    description = "`unauthorized`: API keys are configured and none was sent",
    content_type = "application/problem+json"
)]
#[allow(dead_code)] // only its OpenAPI description is used
pub struct Unauthorized(Problem);

/// Declares [`ProblemCode`] once: the enum (whose variants utoipa lists in
/// the `ProblemCode` schema of `openapi.yaml`), its string form and `ALL`.
macro_rules! problem_codes {
    ($($variant:ident => $code:literal,)*) => {
        /// Every stable `code` a problem response can carry; new codes may be
        /// added, existing ones never change meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ProblemCode {
            $($variant,)*
        }

        impl ProblemCode {
            pub const ALL: &[ProblemCode] = &[$(ProblemCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProblemCode::$variant => $code,)*
                }
            }
        }
    };
}

problem_codes! {
    InvalidJson => "invalid_json",
    UnsupportedMediaType => "unsupported_media_type",
    PayloadTooLarge => "payload_too_large",
    MissingField => "missing_field",
    UnknownField => "unknown_field",
    InvalidType => "invalid_type",
    NullElement => "null_element",
    NonFinite => "non_finite",
    EmptyVector => "empty_vector",
    WrongDimension => "wrong_dimension",
    ZeroVector => "zero_vector",
    InvalidK => "invalid_k",
    InvalidContextKey => "invalid_context_key",
    InvalidBatchSize => "invalid_batch_size",
    TooManyResults => "too_many_results",
    ResponseTooLarge => "response_too_large",
    Unauthorized => "unauthorized",
    Forbidden => "forbidden",
    ReloadFailed => "reload_failed",
    NotFound => "not_found",
    DocumentNotFound => "document_not_found",
    MethodNotAllowed => "method_not_allowed",
    NotReady => "not_ready",
    Timeout => "timeout",
    Overloaded => "overloaded",
    QueryRequired => "query_required",
    AmbiguousQuery => "ambiguous_query",
    TextSearchDisabled => "text_search_disabled",
    EmptyText => "empty_text",
    TextTooLong => "text_too_long",
    EmbedderFailed => "embedder_failed",
    EmbedderTimeout => "embedder_timeout",
    EmbedderWrongDimension => "embedder_wrong_dimension",
    EmbedderUnavailable => "embedder_unavailable",
    InvalidFilter => "invalid_filter",
    UnknownFilterField => "unknown_filter_field",
    FilterTypeMismatch => "filter_type_mismatch",
    ShardUnavailable => "shard_unavailable",
    Internal => "internal",
}

/// Longest client-sent value echoed in a problem `detail`, in characters.
pub const MAX_ECHO_CHARS: usize = 200;

/// A client-sent value as an error message may repeat it: at most
/// [`MAX_ECHO_CHARS`] characters, then `…` (a 1 MB id was echoed whole).
pub fn echo(value: &str) -> std::borrow::Cow<'_, str> {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]).into(),
        None => value.into(),
    }
}

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
    /// 401 `unauthorized`: the route needs a Bearer API key and none, or an
    /// unknown one, was sent. Answered with `WWW-Authenticate: Bearer`.
    #[error("send a valid API key as `Authorization: Bearer <key>`")]
    Unauthorized,
    /// 403 `forbidden`: the route is disabled in this configuration, or the
    /// key is valid but not an admin key.
    #[error("{0}")]
    Forbidden(String),
    /// 503 `reload_failed`: a forced reload could not read Redis; the previous index still serves.
    #[error("reload failed, the previous index is still serving: {0}")]
    ReloadFailed(String),
    /// 422 `invalid_batch_size`: a batch holds no queries or more than `max_batch`.
    #[error("a batch must hold between 1 and {max} queries (got {got})")]
    InvalidBatchSize { got: usize, max: usize },
    /// 422 `too_many_results`: the k of all queries of one request add up to
    /// more than the per-request budget.
    #[error("the queries ask for {asked} results in all; one request may ask for at most {max}")]
    TooManyResults { asked: usize, max: usize },
    /// 422 `response_too_large`: the texts and titles of the results exceed
    /// the per-request budget; ask for fewer results or `with_text: false`.
    #[error("the results' texts would take more than {max_bytes} bytes; ask for fewer results or with_text: false")]
    ResponseTooLarge { max_bytes: usize },
    /// The status and `code` of the first failing item of a list (batch
    /// queries, texts to embed); the problem's `errors` lists every failing
    /// item with its JSON pointer (`/queries/3`).
    #[error("{}: {}", .0[0].0, .0[0].1)]
    BatchItems(Vec<(String, ApiError)>),
    /// 503 `embedder_unavailable`: the in-process embedder is overloaded or
    /// failed on this request; retry after `Retry-After`.
    #[error("{detail}")]
    EmbedderUnavailable { detail: String },
    /// 404 `not_found`: no such route.
    #[error("no route for {}", echo(.0))]
    NotFound(String),
    /// 405 `method_not_allowed`: the route exists with another method.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 503 `not_ready`: the first load from Redis has not finished.
    #[error("the index is not loaded yet: {0}")]
    NotReady(String),
    /// 503 `timeout`: the request took longer than the configured limit.
    #[error("the request took longer than the limit of {limit_ms} ms")]
    Timeout { limit_ms: u128 },
    /// 503 `overloaded`: `limit` searches are already running; retry after
    /// `Retry-After` seconds. Refused at once rather than queued, so a burst
    /// cannot pile up behind the CPU-bound scans.
    #[error("{limit} searches are already running; retry shortly")]
    Overloaded { limit: usize },
    /// 422 `query_required`: none of `vector`, `text` and `id` was sent.
    #[error("send a query: \"vector\" (an embedding), \"text\" (a question) or \"id\" (a document, for more like it)")]
    QueryRequired,
    /// 422 `ambiguous_query`: more than one of `vector`, `text` and `id` was sent.
    #[error("send exactly one of \"vector\", \"text\" and \"id\"")]
    AmbiguousQuery,
    /// 404 `document_not_found`: no live document has this id (never
    /// loaded, deleted, or past its Redis expiry).
    #[error("no document with id {:?}", echo(id))]
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
    /// 422 `invalid_filter`: `filter` has a wrong shape (a field value that
    /// is not a string, number, boolean or a non-empty list of them; too many
    /// fields or values; too long a `url_prefix`).
    #[error("filter: {0}")]
    InvalidFilter(String),
    /// 422 `unknown_filter_field`: no document of the index has this attribute.
    #[error("filter: no document has the attribute {:?}", echo(field))]
    UnknownFilterField { field: String },
    /// 422 `filter_type_mismatch`: the attribute never holds a value of this type.
    #[error("filter: attribute {:?} holds {holds} values, not {got}", echo(field))]
    FilterTypeMismatch { field: String, holds: String, got: &'static str },
    /// 503 `shard_unavailable` (`semsearch router` only): no replica of
    /// this shard answered, so there is no exact answer; the router never
    /// returns a partial one.
    #[error("shard {shard} has no healthy replica ({replicas} tried); no partial answer is given")]
    ShardUnavailable { shard: usize, replicas: usize },
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
            | Self::InvalidBatchSize { .. }
            | Self::TooManyResults { .. }
            | Self::ResponseTooLarge { .. }
            | Self::InvalidFilter(_)
            | Self::UnknownFilterField { .. }
            | Self::FilterTypeMismatch { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::ReloadFailed(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::EmbedderFailed { .. } | Self::EmbedderWrongDimension { .. } => StatusCode::BAD_GATEWAY,
            Self::EmbedderTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::NotFound(_) | Self::DocumentNotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotReady(_)
            | Self::Timeout { .. }
            | Self::Overloaded { .. }
            | Self::EmbedderUnavailable { .. }
            | Self::ShardUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BatchItems(items) => items.first().map_or(StatusCode::UNPROCESSABLE_ENTITY, |(_, e)| e.status()),
        }
    }

    /// Stable machine-readable code; clients switch on this, not on text.
    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
    }

    /// The code as a type: the exhaustive match below is what keeps the
    /// list in `openapi.yaml` ([`ProblemCode`]) complete.
    pub fn problem_code(&self) -> ProblemCode {
        match self {
            Self::InvalidJson(_) => ProblemCode::InvalidJson,
            Self::UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            Self::PayloadTooLarge { .. } => ProblemCode::PayloadTooLarge,
            Self::MissingField(_) => ProblemCode::MissingField,
            Self::UnknownField(_) => ProblemCode::UnknownField,
            Self::InvalidType(_) => ProblemCode::InvalidType,
            Self::NullElement { .. } => ProblemCode::NullElement,
            Self::NonFinite { .. } => ProblemCode::NonFinite,
            Self::EmptyVector => ProblemCode::EmptyVector,
            Self::WrongDimension { .. } => ProblemCode::WrongDimension,
            Self::ZeroVector => ProblemCode::ZeroVector,
            Self::InvalidK { .. } => ProblemCode::InvalidK,
            Self::InvalidContextKey => ProblemCode::InvalidContextKey,
            Self::TooManyResults { .. } => ProblemCode::TooManyResults,
            Self::ResponseTooLarge { .. } => ProblemCode::ResponseTooLarge,
            Self::InvalidBatchSize { .. } => ProblemCode::InvalidBatchSize,
            Self::Unauthorized => ProblemCode::Unauthorized,
            Self::Forbidden(_) => ProblemCode::Forbidden,
            Self::ReloadFailed(_) => ProblemCode::ReloadFailed,
            Self::NotFound(_) => ProblemCode::NotFound,
            Self::DocumentNotFound { .. } => ProblemCode::DocumentNotFound,
            Self::MethodNotAllowed => ProblemCode::MethodNotAllowed,
            Self::NotReady(_) => ProblemCode::NotReady,
            Self::Timeout { .. } => ProblemCode::Timeout,
            Self::Overloaded { .. } => ProblemCode::Overloaded,
            Self::QueryRequired => ProblemCode::QueryRequired,
            Self::AmbiguousQuery => ProblemCode::AmbiguousQuery,
            Self::TextSearchDisabled => ProblemCode::TextSearchDisabled,
            Self::EmptyText => ProblemCode::EmptyText,
            Self::TextTooLong { .. } => ProblemCode::TextTooLong,
            Self::EmbedderFailed { .. } => ProblemCode::EmbedderFailed,
            Self::EmbedderTimeout { .. } => ProblemCode::EmbedderTimeout,
            Self::EmbedderWrongDimension { .. } => ProblemCode::EmbedderWrongDimension,
            Self::EmbedderUnavailable { .. } => ProblemCode::EmbedderUnavailable,
            Self::InvalidFilter(_) => ProblemCode::InvalidFilter,
            Self::UnknownFilterField { .. } => ProblemCode::UnknownFilterField,
            Self::FilterTypeMismatch { .. } => ProblemCode::FilterTypeMismatch,
            Self::ShardUnavailable { .. } => ProblemCode::ShardUnavailable,
            Self::Internal(_) => ProblemCode::Internal,
            Self::BatchItems(items) => items.first().map_or(ProblemCode::InvalidBatchSize, |(_, e)| e.problem_code()),
        }
    }
}

/// One failing item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemProblem {
    /// JSON pointer to the item in the request body, e.g. `/queries/3`.
    pub pointer: String,
    pub code: ProblemCode,
    pub detail: String,
}

/// The RFC 9457 body of every error (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(
    title = "Problem",
    example = json!({
        "type": "urn:semsearch:problem:wrong_dimension",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "vector has 2 elements but the index dimension is 384",
        "code": "wrong_dimension"
    })
)]
pub struct Problem {
    /// `urn:semsearch:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The HTTP reason phrase of `status`.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status, repeated for clients that lose it.
    pub status: u16,
    /// What went wrong, for humans; never parse it.
    pub detail: String,
    /// What went wrong, for programs: stable across releases.
    pub code: ProblemCode,
    /// Batch requests only: every failing query, in request order (`code`
    /// and `status` above are those of the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ItemProblem>>,
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
            code: self.problem_code(),
            errors: match &self {
                Self::BatchItems(items) => Some(
                    items
                        .iter()
                        .map(|(pointer, e)| ItemProblem {
                            pointer: pointer.clone(),
                            code: e.problem_code(),
                            detail: e.to_string(),
                        })
                        .collect(),
                ),
                _ => None,
            },
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_code_serializes_as_its_string() {
        for code in ProblemCode::ALL {
            let json = serde_json::to_value(code).expect("a unit variant serializes");
            assert_eq!(json, code.as_str(), "{code:?}");
        }
    }

    #[test]
    fn unauthorized_asks_for_a_bearer_token() {
        let res = ApiError::Unauthorized.into_response();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(res.headers().get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok()), Some("Bearer"));
    }
}
