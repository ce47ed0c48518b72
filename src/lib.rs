//! semsearch: exact cosine top-k over the embeddings a chatbot keeps in Redis.
//!
//! The modules follow a request's data path:
//!
//! ```text
//!  Redis ──► store::loader ──► index ──► search (topk, kernel) ──► api
//!   (SCAN + MGET, decode)    (unit rows,   (exact scan on rayon)   (axum, problem+json)
//!                             id order)                              ▲
//!                                                                    │ query vector
//!  "text" ──► embed (normalize ──► cache: LRU, store::query_cache ──► providers: HTTP)
//! ```
//!
//! - [`config`]: flags and env vars (the only reader of the environment);
//! - [`store`]: everything that speaks Redis (`keys`, `decode`, `loader`, `query_cache`);
//! - [`embed`]: question text → query vector (`normalize`, `cache`, `providers`);
//! - [`index`]: immutable snapshots and the [`index::SharedIndex`] swap;
//! - [`search`]: kernels (chosen once per process), top-k selection with the
//!   tie rule in [`search::topk`], one-pass batch scans and the coalescing of
//!   concurrent queries;
//! - [`api`]: HTTP handlers and errors, API keys, limits, `/metrics` and the
//!   OpenAPI document generated from the handlers (`openapi.yaml`);
//! - [`app`]: wiring and background tasks; [`shutdown`]: signals; [`telemetry`]: logs;
//! - tools around the service: [`corpus`] (JSONL corpus files), [`commands`]
//!   (`seed`, `healthcheck`), [`demo`] (a private Redis, the demo corpus, the
//!   service), [`harness`] (`semsearch bench`: load generation and reports).

pub mod api;
pub mod app;
pub mod commands;
pub mod config;
pub mod corpus;
pub mod demo;
pub mod embed;
pub mod harness;
pub mod index;
pub mod refresh;
pub mod search;
pub mod shutdown;
pub mod store;
pub mod telemetry;
