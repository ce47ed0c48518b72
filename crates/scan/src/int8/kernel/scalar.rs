//! Portable int8 kernel: the reference every SIMD kernel is tested against
//! (exact integer equality), and the kernel on CPUs without one.
//!
//! Follows the panel layout in [`super`] literally: for each 4-byte group,
//! each of the 16 rows adds its 4 products to its own i32 sum.

use super::{shape, PANEL_ROWS, STEP_BYTES};

/// See `Int8Kernel::score_panels`.
///
/// # Panics
/// As `Int8Kernel::score_panels`.
pub fn score_panels(panels: &[u8], queries: &[i8], dim4: usize, out: &mut [i32]) {
    let (np, _) = shape(panels, queries, dim4, out);
    if np == 0 {
        return;
    }
    let rows = np * PANEL_ROWS;
    for (query, scores) in queries.chunks_exact(dim4).zip(out.chunks_exact_mut(rows)) {
        for (panel, lanes) in panels.chunks_exact(PANEL_ROWS * dim4).zip(scores.chunks_exact_mut(PANEL_ROWS)) {
            let mut acc = [0i32; PANEL_ROWS];
            for (step, q) in panel.chunks_exact(STEP_BYTES).zip(query.chunks_exact(super::GROUP)) {
                for (sum, bytes) in acc.iter_mut().zip(step.chunks_exact(super::GROUP)) {
                    for (b, q) in bytes.iter().zip(q) {
                        // Undo the bias: byte = code + 128.
                        *sum += (i32::from(*b) - 128) * i32::from(*q);
                    }
                }
            }
            lanes.copy_from_slice(&acc);
        }
    }
}
