use std::{process::Command, time::Duration};

use serde_json::json;

use crate::helpers::{assert_problem, seed_corpus, spawn_app_with, test_settings, TestRedis};

#[tokio::test]
async fn starts_without_redis_and_becomes_ready_when_it_appears() {
    // Arrange: a snapshot with the corpus on disk, and Redis down when the service starts.
    let mut redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let () = redis::cmd("SAVE").query_async(&mut redis.conn().await).await.expect("SAVE");
    redis.kill();
    let app = spawn_app_with(test_settings(&redis)).await;

    // Act + Assert: not ready, with the reason, and search says so too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    let problem = assert_problem(app.get("/readyz").await, 503, "not_ready").await;
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("failed")), "{problem}");
    assert_problem(app.post_search(&json!({"vector": [1, 0]})).await, 503, "not_ready").await;

    // Redis comes back, loading the snapshot: the service loads it without a restart.
    redis.restart();
    app.wait_ready().await;
    assert_eq!(app.stats().await["documents"], 2000);
}

#[tokio::test]
async fn graceful_stop_returns_ok() {
    let redis = TestRedis::start();
    let app = spawn_app_with(test_settings(&redis)).await;
    app.wait_ready().await;

    let result = app.stop().await;

    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn help_lists_the_env_vars_but_not_the_password_value() {
    let out = Command::new(env!("CARGO_BIN_EXE_semsearch"))
        .arg("--help")
        .env("REDIS_PASSWORD", "hunter2-secret")
        .env("REDIS_URL", "redis://:hunter2-secret@localhost")
        .output()
        .expect("run semsearch --help");
    let help = String::from_utf8_lossy(&out.stdout);

    assert!(out.status.success());
    for var in ["REDIS_URL", "REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD", "SEMSEARCH_BIND", "SEMSEARCH_MAX_K"] {
        assert!(help.contains(var), "--help mentions {var}");
    }
    assert!(!help.contains("hunter2-secret"), "password leaked into --help:\n{help}");
}

#[test]
fn sigterm_stops_the_process_with_exit_code_0_and_no_password_in_logs() {
    // Arrange: a real process, against a Redis that needs a password.
    let mut redis = TestRedis::start();
    redis.restart_with(&["--requirepass", "hunter2-secret"]);
    let url = format!("redis+unix://{}?pass=hunter2-secret", redis.socket().display());

    // Act
    let out = serve_then_sigterm(&[("REDIS_URL", url.as_str()), ("RUST_LOG", "debug")]);

    // Assert
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "logs:\n{logs}");
    assert!(logs.contains("embeddings loaded"), "it authenticated and loaded:\n{logs}");
    assert!(!logs.contains("hunter2-secret"), "password leaked into logs:\n{logs}");
}

#[tokio::test]
async fn healthcheck_exits_0_when_ready_and_1_when_nothing_listens() {
    // Arrange
    let redis = TestRedis::start();
    let app = spawn_app_with(test_settings(&redis)).await;
    app.wait_ready().await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
    let run = |bind: String| {
        Command::new(env!("CARGO_BIN_EXE_semsearch")).args(["healthcheck", "--bind", &bind]).output().expect("run")
    };

    // Act
    let ready = tokio::task::spawn_blocking(move || run(app.addr.to_string())).await.expect("join");
    let nothing = run(free.to_string());

    // Assert
    assert_eq!(ready.status.code(), Some(0), "{}", String::from_utf8_lossy(&ready.stderr));
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("not ready"));
}

#[test]
fn forcing_a_kernel_the_cpu_lacks_stops_start_up_with_a_clear_error() {
    #[cfg(target_arch = "x86_64")]
    let foreign = "neon";
    #[cfg(not(target_arch = "x86_64"))]
    let foreign = "avx2";

    let out = Command::new(env!("CARGO_BIN_EXE_semsearch"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("SEMSEARCH_KERNEL", foreign)
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .output()
        .expect("run semsearch");

    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "start-up must fail:\n{stderr}");
    assert!(stderr.contains("SEMSEARCH_KERNEL") && stderr.contains("lacks"), "says why:\n{stderr}");
}

#[test]
fn a_forced_kernel_is_the_one_the_service_logs_at_start_up() {
    // Arrange: a real process with SEMSEARCH_KERNEL=scalar (every CPU has it).
    let redis = TestRedis::start();

    // Act
    let out = serve_then_sigterm(&[("SEMSEARCH_KERNEL", "scalar"), ("REDIS_URL", &redis.url()), ("RUST_LOG", "info")]);

    // Assert
    let logs = String::from_utf8_lossy(&out.stderr);
    let listening = logs.lines().find(|l| l.contains("semsearch listening")).unwrap_or_default();
    assert!(listening.contains("scalar"), "start-up line names the forced kernel:\n{logs}");
}

/// Runs `semsearch serve` on a free loopback port with `env`, lets it start
/// (0.8 s), sends SIGTERM and returns how it ended.
fn serve_then_sigterm(env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_semsearch"));
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        // Not about text search: keep the local model (if cached) out of start-up.
        .env("SEMSEARCH_MODEL_DIR", "/nonexistent/semsearch-model")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn semsearch");
    std::thread::sleep(Duration::from_millis(800));
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(killed.success(), "SIGTERM delivered");
    child.wait_with_output().expect("wait")
}
