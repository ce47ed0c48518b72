//! The in-memory index: one contiguous row-major matrix of unit vectors with
//! the documents' metadata beside it.
//!
//! Invariants, checked in [`Index::new`]: rows are unit length (the loader
//! normalised them), there is one [`Document`] per row, and row order is
//! ascending id order (byte-wise), which is what makes the tie rule in
//! `search::topk` a row comparison and id look-up a binary search.
//! An `Index` is immutable; [`shared::SharedIndex`] swaps whole snapshots,
//! and [`Index::apply`] builds the next snapshot from a few changed documents.
//!
//! This module knows nothing of Redis: `store` builds indexes with
//! [`IndexBuilder`] and keeps its own account of keys (the loader's
//! load report); ids here are plain document ids.
//!
//! Expiry: each document carries the deadline Redis will expire its key at
//! (read with PTTL at load). A document past its deadline is never returned,
//! even before Redis reclaims the key: searches ask for `k` plus the number
//! of rows already expired ([`Index::expired_count`]) and drop those rows.
//!
//! Scan copy: an index built for `ScanMode` int8 (see `search::scan`) also
//! holds an int8 copy of its rows ([`Index::with_scan`]), and [`search`]
//! answers queries through it; answers are the f32 scan's either way.

pub mod attributes;
pub mod builder;
pub mod filtered;
pub mod search;
pub mod shared;
pub mod unit;

use std::{
    collections::HashSet,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use ndarray::Array2;
use thiserror::Error;
use tracing::warn;

use crate::search::{int8::QuantizedMatrix, Scan, ScanMode};

pub use builder::IndexBuilder;
pub use shared::SharedIndex;

/// Why an index could not be assembled. These are programming errors in the
/// loader, surfaced rather than hidden.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("matrix has {rows} rows but {docs} documents were given")]
    RowCountMismatch { rows: usize, docs: usize },
    #[error("document ids must be unique and ascending; {id:?} is out of order")]
    UnsortedIds { id: String },
    #[error("cannot merge rows of dimension {got} into an index of dimension {expected}")]
    DimensionMismatch { expected: usize, got: usize },
}

/// One searchable document. `url` is stored only when it differs from the id
/// (for the chatbot the id *is* the URL), to keep metadata small.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub id: Box<str>,
    pub url: Option<Box<str>>,
    pub title: Option<Box<str>>,
    pub text: Option<Box<str>>,
    /// Unix time in ms at which Redis expires the key (conservatively early);
    /// `None` for keys without a TTL.
    pub expires_at_ms: Option<u64>,
    /// Extra scalar fields of the stored value, for filters (`attributes`).
    pub attributes: attributes::DocAttributes,
}

impl Document {
    /// The article URL: the stored one, else the id.
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(&self.id)
    }

    fn heap_bytes(&self) -> usize {
        let len = |s: &Option<Box<str>>| s.as_ref().map_or(0, |s| s.len());
        self.id.len()
            + len(&self.url)
            + len(&self.title)
            + len(&self.text)
            + self.attributes.heap_bytes()
            + std::mem::size_of::<Self>()
    }
}

/// Current Unix time in ms, the clock document expiry is measured on.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// An immutable snapshot of every loaded document.
#[derive(Debug)]
pub struct Index {
    matrix: Array2<f32>,
    /// The int8 copy of `matrix` the scan reads when `scan_mode` resolves
    /// to int8 for this index; built by [`Index::with_scan`], on rayon.
    int8: Option<QuantizedMatrix>,
    /// What the operator asked for; kept so the snapshots [`Index::apply`]
    /// builds from this one are scanned the same way.
    scan_mode: ScanMode,
    /// Shared with the snapshots built from this one by [`Index::apply`], so a
    /// per-key update copies pointers, not article texts.
    docs: Vec<Arc<Document>>,
    /// Every document deadline, ascending, for [`Index::expired_count`].
    deadlines: Vec<u64>,
    /// Posting lists of the documents' attributes, for filtered search.
    attributes: attributes::Attributes,
    version: u64,
    loaded_at: SystemTime,
}

/// What [`Index::apply`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
}

