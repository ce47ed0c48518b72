//! [`EmbedderSettings`]: how text queries are embedded and cached, as the
//! configuration layer builds it. Owned here so `embed` reads no flags.

use std::{fmt, path::PathBuf, time::Duration};

use semsearch_minilm::{EmbedderOptions, PoolSettings};

use super::{providers::RetryPolicy, Normalization, ProviderKind};
use crate::{secret::Secret, store::keys::QueryCacheKeys};

/// How to embed question text and cache the result. `Debug` shows the URL's
/// host only: a URL may carry credentials.
#[derive(Clone)]
pub struct EmbedderSettings {
    pub provider: ProviderKind,
    /// The service's base URL; `None` for the local model.
    pub url: Option<reqwest::Url>,
    /// The local model; `Some` exactly when `provider` is `local`.
    pub local: Option<LocalSettings>,
    pub model: String,
    pub api_key: Option<Secret>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    pub normalization: Normalization,
    pub cache_keys: QueryCacheKeys,
    /// 0: no Redis tier.
    pub cache_ttl_secs: u64,
    /// 0: no in-process tier.
    pub cache_capacity: usize,
    pub cache_timeout: Duration,
}

impl fmt::Debug for EmbedderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbedderSettings")
            .field("provider", &self.provider)
            .field("host", &self.url.as_ref().and_then(|u| u.host_str()))
            .field("local", &self.local)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("normalization", &self.normalization)
            .field("cache_keys", &self.cache_keys)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
    }
}

/// The in-process model: where its files are and how it runs.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Holds config.json, tokenizer.json and model.safetensors (sha256-checked at load).
    pub model_dir: PathBuf,
    pub options: EmbedderOptions,
    /// Bounds of the inference pool's queue and batches.
    pub pool: PoolSettings,
    /// Chosen by default (the model was found), not asked for: a model that
    /// fails to load then turns text search off with a warning instead of
    /// stopping start-up.
    pub implicit: bool,
}
