//! x86_64 kernels for the forward pass: AVX2+FMA and AVX-512F.
//!
//! The only file of the embedder with `unsafe`. Each instruction set has a
//! `semsearch_cpu` token ([`Avx2Fma`], [`Avx512F`]) that only detection of
//! its features creates; holding one proves the `#[target_feature]`
//! functions below may run, so the tokens' [`ForwardSimd`] and [`Tiles`]
//! methods are safe.
//!
//! What is hand-written: the register tile of a linear layer (rows × 32
//! output columns, accumulators in registers while a weight panel streams
//! past once). Left to the compiler, with the rest of `ops` inlined around
//! it, LLVM kept the accumulators on the stack (scalar FMAs, 30× slower);
//! intrinsics pin them in registers. The loop driver, epilogues (GELU,
//! residual) and attention are the safe code in `ops`, compiled inside the
//! `#[target_feature]` wrappers so they vectorise with the same features.
//!
//! Tiles: AVX-512 has 32 registers of 16 floats, so up to 12 rows (24
//! accumulators, 2 for weights, the rest for broadcasts); AVX2 has 16 of 8
//! floats, so up to 3 rows (12 accumulators; weights come from memory
//! operands or the remaining registers).
//!
//! Invariant the raw-pointer tiles rely on: `TileArgs::fits(m)`, checked by
//! the safe `tile` methods before any pointer is formed.

#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::arch::x86_64::*;

pub use semsearch_cpu::x86_64::{Avx2Fma, Avx512F};

use super::{
    super::ops::{self, AttentionArgs, LinearArgs, TileArgs, Tiles, BLOCK},
    ForwardSimd,
};

impl ForwardSimd for Avx2Fma {
    fn linear(self, args: LinearArgs<'_>) {
        // SAFETY: `self` is a `semsearch_cpu` token, made only where AVX2 and
        // FMA were detected.
        unsafe { linear_avx2(self, args) }
    }

    fn attention(self, args: AttentionArgs<'_>) {
        // SAFETY: `self` is a `semsearch_cpu` token, made only where AVX2 and
        // FMA were detected.
        unsafe { attention_avx2(args) }
    }
}

impl Tiles for Avx2Fma {
    const MR: usize = 3;

    #[inline(always)]
    fn tile(self, t: TileArgs<'_>, m: usize) {
        assert!((1..=Self::MR).contains(&m) && t.fits(m), "avx2 tile: {m} rows do not fit");
        let (x, stride, blocks) = (t.x[t.r0 * BLOCK..].as_ptr(), t.rows * BLOCK, t.k / BLOCK);
        let (panel, bias, out) = (t.panel.as_ptr(), t.bias.as_ptr(), t.out[t.r0 * BLOCK..].as_mut_ptr());
        // SAFETY: `self` proves AVX2+FMA; `fits(m)` guarantees rows r0..r0+m
        // of every input block, the k × 32 panel and m output rows are in bounds.
        unsafe {
            match m {
                3 => tile_avx2::<3>(x, stride, blocks, panel, bias, out),
                2 => tile_avx2::<2>(x, stride, blocks, panel, bias, out),
                _ => tile_avx2::<1>(x, stride, blocks, panel, bias, out),
            }
        }
    }
}

impl ForwardSimd for Avx512F {
    fn linear(self, args: LinearArgs<'_>) {
        // SAFETY: `self` is a `semsearch_cpu` token, made only where
        // AVX-512F and FMA were detected.
        unsafe { linear_avx512(self, args) }
    }

    fn attention(self, args: AttentionArgs<'_>) {
        // SAFETY: `self` is a `semsearch_cpu` token, made only where
        // AVX-512F and FMA were detected.
        unsafe { attention_avx512(args) }
    }
}

impl Tiles for Avx512F {
    const MR: usize = 12;

