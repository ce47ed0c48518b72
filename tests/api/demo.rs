//! `semsearch demo` as a process: ready banner, working examples, and
//! nothing left running after Ctrl-C (SIGINT) or SIGTERM.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

/// What the ready banner told us.
struct Banner {
    base: String,
    redis_pid: u32,
    redis_dir: PathBuf,
    by_id_body: Value,
}

fn spawn_demo() -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_semsearch"))
        .arg("demo")
        .env("SEMSEARCH_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn semsearch demo");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Reads stdout until the last example (bounded: 120 s) and parses the banner.
fn read_banner(lines: &mpsc::Receiver<String>) -> Banner {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else { continue };
        seen.push(line.clone());
        if line.trim_start().starts_with("curl -s http") && line.ends_with("/v1/stats") {
            break;
        }
    }
    let text = seen.join("\n");
    let after = |marker: &str| -> &str {
        let start = text.find(marker).unwrap_or_else(|| panic!("banner has {marker:?}:\n{text}")) + marker.len();
        text[start..].split_whitespace().next().expect("a word after the marker")
    };
    let stats_line =
        seen.iter().find(|l| l.ends_with("/v1/stats")).unwrap_or_else(|| panic!("no stats example:\n{text}"));
    let base = stats_line.trim().trim_start_matches("curl -s ").trim_end_matches("/v1/stats").to_owned();
    let socket = PathBuf::from(after("socket "));
    let body_start = text.find("-d '").expect("a by-id example") + 4;
    let body_end = text[body_start..].find('\'').expect("closing quote") + body_start;
    Banner {
        base,
        redis_pid: after("pid ").trim_end_matches(',').parse().expect("numeric pid"),
        redis_dir: socket.parent().expect("socket in a dir").to_path_buf(),
        by_id_body: serde_json::from_str(&text[body_start..body_end]).expect("the example body is JSON"),
    }
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

async fn stops_cleanly_on(signal: &str) {
    // Arrange: a demo that answers the example it printed.
    let (mut child, lines) = spawn_demo();
    let banner = read_banner(&lines);
    assert!(process_exists(banner.redis_pid), "the demo's redis-server runs");
    assert!(banner.redis_dir.exists());
    let http = reqwest::Client::new();
    let res = http.post(format!("{}/v1/search", banner.base)).json(&banner.by_id_body).send().await.expect("search");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("JSON");
    assert_eq!(body["results"].as_array().map(Vec::len), Some(3), "{body}");
    let stats: Value =
        http.get(format!("{}/v1/stats", banner.base)).send().await.expect("stats").json().await.expect("JSON");
    assert_eq!(stats["documents"], json!(2000));

    // Act
    let sent = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("kill");

    // Assert
    assert!(sent.success());
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("the demo exits within 30 s");
    assert_eq!(status.code(), Some(0), "exit status after {signal}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_exists(banner.redis_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!process_exists(banner.redis_pid), "redis-server {} is still running after {signal}", banner.redis_pid);
    assert!(!banner.redis_dir.exists(), "{} was not removed", banner.redis_dir.display());
}

#[tokio::test]
async fn ctrl_c_stops_the_demo_its_redis_and_removes_the_temp_dir() {
    stops_cleanly_on("-INT").await;
}

#[tokio::test]
async fn sigterm_stops_the_demo_its_redis_and_removes_the_temp_dir() {
    stops_cleanly_on("-TERM").await;
}
