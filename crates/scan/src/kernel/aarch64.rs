//! aarch64 kernel: NEON (4 lanes, fused multiply-add).
//!
//! One of the two files (with `x86_64.rs`) where `unsafe` may live. NEON is
//! part of the aarch64 baseline, but the token ([`Neon`], from
//! `semsearch_cpu`) still comes from runtime detection so the shape matches
//! the x86_64 kernels: holding one is the proof the `#[target_feature]`
//! functions may run, and its safe [`F32Simd`] methods check the slice
//! lengths the raw-pointer loops rely on. Tails are handled with scalar
//! code, so any `dim` works.
//!
//! Tested under qemu-user by `.ci/aarch64.sh` (this build machine is
//! x86_64); the unit test below runs on any aarch64 host.

#![deny(unsafe_op_in_unsafe_fn)]

use std::arch::aarch64::*;

pub use semsearch_cpu::aarch64::Neon;

use super::F32Simd;

impl F32Simd for Neon {
    fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        // SAFETY: `self` is a `semsearch_cpu` token, made only where NEON was
        // detected; both slices hold at least `n` elements.
        unsafe { dot_neon(a.as_ptr(), b.as_ptr(), n) }
    }

    /// One pair at a time through [`F32Simd::dot`], so a score never
    /// depends on the block shape.
    fn score_block(self, rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]) {
        if dim == 0 {
            out.fill(0.0);
            return;
        }
        let (nr, nq) = (rows.len() / dim, queries.len() / dim);
        assert!(rows.len() == nr * dim && queries.len() == nq * dim, "rows and queries must be whole vectors");
        assert_eq!(out.len(), nr * nq, "out must hold queries × rows scores");
        if nr == 0 {
            return;
        }
        for (query, scores) in queries.chunks_exact(dim).zip(out.chunks_exact_mut(nr)) {
            for (row, score) in rows.chunks_exact(dim).zip(scores) {
                *score = self.dot(row, query);
            }
        }
    }
}

/// # Safety
/// The CPU must support NEON; `a` and `b` must be valid for `n` reads.
#[target_feature(enable = "neon")]
unsafe fn dot_neon(a: *const f32, b: *const f32, n: usize) -> f32 {
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i + 16 <= n {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 16 <= n, so lanes i+4j .. i+4j+4 are within both inputs.
            let (x, y) = unsafe { (vld1q_f32(a.add(i + 4 * j)), vld1q_f32(b.add(i + 4 * j))) };
            *acc = vfmaq_f32(*acc, x, y);
        }
        i += 16;
    }
    while i + 4 <= n {
        // SAFETY: i + 4 <= n.
        let (x, y) = unsafe { (vld1q_f32(a.add(i)), vld1q_f32(b.add(i))) };
        acc[0] = vfmaq_f32(acc[0], x, y);
        i += 4;
    }
    let mut sum = vaddvq_f32(vaddq_f32(vaddq_f32(acc[0], acc[1]), vaddq_f32(acc[2], acc[3])));
    while i < n {
        // SAFETY: i < n.
        sum += unsafe { *a.add(i) * *b.add(i) };
        i += 1;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::scalar;

    #[test]
    fn neon_matches_scalar_for_every_tail_length() {
        let Some(k) = Neon::detect() else {
            eprintln!("SKIPPED neon_matches_scalar_for_every_tail_length: this CPU lacks NEON");
            return;
        };
        for dim in [0usize, 1, 3, 4, 5, 15, 16, 17, 383, 384, 385] {
            let a: Vec<f32> = (0..dim).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
            let b: Vec<f32> = (0..dim).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect();
            let want = scalar::dot(&a, &b);
            let got = k.dot(&a, &b);
            assert!((got - want).abs() <= 1e-4, "neon dim={dim}: {got} vs scalar {want}");
        }
    }
}
