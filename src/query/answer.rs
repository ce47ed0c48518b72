//! A plan plus its hits → what the client gets back ([`Rendered`]) and the
//! context entry the chatbot reads: the last step of the query path, the
//! same code on a node and on the router (which renders the merged hits of
//! its shards), so both answer in one shape and write one kind of context.

use serde_json::value::RawValue;

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

/// `text` as the JSON string serde_json writes for it.
fn json_string(text: &str) -> Result<Box<RawValue>, ApiError> {
    serde_json::value::to_raw_value(text).map_err(|e| ApiError::Internal(e.to_string()))
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
    // Each text is escaped once, here, and the same JSON string goes into
    // the context entry and the response (a profile of 64 clients found the
    // escaping, done for each, and the copies among a search's costs).
    let wanted = plan.with_text || context.is_some();
    let texts: Vec<Option<Box<RawValue>>> =
        hits.iter().map(|h| h.text.filter(|_| wanted).map(json_string).transpose()).collect::<Result<_, _>>()?;
    let context = match context {
        Some(target) => {
            // The chatbot reads title and text from the context, whatever this response carried.
            let entries: Vec<ContextEntry<'_, Snippet>> = hits
                .iter()
                .zip(&texts)
                .map(|(h, text)| ContextEntry {
                    id: h.id,
                    url: h.url,
                    title: h.title,
                    text: text.as_deref(),
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
    let results = hits
        .iter()
        .zip(texts)
        .map(|(h, text)| SearchResult {
            id: h.id.to_owned(),
            url: h.url.to_owned(),
            title: h.title.map(str::to_owned),
            text: plan.with_text.then_some(text),
            score: h.score,
            vector_score: h.vector_score,
            lexical_score: h.lexical_score,
            snippet: h.snippet.clone(),
        })
        .collect();
    Ok(Rendered { results, fewer_results_reason: fewer_reason(plan, hits.len(), reach), context })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::{
        query::plan::Rules,
        store::{keys::KeySpace, memory::MemoryBudget},
    };

    /// What needs escaping in JSON, and what does not.
    const AWKWARD: &str = "\"quoted\" \\ back\u{1}slash\ttab\nline é ✓ 🦀 </script>";

    fn rendered_with(with_text: bool) -> (Value, Value) {
        let keys = KeySpace::default();
        let req = serde_json::from_value(json!({"vector": [1.0, 0.0], "k": 2, "with_text": with_text}))
            .expect("a well-formed body");
        let plan = Plan::new(&req, &Rules { max_k: 10, keys: &keys, dim: 2 }).expect("a valid plan");
        let hit = |id: &'static str, text: Option<&'static str>| HitView {
            id,
            url: id,
            title: Some("T \"1\""),
            text,
            score: 0.5,
            vector_score: None,
            lexical_score: None,
            snippet: None,
        };
        let hits = [hit("a", Some(AWKWARD)), hit("b", None)];
        let (queue, mut writer) = context::channel(60, MemoryBudget::new(10));
        let key = keys.context_key("render-test").expect("a valid suffix");
        let target = ContextTarget { queue: &queue, key: &key, index_version: 7 };
        let reach = Reach { searchable: 2, ..Reach::default() };
        let rendered = render(&plan, &hits, reach, Some(target), &Budget::default(), &mut Spent::default())
            .expect("within the budget");
        let response = serde_json::to_value(&rendered.results).expect("results serialise");
        let queued = writer.try_take().expect("the context was queued");
        let context: Value = serde_json::from_slice(&queued.payload).expect("the context is JSON");
        (response, context["results"].clone())
    }

    #[test]
    fn a_text_reaches_the_response_and_the_context_as_the_same_json_string() {
        let (response, context) = rendered_with(true);
        assert_eq!(response[0]["text"], AWKWARD);
        assert_eq!(response[1]["text"], Value::Null);
        assert_eq!(context[0]["text"], AWKWARD);
        assert!(context[1].get("text").is_none(), "no text, no field: {context}");
        assert_eq!(response[0]["title"], "T \"1\"");
    }

    #[test]
    fn without_texts_the_response_has_none_and_the_context_still_has_them() {
        let (response, context) = rendered_with(false);
        assert!(response[0].get("text").is_none(), "{response}");
        assert_eq!(context[0]["text"], AWKWARD);
    }
}
