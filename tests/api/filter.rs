//! Filtered search (issue 14): the dev corpus stored with synthetic
//! attributes, every query kind with filters of selectivity 50%, 5%, 0.1%
//! and 0 matches, checked against a brute-force filter-then-rank oracle
//! over the corpus file; and every 422 a filter can get.

use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, ground_truth, shared_data, spawn_variant, variants, TestApp, TestRedis};

/// One corpus document as the oracle sees it.
pub struct Doc {
    pub url: String,
    /// Unit length, in f64.
    pub unit: Vec<f64>,
    pub attributes: Value,
}

/// The synthetic attributes of the `i`-th corpus line: `half` (50%),
/// `bucket` (a number, 5% per value), `rare` (true for 0.1%), `locale`
/// (a third each).
fn synthetic(i: usize) -> Value {
    json!({
        "half": if i.is_multiple_of(2) { "a" } else { "b" },
        "bucket": i % 20,
        "rare": i % 1000 == 7,
        "locale": (["en", "fr", "de"][i % 3]),
    })
}

/// The corpus with its synthetic attributes, in file order.
pub fn corpus() -> Vec<Doc> {
    let text = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect("read corpus-dev.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let doc: Value = serde_json::from_str(line).expect("corpus line is JSON");
            let v: Vec<f64> =
                doc["embedding"].as_array().expect("embedding").iter().map(|x| x.as_f64().expect("number")).collect();
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            Doc {
                url: doc["url"].as_str().expect("url").to_owned(),
                unit: v.iter().map(|x| x / norm).collect(),
                attributes: synthetic(i),
            }
        })
        .collect()
}

/// Stores the corpus as the chatbot would, each value carrying its
/// synthetic attributes as extra fields. Returns the number of documents.
pub async fn seed_with_attributes(conn: &mut MultiplexedConnection) -> usize {
    let text = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect("read corpus-dev.jsonl");
    let mut pipe = redis::pipe();
    let mut n = 0;
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let mut doc: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let url = doc["url"].as_str().expect("url").to_owned();
        for (name, value) in synthetic(i).as_object().expect("object") {
            doc[name] = value.clone();
        }
        pipe.cmd("SET").arg(format!("cache:embedding:{url}")).arg(doc.to_string()).ignore();
        n += 1;
    }
    let () = pipe.query_async(conn).await.expect("seed corpus with attributes");
    n
}

/// Whether `doc` passes `filter` (the request's JSON), by the documented rule.
fn accepts(doc: &Doc, filter: &Value) -> bool {
    let prefix_ok = filter["url_prefix"].as_str().is_none_or(|p| doc.url.starts_with(p));
    let same = |a: &Value, b: &Value| match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    };
    let fields_ok = filter["fields"].as_object().is_none_or(|fields| {
        fields.iter().all(|(name, wanted)| {
            let have = &doc.attributes[name];
            match wanted {
                Value::Array(any) => any.iter().any(|w| same(have, w)),
                one => same(have, one),
            }
        })
    });
    prefix_ok && fields_ok
}

/// Brute force: every document passing `filter` (but `exclude`), scored in
/// f64, sorted by descending score then ascending url (the id), first k.
pub fn oracle(corpus: &[Doc], query: &[f64], filter: &Value, k: usize, exclude: Option<&str>) -> Vec<(String, f64)> {
    let norm = query.iter().map(|x| x * x).sum::<f64>().sqrt();
    let mut all: Vec<(String, f64)> = corpus
        .iter()
        .filter(|d| accepts(d, filter) && Some(d.url.as_str()) != exclude)
        .map(|d| (d.url.clone(), d.unit.iter().zip(query).map(|(a, b)| a * b / norm).sum()))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Asserts one result list equals the oracle's: same ids in order, scores within 1e-5.
pub fn assert_same(got: &Value, want: &[(String, f64)], what: &str) {
    let got: Vec<(String, f64)> = got
        .as_array()
        .unwrap_or_else(|| panic!("{what}: results array in {got}"))
        .iter()
        .map(|r| (r["id"].as_str().expect("id").to_owned(), r["score"].as_f64().expect("score")))
        .collect();
    let ids = |v: &[(String, f64)]| v.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&got), ids(want), "{what}\n  got  {got:?}\n  want {want:?}");
    for ((_, g), (_, w)) in got.iter().zip(want) {
        assert!((g - w).abs() <= 1e-5, "{what}: score {g} vs {w}");
    }
}

/// Filters of every selectivity the issue names, plus lists, numbers and url prefixes.
pub fn filters() -> Vec<(&'static str, Value)> {
    vec![
        ("50%", json!({"fields": {"half": "a"}})),
        ("5%", json!({"fields": {"bucket": 3}})),
        ("0.1%", json!({"fields": {"rare": true}})),
        ("0 matches", json!({"fields": {"half": "c"}})),
        ("any-of list AND another field", json!({"fields": {"locale": ["fr", "de"], "bucket": [1, 2.0, 17]}})),
        ("url prefix", json!({"url_prefix": "https://packages.debian.org/bookworm/g"})),
        (
            "url prefix AND field",
            json!({"url_prefix": "https://packages.debian.org/bookworm/", "fields": {"half": "b"}}),
        ),
        ("empty filter", json!({})),
    ]
}

