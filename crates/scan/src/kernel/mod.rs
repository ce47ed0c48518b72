//! Dot-product kernels and the once-per-process choice between them.
//!
//! [`scalar`] is the portable reference; SIMD kernels live one file per arch
//! (`x86_64.rs`, `aarch64.rs`), the only files where `unsafe` may appear.
//! A SIMD [`F32Kernel`] variant carries a `semsearch_cpu` proof token that only
//! detection of its features can create, so an `F32Kernel` value can never name
//! an instruction set the CPU lacks, and every method here is safe.
//!
//! The process-wide kernel is chosen once: by [`select`] at start-up (from
//! `SEMSEARCH_KERNEL`, via `config`), or on first use by [`active`] with
//! [`KernelChoice::Auto`]. After that it never changes, so `/v1/stats`, the
//! start-up log and every scan agree. Benches and tests that compare kernels
//! pass a [`F32Kernel`] explicitly instead (see [`F32Kernel::available`]).

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)] // SIMD intrinsics, behind proof tokens: see the module docs.
pub mod aarch64;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // SIMD intrinsics, behind proof tokens: see the module docs.
pub mod x86_64;

use std::{fmt, str::FromStr, sync::OnceLock};

use thiserror::Error;

/// What the operator asked for (`SEMSEARCH_KERNEL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The fastest kernel the CPU supports.
    #[default]
    Auto,
    Scalar,
    Avx2,
    Avx512,
    Neon,
}

impl KernelChoice {
    /// Every accepted spelling, for `--help` and error messages.
    pub const NAMES: &'static str = "auto, scalar, avx2, avx512, neon";
}

impl FromStr for KernelChoice {
    type Err = KernelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "scalar" => Ok(Self::Scalar),
            "avx2" => Ok(Self::Avx2),
            "avx512" => Ok(Self::Avx512),
            "neon" => Ok(Self::Neon),
            _ => Err(KernelError::UnknownName { name: s.to_owned() }),
        }
    }
}

impl fmt::Display for KernelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
            Self::Neon => "neon",
        })
    }
}

/// Why a kernel could not be chosen. Surfaced at start-up, never per query.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KernelError {
    #[error("unknown kernel {name:?}; expected one of: {}", KernelChoice::NAMES)]
    UnknownName { name: String },
    #[error("kernel {requested} was forced but this CPU lacks {needs}")]
    Unsupported { requested: KernelChoice, needs: &'static str },
    #[error("kernel {requested} was requested but {active} is already in use by this process")]
    AlreadySelected { requested: KernelChoice, active: &'static str },
}

/// A kernel this CPU can run. Cheap to copy; pass it into hot loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F32Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::Avx2Fma),
    #[cfg(target_arch = "x86_64")]
    Avx512(x86_64::Avx512F),
    #[cfg(target_arch = "aarch64")]
    Neon(aarch64::Neon),
}

/// What every SIMD f32 kernel provides, implemented in the arch files for
/// the `semsearch_cpu` token that proves its instructions run here.
trait F32Simd: Copy {
    /// Dot product over the common length of `a` and `b` (as `scalar::dot`).
    fn dot(self, a: &[f32], b: &[f32]) -> f32;

    /// See [`F32Kernel::score_block`].
    ///
    /// # Panics
    /// If the lengths are not `nr × dim`, `nq × dim` and `nq × nr`.
    fn score_block(self, rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]);
}

impl F32Kernel {
    /// The kernel `choice` names, if this CPU supports it.
    ///
    /// # Errors
    /// [`KernelError::Unsupported`] when the CPU (or the build's arch) lacks it.
    pub fn detect(choice: KernelChoice) -> Result<Self, KernelError> {
        let unsupported = |needs| KernelError::Unsupported { requested: choice, needs };
        match choice {
            KernelChoice::Auto => Ok(Self::available().pop().expect("scalar is always available")),
            KernelChoice::Scalar => Ok(Self::Scalar),
            #[cfg(target_arch = "x86_64")]
            KernelChoice::Avx2 => x86_64::Avx2Fma::detect().map(Self::Avx2).ok_or_else(|| unsupported("AVX2 and FMA")),
            #[cfg(target_arch = "x86_64")]
            KernelChoice::Avx512 => {
                x86_64::Avx512F::detect().map(Self::Avx512).ok_or_else(|| unsupported("AVX-512F and FMA"))
            }
            #[cfg(not(target_arch = "x86_64"))]
            KernelChoice::Avx2 | KernelChoice::Avx512 => Err(unsupported("x86_64")),
            #[cfg(target_arch = "aarch64")]
            KernelChoice::Neon => aarch64::Neon::detect().map(Self::Neon).ok_or_else(|| unsupported("NEON")),
            #[cfg(not(target_arch = "aarch64"))]
            KernelChoice::Neon => Err(unsupported("aarch64")),
        }
    }

