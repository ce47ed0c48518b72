//! Command line and environment: the only module that reads env vars.
//!
//! Every flag has an env fallback (clap `env`) and shows in `--help`. The
//! Redis password is wrapped in [`Secret`] and marked `hide_env_values`, so it
//! appears in neither `--help`, `Debug` output nor logs; the address we log
//! comes from [`RedisTarget::display`], which never carries credentials.
//! Embedding-service API keys are [`Secret`]s too, and the embedder URL is
//! logged by host only.

use std::{fmt, net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use thiserror::Error;

use crate::{
    embed::{providers::RetryPolicy, Normalization, ProviderKind},
    harness::SyntheticFormat,
    search::kernel::KernelChoice,
    store::{
        keys::{KeyError, KeySpace, QueryCacheKeys, DEFAULT_QUERY_CACHE_PREFIX},
        seed::SeedOptions,
    },
};

/// `semsearch`: exact cosine top-k over the embeddings a chatbot keeps in Redis.
#[derive(Debug, Parser)]
#[command(name = "semsearch", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load embeddings from Redis and serve search over HTTP (the default).
    Serve(ServeArgs),
    /// Embed one text with the configured provider and print the vector and
    /// its dimension (no cache, no Redis): to debug a provider set-up.
    Embed(EmbedArgs),
    /// Load a corpus file (JSONL, or .jsonl.gz) in the chatbot's format into
    /// Redis, as `SET cache:embedding:<url> <line> EX <ttl>`.
    Seed(SeedArgs),
    /// Try semsearch with nothing but redis-server installed: start a private
    /// Redis, load the built-in demo corpus, serve, print example requests.
    /// Ctrl-C stops the service and the Redis.
    Demo(DemoArgs),
    /// GET /readyz on the local server; exit 0 when ready (the container HEALTHCHECK).
    Healthcheck(HealthcheckArgs),
    /// Measure a running semsearch: QPS and latency percentiles per concurrency level.
    Bench(BenchArgs),
    /// Print the OpenAPI document (YAML) this build serves at /openapi.yaml;
    /// `semsearch openapi > openapi.yaml` regenerates the checked-in copy.
    Openapi,
}

/// Flags of `semsearch demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address the demo listens on (loopback: the demo is for this machine).
    #[arg(long, env = "SEMSEARCH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// A corpus file to load instead of the built-in one (JSONL or .jsonl.gz).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "warn,semsearch=info")]
    pub log: String,
}

/// Flags of `semsearch bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Base URL of the semsearch to measure, e.g. http://127.0.0.1:8080. Every
    /// request goes there and nowhere else.
    #[arg(long)]
    pub url: String,
    /// Measured time per concurrency level (humantime: 30s, 1m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Unmeasured warm-up before each level.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Requests in flight, one level after the other, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    pub concurrency: Vec<usize>,
    /// Most requests per level, in the warm-up and again in the measurement,
    /// whatever the duration.
    #[arg(long, default_value_t = 1_000_000)]
    pub max_requests: u64,
    /// k of every search.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Query vectors: JSONL with an `embedding` array per line. Unset: random
    /// unit vectors of the dimension /v1/stats reports.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// How many random query vectors to cycle through when --queries is unset.
    #[arg(long, default_value_t = 1000)]
    pub random_queries: usize,
    /// Seed of the random query and synthetic vectors (printed in the report).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a latency chart (SVG) to this file.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// First fill the Redis given by --redis with this many random documents,
    /// ask the server to reload, and wait until it holds them.
    #[arg(long, requires = "redis")]
    pub synthetic: Option<usize>,
    /// Dimension of the synthetic vectors.
    #[arg(long, default_value_t = 384)]
    pub dim: usize,
    /// Redis to fill with --synthetic (redis://, rediss:// or unix:// URL; not
    /// read from REDIS_URL, so a bench cannot fill production by accident).
    #[arg(long, hide_env_values = true)]
    pub redis: Option<Secret>,
    /// Value format of the synthetic documents: the chatbot's JSON or a raw f32 blob.
    #[arg(long, value_enum, default_value_t = SyntheticFormat::Json)]
    pub format: SyntheticFormat,
    /// Replace synthetic keys that exist (otherwise they are kept and counted).
    #[arg(long)]
    pub overwrite: bool,
    /// Longest wait for the server to hold the synthetic documents.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
}

