//! The playground at `GET /`: a page to try searches in a browser, and its
//! three assets under `/playground/`.
//!
//! The files live in `assets/playground/` and are compiled in, so the page
//! works offline and from any directory; nothing is fetched from a CDN. They
//! are plain HTML, CSS and JS: no build step, nothing to keep in sync.
//!
//! Deliberately not in the OpenAPI document: these routes are a UI, not part
//! of the contract (clients generated from the spec have no use for them).
//! They are open like `/docs`: the page holds no data, and the searches it
//! sends carry the API key the user typed in it.
//!
//! Every response carries a strict Content-Security-Policy (own scripts,
//! styles and `fetch` targets only, no inline code, no frames, Trusted Types
//! enforced) and an `ETag`. `Cache-Control: no-cache` makes browsers
//! revalidate each time, so after an upgrade the page and its script never
//! come from two builds; the revalidation is a 304 without a body.

use std::sync::OnceLock;

use axum::{
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use sha2::{Digest, Sha256};

use super::AppState;

/// What the page may load and do. `connect-src 'self'` is what lets it call
/// the API; everything else it needs is a file of its own origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; \
     require-trusted-types-for 'script'; trusted-types 'none'";

/// One compiled-in file and the headers it is served with.
struct Asset {
    content_type: &'static str,
    bytes: &'static [u8],
    /// Strong validator, computed on first use from the bytes.
    etag: OnceLock<HeaderValue>,
}

impl Asset {
    const fn new(content_type: &'static str, bytes: &'static [u8]) -> Self {
        Self { content_type, bytes, etag: OnceLock::new() }
    }

    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            let digest = Sha256::digest(self.bytes);
            let tag = format!("\"{}\"", hex::encode(&digest[..12]));
            HeaderValue::from_str(&tag).expect("a quoted hex string is a valid header value")
        })
    }

    /// The file, or 304 when the browser already holds this version.
    fn respond(&self, request: &HeaderMap) -> Response {
        let etag = self.etag();
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|candidate| candidate.trim() == "*" || candidate.trim().as_bytes() == etag.as_bytes());
        let headers = [
            (header::CONTENT_TYPE, HeaderValue::from_static(self.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::ETAG, etag.clone()),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY)),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            // Result titles link to article URLs: do not tell those sites where the user came from.
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ];
        if fresh {
            (StatusCode::NOT_MODIFIED, headers).into_response()
        } else {
            (headers, self.bytes).into_response()
        }
    }
}

static PAGE: Asset = Asset::new("text/html; charset=utf-8", include_bytes!("../../assets/playground/index.html"));
static SCRIPT: Asset = Asset::new("text/javascript; charset=utf-8", include_bytes!("../../assets/playground/app.js"));
static STYLE: Asset = Asset::new("text/css; charset=utf-8", include_bytes!("../../assets/playground/style.css"));
static ICON: Asset = Asset::new("image/svg+xml", include_bytes!("../../assets/playground/icon.svg"));

/// The page and its assets; open routes, outside the OpenAPI document.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|h: HeaderMap| async move { PAGE.respond(&h) }))
        .route("/playground/app.js", get(|h: HeaderMap| async move { SCRIPT.respond(&h) }))
        .route("/playground/style.css", get(|h: HeaderMap| async move { STYLE.respond(&h) }))
        .route("/playground/icon.svg", get(|h: HeaderMap| async move { ICON.respond(&h) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).expect("ascii header"));
        h
    }

    #[test]
    fn a_matching_etag_gets_304_and_any_other_gets_the_file() {
        let etag = SCRIPT.etag().to_str().expect("ascii etag").to_owned();

        let same = SCRIPT.respond(&if_none_match(&etag));
        let listed = SCRIPT.respond(&if_none_match(&format!("\"stale\", {etag}")));
        let other = SCRIPT.respond(&if_none_match("\"stale\""));
        let none = SCRIPT.respond(&HeaderMap::new());

        assert_eq!(same.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(listed.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(other.status(), StatusCode::OK);
        assert_eq!(none.status(), StatusCode::OK);
        assert_eq!(none.headers()[header::ETAG], etag);
    }

    #[test]
    fn each_file_has_its_own_etag() {
        let tags = [PAGE.etag(), SCRIPT.etag(), STYLE.etag(), ICON.etag()];

        for (i, a) in tags.iter().enumerate() {
            for b in &tags[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
