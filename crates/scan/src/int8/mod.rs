//! Exact top-k from an int8 copy of the matrix: scan a quarter of the
//! bytes, bound every score, rescore in f32 only the rows whose bound can
//! still reach the top-k (issue 12).
//!
//! Owns the int8 copy ([`QuantizedMatrix`]), its kernels ([`kernel`]) and
//! the scan-then-rescore search that [`crate::top_k`] runs for a
//! [`crate::Matrix`] with an int8 copy. Does not own the f32 rows (the
//! caller passes the rows the copy was built from: the index keeps both)
//! nor the tie rule ([`crate::topk`]).
//!
//! # How a query is answered
//! 1. The query is quantized like the rows ([`quantize`]).
//! 2. One pass over the int8 codes, on rayon in blocks of 256 KiB like the
//!    f32 scan: an exact integer dot product per row, turned into an
//!    interval [lo, hi] that provably holds the row's f32 score ([`bound`],
//!    which holds the proof). Each task keeps the k largest `lo` seen
//!    (their k-th is a lower bound τ on the k-th best score, shared between
//!    tasks through an atomic) and the rows whose `hi` reaches
//!    max(τ, min_score).
//! 3. The surviving candidates are rescored with the caller's f32
//!    [`F32Kernel`], in descending `hi`, into a [`TopK`]; rescoring stops
//!    when the next `hi` is below the k-th exact score so far.
//!
//! The result is the f32 scan's (same kernel): same rows, order and score
//! bits, `min_score` and the tie rule included. Step 4 of the proof in
//! [`bound`] says why; `props.rs` checks it bit for bit on random,
//! adversarial and real data.
//!
//! # When the f32 scan answers instead
//! Exactness never depends on data being friendly, only speed does. The f32
//! scan answers (and the answer's [`ScanPath`] says why) when the query is
//! zero or outside the bounded range of [`quantize`], when `k > n / 8` (k
//! rescored rows would cost about as much as the whole f32 scan), or when a
//! task holds more than 1/8 of its rows as candidates (many
//! near-duplicates: the pass stops early). Rows outside the bounded range
//! are always rescored.
//!
//! # Skipped rows
//! A request's `excluded` rows (a segment's tombstones and expired rows)
//! and a query's own `exclude` are as good as absent: a skipped row is
//! never a candidate and its lower bound never raises τ, so it costs
//! nothing beyond a look-up when its bound reaches the cut. The f32
//! fallback skips the same rows.
//!
//! # Memory
//! [`QuantizedMatrix::bytes_per_row`]: the codes (dim rounded up to a
//! multiple of 4) plus three f32 per row (scale, residual norm, code norm),
//! about a quarter of the f32 row. Per query, the scan keeps
//! O(k + candidates) per task, like the f32 scan's O(k × tasks).

pub mod bound;
mod builder;
pub mod kernel;
pub mod quantize;

use std::{
    cmp::{Ordering as CmpOrdering, Reverse},
    collections::BinaryHeap,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use rayon::prelude::*;
use thiserror::Error;

pub use self::builder::QuantizedBuilder;

use self::{
    bound::QueryBound,
    kernel::{padded_dim, place_row, Int8Kernel, MAX_DIM4, PANEL_ROWS},
    quantize::quantize,
};
use crate::{
    kernel::F32Kernel,
    mode::ScanPath,
    request::{Forced, Matrix, ScanAnswer, ScanQuery},
    topk::{Hit, TopK},
    BLOCK_BYTES, PARALLEL_MIN_FLOATS,
};

/// Largest dimension the int8 copy accepts (the kernels' i32 sums stay
/// exact up to here; see `kernel::MAX_DIM4`).
pub const MAX_DIM: usize = MAX_DIM4;

/// Past `n / FULL_SCAN_FRACTION` rescored rows (or candidates per task)
/// the f32 scan is cheaper: a rescore reads a whole f32 row from a random
/// place, and the f32 scan reads all of them in order at about the same
/// cost per byte.
const FULL_SCAN_FRACTION: usize = 8;

/// Panels per kernel call for one query: 128 rows (48 KiB of codes at
/// D = 384) keep the 8 accumulator chains of the AVX-512 tile busy and the
/// per-call costs (query sum, bound loop set-up) small.
const SINGLE_CALL_PANELS: usize = 8;

/// Panels per kernel call in a batch: 64 rows (24 KiB at D = 384) stay in
/// L1 while every query of the batch passes over them.
const BATCH_CALL_PANELS: usize = 4;

/// Why an int8 copy could not be built. Programming errors in the caller
/// (the index validates dimensions before this), surfaced, not hidden.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QuantizeError {
    #[error("the dimension must be at least 1")]
    ZeroDimension,
    #[error("dimension {dim} is above the int8 scan's limit of {max}")]
    DimensionTooLarge { dim: usize, max: usize },
    #[error("{len} floats are not a whole number of {dim}-long rows")]
    NotWholeRows { len: usize, dim: usize },
    #[error("{rows} rows do not fit the u32 row numbers of a hit")]
    TooManyRows { rows: usize },
}