/// Flags of `semsearch healthcheck`.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs {
    /// The address the server listens on; an unspecified IP (0.0.0.0, ::) is
    /// reached on loopback.
    #[arg(long, env = "SEMSEARCH_BIND", default_value = "0.0.0.0:8080")]
    pub bind: SocketAddr,
    /// Longest wait for the answer, in seconds.
    #[arg(long, default_value_t = 3)]
    pub timeout_secs: u64,
}

/// Flags of `semsearch seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// JSONL file, one chatbot value per line (`{"title","url","text","embedding"}`);
    /// gzip is detected from the content.
    pub file: PathBuf,
    #[command(flatten)]
    pub redis: RedisArgs,
    /// SCAN pattern of the embedding keys (as for serve); documents go under its prefix.
    #[arg(long, env = "SEMSEARCH_EMBEDDING_PATTERN", default_value = "cache:embedding:*")]
    pub embedding_pattern: String,
    /// Expiry of every key, in seconds (the chatbot uses 86400); 0: no expiry.
    #[arg(long, default_value_t = 86_400)]
    pub ttl_secs: u64,
    /// Replace keys that exist. Without it they are left alone and counted as skipped.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Validated `semsearch bench` flags.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Base URL; every request goes under it.
    pub url: reqwest::Url,
    pub duration: Duration,
    pub warmup: Duration,
    pub concurrency: Vec<usize>,
    pub max_requests: u64,
    pub k: usize,
    pub queries: Option<PathBuf>,
    pub random_queries: usize,
    pub seed: u64,
    pub json: Option<PathBuf>,
    pub chart: Option<PathBuf>,
    pub synthetic: Option<SyntheticSettings>,
    pub ready_timeout: Duration,
}

/// What `--synthetic` writes, and where.
#[derive(Debug, Clone)]
pub struct SyntheticSettings {
    pub docs: usize,
    pub dim: usize,
    pub format: SyntheticFormat,
    pub redis: RedisTarget,
    pub keys: KeySpace,
    pub overwrite: bool,
}

/// Most requests in flight `bench` accepts: beyond it the client, not the
/// server, is what gets measured.
pub const MAX_BENCH_CONCURRENCY: usize = 4096;

impl BenchSettings {
    /// # Errors
    /// [`ConfigError`] naming the flag that is wrong.
    pub fn from_args(args: &BenchArgs) -> Result<Self, ConfigError> {
        let url = reqwest::Url::parse(&args.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(ConfigError::BadBenchUrl)?;
        if args.concurrency.is_empty() || args.concurrency.contains(&0) {
            return Err(ConfigError::TooSmall { name: "--concurrency", min: 1 });
        }
        if args.concurrency.iter().any(|&c| c > MAX_BENCH_CONCURRENCY) {
            return Err(ConfigError::TooLarge { name: "--concurrency", max: MAX_BENCH_CONCURRENCY });
        }
        for (name, value) in [("--k", args.k), ("--random-queries", args.random_queries), ("--dim", args.dim)] {
            if value < 1 {
                return Err(ConfigError::TooSmall { name, min: 1 });
            }
        }
        let synthetic = match (args.synthetic, &args.redis) {
            (Some(docs), Some(url)) => {
                let serve = ServeArgs::defaults();
                let mut redis = serve.redis.clone();
                redis.url = Some(url.clone());
                Some(SyntheticSettings {
                    docs,
                    dim: args.dim,
                    format: args.format,
                    redis: RedisTarget::from_args(&redis)?,
                    keys: KeySpace::new(&serve.embedding_pattern, &serve.quick_key, &serve.context_prefix)?,
                    overwrite: args.overwrite,
                })
            }
            _ => None,
        };
        Ok(Self {
            url,
            duration: args.duration,
            warmup: args.warmup,
            concurrency: args.concurrency.clone(),
            max_requests: args.max_requests.max(1),
            k: args.k,
            queries: args.queries.clone(),
            random_queries: args.random_queries,
            seed: args.seed,
            json: args.json.clone(),
            chart: args.chart.clone(),
            synthetic,
            ready_timeout: args.ready_timeout,
        })
    }
}

/// Validated `semsearch seed` flags.
#[derive(Debug, Clone)]
pub struct SeedSettings {
    pub file: PathBuf,
    pub redis: RedisTarget,
    pub keys: KeySpace,
    pub options: SeedOptions,
    pub progress: bool,
}

impl SeedSettings {
    /// # Errors
    /// [`ConfigError`] for a bad Redis URL or embedding pattern.
    pub fn from_args(args: &SeedArgs) -> Result<Self, ConfigError> {
        // The quick key and context prefix are not used by seed, but KeySpace
        // checks the embedding prefix against them, as serve would.
        let serve = ServeArgs::defaults();
        Ok(Self {
            file: args.file.clone(),
            redis: RedisTarget::from_args(&args.redis)?,
            keys: KeySpace::new(&args.embedding_pattern, &serve.quick_key, &serve.context_prefix)?,
            options: SeedOptions { ttl_secs: (args.ttl_secs > 0).then_some(args.ttl_secs), overwrite: args.overwrite },
            progress: !args.no_progress,
        })
    }
}

/// Flags of `semsearch embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// The text to embed (normalised as SEMSEARCH_TEXT_NORMALIZATION says).
    pub text: String,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Cli {
    /// The serve flags, whether or not `serve` was spelled out.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            Some(Command::Embed(args)) => args.serve,
            Some(
                Command::Seed(_) | Command::Demo(_) | Command::Healthcheck(_) | Command::Bench(_) | Command::Openapi,
            )
            | None => self.serve,
        }
    }
}

