//! From fetched values to a snapshot, without I/O: `parse_chunk` decodes
//! one chunk (on rayon, while the next chunk is on the wire), and
//! `RowCollector` appends the decoded rows to one pre-sized matrix of the
//! index dimension, counting every value it cannot use in the
//! [`LoadReport`].
//!
//! The dimension rule: the configured one if any, else the most common
//! among valid values, ties going to the first seen. Rows of the first
//! dimension seen go straight into the pre-sized matrix; rows of other
//! dimensions wait aside until the majority is known, which they almost
//! never win, and the losers are counted as `wrong_dimension`.

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use semsearch_scan::int8::{QuantizedBuilder, QuantizedMatrix, RowCode};

use super::report::LoadReport;
use crate::{
    index::{spare, Document, Index, IndexBuilder, IndexError},
    store::{
        decode::{decode_into, Meta, SkipReason},
        keys::KeySpace,
        link::{ReadValues, StoredValue},
    },
};

/// Largest vector dimension accepted; larger values are `wrong_dimension`.
/// Guards the matrix pre-allocation against a single giant blob.
pub const MAX_DIM: usize = 65_536;

/// One chunk, decoded: rows back to back in `floats`, in key order.
pub(super) struct ParsedChunk {
    docs: Vec<ParsedDoc>,
    floats: Vec<f32>,
    /// Each row's int8 codes, back to back as in `floats`, when the load
    /// quantizes as it reads (see [`RowCollector::new`]).
    codes: Vec<u8>,
    /// Positions in the load's key list, with why each was skipped.
    skips: Vec<(usize, SkipReason)>,
    value_bytes: u64,
}

struct ParsedDoc {
    /// Position in the load's key list.
    key: usize,
    meta: Meta,
    dim: usize,
    expires_at_ms: Option<u64>,
    code: Option<RowCode>,
}

/// Decodes the values of the keys from `first_key` on, as one read
/// returned them; with `quantize`, also makes each row's int8 code, so the
/// snapshot's int8 copy costs only its layout once the last chunk is in.
pub(super) fn parse_chunk(first_key: usize, read: ReadValues, quantize: bool) -> ParsedChunk {
    let n_values = read.values.len();
    let mut out = ParsedChunk {
        docs: Vec::with_capacity(n_values),
        floats: Vec::new(),
        codes: Vec::new(),
        skips: Vec::new(),
        value_bytes: 0,
    };
    for (offset, value) in read.values.into_iter().enumerate() {
        let key = first_key + offset;
        let (bytes, ttl_ms) = match value {
            StoredValue::String { bytes, ttl_ms } => (bytes, ttl_ms),
            StoredValue::Missing => {
                out.skips.push((key, SkipReason::Vanished));
                continue;
            }
            StoredValue::OtherType => {
                out.skips.push((key, SkipReason::WrongType));
                continue;
            }
        };
        out.value_bytes += bytes.len() as u64;
        let before = out.floats.len();
        match decode_into(&bytes, &mut out.floats) {
            Ok(meta) => {
                let dim = out.floats.len() - before;
                if out.docs.is_empty() {
                    // Size the chunk's buffer once from the first row instead of doubling.
                    let remaining = n_values - offset - 1;
                    out.floats.reserve(remaining.saturating_mul(dim).min(MAX_DIM * 1024));
                    if quantize {
                        out.codes.reserve((remaining + 1).saturating_mul(dim).min(MAX_DIM * 1024));
                    }
                }
                let expires_at_ms = ttl_ms.map(|ms| deadline_ms(read.sent_at, ms));
                // Every row gets its code, so codes and floats share offsets.
                let code = quantize.then(|| RowCode::quantize(&out.floats[before..], &mut out.codes));
                out.docs.push(ParsedDoc { key, meta, dim, expires_at_ms, code });
            }
            Err(reason) => out.skips.push((key, reason)),
        }
    }
    out
}

