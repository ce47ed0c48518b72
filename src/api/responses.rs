//! The error answers each route declares in the OpenAPI document, listed
//! once per group of routes. Only their descriptions are used: the errors
//! themselves are [`crate::problem::ApiError`].

use crate::problem::Problem;

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
