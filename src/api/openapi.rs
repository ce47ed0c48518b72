//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! annotations and the `ToSchema` types, and the routes that publish it:
//! `GET /openapi.yaml` and a Redoc page at `GET /docs`.
//!
//! `openapi.yaml` at the repository root is this module's output, checked in
//! so reviewers see contract changes in diffs; `tests/api/openapi.rs` fails
//! when the two differ. Regenerate with `cargo run -- openapi > openapi.yaml`.
//! Redoc is vendored in `assets/redoc/` and compiled in: no CDN at run time.

use std::sync::OnceLock;

use axum::{
    http::header,
    response::{Html, IntoResponse},
};
use utoipa::{
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
    Modify, OpenApi,
};

use crate::problem::{Problem, ProblemCode};

/// The command that regenerates `openapi.yaml`, printed by the drift test.
pub const REGENERATE: &str = "cargo run -- openapi > openapi.yaml";

/// Security scheme of the search routes (`SEMSEARCH_API_KEYS`).
pub const API_KEY: &str = "api_key";
/// Security scheme of `/v1/admin/*` (`SEMSEARCH_ADMIN_KEYS`).
pub const ADMIN_KEY: &str = "admin_key";

/// Document-level parts; the paths come from the routes (see [`spec`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "semsearch",
        description = "Exact cosine top-k search over the article embeddings a chatbot keeps in Redis.

Results are ordered by descending `score` (cosine similarity). Equal scores are ordered by ascending `id` (byte-wise; for the chatbot the id is the article URL); \
this tie rule is defined once, in `src/search/topk.rs`, and holds for every endpoint that returns results.

Errors are RFC 9457 `application/problem+json` bodies (schema `Problem`). Switch on `code` \
(schema `ProblemCode`, stable across releases), never on `detail`.

Authentication: search routes need `Authorization: Bearer <key>` when the server sets \
`SEMSEARCH_API_KEYS`; `/v1/admin/*` needs an admin key (`SEMSEARCH_ADMIN_KEYS`) and, when none is \
configured, answers only on a loopback bind. `/healthz`, `/readyz`, `/metrics`, `/openapi.yaml` and \
`/docs` are always open. See docs/api-and-filters.md.",
        license(name = "MIT", identifier = "MIT")
    ),
    servers(
        (url = "/", description = "The semsearch instance that serves this document at `/openapi.yaml`")
    ),
    tags(
        (name = "search", description = "Nearest articles to a query"),
        (name = "operations", description = "Health, readiness, statistics and metrics"),
        (name = "admin", description = "Operator actions; admin key required"),
        (name = "meta", description = "This document and its human-readable page")
    ),
    components(schemas(Problem, ProblemCode)),
    modifiers(&BearerSchemes)
)]
pub struct ApiDoc;

/// Declares the two Bearer schemes the operations refer to.
struct BearerSchemes;

impl Modify for BearerSchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = |description: &str| {
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).description(Some(description)).build())
        };
        components.add_security_scheme(
            API_KEY,
            scheme("One of SEMSEARCH_API_KEYS (or SEMSEARCH_ADMIN_KEYS). Needed only when the server sets SEMSEARCH_API_KEYS."),
        );
        components.add_security_scheme(ADMIN_KEY, scheme("One of SEMSEARCH_ADMIN_KEYS."));
    }
}

/// The whole document: [`ApiDoc`] plus every route registered in [`super::routes`].
pub fn spec() -> utoipa::openapi::OpenApi {
    let (_, mut spec) = super::routes().split_for_parts();
    use_openapi_paths(&mut spec);
    declare_open_routes(&mut spec);
    spec
}

/// Gives every operation that declares no security scheme an explicit
/// `security: []`: "no key needed" said, not left to a default a linter or a
/// reader has to guess (the open routes of `super::routes`).
fn declare_open_routes(spec: &mut utoipa::openapi::OpenApi) {
    for item in spec.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security.get_or_insert_with(Vec::new);
        }
    }
}

fn use_openapi_paths(spec: &mut utoipa::openapi::OpenApi) {
    let paths = std::mem::take(&mut spec.paths.paths);
    spec.paths.paths = paths.into_iter().map(|(path, item)| (openapi_path(&path), item)).collect();
}

