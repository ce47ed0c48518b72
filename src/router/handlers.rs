//! The router's HTTP routes: the service's API, answered by fanning out to
//! one replica per shard and merging ([`super::merge`]).
//!
//! A request takes the node's query path (`crate::query`): planned with the
//! same rules, resolved here (a `text` is embedded once; an `id`'s stored
//! vector comes from the shard that owns its key's hash slot, and every shard
//! is told to leave that document out), sent to every shard as a typed
//! [`ShardRequest`] on `/v1/shard/search`, merged exactly, and rendered with
//! the node's `query::answer::render`. Shards are asked for texts whenever
//! contexts are written, because the router writes contexts (once, with
//! titles and texts) and the shards run with context writes off.
//!
//! Every shard answer is decoded and checked by [`super::decode`] before it
//! is used; a shard's 4xx reaches the client only as our problem+json.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use axum::{
    extract::{
        rejection::{PathRejection, QueryRejection},
        Path, Query as UrlQuery, State,
    },
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use futures::future::join_all;
use reqwest::Method;
use semsearch_lexical::CorpusStats;
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    decode::{self, Asked, BadAnswer, Origin},
    merge::{merge_top_k, Ranked},
    shards::{Answer, Unavailable},
    RouterState,
};
use crate::{
    api::{
        documents::{DocumentQuery, DocumentResponse},
        extract::Json,
        search::{json_response, response_capacity},
    },
    index::fusion::Fusion,
    problem::ApiError,
    query::{
        answer::{render, ContextTarget, HitView, Reach, Rendered, Spent},
        dto::{BatchRequest, BatchResponse, SearchFilter, SearchMode, SearchRequest, SearchResponse},
        resolve::embed_text,
        shard::{
            check_filter_on_all, ShardAnswer, ShardDocumentRequest, ShardHit, ShardProblem, ShardQuery, ShardRequest,
            ShardResponse, ShardStatsQuery, ShardStatsRequest, ShardStatsResponse, ShardWant, ShardWords, WireFusion,
            WireStats,
        },
        Plan, Query, Rules,
    },
    store::keys::WritableKey,
};

/// What a router route fails with: our own problem, or a shard's 4xx
/// problem, checked by [`decode::problem_answer`] and re-encoded here.
#[derive(Debug)]
pub enum RouteError {
    Api(ApiError),
    Shard(ShardProblem),
}

impl From<ApiError> for RouteError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<Unavailable> for RouteError {
    fn from(e: Unavailable) -> Self {
        Self::Api(e.into())
    }
}

impl IntoResponse for RouteError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(e) => e.into_response(),
            Self::Shard(problem) => {
                // `problem_answer` checked the status is a 4xx.
                let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
                let mut res = (status, axum::Json(problem)).into_response();
                res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::problem::PROBLEM_JSON));
                res
            }
        }
    }
}

/// A decoded answer, or the shard's problem as the route's error.
fn body<T>(answer: Answer<T>) -> Result<T, RouteError> {
    match answer {
        Answer::Body(value) => Ok(value),
        Answer::Problem(problem) => Err(RouteError::Shard(problem)),
    }
}

/// A query planned and resolved at the router: what each shard is asked
/// ([`Routed::shard_query`]) and where its context goes.
#[derive(Debug)]
struct Routed {
    plan: Plan,
    /// Unit length: the client's vector, the text's embedding (made once,
    /// here) or the `id`'s stored row (from the shard that owns it). Empty
    /// in `lexical` mode.
    vector: Vec<f32>,
    /// An `id` query's document, which the shard holding it leaves out.
    exclude_id: Option<String>,
    context_key: Option<WritableKey>,
    /// A text query's terms, analysed here: what `lexical` and `hybrid`
    /// rank by, and what snippets look for in any mode.
    terms: Option<Vec<String>>,
}

impl Routed {
    /// What the shards' answers to [`Routed::shard_query`] are checked against.
    fn asked(&self, want: ShardWant) -> Asked {
        Asked { k: self.plan.k, mode: self.plan.mode, want }
    }

    fn shard_query(&self, texts: bool, words: Option<ShardWords>, want: ShardWant) -> ShardQuery {
        ShardQuery {
            vector: self.vector.clone(),
            k: self.plan.k,
            min_score: self.plan.min_score,
            exclude_id: self.exclude_id.clone(),
            filter: self.plan.filter.as_ref().map(SearchFilter::from_row_filter),
            with_text: texts,
            mode: self.plan.mode,
            words,
            want,
            snippet_chars: self.plan.snippet_chars,
        }
    }
}