/// The int8 copy of an `n × dim` row-major f32 matrix: codes in panel
/// layout (see [`kernel`]) and, per row, the scale and the two norms the
/// bound needs. Immutable once built, like the index snapshot holding it.
#[derive(Debug)]
pub struct QuantizedMatrix {
    /// Biased codes, panel after panel, from `start` (the first 64-byte
    /// aligned byte, so every kernel load is one cache line).
    buf: Vec<u8>,
    start: usize,
    rows: usize,
    dim: usize,
    dim4: usize,
    /// Per row, padded with zeros to whole panels: s_x, E_x ≥ ‖x − x̂‖ and
    /// H_x ≥ ‖x̂‖. Kept apart from the codes, as arrays, so the bound loop
    /// reads them as contiguous lanes.
    scales: Vec<f32>,
    residuals: Vec<f32>,
    code_norms: Vec<f32>,
    unbounded_rows: usize,
}

/// One row's int8 code made where the row was decoded, for
/// [`QuantizedBuilder::push`]: a loader quantizes each chunk of rows while
/// the next chunk is on the wire, and the copy is then only laid out, never
/// quantized again. The same bits [`QuantizedMatrix::from_rows`] computes
/// for the same row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowCode {
    scale: f32,
    residual: f32,
    code_norm: f32,
}

impl RowCode {
    /// Quantizes `row`, appending its `row.len()` biased codes to `codes`
    /// (written in place: no buffer per row).
    pub fn quantize(row: &[f32], codes: &mut Vec<u8>) -> Self {
        let start = codes.len();
        codes.resize(start + row.len(), 0);
        let q = quantize(row, &mut codes[start..]);
        Self { scale: q.scale, residual: q.residual, code_norm: q.code_norm }
    }
}

/// `dim` rounded up to whole groups, once it is known to be a dimension
/// the copy accepts.
fn checked_dim4(dim: usize) -> Result<usize, QuantizeError> {
    match dim {
        0 => Err(QuantizeError::ZeroDimension),
        d if d > MAX_DIM => Err(QuantizeError::DimensionTooLarge { dim, max: MAX_DIM }),
        d => Ok(padded_dim(d)),
    }
}

/// An empty code buffer with room for `bytes` after a 64-byte boundary
/// (so every kernel load is one cache line), filled with code 128 up to
/// that boundary, and the boundary's offset.
fn aligned_buf(bytes: usize) -> (Vec<u8>, usize) {
    aligned_buf_in(Vec::new(), bytes)
}

/// What a buffer must hold for `bytes` of codes after a 64-byte boundary.
fn aligned_capacity(bytes: usize) -> usize {
    bytes.saturating_add(63)
}

/// [`aligned_buf`] in `buf`'s allocation when it has the room (its bytes
/// are never read: every byte up to `len` is written again), else in a
/// new one with room to grow ([`crate::with_growth_room`]).
fn aligned_buf_in(mut buf: Vec<u8>, bytes: usize) -> (Vec<u8>, usize) {
    buf.clear();
    if buf.capacity() < aligned_capacity(bytes) {
        buf = Vec::with_capacity(crate::with_growth_room(aligned_capacity(bytes)));
    }
    let start = buf.as_ptr().align_offset(64).min(63);
    buf.resize(start, 128);
    (buf, start)
}

impl QuantizedMatrix {
    /// The allocation holding the codes, for a later
    /// [`QuantizedBuilder::new_in`] to write another copy into (a reload
    /// reusing the retired snapshot's resident memory).
    pub fn into_code_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes a [`QuantizedBuilder::new_in`] of as many rows asks its
    /// spare for: the codes and their alignment.
    pub fn code_buffer_need(&self) -> usize {
        aligned_capacity(self.buf.len() - self.start)
    }

