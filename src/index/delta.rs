//! Per-key updates that cost the changed rows, not the index (issue 12).
//!
//! A snapshot is a base [`Segment`] (shared by `Arc`, never copied by an
//! update), a delta segment of the documents added or rewritten since the
//! base was built, and the tombstones of the base rows those documents
//! superseded or that were deleted. [`Index::apply`] builds the next
//! snapshot in O(changed rows + delta + tombstones) time and memory (plus a
//! binary search per changed id), so a SET on a 1M-row index copies a few
//! hundred kilobytes, not the ~2 GB of f32 rows and int8 copy.
//!
//! The delta is scanned in f32, without an int8 copy: it holds at most
//! [`DELTA_MAX_ROWS`] rows (1.5 MB at D = 384, under 1% of a 100k×384
//! matrix), quantizing it on every update would cost more than it saves, and
//! the f32 scan is exact by definition.
//!
//! Exactness: `search.rs` scans the base with its tombstoned rows among
//! the rows the scan skips (the int8 pass never makes a skipped row a
//! candidate nor lets its lower bound raise the cut; the f32 scan never
//! selects one), scans the delta for `k`, and merges the two by score, then
//! by merged row: the merged view is in id order, so that is the tie rule.
//! Scores are the f32 kernel's bits for the row wherever it is stored (a
//! row's score does not depend on its block or batch, see
//! `semsearch_scan`), so the answer equals a fresh index's bit for bit.
//!
//! When the delta or the tombstones reach [`DELTA_MAX_ROWS`],
//! [`Index::needs_merge`] says so and the refresher builds
//! [`Index::merged`] (a new base of the live rows, quantized again) in the
//! background and swaps it in like a reload. The bound is in rows rather
//! than N/16 because every query reads the whole delta in f32 (1,024 rows
//! are 1.5 MB at D = 384): 1,024 keeps that small next to the base scan
//! (measured by `benches/update.rs`, part 3), at the cost of one background
//! merge per 1,024 changed documents.

use std::{collections::HashSet, sync::Arc};

use super::{lexical, ApplyCounts, Document, Index, IndexBuilder, IndexError, Segment, SegmentRow};

/// Delta rows or tombstones at which a snapshot asks to be merged into a new base.
pub const DELTA_MAX_ROWS: usize = 1024;

impl Index {
    /// Where row `row` of the merged view is stored.
    ///
    /// # Panics
    /// If `row >= len()`.
    pub fn locate(&self, row: usize) -> SegmentRow {
        assert!(row < self.len(), "row {row} of an index of {} rows", self.len());
        let d = self.delta_at.partition_point(|&m| (m as usize) < row);
        if self.delta_at.get(d).is_some_and(|&m| m as usize == row) {
            return SegmentRow::Delta(d);
        }
        // `live` live base rows come before this one; skip the tombstones among them.
        let live = row - d;
        SegmentRow::Base(live + self.live_before_tomb.partition_point(|&x| x as usize <= live))
    }

    /// The merged-view row of base row `i`, `None` if it is tombstoned.
    pub fn base_row_in_view(&self, i: usize) -> Option<usize> {
        let dead = self.tombstones.partition_point(|&t| (t as usize) < i);
        if self.tombstones.get(dead).is_some_and(|&t| t as usize == i) {
            return None;
        }
        Some(i - dead + self.delta_pos.partition_point(|&p| p as usize <= i))
    }

    /// The base segment (shared with other snapshots) and the delta.
    pub fn segments(&self) -> (&Segment, &Segment) {
        (&self.base, &self.delta)
    }

    /// Base rows removed or superseded since the base was built, ascending.
    pub fn tombstones(&self) -> &[u32] {
        &self.tombstones
    }

    /// Merged-view rows of the delta rows, ascending.
    pub fn delta_rows_in_view(&self) -> &[u32] {
        &self.delta_at
    }

    /// Whether the delta has grown enough to be merged into a new base.
    pub fn needs_merge(&self) -> bool {
        self.delta.len().max(self.tombstones.len()) >= DELTA_MAX_ROWS
    }

