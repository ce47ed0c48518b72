//! The forward pass's hot loops, compiled per instruction set.
//!
//! The arithmetic itself is safe code in [`super::ops`]; a [`BertKernel`]
//! only chooses which compilation of it runs. SIMD variants carry a
//! `semsearch_cpu` proof token that only detection of its features makes
//! (as the scan's kernels do), so a `BertKernel` value can never name an
//! instruction set the CPU lacks, and every method here is safe.
//! [`BertKernel::Portable`] runs the same code with the baseline target
//! features on any CPU.
//!
//! Results differ between kernels only by rounding (FMA or not, summation
//! order within a register), far below the 1e-5 the fidelity tests allow.

#[cfg(target_arch = "x86_64")]
pub mod x86_64;

use std::fmt;

use super::ops::{self, AttentionArgs, LinearArgs, PortableTiles};

/// An instruction set the forward pass can use on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BertKernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(x86_64::Avx2Fma),
    #[cfg(target_arch = "x86_64")]
    Avx512(x86_64::Avx512F),
}

/// What every SIMD kernel of the forward pass provides, implemented in the
/// arch file for the `semsearch_cpu` token that proves its instructions run
/// here (x86_64 only: elsewhere the portable kernel is the only one).
#[cfg(target_arch = "x86_64")]
trait ForwardSimd: Copy {
    /// [`ops::linear`] with this instruction set's register tile.
    fn linear(self, args: LinearArgs<'_>);

    /// [`ops::attention`] compiled for this instruction set.
    fn attention(self, args: AttentionArgs<'_>);
}

impl BertKernel {
    /// The fastest kernel this CPU supports.
    pub fn detect() -> Self {
        Self::available().pop().unwrap_or(Self::Portable)
    }

    /// Every kernel this CPU can run, slowest (portable) first: for tests
    /// and benches that compare them.
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut all = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            all.extend(x86_64::Avx2Fma::detect().map(Self::Avx2Fma));
            all.extend(x86_64::Avx512F::detect().map(Self::Avx512));
        }
        all
    }

    /// Stable name for logs and `/readyz`-style reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma(_) => "avx2",
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(_) => "avx512",
        }
    }

    /// [`ops::linear`] with this kernel's register tile.
    pub fn linear(self, args: LinearArgs<'_>) {
        match self {
            Self::Portable => ops::linear(args, PortableTiles),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma(t) => t.linear(args),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(t) => t.linear(args),
        }
    }

    /// [`ops::attention`] for one head of one sequence.
    pub fn attention(self, args: AttentionArgs<'_>) {
        match self {
            Self::Portable => ops::attention::<false>(args),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2Fma(t) => t.attention(args),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512(t) => t.attention(args),
        }
    }
}

impl fmt::Display for BertKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
