//! The network side of a load: which keys to read (SCAN's, or those of the
//! documents a per-key update names), and the stream of chunk reads that feeds the
//! parser, a few chunks ahead of it.
//!
//! Which node holds a key, slots, PTTL and TYPE are `link`'s business
//! ([`ValueReader`]); this file only cuts the sorted key list into chunks
//! and keeps [`FETCHES_IN_FLIGHT`] of them on the wire.

use std::sync::Arc;

use futures::StreamExt;
use tokio::sync::mpsc;

use crate::store::{
    keys::{KeySetFingerprint, KeySpace},
    link::{self, ReadValues, RedisConn, ValueReader},
};

/// MGET replies requested ahead of the parser. Two keeps Redis busy while a
/// reply is in transit without holding many multi-megabyte replies at once.
pub(super) const FETCHES_IN_FLIGHT: usize = 2;

/// The keys a load reads, sorted out from the ones it only counts.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct KeysToRead {
    /// Keys naming a document this replica keeps, sorted and distinct, so
    /// rows come out in id order.
    pub keys: Vec<String>,
    /// Keys under the prefix that name no document (not UTF-8, or the bare
    /// prefix), printable for the log: counted as `invalid_key`.
    pub invalid: Vec<String>,
    /// Every key this replica keeps, valid or not: what the reconcile
    /// compares with Redis. Filled by SCAN only.
    pub fingerprint: KeySetFingerprint,
}

impl KeysToRead {
    /// Sorts out what SCAN found (in no order, keys possibly repeated, see
    /// [`link::scan_raw`]): another shard's keys are dropped before
    /// anything counts them; the keys to read come out sorted and
    /// distinct, each copied so that they lie in memory in that order
    /// (the load walks them in order three more times).
    pub(super) fn from_scan(raw: Vec<Vec<u8>>, keys: &KeySpace) -> Self {
        let (order, fingerprint) = distinct_owned(&raw, keys);
        let mut out = Self { fingerprint, ..Self::default() };
        out.keys.reserve_exact(order.len());
        // SCAN MATCH also returns the bare prefix, which names no document.
        let mut bare = Vec::new();
        for i in order {
            let key = &raw[i as usize];
            match std::str::from_utf8(key) {
                Ok(k) if keys.doc_id(k).is_some() => out.keys.push(k.to_owned()),
                Ok(k) => bare.push(k.to_owned()),
                Err(_) => out.invalid.push(String::from_utf8_lossy(key).into_owned()),
            }
        }
        out.invalid.extend(bare);
        out
    }

    /// Only the fingerprint of what SCAN found, as [`KeysToRead::from_scan`] computes it.
    pub(super) fn fingerprint_of_scan(raw: &[Vec<u8>], keys: &KeySpace) -> KeySetFingerprint {
        distinct_owned(raw, keys).1
    }

    /// The keys of documents to re-read, by id: sorted and deduplicated
    /// here; another shard's are dropped, and an id that names no key (the
    /// empty one) is an invalid key.
    pub(super) fn from_ids(ids: &[Box<str>], keys: &KeySpace) -> Self {
        let mut list: Vec<String> = ids.iter().map(|id| keys.embedding_key(id)).collect();
        list.sort_unstable();
        list.dedup();
        let mut out = Self::default();
        for key in list.into_iter().filter(|k| keys.owns(k.as_bytes())) {
            if keys.doc_id(&key).is_some() {
                out.keys.push(key);
            } else {
                out.invalid.push(key);
            }
        }
        out
    }
}

/// Positions of the distinct keys of `raw` this replica keeps, in byte
/// order, and their fingerprint. The fingerprint is taken in SCAN's order,
/// which is the keys' order in memory (the sorted order would cost a cache
/// miss per key at a million keys).
fn distinct_owned(raw: &[Vec<u8>], keys: &KeySpace) -> (Vec<u32>, KeySetFingerprint) {
    let mut order = link::distinct_order(raw);
    let mut counted = vec![false; raw.len()];
    for &i in &order {
        counted[i as usize] = true;
    }
    let mut fingerprint = KeySetFingerprint::default();
    for (key, counted) in raw.iter().zip(counted.iter_mut()) {
        *counted = *counted && keys.owns(key);
        if *counted {
            fingerprint.insert(key);
        }
    }
    order.retain(|&i| counted[i as usize]);
    (order, fingerprint)
}

/// Every key under the embedding pattern, sorted out (see [`KeysToRead::from_scan`]).
///
/// # Errors
/// When a SCAN call fails.
pub(super) async fn scan_keys(conn: &RedisConn, keys: &KeySpace, count: usize) -> redis::RedisResult<KeysToRead> {
    Ok(KeysToRead::from_scan(link::scan_raw(conn, keys.embedding_pattern(), count).await?, keys))
}

