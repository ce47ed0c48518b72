//! The forward pass's arithmetic, in safe portable Rust that LLVM vectorises.
//!
//! The hot functions are `#[inline(always)]`: the per-ISA wrappers in
//! [`super::kernel`] call them from `#[target_feature]` functions, so the
//! same source is compiled once with AVX-512, once with AVX2+FMA and once
//! with the baseline features (the portable kernel). Nothing here is
//! `unsafe`; the one piece LLVM would not keep in registers by itself, the
//! linear layer's register tile, comes from the ISA's [`Tiles`] impl.
//!
//! # Blocked layout
//! Activations of `rows × n` are stored *blocked*: `n / 32` column blocks,
//! each `rows × 32` contiguous (`[n / 32][rows][32]`). Two things follow:
//! a linear layer's output panels are disjoint contiguous slices, so two
//! threads can fill halves of one output without sharing memory; and with a
//! head size of 32, head `h` of Q, K or V *is* block `h`, contiguous.
//!
//! Weights of a linear layer (`[n][k]` in the file, as PyTorch stores them)
//! are packed once at load into panels `[n / 32][k][32]` (see
//! [`pack_panels`]), so a register tile streams each panel exactly once
//! per [`Tiles::MR`] rows, with no packing at run time.

/// Width of a column block and of a weight panel; also the head size the
/// attention code requires.
pub const BLOCK: usize = 32;

/// What a linear layer does to `x · Wᵀ + b` once a panel is computed
/// (while it is still in cache), instead of another pass over memory.
#[derive(Debug, Clone, Copy)]
pub enum Epilogue<'a> {
    /// Store as is (Q, K, V).
    Bias,
    /// Store `gelu(·)`, the exact erf form BERT's `"gelu"` means (intermediate layer).
    Gelu,
    /// Store `· + residual`, `residual` blocked like the output (attention and FFN outputs).
    Residual(&'a [f32]),
}

/// One linear layer over a range of whole output panels. All slices cover
/// the same panels: `weights` `p × k × 32`, `bias` `p × 32`, `y` (and a
/// residual) `p × rows × 32`.
#[derive(Debug)]
pub struct LinearArgs<'a> {
    /// Input, blocked `[k / 32][rows][32]`.
    pub x: &'a [f32],
    pub rows: usize,
    pub k: usize,
    pub weights: &'a [f32],
    pub bias: &'a [f32],
    pub epilogue: Epilogue<'a>,
    pub y: &'a mut [f32],
}

/// Packs `w` (`[n][k]`, row-major) into `n / 32` panels `[k][32]`.
///
/// # Panics
/// If `w.len() != n * k` or `n` is not a multiple of 32 (checked at load).
pub fn pack_panels(w: &[f32], n: usize, k: usize) -> Vec<f32> {
    assert!(w.len() == n * k && n.is_multiple_of(BLOCK), "pack_panels: {} values for {n} × {k}", w.len());
    let mut packed = vec![0.0; n * k];
    for (p, panel) in packed.chunks_exact_mut(k * BLOCK).enumerate() {
        for (kk, lane) in panel.chunks_exact_mut(BLOCK).enumerate() {
            for (j, v) in lane.iter_mut().enumerate() {
                *v = w[(p * BLOCK + j) * k + kk];
            }
        }
    }
    packed
}

/// One register tile of a linear layer: rows `r0..r0 + m` of one output
/// panel, `x · Wᵀ + b` only (the epilogue runs after, over the whole panel).
#[derive(Debug)]
pub struct TileArgs<'a> {
    /// Input, blocked `[k / 32][rows][32]`.
    pub x: &'a [f32],
    pub rows: usize,
    pub k: usize,
    pub r0: usize,
    /// One weight panel, `k × 32`.
    pub panel: &'a [f32],
    pub bias: &'a [f32; BLOCK],
    /// The panel's output, `rows × 32`; the tile writes rows `r0..r0 + m`.
    pub out: &'a mut [f32],
}

impl TileArgs<'_> {
    /// Whether the slices are long enough for `m` rows (the per-ISA tiles
    /// read through raw pointers and rely on this).
    pub fn fits(&self, m: usize) -> bool {
        self.k.is_multiple_of(BLOCK)
            && self.x.len() == self.rows * self.k
            && self.r0 + m <= self.rows
            && self.panel.len() == self.k * BLOCK
            && self.out.len() == self.rows * BLOCK
    }
}

