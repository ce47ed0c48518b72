//! x86_64 int8 kernels: AVX-512 VNNI (`vpdpbusd`), AVX-512BW and AVX2
//! (both `vpmaddubsw` + `vpmaddwd`).
//!
//! One of the files where `unsafe` may live. As in `crate::kernel::x86_64`,
//! each instruction set is a `semsearch_cpu` token ([`Avx512Vnni`],
//! [`Avx512Bw`], [`Avx2`]) that only detection of its features can create;
//! holding one is the proof the `#[target_feature]` functions below may
//! run, and the token's safe [`Int8Simd::score_panels`] checks the lengths
//! the raw-pointer loops rely on (through `super::shape`).
//!
//! Invariants the `unsafe fn`s rely on (their `# Safety` sections):
//! - the CPU supports the enabled features (guaranteed by the token);
//! - every panel pointer is valid for `16 × dim4` reads and every query
//!   pointer for `dim4` reads, `dim4` a multiple of 4 (checked by `shape`).
//!
//! Both kernels compute the exact integer sum (see `super` for the layout):
//! - VNNI: `vpdpbusd` multiplies the biased row bytes (unsigned, code + 128)
//!   by the query codes (signed) and adds each lane's 4 products to an i32
//!   without saturation; `128 × Σ query` is subtracted at the end. Partial
//!   sums may wrap, but wrapping arithmetic is exact modulo 2^32 and the
//!   final value fits (`MAX_DIM4`).
//! - AVX2: `vpmaddubsw` would saturate on biased bytes (255 × 127 × 2 >
//!   32767), so the row is un-biased (XOR 0x80) and fed as |row| (unsigned)
//!   times sign(row) · query (`vpsignb`): each i16 pair sum is at most
//!   2 × 128 × 127 = 32512 < 32767, then `vpmaddwd` with ones widens to i32.
//!   This needs query codes ≠ -128 (`vpsignb` cannot negate it).
//! - AVX-512BW (Skylake-SP and other AVX-512 CPUs without VNNI): the AVX2
//!   scheme on a whole panel step per register. `vpsignb` has no 512-bit
//!   form, so the query bytes are negated under the mask of the negative
//!   row bytes (`vpmovb2m` + masked `vpsubb`); where a row byte is 0 its
//!   magnitude is 0 and so is the product, as with `vpsignb`.
//!
//! Register tiles: P panels × Q queries of accumulators, each panel chunk
//! loaded once per Q queries and each query broadcast once per P panels.
//! Leftover panels and queries are padded by repeating the last one (their
//! results are not stored).

#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

use super::{shape, Int8Simd, PANEL_ROWS};
use crate::int8::bound::QueryBound;

pub use semsearch_cpu::x86_64::{Avx2, Avx512Bw, Avx512Vnni};

impl Int8Simd for Avx512Vnni {
    fn score_panels(self, panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]) {
        let (np, nq) = shape(panels, queries, dim4, out);
        if np == 0 || nq == 0 {
            return;
        }
        // SAFETY: `self` is a `semsearch_cpu` token, made only where
        // AVX-512F/BW/VNNI were detected; `shape` checked that `panels`
        // holds np whole panels, `queries` nq × dim4 codes, `out`
        // nq × np × 16 scores, and that dim4 is a multiple of 4.
        unsafe {
            if nq == 1 {
                block_vnni::<8, 1>(panels, np, queries, nq, dim4, out)
            } else {
                block_vnni::<4, 4>(panels, np, queries, nq, dim4, out)
            }
        }
    }

    /// Compiled for AVX-512 (8 f64 lanes).
    fn count_reaching(
        self,
        bound: &QueryBound,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize {
        // SAFETY: `self` proves AVX-512F (VNNI is only detected with it);
        // the function only uses safe, bounds-checked slice code (it is
        // `unsafe` for its target feature).
        unsafe { count_reaching_avx512(bound, scales, dots, residuals, code_norms, cut) }
    }
}

impl Int8Simd for Avx512Bw {
    fn score_panels(self, panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]) {
        let (np, nq) = shape(panels, queries, dim4, out);
        if np == 0 || nq == 0 {
            return;
        }
        // SAFETY: `self` proves AVX-512F/BW; `shape` checked the lengths as above.
        unsafe {
            if nq == 1 {
                block_bw::<4, 1>(panels, np, queries, nq, dim4, out)
            } else {
                block_bw::<2, 4>(panels, np, queries, nq, dim4, out)
            }
        }
    }

    /// Compiled for AVX-512 (8 f64 lanes).
    fn count_reaching(
        self,
        bound: &QueryBound,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize {
        // SAFETY: `self` proves AVX-512F; the function only uses safe,
        // bounds-checked slice code (it is `unsafe` for its target feature).
        unsafe { count_reaching_avx512(bound, scales, dots, residuals, code_norms, cut) }
    }
}

