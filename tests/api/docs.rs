//! Docs that cannot drift from the code: every environment variable the code
//! reads is in `docs/configuration.md` and every one listed there is read;
//! every route README.md and docs/ name is in `openapi.yaml` (or is one of
//! the few routes deliberately outside it) and every route of the spec is in
//! `docs/api-and-filters.md`; every metric the docs name is on a live
//! `/metrics` and every series there is in the metrics table; relative links
//! in README.md and docs/ point at files that exist.
//!
//! Each check is a plain function over sets, so each test also proves the
//! check catches a planted mistake.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use clap::CommandFactory;
use serde_json::{json, Value};

use crate::{
    helpers::{spawn_app_with, TestRedis},
    metrics::parse_exposition,
    operations::{fake_embedder, settings},
};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// README.md and every page under docs/, as (path, text).
fn pages() -> Vec<(String, String)> {
    let mut pages = vec![("README.md".to_owned(), read("README.md"))];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .expect("docs/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    for path in docs {
        let name = format!("docs/{}", path.file_name().expect("a file").to_string_lossy());
        pages.push((name.clone(), read(&name)));
    }
    pages
}

/// `a` minus `b`, for messages.
fn missing(a: &BTreeSet<String>, b: &BTreeSet<String>) -> Vec<String> {
    a.difference(b).cloned().collect()
}

// ---- Environment variables ------------------------------------------------

/// Every `env = "…"` of the command line, all subcommands included.
fn clap_env_names() -> BTreeSet<String> {
    fn walk(command: &clap::Command, names: &mut BTreeSet<String>) {
        for arg in command.get_arguments() {
            if let Some(env) = arg.get_env() {
                names.insert(env.to_string_lossy().into_owned());
            }
        }
        for sub in command.get_subcommands() {
            walk(sub, names);
        }
    }
    let mut names = BTreeSet::new();
    walk(&semsearch::cli::Cli::command(), &mut names);
    names
}

/// `"SEMSEARCH_…"` and `"REDIS_…"` string literals in `text`: the names
/// code reads outside clap (`std::env::var`, build scripts, benches).
fn env_literals(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for piece in text.split('"').skip(1).step_by(2) {
        let is_name = (piece.starts_with("SEMSEARCH_") || piece.starts_with("REDIS_"))
            && piece.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if is_name {
            names.insert(piece.to_owned());
        }
    }
    names
}

/// Every `.rs` file under `dir`, at any depth (also used by `layout`).
pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Every variable the code reads: clap's, plus the literals of the
/// service's, the crates', the build script's and the benches' sources.
fn variables_read() -> BTreeSet<String> {
    let mut files = vec![repo().join("build.rs")];
    rust_files(&repo().join("src"), &mut files);
    rust_files(&repo().join("crates"), &mut files);
    rust_files(&repo().join("benches"), &mut files);
    let mut names = clap_env_names();
    for file in files {
        names.extend(env_literals(&std::fs::read_to_string(&file).expect("source file")));
    }
    names
}

/// The names in the first column of every table row of a page.
fn variables_documented(page: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in page.lines().filter(|l| l.starts_with("| `")) {
        let first = line.split('|').nth(1).unwrap_or_default();
        for name in first.split('`').skip(1).step_by(2) {
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[test]
fn every_variable_the_code_reads_is_in_docs_configuration_and_every_one_there_is_read() {
    // Arrange
    let read_by_code = variables_read();
    let documented = variables_documented(&read("docs/configuration.md"));

    // Act
    let undocumented = missing(&read_by_code, &documented);
    let unread = missing(&documented, &read_by_code);

    // Assert
    assert!(undocumented.is_empty(), "read by the code but not in docs/configuration.md's tables: {undocumented:?}");
    assert!(unread.is_empty(), "in docs/configuration.md but read by no code: {unread:?}");
    assert!(read_by_code.contains("SEMSEARCH_BIND") && read_by_code.contains("REDIS_HOST"), "clap was walked");
    assert!(read_by_code.contains("SEMSEARCH_DEFAULTS_CHILD"), "literals outside clap were found");
    // The check catches a planted name on either side.
    let mut planted = documented.clone();
    planted.insert("SEMSEARCH_NO_SUCH_SETTING".into());
    assert_eq!(missing(&planted, &read_by_code), ["SEMSEARCH_NO_SUCH_SETTING"]);
}

#[test]
fn env_literals_are_found_in_code_and_documented_names_in_table_rows_only() {
    let code = r#"let a = std::env::var("SEMSEARCH_X_1"); let b = "REDIS_Y"; let c = "semsearch_z"; "SEMSEARCH_lower""#;
    assert_eq!(env_literals(code), BTreeSet::from(["SEMSEARCH_X_1".to_owned(), "REDIS_Y".to_owned()]));
    let page = "Prose about `SEMSEARCH_PROSE`.\n| `SEMSEARCH_A` / `SEMSEARCH_B` | `x` | `SEMSEARCH_MEANING` |\n";
    assert_eq!(variables_documented(page), BTreeSet::from(["SEMSEARCH_A".to_owned(), "SEMSEARCH_B".to_owned()]));
}

// ---- Routes ---------------------------------------------------------------

/// Served on purpose outside the spec: the playground (a UI) and the
/// router-to-shard calls (between semsearch processes).
const OUTSIDE_THE_SPEC: &[&str] = &[
    "GET /",
    "GET /playground/*",
    "POST /v1/shard/search",
    "POST /v1/shard/stats",
    "POST /v1/shard/document",
    "GET /v1/shard/info",
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// `METHOD /path` of every operation in openapi.yaml.
fn spec_routes() -> BTreeSet<String> {
    let spec: Value = yaml_serde::from_str(&read("openapi.yaml")).expect("openapi.yaml parses");
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let upper = method.to_ascii_uppercase();
            if METHODS.contains(&upper.as_str()) {
                routes.insert(format!("{upper} {path}"));
            }
        }
    }
    routes
}

/// `METHOD /path` wherever a page writes one in code spans or tables
/// (query strings dropped, `{*id}` read as `{id}`).
fn routes_named(page: &str) -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    for method in METHODS {
        let needle = format!("{method} /");
        let mut rest = page;
        while let Some(at) = rest.find(&needle) {
            let preceded_by_word = rest[..at].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric());
            let path: String = rest[at + method.len() + 1..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '`' | '|' | ',' | ')' | '?' | '"' | '\''))
                .collect();
            rest = &rest[at + needle.len()..];
            if preceded_by_word {
                continue;
            }
            let path = path.trim_end_matches(['.', ':', ';']).replace("{*", "{");
            routes.insert(format!("{method} {path}"));
        }
    }
    routes
}

