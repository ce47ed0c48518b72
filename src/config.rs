//! Flags and environment of `semsearch serve`: the only module that reads
//! env vars, and the one that turns them into each component's own settings
//! type ([`RedisTarget`], [`KeySpace`], [`LoadSettings`], [`RefreshSettings`],
//! [`EmbedderSettings`], [`AccessSettings`], [`LogFormat`], [`TraceSettings`]).
//!
//! Components never name this module: they own their settings types and are
//! built from them, so a test or a tool can build one without a parse.
//!
//! Every flag has an env fallback (clap `env`) and shows in `--help`. Secrets
//! (the Redis password, API keys, embedding-service tokens) are [`Secret`]s
//! marked `hide_env_values`, so they appear in neither `--help`, `Debug`
//! output nor logs; the address we log comes from [`RedisTarget::display`],
//! which never carries credentials.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use clap::{Args, Parser};
use semsearch_lexical::Language;
use thiserror::Error;

use crate::{
    api::{
        auth::AccessSettings,
        cors::{self, CorsError},
        server::ServerSettings,
    },
    embed::{
        providers::RetryPolicy, EmbedderSettings, HttpProtocol, HttpSettings, LocalSettings, Normalization,
        ProviderKind, ProviderSettings,
    },
    index::{lexical::LexicalSettings, spare::ReloadBuffers},
    query::answer::Budget,
    refresh::RefreshSettings,
    router::{parse_shard_list, RouterSettings, ShardListError},
    secret::Secret,
    shard::Shard,
    store::{
        connect::{ClusterTarget, RedisParts, RedisTarget, TargetError},
        keys::{
            KeyError, KeySpace, DEFAULT_CONTEXT_PREFIX, DEFAULT_EMBEDDING_PATTERN, DEFAULT_QUERY_CACHE_PREFIX,
            DEFAULT_QUICK_KEY,
        },
        loader::LoadSettings,
    },
    telemetry::{LogFormat, TraceSettings},
};
use semsearch_minilm::{default_model_dir, EmbedderOptions, PoolSettings, MODEL_NAME};
use semsearch_scan::{kernel::KernelChoice, ScanMode};

/// How to reach Redis: a URL, or the chatbot deployment's separate variables.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Redis")]
pub struct RedisArgs {
    /// Redis URL: `redis://[user[:password]@]host[:port][/db]`, `rediss://` for TLS,
    /// or unix:///path/to/redis.sock. Takes precedence over REDIS_HOST and friends.
    #[arg(long = "redis-url", env = "REDIS_URL", hide_env_values = true)]
    pub url: Option<Secret>,
    /// Redis host, when REDIS_URL is not set.
    #[arg(long = "redis-host", env = "REDIS_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Redis port, when REDIS_URL is not set.
    #[arg(long = "redis-port", env = "REDIS_PORT", default_value_t = 6379)]
    pub port: u16,
    /// Redis password (requirepass or ACL user password). Never logged.
    #[arg(long = "redis-password", env = "REDIS_PASSWORD", hide_env_values = true)]
    pub password: Option<Secret>,
    /// Redis ACL username.
    #[arg(long = "redis-username", env = "REDIS_USERNAME")]
    pub username: Option<String>,
    /// Redis logical database number.
    #[arg(long = "redis-db", env = "REDIS_DB", default_value_t = 0)]
    pub db: i64,
    /// Use TLS with REDIS_HOST/REDIS_PORT (with REDIS_URL, write rediss:// instead).
    #[arg(long = "redis-tls", env = "REDIS_TLS")]
    pub tls: bool,
    /// PEM file of the CA that signed the Redis server's certificate, for a
    /// private CA. Unset: the Mozilla roots compiled in (webpki-roots).
    #[arg(long = "redis-tls-ca-file", env = "REDIS_TLS_CA_FILE")]
    pub tls_ca_file: Option<PathBuf>,
    /// Redis Cluster seed nodes, `host:port,host:port,…`. Set: read the
    /// cluster (SCAN and change feed on every primary), with the username,
    /// password and TLS settings above (or those of REDIS_URL); its host is unused.
    #[arg(long = "redis-cluster-nodes", env = "REDIS_CLUSTER_NODES", value_delimiter = ',')]
    pub cluster_nodes: Vec<String>,
}

impl RedisArgs {
    /// The Redis these flags name.
    ///
    /// # Errors
    /// [`ConfigError::Redis`] for an unusable URL or CA file.
    pub fn target(&self) -> Result<RedisTarget, ConfigError> {
        let target = match &self.url {
            Some(url) => RedisTarget::from_url(url)?,
            None => RedisTarget::from_parts(&RedisParts {
                host: self.host.clone(),
                port: self.port,
                username: self.username.clone(),
                password: self.password.clone(),
                db: self.db,
                tls: self.tls,
            })?,
        };
        Ok(match &self.tls_ca_file {
            Some(path) => target.with_ca_file(path)?,
            None => target,
        })
    }

    /// The cluster REDIS_CLUSTER_NODES names, if set.
    ///
    /// # Errors
    /// [`ConfigError::Redis`] for an unusable node, URL or CA file.
    pub fn cluster(&self) -> Result<Option<ClusterTarget>, ConfigError> {
        if self.cluster_nodes.iter().all(|n| n.trim().is_empty()) {
            return Ok(None);
        }
        Ok(Some(ClusterTarget::new(&self.cluster_nodes, self.target()?)?))
    }
}

/// The key names the service reads and writes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Keys")]
pub struct KeyArgs {
    /// SCAN pattern of the embedding keys: a literal prefix and one trailing '*'.
    #[arg(long, env = "SEMSEARCH_EMBEDDING_PATTERN", default_value = DEFAULT_EMBEDDING_PATTERN)]
    pub embedding_pattern: String,
    /// Key whose deletion or expiry means "articles changed, reload".
    #[arg(long, env = "SEMSEARCH_QUICK_KEY", default_value = DEFAULT_QUICK_KEY)]
    pub quick_key: String,
    /// Prefix under which search results are cached for the chatbot.
    #[arg(long, env = "SEMSEARCH_CONTEXT_PREFIX", default_value = DEFAULT_CONTEXT_PREFIX)]
    pub context_prefix: String,
}

