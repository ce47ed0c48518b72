//! Bounded top-k selection and **the tie rule** (the one place it is written).
//!
//! # Tie rule
//! Results are ordered by score, highest first; equal scores are ordered by
//! ascending document id. Rows of an index (`index::Index`, which this module
//! does not depend on) are stored in ascending id order, so "smaller id" is
//! the same as "smaller row", and this module only ever compares rows.
//! `openapi.yaml` and the README point here.
//!
//! Scores are compared with [`f32::total_cmp`]; the index never holds a NaN
//! (the loader and the API reject non-finite input), so this is plain numeric
//! order in practice and a total order in theory.

use std::cmp::Ordering;

/// One scored row: the unit of every search result before metadata is attached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    /// Row in the index matrix (row order is id order).
    pub row: u32,
    /// Cosine similarity between the query and the row.
    pub score: f32,
}

/// `Less` means `a` ranks before `b` under the tie rule.
#[inline]
pub fn rank_order(a: &Hit, b: &Hit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
}

/// A size-k buffer keeping the best hits seen so far.
///
/// `threshold` lets the scan skip the bookkeeping for rows that cannot enter.
/// Created once per scanned block, so the hot loop never allocates.
#[derive(Debug)]
pub struct TopK {
    k: usize,
    /// Kept as a binary heap whose root is the *worst* hit kept.
    heap: std::collections::BinaryHeap<WorstFirst>,
}

#[derive(Debug, Clone, Copy)]
struct WorstFirst(Hit);

impl PartialEq for WorstFirst {
    fn eq(&self, other: &Self) -> bool {
        rank_order(&self.0, &other.0) == Ordering::Equal
    }
}
impl Eq for WorstFirst {}
impl PartialOrd for WorstFirst {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WorstFirst {
    /// The max-heap root is the hit that ranks last.
    fn cmp(&self, other: &Self) -> Ordering {
        rank_order(&self.0, &other.0)
    }
}

impl TopK {
    /// A buffer for the best `k` hits. `k = 0` keeps nothing.
    pub fn new(k: usize) -> Self {
        Self { k, heap: std::collections::BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)) }
    }

    /// Offers one hit; keeps it if it ranks among the best `k` so far.
    #[inline]
    pub fn push(&mut self, hit: Hit) {
        if self.heap.len() < self.k {
            self.heap.push(WorstFirst(hit));
        } else if let Some(mut worst) = self.heap.peek_mut() {
            if rank_order(&hit, &worst.0) == Ordering::Less {
                *worst = WorstFirst(hit);
            }
        }
    }

    /// The score a new hit must reach to have a chance of entering, or
    /// `f32::NEG_INFINITY` while the buffer is not full.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap.peek().map_or(f32::INFINITY, |w| w.0.score)
        }
    }

    /// Folds another buffer (from another block of rows) into this one.
    pub fn merge(&mut self, other: TopK) {
        for w in other.heap {
            self.push(w.0);
        }
    }

    /// The kept hits in rank order (see the tie rule above).
    pub fn into_sorted(self) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self.heap.into_iter().map(|w| w.0).collect();
        hits.sort_by(rank_order);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(row: u32, score: f32) -> Hit {
        Hit { row, score }
    }

    #[test]
    fn keeps_the_best_k_in_rank_order() {
        let mut t = TopK::new(2);
        for hit in [h(0, 0.1), h(1, 0.9), h(2, 0.5), h(3, 0.7)] {
            t.push(hit);
        }
        assert_eq!(t.into_sorted(), vec![h(1, 0.9), h(3, 0.7)]);
    }

    #[test]
    fn equal_scores_rank_the_smaller_row_first() {
        let mut t = TopK::new(3);
        for row in [7, 3, 9, 1, 5] {
            t.push(h(row, 0.5));
        }
        assert_eq!(t.into_sorted(), vec![h(1, 0.5), h(3, 0.5), h(5, 0.5)]);
    }

    #[test]
    fn k_larger_than_input_returns_everything() {
        let mut t = TopK::new(10);
        t.push(h(0, 0.2));
        t.push(h(1, 0.3));
        assert_eq!(t.into_sorted(), vec![h(1, 0.3), h(0, 0.2)]);
    }

    #[test]
    fn k_zero_keeps_nothing() {
        let mut t = TopK::new(0);
        t.push(h(0, 1.0));
        assert!(t.into_sorted().is_empty());
    }

    #[test]
    fn threshold_is_the_worst_kept_score_once_full() {
        let mut t = TopK::new(2);
        assert_eq!(t.threshold(), f32::NEG_INFINITY);
        t.push(h(0, 0.4));
        t.push(h(1, 0.8));
        assert_eq!(t.threshold(), 0.4);
    }

    #[test]
    fn merge_respects_the_tie_rule_across_buffers() {
        let mut a = TopK::new(2);
        a.push(h(4, 0.5));
        a.push(h(0, 0.1));
        let mut b = TopK::new(2);
        b.push(h(2, 0.5));
        b.push(h(9, 0.9));
        a.merge(b);
        assert_eq!(a.into_sorted(), vec![h(9, 0.9), h(2, 0.5)]);
    }
}
