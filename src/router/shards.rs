//! The shards behind the router and how one of their replicas is called.
//!
//! Each call goes to one replica of one shard: replicas are taken in turn
//! (round robin), those that failed recently last. A replica fails a call by
//! not answering within the per-shard timeout, by a connection error, or by
//! a 5xx (`not_ready`, `overloaded`, …); the call then moves on to the next
//! replica, and the failed one is passed over for [`DOWN_FOR`]. A 4xx is an
//! answer (the request is wrong, and would be on every replica) and goes
//! back to the client, but only as our own problem+json ([`Answer::Problem`],
//! decoded and re-encoded). Only when every replica of a shard failed is the
//! shard unavailable: the router then answers 503 `shard_unavailable`,
//! never a partial result.
//!
//! What a replica says is checked like a client's input: redirects are not
//! followed (a 3xx would re-send the body elsewhere), bodies are read up to
//! a byte bound and no further, 2xx bodies go through the typed decoders
//! of [`super::decode`], and anything else (an HTML 400 from a proxy, a
//! truncated or oversized body, duplicated hits) is a failed attempt. A 401
//! or 403 means the router's key does not fit the shard: an operator's
//! error, answered as 503 `shard_misconfigured`, never as a 401 the client
//! could not fix. Replicas that `super::verify` found serving something
//! else than their place in the list are not called at all.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::{header, Method, StatusCode};
use tracing::{debug, warn, Instrument};

use super::decode::{problem_answer, BadAnswer};
use crate::{
    index::now_ms,
    problem::{ApiError, ProblemCode},
    query::shard::ShardProblem,
    secret::Secret,
    telemetry::propagation,
};

/// How long a replica that failed a call is tried only after the others.
pub const DOWN_FOR: Duration = Duration::from_secs(2);

/// One replica: a semsearch serving one shard.
#[derive(Debug)]
pub struct Replica {
    /// Base URL without a trailing slash, e.g. `http://shard-0-a:8080`.
    pub base: String,
    /// Until when (ms since the epoch) this replica is tried last; 0: healthy.
    down_until_ms: AtomicU64,
    /// Set by the last check of `super::verify` that found this replica
    /// serving another shard, count, key space or dimension than its place
    /// in the list says: it is not called until a check passes again.
    misplaced: AtomicBool,
    /// Whether the last shard check got no usable answer from it: a
    /// replica that stays down is logged when it goes down and when it
    /// comes back, not on every `/readyz` (a probe every few seconds).
    check_failing: AtomicBool,
}

/// What a shard check's answer from a replica changed (see
/// [`Replica::note_check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckChange {
    /// It answered before (or was never checked) and does not now.
    Fails,
    /// It failed the last check and answers now.
    Recovers,
    Unchanged,
}

impl Replica {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            down_until_ms: AtomicU64::new(0),
            misplaced: AtomicBool::new(false),
            check_failing: AtomicBool::new(false),
        }
    }

    /// Records whether this check got a usable answer, and what changed.
    pub fn note_check(&self, failed: bool) -> CheckChange {
        match (self.check_failing.swap(failed, Ordering::Relaxed), failed) {
            (false, true) => CheckChange::Fails,
            (true, false) => CheckChange::Recovers,
            _ => CheckChange::Unchanged,
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) <= now_ms()
    }

    pub fn is_misplaced(&self) -> bool {
        self.misplaced.load(Ordering::Relaxed)
    }

    pub fn set_misplaced(&self, misplaced: bool) {
        self.misplaced.store(misplaced, Ordering::Relaxed);
    }
}

/// The replicas of one shard.
#[derive(Debug)]
pub struct ShardGroup {
    pub replicas: Vec<Replica>,
    next: AtomicUsize,
}

/// What a replica answered that the router uses or passes on.
#[derive(Debug)]
pub enum Answer<T> {
    /// A 2xx, decoded and checked.
    Body(T),
    /// A 4xx in our problem+json: the request is wrong on every replica.
    Problem(ShardProblem),
}

/// Why one attempt on one replica failed.
#[derive(Debug)]
pub enum ShardFailure {
    /// No answer in time, a connection error, a 5xx or a 429: the replica
    /// is passed over for [`DOWN_FOR`].
    Down(String),
    /// 401 or 403: the replica refuses the router's key.
    Refused(StatusCode),
    /// An answer the router cannot use (a redirect, too many bytes, an
    /// error that is not our problem+json, a body failing its checks).
    Bad(String),
}

impl std::fmt::Display for ShardFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Down(why) | Self::Bad(why) => f.write_str(why),
            Self::Refused(status) => write!(f, "refused the router's key ({status})"),
        }
    }
}

