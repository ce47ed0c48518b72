//! `semsearch bench` against a spawned app: report structure, zero errors,
//! outputs written, and the synthetic fill. Short and bounded; no timing asserts.

use clap::Parser;
use semsearch::{
    cli::{Cli, Command},
    tools::bench::{self as harness, BenchSettings},
};

use crate::helpers::{seed_corpus, shared_data, spawn_app, TestRedis};

fn bench_settings(args: &[&str]) -> BenchSettings {
    let cli = Cli::try_parse_from(["semsearch", "bench"].iter().chain(args)).expect("valid bench flags");
    match cli.command {
        Some(Command::Bench(args)) => BenchSettings::from_args(&args).expect("valid bench settings"),
        other => panic!("parsed as {other:?}"),
    }
}

fn assert_levels_are_clean(report: &harness::report::BenchReport, levels: &[usize]) {
    let got: Vec<usize> = report.levels.iter().map(|l| l.concurrency).collect();
    assert_eq!(got, levels);
    for level in &report.levels {
        assert_eq!(level.errors, 0, "{level:?}");
        assert!(level.requests > 0 && level.qps > 0.0, "{level:?}");
        let l = level.latency.expect("latencies of successful requests");
        assert!(l.p50_ms <= l.p95_ms && l.p95_ms <= l.p99_ms && l.p99_ms <= l.max_ms, "{l:?}");
    }
}

#[tokio::test]
async fn bench_with_a_query_file_reports_every_level_without_errors_and_writes_json_and_svg() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let app = spawn_app(&redis).await;
    let out = tempfile::tempdir().expect("temp dir");
    let (json, svg) = (out.path().join("report.json"), out.path().join("latency.svg"));
    let queries = shared_data().join("queries-dev.jsonl");
    let settings = bench_settings(&[
        "--url",
        &app.url(""),
        "--duration",
        "300ms",
        "--warmup",
        "50ms",
        "--concurrency",
        "1,4",
        "--max-requests",
        "200",
        "--queries",
        queries.to_str().expect("utf-8 path"),
        "--json",
        json.to_str().expect("utf-8 path"),
        "--chart",
        svg.to_str().expect("utf-8 path"),
    ]);

    // Act
    let report = harness::run(&settings).await.expect("bench runs");
    harness::write_outputs(&settings, &report).expect("outputs written");

    // Assert
    assert_levels_are_clean(&report, &[1, 4]);
    assert!(report.levels.iter().all(|l| l.requests <= 200), "bounded by --max-requests");
    assert_eq!((report.server.documents, report.server.dimension, report.query_count), (2000, 384, 30));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid JSON");
    assert_eq!(written["levels"].as_array().map(Vec::len), Some(2));
    assert!(written["levels"][0]["latency"]["p99_ms"].is_number(), "{written}");
    let chart = std::fs::read_to_string(&svg).expect("svg written");
    assert!(chart.contains("<svg") && chart.contains("p99"), "an SVG with a legend");
    assert!(report.table().contains("concurrency"));
}

#[tokio::test]
async fn synthetic_fill_writes_n_random_documents_and_waits_for_the_server_to_load_them() {
    // Arrange: a server on an empty Redis.
    let redis = TestRedis::start();
    let app = spawn_app(&redis).await;
    let settings = bench_settings(&[
        "--url",
        &app.url("/"),
        "--duration",
        "200ms",
        "--warmup",
        "0s",
        "--concurrency",
        "2",
        "--max-requests",
        "100",
        "--synthetic",
        "300",
        "--dim",
        "8",
        "--format",
        "blob",
        "--redis",
        &redis.url(),
        "--ready-timeout",
        "60s",
    ]);

    // Act
    let report = harness::run(&settings).await.expect("bench runs");

    // Assert
    assert_eq!((report.server.documents, report.server.dimension), (300, 8));
    assert_levels_are_clean(&report, &[2]);
}
