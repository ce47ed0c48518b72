//! Issue 22: a router that checks its shards. Real router processes in
//! front of real shard processes (a wrong shard list, a missing key, ids
//! that are paths) or in front of a misbehaving shard served by this test
//! (redirects, endless bodies, HTML errors, invalid hits, a held request).

use std::{
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{
    body::Body,
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Router,
};
use futures::StreamExt as _;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::Semaphore,
};

use crate::{
    helpers::{assert_problem, ground_truth, seed_corpus, TestRedis},
    router::{single_node, wait_ready, Process},
};

/// A shard node process over `redis` with extra environment.
fn node(redis: &TestRedis, env: &[(&str, String)]) -> Process {
    let mut all = vec![("REDIS_URL", redis.url()), ("SEMSEARCH_CONTEXT_TTL_SECS", "0".to_owned())];
    all.extend(env.iter().cloned());
    Process::start(&["serve"], &all)
}

/// A router process over the shard list `shards`, with extra environment.
fn router(redis: &TestRedis, shards: String, env: &[(&str, String)]) -> Process {
    let mut all = vec![
        ("REDIS_URL", redis.url()),
        ("SEMSEARCH_ROUTER_SHARDS", shards),
        ("SEMSEARCH_ROUTER_SHARD_TIMEOUT_MS", "2000".to_owned()),
        ("SEMSEARCH_CONTEXT_TTL_SECS", "0".to_owned()),
    ];
    all.extend(env.iter().cloned());
    Process::start(&["router"], &all)
}

fn shard_env(spec: &str) -> Vec<(&'static str, String)> {
    vec![("SEMSEARCH_SHARD", spec.to_owned())]
}

#[tokio::test]
async fn issue_22_readyz_refuses_shard_lists_out_of_order_twice_unsharded_or_of_another_key_space() {
    // Arrange: shards 0/3, 1/3, 2/3, an unsharded node and shard 1/3 of another key prefix.
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let http = reqwest::Client::new();
    let procs = [
        node(&redis, &shard_env("0/3")),
        node(&redis, &shard_env("1/3")),
        node(&redis, &shard_env("2/3")),
        node(&redis, &[]),
        node(
            &redis,
            &[("SEMSEARCH_SHARD", "1/3".to_owned()), ("SEMSEARCH_EMBEDDING_PATTERN", "cache:embedding:h*".to_owned())],
        ),
    ];
    let mut b = Vec::new();
    for p in &procs {
        let base = p.base().await;
        wait_ready(&http, &base).await;
        b.push(base);
    }
    let v = ground_truth()[0].embedding.clone();
    let lists = [
        (format!("{},{},{}", b[1], b[0], b[2]), "must list the shards in order"),
        (format!("{},{},{}", b[0], b[0], b[2]), "shard 0/3 is listed at positions 0 and 1"),
        (format!("{},{},{}", b[0], b[3], b[2]), "unsharded node"),
        (format!("{},{}", b[0], b[1]), "the router lists 2 shards"),
        (format!("{},{},{}", b[0], b[4], b[2]), "another key prefix"),
    ];

    for (list, says) in lists {
        // Act
        let r = router(&redis, list.clone(), &[]);
        let url = r.base().await;
        let ready = http.get(format!("{url}/readyz")).send().await.expect("readyz");
        let search = http.post(format!("{url}/v1/search")).json(&json!({"vector": v, "k": 10})).send().await;

        // Assert: not ready, saying why; and no wrong answer in the meantime.
        let problem = assert_problem(ready, 503, "shard_misconfigured").await;
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{list}: expected {says:?} in {detail:?}");
        let search = search.expect("search sent");
        assert_ne!(search.status(), 200, "{list}: a misconfigured router answered a search");
    }
    // The right list is ready.
    let r = router(&redis, format!("{},{},{}", b[0], b[1], b[2]), &[]);
    let url = r.base().await;
    wait_ready(&http, &url).await;
}

