//! Exact top-k over the rows a filter matches (a query's `among`).
//!
//! The caller (semsearch's `index`) evaluates the filter to a row set; this
//! module scores only what it must, two ways, and picks by selectivity:
//! - [`FilterPath::Gather`]: copy the matching rows, [`SCORE_ROWS`] at a
//!   time, into a contiguous buffer and score that with the f32 kernel. Work
//!   is proportional to the matching rows, but each costs a copy and a
//!   scattered read.
//! - [`FilterPath::Skip`]: walk the matrix in 64-row blocks as the
//!   unfiltered scan does, skip blocks holding no matching row, and offer
//!   only matching rows' scores to the selection. Sequential reads, no copy,
//!   but a block with one match is scored whole.
//!
//! [`GATHER_BELOW`] picks between them, placed by measurement (see its
//! doc). Both always scan the f32 rows, even when the matrix also has an
//! int8 copy: an int8 pass pays off by pruning a full scan, and a selective
//! filter has already pruned more than it would.
//!
//! Skipped rows (the request's `excluded`, the query's `exclude`) are
//! cleared from the row mask before the scan, so they are never scored.
//!
//! Invariant: a row's score is the same bits as in an unfiltered scan with
//! the same kernel (`F32Kernel::score_block` does not depend on the block
//! shape), so a filtered answer equals the unfiltered top-k of the matching
//! rows, ties included (the tie rule in [`crate::topk`]).

use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::{
    kernel::F32Kernel,
    request::{Forced, Matrix, ScanQuery},
    topk::{Hit, TopK},
    Plan, SCORE_ROWS,
};

/// Below this fraction of matching rows the gather path runs, at or above
/// it the skip path. Placed with `cargo bench --bench filter -- cutover`
/// (100k × 384, k = 10, 2 threads; the figures are in
/// docs/benchmarks.md): gather was ahead at every selectivity, but
/// above half the rows its lead was within the run-to-run noise, and on an
/// idle machine the full scan runs at the memory read floor, which a gather
/// (a read plus a copy) cannot beat; so the cut-over sits at 50%, where
/// gather was still clearly ahead. Either side meets the goal: the skip
/// path at 100% is the unfiltered scan.
pub const GATHER_BELOW: f64 = 0.5;

// The skip path reads one mask word per score block.
const _: () = assert!(SCORE_ROWS == 64, "a mask word covers one block of SCORE_ROWS rows");

/// How a filtered scan reads the matrix; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilterPath {
    Gather,
    Skip,
}

impl FilterPath {
    /// The cheaper path for `matching` rows out of `n`.
    pub fn choose(matching: u64, n: usize) -> Self {
        if (matching as f64) < GATHER_BELOW * n as f64 {
            Self::Gather
        } else {
            Self::Skip
        }
    }
}

