//! The router's HTTP routes: the service's API, answered by fanning out to
//! one replica per shard and merging ([`super::merge`]).
//!
//! A query is resolved once, here: a `text` is embedded at the router; an
//! `id` is looked up on the shard that owns its key's hash slot, which then
//! gets the `id` query itself (and leaves the document out, as a single node
//! does), while every other shard gets the stored vector. Shards are called
//! with texts whenever contexts are written, because the router writes
//! contexts (once, with titles and texts) and the shards run with context
//! writes off.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use axum::{
    extract::{OriginalUri, Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures::future::join_all;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    merge::{merge_top_k, Ranked},
    shards::{Reply, Unavailable},
    RouterState,
};
use crate::problem::ApiError;
use crate::{
    api::{
        dto::{BatchRequest, BatchResponse, ContextRef, FewerReason, SearchRequest, SearchResponse, SearchResult},
        extract::Json,
        query::{embed_text, normalized, validate_k, validate_vector},
    },
    shard::Shard,
    store::context::{self, ContextEntry, ContextWrite},
};

/// What a router route fails with: our own problem, or a shard's 4xx
/// passed on as the shard wrote it.
#[derive(Debug)]
pub enum RouteError {
    Api(ApiError),
    Shard(Reply),
}

impl From<ApiError> for RouteError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<Unavailable> for RouteError {
    fn from(e: Unavailable) -> Self {
        Self::Api(ApiError::ShardUnavailable { shard: e.shard, replicas: e.replicas })
    }
}

impl IntoResponse for RouteError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Shard(reply) => passthrough(reply),
        }
    }
}

fn passthrough(reply: Reply) -> Response {
    let mut res = (reply.status, reply.body).into_response();
    if let Some(ct) = reply.content_type {
        res.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    res
}

/// One hit as a shard returns it.
#[derive(Debug, Deserialize)]
struct ShardHit {
    id: String,
    url: String,
    title: Option<String>,
    #[serde(default)]
    text: Option<String>,
    score: f32,
}

impl Ranked for ShardHit {
    fn score(&self) -> f32 {
        self.score
    }
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Deserialize)]
struct ShardSearch {
    results: Vec<ShardHit>,
    index_version: u64,
    #[serde(default)]
    fewer_results_reason: Option<FewerReason>,
}

#[derive(Debug, Deserialize)]
struct ShardBatch {
    results: Vec<Vec<ShardHit>>,
    fewer_results_reasons: Vec<Option<FewerReason>>,
    index_version: u64,
}

/// A query resolved at the router: what each shard is asked.
#[derive(Debug)]
enum Resolved {
    /// `vector` as the client sent it (each shard validates and normalises
    /// it exactly as a single node would); `unit` for the context key.
    Vector { raw: Vec<Option<f64>>, unit: Vec<f32> },
    /// Embedded once, here.
    Text { unit: Vec<f32> },
    /// The owner gets the `id` query; the others the stored unit vector.
    Id { id: String, owner: usize, stored: Vec<f32> },
}

#[derive(Debug)]
struct Query {
    resolved: Resolved,
    k: usize,
    min_score: Option<f32>,
    with_text: bool,
    context_suffix: Option<String>,
}

impl Query {
    /// The body shard `shard` is sent.
    fn body_for(&self, shard: usize, texts: bool) -> Value {
        let mut body = json!({"k": self.k, "min_score": self.min_score, "with_text": texts});
        let (field, value) = match &self.resolved {
            Resolved::Vector { raw, .. } => ("vector", json!(raw)),
            Resolved::Text { unit } => ("vector", json!(unit)),
            Resolved::Id { id, owner, .. } if *owner == shard => ("id", json!(id)),
            Resolved::Id { stored, .. } => ("vector", json!(stored)),
        };
        body[field] = value;
        body
    }
}

