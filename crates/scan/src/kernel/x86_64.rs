//! x86_64 kernels: AVX2+FMA (8 lanes) and AVX-512F (16 lanes).
//!
//! One of the two files (with `aarch64.rs`) where `unsafe` may live. Each
//! instruction set is represented by a `semsearch_cpu` token ([`Avx2Fma`],
//! [`Avx512F`]) that only detection of its features can create. The
//! [`F32Simd`] methods on a token are safe: holding one *is* the proof the
//! `#[target_feature]` functions below may run, and the methods check the
//! slice lengths the raw-pointer loops rely on.
//!
//! Invariants the `unsafe fn`s rely on (their `# Safety` sections):
//! - the CPU supports the enabled features (guaranteed by the token);
//! - every pointer is valid for `dim` reads (checked by the safe wrapper).
//!
//! Tails (`dim` not a multiple of the lane count) use masked loads, which
//! never touch the masked-off lanes, so any `dim`, including 1, is exact.
//!
//! Scoring works on register tiles of R rows × Q queries: each loaded row
//! chunk is reused for Q queries and each query chunk for R rows, which
//! cuts loads per FMA (the in-cache and batch limit) and gives the memory
//! system R independent streams. Single queries use 4×1 tiles; batches use
//! 4×2 (AVX-512, 16 accumulators) or 2×2 (AVX2, 8 of its 16 registers).
//!
//! Every (row, query) pair is accumulated in the same order whatever the
//! tile shape or position (two accumulators, even/odd chunks; leftover rows
//! and queries padded by repeating the last one), so a score depends only
//! on the row, the query and the kernel. That is what makes a batch scan
//! return bit-identical scores to single-query scans. `dot` is a separate,
//! single-pair loop and may round differently in the last bit.

#![deny(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

pub use semsearch_cpu::x86_64::{Avx2Fma, Avx512F};

use super::F32Simd;

impl F32Simd for Avx2Fma {
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: `self` is a `semsearch_cpu` token, made only where AVX2 and
        // FMA were detected; both slices hold at least `n` elements.
        unsafe { dot_avx2(a.as_ptr(), b.as_ptr(), n) }
    }

    fn score_block(self, rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]) {
        let (nr, nq) = block_shape(rows, queries, dim, out);
        // SAFETY: `self` proves AVX2+FMA; `block_shape` checked that `rows`
        // holds nr × dim and `queries` nq × dim elements.
        unsafe {
            if nq == 1 {
                block_avx2::<4, 1>(rows.as_ptr(), nr, queries.as_ptr(), nq, dim, out)
            } else {
                block_avx2::<2, 2>(rows.as_ptr(), nr, queries.as_ptr(), nq, dim, out)
            }
        }
    }
}

impl F32Simd for Avx512F {
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: `self` is a `semsearch_cpu` token, made only where AVX-512F
        // was detected; both slices hold at least `n` elements.
        unsafe { dot_avx512(a.as_ptr(), b.as_ptr(), n) }
    }

    fn score_block(self, rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]) {
        let (nr, nq) = block_shape(rows, queries, dim, out);
        // SAFETY: `self` proves AVX-512F; `block_shape` checked that `rows`
        // holds nr × dim and `queries` nq × dim elements.
        unsafe {
            if nq == 1 {
                block_avx512::<4, 1>(rows.as_ptr(), nr, queries.as_ptr(), nq, dim, out)
            } else {
                block_avx512::<4, 2>(rows.as_ptr(), nr, queries.as_ptr(), nq, dim, out)
            }
        }
    }
}

/// `(rows, queries)` of a block, after checking every length the raw-pointer
/// loops rely on.
///
/// # Panics
/// If `rows` is not `nr × dim`, `queries` not `nq × dim` or `out` not `nq × nr`.
fn block_shape(rows: &[f32], queries: &[f32], dim: usize, out: &[f32]) -> (usize, usize) {
    // dim = 0: every vector is empty, every score 0, and `out` decides the row count.
    let (nr, nq) = match (rows.len().checked_div(dim), queries.len().checked_div(dim)) {
        (Some(nr), Some(nq)) => (nr, nq),
        _ => (out.len(), 1),
    };
    assert!(rows.len() == nr * dim && queries.len() == nq * dim, "rows and queries must be whole dim-length vectors");
    assert_eq!(out.len(), nr * nq, "out must hold queries × rows scores");
    (nr, nq)
}

