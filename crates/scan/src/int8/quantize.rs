//! Symmetric per-vector int8 quantization, and the norms the bound in
//! [`super::bound`] needs, rounded *up* so they stay bounds.
//!
//! A vector x (a row or a query) becomes codes c_i ∈ [-127, 127] and a
//! scale s = max|x_i| / 127 (an f32), with x̂ = s·c. Beside them we keep
//! upper bounds on ‖e‖ = ‖x − x̂‖, ‖x̂‖ and ‖x‖, computed in f64 and
//! rounded up to f32 by `norm_up`. Whatever codes come out, the residual
//! is measured from *those* codes and *that* scale, so the bound never
//! depends on the quantizer being good, only on its arithmetic being
//! accounted for.
//!
//! Clipping (a scale below max|x|/127, with codes saturating at ±127) was
//! tried on the shared MiniLM corpus with factors 0.5–0.9: every factor made
//! the mean ‖e‖ larger (0.0072 at 1.0, 0.020 at 0.9). MiniLM rows have a
//! few large coordinates, and clipping them costs more than the finer step
//! saves. So the scale is plain max|x_i| / 127.
//!
//! Vectors outside the *bounded range* (all entries finite and ‖x‖ = 0 or
//! 2^-39 ≤ ‖x‖ ≤ 2^39) get codes 0 and an infinite residual: the scan then
//! always rescores them, so they stay exact, only never skipped. The range
//! keeps every f32 product of the final score away from underflow and
//! overflow, which the proof needs.

/// Smallest nonzero norm the bound covers (2^-39).
pub(crate) const MIN_NORM: f64 = 1.0 / (1u64 << 39) as f64;
/// Largest norm the bound covers (2^39).
pub(crate) const MAX_NORM: f64 = (1u64 << 39) as f64;

/// Largest code magnitude: ±127, never -128 (the AVX2 kernel's sign trick
/// cannot negate -128, and symmetric codes keep x̂ = s·c symmetric).
const CODE_MAX: i32 = 127;

/// What the bound needs to know about one quantized vector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quantized {
    /// s in x̂ = s·c: exactly the value the codes were made with.
    pub scale: f32,
    /// ≥ ‖x − x̂‖; +inf when x is outside the bounded range.
    pub residual: f32,
    /// ≥ ‖x̂‖.
    pub code_norm: f32,
    /// ≥ ‖x‖; 0 only for the zero vector; +inf outside the bounded range.
    pub norm: f32,
}

impl Quantized {
    /// Whether x was in the bounded range (see the module doc).
    pub fn is_bounded(&self) -> bool {
        self.residual.is_finite()
    }
}

/// How a code is stored: `i8` as is (a query's codes), `u8` biased by 128
/// (a row's codes in the panels: the `u8 × i8` VNNI operand), so a row is
/// quantized straight into the form it is kept in.
pub(crate) trait Code: Copy {
    fn encode(code: i8) -> Self;
    fn decode(self) -> i8;
}

impl Code for i8 {
    fn encode(code: i8) -> Self {
        code
    }
    fn decode(self) -> i8 {
        self
    }
}

impl Code for u8 {
    fn encode(code: i8) -> Self {
        (code as u8) ^ 0x80
    }
    fn decode(self) -> i8 {
        (self ^ 0x80) as i8
    }
}

