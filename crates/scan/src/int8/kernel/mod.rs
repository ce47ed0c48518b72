//! Integer dot-product kernels over int8 codes in panel layout, and the
//! once-per-process choice between them.
//!
//! # Panel layout (the one place it is defined)
//! Rows are stored in *panels* of [`PANEL_ROWS`] = 16 rows. Inside a panel,
//! dimensions go in groups of [`GROUP`] = 4 bytes, and each group holds
//! those 4 bytes of all 16 rows, row after row: 64 bytes, one AVX-512
//! register. Byte `t` of row `i` is at [`code_offset`]. The row length is
//! padded to `dim4` (a multiple of 4) with code 0, and the row count to a
//! multiple of 16 with all-zero rows.
//!
//! Codes are stored *biased*: the byte is `code + 128` (so code 0 is 128).
//! AVX-512 VNNI's `vpdpbusd` multiplies unsigned by signed bytes, so the
//! biased rows are its unsigned operand with no per-row work, and the bias
//! costs one subtraction of `128 × Σ query` per query. The other kernels
//! undo the bias with one XOR.
//!
//! Why panels: one 64-byte load holds 4 dimensions of 16 rows, and one
//! broadcast holds those 4 dimensions of the query, so a single
//! multiply-add updates 16 rows' sums in 16 lanes. The scores come out of
//! the accumulator already one row per lane: no horizontal reduction per
//! row, which in a row-major layout costs as much as the dot product itself
//! at D = 384.
//!
//! Every kernel returns the exact integer dot product (no rounding, no
//! saturation: see each kernel's doc), so all kernels agree bit for bit and
//! the choice of kernel never changes a search result.
//!
//! Preconditions every kernel relies on for *correct values* (memory safety
//! never depends on them): query codes lie in [-127, 127] (AVX2's sign trick
//! cannot negate -128), and `dim4 <= MAX_DIM4` so no i32 sum can overflow.

/// Walks `np` panels × `nq` queries in `P × Q` register tiles: the loop
/// every SIMD kernel shares, so each kernel file holds only its tile and
/// its store. The last tile of panels or queries is padded by repeating the
/// last one (its extra results are not stored).
///
/// - `tile: |pp, qp| expr`: P panel pointers and Q query pointers (each
///   the start of a whole panel or query) → `[[acc; P]; Q]`;
/// - `prepare: |query| expr`: once per query per tile row, from its `dim4`
///   codes (VNNI's bias; `()` for the others);
/// - `store: |dst, acc, prepared| expr`: writes one panel's 16 scores.
///
/// Used inside the kernels' `#[target_feature]` functions, so the tile and
/// store inline with those features (a macro, like the f32 `walk_tiles!`,
/// not a generic function the compiler might not inline).
macro_rules! walk_panels {
    (
        $P:expr, $Q:expr, $panels:expr, $np:expr, $queries:expr, $nq:expr, $dim4:expr, $out:expr,
        tile: |$pp:ident, $qp:ident| $tile:expr,
        prepare: |$query:ident| $prepare:expr,
        store: |$dst:ident, $acc:ident, $prepared:ident| $store:expr $(,)?
    ) => {{
        let (panels, np, queries, nq, dim4, out): (&[u8], usize, &[i8], usize, usize, &mut [i32]) =
            ($panels, $np, $queries, $nq, $dim4, $out);
        let rows = np * $crate::int8::kernel::PANEL_ROWS;
        let panel_bytes = $crate::int8::kernel::PANEL_ROWS * dim4;
        let mut q0 = 0;
        while q0 < nq {
            let query_at = |j: usize| &queries[(q0 + j).min(nq - 1) * dim4..][..dim4];
            let $qp: [*const i8; $Q] = std::array::from_fn(|j| query_at(j).as_ptr());
            let prepared: [_; $Q] = std::array::from_fn(|j| {
                let $query: &[i8] = query_at(j);
                $prepare
            });
            let mut p0 = 0;
            while p0 < np {
                let $pp: [*const u8; $P] =
                    std::array::from_fn(|j| panels[(p0 + j).min(np - 1) * panel_bytes..].as_ptr());
                let acc = $tile;
                for (j, (acc, $prepared)) in acc.iter().zip(&prepared).enumerate().take(nq - q0) {
                    for (i, $acc) in acc.iter().enumerate().take(np - p0) {
                        let $dst = &mut out[(q0 + j) * rows + (p0 + i) * $crate::int8::kernel::PANEL_ROWS..]
                            [..$crate::int8::kernel::PANEL_ROWS];
                        $store;
                    }
                }
                p0 += $P;
            }
            q0 += $Q;
        }
    }};
}

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

