//! Property tests: random sequences of SET/DEL applied through the delta
//! and tombstones answer exactly like a fresh index of the same documents,
//! in every scan mode: same rows, ids, order and score bits, and the same
//! `find`, `doc`, `row`, `len`, `first_row_after` and expiry figures.
//!
//! Vectors are drawn partly from a few shared templates, so many documents
//! hold identical rows: genuine ties, which across the base and the delta
//! must still be broken by id.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use semsearch_scan::{ScanAnswer, ScanMode, ScanPath};

use super::*;
use crate::index::{unit::scale_to_unit, LiveQuery};

pub(in crate::index) const DIM: usize = 8;

/// A document as the model holds it: its vector and its deadline.
pub(in crate::index) type Model = BTreeMap<String, Stored>;

/// A vector and its deadline.
pub(in crate::index) type Stored = (Vec<f32>, Option<u64>);

pub(in crate::index) fn id(i: usize) -> String {
    format!("doc:{i:05}")
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    if scale_to_unit(&mut v).is_err() {
        v = vec![0.0; DIM];
        v[0] = 1.0;
    }
    v
}

/// A vector: one of four shared templates (ties) or a fresh random one.
pub(in crate::index) fn vector() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        (0..4usize).prop_map(|t| unit((0..DIM).map(|d| ((t * 7 + d * 3) % 5) as f32 - 2.0).collect())),
        prop::collection::vec(-1.0f32..1.0, DIM).prop_map(unit),
    ]
}

pub(in crate::index) fn build(model: &Model) -> Index {
    let mut b = IndexBuilder::new(DIM);
    for (id, (v, exp)) in model {
        let doc = Document { id: id.as_str().into(), expires_at_ms: *exp, ..Default::default() };
        b.push(Arc::new(doc), v);
    }
    b.finish().expect("a BTreeMap is in id order")
}

/// One change: set document `i` to a vector (with a deadline or not), or delete it.
pub(in crate::index) fn change() -> impl Strategy<Value = (usize, Option<Stored>)> {
    (0..1200usize, prop::option::weighted(0.7, (vector(), prop::option::of(0..100u64))))
}

fn assert_same_view(got: &Index, want: &Index, pool: usize) {
    assert_eq!(got.len(), want.len());
    for r in 0..want.len() {
        assert_eq!(got.doc(r), want.doc(r), "row {r}");
        assert!(got.row(r).iter().map(|x| x.to_bits()).eq(want.row(r).iter().map(|x| x.to_bits())), "row {r}");
    }
    for i in 0..pool {
        assert_eq!(got.find(&id(i)), want.find(&id(i)), "find {}", id(i));
        assert_eq!(got.first_row_after(&id(i)), want.first_row_after(&id(i)));
    }
    for now in [0, 10, 50, 99, 1000] {
        assert_eq!(got.expired_count(now), want.expired_count(now), "expired at {now}");
    }
    assert_eq!(got.next_deadline_ms(), want.next_deadline_ms());
}

