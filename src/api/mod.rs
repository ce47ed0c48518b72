//! HTTP surface (axum). Handlers validate, hand CPU work to `search` on rayon,
//! and render [`error::ApiError`] as problem+json. No Redis here.

pub mod admin;
pub mod batch;
pub mod documents;
pub mod error;
pub mod extract;
pub mod query;
pub mod search;
pub mod stats;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{DefaultBodyLimit, Request},
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
    Extension, Router,
};
use tower::ServiceBuilder;
use tower_http::{
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, TraceLayer},
};
use tracing::Level;

use crate::{
    embed::QueryEmbedder,
    index::{Index, SharedIndex},
    refresh::RefreshHandle,
    search::coalesce::Coalescer,
    store::{context::ContextQueue, keys::KeySpace},
};
use error::ApiError;
use extract::BodyLimit;

/// What every handler may read. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub index: Arc<SharedIndex>,
    pub max_k: usize,
    pub keys: KeySpace,
    /// `None` when context writes are off (`SEMSEARCH_CONTEXT_TTL_SECS=0`).
    pub contexts: Option<ContextQueue>,
    pub refresh: RefreshHandle,
    /// Admin routes answer only when the server is bound to loopback (until
    /// admin keys exist; see the API issue).
    pub admin_open: bool,
    /// `None` when text search is not configured.
    pub embedder: Option<Arc<QueryEmbedder>>,
    /// Most queries one batch request may carry (`SEMSEARCH_MAX_BATCH`).
    pub max_batch: usize,
    /// Scans concurrent `/v1/search` queries together (see `search::coalesce`).
    pub coalescer: Arc<Coalescer<Index>>,
}

impl AppState {
    /// The snapshot to answer with, or 503 `not_ready` with the last load failure.
    ///
    /// # Errors
    /// [`ApiError::NotReady`] until the first load has finished.
    pub fn ready_index(&self) -> Result<Arc<Index>, ApiError> {
        self.index.current().ok_or_else(|| {
            ApiError::NotReady(self.index.last_failure().unwrap_or_else(|| "loading embeddings from Redis".to_owned()))
        })
    }
}

/// Limits applied to every route.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
}

pub fn router(state: AppState, limits: Limits) -> Router {
    let timeout_secs = limits.request_timeout.as_secs();
    Router::new()
        .route("/v1/search", post(search::search))
        .route("/v1/search/batch", post(batch::search_batch))
        .route("/v1/stats", get(stats::stats))
        .route("/v1/documents/{*id}", get(documents::document))
        .route("/v1/admin/reload", post(admin::reload))
        .route("/healthz", get(stats::healthz))
        .route("/readyz", get(stats::readyz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                // 503 while loading is expected; genuine internal errors are logged by ApiError.
                .layer(TraceLayer::new_for_http().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
                .layer(axum::middleware::map_response(move |res: axum::response::Response| async move {
                    // TimeoutLayer answers an empty 408; turn it into our problem+json.
                    if res.status() == StatusCode::REQUEST_TIMEOUT {
                        ApiError::Timeout { secs: timeout_secs }.into_response()
                    } else {
                        res
                    }
                }))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
                .layer(Extension(BodyLimit(limits.max_body_bytes)))
                .layer(DefaultBodyLimit::max(limits.max_body_bytes)),
        )
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("{} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
