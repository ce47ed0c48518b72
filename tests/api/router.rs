//! `semsearch router` in front of exact shards, all real processes on
//! loopback: three shard processes (shard 0 with two replicas) and a router,
//! against one private Redis holding the real corpus.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use serde_json::{json, Value};

use crate::helpers::{assert_problem, ground_truth, seed_corpus, spawn_app, GroundTruth, TestApp, TestRedis};

/// The semsearch binary as a child process; killed (SIGKILL) on drop.
pub(crate) struct Process {
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Process {
    pub(crate) fn start(args: &[&str], env: &[(&str, String)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_semsearch"))
            .args(args)
            .env_clear()
            .env("SEMSEARCH_BIND", "127.0.0.1:0")
            .env("SEMSEARCH_MODEL_DIR", "/nonexistent/semsearch-model")
            .env("RUST_LOG", "info")
            .env("SEMSEARCH_LOG_FORMAT", "json")
            .env("SEMSEARCH_RETRY_MAX_MS", "200")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the semsearch binary starts");
        let pipe = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("log lines").push(line);
            }
        });
        Self { child, logs }
    }

    /// `http://addr` from the "… listening" log line (bounded wait).
    pub(crate) async fn base(&self) -> String {
        for _ in 0..1500 {
            let found = self.logs.lock().expect("log lines").iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                v["message"].as_str().filter(|m| m.ends_with("listening"))?;
                v["addr"].as_str().map(|a| format!("http://{a}"))
            });
            if let Some(base) = found {
                return base;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no listening line in:\n{}", self.logs.lock().expect("log lines").join("\n"));
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Three shards (shard 0 with replicas a and b), a router, one Redis.
struct Cluster {
    redis: TestRedis,
    /// `[shard0 a, shard0 b, shard1, shard2]`
    shards: Vec<Process>,
    router: Process,
    url: String,
    http: reqwest::Client,
}

pub(crate) async fn wait_ready(http: &reqwest::Client, base: &str) {
    for _ in 0..1500 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{base} did not become ready within 30 s");
}

async fn cluster() -> Cluster {
    cluster_with(&[]).await
}

/// As [`cluster`], with extra environment for the router.
async fn cluster_with(router_env: &[(&str, String)]) -> Cluster {
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    cluster_over(redis, router_env).await
}

/// Three shards and a router over `redis`, seeded by the caller.
async fn cluster_over(redis: TestRedis, router_env: &[(&str, String)]) -> Cluster {
    let http = reqwest::Client::new();
    let shard = |i: u16| {
        Process::start(
            &["serve"],
            &[
                ("REDIS_URL", redis.url()),
                ("SEMSEARCH_SHARD", format!("{i}/3")),
                ("SEMSEARCH_CONTEXT_TTL_SECS", "0".to_owned()),
            ],
        )
    };
    let shards = vec![shard(0), shard(0), shard(1), shard(2)];
    let mut bases = Vec::new();
    for s in &shards {
        let base = s.base().await;
        wait_ready(&http, &base).await;
        bases.push(base);
    }
    let list = format!("{}|{},{},{}", bases[0], bases[1], bases[2], bases[3]);
    let mut env = vec![
        ("REDIS_URL", redis.url()),
        ("SEMSEARCH_ROUTER_SHARDS", list),
        ("SEMSEARCH_ROUTER_SHARD_TIMEOUT_MS", "2000".to_owned()),
    ];
    env.extend(router_env.iter().cloned());
    let router = Process::start(&["router"], &env);
    let url = router.base().await;
    wait_ready(&http, &url).await;
    Cluster { redis, shards, router, url, http }
}

impl Cluster {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.url)).json(body).send().await.expect("request sent")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.url)).send().await.expect("request sent")
    }
}

/// Ids and scores of a search response's results.
fn ranked(res: &Value) -> Vec<(String, f64)> {
    res["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results in {res}"))
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["score"].as_f64().expect("score")))
        .collect()
}

fn assert_same_ranking(what: &str, expected: &[(String, f64)], got: &[(String, f64)]) {
    let ids = |v: &[(String, f64)]| v.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(expected), ids(got), "{what}: ids differ\nexpected {expected:#?}\ngot {got:#?}");
    for ((id, e), (_, g)) in expected.iter().zip(got) {
        assert!((e - g).abs() <= 1e-5, "{what}: score of {id}: expected {e}, got {g}");
    }
}

fn truth(q: &GroundTruth) -> Vec<(String, f64)> {
    q.top10.iter().map(|e| (e.url.clone(), e.score)).collect()
}

pub(crate) async fn single_node(redis: &TestRedis) -> TestApp {
    spawn_app(redis).await
}

