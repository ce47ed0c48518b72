//! Answering filtered queries from one snapshot: the filter becomes a row
//! set through the snapshot's posting lists ([`super::attributes`]), and
//! `search::filter` scans only what it must of the f32 rows.
//!
//! Filtered queries scan the f32 rows even when the snapshot holds an int8
//! copy (`search::filter` says why); their answers are what the unfiltered
//! scan would rank among the matching rows, bit for bit.

use roaring::RoaringBitmap;

use super::{
    attributes::{Attributes, FilterError, RowFilter},
    Index,
};
use crate::search::{filter::top_k_filtered, Answer};

impl Index {
    /// The rows `filter` accepts; `None` when it has no condition.
    ///
    /// # Errors
    /// [`FilterError`] for a field no document holds or a value of a type
    /// the field never has.
    pub fn matching(&self, filter: &RowFilter) -> Result<Option<RoaringBitmap>, FilterError> {
        self.attributes.matching(&self.docs, filter)
    }

    /// The posting lists (counts for `/v1/stats` and the load log).
    pub fn attributes(&self) -> &Attributes {
        &self.attributes
    }

    /// The exact top-`k` of `query` among `rows` (from [`Index::matching`]
    /// on this snapshot). CPU work: call it on rayon.
    ///
    /// # Panics
    /// If the index is not empty and `query.len()` is not [`Index::dim`].
    pub fn search_filtered(&self, query: &[f32], rows: &RoaringBitmap, k: usize, min_score: Option<f32>) -> Answer {
        if self.is_empty() {
            return Answer { hits: Vec::new(), rescore: None };
        }
        Answer { hits: top_k_filtered(self.rows(), query, rows, k, min_score), rescore: None }
    }
}
