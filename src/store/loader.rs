//! Bulk load of every embedding key into a fresh [`Index`], with the
//! [`LoadReport`] that accounts for every key it saw.
//!
//! Pipeline: SCAN (MATCH + large COUNT, never KEYS; on every primary of a
//! cluster) → sort and dedupe keys → MGET in chunks, a few in flight on one
//! multiplexed connection (on a cluster, each chunk split into one pipeline
//! per primary and one MGET per hash slot) → each chunk
//! parsed on rayon as soon as it arrives → rows appended to one pre-sized
//! matrix. Raw values live only as long as their chunk, so there is never a
//! second copy of all values in memory.
//!
//! Bad values are data, not errors: each is counted in [`LoadReport`] by
//! [`SkipReason`] and logged with its key (the first [`LOGGED_SKIPS_PER_REASON`]
//! per reason per load, then a summary, so a corrupt keyspace cannot flood
//! the log). Only Redis failures abort a load; the caller retries.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde::Serialize;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{
    decode::{decode_into, Meta, SkipReason},
    keys::{KeySetFingerprint, KeySpace},
    link::{self, RedisClient, RedisConn, StoredValue, ValueReader},
};
use crate::index::{Document, Index, IndexBuilder, IndexError};

/// Knobs of the bulk load from Redis.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    /// Keys asked for per SCAN call (the COUNT hint).
    pub scan_count: usize,
    /// Keys fetched per MGET.
    pub chunk_keys: usize,
    /// Redis response timeout while loading: multi-megabyte MGET replies on
    /// a busy server outlast redis-rs's 500 ms default.
    pub response_timeout: Duration,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self { scan_count: 1000, chunk_keys: 500, response_timeout: Duration::from_secs(30) }
    }
}

/// MGET replies requested ahead of the parser. Two keeps Redis busy while a
/// reply is in transit without holding many multi-megabyte replies at once.
const FETCHES_IN_FLIGHT: usize = 2;
/// Chunks parsed at once: one per core on the 2-core target machine.
const PARSES_IN_FLIGHT: usize = 2;
/// Largest vector dimension accepted; larger values are `wrong_dimension`.
/// Guards the matrix pre-allocation against a single giant blob.
pub const MAX_DIM: usize = 65_536;
/// Skipped keys logged individually per reason and load.
pub const LOGGED_SKIPS_PER_REASON: u64 = 20;

/// A load that could not complete. Always worth a retry.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("redis failed during load")]
    Redis(#[from] redis::RedisError),
    #[error("a parser worker stopped unexpectedly")]
    WorkerGone,
    #[error("loaded rows do not form a valid index")]
    Index(#[from] IndexError),
}

/// Skipped keys by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason, n: u64) {
        self.0[reason as usize] += n;
    }
    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0[reason as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Every reason with its count, zeros included, in a stable order.
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        SkipReason::ALL.iter().map(|r| (r.as_str(), self.get(*r))).collect()
    }
}

impl Serialize for SkipCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_name().serialize(s)
    }
}

/// What one load did: logged once, published beside the snapshot for
/// `/v1/stats`, and kept by the refresher, whose reconcile compares its key
/// set with Redis.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Keys that exist but were skipped (not vanished ones): with the rows,
    /// the key set this snapshot accounts for.
    pub skipped_keys: BTreeMap<String, SkipReason>,
    /// Digest of every key SCAN found (rows and skipped alike), compared with
    /// Redis by the periodic reconcile.
    pub fingerprint: KeySetFingerprint,
    /// Distinct keys SCAN found under the embedding pattern.
    pub keys_scanned: usize,
    pub loaded: usize,
    pub skipped: SkipCounts,
    /// Bytes of values received from Redis.
    pub value_bytes: u64,
    pub dim: usize,
    pub duration: Duration,
}

/// A fresh snapshot and the account of the keys it was built from.
#[derive(Debug)]
pub struct Loaded {
    pub index: Index,
    pub report: LoadReport,
}

impl LoadReport {
    /// The report after `changed_keys` were re-read into `fresh` (whose own
    /// report is `fresh_report`) and merged into the snapshot `before` gave
    /// rise to: the key-set fingerprint gains keys that now exist and loses
    /// keys that are gone, key by key, so the reconcile keeps agreeing with
    /// Redis; skipped keys are re-accounted; `loaded` and `dim` follow `merged`.
    pub fn after_update(
        &self,
        keys: &KeySpace,
        changed_keys: &[String],
        before: &Index,
        fresh: &Loaded,
        merged: &Index,
    ) -> LoadReport {
        let mut report = self.clone();
        for key in changed_keys {
            let Some(id) = keys.doc_id(key) else { continue };
            let existed = before.find(id).is_some() || self.skipped_keys.contains_key(key);
            let exists = fresh.index.find(id).is_some() || fresh.report.skipped_keys.contains_key(key);
            match (existed, exists) {
                (false, true) => report.fingerprint.insert(key.as_bytes()),
                (true, false) => report.fingerprint.remove(key.as_bytes()),
                _ => {}
            }
            report.skipped_keys.remove(key);
        }
        report.skipped_keys.extend(fresh.report.skipped_keys.iter().map(|(k, r)| (k.clone(), *r)));
        report.loaded = merged.len();
        report.dim = merged.dim();
        report
    }
}

