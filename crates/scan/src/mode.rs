//! Which copy of the rows a snapshot scans ([`ScanMode`], the operator's
//! `SEMSEARCH_SCAN`), which path answered a query ([`ScanPath`], the one
//! type that says so), and the counters of how queries were answered
//! ([`ScanCounters`], for `/v1/stats` and `/metrics`).
//!
//! Every path returns the same rows, order and score bits (the f32 scan's;
//! see [`crate::int8`] for why the int8 path does too), so the mode is a
//! speed and memory choice, never an accuracy one.
//!
//! `f16` was a third candidate (an f16 copy with exact f32 rescoring). It
//! was removed rather than wired in: int8 is smaller and faster (the
//! figures are in docs/benchmarks.md), and f16's exactness rested
//! on a global candidate count with a full fallback, not on per-row bounds;
//! at the same exactness it was worse on both axes. `SEMSEARCH_SCAN=f16` is
//! refused at start-up with that reason.

use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicU64, Ordering},
};

use thiserror::Error;

use crate::{int8::kernel::Int8Kernel, request::ScanAnswer};

/// Below this many rows `auto` scans f32: below it an int8 scan gains too
/// little over a scan of tens of µs, which HTTP dominates anyway; from it
/// every SIMD int8 kernel measured wins by about 2× and more. Placed by
/// `cargo bench --bench int8 -- auto` (figures in docs/benchmarks.md).
pub const AUTO_INT8_MIN_ROWS: usize = 2_000;

/// What the operator asked for (`SEMSEARCH_SCAN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanMode {
    /// int8 where it pays: an int8 kernel faster than scalar (AVX2,
    /// AVX-512BW, AVX-512 VNNI or NEON sdot; the scalar int8 kernel is
    /// slower than the f32 scan at every size) and at least
    /// [`AUTO_INT8_MIN_ROWS`] rows. sdot was only run under qemu, never
    /// timed on Arm hardware: it is in the rule because it reads a quarter
    /// of the f32 bytes and does 16 multiply-adds per instruction against
    /// NEON FMA's 4, as VNNI does against AVX-512F.
    #[default]
    Auto,
    /// The f32 rows only: no int8 copy, so less memory
    /// (`QuantizedMatrix::bytes_per_row` is what the copy costs).
    F32,
    /// Always the int8 copy, even with the scalar int8 kernel.
    Int8,
}

impl ScanMode {
    /// Every accepted spelling, for `--help` and error messages.
    pub const NAMES: &'static str = "auto, f32, int8";

    /// How a snapshot of `rows` rows of dimension `dim` is scanned with the
    /// process-wide int8 kernel: [`ScanPath::Int8`] (it gets an int8 copy)
    /// or [`ScanPath::F32`].
    pub fn resolve(self, rows: usize, dim: usize) -> ScanPath {
        self.resolve_with(crate::int8::kernel::active(), rows, dim)
    }

    /// [`ScanMode::resolve`] with an explicit int8 kernel (tests).
    pub fn resolve_with(self, int8: Int8Kernel, rows: usize, dim: usize) -> ScanPath {
        if rows == 0 || dim == 0 || dim > crate::int8::MAX_DIM {
            return ScanPath::F32;
        }
        match self {
            Self::F32 => ScanPath::F32,
            Self::Int8 => ScanPath::Int8,
            Self::Auto if int8 != Int8Kernel::Scalar && rows >= AUTO_INT8_MIN_ROWS => ScanPath::Int8,
            Self::Auto => ScanPath::F32,
        }
    }
}

/// Why a `SEMSEARCH_SCAN` value was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ScanModeError {
    #[error("unknown scan {name:?}; expected one of: {}", ScanMode::NAMES)]
    UnknownName { name: String },
    #[error("scan f16 was removed: int8 is smaller and faster with the same exactness; use int8 or auto")]
    F16Removed,
}

impl FromStr for ScanMode {
    type Err = ScanModeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "f32" => Ok(Self::F32),
            "int8" => Ok(Self::Int8),
            "f16" => Err(ScanModeError::F16Removed),
            _ => Err(ScanModeError::UnknownName { name: s.to_owned() }),
        }
    }
}

impl fmt::Display for ScanMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::F32 => "f32",
            Self::Int8 => "int8",
        })
    }
}

/// Which scan produced an answer; for a snapshot, which one it is built
/// for ([`ScanPath::F32`] or [`ScanPath::Int8`]). The answer is the same
/// on every path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPath {
    /// The f32 rows: a matrix without an int8 copy, or a filtered query.
    F32,
    /// The int8 pass, then the exact rescoring of its candidates.
    Int8,
    /// The f32 scan for an int8 copy's query that is zero, non-finite or
    /// outside the norm range the int8 bound covers.
    FallbackQueryOutOfRange,
    /// The f32 scan for an int8 copy's query with `k > n / 8`: rescoring k
    /// rows would cost about a full f32 scan.
    FallbackLargeK,
    /// The f32 scan for an int8 copy's query whose pass kept more than 1/8
    /// of a task's rows as candidates (near-duplicates).
    FallbackTooManyCandidates,
}

