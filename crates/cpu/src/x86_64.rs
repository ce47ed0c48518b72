//! Proof tokens for x86_64: each is `Some` from `detect()` only when the
//! CPU reported every feature it names (see the crate docs for who takes
//! which). Copy them freely; they are zero-sized.

use crate::features;

/// Proof that this CPU runs AVX2. Only [`Avx2::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx2(());

impl Avx2 {
    /// `Some` when the CPU reports AVX2.
    pub fn detect() -> Option<Self> {
        features().avx2.then_some(Self(()))
    }
}

/// Proof that this CPU runs AVX2 and FMA. Only [`Avx2Fma::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx2Fma(());

impl Avx2Fma {
    /// `Some` when the CPU reports both AVX2 and FMA.
    pub fn detect() -> Option<Self> {
        let f = features();
        (f.avx2 && f.fma).then_some(Self(()))
    }
}

/// Proof that this CPU runs AVX-512F and FMA. Only [`Avx512F::detect`]
/// makes one. Every AVX-512F CPU also has FMA; requiring it lets code
/// compiled for this token use the 128- and 256-bit FMA forms too (the
/// encoder's kernels do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512F(());

impl Avx512F {
    /// `Some` when the CPU reports AVX-512F and FMA.
    pub fn detect() -> Option<Self> {
        let f = features();
        (f.avx512f && f.fma).then_some(Self(()))
    }
}

/// Proof that this CPU runs AVX-512F and AVX-512BW. Only
/// [`Avx512Bw::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512Bw(());

impl Avx512Bw {
    /// `Some` when the CPU reports AVX-512F and AVX-512BW.
    pub fn detect() -> Option<Self> {
        let f = features();
        (f.avx512f && f.avx512bw).then_some(Self(()))
    }
}

/// Proof that this CPU runs AVX-512F, AVX-512BW and AVX-512 VNNI. Only
/// [`Avx512Vnni::detect`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Avx512Vnni(());

impl Avx512Vnni {
    /// `Some` when the CPU reports AVX-512F, AVX-512BW and AVX-512 VNNI.
    pub fn detect() -> Option<Self> {
        let f = features();
        (f.avx512f && f.avx512bw && f.avx512vnni).then_some(Self(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_token_exists_exactly_when_its_features_were_detected() {
        let f = features();

        assert_eq!(Avx2::detect().is_some(), f.avx2);
        assert_eq!(Avx2Fma::detect().is_some(), f.avx2 && f.fma);
        assert_eq!(Avx512F::detect().is_some(), f.avx512f && f.fma);
        assert_eq!(Avx512Bw::detect().is_some(), f.avx512f && f.avx512bw);
        assert_eq!(Avx512Vnni::detect().is_some(), f.avx512f && f.avx512bw && f.avx512vnni);
    }

    #[test]
    fn a_wider_token_implies_the_narrower_ones() {
        if Avx512Vnni::detect().is_some() {
            assert!(Avx512Bw::detect().is_some(), "VNNI is only detected with BW");
        }
        if Avx2Fma::detect().is_some() {
            assert!(Avx2::detect().is_some(), "AVX2+FMA implies AVX2");
        }
    }
}
