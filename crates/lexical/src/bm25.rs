//! BM25F over title and text: a question's terms, the corpus' statistics
//! for them, and the score each document gets.
//!
//! score(d) = Σ over the question's terms t (with repeats, in question order) of
//! `idf(t) · tf / (k1 + tf)`, where
//! `tf = w_title · tf_title / (1 − b + b · len_title / avg_title) + tf_text / (1 − b + b · len_text / avg_text)`
//! (a field the term is absent from adds nothing) and
//! `idf(t) = ln(1 + (N − df(t) + 0.5) / (df(t) + 0.5))`, with N, df and the
//! average field lengths over the whole corpus (every document of the
//! snapshot, or of every shard: not only those a filter keeps), lengths in
//! terms after analysis.
//!
//! Every operation is in f64 and in this order, so any implementation of
//! the formula (the naive one in the tests, the Python one the relevance
//! study used) gives the same bits.

use crate::postings::{FieldStats, Postings};

/// The constants of BM25F (`SEMSEARCH_LEXICAL_*`): the textbook k1 and b,
/// the title counted twice. The relevance study found the whole grid
/// around them flat (`docs/text-search.md`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    pub k1: f64,
    pub b: f64,
    pub title_weight: f64,
}

impl Default for Bm25Params {
    fn default() -> Self {
        Self { k1: 1.2, b: 0.75, title_weight: 2.0 }
    }
}

/// What one question's scores take from the corpus: the field totals and,
/// per term of the question (same order, repeats included), the documents
/// containing it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorpusStats {
    pub fields: FieldStats,
    pub df: Vec<u64>,
}

impl CorpusStats {
    /// Adds another disjoint part of the corpus (a shard, a segment).
    ///
    /// # Panics
    /// If the two were computed for questions of different lengths.
    pub fn add(&mut self, other: &CorpusStats) {
        assert_eq!(self.df.len(), other.df.len(), "statistics of the same question");
        self.fields.add(other.fields);
        for (a, b) in self.df.iter_mut().zip(&other.df) {
            *a += b;
        }
    }
}

/// A question ready to score documents: its terms with their idf and the
/// corpus' average field lengths.
#[derive(Debug, Clone)]
pub struct Scorer {
    terms: Vec<String>,
    idf: Vec<f64>,
    avg_title: f64,
    avg_text: f64,
    params: Bm25Params,
}

impl Scorer {
    /// # Panics
    /// If `stats.df` does not hold one count per term.
    pub fn new(terms: Vec<String>, stats: &CorpusStats, params: Bm25Params) -> Self {
        assert_eq!(terms.len(), stats.df.len(), "one document frequency per term");
        let n = stats.fields.docs as f64;
        let idf = stats.df.iter().map(|&df| idf(n, df as f64)).collect();
        let avg = |total: u64| if stats.fields.docs == 0 { 0.0 } else { total as f64 / n };
        Self { idf, avg_title: avg(stats.fields.title_len), avg_text: avg(stats.fields.text_len), terms, params }
    }

    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// Each term's idf, in the question's order.
    pub fn idf(&self) -> &[f64] {
        &self.idf
    }

    /// Whether no document can score: no term, or none in the corpus.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Calls `add(row, contribution)` for every posting of every term of
    /// the question, term after term in the question's order: a caller
    /// summing the contributions per row gets BM25F with the additions in
    /// the documented order.
    pub fn each_contribution(&self, postings: &Postings, mut add: impl FnMut(u32, f64)) {
        for i in 0..self.terms.len() {
            self.term_contributions(postings, i, &mut add);
        }
    }

    /// [`Self::each_contribution`] of the question's `i`-th term alone: its
    /// postings' contributions, rows ascending.
    ///
    /// # Panics
    /// If `i` is not below `self.terms().len()`.
    pub fn term_contributions(&self, postings: &Postings, i: usize, mut add: impl FnMut(u32, f64)) {
        let p = self.params;
        let idf = self.idf[i];
        postings.for_each(&self.terms[i], |row, tf_title, tf_text| {
            let (len_title, len_text) = postings.lens(row as usize);
            let tf = field_tf(p, tf_title, len_title, self.avg_title, tf_text, len_text, self.avg_text);
            add(row, idf * tf / (p.k1 + tf));
        });
    }
}

/// `ln(1 + (N − df + 0.5) / (df + 0.5))`: never negative, unlike the
/// classic Robertson idf for terms in over half the documents.
pub fn idf(n: f64, df: f64) -> f64 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// The length-normalised, title-weighted term frequency of BM25F.
pub fn field_tf(
    p: Bm25Params,
    tf_title: u32,
    len_title: u32,
    avg_title: f64,
    tf_text: u32,
    len_text: u32,
    avg_text: f64,
) -> f64 {
    let mut tf = 0.0;
    if tf_title > 0 {
        tf += p.title_weight * f64::from(tf_title) / (1.0 - p.b + p.b * f64::from(len_title) / avg_title);
    }
    if tf_text > 0 {
        tf += f64::from(tf_text) / (1.0 - p.b + p.b * f64::from(len_text) / avg_text);
    }
    tf
}
