//! The request loops of one concurrency level, and its numbers.
//!
//! `concurrency` worker tasks share one request counter. Each sends its next
//! request as soon as the previous answer has been read in full, so exactly
//! `concurrency` requests are in flight (closed loop). A worker stops at the
//! deadline or when the counter reaches `max_requests`, whichever is first;
//! a request in flight at the deadline still completes (bounded by the
//! client's timeout) and is counted.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use bytes::Bytes;
use serde::Serialize;
use tokio::{task::JoinSet, time::Instant};

/// How one level runs.
#[derive(Debug, Clone, Copy)]
pub struct LevelConfig {
    pub concurrency: usize,
    /// Sent first and not measured (connections, caches, CPU clocks).
    pub warmup: Duration,
    pub duration: Duration,
    /// Bound on the requests of the warm-up and, separately, of the measurement.
    pub max_requests: u64,
}

/// Latency percentiles, in milliseconds (nearest rank over successful requests).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// The numbers of one level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    pub concurrency: usize,
    /// Requests answered 2xx and read in full.
    pub requests: u64,
    pub errors: u64,
    /// `http_<status>`, `timeout`, `connect`, `body` or `transport`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Wall time of the measured period, from its start until the last worker stopped.
    pub elapsed_s: f64,
    /// Successful requests per second of `elapsed_s`.
    pub qps: f64,
    /// `None` when no request succeeded.
    pub latency: Option<Latency>,
}

#[derive(Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    errors: BTreeMap<String, u64>,
}

/// Warm-up, then the measured period.
pub async fn run_level(client: &reqwest::Client, url: &str, bodies: Arc<[Bytes]>, config: LevelConfig) -> LevelReport {
    let concurrency = config.concurrency.max(1);
    if !config.warmup.is_zero() {
        drive(client, url, Arc::clone(&bodies), concurrency, config.warmup, config.max_requests).await;
    }
    let started = Instant::now();
    let outcome = drive(client, url, bodies, concurrency, config.duration, config.max_requests).await;
    summarize(concurrency, outcome, started.elapsed())
}

async fn drive(
    client: &reqwest::Client,
    url: &str,
    bodies: Arc<[Bytes]>,
    concurrency: usize,
    duration: Duration,
    max_requests: u64,
) -> Outcome {
    let deadline = Instant::now() + duration;
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (client, url, bodies, next) = (client.clone(), url.to_owned(), Arc::clone(&bodies), Arc::clone(&next));
        workers.spawn(async move {
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests {
                    break;
                }
                let body = bodies[(n % bodies.len() as u64) as usize].clone();
                let sent = Instant::now();
                match send(&client, &url, body).await {
                    Ok(()) => outcome.latencies_us.push(sent.elapsed().as_micros() as u64),
                    Err(kind) => *outcome.errors.entry(kind).or_default() += 1,
                }
            }
            outcome
        });
    }
    let mut total = Outcome::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(outcome) => {
                total.latencies_us.extend(outcome.latencies_us);
                for (kind, n) in outcome.errors {
                    *total.errors.entry(kind).or_default() += n;
                }
            }
            Err(_) => *total.errors.entry("worker_panicked".to_owned()).or_default() += 1,
        }
    }
    total
}

/// One request, its answer read in full; the error kind otherwise.
async fn send(client: &reqwest::Client, url: &str, body: Bytes) -> Result<(), String> {
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| error_kind(&e))?;
    let status = res.status();
    // Read the body even for errors, so the connection can be reused.
    let read = res.bytes().await;
    if !status.is_success() {
        return Err(format!("http_{}", status.as_u16()));
    }
    read.map(drop).map_err(|_| "body".to_owned())
}

fn error_kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
    .to_owned()
}

fn summarize(concurrency: usize, mut outcome: Outcome, elapsed: Duration) -> LevelReport {
    outcome.latencies_us.sort_unstable();
    let requests = outcome.latencies_us.len() as u64;
    let errors = outcome.errors.values().sum();
    let secs = elapsed.as_secs_f64();
    LevelReport {
        concurrency,
        requests,
        errors,
        errors_by_kind: outcome.errors,
        elapsed_s: secs,
        qps: if secs > 0.0 { requests as f64 / secs } else { 0.0 },
        latency: latency(&outcome.latencies_us),
    }
}

/// Percentiles of sorted microsecond latencies, by nearest rank.
fn latency(sorted_us: &[u64]) -> Option<Latency> {
    let last = *sorted_us.last()?;
    let ms = |us: u64| us as f64 / 1000.0;
    let rank = |q: f64| sorted_us[((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len()) - 1];
    let mean = sorted_us.iter().sum::<u64>() as f64 / sorted_us.len() as f64;
    Some(Latency {
        p50_ms: ms(rank(0.50)),
        p95_ms: ms(rank(0.95)),
        p99_ms: ms(rank(0.99)),
        max_ms: ms(last),
        mean_ms: mean / 1000.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u64> = (1..=100).map(|i| i * 1000).collect();

        let l = latency(&us).expect("non-empty");

        assert_eq!((l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms), (50.0, 95.0, 99.0, 100.0));
        assert!((l.mean_ms - 50.5).abs() < 1e-9);
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_gives_none() {
        let l = latency(&[2500]).expect("one sample");

        assert_eq!((l.p50_ms, l.p99_ms, l.max_ms), (2.5, 2.5, 2.5));
        assert!(latency(&[]).is_none());
    }
}