/// A value that must never be printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// How to reach Redis: a URL, or the chatbot deployment's separate variables.
#[derive(Debug, Clone, Args)]
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
}

/// Flags of `semsearch serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub redis: RedisArgs,
    /// Address the HTTP server listens on.
    #[arg(long, env = "SEMSEARCH_BIND", default_value = "0.0.0.0:8080")]
    pub bind: SocketAddr,
    /// SCAN pattern of the embedding keys: a literal prefix and one trailing '*'.
    #[arg(long, env = "SEMSEARCH_EMBEDDING_PATTERN", default_value = "cache:embedding:*")]
    pub embedding_pattern: String,
    /// Key whose deletion or expiry means "articles changed, reload".
    #[arg(long, env = "SEMSEARCH_QUICK_KEY", default_value = "cache:processed_articles:quick")]
    pub quick_key: String,
    /// Prefix under which search results are cached for the chatbot.
    #[arg(long, env = "SEMSEARCH_CONTEXT_PREFIX", default_value = "cache:context:")]
    pub context_prefix: String,
    /// Largest k a search may ask for.
    #[arg(long, env = "SEMSEARCH_MAX_K", default_value_t = 1000)]
    pub max_k: usize,
    /// Most queries one `POST /v1/search/batch` may carry, and most concurrent
    /// `/v1/search` queries scanned together in one pass.
    #[arg(long, env = "SEMSEARCH_MAX_BATCH", default_value_t = 256)]
    pub max_batch: usize,
    /// Dot-product kernel: auto, scalar, avx2, avx512 or neon. Forcing one the
    /// CPU lacks stops start-up with an error.
    #[arg(long, env = "SEMSEARCH_KERNEL", default_value_t = KernelChoice::Auto)]
    pub kernel: KernelChoice,
    /// Index dimension. Unset: the most common dimension among valid values.
    #[arg(long, env = "SEMSEARCH_DIM")]
    pub dim: Option<usize>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "SEMSEARCH_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Keys asked for per SCAN call (the COUNT hint).
    #[arg(long, env = "SEMSEARCH_SCAN_COUNT", default_value_t = 1000)]
    pub scan_count: usize,
    /// Keys fetched per MGET while loading.
    #[arg(long, env = "SEMSEARCH_LOAD_CHUNK", default_value_t = 500)]
    pub load_chunk: usize,
    /// Redis response timeout while loading, in seconds. redis-rs's 500 ms
    /// default is too short for multi-megabyte MGET replies on a busy server.
    #[arg(long, env = "SEMSEARCH_REDIS_LOAD_TIMEOUT_SECS", default_value_t = 30)]
    pub redis_load_timeout_secs: u64,
    /// Longest wait between attempts to reach Redis at start-up, in milliseconds.
    #[arg(long, env = "SEMSEARCH_RETRY_MAX_MS", default_value_t = 5000)]
    pub retry_max_ms: u64,
    /// TTL of the `cache:context:*` entries written after each search, in
    /// seconds; 0 turns context writes off.
    #[arg(long, env = "SEMSEARCH_CONTEXT_TTL_SECS", default_value_t = 3600)]
    pub context_ttl_secs: u64,
    /// Seconds between full reconciles of the key set with Redis (catches
    /// changes the change feed missed).
    #[arg(long, env = "SEMSEARCH_RECONCILE_SECS", default_value_t = 30)]
    pub reconcile_secs: u64,
    /// A burst of invalidations within this window gives one reload, in ms.
    #[arg(long, env = "SEMSEARCH_RELOAD_DEBOUNCE_MS", default_value_t = 250)]
    pub reload_debounce_ms: u64,
    /// Changed embedding keys are collected this long, then applied together, in ms.
    #[arg(long, env = "SEMSEARCH_KEY_BATCH_MS", default_value_t = 100)]
    pub key_batch_ms: u64,
    /// Time a request may take before it is answered 503, in seconds.
    #[arg(long, env = "SEMSEARCH_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Bearer keys accepted on the search routes (/v1/search, /v1/stats),
    /// comma-separated. Unset or empty: those routes are open. Never logged.
    #[arg(long, env = "SEMSEARCH_API_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub api_keys: Vec<Secret>,
    /// Bearer keys accepted on /v1/admin/* (and on the search routes),
    /// comma-separated. Unset: admin routes answer only on a loopback bind. Never logged.
    #[arg(long, env = "SEMSEARCH_ADMIN_KEYS", value_delimiter = ',', hide_env_values = true)]
    pub admin_keys: Vec<Secret>,
    /// Searches running at once; one more is answered 503 `overloaded` with
    /// Retry-After instead of queueing behind the CPU-bound scans.
    #[arg(long, env = "SEMSEARCH_MAX_CONCURRENT_SEARCHES", default_value_t = 64)]
    pub max_concurrent_searches: usize,
    /// Origins allowed by CORS, comma-separated (e.g. https://app.example),
    /// or `*`. Unset: no CORS headers, so browsers on other origins are refused.
    #[arg(long, env = "SEMSEARCH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Log format.
    #[arg(long, env = "SEMSEARCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

