//! `SEMSEARCH_SHARD=i/n`: slots as Redis computes them, shards that
//! partition the corpus, and per-key updates that respect the shard.

use std::{collections::BTreeSet, time::Duration};

use rand::{rngs::StdRng, Rng, SeedableRng};
use semsearch::{
    shard::{key_slot, Shard},
    tools::redis_child::ChildRedis,
};
use serde_json::{json, Value};

use crate::helpers::{seed_corpus, spawn_app_with, test_settings, TestApp, TestRedis};

async fn shard_app(redis: &TestRedis, shard: Shard) -> TestApp {
    let mut settings = test_settings(redis);
    settings.keys = settings.keys.clone().with_shard(Some(shard));
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    app
}

async fn document_ids(app: &TestApp) -> BTreeSet<String> {
    let body = json!({"vector": vec![1.0f32; 384], "k": 1000, "with_text": false});
    let res: Value = app.post_search(&body).await.json().await.expect("search JSON");
    res["results"].as_array().expect("results").iter().map(|r| r["id"].as_str().expect("id").to_owned()).collect()
}

#[test]
fn key_slot_equals_cluster_keyslot_of_a_real_redis() {
    // Arrange: a cluster-enabled server answers CLUSTER KEYSLOT without any
    // slots assigned; random keys, some with hashtags, empty tags and braces.
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ChildRedis::start(dir.path(), &["--cluster-enabled", "yes"]).unwrap_or_else(|e| panic!("{e}"));
    let client = redis::Client::open(server.url()).expect("url");
    let mut conn = client.get_connection().expect("connect");
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let alphabet = b"ab{}:/.-_xyz019";
    let mut keys: Vec<Vec<u8>> = (0..500)
        .map(|_| (0..rng.random_range(0..24)).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect())
        .collect();
    keys.push(b"cache:embedding:https://help.example.com/articles/1".to_vec());
    keys.push("cache:embedding:https://例え.jp/記事".as_bytes().to_vec());

    for key in keys {
        // Act
        let redis_slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&key).query(&mut conn).expect("CLUSTER KEYSLOT");

        // Assert
        assert_eq!(key_slot(&key), redis_slot, "key {:?}", String::from_utf8_lossy(&key));
    }
}

#[tokio::test]
async fn three_shards_partition_the_corpus_by_hash_slot() {
    // Arrange
    let redis = TestRedis::start();
    let n = seed_corpus(&mut redis.conn().await).await;
    let shards: Vec<Shard> = (0..3).map(|i| Shard::new(i, 3).expect("valid shard")).collect();

    // Act
    let mut all = BTreeSet::new();
    let mut total = 0;
    for &shard in &shards {
        let app = shard_app(&redis, shard).await;
        let stats = app.stats().await;
        let ids = document_ids(&app).await;

        // Assert: each shard holds exactly its slots, and says which it is.
        assert_eq!(stats["shard"], json!({"index": shard.index(), "count": 3}));
        assert_eq!(stats["documents"].as_u64(), Some(ids.len() as u64));
        assert_eq!(stats["skipped"]["invalid_key"], 0, "other shards' keys are not skipped keys: {stats}");
        for id in &ids {
            assert!(shard.owns(format!("cache:embedding:{id}").as_bytes()), "shard {shard} holds {id}");
        }
        assert!(ids.len() > n / 5, "shard {shard} holds {} of {n}: slots are spread", ids.len());
        total += ids.len();
        all.extend(ids);
    }
    assert_eq!(total, n, "no document is on two shards");
    assert_eq!(all.len(), n, "every document is on one shard");
}

#[tokio::test]
async fn per_key_updates_reach_only_the_owning_shard() {
    // Arrange: two shards, and two new documents, one owned by each.
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let (s0, s1) = (Shard::new(0, 2).expect("valid"), Shard::new(1, 2).expect("valid"));
    let (a0, a1) = (shard_app(&redis, s0).await, shard_app(&redis, s1).await);
    let id_on = |shard: Shard| {
        (0..)
            .map(|i| format!("https://new.example.com/{i}"))
            .find(|id| shard.owns(format!("cache:embedding:{id}").as_bytes()))
    };
    let (id0, id1) = (id_on(s0).expect("some id hashes to shard 0"), id_on(s1).expect("some id hashes to shard 1"));
    let before = (a0.stats().await["documents"].clone(), a1.stats().await["documents"].clone());

    // Act
    let mut conn = redis.conn().await;
    for id in [&id0, &id1] {
        let value = json!({"url": id, "title": "new", "text": "new", "embedding": vec![0.5f32; 384]}).to_string();
        let () = redis::cmd("SET")
            .arg(format!("cache:embedding:{id}"))
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("SET");
    }

    // Assert: each shard gains its own document only (within 5 s).
    let mut seen = (false, false);
    for _ in 0..500 {
        seen = (
            a0.get(&format!("/v1/documents/{id0}")).await.status() == 200,
            a1.get(&format!("/v1/documents/{id1}")).await.status() == 200,
        );
        if seen == (true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(seen, (true, true), "each shard mirrors the key it owns");
    assert_eq!(a0.get(&format!("/v1/documents/{id1}")).await.status(), 404);
    assert_eq!(a1.get(&format!("/v1/documents/{id0}")).await.status(), 404);
    let after = (a0.stats().await["documents"].clone(), a1.stats().await["documents"].clone());
    assert_eq!(after.0.as_u64(), before.0.as_u64().map(|n| n + 1));
    assert_eq!(after.1.as_u64(), before.1.as_u64().map(|n| n + 1));
}
