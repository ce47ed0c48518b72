//! Exact top-k search against the cost of reading the matrix once.
//!
//! Every group holds its own baseline, so each result is a ratio from one
//! run on this noisy shared machine:
//! - `single/{n}x{dim}`: k=10, one query, every kernel (scalar first) on a
//!   1-thread and a 2-thread rayon pool, next to `read_floor`, which only
//!   sums the same matrix with the same threads and block size.
//! - `batch/{n}x{dim}`: 64 queries in one request (one pass over the
//!   matrix) against one query, both with the process kernel, on 1 and on
//!   2 threads;
//!   throughput is in queries per second.
//! - `threshold`: the calling thread alone against the matrix forced into
//!   two halves (`Forced::split`) on a 2-thread pool, on small matrices, to
//!   place `PARALLEL_MIN_FLOATS`.
//!
//! Every scan goes through the crate's one entry, `semsearch_scan::top_k`,
//! with what the group compares forced in the request.
//!
//! Timing loops run inside `pool.install`, so they measure the scan, not
//! the ~15 µs hand-off from the bench thread into the pool (the API pays
//! that hand-off once per request, through `index::coalesce`).
//!
//! The int8 scan (`SEMSEARCH_SCAN=int8`) has its own bench: `benches/int8.rs`.
//!
//! After criterion's lines each size prints `ratio` lines (medians of a few
//! extra timed runs): search ÷ read floor, and batch ÷ single throughput.
//!
//! ```text
//! cargo bench --bench search                      # all sizes (~several minutes)
//! cargo bench --bench search -- 100000x384        # one size (data is only generated for it)
//! cargo bench --bench search -- single            # one group, all sizes
//! cargo bench --bench search -- single/10000x     # one group prefix
//! cargo bench --bench search -- threshold
//! ```

use std::{hint::black_box, time::Duration};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use rand::{rngs::SmallRng, SeedableRng};
use rayon::{ThreadPool, ThreadPoolBuilder};

#[path = "common/floor.rs"]
mod floor;
#[path = "common/measure.rs"]
mod measure;
use floor::read_floor;
use measure::{filter, paired_medians, unit_rows};
use semsearch_scan::{kernel, F32Kernel, Forced, Matrix, ScanAnswer, ScanQuery, ScanRequest, Split};

const SEED: u64 = 0x5EED_5EA4;
const K: usize = 10;
const BATCH: usize = 64;
const NS: [usize; 3] = [10_000, 100_000, 1_000_000];
const DIMS: [usize; 3] = [384, 768, 1536];
/// Sizes whose matrix is larger than this are skipped (1M × 1536 = 6.1 GB).
const MAX_MATRIX_BYTES: usize = 6_000_000_000;
/// Rows of the `threshold` group at D = 384 (24k .. 3.1M floats).
const THRESHOLD_ROWS: [usize; 8] = [64, 128, 256, 512, 1024, 2048, 4096, 8192];
const THRESHOLD_DIM: usize = 384;

