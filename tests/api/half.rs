use semsearch::{
    index::unit::scale_to_unit as normalize,
    search::{
        half::{top_k_half, HalfMatrix, HalfPath},
        top_k_with, Kernel,
    },
};
use serde_json::Value;

use crate::helpers::{ground_truth, shared_data};

/// The dev corpus as a unit-row matrix (order irrelevant here: both paths
/// see the same rows).
fn corpus_matrix() -> (Vec<f32>, usize) {
    let text = std::fs::read_to_string(shared_data().join("corpus-dev.jsonl")).expect("read corpus-dev.jsonl");
    let mut matrix = Vec::new();
    let mut dim = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let doc: Value = serde_json::from_str(line).expect("corpus line is JSON");
        let mut row: Vec<f32> = doc["embedding"]
            .as_array()
            .expect("embedding array")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect();
        normalize(&mut row).expect("corpus rows are valid");
        dim = row.len();
        matrix.extend(row);
    }
    (matrix, dim)
}

#[test]
fn f16_scan_with_rescoring_equals_the_f32_scan_on_real_embeddings() {
    // Arrange
    let (matrix, dim) = corpus_matrix();
    let half = HalfMatrix::from_f32(&matrix, dim);
    let mut fell_back = 0;

    for q in ground_truth() {
        let mut query = q.embedding.clone();
        normalize(&mut query).expect("query is valid");
        for kernel in Kernel::available() {
            // Act
            let (got, path) = top_k_half(kernel, &half, &matrix, &query, 10, None);

            // Assert
            assert_eq!(got, top_k_with(kernel, &matrix, &query, 10, None), "{} {:?}", kernel.name(), q.query);
            fell_back += usize::from(path == HalfPath::FellBack);
        }
    }
    eprintln!("f16 pass fell back to the f32 scan {fell_back} times out of {}", 30 * Kernel::available().len());
}
