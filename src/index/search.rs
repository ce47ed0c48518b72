//! Live top-k: the one search entry of a snapshot ([`Index::search`]).
//!
//! A query ([`LiveQuery`]) gets exactly the top-k among the rows that are
//! *live* for it: not past their Redis deadline at `now_ms`, not tombstoned
//! by a per-key update, not its own excluded row (an `id` query's
//! document), and in its filter's rows if it has one. Every one of those
//! rules becomes rows the scan skips (`semsearch_scan::ScanRequest`):
//! there is no over-fetch to drop from afterwards.
//!
//! Per segment (see `index::delta`): the base is scanned with its
//! tombstones and expired rows excluded, through its int8 copy when it has
//! one; the delta in f32 with its expired rows excluded; the two lists are
//! merged by the tie rule over merged-view rows (the view is in id order).
//! Whichever path runs, each answer is the f32 scan's (same rows, order and
//! score bits; `semsearch_scan::int8` says why), so callers never need to
//! know which it was except for the counters ([`ScanAnswer::path`]).

use std::{borrow::Cow, sync::Arc};

use roaring::RoaringBitmap;
use semsearch_scan::{topk::rank_order, Forced, Hit, ScanAnswer, ScanQuery, ScanRequest};

use super::{Index, SegmentRow};

/// One query of [`Index::search`]. Rows are those of the snapshot's merged
/// view, as [`Index::find`] and [`Index::matching`] give them.
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveQuery<'a> {
    /// Unit length, [`Index::dim`] long.
    pub vector: &'a [f32],
    pub k: usize,
    /// Only scores `>=` this are returned.
    pub min_score: Option<f32>,
    /// A row never returned (an `id` query's own document); ignored if it
    /// is not a row of this snapshot.
    pub exclude: Option<usize>,
    /// Only these rows (a filter's, from [`Index::matching`] on this
    /// snapshot); `None` is every row.
    pub rows: Option<&'a RoaringBitmap>,
}

impl<'a> LiveQuery<'a> {
    /// This query as one segment's scan sees it: its own row there (if it
    /// lives in that segment) and its filter's rows there.
    fn in_segment(&self, exclude: Option<u32>, among: Option<&'a RoaringBitmap>) -> ScanQuery<'a> {
        ScanQuery { vector: self.vector, k: self.k, min_score: self.min_score, exclude, among }
    }
}

/// A [`LiveQuery`] that owns its parts, for a query that waits in a queue
/// (`index::coalesce`) before it is scanned.
#[derive(Debug, Clone, Default)]
pub struct OwnedLiveQuery {
    pub vector: Vec<f32>,
    pub k: usize,
    pub min_score: Option<f32>,
    pub exclude: Option<usize>,
    pub rows: Option<Arc<RoaringBitmap>>,
}

impl OwnedLiveQuery {
    /// The query, borrowed for [`Index::search`].
    pub fn as_live(&self) -> LiveQuery<'_> {
        LiveQuery {
            vector: &self.vector,
            k: self.k,
            min_score: self.min_score,
            exclude: self.exclude,
            rows: self.rows.as_deref(),
        }
    }
}

