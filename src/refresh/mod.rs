//! Keeps the in-memory index in step with Redis without failing a query.
//!
//! One task, the [`Refresher`](crate::refresh::Refresher), owns every change to the published index:
//! the first load, full reloads, per-key updates, expiry sweeps and delta
//! merges. It builds each new snapshot off to the side and swaps it in
//! atomically, so queries are always answered by a complete old or new
//! version. From the change feed on, documents are named by id: the feed
//! parses each key once (`store::watcher`).
//!
//! Triggers, and what they do:
//! - quick key deleted, rewritten or past its deadline (read with PTTL, so we
//!   don't wait for Redis to reclaim it) → full reload, debounced: a burst
//!   gives one reload; a trigger during a reload queues exactly one more;
//! - an embedding key set/deleted/expired → re-read just that document
//!   (batched) and publish a snapshot with it upserted or removed, as the
//!   acceptance rule says (a wrong-dimension rewrite keeps the last good
//!   row; a re-read that changes nothing publishes nothing);
//! - a document reaching its own deadline → re-read it the same way (queries
//!   already hide it from the deadline on; see `index`);
//! - a published snapshot whose delta reached `index::delta::DELTA_MAX_ROWS`
//!   → merge it into a new base in the background, then publish the merge
//!   (rebased on the updates published meanwhile, or dropped if a reload
//!   replaced the base);
//! - the change feed re-armed after a disconnect → full reload (pushes are
//!   at-most-once, and a rewritten value leaves the key set unchanged); the
//!   first load waits for the feed to arm (at most 2 s) so nothing falls
//!   between the two;
//! - FLUSHDB, a key that is not UTF-8, or every `reconcile_every` → compare
//!   a fingerprint of Redis's key set with the index's; reload on mismatch;
//!   without a change feed, each reconcile also re-reads the next third of
//!   the documents (a value rewritten in place leaves the key set as it was);
//! - a failed reload → retried with backoff, the current index serving;
//!   `/readyz` shows the failure until the next publish;
//! - `POST /v1/admin/reload` → immediate full reload.
//!
//! An empty keyspace while we hold documents (FLUSHDB, Redis restarted
//! without its data) is treated as an outage, not as "no articles": the last
//! index keeps serving, `/v1/stats` and `/readyz` say so, and a reload
//! happens as soon as embeddings reappear.
//!
//! Each rule above lives in plain data, one file per concern, fed `now`
//! (tokio's clock) and answering with what to start, so all of them are
//! unit-tested without Redis (the machines under paused time):
//! - [`reload`](crate::refresh::reload): debounce, "a trigger during a
//!   reload queues exactly one more", the wait for the feed at start,
//!   backoff capped at `retry_max`;
//! - [`updates`](crate::refresh::updates): the batching window, pacing
//!   (after an update that took `t`, the next waits `3 × t`), the
//!   base-version rule;
//! - [`accept`](crate::refresh::accept): the per-key acceptance rule, and
//!   the report an update leaves (a pure function, not a machine);
//! - [`merge`](crate::refresh::merge): one merge at a time, publish as it
//!   is, rebase or drop;
//! - [`reconcile`](crate::refresh::reconcile): its period, the quick key's
//!   deadline and presence, the redis_empty rule.
//!
//! This file owns the I/O: the `select!` loop in
//! [`Refresher::run`](crate::refresh::Refresher::run) sleeps until the
//! earliest deadline, spawns loads, updates, merges and reconciles, feeds
//! their results back to the machines, and publishes snapshots.

pub mod accept;
mod error;
pub mod merge;
pub mod reconcile;
pub mod reload;
mod status;
pub mod updates;

use std::{sync::atomic::Ordering, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    task::{JoinError, JoinHandle},
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn, Instrument};

