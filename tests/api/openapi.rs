use std::path::Path;

use semsearch::api::openapi;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, test_settings, TestRedis};

fn checked_in_spec() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn openapi_yaml_is_what_the_code_generates() {
    // Arrange
    let generated = openapi::yaml();

    // Act
    let checked_in = checked_in_spec();

    // Assert
    if checked_in != generated {
        let first_difference =
            checked_in.lines().zip(generated.lines()).enumerate().find(|(_, (a, b))| a != b).map_or_else(
                || "(one is a prefix of the other)".to_owned(),
                |(n, (a, b))| format!("line {}:\n  file: {a}\n  code: {b}", n + 1),
            );
        panic!(
            "openapi.yaml is out of date with the code. Regenerate it with\n\n    {}\n\nfirst difference at {first_difference}",
            openapi::REGENERATE
        );
    }
}

#[tokio::test]
async fn served_spec_is_the_checked_in_file_and_docs_need_no_cdn() {
    // Arrange
    let redis = TestRedis::start();
    let app = spawn_app(&redis).await;

    // Act
    let spec = app.get("/openapi.yaml").await;
    let docs = app.get("/docs").await;
    let script = app.get("/docs/redoc.standalone.js").await;

    // Assert
    assert_eq!(spec.status(), 200);
    assert_eq!(spec.headers()["content-type"], "application/yaml");
    assert_eq!(spec.text().await.expect("spec body"), checked_in_spec());
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.expect("docs body");
    assert!(html.contains(r#"src="docs/redoc.standalone.js""#) && !html.contains("http"), "no external assets: {html}");
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await.expect("script").len() > 100_000, "the vendored Redoc bundle is served");
}

/// Every operation that declares a security scheme answers 401 without a
/// key, and every one that declares none answers without one: so a route
/// registered in the wrong group, or annotated wrongly, fails here.
#[tokio::test]
async fn declared_security_matches_what_each_route_enforces() {
    // Arrange
    let redis = TestRedis::start();
    let mut settings = test_settings(&redis);
    settings.access.api_keys = vec!["search-key".parse().expect("infallible")];
    settings.access.admin_keys = vec!["admin-key".parse().expect("infallible")];
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");

    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let secured = op.get("security").and_then(Value::as_array).is_some_and(|s| !s.is_empty());
            let url = app.url(&path.replace("{", "").replace("}", ""));

            // Act
            let res = app
                .http
                .request(method.to_uppercase().parse().expect("an HTTP method"), url)
                .json(&json!({}))
                .send()
                .await
                .expect("request sent");

            // Assert
            if secured {
                assert_eq!(res.status(), 401, "{method} {path} declares security but did not ask for a key");
            } else {
                assert_ne!(res.status(), 401, "{method} {path} declares no security but asked for a key");
                assert_ne!(res.status(), 403, "{method} {path} declares no security but refused");
            }
        }
    }
}

/// What generated clients (openapi-typescript, openapi-python-client) and
/// `@redocly/cli lint` need from every operation (issue 14): a one-line
/// summary, and a security declaration even on open routes (`[]`).
#[test]
fn every_operation_has_a_summary_and_declares_its_security() {
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");

    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let summary = op["summary"].as_str().unwrap_or_default();
            assert!(
                !summary.is_empty() && !summary.contains('\n') && !summary.starts_with('#'),
                "{method} {path}: {summary:?}"
            );
            assert!(op["security"].is_array(), "{method} {path} declares no security");
        }
    }
}

#[test]
fn batch_max_items_is_the_default_max_batch() {
    // Arrange
    let redis = TestRedis::start();
    let settings = test_settings(&redis);

    // Act
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");

    // Assert
    let queries = &spec["components"]["schemas"]["BatchRequest"]["properties"]["queries"];
    assert_eq!(queries["minItems"], 1);
    assert_eq!(
        queries["maxItems"], settings.max_batch,
        "change the schema's max_items with SEMSEARCH_MAX_BATCH's default"
    );
}

#[test]
fn the_stated_limits_of_k_and_of_embed_texts_are_the_defaults() {
    // Arrange
    let redis = TestRedis::start();
    let settings = test_settings(&redis);

    // Act
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");

    // Assert: what the server enforces by default, so generated data is accepted.
    let schemas = &spec["components"]["schemas"];
    for variant in ["VectorQuery", "TextQuery", "IdQuery"] {
        let k = &schemas[variant]["properties"]["k"];
        assert_eq!(k["maximum"], settings.max_k, "{variant}: change k's maximum with SEMSEARCH_MAX_K's default");
    }
    let texts = &schemas["EmbedRequest"]["properties"]["texts"];
    assert_eq!(texts["maxItems"], settings.max_batch, "embed texts follow SEMSEARCH_MAX_BATCH's default");
    assert_eq!(texts["items"]["maxLength"], 64 * 1024 / 4);
    assert_eq!(schemas["VectorQuery"]["properties"]["vector"]["maxItems"], 65_536);
    assert_eq!(schemas["TextQuery"]["properties"]["text"]["maxLength"], 8 * 1024 / 4);
}

/// The request schema is a oneOf whose variants accept exactly the bodies the
/// server reads as that kind of query: checked with the server's own parser
/// on each variant's example, and by the variants' required fields.
#[test]
fn each_query_variant_requires_its_own_field_and_allows_the_others_only_as_null() {
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");
    let schemas = &spec["components"]["schemas"];
    let variants: Vec<&str> = schemas["SearchRequest"]["oneOf"]
        .as_array()
        .expect("SearchRequest is a oneOf")
        .iter()
        .filter_map(|v| v["$ref"].as_str()?.rsplit('/').next())
        .collect();
    assert_eq!(variants, ["VectorQuery", "TextQuery", "IdQuery"]);

    for (name, field) in variants.iter().zip(["vector", "text", "id"]) {
        let schema = &schemas[*name];
        assert_eq!(schema["required"], json!([field]), "{name}");
        assert_eq!(schema["additionalProperties"], false, "{name}");
        for other in ["vector", "text", "id"].into_iter().filter(|o| *o != field) {
            assert_eq!(schema["properties"][other]["type"], "null", "{name}.{other}");
        }
        for example in schema["examples"].as_array().expect("examples") {
            let bytes = serde_json::to_vec(example).expect("example serializes");
            let parsed: Result<semsearch::query::dto::SearchRequest, _> = semsearch::api::extract::parse(&bytes);
            assert!(parsed.is_ok(), "{name} example {example} is a valid body");
        }
    }
}

/// schemathesis parses an `application/yaml` body before checking it
/// against the schema: the declared schema must hold for the parsed
/// document (an object) as for the text generated clients hand over.
#[test]
fn the_spec_route_declares_a_schema_true_of_its_text_and_of_the_parsed_document() {
    // Arrange
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");

    // Act
    let schema = &spec["paths"]["/openapi.yaml"]["get"]["responses"]["200"]["content"]["application/yaml"]["schema"];
    let parsed: Value = yaml_serde::from_str(&openapi::yaml()).expect("the spec is YAML");

    // Assert
    assert_eq!(schema["type"], json!(["string", "object"]), "{schema}");
    assert!(parsed.is_object(), "a YAML parser reads the document as an object");
}