#[tokio::test]
async fn router_over_three_shards_answers_exactly_the_single_node_top_10() {
    // Arrange
    let c = cluster().await;
    let one = single_node(&c.redis).await;
    let queries = ground_truth();
    assert_eq!(queries.len(), 30);

    // Act + Assert: every shared query, single and as one batch.
    for q in &queries {
        let body = json!({"vector": q.embedding, "k": 10, "with_text": false});
        let res = c.post("/v1/search", &body).await;
        assert_eq!(res.status(), 200);
        let routed: Value = res.json().await.expect("JSON");
        let single: Value = one.post_search(&body).await.json().await.expect("JSON");
        assert_same_ranking(&q.query, &truth(q), &ranked(&routed));
        assert_same_ranking(&q.query, &ranked(&single), &ranked(&routed));
        assert!(routed["results"][0].get("text").is_none(), "with_text: false is honoured");
    }
    let batch = json!({"queries": queries.iter().map(|q| json!({"vector": q.embedding, "k": 10})).collect::<Vec<_>>()});
    let res: Value = c.post("/v1/search/batch", &batch).await.json().await.expect("JSON");
    for (i, q) in queries.iter().enumerate() {
        assert_same_ranking(&q.query, &truth(q), &ranked(&json!({"results": res["results"][i]})));
    }

    // "More like this" and small k with min_score: equal to one node.
    for q in queries.iter().take(5) {
        for body in [
            json!({"id": q.top10[0].url, "k": 7, "with_text": false}),
            json!({"vector": q.embedding, "k": 50, "min_score": q.top10[3].score, "with_text": false}),
        ] {
            let routed: Value = c.post("/v1/search", &body).await.json().await.expect("JSON");
            let single: Value = one.post_search(&body).await.json().await.expect("JSON");
            assert_same_ranking(&format!("{body}"), &ranked(&single), &ranked(&routed));
            assert_eq!(routed["fewer_results_reason"], single["fewer_results_reason"], "{body}");
        }
    }
}

#[tokio::test]
async fn issue_20_node_and_router_answer_the_same_invalid_requests_alike() {
    // Arrange: one node and a router over three shards, the same Redis.
    let c = cluster().await;
    let one = single_node(&c.redis).await;
    let v = ground_truth()[0].embedding.clone();
    let bad: Vec<(&str, Value)> = vec![
        ("min_score 1e39", json!({"vector": v, "min_score": 1e39})),
        ("min_score -1e39", json!({"vector": v, "min_score": -1e39})),
        ("k = 0", json!({"vector": v, "k": 0})),
        ("k huge", json!({"vector": v, "k": 1_000_000_000i64})),
        ("wrong dimension", json!({"vector": [1.0, 2.0, 3.0]})),
        ("unknown field", json!({"vector": v, "kk": 3})),
        ("empty id", json!({"id": ""})),
        ("wrong filter shape", json!({"vector": v, "filter": {"fields": {"lang": {"a": 1}}}})),
        ("unknown filter field", json!({"vector": v, "filter": {"fields": {"lang": "pt"}}})),
        ("no query", json!({"k": 3})),
        ("two queries", json!({"vector": v, "id": "x"})),
        ("null element", json!({"vector": [1.0, null]})),
        ("bad context key", json!({"vector": v, "context_key": "has space"})),
    ];

    for (what, body) in &bad {
        // Act
        let node = one.post_search(body).await;
        let routed = c.post("/v1/search", body).await;
        let in_batch = c.post("/v1/search/batch", &json!({"queries": [body]})).await;
        let node_batch = one
            .post_raw("/v1/search/batch", "application/json", json!({"queries": [body]}).to_string().into_bytes())
            .await;

        // Assert: same status and code, single and in a batch.
        let (ns, rs) = (node.status().as_u16(), routed.status().as_u16());
        let (nb, rb) = (node_batch.status().as_u16(), in_batch.status().as_u16());
        let code = |v: Value| v["code"].as_str().unwrap_or("(no code)").to_owned();
        let (node, routed) = (code(node.json().await.expect("JSON")), code(routed.json().await.expect("JSON")));
        let (node_b, routed_b) =
            (code(node_batch.json().await.expect("JSON")), code(in_batch.json().await.expect("JSON")));
        assert!(ns >= 400, "{what}: the node accepted it");
        assert_eq!((rs, routed.as_str()), (ns, node.as_str()), "{what}: router vs node");
        assert_eq!((rb, routed_b.as_str()), (nb, node_b.as_str()), "{what}: in a batch, router vs node");
    }
}

