//! Resolved searches → ranked hits from one snapshot, on rayon, never on a
//! tokio worker: the node's half of the query path, shared by `/v1/search`,
//! its batch and the router's shard calls.
//!
//! Three rankings ([`Ranking`]), each exact over the snapshot's live rows
//! (the index's rule: not past the Redis deadline, not tombstoned, not the
//! excluded row, in the filter's rows):
//! - `vector`: the index's top-k by cosine. A lone unfiltered one goes
//!   through the [`Coalescer`], which starts its scan at once and lets
//!   concurrent ones share one pass over the matrix.
//! - `lexical`: every document a term of the question matches, by BM25F.
//! - `hybrid`: the two fused (`index::fusion`): the vector top-k and the
//!   lexical matches are the candidates, and only the matches that can
//!   still enter get their cosine computed.

use std::{collections::HashMap, sync::Arc};

use semsearch_lexical::{snippet::best_window, Scorer};
use semsearch_scan::{ScanAnswer, ScanPath};
use tracing::{field::Empty, Instrument};

use super::dto::{SearchMode, Snippet};
use crate::{
    index::{
        coalesce::Coalescer,
        fusion::{self, Fusion},
        lexical::LexicalSettings,
        now_ms, Index, LiveQuery, OwnedLiveQuery,
    },
    problem::ApiError,
};

/// How a search is ranked, with what its words need already prepared.
#[derive(Debug, Clone)]
pub enum Ranking {
    Vector,
    Lexical { scorer: Scorer },
    Hybrid { scorer: Scorer, fusion: FusionSource },
}

impl Ranking {
    /// The mode this ranking serves.
    pub fn mode(&self) -> SearchMode {
        match self {
            Self::Vector => SearchMode::Vector,
            Self::Lexical { .. } => SearchMode::Lexical,
            Self::Hybrid { .. } => SearchMode::Hybrid,
        }
    }
}

/// Where a hybrid search's fusion constants come from.
#[derive(Debug, Clone, Copy)]
pub enum FusionSource {
    /// Computed on this snapshot (a node answering alone), with the
    /// request's fixed vector weight if it has one.
    Local { weight: Option<f64> },
    /// Gathered by the router over every shard (a shard's third phase).
    Given(Fusion),
}

/// One ranked hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankedHit {
    /// Row of the snapshot's merged view.
    pub row: u32,
    /// What hits are ordered by, exactly: the cosine widened (vector), the
    /// BM25F score (lexical), the f64 fused score (hybrid).
    pub rank: f64,
    /// `hybrid`: the cosine.
    pub cosine: Option<f32>,
    /// `lexical` and `hybrid`: the BM25F score.
    pub lexical: Option<f64>,
}

impl RankedHit {
    /// The `score` a result shows: `rank`, as f32.
    pub fn score(&self) -> f32 {
        self.rank as f32
    }
}

/// A search's answer.
#[derive(Debug, Clone, Default)]
pub struct RankedHits {
    pub hits: Vec<RankedHit>,
    /// `lexical`: how many live documents of the query hold a term of it.
    pub matches: usize,
    /// How the vector scan ran, for the counters; `None` without one.
    pub scan: Option<ScanAnswer>,
    /// Only for a shard's second phase ([`best`]): the best cosine and the
    /// best BM25F among the query's live rows.
    pub best: Option<(Option<f32>, f64)>,
}

impl RankedHits {
    fn of_scan(answer: ScanAnswer) -> Self {
        let hits = answer
            .hits
            .iter()
            .map(|h| RankedHit { row: h.row, rank: f64::from(h.score), cosine: None, lexical: None })
            .collect();
        Self { hits, matches: 0, scan: Some(ScanAnswer { hits: Vec::new(), ..answer }), best: None }
    }
}

/// Answers one search. A vector one without a filter shares a scan with
/// concurrent ones; the others run alone on rayon.
///
/// # Errors
/// `internal` if the scan's worker dropped its answer (a panic: a bug).
pub async fn one(
    coalescer: &Arc<Coalescer>,
    index: Arc<Index>,
    search: &OwnedLiveQuery,
    ranking: &Ranking,
) -> Result<RankedHits, ApiError> {
    let span = rank_span(ranking.mode().as_str(), 1);
    if !span.is_disabled() {
        span.record("search.k", search.k);
        span.record("search.filtered", search.rows.is_some());
        span.record("search.rows", index.len());
    }
    let ranked = one_untraced(coalescer, index, search, ranking).instrument(span.clone()).await;
    if let Ok(ranked) = &ranked {
        record_answer(&span, std::slice::from_ref(ranked));
    }
    ranked
}

