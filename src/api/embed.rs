//! `POST /v1/embed`: texts → vectors with the server's embedder, so the
//! chatbot's article-embedding script can use the same in-process model as
//! text search (and drop its remote calls).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{extract::Json, responses::Unauthorized, AppState};
use crate::problem::{ApiError, Problem, PROBLEM_JSON};
use crate::{embed::EmbedError, query::resolve::to_api_error};

/// Longest text accepted by `/v1/embed`, in bytes (an article; the model
/// reads its first 256 word pieces).
pub const MAX_EMBED_TEXT_BYTES: usize = 64 * 1024;

/// Embed texts with the server's embedder (the model the index was built with).
#[utoipa::path(
    post,
    path = "/v1/embed",
    operation_id = "embed",
    tag = "search",
    request_body = EmbedRequest,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One vector per text, in order", body = EmbedResponse),
        (status = 400, description = "`invalid_json`", body = Problem, content_type = PROBLEM_JSON),
        Unauthorized,
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = PROBLEM_JSON),
        (status = 415, description = "`unsupported_media_type`", body = Problem, content_type = PROBLEM_JSON),
        (status = 422, description = "`text_search_disabled`, `invalid_batch_size`, `empty_text` (also a text of control characters only) or `text_too_long` (see `errors` for which text), `too_many_tokens` (the local model: more word pieces than SEMSEARCH_EMBEDDER_MAX_REQUEST_TOKENS)", body = Problem, content_type = PROBLEM_JSON),
        (status = 502, description = "`embedder_failed` (an embedding service)", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "`embedder_unavailable` (the local model is busy or failed) or `timeout`", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn embed(
    State(state): State<AppState>,
    Json(req): Json<EmbedRequest>,
) -> Result<axum::Json<EmbedResponse>, ApiError> {
    let embedder = state.embedder.as_deref().ok_or(ApiError::TextSearchDisabled)?;
    let got = req.texts.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    let normalization = req.normalization.unwrap_or_default();
    let mut texts = Vec::with_capacity(got);
    let mut failed = Vec::new();
    for (i, text) in req.texts.iter().enumerate() {
        let text = normalization.apply(text);
        if crate::embed::nothing_to_embed(&text) {
            failed.push((format!("/texts/{i}"), ApiError::EmptyText));
        } else if text.len() > MAX_EMBED_TEXT_BYTES {
            failed.push((format!("/texts/{i}"), ApiError::TextTooLong { got: text.len(), max: MAX_EMBED_TEXT_BYTES }));
        }
        texts.push(text);
    }
    if !failed.is_empty() {
        return Err(ApiError::BatchItems(failed));
    }
    let provider = embedder.provider();
    let embedded = provider.embed_many(texts).await.map_err(|e| match e {
        // The model found no word pieces where we saw characters: still the caller's text, named.
        EmbedError::EmptyTexts { indices } => {
            ApiError::BatchItems(indices.into_iter().map(|i| (format!("/texts/{i}"), ApiError::EmptyText)).collect())
        }
        other => to_api_error(other),
    })?;
    let dimension = embedded.first().map_or(0, |e| e.vector.len());
    let mut embeddings = Vec::with_capacity(got);
    let mut truncated = Vec::with_capacity(got);
    for mut e in embedded {
        // Services may answer unnormalised vectors; the response promises unit length.
        crate::index::unit::scale_to_unit(&mut e.vector).map_err(|_| {
            to_api_error(EmbedError::BadResponse { provider: provider.kind(), reason: "an all-zero vector".into() })
        })?;
        embeddings.push(e.vector);
        truncated.push(e.truncated);
    }
    Ok(axum::Json(EmbedResponse { embeddings, model: provider.model().to_owned(), dimension, truncated }))
}

/// Body of `POST /v1/embed`: texts to embed with the server's embedder, as
/// the article-embedding script would (the same model as the index).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"texts": ["how do I download a file from the command line"], "normalization": "none"}))]
pub struct EmbedRequest {
    /// 1 to SEMSEARCH_MAX_BATCH texts, each at most 64 KiB; longer than 256
    /// word pieces is truncated as sentence-transformers does (`truncated`).
    #[schema(schema_with = texts_schema)]
    pub texts: Vec<String>,
    /// Text preparation: `none` (trim; the default) or `chatbot` (the
    /// chatbot's prepareTextForSearch).
    #[serde(default)]
    pub normalization: Option<crate::embed::Normalization>,
}

/// `texts` as the spec states it: 1 to `SEMSEARCH_MAX_BATCH`'s default
/// (256, as a search batch's `maxItems`) texts of at most 64 KiB of UTF-8,
/// stated in characters (JSON Schema counts those): 16384 always fit.
fn texts_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(MAX_EMBED_TEXT_BYTES / 4)))
        .min_items(Some(1))
        .max_items(Some(256))
        .description(Some(
            "1 to SEMSEARCH_MAX_BATCH (default 256) texts, each at most 64 KiB of UTF-8 (16384 characters always fit); longer than 256 word pieces is truncated as sentence-transformers does (`truncated`).",
        ))
        .build()
}

/// Answer of `POST /v1/embed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EmbedResponse {
    /// One unit-length vector per text, in request order.
    pub embeddings: Vec<Vec<f32>>,
    /// The model that embedded them, e.g. `all-MiniLM-L6-v2`.
    pub model: String,
    pub dimension: usize,
    /// Per text, whether it was cut at 256 word pieces.
    pub truncated: Vec<bool>,
}
