//! Redis side of the query-embedding cache: `GET` / `SET … EX` of one
//! question's vector under [`QueryCacheKeys`].
//!
//! Owns the wire format and the connection; the in-process LRU and the
//! decision of when to look here live in `embed::embedder`.
//!
//! - Values are the raw provider vector as little-endian `f32` bytes: exact
//!   (no decimal round trip), 4 × dim bytes, and impossible to mistake for the
//!   chatbot's JSON documents.
//! - Best-effort by contract: every call returns a typed error that the caller
//!   counts and then ignores. Nothing here retries. [`QueryCache::new`]'s
//!   `timeout` bounds each call, connecting included (on a cluster too,
//!   where redis-rs retries inside a call), so a sick Redis can delay a
//!   query by at most that, and after a failure Redis is skipped for
//!   [`RECONNECT_AFTER`] so a dead server costs one timeout, not one per query.
//! - Writes take a [`WritableKey`] from `keys`, so they cannot leave our prefix.

use std::time::Duration;

use thiserror::Error;
use tokio::{sync::Mutex, time::Instant};
use tracing::Instrument;

use super::{
    keys::{QueryCacheKeys, QueryDigest, WritableKey},
    link::{RedisClient, RedisConn},
    memory::MemoryBudget,
};

/// How long Redis is skipped after a failed command or connect.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Why one cache lookup or write did not happen. Never fatal to a query.
#[derive(Debug, Error)]
pub enum QueryCacheError {
    #[error("redis failed on the query-embedding cache")]
    Redis(#[from] redis::RedisError),
    /// A recent failure: Redis is not tried again before `RECONNECT_AFTER`.
    #[error("redis is skipped after a recent failure")]
    CoolingDown,
    /// The value is not a whole number of finite `f32`s (written by someone else?).
    #[error("cached value under {key} is not a vector of finite f32 ({len} bytes)")]
    Corrupt { key: String, len: usize },
}

/// The connection and, after a failure, when to try again.
#[derive(Default)]
struct Link {
    conn: Option<RedisConn>,
    retry_at: Option<Instant>,
}

/// Query embeddings in Redis.
pub struct QueryCache {
    client: RedisClient,
    keys: QueryCacheKeys,
    ttl_secs: u64,
    timeout: Duration,
    link: Mutex<Link>,
    /// Asked before every write: Redis's room under an evicting policy.
    memory: std::sync::Arc<MemoryBudget>,
}

impl std::fmt::Debug for QueryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache").field("prefix", &self.keys.prefix()).field("ttl_secs", &self.ttl_secs).finish()
    }
}

/// The trace span of one query-cache command (DEBUG: see `telemetry`): the
/// command, never the key (a digest of the question, still the user's).
fn redis_span(operation: &'static str) -> tracing::Span {
    tracing::debug_span!(
        "redis.query_cache",
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = operation,
        db.response.found = tracing::field::Empty,
    )
}

impl QueryCache {
    /// Connects to nothing yet; the first lookup opens the connection.
    /// `ttl_secs` must be at least 1 (`SET … EX 0` is an error in Redis).
    pub fn new(
        client: RedisClient,
        keys: QueryCacheKeys,
        ttl_secs: u64,
        timeout: Duration,
        memory: std::sync::Arc<MemoryBudget>,
    ) -> Self {
        Self { client, keys, ttl_secs: ttl_secs.max(1), timeout, link: Mutex::new(Link::default()), memory }
    }

    /// The cached vector of `digest`, if any.
    ///
    /// # Errors
    /// [`QueryCacheError`] when Redis fails, is cooling down, or holds a corrupt value.
    pub async fn get(&self, digest: &QueryDigest) -> Result<Option<Vec<f32>>, QueryCacheError> {
        let span = redis_span("GET");
        let found = self.get_untraced(digest).instrument(span.clone()).await;
        span.record("db.response.found", matches!(found, Ok(Some(_))));
        found
    }

    async fn get_untraced(&self, digest: &QueryDigest) -> Result<Option<Vec<f32>>, QueryCacheError> {
        let key = self.keys.key(digest);
        let mut conn = self.connection().await?;
        let reply = self.bounded(redis::cmd("GET").arg(key.as_str()).query_async(&mut conn)).await;
        let value: Option<Vec<u8>> = self.observe(reply).await?;
        value.map(|bytes| decode(&key, &bytes)).transpose()
    }