async fn filtered_app(variant: crate::helpers::Variant) -> (TestRedis, TestApp) {
    let redis = TestRedis::start();
    seed_with_attributes(&mut redis.conn().await).await;
    let app = spawn_variant(&redis, variant).await;
    (redis, app)
}

fn reason(body: &Value, n: usize, k: usize, filter: &Value, corpus: &[Doc], what: &str) {
    let matching = corpus.iter().filter(|d| accepts(d, filter)).count();
    let want = if n == k {
        Value::Null
    } else if matching < corpus.len() {
        json!("filter")
    } else {
        json!("index_smaller_than_k")
    };
    let got = body.get("fewer_results_reason").cloned().unwrap_or(Value::Null);
    assert_eq!(got, want, "{what}: fewer_results_reason");
}

#[tokio::test]
async fn filtered_vector_and_id_searches_equal_the_filter_then_rank_oracle() {
    let corpus = corpus();
    let queries = ground_truth();
    for variant in variants() {
        // Arrange
        let (_redis, app) = filtered_app(variant).await;

        for (name, filter) in filters() {
            for (qi, q) in queries.iter().enumerate().step_by(3) {
                let k = [1, 10, 50][qi % 3];
                let query: Vec<f64> = q.embedding.iter().map(|&x| f64::from(x)).collect();

                // Act
                let res = app
                    .post_search(&json!({"vector": q.embedding, "k": k, "with_text": false, "filter": filter}))
                    .await;

                // Assert
                assert_eq!(res.status(), 200, "{variant:?} {name}");
                let body: Value = res.json().await.expect("JSON");
                let want = oracle(&corpus, &query, &filter, k, None);
                let what = format!("{variant:?} vector query {qi}, k {k}, filter {name}");
                assert_same(&body["results"], &want, &what);
                reason(&body, want.len(), k, &filter, &corpus, &what);
            }

            for doc in corpus.iter().step_by(401) {
                let res = app.post_search(&json!({"id": doc.url, "k": 5, "with_text": false, "filter": filter})).await;
                assert_eq!(res.status(), 200, "{variant:?} {name}");
                let body: Value = res.json().await.expect("JSON");
                let want = oracle(&corpus, &doc.unit, &filter, 5, Some(&doc.url));
                assert_same(&body["results"], &want, &format!("{variant:?} id query {}, filter {name}", doc.url));
            }
        }
    }
}

#[tokio::test]
async fn filtered_batch_items_equal_the_oracle_mixed_with_unfiltered_ones() {
    // Arrange
    let corpus = corpus();
    let queries = ground_truth();
    let (_redis, app) = filtered_app(variants()[0]).await;
    let mut items = Vec::new();
    let mut wants = Vec::new();
    for (i, q) in queries.iter().enumerate() {
        let filters = filters();
        let (_, filter) = &filters[i % filters.len()];
        let query: Vec<f64> = q.embedding.iter().map(|&x| f64::from(x)).collect();
        let filter = if i % 5 == 4 { Value::Null } else { filter.clone() };
        items.push(json!({"vector": q.embedding, "k": 10, "with_text": false, "filter": filter}));
        wants.push(oracle(&corpus, &query, &filter, 10, None));
    }
    let doc = &corpus[123];
    items.push(json!({"id": doc.url, "k": 7, "with_text": false, "filter": {"fields": {"half": "b"}}}));
    wants.push(oracle(&corpus, &doc.unit, &json!({"fields": {"half": "b"}}), 7, Some(&doc.url)));

    // Act
    let res = app.http.post(app.url("/v1/search/batch")).json(&json!({"queries": items})).send().await.expect("sent");

    // Assert
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("JSON");
    for (i, want) in wants.iter().enumerate() {
        assert_same(&body["results"][i], want, &format!("batch item {i}"));
    }
    let reasons = body["fewer_results_reasons"].as_array().expect("reasons");
    assert_eq!(reasons[3 % filters().len()], json!("filter"), "the 0-match item says why: {reasons:?}");
}

#[tokio::test]
async fn a_filter_is_part_of_the_context_key_in_canonical_form() {
    // Arrange
    let (_redis, app) = filtered_app(variants()[0]).await;
    let q = &ground_truth()[0].embedding;
    let key = |body: Value| body["context"]["key"].as_str().map(str::to_owned);
    let search = |filter: Value| {
        let app = &app;
        async move {
            let res = app.post_search(&json!({"vector": q, "k": 3, "filter": filter})).await;
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.expect("JSON")
        }
    };

    // Act
    let unfiltered = key(search(Value::Null).await);
    let empty = key(search(json!({})).await);
    let a = key(search(json!({"fields": {"locale": ["fr", "en"], "bucket": 1}})).await);
    let same_written_otherwise = key(search(json!({"fields": {"bucket": 1.0, "locale": ["en", "fr", "en"]}})).await);
    let other = key(search(json!({"fields": {"locale": "en"}})).await);

    // Assert
    assert!(unfiltered.is_some(), "context writes are on in tests");
    assert_eq!(empty, unfiltered, "an empty filter is no filter");
    assert_eq!(a, same_written_otherwise, "canonical form: order, duplicates and 1 vs 1.0 do not matter");
    assert_ne!(a, unfiltered);
    assert_ne!(a, other);
}

