//! The request loops of one level, and its numbers.
//!
//! Two ways to load a server ([`Load`]):
//!
//! | mode   | who decides when a request leaves            | latency counts from      |
//! |--------|----------------------------------------------|--------------------------|
//! | closed | the previous answer of the same worker        | the actual send          |
//! | open   | a fixed schedule: request `n` is due at `n / rate` | the scheduled send time |
//!
//! A closed loop keeps `concurrency` requests in flight; a slow server slows
//! the sending down, so queueing hides from it (coordinated omission). An
//! open loop sends on schedule whatever the answers, at most `max_in_flight`
//! at once; when that cap or the client itself holds a request back, the
//! delay still counts, because latency is measured from when the request was
//! due. The open loop sends exactly `ceil(rate × duration)` requests (or
//! `max_requests`), however slow the server is.
//!
//! Every loop is bounded by time and by `max_requests`; a request in flight
//! at the deadline still completes (bounded by the client's timeout) and is
//! counted. `requests` is every request sent, `ok + errors`.
//!
//! The loops are generic over the request (a closure from request number to
//! its outcome), so the scheduling is tested under paused tokio time without
//! a server.

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use serde::Serialize;
use tokio::{
    sync::Semaphore,
    task::{JoinError, JoinSet},
    time::Instant,
};

use super::{
    progress::{LevelSummary, Live, Progress},
    request::Failure,
};

/// How a level loads the server.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Load {
    /// `concurrency` workers, each sending its next request when the previous
    /// answer has been read.
    Closed { concurrency: usize },
    /// `rate_qps` requests per second on a fixed schedule, at most
    /// `max_in_flight` unanswered at once.
    Open { rate_qps: f64, max_in_flight: usize },
}

impl Load {
    /// The level's value on its axis: concurrency, or requests per second.
    pub fn x(&self) -> f64 {
        match *self {
            Load::Closed { concurrency } => concurrency as f64,
            Load::Open { rate_qps, .. } => rate_qps,
        }
    }

    /// `concurrency 8` or `rate 200/s`, for progress lines and the table.
    pub fn label(&self) -> String {
        match *self {
            Load::Closed { concurrency } => format!("concurrency {concurrency}"),
            Load::Open { rate_qps, .. } => format!("rate {rate_qps}/s"),
        }
    }
}

/// How one level runs.
#[derive(Debug, Clone, Copy)]
pub struct LevelConfig {
    pub load: Load,
    /// Sent first and not measured (connections, caches, CPU clocks).
    pub warmup: Duration,
    pub duration: Duration,
    /// Bound on the requests of the warm-up and, separately, of the measurement.
    pub max_requests: u64,
}

/// Latencies in milliseconds, over successful requests (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    pub min_ms: f64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// How often one kind of failure happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailureCount {
    #[serde(flatten)]
    pub failure: Failure,
    pub count: u64,
}

/// The numbers of one level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelReport {
    #[serde(flatten)]
    pub load: Load,
    /// Every request sent in the measured period: `ok + errors`.
    pub requests: u64,
    /// Requests answered 2xx and read in full.
    pub ok: u64,
    pub errors: u64,
    /// The errors by problem `code` (or status, or client-side cause), most
    /// frequent first.
    pub errors_by_kind: Vec<FailureCount>,
    /// Wall time of the measured period, from its start until the last answer.
    pub elapsed_s: f64,
    /// Successful requests per second of `elapsed_s`.
    pub qps: f64,
    /// Body bytes of the successful answers, summed (headers not included).
    pub response_bytes: u64,
    /// `response_bytes / ok`; `None` when nothing succeeded.
    pub mean_response_bytes: Option<f64>,
    /// Open loop only: the longest a request left after its scheduled time
    /// (the `max_in_flight` cap was reached, or the client could not keep
    /// up). Already included in the latencies; large values mean the client,
    /// not only the server, limited the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_send_lag_ms: Option<f64>,
    /// `None` when no request succeeded.
    pub latency: Option<Latency>,
}

impl LevelReport {
    /// The line `progress` leaves when the level is done.
    pub fn summary(&self) -> LevelSummary {
        LevelSummary {
            label: self.load.label(),
            requests: self.requests,
            errors: self.errors,
            qps: self.qps,
            p99_ms: self.latency.map(|l| l.p99_ms),
        }
    }
}

