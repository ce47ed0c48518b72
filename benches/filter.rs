//! Filtered search against unfiltered search over the same 100k × 384
//! matrix, in one run, so every result is a ratio on this shared machine.
//!
//! - `filtered/{pct}`: a query `among` the matching rows (the filtered
//!   scan, on the path it picks by selectivity) for 100%, 10%, 1% and 0.1%
//!   of rows matching, scattered at random, next to `unfiltered` (the same
//!   query over every row), k = 10, 2 threads.
//! - `cutover/{path}/{pct}`: the gather and skip paths forced
//!   (`Forced::filter_path`), at selectivities around the cut-over, to
//!   place `GATHER_BELOW`.
//!
//! After criterion's lines, `ratio` lines print the median of paired,
//! interleaved runs: filtered ÷ unfiltered, and gather ÷ skip.
//!
//! ```text
//! cargo bench --bench filter
//! cargo bench --bench filter -- filtered
//! cargo bench --bench filter -- cutover
//! ```

use std::{hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use rayon::ThreadPoolBuilder;
use roaring::RoaringBitmap;
use semsearch_scan::{filter::FilterPath, kernel, Forced, Matrix, ScanQuery, ScanRequest};

#[path = "common/measure.rs"]
mod measure;
use measure::{paired_medians, unit_rows};

const SEED: u64 = 0xF117_E125;
const N: usize = 100_000;
const DIM: usize = 384;
const K: usize = 10;
/// Fractions of rows matching in `filtered`.
const SELECTIVITIES: [f64; 4] = [1.0, 0.1, 0.01, 0.001];
/// Fractions of rows matching in `cutover`.
const CUTOVER: [f64; 7] = [0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0];
const PAIRED_REPS: usize = 41;

/// `query`'s top-k among `rows` (every row if `None`), through the scan's
/// entry, with what the bench forces.
fn scan(matrix: &[f32], query: &[f32], rows: Option<&RoaringBitmap>, forced: Forced) -> usize {
    let queries = [ScanQuery { vector: query, k: K, among: rows, ..ScanQuery::default() }];
    semsearch_scan::top_k(
        Matrix::new(matrix, DIM),
        &ScanRequest { queries: &queries, forced, ..ScanRequest::default() },
    )[0]
    .hits
    .len()
}

/// Each row independently with probability `p` (at least one row).
fn random_rows(p: f64, rng: &mut SmallRng) -> RoaringBitmap {
    let mut rows: RoaringBitmap = (0..N as u32).filter(|_| rng.random_bool(p)).collect();
    if rows.is_empty() {
        rows.insert(0);
    }
    rows
}

fn label(p: f64) -> String {
    format!("{}%", p * 100.0)
}

fn bench(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let matrix = unit_rows(N, DIM, &mut rng);
    let query = unit_rows(1, DIM, &mut rng);
    let pool = ThreadPoolBuilder::new().num_threads(2).build().expect("a 2-thread pool builds");
    let auto = Forced { kernel: Some(kernel::active()), ..Forced::default() };

    let sets: Vec<(f64, RoaringBitmap)> = SELECTIVITIES.iter().map(|&p| (p, random_rows(p, &mut rng))).collect();
    let mut group = c.benchmark_group("filtered");
    group.bench_function("unfiltered", |b| pool.install(|| b.iter(|| black_box(scan(&matrix, &query, None, auto)))));
    for (p, rows) in &sets {
        group.bench_with_input(BenchmarkId::from_parameter(label(*p)), rows, |b, rows| {
            pool.install(|| b.iter(|| black_box(scan(&matrix, &query, Some(rows), auto))))
        });
    }
    group.finish();
    for (p, rows) in &sets {
        let (f, u) = pool.install(|| {
            paired_medians(
                PAIRED_REPS,
                || {
                    black_box(scan(&matrix, &query, Some(rows), auto));
                },
                || {
                    black_box(scan(&matrix, &query, None, auto));
                },
            )
        });
        let path = FilterPath::choose(rows.len(), N);
        println!(
            "ratio filtered/{:<6} ÷ unfiltered: {:.3} ({path:?}, {f:?} vs {u:?})",
            label(*p),
            f.as_secs_f64() / u.as_secs_f64()
        );
    }

    let sets: Vec<(f64, RoaringBitmap)> = CUTOVER.iter().map(|&p| (p, random_rows(p, &mut rng))).collect();
    let mut group = c.benchmark_group("cutover");
    for (p, rows) in &sets {
        for path in [FilterPath::Gather, FilterPath::Skip] {
            group.bench_with_input(BenchmarkId::new(format!("{path:?}"), label(*p)), rows, |b, rows| {
                let forced = Forced { filter_path: Some(path), ..auto };
                pool.install(|| b.iter(|| black_box(scan(&matrix, &query, Some(rows), forced))))
            });
        }
    }
    group.finish();
    let (matrix, query) = (&matrix, &query);
    for (p, rows) in &sets {
        let run = |path| {
            let forced = Forced { filter_path: Some(path), ..auto };
            move || {
                black_box(scan(matrix, query, Some(rows), forced));
            }
        };
        let (g, s) = pool.install(|| paired_medians(PAIRED_REPS, run(FilterPath::Gather), run(FilterPath::Skip)));
        println!(
            "ratio cutover/{:<6} gather ÷ skip: {:.3} ({g:?} vs {s:?})",
            label(*p),
            g.as_secs_f64() / s.as_secs_f64()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