/// Validates a request and resolves its query (embedding, id lookup).
async fn resolve(state: &RouterState, req: SearchRequest) -> Result<Query, RouteError> {
    let k = validate_k(req.k, state.max_k)?;
    // Filtered search (issue 14) landed beside the router, not through it:
    // refuse rather than answer unfiltered.
    if req.filter.is_some() {
        return Err(ApiError::InvalidFilter(
            "`semsearch router` does not forward filters yet; query a single replica".into(),
        )
        .into());
    }
    if let Some(suffix) = &req.context_key {
        state.keys.context_key(suffix).map_err(|_| ApiError::InvalidContextKey)?;
    }
    let resolved = match (req.vector, req.text, req.id) {
        (Some(raw), None, None) => {
            let unit = validate_vector(&raw, 0).and_then(normalized)?;
            Resolved::Vector { raw, unit }
        }
        (None, Some(text), None) => {
            let embedder = state.embedder.as_deref().ok_or(ApiError::TextSearchDisabled)?;
            Resolved::Text { unit: embed_text(embedder, &text, 0).await? }
        }
        (None, None, Some(id)) => {
            let owner = state.owner_of(&id);
            let path = format!("/v1/documents/{}?with_embedding=true", encode_path(&id));
            let reply = state.shards.call(owner, Method::GET, &path, None).await?;
            if reply.status == StatusCode::NOT_FOUND {
                return Err(ApiError::DocumentNotFound { id }.into());
            }
            if !reply.is_success() {
                return Err(RouteError::Shard(reply));
            }
            let doc: Value = parse(&reply.body)?;
            let stored: Vec<f32> = serde_json::from_value(doc["embedding"].clone())
                .map_err(|e| ApiError::Internal(format!("shard {owner} sent a document without its embedding: {e}")))?;
            Resolved::Id { id, owner, stored }
        }
        (None, None, None) => return Err(ApiError::QueryRequired.into()),
        _ => return Err(ApiError::AmbiguousQuery.into()),
    };
    Ok(Query { resolved, k, min_score: req.min_score, with_text: req.with_text, context_suffix: req.context_key })
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Internal(format!("a shard answered unreadable JSON: {e}")))
}