impl KeyArgs {
    /// # Errors
    /// [`ConfigError::Keys`] for a bad pattern or overlapping prefixes.
    pub fn key_space(&self) -> Result<KeySpace, ConfigError> {
        Ok(KeySpace::new(&self.embedding_pattern, &self.quick_key, &self.context_prefix)?)
    }
}

/// Flags of `semsearch serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Address the HTTP server listens on.
    #[arg(long, env = "SEMSEARCH_BIND", default_value = "0.0.0.0:8080", help_heading = "HTTP and limits")]
    pub bind: SocketAddr,
    /// Largest k a search may ask for.
    #[arg(long, env = "SEMSEARCH_MAX_K", default_value_t = 1000, help_heading = "HTTP and limits")]
    pub max_k: usize,
    /// Most queries one `POST /v1/search/batch` may carry, and most concurrent
    /// `/v1/search` queries scanned together in one pass.
    #[arg(long, env = "SEMSEARCH_MAX_BATCH", default_value_t = 256, help_heading = "HTTP and limits")]
    pub max_batch: usize,
    /// Largest request body accepted, in bytes. Unset: large enough for a
    /// full batch of vectors (SEMSEARCH_MAX_BATCH × 24 bytes per float ×
    /// SEMSEARCH_DIM, 384 if unset, plus 64 KiB), and at least 1 MiB.
    #[arg(long, env = "SEMSEARCH_MAX_BODY_BYTES", help_heading = "HTTP and limits")]
    pub max_body_bytes: Option<usize>,
    /// Time a request may take before it is answered 503, in seconds.
    #[arg(long, env = "SEMSEARCH_REQUEST_TIMEOUT_SECS", default_value_t = 30, help_heading = "HTTP and limits")]
    pub request_timeout_secs: u64,
    /// The k of all queries of one request, added up, at most (a batch of
    /// 256 × k = 1000 would otherwise build a 129 MB answer).
    #[arg(long, env = "SEMSEARCH_MAX_RESULTS_PER_REQUEST", default_value_t = 10_000, help_heading = "HTTP and limits")]
    pub max_results_per_request: usize,
    /// Bytes of result titles and texts in one response, at most.
    #[arg(long, env = "SEMSEARCH_MAX_RESPONSE_TEXT_BYTES", default_value_t = 32 << 20, help_heading = "HTTP and limits")]
    pub max_response_text_bytes: usize,
    /// Seconds a connection may take to send a complete request head; also
    /// how long an idle keep-alive connection stays open.
    #[arg(long, env = "SEMSEARCH_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, help_heading = "HTTP and limits")]
    pub header_read_timeout_secs: u64,
    /// Connections open at once; beyond it new ones wait in the listen backlog.
    #[arg(long, env = "SEMSEARCH_MAX_CONNECTIONS", default_value_t = 1024, help_heading = "HTTP and limits")]
    pub max_connections: usize,
    /// On shutdown, seconds open connections may take to finish before they are dropped.
    #[arg(long, env = "SEMSEARCH_SHUTDOWN_GRACE_SECS", default_value_t = 10, help_heading = "HTTP and limits")]
    pub shutdown_grace_secs: u64,
    /// Searches running at once; one more is answered 503 `overloaded` with
    /// Retry-After instead of queueing behind the CPU-bound scans.
    #[arg(long, env = "SEMSEARCH_MAX_CONCURRENT_SEARCHES", default_value_t = 64, help_heading = "HTTP and limits")]
    pub max_concurrent_searches: usize,
    /// Origins allowed by CORS, comma-separated (e.g. https://app.example),
    /// or `*`. Unset: no CORS headers, so browsers on other origins are refused.
    #[arg(long, env = "SEMSEARCH_CORS_ORIGINS", value_delimiter = ',', help_heading = "HTTP and limits")]
    pub cors_origins: Vec<String>,
    /// Bearer keys accepted on the search routes (search, batch, documents,
    /// stats), comma-separated. Unset or empty: those routes are open. Never logged.
    #[arg(long, env = "SEMSEARCH_API_KEYS", value_delimiter = ',', hide_env_values = true, help_heading = "Auth")]
    pub api_keys: Vec<Secret>,
    /// Bearer keys accepted on /v1/admin/* (and on the search routes),
    /// comma-separated. Unset: admin routes answer only on a loopback bind. Never logged.
    #[arg(long, env = "SEMSEARCH_ADMIN_KEYS", value_delimiter = ',', hide_env_values = true, help_heading = "Auth")]
    pub admin_keys: Vec<Secret>,
    /// Dot-product kernel: auto, scalar, avx2, avx512 or neon. Forcing one the
    /// CPU lacks stops start-up with an error.
    #[arg(long, env = "SEMSEARCH_KERNEL", default_value_t = KernelChoice::Auto, help_heading = "Index and loading")]
    pub kernel: KernelChoice,
    /// How titles and texts are analysed for lexical and hybrid search:
    /// portuguese (the chatbot's users), english, or none (accent folding
    /// and words only: no stop words, no stemming). Router and shards must
    /// use the same.
    #[arg(long, env = "SEMSEARCH_LEXICAL_LANGUAGE", default_value_t = Language::Portuguese, help_heading = "Index and loading")]
    pub lexical_language: Language,
    /// Which copy of the rows a search scans: auto, f32 or int8. int8 keeps
    /// an int8 copy beside the f32 rows (+26% at D = 384) and rescores in
    /// f32, so answers are identical; auto uses it from 2,000 documents on
    /// CPUs with an AVX2 or AVX-512 VNNI int8 kernel.
    #[arg(long, env = "SEMSEARCH_SCAN", default_value_t = ScanMode::Auto, help_heading = "Index and loading")]
    pub scan: ScanMode,
    /// The retired snapshot's vector buffers between reloads: keep (the
    /// next reload writes into them; the first reload's are prepared at
    /// start, so about 2 × the vectors stay resident) or free (about 1 ×
    /// between reloads; each reload faults its vectors in anew).
    #[arg(long, env = "SEMSEARCH_RELOAD_BUFFERS", value_enum, default_value_t = ReloadBuffers::Keep, help_heading = "Index and loading")]
    pub reload_buffers: ReloadBuffers,
    /// Keep only shard i of n: documents whose key's Redis hash slot mod n
    /// is i (for `semsearch router`). Unset: every document.
    #[arg(long, env = "SEMSEARCH_SHARD", value_name = "I/N", help_heading = "Index and loading")]
    pub shard: Option<Shard>,
    /// Index dimension. Unset: the most common dimension among valid values.
    #[arg(long, env = "SEMSEARCH_DIM", help_heading = "Index and loading")]
    pub dim: Option<usize>,
    /// Keys asked for per SCAN call (the COUNT hint).
    #[arg(long, env = "SEMSEARCH_SCAN_COUNT", default_value_t = 1000, help_heading = "Index and loading")]
    pub scan_count: usize,
    /// Keys fetched per MGET while loading.
    #[arg(long, env = "SEMSEARCH_LOAD_CHUNK", default_value_t = 500, help_heading = "Index and loading")]
    pub load_chunk: usize,
    /// Redis response timeout while loading, in seconds. redis-rs's 500 ms
    /// default is too short for multi-megabyte MGET replies on a busy server.
    #[arg(long, env = "SEMSEARCH_REDIS_LOAD_TIMEOUT_SECS", default_value_t = 30, help_heading = "Index and loading")]
    pub redis_load_timeout_secs: u64,
    /// Longest wait between attempts to reach Redis, in milliseconds.
    #[arg(long, env = "SEMSEARCH_RETRY_MAX_MS", default_value_t = 5000, help_heading = "Refresh")]
    pub retry_max_ms: u64,
    /// TTL of the `cache:context:*` entries written after each search, in
    /// seconds; 0 turns context writes off.
    #[arg(long, env = "SEMSEARCH_CONTEXT_TTL_SECS", default_value_t = 3600, help_heading = "Refresh")]
    pub context_ttl_secs: u64,
    /// Under an evicting maxmemory-policy (allkeys-*, volatile-*), the share
    /// of maxmemory, in percent, our own writes (contexts, cached question
    /// embeddings) never eat into: they are skipped once Redis is above
    /// maxmemory × (100 − this) / 100, so they cannot make Redis evict the
    /// chatbot's keys (docs/deploy.md). No effect under noeviction.
    #[arg(long, env = "SEMSEARCH_REDIS_MEMORY_RESERVE_PERCENT", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=100), help_heading = "Refresh")]
    pub redis_memory_reserve_percent: u8,
    /// Seconds between readings of Redis's INFO memory (maxmemory, policy,
    /// used_memory, evicted_keys); writes in between are charged at an estimate.
    #[arg(long, env = "SEMSEARCH_REDIS_MEMORY_CHECK_SECS", default_value_t = 5, help_heading = "Refresh")]
    pub redis_memory_check_secs: u64,
    /// Seconds between full reconciles of the key set with Redis (catches
    /// changes the change feed missed).
    #[arg(long, env = "SEMSEARCH_RECONCILE_SECS", default_value_t = 30, help_heading = "Refresh")]
    pub reconcile_secs: u64,
    /// A burst of invalidations within this window gives one reload, in ms.
    #[arg(long, env = "SEMSEARCH_RELOAD_DEBOUNCE_MS", default_value_t = 250, help_heading = "Refresh")]
    pub reload_debounce_ms: u64,
    /// Changed embedding keys are collected this long, then applied together, in ms.
    #[arg(long, env = "SEMSEARCH_KEY_BATCH_MS", default_value_t = 100, help_heading = "Refresh")]
    pub key_batch_ms: u64,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// Where logs go and how much of them.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long = "log", env = "RUST_LOG", default_value = "info")]
    pub filter: String,
    /// Log format.
    #[arg(long, env = "SEMSEARCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    /// OTLP/HTTP collector to send traces to (e.g. http://otel-collector:4318;
    /// spans go to <url>/v1/traces). Unset: no traces leave the process and
    /// no traceparent is read or sent. OTEL_BSP_* and OTEL_TRACES_SAMPLER(_ARG)
    /// are read by the OpenTelemetry SDK itself.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans (default: semsearch, or
    /// semsearch-router for `semsearch router`).
    #[arg(long = "otel-service-name", env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
}