/// What the loops collect; merged across workers.
#[derive(Debug, Default)]
struct Outcome {
    latencies_us: Vec<u64>,
    errors: BTreeMap<Failure, u64>,
    response_bytes: u64,
    max_send_lag: Option<Duration>,
}

impl Outcome {
    fn record(&mut self, latency: Duration, result: Result<u64, Failure>) {
        match result {
            Ok(bytes) => {
                self.latencies_us.push(latency.as_micros().try_into().unwrap_or(u64::MAX));
                self.response_bytes += bytes;
            }
            Err(failure) => *self.errors.entry(failure).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        for (failure, n) in other.errors {
            *self.errors.entry(failure).or_default() += n;
        }
        self.response_bytes += other.response_bytes;
        self.max_send_lag = self.max_send_lag.max(other.max_send_lag);
    }

    fn panicked(&mut self, _: JoinError) {
        *self.errors.entry(Failure::BenchPanicked).or_default() += 1;
    }
}

/// Sends request number `n` and reads its answer: the body bytes, or why not.
pub trait SendRequest: Fn(u64) -> Self::Fut + Clone + Send + Sync + 'static {
    type Fut: Future<Output = Result<u64, Failure>> + Send + 'static;
}

impl<F, Fut> SendRequest for F
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, Failure>> + Send + 'static,
{
    type Fut = Fut;
}

/// Warm-up, then the measured period, each shown by `progress` from `live`
/// (reset for each phase).
pub async fn run_level(
    send: impl SendRequest,
    config: LevelConfig,
    live: &Arc<Live>,
    progress: Progress,
) -> LevelReport {
    let label = config.load.label();
    if !config.warmup.is_zero() {
        live.reset();
        let watch = progress.watch(label.clone(), "warm-up", config.warmup, Arc::clone(live));
        drive(&send, config.load, config.warmup, config.max_requests, live).await;
        watch.finish().await;
    }
    live.reset();
    let watch = progress.watch(label, "measuring", config.duration, Arc::clone(live));
    let started = Instant::now();
    let outcome = drive(&send, config.load, config.duration, config.max_requests, live).await;
    let elapsed = started.elapsed();
    watch.finish().await;
    summarize(config.load, outcome, elapsed)
}

async fn drive(
    send: &impl SendRequest,
    load: Load,
    duration: Duration,
    max_requests: u64,
    live: &Arc<Live>,
) -> Outcome {
    match load {
        Load::Closed { concurrency } => closed(send, concurrency.max(1), duration, max_requests, live).await,
        Load::Open { rate_qps, max_in_flight } => {
            open(send, rate_qps, max_in_flight.max(1), duration, max_requests, live).await
        }
    }
}

async fn closed(
    send: &impl SendRequest,
    concurrency: usize,
    duration: Duration,
    max_requests: u64,
    live: &Arc<Live>,
) -> Outcome {
    let deadline = Instant::now() + duration;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (send, next, live) = (send.clone(), Arc::clone(&next), Arc::clone(live));
        workers.spawn(async move {
            let mut outcome = Outcome::default();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests {
                    break;
                }
                live.sent.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let result = send(n).await;
                live.finished(result.is_ok());
                outcome.record(sent.elapsed(), result);
            }
            outcome
        });
    }
    let mut total = Outcome::default();
    while let Some(done) = workers.join_next().await {
        match done {
            Ok(outcome) => total.merge(outcome),
            Err(e) => total.panicked(e),
        }
    }
    total
}

