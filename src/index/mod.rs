//! The in-memory index: unit vectors with the documents' metadata beside
//! them, as an immutable snapshot of segments.
//!
//! Invariants, checked in [`Index::new`]: rows are unit length (the loader
//! normalised them), there is one [`Document`] per row, and row order is
//! ascending id order (byte-wise), which is what makes the tie rule in
//! `semsearch_scan::topk` a row comparison and id look-up a binary search.
//! An `Index` is immutable; [`shared::SharedIndex`] swaps whole snapshots.
//!
//! Segments ([`segment`], [`delta`]): a snapshot is a base [`Segment`]
//! (contiguous row-major f32 rows, the int8 copy, the documents), shared by
//! `Arc` with the snapshots built from it, plus a small delta segment and
//! tombstones. [`Index::apply`] builds the next snapshot from a few changed
//! documents without copying the base; [`Index::merged`] folds the delta
//! into a new base (the refresher does it in the background). Every row
//! number this API hands out is one of the merged view (live documents in
//! id order), so callers never see the segments.
//!
//! This module knows nothing of Redis: `store` builds indexes with
//! [`IndexBuilder`] and keeps its own account of keys (the loader's
//! load report); ids here are plain document ids.
//!
//! Live top-k: [`Index::search`] is the one way to search a snapshot, and
//! it returns exactly the top-k among the *live* rows. Each document
//! carries the deadline Redis will expire its key at (read with PTTL at
//! load); segments keep (deadline, row) pairs ([`Deadline`]), so the rows
//! past their deadline are found without walking the documents. A row past
//! its deadline (even before Redis reclaims the key), a tombstoned base
//! row, a query's own excluded row (an `id` query's document) and a row
//! outside the query's filter are all handed to the scan as rows to skip:
//! one mechanism, in the scan, never an over-fetch dropped afterwards.
//!
//! Scan copy: an index built for `ScanMode` int8 (see
//! `semsearch_scan::mode`) also holds an int8 copy of its base rows
//! ([`Index::with_scan`]), and [`search`] answers queries through it;
//! answers are the f32 scan's either way. [`coalesce`] shares one search
//! between concurrent queries of a snapshot.

pub mod attributes;
pub mod builder;
pub mod coalesce;
pub mod delta;
pub mod filtered;
pub mod fusion;
pub mod lexical;
pub mod search;
pub mod segment;
pub mod shared;
pub mod spare;
pub mod unit;

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use ndarray::Array2;
use thiserror::Error;

use semsearch_scan::{ScanMode, ScanPath};

pub use builder::IndexBuilder;
pub use search::{LiveQuery, OwnedLiveQuery};
pub use segment::{Deadline, Segment};
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
/// `Default` is the empty document: `Document { id, ..Default::default() }`
/// is a bare id, as tests and benches build them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// An immutable snapshot of every loaded document: a base [`Segment`]
/// shared by `Arc` with the snapshots built from it, a small delta segment
/// of the documents added or rewritten since, and the tombstones of the base
/// rows those updates removed or superseded (see [`delta`]).
///
/// Row numbers in this API (`doc`, `row`, `find`, search hits) are those of
/// the merged view: the live documents in ascending id order, `0..len()`,
/// exactly the rows a fresh index of the same documents would have.
#[derive(Debug)]
pub struct Index {
    base: Arc<Segment>,
    /// Rows added or rewritten since `base` was built; scanned in f32.
    delta: Segment,
    /// Base rows removed or superseded, ascending.
    tombstones: Vec<u32>,
    /// Per tombstone `c`: live base rows before it (`tombstones[c] - c`),
    /// to turn a live rank into a base row with one binary search.
    live_before_tomb: Vec<u32>,
    /// Deadlines of tombstoned base documents, ascending.
    tomb_deadlines: Vec<u64>,
    /// Per delta row: base rows whose id sorts before its id.
    delta_pos: Vec<u32>,
    /// Per delta row: its row in the merged view.
    delta_at: Vec<u32>,
    /// What the operator asked for; kept so the snapshots [`Index::apply`]
    /// builds from this one are scanned the same way.
    scan_mode: ScanMode,
    /// How the lexical side is analysed and ranked; `None` until
    /// [`Index::with_lexical`] built it (then every snapshot made from this
    /// one keeps it).
    lexical: Option<Arc<lexical::LexicalSettings>>,
    /// The tombstoned base documents' share of the lexical statistics and
    /// of the vector sum, subtracted from the base's.
    tombstoned: lexical::Tombstoned,
    /// Posting lists of the merged view's attributes, built by the first
    /// filtered query (or stats read) on this snapshot, so a per-key update
    /// stays O(changed rows) (see `index::filtered`).
    filter_view: std::sync::OnceLock<filtered::FilterView>,
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

/// Where a row of the merged view lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentRow {
    /// Row of the base segment.
    Base(usize),
    /// Row of the delta segment.
    Delta(usize),
}

