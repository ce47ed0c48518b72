//! Refresh latency: how long Redis changes take to reach search results,
//! against a private `redis-server` and the real `App`.
//!
//! ```text
//! cargo bench --bench refresh
//! ```
//!
//! Measures, over `ROUNDS` rounds on the 2,000-document shared corpus:
//! - DEL of the quick key → a new index version is served (includes the
//!   250 ms debounce);
//! - a per-key DEL → the document is gone from results;
//! - a per-key SET of a new document → it is found;
//! - the quick key set with a 1 s TTL → a reload at its deadline.
//!
//! Reported as medians; the issue's target is 2 s for each.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use redis::aio::MultiplexedConnection;
use semsearch::{app::App, config::Settings, tools::redis_child::ChildRedis};
use serde_json::{json, Value};

#[path = "common/measure.rs"]
mod measure;
use measure::median;

const ROUNDS: usize = 5;
const QUICK: &str = "cache:processed_articles:quick";
const PATIENCE: Duration = Duration::from_secs(30);

async fn set(c: &mut MultiplexedConnection, key: &str, value: &str) {
    let () = redis::cmd("SET").arg(key).arg(value).query_async(c).await.expect("SET");
}

async fn del(c: &mut MultiplexedConnection, key: &str) {
    let _: i64 = redis::cmd("DEL").arg(key).query_async(c).await.expect("DEL");
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn stats(&self) -> Value {
        self.http.get(format!("{}/v1/stats", self.base)).send().await.expect("stats").json().await.expect("JSON")
    }

    async fn top(&self, vector: &[f32]) -> Vec<String> {
        let body: Value = self
            .http
            .post(format!("{}/v1/search", self.base))
            .json(&json!({"vector": vector, "k": 1, "with_text": false}))
            .send()
            .await
            .expect("search")
            .json()
            .await
            .expect("JSON");
        body["results"]
            .as_array()
            .map_or_else(Vec::new, |r| r.iter().filter_map(|x| x["id"].as_str().map(str::to_owned)).collect())
    }
}

/// Polls until `done`, returns the time since `since`.
async fn until<F, Fut>(since: Instant, mut done: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    while since.elapsed() < PATIENCE {
        if done().await {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no change within {PATIENCE:?}");
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = ChildRedis::start(dir.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
        let client = redis::Client::open(redis.url()).expect("client");
        let mut c = client.get_multiplexed_async_connection().await.expect("connect");
        let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/corpus-dev.jsonl");
        let text = std::fs::read_to_string(&corpus).expect("../shared/data/corpus-dev.jsonl");
        let mut pipe = redis::pipe();
        let mut docs: Vec<(String, Vec<f32>)> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let doc: Value = serde_json::from_str(line).expect("corpus line");
            let url = doc["url"].as_str().expect("url").to_owned();
            let v: Vec<f32> = serde_json::from_value(doc["embedding"].clone()).expect("embedding");
            pipe.cmd("SET").arg(format!("cache:embedding:{url}")).arg(line).arg("EX").arg(86400).ignore();
            docs.push((url, v));
        }
        let () = pipe.query_async(&mut c).await.expect("seed");
        set(&mut c, QUICK, "[]").await;

        let settings = Settings::for_redis_url(&redis.url()).expect("settings");
        let app = App::build(settings).await.expect("app");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let api = Client { http: reqwest::Client::new(), base };
        until(Instant::now(), || async { api.stats().await["refresh"]["change_feed"] == "tracking" }).await;

        let (mut quick, mut key_del, mut key_set) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Quick key deleted → next version served.
            let version = api.stats().await["index_version"].as_u64().expect("version");
            let t = Instant::now();
            del(&mut c, QUICK).await;
            quick.push(until(t, || async { api.stats().await["index_version"].as_u64() > Some(version) }).await);
            set(&mut c, QUICK, "[]").await;
            tokio::time::sleep(Duration::from_millis(600)).await; // let that SET's own reload pass

            // One document deleted → gone from results.
            let (url, vector) = &docs[round * 7];
            let key = format!("cache:embedding:{url}");
            let t = Instant::now();
            del(&mut c, &key).await;
            key_del.push(until(t, || async { api.top(vector).await.first() != Some(url) }).await);

            // ...and set again → found.
            let value = serde_json::to_string(&json!({"url": url, "title": "t", "text": "x", "embedding": vector})).expect("JSON");
            let t = Instant::now();
            set(&mut c, &key, &value).await;
            key_set.push(until(t, || async { api.top(vector).await.first() == Some(url) }).await);
            println!("round {}: quick DEL {:?}, key DEL {:?}, key SET {:?}", round + 1, quick[round], key_del[round], key_set[round]);
        }
        println!(
            "refresh: median quick-key DEL -> new version {:?}; key DEL -> gone {:?}; key SET -> found {:?} (target 2 s each)",
            median(quick),
            median(key_del),
            median(key_set)
        );

        // Quick key with a 1 s TTL among the 2,000 volatile keys → reload at its deadline.
        let t = Instant::now();
        let () = redis::cmd("SET").arg(QUICK).arg("[]").arg("PX").arg(1000).query_async(&mut c).await.expect("SET PX");
        tokio::time::sleep(Duration::from_millis(700)).await; // the SET's own reload
        let version = api.stats().await["index_version"].as_u64().expect("version");
        let expiry = until(t, || async { api.stats().await["index_version"].as_u64() > Some(version) }).await;
        println!(
            "refresh: quick key PX 1000 -> reload published {expiry:?} after the SET (reason {})",
            api.stats().await["refresh"]["last_reload"]["reason"]
        );
        let _ = stop.send(());
        let _ = server.await;
    });
}
