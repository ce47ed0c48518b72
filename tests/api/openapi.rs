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
