//! Keeps the in-memory index in step with Redis without failing a query.
//!
//! One task, the [`Refresher`], owns every change to the published index:
//! the first load, full reloads, per-key updates and expiry sweeps. It
//! builds each new snapshot off to the side and swaps it in atomically, so
//! queries are always answered by a complete old or new version.
//!
//! Triggers, and what they do:
//! - quick key deleted, rewritten or past its deadline (read with PTTL, so we
//!   don't wait for Redis to reclaim it) → full reload, debounced: a burst
//!   gives one reload; a trigger during a reload queues exactly one more;
//! - an embedding key set/deleted/expired → re-read just that key (batched)
//!   and publish a snapshot with it upserted or removed;
//! - a document reaching its own deadline → re-read it the same way (queries
//!   already hide it from the deadline on; see `index`);
//! - the change feed re-armed after a disconnect → full reload (pushes are
//!   at-most-once, and a rewritten value leaves the key set unchanged); the
//!   first load waits for the feed to arm (at most 2 s) so nothing falls
//!   between the two;
//! - FLUSHDB, or every `reconcile_every` → compare a fingerprint of Redis's
//!   key set with the index's; reload on mismatch;
//! - `POST /v1/admin/reload` → immediate full reload.
//!
//! An empty keyspace while we hold documents (FLUSHDB, Redis restarted
//! without its data) is treated as an outage, not as "no articles": the last
//! index keeps serving, `/v1/stats` and `/readyz` say so, and a reload
//! happens as soon as embeddings reappear.

use std::{
    collections::{BTreeSet, HashSet},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use redis::aio::MultiplexedConnection;
use serde::Serialize;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use crate::{
    index::{now_ms, ApplyCounts, Index, SharedIndex},
    store::{
        context::ContextQueue,
        keys::{KeySetFingerprint, KeySpace},
        loader::{self, LoadError, LoadReport, LoadSettings, Loaded},
        watcher::Change,
    },
    telemetry::error_chain,
};

/// Timing of live refresh, as the configuration layer builds it.
#[derive(Debug, Clone)]
pub struct RefreshSettings {
    /// Every this often the key set is compared with Redis's.
    pub reconcile_every: Duration,
    /// A burst of invalidations within this window gives one reload.
    pub reload_debounce: Duration,
    /// Changed keys are collected this long, then applied together.
    pub key_batch: Duration,
}

/// Why a full reload happened; shown in `/v1/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReloadReason {
    Startup,
    /// The change feed came back after a disconnect: anything could have
    /// changed meanwhile (values too, which the key-set fingerprint misses).
    ChangeFeedRearmed,
    QuickKeyChanged,
    QuickKeyExpired,
    KeySetChanged,
    EmbeddingsReappeared,
    Admin,
    Retry,
}

/// The last full reload, for `/v1/stats`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReloadInfo {
    pub reason: ReloadReason,
    pub duration_ms: f64,
    pub documents: usize,
    pub index_version: u64,
    pub finished_at: String,
}

/// What the refresher reports; shared with the API.
#[derive(Debug, Default)]
pub struct RefreshStatus {
    pub reloads: AtomicU64,
    pub reload_failures: AtomicU64,
    pub last_reload: Mutex<Option<ReloadInfo>>,
    pub docs_added: AtomicU64,
    pub docs_updated: AtomicU64,
    pub docs_removed: AtomicU64,
    /// `connecting`, `tracking`, `unavailable` or `reconnecting`.
    pub change_feed: Mutex<&'static str>,
    /// Redis has no embeddings while we serve the last index we had.
    pub redis_empty: AtomicBool,
    /// How the published snapshot was built, published with it: the index
    /// version it belongs to, and its report (counts, skips, duration).
    pub load_report: Mutex<Option<(u64, Arc<LoadReport>)>>,
}

