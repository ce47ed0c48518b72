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

/// Every distinct key matching `pattern` on every node, sorted byte-wise:
/// SCAN with MATCH and a COUNT hint (never KEYS, which blocks Redis),
/// deduplicated because SCAN may return a key more than once.
///
/// # Errors
/// When a SCAN call fails.
pub async fn scan_all(conn: &RedisConn, pattern: &str, count: usize) -> RedisResult<Vec<Vec<u8>>> {
    let mut conn = conn.clone();
    let mut scan = KeyScan::start(&mut conn, pattern, count).await?;
    let mut raw: Vec<Vec<u8>> = Vec::new();
    while let Some(batch) = scan.next(&mut conn).await? {
        raw.extend(batch);
    }
    raw.sort_unstable();
    raw.dedup();
    Ok(raw)
}
