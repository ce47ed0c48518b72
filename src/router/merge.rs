//! Merging per-shard top-k lists into the global top-k.
//!
//! Each shard answers the exact top-k of its own documents under the tie
//! rule (`search/topk.rs`: higher score first, equal scores by ascending id).
//! Shards hold disjoint documents, so the global top-k is contained in the
//! union of the shard lists, and ordering that union by the same rule and
//! keeping k gives exactly what one node holding everything would answer.
//! Pure: no I/O, no allocation beyond the output.

use std::cmp::Ordering;

/// What the merge needs to know about a hit.
pub trait Ranked {
    /// What hits are ordered by, exactly (an f64 fused score, or an f32
    /// cosine widened).
    fn score(&self) -> f64;
    fn id(&self) -> &str;
}

/// The tie rule of `search/topk.rs` on ids instead of rows (rows are in id
/// order there, so the two agree): `Less` means `a` ranks before `b`.
pub fn rank_order<T: Ranked>(a: &T, b: &T) -> Ordering {
    b.score().total_cmp(&a.score()).then_with(|| a.id().as_bytes().cmp(b.id().as_bytes()))
}

/// The best `k` hits of all `lists` under the tie rule, best first.
/// The lists need not be sorted, and may be shorter or longer than k.
pub fn merge_top_k<T: Ranked>(lists: Vec<Vec<T>>, k: usize) -> Vec<T> {
    let mut all: Vec<T> = lists.into_iter().flatten().collect();
    if all.len() > k {
        all.select_nth_unstable_by(k, rank_order);
        all.truncate(k);
    }
    all.sort_unstable_by(rank_order);
    all
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct H(String, f32);

    impl Ranked for H {
        fn score(&self) -> f64 {
            f64::from(self.1)
        }
        fn id(&self) -> &str {
            &self.0
        }
    }

    fn h(id: &str, score: f32) -> H {
        H(id.to_owned(), score)
    }

    /// One node's answer: every hit sorted by the tie rule, cut at k.
    fn single_node(mut all: Vec<H>, k: usize) -> Vec<H> {
        all.sort_by(rank_order);
        all.truncate(k);
        all
    }

    #[test]
    fn equal_scores_go_to_the_smaller_id_across_shards() {
        let merged = merge_top_k(vec![vec![h("b", 0.5), h("d", 0.1)], vec![h("a", 0.5), h("c", 0.5)]], 3);
        assert_eq!(merged, vec![h("a", 0.5), h("b", 0.5), h("c", 0.5)]);
    }

    #[test]
    fn edges_k_larger_than_everything_one_and_empty() {
        let lists = vec![vec![h("x", 0.9)], vec![], vec![h("y", -0.2)]];
        assert_eq!(merge_top_k(lists.clone(), 10), vec![h("x", 0.9), h("y", -0.2)]);
        assert_eq!(merge_top_k(lists, 1), vec![h("x", 0.9)]);
        assert_eq!(merge_top_k(Vec::<Vec<H>>::new(), 3), vec![]);
        assert_eq!(merge_top_k(vec![vec![h("x", 0.9)]], 0), vec![]);
    }

    #[test]
    fn ids_compare_bytewise_as_the_index_orders_them() {
        // 'Z' (0x5A) < 'a' (0x61) < 'é' (0xC3 …): byte order, not locale order.
        let merged = merge_top_k(vec![vec![h("é", 0.3)], vec![h("a", 0.3), h("Z", 0.3)]], 3);
        assert_eq!(merged, vec![h("Z", 0.3), h("a", 0.3), h("é", 0.3)]);
    }

    proptest! {
        /// Documents split over 1..6 shards, each answering its own exact
        /// top-k: the merge equals the top-k of one node holding them all.
        /// Scores come from a few values, so ties across shards are common.
        #[test]
        fn merge_of_shard_answers_equals_the_single_node_answer(
            docs in proptest::collection::btree_map("[a-z]{1,4}", (0u8..6, 0usize..6), 0..60),
            shards in 1usize..6,
            k in 1usize..20,
        ) {
            let all: Vec<H> = docs.iter().map(|(id, (s, _))| h(id, f32::from(*s) / 4.0 - 0.5)).collect();
            let mut per_shard: Vec<Vec<H>> = vec![Vec::new(); shards];
            for ((id, (s, shard)), _) in docs.iter().zip(0..) {
                per_shard[shard % shards].push(h(id, f32::from(*s) / 4.0 - 0.5));
            }
            let answers: Vec<Vec<H>> = per_shard.into_iter().map(|docs| single_node(docs, k)).collect();
            prop_assert_eq!(merge_top_k(answers, k), single_node(all, k));
        }
    }
}
