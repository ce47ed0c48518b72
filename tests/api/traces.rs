//! Traces over OTLP/HTTP (feature `otel`): the semsearch binary as a child
//! process exporting to a receiver started here (an axum server decoding
//! the protobuf with `opentelemetry-proto`), a W3C `traceparent` joined on a
//! node and carried by the router to its shards.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::StatusCode, routing::post, Router};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::{any_value, KeyValue},
    trace::v1::span::SpanKind,
};
use prost::Message;
use serde_json::{json, Value};

use crate::{
    helpers::{eventually_within, ground_truth, seed_corpus, TestRedis},
    router::{wait_ready, Process},
};

/// The caller's trace and span in every test: the W3C specification's example.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";
const API_KEY: &str = "trace-test-key-5b1e";
/// Spans are sent every 50 ms instead of every 5 s.
const SCHEDULE_DELAY_MS: &str = "50";

/// One received span, flattened: ids as lowercase hex, attributes as text.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_id: String,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP receiver on loopback, keeping every span it is sent.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start() -> Self {
        let spans = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new().route("/v1/traces", post(receive)).with_state(Arc::clone(&spans));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, spans }
    }

    /// The base URL, as an operator sets OTEL_EXPORTER_OTLP_ENDPOINT.
    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().expect("received spans").clone()
    }

    /// The spans received so far once `done` holds for them (bounded wait).
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let (spans, _) = eventually_within(what, Duration::from_secs(20), Duration::from_millis(50), || {
            let spans = self.spans();
            std::future::ready(done(&spans).then_some(spans))
        })
        .await;
        spans
    }
}

async fn receive(State(spans): State<Arc<Mutex<Vec<Received>>>>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut got = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.map(|r| attributes(&r.attributes)).unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for span in resource_spans.scope_spans.into_iter().flat_map(|s| s.spans) {
            got.push(Received {
                service: service.clone(),
                name: span.name,
                kind: span.kind,
                trace_id: hex::encode(&span.trace_id),
                span_id: hex::encode(&span.span_id),
                parent_id: hex::encode(&span.parent_span_id),
                attributes: attributes(&span.attributes),
            });
        }
    }
    spans.lock().expect("received spans").extend(got);
    // An empty ExportTraceServiceResponse: everything accepted.
    (StatusCode::OK, Vec::new())
}

fn attributes(pairs: &[KeyValue]) -> HashMap<String, String> {
    let text = |v: &any_value::Value| match v {
        any_value::Value::StringValue(s) => s.clone(),
        any_value::Value::BoolValue(b) => b.to_string(),
        any_value::Value::IntValue(i) => i.to_string(),
        any_value::Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    };
    pairs.iter().filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref()?.value.as_ref()?)))).collect()
}

/// Whether `span` descends from `ancestor` through spans of `all`.
fn descends_from(span: &Received, ancestor: &Received, all: &[Received]) -> bool {
    let mut parent = span.parent_id.clone();
    for _ in 0..all.len() {
        if parent == ancestor.span_id {
            return true;
        }
        match all.iter().find(|s| s.span_id == parent && s.trace_id == span.trace_id) {
            Some(p) => parent = p.parent_id.clone(),
            None => return false,
        }
    }
    false
}

fn named<'a>(spans: &'a [Received], name: &str) -> Vec<&'a Received> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn traceparent(trace_id: &str, parent_id: &str) -> String {
    format!("00-{trace_id}-{parent_id}-01")
}