impl Int8Simd for Avx2 {
    fn score_panels(self, panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]) {
        let (np, nq) = shape(panels, queries, dim4, out);
        if np == 0 || nq == 0 {
            return;
        }
        // SAFETY: `self` proves AVX2; `shape` checked the lengths as above.
        unsafe {
            if nq == 1 {
                block_avx2::<2, 1>(panels, np, queries, nq, dim4, out)
            } else {
                block_avx2::<1, 4>(panels, np, queries, nq, dim4, out)
            }
        }
    }

    /// Compiled for AVX2 (4 f64 lanes).
    fn count_reaching(
        self,
        bound: &QueryBound,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize {
        // SAFETY: `self` proves AVX2; the function only uses safe,
        // bounds-checked slice code (it is `unsafe` for its target feature).
        unsafe { count_reaching_avx2(bound, scales, dots, residuals, code_norms, cut) }
    }
}

/// The portable loop, inlined here so the compiler vectorises it for AVX-512.
///
/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn count_reaching_avx512(
    bound: &QueryBound,
    scales: &[f32],
    dots: &[i32],
    residuals: &[f32],
    code_norms: &[f32],
    cut: f64,
) -> usize {
    bound.count_reaching(scales, dots, residuals, code_norms, cut)
}

/// The portable loop, inlined here so the compiler vectorises it for AVX2.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
unsafe fn count_reaching_avx2(
    bound: &QueryBound,
    scales: &[f32],
    dots: &[i32],
    residuals: &[f32],
    code_norms: &[f32],
    cut: f64,
) -> usize {
    bound.count_reaching(scales, dots, residuals, code_norms, cut)
}

// ---------------------------------------------------------------- AVX-512 VNNI

/// Walks `np` panels × `nq` queries in P × Q register tiles.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VNNI; `panels` must hold `np × 16 ×
/// dim4` bytes, `queries` `nq × dim4` codes, `out` `nq × np × 16` scores,
/// `np, nq ≥ 1`, and `dim4` must be a multiple of 4.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn block_vnni<const P: usize, const Q: usize>(
    panels: &[u8],
    np: usize,
    queries: &[i8],
    nq: usize,
    dim4: usize,
    out: &mut [i32],
) {
    walk_panels!(P, Q, panels, np, queries, nq, dim4, out,
        // SAFETY: the walker hands over pointers that each start a whole
        // panel or a whole query (indices capped at np-1 and nq-1).
        tile: |pp, qp| unsafe { tile_vnni::<P, Q>(pp, qp, dim4) },
        // 128 × Σ codes ≤ 128 × 127 × 2^16 < 2^31: no overflow.
        prepare: |query| _mm512_set1_epi32(128 * query.iter().map(|&c| i32::from(c)).sum::<i32>()),
        // SAFETY: `dst` holds exactly 16 i32s.
        store: |dst, acc, bias| unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), _mm512_sub_epi32(*acc, *bias)) },
    )
}

/// P panels × Q queries of biased sums Σ (code + 128) × query, one i32 per
/// row lane.
///
/// # Safety
/// The CPU must support AVX-512F/BW/VNNI; every pointer in `panels` must be
/// valid for `16 × dim4` reads and every pointer in `qs` for `dim4` reads;
/// `dim4` must be a multiple of 4.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile_vnni<const P: usize, const Q: usize>(
    panels: [*const u8; P],
    qs: [*const i8; Q],
    dim4: usize,
) -> [[__m512i; P]; Q] {
    let mut acc = [[_mm512_setzero_si512(); P]; Q];
    let mut t = 0;
    while t < dim4 {
        let mut x = [_mm512_setzero_si512(); P];
        for (x, p) in x.iter_mut().zip(panels) {
            // SAFETY: t + 4 <= dim4, so the 64 bytes at 16·t (dims t..t+4 of
            // the panel's 16 rows) lie within the panel.
            *x = unsafe { _mm512_loadu_si512(p.add(PANEL_ROWS * t).cast()) };
        }
        for (acc, q) in acc.iter_mut().zip(qs) {
            // SAFETY: t + 4 <= dim4: the 4 codes t..t+4 lie within the query.
            let b = _mm512_set1_epi32(unsafe { q.add(t).cast::<i32>().read_unaligned() });
            for (acc, x) in acc.iter_mut().zip(&x) {
                *acc = _mm512_dpbusd_epi32(*acc, *x, b);
            }
        }
        t += 4;
    }
    acc
}

// ---------------------------------------------------------------- AVX-512BW

/// Walks `np` panels × `nq` queries in P × Q register tiles.
///
/// # Safety
/// As [`block_vnni`], with AVX-512F/BW instead of VNNI.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn block_bw<const P: usize, const Q: usize>(
    panels: &[u8],
    np: usize,
    queries: &[i8],
    nq: usize,
    dim4: usize,
    out: &mut [i32],
) {
    walk_panels!(P, Q, panels, np, queries, nq, dim4, out,
        // SAFETY: as in `block_vnni`.
        tile: |pp, qp| unsafe { tile_bw::<P, Q>(pp, qp, dim4) },
        prepare: |_query| (),
        // SAFETY: `dst` holds exactly 16 i32s.
        store: |dst, acc, _unit| unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), *acc) },
    )
}