/// Text queries: which embedding service to call, and the query-embedding
/// cache. Field names carry the `embedder_` prefix so clap's ids, flags and
/// env names follow from them without clashing with the Redis flags.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Text search")]
pub struct EmbedderArgs {
    /// Embedder for `"text"` queries: local (all-MiniLM-L6-v2 in process),
    /// tei, hf or openai. Unset: local when the model files are in
    /// SEMSEARCH_MODEL_DIR, else text search is off.
    #[arg(long, env = "SEMSEARCH_EMBEDDER", value_enum)]
    pub embedder: Option<ProviderKind>,
    /// Directory of the local model (config.json, tokenizer.json,
    /// model.safetensors; `semsearch model fetch` fills it). Unset:
    /// $XDG_CACHE_HOME (or ~/.cache)/semsearch/models/all-MiniLM-L6-v2.
    #[arg(long, env = "SEMSEARCH_MODEL_DIR")]
    pub model_dir: Option<PathBuf>,
    /// Base URL of the embedding service. Required for tei; defaults to
    /// `https://router.huggingface.co/hf-inference` for hf and `https://api.openai.com` for openai.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_URL")]
    pub embedder_url: Option<String>,
    /// Model name sent to the service (hf: part of the path; openai: the `model` field).
    #[arg(long, env = "SEMSEARCH_EMBEDDER_MODEL", default_value = "sentence-transformers/all-MiniLM-L6-v2")]
    pub embedder_model: String,
    /// Bearer token for the embedding service. Never logged.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_API_KEY", hide_env_values = true)]
    pub embedder_api_key: Option<Secret>,
    /// Bearer token for hf when SEMSEARCH_EMBEDDER_API_KEY is unset. Never logged.
    #[arg(long, env = "HUGGINGFACE_API_KEY", hide_env_values = true)]
    pub huggingface_api_key: Option<Secret>,
    /// Bearer token for openai when SEMSEARCH_EMBEDDER_API_KEY is unset. Never logged.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Secret>,
    /// Time to open a connection to the embedding service, in milliseconds.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_CONNECT_TIMEOUT_MS", default_value_t = 2000)]
    pub embedder_connect_timeout_ms: u64,
    /// Time one embedding request may take, in milliseconds (504 after that).
    #[arg(long, env = "SEMSEARCH_EMBEDDER_TIMEOUT_MS", default_value_t = 10_000)]
    pub embedder_timeout_ms: u64,
    /// Retries after a 429 or 5xx answer.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_MAX_RETRIES", default_value_t = 2)]
    pub embedder_max_retries: u32,
    /// First backoff when the service sends no Retry-After, in milliseconds; doubles per retry.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_RETRY_BASE_MS", default_value_t = 200)]
    pub embedder_retry_base_ms: u64,
    /// Longest wait before a retry, in milliseconds. A longer Retry-After ends the attempts.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_RETRY_MAX_MS", default_value_t = 5000)]
    pub embedder_retry_max_ms: u64,
    /// Local model: longest wait, in milliseconds, for a question's forward
    /// pass to start; then 503 `overloaded` with Retry-After. Questions go
    /// before bulk /v1/embed work, so they wait for one pass at most.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_QUESTION_WAIT_MS", default_value_t = 2000)]
    pub embedder_question_wait_ms: u64,
    /// Local model: word pieces one /v1/embed request may hold (a text
    /// counts at most 256); larger requests get 422 `too_many_tokens`.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_MAX_REQUEST_TOKENS", default_value_t = 16_384)]
    pub embedder_max_request_tokens: usize,
    /// Local model: forward passes that run at once, each on its own thread
    /// with its own scratch (31.5 MB). Default: one per core, at most 4.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_WORKERS")]
    pub embedder_workers: Option<usize>,
    /// Requests in flight to the embedding service at once; more wait their turn.
    #[arg(long, env = "SEMSEARCH_EMBEDDER_CONCURRENCY", default_value_t = 16)]
    pub embedder_concurrency: usize,
    /// Text preparation before embedding: none (trim only) or chatbot (the
    /// chatbot's prepareTextForSearch; see docs/text-search.md).
    #[arg(long, env = "SEMSEARCH_TEXT_NORMALIZATION", value_enum, default_value_t = Normalization::None)]
    pub text_normalization: Normalization,
    /// Redis prefix of cached question embeddings; must not overlap the embedding or context prefix.
    #[arg(long, env = "SEMSEARCH_QUERY_CACHE_PREFIX", default_value = DEFAULT_QUERY_CACHE_PREFIX)]
    pub query_cache_prefix: String,
    /// Lifetime of a cached question embedding in Redis, in seconds. 0: no Redis tier.
    #[arg(long, env = "SEMSEARCH_QUERY_CACHE_TTL_SECS", default_value_t = 86_400)]
    pub query_cache_ttl_secs: u64,
    /// Question embeddings kept in process memory (LRU). 0: no in-process tier.
    #[arg(long, env = "SEMSEARCH_QUERY_CACHE_CAPACITY", default_value_t = 10_000)]
    pub query_cache_capacity: usize,
    /// Connect and response timeout of the Redis cache tier, in milliseconds.
    /// A timeout counts as a miss, and Redis is then skipped for a second.
    #[arg(long, env = "SEMSEARCH_QUERY_CACHE_TIMEOUT_MS", default_value_t = 250)]
    pub query_cache_timeout_ms: u64,
}

