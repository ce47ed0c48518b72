//! Coalescing of concurrent single queries into one search of a snapshot.
//!
//! A single query is memory-bound: it costs one read of the matrix. When
//! several arrive together, searching them as one batch
//! ([`Index::search`] with all of them: one pass over each segment, f32 or
//! int8) reads the matrix once for all of them.
//!
//! Below [`INLINE_MAX_FLOATS`] (a few thousand rows of 384 floats) a query
//! never queues: it is scanned on the calling thread, sequentially, at
//! once. There a hand-off (a rayon job, a channel, a wake-up of the task)
//! costs about as much as the scan, the rows sit in cache so sharing a pass
//! saves little, and each tokio worker scanning its own queries keeps every
//! core busy.
//!
//! Above it there is no timer either. The first query finds the coalescer
//! idle and starts a drain job on rayon at once, so a lone query waits for
//! nothing. Queries
//! that arrive while a scan is running queue up; when it finishes, the drain
//! job takes every queued query for the same snapshot (up to `max_batch`)
//! and scans them together. The "window" is therefore the duration of the
//! previous scan, and it only exists under concurrency.
//!
//! Invariants: a query is only ever batched with queries against the same
//! snapshot (`Arc::ptr_eq`), so a reload never mixes versions; results are
//! exactly what each query alone gets at the batch's `now_ms` (a batch
//! scores each pair with the same bits); at most one drain job runs at a
//! time. Lives beside the index rather than in `semsearch_scan` because it
//! answers async callers (tokio's oneshot), which the scan crate never does.

use std::sync::{Arc, Mutex, PoisonError};

use semsearch_scan::{Forced, ScanAnswer, Split};

use super::{Index, LiveQuery, OwnedLiveQuery};

/// Matrix floats (rows of the base and delta segments × dimension) up to
/// which a query is scanned on the calling thread instead of being handed
/// to rayon: 2,730 rows of 384 floats, about 25 µs of one core's f32 FMA
/// (less through the int8 copy), below what the round trip through rayon
/// and back to the task costs on a busy 2-core box, and short enough not to
/// stall a tokio worker (`cargo bench --bench coalesce` compares both sides).
pub const INLINE_MAX_FLOATS: usize = 1 << 20;

/// Queues concurrent queries and scans them in batches on rayon.
pub struct Coalescer {
    max_batch: usize,
    queue: Mutex<Queue>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").field("max_batch", &self.max_batch).finish_non_exhaustive()
    }
}

struct Queue {
    /// True while a drain job is scheduled or running; it alone clears it.
    draining: bool,
    pending: Vec<Pending>,
}

struct Pending {
    snapshot: Arc<Index>,
    query: OwnedLiveQuery,
    now_ms: u64,
    reply: tokio::sync::oneshot::Sender<ScanAnswer>,
}

impl Coalescer {
    /// A coalescer that scans at most `max_batch` (at least 1) queries at once.
    pub fn new(max_batch: usize) -> Arc<Self> {
        Arc::new(Self {
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue { draining: false, pending: Vec::new() }),
        })
    }

    /// The live top-k of `query` over `snapshot` at `now_ms`, as
    /// [`Index::search`] answers it for this query alone. A batch is
    /// scanned at the latest `now_ms` of its queries: a row that expired
    /// before the scan is gone for all of them. `None` only if the scan
    /// panicked (a bug).
    pub async fn search(
        self: &Arc<Self>,
        snapshot: Arc<Index>,
        query: OwnedLiveQuery,
        now_ms: u64,
    ) -> Option<ScanAnswer> {
        if scans_inline(&snapshot) {
            let forced = Forced { split: Some(Split::on_caller(snapshot.dim())), ..Forced::default() };
            return snapshot.search_forced(&[query.as_live()], now_ms, forced).pop();
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.pending.push(Pending { snapshot, query, now_ms, reply });
            !std::mem::replace(&mut queue.draining, true)
        };
        if start {
            let me = Arc::clone(self);
            rayon::spawn(move || me.drain());
        }
        answer.await.ok()
    }

    /// The queue holds plain data that is consistent after every statement,
    /// so a panic elsewhere while it was locked leaves nothing half-done.
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Scans queued queries, batch after batch, until the queue is empty.
    fn drain(&self) {
        loop {
            let batch = {
                let mut queue = self.lock();
                let Some(first) = queue.pending.first() else {
                    queue.draining = false;
                    return;
                };
                let snapshot = Arc::clone(&first.snapshot);
                let mut batch = Vec::new();
                let mut rest = Vec::new();
                for p in queue.pending.drain(..) {
                    if batch.len() < self.max_batch && Arc::ptr_eq(&p.snapshot, &snapshot) {
                        batch.push(p);
                    } else {
                        rest.push(p);
                    }
                }
                queue.pending = rest;
                batch
            };
            scan(batch);
        }
    }
}