/// Plans a request with the node's rules ([`Plan::new`]) and resolves its
/// query: a text is embedded here (unless the mode is lexical) and its
/// words analysed here, an `id`'s vector comes from its owner.
async fn resolve(state: &RouterState, req: &SearchRequest) -> Result<Routed, RouteError> {
    // The shards check the dimension: the router does not know it.
    let plan = Plan::new(req, &Rules { max_k: state.max_k, keys: &state.keys, dim: 0 })?;
    let (vector, exclude_id) = match &plan.query {
        Query::Vector(unit) => (unit.clone(), None),
        Query::Text(_) if !plan.mode.uses_vectors() => (Vec::new(), None),
        Query::Text(text) => {
            let embedder = state.embedder.as_deref().ok_or(ApiError::TextSearchDisabled)?;
            (embed_text(embedder, text, 0).await?, None)
        }
        Query::Id(id) => (stored_vector(state, id).await?, Some(id.clone())),
    };
    let terms = match &plan.query {
        Query::Text(text) if plan.mode.uses_words() || plan.snippet_chars.is_some() => {
            Some(state.lexical.analyzer.terms(text))
        }
        _ => None,
    };
    let context_key = state.contexts.as_ref().map(|_| plan.context_key(&state.keys, &vector)).transpose()?;
    Ok(Routed { plan, vector, exclude_id, context_key, terms })
}

/// The whole corpus' statistics for each routed question that has words,
/// gathered from every shard and added up (`dfs_query_then_fetch`'s first
/// phase): per query, the statistics and the mean cosine μ.
async fn corpus_stats(state: &RouterState, routed: &[Routed]) -> Result<Vec<Option<(CorpusStats, f64)>>, RouteError> {
    let asked: Vec<usize> =
        (0..routed.len()).filter(|&i| routed[i].terms.is_some() && routed[i].plan.mode.uses_words()).collect();
    let mut out: Vec<Option<(CorpusStats, f64)>> = (0..routed.len()).map(|_| None).collect();
    if asked.is_empty() {
        return Ok(out);
    }
    let queries = asked
        .iter()
        .map(|&i| ShardStatsQuery {
            terms: routed[i].terms.clone().unwrap_or_default(),
            vector: routed[i].plan.mode.uses_vectors().then(|| routed[i].vector.clone()),
        })
        .collect();
    let terms: Vec<usize> = asked.iter().map(|&i| routed[i].terms.as_ref().map_or(0, Vec::len)).collect();
    let replies: Vec<ShardStatsResponse> =
        call_all(state, SHARD_STATS, &ShardStatsRequest { queries }, |_, b| decode::stats_answer(b, &terms)).await?;
    // `decode::stats_answer` checked each reply's shape: one answer per
    // asked query, with one document frequency per term.
    for (slot, &i) in asked.iter().enumerate() {
        let mut total = CorpusStats { df: vec![0; terms[slot]], ..CorpusStats::default() };
        let mut dot = 0.0;
        for reply in &replies {
            let part = &reply.answers[slot];
            total.add(&CorpusStats::from(&part.stats));
            dot += part.vector_dot;
        }
        let mu = if total.fields.docs == 0 { 0.0 } else { dot / total.fields.docs as f64 };
        out[i] = Some((total, mu));
    }
    Ok(out)
}

/// The words each shard is sent for each routed question: the terms and
/// their corpus statistics, and for a hybrid question the fusion's
/// constants, whose best cosine and best BM25F over every shard take one
/// more round (the second phase).
async fn shard_words(state: &RouterState, routed: &[Routed]) -> Result<Vec<Option<ShardWords>>, RouteError> {
    let stats = corpus_stats(state, routed).await?;
    let mut words: Vec<Option<ShardWords>> = routed
        .iter()
        .zip(&stats)
        .map(|(r, s)| {
            // Vector mode sends the terms for snippets only, without statistics.
            let stats = s.as_ref().map(|(stats, _)| WireStats::from(stats)).unwrap_or_default();
            Some(ShardWords { terms: r.terms.clone()?, stats, fusion: None })
        })
        .collect();
    let hybrid: Vec<usize> = (0..routed.len()).filter(|&i| routed[i].plan.mode == SearchMode::Hybrid).collect();
    if hybrid.is_empty() {
        return Ok(words);
    }
    let queries: Vec<ShardQuery> =
        hybrid.iter().map(|&i| routed[i].shard_query(false, words[i].clone(), ShardWant::Best)).collect();
    let asked: Vec<Asked> = hybrid.iter().map(|&i| routed[i].asked(ShardWant::Best)).collect();
    let replies: Vec<ShardResponse> =
        call_all(state, SHARD_SEARCH, &ShardRequest { queries }, |shard, b| search_answer(state, shard, b, &asked))
            .await?;
    // `decode::search_answer` checked each reply has one answer per asked query.
    for (slot, &i) in hybrid.iter().enumerate() {
        let (mut best_cosine, mut best_lexical) = (None::<f32>, 0.0f64);
        for a in replies.iter().map(|r| &r.answers[slot]) {
            best_cosine = match (best_cosine, a.best_cosine) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            };
            best_lexical = best_lexical.max(a.best_lexical);
        }
        let mu = stats[i].as_ref().map_or(0.0, |(_, mu)| *mu);
        let weight = routed[i].plan.vector_weight.unwrap_or_else(|| state.lexical.fusion.vector_weight(mu));
        let fusion = Fusion { weight, mu, best_cosine: best_cosine.unwrap_or(0.0), best_lexical };
        if let Some(w) = &mut words[i] {
            w.fusion = Some(WireFusion::from(fusion));
        }
    }
    Ok(words)
}

