//! The operator's kit against the service it watches: every series that an
//! alert rule (`deploy/prometheus/`) or a dashboard panel (`deploy/grafana/`)
//! queries is on a live app's `/metrics`, with the label values it selects
//! by equality; every alert has its section in `docs/operations.md`; the
//! dashboard's panels are laid out without overlaps.
//!
//! That the expressions are valid PromQL and that the alerts fire when they
//! should is `promtool`'s job (`.ci/observability.sh`); this module knows
//! only enough PromQL to find the selectors in an expression.

use std::{collections::BTreeMap, path::Path};

use axum::{routing::post, Json, Router};
use semsearch::{
    config::{ServeArgs, Settings},
    embed::ProviderKind,
    secret::Secret,
};
use semsearch_scan::ScanMode;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, TestRedis},
    metrics::{parse_exposition, Sample},
};

/// Dimension of the test corpus and of the fake embedder's answers.
const DIM: usize = 8;

/// One series selector of an expression: the metric name and the labels it
/// selects by equality (`route="/v1/search"`). Regex and negative matchers
/// are left out: they may match nothing by design.
#[derive(Debug, PartialEq, Eq)]
struct Selector {
    metric: String,
    equal: Vec<(String, String)>,
}

/// PromQL keywords and aggregation operators (`sum by (le) (…)`): not series names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];
/// Keywords followed by a parenthesised list of label names (not series).
const LABEL_LISTS: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];

/// Every series selector in a PromQL expression, in order.
fn selectors(expr: &str) -> Result<Vec<Selector>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    let skip_space = |mut j: usize| {
        while chars.get(j).is_some_and(|c| c.is_whitespace()) {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while chars.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = skip_space(i);
            if LABEL_LISTS.contains(&word.as_str()) && chars.get(next) == Some(&'(') {
                i = chars[next..].iter().position(|c| *c == ')').map(|p| next + p + 1).ok_or("unclosed label list")?;
            } else if chars.get(next) == Some(&'(') || KEYWORDS.contains(&word.as_str()) {
                // A function or an aggregation: its arguments are scanned next.
            } else if chars.get(next) == Some(&'{') {
                let (equal, end) = matchers(&chars, next + 1)?;
                found.push(Selector { metric: word, equal });
                i = end;
            } else {
                found.push(Selector { metric: word, equal: Vec::new() });
            }
        } else if c.is_ascii_digit() || c == '.' {
            // A number (0.99, 14.4, 1e9): its letters are not a name.
            while chars.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.') {
                i += 1;
            }
        } else if c == '[' {
            i = chars[i..].iter().position(|c| *c == ']').map(|p| i + p + 1).ok_or("unclosed range")?;
        } else if c == '{' || c == '"' {
            return Err(format!("a selector without a metric name at {i}: {expr}"));
        } else {
            i += 1;
        }
    }
    Ok(found)
}

/// Reads `label op "value", …}` from `start`; returns the equality matchers
/// and the index after the closing brace.
fn matchers(chars: &[char], start: usize) -> Result<(Vec<(String, String)>, usize), String> {
    let mut equal = Vec::new();
    let mut i = start;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
            i += 1;
        }
        match chars.get(i) {
            Some('}') => return Ok((equal, i + 1)),
            None => return Err("unclosed selector".into()),
            _ => {}
        }
        let name_start = i;
        while chars.get(i).is_some_and(|c| c.is_ascii_alphanumeric() || *c == '_') {
            i += 1;
        }
        let name: String = chars[name_start..i].iter().collect();
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        let op_start = i;
        while chars.get(i).is_some_and(|c| matches!(c, '=' | '!' | '~')) {
            i += 1;
        }
        let op: String = chars[op_start..i].iter().collect();
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if name.is_empty() || chars.get(i) != Some(&'"') {
            return Err(format!("bad matcher at {name_start}"));
        }
        let close = chars[i + 1..].iter().position(|c| *c == '"').ok_or("unclosed label value")?;
        let value: String = chars[i + 1..i + 1 + close].iter().collect();
        i += close + 2;
        // Grafana's `$job` variables are regexes, whatever the operator.
        if op == "=" && !value.contains('$') {
            equal.push((name, value));
        }
    }
}