/// utoipa-axum registers a handler under its annotated path in both the
/// router and the spec. axum spells a catch-all segment `{*id}`; OpenAPI
/// has no such syntax and names the parameter `id`, so an annotation can
/// keep axum's form (e.g. `/v1/documents/{*id}`, ids contain `/`) and the
/// spec still reads `{id}`.
fn openapi_path(axum_path: &str) -> String {
    axum_path.replace("{*", "{")
}

/// The document as YAML: the bytes of `openapi.yaml` and of `GET /openapi.yaml`.
pub fn yaml() -> String {
    spec().to_yaml().expect("an OpenAPI document of plain structs always serializes")
}

static YAML: OnceLock<String> = OnceLock::new();

const DOCS_HTML: &str = include_str!("../../assets/docs.html");
const REDOC_JS: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// The body of `GET /openapi.yaml` as the spec declares it. The bytes are
/// YAML text, and generated clients must hand them over as text (an
/// `object` alone made openapi-typescript type it `Record<string, never>`);
/// a YAML-aware checker (schemathesis) parses the body before validating it
/// and sees the document as an object. `type: [string, object]` is true of
/// both readings, so neither needs a waiver.
struct SpecDocument;

impl utoipa::PartialSchema for SpecDocument {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Object]))
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some("This OpenAPI document as YAML text (a YAML parser reads it as an object)."))
            .into()
    }
}

impl utoipa::ToSchema for SpecDocument {}

/// The OpenAPI document this server implements.
#[utoipa::path(
    get,
    path = "/openapi.yaml",
    operation_id = "get_openapi",
    tag = "meta",
    responses((status = 200, description = "This document, as YAML", content_type = "application/yaml", body = inline(SpecDocument)))
)]
pub async fn openapi_yaml() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], YAML.get_or_init(yaml).as_str())
}

/// Human-readable API reference (Redoc, served from the binary).
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "get_docs",
    tag = "meta",
    responses((status = 200, description = "HTML page rendering /openapi.yaml", content_type = "text/html", body = String))
)]
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_HTML)
}

/// The script of the `/docs` page.
#[utoipa::path(
    get,
    path = "/docs/redoc.standalone.js",
    operation_id = "get_docs_script",
    tag = "meta",
    responses((status = 200, description = "Redoc 2.5.4 (MIT), vendored in assets/redoc", content_type = "text/javascript", body = String))
)]
pub async fn docs_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")],
        REDOC_JS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_code_is_listed_in_the_spec() {
        let spec = serde_json::to_value(spec()).expect("spec serializes");
        let listed: Vec<&str> = spec["components"]["schemas"]["ProblemCode"]["enum"]
            .as_array()
            .expect("ProblemCode is an enum schema")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        let ours: Vec<&str> = ProblemCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, ours);
    }

    #[utoipa::path(
        get,
        path = "/things/{*id}",
        operation_id = "get_thing",
        params(("id" = String, Path, description = "May contain '/'")),
        responses((status = 200, description = "The id", body = String))
    )]
    async fn thing(axum::extract::Path(id): axum::extract::Path<String>) -> String {
        id
    }

    #[tokio::test]
    async fn a_catch_all_route_matches_in_axum_and_reads_as_a_parameter_in_the_spec() {
        use tower::ServiceExt;
        use utoipa_axum::{router::OpenApiRouter, routes};

        let (router, mut spec) = OpenApiRouter::<()>::new().routes(routes!(thing)).split_for_parts();
        use_openapi_paths(&mut spec);
        let req = axum::http::Request::get("/things/a/b").body(axum::body::Body::empty()).expect("valid request");
        let res = router.oneshot(req).await.expect("infallible");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.expect("small body");

        assert_eq!(&body[..], b"a/b");
        let paths: Vec<&String> = spec.paths.paths.keys().collect();
        assert_eq!(paths, ["/things/{id}"]);
        assert_eq!(openapi_path("/v1/search"), "/v1/search");
    }

    #[test]
    fn operation_ids_read_naturally() {
        let spec = serde_json::to_value(spec()).expect("spec serializes");
        let mut ids = Vec::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
                assert!(!id.contains("handler") && !id.contains('/'), "{method} {path}: {id}");
                ids.push(id.to_owned());
            }
        }
        assert!(ids.iter().any(|i| i == "search") && ids.iter().any(|i| i == "get_stats"), "{ids:?}");
    }
}
