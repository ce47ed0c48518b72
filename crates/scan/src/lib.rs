//! Exact cosine top-k over a row-major matrix of unit rows: the scan layer
//! of semsearch.
//!
//! Owns: the f32 kernels and the once-per-process choice between them
//! ([`kernel`], `SEMSEARCH_KERNEL`), the int8 copy with proven bounds and
//! exact f32 rescoring ([`int8`]), the tie rule ([`topk`]), the scan of a
//! filter's rows ([`filter`]), the operator's `SEMSEARCH_SCAN` and which
//! path answered a query ([`mode`]), and the one entry point, [`top_k`],
//! which answers a [`ScanRequest`] over a [`Matrix`].
//!
//! Does not own: documents, ids, segments or expiry (semsearch's `index`
//! hands over the rows of a segment and says which of them to skip); CPU
//! feature detection (the proof tokens come from `semsearch_cpu`); and any
//! I/O: no tokio, no Redis, no HTTP. The scan is CPU work on rayon's pool:
//! call it from rayon (semsearch's `index::coalesce` does), never from a
//! tokio worker.
//!
//! # How a request is answered
//!
//! | query | matrix | how | where |
//! |---|---|---|---|
//! | `among` a filter's rows | any | only those f32 rows: gathered, or skipped to by 64-row block | [`filter`] |
//! | every row | with an int8 copy | one int8 pass for all queries, then exact f32 rescoring of the candidates (or the f32 scan, for a fallback) | [`int8`] |
//! | every row | f32 only | one pass: a single query fused score-then-select per 64-row block, many queries tile by tile | `f32_scan` |
//!
//! Every path returns the same rows, order and score bits: those of the f32
//! scan, with the same kernel, of the candidate rows without the skipped
//! ones (the request's `excluded`, each query's `exclude`). Skipped rows
//! are as good as absent, never over-fetched and dropped afterwards.
//!
//! Invariants: with a given kernel, a row's score against a query is the
//! same bits whether it was scored alone, in any block shape or in a batch
//! (see [`F32Kernel::score_block`]), so the result does not depend on how
//! rows are cut into blocks and tasks (every block's [`TopK`] applies the
//! tie rule and merging re-applies it), nor on batching, nor on the path.
//! Kernels differ from each other only by f32 rounding. Memory per query is
//! O(k × tasks), never O(n).

#![deny(unsafe_code)]

mod f32_scan;
pub mod filter;
pub mod int8;
pub mod kernel;
pub mod mode;
pub mod request;
pub mod topk;

pub use kernel::F32Kernel;
pub use mode::{ScanCounters, ScanMode, ScanPath};
pub use request::{Forced, Matrix, ScanAnswer, ScanQuery, ScanRequest, Split};
pub use topk::{Hit, TopK};

/// `len` elements plus room to grow by 1/32: the capacity a fresh buffer
/// for a matrix (or its int8 copy) is given, so that once it retires, the
/// next load of a slightly larger index still fits in it and writes into
/// pages already resident (an index that gained rows since the last load
/// would otherwise find every retired buffer too small). The room is only
/// reserved: its pages are not touched, so not resident, until rows land
/// in them.
pub const fn with_growth_room(len: usize) -> usize {
    len.saturating_add(len / 32)
}

/// Rows scored per kernel call into a stack buffer, before selection looks
/// at them: large enough to amortise kernel dispatch and keep the FMA loop
/// hot, small enough (256 B of scores) to stay in registers and L1.
const SCORE_ROWS: usize = 64;

/// Matrix bytes per rayon leaf task. Sized in bytes rather than rows so that
/// every dimension splits into many tasks (both cores busy even at 10k rows)
/// while each task is long enough to amortise rayon's scheduling.
const BLOCK_BYTES: usize = 256 * 1024;