impl EmbedderArgs {
    /// The embedder these flags configure; `None` when no provider is named.
    ///
    /// # Errors
    /// [`ConfigError`] naming the flag that is wrong.
    pub fn settings(&self, keys: &KeySpace) -> Result<Option<EmbedderSettings>, ConfigError> {
        let configured_dir = self.model_dir.clone().filter(|d| !d.as_os_str().is_empty());
        let dir_configured = configured_dir.is_some();
        let model_dir = configured_dir.or_else(model_dir);
        let (provider, implicit) = match self.embedder {
            Some(provider) => (provider, false),
            // On by default once the model is here (the demo fetches it).
            None if model_dir.as_deref().is_some_and(model_files_present) => (ProviderKind::Local, true),
            // Asked for by naming the directory: try it, so a missing file
            // is a warning naming it rather than text search silently off.
            None if dir_configured => (ProviderKind::Local, true),
            None => return Ok(None),
        };
        if self.embedder_concurrency < 1 {
            return Err(ConfigError::TooSmall { name: "SEMSEARCH_EMBEDDER_CONCURRENCY", min: 1 });
        }
        let workers = self.embedder_workers.unwrap_or_else(semsearch_minilm::pool::default_workers);
        if workers < 1 {
            return Err(ConfigError::TooSmall { name: "SEMSEARCH_EMBEDDER_WORKERS", min: 1 });
        }
        if workers > semsearch_minilm::pool::MAX_WORKERS {
            return Err(ConfigError::TooLarge {
                name: "SEMSEARCH_EMBEDDER_WORKERS",
                max: semsearch_minilm::pool::MAX_WORKERS,
            });
        }
        let (provider, model) = match HttpProtocol::of(provider) {
            None => {
                let model_dir = model_dir.ok_or(ConfigError::NoModelDir)?;
                let local = LocalSettings {
                    model_dir,
                    options: EmbedderOptions::default(),
                    pool: PoolSettings {
                        max_request_tokens: self.embedder_max_request_tokens,
                        workers,
                        ..PoolSettings::default()
                    },
                    question_wait: Duration::from_millis(self.embedder_question_wait_ms.max(1)),
                    implicit,
                    dir_configured,
                };
                (ProviderSettings::Local(local), MODEL_NAME.to_owned())
            }
            Some(protocol) => (ProviderSettings::Http(self.http_settings(protocol)?), self.embedder_model.clone()),
        };
        Ok(Some(EmbedderSettings {
            provider,
            model,
            normalization: self.text_normalization,
            cache_keys: keys.query_cache(&self.query_cache_prefix)?,
            cache_ttl_secs: self.query_cache_ttl_secs,
            cache_capacity: self.query_cache_capacity,
            cache_timeout: Duration::from_millis(self.query_cache_timeout_ms.max(1)),
        }))
    }