/// Document `id` from the shard that owns it (`POST /v1/shard/document`:
/// the id travels in the body, never in a URL).
async fn fetch_document(state: &RouterState, id: &str, with_embedding: bool) -> Result<DocumentResponse, RouteError> {
    let owner = state.owner_of(id);
    let req = ShardDocumentRequest { id: id.to_owned(), with_embedding };
    let payload = Bytes::from(serde_json::to_vec(&req).map_err(|e| ApiError::Internal(e.to_string()))?);
    let (answer, _) = state
        .shards
        .call(owner, Method::POST, SHARD_DOCUMENT, Some(payload), |b| decode::document_answer(b, id, with_embedding))
        .await?;
    body(answer)
}

/// The stored (unit) vector of document `id`, from the shard that owns it.
async fn stored_vector(state: &RouterState, id: &str) -> Result<Vec<f32>, RouteError> {
    let doc = fetch_document(state, id, true).await?;
    // `document_answer` checked the embedding is there.
    Ok(doc.embedding.unwrap_or_default())
}

/// [`decode::search_answer`] for `shard` of `state`.
fn search_answer(state: &RouterState, shard: usize, b: &[u8], asked: &[Asked]) -> Result<ShardResponse, BadAnswer> {
    decode::search_answer(b, asked, Origin { shard, shards: state.shards.count(), keys: &state.keys })
}

impl Ranked for ShardHit {
    fn score(&self) -> f64 {
        self.rank
    }
    fn id(&self) -> &str {
        &self.id
    }
}

/// Sends one typed body to every shard at once and reads each typed,
/// checked answer (`decode(shard, body)`); the first unavailable shard or
/// 4xx wins.
async fn call_all<B: Serialize, R>(
    state: &RouterState,
    path: &str,
    body: &B,
    decode: impl Fn(usize, &[u8]) -> Result<R, BadAnswer>,
) -> Result<Vec<R>, RouteError> {
    Ok(call_all_timed(state, path, body, decode).await?.0)
}

/// [`call_all`] with the slowest shard's round trip.
async fn call_all_timed<B: Serialize, R>(
    state: &RouterState,
    path: &str,
    payload: &B,
    decode: impl Fn(usize, &[u8]) -> Result<R, BadAnswer>,
) -> Result<(Vec<R>, Duration), RouteError> {
    let payload = Bytes::from(serde_json::to_vec(payload).map_err(|e| ApiError::Internal(e.to_string()))?);
    let decode = &decode;
    let calls = (0..state.shards.count()).map(|shard| {
        let payload = payload.clone();
        async move { state.shards.call(shard, Method::POST, path, Some(payload), |b| decode(shard, b)).await }
    });
    let mut answers = Vec::with_capacity(state.shards.count());
    let mut slowest = Duration::ZERO;
    for reply in join_all(calls).await {
        let (answer, round_trip) = reply?;
        slowest = slowest.max(round_trip);
        answers.push(body(answer)?);
    }
    Ok((answers, slowest))
}

/// Sends the resolved queries to every shard (after gathering what a
/// lexical or hybrid one needs from all of them) and checks each answers
/// them all.
async fn fan_out(
    state: &RouterState,
    routed: &[Routed],
    texts: bool,
) -> Result<(Vec<ShardResponse>, Duration), RouteError> {
    let words = shard_words(state, routed).await?;
    let queries: Vec<ShardQuery> =
        routed.iter().zip(words).map(|(r, w)| r.shard_query(texts, w, ShardWant::Hits)).collect();
    let asked: Vec<Asked> = routed.iter().map(|r| r.asked(ShardWant::Hits)).collect();
    // `search_answer` checks each shard answered every query.
    call_all_timed(state, SHARD_SEARCH, &ShardRequest { queries }, |shard, b| search_answer(state, shard, b, &asked))
        .await
}