/// Percent-encodes an id for a path: everything but unreserved characters
/// and `/` and `:` (ids are URLs; the shard's `{*id}` route decodes it).
pub fn encode_path(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The merged answer of one query, before rendering.
struct Merged {
    hits: Vec<ShardHit>,
    fewer: Option<FewerReason>,
}

/// Merges one query's shard answers. Fewer than k results: `min_score` if
/// any shard cut by score (then some document was left out), else every
/// shard returned all it had (`index_smaller_than_k`), as on one node.
fn merge(lists: Vec<(Vec<ShardHit>, Option<FewerReason>)>, k: usize) -> Merged {
    let min_score_cut = lists.iter().any(|(_, f)| *f == Some(FewerReason::MinScore));
    let hits = merge_top_k(lists.into_iter().map(|(h, _)| h).collect(), k);
    let fewer =
        (hits.len() < k).then_some(if min_score_cut { FewerReason::MinScore } else { FewerReason::IndexSmallerThanK });
    Merged { hits, fewer }
}

/// Renders merged hits and writes the context (once, here).
fn finish(state: &RouterState, q: &Query, merged: Merged, version: u64) -> Result<Answer, ApiError> {
    let context = match &state.contexts {
        None => None,
        Some(queue) => {
            let suffix = match (&q.context_suffix, &q.resolved) {
                (Some(s), _) => s.clone(),
                (None, Resolved::Id { id, .. }) => context::similar_hash(id, q.k, q.min_score, None),
                (None, Resolved::Vector { unit, .. } | Resolved::Text { unit }) => {
                    context::request_hash(unit, q.k, q.min_score, None)
                }
            };
            let key = state.keys.context_key(&suffix).map_err(|_| ApiError::InvalidContextKey)?;
            let entries: Vec<ContextEntry<'_>> = merged
                .hits
                .iter()
                .map(|h| ContextEntry {
                    id: &h.id,
                    url: &h.url,
                    title: h.title.as_deref(),
                    text: h.text.as_deref(),
                    score: h.score,
                })
                .collect();
            let payload = context::encode_payload(&entries, q.k, q.min_score, version)
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let queued = queue.enqueue(ContextWrite { key: key.clone(), payload, index_version: version });
            Some(ContextRef { key: key.as_str().to_owned(), queued })
        }
    };
    let results = merged
        .hits
        .into_iter()
        .map(|h| SearchResult {
            id: h.id,
            url: h.url,
            title: h.title,
            text: q.with_text.then_some(h.text),
            score: h.score,
        })
        .collect();
    Ok(Answer { results, fewer: merged.fewer, context })
}

struct Answer {
    results: Vec<SearchResult>,
    fewer: Option<FewerReason>,
    context: Option<ContextRef>,
}

/// Calls every shard at once; the first unavailable shard or 4xx wins.
async fn fan_out(
    state: &RouterState,
    path: &str,
    body_for: impl Fn(usize) -> Value,
) -> Result<(Vec<Reply>, Duration), RouteError> {
    let calls = (0..state.shards.count()).map(|shard| {
        let body = body_for(shard);
        async move { state.shards.call(shard, Method::POST, path, Some(&body)).await }
    });
    let mut replies = Vec::with_capacity(state.shards.count());
    let mut slowest = Duration::ZERO;
    for reply in join_all(calls).await {
        let reply = reply?;
        if !reply.is_success() {
            return Err(RouteError::Shard(reply));
        }
        slowest = slowest.max(reply.round_trip);
        replies.push(reply);
    }
    Ok((replies, slowest))
}

/// `POST /v1/search` across the shards.
pub async fn search(State(state): State<RouterState>, Json(req): Json<SearchRequest>) -> Result<Response, RouteError> {
    let started = Instant::now();
    let q = resolve(&state, req).await?;
    let texts = q.with_text || state.contexts.is_some();
    let fanned = Instant::now();
    let (replies, slowest) = fan_out(&state, "/v1/search", |shard| q.body_for(shard, texts)).await?;
    let fan_out_time = fanned.elapsed();
    let mut version = 0;
    let mut lists = Vec::with_capacity(replies.len());
    for reply in &replies {
        let answer: ShardSearch = parse(&reply.body)?;
        version += answer.index_version;
        lists.push((answer.results, answer.fewer_results_reason));
    }
    let answer = finish(&state, &q, merge(lists, q.k), version)?;
    state.record_overhead(fan_out_time.saturating_sub(slowest) + (fanned.elapsed() - fan_out_time));
    Ok(axum::Json(SearchResponse {
        results: answer.results,
        took_us: started.elapsed().as_micros() as u64,
        index_version: version,
        fewer_results_reason: answer.fewer,
        context: answer.context,
    })
    .into_response())
}

/// `POST /v1/search/batch` across the shards: one batch per shard.
pub async fn search_batch(
    State(state): State<RouterState>,
    Json(req): Json<BatchRequest>,
) -> Result<Response, RouteError> {
    let started = Instant::now();
    let n = req.queries.len();
    if n == 0 || n > state.max_batch {
        return Err(ApiError::InvalidBatchSize { got: n, max: state.max_batch }.into());
    }
    let mut queries = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for (i, item) in req.queries.into_iter().enumerate() {
        match resolve(&state, item).await {
            Ok(q) => queries.push(q),
            Err(RouteError::Api(e @ ApiError::ShardUnavailable { .. })) => return Err(e.into()),
            Err(RouteError::Api(e)) => errors.push((format!("/queries/{i}"), e)),
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::BatchItems(errors).into());
    }
    let texts = queries.iter().any(|q| q.with_text) || state.contexts.is_some();
    let fanned = Instant::now();
    let (replies, slowest) = fan_out(
        &state,
        "/v1/search/batch",
        |shard| json!({"queries": queries.iter().map(|q| q.body_for(shard, texts)).collect::<Vec<_>>()}),
    )
    .await?;
    let fan_out_time = fanned.elapsed();
    let mut version = 0;
    let mut per_query: Vec<Vec<(Vec<ShardHit>, Option<FewerReason>)>> = (0..n).map(|_| Vec::new()).collect();
    for reply in &replies {
        let answer: ShardBatch = parse(&reply.body)?;
        if answer.results.len() != n || answer.fewer_results_reasons.len() != n {
            return Err(ApiError::Internal("a shard answered a batch of another size".into()).into());
        }
        version += answer.index_version;
        for ((slot, hits), fewer) in per_query.iter_mut().zip(answer.results).zip(answer.fewer_results_reasons) {
            slot.push((hits, fewer));
        }
    }
    let mut response = BatchResponse {
        results: Vec::new(),
        fewer_results_reasons: Vec::new(),
        contexts: Vec::new(),
        took_us: 0,
        index_version: version,
    };
    for (q, lists) in queries.iter().zip(per_query) {
        let answer = finish(&state, q, merge(lists, q.k), version)?;
        response.results.push(answer.results);
        response.fewer_results_reasons.push(answer.fewer);
        response.contexts.push(answer.context);
    }
    state.record_overhead(fan_out_time.saturating_sub(slowest) + (fanned.elapsed() - fan_out_time));
    response.took_us = started.elapsed().as_micros() as u64;
    Ok(axum::Json(response).into_response())
}

/// `GET /v1/documents/{id}`: forwarded to the shard that owns the id.
pub async fn document(
    State(state): State<RouterState>,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, RouteError> {
    let owner = state.owner_of(&id);
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let reply = state.shards.call(owner, Method::GET, path, None).await?;
    Ok(passthrough(reply))
}

/// `GET /v1/stats`: the router's counters and each shard's own stats.
pub async fn stats(State(state): State<RouterState>) -> Result<Response, RouteError> {
    let calls = (0..state.shards.count()).map(|shard| state.shards.call(shard, Method::GET, "/v1/stats", None));
    let mut shards = Vec::new();
    let mut documents = 0;
    // The fields a single node's stats share with the router's (`semsearch bench` reads them).
    let (mut dimension, mut kernel, mut index_version) = (Value::Null, Value::Null, 0);
    for (shard, reply) in join_all(calls).await.into_iter().enumerate() {
        let reply = reply?;
        if !reply.is_success() {
            return Err(RouteError::Shard(reply));
        }
        let stats: Value = parse(&reply.body)?;
        documents += stats["documents"].as_u64().unwrap_or(0);
        index_version += stats["index_version"].as_u64().unwrap_or(0);
        if shard == 0 {
            (dimension, kernel) = (stats["dimension"].clone(), stats["kernel"].clone());
        }
        let replicas: Vec<Value> = state.shards.groups[shard]
            .replicas
            .iter()
            .map(|r| json!({"url": r.base, "healthy": r.is_healthy()}))
            .collect();
        shards.push(json!({"shard": shard, "replicas": replicas, "stats": stats}));
    }
    let c = &state.shards.counters;
    let (overhead_sum, overhead_n) =
        (state.overhead.sum_us.load(Ordering::Relaxed), state.overhead.count.load(Ordering::Relaxed));
    Ok(axum::Json(json!({
        "version": crate::build_info::VERSION,
        "git_sha": crate::build_info::GIT_SHA,
        // As in search answers: the sum of the shards' snapshot versions.
        "index_version": index_version,
        "documents": documents,
        "dimension": dimension,
        "kernel": kernel,
        "router": {
            "shards": state.shards.count(),
            "shard_calls": c.calls.load(Ordering::Relaxed),
            "failed_attempts": c.failed_attempts.load(Ordering::Relaxed),
            "unavailable": c.unavailable.load(Ordering::Relaxed),
            "searches": overhead_n,
            "mean_overhead_us": if overhead_n == 0 { 0.0 } else { overhead_sum as f64 / overhead_n as f64 },
        },
        "shards": shards,
    }))
    .into_response())
}

/// `GET /readyz`: 200 when every shard has a ready replica; else 503
/// `shard_unavailable` naming the first shard without one.
pub async fn readyz(State(state): State<RouterState>) -> Result<Response, RouteError> {
    let calls = (0..state.shards.count()).map(|shard| state.shards.call(shard, Method::GET, "/readyz", None));
    for reply in join_all(calls).await {
        let reply = reply?;
        if !reply.is_success() {
            return Err(RouteError::Shard(reply));
        }
    }
    Ok(axum::Json(json!({"status": "ready", "shards": state.shards.count()})).into_response())
}

/// `GET /healthz`: the router process runs.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /metrics`: the router's counters in the Prometheus text format.
pub async fn metrics(State(state): State<RouterState>) -> Response {
    let c = &state.shards.counters;
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, value: u64| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
    };
    counter(
        "semsearch_router_shard_calls_total",
        "Calls to a shard (each may try several replicas).",
        c.calls.load(Ordering::Relaxed),
    );
    counter(
        "semsearch_router_failed_attempts_total",
        "Replica attempts that failed and moved on.",
        c.failed_attempts.load(Ordering::Relaxed),
    );
    counter(
        "semsearch_router_shard_unavailable_total",
        "Calls that found no replica answering.",
        c.unavailable.load(Ordering::Relaxed),
    );
    counter(
        "semsearch_router_searches_total",
        "Search and batch requests merged.",
        state.overhead.count.load(Ordering::Relaxed),
    );
    counter(
        "semsearch_router_overhead_microseconds_total",
        "Router time per search beyond the slowest shard, summed.",
        state.overhead.sum_us.load(Ordering::Relaxed),
    );
    let mut healthy = String::from("# HELP semsearch_router_replica_healthy 1 when the replica answered its last call.\n# TYPE semsearch_router_replica_healthy gauge\n");
    for (shard, group) in state.shards.groups.iter().enumerate() {
        for r in &group.replicas {
            healthy.push_str(&format!(
                "semsearch_router_replica_healthy{{shard=\"{shard}\",replica=\"{}\"}} {}\n",
                r.base.replace(['"', '\\', '\n'], "_"),
                u8::from(r.is_healthy())
            ));
        }
    }
    out.push_str(&healthy);
    let mut res = out.into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4"));
    res
}

/// Which shard of `state` owns a document id.
impl RouterState {
    fn owner_of(&self, id: &str) -> usize {
        let key = self.keys.embedding_key(id);
        usize::from(Shard::owner_of(key.as_bytes(), self.shards.count() as u16))
    }

    fn record_overhead(&self, overhead: Duration) {
        self.overhead.sum_us.fetch_add(overhead.as_micros() as u64, Ordering::Relaxed);
        self.overhead.count.fetch_add(1, Ordering::Relaxed);
    }
}
