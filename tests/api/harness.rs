//! `semsearch bench` against a spawned app: report structure, zero errors,
//! outputs written, the synthetic fill, and a keyed server measured in an
//! open loop with texts. Short and bounded; no timing asserts (the open loop
//! sends a fixed number of requests, whatever the machine's speed).

use std::path::Path;

use clap::Parser;
use semsearch::{
    cli::{Cli, Command},
    tools::bench::{self as harness, load::Load, request::Failure, BenchSettings, HarnessError},
};

use crate::helpers::{seed_corpus, shared_data, spawn_app, spawn_app_with, test_settings, TestApp, TestRedis};

fn bench_settings(args: &[&str]) -> BenchSettings {
    let cli =
        Cli::try_parse_from(["semsearch", "bench", "--no-progress"].iter().chain(args)).expect("valid bench flags");
    match cli.command {
        Some(Command::Bench(args)) => BenchSettings::from_args(&args).expect("valid bench settings"),
        other => panic!("parsed as {other:?}"),
    }
}

fn assert_levels_are_clean(report: &harness::report::BenchReport, levels: &[Load]) {
    let got: Vec<Load> = report.levels.iter().map(|l| l.load).collect();
    assert_eq!(got, levels);
    for level in &report.levels {
        assert_eq!((level.errors, level.ok), (0, level.requests), "{level:?}");
        assert!(level.requests > 0 && level.qps > 0.0, "{level:?}");
        let l = level.latency.expect("latencies of successful requests");
        assert!(
            l.min_ms <= l.p50_ms
                && l.p50_ms <= l.p95_ms
                && l.p95_ms <= l.p99_ms
                && l.p99_ms <= l.p999_ms
                && l.p999_ms <= l.max_ms,
            "{l:?}"
        );
        assert!(level.mean_response_bytes.is_some_and(|b| b > 0.0), "{level:?}");
    }
}

/// A server over the shared corpus that wants `Authorization: Bearer search-key`.
async fn keyed_app(redis: &TestRedis) -> TestApp {
    seed_corpus(&mut redis.conn().await).await;
    let mut settings = test_settings(redis);
    settings.access.api_keys = vec!["search-key".parse().expect("infallible")];
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    app
}

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
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
    assert_levels_are_clean(&report, &[Load::Closed { concurrency: 1 }, Load::Closed { concurrency: 4 }]);
    assert!(report.levels.iter().all(|l| l.requests <= 200), "bounded by --max-requests");
    assert_eq!((report.server.documents, report.server.dimension, report.query_count), (2000, 384, 30));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid JSON");
    assert_eq!(written["levels"].as_array().map(Vec::len), Some(2));
    assert!(written["levels"][0]["latency"]["p99_ms"].is_number(), "{written}");
    let chart = std::fs::read_to_string(&svg).expect("svg written");
    assert!(chart.contains("<svg") && chart.contains("p99") && chart.contains("QPS"), "an SVG with a legend");
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
    assert_levels_are_clean(&report, &[Load::Closed { concurrency: 2 }]);
}

#[tokio::test]
async fn bench_measures_a_keyed_server_with_texts_in_an_open_loop() {
    // Arrange
    let redis = TestRedis::start();
    let app = keyed_app(&redis).await;
    let queries = shared_data().join("queries-dev.jsonl");
    let out = tempfile::tempdir().expect("temp dir");
    let json = out.path().join("report.json");
    let url = app.url("");
    let open_loop = |extra: &[&str]| {
        let mut args = vec![
            "--url",
            &url,
            "--api-key",
            "search-key",
            "--rate",
            "100",
            "--duration",
            "500ms",
            "--warmup",
            "0s",
            "--k",
            "20",
            "--queries",
            utf8(&queries),
        ];
        args.extend_from_slice(extra);
        bench_settings(&args)
    };
    let with_text = open_loop(&["--with-text", "--json", utf8(&json)]);
    let without_text = open_loop(&[]);

    // Act
    let report = harness::run(&with_text).await.expect("bench runs with the key");
    harness::write_outputs(&with_text, &report).expect("outputs written");
    let baseline = harness::run(&without_text).await.expect("bench runs with the key");

    // Assert: 100/s for 0.5 s is exactly 50 requests, all answered.
    let rate = Load::Open { rate_qps: 100.0, max_in_flight: 1024 };
    assert_levels_are_clean(&report, &[rate]);
    assert_levels_are_clean(&baseline, &[rate]);
    let (texts, bare) = (&report.levels[0], &baseline.levels[0]);
    assert_eq!((texts.requests, bare.requests), (50, 50));
    assert!(texts.max_send_lag_ms.is_some(), "open-loop levels report their send lag");
    let bytes = |l: &harness::load::LevelReport| l.mean_response_bytes.expect("successes");
    assert!(bytes(texts) > 2.0 * bytes(bare), "texts make answers larger: {} vs {}", bytes(texts), bytes(bare));
    assert_eq!((report.with_text, report.headers.as_slice()), (true, &["authorization".to_owned()][..]));
    let written = std::fs::read_to_string(&json).expect("json written");
    assert!(!written.contains("search-key"), "the key never reaches the report");
    assert!(report.table().contains("rate/s") && report.table().contains("p99.9 ms"));
}

#[tokio::test]
async fn bench_without_the_key_stops_at_once_with_the_401() {
    // Arrange
    let redis = TestRedis::start();
    let app = keyed_app(&redis).await;
    let settings = bench_settings(&["--url", &app.url(""), "--rate", "10", "--duration", "100ms"]);

    // Act
    let got = harness::run(&settings).await;

    // Assert
    assert!(matches!(got, Err(HarnessError::Status { status: 401, .. })), "{got:?}");
}

#[tokio::test]
async fn errors_are_counted_by_problem_code_and_requests_count_every_send() {
    // Arrange: two queries, the second all zeros (422 `zero_vector`); the
    // open loop sends them in turn, 40 requests in all.
    let redis = TestRedis::start();
    let app = keyed_app(&redis).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let queries = dir.path().join("queries.jsonl");
    let first = std::fs::read_to_string(shared_data().join("queries-dev.jsonl")).expect("queries-dev.jsonl");
    let first = first.lines().next().expect("a query line");
    let zeros = serde_json::json!({ "embedding": vec![0.0f32; 384] });
    std::fs::write(&queries, format!("{first}\n{zeros}\n")).expect("write queries");
    let settings = bench_settings(&[
        "--url",
        &app.url(""),
        "--header",
        "Authorization: Bearer search-key",
        "--header",
        "X-Bench-Run: errors",
        "--rate",
        "100",
        "--duration",
        "400ms",
        "--warmup",
        "0s",
        "--queries",
        utf8(&queries),
    ]);

    // Act
    let report = harness::run(&settings).await.expect("bench runs");

    // Assert
    let level = &report.levels[0];
    assert_eq!((level.requests, level.ok, level.errors), (40, 20, 20), "{level:?}");
    let kinds: Vec<(&Failure, u64)> = level.errors_by_kind.iter().map(|e| (&e.failure, e.count)).collect();
    assert_eq!(kinds, [(&Failure::Problem { status: 422, code: "zero_vector".to_owned() }, 20)]);
    assert!(report.table().contains("zero_vector (422) x 20"), "{}", report.table());
    assert_eq!(report.headers, ["authorization", "x-bench-run"]);
}