    /// `merged` (built by [`Index::merged`] from `source`) with the updates
    /// this snapshot has on top of `source` applied: what a background
    /// merge publishes when per-key updates were published while it ran.
    /// `None` when this snapshot does not descend from `source` by per-key
    /// updates (a reload or another merge replaced the base). O(delta +
    /// tombstones of both).
    pub fn rebase(&self, source: &Index, merged: &Index) -> Option<Index> {
        if !self.shares_base_with(source) {
            return None;
        }
        // Every id either snapshot has touched since the base was built.
        let touched: std::collections::BTreeSet<&str> = [self, source]
            .into_iter()
            .flat_map(|s| {
                s.delta.docs().iter().map(|d| &*d.id).chain(s.tombstones.iter().map(|&t| &*s.base.doc(t as usize).id))
            })
            .collect();
        let mut fresh = IndexBuilder::new(self.dim());
        let mut changed = HashSet::new();
        for id in touched {
            let (now, then) = (self.find(id), source.find(id));
            let same = match (now, then) {
                (Some(a), Some(b)) => Arc::ptr_eq(self.doc_arc(a), source.doc_arc(b)),
                (None, None) => true,
                _ => false,
            };
            if !same {
                changed.insert(id);
                if let Some(row) = now {
                    fresh.push(Arc::clone(self.doc_arc(row)), self.row(row));
                }
            }
        }
        let fresh = fresh.finish().expect("a BTreeSet walks ids in order");
        let (rebased, _) = merged.apply(&fresh, &changed).ok()?;
        Some(rebased)
    }

    /// The shared document of one merged-view row.
    fn doc_arc(&self, row: usize) -> &Arc<Document> {
        match self.locate(row) {
            SegmentRow::Base(i) => &self.base.docs()[i],
            SegmentRow::Delta(j) => &self.delta.docs()[j],
        }
    }

    /// Whether the base is shared with `other` (same base, maybe other deltas).
    pub fn shares_base_with(&self, other: &Index) -> bool {
        Arc::ptr_eq(&self.base, &other.base)
    }

    /// The same documents as one new base without delta or tombstones,
    /// scanned as this snapshot's [`Index::scan_mode`] asks. Copies every
    /// live row and quantizes again: CPU work, O(N), for a blocking thread.
    pub fn merged(&self) -> Index {
        let mut b = IndexBuilder::new(self.dim());
        b.reserve(self.len());
        // One linear walk: live base rows and delta rows interleave by id.
        let (mut i, mut dead, mut j) = (0, 0, 0);
        for row in 0..self.len() {
            if self.delta_at.get(j).is_some_and(|&m| m as usize == row) {
                b.push(Arc::clone(&self.delta.docs()[j]), self.delta.row(j));
                j += 1;
                continue;
            }
            while self.tombstones.get(dead).is_some_and(|&t| t as usize == i) {
                (i, dead) = (i + 1, dead + 1);
            }
            b.push(Arc::clone(&self.base.docs()[i]), self.base.row(i));
            i += 1;
        }
        let merged = b.finish().expect("the merged view is in ascending id order");
        let merged = merged.with_scan(self.scan_mode);
        match &self.lexical {
            Some(settings) => merged.with_lexical(Arc::clone(settings)),
            None => merged,
        }
    }

