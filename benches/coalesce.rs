//! Coalescing concurrent single queries (`index::coalesce`) against
//! scanning each on its own (one `rayon::spawn` per query, awaited through
//! a oneshot), the way the API scanned before the coalescer.
//!
//! `c` client threads each send queries one after another and wait for
//! each answer. With `iter_custom`, criterion's *time* is therefore the
//! latency a client sees per query, and *thrpt* (elements = c) the total
//! queries per second. The goal: higher throughput at c = 8 without higher
//! latency at c = 1. After criterion's lines, each case prints a `ratio`
//! line from interleaved runs (medians), which is what the decision uses.
//!
//! ```text
//! cargo bench --bench coalesce
//! cargo bench --bench coalesce -- 100000x384/c8
//! ```

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use ndarray::Array2;
use rand::{rngs::SmallRng, SeedableRng};
use semsearch::index::{coalesce::Coalescer, Document, Index, LiveQuery, OwnedLiveQuery};
use semsearch_scan::Hit;

#[path = "common/measure.rs"]
mod measure;
use measure::unit_rows;

const SEED: u64 = 0xC0A1_E5CE;
const K: usize = 10;
const DIM: usize = 384;
/// The shared dev corpus size, and a memory-bound index.
const NS: [usize; 2] = [2_000, 100_000];
const CONCURRENCY: [usize; 2] = [1, 8];
/// Distinct queries cycled through by the clients.
const QUERIES: usize = 64;
/// Interleaved direct/coalesced runs behind each printed ratio.
const PAIRED_RUNS: usize = 25;

/// An index of `n` random unit rows without deadlines.
fn index(n: usize, rng: &mut SmallRng) -> Index {
    let matrix = Array2::from_shape_vec((n, DIM), unit_rows(n, DIM, rng)).expect("n × DIM");
    let docs = (0..n).map(|i| Arc::new(Document { id: format!("{i:08}").into(), ..Default::default() })).collect();
    Index::new(matrix, docs).expect("ids in order")
}

/// One query the way the API ran it before the coalescer: its own rayon job.
fn direct(index: &Arc<Index>, query: &[f32]) -> Vec<Hit> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (index, query) = (Arc::clone(index), query.to_vec());
    rayon::spawn(move || {
        let mut answers = index.search(&[LiveQuery { vector: &query, k: K, ..LiveQuery::default() }], 0);
        let _ = tx.send(answers.remove(0).hits);
    });
    futures::executor::block_on(rx).expect("scan answered")
}

/// `clients` threads each running `per_client` queries back to back; the
/// wall time of the whole run.
fn run(clients: usize, per_client: u64, queries: &[f32], one: &(dyn Fn(&[f32]) -> Vec<Hit> + Sync)) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            s.spawn(move || {
                for i in 0..per_client as usize {
                    let q = &queries[((c * 7 + i) % QUERIES) * DIM..][..DIM];
                    black_box(one(q));
                }
            });
        }
    });
    start.elapsed()
}

/// Whether the criterion filter (a substring of `coalesce/NxD/cC[/variant]`)
/// can match this case; the extra paired runs are skipped when it cannot.
fn wanted(name: &str) -> bool {
    std::env::args().skip(1).find(|a| !a.starts_with('-')).is_none_or(|f| name.contains(&f) || f.contains(name))
}

fn coalesce(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(SEED);
    for n in NS {
        let snapshot = Arc::new(index(n, &mut rng));
        let queries = unit_rows(QUERIES, DIM, &mut rng);
        let coalescer = Coalescer::new(256);
        let coalesced = |q: &[f32]| {
            let query = OwnedLiveQuery { vector: q.to_vec(), k: K, ..OwnedLiveQuery::default() };
            futures::executor::block_on(coalescer.search(Arc::clone(&snapshot), query, 0)).expect("scan answered").hits
        };
        let alone = |q: &[f32]| direct(&snapshot, q);
        for clients in CONCURRENCY {
            let name = format!("coalesce/{n}x{DIM}/c{clients}");
            if !wanted(&name) {
                continue;
            }
            let mut group = c.benchmark_group(&name);
            group.sampling_mode(SamplingMode::Flat).sample_size(20).measurement_time(Duration::from_secs(2));
            group.throughput(Throughput::Elements(clients as u64));
            group.bench_function(BenchmarkId::from_parameter("direct"), |b| {
                b.iter_custom(|iters| run(clients, iters, &queries, &alone))
            });
            group.bench_function(BenchmarkId::from_parameter("coalesced"), |b| {
                b.iter_custom(|iters| run(clients, iters, &queries, &coalesced))
            });
            group.finish();
            // Interleaved runs (direct, coalesced, direct, ...) so both see the same background load.
            let per_client = if n >= 100_000 { 4 } else { 100 };
            let (mut td, mut tc): (Vec<Duration>, Vec<Duration>) = (0..PAIRED_RUNS)
                .map(|_| (run(clients, per_client, &queries, &alone), run(clients, per_client, &queries, &coalesced)))
                .unzip();
            td.sort();
            tc.sort();
            let (d, co) = (td[PAIRED_RUNS / 2], tc[PAIRED_RUNS / 2]);
            let per_query = |t: Duration| t.as_secs_f64() * 1e6 / per_client as f64;
            println!(
                "ratio coalesce/{n}x{DIM}/c{clients}: latency direct {:.0} us, coalesced {:.0} us; throughput coalesced / direct = {:.2}x",
                per_query(d),
                per_query(co),
                d.as_secs_f64() / co.as_secs_f64(),
            );
        }
    }
}

criterion_group!(benches, coalesce);
criterion_main!(benches);