impl Index {
    /// Assembles a snapshot. `matrix` is `docs.len() × dim`; for an empty
    /// index `dim` may be 0 (no valid value seen and none configured).
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
        let attributes = attributes::Attributes::build(&docs);
        Ok(Self {
            matrix,
            int8: None,
            scan_mode: ScanMode::F32,
            docs,
            deadlines,
            attributes,
            version: 0,
            loaded_at: SystemTime::now(),
        })
    }

    /// This index, scanned as `mode` asks: with an int8 copy of the rows
    /// when `mode` resolves to int8 for this size and CPU
    /// ([`ScanMode::resolve`]), without one otherwise.
    ///
    /// CPU work (766 ms at 1M × 384): quantizes on the rayon pool, so call
    /// it from rayon or a blocking thread, never from a tokio worker.
    pub fn with_scan(mut self, mode: ScanMode) -> Self {
        self.scan_mode = mode;
        let wanted = mode.resolve(self.len(), self.dim());
        if wanted == self.scan() {
            return self;
        }
        self.int8 = match wanted {
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
        self
    }

    /// What this snapshot is scanned with.
    pub fn scan(&self) -> Scan {
        if self.int8.is_some() {
            Scan::Int8
        } else {
            Scan::F32
        }
    }

    /// What the operator asked for (`SEMSEARCH_SCAN`).
    pub fn scan_mode(&self) -> ScanMode {
        self.scan_mode
    }

    /// Bytes of the int8 copy; 0 when this snapshot scans f32.
    pub fn int8_bytes(&self) -> usize {
        self.int8.as_ref().map_or(0, QuantizedMatrix::heap_bytes)
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

    /// The first row whose id sorts after `id` (`len()` if none): where a
    /// walk over the documents in id order resumes.
    pub fn first_row_after(&self, id: &str) -> usize {
        self.docs.partition_point(|d| *d.id <= *id)
    }

    /// How many documents are past their deadline at `now_ms`: a search must
    /// look at that many extra candidates to still fill k.
    pub fn expired_count(&self, now_ms: u64) -> usize {
        self.deadlines.partition_point(|&t| t <= now_ms)
    }

    /// Whether a row's key has expired in Redis by `now_ms`.
    pub fn is_expired(&self, row: usize, now_ms: u64) -> bool {
        self.docs[row].expires_at_ms.is_some_and(|t| t <= now_ms)
    }

    /// The earliest document deadline, for the expiry sweep.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.deadlines.first().copied()
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
        self.docs.iter().map(|d| d.heap_bytes()).sum::<usize>()
            + self.docs.capacity() * std::mem::size_of::<Arc<Document>>()
    }

    pub(crate) fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// The next snapshot after re-reading the documents `changed_ids`.
    ///
    /// `fresh` holds what those documents are now: its rows replace or add
    /// documents, and a changed id absent from `fresh` was deleted (or is no
    /// longer valid). Rows of unchanged documents are copied; their
    /// [`Document`]s are shared, not cloned. The result is scanned like
    /// this index (its int8 copy, if any, is rebuilt: CPU work, see
    /// [`Index::with_scan`]).
    ///
    /// # Errors
    /// [`IndexError::DimensionMismatch`] if `fresh` has another dimension.
    pub fn apply(&self, fresh: &Index, changed_ids: &HashSet<&str>) -> Result<(Index, ApplyCounts), IndexError> {
        let dim = if self.dim() == 0 { fresh.dim() } else { self.dim() };
        if !fresh.is_empty() && fresh.dim() != dim {
            return Err(IndexError::DimensionMismatch { expected: dim, got: fresh.dim() });
        }
        let mut counts = ApplyCounts::default();
        for id in changed_ids {
            match (self.find(id).is_some(), fresh.find(id).is_some()) {
                (false, true) => counts.added += 1,
                (true, true) => counts.updated += 1,
                (true, false) => counts.removed += 1,
                (false, false) => {}
            }
        }

        // Merge two id-sorted row lists, dropping every changed id from the old one.
        let mut merged = IndexBuilder::new(dim);
        merged.reserve(self.len() + fresh.len());
        let (mut i, mut j) = (0, 0);
        while i < self.len() || j < fresh.len() {
            let take_old = match (self.docs.get(i), fresh.docs.get(j)) {
                (Some(old), Some(new)) => old.id < new.id,
                (Some(_), None) => true,
                _ => false,
            };
            if take_old {
                if !changed_ids.contains(&*self.docs[i].id) {
                    merged.push(Arc::clone(&self.docs[i]), self.row(i));
                }
                i += 1;
            } else {
                // Only documents that changed come from `fresh`: an unchanged
                // one re-read with them keeps its old row (pushing both would
                // duplicate its id).
                if changed_ids.contains(&*fresh.docs[j].id) {
                    merged.push(Arc::clone(&fresh.docs[j]), fresh.row(j));
                }
                j += 1;
            }
        }
        Ok((merged.finish()?.with_scan(self.scan_mode), counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Arc<Document> {
        Arc::new(Document {
            id: id.into(),
            url: None,
            title: None,
            text: None,
            expires_at_ms: None,
            attributes: Default::default(),
        })
    }

    fn index(rows: &[(&str, [f32; 2])]) -> Index {
        let floats: Vec<f32> = rows.iter().flat_map(|(_, v)| *v).collect();
        let m = Array2::from_shape_vec((rows.len(), 2), floats).expect("n x 2");
        Index::new(m, rows.iter().map(|(id, _)| doc(id)).collect()).expect("valid")
    }

    #[test]
    fn rejects_unsorted_ids() {
        let m = Array2::zeros((2, 1));
        let got = Index::new(m, vec![doc("b"), doc("a")]);
        assert!(matches!(got, Err(IndexError::UnsortedIds { .. })));
    }

    #[test]
    fn rejects_row_count_mismatch() {
        let got = Index::new(Array2::zeros((1, 1)), vec![]);
        assert!(matches!(got, Err(IndexError::RowCountMismatch { rows: 1, docs: 0 })));
    }

    #[test]
    fn find_uses_id_order() {
        let idx = index(&[("a", [1.0, 0.0]), ("b", [1.0, 0.0]), ("c", [1.0, 0.0])]);
        assert_eq!(idx.find("b"), Some(1));
        assert_eq!(idx.find("x"), None);
        assert_eq!(idx.doc(2).url(), "c");
    }

    #[test]
    fn apply_adds_updates_and_removes_in_id_order() {
        // Arrange
        let old = index(&[("a", [1.0, 0.0]), ("c", [0.0, 1.0]), ("e", [1.0, 0.0])]);
        let fresh = index(&[("b", [0.6, 0.8]), ("c", [0.8, 0.6])]);
        let changed: HashSet<&str> = ["b", "c", "e"].into_iter().collect();

        // Act
        let (new, counts) = old.apply(&fresh, &changed).expect("same dim");

        // Assert
        assert_eq!(counts, ApplyCounts { added: 1, updated: 1, removed: 1 });
        let ids: Vec<&str> = (0..new.len()).map(|r| &*new.doc(r).id).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(new.row(2), &[0.8, 0.6]);
        assert_eq!(new.row(0), &[1.0, 0.0]);
    }

    #[test]
    fn apply_keeps_an_unchanged_re_read_document_once() {
        let old = index(&[("a", [1.0, 0.0]), ("b", [0.0, 1.0])]);
        let fresh = index(&[("a", [1.0, 0.0]), ("b", [0.6, 0.8])]);
        let changed: HashSet<&str> = ["b"].into_iter().collect();

        let (new, counts) = old.apply(&fresh, &changed).expect("ids stay unique and sorted");

        assert_eq!(counts, ApplyCounts { added: 0, updated: 1, removed: 0 });
        assert_eq!(new.len(), 2);
        assert_eq!(new.row(1), &[0.6, 0.8]);
    }

    #[test]
    fn expired_rows_are_counted_and_flagged() {
        let mut a = (*doc("a")).clone();
        a.expires_at_ms = Some(1_000);
        let mut b = (*doc("b")).clone();
        b.expires_at_ms = Some(5_000);
        let m = Array2::from_shape_vec((3, 1), vec![1.0; 3]).expect("3x1");
        let idx = Index::new(m, vec![Arc::new(a), Arc::new(b), doc("c")]).expect("valid");
        assert_eq!((idx.expired_count(999), idx.expired_count(1_000), idx.expired_count(10_000)), (0, 1, 2));
        assert!(idx.is_expired(0, 1_000) && !idx.is_expired(1, 1_000) && !idx.is_expired(2, u64::MAX));
        assert_eq!(idx.next_deadline_ms(), Some(1_000));
    }
}
