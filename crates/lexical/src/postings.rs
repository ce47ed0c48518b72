//! [`Postings`]: the lexical index of one segment of documents, built once
//! and never changed, like the vector rows it sits beside.
//!
//! Layout, chosen for memory (a posting is ~3 bytes, not the 12 of three
//! `u32`s): one term dictionary (term → id), and per term one run of bytes
//! holding, for each document containing the term in row order, three
//! LEB128 varints: the row's gap from the previous one, the term's count
//! in the title, its count in the text. A query decodes its terms' runs
//! front to back, which is all BM25 needs (every matching document is
//! scored; nothing is skipped).
//!
//! Statistics that BM25 takes from the whole corpus (documents, field
//! lengths, document frequencies) are [`FieldStats`] and per-term counts:
//! additive, so a snapshot made of a base segment, a delta segment and the
//! base's tombstoned documents gets its totals as base − tombstoned + delta,
//! and a router gets its shards' totals by adding them up.

use std::collections::HashMap;

use rayon::prelude::*;

use crate::analyzer::{Analyzer, TermHasher};

/// One document as the lexical side reads it.
#[derive(Debug, Clone, Copy)]
pub struct FieldsRef<'a> {
    pub title: &'a str,
    pub text: &'a str,
}

/// A document's analysed fields: its terms with their counts per field and
/// the fields' lengths in terms. What a segment is built from, and what a
/// tombstoned document's share of the statistics is taken from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocTerms {
    /// Distinct terms, sorted, with (count in title, count in text).
    pub terms: Vec<(Box<str>, u32, u32)>,
    pub title_len: u32,
    pub text_len: u32,
}