    /// Where an HTTP embedding service is and how hard to lean on it.
    fn http_settings(&self, protocol: HttpProtocol) -> Result<HttpSettings, ConfigError> {
        let url = match (&self.embedder_url, protocol) {
            (Some(url), _) => url.clone(),
            (None, HttpProtocol::Hf) => "https://router.huggingface.co/hf-inference".to_owned(),
            (None, HttpProtocol::Openai) => "https://api.openai.com".to_owned(),
            (None, HttpProtocol::Tei) => return Err(ConfigError::MissingEmbedderUrl { provider: protocol.kind() }),
        };
        let url = reqwest::Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(ConfigError::BadEmbedderUrl)?;
        let provider_key = match protocol {
            HttpProtocol::Hf => &self.huggingface_api_key,
            HttpProtocol::Openai => &self.openai_api_key,
            HttpProtocol::Tei => &None,
        };
        Ok(HttpSettings {
            protocol,
            url,
            api_key: self.embedder_api_key.clone().or_else(|| provider_key.clone()).filter(|k| !k.expose().is_empty()),
            connect_timeout: Duration::from_millis(self.embedder_connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(self.embedder_timeout_ms.max(1)),
            retry: RetryPolicy {
                max_retries: self.embedder_max_retries,
                base: Duration::from_millis(self.embedder_retry_base_ms),
                max: Duration::from_millis(self.embedder_retry_max_ms),
            },
            concurrency: self.embedder_concurrency,
        })
    }
}

/// Why the configuration was refused at start-up.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Redis(#[from] TargetError),
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// No model directory given and no home or cache directory to default to.
    #[error("SEMSEARCH_EMBEDDER=local needs SEMSEARCH_MODEL_DIR (no $XDG_CACHE_HOME or $HOME to default to)")]
    NoModelDir,
    /// tei has no public endpoint to default to.
    #[error("SEMSEARCH_EMBEDDER={provider} needs SEMSEARCH_EMBEDDER_URL")]
    MissingEmbedderUrl { provider: ProviderKind },
    /// Not echoed: a URL may carry credentials.
    #[error(
        "SEMSEARCH_EMBEDDER_URL is not a valid http:// or https:// URL (value not shown: it may contain credentials)"
    )]
    BadEmbedderUrl,
    #[error("{name} must be at least {min}")]
    TooSmall { name: &'static str, min: usize },
    #[error("{name} must be at most {max}")]
    TooLarge { name: &'static str, max: usize },
    #[error(transparent)]
    Cors(#[from] CorsError),
    /// A tool's own flag is wrong; the message names it.
    #[error("{0}")]
    Tool(String),
    #[error(transparent)]
    RouterShards(#[from] ShardListError),
}

/// Validated settings the application is built from: each field is the
/// owning component's own settings type.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    /// The node, or with `redis_cluster` the credentials and TLS settings of every cluster node.
    pub redis: RedisTarget,
    /// Set by REDIS_CLUSTER_NODES: read this cluster instead of `redis`.
    pub redis_cluster: Option<ClusterTarget>,
    pub keys: KeySpace,
    pub max_k: usize,
    pub max_batch: usize,
    pub kernel: KernelChoice,
    pub scan: ScanMode,
    /// `SEMSEARCH_RELOAD_BUFFERS` (`index::spare`).
    pub reload_buffers: ReloadBuffers,
    /// The lexical side's analyzer and ranking constants (`SEMSEARCH_LEXICAL_LANGUAGE`).
    pub lexical: Arc<LexicalSettings>,
    pub dim: Option<usize>,
    pub max_body_bytes: usize,
    pub load: LoadSettings,
    pub retry_max: Duration,
    pub request_timeout: Duration,
    pub refresh: RefreshSettings,
    /// TTL of written contexts; `None`: no context writes.
    pub context_ttl_secs: Option<u64>,
    /// How our writes stay clear of Redis's evictions (`store::memory`).
    pub redis_memory: RedisMemorySettings,
    pub log: String,
    pub log_format: LogFormat,
    /// Where traces go, if anywhere (`telemetry::otel`).
    pub traces: TraceSettings,
    /// `None`: text search is off and `"text"` queries get 422.
    pub embedder: Option<EmbedderSettings>,
    /// Who may call which routes (see `api::auth`).
    pub access: AccessSettings,
    /// Searches running at once before new ones get 503 `overloaded`.
    pub max_concurrent_searches: usize,
    /// Empty: CORS is off. Checked by `api::cors::parse_origins`.
    pub cors_origins: Vec<String>,
    /// Connection bounds of the HTTP server.
    pub server: ServerSettings,
    /// What one request may cost.
    pub budget: Budget,
}

/// How our writes stay clear of Redis's evictions (see `store::memory`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisMemorySettings {
    /// Percent of maxmemory our writes leave free under an evicting policy.
    pub reserve_percent: u8,
    /// Time between two readings of INFO memory.
    pub check_every: Duration,
}

impl Settings {
    /// Validates serve flags.
    ///
    /// # Errors
    /// [`ConfigError`] naming the flag that is wrong.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let at_least =
            |name, value: usize, min| if value < min { Err(ConfigError::TooSmall { name, min }) } else { Ok(()) };
        at_least("SEMSEARCH_MAX_K", args.max_k, 1)?;
        at_least("SEMSEARCH_MAX_BATCH", args.max_batch, 1)?;
        at_least("SEMSEARCH_SCAN_COUNT", args.scan_count, 1)?;
        at_least("SEMSEARCH_LOAD_CHUNK", args.load_chunk, 1)?;
        let max_body_bytes = args.max_body_bytes.unwrap_or_else(|| default_body_limit(args.max_batch, args.dim));
        at_least("SEMSEARCH_MAX_BODY_BYTES", max_body_bytes, 64)?;
        if let Some(dim) = args.dim {
            at_least("SEMSEARCH_DIM", dim, 1)?;
        }
        let keys = args.keys.key_space()?.with_shard(args.shard);
        at_least("SEMSEARCH_MAX_CONCURRENT_SEARCHES", args.max_concurrent_searches, 1)?;
        at_least("SEMSEARCH_MAX_CONNECTIONS", args.max_connections, 1)?;
        at_least("SEMSEARCH_MAX_RESULTS_PER_REQUEST", args.max_results_per_request, args.max_k.max(1))?;
        let cors_origins = cors::parse_origins(&args.cors_origins)?;
        Ok(Self {
            access: AccessSettings::new(args.api_keys.clone(), args.admin_keys.clone()),
            max_concurrent_searches: args.max_concurrent_searches,
            cors_origins,
            bind: args.bind,
            redis: args.redis.target()?,
            redis_cluster: args.redis.cluster()?,
            embedder: args.embedder.settings(&keys)?,
            keys,
            max_k: args.max_k,
            max_batch: args.max_batch,
            kernel: args.kernel,
            scan: args.scan,
            reload_buffers: args.reload_buffers,
            lexical: Arc::new(LexicalSettings::new(args.lexical_language)),
            dim: args.dim,
            max_body_bytes,
            load: LoadSettings {
                scan_count: args.scan_count,
                chunk_keys: args.load_chunk,
                response_timeout: Duration::from_secs(args.redis_load_timeout_secs.max(1)),
                scan: args.scan,
            },
            retry_max: Duration::from_millis(args.retry_max_ms.max(10)),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            refresh: RefreshSettings {
                reconcile_every: Duration::from_secs(args.reconcile_secs.max(1)),
                reload_debounce: Duration::from_millis(args.reload_debounce_ms),
                key_batch: Duration::from_millis(args.key_batch_ms),
            },
            context_ttl_secs: (args.context_ttl_secs > 0).then_some(args.context_ttl_secs),
            redis_memory: RedisMemorySettings {
                reserve_percent: args.redis_memory_reserve_percent,
                check_every: Duration::from_secs(args.redis_memory_check_secs.max(1)),
            },
            budget: Budget { max_results: args.max_results_per_request, max_text_bytes: args.max_response_text_bytes },
            server: ServerSettings {
                header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
                max_connections: args.max_connections,
                shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
            },
            log: args.log.filter.clone(),
            log_format: args.log.log_format,
            traces: TraceSettings {
                otlp_endpoint: args.log.otlp_endpoint.clone().filter(|e| !e.trim().is_empty()),
                service_name: args.log.otel_service_name.clone().filter(|n| !n.trim().is_empty()),
            },
        })
    }

    /// Where the data is read from, for logs and messages: never credentials.
    pub fn redis_display(&self) -> &str {
        self.redis_cluster.as_ref().map_or(self.redis.display(), ClusterTarget::display)
    }

    /// Settings for tests and tools: defaults, the given Redis URL, port 0 on loopback.
    ///
    /// # Errors
    /// As [`Settings::from_args`].
    pub fn for_redis_url(url: &str) -> Result<Self, ConfigError> {
        let mut args = ServeArgs::defaults();
        args.redis.url = Some(Secret::new(url));
        args.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::from_args(&args)
    }
}

