//! What the refresher tells the API: counters, the last reload, why the
//! latest load failed, the change feed's state and the report of the
//! published snapshot.
//!
//! Written only by the refresher task, read by any request (`/v1/stats`,
//! `/readyz`, `/metrics`). Counters are relaxed atomics: each is read on its
//! own, never as a consistent set with the others.

use std::sync::{
    atomic::{AtomicBool, AtomicU64},
    Arc, Mutex,
};

use serde::Serialize;

use crate::store::loader::LoadReport;

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
    /// RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub finished_at: String,
}

/// Where the change feed stands: `tracking` when Redis pushes changes as they
/// happen; otherwise only the periodic reconcile notices them.
// As the refresher last heard from `store::watcher`. Serialized as the
// lowercase variant name: an enum of exactly these four in the OpenAPI document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FeedState {
    /// No answer from the feed yet (the state at start).
    #[default]
    Connecting,
    /// Tracking is armed: changes reach us as they happen.
    Tracking,
    /// The server refused tracking; only the periodic reconcile notices changes.
    Unavailable,
    /// The feed lost its connection and is reconnecting.
    Reconnecting,
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
    /// Read with [`RefreshStatus::change_feed`]; only the refresher sets it.
    change_feed: Mutex<FeedState>,
    /// Why the latest full load failed, for `/readyz` before the first
    /// snapshot; cleared by every publish. Read with [`RefreshStatus::last_failure`].
    last_failure: Mutex<Option<String>>,
    /// Redis has no embeddings while we serve the last index we had.
    pub redis_empty: AtomicBool,
    /// How the published snapshot was built, published with it: the index
    /// version it belongs to, and its report (counts, skips, duration).
    pub load_report: Mutex<Option<(u64, Arc<LoadReport>)>>,
}

impl RefreshStatus {
    pub(super) fn set_feed(&self, state: FeedState) {
        *self.change_feed.lock().unwrap_or_else(|p| p.into_inner()) = state;
    }

    pub fn change_feed(&self) -> FeedState {
        *self.change_feed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records (or clears) why the latest load attempt failed.
    pub(super) fn set_failure(&self, why: Option<String>) {
        // A poisoned lock only means a panic while holding a String; the value is still usable.
        *self.last_failure.lock().unwrap_or_else(|p| p.into_inner()) = why;
    }

    /// Why the latest load attempt failed, if it did and nothing was published since.
    pub fn last_failure(&self) -> Option<String> {
        self.last_failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn last_reload(&self) -> Option<ReloadInfo> {
        self.last_reload.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set_last_reload(&self, info: ReloadInfo) {
        *self.last_reload.lock().unwrap_or_else(|p| p.into_inner()) = Some(info);
    }

    /// The report of the published snapshot, with the version it belongs to.
    pub fn load_report(&self) -> Option<(u64, Arc<LoadReport>)> {
        self.load_report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set_load_report(&self, version: u64, report: LoadReport) {
        *self.load_report.lock().unwrap_or_else(|p| p.into_inner()) = Some((version, Arc::new(report)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_state_serializes_to_the_lowercase_strings_the_api_documents() {
        // Arrange
        let states = [FeedState::Connecting, FeedState::Tracking, FeedState::Unavailable, FeedState::Reconnecting];

        // Act
        let json: Vec<String> = states.iter().map(|s| serde_json::to_string(s).expect("serializable")).collect();

        // Assert
        assert_eq!(json, [r#""connecting""#, r#""tracking""#, r#""unavailable""#, r#""reconnecting""#]);
    }

    #[test]
    fn the_feed_state_is_connecting_until_the_refresher_hears_from_the_feed() {
        // Arrange
        let status = RefreshStatus::default();
        assert_eq!(status.change_feed(), FeedState::Connecting);

        // Act
        status.set_feed(FeedState::Tracking);

        // Assert
        assert_eq!(status.change_feed(), FeedState::Tracking);
    }

    #[test]
    fn the_last_failure_is_kept_until_a_publish_clears_it() {
        // Arrange
        let status = RefreshStatus::default();
        assert_eq!(status.last_failure(), None);

        // Act
        status.set_failure(Some("loading from redis://x failed: refused".to_owned()));
        let kept = status.last_failure();
        status.set_failure(None);

        // Assert
        assert_eq!(kept.as_deref(), Some("loading from redis://x failed: refused"));
        assert_eq!(status.last_failure(), None);
    }
}