use std::sync::OnceLock;

use crate::{int8::bound::QueryBound, F32Kernel};

/// What every SIMD int8 kernel provides, implemented in the arch files for
/// the `semsearch_cpu` token that proves its instructions run here.
trait Int8Simd: Copy {
    /// See [`Int8Kernel::score_panels`].
    ///
    /// # Panics
    /// As [`Int8Kernel::score_panels`].
    fn score_panels(self, panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]);

    /// [`QueryBound::count_reaching`], compiled for this instruction set.
    fn count_reaching(
        self,
        bound: &QueryBound,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize;
}

/// Rows per panel: the 16 i32 lanes of an AVX-512 register.
pub const PANEL_ROWS: usize = 16;
/// Bytes of one row per panel step: the 4 bytes `vpdpbusd` sums per lane.
pub const GROUP: usize = 4;
/// Bytes of one panel step: [`GROUP`] bytes of [`PANEL_ROWS`] rows.
pub const STEP_BYTES: usize = GROUP * PANEL_ROWS;
/// Largest padded dimension: |Σ code × code| ≤ dim4 × 128 × 127 stays below
/// 2^31 (the AVX-512 kernel's biased partial sums, up to dim4 × 255 × 127,
/// may wrap, but wrap-around arithmetic is exact modulo 2^32 and the final
/// value fits).
pub const MAX_DIM4: usize = 1 << 16;

/// Byte offset of code `t` of row `row` in a panel-layout buffer whose rows
/// are padded to `dim4`.
#[inline]
pub fn code_offset(dim4: usize, row: usize, t: usize) -> usize {
    (row / PANEL_ROWS) * PANEL_ROWS * dim4 + (t / GROUP) * STEP_BYTES + (row % PANEL_ROWS) * GROUP + t % GROUP
}

/// Writes one row's biased `codes` as row `r` (< [`PANEL_ROWS`]) of `panel`,
/// one panel of a panel-layout buffer: the bytes [`code_offset`] names,
/// written a [`GROUP`] at a time rather than through a computed offset per
/// byte (issue 24: 200k rows laid out in 33.1 ms instead of 38.7 ms, warm
/// memory; most of a load's layout time is first touch of the buffer).
#[inline]
pub fn place_row(panel: &mut [u8], r: usize, codes: &[u8]) {
    for (step, group) in panel.chunks_exact_mut(STEP_BYTES).zip(codes.chunks(GROUP)) {
        step[r * GROUP..][..group.len()].copy_from_slice(group);
    }
}

/// `dim` rounded up to a whole number of groups.
#[inline]
pub fn padded_dim(dim: usize) -> usize {
    dim.div_ceil(GROUP) * GROUP
}

/// An int8 kernel this CPU can run. Cheap to copy; pass it into hot loops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int8Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2(x86_64::Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512Bw(x86_64::Avx512Bw),
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni(x86_64::Avx512Vnni),
    #[cfg(target_arch = "aarch64")]
    NeonDot(aarch64::NeonDot),
}