#[tokio::test]
async fn stats_count_attribute_names_and_what_the_bounds_dropped() {
    // Arrange
    let redis = TestRedis::start();
    let long = "v".repeat(257);
    let value = format!(r#"{{"embedding":[1,0],"locale":"en","n":1,"too_long":"{long}","nested":{{"a":1}}}}"#);
    let () =
        redis::cmd("SET").arg("cache:embedding:a").arg(value).query_async(&mut redis.conn().await).await.expect("SET");

    // Act
    let app = spawn_variant(&redis, variants()[0]).await;
    let stats = app.stats().await;

    // Assert
    assert_eq!(stats["attribute_fields"], 2, "locale and n; the nested object is no attribute: {stats}");
    assert_eq!(stats["attributes_dropped"], 1, "the 257-byte value");
}

#[tokio::test]
async fn bad_filters_get_422_with_a_specific_code() {
    // Arrange
    let (_redis, app) = filtered_app(variants()[0]).await;
    let q = &ground_truth()[0].embedding;
    let cases = [
        (json!({"fields": {"product": "x"}}), "unknown_filter_field"),
        (json!({"fields": {"half": true}}), "filter_type_mismatch"),
        (json!({"fields": {"bucket": ["3", 4]}}), "filter_type_mismatch"),
        (json!({"fields": {"half": []}}), "invalid_filter"),
        (json!({"fields": {"half": {"a": 1}}}), "invalid_filter"),
        (json!({"fields": {"half": null}}), "invalid_filter"),
        (json!({"fields": {"half": [["a"]]}}), "invalid_filter"),
        (json!({"url_prefix": "x".repeat(3000)}), "invalid_filter"),
        (
            json!({"fields": (0..17).map(|i| (format!("f{i}"), json!(1))).collect::<serde_json::Map<_, _>>()}),
            "invalid_filter",
        ),
        (json!({"url_prefx": "https://"}), "unknown_field"),
        (json!({"fields": ["half"]}), "invalid_type"),
        (json!("half"), "invalid_type"),
    ];

    for (filter, code) in cases {
        // Act
        let res = app.post_search(&json!({"vector": q, "filter": filter})).await;

        // Assert
        let body = assert_problem(res, 422, code).await;
        assert!(body["detail"].as_str().is_some_and(|d| d.len() < 400), "detail stays short: {body}");
    }

    let batch = json!({"queries": [{"vector": q}, {"vector": q, "filter": {"fields": {"nope": 1}}}]});
    let res = app.http.post(app.url("/v1/search/batch")).json(&batch).send().await.expect("sent");
    let body = assert_problem(res, 422, "unknown_filter_field").await;
    assert_eq!(body["errors"][0]["pointer"], "/queries/1");
}

#[tokio::test]
async fn per_key_updates_move_documents_between_posting_lists() {
    // Arrange
    let (redis, app) = filtered_app(variants()[0]).await;
    let corpus = corpus();
    let doc = &corpus[7];
    let q: Vec<f32> = doc.unit.iter().map(|&x| x as f32).collect();
    let rare = json!({"fields": {"rare": true}});
    let before =
        app.post_search(&json!({"vector": q, "k": 5, "filter": rare})).await.json::<Value>().await.expect("JSON");
    assert_eq!(before["results"][0]["id"], doc.url.as_str(), "doc 7 is rare and its own nearest");
    for _ in 0..1500 {
        if app.stats().await["refresh"]["change_feed"] == "tracking" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Act: the chatbot rewrites the value without the attribute.
    let line = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect("corpus");
    let mut value: Value = serde_json::from_str(line.lines().nth(7).expect("line 7")).expect("JSON");
    value["rare"] = json!(false);
    let () = redis::cmd("SET")
        .arg(format!("cache:embedding:{}", doc.url))
        .arg(value.to_string())
        .query_async(&mut redis.conn().await)
        .await
        .expect("SET");

    // Assert: within the refresh debounce, the update lands.
    let mut last = Value::Null;
    for _ in 0..1500 {
        last =
            app.post_search(&json!({"vector": q, "k": 5, "filter": rare})).await.json::<Value>().await.expect("JSON");
        if last["results"].as_array().is_some_and(|r| r.iter().all(|r| r["id"] != doc.url.as_str())) {
            // Doc 7 no longer matches, so the rest are the oracle without it.
            let want = oracle(&corpus, &doc.unit, &rare, 5, Some(&doc.url));
            assert_same(&last["results"], &want, "after the update");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the update never reached the posting lists: {last}");
}