    #[inline(always)]
    fn tile(self, t: TileArgs<'_>, m: usize) {
        assert!((1..=Self::MR).contains(&m) && t.fits(m), "avx512 tile: {m} rows do not fit");
        let (x, stride, blocks) = (t.x[t.r0 * BLOCK..].as_ptr(), t.rows * BLOCK, t.k / BLOCK);
        let (panel, bias, out) = (t.panel.as_ptr(), t.bias.as_ptr(), t.out[t.r0 * BLOCK..].as_mut_ptr());
        // SAFETY: `self` proves AVX-512F+FMA; `fits(m)` guarantees rows
        // r0..r0+m of every input block, the k × 32 panel and m output rows
        // are in bounds.
        unsafe {
            match m {
                12 => tile_avx512::<12>(x, stride, blocks, panel, bias, out),
                11 => tile_avx512::<11>(x, stride, blocks, panel, bias, out),
                10 => tile_avx512::<10>(x, stride, blocks, panel, bias, out),
                9 => tile_avx512::<9>(x, stride, blocks, panel, bias, out),
                8 => tile_avx512::<8>(x, stride, blocks, panel, bias, out),
                7 => tile_avx512::<7>(x, stride, blocks, panel, bias, out),
                6 => tile_avx512::<6>(x, stride, blocks, panel, bias, out),
                5 => tile_avx512::<5>(x, stride, blocks, panel, bias, out),
                4 => tile_avx512::<4>(x, stride, blocks, panel, bias, out),
                3 => tile_avx512::<3>(x, stride, blocks, panel, bias, out),
                2 => tile_avx512::<2>(x, stride, blocks, panel, bias, out),
                _ => tile_avx512::<1>(x, stride, blocks, panel, bias, out),
            }
        }
    }
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn linear_avx2(tiles: Avx2Fma, args: LinearArgs<'_>) {
    ops::linear(args, tiles)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn attention_avx2(args: AttentionArgs<'_>) {
    ops::attention::<true>(args)
}

/// # Safety
/// The CPU must support AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
unsafe fn linear_avx512(tiles: Avx512F, args: LinearArgs<'_>) {
    ops::linear(args, tiles)
}

/// # Safety
/// The CPU must support AVX-512F and FMA.
#[target_feature(enable = "avx512f,fma")]
unsafe fn attention_avx512(args: AttentionArgs<'_>) {
    ops::attention::<true>(args)
}

/// `M` rows × 32 columns of `x · Wᵀ + b`, stored at `out` (row stride 32).
///
/// # Safety
/// The CPU must support AVX-512F and FMA. `x` points at row 0 of the tile
/// in input block 0; for every block `kb < blocks`, `x + kb·stride` holds
/// `M × 32` readable floats. `panel` holds `blocks × 32 × 32` floats,
/// `bias` 32, and `out` has room for `M × 32`.
#[target_feature(enable = "avx512f,fma")]
unsafe fn tile_avx512<const M: usize>(
    x: *const f32,
    stride: usize,
    blocks: usize,
    panel: *const f32,
    bias: *const f32,
    out: *mut f32,
) {
    // SAFETY (whole body): every offset stays inside the ranges the
    // function's contract promises: kb < blocks, kj < 32, i < M.
    unsafe {
        let mut lo = [_mm512_loadu_ps(bias); M];
        let mut hi = [_mm512_loadu_ps(bias.add(16)); M];
        for kb in 0..blocks {
            let xb = x.add(kb * stride);
            let wb = panel.add(kb * BLOCK * BLOCK);
            for kj in 0..BLOCK {
                let w0 = _mm512_loadu_ps(wb.add(kj * BLOCK));
                let w1 = _mm512_loadu_ps(wb.add(kj * BLOCK + 16));
                for i in 0..M {
                    let xv = _mm512_set1_ps(*xb.add(i * BLOCK + kj));
                    lo[i] = _mm512_fmadd_ps(xv, w0, lo[i]);
                    hi[i] = _mm512_fmadd_ps(xv, w1, hi[i]);
                }
            }
        }
        for i in 0..M {
            _mm512_storeu_ps(out.add(i * BLOCK), lo[i]);
            _mm512_storeu_ps(out.add(i * BLOCK + 16), hi[i]);
        }
    }
}

/// As [`tile_avx512`], with four 8-float registers per row.
///
/// # Safety
/// The CPU must support AVX2 and FMA; pointers as for [`tile_avx512`].
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2<const M: usize>(
    x: *const f32,
    stride: usize,
    blocks: usize,
    panel: *const f32,
    bias: *const f32,
    out: *mut f32,
) {
    // SAFETY (whole body): every offset stays inside the ranges the
    // function's contract promises: kb < blocks, kj < 32, i < M, q < 4.
    unsafe {
        let b = [0, 1, 2, 3].map(|q| _mm256_loadu_ps(bias.add(8 * q)));
        let mut acc = [b; M];
        for kb in 0..blocks {
            let xb = x.add(kb * stride);
            let wb = panel.add(kb * BLOCK * BLOCK);
            for kj in 0..BLOCK {
                let w = [0, 1, 2, 3].map(|q| _mm256_loadu_ps(wb.add(kj * BLOCK + 8 * q)));
                for (i, row) in acc.iter_mut().enumerate() {
                    let xv = _mm256_set1_ps(*xb.add(i * BLOCK + kj));
                    for (a, wq) in row.iter_mut().zip(w) {
                        *a = _mm256_fmadd_ps(xv, wq, *a);
                    }
                }
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (q, a) in row.iter().enumerate() {
                _mm256_storeu_ps(out.add(i * BLOCK + 8 * q), *a);
            }
        }
    }
}
