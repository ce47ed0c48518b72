//! The account of a load: how many keys, rows and skips, which document ids
//! were skipped and why, and the fingerprint of the key set the snapshot
//! stands for. Keyed by document id: a per-key update re-accounts the ids
//! it re-read from what it found ([`Reread`]), without either snapshot.
//!
//! Skips are data, not errors: each is counted by [`SkipReason`] and logged
//! with its key, the first [`LOGGED_SKIPS_PER_REASON`] per reason per load,
//! then one summary line, so a corrupt keyspace cannot flood the log.

use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;
use tracing::{info, warn};

use crate::{
    index::Index,
    store::{
        decode::SkipReason,
        keys::{KeySetFingerprint, KeySpace},
    },
};

/// Skipped keys logged individually per reason and load.
pub const LOGGED_SKIPS_PER_REASON: u64 = 20;

/// Skipped keys by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SkipCounts([u64; SkipReason::ALL.len()]);

impl SkipCounts {
    pub fn add(&mut self, reason: SkipReason, n: u64) {
        self.0[reason as usize] += n;
    }
    pub fn get(&self, reason: SkipReason) -> u64 {
        self.0[reason as usize]
    }
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
    /// Every reason with its count, zeros included, in a stable order.
    pub fn by_name(&self) -> BTreeMap<&'static str, u64> {
        SkipReason::ALL.iter().map(|r| (r.as_str(), self.get(*r))).collect()
    }
}

impl Serialize for SkipCounts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.by_name().serialize(s)
    }
}

/// What one load did: logged once, published beside the snapshot for
/// `/v1/stats`, and kept by the refresher, whose reconcile compares its key
/// set with Redis.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Documents whose key exists but whose value was skipped (not vanished
    /// keys, and not invalid keys, which name no document): with the rows,
    /// the key set this snapshot accounts for.
    pub skipped_ids: BTreeMap<Box<str>, SkipReason>,
    /// Digest of every key SCAN found (rows and skipped alike), compared with
    /// Redis by the periodic reconcile.
    pub fingerprint: KeySetFingerprint,
    /// Distinct keys SCAN found under the embedding pattern.
    pub keys_scanned: usize,
    pub loaded: usize,
    pub skipped: SkipCounts,
    /// Bytes of values received from Redis.
    pub value_bytes: u64,
    pub dim: usize,
    pub duration: Duration,
    /// Where `duration` went, logged with the load (issue 24: a load must
    /// stay near the wire, so each stage's share is kept in sight).
    pub stages: LoadStages,
}

/// The stages of one load, in the order they run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadStages {
    /// SCAN, sorting and sorting out the keys.
    pub scan: Duration,
    /// MGET + PTTL of every chunk and its parsing, overlapped: until the
    /// last chunk's rows are in the matrix.
    pub read: Duration,
    /// From the matrix to the snapshot (checks, deadlines).
    pub finish: Duration,
}

/// Where one document stands in a snapshot's key account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A row of the index.
    Row,
    /// Its key exists, but its value was skipped for this reason.
    Skipped(SkipReason),
    /// No key: never written, deleted, or gone between SCAN and MGET.
    Absent,
}

impl Presence {
    /// Whether the document's key exists (so it is in the key set).
    pub fn has_key(self) -> bool {
        self != Self::Absent
    }
}

/// One document a per-key update re-read: where it stood in the published
/// snapshot, and where the re-read found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reread<'a> {
    pub id: &'a str,
    pub before: Presence,
    pub after: Presence,
}

/// Whether one skip is logged with its key, as the per-reason budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipLog {
    /// Within the budget: one line naming the key.
    Key,
    /// The last one within the budget: its line, then "further skips are counted, not logged".
    KeyThenSummary,
    /// Past the budget: counted only.
    Quiet,
}

impl SkipLog {
    /// The policy for the `n`th skip (from 1) of one reason in one load.
    pub fn for_nth(n: u64) -> Self {
        match n {
            n if n < LOGGED_SKIPS_PER_REASON => Self::Key,
            LOGGED_SKIPS_PER_REASON => Self::KeyThenSummary,
            _ => Self::Quiet,
        }
    }
}

