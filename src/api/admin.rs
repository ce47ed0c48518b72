//! `POST /v1/admin/reload`: force a full reload and answer with the new stats.

use axum::{extract::State, Json};
use tokio::sync::oneshot;

use super::{error::ApiError, stats::StatsResponse, AppState};
use crate::refresh::Command;

pub async fn reload(State(state): State<AppState>) -> Result<Json<StatsResponse>, ApiError> {
    if !state.admin_open {
        return Err(ApiError::Forbidden(
            "admin routes are disabled unless semsearch is bound to a loopback address".into(),
        ));
    }
    let (tx, rx) = oneshot::channel();
    state
        .refresh
        .commands
        .send(Command::Reload(tx))
        .await
        .map_err(|_| ApiError::Internal("the refresher is not running".into()))?;
    let index = rx
        .await
        .map_err(|_| ApiError::Internal("the refresher dropped the reload".into()))?
        .map_err(ApiError::ReloadFailed)?;
    Ok(Json(StatsResponse::new(&state, &index)))
}
