//! [`Segment`]: one immutable run of rows in ascending id order, with its
//! documents, their [`Deadline`]s and (for a base built for int8) its int8
//! copy.
//!
//! An [`super::Index`] is a base segment shared by `Arc` between snapshots
//! plus a small delta segment rebuilt by each per-key update (see
//! [`super::delta`]). Row numbers here are local to the segment; the index
//! maps them to the row numbers of its merged, id-ordered view.

use std::sync::Arc;

use ndarray::Array2;
use tracing::warn;

use super::{lexical::SegmentLexical, Document, IndexError};
use semsearch_scan::{int8::QuantizedMatrix, Matrix, ScanAnswer, ScanPath, ScanRequest};

/// When one row's key expires in Redis: what lets a search find the rows
/// past their deadline without walking every document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Deadline {
    /// Unix time in ms (the document's `expires_at_ms`).
    pub at_ms: u64,
    /// Segment-local row.
    pub row: u32,
}

/// Rows, documents and deadlines of one segment. Immutable once built.
#[derive(Debug)]
pub struct Segment {
    matrix: Array2<f32>,
    /// The int8 copy of `matrix`, when this segment is scanned as int8.
    int8: Option<QuantizedMatrix>,
    docs: Vec<Arc<Document>>,
    /// The deadline of every document that has one, ascending by time
    /// then row.
    deadlines: Vec<Deadline>,
    /// Sum of the documents' heap bytes, computed once: `/metrics` reads it
    /// on every scrape.
    metadata_bytes: usize,
    /// The postings and vector sums of the lexical side, once built
    /// (`Index::with_lexical`); shared by the copies `clone_rows` makes.
    lexical: Option<Arc<SegmentLexical>>,
}

/// A retiring segment's matrix and int8 codes become the next load's
/// buffers ([`super::spare`]), when they are large enough to be worth
/// keeping.
impl Drop for Segment {
    fn drop(&mut self) {
        // The spare decides what is worth keeping; taking the buffers out allocates nothing.
        if let Some(int8) = self.int8.take() {
            super::spare::CODES.keep(int8.into_code_buffer());
        }
        let matrix = std::mem::replace(&mut self.matrix, Array2::zeros((0, 0)));
        if let (floats, None | Some(0)) = matrix.into_raw_vec_and_offset() {
            super::spare::MATRIX.keep(floats);
        }
    }
}

impl Segment {
    /// Validates and assembles a segment (see [`super::Index::new`]).
    ///
    /// # Errors
    /// [`IndexError`] when rows and documents disagree or ids are unsorted.
    pub fn new(matrix: Array2<f32>, docs: Vec<Arc<Document>>) -> Result<Self, IndexError> {
        if matrix.nrows() != docs.len() {
            return Err(IndexError::RowCountMismatch { rows: matrix.nrows(), docs: docs.len() });
        }
        if let Some(w) = docs.windows(2).find(|w| w[0].id >= w[1].id) {
            return Err(IndexError::UnsortedIds { id: w[1].id.to_string() });
        }
        let matrix = if matrix.is_standard_layout() { matrix } else { matrix.as_standard_layout().into_owned() };
        let mut deadlines: Vec<Deadline> = docs
            .iter()
            .enumerate()
            .filter_map(|(row, d)| d.expires_at_ms.map(|at_ms| Deadline { at_ms, row: row as u32 }))
            .collect();
        deadlines.sort_unstable();
        let metadata_bytes =
            docs.iter().map(|d| d.heap_bytes()).sum::<usize>() + docs.capacity() * std::mem::size_of::<Arc<Document>>();
        Ok(Self { matrix, int8: None, docs, deadlines, metadata_bytes, lexical: None })
    }

    /// An empty segment of dimension `dim`.
    pub fn empty(dim: usize) -> Self {
        Self {
            matrix: Array2::zeros((0, dim)),
            int8: None,
            docs: Vec::new(),
            deadlines: Vec::new(),
            metadata_bytes: 0,
            lexical: None,
        }
    }

    /// Builds (or drops) the int8 copy so this segment is scanned on
    /// `path` ([`ScanPath::Int8`] or [`ScanPath::F32`]). CPU work on rayon
    /// (see [`super::Index::with_scan`]).
    pub fn set_scan(&mut self, path: ScanPath) {
        if path == self.scan() {
            return;
        }
        self.int8 = match path {
            ScanPath::Int8 => match QuantizedMatrix::from_rows(self.rows(), self.dim()) {
                Ok(q) => Some(q),
                Err(e) => {
                    // Unreachable for a loader-built index (dimensions are bounded
                    // there); scanning f32 is the safe answer either way.
                    warn!(error.message = %e, "no int8 copy; this index scans f32");
                    None
                }
            },
            _ => None,
        };
    }

