//! Bulk load of every embedding key into a fresh [`Index`], with the
//! [`LoadReport`] that accounts for every key it saw; and the same for a
//! handful of keys a per-key update re-reads.
//!
//! Pipeline: SCAN (MATCH + large COUNT, never KEYS; on every primary of a
//! cluster) → sort and dedupe keys → MGET in chunks, a few in flight on one
//! multiplexed connection → each chunk parsed (and, for an int8 scan,
//! quantized) on rayon as soon as it arrives → rows appended to one
//! pre-sized matrix. Raw values live only as long as their chunk, so there
//! is never a second copy of all values in memory. Every step is linear in
//! the keys and touches them in memory order where it can (issue 24: a
//! load of 1M keys had grown to 3–4× a bare MGET). One part per file:
//! - `fetch`: which keys, and the chunk reads (`store::link` hides node
//!   vs cluster, slots, PTTL and TYPE);
//! - `build`: decoding, the dimension rule, rows into the matrix;
//! - `report`: the account of keys, skips and the key-set fingerprint.
//!
//! Bad values are data, not errors: each is counted in [`LoadReport`] by
//! [`SkipReason`] and logged with its key (within a per-reason budget,
//! [`LOGGED_SKIPS_PER_REASON`]). Only Redis failures abort a load; the caller retries.

mod build;
mod fetch;
mod report;

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use semsearch_scan::{ScanMode, ScanPath};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use self::{
    build::MAX_DIM,
    report::{LoadReport, LoadStages, Presence, Reread, SkipCounts, LOGGED_SKIPS_PER_REASON},
};
use self::{
    build::{parse_chunk, ParsedChunk, RowCollector},
    fetch::{fetch_chunks, scan_fingerprint, scan_keys, KeysToRead, FETCHES_IN_FLIGHT},
};
use super::{
    decode::SkipReason,
    keys::{KeySetFingerprint, KeySpace},
    link::{RedisClient, RedisConn, ValueReader},
};
use crate::index::{Index, IndexError};

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
    /// How the snapshot will be scanned (`SEMSEARCH_SCAN`): when that is
    /// int8, a full load quantizes each chunk's rows as it parses them,
    /// while the next chunks are on the wire, and the snapshot it returns
    /// already holds its int8 copy.
    pub scan: ScanMode,
}

impl Default for LoadSettings {
    fn default() -> Self {
        Self { scan_count: 1000, chunk_keys: 500, response_timeout: Duration::from_secs(30), scan: ScanMode::Auto }
    }
}

/// Chunks parsed at once: one per core on the 2-core target machine.
const PARSES_IN_FLIGHT: usize = 2;