#[tokio::test]
async fn issue_22_a_router_without_the_shards_key_is_not_ready_and_answers_503_naming_it() {
    // Arrange: shards that need a key; a router with its own key and none for them.
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let http = reqwest::Client::new();
    let keyed = |spec: &str| {
        let mut env = shard_env(spec);
        env.push(("SEMSEARCH_API_KEYS", "shard-key".to_owned()));
        node(&redis, &env)
    };
    let shards = [keyed("0/2"), keyed("1/2")];
    let mut b = Vec::new();
    for s in &shards {
        let base = s.base().await;
        wait_ready(&http, &base).await;
        b.push(base);
    }
    let list = format!("{},{}", b[0], b[1]);
    let r = router(&redis, list.clone(), &[("SEMSEARCH_API_KEYS", "router-key".to_owned())]);
    let url = r.base().await;
    let v = ground_truth()[0].embedding.clone();

    // Act
    let ready = http.get(format!("{url}/readyz")).send().await.expect("readyz");
    let search = http
        .post(format!("{url}/v1/search"))
        .bearer_auth("router-key")
        .json(&json!({"vector": v, "k": 3}))
        .send()
        .await
        .expect("search");
    let doc = http
        .get(format!("{url}/v1/documents/{}", ground_truth()[0].top10[0].url))
        .bearer_auth("router-key")
        .send()
        .await
        .expect("document");

    // Assert
    let problem = assert_problem(ready, 503, "shard_misconfigured").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("SEMSEARCH_ROUTER_SHARD_API_KEY")), "{problem}");
    let problem = assert_problem(search, 503, "shard_misconfigured").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("SEMSEARCH_ROUTER_SHARD_API_KEY")), "{problem}");
    assert_problem(doc, 503, "shard_misconfigured").await;

    // And with the key, it is ready and answers.
    let ok = router(
        &redis,
        list,
        &[("SEMSEARCH_API_KEYS", "router-key".to_owned()), ("SEMSEARCH_ROUTER_SHARD_API_KEY", "shard-key".to_owned())],
    );
    let url = ok.base().await;
    wait_ready(&http, &url).await;
    let res = http
        .post(format!("{url}/v1/search"))
        .bearer_auth("router-key")
        .json(&json!({"vector": v, "k": 3}))
        .send()
        .await
        .expect("search");
    assert_eq!(res.status(), 200);
}

/// One raw HTTP/1.1 GET, the path sent as written (no client normalises
/// `..` away): the status and the body.
async fn raw_get(base: &str, path: &str) -> (u16, Value) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let text = String::from_utf8_lossy(&raw);
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or_else(|_| json!({"raw": body})))
}

#[tokio::test]
async fn issue_22_node_and_router_answer_ids_with_dot_segments_alike() {
    // Arrange: the corpus plus a document whose id holds "/../".
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    seed_corpus(&mut conn).await;
    let dotted = "https://x.example/a/../b";
    let doc = json!({"title": "t", "url": dotted, "text": "x", "embedding": ground_truth()[0].embedding});
    let () = redis::cmd("SET")
        .arg(format!("cache:embedding:{dotted}"))
        .arg(doc.to_string())
        .query_async(&mut conn)
        .await
        .expect("SET");
    let http = reqwest::Client::new();
    let shards = [node(&redis, &shard_env("0/2")), node(&redis, &shard_env("1/2"))];
    let mut b = Vec::new();
    for s in &shards {
        let base = s.base().await;
        wait_ready(&http, &base).await;
        b.push(base);
    }
    let r = router(&redis, format!("{},{}", b[0], b[1]), &[]);
    let url = r.base().await;
    wait_ready(&http, &url).await;
    let one = single_node(&redis).await;
    let node_url = format!("http://{}", one.addr);

    let paths = [
        format!("/v1/documents/{dotted}"),
        "/v1/documents/../../v1/stats".to_owned(),
        "/v1/documents/https://x.example/a/%2E%2E/b".to_owned(),
        "/v1/documents/..".to_owned(),
        "/v1/documents/%2e%2e".to_owned(),
        "/v1/documents/./x".to_owned(),
        format!("/v1/documents/{}?with_embedding=maybe", ground_truth()[0].top10[0].url),
    ];
    for path in &paths {
        // Act
        let (ns, nb) = raw_get(&node_url, path).await;
        let (rs, rb) = raw_get(&url, path).await;

        // Assert: same status, same code or same document.
        assert_eq!((rs, &rb["code"], &rb["id"]), (ns, &nb["code"], &nb["id"]), "{path}: router {rb} vs node {nb}");
    }
    let (status, body) = raw_get(&url, &format!("/v1/documents/{dotted}")).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(dotted)), "the dotted id is found");
    for id in ["../../v1/stats", dotted, ".."] {
        let node = one.post_search(&json!({"id": id, "k": 3, "with_text": false})).await;
        let routed = http.post(format!("{url}/v1/search")).json(&json!({"id": id, "k": 3, "with_text": false})).send();
        let routed = routed.await.expect("search");
        let (ns, rs) = (node.status(), routed.status());
        let (nb, rb): (Value, Value) = (node.json().await.expect("JSON"), routed.json().await.expect("JSON"));
        assert_eq!((rs, &rb["code"]), (ns, &nb["code"]), "more like {id:?}: router {rb} vs node {nb}");
    }
}

