use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use redis::aio::MultiplexedConnection;
use semsearch::{
    app::App,
    config::Settings,
    index::SharedIndex,
    tools::{redis_binary, redis_child::ChildRedis},
};
use semsearch_scan::ScanMode;
use serde_json::Value;
use tempfile::TempDir;

/// Where the shared real-embedding data lives (`../shared/data` beside the repo).
pub fn shared_data() -> PathBuf {
    std::env::var_os("SEMSEARCH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

/// A private `redis-server` on a unix socket in its own temp dir, no
/// persistence, killed on drop. Never the shared instance on 6379.
pub struct TestRedis {
    server: ChildRedis,
    // Dropped after `server`: the process is gone before its directory is removed.
    _dir: TempDir,
}

impl TestRedis {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("semsearch-redis").tempdir().expect("temp dir");
        let server = ChildRedis::start(dir.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
        Self { server, _dir: dir }
    }

    pub fn socket(&self) -> PathBuf {
        self.server.socket()
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Starts (again) with the given extra arguments, e.g. `--requirepass x`.
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.server.restart_with(extra).unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn restart(&mut self) {
        self.restart_with(&[]);
    }

    pub fn kill(&mut self) {
        self.server.kill();
    }

    /// A connection for arranging and checking: its response timeout is
    /// generous (redis-rs's 500 ms default timed out seeding the corpus and
    /// `SAVE` on a 2-core machine busy with other builds), and never a
    /// measure of anything.
    pub async fn conn(&self) -> MultiplexedConnection {
        let client = redis::Client::open(self.url()).expect("redis url");
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)));
        client.get_multiplexed_async_connection_with_config(&config).await.expect("connect to test redis")
    }

    /// `redis-cli MONITOR` in the background; returns the lines it saw on `stop`.
    pub fn monitor(&self) -> Monitor {
        let cli = &redis_binary::locate().unwrap_or_else(|e| panic!("{e}")).cli;
        let mut child = Command::new(cli)
            .arg("-s")
            .arg(self.socket())
            .arg("MONITOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli comes with the redis-server in use");
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("monitor lines").push(line);
            }
        });
        // MONITOR answers +OK once it is attached.
        for _ in 0..200 {
            if lines.lock().expect("monitor lines").iter().any(|l| l.contains("OK")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Monitor { child, lines }
    }
}

pub struct Monitor {
    child: Child,
    lines: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    pub fn stop(mut self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let lines = self.lines.lock().expect("monitor lines").clone();
        lines
    }
}

/// Loads `corpus-dev.jsonl` exactly as the chatbot stores it:
/// `SET cache:embedding:<url> <line> EX 86400`. Returns the number of documents.
pub async fn seed_corpus(conn: &mut MultiplexedConnection) -> usize {
    let text = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect(
        "read ../shared/data/corpus-dev.jsonl (set SEMSEARCH_SHARED_DATA to its folder if the repo is elsewhere)",
    );
    let mut pipe = redis::pipe();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let url = doc["url"].as_str().expect("corpus line has a url");
        pipe.cmd("SET").arg(format!("cache:embedding:{url}")).arg(line).arg("EX").arg(86400).ignore();
        n += 1;
    }
    let () = pipe.query_async(conn).await.expect("seed corpus");
    n
}

/// One query of `queries-dev.jsonl` with its exact top-10.
#[derive(serde::Deserialize)]
pub struct GroundTruth {
    pub query: String,
    pub embedding: Vec<f32>,
    pub top10: Vec<Expected>,
    pub gap_10_11: f64,
}

#[derive(serde::Deserialize)]
pub struct Expected {
    pub url: String,
    pub score: f64,
}

pub fn ground_truth() -> Vec<GroundTruth> {
    let text = std::fs::read_to_string(shared_data().join("queries-dev.jsonl")).expect("read queries-dev.jsonl");
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).expect("query line")).collect()
}

/// A running semsearch bound to a free loopback port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub index: Arc<SharedIndex>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        semsearch::telemetry::init("info,semsearch=debug", semsearch::telemetry::LogFormat::Pretty, false);
    }
}

/// Settings for a test: defaults, the private Redis, port 0 on loopback.
pub fn test_settings(redis: &TestRedis) -> Settings {
    let mut s = Settings::for_redis_url(&redis.url()).expect("test settings are valid");
    s.retry_max = Duration::from_millis(200);
    // Text search is on by default once the local model is in the cache
    // dir; tests that want it say so (tests/api/text.rs, embed_local.rs).
    s.embedder = None;
    s
}