impl LoadReport {
    /// Counts a skipped key and logs it within the per-reason budget. `id`
    /// is the document the key names, remembered for the key account unless
    /// the key is gone (`vanished`) or names no document (`invalid_key`).
    pub fn count_skip(&mut self, key: &str, id: Option<&str>, reason: SkipReason) {
        self.skipped.add(reason, 1);
        if let Some(id) = id.filter(|_| !matches!(reason, SkipReason::Vanished | SkipReason::InvalidKey)) {
            self.skipped_ids.insert(id.into(), reason);
        }
        let log = SkipLog::for_nth(self.skipped.get(reason));
        if log != SkipLog::Quiet {
            warn!(key, reason = reason.as_str(), "skipped embedding key");
        }
        if log == SkipLog::KeyThenSummary {
            warn!(reason = reason.as_str(), "further skips for this reason are counted, not logged, in this load");
        }
    }

    /// Where `id` stands in the snapshot this report accounts for; `is_row`
    /// says whether that snapshot holds it as a row.
    pub fn presence(&self, id: &str, is_row: bool) -> Presence {
        if is_row {
            return Presence::Row;
        }
        self.skipped_ids.get(id).map_or(Presence::Absent, |&reason| Presence::Skipped(reason))
    }

    /// The report after the documents `rereads` were re-read and merged
    /// into the snapshot this report accounts for, giving `merged`: the
    /// key-set fingerprint gains keys that now exist and loses keys that are
    /// gone, one key at a time, so the reconcile keeps agreeing with Redis;
    /// re-read ids are re-accounted as skipped or not; `loaded` and `dim`
    /// follow `merged`. O(re-read ids + skipped ids), never O(rows).
    pub fn after_update(&self, keys: &KeySpace, rereads: &[Reread<'_>], merged: &Index) -> LoadReport {
        let mut report = self.clone();
        for r in rereads {
            match (r.before.has_key(), r.after.has_key()) {
                (false, true) => report.fingerprint.insert(keys.embedding_key(r.id).as_bytes()),
                (true, false) => report.fingerprint.remove(keys.embedding_key(r.id).as_bytes()),
                _ => {}
            }
            match r.after {
                Presence::Skipped(reason) => report.skipped_ids.insert(r.id.into(), reason),
                Presence::Row | Presence::Absent => report.skipped_ids.remove(r.id),
            };
        }
        report.loaded = merged.len();
        report.dim = merged.dim();
        report
    }

    /// The one line a finished load logs.
    pub fn log(&self, index: &Index) {
        let count = |reason| self.skipped.get(reason);
        info!(
            docs = self.loaded,
            keys = self.keys_scanned,
            skipped = self.skipped.total(),
            wrong_type = count(SkipReason::WrongType),
            invalid_json = count(SkipReason::InvalidJson),
            non_finite = count(SkipReason::NonFinite),
            zero_vector = count(SkipReason::ZeroVector),
            wrong_dimension = count(SkipReason::WrongDimension),
            vanished = count(SkipReason::Vanished),
            invalid_key = count(SkipReason::InvalidKey),
            dim = self.dim,
            value_bytes = self.value_bytes,
            matrix_bytes = index.matrix_bytes(),
            metadata_bytes = index.metadata_bytes(),
            attributes = index.attributes().field_count(),
            attributes_dropped = index.attributes().dropped(),
            duration_ms = self.duration.as_millis() as u64,
            scan_ms = self.stages.scan.as_millis() as u64,
            read_ms = self.stages.read.as_millis() as u64,
            finish_ms = self.stages.finish.as_millis() as u64,
            "embeddings loaded"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::index::{Document, IndexBuilder};

    fn index_of(ids: &[&str]) -> Index {
        let mut rows = IndexBuilder::new(2);
        for id in ids {
            rows.push(Arc::new(Document { id: (*id).into(), ..Default::default() }), &[1.0, 0.0]);
        }
        rows.finish().expect("ids are given in order")
    }

    /// The fingerprint a full load of exactly these ids would compute.
    fn fingerprint_of(keys: &KeySpace, ids: &[&str]) -> KeySetFingerprint {
        let mut fingerprint = KeySetFingerprint::default();
        for id in ids {
            fingerprint.insert(keys.embedding_key(id).as_bytes());
        }
        fingerprint
    }

    #[test]
    fn skips_are_counted_by_reason_and_only_existing_documents_are_remembered() {
        // Arrange
        let mut report = LoadReport::default();

        // Act
        report.count_skip("cache:embedding:a", Some("a"), SkipReason::InvalidJson);
        report.count_skip("cache:embedding:b", Some("b"), SkipReason::WrongDimension);
        report.count_skip("cache:embedding:gone", Some("gone"), SkipReason::Vanished);
        report.count_skip("cache:embedding:", None, SkipReason::InvalidKey);
        report.count_skip("cache:embedding:c", Some("c"), SkipReason::InvalidJson);

        // Assert
        assert_eq!(report.skipped.get(SkipReason::InvalidJson), 2);
        assert_eq!(report.skipped.total(), 5);
        let remembered: Vec<(&str, SkipReason)> = report.skipped_ids.iter().map(|(id, r)| (&**id, *r)).collect();
        assert_eq!(
            remembered,
            [("a", SkipReason::InvalidJson), ("b", SkipReason::WrongDimension), ("c", SkipReason::InvalidJson)]
        );
    }

    #[test]
    fn skip_counts_name_every_reason_zeros_included() {
        // Arrange
        let mut counts = SkipCounts::default();
        counts.add(SkipReason::ZeroVector, 3);

        // Act
        let json = serde_json::to_value(&counts).expect("serializable");

        // Assert
        assert_eq!(json.as_object().map(|o| o.len()), Some(SkipReason::ALL.len()));
        assert_eq!(json["zero_vector"], 3);
        assert_eq!(json["wrong_type"], 0);
    }

    #[test]
    fn each_reason_logs_its_first_twenty_keys_then_one_summary() {
        let logs: Vec<SkipLog> = (1..=LOGGED_SKIPS_PER_REASON + 2).map(SkipLog::for_nth).collect();

        assert!(logs[..LOGGED_SKIPS_PER_REASON as usize - 1].iter().all(|l| *l == SkipLog::Key));
        assert_eq!(logs[LOGGED_SKIPS_PER_REASON as usize - 1], SkipLog::KeyThenSummary);
        assert_eq!(logs[LOGGED_SKIPS_PER_REASON as usize..], [SkipLog::Quiet, SkipLog::Quiet]);
    }

    #[test]
    fn presence_is_a_row_a_skipped_key_or_absent() {
        // Arrange
        let mut report = LoadReport::default();
        report.count_skip("cache:embedding:bad", Some("bad"), SkipReason::ZeroVector);

        // Act / Assert
        assert_eq!(report.presence("good", true), Presence::Row);
        assert_eq!(report.presence("bad", false), Presence::Skipped(SkipReason::ZeroVector));
        assert_eq!(report.presence("never", false), Presence::Absent);
    }

    #[test]
    fn an_update_leaves_the_report_a_full_load_of_the_new_key_set_would_give() {
        // Arrange: rows a, b, c; d skipped as invalid JSON.
        let keys = KeySpace::default();
        let mut before = LoadReport { fingerprint: fingerprint_of(&keys, &["a", "b", "c", "d"]), ..Default::default() };
        before.count_skip("cache:embedding:d", Some("d"), SkipReason::InvalidJson);
        let merged = index_of(&["a", "d", "e"]);

        // Act: b deleted, c now skipped, d repaired into a row, e added, a rewritten.
        let rereads = [
            Reread { id: "a", before: Presence::Row, after: Presence::Row },
            Reread { id: "b", before: Presence::Row, after: Presence::Absent },
            Reread { id: "c", before: Presence::Row, after: Presence::Skipped(SkipReason::NonFinite) },
            Reread { id: "d", before: Presence::Skipped(SkipReason::InvalidJson), after: Presence::Row },
            Reread { id: "e", before: Presence::Absent, after: Presence::Row },
            Reread { id: "f", before: Presence::Absent, after: Presence::Absent },
        ];
        let after = before.after_update(&keys, &rereads, &merged);

        // Assert: the fingerprint of a, c, d, e, as a full load would compute it.
        assert_eq!(after.fingerprint, fingerprint_of(&keys, &["a", "c", "d", "e"]));
        let skipped: Vec<(&str, SkipReason)> = after.skipped_ids.iter().map(|(id, r)| (&**id, *r)).collect();
        assert_eq!(skipped, [("c", SkipReason::NonFinite)]);
        assert_eq!((after.loaded, after.dim), (3, 2));
    }
}
