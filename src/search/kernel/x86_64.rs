//! x86_64 kernels: AVX2+FMA (8 lanes) and AVX-512F (16 lanes).
//!
//! One of the two files (with `aarch64.rs`) where `unsafe` may live. Each
//! instruction set is represented by a zero-sized token ([`Avx2Fma`],
//! [`Avx512`]) that only its `detect()` can create, after the CPU reported the
//! features. The token's methods are safe: holding one *is* the proof the
//! `#[target_feature]` functions below may run, and the methods check the
//! slice lengths the raw-pointer loops rely on.
//!
//! Invariants the `unsafe fn`s rely on (their `# Safety` sections):
//! - the CPU supports the enabled features (guaranteed by the token);
//! - every pointer is valid for `dim` reads (checked by the safe wrapper).
//!
//! Tails (`dim` not a multiple of the lane count) use masked loads, which
//! never touch the masked-off lanes, so any `dim`, including 1, is exact.
//! Four rows are scored per pass so the query is loaded once per four rows:
//! this halves the loads per FMA, which is what keeps the in-cache case near
//! FMA peak, and gives the memory system four independent streams.
//!
//! `score_rows` computes every row with the same four-row code (leftover
//! rows are padded), so a row's score depends only on the row, the query and
//! the kernel — not on block boundaries. That is what makes a batch scan
//! return bit-identical scores to single-query scans. `dot` is a separate,
//! single-row loop and may round differently in the last bit.

#![deny(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

/// Proof that this CPU supports AVX2 and FMA. Only [`Avx2Fma::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx2Fma(());

impl Avx2Fma {
    /// `Some` when the CPU reports both AVX2 and FMA.
    pub fn detect() -> Option<Self> {
        (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Self(()))
    }

    /// Dot product over the common length of `a` and `b` (as `scalar::dot`).
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: `self` exists only if `detect()` saw AVX2 and FMA; both
        // slices hold at least `n` elements.
        unsafe { dot_avx2(a.as_ptr(), b.as_ptr(), n) }
    }

    /// `out[i] = dot(row i of rows, query)` for `out.len()` consecutive rows.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * query.len()`.
    pub fn score_rows(self, rows: &[f32], query: &[f32], out: &mut [f32]) {
        let dim = query.len();
        assert_eq!(rows.len(), out.len() * dim, "rows must be out.len() × query.len()");
        // SAFETY: `self` proves AVX2+FMA; the assert above makes every row
        // pointer `rows + i*dim` (i < out.len()) valid for `dim` reads, and
        // `query` holds `dim` elements.
        unsafe { score_rows_avx2(rows.as_ptr(), query.as_ptr(), dim, out) }
    }
}

/// Proof that this CPU supports AVX-512F. Only [`Avx512::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512(());

impl Avx512 {
    /// `Some` when the CPU reports AVX-512F.
    pub fn detect() -> Option<Self> {
        is_x86_feature_detected!("avx512f").then_some(Self(()))
    }

    /// Dot product over the common length of `a` and `b` (as `scalar::dot`).
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: `self` exists only if `detect()` saw AVX-512F; both slices
        // hold at least `n` elements.
        unsafe { dot_avx512(a.as_ptr(), b.as_ptr(), n) }
    }

    /// `out[i] = dot(row i of rows, query)` for `out.len()` consecutive rows.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * query.len()`.
    pub fn score_rows(self, rows: &[f32], query: &[f32], out: &mut [f32]) {
        let dim = query.len();
        assert_eq!(rows.len(), out.len() * dim, "rows must be out.len() × query.len()");
        // SAFETY: `self` proves AVX-512F; the assert above makes every row
        // pointer valid for `dim` reads, and `query` holds `dim` elements.
        unsafe { score_rows_avx512(rows.as_ptr(), query.as_ptr(), dim, out) }
    }
}

// ---------------------------------------------------------------- AVX2 + FMA

/// Horizontal sum of 8 lanes.
#[target_feature(enable = "avx2,fma")]
fn hsum256(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let shuf = _mm_movehdup_ps(s);
    let s = _mm_add_ps(s, shuf);
    let shuf = _mm_movehl_ps(shuf, s);
    _mm_cvtss_f32(_mm_add_ss(s, shuf))
}