impl Int8Kernel {
    /// Every int8 kernel this CPU can run, scalar first, fastest last.
    ///
    /// aarch64 without the dot-product extension (Cortex-A72 and older) has
    /// only the scalar kernel, which the compiler vectorises with baseline
    /// NEON.
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut kernels = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            kernels.extend(x86_64::Avx2::detect().map(Self::Avx2));
            kernels.extend(x86_64::Avx512Bw::detect().map(Self::Avx512Bw));
            kernels.extend(x86_64::Avx512Vnni::detect().map(Self::Avx512Vnni));
        }
        #[cfg(target_arch = "aarch64")]
        kernels.extend(aarch64::NeonDot::detect().map(Self::NeonDot));
        kernels
    }

    /// The int8 kernel of the same family as the f32 `kernel`, so forcing
    /// `SEMSEARCH_KERNEL=avx2` (or `scalar`) also forces the int8 scan off
    /// AVX-512. `avx512` uses VNNI when present, else AVX-512BW, else the
    /// best below it.
    pub fn matching(kernel: F32Kernel) -> Self {
        let available = Self::available();
        let best = *available.last().expect("scalar is always available");
        match kernel {
            F32Kernel::Scalar => Self::Scalar,
            #[cfg(target_arch = "x86_64")]
            F32Kernel::Avx2(_) => x86_64::Avx2::detect().map_or(Self::Scalar, Self::Avx2),
            #[allow(unreachable_patterns)]
            _ => best,
        }
    }

    /// Stable name, for logs, benches and `/v1/stats`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(_) => "avx2",
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Bw(_) => "avx512bw",
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni(_) => "avx512vnni",
            #[cfg(target_arch = "aarch64")]
            Self::NeonDot(_) => "neon-sdot",
        }
    }

    /// Exact dot products of whole panels with queries:
    /// `out[q * rows + i] = Σ_t code(row i, t) × queries[q * dim4 + t]`,
    /// `rows = 16 × panels`, for panel-layout `panels` (biased, see the
    /// module doc) and row-major `queries` (`nq × dim4`, codes in [-127, 127]).
    ///
    /// # Panics
    /// If `dim4` is 0, not a multiple of 4 or above [`MAX_DIM4`], or the
    /// lengths are not whole panels, whole queries and `nq × rows`.
    #[inline]
    pub fn score_panels(self, panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]) {
        match self {
            Self::Scalar => scalar::score_panels(panels, queries, dim4, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(k) => k.score_panels(panels, queries, dim4, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Bw(k) => k.score_panels(panels, queries, dim4, out),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni(k) => k.score_panels(panels, queries, dim4, out),
            #[cfg(target_arch = "aarch64")]
            Self::NeonDot(k) => k.score_panels(panels, queries, dim4, out),
        }
    }

    /// [`QueryBound::count_reaching`], compiled for this kernel's
    /// instruction set (on x86_64, 8 or 4 f64 lanes instead of SSE2's 2).
    #[inline]
    pub(crate) fn count_reaching(
        self,
        bound: &QueryBound,
        scales: &[f32],
        dots: &[i32],
        residuals: &[f32],
        code_norms: &[f32],
        cut: f64,
    ) -> usize {
        match self {
            Self::Scalar => bound.count_reaching(scales, dots, residuals, code_norms, cut),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(k) => k.count_reaching(bound, scales, dots, residuals, code_norms, cut),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Bw(k) => k.count_reaching(bound, scales, dots, residuals, code_norms, cut),
            #[cfg(target_arch = "x86_64")]
            Self::Avx512Vnni(k) => k.count_reaching(bound, scales, dots, residuals, code_norms, cut),
            #[cfg(target_arch = "aarch64")]
            Self::NeonDot(k) => k.count_reaching(bound, scales, dots, residuals, code_norms, cut),
        }
    }
}

/// Checks the shapes every kernel relies on; returns (panels, queries).
///
/// # Panics
/// As [`Int8Kernel::score_panels`].
pub(crate) fn shape(panels: &[u8], queries: &[i8], dim4: usize, out: &[i32]) -> (usize, usize) {
    assert!(dim4 > 0 && dim4.is_multiple_of(GROUP) && dim4 <= MAX_DIM4, "dim4 must be a multiple of 4 in 4..=2^16");
    let panel_bytes = PANEL_ROWS * dim4;
    let (np, nq) = (panels.len() / panel_bytes, queries.len() / dim4);
    assert!(
        panels.len() == np * panel_bytes && queries.len() == nq * dim4,
        "panels and queries must be whole panels and whole dim4-long queries"
    );
    assert_eq!(out.len(), nq * np * PANEL_ROWS, "out must hold queries × rows scores");
    debug_assert!(queries.iter().all(|&q| q != i8::MIN), "query codes lie in [-127, 127]");
    (np, nq)
}

static ACTIVE: OnceLock<Int8Kernel> = OnceLock::new();

/// The process-wide int8 kernel: the one [`Int8Kernel::matching`] the
/// process-wide f32 kernel, fixed on first use like it.
#[inline]
pub fn active() -> Int8Kernel {
    *ACTIVE.get_or_init(|| Int8Kernel::matching(crate::kernel::active()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes in [-127, 127] from a seed, without a RNG dependency.
    fn codes(n: usize, seed: u64) -> Vec<i8> {
        let mut rng = crate::test_rng::XorShift::spread(seed);
        (0..n).map(|_| (((rng.next_u64() >> 33) % 255) as i32 - 127) as i8).collect()
    }

    /// Packs row-major `rows × dim` codes into a biased panel buffer.
    fn pack(codes: &[i8], dim: usize) -> (Vec<u8>, usize) {
        let dim4 = padded_dim(dim);
        let rows = codes.len() / dim;
        let mut panels = vec![128u8; rows.div_ceil(PANEL_ROWS) * PANEL_ROWS * dim4];
        for (i, row) in codes.chunks_exact(dim).enumerate() {
            for (t, &c) in row.iter().enumerate() {
                panels[code_offset(dim4, i, t)] = (c as u8) ^ 0x80;
            }
        }
        (panels, dim4)
    }

    #[test]
    fn a_placed_row_lands_at_its_code_offsets_and_nowhere_else() {
        for dim in [1usize, 3, 4, 5, 17, 383, 384, 385] {
            let dim4 = padded_dim(dim);
            for r in [0, 1, 7, PANEL_ROWS - 1] {
                let row: Vec<u8> = codes(dim, (dim * 31 + r) as u64).iter().map(|&c| (c as u8) ^ 0x80).collect();
                let mut placed = vec![0u8; PANEL_ROWS * dim4];
                place_row(&mut placed, r, &row);
                let mut want = vec![0u8; PANEL_ROWS * dim4];
                for (t, &c) in row.iter().enumerate() {
                    want[code_offset(dim4, r, t)] = c;
                }
                assert_eq!(placed, want, "dim {dim}, row {r}");
            }
        }
    }

    #[test]
    fn code_offsets_cover_every_byte_of_a_panel_once() {
        let dim4 = 12;
        let mut seen = vec![false; 2 * PANEL_ROWS * dim4];
        for row in 0..2 * PANEL_ROWS {
            for t in 0..dim4 {
                let at = code_offset(dim4, row, t);
                assert!(!seen[at], "row {row} t {t} reuses byte {at}");
                seen[at] = true;
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn every_kernel_equals_the_row_major_dot_product() {
        for dim in [1usize, 3, 4, 5, 17, 64, 65, 383, 384, 385, 1536] {
            let rows = 37;
            let mut m = codes(rows * dim, dim as u64);
            // Extremes: rows of all +127 and all -127, where saturation would show.
            m[..dim].fill(127);
            m[dim..2 * dim].fill(-127);
            let (panels, dim4) = pack(&m, dim);
            let np = panels.len() / (PANEL_ROWS * dim4);
            for nq in [1usize, 2, 5, 9] {
                let mut q = codes(nq * dim, 7 + dim as u64);
                q[..dim].fill(-127);
                let mut qp = vec![0i8; nq * dim4];
                for (dst, src) in qp.chunks_exact_mut(dim4).zip(q.chunks_exact(dim)) {
                    dst[..dim].copy_from_slice(src);
                }
                for kernel in Int8Kernel::available() {
                    let mut out = vec![i32::MIN; nq * np * PANEL_ROWS];
                    kernel.score_panels(&panels, &qp, dim4, &mut out);
                    for qi in 0..nq {
                        for r in 0..rows {
                            let want: i32 = m[r * dim..][..dim]
                                .iter()
                                .zip(&q[qi * dim..][..dim])
                                .map(|(a, b)| i32::from(*a) * i32::from(*b))
                                .sum();
                            let got = out[qi * np * PANEL_ROWS + r];
                            assert_eq!(got, want, "{} dim={dim} nq={nq} q={qi} row={r}", kernel.name());
                        }
                        for r in rows..np * PANEL_ROWS {
                            assert_eq!(out[qi * np * PANEL_ROWS + r], 0, "padding rows score 0");
                        }
                    }
                }
            }
        }
    }

    /// Every SIMD kernel against the scalar one on every dim4 tail, panel
    /// count and query count a register tile can leave over, and on extreme
    /// codes. Runs whatever this CPU has (under qemu for aarch64, see
    /// `.ci/aarch64.sh`).
    #[test]
    fn every_kernel_equals_the_scalar_kernel_on_every_tail() {
        let kernels = Int8Kernel::available();
        eprintln!("int8 kernels on this CPU: {:?}", kernels.iter().map(|k| k.name()).collect::<Vec<_>>());
        for dim in [1usize, 4, 7, 60, 64, 68, 383, 384, 1536] {
            let dim4 = padded_dim(dim);
            for rows in [1usize, 16, 17, 100, 16 * 9] {
                let mut m = codes(rows * dim, (dim * rows) as u64);
                m[..dim].fill(127);
                if rows > 1 {
                    m[dim..2 * dim].fill(-127);
                }
                let (panels, _) = pack(&m, dim);
                for nq in [1usize, 2, 4, 5, 9] {
                    let mut q = codes(nq * dim4, 3 + nq as u64);
                    q[..dim4].fill(-127);
                    let mut want = vec![0; nq * panels.len() / dim4];
                    scalar::score_panels(&panels, &q, dim4, &mut want);
                    for kernel in &kernels {
                        let mut got = vec![i32::MIN; want.len()];
                        kernel.score_panels(&panels, &q, dim4, &mut got);
                        assert_eq!(got, want, "{} dim={dim} rows={rows} queries={nq}", kernel.name());
                    }
                }
            }
        }
    }

    #[test]
    fn no_kernel_overflows_at_the_largest_dimension() {
        // Every code ±127 at dim4 = 2^16: |sum| = 127² × 2^16 ≈ 2^30.
        let dim4 = MAX_DIM4;
        let panels = vec![255u8; PANEL_ROWS * dim4]; // code +127 everywhere
        let queries = [vec![127i8; dim4], vec![-127i8; dim4]].concat();
        let want = [127 * 127 * dim4 as i32, -127 * 127 * dim4 as i32];
        for kernel in Int8Kernel::available() {
            let mut out = vec![0; 2 * PANEL_ROWS];
            kernel.score_panels(&panels, &queries, dim4, &mut out);
            assert!(out[..16].iter().all(|&s| s == want[0]), "{}: {:?}", kernel.name(), &out[..16]);
            assert!(out[16..].iter().all(|&s| s == want[1]), "{}: {:?}", kernel.name(), &out[16..]);
        }
    }

    #[test]
    fn every_kernel_counts_the_rows_reaching_the_cut_like_the_interval() {
        use crate::int8::quantize::quantize;
        let dim = 20;
        let mut codes = vec![0i8; dim];
        let query: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.37).sin()).collect();
        let bound = QueryBound::new(&quantize(&query, &mut codes), dim).expect("bounded query");
        let n = 77;
        let scales: Vec<f32> = (0..n).map(|i| 0.001 + i as f32 * 1e-5).collect();
        let residuals: Vec<f32> =
            (0..n).map(|i| if i == 5 { f32::INFINITY } else { 0.004 + i as f32 * 1e-5 }).collect();
        let code_norms = vec![1.0f32; n];
        let dots: Vec<i32> = (0..n as i32).map(|i| (i * 7919 % 4001) - 2000).collect();
        for cut in [f64::NEG_INFINITY, -1.0, 0.0, 0.2, 0.5, 10.0, f64::INFINITY] {
            let want =
                (0..n).filter(|&i| bound.interval(scales[i], dots[i], residuals[i], code_norms[i]).1 >= cut).count();
            for kernel in Int8Kernel::available() {
                let got = kernel.count_reaching(&bound, &scales, &dots, &residuals, &code_norms, cut);
                assert_eq!(got, want, "{} cut={cut}", kernel.name());
            }
        }
    }

    #[test]
    fn matching_follows_the_f32_kernel_family() {
        assert_eq!(Int8Kernel::matching(F32Kernel::Scalar), Int8Kernel::Scalar);
        let best = *Int8Kernel::available().last().expect("non-empty");
        let f32_best = *F32Kernel::available().last().expect("non-empty");
        if f32_best != F32Kernel::Scalar && f32_best.name() != "avx2" {
            assert_eq!(Int8Kernel::matching(f32_best), best);
        }
    }
}
