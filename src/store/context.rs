//! `cache:context:<key>`: what the chatbot reads back after each search, and
//! the writer that puts it there. This module is the one owner of the
//! entry's layout ([`encode_payload`]) and of its default key
//! ([`request_hash`], [`similar_hash`]).
//!
//! Writes are asynchronous through a bounded queue: a search only pays for a
//! `try_send`, so a slow or absent Redis never delays or fails it; when the
//! queue is full the write is dropped and counted. One writer task drains
//! the queue, pipelining whatever is waiting.
//!
//! Staleness: when a new index version is published, [`ContextQueue::retire_before`]
//! raises a floor. Before its next write the writer UNLINKs every context it
//! wrote (the first time, every key under our prefix, by SCAN, to include
//! those of earlier processes) and from then on drops writes computed from
//! older versions, so no context from a previous index survives a reload.
//! The floor is raised *before* the swap, so the purge can only precede,
//! never follow, the first write of the new version.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use super::{
    keys::{KeySpace, WritableKey},
    link::{KeyScan, RedisClient, RedisConn},
    memory::MemoryBudget,
};
use crate::telemetry::propagation::TraceOrigin;

/// One result as the chatbot reads it from a context entry (the same
/// fields, in the same order, as the API's search result with text).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ContextEntry<'a, S: Serialize = ()> {
    pub id: &'a str,
    pub url: &'a str,
    pub title: Option<&'a str>,
    /// Already a JSON string: escaped once for this entry and the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a RawValue>,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vector_score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lexical_score: Option<f64>,
    /// The passage that answers, when the search asked for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snippet: Option<&'a S>,
}

/// What is stored in `cache:context:<key>`.
#[derive(Debug, Serialize)]
struct ContextPayload<'a, S: Serialize> {
    results: &'a [ContextEntry<'a, S>],
    /// How the results were ranked (`vector`, `lexical`, `hybrid`).
    mode: &'a str,
    k: usize,
    min_score: Option<f32>,
    index_version: u64,
    created_at: String,
}

/// The value of one context entry: the results with title and text (and
/// their snippets when asked), how they were ranked, the query's k and
/// min_score, the index version that answered, and when.
///
/// # Errors
/// Only if serialisation fails, which plain strings and numbers cannot.
pub fn encode_payload<S: Serialize>(
    results: &[ContextEntry<'_, S>],
    mode: &str,
    k: usize,
    min_score: Option<f32>,
    index_version: u64,
) -> Result<Vec<u8>, serde_json::Error> {
    // Written into one buffer about the payload's size rather than grown
    // from empty by doubling (a profile of 64 clients showed the copies).
    let strings: usize = results
        .iter()
        .map(|r| r.id.len() + r.url.len() + r.title.map_or(0, str::len) + r.text.map_or(0, |t| t.get().len()))
        .sum();
    let mut payload = Vec::with_capacity(PAYLOAD_ENVELOPE_BYTES + strings + results.len() * ENTRY_OVERHEAD_BYTES);
    serde_json::to_writer(
        &mut payload,
        &ContextPayload {
            results,
            mode,
            k,
            min_score,
            index_version,
            created_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        },
    )?;
    Ok(payload)
}

/// JSON bytes of a context entry besides its strings, and of the payload
/// besides its entries: the first guess of [`encode_payload`]'s buffer.
const ENTRY_OVERHEAD_BYTES: usize = 128;
const PAYLOAD_ENVELOPE_BYTES: usize = 160;

/// Stable hex id of a query: SHA-256 over the unit query vector (little
/// endian f32; for text, its embedding), k, min_score and the filter's
/// canonical form (`index::attributes::RowFilter::canonical`; an unfiltered
/// query hashes as before filters existed). The same question gives the
/// same context key; a vector and its multiples share one (they have the
/// same results).
pub fn request_hash(query: &[f32], k: usize, min_score: Option<f32>, filter: Option<&str>) -> String {
    context_hash(b"semsearch-context-v1\0", k, min_score, filter, |h| {
        for x in query {
            h.update(x.to_le_bytes());
        }
    })
}

/// The context id of an `id` query: unlike [`request_hash`] it names the
/// document, because its results (the document left out) differ from those
/// of a vector query with the same vector.
pub fn similar_hash(id: &str, k: usize, min_score: Option<f32>, filter: Option<&str>) -> String {
    context_hash(b"semsearch-context-similar-v1\0", k, min_score, filter, |h| {
        h.update((id.len() as u64).to_le_bytes());
        h.update(id.as_bytes());
    })
}

/// Everything that makes a search's results what they are, beyond a plain
/// vector query's ([`request_hash`]): its mode, words, hybrid weight and
/// snippet length.
#[derive(Debug, Clone, Copy)]
pub struct SearchHashParts<'a> {
    pub mode: &'a str,
    /// The question (empty for vector and id queries).
    pub text: &'a str,
    /// An `id` query's document.
    pub id: Option<&'a str>,
    /// The unit query vector, when the mode ranks by it.
    pub vector: Option<&'a [f32]>,
    pub vector_weight: Option<f64>,
    pub snippet_chars: Option<usize>,
    pub k: usize,
    pub min_score: Option<f32>,
    pub filter: Option<&'a str>,
}

