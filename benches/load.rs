//! Load benchmark: `semsearch`'s loader vs a bare chunked MGET of the same
//! values, in the same run, against a private `redis-server`; then the
//! resident memory of a real `semsearch serve` process holding the index.
//!
//! ```text
//! cargo bench --bench load                    # N = 100_000 chatbot-format values (~10 KB each)
//! SEMSEARCH_BENCH_LOAD_N=20000 cargo bench --bench load
//! ```
//!
//! Values mimic the chatbot's writer (JavaScript `JSON.stringify` of f32
//! values promoted to f64: ~17 significant digits per float) plus ~2 KB of
//! title and text, so each value is about 10 KB.

use std::{
    net::TcpListener,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt;
use rand::{rngs::StdRng, SeedableRng};
use redis::{aio::MultiplexedConnection, Value};
mod common;
#[path = "common/measure.rs"]
mod measure;
use measure::median;

use common::chatbot_value;
use semsearch::{
    config::Settings,
    store::{
        link::{self, RedisConn},
        loader,
    },
    tools::redis_child::ChildRedis,
};

const DEFAULT_N: usize = 100_000;
const ROUNDS: usize = 3;
const SEED: u64 = 42;
const SET_BATCH: usize = 500;

async fn fill(conn: &mut MultiplexedConnection, n: usize) -> u64 {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut bytes = 0u64;
    for start in (0..n).step_by(SET_BATCH) {
        let mut pipe = redis::pipe();
        for i in start..(start + SET_BATCH).min(n) {
            let value = chatbot_value(i, &mut rng);
            bytes += value.len() as u64;
            pipe.cmd("SET")
                .arg(format!("cache:embedding:https://help.example/articles/{i}"))
                .arg(value)
                .arg("EX")
                .arg(86400)
                .ignore();
        }
        let () = pipe.query_async(conn).await.expect("fill Redis");
    }
    bytes
}

/// The baseline: the same SCAN (the loader's own) and the same chunked,
/// pipelined MGETs, values received and dropped unparsed.
async fn bare_mget(conn: &RedisConn, pattern: &str, scan_count: usize, chunk: usize) -> (usize, u64) {
    let keys = link::scan_all(conn, pattern, scan_count).await.expect("SCAN");
    let keys = Arc::new(keys);
    let mut replies = futures::stream::iter((0..keys.len()).step_by(chunk))
        .map(|first| {
            let mut c = conn.clone();
            let keys = Arc::clone(&keys);
            async move {
                let end = (first + chunk).min(keys.len());
                let reply: Value = redis::cmd("MGET").arg(&keys[first..end]).query_async(&mut c).await.expect("MGET");
                reply
            }
        })
        .buffered(2);
    let (mut values, mut bytes) = (0usize, 0u64);
    while let Some(reply) = replies.next().await {
        if let Value::Array(items) = reply {
            for item in items {
                if let Value::BulkString(b) = item {
                    values += 1;
                    bytes += b.len() as u64;
                }
            }
        }
    }
    (values, bytes)
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

async fn measure_service_memory(redis_url: &str) {
    let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_semsearch"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("REDIS_URL", redis_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn semsearch");
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut stats = serde_json::Value::Null;
    for _ in 0..6000 {
        if let Ok(res) = http.get(format!("{base}/v1/stats")).send().await {
            if res.status() == 200 {
                stats = res.json().await.expect("stats JSON");
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = rss_bytes(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let vectors = stats["index_bytes"].as_u64().unwrap_or(0);
    let metadata = stats["metadata_bytes"].as_u64().unwrap_or(0);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "memory: semsearch serve RSS {:.1} MiB; vectors {:.1} MiB + metadata {:.1} MiB = {:.1} MiB",
        mib(rss),
        mib(vectors),
        mib(metadata),
        mib(vectors + metadata)
    );
    println!("memory: RSS / (vectors + metadata) = {:.3}", rss as f64 / (vectors + metadata).max(1) as f64);
    println!("memory: (RSS - metadata) / vectors = {:.3}", rss.saturating_sub(metadata) as f64 / vectors.max(1) as f64);
}

fn main() {
    let n = std::env::var("SEMSEARCH_BENCH_LOAD_N").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_N);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = ChildRedis::start(dir.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
        let settings = Settings::for_redis_url(&redis.url()).expect("settings");
        let client = redis::Client::open(redis.url()).expect("client");
        let mut fill_conn = client.get_multiplexed_async_connection().await.expect("connect");
        let t = Instant::now();
        let bytes = fill(&mut fill_conn, n).await;
        println!(
            "filled {n} values, {:.1} MiB ({:.0} bytes each) in {:.1} s",
            bytes as f64 / (1 << 20) as f64,
            bytes as f64 / n as f64,
            t.elapsed().as_secs_f64()
        );

        let client = semsearch::store::link::RedisClient::node(&settings.redis).expect("client");
        let conn = loader::connect(&client, &settings.load).await.expect("connect");
        let (mut base, mut cand) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            let t = Instant::now();
            let (values, got) =
                bare_mget(&conn, settings.keys.embedding_pattern(), settings.load.scan_count, settings.load.chunk_keys)
                    .await;
            let b = t.elapsed().as_secs_f64();
            assert_eq!((values, got), (n, bytes), "baseline saw every value");
            let t = Instant::now();
            let loaded = loader::load_all(&conn, &settings.keys, &settings.load, None).await.expect("load");
            let c = t.elapsed().as_secs_f64();
            assert_eq!(loaded.index.len(), n, "loader kept every value");
            drop(loaded);
            println!("round {round}: bare MGET {b:.3} s, semsearch load {c:.3} s, ratio {:.2}", c / b);
            base.push(b);
            cand.push(c);
        }
        let (b, c) = (median(base), median(cand));
        println!(
            "load/bare_mget: median bare MGET {b:.3} s ({:.0} MiB/s), median load {c:.3} s, ratio {:.2} (goal <= 1.5)",
            bytes as f64 / (1 << 20) as f64 / b,
            c / b
        );
        measure_service_memory(&redis.url()).await;
    });
}