    /// Quantizes every row of `matrix` (`n × dim`, row-major), on rayon.
    ///
    /// # Errors
    /// [`QuantizeError`] when `dim` is 0 or above [`MAX_DIM`], the length is
    /// not a multiple of `dim`, or there are more than `u32::MAX` rows.
    pub fn from_rows(matrix: &[f32], dim: usize) -> Result<Self, QuantizeError> {
        let dim4 = checked_dim4(dim)?;
        if !matrix.len().is_multiple_of(dim) {
            return Err(QuantizeError::NotWholeRows { len: matrix.len(), dim });
        }
        let rows = matrix.len() / dim;
        if u32::try_from(rows).is_err() {
            return Err(QuantizeError::TooManyRows { rows });
        }
        let panel_bytes = PANEL_ROWS * dim4;
        let panels = rows.div_ceil(PANEL_ROWS);
        let (mut buf, start) = aligned_buf(panels * panel_bytes);
        buf.resize(start + panels * panel_bytes, 128);
        let padded_rows = panels * PANEL_ROWS;
        let (mut scales, mut residuals, mut code_norms) =
            (vec![0.0f32; padded_rows], vec![0.0f32; padded_rows], vec![0.0f32; padded_rows]);
        buf[start..][..panels * panel_bytes]
            .par_chunks_mut(panel_bytes)
            .zip(scales.par_chunks_mut(PANEL_ROWS))
            .zip(residuals.par_chunks_mut(PANEL_ROWS))
            .zip(code_norms.par_chunks_mut(PANEL_ROWS))
            .enumerate()
            .for_each(|(p, (((panel, scales), residuals), code_norms))| {
                let mut biased = vec![0u8; dim];
                let first = p * PANEL_ROWS;
                for (r, x) in matrix[first * dim..].chunks_exact(dim).take(PANEL_ROWS).enumerate() {
                    let q = quantize(x, &mut biased);
                    (scales[r], residuals[r], code_norms[r]) = (q.scale, q.residual, q.code_norm);
                    place_row(panel, r, &biased);
                }
            });
        let unbounded_rows = residuals.iter().filter(|r| r.is_infinite()).count();
        Ok(Self { buf, start, rows, dim, dim4, scales, residuals, code_norms, unbounded_rows })
    }

    /// Rows stored.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows outside the bounded range (see [`quantize`]): always rescored.
    /// 0 for an index of unit rows.
    pub fn unbounded_rows(&self) -> usize {
        self.unbounded_rows
    }

    /// Bytes the int8 copy costs per row of dimension `dim`: codes padded
    /// to a multiple of 4, plus scale, residual norm and code norm (f32
    /// each). Rows padded to a whole panel add at most 15 rows per matrix.
    pub fn bytes_per_row(dim: usize) -> usize {
        padded_dim(dim) + 3 * std::mem::size_of::<f32>()
    }

    /// Heap bytes held (allocation sizes), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.buf.capacity()
            + (self.scales.capacity() + self.residuals.capacity() + self.code_norms.capacity())
                * std::mem::size_of::<f32>()
    }

    /// The codes in panel layout, whole panels only.
    fn panels(&self) -> &[u8] {
        &self.buf[self.start..][..self.rows.div_ceil(PANEL_ROWS) * PANEL_ROWS * self.dim4]
    }

    /// Row `row`'s codes, in order (tests look through the layout with it).
    #[cfg(test)]
    fn codes(&self, row: usize) -> Vec<i8> {
        (0..self.dim).map(|t| (self.panels()[kernel::code_offset(self.dim4, row, t)] ^ 0x80) as i8).collect()
    }
}

/// How an int8 pass is cut up: by size ([`Int8Plan::new`]) unless the
/// request forces a split; tests also switch off the f32 fallbacks to
/// exercise the rescoring on degenerate data.
#[derive(Debug, Clone, Copy)]
struct Int8Plan {
    /// Panels per rayon task (a multiple of [`SINGLE_CALL_PANELS`] unless forced).
    block_panels: usize,
    parallel: bool,
    /// Whether `LargeK` and `TooManyCandidates` hand the query to the f32 scan.
    fallback: bool,
}

