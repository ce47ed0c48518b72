//! The swap point between loaders and queries.
//!
//! A query takes one `Arc<Index>` with [`SharedIndex::current`] and uses it to
//! the end, so a reload can never mix two versions and readers never wait for
//! writers. The old snapshot is dropped when the last query holding it ends.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use arc_swap::ArcSwapOption;

use super::Index;

/// `None` until the first load finishes (that is what `/readyz` reports;
/// why a load failed is the refresher's to say: `refresh::RefreshStatus`).
#[derive(Debug, Default)]
pub struct SharedIndex {
    current: ArcSwapOption<Index>,
    versions: AtomicU64,
}

impl SharedIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot to answer one query with, if any load has finished.
    pub fn current(&self) -> Option<Arc<Index>> {
        self.current.load_full()
    }

    /// Publishes a new snapshot with the next version number; returns it.
    pub fn replace(&self, index: Index) -> Arc<Index> {
        self.replace_with(index, |_| {})
    }

    /// As [`SharedIndex::replace`], calling `before_publish` with the new
    /// version just before readers can see it (to retire caches built from
    /// older versions first).
    pub fn replace_with(&self, mut index: Index, before_publish: impl FnOnce(u64)) -> Arc<Index> {
        let version = self.versions.fetch_add(1, Ordering::AcqRel) + 1;
        index.set_version(version);
        before_publish(version);
        let index = Arc::new(index);
        self.current.store(Some(Arc::clone(&index)));
        index
    }
}
