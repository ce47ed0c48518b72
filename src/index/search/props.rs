//! Property test: [`Index::search`] returns exactly a brute-force scan of
//! the rows live for each query: documents past their deadline, base rows
//! tombstoned by per-key updates (`Index::apply`), the query's own excluded
//! row and rows outside its filter never appear, and k is still filled from
//! the rest. Every scan mode (f32; int8 with and without the f32
//! fallbacks, which large k and zero queries trigger), each query alone and
//! in a batch; same rows and score bits as the brute force.
//!
//! The model is a map from id to (vector, deadline): its iteration order is
//! the merged view's row order, so the brute force never asks the index.

use std::collections::HashSet;

use proptest::prelude::*;
use semsearch_scan::{kernel, ScanMode};

use super::*;
use crate::index::delta::props::{build, change, id, vector, Model, DIM};

/// A query as the test states it; `filter` keeps every `m`-th view row from `offset`.
#[derive(Debug, Clone)]
struct Asked {
    vector: Vec<f32>,
    k: usize,
    min_score: Option<f32>,
    exclude: Option<usize>,
    filter: Option<(u32, u32)>,
}

fn asked() -> impl Strategy<Value = Asked> {
    (
        // A zero query sends the int8 copy to its f32 fallback.
        prop_oneof![9 => vector(), 1 => Just(vec![0.0; DIM])],
        // Large k sends the int8 copy to its f32 fallback (k > n / 8).
        prop_oneof![4 => 1..12usize, 1 => 100..400usize],
        prop::option::of(-0.2f32..0.9),
        prop::option::of(0..1000usize),
        prop::option::of((1u32..5, 0u32..5)),
    )
        .prop_map(|(vector, k, min_score, exclude, filter)| Asked { vector, k, min_score, exclude, filter })
}

/// Every row of the model live for `q` at `now`, scored with the process
/// kernel (a row's score is the same bits in any scan), best `k` by the tie rule.
fn brute_force(model: &Model, q: &Asked, rows: Option<&RoaringBitmap>, now: u64) -> Vec<Hit> {
    let kernel = kernel::active();
    let mut hits: Vec<Hit> = model
        .values()
        .enumerate()
        .filter(|(r, (_, deadline))| {
            deadline.is_none_or(|d| d > now) && Some(*r) != q.exclude && rows.is_none_or(|b| b.contains(*r as u32))
        })
        .map(|(r, (v, _))| {
            let mut score = [0.0f32];
            kernel.score_rows(v, &q.vector, &mut score);
            Hit { row: r as u32, score: score[0] }
        })
        .filter(|h| q.min_score.is_none_or(|m| h.score >= m))
        .collect();
    hits.sort_by(rank_order);
    hits.truncate(q.k);
    hits
}

fn bits(hits: &[Hit]) -> Vec<(u32, u32)> {
    hits.iter().map(|h| (h.row, h.score.to_bits())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn search_equals_brute_force_over_the_live_rows(
        base_docs in prop::collection::btree_map(0..1200usize, (vector(), prop::option::of(0..100u64)), 300..900),
        batches in prop::collection::vec(prop::collection::vec(change(), 1..12), 0..3),
        queries in prop::collection::vec(asked(), 1..5),
        now in 0..120u64,
    ) {
        let base: Model = base_docs.into_iter().map(|(i, d)| (id(i), d)).collect();
        for mode in [ScanMode::F32, ScanMode::Int8] {
            // Arrange: the base, then the per-key updates (delta and tombstones).
            let mut model = base.clone();
            let mut index = build(&model).with_scan(mode);
            for batch in &batches {
                let mut fresh = Model::new();
                let mut changed = HashSet::new();
                for (i, set) in batch {
                    changed.insert(id(*i));
                    fresh.remove(&id(*i));
                    match set {
                        Some(d) => {
                            model.insert(id(*i), d.clone());
                            fresh.insert(id(*i), d.clone());
                        }
                        None => {
                            model.remove(&id(*i));
                        }
                    }
                }
                let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();
                index = index.apply(&build(&fresh), &changed).expect("same dim").0;
            }
            prop_assert_eq!(index.len(), model.len());
            let filters: Vec<Option<RoaringBitmap>> = queries
                .iter()
                .map(|q| q.filter.map(|(m, offset)| (0..model.len() as u32).filter(|r| r % m == offset).collect()))
                .collect();
            let live: Vec<LiveQuery<'_>> = queries
                .iter()
                .zip(&filters)
                .map(|(q, rows)| LiveQuery {
                    vector: &q.vector,
                    k: q.k,
                    min_score: q.min_score,
                    exclude: q.exclude,
                    rows: rows.as_ref(),
                })
                .collect();
            for fallbacks in [true, false] {
                let forced = Forced { int8_fallbacks: fallbacks, ..Forced::default() };

                // Act
                let together = index.search_forced(&live, now, forced);

                // Assert
                for (i, q) in live.iter().enumerate() {
                    let alone = index.search_forced(std::slice::from_ref(q), now, forced).remove(0);
                    let want = brute_force(&model, &queries[i], filters[i].as_ref(), now);
                    let context = format!(
                        "{mode:?} fallbacks={fallbacks} query {i} (k {}, exclude {:?}, filter {:?}) now {now}, \
                         {} rows, {} tombstones, {} delta rows, path {:?}",
                        q.k, q.exclude, queries[i].filter, index.len(), index.tombstones().len(),
                        index.segments().1.len(), alone.path
                    );
                    prop_assert_eq!(bits(&alone.hits), bits(&want), "alone: {}", context);
                    prop_assert_eq!(bits(&together[i].hits), bits(&want), "in a batch: {}", context);
                }
            }
        }
    }
}