impl DocTerms {
    pub fn analyze(analyzer: &Analyzer, doc: FieldsRef<'_>) -> Self {
        // One map for both fields ([title, text] counts), fed term by term:
        // no `String` per token, one allocation per distinct term.
        let mut counts: HashMap<Box<str>, [u32; 2], TermHasher> =
            HashMap::with_capacity_and_hasher(doc.text.len() / 8 + doc.title.len() / 4, TermHasher::default());
        let mut lens = [0usize; 2];
        for (field, text) in [doc.title, doc.text].into_iter().enumerate() {
            analyzer.for_each_term(text, |t| {
                lens[field] += 1;
                match counts.get_mut(t) {
                    Some(c) => c[field] += 1,
                    None => {
                        let mut c = [0; 2];
                        c[field] = 1;
                        counts.insert(t.into(), c);
                    }
                }
            });
        }
        let mut terms: Vec<(Box<str>, u32, u32)> = counts.into_iter().map(|(t, [a, b])| (t, a, b)).collect();
        terms.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Self { terms, title_len: saturate(lens[0]), text_len: saturate(lens[1]) }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Totals BM25 needs over a set of documents; additive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldStats {
    pub docs: u64,
    pub title_len: u64,
    pub text_len: u64,
}

impl FieldStats {
    pub fn add(&mut self, other: FieldStats) {
        self.docs += other.docs;
        self.title_len += other.title_len;
        self.text_len += other.text_len;
    }

    /// `self` without `other`, a subset of it (saturating: never negative).
    pub fn remove(&mut self, other: FieldStats) {
        self.docs = self.docs.saturating_sub(other.docs);
        self.title_len = self.title_len.saturating_sub(other.title_len);
        self.text_len = self.text_len.saturating_sub(other.text_len);
    }
}

/// The lexical index of one segment (see the module doc).
#[derive(Debug, Default)]
pub struct Postings {
    ids: HashMap<Box<str>, u32, TermHasher>,
    /// Per term id: where its run starts in `bytes` (one more entry at the end).
    starts: Vec<usize>,
    /// Per term id: documents containing it.
    df: Vec<u32>,
    bytes: Vec<u8>,
    /// Per row: title and text length in terms.
    lens: Vec<(u32, u32)>,
    stats: FieldStats,
}

impl Postings {
    /// Analyses `docs` (rows in order) on the rayon pool and builds their postings.
    pub fn build<'a>(analyzer: &Analyzer, docs: impl IndexedParallelIterator<Item = FieldsRef<'a>>) -> Self {
        let analysed: Vec<DocTerms> = docs.map(|d| DocTerms::analyze(analyzer, d)).collect();
        Self::from_terms(&analysed)
    }

    /// What [`Postings::build`] gives for `docs`, analysing only the rows
    /// that `reused` does not name: row `i` with `reused[i] == Some(r)` has
    /// the postings of `previous`'s row `r`, whose title and text the caller
    /// found equal to row `i`'s, analysed by the same analyser (terms are a
    /// function of the two). A reload re-reads every document but finds
    /// most of them unchanged, and analysis (NFKC, folding, stemming) is
    /// most of a lexical build; walking `previous`'s runs once is not.
    ///
    /// A `reused` row out of `previous`'s range, or named by an earlier row
    /// too, is analysed instead; a `reused` shorter than `docs` analyses the rest.
    pub fn build_reusing<'a>(
        analyzer: &Analyzer,
        docs: impl IndexedParallelIterator<Item = FieldsRef<'a>>,
        previous: &Postings,
        reused: &[Option<u32>],
    ) -> Self {
        let n = docs.len();
        // New row of each previous row taken over (u32::MAX: none).
        let mut new_row = vec![u32::MAX; previous.len()];
        let from: Vec<Option<u32>> = (0..n)
            .map(|row| {
                let old = reused.get(row).copied().flatten()?;
                let slot = new_row.get_mut(old as usize).filter(|s| **s == u32::MAX)?;
                *slot = saturate(row);
                Some(old)
            })
            .collect();
        let rows: Vec<Source> = docs
            .zip(from.par_iter())
            .map(|(doc, old)| match old {
                Some(old) => Source::Previous(*old),
                None => Source::Analysed(DocTerms::analyze(analyzer, doc)),
            })
            .collect();

        let mut lists = Lists::default();
        for (term, &id) in &previous.ids {
            let mut taken = Vec::new();
            previous.for_each_of(id, |row, title, text| {
                if let Some(&r) = new_row.get(row as usize).filter(|r| **r != u32::MAX) {
                    taken.push((r, title, text));
                }
            });
            if !taken.is_empty() {
                lists.list(term).extend(taken);
            }
        }
        let mut lens = Vec::with_capacity(n);
        for (row, source) in rows.iter().enumerate() {
            match source {
                Source::Previous(old) => lens.push(previous.lens[*old as usize]),
                Source::Analysed(doc) => {
                    lists.add(saturate(row), doc);
                    lens.push((doc.title_len, doc.text_len));
                }
            }
        }
        lists.encode(lens)
    }

    /// Builds postings from analysed documents (rows in order).
    pub fn from_terms(docs: &[DocTerms]) -> Self {
        let mut lists = Lists::default();
        let mut lens = Vec::with_capacity(docs.len());
        for (row, doc) in docs.iter().enumerate() {
            lists.add(saturate(row), doc);
            lens.push((doc.title_len, doc.text_len));
        }
        lists.encode(lens)
    }

    /// Calls `f(row, title count, text count)` for each row in term `id`'s run.
    fn for_each_of(&self, id: u32, mut f: impl FnMut(u32, u32, u32)) {
        let (start, end) = (self.starts[id as usize], self.starts[id as usize + 1]);
        let mut bytes = &self.bytes[start..end];
        let mut row = 0u32;
        while !bytes.is_empty() {
            row += take_varint(&mut bytes);
            let title = take_varint(&mut bytes);
            let text = take_varint(&mut bytes);
            f(row, title, text);
        }
    }

    /// Distinct terms in this segment.
    pub fn terms(&self) -> usize {
        self.ids.len()
    }