impl Int8Plan {
    fn new(m: &QuantizedMatrix, queries: usize, forced: Forced) -> Self {
        let panel_bytes = PANEL_ROWS * m.dim4;
        let fallback = forced.int8_fallbacks;
        if let Some(split) = forced.split {
            let block_panels = split.block_rows.div_ceil(PANEL_ROWS).max(1);
            return Self { block_panels, parallel: split.parallel, fallback };
        }
        let block_panels = (BLOCK_BYTES / panel_bytes / SINGLE_CALL_PANELS).max(1) * SINGLE_CALL_PANELS;
        let bytes = m.rows.div_ceil(PANEL_ROWS) * panel_bytes;
        Self {
            block_panels,
            parallel: bytes.saturating_mul(queries) >= PARALLEL_MIN_FLOATS * std::mem::size_of::<f32>()
                && rayon::current_num_threads() > 1,
            fallback,
        }
    }
}

/// A query ready for the int8 pass.
struct QuantizedQuery<'a> {
    query: ScanQuery<'a>,
    /// Codes padded to `dim4` with zeros.
    codes: Vec<i8>,
    bound: QueryBound,
    /// `min_score` as f64, -inf when absent or NaN (the f32 scan's
    /// `threshold.max(floor)` ignores a NaN floor too).
    floor: f64,
}

impl<'a> QuantizedQuery<'a> {
    fn new(query: ScanQuery<'a>, dim4: usize) -> Option<Self> {
        let mut codes = vec![0i8; dim4];
        let q = quantize(query.vector, &mut codes[..query.vector.len()]);
        let bound = QueryBound::new(&q, query.vector.len())?;
        let floor = query.min_score.filter(|f| !f.is_nan()).map_or(f64::NEG_INFINITY, f64::from);
        Some(Self { query, codes, bound, floor })
    }
}

/// The exact top-k of every query over `exact` (the rows `m` was built
/// from), through the int8 copy: one answer per query, in query order,
/// each what the f32 scan with `kernel` returns without the request's
/// `excluded` rows (strictly ascending) and the query's own `exclude`.
/// The queries' `among` is not read: [`crate::top_k`] sends filtered
/// queries to the filtered scan.
pub(crate) fn search(
    kernel: F32Kernel,
    int8: Int8Kernel,
    m: &QuantizedMatrix,
    exact: &[f32],
    queries: &[ScanQuery<'_>],
    excluded: &[u32],
    forced: Forced,
) -> Vec<ScanAnswer> {
    let plan = Int8Plan::new(m, queries.len(), forced);
    let mut answers: Vec<Option<ScanAnswer>> = vec![None; queries.len()];
    let mut prepared = Vec::new();
    let mut prepared_at = Vec::new();
    let mut f32_queries = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        if q.k == 0 || m.rows == 0 {
            answers[i] = Some(ScanAnswer { hits: Vec::new(), path: ScanPath::Int8, rescored_rows: 0, candidates: 0 });
        } else if plan.fallback && q.k > m.rows / FULL_SCAN_FRACTION {
            f32_queries.push((i, ScanPath::FallbackLargeK));
        } else if let Some(p) = QuantizedQuery::new(*q, m.dim4) {
            prepared.push(p);
            prepared_at.push(i);
        } else {
            f32_queries.push((i, ScanPath::FallbackQueryOutOfRange));
        }
    }
    if !prepared.is_empty() {
        let passes = pass(int8, m, &prepared, excluded, plan);
        let finished: Vec<Option<ScanAnswer>> = prepared
            .par_iter()
            .zip(passes)
            .map(|(q, pass)| (!pass.overflow).then(|| rescore(kernel, m, exact, q, pass)))
            .collect();
        for (i, answer) in prepared_at.into_iter().zip(finished) {
            match answer {
                Some(answer) => answers[i] = Some(answer),
                None => f32_queries.push((i, ScanPath::FallbackTooManyCandidates)),
            }
        }
    }
    if !f32_queries.is_empty() {
        // Same kernel, same bits as the f32 scan of the query alone.
        let batch: Vec<ScanQuery<'_>> = f32_queries.iter().map(|&(i, _)| queries[i]).collect();
        let hits = crate::f32_scan::top_k(kernel, Matrix::new(exact, m.dim), &batch, excluded, None);
        for ((i, path), hits) in f32_queries.into_iter().zip(hits) {
            answers[i] = Some(ScanAnswer { hits, path, rescored_rows: m.rows, candidates: m.rows });
        }
    }
    answers.into_iter().map(|a| a.expect("every query was answered by one path")).collect()
}