/// What the fake shard does with `POST /v1/shard/search`.
#[derive(Debug, Clone)]
enum Behaviour {
    /// A valid answer with one hit.
    Answer,
    /// 307 to `0`.
    Redirect(String),
    /// 200 with an endless body.
    Endless,
    /// 400 with an HTML page.
    Html400,
    /// 200 with these hits.
    Hits(Value),
}

struct Fake {
    behaviour: Mutex<Behaviour>,
    /// Bytes of endless bodies produced so far.
    produced: Arc<AtomicU64>,
    /// Search requests received.
    searches: AtomicUsize,
    /// The first searches wait for a permit of this (none: no wait).
    hold: Option<(usize, Arc<Semaphore>)>,
}

fn valid(hits: Value) -> Value {
    json!({"index_version": 1, "answers": [{"hits": hits, "searchable": 3, "filtered": false}]})
}

fn hit(id: &str, score: f64) -> Value {
    json!({"id": id, "url": id, "title": null, "score": score, "rank": score})
}

async fn fake_search(State(fake): State<Arc<Fake>>) -> Response {
    let n = fake.searches.fetch_add(1, Ordering::SeqCst);
    if let Some((held, gate)) = &fake.hold {
        if n < *held {
            let _permit = gate.acquire().await.expect("the gate is never closed");
        }
    }
    let behaviour = fake.behaviour.lock().expect("behaviour").clone();
    match behaviour {
        Behaviour::Answer => axum::Json(valid(json!([hit("a", 0.9)]))).into_response(),
        Behaviour::Redirect(to) => {
            (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, format!("{to}/v1/shard/search"))]).into_response()
        }
        Behaviour::Endless => {
            let produced = Arc::clone(&fake.produced);
            let chunk = bytes::Bytes::from(vec![b' '; 1 << 20]);
            let stream = futures::stream::iter(0..300).map(move |_| {
                produced.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                Ok::<_, std::io::Error>(chunk.clone())
            });
            (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], Body::from_stream(stream)).into_response()
        }
        Behaviour::Html400 => {
            (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "text/html")], "<html><body>Bad Request</body></html>")
                .into_response()
        }
        Behaviour::Hits(hits) => axum::Json(valid(hits)).into_response(),
    }
}

/// A one-shard fake on loopback answering the router's shard routes.
async fn fake_shard(behaviour: Behaviour, hold: Option<(usize, Arc<Semaphore>)>) -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake {
        behaviour: Mutex::new(behaviour),
        produced: Arc::default(),
        searches: AtomicUsize::new(0),
        hold,
    });
    let info = || async {
        axum::Json(
            json!({"version": "0", "shard": null, "embedding_prefix": "cache:embedding:", "documents": 1, "dimension": 3}),
        )
    };
    let app = Router::new()
        .route("/v1/shard/info", get(info))
        // What a router before issue 22 probed.
        .route("/readyz", get(|| async { axum::Json(json!({"status": "ready"})) }))
        .route("/v1/shard/search", post(fake_search))
        .with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), fake)
}

