use std::{
    io::{BufRead, BufReader},
    net::TcpListener,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{json, Value};

use crate::helpers::{seed_corpus, TestRedis};

const REQUIREPASS: &str = "Rq-pass-8d1f0c";
const ACL_PASSWORD: &str = "Acl-pass-77c2e9";

/// A loopback port free right now (the test Redis listens on it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The semsearch binary, its stderr collected line by line; killed on drop.
struct Semsearch {
    child: Child,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Semsearch {
    fn start(env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_semsearch"))
            .arg("serve")
            .env_clear()
            .env("SEMSEARCH_BIND", "127.0.0.1:0")
            .env("SEMSEARCH_MODEL_DIR", "/nonexistent/semsearch-model")
            .env("RUST_LOG", "debug")
            .env("SEMSEARCH_LOG_FORMAT", "json")
            .env("SEMSEARCH_RETRY_MAX_MS", "200")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the semsearch binary starts");
        let pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("stderr lines").push(line);
            }
        });
        Self { child, stderr }
    }

    fn logs(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr lines").clone()
    }

    /// The address from the "semsearch listening" log line (bounded wait).
    async fn addr(&self) -> String {
        for _ in 0..1000 {
            let found = self.logs().iter().find_map(|l| {
                let v: Value = serde_json::from_str(l).ok()?;
                (v["message"] == "semsearch listening").then(|| v["addr"].as_str().map(str::to_owned)).flatten()
            });
            if let Some(addr) = found {
                return addr;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no 'semsearch listening' line in:\n{}", self.logs().join("\n"));
    }
}

impl Drop for Semsearch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Redis with `requirepass` for the default user and an ACL user limited to `cache:*`.
fn redis_with_auth(port: u16) -> TestRedis {
    let mut redis = TestRedis::start();
    let port = port.to_string();
    let acl_password = format!(">{ACL_PASSWORD}");
    redis.restart_with(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--requirepass",
        REQUIREPASS,
        "--user",
        "semsearch",
        "on",
        &acl_password,
        "~cache:*",
        "&*",
        "+@all",
    ]);
    redis
}

#[tokio::test]
async fn acl_user_and_password_work_and_no_secret_reaches_logs_errors_or_stats() {
    // Arrange
    let port = free_port();
    let _redis = redis_with_auth(port);
    let client = redis::Client::open(format!("redis://:{REQUIREPASS}@127.0.0.1:{port}/")).expect("url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("default user authenticates");
    let docs = seed_corpus(&mut conn).await;
    let port_s = port.to_string();
    let good = Semsearch::start(&[
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PORT", &port_s),
        ("REDIS_USERNAME", "semsearch"),
        ("REDIS_PASSWORD", ACL_PASSWORD),
        ("SEMSEARCH_API_KEYS", "k-secret-1"),
    ]);
    let bad_url = format!("redis://semsearch:{REQUIREPASS}@127.0.0.1:{port}/");
    let refused = Semsearch::start(&[("REDIS_URL", &bad_url)]);
    let http = reqwest::Client::new();
    let base = format!("http://{}", good.addr().await);
    let refused_base = format!("http://{}", refused.addr().await);
    let mut ready = false;
    for _ in 0..1500 {
        if http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ready, "not ready:\n{}", good.logs().join("\n"));

    // Act
    let search = http
        .post(format!("{base}/v1/search"))
        .bearer_auth("k-secret-1")
        .header("x-request-id", "rid-7f3a91")
        .json(&json!({"text": "anything"}))
        .send()
        .await
        .expect("sent");
    let stats = http.get(format!("{base}/v1/stats")).bearer_auth("k-secret-1").send().await.expect("sent");
    let not_ready = http.get(format!("{refused_base}/readyz")).send().await.expect("sent");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    assert_eq!(search.status(), 422, "text search is off; the request still went through auth");
    assert_eq!(search.headers()["x-request-id"], "rid-7f3a91");
    let stats = stats.text().await.expect("stats body");
    let stats_json: Value = serde_json::from_str(&stats).expect("stats JSON");
    assert_eq!(stats_json["documents"], docs, "the ACL user read every cache:embedding:* key");
    assert_eq!(not_ready.status(), 503, "a wrong password never makes the server ready");
    let not_ready = not_ready.text().await.expect("problem body");
    let logs = [good.logs(), refused.logs()].concat().join("\n");
    for secret in [REQUIREPASS, ACL_PASSWORD, "k-secret-1"] {
        assert!(!logs.contains(secret), "{secret} in logs");
        assert!(!stats.contains(secret) && !not_ready.contains(secret), "{secret} in a response");
    }
    let request_line = good
        .logs()
        .into_iter()
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .find(|v| v.to_string().contains("rid-7f3a91"));
    let line = request_line.unwrap_or_else(|| panic!("no JSON log line carries the request id:\n{logs}"));
    assert_eq!(line["span"]["request_id"], "rid-7f3a91", "{line}");
    assert_eq!(line["span"]["route"], "/v1/search", "{line}");
}

/// `THP_enabled` of a running process, from /proc (Linux ≥ 6.x shows it).
fn thp_enabled(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("THP_enabled:")).map(|v| v.trim() == "1")
}

#[tokio::test]
async fn the_binary_runs_on_small_pages_unless_mimalloc_is_told_otherwise() {
    // Arrange: no Redis on the port; the server listens anyway and keeps retrying.
    let port = free_port().to_string();
    let env = [("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", port.as_str())];
    if thp_enabled(std::process::id()).is_none() {
        eprintln!("SKIPPED: this kernel's /proc/PID/status has no THP_enabled line");
        return;
    }

    // Act
    let small = Semsearch::start(&env);
    let huge = Semsearch::start(&[env[0], env[1], ("MIMALLOC_ALLOW_THP", "1")]);
    small.addr().await;
    huge.addr().await;

    // Assert: src/main.rs says why.
    assert_eq!(thp_enabled(small.child.id()), Some(false));
    assert_eq!(thp_enabled(huge.child.id()), Some(thp_enabled(std::process::id()) == Some(true)));
}
