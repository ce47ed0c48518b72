//! HTTP surface (axum): thin adapters over the one query path. A request
//! goes: [`extract`] (our `Json`, every rejection a problem) → `crate::query`
//! (`dto` the bodies, `plan` the checks, `resolve` the embedding, `execute`
//! the ranking on rayon, `answer` the rendering and the context entry) →
//! the handler ([`search`], [`batch`], [`documents`], and [`shard`] for the
//! router) → `store::context` for the chatbot. Handlers read [`AppState`]
//! ([`state`]). Errors are [`crate::problem::ApiError`], rendered as
//! problem+json. No Redis command is sent from here.
//!
//! Around them: [`auth`] (API keys), [`cors`], [`limits`] (concurrent
//! searches), [`health`] (liveness, readiness), [`stats`], [`admin`],
//! [`metrics`] (Prometheus), [`openapi`] (the spec, from these handlers) and
//! the playground page at `/` (assets compiled in). [`server`] is the accept
//! loop with its connection bounds; [`head_errors`] turns the HTTP parser's
//! own error answers into problem+json.

pub mod extract;
pub mod search;
pub mod batch;
pub mod shard;
pub mod documents;
pub mod embed;
pub mod responses;
pub mod auth;
pub mod cors;
pub mod limits;
pub mod health;
pub mod stats;
pub mod admin;
pub mod metrics;
pub mod openapi;
mod playground;
pub mod server;
mod state;

pub use state::{AppParts, AppState};
pub mod head_errors;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{header, HeaderName, HeaderValue, StatusCode},
    middleware,
    response::IntoResponse,
    Extension, Router,
};
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnFailure, DefaultOnResponse, OnResponse, TraceLayer},
};
use tracing::{field::Empty, Level};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{problem::ApiError, telemetry::propagation};
use extract::BodyLimit;

/// Limits applied to every route.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_body_bytes: usize,
    pub request_timeout: Duration,
    /// Empty: CORS off.
    pub cors_origins: Vec<String>,
}

/// Every route with its OpenAPI annotations, grouped by who may call it.
///
/// To add a route: annotate the handler with `#[utoipa::path]` (an
/// `operation_id`, its responses, `security` matching its group) and add it
/// with `routes!` to the group whose layer guards it. `openapi.yaml` then
/// follows from [`openapi::spec`]; the drift test in `tests/api/openapi.rs`
/// says how to regenerate it, and the auth test checks every operation that
/// declares a security scheme is really guarded.
pub fn routes() -> OpenApiRouter<AppState> {
    let open = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::metrics))
        .routes(routes!(openapi::openapi_yaml))
        .routes(routes!(openapi::docs))
        .routes(routes!(openapi::docs_script));
    let search = OpenApiRouter::new()
        .routes(routes!(search::search))
        .routes(routes!(batch::search_batch))
        .routes(routes!(documents::document))
        .routes(routes!(embed::embed))
        .routes(routes!(stats::stats))
        .route_layer(middleware::from_fn(auth::require_search_key));
    let admin =
        OpenApiRouter::new().routes(routes!(admin::reload)).route_layer(middleware::from_fn(auth::require_admin_key));
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi()).merge(open).merge(search).merge(admin)
}

/// The header carrying the request id, taken from the client or generated.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState, limits: Limits) -> Router {
    let timeout_ms = limits.request_timeout.as_millis();
    let access = Arc::clone(&state.access);
    let (routes, _) = routes().split_for_parts();
    // Between semsearch processes (the router's shard calls), so not in the spec.
    let shard_route = axum::Router::new()
        .route("/v1/shard/search", axum::routing::post(shard::shard_search))
        .route("/v1/shard/stats", axum::routing::post(shard::shard_stats))
        .route("/v1/shard/info", axum::routing::get(shard::shard_info))
        .route("/v1/shard/document", axum::routing::post(shard::shard_document))
        .route_layer(middleware::from_fn(auth::require_search_key));
    let routes = routes.merge(playground::routes()).merge(shard_route);
    let router = routes.fallback(not_found).method_not_allowed_fallback(method_not_allowed).with_state(state).layer(
        ServiceBuilder::new()
            .layer(middleware::map_request(drop_unusable_request_id))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            // 503 while loading is expected; genuine internal errors are logged by ApiError.
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_response(on_response)
                    .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
            )
            .layer(middleware::from_fn(metrics::track))
            .layer(axum::middleware::map_response(|mut res: axum::response::Response| async move {
                res.headers_mut().insert(header::SERVER, HeaderValue::from_static(crate::build_info::SERVER));
                res
            }))
            .layer(axum::middleware::map_response(move |res: axum::response::Response| async move {
                // TimeoutLayer answers an empty 408; turn it into our problem+json.
                if res.status() == StatusCode::REQUEST_TIMEOUT {
                    ApiError::Timeout { limit_ms: timeout_ms }.into_response()
                } else {
                    res
                }
            }))
            .layer(Extension(BodyLimit(limits.max_body_bytes)))
            .layer(middleware::from_fn(extract::refuse_declared_oversize))
            .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
            .layer(Extension(access))
            .layer(DefaultBodyLimit::max(limits.max_body_bytes)),
    );
    match cors::layer(&limits.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Longest client-sent `x-request-id` we keep and echo, in characters.
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Whether a client's request id is kept: 1 to [`MAX_REQUEST_ID_CHARS`]
/// visible ASCII characters (no spaces or controls). It is echoed in every
/// answer and written in every log line of the request, so anything else
/// (a 60 KB id was echoed whole) is replaced by our own.
pub fn usable_request_id(value: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&value.len()) && value.iter().all(|b| b.is_ascii_graphic())
}

/// Removes an unusable `x-request-id` (see [`usable_request_id`]) before
/// `SetRequestIdLayer`, which then generates ours. Several ids: all dropped.
async fn drop_unusable_request_id(mut req: Request) -> Request {
    let headers = req.headers_mut();
    let mut values = headers.get_all(&REQUEST_ID).iter();
    let unusable = match (values.next(), values.next()) {
        (Some(one), None) => !usable_request_id(one.as_bytes()),
        (None, _) => false,
        (Some(_), Some(_)) => true,
    };
    if unusable {
        headers.remove(&REQUEST_ID);
    }
    req
}

/// One span per request: every log line of the request carries its id and
/// route, and with traces on it is the server span, joined to the caller's
/// trace (`telemetry::propagation`). The router opens the same span.
pub(crate) fn request_span(req: &Request) -> tracing::Span {
    // The node has already replaced an unusable id; the router, which
    // shares this span, must not log one either.
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| usable_request_id(v.as_bytes()))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        route,
        request_id,
        otel.name = Empty,
        otel.kind = Empty,
        otel.status_code = Empty,
        http.response.status_code = Empty,
    );
    propagation::join_caller(&span, req.method(), route, req.headers());
    span
}

/// The answer's status on the request span; the usual DEBUG line.
pub(crate) fn on_response<B>(res: &axum::http::Response<B>, latency: Duration, span: &tracing::Span) {
    DefaultOnResponse::new().on_response(res, latency, span);
    propagation::record_status(span, res.status());
}

async fn not_found(req: Request) -> ApiError {
    ApiError::NotFound(format!("{} {}", req.method(), req.uri().path()))
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