/// What to tell an operator whose shard `place` refuses the router's key.
pub fn key_refused(place: &str, status: StatusCode) -> String {
    format!(
        "{place} refuses the router's key ({status}); set SEMSEARCH_ROUTER_SHARD_API_KEY to one of the shard's SEMSEARCH_API_KEYS"
    )
}

/// No replica of `shard` gave a usable answer.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: all {replicas} replicas failed")]
pub struct Unavailable {
    pub shard: usize,
    pub replicas: usize,
    /// Some replica refused the router's key (the status it answered).
    pub refused: Option<StatusCode>,
    /// Every replica is misplaced (see [`Replica::is_misplaced`]).
    pub misplaced: bool,
}

impl From<Unavailable> for ApiError {
    fn from(e: Unavailable) -> Self {
        if let Some(status) = e.refused {
            ApiError::ShardMisconfigured(key_refused(&format!("shard {}", e.shard), status))
        } else if e.misplaced {
            ApiError::ShardMisconfigured(format!(
                "no replica of shard {} serves what the shard list says; /readyz says why",
                e.shard
            ))
        } else {
            ApiError::ShardUnavailable { shard: e.shard, replicas: e.replicas }
        }
    }
}

/// Calls, retries and failures, for `/v1/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct CallCounters {
    pub calls: AtomicU64,
    /// Attempts that failed and moved on to another replica (or gave up).
    pub failed_attempts: AtomicU64,
    /// Calls that found no replica answering.
    pub unavailable: AtomicU64,
    /// Attempts whose answer the router could not use (see [`ShardFailure::Bad`]).
    pub bad_answers: AtomicU64,
}

/// Every shard, in shard order (shard `i` serves `SEMSEARCH_SHARD=i/n`).
#[derive(Debug)]
pub struct Shards {
    pub groups: Vec<ShardGroup>,
    http: reqwest::Client,
    timeout: Duration,
    /// Sent as `Authorization: Bearer` to the replicas, when they need a key.
    api_key: Option<Secret>,
    /// Most bytes read of one answer; a longer one is a failed attempt.
    max_answer_bytes: usize,
    pub counters: Arc<CallCounters>,
}

impl Shards {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(
        groups: &[Vec<String>],
        timeout: Duration,
        api_key: Option<Secret>,
        max_answer_bytes: usize,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // A shard's 3xx is a failed attempt: following it would re-send
            // the body (and the router's key) to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .pool_max_idle_per_host(256)
            .tcp_nodelay(true)
            .build()?;
        let groups = groups
            .iter()
            .map(|urls| ShardGroup {
                replicas: urls.iter().map(|u| Replica::new(u)).collect(),
                next: AtomicUsize::new(0),
            })
            .collect();
        Ok(Self { groups, http, timeout, api_key, max_answer_bytes, counters: Arc::default() })
    }

    pub fn count(&self) -> usize {
        self.groups.len()
    }