/// A TEI-speaking embedder on loopback: every text gets the same vector of
/// the corpus's dimension (the question's words never matter here).
async fn fake_embedder() -> String {
    let dim = ground_truth().first().map_or(384, |q| q.embedding.len());
    let router = Router::new().route("/embed", post(move || async move { axum::Json(json!([vec![0.05f32; dim]])) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake embedder");
    let addr = listener.local_addr().expect("fake embedder address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// The environment that turns traces on for a child process.
fn otel_env(receiver: &Receiver) -> Vec<(&'static str, String)> {
    vec![("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()), ("OTEL_BSP_SCHEDULE_DELAY", SCHEDULE_DELAY_MS.into())]
}

/// A node over the seeded `redis` with text search through a fake embedder,
/// an API key, and `env` (the OTEL_* variables or none); ready.
async fn traced_node(redis: &TestRedis, env: Vec<(&'static str, String)>) -> (Process, String) {
    let mut all = vec![
        ("REDIS_URL", redis.url()),
        ("SEMSEARCH_EMBEDDER", "tei".to_owned()),
        ("SEMSEARCH_EMBEDDER_URL", fake_embedder().await),
        ("SEMSEARCH_API_KEYS", API_KEY.to_owned()),
    ];
    all.extend(env);
    let node = Process::start(&["serve"], &all);
    let base = node.base().await;
    wait_ready(&reqwest::Client::new(), &base).await;
    (node, base)
}

async fn search(base: &str, question: &str, request_id: &str, traceparent: Option<&str>) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/search"))
        .bearer_auth(API_KEY)
        .header("x-request-id", request_id)
        .json(&json!({"text": question, "k": 3}));
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp).header("tracestate", "vendor=opaque");
    }
    req.send().await.expect("search sent")
}

#[tokio::test]
async fn a_search_joins_the_callers_trace_with_embed_scan_redis_and_context_spans_below_it() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let receiver = Receiver::start().await;
    let (_node, base) = traced_node(&redis, otel_env(&receiver)).await;
    let question = "which relational database should I pick";

    // Act
    let res = search(&base, question, "rid-traced", Some(&traceparent(TRACE_ID, PARENT_ID))).await;
    let status = res.status();
    let body: Value = res.json().await.expect("JSON answer");
    let spans = receiver
        .wait_for("the request's server span and its context write", |spans| {
            let ours = spans.iter().filter(|s| s.trace_id == TRACE_ID);
            ours.clone().any(|s| s.name == "POST /v1/search") && ours.clone().any(|s| s.name == "context.write")
        })
        .await;

    // Assert
    assert_eq!(status, 200, "{body}");
    let server = spans
        .iter()
        .find(|s| s.name == "POST /v1/search" && s.trace_id == TRACE_ID)
        .unwrap_or_else(|| panic!("no server span in {spans:#?}"));
    assert_eq!(server.parent_id, PARENT_ID, "the caller's span is the parent");
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(server.service, "semsearch");
    assert_eq!(server.attributes.get("http.response.status_code").map(String::as_str), Some("200"));
    assert_eq!(server.attributes.get("request_id").map(String::as_str), Some("rid-traced"));
    for name in ["embed", "embed.provider", "search.rank", "context.write", "redis.query_cache"] {
        let found = named(&spans, name);
        assert!(
            found.iter().any(|s| s.trace_id == TRACE_ID && descends_from(s, server, &spans)),
            "no {name} span below the server span in {spans:#?}"
        );
    }
    let embed = named(&spans, "embed").into_iter().find(|s| s.trace_id == TRACE_ID).expect("checked above");
    assert_eq!(embed.attributes.get("embed.source").map(String::as_str), Some("provider"));
    let rank = named(&spans, "search.rank").into_iter().find(|s| s.trace_id == TRACE_ID).expect("checked above");
    assert_eq!(rank.attributes.get("search.ranking").map(String::as_str), Some("hybrid"), "text defaults to hybrid");
    assert_eq!(rank.attributes.get("search.hits").map(String::as_str), Some("3"));
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(!value.contains(API_KEY) && !value.contains("relational database"), "{key}={value} in {span:?}");
        }
    }
}

#[tokio::test]
async fn an_invalid_or_missing_traceparent_answers_200_in_a_new_trace() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let receiver = Receiver::start().await;
    let (_node, base) = traced_node(&redis, otel_env(&receiver)).await;
    let invalid = [
        ("rid-uppercase", traceparent(&TRACE_ID.to_uppercase(), PARENT_ID)),
        ("rid-short", traceparent(&TRACE_ID[2..], PARENT_ID)),
        ("rid-ff", format!("ff-{TRACE_ID}-{PARENT_ID}-01")),
        ("rid-zero", traceparent(&"0".repeat(32), PARENT_ID)),
        ("rid-garbage", "not a traceparent".to_owned()),
    ];

    // Act
    let mut statuses = Vec::new();
    for (rid, tp) in &invalid {
        statuses.push((*rid, search(&base, "anything at all", rid, Some(tp)).await.status()));
    }
    statuses.push(("rid-none", search(&base, "anything at all", "rid-none", None).await.status()));
    let server_spans = |spans: &[Received]| -> Vec<Received> {
        spans.iter().filter(|s| s.name == "POST /v1/search").cloned().collect()
    };
    let spans = receiver.wait_for("six server spans", |spans| server_spans(spans).len() >= statuses.len()).await;

    // Assert
    for (rid, status) in &statuses {
        assert_eq!(*status, 200, "{rid}");
        let span = server_spans(&spans)
            .into_iter()
            .find(|s| s.attributes.get("request_id").map(String::as_str) == Some(*rid))
            .unwrap_or_else(|| panic!("no server span for {rid} in {spans:#?}"));
        assert_ne!(span.trace_id, TRACE_ID, "{rid} joined a trace it should not have");
        assert!(span.parent_id.is_empty(), "{rid}: a new trace has no parent, got {span:?}");
    }
    let mut traces: Vec<String> = server_spans(&spans).into_iter().map(|s| s.trace_id).collect();
    traces.sort_unstable();
    traces.dedup();
    assert_eq!(traces.len(), statuses.len(), "one fresh trace per request");
}

#[tokio::test]
async fn an_unreachable_collector_fails_no_search() {
    // Arrange: a port nobody listens on.
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{closed}")),
        ("OTEL_BSP_SCHEDULE_DELAY", SCHEDULE_DELAY_MS.to_owned()),
    ];
    let (_node, base) = traced_node(&redis, env).await;

    // Act
    let mut statuses = Vec::new();
    for i in 0..20 {
        let rid = format!("rid-{i}");
        statuses.push(search(&base, "anything at all", &rid, Some(&traceparent(TRACE_ID, PARENT_ID))).await.status());
    }

    // Assert
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
}

