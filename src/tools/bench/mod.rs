//! `semsearch bench`: a load generator for a running semsearch.
//!
//! Each level loads `POST /v1/search` for a warm-up and then a measured
//! period, in a closed loop (`--concurrency`: so many requests in flight)
//! or an open loop (`--rate`: so many requests per second on a fixed
//! schedule, latency counted from the scheduled send; see [`load`]), and
//! reports every request sent, errors by problem `code`, QPS, latency
//! (min, mean, p50 … p99.9, max) and response bytes. Every loop is bounded
//! twice, by time and by `--max-requests`, and requests go only to the
//! `--url` given, with the `--header`s / `--api-key` given (so a server with
//! API keys can be measured as deployed). Latency is measured on the client:
//! it includes HTTP and JSON work on both sides, and on a small machine the
//! client competes with the server for the same cores (say so next to any
//! number).
//!
//! - [`queries`]: the query set (a JSONL file, or seeded random unit vectors);
//! - [`request`]: one request, and the name of its failure;
//! - [`load`]: the request loops and the per-level numbers;
//! - [`progress`]: the live progress line;
//! - [`report`]: the report (table and JSON);
//! - [`chart`]: the SVG latency and QPS chart;
//! - [`settings`]: the flags and their validated form;
//! - [`synthetic`]: filling a Redis with N random documents for scale tests.
//!
//! Not for production use against someone else's server: it sends as fast
//! as it is told to.

pub mod chart;
pub mod load;
pub mod progress;
pub mod queries;
pub mod report;
pub mod request;
pub mod settings;
pub mod synthetic;

use std::{path::PathBuf, sync::Arc, time::Duration};

use bytes::Bytes;
use serde::Deserialize;
use thiserror::Error;
use tokio::time::Instant;
use tracing::info;

pub use synthetic::SyntheticFormat;

pub use settings::{BenchArgs, BenchSettings, SyntheticSettings};

use crate::tools::seed::SeedError;
use load::Load;
use progress::{Live, Progress};
use report::{BenchReport, ServerInfo};

/// Longest a single request may take before it counts as a `client_timeout` error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Error)]
pub enum HarnessError {
    #[error("request to {url} failed")]
    Http { url: String, source: reqwest::Error },
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("cannot read the queries in {path}")]
    QueriesIo { path: PathBuf, source: std::io::Error },
    #[error("{path} line {line_no}: expected a JSON object with an \"embedding\" array of numbers")]
    BadQuery { path: PathBuf, line_no: usize },
    #[error("the query set is empty")]
    NoQueries,
    #[error("query {index} has {got} dimensions but the index has {expected}")]
    QueryDimension { index: usize, expected: usize, got: usize },
    #[error("filling Redis with synthetic documents failed")]
    Seed(#[from] SeedError),
    #[error("the server holds {got} documents after {waited_secs} s; expected at least {expected}")]
    NotLoaded { expected: usize, got: usize, waited_secs: u64 },
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("drawing the chart failed: {0}")]
    Chart(String),
}

/// The part of `/v1/stats` the harness needs.
#[derive(Debug, Deserialize)]
struct Stats {
    documents: usize,
    dimension: usize,
    kernel: String,
    index_version: u64,
    /// Absent on servers older than issue 15.
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    git_sha: Option<String>,
}

