//! The connection itself: [`RedisClient`] (where the data lives) opens a
//! [`RedisConn`] to a single node or a cluster, the one type every Redis
//! command in `store` goes through. Addressing one node of a cluster
//! (`query_on`, `pipeline_on`) stays inside `link`.

use std::time::Duration;

use futures::future::try_join_all;
use redis::{
    aio::{ConnectionLike, MultiplexedConnection},
    cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig},
    cluster_async::ClusterConnection,
    cluster_routing::{RoutingInfo, SingleNodeRoutingInfo},
    AsyncConnectionConfig, Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value,
};

use super::topology::{Primary, Topology};
use crate::store::connect::{ClusterTarget, RedisTarget};

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

    /// `cmd` on node `node` of `topology` (for `KeyScan`).
    pub(super) async fn query_on<T: FromRedisValue>(
        &mut self,
        topology: &Topology,
        node: usize,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match (self, topology.primaries().get(node)) {
            (Self::Cluster(c), Some(p)) => {
                let value = c.route_command(cmd.clone(), by_address(p)).await?.extract_error()?;
                Ok(redis::from_redis_value(value)?)
            }
            (conn, _) => cmd.query_async(conn).await,
        }
    }

    /// `pipe` on node `node` of `topology`, every reply in order (for
    /// `ValueReader`). Each MGET in it must stay within one slot.
    pub(super) async fn pipeline_on(
        &mut self,
        topology: &Topology,
        node: usize,
        pipe: &Pipeline,
    ) -> RedisResult<Vec<Value>> {
        match (self, topology.primaries().get(node)) {
            (Self::Cluster(c), Some(p)) => {
                let replies = c.route_pipeline(pipe.clone(), 0, pipe.len(), route(p)).await?;
                replies.into_iter().map(Value::extract_error).collect()
            }
            (conn, _) => pipe.query_async(conn).await,
        }
    }

    /// `INFO <section>` of every primary (one on a single node).
    ///
    /// # Errors
    /// When the topology or a command fails.
    pub async fn info_of_primaries(&mut self, section: &str) -> RedisResult<Vec<String>> {
        let topology = self.topology().await?;
        let nodes = topology.primaries().len().max(1);
        let mut out = Vec::with_capacity(nodes);
        for node in 0..nodes {
            out.push(self.query_on(&topology, node, redis::cmd("INFO").arg(section)).await?);
        }
        Ok(out)
    }

    /// A key's remaining time to live in ms, as Redis's PTTL answers it: -1
    /// for a key without a TTL, -2 for a key that does not exist.
    ///
    /// # Errors
    /// When the command fails.
    pub async fn pttl(&self, key: &str) -> RedisResult<i64> {
        redis::cmd("PTTL").arg(key).query_async(&mut self.clone()).await
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
