//! The interval every row's f32 score provably lies in, from its int8 dot
//! product: **the proof the int8 scan's exactness rests on** (the one place
//! it is written; `int8` and its tests point here).
//!
//! # Notation
//! `s` is the score the f32 path returns for a row x and query q: the
//! f32 kernel's `score_rows`, whatever its summation order. `d` = dim,
//! u = 2^-24 (f32 unit roundoff), γ_n = n·u / (1 − n·u), v = 2^-53 (f64).
//! From [`super::quantize`]: x̂ = s_x·c_x, e_x = x − x̂, and the stored
//! f32 upper bounds E_x ≥ ‖e_x‖ and H_x ≥ ‖x̂‖ per row; for the query
//! q̂ = s_q·c_q, Q ≥ ‖q‖, E_q ≥ ‖e_q‖, Ĥ_q ≥ ‖q̂‖. The kernel returns the
//! exact integer I = c_q·c_x, so T = q̂·x̂ = s_q·s_x·I.
//!
//! # 1. Quantization error
//! q·x = q̂·x̂ + q·e_x + e_q·x̂ (expand q·x̂ = q̂·x̂ + e_q·x̂), so by
//! Cauchy–Schwarz |q·x − T| ≤ Q·E_x + E_q·H_x.
//!
//! # 2. The f32 score's own rounding ("the tiny slack")
//! Summing d products in f32 in any order (with or without FMA, in any
//! number of accumulators, padded with exact zeros), each product passes
//! through at most d roundings, so |s − q·x| ≤ γ_d·Σ|q_i·x_i| + d·2^-149,
//! the last term for underflow (a multiplication or FMA landing below
//! 2^-126 is off by at most 2^-150 absolutely; subnormal sums are exact).
//! Both vectors are in the bounded range (`quantize`): a nonzero norm is
//! ≥ 2^-40 and every norm ≤ 2^40. So for x ≠ 0, ‖q‖·‖x‖ ≥ 2^-80 and the
//! underflow term d·2^-149 ≤ γ_d·2^-125 is below γ_d·‖q‖·‖x‖; and nothing
//! overflows (partial sums ≤ 2·2^80). With Σ|q_i·x_i| ≤ ‖q‖·‖x‖ and
//! ‖x‖ ≤ H_x + E_x: |s − q·x| ≤ κ·Q·(H_x + E_x), κ = 2γ_d. For x = 0 the
//! f32 score is exactly +0 = q·x and the same inequality holds.
//!
//! Together: |s − T| ≤ a₀·E_x + b₀·H_x with a₀ = Q·(1 + κ), b₀ = E_q + κ·Q.
//! (At d = 384, κ ≈ 4.6e-5; the quantization terms are ≈ 0.007 each.)
//!
//! # 3. Evaluating the interval in f64
//! The scan computes C = fl(fl(s_q·s_x)·I) (the inner product of two f32s
//! is exact in f64), P = fl(fl(a·E_x) + fl(b·H_x)), hi = fl(C + P) and
//! lo = fl(C − P), all in f64 where nothing here can underflow or overflow
//! (every operand is an f32, an i32 or a coefficient within 2^±90). Each
//! result is within γ'_3 = 3v/(1 − 3v) of its exact value relative to
//! |T| + P, and |T| ≤ ‖q̂‖·‖x̂‖ ≤ Ĥ_q·H_x (Cauchy–Schwarz). The coefficients
//! used are inflated to cover that: a = a₀·(1 + η), b = b₀·(1 + η) + η·Ĥ_q
//! with η = 2^-40 (> 2^12 × γ'_3, also covering the few f64 roundings in
//! computing a and b). Then
//!   hi ≥ T + a₀·E_x + b₀·H_x + η·(a₀·E_x + b₀·H_x + Ĥ_q·H_x) − γ'_3·(Ĥ_q·H_x + P)
//!      ≥ T + a₀·E_x + b₀·H_x ≥ s,
//! and symmetrically lo ≤ s. A row outside the bounded range has E_x = +∞:
//! hi = +∞ and lo = −∞, so it is always rescored and never used to prune.
//!
//! # 4. From the interval to the exact top-k
//! The f32 path (the f32 scan of [`crate::top_k`]) returns the first k, in
//! the order of the tie rule ([`crate::topk`]), of the rows it does not skip
//! whose score is ≥ `min_score` (its early-out `score >= threshold` never
//! drops such a row). Now let τ be the k-th largest `lo` over any set of
//! rows the scan does not skip: those k rows score ≥ τ.
//! A row with hi < max(τ, min_score) scores strictly below τ, so k rows rank
//! before it, or below `min_score`: it is not in the result, and the scan
//! drops it. The survivors are rescored with the same f32 kernel, in
//! descending `hi`, each entering a [`crate::TopK`] exactly as in
//! the f32 path; once the next `hi` is below max(k-th exact score so far,
//! min_score) no remaining row can enter (its score ≤ its hi < that), so
//! rescoring stops. The result is the f32 path's: same rows, order and
//! score bits (`score_rows` gives a pair the same bits in any block shape).

use super::quantize::Quantized;

/// η in step 3 of the module proof.
const ETA: f64 = 1.0 / (1u64 << 40) as f64;

/// Per-query constants: row r's score lies in `interval(..)` (see the
/// module doc for why).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct QueryBound {
    /// s_q.
    scale: f64,
    /// Coefficient of the row's residual norm E_x: a.
    residual_coef: f64,
    /// Coefficient of the row's code norm H_x: b.
    code_norm_coef: f64,
}

