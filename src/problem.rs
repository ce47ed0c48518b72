//! [`ApiError`]: the only thing that becomes an HTTP error response, for the
//! node's routes, the router's, and the query path both share.
//!
//! Every variant maps to one status and one stable `code` (listed in
//! `openapi.yaml`), written once in the table of `problems!`; answers are
//! RFC 9457 `application/problem+json`: `{"type","title","status","detail","code"}`.
//! Internal causes are logged here once and never echoed to the client.
//!
//! It sits at the crate's top, below `api`, `router` and `query`, because
//! all three produce these errors; the OpenAPI response sets that list them
//! per route stay in `api::responses`.

use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Declares, from one table, [`ProblemCode`] (whose variants utoipa lists
/// in the `ProblemCode` schema of `openapi.yaml`), its string form and
/// `ALL`, and [`ApiError::status`] and [`ApiError::problem_code`]: each
/// variant of [`ApiError`] gets its status and code in exactly one line.
/// A variant missing from the table does not compile (the matches are
/// exhaustive); [`ApiError::BatchItems`] answers with its first item's.
/// The `@also` rows are variants that answer with an existing code (their
/// own detail, the same contract for clients): `Variant => STATUS, Code;`.
macro_rules! problems {
    (
        $($variant:ident => $status:ident, $code:literal;)*
        @also { $($alias:ident => $alias_status:ident, $alias_code:ident;)* }
    ) => {
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

            /// The problem's `type`: `urn:semsearch:problem:<code>`.
            pub fn type_uri(self) -> String {
                format!("urn:semsearch:problem:{}", self.as_str())
            }
        }

        impl ApiError {
            pub fn status(&self) -> StatusCode {
                match self {
                    $(Self::$variant { .. } => StatusCode::$status,)*
                    $(Self::$alias { .. } => StatusCode::$alias_status,)*
                    Self::BatchItems(items) => {
                        items.first().map_or(StatusCode::UNPROCESSABLE_ENTITY, |(_, e)| e.status())
                    }
                }
            }

            /// The code as a type: the exhaustive match is what keeps the
            /// list in `openapi.yaml` ([`ProblemCode`]) complete.
            pub fn problem_code(&self) -> ProblemCode {
                match self {
                    $(Self::$variant { .. } => ProblemCode::$variant,)*
                    $(Self::$alias { .. } => ProblemCode::$alias_code,)*
                    Self::BatchItems(items) => {
                        items.first().map_or(ProblemCode::InvalidBatchSize, |(_, e)| e.problem_code())
                    }
                }
            }
        }
    };
}

