//! `POST /v1/admin/reload`: force a full reload and answer with the new stats.
//! Who may call it is decided by the admin route layer (`auth`), not here.

use axum::{extract::State, Json};
use tokio::sync::oneshot;

use super::{stats::StatsResponse, AppState};
use crate::problem::{ApiError, Problem, PROBLEM_JSON};
use crate::refresh::ReloadRequest;

/// Reload every embedding from Redis now and answer with the new statistics.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    operation_id = "reload",
    tag = "admin",
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The reloaded index is serving", body = StatsResponse),
        (status = 401, description = "`unauthorized`: no admin key, or an unknown one", body = Problem, content_type = PROBLEM_JSON,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 403, description = "`forbidden`: a search-only key, or admin is disabled (no admin keys and not on loopback)", body = Problem, content_type = PROBLEM_JSON),
        (status = 500, description = "`internal`: the refresher is not running", body = Problem, content_type = PROBLEM_JSON),
        (status = 503, description = "`reload_failed` (the previous index still serves) or `timeout`", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn reload(State(state): State<AppState>) -> Result<Json<StatsResponse>, ApiError> {
    let (tx, rx) = oneshot::channel();
    state
        .refresh
        .reloads
        .send(ReloadRequest { reply: tx })
        .await
        .map_err(|_| ApiError::Internal("the refresher is not running".into()))?;
    let index = rx
        .await
        .map_err(|_| ApiError::Internal("the refresher dropped the reload".into()))?
        .map_err(|e| ApiError::ReloadFailed(e.detail()))?;
    Ok(Json(StatsResponse::new(&state, &index)))
}