/// An f64 with a total order, for the heap of lower bounds.
#[derive(Debug, Clone, Copy)]
struct Total(f64);

impl PartialEq for Total {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Total {}
impl PartialOrd for Total {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Total {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.0.total_cmp(&other.0)
    }
}

/// The k largest values pushed (k ≥ 1): their minimum is τ.
#[derive(Debug)]
struct KthLargest {
    k: usize,
    heap: BinaryHeap<Reverse<Total>>,
}

impl KthLargest {
    fn new(k: usize) -> Self {
        Self { k, heap: BinaryHeap::with_capacity(k.min(1 << 12)) }
    }

    /// Offers `v`; returns the k-th largest value once k were pushed.
    fn push(&mut self, v: f64) -> Option<f64> {
        if self.heap.len() < self.k {
            self.heap.push(Reverse(Total(v)));
        } else if let Some(mut min) = self.heap.peek_mut() {
            if v > min.0 .0 {
                *min = Reverse(Total(v));
            }
        }
        self.kth()
    }

    fn kth(&self) -> Option<f64> {
        (self.heap.len() >= self.k).then(|| self.heap.peek().map(|r| r.0 .0)).flatten()
    }

    fn merge(&mut self, other: Self) {
        for Reverse(Total(v)) in other.heap {
            self.push(v);
        }
    }
}

/// A row whose upper bound reached the cut when it was scanned.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    row: u32,
    upper: f64,
}

/// The cut max(τ, min_score) of one query, shared by every task of a pass:
/// any task's τ bounds the global k-th score, so each prunes with the best
/// one seen. Monotone, so relaxed atomics suffice (a stale value is just a
/// lower, still valid, cut).
struct SharedCut {
    key: AtomicU64,
    overflow: AtomicBool,
}

impl SharedCut {
    fn new(floor: f64) -> Self {
        Self { key: AtomicU64::new(order_key(floor)), overflow: AtomicBool::new(false) }
    }

    fn get(&self) -> f64 {
        from_order_key(self.key.load(Ordering::Relaxed))
    }

    fn raise(&self, cut: f64) {
        self.key.fetch_max(order_key(cut), Ordering::Relaxed);
    }
}

/// Maps an f64 (not NaN) to a u64 with the same order.
fn order_key(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

fn from_order_key(key: u64) -> f64 {
    f64::from_bits(if key >> 63 == 1 { key & !(1 << 63) } else { !key })
}

/// One query's state in one task of the int8 pass.
#[derive(Debug)]
struct Pass {
    k: usize,
    lower: KthLargest,
    candidates: Vec<Candidate>,
    /// max(τ, min_score, the shared cut), as last seen by this task.
    cut: f64,
    /// Prune `candidates` when they reach this many.
    prune_at: usize,
    rows_seen: usize,
    /// Set when this query should be answered by the f32 scan.
    overflow: bool,
}

impl Pass {
    fn new(k: usize, floor: f64) -> Self {
        let prune_at = k.saturating_mul(2).saturating_add(64);
        Self {
            k,
            lower: KthLargest::new(k),
            candidates: Vec::new(),
            cut: floor,
            prune_at,
            rows_seen: 0,
            overflow: false,
        }
    }

    /// Bounds rows `first_row..first_row + dots.len()` from their int8 dot
    /// products and keeps those that can still reach the top-k, skipping
    /// `excluded` rows (ascending) and `own`: they are neither candidates
    /// nor lower bounds for τ.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn offer(
        &mut self,
        int8: Int8Kernel,
        m: &QuantizedMatrix,
        bound: &QueryBound,
        first_row: usize,
        dots: &[i32],
        excluded: &[u32],
        own: Option<u32>,
        shared: &SharedCut,
    ) {
        let mut cut = self.cut.max(shared.get());
        let end = first_row + dots.len();
        self.rows_seen += dots.len();
        let (scales, residuals, code_norms) =
            (&m.scales[first_row..end], &m.residuals[first_row..end], &m.code_norms[first_row..end]);
        // Most blocks hold no row reaching the cut: find out without a branch per row.
        if int8.count_reaching(bound, scales, dots, residuals, code_norms, cut) == 0 {
            self.cut = cut;
            return;
        }
        let rows = scales.iter().zip(residuals).zip(code_norms);
        for (i, ((&scale, &residual), &code_norm)) in rows.enumerate() {
            let (lo, hi) = bound.interval(scale, dots[i], residual, code_norm);
            let row = (first_row + i) as u32;
            let skipped = own == Some(row) || (!excluded.is_empty() && excluded.binary_search(&row).is_ok());
            if hi >= cut && !skipped {
                self.candidates.push(Candidate { row, upper: hi });
                if lo > cut {
                    if let Some(kth) = self.lower.push(lo) {
                        cut = cut.max(kth);
                    }
                }
            }
        }
        if cut > self.cut {
            self.cut = cut;
            shared.raise(cut);
        }
        if self.candidates.len() >= self.prune_at {
            self.prune();
        }
    }

    /// Drops candidates below the current cut; grows the limit if most survive.
    fn prune(&mut self) {
        let cut = self.cut;
        self.candidates.retain(|c| c.upper >= cut);
        self.prune_at = self.prune_at.max(self.candidates.len().saturating_mul(2));
    }

    /// Whether this task holds too many candidates for rescoring to pay.
    fn overflowing(&self) -> bool {
        self.candidates.len() > self.rows_seen / FULL_SCAN_FRACTION + self.k.saturating_mul(2) + 64
    }

    fn merge(&mut self, other: Self) {
        self.lower.merge(other.lower);
        self.candidates.extend(other.candidates);
        self.cut = self.cut.max(other.cut);
        self.rows_seen += other.rows_seen;
        self.overflow |= other.overflow;
    }
}