impl Index {
    /// Assembles a snapshot. `matrix` is `docs.len() × dim`; for an empty
    /// index `dim` may be 0 (no valid value seen and none configured).
    ///
    /// # Errors
    /// [`IndexError`] when rows and documents disagree or ids are unsorted.
    pub fn new(matrix: Array2<f32>, docs: Vec<Arc<Document>>) -> Result<Self, IndexError> {
        let base = Segment::new(matrix, docs)?;
        let dim = base.dim();
        Ok(Self::from_base(Arc::new(base), Segment::empty(dim), ScanMode::F32))
    }

    fn from_base(base: Arc<Segment>, delta: Segment, scan_mode: ScanMode) -> Self {
        Self {
            base,
            delta,
            tombstones: Vec::new(),
            live_before_tomb: Vec::new(),
            tomb_deadlines: Vec::new(),
            delta_pos: Vec::new(),
            delta_at: Vec::new(),
            filter_view: std::sync::OnceLock::new(),
            lexical: None,
            tombstoned: lexical::Tombstoned::default(),
            scan_mode,
            version: 0,
            loaded_at: SystemTime::now(),
        }
    }

    /// This index, scanned as `mode` asks: with an int8 copy of the base
    /// rows when `mode` resolves to int8 for this size and CPU
    /// ([`ScanMode::resolve`]), without one otherwise.
    ///
    /// CPU work, O(rows) (timed in docs/benchmarks.md): quantizes
    /// on the rayon pool, so call it from rayon or a blocking thread, never
    /// from a tokio worker.
    pub fn with_scan(mut self, mode: ScanMode) -> Self {
        self.scan_mode = mode;
        let wanted = mode.resolve(self.base.len(), self.base.dim());
        if wanted == self.base.scan() {
            return self;
        }
        match Arc::get_mut(&mut self.base) {
            Some(base) => base.set_scan(wanted),
            None => {
                let mut base = self.base.clone_rows();
                base.set_scan(wanted);
                self.base = Arc::new(base);
            }
        }
        self
    }

    /// [`Index::with_scan`] for a fresh index whose int8 copy was built
    /// beforehand (the loader places each row's codes while it reads,
    /// [`semsearch_scan::int8::QuantizedBuilder`]): the copy is attached
    /// instead of quantizing again, when `mode` scans int8 at this size and
    /// `int8` holds exactly the base's rows. The same snapshot either way.
    pub fn with_int8_copy(mut self, mode: ScanMode, int8: semsearch_scan::int8::QuantizedMatrix) -> Self {
        let fits = int8.len() == self.base.len() && int8.dim() == self.base.dim() && self.tombstones.is_empty();
        if fits && mode.resolve(self.base.len(), self.base.dim()) == ScanPath::Int8 && self.base.scan() == ScanPath::F32
        {
            if let Some(base) = Arc::get_mut(&mut self.base) {
                base.set_int8(int8);
            }
        }
        self.with_scan(mode)
    }

    /// What this snapshot's base is scanned with, [`ScanPath::Int8`] or
    /// [`ScanPath::F32`] (its delta is always f32).
    pub fn scan(&self) -> ScanPath {
        self.base.scan()
    }