async fn open(
    send: &impl SendRequest,
    rate_qps: f64,
    max_in_flight: usize,
    duration: Duration,
    max_requests: u64,
    live: &Arc<Live>,
) -> Outcome {
    let start = Instant::now();
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let mut in_flight = JoinSet::new();
    let mut total = Outcome::default();
    let reap = |total: &mut Outcome, done: Result<(Duration, Result<u64, Failure>), JoinError>| match done {
        Ok((latency, result)) => total.record(latency, result),
        Err(e) => total.panicked(e),
    };
    for n in 0..max_requests {
        let offset = n as f64 / rate_qps;
        if offset >= duration.as_secs_f64() {
            break;
        }
        let due = start + Duration::from_secs_f64(offset);
        tokio::time::sleep_until(due).await;
        let permit = Arc::clone(&slots).acquire_owned().await.expect("the semaphore is never closed");
        total.max_send_lag = total.max_send_lag.max(Some(due.elapsed()));
        live.sent.fetch_add(1, Ordering::Relaxed);
        let (send, live) = (send.clone(), Arc::clone(live));
        in_flight.spawn(async move {
            let result = send(n).await;
            drop(permit);
            live.finished(result.is_ok());
            (due.elapsed(), result)
        });
        while let Some(done) = in_flight.try_join_next() {
            reap(&mut total, done);
        }
    }
    while let Some(done) = in_flight.join_next().await {
        reap(&mut total, done);
    }
    total
}

fn summarize(load: Load, mut outcome: Outcome, elapsed: Duration) -> LevelReport {
    outcome.latencies_us.sort_unstable();
    let ok = outcome.latencies_us.len() as u64;
    let errors = outcome.errors.values().sum();
    let secs = elapsed.as_secs_f64();
    let mut errors_by_kind: Vec<FailureCount> =
        outcome.errors.into_iter().map(|(failure, count)| FailureCount { failure, count }).collect();
    errors_by_kind.sort_by_key(|e| std::cmp::Reverse(e.count));
    LevelReport {
        load,
        requests: ok + errors,
        ok,
        errors,
        errors_by_kind,
        elapsed_s: secs,
        qps: if secs > 0.0 { ok as f64 / secs } else { 0.0 },
        response_bytes: outcome.response_bytes,
        mean_response_bytes: (ok > 0).then(|| outcome.response_bytes as f64 / ok as f64),
        max_send_lag_ms: match load {
            Load::Open { .. } => Some(outcome.max_send_lag.unwrap_or_default().as_secs_f64() * 1000.0),
            Load::Closed { .. } => None,
        },
        latency: latency(&outcome.latencies_us),
    }
}

