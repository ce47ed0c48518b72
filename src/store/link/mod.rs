//! One handle on the data, whether it lives on a single Redis node or on a
//! Redis Cluster: [`RedisClient`] opens a [`RedisConn`], and every part of
//! `store` that reads or writes (loader, refresher reads, context writer,
//! query cache) goes through it. Only this module and the change feed know
//! which of the two it is; callers never group keys by node or slot.
//!
//! On a cluster, single-key commands (GET, SET, PTTL, TYPE) and multi-key
//! UNLINK are routed by redis-rs, which follows MOVED/ASK and refreshes its
//! slot map. What redis-rs does not route, this module does:
//! - `conn`: the client and the connection ([`RedisClient`], [`RedisConn`]);
//! - [`topology`]: which primary serves which slot (`CLUSTER SLOTS`);
//! - [`scan`]: SCAN on every primary in turn ([`KeyScan`], [`scan_all`]):
//!   one node's SCAN sees only its own slots;
//! - [`read`]: the bulk fetch ([`ValueReader`]): MGET per slot, PTTL and
//!   TYPE, one pipeline per primary;
//! - writes over many slots go one command per key, all in flight at once
//!   ([`RedisConn::query_each`]), which the multiplexed connection pipelines.
//!
//! A topology that changes under a load (reshard, failover) makes a command
//! fail or be redirected; the load fails as a whole and the refresher retries
//! it, so a snapshot never mixes two topologies' partial reads.

mod conn;
pub mod read;
pub mod scan;
pub mod topology;

pub use self::{
    conn::{ClusterSource, RedisClient, RedisConn},
    read::{ReadValues, StoredValue, ValueReader},
    scan::{distinct_order, scan_all, scan_raw, KeyScan},
    topology::{Primary, Topology},
};
