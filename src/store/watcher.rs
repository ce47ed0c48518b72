//! The change feed: Redis tells us which embedding keys (and the quick key)
//! changed, so the index can follow without polling.
//!
//! Mechanism: a RESP3 connection with `CLIENT TRACKING ON BCAST PREFIX
//! <embedding prefix> PREFIX <quick key> NOLOOP`. Redis then pushes an
//! `invalidate` message naming the keys touched by SET, DEL, EXPIRE, expiry
//! and eviction, and a null key list for FLUSHDB/FLUSHALL. This needs no
//! server configuration (unlike keyspace notifications, which need
//! `notify-keyspace-events`), and our own `cache:context:*` writes fall
//! outside the prefixes so they never echo back.
//!
//! Pushes are at-most-once: whatever happened while the connection was down
//! is lost. So every (re)connection is reported as [`Change::Armed`], and the
//! refresher answers it with a full reconcile. Tracking must be re-armed on
//! every new connection; this module does that by reconnecting itself.
//!
//! On a Redis Cluster (issue 13) the same happens on one connection per
//! primary, re-armed together whenever any of them drops or the topology
//! changes (see [`run`]).

use std::time::Duration;

use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    keys::{KeySpace, TrackedKey},
    link::{RedisClient, RedisConn, Topology},
};

/// What the feed reports to the refresher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Tracking is (again) armed. Changes made before this may have been missed.
    Armed,
    /// The server refused tracking (old Redis, command renamed or denied by
    /// ACL); only the periodic reconcile will notice changes.
    Unavailable(String),
    /// The connection dropped; reconnecting.
    Lost,
    /// Keys under the tracked prefixes were set, deleted, expired or
    /// evicted: sorted out once here, so the refresher gets document ids.
    Keys(ChangedKeys),
    /// Every tracked key is invalid (FLUSHDB, FLUSHALL).
    All,
}

/// What one invalidation push named, parsed with [`KeySpace::tracked`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangedKeys {
    /// Documents this replica keeps, by id, in push order.
    pub ids: Vec<Box<str>>,
    /// The quick key was among them.
    pub quick_key: bool,
    /// Keys that are not UTF-8, so name no document id: only a reconcile
    /// can account for them.
    pub unreadable: usize,
}

impl ChangedKeys {
    /// Sorts the keys of one push; the bare prefix and other shards' keys are dropped.
    pub fn parse(keys: &KeySpace, changed: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut out = Self::default();
        for key in changed {
            match keys.tracked(&key) {
                TrackedKey::Quick => out.quick_key = true,
                TrackedKey::Document(id) => out.ids.push(id.into()),
                TrackedKey::NotUtf8 => out.unreadable += 1,
                TrackedKey::NotOurs => {}
            }
        }
        out
    }
}

/// How often the feed PINGs its connections to notice a silent half-open
/// socket (and, on a cluster, re-reads the topology).
const PING_EVERY: Duration = Duration::from_secs(5);
/// Retry interval after the server refused tracking.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// Why a feed could not be armed.
enum ArmError {
    /// A node could not be reached: retried with backoff.
    Unreachable(redis::RedisError),
    /// A node refused CLIENT TRACKING: retried after [`REFUSED_RETRY`].
    Refused(redis::RedisError),
}

/// The armed connections: one per node (every primary of a cluster), all
/// pushing into one channel.
struct Feed {
    conns: Vec<MultiplexedConnection>,
    /// On a cluster: the routing connection and the topology the feed was
    /// armed for. A different topology (reshard, failover, a node added)
    /// means some primary may be untracked, so the feed re-arms.
    cluster: Option<(RedisConn, Topology)>,
}

impl Feed {
    /// Whether every connection answers and the topology is unchanged.
    async fn healthy(&mut self) -> bool {
        for conn in &mut self.conns {
            if redis::cmd("PING").query_async::<()>(conn).await.is_err() {
                return false;
            }
        }
        match &mut self.cluster {
            Some((conn, armed)) => match conn.topology().await {
                Ok(now) if now == *armed => true,
                Ok(_) => {
                    info!("cluster topology changed; re-arming the change feed on every primary");
                    false
                }
                Err(e) => {
                    warn!(error.message = %e, "cannot read the cluster topology; re-arming the change feed");
                    false
                }
            },
            None => true,
        }
    }
}

/// Runs the feed until cancelled, reconnecting with capped backoff. On a
/// cluster, tracking is armed on every primary (CLIENT TRACKING is per
/// connection and sees only that node's keys; the quick key is tracked on
/// the primary that owns its slot like any other key), and the loss of any
/// one of them, or a topology change, re-arms all and reports
/// [`Change::Lost`] then [`Change::Armed`], which the refresher answers with
/// a full reload.
pub async fn run(
    client: RedisClient,
    keys: KeySpace,
    retry_max: Duration,
    tx: mpsc::UnboundedSender<Change>,
    cancel: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    let mut lost_reported = false;
    loop {
        let (push_tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let armed = tokio::select! {
            () = cancel.cancelled() => return,
            r = connect_and_arm(&client, &keys, push_tx) => r,
        };
        let mut feed = match armed {
            Ok(feed) => feed,
            Err(ArmError::Unreachable(e)) => {
                if !lost_reported {
                    warn!(error.message = %e, "change feed cannot reach Redis; retrying");
                    let _ = tx.send(Change::Lost);
                    lost_reported = true;
                }
                if sleep_or_cancel(delay, &cancel).await {
                    return;
                }
                delay = (delay * 2).min(retry_max);
                continue;
            }
            Err(ArmError::Refused(e)) => {
                warn!(error.message = %e, "Redis refused CLIENT TRACKING; changes are picked up by the periodic reconcile only");
                let _ = tx.send(Change::Unavailable(e.to_string()));
                if sleep_or_cancel(REFUSED_RETRY, &cancel).await {
                    return;
                }
                continue;
            }
        };
        info!(nodes = feed.conns.len(), "change feed armed (CLIENT TRACKING BCAST)");
        delay = Duration::from_millis(100);
        let _ = tx.send(Change::Armed);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                push = pushes.recv() => match push {
                    Some(PushInfo { kind: PushKind::Invalidate, data }) => {
                        let _ = tx.send(to_change(&keys, data));
                    }
                    Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => break,
                    Some(_) => {}
                },
                _ = ping.tick() => {
                    if !feed.healthy().await {
                        break;
                    }
                }
            }
        }
        warn!("change feed lost a connection; reconnecting");
        let _ = tx.send(Change::Lost);
        lost_reported = true;
    }
}