/// Opens a connection for bulk reads, with the response timeout set for
/// multi-megabyte replies.
///
/// # Errors
/// [`LoadError::Redis`] when Redis cannot be reached or refuses the handshake.
pub async fn connect(client: &RedisClient, settings: &LoadSettings) -> Result<RedisConn, LoadError> {
    Ok(client.connect(Duration::from_secs(5), settings.response_timeout).await?)
}

/// Loads every key matching the embedding pattern into a new index.
///
/// `dim`: the index dimension if configured; otherwise the most common
/// dimension among valid values (ties go to the first seen).
///
/// # Errors
/// [`LoadError`] when Redis fails mid-load; bad values never fail a load.
pub async fn load_all(
    conn: &RedisConn,
    keys: &KeySpace,
    settings: &LoadSettings,
    dim: Option<usize>,
) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let mut builder = Builder::new(dim, keys.embedding_prefix().len());
    let mut key_list = scan_keys(conn.clone(), keys, settings.scan_count, &mut builder).await?;
    // SCAN MATCH also returns the bare prefix, which names no document.
    key_list.retain(|k| {
        let ours = keys.doc_id(k).is_some();
        if !ours {
            builder.skip(k, SkipReason::InvalidKey);
        }
        ours
    });
    load_sorted(conn, keys, settings, builder, key_list, started).await
}

/// Loads exactly these keys (sorted and deduplicated here) into a new index,
/// as [`load_all`] does after its SCAN. Keys outside the embedding prefix are
/// skipped as `invalid_key`; keys that no longer exist count as `vanished`.
///
/// # Errors
/// [`LoadError`] when Redis fails.
pub async fn load_keys(
    conn: &RedisConn,
    keys: &KeySpace,
    settings: &LoadSettings,
    dim: Option<usize>,
    mut key_list: Vec<String>,
) -> Result<Loaded, LoadError> {
    let started = Instant::now();
    let mut builder = Builder::new(dim, keys.embedding_prefix().len());
    key_list.sort_unstable();
    key_list.dedup();
    // Another shard's keys (a change-feed event, a recheck) are not ours.
    key_list.retain(|k| keys.owns(k.as_bytes()));
    key_list.retain(|k| {
        let ours = keys.doc_id(k).is_some();
        if !ours {
            builder.skip(k, SkipReason::InvalidKey);
        }
        ours
    });
    load_sorted(conn, keys, settings, builder, key_list, started).await
}

async fn load_sorted(
    conn: &RedisConn,
    keys: &KeySpace,
    settings: &LoadSettings,
    mut builder: Builder,
    key_list: Vec<String>,
    started: Instant,
) -> Result<Loaded, LoadError> {
    let key_list: Arc<[String]> = key_list.into();
    builder.report.keys_scanned = key_list.len() + builder.report.skipped.get(SkipReason::InvalidKey) as usize;
    builder.expected_rows = key_list.len();

    // Read once per load: a slot that moves meanwhile fails the load (MOVED
    // on an addressed pipeline), and the refresher retries it whole.
    let reader = ValueReader::new(conn).await?;
    let (tx, mut rx) = mpsc::channel(FETCHES_IN_FLIGHT);
    let producer = tokio::spawn(fetch_chunks(reader, Arc::clone(&key_list), settings.chunk_keys.max(1), tx));

    let mut parsing: VecDeque<oneshot::Receiver<ParsedChunk>> = VecDeque::new();
    while let Some(fetched) = rx.recv().await {
        let chunk = fetched?;
        let (done_tx, done_rx) = oneshot::channel();
        let keys_for_parser = Arc::clone(&key_list);
        rayon::spawn(move || {
            let _ = done_tx.send(parse_chunk(chunk, &keys_for_parser));
        });
        parsing.push_back(done_rx);
        while parsing.len() >= PARSES_IN_FLIGHT {
            let oldest = parsing.pop_front().ok_or(LoadError::WorkerGone)?;
            builder.append(oldest.await.map_err(|_| LoadError::WorkerGone)?, &key_list);
        }
    }
    for pending in parsing {
        builder.append(pending.await.map_err(|_| LoadError::WorkerGone)?, &key_list);
    }
    // The producer has finished sending; a panic there would show up as a closed channel above.
    let _ = producer.await;

    let (index, mut report) = builder.finish(keys)?;
    report.duration = started.elapsed();
    let r = &report;
    info!(
        docs = r.loaded,
        keys = r.keys_scanned,
        skipped = r.skipped.total(),
        wrong_type = r.skipped.get(SkipReason::WrongType),
        invalid_json = r.skipped.get(SkipReason::InvalidJson),
        non_finite = r.skipped.get(SkipReason::NonFinite),
        zero_vector = r.skipped.get(SkipReason::ZeroVector),
        wrong_dimension = r.skipped.get(SkipReason::WrongDimension),
        vanished = r.skipped.get(SkipReason::Vanished),
        invalid_key = r.skipped.get(SkipReason::InvalidKey),
        dim = r.dim,
        value_bytes = r.value_bytes,
        matrix_bytes = index.matrix_bytes(),
        metadata_bytes = index.metadata_bytes(),
        attributes = index.attributes().field_count(),
        attributes_dropped = index.attributes().dropped(),
        duration_ms = r.duration.as_millis() as u64,
        "embeddings loaded"
    );
    Ok(Loaded { index, report })
}

