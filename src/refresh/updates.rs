//! The per-key update machine: which changed documents to re-read, and when.
//!
//! Plain data. The loop in `mod.rs` reports changed and expired documents
//! (by id: the change feed parsed their keys once), sleeps until
//! [`KeyUpdates::due`], and when [`KeyUpdates::start`] hands it a batch it
//! re-reads those documents, lets the acceptance rule (`accept.rs`) decide
//! what enters the published snapshot's delta segment (`index::delta`) and
//! reports back. The machine keeps three rules:
//! - documents changed within `key_batch` of the first are applied together;
//! - pacing: after an update that took `t`, the next waits `3 × t`, so a
//!   stream of changes (the chatbot re-embedding every article) cannot keep
//!   a core busy with re-reads. Since updates cost the changed rows (issue 12)
//!   `t` is mostly the Redis round trip, so the pause is short;
//! - the base-version rule: an update is published only if the snapshot it
//!   patched is still the published one and no full reload is running;
//!   otherwise publishing it would undo the reload, so its documents are
//!   re-read on top of the new snapshot instead.

use std::{collections::BTreeSet, time::Duration};

use tokio::time::Instant;

/// After a per-key update that took `t`, the next waits `APPLY_PAUSE_FACTOR × t`.
pub const APPLY_PAUSE_FACTOR: u32 = 3;

/// Shortest wait before documents whose update failed are tried again.
pub const MIN_RETRY: Duration = Duration::from_millis(500);

/// The update in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Running {
    ids: Vec<Box<str>>,
    /// The version of the snapshot the update patches.
    base_version: u64,
    started: Instant,
}

/// What to do with an update that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its base is still the published snapshot: publish it. The ids it re-read.
    Publish(Vec<Box<str>>),
    /// Its base was replaced (or a reload is running): dropped, and its
    /// documents are pending again, to be re-read on top of the new snapshot.
    Requeued,
}

/// The per-key update state machine. See the module doc for its rules.
#[derive(Debug, Clone)]
pub struct KeyUpdates {
    /// Ids of changed documents not yet re-read, sorted so batches are deterministic.
    pending: BTreeSet<Box<str>>,
    /// When the pending documents' batching window closes.
    due: Option<Instant>,
    running: Option<Running>,
    /// No update starts before this, so a stream of changes (the chatbot
    /// re-embedding every article) cannot keep a core busy with back-to-back
    /// re-reads. Set by each finished update.
    not_before: Instant,
    /// How long changed documents are collected before they are applied together.
    batch_window: Duration,
}

impl KeyUpdates {
    pub fn new(now: Instant, batch_window: Duration) -> Self {
        Self { pending: BTreeSet::new(), due: None, running: None, not_before: now, batch_window }
    }

    /// A document's key was set, deleted or expired: re-read it once the
    /// batching window (opened by the first such change) closes.
    pub fn changed(&mut self, id: Box<str>, now: Instant) {
        self.pending.insert(id);
        self.due.get_or_insert(now + self.batch_window);
    }

    /// Documents reached their deadline: re-read them as soon as pacing allows
    /// (queries already hide them; this drops them from the index).
    pub fn expired(&mut self, ids: Vec<Box<str>>, now: Instant) {
        if ids.is_empty() {
            return;
        }
        self.pending.extend(ids);
        self.due.get_or_insert(now);
    }

    /// A full reload has finished. Documents that changed while it ran may have
    /// been missed by its reads; they go now (pacing permitting).
    pub fn after_reload(&mut self, now: Instant) {
        if !self.pending.is_empty() {
            self.due = Some(now);
        }
    }

    /// When the next update may start: the batching window's end, held back
    /// by pacing. `None` while an update runs, while a full reload runs (its
    /// result would make the update's base stale), or when nothing is pending.
    pub fn due(&self, reload_running: bool) -> Option<Instant> {
        if reload_running || self.running.is_some() {
            return None;
        }
        self.due.map(|at| at.max(self.not_before))
    }

    /// Neither pending documents nor an update in flight: the index will not
    /// change through this machine.
    pub fn is_quiet(&self) -> bool {
        self.running.is_none() && self.due.is_none()
    }

    /// Documents pending or an update in flight: the index is about to change.
    pub fn is_busy(&self) -> bool {
        self.running.is_some() || !self.pending.is_empty()
    }

