//! What the router and its shards say to each other: `POST /v1/shard/search`
//! carries resolved queries ([`ShardRequest`]), each shard answers its exact
//! top-k with what the router needs to answer as one node would
//! ([`ShardResponse`]). Typed on both ends, so a field is never lost or
//! misread in between (serde_json once wrote an f32 infinity as `null`,
//! which a shard read as "no minimum").
//!
//! Not in `openapi.yaml`: clients talk to a node or to the router through
//! the public routes; this route is between semsearch processes of one
//! version (upgrade the shards before the router).
//!
//! Exactness across shards: each shard holds disjoint documents and returns
//! the exact top-k of its own under the tie rule, so the merge is exact
//! (`router::merge`); [`Reach`] adds up into the single node's; and a filter
//! is evaluated leniently on each shard (a field it lacks matches nothing
//! there) with the kinds each field holds returned, so the router checks the
//! filter against the union, as one node holding everything would.

use std::collections::BTreeMap;

use semsearch_lexical::{CorpusStats, FieldStats};
use serde::{Deserialize, Serialize};

use super::dto::{SearchFilter, SearchMode, Snippet};
use crate::{
    index::{
        attributes::{AttrKind, RowFilter},
        fusion::Fusion,
        Index, OwnedLiveQuery,
    },
    problem::ApiError,
};

/// Body of `POST /v1/shard/search`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardRequest {
    pub queries: Vec<ShardQuery>,
}

/// One query, resolved by the router.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardQuery {
    /// Unit length: a client's vector normalised, a text's embedding, or an
    /// `id`'s stored row.
    pub vector: Vec<f32>,
    pub k: usize,
    pub min_score: Option<f32>,
    /// A document never returned: an `id` query's own (held by one shard).
    #[serde(default)]
    pub exclude_id: Option<String>,
    /// The plan's filter in its canonical form.
    #[serde(default)]
    pub filter: Option<SearchFilter>,
    /// Whether hits carry their text (the router asks for it when the
    /// client does or when it writes contexts).
    pub with_text: bool,
    #[serde(default)]
    pub mode: SearchMode,
    /// `lexical` and `hybrid`: the question's terms with the whole corpus'
    /// statistics for them (and, for the hits of a hybrid query, the
    /// fusion's constants), gathered from every shard first.
    #[serde(default)]
    pub words: Option<ShardWords>,
    /// Hits, or only the best scores (the router's second phase of a
    /// hybrid query).
    #[serde(default)]
    pub want: ShardWant,
    /// `snippet.max_chars`.
    #[serde(default)]
    pub snippet_chars: Option<usize>,
}

/// What a shard returns for a query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShardWant {
    #[default]
    Hits,
    /// The best cosine and the best BM25F among the documents the query
    /// may return: what normalises a hybrid score.
    Best,
}

/// A question's words as the router sends them (analysed once, at the router).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardWords {
    pub terms: Vec<String>,
    /// Over every shard's documents.
    pub stats: WireStats,
    /// `hybrid`, phase 3: the fused score's constants.
    #[serde(default)]
    pub fusion: Option<WireFusion>,
}

/// [`CorpusStats`] on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireStats {
    pub docs: u64,
    pub title_len: u64,
    pub text_len: u64,
    /// Per term of the question, in order.
    pub df: Vec<u64>,
}

impl From<&CorpusStats> for WireStats {
    fn from(s: &CorpusStats) -> Self {
        Self { docs: s.fields.docs, title_len: s.fields.title_len, text_len: s.fields.text_len, df: s.df.clone() }
    }
}

impl From<&WireStats> for CorpusStats {
    fn from(s: &WireStats) -> Self {
        Self { fields: FieldStats { docs: s.docs, title_len: s.title_len, text_len: s.text_len }, df: s.df.clone() }
    }
}

/// [`Fusion`] on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireFusion {
    pub weight: f64,
    pub mu: f64,
    pub best_cosine: f32,
    pub best_lexical: f64,
}

impl From<Fusion> for WireFusion {
    fn from(f: Fusion) -> Self {
        Self { weight: f.weight, mu: f.mu, best_cosine: f.best_cosine, best_lexical: f.best_lexical }
    }
}

impl From<WireFusion> for Fusion {
    fn from(f: WireFusion) -> Self {
        Self { weight: f.weight, mu: f.mu, best_cosine: f.best_cosine, best_lexical: f.best_lexical }
    }
}

/// Body of `POST /v1/shard/stats`: the router's first phase of a lexical
/// or hybrid query.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardStatsRequest {
    pub queries: Vec<ShardStatsQuery>,
}

/// One question's terms, and its vector when the mode ranks by it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardStatsQuery {
    pub terms: Vec<String>,
    #[serde(default)]
    pub vector: Option<Vec<f32>>,
}

/// Answer of `POST /v1/shard/stats`, one per query, in order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardStatsResponse {
    pub answers: Vec<ShardCorpusStats>,
}

/// One shard's part of the corpus statistics of a question.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardCorpusStats {
    pub stats: WireStats,
    /// q · (the sum of this shard's document vectors); with `stats.docs`
    /// added up over the shards it gives the mean cosine μ.
    #[serde(default)]
    pub vector_dot: f64,
}

/// Answer of `POST /v1/shard/search`: one [`ShardAnswer`] per query, in order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardResponse {
    pub index_version: u64,
    pub answers: Vec<ShardAnswer>,
}

