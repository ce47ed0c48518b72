//! Exact top-k from an int8 copy of the matrix: scan a quarter of the
//! bytes, bound every score, rescore in f32 only the rows whose bound can
//! still reach the top-k (issue 12).
//!
//! Owns the int8 copy ([`QuantizedMatrix`]), its kernels ([`kernel`]) and
//! the scan-then-rescore search ([`top_k_with`], [`top_k_batch_with`]).
//! Does not own the f32 rows (the caller passes the matrix the copy was
//! built from: the index keeps both) nor the tie rule ([`super::topk`]).
//!
//! # How a query is answered
//! 1. The query is quantized like the rows ([`quantize`]).
//! 2. One pass over the int8 codes, on rayon in blocks of
//!    `search::BLOCK_BYTES` like [`super::top_k`]: an exact integer dot
//!    product per row, turned into an interval [lo, hi] that provably holds
//!    the row's f32 score ([`bound`], which holds the proof). Each task keeps
//!    the k largest `lo` seen (their k-th is a lower bound τ on the k-th best
//!    score, shared between tasks through an atomic) and the rows whose `hi`
//!    reaches max(τ, min_score).
//! 3. The surviving candidates are rescored with the caller's f32
//!    [`Kernel`], in descending `hi`, into a [`TopK`]; rescoring stops when
//!    the next `hi` is below the k-th exact score so far.
//!
//! The result is the f32 scan's ([`super::top_k_with`] with the same
//! kernel): same rows, order and score bits, `min_score` and the tie rule
//! included. Step 4 of the proof in [`bound`] says why; `props.rs` checks it
//! bit for bit on random, adversarial and real data.
//!
//! # When the f32 scan answers instead
//! Exactness never depends on data being friendly, only speed does. The f32
//! scan answers (and [`Rescore::path`] says why) when the query is zero or
//! outside the bounded range of [`quantize`], when `k > n / 8` (k rescored
//! rows would cost about as much as the whole f32 scan), or when a task
//! holds more than 1/8 of its rows as candidates (many near-duplicates: the
//! pass stops early). Rows outside the bounded range are always rescored.
//!
//! # Excluded rows
//! [`top_k_batch_excluding`] answers as if some rows were not there (the
//! tombstones of an index segment, see `index::delta`): an excluded row is
//! never a candidate and its lower bound never raises τ, so it costs
//! nothing beyond a binary search when its bound reaches the cut. The f32
//! fallback asks for `k + excluded` rows and drops the excluded ones (at
//! most that many of its best rows can be excluded).
//!
//! # Memory
//! [`QuantizedMatrix::bytes_per_row`]: the codes (dim rounded up to a
//! multiple of 4) plus three f32 per row (scale, residual norm, code norm):
//! 396 bytes at D = 384, against 1,536 for the f32 row. Per query, the scan
//! keeps O(k + candidates) per task, like the f32 scan's O(k × tasks).

pub mod bound;
pub mod kernel;
pub mod quantize;

use std::{
    cmp::{Ordering as CmpOrdering, Reverse},
    collections::BinaryHeap,
    sync::atomic::{AtomicBool, AtomicU64, Ordering},
};

use rayon::prelude::*;
use thiserror::Error;

use self::{
    bound::QueryBound,
    kernel::{code_offset, padded_dim, Int8Kernel, MAX_DIM4, PANEL_ROWS},
    quantize::quantize,
};
use super::{BatchQuery, Hit, Kernel, TopK, BLOCK_BYTES, PARALLEL_MIN_FLOATS};

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

impl QuantizedMatrix {
    /// Quantizes every row of `matrix` (`n × dim`, row-major), on rayon.
    ///
    /// # Errors
    /// [`QuantizeError`] when `dim` is 0 or above [`MAX_DIM`], the length is
    /// not a multiple of `dim`, or there are more than `u32::MAX` rows.
    pub fn from_rows(matrix: &[f32], dim: usize) -> Result<Self, QuantizeError> {
        if dim == 0 {
            return Err(QuantizeError::ZeroDimension);
        }
        if dim > MAX_DIM {
            return Err(QuantizeError::DimensionTooLarge { dim, max: MAX_DIM });
        }
        if !matrix.len().is_multiple_of(dim) {
            return Err(QuantizeError::NotWholeRows { len: matrix.len(), dim });
        }
        let rows = matrix.len() / dim;
        if u32::try_from(rows).is_err() {
            return Err(QuantizeError::TooManyRows { rows });
        }
        let dim4 = padded_dim(dim);
        let panel_bytes = PANEL_ROWS * dim4;
        let panels = rows.div_ceil(PANEL_ROWS);
        let mut buf = vec![128u8; panels * panel_bytes + 63];
        let start = buf.as_ptr().align_offset(64).min(63);
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
                let mut codes = vec![0i8; dim];
                let first = p * PANEL_ROWS;
                for (r, x) in matrix[first * dim..].chunks_exact(dim).take(PANEL_ROWS).enumerate() {
                    let q = quantize(x, &mut codes);
                    (scales[r], residuals[r], code_norms[r]) = (q.scale, q.residual, q.code_norm);
                    for (t, &c) in codes.iter().enumerate() {
                        panel[code_offset(dim4, r, t)] = (c as u8) ^ 0x80;
                    }
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
        (0..self.dim).map(|t| (self.panels()[code_offset(self.dim4, row, t)] ^ 0x80) as i8).collect()
    }
}

/// One query's answer and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Int8Answer {
    /// Exactly what the f32 scan returns (see the module doc).
    pub hits: Vec<Hit>,
    pub rescore: Rescore,
}

