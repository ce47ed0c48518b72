//! What this CPU can run, detected once, and the proof tokens every SIMD
//! kernel of semsearch takes.
//!
//! Owns: feature detection (`detect.rs`, the only file in the workspace
//! where `is_x86_feature_detected!` and `is_aarch64_feature_detected!`
//! appear), cached for the life of the process ([`features`]); and one
//! zero-sized token per set of features a kernel needs ([`x86_64`],
//! [`aarch64`]). A token's only field is private to this crate, and its only
//! constructor is `detect()`, which returns `None` unless the CPU reported
//! every feature the token names. So a kernel that takes a token cannot be
//! called on a CPU that lacks its instructions: holding the token is the
//! proof its `#[target_feature]` functions may run, and their `// SAFETY:`
//! comments name it.
//!
//! Does not own: any kernel, nor the choice between kernels (the f32 and
//! int8 scan kernels and `SEMSEARCH_KERNEL` live in `semsearch-scan`, the
//! encoder's in `semsearch-minilm`); no `unsafe` code at all.
//!
//! | token | features | taken by |
//! |---|---|---|
//! | [`x86_64::Avx2`] | AVX2 | int8 scan |
//! | [`x86_64::Avx2Fma`] | AVX2, FMA | f32 scan, encoder |
//! | [`x86_64::Avx512F`] | AVX-512F, FMA | f32 scan, encoder |
//! | [`x86_64::Avx512Bw`] | AVX-512F, AVX-512BW | int8 scan |
//! | [`x86_64::Avx512Vnni`] | AVX-512F, AVX-512BW, AVX-512 VNNI | int8 scan |
//! | [`aarch64::Neon`] | NEON | f32 scan |
//! | [`aarch64::NeonDot`] | NEON, dot product (`sdot`) | int8 scan |

#![forbid(unsafe_code)]

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
mod detect;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub use detect::{features, Features};
