use std::collections::BTreeMap;

use semsearch_scan::ScanMode;
use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with, test_settings, TestRedis};

/// One sample of the Prometheus text format: name, labels, value.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) value: f64,
}

/// A strict reader of the text exposition format (the subset exporters emit):
/// `# HELP`/`# TYPE` comments, and `name{k="v",...} value` lines.
pub(crate) fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| format!("line {}: {why}: {line:?}", n + 1);
        if line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        if line.starts_with('#') {
            return Err(fail("unknown comment"));
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| fail("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| fail("value is not a number"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.strip_suffix('}').ok_or_else(|| fail("unclosed labels"))?),
            None => (series, ""),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            return Err(fail("bad metric name"));
        }
        let mut parsed = BTreeMap::new();
        for pair in labels.split("\",").filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once("=\"").ok_or_else(|| fail("bad label"))?;
            parsed.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
        }
        samples.push(Sample { name: name.to_owned(), labels: parsed, value });
    }
    Ok(samples)
}

#[tokio::test]
async fn metrics_expose_requests_latency_and_index_counters_in_prometheus_format() {
    // Arrange
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    for (id, v) in [("a", "[1,0]"), ("b", "[0,1]"), ("bad", "not json")] {
        let () =
            redis::cmd("SET").arg(format!("cache:embedding:{id}")).arg(v).query_async(&mut conn).await.expect("set");
    }
    let app = spawn_app(&redis).await;
    assert_eq!(app.post_search(&json!({"vector": [1, 0], "k": 1})).await.status(), 200);

    // Act
    let res = app.get("/metrics").await;

    // Assert
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().is_ok_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let text = res.text().await.expect("body");
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
    };
    let searches = find("http_requests_total", &[("route", "/v1/search"), ("status", "200"), ("method", "POST")]);
    assert!(searches.is_some_and(|s| s.value >= 1.0), "search requests counted by route and status:\n{text}");
    assert!(find("http_request_duration_seconds_bucket", &[("route", "/v1/search"), ("le", "+Inf")]).is_some());
    assert!(find("semsearch_search_duration_seconds_count", &[]).is_some_and(|s| s.value >= 1.0));
    for name in ["semsearch_documents", "semsearch_index_bytes", "semsearch_reloads_total", "semsearch_ready"] {
        assert!(find(name, &[]).is_some(), "{name} missing:\n{text}");
    }
    assert!(find("semsearch_skipped_keys", &[("reason", "invalid_json")]).is_some(), "{text}");
    assert!(find("semsearch_context_writes_total", &[("outcome", "dropped")]).is_some(), "{text}");
    assert!(find("semsearch_redis_errors_total", &[("source", "reload")]).is_some(), "{text}");
}

#[test]
fn the_exposition_parser_rejects_what_prometheus_would() {
    assert!(parse_exposition("up 1\nx{a=\"b\"} 2.5\n# TYPE x counter\n").is_ok());
    assert!(parse_exposition("up one").is_err());
    assert!(parse_exposition("x{a=\"b\" 1").is_err());
    assert!(parse_exposition("bad-name 1").is_err());
}