/// Lane mask selecting the first `rem` (< 8) lanes, for masked loads.
#[target_feature(enable = "avx2,fma")]
fn tail_mask256(rem: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

/// # Safety
/// The CPU must support AVX2 and FMA; `a` and `b` must be valid for `n` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 32 <= n, so lanes i+8j .. i+8j+8 are within both inputs.
            let (x, y) = unsafe { (_mm256_loadu_ps(a.add(i + 8 * j)), _mm256_loadu_ps(b.add(i + 8 * j))) };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
        i += 32;
    }
    while i + 8 <= n {
        // SAFETY: i + 8 <= n.
        let (x, y) = unsafe { (_mm256_loadu_ps(a.add(i)), _mm256_loadu_ps(b.add(i))) };
        acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
        i += 8;
    }
    if i < n {
        let mask = tail_mask256(n - i);
        // SAFETY: the mask enables only lanes i .. n, the only ones read;
        // masked-off lanes are never accessed (no fault past the end).
        let (x, y) = unsafe { (_mm256_maskload_ps(a.add(i), mask), _mm256_maskload_ps(b.add(i), mask)) };
        acc[1] = _mm256_fmadd_ps(x, y, acc[1]);
    }
    hsum256(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])))
}

/// Four rows against one query; two accumulators per row (eight FMA chains,
/// enough to cover the FMA latency on two pipes).
///
/// # Safety
/// The CPU must support AVX2 and FMA; `q` and each `rows[r]` must be valid
/// for `dim` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn dot4_avx2(rows: [*const f32; 4], q: *const f32, dim: usize) -> [f32; 4] {
    let mut lo = [_mm256_setzero_ps(); 4];
    let mut hi = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 16 <= dim {
        // SAFETY: i + 16 <= dim and every pointer is valid for `dim` reads.
        unsafe {
            let q0 = _mm256_loadu_ps(q.add(i));
            let q1 = _mm256_loadu_ps(q.add(i + 8));
            for r in 0..4 {
                lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r].add(i)), q0, lo[r]);
                hi[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r].add(i + 8)), q1, hi[r]);
            }
        }
        i += 16;
    }
    if i + 8 <= dim {
        // SAFETY: i + 8 <= dim.
        unsafe {
            let q0 = _mm256_loadu_ps(q.add(i));
            for r in 0..4 {
                lo[r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r].add(i)), q0, lo[r]);
            }
        }
        i += 8;
    }
    if i < dim {
        let mask = tail_mask256(dim - i);
        // SAFETY: the mask enables only lanes i .. dim; masked-off lanes are never accessed.
        unsafe {
            let q0 = _mm256_maskload_ps(q.add(i), mask);
            for r in 0..4 {
                hi[r] = _mm256_fmadd_ps(_mm256_maskload_ps(rows[r].add(i), mask), q0, hi[r]);
            }
        }
    }
    [
        hsum256(_mm256_add_ps(lo[0], hi[0])),
        hsum256(_mm256_add_ps(lo[1], hi[1])),
        hsum256(_mm256_add_ps(lo[2], hi[2])),
        hsum256(_mm256_add_ps(lo[3], hi[3])),
    ]
}

/// # Safety
/// The CPU must support AVX2 and FMA; `q` must be valid for `dim` reads and
/// `rows` for `out.len() * dim` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn score_rows_avx2(rows: *const f32, q: *const f32, dim: usize, out: &mut [f32]) {
    let out_len = out.len();
    let mut groups = out.chunks_exact_mut(4);
    let mut row = 0;
    for group in &mut groups {
        // SAFETY: rows row .. row+4 are < out.len(), so each pointer is valid
        // for `dim` reads (caller's contract).
        let scores = unsafe {
            let p = rows.add(row * dim);
            dot4_avx2([p, p.add(dim), p.add(2 * dim), p.add(3 * dim)], q, dim)
        };
        group.copy_from_slice(&scores);
        row += 4;
    }
    let rest = groups.into_remainder();
    if !rest.is_empty() {
        // The last 1-3 rows go through the same four-row code (the last row
        // repeated as padding), so a row's score never depends on its position.
        let last = out_len - 1;
        // SAFETY: every row index row + j (capped at last < out.len()) is
        // valid for `dim` reads (caller's contract).
        let scores = unsafe {
            let p = |j: usize| rows.add((row + j).min(last) * dim);
            dot4_avx2([p(0), p(1), p(2), p(3)], q, dim)
        };
        rest.copy_from_slice(&scores[..rest.len()]);
    }
}