/// The Unix time in ms at which a key read at `sent_at` with `ttl_ms` left
/// expires: measured from before the read was sent, so it errs early.
fn deadline_ms(sent_at: SystemTime, ttl_ms: u64) -> u64 {
    sent_at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64) + ttl_ms
}

/// Collects parsed chunks into the matrix of the index dimension, and
/// accounts for every key in the [`LoadReport`].
pub(super) struct RowCollector {
    configured_dim: Option<usize>,
    main_dim: Option<usize>,
    /// Rows of `main_dim`, created (and sized for every key) with the first row.
    main: Option<IndexBuilder>,
    /// Rows of other dimensions, by dimension, until the majority is known.
    others: BTreeMap<usize, IndexBuilder>,
    prefix_len: usize,
    expected_rows: usize,
    /// The int8 copy of `main`'s rows, each placed into its panel as it is
    /// appended (see [`MainCodes`]).
    main_codes: MainCodes,
    pub(super) report: LoadReport,
}

/// The int8 copy of the main rows while a load reads.
enum MainCodes {
    /// Rows come with codes; none of the main dimension has come yet.
    Wanted,
    /// Every main row so far came with its code, placed in row order.
    Building(QuantizedBuilder),
    /// Not quantizing, or a main row came without a code: the snapshot
    /// quantizes its rows itself, if its scan mode wants an int8 copy.
    Dropped,
}

impl RowCollector {
    /// A collector for a load under `keys`' embedding prefix, expecting up
    /// to `expected_rows` rows; `quantize`: whether the chunks come with
    /// their rows' int8 codes (see [`parse_chunk`]).
    pub(super) fn new(configured_dim: Option<usize>, keys: &KeySpace, expected_rows: usize, quantize: bool) -> Self {
        Self {
            configured_dim,
            main_dim: configured_dim,
            main: None,
            others: BTreeMap::new(),
            prefix_len: keys.embedding_prefix().len(),
            expected_rows,
            main_codes: if quantize { MainCodes::Wanted } else { MainCodes::Dropped },
            report: LoadReport::default(),
        }
    }

    /// Counts a skipped key of the load's key list.
    fn skip(&mut self, key: &str, reason: SkipReason) {
        let id = key.get(self.prefix_len..);
        self.report.count_skip(key, id, reason);
    }

    /// Appends a parsed chunk of `keys` (the load's key list, sorted).
    pub(super) fn append(&mut self, chunk: ParsedChunk, keys: &[String]) {
        self.report.value_bytes += chunk.value_bytes;
        for (key, reason) in chunk.skips {
            self.skip(&keys[key], reason);
        }
        let mut offset = 0;
        for doc in chunk.docs {
            let row = &chunk.floats[offset..offset + doc.dim];
            let codes = chunk.codes.get(offset..offset + doc.dim).filter(|_| doc.code.is_some());
            offset += doc.dim;
            if doc.dim > MAX_DIM {
                self.skip(&keys[doc.key], SkipReason::WrongDimension);
                continue;
            }
            let main_dim = *self.main_dim.get_or_insert(doc.dim);
            if doc.dim == main_dim {
                self.push_code(codes.zip(doc.code));
            }
            let rows = if doc.dim == main_dim {
                self.main.get_or_insert_with(|| {
                    // Reserving once avoids doubling (and a 2x peak) while growing.
                    let mut rows = IndexBuilder::new(main_dim);
                    rows.reserve(self.expected_rows);
                    rows
                })
            } else if self.configured_dim.is_some() {
                self.skip(&keys[doc.key], SkipReason::WrongDimension);
                continue;
            } else {
                self.others.entry(doc.dim).or_insert_with(|| IndexBuilder::new(doc.dim))
            };
            rows.push(Arc::new(to_document(&keys[doc.key][self.prefix_len..], doc.meta, doc.expires_at_ms)), row);
        }
    }

