//! One retired vector matrix and its int8 copy, kept for the next load
//! to write into.
//!
//! Why: a reload builds the next snapshot beside the one serving, so at
//! 1M × 384 it needs 1.5 GB of matrix and 0.4 GB of codes while the
//! serving one holds as much. Allocated fresh, every page is faulted in and
//! zeroed by the kernel on first touch (~480k faults at 1M), and on a VM
//! whose freed memory goes back to the host (virtio-balloon free page
//! reporting, as on the machines these figures come from) each of those
//! faults is served by the host too: touching 5 GB that the guest had
//! given back took 9.8 s there, touching memory another process had just
//! freed 3.2 s. The retired snapshot's buffers are already resident and
//! at least the size the next reload needs (a load's fresh buffers get 1/32
//! of room to grow, [`semsearch_scan::with_growth_room`], reserved and not
//! touched, so an index that gained a few rows since still fits them), so
//! the builders write into them instead (docs/benchmarks.md, "A retired
//! matrix is the next reload's").
//!
//! The cost is memory between reloads: a spare stays resident until the
//! next load takes it. A pod is sized for two snapshots' vectors anyway
//! (the reload peak, docs/scaling.md), so this never raises the peak. At
//! most one buffer of each kind is kept, of at least [`MIN_SPARE_BYTES`]; a
//! load that needs more than one holds frees it before allocating.
//! `semsearch_spare_matrix_bytes` shows both. The first reload has no
//! retired snapshot to take from, so the first load's sizes are prepared
//! (made resident) on a thread of their own at start ([`prepare_for`]).
//! `SEMSEARCH_RELOAD_BUFFERS=free` ([`ReloadBuffers`]) turns all of it off.
//!
//! Owns: the spare buffers and their rule. Does not own: when a snapshot's
//! vectors retire ([`super::segment::Segment`]'s drop) or what is written
//! into them ([`super::builder::IndexBuilder`], the loader's
//! `QuantizedBuilder`).

use std::{
    mem::size_of,
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::{Duration, Instant},
};

use super::Index;

/// Smaller buffers are not kept: their pages cost little to fault in
/// (16 MiB is ~11k rows of 384 floats, a few milliseconds of faults).
pub const MIN_SPARE_BYTES: usize = 16 << 20;

/// A buffer being prepared is touched this many bytes at a time, with a
/// pause as long as each took: half of one core while it lasts.
const PREPARE_CHUNK_BYTES: usize = 16 << 20;

/// One write per page makes the kernel fault the whole page in.
const PAGE_BYTES: usize = 4096;

/// The retired f32 matrix ([`super::builder::IndexBuilder`] writes into it).
pub static MATRIX: Spare<f32> = Spare::new();
/// The retired int8 copy's codes (the loader's `QuantizedBuilder` writes
/// into them).
pub static CODES: Spare<u8> = Spare::new();

/// `SEMSEARCH_RELOAD_BUFFERS`: whether retired buffers are kept (and the
/// first reload's prepared) at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ReloadBuffers {
    /// Kept between reloads: about 2 × the vectors resident from start,
    /// every reload writes into memory already faulted in.
    #[default]
    Keep,
    /// Freed: about 1 × between reloads (once the allocator gives the
    /// retired snapshot back), each reload faults its vectors in anew.
    Free,
}

static KEEPING: AtomicBool = AtomicBool::new(true);

/// Sets the process's [`ReloadBuffers`] policy; `Free` also frees what the
/// spares hold.
pub fn set_policy(policy: ReloadBuffers) {
    KEEPING.store(policy == ReloadBuffers::Keep, Ordering::Relaxed);
    if policy == ReloadBuffers::Free {
        drop(MATRIX.slot().buf.take());
        drop(CODES.slot().buf.take());
    }
}

fn keeping() -> bool {
    KEEPING.load(Ordering::Relaxed)
}

/// Bytes held by both spares (a gauge of `/metrics`).
pub fn bytes() -> usize {
    MATRIX.bytes() + CODES.bytes()
}

