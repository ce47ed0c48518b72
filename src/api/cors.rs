//! CORS: which browser origins may call the API. Owns checking the
//! configured list ([`parse_origins`]) and building the layer ([`layer`]).

use axum::http::{header, HeaderName, HeaderValue, Method};
use thiserror::Error;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::telemetry::propagation;

/// A configured origin that browsers would never send.
#[derive(Debug, Error)]
pub enum CorsError {
    /// Not an `http(s)://host[:port]` origin, or `*`.
    #[error("SEMSEARCH_CORS_ORIGINS: {origin:?} is not an origin such as https://app.example, or *")]
    BadOrigin { origin: String },
}

/// The configured origins, trimmed, empty entries dropped.
///
/// # Errors
/// [`CorsError::BadOrigin`] for the first entry that is not an origin.
pub fn parse_origins(list: &[String]) -> Result<Vec<String>, CorsError> {
    let origins: Vec<String> = list.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
    match origins.iter().find(|o| !is_origin(o)) {
        Some(bad) => Err(CorsError::BadOrigin { origin: bad.clone() }),
        None => Ok(origins),
    }
}

/// `*`, or `scheme://host[:port]` with nothing after: what browsers send in `Origin`.
fn is_origin(origin: &str) -> bool {
    origin == "*"
        || reqwest::Url::parse(origin).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host_str().is_some()
                && u.path() == "/"
                && !origin.ends_with('/')
                && u.query().is_none()
        })
}

/// The CORS layer for `origins` (`*` alone: any origin), or `None` when the
/// list is empty: then no CORS headers are sent and browsers keep the
/// same-origin policy.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST])
            // A browser page that traces its calls sends W3C trace context.
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static(propagation::TRACEPARENT),
                HeaderName::from_static(propagation::TRACESTATE),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER, header::WWW_AUTHENTICATE]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_origins_are_accepted() {
        let ok = parse_origins(&[" https://app.example ".into(), "".into(), "http://localhost:3000".into()]);
        assert_eq!(ok.expect("valid"), ["https://app.example", "http://localhost:3000"]);
        for bad in ["app.example", "https://app.example/", "https://app.example/x", "ftp://x"] {
            assert!(parse_origins(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
