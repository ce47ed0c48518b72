//! `GET /v1/stats`, `GET /healthz`, `GET /readyz`: what operators look at.

use axum::{extract::State, Json};
use serde::Serialize;

use super::{error::ApiError, AppState};
use crate::{search::kernel, store::loader::SkipCounts};

#[derive(Debug, Serialize)]
pub struct StatsResponse {
    pub documents: usize,
    pub dimension: usize,
    /// Bytes of the vector matrix.
    pub index_bytes: usize,
    /// Bytes of ids, URLs, titles and texts.
    pub metadata_bytes: usize,
    pub keys_scanned: usize,
    pub skipped: SkipCounts,
    pub load_duration_ms: f64,
    pub index_version: u64,
    /// RFC 3339, UTC.
    pub loaded_at: String,
    pub kernel: &'static str,
}

pub async fn stats(State(state): State<AppState>) -> Result<Json<StatsResponse>, ApiError> {
    let index = state.ready_index()?;
    let r = &index.report;
    Ok(Json(StatsResponse {
        documents: index.len(),
        dimension: index.dim(),
        index_bytes: index.matrix_bytes(),
        metadata_bytes: index.metadata_bytes(),
        keys_scanned: r.keys_scanned,
        skipped: r.skipped.clone(),
        load_duration_ms: r.duration.as_secs_f64() * 1000.0,
        index_version: index.version(),
        loaded_at: humantime::format_rfc3339_millis(index.loaded_at()).to_string(),
        kernel: kernel::name(),
    }))
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
}

/// Liveness: the process answers. Always 200.
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Debug, Serialize)]
pub struct Ready {
    pub status: &'static str,
    pub index_version: u64,
    pub documents: usize,
}

/// Readiness: 200 once the first load has finished, 503 (problem+json, with
/// the last load failure) before.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let index = state.ready_index()?;
    Ok(Json(Ready { status: "ready", index_version: index.version(), documents: index.len() }))
}