problems! {
    InvalidJson => BAD_REQUEST, "invalid_json";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type";
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload_too_large";
    MissingField => UNPROCESSABLE_ENTITY, "missing_field";
    UnknownField => UNPROCESSABLE_ENTITY, "unknown_field";
    InvalidType => UNPROCESSABLE_ENTITY, "invalid_type";
    NullElement => UNPROCESSABLE_ENTITY, "null_element";
    NonFinite => UNPROCESSABLE_ENTITY, "non_finite";
    EmptyVector => UNPROCESSABLE_ENTITY, "empty_vector";
    WrongDimension => UNPROCESSABLE_ENTITY, "wrong_dimension";
    ZeroVector => UNPROCESSABLE_ENTITY, "zero_vector";
    InvalidK => UNPROCESSABLE_ENTITY, "invalid_k";
    InvalidContextKey => UNPROCESSABLE_ENTITY, "invalid_context_key";
    InvalidBatchSize => UNPROCESSABLE_ENTITY, "invalid_batch_size";
    TooManyResults => UNPROCESSABLE_ENTITY, "too_many_results";
    ResponseTooLarge => UNPROCESSABLE_ENTITY, "response_too_large";
    Unauthorized => UNAUTHORIZED, "unauthorized";
    Forbidden => FORBIDDEN, "forbidden";
    ReloadFailed => SERVICE_UNAVAILABLE, "reload_failed";
    NotFound => NOT_FOUND, "not_found";
    DocumentNotFound => NOT_FOUND, "document_not_found";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "method_not_allowed";
    NotReady => SERVICE_UNAVAILABLE, "not_ready";
    Timeout => SERVICE_UNAVAILABLE, "timeout";
    Overloaded => SERVICE_UNAVAILABLE, "overloaded";
    QueryRequired => UNPROCESSABLE_ENTITY, "query_required";
    AmbiguousQuery => UNPROCESSABLE_ENTITY, "ambiguous_query";
    TextSearchDisabled => UNPROCESSABLE_ENTITY, "text_search_disabled";
    ModeNeedsText => UNPROCESSABLE_ENTITY, "mode_needs_text";
    EmptyText => UNPROCESSABLE_ENTITY, "empty_text";
    TextTooLong => UNPROCESSABLE_ENTITY, "text_too_long";
    EmbedderFailed => BAD_GATEWAY, "embedder_failed";
    EmbedderTimeout => GATEWAY_TIMEOUT, "embedder_timeout";
    EmbedderWrongDimension => BAD_GATEWAY, "embedder_wrong_dimension";
    EmbedderUnavailable => SERVICE_UNAVAILABLE, "embedder_unavailable";
    InvalidFilter => UNPROCESSABLE_ENTITY, "invalid_filter";
    UnknownFilterField => UNPROCESSABLE_ENTITY, "unknown_filter_field";
    FilterTypeMismatch => UNPROCESSABLE_ENTITY, "filter_type_mismatch";
    ShardUnavailable => SERVICE_UNAVAILABLE, "shard_unavailable";
    ShardMisconfigured => SERVICE_UNAVAILABLE, "shard_misconfigured";
    BadRequest => BAD_REQUEST, "bad_request";
    UriTooLong => URI_TOO_LONG, "uri_too_long";
    HeadersTooLarge => REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large";
    TooManyTokens => UNPROCESSABLE_ENTITY, "too_many_tokens";
    Internal => INTERNAL_SERVER_ERROR, "internal";
    @also {
        RequestsBusy => SERVICE_UNAVAILABLE, Overloaded;
        EmbedderBusy => SERVICE_UNAVAILABLE, Overloaded;
    }
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
    /// 422 `text_search_disabled`: a `text` query needs an embedding (mode
    /// `hybrid`, the default, or `vector`) and no embedder is configured.
    #[error("text search with embeddings is not configured on this server (no SEMSEARCH_EMBEDDER, or the local model's files are missing); send \"mode\": \"lexical\" to search by words, or \"vector\" instead of text")]
    TextSearchDisabled,
    /// 422 `mode_needs_text`: `lexical` or `hybrid` ranking, or `hybrid`
    /// options, asked for a `vector` or `id` query, which has no words.
    #[error("{0}")]
    ModeNeedsText(String),
    /// 422 `empty_text`: nothing a model could read is left of `text` after
    /// normalisation (`crate::embed::nothing_to_embed`).
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
    /// 503 `shard_misconfigured` (`semsearch router` only): the router and
    /// its shards do not fit together (a shard refuses the router's key; a
    /// replica serves another shard, no shard, another shard count, key
    /// space or dimension); `detail` says what to fix. An operator's error,
    /// so never a 401 or a wrong answer to the client; `/readyz` says it too.
    #[error("the router's shards are misconfigured: {0}")]
    ShardMisconfigured(String),
    /// 400 `bad_request`: the request line or a header is not valid HTTP
    /// (answered by the HTTP parser, see `api::head_errors`).
    #[error("the request is not valid HTTP/1.1 (request line or a header)")]
    BadRequest,
    /// 414 `uri_too_long`: the request target exceeds the parser's limit.
    #[error("the request URI is too long")]
    UriTooLong,
    /// 431 `headers_too_large`: the request head exceeds the parser's buffer
    /// or header count.
    #[error("the request headers are too large")]
    HeadersTooLarge,
    /// 422 `too_many_tokens`: the texts of one `/v1/embed` request hold more
    /// word pieces than one request may keep the local model busy for.
    #[error("the texts hold more than {max} word pieces (at least {tokens}); send them in smaller requests")]
    TooManyTokens { tokens: usize, max: usize },
    /// 503 `overloaded`: every request slot of the server is taken (HTTP/1
    /// requests and HTTP/2 streams count alike, see `api::server`).
    #[error("all {limit} request slots of this server are taken; retry shortly")]
    RequestsBusy { limit: usize },
    /// 503 `overloaded`: a text question could not start on the in-process
    /// embedder within its wait budget (it is busy, e.g. with bulk
    /// `/v1/embed` work); refused rather than left to time out.
    #[error("the embedder could not start this question within {budget_ms} ms; retry shortly")]
    EmbedderBusy { budget_ms: u64 },
    /// 500 `internal`: a bug. The cause is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// Stable machine-readable code; clients switch on this, not on text.
    pub fn code(&self) -> &'static str {
        self.problem_code().as_str()
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

impl ApiError {
    /// The RFC 9457 body of this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        Problem {
            type_: self.problem_code().type_uri(),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: self.to_string(),
            code: self.problem_code(),
            errors: match self {
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
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let Self::Internal(cause) = &self {
            tracing::error!(error.message = %cause, "internal error answering a request");
        }
        let bytes = serde_json::to_vec(&self.problem()).unwrap_or_default();
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
