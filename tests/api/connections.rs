//! Connection-level bounds of the HTTP server (issue 16, items 2 and 8).
//! Raw TCP clients, because reqwest never sends half a request. Every wait
//! is bounded so a regression fails instead of hanging; no test asserts how
//! long anything took.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{spawn_app_with, test_settings, TestApp, TestRedis};

/// Longest wait for anything the server should do by itself.
const BOUND: Duration = Duration::from_secs(20);

async fn small_app(redis: &TestRedis, tweak: impl FnOnce(&mut semsearch::config::Settings)) -> TestApp {
    let mut conn = redis.conn().await;
    let () = redis::cmd("SET").arg("cache:embedding:a").arg("[1,0]").query_async(&mut conn).await.expect("set");
    let mut settings = test_settings(redis);
    tweak(&mut settings);
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    app
}

/// Reads until the server closes the connection (or `BOUND` passes) and
/// returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut got = Vec::new();
    match tokio::time::timeout(BOUND, stream.read_to_end(&mut got)).await {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn issue_16_a_half_sent_request_is_closed_after_the_header_read_timeout() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.server.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");

    // Act: a request line and one header, never the blank line.
    stream.write_all(b"POST /v1/search HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    let answer = read_until_closed(&mut stream).await;

    // Assert
    assert!(answer.is_some(), "the server kept a half-sent request open for {BOUND:?}");
}

#[tokio::test]
async fn issue_16_connections_beyond_the_cap_wait_until_one_closes() {
    // Arrange: one connection allowed, held by an idle client. Readiness is
    // read from the index, not over HTTP, so no pooled connection holds the slot.
    let redis = TestRedis::start();
    let mut conn = redis.conn().await;
    let () = redis::cmd("SET").arg("cache:embedding:a").arg("[1,0]").query_async(&mut conn).await.expect("set");
    let mut settings = test_settings(&redis);
    settings.server.max_connections = 1;
    settings.server.header_read_timeout = Duration::from_secs(60);
    let app = spawn_app_with(settings).await;
    for _ in 0..2000 {
        if app.index.current().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let holder = TcpStream::connect(app.addr).await.expect("connect");
    // The server accepts the holder at once; give the accept loop a moment to take the slot.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut second = TcpStream::connect(app.addr).await.expect("the kernel backlog accepts it");
    second.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");

    // Act
    let mut buf = [0u8; 64];
    let while_held = tokio::time::timeout(Duration::from_millis(500), second.read(&mut buf)).await;
    drop(holder);
    let after = read_until_closed(&mut second).await;

    // Assert
    assert!(while_held.is_err(), "a second connection was served while the cap was reached");
    assert!(after.is_some_and(|a| a.starts_with("HTTP/1.1 200")), "served once the first connection closed");
}

#[tokio::test]
async fn issue_16_shutdown_drops_connections_still_open_after_the_grace_period() {
    // Arrange: a half-sent request that the header timeout would keep for a minute.
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| {
        s.server.header_read_timeout = Duration::from_secs(60);
        s.server.shutdown_grace = Duration::from_millis(500);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(b"POST /v1/search HTTP/1.1\r\nHost: x\r\n").await.expect("write");

    // Act
    let stopped = tokio::time::timeout(BOUND, app.stop()).await;

    // Assert
    assert!(matches!(stopped, Ok(Ok(()))), "the server did not stop with a half-sent request open: {stopped:?}");
}

#[tokio::test]
async fn issue_16_an_over_limit_content_length_is_refused_at_once_without_100_continue() {
    // Arrange: the request timeout is far beyond BOUND, so waiting for a body would fail the test.
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.request_timeout = Duration::from_secs(600)).await;

    for expect in ["", "Expect: 100-continue\r\n"] {
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");

        // Act: declare 99999999999 bytes and send none.
        let head = format!(
            "POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{expect}Content-Length: 99999999999\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(BOUND, stream.read(&mut buf)).await.expect("answered").expect("read");
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();

        // Assert
        assert!(answer.starts_with("HTTP/1.1 413"), "{expect:?}: {answer}");
        assert!(!answer.contains("100 Continue"), "{expect:?}: {answer}");
        assert!(answer.contains("payload_too_large"), "{answer}");
    }
}

#[tokio::test]
async fn issue_22_silent_sockets_are_closed_after_the_head_deadline_and_healthz_answers_again() {
    // Arrange: two connections allowed; both taken by sockets that never send a byte.
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| {
        s.server.max_connections = 2;
        s.server.header_read_timeout = Duration::from_secs(1);
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(app.addr).await.expect("connect"));
    }

    // Act
    let mut closed = Vec::new();
    for stream in &mut silent {
        closed.push(read_until_closed(stream).await);
    }
    let mut probe = TcpStream::connect(app.addr).await.expect("connect");
    probe.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("write");
    let answer = read_until_closed(&mut probe).await;

    // Assert: each silent socket got EOF (nothing sent), and the slots came back.
    for got in closed {
        assert_eq!(got.as_deref(), Some(""), "a silent socket was held open for {BOUND:?}");
    }
    assert!(answer.is_some_and(|a| a.starts_with("HTTP/1.1 200")), "healthz answers once the silent sockets are gone");
}

#[tokio::test]
async fn issue_22_a_socket_stuck_inside_the_http2_preface_is_closed() {
    // Arrange: "PRI * HTTP/2.0" is a prefix of the HTTP/2 preface, so
    // protocol detection keeps waiting for the rest.
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.server.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");

    // Act
    stream.write_all(b"PRI * HTTP/2.0").await.expect("write");
    let answer = read_until_closed(&mut stream).await;

    // Assert
    assert!(answer.is_some(), "a half-sent preface was held open for {BOUND:?}");
}

/// A raw HTTP/2 client: enough framing to idle, answer PINGs and send request heads.
mod h2 {
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpStream,
    };

    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;

    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Vec<u8>,
    }

    pub async fn write_frame(s: &mut TcpStream, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        let len = payload.len() as u32;
        let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        s.write_all(&out).await.expect("write frame");
    }

    /// The next frame, or `None` at EOF or on a read error.
    pub async fn read_frame(s: &mut TcpStream) -> Option<Frame> {
        let mut head = [0u8; 9];
        s.read_exact(&mut head).await.ok()?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.ok()?;
        let stream = u32::from_be_bytes([head[5] & 0x7f, head[6], head[7], head[8]]);
        Some(Frame { kind: head[3], flags: head[4], stream, payload })
    }

    /// Answers SETTINGS and PINGs as a live peer does; returns the frame otherwise.
    pub async fn next_frame(s: &mut TcpStream) -> Option<Frame> {
        loop {
            let frame = read_frame(s).await?;
            match (frame.kind, frame.flags & 1) {
                (SETTINGS, 0) => write_frame(s, SETTINGS, 1, 0, &[]).await,
                (PING, 0) => write_frame(s, PING, 1, 0, &frame.payload).await,
                _ => return Some(frame),
            }
        }
    }

    /// `POST /v1/search` as HPACK literals (no Huffman), headers only: the
    /// body never comes, so the request stays in flight.
    pub fn post_search_head() -> Vec<u8> {
        let mut block = vec![0x83, 0x86]; // :method POST, :scheme http (static table)
        for (name_index, value) in [(4u8, "/v1/search"), (1, "x")] {
            block.push(name_index); // literal without indexing, indexed name (:path, :authority)
            block.push(value.len() as u8);
            block.extend_from_slice(value.as_bytes());
        }
        block.extend_from_slice(&[0x0f, 0x10]); // content-type (static 31)
        block.push(16);
        block.extend_from_slice(b"application/json");
        block
    }
}

