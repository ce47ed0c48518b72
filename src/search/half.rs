//! f16 storage for the scan, with exact f32 rescoring.
//!
//! A single query is memory-bound, so halving the bytes it reads should
//! halve its cost. [`HalfMatrix`] keeps an f16 copy of the rows; the scan
//! reads it to find candidates, then rescores only the candidates against
//! the f32 rows with the same kernel as [`super::top_k_with`].
//!
//! Exactness, not approximation: the f16 pass keeps `k' = 2k + 32`
//! candidates and an error bound `E` on |f16 score - exact score| (from the
//! f16 rounding, the row and query norms and f32 accumulation). A row left
//! out scores at most `a_last + E` exactly, and the k best candidates score
//! at least `a_k - E`; if `a_last + E < max(a_k - E, min_score)` nothing left
//! out can enter the result. Otherwise (many near-ties) the query falls back
//! to the full f32 scan. Either way the result is bit for bit what
//! [`super::top_k_with`] returns (the rescoring uses the same per-pair
//! arithmetic).
//!
//! Not wired into the service: [`crate::index::Index`] keeps f32 only. The
//! f32 rows are still needed for rescoring, so this trades 50% more memory
//! for a cheaper scan; see docs/benchmarks-kernel.md for what it measured.

use rayon::prelude::*;

use super::{kernel::scalar, top_k_with, Hit, Kernel, TopK, BLOCK_BYTES, PARALLEL_MIN_FLOATS, SCORE_ROWS};

/// An f16 copy of an `n × dim` row-major matrix.
#[derive(Debug, Clone)]
pub struct HalfMatrix {
    rows: Vec<u16>,
    dim: usize,
    /// Largest row norm (f64): scales the error bound.
    max_norm: f64,
}

/// How one [`top_k_half`] call went, for benches and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfPath {
    /// The f16 candidates provably held the answer.
    Rescored,
    /// Near-ties made the bound inconclusive; the f32 scan answered.
    FellBack,
}

