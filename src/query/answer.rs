//! A plan plus its hits → what the client gets back ([`Rendered`]) and the
//! context entry the chatbot reads: the last step of the query path, the
//! same code on a node and on the router (which renders the merged hits of
//! its shards), so both answer in one shape and write one kind of context.

use super::{
    dto::{ContextRef, FewerReason, SearchMode, SearchResult, Snippet},
    plan::Plan,
};
use crate::{
    problem::ApiError,
    store::{
        context::{self, ContextEntry, ContextQueue, ContextWrite},
        keys::WritableKey,
    },
    telemetry::propagation::TraceOrigin,
};

/// What one request may cost, checked before and while answering so that
/// no request builds a response of unbounded size (a 738 KB batch once
/// asked for 129 MB of results and 128 MB of contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The k of all queries of one request, added up (`SEMSEARCH_MAX_RESULTS_PER_REQUEST`).
    pub max_results: usize,
    /// Bytes of titles and texts in one response (`SEMSEARCH_MAX_RESPONSE_TEXT_BYTES`).
    pub max_text_bytes: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self { max_results: 10_000, max_text_bytes: 32 << 20 }
    }
}

impl Budget {
    /// # Errors
    /// `too_many_results` when the plans' k add up to more than the budget.
    pub fn check_results<'a>(&self, plans: impl IntoIterator<Item = &'a Plan>) -> Result<(), ApiError> {
        let asked: usize = plans.into_iter().map(|p| p.k).sum();
        if asked > self.max_results {
            return Err(ApiError::TooManyResults { asked, max: self.max_results });
        }
        Ok(())
    }
}

/// What a request has used of its [`Budget`] so far.
#[derive(Debug, Default)]
pub struct Spent {
    pub text_bytes: usize,
}

/// One hit as a result shows it, its document borrowed from wherever it
/// is (a snapshot's document, or a shard's answer).
#[derive(Debug, Clone)]
pub struct HitView<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub title: Option<&'a str>,
    pub text: Option<&'a str>,
    /// What the results are ordered by, in the plan's mode.
    pub score: f32,
    /// `hybrid`: the cosine.
    pub vector_score: Option<f32>,
    /// `hybrid` and `lexical`: the BM25F score.
    pub lexical_score: Option<f64>,
    pub snippet: Option<Snippet>,
}

/// How many documents a query could have returned: what tells "the index
/// is smaller than k" from "min_score or the filter removed the rest".
/// Shards report theirs and the router adds them up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reach {
    /// Documents the query scanned (the filter's, less the excluded row).
    pub searchable: usize,
    /// Whether a filter left documents out.
    pub filtered: bool,
    /// Lexical mode: how many of the searchable documents hold a word of
    /// the question (the others cannot be results).
    pub matches: usize,
}

/// Two disjoint sets of documents (shards) as one.
impl std::ops::Add for Reach {
    type Output = Reach;

    fn add(self, other: Reach) -> Reach {
        Reach {
            searchable: self.searchable + other.searchable,
            filtered: self.filtered || other.filtered,
            matches: self.matches + other.matches,
        }
    }
}

/// Why fewer than k results came back, if they did: `min_score` when it
/// cut documents that were there, else (lexical mode) that no more
/// documents hold a word of the question, else the filter, else the index
/// size.
pub fn fewer_reason(plan: &Plan, returned: usize, reach: Reach) -> Option<FewerReason> {
    (returned < plan.k).then(|| {
        let available = if plan.mode == SearchMode::Lexical { reach.matches } else { reach.searchable };
        if plan.min_score.is_some() && returned < available {
            FewerReason::MinScore
        } else if plan.mode == SearchMode::Lexical && reach.matches < reach.searchable {
            FewerReason::NoMoreMatches
        } else if reach.filtered {
            FewerReason::Filter
        } else {
            FewerReason::IndexSmallerThanK
        }
    })
}

/// A query's answer as the client gets it, apart from timing.
#[derive(Debug)]
pub struct Rendered {
    pub results: Vec<SearchResult>,
    pub fewer_results_reason: Option<FewerReason>,
    pub context: Option<ContextRef>,
}

/// Where a query's context goes, when context writes are on.
#[derive(Debug, Clone, Copy)]
pub struct ContextTarget<'a> {
    pub queue: &'a ContextQueue,
    pub key: &'a WritableKey,
    /// The snapshot (or sum of the shards' snapshots) that answered.
    pub index_version: u64,
}

/// Renders `hits` (already the exact top-k, best first) as results,
/// explains a short list, and queues the context write.
///
/// # Errors
/// `response_too_large` when the texts exceed what is left of the budget;
/// `internal` if the context cannot be serialised (it always can).
pub fn render(
    plan: &Plan,
    hits: &[HitView<'_>],
    reach: Reach,
    context: Option<ContextTarget<'_>>,
    budget: &Budget,
    spent: &mut Spent,
) -> Result<Rendered, ApiError> {
    if plan.with_text {
        let bytes: usize = hits.iter().map(|h| h.text.map_or(0, str::len) + h.title.map_or(0, str::len)).sum();
        spent.text_bytes += bytes;
        if spent.text_bytes > budget.max_text_bytes {
            return Err(ApiError::ResponseTooLarge { max_bytes: budget.max_text_bytes });
        }
    }
    let results = hits
        .iter()
        .map(|h| SearchResult {
            id: h.id.to_owned(),
            url: h.url.to_owned(),
            title: h.title.map(str::to_owned),
            text: plan.with_text.then(|| h.text.map(str::to_owned)),
            score: h.score,
            vector_score: h.vector_score,
            lexical_score: h.lexical_score,
            snippet: h.snippet.clone(),
        })
        .collect();
    let context = match context {
        Some(target) => {
            // The chatbot reads title and text from the context, whatever this response carried.
            let entries: Vec<ContextEntry<'_, Snippet>> = hits
                .iter()
                .map(|h| ContextEntry {
                    id: h.id,
                    url: h.url,
                    title: h.title,
                    text: h.text,
                    score: h.score,
                    vector_score: h.vector_score,
                    lexical_score: h.lexical_score,
                    snippet: h.snippet.as_ref(),
                })
                .collect();
            let payload =
                context::encode_payload(&entries, plan.mode.as_str(), plan.k, plan.min_score, target.index_version)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            let queued = target.queue.enqueue(ContextWrite {
                key: target.key.clone(),
                payload,
                index_version: target.index_version,
                origin: TraceOrigin::current(),
            });
            Some(ContextRef { key: target.key.as_str().to_owned(), queued })
        }
        None => None,
    };
    Ok(Rendered { results, fewer_results_reason: fewer_reason(plan, hits.len(), reach), context })
}