/// The selectors no sample satisfies, as readable lines.
fn unmatched(wanted: &[(String, Selector)], samples: &[Sample]) -> Vec<String> {
    wanted
        .iter()
        .filter(|(_, s)| {
            !samples.iter().any(|sample| {
                sample.name == s.metric
                    && s.equal.iter().all(|(k, v)| sample.labels.get(k).map(String::as_str) == Some(v.as_str()))
            })
        })
        .map(|(place, s)| format!("{place}: {} {:?}", s.metric, s.equal))
        .collect()
}

fn deploy_file(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `(alert name, expression)` of every alert rule.
fn alert_rules() -> Vec<(String, String)> {
    let rules: Value =
        yaml_serde::from_str(&deploy_file("deploy/prometheus/semsearch.rules.yaml")).expect("rules YAML");
    let groups = rules["groups"].as_array().expect("groups");
    let rules: Vec<_> = groups.iter().flat_map(|g| g["rules"].as_array().expect("rules").iter()).collect();
    assert!(rules.iter().all(|r| r.get("record").is_none()), "recorded series are not on /metrics: skip them here");
    rules
        .iter()
        .map(|r| (r["alert"].as_str().expect("alert").to_owned(), r["expr"].as_str().expect("expr").to_owned()))
        .collect()
}

fn dashboard() -> Value {
    serde_json::from_str(&deploy_file("deploy/grafana/semsearch.json")).expect("dashboard JSON")
}

/// `(where, expression)` of every panel query.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    let panels = dashboard["panels"].as_array().expect("panels");
    panels
        .iter()
        .flat_map(|p| {
            let title = p["title"].as_str().unwrap_or("?").to_owned();
            p["targets"].as_array().into_iter().flatten().map(move |t| {
                (format!("panel {title:?} {}", t["refId"]), t["expr"].as_str().unwrap_or_default().to_owned())
            })
        })
        .collect()
}

