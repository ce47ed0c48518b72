//! Coalescing of concurrent single queries into one batch scan.
//!
//! A single query is memory-bound: it costs one read of the matrix. When
//! several arrive together, scanning them as one batch
//! ([`Searchable::search`] with all of them: one `semsearch_scan::top_k`
//! request, f32 or int8) reads the matrix once for all of them.
//!
//! There is no timer. The first query finds the coalescer idle and starts a
//! drain job on rayon at once, so a lone query waits for nothing. Queries
//! that arrive while a scan is running queue up; when it finishes, the drain
//! job takes every queued query for the same snapshot (up to `max_batch`)
//! and scans them together. The "window" is therefore the duration of the
//! previous scan, and it only exists under concurrency.
//!
//! Invariants: a query is only ever batched with queries against the same
//! snapshot (`Arc::ptr_eq`), so a reload never mixes versions; results are
//! exactly what each query alone gets (a batch scores each pair with the
//! same bits); at most one drain job runs at a time.

use std::sync::{Arc, Mutex, PoisonError};

use semsearch_scan::{top_k, Matrix, ScanAnswer, ScanQuery, ScanRequest};

/// What a coalescer scans: a snapshot that answers a group of queries in
/// one pass.
pub trait Searchable: Send + Sync + 'static {
    /// One answer per query, in query order, each exactly what that query
    /// scanned alone would get. Called on rayon.
    fn search(&self, queries: &[ScanQuery<'_>]) -> Vec<ScanAnswer>;
}

/// A bare `n × dim` row-major matrix, scanned in f32.
impl Searchable for Vec<f32> {
    fn search(&self, queries: &[ScanQuery<'_>]) -> Vec<ScanAnswer> {
        let dim = queries.first().map_or(0, |q| q.vector.len());
        top_k(Matrix::new(self, dim), &ScanRequest { queries, ..ScanRequest::default() })
    }
}

/// Queues concurrent queries and scans them in batches on rayon.
pub struct Coalescer<S> {
    max_batch: usize,
    queue: Mutex<Queue<S>>,
}

impl<S> std::fmt::Debug for Coalescer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").field("max_batch", &self.max_batch).finish_non_exhaustive()
    }
}

struct Queue<S> {
    /// True while a drain job is scheduled or running; it alone clears it.
    draining: bool,
    pending: Vec<Pending<S>>,
}

struct Pending<S> {
    snapshot: Arc<S>,
    query: Vec<f32>,
    k: usize,
    min_score: Option<f32>,
    reply: tokio::sync::oneshot::Sender<ScanAnswer>,
}

impl<S: Searchable> Coalescer<S> {
    /// A coalescer that scans at most `max_batch` (at least 1) queries at once.
    pub fn new(max_batch: usize) -> Arc<Self> {
        Arc::new(Self {
            max_batch: max_batch.max(1),
            queue: Mutex::new(Queue { draining: false, pending: Vec::new() }),
        })
    }

    /// The top-`k` of `query` over `snapshot`, as the snapshot's
    /// [`Searchable::search`] answers it for this query alone. `None` only
    /// if the scan panicked (a bug).
    pub async fn top_k(
        self: &Arc<Self>,
        snapshot: Arc<S>,
        query: Vec<f32>,
        k: usize,
        min_score: Option<f32>,
    ) -> Option<ScanAnswer> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let start = {
            let mut queue = self.lock();
            queue.pending.push(Pending { snapshot, query, k, min_score, reply });
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
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<S>> {
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

/// Scans one group of queries over one snapshot and answers each.
fn scan<S: Searchable>(batch: Vec<Pending<S>>) {
    let snapshot = Arc::clone(&batch[0].snapshot);
    let queries: Vec<ScanQuery<'_>> = batch
        .iter()
        .map(|p| ScanQuery { vector: &p.query, k: p.k, min_score: p.min_score, ..ScanQuery::default() })
        .collect();
    let answers = snapshot.search(&queries);
    drop(queries);
    for (p, answer) in batch.into_iter().zip(answers) {
        // The requester may have gone (timeout); its answer is simply dropped.
        let _ = p.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(n: usize, dim: usize) -> Arc<Vec<f32>> {
        Arc::new((0..n * dim).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_queries_get_exactly_their_own_top_k() {
        // Arrange: two snapshots, many concurrent queries against both.
        let (a, b) = (matrix(3000, 7), matrix(500, 7));
        let coalescer = Coalescer::new(16);
        let queries: Vec<(Arc<Vec<f32>>, Vec<f32>, usize)> = (0..64)
            .map(|i| {
                let snap = if i % 3 == 0 { Arc::clone(&b) } else { Arc::clone(&a) };
                let q: Vec<f32> = (0..7).map(|j| ((i * 31 + j * 17) % 23) as f32 - 11.0).collect();
                (snap, q, 1 + i % 12)
            })
            .collect();

        // Act
        let tasks: Vec<_> = queries
            .iter()
            .map(|(snap, q, k)| {
                let (c, snap, q, k) = (Arc::clone(&coalescer), Arc::clone(snap), q.clone(), *k);
                tokio::spawn(async move { c.top_k(snap, q, k, None).await })
            })
            .collect();

        // Assert
        for ((snap, q, k), task) in queries.iter().zip(tasks) {
            let got = task.await.expect("task").expect("scan answered");
            let want = snap.search(&[ScanQuery { vector: q, k: *k, ..ScanQuery::default() }]).remove(0);
            assert_eq!(got.hits, want.hits, "k={k}");
        }
        assert!(!coalescer.lock().draining, "the drain job ends when the queue is empty");
    }
}