/// Flags of `semsearch router`: its own, then every `serve` flag (bind,
/// keys, limits, API keys, embedder, Redis and context TTL for the
/// contexts it writes). `SEMSEARCH_SHARD` means nothing to the router.
#[derive(Debug, Clone, clap::Args)]
pub struct RouterArgs {
    /// The shards' replicas: `url|url,url|url,…`, a comma between shards
    /// (in shard order: shard i runs SEMSEARCH_SHARD=i/n), `|` between the
    /// replicas of one shard.
    #[arg(long, env = "SEMSEARCH_ROUTER_SHARDS", help_heading = "Router")]
    pub shards: String,
    /// Longest wait for one replica's answer before trying the next.
    #[arg(long, env = "SEMSEARCH_ROUTER_SHARD_TIMEOUT_MS", default_value_t = 2000, help_heading = "Router")]
    pub shard_timeout_ms: u64,
    /// Bearer key sent to the replicas (one of their SEMSEARCH_API_KEYS).
    #[arg(long, env = "SEMSEARCH_ROUTER_SHARD_API_KEY", hide_env_values = true, help_heading = "Router")]
    pub shard_api_key: Option<Secret>,
    /// Most bytes the router reads of one shard answer; a longer answer is
    /// a failed attempt (default 64 MiB: above the largest legitimate
    /// answer, SEMSEARCH_MAX_RESPONSE_TEXT_BYTES of texts and titles plus
    /// the ids, URLs and scores of SEMSEARCH_MAX_RESULTS_PER_REQUEST hits).
    #[arg(long, env = "SEMSEARCH_ROUTER_MAX_SHARD_ANSWER_BYTES", default_value_t = 64 << 20, help_heading = "Router")]
    pub max_shard_answer_bytes: usize,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl RouterArgs {
    /// The service's settings and the router's own.
    ///
    /// # Errors
    /// [`ConfigError`] naming the flag that is wrong.
    pub fn settings(&self) -> Result<(Settings, RouterSettings), ConfigError> {
        let settings = Settings::from_args(&self.serve)?;
        if self.max_shard_answer_bytes < 4096 {
            return Err(ConfigError::TooSmall { name: "SEMSEARCH_ROUTER_MAX_SHARD_ANSWER_BYTES", min: 4096 });
        }
        let router = RouterSettings {
            max_shard_answer_bytes: self.max_shard_answer_bytes,
            shards: parse_shard_list(&self.shards)?,
            shard_timeout: Duration::from_millis(self.shard_timeout_ms.max(1)),
            shard_api_key: self.shard_api_key.clone(),
        };
        Ok((settings, router))
    }
}

/// The local model's directory: SEMSEARCH_MODEL_DIR, else the user cache
/// dir ($XDG_CACHE_HOME or ~/.cache) + `semsearch/models/all-MiniLM-L6-v2`.
pub fn model_dir() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    env("SEMSEARCH_MODEL_DIR").or_else(|| default_model_dir(env("XDG_CACHE_HOME").as_deref(), env("HOME").as_deref()))
}

