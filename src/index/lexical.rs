//! The lexical side of a snapshot: postings beside the vector rows,
//! following every change exactly as the rows do.
//!
//! Like the rows, it is a base part shared by `Arc` between the snapshots
//! built from one base, a small delta part rebuilt by each per-key update,
//! and the tombstoned base documents' share of the statistics, which is
//! subtracted: after any sequence of updates, the statistics and the
//! postings are those a fresh index of the same documents would have, and
//! an update costs the changed documents (plus the delta's analysed terms,
//! kept so that rebuilding the delta's postings analyses nothing again),
//! never the corpus. A merge rebuilds the base in the background, as the
//! rows' merge does.
//!
//! Statistics are those of the snapshot's documents, expired or not: a
//! document past its Redis deadline is hidden from results at once, but it
//! counts in N, the document frequencies and the average lengths until the
//! expiry sweep removes it (as Lucene counts deleted documents until a
//! merge). The mean document vector, which hybrid ranking needs (see
//! `super::fusion`), is kept the same way, as f64 sums.

use std::{collections::HashMap, sync::Arc};

use rayon::prelude::*;
use semsearch_lexical::{
    Analyzer, Bm25Params, CorpusStats, DocTerms, FieldStats, FieldsRef, Language, Postings, Scorer,
};

use super::{fusion::FusionParams, Document, Index, LiveQuery};

/// What the lexical side is built and ranked with
/// (`SEMSEARCH_LEXICAL_LANGUAGE`), shared by every snapshot and the router.
pub struct LexicalSettings {
    pub analyzer: Analyzer,
    pub params: Bm25Params,
    pub fusion: FusionParams,
}

/// The language only: the constants are the documented ones.
impl std::fmt::Debug for LexicalSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexicalSettings").field("language", &self.analyzer.language()).finish_non_exhaustive()
    }
}

impl LexicalSettings {
    /// The documented defaults for `language`.
    pub fn new(language: Language) -> Self {
        Self { analyzer: Analyzer::new(language), params: Bm25Params::default(), fusion: FusionParams::default() }
    }
}

/// One segment's lexical part: its postings and its rows' vector sums.
#[derive(Debug, Default)]
pub struct SegmentLexical {
    pub postings: Postings,
    /// Σ of the segment's rows, per dimension (f64).
    pub vector_sum: Vec<f64>,
    /// The analysed terms of every row, kept only for delta segments (a
    /// base would double the lexical memory): the next update rebuilds the
    /// delta's postings from them without analysing again.
    pub terms: Vec<Arc<DocTerms>>,
}

fn fields(doc: &Document) -> FieldsRef<'_> {
    FieldsRef { title: doc.title.as_deref().unwrap_or(""), text: doc.text.as_deref().unwrap_or("") }
}