/// Per-task state of a pass: one [`Pass`] per query and the kernel's output
/// buffer, allocated once per task.
struct TaskState {
    passes: Vec<Pass>,
    dots: Vec<i32>,
}

/// The int8 pass over every row except the skipped ones for every prepared query.
fn pass(
    int8: Int8Kernel,
    m: &QuantizedMatrix,
    queries: &[QuantizedQuery<'_>],
    excluded: &[u32],
    plan: Int8Plan,
) -> Vec<Pass> {
    let nq = queries.len();
    let dim4 = m.dim4;
    let panel_bytes = PANEL_ROWS * dim4;
    let call_panels = if nq == 1 { SINGLE_CALL_PANELS } else { BATCH_CALL_PANELS };
    let flat: Vec<i8> = queries.iter().flat_map(|q| q.codes.iter().copied()).collect();
    let shared: Vec<SharedCut> = queries.iter().map(|q| SharedCut::new(q.floor)).collect();
    let new_state = || TaskState {
        passes: queries.iter().map(|q| Pass::new(q.query.k, q.floor)).collect(),
        dots: vec![0; nq * call_panels * PANEL_ROWS],
    };
    let scan_block = |state: &mut TaskState, first_panel: usize, block: &[u8]| {
        for (c, chunk) in block.chunks(call_panels * panel_bytes).enumerate() {
            if shared.iter().all(|s| s.overflow.load(Ordering::Relaxed)) {
                return;
            }
            let rows = chunk.len() / panel_bytes * PANEL_ROWS;
            let first_row = (first_panel + c * call_panels) * PANEL_ROWS;
            let dots = &mut state.dots[..nq * rows];
            int8.score_panels(chunk, &flat, dim4, dots);
            let valid = rows.min(m.rows - first_row);
            for ((pass, dots), (q, shared)) in
                state.passes.iter_mut().zip(dots.chunks_exact(rows)).zip(queries.iter().zip(&shared))
            {
                if pass.overflow || shared.overflow.load(Ordering::Relaxed) {
                    pass.overflow = true;
                    continue;
                }
                pass.offer(int8, m, &q.bound, first_row, &dots[..valid], excluded, q.query.exclude, shared);
                if plan.fallback && pass.overflowing() {
                    pass.overflow = true;
                    shared.overflow.store(true, Ordering::Relaxed);
                }
            }
        }
    };
    let merge = |mut a: TaskState, b: TaskState| {
        for (a, b) in a.passes.iter_mut().zip(b.passes) {
            a.merge(b);
        }
        a
    };
    let state = if plan.parallel {
        m.panels()
            .par_chunks(plan.block_panels * panel_bytes)
            .enumerate()
            .fold(new_state, |mut state, (i, block)| {
                scan_block(&mut state, i * plan.block_panels, block);
                state
            })
            .reduce(new_state, merge)
    } else {
        let mut state = new_state();
        for (i, block) in m.panels().chunks(plan.block_panels * panel_bytes).enumerate() {
            scan_block(&mut state, i * plan.block_panels, block);
        }
        state
    };
    let mut passes = state.passes;
    for (pass, shared) in passes.iter_mut().zip(&shared) {
        pass.overflow |= shared.overflow.load(Ordering::Relaxed);
        pass.cut = pass.cut.max(shared.get());
    }
    passes
}

/// Step 3 of the module doc: rescores the pass's candidates in descending
/// upper bound until none can enter.
fn rescore(kernel: F32Kernel, m: &QuantizedMatrix, exact: &[f32], q: &QuantizedQuery<'_>, pass: Pass) -> ScanAnswer {
    let cut = pass.lower.kth().map_or(pass.cut, |kth| kth.max(pass.cut));
    let mut candidates = pass.candidates;
    candidates.retain(|c| c.upper >= cut);
    candidates.sort_unstable_by(|a, b| b.upper.total_cmp(&a.upper));
    let floor = q.query.min_score.unwrap_or(f32::NEG_INFINITY);
    let dim = m.dim;
    let mut top = TopK::new(q.query.k);
    let mut rows = 0;
    for c in &candidates {
        // As in the f32 scan's `select`; f32::max ignores a NaN floor there and here.
        let threshold = top.threshold().max(floor);
        if c.upper < f64::from(threshold) {
            break;
        }
        let mut score = [0.0f32];
        kernel.score_rows(&exact[c.row as usize * dim..][..dim], q.query.vector, &mut score);
        rows += 1;
        if score[0] >= threshold {
            top.push(Hit { row: c.row, score: score[0] });
        }
    }
    ScanAnswer { hits: top.into_sorted(), path: ScanPath::Int8, rescored_rows: rows, candidates: candidates.len() }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::ScanRequest;

    /// One query through the scan's entry: over the int8 copy when `m` is
    /// given, else the f32 rows, with both kernels forced.
    fn one(
        kernel: F32Kernel,
        int8: Int8Kernel,
        m: Option<&QuantizedMatrix>,
        rows: &[f32],
        dim: usize,
        vector: &[f32],
        k: usize,
    ) -> ScanAnswer {
        let matrix = m.map_or(Matrix::new(rows, dim), |m| Matrix::new(rows, dim).with_int8(m));
        let forced = Forced { kernel: Some(kernel), int8_kernel: Some(int8), ..Forced::default() };
        let queries = [ScanQuery { vector, k, ..ScanQuery::default() }];
        crate::top_k(matrix, &ScanRequest { queries: &queries, forced, ..ScanRequest::default() }).remove(0)
    }

    pub(crate) fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut m = crate::test_rng::XorShift::new(seed).units(n * dim);
        for row in m.chunks_exact_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            row.iter_mut().for_each(|x| *x /= norm);
        }
        m
    }

    #[test]
    fn building_rejects_bad_shapes_with_typed_errors() {
        assert_eq!(QuantizedMatrix::from_rows(&[1.0], 0).err(), Some(QuantizeError::ZeroDimension));
        assert_eq!(
            QuantizedMatrix::from_rows(&[1.0; 3], 2).err(),
            Some(QuantizeError::NotWholeRows { len: 3, dim: 2 })
        );
        assert_eq!(
            QuantizedMatrix::from_rows(&[], MAX_DIM + 1).err(),
            Some(QuantizeError::DimensionTooLarge { dim: MAX_DIM + 1, max: MAX_DIM })
        );
    }

    #[test]
    fn rows_are_quantized_in_place_in_the_panel_layout() {
        let (n, dim) = (37, 10);
        let matrix = unit_rows(n, dim, 5);

        let m = QuantizedMatrix::from_rows(&matrix, dim).expect("valid shape");

        assert_eq!((m.len(), m.dim(), m.unbounded_rows()), (n, dim, 0));
        assert_eq!(m.panels().as_ptr() as usize % 64, 0, "codes start on a cache line");
        for (r, x) in matrix.chunks_exact(dim).enumerate() {
            let mut want = vec![0i8; dim];
            let q = quantize(x, &mut want);
            assert_eq!(m.codes(r), want, "row {r}");
            assert_eq!((m.scales[r], m.residuals[r], m.code_norms[r]), (q.scale, q.residual, q.code_norm));
        }
        assert!(m.heap_bytes() >= n * QuantizedMatrix::bytes_per_row(dim));
        assert_eq!(QuantizedMatrix::bytes_per_row(384), 396);
    }

    #[test]
    fn order_keys_sort_like_the_floats() {
        let values = [f64::NEG_INFINITY, -1e300, -1.0, -0.0, 0.0, 1e-300, 0.5, f64::INFINITY];
        for w in values.windows(2) {
            assert!(order_key(w[0]) <= order_key(w[1]), "{} vs {}", w[0], w[1]);
        }
        for v in values {
            assert_eq!(from_order_key(order_key(v)).to_bits(), v.to_bits());
        }
    }

    #[test]
    fn kth_largest_keeps_the_k_largest() {
        let mut t = KthLargest::new(3);
        assert_eq!(t.push(1.0), None);
        assert_eq!(t.push(5.0), None);
        assert_eq!(t.push(3.0), Some(1.0));
        assert_eq!(t.push(4.0), Some(3.0));
        assert_eq!(t.push(0.0), Some(3.0));
        let mut u = KthLargest::new(3);
        u.push(10.0);
        t.merge(u);
        assert_eq!(t.kth(), Some(4.0));
    }

    #[test]
    fn a_simple_query_matches_the_f32_scan_and_rescores_few_rows() {
        let (n, dim) = (5000, 64);
        let matrix = unit_rows(n, dim, 9);
        let query = unit_rows(1, dim, 10);
        let m = QuantizedMatrix::from_rows(&matrix, dim).expect("valid shape");

        for kernel in F32Kernel::available() {
            for int8 in Int8Kernel::available() {
                let got = one(kernel, int8, Some(&m), &matrix, dim, &query, 10);

                let want = one(kernel, int8, None, &matrix, dim, &query, 10);
                assert_eq!(got.hits, want.hits, "{}/{}", kernel.name(), int8.name());
                assert_eq!(got.path, ScanPath::Int8);
                assert!(got.rescored_rows >= 10 && got.rescored_rows < n / 10, "{got:?}");
            }
        }
    }

    #[test]
    fn k_zero_and_empty_matrices_give_no_hits() {
        let (f32k, i8k) = (crate::kernel::active(), kernel::active());
        let m = QuantizedMatrix::from_rows(&[], 3).expect("empty is valid");
        assert!(one(f32k, i8k, Some(&m), &[], 3, &[1.0, 0.0, 0.0], 5).hits.is_empty());
        let rows = [1.0, 0.0, 0.0];
        let m = QuantizedMatrix::from_rows(&rows, 3).expect("valid");
        assert!(one(f32k, i8k, Some(&m), &rows, 3, &[1.0, 0.0, 0.0], 0).hits.is_empty());
    }

    #[test]
    fn out_of_range_queries_and_large_k_use_the_f32_scan() {
        let (n, dim) = (100, 8);
        let matrix = unit_rows(n, dim, 3);
        let m = QuantizedMatrix::from_rows(&matrix, dim).expect("valid");
        let kernel = F32Kernel::Scalar;
        for (query, k, path) in [
            (vec![0.0; dim], 3, ScanPath::FallbackQueryOutOfRange),
            (vec![1e-20; dim], 3, ScanPath::FallbackQueryOutOfRange),
            (unit_rows(1, dim, 4), 50, ScanPath::FallbackLargeK),
        ] {
            let got = one(kernel, Int8Kernel::Scalar, Some(&m), &matrix, dim, &query, k);

            assert_eq!(got.path, path);
            assert_eq!(got.rescored_rows, n);
            assert_eq!(got.hits, one(kernel, Int8Kernel::Scalar, None, &matrix, dim, &query, k).hits);
        }
    }

    #[test]
    fn identical_rows_overflow_to_the_f32_scan_and_keep_the_tie_rule() {
        let row = unit_rows(1, 16, 3);
        let matrix: Vec<f32> = row.iter().copied().cycle().take(16 * 1000).collect();
        let m = QuantizedMatrix::from_rows(&matrix, 16).expect("valid");

        let got = one(F32Kernel::Scalar, Int8Kernel::Scalar, Some(&m), &matrix, 16, &row, 3);

        assert_eq!(got.path, ScanPath::FallbackTooManyCandidates);
        assert_eq!(got.hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
