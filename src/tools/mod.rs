//! Tools around the service, not the service: the subcommands other than
//! `serve` and `openapi`. Built only with the default-on `tools` cargo
//! feature, so a service-only build (`--no-default-features`) leaves their
//! dependencies (plotters, indicatif, flate2, tempfile, rand) out.
//!
//! - [`corpus`]: corpus files (JSONL, gzip) and the document type they hold;
//! - [`seed`]: writing documents into Redis as the chatbot does (`semsearch seed`);
//! - [`redis_binary`]: which `redis-server` those run: PATH's 7.x, else a private
//!   copy of Debian's fetched into the cache dir (`semsearch redis fetch`);
//! - [`redis_child`]: a private `redis-server` process (demo, tests, benchmarks);
//! - [`redis_cluster`]: a private 3-primary Redis Cluster (tests, the cluster load bench);
//! - [`demo`]: a private Redis, the demo corpus and the service (`semsearch demo`);
//! - [`bench`]: a load generator with reports (`semsearch bench`);
//! - [`healthcheck`]: GET /readyz for the container HEALTHCHECK;
//! - [`embed_once`]: one text through the configured embedder (`semsearch embed`);
//! - [`model`]: `semsearch model fetch`, the local embedder's files.
//!
//! Tools may write to Redis (seed, bench's synthetic fill), always through
//! `store::keys` so nothing lands outside the embedding prefix.

pub mod bench;
pub mod corpus;
pub mod demo;
pub mod embed_once;
pub mod healthcheck;
pub mod model;
pub mod redis_binary;
pub mod redis_child;
pub mod redis_cluster;
pub mod seed;
