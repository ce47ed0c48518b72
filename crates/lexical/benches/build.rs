//! Where building the lexical side of a full load goes: analysing every
//! title and text (on the rayon pool) against turning the analysed terms
//! into postings, on the Portuguese dev corpus grown to N documents (each
//! copy's text followed by the next source document's, so texts are ~0.9 KB,
//! and one token unique to the copy, so the vocabulary grows with N).
//!
//! ```text
//! cargo bench -p semsearch-lexical --bench build            # N = 100_000
//! cargo bench -p semsearch-lexical --bench build -- 200000
//! ```
//! Prints medians of a few runs and each stage's share; no goal is asserted.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use rayon::prelude::*;
use semsearch_lexical::{Analyzer, DocTerms, FieldsRef, Language, Postings};

const RUNS: usize = 3;

fn corpus() -> Vec<(String, String)> {
    let dir = std::env::var_os("SEMSEARCH_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let path = dir.join("corpus-pt-dev.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let field = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_owned();
            (field("title"), field("text"))
        })
        .collect()
}

/// This process's CPU time so far (user + system, every thread), from
/// /proc/self/stat; zero where that is not readable. CPU time is what a
/// shared, loaded machine distorts least.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; 100 ticks per second.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn main() {
    let n: usize =
        std::env::args().skip(1).find(|a| !a.starts_with('-')).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let source = corpus();
    let docs: Vec<(String, String)> = (0..n)
        .map(|i| {
            let (title, text) = &source[i % source.len()];
            let next = &source[(i + 1) % source.len()].1;
            (title.clone(), format!("{text} {next} copia{i}"))
        })
        .collect();
    let bytes: usize = docs.iter().map(|(a, b)| a.len() + b.len()).sum();
    let analyzer = Analyzer::new(Language::Portuguese);
    let (mut analyse, mut post, mut whole) = (Vec::new(), Vec::new(), Vec::new());
    let (mut analyse_cpu, mut post_cpu) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let c = cpu_time();
        let t = Instant::now();
        let terms: Vec<DocTerms> =
            docs.par_iter().map(|(title, text)| DocTerms::analyze(&analyzer, FieldsRef { title, text })).collect();
        analyse.push(t.elapsed());
        analyse_cpu.push(cpu_time().saturating_sub(c));
        let c = cpu_time();
        let t = Instant::now();
        let postings = Postings::from_terms(&terms);
        post.push(t.elapsed());
        post_cpu.push(cpu_time().saturating_sub(c));
        std::hint::black_box(postings);
        let t = Instant::now();
        let built = Postings::build(&analyzer, docs.par_iter().map(|(title, text)| FieldsRef { title, text }));
        whole.push(t.elapsed());
        std::hint::black_box(built);
    }
    let (a, p, w) = (median(analyse), median(post), median(whole));
    let (ac, pc) = (median(analyse_cpu), median(post_cpu));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "lexical build, N = {n}, {:.1} MB of title+text, {} threads",
        bytes as f64 / 1e6,
        rayon::current_num_threads()
    );
    println!("  stage                     wall ms     CPU ms   CPU share");
    println!("  analyse (parallel)   {:>11.1} {:>10.0} {:>9.1} %", ms(a), ms(ac), 100.0 * ms(ac) / ms(ac + pc));
    println!("  postings from terms  {:>11.1} {:>10.0} {:>9.1} %", ms(p), ms(pc), 100.0 * ms(pc) / ms(ac + pc));
    println!("  Postings::build      {:>11.1}", ms(w));
}
