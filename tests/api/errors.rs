use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp, TestRedis};

/// An app over three 3-dimensional documents.
async fn small_app(redis: &TestRedis) -> TestApp {
    let mut conn = redis.conn().await;
    for (id, v) in [("a", "[1,0,0]"), ("b", "[0,1,0]"), ("c", "[0,0,1]")] {
        let () =
            redis::cmd("SET").arg(format!("cache:embedding:{id}")).arg(v).query_async(&mut conn).await.expect("set");
    }
    spawn_app(redis).await
}

#[tokio::test]
async fn each_malformed_search_gets_its_problem_code() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis).await;
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"vector": [1, 0]}), 422, "wrong_dimension"),
        (json!({"vector": []}), 422, "empty_vector"),
        (json!({"vector": [1, null, 0]}), 422, "null_element"),
        (json!({"vector": [1, "a", 0]}), 422, "invalid_type"),
        (json!({"vector": [0, 0, 0]}), 422, "zero_vector"),
        (json!({"vector": [1e300, 0, 0]}), 422, "non_finite"),
        (json!({"vector": [1, 0, 0], "k": 0}), 422, "invalid_k"),
        (json!({"vector": [1, 0, 0], "k": -2}), 422, "invalid_k"),
        (json!({"vector": [1, 0, 0], "k": 1001}), 422, "invalid_k"),
        (json!({"vector": [1, 0, 0], "k": 2.5}), 422, "invalid_type"),
        (json!({"k": 3}), 422, "query_required"),
        (json!({"vector": null}), 422, "query_required"),
        (json!({"vector": [1, 0, 0], "text": "q"}), 422, "ambiguous_query"),
        (json!({"text": "q"}), 422, "text_search_disabled"),
        (json!({"vector": [1, 0, 0], "top_k": 3}), 422, "unknown_field"),
        (json!({"vector": "1,0,0"}), 422, "invalid_type"),
        (json!([1, 0, 0]), 422, "invalid_type"),
        (json!({"vector": [1, 0, 0], "min_score": "high"}), 422, "invalid_type"),
    ];

    for (body, status, code) in cases {
        // Act
        let res = app.post_search(&body).await;

        // Assert
        let problem = assert_problem(res, status, code).await;
        eprintln!("{body} -> {problem}");
    }
}

#[tokio::test]
async fn details_name_the_field_and_the_numbers() {
    let redis = TestRedis::start();
    let app = small_app(&redis).await;

    let wrong_dim = assert_problem(app.post_search(&json!({"vector": [1, 0]})).await, 422, "wrong_dimension").await;
    let bad_elem = assert_problem(app.post_search(&json!({"vector": [1, "x", 0]})).await, 422, "invalid_type").await;

    assert_eq!(wrong_dim["detail"], "vector has 2 elements but the index dimension is 3");
    assert!(bad_elem["detail"].as_str().is_some_and(|d| d.starts_with("vector[1]")), "{bad_elem}");
}

#[tokio::test]
async fn syntax_errors_are_400_invalid_json() {
    let redis = TestRedis::start();
    let app = small_app(&redis).await;

    for body in [
        &b"{\"vector\": [1, 0"[..],
        b"",
        b"not json",
        b"{\"vector\": [1,0,0]} trailing",
        // A shape error before the syntax error is still malformed (fuzz finding 2).
        b"{\"k\":\"a\",",
        b"{\"vector\":[1,0,0],\"k\":\"a\"",
    ] {
        let res = app.post_raw("/v1/search", "application/json", body.to_vec()).await;
        assert_problem(res, 400, "invalid_json").await;
    }
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let redis = TestRedis::start();
    let app = small_app(&redis).await;

    let res = app.post_raw("/v1/search", "text/plain", br#"{"vector":[1,0,0]}"#.to_vec()).await;

    assert_problem(res, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let redis = TestRedis::start();
    let app = small_app(&redis).await;
    let limit = crate::helpers::test_settings(&redis).max_body_bytes;
    let mut body = br#"{"vector":[1,0,0],"pad":""#.to_vec();
    body.extend(std::iter::repeat_n(b'x', limit + (1 << 20)));
    body.extend(br#""}"#);

    let res = app.post_raw("/v1/search", "application/json", body).await;

    let problem = assert_problem(res, 413, "payload_too_large").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains(&limit.to_string())), "{problem}");
}

#[tokio::test]
async fn unknown_route_and_wrong_method_are_problems() {
    let redis = TestRedis::start();
    let app = small_app(&redis).await;

    assert_problem(app.get("/v1/nope").await, 404, "not_found").await;
    assert_problem(app.get("/v1/search").await, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn issue_16_positional_arrays_are_not_requests() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis).await;

    // Act: serde's derive would read these as (vector, text, id, k, ...).
    let top = app.post_raw("/v1/search", "application/json", br#"[[1,0,0],null,null,2,null,false]"#.to_vec()).await;
    let item =
        app.post_raw("/v1/search/batch", "application/json", br#"{"queries":[[[1,0,0],null,null,2]]}"#.to_vec()).await;

    // Assert
    let problem = assert_problem(top, 422, "invalid_type").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("JSON object")), "{problem}");
    let problem = assert_problem(item, 422, "invalid_type").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("queries[0]")), "{problem}");
}

#[tokio::test]
async fn issue_16_out_of_range_numbers_are_one_error_class() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis).await;

    for huge in ["1e39", "1e309"] {
        // Act
        let body = format!(r#"{{"vector":[1,{huge},0]}}"#).into_bytes();
        let res = app.post_raw("/v1/search", "application/json", body).await;

        // Assert
        let problem = assert_problem(res, 422, "non_finite").await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains('1')), "{huge}: {problem}");

        // The same numbers as `min_score`: one 422 too, not a served empty answer.
        let body = format!(r#"{{"vector":[1,0,0],"min_score":{huge}}}"#).into_bytes();
        let res = app.post_raw("/v1/search", "application/json", body).await;
        let problem = assert_problem(res, 422, "invalid_type").await;
        assert!(problem["detail"].as_str().is_some_and(|d| d.contains("min_score")), "{huge}: {problem}");
    }
}

#[tokio::test]
async fn issue_16_a_huge_id_is_not_echoed_whole() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis).await;
    let id = "x".repeat(100_000);

    // Act
    let res = app.post_search(&serde_json::json!({"id": id})).await;

    // Assert
    let problem = assert_problem(res, 404, "document_not_found").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.len() < 400 && detail.contains('…'), "{} bytes", detail.len());
}

#[tokio::test]
async fn issue_16_a_batch_names_every_failing_item() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis).await;
    let body = serde_json::json!({"queries": [
        {"vector": [1, 0, 0]},
        {"vector": [1, 0]},
        {"vector": [1, 0, 0], "k": 0},
    ]});

    // Act
    let res = app.http.post(app.url("/v1/search/batch")).json(&body).send().await.expect("sent");

    // Assert
    let problem = assert_problem(res, 422, "wrong_dimension").await;
    let errors = problem["errors"].as_array().expect("errors array");
    let pointers: Vec<&str> = errors.iter().filter_map(|e| e["pointer"].as_str()).collect();
    assert_eq!(pointers, ["/queries/1", "/queries/2"], "{problem}");
    assert_eq!(errors[1]["code"], "invalid_k");
}