#[tokio::test]
async fn issue_20_filtered_searches_through_the_router_equal_the_single_node() {
    // Arrange
    let c = cluster().await;
    let one = single_node(&c.redis).await;
    let queries = ground_truth();
    let prefixes =
        ["https://packages.debian.org/bookworm/p", "https://packages.debian.org/bookworm/lib", "https://nowhere/"];

    for q in queries.iter().take(6) {
        for prefix in prefixes {
            let body = json!({"vector": q.embedding, "k": 10, "with_text": false, "filter": {"url_prefix": prefix}});

            // Act
            let routed: Value = c.post("/v1/search", &body).await.json().await.expect("JSON");
            let single: Value = one.post_search(&body).await.json().await.expect("JSON");

            // Assert
            assert_same_ranking(&format!("{} {prefix}", q.query), &ranked(&single), &ranked(&routed));
            assert_eq!(routed["fewer_results_reason"], single["fewer_results_reason"], "{prefix}");
            assert!(ranked(&routed).iter().all(|(id, _)| id.starts_with(prefix)), "{prefix}");
        }
    }
}

#[tokio::test]
async fn issue_21_lexical_and_hybrid_through_the_router_equal_the_single_node() {
    // Arrange: the Portuguese corpus behind three shards; router and node
    // embed through one local TEI server answering the real embeddings.
    let questions = crate::relevance::questions("pt");
    let url =
        crate::relevance::fake_tei(questions.iter().map(|q| (q.text.clone(), q.embedding.clone())).collect()).await;
    let redis = TestRedis::start();
    crate::relevance::seed_file(&redis, "corpus-pt-dev.jsonl").await;
    let one = crate::relevance::node_embedding_with(&redis, url.clone()).await;
    let c = cluster_over(redis, &[("SEMSEARCH_EMBEDDER", "tei".to_owned()), ("SEMSEARCH_EMBEDDER_URL", url)]).await;
    let prefix = "https://packages.debian.org/bookworm/lib";

    for q in &questions {
        for (mode, extra) in [
            ("hybrid", json!({})),
            ("lexical", json!({})),
            ("hybrid", json!({"filter": {"url_prefix": prefix}, "snippet": {"max_chars": 80}})),
            ("lexical", json!({"k": 40, "min_score": 4.0})),
            ("hybrid", json!({"hybrid": {"vector_weight": 0.7}, "k": 3})),
        ] {
            let mut body = json!({"text": q.text, "k": 10, "with_text": false, "mode": mode});
            for (key, value) in extra.as_object().expect("an object") {
                body[key] = value.clone();
            }

            // Act
            let routed: Value = c.post("/v1/search", &body).await.json().await.expect("JSON");
            let single: Value = one.post_search(&body).await.json().await.expect("JSON");

            // Assert: same ids, scores, both channels' scores, snippets and reason.
            let what = format!("{body}");
            assert_eq!(routed["mode"], single["mode"], "{what}: {routed}");
            assert_same_ranking(&what, &ranked(&single), &ranked(&routed));
            for (r, s) in routed["results"]
                .as_array()
                .into_iter()
                .flatten()
                .zip(single["results"].as_array().into_iter().flatten())
            {
                for field in ["vector_score", "lexical_score"] {
                    let (a, b) = (r[field].as_f64(), s[field].as_f64());
                    assert!(
                        a.zip(b).is_some_and(|(a, b)| (a - b).abs() <= 1e-5) || a == b,
                        "{what}: {field} {a:?} vs {b:?}"
                    );
                }
                assert_eq!(r["snippet"], s["snippet"], "{what}");
            }
            assert_eq!(routed["fewer_results_reason"], single["fewer_results_reason"], "{what}");
        }
    }
}

