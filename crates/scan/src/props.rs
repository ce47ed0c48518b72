//! Property tests of the f32 scan, through the crate's entry point: every
//! kernel the CPU supports, the single-query scan (sequential and parallel,
//! with tiny blocks to force many merges) and the batch scan equal a
//! brute-force f64 reference under the tie rule, with and without skipped
//! rows.
//!
//! How results are compared:
//! - `exact_*`: entries are multiples of 1/8 in [-1, 1] and `dim <= 96`, so
//!   every product is a multiple of 1/64 and every partial sum is an integer
//!   multiple of 1/64 below 2^24/64: f32 arithmetic is exact in any order.
//!   Scores therefore equal the f64 reference bit for bit, ties (duplicated
//!   rows, collisions of small integers) are genuine, and the hits must equal
//!   the reference exactly, rows and scores, tie rule included.
//! - `random_*`: arbitrary floats, where kernels round differently. Ranks may
//!   differ only between genuine near-ties: at every rank the reference score
//!   of the row we returned must be within 1e-6 of the reference score at
//!   that rank, every returned score within 1e-5 of its f64 value, and the
//!   output sorted by the tie rule. Within one kernel, every path (blocking,
//!   threads, batch) must return the same hits bit for bit.

use proptest::prelude::*;

use super::*;

/// Brute force in f64 with a full sort, `min_score` and `k` applied, over
/// the rows `skipped` keeps: the oracle.
fn reference(matrix: &[f32], q: &[f32], k: usize, min_score: Option<f32>, skipped: &Skipped) -> Vec<(u32, f64)> {
    let dim = q.len();
    let floor = min_score.map_or(f64::NEG_INFINITY, f64::from);
    let mut all: Vec<(u32, f64)> = matrix
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, r)| (i as u32, dot_f64(r, q)))
        .filter(|(i, s)| *s >= floor && skipped.keeps(*i))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Dot product in f64, folded from +0.0 like every kernel's accumulators.
/// (`Sum for f64` starts at -0.0, so an all-(-0.0) sum would stay -0.0 and
/// rank below +0.0 under `total_cmp`; the kernels can only produce +0.0.)
fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).fold(0.0, |acc, (x, y)| acc + f64::from(*x) * f64::from(*y))
}

/// One row's score in f64.
fn exact_score(matrix: &[f32], q: &[f32], row: u32) -> f64 {
    let dim = q.len();
    dot_f64(&matrix[row as usize * dim..][..dim], q)
}

/// What a path must skip: the request's excluded rows and the query's own.
#[derive(Debug, Clone, Default)]
struct Skipped {
    excluded: Vec<u32>,
    own: Option<u32>,
}

impl Skipped {
    fn keeps(&self, row: u32) -> bool {
        self.excluded.binary_search(&row).is_err() && Some(row) != self.own
    }
}

