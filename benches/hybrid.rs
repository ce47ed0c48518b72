//! What the lexical side of hybrid search costs (issue 21), each figure a
//! ratio of two measurements from the same run, on a corpus grown from the
//! real Portuguese dev corpus (`corpus-pt-dev.jsonl`: 2,506 pt_BR package
//! descriptions with their MiniLM vectors) to N documents.
//!
//! ```text
//! cargo bench --bench hybrid                    # N = 100_000 and 1_000_000
//! cargo bench --bench hybrid -- 100000          # one size
//! cargo bench --bench hybrid -- --write-corpus grown.jsonl 100000   # the corpus, for `semsearch seed`
//! ```
//!
//! Growing the corpus: document i is source document i mod 2,506 with each
//! word of its text kept with probability 0.8 and one word of another
//! document added per five, and its vector the source's plus Gaussian noise
//! (σ 0.02 per component), unit length: a realistic vocabulary, postings
//! and score spread, not copies.
//!
//! Parts (medians of paired, interleaved runs):
//! 1. **build**: `IndexBuilder::finish` + `with_scan(auto)` (the index as it
//!    was) against the same + `with_lexical` (analysing every title and text,
//!    postings, vector sums): the in-process part of every full load;
//! 2. **update**: `Index::apply` of one changed document, with and without
//!    the lexical side;
//! 3. **query**: the ranking of one Portuguese dev question, hybrid against
//!    vector (the embedding, made once beforehand, is the same for both), and
//!    lexical against vector (at 1M: the issue's "lexical-only query ÷ the
//!    int8 vector scan");
//! 4. **memory**: the lexical side's heap bytes per document, against the
//!    vectors (f32 rows and int8 copy) and the documents' metadata.

use std::{
    collections::HashSet,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use rand::{rngs::StdRng, Rng, SeedableRng};
use semsearch::{
    index::{lexical::LexicalSettings, unit::scale_to_unit, Document, IndexBuilder, LiveQuery},
    query::execute::{rank, FusionSource, Ranking},
};
use semsearch_lexical::{Language, Scorer};
use semsearch_scan::ScanMode;
use serde_json::Value;

#[path = "common/measure.rs"]
mod measure;
use measure::median;

const DIM: usize = 384;
/// Paired runs per figure (medians).
const PAIRS: usize = 15;
const BUILD_PAIRS: usize = 3;

fn shared_data() -> PathBuf {
    std::env::var_os("SEMSEARCH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"))
}

