//! Flags of `semsearch bench` and their validated form.

use std::{path::PathBuf, time::Duration};

use clap::Args;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use thiserror::Error;

use super::{load::Load, SyntheticFormat};
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
    #[error("--rate must be a number of requests per second above 0 and at most {max}")]
    BadRate { max: f64 },
    /// The value is not shown: it is often a credential.
    #[error(
        "--header number {position} must be `Name: value` with a valid HTTP header name and value (value not shown)"
    )]
    BadHeader { position: usize },
    #[error("--api-key must be printable ASCII without control characters (value not shown)")]
    BadApiKey,
    #[error("--api-key and --header 'Authorization: …' both set the Authorization header; give one")]
    TwoAuthorizations,
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
    /// Measured time per level (humantime: 30s, 1m).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, help_heading = "Load")]
    pub duration: Duration,
    /// Unmeasured warm-up before each level.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, help_heading = "Load")]
    pub warmup: Duration,
    /// Closed loop: requests in flight, one level after the other,
    /// comma-separated. Each request is sent when the previous answer is read,
    /// so a slow server also slows the sending (use --rate to see its queue).
    #[arg(long, value_delimiter = ',', default_value = "1,8,64", help_heading = "Load")]
    pub concurrency: Vec<usize>,
    /// Open loop: requests per second, one level after the other,
    /// comma-separated (e.g. 100,200,400). Requests leave on a fixed schedule
    /// whatever the answers, and latency counts from the scheduled send time,
    /// so time spent queued (in the server or in this client) is measured.
    #[arg(long, value_name = "QPS", value_delimiter = ',', conflicts_with = "concurrency", help_heading = "Load")]
    pub rate: Vec<f64>,
    /// Open loop: most requests in flight at once. When reached, sending waits
    /// and the wait counts in latency (the schedule does not move).
    #[arg(long, default_value_t = 1024, requires = "rate", help_heading = "Load")]
    pub max_in_flight: usize,
    /// Most requests per level, in the warm-up and again in the measurement,
    /// whatever the duration.
    #[arg(long, default_value_t = 1_000_000, help_heading = "Load")]
    pub max_requests: u64,
    /// No live progress line on stderr (it is a redrawn line on a terminal,
    /// and a log line every 5 s otherwise).
    #[arg(long, help_heading = "Load")]
    pub no_progress: bool,
    /// k of every search.
    #[arg(long, default_value_t = 10, help_heading = "Requests")]
    pub k: usize,
    /// Ask for the article texts (`with_text: true`), as a chatbot building
    /// its context does; answers are then much larger (see bytes/resp).
    #[arg(long, help_heading = "Requests")]
    pub with_text: bool,
    /// Query vectors: JSONL with an `embedding` array per line. Unset: random
    /// unit vectors of the dimension /v1/stats reports.
    #[arg(long, help_heading = "Requests")]
    pub queries: Option<PathBuf>,
    /// Send each --queries line's `query` as `text`, ranked in this mode
    /// (vector, lexical or hybrid), instead of its `embedding`: text queries
    /// as the chatbot sends them. The server embeds them (turn its query
    /// caches off to measure the embedding every time).
    #[arg(long, value_name = "MODE", requires = "queries", help_heading = "Requests")]
    pub text_mode: Option<crate::query::dto::SearchMode>,
    /// How many random query vectors to cycle through when --queries is unset.
    #[arg(long, default_value_t = 1000, help_heading = "Requests")]
    pub random_queries: usize,
    /// Seed of the random query and synthetic vectors (printed in the report).
    #[arg(long, default_value_t = 42, help_heading = "Requests")]
    pub seed: u64,
    /// A header sent with every request, as `Name: value`; repeatable, e.g.
    /// --header 'Authorization: Bearer …'. Values are never printed.
    #[arg(long = "header", value_name = "NAME: VALUE", help_heading = "Auth")]
    pub headers: Vec<Secret>,
    /// Send `Authorization: Bearer <key>` with every request (a search key,
    /// or an admin key when --synthetic must trigger a reload).
    #[arg(long, env = "SEMSEARCH_BENCH_API_KEY", hide_env_values = true, help_heading = "Auth")]
    pub api_key: Option<Secret>,
    /// Write the report as JSON to this file.
    #[arg(long, help_heading = "Output")]
    pub json: Option<PathBuf>,
    /// Write a latency and QPS chart (SVG) to this file.
    #[arg(long, help_heading = "Output")]
    pub chart: Option<PathBuf>,
    /// First fill the Redis given by --redis with this many random documents,
    /// ask the server to reload, and wait until it holds them.
    #[arg(long, requires = "redis", help_heading = "Synthetic data")]
    pub synthetic: Option<usize>,
    /// Dimension of the synthetic vectors.
    #[arg(long, default_value_t = 384, help_heading = "Synthetic data")]
    pub dim: usize,
    /// Redis to fill with --synthetic (redis://, rediss:// or unix:// URL; not
    /// read from REDIS_URL, so a bench cannot fill production by accident).
    #[arg(long, hide_env_values = true, help_heading = "Synthetic data")]
    pub redis: Option<Secret>,
    /// Value format of the synthetic documents: the chatbot's JSON or a raw f32 blob.
    #[arg(long, value_enum, default_value_t = SyntheticFormat::Json, help_heading = "Synthetic data")]
    pub format: SyntheticFormat,
    /// Replace synthetic keys that exist (otherwise they are kept and counted).
    #[arg(long, help_heading = "Synthetic data")]
    pub overwrite: bool,
    /// Longest wait for the server to hold the synthetic documents.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration, help_heading = "Synthetic data")]
    pub ready_timeout: Duration,
}

