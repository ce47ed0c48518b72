use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestRedis};

async fn set(conn: &mut MultiplexedConnection, key: impl redis::ToRedisArgs, value: impl redis::ToRedisArgs) {
    let () = redis::cmd("SET").arg(key).arg(value).query_async(conn).await.expect("SET");
}

#[tokio::test]
async fn each_bad_value_is_skipped_counted_and_the_rest_load() {
    // Arrange: three good 4-d documents, one per accepted encoding, and one bad key per reason.
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    set(&mut c, "cache:embedding:good-object", r#"{"title":"T","url":"good-object","text":"x","embedding":[1,2,3,4]}"#)
        .await;
    set(&mut c, "cache:embedding:good-array", "[4,3,2,1]").await;
    let blob: Vec<u8> = [1.0f32, 0.0, 0.0, 0.5].iter().flat_map(|x| x.to_le_bytes()).collect();
    set(&mut c, "cache:embedding:good-blob", blob).await;
    let () =
        redis::cmd("HSET").arg("cache:embedding:a-hash").arg("f").arg("v").query_async(&mut c).await.expect("HSET");
    set(&mut c, "cache:embedding:truncated", r#"{"title":"T","embedding":[1,2,"#).await;
    set(&mut c, "cache:embedding:nan", r#"{"embedding":[1,NaN,3,4]}"#).await;
    set(&mut c, "cache:embedding:zeros", "[0,0,0,0]").await;
    set(&mut c, "cache:embedding:three-d", "[1,2,3]").await;
    set(&mut c, b"cache:embedding:\xff\xfe".to_vec(), "[1,2,3,4]").await;

    // Act
    let app = spawn_app(&redis).await;
    let stats = app.stats().await;

    // Assert
    assert_eq!(stats["documents"], 3, "{stats}");
    assert_eq!(stats["dimension"], 4);
    assert_eq!(
        stats["skipped"],
        json!({"wrong_type": 1, "invalid_json": 1, "non_finite": 1, "zero_vector": 1,
               "wrong_dimension": 1, "vanished": 0, "invalid_key": 1}),
        "{stats}"
    );
    assert_eq!(stats["keys_scanned"], 9);
    let body: Value = app.post_search(&json!({"vector": [1, 0, 0, 0.5], "k": 1})).await.json().await.expect("JSON");
    assert_eq!(body["results"][0]["id"], "good-blob");
    assert!((body["results"][0]["score"].as_f64().expect("score") - 1.0).abs() < 1e-6);
}

#[tokio::test]
async fn the_majority_dimension_wins_unless_one_is_configured() {
    // Arrange: the first key (in id order) has 2 dimensions, the majority has 3.
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    set(&mut c, "cache:embedding:0-odd", "[1,2]").await;
    for i in 1..=3 {
        set(&mut c, format!("cache:embedding:{i}"), "[1,2,3]").await;
    }

    // Act
    let by_majority = spawn_app(&redis).await.stats().await;
    let mut settings = crate::helpers::test_settings(&redis);
    settings.dim = Some(2);
    let configured = crate::helpers::spawn_app_with(settings).await;
    configured.wait_ready().await;
    let configured = configured.stats().await;

    // Assert
    assert_eq!((by_majority["dimension"].clone(), by_majority["documents"].clone()), (json!(3), json!(3)));
    assert_eq!(by_majority["skipped"]["wrong_dimension"], 1);
    assert_eq!((configured["dimension"].clone(), configured["documents"].clone()), (json!(2), json!(1)));
    assert_eq!(configured["skipped"]["wrong_dimension"], 3);
}

#[tokio::test]
async fn keys_outside_the_pattern_are_never_read_or_written() {
    // Arrange
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    set(&mut c, "chat:history:42", "private conversation").await;
    set(&mut c, "cache:embeddingX", "[1,2]").await;
    set(&mut c, "cache:embedding:doc", "[1,2]").await;
    let monitor = redis.monitor();

    // Act
    let app = spawn_app(&redis).await;
    let _ = app.post_search(&json!({"vector": [1, 2]})).await;
    let seen = monitor.stop();

    // Assert
    assert!(seen.iter().any(|l| l.contains("\"MGET\"")), "MONITOR saw the load: {seen:?}");
    assert!(!seen.iter().any(|l| l.contains("\"KEYS\"")), "SCAN is used, never KEYS");
    let touching: Vec<&String> =
        seen.iter().filter(|l| l.contains("chat:history") || l.contains("cache:embeddingX")).collect();
    assert!(touching.is_empty(), "commands touched foreign keys: {touching:?}");
    let kept: String = redis::cmd("GET").arg("chat:history:42").query_async(&mut c).await.expect("GET");
    assert_eq!(kept, "private conversation");
}

#[tokio::test]
async fn loads_in_several_chunks_with_ids_in_order() {
    // Arrange: more keys than one MGET chunk and one SCAN page.
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    let mut pipe = redis::pipe();
    for i in 0..2500 {
        let v = if i == 2499 { "[0.6, 0.8]" } else { "[1, 0]" };
        pipe.cmd("SET").arg(format!("cache:embedding:doc-{i:05}")).arg(v).ignore();
    }
    let () = pipe.query_async(&mut c).await.expect("seed");
    let mut settings = crate::helpers::test_settings(&redis);
    settings.load.chunk_keys = 7;
    settings.load.scan_count = 100;

    // Act
    let app = crate::helpers::spawn_app_with(settings).await;
    app.wait_ready().await;
    let body: Value = app.post_search(&json!({"vector": [0, 1], "k": 2})).await.json().await.expect("JSON");

    // Assert
    assert_eq!(app.stats().await["documents"], 2500);
    assert_eq!(body["results"][0]["id"], "doc-02499", "the best row, loaded in the last chunk");
    assert_eq!(body["results"][1]["id"], "doc-00000", "2498 rows tie at 0: the smallest id wins");
    let index = app.index.current().expect("ready");
    let ids: Vec<&str> = (0..index.len()).map(|r| &*index.doc(r).id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "rows are in ascending id order");
}

#[tokio::test]
async fn a_key_deleted_between_scan_and_mget_counts_as_vanished() {
    // Arrange: the id list names a document whose key no longer exists, as
    // when it is deleted after SCAN returned it.
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    set(&mut c, "cache:embedding:here", "[1,2]").await;
    let settings = crate::helpers::test_settings(&redis);
    let client = semsearch::store::link::RedisClient::node(&settings.redis).expect("client");
    let conn = semsearch::store::loader::connect(&client, &settings.load).await.expect("connect");
    let ids: Vec<Box<str>> = ["here", "gone", ""].into_iter().map(Box::from).collect();

    // Act
    let loaded =
        semsearch::store::loader::load_ids(&conn, &settings.keys, &settings.load, None, &ids).await.expect("load");

    // Assert
    use semsearch::store::decode::SkipReason;
    assert_eq!(loaded.index.len(), 1);
    assert_eq!(loaded.report.skipped.get(SkipReason::Vanished), 1);
    assert_eq!(loaded.report.skipped.get(SkipReason::InvalidKey), 1, "the empty id names no document");
}

/// issue 16: raw little-endian f32 blobs of random normal vectors all load,
/// whatever their bytes look like. About 1% of random blobs start with `[`
/// or `{`; every 10th one here is made to start like JSON (`[1`, `[-`,
/// `{"`) by setting the low mantissa bytes of its first float, as the
/// lost values of the issue's repro did.
#[tokio::test]
async fn issue_16_random_blob_vectors_all_load_with_none_skipped() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    // Arrange
    const N: usize = 4_000;
    const DIM: usize = 384;
    let seed = 11;
    println!("seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    let mut looks_like_json = 0;
    for chunk in 0..N / 500 {
        let mut pipe = redis::pipe();
        for i in chunk * 500..(chunk + 1) * 500 {
            // Box-Muller normal samples, then unit length, as the issue's repro.
            let mut v: Vec<f32> = (0..DIM)
                .map(|_| {
                    let (u1, u2): (f64, f64) = (rng.random_range(f64::EPSILON..1.0), rng.random());
                    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            let mut blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            if i % 10 == 0 {
                let starts: [&[u8; 2]; 3] = [b"[1", b"[-", b"{\""];
                blob[..2].copy_from_slice(starts[(i / 10) % 3]);
            }
            looks_like_json += usize::from(matches!(blob[0], b'[' | b'{'));
            pipe.cmd("SET").arg(format!("cache:embedding:https://example.org/doc/{i:08}")).arg(blob).ignore();
        }
        let () = pipe.query_async(&mut c).await.expect("SET pipeline");
    }

    // Act
    let app = spawn_app(&redis).await;
    let stats = app.stats().await;

    // Assert
    println!("{looks_like_json} blobs start with '[' or '{{'");
    assert_eq!(stats["documents"], N, "{stats}");
    assert_eq!(stats["dimension"], DIM);
    assert!(stats["skipped"].as_object().expect("object").values().all(|n| n == 0), "{stats}");
}

#[tokio::test]
async fn issue_16_the_bare_prefix_key_is_an_invalid_key() {
    // Arrange
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    set(&mut c, "cache:embedding:", "[1,0]").await;
    set(&mut c, "cache:embedding:a", "[0,1]").await;

    // Act
    let stats = spawn_app(&redis).await.stats().await;

    // Assert
    assert_eq!(stats["documents"], 1, "{stats}");
    assert_eq!(stats["skipped"]["invalid_key"], 1, "{stats}");
}
