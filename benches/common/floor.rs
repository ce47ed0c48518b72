//! The memory-read floor the scan benches divide by, written once:
//! `benches/search.rs` and `benches/int8.rs` include it with `#[path]`.

use rayon::prelude::*;

/// Floats per rayon task of the floor loop: 256 KiB, as the scans' blocks.
const FLOOR_BLOCK_FLOATS: usize = 64 * 1024;

/// Reads every float once, with the pool's threads: the memory-bandwidth
/// floor a scan cannot beat. 32 independent lanes keep it load-bound.
pub fn read_floor(matrix: &[f32]) -> f32 {
    matrix
        .par_chunks(FLOOR_BLOCK_FLOATS)
        .map(|block| {
            let mut acc = [0.0f32; 32];
            for c in block.chunks_exact(32) {
                for i in 0..32 {
                    acc[i] += c[i];
                }
            }
            acc.iter().sum::<f32>() + block.chunks_exact(32).remainder().iter().sum::<f32>()
        })
        .sum()
}
