//! Limits that protect the server, other than body size and request time
//! (those are layers in [`super::router`]): concurrent searches.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::problem::ApiError;

/// At most `limit` searches at once. A search that finds no free slot is
/// refused (503 `overloaded`, Retry-After) instead of waiting: scans are
/// CPU-bound, so a queue would only add latency to every request behind it.
#[derive(Debug, Clone)]
pub struct SearchSlots {
    permits: Arc<Semaphore>,
    limit: usize,
    /// Searches refused so far: node and router copy it into their
    /// `/metrics` (`semsearch_searches_rejected_total`).
    rejected: Arc<AtomicU64>,
}

impl SearchSlots {
    pub fn new(limit: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(limit)), limit, rejected: Arc::default() }
    }

    /// A slot, released when the permit is dropped (when the handler returns).
    ///
    /// # Errors
    /// [`ApiError::Overloaded`] when all slots are taken.
    pub fn try_acquire(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        Arc::clone(&self.permits).try_acquire_owned().map_err(|_| {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            ApiError::Overloaded { limit: self.limit }
        })
    }

    /// Searches refused with 503 `overloaded` so far.
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Searches running now (for `/metrics`).
    pub fn in_use(&self) -> usize {
        self.limit.saturating_sub(self.permits.available_permits())
    }

    pub fn limit(&self) -> usize {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_makes_the_next_search_overloaded() {
        let slots = SearchSlots::new(1);
        let held = slots.try_acquire().expect("one free slot");
        assert!(matches!(slots.try_acquire(), Err(ApiError::Overloaded { limit: 1 })));
        drop(held);
        assert!(slots.try_acquire().is_ok(), "released on drop");
    }
}
