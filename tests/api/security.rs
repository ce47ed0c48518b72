use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with, test_settings, TestApp, TestRedis};

/// An app over three 3-dimensional documents, with the given settings tweak.
async fn small_app(redis: &TestRedis, tweak: impl FnOnce(&mut semsearch::config::Settings)) -> TestApp {
    let mut conn = redis.conn().await;
    for (id, v) in [("a", "[1,0,0]"), ("b", "[0,1,0]"), ("c", "[0,0,1]")] {
        let () =
            redis::cmd("SET").arg(format!("cache:embedding:{id}")).arg(v).query_async(&mut conn).await.expect("set");
    }
    let mut settings = test_settings(redis);
    tweak(&mut settings);
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    app
}

fn keyed(settings: &mut semsearch::config::Settings) {
    settings.access.api_keys = vec!["s3arch".parse().expect("infallible")];
    settings.access.admin_keys = vec!["adm1n".parse().expect("infallible")];
}

async fn send(app: &TestApp, method: &str, path: &str, key: Option<&str>, body: Option<Value>) -> reqwest::Response {
    let mut req = app.http.request(method.parse().expect("method"), app.url(path));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request sent")
}

#[tokio::test]
async fn search_routes_need_a_key_once_keys_are_configured() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, keyed).await;
    let query = json!({"vector": [1, 0, 0], "k": 1});

    // Act
    let without = send(&app, "POST", "/v1/search", None, Some(query.clone())).await;
    let wrong = send(&app, "GET", "/v1/stats", Some("nope"), None).await;
    let with_search_key = send(&app, "POST", "/v1/search", Some("s3arch"), Some(query.clone())).await;
    let with_admin_key = send(&app, "GET", "/v1/stats", Some("adm1n"), None).await;

    // Assert
    assert_eq!(without.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_problem(without, 401, "unauthorized").await;
    assert_problem(wrong, 401, "unauthorized").await;
    assert_eq!(with_search_key.status(), 200);
    assert_eq!(with_admin_key.status(), 200, "an admin key may use search routes");
}

#[tokio::test]
async fn admin_answers_401_without_a_key_403_for_a_search_key_and_200_for_an_admin_key() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, keyed).await;

    // Act
    let without = send(&app, "POST", "/v1/admin/reload", None, None).await;
    let search_key = send(&app, "POST", "/v1/admin/reload", Some("s3arch"), None).await;
    let admin_key = send(&app, "POST", "/v1/admin/reload", Some("adm1n"), None).await;

    // Assert
    assert_eq!(without.headers().get("www-authenticate").and_then(|v| v.to_str().ok()), Some("Bearer"));
    assert_problem(without, 401, "unauthorized").await;
    assert_problem(search_key, 403, "forbidden").await;
    assert_eq!(admin_key.status(), 200);
}

#[tokio::test]
async fn open_routes_stay_open_when_keys_are_configured() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, keyed).await;

    for path in ["/healthz", "/readyz", "/openapi.yaml", "/docs"] {
        // Act
        let res = app.get(path).await;

        // Assert
        assert_eq!(res.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn keyless_admin_is_open_on_loopback() {
    // Arrange: test apps bind 127.0.0.1 and configure no admin key.
    let redis = TestRedis::start();
    let app = small_app(&redis, |_| {}).await;

    // Act
    let res = send(&app, "POST", "/v1/admin/reload", None, None).await;

    // Assert
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn issue_16_admin_stays_closed_on_loopback_when_only_search_keys_are_configured() {
    // Arrange: search closed by a key, no admin key, loopback bind.
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.access.api_keys = vec!["k1".parse().expect("infallible")]).await;

    // Act
    let without = send(&app, "POST", "/v1/admin/reload", None, None).await;
    let junk = send(&app, "POST", "/v1/admin/reload", Some("junk"), None).await;
    let search_key = send(&app, "POST", "/v1/admin/reload", Some("k1"), None).await;

    // Assert
    assert_problem(without, 403, "forbidden").await;
    assert_problem(junk, 403, "forbidden").await;
    assert_problem(search_key, 403, "forbidden").await;
}

#[tokio::test]
async fn a_search_over_the_concurrency_limit_is_refused_with_retry_after() {
    // Arrange: one slot, held by the test, so the next search finds none.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    let () = redis::cmd("SET").arg("cache:embedding:a").arg("[1,0]").query_async(&mut conn).await.expect("set");
    let mut settings = test_settings(&redis);
    settings.max_concurrent_searches = 1;
    let app = semsearch::app::App::build(settings).await.expect("app builds");
    let slots = app.search_slots();
    let app = crate::helpers::run(app);
    app.wait_ready().await;
    let held = slots.try_acquire().expect("the only slot is free");

    // Act
    let refused = app.post_search(&json!({"vector": [1, 0]})).await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics body");
    drop(held);
    let accepted = app.post_search(&json!({"vector": [1, 0]})).await;

    // Assert
    assert_eq!(refused.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let problem = assert_problem(refused, 503, "overloaded").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains('1')), "{problem}");
    assert_eq!(accepted.status(), 200);
    assert!(metrics.contains("semsearch_searches_rejected_total"), "{metrics}");
}

#[tokio::test]
async fn k_above_the_configured_maximum_is_422() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.max_k = 2).await;

    // Act
    let res = app.post_search(&json!({"vector": [1, 0, 0], "k": 3})).await;

    // Assert
    let problem = assert_problem(res, 422, "invalid_k").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("between 1 and 2")), "{problem}");
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.max_body_bytes = 64).await;

    // Act
    let res = app.post_raw("/v1/search", "application/json", vec![b' '; 1000]).await;

    // Assert
    let problem = assert_problem(res, 413, "payload_too_large").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("64 bytes")), "{problem}");
}

