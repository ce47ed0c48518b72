//! Answering queries from one snapshot with the scan it was built for:
//! the int8 copy with exact rescoring, or the f32 rows.
//!
//! Whichever path runs, each answer is the f32 scan's (same rows, order
//! and score bits; `semsearch_scan::int8` says why), so callers never need
//! to know which it was except for the counters ([`ScanAnswer::path`]).

use semsearch_scan::{topk::rank_order, Hit, ScanAnswer, ScanQuery, ScanRequest};

use super::{coalesce::Searchable, Index};

impl Index {
    /// One answer per query, in query order, each exactly what the query
    /// alone gets from the scan of the rows of a fresh index of this
    /// snapshot's documents: hits carry rows of the merged view. CPU work:
    /// call it on rayon.
    ///
    /// With a delta (see `index::delta`): the base is scanned without its
    /// tombstoned rows (the scan skips them), the delta in f32, and the two
    /// lists are merged by the tie rule over merged rows.
    ///
    /// # Panics
    /// If the index is not empty and a query's length is not [`Index::dim`]
    /// (the API checks dimensions first).
    pub fn search(&self, queries: &[ScanQuery<'_>]) -> Vec<ScanAnswer> {
        if self.is_empty() {
            // Nothing to scan, and with no configured dimension the queries
            // may not even agree on a length.
            return queries.iter().map(|_| ScanAnswer::f32(Vec::new())).collect();
        }
        let (base, delta) = self.segments();
        let dead = self.tombstones();
        if delta.is_empty() && dead.is_empty() {
            return base.search(&ScanRequest { queries, ..ScanRequest::default() });
        }
        let base_answers = (self.len() > delta.len())
            .then(|| base.search(&ScanRequest { queries, excluded: dead, ..ScanRequest::default() }));
        let delta_answers =
            (!delta.is_empty()).then(|| delta.search(&ScanRequest { queries, ..ScanRequest::default() }));
        let delta_rows = self.delta_rows_in_view();
        (0..queries.len())
            .map(|q| {
                let k = queries[q].k;
                let mut hits: Vec<Hit> = Vec::with_capacity(k.min(self.len()).saturating_mul(2));
                let mut answer = ScanAnswer::f32(Vec::new());
                if let Some(answers) = &base_answers {
                    let a = &answers[q];
                    answer = ScanAnswer { hits: Vec::new(), ..a.clone() };
                    // The scan skipped every tombstoned row.
                    hits.extend(a.hits.iter().filter_map(|h| {
                        let row = self.base_row_in_view(h.row as usize)?;
                        Some(Hit { row: row as u32, score: h.score })
                    }));
                }
                if let Some(answers) = &delta_answers {
                    hits.extend(
                        answers[q].hits.iter().map(|h| Hit { row: delta_rows[h.row as usize], score: h.score }),
                    );
                    // Delta rows are scored in f32: count them as rescored.
                    if answer.path.is_int8_copy() {
                        answer.rescored_rows += delta.len();
                        answer.candidates += delta.len();
                    }
                }
                hits.sort_by(rank_order);
                hits.truncate(k);
                ScanAnswer { hits, ..answer }
            })
            .collect()
    }
}

/// The coalescer groups queries per snapshot (never across a reload) and
/// scans each group in one pass.
impl Searchable for Index {
    fn search(&self, queries: &[ScanQuery<'_>]) -> Vec<ScanAnswer> {
        Index::search(self, queries)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ndarray::Array2;

    use semsearch_scan::{Matrix, ScanMode, ScanPath};

    use super::*;
    use crate::index::Document;

    fn index(n: usize, dim: usize) -> Index {
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut floats: Vec<f32> = (0..n * dim)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        for row in floats.chunks_exact_mut(dim) {
            crate::index::unit::scale_to_unit(row).expect("random rows are not zero");
        }
        let docs = (0..n).map(|i| Arc::new(Document { id: format!("{i:06}").into(), ..Default::default() })).collect();
        Index::new(Array2::from_shape_vec((n, dim), floats).expect("n × dim"), docs).expect("sorted ids")
    }

    #[test]
    fn every_scan_mode_answers_exactly_like_the_f32_scan() {
        // Arrange
        let f32_index = index(3000, 24);
        let int8_index = index(3000, 24).with_scan(ScanMode::Int8);
        let queries: Vec<Vec<f32>> = (0..5).map(|i| f32_index.row(i * 100).to_vec()).collect();
        let batch: Vec<ScanQuery<'_>> = queries
            .iter()
            .enumerate()
            .map(|(i, v)| ScanQuery { vector: v, k: 1 + i * 3, ..ScanQuery::default() })
            .collect();
        assert_eq!((f32_index.scan(), int8_index.scan()), (ScanPath::F32, ScanPath::Int8));

        for index in [&f32_index, &int8_index] {
            // Act
            let alone: Vec<ScanAnswer> =
                batch.iter().map(|q| index.search(std::slice::from_ref(q)).remove(0)).collect();
            let together = index.search(&batch);

            // Assert
            for ((q, a), t) in batch.iter().zip(&alone).zip(&together) {
                let rows = Matrix::new(f32_index.segments().0.rows(), 24);
                let want = semsearch_scan::top_k(rows, &ScanRequest { queries: &[*q], ..ScanRequest::default() });
                assert_eq!(a.hits, want[0].hits, "{:?} alone", index.scan());
                assert_eq!(t.hits, want[0].hits, "{:?} in a batch", index.scan());
                assert_eq!(a.path.is_int8_copy(), index.scan() == ScanPath::Int8);
            }
        }
        assert!(int8_index.int8_bytes() > 0 && f32_index.int8_bytes() == 0);
        let paths: Vec<ScanPath> = int8_index.search(&batch).iter().map(|a| a.path).collect();
        assert!(paths.contains(&ScanPath::Int8), "some query went through the int8 pass: {paths:?}");
    }

    #[test]
    fn an_empty_index_answers_every_query_with_nothing_whatever_its_length() {
        let empty = Index::new(Array2::zeros((0, 0)), Vec::new()).expect("empty").with_scan(ScanMode::Int8);
        let (a, b) = ([1.0f32, 0.0], [1.0f32, 0.0, 0.0]);
        let got = empty.search(&[
            ScanQuery { vector: &a, k: 3, ..ScanQuery::default() },
            ScanQuery { vector: &b, k: 3, ..ScanQuery::default() },
        ]);
        assert_eq!(got, vec![ScanAnswer::f32(Vec::new()); 2]);
        assert_eq!(empty.scan(), ScanPath::F32);
    }

    #[test]
    fn apply_keeps_the_scan_mode_and_rebuilds_the_int8_copy() {
        let old = index(2500, 8).with_scan(ScanMode::Int8);
        let fresh = index(1, 8);
        let changed: std::collections::HashSet<&str> = ["000000"].into_iter().collect();

        let (new, _) = old.apply(&fresh, &changed).expect("same dim");

        assert_eq!((new.scan_mode(), new.scan()), (ScanMode::Int8, ScanPath::Int8));
        let q = new.row(7).to_vec();
        let query = [ScanQuery { vector: &q, k: 4, ..ScanQuery::default() }];
        assert_eq!(new.search(&query).remove(0).hits, new.merged().search(&query).remove(0).hits);
    }
}