#[tokio::test]
async fn issue_22_an_http2_connection_that_only_answers_pings_is_closed_when_idle() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| s.server.header_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(h2::PREFACE).await.expect("preface");
    h2::write_frame(&mut stream, h2::SETTINGS, 0, 0, &[]).await;

    // Act: be a perfect, idle peer until the server hangs up.
    let mut server_settings = Vec::new();
    let ended = tokio::time::timeout(BOUND, async {
        while let Some(frame) = h2::read_frame(&mut stream).await {
            match (frame.kind, frame.flags & 1) {
                (h2::SETTINGS, 0) => {
                    server_settings = frame.payload.clone();
                    h2::write_frame(&mut stream, h2::SETTINGS, 1, 0, &[]).await;
                }
                (h2::PING, 0) => h2::write_frame(&mut stream, h2::PING, 1, 0, &frame.payload).await,
                _ => {}
            }
        }
    })
    .await;

    // Assert: closed, and at most 32 concurrent streams advertised (0x3 = MAX_CONCURRENT_STREAMS).
    assert!(ended.is_ok(), "an idle HTTP/2 connection answering PINGs was held open for {BOUND:?}");
    let max_streams = server_settings
        .chunks_exact(6)
        .find(|s| s[..2] == [0, 3])
        .map(|s| u32::from_be_bytes([s[2], s[3], s[4], s[5]]));
    assert_eq!(max_streams, Some(semsearch::api::server::MAX_H2_STREAMS), "settings: {server_settings:?}");
}

