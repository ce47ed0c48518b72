//! [`IndexBuilder`]: rows and documents appended one at a time into one
//! pre-sized matrix, then frozen into an [`Index`].
//!
//! The loader (store) decides which values become rows; the builder owns how
//! rows are laid out: contiguous, row-major, `dim` floats each, reserved
//! once so a large load never doubles its peak memory while growing.

use std::sync::Arc;

use ndarray::Array2;

use super::{Document, Index, IndexError};

/// Rows of one dimension on their way into an [`Index`].
#[derive(Debug, Default)]
pub struct IndexBuilder {
    dim: usize,
    floats: Vec<f32>,
    docs: Vec<Arc<Document>>,
}

impl IndexBuilder {
    /// An empty builder for rows of `dim` floats.
    pub fn new(dim: usize) -> Self {
        Self { dim, floats: Vec::new(), docs: Vec::new() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Reserves room for `rows` more rows, best effort: a failed reservation
    /// only means the vectors grow as they go.
    ///
    /// An empty builder takes a retired matrix that fits ([`super::spare`]):
    /// its pages are resident already, so writing the rows faults none in.
    /// Otherwise it allocates with room to grow
    /// ([`semsearch_scan::with_growth_room`]), so that this matrix, once
    /// retired, fits the next load of a slightly larger index.
    pub fn reserve(&mut self, rows: usize) {
        let floats = rows.saturating_mul(self.dim);
        if !self.has_capacity() {
            match super::spare::MATRIX.take(floats) {
                Some(buf) => self.floats = buf,
                None => {
                    let _ = self.floats.try_reserve_exact(semsearch_scan::with_growth_room(floats));
                }
            }
        }
        let _ = self.floats.try_reserve_exact(floats);
        let _ = self.docs.try_reserve_exact(rows);
    }

    /// Whether room was reserved already (the first row of a load reserves it).
    pub fn has_capacity(&self) -> bool {
        self.floats.capacity() > 0
    }

    /// Appends one row. `row` must be unit length (see [`super::unit`]) and
    /// `dim` floats long; documents must arrive in ascending id order
    /// ([`IndexBuilder::finish`] checks it).
    ///
    /// # Panics
    /// If `row.len() != dim`: the caller groups rows by dimension first.
    pub fn push(&mut self, doc: Arc<Document>, row: &[f32]) {
        assert_eq!(row.len(), self.dim, "IndexBuilder::push: rows are grouped by dimension before they arrive");
        self.floats.extend_from_slice(row);
        self.docs.push(doc);
    }

    /// The documents appended so far, dropping their rows (a losing
    /// dimension's rows, reported as skipped by the caller).
    pub fn into_docs(self) -> Vec<Arc<Document>> {
        self.docs
    }

    /// Freezes the rows into a snapshot, returning spare capacity first
    /// when it is more than 1/8 of the rows (many keys skipped, a retired
    /// matrix of a much larger index), as the int8 copy's builder does.
    /// Less is kept: the room to grow a load reserves, and what a retired
    /// matrix had beyond a load that lost a few rows, stay with the matrix
    /// for the next load.
    ///
    /// # Errors
    /// [`IndexError::UnsortedIds`] when documents were not in ascending id order.
    pub fn finish(mut self) -> Result<Index, IndexError> {
        if self.floats.capacity() - self.floats.len() > self.floats.len() / 8 {
            self.floats.shrink_to_fit();
        }
        self.docs.shrink_to_fit();
        let matrix = Array2::from_shape_vec((self.docs.len(), self.dim), self.floats)
            .expect("every pushed row has exactly `dim` floats");
        Index::new(matrix, self.docs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> Arc<Document> {
        Arc::new(Document { id: id.into(), ..Default::default() })
    }

    #[test]
    fn rows_come_out_in_push_order_and_unsorted_ids_are_refused() {
        let mut b = IndexBuilder::new(2);
        b.reserve(2);
        b.push(doc("a"), &[1.0, 0.0]);
        b.push(doc("b"), &[0.0, 1.0]);
        let index = b.finish().expect("sorted");
        assert_eq!(index.row(1), &[0.0, 1.0]);

        let mut b = IndexBuilder::new(1);
        b.push(doc("b"), &[1.0]);
        b.push(doc("a"), &[1.0]);
        assert!(matches!(b.finish(), Err(IndexError::UnsortedIds { .. })));
    }
}