/// The user's cache dir for semsearch: `$XDG_CACHE_HOME/semsearch`, else
/// `~/.cache/semsearch` (the model's default dir lives under it too).
pub fn cache_dir() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    semsearch_minilm::files::cache_root(env("XDG_CACHE_HOME").as_deref(), env("HOME").as_deref())
}

/// PATH, where the tools look for `redis-server` before fetching their own.
pub fn program_search_path() -> Option<std::ffi::OsString> {
    std::env::var_os("PATH")
}

/// Whether `dir` holds the local model's files (checked, by sha256, when loaded).
fn model_files_present(dir: &std::path::Path) -> bool {
    semsearch_minilm::files::MINILM_FILES.iter().all(|f| dir.join(f.name).is_file())
}

/// Whether logs on stderr may use colour: only when stderr is a terminal,
/// and never when `NO_COLOR` is set to anything (no-color.org).
pub fn stderr_color() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Bytes of one vector element as JSON text, generously: `-0.0123456789012345,`.
const JSON_BYTES_PER_FLOAT: usize = 24;

/// The body limit when none is configured: a full batch of vectors fits
/// (issue 16: the old fixed 1 MiB held only ~131-215 real 384-d queries,
/// below the default batch limit of 256).
fn default_body_limit(max_batch: usize, dim: Option<usize>) -> usize {
    let per_query = JSON_BYTES_PER_FLOAT.saturating_mul(dim.unwrap_or(384)).saturating_add(256);
    max_batch.saturating_mul(per_query).saturating_add(64 << 10).max(1 << 20)
}