/// Connects to the node, or to every primary of the cluster, and arms tracking on each.
async fn connect_and_arm(
    client: &RedisClient,
    keys: &KeySpace,
    push_tx: mpsc::UnboundedSender<PushInfo>,
) -> Result<Feed, ArmError> {
    match client {
        RedisClient::Node(c) => {
            let conn = connect_node(c.get_connection_info().clone(), push_tx, keys).await?;
            Ok(Feed { conns: vec![conn], cluster: None })
        }
        RedisClient::Cluster(cluster) => {
            let mut routing =
                client.connect(Duration::from_secs(5), Duration::from_secs(5)).await.map_err(ArmError::Unreachable)?;
            let topology = routing.topology().await.map_err(ArmError::Unreachable)?;
            let mut conns = Vec::with_capacity(topology.node_count());
            for primary in topology.primaries() {
                let info = cluster.target.node_info(&primary.host, primary.port);
                conns.push(connect_node(info, push_tx.clone(), keys).await?);
            }
            Ok(Feed { conns, cluster: Some((routing, topology)) })
        }
    }
}

/// A RESP3 connection to one node, pushing into `push_tx`, with tracking armed.
async fn connect_node(
    info: ConnectionInfo,
    push_tx: mpsc::UnboundedSender<PushInfo>,
    keys: &KeySpace,
) -> Result<MultiplexedConnection, ArmError> {
    let redis_settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let info = info.set_redis_settings(redis_settings);
    let client = redis::Client::open(info).map_err(ArmError::Unreachable)?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_push_sender(push_tx);
    let mut conn = client.get_multiplexed_async_connection_with_config(&config).await.map_err(ArmError::Unreachable)?;
    arm(&mut conn, keys).await.map_err(|e| {
        // A node that dies between connect and arm (a primary killed mid-re-arm) is unreachable, not refusing.
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
            ArmError::Unreachable(e)
        } else {
            ArmError::Refused(e)
        }
    })?;
    Ok(conn)
}

async fn arm(conn: &mut MultiplexedConnection, keys: &KeySpace) -> redis::RedisResult<()> {
    let mut cmd = redis::cmd("CLIENT");
    cmd.arg("TRACKING").arg("ON").arg("BCAST").arg("PREFIX").arg(keys.embedding_prefix());
    // Overlapping prefixes are refused by Redis; the embedding prefix already covers such a quick key.
    if !keys.quick_key().starts_with(keys.embedding_prefix()) {
        cmd.arg("PREFIX").arg(keys.quick_key());
    }
    cmd.arg("NOLOOP").query_async::<()>(conn).await
}

/// An `invalidate` push as a [`Change`]: its key list, or a null list (FLUSHDB) as [`Change::All`].
fn to_change(keys: &KeySpace, data: Vec<Value>) -> Change {
    match data.into_iter().next() {
        Some(Value::Array(changed)) | Some(Value::Set(changed)) => Change::Keys(ChangedKeys::parse(
            keys,
            changed.into_iter().filter_map(|k| match k {
                Value::BulkString(b) => Some(b),
                Value::SimpleString(s) => Some(s.into_bytes()),
                _ => None,
            }),
        )),
        _ => Change::All,
    }
}

/// Sleeps; returns true if cancelled first.
async fn sleep_or_cancel(d: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_push_becomes_document_ids_parsed_once() {
        // Arrange: what Redis pushes after SET, DEL of the quick key, a
        // binary key, the bare prefix and a key outside our prefixes.
        let keys = KeySpace::default();
        let push = vec![Value::Array(vec![
            Value::BulkString(b"cache:embedding:https://b".to_vec()),
            Value::BulkString(keys.quick_key().as_bytes().to_vec()),
            Value::BulkString(b"cache:embedding:\xff".to_vec()),
            Value::SimpleString("cache:embedding:https://a".to_owned()),
            Value::BulkString(b"cache:embedding:".to_vec()),
        ])];

        // Act
        let change = to_change(&keys, push);

        // Assert
        assert_eq!(
            change,
            Change::Keys(ChangedKeys {
                ids: vec!["https://b".into(), "https://a".into()],
                quick_key: true,
                unreadable: 1
            })
        );
    }

    #[test]
    fn a_push_without_a_key_list_means_every_key_changed() {
        assert_eq!(to_change(&KeySpace::default(), vec![Value::Nil]), Change::All);
        assert_eq!(to_change(&KeySpace::default(), Vec::new()), Change::All);
    }
}