/// Where the node's shard routes are.
const SHARD_SEARCH: &str = "/v1/shard/search";
const SHARD_STATS: &str = "/v1/shard/stats";
const SHARD_DOCUMENT: &str = "/v1/shard/document";

/// One query's shard answers as one node's: the filter checked against
/// every shard's kinds, the hits merged under the tie rule, reach added up.
fn merge_answers(routed: &Routed, answers: Vec<ShardAnswer>) -> Result<(Vec<ShardHit>, Reach), ApiError> {
    if let Some(filter) = &routed.plan.filter {
        check_filter_on_all(filter, &answers.iter().collect::<Vec<_>>())?;
    }
    let reach = answers.iter().fold(Reach::default(), |r, a| {
        r + Reach { searchable: a.searchable, filtered: a.filtered, matches: a.matches }
    });
    let hits = merge_top_k(answers.into_iter().map(|a| a.hits).collect(), routed.plan.k);
    Ok((hits, reach))
}

/// Renders merged hits and writes the context (once, here), as a node does.
fn render_routed(
    state: &RouterState,
    routed: &Routed,
    hits: &[ShardHit],
    reach: Reach,
    version: u64,
    spent: &mut Spent,
) -> Result<Rendered, ApiError> {
    let views: Vec<HitView<'_>> = hits
        .iter()
        .map(|h| HitView {
            id: &h.id,
            url: &h.url,
            title: h.title.as_deref(),
            text: h.text.as_deref(),
            score: h.score,
            vector_score: h.vector_score,
            lexical_score: h.lexical_score,
            snippet: h.snippet.clone(),
        })
        .collect();
    let context = match (&state.contexts, &routed.context_key) {
        (Some(queue), Some(key)) => Some(ContextTarget { queue, key, index_version: version }),
        _ => None,
    };
    render(&routed.plan, &views, reach, context, &state.budget, spent)
}

/// `POST /v1/search` across the shards.
pub async fn search(State(state): State<RouterState>, Json(req): Json<SearchRequest>) -> Result<Response, RouteError> {
    let started = Instant::now();
    state.checks.searchable()?;
    let routed = resolve(&state, &req).await?;
    let texts = routed.plan.with_text || state.contexts.is_some();
    let fanned = Instant::now();
    let (replies, slowest) = fan_out(&state, std::slice::from_ref(&routed), texts).await?;
    let fan_out_time = fanned.elapsed();
    // As in every answer: the sum of the shards' snapshot versions.
    let version = replies.iter().map(|r| r.index_version).sum();
    let answers = replies.into_iter().filter_map(|r| r.answers.into_iter().next()).collect();
    let (hits, reach) = merge_answers(&routed, answers)?;
    let rendered = render_routed(&state, &routed, &hits, reach, version, &mut Spent::default())?;
    state.record_overhead(fan_out_time.saturating_sub(slowest) + (fanned.elapsed() - fan_out_time));
    let response = SearchResponse {
        results: rendered.results,
        mode: routed.plan.mode,
        took_us: started.elapsed().as_micros() as u64,
        index_version: version,
        fewer_results_reason: rendered.fewer_results_reason,
        context: rendered.context,
    };
    Ok(json_response(&response, response_capacity(&response.results))?)
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
    state.checks.searchable()?;
    let mut routed = Vec::with_capacity(n);
    let mut errors = Vec::new();
    for (i, item) in req.queries.iter().enumerate() {
        match resolve(&state, item).await {
            Ok(q) => routed.push(q),
            Err(RouteError::Api(e @ ApiError::ShardUnavailable { .. })) => return Err(e.into()),
            Err(RouteError::Api(e)) => errors.push((format!("/queries/{i}"), e)),
            Err(other) => return Err(other),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::BatchItems(errors).into());
    }
    state.budget.check_results(routed.iter().map(|r| &r.plan))?;
    let texts = routed.iter().any(|r| r.plan.with_text) || state.contexts.is_some();
    let fanned = Instant::now();
    let (replies, slowest) = fan_out(&state, &routed, texts).await?;
    let fan_out_time = fanned.elapsed();
    let version = replies.iter().map(|r| r.index_version).sum();
    let mut per_query: Vec<Vec<ShardAnswer>> = (0..n).map(|_| Vec::with_capacity(replies.len())).collect();
    for reply in replies {
        for (slot, answer) in per_query.iter_mut().zip(reply.answers) {
            slot.push(answer);
        }
    }
    let mut response = BatchResponse {
        results: Vec::with_capacity(n),
        fewer_results_reasons: Vec::with_capacity(n),
        contexts: Vec::with_capacity(n),
        modes: routed.iter().map(|r| r.plan.mode).collect(),
        took_us: 0,
        index_version: version,
    };
    let mut spent = Spent::default();
    let mut errors = Vec::new();
    for (i, (routed, answers)) in routed.iter().zip(per_query).enumerate() {
        let (hits, reach) = match merge_answers(routed, answers) {
            Ok(merged) => merged,
            Err(e) => {
                errors.push((format!("/queries/{i}"), e));
                continue;
            }
        };
        let rendered = render_routed(&state, routed, &hits, reach, version, &mut spent)?;
        response.results.push(rendered.results);
        response.fewer_results_reasons.push(rendered.fewer_results_reason);
        response.contexts.push(rendered.context);
    }
    if !errors.is_empty() {
        return Err(ApiError::BatchItems(errors).into());
    }
    state.record_overhead(fan_out_time.saturating_sub(slowest) + (fanned.elapsed() - fan_out_time));
    response.took_us = started.elapsed().as_micros() as u64;
    Ok(axum::Json(response).into_response())
}

