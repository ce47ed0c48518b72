//! Fusing the vector ranking with the lexical one, exactly: the fused top-k
//! equals what scoring every document and sorting would give.
//!
//! The fused score of a document d for a question q (`docs/text-search.md`
//! has the study behind every constant):
//!
//! ```text
//!   μ      = q · mean(document vectors)   (the mean cosine over the corpus)
//!   a      = 1.0 if μ ≤ 0.10, 0.4 if μ ≥ 0.20, linear in between (or the request's `vector_weight`)
//!   v'(d)  = (cos(d) − μ) / (cos₁ − μ)    (1 in place of a non-positive denominator)
//!   l'(d)  = bm25f(d) / bm25f₁             (0 when nothing matches)
//!   score  = a · v'(d) + (1 − a) · l'(d)
//! ```
//!
//! where cos₁ and bm25f₁ are the best cosine and the best BM25F among the
//! documents the question may return (its filter's, live, not excluded).
//! MiniLM puts Portuguese text, which it barely reads, in one crowded
//! region of its space: a Portuguese question has μ ≈ 0.25, an English one
//! μ ≈ 0.06. So a question the model understands is ranked by its vectors
//! (a = 1: English results are exactly the vector ranking), and one it does
//! not is ranked mostly by its words. μ does not grow with the corpus, unlike
//! "how far the best cosine stands out", which the study rejected for that.
//!
//! Exactness without scoring everything: a document no question term
//! matches scores a·v'(cos), increasing in its cosine, so the best of them
//! are among the vector top-k; the candidates are therefore the vector top-k
//! and the lexical matches. A match outside the vector top-k has a cosine of
//! at most the k-th best (cos_k), so `a·v'(cos_k) + (1−a)·l'(d)` bounds its
//! score; matches are visited by descending BM25F and the walk stops once
//! that bound falls below the k-th fused score so far. Only the matches
//! that can still enter get their cosine computed. All arithmetic is f64
//! on the f32 cosines, in the order written above; ties go to the smaller
//! row (id order), the tie rule of `search::topk`.

use std::cmp::Ordering;

/// The vector weight's ramp over μ (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusionParams {
    /// At or below this μ the vector weight is `weight_high`.
    pub mu_low: f64,
    /// At or above this μ the vector weight is `weight_low`.
    pub mu_high: f64,
    pub weight_high: f64,
    pub weight_low: f64,
}

impl Default for FusionParams {
    fn default() -> Self {
        Self { mu_low: 0.10, mu_high: 0.20, weight_high: 1.0, weight_low: 0.4 }
    }
}

impl FusionParams {
    /// The vector weight `a` for a question of centroid affinity `mu`.
    pub fn vector_weight(&self, mu: f64) -> f64 {
        let t = ((mu - self.mu_low) / (self.mu_high - self.mu_low)).clamp(0.0, 1.0);
        self.weight_high - (self.weight_high - self.weight_low) * t
    }
}

/// The per-question constants of the fused score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fusion {
    /// The vector weight `a`, in (0, 1].
    pub weight: f64,
    pub mu: f64,
    /// Best cosine among the documents the question may return.
    pub best_cosine: f32,
    /// Best BM25F among them (0: nothing matches).
    pub best_lexical: f64,
}

impl Fusion {
    /// The fused score of a document with cosine `cos` and BM25F `bm`.
    pub fn score(&self, cos: f32, bm: f64) -> f64 {
        let spread = f64::from(self.best_cosine) - self.mu;
        let v = (f64::from(cos) - self.mu) / if spread > 0.0 { spread } else { 1.0 };
        let l = if self.best_lexical > 0.0 { bm / self.best_lexical } else { 0.0 };
        self.weight * v + (1.0 - self.weight) * l
    }
}

/// One fused hit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedHit {
    pub row: u32,
    pub score: f64,
    pub cosine: f32,
    /// 0 when no question term is in the document.
    pub lexical: f64,
}

/// Best first; equal scores by ascending row.
pub fn fused_order(a: &FusedHit, b: &FusedHit) -> Ordering {
    b.score.total_cmp(&a.score).then(a.row.cmp(&b.row))
}

/// A lexical match ordered for a max-heap: the greater is the better BM25F,
/// then the smaller row.
#[derive(Debug, Clone, Copy)]
struct ByLexical((u32, f64));

