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
/// `nq` queries (see `Kernel::score_block`).
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

/// IEEE 754 binary16 bits to f32 (exact: every f16 is an f32).
#[inline]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // Zero or subnormal: man × 2^-24, exact in f32.
            let v = man as f32 * (1.0 / 16_777_216.0);
            if sign == 0 {
                v
            } else {
                -v
            }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// f32 to IEEE 754 binary16 bits, rounding to nearest, ties to even (the
/// hardware's `vcvtps2ph` default). Overflow becomes ±inf, NaN stays NaN.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let man = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if man == 0 { 0 } else { 0x200 };
    }
    let e = exp - 112; // re-biased exponent (127 → 15)
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    let (kept, dropped, shift) = if e <= 0 {
        // Subnormal in f16: m = round(M × 2^(exp - 126)), M with its implicit bit.
        let shift = (126 - exp) as u32;
        if shift >= 25 {
            return sign;
        }
        let m = man | 0x80_0000;
        (m >> shift, m & ((1 << shift) - 1), shift)
    } else {
        ((e as u32) << 10 | (man >> 13), man & 0x1fff, 13)
    };
    let halfway = 1u32 << (shift - 1);
    let round_up = dropped > halfway || (dropped == halfway && kept & 1 == 1);
    // A carry out of the mantissa correctly bumps the exponent (up to inf).
    sign | (kept + u32::from(round_up)) as u16
}

/// `out[i] = dot(row i, query)` with rows stored as f16 bits (see
/// `search::half`); each element is widened to f32 before multiplying.
///
/// # Panics
/// If `rows.len() != out.len() * query.len()`.
pub fn score_rows_f16(rows: &[u16], query: &[f32], out: &mut [f32]) {
    let dim = query.len();
    assert_eq!(rows.len(), out.len() * dim, "rows must be out.len() × query.len()");
    if dim == 0 {
        out.fill(0.0);
        return;
    }
    for (row, score) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        let mut acc = [0.0f32; 8];
        let (row_chunks, query_chunks) = (row.chunks_exact(8), query.chunks_exact(8));
        let tail: f32 =
            row_chunks.remainder().iter().zip(query_chunks.remainder()).map(|(h, q)| f16_to_f32(*h) * q).sum();
        for (r, q) in row_chunks.zip(query_chunks) {
            for i in 0..8 {
                acc[i] += f16_to_f32(r[i]) * q[i];
            }
        }
        *score = acc.iter().sum::<f32>() + tail;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_f16_survives_a_round_trip_through_f32() {
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                assert!(f16_to_f32(f32_to_f16(x)).is_nan(), "{h:#06x}");
            } else {
                assert_eq!(f32_to_f16(x), h, "{h:#06x} -> {x}");
            }
        }
    }

    #[test]
    fn f16_rounding_is_nearest_even_within_half_an_ulp() {
        // Between two neighbouring f16 values, the midpoint rounds to the even one.
        let (a, b) = (f16_to_f32(0x3c00), f16_to_f32(0x3c01)); // 1.0 and 1 + 2^-10
        assert_eq!(f32_to_f16((a + b) / 2.0), 0x3c00);
        let (c, d) = (f16_to_f32(0x3c01), f16_to_f32(0x3c02));
        assert_eq!(f32_to_f16((c + d) / 2.0), 0x3c02);
        for i in 0..10_000u32 {
            let x = (i as f32 * 0.618_034).sin() * 2.0;
            let back = f16_to_f32(f32_to_f16(x));
            let tolerance = (x.abs() * 2f32.powi(-11)).max(2f32.powi(-25));
            assert!((back - x).abs() <= tolerance, "{x} -> {back}");
        }
        assert_eq!(f32_to_f16(1e6), 0x7c00, "overflow is inf");
        assert_eq!(f32_to_f16(-1e-9), 0x8000, "underflow keeps the sign");
    }

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