/// Validated `semsearch bench` flags.
#[derive(Debug, Clone)]
pub struct BenchSettings {
    /// Base URL; every request goes under it.
    pub url: reqwest::Url,
    pub duration: Duration,
    pub warmup: Duration,
    /// One entry per level, all closed or all open loop.
    pub levels: Vec<Load>,
    pub max_requests: u64,
    /// Show the live progress line.
    pub progress: bool,
    pub k: usize,
    pub with_text: bool,
    /// `--text-mode`: send the queries' texts, ranked in this mode.
    pub text_mode: Option<crate::query::dto::SearchMode>,
    /// Sent with every request (stats, probe, reload, searches). Values are
    /// marked sensitive, so reqwest's `Debug` hides them too.
    pub headers: HeaderMap,
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

/// Highest `--rate` accepted, in requests per second: far above what one
/// client process can send, so it only catches typos (an extra zero or two).
pub const MAX_BENCH_RATE: f64 = 1_000_000.0;

impl BenchSettings {
    /// # Errors
    /// [`BenchArgsError`] naming the flag that is wrong.
    pub fn from_args(args: &BenchArgs) -> Result<Self, BenchArgsError> {
        let url = reqwest::Url::parse(&args.url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or(BenchArgsError::BadUrl)?;
        let levels = if args.rate.is_empty() {
            if args.concurrency.is_empty() || args.concurrency.contains(&0) {
                return Err(BenchArgsError::TooSmall { name: "--concurrency", min: 1 });
            }
            if args.concurrency.iter().any(|&c| c > MAX_BENCH_CONCURRENCY) {
                return Err(BenchArgsError::TooLarge { name: "--concurrency", max: MAX_BENCH_CONCURRENCY });
            }
            args.concurrency.iter().map(|&concurrency| Load::Closed { concurrency }).collect()
        } else {
            if args.rate.iter().any(|r| !(r.is_finite() && *r > 0.0 && *r <= MAX_BENCH_RATE)) {
                return Err(BenchArgsError::BadRate { max: MAX_BENCH_RATE });
            }
            if args.max_in_flight < 1 {
                return Err(BenchArgsError::TooSmall { name: "--max-in-flight", min: 1 });
            }
            if args.max_in_flight > MAX_BENCH_CONCURRENCY {
                return Err(BenchArgsError::TooLarge { name: "--max-in-flight", max: MAX_BENCH_CONCURRENCY });
            }
            args.rate.iter().map(|&rate_qps| Load::Open { rate_qps, max_in_flight: args.max_in_flight }).collect()
        };
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
            levels,
            max_requests: args.max_requests.max(1),
            progress: !args.no_progress,
            k: args.k,
            with_text: args.with_text,
            text_mode: args.text_mode,
            headers: headers(&args.headers, args.api_key.as_ref())?,
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

/// The `--header` and `--api-key` flags as one header map, every value
/// marked sensitive.
fn headers(raw: &[Secret], api_key: Option<&Secret>) -> Result<HeaderMap, BenchArgsError> {
    let mut map = HeaderMap::new();
    for (i, header) in raw.iter().enumerate() {
        let bad = || BenchArgsError::BadHeader { position: i + 1 };
        let (name, value) = header.expose().split_once(':').ok_or_else(bad)?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    if let Some(key) = api_key {
        if map.contains_key(AUTHORIZATION) {
            return Err(BenchArgsError::TwoAuthorizations);
        }
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", key.expose().trim())).map_err(|_| BenchArgsError::BadApiKey)?;
        value.set_sensitive(true);
        map.insert(AUTHORIZATION, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> Result<Result<BenchSettings, BenchArgsError>, clap::Error> {
        let cli = Cli::try_parse_from(["semsearch", "bench", "--url", "http://127.0.0.1:1"].iter().chain(args))?;
        match cli.command {
            Some(Command::Bench(args)) => Ok(BenchSettings::from_args(&args)),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn rates_make_open_loop_levels_and_exclude_concurrency() {
        let open = parse(&["--rate", "50,100.5", "--max-in-flight", "16"]).expect("parses").expect("valid");
        let both = parse(&["--rate", "50", "--concurrency", "4"]);

        assert_eq!(
            open.levels,
            [Load::Open { rate_qps: 50.0, max_in_flight: 16 }, Load::Open { rate_qps: 100.5, max_in_flight: 16 }]
        );
        assert!(both.is_err(), "--rate and --concurrency together are refused");
    }

    #[test]
    fn without_a_rate_the_levels_are_closed_loop() {
        let closed = parse(&[]).expect("parses").expect("valid");

        let got: Vec<Load> = closed.levels;

        assert_eq!(got, [1, 8, 64].map(|concurrency| Load::Closed { concurrency }));
    }

    #[test]
    fn a_rate_must_be_positive_and_finite() {
        for rate in ["--rate=0", "--rate=-5", "--rate=NaN", "--rate=inf", "--rate=2000000"] {
            let got = parse(&[rate]).expect("parses as a number");

            assert!(matches!(got, Err(BenchArgsError::BadRate { .. })), "{rate}: {got:?}");
        }
    }

    #[test]
    fn headers_and_the_api_key_are_sent_but_never_shown() {
        let s = parse(&["--header", "X-Tenant:  blue ", "--api-key", "s3cret"]).expect("parses").expect("valid");

        assert_eq!(s.headers.get("x-tenant").map(HeaderValue::as_bytes), Some(&b"blue"[..]));
        assert_eq!(s.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes), Some(&b"Bearer s3cret"[..]));
        assert!(s.headers.values().all(HeaderValue::is_sensitive));
        assert!(!format!("{s:?}").contains("s3cret"), "Debug hides the key");
    }

    #[test]
    fn a_malformed_header_is_named_by_position_without_its_value() {
        let got = parse(&["--header", "A: 1", "--header", "no colon here"]).expect("parses");

        let e = got.expect_err("refused");

        assert!(matches!(e, BenchArgsError::BadHeader { position: 2 }), "{e:?}");
        assert!(!e.to_string().contains("no colon"), "{e}");
    }

    #[test]
    fn the_api_key_and_an_authorization_header_are_not_both_accepted() {
        let got = parse(&["--header", "Authorization: Bearer a", "--api-key", "b"]).expect("parses");

        assert!(matches!(got, Err(BenchArgsError::TwoAuthorizations)), "{got:?}");
    }
}
