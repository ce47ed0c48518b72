//! What the timing benches repeat, written once: random unit rows, the
//! median, interleaved paired medians and the name filter. Each bench
//! includes this file with `#[path]` (as it does `floor.rs`) and uses only
//! part of it, hence the module-wide `dead_code` allowance.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rand::{rngs::SmallRng, Rng};
use rayon::prelude::*;

/// Scales `row` to unit length (a zero row stays NaN: random rows are not zero).
pub fn normalize(row: &mut [f32]) {
    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
    row.iter_mut().for_each(|x| *x /= norm);
}

/// `n` random unit rows of `dim` floats, row-major. Normalised in parallel:
/// the int8 bench asks for gigabytes.
pub fn unit_rows(n: usize, dim: usize, rng: &mut SmallRng) -> Vec<f32> {
    let mut m: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    m.par_chunks_mut(dim).for_each(normalize);
    m
}

/// The median (upper median for an even count) of timings or figures.
pub fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

/// Wall time of one call.
pub fn time(f: &mut dyn FnMut()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

/// Median wall times of `reps` runs each of `a` and `b`, interleaved
/// (a, b, a, b, ...) so both see the same background load on a shared
/// machine; the ratio of the two medians is what the goals are about.
pub fn paired_medians(reps: usize, mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let (ta, tb): (Vec<Duration>, Vec<Duration>) = (0..reps).map(|_| (time(&mut a), time(&mut b))).unzip();
    (median(ta), median(tb))
}

/// The bench filter, if any (the first free argument after `--bench`).
pub fn filter() -> Option<String> {
    std::env::args().skip(1).find(|a| !a.starts_with('-'))
}
