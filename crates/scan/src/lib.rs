//! Exact cosine top-k over a row-major matrix of unit rows.
//!
//! Owns the scan and the selection; knows nothing of Redis or HTTP. Callers
//! pass a unit-length query, so a dot product is the cosine. Results follow
//! the tie rule in [`topk`].
//!
//! The scan is CPU work: run it on rayon (semsearch's `index::coalesce`
//! does), never on a tokio worker. This crate does no I/O at all: no tokio,
//! no Redis, no HTTP.
//!
//! Parts: [`top_k`] (one query, fused score-then-select per 64-row block,
//! rayon over 256 KiB blocks), [`top_k_batch`] (many queries, one pass over
//! the matrix), [`int8`] (the same answers from an int8 copy, with proven bounds
//! and exact f32 rescoring), [`scan`] (which of the two an index uses:
//! `SEMSEARCH_SCAN`).
//!
//! Invariants: with a given kernel, a row's score against a query is the
//! same bits whether it was scored alone, in any block shape or in a batch
//! (see `kernel::Kernel::score_block`), so the result does not depend on how
//! rows are cut into blocks and tasks (every block's [`TopK`] applies the
//! tie rule and merging re-applies it) nor on batching. Kernels differ from
//! each other only by f32 rounding. Memory per query is O(k × tasks), never
//! O(n).

pub mod filter;
pub mod int8;
pub mod kernel;
pub mod scan;
pub mod topk;

use rayon::prelude::*;

pub use kernel::Kernel;
pub use scan::{Answer, Scan, ScanMode};
pub use topk::{Hit, TopK};

/// Rows scored per kernel call into a stack buffer, before selection looks
/// at them: large enough to amortise kernel dispatch and keep the FMA loop
/// hot, small enough (256 B of scores) to stay in registers and L1.
const SCORE_ROWS: usize = 64;

/// Matrix bytes per rayon leaf task. Sized in bytes rather than rows so that
/// every dimension splits into many tasks (both cores busy even at 10k rows)
/// while each task is long enough (~10 µs at memory bandwidth) to amortise
/// rayon's scheduling.
const BLOCK_BYTES: usize = 256 * 1024;

/// Below this many matrix floats (× queries in a batch) the scan runs on the
/// calling thread. Measured with `cargo bench --bench search -- threshold`
/// (D=384, 2-thread pool, machine shared with other builds): a forced
/// 2-way split costs 0.4-2 µs more up to 98k floats and stops costing
/// around 200-400k; with the second core busy it never won reliably
/// (docs/benchmarks-kernel.md has three runs). 256Ki floats (1 MiB) is where
/// forking stops costing; re-measure on an idle machine.
const PARALLEL_MIN_FLOATS: usize = 1 << 18;

/// Bytes of rows a batch scan keeps hot while every query of the batch
/// passes over them: about two thirds of a 48 KiB L1d, so the current
/// queries fit beside them.
const BATCH_TILE_BYTES: usize = 32 * 1024;

/// How a scan is cut up. Production uses [`Plan::for_dim`]; tests shrink the
/// blocks to exercise block boundaries and merging on tiny inputs.
#[derive(Debug, Clone, Copy)]
struct Plan {
    block_rows: usize,
    parallel: bool,
}

impl Plan {
    fn for_dim(dim: usize, floats: usize) -> Self {
        Self {
            block_rows: (BLOCK_BYTES / (dim * std::mem::size_of::<f32>())).max(SCORE_ROWS),
            parallel: floats >= PARALLEL_MIN_FLOATS && rayon::current_num_threads() > 1,
        }
    }
}

/// The exact top-`k` rows of `matrix` (`n × dim`, row-major) by dot product
/// with `query`, best first, keeping only scores `>= min_score` if given.
/// Uses the process-wide kernel ([`kernel::active`]).
///
/// # Panics
/// If `query` is empty or `matrix.len()` is not a multiple of `query.len()`
/// (an index invariant).
pub fn top_k(matrix: &[f32], query: &[f32], k: usize, min_score: Option<f32>) -> Vec<Hit> {
    top_k_with(kernel::active(), matrix, query, k, min_score)
}