// ---------------------------------------------------------------- AVX-512F

/// Mask selecting the first `rem` (< 16) lanes.
#[inline]
fn tail_mask512(rem: usize) -> __mmask16 {
    ((1u32 << rem) - 1) as __mmask16
}

/// # Safety
/// The CPU must support AVX-512F; `a` and `b` must be valid for `n` reads.
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 64 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 64 <= n, so lanes i+16j .. i+16j+16 are within both inputs.
            let (x, y) = unsafe { (_mm512_loadu_ps(a.add(i + 16 * j)), _mm512_loadu_ps(b.add(i + 16 * j))) };
            *acc = _mm512_fmadd_ps(x, y, *acc);
        }
        i += 64;
    }
    while i + 16 <= n {
        // SAFETY: i + 16 <= n.
        let (x, y) = unsafe { (_mm512_loadu_ps(a.add(i)), _mm512_loadu_ps(b.add(i))) };
        acc[0] = _mm512_fmadd_ps(x, y, acc[0]);
        i += 16;
    }
    if i < n {
        let mask = tail_mask512(n - i);
        // SAFETY: the mask enables only lanes i .. n; masked-off lanes are never accessed.
        let (x, y) = unsafe { (_mm512_maskz_loadu_ps(mask, a.add(i)), _mm512_maskz_loadu_ps(mask, b.add(i))) };
        acc[1] = _mm512_fmadd_ps(x, y, acc[1]);
    }
    _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])))
}

/// Four rows against one query, two accumulators per row.
///
/// # Safety
/// The CPU must support AVX-512F; `q` and each `rows[r]` must be valid for
/// `dim` reads.
#[target_feature(enable = "avx512f")]
unsafe fn dot4_avx512(rows: [*const f32; 4], q: *const f32, dim: usize) -> [f32; 4] {
    let mut lo = [_mm512_setzero_ps(); 4];
    let mut hi = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 32 <= dim {
        // SAFETY: i + 32 <= dim and every pointer is valid for `dim` reads.
        unsafe {
            let q0 = _mm512_loadu_ps(q.add(i));
            let q1 = _mm512_loadu_ps(q.add(i + 16));
            for r in 0..4 {
                lo[r] = _mm512_fmadd_ps(_mm512_loadu_ps(rows[r].add(i)), q0, lo[r]);
                hi[r] = _mm512_fmadd_ps(_mm512_loadu_ps(rows[r].add(i + 16)), q1, hi[r]);
            }
        }
        i += 32;
    }
    if i + 16 <= dim {
        // SAFETY: i + 16 <= dim.
        unsafe {
            let q0 = _mm512_loadu_ps(q.add(i));
            for r in 0..4 {
                lo[r] = _mm512_fmadd_ps(_mm512_loadu_ps(rows[r].add(i)), q0, lo[r]);
            }
        }
        i += 16;
    }
    if i < dim {
        let mask = tail_mask512(dim - i);
        // SAFETY: the mask enables only lanes i .. dim; masked-off lanes are never accessed.
        unsafe {
            let q0 = _mm512_maskz_loadu_ps(mask, q.add(i));
            for r in 0..4 {
                hi[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, rows[r].add(i)), q0, hi[r]);
            }
        }
    }
    [
        _mm512_reduce_add_ps(_mm512_add_ps(lo[0], hi[0])),
        _mm512_reduce_add_ps(_mm512_add_ps(lo[1], hi[1])),
        _mm512_reduce_add_ps(_mm512_add_ps(lo[2], hi[2])),
        _mm512_reduce_add_ps(_mm512_add_ps(lo[3], hi[3])),
    ]
}