/// The fingerprint of every key matching the embedding pattern, as a full
/// load would compute it, without reading any value.
///
/// # Errors
/// [`redis::RedisError`] when SCAN fails.
pub async fn fingerprint(conn: &RedisConn, keys: &KeySpace, count: usize) -> redis::RedisResult<KeySetFingerprint> {
    let mut fingerprint = KeySetFingerprint::default();
    for key in scan_all(conn, keys.embedding_pattern(), count).await?.iter().filter(|k| keys.owns(k)) {
        fingerprint.insert(key);
    }
    Ok(fingerprint)
}

/// A key's remaining time to live in ms, as Redis's PTTL answers it: -1 for
/// a key without a TTL, -2 for a key that does not exist.
///
/// # Errors
/// [`redis::RedisError`] when the command fails.
pub async fn pttl(conn: &RedisConn, key: &str) -> redis::RedisResult<i64> {
    conn.pttl(key).await
}

/// Every distinct key matching `pattern`, sorted byte-wise, from every
/// node (see [`link::scan_all`]).
///
/// # Errors
/// [`redis::RedisError`] when a SCAN call fails.
pub async fn scan_all(conn: &RedisConn, pattern: &str, count: usize) -> redis::RedisResult<Vec<Vec<u8>>> {
    link::scan_all(conn, pattern, count).await
}

/// Every distinct key matching the embedding pattern that this replica
/// keeps (all of them, or its shard's), sorted (so rows come out in id order).
async fn scan_keys(
    conn: RedisConn,
    keys: &KeySpace,
    count: usize,
    builder: &mut Builder,
) -> Result<Vec<String>, LoadError> {
    let mut raw = scan_all(&conn, keys.embedding_pattern(), count).await?;
    raw.retain(|k| keys.owns(k));
    for key in &raw {
        builder.report.fingerprint.insert(key);
    }
    let mut keys = Vec::with_capacity(raw.len());
    for key in raw {
        match String::from_utf8(key) {
            Ok(k) => keys.push(k),
            Err(e) => builder.skip(&String::from_utf8_lossy(e.as_bytes()), SkipReason::InvalidKey),
        }
    }
    Ok(keys)
}

/// One fetched value with its key's deadline, or why there is none.
enum Raw {
    Value { bytes: Vec<u8>, expires_at_ms: Option<u64> },
    Nil(SkipReason),
}

struct FetchedChunk {
    first_key: usize,
    values: Vec<Raw>,
}

async fn fetch_chunks(
    reader: ValueReader,
    keys: Arc<[String]>,
    chunk_keys: usize,
    tx: mpsc::Sender<Result<FetchedChunk, LoadError>>,
) {
    let starts = (0..keys.len()).step_by(chunk_keys);
    let mut replies = futures::stream::iter(starts)
        .map(|first| {
            let end = (first + chunk_keys).min(keys.len());
            let (reader, keys) = (reader.clone(), Arc::clone(&keys));
            async move {
                let read = reader.read(&keys[first..end]).await?;
                let sent_at_ms = read.sent_at.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let values = read
                    .values
                    .into_iter()
                    .map(|v| match v {
                        StoredValue::String { bytes, ttl_ms } => {
                            Raw::Value { bytes, expires_at_ms: ttl_ms.map(|ms| sent_at_ms + ms) }
                        }
                        StoredValue::Missing => Raw::Nil(SkipReason::Vanished),
                        StoredValue::OtherType => Raw::Nil(SkipReason::WrongType),
                    })
                    .collect();
                Ok(FetchedChunk { first_key: first, values })
            }
        })
        .buffered(FETCHES_IN_FLIGHT);
    while let Some(reply) = replies.next().await {
        let failed = reply.is_err();
        if tx.send(reply).await.is_err() || failed {
            break;
        }
    }
}