impl PartialEq for ByLexical {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ByLexical {}

impl PartialOrd for ByLexical {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for ByLexical {
    fn cmp(&self, other: &Self) -> Ordering {
        let ((ra, a), (rb, b)) = (self.0, other.0);
        a.total_cmp(&b).then(rb.cmp(&ra))
    }
}

/// The exact top-`k` fused hits, best first, keeping only scores `>=
/// min_score` if given.
///
/// - `vector_top`: the exact top-k rows by cosine among the documents the
///   question may return, best first under the tie rule, with their cosines;
/// - `matches`: every such document any question term matches, with its
///   BM25F (> 0), in any order;
/// - `cosine`: the exact cosine of any row, bit for bit what the scan
///   gives it (the same kernel).
pub fn top_k(
    fusion: &Fusion,
    k: usize,
    min_score: Option<f64>,
    vector_top: &[(u32, f32)],
    matches: &mut [(u32, f64)],
    cosine: impl Fn(u32) -> f32,
) -> Vec<FusedHit> {
    if k == 0 {
        return Vec::new();
    }
    let floor = min_score.unwrap_or(f64::NEG_INFINITY);
    // The vector top-k with their lexical scores.
    matches.sort_unstable_by_key(|&(row, _)| row);
    let lexical_of = |row: u32| matches.binary_search_by_key(&row, |&(r, _)| r).map_or(0.0, |i| matches[i].1);
    let mut hits: Vec<FusedHit> = vector_top
        .iter()
        .map(|&(row, cos)| {
            let bm = lexical_of(row);
            FusedHit { row, score: fusion.score(cos, bm), cosine: cos, lexical: bm }
        })
        .collect();
    // Matches outside the vector top-k, best BM25F first, while they can enter.
    let mut vector_rows: Vec<u32> = vector_top.iter().map(|&(r, _)| r).collect();
    vector_rows.sort_unstable();
    let in_vector_top = |row: u32| vector_rows.binary_search(&row).is_ok();
    // A heap, not a sort: usually only a few of them are looked at before
    // the bound stops the walk, and popping gives the same strict order
    // (best BM25F, then smaller row) a sort would.
    let mut rest: std::collections::BinaryHeap<ByLexical> =
        matches.iter().copied().filter(|&(row, _)| !in_vector_top(row)).map(ByLexical).collect();
    // Full vector top-k: no match outside it has a better cosine than its last.
    let cos_cap = (vector_top.len() == k).then(|| vector_top[k - 1].1);
    hits.sort_unstable_by(fused_order);
    while let Some(ByLexical((row, bm))) = rest.pop() {
        let kth = (hits.len() >= k).then(|| hits[k - 1].score);
        if let (Some(kth), Some(cap)) = (kth, cos_cap) {
            if fusion.score(cap, bm) < kth {
                break;
            }
        }
        let cos = cosine(row);
        let hit = FusedHit { row, score: fusion.score(cos, bm), cosine: cos, lexical: bm };
        let at = hits.partition_point(|h| fused_order(h, &hit) == Ordering::Less);
        if at < k {
            hits.insert(at, hit);
            hits.truncate(k);
        }
    }
    hits.retain(|h| h.score >= floor);
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Every row scored and sorted: the oracle.
    fn brute_force(fusion: &Fusion, k: usize, min_score: Option<f64>, cos: &[f32], bm: &[f64]) -> Vec<FusedHit> {
        let mut all: Vec<FusedHit> = (0..cos.len())
            .map(|i| FusedHit { row: i as u32, score: fusion.score(cos[i], bm[i]), cosine: cos[i], lexical: bm[i] })
            .filter(|h| min_score.is_none_or(|m| h.score >= m))
            .collect();
        all.sort_by(fused_order);
        all.truncate(k);
        all
    }

    fn vector_top(cos: &[f32], k: usize) -> Vec<(u32, f32)> {
        let mut rows: Vec<(u32, f32)> = cos.iter().enumerate().map(|(i, &c)| (i as u32, c)).collect();
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        rows.truncate(k);
        rows
    }

    proptest! {
        /// Candidates and early stop give exactly the brute-force fused top-k,
        /// ties included: cosines and BM25F come from a few values, so equal
        /// scores are common.
        #[test]
        fn fused_top_k_equals_scoring_every_document(
            cos_steps in proptest::collection::vec(-4i8..8, 1..120),
            bm_steps in proptest::collection::vec(0u8..6, 120),
            k in 1usize..15,
            mu_step in -2i8..6,
            weight_step in 1u8..=10,
            min_step in proptest::option::of(-8i8..10),
        ) {
            let cos: Vec<f32> = cos_steps.iter().map(|&c| f32::from(c) / 8.0).collect();
            let bm: Vec<f64> = bm_steps.iter().take(cos.len()).map(|&b| f64::from(b) * 0.75).collect();
            let mut matches: Vec<(u32, f64)> =
                bm.iter().enumerate().filter(|(_, &b)| b > 0.0).map(|(i, &b)| (i as u32, b)).collect();
            let top = vector_top(&cos, k);
            let fusion = Fusion {
                weight: f64::from(weight_step) / 10.0,
                mu: f64::from(mu_step) / 20.0,
                best_cosine: top[0].1,
                best_lexical: matches.iter().map(|m| m.1).fold(0.0, f64::max),
            };
            let min_score = min_step.map(|m| f64::from(m) / 8.0);

            let got = top_k(&fusion, k, min_score, &top, &mut matches, |row| cos[row as usize]);

            prop_assert_eq!(got, brute_force(&fusion, k, min_score, &cos, &bm));
        }
    }

    #[test]
    fn an_english_question_is_ranked_by_its_vectors_alone() {
        let p = FusionParams::default();
        assert_eq!(p.vector_weight(0.06), 1.0);
        assert_eq!(p.vector_weight(0.25), 0.4);
        assert!((p.vector_weight(0.15) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn a_flat_or_empty_channel_adds_nothing() {
        let f = Fusion { weight: 0.5, mu: 0.3, best_cosine: 0.2, best_lexical: 0.0 };
        assert_eq!(f.score(0.25, 0.0), 0.5 * (0.25 - 0.3), "a non-positive spread divides by 1");
        assert!(f.score(0.25, 0.0) < f.score(0.26, 0.0), "still increasing in the cosine");
    }
}