    /// Places the int8 code of the next main row, or gives up the copy
    /// when it has none.
    fn push_code(&mut self, code: Option<(&[u8], RowCode)>) {
        if let (MainCodes::Wanted, Some((row, _))) = (&self.main_codes, code) {
            self.main_codes = QuantizedBuilder::new_in(row.len(), self.expected_rows, |bytes| spare::CODES.take(bytes))
                .map_or(MainCodes::Dropped, MainCodes::Building);
        }
        let placed = match (&mut self.main_codes, code) {
            (MainCodes::Building(builder), Some((row, code))) => builder.push(row, code).is_ok(),
            (MainCodes::Dropped, _) => true,
            _ => false,
        };
        if !placed {
            self.main_codes = MainCodes::Dropped;
        }
    }

    /// The snapshot of the majority dimension (see the module doc), the
    /// other dimensions' rows counted as `wrong_dimension`.
    ///
    /// # Errors
    /// [`IndexError`] if the rows do not form an index (ids out of order).
    pub(super) fn finish(
        mut self,
        keys: &KeySpace,
    ) -> Result<(Index, LoadReport, Option<QuantizedMatrix>), IndexError> {
        let main = self.main.take().unwrap_or_else(|| IndexBuilder::new(self.main_dim.unwrap_or(0)));
        let majority = self
            .others
            .iter()
            .map(|(dim, rows)| (*dim, rows.len()))
            .filter(|(_, n)| *n > main.len())
            .max_by_key(|(_, n)| *n)
            .map(|(dim, _)| dim);
        let codes = match std::mem::replace(&mut self.main_codes, MainCodes::Dropped) {
            MainCodes::Building(builder) if majority.is_none() => builder.finish().ok(),
            _ => None,
        };
        let rows = match majority {
            Some(dim) => {
                let rows = self.others.remove(&dim).unwrap_or_else(|| IndexBuilder::new(dim));
                self.others.insert(main.dim(), main);
                rows
            }
            None => main,
        };
        let losers: Vec<Arc<Document>> =
            std::mem::take(&mut self.others).into_values().flat_map(IndexBuilder::into_docs).collect();
        for doc in losers {
            self.report.count_skip(&keys.embedding_key(&doc.id), Some(&doc.id), SkipReason::WrongDimension);
        }
        let index = rows.finish()?;
        self.report.loaded = index.len();
        self.report.dim = index.dim();
        let codes = codes.filter(|int8| int8.len() == index.len());
        Ok((index, self.report, codes))
    }
}