/// A load of the index from Redis that could not complete. Always worth a retry.
#[derive(Debug, Error)]
pub enum IndexLoadError {
    #[error("redis failed during load")]
    Redis(#[from] redis::RedisError),
    #[error("a parser worker stopped unexpectedly")]
    WorkerGone,
    #[error("loaded rows do not form a valid index")]
    Index(#[from] IndexError),
}

/// A fresh snapshot and the account of the keys it was built from.
#[derive(Debug)]
pub struct Loaded {
    pub index: Index,
    pub report: LoadReport,
}

impl Loaded {
    /// Where document `id` stands in this load: a row, a skipped key, or absent.
    pub fn presence(&self, id: &str) -> Presence {
        self.report.presence(id, self.index.find(id).is_some())
    }
}

/// Opens a connection for bulk reads, with the response timeout set for
/// multi-megabyte replies.
///
/// # Errors
/// [`IndexLoadError::Redis`] when Redis cannot be reached or refuses the handshake.
pub async fn connect(client: &RedisClient, settings: &LoadSettings) -> Result<RedisConn, IndexLoadError> {
    Ok(client.connect(Duration::from_secs(5), settings.response_timeout).await?)
}

/// Loads every key matching the embedding pattern into a new index.
///
/// `dim`: the index dimension if configured; otherwise the most common
/// dimension among valid values (ties go to the first seen).
///
/// # Errors
/// [`IndexLoadError`] when Redis fails mid-load; bad values never fail a load.
pub async fn load_all(
    conn: &RedisConn,
    keys: &KeySpace,
    settings: &LoadSettings,
    dim: Option<usize>,
) -> Result<Loaded, IndexLoadError> {
    let started = Instant::now();
    let to_read = scan_keys(conn, keys, settings.scan_count).await?;
    let scanned = started.elapsed();
    let quantize = settings.scan.resolve(to_read.keys.len(), dim.unwrap_or(1)) == ScanPath::Int8;
    load_sorted(conn, keys, settings, dim, to_read, (started, scanned), quantize).await
}

/// Loads exactly the documents `ids` (sorted and deduplicated here) into a
/// new index, as [`load_all`] does after its SCAN: what a per-key update
/// re-reads. Documents that no longer exist count as `vanished`; an empty
/// id (it would name the bare prefix) as `invalid_key`.
///
/// # Errors
/// [`IndexLoadError`] when Redis fails.
pub async fn load_ids(
    conn: &RedisConn,
    keys: &KeySpace,
    settings: &LoadSettings,
    dim: Option<usize>,
    ids: &[Box<str>],
) -> Result<Loaded, IndexLoadError> {
    let started = Instant::now();
    // A handful of rows: the update merges them into the snapshot's delta, scanned in f32.
    load_sorted(conn, keys, settings, dim, KeysToRead::from_ids(ids, keys), (started, Duration::ZERO), false).await
}

/// Reads `to_read.keys` (sorted) chunk by chunk, parsing each chunk on
/// rayon while the next ones are on the wire, into one snapshot.
/// `(started, scanned)`: when the load began, and how long its SCAN took;
/// `quantize`: whether rows get their int8 codes as they are parsed (see
/// [`LoadSettings::scan`]).
async fn load_sorted(
    conn: &RedisConn,
    keys: &KeySpace,
    settings: &LoadSettings,
    dim: Option<usize>,
    to_read: KeysToRead,
    (started, scanned): (Instant, Duration),
    quantize: bool,
) -> Result<Loaded, IndexLoadError> {
    let reading = Instant::now();
    let KeysToRead { keys: key_list, invalid, fingerprint } = to_read;
    let mut rows = RowCollector::new(dim, keys, key_list.len(), quantize);
    rows.report.fingerprint = fingerprint;
    rows.report.keys_scanned = key_list.len() + invalid.len();
    for key in &invalid {
        rows.report.count_skip(key, None, SkipReason::InvalidKey);
    }
    let key_list: Arc<[String]> = key_list.into();

    // Read once per load: a slot that moves meanwhile fails the load (MOVED
    // on an addressed pipeline), and the refresher retries it whole.
    let reader = ValueReader::new(conn).await?;
    let (tx, mut rx) = mpsc::channel(FETCHES_IN_FLIGHT);
    let producer = tokio::spawn(fetch_chunks(reader, Arc::clone(&key_list), settings.chunk_keys, tx));

    let mut parsing: VecDeque<oneshot::Receiver<ParsedChunk>> = VecDeque::new();
    while let Some(fetched) = rx.recv().await {
        let chunk = fetched?;
        let (done_tx, done_rx) = oneshot::channel();
        rayon::spawn(move || {
            let _ = done_tx.send(parse_chunk(chunk.first_key, chunk.read, quantize));
        });
        parsing.push_back(done_rx);
        while parsing.len() >= PARSES_IN_FLIGHT {
            let oldest = parsing.pop_front().ok_or(IndexLoadError::WorkerGone)?;
            rows.append(oldest.await.map_err(|_| IndexLoadError::WorkerGone)?, &key_list);
        }
    }
    for pending in parsing {
        rows.append(pending.await.map_err(|_| IndexLoadError::WorkerGone)?, &key_list);
    }
    // The producer has finished sending; a panic there would show up as a closed channel above.
    let _ = producer.await;

    let finishing = Instant::now();
    let (scan, keys) = (settings.scan, keys.clone());
    // Checks and deadlines (the int8 copy was laid out as rows came): CPU work, off the tokio workers.
    let (index, mut report) = tokio::task::spawn_blocking(move || -> Result<_, IndexLoadError> {
        let (index, report, codes) = rows.finish(&keys)?;
        let index = match codes {
            Some(int8) => index.with_int8_copy(scan, int8),
            None => index,
        };
        Ok((index, report))
    })
    .await
    .map_err(|_| IndexLoadError::WorkerGone)??;
    report.duration = started.elapsed();
    report.stages.scan = scanned;
    report.stages.read = finishing - reading;
    report.stages.finish = finishing.elapsed();
    report.log(&index);
    Ok(Loaded { index, report })
}

/// The fingerprint of every key matching the embedding pattern, as a full
/// load would compute it, without reading any value.
///
/// # Errors
/// [`redis::RedisError`] when SCAN fails.
pub async fn fingerprint(conn: &RedisConn, keys: &KeySpace, count: usize) -> redis::RedisResult<KeySetFingerprint> {
    scan_fingerprint(conn, keys, count).await
}