impl QueryBound {
    /// The bound for a query quantized as `q`, of dimension `dim`; `None`
    /// when the query is zero or outside the bounded range, where the proof
    /// does not apply (the caller scans in f32 instead).
    pub fn new(q: &Quantized, dim: usize) -> Option<Self> {
        if !(q.is_bounded() && q.norm > 0.0) {
            return None;
        }
        let du = dim as f64 * (1.0 / (1u64 << 24) as f64);
        let kappa = 2.0 * du / (1.0 - du);
        let (norm, residual, code_norm) = (f64::from(q.norm), f64::from(q.residual), f64::from(q.code_norm));
        let a0 = norm * (1.0 + kappa);
        let b0 = residual + kappa * norm;
        Some(Self {
            scale: f64::from(q.scale),
            residual_coef: a0 * (1.0 + ETA),
            code_norm_coef: b0 * (1.0 + ETA) + ETA * code_norm,
        })
    }

    /// `(lo, hi)` with lo ≤ the row's f32 score ≤ hi, from the row's scale,
    /// its exact int8 dot product with the query, and its stored norms.
    #[inline(always)]
    pub fn interval(&self, row_scale: f32, dot: i32, residual: f32, code_norm: f32) -> (f64, f64) {
        let center = self.scale * f64::from(row_scale) * f64::from(dot);
        let margin = self.residual_coef * f64::from(residual) + self.code_norm_coef * f64::from(code_norm);
        (center - margin, center + margin)
    }

    /// How many rows' `hi` (as [`QueryBound::interval`] computes it) reach
    /// `cut`: the branch-free pre-check that lets the scan skip a block of
    /// rows without looking at each. Slices are one entry per row.
    ///
    /// Written so the compiler vectorises it (a compare and a count, no
    /// early exit); the int8 kernels inline it into functions compiled for
    /// their instruction set (`Int8Kernel::count_reaching`). The same IEEE
    /// operations in the same order as `interval`, so the same bits.
    #[inline(always)]
    pub fn count_reaching(
        &self,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize {
        let n = dots.len();
        let (scales, residuals, code_norms) = (&scales[..n], &residuals[..n], &code_norms[..n]);
        let mut count = 0;
        for i in 0..n {
            let center = self.scale * f64::from(scales[i]) * f64::from(dots[i]);
            let margin = self.residual_coef * f64::from(residuals[i]) + self.code_norm_coef * f64::from(code_norms[i]);
            count += usize::from(center + margin >= cut);
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{int8::quantize::quantize, F32Kernel};

    /// Adversarial pairs: the f32 score of every kernel lies in the
    /// interval, and the interval is not absurdly wide.
    #[test]
    fn every_kernels_score_lies_in_the_interval() {
        let mut rng = crate::test_rng::XorShift::new(0x1234_5678_9abc_def1);
        let mut next = move || rng.unit();
        for dim in [1usize, 2, 3, 16, 100, 384, 1000] {
            for case in 0..200 {
                // Scales from 1e-11 to 1e11 (edges of the bounded range), and
                // rows that are near-copies of the query (the tightest ties).
                let qscale = 10f32.powi(case % 23 - 11);
                let xscale = 10f32.powi((case / 23) % 23 - 11);
                let q: Vec<f32> = (0..dim).map(|_| next() * qscale).collect();
                let x: Vec<f32> = if case % 3 == 0 {
                    q.iter().map(|v| v / qscale * xscale * (1.0 + 1e-6 * next())).collect()
                } else {
                    (0..dim).map(|_| next() * xscale).collect()
                };
                let (mut cq, mut cx) = (vec![0i8; dim], vec![0i8; dim]);
                let (qq, qx) = (quantize(&q, &mut cq), quantize(&x, &mut cx));
                let Some(bound) = QueryBound::new(&qq, dim) else {
                    assert!(!qq.is_bounded(), "a bounded nonzero query has a bound");
                    continue;
                };
                let dot: i32 = cq.iter().zip(&cx).map(|(a, b)| i32::from(*a) * i32::from(*b)).sum();
                let (lo, hi) = bound.interval(qx.scale, dot, qx.residual, qx.code_norm);
                for kernel in F32Kernel::available() {
                    let mut score = [0.0f32];
                    kernel.score_rows(&x, &q, &mut score);
                    let s = f64::from(score[0]);
                    assert!(lo <= s && s <= hi, "{} dim={dim} case={case}: {lo} <= {s} <= {hi}", kernel.name());
                }
                if qx.is_bounded() {
                    let width = (hi - lo) / (f64::from(qq.norm) * f64::from(qx.norm) + f64::MIN_POSITIVE);
                    assert!(
                        width < 0.1 * (dim as f64).sqrt().max(1.0),
                        "dim={dim} case={case}: relative width {width}"
                    );
                }
            }
        }
    }

    #[test]
    fn zero_and_unbounded_queries_have_no_bound() {
        let mut c = [0i8; 2];
        assert_eq!(QueryBound::new(&quantize(&[0.0, 0.0], &mut c), 2), None);
        assert_eq!(QueryBound::new(&quantize(&[1e-20, 0.0], &mut c), 2), None);
        assert_eq!(QueryBound::new(&quantize(&[f32::NAN, 0.0], &mut c), 2), None);
        assert!(QueryBound::new(&quantize(&[0.6, 0.8], &mut c), 2).is_some());
    }

    #[test]
    fn unbounded_rows_get_an_infinite_interval() {
        let mut c = [0i8; 2];
        let bound = QueryBound::new(&quantize(&[0.6, 0.8], &mut c), 2).expect("bounded query");
        let row = quantize(&[1e30, 0.0], &mut c);
        assert_eq!(bound.interval(row.scale, 0, row.residual, row.code_norm), (f64::NEG_INFINITY, f64::INFINITY));
    }
}
