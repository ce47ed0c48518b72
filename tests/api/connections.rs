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
