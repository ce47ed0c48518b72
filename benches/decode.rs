//! The loader's hot loop: decoding chatbot-format values into unit rows.
//!
//! Baseline in the same group: `serde_json` checking the same bytes' syntax
//! into `IgnoredAny` (no numbers converted, nothing stored), the floor any
//! JSON decoder must pay.
//!
//! `cargo bench --bench decode`

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use semsearch::store::decode::decode_into;

const VALUES: usize = 1_000;
const SEED: u64 = 7;

fn decode(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let values: Vec<Vec<u8>> = (0..VALUES).map(|i| common::chatbot_value(i, &mut rng).into_bytes()).collect();
    let bytes: usize = values.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("decode_1000_chatbot_values");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("baseline_serde_syntax_only", |b| {
        b.iter(|| {
            for v in &values {
                let _: serde::de::IgnoredAny = serde_json::from_slice(v).expect("valid JSON");
            }
        })
    });
    let mut out = Vec::with_capacity(VALUES * common::DIM);
    group.bench_function("decode_into", |b| {
        b.iter(|| {
            out.clear();
            for v in &values {
                decode_into(v, &mut out).expect("valid value");
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
