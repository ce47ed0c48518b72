//! Redis Cluster as the source (issue 13): a real 3-primary cluster of
//! private `redis-server`s on free loopback ports (never 6379), built by
//! `tools::redis_cluster`. Changes are polled for with a generous patience;
//! the time they took is printed, not asserted.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use futures::StreamExt;
use redis::{aio::MultiplexedConnection, cluster_async::ClusterConnection};
use semsearch::{config::Settings, shard::key_slot, store::connect::ClusterTarget, tools::redis_cluster::ChildCluster};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{ground_truth, seed_corpus, shared_data, spawn_app_with, TestApp, TestRedis};

const QUICK: &str = "cache:processed_articles:quick";
/// Upper bound for anything "eventually" (the 2 s is printed, not asserted).
const PATIENCE: Duration = Duration::from_secs(30);

/// A private 3-primary cluster and its directory (removed after the nodes are gone).
struct TestCluster {
    nodes: ChildCluster,
    _dir: TempDir,
}

impl TestCluster {
    fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("semsearch-cluster").tempdir().expect("temp dir");
        let nodes = ChildCluster::start(dir.path(), 3).unwrap_or_else(|e| panic!("{e}"));
        Self { nodes, _dir: dir }
    }

    async fn conn(&self) -> ClusterConnection {
        let seeds: Vec<String> = self.nodes.seed_list().iter().map(|s| format!("redis://{s}")).collect();
        let client = redis::cluster::ClusterClient::new(seeds).expect("cluster client");
        client.get_async_connection().await.expect("connect to the test cluster")
    }

    /// A plain connection to one node (for its own view: slots, DBSIZE).
    async fn node(&self, port: u16) -> MultiplexedConnection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("node url");
        client.get_multiplexed_async_connection().await.expect("connect to a node")
    }

    /// The app's settings: defaults, REDIS_CLUSTER_NODES = our seeds.
    fn settings(&self) -> Settings {
        let mut s = Settings::for_redis_url("redis://127.0.0.1:1").expect("valid settings");
        s.redis_cluster = Some(ClusterTarget::new(&self.nodes.seed_list(), s.redis.clone()).expect("valid seeds"));
        s.retry_max = Duration::from_millis(200);
        s.embedder = None;
        s
    }

    /// The slot ranges node `port` serves, from its own `CLUSTER SLOTS`.
    async fn ranges_of(&self, port: u16) -> Vec<(u16, u16)> {
        let slots: Vec<Value> = redis_json(&mut self.node(port).await, "CLUSTER", &["SLOTS"]).await;
        slots
            .iter()
            .filter(|r| r[2][1].as_u64() == Some(u64::from(port)))
            .map(|r| (r[0].as_u64().expect("start") as u16, r[1].as_u64().expect("end") as u16))
            .collect()
    }

    /// A key `cache:embedding:<stem>-<n>` that node `port` serves; checks
    /// our slot function against the node's `CLUSTER KEYSLOT` on the way.
    async fn key_on(&self, port: u16, stem: &str) -> String {
        let ranges = self.ranges_of(port).await;
        assert!(!ranges.is_empty(), "node {port} serves no slot");
        let mut node = self.node(port).await;
        for n in 0.. {
            let key = format!("cache:embedding:{stem}-{n}");
            let slot = key_slot(key.as_bytes());
            let theirs: u16 =
                redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key).query_async(&mut node).await.expect("KEYSLOT");
            assert_eq!(slot, theirs, "slot of {key}");
            if ranges.iter().any(|&(a, b)| (a..=b).contains(&slot)) {
                return key;
            }
        }
        unreachable!("some key lands on every primary")
    }
}

/// A command's reply as JSON-ish values (arrays of ints and strings).
async fn redis_json(c: &mut MultiplexedConnection, name: &str, args: &[&str]) -> Vec<Value> {
    fn to_json(v: redis::Value) -> Value {
        match v {
            redis::Value::Int(i) => json!(i),
            redis::Value::BulkString(b) => json!(String::from_utf8_lossy(&b)),
            redis::Value::SimpleString(s) => json!(s),
            redis::Value::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
            _ => Value::Null,
        }
    }
    let mut cmd = redis::cmd(name);
    for a in args {
        cmd.arg(*a);
    }
    let v: redis::Value = cmd.query_async(c).await.expect("command");
    match to_json(v) {
        Value::Array(items) => items,
        other => panic!("{name}: not an array: {other}"),
    }
}

