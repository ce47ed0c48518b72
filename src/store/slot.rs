//! Redis Cluster's key → hash slot function, as the server computes it
//! (`CLUSTER KEYSLOT`): CRC16/XMODEM of the key, or of its `{hash tag}`
//! when the key has a non-empty one, modulo 16384.
//!
//! Owned here because redis-rs routes by slot internally but does not export
//! the function, and the loader groups its MGETs by slot (one MGET may not
//! span slots in a cluster).

/// Hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// The hash slot of `key`.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16::State::<crc16::XMODEM>::calculate(hash_tag(key).unwrap_or(key)) % SLOTS
}

/// The part between the first `{` and the next `}`, when it is not empty.
fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    let open = key.iter().position(|&b| b == b'{')?;
    let rest = &key[open + 1..];
    let close = rest.iter().position(|&b| b == b'}')?;
    (close > 0).then(|| &rest[..close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_the_redis_cluster_specification() {
        // The CRC16 check value and the examples of the cluster spec.
        assert_eq!(crc16::State::<crc16::XMODEM>::calculate(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12_182);
        assert_eq!(key_slot(b"somekey"), 11_058);
    }

    #[test]
    fn a_hash_tag_decides_the_slot_only_when_it_is_not_empty() {
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16::State::<crc16::XMODEM>::calculate(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"no-close{"), crc16::State::<crc16::XMODEM>::calculate(b"no-close{") % SLOTS);
    }
}