/// One request through [`top_k`] with what the test forces.
fn run(matrix: &[f32], dim: usize, queries: &[ScanQuery<'_>], excluded: &[u32], forced: Forced) -> Vec<Vec<Hit>> {
    let request = ScanRequest { queries, excluded, forced };
    top_k(Matrix::new(matrix, dim), &request).into_iter().map(|a| a.hits).collect()
}

/// Every way this CPU can answer one query: (label, hits).
fn all_paths(
    matrix: &[f32],
    q: &[f32],
    k: usize,
    min_score: Option<f32>,
    block_rows: usize,
    skipped: &Skipped,
) -> Vec<(String, Vec<Hit>)> {
    let dim = q.len();
    let query = ScanQuery { vector: q, k, min_score, exclude: skipped.own, among: None };
    let excluded = &skipped.excluded;
    let mut out = Vec::new();
    for kernel in F32Kernel::available() {
        let name = kernel.name();
        let forced = |split| Forced { kernel: Some(kernel), split, ..Forced::default() };
        out.push((format!("{name}/default"), run(matrix, dim, &[query], excluded, forced(None)).remove(0)));
        for parallel in [false, true] {
            let split = Split { block_rows, parallel };
            out.push((
                format!("{name}/{split:?}"),
                run(matrix, dim, &[query], excluded, forced(Some(split))).remove(0),
            ));
        }
        // The query in the middle of a batch of three, with other k, floors and own rows around it.
        let other: Vec<f32> = q.iter().rev().copied().collect();
        let batch = [
            ScanQuery { vector: &other, k: 1, ..ScanQuery::default() },
            query,
            ScanQuery { vector: q, k: k / 2, min_score: Some(0.0), exclude: Some(0), ..ScanQuery::default() },
        ];
        for parallel in [false, true] {
            let split = Split { block_rows, parallel };
            let mut got = run(matrix, dim, &batch, excluded, forced(Some(split)));
            out.push((format!("{name}/batch/{split:?}"), got.swap_remove(1)));
        }
        out.push((format!("{name}/batch/default"), run(matrix, dim, &batch, excluded, forced(None)).swap_remove(1)));
    }
    out
}

fn side_by_side(want: &[(u32, f64)], got: &[Hit]) -> String {
    let mut s = String::from("rank | want (row, score) | got (row, score)\n");
    for i in 0..want.len().max(got.len()) {
        let w = want.get(i).map_or("-".into(), |(r, x)| format!("{r} {x:.9}"));
        let g = got.get(i).map_or("-".into(), |h| format!("{} {:.9}", h.row, h.score));
        s += &format!("{i:>4} | {w} | {g}\n");
    }
    s
}

/// `n` rows built from `base` by index (so rows repeat exactly), and a query.
fn dyadic_case() -> impl Strategy<Value = (usize, Vec<f32>, Vec<f32>, usize, Option<f32>, usize)> {
    (1usize..=96, 0usize..=300, 1usize..=40).prop_flat_map(|(dim, n, n_base)| {
        let entry = (-8i8..=8).prop_map(|v| f32::from(v) / 8.0);
        (
            Just(dim),
            prop::collection::vec(entry.clone(), n_base * dim),
            prop::collection::vec(0usize..n_base, n),
            prop::collection::vec(entry, dim),
            1usize..=n + 5,
            prop::option::of((-16i32..=16).prop_map(|v| v as f32 / 4.0)),
            1usize..=70,
        )
            .prop_map(move |(dim, base, picks, q, k, min_score, block_rows)| {
                let matrix: Vec<f32> = picks.iter().flat_map(|&p| base[p * dim..][..dim].iter().copied()).collect();
                (dim, matrix, q, k, min_score, block_rows)
            })
    })
}

/// Rows to skip in an `n`-row matrix: every `every`-th from `first`, and one own row.
fn skipped(n: usize, every: Option<(usize, usize)>, own: Option<u32>) -> Skipped {
    let excluded = every.map_or(Vec::new(), |(every, first)| (first..n).step_by(every).map(|r| r as u32).collect());
    Skipped { excluded, own }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn exact_scores_give_identical_hits_on_every_path(
        (dim, matrix, q, k, min_score, block_rows) in dyadic_case(),
        every in prop::option::of((1usize..8, 0usize..3)),
        own in prop::option::of(0u32..300),
    ) {
        prop_assume!(q.len() == dim);
        let skip = skipped(matrix.len() / dim, every, own);
        let want = reference(&matrix, &q, k, min_score, &skip);
        for (path, got) in all_paths(&matrix, &q, k, min_score, block_rows, &skip) {
            let got_pairs: Vec<(u32, f64)> = got.iter().map(|h| (h.row, f64::from(h.score))).collect();
            prop_assert_eq!(&got_pairs, &want, "{}: dim={} n={} k={} min_score={:?} skipped={:?}\n{}",
                path, dim, matrix.len() / dim, k, min_score, skip, side_by_side(&want, &got));
        }
        // Every query of a batch, with its own k, floor and own row, equals its own reference.
        let other: Vec<f32> = q.iter().rev().copied().collect();
        let batch = [
            ScanQuery { vector: &other, k: 1, exclude: Some(1), ..ScanQuery::default() },
            ScanQuery { vector: &q, k, min_score, exclude: own, ..ScanQuery::default() },
            ScanQuery { vector: &q, k: k / 2, min_score: Some(0.0), ..ScanQuery::default() },
        ];
        for kernel in F32Kernel::available() {
            let forced = Forced { kernel: Some(kernel), ..Forced::default() };
            for (i, got) in run(&matrix, dim, &batch, &skip.excluded, forced).iter().enumerate() {
                let own_skip = Skipped { excluded: skip.excluded.clone(), own: batch[i].exclude };
                let want = reference(&matrix, batch[i].vector, batch[i].k, batch[i].min_score, &own_skip);
                let got_pairs: Vec<(u32, f64)> = got.iter().map(|h| (h.row, f64::from(h.score))).collect();
                prop_assert_eq!(&got_pairs, &want, "{} batch query {}\n{}", kernel.name(), i, side_by_side(&want, got));
            }
        }
    }

    #[test]
    fn random_scores_differ_from_f64_only_between_near_ties(
        dim in 1usize..=130,
        n in 0usize..=250,
        k_extra in 0usize..=260,
        block_rows in 1usize..=70,
        every in prop::option::of((1usize..8, 0usize..3)),
        own in prop::option::of(0u32..250),
        seed in any::<u64>(),
    ) {
        let mut rng = crate::test_rng::XorShift::new(seed);
        let mut next = move || rng.unit();
        let matrix: Vec<f32> = (0..n * dim).map(|_| next()).collect();
        let q: Vec<f32> = (0..dim).map(|_| next()).collect();
        let k = 1 + k_extra % (n + 3);
        let skip = skipped(n, every, own);
        let want = reference(&matrix, &q, k, None, &skip);
        let paths = all_paths(&matrix, &q, k, None, block_rows, &skip);
        for (path, got) in &paths {
            let table = side_by_side(&want, got);
            prop_assert_eq!(got.len(), want.len(), "{}: length\n{}", path, table);
            for (rank, (h, w)) in got.iter().zip(&want).enumerate() {
                prop_assert!(skip.keeps(h.row), "{}: rank {} is a skipped row\n{}", path, rank, table);
                let truth = exact_score(&matrix, &q, h.row);
                prop_assert!((f64::from(h.score) - truth).abs() <= 1e-5, "{}: rank {} score off\n{}", path, rank, table);
                prop_assert!((truth - w.1).abs() <= 1e-6, "{}: rank {} is not a near-tie\n{}", path, rank, table);
            }
            prop_assert!(got.windows(2).all(|p| topk::rank_order(&p[0], &p[1]).is_le()), "{}: unsorted\n{}", path, table);
        }
        // Within one kernel, a row's score does not depend on blocking or
        // batching, so every path of that kernel returns the same hits, bit for bit.
        for (path, got) in &paths {
            let kernel = path.split('/').next().unwrap_or_default();
            let (first_path, first) = paths.iter().find(|(p, _)| p.starts_with(&format!("{kernel}/"))).expect("the path itself matches");
            prop_assert_eq!(got, first, "{} differs from {}", path, first_path);
        }
    }
}