/// One chunk, decoded: rows back to back in `floats`, in key order.
struct ParsedChunk {
    docs: Vec<ParsedDoc>,
    floats: Vec<f32>,
    skips: Vec<(usize, SkipReason)>,
    value_bytes: u64,
}

struct ParsedDoc {
    key: usize,
    meta: Meta,
    dim: usize,
    expires_at_ms: Option<u64>,
}

fn parse_chunk(chunk: FetchedChunk, keys: &[String]) -> ParsedChunk {
    let mut out = ParsedChunk {
        docs: Vec::with_capacity(chunk.values.len()),
        floats: Vec::new(),
        skips: Vec::new(),
        value_bytes: 0,
    };
    debug_assert!(chunk.first_key + chunk.values.len() <= keys.len());
    let n_values = chunk.values.len();
    for (offset, raw) in chunk.values.into_iter().enumerate() {
        let key = chunk.first_key + offset;
        match raw {
            Raw::Nil(reason) => out.skips.push((key, reason)),
            Raw::Value { bytes, expires_at_ms } => {
                out.value_bytes += bytes.len() as u64;
                let before = out.floats.len();
                let remaining = n_values - offset;
                match decode_into(&bytes, &mut out.floats) {
                    Ok(meta) => {
                        let dim = out.floats.len() - before;
                        if out.docs.is_empty() {
                            // Size the chunk's buffer once from the first row instead of doubling.
                            out.floats.reserve(remaining.saturating_sub(1).saturating_mul(dim).min(MAX_DIM * 1024));
                        }
                        out.docs.push(ParsedDoc { key, meta, dim, expires_at_ms });
                    }
                    Err(reason) => out.skips.push((key, reason)),
                }
            }
        }
    }
    out
}

/// Collects parsed chunks into the matrix of the index dimension.
///
/// Rows of the first dimension seen (or the configured one) go straight into
/// the pre-sized `main`; rows of other dimensions wait in `others` until the
/// majority is known, which they almost never win.
struct Builder {
    configured_dim: Option<usize>,
    main_dim: Option<usize>,
    /// Rows of `main_dim`, created with the first row.
    main: Option<IndexBuilder>,
    others: BTreeMap<usize, IndexBuilder>,
    prefix_len: usize,
    expected_rows: usize,
    report: LoadReport,
}

impl Builder {
    fn new(configured_dim: Option<usize>, prefix_len: usize) -> Self {
        Self {
            configured_dim,
            main_dim: configured_dim,
            main: None,
            others: BTreeMap::new(),
            prefix_len,
            expected_rows: 0,
            report: LoadReport::default(),
        }
    }

    fn skip(&mut self, key: &str, reason: SkipReason) {
        self.report.skipped.add(reason, 1);
        if !matches!(reason, SkipReason::Vanished | SkipReason::InvalidKey) {
            self.report.skipped_keys.insert(key.to_owned(), reason);
        }
        let n = self.report.skipped.get(reason);
        if n <= LOGGED_SKIPS_PER_REASON {
            warn!(key, reason = reason.as_str(), "skipped embedding key");
        }
        if n == LOGGED_SKIPS_PER_REASON {
            warn!(reason = reason.as_str(), "further skips for this reason are counted, not logged, in this load");
        }
    }

    fn append(&mut self, chunk: ParsedChunk, keys: &[String]) {
        self.report.value_bytes += chunk.value_bytes;
        for (key, reason) in chunk.skips {
            self.skip(&keys[key], reason);
        }
        let mut offset = 0;
        for doc in chunk.docs {
            let row = &chunk.floats[offset..offset + doc.dim];
            offset += doc.dim;
            if doc.dim > MAX_DIM {
                self.skip(&keys[doc.key], SkipReason::WrongDimension);
                continue;
            }
            let main_dim = *self.main_dim.get_or_insert(doc.dim);
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

    fn finish(mut self, keys: &KeySpace) -> Result<(Index, LoadReport), LoadError> {
        let main = self.main.take().unwrap_or_else(|| IndexBuilder::new(self.main_dim.unwrap_or(0)));
        let majority = self
            .others
            .iter()
            .map(|(dim, rows)| (*dim, rows.len()))
            .filter(|(_, n)| *n > main.len())
            .max_by_key(|(_, n)| *n)
            .map(|(dim, _)| dim);
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
            self.skip(&keys.embedding_key(&doc.id), SkipReason::WrongDimension);
        }
        let index = rows.finish()?;
        self.report.loaded = index.len();
        self.report.dim = index.dim();
        Ok((index, self.report))
    }
}

fn to_document(id: &str, meta: Meta, expires_at_ms: Option<u64>) -> Document {
    let url = meta.url.filter(|u| **u != *id);
    Document { id: id.into(), url, title: meta.title, text: meta.text, expires_at_ms, attributes: meta.attributes }
}