/// Σ of `rows` (`n × dim`, row-major), per dimension, in row order.
pub fn vector_sum(rows: &[f32], dim: usize) -> Vec<f64> {
    let mut sum = vec![0.0f64; dim];
    if dim == 0 {
        return sum;
    }
    for row in rows.chunks_exact(dim) {
        for (s, &x) in sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
    sum
}

impl SegmentLexical {
    /// A base segment's part: every document analysed on the rayon pool.
    pub fn base(settings: &LexicalSettings, docs: &[Arc<Document>], rows: &[f32], dim: usize) -> Self {
        let postings = Postings::build(&settings.analyzer, docs.par_iter().map(|d| fields(d)));
        Self { postings, vector_sum: vector_sum(rows, dim), terms: Vec::new() }
    }

    /// A base segment's part that takes over `previous`'s postings for
    /// every document whose title and text it holds unchanged (looked up by
    /// id in `previous`'s base) and analyses the rest: what a full reload
    /// builds, since most articles are the same from one reload to the next
    /// and analysis is most of a lexical build. `None` (analyse everything)
    /// when `previous` has no lexical base, analysed in another language,
    /// or holds no terms at all (raw vectors: nothing worth reusing).
    pub fn base_reusing(
        settings: &LexicalSettings,
        docs: &[Arc<Document>],
        rows: &[f32],
        dim: usize,
        previous: &Index,
    ) -> Option<Self> {
        if previous.lexical()?.analyzer.language() != settings.analyzer.language() {
            return None;
        }
        let before = previous.base.lexical().filter(|p| p.postings.terms() > 0)?;
        let before_docs = previous.base.docs();
        let rows_by_id: HashMap<&str, u32> =
            before_docs.iter().zip(0u32..).map(|(d, row)| (d.id.as_ref(), row)).collect();
        let reused: Vec<Option<u32>> = docs
            .par_iter()
            .map(|d| {
                let row = *rows_by_id.get(d.id.as_ref())?;
                let was = before_docs.get(row as usize)?;
                (was.title == d.title && was.text == d.text).then_some(row)
            })
            .collect();
        let postings =
            Postings::build_reusing(&settings.analyzer, docs.par_iter().map(|d| fields(d)), &before.postings, &reused);
        Some(Self { postings, vector_sum: vector_sum(rows, dim), terms: Vec::new() })
    }

    /// A delta segment's part from its documents' terms (rows in order).
    pub fn delta(terms: Vec<Arc<DocTerms>>, rows: &[f32], dim: usize) -> Self {
        let owned: Vec<DocTerms> = terms.iter().map(|t| (**t).clone()).collect();
        Self { postings: Postings::from_terms(&owned), vector_sum: vector_sum(rows, dim), terms }
    }

    pub fn heap_bytes(&self) -> usize {
        self.postings.heap_bytes()
            + self.vector_sum.capacity() * 8
            + self.terms.iter().map(|t| t.terms.iter().map(|(s, _, _)| s.len() + 24).sum::<usize>() + 48).sum::<usize>()
    }
}

/// The tombstoned base documents' share of the statistics.
#[derive(Debug, Clone, Default)]
pub struct Tombstoned {
    pub fields: FieldStats,
    pub df: HashMap<Box<str>, u32>,
    pub vector_sum: Vec<f64>,
}

impl Tombstoned {
    /// Adds a base document now tombstoned, with its row.
    pub fn add(&mut self, terms: &DocTerms, row: &[f32]) {
        self.fields.add(FieldStats {
            docs: 1,
            title_len: u64::from(terms.title_len),
            text_len: u64::from(terms.text_len),
        });
        for (term, _, _) in &terms.terms {
            *self.df.entry(term.clone()).or_default() += 1;
        }
        if self.vector_sum.len() < row.len() {
            self.vector_sum.resize(row.len(), 0.0);
        }
        for (s, &x) in self.vector_sum.iter_mut().zip(row) {
            *s += f64::from(x);
        }
    }
}

/// A question's terms, analysed once per request.
pub fn question_terms(settings: &LexicalSettings, text: &str) -> Vec<String> {
    settings.analyzer.terms(text)
}

/// The statistics of `terms` over base − tombstoned + delta.
pub fn corpus_stats(base: &Postings, tomb: &Tombstoned, delta: &Postings, terms: &[String]) -> CorpusStats {
    let mut fields = base.stats();
    fields.remove(tomb.fields);
    fields.add(delta.stats());
    let df = terms
        .iter()
        .map(|t| {
            let dead = tomb.df.get(t.as_str()).copied().unwrap_or(0);
            u64::from(base.df(t).saturating_sub(dead)) + u64::from(delta.df(t))
        })
        .collect();
    CorpusStats { fields, df }
}

/// The mean document vector's dot product with `q` (the mean cosine, as
/// `q` and the rows are unit length): `q · (base − tombstoned + delta) / n`.
pub fn mean_cosine(q: &[f32], base: &[f64], tomb: &[f64], delta: &[f64], n: usize) -> f64 {
    if n == 0 {
        return 0.0;
    }
    let mut dot = 0.0f64;
    for (i, &x) in q.iter().enumerate() {
        let sum = base.get(i).copied().unwrap_or(0.0) - tomb.get(i).copied().unwrap_or(0.0)
            + delta.get(i).copied().unwrap_or(0.0);
        dot += f64::from(x) * sum;
    }
    dot / n as f64
}

/// BM25F of every document of one segment some term matches, summed per
/// row in the question's term order: `(segment row, score)`, ascending rows.
///
/// Each term's postings come rows ascending, so the sums are a merge of
/// sorted lists, term after term: `acc` (the sums of the terms before) and
/// the next term's contributions make the new `acc`, a row's sum growing in
/// the question's term order as a per-row accumulator would (the same
/// floats), with no hashing and memory O(matches).
pub fn segment_scores(scorer: &Scorer, postings: &Postings) -> Vec<(u32, f64)> {
    let mut acc: Vec<(u32, f64)> = Vec::new();
    let mut term: Vec<(u32, f64)> = Vec::new();
    let mut merged: Vec<(u32, f64)> = Vec::new();
    for i in 0..scorer.terms().len() {
        term.clear();
        scorer.term_contributions(postings, i, |row, c| term.push((row, c)));
        if term.is_empty() {
            continue;
        }
        merged.clear();
        merged.reserve(acc.len() + term.len());
        let (mut a, mut t) = (acc.iter().peekable(), term.iter().peekable());
        loop {
            match (a.peek(), t.peek()) {
                (Some(&&(ra, sa)), Some(&&(rt, ct))) => {
                    if ra < rt {
                        merged.push((ra, sa));
                        a.next();
                    } else if rt < ra {
                        merged.push((rt, 0.0 + ct));
                        t.next();
                    } else {
                        merged.push((ra, sa + ct));
                        a.next();
                        t.next();
                    }
                }
                (Some(&&x), None) => {
                    merged.push(x);
                    a.next();
                }
                (None, Some(&&(rt, ct))) => {
                    merged.push((rt, 0.0 + ct));
                    t.next();
                }
                (None, None) => break,
            }
        }
        std::mem::swap(&mut acc, &mut merged);
    }
    acc
}

/// A document's analysed terms.
pub fn doc_terms(settings: &LexicalSettings, doc: &Document) -> Arc<DocTerms> {
    Arc::new(DocTerms::analyze(&settings.analyzer, fields(doc)))
}

impl Index {
    /// This index with its lexical side built (postings of every
    /// document, the vector sums), analysed and ranked as `settings` say;
    /// the snapshots [`Index::apply`] and [`Index::merged`] make from it
    /// keep it up to date.
    ///
    /// CPU work, O(documents' text): analyses on the rayon pool, so call it
    /// from rayon or a blocking thread, never from a tokio worker.
    pub fn with_lexical(self, settings: Arc<LexicalSettings>) -> Self {
        self.with_lexical_reusing(settings, None)
    }

    /// [`Index::with_lexical`], where the base's postings take over
    /// `previous`'s for every document it holds unchanged
    /// ([`SegmentLexical::base_reusing`]): a full reload's lexical build.
    /// The result is the same as without `previous`.
    pub fn with_lexical_reusing(mut self, settings: Arc<LexicalSettings>, previous: Option<&Index>) -> Self {
        if self.base.lexical().is_none() {
            let (docs, rows, dim) = (self.base.docs(), self.base.rows(), self.base.dim());
            let part = previous
                .and_then(|p| SegmentLexical::base_reusing(&settings, docs, rows, dim, p))
                .unwrap_or_else(|| SegmentLexical::base(&settings, docs, rows, dim));
            match Arc::get_mut(&mut self.base) {
                Some(base) => base.set_lexical(part),
                None => {
                    let mut base = self.base.clone_rows();
                    base.set_lexical(part);
                    self.base = Arc::new(base);
                }
            }
        }
        if self.delta.lexical().is_none() {
            let terms = self.delta.docs().iter().map(|d| doc_terms(&settings, d)).collect();
            let part = SegmentLexical::delta(terms, self.delta.rows(), self.delta.dim());
            self.delta.set_lexical(part);
        }
        let mut tombstoned = Tombstoned::default();
        for &t in self.tombstones() {
            tombstoned.add(&doc_terms(&settings, self.base.doc(t as usize)), self.base.row(t as usize));
        }
        self.tombstoned = tombstoned;
        self.lexical = Some(settings);
        self
    }

    /// How this snapshot's lexical side analyses and ranks; `None` when it has none.
    pub fn lexical(&self) -> Option<&LexicalSettings> {
        self.lexical.as_deref()
    }

    /// Heap bytes of the lexical side (postings, dictionaries, sums).
    pub fn lexical_bytes(&self) -> usize {
        let (base, delta) = self.segments();
        base.lexical().map_or(0, SegmentLexical::heap_bytes) + delta.lexical().map_or(0, SegmentLexical::heap_bytes)
    }

    /// The parts every query below reads; `None` without a lexical side.
    fn lexical_parts(&self) -> Option<(&SegmentLexical, &SegmentLexical)> {
        let (base, delta) = self.segments();
        Some((base.lexical()?, delta.lexical()?))
    }

    /// The statistics of `terms` over this snapshot's documents (expired
    /// ones included until the sweep removes them; see the module doc).
    pub fn corpus_stats(&self, terms: &[String]) -> CorpusStats {
        match self.lexical_parts() {
            Some((base, delta)) => corpus_stats(&base.postings, &self.tombstoned, &delta.postings, terms),
            None => CorpusStats { df: vec![0; terms.len()], ..CorpusStats::default() },
        }
    }

    /// `q ·` the sum of this snapshot's document vectors, in f64.
    pub fn vector_dot_sum(&self, q: &[f32]) -> f64 {
        match self.lexical_parts() {
            Some((base, delta)) => mean_cosine(q, &base.vector_sum, &self.tombstoned.vector_sum, &delta.vector_sum, 1),
            None => 0.0,
        }
    }

    /// The mean cosine of `q` over this snapshot's documents: μ of `fusion`.
    pub fn mean_cosine(&self, q: &[f32]) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        self.vector_dot_sum(q) / self.len() as f64
    }

    /// BM25F of every document `scorer`'s terms match among the rows live
    /// for `query` at `now_ms` (the rule of [`Index::search`]: not past its
    /// deadline, not tombstoned, not excluded, in the filter's rows):
    /// `(view row, score)`, ascending rows.
    pub fn lexical_matches(&self, scorer: &Scorer, query: &LiveQuery<'_>, now_ms: u64) -> Vec<(u32, f64)> {
        let Some((base, delta)) = self.lexical_parts() else { return Vec::new() };
        let mut out: Vec<(u32, f64)> = segment_scores(scorer, &base.postings)
            .into_iter()
            .filter_map(|(i, s)| Some((self.base_row_in_view(i as usize)? as u32, s)))
            .collect();
        let delta_rows = self.delta_rows_in_view();
        out.extend(segment_scores(scorer, &delta.postings).into_iter().map(|(j, s)| (delta_rows[j as usize], s)));
        out.retain(|&(row, _)| {
            query.rows.is_none_or(|r| r.contains(row))
                && query.exclude != Some(row as usize)
                && !self.is_expired(row as usize, now_ms)
        });
        // Base rows map to view rows in order, so without a delta the list
        // is already sorted: checking is a pass, sorting is not.
        if !out.is_sorted_by_key(|&(row, _)| row) {
            out.sort_unstable_by_key(|&(row, _)| row);
        }
        out
    }

    /// The cosine of row `row` with `q`: the same bits as the scan gives it
    /// (the process-wide f32 kernel, one row scored as the scan scores rows).
    pub fn cosine(&self, row: usize, q: &[f32]) -> f32 {
        let mut out = [0.0f32];
        semsearch_scan::kernel::active().score_rows(self.row(row), q, &mut out);
        out[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mean_cosine_subtracts_tombstones_and_adds_the_delta() {
        let q = [1.0f32, 0.0];
        let got = mean_cosine(&q, &[3.0, 1.0], &[1.0, 0.0], &[0.5, 0.5], 3);
        assert!((got - 2.5 / 3.0).abs() < 1e-15);
        assert_eq!(mean_cosine(&q, &[], &[], &[], 0), 0.0);
    }

    fn index(docs: &[(&str, &str, &str)]) -> Index {
        let docs: Vec<Arc<Document>> = docs
            .iter()
            .map(|&(id, title, text)| {
                Arc::new(Document {
                    id: id.into(),
                    url: None,
                    title: Some(title.into()),
                    text: Some(text.into()),
                    expires_at_ms: None,
                    attributes: Default::default(),
                })
            })
            .collect();
        let rows = ndarray::Array2::from_shape_fn((docs.len(), 2), |(r, c)| if c == 0 { 1.0 } else { r as f32 });
        Index::new(rows, docs).expect("an index")
    }

    /// Per term: its (row, title count, text count) entries.
    type Entries = Vec<Vec<(u32, u32, u32)>>;

    /// Every term `settings` makes of the titles and texts of `docs`.
    fn vocabulary(settings: &LexicalSettings, docs: &[(&str, &str, &str)]) -> Vec<String> {
        let mut terms: Vec<String> =
            docs.iter().flat_map(|&(_, title, text)| settings.analyzer.terms(&format!("{title} {text}"))).collect();
        terms.sort();
        terms.dedup();
        terms
    }

    /// Per term of `vocabulary`: its base entries; and the base's lengths and totals.
    fn base_content<S: AsRef<str>>(index: &Index, vocabulary: &[S]) -> (Entries, Vec<(u32, u32)>, FieldStats) {
        let p = &index.base.lexical().expect("a lexical base").postings;
        let entries = vocabulary
            .iter()
            .map(|t| {
                let mut e = Vec::new();
                p.for_each(t.as_ref(), |row, title, text| e.push((row, title, text)));
                e
            })
            .collect();
        (entries, (0..p.len()).map(|r| p.lens(r)).collect(), p.stats())
    }

    #[test]
    fn a_reload_taking_over_unchanged_documents_builds_what_a_fresh_analysis_does() {
        // Arrange: b's text changes, c is gone, d is new, a is unchanged.
        let s = Arc::new(LexicalSettings::new(Language::English));
        let then = [("a", "Database server", "servers"), ("b", "Editor", "edit text"), ("c", "Mail", "mail")];
        let before = index(&then).with_lexical(Arc::clone(&s));
        let now = [("a", "Database server", "servers"), ("b", "Editor", "raster images"), ("d", "Mail", "server")];
        let all: Vec<_> = then.iter().chain(&now).copied().collect();

        // Act
        let reusing = index(&now).with_lexical_reusing(Arc::clone(&s), Some(&before));

        // Assert
        let fresh = index(&now).with_lexical(Arc::clone(&s));
        let english = vocabulary(&s, &all);
        assert_eq!(base_content(&reusing, &english), base_content(&fresh, &english));
        let (entries, _, _) = base_content(&fresh, &["databas", "server", "edit", "text", "raster", "imag"]);
        let held: Vec<bool> = entries.iter().map(|e| !e.is_empty()).collect();
        assert_eq!(held, [true, true, false, false, true, true], "b's old text is gone: {entries:?}");
        // Postings of another language are never taken over.
        let other = Arc::new(LexicalSettings::new(Language::Portuguese));
        let other_language = index(&now).with_lexical_reusing(Arc::clone(&other), Some(&before));
        let fresh_other = index(&now).with_lexical(Arc::clone(&other));
        let portuguese = vocabulary(&other, &all);
        assert_eq!(base_content(&other_language, &portuguese), base_content(&fresh_other, &portuguese));
    }

    #[test]
    fn statistics_of_base_less_tombstones_plus_delta_equal_a_fresh_build() {
        let s = LexicalSettings::new(Language::English);
        let doc = |t: &str| DocTerms::analyze(&s.analyzer, FieldsRef { title: t, text: "server" });
        let (a, b, c) = (doc("alpha server"), doc("beta"), doc("gamma server"));
        let base = Postings::from_terms(&[a.clone(), b.clone()]);
        let mut tomb = Tombstoned::default();
        tomb.add(&b, &[0.0]);
        let delta = Postings::from_terms(std::slice::from_ref(&c));
        let fresh = Postings::from_terms(&[a, c]);
        let terms: Vec<String> = ["server", "beta", "gamma", "zeta"].map(String::from).to_vec();

        let got = corpus_stats(&base, &tomb, &delta, &terms);

        assert_eq!(got, corpus_stats(&fresh, &Tombstoned::default(), &Postings::default(), &terms));
    }
}