/// The trace span of a ranking (DEBUG: see `telemetry`): how it ran, how
/// much it looked at and found; never the question.
fn rank_span(ranking: &'static str, searches: usize) -> tracing::Span {
    tracing::debug_span!(
        "search.rank",
        search.ranking = ranking,
        search.count = searches,
        search.k = Empty,
        search.filtered = Empty,
        search.rows = Empty,
        search.scan_path = Empty,
        search.hits = Empty,
    )
}

/// What the answers say about the scan, on `span`.
fn record_answer(span: &tracing::Span, answers: &[RankedHits]) {
    if span.is_disabled() {
        return;
    }
    span.record("search.hits", answers.iter().map(|a| a.hits.len()).sum::<usize>());
    if let Some(scan) = answers.iter().find_map(|a| a.scan.as_ref()) {
        span.record("search.scan_path", scan.path.name());
    }
}

/// [`one`]'s work, inside its span.
async fn one_untraced(
    coalescer: &Arc<Coalescer>,
    index: Arc<Index>,
    search: &OwnedLiveQuery,
    ranking: &Ranking,
) -> Result<RankedHits, ApiError> {
    let now = now_ms();
    let dropped = || ApiError::Internal("search worker dropped its result".into());
    if matches!(ranking, Ranking::Vector) && search.rows.is_none() {
        let answer = coalescer.search(index, search.clone(), now).await.ok_or_else(dropped)?;
        return Ok(RankedHits::of_scan(answer));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (search, ranking) = (search.clone(), ranking.clone());
    rayon::spawn(move || {
        let _ = tx.send(rank(&index, &search.as_live(), &ranking, now));
    });
    rx.await.map_err(|_| dropped())
}

/// Answers many searches, in order: the vector ones in one pass over the
/// matrix, each other one on its own.
///
/// # Errors
/// `internal` if the scan's worker dropped its answers (a panic: a bug).
pub async fn batch(
    index: Arc<Index>,
    searches: Arc<Vec<(OwnedLiveQuery, Ranking)>>,
) -> Result<Vec<RankedHits>, ApiError> {
    let ranking = match searches.first() {
        Some((_, first)) if searches.iter().all(|(_, r)| r.mode() == first.mode()) => first.mode().as_str(),
        Some(_) => "mixed",
        None => "none",
    };
    let span = rank_span(ranking, searches.len());
    if !span.is_disabled() {
        span.record("search.k", searches.iter().map(|(q, _)| q.k).max().unwrap_or(0));
        span.record("search.filtered", searches.iter().any(|(q, _)| q.rows.is_some()));
        span.record("search.rows", index.len());
    }
    let ranked = batch_untraced(index, searches).instrument(span.clone()).await;
    if let Ok(ranked) = &ranked {
        record_answer(&span, ranked);
    }
    ranked
}

/// [`batch`]'s work, inside its span.
async fn batch_untraced(
    index: Arc<Index>,
    searches: Arc<Vec<(OwnedLiveQuery, Ranking)>>,
) -> Result<Vec<RankedHits>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let now = now_ms();
    rayon::spawn(move || {
        let vector: Vec<LiveQuery<'_>> =
            searches.iter().filter(|(_, r)| matches!(r, Ranking::Vector)).map(|(q, _)| q.as_live()).collect();
        let mut shared = index.search(&vector, now).into_iter();
        let answers: Option<Vec<RankedHits>> = searches
            .iter()
            .map(|(q, ranking)| match ranking {
                Ranking::Vector => shared.next().map(RankedHits::of_scan),
                other => Some(rank(&index, &q.as_live(), other, now)),
            })
            .collect();
        if let Some(answers) = answers {
            let _ = tx.send(answers);
        }
    });
    rx.await.map_err(|_| ApiError::Internal("batch search worker dropped its result".into()))
}

/// One search, ranked as `ranking` says, on this thread (CPU work: call it
/// on rayon).
pub fn rank(index: &Index, query: &LiveQuery<'_>, ranking: &Ranking, now: u64) -> RankedHits {
    match ranking {
        Ranking::Vector => {
            let answer =
                index.search(std::slice::from_ref(query), now).pop().unwrap_or_else(|| ScanAnswer::f32(Vec::new()));
            RankedHits::of_scan(answer)
        }
        Ranking::Lexical { scorer } => lexical(index, query, scorer, now),
        Ranking::Hybrid { scorer, fusion } => hybrid(index, query, scorer, *fusion, now),
    }
}