#[tokio::test]
async fn the_router_carries_the_callers_trace_to_every_shard() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let receiver = Receiver::start().await;
    let http = reqwest::Client::new();
    let mut shards = Vec::new();
    let mut bases = Vec::new();
    for i in 0..2 {
        let mut env = vec![
            ("REDIS_URL", redis.url()),
            ("SEMSEARCH_SHARD", format!("{i}/2")),
            ("SEMSEARCH_CONTEXT_TTL_SECS", "0".to_owned()),
        ];
        env.extend(otel_env(&receiver));
        let shard = Process::start(&["serve"], &env);
        let base = shard.base().await;
        wait_ready(&http, &base).await;
        shards.push(shard);
        bases.push(base);
    }
    let mut env = vec![("REDIS_URL", redis.url()), ("SEMSEARCH_ROUTER_SHARDS", bases.join(","))];
    env.extend(otel_env(&receiver));
    let router = Process::start(&["router"], &env);
    let url = router.base().await;
    wait_ready(&http, &url).await;
    let query = ground_truth().into_iter().next().expect("a ground-truth query");

    // Act
    let res = http
        .post(format!("{url}/v1/search"))
        .header("traceparent", traceparent(TRACE_ID, PARENT_ID))
        .json(&json!({"vector": query.embedding, "k": 5}))
        .send()
        .await
        .expect("search sent");
    let status = res.status();
    let shard_servers = |spans: &[Received]| -> Vec<Received> {
        spans
            .iter()
            .filter(|s| s.trace_id == TRACE_ID && s.kind == SpanKind::Server as i32 && s.service == "semsearch")
            .cloned()
            .collect()
    };
    let router_calls = |spans: &[Received]| -> Vec<Received> {
        spans
            .iter()
            .filter(|s| {
                s.trace_id == TRACE_ID && s.kind == SpanKind::Client as i32 && s.name == "POST /v1/shard/search"
            })
            .cloned()
            .collect()
    };
    // The router's server span ends after its calls, so once it is here so
    // are they; then each call's shard span, from the shard's own exporter.
    let spans = receiver
        .wait_for("the router's span and a server span for each of its shard calls", |spans| {
            let router_done = spans.iter().any(|s| {
                s.trace_id == TRACE_ID && s.service == "semsearch-router" && s.kind == SpanKind::Server as i32
            });
            router_done && shard_servers(spans).len() >= router_calls(spans).len()
        })
        .await;

    // Assert
    assert_eq!(status, 200);
    let server = spans
        .iter()
        .find(|s| s.name == "POST /v1/search" && s.service == "semsearch-router")
        .unwrap_or_else(|| panic!("no router server span in {spans:#?}"));
    assert_eq!((server.trace_id.as_str(), server.parent_id.as_str()), (TRACE_ID, PARENT_ID));
    let calls = router_calls(&spans);
    assert!(calls.len() >= 2, "a client span per shard call in {spans:#?}");
    assert!(calls.iter().all(|c| descends_from(c, server, &spans)), "{calls:#?}");
    assert_eq!(shard_servers(&spans).len(), calls.len(), "one shard server span per call");
    let replicas: std::collections::HashSet<&str> =
        calls.iter().filter_map(|c| c.attributes.get("server.address").map(String::as_str)).collect();
    assert_eq!(replicas.len(), 2, "both shards were called: {calls:#?}");
    for shard_span in shard_servers(&spans) {
        assert!(
            calls.iter().any(|c| c.span_id == shard_span.parent_id),
            "a shard's server span is the child of a router call: {shard_span:#?}"
        );
        assert!(
            spans.iter().any(|s| s.name == "search.rank" && s.parent_id == shard_span.span_id),
            "the shard ranked inside its server span: {shard_span:#?}"
        );
    }
}

#[tokio::test]
async fn an_endpoint_without_a_scheme_stops_the_start_naming_the_variable() {
    // Arrange: `host:port` is a common slip; it would fail every export.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_semsearch"));
    command
        .arg("serve")
        .env_clear()
        .env("SEMSEARCH_BIND", "127.0.0.1:0")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "otel-collector:4318")
        .kill_on_drop(true);

    // Act
    let out = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("the process exits instead of serving")
        .expect("the semsearch binary runs");

    // Assert
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT") && stderr.contains("otel-collector:4318"), "{stderr}");
}
