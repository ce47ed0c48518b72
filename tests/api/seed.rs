//! `semsearch seed`: the chatbot's format, pipelined, never overwriting unless told.

use std::process::{Command, Output};

use redis::AsyncCommands;

use crate::helpers::{shared_data, TestRedis};

const FIRST_URL: &str = "https://packages.debian.org/bookworm/gpick";

fn seed(redis: &TestRedis, file: &std::path::Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_semsearch"))
        .arg("seed")
        .arg(file)
        .arg("--no-progress")
        .args(extra)
        .env("REDIS_URL", redis.url())
        .output()
        .expect("run semsearch seed")
}

fn stdout(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

async fn all_keys(redis: &TestRedis) -> Vec<String> {
    let mut conn = redis.conn().await;
    let mut keys: Vec<String> = conn.keys("*").await.expect("KEYS on the private test Redis");
    keys.sort();
    keys
}

#[tokio::test]
async fn seed_writes_every_line_with_a_day_ttl_and_leaves_existing_keys_alone() {
    // Arrange
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    let key = format!("cache:embedding:{FIRST_URL}");
    let () = conn.set(&key, "written by the chatbot").await.expect("SET");

    // Act
    let out = seed(&redis, &shared_data().join("corpus-dev.jsonl"), &[]);

    // Assert
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("1999 written, 1 skipped (existing keys), 0 bad lines"), "{}", stdout(&out));
    let kept: String = conn.get(&key).await.expect("GET");
    assert_eq!(kept, "written by the chatbot");
    let keys = all_keys(&redis).await;
    assert_eq!(keys.len(), 2000);
    assert!(keys.iter().all(|k| k.starts_with("cache:embedding:https://")), "only embedding keys are written");
    let other = keys.iter().find(|k| **k != key).expect("a seeded key");
    let ttl: i64 = conn.ttl(other).await.expect("TTL");
    assert!((86_000..=86_400).contains(&ttl), "EX 86400 by default, got {ttl}");
}

#[tokio::test]
async fn overwrite_replaces_existing_keys_with_the_corpus_line() {
    // Arrange
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    let key = format!("cache:embedding:{FIRST_URL}");
    let () = conn.set(&key, "stale").await.expect("SET");
    let corpus = shared_data().join("corpus-dev.jsonl");
    let first_line = std::fs::read_to_string(&corpus).expect("corpus").lines().next().expect("a line").to_owned();

    // Act
    let out = seed(&redis, &corpus, &["--overwrite", "--ttl-secs", "60"]);

    // Assert
    assert!(out.status.success(), "{}", stdout(&out));
    assert!(stdout(&out).contains("2000 written, 0 skipped"), "{}", stdout(&out));
    let value: String = conn.get(&key).await.expect("GET");
    assert_eq!(value, first_line, "the value is the corpus line, byte for byte");
    let ttl: i64 = conn.ttl(&key).await.expect("TTL");
    assert!((1..=60).contains(&ttl), "--ttl-secs 60, got {ttl}");
}

#[tokio::test]
async fn gzip_corpus_is_read_and_a_second_run_skips_everything() {
    // Arrange
    let redis = TestRedis::start();
    let gz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/demo-corpus.jsonl.gz");

    // Act
    let first = seed(&redis, &gz, &[]);
    let second = seed(&redis, &gz, &[]);

    // Assert
    assert!(stdout(&first).contains("2000 written, 0 skipped"), "{}", stdout(&first));
    assert!(stdout(&second).contains("0 written, 2000 skipped"), "{}", stdout(&second));
    assert_eq!(all_keys(&redis).await.len(), 2000);
}

#[test]
fn missing_file_fails_with_its_path() {
    let redis = TestRedis::start();

    let out = seed(&redis, std::path::Path::new("/nonexistent/corpus.jsonl"), &[]);

    assert!(!out.status.success());
    assert!(stdout(&out).contains("/nonexistent/corpus.jsonl"), "{}", stdout(&out));
}