#[tokio::test]
async fn issue_15_every_series_has_help_zero_counters_exist_and_the_build_is_named() {
    // Arrange
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    let () = redis::cmd("SET").arg("cache:embedding:a").arg("[1,0]").query_async(&mut conn).await.expect("set");
    let app = spawn_app(&redis).await;
    let _ = app.get("/v1/documents/a").await;

    // Act
    let res = app.get("/metrics").await;

    // Assert
    assert_eq!(
        res.headers().get("server").and_then(|v| v.to_str().ok()),
        Some(format!("semsearch/{}", semsearch::build_info::VERSION).as_str())
    );
    let text = res.text().await.expect("body");
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    for sample in &samples {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| sample.name.strip_suffix(s))
            .filter(|f| text.contains(&format!("# TYPE {f} histogram")))
            .unwrap_or(&sample.name);
        assert!(text.contains(&format!("# HELP {family} ")), "no HELP for {family}:\n{text}");
    }
    let find = |name: &str| samples.iter().find(|s| s.name == name);
    assert_eq!(find("semsearch_searches_rejected_total").map(|s| s.value), Some(0.0), "present at 0");
    assert!(samples.iter().any(|s| s.name == "semsearch_query_embeddings_total"), "present without an embedder");
    let build = find("semsearch_build_info").expect("build info");
    assert_eq!(build.labels.get("version").map(String::as_str), Some(semsearch::build_info::VERSION));
    assert!(build.labels.contains_key("git_sha") && build.labels.contains_key("kernel"), "{build:?}");
    assert!(find("process_resident_memory_bytes").is_some_and(|s| s.value > 0.0), "{text}");
    assert!(find("process_open_fds").is_some_and(|s| s.value > 0.0), "{text}");
    assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"), "{text}");
    let feed: Vec<_> = samples.iter().filter(|s| s.name == "semsearch_change_feed_state").collect();
    assert_eq!(feed.len(), 4, "one series per state:\n{text}");
    assert_eq!(feed.iter().map(|s| s.value).sum::<f64>(), 1.0, "exactly one state at 1:\n{text}");
    assert!(find("semsearch_last_reload_timestamp_seconds").is_some_and(|s| s.value > 1e9), "{text}");
    assert!(
        samples.iter().any(|s| s.labels.get("route").map(String::as_str) == Some("/v1/documents/{id}")),
        "the route label as the spec writes it:\n{text}"
    );
    let smallest = samples
        .iter()
        .filter(|s| {
            s.name == "semsearch_search_duration_seconds_bucket" || s.name == "http_request_duration_seconds_bucket"
        })
        .filter_map(|s| s.labels.get("le")?.parse::<f64>().ok())
        .fold(f64::INFINITY, f64::min);
    assert!(smallest <= 0.000_025, "smallest bucket {smallest}");
}

#[tokio::test]
async fn int8_scans_are_counted_in_stats_and_metrics_with_fallbacks_by_reason() {
    // Arrange: 40 documents scanned through a forced int8 copy.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    for i in 0..40 {
        let v: Vec<f32> = (0..8).map(|j| ((i * 7 + j * 3) % 11) as f32 - 5.0).collect();
        let () = redis::cmd("SET")
            .arg(format!("cache:embedding:doc{i:02}"))
            .arg(serde_json::to_string(&v).expect("JSON"))
            .query_async(&mut conn)
            .await
            .expect("set");
    }
    let mut settings = test_settings(&redis);
    settings.scan = ScanMode::Int8;
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    let query = json!([1, 2, 3, 4, -1, -2, -3, 0.5]);

    // Act: k = 2 goes through the int8 pass; k = 10 > 40 / 8 falls back to the f32 scan.
    for k in [2, 10] {
        assert_eq!(app.post_search(&json!({"vector": query, "k": k})).await.status(), 200);
    }
    let stats = app.stats().await;
    let text = app.get("/metrics").await.text().await.expect("body");

    // Assert
    let scan = &stats["scan"];
    assert_eq!((scan["mode"].as_str(), scan["active"].as_str()), (Some("int8"), Some("int8")), "{stats}");
    assert_eq!((scan["int8_queries"].as_u64(), scan["f32_queries"].as_u64()), (Some(2), Some(0)), "{stats}");
    assert_eq!(scan["f32_fallbacks"]["large_k"], 1, "{stats}");
    assert_eq!(scan["f32_fallbacks"]["query_out_of_range"], 0, "{stats}");
    assert!(scan["rescored_rows"].as_u64().is_some_and(|r| r > 40), "the fallback read all 40 rows: {stats}");
    assert!(stats["int8_bytes"].as_u64().is_some_and(|b| b > 0), "{stats}");
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v)))
    };
    // The recorder is shared by every app of this test binary: counts are at least ours.
    assert!(find("semsearch_rescored_rows_count", &[]).is_some_and(|s| s.value >= 1.0), "{text}");
    assert!(find("semsearch_rescored_rows_bucket", &[("le", "20")]).is_some(), "{text}");
    assert!(find("semsearch_scan_queries_total", &[("path", "int8")]).is_some_and(|s| s.value >= 1.0), "{text}");
    assert!(find("semsearch_scan_queries_total", &[("path", "fallback_large_k")]).is_some_and(|s| s.value >= 1.0));
    let build = samples.iter().find(|s| s.name == "semsearch_build_info" && s.value == 1.0);
    let build = build.expect("a build_info series at 1");
    assert!(matches!(build.labels.get("scan").map(String::as_str), Some("int8" | "f32")), "{build:?}");
    assert!(build.labels.contains_key("int8_kernel"), "{build:?}");
}