/// # Safety
/// The CPU must support AVX-512F; `q` must be valid for `dim` reads and
/// `rows` for `out.len() * dim` reads.
#[target_feature(enable = "avx512f")]
unsafe fn score_rows_avx512(rows: *const f32, q: *const f32, dim: usize, out: &mut [f32]) {
    let out_len = out.len();
    let mut groups = out.chunks_exact_mut(4);
    let mut row = 0;
    for group in &mut groups {
        // SAFETY: rows row .. row+4 are < out.len(), so each pointer is valid
        // for `dim` reads (caller's contract).
        let scores = unsafe {
            let p = rows.add(row * dim);
            dot4_avx512([p, p.add(dim), p.add(2 * dim), p.add(3 * dim)], q, dim)
        };
        group.copy_from_slice(&scores);
        row += 4;
    }
    let rest = groups.into_remainder();
    if !rest.is_empty() {
        // The last 1-3 rows go through the same four-row code (the last row
        // repeated as padding), so a row's score never depends on its position.
        let last = out_len - 1;
        // SAFETY: every row index row + j (capped at last < out.len()) is
        // valid for `dim` reads (caller's contract).
        let scores = unsafe {
            let p = |j: usize| rows.add((row + j).min(last) * dim);
            dot4_avx512([p(0), p(1), p(2), p(3)], q, dim)
        };
        rest.copy_from_slice(&scores[..rest.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::kernel::scalar;

    /// Deterministic values in [-1, 1) without a RNG dependency.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    const DIMS: [usize; 14] = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 383, 384, 1537];

    fn check_against_scalar(
        name: &str,
        dot: impl Fn(&[f32], &[f32]) -> f32,
        rows: impl Fn(&[f32], &[f32], &mut [f32]),
    ) {
        for dim in DIMS {
            let q = values(dim, dim as u64);
            for n_rows in [0usize, 1, 3, 4, 5, 9] {
                let m = values(n_rows * dim, 1000 + dim as u64);
                let mut got = vec![f32::NAN; n_rows];
                rows(&m, &q, &mut got);
                for (r, g) in got.iter().enumerate() {
                    let row = &m[r * dim..(r + 1) * dim];
                    let want = scalar::dot(row, &q);
                    assert!((g - want).abs() <= 1e-4, "{name} score_rows dim={dim} row={r}: {g} vs scalar {want}");
                    let d = dot(row, &q);
                    assert!((d - want).abs() <= 1e-4, "{name} dot dim={dim}: {d} vs scalar {want}");
                }
            }
        }
    }

    #[test]
    fn avx2_matches_scalar_for_every_tail_length() {
        let Some(k) = Avx2Fma::detect() else {
            eprintln!("SKIPPED avx2_matches_scalar_for_every_tail_length: this CPU lacks AVX2+FMA");
            return;
        };
        check_against_scalar("avx2", |a, b| k.dot(a, b), |m, q, o| k.score_rows(m, q, o));
    }

    #[test]
    fn avx512_matches_scalar_for_every_tail_length() {
        let Some(k) = Avx512::detect() else {
            eprintln!("SKIPPED avx512_matches_scalar_for_every_tail_length: this CPU lacks AVX-512F");
            return;
        };
        check_against_scalar("avx512", |a, b| k.dot(a, b), |m, q, o| k.score_rows(m, q, o));
    }

    #[test]
    fn tail_reads_stop_at_the_end_of_the_slice() {
        // A row ending exactly at the end of its allocation: masked loads must not read past it.
        let Some(k) = Avx512::detect() else {
            eprintln!("SKIPPED tail_reads_stop_at_the_end_of_the_slice: this CPU lacks AVX-512F");
            return;
        };
        let a = vec![1.0f32; 17];
        assert_eq!(k.dot(&a, &a), 17.0);
        if let Some(k2) = Avx2Fma::detect() {
            assert_eq!(k2.dot(&a[..9], &a[..9]), 9.0);
        }
    }
}