impl Index {
    /// One answer per query, in query order: exactly the top-k among the
    /// rows live for that query at `now_ms` (see the module docs), in rows
    /// of the merged view, the same whether the query is alone or in a
    /// batch. Unfiltered queries share one pass over each segment. CPU
    /// work: call it on rayon.
    ///
    /// # Panics
    /// If the index is not empty and a query's length is not [`Index::dim`]
    /// (the API checks dimensions first).
    pub fn search(&self, queries: &[LiveQuery<'_>], now_ms: u64) -> Vec<ScanAnswer> {
        self.search_forced(queries, now_ms, Forced::default())
    }

    /// [`Index::search`] with what a test forces in the scan (the int8
    /// fallbacks off, to drive the rescoring with any data).
    pub(crate) fn search_forced(&self, queries: &[LiveQuery<'_>], now_ms: u64, forced: Forced) -> Vec<ScanAnswer> {
        if self.is_empty() {
            // Nothing to scan, and with no configured dimension the queries
            // may not even agree on a length.
            return queries.iter().map(|_| ScanAnswer::f32(Vec::new())).collect();
        }
        let (base, delta) = self.segments();
        // Without a delta or tombstones, view rows are base rows.
        let view_is_base = delta.is_empty() && self.tombstones().is_empty();
        let split: Vec<Option<(RoaringBitmap, RoaringBitmap)>> =
            queries.iter().map(|q| q.rows.filter(|_| !view_is_base).map(|rows| self.split_rows(rows))).collect();
        let own = |q: &LiveQuery<'_>| q.exclude.filter(|&r| r < self.len()).map(|r| self.locate(r));
        let base_queries: Vec<ScanQuery<'_>> = queries
            .iter()
            .zip(&split)
            .map(|(q, split)| {
                let exclude = match own(q) {
                    Some(SegmentRow::Base(i)) => Some(i as u32),
                    _ => None,
                };
                q.in_segment(exclude, split.as_ref().map_or(q.rows, |(base_rows, _)| Some(base_rows)))
            })
            .collect();
        let base_skipped = self.base_skipped(now_ms);
        let base_answers = (self.len() > delta.len())
            .then(|| base.search(&ScanRequest { queries: &base_queries, excluded: &base_skipped, forced }));
        let delta_answers = (!delta.is_empty()).then(|| {
            let delta_queries: Vec<ScanQuery<'_>> = queries
                .iter()
                .zip(&split)
                .map(|(q, split)| {
                    let exclude = match own(q) {
                        Some(SegmentRow::Delta(j)) => Some(j as u32),
                        _ => None,
                    };
                    q.in_segment(exclude, split.as_ref().map(|(_, delta_rows)| delta_rows))
                })
                .collect();
            let expired = delta.expired_rows(now_ms);
            delta.search(&ScanRequest { queries: &delta_queries, excluded: &expired, forced })
        });
        if view_is_base {
            return base_answers.unwrap_or_default();
        }
        let delta_rows = self.delta_rows_in_view();
        (0..queries.len())
            .map(|q| {
                let k = queries[q].k;
                let mut hits: Vec<Hit> = Vec::with_capacity(k.min(self.len()).saturating_mul(2));
                let mut answer = ScanAnswer::f32(Vec::new());
                if let Some(answers) = &base_answers {
                    let a = &answers[q];
                    answer = ScanAnswer { hits: Vec::new(), ..a.clone() };
                    // The scan skipped every tombstoned row, so each hit has a view row.
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

    /// Base rows no query may return at `now_ms`, strictly ascending: the
    /// tombstones and the base rows past their deadline.
    fn base_skipped(&self, now_ms: u64) -> Cow<'_, [u32]> {
        let expired = self.segments().0.expired_rows(now_ms);
        if expired.is_empty() {
            return Cow::Borrowed(self.tombstones());
        }
        let mut skipped: Vec<u32> = self.tombstones().iter().chain(&expired).copied().collect();
        skipped.sort_unstable();
        skipped.dedup();
        Cow::Owned(skipped)
    }

    /// `rows` of the merged view as (base rows, delta rows).
    fn split_rows(&self, rows: &RoaringBitmap) -> (RoaringBitmap, RoaringBitmap) {
        let (mut base_rows, mut delta_rows) = (RoaringBitmap::new(), RoaringBitmap::new());
        for row in rows.iter().take_while(|&r| (r as usize) < self.len()) {
            match self.locate(row as usize) {
                SegmentRow::Base(i) => base_rows.insert(i as u32),
                SegmentRow::Delta(j) => delta_rows.insert(j as u32),
            };
        }
        (base_rows, delta_rows)
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use ndarray::Array2;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use semsearch_scan::{Matrix, ScanMode, ScanPath};

    use super::*;
    use crate::index::Document;

    fn index(n: usize, dim: usize) -> Index {
        let mut rng = StdRng::seed_from_u64(0x9E37_79B9_7F4A_7C15);
        let mut floats: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
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
        let batch: Vec<LiveQuery<'_>> = queries
            .iter()
            .enumerate()
            .map(|(i, v)| LiveQuery { vector: v, k: 1 + i * 3, ..LiveQuery::default() })
            .collect();
        assert_eq!((f32_index.scan(), int8_index.scan()), (ScanPath::F32, ScanPath::Int8));

        for index in [&f32_index, &int8_index] {
            // Act
            let alone: Vec<ScanAnswer> =
                batch.iter().map(|q| index.search(std::slice::from_ref(q), 0).remove(0)).collect();
            let together = index.search(&batch, 0);

            // Assert
            for ((q, a), t) in batch.iter().zip(&alone).zip(&together) {
                let rows = Matrix::new(f32_index.segments().0.rows(), 24);
                let one = [ScanQuery { vector: q.vector, k: q.k, ..ScanQuery::default() }];
                let want = semsearch_scan::top_k(rows, &ScanRequest { queries: &one, ..ScanRequest::default() });
                assert_eq!(a.hits, want[0].hits, "{:?} alone", index.scan());
                assert_eq!(t.hits, want[0].hits, "{:?} in a batch", index.scan());
                assert_eq!(a.path.is_int8_copy(), index.scan() == ScanPath::Int8);
            }
        }
        assert!(int8_index.int8_bytes() > 0 && f32_index.int8_bytes() == 0);
        let paths: Vec<ScanPath> = int8_index.search(&batch, 0).iter().map(|a| a.path).collect();
        assert!(paths.contains(&ScanPath::Int8), "some query went through the int8 pass: {paths:?}");
    }

    #[test]
    fn an_empty_index_answers_every_query_with_nothing_whatever_its_length() {
        let empty = Index::new(Array2::zeros((0, 0)), Vec::new()).expect("empty").with_scan(ScanMode::Int8);
        let (a, b) = ([1.0f32, 0.0], [1.0f32, 0.0, 0.0]);

        let got = empty.search(
            &[
                LiveQuery { vector: &a, k: 3, ..LiveQuery::default() },
                LiveQuery { vector: &b, k: 3, ..LiveQuery::default() },
            ],
            0,
        );

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
        let query = [LiveQuery { vector: &q, k: 4, ..LiveQuery::default() }];
        assert_eq!(new.search(&query, 0).remove(0).hits, new.merged().search(&query, 0).remove(0).hits);
    }

    #[test]
    fn expired_documents_are_skipped_and_k_is_still_filled() {
        // Arrange: 4 documents, the two best for the query expire at t = 100.
        let rows = [[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]];
        let docs = (0..4)
            .map(|i| {
                let expires_at_ms = (i < 2).then_some(100);
                Arc::new(Document { id: format!("{i}").into(), expires_at_ms, ..Default::default() })
            })
            .collect();
        let matrix = Array2::from_shape_vec((4, 2), rows.concat()).expect("4 × 2");
        let idx = Index::new(matrix, docs).expect("sorted ids");
        let query = [LiveQuery { vector: &[1.0, 0.0], k: 2, ..LiveQuery::default() }];

        // Act
        let before = idx.search(&query, 99).remove(0);
        let after = idx.search(&query, 100).remove(0);

        // Assert
        let rows = |a: &ScanAnswer| a.hits.iter().map(|h| h.row).collect::<Vec<_>>();
        assert_eq!(rows(&before), vec![0, 1]);
        assert_eq!(rows(&after), vec![2, 3], "the deadline is inclusive, and k is still 2");
    }

    #[test]
    fn an_id_query_gets_k_other_documents_not_itself() {
        let idx = index(500, 8).with_scan(ScanMode::Int8);
        let own = idx.row(42).to_vec();

        let got = idx.search(&[LiveQuery { vector: &own, k: 5, exclude: Some(42), ..LiveQuery::default() }], 0);

        let rows: Vec<u32> = got[0].hits.iter().map(|h| h.row).collect();
        assert_eq!(rows.len(), 5);
        assert!(!rows.contains(&42), "{rows:?}");
    }
}