/// Answers every embedding request (TEI's protocol) with one fixed vector.
pub(crate) async fn fake_embedder() -> String {
    let vector: Vec<f32> = (0..DIM).map(|j| j as f32 - 3.5).collect();
    let router = Router::new().route("/embed", post(move || async move { Json(json!([vector])) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake embedder");
    let url = format!("http://{}", listener.local_addr().expect("fake embedder address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Settings that make every series exist: an embedder (the fake), and a
/// forced int8 scan (rescored rows).
pub(crate) fn settings(redis: &TestRedis, embedder_url: String) -> Settings {
    let mut args = ServeArgs::defaults();
    args.redis.url = Some(redis.url().parse::<Secret>().expect("infallible"));
    args.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    args.embedder.embedder = Some(ProviderKind::Tei);
    args.embedder.embedder_url = Some(embedder_url);
    let mut settings = Settings::from_args(&args).expect("test settings are valid");
    settings.scan = ScanMode::Int8;
    settings
}

#[tokio::test]
async fn every_series_the_alerts_and_dashboard_query_is_exposed_with_the_labels_they_select() {
    // Arrange: 40 documents and one corrupt key; a search by vector (the
    // int8 pass), one by text (the embedder), a readiness probe.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    for i in 0..40 {
        let v: Vec<f32> = (0..DIM).map(|j| ((i * 7 + j * 3) % 11) as f32 - 5.0).collect();
        let () = redis::cmd("SET")
            .arg(format!("cache:embedding:doc{i:02}"))
            .arg(serde_json::to_string(&v).expect("JSON"))
            .query_async(&mut conn)
            .await
            .expect("set");
    }
    let () = redis::cmd("SET").arg("cache:embedding:bad").arg("not json").query_async(&mut conn).await.expect("set");
    let app = spawn_app_with(settings(&redis, fake_embedder().await)).await;
    app.wait_ready().await;
    assert_eq!(app.post_search(&json!({"vector": [1, 2, 3, 4, -1, -2, -3, 0.5], "k": 2})).await.status(), 200);
    assert_eq!(app.post_search(&json!({"text": "how do I pay?", "k": 2})).await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    let mut wanted = Vec::new();
    for (alert, expr) in alert_rules() {
        wanted.extend(
            selectors(&expr).unwrap_or_else(|e| panic!("{alert}: {e}")).into_iter().map(|s| (alert.clone(), s)),
        );
    }
    for (place, expr) in panel_queries(&dashboard()) {
        wanted.extend(
            selectors(&expr).unwrap_or_else(|e| panic!("{place}: {e}")).into_iter().map(|s| (place.clone(), s)),
        );
    }

    // Act
    let text = app.get("/metrics").await.text().await.expect("body");

    // Assert
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let missing = unmatched(&wanted, &samples);
    assert!(missing.is_empty(), "queried but not exposed:\n  {}\n/metrics:\n{text}", missing.join("\n  "));
    assert!(wanted.len() > 40, "the files were read: {} selectors", wanted.len());
    // The check itself: a name and a label value that do not exist are reported.
    let bogus = [
        ("bad name".to_owned(), Selector { metric: "semsearch_no_such_series_total".into(), equal: vec![] }),
        (
            "bad value".to_owned(),
            Selector {
                metric: "http_requests_total".into(),
                equal: vec![("route".into(), "/v1/no-such-route".into())],
            },
        ),
    ];
    assert_eq!(unmatched(&bogus, &samples).len(), 2);
}

#[test]
fn selectors_are_found_in_the_promql_the_kit_uses() {
    let sel = |metric: &str, equal: &[(&str, &str)]| Selector {
        metric: metric.into(),
        equal: equal.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
    };
    let cases = [
        (
            r#"histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job=~"$job", route="/v1/search", le="0.25"}[$__rate_interval])))"#,
            vec![sel("http_request_duration_seconds_bucket", &[("route", "/v1/search"), ("le", "0.25")])],
        ),
        (
            "increase(a_total[15m]) > 0\n  unless on (job, instance)\nincrease(b_total[15m]) > 1e3",
            vec![sel("a_total", &[]), sel("b_total", &[])],
        ),
        (
            r#"time() - max(x{status!~"2..", s="t"}) > 14.4 * 0.01 and on (job) group by (job) (y) == 1"#,
            vec![sel("x", &[("s", "t")]), sel("y", &[])],
        ),
        ("semsearch_ready == 0", vec![sel("semsearch_ready", &[])]),
    ];
    for (expr, expected) in cases {
        assert_eq!(selectors(expr), Ok(expected), "{expr}");
    }
    assert!(selectors(r#"{__name__="x"}"#).is_err(), "a selector without a name is refused, not skipped");
    assert!(selectors(r#"x{a="b""#).is_err());
}

#[test]
fn every_alert_has_a_section_in_the_operations_guide_that_its_annotation_links() {
    let guide = deploy_file("docs/operations.md");
    let rules = deploy_file("deploy/prometheus/semsearch.rules.yaml");

    for (alert, _) in alert_rules() {
        assert!(guide.contains(&format!("\n### {alert}\n")), "docs/operations.md has no `### {alert}` section");
        let anchor = format!("docs/operations.md#{}", alert.to_lowercase());
        assert!(rules.contains(&anchor), "{alert}'s annotations do not link {anchor}");
    }
}

#[test]
fn the_dashboard_panels_have_unique_ids_queries_and_do_not_overlap() {
    let dashboard = dashboard();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut cells: BTreeMap<(u64, u64), String> = BTreeMap::new();
    let mut ids = Vec::new();

    for panel in panels {
        let title = panel["title"].as_str().expect("every panel has a title");
        ids.push(panel["id"].as_u64().expect("id"));
        let g = &panel["gridPos"];
        let [x, y, w, h] = [&g["x"], &g["y"], &g["w"], &g["h"]].map(|v| v.as_u64().expect("gridPos is whole numbers"));
        assert!(x + w <= 24, "{title}: wider than Grafana's 24 columns");
        for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
            if let Some(other) = cells.insert(cell, title.to_owned()) {
                panic!("{title} overlaps {other} at {cell:?}");
            }
        }
        if panel["type"] != "row" {
            let targets = panel["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{title}: no query");
            assert!(panel["description"].as_str().is_some_and(|d| !d.is_empty()), "{title}: say what it shows");
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}: the data source variable");
        }
    }
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "panel ids are unique");
}
