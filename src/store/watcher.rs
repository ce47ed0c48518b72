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

use std::time::Duration;

use redis::{
    aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::keys::KeySpace;

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
    /// These keys were set, deleted, expired or evicted.
    Keys(Vec<Vec<u8>>),
    /// Every tracked key is invalid (FLUSHDB, FLUSHALL).
    All,
}

/// How often the feed PINGs its connection to notice a silent half-open socket.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Retry interval after the server refused tracking.
const REFUSED_RETRY: Duration = Duration::from_secs(60);

/// Runs the feed until cancelled, reconnecting with capped backoff.
pub async fn run(
    info: ConnectionInfo,
    keys: KeySpace,
    retry_max: Duration,
    tx: mpsc::UnboundedSender<Change>,
    cancel: CancellationToken,
) {
    let redis_settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
    let info = info.set_redis_settings(redis_settings);
    let mut delay = Duration::from_millis(100);
    let mut lost_reported = false;
    loop {
        let (push_tx, mut pushes) = mpsc::unbounded_channel::<PushInfo>();
        let connect = async {
            let client = redis::Client::open(info.clone())?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(5)))
                .set_response_timeout(Some(Duration::from_secs(5)))
                .set_push_sender(push_tx);
            client.get_multiplexed_async_connection_with_config(&config).await
        };
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            r = connect => r,
        };
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(e) => {
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
        };
        if let Err(e) = arm(&mut conn, &keys).await {
            warn!(error.message = %e, "Redis refused CLIENT TRACKING; changes are picked up by the periodic reconcile only");
            let _ = tx.send(Change::Unavailable(e.to_string()));
            if sleep_or_cancel(REFUSED_RETRY, &cancel).await {
                return;
            }
            continue;
        }
        info!("change feed armed (CLIENT TRACKING BCAST)");
        delay = Duration::from_millis(100);
        let _ = tx.send(Change::Armed);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                push = pushes.recv() => match push {
                    Some(PushInfo { kind: PushKind::Invalidate, data }) => {
                        let _ = tx.send(to_change(data));
                    }
                    Some(PushInfo { kind: PushKind::Disconnection, .. }) | None => break,
                    Some(_) => {}
                },
                _ = ping.tick() => {
                    if redis::cmd("PING").query_async::<()>(&mut conn).await.is_err() {
                        break;
                    }
                }
            }
        }
        warn!("change feed lost its connection; reconnecting");
        let _ = tx.send(Change::Lost);
        lost_reported = true;
    }
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

fn to_change(data: Vec<Value>) -> Change {
    match data.into_iter().next() {
        Some(Value::Array(keys)) | Some(Value::Set(keys)) => Change::Keys(
            keys.into_iter()
                .filter_map(|k| match k {
                    Value::BulkString(b) => Some(b),
                    Value::SimpleString(s) => Some(s.into_bytes()),
                    _ => None,
                })
                .collect(),
        ),
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
