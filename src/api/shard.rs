//! The routes a node answers its router on (`query::shard`): not in
//! `openapi.yaml`, between semsearch processes of one version.
//!
//! - `POST /v1/shard/stats`: a lexical or hybrid question's statistics over
//!   this shard's documents (the router adds them up: the first phase);
//! - `POST /v1/shard/search`: resolved queries. With `want: best`, a hybrid
//!   query's best cosine and best BM25F here (the second phase); else the
//!   exact top-k of this shard's documents, ranked as the router says with
//!   the corpus-wide statistics and fusion constants it sends, and what the
//!   router needs to answer as one node would. It writes no context (the
//!   router does);
//! - `GET /v1/shard/info`: which shard this is, its key space, documents
//!   and dimension (the router checks them against its shard list);
//! - `POST /v1/shard/document`: one document by id, the id in the body
//!   (`query::shard::ShardDocumentRequest` says why not in the path).

use std::{sync::Arc, time::Instant};

use axum::extract::State;
use semsearch_lexical::{CorpusStats, Scorer};

use super::{
    extract::Json,
    search::{counted, hit_view, Shown},
    AppState,
};
use crate::{
    index::{now_ms, Index},
    problem::ApiError,
    query::{
        dto::SearchMode,
        execute::{self, FusionSource, Ranking},
        plan::validate_k,
        resolve::Words,
        shard::{
            ShardAnswer, ShardCorpusStats, ShardDocumentRequest, ShardHit, ShardInfo, ShardPart, ShardQuery,
            ShardRequest, ShardResponse, ShardStatsRequest, ShardStatsResponse, ShardWant, WireStats,
        },
    },
};

/// Who this replica is, for the router's checks (`router::verify`).
///
/// # Errors
/// `not_ready` before the first load (documents and dimension are unknown).
pub async fn shard_info(State(state): State<AppState>) -> Result<axum::Json<ShardInfo>, ApiError> {
    let index = state.ready_index()?;
    Ok(axum::Json(ShardInfo {
        version: crate::build_info::VERSION.to_owned(),
        shard: state.keys.shard().map(|s| ShardPart { index: s.index(), count: s.count() }),
        embedding_prefix: state.keys.embedding_prefix().to_owned(),
        documents: index.len(),
        dimension: index.dim(),
    }))
}

/// One document by id, answered as `GET /v1/documents/{*id}` answers it.
///
/// # Errors
/// `document_not_found`, `not_ready`.
pub async fn shard_document(
    State(state): State<AppState>,
    Json(req): Json<ShardDocumentRequest>,
) -> Result<axum::Json<super::documents::DocumentResponse>, ApiError> {
    let index = state.ready_index()?;
    Ok(axum::Json(super::documents::lookup(&index, &req.id, req.with_embedding)?))
}

/// This shard's part of each question's corpus statistics.
///
/// # Errors
/// `invalid_batch_size`, `not_ready`.
pub async fn shard_stats(
    State(state): State<AppState>,
    Json(req): Json<ShardStatsRequest>,
) -> Result<axum::Json<ShardStatsResponse>, ApiError> {
    let got = req.queries.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    let index = state.ready_index()?;
    let answers = req
        .queries
        .iter()
        .map(|q| ShardCorpusStats {
            stats: WireStats::from(&index.corpus_stats(&q.terms)),
            vector_dot: q.vector.as_deref().map_or(0.0, |v| index.vector_dot_sum(v)),
        })
        .collect();
    Ok(axum::Json(ShardStatsResponse { answers }))
}

