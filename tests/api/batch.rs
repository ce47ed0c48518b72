use serde_json::{json, Value};

use crate::helpers::{
    assert_int8_pass_used, assert_problem, corpus_app, ground_truth, seed_corpus, spawn_app, spawn_app_with,
    spawn_variant, test_settings, variants, TestApp, TestRedis,
};

async fn post_batch(app: &TestApp, body: &Value) -> reqwest::Response {
    app.http.post(app.url("/v1/search/batch")).json(body).send().await.expect("request sent")
}

/// `(url, score)` pairs of one results list.
fn pairs(results: &Value) -> Vec<(String, f64)> {
    results
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| (r["url"].as_str().expect("url").to_owned(), r["score"].as_f64().expect("score")))
        .collect()
}

/// Each query's top-10 `(url, score)` from its own `/v1/search`, in order.
async fn answered_alone(app: &TestApp, queries: &[crate::helpers::GroundTruth]) -> Vec<Vec<(String, f64)>> {
    let mut out = Vec::with_capacity(queries.len());
    for q in queries {
        let body: Value = app
            .post_search(&json!({"vector": q.embedding, "k": 10, "with_text": false}))
            .await
            .json()
            .await
            .expect("JSON");
        out.push(pairs(&body["results"]));
    }
    out
}

fn side_by_side(single: &[(String, f64)], batch: &[(String, f64)]) -> String {
    let mut out = String::from("rank | single (url, score) | batch (url, score)\n");
    for i in 0..single.len().max(batch.len()) {
        let s = single.get(i).map_or("-".to_owned(), |(u, x)| format!("{u} {x:.7}"));
        let b = batch.get(i).map_or("-".to_owned(), |(u, x)| format!("{u} {x:.7}"));
        out += &format!("{:>4} | {s} | {b}\n", i + 1);
    }
    out
}

#[tokio::test]
async fn batch_results_equal_single_query_results_for_all_30_ground_truth_queries() {
    for variant in variants() {
        // Arrange
        let (_redis, app) = corpus_app(variant).await;
        let queries = ground_truth();
        let singles = answered_alone(&app, &queries).await;
        let batch: Vec<Value> =
            queries.iter().map(|q| json!({"vector": q.embedding, "k": 10, "with_text": false})).collect();

        // Act
        let res = post_batch(&app, &json!({ "queries": batch })).await;

        // Assert: same urls, same scores (same kernel, same per-row arithmetic), and the ground truth.
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("JSON");
        assert_eq!(body["index_version"], 1);
        assert!(body["took_us"].as_u64().is_some());
        let results = body["results"].as_array().expect("results");
        assert_eq!(results.len(), queries.len());
        for ((q, single), got) in queries.iter().zip(&singles).zip(results) {
            let got = pairs(got);
            assert_eq!(&got, single, "{variant:?} query {:?}\n{}", q.query, side_by_side(single, &got));
            assert_eq!(got[0].0, q.top10[0].url, "{variant:?} query {:?}: best hit is the ground truth's", q.query);
            assert!(got.iter().all(|(_, s)| s.is_finite()));
        }
        assert_int8_pass_used(&app, variant).await;
    }
}

#[tokio::test]
async fn batch_keeps_request_order_and_each_query_s_own_k_min_score_and_with_text() {
    for variant in variants() {
        // Arrange: queries in reverse order, each with its own k, one with a score floor.
        let (_redis, app) = corpus_app(variant).await;
        let gt = ground_truth();
        let cut = (gt[0].top10[1].score + gt[0].top10[2].score) / 2.0;
        let batch = json!({"queries": [
            {"vector": gt[2].embedding, "k": 1, "with_text": false},
            {"vector": gt[1].embedding, "k": 5, "with_text": true},
            {"vector": gt[0].embedding, "k": 10, "min_score": cut, "with_text": false},
            {"vector": gt[2].embedding},
        ]});

        // Act
        let body: Value = post_batch(&app, &batch).await.json().await.expect("JSON");

        // Assert
        let results = body["results"].as_array().expect("results");
        let urls = |i: usize| pairs(&results[i]).into_iter().map(|(u, _)| u).collect::<Vec<_>>();
        let truth = |q: usize, k: usize| gt[q].top10[..k].iter().map(|e| e.url.clone()).collect::<Vec<_>>();
        assert_eq!(urls(0), truth(2, 1), "{variant:?}");
        assert_eq!(urls(1), truth(1, 5), "{variant:?}");
        assert_eq!(urls(2), truth(0, 2), "{variant:?}: min_score leaves exactly two");
        assert_eq!(urls(3), truth(2, 3), "{variant:?}: k defaults to 3 as in /v1/search");
        assert!(results[0][0].get("text").is_none());
        assert!(results[1][0]["text"].as_str().is_some_and(|t| !t.is_empty()), "with_text is per query");
        assert!(results[3][0]["text"].is_string(), "with_text defaults to true");
        assert_int8_pass_used(&app, variant).await;
    }
}

