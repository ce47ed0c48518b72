//! Everything that speaks Redis. Nothing else in the service sends a command
//! (the tools' writers go through [`keys`] too).
//!
//! In data-path order:
//! - [`connect`]: where Redis is ([`connect::RedisTarget`]: URL or parts, TLS, private CA);
//! - [`link`]: one handle on a single node or a cluster ([`link::RedisClient`], [`link::RedisConn`]):
//!   SCAN on every primary, and one bulk fetch ([`link::ValueReader`]) that
//!   hides slots, PTTL and TYPE; nothing else knows node from cluster but the change feed;
//! - [`keys`]: every key name, key → document id, and the rule that we write only under our prefixes;
//! - [`json`]: the single-pass reader for the chatbot's JSON values (the hot loop);
//! - [`decode`]: one value → unit vector + metadata, or a skip reason;
//! - [`loader`]: SCAN + chunked reads into a fresh index and its load report
//!   (fetch / build / report), or the few documents a per-key update re-reads;
//! - [`context`]: the chatbot-readable `cache:context:*` entries and their asynchronous writer;
//! - [`query_cache`]: cached question embeddings (best-effort GET / SET EX);
//! - [`memory`]: Redis's maxmemory and policy, and the budget our writes keep so they never evict the chatbot's keys;
//! - [`watcher`]: the change feed (CLIENT TRACKING) that drives `refresh`, in document ids.

pub mod connect;
pub mod link;
pub mod keys;
pub mod json;
pub mod decode;
pub mod loader;
pub mod context;
pub mod query_cache;
pub mod memory;
pub mod watcher;