    /// Sends one request to `shard`, replica after replica, until one
    /// answers with a 2xx that `decode` accepts or with a 4xx problem; with
    /// the round trip (sending to the whole body) on the replica that did.
    ///
    /// # Errors
    /// [`Unavailable`] when every replica failed.
    pub async fn call<T>(
        &self,
        shard: usize,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        decode: impl Fn(&[u8]) -> Result<T, BadAnswer>,
    ) -> Result<(Answer<T>, Duration), Unavailable> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let group = &self.groups[shard];
        let n = group.replicas.len();
        let start = group.next.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<&Replica> =
            (0..n).map(|i| &group.replicas[(start + i) % n]).filter(|r| !r.is_misplaced()).collect();
        let misplaced = order.is_empty();
        // Healthy replicas first, in turn; recently failed ones as a last resort.
        order.sort_by_key(|r| !r.is_healthy());
        let mut refused = None;
        for replica in order {
            match self.attempt(replica, method.clone(), path, body.clone(), &decode).await {
                Ok(answer) => {
                    replica.down_until_ms.store(0, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(failure) => {
                    self.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    match &failure {
                        ShardFailure::Refused(status) => refused = Some(*status),
                        ShardFailure::Bad(_) => {
                            self.counters.bad_answers.fetch_add(1, Ordering::Relaxed);
                        }
                        ShardFailure::Down(_) => {}
                    }
                    replica.down_until_ms.store(now_ms() + DOWN_FOR.as_millis() as u64, Ordering::Relaxed);
                    if matches!(failure, ShardFailure::Down(_)) {
                        debug!(shard, replica = %replica.base, path, reason = %failure, "replica failed; trying the next");
                    } else {
                        warn!(shard, replica = %replica.base, path, reason = %failure, "replica answered what the router cannot use; trying the next");
                    }
                }
            }
        }
        self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
        warn!(shard, replicas = n, "no replica of the shard answered");
        Err(Unavailable { shard, replicas: n, refused, misplaced })
    }

    /// One request to one replica, its answer read up to the byte bound
    /// and checked; for the calls above and `super::verify`'s probes.
    ///
    /// # Errors
    /// [`ShardFailure`] saying why the answer cannot be used.
    pub async fn attempt<T>(
        &self,
        replica: &Replica,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        decode: impl Fn(&[u8]) -> Result<T, BadAnswer>,
    ) -> Result<(Answer<T>, Duration), ShardFailure> {
        // The client span of this call (DEBUG: see `telemetry`); the replica
        // joins its trace through the traceparent header.
        let span = tracing::debug_span!(
            "shard.call",
            otel.name = %format_args!("{method} {path}"),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            server.address = %replica.base,
            http.request.method = %method,
            url.path = path,
            http.response.status_code = tracing::field::Empty,
        );
        let answer = self.attempt_untraced(replica, method, path, body, decode, &span).instrument(span.clone()).await;
        if answer.is_err() {
            span.record("otel.status_code", "error");
        }
        answer
    }

    /// [`Self::attempt`]'s work, inside its span.
    async fn attempt_untraced<T>(
        &self,
        replica: &Replica,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        decode: impl Fn(&[u8]) -> Result<T, BadAnswer>,
        span: &tracing::Span,
    ) -> Result<(Answer<T>, Duration), ShardFailure> {
        let started = Instant::now();
        let mut req = self.http.request(method, format!("{}{}", replica.base, path)).timeout(self.timeout);
        let mut trace_headers = reqwest::header::HeaderMap::new();
        propagation::inject(span, &mut trace_headers);
        if !trace_headers.is_empty() {
            req = req.headers(trace_headers);
        }
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose());
        }
        if let Some(body) = body {
            req = req.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        let mut res = req.send().await.map_err(|e| ShardFailure::Down(e.to_string()))?;
        let status = res.status();
        if !span.is_disabled() {
            span.record("http.response.status_code", status.as_u16());
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(ShardFailure::Down(format!("answered {status}")));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ShardFailure::Refused(status));
        }
        if !status.is_success() && !status.is_client_error() {
            return Err(ShardFailure::Bad(format!("answered {status}; redirects are not followed")));
        }
        let max = self.max_answer_bytes;
        let too_long = || ShardFailure::Bad(format!("answered more than {max} bytes"));
        if res.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_long());
        }
        let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
        // Sized once when the shard says how long (already checked against `max`).
        let mut bytes = Vec::with_capacity(res.content_length().map_or(0, |n| n as usize));
        while let Some(chunk) = res.chunk().await.map_err(|e| ShardFailure::Down(e.to_string()))? {
            if bytes.len() + chunk.len() > max {
                return Err(too_long());
            }
            bytes.extend_from_slice(&chunk);
        }
        let round_trip = started.elapsed();
        if status.is_success() {
            let decoded = decode(&bytes).map_err(|e| ShardFailure::Bad(e.to_string()))?;
            debug!(replica = %replica.base, path, round_trip_us = round_trip.as_micros() as u64, "shard answered");
            return Ok((Answer::Body(decoded), round_trip));
        }
        let problem = problem_answer(status.as_u16(), content_type.as_ref().map(|v| v.as_bytes()), &bytes)
            .map_err(|e| ShardFailure::Bad(format!("answered {status}: {e}")))?;
        match problem.code {
            // A route or method the shard lacks: a node of another version.
            ProblemCode::NotFound | ProblemCode::MethodNotAllowed => Err(ShardFailure::Bad(format!(
                "answered {status} {}: a shard of another version?",
                problem.code.as_str()
            ))),
            ProblemCode::Unauthorized | ProblemCode::Forbidden => Err(ShardFailure::Refused(status)),
            _ => Ok((Answer::Problem(problem), round_trip)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica that stays down is logged once, when it goes down, and
    /// once when it answers again, however often `/readyz` checks it.
    #[test]
    fn a_replica_is_logged_when_it_goes_down_and_when_it_recovers_not_on_every_check() {
        let r = Replica::new("http://shard-0-a:8080/");
        assert_eq!(r.note_check(false), CheckChange::Unchanged, "healthy from the start: nothing to say");
        assert_eq!(r.note_check(true), CheckChange::Fails);
        for _ in 0..5 {
            assert_eq!(r.note_check(true), CheckChange::Unchanged, "still down: no new warning");
        }
        assert_eq!(r.note_check(false), CheckChange::Recovers);
        assert_eq!(r.note_check(false), CheckChange::Unchanged);
        assert_eq!(r.note_check(true), CheckChange::Fails, "down again: warned again");
    }
}