#[tokio::test]
async fn issue_22_router_refuses_redirects_endless_bodies_html_errors_and_invalid_hits_from_a_shard() {
    // Arrange: a router over one fake shard, a second server the redirect points to.
    let redis = TestRedis::start();
    let (shard, fake) = fake_shard(Behaviour::Answer, None).await;
    let (elsewhere, other) = fake_shard(Behaviour::Answer, None).await;
    let r = router(
        &redis,
        shard,
        &[
            ("SEMSEARCH_ROUTER_MAX_SHARD_ANSWER_BYTES", (1 << 20).to_string()),
            ("SEMSEARCH_ROUTER_SHARD_TIMEOUT_MS", "20000".to_owned()),
        ],
    );
    let url = r.base().await;
    let http = reqwest::Client::new();
    wait_ready(&http, &url).await;
    let search = || http.post(format!("{url}/v1/search")).json(&json!({"vector": [1.0, 0.0, 0.0], "k": 3})).send();
    assert_eq!(search().await.expect("search").status(), 200, "a valid shard answer is served");

    let cases = [
        ("HTML 400", Behaviour::Html400),
        ("redirect", Behaviour::Redirect(elsewhere)),
        ("endless body", Behaviour::Endless),
        ("duplicated hits", Behaviour::Hits(json!([hit("a", 0.9), hit("a", 0.9)]))),
        ("unordered hits", Behaviour::Hits(json!([hit("a", 0.1), hit("b", 0.9)]))),
        ("score out of range", Behaviour::Hits(json!([hit("a", 1e39)]))),
        ("more hits than k", Behaviour::Hits(json!([hit("a", 0.9), hit("b", 0.8), hit("c", 0.7), hit("d", 0.6)]))),
    ];
    let mut wrong = Vec::new();
    for (what, behaviour) in cases {
        // Act
        *fake.behaviour.lock().expect("behaviour") = behaviour;
        let res = search().await.expect("search");

        // Assert (every case, then together): our problem, never the
        // shard's bytes or a merged bad answer.
        let status = res.status().as_u16();
        let content_type = res.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = res.text().await.unwrap_or_default();
        let code = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["code"].as_str().map(str::to_owned));
        if (status, content_type.as_deref(), code.as_deref())
            != (503, Some("application/problem+json"), Some("shard_unavailable"))
        {
            wrong.push(format!("{what}: {status} {content_type:?} {}", body.chars().take(200).collect::<String>()));
        }
    }
    assert!(wrong.is_empty(), "answers passed on or merged:\n{}", wrong.join("\n"));
    assert_eq!(other.searches.load(Ordering::SeqCst), 0, "the redirect was not followed");
    let produced = fake.produced.load(Ordering::SeqCst);
    assert!(produced < 64 << 20, "the router stopped reading at its bound: the shard produced {produced} bytes");
    let metrics = http.get(format!("{url}/metrics")).send().await.expect("metrics").text().await.expect("text");
    let bad: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("semsearch_router_bad_answers_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(bad >= 7, "every bad answer is counted: {bad}");
}

#[tokio::test]
async fn issue_22_excess_concurrent_requests_get_overloaded_at_the_router_door() {
    // Arrange: a router admitting 2 requests at once; the shard holds the first 2.
    let redis = TestRedis::start();
    let gate = Arc::new(Semaphore::new(0));
    let (shard, fake) = fake_shard(Behaviour::Answer, Some((2, Arc::clone(&gate)))).await;
    let r = router(&redis, shard, &[("SEMSEARCH_MAX_CONCURRENT_SEARCHES", "2".to_owned())]);
    let url = r.base().await;
    let http = reqwest::Client::new();
    wait_ready(&http, &url).await;
    let body = json!({"vector": [1.0, 0.0, 0.0], "k": 3});
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (http, url, body) = (http.clone(), url.clone(), body.clone());
            tokio::spawn(async move { http.post(format!("{url}/v1/search")).json(&body).send().await })
        })
        .collect();
    for _ in 0..1500 {
        if fake.searches.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fake.searches.load(Ordering::SeqCst), 2, "both held requests reached the shard");

    // Act
    let third = http.post(format!("{url}/v1/search")).json(&body).send().await.expect("search");

    // Assert
    assert_problem(third, 503, "overloaded").await;
    assert_eq!(fake.searches.load(Ordering::SeqCst), 2, "the third request never reached a shard");
    gate.add_permits(2);
    for h in held {
        assert_eq!(h.await.expect("task").expect("search").status(), 200);
    }
    let metrics = http.get(format!("{url}/metrics")).send().await.expect("metrics").text().await.expect("text");
    let rejected = metrics.lines().find_map(|l| l.strip_prefix("semsearch_searches_rejected_total "));
    assert_eq!(rejected, Some("1"), "the refusal is counted under the node's series: {metrics}");
}
