//! [`MemoryBudget`]: the service's own writes (contexts, cached question
//! embeddings) must never make Redis evict the chatbot's keys (issue 22).
//!
//! Redis with `maxmemory` and an evicting `maxmemory-policy` (`allkeys-*`,
//! or `volatile-*`, which also takes the embeddings when they carry a TTL)
//! makes room for every write by evicting *some* key, and the chatbot's
//! `cache:embedding:*` are the bulk of its keys. So under such a policy we
//! write only while Redis stays below
//! `maxmemory × (100 − SEMSEARCH_REDIS_MEMORY_RESERVE_PERCENT) / 100`:
//! [`run_watch`] reads `INFO memory` (`used_memory`, `maxmemory`,
//! `maxmemory_policy`) and `INFO stats` (`evicted_keys`) at start and every
//! `every`; between two readings each write we make is charged against the
//! budget at an estimate of what Redis spends on it ([`charge`]), so a burst
//! of searches cannot overshoot while the next reading is due. A write that
//! does not fit is skipped (the search is served; the chatbot just has no
//! context for it), counted, and the first one after a change is logged.
//!
//! Under `noeviction` (the Redis default) or without `maxmemory`, nothing
//! changes: writes go out, and an OOM refusal is counted as a failed write
//! while searches are still served. On a cluster, every primary is read and
//! the smallest headroom counts (a key may land on any of them).
//!
//! Owns: the reading and its rule. Does not own: the writes themselves
//! (`context`, `query_cache`), which ask [`MemoryBudget::try_spend`].

use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::link::RedisClient;

/// What one `INFO` reading says (the worst primary's, on a cluster).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryReading {
    pub used_memory: u64,
    /// 0: no limit.
    pub maxmemory: u64,
    /// Whether the policy evicts keys to make room (anything but `noeviction`).
    pub evicting: bool,
    pub evicted_keys: u64,
}