impl RefreshStatus {
    fn set_feed(&self, state: &'static str) {
        *self.change_feed.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub fn change_feed(&self) -> &'static str {
        *self.change_feed.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn last_reload(&self) -> Option<ReloadInfo> {
        self.last_reload.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The report of the published snapshot, with the version it belongs to.
    pub fn load_report(&self) -> Option<(u64, Arc<LoadReport>)> {
        self.load_report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_load_report(&self, version: u64, report: LoadReport) {
        *self.load_report.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, Arc::new(report)));
    }
}

/// A request to the refresher from the API.
#[derive(Debug)]
pub enum Command {
    /// Full reload now; the reply comes when it has been published (or failed).
    Reload(oneshot::Sender<Result<Arc<Index>, String>>),
}

/// Handle used by the API to reach the refresher.
#[derive(Debug, Clone)]
pub struct RefreshHandle {
    pub commands: mpsc::Sender<Command>,
    pub status: Arc<RefreshStatus>,
}

type ReloadResult = Result<Loaded, LoadError>;
type ApplyResult = Result<(Index, ApplyCounts, LoadReport), String>;
type ReconcileResult = Result<(KeySetFingerprint, i64), redis::RedisError>;

/// The task that owns index updates. Built in `app.rs`, run until cancelled.
pub struct Refresher {
    pub client: redis::Client,
    pub source: Source,
    pub timing: RefreshSettings,
    pub shared: Arc<SharedIndex>,
    pub contexts: Option<ContextQueue>,
    pub status: Arc<RefreshStatus>,
    pub changes: mpsc::UnboundedReceiver<Change>,
    pub commands: mpsc::Receiver<Command>,
}

/// Where and how the refresher reads Redis.
#[derive(Debug, Clone)]
pub struct Source {
    /// Printable address (no credentials), for failure messages.
    pub redis_display: String,
    pub keys: KeySpace,
    pub load: LoadSettings,
    /// Configured index dimension, if any.
    pub dim: Option<usize>,
    /// Longest wait between reload attempts.
    pub retry_max: Duration,
}

/// Mutable state of the refresher loop.
struct State {
    conn: Option<MultiplexedConnection>,
    /// The key account of the published snapshot, kept for the reconcile
    /// and updated with each per-key update.
    report: LoadReport,
    reload_due: Option<(Instant, ReloadReason)>,
    reload: Option<(JoinHandle<ReloadResult>, ReloadReason, Instant)>,
    reload_again: Option<ReloadReason>,
    reload_backoff: Duration,
    waiters: Vec<oneshot::Sender<Result<Arc<Index>, String>>>,
    pending_keys: BTreeSet<String>,
    keys_due: Option<Instant>,
    /// The running per-key update, its keys, the version it patches, and when it started.
    apply: Option<(JoinHandle<ApplyResult>, Vec<String>, u64, Instant)>,
    /// No per-key update starts before this: each update copies the whole
    /// matrix, so a stream of changes (the chatbot re-embedding every
    /// article) must not keep a core busy with back-to-back copies.
    apply_not_before: Instant,
    quick_deadline: Option<Instant>,
    quick_present: Option<bool>,
    /// Whether the change feed has been armed at least once: a later arming
    /// follows a disconnect and calls for a full reload.
    feed_armed_before: bool,
    reconcile_due: Instant,
    reconcile: Option<JoinHandle<ReconcileResult>>,
}

/// Longest wait for the change feed before the first load starts anyway
/// (Redis unreachable: the load would fail and retry regardless).
const FEED_WAIT_AT_START: Duration = Duration::from_secs(2);

/// After a per-key update that took `t`, the next waits `APPLY_PAUSE_FACTOR × t`.
const APPLY_PAUSE_FACTOR: u32 = 3;

/// Sleeps until `at`, or forever when there is nothing scheduled.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Awaits a task if there is one, else never resolves.
async fn join<T>(task: Option<&mut JoinHandle<T>>) -> Result<T, tokio::task::JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

impl Refresher {
    /// Runs until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        let now = Instant::now();
        let mut st = State {
            conn: None,
            report: LoadReport::default(),
            // The first load waits (briefly) for the change feed, so nothing
            // written between the load's reads and the feed's arming is missed.
            reload_due: Some((now + FEED_WAIT_AT_START, ReloadReason::Startup)),
            reload: None,
            reload_again: None,
            reload_backoff: Duration::from_millis(100),
            waiters: Vec::new(),
            pending_keys: BTreeSet::new(),
            keys_due: None,
            apply_not_before: now,
            apply: None,
            quick_deadline: None,
            quick_present: None,
            feed_armed_before: false,
            reconcile_due: now + self.timing.reconcile_every,
            reconcile: None,
        };
        self.status.set_feed("connecting");
        loop {
            let reload_at = st.reload_due.filter(|_| st.reload.is_none()).map(|(at, _)| at);
            let keys_at =
                st.keys_due.filter(|_| st.reload.is_none() && st.apply.is_none()).map(|t| t.max(st.apply_not_before));
            // While expired keys are being re-read, their deadlines stay in the past; don't re-fire.
            let expiry_at = if st.apply.is_none() && st.keys_due.is_none() { self.next_expiry() } else { None };
            let reconcile_at = Some(st.reconcile_due).filter(|_| st.reconcile.is_none());
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(change) = self.changes.recv() => self.on_change(&mut st, change),
                Some(Command::Reload(reply)) = self.commands.recv() => {
                    st.waiters.push(reply);
                    self.trigger_reload(&mut st, ReloadReason::Admin, Duration::ZERO);
                }
                () = until(reload_at) => self.start_reload(&mut st),
                done = join(st.reload.as_mut().map(|r| &mut r.0)) => self.finish_reload(&mut st, done),
                () = until(keys_at) => self.start_apply(&mut st),
                done = join(st.apply.as_mut().map(|a| &mut a.0)) => self.finish_apply(&mut st, done),
                () = until(st.quick_deadline) => {
                    st.quick_deadline = None;
                    info!("quick key reached its deadline");
                    self.trigger_reload(&mut st, ReloadReason::QuickKeyExpired, Duration::ZERO);
                }
                () = until(expiry_at) => self.sweep_expired(&mut st),
                () = until(reconcile_at) => self.start_reconcile(&mut st),
                done = join(st.reconcile.as_mut()) => self.finish_reconcile(&mut st, done),
            }
        }
        for task in [st.reload.map(|r| r.0.abort_handle()), st.apply.map(|a| a.0.abort_handle())].into_iter().flatten()
        {
            task.abort();
        }
        if let Some(r) = st.reconcile {
            r.abort();
        }
    }

    fn on_change(&mut self, st: &mut State, change: Change) {
        match change {
            Change::Armed => {
                self.status.set_feed("tracking");
                if st.feed_armed_before {
                    // Pushes are at-most-once: what changed while unarmed is unknown, values included.
                    info!("change feed re-armed; reloading everything it may have missed");
                    self.trigger_reload(st, ReloadReason::ChangeFeedRearmed, self.timing.reload_debounce);
                } else {
                    st.feed_armed_before = true;
                    self.start_now_if_waiting_for_feed(st);
                }
                st.reconcile_due = Instant::now();
            }
            Change::Unavailable(_) => {
                self.status.set_feed("unavailable");
                self.start_now_if_waiting_for_feed(st);
            }
            Change::Lost => {
                self.status.set_feed("reconnecting");
                // Redis is unreachable: the first load would fail anyway, and its
                // error is what /readyz should show; don't hold it back.
                self.start_now_if_waiting_for_feed(st);
            }
            Change::All => {
                info!("Redis reported FLUSHDB/FLUSHALL; reconciling");
                st.reconcile_due = Instant::now();
            }
            Change::Keys(keys) => {
                let k = &self.source.keys;
                for key in keys {
                    let Ok(key) = String::from_utf8(key) else {
                        // Not a valid id; the reconcile will account for it.
                        st.reconcile_due = Instant::now();
                        continue;
                    };
                    if key == k.quick_key() {
                        info!("quick key changed");
                        st.reconcile_due = Instant::now(); // re-reads its deadline
                        self.trigger_reload(st, ReloadReason::QuickKeyChanged, self.timing.reload_debounce);
                    } else if k.doc_id(&key).is_some() && self.status.redis_empty.load(Ordering::Relaxed) {
                        // Writes after a flush rebuild the keyspace: load it whole
                        // rather than patching the last index we kept.
                        self.trigger_reload(st, ReloadReason::EmbeddingsReappeared, self.timing.reload_debounce);
                    } else if k.doc_id(&key).is_some() {
                        st.pending_keys.insert(key);
                        st.keys_due.get_or_insert(Instant::now() + self.timing.key_batch);
                    }
                }
            }
        }
    }

    /// The first load waits for the change feed; once it has answered (armed,
    /// refused, or Redis unreachable), there is nothing left to wait for.
    fn start_now_if_waiting_for_feed(&self, st: &mut State) {
        if let Some((due, ReloadReason::Startup)) = st.reload_due {
            st.reload_due = Some((due.min(Instant::now()), ReloadReason::Startup));
        }
    }

    /// Schedules a full reload `after` from now, coalescing with one already
    /// scheduled; during a reload, queues exactly one more.
    fn trigger_reload(&self, st: &mut State, reason: ReloadReason, after: Duration) {
        if st.reload.is_some() {
            st.reload_again.get_or_insert(reason);
            return;
        }
        let at = Instant::now() + after;
        st.reload_due = Some(match st.reload_due {
            Some((due, r)) if due <= at => (due, r),
            _ => (at, reason),
        });
    }

    async fn connection(
        client: redis::Client,
        settings: &Source,
        conn: Option<MultiplexedConnection>,
    ) -> Result<MultiplexedConnection, LoadError> {
        match conn {
            Some(c) => Ok(c),
            None => loader::connect(&client, &settings.load).await,
        }
    }

    fn start_reload(&mut self, st: &mut State) {
        let Some((_, reason)) = st.reload_due.take() else { return };
        let (client, settings, conn) = (self.client.clone(), self.source.clone(), st.conn.clone());
        let span = tracing::info_span!("reload", reason = ?reason);
        let task = tokio::spawn(
            async move {
                let conn = Self::connection(client, &settings, conn).await?;
                loader::load_all(&conn, &settings.keys, &settings.load, settings.dim).await
            }
            .instrument(span),
        );
        // Keys changed from here on may be missed by this reload's reads: they stay pending.
        st.reload = Some((task, reason, Instant::now()));
    }

    fn finish_reload(&mut self, st: &mut State, done: Result<ReloadResult, tokio::task::JoinError>) {
        let Some((_, reason, started)) = st.reload.take() else { return };
        let outcome = done.map_err(|e| e.to_string()).and_then(|r| r.map_err(|e| format!("{e}: {}", error_chain(&e))));
        match outcome {
            Ok(Loaded { index, report }) => {
                st.reload_backoff = Duration::from_millis(100);
                let current = self.shared.current();
                if index.is_empty() && current.as_ref().is_some_and(|c| !c.is_empty()) {
                    if !self.status.redis_empty.swap(true, Ordering::Relaxed) {
                        warn!("Redis has no embeddings; keeping the last index until they reappear");
                    }
                    let current = current.expect("checked above");
                    for w in st.waiters.drain(..) {
                        let _ = w.send(Ok(Arc::clone(&current)));
                    }
                } else {
                    self.status.redis_empty.store(false, Ordering::Relaxed);
                    let published = self.publish(index, &report);
                    st.report = report;
                    self.status.reloads.fetch_add(1, Ordering::Relaxed);
                    let info = ReloadInfo {
                        reason,
                        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
                        documents: published.len(),
                        index_version: published.version(),
                        finished_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                    };
                    info!(reason = ?reason, version = info.index_version, docs = info.documents, duration_ms = info.duration_ms, "index published");
                    *self.status.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
                    for w in st.waiters.drain(..) {
                        let _ = w.send(Ok(Arc::clone(&published)));
                    }
                }
                if let Some(again) = st.reload_again.take() {
                    self.trigger_reload(st, again, self.timing.reload_debounce);
                }
                if !st.pending_keys.is_empty() {
                    st.keys_due = Some(Instant::now());
                }
            }
            Err(why) => {
                st.conn = None;
                self.status.reload_failures.fetch_add(1, Ordering::Relaxed);
                warn!(error.message = %why, retry_in_ms = st.reload_backoff.as_millis() as u64, "reload failed; the current index keeps serving");
                self.shared.set_failure(Some(format!("loading from {} failed: {why}", self.source.redis_display)));
                for w in st.waiters.drain(..) {
                    let _ = w.send(Err(why.clone()));
                }
                let retry = st.reload_again.take().unwrap_or(if reason == ReloadReason::Startup {
                    reason
                } else {
                    ReloadReason::Retry
                });
                let backoff = st.reload_backoff;
                st.reload_backoff = (st.reload_backoff * 2).min(self.source.retry_max);
                self.trigger_reload(st, retry, backoff);
            }
        }
    }

    /// Publishes a snapshot and its report, retiring contexts built from
    /// older versions first.
    fn publish(&self, index: Index, report: &LoadReport) -> Arc<Index> {
        self.shared.replace_with(index, |version| {
            if let Some(c) = &self.contexts {
                c.retire_before(version);
            }
            self.status.set_load_report(version, report.clone());
        })
    }

    fn start_apply(&mut self, st: &mut State) {
        st.keys_due = None;
        let Some(current) = self.shared.current() else {
            // Nothing loaded yet: the first full load will read these keys anyway.
            st.pending_keys.clear();
            return;
        };
        let keys: Vec<String> = std::mem::take(&mut st.pending_keys).into_iter().collect();
        let (client, settings, conn) = (self.client.clone(), self.source.clone(), st.conn.clone());
        let batch = keys.clone();
        let base_version = current.version();
        let base_report = st.report.clone();
        let task = tokio::spawn(async move {
            let conn = Self::connection(client, &settings, conn).await.map_err(|e| e.to_string())?;
            let dim = settings.dim.or((current.dim() > 0).then_some(current.dim()));
            let fresh = loader::load_keys(&conn, &settings.keys, &settings.load, dim, batch.clone())
                .await
                .map_err(|e| e.to_string())?;
            tokio::task::spawn_blocking(move || {
                let changed_ids: HashSet<&str> = batch.iter().filter_map(|k| settings.keys.doc_id(k)).collect();
                let (merged, counts) = current.apply(&fresh.index, &changed_ids).map_err(|e| e.to_string())?;
                let report = base_report.after_update(&settings.keys, &batch, &current, &fresh, &merged);
                Ok((merged, counts, report))
            })
            .await
            .map_err(|e| e.to_string())?
        });
        st.apply = Some((task, keys, base_version, Instant::now()));
    }

    fn finish_apply(&mut self, st: &mut State, done: Result<ApplyResult, tokio::task::JoinError>) {
        let Some((_, keys, base_version, started)) = st.apply.take() else { return };
        // Updates may use at most a quarter of the time: wait three times as long as this one took.
        st.apply_not_before = Instant::now() + started.elapsed() * APPLY_PAUSE_FACTOR;
        match done.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok((index, counts, report)) => {
                // Patched from a snapshot a reload has replaced (or is about to):
                // publishing it would undo the reload. Re-read the keys on top of the new one.
                let base_is_current = self.shared.current().is_some_and(|c| c.version() == base_version);
                if st.reload.is_some() || !base_is_current {
                    st.pending_keys.extend(keys);
                    st.keys_due.get_or_insert(Instant::now());
                    return;
                }
                let published = self.publish(index, &report);
                st.report = report;
                self.status.docs_added.fetch_add(counts.added as u64, Ordering::Relaxed);
                self.status.docs_updated.fetch_add(counts.updated as u64, Ordering::Relaxed);
                self.status.docs_removed.fetch_add(counts.removed as u64, Ordering::Relaxed);
                info!(
                    keys = keys.len(),
                    added = counts.added,
                    updated = counts.updated,
                    removed = counts.removed,
                    version = published.version(),
                    "per-key update published"
                );
            }
            Err(why) => {
                st.conn = None;
                warn!(error.message = %why, keys = keys.len(), "per-key update failed; will retry");
                st.pending_keys.extend(keys);
                st.keys_due = Some(Instant::now() + st.reload_backoff.max(Duration::from_millis(500)));
            }
        }
    }

    /// When the earliest document deadline passes (expiry is hidden from
    /// queries already), re-read the expired keys so the index drops them.
    fn next_expiry(&self) -> Option<Instant> {
        let index = self.shared.current()?;
        let deadline = index.next_deadline_ms()?;
        let wait = Duration::from_millis(deadline.saturating_sub(now_ms()));
        Some(Instant::now() + wait)
    }

    fn sweep_expired(&mut self, st: &mut State) {
        let Some(index) = self.shared.current() else { return };
        let now = now_ms();
        let expired: Vec<String> = (0..index.len())
            .filter(|&r| index.is_expired(r, now))
            .map(|r| self.source.keys.embedding_key(&index.doc(r).id))
            .collect();
        if expired.is_empty() {
            return;
        }
        st.pending_keys.extend(expired);
        st.keys_due.get_or_insert(Instant::now());
    }

    fn start_reconcile(&mut self, st: &mut State) {
        st.reconcile_due = Instant::now() + self.timing.reconcile_every;
        let (client, settings, conn) = (self.client.clone(), self.source.clone(), st.conn.clone());
        st.reconcile = Some(tokio::spawn(async move {
            let conn = match Self::connection(client, &settings, conn).await {
                Ok(c) => c,
                Err(LoadError::Redis(e)) => return Err(e),
                Err(e) => return Err(redis::RedisError::from((redis::ErrorKind::Io, "connect", e.to_string()))),
            };
            let fingerprint = loader::fingerprint(&conn, &settings.keys, settings.load.scan_count).await?;
            let quick_pttl = loader::pttl(&conn, settings.keys.quick_key()).await?;
            Ok((fingerprint, quick_pttl))
        }));
    }

    fn finish_reconcile(&mut self, st: &mut State, done: Result<ReconcileResult, tokio::task::JoinError>) {
        st.reconcile = None;
        let (fingerprint, quick_pttl) = match done {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                st.conn = None;
                warn!(error.message = %e, "reconcile could not reach Redis");
                return;
            }
            Err(e) => {
                warn!(error.message = %e, "reconcile task failed");
                return;
            }
        };
        // The quick key's own deadline: reload when it passes, not when Redis reclaims it.
        let present = quick_pttl != -2;
        st.quick_deadline = u64::try_from(quick_pttl).ok().map(|ms| Instant::now() + Duration::from_millis(ms));
        if st.quick_present == Some(true) && !present {
            info!("quick key is gone (noticed by reconcile)");
            self.trigger_reload(st, ReloadReason::QuickKeyChanged, self.timing.reload_debounce);
        }
        st.quick_present = Some(present);

        let Some(current) = self.shared.current() else { return };
        if st.reload.is_some() || st.reload_due.is_some() || st.apply.is_some() || !st.pending_keys.is_empty() {
            return; // the index is about to change anyway
        }
        if fingerprint.count == 0 && !current.is_empty() {
            if !self.status.redis_empty.swap(true, Ordering::Relaxed) {
                warn!(
                    docs = current.len(),
                    "Redis has no embeddings (FLUSHDB or restart without data); keeping the last index"
                );
            }
            return;
        }
        if self.status.redis_empty.load(Ordering::Relaxed) {
            info!(keys = fingerprint.count, "embeddings reappeared in Redis");
            self.trigger_reload(st, ReloadReason::EmbeddingsReappeared, Duration::ZERO);
        } else if fingerprint != st.report.fingerprint {
            info!(
                redis_keys = fingerprint.count,
                index_keys = st.report.fingerprint.count,
                "key set differs from Redis"
            );
            self.trigger_reload(st, ReloadReason::KeySetChanged, Duration::ZERO);
        }
    }
}
