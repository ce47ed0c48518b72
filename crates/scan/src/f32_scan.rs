//! The f32 scan of every row: one query is scored and selected 64 rows at a
//! time ([`SCORE_ROWS`]), rayon over 256 KiB blocks; many queries are
//! scored tile by tile against all of them, so the matrix is read once for
//! the whole batch. Results equal what each query gets alone (same kernel,
//! same per-row arithmetic: see `F32Kernel::score_block`).
//!
//! Skipped rows (a request's `excluded`, a query's `exclude`) are marked in
//! the score buffer before selection ([`mark`]), so they cost nothing when
//! there are none and one store each when there are: the scan never asks
//! for more than k hits to drop some afterwards.

use rayon::prelude::*;

use crate::{
    kernel::F32Kernel,
    request::{Matrix, ScanQuery, Split},
    topk::{Hit, TopK},
    Plan, BATCH_TILE_BYTES, SCORE_ROWS,
};

/// One hit list per query, in query order: the exact top-k of the f32 rows
/// without the skipped ones.
pub(crate) fn top_k(
    kernel: F32Kernel,
    matrix: Matrix<'_>,
    queries: &[ScanQuery<'_>],
    excluded: &[u32],
    split: Option<Split>,
) -> Vec<Vec<Hit>> {
    match queries {
        [] => Vec::new(),
        [one] => vec![single(kernel, matrix, one, excluded, split)],
        _ => batch(kernel, matrix, queries, excluded, split),
    }
}

fn single(
    kernel: F32Kernel,
    matrix: Matrix<'_>,
    q: &ScanQuery<'_>,
    excluded: &[u32],
    split: Option<Split>,
) -> Vec<Hit> {
    if q.k == 0 || matrix.is_empty() {
        return Vec::new();
    }
    let (rows, dim) = (matrix.rows(), matrix.dim());
    let plan = Plan::choose(split, dim, rows.len());
    let floor = q.min_score.unwrap_or(f32::NEG_INFINITY);
    let scan = |first_row: usize, block: &[f32], top: &mut TopK| {
        let mut skipped = Excluded::from_row(excluded, first_row);
        let mut buf = [0.0f32; SCORE_ROWS];
        for (b, chunk) in block.chunks(SCORE_ROWS * dim).enumerate() {
            let scores = &mut buf[..chunk.len() / dim];
            kernel.score_rows(chunk, q.vector, scores);
            let start = first_row + b * SCORE_ROWS;
            mark(scores, start, skipped.take(start, start + scores.len()), q.exclude);
            select(scores, start, floor, top);
        }
    };
    if !plan.parallel {
        let mut top = TopK::new(q.k);
        scan(0, rows, &mut top);
        return top.into_sorted();
    }
    rows.par_chunks(plan.block_rows * dim)
        .enumerate()
        .fold(
            || TopK::new(q.k),
            |mut top, (i, block)| {
                scan(i * plan.block_rows, block, &mut top);
                top
            },
        )
        .reduce(
            || TopK::new(q.k),
            |mut a, b| {
                a.merge(b);
                a
            },
        )
        .into_sorted()
}

/// Offers `scores` (rows `first_row..`) to `top`, skipping those below the
/// running threshold or `floor` without touching the heap. A NaN score (a
/// row [`mark`] skipped) never enters: every comparison with NaN is false.
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

/// Marks the skipped rows among `scores` (rows `first..first + len`) as
/// NaN, which [`select`] never keeps: `inside` (rows of the request's
/// `excluded` in that range) and the query's own `exclude` if it falls there.
#[inline]
fn mark(scores: &mut [f32], first: usize, inside: &[u32], own: Option<u32>) {
    for &row in inside {
        scores[row as usize - first] = f32::NAN;
    }
    if let Some(row) = own.map(|r| r as usize).filter(|r| (first..first + scores.len()).contains(r)) {
        scores[row - first] = f32::NAN;
    }
}

/// A cursor over a request's excluded rows (strictly ascending) for one
/// task, which meets its rows in ascending ranges.
struct Excluded<'a> {
    rest: &'a [u32],
}

impl<'a> Excluded<'a> {
    /// The excluded rows from `row` on (a task's first row).
    fn from_row(excluded: &'a [u32], row: usize) -> Self {
        Self { rest: &excluded[excluded.partition_point(|&r| (r as usize) < row)..] }
    }

    /// The excluded rows in `first..end`; later calls start at or after `end`.
    #[inline]
    fn take(&mut self, first: usize, end: usize) -> &'a [u32] {
        if self.rest.is_empty() {
            return &[];
        }
        let rest = &self.rest[self.rest.partition_point(|&r| (r as usize) < first)..];
        let (inside, after) = rest.split_at(rest.partition_point(|&r| (r as usize) < end));
        self.rest = after;
        inside
    }
}

/// Every query in one pass over the rows: each tile of rows is read from
/// memory once and scored against every query while it sits in L1.
fn batch(
    kernel: F32Kernel,
    matrix: Matrix<'_>,
    queries: &[ScanQuery<'_>],
    excluded: &[u32],
    split: Option<Split>,
) -> Vec<Vec<Hit>> {
    let dim = matrix.dim();
    if matrix.is_empty() {
        return queries.iter().map(|_| Vec::new()).collect();
    }
    let rows = matrix.rows();
    let plan = Plan::choose(split, dim, rows.len().saturating_mul(queries.len()));
    // One contiguous m × dim block, so the kernel can tile queries as well as rows.
    let flat: Vec<f32> = queries.iter().flat_map(|q| q.vector.iter().copied()).collect();
    let floors: Vec<f32> = queries.iter().map(|q| q.min_score.unwrap_or(f32::NEG_INFINITY)).collect();
    let owns: Vec<Option<u32>> = queries.iter().map(|q| q.exclude).collect();
    let batch = Batch { dim, flat: &flat, floors: &floors, owns: &owns, excluded, tile_rows: batch_tile_rows(dim) };
    let new_state = || BatchState {
        tops: queries.iter().map(|q| TopK::new(q.k)).collect(),
        scores: vec![0.0; queries.len() * batch.tile_rows],
    };
    let state = if plan.parallel {
        rows.par_chunks(plan.block_rows * dim)
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
        batch.scan_rows(kernel, rows, 0, &mut state);
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
    /// Per query: its own excluded row.
    owns: &'a [Option<u32>],
    /// The request's excluded rows, strictly ascending.
    excluded: &'a [u32],
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
    fn scan_rows(&self, kernel: F32Kernel, rows: &[f32], first_row: usize, state: &mut BatchState) {
        let dim = self.dim;
        let mut skipped = Excluded::from_row(self.excluded, first_row);
        for (t, tile) in rows.chunks(self.tile_rows * dim).enumerate() {
            let nr = tile.len() / dim;
            let scores = &mut state.scores[..nr * self.floors.len()];
            kernel.score_block(tile, self.flat, dim, scores);
            let base = first_row + t * self.tile_rows;
            let inside = skipped.take(base, base + nr);
            let per_query = state.tops.iter_mut().zip(self.floors).zip(self.owns).zip(scores.chunks_exact_mut(nr));
            for (((top, &floor), &own), scores) in per_query {
                mark(scores, base, inside, own);
                select(scores, base, floor, top);
            }
        }
    }
}
