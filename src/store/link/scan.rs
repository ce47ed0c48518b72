//! SCAN on every primary: one node's SCAN sees only its own slots, so a
//! cluster is walked node after node, with the topology read once at the
//! start. MATCH with a COUNT hint, never KEYS (which blocks Redis).

use redis::RedisResult;

use super::{conn::RedisConn, topology::Topology};

/// SCAN over every node, one node after the other: each call to
/// [`KeyScan::next`] is one SCAN round trip.
pub struct KeyScan {
    topology: Topology,
    pattern: String,
    count: usize,
    node: usize,
    cursor: u64,
}

impl KeyScan {
    /// Reads the topology and starts at the first node.
    ///
    /// # Errors
    /// When the topology cannot be read.
    pub async fn start(conn: &mut RedisConn, pattern: &str, count: usize) -> RedisResult<Self> {
        let topology = conn.topology().await?;
        Ok(Self { topology, pattern: pattern.to_owned(), count, node: 0, cursor: 0 })
    }

    /// The next batch of keys (possibly empty, possibly repeating a key), or
    /// `None` when every node has been scanned.
    ///
    /// # Errors
    /// When a SCAN fails.
    pub async fn next(&mut self, conn: &mut RedisConn) -> RedisResult<Option<Vec<Vec<u8>>>> {
        if self.node >= self.topology.node_count() {
            return Ok(None);
        }
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(self.cursor).arg("MATCH").arg(&self.pattern).arg("COUNT").arg(self.count);
        let (next, batch): (u64, Vec<Vec<u8>>) = conn.query_on(&self.topology, self.node, &cmd).await?;
        if next == 0 {
            self.node += 1;
        }
        self.cursor = next;
        Ok(Some(batch))
    }
}

/// Every key matching `pattern` on every node, as SCAN returned them:
/// MATCH with a COUNT hint (never KEYS, which blocks Redis), in no order,
/// possibly more than once (see [`distinct_order`]).
///
/// # Errors
/// When a SCAN call fails.
pub async fn scan_raw(conn: &RedisConn, pattern: &str, count: usize) -> RedisResult<Vec<Vec<u8>>> {
    let mut conn = conn.clone();
    let mut scan = KeyScan::start(&mut conn, pattern, count).await?;
    let mut raw: Vec<Vec<u8>> = Vec::new();
    while let Some(batch) = scan.next(&mut conn).await? {
        raw.extend(batch);
    }
    Ok(raw)
}

/// Every distinct key matching `pattern` on every node, sorted byte-wise
/// ([`scan_raw`], then [`distinct_order`]), each copied so that the keys
/// also lie in memory in that order.
///
/// # Errors
/// When a SCAN call fails.
pub async fn scan_all(conn: &RedisConn, pattern: &str, count: usize) -> RedisResult<Vec<Vec<u8>>> {
    let raw = scan_raw(conn, pattern, count).await?;
    Ok(distinct_order(&raw).into_iter().map(|i| raw[i as usize].clone()).collect())
}

/// Positions in `keys` of its distinct keys in byte order (the first of
/// equal keys): what `sort_unstable` + `dedup` give, without their cost at
/// a million keys (issue 24). Those compare heap strings that share a long
/// prefix (`cache:embedding:https://…`) and lie scattered in memory: two
/// cache misses and a long `memcmp` per comparison made SCAN's sort grow
/// faster than the key count. Here each key is compared by the 16 bytes
/// after the prefix all keys share, held in one contiguous array, and only
/// keys equal in those bytes are compared in full. Callers then walk the
/// keys in memory order wherever order does not matter.
///
/// # Panics
/// If `keys` holds more than `u32::MAX` keys (SCAN of one keyspace cannot).
pub fn distinct_order(keys: &[Vec<u8>]) -> Vec<u32> {
    let Some(first) = keys.first() else { return Vec::new() };
    assert!(u32::try_from(keys.len()).is_ok(), "fewer than 2^32 keys");
    let shared = keys.iter().fold(first.len(), |n, k| k.iter().zip(&first[..n]).take_while(|(a, b)| a == b).count());
    // Big-endian, zero-padded: when two heads differ, their numeric order
    // is the keys' byte order (a zero of padding sorts a key before its
    // extensions, as byte order does); equal heads are compared in full.
    let head = |key: &[u8]| {
        let mut bytes = [0u8; 16];
        let tail = &key[shared..];
        let n = tail.len().min(16);
        bytes[..n].copy_from_slice(&tail[..n]);
        u128::from_be_bytes(bytes)
    };
    let mut order: Vec<(u128, u32)> = keys.iter().enumerate().map(|(i, k)| (head(k), i as u32)).collect();
    let full = |a: &(u128, u32), b: &(u128, u32)| keys[a.1 as usize][shared..].cmp(&keys[b.1 as usize][shared..]);
    // Equal keys end up adjacent, the first position first.
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a, b)).then(a.1.cmp(&b.1)));
    order.dedup_by(|later, earlier| later.0 == earlier.0 && full(later, earlier).is_eq());
    order.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;

    fn sorted_distinct(keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        distinct_order(&keys).into_iter().map(|i| keys[i as usize].clone()).collect()
    }

    /// The oracle: what `scan_all` did before issue 24.
    fn oracle(mut keys: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    #[test]
    fn keys_come_out_in_byte_order_without_repeats_as_a_plain_sort_gives_them() {
        let seed = 24;
        println!("seed {seed}");
        let mut rng = StdRng::seed_from_u64(seed);
        for round in 0..200 {
            // Arrange: keys sharing a prefix of varying length, with repeats,
            // prefixes of each other, zero bytes (padding's value) and
            // tails longer and shorter than 16 bytes.
            let prefix: Vec<u8> = b"cache:embedding:https://help.example/articles/"[..rng.random_range(0..47)].to_vec();
            let alphabet: &[u8] = if round % 2 == 0 { b"\x00\x01ab" } else { b"0123456789-/\xff" };
            let mut keys: Vec<Vec<u8>> = (0..rng.random_range(0..300))
                .map(|_| {
                    let mut k = prefix.clone();
                    k.extend((0..rng.random_range(0..40)).map(|_| alphabet[rng.random_range(0..alphabet.len())]));
                    k
                })
                .collect();
            let repeats: Vec<Vec<u8>> = keys.iter().filter(|_| rng.random_bool(0.2)).cloned().collect();
            keys.extend(repeats);

            // Act
            let got = sorted_distinct(keys.clone());

            // Assert
            assert_eq!(got, oracle(keys), "seed {seed}, round {round}");
        }
    }

    #[test]
    fn no_keys_and_one_key_are_their_own_order() {
        assert!(sorted_distinct(Vec::new()).is_empty());
        assert_eq!(sorted_distinct(vec![b"k".to_vec(), b"k".to_vec()]), [b"k".to_vec()]);
    }
}
