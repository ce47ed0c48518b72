//! Filters on one snapshot: a filter becomes a row set of the merged view
//! through the snapshot's posting lists ([`super::attributes`]); a
//! [`super::LiveQuery`] with those `rows` is then answered by
//! [`Index::search`], where `semsearch_scan::filter` scans only what it
//! must of the f32 rows.
//!
//! Filtered queries scan the f32 rows even when the snapshot holds an int8
//! copy (`semsearch_scan::filter` says why); their answers are what the
//! unfiltered scan would rank among the matching rows, bit for bit.

use std::sync::Arc;

use roaring::RoaringBitmap;

use super::{
    attributes::{AttrKind, Attributes, FilterError, RowFilter},
    Document, Index, SegmentRow,
};

/// The merged view's documents and their posting lists, by view row.
///
/// Built once per snapshot, lazily: a per-key update (`index::delta`) then
/// costs the changed rows, and only the first filtered query (or stats
/// read) after it pays the O(documents) build.
#[derive(Debug)]
pub struct FilterView {
    docs: Vec<Arc<Document>>,
    attributes: Attributes,
}

impl Index {
    fn filter_view(&self) -> &FilterView {
        self.filter_view.get_or_init(|| {
            let (base, delta) = self.segments();
            let docs: Vec<Arc<Document>> = (0..self.len())
                .map(|row| match self.locate(row) {
                    SegmentRow::Base(i) => Arc::clone(&base.docs()[i]),
                    SegmentRow::Delta(j) => Arc::clone(&delta.docs()[j]),
                })
                .collect();
            let attributes = Attributes::build(&docs);
            FilterView { docs, attributes }
        })
    }

    /// The rows (of the merged view) `filter` accepts; `None` when it has
    /// no condition.
    ///
    /// # Errors
    /// [`FilterError`] for a field no document holds or a value of a type
    /// the field never has.
    pub fn matching(&self, filter: &RowFilter) -> Result<Option<RoaringBitmap>, FilterError> {
        let view = self.filter_view();
        view.attributes.matching(&view.docs, filter)
    }

    /// [`Index::matching`] as a shard evaluates a filter: a field or kind
    /// this snapshot lacks matches nothing instead of failing, and the
    /// kinds each of the filter's fields holds here come back, so that the
    /// router can check the filter against all shards' kinds together
    /// ([`RowFilter::check`]) exactly as one node would.
    pub fn matching_on_shard(&self, filter: &RowFilter) -> (Option<RoaringBitmap>, Vec<(String, Vec<AttrKind>)>) {
        let view = self.filter_view();
        let kinds = filter
            .fields
            .keys()
            .map(|name| (name.to_string(), view.attributes.kinds(name).map(<[AttrKind]>::to_vec).unwrap_or_default()))
            .collect();
        (view.attributes.matching_unchecked(&view.docs, filter), kinds)
    }

    /// The posting lists (counts for `/v1/stats` and the load log).
    pub fn attributes(&self) -> &Attributes {
        &self.filter_view().attributes
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use ndarray::Array2;

    use semsearch_scan::ScanAnswer;

    use super::*;
    use crate::index::LiveQuery;

    fn doc(id: &str) -> Arc<Document> {
        Arc::new(Document { id: id.into(), ..Default::default() })
    }

    /// Seeded rows with repeats, so ties cross segments.
    fn rows(ids: &[String], seed: u32) -> Vec<(String, Vec<f32>)> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                let t = (i as u32 * 7 + seed) % 5;
                let v: Vec<f32> = (0..4).map(|d| ((t * 3 + d) % 4) as f32 + 0.5).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                (id.clone(), v.iter().map(|x| x / n).collect())
            })
            .collect()
    }

    fn index(rows: &[(String, Vec<f32>)]) -> Index {
        let mut rows = rows.to_vec();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let m =
            Array2::from_shape_vec((rows.len(), 4), rows.iter().flat_map(|r| r.1.clone()).collect()).expect("n x 4");
        Index::new(m, rows.iter().map(|r| doc(&r.0)).collect()).expect("sorted, unique")
    }

    #[test]
    fn filtered_search_over_base_delta_and_tombstones_equals_a_fresh_index() {
        // Arrange: 40 documents, then 6 updated, 5 removed and 5 added per key.
        let ids: Vec<String> = (0..40).map(|i| format!("d{i:02}")).collect();
        let old = index(&rows(&ids, 0));
        let updated_ids: Vec<String> = (0..6).map(|i| format!("d{:02}", i * 5)).collect();
        let removed: Vec<String> = (0..5).map(|i| format!("d{:02}", i * 7 + 1)).collect();
        let added: Vec<String> = (0..5).map(|i| format!("e{i}")).collect();
        let changes = index(&rows(&updated_ids.iter().chain(&added).cloned().collect::<Vec<_>>(), 3));
        let changed: HashSet<&str> = updated_ids.iter().chain(&removed).chain(&added).map(String::as_str).collect();
        let (segmented, _) = old.apply(&changes, &changed).expect("same dim");
        assert!(!segmented.segments().1.is_empty() && !segmented.tombstones().is_empty(), "a delta and tombstones");
        let fresh = index(
            &(0..segmented.len())
                .map(|r| (segmented.doc(r).id.to_string(), segmented.row(r).to_vec()))
                .collect::<Vec<_>>(),
        );

        for (every, k) in [(1, 10), (2, 5), (3, 40), (7, 3)] {
            let mask: RoaringBitmap = (0..segmented.len() as u32).filter(|r| r % every == 0).collect();
            for q in 0..5 {
                let query = &rows(&["q".to_owned()], q)[0].1;

                // Act
                let live = [LiveQuery { vector: query, k, rows: Some(&mask), ..LiveQuery::default() }];
                let got = segmented.search(&live, 0).remove(0);
                let want = fresh.search(&live, 0).remove(0);

                // Assert: same view rows, same score bits.
                let bits = |a: &ScanAnswer| a.hits.iter().map(|h| (h.row, h.score.to_bits())).collect::<Vec<_>>();
                assert_eq!(bits(&got), bits(&want), "every {every}th row, k {k}, query {q}");
            }
        }
    }
}