/// Text queries: which embedding service to call, and the query-embedding cache.
#[derive(Debug, Clone, Args)]
pub struct EmbedderArgs {
    /// Embedding service for `"text"` queries: tei, hf or openai. Unset: text search is off.
    #[arg(id = "embedder", value_name = "EMBEDDER", long = "embedder", env = "SEMSEARCH_EMBEDDER", value_enum)]
    pub provider: Option<ProviderKind>,
    /// Base URL of the embedding service. Required for tei; defaults to
    /// `https://router.huggingface.co/hf-inference` for hf and `https://api.openai.com` for openai.
    #[arg(id = "embedder-url", value_name = "URL", long = "embedder-url", env = "SEMSEARCH_EMBEDDER_URL")]
    pub url: Option<String>,
    /// Model name sent to the service (hf: part of the path; openai: the `model` field).
    #[arg(
        id = "embedder-model",
        value_name = "MODEL",
        long = "embedder-model",
        env = "SEMSEARCH_EMBEDDER_MODEL",
        default_value = "sentence-transformers/all-MiniLM-L6-v2"
    )]
    pub model: String,
    /// Bearer token for the embedding service. Never logged.
    #[arg(
        id = "embedder-api-key",
        value_name = "API_KEY",
        long = "embedder-api-key",
        env = "SEMSEARCH_EMBEDDER_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<Secret>,
    /// Bearer token for hf when SEMSEARCH_EMBEDDER_API_KEY is unset. Never logged.
    #[arg(long = "huggingface-api-key", env = "HUGGINGFACE_API_KEY", hide_env_values = true)]
    pub huggingface_api_key: Option<Secret>,
    /// Bearer token for openai when SEMSEARCH_EMBEDDER_API_KEY is unset. Never logged.
    #[arg(long = "openai-api-key", env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<Secret>,
    /// Time to open a connection to the embedding service, in milliseconds.
    #[arg(
        id = "embedder-connect-timeout-ms",
        value_name = "CONNECT_TIMEOUT_MS",
        long = "embedder-connect-timeout-ms",
        env = "SEMSEARCH_EMBEDDER_CONNECT_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub connect_timeout_ms: u64,
    /// Time one embedding request may take, in milliseconds (504 after that).
    #[arg(
        id = "embedder-timeout-ms",
        value_name = "TIMEOUT_MS",
        long = "embedder-timeout-ms",
        env = "SEMSEARCH_EMBEDDER_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub timeout_ms: u64,
    /// Retries after a 429 or 5xx answer.
    #[arg(
        id = "embedder-max-retries",
        value_name = "MAX_RETRIES",
        long = "embedder-max-retries",
        env = "SEMSEARCH_EMBEDDER_MAX_RETRIES",
        default_value_t = 2
    )]
    pub max_retries: u32,
    /// First backoff when the service sends no Retry-After, in milliseconds; doubles per retry.
    #[arg(
        id = "embedder-retry-base-ms",
        value_name = "RETRY_BASE_MS",
        long = "embedder-retry-base-ms",
        env = "SEMSEARCH_EMBEDDER_RETRY_BASE_MS",
        default_value_t = 200
    )]
    pub retry_base_ms: u64,
    /// Longest wait before a retry, in milliseconds. A longer Retry-After ends the attempts.
    #[arg(
        id = "embedder-retry-max-ms",
        value_name = "RETRY_MAX_MS",
        long = "embedder-retry-max-ms",
        env = "SEMSEARCH_EMBEDDER_RETRY_MAX_MS",
        default_value_t = 5000
    )]
    pub retry_max_ms: u64,
    /// Requests in flight to the embedding service at once; more wait their turn.
    #[arg(
        id = "embedder-concurrency",
        value_name = "CONCURRENCY",
        long = "embedder-concurrency",
        env = "SEMSEARCH_EMBEDDER_CONCURRENCY",
        default_value_t = 16
    )]
    pub concurrency: usize,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Why the configuration was refused at start-up.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The URL did not parse. The URL itself is not echoed: it may hold a password.
    #[error(
        "REDIS_URL is not a valid redis://, rediss:// or unix:// URL (value not shown: it may contain a password)"
    )]
    BadRedisUrl,
    /// The CA file could not be read.
    #[error("REDIS_TLS_CA_FILE {path}: {source}")]
    RedisCaFile { path: PathBuf, source: std::io::Error },
    /// A CA file was given, but the connection is not TLS or the PEM is unusable.
    #[error("REDIS_TLS_CA_FILE needs a rediss:// URL (or REDIS_TLS=true) and a PEM certificate: {reason}")]
    RedisTls { reason: String },
    #[error(transparent)]
    Keys(#[from] KeyError),
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
    #[error("--url must be an http:// or https:// URL")]
    BadBenchUrl,
    /// Not an `http(s)://host[:port]` origin, or `*`.
    #[error("SEMSEARCH_CORS_ORIGINS: {origin:?} is not an origin such as https://app.example, or *")]
    BadCorsOrigin { origin: String },
}