    /// Documents in this segment.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    pub fn stats(&self) -> FieldStats {
        self.stats
    }

    /// Documents of this segment containing `term`.
    pub fn df(&self, term: &str) -> u32 {
        self.ids.get(term).map_or(0, |&id| self.df[id as usize])
    }

    /// Row `row`'s title and text lengths in terms.
    pub fn lens(&self, row: usize) -> (u32, u32) {
        self.lens[row]
    }

    /// Calls `f(row, title count, text count)` for each document containing
    /// `term`, rows ascending.
    pub fn for_each(&self, term: &str, f: impl FnMut(u32, u32, u32)) {
        if let Some(&id) = self.ids.get(term) {
            self.for_each_of(id, f);
        }
    }

    /// Heap bytes held (dictionary, runs, lengths), for `/v1/stats`.
    pub fn heap_bytes(&self) -> usize {
        let dictionary: usize =
            self.ids.keys().map(|t| t.len() + std::mem::size_of::<(Box<str>, u32)>() + 8).sum::<usize>();
        dictionary
            + self.starts.capacity() * std::mem::size_of::<usize>()
            + self.df.capacity() * 4
            + self.bytes.capacity()
            + self.lens.capacity() * 8
    }
}

/// Where a row's postings come from in [`Postings::build_reusing`].
enum Source {
    Previous(u32),
    Analysed(DocTerms),
}

/// Postings being built: the term dictionary and, per term, its
/// (row, title count, text count) entries.
#[derive(Default)]
struct Lists {
    ids: HashMap<Box<str>, u32, TermHasher>,
    lists: Vec<Vec<(u32, u32, u32)>>,
}

impl Lists {
    fn list(&mut self, term: &str) -> &mut Vec<(u32, u32, u32)> {
        let id = match self.ids.get(term) {
            Some(&id) => id,
            None => {
                let id = saturate(self.lists.len());
                self.ids.insert(term.into(), id);
                self.lists.push(Vec::new());
                id
            }
        };
        &mut self.lists[id as usize]
    }

    fn add(&mut self, row: u32, doc: &DocTerms) {
        for (term, title, text) in &doc.terms {
            self.list(term).push((row, *title, *text));
        }
    }

