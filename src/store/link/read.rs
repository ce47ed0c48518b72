//! The values of many keys in one call, on a single node or a cluster:
//! [`ValueReader::read`] is the one fetch the loader makes.
//!
//! What it hides:
//! - node vs cluster: one pipeline per primary, addressed through the
//!   [`Topology`] read once when the reader is made (a slot that moves
//!   meanwhile fails the read with MOVED, and the caller retries it whole);
//! - slot grouping: one MGET may not span slots in a cluster, so each
//!   node's keys go as one MGET per hash slot (a single node: one MGET);
//! - PTTL: each key's time to live rides in the same pipeline as its value,
//!   so a deadline is read with the value it belongs to;
//! - TYPE: MGET answers nil both for a key of another type and for a key
//!   deleted since it was listed; TYPE, asked only for the nils, tells them
//!   apart.

use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

use futures::future::try_join_all;
use redis::{ErrorKind, Pipeline, RedisError, RedisResult, Value};

use super::{conn::RedisConn, topology::Topology};
use crate::shard::key_slot;

/// One key as [`ValueReader::read`] found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredValue {
    /// A string value, and its remaining time to live as PTTL answered it
    /// (`None`: the key has no TTL).
    String { bytes: Vec<u8>, ttl_ms: Option<u64> },
    /// No such key: deleted (or expired) since it was listed.
    Missing,
    /// The key holds a hash, list, set, … (MGET answered nil, TYPE said so).
    OtherType,
}

/// The values of one batch of keys, in the order the keys were given.
#[derive(Debug)]
pub struct ReadValues {
    /// Taken just before the batch was sent, so a deadline measured from
    /// here (`sent_at + ttl_ms`) errs early, never late.
    pub sent_at: SystemTime,
    pub values: Vec<StoredValue>,
}

/// Reads values of keys with pipelined MGET + PTTL (+ TYPE for nils) on
/// every node that holds them. Cheap to clone: clones share the connection
/// and the topology.
#[derive(Clone)]
pub struct ValueReader {
    conn: RedisConn,
    topology: Arc<Topology>,
}

impl ValueReader {
    /// A reader over `conn`, with the topology read now: every read of this
    /// reader addresses the nodes as they were at this moment.
    ///
    /// # Errors
    /// When the topology cannot be read.
    pub async fn new(conn: &RedisConn) -> RedisResult<Self> {
        let topology = Arc::new(conn.clone().topology().await?);
        Ok(Self { conn: conn.clone(), topology })
    }

    /// The value, TTL or absence of each of `keys`, in their order: one
    /// pipeline per node, all in flight at once.
    ///
    /// # Errors
    /// When a command fails, a slot has no primary, a slot moved since the
    /// reader was made, or MGET does not answer an array.
    pub async fn read(&self, keys: &[String]) -> RedisResult<ReadValues> {
        let sent_at = SystemTime::now();
        let groups = group_by_node(&self.topology, keys)?;
        let replies = try_join_all(groups.iter().map(|group| {
            let mut conn = self.conn.clone();
            let pipe = read_pipeline(group, keys);
            async move { conn.pipeline_on(&self.topology, group.node, &pipe).await }
        }))
        .await?;
        let mut values: Vec<StoredValue> = (0..keys.len()).map(|_| StoredValue::Missing).collect();
        for (group, replies) in groups.iter().zip(replies) {
            fill_values(&mut values, group, replies)?;
        }
        self.mark_other_types(keys, &mut values).await?;
        Ok(ReadValues { sent_at, values })
    }

    /// Asks TYPE for every nil MGET answered (one pipeline per node) and
    /// turns those that exist into [`StoredValue::OtherType`].
    async fn mark_other_types(&self, keys: &[String], values: &mut [StoredValue]) -> RedisResult<()> {
        let mut nils_by_node: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, value) in values.iter().enumerate() {
            if *value == StoredValue::Missing {
                nils_by_node.entry(self.topology.owner(keys[i].as_bytes())?).or_default().push(i);
            }
        }
        let types = try_join_all(nils_by_node.iter().map(|(&node, positions)| {
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            for &i in positions {
                pipe.cmd("TYPE").arg(&keys[i]);
            }
            async move { conn.pipeline_on(&self.topology, node, &pipe).await }
        }))
        .await?;
        for (positions, types) in nils_by_node.values().zip(types) {
            for (&i, ty) in positions.iter().zip(types) {
                if !names_no_type(&ty) {
                    values[i] = StoredValue::OtherType;
                }
            }
        }
        Ok(())
    }
}