/// What a query cost beyond the int8 pass: for `/v1/stats` and the
/// rescored-rows histogram in `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescore {
    /// Rows whose f32 score was computed: the candidates rescored before
    /// the stop rule, or every row when the f32 scan answered.
    pub rows: usize,
    /// Rows whose upper bound reached the final cut after the int8 pass
    /// (every row when the f32 scan answered).
    pub candidates: usize,
    pub path: ScanPath,
}

/// Which scan produced an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanPath {
    /// The int8 pass, then the rescoring of its candidates.
    Int8,
    /// The f32 scan alone (same result; see [`F32Reason`]).
    F32(F32Reason),
}

/// Why the f32 scan answered a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F32Reason {
    /// The query is zero, non-finite or outside the bounded norm range.
    QueryOutOfRange,
    /// `k > n / 8`: rescoring k rows would cost about a full f32 scan.
    LargeK,
    /// A task kept more than 1/8 of its rows as candidates (near-duplicates).
    TooManyCandidates,
}

/// [`top_k_with`] with the process-wide f32 kernel and the matching int8 kernel.
///
/// # Panics
/// As [`top_k_with`].
pub fn top_k(
    quantized: &QuantizedMatrix,
    exact: &[f32],
    query: &[f32],
    k: usize,
    min_score: Option<f32>,
) -> Int8Answer {
    top_k_with(super::kernel::active(), kernel::active(), quantized, exact, query, k, min_score)
}

/// The exact top-`k` of `exact` (the f32 matrix `quantized` was built from)
/// by dot product with `query`, found through the int8 copy: equal, bit for
/// bit, to `search::top_k_with(kernel, exact, query, k, min_score)`.
///
/// # Panics
/// If `query.len()` is not the dimension or `exact` is not `len × dim`
/// (an index invariant). If `exact` has that shape but is not the matrix
/// `quantized` was built from, results are wrong (not unsafe).
pub fn top_k_with(
    kernel: Kernel,
    int8: Int8Kernel,
    quantized: &QuantizedMatrix,
    exact: &[f32],
    query: &[f32],
    k: usize,
    min_score: Option<f32>,
) -> Int8Answer {
    let queries = [BatchQuery { vector: query, k, min_score }];
    check_shapes(quantized, exact, &queries);
    let plan = Plan::for_matrix(quantized, 1);
    search(kernel, int8, quantized, exact, &queries, &[], plan).pop().expect("one answer per query")
}