fn to_document(id: &str, meta: Meta, expires_at_ms: Option<u64>) -> Document {
    let url = meta.url.filter(|u| **u != *id);
    Document { id: id.into(), url, title: meta.title, text: meta.text, expires_at_ms, attributes: meta.attributes }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::loader::Presence;

    fn value(text: &str) -> StoredValue {
        StoredValue::String { bytes: text.as_bytes().to_vec(), ttl_ms: None }
    }

    fn key_list(ids: &[&str]) -> Vec<String> {
        let keys = KeySpace::default();
        ids.iter().map(|id| keys.embedding_key(id)).collect()
    }

    /// Parses `values` as one chunk of the key list `ids` and collects it.
    fn load(ids: &[&str], values: Vec<StoredValue>, dim: Option<usize>) -> (Index, LoadReport) {
        let (keys, list) = (KeySpace::default(), key_list(ids));
        let mut rows = RowCollector::new(dim, &keys, list.len(), false);
        rows.append(parse_chunk(0, ReadValues { sent_at: SystemTime::now(), values }, false), &list);
        let (index, report, _) = rows.finish(&keys).expect("ids are in order");
        (index, report)
    }

    fn ids(index: &Index) -> Vec<&str> {
        (0..index.len()).map(|r| &*index.doc(r).id).collect()
    }

    #[test]
    fn each_unusable_value_is_skipped_and_counted_and_the_rest_load() {
        // Arrange
        let values = vec![
            value(r#"{"title":"T","url":"https://a","embedding":[3,4]}"#),
            value(r#"{"embedding":[1,"#),
            StoredValue::Missing,
            StoredValue::OtherType,
            value("[0,0]"),
            value("[1,NaN]"),
            value("[0,2]"),
        ];
        let value_bytes: u64 =
            values.iter().map(|v| if let StoredValue::String { bytes, .. } = v { bytes.len() as u64 } else { 0 }).sum();

        // Act
        let (index, report) = load(&["a", "b", "c", "d", "e", "f", "g"], values, None);

        // Assert
        assert_eq!(ids(&index), ["a", "g"]);
        assert_eq!(index.row(1), &[0.0, 1.0], "rows leave decoding unit length");
        assert_eq!(index.doc(0).url(), "https://a");
        for (reason, n) in [
            (SkipReason::InvalidJson, 1),
            (SkipReason::Vanished, 1),
            (SkipReason::WrongType, 1),
            (SkipReason::ZeroVector, 1),
            (SkipReason::NonFinite, 1),
        ] {
            assert_eq!(report.skipped.get(reason), n, "{}", reason.as_str());
        }
        assert_eq!(report.value_bytes, value_bytes, "only string values carry bytes");
        let skipped: Vec<&str> = report.skipped_ids.keys().map(|id| &**id).collect();
        assert_eq!(skipped, ["b", "d", "e", "f"], "the vanished key is not in the key set");
        assert_eq!((report.loaded, report.dim), (2, 2));
    }

    #[test]
    fn a_key_with_a_ttl_gets_the_deadline_measured_from_before_the_read() {
        // Arrange
        let sent_at = UNIX_EPOCH + Duration::from_millis(1_000);
        let values = vec![
            StoredValue::String { bytes: b"[1,0]".to_vec(), ttl_ms: Some(5_000) },
            StoredValue::String { bytes: b"[0,1]".to_vec(), ttl_ms: None },
        ];
        let list = key_list(&["a", "b"]);
        let keys = KeySpace::default();

        // Act
        let mut rows = RowCollector::new(None, &keys, 2, false);
        rows.append(parse_chunk(0, ReadValues { sent_at, values }, false), &list);
        let (index, _, _) = rows.finish(&keys).expect("ids are in order");

        // Assert
        assert_eq!(index.doc(0).expires_at_ms, Some(6_000));
        assert_eq!(index.doc(1).expires_at_ms, None);
    }

    #[test]
    fn the_majority_dimension_wins_over_the_first_seen() {
        // Arrange: the first key is 2-d, the majority 3-d.
        let values = vec![value("[1,2]"), value("[1,2,3]"), value("[3,2,1]"), value("[0,0,1]")];

        // Act
        let (index, report) = load(&["0-odd", "a", "b", "c"], values, None);

        // Assert
        assert_eq!((index.dim(), ids(&index)), (3, vec!["a", "b", "c"]));
        assert_eq!(report.skipped.get(SkipReason::WrongDimension), 1);
        assert_eq!(report.presence("0-odd", false), Presence::Skipped(SkipReason::WrongDimension));
    }

    #[test]
    fn a_tie_keeps_the_first_dimension_seen() {
        // Arrange
        let values = vec![value("[1,2,3]"), value("[1,2]"), value("[3,2,1]"), value("[2,1]")];

        // Act
        let (index, report) = load(&["a", "b", "c", "d"], values, None);

        // Assert
        assert_eq!((index.dim(), ids(&index)), (3, vec!["a", "c"]));
        assert_eq!(report.skipped.get(SkipReason::WrongDimension), 2);
    }

    #[test]
    fn a_configured_dimension_wins_over_any_majority() {
        // Arrange
        let values = vec![value("[1,2]"), value("[1,2,3]"), value("[3,2,1]"), value("[0,0,1]")];

        // Act
        let (index, report) = load(&["0-odd", "a", "b", "c"], values, Some(2));

        // Assert
        assert_eq!((index.dim(), ids(&index)), (2, vec!["0-odd"]));
        assert_eq!(report.skipped.get(SkipReason::WrongDimension), 3);
    }

    #[test]
    fn a_row_longer_than_max_dim_is_a_wrong_dimension_not_an_allocation() {
        // Arrange
        let giant: Vec<u8> = vec![0x3f; 4 * (MAX_DIM + 1)];
        let values = vec![StoredValue::String { bytes: giant, ttl_ms: None }, value("[1,0]")];

        // Act
        let (index, report) = load(&["a", "b"], values, None);

        // Assert
        assert_eq!(ids(&index), ["b"]);
        assert_eq!(report.skipped.get(SkipReason::WrongDimension), 1);
    }

    #[test]
    fn an_empty_load_has_the_configured_dimension_or_none() {
        assert_eq!(load(&[], Vec::new(), Some(384)).0.dim(), 384);
        assert_eq!(load(&[], Vec::new(), None).0.dim(), 0);
    }

    #[test]
    fn issue_24_rows_quantized_while_parsing_give_the_snapshot_a_fresh_int8_copy_gives() {
        use semsearch_scan::{ScanMode, ScanPath};

        // Arrange: 40 rows of 8 in two chunks, one 3-d row (a minority
        // dimension, skipped) among them.
        let ids: Vec<String> = (0..41).map(|i| format!("{i:03}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        let values = |range: std::ops::Range<usize>| -> Vec<StoredValue> {
            range
                .map(|i| match i {
                    7 => value("[1,2,3]"),
                    _ => value(&format!(
                        "{:?}",
                        (0..8).map(|j| ((i * 7 + j * 13) % 17) as f32 - 8.0).collect::<Vec<_>>()
                    )),
                })
                .collect()
        };
        let (keys, list) = (KeySpace::default(), key_list(&ids));
        let read = |values| ReadValues { sent_at: SystemTime::now(), values };

        // Act
        let mut rows = RowCollector::new(None, &keys, list.len(), true);
        rows.append(parse_chunk(0, read(values(0..20)), true), &list);
        rows.append(parse_chunk(20, read(values(20..41)), true), &list);
        let (index, report, codes) = rows.finish(&keys).expect("ids are in order");
        let int8 = codes.expect("every kept row came with its code");
        let got = index.with_int8_copy(ScanMode::Int8, int8);

        // Assert
        assert_eq!(report.skipped.get(SkipReason::WrongDimension), 1);
        assert_eq!((got.len(), got.scan()), (40, ScanPath::Int8));
        let (want, _) = load(&ids, values(0..41), None);
        let want = want.with_scan(ScanMode::Int8);
        assert_eq!(got.int8_bytes(), want.int8_bytes());
        for q in 0..8 {
            let vector: Vec<f32> = (0..8).map(|j| ((q * 5 + j * 3) % 11) as f32 - 5.0).collect();
            let query = [crate::index::LiveQuery { vector: &vector, k: 5, ..Default::default() }];
            let (a, b) = (got.search(&query, 0), want.search(&query, 0));
            assert_eq!(a[0].hits, b[0].hits, "query {q}");
            assert_eq!(a[0].path, b[0].path, "query {q}");
        }
    }

    #[test]
    fn chunks_after_the_first_land_at_their_keys() {
        // Arrange: two chunks of one key list, as the pipeline delivers them.
        let (keys, list) = (KeySpace::default(), key_list(&["a", "b", "c"]));
        let mut rows = RowCollector::new(None, &keys, list.len(), false);
        let read = |values| ReadValues { sent_at: SystemTime::now(), values };

        // Act
        rows.append(parse_chunk(0, read(vec![value("[1,0]"), value("[0,1]")]), false), &list);
        rows.append(parse_chunk(2, read(vec![value("{}")]), false), &list);
        let (index, report, _) = rows.finish(&keys).expect("ids are in order");

        // Assert
        assert_eq!(ids(&index), ["a", "b"]);
        assert_eq!(report.presence("c", false), Presence::Skipped(SkipReason::InvalidJson));
    }
}