    /// Starts the batch if it is due, patching the snapshot of `base_version`;
    /// the caller re-reads the returned ids. With no snapshot yet (`None`)
    /// the pending ids are dropped: the first full load reads them anyway.
    pub fn start(&mut self, now: Instant, base_version: Option<u64>) -> Option<Vec<Box<str>>> {
        if self.due(false).is_none_or(|at| at > now) {
            return None;
        }
        self.due = None;
        let Some(base_version) = base_version else {
            self.pending.clear();
            return None;
        };
        let ids: Vec<Box<str>> = std::mem::take(&mut self.pending).into_iter().collect();
        self.running = Some(Running { ids: ids.clone(), base_version, started: now });
        Some(ids)
    }

    /// Ends the running update and paces the next one: it may start no
    /// sooner than `APPLY_PAUSE_FACTOR ×` this one's duration from now.
    fn finish(&mut self, now: Instant) -> Option<Running> {
        let running = self.running.take()?;
        self.not_before = now + (now - running.started) * APPLY_PAUSE_FACTOR;
        Some(running)
    }

    /// The running update succeeded. `published_version` is the version
    /// serving now; `reload_running` whether a full reload is in flight.
    /// `None` when no update was running.
    pub fn succeeded(&mut self, now: Instant, published_version: Option<u64>, reload_running: bool) -> Option<Verdict> {
        let running = self.finish(now)?;
        if reload_running || published_version != Some(running.base_version) {
            self.pending.extend(running.ids);
            self.due.get_or_insert(now);
            return Some(Verdict::Requeued);
        }
        Some(Verdict::Publish(running.ids))
    }

