//! One handle on the data, whether it lives on a single Redis node or on a
//! Redis Cluster: [`RedisClient`] opens a [`RedisConn`], and every part of
//! `store` that reads or writes (loader, refresher reads, context writer,
//! query cache) goes through it. Only this module and the change feed know
//! which of the two it is.
//!
//! On a cluster, single-key commands (GET, SET, PTTL, TYPE) and multi-key
//! UNLINK are routed by redis-rs, which follows MOVED/ASK and refreshes its
//! slot map. What redis-rs does not route, this module does:
//! - SCAN runs on every primary in turn ([`Scan`]): one node's SCAN sees only
//!   its own slots;
//! - a pipeline may not span slots, so [`RedisConn::pipeline_on`] sends one
//!   pipeline per primary, addressed through the [`Topology`] read with
//!   `CLUSTER SLOTS`, and callers keep each MGET within one slot
//!   ([`Topology::owner`] with [`crate::shard::key_slot`]);
//! - writes over many slots go one command per key, all in flight at once
//!   ([`RedisConn::query_each`]), which the multiplexed connection pipelines.
//!
//! A topology that changes under a load (reshard, failover) makes a command
//! fail or be redirected; the load fails as a whole and the refresher retries
//! it, so a snapshot never mixes two topologies' partial reads.

use std::time::Duration;

use futures::future::try_join_all;
use redis::{
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    AsyncConnectionConfig, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult, Value,
};

use super::connect::{ClusterTarget, RedisTarget};
use crate::shard::{key_slot, SLOTS};

/// Where the data lives, ready to connect.
#[derive(Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "built once at start-up and cloned for a handful of tasks; boxing either variant only moves the lint"
)]
pub enum RedisClient {
    Node(redis::Client),
    Cluster(ClusterSource),
}

/// A cluster client and the target it was built from (the change feed
/// connects to each primary itself, with the target's credentials and TLS).
#[derive(Clone)]
pub struct ClusterSource {
    pub client: ClusterClient,
    pub target: ClusterTarget,
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node(_) => f.write_str("RedisClient::Node"),
            Self::Cluster(c) => f.debug_tuple("RedisClient::Cluster").field(&c.target).finish(),
        }
    }
}

impl RedisClient {
    /// A client for one node.
    ///
    /// # Errors
    /// When redis-rs refuses the connection info.
    pub fn node(target: &RedisTarget) -> RedisResult<Self> {
        Ok(Self::Node(redis::Client::open(target.info.clone())?))
    }

    /// A client for the cluster behind `target`'s seed nodes. Connects to nothing yet.
    ///
    /// # Errors
    /// When redis-rs refuses the seeds (mixed credentials or TLS modes).
    pub fn cluster(target: &ClusterTarget) -> RedisResult<Self> {
        let mut builder = ClusterClientBuilder::new(target.seed_infos());
        if let Some(pem) = target.ca_pem() {
            builder = builder.certs(redis::TlsCertificates { client_tls: None, root_cert: Some(pem.to_vec()) });
        }
        Ok(Self::Cluster(ClusterSource { client: builder.build()?, target: target.clone() }))
    }

    /// Opens a connection (on a cluster: to every node it announces).
    ///
    /// # Errors
    /// When no node can be reached or the handshake is refused.
    pub async fn connect(&self, connect_timeout: Duration, response_timeout: Duration) -> RedisResult<RedisConn> {
        match self {
            Self::Node(client) => {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(response_timeout));
                Ok(RedisConn::Node(client.get_multiplexed_async_connection_with_config(&config).await?))
            }
            Self::Cluster(cluster) => {
                let config =
                    ClusterConfig::new().set_connection_timeout(connect_timeout).set_response_timeout(response_timeout);
                Ok(RedisConn::Cluster(cluster.client.get_async_connection_with_config(config).await?))
            }
        }
    }
}

/// An open connection to a node or a cluster. Cheap to clone: clones share
/// the multiplexed connection(s).
#[derive(Clone)]
pub enum RedisConn {
    Node(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Node(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Node(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Node(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

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
    /// How many nodes [`RedisConn::pipeline_on`] and [`Scan`] address.
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
    fn from_cluster_slots(reply: Value) -> RedisResult<Self> {
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

impl RedisConn {
    /// The current topology: [`Topology::Node`] without a round trip, or a
    /// cluster's primaries and slot owners from `CLUSTER SLOTS`.
    ///
    /// # Errors
    /// When the command fails or its reply is not understood.
    pub async fn topology(&mut self) -> RedisResult<Topology> {
        match self {
            Self::Node(_) => Ok(Topology::Node),
            Self::Cluster(c) => {
                let reply = c
                    .route_command(
                        redis::cmd("CLUSTER").arg("SLOTS").clone(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                    )
                    .await?;
                Topology::from_cluster_slots(reply)
            }
        }
    }

    /// `cmd` on node `node` of `topology`.
    ///
    /// # Errors
    /// When the command fails.
    pub async fn query_on<T: FromRedisValue>(&mut self, topology: &Topology, node: usize, cmd: &Cmd) -> RedisResult<T> {
        match (self, topology.primaries().get(node)) {
            (Self::Cluster(c), Some(p)) => {
                let value = c.route_command(cmd.clone(), by_address(p)).await?.extract_error()?;
                Ok(redis::from_redis_value(value)?)
            }
            (conn, _) => cmd.query_async(conn).await,
        }
    }

    /// `pipe` on node `node` of `topology`, every reply in order. Each MGET
    /// in it must stay within one slot.
    ///
    /// # Errors
    /// When the pipeline or any of its commands fails.
    pub async fn pipeline_on(&mut self, topology: &Topology, node: usize, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
        match (self, topology.primaries().get(node)) {
            (Self::Cluster(c), Some(p)) => {
                let replies = c.route_pipeline(pipe.clone(), 0, pipe.len(), route(p)).await?;
                replies.into_iter().map(Value::extract_error).collect()
            }
            (conn, _) => pipe.query_async(conn).await,
        }
    }

    /// Runs every command, each on the node of its key: one pipeline on a
    /// single node; on a cluster, one request per command, all in flight.
    ///
    /// # Errors
    /// The first failure; the other commands may have run.
    pub async fn query_each(&mut self, cmds: Vec<Cmd>) -> RedisResult<()> {
        match self {
            Self::Node(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd).ignore();
                }
                pipe.query_async::<()>(c).await
            }
            Self::Cluster(c) => {
                try_join_all(cmds.into_iter().map(|cmd| {
                    let mut c = c.clone();
                    async move { cmd.query_async::<()>(&mut c).await }
                }))
                .await?;
                Ok(())
            }
        }
    }
}

fn route(p: &Primary) -> SingleNodeRoutingInfo {
    SingleNodeRoutingInfo::ByAddress { host: p.host.clone(), port: p.port }
}

fn by_address(p: &Primary) -> RoutingInfo {
    RoutingInfo::SingleNode(route(p))
}

/// SCAN over every node, one node after the other: each call to
/// [`Scan::next`] is one SCAN round trip.
pub struct Scan {
    topology: Topology,
    pattern: String,
    count: usize,
    node: usize,
    cursor: u64,
}

impl Scan {
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
    let mut scan = Scan::start(&mut conn, pattern, count).await?;
    let mut raw: Vec<Vec<u8>> = Vec::new();
    while let Some(batch) = scan.next(&mut conn).await? {
        raw.extend(batch);
    }
    raw.sort_unstable();
    raw.dedup();
    Ok(raw)
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
