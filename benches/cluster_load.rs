//! Cluster load benchmark (issue 13): the same N chatbot-format values
//! loaded by `semsearch`'s loader from a single private `redis-server` and
//! from a private 3-primary Redis Cluster (`tools::redis_cluster`), in the
//! same run, alternating; prints each round and the ratio of medians. A
//! note, not a test: nothing is asserted about time.
//!
//! ```text
//! cargo bench --bench cluster_load                      # N = 100_000 values (~10 KB each)
//! SEMSEARCH_BENCH_LOAD_N=20000 cargo bench --bench cluster_load
//! ```
//!
//! All four servers share the machine's cores with the loader, so on a
//! small machine the cluster's parallelism is mostly not visible: the ratio
//! measures the cost of the cluster path (SCAN per primary, one pipeline per
//! primary and one MGET per hash slot), not a cluster's capacity.

use std::time::Instant;

use futures::StreamExt;
use rand::{rngs::StdRng, SeedableRng};
mod common;
#[path = "common/measure.rs"]
mod measure;
use measure::median;

use common::chatbot_value;
use semsearch::{
    config::Settings,
    store::{connect::ClusterTarget, link::RedisClient, loader},
    tools::{redis_child::ChildRedis, redis_cluster::ChildCluster},
};

const DEFAULT_N: usize = 100_000;
const ROUNDS: usize = 3;
const SEED: u64 = 42;

/// The same values for both: key `cache:embedding:https://help.example/articles/<i>`.
fn values(n: usize) -> Vec<(String, String)> {
    let mut rng = StdRng::seed_from_u64(SEED);
    (0..n).map(|i| (format!("cache:embedding:https://help.example/articles/{i}"), chatbot_value(i, &mut rng))).collect()
}

async fn fill<C: redis::aio::ConnectionLike + Clone + Send + 'static>(conn: &C, values: &[(String, String)]) {
    futures::stream::iter(values.iter().cloned())
        .map(|(k, v)| {
            let mut c = conn.clone();
            async move {
                let () = redis::cmd("SET").arg(k).arg(v).arg("EX").arg(86400).query_async(&mut c).await.expect("SET");
            }
        })
        .buffer_unordered(256)
        .collect::<Vec<()>>()
        .await;
}

fn main() {
    let n = std::env::var("SEMSEARCH_BENCH_LOAD_N").ok().and_then(|s| s.parse().ok()).unwrap_or(DEFAULT_N);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let single = ChildRedis::start(&mkdir(dir.path().join("single")), &[]).unwrap_or_else(|e| panic!("{e}"));
        let cluster = ChildCluster::start(&mkdir(dir.path().join("cluster")), 3).unwrap_or_else(|e| panic!("{e}"));

        let single_settings = Settings::for_redis_url(&single.url()).expect("settings");
        let mut cluster_settings = Settings::for_redis_url("redis://127.0.0.1:1").expect("settings");
        cluster_settings.redis_cluster =
            Some(ClusterTarget::new(&cluster.seed_list(), cluster_settings.redis.clone()).expect("seeds"));
        let single_client = RedisClient::node(&single_settings.redis).expect("client");
        let cluster_client =
            RedisClient::cluster(cluster_settings.redis_cluster.as_ref().expect("set above")).expect("client");
        let single_conn = loader::connect(&single_client, &single_settings.load).await.expect("connect");
        let cluster_conn = loader::connect(&cluster_client, &cluster_settings.load).await.expect("connect");

        let t = Instant::now();
        let data = values(n);
        fill(&single_conn, &data).await;
        fill(&cluster_conn, &data).await;
        drop(data);
        println!("filled {n} values into one node and into a 3-primary cluster in {:.1} s", t.elapsed().as_secs_f64());

        let (mut base, mut cand) = (Vec::new(), Vec::new());
        for round in 1..=ROUNDS {
            let t = Instant::now();
            let loaded = loader::load_all(&single_conn, &single_settings.keys, &single_settings.load, None)
                .await
                .expect("single-node load");
            let b = t.elapsed().as_secs_f64();
            assert_eq!(loaded.index.len(), n, "single node: every value loaded");
            drop(loaded);
            let t = Instant::now();
            let loaded = loader::load_all(&cluster_conn, &cluster_settings.keys, &cluster_settings.load, None)
                .await
                .expect("cluster load");
            let c = t.elapsed().as_secs_f64();
            assert_eq!(loaded.index.len(), n, "cluster: every value loaded");
            drop(loaded);
            println!("round {round}: single node {b:.3} s, 3-primary cluster {c:.3} s, ratio {:.2}", c / b);
            base.push(b);
            cand.push(c);
        }
        let (b, c) = (median(base), median(cand));
        println!("cluster_load: median single node {b:.3} s, median 3-primary cluster {c:.3} s, ratio {:.2}", c / b);
    });
}

/// Creates the directory and returns it (the servers need it to exist).
fn mkdir(path: std::path::PathBuf) -> std::path::PathBuf {
    std::fs::create_dir_all(&path).expect("bench dir");
    path
}
