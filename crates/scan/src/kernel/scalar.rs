//! Portable dot product: the reference every other kernel is tested against.
//!
//! Eight independent accumulators break the add dependency chain so the
//! compiler can keep several FMA/ADD units busy and vectorise the body.

/// Dot product of two equal-length slices.
///
/// # Panics
/// Debug builds assert that the lengths match; release builds use the shorter.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let tail_a = chunks_a.remainder();
    let tail_b = chunks_b.remainder();
    for (ca, cb) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += ca[i] * cb[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in tail_a.iter().zip(tail_b) {
        tail += x * y;
    }
    (acc[0] + acc[4]) + (acc[1] + acc[5]) + (acc[2] + acc[6]) + (acc[3] + acc[7]) + tail
}

/// `out[q * nr + r] = dot(row r, query q)` for a block of `nr` rows and
/// `nq` queries (see `F32Kernel::score_block`).
///
/// # Panics
/// If the lengths are not `nr × dim`, `nq × dim` and `nq × nr`.
pub fn score_block(rows: &[f32], queries: &[f32], dim: usize, out: &mut [f32]) {
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    let (nr, nq) = (rows.len() / dim, queries.len() / dim);
    assert!(rows.len() == nr * dim && queries.len() == nq * dim, "rows and queries must be whole dim-length vectors");
    assert_eq!(out.len(), nr * nq, "out must hold queries × rows scores");
    if nr == 0 {
        return;
    }
    for (query, scores) in queries.chunks_exact(dim).zip(out.chunks_exact_mut(nr)) {
        for (row, score) in rows.chunks_exact(dim).zip(scores) {
            *score = dot(row, query);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_an_f64_reference_for_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 15, 17, 383, 384, 385] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 37 % 11) as f32 - 5.0) / 7.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 13 % 17) as f32 - 8.0) / 9.0).collect();
            let want: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let got = dot(&a, &b) as f64;
            assert!((got - want).abs() < 1e-4, "n={n}: got {got}, want {want}");
        }
    }
}
