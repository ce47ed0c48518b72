//! `GET /healthz` (liveness) and `GET /readyz` (readiness): what
//! orchestrators probe. Open routes: no key needed.

use std::sync::atomic::Ordering;

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    error::{ApiError, Problem, PROBLEM_JSON},
    AppState,
};
use crate::refresh::FeedState;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(value_type = String, example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers. Always 200.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "get_health",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`, or `ready_serving_last_index` when Redis holds no embeddings.
    #[schema(value_type = String)]
    pub status: &'static str,
    pub index_version: u64,
    pub documents: usize,
    /// Redis holds no embeddings; answers come from the last index loaded.
    pub redis_empty: bool,
    #[schema(value_type = String)]
    pub change_feed: FeedState,
}

/// Readiness: 200 once the first load has finished (and from then on, even
/// if Redis goes away: the index in memory still answers), 503
/// (problem+json, with the last load failure) before.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "get_ready",
    tag = "operations",
    responses(
        (status = 200, description = "An index is loaded and answering", body = Ready),
        (status = 503, description = "`not_ready`: the first load has not finished; `detail` has the last failure", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let index = state.ready_index()?;
    let s = &state.refresh.status;
    Ok(Json(Ready {
        status: if s.redis_empty.load(Ordering::Relaxed) { "ready_serving_last_index" } else { "ready" },
        index_version: index.version(),
        documents: index.len(),
        redis_empty: s.redis_empty.load(Ordering::Relaxed),
        change_feed: s.change_feed(),
    }))
}