/// Makes resident now, on a thread of its own, the buffers the first
/// reload after `first` would otherwise fault in while `first` serves.
///
/// Why: every reload after the first finds the retired snapshot's buffers,
/// the first finds none, and on a VM that hands freed memory back to its
/// host its faults cost ~2× a later reload's CPU (docs/benchmarks.md).
/// Made at start, while the service is idle, the first reload costs what a
/// later one does. The memory is what the spares hold after the first
/// reload anyway (a pod is sized for two snapshots' vectors): the process
/// reaches its steady size at start instead of at its first reload.
/// Gentle: half of one core while it runs; a load that starts meanwhile
/// allocates its own and the preparation is dropped.
pub fn prepare_for(first: &Index) {
    let (base, _) = first.segments();
    let (floats, codes) = base.load_buffer_sizes();
    if !(Spare::<f32>::would_keep(floats) || Spare::<u8>::would_keep(codes)) {
        return;
    }
    let spawned = std::thread::Builder::new().name("spare-prepare".into()).spawn(move || {
        let started = Instant::now();
        let pause = |took: Duration| std::thread::sleep(took);
        let kept = [MATRIX.prepare(floats, pause), CODES.prepare(codes, pause)];
        tracing::info!(
            matrix = kept[0],
            codes = kept[1],
            spare_bytes = bytes(),
            took_ms = started.elapsed().as_millis() as u64,
            "reload buffers prepared"
        );
    });
    if let Err(e) = spawned {
        tracing::warn!(error.message = %e, "could not start preparing the reload buffers; the first reload allocates its own");
    }
}

/// At most one retired buffer of `T`.
#[derive(Debug)]
pub struct Spare<T> {
    slot: Mutex<Slot<T>>,
}

#[derive(Debug)]
struct Slot<T> {
    buf: Option<Vec<T>>,
    /// Loads that have asked for a buffer ([`Spare::take`]): a buffer being
    /// prepared is kept only if none asked since its preparation began
    /// (that load allocated its own, and a third buffer would raise the peak).
    takes: u64,
}