/// Walks a block in R×Q tiles, padding the last tile by repeating the last
/// row or query, and writes only the real pairs.
macro_rules! walk_tiles {
    ($tile:ident, $R:ident, $Q:ident, $rows:ident, $nr:ident, $queries:ident, $nq:ident, $dim:ident, $out:ident) => {{
        if $nr == 0 || $nq == 0 {
            return;
        }
        let mut q0 = 0;
        while q0 < $nq {
            let mut qp = [$queries; $Q];
            for (j, p) in qp.iter_mut().enumerate() {
                *p = $queries.wrapping_add((q0 + j).min($nq - 1) * $dim);
            }
            let mut r0 = 0;
            while r0 < $nr {
                let mut rp = [$rows; $R];
                for (j, p) in rp.iter_mut().enumerate() {
                    *p = $rows.wrapping_add((r0 + j).min($nr - 1) * $dim);
                }
                // SAFETY: row and query indices are capped at nr-1 and nq-1,
                // so every pointer starts one of the caller's dim-long vectors.
                let scores = unsafe { $tile::<$R, $Q>(rp, qp, $dim) };
                for (j, tile_row) in scores.iter().enumerate().take($nq - q0) {
                    let dst = &mut $out[(q0 + j) * $nr + r0..][..$R.min($nr - r0)];
                    dst.copy_from_slice(&tile_row[..dst.len()]);
                }
                r0 += $R;
            }
            q0 += $Q;
        }
    }};
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

/// R rows × Q queries; two accumulators per pair (even and odd chunks).
///
/// # Safety
/// The CPU must support AVX2 and FMA; every pointer in `rows` and `qs` must
/// be valid for `dim` reads.
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const R: usize, const Q: usize>(
    rows: [*const f32; R],
    qs: [*const f32; Q],
    dim: usize,
) -> [[f32; R]; Q] {
    let mut lo = [[_mm256_setzero_ps(); R]; Q];
    let mut hi = [[_mm256_setzero_ps(); R]; Q];
    let mut i = 0;
    while i + 16 <= dim {
        // SAFETY: i + 16 <= dim and every pointer is valid for `dim` reads.
        unsafe {
            let mut x0 = [_mm256_setzero_ps(); R];
            let mut x1 = [_mm256_setzero_ps(); R];
            for r in 0..R {
                x0[r] = _mm256_loadu_ps(rows[r].add(i));
                x1[r] = _mm256_loadu_ps(rows[r].add(i + 8));
            }
            for q in 0..Q {
                let q0 = _mm256_loadu_ps(qs[q].add(i));
                let q1 = _mm256_loadu_ps(qs[q].add(i + 8));
                for r in 0..R {
                    lo[q][r] = _mm256_fmadd_ps(x0[r], q0, lo[q][r]);
                    hi[q][r] = _mm256_fmadd_ps(x1[r], q1, hi[q][r]);
                }
            }
        }
        i += 16;
    }
    if i + 8 <= dim {
        // SAFETY: i + 8 <= dim.
        unsafe {
            for q in 0..Q {
                let q0 = _mm256_loadu_ps(qs[q].add(i));
                for r in 0..R {
                    lo[q][r] = _mm256_fmadd_ps(_mm256_loadu_ps(rows[r].add(i)), q0, lo[q][r]);
                }
            }
        }
        i += 8;
    }
    if i < dim {
        let mask = tail_mask256(dim - i);
        // SAFETY: the mask enables only lanes i .. dim; masked-off lanes are never accessed.
        unsafe {
            for q in 0..Q {
                let q0 = _mm256_maskload_ps(qs[q].add(i), mask);
                for r in 0..R {
                    hi[q][r] = _mm256_fmadd_ps(_mm256_maskload_ps(rows[r].add(i), mask), q0, hi[q][r]);
                }
            }
        }
    }
    let mut out = [[0.0; R]; Q];
    for q in 0..Q {
        for r in 0..R {
            out[q][r] = hsum256(_mm256_add_ps(lo[q][r], hi[q][r]));
        }
    }
    out
}

/// # Safety
/// The CPU must support AVX2 and FMA; `rows` must be valid for `nr * dim`
/// reads, `queries` for `nq * dim`, and `out.len() == nq * nr`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block_avx2<const R: usize, const Q: usize>(
    rows: *const f32,
    nr: usize,
    queries: *const f32,
    nq: usize,
    dim: usize,
    out: &mut [f32],
) {
    walk_tiles!(tile_avx2, R, Q, rows, nr, queries, nq, dim, out)
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

/// R rows × Q queries; two accumulators per pair (even and odd chunks).
///
/// # Safety
/// The CPU must support AVX-512F; every pointer in `rows` and `qs` must be
/// valid for `dim` reads.
#[target_feature(enable = "avx512f")]
unsafe fn tile_avx512<const R: usize, const Q: usize>(
    rows: [*const f32; R],
    qs: [*const f32; Q],
    dim: usize,
) -> [[f32; R]; Q] {
    let mut lo = [[_mm512_setzero_ps(); R]; Q];
    let mut hi = [[_mm512_setzero_ps(); R]; Q];
    let mut i = 0;
    while i + 32 <= dim {
        // SAFETY: i + 32 <= dim and every pointer is valid for `dim` reads.
        unsafe {
            let mut x0 = [_mm512_setzero_ps(); R];
            let mut x1 = [_mm512_setzero_ps(); R];
            for r in 0..R {
                x0[r] = _mm512_loadu_ps(rows[r].add(i));
                x1[r] = _mm512_loadu_ps(rows[r].add(i + 16));
            }
            for q in 0..Q {
                let q0 = _mm512_loadu_ps(qs[q].add(i));
                let q1 = _mm512_loadu_ps(qs[q].add(i + 16));
                for r in 0..R {
                    lo[q][r] = _mm512_fmadd_ps(x0[r], q0, lo[q][r]);
                    hi[q][r] = _mm512_fmadd_ps(x1[r], q1, hi[q][r]);
                }
            }
        }
        i += 32;
    }
    if i + 16 <= dim {
        // SAFETY: i + 16 <= dim.
        unsafe {
            for q in 0..Q {
                let q0 = _mm512_loadu_ps(qs[q].add(i));
                for r in 0..R {
                    lo[q][r] = _mm512_fmadd_ps(_mm512_loadu_ps(rows[r].add(i)), q0, lo[q][r]);
                }
            }
        }
        i += 16;
    }
    if i < dim {
        let mask = tail_mask512(dim - i);
        // SAFETY: the mask enables only lanes i .. dim; masked-off lanes are never accessed.
        unsafe {
            for q in 0..Q {
                let q0 = _mm512_maskz_loadu_ps(mask, qs[q].add(i));
                for r in 0..R {
                    hi[q][r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, rows[r].add(i)), q0, hi[q][r]);
                }
            }
        }
    }
    let mut out = [[0.0; R]; Q];
    for q in 0..Q {
        for r in 0..R {
            out[q][r] = _mm512_reduce_add_ps(_mm512_add_ps(lo[q][r], hi[q][r]));
        }
    }
    out
}

