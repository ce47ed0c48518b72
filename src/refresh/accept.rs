//! The per-key acceptance rule: what re-reading a few documents does to the
//! published snapshot. CPU work and no I/O: the loop runs [`apply_reread`]
//! on a blocking thread after `loader::load_ids`, and the machine in
//! `updates.rs` decides whether its result is published.
//!
//! Per re-read document, from where it stood in the published snapshot
//! and where the re-read found it ([`Reread`]):
//! - a row rewritten with another dimension keeps its last good row
//!   (counted as `wrong_dimension`): a stream of such rewrites must not
//!   shrink the live index key by key (issue 16);
//! - a row re-read as the same document (same vector bits, metadata and,
//!   within [`SAME_DEADLINE_MS`], deadline) is unchanged; a re-read that
//!   finds only such publishes nothing, so checking values costs no index
//!   version and purges no context;
//! - anything else enters the delta: upserted if the re-read found a row,
//!   removed otherwise.
//!
//! Cost: O(re-read documents + delta + skipped ids), never O(rows).

use std::collections::HashSet;

use crate::{
    index::{ApplyCounts, Index, IndexError},
    store::{
        decode::SkipReason,
        keys::KeySpace,
        loader::{LoadReport, Loaded, Presence, Reread},
    },
};

/// How far apart two reads of one key's deadline may be and still be the
/// same TTL: the deadline is measured from when the read was sent.
pub const SAME_DEADLINE_MS: u64 = 1_000;

/// What a re-read does to one document of the published snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acceptance {
    /// The snapshot already holds what was read: nothing to change.
    Unchanged,
    /// A row rewritten with another dimension: the last good row stays.
    KeepLastGoodRow,
    /// Upserted or removed in the next snapshot.
    Apply,
}

/// The rule for one document (see the module doc). `same_document` is
/// asked only when both the snapshot and the re-read hold a row.
pub fn accept(reread: &Reread<'_>, same_document: impl FnOnce() -> bool) -> Acceptance {
    match (reread.before, reread.after) {
        (Presence::Row, Presence::Skipped(SkipReason::WrongDimension)) => Acceptance::KeepLastGoodRow,
        (Presence::Row, Presence::Row) if same_document() => Acceptance::Unchanged,
        _ => Acceptance::Apply,
    }
}

/// A per-key update ready to publish: the next snapshot, what changed, and
/// the report that goes with it.
#[derive(Debug)]
pub struct Update {
    pub index: Index,
    pub counts: ApplyCounts,
    pub report: LoadReport,
}

/// The next snapshot after re-reading the documents `ids` into `fresh`,
/// with `report` the account of `current`. `None` when every re-read
/// document is as `current` has it (or keeps its last good row): nothing
/// to publish.
///
/// # Errors
/// [`IndexError`] if the re-read rows cannot join `current` (another
/// dimension; the loader already counts those as `wrong_dimension`).
pub fn apply_reread(
    current: &Index,
    report: &LoadReport,
    keys: &KeySpace,
    ids: &[Box<str>],
    fresh: &Loaded,
) -> Result<Option<Update>, IndexError> {
    let rereads: Vec<Reread<'_>> = ids
        .iter()
        .map(|id| Reread { id, before: report.presence(id, current.find(id).is_some()), after: fresh.presence(id) })
        .collect();
    let changed_ids: HashSet<&str> = rereads
        .iter()
        .filter(|r| {
            let same = || match (current.find(r.id), fresh.index.find(r.id)) {
                (Some(row), Some(fresh_row)) => same_document(current, row, &fresh.index, fresh_row),
                _ => false,
            };
            accept(r, same) == Acceptance::Apply
        })
        .map(|r| r.id)
        .collect();
    if changed_ids.is_empty() {
        return Ok(None);
    }
    let (index, counts) = current.apply(&fresh.index, &changed_ids)?;
    let report = report.after_update(keys, &rereads, &index);
    Ok(Some(Update { index, counts, report }))
}

