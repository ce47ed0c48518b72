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

    /// Builds postings from analysed documents (rows in order).
    pub fn from_terms(docs: &[DocTerms]) -> Self {
        let mut ids: HashMap<Box<str>, u32, TermHasher> = HashMap::default();
        // Per term: (row, title count, text count), rows ascending.
        let mut lists: Vec<Vec<(u32, u32, u32)>> = Vec::new();
        let mut lens = Vec::with_capacity(docs.len());
        let mut stats = FieldStats::default();
        for (row, doc) in docs.iter().enumerate() {
            let row = saturate(row);
            lens.push((doc.title_len, doc.text_len));
            stats.add(FieldStats { docs: 1, title_len: u64::from(doc.title_len), text_len: u64::from(doc.text_len) });
            for (term, title, text) in &doc.terms {
                let id = match ids.get(term) {
                    Some(&id) => id,
                    None => {
                        let id = saturate(lists.len());
                        ids.insert(term.clone(), id);
                        lists.push(Vec::new());
                        id
                    }
                };
                lists[id as usize].push((row, *title, *text));
            }
        }
        let mut starts = Vec::with_capacity(lists.len() + 1);
        let mut df = Vec::with_capacity(lists.len());
        let mut bytes = Vec::new();
        for list in &lists {
            starts.push(bytes.len());
            df.push(saturate(list.len()));
            let mut prev = 0u32;
            for &(row, title, text) in list {
                put_varint(&mut bytes, row - prev);
                put_varint(&mut bytes, title);
                put_varint(&mut bytes, text);
                prev = row;
            }
        }
        starts.push(bytes.len());
        bytes.shrink_to_fit();
        ids.shrink_to_fit();
        Self { ids, starts, df, bytes, lens, stats }
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
    pub fn for_each(&self, term: &str, mut f: impl FnMut(u32, u32, u32)) {
        let Some(&id) = self.ids.get(term) else { return };
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