/// Below this many matrix floats (× queries in a batch) the scan runs on the
/// calling thread: forking a small scan costs more than it saves. Placed by
/// `cargo bench --bench search -- threshold` (the figures and the machine
/// they came from are in docs/benchmarks.md); re-measure on an idle
/// machine before moving it.
const PARALLEL_MIN_FLOATS: usize = 1 << 18;

/// Bytes of rows a batch scan keeps hot while every query of the batch
/// passes over them: about two thirds of a 48 KiB L1d, so the current
/// queries fit beside them.
const BATCH_TILE_BYTES: usize = 32 * 1024;

/// How an f32 scan is cut up: by size ([`Plan::for_dim`]) unless the
/// request forces a [`Split`] (benches place the threshold with it; tests
/// shrink the blocks to exercise block boundaries and merging).
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

    /// `split` if the request forces one, else the plan for `floats` floats of dimension `dim`.
    fn choose(split: Option<Split>, dim: usize, floats: usize) -> Self {
        match split {
            Some(s) => Self { block_rows: s.block_rows.max(1), parallel: s.parallel },
            None => Self::for_dim(dim, floats),
        }
    }
}

/// The exact top-k of every query of `request` over `matrix`, in query
/// order: best first under the tie rule ([`topk`]), only scores `>=` each
/// query's `min_score`, never a row the request excludes, and only rows a
/// query's `among` holds. The one entry point of the crate; see the module
/// docs for which path answers which query. CPU work: call it on rayon.
///
/// # Panics
/// If a query's length is not the matrix's dimension, or `excluded` is not
/// strictly ascending (index invariants; the API checks dimensions first).
pub fn top_k(matrix: Matrix<'_>, request: &ScanRequest<'_>) -> Vec<ScanAnswer> {
    let ScanRequest { queries, excluded, forced } = *request;
    assert!(queries.iter().all(|q| q.vector.len() == matrix.dim()), "every query has the matrix dimension");
    assert!(excluded.windows(2).all(|w| w[0] < w[1]), "excluded rows are strictly ascending");
    let kernel = forced.kernel.unwrap_or_else(kernel::active);
    if queries.iter().all(|q| q.among.is_none()) {
        return every_row(kernel, matrix, queries, excluded, forced);
    }
    // Filtered queries scan their own rows, one by one; the others share a pass.
    let (shared_at, filtered_at): (Vec<usize>, Vec<usize>) =
        (0..queries.len()).partition(|&i| queries[i].among.is_none());
    let shared: Vec<ScanQuery<'_>> = shared_at.iter().map(|&i| queries[i]).collect();
    let mut answers: Vec<Option<ScanAnswer>> = vec![None; queries.len()];
    for (i, answer) in shared_at.into_iter().zip(every_row(kernel, matrix, &shared, excluded, forced)) {
        answers[i] = Some(answer);
    }
    for i in filtered_at {
        let q = &queries[i];
        if let Some(among) = q.among {
            answers[i] = Some(ScanAnswer::f32(filter::top_k(kernel, matrix, q, among, excluded, forced)));
        }
    }
    answers.into_iter().map(|a| a.expect("every query is answered by one path")).collect()
}