/// The exact top-k of this shard's documents for each resolved query (or,
/// for `want: best`, its best scores).
///
/// # Errors
/// `invalid_batch_size`, `invalid_k`, `too_many_results`, `wrong_dimension`
/// (a query of another length than the index), `invalid_type` (a lexical
/// query without words, a hybrid one without its fusion), `not_ready`,
/// `overloaded`.
pub async fn shard_search(
    State(state): State<AppState>,
    Json(req): Json<ShardRequest>,
) -> Result<axum::Json<ShardResponse>, ApiError> {
    let _permit = state.searches.try_acquire()?;
    let got = req.queries.len();
    if got == 0 || got > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got, max: state.max_batch });
    }
    for q in &req.queries {
        validate_k(i64::try_from(q.k).unwrap_or(i64::MAX), state.max_k)?;
    }
    let asked: usize = req.queries.iter().map(|q| q.k).sum();
    if asked > state.budget.max_results {
        return Err(ApiError::TooManyResults { asked, max: state.budget.max_results });
    }
    let index = state.ready_index()?;
    let mut searches = Vec::with_capacity(got);
    let mut kinds = Vec::with_capacity(got);
    let mut words = Vec::with_capacity(got);
    for q in &req.queries {
        let (search, filter_kinds) = q.resolve(&index)?;
        let (ranking, w) = ranking(&index, q)?;
        searches.push((search, ranking));
        kinds.push(filter_kinds);
        words.push(w);
    }
    let searches = Arc::new(searches);
    let scan_started = Instant::now();
    let wanted_best = req.queries.iter().any(|q| q.want == ShardWant::Best);
    let answers = if wanted_best {
        best_answers(&index, &searches).await?
    } else {
        execute::batch(Arc::clone(&index), Arc::clone(&searches)).await?
    };
    let per_query = scan_started.elapsed().as_secs_f64() / got as f64;
    let mut out = Vec::with_capacity(got);
    for (((ranked, (search, _)), q), (filter_kinds, words)) in
        answers.into_iter().zip(searches.iter()).zip(&req.queries).zip(kinds.into_iter().zip(&words))
    {
        super::metrics::record_search(q.mode, per_query);
        counted(&state, &ranked);
        let shown = Shown { mode: q.mode, snippet_chars: q.snippet_chars, words: words.as_ref() };
        let hits = ranked
            .hits
            .iter()
            .map(|h| {
                let v = hit_view(&index, &shown, *h);
                ShardHit {
                    id: v.id.to_owned(),
                    url: v.url.to_owned(),
                    title: v.title.map(str::to_owned),
                    text: if q.with_text { v.text.map(str::to_owned) } else { None },
                    score: v.score,
                    rank: h.rank,
                    vector_score: v.vector_score,
                    lexical_score: v.lexical_score,
                    snippet: v.snippet,
                }
            })
            .collect();
        let reach = search.reach(&index);
        let (best_cosine, best_lexical) = ranked.best.unwrap_or((None, 0.0));
        out.push(ShardAnswer {
            hits,
            searchable: reach.searchable,
            filtered: reach.filtered,
            matches: ranked.matches,
            filter_kinds,
            best_cosine,
            best_lexical,
        });
    }
    Ok(axum::Json(ShardResponse { index_version: index.version(), answers: out }))
}

/// How a shard ranks `q`: with the words and corpus-wide statistics the
/// router sent, and for hybrid hits the router's fusion constants.
fn ranking(index: &Index, q: &ShardQuery) -> Result<(Ranking, Option<Words>), ApiError> {
    let params = index.lexical().map(|l| l.params).unwrap_or_default();
    let scorer =
        |w: &crate::query::shard::ShardWords| Scorer::new(w.terms.clone(), &CorpusStats::from(&w.stats), params);
    let words = |w: &crate::query::shard::ShardWords, idf: Option<Vec<f64>>| Words { terms: w.terms.clone(), idf };
    let missing = |what: &str| ApiError::InvalidType(format!("a {} shard query needs {what}", q.mode.as_str()));
    Ok(match (q.mode, &q.words) {
        (SearchMode::Vector, w) => (Ranking::Vector, w.as_ref().map(|w| words(w, None))),
        (_, None) => return Err(missing("words")),
        (SearchMode::Lexical, Some(w)) => {
            let scorer = scorer(w);
            let idf = Some(scorer.idf().to_vec());
            (Ranking::Lexical { scorer }, Some(words(w, idf)))
        }
        (SearchMode::Hybrid, Some(w)) => {
            let fusion = match (q.want, w.fusion) {
                (ShardWant::Best, _) => FusionSource::Local { weight: None },
                (ShardWant::Hits, Some(f)) => FusionSource::Given(f.into()),
                (ShardWant::Hits, None) => return Err(missing("the fusion's constants")),
            };
            let scorer = scorer(w);
            let idf = Some(scorer.idf().to_vec());
            (Ranking::Hybrid { scorer, fusion }, Some(words(w, idf)))
        }
    })
}

/// The router's second phase: each query's best cosine and best BM25F here.
async fn best_answers(
    index: &Arc<Index>,
    searches: &Arc<Vec<(crate::index::OwnedLiveQuery, Ranking)>>,
) -> Result<Vec<execute::RankedHits>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (index, searches) = (Arc::clone(index), Arc::clone(searches));
    let now = now_ms();
    rayon::spawn(move || {
        let out = searches
            .iter()
            .map(|(q, ranking)| {
                let best = match ranking {
                    Ranking::Hybrid { scorer, .. } | Ranking::Lexical { scorer } => {
                        execute::best(&index, &q.as_live(), scorer, now)
                    }
                    Ranking::Vector => (execute::best_cosine(&index, &q.as_live(), now), 0.0),
                };
                execute::RankedHits { best: Some(best), ..execute::RankedHits::default() }
            })
            .collect();
        let _ = tx.send(out);
    });
    rx.await.map_err(|_| ApiError::Internal("shard search worker dropped its result".into()))
}