    /// What the operator asked for (`SEMSEARCH_SCAN`).
    pub fn scan_mode(&self) -> ScanMode {
        self.scan_mode
    }

    /// Bytes of the int8 copy; 0 when this snapshot scans f32.
    pub fn int8_bytes(&self) -> usize {
        self.base.int8_bytes()
    }

    /// Live documents: base rows not tombstoned, plus the delta rows.
    pub fn len(&self) -> usize {
        self.base.len() - self.tombstones.len() + self.delta.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vector dimension; 0 for an empty index with no configured dimension.
    pub fn dim(&self) -> usize {
        self.base.dim().max(self.delta.dim())
    }

    /// The unit vector of one row (of the merged view).
    ///
    /// # Panics
    /// If `row >= len()`.
    pub fn row(&self, row: usize) -> &[f32] {
        match self.locate(row) {
            SegmentRow::Base(i) => self.base.row(i),
            SegmentRow::Delta(j) => self.delta.row(j),
        }
    }

    /// The document of one row (of the merged view).
    ///
    /// # Panics
    /// If `row >= len()`.
    pub fn doc(&self, row: usize) -> &Document {
        match self.locate(row) {
            SegmentRow::Base(i) => self.base.doc(i),
            SegmentRow::Delta(j) => self.delta.doc(j),
        }
    }

    /// Row of the document with this id.
    pub fn find(&self, id: &str) -> Option<usize> {
        if let Ok(j) = self.delta.find(id) {
            return Some(self.delta_at[j] as usize);
        }
        let i = self.base.find(id).ok()?;
        self.base_row_in_view(i)
    }

    /// The first row whose id sorts after `id` (`len()` if none): where a
    /// walk over the documents in id order resumes.
    pub fn first_row_after(&self, id: &str) -> usize {
        let through = self.base.rows_through(id);
        let dead = self.tombstones.partition_point(|&t| (t as usize) < through);
        through - dead + self.delta.rows_through(id)
    }

    /// How many documents are past their deadline at `now_ms`: a search must
    /// look at that many extra candidates to still fill k.
    pub fn expired_count(&self, now_ms: u64) -> usize {
        let upto = |d: &[Deadline]| d.partition_point(|d| d.at_ms <= now_ms);
        upto(self.base.deadlines()) - self.tomb_deadlines.partition_point(|&t| t <= now_ms)
            + upto(self.delta.deadlines())
    }

    /// Whether a row's key has expired in Redis by `now_ms`.
    pub fn is_expired(&self, row: usize, now_ms: u64) -> bool {
        self.doc(row).expires_at_ms.is_some_and(|t| t <= now_ms)
    }

    /// The earliest deadline of a live document, for the expiry sweep.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        // Tombstoned deadlines are a sub-multiset of the base's, both sorted:
        // skip the matching prefix pairs.
        let (base, dead) = (self.base.deadlines(), &self.tomb_deadlines);
        let mut j = 0;
        let live_base = base.iter().map(|d| d.at_ms).find(|&t| {
            if dead.get(j) == Some(&t) {
                j += 1;
                false
            } else {
                true
            }
        });
        match (live_base, self.delta.deadlines().first().map(|d| d.at_ms)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Set by [`SharedIndex::replace`]; starts at 1 and grows by one per swap.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }

    /// Bytes of the vector matrices held (base, tombstoned rows included, and delta).
    pub fn matrix_bytes(&self) -> usize {
        self.base.matrix_bytes() + self.delta.matrix_bytes()
    }

    /// Bytes of metadata held: strings plus the per-document headers.
    pub fn metadata_bytes(&self) -> usize {
        self.base.metadata_bytes() + self.delta.metadata_bytes()
    }

    pub(crate) fn set_version(&mut self, version: u64) {
        self.version = version;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn doc(id: &str) -> Arc<Document> {
        Arc::new(Document { id: id.into(), ..Default::default() })
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
