//! The in-memory index: one contiguous row-major matrix of unit vectors with
//! the documents' metadata beside it.
//!
//! Invariants, checked in [`Index::new`]: rows are unit length (the loader
//! normalised them), there is one [`Document`] per row, and row order is
//! ascending id order (byte-wise), which is what makes the tie rule in
//! `search::topk` a row comparison and id look-up a binary search.
//! An `Index` is immutable; [`shared::SharedIndex`] swaps whole snapshots.

pub mod shared;

use std::time::{Duration, SystemTime};

use ndarray::Array2;
use thiserror::Error;

pub use shared::SharedIndex;

use crate::store::loader::LoadReport;

/// Why an index could not be assembled. These are programming errors in the
/// loader, surfaced rather than hidden.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("matrix has {rows} rows but {docs} documents were given")]
    RowCountMismatch { rows: usize, docs: usize },
    #[error("document ids must be unique and ascending; {id:?} is out of order")]
    UnsortedIds { id: String },
}

/// One searchable document. `url` is stored only when it differs from the id
/// (for the chatbot the id *is* the URL), to keep metadata small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: Box<str>,
    pub url: Option<Box<str>>,
    pub title: Option<Box<str>>,
    pub text: Option<Box<str>>,
}

impl Document {
    /// The article URL: the stored one, else the id.
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(&self.id)
    }

    fn heap_bytes(&self) -> usize {
        let len = |s: &Option<Box<str>>| s.as_ref().map_or(0, |s| s.len());
        self.id.len() + len(&self.url) + len(&self.title) + len(&self.text)
    }
}

/// An immutable snapshot of every loaded document.
#[derive(Debug)]
pub struct Index {
    matrix: Array2<f32>,
    docs: Vec<Document>,
    version: u64,
    loaded_at: SystemTime,
    /// How this snapshot was built (counts, skips, duration): what `/v1/stats` shows.
    pub report: LoadReport,
}

impl Index {
    /// Assembles a snapshot. `matrix` is `docs.len() × dim`; for an empty
    /// index `dim` may be 0 (no valid value seen and none configured).
    ///
    /// # Errors
    /// [`IndexError`] when rows and documents disagree or ids are unsorted.
    pub fn new(matrix: Array2<f32>, docs: Vec<Document>, report: LoadReport) -> Result<Self, IndexError> {
        if matrix.nrows() != docs.len() {
            return Err(IndexError::RowCountMismatch { rows: matrix.nrows(), docs: docs.len() });
        }
        if let Some(w) = docs.windows(2).find(|w| w[0].id >= w[1].id) {
            return Err(IndexError::UnsortedIds { id: w[1].id.to_string() });
        }
        let matrix = if matrix.is_standard_layout() { matrix } else { matrix.as_standard_layout().into_owned() };
        Ok(Self { matrix, docs, version: 0, loaded_at: SystemTime::now(), report })
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Vector dimension; 0 for an empty index with no configured dimension.
    pub fn dim(&self) -> usize {
        self.matrix.ncols()
    }

    /// The matrix as one contiguous row-major slice, for the search kernels.
    pub fn rows(&self) -> &[f32] {
        self.matrix.as_slice().expect("Index::new stores the matrix in standard layout")
    }

    /// The unit vector of one row.
    pub fn row(&self, row: usize) -> &[f32] {
        let dim = self.dim();
        &self.rows()[row * dim..(row + 1) * dim]
    }

    pub fn doc(&self, row: usize) -> &Document {
        &self.docs[row]
    }

    /// Row of the document with this id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.docs.binary_search_by(|d| (*d.id).cmp(id)).ok()
    }

    /// Set by [`SharedIndex::replace`]; starts at 1 and grows by one per swap.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Bytes of the vector matrix.
    pub fn matrix_bytes(&self) -> usize {
        self.matrix.len() * std::mem::size_of::<f32>()
    }

    /// Bytes of metadata: strings plus the per-document headers.
    pub fn metadata_bytes(&self) -> usize {
        self.docs.iter().map(Document::heap_bytes).sum::<usize>()
            + self.docs.capacity() * std::mem::size_of::<Document>()
    }

    pub fn load_duration(&self) -> Duration {
        self.report.duration
    }

    pub(crate) fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Document {
        Document { id: id.into(), url: None, title: None, text: None }
    }

    #[test]
    fn rejects_unsorted_ids() {
        let m = Array2::zeros((2, 1));
        let got = Index::new(m, vec![doc("b"), doc("a")], LoadReport::default());
        assert!(matches!(got, Err(IndexError::UnsortedIds { .. })));
    }

    #[test]
    fn rejects_row_count_mismatch() {
        let got = Index::new(Array2::zeros((1, 1)), vec![], LoadReport::default());
        assert!(matches!(got, Err(IndexError::RowCountMismatch { rows: 1, docs: 0 })));
    }

    #[test]
    fn find_uses_id_order() {
        let m = Array2::from_shape_vec((3, 1), vec![1.0, 1.0, 1.0]).expect("3x1");
        let idx = Index::new(m, vec![doc("a"), doc("b"), doc("c")], LoadReport::default()).expect("valid");
        assert_eq!(idx.find("b"), Some(1));
        assert_eq!(idx.find("x"), None);
        assert_eq!(idx.doc(2).url(), "c");
    }
}