    /// Every kernel this CPU can run, slowest (scalar) first, fastest last.
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut kernels = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            kernels.extend(x86_64::Avx2Fma::detect().map(Self::Avx2));
            kernels.extend(x86_64::Avx512F::detect().map(Self::Avx512));
        }
        #[cfg(target_arch = "aarch64")]
        kernels.extend(aarch64::Neon::detect().map(Self::Neon));
        kernels
    }

    /// Stable name: the `SEMSEARCH_KERNEL` spelling, shown in `/v1/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(_) => "avx2",
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(_) => "avx512",
            #[cfg(target_arch = "aarch64")]
            Self::Neon(_) => "neon",
        }
    }

    /// Dot product over the common length of `a` and `b`.
    #[inline]
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Self::Scalar => scalar::dot(a, b),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(k) => k.dot(a, b),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(k) => k.dot(a, b),
            #[cfg(target_arch = "aarch64")]
            Self::Neon(k) => k.dot(a, b),
        }
    }

    /// `out[i] = dot(row i of rows, query)` for `out.len()` consecutive rows:
    /// the fused unit the scan calls once per small block, so dispatch costs
    /// one branch per block, not per row.
    ///
    /// # Panics
    /// If `rows.len() != out.len() * query.len()`.
    #[inline]
    pub fn score_rows(self, rows: &[f32], query: &[f32], out: &mut [f32]) {
        assert_eq!(rows.len(), out.len() * query.len(), "rows must be out.len() × query.len()");
        self.score_block(rows, query, query.len(), out);
    }

    /// Scores a block of `nr` rows against `nq` queries (both row-major,
    /// `dim` long): `out[q * nr + r] = dot(row r, query q)`. The batch scan's
    /// unit: rows are loaded once per tile of queries, not once per query.
    ///
    /// A pair's score is the same bits whatever the block shape, `nq`
    /// included (see the arch files), so batch and single scans agree exactly.
    ///
    /// # Panics
    /// If the lengths are not `nr × dim`, `nq × dim` and `nq × nr`.
    #[inline]
    pub fn score_block(self, rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]) {
        match self {
            Self::Scalar => scalar::score_block(rows, queries, dim, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(k) => k.score_block(rows, queries, dim, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(k) => k.score_block(rows, queries, dim, out),
            #[cfg(target_arch = "aarch64")]
            Self::Neon(k) => k.score_block(rows, queries, dim, out),
        }
    }
}

static ACTIVE: OnceLock<F32Kernel> = OnceLock::new();

/// Fixes the process-wide kernel. Call once at start-up; calling again with
/// `Auto` or the same choice is a no-op that returns the kernel in use.
///
/// # Errors
/// [`KernelError::Unsupported`] when the CPU lacks the forced kernel;
/// [`KernelError::AlreadySelected`] when another kernel is already in use.
pub fn select(choice: KernelChoice) -> Result<F32Kernel, KernelError> {
    let wanted = F32Kernel::detect(choice)?;
    let active = *ACTIVE.get_or_init(|| wanted);
    if choice == KernelChoice::Auto || active == wanted {
        Ok(active)
    } else {
        Err(KernelError::AlreadySelected { requested: choice, active: active.name() })
    }
}

/// The process-wide kernel (auto-detected on first use if [`select`] was not called).
#[inline]
pub fn active() -> F32Kernel {
    *ACTIVE.get_or_init(|| F32Kernel::detect(KernelChoice::Auto).expect("auto-detection always finds scalar"))
}

/// The dot product used by the search scan.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    active().dot(a, b)
}

/// Name of the kernel in use, for the start-up log and `/v1/stats`.
pub fn name() -> &'static str {
    active().name()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_case_insensitively_and_reject_unknown_names() {
        assert_eq!("AVX512".parse::<KernelChoice>(), Ok(KernelChoice::Avx512));
        assert_eq!("auto".parse::<KernelChoice>(), Ok(KernelChoice::Auto));
        assert!(matches!("sse".parse::<KernelChoice>(), Err(KernelError::UnknownName { .. })));
        for k in F32Kernel::available() {
            assert_eq!(k.name().parse::<KernelChoice>().map(|c| c.to_string()), Ok(k.name().to_owned()));
        }
    }

    #[test]
    fn auto_picks_the_last_available_kernel_and_scalar_always_works() {
        let all = F32Kernel::available();
        assert_eq!(all[0], F32Kernel::Scalar);
        assert_eq!(F32Kernel::detect(KernelChoice::Auto), Ok(*all.last().expect("non-empty")));
        assert_eq!(F32Kernel::detect(KernelChoice::Scalar), Ok(F32Kernel::Scalar));
    }

    #[test]
    fn forcing_a_kernel_of_another_arch_is_a_clear_error() {
        #[cfg(target_arch = "x86_64")]
        let foreign = KernelChoice::Neon;
        #[cfg(not(target_arch = "x86_64"))]
        let foreign = KernelChoice::Avx2;
        let err = F32Kernel::detect(foreign).expect_err("foreign arch");
        assert!(err.to_string().contains("lacks"), "{err}");
    }

    #[test]
    fn a_pair_scores_the_same_bits_in_any_block_shape() {
        for dim in [1usize, 7, 16, 33, 384, 385] {
            let rows: Vec<f32> = (0..9 * dim).map(|i| ((i * 31 % 101) as f32 - 50.0) / 51.0).collect();
            let queries: Vec<f32> = (0..5 * dim).map(|i| ((i * 17 % 89) as f32 - 44.0) / 45.0).collect();
            for k in F32Kernel::available() {
                let mut block = vec![0.0; 9 * 5];
                k.score_block(&rows, &queries, dim, &mut block);
                for (q, query) in queries.chunks_exact(dim).enumerate() {
                    for start in 0..9 {
                        let mut alone = vec![0.0; 9 - start];
                        k.score_rows(&rows[start * dim..], query, &mut alone);
                        for (i, s) in alone.iter().enumerate() {
                            let b = block[q * 9 + start + i];
                            assert_eq!(s.to_bits(), b.to_bits(), "{} dim={dim} q={q} row={}", k.name(), start + i);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_available_kernel_agrees_with_scalar() {
        let a: Vec<f32> = (0..777).map(|i| ((i * 31 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..777).map(|i| ((i * 17 % 89) as f32 - 44.0) / 44.0).collect();
        let want = scalar::dot(&a, &b);
        for k in F32Kernel::available() {
            let got = k.dot(&a, &b);
            assert!((got - want).abs() <= 1e-3 * want.abs().max(1.0), "{}: {got} vs {want}", k.name());
        }
    }
}