impl ServeArgs {
    /// The defaults `--help` shows, ignoring the environment.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        use clap::{CommandFactory, FromArgMatches};
        // Drop every env fallback so the defaults are the defaults, whatever
        // the process environment holds (a bad SEMSEARCH_BIND must not panic here).
        let command = Only::command().mut_args(|a| a.env(None::<&'static str>));
        // An empty command line cannot fail to parse: every flag has a default or is optional.
        let matches = command.try_get_matches_from(["semsearch"]).expect("all serve flags have defaults");
        Only::from_arg_matches(&matches).map(|o| o.args).expect("matches come from this very command")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_switch_to_cluster_mode_with_the_same_credentials() {
        let mut args = ServeArgs::defaults();
        args.redis.password = Some(Secret::new("hunter2"));
        args.redis.cluster_nodes = vec!["10.0.0.1:7000".into(), "10.0.0.2:7000".into()];

        let settings = Settings::from_args(&args).expect("valid");

        assert_eq!(settings.redis_display(), "cluster redis://10.0.0.1:7000,10.0.0.2:7000");
        let seeds = settings.redis_cluster.as_ref().expect("cluster mode").seed_infos();
        assert_eq!(seeds[0].redis_settings().password(), Some("hunter2"));
        assert!(!format!("{settings:?}").contains("hunter2"));
        args.redis.cluster_nodes = vec!["10.0.0.1".into()];
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::Redis(_))));
        args.redis.cluster_nodes = Vec::new();
        assert!(Settings::from_args(&args).expect("valid").redis_cluster.is_none());
    }

    #[test]
    fn password_is_not_in_debug_output_or_display() {
        let mut args = ServeArgs::defaults();
        args.redis.password = Some(Secret::new("hunter2"));
        let settings = Settings::from_args(&args).expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(!format!("{args:?}").contains("hunter2"));
        assert_eq!(settings.redis.display(), "redis://127.0.0.1:6379/0");
    }

    #[test]
    fn embedder_workers_default_to_the_cores_and_are_bounded() {
        let dir = std::env::temp_dir().join(format!("semsearch-config-workers-{}", std::process::id()));
        let workers = |value: Option<usize>| {
            let mut args = ServeArgs::defaults();
            args.embedder.model_dir = Some(dir.clone());
            args.embedder.embedder_workers = value;
            Settings::from_args(&args).map(|s| s.embedder.and_then(|e| e.local().map(|l| l.pool.workers)))
        };

        assert_eq!(workers(None).expect("valid"), Some(semsearch_minilm::pool::default_workers()));
        assert_eq!(workers(Some(1)).expect("valid"), Some(1));
        assert!(matches!(workers(Some(0)), Err(ConfigError::TooSmall { name: "SEMSEARCH_EMBEDDER_WORKERS", min: 1 })));
        assert!(matches!(workers(Some(5)), Err(ConfigError::TooLarge { name: "SEMSEARCH_EMBEDDER_WORKERS", max: 4 })));
    }

    #[test]
    fn embedder_key_falls_back_to_the_provider_variable_and_is_never_printed() {
        let mut args = ServeArgs::defaults();
        args.embedder.embedder = Some(ProviderKind::Hf);
        args.embedder.huggingface_api_key = Some(Secret::new("hf_secret"));
        args.embedder.openai_api_key = Some(Secret::new("sk_secret"));
        let settings = Settings::from_args(&args).expect("valid");
        let Some(ProviderSettings::Http(http)) = settings.embedder.as_ref().map(|e| &e.provider) else {
            panic!("hf is an HTTP provider: {:?}", settings.embedder);
        };
        assert_eq!(http.protocol, HttpProtocol::Hf);
        assert_eq!(http.api_key.as_ref().map(Secret::expose), Some("hf_secret"));
        assert_eq!(http.url.as_str(), "https://router.huggingface.co/hf-inference");
        assert!(!format!("{settings:?}{args:?}").contains("_secret"));

        args.embedder.embedder_api_key = Some(Secret::new("explicit"));
        let settings = Settings::from_args(&args).expect("valid");
        let key = match settings.embedder.map(|e| e.provider) {
            Some(ProviderSettings::Http(http)) => http.api_key,
            _ => None,
        };
        assert_eq!(key.as_ref().map(Secret::expose), Some("explicit"));
    }

    #[test]
    fn text_search_is_local_by_default_when_the_model_is_there_and_off_otherwise() {
        let dir = std::env::temp_dir().join(format!("semsearch-config-test-{}", std::process::id()));
        let mut args = ServeArgs::defaults();
        args.embedder.model_dir = Some(dir.join("absent"));
        let named = Settings::from_args(&args).expect("valid").embedder.and_then(|e| e.local().cloned());
        assert!(
            named.is_some_and(|l| l.implicit && l.dir_configured),
            "a named directory is tried (and its missing files reported), not silently skipped"
        );

        std::fs::create_dir_all(&dir).expect("temp dir");
        for f in ["config.json", "tokenizer.json", "model.safetensors"] {
            std::fs::write(dir.join(f), b"{}").expect("write");
        }
        args.embedder.model_dir = Some(dir.clone());
        let embedder = Settings::from_args(&args).expect("valid").embedder.expect("on by default");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(embedder.kind(), ProviderKind::Local);
        assert!(embedder.implicit_local().is_some(), "chosen by default, so a bad model only turns it off");
    }

    #[test]
    fn tei_needs_a_url_and_a_query_cache_prefix_inside_embeddings_is_refused() {
        let mut args = ServeArgs::defaults();
        args.embedder.embedder = Some(ProviderKind::Tei);
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::MissingEmbedderUrl { .. })));
        args.embedder.embedder_url = Some("ftp://x".into());
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::BadEmbedderUrl)));
        args.embedder.embedder_url = Some("http://user:hunter2@127.0.0.1:8081".into());
        let settings = Settings::from_args(&args).expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"), "the embedder URL's password is not printed");
        args.embedder.query_cache_prefix = "cache:embedding:questions:".into();
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::Keys(KeyError::BadQueryCachePrefix { .. }))));
    }

    #[test]
    fn api_keys_are_split_on_commas_and_never_printed() {
        let cli = crate::cli::Cli::try_parse_from(["semsearch", "--api-keys", "k1, k2,", "--admin-keys", "adm1"])
            .expect("valid");
        let settings = Settings::from_args(&cli.into_serve_args()).expect("valid");
        let exposed: Vec<&str> = settings.access.api_keys.iter().map(Secret::expose).collect();
        assert_eq!(exposed, ["k1", "k2"]);
        assert!(!format!("{settings:?}").contains("k1") && !format!("{settings:?}").contains("adm1"));
    }

    #[test]
    fn cors_origins_must_be_origins() {
        let mut args = ServeArgs::defaults();
        args.cors_origins = vec!["https://app.example".into(), "http://localhost:3000".into()];
        assert_eq!(Settings::from_args(&args).expect("valid").cors_origins.len(), 2);
        for bad in ["app.example", "https://app.example/", "https://app.example/x", "ftp://x"] {
            args.cors_origins = vec![bad.into()];
            assert!(matches!(Settings::from_args(&args), Err(ConfigError::Cors(_))), "{bad}");
        }
    }

    #[test]
    fn bad_url_error_does_not_echo_the_url() {
        let mut args = ServeArgs::defaults();
        args.redis.url = Some(Secret::new("nonsense://:hunter2@x"));
        let err = Settings::from_args(&args).expect_err("bad url");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn defaults_ignore_the_environment() {
        // Run in a child process: changing this process's environment would race other tests.
        if std::env::var_os("SEMSEARCH_DEFAULTS_CHILD").is_some() {
            let args = ServeArgs::defaults();
            assert_eq!(args.bind.to_string(), "0.0.0.0:8080");
            assert_eq!(args.max_k, 1000);
            return;
        }
        let exe = std::env::current_exe().expect("test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", "config::tests::defaults_ignore_the_environment", "--nocapture"])
            .env("SEMSEARCH_DEFAULTS_CHILD", "1")
            .env("SEMSEARCH_BIND", "garbage")
            .env("SEMSEARCH_MAX_K", "7")
            .output()
            .expect("run the test binary");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    }

    #[test]
    fn issue_16_the_default_body_limit_fits_a_full_batch_of_384_d_vectors() {
        let settings = Settings::from_args(&ServeArgs::defaults()).expect("valid");
        // 256 queries of 384 floats printed as JavaScript prints them (up to 20 bytes each).
        let batch_bytes = settings.max_batch * (384 * 20 + 64);
        assert!(settings.max_body_bytes >= batch_bytes, "{} < {batch_bytes}", settings.max_body_bytes);
        let mut args = ServeArgs::defaults();
        args.max_body_bytes = Some(4096);
        assert_eq!(Settings::from_args(&args).expect("valid").max_body_bytes, 4096, "an explicit limit wins");
    }

    #[test]
    fn tool_defaults_agree_with_the_serve_defaults() {
        let args = ServeArgs::defaults();
        let from_flags = args.keys.key_space().expect("valid");
        let default = KeySpace::default();
        assert_eq!(from_flags.embedding_pattern(), default.embedding_pattern());
        assert_eq!(from_flags.quick_key(), default.quick_key());
        assert_eq!(from_flags.context_pattern(), default.context_pattern());
        assert_eq!(LoadSettings::default().scan_count, args.scan_count);
        assert_eq!(LoadSettings::default().chunk_keys, args.load_chunk);
    }
}