impl MemoryReading {
    /// Parses the `key:value` lines of `INFO memory` and `INFO stats`.
    /// Missing fields read as 0 / `noeviction`.
    pub fn parse(info: &str) -> Self {
        let mut reading = Self::default();
        for line in info.lines() {
            let Some((key, value)) = line.trim_end().split_once(':') else { continue };
            match key {
                "used_memory" => reading.used_memory = value.parse().unwrap_or(0),
                "maxmemory" => reading.maxmemory = value.parse().unwrap_or(0),
                "maxmemory_policy" => reading.evicting = value != "noeviction",
                "evicted_keys" => reading.evicted_keys = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        reading
    }

    /// Bytes we may still write: up to `maxmemory × (100 − reserve%)`,
    /// `None` when writes are not limited (no `maxmemory`, or `noeviction`).
    pub fn allowance(&self, reserve_percent: u8) -> Option<i64> {
        if !self.evicting || self.maxmemory == 0 {
            return None;
        }
        let ceiling = self.maxmemory / 100 * u64::from(100 - reserve_percent.min(100));
        Some(ceiling as i64 - self.used_memory as i64)
    }

    /// `maxmemory − used_memory` (negative when over), or `None` without a limit.
    pub fn headroom(&self) -> Option<i64> {
        (self.maxmemory > 0).then(|| self.maxmemory as i64 - self.used_memory as i64)
    }
}

/// Shortest time between two "writes skipped" warnings.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// Longest wait of a writer for the first reading (then it writes unlimited).
const FIRST_READING_WAIT: Duration = Duration::from_secs(2);

/// What Redis spends on one string key: its name and value, plus the
/// dictionary entry, object, string headers and expiry entry (about 100
/// bytes), with the allocator's rounding (~25%). Deliberately on the high side.
pub fn charge(key_bytes: usize, value_bytes: usize) -> i64 {
    ((key_bytes + value_bytes) as i64) * 5 / 4 + 128
}

/// The budget the writers ask and the watcher refills. Cheap to share.
#[derive(Debug)]
pub struct MemoryBudget {
    reserve_percent: u8,
    /// Whether writes are limited now (an evicting policy with maxmemory).
    limited: AtomicBool,
    /// Bytes left until the next reading; only meaningful while `limited`.
    left: AtomicI64,
    /// Writes skipped because they did not fit.
    skipped: AtomicU64,
    /// Whether the last write asked was skipped.
    holding: AtomicBool,
    /// When the last "writes skipped" warning was logged (ms since `born`),
    /// so steady pressure logs once a minute, not at every reading.
    warned_at_ms: AtomicU64,
    born: std::time::Instant,
    reading: std::sync::Mutex<Option<MemoryReading>>,
    /// Set once the first reading was tried (answered or not).
    first_try: tokio::sync::watch::Sender<bool>,
}

impl MemoryBudget {
    pub fn new(reserve_percent: u8) -> Arc<Self> {
        Arc::new(Self {
            reserve_percent: reserve_percent.min(100),
            limited: AtomicBool::new(false),
            left: AtomicI64::new(0),
            skipped: AtomicU64::new(0),
            holding: AtomicBool::new(false),
            warned_at_ms: AtomicU64::new(u64::MAX),
            born: std::time::Instant::now(),
            reading: std::sync::Mutex::new(None),
            first_try: tokio::sync::watch::channel(false).0,
        })
    }

    /// Waits (at most [`FIRST_READING_WAIT`]) until the watcher has tried
    /// its first reading, so the first writes after start are not made blind.
    pub async fn wait_first_reading(&self) {
        let mut tried = self.first_try.subscribe();
        let _ = tokio::time::timeout(FIRST_READING_WAIT, tried.wait_for(|t| *t)).await;
    }

    fn tried(&self) {
        self.first_try.send_replace(true);
    }

    /// Takes a reading into account: the allowance is recomputed from it
    /// (the writes charged so far are in `used_memory` now).
    pub fn observe(&self, reading: MemoryReading) {
        match reading.allowance(self.reserve_percent) {
            Some(allowance) => {
                self.left.store(allowance, Ordering::SeqCst);
                self.limited.store(true, Ordering::SeqCst);
            }
            None => self.limited.store(false, Ordering::SeqCst),
        }
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) = Some(reading);
    }

    /// Whether a write of `key_bytes` + `value_bytes` may go out now; if so
    /// it is charged. `what` names the writer in the log line.
    pub fn try_spend(&self, what: &'static str, key_bytes: usize, value_bytes: usize) -> bool {
        if !self.limited.load(Ordering::SeqCst) {
            return true;
        }
        let cost = charge(key_bytes, value_bytes);
        let fits = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| (left >= cost).then_some(left - cost))
            .is_ok();
        if fits {
            if self.holding.swap(false, Ordering::SeqCst) {
                debug!(writer = what, "Redis has room again below the eviction reserve; our writes resume");
            }
            return true;
        }
        self.skipped.fetch_add(1, Ordering::Relaxed);
        self.holding.store(true, Ordering::SeqCst);
        let now_ms = self.born.elapsed().as_millis() as u64;
        let last = self.warned_at_ms.load(Ordering::Relaxed);
        let due = last == u64::MAX || now_ms.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due && self.warned_at_ms.compare_exchange(last, now_ms, Ordering::SeqCst, Ordering::Relaxed).is_ok() {
            let reading = self.last_reading().unwrap_or_default();
            warn!(
                writer = what,
                used_memory = reading.used_memory,
                maxmemory = reading.maxmemory,
                reserve_percent = self.reserve_percent,
                skipped_so_far = self.skipped(),
                "Redis is near maxmemory under an evicting policy: our writes are skipped so they cannot evict the chatbot's keys (searches are still served; logged at most once a minute)"
            );
        }
        false
    }