/// Where Redis is, ready for redis-rs, plus a printable form without secrets.
#[derive(Clone)]
pub struct RedisTarget {
    pub info: ConnectionInfo,
    display: String,
}

impl RedisTarget {
    /// `redis://host:port/db` or `unix:/path (db N)`; never credentials.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Builds the target from the flags.
    ///
    /// # Errors
    /// [`ConfigError::BadRedisUrl`] when REDIS_URL does not parse.
    pub fn from_args(args: &RedisArgs) -> Result<Self, ConfigError> {
        let info = match &args.url {
            Some(url) => url.expose().into_connection_info().map_err(|_| ConfigError::BadRedisUrl)?,
            None => {
                let mut redis = redis::RedisConnectionInfo::default().set_db(args.db);
                if let Some(user) = &args.username {
                    redis = redis.set_username(user);
                }
                if let Some(pw) = &args.password {
                    redis = redis.set_password(pw.expose());
                }
                let addr = if args.tls {
                    ConnectionAddr::TcpTls {
                        host: args.host.clone(),
                        port: args.port,
                        insecure: false,
                        tls_params: None,
                    }
                } else {
                    ConnectionAddr::Tcp(args.host.clone(), args.port)
                };
                addr.into_connection_info().map_err(|_| ConfigError::BadRedisUrl)?.set_redis_settings(redis)
            }
        };
        let info = match &args.tls_ca_file {
            Some(path) => with_private_ca(info, path)?,
            None => info,
        };
        let db = info.redis_settings().db();
        let display = match info.addr() {
            ConnectionAddr::Tcp(host, port) => format!("redis://{host}:{port}/{db}"),
            ConnectionAddr::TcpTls { host, port, .. } => format!("rediss://{host}:{port}/{db}"),
            ConnectionAddr::Unix(path) => format!("unix:{} (db {db})", path.display()),
            _ => format!("redis (db {db})"),
        };
        Ok(Self { info, display })
    }
}

