//! Which copy of the rows a scan reads ([`ScanMode`], `SEMSEARCH_SCAN`), the
//! answer every scan path returns ([`Answer`]), and the counters of how
//! queries were answered ([`ScanCounters`], for `/v1/stats` and `/metrics`).
//!
//! Every mode returns the same rows, order and score bits (the f32 scan's;
//! see [`super::int8`] for why the int8 path does too), so the mode is a
//! speed and memory choice, never an accuracy one.
//!
//! `f16` was a third candidate (`search::half`, an f16 copy with exact f32
//! rescoring). It was removed rather than wired in: int8 is smaller (396
//! against 768 bytes per row at D = 384) and faster (0.23-0.29 of the f32
//! read floor at 1M against f16's 0.47), and f16's exactness rested on a
//! global candidate count with a full fallback, not on per-row bounds; at
//! the same exactness it was worse on both axes. `SEMSEARCH_SCAN=f16` is
//! refused at start-up with that reason.

use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicU64, Ordering},
};

use thiserror::Error;

use super::{
    int8::{kernel::Int8Kernel, F32Reason, Rescore, ScanPath},
    Hit,
};

/// Below this many rows `auto` scans f32. Measured with
/// `cargo bench --bench int8 -- auto` (2 threads, machine shared, load
/// average ~9; int8 ÷ f32 for one query, paired medians): AVX-512 VNNI
/// 0.77-0.80 at 500 rows, 0.46-0.48 at 1k, 0.41-0.44 at 2k, 0.36-0.43 at
/// 5k, 0.13-0.17 at 100k; AVX2 0.84-0.90 at 500, 0.55-1.02 at 1k,
/// 0.46-0.52 at 2k, 0.33 at 100k. From 2k rows both win by ~2× and more;
/// below it a scan takes tens of µs and HTTP dominates anyway.
pub const AUTO_INT8_MIN_ROWS: usize = 2_000;

/// What the operator asked for (`SEMSEARCH_SCAN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanMode {
    /// int8 where it pays: an int8 kernel faster than scalar (AVX2,
    /// AVX-512BW, AVX-512 VNNI or NEON sdot; the scalar int8 kernel measured 1.8-3.8×
    /// slower than the f32 scan at every size) and at least
    /// [`AUTO_INT8_MIN_ROWS`] rows. sdot was only run under qemu, never
    /// timed on Arm hardware: it is in the rule because it reads a quarter
    /// of the f32 bytes and does 16 multiply-adds per instruction against
    /// NEON FMA's 4, as VNNI does against AVX-512F.
    #[default]
    Auto,
    /// The f32 rows only (no int8 copy, 26% less memory).
    F32,
    /// Always the int8 copy, even with the scalar int8 kernel.
    Int8,
}

/// What one index snapshot is scanned with: [`ScanMode`] resolved for its
/// size and this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    F32,
    Int8,
}

impl Scan {
    /// Stable name, for `/v1/stats`, logs and the `scan` label of `/metrics`.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
        }
    }
}

impl ScanMode {
    /// Every accepted spelling, for `--help` and error messages.
    pub const NAMES: &'static str = "auto, f32, int8";

    /// The scan for an index of `rows` rows of dimension `dim` with the
    /// process-wide int8 kernel.
    pub fn resolve(self, rows: usize, dim: usize) -> Scan {
        self.resolve_with(super::int8::kernel::active(), rows, dim)
    }

    /// [`ScanMode::resolve`] with an explicit int8 kernel (tests).
    pub fn resolve_with(self, int8: Int8Kernel, rows: usize, dim: usize) -> Scan {
        if rows == 0 || dim == 0 || dim > super::int8::MAX_DIM {
            return Scan::F32;
        }
        match self {
            Self::F32 => Scan::F32,
            Self::Int8 => Scan::Int8,
            Self::Auto if int8 != Int8Kernel::Scalar && rows >= AUTO_INT8_MIN_ROWS => Scan::Int8,
            Self::Auto => Scan::F32,
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

/// One query's answer from whichever path scanned it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// What `search::top_k` over the f32 rows returns (see the module doc).
    pub hits: Vec<Hit>,
    /// How the int8 path got there; `None` when the snapshot scans f32.
    pub rescore: Option<Rescore>,
}

/// How queries were answered since start. Kept by the API (one per
/// process, across snapshots); recorded after each scan.
#[derive(Debug, Default)]
pub struct ScanCounters {
    /// Queries answered by an f32-mode snapshot.
    pub f32_queries: AtomicU64,
    /// Queries answered by an int8-mode snapshot (by either path).
    pub int8_queries: AtomicU64,
    /// Rows rescored in f32 by int8-mode queries (a whole scan's rows for
    /// a fallback).
    pub rescored_rows: AtomicU64,
    /// int8-mode queries the f32 scan answered instead, by reason.
    pub fallback_query_out_of_range: AtomicU64,
    pub fallback_large_k: AtomicU64,
    pub fallback_too_many_candidates: AtomicU64,
}

impl ScanCounters {
    /// Counts one answered query.
    pub fn record(&self, rescore: Option<&Rescore>) {
        let add = |a: &AtomicU64, n: u64| {
            a.fetch_add(n, Ordering::Relaxed);
        };
        let Some(r) = rescore else {
            add(&self.f32_queries, 1);
            return;
        };
        add(&self.int8_queries, 1);
        add(&self.rescored_rows, r.rows as u64);
        match r.path {
            ScanPath::Int8 => {}
            ScanPath::F32(F32Reason::QueryOutOfRange) => add(&self.fallback_query_out_of_range, 1),
            ScanPath::F32(F32Reason::LargeK) => add(&self.fallback_large_k, 1),
            ScanPath::F32(F32Reason::TooManyCandidates) => add(&self.fallback_too_many_candidates, 1),
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
        assert_eq!(ScanMode::Auto.resolve_with(Int8Kernel::Scalar, 10 * n, 384), Scan::F32);
        assert_eq!(ScanMode::Auto.resolve_with(best, n - 1, 384), Scan::F32);
        let want = if best == Int8Kernel::Scalar { Scan::F32 } else { Scan::Int8 };
        assert_eq!(ScanMode::Auto.resolve_with(best, n, 384), want);
        assert_eq!(ScanMode::Int8.resolve_with(Int8Kernel::Scalar, 3, 2), Scan::Int8, "forced");
        assert_eq!(ScanMode::Int8.resolve_with(best, 0, 384), Scan::F32, "nothing to quantize");
        assert_eq!(ScanMode::F32.resolve_with(best, 10 * n, 384), Scan::F32);
    }

    #[test]
    fn counters_split_queries_by_mode_and_fallbacks_by_reason() {
        let c = ScanCounters::default();
        c.record(None);
        c.record(Some(&Rescore { rows: 12, candidates: 20, path: ScanPath::Int8 }));
        c.record(Some(&Rescore { rows: 100, candidates: 100, path: ScanPath::F32(F32Reason::LargeK) }));
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!((get(&c.f32_queries), get(&c.int8_queries), get(&c.rescored_rows)), (1, 2, 112));
        assert_eq!(get(&c.fallback_large_k), 1);
        assert_eq!(get(&c.fallback_query_out_of_range) + get(&c.fallback_too_many_candidates), 0);
    }
}