/// Quantizes `x` into `codes` (same length) and returns its scale and norms.
pub(crate) fn quantize<C: Code>(x: &[f32], codes: &mut [C]) -> Quantized {
    debug_assert_eq!(x.len(), codes.len());
    let d = x.len();
    let sum_sq = sum_of_squares(x);
    let norm = sum_sq.sqrt();
    // NaN (a non-finite entry) fails both tests.
    let zero = norm == 0.0;
    if zero || !(MIN_NORM..=MAX_NORM).contains(&norm) {
        codes.fill(C::encode(0));
        let unbounded = if zero { 0.0 } else { f32::INFINITY };
        return Quantized { scale: 0.0, residual: unbounded, code_norm: 0.0, norm: unbounded };
    }
    // max|x| ≥ ‖x‖/√d ≥ 2^-47 here, so the scale is a normal f32.
    let scale = max_abs(x) / 127.0;
    let s = f64::from(scale);
    // Any codes are correct (the residual is measured from them); these
    // are round-to-nearest up to the rounding of `inv`, computed without
    // a libm call. Two passes, codes then sums, so each loop vectorises
    // (one loop doing both ran ~35x a plain f32 copy, `--bench decode`).
    // In f32, clamped before the cast, so the loop is packed SIMD: |y|
    // stays below 127.5 and the truncation below cannot leave ±127.
    let inv = (1.0 / s) as f32;
    for (c, &v) in codes.iter_mut().zip(x) {
        let y = (v * inv).clamp(-CODE_MAX as f32, CODE_MAX as f32);
        // `as` truncates toward zero: add ±0.5 first.
        *c = C::encode((y + 0.5f32.copysign(y)) as i8);
    }
    let (mut residual_sq, mut code_sq) = ([0.0f64; LANES], [0.0f64; LANES]);
    let mut add = |i: usize, v: f32, c: C| {
        // s has 24 significant bits and |code| ≤ 127 has 7: exact in f64.
        let approx = s * f64::from(c.decode());
        let e = f64::from(v) - approx;
        residual_sq[i] += e * e;
        code_sq[i] += approx * approx;
    };
    let (mut xs, mut cs) = (x.chunks_exact(LANES), codes.chunks_exact(LANES));
    for (xc, cc) in (&mut xs).zip(&mut cs) {
        for (i, (&v, &c)) in xc.iter().zip(cc).enumerate() {
            add(i, v, c);
        }
    }
    for (i, (&v, &c)) in xs.remainder().iter().zip(cs.remainder()).enumerate() {
        add(i, v, c);
    }
    let (residual_sq, code_sq): (f64, f64) = (residual_sq.iter().sum(), code_sq.iter().sum());
    Quantized { scale, residual: norm_up(residual_sq, d), code_norm: norm_up(code_sq, d), norm: norm_up(sum_sq, d) }
}

/// Independent f64 accumulators: the sums below are in [`LANES`] lanes
/// so they vectorise; [`norm_up`]'s error bound holds for any order.
const LANES: usize = 8;

/// Σ x_i² in f64, in [`LANES`] interleaved accumulators: the sum
/// [`quantize`] bounds a norm from, and the one the index scales rows and
/// queries to unit length with (one sum, so both see the same bits).
#[inline]
pub fn sum_of_squares(x: &[f32]) -> f64 {
    sum_lanes(x, |v| f64::from(v) * f64::from(v))
}

/// The sum of `term(v)` over `x` in [`LANES`] interleaved accumulators.
#[inline]
fn sum_lanes(x: &[f32], term: impl Fn(f32) -> f64) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += term(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += term(v);
    }
    acc.iter().sum()
}

/// max |x_i| for finite `x`, in [`LANES`] running maxima (one chain of
/// `f32::max` waits on itself per element).
#[inline]
fn max_abs(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = if v.abs() > *a { v.abs() } else { *a };
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = if v.abs() > *a { v.abs() } else { *a };
    }
    acc.into_iter().fold(0.0, f32::max)
}

/// An f32 at least the Euclidean norm whose square was summed in f64 from
/// `d` terms.
///
/// Each term carries at most 2 roundings (the subtraction and the square;
/// products of an f32 and a code are exact), the sum at most d − 1 more
/// whatever the order (accumulators included),
/// the square root one more: the computed norm is within a factor
/// (1 ± (d + 3)·2^-53) of the true one (γ_{d+3} in Higham's notation, for
/// d·2^-53 ≪ 1). Multiplying by 1 + (d + 8)·2^-50, eight times that and
/// more than the multiplication's own rounding, then rounding up to f32,
/// gives a value ≥ the true norm.
pub(crate) fn norm_up(sum_sq: f64, d: usize) -> f32 {
    round_up(sum_sq.sqrt() * (1.0 + (d as f64 + 8.0) * (1.0 / (1u64 << 50) as f64)))
}