/// The exact top-k of `q` among the rows of `among` (its `among`) that
/// are neither in `excluded` (strictly ascending) nor `q.exclude`: best
/// first, scores `>=` its `min_score`. The path is `forced.filter_path` or
/// the cheaper one for the matching rows.
pub(crate) fn top_k(
    kernel: F32Kernel,
    matrix: Matrix<'_>,
    q: &ScanQuery<'_>,
    among: &RoaringBitmap,
    excluded: &[u32],
    forced: Forced,
) -> Vec<Hit> {
    let (dim, n) = (matrix.dim(), matrix.len());
    if q.k == 0 || among.is_empty() || n == 0 {
        return Vec::new();
    }
    let mut mask = row_mask(among, n);
    for &row in excluded.iter().chain(&q.exclude).take_while(|&&r| (r as usize) < n) {
        mask[row as usize / 64] &= !(1 << (row % 64));
    }
    let matching: usize = mask.iter().map(|w| w.count_ones() as usize).sum();
    if matching == 0 {
        return Vec::new();
    }
    let path = forced.filter_path.unwrap_or_else(|| FilterPath::choose(matching as u64, n));
    let scan = FilteredScan {
        kernel,
        matrix: matrix.rows(),
        query: q.vector,
        floor: q.min_score.unwrap_or(f32::NEG_INFINITY),
    };
    let scanned_floats = match path {
        FilterPath::Gather => matching * dim,
        FilterPath::Skip => matrix.rows().len(),
    };
    let plan = Plan::choose(forced.split, dim, scanned_floats);
    // Mask words per rayon task: about `block_rows` rows of work each.
    let words_per_task = match path {
        FilterPath::Skip => plan.block_rows.div_ceil(64),
        FilterPath::Gather => (plan.block_rows * n).div_ceil(64 * matching),
    }
    .max(1);
    let run = |first_word: usize, words: &[u64], top: &mut TopK| match path {
        FilterPath::Skip => scan.skip(first_word, words, top),
        FilterPath::Gather => scan.gather(first_word, words, top),
    };
    if !plan.parallel {
        let mut top = TopK::new(q.k);
        run(0, &mask, &mut top);
        return top.into_sorted();
    }
    mask.par_chunks(words_per_task)
        .enumerate()
        .fold(
            || TopK::new(q.k),
            |mut top, (i, words)| {
                run(i * words_per_task, words, &mut top);
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

/// One bit per row (`n.div_ceil(64)` words): rows a task can find by
/// position, and 64-row blocks with no match skipped with one compare.
fn row_mask(rows: &RoaringBitmap, n: usize) -> Vec<u64> {
    let mut mask = vec![0u64; n.div_ceil(64)];
    for row in rows.range(..n as u32) {
        mask[row as usize / 64] |= 1 << (row % 64);
    }
    mask
}

/// The read-only half of a filtered scan, shared by every task.
struct FilteredScan<'a> {
    kernel: F32Kernel,
    matrix: &'a [f32],
    query: &'a [f32],
    floor: f32,
}

impl FilteredScan<'_> {
    /// Rows of mask word `w`: `w * 64 ..` up to the last row.
    fn block(&self, w: usize) -> &[f32] {
        let dim = self.query.len();
        let end = ((w + 1) * SCORE_ROWS * dim).min(self.matrix.len());
        &self.matrix[w * SCORE_ROWS * dim..end]
    }

    /// Skip path over mask words `first_word..`: score every 64-row block
    /// with a match, offer only the matching rows.
    fn skip(&self, first_word: usize, words: &[u64], top: &mut TopK) {
        let dim = self.query.len();
        let mut scores = [0.0f32; SCORE_ROWS];
        for (i, &word) in words.iter().enumerate() {
            if word == 0 {
                continue;
            }
            let w = first_word + i;
            let block = self.block(w);
            let scores = &mut scores[..block.len() / dim];
            self.kernel.score_rows(block, self.query, scores);
            let mut bits = word;
            let mut threshold = top.threshold().max(self.floor);
            while bits != 0 {
                let r = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                if scores[r] >= threshold {
                    top.push(Hit { row: (w * SCORE_ROWS + r) as u32, score: scores[r] });
                    threshold = top.threshold().max(self.floor);
                }
            }
        }
    }

    /// Gather path over mask words `first_word..`: copy matching rows into
    /// a buffer of [`SCORE_ROWS`] rows, score it when full (and at the end).
    fn gather(&self, first_word: usize, words: &[u64], top: &mut TopK) {
        let dim = self.query.len();
        let mut buf = vec![0.0f32; SCORE_ROWS * dim];
        let mut ids = [0u32; SCORE_ROWS];
        let mut scores = [0.0f32; SCORE_ROWS];
        let mut len = 0;
        for (i, &word) in words.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let row = (first_word + i) * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                buf[len * dim..(len + 1) * dim].copy_from_slice(&self.matrix[row * dim..(row + 1) * dim]);
                ids[len] = row as u32;
                len += 1;
                if len == SCORE_ROWS {
                    self.offer(&buf, &ids, &mut scores, top);
                    len = 0;
                }
            }
        }
        if len > 0 {
            self.offer(&buf[..len * dim], &ids[..len], &mut scores[..len], top);
        }
    }

    /// Scores gathered rows and offers them under their own row ids.
    fn offer(&self, rows: &[f32], ids: &[u32], scores: &mut [f32], top: &mut TopK) {
        let scores = &mut scores[..ids.len()];
        self.kernel.score_rows(rows, self.query, scores);
        let mut threshold = top.threshold().max(self.floor);
        for (&row, &score) in ids.iter().zip(scores.iter()) {
            if score >= threshold {
                top.push(Hit { row, score });
                threshold = top.threshold().max(self.floor);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{
        request::{ScanRequest, Split},
        topk::rank_order,
    };

    /// Brute force: every matching row that is not skipped, scored with the
    /// same kernel, full sort under the tie rule.
    fn oracle(
        kernel: F32Kernel,
        matrix: &[f32],
        q: &ScanQuery<'_>,
        rows: &RoaringBitmap,
        excluded: &[u32],
    ) -> Vec<Hit> {
        let dim = q.vector.len();
        let mut all: Vec<Hit> = rows
            .iter()
            .filter(|&r| (r as usize) < matrix.len() / dim)
            .filter(|r| excluded.binary_search(r).is_err() && Some(*r) != q.exclude)
            .map(|r| {
                let mut s = [0.0f32];
                kernel.score_rows(&matrix[r as usize * dim..(r as usize + 1) * dim], q.vector, &mut s);
                Hit { row: r, score: s[0] }
            })
            .filter(|h| q.min_score.is_none_or(|m| h.score >= m))
            .collect();
        all.sort_by(rank_order);
        all.truncate(q.k);
        all
    }

    fn matrix(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::test_rng::XorShift::new(seed);
        (0..n * dim)
            .map(|_| {
                // Few distinct values, so equal scores (ties) happen.
                ((rng.next_u64() >> 40) % 5) as f32 - 2.0
            })
            .collect()
    }

    /// One query through the scan's entry, with what the test forces.
    fn scan(matrix: &[f32], q: ScanQuery<'_>, excluded: &[u32], forced: Forced) -> Vec<Hit> {
        let dim = q.vector.len();
        crate::top_k(Matrix::new(matrix, dim), &ScanRequest { queries: &[q], excluded, forced }).remove(0).hits
    }

    #[test]
    fn no_matching_rows_gives_no_hits_on_either_path() {
        let m = matrix(100, 4, 1);
        let none = RoaringBitmap::new();
        for path in [FilterPath::Gather, FilterPath::Skip] {
            let q = ScanQuery { vector: &[1.0, 0.0, 0.0, 0.0], k: 5, among: Some(&none), ..ScanQuery::default() };

            let got = scan(&m, q, &[], Forced { filter_path: Some(path), ..Forced::default() });

            assert!(got.is_empty());
        }
    }

    #[test]
    fn rows_past_the_matrix_are_ignored() {
        let m = matrix(10, 2, 3);
        let rows: RoaringBitmap = [3u32, 9, 10, 500].into_iter().collect();

        let got = scan(
            &m,
            ScanQuery { vector: &[1.0, 0.5], k: 10, among: Some(&rows), ..ScanQuery::default() },
            &[],
            Forced::default(),
        );

        let mut got_rows: Vec<u32> = got.iter().map(|h| h.row).collect();
        got_rows.sort_unstable();
        assert_eq!(got_rows, vec![3, 9]);
    }

    #[test]
    fn the_cut_over_picks_gather_for_selective_filters() {
        assert_eq!(FilterPath::choose(10, 1000), FilterPath::Gather);
        assert_eq!(FilterPath::choose(900, 1000), FilterPath::Skip);
    }

    proptest! {
        /// Both paths, every kernel this CPU has, parallel and not, with
        /// skipped rows: the brute-force top-k of the matching rows that
        /// are not skipped, ties by row.
        #[test]
        fn both_paths_equal_brute_force_over_matching_rows(
            seed in any::<u64>(),
            n in 0usize..3000,
            dim in 1usize..24,
            density in 0.0f64..1.0,
            k in 1usize..40,
            min in proptest::option::of(-3.0f32..3.0),
            exclude_every in proptest::option::of(1usize..9),
            exclude in proptest::option::of(0u32..3000),
            block_rows in 1usize..300,
        ) {
            let m = matrix(n, dim, seed);
            let vector = matrix(1, dim, seed ^ 0xABCD);
            let step = (1.0 / density.max(1e-3)) as u64;
            let rows: RoaringBitmap = (0..n as u32).filter(|r| (u64::from(*r).wrapping_mul(seed | 1) >> 3) % step.max(1) == 0).collect();
            let excluded: Vec<u32> = exclude_every.map_or(Vec::new(), |e| (0..n as u32).step_by(e).collect());
            let q = ScanQuery { vector: &vector, k, min_score: min, exclude, among: Some(&rows) };
            for kernel in F32Kernel::available() {
                let want = oracle(kernel, &m, &q, &rows, &excluded);
                for path in [FilterPath::Gather, FilterPath::Skip] {
                    for split in [None, Some(Split { block_rows, parallel: false }), Some(Split { block_rows, parallel: true })] {
                        let forced = Forced { kernel: Some(kernel), filter_path: Some(path), split, ..Forced::default() };
                        let got = scan(&m, q, &excluded, forced);
                        prop_assert_eq!(&got, &want, "kernel {:?} path {:?} split {:?} seed {}", kernel, path, split, seed);
                    }
                }
            }
        }
    }
}