/// [`top_k_batch_with`] with the process-wide kernels.
///
/// # Panics
/// As [`top_k_batch_with`].
pub fn top_k_batch(quantized: &QuantizedMatrix, exact: &[f32], queries: &[BatchQuery<'_>]) -> Vec<Int8Answer> {
    top_k_batch_with(super::kernel::active(), kernel::active(), quantized, exact, queries)
}

/// [`top_k_with`] for many queries in one pass over the int8 codes: each
/// tile of 64 rows is scored against every query while it sits in L1.
/// Answers are in query order, each equal to what [`top_k_with`] returns
/// for that query alone (and so to the f32 scan's).
///
/// # Panics
/// As [`top_k_with`], for any query.
pub fn top_k_batch_with(
    kernel: Kernel,
    int8: Int8Kernel,
    quantized: &QuantizedMatrix,
    exact: &[f32],
    queries: &[BatchQuery<'_>],
) -> Vec<Int8Answer> {
    check_shapes(quantized, exact, queries);
    let plan = Plan::for_matrix(quantized, queries.len());
    search(kernel, int8, quantized, exact, queries, &[], plan)
}

/// [`top_k_batch`] over every row except `excluded` (strictly ascending row
/// numbers): each answer is what the f32 scan of the matrix without those
/// rows returns, in the matrix's row numbers. An excluded row costs no
/// rescoring, so a segment with many tombstones is scanned as fast as one
/// without (see the module doc).
///
/// # Panics
/// As [`top_k_with`], or if `excluded` is not strictly ascending.
pub fn top_k_batch_excluding(
    quantized: &QuantizedMatrix,
    exact: &[f32],
    queries: &[BatchQuery<'_>],
    excluded: &[u32],
) -> Vec<Int8Answer> {
    check_shapes(quantized, exact, queries);
    assert!(excluded.windows(2).all(|w| w[0] < w[1]), "excluded rows are strictly ascending");
    let plan = Plan::for_matrix(quantized, queries.len());
    search(super::kernel::active(), kernel::active(), quantized, exact, queries, excluded, plan)
}

fn check_shapes(quantized: &QuantizedMatrix, exact: &[f32], queries: &[BatchQuery<'_>]) {
    assert_eq!(exact.len(), quantized.rows * quantized.dim, "exact is the len × dim matrix the copy was built from");
    assert!(queries.iter().all(|q| q.vector.len() == quantized.dim), "every query has the index dimension");
}

/// How a search is cut up. Production uses [`Plan::for_matrix`]; tests
/// shrink the blocks and switch off the f32 fallbacks to exercise the
/// rescoring on degenerate data.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Panels per rayon task (a multiple of [`SINGLE_CALL_PANELS`]).
    block_panels: usize,
    parallel: bool,
    /// Whether `LargeK` and `TooManyCandidates` hand the query to the f32 scan.
    fallback: bool,
}

impl Plan {
    fn for_matrix(m: &QuantizedMatrix, queries: usize) -> Self {
        let panel_bytes = PANEL_ROWS * m.dim4;
        let block_panels = (BLOCK_BYTES / panel_bytes / SINGLE_CALL_PANELS).max(1) * SINGLE_CALL_PANELS;
        let bytes = m.rows.div_ceil(PANEL_ROWS) * panel_bytes;
        Self {
            block_panels,
            parallel: bytes.saturating_mul(queries) >= PARALLEL_MIN_FLOATS * std::mem::size_of::<f32>()
                && rayon::current_num_threads() > 1,
            fallback: true,
        }
    }
}

/// A query ready for the int8 pass.
struct Prepared<'a> {
    query: BatchQuery<'a>,
    /// Codes padded to `dim4` with zeros.
    codes: Vec<i8>,
    bound: QueryBound,
    /// `min_score` as f64, -inf when absent or NaN (the f32 scan's
    /// `threshold.max(floor)` ignores a NaN floor too).
    floor: f64,
}

impl<'a> Prepared<'a> {
    fn new(query: BatchQuery<'a>, dim4: usize) -> Option<Self> {
        let mut codes = vec![0i8; dim4];
        let q = quantize(query.vector, &mut codes[..query.vector.len()]);
        let bound = QueryBound::new(&q, query.vector.len())?;
        let floor = query.min_score.filter(|f| !f.is_nan()).map_or(f64::NEG_INFINITY, f64::from);
        Some(Self { query, codes, bound, floor })
    }
}

/// The search behind every public entry point; `excluded` rows (ascending)
/// are treated as absent.
fn search(
    kernel: Kernel,
    int8: Int8Kernel,
    m: &QuantizedMatrix,
    exact: &[f32],
    queries: &[BatchQuery<'_>],
    excluded: &[u32],
    plan: Plan,
) -> Vec<Int8Answer> {
    let mut answers: Vec<Option<Int8Answer>> = vec![None; queries.len()];
    let mut prepared = Vec::new();
    let mut prepared_at = Vec::new();
    let mut f32_queries = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        if q.k == 0 || m.rows == 0 {
            answers[i] = Some(Int8Answer {
                hits: Vec::new(),
                rescore: Rescore { rows: 0, candidates: 0, path: ScanPath::Int8 },
            });
        } else if plan.fallback && q.k > m.rows / FULL_SCAN_FRACTION {
            f32_queries.push((i, F32Reason::LargeK));
        } else if let Some(p) = Prepared::new(*q, m.dim4) {
            prepared.push(p);
            prepared_at.push(i);
        } else {
            f32_queries.push((i, F32Reason::QueryOutOfRange));
        }
    }
    if !prepared.is_empty() {
        let passes = pass(int8, m, &prepared, excluded, plan);
        let finished: Vec<Option<Int8Answer>> = prepared
            .par_iter()
            .zip(passes)
            .map(|(q, pass)| (!pass.overflow).then(|| rescore(kernel, m, exact, q, pass)))
            .collect();
        for (i, answer) in prepared_at.into_iter().zip(finished) {
            match answer {
                Some(answer) => answers[i] = Some(answer),
                None => f32_queries.push((i, F32Reason::TooManyCandidates)),
            }
        }
    }
    if !f32_queries.is_empty() {
        // Same kernel, same bits as the f32 scan of the query alone.
        let batch: Vec<BatchQuery<'_>> = f32_queries.iter().map(|&(i, _)| queries[i]).collect();
        let hits = super::top_k_batch_excluding_with(kernel, exact, &batch, excluded);
        for ((i, reason), hits) in f32_queries.into_iter().zip(hits) {
            let rescore = Rescore { rows: m.rows, candidates: m.rows, path: ScanPath::F32(reason) };
            answers[i] = Some(Int8Answer { hits, rescore });
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
    /// `excluded` rows (ascending): they are neither candidates nor lower
    /// bounds for τ.
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
            if hi >= cut && (excluded.is_empty() || excluded.binary_search(&row).is_err()) {
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

/// The int8 pass over every row except `excluded` for every prepared query.
fn pass(int8: Int8Kernel, m: &QuantizedMatrix, queries: &[Prepared<'_>], excluded: &[u32], plan: Plan) -> Vec<Pass> {
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
                pass.offer(int8, m, &q.bound, first_row, &dots[..valid], excluded, shared);
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
fn rescore(kernel: Kernel, m: &QuantizedMatrix, exact: &[f32], q: &Prepared<'_>, pass: Pass) -> Int8Answer {
    let cut = pass.lower.kth().map_or(pass.cut, |kth| kth.max(pass.cut));
    let mut candidates = pass.candidates;
    candidates.retain(|c| c.upper >= cut);
    candidates.sort_unstable_by(|a, b| b.upper.total_cmp(&a.upper));
    let floor = q.query.min_score.unwrap_or(f32::NEG_INFINITY);
    let dim = m.dim;
    let mut top = TopK::new(q.query.k);
    let mut rows = 0;
    for c in &candidates {
        // As in `search::select`; f32::max ignores a NaN floor there and here.
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
    Int8Answer {
        hits: top.into_sorted(),
        rescore: Rescore { rows, candidates: candidates.len(), path: ScanPath::Int8 },
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let mut m: Vec<f32> = (0..n * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
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

        for kernel in Kernel::available() {
            for int8 in Int8Kernel::available() {
                let got = top_k_with(kernel, int8, &m, &matrix, &query, 10, None);

                let want = super::super::top_k_with(kernel, &matrix, &query, 10, None);
                assert_eq!(got.hits, want, "{}/{}", kernel.name(), int8.name());
                assert_eq!(got.rescore.path, ScanPath::Int8);
                assert!(got.rescore.rows >= 10 && got.rescore.rows < n / 10, "{:?}", got.rescore);
            }
        }
    }

    #[test]
    fn k_zero_and_empty_matrices_give_no_hits() {
        let m = QuantizedMatrix::from_rows(&[], 3).expect("empty is valid");
        assert!(top_k(&m, &[], &[1.0, 0.0, 0.0], 5, None).hits.is_empty());
        let rows = [1.0, 0.0, 0.0];
        let m = QuantizedMatrix::from_rows(&rows, 3).expect("valid");
        assert!(top_k(&m, &rows, &[1.0, 0.0, 0.0], 0, None).hits.is_empty());
    }

    #[test]
    fn out_of_range_queries_and_large_k_use_the_f32_scan() {
        let (n, dim) = (100, 8);
        let matrix = unit_rows(n, dim, 3);
        let m = QuantizedMatrix::from_rows(&matrix, dim).expect("valid");
        let kernel = Kernel::Scalar;
        for (query, k, reason) in [
            (vec![0.0; dim], 3, F32Reason::QueryOutOfRange),
            (vec![1e-20; dim], 3, F32Reason::QueryOutOfRange),
            (unit_rows(1, dim, 4), 50, F32Reason::LargeK),
        ] {
            let got = top_k_with(kernel, Int8Kernel::Scalar, &m, &matrix, &query, k, None);

            assert_eq!(got.rescore.path, ScanPath::F32(reason));
            assert_eq!(got.rescore.rows, n);
            assert_eq!(got.hits, super::super::top_k_with(kernel, &matrix, &query, k, None));
        }
    }

    #[test]
    fn identical_rows_overflow_to_the_f32_scan_and_keep_the_tie_rule() {
        let row = unit_rows(1, 16, 3);
        let matrix: Vec<f32> = row.iter().copied().cycle().take(16 * 1000).collect();
        let m = QuantizedMatrix::from_rows(&matrix, 16).expect("valid");

        let got = top_k_with(Kernel::Scalar, Int8Kernel::Scalar, &m, &matrix, &row, 3, None);

        assert_eq!(got.rescore.path, ScanPath::F32(F32Reason::TooManyCandidates));
        assert_eq!(got.hits.iter().map(|h| h.row).collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