use self::{
    accept::Update,
    merge::{DeltaMerge, MergeVerdict, Serving},
    reconcile::{KeySetVerdict, Observed, Ours, Reconcile},
    reload::FullReload,
    updates::{KeyUpdates, Verdict},
};
pub use self::{
    error::RefreshError,
    status::{FeedState, RefreshStatus, ReloadInfo, ReloadReason},
};
use crate::{
    index::{lexical::LexicalSettings, now_ms, Index, SharedIndex},
    store::{
        context::ContextQueue,
        keys::KeySpace,
        link::{RedisClient, RedisConn},
        loader::{self, IndexLoadError, LoadReport, LoadSettings, Loaded},
        watcher::Change,
    },
    telemetry::error_chain,
};
use semsearch_scan::ScanMode;

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

/// What a reload request is answered with: the published snapshot, or why
/// the reload failed. The error is shared because one reload answers every
/// request that waited for it.
pub type ReloadReply = Result<Arc<Index>, Arc<RefreshError>>;

/// A full reload asked for by the API (`POST /v1/admin/reload`).
#[derive(Debug)]
pub struct ReloadRequest {
    /// Answered when the next full reload has finished: published, failed,
    /// or found Redis empty and kept the last index (which it then sends).
    pub reply: oneshot::Sender<ReloadReply>,
}

/// Handle used by the API to reach the refresher.
#[derive(Debug, Clone)]
pub struct RefreshHandle {
    pub reloads: mpsc::Sender<ReloadRequest>,
    pub status: Arc<RefreshStatus>,
}

/// The task that owns index updates. Built in `app.rs`, run until cancelled.
pub struct Refresher {
    pub client: RedisClient,
    pub source: RefreshSource,
    pub timing: RefreshSettings,
    pub shared: Arc<SharedIndex>,
    pub contexts: Option<ContextQueue>,
    pub status: Arc<RefreshStatus>,
    pub changes: mpsc::UnboundedReceiver<Change>,
    pub reloads: mpsc::Receiver<ReloadRequest>,
}

/// Where and how the refresher reads Redis.
#[derive(Debug, Clone)]
pub struct RefreshSource {
    /// Printable address (no credentials), for failure messages.
    pub redis_display: String,
    pub keys: KeySpace,
    pub load: LoadSettings,
    /// Configured index dimension, if any.
    pub dim: Option<usize>,
    /// How published snapshots are scanned (`SEMSEARCH_SCAN`): a reload
    /// builds the int8 copy before publishing, and per-key updates keep the
    /// mode of the snapshot they patch.
    pub scan: ScanMode,
    /// The lexical side every loaded index is built with.
    pub lexical: Arc<LexicalSettings>,
    /// Longest wait between reload attempts.
    pub retry_max: Duration,
}

/// Without a change feed, every value is re-read within this many
/// reconcile periods (see `Refresher::recheck_values`).
pub const RECHECK_PERIODS: usize = 3;

/// The loop's state: the four machines, and the I/O in flight for each.
/// A task handle is `Some` exactly while its machine says it is running.
struct Loop {
    conn: Option<RedisConn>,
    /// The key account of the published snapshot, kept for the reconcile
    /// and updated with each per-key update.
    report: LoadReport,
    reload: FullReload,
    /// The index dimension: SEMSEARCH_DIM, else fixed by the first load that
    /// found documents. Later loads and updates count other dimensions as
    /// `wrong_dimension`, so 100k stray 2-d keys cannot flip a 384-d index
    /// (issue 16); a deliberate change of dimension takes a restart.
    dim: Option<usize>,
    /// Where the rolling value check resumes: the last id it re-read.
    recheck_after: Option<Box<str>>,
    /// The running full reload; its answer carries the quick key's PTTL, read last.
    loading: Option<JoinHandle<Result<(Loaded, i64), RefreshError>>>,
    /// Reload requests answered by the next reload that finishes.
    waiters: Vec<oneshot::Sender<ReloadReply>>,
    updates: KeyUpdates,
    /// The running per-key update; `None` in its answer: nothing to publish.
    updating: Option<JoinHandle<Result<Option<Update>, RefreshError>>>,
    reconcile: Reconcile,
    reconciling: Option<JoinHandle<Result<Observed, RefreshError>>>,
    merge: DeltaMerge,
    /// The running merge of a snapshot's delta into a new base (see
    /// `index::delta`): its source snapshot and the merged index.
    merging: Option<JoinHandle<(Arc<Index>, Index)>>,
}

