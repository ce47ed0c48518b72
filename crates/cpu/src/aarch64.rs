//! Proof tokens for aarch64: each is `Some` from `detect()` only when the
//! CPU reported every feature it names (see the crate docs for who takes
//! which). Copy them freely; they are zero-sized.

use crate::features;

/// Proof that this CPU runs NEON. Only [`Neon::detect`] makes one. NEON is
/// part of the aarch64 baseline, but the token still comes from runtime
/// detection so every kernel has the same shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Neon(());

impl Neon {
    /// `Some` when the CPU reports NEON (every aarch64 Linux host).
    pub fn detect() -> Option<Self> {
        features().neon.then_some(Self(()))
    }
}

/// Proof that this CPU runs NEON with the dot-product extension (`sdot`,
/// `FEAT_DotProd`: every Arm server core since Neoverse N1, Apple M1). Only
/// [`NeonDot::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeonDot(());

impl NeonDot {
    /// `Some` when the CPU reports NEON and the dot-product extension.
    pub fn detect() -> Option<Self> {
        let f = features();
        (f.neon && f.dotprod).then_some(Self(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_exists_exactly_when_its_features_were_detected() {
        let f = features();

        assert_eq!(Neon::detect().is_some(), f.neon);
        assert_eq!(NeonDot::detect().is_some(), f.neon && f.dotprod);
    }
}