/// A register-tile routine for one instruction set.
pub trait Tiles: Copy {
    /// Most rows one tile handles (as many as the ISA has accumulator registers for).
    const MR: usize;
    /// Computes `m ≤ MR` rows of one panel.
    fn tile(self, t: TileArgs<'_>, m: usize);
}

/// `y = epilogue(x · Wᵀ + b)` for the panels in `a`, [`Tiles::MR`] rows at a
/// time, then the epilogue over each finished panel.
///
/// # Panics
/// If the slice lengths disagree (a bug in `bert`, which sizes them).
#[inline(always)]
pub fn linear<T: Tiles>(a: LinearArgs<'_>, tiles: T) {
    let LinearArgs { x, rows, k, weights, bias, epilogue, y } = a;
    if rows == 0 {
        return;
    }
    let panel_len = k * BLOCK;
    let out_len = rows * BLOCK;
    let panels = weights.len() / panel_len;
    assert!(
        weights.len() == panels * panel_len
            && bias.len() == panels * BLOCK
            && y.len() == panels * out_len
            && x.len() == rows * k
            && k.is_multiple_of(BLOCK),
        "linear: inconsistent shapes"
    );
    for (p, (panel, out)) in weights.chunks_exact(panel_len).zip(y.chunks_exact_mut(out_len)).enumerate() {
        let b: &[f32; BLOCK] = bias[p * BLOCK..(p + 1) * BLOCK].try_into().expect("a 32-element range");
        let mut r0 = 0;
        while r0 < rows {
            let m = (rows - r0).min(T::MR);
            tiles.tile(TileArgs { x, rows, k, r0, panel, bias: b, out }, m);
            r0 += m;
        }
        match epilogue {
            Epilogue::Bias => {}
            Epilogue::Gelu => out.iter_mut().for_each(|v| *v = gelu(*v)),
            Epilogue::Residual(r) => {
                for (v, add) in out.iter_mut().zip(&r[p * out_len..(p + 1) * out_len]) {
                    *v += add;
                }
            }
        }
    }
}

/// The portable tile: plain Rust, `MR` rows, no FMA (a software `mul_add`
/// would be a library call per element).
#[derive(Debug, Clone, Copy)]
pub struct PortableTiles;

impl Tiles for PortableTiles {
    const MR: usize = 2;

    #[inline(always)]
    fn tile(self, t: TileArgs<'_>, m: usize) {
        match m {
            2 => portable_tile::<2>(t),
            _ => portable_tile::<1>(t),
        }
    }
}

#[inline(always)]
fn portable_tile<const M: usize>(t: TileArgs<'_>) {
    let mut acc = [*t.bias; M];
    let block_len = t.rows * BLOCK;
    for (kb, xblock) in t.x.chunks_exact(block_len).enumerate() {
        let wblock = &t.panel[kb * BLOCK * BLOCK..(kb + 1) * BLOCK * BLOCK];
        for (i, acc) in acc.iter_mut().enumerate() {
            let r = (t.r0 + i) * BLOCK;
            let xrow = &xblock[r..r + BLOCK];
            for (xv, w) in xrow.iter().zip(wblock.chunks_exact(BLOCK)) {
                for (a, wv) in acc.iter_mut().zip(w) {
                    *a += xv * wv;
                }
            }
        }
    }
    for (i, row) in acc.iter().enumerate() {
        let r = (t.r0 + i) * BLOCK;
        t.out[r..r + BLOCK].copy_from_slice(row);
    }
}

#[inline(always)]
fn mul_add<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// BERT's `"gelu"`: `x · Φ(x) = ½ x (1 + erf(x / √2))`, with [`erf`].
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf for f32, branch-free so it vectorises: a rational approximation on
/// [-4, 4] (beyond that erf is ±1 in f32); absolute error below 5e-7
/// (4.5e-7 measured against libm over [-6, 6] in the tests), which moves a
/// GELU output by at most 2.3e-7 · |x|: far under the fidelity bar.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.9546e-3;
    p = x2 * p + -1.609_603_3e-2;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329e-3;
    q = x2 * q + -1.426_474e-2;
    x * p / q
}

/// `e^x` for f32, branch-free so it vectorises: `2^n · e^r` with
/// `n = round(x / ln 2)`, `|r| ≤ ln 2 / 2` and a degree-7 Taylor polynomial
/// (relative error below 2e-7, checked in the tests). Inputs below -87 give
/// about 1e-38 instead of 0, which a softmax cannot tell apart.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5 · 2^23 rounds to the nearest integer
    // without a rounding instruction the baseline ISA lacks.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = r * (1.0 / 5040.0) + 1.0 / 720.0;
    p = r * p + 1.0 / 120.0;
    p = r * p + 1.0 / 24.0;
    p = r * p + 1.0 / 6.0;
    p = r * p + 0.5;
    p = r * p + 1.0;
    p = r * p + 1.0;
    let scale = f32::from_bits((((n as i32) + 127) as u32) << 23);
    p * scale
}

/// One head of self-attention over one sequence of `len` tokens:
/// `out = softmax(q kᵀ / √32) v`. All of `q`, `k`, `v`, `out` are `len × 32`.
#[derive(Debug)]
pub struct AttentionArgs<'a> {
    pub q: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub out: &'a mut [f32],
    /// Scratch of at least `32 × len`: K transposed, so scores vectorise over keys.
    pub k_t: &'a mut [f32],
    /// Scratch of at least `len`: one query's scores, then its weights.
    pub scores: &'a mut [f32],
}