/// Named routes that are neither in the spec nor allowed outside it.
fn unknown_routes(named: &BTreeSet<String>, spec: &BTreeSet<String>) -> Vec<String> {
    named
        .iter()
        .filter(|r| !spec.contains(*r))
        .filter(|r| {
            !OUTSIDE_THE_SPEC.iter().any(|allowed| match allowed.strip_suffix('*') {
                Some(prefix) => r.starts_with(prefix),
                None => r.as_str() == *allowed,
            })
        })
        .cloned()
        .collect()
}

#[test]
fn every_route_the_docs_name_is_in_openapi_yaml_and_every_spec_route_is_in_the_api_page() {
    // Arrange
    let spec = spec_routes();
    let api_page = routes_named(&read("docs/api-and-filters.md"));

    // Act
    let mut unknown = Vec::new();
    for (page, text) in pages() {
        unknown.extend(unknown_routes(&routes_named(&text), &spec).into_iter().map(|r| format!("{page}: {r}")));
    }
    let undocumented = missing(&spec, &api_page);

    // Assert
    assert!(unknown.is_empty(), "routes the docs name that openapi.yaml lacks:\n  {}", unknown.join("\n  "));
    assert!(
        undocumented.is_empty(),
        "routes of openapi.yaml that docs/api-and-filters.md does not name: {undocumented:?}"
    );
    assert!(spec.contains("POST /v1/search") && spec.len() >= 10, "the spec was read: {spec:?}");
    // The check catches a stale route and tolerates the deliberate ones.
    let named = routes_named(
        "`POST /v1/search/old` and `GET /playground/app.js`, `GET /v1/documents/{*id}?with_embedding=true`",
    );
    assert_eq!(unknown_routes(&named, &spec), ["POST /v1/search/old"]);
}

// ---- Metrics --------------------------------------------------------------

/// Metric names in backticks on a page: `semsearch_…`, `http_…` and
/// `process_…` tokens (crate names such as `semsearch_scan` are skipped by
/// asking only for tokens that look like series: the table rows, and
/// anything ending in a Prometheus unit or `_total`).
fn metrics_named(page: &str, table_only: bool) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let in_table = |line: &str| line.starts_with("| `");
    for line in page.lines() {
        let table = in_table(line);
        if table_only && !table {
            continue;
        }
        let cell = if table { line.split('|').nth(1).unwrap_or_default() } else { line };
        for token in cell.split('`').skip(1).step_by(2) {
            let series_like = ["semsearch_", "http_", "process_"].iter().any(|p| token.starts_with(p))
                && token.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            let unit = ["_total", "_seconds", "_bytes", "_info"].iter().any(|s| token.ends_with(s));
            if series_like && (table || unit) {
                names.insert(token.to_owned());
            }
        }
    }
    names
}