/// `info` trusting the CA in the PEM file at `path` (instead of the
/// compiled-in roots). redis-rs stores the parsed certificate in the
/// connection info, so every client built from it (loader, watcher, context
/// writer, query cache) verifies against the same CA.
fn with_private_ca(info: ConnectionInfo, path: &std::path::Path) -> Result<ConnectionInfo, ConfigError> {
    let pem = std::fs::read(path).map_err(|source| ConfigError::RedisCaFile { path: path.to_owned(), source })?;
    let certs = redis::TlsCertificates { client_tls: None, root_cert: Some(pem) };
    let client =
        redis::Client::build_with_tls(info, certs).map_err(|e| ConfigError::RedisTls { reason: e.to_string() })?;
    Ok(client.get_connection_info().clone())
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget").field("addr", &self.display).finish_non_exhaustive()
    }
}

/// Validated settings the application is built from.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub redis: RedisTarget,
    pub keys: KeySpace,
    pub max_k: usize,
    pub max_batch: usize,
    pub kernel: KernelChoice,
    pub dim: Option<usize>,
    pub max_body_bytes: usize,
    pub load: LoadSettings,
    pub retry_max: Duration,
    pub request_timeout: Duration,
    pub refresh: RefreshSettings,
    pub log: String,
    pub log_format: LogFormat,
    /// `None`: text search is off and `"text"` queries get 422.
    pub embedder: Option<EmbedderSettings>,
    /// Who may call which routes (see `api::auth`).
    pub access: AccessSettings,
    /// Searches running at once before new ones get 503 `overloaded`.
    pub max_concurrent_searches: usize,
    /// Empty: CORS is off.
    pub cors_origins: Vec<String>,
}

/// API keys. `Debug` shows how many, never which.
#[derive(Clone, Default)]
pub struct AccessSettings {
    /// Empty: search routes are open.
    pub api_keys: Vec<Secret>,
    /// Empty: admin routes are open on a loopback bind only.
    pub admin_keys: Vec<Secret>,
}

impl fmt::Debug for AccessSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessSettings")
            .field("api_keys", &self.api_keys.len())
            .field("admin_keys", &self.admin_keys.len())
            .finish()
    }
}