/// Whether a query over `snapshot` is scanned where it stands (see [`INLINE_MAX_FLOATS`]).
fn scans_inline(snapshot: &Index) -> bool {
    let (base, delta) = snapshot.segments();
    (base.len() + delta.len()).saturating_mul(snapshot.dim()) <= INLINE_MAX_FLOATS
}

/// Scans one group of queries over one snapshot and answers each.
fn scan(batch: Vec<Pending>) {
    let snapshot = Arc::clone(&batch[0].snapshot);
    let now_ms = batch.iter().map(|p| p.now_ms).max().unwrap_or_default();
    let queries: Vec<LiveQuery<'_>> = batch.iter().map(|p| p.query.as_live()).collect();
    let answers = snapshot.search(&queries, now_ms);
    drop(queries);
    for (p, answer) in batch.into_iter().zip(answers) {
        // The requester may have gone (timeout); its answer is simply dropped.
        let _ = p.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use roaring::RoaringBitmap;

    use super::*;
    use crate::index::Document;

    fn index(n: usize, dim: usize, expiring_from: usize) -> Arc<Index> {
        let matrix: Vec<f32> = (0..n * dim).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
        let docs = (0..n)
            .map(|i| {
                let expires_at_ms = (i >= expiring_from).then_some(500);
                Arc::new(Document { id: format!("{i:05}").into(), expires_at_ms, ..Default::default() })
            })
            .collect();
        Arc::new(Index::new(Array2::from_shape_vec((n, dim), matrix).expect("n × dim"), docs).expect("sorted ids"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_queries_get_exactly_their_own_live_top_k() {
        // Arrange: two snapshots (one with expired rows; one queued and
        // batched, one scanned inline), many concurrent queries against
        // both, some filtered, some excluding a row.
        let dim = 384;
        let (a, b) = (index(3000, dim, 2500), index(500, dim, 500));
        assert!(!scans_inline(&a) && scans_inline(&b), "both paths run");
        let coalescer = Coalescer::new(16);
        let odd: Arc<RoaringBitmap> = Arc::new((1..3000).step_by(2).collect());
        let queries: Vec<(Arc<Index>, OwnedLiveQuery)> = (0..64)
            .map(|i| {
                let snap = if i % 3 == 0 { Arc::clone(&b) } else { Arc::clone(&a) };
                let query = OwnedLiveQuery {
                    vector: (0..dim).map(|j| ((i * 31 + j * 17) % 23) as f32 - 11.0).collect(),
                    k: 1 + i % 12,
                    exclude: (i % 4 == 1).then_some(i * 7),
                    rows: (i % 5 == 2).then(|| Arc::clone(&odd)),
                    ..OwnedLiveQuery::default()
                };
                (snap, query)
            })
            .collect();

        // Act
        let tasks: Vec<_> = queries
            .iter()
            .map(|(snap, q)| {
                let (c, snap, q) = (Arc::clone(&coalescer), Arc::clone(snap), q.clone());
                tokio::spawn(async move { c.search(snap, q, 1_000).await })
            })
            .collect();

        // Assert
        for ((snap, q), task) in queries.iter().zip(tasks) {
            let got = task.await.expect("task").expect("scan answered");
            let want = snap.search(&[q.as_live()], 1_000).remove(0);
            assert_eq!(got.hits, want.hits, "k={}", q.k);
            assert!(got.hits.iter().all(|h| (h.row as usize) < 2500), "no expired row");
        }
        assert!(!coalescer.lock().draining, "the drain job ends when the queue is empty");
    }

    #[test]
    fn a_query_on_a_small_snapshot_is_answered_without_a_hand_off_in_every_scan_mode() {
        use futures::FutureExt;
        use semsearch_scan::ScanMode;

        for mode in [ScanMode::F32, ScanMode::Int8, ScanMode::Auto] {
            // Arrange: 2,000 rows of 384 (int8 from 2,000 rows on), some expired.
            let snapshot = Arc::new(Arc::into_inner(index(2000, 384, 1900)).expect("one owner").with_scan(mode));
            assert!(scans_inline(&snapshot), "below INLINE_MAX_FLOATS");
            let coalescer = Coalescer::new(16);
            let query = OwnedLiveQuery {
                vector: (0..384).map(|j| ((j * 17) % 23) as f32 - 11.0).collect(),
                k: 10,
                ..OwnedLiveQuery::default()
            };

            // Act: one poll, no runtime: answered only if nothing was handed off.
            let got = coalescer.search(Arc::clone(&snapshot), query.clone(), 1_000).now_or_never();

            // Assert
            let want = snapshot.search(&[query.as_live()], 1_000).remove(0);
            let got = got.unwrap_or_else(|| panic!("{mode:?}: the query waited for a hand-off")).expect("answered");
            assert_eq!(got.hits, want.hits, "{mode:?}");
            assert!(got.hits.iter().all(|h| (h.row as usize) < 1900), "no expired row");
        }
    }
}