/// The queries without `among`, in one pass over every row: through the
/// int8 copy when the matrix has one, else the f32 rows.
fn every_row(
    kernel: F32Kernel,
    matrix: Matrix<'_>,
    queries: &[ScanQuery<'_>],
    excluded: &[u32],
    forced: Forced,
) -> Vec<ScanAnswer> {
    match matrix.int8() {
        Some(copy) => {
            let int8_kernel = forced.int8_kernel.unwrap_or_else(int8::kernel::active);
            int8::search(kernel, int8_kernel, copy, matrix.rows(), queries, excluded, forced)
        }
        None => {
            f32_scan::top_k(kernel, matrix, queries, excluded, forced.split).into_iter().map(ScanAnswer::f32).collect()
        }
    }
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod test_rng;

#[cfg(test)]
mod tests {
    use roaring::RoaringBitmap;

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

    /// The rows of one query's answer.
    fn rows_of(matrix: &[f32], dim: usize, query: ScanQuery<'_>) -> Vec<u32> {
        let answers = top_k(Matrix::new(matrix, dim), &ScanRequest { queries: &[query], ..ScanRequest::default() });
        answers[0].hits.iter().map(|h| h.row).collect()
    }

    #[test]
    fn equals_brute_force_across_blocks() {
        let dim = 5;
        let n = Plan::for_dim(dim, 0).block_rows * 2 + 17;
        let matrix: Vec<f32> = (0..n * dim).map(|i| ((i * 7919 % 1013) as f32 / 1013.0) - 0.5).collect();
        let q = [0.3, -0.2, 0.5, 0.1, -0.4];

        let got = top_k(
            Matrix::new(&matrix, dim),
            &ScanRequest {
                queries: &[ScanQuery { vector: &q, k: 10, ..ScanQuery::default() }],
                ..ScanRequest::default()
            },
        )
        .remove(0);

        let want = reference(&matrix, &q, 10);
        assert_eq!(got.hits.iter().map(|h| h.row).collect::<Vec<_>>(), want.iter().map(|w| w.0).collect::<Vec<_>>());
        for (g, w) in got.hits.iter().zip(&want) {
            assert!((g.score as f64 - w.1).abs() < 1e-5);
        }
        assert_eq!((got.path, got.rescored_rows), (ScanPath::F32, 0));
    }

    #[test]
    fn empty_matrix_gives_no_hits() {
        assert!(rows_of(&[], 2, ScanQuery { vector: &[1.0, 0.0], k: 3, ..ScanQuery::default() }).is_empty());
    }

    #[test]
    fn min_score_cuts_results() {
        let matrix = [1.0, 0.0, 0.0, 1.0, 0.6, 0.8];
        let got =
            rows_of(&matrix, 2, ScanQuery { vector: &[1.0, 0.0], k: 3, min_score: Some(0.5), ..ScanQuery::default() });
        assert_eq!(got, vec![0, 2]);
    }

    #[test]
    fn identical_rows_tie_by_row() {
        let matrix = [0.6, 0.8, 0.6, 0.8, 0.6, 0.8];
        assert_eq!(rows_of(&matrix, 2, ScanQuery { vector: &[0.6, 0.8], k: 2, ..ScanQuery::default() }), vec![0, 1]);
    }

    #[test]
    fn an_excluded_row_is_never_returned_and_the_next_one_fills_k() {
        let matrix = [1.0, 0.0, 0.8, 0.6, 0.6, 0.8, 0.0, 1.0];
        let query = ScanQuery { vector: &[1.0, 0.0], k: 2, exclude: Some(1), ..ScanQuery::default() };

        let got = top_k(
            Matrix::new(&matrix, 2),
            &ScanRequest { queries: &[query], excluded: &[0], ..ScanRequest::default() },
        );

        assert_eq!(got[0].hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn a_mixed_request_answers_filtered_and_unfiltered_queries_in_order() {
        let matrix = [1.0, 0.0, 0.8, 0.6, 0.6, 0.8, 0.0, 1.0];
        let odd: RoaringBitmap = [1u32, 3].into_iter().collect();
        let q = [1.0, 0.0];
        let queries = [
            ScanQuery { vector: &q, k: 1, among: Some(&odd), ..ScanQuery::default() },
            ScanQuery { vector: &q, k: 1, ..ScanQuery::default() },
            ScanQuery { vector: &q, k: 2, among: Some(&odd), exclude: Some(1), ..ScanQuery::default() },
        ];

        let got = top_k(Matrix::new(&matrix, 2), &ScanRequest { queries: &queries, ..ScanRequest::default() });

        let rows: Vec<Vec<u32>> = got.iter().map(|a| a.hits.iter().map(|h| h.row).collect()).collect();
        assert_eq!(rows, vec![vec![1], vec![0], vec![3]]);
        assert!(got.iter().all(|a| a.path == ScanPath::F32));
    }
}
