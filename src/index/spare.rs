//! One retired vector matrix, kept for the next load to write into.
//!
//! Why: a reload builds the next snapshot beside the one serving, so at
//! 1M × 384 it needs 1.5 GB of matrix while the serving one holds as much.
//! Allocated fresh, every page of it is faulted in and zeroed by the kernel
//! on first touch (~375k faults at 1M), and on a VM whose freed memory goes
//! back to the host (virtio-balloon free page reporting, as on the machines
//! these figures come from) each of those faults is served by the host too:
//! touching 5 GB that the guest had given back took 9.8 s there, touching
//! memory another process had just freed 3.2 s. The retired snapshot's
//! matrix is exactly the size the next reload needs and already resident,
//! so the builder writes into it instead (see docs/benchmarks.md, "A
//! retired matrix is the next reload's").
//!
//! The cost is memory between reloads: the spare stays resident until the
//! next load takes it. A pod is sized for two matrices anyway (the reload
//! peak, docs/scaling.md), so this never raises the peak. At most one
//! buffer is kept, of at least [`MIN_SPARE_BYTES`]; a load that needs more
//! than it holds frees it before allocating. `semsearch_spare_matrix_bytes`
//! shows it.
//!
//! Owns: the one spare buffer and its rule. Does not own: when a matrix
//! retires ([`super::segment::Segment`]'s drop) or what is written into it
//! ([`super::builder::IndexBuilder`]).

use std::sync::Mutex;

/// Smaller matrices are not kept: their pages cost little to fault in
/// (16 MiB is ~11k rows of 384 floats, a few milliseconds of faults).
pub const MIN_SPARE_BYTES: usize = 16 << 20;

static SPARE: Mutex<Option<Vec<f32>>> = Mutex::new(None);

/// Keeps `floats`' allocation for the next load if it is large enough and
/// larger than the one kept; otherwise it is freed here.
pub fn keep(floats: Vec<f32>) {
    if floats.capacity().saturating_mul(4) < MIN_SPARE_BYTES {
        return;
    }
    let displaced = {
        let mut spare = SPARE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match spare.as_ref() {
            Some(kept) if kept.capacity() >= floats.capacity() => Some(floats),
            _ => spare.replace(floats),
        }
    };
    // Freed outside the lock: returning 1.5 GB to the allocator takes a while.
    drop(displaced);
}

/// An empty buffer with room for at least `floats` floats, when the spare
/// has it. Loads under [`MIN_SPARE_BYTES`] leave the spare alone. A spare
/// too small for the load, or more than twice its size (the index shrank),
/// is freed: the load's own allocation never sits beside it.
pub fn take(floats: usize) -> Option<Vec<f32>> {
    if floats.saturating_mul(4) < MIN_SPARE_BYTES {
        return None;
    }
    let kept = SPARE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()?;
    if kept.capacity() < floats || kept.capacity() / 2 > floats {
        drop(kept);
        return None;
    }
    let mut buf = kept;
    buf.clear();
    Some(buf)
}

/// Bytes held by the spare (a gauge of `/metrics`).
pub fn bytes() -> usize {
    SPARE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref().map_or(0, |v| v.capacity() * 4)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::index::{builder::IndexBuilder, Document};

    /// The spare is process-wide, so one test walks every rule in order
    /// (no other test of this binary retires a matrix this large).
    #[test]
    fn keeps_the_largest_retired_buffer_and_hands_it_to_a_load_that_fits() {
        let min = MIN_SPARE_BYTES / 4;
        let _ = take(min); // start from no spare
        keep(Vec::with_capacity(min - 1));
        assert_eq!(bytes(), 0, "below the minimum nothing is kept");

        let mut retired = vec![1.0f32; 2 * min];
        retired.truncate(1);
        let cap = retired.capacity();
        keep(retired);
        assert_eq!(bytes(), cap * 4);
        keep(Vec::with_capacity(min));
        assert_eq!(bytes(), cap * 4, "a smaller buffer does not displace a larger one");
        assert!(take(min - 1).is_none(), "a load under the minimum does not take it");
        assert_eq!(bytes(), cap * 4, "and leaves it for one that needs it");
        assert!(take(cap + 1).is_none(), "too small for the load");
        assert_eq!(bytes(), 0, "a spare too small for a load is freed, not kept beside it");

        keep(vec![0.0f32; 2 * min + 2]);
        assert!(take(min).is_none(), "more than twice what the load needs");
        assert_eq!(bytes(), 0, "so it is freed: the index shrank");

        let retired = vec![2.0f32; 2 * min];
        let (ptr, cap) = (retired.as_ptr(), retired.capacity());
        keep(retired);
        let got = take(cap).expect("fits exactly");
        assert!(got.is_empty() && got.capacity() >= cap);
        assert_eq!(got.as_ptr(), ptr, "the same allocation, not a copy");
        assert_eq!(bytes(), 0);
        drop(got);

        // Through the index: a retired snapshot's matrix is what the next
        // load writes its rows into, and the new snapshot holds exactly them.
        let dim = 384;
        let n = min / dim + 1;
        let build = |shift: usize| {
            let mut b = IndexBuilder::new(dim);
            b.reserve(n);
            for i in 0..n {
                let mut row = vec![0.0f32; dim];
                row[(i + shift) % dim] = 1.0;
                b.push(Arc::new(Document { id: format!("{i:06}").into(), ..Default::default() }), &row);
            }
            b.finish().expect("sorted ids")
        };
        let first = build(0);
        let first_rows = first.row(0).as_ptr();
        drop(first);
        assert_eq!(bytes(), n * dim * 4, "the retired matrix is kept");
        let second = build(1);
        assert_eq!(second.row(0).as_ptr(), first_rows, "written into the retired matrix");
        assert_eq!(bytes(), 0);
        for i in [0, 1, n / 2, n - 1] {
            let mut want = vec![0.0f32; dim];
            want[(i + 1) % dim] = 1.0;
            assert_eq!(second.row(i), &want[..], "row {i} is the new load's, not the old one's");
        }
        assert_eq!(second.len(), n);
    }
}
