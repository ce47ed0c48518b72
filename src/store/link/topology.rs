//! Which primary serves which key, as read at one moment with `CLUSTER
//! SLOTS`: what [`super::KeyScan`] walks, what [`super::ValueReader`]
//! groups its pipelines by, and what the change feed compares to notice a
//! reshard or failover. A single node is [`Topology::Node`] and costs no
//! round trip.

use redis::{ErrorKind, RedisError, RedisResult, Value};

use crate::shard::{key_slot, SLOTS};

/// A primary of a cluster, by the address it announces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Primary {
    pub host: String,
    pub port: u16,
}

/// Which node serves which key, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One node serves every key.
    Node,
    Cluster {
        /// Sorted by address, so two reads of an unchanged cluster compare equal.
        primaries: Vec<Primary>,
        /// Per slot, the index of its primary in `primaries`; `None` while no primary serves it.
        owners: Vec<Option<u16>>,
    },
}

impl Topology {
    /// How many nodes [`super::ValueReader`] and [`super::KeyScan`] address.
    pub fn node_count(&self) -> usize {
        match self {
            Self::Node => 1,
            Self::Cluster { primaries, .. } => primaries.len(),
        }
    }

    /// The primaries (empty for a single node).
    pub fn primaries(&self) -> &[Primary] {
        match self {
            Self::Node => &[],
            Self::Cluster { primaries, .. } => primaries,
        }
    }

    /// The node (index below [`Topology::node_count`]) serving `key`.
    ///
    /// # Errors
    /// When no primary serves the key's slot (a cluster mid-failover).
    pub fn owner(&self, key: &[u8]) -> RedisResult<usize> {
        match self {
            Self::Node => Ok(0),
            Self::Cluster { owners, .. } => {
                let slot = key_slot(key);
                owners.get(usize::from(slot)).copied().flatten().map(usize::from).ok_or_else(|| {
                    RedisError::from((
                        ErrorKind::ClusterConnectionNotFound,
                        "no primary serves this slot",
                        slot.to_string(),
                    ))
                })
            }
        }
    }

    /// Parses a `CLUSTER SLOTS` reply.
    pub(super) fn from_cluster_slots(reply: Value) -> RedisResult<Self> {
        let bad =
            |what: &'static str| RedisError::from((ErrorKind::UnexpectedReturnType, "CLUSTER SLOTS", what.to_owned()));
        let Value::Array(ranges) = reply else { return Err(bad("not an array")) };
        let mut spans: Vec<(u16, u16, Primary)> = Vec::with_capacity(ranges.len());
        for range in ranges {
            let Value::Array(fields) = range else { return Err(bad("range is not an array")) };
            let mut fields = fields.into_iter();
            let start: u16 = redis::from_redis_value(fields.next().ok_or_else(|| bad("no start"))?)?;
            let end: u16 = redis::from_redis_value(fields.next().ok_or_else(|| bad("no end"))?)?;
            let Some(Value::Array(node)) = fields.next() else { return Err(bad("no primary")) };
            let mut node = node.into_iter();
            let host: String = redis::from_redis_value(node.next().ok_or_else(|| bad("no host"))?)?;
            let port: u16 = redis::from_redis_value(node.next().ok_or_else(|| bad("no port"))?)?;
            if host.is_empty() || host == "?" || end >= SLOTS || start > end {
                return Err(bad("a range names no usable primary"));
            }
            spans.push((start, end, Primary { host, port }));
        }
        let mut primaries: Vec<Primary> = spans.iter().map(|(_, _, p)| p.clone()).collect();
        primaries.sort();
        primaries.dedup();
        let mut owners = vec![None; usize::from(SLOTS)];
        for (start, end, primary) in spans {
            let index = primaries.binary_search(&primary).map_err(|_| bad("primary vanished"))?;
            let index = u16::try_from(index).map_err(|_| bad("more primaries than slots"))?;
            for owner in &mut owners[usize::from(start)..=usize::from(end)] {
                *owner = Some(index);
            }
        }
        Ok(Self::Cluster { primaries, owners })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![Value::BulkString(host.into()), Value::Int(port), Value::BulkString(b"id".to_vec())]),
        ])
    }

    #[test]
    fn cluster_slots_give_sorted_primaries_and_every_slot_an_owner() {
        let reply = Value::Array(vec![
            range(10_923, 16_383, "127.0.0.1", 7002),
            range(0, 5_460, "127.0.0.1", 7000),
            range(5_461, 10_922, "127.0.0.1", 7001),
        ]);

        let topology = Topology::from_cluster_slots(reply).expect("valid reply");

        let ports: Vec<u16> = topology.primaries().iter().map(|p| p.port).collect();
        assert_eq!(ports, [7000, 7001, 7002]);
        // "foo" is in slot 12182, served by the third range.
        assert_eq!(topology.owner(b"foo").expect("covered"), 2);
        assert_eq!(topology.node_count(), 3);
    }

    #[test]
    fn a_slot_without_a_primary_is_an_error_not_a_guess() {
        let topology = Topology::from_cluster_slots(Value::Array(vec![range(0, 100, "h", 1)])).expect("valid reply");
        assert!(topology.owner(b"foo").is_err());
        assert!(Topology::from_cluster_slots(Value::Array(vec![range(0, 16_384, "h", 1)])).is_err());
        assert!(Topology::from_cluster_slots(Value::Array(vec![range(0, 1, "", 1)])).is_err());
    }
}
