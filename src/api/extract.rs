//! Our `Json` extractor: every way a body can be wrong becomes an [`ApiError`],
//! so clients never see axum's plain-text rejections.

use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{header, StatusCode},
};

use serde::de::DeserializeOwned;

use crate::query::dto::ObjectOnly;

use crate::problem::ApiError;

/// The body size limit in force, put in request extensions by the router so
/// the 413 can say what the limit is. axum's `DefaultBodyLimit` enforces it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Middleware: a request whose `Content-Length` already exceeds the body
/// limit is answered 413 at once, before its body is read. hyper sends
/// `100 Continue` only when a handler starts reading the body, so a client
/// that asked `Expect: 100-continue` for an over-limit body never gets one,
/// and a client that declares 99999999999 bytes is not held until the
/// request timeout (issue 16).
pub async fn refuse_declared_oversize(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    use axum::response::IntoResponse;
    let limit = req.extensions().get::<BodyLimit>().map_or(usize::MAX, |l| l.0);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limit as u64 => ApiError::PayloadTooLarge { limit }.into_response(),
        _ => next.run(req).await,
    }
}

/// A JSON body deserialized with the failing field's path in the error
/// (`vector[3]: invalid type: string "a", expected f64`).
pub struct Json<T>(pub T);

impl<S, T> FromRequest<S> for Json<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge { limit }
            } else {
                ApiError::InvalidJson(rejection.body_text())
            }
        })?;
        parse(&bytes).map(Json)
    }
}

/// Deserializes `bytes`, classifying failures into our error codes.
///
/// # Errors
/// `invalid_json` (400) for syntax errors; `missing_field`, `unknown_field` or
/// `invalid_type` (422) for well-formed JSON of the wrong shape.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::InvalidJson("the body is empty".into()));
    }
    // A well-formed body is decoded without path tracking: serde_path_to_error
    // wraps every element of a 384-float vector in its own seed, which cost
    // about as much as parsing the numbers (a profile of 64 clients at 20k
    // documents, docs/benchmarks.md). The same deserializer without it
    // accepts exactly the same bodies, into the same value, so only a body it
    // refuses is decoded again, with the path, for the error.
    if let Ok(ObjectOnly(value)) = serde_json::from_slice::<ObjectOnly<T>>(bytes) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let ObjectOnly(value) = serde_path_to_error::deserialize(&mut de).map_err(|e| match classify(e) {
        // serde stops at the first error: `{"k":"a",` fails on the type of
        // `k` before it reaches the missing end. A body that is not JSON at
        // all is 400, whatever its shape error (fuzz finding 2); the re-check
        // runs only on the error path.
        ApiError::InvalidJson(m) => ApiError::InvalidJson(m),
        shape => match syntax_error(bytes) {
            Some(message) => ApiError::InvalidJson(message),
            None => shape,
        },
    })?;
    de.end().map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    Ok(value)
}

/// Why `bytes` are not one JSON text (UTF-8, then serde_json's grammar), if
/// they are not. serde_json skips ignored numbers without converting them,
/// so `1e309` is not a syntax error here: it stays a shape error (422).
fn syntax_error(bytes: &[u8]) -> Option<String> {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => return Some(format!("the body is not UTF-8: {e}")),
    };
    serde_json::from_str::<serde::de::IgnoredAny>(text).err().map(|e| e.to_string())
}

fn classify(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    use serde_json::error::Category;
    let path = err.path().to_string();
    let inner = err.inner();
    let message = inner.to_string();
    // serde_json refuses numbers beyond f64 (1e309) as a syntax error, while
    // 1e39 parses and only overflows f32: both are one class, non_finite.
    let out_of_range = message.starts_with("number out of range");
    let element = path.rsplit_once('[').and_then(|(_, rest)| rest.strip_suffix(']')).and_then(|n| n.parse().ok());
    match inner.classify() {
        Category::Syntax if out_of_range => match element {
            Some(index) => ApiError::NonFinite { index },
            None => ApiError::InvalidType(format!("{path}: {message}")),
        },
        Category::Syntax | Category::Eof | Category::Io => ApiError::InvalidJson(message),
        Category::Data => {
            let detail = if path == "." { message.clone() } else { format!("{path}: {message}") };
            if message.starts_with("missing field") {
                ApiError::MissingField(detail)
            } else if message.starts_with("unknown field") {
                ApiError::UnknownField(detail)
            } else {
                ApiError::InvalidType(detail)
            }
        }
    }
}