/// [`top_k`] with an explicit kernel (benches and tests compare kernels).
///
/// Runs on the current rayon pool: one task per block of rows, each keeping
/// its own [`TopK`], merged at the end. Memory is O(k × tasks), never O(n).
///
/// # Panics
/// As [`top_k`].
pub fn top_k_with(kernel: Kernel, matrix: &[f32], query: &[f32], k: usize, min_score: Option<f32>) -> Vec<Hit> {
    let dim = query.len();
    assert!(dim > 0 && matrix.len().is_multiple_of(dim), "matrix is n × dim");
    let plan = Plan::for_dim(dim, matrix.len());
    scan(kernel, matrix, query, k, min_score, plan)
}

/// [`top_k_with`] with the sequential/parallel choice fixed by the caller
/// instead of by [`PARALLEL_MIN_FLOATS`]: for the benchmark that measures
/// that threshold. `parallel` cuts the matrix into two halves, the best a
/// 2-thread split can do on a small matrix. Results are identical either way.
///
/// # Panics
/// As [`top_k`].
#[doc(hidden)]
pub fn top_k_forced(kernel: Kernel, matrix: &[f32], query: &[f32], k: usize, parallel: bool) -> Vec<Hit> {
    let dim = query.len();
    assert!(dim > 0 && matrix.len().is_multiple_of(dim), "matrix is n × dim");
    let block_rows = (matrix.len() / dim).div_ceil(2).max(1);
    let plan = Plan { block_rows, parallel };
    scan(kernel, matrix, query, k, None, plan)
}

fn scan(kernel: Kernel, matrix: &[f32], query: &[f32], k: usize, min_score: Option<f32>, plan: Plan) -> Vec<Hit> {
    if k == 0 {
        return Vec::new();
    }
    let dim = query.len();
    let floor = min_score.unwrap_or(f32::NEG_INFINITY);
    if !plan.parallel {
        let mut top = TopK::new(k);
        scan_rows(kernel, matrix, 0, query, floor, &mut top);
        return top.into_sorted();
    }
    matrix
        .par_chunks(plan.block_rows * dim)
        .enumerate()
        .fold(
            || TopK::new(k),
            |mut top, (i, block)| {
                scan_rows(kernel, block, i * plan.block_rows, query, floor, &mut top);
                top
            },
        )
        .reduce(
            || TopK::new(k),
            |mut a, b| {
                a.merge(b);
                a
            },
        )
        .into_sorted()
}

/// Scores `rows` (whose first row is `first_row` of the index) into `top`,
/// [`SCORE_ROWS`] at a time: the kernel fills a stack buffer, then only
/// scores reaching the current threshold touch the heap.
fn scan_rows(kernel: Kernel, rows: &[f32], first_row: usize, query: &[f32], floor: f32, top: &mut TopK) {
    let dim = query.len();
    let mut buf = [0.0f32; SCORE_ROWS];
    for (b, block) in rows.chunks(SCORE_ROWS * dim).enumerate() {
        let scores = &mut buf[..block.len() / dim];
        kernel.score_rows(block, query, scores);
        select(scores, first_row + b * SCORE_ROWS, floor, top);
    }
}

/// Offers `scores` (rows `first_row..`) to `top`, skipping those below the
/// running threshold or `floor` without touching the heap.
#[inline]
fn select(scores: &[f32], first_row: usize, floor: f32, top: &mut TopK) {
    let mut threshold = top.threshold().max(floor);
    for (i, &score) in scores.iter().enumerate() {
        if score >= threshold {
            top.push(Hit { row: (first_row + i) as u32, score });
            threshold = top.threshold().max(floor);
        }
    }
}