/// How to embed question text and cache the result. `Debug` shows the URL's
/// host only: a URL may carry credentials.
#[derive(Clone)]
pub struct EmbedderSettings {
    pub provider: ProviderKind,
    pub url: reqwest::Url,
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
            .field("host", &self.url.host_str())
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

impl EmbedderSettings {
    /// Validates the embedder flags; `None` when no provider is configured.
    ///
    /// # Errors
    /// [`ConfigError`] naming the flag that is wrong.
    pub fn from_args(args: &EmbedderArgs, keys: &KeySpace) -> Result<Option<Self>, ConfigError> {
        let Some(provider) = args.provider else { return Ok(None) };
        let url = match (&args.url, provider) {
            (Some(url), _) => url.clone(),
            (None, ProviderKind::Hf) => "https://router.huggingface.co/hf-inference".to_owned(),
            (None, ProviderKind::Openai) => "https://api.openai.com".to_owned(),
            (None, ProviderKind::Tei) => return Err(ConfigError::MissingEmbedderUrl { provider }),
        };
        let url = reqwest::Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(ConfigError::BadEmbedderUrl)?;
        if args.concurrency < 1 {
            return Err(ConfigError::TooSmall { name: "SEMSEARCH_EMBEDDER_CONCURRENCY", min: 1 });
        }
        let provider_key = match provider {
            ProviderKind::Hf => &args.huggingface_api_key,
            ProviderKind::Openai => &args.openai_api_key,
            ProviderKind::Tei => &None,
        };
        Ok(Some(Self {
            provider,
            url,
            model: args.model.clone(),
            api_key: args.api_key.clone().or_else(|| provider_key.clone()).filter(|k| !k.expose().is_empty()),
            connect_timeout: Duration::from_millis(args.connect_timeout_ms.max(1)),
            request_timeout: Duration::from_millis(args.timeout_ms.max(1)),
            retry: RetryPolicy {
                max_retries: args.max_retries,
                base: Duration::from_millis(args.retry_base_ms),
                max: Duration::from_millis(args.retry_max_ms),
            },
            concurrency: args.concurrency,
            normalization: args.text_normalization,
            cache_keys: keys.query_cache(&args.query_cache_prefix)?,
            cache_ttl_secs: args.query_cache_ttl_secs,
            cache_capacity: args.query_cache_capacity,
            cache_timeout: Duration::from_millis(args.query_cache_timeout_ms.max(1)),
        }))
    }
}

/// Knobs of live refresh (see `refresh`).
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// `None`: no context writes.
    pub context_ttl_secs: Option<u64>,
    pub reconcile_every: Duration,
    pub reload_debounce: Duration,
    pub key_batch: Duration,
}

/// Knobs of the bulk load from Redis.
#[derive(Debug, Clone)]
pub struct LoadSettings {
    pub scan_count: usize,
    pub chunk_keys: usize,
    pub response_timeout: Duration,
}

impl Settings {
    /// Parses the process's command line and environment.
    pub fn from_cli() -> Cli {
        Cli::parse()
    }

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
        at_least("SEMSEARCH_MAX_BODY_BYTES", args.max_body_bytes, 64)?;
        if let Some(dim) = args.dim {
            at_least("SEMSEARCH_DIM", dim, 1)?;
        }
        let keys = KeySpace::new(&args.embedding_pattern, &args.quick_key, &args.context_prefix)?;
        at_least("SEMSEARCH_MAX_CONCURRENT_SEARCHES", args.max_concurrent_searches, 1)?;
        let cors_origins: Vec<String> =
            args.cors_origins.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        if let Some(bad) = cors_origins.iter().find(|o| !is_origin(o)) {
            return Err(ConfigError::BadCorsOrigin { origin: bad.clone() });
        }
        let non_empty = |keys: &[Secret]| keys.iter().filter(|k| !k.expose().trim().is_empty()).cloned().collect();
        Ok(Self {
            access: AccessSettings { api_keys: non_empty(&args.api_keys), admin_keys: non_empty(&args.admin_keys) },
            max_concurrent_searches: args.max_concurrent_searches,
            cors_origins,
            bind: args.bind,
            redis: RedisTarget::from_args(&args.redis)?,
            embedder: EmbedderSettings::from_args(&args.embedder, &keys)?,
            keys,
            max_k: args.max_k,
            max_batch: args.max_batch,
            kernel: args.kernel,
            dim: args.dim,
            max_body_bytes: args.max_body_bytes,
            load: LoadSettings {
                scan_count: args.scan_count,
                chunk_keys: args.load_chunk,
                response_timeout: Duration::from_secs(args.redis_load_timeout_secs.max(1)),
            },
            retry_max: Duration::from_millis(args.retry_max_ms.max(10)),
            request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
            refresh: RefreshSettings {
                context_ttl_secs: (args.context_ttl_secs > 0).then_some(args.context_ttl_secs),
                reconcile_every: Duration::from_secs(args.reconcile_secs.max(1)),
                reload_debounce: Duration::from_millis(args.reload_debounce_ms),
                key_batch: Duration::from_millis(args.key_batch_ms),
            },
            log: args.log.clone(),
            log_format: args.log_format,
        })
    }

    /// Settings for tests and tools: defaults, the given Redis URL, port 0 on loopback.
    ///
    /// # Errors
    /// As [`Settings::from_args`].
    pub fn for_redis_url(url: &str) -> Result<Self, ConfigError> {
        let mut args = ServeArgs::defaults();
        args.redis.url = Some(Secret(url.to_owned()));
        args.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::from_args(&args)
    }
}