/// Runs the whole benchmark: optional synthetic fill, then every level.
///
/// # Errors
/// [`HarnessError`] when the server cannot be reached, a query does not fit
/// the index, or the first probe request is refused. Errors during the
/// measured loops are counted in the report, not returned.
pub async fn run(settings: &BenchSettings) -> Result<BenchReport, HarnessError> {
    let max_in_flight = settings
        .levels
        .iter()
        .map(|l| match *l {
            Load::Closed { concurrency } => concurrency,
            Load::Open { max_in_flight, .. } => max_in_flight,
        })
        .max()
        .unwrap_or(1);
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(max_in_flight)
        .default_headers(settings.headers.clone())
        .build()
        .map_err(|source| HarnessError::Http { url: settings.url.to_string(), source })?;
    let stats_url = join(&settings.url, "v1/stats");
    if let Some(synthetic) = &settings.synthetic {
        let report = synthetic::fill(synthetic, settings.seed).await?;
        info!(written = report.written, skipped = report.skipped_existing, "synthetic documents in Redis");
        reload_and_wait(&client, settings, synthetic.docs).await?;
    }
    let stats: Stats = get_json(&client, &stats_url).await?;

    let texts = match (&settings.queries, settings.text_mode) {
        (Some(path), Some(_)) => Some(queries::texts_from_file(path)?),
        _ => None,
    };
    let (queries, described) = match &settings.queries {
        Some(path) => (queries::from_file(path)?, format!("file {}", path.display())),
        None => (
            queries::random(settings.random_queries, stats.dimension, settings.seed),
            format!("{} random unit vectors, seed {}", settings.random_queries, settings.seed),
        ),
    };
    if queries.is_empty() {
        return Err(HarnessError::NoQueries);
    }
    if let Some((index, q)) = queries.iter().enumerate().find(|(_, q)| q.len() != stats.dimension) {
        return Err(HarnessError::QueryDimension { index, expected: stats.dimension, got: q.len() });
    }
    let bodies: Arc<[Bytes]> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let text = texts.as_ref().and_then(|texts| texts.get(i));
            let body = match (text, settings.text_mode) {
                (Some(text), Some(mode)) => serde_json::json!({
                    "text": text, "mode": mode, "k": settings.k, "with_text": settings.with_text,
                }),
                _ => serde_json::json!({"vector": q, "k": settings.k, "with_text": settings.with_text}),
            };
            Bytes::from(serde_json::to_vec(&body).expect("a JSON value of floats, ints and bools always serializes"))
        })
        .collect();

    let search_url: Arc<str> = join(&settings.url, "v1/search").into();
    probe(&client, &search_url, &bodies[0]).await?;
    let started_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let progress = Progress::new(settings.progress);
    let per_level = settings.warmup + settings.duration;
    info!(
        levels = settings.levels.len(),
        planned_s = (per_level * settings.levels.len() as u32).as_secs(),
        url = %settings.url,
        "benchmark starts"
    );
    let live = Arc::new(Live::default());
    let mut levels = Vec::with_capacity(settings.levels.len());
    for &load in &settings.levels {
        let send = {
            let (client, url, bodies) = (client.clone(), Arc::clone(&search_url), Arc::clone(&bodies));
            move |n: u64| {
                let (client, url) = (client.clone(), Arc::clone(&url));
                let body = bodies[(n % bodies.len() as u64) as usize].clone();
                async move { request::post_json(&client, &url, body).await }
            }
        };
        let config = load::LevelConfig {
            load,
            warmup: settings.warmup,
            duration: settings.duration,
            max_requests: settings.max_requests,
        };
        let level = load::run_level(send, config, &live, progress).await;
        progress.level_done(&level.summary());
        levels.push(level);
    }
    Ok(BenchReport {
        url: settings.url.to_string(),
        started_at,
        cpu: report::cpu_model(),
        cores: std::thread::available_parallelism().map_or(0, usize::from),
        server: ServerInfo {
            documents: stats.documents,
            dimension: stats.dimension,
            kernel: stats.kernel,
            index_version: stats.index_version,
            version: stats.version,
            git_sha: stats.git_sha,
        },
        k: settings.k,
        with_text: settings.with_text,
        headers: settings.headers.keys().map(|name| name.as_str().to_owned()).collect(),
        queries: described,
        query_count: queries.len(),
        warmup_s: settings.warmup.as_secs_f64(),
        duration_s: settings.duration.as_secs_f64(),
        max_requests: settings.max_requests,
        levels,
    })
}

/// Writes the `--json` and `--chart` files the settings ask for.
///
/// # Errors
/// [`HarnessError::Write`] or [`HarnessError::Chart`].
pub fn write_outputs(settings: &BenchSettings, report: &BenchReport) -> Result<(), HarnessError> {
    if let Some(path) = &settings.json {
        let json = serde_json::to_vec_pretty(report).expect("the report is plain data");
        std::fs::write(path, json).map_err(|source| HarnessError::Write { path: path.clone(), source })?;
    }
    if let Some(path) = &settings.chart {
        chart::write_svg(report, path)?;
    }
    Ok(())
}

fn join(base: &reqwest::Url, path: &str) -> String {
    format!("{}/{path}", base.as_str().trim_end_matches('/'))
}

async fn get_json<T: serde::de::DeserializeOwned>(client: &reqwest::Client, url: &str) -> Result<T, HarnessError> {
    let http = |source| HarnessError::Http { url: url.to_owned(), source };
    let res = client.get(url).send().await.map_err(http)?;
    let status = res.status();
    if !status.is_success() {
        let body = res.text().await.unwrap_or_default();
        return Err(HarnessError::Status { url: url.to_owned(), status: status.as_u16(), body });
    }
    res.json().await.map_err(http)
}

/// One request before measuring, so a misconfiguration (wrong dimension,
/// not ready) is one clear error instead of a report full of failures.
async fn probe(client: &reqwest::Client, url: &str, body: &Bytes) -> Result<(), HarnessError> {
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone())
        .send()
        .await
        .map_err(|source| HarnessError::Http { url: url.to_owned(), source })?;
    let status = res.status();
    if status.is_success() {
        return Ok(());
    }
    let body = res.text().await.unwrap_or_default();
    Err(HarnessError::Status { url: url.to_owned(), status: status.as_u16(), body })
}

/// Asks the server to reload (allowed on loopback; elsewhere the change feed
/// and the reconcile pick the documents up) and waits until it holds at
/// least `expected` documents, polling `/v1/stats` (bounded by
/// `ready_timeout`).
async fn reload_and_wait(
    client: &reqwest::Client,
    settings: &BenchSettings,
    expected: usize,
) -> Result<(), HarnessError> {
    let reload_url = join(&settings.url, "v1/admin/reload");
    match client.post(&reload_url).send().await {
        Ok(res) => info!(status = res.status().as_u16(), "asked the server to reload"),
        Err(e) => info!(error.message = %e, "reload request failed; waiting for the change feed"),
    }
    let stats_url = join(&settings.url, "v1/stats");
    let started = Instant::now();
    let mut got = 0;
    while started.elapsed() < settings.ready_timeout {
        if let Ok(stats) = get_json::<Stats>(client, &stats_url).await {
            got = stats.documents;
            if got >= expected {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(HarnessError::NotLoaded { expected, got, waited_secs: started.elapsed().as_secs() })
}
