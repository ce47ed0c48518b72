//! `GET /v1/documents/{*id}`: one document as the index holds it.
//!
//! Ids are the chatbot's article URLs, so the route takes the rest of the
//! path, slashes included: `/v1/documents/https://help.example/a/b`. The id
//! is percent-decoded like any path; an id that itself contains `%`, `?` or
//! `#` must be sent percent-encoded. Documents past their Redis deadline are
//! 404, as they are absent from search results.

use std::time::{Duration, UNIX_EPOCH};

use axum::extract::{
    rejection::{PathRejection, QueryRejection},
    Path, Query, State,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{responses::Unauthorized, AppState};
use crate::problem::{ApiError, Problem, PROBLEM_JSON};
use crate::{index::Index, query::resolve::live_row};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// Include the vector (384 floats for the chatbot: most of the response).
    #[serde(default)]
    pub with_embedding: bool,
}

/// One document as the index holds it.
// Also what a shard answers its router (`POST /v1/shard/document`), which
// reads it back (hence Deserialize) and answers the client with it, so node
// and router answer alike.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DocumentResponse {
    pub id: String,
    pub url: String,
    /// Always present: null when the stored value has no title.
    #[schema(required = true)]
    pub title: Option<String>,
    /// Always present: null when the stored value has no text.
    #[schema(required = true)]
    pub text: Option<String>,
    /// When Redis expires the key (RFC 3339, UTC, conservatively early);
    /// absent (never null) for keys without a TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub expires_at: Option<String>,
    /// The document's row in the index: the stored embedding scaled to unit
    /// length at load, so it is the vector searches score against, not the
    /// bytes in Redis (same direction, possibly another length). Only with
    /// `?with_embedding=true` (absent otherwise, never null).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub embedding: Option<Vec<f32>>,
    pub index_version: u64,
}

/// One document by id, as the index holds it.
///
/// 404 `document_not_found` for an unknown or expired id; 503 `not_ready`
/// before the first load; 422 `invalid_type` for a malformed query string.
#[utoipa::path(
    get,
    path = "/v1/documents/{*id}",
    operation_id = "get_document",
    tag = "search",
    params(
        ("id" = String, Path, description = "Document id (for the chatbot, the article URL; slashes allowed, percent-encode `%`, `?` and `#`)"),
        DocumentQuery,
    ),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The document", body = DocumentResponse),
        Unauthorized,
        (status = 404, description = "`document_not_found`: no live document has this id", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`invalid_type`: malformed query string", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "`not_ready` or `timeout`", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn document(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<DocumentQuery>, QueryRejection>,
) -> Result<axum::Json<DocumentResponse>, ApiError> {
    let Path(id) = path.map_err(|e| ApiError::InvalidType(e.body_text()))?;
    let Query(query) = query.map_err(|e| ApiError::InvalidType(e.body_text()))?;
    let index = state.ready_index()?;
    Ok(axum::Json(lookup(&index, &id, query.with_embedding)?))
}

/// Document `id` of `index` as both `GET /v1/documents/{*id}` and the
/// shard route answer it.
///
/// # Errors
/// `document_not_found` for an unknown or expired id.
pub fn lookup(index: &Index, id: &str, with_embedding: bool) -> Result<DocumentResponse, ApiError> {
    let row = live_row(index, id)?;
    let doc = index.doc(row);
    Ok(DocumentResponse {
        id: doc.id.to_string(),
        url: doc.url().to_owned(),
        title: doc.title.as_deref().map(str::to_owned),
        text: doc.text.as_deref().map(str::to_owned),
        expires_at: doc
            .expires_at_ms
            .map(|ms| humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()),
        embedding: with_embedding.then(|| index.row(row).to_vec()),
        index_version: index.version(),
    })
}
