//! [`Search`]es → answers from one snapshot, on rayon, never on a tokio
//! worker: the node's half of the query path, shared by `/v1/search`, its
//! batch and the router's shard calls.
//!
//! A lone unfiltered query goes through the [`Coalescer`], which starts its
//! scan at once and lets concurrent ones share one pass over the matrix; a
//! batch is scanned in one pass of its own. Each answer is the exact top-k
//! of the snapshot's live rows (the index's rule: not past the Redis
//! deadline, not tombstoned, not the excluded row, in the filter's rows),
//! whichever scan ran.

use std::sync::Arc;

use super::resolve::Search;
use crate::{
    index::{now_ms, Index},
    problem::ApiError,
    search::{coalesce::Coalescer, Answer, BatchQuery, Hit},
};

/// Answers one search. Unfiltered, it shares a scan with concurrent ones.
///
/// # Errors
/// `internal` if the scan's worker dropped its answer (a panic: a bug).
pub async fn one(coalescer: &Arc<Coalescer<Index>>, index: Arc<Index>, search: &Search) -> Result<Answer, ApiError> {
    let now = now_ms();
    let extra = extra_candidates(&index, search, now);
    let answer = match &search.rows {
        Some(rows) => {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let (snapshot, rows, query) = (Arc::clone(&index), Arc::clone(rows), search.vector.clone());
            let (k, min_score) = (search.k + extra, search.min_score);
            rayon::spawn(move || {
                let _ = tx.send(snapshot.search_filtered(&query, &rows, k, min_score));
            });
            rx.await.ok()
        }
        None => coalescer.top_k(Arc::clone(&index), search.vector.clone(), search.k + extra, search.min_score).await,
    }
    .ok_or_else(|| ApiError::Internal("search worker dropped its result".into()))?;
    Ok(keep_live(&index, search, answer, now))
}

/// Answers many searches in one pass over the matrix (the unfiltered ones;
/// each filtered one scans its own rows), in order.
///
/// # Errors
/// `internal` if the scan's worker dropped its answers (a panic: a bug).
pub async fn batch(index: Arc<Index>, searches: Arc<Vec<Search>>) -> Result<Vec<Answer>, ApiError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let now = now_ms();
    let snapshot = Arc::clone(&index);
    let queries = Arc::clone(&searches);
    rayon::spawn(move || {
        let k = |q: &Search| q.k + extra_candidates(&snapshot, q, now);
        let batch: Vec<BatchQuery<'_>> = queries
            .iter()
            .filter(|q| q.rows.is_none())
            .map(|q| BatchQuery { vector: &q.vector, k: k(q), min_score: q.min_score })
            .collect();
        let mut shared = snapshot.search(&batch).into_iter();
        let answers: Option<Vec<Answer>> = queries
            .iter()
            .map(|q| match &q.rows {
                Some(rows) => Some(snapshot.search_filtered(&q.vector, rows, k(q), q.min_score)),
                None => shared.next(),
            })
            .collect();
        if let Some(answers) = answers {
            let _ = tx.send(answers);
        }
    });
    let answers = rx.await.map_err(|_| ApiError::Internal("batch search worker dropped its result".into()))?;
    Ok(answers.into_iter().zip(searches.iter()).map(|(a, s)| keep_live(&index, s, a, now)).collect())
}

/// Rows a scan must return beyond k so that k live ones remain: those past
/// their deadline (at most `expired_count`) plus the excluded row.
fn extra_candidates(index: &Index, search: &Search, now_ms: u64) -> usize {
    index.expired_count(now_ms) + usize::from(search.exclude_row.is_some())
}

/// Drops expired and excluded rows from a scan's hits and cuts them to k;
/// with [`extra_candidates`] the result is exactly the live top-k.
fn keep_live(index: &Index, search: &Search, mut answer: Answer, now_ms: u64) -> Answer {
    answer
        .hits
        .retain(|h: &Hit| !index.is_expired(h.row as usize, now_ms) && Some(h.row as usize) != search.exclude_row);
    answer.hits.truncate(search.k);
    answer
}