/// `GET /v1/documents/{*id}`: the owner's answer, read as the node reads
/// the request (the id as the path's rest, percent-decoded; the same
/// query-string rules), so node and router answer every id alike.
pub async fn document(
    State(state): State<RouterState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<UrlQuery<DocumentQuery>, QueryRejection>,
) -> Result<Response, RouteError> {
    let Path(id) = path.map_err(|e| ApiError::InvalidType(e.body_text()))?;
    let UrlQuery(query) = query.map_err(|e| ApiError::InvalidType(e.body_text()))?;
    let doc = fetch_document(&state, &id, query.with_embedding).await?;
    Ok(axum::Json(doc).into_response())
}

/// `GET /v1/stats`: the router's counters and each shard's own stats.
pub async fn stats(State(state): State<RouterState>) -> Result<Response, RouteError> {
    let object = |b: &[u8]| match serde_json::from_slice::<Value>(b) {
        Ok(v) if v.is_object() => Ok(v),
        Ok(_) => Err(BadAnswer::Json("stats that are not an object".into())),
        Err(e) => Err(BadAnswer::Json(e.to_string())),
    };
    let calls = (0..state.shards.count()).map(|shard| state.shards.call(shard, Method::GET, "/v1/stats", None, object));
    let mut shards = Vec::new();
    let mut documents = 0;
    // The fields a single node's stats share with the router's (`semsearch bench` reads them).
    let (mut dimension, mut kernel, mut index_version) = (Value::Null, Value::Null, 0);
    for (shard, reply) in join_all(calls).await.into_iter().enumerate() {
        let stats = body(reply?.0)?;
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
            "bad_answers": c.bad_answers.load(Ordering::Relaxed),
            "searches": overhead_n,
            "mean_overhead_us": if overhead_n == 0 { 0.0 } else { overhead_sum as f64 / overhead_n as f64 },
        },
        "shards": shards,
    }))
    .into_response())
}

/// `GET /readyz`: 200 when every shard has a replica answering and every
/// replica that answers is what the shard list says (`super::verify`);
/// else 503 `shard_unavailable` naming the first shard without one, or
/// 503 `shard_misconfigured` saying what to fix.
pub async fn readyz(State(state): State<RouterState>) -> Result<Response, RouteError> {
    state.checks.check(&state.shards, state.keys.embedding_prefix()).await.ready()?;
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
        "semsearch_router_bad_answers_total",
        "Replica answers the router could not use (redirect, too large, not our problem+json, failed checks).",
        c.bad_answers.load(Ordering::Relaxed),
    );
    counter(
        "semsearch_router_searches_total",
        "Search and batch requests merged.",
        state.overhead.count.load(Ordering::Relaxed),
    );
    // The node's series and help text: one alert rule covers both.
    counter(
        "semsearch_searches_rejected_total",
        "Searches refused with 503 overloaded (all slots busy).",
        state.slots.rejected(),
    );
    counter(
        "semsearch_requests_refused_total",
        "Requests (HTTP/1 or HTTP/2 streams) refused with 503 overloaded: every request slot was taken.",
        crate::api::server::requests_refused(),
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
        usize::from(self.keys.owner_of(id, self.shards.count() as u16))
    }

    fn record_overhead(&self, overhead: Duration) {
        self.overhead.sum_us.fetch_add(overhead.as_micros() as u64, Ordering::Relaxed);
        self.overhead.count.fetch_add(1, Ordering::Relaxed);
    }
}