#[tokio::test]
async fn cors_is_off_by_default_and_allows_only_configured_origins() {
    // Arrange
    let redis = TestRedis::start();
    let closed = small_app(&redis, |_| {}).await;
    let open = small_app(&redis, |s| s.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |app: &TestApp, origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/v1/search"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,traceparent,tracestate")
            .send()
    };

    // Act
    let off = preflight(&closed, "https://app.example").await.expect("sent");
    let allowed = preflight(&open, "https://app.example").await.expect("sent");
    let other = preflight(&open, "https://evil.example").await.expect("sent");

    // Assert
    assert!(off.headers().get("access-control-allow-origin").is_none());
    assert_eq!(
        allowed.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://app.example")
    );
    let allowed_headers = allowed.headers().get("access-control-allow-headers").and_then(|v| v.to_str().ok());
    for name in ["authorization", "content-type", "traceparent", "tracestate"] {
        assert!(allowed_headers.is_some_and(|h| h.contains(name)), "{name} not in {allowed_headers:?}");
    }
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |_| {}).await;

    // Act
    let echoed = app.http.get(app.url("/healthz")).header("x-request-id", "req-42").send().await.expect("sent");
    let generated = app.get("/v1/nothing-here").await;

    // Assert
    assert_eq!(echoed.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-42"));
    let id = generated.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(id.len(), 36, "a generated UUID: {id:?}");
}

#[tokio::test]
async fn issue_22_request_ids_longer_than_128_or_not_visible_ascii_are_replaced_by_ours() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |_| {}).await;
    let longest = "r".repeat(128);
    let cases = [("r".repeat(129), false), ("a b".to_owned(), false), ("a\tb".to_owned(), false), (longest, true)];

    for (sent, kept) in cases {
        // Act
        let res = app.http.get(app.url("/healthz")).header("x-request-id", &sent).send().await.expect("sent");

        // Assert
        let got = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        if kept {
            assert_eq!(got, sent, "a usable id is echoed");
        } else {
            assert_ne!(got, sent, "an unusable id is not echoed");
            assert_eq!(got.len(), 36, "our UUID instead of {sent:?}: {got:?}");
        }
    }
    let huge = "x".repeat(60_000);
    let res = app.http.get(app.url("/healthz")).header("x-request-id", &huge).send().await.expect("sent");
    assert_eq!(res.headers().get("x-request-id").map(|v| v.len()), Some(36), "a 60 KB id is not echoed");
}

#[tokio::test]
async fn issue_16_a_batch_asking_for_more_results_than_the_budget_is_422() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.budget.max_results = 2_500).await;
    let query = json!({"vector": [1, 0, 0], "k": 1000, "with_text": true});

    // Act
    let over = send(&app, "POST", "/v1/search/batch", None, Some(json!({"queries": [query, query, query]}))).await;
    let within = send(&app, "POST", "/v1/search/batch", None, Some(json!({"queries": [query, query]}))).await;

    // Assert
    let problem = assert_problem(over, 422, "too_many_results").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("3000") && d.contains("2500")), "{problem}");
    assert_eq!(within.status(), 200);
}

#[tokio::test]
async fn issue_16_results_whose_texts_exceed_the_response_budget_are_422() {
    // Arrange: documents with texts, and a 20-byte text budget.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    for (id, v) in [("t1", "[1,0,0]"), ("t2", "[0.9,0.1,0]")] {
        let value = format!(r#"{{"title":"T","url":"{id}","text":"0123456789abcdef","embedding":{v}}}"#);
        let () = redis::cmd("SET")
            .arg(format!("cache:embedding:{id}"))
            .arg(value)
            .query_async(&mut conn)
            .await
            .expect("set");
    }
    let mut settings = test_settings(&redis);
    settings.budget.max_text_bytes = 20;
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;

    // Act
    let with_text = send(&app, "POST", "/v1/search", None, Some(json!({"vector": [1, 0, 0], "k": 2}))).await;
    let without =
        send(&app, "POST", "/v1/search", None, Some(json!({"vector": [1, 0, 0], "k": 2, "with_text": false}))).await;
    let one = send(&app, "POST", "/v1/search", None, Some(json!({"vector": [1, 0, 0], "k": 1}))).await;

    // Assert
    assert_problem(with_text, 422, "response_too_large").await;
    assert_eq!(without.status(), 200);
    assert_eq!(one.status(), 200, "17 bytes of title and text fit");
}
