//! aarch64 int8 kernel: NEON `sdot` (the Armv8.2 dot-product extension,
//! `FEAT_DotProd`: every Arm server core since Neoverse N1 and Apple M1).
//!
//! One of the files where `unsafe` may live. As in `x86_64.rs`, the
//! instruction set is a `semsearch_cpu` token ([`NeonDot`]) that only
//! detection of its features can create; holding one is the proof the
//! `#[target_feature]` functions below may run, and its safe
//! [`Int8Simd::score_panels`] checks the lengths the raw-pointer loops rely
//! on (through `super::shape`).
//!
//! Invariants the `unsafe fn`s rely on (their `# Safety` sections):
//! - the CPU supports NEON and the dot-product extension (the token);
//! - every panel pointer is valid for `16 × dim4` reads and every query
//!   pointer for `dim4` reads, `dim4` a multiple of 4 (checked by `shape`).
//!
//! Exactness: a panel step (4 dimensions of 16 rows, 64 bytes) is four
//! 16-byte registers of 4 rows × 4 bytes each, and `sdot` adds each 32-bit
//! lane's four signed byte products to that lane's i32: one lane per row,
//! as `vpdpbusd` does with 16 lanes. The rows are un-biased first (XOR 0x80
//! turns code + 128 back into the signed code), so nothing is subtracted
//! afterwards. Each `sdot` adds at most 4 × 128 × 127 to a lane and
//! `MAX_DIM4` keeps the sum below 2^31: no overflow, no saturation.
//!
//! `sdot` is issued with `asm!`: its intrinsic (`vdotq_s32`) is still
//! unstable in Rust (`stdarch_neon_dotprod`), while the instruction itself
//! is assembled for any function compiled with the `dotprod` feature.
//!
//! Tested under `qemu-aarch64 -cpu max` by `.ci/aarch64.sh` (this build
//! machine is x86_64): exact equality with the scalar kernel on every tail.

#![allow(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::arch::{aarch64::*, asm};

use super::{shape, Int8Simd, PANEL_ROWS};
use crate::int8::bound::QueryBound;

pub use semsearch_cpu::aarch64::NeonDot;

impl Int8Simd for NeonDot {
    fn score_panels(self, panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]) {
        let (np, nq) = shape(panels, queries, dim4, out);
        if np == 0 || nq == 0 {
            return;
        }
        // SAFETY: `self` is a `semsearch_cpu` token, made only where NEON and
        // the dot-product extension were detected; `shape` checked that
        // `panels` holds np whole panels, `queries` nq × dim4 codes, `out`
        // nq × np × 16 scores, and that dim4 is a multiple of 4.
        unsafe {
            if nq == 1 {
                block_sdot::<2, 1>(panels, np, queries, nq, dim4, out)
            } else {
                block_sdot::<1, 4>(panels, np, queries, nq, dim4, out)
            }
        }
    }

    /// The portable loop: NEON is the aarch64 baseline, so it is already
    /// compiled for it.
    fn count_reaching(
        self,
        bound: &QueryBound,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize {
        bound.count_reaching(scales, dots, residuals, code_norms, cut)
    }
}

/// `acc + Σ` of each 32-bit lane's four `a × b` signed byte products.
///
/// # Safety
/// The CPU must support the dot-product extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: `sdot` only reads and writes these three registers; the
    // caller guarantees the CPU has it.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
            acc = inout(vreg) acc,
            a = in(vreg) a,
            b = in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Walks `np` panels × `nq` queries in P × Q register tiles. Leftover
/// panels and queries are padded by repeating the last one (their results
/// are not stored).
///
/// # Safety
/// The CPU must support NEON and dotprod; `panels` must hold `np × 16 ×
/// dim4` bytes, `queries` `nq × dim4` codes, `out` `nq × np × 16` scores,
/// `np, nq ≥ 1`, and `dim4` must be a multiple of 4.
#[target_feature(enable = "neon,dotprod")]
unsafe fn block_sdot<const P: usize, const Q: usize>(
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
        tile: |pp, qp| unsafe { tile_sdot::<P, Q>(pp, qp, dim4) },
        prepare: |_query| (),
        store: |dst, quarters, _unit| {
            for (r, quarter) in quarters.iter().enumerate() {
                // SAFETY: `dst` holds exactly 16 i32s: four 4-lane stores.
                unsafe { vst1q_s32(dst.as_mut_ptr().add(4 * r), *quarter) };
            }
        },
    )
}

/// P panels × Q queries of exact sums, rows 4r..4r+4 of each panel in
/// register r.
///
/// # Safety
/// The CPU must support NEON and dotprod; every pointer in `panels` must be
/// valid for `16 × dim4` reads and every pointer in `qs` for `dim4` reads;
/// `dim4` must be a multiple of 4.
#[target_feature(enable = "neon,dotprod")]
unsafe fn tile_sdot<const P: usize, const Q: usize>(
    panels: [*const u8; P],
    qs: [*const i8; Q],
    dim4: usize,
) -> [[[int32x4_t; 4]; P]; Q] {
    let flip = vdupq_n_u8(0x80);
    let mut acc = [[[vdupq_n_s32(0); 4]; P]; Q];
    let mut t = 0;
    while t < dim4 {
        let mut x = [[vdupq_n_s8(0); 4]; P];
        for (x, p) in x.iter_mut().zip(panels) {
            for (r, x) in x.iter_mut().enumerate() {
                // SAFETY: t + 4 <= dim4, so the 64 bytes at 16·t (dims t..t+4
                // of the panel's 16 rows) lie within the panel; this loads
                // bytes 16r .. 16r+16 of them.
                let biased = unsafe { vld1q_u8(p.add(PANEL_ROWS * t + 16 * r)) };
                *x = vreinterpretq_s8_u8(veorq_u8(biased, flip));
            }
        }
        for (acc, q) in acc.iter_mut().zip(qs) {
            // SAFETY: t + 4 <= dim4: the 4 codes t..t+4 lie within the query.
            let b = vreinterpretq_s8_s32(vdupq_n_s32(unsafe { q.add(t).cast::<i32>().read_unaligned() }));
            for (acc, x) in acc.iter_mut().zip(&x) {
                for (acc, x) in acc.iter_mut().zip(x) {
                    // SAFETY: this function runs only where dotprod is present.
                    *acc = unsafe { sdot(*acc, *x, b) };
                }
            }
        }
        t += 4;
    }
    acc
}
