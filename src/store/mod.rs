//! Everything that speaks Redis. Nothing outside this module sends a command.
//!
//! - [`child`]: a private `redis-server` process (demo, tests, benchmarks);
//! - [`keys`]: every key name, and the rule that we write only under our prefixes;
//! - [`decode`]: one value → unit vector + metadata, or a skip reason;
//! - [`json`]: the single-pass reader for the chatbot's JSON values (the hot loop);
//! - [`loader`]: SCAN + pipelined MGET (+ PTTL) into a fresh index;
//! - [`query_cache`]: cached question embeddings (best-effort GET / SET EX);
//! - [`seed`]: writes documents in the chatbot's format (seed, demo, bench tools only);
//! - [`context`]: the asynchronous writer of `cache:context:*`;
//! - [`watcher`]: the change feed (CLIENT TRACKING) that drives `refresh`.

pub mod child;
pub mod context;
pub mod decode;
pub mod json;
pub mod keys;
pub mod loader;
pub mod query_cache;
pub mod seed;
pub mod watcher;