/// One query's answer from one shard.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardAnswer {
    /// The exact top-k of this shard's live documents, best first.
    pub hits: Vec<ShardHit>,
    pub searchable: usize,
    pub filtered: bool,
    /// Lexical mode: searchable documents holding a word of the question.
    #[serde(default)]
    pub matches: usize,
    /// For a filtered query: per field of the filter, the value kinds some
    /// document of this shard holds (`"string"`, `"number"`, `"boolean"`;
    /// empty: no document here has the field).
    #[serde(default)]
    pub filter_kinds: BTreeMap<String, Vec<String>>,
    /// [`ShardWant::Best`]: the best cosine here (none: no document).
    #[serde(default)]
    pub best_cosine: Option<f32>,
    /// [`ShardWant::Best`]: the best BM25F here (0: no match).
    #[serde(default)]
    pub best_lexical: f64,
}

/// One hit as a shard returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardHit {
    pub id: String,
    pub url: String,
    pub title: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    pub score: f32,
    /// What the hits are ordered by, exactly (the f64 fused score of a
    /// hybrid query; `score` is that, rounded to f32, for the client).
    pub rank: f64,
    #[serde(default)]
    pub vector_score: Option<f32>,
    #[serde(default)]
    pub lexical_score: Option<f64>,
    #[serde(default)]
    pub snippet: Option<Snippet>,
}

impl SearchFilter {
    /// A validated filter in its wire form (values sorted, deduplicated).
    pub fn from_row_filter(filter: &RowFilter) -> Self {
        let fields = (!filter.fields.is_empty()).then(|| {
            filter
                .fields
                .iter()
                .map(|(name, values)| {
                    (name.to_string(), serde_json::Value::Array(values.iter().map(|v| v.to_json()).collect()))
                })
                .collect()
        });
        Self { url_prefix: filter.url_prefix.as_deref().map(str::to_owned), fields }
    }
}

impl ShardQuery {
    /// The search a shard runs for this query on `index`, with the kinds its
    /// filter's fields hold here.
    ///
    /// # Errors
    /// `wrong_dimension` for a vector of another length than the index's;
    /// those of `super::plan::row_filter` for a malformed filter (a router
    /// of another version).
    pub fn resolve(&self, index: &Index) -> Result<(OwnedLiveQuery, BTreeMap<String, Vec<String>>), ApiError> {
        if self.mode.uses_vectors() {
            super::plan::check_dimension(self.vector.len(), index.dim())?;
        }
        let exclude_row = self.exclude_id.as_deref().and_then(|id| index.find(id));
        let (rows, kinds) = match &self.filter {
            Some(filter) => {
                let filter = super::plan::row_filter(filter)?;
                let (rows, kinds) = index.matching_on_shard(&filter);
                let kinds =
                    kinds.into_iter().map(|(f, ks)| (f, ks.iter().map(|k| k.as_str().to_owned()).collect())).collect();
                (rows.map(std::sync::Arc::new), kinds)
            }
            None => (None, BTreeMap::new()),
        };
        let search = OwnedLiveQuery {
            vector: self.vector.clone(),
            k: self.k,
            min_score: self.min_score,
            exclude: exclude_row,
            rows,
        };
        Ok((search, kinds))
    }
}

/// The filter check of one node, run on the union of the shards' kinds.
///
/// # Errors
/// `unknown_filter_field` or `filter_type_mismatch`, as one node holding
/// every shard's documents would answer.
pub fn check_filter_on_all(filter: &RowFilter, answers: &[&ShardAnswer]) -> Result<(), ApiError> {
    let mut union: BTreeMap<&str, Vec<AttrKind>> = BTreeMap::new();
    for answer in answers {
        for (field, kinds) in &answer.filter_kinds {
            let held = union.entry(field.as_str()).or_default();
            held.extend(kinds.iter().filter_map(|k| AttrKind::from_name(k)));
            held.sort_unstable();
            held.dedup();
        }
    }
    filter
        .check(|name| union.get(name).filter(|kinds| !kinds.is_empty()).map(Vec::as_slice))
        .map_err(super::resolve::filter_problem)
}

/// Answer of `GET /v1/shard/info`: who a replica is, which the router
/// checks against its shard list at start and on every readiness probe
/// (`router::verify`): a list naming a shard twice, out of order, or an
/// unsharded node would otherwise merge wrong answers silently.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// The semsearch version serving.
    pub version: String,
    /// `SEMSEARCH_SHARD`; `None`: this node keeps every document.
    pub shard: Option<ShardPart>,
    /// Embedding keys are this prefix + the id: the key space whose hash
    /// slots decide which shard owns an id (router and shards must agree).
    pub embedding_prefix: String,
    pub documents: usize,
    /// 0 while the index holds no document.
    pub dimension: usize,
}

/// Shard `index` of `count` (see `crate::shard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardPart {
    pub index: u16,
    pub count: u16,
}

/// Body of `POST /v1/shard/document`: one document by id. A body rather
/// than a path, because no encoding carries every id through a URL: the
/// URL rules drop `.` and `..` segments (and their `%2E` spellings) before
/// a request leaves the router, so `../../v1/stats` as a path reached
/// another route.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardDocumentRequest {
    pub id: String,
    #[serde(default)]
    pub with_embedding: bool,
}

/// A 4xx problem a shard answered, as the router reads it before passing
/// it on: only an answer of this shape reaches a client (re-encoded by the
/// router, with its own content type), never a shard's bytes as sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardProblem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: crate::problem::ProblemCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ShardItemProblem>>,
}

/// One failing item of a shard's batch problem.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardItemProblem {
    pub pointer: String,
    pub code: crate::problem::ProblemCode,
    pub detail: String,
}