impl HalfMatrix {
    /// Rounds every element to the nearest f16.
    ///
    /// # Panics
    /// If `dim` is 0 or does not divide `matrix.len()`.
    pub fn from_f32(matrix: &[f32], dim: usize) -> Self {
        assert!(dim > 0 && matrix.len().is_multiple_of(dim), "matrix is n × dim");
        let max_norm = matrix
            .chunks_exact(dim)
            .map(|r| r.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        Self { rows: matrix.iter().map(|x| scalar::f32_to_f16(*x)).collect(), dim, max_norm }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows stored.
    pub fn len(&self) -> usize {
        self.rows.len() / self.dim
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Bound on |f16-row score - exact f32 score| for a query of this norm:
    /// relative f16 rounding (2^-11) of each element, absolute error of f16
    /// subnormals (2^-25 each), and f32 accumulation in both passes (dim·2^-24
    /// each, a worst case), all scaled by |q|·max|r| (Cauchy-Schwarz).
    fn error_bound(&self, query_norm: f64) -> f64 {
        let d = self.dim as f64;
        let scale = query_norm * self.max_norm.max(1.0);
        scale * (2f64.powi(-11) + d.sqrt() * 2f64.powi(-25) + 2.0 * d * 2f64.powi(-24)) * 1.01
    }
}

/// [`super::top_k_with`] over `exact` (the f32 rows `half` was built from),
/// scanning `half` first. Same result, bit for bit.
///
/// # Panics
/// If `exact` and `half` differ in shape or `query.len()` is not their dim.
pub fn top_k_half(
    kernel: Kernel,
    half: &HalfMatrix,
    exact: &[f32],
    query: &[f32],
    k: usize,
    min_score: Option<f32>,
) -> (Vec<Hit>, HalfPath) {
    let dim = half.dim;
    assert!(query.len() == dim && exact.len() == half.rows.len(), "half, exact and query must agree");
    let n = half.len();
    if k == 0 || n == 0 {
        return (Vec::new(), HalfPath::Rescored);
    }
    let query_norm = query.iter().map(|x| f64::from(*x) * f64::from(*x)).sum::<f64>().sqrt();
    let bound = half.error_bound(query_norm);
    let floor = min_score.map_or(f64::NEG_INFINITY, f64::from);
    let wanted = k.saturating_mul(2).saturating_add(32).min(n);
    // Rows whose f16 score is below floor - E cannot reach the floor exactly.
    let approx_floor = (floor - bound) as f32;
    let candidates = approximate(kernel, half, query, wanted, approx_floor);

    // Every row is a candidate, or the f16 pass ran out of rows above the floor.
    let complete = wanted == n || candidates.len() < wanted || {
        let a_last = f64::from(candidates[wanted - 1].score);
        let a_k = candidates.get(k - 1).map_or(f64::NEG_INFINITY, |h| f64::from(h.score));
        a_last + bound < (a_k - bound).max(floor)
    };
    if !complete {
        return (top_k_with(kernel, exact, query, k, min_score), HalfPath::FellBack);
    }
    let mut top = TopK::new(k);
    let floor32 = min_score.unwrap_or(f32::NEG_INFINITY);
    for candidate in candidates {
        let row = candidate.row as usize;
        let mut score = [0.0f32];
        kernel.score_rows(&exact[row * dim..][..dim], query, &mut score);
        if score[0] >= floor32 {
            top.push(Hit { row: candidate.row, score: score[0] });
        }
    }
    (top.into_sorted(), HalfPath::Rescored)
}

/// The best `wanted` rows by f16 score (at least `floor`), in rank order.
fn approximate(kernel: Kernel, half: &HalfMatrix, query: &[f32], wanted: usize, floor: f32) -> Vec<Hit> {
    let dim = half.dim;
    let block_rows = (BLOCK_BYTES / (dim * std::mem::size_of::<u16>())).max(SCORE_ROWS);
    let scan = |i: usize, block: &[u16], top: &mut TopK| {
        let mut buf = [0.0f32; SCORE_ROWS];
        for (b, rows) in block.chunks(SCORE_ROWS * dim).enumerate() {
            let scores = &mut buf[..rows.len() / dim];
            kernel.score_rows_f16(rows, query, scores);
            super::select(scores, i * block_rows + b * SCORE_ROWS, floor, top);
        }
    };
    if half.rows.len() < PARALLEL_MIN_FLOATS || rayon::current_num_threads() == 1 {
        let mut top = TopK::new(wanted);
        scan(0, &half.rows, &mut top);
        return top.into_sorted();
    }
    half.rows
        .par_chunks(block_rows * dim)
        .enumerate()
        .fold(
            || TopK::new(wanted),
            |mut top, (i, block)| {
                scan(i, block, &mut top);
                top
            },
        )
        .reduce(
            || TopK::new(wanted),
            |mut a, b| {
                a.merge(b);
                a
            },
        )
        .into_sorted()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let mut m: Vec<f32> = (0..n * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        for row in m.chunks_exact_mut(dim.max(1)) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            row.iter_mut().for_each(|x| *x /= norm);
        }
        m
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Random rows, plus exact duplicates and near-duplicates (forcing
        /// the fallback): every kernel returns exactly the f32 scan's hits.
        #[test]
        fn half_scan_returns_exactly_the_f32_result(
            n in 1usize..400,
            dim in 1usize..80,
            k in 1usize..50,
            copies in 0usize..40,
            nudge in prop::option::of(1e-6f32..1e-3),
            min_score in prop::option::of(-0.2f32..0.3),
            seed in any::<u64>(),
        ) {
            let mut exact = unit_rows(n, dim, seed);
            let query = unit_rows(1, dim, seed ^ 0xABCD);
            for c in 0..copies {
                let (from, to) = ((c * 7) % n, (c * 13 + 1) % n);
                let src: Vec<f32> = exact[from * dim..][..dim].to_vec();
                let dst = &mut exact[to * dim..][..dim];
                dst.copy_from_slice(&src);
                if let Some(eps) = nudge {
                    dst[0] += eps;
                }
            }
            let half = HalfMatrix::from_f32(&exact, dim);
            for kernel in Kernel::available() {
                let (got, _path) = top_k_half(kernel, &half, &exact, &query, k, min_score);
                let want = top_k_with(kernel, &exact, &query, k, min_score);
                prop_assert_eq!(got, want, "{} n={} dim={} k={}", kernel.name(), n, dim, k);
            }
        }
    }

    #[test]
    fn near_ties_below_f16_resolution_still_give_the_exact_top_k() {
        // 300 rows within ~1e-4 of the query: f16 rounding (~5e-4) scrambles
        // their order, so only the bound stands between us and a wrong answer.
        let dim = 64;
        let query = unit_rows(1, dim, 11);
        let noise = unit_rows(300, dim, 12);
        let mut exact: Vec<f32> = noise.iter().enumerate().map(|(i, e)| query[i % dim] + 1e-4 * e).collect();
        for row in exact.chunks_exact_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            row.iter_mut().for_each(|x| *x /= norm);
        }
        let half = HalfMatrix::from_f32(&exact, dim);

        for kernel in Kernel::available() {
            let (got, path) = top_k_half(kernel, &half, &exact, &query, 10, None);

            assert_eq!(got, top_k_with(kernel, &exact, &query, 10, None), "{}", kernel.name());
            assert_eq!(path, HalfPath::FellBack, "{}: the gap is below the bound", kernel.name());
        }
    }

    #[test]
    fn identical_rows_force_the_fallback_and_keep_the_tie_rule() {
        let row = unit_rows(1, 16, 3);
        let exact: Vec<f32> = row.iter().copied().cycle().take(16 * 100).collect();
        let half = HalfMatrix::from_f32(&exact, 16);

        let (got, path) = top_k_half(Kernel::Scalar, &half, &exact, &row, 3, None);

        assert_eq!(path, HalfPath::FellBack, "100 equal scores leave no gap to prove");
        assert_eq!(got.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