/// Sleeps until `at`, or forever when there is nothing scheduled.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Awaits a task if there is one, else never resolves.
async fn join<T>(task: Option<&mut JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

impl Refresher {
    /// Runs until `cancel` fires.
    pub async fn run(mut self, cancel: CancellationToken) {
        let now = Instant::now();
        let mut st = Loop {
            conn: None,
            dim: self.source.dim,
            recheck_after: None,
            report: LoadReport::default(),
            reload: FullReload::at_startup(now, self.timing.reload_debounce, self.source.retry_max),
            loading: None,
            waiters: Vec::new(),
            updates: KeyUpdates::new(now, self.timing.key_batch),
            updating: None,
            reconcile: Reconcile::new(now, self.timing.reconcile_every),
            reconciling: None,
            merge: DeltaMerge::new(),
            merging: None,
        };
        self.status.set_feed(FeedState::Connecting);
        loop {
            let reload_at = st.reload.due();
            let keys_at = st.updates.due(st.reload.is_running());
            // While expired keys are being re-read, their deadlines stay in the past; don't re-fire.
            let expiry_at = if st.updates.is_quiet() { self.next_expiry() } else { None };
            // While a full reload is pending, a reconcile waits for it: the
            // reload SCANs every key anyway, the key set cannot be judged
            // until it is published, and a second SCAN beside the reload's
            // own slowed a quick-key reload by its whole scan stage on
            // Redis' one thread (1M keys: 5.9 s against 4.8 s at startup).
            let reconcile_at = if st.reload.is_pending() { None } else { st.reconcile.due() };
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(change) = self.changes.recv() => self.on_change(&mut st, change),
                Some(ReloadRequest { reply }) = self.reloads.recv() => {
                    st.waiters.push(reply);
                    st.reload.trigger_now(ReloadReason::Admin, Instant::now());
                }
                () = until(reload_at) => self.start_reload(&mut st),
                done = join(st.loading.as_mut()) => self.finish_reload(&mut st, done),
                () = until(keys_at) => self.start_update(&mut st),
                done = join(st.updating.as_mut()) => self.finish_update(&mut st, done),
                () = until(st.reconcile.quick_deadline()) => {
                    if let Some(reason) = st.reconcile.quick_deadline_passed(Instant::now()) {
                        info!("quick key reached its deadline");
                        st.reload.trigger_now(reason, Instant::now());
                    }
                }
                () = until(expiry_at) => self.sweep_expired(&mut st),
                () = until(reconcile_at) => self.start_reconcile(&mut st),
                done = join(st.reconciling.as_mut()) => self.finish_reconcile(&mut st, done),
                done = join(st.merging.as_mut()) => self.finish_merge(&mut st, done),
            }
        }
        if let Some(task) = st.loading {
            task.abort();
        }
        if let Some(task) = st.updating {
            task.abort();
        }
        if let Some(task) = st.reconciling {
            task.abort();
        }
        if let Some(task) = st.merging {
            task.abort();
        }
    }

    fn on_change(&mut self, st: &mut Loop, change: Change) {
        let now = Instant::now();
        match change {
            Change::Armed => {
                self.status.set_feed(FeedState::Tracking);
                if st.reload.feed_armed(now) {
                    info!("change feed re-armed; reloading everything it may have missed");
                }
                st.reconcile.request(now);
            }
            Change::Unavailable(_) => {
                self.status.set_feed(FeedState::Unavailable);
                st.reload.feed_answered(now);
            }
            Change::Lost => {
                self.status.set_feed(FeedState::Reconnecting);
                // Redis is unreachable: the first load would fail anyway, and its
                // error is what /readyz should show; don't hold it back.
                st.reload.feed_answered(now);
            }
            Change::All => {
                info!("Redis reported FLUSHDB/FLUSHALL; reconciling");
                st.reconcile.request(now);
            }
            Change::Keys(changed) => {
                if changed.unreadable > 0 {
                    // Keys that name no id; the reconcile will account for them.
                    st.reconcile.request(now);
                }
                if changed.quick_key {
                    info!("quick key changed");
                    st.reconcile.request(now); // re-reads its deadline
                    st.reload.trigger(ReloadReason::QuickKeyChanged, now);
                }
                // After a flush too: the refill patches the index we kept,
                // and the full reload waits until the refill is done
                // (see `reconcile` and `finish_reload`; issue 16).
                for id in changed.ids {
                    st.updates.changed(id, now);
                }
            }
        }
    }

    async fn connection(
        client: RedisClient,
        settings: &RefreshSource,
        conn: Option<RedisConn>,
    ) -> Result<RedisConn, IndexLoadError> {
        match conn {
            Some(c) => Ok(c),
            None => loader::connect(&client, &settings.load).await,
        }
    }

    fn start_reload(&mut self, st: &mut Loop) {
        let now = Instant::now();
        let Some(reason) = st.reload.start(now) else { return };
        if let Some(task) = st.reconciling.take() {
            // Its SCAN would share Redis' one thread with this reload's, and
            // its key set could not be judged now anyway: it runs again once
            // the reload is published.
            task.abort();
            st.reconcile.put_off(now);
        }
        let (client, settings, conn) = (self.client.clone(), self.source.clone(), st.conn.clone());
        let dim = st.dim;
        // The serving snapshot's analysis of unchanged documents is taken
        // over, not redone; it is looked up once the rows are in, so no
        // older snapshot is held through the reads.
        let shared = Arc::clone(&self.shared);
        let span = tracing::info_span!("reload", reason = ?reason);
        // Keys changed from here on may be missed by this reload's reads: they stay pending.
        st.loading = Some(tokio::spawn(
            async move {
                let conn = Self::connection(client, &settings, conn).await?;
                let Loaded { index, report } = loader::load_all(&conn, &settings.keys, &settings.load, dim).await?;
                // Quantizing runs on rayon; this blocking thread only waits for it.
                let (scan, lexical) = (settings.scan, Arc::clone(&settings.lexical));
                let index = tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let index = index.with_scan(scan);
                    let quantized = started.elapsed();
                    let index = index.with_lexical_reusing(lexical, shared.current().as_deref());
                    info!(
                        int8_ms = quantized.as_millis() as u64,
                        lexical_ms = (started.elapsed() - quantized).as_millis() as u64,
                        "scan copy and lexical side built"
                    );
                    index
                })
                .await
                .map_err(|source| RefreshError::TaskFailed { step: "building the int8 copy", source })?;
                let quick_pttl = conn.pttl(settings.keys.quick_key()).await.map_err(IndexLoadError::from)?;
                Ok((Loaded { index, report }, quick_pttl))
            }
            .instrument(span),
        ));
    }

    fn finish_reload(&mut self, st: &mut Loop, done: Result<Result<(Loaded, i64), RefreshError>, JoinError>) {
        st.loading = None;
        let now = Instant::now();
        match done.map_err(|source| RefreshError::TaskFailed { step: "reload", source }).and_then(|r| r) {
            Ok((Loaded { index, report }, quick_pttl)) => {
                let Some(finished) = st.reload.succeeded(now) else { return };
                let quick_present = reconcile::exists(quick_pttl);
                let current = self.shared.current().filter(|c| !c.is_empty());
                let first = current.is_none();
                let refilling = self.status.redis_empty.load(Ordering::Relaxed)
                    && !quick_present
                    && !matches!(finished.reason, ReloadReason::EmbeddingsReappeared | ReloadReason::Admin);
                if let Some(current) = current.filter(|_| index.is_empty() || refilling) {
                    if index.is_empty() && !self.status.redis_empty.swap(true, Ordering::Relaxed) {
                        warn!("Redis has no embeddings; keeping the last index until they reappear");
                    } else if !index.is_empty() {
                        info!(
                            found = index.len(),
                            serving = current.len(),
                            "Redis is being refilled; keeping the last index until the refill is done"
                        );
                    }
                    for w in st.waiters.drain(..) {
                        let _ = w.send(Ok(Arc::clone(&current)));
                    }
                } else {
                    self.status.redis_empty.store(false, Ordering::Relaxed);
                    if st.dim.is_none() && !index.is_empty() {
                        info!(dim = index.dim(), "index dimension fixed by the first load");
                        st.dim = Some(index.dim());
                    }
                    let published = self.publish(index, &report);
                    if first {
                        // No retired snapshot for the first reload to take from: make its buffers now.
                        crate::index::spare::prepare_for(&published);
                    }
                    st.report = report;
                    self.status.reloads.fetch_add(1, Ordering::Relaxed);
                    let info = ReloadInfo {
                        reason: finished.reason,
                        duration_ms: finished.took.as_secs_f64() * 1000.0,
                        documents: published.len(),
                        index_version: published.version(),
                        finished_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
                    };
                    info!(reason = ?info.reason, version = info.index_version, docs = info.documents, duration_ms = info.duration_ms, "index published");
                    self.status.set_last_reload(info);
                    st.reconcile.answered_by_reload(finished.started, now, quick_pttl);
                    for w in st.waiters.drain(..) {
                        let _ = w.send(Ok(Arc::clone(&published)));
                    }
                }
                st.updates.after_reload(now);
            }
            Err(e) => {
                st.conn = None;
                self.status.reload_failures.fetch_add(1, Ordering::Relaxed);
                let Some(retry_in) = st.reload.failed(now) else { return };
                warn!(error.message = %e, error.cause_chain = %error_chain(&e), retry_in_ms = retry_in.as_millis() as u64, "reload failed; the current index keeps serving");
                self.status.set_failure(Some(format!(
                    "loading from {} failed: {}",
                    self.source.redis_display,
                    e.detail()
                )));
                let e = Arc::new(e);
                for w in st.waiters.drain(..) {
                    let _ = w.send(Err(Arc::clone(&e)));
                }
            }
        }
    }

    /// Publishes a snapshot and its report, retiring contexts built from
    /// older versions first.
    fn publish(&self, index: Index, report: &LoadReport) -> Arc<Index> {
        self.swap_in(index, report, true)
    }

    /// Swaps `index` in with its report; a success clears the last failure.
    /// `retire_contexts`: whether contexts built from older versions are
    /// retired first (not for a merge: same documents, same answers).
    fn swap_in(&self, index: Index, report: &LoadReport, retire_contexts: bool) -> Arc<Index> {
        let report = report.clone();
        let published = self.shared.replace_with(index, |version| {
            if let Some(c) = self.contexts.as_ref().filter(|_| retire_contexts) {
                c.retire_before(version);
            }
            self.status.set_load_report(version, report);
        });
        self.status.set_failure(None);
        published
    }

    fn start_update(&mut self, st: &mut Loop) {
        let current = self.shared.current();
        let base_version = current.as_ref().map(|c| c.version());
        // Without a snapshot the machine drops the keys: the first full load reads them anyway.
        let (Some(ids), Some(current)) = (st.updates.start(Instant::now(), base_version), current) else { return };
        let (client, settings, conn) = (self.client.clone(), self.source.clone(), st.conn.clone());
        let base_report = st.report.clone();
        let dim = st.dim.or((current.dim() > 0).then_some(current.dim()));
        st.updating = Some(tokio::spawn(async move {
            let conn = Self::connection(client, &settings, conn).await?;
            let fresh = loader::load_ids(&conn, &settings.keys, &settings.load, dim, &ids).await?;
            tokio::task::spawn_blocking(move || {
                Ok(accept::apply_reread(&current, &base_report, &settings.keys, &ids, &fresh)?)
            })
            .await
            .map_err(|source| RefreshError::TaskFailed { step: "per-key merge", source })?
        }));
    }

    fn finish_update(&mut self, st: &mut Loop, done: Result<Result<Option<Update>, RefreshError>, JoinError>) {
        st.updating = None;
        let now = Instant::now();
        match done.map_err(|source| RefreshError::TaskFailed { step: "per-key update", source }).and_then(|r| r) {
            Ok(update) => {
                let published_version = self.shared.current().map(|c| c.version());
                // A snapshot patched from a base a reload has replaced (or is about
                // to) would undo the reload; the machine requeues its keys instead.
                let Some(Verdict::Publish(ids)) = st.updates.succeeded(now, published_version, st.reload.is_running())
                else {
                    return;
                };
                let Some(Update { index, counts, report }) = update else {
                    debug!(keys = ids.len(), "re-read documents are as the index has them; nothing to publish");
                    return;
                };
                let published = self.publish(index, &report);
                st.report = report;
                self.status.docs_added.fetch_add(counts.added as u64, Ordering::Relaxed);
                self.status.docs_updated.fetch_add(counts.updated as u64, Ordering::Relaxed);
                self.status.docs_removed.fetch_add(counts.removed as u64, Ordering::Relaxed);
                info!(
                    keys = ids.len(),
                    added = counts.added,
                    updated = counts.updated,
                    removed = counts.removed,
                    version = published.version(),
                    "per-key update published"
                );
                self.start_merge(st, published);
            }
            Err(e) => {
                st.conn = None;
                let Some(keys) = st.updates.failed(now, st.reload.backoff()) else { return };
                warn!(error.message = %e, error.cause_chain = %error_chain(&e), keys, "per-key update failed; will retry");
            }
        }
    }

    /// Starts the merge [`DeltaMerge::published`] asks for, on a blocking
    /// thread (CPU work, O(N)), so queries and per-key updates never wait for it.
    fn start_merge(&self, st: &mut Loop, published: Arc<Index>) {
        if !st.merge.published(Instant::now(), published.version(), published.needs_merge()) {
            return;
        }
        debug!(version = published.version(), "merging the delta into a new base");
        st.merging = Some(tokio::task::spawn_blocking(move || {
            let merged = published.merged();
            (published, merged)
        }));
    }

    /// Publishes a finished merge as [`DeltaMerge::finished`] says: as it
    /// is, rebased on the updates published while it ran, or not at all.
    fn finish_merge(&mut self, st: &mut Loop, done: Result<(Arc<Index>, Index), JoinError>) {
        st.merging = None;
        let now = Instant::now();
        let (source, merged) = match done {
            Ok(done) => done,
            Err(source) => {
                let Some(ran) = st.merge.failed(now) else { return };
                let e = RefreshError::TaskFailed { step: "merging the delta", source };
                warn!(error.message = %e, ran_ms = ran.as_millis() as u64, "merge failed; the delta keeps serving");
                return;
            }
        };
        let current = self.shared.current();
        let serving =
            current.as_ref().map(|c| Serving { version: c.version(), shares_base: c.shares_base_with(&source) });
        let Some((verdict, took)) = st.merge.finished(now, serving) else { return };
        let index = match (verdict, current) {
            (MergeVerdict::Publish, _) => merged,
            (MergeVerdict::Rebase, Some(current)) => match current.rebase(&source, &merged) {
                Some(index) => index,
                None => {
                    debug!("the rebase of a merge failed; merge dropped");
                    return;
                }
            },
            (MergeVerdict::Rebase | MergeVerdict::Drop, _) => {
                debug!("the base was replaced while merging; merge dropped");
                return;
            }
        };
        // Same documents as the snapshot it replaces, so the contexts computed
        // from that one stay valid: nothing to retire.
        let published = self.swap_in(index, &st.report, false);
        info!(
            version = published.version(),
            docs = published.len(),
            took_ms = took.as_millis() as u64,
            "delta merged into a new base"
        );
        // Updates published during the merge may have filled the delta again.
        self.start_merge(st, published);
    }

    /// When the earliest document deadline passes (expiry is hidden from
    /// queries already), re-read the expired keys so the index drops them.
    fn next_expiry(&self) -> Option<Instant> {
        let index = self.shared.current()?;
        let deadline = index.next_deadline_ms()?;
        let wait = Duration::from_millis(deadline.saturating_sub(now_ms()));
        Some(Instant::now() + wait)
    }

    fn sweep_expired(&mut self, st: &mut Loop) {
        let Some(index) = self.shared.current() else { return };
        let now = now_ms();
        let expired: Vec<Box<str>> =
            (0..index.len()).filter(|&r| index.is_expired(r, now)).map(|r| index.doc(r).id.clone()).collect();
        st.updates.expired(expired, Instant::now());
    }

    fn start_reconcile(&mut self, st: &mut Loop) {
        if !st.reconcile.start(Instant::now()) {
            return;
        }
        let (client, settings, conn) = (self.client.clone(), self.source.clone(), st.conn.clone());
        st.reconciling = Some(tokio::spawn(async move {
            let conn = Self::connection(client, &settings, conn).await.map_err(|e| match e {
                IndexLoadError::Redis(e) => RefreshError::Reconcile(e),
                other => RefreshError::Load(other),
            })?;
            let fingerprint = loader::fingerprint(&conn, &settings.keys, settings.load.scan_count).await?;
            let quick_pttl_ms = conn.pttl(settings.keys.quick_key()).await?;
            Ok(Observed { fingerprint, quick_pttl_ms })
        }));
    }

    fn finish_reconcile(&mut self, st: &mut Loop, done: Result<Result<Observed, RefreshError>, JoinError>) {
        st.reconciling = None;
        let seen = match done {
            Ok(Ok(seen)) => seen,
            Ok(Err(e)) => {
                st.conn = None;
                st.reconcile.failed();
                warn!(error.message = %e, error.cause_chain = %error_chain(&e), "reconcile could not reach Redis");
                return;
            }
            Err(source) => {
                st.reconcile.failed();
                let e = RefreshError::TaskFailed { step: "reconcile", source };
                warn!(error.message = %e, error.cause_chain = %error_chain(&e), "reconcile task failed");
                return;
            }
        };
        let now = Instant::now();
        let docs = self.shared.current().map(|c| c.len());
        let ours = Ours {
            docs,
            fingerprint: st.report.fingerprint,
            changing: st.reload.is_pending() || st.updates.is_busy(),
            redis_empty: self.status.redis_empty.load(Ordering::Relaxed),
        };
        let findings = st.reconcile.finished(now, seen, &ours);
        if findings.quick_key_gone {
            info!("quick key is gone (noticed by reconcile)");
            st.reload.trigger(ReloadReason::QuickKeyChanged, now);
        }
        match findings.key_set {
            KeySetVerdict::NotJudged | KeySetVerdict::Agrees => {}
            KeySetVerdict::Empty => {
                if !self.status.redis_empty.swap(true, Ordering::Relaxed) {
                    warn!(docs, "Redis has no embeddings (FLUSHDB or restart without data); keeping the last index");
                }
            }
            KeySetVerdict::Reappeared => {
                info!(keys = seen.fingerprint.count, "embeddings reappeared in Redis; the refill is done")
            }
            KeySetVerdict::Refilling { redis_keys } => {
                info!(redis_keys, "Redis is being refilled; keeping the last index until it settles")
            }
            KeySetVerdict::Differs { redis_keys, index_keys } => {
                info!(redis_keys, index_keys, "key set differs from Redis");
            }
        }
        if let Some(reason) = findings.key_set.reload() {
            st.reload.trigger_now(reason, now);
        } else if self.status.change_feed() != FeedState::Tracking && !ours.changing {
            self.recheck_values(st, now);
        }
    }

    /// Without the change feed, a value rewritten in place leaves the key set
    /// as it was, so the fingerprint cannot see it. Each reconcile then
    /// re-reads the next third of the documents (in id order, wrapping)
    /// through the per-key update path, which publishes only what differs:
    /// every value is checked within [`RECHECK_PERIODS`] reconcile periods.
    fn recheck_values(&mut self, st: &mut Loop, now: Instant) {
        let Some(index) = self.shared.current().filter(|i| !i.is_empty()) else { return };
        let n = index.len();
        let start = st.recheck_after.as_deref().map_or(0, |id| index.first_row_after(id));
        let start = if start >= n { 0 } else { start };
        let rows = start..(start + n.div_ceil(RECHECK_PERIODS)).min(n);
        st.recheck_after = Some(index.doc(rows.end - 1).id.clone());
        let ids: Vec<Box<str>> = rows.map(|r| index.doc(r).id.clone()).collect();
        debug!(keys = ids.len(), "re-reading values without a change feed");
        st.updates.expired(ids, now);
    }
}
