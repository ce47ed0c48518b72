//! Dot-product kernels. The foundation ships the portable one; SIMD kernels
//! (one file per arch, the only place `unsafe` may live) are chosen once at
//! first use and named by [`name`].

pub mod scalar;

/// The dot product used by the search scan.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    scalar::dot(a, b)
}

/// Name of the kernel in use, for the start-up log and `/v1/stats`.
pub fn name() -> &'static str {
    "scalar"
}
