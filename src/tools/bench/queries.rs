//! The query set: vectors read from a JSONL file (an `embedding` array per
//! line, as in `queries-dev.jsonl`; gzip accepted) or seeded random unit
//! vectors of the index's dimension. Random vectors cost the exact scan
//! exactly what real ones do; only the result lists differ.

use std::{fs::File, io::BufRead, path::Path};

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::Deserialize;

use super::HarnessError;
use crate::tools::corpus;

/// Every non-blank line of a JSONL file (gzip accepted) as a `T`, in order.
fn json_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, HarnessError> {
    let io = |source| HarnessError::QueriesIo { path: path.to_owned(), source };
    let reader = corpus::open(File::open(path).map_err(io)?).map_err(io)?;
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(&line)
                .map_err(|_| HarnessError::BadQuery { path: path.to_owned(), line_no: i + 1 })?,
        );
    }
    Ok(out)
}

/// Every non-blank line's `embedding`.
///
/// # Errors
/// [`HarnessError::QueriesIo`] or [`HarnessError::BadQuery`] (with the line number).
pub fn from_file(path: &Path) -> Result<Vec<Vec<f32>>, HarnessError> {
    #[derive(Deserialize)]
    struct Line {
        embedding: Vec<f32>,
    }
    Ok(json_lines::<Line>(path)?.into_iter().map(|l| l.embedding).collect())
}

/// The `query` text of every line of a JSONL file, in file order, line for
/// line with [`from_file`]'s vectors.
///
/// # Errors
/// [`HarnessError::QueriesIo`], or [`HarnessError::BadQuery`] for a line
/// without a `query` text.
pub fn texts_from_file(path: &Path) -> Result<Vec<String>, HarnessError> {
    #[derive(Deserialize)]
    struct Text {
        query: String,
    }
    Ok(json_lines::<Text>(path)?.into_iter().map(|t| t.query).collect())
}

/// `n` unit vectors of `dim` components, uniform in direction's sign and
/// size per component, from a seeded RNG (same seed, same queries).
pub fn random(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| random_unit(&mut rng, dim)).collect()
}

/// One random unit vector (components uniform in [-1, 1), then scaled).
pub fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    loop {
        let mut v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        if crate::index::unit::scale_to_unit(&mut v).is_ok() {
            return v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_queries_are_unit_length_and_repeatable() {
        let a = random(3, 8, 7);
        let b = random(3, 8, 7);

        assert_eq!(a, b, "same seed, same queries");
        assert_ne!(a, random(3, 8, 8));
        for q in &a {
            let norm: f32 = q.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        }
    }

    #[test]
    fn a_line_without_an_embedding_is_named_by_number() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("q.jsonl");
        std::fs::write(&path, "{\"embedding\":[1,0]}\n\n{\"query\":\"no vector\"}\n").expect("write");

        let got = from_file(&path);

        assert!(matches!(got, Err(HarnessError::BadQuery { line_no: 3, .. })), "{got:?}");
    }
}