/// The context id of a search with a mode other than `vector` or with
/// snippets: every part, length-prefixed, under its own domain tag.
pub fn search_hash(p: &SearchHashParts<'_>) -> String {
    context_hash(b"semsearch-context-search-v2\0", p.k, p.min_score, p.filter, |h| {
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(p.mode.as_bytes());
        field(p.text.as_bytes());
        field(p.id.unwrap_or("").as_bytes());
        let vector: Vec<u8> = p.vector.unwrap_or(&[]).iter().flat_map(|x| x.to_le_bytes()).collect();
        field(&vector);
        field(&p.vector_weight.map_or([0xff; 8], f64::to_le_bytes));
        field(&(p.snippet_chars.map_or(u64::MAX, |c| c as u64)).to_le_bytes());
    })
}

/// SHA-256 (hex) of a domain tag, the query as `write_query` feeds it, k,
/// min_score and the canonical filter if any: the one layout both context
/// hashes share.
fn context_hash(
    domain: &[u8],
    k: usize,
    min_score: Option<f32>,
    filter: Option<&str>,
    write_query: impl FnOnce(&mut Sha256),
) -> String {
    let mut h = Sha256::new();
    h.update(domain);
    write_query(&mut h);
    h.update((k as u64).to_le_bytes());
    match min_score {
        Some(m) => {
            h.update([1]);
            h.update(m.to_le_bytes());
        }
        None => h.update([0]),
    }
    if let Some(filter) = filter {
        h.update([2]);
        h.update((filter.len() as u64).to_le_bytes());
        h.update(filter.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Writes waiting at most; beyond this, writes are dropped.
pub const QUEUE_CAPACITY: usize = 4096;
/// Payload bytes waiting at most: the count alone let a paused Redis hold
/// 4096 large contexts (1.8 GB in issue 16's test); beyond this, dropped.
pub const QUEUE_BYTES: usize = 64 << 20;
/// Largest single context value; a larger one is not written (counted as
/// `too_large`): the chatbot reads a handful of articles, not megabytes.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Writes sent to Redis in one pipeline.
const PIPELINE_MAX: usize = 128;
/// Don't try to reconnect more often than this while Redis is away.
const RECONNECT_EVERY: Duration = Duration::from_secs(1);

/// One context to store.
#[derive(Debug)]
pub struct ContextWrite {
    pub key: WritableKey,
    pub payload: Vec<u8>,
    pub index_version: u64,
    /// The request's trace: the pipeline that writes it is a span of that
    /// trace (`context.write`). Empty when traces are off.
    pub origin: TraceOrigin,
}

/// Counters shown in `/v1/stats`.
#[derive(Debug, Default, Serialize)]
pub struct ContextStats {
    pub written: AtomicU64,
    /// Dropped because the queue was full, by count or bytes (Redis slow or away).
    pub dropped: AtomicU64,
    /// Not written because the value exceeded [`MAX_VALUE_BYTES`].
    pub too_large: AtomicU64,
    /// Dropped because a newer index version was published meanwhile.
    pub stale: AtomicU64,
    /// Sent but refused or lost by Redis.
    pub failed: AtomicU64,
    /// Contexts UNLINKed after reloads.
    pub purged: AtomicU64,
    /// Not written because Redis is near maxmemory under an evicting
    /// policy (see `store::memory`): writing would evict the chatbot's keys.
    pub memory_held: AtomicU64,
}

/// The producer side, held by the API.
#[derive(Debug, Clone)]
pub struct ContextQueue {
    tx: mpsc::Sender<ContextWrite>,
    /// Payload bytes queued and not yet taken by the writer.
    queued_bytes: Arc<AtomicUsize>,
    floor: Arc<watch::Sender<u64>>,
    pub stats: Arc<ContextStats>,
    ttl_secs: u64,
}

/// The consumer side, moved into the writer task.
pub struct ContextWriter {
    rx: mpsc::Receiver<ContextWrite>,
    queued_bytes: Arc<AtomicUsize>,
    floor: watch::Receiver<u64>,
    stats: Arc<ContextStats>,
    ttl_secs: u64,
    /// Asked before every write: Redis's room under an evicting policy.
    memory: Arc<MemoryBudget>,
    /// Keys this process wrote since the last purge, with when: a purge
    /// UNLINKs exactly these instead of SCANning the whole keyspace, which
    /// matters when per-key updates publish several versions a second.
    written: HashMap<String, Instant>,
    /// Size of `written` after its last pruning of entries Redis has expired.
    pruned_at_len: usize,
    /// Whether a purge by SCAN has run: the first one also removes contexts
    /// left by earlier processes, which this one never tracked.
    swept_once: bool,
}

/// A queue and its writer. `ttl_secs` is the context TTL (must be > 0);
/// `memory` decides whether Redis has room for a write (`store::memory`).
pub fn channel(ttl_secs: u64, memory: Arc<MemoryBudget>) -> (ContextQueue, ContextWriter) {
    let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
    let (floor_tx, floor_rx) = watch::channel(0);
    let stats = Arc::new(ContextStats::default());
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    (
        ContextQueue {
            tx,
            queued_bytes: Arc::clone(&queued_bytes),
            floor: Arc::new(floor_tx),
            stats: Arc::clone(&stats),
            ttl_secs,
        },
        ContextWriter {
            rx,
            queued_bytes,
            floor: floor_rx,
            stats,
            ttl_secs,
            memory,
            written: HashMap::new(),
            pruned_at_len: 0,
            swept_once: false,
        },
    )
}

#[cfg(test)]
impl ContextWriter {
    /// The next queued write, if any, without writing it (tests of what a
    /// search queues).
    pub(crate) fn try_take(&mut self) -> Option<ContextWrite> {
        self.rx.try_recv().ok()
    }
}

impl ContextQueue {
    /// Queues a write without waiting; returns whether it was queued. Refused
    /// when the value is over [`MAX_VALUE_BYTES`], or when the queue is full
    /// by count ([`QUEUE_CAPACITY`]) or bytes ([`QUEUE_BYTES`]).
    pub fn enqueue(&self, write: ContextWrite) -> bool {
        let bytes = write.payload.len();
        if bytes > MAX_VALUE_BYTES {
            self.stats.too_large.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let reserved = self
            .queued_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q + bytes <= QUEUE_BYTES).then_some(q + bytes))
            .is_ok();
        if reserved && self.tx.try_send(write).is_ok() {
            return true;
        }
        if reserved {
            self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        }
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Marks every context computed from a version below `version` as stale:
    /// they are purged and no longer written. Call before publishing `version`.
    pub fn retire_before(&self, version: u64) {
        self.floor.send_if_modified(|floor| {
            let raise = version > *floor;
            *floor = (*floor).max(version);
            raise
        });
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }
}

impl ContextWriter {
    /// Drains the queue into Redis until cancelled.
    pub async fn run(mut self, client: RedisClient, keys: KeySpace, cancel: CancellationToken) {
        let mut conn: Option<RedisConn> = None;
        let mut last_attempt: Option<Instant> = None;
        let mut batch = Vec::with_capacity(PIPELINE_MAX);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                changed = self.floor.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.purge(&client, &keys, &mut conn, &mut last_attempt).await;
                }
                n = self.rx.recv_many(&mut batch, PIPELINE_MAX) => {
                    if n == 0 {
                        break;
                    }
                    let taken: usize = batch.iter().map(|w| w.payload.len()).sum();
                    self.queued_bytes.fetch_sub(taken, Ordering::AcqRel);
                    if self.floor.has_changed().unwrap_or(false) {
                        self.floor.mark_unchanged();
                        self.purge(&client, &keys, &mut conn, &mut last_attempt).await;
                    }
                    self.write(&client, &mut batch, &mut conn, &mut last_attempt).await;
                }
            }
        }
        let left = self.rx.len() as u64;
        if left > 0 {
            self.stats.dropped.fetch_add(left, Ordering::Relaxed);
            info!(dropped = left, "context writes dropped at shutdown");
        }
    }

    async fn write(
        &mut self,
        client: &RedisClient,
        batch: &mut Vec<ContextWrite>,
        conn: &mut Option<RedisConn>,
        last_attempt: &mut Option<Instant>,
    ) {
        let floor = *self.floor.borrow();
        let before = batch.len();
        batch.retain(|w| w.index_version >= floor);
        self.stats.stale.fetch_add((before - batch.len()) as u64, Ordering::Relaxed);
        self.memory.wait_first_reading().await;
        let memory = &self.memory;
        let before = batch.len();
        batch.retain(|w| memory.try_spend("context", w.key.as_str().len(), w.payload.len()));
        self.stats.memory_held.fetch_add((before - batch.len()) as u64, Ordering::Relaxed);
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let Some(c) = connection(client, conn, last_attempt).await else {
            self.stats.failed.fetch_add(n, Ordering::Relaxed);
            batch.clear();
            return;
        };
        let span = write_span(batch);
        let mut sets = Vec::with_capacity(batch.len());
        let now = Instant::now();
        for w in batch.drain(..) {
            let mut set = redis::cmd("SET");
            set.arg(w.key.as_str()).arg(w.payload).arg("EX").arg(self.ttl_secs);
            sets.push(set);
            // Tracked even if the write fails: it may have reached Redis.
            self.written.insert(w.key.as_str().to_owned(), now);
        }
        self.prune_expired();
        // One pipeline on a node; on a cluster each SET goes to its key's primary.
        match c.query_each(sets).instrument(span.clone()).await {
            Ok(()) => {
                self.stats.written.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                span.record("otel.status_code", "error");
                self.stats.failed.fetch_add(n, Ordering::Relaxed);
                warn!(error.message = %e, writes = n, "context writes failed");
                *conn = None;
            }
        }
    }

    async fn purge(
        &mut self,
        client: &RedisClient,
        keys: &KeySpace,
        conn: &mut Option<RedisConn>,
        last_attempt: &mut Option<Instant>,
    ) {
        let Some(c) = connection(client, conn, last_attempt).await else {
            warn!("cannot purge stale contexts: Redis unreachable; they expire by TTL");
            return;
        };
        let result = if self.swept_once {
            self.prune_expired();
            let tracked: Vec<String> = self.written.keys().cloned().collect();
            unlink_all(c, &tracked).await
        } else {
            purge_prefix(c, &keys.context_pattern()).await
        };
        match result {
            Ok(n) => {
                self.swept_once = true;
                self.written.clear();
                self.pruned_at_len = 0;
                self.stats.purged.fetch_add(n, Ordering::Relaxed);
                debug!(purged = n, "stale contexts removed");
            }
            Err(e) => {
                warn!(error.message = %e, "purging stale contexts failed; they expire by TTL");
                *conn = None;
            }
        }
    }

    /// Forgets keys Redis has expired by now, whenever the map has doubled.
    fn prune_expired(&mut self) {
        if self.written.len() < 2 * self.pruned_at_len.max(1024) {
            return;
        }
        let ttl = Duration::from_secs(self.ttl_secs);
        self.written.retain(|_, at| at.elapsed() < ttl);
        self.pruned_at_len = self.written.len();
    }
}

