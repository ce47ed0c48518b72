//! semsearch's lexical side: what lets a question in Portuguese find the
//! articles an English embedding model ranks poorly.
//!
//! - [`analyzer`]: text → terms (NFKC, lower-case, accent folding, stop
//!   words, Snowball stemming), per [`Language`];
//! - [`postings`]: one segment's inverted index (≈3 bytes a posting) and the
//!   additive corpus statistics BM25 needs;
//! - [`bm25`]: BM25F over title and text, every operation in a fixed order
//!   so that scores are reproducible to the bit;
//! - [`snippet`]: the window of a text that best answers a question.
//!
//! Deliberately not here: documents, rows and their lifetimes (the
//! service's `index` owns segments, deltas and tombstones and asks this
//! crate to score one segment at a time), fusion with the vector ranking,
//! and any I/O. No tokio, no Redis, no `unsafe`.
#![forbid(unsafe_code)]

pub mod analyzer;
pub mod bm25;
pub mod postings;
pub mod snippet;

pub use analyzer::{Analyzer, Language};
pub use bm25::{Bm25Params, CorpusStats, Scorer};
pub use postings::{DocTerms, FieldStats, FieldsRef, Postings};
