//! Dot-product kernels, in cache: scalar (the baseline) against every SIMD
//! kernel this CPU supports, in the same group so each number is a ratio
//! from one run.
//!
//! Throughput is reported as elements = 2·rows·dim floating-point operations,
//! so criterion's "Gelem/s" reads as GFLOP/s, to compare with FMA peak
//! (cores × FMA pipes × lanes × 2 × clock).
//!
//! ```text
//! cargo bench --bench kernel                 # everything
//! cargo bench --bench kernel -- score_rows   # one group (dot, score_rows, score_block)
//! ```

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{rngs::SmallRng, Rng, SeedableRng};
use semsearch_scan::F32Kernel;
use std::hint::black_box;

const SEED: u64 = 0x5EED_CAFE;
const DIMS: [usize; 3] = [384, 768, 1536];
/// Rows per `score_rows` call in the block benchmark: the scan's own block
/// size (64) times 4, so the block (≤ 1.5 MiB) stays within L2.
const BLOCK_ROWS: usize = 256;
const TILE_ROWS: usize = 20;
const TILE_QUERIES: usize = 64;

fn random(n: usize, rng: &mut SmallRng) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}

fn dot(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut group = c.benchmark_group("dot");
    for dim in DIMS {
        let (a, b) = (random(dim, &mut rng), random(dim, &mut rng));
        group.throughput(Throughput::Elements(2 * dim as u64));
        for kernel in F32Kernel::available() {
            group.bench_with_input(BenchmarkId::new(kernel.name(), dim), &dim, |bench, _| {
                bench.iter(|| kernel.dot(black_box(&a), black_box(&b)))
            });
        }
    }
    group.finish();
}

fn score_rows(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut group = c.benchmark_group("score_rows");
    for dim in DIMS {
        let rows = random(BLOCK_ROWS * dim, &mut rng);
        let query = random(dim, &mut rng);
        let mut out = vec![0.0f32; BLOCK_ROWS];
        group.throughput(Throughput::Elements(2 * (BLOCK_ROWS * dim) as u64));
        for kernel in F32Kernel::available() {
            group.bench_with_input(BenchmarkId::new(kernel.name(), dim), &dim, |bench, _| {
                bench.iter(|| kernel.score_rows(black_box(&rows), black_box(&query), &mut out))
            });
        }
    }
    group.finish();
}

/// A batch tile: [`TILE_ROWS`] rows (the scan's L1 tile at D=384) against
/// [`TILE_QUERIES`] queries, the batch scan's inner step.
fn score_block(c: &mut Criterion) {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let mut group = c.benchmark_group("score_block");
    for dim in DIMS {
        let rows = random(TILE_ROWS * dim, &mut rng);
        let queries = random(TILE_QUERIES * dim, &mut rng);
        let mut out = vec![0.0f32; TILE_ROWS * TILE_QUERIES];
        group.throughput(Throughput::Elements(2 * (TILE_ROWS * TILE_QUERIES * dim) as u64));
        for kernel in F32Kernel::available() {
            group.bench_with_input(BenchmarkId::new(kernel.name(), dim), &dim, |bench, _| {
                bench.iter(|| kernel.score_block(black_box(&rows), black_box(&queries), dim, &mut out))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = dot, score_rows, score_block
}
criterion_main!(benches);
