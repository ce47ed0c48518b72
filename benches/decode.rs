//! The loader's hot loop: decoding chatbot-format values into unit rows.
//!
//! Baseline in the same group: `serde_json` checking the same bytes' syntax
//! into `IgnoredAny` (no numbers converted, nothing stored), the floor any
//! JSON decoder must pay.
//!
//! `cargo bench --bench decode`
//!
//! Second group, a load's CPU per raw-f32 value (what `semsearch bench`
//! and the load harness store): `decode_into` alone, and with the row's
//! int8 code (`RowCode::quantize`, made per row while a load reads when the
//! snapshot will scan int8). Baseline in the same group: the bytes turned
//! into f32 and nothing else, the floor any decoder pays.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{rngs::StdRng, SeedableRng};
use semsearch::store::decode::decode_into;
use semsearch_scan::int8::RowCode;

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

fn raw_rows(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(SEED);
    let values: Vec<Vec<u8>> =
        (0..VALUES).map(|_| common::unit_vector(&mut rng).iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let mut group = c.benchmark_group("load_1000_raw_f32_values");
    group.throughput(Throughput::Bytes((VALUES * common::DIM * 4) as u64));
    let mut out: Vec<f32> = Vec::with_capacity(VALUES * common::DIM);
    group.bench_function("baseline_bytes_to_f32", |b| {
        b.iter(|| {
            out.clear();
            for v in &values {
                out.extend(v.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
            }
            std::hint::black_box(&out);
        })
    });
    group.bench_function("decode_into", |b| {
        b.iter(|| {
            out.clear();
            for v in &values {
                decode_into(v, &mut out).expect("valid value");
            }
        })
    });
    let mut codes: Vec<u8> = Vec::with_capacity(VALUES * common::DIM);
    group.bench_function("decode_into_and_quantize", |b| {
        b.iter(|| {
            out.clear();
            codes.clear();
            for v in &values {
                let before = out.len();
                decode_into(v, &mut out).expect("valid value");
                std::hint::black_box(RowCode::quantize(&out[before..], &mut codes));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, decode, raw_rows);
criterion_main!(benches);