#[tokio::test]
async fn router_serves_documents_stats_errors_and_writes_contexts_once() {
    // Arrange
    let c = cluster().await;
    let q = &ground_truth()[0];
    let id = &q.top10[0].url;

    // Act
    let doc = c.get(&format!("/v1/documents/{id}")).await;
    let stats: Value = c.get("/v1/stats").await.json().await.expect("JSON");
    let missing = c.post("/v1/search", &json!({"id": "https://nowhere.example/x", "k": 3})).await;
    let wrong_dim = c.post("/v1/search", &json!({"vector": [1.0, 2.0], "k": 3})).await;
    let no_query = c.post("/v1/search", &json!({"k": 3})).await;
    let res: Value = c
        .post("/v1/search", &json!({"vector": q.embedding, "k": 4, "context_key": "router-test"}))
        .await
        .json()
        .await
        .expect("JSON");

    // Assert
    assert_eq!(doc.status(), 200);
    assert_eq!(doc.json::<Value>().await.expect("JSON")["id"], id.as_str());
    assert_eq!(stats["documents"], 2000, "{stats}");
    for field in ["dimension", "kernel", "index_version"] {
        assert!(!stats[field].is_null(), "semsearch bench reads {field}: {stats}");
    }
    assert_eq!(stats["shards"].as_array().map(Vec::len), Some(3));
    assert_problem(missing, 404, "document_not_found").await;
    assert_problem(wrong_dim, 422, "wrong_dimension").await;
    assert_problem(no_query, 422, "query_required").await;
    assert_eq!(res["context"]["key"], "cache:context:router-test");
    let mut conn = c.redis.conn().await;
    let mut stored: Option<String> = None;
    for _ in 0..200 {
        stored = redis::cmd("GET").arg("cache:context:router-test").query_async(&mut conn).await.expect("GET");
        if stored.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored: Value = serde_json::from_str(&stored.expect("the router wrote the context")).expect("context JSON");
    assert!(stored.to_string().contains(id.as_str()), "the context holds the top hit: {stored}");
    let keys: Vec<String> = redis::cmd("KEYS").arg("cache:context:*").query_async(&mut conn).await.expect("KEYS");
    assert_eq!(keys, vec!["cache:context:router-test".to_owned()], "shards write no contexts");
}

#[tokio::test]
async fn killing_one_replica_mid_load_fails_no_request() {
    // Arrange: 4 clients in a loop over the 30 queries.
    let mut c = cluster().await;
    let queries = Arc::new(ground_truth());
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for client in 0..4 {
        let (queries, stop, ok, failed) =
            (Arc::clone(&queries), Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        let (http, url) = (c.http.clone(), c.url.clone());
        clients.push(tokio::spawn(async move {
            let mut i = client;
            while !stop.load(Ordering::Relaxed) {
                let q = &queries[i % queries.len()];
                let body = json!({"vector": q.embedding, "k": 10, "with_text": false});
                let res = http.post(format!("{url}/v1/search")).json(&body).send().await;
                match res {
                    Ok(r) if r.status() == 200 => {
                        let v: Value = r.json().await.expect("JSON");
                        assert_same_ranking(&q.query, &truth(q), &ranked(&v));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => {
                        eprintln!("failed: {} {}", r.status(), r.text().await.unwrap_or_default());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                i += 4;
            }
        }));
    }

    // Act: kill replica a of shard 0 while the load runs.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let before_kill = ok.load(Ordering::Relaxed);
    c.shards[0].kill();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }

    // Assert
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!("{before_kill} answered before the kill, {ok} in all, {failed} failed");
    assert!(before_kill > 0 && ok > before_kill, "requests ran before and after the kill");
    assert_eq!(failed, 0, "no request failed while a replica died");
    let stats: Value = c.get("/v1/stats").await.json().await.expect("JSON");
    assert!(stats["router"]["failed_attempts"].as_u64() > Some(0), "the router saw the dead replica: {stats}");
}

#[tokio::test]
async fn a_shard_without_a_replica_answers_503_naming_it() {
    // Arrange
    let mut c = cluster().await;
    let q = &ground_truth()[0];

    // Act: shard 1 has one replica; kill it.
    c.shards[2].kill();
    let search = c.post("/v1/search", &json!({"vector": q.embedding, "k": 10})).await;
    let batch = c.post("/v1/search/batch", &json!({"queries": [{"vector": q.embedding}]})).await;
    let ready = c.get("/readyz").await;

    // Assert: never a partial answer.
    let problem = assert_problem(search, 503, "shard_unavailable").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("shard 1")), "{problem}");
    assert_problem(batch, 503, "shard_unavailable").await;
    assert_problem(ready, 503, "shard_unavailable").await;
    assert_eq!(c.get("/healthz").await.status(), 200, "the router itself still runs");
    drop(c.router);
}

#[tokio::test]
async fn text_queries_are_embedded_once_at_the_router_and_answer_the_ground_truth() {
    // Arrange: the in-process MiniLM model, when its files are in the cache.
    let Some(dir) = std::env::var_os("SEMSEARCH_MODEL_DIR").map(std::path::PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache/semsearch/models/all-MiniLM-L6-v2"))
    }) else {
        eprintln!("SKIPPED text_queries_are_embedded_once_at_the_router: HOME unset");
        return;
    };
    if !dir.join("model.safetensors").is_file() {
        eprintln!(
            "SKIPPED text_queries_are_embedded_once_at_the_router: no model in {} (run `semsearch model fetch`)",
            dir.display()
        );
        return;
    }
    let c = cluster_with(&[("SEMSEARCH_MODEL_DIR", dir.display().to_string())]).await;

    for q in ground_truth().iter().take(3) {
        // Act
        let res = c.post("/v1/search", &json!({"text": q.query, "k": 10, "with_text": false, "mode": "vector"})).await;

        // Assert: the sentence-transformers ground truth of that question.
        assert_eq!(res.status(), 200);
        let routed: Value = res.json().await.expect("JSON");
        assert_same_ranking(&q.query, &truth(q), &ranked(&routed));
    }
}