/// The part of docs/api-and-filters.md under `## Metrics`.
fn metrics_section(page: &str) -> &str {
    let start = page.find("\n## Metrics").expect("a Metrics section");
    let rest = &page[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[tokio::test]
async fn every_metric_the_docs_name_is_on_metrics_and_every_series_there_is_in_the_table() {
    // Arrange: an app with every series alive (an embedder, an int8 scan,
    // a vector and a text search, a corrupt key).
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
    let () = redis::cmd("SET").arg("cache:embedding:bad").arg("not json").query_async(&mut conn).await.expect("set");
    let app = spawn_app_with(settings(&redis, fake_embedder().await)).await;
    app.wait_ready().await;
    assert_eq!(app.post_search(&json!({"vector": [1, 2, 3, 4, -1, -2, -3, 0.5], "k": 2})).await.status(), 200);
    assert_eq!(app.post_search(&json!({"text": "how do I pay?", "k": 2})).await.status(), 200);

    // Act
    let text = app.get("/metrics").await.text().await.expect("body");
    let samples = parse_exposition(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let histogram_parts = ["_bucket", "_sum", "_count"];
    let exposed: BTreeSet<String> = samples
        .iter()
        .map(|s| {
            histogram_parts
                .iter()
                .find_map(|p| s.name.strip_suffix(p).filter(|base| text.contains(&format!("# TYPE {base} histogram"))))
                .unwrap_or(&s.name)
                .to_owned()
        })
        .collect();
    let table = metrics_named(metrics_section(&read("docs/api-and-filters.md")), true);
    let mut named_anywhere = BTreeSet::new();
    for (page, body) in pages() {
        named_anywhere.extend(metrics_named(&body, false).into_iter().map(|m| (m, page.clone())));
    }

    // Assert
    let untabled = missing(&exposed, &table);
    assert!(untabled.is_empty(), "on /metrics but not in docs/api-and-filters.md's table: {untabled:?}");
    // `semsearch router`'s own series are on the router's /metrics, not a
    // node's: those must be named in the router's source instead.
    let router_source = ["src/router/handlers.rs", "src/router/mod.rs"].map(read).concat();
    let absent: Vec<_> = named_anywhere
        .iter()
        .filter(|(m, _)| {
            let routers = m.starts_with("semsearch_router_") && router_source.contains(&format!("\"{m}\""));
            !exposed.contains(m) && !routers
        })
        .collect();
    assert!(absent.is_empty(), "named in the docs but not on /metrics: {absent:?}\n/metrics:\n{text}");
    assert!(
        exposed.contains("semsearch_embed_duration_seconds") && exposed.contains("process_open_fds"),
        "{exposed:?}"
    );
    // The check catches a stale name and skips crate names in prose.
    let page = "`semsearch_scan` ranks; `semsearch_old_total` counts.\n| `semsearch_gone` | gauge |\n";
    let names = metrics_named(page, false);
    assert_eq!(names, BTreeSet::from(["semsearch_gone".to_owned(), "semsearch_old_total".to_owned()]));
}

// ---- Links ----------------------------------------------------------------

/// Relative link targets of a page that do not exist (anchors ignored).
fn broken_links(page_path: &str, page: &str) -> Vec<String> {
    let dir = repo().join(page_path).parent().expect("a dir").to_path_buf();
    let mut broken = Vec::new();
    for piece in page.split("](").skip(1) {
        let target = piece.split(')').next().unwrap_or_default();
        let file = target.split('#').next().unwrap_or_default();
        if file.is_empty() || file.contains("://") || file.starts_with("mailto:") || file.contains(' ') {
            continue;
        }
        if !dir.join(file).exists() {
            broken.push(target.to_owned());
        }
    }
    broken
}

#[test]
fn relative_links_in_the_readme_and_docs_point_at_files_that_exist() {
    let mut broken = Vec::new();
    for (page, text) in pages() {
        broken.extend(broken_links(&page, &text).into_iter().map(|t| format!("{page}: {t}")));
    }
    assert!(broken.is_empty(), "broken links:\n  {}", broken.join("\n  "));
    assert_eq!(
        broken_links("README.md", "[a](docs/no-such-page.md) [b](openapi.yaml) [c](https://x/y)"),
        ["docs/no-such-page.md"]
    );
}

/// The README stays a page a newcomer reads to the end.
#[test]
fn the_readme_is_at_most_250_lines_and_names_no_ticket_or_outside_path() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines");
    for (page, text) in pages() {
        assert!(!text.contains("../shared"), "{page} names a path outside the repository");
        let ticket = names_a_ticket(&text);
        assert!(ticket.is_none(), "{page} names a ticket: {ticket:?}");
    }
    assert_eq!(names_a_ticket("fixed in Issue 16, item 2"), Some("Issue 16".to_owned()));
    assert_eq!(names_a_ticket("an issue 'overloaded' answers"), None);
}

/// The first "issue <number>" in `text`, any case.
fn names_a_ticket(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    lower.match_indices("issue ").find_map(|(at, _)| {
        let digits: String = lower[at + 6..].chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then(|| text[at..at + 6 + digits.len()].to_owned())
    })
}