    /// Stores `vector` under `digest` with the configured TTL, unless Redis
    /// has no room for it under an evicting policy (`store::memory`: then
    /// nothing is written, and the budget counts the skip).
    ///
    /// # Errors
    /// [`QueryCacheError`] when Redis fails or is cooling down.
    pub async fn put(&self, digest: &QueryDigest, vector: &[f32]) -> Result<(), QueryCacheError> {
        self.put_untraced(digest, vector).instrument(redis_span("SET")).await
    }

    async fn put_untraced(&self, digest: &QueryDigest, vector: &[f32]) -> Result<(), QueryCacheError> {
        let key: WritableKey = self.keys.key(digest);
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        if !self.memory.try_spend("query_cache", key.as_str().len(), bytes.len()) {
            return Ok(());
        }
        let mut conn = self.connection().await?;
        let reply: Result<(), _> = self
            .bounded(redis::cmd("SET").arg(key.as_str()).arg(bytes).arg("EX").arg(self.ttl_secs).query_async(&mut conn))
            .await;
        self.observe(reply).await
    }

    /// The open connection, or a new one unless a recent failure says wait.
    async fn connection(&self) -> Result<RedisConn, QueryCacheError> {
        let mut link = self.link.lock().await;
        if let Some(conn) = &link.conn {
            return Ok(conn.clone());
        }
        if link.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(QueryCacheError::CoolingDown);
        }
        match self.bounded(self.client.connect(self.timeout, self.timeout)).await {
            Ok(conn) => {
                *link = Link { conn: Some(conn.clone()), retry_at: None };
                Ok(conn)
            }
            Err(e) => {
                *link = Link { conn: None, retry_at: Some(Instant::now() + RECONNECT_AFTER) };
                Err(e.into())
            }
        }
    }

    /// `call`, failed as a timeout once `timeout` has passed. On a cluster,
    /// redis-rs retries a command against a dead primary with backoff
    /// (up to 16 times) inside one call, so the per-attempt response
    /// timeout alone would not bound how long a query waits here.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> redis::RedisResult<T> {
        tokio::time::timeout(self.timeout, call).await.unwrap_or_else(|_| {
            Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "query-embedding cache call timed out",
            )))
        })
    }

    /// Drops the connection after a Redis error so the next call reconnects.
    async fn observe<T>(&self, reply: redis::RedisResult<T>) -> Result<T, QueryCacheError> {
        match reply {
            Ok(v) => Ok(v),
            Err(e) => {
                *self.link.lock().await = Link { conn: None, retry_at: Some(Instant::now() + RECONNECT_AFTER) };
                Err(e.into())
            }
        }
    }
}

/// Little-endian `f32` bytes back to a vector; refuses partial or non-finite values.
fn decode(key: &WritableKey, bytes: &[u8]) -> Result<Vec<f32>, QueryCacheError> {
    let corrupt = || QueryCacheError::Corrupt { key: key.as_str().to_owned(), len: bytes.len() };
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return Err(corrupt());
    }
    let vector: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().expect("chunks_exact(4) yields 4-byte slices")))
        .collect();
    if vector.iter().all(|x| x.is_finite()) {
        Ok(vector)
    } else {
        Err(corrupt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keys::{KeySpace, DEFAULT_QUERY_CACHE_PREFIX};

    fn key() -> WritableKey {
        let keys = KeySpace::new("cache:embedding:*", "q", "cache:context:")
            .and_then(|k| k.query_cache(DEFAULT_QUERY_CACHE_PREFIX))
            .expect("defaults are valid");
        keys.key(&QueryDigest::new("m", "t"))
    }

    #[test]
    fn values_round_trip_exactly() {
        let v = [0.1_f32, -3.5e-8, 1.0, f32::MIN_POSITIVE];
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(decode(&key(), &bytes).ok(), Some(v.to_vec()));
    }

    #[test]
    fn partial_empty_or_non_finite_values_are_corrupt() {
        assert!(matches!(decode(&key(), &[]), Err(QueryCacheError::Corrupt { len: 0, .. })));
        assert!(matches!(decode(&key(), &[0, 0, 128]), Err(QueryCacheError::Corrupt { len: 3, .. })));
        let nan: Vec<u8> = f32::NAN.to_le_bytes().to_vec();
        assert!(matches!(decode(&key(), &nan), Err(QueryCacheError::Corrupt { len: 4, .. })));
        assert!(decode(&key(), br#"{"url":"x"}"#).is_err(), "a JSON document is never read as a vector");
    }
}