    /// Attaches `int8`, the int8 copy of exactly these rows made beforehand
    /// (`QuantizedBuilder`, as the loader reads); the segment is then scanned on
    /// [`ScanPath::Int8`].
    pub fn set_int8(&mut self, int8: QuantizedMatrix) {
        debug_assert_eq!((int8.len(), int8.dim()), (self.len(), self.dim()), "a copy of these rows");
        self.int8 = Some(int8);
    }

    /// A copy of this segment's rows and documents without the int8 copy
    /// (for [`super::Index::with_scan`] on a base other snapshots share).
    pub fn clone_rows(&self) -> Self {
        Self {
            matrix: self.matrix.clone(),
            int8: None,
            docs: self.docs.clone(),
            deadlines: self.deadlines.clone(),
            metadata_bytes: self.metadata_bytes,
            lexical: self.lexical.clone(),
        }
    }

    /// The lexical side of this segment, once built.
    pub fn lexical(&self) -> Option<&SegmentLexical> {
        self.lexical.as_deref()
    }

    /// Attaches this segment's lexical side (built from its documents, rows in order).
    pub fn set_lexical(&mut self, part: SegmentLexical) {
        self.lexical = Some(Arc::new(part));
    }

    /// [`ScanPath::Int8`] when this segment holds an int8 copy, else [`ScanPath::F32`].
    pub fn scan(&self) -> ScanPath {
        if self.int8.is_some() {
            ScanPath::Int8
        } else {
            ScanPath::F32
        }
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.matrix.ncols()
    }

    /// The matrix as one contiguous row-major slice, for the search kernels.
    pub fn rows(&self) -> &[f32] {
        self.matrix.as_slice().expect("Segment::new stores the matrix in standard layout")
    }

    pub fn row(&self, row: usize) -> &[f32] {
        let dim = self.dim();
        &self.rows()[row * dim..(row + 1) * dim]
    }

    pub fn doc(&self, row: usize) -> &Document {
        &self.docs[row]
    }

    pub fn docs(&self) -> &[Arc<Document>] {
        &self.docs
    }

    /// `Ok(row)` of the document with this id, else `Err(rows with a smaller id)`.
    pub fn find(&self, id: &str) -> Result<usize, usize> {
        self.docs.binary_search_by(|d| (*d.id).cmp(id))
    }

    /// Rows whose id sorts at or before `id`.
    pub fn rows_through(&self, id: &str) -> usize {
        self.docs.partition_point(|d| *d.id <= *id)
    }

    /// Every deadline, ascending by time then row.
    pub fn deadlines(&self) -> &[Deadline] {
        &self.deadlines
    }

    /// Rows past their deadline at `now_ms` (deadline ≤ now), ascending:
    /// O(expired × log expired), however many rows the segment holds.
    pub fn expired_rows(&self, now_ms: u64) -> Vec<u32> {
        let upto = self.deadlines.partition_point(|d| d.at_ms <= now_ms);
        let mut rows: Vec<u32> = self.deadlines[..upto].iter().map(|d| d.row).collect();
        rows.sort_unstable();
        rows
    }

    pub fn matrix_bytes(&self) -> usize {
        self.matrix.len() * std::mem::size_of::<f32>()
    }

    pub fn int8_bytes(&self) -> usize {
        self.int8.as_ref().map_or(0, QuantizedMatrix::heap_bytes)
    }

    /// What a load of as many rows asks the spares for: matrix floats and
    /// int8 code bytes (0 without an int8 copy).
    pub fn load_buffer_sizes(&self) -> (usize, usize) {
        (self.matrix.len(), self.int8.as_ref().map_or(0, QuantizedMatrix::code_buffer_need))
    }

    pub fn metadata_bytes(&self) -> usize {
        self.metadata_bytes
    }

    /// The rows for the scan: through the int8 copy when there is one.
    pub fn matrix(&self) -> Matrix<'_> {
        let matrix = Matrix::new(self.rows(), self.dim());
        match &self.int8 {
            Some(copy) => matrix.with_int8(copy),
            None => matrix,
        }
    }

    /// One answer per query of `request`, in segment-local rows: the scan
    /// of this segment's [`Segment::matrix`] (see `semsearch_scan::top_k`).
    pub fn search(&self, request: &ScanRequest<'_>) -> Vec<ScanAnswer> {
        semsearch_scan::top_k(self.matrix(), request)
    }
}
