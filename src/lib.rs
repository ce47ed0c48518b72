//! semsearch: exact cosine top-k over the embeddings a chatbot keeps in Redis.
//!
//! The modules follow a request's data path:
//!
//! ```text
//!  Redis ──► store::loader ──► index ──► search (topk, kernel) ──► api
//!   (SCAN + MGET, decode)    (unit rows,   (exact scan on rayon)   (axum, problem+json)
//!                             id order)
//! ```
//!
//! - [`config`]: flags and env vars (the only reader of the environment);
//! - [`store`]: everything that speaks Redis (`keys`, `decode`, `loader`);
//! - [`index`]: immutable snapshots and the [`index::SharedIndex`] swap;
//! - [`search`]: kernels (chosen once per process), top-k selection with the
//!   tie rule in [`search::topk`], one-pass batch scans and the coalescing of
//!   concurrent queries;
//! - [`api`]: HTTP handlers and errors;
//! - [`app`]: wiring and background tasks; [`shutdown`]: signals; [`telemetry`]: logs.

pub mod api;
pub mod app;
pub mod config;
pub mod index;
pub mod search;
pub mod shutdown;
pub mod store;
pub mod telemetry;