/// `*`, or `scheme://host[:port]` with nothing after: what browsers send in `Origin`.
fn is_origin(origin: &str) -> bool {
    origin == "*"
        || reqwest::Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.path() == "/"
                && !origin.ends_with('/')
                && u.query().is_none()
        })
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
    fn password_is_not_in_debug_output_or_display() {
        let mut args = ServeArgs::defaults();
        args.redis.password = Some(Secret("hunter2".into()));
        let settings = Settings::from_args(&args).expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"));
        assert!(!format!("{args:?}").contains("hunter2"));
        assert_eq!(settings.redis.display(), "redis://127.0.0.1:6379/0");
    }

    #[test]
    fn password_in_url_is_not_displayed() {
        let t = RedisTarget::from_args(&RedisArgs {
            url: Some(Secret("redis://user:hunter2@db.example:6380/3".into())),
            host: String::new(),
            port: 0,
            password: None,
            username: None,
            db: 0,
            tls: false,
            tls_ca_file: None,
        })
        .expect("valid url");
        assert_eq!(t.display(), "redis://db.example:6380/3");
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn embedder_key_falls_back_to_the_provider_variable_and_is_never_printed() {
        let mut args = ServeArgs::defaults();
        args.embedder.provider = Some(ProviderKind::Hf);
        args.embedder.huggingface_api_key = Some(Secret("hf_secret".into()));
        args.embedder.openai_api_key = Some(Secret("sk_secret".into()));
        let settings = Settings::from_args(&args).expect("valid");
        let embedder = settings.embedder.as_ref().expect("hf configured");
        assert_eq!(embedder.api_key.as_ref().map(Secret::expose), Some("hf_secret"));
        assert_eq!(embedder.url.as_str(), "https://router.huggingface.co/hf-inference");
        assert!(!format!("{settings:?}{args:?}").contains("_secret"));

        args.embedder.api_key = Some(Secret("explicit".into()));
        let settings = Settings::from_args(&args).expect("valid");
        assert_eq!(settings.embedder.and_then(|e| e.api_key).as_ref().map(Secret::expose), Some("explicit"));
    }

    #[test]
    fn text_search_is_off_unless_an_embedder_is_named() {
        let settings = Settings::from_args(&ServeArgs::defaults()).expect("valid");
        assert!(settings.embedder.is_none());
    }

    #[test]
    fn tei_needs_a_url_and_a_query_cache_prefix_inside_embeddings_is_refused() {
        let mut args = ServeArgs::defaults();
        args.embedder.provider = Some(ProviderKind::Tei);
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::MissingEmbedderUrl { .. })));
        args.embedder.url = Some("ftp://x".into());
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::BadEmbedderUrl)));
        args.embedder.url = Some("http://user:hunter2@127.0.0.1:8081".into());
        let settings = Settings::from_args(&args).expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"), "the embedder URL's password is not printed");
        args.embedder.query_cache_prefix = "cache:embedding:questions:".into();
        assert!(matches!(Settings::from_args(&args), Err(ConfigError::Keys(KeyError::BadQueryCachePrefix { .. }))));
    }

    #[test]
    fn api_keys_are_split_on_commas_and_never_printed() {
        let cli = Cli::try_parse_from(["semsearch", "--api-keys", "k1,k2", "--admin-keys", "adm1"]).expect("valid");
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
            assert!(matches!(Settings::from_args(&args), Err(ConfigError::BadCorsOrigin { .. })), "{bad}");
        }
    }

    #[test]
    fn bad_url_error_does_not_echo_the_url() {
        let mut args = ServeArgs::defaults();
        args.redis.url = Some(Secret("nonsense://:hunter2@x".into()));
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
}
