//! semsearch: exact cosine top-k over the embeddings a chatbot keeps in Redis.
//!
//! The modules are listed in data-path order. Dependencies point one way:
//! `store` builds indexes (`index` knows no Redis), `api` and `refresh` use
//! `store`, `index` and `embed`, `app` wires them, and only `config`,
//! `cli`, `app` and `tools` name the configuration; every component owns
//! its own settings type.
//!
//! Below the service, the workspace's layer crates (`crates/`): the exact
//! scan, `semsearch_scan` (kernels, int8, the tie rule, one `top_k` entry;
//! no I/O), which `index` is the only module to run; the in-process
//! encoder, `semsearch_minilm` (no network), behind `embed`'s `local`
//! provider; and `semsearch_cpu`, the CPU features and proof tokens both
//! take their SIMD kernels' safety from:
//!
//! ```text
//!  Redis ──► store::loader ──► index ──► semsearch_scan ──► api ──► store::context
//!   (SCAN + MGET, decode)    (unit rows,  (exact scan     (axum)   (cache:context:*,
//!                             id order)    on rayon)        ▲       read by the chatbot)
//!                                                           │ query vector
//!  "text" ──► embed (normalize ──► cache: LRU, store::query_cache ──► providers: HTTP or semsearch_minilm)
//!
//!  Redis ──► store::watcher (CLIENT TRACKING) ──► refresh ──► index::SharedIndex (swap)
//! ```
//!
//! "Redis" is one node or a Redis Cluster (`REDIS_CLUSTER_NODES`): every
//! path above reaches it through `store::link`, which SCANs and pipelines
//! per primary; the watcher arms tracking on every primary.
#![deny(unsafe_code)]

/// Redis hash slots and `SEMSEARCH_SHARD=i/n`: which documents a shard keeps (no I/O).
pub mod shard;
/// The one error that becomes HTTP (problem+json), shared by `api`, `router` and `query`.
pub mod problem;
/// Everything that speaks Redis: connections, key names, decoding, the bulk
/// loader, the change feed, the context and query-embedding caches.
pub mod store;
/// Immutable snapshots of unit rows with their documents, the swap point,
/// and the coalescer that shares one scan (`semsearch_scan`) between queries.
pub mod index;
/// Question text → query vector: normalisation, caches, providers.
pub mod embed;
/// The query path shared by the node and the router: request → plan → resolved search → answer.
pub mod query;
/// HTTP: routes, request → prepared query, problem+json errors, auth, metrics, OpenAPI.
pub mod api;
/// Keeps the published index in step with Redis: reloads, per-key updates, reconcile.
pub mod refresh;
/// `semsearch router`: one HTTP front for exact shards (fan-out, merge, retries).
pub mod router;
/// Wiring: builds every part from [`config::Settings`] and spawns the background tasks.
pub mod app;
/// Flags and environment → each component's settings (the only env reader).
pub mod config;
/// The command line and its dispatch.
pub mod cli;
/// A string that never prints (passwords, API keys).
pub mod secret;
/// Version and git commit of this build.
pub mod build_info;
/// The shutdown signal (SIGTERM, Ctrl-C).
pub mod shutdown;
/// Logs, OTLP traces (feature `otel`), W3C trace context, error chains.
pub mod telemetry;
/// Tools around the service: demo, seed, bench, healthcheck, corpus files.
#[cfg(feature = "tools")]
pub mod tools;
