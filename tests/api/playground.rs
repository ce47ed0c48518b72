//! The playground at `/`: served from the binary, with only local assets,
//! under a Content-Security-Policy it can live with, and open without a key.
//! What the page does in a browser is `tests/browser/` (`.ci/browser.sh`).

use semsearch::api::openapi;

use crate::helpers::{spawn_app, spawn_app_with, test_settings, TestApp, TestRedis};

/// Every value of attribute `name` in `html` (double-quoted, as our page writes them).
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!(" {name}=\"");
    html.match_indices(&marker)
        .filter_map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_owned())
        })
        .collect()
}

/// The URLs the page references (`src` and `href`), fragments left out.
fn references(html: &str) -> Vec<String> {
    let mut refs = attribute_values(html, "src");
    refs.extend(attribute_values(html, "href"));
    refs.retain(|r| !r.starts_with('#'));
    refs
}

async fn page(app: &TestApp) -> String {
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    res.text().await.expect("page body")
}

fn content_type_for(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => panic!("the page references {path}, of a kind this test does not know"),
    }
}

#[tokio::test]
async fn root_serves_the_playground_and_every_reference_is_local_and_answers() {
    // Arrange
    let redis = TestRedis::start();
    let app = spawn_app(&redis).await;

    // Act
    let res = app.get("/").await;
    let content_type = res.headers()["content-type"].clone();
    let html = res.text().await.expect("page body");

    // Assert
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(html.contains(r#"name="q""#), "the search box is named q:\n{html}");
    let refs = references(&html);
    assert!(refs.iter().any(|r| r.ends_with(".js")) && refs.iter().any(|r| r.ends_with(".css")), "{refs:?}");
    for r in &refs {
        assert!(!r.contains("//") && !r.starts_with('/'), "{r} is not a path relative to the page");
        let res = app.get(&format!("/{r}")).await;
        assert_eq!(res.status(), 200, "GET /{r}, referenced by the page");
        if r.starts_with("playground/") {
            assert_eq!(res.headers()["content-type"], content_type_for(r), "{r}");
            assert_eq!(res.headers()["x-content-type-options"], "nosniff", "{r}");
        }
    }
}

#[tokio::test]
async fn the_page_sends_a_strict_policy_and_needs_nothing_it_forbids() {
    // Arrange
    let redis = TestRedis::start();
    let app = spawn_app(&redis).await;

    // Act
    let res = app.get("/").await;
    let policy = res.headers()["content-security-policy"].to_str().expect("ascii header").to_owned();
    let html = res.text().await.expect("page body");

    // Assert
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'"] {
        assert!(policy.contains(directive), "{directive} missing from {policy}");
    }
    for loose in ["unsafe-inline", "unsafe-eval", "http", "*", "data:"] {
        assert!(!policy.contains(loose), "{loose} in {policy}");
    }
    // What the policy would block: inline scripts, style attributes, inline handlers.
    assert_eq!(html.matches("<script").count(), html.matches("<script src=").count(), "inline script");
    assert!(attribute_values(&html, "style").is_empty(), "style attribute");
    assert!(!html.contains(" onclick=") && !html.contains(" onsubmit=") && !html.contains(" onload="));
}

#[tokio::test]
async fn the_playground_is_open_when_api_keys_are_set() {
    // Arrange
    let redis = TestRedis::start();
    let mut settings = test_settings(&redis);
    settings.access.api_keys = vec!["s3arch".parse().expect("infallible")];
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;

    // Act
    let html = page(&app).await;
    let stats = app.get("/v1/stats").await;

    // Assert
    assert_eq!(stats.status(), 401, "keys are configured, so the API is closed");
    for r in references(&html).iter().filter(|r| r.starts_with("playground/")) {
        assert_eq!(app.get(&format!("/{r}")).await.status(), 200, "{r} without a key");
    }
}

#[tokio::test]
async fn assets_are_revalidated_with_their_etag() {
    // Arrange
    let redis = TestRedis::start();
    let app = spawn_app(&redis).await;
    let first = app.get("/playground/app.js").await;
    let etag = first.headers()["etag"].clone();

    // Act
    let again = app.http.get(app.url("/playground/app.js")).header("if-none-match", &etag).send().await.expect("sent");

    // Assert
    assert_eq!(
        first.headers()["cache-control"],
        "no-cache",
        "revalidated on each load, so never stale after an upgrade"
    );
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert!(again.bytes().await.expect("body").is_empty());
}

#[test]
fn the_playground_is_not_part_of_the_api_contract() {
    let spec = serde_json::to_value(openapi::spec()).expect("spec serializes");

    let paths: Vec<&String> = spec["paths"].as_object().expect("paths").keys().collect();

    assert!(paths.iter().all(|p| *p != "/" && !p.starts_with("/playground")), "{paths:?}");
}