/// See [`AttentionArgs`]. Padding never enters: the sequence is exactly its
/// tokens, which is what a padded batch with HF's additive mask computes
/// (a masked key's weight underflows to exactly 0 there).
///
/// # Panics
/// If the slice lengths disagree (a bug in `bert`).
#[inline(always)]
pub fn attention<const FMA: bool>(a: AttentionArgs<'_>) {
    let AttentionArgs { q, k, v, out, k_t, scores } = a;
    let len = q.len() / BLOCK;
    assert!(
        k.len() == len * BLOCK && v.len() == len * BLOCK && out.len() == len * BLOCK,
        "attention: inconsistent shapes"
    );
    let k_t = &mut k_t[..len * BLOCK];
    let scores = &mut scores[..len];
    for (j, key) in k.chunks_exact(BLOCK).enumerate() {
        for (d, &kv) in key.iter().enumerate() {
            k_t[d * len + j] = kv;
        }
    }
    let scale = 1.0 / (BLOCK as f32).sqrt();
    for (query, out_row) in q.chunks_exact(BLOCK).zip(out.chunks_exact_mut(BLOCK)) {
        scores.fill(0.0);
        for (d, &qd) in query.iter().enumerate() {
            for (s, &kv) in scores.iter_mut().zip(&k_t[d * len..(d + 1) * len]) {
                *s = mul_add::<FMA>(qd, kv, *s);
            }
        }
        let mut max = f32::NEG_INFINITY;
        for s in scores.iter_mut() {
            *s *= scale;
            max = max.max(*s);
        }
        let mut sum = 0.0;
        for s in scores.iter_mut() {
            *s = exp(*s - max);
            sum += *s;
        }
        let mut acc = [0.0f32; BLOCK];
        for (&w, value) in scores.iter().zip(v.chunks_exact(BLOCK)) {
            for (a, &vv) in acc.iter_mut().zip(value) {
                *a = mul_add::<FMA>(w, vv, *a);
            }
        }
        let inv = 1.0 / sum;
        for (o, a) in out_row.iter_mut().zip(acc) {
            *o = a * inv;
        }
    }
}

/// LayerNorm of every row of a blocked `rows × (32 · blocks)` matrix, in place:
/// `(x - mean) / √(var + eps) · gamma + beta`, biased variance, two passes.
pub fn layer_norm(x: &mut [f32], rows: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    let block_len = rows * BLOCK;
    for r in 0..rows {
        let row = |b: usize| r * BLOCK + b * block_len;
        let mut sum = 0.0;
        for b in 0..width / BLOCK {
            sum += x[row(b)..row(b) + BLOCK].iter().sum::<f32>();
        }
        let mean = sum / width as f32;
        let mut var = 0.0;
        for b in 0..width / BLOCK {
            var += x[row(b)..row(b) + BLOCK].iter().map(|v| (v - mean) * (v - mean)).sum::<f32>();
        }
        let inv = 1.0 / (var / width as f32 + eps).sqrt();
        for b in 0..width / BLOCK {
            let g = &gamma[b * BLOCK..(b + 1) * BLOCK];
            let be = &beta[b * BLOCK..(b + 1) * BLOCK];
            for ((v, g), be) in x[row(b)..row(b) + BLOCK].iter_mut().zip(g).zip(be) {
                *v = (*v - mean) * inv * g + be;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_is_within_5e7_of_libm_on_a_dense_grid() {
        let mut worst = (0.0f64, 0.0f32);
        for i in -60_000..=60_000 {
            let x = i as f32 * 1e-4;
            let err = (erf(x) as f64 - libm::erf(x as f64)).abs();
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(worst.0 <= 5e-7, "max |erf - libm::erf| = {} at x = {}", worst.0, worst.1);
    }

    #[test]
    fn erf_saturates_and_is_odd() {
        assert_eq!(erf(10.0), erf(4.0));
        assert!((erf(10.0) - 1.0).abs() <= 5e-7);
        assert_eq!(erf(-1.3), -erf(1.3));
        assert_eq!(erf(0.0), 0.0);
    }

    #[test]
    fn exp_has_relative_error_below_2e7_over_the_softmax_range() {
        let mut worst = (0.0f64, 0.0f32);
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let want = (x as f64).exp();
            let err = ((exp(x) as f64 - want) / want).abs();
            if err > worst.0 {
                worst = (err, x);
            }
        }
        assert!(worst.0 <= 2e-7, "max relative error {} at x = {}", worst.0, worst.1);
    }

    #[test]
    fn exp_of_very_negative_input_is_negligible_not_nan() {
        let e = exp(-1e30);
        assert!(e.is_finite() && (0.0..1e-37).contains(&e), "{e}");
    }

    #[test]
    fn pack_panels_puts_column_j_of_row_kk_at_panel_offset() {
        // w[n][k] with w[i][kk] = 1000 i + kk; n = 64 (two panels), k = 3.
        let (n, k) = (64, 3);
        let w: Vec<f32> = (0..n * k).map(|idx| (1000 * (idx / k) + idx % k) as f32).collect();

        let packed = pack_panels(&w, n, k);

        for i in 0..n {
            for kk in 0..k {
                let (p, j) = (i / BLOCK, i % BLOCK);
                assert_eq!(packed[p * k * BLOCK + kk * BLOCK + j], (1000 * i + kk) as f32, "i={i} kk={kk}");
            }
        }
    }
}