/// The fingerprint of every key under the embedding pattern, without
/// sorting out the keys themselves (the periodic reconcile's question).
///
/// # Errors
/// When a SCAN call fails.
pub(super) async fn scan_fingerprint(
    conn: &RedisConn,
    keys: &KeySpace,
    count: usize,
) -> redis::RedisResult<KeySetFingerprint> {
    Ok(KeysToRead::fingerprint_of_scan(&link::scan_raw(conn, keys.embedding_pattern(), count).await?, keys))
}

/// One chunk of the key list, read.
pub(super) struct FetchedChunk {
    /// Position of the chunk's first key in the key list.
    pub first_key: usize,
    pub read: ReadValues,
}

/// Reads `keys` in chunks of `chunk_keys`, [`FETCHES_IN_FLIGHT`] at a
/// time, and sends each chunk in key order; stops after the first failure
/// (sent too) or when the receiver is gone.
pub(super) async fn fetch_chunks(
    reader: ValueReader,
    keys: Arc<[String]>,
    chunk_keys: usize,
    tx: mpsc::Sender<redis::RedisResult<FetchedChunk>>,
) {
    let starts = (0..keys.len()).step_by(chunk_keys.max(1));
    let mut replies = futures::stream::iter(starts)
        .map(|first_key| {
            let end = (first_key + chunk_keys).min(keys.len());
            let (reader, keys) = (reader.clone(), Arc::clone(&keys));
            async move { Ok(FetchedChunk { first_key, read: reader.read(&keys[first_key..end]).await? }) }
        })
        .buffered(FETCHES_IN_FLIGHT);
    while let Some(reply) = replies.next().await {
        let failed = reply.is_err();
        if tx.send(reply).await.is_err() || failed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;

    fn raw(keys: &[&[u8]]) -> Vec<Vec<u8>> {
        keys.iter().map(|k| k.to_vec()).collect()
    }

    #[test]
    fn scanned_keys_that_name_no_document_are_invalid_but_fingerprinted() {
        // Arrange
        let keys = KeySpace::default();
        let scanned = raw(&[b"cache:embedding:", b"cache:embedding:a", b"cache:embedding:b", b"cache:embedding:\xff"]);

        // Act
        let sorted = KeysToRead::from_scan(scanned, &keys);

        // Assert
        assert_eq!(sorted.keys, ["cache:embedding:a", "cache:embedding:b"]);
        assert_eq!(sorted.invalid, ["cache:embedding:\u{fffd}", "cache:embedding:"]);
        assert_eq!(sorted.fingerprint.count, 4);
    }

    #[test]
    fn another_shards_keys_are_neither_read_nor_counted() {
        // Arrange: shard 0 of 2, and one key each side of it.
        let keys = KeySpace::default().with_shard(Shard::new(0, 2));
        let (mut ours, mut theirs) = (None, None);
        for i in 0.. {
            let key = format!("cache:embedding:{i}");
            let slot = if Shard::owner_of(key.as_bytes(), 2) == 0 { &mut ours } else { &mut theirs };
            slot.get_or_insert(key);
            if ours.is_some() && theirs.is_some() {
                break;
            }
        }
        let (ours, theirs) = (ours.expect("found"), theirs.expect("found"));

        // Act
        let scanned = KeysToRead::from_scan(raw(&[ours.as_bytes(), theirs.as_bytes()]), &keys);
        let id = |key: &str| Box::<str>::from(&key["cache:embedding:".len()..]);
        let listed = KeysToRead::from_ids(&[id(&theirs), id(&ours)], &keys);

        // Assert
        assert_eq!(scanned.keys, listed.keys);
        assert_eq!(listed.keys, [ours]);
        assert_eq!(scanned.fingerprint.count, 1);
        assert!(listed.invalid.is_empty());
    }

    #[test]
    fn documents_to_re_read_are_sorted_and_deduplicated() {
        // Arrange
        let keys = KeySpace::default();
        let ids: Vec<Box<str>> = ["b", "", "a", "b"].into_iter().map(Box::from).collect();

        // Act
        let sorted = KeysToRead::from_ids(&ids, &keys);

        // Assert
        assert_eq!(sorted.keys, ["cache:embedding:a", "cache:embedding:b"]);
        assert_eq!(sorted.invalid, ["cache:embedding:"], "the empty id names no document");
        assert_eq!(sorted.fingerprint, KeySetFingerprint::default(), "a re-read does not count the key set");
    }
}