impl ScanPath {
    /// Every path, in the order `/metrics` lists them.
    pub const ALL: [Self; 5] =
        [Self::F32, Self::Int8, Self::FallbackQueryOutOfRange, Self::FallbackLargeK, Self::FallbackTooManyCandidates];

    /// Stable name: `/v1/stats`, logs, and the `scan` and `path` labels of
    /// `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
            Self::FallbackQueryOutOfRange => "fallback_query_out_of_range",
            Self::FallbackLargeK => "fallback_large_k",
            Self::FallbackTooManyCandidates => "fallback_too_many_candidates",
        }
    }

    /// Whether the query was one for an int8 copy (answered by the int8
    /// pass or by a fallback).
    pub fn is_int8_copy(self) -> bool {
        self != Self::F32
    }
}

/// How queries were answered since start. Kept by the API (one per
/// process, across snapshots); recorded after each scan.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Queries answered on [`ScanPath::F32`].
    pub f32_queries: AtomicU64,
    /// Queries for an int8 copy (by the int8 pass or a fallback).
    pub int8_queries: AtomicU64,
    /// Rows rescored in f32 by those queries (a whole scan's rows for a
    /// fallback).
    pub rescored_rows: AtomicU64,
    /// Queries for an int8 copy the f32 scan answered instead, by reason.
    pub fallback_query_out_of_range: AtomicU64,
    pub fallback_large_k: AtomicU64,
    pub fallback_too_many_candidates: AtomicU64,
}

impl ScanCounters {
    /// Counts one answered query.
    pub fn record(&self, answer: &ScanAnswer) {
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        if !answer.path.is_int8_copy() {
            add(&self.f32_queries, 1);
            return;
        }
        add(&self.int8_queries, 1);
        add(&self.rescored_rows, answer.rescored_rows as u64);
        match answer.path {
            ScanPath::F32 | ScanPath::Int8 => {}
            ScanPath::FallbackQueryOutOfRange => add(&self.fallback_query_out_of_range, 1),
            ScanPath::FallbackLargeK => add(&self.fallback_large_k, 1),
            ScanPath::FallbackTooManyCandidates => add(&self.fallback_too_many_candidates, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_case_insensitively_and_f16_says_why_it_is_gone() {
        assert_eq!("INT8".parse::<ScanMode>(), Ok(ScanMode::Int8));
        assert_eq!(" auto ".parse::<ScanMode>(), Ok(ScanMode::Auto));
        assert_eq!("f16".parse::<ScanMode>(), Err(ScanModeError::F16Removed));
        assert!(matches!("bf16".parse::<ScanMode>(), Err(ScanModeError::UnknownName { .. })));
        for m in [ScanMode::Auto, ScanMode::F32, ScanMode::Int8] {
            assert_eq!(m.to_string().parse::<ScanMode>(), Ok(m));
        }
    }

    #[test]
    fn auto_uses_int8_only_with_a_simd_kernel_and_enough_rows() {
        let best = *Int8Kernel::available().last().expect("scalar at least");
        let n = AUTO_INT8_MIN_ROWS;
        assert_eq!(ScanMode::Auto.resolve_with(Int8Kernel::Scalar, 10 * n, 384), ScanPath::F32);
        assert_eq!(ScanMode::Auto.resolve_with(best, n - 1, 384), ScanPath::F32);
        let want = if best == Int8Kernel::Scalar { ScanPath::F32 } else { ScanPath::Int8 };
        assert_eq!(ScanMode::Auto.resolve_with(best, n, 384), want);
        assert_eq!(ScanMode::Int8.resolve_with(Int8Kernel::Scalar, 3, 2), ScanPath::Int8, "forced");
        assert_eq!(ScanMode::Int8.resolve_with(best, 0, 384), ScanPath::F32, "nothing to quantize");
        assert_eq!(ScanMode::F32.resolve_with(best, 10 * n, 384), ScanPath::F32);
    }

    #[test]
    fn counters_split_queries_by_path_and_fallbacks_by_reason() {
        let c = ScanCounters::default();
        let answer = |path, rescored_rows| ScanAnswer { hits: Vec::new(), path, rescored_rows, candidates: 0 };

        c.record(&answer(ScanPath::F32, 0));
        c.record(&answer(ScanPath::Int8, 12));
        c.record(&answer(ScanPath::FallbackLargeK, 100));

        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((get(&c.f32_queries), get(&c.int8_queries), get(&c.rescored_rows)), (1, 2, 112));
        assert_eq!(get(&c.fallback_large_k), 1);
        assert_eq!(get(&c.fallback_query_out_of_range) + get(&c.fallback_too_many_candidates), 0);
    }

    #[test]
    fn path_names_are_the_metrics_labels() {
        let names: Vec<&str> = ScanPath::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            ["f32", "int8", "fallback_query_out_of_range", "fallback_large_k", "fallback_too_many_candidates"]
        );
    }
}
