//! The shards behind the router and how one of their replicas is called.
//!
//! Each call goes to one replica of one shard: replicas are taken in turn
//! (round robin), those that failed recently last. A replica fails a call by
//! not answering within the per-shard timeout, by a connection error, or by
//! a 5xx (`not_ready`, `overloaded`, …); the call then moves on to the next
//! replica, and the failed one is passed over for [`DOWN_FOR`]. A 4xx is an
//! answer (the request is wrong, and would be on every replica) and goes
//! back to the client. Only when every replica of a shard failed is the
//! shard unavailable: the router then answers 503 `shard_unavailable`,
//! never a partial result.

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use reqwest::{header, Method, StatusCode};
use tracing::{debug, warn};

use crate::{index::now_ms, secret::Secret};

/// How long a replica that failed a call is tried only after the others.
pub const DOWN_FOR: Duration = Duration::from_secs(2);

/// One replica: a semsearch serving one shard.
#[derive(Debug)]
pub struct Replica {
    /// Base URL without a trailing slash, e.g. `http://shard-0-a:8080`.
    pub base: String,
    /// Until when (ms since the epoch) this replica is tried last; 0: healthy.
    down_until_ms: AtomicU64,
}

impl Replica {
    pub fn new(base: &str) -> Self {
        Self { base: base.trim_end_matches('/').to_owned(), down_until_ms: AtomicU64::new(0) }
    }

    pub fn is_healthy(&self) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) <= now_ms()
    }
}

/// The replicas of one shard.
#[derive(Debug)]
pub struct ShardGroup {
    pub replicas: Vec<Replica>,
    next: AtomicUsize,
}

/// A replica's answer that the router uses or passes on (2xx or 4xx).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<header::HeaderValue>,
    pub body: Bytes,
    /// Time from sending to the whole body, on the replica that answered.
    pub round_trip: Duration,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }
}

/// No replica of `shard` answered.
#[derive(Debug, thiserror::Error)]
#[error("shard {shard}: all {replicas} replicas failed")]
pub struct Unavailable {
    pub shard: usize,
    pub replicas: usize,
}

/// Calls, retries and failures, for `/v1/stats` and `/metrics`.
#[derive(Debug, Default)]
pub struct CallCounters {
    pub calls: AtomicU64,
    /// Attempts that failed and moved on to another replica (or gave up).
    pub failed_attempts: AtomicU64,
    /// Calls that found no replica answering.
    pub unavailable: AtomicU64,
}

/// Every shard, in shard order (shard `i` serves `SEMSEARCH_SHARD=i/n`).
#[derive(Debug)]
pub struct Shards {
    pub groups: Vec<ShardGroup>,
    http: reqwest::Client,
    timeout: Duration,
    /// Sent as `Authorization: Bearer` to the replicas, when they need a key.
    api_key: Option<Secret>,
    pub counters: Arc<CallCounters>,
}

impl Shards {
    /// # Errors
    /// When the HTTP client cannot be built (no TLS backend).
    pub fn new(groups: &[Vec<String>], timeout: Duration, api_key: Option<Secret>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
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
        Ok(Self { groups, http, timeout, api_key, counters: Arc::default() })
    }

    pub fn count(&self) -> usize {
        self.groups.len()
    }

    /// Sends one request to `shard`, replica after replica, until one
    /// answers with a 2xx or 4xx.
    ///
    /// # Errors
    /// [`Unavailable`] when every replica failed.
    pub async fn call(
        &self,
        shard: usize,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, Unavailable> {
        self.counters.calls.fetch_add(1, Ordering::Relaxed);
        let group = &self.groups[shard];
        let n = group.replicas.len();
        let start = group.next.fetch_add(1, Ordering::Relaxed);
        let mut order: Vec<&Replica> = (0..n).map(|i| &group.replicas[(start + i) % n]).collect();
        // Healthy replicas first, in turn; recently failed ones as a last resort.
        order.sort_by_key(|r| !r.is_healthy());
        for replica in order {
            match self.attempt(replica, method.clone(), path, body.clone()).await {
                Ok(reply) => {
                    replica.down_until_ms.store(0, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(reason) => {
                    self.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    replica.down_until_ms.store(now_ms() + DOWN_FOR.as_millis() as u64, Ordering::Relaxed);
                    debug!(shard, replica = %replica.base, reason, "replica failed; trying the next");
                }
            }
        }
        self.counters.unavailable.fetch_add(1, Ordering::Relaxed);
        warn!(shard, replicas = n, "no replica of the shard answered");
        Err(Unavailable { shard, replicas: n })
    }

    async fn attempt(
        &self,
        replica: &Replica,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, String> {
        let started = Instant::now();
        let mut req = self.http.request(method, format!("{}{}", replica.base, path)).timeout(self.timeout);
        if let Some(key) = &self.api_key {
            req = req.bearer_auth(key.expose());
        }
        if let Some(body) = body {
            req = req.header(header::CONTENT_TYPE, "application/json").body(body);
        }
        let res = req.send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(format!("answered {status}"));
        }
        let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
        let body = res.bytes().await.map_err(|e| e.to_string())?;
        Ok(Reply { status, content_type, body, round_trip: started.elapsed() })
    }
}
