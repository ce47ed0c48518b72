//! Redis memory (issue 22, item 4): under `maxmemory` with an evicting
//! policy, the service's own writes must never make Redis evict the
//! chatbot's `cache:embedding:*` keys.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{ground_truth, seed_corpus, spawn_app_with, test_settings, TestRedis};

async fn info_field(conn: &mut redis::aio::MultiplexedConnection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query_async(conn).await.expect("INFO");
    info.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("{field}:")).map(str::to_owned))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO {section} has no {field}"))
}

async fn embedding_keys(conn: &mut redis::aio::MultiplexedConnection) -> usize {
    let keys: Vec<String> = redis::cmd("KEYS").arg("cache:embedding:*").query_async(conn).await.expect("KEYS");
    keys.len()
}

#[tokio::test]
async fn issue_22_many_searches_under_allkeys_lru_never_evict_the_chatbots_embeddings() {
    // Arrange: the dev corpus, then maxmemory 3 MB above what Redis uses
    // now, with the chatbot team's allkeys-lru (a private redis-server).
    // Loading reads 50 keys per MGET: Redis counts reply buffers in
    // used_memory, so a 500-key chunk (2.4 MB) alone would make it evict.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    let documents = seed_corpus(&mut conn).await;
    let used = info_field(&mut conn, "memory", "used_memory").await;
    let maxmemory = used + (3 << 20);
    for (name, value) in [("maxmemory", maxmemory.to_string()), ("maxmemory-policy", "allkeys-lru".to_owned())] {
        let () = redis::cmd("CONFIG").arg("SET").arg(name).arg(value).query_async(&mut conn).await.expect("CONFIG SET");
    }
    let mut settings = test_settings(&redis);
    settings.redis_memory.check_every = Duration::from_millis(200);
    settings.load.chunk_keys = 50;
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    let queries = ground_truth();

    // Act: 600 searches, each a distinct context of up to 20 results with
    // their texts (~100 KB each at k = 20: far more than the 3 MB of room).
    let mut served = 0;
    for i in 0..600 {
        let q = &queries[i % queries.len()];
        let k = 1 + (i / queries.len()) % 20;
        let res = app.post_search(&json!({"vector": q.embedding, "k": k, "with_text": true})).await;
        served += usize::from(res.status() == 200);
    }
    // The writer drains its queue asynchronously: wait until it has taken every write.
    let mut outcomes = Value::Null;
    for _ in 0..200 {
        let stats = app.stats().await;
        outcomes = stats["contexts"].clone();
        let settled =
            ["written", "memory_held", "dropped", "failed"].iter().filter_map(|o| outcomes[o].as_u64()).sum::<u64>();
        if settled >= 600 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.get("/metrics").await.text().await.expect("metrics");

    // Assert
    assert_eq!(served, 600, "every search is served");
    assert_eq!(info_field(&mut conn, "stats", "evicted_keys").await, 0, "Redis evicted keys; contexts: {outcomes}");
    assert_eq!(embedding_keys(&mut conn).await, documents, "every chatbot embedding is still there");
    let held = metrics
        .lines()
        .find(|l| l.starts_with("semsearch_context_writes_total") && l.contains("outcome=\"memory_held\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(held > 0.0, "the guard held writes back (else this test proves nothing): {outcomes}");
    assert!(outcomes["written"].as_u64() > Some(0), "contexts are written while there is room: {outcomes}");
    assert!(metrics.contains("semsearch_redis_memory_headroom_bytes"), "headroom is exposed");
    assert!(metrics.contains("semsearch_redis_evicted_keys_total 0"), "evictions are exposed");
}