#[tokio::test]
async fn each_malformed_batch_gets_its_problem_code() {
    // Arrange: a cap of 2 queries.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    for (id, v) in [("a", "[1,0,0]"), ("b", "[0,1,0]")] {
        let () =
            redis::cmd("SET").arg(format!("cache:embedding:{id}")).arg(v).query_async(&mut conn).await.expect("set");
    }
    let mut settings = test_settings(&redis);
    settings.max_batch = 2;
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    let ok = json!({"vector": [1, 0, 0]});
    let cases: Vec<(Value, u16, &str)> = vec![
        (json!({"queries": []}), 422, "invalid_batch_size"),
        (json!({"queries": [ok, ok, ok]}), 422, "invalid_batch_size"),
        (json!({}), 422, "missing_field"),
        (json!({"queries": [ok], "k": 3}), 422, "unknown_field"),
        (json!({"queries": [{"vector": [1, 0, 0], "top_k": 3}]}), 422, "unknown_field"),
        (json!({"queries": [ok, {"vector": [1, 0]}]}), 422, "wrong_dimension"),
        (json!({"queries": [ok, {"vector": [0, 0, 0]}]}), 422, "zero_vector"),
        (json!({"queries": [{"vector": [1, 0, 0], "k": 0}]}), 422, "invalid_k"),
        (json!({"queries": [{"vector": [1, null, 0]}]}), 422, "null_element"),
        (json!({"queries": {"vector": [1, 0, 0]}}), 422, "invalid_type"),
    ];

    for (body, status, code) in cases {
        // Act
        let res = post_batch(&app, &body).await;

        // Assert
        let problem = assert_problem(res, status, code).await;
        eprintln!("{body} -> {problem}");
    }
    let within_cap = post_batch(&app, &json!({"queries": [ok, ok]})).await;
    assert_eq!(within_cap.status(), 200, "the cap itself is allowed");
}

#[tokio::test]
async fn batch_over_an_empty_index_returns_one_empty_list_per_query() {
    let redis = TestRedis::start();
    let app = spawn_app(&redis).await;

    let body: Value = post_batch(&app, &json!({"queries": [{"vector": [1, 0]}, {"vector": [1, 2, 3]}]}))
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(body["results"], json!([[], []]));
}

#[tokio::test]
async fn concurrent_single_searches_are_coalesced_without_changing_any_result() {
    for variant in variants() {
        // Arrange: the 30 ground-truth queries, each answered alone first.
        let (_redis, app) = corpus_app(variant).await;
        let queries = ground_truth();
        let alone = answered_alone(&app, &queries).await;

        // Act: all 30 at once, so they queue behind each other's scans and share batches.
        let bodies = futures::future::join_all(queries.iter().map(|q| async {
            let res = app.post_search(&json!({"vector": q.embedding, "k": 10, "with_text": false})).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.expect("JSON")
        }))
        .await;

        // Assert
        for ((q, want), body) in queries.iter().zip(&alone).zip(&bodies) {
            let got = pairs(&body["results"]);
            assert_eq!(&got, want, "{variant:?} query {:?}\n{}", q.query, side_by_side(want, &got));
        }
        assert_int8_pass_used(&app, variant).await;
    }
}

#[tokio::test]
async fn batch_items_take_ids_explain_short_lists_and_write_their_contexts() {
    // Arrange: three 3-d documents.
    let redis = TestRedis::start();
    let mut c = redis.conn().await;
    for (id, v) in [("a", "[1,0,0]"), ("b", "[0.9,0.1,0]"), ("c", "[0,0,1]")] {
        let () = redis::cmd("SET").arg(format!("cache:embedding:{id}")).arg(v).query_async(&mut c).await.expect("SET");
    }
    for variant in variants() {
        let app = spawn_variant(&redis, variant).await;
        let single_by_id: Value = app.post_search(&json!({"id": "a", "k": 2})).await.json().await.expect("JSON");

        // Act
        let res = post_batch(
            &app,
            &json!({"queries": [
                {"id": "a", "k": 2},
                {"vector": [0, 0, 1], "k": 5, "context_key": "batch-item-2"},
            ]}),
        )
        .await;

        // Assert
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("JSON");
        assert_eq!(
            pairs(&body["results"][0]),
            pairs(&single_by_id["results"]),
            "{variant:?}: an id item answers like /v1/search"
        );
        assert!(!pairs(&body["results"][0]).iter().any(|(u, _)| u == "a"), "the document itself is left out");
        assert_eq!(body["fewer_results_reasons"], json!([null, "index_smaller_than_k"]));
        assert_eq!(body["contexts"][1]["key"], "cache:context:batch-item-2");
        let mut stored: Option<String> = None;
        for _ in 0..500 {
            stored = redis::cmd("GET").arg("cache:context:batch-item-2").query_async(&mut c).await.expect("GET");
            if stored.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let stored: Value = serde_json::from_str(&stored.expect("context written")).expect("JSON");
        assert_eq!(stored["results"][0]["url"], "c", "{variant:?}");
        let () = redis::cmd("DEL").arg("cache:context:batch-item-2").query_async(&mut c).await.expect("DEL");
    }
}

#[tokio::test]
async fn an_unknown_id_in_a_batch_is_404() {
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let app = spawn_app(&redis).await;

    let res = post_batch(&app, &json!({"queries": [{"id": "https://nowhere.example/x"}]})).await;

    assert_problem(res, 404, "document_not_found").await;
}