    /// Whether the last write asked for was skipped (writes are held back now).
    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::Relaxed)
    }

    /// Writes skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The last reading, if Redis has been read.
    pub fn last_reading(&self) -> Option<MemoryReading> {
        *self.reading.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads Redis's memory state into `budget` now and every `every` until
/// `cancel` fires. A failed reading keeps the last one (and is retried at
/// the next tick); `INFO` refused (renamed away) leaves writes unlimited,
/// with one warning.
pub async fn run_watch(client: RedisClient, budget: Arc<MemoryBudget>, every: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn = None;
    let mut warned = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if conn.is_none() {
            conn = client.connect(every, every).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            budget.tried();
            continue;
        };
        // The default sections hold both `memory` and `stats`: one INFO per primary a tick.
        match c.info_of_primaries("default").await {
            Ok(infos) => {
                let reading = worst(&infos);
                budget.observe(reading);
                budget.tried();
                publish(&budget);
                warned = false;
            }
            Err(e) => {
                if !warned {
                    warn!(error.message = %e, "cannot read Redis INFO; our writes are not limited by Redis memory until it answers");
                    warned = true;
                }
                budget.tried();
                conn = None;
            }
        }
    }
}

/// The reading's gauges for `/metrics` (described in `api::metrics`).
fn publish(budget: &MemoryBudget) {
    let Some(r) = budget.last_reading() else { return };
    metrics::counter!("semsearch_redis_evicted_keys_total").absolute(r.evicted_keys);
    metrics::gauge!("semsearch_redis_used_memory_bytes").set(r.used_memory as f64);
    metrics::gauge!("semsearch_redis_maxmemory_bytes").set(r.maxmemory as f64);
    // Without maxmemory there is no headroom to speak of; -1 says "no limit".
    metrics::gauge!("semsearch_redis_memory_headroom_bytes").set(r.headroom().map_or(-1.0, |h| h as f64));
    metrics::gauge!("semsearch_redis_writes_held").set(if budget.holding() { 1.0 } else { 0.0 });
}

/// The reading of the primary with the least allowance; `evicted_keys` summed.
fn worst(infos: &[String]) -> MemoryReading {
    let mut readings: Vec<MemoryReading> = infos.iter().map(|i| MemoryReading::parse(i)).collect();
    let evicted: u64 = readings.iter().map(|r| r.evicted_keys).sum();
    readings.sort_by_key(|r| r.allowance(0).unwrap_or(i64::MAX));
    let mut reading = readings.first().copied().unwrap_or_default();
    reading.evicted_keys = evicted;
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Memory\r\nused_memory:9000000\r\nused_memory_human:8.58M\r\nmaxmemory:10000000\r\nmaxmemory_policy:allkeys-lru\r\n";

    #[test]
    fn info_is_read_and_the_allowance_keeps_the_reserve() {
        let r = MemoryReading::parse(INFO);
        assert_eq!((r.used_memory, r.maxmemory, r.evicting), (9_000_000, 10_000_000, true));
        assert_eq!(r.allowance(5), Some(500_000), "95% of 10 MB minus 9 MB");
        assert_eq!(r.allowance(20), Some(-1_000_000), "already past the ceiling");
        assert_eq!(r.headroom(), Some(1_000_000));
        let noeviction = MemoryReading::parse(&INFO.replace("allkeys-lru", "noeviction"));
        assert_eq!(noeviction.allowance(5), None, "noeviction: writes as before");
        let unlimited = MemoryReading::parse("used_memory:5\r\nmaxmemory:0\r\nmaxmemory_policy:allkeys-lru\r\n");
        assert_eq!(unlimited.allowance(5), None);
    }

    #[test]
    fn writes_stop_once_the_budget_is_spent_and_resume_after_a_new_reading() {
        let budget = MemoryBudget::new(10);
        assert!(budget.try_spend("test", 10, 1_000_000), "no reading yet: unlimited");
        let reading = MemoryReading { used_memory: 8_990_000, maxmemory: 10_000_000, evicting: true, evicted_keys: 0 };
        budget.observe(reading);

        let spent = (0..100).take_while(|_| budget.try_spend("test", 20, 1000)).count();

        assert_eq!(spent, 7, "10 KB of allowance at 1,403 bytes a write");
        assert_eq!(budget.skipped(), 1);
        budget.observe(MemoryReading { used_memory: 1_000_000, ..reading });
        assert!(budget.try_spend("test", 20, 1000));
    }
}