/// The keys of one batch that one node serves, as MGETs that each stay in one hash slot.
#[derive(Debug, PartialEq, Eq)]
struct NodeGroup {
    node: usize,
    /// Positions in the batch, one list per MGET.
    mgets: Vec<Vec<usize>>,
}

/// Splits a batch by node, and within a node by hash slot. A single node
/// gets one MGET for all.
fn group_by_node(topology: &Topology, keys: &[String]) -> RedisResult<Vec<NodeGroup>> {
    if matches!(topology, Topology::Node) {
        return Ok(vec![NodeGroup { node: 0, mgets: vec![(0..keys.len()).collect()] }]);
    }
    let mut by_node: BTreeMap<usize, BTreeMap<u16, Vec<usize>>> = BTreeMap::new();
    for (i, key) in keys.iter().enumerate() {
        let node = topology.owner(key.as_bytes())?;
        by_node.entry(node).or_default().entry(key_slot(key.as_bytes())).or_default().push(i);
    }
    Ok(by_node.into_iter().map(|(node, slots)| NodeGroup { node, mgets: slots.into_values().collect() }).collect())
}

/// One node's pipeline: its MGETs, then one PTTL per key in the same order.
fn read_pipeline(group: &NodeGroup, keys: &[String]) -> Pipeline {
    let mut pipe = redis::pipe();
    for mget in &group.mgets {
        pipe.cmd("MGET").arg(mget.iter().map(|&i| keys[i].as_str()).collect::<Vec<_>>());
    }
    for &i in group.mgets.iter().flatten() {
        pipe.cmd("PTTL").arg(&keys[i]);
    }
    pipe
}

/// Puts one node's replies (as [`read_pipeline`] asked) into `values` at
/// their keys' positions; a nil stays [`StoredValue::Missing`] until TYPE
/// has been asked.
fn fill_values(values: &mut [StoredValue], group: &NodeGroup, mut replies: Vec<Value>) -> RedisResult<()> {
    let ttl_replies = replies.split_off(group.mgets.len().min(replies.len()));
    let mut ttls = ttl_replies.into_iter().map(|v| match v {
        // -1 (no TTL) and -2 (gone since MGET) both give no deadline.
        Value::Int(ms) => u64::try_from(ms).ok(),
        _ => None,
    });
    for (mget, reply) in group.mgets.iter().zip(replies) {
        let Value::Array(items) = reply else {
            return Err(RedisError::from((ErrorKind::UnexpectedReturnType, "MGET did not answer an array")));
        };
        for (&i, item) in mget.iter().zip(items) {
            let ttl_ms = ttls.next().flatten();
            values[i] = match item {
                Value::BulkString(bytes) => StoredValue::String { bytes, ttl_ms },
                Value::SimpleString(s) => StoredValue::String { bytes: s.into_bytes(), ttl_ms },
                _ => StoredValue::Missing,
            };
        }
    }
    Ok(())
}

