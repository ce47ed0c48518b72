//! What a scan reads ([`Matrix`]), what it is asked ([`ScanRequest`] of
//! [`ScanQuery`]s, with [`Forced`] choices for benches and tests) and what
//! it answers ([`ScanAnswer`]). Plain data; [`crate::top_k`] does the work.

use roaring::RoaringBitmap;

use crate::{
    filter::FilterPath,
    int8::{kernel::Int8Kernel, QuantizedMatrix},
    kernel::F32Kernel,
    mode::ScanPath,
    topk::Hit,
};

/// The rows a scan reads: `n × dim` unit f32 rows, row-major, and
/// optionally their int8 copy, which the scan then reads instead (same
/// answers, a quarter of the bytes: see [`crate::int8`]).
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    rows: &'a [f32],
    dim: usize,
    int8: Option<&'a QuantizedMatrix>,
}

impl<'a> Matrix<'a> {
    /// `rows.len() / dim` rows of `dim` floats.
    ///
    /// # Panics
    /// If `rows.len()` is not a multiple of `dim`, or `dim` is 0 and `rows`
    /// is not empty (an index invariant).
    pub fn new(rows: &'a [f32], dim: usize) -> Self {
        let whole = if dim == 0 { rows.is_empty() } else { rows.len().is_multiple_of(dim) };
        assert!(whole, "{} floats are not whole rows of {dim}", rows.len());
        Self { rows, dim, int8: None }
    }

    /// These rows, scanned through `copy` (built from them by
    /// [`QuantizedMatrix::from_rows`]).
    ///
    /// # Panics
    /// If `copy` has another shape. A copy of the same shape built from
    /// other rows gives wrong answers (not unsafe ones).
    pub fn with_int8(self, copy: &'a QuantizedMatrix) -> Self {
        assert!(copy.dim() == self.dim && copy.len() == self.len(), "the int8 copy is of these rows");
        Self { int8: Some(copy), ..self }
    }

    /// Rows held.
    pub fn len(&self) -> usize {
        self.rows.len().checked_div(self.dim).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The f32 rows, row-major.
    pub fn rows(&self) -> &'a [f32] {
        self.rows
    }

    /// The int8 copy, if the scan reads through one.
    pub fn int8(&self) -> Option<&'a QuantizedMatrix> {
        self.int8
    }
}

/// One query of a [`ScanRequest`]. `Default` is an empty query (k = 0, no
/// floor, nothing excluded, every row), so tests and benches write only
/// the fields they set.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScanQuery<'a> {
    /// Unit length, so a dot product is the cosine; the matrix's dimension.
    pub vector: &'a [f32],
    /// Hits wanted at most.
    pub k: usize,
    /// Only scores `>=` this are returned. A NaN floor is no floor.
    pub min_score: Option<f32>,
    /// One more row this query never returns, beyond the request's
    /// `excluded` (an `id` query's own document). Skipped by the scan
    /// itself, so the query still gets k other rows.
    pub exclude: Option<u32>,
    /// Only these rows are candidates (the rows a filter matches); `None`
    /// is every row. Rows past the end of the matrix are ignored.
    pub among: Option<&'a RoaringBitmap>,
}

/// Queries to answer over one [`Matrix`]. Unfiltered queries share one
/// pass over the rows; see [`crate::top_k`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanRequest<'a> {
    pub queries: &'a [ScanQuery<'a>],
    /// Rows no query returns, strictly ascending: the scan answers as if
    /// they were not in the matrix (a segment's tombstones and expired
    /// rows), at no cost beyond marking them.
    pub excluded: &'a [u32],
    /// Choices a bench or test makes instead of the scan; production passes
    /// `Forced::default()`, which forces nothing.
    pub forced: Forced,
}

/// What a bench or test fixes instead of letting the scan choose. Nothing
/// here changes an answer (every kernel, split and path returns the same
/// hits; kernels differ only by f32 rounding), only which code computes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forced {
    /// The f32 kernel; `None`: the process-wide one ([`crate::kernel::active`]).
    pub kernel: Option<F32Kernel>,
    /// The int8 kernel; `None`: the process-wide one ([`crate::int8::kernel::active`]).
    pub int8_kernel: Option<Int8Kernel>,
    /// How rows are cut into tasks; `None`: by size (parallel from
    /// `PARALLEL_MIN_FLOATS` floats on).
    pub split: Option<Split>,
    /// The filtered scan's path; `None`: by selectivity ([`FilterPath::choose`]).
    pub filter_path: Option<FilterPath>,
    /// Whether the int8 scan hands a query to the f32 scan when rescoring
    /// would cost about as much (`k > n / 8`, too many candidates). `true`
    /// in production; tests turn it off to drive the rescoring through
    /// degenerate data.
    pub int8_fallbacks: bool,
}

impl Default for Forced {
    /// Nothing forced: what production runs.
    fn default() -> Self {
        Self { kernel: None, int8_kernel: None, split: None, filter_path: None, int8_fallbacks: true }
    }
}

/// A fixed cut of the rows into tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Rows per task (rounded up to whole 16-row panels by the int8 scan,
    /// whose sequential pass also walks blocks of this size).
    pub block_rows: usize,
    /// Whether the tasks run on the rayon pool or one after another on the
    /// calling thread.
    pub parallel: bool,
}

impl Split {
    /// The blocks the scan would choose for rows of `dim` floats, walked
    /// one after another on the calling thread: for a caller that scans a
    /// small matrix where it stands (`index::coalesce`), so the scan never
    /// forks onto the rayon pool behind its back.
    pub fn on_caller(dim: usize) -> Self {
        Self {
            block_rows: (crate::BLOCK_BYTES / (dim.max(1) * std::mem::size_of::<f32>())).max(crate::SCORE_ROWS),
            parallel: false,
        }
    }
}

/// One query's answer, and which path computed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanAnswer {
    /// Best first under the tie rule: the f32 scan's rows and score bits,
    /// whichever path ran (see the crate docs).
    pub hits: Vec<Hit>,
    pub path: ScanPath,
    /// Rows whose f32 score was computed after the int8 pass: the
    /// candidates rescored before the stop rule, or every row when the f32
    /// scan answered a query of an int8 copy. 0 on [`ScanPath::F32`].
    pub rescored_rows: usize,
    /// Rows whose upper bound reached the final cut of the int8 pass (every
    /// row for a fallback). 0 on [`ScanPath::F32`].
    pub candidates: usize,
}

impl ScanAnswer {
    /// An answer of the f32 scan alone.
    pub fn f32(hits: Vec<Hit>) -> Self {
        Self { hits, path: ScanPath::F32, rescored_rows: 0, candidates: 0 }
    }
}