    /// The finished postings, with `lens` per row. Runs are written in row
    /// order (rows are unique within a term's list).
    fn encode(self, lens: Vec<(u32, u32)>) -> Postings {
        let Lists { mut ids, mut lists } = self;
        let mut stats = FieldStats::default();
        for &(title_len, text_len) in &lens {
            stats.add(FieldStats { docs: 1, title_len: u64::from(title_len), text_len: u64::from(text_len) });
        }
        let mut starts = Vec::with_capacity(lists.len() + 1);
        let mut df = Vec::with_capacity(lists.len());
        let mut bytes = Vec::new();
        for list in &mut lists {
            if !list.is_sorted_by_key(|e| e.0) {
                list.sort_unstable_by_key(|e| e.0);
            }
            starts.push(bytes.len());
            df.push(saturate(list.len()));
            let mut prev = 0u32;
            for &(row, title, text) in list.iter() {
                put_varint(&mut bytes, row - prev);
                put_varint(&mut bytes, title);
                put_varint(&mut bytes, text);
                prev = row;
            }
        }
        starts.push(bytes.len());
        bytes.shrink_to_fit();
        ids.shrink_to_fit();
        Postings { ids, starts, df, bytes, lens, stats }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads one varint that [`put_varint`] wrote; the runs are ours, never
/// read from outside, so they are always complete.
fn take_varint(bytes: &mut &[u8]) -> u32 {
    let mut v = 0u32;
    let mut shift = 0;
    loop {
        let (&b, rest) = bytes.split_first().expect("a run holds whole varints (written by put_varint)");
        *bytes = rest;
        v |= u32::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyzer::Language;

    #[test]
    fn postings_list_every_document_with_its_counts() {
        let a = Analyzer::new(Language::English);
        let docs = [
            FieldsRef { title: "Database server", text: "a database for servers and more servers" },
            FieldsRef { title: "Editor", text: "edit text" },
            FieldsRef { title: "", text: "server" },
        ];
        let p = Postings::build(&a, docs.into_par_iter());
        let mut got = Vec::new();
        p.for_each("server", |row, title, text| got.push((row, title, text)));
        assert_eq!(got, [(0, 1, 2), (2, 0, 1)]);
        assert_eq!((p.df("server"), p.df("edit"), p.df("editor"), p.df("absent")), (2, 1, 1, 0));
        assert_eq!(p.stats(), FieldStats { docs: 3, title_len: 3, text_len: 6 });
        assert_eq!(p.lens(0), (2, 3), "stop words (a, for, and, more) are not counted");
    }

    /// Everything a query can read of `p`: per term its entries, the
    /// per-row lengths and the totals.
    /// Terms with their (row, title count, text count) entries, by term.
    type Terms = Vec<(String, Vec<(u32, u32, u32)>)>;

    fn content(p: &Postings) -> (Terms, Vec<(u32, u32)>, FieldStats) {
        let mut terms: Terms = p
            .ids
            .keys()
            .map(|t| {
                let mut entries = Vec::new();
                p.for_each(t, |row, title, text| entries.push((row, title, text)));
                assert_eq!(p.df(t) as usize, entries.len(), "df of {t}");
                (t.to_string(), entries)
            })
            .collect();
        terms.sort();
        (terms, p.lens.clone(), p.stats())
    }

    const WORDS: [&str; 12] =
        ["server", "database", "servers", "editor", "edit", "image", "images", "raster", "mail", "the", "é", "café"];

    fn text(words: &[usize]) -> String {
        words.iter().map(|&w| WORDS[w % WORDS.len()]).collect::<Vec<_>>().join(" ")
    }

    proptest::proptest! {
        #[test]
        fn postings_reusing_a_previous_build_equal_a_fresh_build(
            old in proptest::collection::vec((proptest::collection::vec(0usize..12, 0..4), proptest::collection::vec(0usize..12, 0..12)), 0..24),
            edits in proptest::collection::vec((0u8..4, proptest::collection::vec(0usize..12, 0..12)), 0..32),
            bogus in proptest::collection::vec(0u32..40, 0..6),
            reverse: bool,
        ) {
            // Arrange: a previous segment, then a new one whose rows keep
            // (0), drop (1), rewrite (2) or duplicate (3) previous rows, plus new ones.
            let a = Analyzer::new(Language::English);
            let old: Vec<(String, String)> = old.iter().map(|(t, x)| (text(t), text(x))).collect();
            let previous = Postings::build(&a, old.par_iter().map(|(t, x)| FieldsRef { title: t, text: x }));
            let mut new: Vec<(String, String)> = Vec::new();
            let mut reused: Vec<Option<u32>> = Vec::new();
            for (i, (title, body)) in old.iter().enumerate() {
                let (op, words) = edits.get(i).cloned().unwrap_or((0, Vec::new()));
                match op {
                    0 => { new.push((title.clone(), body.clone())); reused.push(Some(i as u32)); }
                    1 => {}
                    2 => { new.push((title.clone(), text(&words))); reused.push(None); }
                    _ => {
                        // The same document twice: both may name row i; one gets it.
                        for _ in 0..2 { new.push((title.clone(), body.clone())); reused.push(Some(i as u32)); }
                    }
                }
            }
            for (_, words) in edits.iter().skip(old.len()) {
                new.push((String::new(), text(words)));
                reused.push(None);
            }
            // Rows naming a previous row that does not exist are analysed.
            for (k, b) in bogus.iter().enumerate() {
                if let Some(r) = reused.get_mut(k * 3).filter(|r| r.is_none()) {
                    *r = Some(old.len() as u32 + b);
                }
            }
            if reverse {
                // Rows in another order than the previous segment's.
                new.reverse();
                reused.reverse();
            }
            let docs = || new.par_iter().map(|(t, x)| FieldsRef { title: t, text: x });

            // Act
            let reusing = Postings::build_reusing(&a, docs(), &previous, &reused);

            // Assert
            proptest::prop_assert_eq!(content(&reusing), content(&Postings::build(&a, docs())));
        }
    }

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut bytes = Vec::new();
        let values = [0, 1, 127, 128, 16_383, 16_384, u32::MAX];
        for v in values {
            put_varint(&mut bytes, v);
        }
        let mut rest = bytes.as_slice();
        for v in values {
            assert_eq!(take_varint(&mut rest), v);
        }
        assert!(rest.is_empty());
    }
}
