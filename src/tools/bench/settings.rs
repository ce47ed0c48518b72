//! Flags of `semsearch bench` and their validated form.

use std::{path::PathBuf, time::Duration};

use clap::Args;
use thiserror::Error;

use super::SyntheticFormat;
use crate::{
    secret::Secret,
    store::{
        connect::{RedisTarget, TargetError},
        keys::KeySpace,
    },
};

/// A `semsearch bench` flag that is wrong.
#[derive(Debug, Error)]
pub enum BenchArgsError {
    #[error("--url must be an http:// or https:// URL")]
    BadUrl,
    #[error("{name} must be at least {min}")]
    TooSmall { name: &'static str, min: usize },
    #[error("{name} must be at most {max}")]
    TooLarge { name: &'static str, max: usize },
    #[error("--redis: {0}")]
    Redis(#[from] TargetError),
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
    /// [`BenchArgsError`] naming the flag that is wrong.
    pub fn from_args(args: &BenchArgs) -> Result<Self, BenchArgsError> {
        let url = reqwest::Url::parse(&args.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(BenchArgsError::BadUrl)?;
        if args.concurrency.is_empty() || args.concurrency.contains(&0) {
            return Err(BenchArgsError::TooSmall { name: "--concurrency", min: 1 });
        }
        if args.concurrency.iter().any(|&c| c > MAX_BENCH_CONCURRENCY) {
            return Err(BenchArgsError::TooLarge { name: "--concurrency", max: MAX_BENCH_CONCURRENCY });
        }
        for (name, value) in [("--k", args.k), ("--random-queries", args.random_queries), ("--dim", args.dim)] {
            if value < 1 {
                return Err(BenchArgsError::TooSmall { name, min: 1 });
            }
        }
        let synthetic = match (args.synthetic, &args.redis) {
            (Some(docs), Some(url)) => Some(SyntheticSettings {
                docs,
                dim: args.dim,
                format: args.format,
                redis: RedisTarget::from_url(url)?,
                keys: KeySpace::default(),
                overwrite: args.overwrite,
            }),
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