/// One query of a batch: a unit vector with its own k and score floor.
#[derive(Debug, Clone, Copy)]
pub struct BatchQuery<'a> {
    pub vector: &'a [f32],
    pub k: usize,
    pub min_score: Option<f32>,
}

/// [`top_k`] for many queries in one pass over `matrix`: each tile of rows is
/// read from memory once and scored against every query while it sits in
/// L1, so the matrix costs one read for the whole batch instead of one per
/// query. Results are in query order and equal what [`top_k`] returns for
/// each query alone (same kernel, same per-row arithmetic).
///
/// # Panics
/// If the queries' lengths differ, one is empty, or `matrix.len()` is not a
/// multiple of the dimension.
pub fn top_k_batch(matrix: &[f32], queries: &[BatchQuery<'_>]) -> Vec<Vec<Hit>> {
    top_k_batch_with(kernel::active(), matrix, queries)
}

/// [`top_k_batch`] with an explicit kernel.
///
/// # Panics
/// As [`top_k_batch`].
pub fn top_k_batch_with(kernel: Kernel, matrix: &[f32], queries: &[BatchQuery<'_>]) -> Vec<Vec<Hit>> {
    let Some(first) = queries.first() else {
        return Vec::new();
    };
    let dim = first.vector.len();
    assert!(dim > 0 && matrix.len().is_multiple_of(dim), "matrix is n × dim");
    assert!(queries.iter().all(|q| q.vector.len() == dim), "every query has the index dimension");
    let plan = Plan::for_dim(dim, matrix.len().saturating_mul(queries.len()));
    scan_batch(kernel, matrix, queries, plan)
}

/// [`top_k_batch_with`] over every row except `excluded` (ascending row
/// numbers, e.g. a segment's tombstones), in the matrix's row numbers: each
/// query asks for `k + excluded` hits (at most that many of its best rows
/// can be excluded) and the excluded ones are dropped. A bigger heap, the
/// same one pass over the rows. One query alone goes through [`top_k_with`]
/// (same bits: a batch scores each pair as a single scan does).
///
/// # Panics
/// As [`top_k_batch_with`].
pub fn top_k_batch_excluding_with(
    kernel: Kernel,
    matrix: &[f32],
    queries: &[BatchQuery<'_>],
    excluded: &[u32],
) -> Vec<Vec<Hit>> {
    let wider: Vec<BatchQuery<'_>> =
        queries.iter().map(|q| BatchQuery { k: q.k.saturating_add(excluded.len()), ..*q }).collect();
    let mut hits = if let [one] = wider.as_slice() {
        vec![top_k_with(kernel, matrix, one.vector, one.k, one.min_score)]
    } else {
        top_k_batch_with(kernel, matrix, &wider)
    };
    if !excluded.is_empty() {
        for (hits, q) in hits.iter_mut().zip(queries) {
            hits.retain(|h| excluded.binary_search(&h.row).is_err());
            hits.truncate(q.k);
        }
    }
    hits
}

fn scan_batch(kernel: Kernel, matrix: &[f32], queries: &[BatchQuery<'_>], plan: Plan) -> Vec<Vec<Hit>> {
    let dim = queries[0].vector.len();
    // One contiguous m × dim block, so the kernel can tile queries as well as rows.
    let flat: Vec<f32> = queries.iter().flat_map(|q| q.vector.iter().copied()).collect();
    let floors: Vec<f32> = queries.iter().map(|q| q.min_score.unwrap_or(f32::NEG_INFINITY)).collect();
    let batch = Batch { dim, flat: &flat, floors: &floors, tile_rows: batch_tile_rows(dim) };
    let new_state = || BatchState {
        tops: queries.iter().map(|q| TopK::new(q.k)).collect(),
        scores: vec![0.0; queries.len() * batch.tile_rows],
    };
    let state = if plan.parallel {
        matrix
            .par_chunks(plan.block_rows * dim)
            .enumerate()
            .fold(new_state, |mut state, (i, block)| {
                batch.scan_rows(kernel, block, i * plan.block_rows, &mut state);
                state
            })
            .reduce(new_state, |mut a, b| {
                for (a, b) in a.tops.iter_mut().zip(b.tops) {
                    a.merge(b);
                }
                a
            })
    } else {
        let mut state = new_state();
        batch.scan_rows(kernel, matrix, 0, &mut state);
        state
    };
    state.tops.into_iter().map(TopK::into_sorted).collect()
}

/// Rows per batch tile: [`BATCH_TILE_BYTES`] of rows, at least one 4-row
/// register tile, at most [`SCORE_ROWS`].
fn batch_tile_rows(dim: usize) -> usize {
    (BATCH_TILE_BYTES / (dim * std::mem::size_of::<f32>())).clamp(4, SCORE_ROWS)
}

/// The read-only half of a batch scan, shared by every rayon task.
struct Batch<'a> {
    dim: usize,
    /// Every query, row-major (`m × dim`).
    flat: &'a [f32],
    /// Per query: `min_score`, or -inf.
    floors: &'a [f32],
    tile_rows: usize,
}

/// Per-task state of a batch scan: one [`TopK`] per query and a score
/// buffer of `m × tile_rows`, allocated once per task, never per row.
struct BatchState {
    tops: Vec<TopK>,
    scores: Vec<f32>,
}

impl Batch<'_> {
    /// Scores each tile of rows against every query before moving on, so
    /// each tile is fetched from memory once per batch.
    fn scan_rows(&self, kernel: Kernel, rows: &[f32], first_row: usize, state: &mut BatchState) {
        let dim = self.dim;
        for (t, tile) in rows.chunks(self.tile_rows * dim).enumerate() {
            let nr = tile.len() / dim;
            let scores = &mut state.scores[..nr * self.floors.len()];
            kernel.score_block(tile, self.flat, dim, scores);
            let base = first_row + t * self.tile_rows;
            for ((top, &floor), scores) in state.tops.iter_mut().zip(self.floors).zip(scores.chunks_exact(nr)) {
                select(scores, base, floor, top);
            }
        }
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force in f64 with a full sort: the oracle.
    fn reference(matrix: &[f32], q: &[f32], k: usize) -> Vec<(u32, f64)> {
        let dim = q.len();
        let mut all: Vec<(u32, f64)> = matrix
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| (i as u32, r.iter().zip(q).map(|(a, b)| *a as f64 * *b as f64).sum()))
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        all.truncate(k);
        all
    }

    #[test]
    fn equals_brute_force_across_blocks() {
        let dim = 5;
        let n = Plan::for_dim(dim, 0).block_rows * 2 + 17;
        let matrix: Vec<f32> = (0..n * dim).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
        let q = [0.3, -0.2, 0.5, 0.1, -0.4];
        let got = top_k(&matrix, &q, 10, None);
        let want = reference(&matrix, &q, 10);
        assert_eq!(got.iter().map(|h| h.row).collect::<Vec<_>>(), want.iter().map(|w| w.0).collect::<Vec<_>>());
        for (g, w) in got.iter().zip(&want) {
            assert!((g.score as f64 - w.1).abs() < 1e-5);
        }
    }

    #[test]
    fn empty_matrix_gives_no_hits() {
        assert!(top_k(&[], &[1.0, 0.0], 3, None).is_empty());
    }

    #[test]
    fn min_score_cuts_results() {
        let matrix = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let got = top_k(&matrix, &[1.0, 0.0], 3, Some(0.5));
        assert_eq!(got.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn identical_rows_tie_by_row() {
        let matrix = [0.6, 0.8, 0.6, 0.8, 0.6, 0.8];
        let got = top_k(&matrix, &[0.6, 0.8], 2, None);
        assert_eq!(got.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 1]);
    }
}
