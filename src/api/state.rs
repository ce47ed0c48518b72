//! [`AppState`]: what every handler may read, and the three questions every
//! handler asks of it (the rules a request is checked against, what
//! resolves a plan, the snapshot to answer with).

use std::sync::Arc;

use super::{auth::AccessKeys, limits::SearchSlots};
use crate::{
    embed::QueryEmbedder,
    index::{coalesce::Coalescer, Index, SharedIndex},
    problem::ApiError,
    query::{answer::Budget, resolve::Resolver, Rules},
    refresh::RefreshHandle,
    store::{context::ContextQueue, keys::KeySpace},
};
use semsearch_scan::ScanCounters;

/// What every handler may read: one `Arc` (axum clones the state for every
/// request; a profile of 64 clients showed the field-by-field clone and drop
/// of a dozen counted handles, channel senders and the key space's strings).
#[derive(Debug, Clone)]
pub struct AppState(Arc<AppParts>);

impl AppState {
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of an [`AppState`].
#[derive(Debug)]
pub struct AppParts {
    pub index: Arc<SharedIndex>,
    pub max_k: usize,
    pub keys: KeySpace,
    /// `None` when context writes are off (`SEMSEARCH_CONTEXT_TTL_SECS=0`).
    pub contexts: Option<ContextQueue>,
    pub refresh: RefreshHandle,
    /// API keys, checked by the route layers of [`routes`].
    pub access: Arc<AccessKeys>,
    /// Shared by every endpoint that scans, so the limit counts scans, not routes.
    pub searches: SearchSlots,
    /// `None` when text search is not configured.
    pub embedder: Option<Arc<QueryEmbedder>>,
    /// Most queries one batch request may carry (`SEMSEARCH_MAX_BATCH`).
    pub max_batch: usize,
    /// What one request may cost (results, text bytes); see [`Budget`].
    pub budget: Budget,
    /// Scans concurrent `/v1/search` queries together (see `index::coalesce`).
    pub coalescer: Arc<Coalescer>,
    /// How queries were answered (int8 or f32, rescored rows, fallbacks),
    /// across snapshots; read by `/v1/stats` and `/metrics`.
    pub scans: Arc<ScanCounters>,
}

impl AppParts {
    /// What a request is checked against on this node, with `index`'s dimension.
    pub fn rules<'a>(&'a self, index: &Index) -> Rules<'a> {
        Rules { max_k: self.max_k, keys: &self.keys, dim: index.dim() }
    }

    /// What resolves a plan on this node.
    pub fn resolver(&self) -> Resolver<'_> {
        Resolver { embedder: self.embedder.as_deref(), contexts: self.contexts.as_ref().map(|_| &self.keys) }
    }

    /// The snapshot to answer with, or 503 `not_ready` with the last load failure.
    ///
    /// # Errors
    /// [`ApiError::NotReady`] until the first load has finished.
    pub fn ready_index(&self) -> Result<Arc<Index>, ApiError> {
        self.index.current().ok_or_else(|| {
            ApiError::NotReady(
                self.refresh.status.last_failure().unwrap_or_else(|| "loading embeddings from Redis".to_owned()),
            )
        })
    }
}
