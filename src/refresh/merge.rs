//! The delta merge machine: when to fold a snapshot's delta into a new
//! base, and what to do with a merge that finishes.
//!
//! Plain data, like the other machines: the loop in `mod.rs` reports each
//! published snapshot, runs the merge [`DeltaMerge::published`] asks for
//! on a blocking thread (`Index::merged`: copying the live rows and
//! quantizing them is O(N), ~1 s at 1M × 384), and reports the result
//! back. The rules:
//! - a merge starts when a published snapshot's delta or tombstones have
//!   reached `index::delta::DELTA_MAX_ROWS` (`Index::needs_merge`), so
//!   per-key updates stay O(changed rows); at most one runs at a time;
//! - a finished merge of the snapshot still serving is published as it is;
//! - if per-key updates were published while it ran (the serving snapshot
//!   still shares the merged one's base), it is rebased on them
//!   (`Index::rebase`) and published;
//! - if a reload or another merge replaced the base meanwhile, it is
//!   dropped: the serving snapshot owes nothing to that base;
//! - a merge that failed is dropped too, and the delta keeps serving; the
//!   next update that needs a merge starts one;
//! - a published merge is reported like any other snapshot: updates
//!   published during the merge may have filled the delta again.

use std::time::Duration;

use tokio::time::Instant;

/// The merge in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    /// The version of the snapshot being merged.
    source_version: u64,
    started: Instant,
}

/// The serving snapshot, as a finished merge needs to see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    pub version: u64,
    /// Whether it shares the merged snapshot's base (`Index::shares_base_with`):
    /// it descends from it by per-key updates only.
    pub shares_base: bool,
}

/// What to do with a merge that finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeVerdict {
    /// The merged snapshot is still the serving one: publish the merge as it is.
    Publish,
    /// Per-key updates were published meanwhile: publish the merge rebased on them.
    Rebase,
    /// The base was replaced (or nothing serves): drop the merge.
    Drop,
}

/// The delta merge state machine. See the module doc for its rules.
#[derive(Debug, Clone, Default)]
pub struct DeltaMerge {
    running: Option<Running>,
}

impl DeltaMerge {
    pub fn new() -> Self {
        Self::default()
    }

    /// Snapshot `version` was published; `needs_merge` whether its delta has
    /// reached the bound. True: start merging it now.
    pub fn published(&mut self, now: Instant, version: u64, needs_merge: bool) -> bool {
        if self.running.is_some() || !needs_merge {
            return false;
        }
        self.running = Some(Running { source_version: version, started: now });
        true
    }

    /// A merge is in flight.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The running merge produced its snapshot; `serving` is the published
    /// snapshot now. What to do with it and how long the merge took; `None`
    /// when no merge was running.
    pub fn finished(&mut self, now: Instant, serving: Option<Serving>) -> Option<(MergeVerdict, Duration)> {
        let running = self.running.take()?;
        let verdict = match serving {
            Some(s) if s.version == running.source_version => MergeVerdict::Publish,
            Some(s) if s.shares_base => MergeVerdict::Rebase,
            _ => MergeVerdict::Drop,
        };
        Some((verdict, now - running.started))
    }

    /// The running merge failed (it panicked); the delta keeps serving.
    /// How long it ran; `None` when no merge was running.
    pub fn failed(&mut self, now: Instant) -> Option<Duration> {
        self.running.take().map(|r| now - r.started)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MERGE_TIME: Duration = Duration::from_millis(900);

    /// Starts merging version `version`, and lets the merge run [`MERGE_TIME`].
    async fn merge_version(merge: &mut DeltaMerge, version: u64) {
        assert!(merge.published(Instant::now(), version, true), "the delta is full and nothing runs");
        tokio::time::advance(MERGE_TIME).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_merge_starts_only_once_the_delta_is_full_and_only_one_runs() {
        // Arrange
        let mut merge = DeltaMerge::new();

        // Act
        let small = merge.published(Instant::now(), 1, false);
        let full = merge.published(Instant::now(), 2, true);
        let while_running = merge.published(Instant::now(), 3, true);

        // Assert
        assert!(!small, "a delta under the bound is not merged");
        assert!(full);
        assert!(!while_running, "one merge at a time; its rebase takes up version 3");
        assert!(merge.is_running());
    }

    #[tokio::test(start_paused = true)]
    async fn a_merge_of_the_serving_snapshot_is_published_as_it_is() {
        // Arrange
        let mut merge = DeltaMerge::new();
        merge_version(&mut merge, 5).await;

        // Act
        let verdict = merge.finished(Instant::now(), Some(Serving { version: 5, shares_base: true }));

        // Assert
        assert_eq!(verdict, Some((MergeVerdict::Publish, MERGE_TIME)));
        assert!(!merge.is_running());
    }

    #[tokio::test(start_paused = true)]
    async fn a_merge_finishing_after_per_key_updates_is_rebased_on_them() {
        // Arrange: version 5 merges while updates publish 6 and 7 on the same base.
        let mut merge = DeltaMerge::new();
        merge_version(&mut merge, 5).await;

        // Act
        let verdict = merge.finished(Instant::now(), Some(Serving { version: 7, shares_base: true }));

        // Assert
        assert_eq!(verdict, Some((MergeVerdict::Rebase, MERGE_TIME)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_merge_finishing_after_a_reload_replaced_the_base_is_dropped() {
        // Arrange
        let mut merge = DeltaMerge::new();
        merge_version(&mut merge, 5).await;

        // Act: a reload published version 6 with a base of its own.
        let verdict = merge.finished(Instant::now(), Some(Serving { version: 6, shares_base: false }));

        // Assert
        assert_eq!(verdict.map(|(v, _)| v), Some(MergeVerdict::Drop));
    }

    #[tokio::test(start_paused = true)]
    async fn a_merge_with_nothing_serving_is_dropped() {
        let mut merge = DeltaMerge::new();
        merge_version(&mut merge, 5).await;

        assert_eq!(merge.finished(Instant::now(), None).map(|(v, _)| v), Some(MergeVerdict::Drop));
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failed_merge_the_next_full_delta_starts_another() {
        // Arrange
        let mut merge = DeltaMerge::new();
        merge_version(&mut merge, 5).await;

        // Act
        let ran = merge.failed(Instant::now());
        let next = merge.published(Instant::now(), 6, true);

        // Assert
        assert_eq!(ran, Some(MERGE_TIME));
        assert!(next);
    }

    #[tokio::test(start_paused = true)]
    async fn a_published_merge_whose_delta_refilled_starts_the_next_merge() {
        // Arrange: the rebased merge is published as version 8 and its delta is full again.
        let mut merge = DeltaMerge::new();
        merge_version(&mut merge, 5).await;
        merge.finished(Instant::now(), Some(Serving { version: 7, shares_base: true }));

        // Act
        let again = merge.published(Instant::now(), 8, true);

        // Assert
        assert!(again);
    }

    #[test]
    fn finishing_when_nothing_runs_is_ignored() {
        // Arrange
        let mut merge = DeltaMerge::new();
        let now = Instant::now();

        // Act
        let (finished, failed) = (merge.finished(now, None), merge.failed(now));

        // Assert
        assert_eq!((finished, failed), (None, None));
        assert!(!merge.is_running());
    }
}