/// # Safety
/// The CPU must support AVX-512F; `rows` must be valid for `nr * dim` reads,
/// `queries` for `nq * dim`, and `out.len() == nq * nr`.
#[target_feature(enable = "avx512f")]
unsafe fn block_avx512<const R: usize, const Q: usize>(
    rows: *const f32,
    nr: usize,
    queries: *const f32,
    nq: usize,
    dim: usize,
    out: &mut [f32],
) {
    walk_tiles!(tile_avx512, R, Q, rows, nr, queries, nq, dim, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::scalar;

    /// Deterministic values in [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        crate::test_rng::XorShift::spread(seed).units(n)
    }

    const DIMS: [usize; 14] = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 383, 384, 1537];

    fn check_against_scalar(
        name: &str,
        dot: impl Fn(&[f32], &[f32]) -> f32,
        block: impl Fn(&[f32], &[f32], usize, &mut [f32]),
    ) {
        for dim in DIMS {
            for n_queries in [1usize, 2, 3, 5] {
                let qs = values(n_queries * dim, dim as u64);
                for n_rows in [0usize, 1, 3, 4, 5, 9] {
                    let m = values(n_rows * dim, 1000 + dim as u64);
                    let mut got = vec![f32::NAN; n_rows * n_queries];
                    block(&m, &qs, dim, &mut got);
                    for (i, g) in got.iter().enumerate() {
                        let (qi, r) = (i / n_rows, i % n_rows);
                        let (row, q) = (&m[r * dim..][..dim], &qs[qi * dim..][..dim]);
                        let want = scalar::dot(row, q);
                        let at = format!("{name} dim={dim} rows={n_rows} queries={n_queries} q={qi} r={r}");
                        assert!((g - want).abs() <= 1e-4, "{at}: score_block {g} vs scalar {want}");
                        let d = dot(row, q);
                        assert!((d - want).abs() <= 1e-4, "{at}: dot {d} vs scalar {want}");
                    }
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
        check_against_scalar("avx2", |a, b| k.dot(a, b), |m, q, d, o| k.score_block(m, q, d, o));
    }

    #[test]
    fn avx512_matches_scalar_for_every_tail_length() {
        let Some(k) = Avx512F::detect() else {
            eprintln!("SKIPPED avx512_matches_scalar_for_every_tail_length: this CPU lacks AVX-512F");
            return;
        };
        check_against_scalar("avx512", |a, b| k.dot(a, b), |m, q, d, o| k.score_block(m, q, d, o));
    }

    #[test]
    fn tail_reads_stop_at_the_end_of_the_slice() {
        // A row ending exactly at the end of its allocation: masked loads must not read past it.
        let Some(k) = Avx512F::detect() else {
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
