//! The query path, once, for a node and for the router:
//!
//! ```text
//!  body ──► dto ──► plan::Plan ──► resolve ──► execute ──► answer::render ──► response
//!  (serde)        (every check that   (node: embed, id's row,  (node: the index's  (results, fewer reason,
//!                  needs only the      filter's rows; router:   live top-k on        context entry for
//!                  body and limits)    embed, id via its shard) rayon)               the chatbot)
//! ```
//!
//! `api` (the node's routes) and `router` are thin adapters over these
//! steps; the router sends its shards resolved queries through [`shard`]'s
//! typed messages and renders their merged hits with the same
//! [`answer::render`]. A rule added to a step is therefore answered
//! identically by a node and by the router.
//!
//! Deliberately not here: HTTP (extractors, auth, status codes: `api` and
//! `problem`), the scan itself (`index`, `search`), the context writer
//! (`store::context`).

pub mod dto;
pub mod plan;
pub mod resolve;
pub mod execute;
pub mod answer;
pub mod shard;

pub use plan::{Plan, Query, Rules};