/// The smallest f32 ≥ `v` (for finite or +inf `v`): `as f32` rounds to
/// nearest, so step up once if that went below.
pub(crate) fn round_up(v: f64) -> f32 {
    let f = v as f32;
    if f64::from(f) < v {
        f.next_up()
    } else {
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_norm(x: &[f64]) -> f64 {
        // Compensation-free but in f64 on short, exactly representable data.
        x.iter().map(|v| v * v).sum::<f64>().sqrt()
    }

    #[test]
    fn codes_span_the_range_and_the_norms_are_upper_bounds() {
        let x: Vec<f32> = (0..384).map(|i| ((i * 7919 % 1013) as f32 / 1013.0 - 0.5) * 0.1).collect();
        let mut codes = vec![0i8; x.len()];

        let q = quantize(&x, &mut codes);

        assert_eq!(codes.iter().map(|c| c.unsigned_abs()).max(), Some(127), "the largest entry maps to ±127");
        assert!(codes.iter().all(|&c| c != i8::MIN));
        let s = f64::from(q.scale);
        let e: Vec<f64> = x.iter().zip(&codes).map(|(v, c)| f64::from(*v) - s * f64::from(*c)).collect();
        let xh: Vec<f64> = codes.iter().map(|c| s * f64::from(*c)).collect();
        let xs: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
        assert!(f64::from(q.residual) >= exact_norm(&e));
        assert!(f64::from(q.code_norm) >= exact_norm(&xh));
        assert!(f64::from(q.norm) >= exact_norm(&xs));
        // ...and tight: within a few f32 ulps.
        assert!(f64::from(q.residual) <= exact_norm(&e) * (1.0 + 1e-6));
        assert!(f64::from(q.norm) <= exact_norm(&xs) * (1.0 + 1e-6));
        // Each residual entry is at most half a step.
        assert!(e.iter().all(|e| e.abs() <= s / 2.0 * (1.0 + 1e-12)));
    }

    #[test]
    fn an_exactly_representable_vector_has_zero_residual() {
        let y: Vec<f32> = (-127..=127).map(|i| i as f32).collect(); // s = 1 exactly
        let mut codes = vec![0i8; y.len()];
        let q = quantize(&y, &mut codes);
        assert_eq!(q.scale, 1.0);
        assert_eq!(q.residual, 0.0);
        assert_eq!(codes.iter().map(|&c| f32::from(c)).collect::<Vec<_>>(), y);
    }

    #[test]
    fn zero_vectors_are_bounded_with_zero_norms() {
        let mut codes = vec![1i8; 5];
        let q = quantize(&[0.0, -0.0, 0.0, 0.0, 0.0], &mut codes);
        assert_eq!(q, Quantized { scale: 0.0, residual: 0.0, code_norm: 0.0, norm: 0.0 });
        assert!(q.is_bounded());
        assert_eq!(codes, vec![0; 5]);
    }

    #[test]
    fn vectors_outside_the_bounded_range_get_an_infinite_residual() {
        for x in [vec![1e-13f32, 0.0], vec![1e12, 1.0], vec![f32::NAN, 1.0], vec![f32::INFINITY, 0.0], vec![1e-30; 4]] {
            let mut codes = vec![5i8; x.len()];
            let q = quantize(&x, &mut codes);
            assert!(!q.is_bounded(), "{x:?}");
            assert_eq!(q.residual, f32::INFINITY, "{x:?}");
            assert!(codes.iter().all(|&c| c == 0), "{x:?}");
        }
        // The edges of the range are inside it.
        let mut codes = [0i8; 1];
        assert!(quantize(&[1e-11], &mut codes).is_bounded());
        assert!(quantize(&[5e11], &mut codes).is_bounded());
    }

    #[test]
    fn round_up_never_goes_below() {
        for v in [0.1f64, 1.0 / 3.0, 1e-40, 1e-46, 3.4e38, 1e39, 0.0, 2.0f64.powi(-149) * 0.3] {
            let r = round_up(v);
            assert!(f64::from(r) >= v, "{v} -> {r}");
            assert!(r == 0.0 || f64::from(r.next_down()) < v, "{v} -> {r} is not the smallest");
        }
    }
}
