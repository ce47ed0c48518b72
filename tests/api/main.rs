//! Integration tests: one binary, each module a part of the service's contract.
//! Every test talks to its own private `redis-server` (see `helpers`).

/// Test harness: private Redis, `spawn_app`, typed HTTP helpers, corpus seeding.
mod helpers;

/// Exactness: ground-truth top-10 over HTTP, response shape, k and min_score, in every scan mode (`helpers::variants`).
mod search;

/// `POST /v1/search/batch` (equals single queries, order, error codes) and coalesced singles.
mod batch;

/// Every malformed request: status, problem+json content type, stable code.
mod errors;

/// What the loader accepts, skips (by reason) and never touches.
mod loader;

/// Start-up without Redis, readiness, signals, CLI hygiene.
mod lifecycle;

/// Text queries: provider protocols against a local fake, retries, errors, query-embedding cache.
mod text;

/// Relevance per ranking mode (vector, lexical, hybrid) on the Portuguese and English dev sets.
mod relevance;

/// The in-process MiniLM embedder: fidelity to sentence-transformers, truncation, batching (skips without model files).
mod embed_local;

/// Filtered search: synthetic attributes on the dev corpus against a filter-then-rank oracle, and the 422s.
mod filter;

/// Documents by id: `GET /v1/documents/{*id}` and "more like this" search with `{"id": …}`.
mod by_id;
/// Live refresh: context cache, reload on quick-key invalidation, per-key mirroring, outages.
mod refresh;

/// Redis Cluster as the source (issue 13): load equals a single node's, per-key changes on every primary, a dead primary.
mod cluster;

/// `semsearch seed`: corpus files into Redis, TTLs, never overwriting unless told.
mod seed;

/// `semsearch demo` as a process: banner, examples, nothing left after Ctrl-C or SIGTERM.
mod demo;

/// `semsearch bench` against a spawned app: report structure, zero errors, outputs, synthetic fill.
mod harness;

/// The contract: openapi.yaml equals the generated spec, is served as is, and declared security is enforced.
mod openapi;

/// The playground at `/`: local assets only, its Content-Security-Policy, open without a key.
mod playground;

/// API keys (401/403), limits (body, k, concurrency), CORS, request ids.
mod security;

/// House rules on the sources: unique public type names, one CPU-detection file, at most three `top_k*`.
mod layout;

/// `/metrics`: the exposition parses and carries request, search and index series.
mod metrics;

/// The operator's kit (deploy/prometheus, deploy/grafana): every series it queries is on `/metrics`.
mod operations;

/// Docs that cannot drift: variables vs docs/configuration.md, routes vs openapi.yaml, metrics vs `/metrics`, links.
mod docs;

/// The release binary as a child process: Redis auth (requirepass, ACL user), secrets absent from logs, JSON logs with request ids.
mod process;

/// rediss:// against a TLS redis-server with a private CA (certificates from the openssl CLI).
mod tls;

/// Connection bounds (issues 16, 22): head deadline for any protocol, HTTP/2 idle and streams, connection and request caps, shutdown deadline, early 413, the parser's own errors as problem+json.
mod connections;

/// Redis memory: under maxmemory and an evicting policy our writes never evict the chatbot's keys (issue 22).
mod memory;

/// `SEMSEARCH_SHARD=i/n`: hash slots equal Redis's CLUSTER KEYSLOT, shards partition the corpus, updates go to the owner.
mod shard;

/// `semsearch router` over shard processes: exact merged answers, a replica killed under load, a shard with none → 503.
mod router;

/// Issue 22: the router checks its shards (list, key, answers, redirects, body bound), ids as paths, its own door.
mod router_guard;

/// Traces over OTLP/HTTP to a receiver started by the test: W3C traceparent joined, spans below it, the router's trace carried to its shards.
#[cfg(feature = "otel")]
mod traces;
