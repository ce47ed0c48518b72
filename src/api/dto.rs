//! Request and response bodies of the search routes, as the OpenAPI
//! document describes them. Plain data: validation lives in
//! [`super::query`], rendering in the handlers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// k when the request does not say (the chatbot's default).
pub const DEFAULT_K: i64 = 3;

fn default_k() -> i64 {
    DEFAULT_K
}

fn default_true() -> bool {
    true
}

/// Body of `POST /v1/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"vector": [0.12, -0.03, 0.51], "k": 3, "min_score": 0.2, "with_text": false}))]
pub struct SearchRequest {
    /// Query embedding, as long as the index dimension (`GET /v1/stats`);
    /// its length does not matter (cosine). Send exactly one of `vector`,
    /// `text` and `id`.
    #[serde(default)]
    #[schema(value_type = Option<Vec<f64>>, min_items = 1)]
    pub vector: Option<Vec<Option<f64>>>,
    /// Question text, embedded server-side by the configured provider
    /// (422 `text_search_disabled` when none is). At most 8 KiB.
    #[serde(default)]
    #[schema(max_length = 8192)]
    pub text: Option<String>,
    /// A document id (for the chatbot, the article URL): find documents like
    /// it. Its stored vector is the query and it is left out of the results.
    #[serde(default)]
    pub id: Option<String>,
    /// How many results; 1 to the server's SEMSEARCH_MAX_K (default 1000).
    #[serde(default = "default_k")]
    #[schema(default = 3, minimum = 1)]
    pub k: i64,
    /// Drop results scoring below this.
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Include each article's text (the bulk of the response).
    #[serde(default = "default_true")]
    #[schema(default = true)]
    pub with_text: bool,
    /// Suffix of the `cache:context:<key>` the results are stored under
    /// (1 to 256 printable ASCII bytes, no spaces); default: a hash of the
    /// query, k and min_score.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = "^[!-~]+$")]
    pub context_key: Option<String>,
}

/// One article. Results are ordered by descending score, ties by ascending url.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResult {
    /// The embedding's Redis key without its prefix.
    pub id: String,
    pub url: String,
    pub title: Option<String>,
    /// Absent when the request said `with_text: false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Cosine similarity, in [-1, 1].
    pub score: f32,
}

/// Why fewer than k results came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FewerReason {
    /// The index holds fewer than k documents.
    IndexSmallerThanK,
    /// `min_score` removed the rest.
    MinScore,
}

/// Answer of `POST /v1/search`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "results": [{"id": "https://example.org/a", "url": "https://example.org/a", "title": "A", "score": 0.83}],
    "took_us": 412,
    "index_version": 7,
    "context": {"key": "cache:context:3f2a", "queued": true}
}))]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    /// Server-side time, in microseconds.
    pub took_us: u64,
    /// The snapshot that answered; changes on every reload or update.
    pub index_version: u64,
    /// Present only when `results` has fewer than k entries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fewer_results_reason: Option<FewerReason>,
    /// Where the results are cached for the chatbot; absent when context
    /// writes are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<ContextRef>,
}

/// Where the results were cached for the chatbot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextRef {
    /// The full Redis key (`cache:context:…`).
    pub key: String,
    /// False when the write queue was full and the context was not stored.
    pub queued: bool,
}

/// Body of `POST /v1/search/batch`: each element is a `/v1/search` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"queries": [{"vector": [0.12, -0.03, 0.51], "k": 2}, {"id": "https://example.org/a", "k": 3}]}))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    #[serde(deserialize_with = "super::extract::objects")]
    pub queries: Vec<SearchRequest>,
}

/// Answers of a batch, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One list per query, in request order, each shaped like `/v1/search` results.
    pub results: Vec<Vec<SearchResult>>,
    /// Per query, why fewer than k results came back (null when k came back).
    pub fewer_results_reasons: Vec<Option<FewerReason>>,
    /// Per query, where its results were cached (null when context writes are off).
    pub contexts: Vec<Option<ContextRef>>,
    pub took_us: u64,
    pub index_version: u64,
}

/// Body of `POST /v1/embed`: texts to embed with the server's embedder, as
/// the article-embedding script would (the same model as the index).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"texts": ["how do I download a file from the command line"], "normalization": "none"}))]
pub struct EmbedRequest {
    /// 1 to SEMSEARCH_MAX_BATCH texts, each at most 64 KiB; longer than 256
    /// word pieces is truncated as sentence-transformers does (`truncated`).
    #[schema(min_items = 1)]
    pub texts: Vec<String>,
    /// Text preparation: `none` (trim; the default) or `chatbot` (the
    /// chatbot's prepareTextForSearch).
    #[serde(default)]
    pub normalization: Option<crate::embed::Normalization>,
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
