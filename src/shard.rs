//! Which documents a shard keeps: Redis hash slots and `SEMSEARCH_SHARD=i/n`.
//!
//! A key's slot is computed exactly as Redis Cluster computes it (CRC16/XMODEM
//! of the key, or of its `{hashtag}`, mod 16384), so a shard's slots are known
//! without asking any cluster, and the router can tell which shard owns a
//! document id from the id alone. Shard `i` of `n` keeps the keys whose
//! `slot mod n == i`: every key belongs to exactly one shard, and shards of
//! the same `n` partition the key space.
//!
//! Owns no I/O: `store` filters keys with it, the router routes with it.

use std::{fmt, str::FromStr};

use thiserror::Error;

/// Hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// CRC16 with the XMODEM parameters (poly 0x1021, init 0, no reflection,
/// no final xor): the checksum Redis Cluster uses for key slots. A 256-entry
/// table built at compile time: a dozen lines checked against the standard
/// check value and Redis's own answers (`CLUSTER KEYSLOT`). The store's
/// per-slot MGETs use it too (`store::link`).
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16/XMODEM of `bytes`.
pub fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)])
}

/// The part of a key Redis hashes: the bytes between the first `{` and the
/// first `}` after it, when that is non-empty; else the whole key.
pub fn hashed_part(key: &[u8]) -> &[u8] {
    let Some(open) = key.iter().position(|&b| b == b'{') else { return key };
    let rest = &key[open + 1..];
    match rest.iter().position(|&b| b == b'}') {
        Some(close) if close > 0 => &rest[..close],
        _ => key,
    }
}

/// The Redis Cluster hash slot of `key` (0..16384).
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hashed_part(key)) % SLOTS
}

/// Why a `SEMSEARCH_SHARD` value was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("shard {value:?} must be written i/n with 0 <= i < n <= 16384, e.g. 0/3")]
    Malformed { value: String },
}

/// One shard of `count`: the keys whose slot mod `count` is `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u16,
    count: u16,
}

impl Shard {
    /// Shard `index` of `count`; `None` unless `index < count <= 16384`
    /// (more shards than slots would leave some shards empty forever).
    pub fn new(index: u16, count: u16) -> Option<Self> {
        (index < count && count <= SLOTS).then_some(Self { index, count })
    }

    pub fn index(self) -> u16 {
        self.index
    }

    pub fn count(self) -> u16 {
        self.count
    }

    /// Whether this shard keeps `key` (a full Redis key, prefix included).
    pub fn owns(self, key: &[u8]) -> bool {
        key_slot(key) % self.count == self.index
    }

    /// The shard of `count` that owns `key`.
    ///
    /// # Panics
    /// When `count` is 0: a router always has at least one shard.
    pub fn owner_of(key: &[u8], count: u16) -> u16 {
        assert!(count > 0, "a router has at least one shard");
        key_slot(key) % count
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ShardError::Malformed { value: s.to_owned() };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let i: u16 = i.trim().parse().map_err(|_| bad())?;
        let n: u16 = n.trim().parse().map_err(|_| bad())?;
        Self::new(i, n).ok_or_else(bad)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn crc16_matches_the_xmodem_check_value() {
        // The catalogue check value of CRC-16/XMODEM, also quoted in the
        // Redis Cluster specification: "123456789" -> 0x31C3.
        assert_eq!(crc16(b"123456789"), 0x31C3);
        assert_eq!(crc16(b""), 0);
    }

    #[test]
    fn key_slot_matches_the_slots_redis_documents() {
        // From the Redis documentation (CLUSTER KEYSLOT and the cluster spec).
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
        assert_eq!(key_slot(b"bar{hash_tag}"), 2515);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
    }

    #[test]
    fn hashtag_rules_follow_redis() {
        assert_eq!(hashed_part(b"{user1000}.following"), b"user1000");
        assert_eq!(hashed_part(b"foo{}{bar}"), b"foo{}{bar}", "an empty first tag hashes the whole key");
        assert_eq!(hashed_part(b"foo{{bar}}zap"), b"{bar", "the tag ends at the first closing brace");
        assert_eq!(hashed_part(b"foo{bar}{zap}"), b"bar", "only the first tag counts");
        assert_eq!(hashed_part(b"no braces"), b"no braces");
        assert_eq!(hashed_part(b"open{only"), b"open{only");
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
    }

    #[test]
    fn shard_parses_i_of_n_and_refuses_the_rest() {
        assert_eq!("0/3".parse(), Ok(Shard { index: 0, count: 3 }));
        assert_eq!(" 2 / 3 ".parse(), Ok(Shard { index: 2, count: 3 }));
        for bad in ["3/3", "1/0", "0/16385", "-1/3", "1", "a/b", "1/2/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!(Shard::new(1, 4).map(|s| s.to_string()).as_deref(), Some("1/4"));
    }

    proptest! {
        #[test]
        fn every_key_belongs_to_exactly_one_shard(key in proptest::collection::vec(any::<u8>(), 0..64), n in 1u16..16) {
            let owners: Vec<u16> = (0..n).filter(|&i| Shard::new(i, n).is_some_and(|s| s.owns(&key))).collect();
            prop_assert_eq!(owners, vec![Shard::owner_of(&key, n)]);
        }

        #[test]
        fn table_crc_equals_the_bitwise_definition(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut crc = 0u16;
            for &b in &bytes {
                crc ^= u16::from(b) << 8;
                for _ in 0..8 {
                    crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
                }
            }
            prop_assert_eq!(crc16(&bytes), crc);
        }
    }
}
