//! Redis Cluster's key → hash slot function, as the server computes it
//! (`CLUSTER KEYSLOT`): CRC16/XMODEM of the key, or of its `{hash tag}`
//! when the key has a non-empty one, modulo 16384.
//!
//! Needed here because redis-rs routes by slot internally but does not export
//! the function, and the loader groups its MGETs by slot (one MGET may not
//! span slots in a cluster).

// One slot function for the loader's MGET grouping and the shard filter:
// `crate::shard` owns it (a table-driven CRC16 checked against Redis).
pub use crate::shard::{key_slot, SLOTS};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_cluster_specification() {
        // The CRC16 check value and the examples of the cluster spec.
        assert_eq!(crate::shard::crc16(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"somekey"), 11_058);
    }

    #[test]
    fn a_hash_tag_decides_the_slot_only_when_it_is_not_empty() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crate::shard::crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"no-close{"), crate::shard::crc16(b"no-close{") % SLOTS);
    }
}