fn assert_same_answers(got: &Index, want: &Index, queries: &[(Vec<f32>, usize, Option<f32>)]) {
    let batch: Vec<LiveQuery<'_>> = queries
        .iter()
        .map(|(v, k, min_score)| LiveQuery { vector: v, k: *k, min_score: *min_score, ..LiveQuery::default() })
        .collect();
    let bits = |a: &ScanAnswer| a.hits.iter().map(|h| (h.row, h.score.to_bits())).collect::<Vec<_>>();
    // Both at the same `now_ms` (0), so both skip the same expired rows.
    let together = (got.search(&batch, 0), want.search(&batch, 0));
    for (i, q) in batch.iter().enumerate() {
        let alone =
            (got.search(std::slice::from_ref(q), 0).remove(0), want.search(std::slice::from_ref(q), 0).remove(0));
        assert_eq!(bits(&alone.0), bits(&alone.1), "query {i} alone");
        assert_eq!(bits(&together.0[i]), bits(&alone.1), "query {i} in a batch");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn updates_through_the_delta_answer_like_a_fresh_index(
        base_docs in prop::collection::btree_map(0..1200usize, (vector(), prop::option::of(0..100u64)), 400..900),
        batches in prop::collection::vec(prop::collection::vec(change(), 1..12), 1..4),
        merge_after in prop::option::of(0..3usize),
        queries in prop::collection::vec((vector(), 1..12usize, prop::option::of(-0.2f32..0.9)), 1..5),
    ) {
        let model: Model = base_docs.into_iter().map(|(i, d)| (id(i), d)).collect();
        for mode in [ScanMode::F32, ScanMode::Int8, ScanMode::Auto] {
            let mut model = model.clone();
            let mut index = Arc::new(build(&model).with_scan(mode));
            // A background merge started after batch `merge_after`: its source and result.
            let mut merging: Option<(Arc<Index>, Index)> = None;
            for (b, batch) in batches.iter().enumerate() {
                let mut fresh_model = Model::new();
                let mut changed = HashSet::new();
                for (i, set) in batch {
                    changed.insert(id(*i));
                    fresh_model.remove(&id(*i));
                    match set {
                        Some(d) => {
                            model.insert(id(*i), d.clone());
                            fresh_model.insert(id(*i), d.clone());
                        }
                        None => {
                            model.remove(&id(*i));
                        }
                    }
                }
                let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();
                let (next, _) = index.apply(&build(&fresh_model), &changed).expect("same dim");
                prop_assert!(next.shares_base_with(&index), "an update never copies the base");
                index = Arc::new(next);
                if merge_after == Some(b) {
                    merging = Some((Arc::clone(&index), index.merged()));
                }
            }
            if let Some((source, merged)) = merging {
                // Published like the refresher does: rebased on what came since.
                let rebased = index.rebase(&source, &merged).expect("descends from the merge's source");
                prop_assert!(rebased.shares_base_with(&merged));
                index = Arc::new(rebased);
            }
            let want = build(&model).with_scan(mode);
            prop_assert!(want.rebase(&index, &index.merged()).is_none(), "not descended from it");
            prop_assert_eq!(index.scan(), want.scan());
            assert_same_view(&index, &want, 1200);
            assert_same_answers(&index, &want, &queries);
            let merged = index.merged();
            prop_assert!(merged.tombstones().is_empty() && merged.segments().1.is_empty());
            assert_same_view(&merged, &want, 1200);
        }
    }
}

#[test]
fn a_snapshot_with_a_delta_still_answers_through_the_int8_pass() {
    // Arrange: 3,000 rows, then 40 rewritten and 40 deleted.
    let mut model: Model = (0..3000)
        .map(|i| (id(i), (unit((0..DIM).map(|d| (((i * 31 + d * 17) % 97) as f32) - 48.0).collect()), None)))
        .collect();
    let index = build(&model).with_scan(ScanMode::Int8);
    let mut fresh = Model::new();
    for i in 0..40 {
        let v = unit((0..DIM).map(|d| ((i + d) % 7) as f32 - 3.0).collect());
        model.insert(id(i * 50), (v.clone(), None));
        fresh.insert(id(i * 50), (v, None));
        model.remove(&id(i * 50 + 7));
    }
    let changed: Vec<String> = (0..40).flat_map(|i| [id(i * 50), id(i * 50 + 7)]).collect();
    let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();

    // Act
    let (next, counts) = index.apply(&build(&fresh), &changed).expect("same dim");

    // Assert
    assert_eq!(counts, ApplyCounts { added: 0, updated: 40, removed: 40 });
    assert_eq!((next.segments().1.len(), next.tombstones().len(), next.len()), (40, 80, 2960));
    let want = build(&model).with_scan(ScanMode::Int8);
    let q = next.row(123).to_vec();
    let query = [LiveQuery { vector: &q, k: 10, ..LiveQuery::default() }];
    let got = next.search(&query, 0).remove(0);
    assert_eq!(got.hits, want.search(&query, 0).remove(0).hits);
    assert_eq!(next.scan(), ScanPath::Int8);
    assert_eq!(got.path, ScanPath::Int8);
    assert!(!next.needs_merge());
}

#[test]
fn a_document_added_after_every_base_id_is_found_by_its_own_vector() {
    for mode in [ScanMode::F32, ScanMode::Int8] {
        let model: Model = (0..3000)
            .map(|i| (id(i * 2), (unit((0..DIM).map(|d| (((i * 31 + d * 17) % 97) as f32) - 48.0).collect()), None)))
            .collect();
        let index = build(&model).with_scan(mode);
        let v = unit(vec![1.0, -2.0, 3.0, 0.5, 0.25, -1.0, 2.0, 7.0]);
        let fresh: Model = [(id(110_867), (v.clone(), None))].into_iter().collect();
        let new_id = id(110_867);
        let changed: HashSet<&str> = [new_id.as_str()].into_iter().collect();
        let (next, _) = index.apply(&build(&fresh), &changed).expect("same dim");
        let got = next.search(&[LiveQuery { vector: &v, k: 1, ..LiveQuery::default() }], 0).remove(0);
        assert_eq!(got.hits.len(), 1, "{mode:?}");
        assert_eq!(&*next.doc(got.hits[0].row as usize).id, id(110_867), "{mode:?}");
    }
}
