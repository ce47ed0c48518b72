//! Command line and environment: the only module that reads env vars.
//!
//! Every flag has an env fallback (clap `env`) and shows in `--help`. The
//! Redis password is wrapped in [`Secret`] and marked `hide_env_values`, so it
//! appears in neither `--help`, `Debug` output nor logs; the address we log
//! comes from [`RedisTarget::display`], which never carries credentials.

use std::{fmt, net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use thiserror::Error;

use crate::{
    search::kernel::KernelChoice,
    store::keys::{KeyError, KeySpace},
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
}

impl Cli {
    /// The serve flags, whether or not `serve` was spelled out.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            None => self.serve,
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
    /// Redis URL: redis://[user[:password]@]host[:port][/db], rediss:// for TLS,
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
    /// Time a request may take before it is answered 503, in seconds.
    #[arg(long, env = "SEMSEARCH_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log: String,
    /// Log format.
    #[arg(long, env = "SEMSEARCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,
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
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{name} must be at least {min}")]
    TooSmall { name: &'static str, min: usize },
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
                ConnectionAddr::Tcp(args.host.clone(), args.port)
                    .into_connection_info()
                    .map_err(|_| ConfigError::BadRedisUrl)?
                    .set_redis_settings(redis)
            }
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
    pub log: String,
    pub log_format: LogFormat,
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
        Ok(Self {
            bind: args.bind,
            redis: RedisTarget::from_args(&args.redis)?,
            keys: KeySpace::new(&args.embedding_pattern, &args.quick_key, &args.context_prefix)?,
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

impl ServeArgs {
    /// The defaults `--help` shows, ignoring the environment.
    pub fn defaults() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        // Parsing an empty command line cannot fail: every flag has a default or is optional.
        let mut args = Only::try_parse_from(["semsearch"]).map(|o| o.args).expect("all serve flags have defaults");
        // `try_parse_from` still reads env fallbacks; reset the ones a caller must set explicitly.
        args.redis.url = None;
        args.redis.password = None;
        args
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
        })
        .expect("valid url");
        assert_eq!(t.display(), "redis://db.example:6380/3");
        assert!(!format!("{t:?}").contains("hunter2"));
    }

    #[test]
    fn bad_url_error_does_not_echo_the_url() {
        let mut args = ServeArgs::defaults();
        args.redis.url = Some(Secret("nonsense://:hunter2@x".into()));
        let err = Settings::from_args(&args).expect_err("bad url");
        assert!(!err.to_string().contains("hunter2"));
    }
}
