//! The in-process MiniLM embedder (`semsearch_minilm`, issue 11).
//!
//! Groups (criterion's time is per forward pass; `thrpt` is texts/s):
//! - `question`: one 10-word question, every kernel this CPU has × 1 or 2
//!   threads per pass (the threads decision in `EmbedderOptions`);
//! - `batch`: 1, 8 and 32 different questions in one pass, per text;
//! - `split`: the cost of each step for one question: tokenize, forward
//!   (encoder + mean pool + normalise), the whole `embed`, and `pool`: the
//!   same through the inference pool (queue, worker thread, oneshot) from
//!   an async caller, so `pool - embed` is the pool's overhead.
//!
//! First it prints the RSS growth from loading the model.
//!
//! Last, `http`: the whole text search through HTTP (the real `App` over a
//! private `redis-server` holding the 2,000 shared documents, the local
//! embedder, context writes on) under 8 concurrent clients, each question
//! new (a counter appended, so neither cache tier answers it); then the same
//! clients sending the vector of a question (no embedding), interleaved in
//! rounds. p50/p99 of each, printed beside numpy's forward pass measured in
//! the same run (the goal of issue 11: text search over HTTP faster than
//! numpy's forward pass alone).
//!
//! Then, if a Python with numpy is available (`SEMSEARCH_BENCH_PYTHON`, else
//! `python3`), `benches/embed_reference.py` times a plain numpy forward pass
//! (and onnxruntime when installed) on the same question in the same run,
//! with `OPENBLAS_CORETYPE`/`OPENBLAS_L2_SIZE` removed for that command only
//! so OpenBLAS picks its fastest kernels.
//!
//! Needs the model files: `SEMSEARCH_MODEL_DIR`, else the default cache dir.
//!
//! ```text
//! cargo bench --bench embed
//! cargo bench --bench embed -- question
//! ```

