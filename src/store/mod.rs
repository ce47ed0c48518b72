//! Everything that speaks Redis. Nothing outside this module sends a command.
//!
//! - [`keys`]: every key name, and the rule that we write only under our prefixes;
//! - [`decode`]: one value → unit vector + metadata, or a skip reason;
//! - [`loader`]: SCAN + pipelined MGET into a fresh index;
//! - [`query_cache`]: cached question embeddings (best-effort GET / SET EX).

pub mod decode;
pub mod keys;
pub mod loader;
pub mod query_cache;
