//! [`QueryEmbedder`]: normalise, then look in the in-process LRU, then in
//! Redis, and only then pay for a provider call.
//!
//! Owns the lookup order and the counters. The Redis wire format and
//! connection are `store::query_cache`'s; the HTTP protocols are `providers`'.
//!
//! Invariants:
//! - Both tiers are keyed by [`QueryDigest`] (model + normalised text), so a
//!   repeated question costs no provider call, in this process (LRU) or in
//!   the next one (Redis).
//! - Redis is best-effort: a failing lookup is a miss and a failing write is
//!   skipped. Each is counted in [`CacheCounts::redis_errors`] and logged at
//!   most at powers of two, so a dead Redis neither fails a text query whose
//!   provider works nor floods the log.
//! - Only successful, validated provider answers are cached; errors never are.

use std::{
    num::NonZeroUsize,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
};

use lru::LruCache;
use serde::Serialize;
use tracing::{warn, Instrument};

use super::{EmbedError, EmbedderSettings, Normalization, Provider};
use crate::store::{keys::QueryDigest, query_cache::QueryCache};

/// Where an embedding came from; tests and logs use it to prove cache hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Lru,
    Redis,
    Provider,
}

impl Source {
    /// As serialised: the `embed.source` of the `embed` trace span.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lru => "lru",
            Self::Redis => "redis",
            Self::Provider => "provider",
        }
    }
}

/// Running totals since start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounts {
    pub lru_hits: u64,
    pub redis_hits: u64,
    pub provider_calls: u64,
    pub redis_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    lru_hits: AtomicU64,
    redis_hits: AtomicU64,
    provider_calls: AtomicU64,
    redis_errors: AtomicU64,
}

/// Text → vector with two cache tiers in front of the provider.
pub struct QueryEmbedder {
    provider: Provider,
    normalization: Normalization,
    /// `None` when `SEMSEARCH_QUERY_CACHE_CAPACITY` is 0. A `Mutex` is enough:
    /// it is held for one hash-map operation, never across an `.await`.
    lru: Option<Mutex<LruCache<QueryDigest, Arc<[f32]>>>>,
    /// `None` when `SEMSEARCH_QUERY_CACHE_TTL_SECS` is 0.
    redis: Option<QueryCache>,
    counters: Counters,
}

impl std::fmt::Debug for QueryEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryEmbedder")
            .field("provider", &self.provider)
            .field("normalization", &self.normalization)
            .field("lru", &self.lru.is_some())
            .field("redis", &self.redis)
            .finish()
    }
}

impl QueryEmbedder {
    /// Builds the provider client and an empty LRU; `redis` is the second tier, if any.
    ///
    /// # Errors
    /// As [`Provider::new`].
    pub fn new(settings: &EmbedderSettings, redis: Option<QueryCache>) -> Result<Self, EmbedError> {
        Ok(Self {
            provider: Provider::new(settings)?,
            normalization: settings.normalization,
            lru: NonZeroUsize::new(settings.cache_capacity).map(|n| Mutex::new(LruCache::new(n))),
            redis,
            counters: Counters::default(),
        })
    }

    pub fn provider(&self) -> &Provider {
        &self.provider
    }

    pub fn counts(&self) -> CacheCounts {
        let c = &self.counters;
        CacheCounts {
            lru_hits: c.lru_hits.load(Ordering::Relaxed),
            redis_hits: c.redis_hits.load(Ordering::Relaxed),
            provider_calls: c.provider_calls.load(Ordering::Relaxed),
            redis_errors: c.redis_errors.load(Ordering::Relaxed),
        }
    }

    /// The provider's embedding of `text` after normalisation, from the
    /// cheapest tier that has it. The vector is as the provider sent it (not
    /// unit length); its length is not checked here.
    ///
    /// # Errors
    /// [`EmbedError::EmptyText`], or the provider's error on a miss.
    pub async fn embed(&self, text: &str) -> Result<(Arc<[f32]>, Source), EmbedError> {
        // A trace span (DEBUG: off, and free, unless traces are exported).
        // Sizes and where the vector came from; never the question's words.
        let span = tracing::debug_span!(
            "embed",
            embed.model = self.provider.model(),
            embed.text_chars = text.chars().count(),
            embed.source = tracing::field::Empty,
        );
        let answer = self.embed_from_tiers(text).instrument(span.clone()).await;
        if let Ok((_, source)) = &answer {
            span.record("embed.source", source.as_str());
        }
        answer
    }

    /// [`Self::embed`]'s work, inside its span.
    async fn embed_from_tiers(&self, text: &str) -> Result<(Arc<[f32]>, Source), EmbedError> {
        let normalized = self.normalization.apply(text);
        if super::nothing_to_embed(&normalized) {
            return Err(EmbedError::EmptyText);
        }
        let digest = QueryDigest::new(self.provider.model(), &normalized);

        if let Some(hit) = self.lru_get(&digest) {
            self.counters.lru_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((hit, Source::Lru));
        }
        if let Some(redis) = &self.redis {
            match redis.get(&digest).await {
                Ok(Some(vector)) => {
                    self.counters.redis_hits.fetch_add(1, Ordering::Relaxed);
                    let vector: Arc<[f32]> = vector.into();
                    self.lru_put(digest, Arc::clone(&vector));
                    return Ok((vector, Source::Redis));
                }
                Ok(None) => {}
                Err(e) => self.redis_failed("lookup", &e),
            }
        }

        self.counters.provider_calls.fetch_add(1, Ordering::Relaxed);
        let call = tracing::debug_span!("embed.provider", embed.provider = self.provider.kind().as_str());
        let vector: Arc<[f32]> = self.provider.embed(&normalized).instrument(call).await?.into();
        self.lru_put(digest.clone(), Arc::clone(&vector));
        if let Some(redis) = &self.redis {
            if let Err(e) = redis.put(&digest, &vector).await {
                self.redis_failed("write", &e);
            }
        }
        Ok((vector, Source::Provider))
    }

    fn lru_get(&self, digest: &QueryDigest) -> Option<Arc<[f32]>> {
        let lru = self.lru.as_ref()?;
        // A panic elsewhere cannot leave a cache entry half-written, so a poisoned lock is still usable.
        lru.lock().unwrap_or_else(PoisonError::into_inner).get(digest).cloned()
    }

    fn lru_put(&self, digest: QueryDigest, vector: Arc<[f32]>) {
        if let Some(lru) = &self.lru {
            lru.lock().unwrap_or_else(PoisonError::into_inner).put(digest, vector);
        }
    }

    fn redis_failed(&self, op: &'static str, e: &crate::store::query_cache::QueryCacheError) {
        let n = self.counters.redis_errors.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            warn!(op, redis_errors = n, error.message = %e, error.cause_chain = ?e, "query-embedding cache unavailable; answering without it");
        }
    }
}