#[tokio::test]
async fn issue_22_http2_streams_count_against_the_same_request_cap_as_http1_requests() {
    // Arrange: 2 requests in flight at most; one HTTP/2 connection opens 3 streams
    // whose bodies never come (so the first two stay in flight).
    let redis = TestRedis::start();
    let app = small_app(&redis, |s| {
        s.server.max_connections = 2;
        s.request_timeout = Duration::from_secs(600);
        s.server.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut stream = TcpStream::connect(app.addr).await.expect("connect");
    stream.write_all(h2::PREFACE).await.expect("preface");
    h2::write_frame(&mut stream, h2::SETTINGS, 0, 0, &[]).await;

    // Act
    for id in [1, 3, 5] {
        h2::write_frame(&mut stream, h2::HEADERS, 0x4, id, &h2::post_search_head()).await;
    }
    let refused = tokio::time::timeout(BOUND, async {
        let mut body = Vec::new();
        while let Some(frame) = h2::next_frame(&mut stream).await {
            if frame.kind == h2::DATA {
                assert_eq!(frame.stream, 5, "only the third stream is answered");
                body.extend_from_slice(&frame.payload);
                if frame.flags & 1 == 1 {
                    return Some(body);
                }
            }
        }
        None
    })
    .await;

    // Assert
    let body = refused.expect("the third stream was answered at once").expect("a body before EOF");
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem JSON");
    assert_eq!(problem["code"], "overloaded", "{problem}");
    assert_eq!(problem["status"], 503);
}

#[tokio::test]
async fn issue_22_the_http_parsers_own_400_414_and_431_are_problem_json() {
    // Arrange
    let redis = TestRedis::start();
    let app = small_app(&redis, |_| {}).await;
    let cases = [
        ("bad_request", "HTTP/1.1 400", b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n".to_vec()),
        (
            "uri_too_long",
            "HTTP/1.1 414",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)).into_bytes(),
        ),
        (
            "headers_too_large",
            "HTTP/1.1 431",
            // More headers than the parser takes (a whole head, so nothing is left unread).
            format!(
                "GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n",
                (0..150).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
            )
            .into_bytes(),
        ),
    ];

    for (code, status, request) in cases {
        // Act
        let mut stream = TcpStream::connect(app.addr).await.expect("connect");
        // The server may answer and close before it has read everything.
        let _ = stream.write_all(&request).await;
        let answer = read_until_closed(&mut stream).await.unwrap_or_default();

        // Assert
        assert!(answer.starts_with(status), "{code}: {answer}");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        assert!(head.to_ascii_lowercase().contains("content-type: application/problem+json"), "{code}: {head}");
        let problem: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{code}: {e}: {body}"));
        assert_eq!(problem["code"], code, "{problem}");
    }
}