/// The lexical top-k: matches by BM25F, then ascending row (id order).
fn lexical(index: &Index, query: &LiveQuery<'_>, scorer: &Scorer, now: u64) -> RankedHits {
    let mut matches = index.lexical_matches(scorer, query, now);
    let count = matches.len();
    matches.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let floor = query.min_score.map_or(f64::NEG_INFINITY, f64::from);
    let hits = matches
        .into_iter()
        .take_while(|&(_, bm)| bm >= floor)
        .take(query.k)
        .map(|(row, bm)| RankedHit { row, rank: bm, cosine: None, lexical: Some(bm) })
        .collect();
    RankedHits { hits, matches: count, scan: None, best: None }
}

/// The exact fused top-k (see `index::fusion`).
fn hybrid(index: &Index, query: &LiveQuery<'_>, scorer: &Scorer, source: FusionSource, now: u64) -> RankedHits {
    // The vector top-k without `min_score` (which applies to the fused score).
    let vector_query = LiveQuery { min_score: None, ..*query };
    // The two channels are independent until fusion: rank them at once, so
    // a lone question uses both cores (the scan's tasks and BM25F's walk
    // share rayon's pool) and costs about the slower channel, not the sum.
    let (answer, mut matches) = rayon::join(
        || index.search(std::slice::from_ref(&vector_query), now).pop().unwrap_or_else(|| ScanAnswer::f32(Vec::new())),
        || index.lexical_matches(scorer, query, now),
    );
    let vector_top: Vec<(u32, f32)> = answer.hits.iter().map(|h| (h.row, h.score)).collect();
    let count = matches.len();
    let fusion = match source {
        FusionSource::Given(f) => f,
        FusionSource::Local { weight } => {
            let mu = index.mean_cosine(query.vector);
            let params = index.lexical().map(|l| l.fusion).unwrap_or_default();
            Fusion {
                weight: weight.unwrap_or_else(|| params.vector_weight(mu)),
                mu,
                best_cosine: vector_top.first().map_or(0.0, |&(_, c)| c),
                best_lexical: matches.iter().map(|&(_, bm)| bm).fold(0.0, f64::max),
            }
        }
    };
    let floor = query.min_score.map(f64::from);
    let fused = fusion::top_k(&fusion, query.k, floor, &vector_top, &mut matches, |row| {
        index.cosine(row as usize, query.vector)
    });
    let hits = fused
        .into_iter()
        .map(|h| RankedHit { row: h.row, rank: h.score, cosine: Some(h.cosine), lexical: Some(h.lexical) })
        .collect();
    RankedHits { hits, matches: count, scan: Some(ScanAnswer { hits: Vec::new(), ..answer }), best: None }
}

/// A hybrid search's best cosine and best BM25F among its live rows: what
/// a shard answers in the router's second phase.
pub fn best(index: &Index, query: &LiveQuery<'_>, scorer: &Scorer, now: u64) -> (Option<f32>, f64) {
    let best_lexical = index.lexical_matches(scorer, query, now).iter().map(|&(_, bm)| bm).fold(0.0, f64::max);
    (best_cosine(index, query, now), best_lexical)
}

/// The best cosine among `query`'s live rows (`None`: none).
pub fn best_cosine(index: &Index, query: &LiveQuery<'_>, now: u64) -> Option<f32> {
    if query.vector.is_empty() {
        return None;
    }
    let top1 = LiveQuery { k: 1, min_score: None, ..*query };
    index.search(std::slice::from_ref(&top1), now).pop().and_then(|a| a.hits.first().map(|h| h.score))
}

/// Whether a ranked answer went through the int8 pass (for the rescored-rows histogram).
pub fn used_int8(ranked: &RankedHits) -> bool {
    ranked.scan.as_ref().is_some_and(|s| s.path == ScanPath::Int8)
}

/// The words a snippet looks for, each with its weight: the terms' idf when
/// the mode scores words (so a rare word counts more), else 1 each (the
/// same on a node and behind the router, which sends no statistics then).
pub fn snippet_weights<'a>(terms: &'a [String], idf: Option<&[f64]>) -> HashMap<&'a str, f64> {
    let mut out = HashMap::new();
    for (i, t) in terms.iter().enumerate() {
        out.insert(t.as_str(), idf.and_then(|w| w.get(i).copied()).unwrap_or(1.0));
    }
    out
}

/// The passage of `text` that best answers a question with these weighted terms.
pub fn snippet(settings: &LexicalSettings, text: &str, weights: &HashMap<&str, f64>, max_chars: usize) -> Snippet {
    let s = best_window(&settings.analyzer, text, weights, max_chars);
    Snippet { text: s.text, highlights: s.highlights }
}

#[cfg(test)]
mod props;