/// The trace span of one pipeline of context writes (DEBUG: see
/// `telemetry`): a child of the first write's request, linked to the other
/// requests it carries. Counts and sizes only, no key (it hashes the question).
fn write_span(batch: &[ContextWrite]) -> tracing::Span {
    let span = tracing::debug_span!(
        parent: None,
        "context.write",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        db.system.name = "redis",
        db.operation.name = "SET",
        db.operation.batch.size = batch.len(),
        context.bytes = batch.iter().map(|w| w.payload.len()).sum::<usize>(),
    );
    if let Some((first, rest)) = batch.split_first() {
        if !span.is_disabled() {
            first.origin.adopt(&span);
            rest.iter().for_each(|w| w.origin.link(&span));
        }
    }
    span
}

/// UNLINKs these keys (all under our context prefix) in chunks.
async fn unlink_all(conn: &mut RedisConn, keys: &[String]) -> redis::RedisResult<u64> {
    let mut purged = 0u64;
    for chunk in keys.chunks(1000) {
        let n: u64 = redis::cmd("UNLINK").arg(chunk).query_async(conn).await?;
        purged += n;
    }
    Ok(purged)
}

/// SCAN (every primary of a cluster) + UNLINK of everything matching
/// `pattern` (our context prefix only).
async fn purge_prefix(conn: &mut RedisConn, pattern: &str) -> redis::RedisResult<u64> {
    let mut scan = KeyScan::start(conn, pattern, 1000).await?;
    let mut purged = 0u64;
    while let Some(batch) = scan.next(conn).await? {
        if !batch.is_empty() {
            // redis-rs splits a multi-key UNLINK by slot on a cluster.
            let n: u64 = redis::cmd("UNLINK").arg(&batch).query_async(conn).await?;
            purged += n;
        }
    }
    Ok(purged)
}