    /// The running update failed: its documents are pending again and
    /// retried after `retry_after` (at least [`MIN_RETRY`]). Returns how
    /// many were requeued; `None` when no update was running.
    pub fn failed(&mut self, now: Instant, retry_after: Duration) -> Option<usize> {
        let running = self.finish(now)?;
        let n = running.ids.len();
        self.pending.extend(running.ids);
        self.due = Some(now + retry_after.max(MIN_RETRY));
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BATCH: Duration = Duration::from_millis(50);

    fn id(id: &str) -> Box<str> {
        id.into()
    }

    /// Sleeps (in paused time) until the machine is due, as the loop does,
    /// and starts the batch against snapshot `base`.
    async fn wait_and_start(updates: &mut KeyUpdates, base: u64) -> Vec<Box<str>> {
        let at = updates.due(false).expect("an update is due");
        tokio::time::sleep_until(at).await;
        updates.start(Instant::now(), Some(base)).expect("due, so it starts")
    }

    #[tokio::test(start_paused = true)]
    async fn keys_changed_within_the_batch_window_are_applied_together() {
        // Arrange
        let first = Instant::now();
        let mut updates = KeyUpdates::new(first, BATCH);

        // Act: three keys 10 ms apart (one twice), all inside the first key's window.
        for name in ["b", "a", "c", "a"] {
            updates.changed(id(name), Instant::now());
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        let batch = wait_and_start(&mut updates, 1).await;

        // Assert: one batch, when the first key's window closed, each key once.
        assert_eq!(batch, [id("a"), id("b"), id("c")]);
        assert_eq!(Instant::now(), first + BATCH);
        assert_eq!(updates.due(false), None, "nothing else pending");
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_waits_three_times_the_last_updates_cost() {
        // Arrange: an update that takes 40 ms.
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        wait_and_start(&mut updates, 1).await;
        let cost = Duration::from_millis(40);
        tokio::time::advance(cost).await;
        let finished = Instant::now();
        assert_eq!(updates.succeeded(finished, Some(1), false), Some(Verdict::Publish(vec![id("a")])));

        // Act: a key changes right away; its own window (50 ms) is shorter than the pause.
        updates.changed(id("b"), finished);
        tokio::time::advance(cost * APPLY_PAUSE_FACTOR - Duration::from_millis(1)).await;
        let early = updates.start(Instant::now(), Some(2));
        let batch = wait_and_start(&mut updates, 2).await;

        // Assert
        assert_eq!(early, None, "not before 3 × 40 ms");
        assert_eq!(batch, [id("b")]);
        assert_eq!(Instant::now(), finished + cost * APPLY_PAUSE_FACTOR);
    }

    #[tokio::test(start_paused = true)]
    async fn pacing_also_follows_a_failed_update() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        wait_and_start(&mut updates, 1).await;
        let cost = Duration::from_millis(400);
        tokio::time::advance(cost).await;
        let failed_at = Instant::now();

        // Act
        let requeued = updates.failed(failed_at, Duration::ZERO);

        // Assert: retried no sooner than the pause (1.2 s), which is longer than MIN_RETRY.
        assert_eq!(requeued, Some(1));
        assert_eq!(updates.due(false), Some(failed_at + cost * APPLY_PAUSE_FACTOR));
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_computed_against_a_replaced_base_version_is_not_published() {
        // Arrange: an update patching version 7 ...
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        wait_and_start(&mut updates, 7).await;
        tokio::time::advance(Duration::from_millis(5)).await;

        // Act: ... finishes after a reload published version 8.
        let verdict = updates.succeeded(Instant::now(), Some(8), false);

        // Assert: dropped, and its key is re-read on top of version 8.
        assert_eq!(verdict, Some(Verdict::Requeued));
        assert_eq!(wait_and_start(&mut updates, 8).await, [id("a")]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_update_finishing_while_a_reload_runs_is_not_published() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        wait_and_start(&mut updates, 3).await;

        // Act: the base is still current, but a reload is about to replace it.
        let verdict = updates.succeeded(Instant::now(), Some(3), true);

        // Assert: requeued, and held until the reload is over.
        assert_eq!(verdict, Some(Verdict::Requeued));
        assert_eq!(updates.due(true), None);
        updates.after_reload(Instant::now());
        assert!(updates.due(false).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_update_retries_its_keys_after_the_backoff() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        updates.changed(id("b"), Instant::now());
        wait_and_start(&mut updates, 1).await;

        // Act
        let failed_at = Instant::now();
        let requeued = updates.failed(failed_at, Duration::from_secs(2));

        // Assert
        assert_eq!(requeued, Some(2));
        assert_eq!(updates.due(false), Some(failed_at + Duration::from_secs(2)));
        assert_eq!(wait_and_start(&mut updates, 1).await, [id("a"), id("b")]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_update_waits_at_least_the_minimum_retry() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        wait_and_start(&mut updates, 1).await;

        // Act: failed at once (no pacing), with the reload backoff still at 100 ms.
        let failed_at = Instant::now();
        updates.failed(failed_at, Duration::from_millis(100));

        // Assert
        assert_eq!(updates.due(false), Some(failed_at + MIN_RETRY));
    }

    #[tokio::test(start_paused = true)]
    async fn keys_wait_while_a_reload_or_another_update_runs() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        wait_and_start(&mut updates, 1).await;

        // Act
        updates.changed(id("b"), Instant::now());
        tokio::time::advance(BATCH * 2).await;

        // Assert
        assert_eq!(updates.due(false), None, "an update is running");
        assert_eq!(updates.start(Instant::now(), Some(1)), None);
        updates.succeeded(Instant::now(), Some(1), false);
        assert_eq!(updates.due(true), None, "a reload is running");
        assert!(updates.due(false).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn keys_changed_before_the_first_load_are_dropped() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        updates.changed(id("a"), Instant::now());
        tokio::time::advance(BATCH).await;

        // Act
        let batch = updates.start(Instant::now(), None);

        // Assert
        assert_eq!(batch, None);
        assert!(updates.is_quiet() && !updates.is_busy());
    }

    #[tokio::test(start_paused = true)]
    async fn expired_keys_are_re_read_without_waiting_for_the_batch_window() {
        // Arrange
        let mut updates = KeyUpdates::new(Instant::now(), BATCH);
        let expired_at = Instant::now();

        // Act
        updates.expired(Vec::new(), expired_at);
        let nothing = updates.due(false);
        updates.expired(vec![id("a"), id("b")], expired_at);

        // Assert
        assert_eq!(nothing, None, "no expired keys, nothing scheduled");
        assert_eq!(wait_and_start(&mut updates, 1).await, [id("a"), id("b")]);
        assert_eq!(Instant::now(), expired_at);
    }

    #[test]
    fn finishing_when_nothing_runs_is_ignored() {
        // Arrange
        let now = Instant::now();
        let mut updates = KeyUpdates::new(now, BATCH);

        // Act
        let (ok, failed) = (updates.succeeded(now, Some(1), false), updates.failed(now, MIN_RETRY));

        // Assert
        assert_eq!((ok, failed), (None, None));
        assert!(updates.is_quiet());
    }
}