fn lines(name: &str) -> Vec<Value> {
    let path = shared_data().join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {} (set SEMSEARCH_SHARED_DATA): {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number") as f32).collect()
}

/// N documents grown from the Portuguese corpus (see the module doc), in id order.
fn corpus(n: usize, seed: u64) -> (Vec<Arc<Document>>, Vec<f32>) {
    let source = lines("corpus-pt-dev.jsonl");
    let words: Vec<Vec<&str>> =
        source.iter().map(|d| d["text"].as_str().unwrap_or("").split_whitespace().collect()).collect();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut docs = Vec::with_capacity(n);
    let mut rows = Vec::with_capacity(n * DIM);
    for i in 0..n {
        let s = i % source.len();
        let mut text = Vec::with_capacity(words[s].len() + 8);
        for w in &words[s] {
            if rng.random_bool(0.8) {
                text.push(*w);
            }
            if rng.random_bool(0.2) {
                let other = &words[rng.random_range(0..words.len())];
                if let Some(x) = other.get(rng.random_range(0..other.len().max(1))) {
                    text.push(x);
                }
            }
        }
        let mut v = floats(&source[s]["embedding"]);
        for x in &mut v {
            // Box-Muller: one normal per component.
            let (u1, u2): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            *x += (0.02 * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32;
        }
        scale_to_unit(&mut v).expect("a noisy unit vector is not zero");
        docs.push(Arc::new(Document {
            id: format!("https://help.example/pt-BR/articles/{i:08}").into(),
            title: source[s]["title"].as_str().map(Into::into),
            text: Some(text.join(" ").into()),
            ..Default::default()
        }));
        rows.extend_from_slice(&v);
    }
    (docs, rows)
}

fn builder(docs: &[Arc<Document>], rows: &[f32]) -> IndexBuilder {
    let mut b = IndexBuilder::new(DIM);
    b.reserve(docs.len());
    for (d, r) in docs.iter().zip(rows.chunks_exact(DIM)) {
        b.push(Arc::clone(d), r);
    }
    b
}

/// Medians of `a` and `b` run alternately `pairs` times, and their ratio b ÷ a.
fn paired(pairs: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration, f64) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        let t = Instant::now();
        a();
        ta.push(t.elapsed());
        let t = Instant::now();
        b();
        tb.push(t.elapsed());
    }
    let (ma, mb) = (median(ta), median(tb));
    (ma, mb, mb.as_secs_f64() / ma.as_secs_f64())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn run(n: usize) {
    println!("\n## N = {n} documents × {DIM}, SEMSEARCH_SCAN=auto, {} rayon threads", rayon::current_num_threads());
    let settings = Arc::new(LexicalSettings::new(Language::Portuguese));
    let (docs, rows) = corpus(n, 21);

    // 1. build
    let (without, with, ratio) = paired(
        BUILD_PAIRS,
        || drop(builder(&docs, &rows).finish().expect("sorted ids").with_scan(ScanMode::Auto)),
        || {
            drop(
                builder(&docs, &rows)
                    .finish()
                    .expect("sorted ids")
                    .with_scan(ScanMode::Auto)
                    .with_lexical(Arc::clone(&settings)),
            )
        },
    );
    println!("build (finish + int8 copy): without lexical {}, with {} → ratio {ratio:.2}", ms(without), ms(with));

    let plain = builder(&docs, &rows).finish().expect("sorted ids").with_scan(ScanMode::Auto);
    let index = builder(&docs, &rows)
        .finish()
        .expect("sorted ids")
        .with_scan(ScanMode::Auto)
        .with_lexical(Arc::clone(&settings));

    // 4. memory
    let lexical = index.lexical_bytes();
    let vectors = index.matrix_bytes() + index.int8_bytes();
    let metadata = index.metadata_bytes();
    println!(
        "memory: lexical {:.1} MB ({:.0} B/doc) against vectors {:.1} MB ({:.0} B/doc) + metadata {:.1} MB ({:.0} B/doc): lexical ÷ (vectors + metadata) = {:.2}",
        lexical as f64 / 1e6,
        lexical as f64 / n as f64,
        vectors as f64 / 1e6,
        vectors as f64 / n as f64,
        metadata as f64 / 1e6,
        metadata as f64 / n as f64,
        lexical as f64 / (vectors + metadata) as f64,
    );

    // 2. update: one rewritten document.
    let changed_id = docs[n / 2].id.to_string();
    let mut fresh = IndexBuilder::new(DIM);
    fresh.push(
        Arc::new(Document { text: Some("planilha eletrônica nova".into()), ..(*docs[n / 2]).clone() }),
        &rows[(n / 2) * DIM..][..DIM],
    );
    let fresh = fresh.finish().expect("one document");
    let changed: HashSet<&str> = [changed_id.as_str()].into_iter().collect();
    let (without, with, ratio) = paired(
        PAIRS,
        || drop(plain.apply(&fresh, &changed).expect("same dim")),
        || drop(index.apply(&fresh, &changed).expect("same dim")),
    );
    println!(
        "per-key update (apply one document): without lexical {}, with {} → ratio {ratio:.2}",
        ms(without),
        ms(with)
    );

    // 3. queries: the Portuguese dev questions, each ranked three ways.
    let questions = lines("queries-pt-dev.jsonl");
    let (mut vector_t, mut hybrid_t, mut lexical_t) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        for q in &questions {
            let vector = floats(&q["embedding"]);
            let terms = settings.analyzer.terms(q["query"].as_str().expect("query"));
            let live = LiveQuery { vector: &vector, k: 10, ..LiveQuery::default() };
            let t = Instant::now();
            drop(rank(&index, &live, &Ranking::Vector, 0));
            vector_t.push(t.elapsed());
            let t = Instant::now();
            // The statistics and scorer are part of a hybrid query's cost.
            let scorer = Scorer::new(terms.clone(), &index.corpus_stats(&terms), settings.params);
            drop(rank(&index, &live, &Ranking::Hybrid { scorer, fusion: FusionSource::Local { weight: None } }, 0));
            hybrid_t.push(t.elapsed());
            let t = Instant::now();
            let scorer = Scorer::new(terms.clone(), &index.corpus_stats(&terms), settings.params);
            drop(rank(&index, &live, &Ranking::Lexical { scorer }, 0));
            lexical_t.push(t.elapsed());
        }
    }
    let (v, h, l) = (median(vector_t), median(hybrid_t), median(lexical_t));
    println!(
        "ranking one question (p50 over {} runs): vector {} ({:?} scan), hybrid {} (÷ vector {:.2}), lexical {} (÷ vector {:.2})",
        PAIRS * questions.len(),
        ms(v),
        index.scan(),
        ms(h),
        h.as_secs_f64() / v.as_secs_f64(),
        ms(l),
        l.as_secs_f64() / v.as_secs_f64(),
    );
}

/// `--write-corpus PATH N`: the grown corpus as JSONL lines the way the
/// chatbot stores them (`title`, `url`, `text`, `embedding`), for `semsearch
/// seed`, so the end-to-end text figures (`semsearch bench --text-mode`) run
/// on the same documents as these in-process ones.
fn write_corpus(path: &str, n: usize) {
    use std::io::Write;
    let (docs, rows) = corpus(n, 21);
    let file = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {path}: {e}"));
    let mut out = std::io::BufWriter::new(file);
    for (d, r) in docs.iter().zip(rows.chunks_exact(DIM)) {
        let line =
            serde_json::json!({"title": d.title.as_deref(), "url": &*d.id, "text": d.text.as_deref(), "embedding": r});
        writeln!(out, "{line}").expect("write a corpus line");
    }
    out.flush().expect("flush the corpus");
    println!("wrote {n} documents to {path}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--write-corpus") {
        let path = args.get(at + 1).expect("--write-corpus PATH N");
        let n = args.get(at + 2).and_then(|n| n.parse().ok()).expect("--write-corpus PATH N");
        write_corpus(path, n);
        return;
    }
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect::<Vec<_>>();
    let sizes = if sizes.is_empty() { vec![100_000, 1_000_000] } else { sizes };
    println!("# cargo bench --bench hybrid (issue 21): the lexical side's costs, ratios from one run");
    for n in sizes {
        run(n);
    }
}