use std::{
    hint::black_box,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use semsearch::{app::App, config::Settings, tools::redis_child::ChildRedis};
use semsearch_minilm::{
    default_model_dir, BertKernel, EmbedderOptions, InferencePool, LocalEmbedder, PoolSettings, Scratch, Threads,
};

/// Ten words, 12 word pieces with [CLS] and [SEP]: a typical chatbot question.
const QUESTION: &str = "how do I download a file from the command line";
const BATCHES: [usize; 3] = [1, 8, 32];

fn model_dir() -> Option<PathBuf> {
    std::env::var_os("SEMSEARCH_MODEL_DIR").map(PathBuf::from).or_else(|| {
        let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        default_model_dir(xdg.as_deref(), home.as_deref())
    })
}

/// 32 distinct short questions (the dev queries are 2-8 words; these are 6-12).
fn questions() -> Vec<String> {
    let topics = [
        "download a file from the command line",
        "check the spelling of my documents",
        "play mp3 audio from the terminal",
        "run a relational database server locally",
        "convert images between formats in batch",
        "monitor network traffic on my server",
        "edit a PDF form without a browser",
        "back up my home directory every night",
    ];
    let starts = ["how do I", "what package can", "is there a tool to", "best way to"];
    starts.iter().flat_map(|s| topics.iter().map(move |t| format!("{s} {t}"))).collect()
}

fn load(dir: &Path, kernel: BertKernel, threads: Threads) -> LocalEmbedder {
    LocalEmbedder::load(dir, EmbedderOptions { threads, kernel: Some(kernel) }).expect("load the model")
}

fn benches(c: &mut Criterion) {
    let Some(dir) = model_dir().filter(|d| d.join("model.safetensors").is_file()) else {
        eprintln!("embed bench skipped: no model files (set SEMSEARCH_MODEL_DIR or run `semsearch model fetch`)");
        return;
    };
    report_load_rss(&dir);
    let best = BertKernel::detect();

    let mut group = c.benchmark_group("question");
    group.throughput(Throughput::Elements(1));
    for kernel in BertKernel::available() {
        for threads in [Threads::One, Threads::Two] {
            let e = load(&dir, kernel, threads);
            let batch = e.tokenize(&[QUESTION]).expect("tokenize");
            let mut scratch = Scratch::default();
            let id = BenchmarkId::new(kernel.name(), format!("{threads:?}").to_lowercase());
            group.bench_function(id, |b| b.iter(|| e.forward(black_box(&batch), &mut scratch).expect("forward")));
        }
    }
    group.finish();

    paired_threads_ratio(&dir, best);

    let questions = questions();
    let mut group = c.benchmark_group("batch");
    for threads in [Threads::One, Threads::Two] {
        let e = load(&dir, best, threads);
        for n in BATCHES {
            let batch = e.tokenize(&questions[..n]).expect("tokenize");
            let mut scratch = Scratch::default();
            group.throughput(Throughput::Elements(n as u64));
            let id = BenchmarkId::new(format!("{best}/{threads:?}").to_lowercase(), n);
            group.bench_function(id, |b| b.iter(|| e.forward(black_box(&batch), &mut scratch).expect("forward")));
        }
    }
    group.finish();

    let e = load(&dir, best, Threads::One);
    let mut group = c.benchmark_group("split");
    let mut scratch = Scratch::default();
    let batch = e.tokenize(&[QUESTION]).expect("tokenize");
    group.bench_function("tokenize", |b| b.iter(|| e.tokenize(black_box(&[QUESTION])).expect("tokenize")));
    group.bench_function("forward", |b| b.iter(|| e.forward(black_box(&batch), &mut scratch).expect("forward")));
    group.bench_function("embed", |b| b.iter(|| e.embed(black_box(&[QUESTION]), &mut scratch).expect("embed")));
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let pool = InferencePool::start(Arc::new(e), PoolSettings::default()).expect("pool");
    group.bench_function("pool", |b| {
        b.iter(|| rt.block_on(pool.embed(vec![black_box(QUESTION).to_owned()])).expect("pool embed"))
    });
    group.finish();

    run_python_reference(&dir);
    http_text_search(&dir);
}

/// Clients at once in the `http` part, as in issue 11.
const HTTP_CLIENTS: usize = 8;
/// Measured time per round and query kind; rounds alternate text and vector.
const HTTP_ROUND: Duration = Duration::from_secs(4);
const HTTP_ROUNDS: usize = 3;

/// See the module docs, `http`.
fn http_text_search(dir: &Path) {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/corpus-dev.jsonl");
    let Ok(lines) = std::fs::read_to_string(&corpus) else {
        eprintln!("http part skipped: no {}", corpus.display());
        return;
    };
    // `serve`'s own rule: the local model from SEMSEARCH_MODEL_DIR.
    std::env::set_var("SEMSEARCH_MODEL_DIR", dir);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let tmp = tempfile::tempdir().expect("temp dir");
        let redis = ChildRedis::start(tmp.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
        let client = redis::Client::open(redis.url()).expect("client");
        let mut c = client.get_multiplexed_async_connection().await.expect("connect");
        let mut pipe = redis::pipe();
        for line in lines.lines().filter(|l| !l.trim().is_empty()) {
            let doc: serde_json::Value = serde_json::from_str(line).expect("corpus line");
            let url = doc["url"].as_str().expect("url");
            pipe.cmd("SET").arg(format!("cache:embedding:{url}")).arg(line).ignore();
        }
        pipe.cmd("SET").arg("cache:processed_articles:quick").arg("[]").ignore();
        let () = pipe.query_async(&mut c).await.expect("seed");

        let settings = Settings::for_redis_url(&redis.url()).expect("settings");
        assert!(settings.embedder.is_some(), "the local embedder is on when the model files are present");
        let app = App::build(settings).await.expect("app");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().pool_max_idle_per_host(HTTP_CLIENTS).build().expect("client");
        let ready = Instant::now();
        while !http.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
            assert!(ready.elapsed() < Duration::from_secs(120), "not ready within 2 minutes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let search = format!("{base}/v1/search");
        let vector: Vec<f32> = {
            let body: serde_json::Value = http
                .post(format!("{base}/v1/embed"))
                .json(&serde_json::json!({"texts": [QUESTION]}))
                .send()
                .await
                .expect("embed")
                .json()
                .await
                .expect("JSON");
            serde_json::from_value(body["embeddings"][0].clone()).expect("one embedding")
        };

        let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let questions = Arc::new(questions());
        let (mut text, mut vec, mut errors) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..=HTTP_ROUNDS {
            for as_text in [true, false] {
                let mut tasks = Vec::new();
                for _ in 0..HTTP_CLIENTS {
                    let (http, search, counter, questions, vector) =
                        (http.clone(), search.clone(), Arc::clone(&counter), Arc::clone(&questions), vector.clone());
                    tasks.push(tokio::spawn(async move {
                        let (mut took, mut failed) = (Vec::new(), Vec::new());
                        let end = Instant::now() + HTTP_ROUND;
                        while Instant::now() < end {
                            let body = if as_text {
                                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                let q = format!("{} ({n})", questions[n % questions.len()]);
                                serde_json::json!({"text": q, "k": 10, "with_text": false})
                            } else {
                                serde_json::json!({"vector": vector, "k": 10, "with_text": false})
                            };
                            let t = Instant::now();
                            let res = http.post(&search).json(&body).send().await.expect("search");
                            let status = res.status();
                            let body = res.bytes().await.expect("body");
                            if status.is_success() {
                                took.push(t.elapsed());
                            } else {
                                failed.push(format!("{status} {}", String::from_utf8_lossy(&body)));
                            }
                        }
                        (took, failed)
                    }));
                }
                let mut took = Vec::new();
                for t in tasks {
                    let (ok, failed) = t.await.expect("client task");
                    took.extend(ok);
                    errors.extend(failed);
                }
                // Round 0 warms both paths up and is not counted.
                if round > 0 {
                    if as_text { text.extend(took) } else { vec.extend(took) }
                }
            }
        }
        let q = |xs: &mut Vec<Duration>, p: f64| {
            xs.sort();
            xs[((xs.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e3
        };
        let secs = (HTTP_ROUNDS as f64) * HTTP_ROUND.as_secs_f64();
        let (tn, vn) = (text.len(), vec.len());
        let (t50, t99, v50, v99) = (q(&mut text, 0.5), q(&mut text, 0.99), q(&mut vec, 0.5), q(&mut vec, 0.99));
        println!(
            "http text search, {HTTP_CLIENTS} clients, k = 10, every question new: p50 {t50:.2} ms, p99 {t99:.2} ms, {:.0} QPS ({tn} requests)",
            tn as f64 / secs
        );
        println!(
            "http vector search, same clients, interleaved: p50 {v50:.2} ms, p99 {v99:.2} ms, {:.0} QPS ({vn} requests)",
            vn as f64 / secs
        );
        println!("http text ÷ vector: p50 {:.2}, p99 {:.2}", t50 / v50, t99 / v99);
        println!("http failed requests: {}{}", errors.len(), errors.first().map_or(String::new(), |e| format!(" (first: {e})")));
        let _ = stop.send(());
        let _ = server.await;
    });
    // numpy's forward pass again, after the HTTP part, to bracket it.
    run_python_reference(dir);
}

/// One question with 1 and with 2 threads, interleaved run by run so a
/// shared machine's changing load hits both alike; prints the medians and
/// their ratio (the number the `EmbedderOptions` default rests on).
fn paired_threads_ratio(dir: &Path, kernel: BertKernel) {
    const RUNS: usize = 300;
    let one = load(dir, kernel, Threads::One);
    let two = load(dir, kernel, Threads::Two);
    let batch = one.tokenize(&[QUESTION]).expect("tokenize");
    let (mut s1, mut s2) = (Scratch::default(), Scratch::default());
    let (mut t1, mut t2) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for _ in 0..RUNS {
        let start = Instant::now();
        black_box(one.forward(&batch, &mut s1).expect("forward"));
        t1.push(start.elapsed());
        let start = Instant::now();
        black_box(two.forward(&batch, &mut s2).expect("forward"));
        t2.push(start.elapsed());
    }
    t1.sort();
    t2.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "paired {kernel} forward, one question: 1 thread p50 {:.3} ms p99 {:.3} ms; 2 threads p50 {:.3} ms p99 {:.3} ms; ratio (1/2) {:.2}",
        ms(t1[RUNS / 2]),
        ms(t1[RUNS * 99 / 100]),
        ms(t2[RUNS / 2]),
        ms(t2[RUNS * 99 / 100]),
        ms(t1[RUNS / 2]) / ms(t2[RUNS / 2])
    );
}

/// Resident set size of this process, in bytes (Linux `/proc/self/statm`).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Prints how much the resident set grows by loading the model once, next
/// to the size of `model.safetensors` (the issue's bar: at most 1.5×).
fn report_load_rss(dir: &Path) {
    let file = std::fs::metadata(dir.join("model.safetensors")).map(|m| m.len()).unwrap_or(0);
    let before = rss_bytes();
    let e = load(dir, BertKernel::detect(), Threads::One);
    let after = rss_bytes();
    if let (Some(before), Some(after)) = (before, after) {
        let growth = after.saturating_sub(before);
        println!(
            "RSS growth from loading the model: {:.1} MB for a {:.1} MB model.safetensors ({:.2}x); weights held {:.1} MB",
            growth as f64 / 1e6,
            file as f64 / 1e6,
            growth as f64 / file as f64,
            e.model_bytes() as f64 / 1e6
        );
    }
}

/// Times the numpy (and onnxruntime) forward passes in this same run.
fn run_python_reference(dir: &Path) {
    let python = std::env::var_os("SEMSEARCH_BENCH_PYTHON").unwrap_or_else(|| "python3".into());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/embed_reference.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg("--model-dir")
        .arg(dir)
        .arg("--question")
        .arg(QUESTION)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    match out {
        Ok(out) if out.status.success() => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Ok(out) => eprintln!("python reference skipped: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => eprintln!("python reference skipped: cannot run {python:?}: {e}"),
    }
}

criterion_group! {
    name = embed;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(embed);
