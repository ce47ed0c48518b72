//! Documents by id: `GET /v1/documents/{*id}` and "more like this" search with `{"id": …}`.

use serde_json::{json, Value};

use crate::helpers::{
    assert_int8_pass_used, assert_problem, corpus_app, ground_truth, seed_corpus, spawn_app, variants, TestApp,
    TestRedis,
};

/// Real corpus ids (article URLs, slashes included): the top hit of a few ground-truth queries.
fn corpus_ids() -> Vec<String> {
    ground_truth().iter().take(5).map(|q| q.top10[0].url.clone()).collect()
}

fn hits(body: &Value) -> Vec<(String, f64)> {
    body["results"]
        .as_array()
        .expect("results array")
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["score"].as_f64().expect("score")))
        .collect()
}

async fn stored_vector(app: &TestApp, id: &str) -> Vec<f64> {
    let res = app.get(&format!("/v1/documents/{id}?with_embedding=true")).await;
    assert_eq!(res.status(), 200, "GET document {id}");
    let body: Value = res.json().await.expect("JSON");
    body["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("float")).collect()
}

#[tokio::test]
async fn search_by_id_equals_a_vector_search_with_the_stored_vector_minus_the_document() {
    for variant in variants() {
        // Arrange
        let (_redis, app) = corpus_app(variant).await;

        for id in corpus_ids() {
            let vector = stored_vector(&app, &id).await;

            // Act
            let by_id: Value =
                app.post_search(&json!({"id": id, "k": 3, "with_text": false})).await.json().await.expect("JSON");
            let by_vector: Value = app
                .post_search(&json!({"vector": vector, "k": 4, "with_text": false}))
                .await
                .json()
                .await
                .expect("JSON");

            // Assert
            let got = hits(&by_id);
            let mut expected = hits(&by_vector);
            expected.retain(|(u, _)| *u != id);
            expected.truncate(3);
            let table = format!("{variant:?} id {id}\nexpected {expected:?}\ngot      {got:?}");
            assert_eq!(got.len(), 3, "{table}");
            assert!(got.iter().all(|(u, _)| *u != id), "the document itself is excluded: {table}");
            for ((eu, es), (gu, gs)) in expected.iter().zip(&got) {
                assert_eq!(eu, gu, "{table}");
                assert!((es - gs).abs() <= 1e-5, "{table}");
            }
        }
        assert_int8_pass_used(&app, variant).await;
    }
}

#[tokio::test]
async fn search_by_unknown_id_is_404_and_id_with_vector_is_ambiguous() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let app = spawn_app(&redis).await;
    let id = &corpus_ids()[0];

    // Act
    let unknown = app.post_search(&json!({"id": "https://packages.debian.org/bookworm/no-such-package"})).await;
    let ambiguous = app.post_search(&json!({"id": id, "vector": [1.0, 0.0]})).await;
    let with_text = app.post_search(&json!({"id": id, "text": "q"})).await;

    // Assert
    assert_problem(unknown, 404, "document_not_found").await;
    assert_problem(ambiguous, 422, "ambiguous_query").await;
    assert_problem(with_text, 422, "ambiguous_query").await;
}

#[tokio::test]
async fn document_is_returned_by_its_url_id_with_the_embedding_only_on_request() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let app = spawn_app(&redis).await;
    let id = &corpus_ids()[0];
    assert!(id.starts_with("https://") && id.matches('/').count() >= 4, "a URL id with slashes: {id}");

    // Act
    let plain: Value = app.get(&format!("/v1/documents/{id}")).await.json().await.expect("JSON");
    let with_embedding = stored_vector(&app, id).await;
    let encoded = app.get(&format!("/v1/documents/{}", id.replace(':', "%3A").replace('/', "%2F"))).await;

    // Assert
    assert_eq!(plain["id"], id.as_str());
    assert_eq!(plain["url"], id.as_str());
    assert!(plain["title"].as_str().is_some_and(|t| !t.is_empty()), "{plain}");
    assert!(plain["text"].as_str().is_some_and(|t| !t.is_empty()), "{plain}");
    assert!(plain["expires_at"].as_str().is_some_and(|t| t.ends_with('Z')), "seeded with EX 86400: {plain}");
    assert!(plain.get("embedding").is_none(), "no embedding unless asked: {plain}");
    assert_eq!(with_embedding.len(), 384);
    let norm = with_embedding.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "the stored row is unit length: {norm}");
    assert_eq!(encoded.status(), 200, "a percent-encoded id works too");
    let encoded: Value = encoded.json().await.expect("JSON");
    assert_eq!(encoded["id"], id.as_str());
}

#[tokio::test]
async fn unknown_document_is_404_problem_json() {
    // Arrange
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let app = spawn_app(&redis).await;

    // Act
    let res = app.get("/v1/documents/https://packages.debian.org/bookworm/no-such-package").await;

    // Assert
    let body = assert_problem(res, 404, "document_not_found").await;
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("no-such-package")), "{body}");
}
