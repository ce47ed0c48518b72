//! `semsearch router`: one HTTP front for exact shards.
//!
//! Each shard is a set of ordinary semsearch replicas started with
//! `SEMSEARCH_SHARD=i/n` (documents whose key's Redis hash slot mod n is i,
//! see [`crate::shard`]) and context writes off. The router serves the same
//! search API: it calls one healthy replica per shard at once
//! ([`shards`]: per-shard timeout, retry on the next replica, 503
//! `shard_unavailable` naming the shard when none answers, never a partial
//! answer), and merges the per-shard exact top-k under the tie rule
//! ([`merge`]), so every answer equals the single-node answer. Text is
//! embedded once, here; contexts are written once, here ([`handlers`]).
//!
//! What shards answer is checked before use ([`decode`]), and so is which
//! shard each replica is ([`verify`], at start and on every `/readyz`). The
//! router bounds its own concurrent requests: the excess gets 503
//! `overloaded` at the door, as on a node, before any shard is called.
//!
//! Deliberately not here: Redis reads (the shards load and follow Redis),
//! placement and restarts (Kubernetes), and resharding (change `n`, restart
//! the shards; every replica rebuilds from Redis).

pub mod decode;
pub mod handlers;
pub mod merge;
pub mod shards;
pub mod verify;

use std::{
    sync::{atomic::AtomicU64, Arc},
    time::Duration,
};

use axum::{
    extract::{DefaultBodyLimit, Request, State},
    middleware::{self, Next},
    response::Response,
    routing::{get, post},
    Extension, Router,
};

use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::problem::ApiError;
use crate::{
    api::{
        auth::{self, AccessKeys},
        extract::BodyLimit,
        limits::SearchSlots,
    },
    embed::QueryEmbedder,
    index::lexical::LexicalSettings,
    query::answer::Budget,
    secret::Secret,
    store::{context::ContextQueue, keys::KeySpace},
};

/// The router's own settings (see `config::RouterArgs`); the rest (bind
/// address, keys, limits, embedder, context TTL) are the service's.
#[derive(Debug, Clone)]
pub struct RouterSettings {
    /// Per shard, in shard order (shard `i` runs `SEMSEARCH_SHARD=i/n`), its
    /// replicas' base URLs.
    pub shards: Vec<Vec<String>>,
    /// Longest wait for one replica before trying the next.
    pub shard_timeout: Duration,
    /// Bearer key the router sends to the replicas, when they need one.
    pub shard_api_key: Option<Secret>,
    /// Most bytes read of one shard answer.
    pub max_shard_answer_bytes: usize,
}

/// Why `SEMSEARCH_ROUTER_SHARDS` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("SEMSEARCH_ROUTER_SHARDS {value:?}: {why}; write replicas of one shard with '|' and shards with ',', e.g. http://a:8080|http://b:8080,http://c:8080")]
pub struct ShardListError {
    pub value: String,
    pub why: &'static str,
}

/// Parses `url|url,url|url,…`: comma between shards, `|` between the
/// replicas of one shard.
///
/// # Errors
/// [`ShardListError`] for no shard, an empty replica, a URL that is not
/// http(s), or more shards than hash slots.
pub fn parse_shard_list(value: &str) -> Result<Vec<Vec<String>>, ShardListError> {
    let err = |why| ShardListError { value: value.to_owned(), why };
    let shards: Vec<Vec<String>> = value
        .split(',')
        .map(|shard| shard.split('|').map(|u| u.trim().trim_end_matches('/').to_owned()).collect())
        .collect();
    if shards.len() > usize::from(crate::shard::SLOTS) {
        return Err(err("more shards than the 16384 hash slots"));
    }
    for url in shards.iter().flatten() {
        if url.is_empty() {
            return Err(err("a replica URL is empty"));
        }
        let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains(['?', '#', ' '])) {
            return Err(err("a replica URL is not http(s)://host[:port][/path]"));
        }
    }
    Ok(shards)
}

/// Mean router time per search beyond the slowest shard's round trip
/// (resolution, merge, rendering, fan-out scheduling).
#[derive(Debug, Default)]
pub struct Overhead {
    pub sum_us: AtomicU64,
    pub count: AtomicU64,
}

/// Shared by every route of the router.
#[derive(Clone)]
pub struct RouterState {
    pub shards: Arc<shards::Shards>,
    /// `None`: text queries get 422 `text_search_disabled`.
    pub embedder: Option<Arc<QueryEmbedder>>,
    /// Key names: the embedding prefix (an id's hash slot is that of its
    /// key) and the context prefix.
    pub keys: KeySpace,
    /// `None` when the router writes no contexts.
    pub contexts: Option<ContextQueue>,
    pub max_k: usize,
    pub max_batch: usize,
    /// What one request may cost, as on a node.
    pub budget: Budget,
    /// How questions are analysed and fused: the shards' settings, so
    /// that terms and statistics mean the same on both.
    pub lexical: Arc<LexicalSettings>,
    pub overhead: Arc<Overhead>,
    /// Which shard each replica is: the last check's verdict.
    pub checks: Arc<verify::Checks>,
    /// Requests the router serves at once (`SEMSEARCH_MAX_CONCURRENT_SEARCHES`).
    pub slots: SearchSlots,
}

/// The router's door: a request that finds every slot taken is answered
/// 503 `overloaded` (Retry-After) at once, before any shard is called, as a
/// node answers its own excess. Without it a burst went through to the
/// shards, whose limits answered part of it with 503s that the router
/// reported as `shard_unavailable`.
async fn door(State(slots): State<SearchSlots>, req: Request, next: Next) -> Result<Response, ApiError> {
    let _slot = slots.try_acquire()?;
    Ok(next.run(req).await)
}

/// The router's routes, guarded as the service guards them.
pub fn routes(state: RouterState, access: Arc<AccessKeys>, max_body_bytes: usize) -> Router {
    let open = Router::new()
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics));
    let guarded = Router::new()
        .route("/v1/search", post(handlers::search))
        .route("/v1/search/batch", post(handlers::search_batch))
        .route("/v1/documents/{*id}", get(handlers::document))
        .route("/v1/stats", get(handlers::stats))
        .route_layer(middleware::from_fn_with_state(state.slots.clone(), door))
        // Outside the door: a request without a key takes no slot.
        .route_layer(middleware::from_fn(auth::require_search_key));
    open.merge(guarded)
        .fallback(|req: axum::extract::Request| async move {
            ApiError::NotFound(format!("{} {}", req.method(), req.uri().path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::api::request_span)
                .on_response(crate::api::on_response)
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG)),
        )
        .layer(Extension(access))
        .layer(Extension(BodyLimit(max_body_bytes)))
        .layer(middleware::from_fn(crate::api::extract::refuse_declared_oversize))
        .layer(DefaultBodyLimit::max(max_body_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_list_reads_commas_between_shards_and_bars_between_replicas() {
        let got = parse_shard_list("http://a:1|http://b:2/, https://c").expect("valid");
        assert_eq!(got, vec![vec!["http://a:1".to_owned(), "http://b:2".to_owned()], vec!["https://c".to_owned()]]);
    }

    #[test]
    fn shard_list_refuses_empty_and_non_http_replicas() {
        for bad in ["", "http://a,", "http://a||http://b", "a:8080", "http://", "ftp://x", "http://a?x"] {
            assert!(parse_shard_list(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