/// One request through the scan's entry, with what the bench forces.
fn scan(matrix: &[f32], dim: usize, queries: &[ScanQuery<'_>], forced: Forced) -> Vec<ScanAnswer> {
    semsearch_scan::top_k(Matrix::new(matrix, dim), &ScanRequest { queries, forced, ..ScanRequest::default() })
}

/// The process kernel or `kernel`, and nothing else, forced.
fn with_kernel(kernel: F32Kernel) -> Forced {
    Forced { kernel: Some(kernel), ..Forced::default() }
}

fn pool(threads: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(threads).build().expect("a rayon pool of 1 or 2 threads builds")
}

/// Whether any benchmark of `tag` (`group/NxD`) could match the filter, so
/// gigabytes of data are only generated for sizes that will run. Filters
/// are taken as substrings of `group/NxD[/kernel/threads]`.
fn wanted(tag: &str) -> bool {
    filter().is_none_or(|f| tag.contains(&f) || f.contains(tag))
}

fn sizes() -> impl Iterator<Item = (usize, usize)> {
    NS.into_iter().flat_map(|n| DIMS.into_iter().map(move |d| (n, d))).filter(|(n, d)| n * d * 4 <= MAX_MATRIX_BYTES)
}

/// Samples and time per size: big matrices take ~0.1-1 s per scan.
fn tune(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, bytes: usize) {
    group.sampling_mode(SamplingMode::Flat);
    if bytes >= 1 << 30 {
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    } else if bytes >= 100 << 20 {
        group.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    } else {
        group.sample_size(20).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    }
}

fn single(c: &mut Criterion) {
    let pools = [(1, pool(1)), (2, pool(2))];
    let mut rng = SmallRng::seed_from_u64(SEED);
    for (n, dim) in sizes() {
        let tag = format!("{n}x{dim}");
        if !wanted(&format!("single/{tag}")) {
            continue;
        }
        let matrix = unit_rows(n, dim, &mut rng);
        let query = unit_rows(1, dim, &mut rng);
        let one = [ScanQuery { vector: &query, k: K, ..ScanQuery::default() }];
        let bytes = matrix.len() * 4;
        let mut group = c.benchmark_group(format!("single/{tag}"));
        tune(&mut group, bytes);
        group.throughput(Throughput::Bytes(bytes as u64));
        for (threads, pool) in &pools {
            group.bench_function(BenchmarkId::new("read_floor", format!("{threads}t")), |b| {
                pool.install(|| b.iter(|| read_floor(black_box(&matrix))))
            });
            for kernel in F32Kernel::available() {
                group.bench_function(BenchmarkId::new(kernel.name(), format!("{threads}t")), |b| {
                    pool.install(|| b.iter(|| scan(black_box(&matrix), dim, &one, with_kernel(kernel))))
                });
            }
        }
        group.finish();
        let best = kernel::active();
        for (threads, pool) in &pools {
            let reps = if bytes >= 1 << 30 { 5 } else { 21 };
            let (floor, scan) = pool.install(|| {
                paired_medians(
                    reps,
                    || {
                        let _ = black_box(read_floor(&matrix));
                    },
                    || {
                        let _ = black_box(scan(&matrix, dim, &one, with_kernel(best)));
                    },
                )
            });
            println!(
                "ratio single/{tag} {threads}t {}: search {:.3} ms / read floor {:.3} ms = {:.2}  ({:.1} GB/s, {:.1} GFLOP/s)",
                best.name(),
                scan.as_secs_f64() * 1e3,
                floor.as_secs_f64() * 1e3,
                scan.as_secs_f64() / floor.as_secs_f64(),
                bytes as f64 / scan.as_secs_f64() / 1e9,
                2.0 * (n * dim) as f64 / scan.as_secs_f64() / 1e9,
            );
        }
    }
}

fn batch(c: &mut Criterion) {
    let pools = [(1, pool(1)), (2, pool(2))];
    let mut rng = SmallRng::seed_from_u64(SEED ^ 1);
    for (n, dim) in sizes() {
        let tag = format!("{n}x{dim}");
        if !wanted(&format!("batch/{tag}")) {
            continue;
        }
        let matrix = unit_rows(n, dim, &mut rng);
        let queries = unit_rows(BATCH, dim, &mut rng);
        let batch: Vec<ScanQuery<'_>> =
            queries.chunks_exact(dim).map(|q| ScanQuery { vector: q, k: K, ..ScanQuery::default() }).collect();
        let best = kernel::active();
        let mut group = c.benchmark_group(format!("batch/{tag}"));
        tune(&mut group, matrix.len() * 4 * 4);
        for (threads, pool) in &pools {
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::new("single", format!("{threads}t")), |b| {
                pool.install(|| b.iter(|| scan(black_box(&matrix), dim, &batch[..1], with_kernel(best))))
            });
            group.throughput(Throughput::Elements(BATCH as u64));
            group.bench_function(BenchmarkId::new(format!("batch{BATCH}"), format!("{threads}t")), |b| {
                pool.install(|| b.iter(|| scan(black_box(&matrix), dim, &batch, with_kernel(best))))
            });
        }
        group.finish();
        let reps = if matrix.len() * 4 >= 1 << 30 { 3 } else { 11 };
        for (threads, pool) in &pools {
            let (one, many) = pool.install(|| {
                paired_medians(
                    reps,
                    || {
                        let _ = black_box(scan(&matrix, dim, &batch[..1], with_kernel(best)));
                    },
                    || {
                        let _ = black_box(scan(&matrix, dim, &batch, with_kernel(best)));
                    },
                )
            });
            let qps_one = 1.0 / one.as_secs_f64();
            let qps_many = BATCH as f64 / many.as_secs_f64();
            println!(
                "ratio batch/{tag} {threads}t {}: batch{BATCH} {qps_many:.0} q/s / single {qps_one:.0} q/s = {:.1}x  ({:.1} GFLOP/s)",
                best.name(),
                qps_many / qps_one,
                2.0 * (BATCH * n * dim) as f64 / many.as_secs_f64() / 1e9,
            );
        }
    }
}

fn threshold(c: &mut Criterion) {
    if !wanted("threshold") {
        return;
    }
    let pool2 = pool(2);
    let mut rng = SmallRng::seed_from_u64(SEED ^ 2);
    let best = kernel::active();
    let mut group = c.benchmark_group("threshold");
    group.sample_size(30).warm_up_time(Duration::from_millis(200)).measurement_time(Duration::from_millis(800));
    for rows in THRESHOLD_ROWS {
        let matrix = unit_rows(rows, THRESHOLD_DIM, &mut rng);
        let query = unit_rows(1, THRESHOLD_DIM, &mut rng);
        let one = [ScanQuery { vector: &query, k: K, ..ScanQuery::default() }];
        let floats = matrix.len();
        for (label, parallel) in [("sequential", false), ("parallel", true)] {
            // Two halves: the best a 2-thread split can do on a small matrix.
            let split = Split { block_rows: rows.div_ceil(2), parallel };
            let forced = Forced { split: Some(split), ..with_kernel(best) };
            group.bench_function(BenchmarkId::new(label, floats), |b| {
                pool2.install(|| b.iter(|| scan(black_box(&matrix), THRESHOLD_DIM, &one, forced)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, single, batch, threshold);
criterion_main!(benches);