impl<T: Copy + Default> Spare<T> {
    const fn new() -> Self {
        Self { slot: Mutex::new(Slot { buf: None, takes: 0 }) }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot<T>> {
        // Nothing can be left half-done under this lock: a poisoned one still holds a valid slot.
        self.slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bytes_of(len: usize) -> usize {
        len.saturating_mul(size_of::<T>())
    }

    /// Whether `len` elements are worth a spare: [`MIN_SPARE_BYTES`] or more.
    fn is_large(len: usize) -> bool {
        Self::bytes_of(len) >= MIN_SPARE_BYTES
    }

    /// Whether a buffer of `len` elements would be kept: large enough, and
    /// the policy keeps buffers at all.
    fn would_keep(len: usize) -> bool {
        keeping() && Self::is_large(len)
    }

    /// Keeps `buf`'s allocation for the next load if it is large enough
    /// and larger than the one kept; otherwise it is freed here.
    pub fn keep(&self, buf: Vec<T>) {
        if !Self::would_keep(buf.capacity()) {
            return;
        }
        let displaced = {
            let mut slot = self.slot();
            match slot.buf.as_ref() {
                Some(kept) if kept.capacity() >= buf.capacity() => Some(buf),
                _ => slot.buf.replace(buf),
            }
        };
        // Freed outside the lock: giving back 1.5 GB takes a while.
        drop(displaced);
    }

    /// An empty buffer with room for at least `len` elements, when the
    /// spare has it. Loads under [`MIN_SPARE_BYTES`] leave the spare
    /// alone. A spare too small for the load, or more than twice its size
    /// (the index shrank), is freed: the load's own allocation never sits
    /// beside it.
    pub fn take(&self, len: usize) -> Option<Vec<T>> {
        if !Self::is_large(len) {
            return None;
        }
        let mut kept = {
            let mut slot = self.slot();
            slot.takes += 1;
            slot.buf.take()?
        };
        if kept.capacity() < len || kept.capacity() / 2 > len {
            drop(kept);
            return None;
        }
        kept.clear();
        Some(kept)
    }

    /// Allocates a buffer for a load of `len` elements (with the room to
    /// grow a load's own allocation has, [`semsearch_scan::with_growth_room`]),
    /// faults the pages of its first `len` elements in
    /// ([`PREPARE_CHUNK_BYTES`] at a time, calling `pause` with how long
    /// each chunk took) and keeps it, unless the spare holds one already,
    /// the buffer is under [`MIN_SPARE_BYTES`], or a load asks for a
    /// buffer meanwhile. Returns whether it was kept.
    pub fn prepare(&self, len: usize, mut pause: impl FnMut(Duration)) -> bool {
        if !Self::would_keep(len) {
            return false;
        }
        let takes = {
            let slot = self.slot();
            if slot.buf.is_some() {
                return false;
            }
            slot.takes
        };
        let mut buf: Vec<T> = Vec::new();
        if buf.try_reserve_exact(semsearch_scan::with_growth_room(len)).is_err() {
            return false;
        }
        let per_page = (PAGE_BYTES / size_of::<T>()).max(1);
        for chunk in buf.spare_capacity_mut()[..len].chunks_mut((PREPARE_CHUNK_BYTES / size_of::<T>()).max(1)) {
            let started = Instant::now();
            for page in chunk.chunks_mut(per_page) {
                page[0].write(T::default());
            }
            pause(started.elapsed());
            if self.slot().takes != takes {
                return false;
            }
        }
        // The writes above must happen although nothing reads them.
        std::hint::black_box(buf.spare_capacity_mut());
        let mut slot = self.slot();
        if slot.takes != takes || slot.buf.is_some() {
            return false;
        }
        slot.buf = Some(buf);
        true
    }

    /// Bytes held by this spare.
    pub fn bytes(&self) -> usize {
        self.slot().buf.as_ref().map_or(0, |v| Self::bytes_of(v.capacity()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use semsearch_scan::{int8::QuantizedBuilder, ScanMode};

    use super::*;
    use crate::index::{builder::IndexBuilder, Document};

    /// The spare is process-wide, so one test walks every rule in order
    /// (no other test of this binary retires a matrix this large).
    #[test]
    fn keeps_the_largest_retired_buffer_and_hands_it_to_a_load_that_fits() {
        let min = MIN_SPARE_BYTES / 4;
        let _ = MATRIX.take(min); // start from no spare
        MATRIX.keep(Vec::with_capacity(min - 1));
        assert_eq!(MATRIX.bytes(), 0, "below the minimum nothing is kept");

        let mut retired = vec![1.0f32; 2 * min];
        retired.truncate(1);
        let cap = retired.capacity();
        MATRIX.keep(retired);
        assert_eq!(MATRIX.bytes(), cap * 4);
        MATRIX.keep(Vec::with_capacity(min));
        assert_eq!(MATRIX.bytes(), cap * 4, "a smaller buffer does not displace a larger one");
        assert!(MATRIX.take(min - 1).is_none(), "a load under the minimum does not take it");
        assert_eq!(MATRIX.bytes(), cap * 4, "and leaves it for one that needs it");
        assert!(MATRIX.take(cap + 1).is_none(), "too small for the load");
        assert_eq!(MATRIX.bytes(), 0, "a spare too small for a load is freed, not kept beside it");

        MATRIX.keep(vec![0.0f32; 2 * min + 2]);
        assert!(MATRIX.take(min).is_none(), "more than twice what the load needs");
        assert_eq!(MATRIX.bytes(), 0, "so it is freed: the index shrank");

        let retired = vec![2.0f32; 2 * min];
        let (ptr, cap) = (retired.as_ptr(), retired.capacity());
        MATRIX.keep(retired);
        let got = MATRIX.take(cap).expect("fits exactly");
        assert!(got.is_empty() && got.capacity() >= cap);
        assert_eq!(got.as_ptr(), ptr, "the same allocation, not a copy");
        assert_eq!(MATRIX.bytes(), 0);
        drop(got);

        // Through the index: a retired snapshot's matrix is what the next
        // load writes its rows into, and the new snapshot holds exactly them.
        let dim = 384;
        // Twice the minimum, so a load of fewer rows is still one the spare serves.
        let n = 2 * min / dim;
        let build_n = |n: usize, shift: usize| {
            let mut b = IndexBuilder::new(dim);
            b.reserve(n);
            for i in 0..n {
                let mut row = vec![0.0f32; dim];
                row[(i + shift) % dim] = 1.0;
                b.push(Arc::new(Document { id: format!("{i:06}").into(), ..Default::default() }), &row);
            }
            b.finish().expect("sorted ids")
        };
        let first = build_n(n, 0);
        let first_rows = first.row(0).as_ptr();
        drop(first);
        let kept = semsearch_scan::with_growth_room(n * dim) * 4;
        assert_eq!(MATRIX.bytes(), kept, "the retired matrix is kept, with the room to grow it was allocated with");
        // The index gained rows since: up to the room, they still fit.
        let grown = n + n / 32 - 1;
        let second = build_n(grown, 1);
        assert_eq!(second.row(0).as_ptr(), first_rows, "written into the retired matrix");
        assert_eq!(MATRIX.bytes(), 0);
        for i in [0, 1, n / 2, grown - 1] {
            let mut want = vec![0.0f32; dim];
            want[(i + 1) % dim] = 1.0;
            assert_eq!(second.row(i), &want[..], "row {i} is the new load's, not the old one's");
        }
        assert_eq!(second.len(), grown);
        drop(second);
        assert_eq!(MATRIX.bytes(), kept, "and the same allocation retires again, room and all");
        let third = build_n(n - 1, 2);
        assert_eq!(third.row(0).as_ptr(), first_rows, "a load that lost a row writes into it too");
        drop(third);
        assert_eq!(MATRIX.bytes(), kept, "keeping its room rather than giving it back");
        let _ = MATRIX.take(n * dim);

        // The int8 codes likewise: a retiring int8 copy is kept, and the
        // loader's builder for as many rows takes it.
        let n = MIN_SPARE_BYTES / dim + 1;
        let int8 = build_n(n, 0).with_scan(ScanMode::Int8);
        assert!(int8.int8_bytes() >= n * dim, "an int8 copy was built");
        drop(int8);
        assert!(CODES.bytes() >= n * dim, "the retired codes are kept: {}", CODES.bytes());
        let mut asked = 0;
        let builder = QuantizedBuilder::new_in(dim, n + n / 64, |bytes| {
            asked = bytes;
            CODES.take(bytes)
        });
        assert!(builder.is_ok() && asked >= n * dim);
        assert_eq!(CODES.bytes(), 0, "taken by the next copy, of a few more rows (the room to grow)");
        let _ = MATRIX.take(n * dim);

        // Prepared at start: a buffer the size of a load is made resident
        // and kept for it, unless one is kept already or a load asked for
        // one meanwhile (it allocated its own).
        let _ = MATRIX.take(min);
        assert!(!MATRIX.prepare(min - 1, |_| {}), "below the minimum");
        let mut chunks = 0;
        assert!(MATRIX.prepare(2 * min, |_| chunks += 1));
        assert_eq!(
            chunks,
            (2 * min * 4).div_ceil(PREPARE_CHUNK_BYTES),
            "paused after every chunk (the room is not touched)"
        );
        let prepared = semsearch_scan::with_growth_room(2 * min) * 4;
        assert_eq!(MATRIX.bytes(), prepared);
        assert!(!MATRIX.prepare(2 * min, |_| {}), "one is kept already");
        assert_eq!(MATRIX.bytes(), prepared);
        let got =
            MATRIX.take(2 * min + 2 * min / 32).expect("the prepared buffer fits the load it was made for, grown");
        assert!(got.is_empty() && got.capacity() >= 2 * min);
        drop(got);
        let mut loads = 0;
        let raced = MATRIX.prepare(2 * min, |_| {
            if loads == 0 {
                loads += 1;
                assert!(MATRIX.take(2 * min).is_none(), "nothing to take yet");
            }
        });
        assert!(!raced, "a load asked meanwhile");
        assert_eq!(MATRIX.bytes(), 0, "so the prepared buffer is dropped, not kept beside the load's own");

        // SEMSEARCH_RELOAD_BUFFERS=free: nothing is kept or prepared, and
        // what was kept is freed.
        MATRIX.keep(Vec::with_capacity(2 * min));
        set_policy(ReloadBuffers::Free);
        assert_eq!(bytes(), 0, "freed when the policy is set");
        MATRIX.keep(Vec::with_capacity(2 * min));
        assert!(!MATRIX.prepare(2 * min, |_| {}));
        assert_eq!(bytes(), 0, "neither kept nor prepared");
        set_policy(ReloadBuffers::Keep);
        MATRIX.keep(Vec::with_capacity(2 * min));
        assert_eq!(MATRIX.bytes(), 2 * min * 4, "kept again");
        let _ = MATRIX.take(min);
    }
}
