//! A [`Plan`] → an [`OwnedLiveQuery`] on the node: the text embedded, the `id`'s row
//! and the filter's rows found in the snapshot the query will scan, and the
//! context key chosen.
//!
//! The router resolves the same plan its own way (it embeds once and asks
//! the owner shard for an `id`'s vector, `router::handlers`) but with the
//! same [`embed_text`], so text errors are answered identically.
//! Owns the mapping of [`EmbedError`] to [`ApiError`] and the dimension
//! check of embedded text against the index: a provider whose vectors have
//! another length gets a 502 that says so, never a wrong answer.

use std::sync::Arc;

use roaring::RoaringBitmap;
use tracing::warn;

use semsearch_lexical::Scorer;

use super::{
    answer::Reach,
    dto::SearchMode,
    execute::{FusionSource, Ranking},
    plan::{check_dimension, Plan, Query},
};
use crate::{
    embed::{EmbedError, QueryEmbedder},
    index::{
        attributes::{FilterError, RowFilter},
        now_ms, Index, OwnedLiveQuery,
    },
    problem::ApiError,
    store::keys::{KeySpace, WritableKey},
};

impl OwnedLiveQuery {
    /// How many documents of `index` this search could return (see [`Reach`]).
    pub fn reach(&self, index: &Index) -> Reach {
        let excluded = |in_scope: bool| usize::from(self.exclude.is_some() && in_scope);
        match &self.rows {
            Some(rows) => {
                let in_rows = self.exclude.is_some_and(|r| rows.contains(r as u32));
                Reach {
                    searchable: rows.len() as usize - excluded(in_rows),
                    filtered: (rows.len() as usize) < index.len(),
                    matches: 0,
                }
            }
            None => Reach { searchable: index.len().saturating_sub(excluded(true)), filtered: false, matches: 0 },
        }
    }
}

/// A plan resolved against one snapshot on the node.
#[derive(Debug)]
pub struct Resolved {
    pub search: OwnedLiveQuery,
    /// How it is ranked, its words analysed and scored against this snapshot.
    pub ranking: Ranking,
    /// A text query's terms with their snippet weights (idf when the mode
    /// scores words): what snippets look for.
    pub words: Option<Words>,
    /// Where the results go in Redis; `None` when context writes are off.
    pub context_key: Option<WritableKey>,
}

/// A question's analysed terms, and their idf when the mode scores words.
#[derive(Debug, Clone)]
pub struct Words {
    pub terms: Vec<String>,
    pub idf: Option<Vec<f64>>,
}

/// What resolving needs besides the plan and the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Resolver<'a> {
    /// `None` when text search is not configured.
    pub embedder: Option<&'a QueryEmbedder>,
    /// `None` when context writes are off.
    pub contexts: Option<&'a KeySpace>,
}

impl Resolver<'_> {
    /// Resolves `plan` against `index`: the filter's rows first, then the
    /// query (an `id`'s live row, or the text's embedding unless the mode
    /// is lexical), then the question's words against this snapshot's
    /// statistics.
    ///
    /// # Errors
    /// `unknown_filter_field`, `filter_type_mismatch`, `document_not_found`,
    /// those of [`embed_text`], and `text_search_disabled`.
    pub async fn resolve(&self, plan: &Plan, index: &Index) -> Result<Resolved, ApiError> {
        let rows = match &plan.filter {
            Some(filter) => matching_rows(index, filter)?.map(Arc::new),
            None => None,
        };
        let (vector, exclude_row) = match &plan.query {
            Query::Vector(unit) => {
                check_dimension(unit.len(), index.dim())?;
                (unit.clone(), None)
            }
            Query::Text(_) if !plan.mode.uses_vectors() => (Vec::new(), None),
            Query::Text(text) => {
                let embedder = self.embedder.ok_or(ApiError::TextSearchDisabled)?;
                (embed_text(embedder, text, index.dim()).await?, None)
            }
            Query::Id(id) => {
                let row = live_row(index, id)?;
                (index.row(row).to_vec(), Some(row))
            }
        };
        let (ranking, words) = rank_words(plan, index)?;
        let context_key = self.contexts.map(|keys| plan.context_key(keys, &vector)).transpose()?;
        let search = OwnedLiveQuery { vector, k: plan.k, min_score: plan.min_score, exclude: exclude_row, rows };
        Ok(Resolved { search, ranking, words, context_key })
    }
}

/// The ranking of `plan` on `index`, and its words for snippets: a text
/// query's terms analysed as the snapshot's lexical side does, scored with
/// this snapshot's statistics.
///
/// # Errors
/// `internal` when a lexical or hybrid search meets an index without a
/// lexical side (the service always builds one).
fn rank_words(plan: &Plan, index: &Index) -> Result<(Ranking, Option<Words>), ApiError> {
    let terms = match (&plan.query, index.lexical()) {
        (Query::Text(text), Some(settings)) => Some(settings.analyzer.terms(text)),
        _ => None,
    };
    if plan.mode == SearchMode::Vector {
        return Ok((Ranking::Vector, terms.map(|terms| Words { terms, idf: None })));
    }
    let (Some(terms), Some(settings)) = (terms, index.lexical()) else {
        return Err(ApiError::Internal("a lexical search on an index without a lexical side".into()));
    };
    let stats = index.corpus_stats(&terms);
    let scorer = Scorer::new(terms.clone(), &stats, settings.params);
    let words = Words { terms, idf: Some(scorer.idf().to_vec()) };
    let ranking = match plan.mode {
        SearchMode::Lexical => Ranking::Lexical { scorer },
        _ => Ranking::Hybrid { scorer, fusion: FusionSource::Local { weight: plan.vector_weight } },
    };
    Ok((ranking, Some(words)))
}

/// The rows of `index` that `filter` matches (`None`: every row).
///
/// # Errors
/// `unknown_filter_field` or `filter_type_mismatch`.
pub fn matching_rows(index: &Index, filter: &RowFilter) -> Result<Option<RoaringBitmap>, ApiError> {
    index.matching(filter).map_err(filter_problem)
}

/// How a filter that cannot be evaluated is answered.
pub fn filter_problem(e: FilterError) -> ApiError {
    match e {
        FilterError::UnknownField { field } => ApiError::UnknownFilterField { field },
        FilterError::WrongType { field, holds, got } => ApiError::FilterTypeMismatch {
            field,
            holds: holds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or "),
            got: got.as_str(),
        },
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

/// A question embedded with `embedder`, at unit length; `dim` is the index
/// dimension (0: unknown, as at the router, whose shards check it).
///
/// # Errors
/// `empty_text`, `embedder_failed`, `embedder_timeout`,
/// `embedder_unavailable` or `embedder_wrong_dimension`.
pub async fn embed_text(embedder: &QueryEmbedder, text: &str, dim: usize) -> Result<Vec<f32>, ApiError> {
    let provider = embedder.provider();
    let (vector, _source) = embedder.embed(text).await.map_err(|e| {
        if !matches!(e, EmbedError::EmptyText | EmbedError::Busy { .. }) {
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
        EmbedError::EmptyText | EmbedError::EmptyTexts { .. } => ApiError::EmptyText,
        EmbedError::Busy { budget_ms } => ApiError::EmbedderBusy { budget_ms },
        EmbedError::TooManyTokens { tokens, max } => ApiError::TooManyTokens { tokens, max },
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