/// Whether row `row` of `current` and row `fresh_row` of `fresh` are the
/// same document: the same vector bits, metadata and (within
/// [`SAME_DEADLINE_MS`]) deadline.
fn same_document(current: &Index, row: usize, fresh: &Index, fresh_row: usize) -> bool {
    let (a, b) = (current.doc(row), fresh.doc(fresh_row));
    let same_deadline = match (a.expires_at_ms, b.expires_at_ms) {
        (Some(x), Some(y)) => x.abs_diff(y) <= SAME_DEADLINE_MS,
        (x, y) => x == y,
    };
    same_deadline
        && a.url() == b.url()
        && a.title == b.title
        && a.text == b.text
        && a.attributes == b.attributes
        && current.row(row).iter().map(|x| x.to_bits()).eq(fresh.row(fresh_row).iter().map(|x| x.to_bits()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        index::{Document, IndexBuilder},
        store::keys::KeySetFingerprint,
    };

    /// A document with a title and optionally a deadline, and its 2-d row.
    struct Doc<'a> {
        id: &'a str,
        title: &'a str,
        expires_at_ms: Option<u64>,
        row: [f32; 2],
    }

    fn doc<'a>(id: &'a str, title: &'a str) -> Doc<'a> {
        Doc { id, title, expires_at_ms: None, row: [1.0, 0.0] }
    }

    fn index_of(docs: &[Doc<'_>]) -> Index {
        let mut rows = IndexBuilder::new(2);
        for d in docs {
            let document = Document {
                id: d.id.into(),
                title: Some(d.title.into()),
                expires_at_ms: d.expires_at_ms,
                ..Default::default()
            };
            rows.push(Arc::new(document), &d.row);
        }
        rows.finish().expect("ids are given in order")
    }

    /// The snapshot a full load of `docs` gives, with its report.
    fn loaded(keys: &KeySpace, docs: &[Doc<'_>], skipped: &[(&str, SkipReason)]) -> Loaded {
        let index = index_of(docs);
        let mut report = LoadReport { loaded: index.len(), dim: index.dim(), ..Default::default() };
        for d in docs {
            report.fingerprint.insert(keys.embedding_key(d.id).as_bytes());
        }
        for (id, reason) in skipped {
            report.fingerprint.insert(keys.embedding_key(id).as_bytes());
            report.count_skip(&keys.embedding_key(id), Some(id), *reason);
        }
        Loaded { index, report }
    }

    fn ids(names: &[&str]) -> Vec<Box<str>> {
        names.iter().map(|&n| n.into()).collect()
    }

    fn titles(index: &Index) -> Vec<(&str, &str)> {
        (0..index.len()).map(|r| (&*index.doc(r).id, index.doc(r).title.as_deref().unwrap_or(""))).collect()
    }

    #[test]
    fn the_rule_keeps_a_last_good_row_skips_the_unchanged_and_applies_the_rest() {
        let reread = |before, after| Reread { id: "a", before, after };
        let (row, absent) = (Presence::Row, Presence::Absent);
        let wrong_dim = Presence::Skipped(SkipReason::WrongDimension);
        let corrupt = Presence::Skipped(SkipReason::InvalidJson);

        assert_eq!(accept(&reread(row, wrong_dim), || unreachable!()), Acceptance::KeepLastGoodRow);
        assert_eq!(accept(&reread(row, row), || true), Acceptance::Unchanged);
        assert_eq!(accept(&reread(row, row), || false), Acceptance::Apply);
        assert_eq!(accept(&reread(row, corrupt), || unreachable!()), Acceptance::Apply, "a corrupt rewrite removes");
        assert_eq!(accept(&reread(row, absent), || unreachable!()), Acceptance::Apply);
        assert_eq!(accept(&reread(absent, wrong_dim), || unreachable!()), Acceptance::Apply);
        assert_eq!(accept(&reread(corrupt, row), || unreachable!()), Acceptance::Apply);
    }

    #[test]
    fn a_re_read_that_finds_what_the_snapshot_holds_publishes_nothing() {
        // Arrange: the same documents, read again (new allocations, same
        // bits), a's deadline read again 900 ms later.
        let keys = KeySpace::default();
        let current = loaded(&keys, &[Doc { expires_at_ms: Some(10_000), ..doc("a", "A") }, doc("b", "B")], &[]);
        let fresh = loaded(&keys, &[Doc { expires_at_ms: Some(10_900), ..doc("a", "A") }, doc("b", "B")], &[]);

        // Act
        let update = apply_reread(&current.index, &current.report, &keys, &ids(&["a", "b"]), &fresh).expect("2-d");

        // Assert
        assert!(update.is_none(), "nothing to publish");
    }

    #[test]
    fn a_deadline_moved_by_more_than_a_second_is_a_change() {
        // Arrange
        let keys = KeySpace::default();
        let current = loaded(&keys, &[Doc { expires_at_ms: Some(10_000), ..doc("a", "A") }], &[]);
        let fresh = loaded(&keys, &[Doc { expires_at_ms: Some(10_000 + SAME_DEADLINE_MS + 1), ..doc("a", "A") }], &[]);

        // Act
        let update = apply_reread(&current.index, &current.report, &keys, &ids(&["a"]), &fresh).expect("2-d");

        // Assert
        let update = update.expect("a change to publish");
        assert_eq!(update.counts, ApplyCounts { added: 0, updated: 1, removed: 0 });
        assert_eq!(update.index.doc(0).expires_at_ms, Some(10_000 + SAME_DEADLINE_MS + 1));
    }

    #[test]
    fn issue_16_a_rewrite_with_another_dimension_keeps_the_last_good_row() {
        // Arrange: a is rewritten 3-d (the loader skipped it), b is rewritten properly.
        let keys = KeySpace::default();
        let current = loaded(&keys, &[doc("a", "A"), doc("b", "B")], &[]);
        let fresh = loaded(&keys, &[doc("b", "B2")], &[("a", SkipReason::WrongDimension)]);

        // Act
        let update = apply_reread(&current.index, &current.report, &keys, &ids(&["a", "b"]), &fresh).expect("2-d");

        // Assert: a keeps its row; its key is still in the key set, accounted as skipped.
        let update = update.expect("b changed");
        assert_eq!(titles(&update.index), [("a", "A"), ("b", "B2")]);
        assert_eq!(update.counts, ApplyCounts { added: 0, updated: 1, removed: 0 });
        assert_eq!(update.report.fingerprint, current.report.fingerprint);
        assert_eq!(update.report.presence("a", false), Presence::Skipped(SkipReason::WrongDimension));
    }

    #[test]
    fn only_a_wrong_dimension_rewrite_publishes_nothing() {
        // Arrange
        let keys = KeySpace::default();
        let current = loaded(&keys, &[doc("a", "A")], &[]);
        let fresh = loaded(&keys, &[], &[("a", SkipReason::WrongDimension)]);

        // Act
        let update = apply_reread(&current.index, &current.report, &keys, &ids(&["a"]), &fresh).expect("2-d");

        // Assert
        assert!(update.is_none());
    }

    #[test]
    fn added_deleted_and_corrupted_documents_leave_the_account_a_full_load_would_give() {
        // Arrange: a, b, c; d was skipped as corrupt. Then: b deleted, c
        // corrupted, d repaired, e added.
        let keys = KeySpace::default();
        let current = loaded(&keys, &[doc("a", "A"), doc("b", "B"), doc("c", "C")], &[("d", SkipReason::InvalidJson)]);
        let fresh = loaded(&keys, &[doc("d", "D"), doc("e", "E")], &[("c", SkipReason::ZeroVector)]);

        // Act
        let update = apply_reread(&current.index, &current.report, &keys, &ids(&["b", "c", "d", "e"]), &fresh)
            .expect("2-d")
            .expect("changes to publish");

        // Assert: the oracle is a full load of what Redis now holds.
        let full = loaded(&keys, &[doc("a", "A"), doc("d", "D"), doc("e", "E")], &[("c", SkipReason::ZeroVector)]);
        assert_eq!(titles(&update.index), titles(&full.index));
        assert_eq!(update.counts, ApplyCounts { added: 2, updated: 0, removed: 2 });
        assert_eq!(update.report.fingerprint, full.report.fingerprint);
        assert_eq!(update.report.skipped_ids, full.report.skipped_ids);
        assert_eq!((update.report.loaded, update.report.dim), (3, 2));
        assert_ne!(update.report.fingerprint, KeySetFingerprint::default());
    }
}
