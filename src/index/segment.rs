//! [`Segment`]: one immutable run of rows in ascending id order, with its
//! documents, deadlines and (for a base built for int8) its int8 copy.
//!
//! An [`super::Index`] is a base segment shared by `Arc` between snapshots
//! plus a small delta segment rebuilt by each per-key update (see
//! [`super::delta`]). Row numbers here are local to the segment; the index
//! maps them to the row numbers of its merged, id-ordered view.

use std::sync::Arc;

use ndarray::Array2;
use tracing::warn;

use super::{Document, IndexError};
use semsearch_scan::{self as search, int8, int8::QuantizedMatrix, Answer, BatchQuery, Scan};

/// Rows, documents and deadlines of one segment. Immutable once built.
#[derive(Debug)]
pub struct Segment {
    matrix: Array2<f32>,
    /// The int8 copy of `matrix`, when this segment is scanned as int8.
    int8: Option<QuantizedMatrix>,
    docs: Vec<Arc<Document>>,
    /// Every document deadline, ascending.
    deadlines: Vec<u64>,
    /// Sum of the documents' heap bytes, computed once: `/metrics` reads it
    /// on every scrape.
    metadata_bytes: usize,
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
        let mut deadlines: Vec<u64> = docs.iter().filter_map(|d| d.expires_at_ms).collect();
        deadlines.sort_unstable();
        let metadata_bytes =
            docs.iter().map(|d| d.heap_bytes()).sum::<usize>() + docs.capacity() * std::mem::size_of::<Arc<Document>>();
        Ok(Self { matrix, int8: None, docs, deadlines, metadata_bytes })
    }

    /// An empty segment of dimension `dim`.
    pub fn empty(dim: usize) -> Self {
        Self { matrix: Array2::zeros((0, dim)), int8: None, docs: Vec::new(), deadlines: Vec::new(), metadata_bytes: 0 }
    }

    /// Builds (or drops) the int8 copy so this segment is scanned as `scan`.
    /// CPU work on rayon (see [`super::Index::with_scan`]).
    pub fn set_scan(&mut self, scan: Scan) {
        if scan == self.scan() {
            return;
        }
        self.int8 = match scan {
            Scan::F32 => None,
            Scan::Int8 => match QuantizedMatrix::from_rows(self.rows(), self.dim()) {
                Ok(q) => Some(q),
                Err(e) => {
                    // Unreachable for a loader-built index (dimensions are bounded
                    // there); scanning f32 is the safe answer either way.
                    warn!(error.message = %e, "no int8 copy; this index scans f32");
                    None
                }
            },
        };
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
        }
    }

    pub fn scan(&self) -> Scan {
        if self.int8.is_some() {
            Scan::Int8
        } else {
            Scan::F32
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

    pub fn deadlines(&self) -> &[u64] {
        &self.deadlines
    }

    pub fn matrix_bytes(&self) -> usize {
        self.matrix.len() * std::mem::size_of::<f32>()
    }

    pub fn int8_bytes(&self) -> usize {
        self.int8.as_ref().map_or(0, QuantizedMatrix::heap_bytes)
    }

    pub fn metadata_bytes(&self) -> usize {
        self.metadata_bytes
    }

    /// One answer per query with segment-local rows: `search::top_k` over
    /// this segment's rows, through the int8 copy when there is one. The
    /// segment must not be empty.
    pub fn search(&self, queries: &[BatchQuery<'_>]) -> Vec<Answer> {
        let rows = self.rows();
        match (&self.int8, queries) {
            (Some(q8), [one]) => {
                let a = int8::top_k(q8, rows, one.vector, one.k, one.min_score);
                vec![Answer { hits: a.hits, rescore: Some(a.rescore) }]
            }
            (Some(q8), _) => int8::top_k_batch(q8, rows, queries)
                .into_iter()
                .map(|a| Answer { hits: a.hits, rescore: Some(a.rescore) })
                .collect(),
            (None, [one]) => {
                vec![Answer { hits: search::top_k(rows, one.vector, one.k, one.min_score), rescore: None }]
            }
            (None, _) => {
                search::top_k_batch(rows, queries).into_iter().map(|hits| Answer { hits, rescore: None }).collect()
            }
        }
    }

    /// [`Segment::search`] as if the `excluded` rows (strictly ascending,
    /// the tombstones of a snapshot) were not there: no hit is excluded,
    /// and each answer is what the segment without them would return.
    /// Through the int8 copy an excluded row costs nothing extra
    /// (`int8::top_k_batch_excluding`); the f32 scan over-fetches
    /// (`search::top_k_batch_excluding_with`).
    pub fn search_excluding(&self, queries: &[BatchQuery<'_>], excluded: &[u32]) -> Vec<Answer> {
        if excluded.is_empty() {
            return self.search(queries);
        }
        if let Some(q8) = &self.int8 {
            return int8::top_k_batch_excluding(q8, self.rows(), queries, excluded)
                .into_iter()
                .map(|a| Answer { hits: a.hits, rescore: Some(a.rescore) })
                .collect();
        }
        search::top_k_batch_excluding_with(search::kernel::active(), self.rows(), queries, excluded)
            .into_iter()
            .map(|hits| Answer { hits, rescore: None })
            .collect()
    }
}