/// Latencies of sorted microsecond samples; percentiles by nearest rank.
fn latency(sorted_us: &[u64]) -> Option<Latency> {
    let (first, last) = (*sorted_us.first()?, *sorted_us.last()?);
    let ms = |us: u64| us as f64 / 1000.0;
    let rank = |q: f64| sorted_us[((q * sorted_us.len() as f64).ceil() as usize).clamp(1, sorted_us.len()) - 1];
    let mean = sorted_us.iter().map(|&us| us as f64).sum::<f64>() / sorted_us.len() as f64;
    Some(Latency {
        min_ms: ms(first),
        mean_ms: mean / 1000.0,
        p50_ms: ms(rank(0.50)),
        p95_ms: ms(rank(0.95)),
        p99_ms: ms(rank(0.99)),
        p999_ms: ms(rank(0.999)),
        max_ms: ms(last),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let us: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();

        let l = latency(&us).expect("non-empty");

        assert_eq!(
            (l.min_ms, l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms),
            (1.0, 500.0, 950.0, 990.0, 999.0, 1000.0)
        );
        assert!((l.mean_ms - 500.5).abs() < 1e-9);
    }

    #[test]
    fn one_sample_is_every_percentile_and_none_gives_none() {
        let l = latency(&[2500]).expect("one sample");

        assert_eq!((l.min_ms, l.p50_ms, l.p999_ms, l.max_ms), (2.5, 2.5, 2.5, 2.5));
        assert!(latency(&[]).is_none());
    }

    /// A server that answers in `service` and, for request numbers divisible
    /// by `fail_every`, with a problem.
    fn fake_server(service: Duration, fail_every: u64) -> impl SendRequest {
        move |n: u64| async move {
            tokio::time::sleep(service).await;
            if n % fail_every == fail_every - 1 {
                Err(Failure::Problem { status: 422, code: "zero_vector".to_owned() })
            } else {
                Ok(100)
            }
        }
    }

    fn config(load: Load, duration_ms: u64) -> LevelConfig {
        LevelConfig {
            load,
            warmup: Duration::ZERO,
            duration: Duration::from_millis(duration_ms),
            max_requests: 1_000_000,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_open_loop_sends_on_schedule_however_slow_the_server_is() {
        // Arrange: 100/s for 1 s against a server that needs 50 ms per answer.
        let live = Arc::new(Live::default());
        let load = Load::Open { rate_qps: 100.0, max_in_flight: 1000 };

        // Act
        let report =
            run_level(fake_server(Duration::from_millis(50), u64::MAX), config(load, 1000), &live, Progress::Off).await;

        // Assert: 100 sent, every latency is the service time, no request late.
        assert_eq!((report.requests, report.ok, report.errors), (100, 100, 0), "{report:?}");
        let l = report.latency.expect("successes");
        assert_eq!((l.min_ms, l.max_ms), (50.0, 50.0), "{l:?}");
        assert_eq!(report.max_send_lag_ms, Some(0.0));
        assert_eq!(report.response_bytes, 100 * 100);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_latency_counts_from_the_due_time_when_the_cap_holds_requests_back() {
        // Arrange: one slot, 100/s for 100 ms (10 requests), 50 ms per answer.
        // Request n is due at 10n ms but can only leave at 50n ms.
        let live = Arc::new(Live::default());
        let load = Load::Open { rate_qps: 100.0, max_in_flight: 1 };

        // Act
        let report =
            run_level(fake_server(Duration::from_millis(50), u64::MAX), config(load, 100), &live, Progress::Off).await;

        // Assert: latency of request n is 50(n+1) - 10n = 50 + 40n ms.
        assert_eq!(report.requests, 10);
        let l = report.latency.expect("successes");
        assert_eq!((l.min_ms, l.max_ms), (50.0, 50.0 + 40.0 * 9.0), "{l:?}");
        assert_eq!(report.max_send_lag_ms, Some(40.0 * 9.0));
        assert!((report.elapsed_s - 0.5).abs() < 1e-9, "{}", report.elapsed_s);
    }

    #[tokio::test(start_paused = true)]
    async fn the_closed_loop_waits_for_each_answer_and_measures_from_the_send() {
        // Arrange: 2 workers, 50 ms per answer, 1 s: 20 rounds of 2.
        let live = Arc::new(Live::default());
        let load = Load::Closed { concurrency: 2 };

        // Act
        let report =
            run_level(fake_server(Duration::from_millis(50), u64::MAX), config(load, 1000), &live, Progress::Off).await;

        // Assert
        assert_eq!(report.requests, 40, "{report:?}");
        let l = report.latency.expect("successes");
        assert_eq!((l.min_ms, l.max_ms), (50.0, 50.0));
        assert_eq!(report.max_send_lag_ms, None);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_count_every_send_and_errors_are_grouped_by_code() {
        // Arrange: every 4th request fails.
        let live = Arc::new(Live::default());
        let load = Load::Open { rate_qps: 40.0, max_in_flight: 8 };

        // Act
        let report =
            run_level(fake_server(Duration::from_millis(5), 4), config(load, 1000), &live, Progress::Off).await;

        // Assert
        assert_eq!((report.requests, report.ok, report.errors), (40, 30, 10));
        assert_eq!(
            report.errors_by_kind,
            vec![FailureCount { failure: Failure::Problem { status: 422, code: "zero_vector".to_owned() }, count: 10 }]
        );
        assert_eq!(report.mean_response_bytes, Some(100.0));
        let (sent, ok, failed) = live.snapshot();
        assert_eq!((sent, ok, failed), (40, 30, 10), "the live counters saw the same");
    }

    #[tokio::test(start_paused = true)]
    async fn max_requests_bounds_both_loops_and_the_warmup_is_not_counted() {
        for load in [Load::Closed { concurrency: 3 }, Load::Open { rate_qps: 1000.0, max_in_flight: 3 }] {
            // Arrange
            let live = Arc::new(Live::default());
            let config = LevelConfig {
                load,
                warmup: Duration::from_millis(100),
                duration: Duration::from_secs(10),
                max_requests: 7,
            };

            // Act
            let report = run_level(fake_server(Duration::from_millis(1), u64::MAX), config, &live, Progress::Off).await;

            // Assert: 7 in the warm-up, then 7 measured.
            assert_eq!(report.requests, 7, "{load:?}");
        }
    }
}