/// P panels × Q queries of exact sums, one i32 per row lane.
///
/// # Safety
/// As [`tile_vnni`], with AVX-512F/BW instead of VNNI.
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn tile_bw<const P: usize, const Q: usize>(
    panels: [*const u8; P],
    qs: [*const i8; Q],
    dim4: usize,
) -> [[__m512i; P]; Q] {
    let flip = _mm512_set1_epi8(i8::MIN);
    let ones = _mm512_set1_epi16(1);
    let zero = _mm512_setzero_si512();
    let mut acc = [[_mm512_setzero_si512(); P]; Q];
    let mut t = 0;
    while t < dim4 {
        let mut magnitude = [_mm512_setzero_si512(); P];
        let mut negative = [0 as __mmask64; P];
        for ((m, neg), p) in magnitude.iter_mut().zip(&mut negative).zip(panels) {
            // SAFETY: t + 4 <= dim4, so the 64 bytes at 16·t (dims t..t+4 of
            // the panel's 16 rows) lie within the panel.
            let biased = unsafe { _mm512_loadu_si512(p.add(PANEL_ROWS * t).cast()) };
            let x = _mm512_xor_si512(biased, flip);
            *m = _mm512_abs_epi8(x);
            *neg = _mm512_movepi8_mask(x);
        }
        for (acc, q) in acc.iter_mut().zip(qs) {
            // SAFETY: t + 4 <= dim4: the 4 codes t..t+4 lie within the query.
            let b = _mm512_set1_epi32(unsafe { q.add(t).cast::<i32>().read_unaligned() });
            for ((acc, m), &neg) in acc.iter_mut().zip(&magnitude).zip(&negative) {
                // sign(row) · query: -query where the row byte is negative.
                let signed = _mm512_mask_sub_epi8(b, neg, zero, b);
                let pairs = _mm512_maddubs_epi16(*m, signed);
                *acc = _mm512_add_epi32(*acc, _mm512_madd_epi16(pairs, ones));
            }
        }
        t += 4;
    }
    acc
}

// ---------------------------------------------------------------- AVX2

/// Walks `np` panels × `nq` queries in P × Q register tiles.
///
/// # Safety
/// As [`block_vnni`], with AVX2 instead of AVX-512.
#[target_feature(enable = "avx2")]
unsafe fn block_avx2<const P: usize, const Q: usize>(
    panels: &[u8],
    np: usize,
    queries: &[i8],
    nq: usize,
    dim4: usize,
    out: &mut [i32],
) {
    walk_panels!(P, Q, panels, np, queries, nq, dim4, out,
        // SAFETY: as in `block_vnni`.
        tile: |pp, qp| unsafe { tile_avx2::<P, Q>(pp, qp, dim4) },
        prepare: |_query| (),
        // SAFETY: `dst` holds exactly 16 i32s: two 8-lane stores.
        store: |dst, halves, _unit| unsafe {
            _mm256_storeu_si256(dst.as_mut_ptr().cast(), halves[0]);
            _mm256_storeu_si256(dst.as_mut_ptr().add(8).cast(), halves[1]);
        },
    )
}

/// P panels × Q queries of exact sums, rows 0..8 and 8..16 of each panel in
/// two registers.
///
/// # Safety
/// As [`tile_vnni`], with AVX2 instead of AVX-512.
#[target_feature(enable = "avx2")]
unsafe fn tile_avx2<const P: usize, const Q: usize>(
    panels: [*const u8; P],
    qs: [*const i8; Q],
    dim4: usize,
) -> [[[__m256i; 2]; P]; Q] {
    let flip = _mm256_set1_epi8(i8::MIN);
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[[_mm256_setzero_si256(); 2]; P]; Q];
    let mut t = 0;
    while t < dim4 {
        let mut x = [[_mm256_setzero_si256(); 2]; P];
        let mut magnitude = [[_mm256_setzero_si256(); 2]; P];
        for ((x, m), p) in x.iter_mut().zip(&mut magnitude).zip(panels) {
            for h in 0..2 {
                // SAFETY: t + 4 <= dim4, so the 64 bytes at 16·t lie within
                // the panel; this loads bytes 32h .. 32h+32 of them.
                let biased = unsafe { _mm256_loadu_si256(p.add(PANEL_ROWS * t + 32 * h).cast()) };
                x[h] = _mm256_xor_si256(biased, flip);
                m[h] = _mm256_abs_epi8(x[h]);
            }
        }
        for (acc, q) in acc.iter_mut().zip(qs) {
            // SAFETY: t + 4 <= dim4: the 4 codes t..t+4 lie within the query.
            let b = _mm256_set1_epi32(unsafe { q.add(t).cast::<i32>().read_unaligned() });
            for ((acc, x), m) in acc.iter_mut().zip(&x).zip(&magnitude) {
                for h in 0..2 {
                    let pairs = _mm256_maddubs_epi16(m[h], _mm256_sign_epi8(b, x[h]));
                    acc[h] = _mm256_add_epi32(acc[h], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        t += 4;
    }
    acc
}
