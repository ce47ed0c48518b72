//! Exact cosine top-k over a row-major matrix of unit rows.
//!
//! Owns the scan and the selection; knows nothing of Redis or HTTP. Callers
//! pass a unit-length query, so a dot product is the cosine. Results follow
//! the tie rule in [`topk`].
//!
//! The scan is CPU work: run it on rayon (see `api::search`), never on a
//! tokio worker.

pub mod kernel;
pub mod topk;

pub use topk::{Hit, TopK};

/// Rows per rayon task: big enough to amortise task overhead, small enough
/// that both cores get work on modest indexes.
const BLOCK_ROWS: usize = 4096;

/// The exact top-`k` rows of `matrix` (`n × dim`, row-major) by dot product
/// with `query`, best first, keeping only scores `>= min_score` if given.
///
/// # Panics
/// If `matrix.len()` is not a multiple of `query.len()` (an index invariant).
pub fn top_k(matrix: &[f32], query: &[f32], k: usize, min_score: Option<f32>) -> Vec<Hit> {
    let dim = query.len();
    assert!(dim > 0 && matrix.len().is_multiple_of(dim), "matrix is n × dim");
    if k == 0 {
        return Vec::new();
    }
    let floor = min_score.unwrap_or(f32::NEG_INFINITY);
    let scan_block = |block_idx: usize, block: &[f32]| {
        let mut top = TopK::new(k);
        let first_row = block_idx * BLOCK_ROWS;
        for (i, row) in block.chunks_exact(dim).enumerate() {
            let score = kernel::dot(row, query);
            if score >= floor && score >= top.threshold() {
                top.push(Hit { row: (first_row + i) as u32, score });
            }
        }
        top
    };
    use rayon::prelude::*;
    matrix
        .par_chunks(BLOCK_ROWS * dim)
        .enumerate()
        .map(|(i, block)| scan_block(i, block))
        .reduce(
            || TopK::new(k),
            |mut a, b| {
                a.merge(b);
                a
            },
        )
        .into_sorted()
}

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
        let n = BLOCK_ROWS * 2 + 17;
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