/// Whether a TYPE reply says the key does not exist.
fn names_no_type(reply: &Value) -> bool {
    matches!(reply, Value::SimpleString(s) if s == "none") || matches!(reply, Value::BulkString(b) if b == b"none")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<String> {
        names.iter().map(|&k| k.to_owned()).collect()
    }

    /// Three primaries splitting the slots as `redis-cli --cluster create` does.
    fn three_primaries() -> Topology {
        let range = |start: i64, end: i64, port: i64| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![Value::BulkString(b"127.0.0.1".to_vec()), Value::Int(port)]),
            ])
        };
        let reply = Value::Array(vec![range(0, 5_460, 7000), range(5_461, 10_922, 7001), range(10_923, 16_383, 7002)]);
        Topology::from_cluster_slots(reply).expect("a valid CLUSTER SLOTS reply")
    }

    #[test]
    fn a_single_node_reads_a_batch_with_one_mget() {
        // Arrange
        let batch = keys(&["{a}1", "foo", "bar"]);

        // Act
        let groups = group_by_node(&Topology::Node, &batch).expect("a node serves every key");

        // Assert
        assert_eq!(groups, [NodeGroup { node: 0, mgets: vec![vec![0, 1, 2]] }]);
    }

    #[test]
    fn a_cluster_batch_is_split_by_node_then_by_slot() {
        // Arrange: "{a}x" keys share slot 15495 (node 2), "foo" is 12182
        // (node 2, another slot), "bar" is 5061 (node 0).
        let topology = three_primaries();
        let batch = keys(&["{a}1", "foo", "bar", "{a}2"]);

        // Act
        let groups = group_by_node(&topology, &batch).expect("every slot has a primary");

        // Assert
        assert_eq!(
            groups,
            [NodeGroup { node: 0, mgets: vec![vec![2]] }, NodeGroup { node: 2, mgets: vec![vec![1], vec![0, 3]] }]
        );
        for group in &groups {
            for mget in &group.mgets {
                let slots: Vec<u16> = mget.iter().map(|&i| key_slot(batch[i].as_bytes())).collect();
                assert!(slots.windows(2).all(|w| w[0] == w[1]), "one MGET spans slots {slots:?}");
                assert!(mget.iter().all(|&i| topology.owner(batch[i].as_bytes()).ok() == Some(group.node)));
            }
        }
    }

    #[test]
    fn a_pipeline_asks_every_mget_then_one_pttl_per_key_in_mget_order() {
        // Arrange
        let batch = keys(&["k0", "k1", "k2"]);
        let group = NodeGroup { node: 0, mgets: vec![vec![2], vec![0, 1]] };

        // Act
        let packed = String::from_utf8_lossy(&read_pipeline(&group, &batch).get_packed_pipeline()).into_owned();

        // Assert
        let words: Vec<&str> = packed.split("\r\n").filter(|w| !w.starts_with(['*', '$'])).collect();
        assert_eq!(words, ["MGET", "k2", "MGET", "k0", "k1", "PTTL", "k2", "PTTL", "k0", "PTTL", "k1", ""]);
    }

    #[test]
    fn replies_land_at_their_keys_positions_with_their_ttls() {
        // Arrange: two MGETs (positions 2, then 0 and 1), then three PTTLs.
        let group = NodeGroup { node: 0, mgets: vec![vec![2], vec![0, 1]] };
        let replies = vec![
            Value::Array(vec![Value::BulkString(b"two".to_vec())]),
            Value::Array(vec![Value::SimpleString("zero".to_owned()), Value::Nil]),
            Value::Int(5_000),
            Value::Int(-1),
            Value::Int(-2),
        ];
        let mut values = vec![StoredValue::OtherType; 3];

        // Act
        fill_values(&mut values, &group, replies).expect("well-formed replies");

        // Assert
        assert_eq!(
            values,
            [
                StoredValue::String { bytes: b"zero".to_vec(), ttl_ms: None },
                StoredValue::Missing,
                StoredValue::String { bytes: b"two".to_vec(), ttl_ms: Some(5_000) },
            ]
        );
    }

    #[test]
    fn an_mget_reply_that_is_not_an_array_fails_the_read() {
        // Arrange
        let group = NodeGroup { node: 0, mgets: vec![vec![0]] };
        let mut values = vec![StoredValue::Missing];

        // Act
        let read = fill_values(&mut values, &group, vec![Value::Okay, Value::Int(-1)]);

        // Assert
        assert!(read.is_err());
    }

    #[test]
    fn only_a_type_of_none_means_the_key_is_gone() {
        assert!(names_no_type(&Value::SimpleString("none".to_owned())));
        assert!(names_no_type(&Value::BulkString(b"none".to_vec())));
        assert!(!names_no_type(&Value::SimpleString("hash".to_owned())));
        assert!(!names_no_type(&Value::BulkString(b"list".to_vec())));
    }
}