async fn cmd<T: redis::FromRedisValue>(c: &mut ClusterConnection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query_async(c).await.unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The dev corpus into the cluster, as `helpers::seed_corpus` writes it into one node.
async fn seed_cluster(c: &ClusterConnection) -> usize {
    let text = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect("read corpus-dev.jsonl");
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
    let n = lines.len();
    futures::stream::iter(lines)
        .map(|line| {
            let mut c = c.clone();
            async move {
                let doc: Value = serde_json::from_str(&line).expect("corpus line is JSON");
                let key = format!("cache:embedding:{}", doc["url"].as_str().expect("url"));
                let () =
                    redis::cmd("SET").arg(key).arg(line).arg("EX").arg(86400).query_async(&mut c).await.expect("SET");
            }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    n
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`PATIENCE`].
async fn eventually<T, F, Fut>(what: &str, check: F) -> (T, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    crate::helpers::eventually_within(what, PATIENCE, Duration::from_millis(50), check).await
}

async fn feed_state(app: &TestApp) -> Value {
    app.stats().await["refresh"]["change_feed"].clone()
}

async fn feed_armed(app: &TestApp) {
    eventually("change feed armed", || async { (feed_state(app).await == "tracking").then_some(()) }).await;
}

fn has(app: &TestApp, id: &str) -> bool {
    app.index.current().is_some_and(|i| i.find(id).is_some())
}

/// Every shared query's top-10 equals the ground truth (ids; scores within 1e-5).
async fn assert_ground_truth(app: &TestApp) {
    for q in ground_truth() {
        let res = app.post_search(&json!({"vector": q.embedding, "k": 10, "with_text": false})).await;
        assert_eq!(res.status(), 200, "{}", q.query);
        let body: Value = res.json().await.expect("JSON");
        let got: Vec<(String, f64)> = body["results"]
            .as_array()
            .expect("results")
            .iter()
            .map(|r| (r["id"].as_str().expect("id").to_owned(), r["score"].as_f64().expect("score")))
            .collect();
        let want: Vec<(String, f64)> = q.top10.iter().map(|e| (e.url.clone(), e.score)).collect();
        let same =
            got.len() == want.len() && got.iter().zip(&want).all(|(g, w)| g.0 == w.0 && (g.1 - w.1).abs() <= 1e-5);
        assert!(same, "{}:\n expected {want:?}\n got      {got:?}", q.query);
    }
}

#[tokio::test]
async fn cluster_load_equals_a_single_node_load_of_the_same_documents() {
    // Arrange: the same corpus in a 3-primary cluster and in one node.
    let cluster = TestCluster::start();
    let n = seed_cluster(&cluster.conn().await).await;
    let single = TestRedis::start();
    assert_eq!(seed_corpus(&mut single.conn().await).await, n);
    for port in cluster.nodes.ports() {
        let keys: u64 = redis::cmd("DBSIZE").query_async(&mut cluster.node(port).await).await.expect("DBSIZE");
        assert!(keys > 0 && keys < n as u64, "node {port} holds {keys} of {n} keys: not spread");
    }

    // Act
    let from_cluster = spawn_app_with(cluster.settings()).await;
    from_cluster.wait_ready().await;
    let from_node = crate::helpers::spawn_app(&single).await;

    // Assert: the same rows (ids, vector bits, metadata), in the same order.
    let (a, b) = (from_cluster.index.current().expect("loaded"), from_node.index.current().expect("loaded"));
    assert_eq!(a.len(), n);
    assert_eq!(a.len(), b.len());
    for r in 0..a.len() {
        assert_eq!(a.doc(r).id, b.doc(r).id, "row {r}");
        assert_eq!(a.doc(r).title, b.doc(r).title, "row {r}");
        assert!(a.row(r).iter().map(|x| x.to_bits()).eq(b.row(r).iter().map(|x| x.to_bits())), "row {r}");
    }
    assert_eq!(from_cluster.stats().await["skipped"], from_node.stats().await["skipped"]);
    assert_ground_truth(&from_cluster).await;
}

#[tokio::test]
async fn cluster_set_del_and_expiry_on_every_primary_are_mirrored() {
    // Arrange: one existing document per primary, and the app tracking all three.
    let cluster = TestCluster::start();
    let mut c = cluster.conn().await;
    let mut existing = Vec::new();
    for port in cluster.nodes.ports() {
        let key = cluster.key_on(port, &format!("old-{port}")).await;
        let _: () = cmd(&mut c, &["SET", &key, "[1,0,0]", "EX", "86400"]).await;
        existing.push((port, key));
    }
    let app = spawn_app_with(cluster.settings()).await;
    app.wait_ready().await;
    feed_armed(&app).await;
    let reloads = app.stats().await["refresh"]["reloads"].as_u64();

    for (port, old_key) in &existing {
        let old_id = old_key.trim_start_matches("cache:embedding:");
        assert!(has(&app, old_id), "{old_id} loaded");

        // Act + Assert: SET of a new key on this primary.
        let new_key = cluster.key_on(*port, &format!("new-{port}")).await;
        let new_id = new_key.trim_start_matches("cache:embedding:").to_owned();
        let _: () = cmd(&mut c, &["SET", &new_key, "[0,1,0]", "EX", "86400"]).await;
        let (_, took) =
            eventually(&format!("SET {new_key} on {port} mirrored"), || async { has(&app, &new_id).then_some(()) })
                .await;
        eprintln!("node {port}: SET mirrored in {took:?}");

        // DEL of the existing key on this primary.
        let _: i64 = cmd(&mut c, &["DEL", old_key]).await;
        let (_, took) =
            eventually(&format!("DEL {old_key} on {port} mirrored"), || async { (!has(&app, old_id)).then_some(()) })
                .await;
        eprintln!("node {port}: DEL mirrored in {took:?}");

        // Expiry: a key with a short TTL appears, then leaves when Redis expires it.
        let brief_key = cluster.key_on(*port, &format!("brief-{port}")).await;
        let brief_id = brief_key.trim_start_matches("cache:embedding:").to_owned();
        let _: () = cmd(&mut c, &["SET", &brief_key, "[0,0,1]", "PX", "1500"]).await;
        eventually(&format!("{brief_key} appears"), || async { has(&app, &brief_id).then_some(()) }).await;
        let (_, took) = eventually(&format!("{brief_key} expires"), || async {
            let gone_from_redis: i64 = cmd(&mut c.clone(), &["EXISTS", &brief_key]).await;
            (gone_from_redis == 0 && !has(&app, &brief_id)).then_some(())
        })
        .await;
        eprintln!("node {port}: expiry mirrored {took:?} after it appeared");
    }
    assert_eq!(app.stats().await["refresh"]["reloads"].as_u64(), reloads, "per-key changes caused no full reload");
}

#[tokio::test]
async fn cluster_quick_key_del_reloads() {
    // Arrange
    let cluster = TestCluster::start();
    let mut c = cluster.conn().await;
    seed_cluster(&c).await;
    let _: () = cmd(&mut c, &["SET", QUICK, "[]", "EX", "3600"]).await;
    let app = spawn_app_with(cluster.settings()).await;
    app.wait_ready().await;
    feed_armed(&app).await;
    let before = app.stats().await["refresh"]["reloads"].as_u64().expect("reloads");

    // Act
    let _: i64 = cmd(&mut c, &["DEL", QUICK]).await;

    // Assert
    let (stats, took) = eventually("a reload caused by the quick key", || async {
        let s = app.stats().await;
        (s["refresh"]["reloads"].as_u64() > Some(before)
            && s["refresh"]["last_reload"]["reason"] == "quick_key_changed")
            .then_some(s)
    })
    .await;
    eprintln!("DEL quick on the cluster -> reload published in {took:?}");
    assert_eq!(stats["documents"], 2000);
}

#[tokio::test]
async fn cluster_primary_killed_queries_are_answered_and_it_is_reloaded_after_it_returns() {
    // Arrange
    let mut cluster = TestCluster::start();
    seed_cluster(&cluster.conn().await).await;
    let app = spawn_app_with(cluster.settings()).await;
    app.wait_ready().await;
    feed_armed(&app).await;
    let before = app.stats().await["refresh"]["reloads"].as_u64().expect("reloads");

    // Act: one primary dies (no replica takes over).
    cluster.nodes.kill(1);

    // Assert: the feed notices; meanwhile queries are answered from memory and /readyz stays 200.
    let started = Instant::now();
    let mut probes = 0;
    while feed_state(&app).await == "tracking" || started.elapsed() < Duration::from_secs(3) {
        assert!(started.elapsed() < PATIENCE, "the change feed never noticed the dead primary");
        assert_eq!(app.get("/readyz").await.status(), 200, "readyz while a primary is down");
        assert_ground_truth(&app).await;
        probes += 1;
    }
    eprintln!("{probes} rounds of 30 queries answered while a primary was down; feed {}", feed_state(&app).await);

    // Act: it comes back with its data.
    cluster.nodes.restart(1).unwrap_or_else(|e| panic!("{e}"));

    // Assert: re-armed on every primary, followed by a full reload.
    let (stats, took) = eventually("a reload after the primary returned", || async {
        let s = app.stats().await;
        (s["refresh"]["reloads"].as_u64() > Some(before) && s["refresh"]["change_feed"] == "tracking").then_some(s)
    })
    .await;
    eprintln!("primary back -> feed re-armed and reload published in {took:?} ({})", stats["refresh"]["last_reload"]);
    assert_eq!(stats["documents"], 2000);
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_ground_truth(&app).await;
}

#[tokio::test]
async fn cluster_reshard_keeps_answers_exact_and_is_followed_by_a_reload() {
    // Arrange
    let cluster = TestCluster::start();
    seed_cluster(&cluster.conn().await).await;
    let app = spawn_app_with(cluster.settings()).await;
    app.wait_ready().await;
    feed_armed(&app).await;
    let before = app.stats().await["refresh"]["reloads"].as_u64().expect("reloads");

    // Act: 200 slots and their keys move from the first primary to the
    // second, while every shared query keeps being asked.
    let mut reshard = tokio::process::Command::from(cluster.nodes.reshard_command(0, 1, 200))
        .spawn()
        .expect("redis-cli --cluster reshard runs");
    let mut rounds = 0;
    let status = loop {
        if let Some(status) = reshard.try_wait().expect("reshard status") {
            break status;
        }
        assert_ground_truth(&app).await;
        rounds += 1;
    };
    assert!(status.success(), "redis-cli --cluster reshard failed: {status}");
    cluster.nodes.wait_ok().unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{rounds} rounds of 30 queries answered exactly during the reshard");

    // Assert: the feed saw the new topology and a full reload followed.
    let (stats, took) = eventually("a reload after the reshard", || async {
        let s = app.stats().await;
        (s["refresh"]["reloads"].as_u64() > Some(before) && s["refresh"]["change_feed"] == "tracking").then_some(s)
    })
    .await;
    eprintln!("reshard done -> reload published in {took:?} ({})", stats["refresh"]["last_reload"]);
    assert_eq!(stats["refresh"]["last_reload"]["reason"], "change_feed_rearmed");
    assert_eq!(stats["documents"], 2000);
    assert_ground_truth(&app).await;
}

/// Every `cache:context:*` key on every node, from each node's own view.
async fn contexts_on_nodes(cluster: &TestCluster) -> Vec<String> {
    let mut all = Vec::new();
    for port in cluster.nodes.ports() {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg("cache:context:*").query_async(&mut cluster.node(port).await).await.expect("KEYS");
        all.extend(keys);
    }
    all
}

#[tokio::test]
async fn cluster_contexts_are_written_to_every_primary_and_purged_from_all() {
    // Arrange: contexts left by an earlier process on every primary.
    let cluster = TestCluster::start();
    let mut c = cluster.conn().await;
    for port in cluster.nodes.ports() {
        let _: () = cmd(&mut c, &["SET", &cluster.key_on(port, "a").await, "[1,0,0]", "EX", "86400"]).await;
        let old = cluster.key_on(port, "x").await.replace("cache:embedding:", "cache:context:old-");
        let _: () = cmd(&mut c, &["SET", &old, "{}", "EX", "3600"]).await;
    }
    let mut stale = contexts_on_nodes(&cluster).await;
    stale.sort();

    // Act 1: start (purges every context by SCAN on every primary), then search with 12 context keys.
    let app = spawn_app_with(cluster.settings()).await;
    app.wait_ready().await;
    let names: Vec<String> = (0..12).map(|i| format!("session-{i}")).collect();
    for name in &names {
        let res = app.post_search(&json!({"vector": [1, 0, 0], "k": 1, "context_key": name})).await;
        assert_eq!(res.status(), 200);
    }

    // Assert 1: the earlier process's contexts are gone; ours are on more than one primary.
    let (written, _) = eventually("12 contexts written and the old ones purged", || async {
        let mut now = contexts_on_nodes(&cluster).await;
        now.sort();
        (now.len() == names.len() && now.iter().all(|k| !stale.contains(k))).then_some(now)
    })
    .await;
    let mut nodes_with_contexts = 0;
    for port in cluster.nodes.ports() {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg("cache:context:*").query_async(&mut cluster.node(port).await).await.expect("KEYS");
        nodes_with_contexts += usize::from(!keys.is_empty());
    }
    assert!(nodes_with_contexts > 1, "12 context keys all on one primary: {written:?}");
    let stored: Option<String> = cmd(&mut c, &["GET", "cache:context:session-3"]).await;
    assert!(stored.is_some_and(|s| s.contains("\"results\"")));

    // Act 2: a reload retires every context of the previous version.
    let reload = app.http.post(app.url("/v1/admin/reload")).send().await.expect("reload");
    assert_eq!(reload.status(), 200);

    // Assert 2: purged from every primary (a multi-slot UNLINK); the embeddings stay.
    eventually("contexts purged from every primary", || async {
        contexts_on_nodes(&cluster).await.is_empty().then_some(())
    })
    .await;
    assert_eq!(app.stats().await["documents"], 3);
}
