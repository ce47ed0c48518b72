//! One search request of the load loops, and the name of its failure.
//!
//! A failure is named by what a client of semsearch would branch on: the
//! problem `code` of an error answer (`overloaded`, `unauthorized`, …; see
//! `problem`), the bare status when an answer is not problem+json (a
//! proxy's error page), or what went wrong on the client's side. A success
//! is the number of body bytes read, so the report can show what `with_text`
//! costs on the wire.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Why one request did not succeed. Ordered, so counts print in a stable order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Failure {
    /// The server answered with a problem body: its status and stable `code`.
    Problem { status: u16, code: String },
    /// A non-2xx answer without a problem body (or with an unusable `code`).
    Status { status: u16 },
    /// No full answer within [`super::REQUEST_TIMEOUT`] (the client gave up;
    /// not the server's own `timeout` code, which is a [`Failure::Problem`]).
    ClientTimeout,
    /// The connection could not be opened.
    Connect,
    /// The answer started but its body broke off.
    Body,
    /// Any other transport failure (reset, protocol error).
    Transport,
    /// A load-loop task panicked: a bug in the bench, counted so it shows.
    BenchPanicked,
}

impl Failure {
    /// A short label for the terminal table, e.g. `overloaded (503)`.
    pub fn label(&self) -> String {
        match self {
            Failure::Problem { status, code } => format!("{code} ({status})"),
            Failure::Status { status } => format!("HTTP {status} without a problem body"),
            Failure::ClientTimeout => "client timeout".to_owned(),
            Failure::Connect => "connect failed".to_owned(),
            Failure::Body => "body broke off".to_owned(),
            Failure::Transport => "transport error".to_owned(),
            Failure::BenchPanicked => "bench task panicked".to_owned(),
        }
    }
}

/// Longest `code` taken from an answer; longer ones (not ours) count by status.
const MAX_CODE_CHARS: usize = 64;

/// Names the failure of an error answer from its status and body.
///
/// Only a `code` that looks like ours (snake_case ASCII, at most 64
/// characters) is kept, so a foreign server cannot fill the report with
/// arbitrary strings.
pub fn failure_of(status: u16, body: &[u8]) -> Failure {
    #[derive(Deserialize)]
    struct Problem {
        code: String,
    }
    let usable = |code: &str| {
        !code.is_empty()
            && code.len() <= MAX_CODE_CHARS
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    match serde_json::from_slice::<Problem>(body) {
        Ok(p) if usable(&p.code) => Failure::Problem { status, code: p.code },
        _ => Failure::Status { status },
    }
}

/// Sends one `POST` of a JSON `body` and reads the answer in full.
///
/// # Errors
/// The [`Failure`] naming why it did not succeed. Error answers are read in
/// full too, so the connection can be reused.
pub async fn post_json(client: &reqwest::Client, url: &str, body: Bytes) -> Result<u64, Failure> {
    let res = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| transport_failure(&e))?;
    let status = res.status();
    let read = res.bytes().await;
    if !status.is_success() {
        return Err(failure_of(status.as_u16(), read.as_deref().unwrap_or_default()));
    }
    read.map(|b| b.len() as u64).map_err(|e| if e.is_timeout() { Failure::ClientTimeout } else { Failure::Body })
}

fn transport_failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::ClientTimeout
    } else if e.is_connect() {
        Failure::Connect
    } else {
        Failure::Transport
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_body_is_named_by_its_code_and_status() {
        let body =
            br#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"busy","code":"overloaded"}"#;

        let got = failure_of(503, body);

        assert_eq!(got, Failure::Problem { status: 503, code: "overloaded".to_owned() });
        assert_eq!(got.label(), "overloaded (503)");
    }

    #[test]
    fn an_answer_without_a_usable_code_is_named_by_its_status() {
        let too_long = format!("{{\"code\": \"{}\"}}", "a".repeat(MAX_CODE_CHARS + 1));
        let bodies: [&[u8]; 5] = [
            b"<html>Bad Gateway</html>",
            br#"{"code": 7}"#,
            br#"{"code": "Not Ours!"}"#,
            br#"{"code": ""}"#,
            too_long.as_bytes(),
        ];

        for body in bodies {
            let got = failure_of(502, body);

            assert_eq!(got, Failure::Status { status: 502 }, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn failures_serialize_with_their_source() {
        let problem = serde_json::to_value(Failure::Problem { status: 401, code: "unauthorized".to_owned() });
        let timeout = serde_json::to_value(Failure::ClientTimeout);

        assert_eq!(
            problem.expect("plain data"),
            serde_json::json!({"source": "problem", "status": 401, "code": "unauthorized"})
        );
        assert_eq!(timeout.expect("plain data"), serde_json::json!({"source": "client_timeout"}));
    }
}
