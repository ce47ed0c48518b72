//! `GET /healthz` (liveness) and `GET /readyz` (readiness): what
//! orchestrators probe. Open routes: no key needed.

use std::sync::atomic::Ordering;

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::problem::{ApiError, Problem, PROBLEM_JSON};
use crate::refresh::FeedState;

/// Liveness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: HealthStatus,
}

/// What `/healthz` says: there is one answer, since a process that cannot
/// give it does not answer at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Ok,
}

/// Whether the index answering `/readyz` mirrors Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// An index is loaded and follows Redis.
    Ready,
    /// Redis holds no embeddings (flushed, or restarted empty); the last
    /// index loaded keeps answering.
    ReadyServingLastIndex,
}

/// Liveness: the process answers; always 200.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "get_health",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: HealthStatus::Ok })
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    pub status: ReadyStatus,
    pub index_version: u64,
    pub documents: usize,
    /// Redis holds no embeddings; answers come from the last index loaded.
    pub redis_empty: bool,
    pub change_feed: FeedState,
}

/// Readiness: 200 once the first load has finished, 503 before.
///
/// From the first load on it stays 200 even if Redis goes away: the index in
/// memory still answers. Before, the 503 problem carries the last load failure.
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
        status: if s.redis_empty.load(Ordering::Relaxed) {
            ReadyStatus::ReadyServingLastIndex
        } else {
            ReadyStatus::Ready
        },
        index_version: index.version(),
        documents: index.len(),
        redis_empty: s.redis_empty.load(Ordering::Relaxed),
        change_feed: s.change_feed(),
    }))
}