/// Builds the real `App` from real `Settings` and runs it in the background.
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    init_test_logs();
    let app = App::build(settings).await.expect("app builds");
    run(app)
}

/// Runs an already built `App` in the background (for tests that need a
/// handle from it first, such as its search slots).
pub fn run(app: App) -> TestApp {
    init_test_logs();
    let addr = app.local_addr().expect("bound address");
    let index = app.shared_index();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    TestApp { addr, http: reqwest::Client::new(), index, stop: Some(stop), task: Some(task) }
}

/// Spawns the app against `redis` and waits until the first load is done.
pub async fn spawn_app(redis: &TestRedis) -> TestApp {
    let app = spawn_app_with(test_settings(redis)).await;
    app.wait_ready().await;
    app
}

/// One way of holding and scanning the index that must not change any
/// answer: every exactness test runs once per [`variants`] entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// `SEMSEARCH_SCAN`, forced (`auto` resolves to one of these).
    pub scan: ScanMode,
}

/// Every variant an exactness test runs with.
pub fn variants() -> Vec<Variant> {
    [ScanMode::F32, ScanMode::Int8].into_iter().map(|scan| Variant { scan }).collect()
}

/// Spawns the app against `redis` as `variant` asks and waits until ready.
pub async fn spawn_variant(redis: &TestRedis, variant: Variant) -> TestApp {
    let mut settings = test_settings(redis);
    settings.scan = variant.scan;
    let app = spawn_app_with(settings).await;
    app.wait_ready().await;
    let stats = app.stats().await;
    let want = if variant.scan == ScanMode::Int8 && stats["documents"].as_u64() > Some(0) { "int8" } else { "f32" };
    assert_eq!(stats["scan"]["active"], want, "{variant:?}: {}", stats["scan"]);
    app
}

/// A private Redis holding the dev corpus, and the app serving it as
/// `variant` asks.
pub async fn corpus_app(variant: Variant) -> (TestRedis, TestApp) {
    let redis = TestRedis::start();
    seed_corpus(&mut redis.conn().await).await;
    let app = spawn_variant(&redis, variant).await;
    (redis, app)
}

/// For an int8 variant: asserts some of the queries answered so far went
/// through the int8 pass (not all through its f32 fallbacks), so the test
/// really exercised the int8 scan.
pub async fn assert_int8_pass_used(app: &TestApp, variant: Variant) {
    if variant.scan != ScanMode::Int8 {
        return;
    }
    let scan = &app.stats().await["scan"];
    let fallbacks: u64 = ["query_out_of_range", "large_k", "too_many_candidates"]
        .iter()
        .filter_map(|r| scan["f32_fallbacks"][r].as_u64())
        .sum();
    let int8 = scan["int8_queries"].as_u64().unwrap_or(0);
    assert!(int8 > fallbacks, "{variant:?}: no query went through the int8 pass: {scan}");
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn post_search(&self, body: &Value) -> reqwest::Response {
        self.http.post(self.url("/v1/search")).json(body).send().await.expect("request sent")
    }

    /// POSTs raw bytes with the given content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.expect("request sent")
    }

    pub async fn stats(&self) -> Value {
        let res = self.get("/v1/stats").await;
        assert_eq!(res.status(), 200, "stats should be available");
        res.json().await.expect("stats JSON")
    }

    /// Polls `/readyz` (bounded: 30 s) until it answers 200.
    pub async fn wait_ready(&self) {
        for _ in 0..3000 {
            if self.get("/readyz").await.status() == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("semsearch did not become ready within 30 s");
    }

    /// Stops the server gracefully and returns how `run_until_stopped` ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.expect("app task did not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts an error response: status, problem+json content type, and `code`.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for expected code {code}");
    let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert_eq!(ct, "application/problem+json", "content type for {code}");
    let body: Value = res.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status);
    assert!(body["type"].as_str().is_some_and(|t| t.ends_with(code)), "type names the code: {body}");
    assert!(body["title"].is_string() && body["detail"].is_string(), "title and detail: {body}");
    body
}

/// Polls `check` every `every` until it returns `Some`, for at most
/// `patience`; the value and how long it took. Panics naming `what`.
pub async fn eventually_within<T, F, Fut>(
    what: &str,
    patience: std::time::Duration,
    every: std::time::Duration,
    mut check: F,
) -> (T, std::time::Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < patience {
        if let Some(v) = check().await {
            return (v, start.elapsed());
        }
        tokio::time::sleep(every).await;
    }
    panic!("timed out after {patience:?} waiting for: {what}");
}