async fn connection<'c>(
    client: &RedisClient,
    conn: &'c mut Option<RedisConn>,
    last_attempt: &mut Option<Instant>,
) -> Option<&'c mut RedisConn> {
    if conn.is_none() && last_attempt.is_none_or(|t| t.elapsed() >= RECONNECT_EVERY) {
        *last_attempt = Some(Instant::now());
        match client.connect(Duration::from_secs(1), Duration::from_secs(2)).await {
            Ok(c) => *conn = Some(c),
            Err(e) => debug!(error.message = %e, "context writer cannot reach Redis"),
        }
    }
    conn.as_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(queue_keys: &KeySpace, bytes: usize) -> ContextWrite {
        let key = queue_keys.context_key("k").expect("valid suffix");
        ContextWrite { key, payload: vec![b'x'; bytes], index_version: 1, origin: TraceOrigin::default() }
    }

    #[test]
    fn issue_16_a_value_over_the_cap_is_not_queued_and_is_counted() {
        let (queue, _writer) = channel(60, MemoryBudget::new(10));
        let keys = KeySpace::default();

        assert!(!queue.enqueue(write(&keys, MAX_VALUE_BYTES + 1)));
        assert!(queue.enqueue(write(&keys, MAX_VALUE_BYTES)));

        assert_eq!(queue.stats.too_large.load(Ordering::Relaxed), 1);
        assert_eq!(queue.stats.dropped.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn issue_16_the_queue_is_bounded_in_bytes_not_only_in_count() {
        // Arrange: nobody drains the queue (Redis paused).
        let (queue, _writer) = channel(60, MemoryBudget::new(10));
        let keys = KeySpace::default();
        let fits = QUEUE_BYTES / MAX_VALUE_BYTES;
        assert!(fits < QUEUE_CAPACITY, "the byte bound is the one reached first here");

        // Act
        let queued = (0..fits + 5).filter(|_| queue.enqueue(write(&keys, MAX_VALUE_BYTES))).count();

        // Assert
        assert_eq!(queued, fits);
        assert_eq!(queue.stats.dropped.load(Ordering::Relaxed), 5);
        assert!(queue.enqueue(write(&keys, 0)), "an empty payload still fits");
    }
}