    /// The next snapshot after re-reading the documents `changed_ids`.
    ///
    /// `fresh` holds what those documents are now: its rows replace or add
    /// documents, and a changed id absent from `fresh` was deleted (or is no
    /// longer valid). The base is shared, not copied: changed documents go
    /// to the delta, their old base rows become tombstones. Cost: O(changed
    /// + delta + tombstones), never O(N).
    ///
    /// # Errors
    /// [`IndexError::DimensionMismatch`] if `fresh` has another dimension.
    pub fn apply(&self, fresh: &Index, changed_ids: &HashSet<&str>) -> Result<(Index, ApplyCounts), IndexError> {
        let dim = if self.dim() == 0 { fresh.dim() } else { self.dim() };
        if !fresh.is_empty() && fresh.dim() != dim {
            return Err(IndexError::DimensionMismatch { expected: dim, got: fresh.dim() });
        }
        let mut counts = ApplyCounts::default();
        let mut tombstones = self.tombstones.clone();
        let mut tombstoned = self.lexical.as_ref().map(|_| self.tombstoned.clone());
        for &id in changed_ids {
            match (self.find(id).is_some(), fresh.find(id).is_some()) {
                (false, true) => counts.added += 1,
                (true, true) => counts.updated += 1,
                (true, false) => counts.removed += 1,
                (false, false) => {}
            }
            if let Ok(i) = self.base.find(id) {
                let fresh_tombstone = self.tombstones.binary_search(&(i as u32)).is_err();
                if let (Some(t), Some(settings), true) = (&mut tombstoned, &self.lexical, fresh_tombstone) {
                    // Each base row is tombstoned once per base: add its share once.
                    t.add(&lexical::doc_terms(settings, self.base.doc(i)), self.base.row(i));
                }
                tombstones.push(i as u32);
            }
        }
        tombstones.sort_unstable();
        tombstones.dedup();

        // Merge two id-sorted row lists: the old delta without the changed
        // ids, and the changed documents `fresh` still holds.
        let mut delta = IndexBuilder::new(dim);
        delta.reserve(self.delta.len() + changed_ids.len());
        // The delta's analysed terms, row for row: kept ones are reused, only
        // the changed documents are analysed.
        let mut delta_terms = Vec::new();
        let old_terms = self.delta.lexical().map(|l| l.terms.as_slice());
        let (old, new) = (self.delta.docs(), fresh_docs(fresh));
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let take_old = match (old.get(i), new.get(j)) {
                (Some(o), Some((n, _))) => o.id < n.id,
                (Some(_), None) => true,
                _ => false,
            };
            if take_old {
                if !changed_ids.contains(&*old[i].id) {
                    delta.push(Arc::clone(&old[i]), self.delta.row(i));
                    if let (Some(settings), Some(terms)) = (&self.lexical, old_terms) {
                        delta_terms
                            .push(terms.get(i).cloned().unwrap_or_else(|| lexical::doc_terms(settings, &old[i])));
                    }
                }
                i += 1;
            } else {
                // Only documents that changed come from `fresh`: an unchanged
                // one re-read with them keeps its old row.
                let (doc, row) = &new[j];
                if changed_ids.contains(&*doc.id) {
                    delta.push(Arc::clone(doc), row);
                    if let Some(settings) = &self.lexical {
                        delta_terms.push(lexical::doc_terms(settings, doc));
                    }
                }
                j += 1;
            }
        }
        let delta = delta.finish()?;
        let mut delta = Arc::into_inner(delta.base).expect("a fresh index owns its base");
        if self.lexical.is_some() {
            let part = lexical::SegmentLexical::delta(delta_terms, delta.rows(), dim);
            delta.set_lexical(part);
        }
        let mut next = self.with_delta(delta, tombstones);
        if let Some(t) = tombstoned {
            next.tombstoned = t;
        }
        Ok((next, counts))
    }

    /// This snapshot's base with another delta and tombstones, and the
    /// look-up tables between the three. O(delta × log N + tombstones).
    fn with_delta(&self, delta: Segment, tombstones: Vec<u32>) -> Index {
        let live_before_tomb: Vec<u32> = tombstones.iter().enumerate().map(|(c, &t)| t - c as u32).collect();
        let mut tomb_deadlines: Vec<u64> =
            tombstones.iter().filter_map(|&t| self.base.doc(t as usize).expires_at_ms).collect();
        tomb_deadlines.sort_unstable();
        let delta_pos: Vec<u32> =
            delta.docs().iter().map(|d| self.base.find(&d.id).unwrap_or_else(|p| p) as u32).collect();
        let delta_at: Vec<u32> = delta_pos
            .iter()
            .enumerate()
            .map(|(j, &p)| {
                let dead = tombstones.partition_point(|&t| t < p);
                (j + p as usize - dead) as u32
            })
            .collect();
        let mut next = Index::from_base(Arc::clone(&self.base), delta, self.scan_mode);
        next.lexical = self.lexical.clone();
        next.tombstones = tombstones;
        next.live_before_tomb = live_before_tomb;
        next.tomb_deadlines = tomb_deadlines;
        next.delta_pos = delta_pos;
        next.delta_at = delta_at;
        next
    }
}

/// Every document of `fresh` with its row, in id order (`fresh` is a small
/// index of re-read keys; usually a bare base).
fn fresh_docs(fresh: &Index) -> Vec<(Arc<Document>, &[f32])> {
    (0..fresh.len()).map(|r| (Arc::clone(fresh.doc_arc(r)), fresh.row(r))).collect()
}

/// Also the model and strategies of `search`'s property test.
#[cfg(test)]
pub(super) mod props;
